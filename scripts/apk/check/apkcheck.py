#!/usr/bin/env python3
"""Structural checks of a built dotcore APK (run by check-apk.sh).

    apkcheck.py APK --abis arm64-v8a,x86_64 --bindings dotcore_ffi.kt
                [--manifest-source android/app/src/main/AndroidManifest.xml]
                [--symbols scripts/apk/bionic/symbols.tsv]
                [--min-sdk 26] [--target-sdk 36] [--page-align 16384]
                [--skip-signature]

Every check prints PASS or FAIL with what it looked at; the last line is
"N passed, N failed" and the exit status is 1 when anything failed.

The zip, ELF and dex files are parsed here with the standard library only:
  * zip: PKWARE APPNOTE.TXT 4.3.7 (local file header, 30 fixed bytes, then
    name and extra field), 4.3.12 (central directory), 4.3.16 (end record);
  * ELF: the System V gABI (ELF header, program headers, section headers,
    .dynsym/.dynstr/.dynamic) and the LSB's symbol versioning sections
    (.gnu.version, .gnu.version_r);
  * dex: https://source.android.com/docs/core/runtime/dex-format (header,
    string_ids, type_ids, class_defs).
aapt2 (dump badging, dump xmltree) and apksigner (verify) come from Debian.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from pathlib import Path

ANDROID_NS = "{http://schemas.android.com/apk/res/android}"

# ABI folder -> (ELF e_machine, ELF class 1=32-bit 2=64-bit).
# e_machine values: EM_386 3, EM_ARM 40, EM_X86_64 62, EM_AARCH64 183.
ABI_ELF = {
    "arm64-v8a": (183, 2),
    "armeabi-v7a": (40, 1),
    "x86_64": (62, 2),
    "x86": (3, 1),
}

# Libraries an app may link against at API 26: the NDK's stable native
# APIs (developer.android.com/ndk/guides/stable_apis) as listed in AOSP's
# system/core/rootdir/etc/public.libraries.android.txt for Android 8.0.
NDK_PUBLIC_LIBS_API26 = {
    "libaaudio.so", "libandroid.so", "libc.so", "libcamera2ndk.so",
    "libdl.so", "libEGL.so", "libGLESv1_CM.so", "libGLESv2.so",
    "libGLESv3.so", "libjnigraphics.so", "liblog.so", "libm.so",
    "libmediandk.so", "libnativewindow.so", "libOpenMAXAL.so",
    "libOpenSLES.so", "libstdc++.so", "libsync.so", "libvulkan.so",
    "libz.so",
}

ENGINE_LIB = "libdotcore_ffi.so"
JNA_LIB = "libjnidispatch.so"
JNI_ENTRY = "Java_app_dotcore_ffi_DotCore_nativeInit"

# Classes the dex must define besides the manifest's components. The
# platform verifier's two are the ones rustls-platform-verifier's Rust half
# looks up through JNI (its src/android.rs); DotCore/DotEngine are the
# bindings' entry points; Native is JNA's.
REQUIRED_CLASSES = [
    "app.dotcore.ffi.DotCore",
    "app.dotcore.ffi.DotEngine",
    "com.sun.jna.Native",
    "kotlinx.coroutines.Dispatchers",
    "kotlinx.coroutines.CoroutineScope",
    "org.rustls.platformverifier.CertificateVerifier",
    "org.rustls.platformverifier.VerificationResult",
]


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        tag = "PASS" if ok else "FAIL"
        print(f"{tag}: {what}" + (f" — {detail}" if detail else ""), flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok

    def note(self, text: str) -> None:
        print(f"NOTE: {text}", flush=True)


# ---------------------------------------------------------------- zip

@dataclass
class ZipEntry:
    name: str
    method: int
    crc: int
    csize: int
    usize: int
    lfh_offset: int
    data_offset: int


class ZipError(Exception):
    pass


def parse_zip(blob: bytes) -> list[ZipEntry]:
    eocd = blob.rfind(b"PK\x05\x06", max(0, len(blob) - 65557))
    if eocd < 0:
        raise ZipError("no end of central directory record")
    _, disk, cd_disk, _, total, cd_size, cd_off, _ = struct.unpack_from("<IHHHHIIH", blob, eocd)
    if disk or cd_disk or cd_off == 0xFFFFFFFF:
        raise ZipError("multi-disk or zip64 archives are not APKs we build")
    entries = []
    pos = cd_off
    for _ in range(total):
        if blob[pos:pos + 4] != b"PK\x01\x02":
            raise ZipError(f"bad central directory record at {pos}")
        (method, _t, _d, crc, csize, usize, nlen, xlen, clen) = struct.unpack_from(
            "<HHHIIIHHH", blob, pos + 10)
        lfh = struct.unpack_from("<I", blob, pos + 42)[0]
        name = blob[pos + 46:pos + 46 + nlen].decode("utf-8")
        if blob[lfh:lfh + 4] != b"PK\x03\x04":
            raise ZipError(f"{name}: no local header at {lfh}")
        lnlen, lxlen = struct.unpack_from("<HH", blob, lfh + 26)
        data = lfh + 30 + lnlen + lxlen
        entries.append(ZipEntry(name, method, crc, csize, usize, lfh, data))
        pos += 46 + nlen + xlen + clen
    return entries


def entry_bytes(blob: bytes, e: ZipEntry) -> bytes:
    raw = blob[e.data_offset:e.data_offset + e.csize]
    if e.method == 0:
        return raw
    if e.method == 8:
        return zlib.decompress(raw, -15)
    raise ZipError(f"{e.name}: compression method {e.method} unsupported")


# ---------------------------------------------------------------- ELF

@dataclass
class Elf:
    elf_class: int
    machine: int
    load_aligns: list[int]
    needed: list[str]
    # (name, defined, weak, version library, version node)
    dynsyms: list[tuple[str, bool, bool, str, str]] = field(default_factory=list)


class ElfError(Exception):
    pass


def cstr(blob: bytes, off: int) -> str:
    end = blob.index(b"\0", off)
    return blob[off:end].decode("utf-8", "replace")


def parse_elf(b: bytes) -> Elf:
    if b[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    cls, data = b[4], b[5]
    if data != 1 or cls not in (1, 2):
        raise ElfError(f"unsupported ELF class {cls} / data encoding {data}")
    is64 = cls == 2
    machine = struct.unpack_from("<H", b, 18)[0]
    if is64:
        phoff, shoff = struct.unpack_from("<QQ", b, 32)
        phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", b, 54)
    else:
        phoff, shoff = struct.unpack_from("<II", b, 28)
        phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", b, 42)
    aligns = []
    for i in range(phnum):
        o = phoff + i * phentsize
        if is64:
            p_type = struct.unpack_from("<I", b, o)[0]
            p_align = struct.unpack_from("<Q", b, o + 48)[0]
        else:
            p_type = struct.unpack_from("<I", b, o)[0]
            p_align = struct.unpack_from("<I", b, o + 28)[0]
        if p_type == 1:  # PT_LOAD
            aligns.append(p_align)
    sections = []
    for i in range(shnum):
        o = shoff + i * shentsize
        if is64:
            _n, typ, _f, _a, off, size, link, _i, _al, ent = struct.unpack_from("<IIQQQQIIQQ", b, o)
        else:
            _n, typ, _f, _a, off, size, link, _i, _al, ent = struct.unpack_from("<IIIIIIIIII", b, o)
        sections.append((typ, off, size, link, ent))
    elf = Elf(cls, machine, aligns, [])
    if not sections:
        raise ElfError("no section headers (cannot read dynamic symbols)")
    by_type = {}
    for s in sections:
        by_type.setdefault(s[0], s)
    if 11 not in by_type or 6 not in by_type:
        raise ElfError("no .dynsym or .dynamic section")
    # .dynamic: DT_NEEDED strings
    _, doff, dsize, dlink, _ = by_type[6]
    dynstr_off = sections[dlink][1]
    step = 16 if is64 else 8
    for o in range(doff, doff + dsize, step):
        tag, val = struct.unpack_from("<qQ" if is64 else "<iI", b, o)
        if tag == 0:
            break
        if tag == 1:
            elf.needed.append(cstr(b, dynstr_off + val))
    # .gnu.version_r: version index -> (file, node)
    vers: dict[int, tuple[str, str]] = {}
    if 0x6FFFFFFE in by_type:
        _, voff, _, vlink, _ = by_type[0x6FFFFFFE]
        vstr = sections[vlink][1]
        o = voff
        while True:
            _ver, cnt, vfile, vaux, vnext = struct.unpack_from("<HHIII", b, o)
            a = o + vaux
            for _ in range(cnt):
                _h, _fl, other, vname, anext = struct.unpack_from("<IHHII", b, a)
                vers[other] = (cstr(b, vstr + vfile), cstr(b, vstr + vname))
                a += anext
            if vnext == 0:
                break
            o += vnext
    versym = by_type.get(0x6FFFFFFF)
    _, soff, ssize, slink, sent = by_type[11]
    sstr = sections[slink][1]
    sent = sent or (24 if is64 else 16)
    for idx in range(1, ssize // sent):
        o = soff + idx * sent
        if is64:
            st_name, st_info, _oth, shndx = struct.unpack_from("<IBBH", b, o)
        else:
            st_name = struct.unpack_from("<I", b, o)[0]
            st_info, _oth, shndx = struct.unpack_from("<BBH", b, o + 12)
        name = cstr(b, sstr + st_name)
        bind = st_info >> 4
        vi = struct.unpack_from("<H", b, versym[1] + 2 * idx)[0] & 0x7FFF if versym else 1
        lib, node = vers.get(vi, ("", ""))
        elf.dynsyms.append((name, shndx != 0, bind == 2, lib, node))
    return elf


# ---------------------------------------------------------------- dex

def uleb128(b: bytes, o: int) -> tuple[int, int]:
    val = shift = 0
    while True:
        byte = b[o]
        o += 1
        val |= (byte & 0x7F) << shift
        if byte < 0x80:
            return val, o
        shift += 7


def dex_header_ok(b: bytes) -> str:
    """Empty string when magic, file size, checksum and SHA-1 agree."""
    if len(b) < 0x70 or b[:4] != b"dex\n":
        return "no dex magic"
    checksum = struct.unpack_from("<I", b, 8)[0]
    size = struct.unpack_from("<I", b, 32)[0]
    if size != len(b):
        return f"file_size {size} != {len(b)} bytes"
    if zlib.adler32(b[12:]) != checksum:
        return "adler32 checksum mismatch"
    if hashlib.sha1(b[32:]).digest() != b[12:32]:
        return "SHA-1 signature mismatch"
    return ""


def dex_defined_classes(b: bytes) -> set[str]:
    """Descriptors (Lpkg/Name;) of the classes this dex defines."""
    sid_size, sid_off, tid_size, tid_off = struct.unpack_from("<IIII", b, 56)
    cdef_size, cdef_off = struct.unpack_from("<II", b, 96)

    def string(i: int) -> str:
        data_off = struct.unpack_from("<I", b, sid_off + 4 * i)[0]
        _, start = uleb128(b, data_off)
        return b[start:b.index(b"\0", start)].decode("utf-8", "replace")

    out = set()
    for c in range(cdef_size):
        type_idx = struct.unpack_from("<I", b, cdef_off + 32 * c)[0]
        if type_idx >= tid_size:
            continue
        desc_idx = struct.unpack_from("<I", b, tid_off + 4 * type_idx)[0]
        if desc_idx < sid_size:
            out.add(string(desc_idx))
    return out


def descriptor(java_name: str) -> str:
    return "L" + java_name.replace(".", "/") + ";"


# ---------------------------------------------------------------- sources

def manifest_source(path: Path) -> tuple[list[str], list[str]]:
    """(permissions, fully qualified component class names)."""
    root = ET.parse(path).getroot()
    perms = [e.get(ANDROID_NS + "name", "") for e in root.iter("uses-permission")]
    package = root.get("package") or "app.dotcore"
    comps = []
    app = root.find("application")
    if app is not None:
        for el in [app, *app]:
            if el.tag in ("application", "activity", "service", "receiver", "provider"):
                n = el.get(ANDROID_NS + "name")
                if n:
                    comps.append(package + n if n.startswith(".") else n)
    return perms, comps


def bindings_symbols(path: Path) -> list[str]:
    text = path.read_text()
    names = re.findall(r"\bexternal\s+fun\s+`?([A-Za-z0-9_]+)", text)
    return sorted({n for n in names if n.startswith(("uniffi_", "ffi_dotcore_ffi_"))})


@dataclass
class BionicSym:
    library: str
    version: str
    api: int
    kind: str
    arches: str


def read_symbols_tsv(path: Path) -> dict[tuple[str, str], list[BionicSym]]:
    table: dict[tuple[str, str], list[BionicSym]] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 5:
            raise ValueError(f"{path}:{n}: expected >= 5 tab-separated columns")
        lib, sym, node, api, kind = cols[:5]
        arches = cols[5] if len(cols) > 5 else ""
        try:
            api_n = int(api)
        except ValueError:
            if n == 1 or api == "introduced_api":
                continue  # a header row
            raise ValueError(f"{path}:{n}: introduced_api {api!r} is not a number")
        table.setdefault((lib, sym), []).append(BionicSym(lib, node, api_n, kind, arches))
    return table


def arch_of(abi: str) -> str:
    return {"arm64-v8a": "arm64", "armeabi-v7a": "arm", "x86_64": "x86_64", "x86": "x86"}[abi]


# ---------------------------------------------------------------- checks

def run(cmd: list[str]) -> tuple[int, str]:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        return 127, f"{cmd[0]}: not installed"
    return p.returncode, p.stdout + p.stderr


def check_badging(r: Report, apk: Path, a: argparse.Namespace, perms: list[str]) -> None:
    rc, out = run(["aapt2", "dump", "badging", str(apk)])
    if not r.check(rc == 0, "aapt2 dump badging runs", "" if rc == 0 else out.strip()[-300:]):
        return
    pkg = re.search(r"^package: name='([^']*)'", out, re.M)
    r.check(bool(pkg) and pkg.group(1) == "app.dotcore", "package name is app.dotcore",
            f"found {pkg.group(1) if pkg else 'none'}")
    sdk = re.search(r"^(?:min)?[sS]dkVersion:'(\d+)'", out, re.M)
    r.check(bool(sdk) and sdk.group(1) == str(a.min_sdk), f"sdkVersion {a.min_sdk}",
            f"found {sdk.group(1) if sdk else 'none'}")
    tsdk = re.search(r"^targetSdkVersion:'(\d+)'", out, re.M)
    r.check(bool(tsdk) and tsdk.group(1) == str(a.target_sdk), f"targetSdkVersion {a.target_sdk}",
            f"found {tsdk.group(1) if tsdk else 'none'}")
    act = re.search(r"^launchable-activity: name='([^']*)'", out, re.M)
    r.check(bool(act) and act.group(1) == "app.dotcore.MainActivity",
            "launchable activity app.dotcore.MainActivity", f"found {act.group(1) if act else 'none'}")
    nc = re.search(r"^native-code: (.*)$", out, re.M)
    found_abis = sorted(re.findall(r"'([^']*)'", nc.group(1))) if nc else []
    r.check(found_abis == sorted(a.abis), f"native-code is exactly {','.join(sorted(a.abis))}",
            f"found {','.join(found_abis) or 'none'}")
    got = set(re.findall(r"^uses-permission: name='([^']*)'", out, re.M))
    missing = sorted(set(perms) - got)
    extra = sorted(got - set(perms))
    r.check(not missing and not extra,
            f"permissions match the source manifest ({len(perms)})",
            f"missing {missing} extra {extra}" if missing or extra else ", ".join(sorted(got)))


def check_vpn_service(r: Report, apk: Path) -> None:
    rc, out = run(["aapt2", "dump", "xmltree", "--file", "AndroidManifest.xml", str(apk)])
    if not r.check(rc == 0, "aapt2 dump xmltree AndroidManifest.xml runs",
                   "" if rc == 0 else out.strip()[-300:]):
        return
    # Cut the tree into <service> blocks by indentation.
    blocks, cur, depth = [], None, 0
    for line in out.splitlines():
        ind = len(line) - len(line.lstrip())
        s = line.strip()
        if s.startswith("E: service"):
            cur, depth = [], ind
            blocks.append(cur)
            continue
        if cur is not None:
            if s.startswith("E: ") and ind <= depth:
                cur = None
            else:
                cur.append(s)
    svc = None
    for b in blocks:
        text = "\n".join(b)
        if re.search(r'android:name\([^)]*\)="[^"]*DotVpnService"', text):
            svc = text
    if not r.check(svc is not None, "manifest declares the DotVpnService service"):
        return
    r.check('="android.permission.BIND_VPN_SERVICE"' in svc, "DotVpnService requires BIND_VPN_SERVICE")
    r.check('="android.net.VpnService"' in svc and "E: action" in svc,
            "DotVpnService has the android.net.VpnService intent action")
    fgs = re.search(r"android:foregroundServiceType\([^)]*\)=(\S+)", svc)
    r.check(bool(fgs) and fgs.group(1) not in ("0", "0x0"),
            "DotVpnService has a foreground-service type", f"value {fgs.group(1) if fgs else 'none'}")


def check_signature(r: Report, apk: Path, blob: bytes) -> None:
    rc, out = run(["apksigner", "verify", "--verbose", str(apk)])
    r.check(rc == 0, "apksigner verify passes", "" if rc == 0 else out.strip()[-400:])
    v2 = re.search(r"Verified using v2 scheme \(APK Signature Scheme v2\): (\w+)", out)
    r.check(bool(v2) and v2.group(1) == "true", "signed with APK Signature Scheme v2")
    v3 = re.search(r"Verified using v3 scheme \(APK Signature Scheme v3\): (\w+)", out)
    r.check(bool(v3) and v3.group(1) == "true", "signed with APK Signature Scheme v3")
    # The v2/v3 block sits right before the central directory (magic at its end).
    eocd = blob.rfind(b"PK\x05\x06")
    cd_off = struct.unpack_from("<I", blob, eocd + 16)[0]
    r.check(blob[cd_off - 16:cd_off] == b"APK Sig Block 42",
            "APK Signing Block precedes the central directory")


def check_layout(r: Report, entries: list[ZipEntry], a: argparse.Namespace) -> None:
    sos = [e for e in entries if e.name.endswith(".so")]
    bad_c = [e.name for e in sos if e.method != 0]
    r.check(bool(sos) and not bad_c, f"every .so is stored uncompressed ({len(sos)})",
            f"deflated: {bad_c}" if bad_c else "")
    bad_a = [f"{e.name}@{e.data_offset}" for e in sos if e.data_offset % a.page_align]
    r.check(bool(sos) and not bad_a, f"every .so starts at a {a.page_align}-aligned data offset",
            f"misaligned: {bad_a}" if bad_a else ", ".join(f"{e.name}@{e.data_offset}" for e in sos))
    arsc = [e for e in entries if e.name == "resources.arsc"]
    r.check(len(arsc) == 1 and arsc[0].method == 0 and arsc[0].data_offset % 4 == 0,
            "resources.arsc is stored and 4-byte aligned",
            f"method {arsc[0].method} offset {arsc[0].data_offset}" if arsc else "missing")
    bad4 = [e.name for e in entries if e.method == 0 and e.data_offset % 4]
    r.check(not bad4, "every stored entry is 4-byte aligned", f"misaligned: {bad4}" if bad4 else "")
    r.check(bool(entries) and entries[0].name == "AndroidManifest.xml",
            "AndroidManifest.xml is the first entry", f"first is {entries[0].name if entries else 'none'}")
    abis_in_zip = sorted({e.name.split("/")[1] for e in entries
                          if e.name.startswith("lib/") and e.name.count("/") == 2})
    r.check(abis_in_zip == sorted(a.abis), f"lib/ holds exactly the ABIs {','.join(sorted(a.abis))}",
            f"found {','.join(abis_in_zip) or 'none'}")
    names = {e.name for e in entries}
    for abi in a.abis:
        for lib in (ENGINE_LIB, JNA_LIB):
            r.check(f"lib/{abi}/{lib}" in names, f"lib/{abi}/{lib} is present")


def check_elf(r: Report, name: str, elf: Elf, a: argparse.Namespace,
              table: dict | None, exports: list[str]) -> None:
    abi = name.split("/")[1]
    lib = name.rsplit("/", 1)[1]
    want = ABI_ELF.get(abi)
    if not r.check(want is not None, f"{name}: ABI folder {abi} is a known Android ABI"):
        return
    r.check((elf.machine, elf.elf_class) == want, f"{name}: e_machine/class match {abi}",
            f"e_machine {elf.machine} class {elf.elf_class}, want {want[0]} class {want[1]}")
    small = [x for x in elf.load_aligns if x < a.page_align]
    r.check(bool(elf.load_aligns) and not small, f"{name}: every PT_LOAD p_align >= {a.page_align}",
            "p_align " + ",".join(hex(x) for x in elf.load_aligns))
    bad_needed = [n for n in elf.needed if n not in NDK_PUBLIC_LIBS_API26]
    r.check(not bad_needed, f"{name}: DT_NEEDED only NDK public libraries",
            f"not public: {bad_needed}" if bad_needed else ", ".join(elf.needed))
    if lib != ENGINE_LIB:
        return
    defined = {s[0] for s in elf.dynsyms if s[1]}
    missing = [s for s in exports if s not in defined]
    r.check(not missing, f"{name}: exports the {len(exports)} UniFFI symbols the Kotlin bindings call",
            f"missing: {missing[:8]}{' ...' if len(missing) > 8 else ''}" if missing else "")
    r.check(JNI_ENTRY in defined, f"{name}: exports {JNI_ENTRY}")
    if table is None:
        return
    check_imports(r, name, elf, table, arch_of(abi), a.min_sdk)


def check_imports(r: Report, name: str, elf: Elf, table: dict, arch: str, min_sdk: int) -> None:
    problems, weak_new = [], []
    needed_libs = elf.needed
    imports = [s for s in elf.dynsyms if not s[1]]
    for sym, _d, weak, lib, node in imports:
        if not lib and weak:
            # A weak reference the API-26 stubs do not define stays
            # unversioned at link time; it binds at run time if present.
            rows = [x for n in needed_libs for x in table.get((n, sym), [])
                    if not x.arches or arch in x.arches.split(",")]
            if rows:
                weak_new.append(f"{sym} (unversioned, {rows[0].library} {rows[0].version} "
                                f"from API {min(x.api for x in rows)})")
            else:
                problems.append(f"{sym} (weak, unversioned, in no DT_NEEDED library's list)")
            continue
        if not lib:
            problems.append(f"{sym} (strong import without a version node)")
            continue
        rows = [x for x in table.get((lib, sym), [])
                if not x.arches or arch in x.arches.split(",")]
        if not rows:
            problems.append(f"{sym}@{node} ({lib}: not in the list)")
            continue
        row = next((x for x in rows if x.version == node), None)
        if row is None:
            problems.append(f"{sym}@{node} ({lib}: list says {rows[0].version})")
        elif row.api > min_sdk:
            if weak:
                weak_new.append(f"{sym}@{node} (API {row.api})")
            else:
                problems.append(f"{sym}@{node} strong but introduced at API {row.api}")
    r.check(bool(imports) and not problems,
            f"{name}: all {len(imports)} imports are in the API-{min_sdk} bionic lists "
            "(strong ones with their version node)",
            "; ".join(problems[:10]) + (" ..." if len(problems) > 10 else ""))
    if weak_new:
        r.note(f"{name}: weak imports not in the API-{min_sdk} stubs (null until the device has "
               "them; the code must check): " + ", ".join(weak_new))


def read_mapping(path: Path) -> dict[str, str]:
    """R8 mapping.txt: original class name -> name in the dex; classes R8
    removed map to ""."""
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^(\S+) -> (\S+):$", line)
        if m:
            out[m.group(1)] = "" if m.group(2).startswith("R8$$REMOVED") else m.group(2)
    return out


def check_dex(r: Report, blob: bytes, entries: list[ZipEntry], components: list[str],
              mapping: dict[str, str]) -> None:
    dexes = [e for e in entries if re.fullmatch(r"classes\d*\.dex", e.name)]
    if not r.check(bool(dexes), "the APK has classes*.dex", ", ".join(e.name for e in dexes)):
        return
    classes: set[str] = set()
    for e in dexes:
        data = entry_bytes(blob, e)
        err = dex_header_ok(data)
        r.check(not err, f"{e.name}: dex header (magic, size, checksum, SHA-1) is consistent", err)
        if not err:
            classes |= dex_defined_classes(data)
    r.note(f"the dex files define {len(classes)} classes")
    def has(cls: str) -> tuple[bool, str]:
        dex_name = mapping.get(cls, cls)
        if not dex_name:
            return False, "removed by R8 (mapping)"
        return descriptor(dex_name) in classes, "" if dex_name == cls else f"as {dex_name}"

    for cls in components:
        r.check(*_swap(has(cls), f"dex defines {cls} (named in the manifest)"))
    for cls in REQUIRED_CLASSES:
        r.check(*_swap(has(cls), f"dex defines {cls}"))


def _swap(res: tuple[bool, str], what: str) -> tuple[bool, str, str]:
    return res[0], what, res[1]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("apk", type=Path)
    p.add_argument("--abis", required=True)
    p.add_argument("--bindings", type=Path, required=True)
    root = Path(__file__).resolve().parents[3]
    p.add_argument("--manifest-source", type=Path,
                   default=root / "android/app/src/main/AndroidManifest.xml")
    p.add_argument("--symbols", type=Path, default=root / "scripts/apk/bionic/symbols.tsv")
    p.add_argument("--min-sdk", type=int, default=26)
    p.add_argument("--target-sdk", type=int, default=36)
    p.add_argument("--page-align", type=int, default=16384)
    p.add_argument("--mapping", type=Path,
                   help="R8 mapping.txt of a shrunk build: class names are looked up through it")
    p.add_argument("--skip-signature", action="store_true",
                   help="for unsigned APKs: leave out the apksigner checks")
    a = p.parse_args(argv)
    a.abis = [x for x in a.abis.split(",") if x]
    r = Report()
    blob = a.apk.read_bytes()
    try:
        entries = parse_zip(blob)
    except ZipError as e:
        r.check(False, f"{a.apk} parses as a zip", str(e))
        return finish(r)
    r.check(True, f"{a.apk} parses as a zip", f"{len(entries)} entries, {len(blob)} bytes")
    perms, components = manifest_source(a.manifest_source)
    exports = bindings_symbols(a.bindings)
    r.check(len(exports) > 0, f"the bindings {a.bindings} declare UniFFI symbols", f"{len(exports)}")
    table = None
    if r.check(a.symbols.is_file(), f"bionic symbol list {a.symbols} exists"):
        try:
            table = read_symbols_tsv(a.symbols)
        except ValueError as e:
            r.check(False, "bionic symbol list parses", str(e))
    check_badging(r, a.apk, a, perms)
    check_vpn_service(r, a.apk)
    if not a.skip_signature:
        check_signature(r, a.apk, blob)
    check_layout(r, entries, a)
    for e in entries:
        if e.name.startswith("lib/") and e.name.endswith(".so"):
            try:
                elf = parse_elf(entry_bytes(blob, e))
            except (ElfError, ZipError, struct.error, ValueError, zlib.error) as ex:
                r.check(False, f"{e.name}: parses as ELF", str(ex))
                continue
            check_elf(r, e.name, elf, a, table, exports)
    mapping = read_mapping(a.mapping) if a.mapping else {}
    check_dex(r, blob, entries, components, mapping)
    return finish(r)


def finish(r: Report) -> int:
    print(f"{r.passed} passed, {r.failed} failed")
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
