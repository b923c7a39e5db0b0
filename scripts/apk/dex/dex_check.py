#!/usr/bin/env python3
"""Checks the output of build-dex.sh: the classes the dex files define, the
Java resources (META-INF/services) that must name defined classes, and the
JNA native libraries.

  dex_check.py DEX_DIR JAVA_RES_DIR JNA_DIR CLASS... 

CLASS is a dotted class name that must be defined by one of DEX_DIR/classes*.dex,
or a prefix ending in '.' (e.g. app.dotcore.ffi.) of which at least one
class must be. Reads the dex format directly: header fields and the
string_ids / type_ids / class_defs tables (Android's "Dalvik Executable
format" document, source.android.com/docs/core/runtime/dex-format).
"""

import glob
import os
import struct
import sys

# e_machine of each ABI's libraries (ELF specification values).
ABI_MACHINE = {"arm64-v8a": 183, "x86_64": 62, "armeabi-v7a": 40}


def uleb128(data, p):
    result = shift = 0
    while True:
        b = data[p]
        p += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, p
        shift += 7


def defined_classes(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"dex\n":
        raise SystemExit(f"dex_check: {path} is not a dex file")
    string_ids_off = struct.unpack_from("<I", data, 0x3C)[0]
    type_ids_off = struct.unpack_from("<I", data, 0x44)[0]
    class_defs_size, class_defs_off = struct.unpack_from("<II", data, 0x60)

    def string(i):
        off = struct.unpack_from("<I", data, string_ids_off + 4 * i)[0]
        _, p = uleb128(data, off)
        end = data.index(b"\0", p)
        return data[p:end].decode("utf-8", "replace")

    names = set()
    for k in range(class_defs_size):
        type_idx = struct.unpack_from("<I", data, class_defs_off + 32 * k)[0]
        desc = string(struct.unpack_from("<I", data, type_ids_off + 4 * type_idx)[0])
        names.add(desc[1:-1].replace("/", "."))
    return names


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    dex_dir, res_dir, jna_dir, wanted = argv[0], argv[1], argv[2], argv[3:]
    problems = []
    dexes = sorted(glob.glob(os.path.join(dex_dir, "classes*.dex")))
    if not dexes:
        problems.append(f"no classes*.dex in {dex_dir}")
    classes = set()
    for d in dexes:
        here = defined_classes(d)
        dup = classes & here
        if dup:
            problems.append(f"{d} redefines {sorted(dup)[:3]}")
        classes |= here
    for w in wanted:
        if w.endswith("."):
            if not any(c.startswith(w) for c in classes):
                problems.append(f"no class {w}* in the dex")
        elif w not in classes:
            problems.append(f"class {w} missing from the dex")
    services = sorted(glob.glob(os.path.join(res_dir, "META-INF", "services", "*")))
    if not services:
        problems.append(f"no META-INF/services in {res_dir} (coroutines' Dispatchers.Main needs one)")
    for s in services:
        with open(s) as f:
            for line in f:
                impl = line.split("#", 1)[0].strip()
                if impl and impl not in classes:
                    problems.append(f"{os.path.relpath(s, res_dir)} names {impl}, which the dex lacks")
    for abi, machine in ABI_MACHINE.items():
        lib = os.path.join(jna_dir, abi, "libjnidispatch.so")
        try:
            with open(lib, "rb") as f:
                head = f.read(20)
        except OSError:
            problems.append(f"{lib} missing")
            continue
        if head[:4] != b"\x7fELF" or struct.unpack_from("<H", head, 18)[0] != machine:
            problems.append(f"{lib} is not an ELF library for {abi}")
    for p in problems:
        print(f"dex_check: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"    {len(dexes)} dex file(s), {len(classes)} classes, {len(services)} service file(s), "
          f"JNA for {', '.join(ABI_MACHINE)}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
