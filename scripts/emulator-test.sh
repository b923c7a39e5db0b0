#!/usr/bin/env bash
# The instrumented tests (android/app/src/androidTest) on an emulator or a
# device, for anyone with the Android SDK. They need what this repository's
# development and CI machines do not have: the SDK and NDK, an emulator (or
# a device with USB debugging) and internet access (they resolve through
# public DoT providers). Neither CI nor scripts/test.sh runs this script.
#
#   scripts/emulator-test.sh                 tests on the connected device/emulator
#   scripts/emulator-test.sh --avd NAME      boots AVD NAME headless first (and stops it after)
#   scripts/emulator-test.sh --class app.dotcore.test.VpnEndToEndTest#strictModeFailsClosedWhenThePinIsWrong
#
# What it runs: `./gradlew connectedDebugAndroidTest` in android/, which
# builds the Rust libraries (cargo-ndk), the bindings and both APKs,
# installs them and runs the tests with the app's framework-only runner
# (app.dotcore.test.DotTestRunner). The tests grant themselves the VPN
# consent (appops ACTIVATE_VPN) and POST_NOTIFICATIONS through the shell.
# Reports: android/app/build/reports/androidTests/connected/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/android"

step() { printf '==> emulator-test: %s\n' "$*"; }
die() { printf 'emulator-test: %s\n' "$*" >&2; exit 1; }

avd=""
test_class=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --avd) avd="$2"; shift 2 ;;
        --class) test_class="$2"; shift 2 ;;
        -h | --help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
done

sdk="${ANDROID_HOME:-${ANDROID_SDK_ROOT:-}}"
if [ -z "$sdk" ] && [ -f local.properties ]; then
    sdk="$(sed -n 's/^sdk.dir=//p' local.properties)"
fi
if [ -z "$sdk" ] || [ ! -d "$sdk" ]; then
    die "no Android SDK: set ANDROID_HOME (or sdk.dir in android/local.properties); see docs/android.md"
fi
export ANDROID_HOME="$sdk"
adb="$sdk/platform-tools/adb"
[ -x "$adb" ] || adb="$(command -v adb || true)"
[ -n "$adb" ] || die "adb not found (install platform-tools with sdkmanager)"

if [ ! -x ./gradlew ]; then
    command -v gradle >/dev/null 2>&1 ||
        die "no ./gradlew: create the wrapper once with a local Gradle (cd android && gradle wrapper) or open android/ in Android Studio"
    step "creating the Gradle wrapper (gradle wrapper)"
    gradle wrapper
fi

emulator_pid=""
cleanup() {
    if [ -n "$emulator_pid" ]; then
        step "stopping the emulator"
        "$adb" -s "$serial" emu kill >/dev/null 2>&1 || kill "$emulator_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

serial=""
if [ -n "$avd" ]; then
    emulator="$sdk/emulator/emulator"
    [ -x "$emulator" ] || die "emulator not installed (sdkmanager emulator)"
    step "booting AVD $avd (headless)"
    "$emulator" -avd "$avd" -no-window -no-audio -no-boot-anim -no-snapshot-save >"${TMPDIR:-/tmp}/dotcore-emulator.log" 2>&1 &
    emulator_pid=$!
    serial="emulator-5554"
    "$adb" -s "$serial" wait-for-device
    for _ in $(seq 1 180); do
        [ "$("$adb" -s "$serial" shell getprop sys.boot_completed 2>/dev/null | tr -d '\r')" = 1 ] && break
        sleep 1
    done
    [ "$("$adb" -s "$serial" shell getprop sys.boot_completed | tr -d '\r')" = 1 ] || die "the emulator did not boot in 3 minutes"
    export ANDROID_SERIAL="$serial"
fi

devices="$("$adb" devices | awk 'NR > 1 && $2 == "device" { print $1 }')"
[ -n "$devices" ] || die "no device or emulator connected (adb devices); or pass --avd NAME"
step "device(s): $(echo "$devices" | tr '\n' ' ')"

args=(connectedDebugAndroidTest --console=plain)
if [ -n "$test_class" ]; then
    args+=("-Pandroid.testInstrumentationRunnerArguments.class=$test_class")
fi
step "./gradlew ${args[*]}"
./gradlew "${args[@]}"
step "OK; reports in android/app/build/reports/androidTests/connected/"
