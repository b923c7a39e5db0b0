#!/usr/bin/env python3
"""Stand-in native libraries and dex for the APK checks' self-test, for when
the real ones (hours of cross builds) are not at hand.

    fixture.py --out DIR --bindings dotcore_ffi.kt --abis arm64-v8a,x86_64
               --manifest-source AndroidManifest.xml

  DIR/native/<abi>/libdotcore_ffi.so  built by clang/lld for the ABI, with a
      function for every `external fun` of the bindings plus the JNI entry
      point, linked at 16 KiB pages against a stub libc.so whose version
      script gives its symbols bionic's version node (LIBC), so the imports
      carry .gnu.version_r entries as real NDK links do; getrandom (API 28)
      is not in that stub and is imported weak and unversioned, as Rust's
      std does against the API-26 NDK stubs.
  DIR/dex/classes.dex  a minimal dex (header, string_ids, type_ids,
      class_defs, map_list) defining the manifest's components and the
      classes check-apk.sh requires; no code.

JNA's libjnidispatch.so is not faked: the self-test takes it from JNA's AAR.
"""
from __future__ import annotations

import argparse
import hashlib
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

# No __pycache__ beside the sources (it is not ignored by git).
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import apkcheck  # noqa: E402

TRIPLES = {
    "arm64-v8a": "aarch64-linux-android26",
    "armeabi-v7a": "armv7a-linux-androideabi26",
    "x86_64": "x86_64-linux-android26",
    "x86": "i686-linux-android26",
}

STUB_MAP = """LIBC {
  global: malloc; free; memcpy;
};
"""

STUB_C = """
void *malloc(unsigned long n) { (void)n; return 0; }
void free(void *p) { (void)p; }
void *memcpy(void *d, const void *s, unsigned long n) { (void)s; (void)n; return d; }
"""


def engine_c(symbols: list[str]) -> str:
    lines = [
        "extern void *malloc(unsigned long);",
        "extern void free(void *);",
        "extern void *memcpy(void *, const void *, unsigned long);",
        "extern long getrandom(void *, unsigned long, unsigned) __attribute__((weak));",
        "static char buf[16];",
    ]
    for s in symbols:
        lines.append(f"__attribute__((visibility(\"default\"))) long {s}(void) "
                     "{ void *p = malloc(16); memcpy(p, buf, 16); free(p); "
                     "return getrandom ? getrandom(buf, 16, 0) : 0; }")
    return "\n".join(lines) + "\n"


def sh(cmd: list[str]) -> None:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise SystemExit(f"fixture: {cmd[0]} is not installed (Debian: clang-22 lld-22)")
    if p.returncode:
        raise SystemExit(f"fixture: {' '.join(cmd)} failed:\n{p.stderr}")


def build_so(abi: str, symbols: list[str], out: Path, clang: str) -> None:
    triple = TRIPLES[abi]
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        (tmp / "stub.c").write_text(STUB_C)
        (tmp / "libc.map").write_text(STUB_MAP)
        (tmp / "engine.c").write_text(engine_c(symbols))
        common = [clang, f"--target={triple}", "-fuse-ld=lld", "-shared", "-nostdlib",
                  "-fPIC", "-O0", "-Wl,-z,max-page-size=16384"]
        sh(common + ["-Wl,-soname,libc.so", f"-Wl,--version-script={tmp / 'libc.map'}",
                     str(tmp / "stub.c"), "-o", str(tmp / "libc.so")])
        out.parent.mkdir(parents=True, exist_ok=True)
        sh(common + ["-Wl,-soname,libdotcore_ffi.so", str(tmp / "engine.c"),
                     f"-L{tmp}", "-lc", "-o", str(out)])


def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def build_dex(classes: list[str]) -> bytes:
    """A dex defining `classes` (descriptors); layout per dex-format."""
    strings = sorted(set(classes))
    n = len(strings)
    header_size = 0x70
    sid_off = header_size
    tid_off = sid_off + 4 * n
    cdef_off = tid_off + 4 * n
    data_off = cdef_off + 32 * n
    data = bytearray()
    string_offs = []
    for s in strings:
        string_offs.append(data_off + len(data))
        data += uleb(len(s)) + s.encode() + b"\0"
    while (data_off + len(data)) % 4:
        data += b"\0"
    map_off = data_off + len(data)
    items = [(0x0000, 1, 0), (0x0001, n, sid_off), (0x0002, n, tid_off),
             (0x0006, n, cdef_off), (0x2002, n, string_offs[0]), (0x1000, 1, map_off)]
    data += struct.pack("<I", len(items))
    for typ, size, off in items:
        data += struct.pack("<HHII", typ, 0, size, off)
    body = bytearray()
    body += b"".join(struct.pack("<I", o) for o in string_offs)
    body += b"".join(struct.pack("<I", i) for i in range(n))
    no_index = 0xFFFFFFFF
    for i in range(n):
        body += struct.pack("<IIIIIIII", i, 1, no_index, 0, no_index, 0, 0, 0)
    file_size = data_off + len(data)
    head = bytearray(header_size)
    head[0:8] = b"dex\n035\0"
    struct.pack_into("<IIIIIIII", head, 32, file_size, header_size, 0x12345678, 0, 0, map_off, n, sid_off)
    struct.pack_into("<II", head, 64, n, tid_off)
    struct.pack_into("<II", head, 96, n, cdef_off)
    struct.pack_into("<II", head, 104, len(data), data_off)
    blob = head + body + data
    blob[12:32] = hashlib.sha1(blob[32:]).digest()
    struct.pack_into("<I", blob, 8, zlib.adler32(bytes(blob[12:])))
    return bytes(blob)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--bindings", type=Path, required=True)
    p.add_argument("--abis", required=True)
    p.add_argument("--manifest-source", type=Path, required=True)
    p.add_argument("--clang", default="clang-22")
    a = p.parse_args(argv)
    symbols = apkcheck.bindings_symbols(a.bindings) + [apkcheck.JNI_ENTRY]
    for abi in a.abis.split(","):
        build_so(abi, symbols, a.out / "native" / abi / "libdotcore_ffi.so", a.clang)
    _, components = apkcheck.manifest_source(a.manifest_source)
    classes = [apkcheck.descriptor(c) for c in components + apkcheck.REQUIRED_CLASSES]
    (a.out / "dex").mkdir(parents=True, exist_ok=True)
    (a.out / "dex" / "classes.dex").write_bytes(build_dex(classes))
    print(f"fixture: {len(symbols)} exported symbols, {len(classes)} classes into {a.out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
