#!/usr/bin/env bash
# Native parts of the Android app, for Gradle (android/app/build.gradle.kts)
# and for scripts/test-android-compile.sh. Nothing it produces is committed.
#
#   scripts/build-android.sh libs [--profile debug|release] [--out DIR]
#                                 [--abis arm64-v8a,armeabi-v7a,x86_64]
#                                 [--platform 26]
#       libdotcore_ffi.so for each ABI with cargo-ndk, into DIR/<abi>/
#       (default android/app/build/rustJniLibs/<profile>). 16 KB page
#       alignment (-z max-page-size=16384, checked afterwards when the NDK
#       has llvm-readelf); release builds are stripped and use LTO.
#       Needs the NDK (ANDROID_NDK_HOME, ANDROID_NDK_ROOT, or the newest
#       $ANDROID_HOME/ndk/<version>); installs cargo-ndk and the Rust
#       targets when missing.
#
#   scripts/build-android.sh bindings --out DIR
#       Builds the host library (cargo build -p dotcore-ffi) and generates
#       the Kotlin bindings from it with the workspace's uniffi-bindgen into
#       DIR (DIR/app/dotcore/ffi/dotcore_ffi.kt). DIR is emptied first.
#
#   scripts/build-android.sh host-lib --out DIR
#       Copies the host build of libdotcore_ffi (.so/.dylib) into DIR, for
#       JVM tests that load the real engine through JNA.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '==> build-android: %s\n' "$*" >&2; }
die() { printf 'build-android: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ "$#" -ge 1 ] || usage
cmd="$1"
shift

profile=debug
out=""
abis="arm64-v8a,armeabi-v7a,x86_64"
platform=26
while [ "$#" -gt 0 ]; do
    case "$1" in
        --profile) profile="$2"; shift 2 ;;
        --release) profile=release; shift ;;
        --debug) profile=debug; shift ;;
        --out) out="$2"; shift 2 ;;
        --abis) abis="$2"; shift 2 ;;
        --platform) platform="$2"; shift 2 ;;
        -h | --help) usage ;;
        *) die "unknown argument: $1" ;;
    esac
done
case "$profile" in debug | release) ;; *) die "--profile must be debug or release" ;; esac

target_dir() {
    local dir
    dir="$(cargo metadata --format-version 1 --no-deps |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
    printf '%s\n' "${dir:-$ROOT/target}"
}

host_lib_path() {
    case "$(uname -s)" in
        Darwin) printf '%s/debug/libdotcore_ffi.dylib\n' "$(target_dir)" ;;
        *) printf '%s/debug/libdotcore_ffi.so\n' "$(target_dir)" ;;
    esac
}

build_host_lib() {
    step "cargo build -p dotcore-ffi (host)"
    cargo build -q -p dotcore-ffi
    local lib
    lib="$(host_lib_path)"
    [ -f "$lib" ] || die "$lib was not built"
    printf '%s\n' "$lib"
}

# --- bindings -----------------------------------------------------------------
cmd_bindings() {
    [ -n "$out" ] || die "bindings needs --out DIR"
    local lib
    lib="$(build_host_lib)"
    step "uniffi-bindgen: Kotlin into $out"
    rm -rf "$out"
    mkdir -p "$out"
    cargo run -q -p uniffi-bindgen -- generate --library "$lib" \
        --language kotlin --no-format --out-dir "$out"
    [ -f "$out/app/dotcore/ffi/dotcore_ffi.kt" ] ||
        die "uniffi-bindgen produced no app/dotcore/ffi/dotcore_ffi.kt in $out"
}

# --- host-lib -----------------------------------------------------------------
cmd_host_lib() {
    [ -n "$out" ] || die "host-lib needs --out DIR"
    local lib
    lib="$(build_host_lib)"
    mkdir -p "$out"
    cp -f "$lib" "$out/"
    step "host library in $out/$(basename "$lib")"
}

# --- libs ---------------------------------------------------------------------
find_ndk() {
    local candidate
    for candidate in "${ANDROID_NDK_HOME:-}" "${ANDROID_NDK_ROOT:-}" "${ANDROID_NDK:-}"; do
        if [ -n "$candidate" ] && [ -f "$candidate/source.properties" ]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    local sdk="${ANDROID_HOME:-${ANDROID_SDK_ROOT:-}}"
    if [ -n "$sdk" ] && [ -d "$sdk/ndk" ]; then
        candidate="$(find "$sdk/ndk" -mindepth 1 -maxdepth 1 -type d | sort -V | tail -n 1)"
        if [ -n "$candidate" ] && [ -f "$candidate/source.properties" ]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    fi
    return 1
}

