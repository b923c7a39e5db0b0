#!/usr/bin/env python3
"""Tests of arsc_dense.py on the real Android 16 framework resource table.

  python3 scripts/apk/resources/test_arsc_dense.py [ANDROID_ALL.jar]

The jar defaults to $ANDROID_ALL_JAR, else target/apk-build/lib/
android-all-<APK_ANDROID_ALL_VERSION>.jar (fetched with Maven when missing,
version from scripts/apk/versions.sh). Needs aapt2 (Debian package aapt)
for the aapt2 checks. Prints one line per check and `N passed, N failed`;
exits non-zero when any check fails.
"""

import os
import re
import struct
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, HERE)

import arsc_dense as ad  # noqa: E402

results = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f" ({detail})" if detail else ""))


def framework_jar():
    if len(sys.argv) > 1:
        return sys.argv[1]
    if os.environ.get("ANDROID_ALL_JAR"):
        return os.environ["ANDROID_ALL_JAR"]
    with open(os.path.join(ROOT, "scripts", "apk", "versions.sh")) as f:
        version = re.search(r'^APK_ANDROID_ALL_VERSION="([^"]+)"', f.read(), re.M).group(1)
    lib = os.path.join(ROOT, "target", "apk-build", "lib")
    jar = os.path.join(lib, f"android-all-{version}.jar")
    if not os.path.exists(jar):
        print(f"==> fetching org.robolectric:android-all:{version} (Maven Central)")
        subprocess.run(["mvn", "-B", "-q", "dependency:copy",
                        f"-Dartifact=org.robolectric:android-all:{version}",
                        f"-DoutputDirectory={lib}"], check=True)
    return jar


def describe_diff(a, b, limit=3):
    """Human-readable differences between two read_table() results."""
    out = []
    for k in sorted(a.keys() - b.keys(), key=repr)[:limit]:
        out.append(f"lost {k[1]}:{k[2]}/{k[5]}")
    for k in sorted(b.keys() - a.keys(), key=repr)[:limit]:
        out.append(f"added {k[1]}:{k[2]}/{k[5]}")
    changed = [k for k in a.keys() & b.keys() if a[k] != b[k]]
    for k in sorted(changed, key=repr)[:limit]:
        out.append(f"changed {k[1]}:{k[2]}/{k[5]}: {a[k]!r} -> {b[k]!r}")
    return "; ".join(out)


def other_chunks(data):
    """Every chunk but the type chunks, as bytes, in order: these must come
    through unchanged."""
    out = []
    for ctype, off, hsize, size in ad.package_chunks(data):
        if ctype != ad.RES_TABLE_PACKAGE_TYPE:
            out.append(data[off:off + size])
            continue
        out.append(data[off + 8:off + hsize])  # package header minus its size
        p = off + hsize
        while p < off + size:
            st, _, ssz = struct.unpack_from("<HHI", data, p)
            if st != ad.RES_TABLE_TYPE_TYPE:
                out.append(data[p:p + ssz])
            p += ssz
    return out


def first_type_chunk(data, want_flags=0):
    """(offset, header size, size) of the first type chunk with those flags."""
    for ctype, off, hsize, size in ad.package_chunks(data):
        if ctype != ad.RES_TABLE_PACKAGE_TYPE:
            continue
        p = off + hsize
        while p < off + size:
            st, shs, ssz = struct.unpack_from("<HHI", data, p)
            if st == ad.RES_TABLE_TYPE_TYPE and data[p + 9] == want_flags:
                return p, shs, ssz
            p += ssz
    raise AssertionError("no such type chunk")


def aapt2_dump(apk):
    try:
        return subprocess.run(["aapt2", "dump", "resources", apk],
                              capture_output=True, text=True)
    except FileNotFoundError:
        # Reported as failed checks, not a traceback.
        return subprocess.CompletedProcess([], 127, "", "aapt2 not installed (apt-get install aapt)")


