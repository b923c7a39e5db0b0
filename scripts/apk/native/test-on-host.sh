#!/usr/bin/env bash
# Runs the x86_64 Android build of libdotcore_ffi.so on this Linux host and
# calls real UniFFI entry points in it, the way the app's Kotlin code does.
#
#   scripts/apk/native/test-on-host.sh [--lib PATH]
#
# PATH defaults to target/apk-build/native/x86_64/libdotcore_ffi.so (made by
# build-native.sh --abis x86_64). The Android machine code runs unchanged;
# only its dynamic-link metadata is rewritten on a copy (patchelf): NEEDED
# libc.so/libdl.so/libm.so become glibc's, liblog.so a small shim, symbol
# versions (bionic's LIBC, LIBLOG...) are cleared. host-test/bionic_shim.c
# supplies what glibc names or numbers differently (its header lists it).
#
# Checks, each failing the script when broken:
#   * the library loads with every import resolved (RTLD_NOW);
#   * its UniFFI contract version and API checksums equal the ones in the
#     Kotlin bindings generated from the host build (what the app checks
#     when it loads the library);
#   * providers(), validate_config() of a good config, of a bad one and of
#     an unreadable one, and a call that panics in Rust (UniFFI must catch
#     it: unwinding through the Android build's own unwinder) return
#     exactly what the host build of the same sources returns, and the bad
#     config's error names the offending field.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
# shellcheck source=toolchain.sh
. "$ROOT/scripts/apk/native/toolchain.sh"

lib="$APK_BUILD/native/x86_64/libdotcore_ffi.so"
while [ "$#" -gt 0 ]; do
    case "$1" in
        --lib) lib="${2:?--lib needs a path}"; shift 2 ;;
        -h | --help) sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
        *) native_die "unknown argument: $1" ;;
    esac
done
[ -f "$lib" ] || native_die "$lib does not exist: build it with
    scripts/apk/native/build-native.sh --abis x86_64"
[ "$(uname -m)" = x86_64 ] || native_die "this test runs the x86_64 Android library; the host is $(uname -m)"

fail() { printf 'test-on-host: FAIL: %s\n' "$*" >&2; exit 1; }

ensure_host_tools
readelf="llvm-readelf-$APK_LLVM_MAJOR"
machine="$("$readelf" -h "$lib" | sed -n 's/^ *Machine: *//p')"
[ "$machine" = "$(abi_machine x86_64)" ] || fail "$lib is not an x86_64 library (Machine: $machine)"
"$readelf" -nW "$lib" | grep >/dev/null NT_ANDROID_TYPE_IDENT || fail "$lib is not an Android build (no .note.android.ident)"

work="$APK_BUILD/host-test"
rm -rf "$work"
mkdir -p "$work"

# Expected values: the Kotlin bindings of the same sources, generated from
# the host build, which is also the reference for the call results.
native_step "host build and Kotlin bindings (scripts/build-android.sh bindings)"
scripts/build-android.sh bindings --out "$work/kotlin" >&2
kotlin="$work/kotlin/app/dotcore/ffi/dotcore_ffi.kt"
host_lib="$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug/libdotcore_ffi.so"
[ -f "$host_lib" ] || fail "host library $host_lib missing after the bindings build"
want_contract="$(sed -n 's/.*val bindings_contract_version = \([0-9]*\).*/\1/p' "$kotlin")"
[ -n "$want_contract" ] || fail "no bindings_contract_version in $kotlin"
mapfile -t checksums < <(sed -n 's/.*lib\.uniffi_dotcore_ffi_checksum_\([a-z0-9_]*\)() and 0xFFFF) != \([0-9]*\).*/\1 \2/p' "$kotlin")
[ "${#checksums[@]}" -gt 0 ] || fail "no API checksums found in $kotlin"

native_step "shim and driver"
cc=("$APK_CLANG" -O1 -Wall -Wextra -Werror)
"${cc[@]}" -shared -fPIC -o "$work/libdotcore_bionic_shim.so" scripts/apk/native/host-test/bionic_shim.c -ldl
# The shim comes first among the driver's libraries, so its definitions
# (sysconf, strerror_r) are found before glibc's for the Android library.
"${cc[@]}" -o "$work/uniffi_driver" scripts/apk/native/host-test/uniffi_driver.c \
    -Wl,--no-as-needed -L"$work" -ldotcore_bionic_shim -Wl,-rpath,"$work" -ldl