rust_target() {
    case "$1" in
        arm64-v8a) echo aarch64-linux-android ;;
        armeabi-v7a) echo armv7-linux-androideabi ;;
        x86_64) echo x86_64-linux-android ;;
        x86) echo i686-linux-android ;;
        *) die "unknown ABI $1" ;;
    esac
}

cmd_libs() {
    [ -n "$out" ] || out="$ROOT/android/app/build/rustJniLibs/$profile"
    local ndk
    ndk="$(find_ndk)" || die "no Android NDK found: set ANDROID_NDK_HOME (NDK r27 or newer) or install one with
    sdkmanager 'ndk;27.2.12479018'   (see docs/android.md)"
    export ANDROID_NDK_HOME="$ndk"
    step "NDK: $ndk ($(sed -n 's/^Pkg.Revision *= *//p' "$ndk/source.properties"))"

    if ! cargo ndk --version >/dev/null 2>&1; then
        step "installing cargo-ndk"
        cargo install --locked cargo-ndk
    fi
    local abi_list=()
    IFS=, read -r -a abi_list <<<"$abis"
    local targets=()
    local abi
    for abi in "${abi_list[@]}"; do
        targets+=("$(rust_target "$abi")")
    done
    if command -v rustup >/dev/null 2>&1; then
        local installed missing=()
        installed="$(rustup target list --installed)"
        local t
        for t in "${targets[@]}"; do
            grep -qx "$t" <<<"$installed" || missing+=("$t")
        done
        if [ "${#missing[@]}" -ne 0 ]; then
            step "rustup target add ${missing[*]}"
            rustup target add "${missing[@]}"
        fi
    fi

    # 16 KB pages (Android 15+ devices may use them; Google Play requires
    # 16 KB-compatible libraries for targetSdk 35+). NDK r28+ aligns by
    # default; r27 needs the flag. RUSTFLAGS reaches only the Android
    # targets here, not build scripts (cargo-ndk passes --target).
    export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-z,max-page-size=16384"
    local cargo_args=(build -p dotcore-ffi)
    if [ "$profile" = release ]; then
        cargo_args+=(--release)
        # Stripped (symbols and debug info; the dynamic symbols JNA looks up
        # stay), one codegen unit with LTO for size.
        export CARGO_PROFILE_RELEASE_STRIP=symbols
        export CARGO_PROFILE_RELEASE_DEBUG=0
        export CARGO_PROFILE_RELEASE_LTO=true
        export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
    fi
    local ndk_args=()
    for abi in "${abi_list[@]}"; do
        ndk_args+=(-t "$abi")
    done
    mkdir -p "$out"
    step "cargo ndk ${ndk_args[*]} -P $platform -o $out ${cargo_args[*]}"
    cargo ndk "${ndk_args[@]}" -P "$platform" -o "$out" "${cargo_args[@]}"

    # Check what we ship: every ABI present, every LOAD segment 16 KB aligned.
    local readelf
    readelf="$(find "$ndk/toolchains/llvm/prebuilt" -name llvm-readelf -type f 2>/dev/null | head -n 1 || true)"
    for abi in "${abi_list[@]}"; do
        local so="$out/$abi/libdotcore_ffi.so"
        [ -f "$so" ] || die "$so missing after cargo ndk"
        if [ -n "$readelf" ]; then
            local align
            for align in $("$readelf" -lW "$so" | awk '$1 == "LOAD" { print $NF }'); do
                [ "$((align))" -ge 16384 ] || die "$so has a LOAD segment aligned to $align (< 16 KB)"
            done
        fi
        step "$abi: $(du -h "$so" | cut -f1) ${readelf:+(16 KB aligned)}"
    done
}

case "$cmd" in
    libs) cmd_libs ;;
    bindings) cmd_bindings ;;
    host-lib) cmd_host_lib ;;
    -h | --help | help) usage ;;
    *) die "unknown command $cmd (libs, bindings, host-lib)" ;;
esac
