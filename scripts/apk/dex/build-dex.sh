#!/usr/bin/env bash
# The APK's classes.dex, without the Android SDK:
#
#   scripts/apk/dex/build-dex.sh            D8, debuggable
#   scripts/apk/dex/build-dex.sh --release  R8: shrunk and obfuscated
#
# Outputs (the packager takes them as they are):
#   target/apk-build/dex/classes*.dex
#   target/apk-build/dex/java-res/META-INF/services/...   Java resources to
#       put at the APK's root (coroutines finds Dispatchers.Main through
#       ServiceLoader); with --release, as R8 rewrote them for renamed classes
#   target/apk-build/jna/<abi>/libjnidispatch.so   JNA's native half, for
#       arm64-v8a, x86_64 and armeabi-v7a (lib/<abi>/ in the APK)
#   target/apk-build/dex/mapping.txt   (--release) R8's name mapping
#
# Steps: the Kotlin compiler and R8 from Maven Central (tools.pom.xml), the
# app's libraries (runtime.pom.xml; versions from the Gradle catalog), the
# rustls-platform-verifier AAR bundled in its crate, the UniFFI bindings
# (scripts/build-android.sh bindings), one kotlinc run over the app, then
# D8 or R8 and checks of the result (dexdump -c, dex_check.py). The compile is skipped
# when its sources and classpath did not change, or replaced by the classes
# of android/compile-check when APK_CLASSES_FROM names them (colon-separated
# class directories, e.g. android/compile-check/logic/target/classes:
# android/compile-check/app/target/classes after test-android-compile.sh). --release needs
# target/apk-build/res/aapt2-keep.pro (scripts/apk/resources/build-resources.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
APK_LABEL=build-dex
# shellcheck source=../resources/common.sh
. "$ROOT/scripts/apk/resources/common.sh"

release=0
case "${1:-}" in
    --release) release=1 ;;
    "") ;;
    *) apk_die "usage: $0 [--release]" ;;
esac

HERE="$ROOT/scripts/apk/dex"
OUT="$APK_BUILD/dex"
JNA_OUT="$APK_BUILD/jna"
ABIS=(arm64-v8a x86_64 armeabi-v7a)
total0=$(date +%s)

apk_step "tools"
# dexdump (Android 11's, Debian): an independent reader that runs ART's
# dex file verifier over the output.
apk_ensure_debs python3:python3 dexdump:dexdump
command -v cargo >/dev/null 2>&1 || apk_die "cargo not found (the Rust toolchain builds the bindings)"
apk_ensure_jvm
java_home="$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")"
[ -d "$java_home/jmods" ] || [ -f "$java_home/lib/modules" ] \
    || apk_die "no JDK at $java_home (R8 needs its java.* classes as library)"

kotlin="$(catalog_version kotlin)"
coroutines="$(catalog_version coroutines)"
jna="$(catalog_version jna)"
r8="$APK_R8_VERSION"
mkdir -p "$OUT"

# --- Maven Central ------------------------------------------------------------------
# copy-dependencies once per set of versions; the directory is replaced
# whole so no jar of an older version lingers on a classpath.
maven_set() {
    local name="$1" pom="$2" key="$3"
    shift 3
    local dir="$OUT/$name"
    if [ "$(cat "$dir/.versions" 2>/dev/null)" != "$key" ]; then
        rm -rf "$dir"
        mvn -B -q -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DoutputDirectory="$dir" "$@" \
            || apk_die "could not resolve $pom from Maven Central"
        printf '%s\n' "$key" >"$dir/.versions"
    fi
}
apk_step "Maven Central: Kotlin $kotlin compiler, R8 $r8, coroutines $coroutines, JNA $jna"
apk_timed "resolve" maven_set tools "$HERE/tools.pom.xml" "$kotlin $r8" \
    -Dkotlin.version="$kotlin" -Dr8.version="$r8"
