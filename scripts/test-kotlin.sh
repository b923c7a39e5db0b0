#!/usr/bin/env bash
# The Kotlin API, tested from Kotlin on a desktop JVM against the real
# library and a real unbound DoT server (tests/kotlin).
#
#   scripts/test-kotlin.sh            build, generate, run the suite
#   scripts/test-kotlin.sh -Dtest=ConfigTest   extra arguments go to mvn
#
# Steps: make sure a JDK (17+), Maven and unbound are installed (apt-get
# when missing); build libdotcore_ffi.so and the unbound-fixture binary;
# generate the Kotlin bindings from the built library with the workspace's
# own uniffi-bindgen into tests/kotlin/target/generated-sources/uniffi
# (regenerated every run, never committed); run `mvn test`, which compiles
# the bindings plus the test suite and runs it with JNA pointed at the
# library. Dependencies come from Maven Central into the default local
# repository (~/.m2). Any failure exits non-zero. Safe to re-run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '==> test-kotlin: %s\n' "$*"; }

# --- tools ----------------------------------------------------------------------
# shellcheck source=lib/jvm-tools.sh
. "$ROOT/scripts/lib/jvm-tools.sh"
extra=()
command -v unbound >/dev/null 2>&1 || [ -x /usr/sbin/unbound ] || extra+=(unbound)
ensure_jvm_tools test-kotlin "${extra[@]}"

# --- native parts ---------------------------------------------------------------
start=$(date +%s)
step "cargo build -p dotcore-ffi, unbound-fixture"
cargo build -p dotcore-ffi
cargo build -p dotcore-tests --bin unbound-fixture

target_dir="$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
target_dir="${target_dir:-$ROOT/target}"
case "$(uname -s)" in
    Darwin) lib="$target_dir/debug/libdotcore_ffi.dylib" ;;
    *) lib="$target_dir/debug/libdotcore_ffi.so" ;;
esac
fixture="$target_dir/debug/unbound-fixture"
[ -f "$lib" ] || { echo "test-kotlin: $lib was not built" >&2; exit 1; }
[ -x "$fixture" ] || { echo "test-kotlin: $fixture was not built" >&2; exit 1; }

# --- bindings -------------------------------------------------------------------
generated="$ROOT/tests/kotlin/target/generated-sources/uniffi"
step "generating Kotlin bindings into ${generated#"$ROOT"/}"
rm -rf "$generated"
mkdir -p "$generated"
cargo run -q -p uniffi-bindgen -- generate --library "$lib" \
    --language kotlin --no-format --out-dir "$generated"
[ -f "$generated/app/dotcore/ffi/dotcore_ffi.kt" ] || {
    echo "test-kotlin: uniffi-bindgen produced no app/dotcore/ffi/dotcore_ffi.kt" >&2
    exit 1
}

# --- the suite ------------------------------------------------------------------
step "mvn test (tests/kotlin)"
suite_start=$(date +%s)
(
    cd "$ROOT/tests/kotlin"
    mvn -B -q -Dstyle.color=never test \
        -Ddotcore.lib.dir="$(dirname "$lib")" \
        -Ddotcore.fixture="$fixture" \
        "$@"
)
end=$(date +%s)
reports="$ROOT/tests/kotlin/target/surefire-reports"
if ls "$reports"/TEST-*.xml >/dev/null 2>&1; then
    # One line per class: "tests=N failures=F errors=E skipped=S time=T".
    for xml in "$reports"/TEST-*.xml; do
        sed -n 's/.*<testsuite[^>]* name="\([^"]*\)"[^>]* time="\([^"]*\)"[^>]* tests="\([^"]*\)"[^>]* errors="\([^"]*\)"[^>]* skipped="\([^"]*\)"[^>]* failures="\([^"]*\)".*/  \1: tests=\3 failures=\6 errors=\4 skipped=\5 (\2 s)/p' "$xml"
    done
fi
step "OK: Kotlin suite passed (mvn $((end - suite_start)) s, total $((end - start)) s)"
