#!/usr/bin/env bash
# The Android-only Rust code (bindings/src/platform.rs, the jni,
# android_logger and rustls-platform-verifier paths, the unwinder) is
# compiled only for target_os = "android", so the host's `cargo clippy`
# never sees it. This checks it for aarch64-linux-android with Debian's
# Rust (the same toolchain as build-native.sh) and rust-web-clippy:
#
#   scripts/apk/native/lint-android.sh
#
#   cargo check  -p dotcore-ffi --lib --target aarch64-linux-android
#   cargo clippy -p dotcore-ffi --lib --target aarch64-linux-android -- -D warnings
#
# `-D warnings` after `--` reaches only the workspace's crates (not std,
# which -Zbuild-std compiles with the same flags, nor dependencies) and
# denies rustc's warnings as well as clippy's. --lib only: the crate's tests
# are host tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
# shellcheck source=toolchain.sh
. "$ROOT/scripts/apk/native/toolchain.sh"

timed "host tools" ensure_host_tools
timed "Rust $APK_RUST_WEB_VERSION with clippy" ensure_rust_web with_clippy

triple=aarch64-linux-android
env_lines=()
# No sysroot: nothing is linked. C code (ring's build script) still compiles.
mapfile -t env_lines < <(android_cargo_env "$triple" /nonexistent)
cargo_bin="$APK_TOOLCHAIN/usr/bin/cargo"
common=(--locked -p dotcore-ffi --lib --target "$triple" -Zbuild-std=std,panic_unwind)

timed "cargo check ($triple)" env "${env_lines[@]}" nice -n 10 "$cargo_bin" check "${common[@]}"
# cargo runs `cargo-clippy` from PATH, which finds clippy-driver beside it.
timed "cargo clippy ($triple)" env "${env_lines[@]}" PATH="$APK_TOOLCHAIN/usr/bin:$PATH" \
    nice -n 10 "$cargo_bin" clippy "${common[@]}" -- -D warnings
native_step "lint-android: dotcore-ffi for $triple compiles, no warnings"