maven_set runtime "$HERE/runtime.pom.xml" "$kotlin $coroutines $jna" \
    -Dkotlin.version="$kotlin" -Dcoroutines.version="$coroutines" -Djna.version="$jna"
android_all="$(apk_android_all_jar)"
r8_jar="$OUT/tools/r8-$r8.jar"
[ -s "$r8_jar" ] || apk_die "$r8_jar missing after resolving tools"
tools_cp="$(find "$OUT/tools" -name '*.jar' ! -name 'r8-*.jar' | LC_ALL=C sort | paste -sd: -)"
runtime_jars=()
while IFS= read -r j; do runtime_jars+=("$j"); done \
    < <(find "$OUT/runtime" -name '*.jar' | LC_ALL=C sort)

# --- AARs ---------------------------------------------------------------------------
unpack() { # zip dir
    rm -rf "$2" && mkdir -p "$2"
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"
}
jna_aar="$OUT/runtime/jna-$jna.aar"
[ -s "$jna_aar" ] || apk_die "$jna_aar missing after resolving the runtime"
unpack "$jna_aar" "$OUT/aar/jna"
rm -rf "$JNA_OUT"
for abi in "${ABIS[@]}"; do
    so="$OUT/aar/jna/jni/$abi/libjnidispatch.so"
    [ -s "$so" ] || apk_die "JNA $jna's AAR has no jni/$abi/libjnidispatch.so"
    mkdir -p "$JNA_OUT/$abi"
    cp "$so" "$JNA_OUT/$abi/"
done

# The Kotlin half of rustls-platform-verifier ships as an AAR inside the
# crate rustls-platform-verifier-android (see android/settings.gradle.kts);
# cargo metadata says where the crate Cargo.lock selects is unpacked.
verifier_crate="$(cd "$ROOT" && cargo metadata --format-version 1 2>/dev/null | python3 -c '
import json, os, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "rustls-platform-verifier-android":
        print(p["version"], os.path.dirname(p["manifest_path"]))
        break')" || true
[ -n "$verifier_crate" ] || apk_die "cargo metadata found no rustls-platform-verifier-android crate (is Cargo.lock in sync?)"
verifier_version="${verifier_crate%% *}"
verifier_aar="${verifier_crate#* }/maven/rustls/rustls-platform-verifier/$verifier_version/rustls-platform-verifier-$verifier_version.aar"
[ -s "$verifier_aar" ] || apk_die "no AAR at $verifier_aar (crate versions 0.2+ no longer bundle it)"
unpack "$verifier_aar" "$OUT/aar/verifier"
lib_jars=("$OUT/aar/jna/classes.jar" "$OUT/aar/verifier/classes.jar")

# --- UniFFI bindings ----------------------------------------------------------------
apk_step "UniFFI Kotlin bindings (scripts/build-android.sh bindings)"
apk_timed "bindings" bash "$ROOT/scripts/build-android.sh" bindings --out "$OUT/uniffi"

# --- Kotlin -------------------------------------------------------------------------
sources=("$ROOT/android/app/src/main/kotlin" "$ROOT/bindings/kotlin" "$OUT/uniffi")
compile_cp="$android_all:$(printf '%s\n' "${runtime_jars[@]}" "${lib_jars[@]}" | paste -sd: -)"
# What the classes depend on: every source file, the classpath, the compiler.
compile_key="$( { printf '%s\n' "$kotlin" "$compile_cp"
                  find "${sources[@]}" -name '*.kt' -type f | LC_ALL=C sort | xargs sha256sum; } \
                | sha256sum | cut -c1-32)"
