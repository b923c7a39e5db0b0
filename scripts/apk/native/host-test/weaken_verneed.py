#!/usr/bin/env python3
"""Mark every symbol-version requirement of an ELF64 little-endian file weak.

    weaken_verneed.py LIB

Used by test-on-host.sh on its copy of the Android library: glibc's loader
refuses a library whose .gnu.version_r asks for a version (bionic's LIBC,
LIBLOG...) that the providing library does not define, unless the
requirement has VER_FLG_WEAK (ELF gABI symbol versioning; glibc
elf/dl-version.c). Field layouts: Elf64_Verneed and Elf64_Vernaux.
"""
import struct
import sys

SHT_GNU_VERNEED = 0x6FFFFFFE
VER_FLG_WEAK = 0x2


def main(path):
    with open(path, "r+b") as f:
        elf = bytearray(f.read())
        if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
            sys.exit(f"{path}: not an ELF64 little-endian file")
        shoff, = struct.unpack_from("<Q", elf, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", elf, 0x3A)
        weakened = 0
        for i in range(shnum):
            sh = shoff + i * shentsize
            sh_type, = struct.unpack_from("<I", elf, sh + 4)
            if sh_type != SHT_GNU_VERNEED:
                continue
            offset, = struct.unpack_from("<Q", elf, sh + 0x18)
            count, = struct.unpack_from("<I", elf, sh + 0x2C)  # sh_info: entries
            need = offset
            for _ in range(count):
                _, cnt, _, aux, nxt = struct.unpack_from("<HHIII", elf, need)
                a = need + aux
                for _ in range(cnt):
                    _, flags, _, _, anext = struct.unpack_from("<IHHII", elf, a)
                    struct.pack_into("<H", elf, a + 4, flags | VER_FLG_WEAK)
                    weakened += 1
                    a += anext
                need += nxt
        if weakened == 0:
            sys.exit(f"{path}: no version requirements found")
        f.seek(0)
        f.write(elf)
    print(f"weaken_verneed: {weakened} version requirements of {path} marked weak", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
