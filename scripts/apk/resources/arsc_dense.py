#!/usr/bin/env python3
"""Rewrite an Android resource table (resources.arsc) into the dense layout
that older readers such as Debian's aapt2 (Android 10) understand.

Android 16's framework table (inside org.robolectric:android-all) stores its
ResTable_type chunks with layouts added after Android 10:

  * FLAG_SPARSE (0x01): the offset array holds only the defined entries, as
    ResTable_sparseTypeEntry (uint16 entry index, uint16 offset / 4);
  * FLAG_OFFSET16 (0x02): a dense array of uint16 offsets / 4, 0xffff being
    NO_ENTRY;
  * compact entries (ResTable_entry flag FLAG_COMPACT, 0x08): an 8-byte entry
    whose uint16 key, dataType (high byte of flags) and uint32 data replace
    the full ResTable_entry + Res_value pair.

This tool rewrites every type chunk as a dense one (flags 0, one uint32
offset per entry of the type, NO_ENTRY = 0xffffffff) with full entries
(ResTable_entry + Res_value, or ResTable_map_entry + ResTable_map[] copied
as they are).  Every other chunk (string pools, type specs, library, staged
alias, overlayable ...) is copied byte for byte.  Layout source:
frameworks/base/libs/androidfw/include/androidfw/ResourceTypes.h (see
docs/android.md for the exact revision).

The reader (read_table) is also what test_arsc_dense.py uses to compare the
original and the rewritten table entry by entry.

Usage:
  arsc_dense.py IN.arsc OUT.arsc
  arsc_dense.py --framework-apk ANDROID_ALL.jar OUT.apk
      (an APK-like zip for `aapt2 link -I`: the jar's AndroidManifest.xml
      and its resources.arsc rewritten dense; fixed timestamps and order,
      so the same jar always gives the same bytes)
"""

import os
import struct
import sys
import zipfile

RES_STRING_POOL_TYPE = 0x0001
RES_TABLE_TYPE = 0x0002
RES_TABLE_PACKAGE_TYPE = 0x0200
RES_TABLE_TYPE_TYPE = 0x0201
RES_TABLE_TYPE_SPEC_TYPE = 0x0202

FLAG_SPARSE = 0x01
FLAG_OFFSET16 = 0x02
KNOWN_TYPE_FLAGS = FLAG_SPARSE | FLAG_OFFSET16

ENTRY_FLAG_COMPLEX = 0x0001
ENTRY_FLAG_COMPACT = 0x0008

NO_ENTRY = 0xFFFFFFFF
TYPE_STRING = 0x03

# ResTable_type without its ResTable_config: header(8) id flags reserved
# entryCount entriesStart.
TYPE_FIXED = 20


class ArscError(Exception):
    pass


def chunk_header(data, off, end, what):
    if off + 8 > end:
        raise ArscError(f"{what} at 0x{off:x}: truncated chunk header")
    ctype, hsize, size = struct.unpack_from("<HHI", data, off)
    if hsize < 8 or size < hsize or off + size > end:
        raise ArscError(
            f"{what} at 0x{off:x}: bad chunk (type 0x{ctype:04x}, header {hsize}, "
            f"size {size}, room {end - off})")
    return ctype, hsize, size


# --- string pools ---------------------------------------------------------------

def _utf8_len(data, p):
    n = data[p]
    if n & 0x80:
        return ((n & 0x7F) << 8) | data[p + 1], p + 2
    return n, p + 1


def _utf16_len(data, p):
    n = struct.unpack_from("<H", data, p)[0]
    if n & 0x8000:
        lo = struct.unpack_from("<H", data, p + 2)[0]
        return ((n & 0x7FFF) << 16) | lo, p + 4
    return n, p + 2


class StringPool:
    """ResStringPool_header: header(8) stringCount styleCount flags
    stringsStart stylesStart, then uint32 offsets. Strings are decoded lazily
    (the framework's global pool holds ~200k strings)."""

    def __init__(self, data, off):
        ctype, hsize, size = chunk_header(data, off, len(data), "string pool")
        if ctype != RES_STRING_POOL_TYPE:
            raise ArscError(f"expected a string pool at 0x{off:x}, found chunk 0x{ctype:04x}")
        count, _styles, flags, strings_start, _ = struct.unpack_from("<IIIII", data, off + 8)
        self.data = data
        self.utf8 = bool(flags & 0x100)
        self.offsets = struct.unpack_from(f"<{count}I", data, off + hsize)
        self.base = off + strings_start
        self.cache = {}

    def __len__(self):
        return len(self.offsets)

    def get(self, i):
        if i in self.cache:
            return self.cache[i]
        if i >= len(self.offsets):
            raise ArscError(f"string index {i} outside a pool of {len(self.offsets)}")
        p = self.base + self.offsets[i]
        d = self.data
        if self.utf8:
            _chars, p = _utf8_len(d, p)
            nbytes, p = _utf8_len(d, p)
            s = d[p:p + nbytes].decode("utf-8", "surrogateescape")
        else:
            n, p = _utf16_len(d, p)
            s = d[p:p + 2 * n].decode("utf-16-le", "surrogatepass")
        self.cache[i] = s
        return s


