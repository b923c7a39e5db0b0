#!/usr/bin/env python3
"""Self-test of check-apk.sh: it must pass a good APK and catch each of a
set of deliberately broken ones built from it.

    test_check_apk.py --bindings dotcore_ffi.kt --abis arm64-v8a,x86_64
                      [--apk GOOD.apk] [--resources resources.ap_]
                      [--work DIR]

With --apk, the good APK is taken apart and rebuilt (apkzip.py + sign.sh);
without it, one is assembled from the real resources.ap_ (default
target/apk-build/res/resources.ap_), JNA's real libjnidispatch.so (from its
AAR on Maven Central, the version in android/gradle/libs.versions.toml) and
fixture.py's stand-in libdotcore_ffi.so and classes.dex.

Each broken variant changes one thing; the test asserts check-apk.sh exits
non-zero AND prints the FAIL line of the check that names that thing, so a
check that fails for an unrelated reason does not count. Ends with
"N passed, N failed"; exit status 1 on any failure.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
# No __pycache__ beside the sources (it is not ignored by git).
sys.dont_write_bytecode = True
sys.path.insert(0, str(HERE))
import apkcheck  # noqa: E402

PACKAGE = ROOT / "scripts/apk/package"
MACHINES = {183: "arm64-v8a", 62: "x86_64", 40: "armeabi-v7a", 3: "x86"}


class Ctx:
    def __init__(self, a: argparse.Namespace, work: Path) -> None:
        self.a = a
        self.work = work
        self.keystore = work / "debug.keystore"
        self.passed = 0
        self.failed = 0

    def result(self, ok: bool, what: str, detail: str = "") -> None:
        print(f"{'PASS' if ok else 'FAIL'}: {what}" + (f" — {detail}" if detail else ""), flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1


def sh(cmd: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, env=env)
    except FileNotFoundError:
        raise SystemExit(f"test_check_apk: {cmd[0]} is not installed")


def must(cmd: list[str], env: dict | None = None) -> None:
    p = sh(cmd, env)
    if p.returncode:
        raise SystemExit(f"test_check_apk: {' '.join(map(str, cmd))} failed:\n{p.stdout}{p.stderr}")


# ------------------------------------------------------------ assembling

Entries = dict[str, bytes]


def read_entries(apk: Path) -> tuple[Entries, set[str]]:
    with zipfile.ZipFile(apk) as z:
        stored = {i.filename for i in z.infolist() if i.compress_type == zipfile.ZIP_STORED}
        return {i.filename: z.read(i) for i in z.infolist() if not i.is_dir()}, stored


def apkzip(ctx: Ctx, entries: Entries, stored: set[str], out: Path) -> None:
    """Unsigned APK through the real packager."""
    tmp = Path(tempfile.mkdtemp(dir=ctx.work))
    res = tmp / "resources.ap_"
    with zipfile.ZipFile(res, "w") as z:
        for name, data in entries.items():
            if name.startswith("lib/") or re.fullmatch(r"classes\d*\.dex", name):
                continue
            method = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            z.writestr(name, data, compress_type=method)
    args = ["python3", str(PACKAGE / "apkzip.py"), "--out", str(out), "--resources", str(res)]
    for name, data in entries.items():
        if re.fullmatch(r"classes\d*\.dex", name):
            (tmp / name).write_bytes(data)
            args += ["--dex", str(tmp / name)]
        elif name.startswith("lib/"):
            p = tmp / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            args += ["--lib", f"{name.split('/')[1]}={p}"]
    must(args)
    shutil.rmtree(tmp)


def plain_zip(entries: Entries, out: Path, deflate: Callable[[str], bool]) -> None:
    """A zip without any alignment padding (Python's zipfile)."""
    with zipfile.ZipFile(out, "w") as z:
        for name in sorted(entries, key=lambda n: (n != "AndroidManifest.xml", n)):
            method = zipfile.ZIP_DEFLATED if deflate(name) else zipfile.ZIP_STORED
            z.writestr(zipfile.ZipInfo(name, (1981, 1, 1, 0, 0, 0)), entries[name], compress_type=method)


def sign_sh(ctx: Ctx, unsigned: Path, out: Path) -> None:
    env = dict(os.environ, DOTCORE_DEBUG_KEYSTORE=str(ctx.keystore))
    must(["bash", str(PACKAGE / "sign.sh"), str(unsigned), str(out)], env)


def sign_raw(ctx: Ctx, unsigned: Path, out: Path) -> None:
    """apksigner alone, for broken zips that sign.sh would refuse."""
    must(["apksigner", "sign", "--ks", str(ctx.keystore), "--ks-key-alias", "androiddebugkey",
          "--ks-pass", "pass:android", "--key-pass", "pass:android", "--min-sdk-version", "26",
          "--v1-signing-enabled", "false", "--v4-signing-enabled", "false",
          "--out", str(out), str(unsigned)])


def jna_libs(ctx: Ctx, abis: list[str]) -> dict[str, Path]:
    toml = (ROOT / "android/gradle/libs.versions.toml").read_text()
    m = re.search(r'^jna\s*=\s*"([^"]+)"', toml, re.M)
    if not m:
        raise SystemExit("test_check_apk: no jna version in android/gradle/libs.versions.toml")
    version = m.group(1)
    cache = ROOT / "target/apk-check/jna" / version
    aar = cache / f"jna-{version}.aar"
    if not aar.exists():
        cache.mkdir(parents=True, exist_ok=True)
        must(["mvn", "-q", "-B", "dependency:copy", f"-Dartifact=net.java.dev.jna:jna:{version}:aar",
              f"-DoutputDirectory={cache}"])
    out = {}
    with zipfile.ZipFile(aar) as z:
        for abi in abis:
            p = ctx.work / "jna" / abi / "libjnidispatch.so"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(z.read(f"jni/{abi}/libjnidispatch.so"))
            out[abi] = p
    return out


def assemble_fixture(ctx: Ctx, out: Path) -> None:
    a = ctx.a
    res = a.resources
    if not res.is_file():
        raise SystemExit(f"test_check_apk: no resources.ap_ at {res} "
                         "(run scripts/apk/resources/build-resources.sh, or pass --resources / --apk)")
    fx = ctx.work / "fixture"
    must(["python3", str(HERE / "fixture.py"), "--out", str(fx), "--bindings", str(a.bindings),
          "--abis", ",".join(a.abis), "--manifest-source", str(a.manifest_source)])
    libs = jna_libs(ctx, a.abis)
    unsigned = ctx.work / "fixture-unsigned.apk"
    args = ["python3", str(PACKAGE / "apkzip.py"), "--out", str(unsigned), "--resources", str(res),
            "--dex-dir", str(fx / "dex"), "--lib-dir", str(fx / "native")]
    args += [x for abi, p in libs.items() for x in ("--lib", f"{abi}={p}")]
    must(args)
    sign_sh(ctx, unsigned, out)


# ------------------------------------------------------------ mutations

def patch_dex(data: bytes, old: bytes, new: bytes) -> bytes:
    assert len(old) == len(new)
    b = bytearray(data.replace(old, new))
    b[12:32] = hashlib.sha1(b[32:]).digest()
    struct.pack_into("<I", b, 8, zlib.adler32(bytes(b[12:])))
    return bytes(b)


def patch_machine(elf: bytes, machine: int) -> bytes:
    b = bytearray(elf)
    struct.pack_into("<H", b, 18, machine)
    return bytes(b)


def patch_load_align(elf: bytes, align: int) -> bytes:
    b = bytearray(elf)
    is64 = b[4] == 2
    phoff = struct.unpack_from("<Q" if is64 else "<I", b, 32 if is64 else 28)[0]
    phentsize, phnum = struct.unpack_from("<HH", b, 54 if is64 else 42)
    for i in range(phnum):
        o = phoff + i * phentsize
        if struct.unpack_from("<I", b, o)[0] == 1:
            if is64:
                struct.pack_into("<Q", b, o + 48, align)
            else:
                struct.pack_into("<I", b, o + 28, align)
    return bytes(b)


def patch_manifest_string(axml: bytes, old: str, new: str) -> bytes:
    """Same-length edit of a string in binary XML's pool (UTF-16 or UTF-8)."""
    assert len(old) == len(new)
    for enc in ("utf-16-le", "utf-8"):
        o, n = old.encode(enc), new.encode(enc)
        if o in axml:
            return axml.replace(o, n)
    raise SystemExit(f"test_check_apk: {old!r} not in the binary manifest")


# ------------------------------------------------------------ running

def run_check(ctx: Ctx, apk: Path, unsigned: bool = False, **over: object) -> tuple[int, str]:
    a = ctx.a
    abis = over.get("abis", ",".join(a.abis))
    args = ["bash", str(HERE / "check-apk.sh"), str(apk), "--abis", str(abis),
            "--bindings", str(over.get("bindings", a.bindings)),
            "--symbols", str(over.get("symbols", a.symbols)),
            "--manifest-source", str(over.get("manifest_source", a.manifest_source))]
    if a.mapping:
        args += ["--mapping", str(a.mapping)]
    if unsigned:
        args.append("--unsigned")
    p = sh(args)
    return p.returncode, p.stdout + p.stderr


def expect_caught(ctx: Ctx, case: str, pattern: str, rc_out: tuple[int, str]) -> None:
    rc, out = rc_out
    lines = [ln for ln in out.splitlines() if ln.startswith("FAIL:") and re.search(pattern, ln)]
    ok = rc != 0 and bool(lines)
    detail = lines[0] if lines else f"exit {rc}, no FAIL line matching {pattern!r}"
    ctx.result(ok, f"caught: {case}", detail)


def engine_import(entries: Entries, abi: str, strong: bool) -> str:
    elf = apkcheck.parse_elf(entries[f"lib/{abi}/libdotcore_ffi.so"])
    for name, defined, weak, lib, node in elf.dynsyms:
        if not defined and lib and weak != strong:
            return name
    raise SystemExit("test_check_apk: libdotcore_ffi.so has no versioned strong import")


def engine_weak_import(entries: Entries, abi: str) -> str | None:
    elf = apkcheck.parse_elf(entries[f"lib/{abi}/libdotcore_ffi.so"])
    return next((n for n, d, weak, _l, _v in elf.dynsyms if not d and weak), None)


def edit_tsv(src: Path, dst: Path, symbol: str, col: int, value: str | None) -> None:
    """Set column `col` of `symbol`'s rows to `value`; None drops the rows."""
    out = []
    for line in src.read_text().splitlines():
        cols = line.split("\t")
        if not line.startswith("#") and len(cols) > col and cols[1] == symbol:
            if value is None:
                continue
            cols[col] = value
        out.append("\t".join(cols))
    dst.write_text("\n".join(out) + "\n")


def mutants(ctx: Ctx, good: Path) -> None:
    w = ctx.work
    entries, stored = read_entries(good)
    abi = ctx.a.abis[0]
    so = f"lib/{abi}/libdotcore_ffi.so"

    def signed_variant(tag: str, ents: Entries, st: set[str] | None = None) -> Path:
        u, s = w / f"{tag}-unsigned.apk", w / f"{tag}.apk"
        apkzip(ctx, ents, stored if st is None else st, u)
        sign_sh(ctx, u, s)
        return s

    # The rebuilt good APK must pass, or the cases below prove nothing.
    rebuilt = signed_variant("rebuilt", entries)
    rc, out = run_check(ctx, rebuilt)
    summary = out.strip().splitlines()[-1] if out.strip() else ""
    ctx.result(rc == 0, "the good APK passes check-apk.sh", summary)
    if rc != 0:
        print(out)
        return

    p = w / "so-deflated.apk"
    plain_zip(entries, w / "so-deflated-unsigned.apk", lambda n: n.endswith(".so") or n.endswith(".dex"))
    sign_raw(ctx, w / "so-deflated-unsigned.apk", p)
    expect_caught(ctx, "a .so deflated", r"every \.so is stored uncompressed", run_check(ctx, p))

    p = w / "so-misaligned.apk"
    plain_zip(entries, w / "so-misaligned-unsigned.apk", lambda n: n.endswith(".dex"))
    sign_raw(ctx, w / "so-misaligned-unsigned.apk", p)
    offs = [e.data_offset for e in apkcheck.parse_zip(p.read_bytes()) if e.name.endswith(".so")]
    if all(o % 16384 == 0 for o in offs):
        ctx.result(False, "caught: a .so misaligned", "precondition: every .so happened to be aligned")
    else:
        expect_caught(ctx, "a .so misaligned", r"16384-aligned data offset", run_check(ctx, p))

    plain_zip(entries, w / "arsc-deflated-unsigned.apk", lambda n: n == "resources.arsc")
    sign_raw(ctx, w / "arsc-deflated-unsigned.apk", w / "arsc-deflated.apk")
    expect_caught(ctx, "resources.arsc deflated", r"resources\.arsc is stored",
                  run_check(ctx, w / "arsc-deflated.apk"))

    mach = apkcheck.parse_elf(entries[so]).machine
    other = next(m for m in MACHINES if m != mach)
    p = signed_variant("wrong-abi", {**entries, so: patch_machine(entries[so], other)})
    expect_caught(ctx, f"a {MACHINES[other]} ELF in lib/{abi}", rf"{re.escape(so)}: e_machine", run_check(ctx, p))

    p = signed_variant("align-4k", {**entries, so: patch_load_align(entries[so], 4096)})
    expect_caught(ctx, "PT_LOAD aligned to 4 KiB", rf"{re.escape(so)}: every PT_LOAD p_align", run_check(ctx, p))

    needed = apkcheck.parse_elf(entries[so]).needed
    if "libc.so" in needed:
        p = signed_variant("needed", {**entries, so: entries[so].replace(b"\0libc.so\0", b"\0libq.so\0")})
        expect_caught(ctx, "DT_NEEDED libq.so (not public)", rf"{re.escape(so)}: DT_NEEDED", run_check(ctx, p))

    dex_name = next(n for n, d in entries.items() if n.endswith(".dex") and b"Lapp/dotcore/MainActivity;" in d)
    p = signed_variant("no-class", {**entries, dex_name: patch_dex(
        entries[dex_name], b"Lapp/dotcore/MainActivity;", b"Lapp/dotcore/MainActivitz;")})
    expect_caught(ctx, "app.dotcore.MainActivity missing from the dex",
                  r"dex defines app\.dotcore\.MainActivity", run_check(ctx, p))

    dex_name = next(n for n, d in entries.items() if n.endswith(".dex") and b"Lcom/sun/jna/Native;" in d)
    p = signed_variant("no-jna", {**entries, dex_name: patch_dex(
        entries[dex_name], b"Lcom/sun/jna/Native;", b"Lcom/sun/jna/Nativz;")})
    expect_caught(ctx, "com.sun.jna.Native missing from the dex", r"dex defines com\.sun\.jna\.Native",
                  run_check(ctx, p))

    unsigned = w / "rebuilt-unsigned.apk"
    expect_caught(ctx, "an unsigned APK", r"apksigner verify passes|v2", run_check(ctx, unsigned))

    man = entries["AndroidManifest.xml"]
    p = signed_variant("no-permission", {**entries, "AndroidManifest.xml": patch_manifest_string(
        man, "android.permission.RECEIVE_BOOT_COMPLETED", "android.permission.RECEIVE_BOOT_COMPLETEX")})
    expect_caught(ctx, "RECEIVE_BOOT_COMPLETED missing from the APK", r"permissions match", run_check(ctx, p))

    p = signed_variant("no-vpn-perm", {**entries, "AndroidManifest.xml": patch_manifest_string(
        man, "android.permission.BIND_VPN_SERVICE", "android.permission.BIND_VPN_SERVICX")})
    expect_caught(ctx, "DotVpnService without BIND_VPN_SERVICE", r"requires BIND_VPN_SERVICE", run_check(ctx, p))

    src = ctx.a.manifest_source.read_text()
    extra_perm = w / "AndroidManifest-extra.xml"
    extra_perm.write_text(src.replace(
        "<application", '<uses-permission android:name="android.permission.CAMERA" />\n    <application', 1))
    expect_caught(ctx, "a permission the source manifest has but the APK lacks", r"permissions match",
                  run_check(ctx, rebuilt, manifest_source=extra_perm))

    unbuilt = [x for x in MACHINES.values() if x not in ctx.a.abis]
    if unbuilt:
        expect_caught(ctx, "an ABI expected but not built", r"native-code is exactly",
                      run_check(ctx, rebuilt, abis=",".join(ctx.a.abis + unbuilt[:1])))
    else:
        expect_caught(ctx, "an ABI built but not expected", r"native-code is exactly",
                      run_check(ctx, rebuilt, abis=",".join(ctx.a.abis[:-1])))

    kt = w / "bindings-extra.kt"
    kt.write_text(ctx.a.bindings.read_text() + "\nexternal fun uniffi_dotcore_ffi_fn_func_not_built(): Unit\n")
    expect_caught(ctx, "a bindings symbol the library does not export", r"exports the \d+ UniFFI symbols",
                  run_check(ctx, rebuilt, bindings=kt))

    strong = engine_import(entries, abi, strong=True)
    tsv = w / "symbols-node.tsv"
    edit_tsv(ctx.a.symbols, tsv, strong, 2, "LIBC_WRONG")
    expect_caught(ctx, f"{strong} with another version node in the list", r"imports are in the API-\d+ bionic",
                  run_check(ctx, rebuilt, symbols=tsv))
    tsv = w / "symbols-api.tsv"
    edit_tsv(ctx.a.symbols, tsv, strong, 3, "30")
    expect_caught(ctx, f"{strong} (a strong import) introduced after API 26", r"imports are in the API-\d+ bionic",
                  run_check(ctx, rebuilt, symbols=tsv))
    weak = engine_weak_import(entries, abi)
    if weak:
        tsv = w / "symbols-weak.tsv"
        edit_tsv(ctx.a.symbols, tsv, weak, 0, None)
        expect_caught(ctx, f"weak import {weak} absent from the list", r"imports are in the API-\d+ bionic",
                      run_check(ctx, rebuilt, symbols=tsv))


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--apk", type=Path)
    p.add_argument("--bindings", type=Path, required=True)
    p.add_argument("--abis", default="arm64-v8a,x86_64")
    p.add_argument("--resources", type=Path, default=ROOT / "target/apk-build/res/resources.ap_")
    p.add_argument("--symbols", type=Path, default=ROOT / "scripts/apk/bionic/symbols.tsv")
    p.add_argument("--manifest-source", type=Path, default=ROOT / "android/app/src/main/AndroidManifest.xml")
    p.add_argument("--mapping", type=Path, help="R8 mapping.txt when --apk has a shrunk dex")
    p.add_argument("--work", type=Path, default=ROOT / "target/apk-check/selftest")
    a = p.parse_args(argv)
    a.abis = [x for x in a.abis.split(",") if x]
    if a.work.exists():
        shutil.rmtree(a.work)
    a.work.mkdir(parents=True)
    # Private copies: a build running meanwhile may replace the originals.
    for attr in ("bindings", "symbols", "manifest_source", "mapping", "apk"):
        src = getattr(a, attr)
        if src is not None:
            dst = a.work / "inputs" / f"{attr}-{src.name}"
            dst.parent.mkdir(exist_ok=True)
            shutil.copyfile(src, dst)
            setattr(a, attr, dst)
    ctx = Ctx(a, a.work)
    # sign.sh creates the test's own debug key (in its work dir) on first use.
    good = a.apk
    if good is None:
        good = a.work / "fixture.apk"
        assemble_fixture(ctx, good)
    mutants(ctx, good)
    print(f"{ctx.passed} passed, {ctx.failed} failed")
    return 1 if ctx.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