def main():
    jar = framework_jar()
    with zipfile.ZipFile(jar) as z:
        original = z.read("resources.arsc")
    dense = ad.densify(original)

    orig_entries, orig_layouts = ad.read_table(original)
    dense_entries, dense_layouts = ad.read_table(dense)

    check("the original uses the post-Android-10 layouts (sparse, offset16)",
          orig_layouts.get(ad.FLAG_SPARSE, 0) > 0 and orig_layouts.get(ad.FLAG_OFFSET16, 0) > 0,
          f"type chunks by flags: {orig_layouts}")
    check("every rewritten type chunk is dense (flags 0)",
          set(dense_layouts) == {0} and sum(dense_layouts.values()) == sum(orig_layouts.values()),
          f"type chunks by flags: {dense_layouts}")
    check("the original's table holds a realistic number of entries",
          len(orig_entries) > 100000, f"{len(orig_entries)} (package, type, config, entry) values")
    check("the rewritten table has exactly the original's entries and values",
          orig_entries == dense_entries,
          describe_diff(orig_entries, dense_entries) or f"{len(dense_entries)} identical")
    check("string pools, type specs and other chunks are unchanged",
          other_chunks(original) == other_chunks(dense))
    compact = count_compact(original)
    check("no compact entry survives the rewrite",
          compact > 0 and count_compact(dense) == 0, f"{compact} compact entries in the original")
    check("rewriting is deterministic", ad.densify(original) == dense)
    check("rewriting a dense table changes nothing", ad.densify(dense) == dense)

    # The comparison itself must notice a lost or a changed entry.
    p, hsize, size = first_type_chunk(dense)
    count, start = struct.unpack_from("<II", dense, p + 12)
    slots = struct.unpack_from(f"<{count}I", dense, p + hsize)
    first = next(i for i, o in enumerate(slots) if o != ad.NO_ENTRY)
    lost = bytearray(dense)
    struct.pack_into("<I", lost, p + hsize + 4 * first, ad.NO_ENTRY)
    lost_entries, _ = ad.read_table(bytes(lost))
    diff = describe_diff(orig_entries, lost_entries)
    check("the comparison catches a lost entry",
          lost_entries != orig_entries and diff.startswith("lost"), diff)
    changed = bytearray(dense)
    e = p + start + slots[first]
    esize, eflags = struct.unpack_from("<HH", changed, e)
    # Bump the entry's value (simple entry) or its first map item's data.
    data_at = e + esize + 4 if not eflags & ad.ENTRY_FLAG_COMPLEX else e + esize + 8
    struct.pack_into("<I", changed, data_at, struct.unpack_from("<I", changed, data_at)[0] ^ 1)
    changed_entries, _ = ad.read_table(bytes(changed))
    diff = describe_diff(orig_entries, changed_entries)
    check("the comparison catches a changed value",
          changed_entries != orig_entries and diff.startswith("changed"), diff)

    # aapt2 (Android 10) on both tables.
    with zipfile.ZipFile(jar) as z:
        manifest = z.read("AndroidManifest.xml")
    with tempfile.TemporaryDirectory() as tmp:
        def apk(name, table):
            path = os.path.join(tmp, name)
            with zipfile.ZipFile(path, "w") as z:
                z.writestr("AndroidManifest.xml", manifest)
                z.writestr("resources.arsc", table)
            return path

        before = aapt2_dump(apk("original.apk", original))
        check("aapt2 cannot read the original table (why the rewrite exists)",
              before.returncode != 127
              and ("points outside the Type's boundaries" in before.stderr
                   or "unaligned offset" in before.stderr or before.returncode != 0),
              f"exit {before.returncode}")
        after = aapt2_dump(apk("dense.apk", dense))
        errors = [l for l in after.stderr.splitlines()
                  if not l.startswith("warn:") and "warn:" not in l]
        check("aapt2 dump resources reads the rewritten table",
              after.returncode == 0 and not errors,
              f"exit {after.returncode}; {errors[:3]}" if errors or after.returncode else
              f"{after.stdout.count(chr(10))} lines")
        for name in ("style/Theme.DeviceDefault.Light.NoActionBar", "attr/colorAccent",
                     "drawable/ic_lock_lock", "drawable/ic_menu_close_clear_cancel",
                     "drawable/stat_notify_error", "attr/name"):
            check(f"aapt2 lists android:{name}",
                  re.search(rf"resource 0x01[0-9a-f]{{6}} {re.escape(name)}( |$)", after.stdout, re.M)
                  is not None)
        dumped = len(re.findall(r"^    resource 0x", after.stdout, re.M))
        names = {(k[2], k[5]) for k in orig_entries if not k[2].startswith("?")}
        check("aapt2 sees as many resources as the reader",
              dumped >= len({(t, n) for t, n in names}) * 0.99,
              f"aapt2 {dumped}, reader {len(names)} distinct type/name")

    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


def count_compact(data):
    n = 0
    for ctype, off, hsize, size in ad.package_chunks(data):
        if ctype != ad.RES_TABLE_PACKAGE_TYPE:
            continue
        p = off + hsize
        while p < off + size:
            st, shs, ssz = struct.unpack_from("<HHI", data, p)
            if st == ad.RES_TABLE_TYPE_TYPE:
                start = struct.unpack_from("<I", data, p + 16)[0]
                for _, o in ad.type_entry_offsets(data, p, shs, ssz):
                    if struct.unpack_from("<H", data, p + start + o + 2)[0] & ad.ENTRY_FLAG_COMPACT:
                        n += 1
            p += ssz
    return n


if __name__ == "__main__":
    sys.exit(main())
