#!/usr/bin/env bash
# Structural checks of a built APK: what a device would reject or crash on
# before the app's first line runs.
#
#   scripts/apk/check/check-apk.sh APK --bindings dotcore_ffi.kt
#                                  [--abis arm64-v8a,armeabi-v7a,x86_64]
#                                  [--symbols scripts/apk/bionic/symbols.tsv]
#                                  [--manifest-source FILE] [--unsigned]
#                                  [--mapping target/apk-build/dex/mapping.txt]
#
#   --bindings  the generated UniFFI Kotlin (DIR/app/dotcore/ffi/dotcore_ffi.kt):
#               every `external fun` it declares must be exported by each
#               libdotcore_ffi.so.
#   --abis      the ABIs built; native-code and lib/ must hold exactly these
#               (default: build-android.sh's default list).
#   --unsigned  leave out the apksigner checks (for the unsigned APK).
#   --mapping   R8's mapping.txt, for a shrunk (release) dex: the required
#               classes are looked up under the names R8 gave them.
#
# Checks (apkcheck.py): aapt2 badging (package, SDK levels, launchable
# activity, native-code, permissions read from the source manifest); the
# VpnService declaration; apksigner verify with v2 and v3; .so stored at
# 16 KiB offsets, resources.arsc stored and 4-aligned; each ELF's machine,
# PT_LOAD alignment, DT_NEEDED, imports against the bionic symbol list,
# UniFFI exports; the dex files' classes. Ends with "N passed, N failed";
# exit status 1 on any failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
HERE="$ROOT/scripts/apk/check"
# shellcheck source=../versions.sh
. "$ROOT/scripts/apk/versions.sh"

die() { printf 'check-apk: %s\n' "$*" >&2; exit 2; }

apk=""
abis="arm64-v8a,armeabi-v7a,x86_64"
extra=()
bindings=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --abis) abis="${2:?--abis needs a value}"; shift 2 ;;
        --bindings) bindings="${2:?--bindings needs a value}"; shift 2 ;;
        --symbols | --manifest-source | --mapping) extra+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
        --unsigned) extra+=(--skip-signature); shift ;;
        -h | --help) sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
        -*) die "unknown option: $1" ;;
        *) [ -z "$apk" ] || die "more than one APK given: $apk, $1"; apk="$1"; shift ;;
    esac
done
[ -n "$apk" ] || die "usage: check-apk.sh APK --bindings dotcore_ffi.kt [--abis LIST]"
[ -f "$apk" ] || die "no such APK: $apk"
[ -n "$bindings" ] || die "--bindings is required (the generated dotcore_ffi.kt)"
[ -f "$bindings" ] || die "no such bindings file: $bindings"

# Tools from Debian, installed when missing (a fresh CI machine has none).
need=()
command -v aapt2 >/dev/null 2>&1 || need+=(aapt)
command -v apksigner >/dev/null 2>&1 || need+=(apksigner)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ "${#need[@]}" -gt 0 ]; then
    printf '==> check-apk: installing %s\n' "${need[*]}" >&2
    apt-cache policy "${need[0]}" 2>/dev/null | grep >/dev/null 'Candidate: [0-9]' || apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

exec python3 "$HERE/apkcheck.py" "$apk" --abis "$abis" --bindings "$bindings" \
    --min-sdk "$APK_MIN_SDK" --target-sdk "$APK_TARGET_SDK" "${extra[@]}"
