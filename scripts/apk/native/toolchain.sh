# Shared by build-native.sh and lint-android.sh (sourced; needs ROOT set).
# Installs, idempotently, what building Rust for Android without rustup
# targets or the NDK takes: Debian's LLVM, and Debian's rustc-web/cargo-web
# with the std source unpacked (dpkg -x) under target/android-toolchain/, so
# the rustup toolchain the rest of CI uses is left alone.

# shellcheck source=../versions.sh
. "$ROOT/scripts/apk/versions.sh"

APK_BUILD="$ROOT/target/apk-build"
# The Android builds have their own target directory: they never wait for
# the host build's lock nor invalidate its fingerprints.
APK_CARGO_TARGET_DIR="$APK_BUILD/cargo"
APK_TOOLCHAIN="$ROOT/target/android-toolchain/rust-web-${APK_RUST_WEB_VERSION//[^A-Za-z0-9.]/_}"
APK_CLANG="clang-$APK_LLVM_MAJOR"

native_step() { printf '==> native: %s\n' "$*" >&2; }
native_die() { printf 'native: error: %s\n' "$*" >&2; exit 1; }

# `timed LABEL CMD...` runs CMD and prints how long it took.
timed() {
    local label="$1" start end
    shift
    start="$(date +%s.%N)"
    "$@"
    end="$(date +%s.%N)"
    printf '==> native: %s took %.1f s\n' "$label" "$(echo "$end - $start" | bc)" >&2
}

apt_install_missing() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep >/dev/null 'install ok installed' ||
            missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    native_step "apt-get install ${missing[*]}"
    if ! apt-cache policy "${missing[@]}" 2>/dev/null | grep >/dev/null 'Candidate: [0-9]'; then
        apt-get update -qq
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Host tools: clang as the C compiler (ring) and link driver, lld, llvm-ar/
# strip/readelf; libllvm (rustc-web's codegen backend is the shared LLVM),
# libgit2 (cargo-web), bc (timings), patchelf (RUNPATH of the unpacked
# rustc; also the host test).
ensure_host_tools() {
    apt_install_missing "clang-$APK_LLVM_MAJOR" "lld-$APK_LLVM_MAJOR" "llvm-$APK_LLVM_MAJOR" \
        "libllvm$APK_LLVM_MAJOR" libgit2-1.5 bc patchelf python3 dpkg-dev
}

# The Rust packages, at the pinned version, each unpacked once (a stamp per
# package holds its version). `with_clippy` adds rust-web-clippy
# (lint-android.sh).
ensure_rust_web() {
    # libstd-rust-web-<major.minor> holds librustc_driver; -dev the target
    # libraries of the host; rust-web-src the std source -Zbuild-std builds.
    local packages=(rustc-web cargo-web rust-web-src libstd-rust-web-dev
        "libstd-rust-web-$(printf '%s' "$APK_RUST_WEB_VERSION" | cut -d. -f1-2)")
    [ "${1:-}" = with_clippy ] && packages+=(rust-web-clippy)
    local pkg missing=()
    for pkg in "${packages[@]}"; do
        [ "$(cat "$APK_TOOLCHAIN/.installed-$pkg" 2>/dev/null)" = "$APK_RUST_WEB_VERSION" ] ||
            missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    native_step "unpacking Debian's ${missing[*]} $APK_RUST_WEB_VERSION into $APK_TOOLCHAIN"
    local debs="$ROOT/target/android-toolchain/debs"
    mkdir -p "$debs" "$APK_TOOLCHAIN"
    if ! apt-cache policy rustc-web 2>/dev/null | grep >/dev/null "$APK_RUST_WEB_VERSION"; then
        apt-get update -qq
    fi
    for pkg in "${missing[@]}"; do
        local deb
        deb="$(ls "$debs/${pkg}_${APK_RUST_WEB_VERSION}_"*.deb 2>/dev/null | head -n 1 || true)"
        if [ -z "$deb" ]; then
            # -o APT::Sandbox::User=root: the download directory is root's.
            (cd "$debs" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$APK_RUST_WEB_VERSION") ||
                native_die "apt-get download $pkg=$APK_RUST_WEB_VERSION failed (bookworm-security must be in the apt sources)"
            deb="$(ls "$debs/${pkg}_${APK_RUST_WEB_VERSION}_"*.deb | head -n 1)"
        fi
        dpkg-deb -x "$deb" "$APK_TOOLCHAIN"
        printf '%s\n' "$APK_RUST_WEB_VERSION" >"$APK_TOOLCHAIN/.installed-$pkg"
    done
    # Debian's binaries look for librustc_driver in /usr/lib/<triplet>; point
    # them at the unpacked copy instead of exporting LD_LIBRARY_PATH to every
    # process cargo starts.
    local bin
    for bin in rustc rustdoc clippy-driver cargo-clippy; do
        if [ -f "$APK_TOOLCHAIN/usr/bin/$bin" ]; then
            # shellcheck disable=SC2016 # $ORIGIN is for the dynamic loader
            patchelf --set-rpath '$ORIGIN/../lib/x86_64-linux-gnu' "$APK_TOOLCHAIN/usr/bin/$bin"
        fi
    done
    "$APK_TOOLCHAIN/usr/bin/rustc" -vV >/dev/null ||
        native_die "the unpacked rustc does not run: $APK_TOOLCHAIN/usr/bin/rustc"
}

abi_triple() {
    case "$1" in
        arm64-v8a) echo aarch64-linux-android ;;
        x86_64) echo x86_64-linux-android ;;
        armeabi-v7a) echo armv7-linux-androideabi ;;
        *) native_die "unknown ABI '$1' (known: arm64-v8a, x86_64, armeabi-v7a)" ;;
    esac
}

