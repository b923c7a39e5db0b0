#!/usr/bin/env bash
# The APK suite (run by scripts/test.sh): build the debug APK once with
# scripts/build-apk.sh, then check it and the tools that made it.
#
#   1. the resource-table rewrite keeps every framework entry (arsc test);
#   2. the APK's structure (scripts/apk/check/check-apk.sh) and the checker's
#      own self-test, which breaks a good APK in each way it must catch;
#   3. the x86_64 Android library executing on this Linux host through a shim;
#   4. clippy and check of the bindings crate for aarch64-linux-android, so
#      the Android-only Rust (bindings/src/platform.rs) is compiled and linted.
# Any failure fails the suite; it ends with "N passed, N failed".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '==> test-apk: %s\n' "$*"; }

ABIS="${DOTCORE_APK_ABIS:-arm64-v8a,x86_64}"
APK="$ROOT/target/apk/dotcore-debug.apk"
passed=0
failed=0
failures=()
check() {
    local name="$1" t0
    shift
    step "$name: $*"
    t0=$(date +%s)
    if "$@"; then
        passed=$((passed + 1))
        step "$name: ok ($(($(date +%s) - t0)) s)"
    else
        failed=$((failed + 1))
        failures+=("$name")
        step "$name: FAILED ($(($(date +%s) - t0)) s)"
    fi
}

# Everything below needs the APK; a failed build fails at once.
bash scripts/build-apk.sh --abis "$ABIS"

check arsc-rewrite python3 scripts/apk/resources/test_arsc_dense.py
check apk-structure bash scripts/apk/check/check-apk.sh "$APK" --abis "$ABIS" \
    --bindings "$ROOT/target/apk-build/dex/uniffi/app/dotcore/ffi/dotcore_ffi.kt"
check apk-checker-self-test python3 scripts/apk/check/test_check_apk.py --apk "$APK" --abis "$ABIS" \
    --bindings "$ROOT/target/apk-build/dex/uniffi/app/dotcore/ffi/dotcore_ffi.kt"
check reproducibility-self-test bash scripts/apk/check/test_check_reproducible.sh
check native-on-host bash scripts/apk/native/test-on-host.sh
check android-rust-lint bash scripts/apk/native/lint-android.sh

[ "${#failures[@]}" -eq 0 ] || step "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