# --- type chunks ----------------------------------------------------------------

def type_entry_offsets(data, off, hsize, size):
    """(entry index, offset from entriesStart) of every defined entry of the
    ResTable_type chunk at off, whatever its layout."""
    _tid, flags, _res, count, entries_start = struct.unpack_from("<BBHII", data, off + 8)
    if flags & ~KNOWN_TYPE_FLAGS:
        raise ArscError(f"type chunk at 0x{off:x}: unknown flags 0x{flags:02x}")
    arr = off + hsize
    out = []
    if flags & FLAG_SPARSE:
        for k in range(count):
            idx, off4 = struct.unpack_from("<HH", data, arr + 4 * k)
            out.append((idx, off4 * 4))
    elif flags & FLAG_OFFSET16:
        for idx, off4 in enumerate(struct.unpack_from(f"<{count}H", data, arr)):
            if off4 != 0xFFFF:
                out.append((idx, off4 * 4))
    else:
        for idx, o in enumerate(struct.unpack_from(f"<{count}I", data, arr)):
            if o != NO_ENTRY:
                out.append((idx, o))
    base = off + entries_start
    for idx, o in out:
        if o % 4 or base + o + 8 > off + size:
            raise ArscError(f"type chunk at 0x{off:x}: entry {idx} at bad offset 0x{o:x}")
    return out


def entry_span(data, p, chunk_end):
    """Length in bytes of the entry (with its value or map) starting at p."""
    esize, eflags = struct.unpack_from("<HH", data, p)
    if eflags & ENTRY_FLAG_COMPACT:
        return 8
    if eflags & ENTRY_FLAG_COMPLEX:
        count = struct.unpack_from("<I", data, p + 12)[0]
        n = esize + 12 * count
    else:
        n = esize + struct.unpack_from("<H", data, p + esize)[0]
    if p + n > chunk_end:
        raise ArscError(f"entry at 0x{p:x} runs past its type chunk")
    return n


def dense_entry(data, p, chunk_end):
    """The bytes of the entry at p in the full (non-compact) layout."""
    eflags = struct.unpack_from("<H", data, p + 2)[0]
    if eflags & ENTRY_FLAG_COMPACT:
        key, _, value = struct.unpack_from("<HHI", data, p)
        data_type = eflags >> 8
        # Only the low byte holds entry flags; the high byte was the dataType.
        flags = (eflags & 0xFF) & ~ENTRY_FLAG_COMPACT
        return struct.pack("<HHI", 8, flags, key) + struct.pack("<HBBI", 8, 0, data_type, value)
    raw = data[p:p + entry_span(data, p, chunk_end)]
    return raw + b"\0" * (-len(raw) % 4)


def dense_type_chunk(data, off, hsize, size, spec_count):
    """A dense copy of the ResTable_type chunk at off."""
    offsets = type_entry_offsets(data, off, hsize, size)
    _tid, _flags, _res, _count, entries_start = struct.unpack_from("<BBHII", data, off + 8)
    count = spec_count
    if count is None:
        count = max((i for i, _ in offsets), default=-1) + 1
    slots = [NO_ENTRY] * count
    body = bytearray()
    for idx, o in offsets:
        if idx >= count:
            raise ArscError(f"type chunk at 0x{off:x}: entry {idx} beyond the type's {count}")
        slots[idx] = len(body)
        body += dense_entry(data, off + entries_start + o, off + size)
    header = bytearray(data[off:off + hsize])
    new_start = hsize + 4 * count
    struct.pack_into("<HHI", header, 0, RES_TABLE_TYPE_TYPE, hsize, new_start + len(body))
    struct.pack_into("<BBHII", header, 8, header[8], 0, 0, count, new_start)
    return bytes(header) + struct.pack(f"<{count}I", *slots) + bytes(body)


# --- tables ---------------------------------------------------------------------

def package_chunks(data):
    """Yield (offset, header size, size) of each package chunk, after checking
    the table header."""
    ctype, hsize, size = chunk_header(data, 0, len(data), "table")
    if ctype != RES_TABLE_TYPE:
        raise ArscError(f"not a resource table (chunk type 0x{ctype:04x})")
    off = hsize
    while off < size:
        ctype, chs, csz = chunk_header(data, off, size, "top-level chunk")
        yield ctype, off, chs, csz
        off += csz


def densify(data):
    """The table with every type chunk in the dense layout."""
    out = bytearray(data[:12])
    for ctype, off, hsize, size in package_chunks(data):
        if ctype != RES_TABLE_PACKAGE_TYPE:
            out += data[off:off + size]
            continue
        pkg = bytearray(data[off:off + hsize])
        spec_counts = {}
        p = off + hsize
        while p < off + size:
            st, shs, ssz = chunk_header(data, p, off + size, "package sub-chunk")
            if st == RES_TABLE_TYPE_SPEC_TYPE:
                spec_counts[data[p + 8]] = struct.unpack_from("<I", data, p + 12)[0]
                pkg += data[p:p + ssz]
            elif st == RES_TABLE_TYPE_TYPE:
                pkg += dense_type_chunk(data, p, shs, ssz, spec_counts.get(data[p + 8]))
            else:
                pkg += data[p:p + ssz]
            p += ssz
        struct.pack_into("<I", pkg, 4, len(pkg))
        out += pkg
    struct.pack_into("<I", out, 4, len(out))
    return bytes(out)