# Arch names of bionic's symbol maps.
abi_map_arch() {
    case "$1" in
        arm64-v8a) echo arm64 ;;
        x86_64) echo x86_64 ;;
        armeabi-v7a) echo arm ;;
    esac
}

# What `llvm-readelf -h` prints as Machine.
abi_machine() {
    case "$1" in
        arm64-v8a) echo AArch64 ;;
        x86_64) echo "Advanced Micro Devices X86-64" ;;
        armeabi-v7a) echo ARM ;;
    esac
}

# Environment for cargo building for TRIPLE (printed as NAME=VALUE lines).
android_cargo_env() {
    local triple="$1" sysroot="$2"
    local up="${triple^^}"
    up="${up//-/_}"
    local low="${triple//-/_}"
    local cargo_home="${CARGO_HOME:-$HOME/.cargo}"
    local src
    src="$(cd "$APK_TOOLCHAIN/usr/src" && pwd -P)/rustc-${APK_RUST_WEB_VERSION%%+*}"
    # Paths in panic messages and debug info: the same from any checkout
    # directory, cargo home or toolchain location (the last match wins, so
    # the workspace, which contains the others, comes first).
    local remap=(
        "--remap-path-prefix=$ROOT=/dotcore"
        "--remap-path-prefix=$cargo_home=/cargo"
        "--remap-path-prefix=$APK_TOOLCHAIN/usr/lib/rustlib/src/rust=/rustc/src"
        "--remap-path-prefix=$src=/rustc/src"
    )
    # C code (ring) sees no system headers: there are no bionic headers here,
    # and the host's glibc ones would be wrong. ring supports exactly that
    # with RING_CORE_NOSTDLIBINC (its build.rs sets it for wasm32/musl).
    # -ffreestanding: clang's own x86 intrinsics headers include <stdlib.h>
    # unless the environment is freestanding.
    local cprefix="-ffile-prefix-map=$ROOT=/dotcore -ffile-prefix-map=$cargo_home=/cargo"
    printf '%s\n' \
        "RUSTC=$APK_TOOLCHAIN/usr/bin/rustc" \
        "RUSTDOC=$APK_TOOLCHAIN/usr/bin/rustdoc" \
        "RUSTC_BOOTSTRAP=1" \
        "CARGO_TARGET_DIR=$APK_CARGO_TARGET_DIR" \
        "CARGO_TARGET_${up}_LINKER=$ROOT/scripts/apk/native/dotcore-clang.sh" \
        "CARGO_TARGET_${up}_RUSTFLAGS=${remap[*]}" \
        "DOTCORE_APK_SYSROOT=$sysroot" \
        "DOTCORE_APK_CLANG=$APK_CLANG" \
        "DOTCORE_APK_CLANG_TARGET=${triple}${APK_MIN_SDK}" \
        "CC_${low}=$APK_CLANG" \
        "AR_${low}=llvm-ar-$APK_LLVM_MAJOR" \
        "CFLAGS_${low}=--target=${triple}${APK_MIN_SDK} -nostdlibinc -ffreestanding -DRING_CORE_NOSTDLIBINC=1 $cprefix" \
        "ASMFLAGS_${low}=--target=${triple}${APK_MIN_SDK} $cprefix"
}
