#!/usr/bin/env python3
"""Write an unsigned, deterministic APK whose native libraries are stored
uncompressed at 16 KiB-aligned offsets.

    apkzip.py --out UNSIGNED.apk --resources resources.ap_
              [--dex-dir DIR]... [--dex FILE]...
              [--lib ABI=PATH]... [--lib-dir DIR]... [--java-res DIR]...
              [--page-align 16384] [--level 9]

  --resources   aapt2 link output (a zip with AndroidManifest.xml,
                resources.arsc, res/...). Its entries are copied by name;
                what aapt2 stored uncompressed (media it won't deflate) stays
                stored, resources.arsc is always stored, the rest deflated.
  --dex-dir     every classes*.dex in DIR goes to the APK root.
  --dex         one dex file (its base name is kept).
  --lib         ABI=PATH: PATH goes to lib/ABI/<basename of PATH>.
  --lib-dir     DIR/<abi>/*.so, each to lib/<abi>/<name>.
  --java-res    every file under DIR, at its path relative to DIR (Java
                resources such as META-INF/services/*, which coroutines'
                ServiceLoader reads), deflated.
  --page-align  alignment of .so data (default 16384: Android 15+ 16 KB
                page devices mmap the library straight from the APK).
  --level       zlib level for deflated entries (default 9).

    apkzip.py --check-alignment APK [--page-align 16384]

  Checks an existing (e.g. signed) APK instead: every .so stored and
  --page-align aligned, every other stored entry 4-byte aligned. Prints
  each offending entry; exit status 1 if any.

Layout, and why (docs/android.md, "Packaging, signing and checks", has the sources):
  * AndroidManifest.xml first, then every other entry sorted by name: a
    fixed order that does not depend on the file system.
  * Every entry dated 1981-01-01 00:00:00 (DOS time), mode 0644, no data
    descriptors, no zip64, no comments: nothing from the build machine.
  * STORED entries carry, in the LOCAL header only, an extra field with the
    header ID 0xd935 (the ID apksig's ApkSigner and apkzlib use) holding the
    alignment as a 16-bit value followed by zero padding. That pads the
    entry's data to the alignment, as zipalign does with the extra field, and
    it tells `apksigner sign` which alignment to keep if it has to move the
    entry. .so data is aligned to --page-align, every other stored entry
    (resources.arsc included) to 4 bytes.
  * Deflated entries: raw deflate (zlib wbits -15), level --level, memLevel 8,
    so the same input and zlib give the same bytes.

Exit status 0 on success; 2 on a usage or input error, with a message that
names the offending argument or entry.
"""
from __future__ import annotations

import argparse
import os
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "AndroidManifest.xml"
# DOS date for 1981-01-01: ((1981-1980) << 9) | (1 << 5) | 1; time 00:00:00.
DOS_DATE = (1 << 9) | (1 << 5) | 1
DOS_TIME = 0
ALIGN_EXTRA_ID = 0xD935
ALIGN_EXTRA_MIN = 6  # id (2) + size (2) + alignment (2)
STORED_ALIGN = 4
LFH_LEN = 30
# Unix "version made by" (3 << 8) with spec version 2.0; regular file 0644.
MADE_BY = (3 << 8) | 20
EXTERNAL_ATTR = (0o100644 << 16)
MAX_U32 = 0xFFFFFFFF

# Entries aapt2 did not deflate but that must be stored regardless.
FORCE_STORED = {"resources.arsc"}


class InputError(Exception):
    pass


@dataclass
class Entry:
    name: str
    data: bytes
    stored: bool


def check_name(name: str) -> None:
    if not name or name.startswith("/") or "\\" in name:
        raise InputError(f"bad entry name {name!r}")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise InputError(f"bad entry name {name!r}")
    if not name.isascii():
        raise InputError(f"non-ASCII entry name {name!r} (not supported)")


def resource_entries(path: Path) -> list[Entry]:
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise InputError(f"--resources {path}: not a readable zip ({e})") from e
    out = []
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            stored = info.compress_type == zipfile.ZIP_STORED or info.filename in FORCE_STORED
            out.append(Entry(info.filename, zf.read(info), stored))
    names = {e.name for e in out}
    for required in (MANIFEST, "resources.arsc"):
        if required not in names:
            raise InputError(f"--resources {path}: no {required} entry")
    return out


def read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(f"{what} {path}: {e.strerror}") from e


def dex_entries(dirs: list[Path], files: list[Path]) -> list[Entry]:
    paths = list(files)
    for d in dirs:
        if not d.is_dir():
            raise InputError(f"--dex-dir {d}: not a directory")
        found = sorted(d.glob("classes*.dex"))
        if not found:
            raise InputError(f"--dex-dir {d}: no classes*.dex in it")
        paths.extend(found)
    return [Entry(p.name, read_file(p, "dex"), stored=False) for p in paths]


def lib_entries(specs: list[str], dirs: list[Path]) -> list[Entry]:
    pairs: list[tuple[str, Path]] = []
    for spec in specs:
        abi, sep, path = spec.partition("=")
        if not sep or not abi or not path:
            raise InputError(f"--lib {spec!r}: expected ABI=PATH")
        pairs.append((abi, Path(path)))
    for d in dirs:
        if not d.is_dir():
            raise InputError(f"--lib-dir {d}: not a directory")
        for so in sorted(d.glob("*/*.so")):
            pairs.append((so.parent.name, so))
    out = []
    for abi, path in pairs:
        if not path.name.endswith(".so"):
            raise InputError(f"native library {path}: name must end in .so")
        out.append(Entry(f"lib/{abi}/{path.name}", read_file(path, "native library"), stored=True))
    return out


