#!/usr/bin/env bash
# The installable APK, built from source with Debian's packages, crates.io
# and Maven Central only: no Android SDK, NDK or Gradle (docs/android.md).
#
#   scripts/build-apk.sh                  target/apk/dotcore-debug.apk
#   scripts/build-apk.sh --release        target/apk/dotcore-release.apk, R8-shrunk,
#                                         signed with the key named by
#                                         DOTCORE_KEYSTORE, DOTCORE_KEYSTORE_PASS,
#                                         DOTCORE_KEY_ALIAS, DOTCORE_KEY_PASS
#   scripts/build-apk.sh --unsigned-only  stop before signing:
#                                         target/apk/dotcore-<kind>-unsigned.apk
#   scripts/build-apk.sh --abis arm64-v8a,x86_64   (the default)
#   scripts/build-apk.sh --check          also run scripts/apk/check/check-apk.sh
#
# Steps, each its own script under scripts/apk/ (each installs what it needs
# on its first run and is cheap to re-run):
#   1. native/build-native.sh   libdotcore_ffi.so per ABI: Debian's rustc-web
#                               with -Zbuild-std, clang/lld 22, stub bionic
#   2. resources/build-resources.sh   aapt2 compile + link: resources.ap_
#   3. dex/build-dex.sh         UniFFI Kotlin, app + libraries compiled, D8
#                               (R8 with --release), JNA's libjnidispatch.so
#   4. package/apkzip.py        the zip: fixed order and dates, .so stored at
#                               16 KiB offsets
#   5. package/sign.sh          APK signature scheme v2 + v3 (apksigner)
# The debug APK carries release-built, stripped native libraries too: the
# native debug build is ten times larger and no faster to debug on a device
# without the NDK's tools.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=apk/versions.sh
. "$ROOT/scripts/apk/versions.sh"

usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
step() { printf '==> build-apk: %s\n' "$*"; }
die() { printf 'build-apk: %s\n' "$*" >&2; exit 1; }

kind=debug
abis="arm64-v8a,x86_64"
unsigned_only=0
check=0
while [ "$#" -gt 0 ]; do
    case "$1" in
        --release) kind=release; shift ;;
        --debug) kind=debug; shift ;;
        --abis) abis="${2:?--abis needs a comma-separated list}"; shift 2 ;;
        --unsigned-only) unsigned_only=1; shift ;;
        --check) check=1; shift ;;
        -h | --help) usage ;;
        *) printf 'build-apk: unknown argument: %s\n' "$1" >&2; usage ;;
    esac
done

# A release build without its key would fail only after every step ran.
if [ "$kind" = release ] && [ "$unsigned_only" = 0 ]; then
    for var in DOTCORE_KEYSTORE DOTCORE_KEYSTORE_PASS DOTCORE_KEY_ALIAS DOTCORE_KEY_PASS; do
        [ -n "${!var:-}" ] || die "--release signs with a release key: $var is not set (or use --unsigned-only)"
    done
fi

BUILD="$ROOT/target/apk-build"
OUT="$ROOT/target/apk"
mkdir -p "$BUILD" "$OUT"

timed() {
    local label="$1" t0 t1
    shift
    t0=$(date +%s)
    "$@"
    t1=$(date +%s)
    step "$label: $((t1 - t0)) s"
    TIMINGS+=("$label $((t1 - t0))s")
}
TIMINGS=()
start=$(date +%s)

dex_args=()
[ "$kind" = release ] && dex_args+=(--release)

timed native bash scripts/apk/native/build-native.sh --release --abis "$abis" --out "$BUILD/native"
timed resources bash scripts/apk/resources/build-resources.sh
timed dex bash scripts/apk/dex/build-dex.sh "${dex_args[@]}"

unsigned="$OUT/dotcore-$kind-unsigned.apk"
signed="$OUT/dotcore-$kind.apk"
lib_args=()
IFS=, read -r -a abi_list <<<"$abis"
for abi in "${abi_list[@]}"; do
    [ -f "$BUILD/native/$abi/libdotcore_ffi.so" ] || die "native step wrote no $abi/libdotcore_ffi.so"
    [ -f "$BUILD/jna/$abi/libjnidispatch.so" ] || die "dex step wrote no JNA library for $abi"
    lib_args+=(--lib "$abi=$BUILD/native/$abi/libdotcore_ffi.so" --lib "$abi=$BUILD/jna/$abi/libjnidispatch.so")
done
timed package python3 scripts/apk/package/apkzip.py --out "$unsigned" \
    --resources "$BUILD/res/resources.ap_" --dex-dir "$BUILD/dex" \
    --java-res "$BUILD/dex/java-res" "${lib_args[@]}"

if [ "$unsigned_only" = 1 ]; then
    step "unsigned APK: ${unsigned#"$ROOT"/} ($(du -h "$unsigned" | cut -f1))"
    exit 0
fi

sign_args=()
[ "$kind" = release ] && sign_args+=(--release)
timed sign bash scripts/apk/package/sign.sh "${sign_args[@]}" "$unsigned" "$signed"

if [ "$check" = 1 ]; then
    check_args=()
    # R8 renames library classes; the checker maps them back.
    [ "$kind" = release ] && check_args+=(--mapping "$BUILD/dex/mapping.txt")
    timed check bash scripts/apk/check/check-apk.sh "$signed" --abis "$abis" \
        --bindings "$BUILD/dex/uniffi/app/dotcore/ffi/dotcore_ffi.kt" "${check_args[@]}"
fi

end=$(date +%s)
step "${signed#"$ROOT"/} ($(du -h "$signed" | cut -f1)) in $((end - start)) s: ${TIMINGS[*]}"
