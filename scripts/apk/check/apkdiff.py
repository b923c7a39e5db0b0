#!/usr/bin/env python3
"""Say how two APKs (zips) differ, entry by entry.

    apkdiff.py A.apk B.apk

Prints one line per difference: entries only in one, a different entry
order, and for each common entry which of its local header fields (method,
DOS time/date, CRC, sizes, extra field, data offset) or its uncompressed
content differ. Exit status 0 when the files are byte-identical, 1 when
they differ (even if no entry does: then the difference is in the central
directory or the end record, and that is said).
"""
from __future__ import annotations

import struct
import sys
from pathlib import Path

# No __pycache__ beside the sources (it is not ignored by git).
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import apkcheck  # noqa: E402


def local_header(blob: bytes, e: apkcheck.ZipEntry) -> dict[str, object]:
    o = e.lfh_offset
    ver, flags, method, t, d, crc, cs, us, nl, xl = struct.unpack_from("<HHHHHIIIHH", blob, o + 4)
    return {"version": ver, "flags": flags, "method": method, "time": t, "date": d,
            "crc": crc, "csize": cs, "usize": us,
            "extra": blob[o + 30 + nl:o + 30 + nl + xl].hex(), "data_offset": e.data_offset}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: apkdiff.py A.apk B.apk", file=sys.stderr)
        return 2
    a, b = (Path(x).read_bytes() for x in argv)
    if a == b:
        print(f"identical: {len(a)} bytes")
        return 0
    ea, eb = apkcheck.parse_zip(a), apkcheck.parse_zip(b)
    na, nb = [e.name for e in ea], [e.name for e in eb]
    for n in sorted(set(na) - set(nb)):
        print(f"only in {argv[0]}: {n}")
    for n in sorted(set(nb) - set(na)):
        print(f"only in {argv[1]}: {n}")
    common = [n for n in na if n in set(nb)]
    if common != [n for n in nb if n in set(na)]:
        print("entry order differs")
    by_b = {e.name: e for e in eb}
    differing = 0
    for e in ea:
        if e.name not in by_b:
            continue
        f = by_b[e.name]
        ha, hb = local_header(a, e), local_header(b, f)
        fields = [k for k in ha if ha[k] != hb[k]]
        content = apkcheck.entry_bytes(a, e) != apkcheck.entry_bytes(b, f)
        if fields or content:
            differing += 1
            what = ", ".join(f"{k} {ha[k]} != {hb[k]}" for k in fields if k != "extra")
            if "extra" in fields:
                what += (", " if what else "") + "extra field"
            if content:
                what += (", " if what else "") + "content"
            print(f"differs: {e.name}: {what}")
    if not differing and set(na) == set(nb):
        print(f"entries identical; the bytes differ elsewhere (central directory or end record): "
              f"{len(a)} vs {len(b)} bytes")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