native_step "rewriting a copy's dynamic-link metadata for glibc"
patched="$work/libdotcore_ffi-android-x86_64.so"
cp "$lib" "$patched"
patch_args=()
for needed in $("$readelf" -dW "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    case "$needed" in
        libc.so) patch_args+=(--replace-needed libc.so libc.so.6) ;;
        libdl.so) patch_args+=(--replace-needed libdl.so libdl.so.2) ;;
        libm.so) patch_args+=(--replace-needed libm.so libm.so.6) ;;
        liblog.so) patch_args+=(--replace-needed liblog.so libdotcore_bionic_shim.so) ;;
        *) fail "$lib needs $needed, which is not a bionic NDK library" ;;
    esac
done
mapfile -t versioned < <("$readelf" --dyn-syms -W "$lib" |
    awk '$7 == "UND" && $8 ~ /@/ { sub(/@.*/, "", $8); print $8 }' | sort -u)
for s in "${versioned[@]}"; do
    patch_args+=(--clear-symbol-version "$s")
done
patchelf "${patch_args[@]}" "$patched"
# glibc still checks the version requirements (.gnu.version_r) against the
# libraries' version definitions; bionic's names are not glibc's. Marking
# each requirement weak makes a missing one acceptable (the per-symbol
# versions are already cleared).
python3 scripts/apk/native/host-test/weaken_verneed.py "$patched"
printf '  imports: %s\n' "$("$readelf" --dyn-syms -W "$patched" | awk '$7 == "UND" && $8 != "" { print $8 }' | sort | tr '\n' ' ')" >&2

commands=(contract)
for entry in "${checksums[@]}"; do
    commands+=("checksum:${entry%% *}")
done
commands+=(providers validate:cloudflare validate:no-such-provider validate-truncated panic)

run() {
    local which="$1" path="$2" out="$3"
    local status=0
    "$work/uniffi_driver" "$path" "${commands[@]}" >"$out" 2>"$out.stderr" || status=$?
    if [ "$status" -ne 0 ]; then
        cat "$out.stderr" >&2
        fail "the driver failed (exit status $status$([ "$status" -gt 128 ] && echo ": killed by signal $((status - 128))")) on the $which library $path"
    fi
}
native_step "calling the Android library"
run Android "$patched" "$work/android.out"
native_step "calling the host library"
run host "$host_lib" "$work/host.out"

if ! diff -u "$work/host.out" "$work/android.out" >"$work/diff"; then
    cat "$work/diff" >&2
    fail "the Android library's answers differ from the host library's (above: - host, + Android)"
fi
grep -qx "contract_version $want_contract" "$work/android.out" ||
    fail "contract version is not $want_contract (the generated Kotlin's): $(grep contract_version "$work/android.out")"
for entry in "${checksums[@]}"; do
    grep -qx "checksum ${entry% *} ${entry#* }" "$work/android.out" ||
        fail "API checksum ${entry% *}: want ${entry#* } (Kotlin), got: $(grep "checksum ${entry% *} " "$work/android.out")"
done
count="$(sed -n 's/^providers: \([0-9]*\)$/\1/p' "$work/android.out")"
[ -n "$count" ] && [ "$count" -gt 0 ] || fail "providers() returned no providers"
[ "$(grep -c '^provider	' "$work/android.out")" = "$count" ] || fail "providers() count and records disagree"
grep -q '^provider	cloudflare	' "$work/android.out" || fail "providers() has no cloudflare entry"
grep -qx 'validate cloudflare: ok' "$work/android.out" || fail "a valid config was rejected: $(grep '^validate cloudflare' "$work/android.out")"
grep -q '^validate no-such-provider: invalid_config field=provider reason=.*no-such-provider' "$work/android.out" ||
    fail "the bad provider's error does not name the field 'provider': $(grep '^validate no-such' "$work/android.out")"
grep -q "^validate truncated: unexpected_error: Failed to convert arg 'config'" "$work/android.out" ||
    fail "an unreadable argument was not reported: $(grep '^validate truncated' "$work/android.out")"
grep -q "^panic: unexpected_error: bytes length negative" "$work/android.out" ||
    fail "the panic was not caught and reported: $(grep '^panic' "$work/android.out")"
grep -q "panicked at .*foreignbytes.rs" "$work/android.out.stderr" ||
    fail "no panic message from Rust's panic hook on stderr (was it a panic?)"

native_step "PASS: $(wc -l <"$work/android.out") answers from the Android x86_64 library equal the host build's ($count providers, ${#checksums[@]} checksums, contract $want_contract)"
