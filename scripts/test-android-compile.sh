#!/usr/bin/env bash
# The Android app, checked as far as a machine without the Android SDK
# allows (run by scripts/test.sh when present). See docs/android.md.
#
#   scripts/test-android-compile.sh            everything below
#   scripts/test-android-compile.sh -Dtest=QueryLogTest   extra arguments go to mvn
#
# 1. Generates the Kotlin bindings from the host build of dotcore-ffi with
#    the workspace's uniffi-bindgen (scripts/build-android.sh bindings), and
#    copies the host library for the JVM tests.
# 2. Runs the Maven module android/compile-check (Kotlin compiler from
#    Maven Central, same versions as gradle/libs.versions.toml):
#      logic/  the app's Android-free logic + bindings, compiled with no
#              Android classes on the classpath, and the app's JVM unit tests
#              (android/app/src/test/kotlin, JUnit 5) against the real engine;
#      app/    every Kotlin source of the app + bindings/kotlin against the
#              Android 16 framework jar (org.robolectric:android-all, API 36)
#              with warnings as errors, the instrumented tests compiled
#              against it, and ManifestTest (manifest vs classes/resources).
# 3. Proves the check is not vacuous: a copy of the app sources with one
#    type error must fail to compile (skip with DOTCORE_SKIP_SELF_TEST=1).
#
# Not done here (no SDK, no emulator): aapt2/resource linking, dexing, R8,
# Android Lint, the APK, the instrumented tests (scripts/emulator-test.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CHECK="$ROOT/android/compile-check"

step() { printf '==> test-android-compile: %s\n' "$*"; }
die() { printf 'test-android-compile: %s\n' "$*" >&2; exit 1; }

# --- tools ----------------------------------------------------------------------
# shellcheck source=lib/jvm-tools.sh
. "$ROOT/scripts/lib/jvm-tools.sh"
ensure_jvm_tools test-android-compile || exit 1

# --- versions from the Gradle catalog -----------------------------------------------
# shellcheck source=lib/catalog.sh
. "$ROOT/scripts/lib/catalog.sh"
MVN_PROPS=(
    "-Dkotlin.version=$(catalog_version kotlin)"
    "-Dcoroutines.version=$(catalog_version coroutines)"
    "-Djna.version=$(catalog_version jna)"
    "-Djunit.version=$(catalog_version junit)"
    "-Djunit4.version=$(catalog_version junit4)"
)
compile_sdk="$(catalog_version compileSdk)"
android_all="$(sed -n 's:.*<android.all.version>\(.*\)</android.all.version>.*:\1:p' "$CHECK/pom.xml")"
if [ "${android_all%%-*}" != "16" ] || [ "$compile_sdk" != "36" ]; then
    die "compileSdk $compile_sdk and android-all $android_all disagree (Android 16 = API 36); update both"
fi

start=$(date +%s)

# --- bindings and the host library ----------------------------------------------------
GENERATED="$CHECK/target/generated/uniffi"
NATIVE="$CHECK/target/native"
bash scripts/build-android.sh bindings --out "$GENERATED"
bash scripts/build-android.sh host-lib --out "$NATIVE"
native_done=$(date +%s)

# --- the Maven check ----------------------------------------------------------------
# No stale classes or reports from an earlier run.
rm -rf "$CHECK/logic/target" "$CHECK/app/target"
step "mvn verify (android/compile-check: logic + JVM tests, app vs android-all $android_all)"
(
    cd "$CHECK"
    mvn -B -q verify "${MVN_PROPS[@]}" \
        -Duniffi.generated="$GENERATED" \
        -Ddotcore.lib.dir="$NATIVE" \
        "$@"
)
maven_done=$(date +%s)

reports=("$CHECK"/logic/target/surefire-reports/TEST-*.xml "$CHECK"/app/target/surefire-reports/TEST-*.xml)
total=0 failed=0 skipped=0
for xml in "${reports[@]}"; do
    [ -f "$xml" ] || continue
    line="$(sed -n 's/.*<testsuite[^>]* name="\([^"]*\)"[^>]* time="\([^"]*\)"[^>]* tests="\([^"]*\)"[^>]* errors="\([^"]*\)"[^>]* skipped="\([^"]*\)"[^>]* failures="\([^"]*\)".*/\1 \3 \4 \5 \6 \2/p' "$xml" | head -n 1)"
    [ -n "$line" ] || continue
    read -r name tests errors skips failures secs <<<"$line"
    printf '  %s: tests=%s failures=%s errors=%s skipped=%s (%s s)\n' "$name" "$tests" "$failures" "$errors" "$skips" "$secs"
    total=$((total + tests))
    failed=$((failed + failures + errors))
    skipped=$((skipped + skips))
done
[ "$total" -gt 0 ] || die "no test reports: the JVM tests did not run"

# The app module must really have compiled the app (not an empty source set).
for cls in DotVpnService MainActivity SettingsActivity DotTileService BootReceiver NetworkMonitor PowerMonitor; do
    [ -f "$CHECK/app/target/classes/app/dotcore/$cls.class" ] || die "app/dotcore/$cls.class was not compiled"
done
[ -f "$CHECK/app/target/test-classes/app/dotcore/test/VpnEndToEndTest.class" ] ||
    die "the instrumented tests were not compiled"

# --- self-test: a type error in the app must fail the compile check --------------------
if [ "${DOTCORE_SKIP_SELF_TEST:-0}" != 1 ]; then
    step "self-test: the same check must reject a type error in the app"
    broken="$(mktemp -d)"
    trap 'rm -rf "$broken"' EXIT
    # The same poms, pointed at a copy of the app's sources.
    mkdir -p "$broken/compile-check/logic" "$broken/compile-check/app" "$broken/app/src"
    cp "$CHECK/pom.xml" "$broken/compile-check/"
    cp "$CHECK/logic/pom.xml" "$broken/compile-check/logic/"
    cp "$CHECK/app/pom.xml" "$broken/compile-check/app/"
    cp -r "$ROOT/android/app/src/main" "$broken/app/src/main"
    victim="$broken/app/src/main/kotlin/app/dotcore/DotVpnService.kt"
    # Android API misuse: VpnService.Builder.setMtu takes an Int.
    sed -i 's/\.setMtu(spec\.mtu)/.setMtu(spec.mtu.toString())/' "$victim"
    line="$(grep -n '\.setMtu(spec\.mtu\.toString())' "$victim" | cut -d: -f1)"
    [ -n "$line" ] || die "self-test could not inject its type error (DotVpnService.kt changed?)"
    if (cd "$broken/compile-check" && mvn -B -q -o compile "${MVN_PROPS[@]}" \
        -Dworkspace.dir="$ROOT" -Duniffi.generated="$GENERATED" >"$broken/mvn.log" 2>&1); then
        die "self-test: the app compiled with a type error; the compile check is not checking"
    fi
    grep -q "DotVpnService.kt:$line:" "$broken/mvn.log" ||
        { cat "$broken/mvn.log" >&2; die "self-test: compile failed, but not on the injected error"; }
    step "self-test OK: the injected error was reported: $(grep -m1 "DotVpnService.kt:$line:" "$broken/mvn.log" | sed 's/.*DotVpnService.kt/DotVpnService.kt/')"
fi

end=$(date +%s)
step "OK: app compiled against android-all $android_all; $total JVM tests passed ($skipped skipped)" \
    "(native+bindings $((native_done - start)) s, maven $((maven_done - native_done)) s, total $((end - start)) s)"
echo "$total passed, $failed failed, $skipped skipped"
