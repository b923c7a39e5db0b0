#!/usr/bin/env bash
# The APK's compiled resources and binary manifest, without the Android SDK:
#
#   scripts/apk/resources/build-resources.sh
#     -> target/apk-build/res/resources.ap_
#        (AndroidManifest.xml in binary XML, resources.arsc, res/...)
#
# 1. The framework: org.robolectric:android-all (Maven Central) carries
#    Android 16's resources.arsc and AndroidManifest.xml; arsc_dense.py
#    rewrites the table to the dense layout Debian's aapt2 (Android 10)
#    reads, into an APK-like zip for `aapt2 link -I`.
# 2. The manifest: a copy under target/ with package="app.dotcore" (what
#    Gradle's namespace/applicationId adds); versionCode/versionName come
#    from android/app/build.gradle.kts and min/target SDK from the version
#    catalog, given to aapt2 link as flags.
# 3. aapt2 compile android/app/src/main/res, aapt2 link, then the result is
#    checked with aapt2 dump badging. aapt2 also writes the keep rules for
#    the classes the manifest names (target/apk-build/res/aapt2-keep.pro),
#    which R8 needs in scripts/apk/dex/build-dex.sh --release, as AGP feeds
#    them to R8.
#
# The app's Kotlin uses only android.R, never its own R, so no R.java is
# produced; the script fails if that ever changes (the dex step would then
# have to compile R.java). See docs/android.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
APK_LABEL=build-resources
# shellcheck source=common.sh
. "$ROOT/scripts/apk/resources/common.sh"

APP="$ROOT/android/app"
OUT="$APK_BUILD/res"
HERE="$ROOT/scripts/apk/resources"
PACKAGE="app.dotcore"

total0=$(date +%s)
apk_step "tools"
apk_ensure_debs aapt2:aapt python3:python3 zip:zip
apk_ensure_jvm

# --- versions ----------------------------------------------------------------------
min_sdk="$(catalog_version minSdk)"
target_sdk="$(catalog_version targetSdk)"
[ "$min_sdk" = "$APK_MIN_SDK" ] && [ "$target_sdk" = "$APK_TARGET_SDK" ] \
    || apk_die "SDK levels disagree: catalog min/target $min_sdk/$target_sdk, scripts/apk/versions.sh $APK_MIN_SDK/$APK_TARGET_SDK"
gradle_value() {
    local v
    v="$(sed -n "s/^ *$1 *= *\"\{0,1\}\([^\"]*\)\"\{0,1\} *$/\1/p" "$APP/build.gradle.kts" | head -n 1)"
    [ -n "$v" ] || apk_die "no '$1 = ...' in $APP/build.gradle.kts"
    printf '%s\n' "$v"
}
version_code="$(gradle_value versionCode)"
version_name="$(gradle_value versionName)"
case "$version_code" in *[!0-9]*|'') apk_die "versionCode '$version_code' is not a number" ;; esac

# The app must not need its own R class (nothing here compiles R.java).
if grep -rnE '(^|[^.[:alnum:]_])R\.(string|drawable|mipmap|layout|id|xml|color|dimen|style|attr)\b|import app\.dotcore\.R\b' \
        "$APP/src/main/kotlin" "$ROOT/bindings/kotlin" 2>/dev/null; then
    apk_die "the Kotlin above uses the app's R class; generate R.java (aapt2 link --java) and compile it in scripts/apk/dex/build-dex.sh"
fi

mkdir -p "$OUT"

# --- 1. the framework for -I -------------------------------------------------------
jar="$(apk_android_all_jar)"
framework="$OUT/android-$APK_ANDROID_ALL_VERSION-dense.apk"
# Rebuilt when the jar or the rewriter changes.
stamp="$(sha256sum "$HERE/arsc_dense.py" | cut -c1-16)-$(stat -c %s "$jar")"
if [ ! -s "$framework" ] || [ "$(cat "$framework.stamp" 2>/dev/null)" != "$stamp" ]; then
    apk_step "framework resources: dense copy of android-all $APK_ANDROID_ALL_VERSION's resources.arsc"
    apk_timed "arsc_dense" python3 "$HERE/arsc_dense.py" --framework-apk "$jar" "$framework"
    printf '%s\n' "$stamp" >"$framework.stamp"
