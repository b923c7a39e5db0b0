#!/usr/bin/env bash
# The one command that runs every test of the repository, locally and in CI.
#
# Order: setup (tools), formatting, lints, the Rust workspace tests, then the
# other suites (Kotlin, simulator, Android compile) when their scripts exist.
# Cheap checks come first so a formatting slip fails in seconds, not after
# the full suite. Any failure fails the run; the summary says what ran.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# setup.sh installed every external tool, so a missing one must fail the
# fixture tests instead of letting them skip (see dotcore_tests::require_tool).
export DOTCORE_TESTS_REQUIRE_TOOLS=1

RAN=()
SKIPPED=()
CURRENT=""

summary() {
    local rc=$?
    echo
    if [ "$rc" -eq 0 ]; then
        echo "SUMMARY: OK; ran: ${RAN[*]:-nothing}; skipped: ${SKIPPED[*]:-none}"
    else
        echo "SUMMARY: FAILED in '${CURRENT}' (exit $rc); passed before it: ${RAN[*]:-nothing}; skipped: ${SKIPPED[*]:-none}"
    fi
}
trap summary EXIT

run() {
    local name="$1"
    shift
    CURRENT="$name"
    echo
    echo "==> test: $name: $*"
    "$@"
    RAN+=("$name")
}

run setup bash scripts/setup.sh
run fmt cargo fmt --all -- --check
run clippy cargo clippy --workspace --all-targets --all-features -- -D warnings
# Again with default features, as the Android build compiles the core: code
# used only behind a feature must not be dead (or warn) without it.
run clippy-default-features cargo clippy --workspace --all-targets -- -D warnings
# The fuzz targets live outside the workspace (cargo-fuzz's layout); build
# them on stable so an API change cannot silently break them.
run fuzz-targets cargo check --quiet --manifest-path rust-core/fuzz/Cargo.toml --bins
# The CLI tests run the `dotcore` binary itself, which no test target builds.
run build-cli cargo build -p dotcore --features cli

if cargo nextest --version >/dev/null 2>&1; then
    run nextest cargo nextest run --workspace --all-features --no-fail-fast
    # nextest does not run doctests.
    run doctests cargo test --workspace --all-features --doc
else
    echo "==> test: cargo-nextest unavailable, falling back to cargo test"
    run cargo-test cargo test --workspace --all-features --no-fail-fast
fi

# The APK suite compiles the app itself rather than taking the compile
# check's classes (APK_CLASSES_FROM): those gave a classes.dex that differs
# from build-apk.sh's own (2026-12-02), and CI must check the APK a user
# builds.
for suite in test-battery test-kotlin test-simulator test-android-compile test-apk test-app; do
    script="scripts/$suite.sh"
    if [ -x "$script" ]; then
        run "$suite" "$script"
    elif [ -f "$script" ]; then
        # Present but lost its +x bit (easy to do on commit): still run it
        # rather than silently skipping a whole suite.
        echo "==> test: note: $script is not executable; running it with bash"
        run "$suite" bash "$script"
    else
        SKIPPED+=("$suite")
    fi
done
CURRENT=""