app_jar="$OUT/app-classes.jar"
# A jar of class directories (later ones win) with sorted entries and one
# fixed timestamp: D8/R8 output then depends only on the classes, not on
# when they were compiled.
jar_classes() { # out dir...
    python3 - "$@" <<'PY'
import os, sys, zipfile
out, *dirs = sys.argv[1:]
files = {}
for d in dirs:
    for r, _, fs in os.walk(d):
        for f in fs:
            if f.endswith(".class") or f.endswith(".kotlin_module"):
                full = os.path.join(r, f)
                files[os.path.relpath(full, d).replace(os.sep, "/")] = full
with zipfile.ZipFile(out, "w") as z:
    for name in sorted(files):
        info = zipfile.ZipInfo(name, date_time=(1981, 1, 1, 1, 1, 2))
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(files[name], "rb") as fh:
            z.writestr(info, fh.read())
PY
}
if [ -n "${APK_CLASSES_FROM:-}" ]; then
    # Build once: reuse the classes android/compile-check just compiled
    # from the same sources (logic/target/classes:app/target/classes).
    IFS=: read -r -a from_dirs <<<"$APK_CLASSES_FROM"
    # The generated bindings are rewritten on every run: not compared.
    newest_src="$(find "$ROOT/android/app/src/main/kotlin" "$ROOT/bindings/kotlin" -name '*.kt' -type f -printf '%T@\n' | sort -n | tail -n 1)"
    for d in "${from_dirs[@]}"; do
        [ -d "$d" ] || apk_die "APK_CLASSES_FROM: no directory $d"
        newest_cls="$(find "$d" -name '*.class' -printf '%T@\n' | sort -n | tail -n 1)"
        [ -n "$newest_cls" ] || apk_die "APK_CLASSES_FROM: no classes in $d"
        awk -v c="$newest_cls" -v s="$newest_src" 'BEGIN { exit !(c >= s) }' \
            || apk_die "APK_CLASSES_FROM: $d is older than the newest Kotlin source; recompile it"
    done
    apk_step "kotlinc: reusing ${from_dirs[*]}"
    rm -f "$app_jar" "$app_jar.key"
    jar_classes "$app_jar" "${from_dirs[@]}"
elif [ -s "$app_jar" ] && [ "$(cat "$app_jar.key" 2>/dev/null)" = "$compile_key" ]; then
    apk_step "kotlinc: up to date"
else
    apk_step "kotlinc $kotlin: the app, bindings/kotlin and the UniFFI bindings (jvmTarget 17)"
    rm -rf "$OUT/classes" "$app_jar" "$app_jar.key"
    # In this JVM, not a daemon: nothing keeps running after the build.
    apk_timed "kotlinc" nice -n 10 java -Xmx2g -cp "$tools_cp" \
        org.jetbrains.kotlin.cli.jvm.K2JVMCompiler \
        -no-stdlib -no-reflect -jvm-target 17 -module-name app \
        -classpath "$compile_cp" -d "$OUT/classes" "${sources[@]}"
    jar_classes "$app_jar" "$OUT/classes"
    printf '%s\n' "$compile_key" >"$app_jar.key"
fi

# --- dex ----------------------------------------------------------------------------
# D8/R8 print pages of "Info:" about the libraries' debug data; keep them
# in a log, and show it all when the tool fails.
logged() { # log cmd...
    local log="$1"
    shift
    "$@" >"$log" 2>&1 || { cat "$log" >&2; return 1; }
}
program=("$app_jar" "${runtime_jars[@]}" "${lib_jars[@]}")
libs=(--lib "$java_home" --lib "$android_all")
work="$OUT/work"
rm -rf "$work" "$OUT"/classes*.dex "$OUT/java-res" "$OUT/mapping.txt"
mkdir -p "$work" "$OUT/java-res"
if [ "$release" = 1 ]; then
    keep_aapt="$APK_BUILD/res/aapt2-keep.pro"
    [ -s "$keep_aapt" ] || apk_die "$keep_aapt missing: run scripts/apk/resources/build-resources.sh first (R8 would drop the manifest's classes)"
    apk_step "R8 $r8 --release (min API $APK_MIN_SDK)"
    # Library jars' embedded rules (coroutines') are read by R8 itself.
    apk_timed "r8" logged "$work/r8.log" nice -n 10 java -Xmx2g -cp "$r8_jar" com.android.tools.r8.R8 \
        --release --min-api "$APK_MIN_SDK" "${libs[@]}" \
        --pg-conf "$HERE/android-defaults.pro" \
        --pg-conf "$ROOT/android/app/proguard-rules.pro" \
        --pg-conf "$keep_aapt" \
        --pg-map-output "$OUT/mapping.txt" \
        --output "$work/out.zip" "${program[@]}" \
        || apk_die "R8 failed (log above)"
    # R8 renames the service files and their contents with the classes.
    res_from=("$work/out.zip")