else
    apk_step "framework resources: up to date ($framework)"
fi

# --- 2. the manifest ---------------------------------------------------------------
manifest="$OUT/AndroidManifest.xml"
apk_step "manifest: copy with package=\"$PACKAGE\""
python3 - "$APP/src/main/AndroidManifest.xml" "$manifest" "$PACKAGE" <<'PY'
import re, sys
src, dst, package = sys.argv[1:]
text = open(src, encoding="utf-8").read()
m = re.search(r"<manifest\b[^>]*>", text)
if not m:
    sys.exit(f"build-resources: error: no <manifest> element in {src}")
if re.search(r"\spackage\s*=", m.group(0)):
    sys.exit(f"build-resources: error: {src} already sets package=; Gradle's namespace is the one place for it")
if re.search(r"<uses-sdk\b", text):
    sys.exit(f"build-resources: error: {src} has <uses-sdk>; the SDK levels belong to the version catalog")
tag = m.group(0)[:-1].rstrip("/") + f'\n    package="{package}"' + (">" if not m.group(0).endswith("/>") else "/>")
out = text[:m.start()] + tag + text[m.end():]
with open(dst, "w", encoding="utf-8") as f:
    f.write(out)
PY

# --- 3. compile and link ------------------------------------------------------------
apk_step "aapt2 compile android/app/src/main/res"
rm -rf "$OUT/compiled.zip" "$OUT/resources.ap_" "$OUT/aapt2-keep.pro"
apk_timed "aapt2 compile" aapt2 compile --dir "$APP/src/main/res" -o "$OUT/compiled.zip"

apk_step "aapt2 link (min $min_sdk, target $target_sdk, version $version_code / $version_name)"
# --warn-manifest-validation: aapt2 10 predates <queries> (Android 11) and
# would reject it; with the flag it warns and keeps the element.
apk_timed "aapt2 link" aapt2 link \
    -o "$OUT/resources.ap_" \
    -I "$framework" \
    --manifest "$manifest" \
    --min-sdk-version "$min_sdk" \
    --target-sdk-version "$target_sdk" \
    --version-code "$version_code" \
    --version-name "$version_name" \
    --warn-manifest-validation \
    --no-auto-version \
    --proguard "$OUT/aapt2-keep.pro" \
    "$OUT/compiled.zip" 2> >(grep -v "warn: unexpected element <queries> found in <manifest>" >&2 || true)

# --- checks -------------------------------------------------------------------------
apk_step "check: aapt2 dump badging"
badging="$(aapt2 dump badging "$OUT/resources.ap_")" || apk_die "aapt2 dump badging failed on $OUT/resources.ap_"
printf '%s\n' "$badging" >"$OUT/badging.txt"
expect() {
    grep -qF -- "$1" <<<"$badging" || apk_die "badging lacks $1 (see $OUT/badging.txt)"
}
expect "package: name='$PACKAGE' versionCode='$version_code' versionName='$version_name'"
expect "sdkVersion:'$min_sdk'"
expect "targetSdkVersion:'$target_sdk'"
expect "launchable-activity: name='$PACKAGE.MainActivity'"
# Every permission the source manifest asks for.
perms="$(sed -n 's/.*<uses-permission[^>]*android:name="\([^"]*\)".*/\1/p' "$APP/src/main/AndroidManifest.xml")"
[ -n "$perms" ] || apk_die "no <uses-permission> found in the source manifest"
for p in $perms; do expect "uses-permission: name='$p'"; done
# The <queries> element survived the validation warning. (grep without -q
# reads to the end: with pipefail, -q's early exit can kill the writer with
# SIGPIPE and fail a pipeline whose pattern matched.)
aapt2 dump xmltree --file AndroidManifest.xml "$OUT/resources.ap_" | grep >/dev/null "E: queries" \
    || apk_die "<queries> is missing from the linked manifest"

printf '    %s\n' "$(grep -E "^(package|sdkVersion|targetSdkVersion|launchable-activity)" "$OUT/badging.txt" | tr '\n' ' ')"
apk_step "done in $(( $(date +%s) - total0 )) s: $OUT/resources.ap_ ($(stat -c %s "$OUT/resources.ap_") bytes)"