def java_res_entries(dirs: list[Path]) -> list[Entry]:
    out = []
    for d in dirs:
        if not d.is_dir():
            raise InputError(f"--java-res {d}: not a directory")
        for f in sorted(p for p in d.rglob("*") if p.is_file()):
            out.append(Entry(f.relative_to(d).as_posix(), read_file(f, "Java resource"), stored=False))
    return out


def order(entries: list[Entry]) -> list[Entry]:
    seen: dict[str, Entry] = {}
    for e in entries:
        check_name(e.name)
        if e.name in seen:
            raise InputError(f"entry {e.name} given twice")
        seen[e.name] = e
    return sorted(seen.values(), key=lambda e: (e.name != MANIFEST, e.name))


def deflate(data: bytes, level: int) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY)
    return c.compress(data) + c.flush()


def align_extra(offset: int, name_len: int, alignment: int) -> bytes:
    """Extra field making the data start (offset + 30 + name + extra) a
    multiple of `alignment`."""
    base = offset + LFH_LEN + name_len + ALIGN_EXTRA_MIN
    pad = (-base) % alignment
    size = 2 + pad
    return struct.pack("<HHH", ALIGN_EXTRA_ID, size, alignment) + bytes(pad)


def write_apk(entries: list[Entry], out: Path, page_align: int, level: int) -> None:
    body = bytearray()
    central = bytearray()
    for e in entries:
        name = e.name.encode("ascii")
        crc = zlib.crc32(e.data)
        if e.stored:
            method, version, payload = 0, 10, e.data
            alignment = page_align if e.name.endswith(".so") else STORED_ALIGN
            extra = align_extra(len(body), len(name), alignment)
        else:
            method, version, payload = 8, 20, deflate(e.data, level)
            extra = b""
        offset = len(body)
        if offset > MAX_U32 or len(payload) > MAX_U32 or len(e.data) > MAX_U32:
            raise InputError(f"entry {e.name}: too large for a zip without zip64")
        fields = (version, 0, method, DOS_TIME, DOS_DATE, crc, len(payload), len(e.data))
        body += struct.pack("<IHHHHHIII", 0x04034B50, *fields)
        body += struct.pack("<HH", len(name), len(extra)) + name + extra
        body += payload
        central += struct.pack("<IH", 0x02014B50, MADE_BY)
        central += struct.pack("<HHHHHIII", *fields)
        central += struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, EXTERNAL_ATTR, offset)
        central += name
    cd_offset = len(body)
    n = len(entries)
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), cd_offset, 0)
    tmp = out.with_name(out.name + ".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(bytes(body) + bytes(central) + eocd)
    os.replace(tmp, out)


def check_alignment(apk: Path, page_align: int) -> int:
    """Alignment of an existing APK, parsed by check/apkcheck.py's reader."""
    sys.dont_write_bytecode = True  # no __pycache__ beside the sources
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "check"))
    import apkcheck  # noqa: E402  (sibling tool, same project)

    entries = apkcheck.parse_zip(apk.read_bytes())
    bad = []
    for e in entries:
        if e.name.endswith(".so") and (e.method != 0 or e.data_offset % page_align):
            bad.append(f"{e.name}: method {e.method}, data at {e.data_offset}")
        elif e.method == 0 and e.data_offset % STORED_ALIGN:
            bad.append(f"{e.name}: stored, data at {e.data_offset}")
    for line in bad:
        print(f"apkzip: misaligned {line}", file=sys.stderr)
    sos = sum(e.name.endswith(".so") for e in entries)
    if not bad:
        print(f"apkzip: {apk}: {sos} .so stored at {page_align}-aligned offsets, "
              "other stored entries 4-aligned", file=sys.stderr)
    return 1 if bad else 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check-alignment", type=Path, metavar="APK")
    p.add_argument("--out", type=Path)
    p.add_argument("--resources", type=Path)
    p.add_argument("--dex-dir", type=Path, action="append", default=[])
    p.add_argument("--dex", type=Path, action="append", default=[])
    p.add_argument("--lib", action="append", default=[])
    p.add_argument("--lib-dir", type=Path, action="append", default=[])
    p.add_argument("--java-res", type=Path, action="append", default=[])
    p.add_argument("--page-align", type=int, default=16384)
    p.add_argument("--level", type=int, default=9, choices=range(0, 10))
    a = p.parse_args(argv)
    if not a.check_alignment and (not a.out or not a.resources):
        p.error("--out and --resources are required")
    if a.page_align < 4 or a.page_align & (a.page_align - 1) or a.page_align > 32768:
        p.error("--page-align must be a power of two between 4 and 32768")
    return a


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    if a.check_alignment:
        return check_alignment(a.check_alignment, a.page_align)
    try:
        entries = resource_entries(a.resources)
        entries += dex_entries(a.dex_dir, a.dex)
        entries += lib_entries(a.lib, a.lib_dir)
        entries += java_res_entries(a.java_res)
        ordered = order(entries)
        write_apk(ordered, a.out, a.page_align, a.level)
    except InputError as e:
        print(f"apkzip: {e}", file=sys.stderr)
        return 2
    stored = sum(e.stored for e in ordered)
    print(f"apkzip: wrote {a.out} ({len(ordered)} entries, {stored} stored, "
          f".so aligned to {a.page_align})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