def read_table(data):
    """Every resource value of the table, layout-independent:
    {(package id, package name, type name, config bytes, entry index,
      entry name): value}, where value is
    ('value', entry flags, dataType, data or string) or
    ('bag', entry flags, parent, ((name, dataType, data or string), ...)).
    Entry flags exclude FLAG_COMPACT (a layout detail). Strings of the
    global pool are resolved, so a changed pool would show."""
    result = {}
    layouts = {}
    gpool = None
    for ctype, off, hsize, size in package_chunks(data):
        if ctype == RES_STRING_POOL_TYPE:
            gpool = StringPool(data, off)
            continue
        if ctype != RES_TABLE_PACKAGE_TYPE:
            continue
        pid = struct.unpack_from("<I", data, off + 8)[0]
        pname = data[off + 12:off + 12 + 256].decode("utf-16-le").split("\0", 1)[0]
        type_strings, _, key_strings = struct.unpack_from("<III", data, off + 268)
        tpool = StringPool(data, off + type_strings)
        kpool = StringPool(data, off + key_strings)

        def val(dtype, d):
            return gpool.get(d) if dtype == TYPE_STRING and gpool is not None else d

        p = off + hsize
        while p < off + size:
            st, shs, ssz = chunk_header(data, p, off + size, "package sub-chunk")
            if st == RES_TABLE_TYPE_TYPE:
                tid, tflags = data[p + 8], data[p + 9]
                layouts[tflags] = layouts.get(tflags, 0) + 1
                tname = tpool.get(tid - 1)
                entries_start = struct.unpack_from("<I", data, p + 16)[0]
                config = bytes(data[p + TYPE_FIXED:p + shs])
                for idx, o in type_entry_offsets(data, p, shs, ssz):
                    e = p + entries_start + o
                    esize, eflags = struct.unpack_from("<HH", data, e)
                    if eflags & ENTRY_FLAG_COMPACT:
                        key = struct.unpack_from("<H", data, e)[0]
                        dtype, d = eflags >> 8, struct.unpack_from("<I", data, e + 4)[0]
                        flags = eflags & 0xFF & ~ENTRY_FLAG_COMPACT
                        value = ("value", flags, dtype, val(dtype, d))
                    elif eflags & ENTRY_FLAG_COMPLEX:
                        key, parent, count = struct.unpack_from("<III", data, e + 4)
                        items = []
                        m = e + esize
                        for _ in range(count):
                            name, _vs, _r0, dtype, d = struct.unpack_from("<IHBBI", data, m)
                            items.append((name, dtype, val(dtype, d)))
                            m += 12
                        value = ("bag", eflags, parent, tuple(items))
                    else:
                        key = struct.unpack_from("<I", data, e + 4)[0]
                        _vs, _r0, dtype, d = struct.unpack_from("<HBBI", data, e + esize)
                        value = ("value", eflags, dtype, val(dtype, d))
                    k = (pid, pname, tname, config, idx, kpool.get(key))
                    if k in result:
                        raise ArscError(f"duplicate entry {k[1]}:{tname}/{k[5]} in one config")
                    result[k] = value
            p += ssz
    return result, layouts


def framework_apk(jar_path, out_path):
    """An APK-like zip for `aapt2 link -I` from an android-all jar."""
    with zipfile.ZipFile(jar_path) as jar:
        names = set(jar.namelist())
        for need in ("AndroidManifest.xml", "resources.arsc"):
            if need not in names:
                raise ArscError(f"{jar_path} has no {need}: not an android-all jar?")
        manifest = jar.read("AndroidManifest.xml")
        table = densify(jar.read("resources.arsc"))
    tmp = out_path + ".tmp"
    with zipfile.ZipFile(tmp, "w") as z:
        # resources.arsc stored, as in an APK: aapt2 maps it, and warns
        # about a compressed one.
        for name, blob, how in (("AndroidManifest.xml", manifest, zipfile.ZIP_DEFLATED),
                                ("resources.arsc", table, zipfile.ZIP_STORED)):
            info = zipfile.ZipInfo(name, date_time=(2008, 1, 1, 0, 0, 0))
            info.compress_type = how
            info.external_attr = 0o644 << 16
            z.writestr(info, blob)
    os.replace(tmp, out_path)


def main(argv):
    try:
        if len(argv) == 3 and argv[0] == "--framework-apk":
            framework_apk(argv[1], argv[2])
        elif len(argv) == 2 and not argv[0].startswith("-"):
            with open(argv[0], "rb") as f:
                table = densify(f.read())
            with open(argv[1], "wb") as f:
                f.write(table)
        else:
            print(__doc__.split("Usage:", 1)[1], file=sys.stderr)
            return 2
    except (ArscError, OSError, zipfile.BadZipFile, struct.error) as e:
        print(f"arsc_dense: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
