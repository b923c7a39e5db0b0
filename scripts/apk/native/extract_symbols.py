#!/usr/bin/env python3
"""Derive scripts/apk/bionic/symbols.tsv from AOSP's symbol maps.

    extract_symbols.py --source 'libc.so=PATH=ORIGIN' ... > symbols.tsv

Each --source names a library, the map file to read and a free-text origin
(repository, path, commit) that goes into the header. Run by hand when the
maps are refreshed; CI only reads the committed TSV (it cannot reach AOSP).

The tag rules follow what AOSP's NDK stub generator applies to these maps
(build/soong/cc/symbolfile/__init__.py, see docs/android.md):
  * a version block named *_PRIVATE or *_PLATFORM, or tagged platform-only,
    apex, systemapi or llndk, is not part of the NDK: skipped with all its
    symbols; so is a symbol carrying one of those tags;
  * arch tags (arm, arm64, x86, x86_64, riscv64) on a block or a symbol
    restrict it to those arches; no arch tag means every arch;
  * introduced=N applies to every arch, introduced-<arch>=N overrides it for
    that arch; a block's level and a symbol's level both apply (the later
    one wins); no level means the arch's first API level;
  * `var` marks a variable, everything else is a function.
"""
import argparse
import re
import sys

ARCHES = ("arm", "arm64", "x86", "x86_64", "riscv64")
# First API level of each arch: the level of a symbol without an
# introduced tag (bionic's arm/x86 maps use 9 for "always").
FIRST_API = {"arm": 9, "x86": 9, "arm64": 21, "x86_64": 21, "riscv64": 35}
NON_NDK_TAGS = {"platform-only", "apex", "systemapi", "llndk"}


def tags_of(line):
    _, _, comment = line.partition("#")
    return comment.split()


def arches_of(tags):
    named = [t for t in tags if t in ARCHES]
    return set(named) if named else set(ARCHES)


def level_of(tags, arch):
    common = None
    for t in tags:
        if t.startswith("introduced-" + arch + "="):
            return int(t.split("=", 1)[1])
        if t.startswith("introduced="):
            common = int(t.split("=", 1)[1])
    return common


def parse(path):
    """Yields (version, version_tags, symbol, symbol_tags) in map order."""
    version = None
    vtags = []
    global_scope = True
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if "{" in line:
                version = line.split("{", 1)[0].strip()
                vtags = tags_of(line)
                global_scope = True
                continue
            if line.startswith("}"):
                version = None
                continue
            body = line.partition("#")[0].strip()
            if body in ("global:", "local:"):
                global_scope = body == "global:"
                continue
            if version is None:
                sys.exit(f"{path}: symbol outside a version block: {line}")
            if not global_scope:
                continue
            if not body.endswith(";"):
                sys.exit(f"{path}: expected 'symbol;' but read: {line}")
            name = body[:-1].strip()
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                sys.exit(f"{path}: not a C symbol name: {name!r}")
            yield version, vtags, name, tags_of(line)


def rows(library, path):
    out = []
    for version, vtags, name, stags in parse(path):
        if version.endswith("_PRIVATE") or version.endswith("_PLATFORM"):
            continue
        if NON_NDK_TAGS & set(vtags) or NON_NDK_TAGS & set(stags):
            continue
        kind = "variable" if "var" in stags else "function"
        by_level = {}
        for arch in ARCHES:
            if arch not in arches_of(vtags) or arch not in arches_of(stags):
                continue
            levels = [l for l in (level_of(vtags, arch), level_of(stags, arch)) if l is not None]
            level = max(levels) if levels else FIRST_API[arch]
            by_level.setdefault(level, []).append(arch)
        for level, arches in sorted(by_level.items()):
            out.append((library, name, version, str(level), kind, ",".join(arches)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", action="append", required=True,
                    help="LIBRARY=MAP_PATH=ORIGIN")
    args = ap.parse_args()
    header = [
        "# Bionic's NDK symbols: every symbol the NDK stub libraries export at some",
        "# API level, derived from AOSP's symbol maps by",
        "# scripts/apk/native/extract_symbols.py (tag rules: its docstring).",
        "# Sources:",
    ]
    body = []
    for spec in args.source:
        library, path, origin = spec.split("=", 2)
        header.append(f"#   {library}: {origin}")
        body.extend(rows(library, path))
    header += [
        "# Not listed: *_PRIVATE/*_PLATFORM blocks and symbols tagged platform-only,",
        "# apex, systemapi or llndk (not NDK API). Not modelled: `versioned=N`",
        "# tags (the NDK leaves such a symbol unversioned below N; for arm64 and",
        "# x86_64 that is only libdl's android_get_application_target_sdk_version).",
        "# Columns (tab-separated): library, symbol, version_node, introduced_api,",
        "# kind (function|variable), arches (comma-separated; a symbol whose level",
        "# differs between arches has one row per level). introduced_api is the",
        "# API level from which the symbol exists on those arches.",
        "#library\tsymbol\tversion_node\tintroduced_api\tkind\tarches",
    ]
    sys.stdout.write("\n".join(header) + "\n")
    for r in body:
        sys.stdout.write("\t".join(r) + "\n")


if __name__ == "__main__":
    main()