else
    # One D8 run over everything. (Dexing the libraries once and merging, as
    # AGP does, saved ~15 s on warm runs but cost ~60 s more on cold ones,
    # and CI always starts cold.)
    apk_step "D8 $r8 --debug (min API $APK_MIN_SDK)"
    apk_timed "d8" logged "$work/d8.log" nice -n 10 java -Xmx2g -cp "$r8_jar" com.android.tools.r8.D8 \
        --debug --min-api "$APK_MIN_SDK" "${libs[@]}" \
        --output "$work/out.zip" "${program[@]}" \
        || apk_die "D8 failed (log above)"
    # D8 writes only dex: the service files come from the jars as they are.
    res_from=("${program[@]}")
fi
# R8 copies each jar's META-INF (module-info, embedded rules) and warns on the
# duplicates; those files do not go into the APK.
grep -E '^(Warning|Error)' "$work"/*.log | grep -v "^Warning: Resource 'META-INF/.*' already exists\.$" >&2 || true
python3 - "$work/out.zip" "$OUT" "$OUT/java-res" "${res_from[@]}" <<'PY'
import os, re, sys, zipfile
dex_zip, dex_dir, res_dir, *sources = sys.argv[1:]
with zipfile.ZipFile(dex_zip) as z:
    dexes = [n for n in z.namelist() if re.fullmatch(r"classes\d*\.dex", n)]
    if not dexes:
        sys.exit(f"build-dex: no classes*.dex in {dex_zip}")
    for n in dexes:
        with open(os.path.join(dex_dir, n), "wb") as f:
            f.write(z.read(n))
found, origin = {}, {}
for src in sources:
    with zipfile.ZipFile(src) as z:
        for n in z.namelist():
            if n.startswith("META-INF/services/") and not n.endswith("/"):
                blob = z.read(n)
                if n in found and found[n] != blob:
                    sys.exit(f"build-dex: {n} differs between {origin[n]} and {src}")
                found[n], origin[n] = blob, src
for n, blob in sorted(found.items()):
    path = os.path.join(res_dir, n)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(blob)
PY

# --- check --------------------------------------------------------------------------
apk_step "check: classes, service files and JNA libraries"
# Classes the app cannot run without; R8 keeps these names (manifest,
# proguard-rules.pro), and D8 renames nothing.
wanted=(app.dotcore.MainActivity app.dotcore.DotVpnService app.dotcore.DotApp
        app.dotcore.ffi. com.sun.jna.Native org.rustls.platformverifier.CertificateVerifier)
if [ "$release" = 0 ]; then
    wanted+=(kotlin.Unit kotlinx.coroutines.android.AndroidDispatcherFactory
             kotlinx.coroutines.Dispatchers)
fi
for dex in "$OUT"/classes*.dex; do
    dexdump -c "$dex" >"$work/dexdump.log" 2>&1 \
        || { cat "$work/dexdump.log" >&2; apk_die "ART's verifier (dexdump -c) rejects $dex"; }
done
python3 "$HERE/dex_check.py" "$OUT" "$OUT/java-res" "$JNA_OUT" "${wanted[@]}" \
    || apk_die "the dex output is incomplete (see above)"
rm -rf "$work"
apk_step "done in $(( $(date +%s) - total0 )) s: $(cd "$OUT" && ls classes*.dex | tr '\n' ' ')($(cat "$OUT"/classes*.dex | wc -c) bytes)"
