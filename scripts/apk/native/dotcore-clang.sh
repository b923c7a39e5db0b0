#!/usr/bin/env bash
# The linker cargo calls for the Android targets (CARGO_TARGET_<T>_LINKER,
# set by build-native.sh). It links like the NDK's clang driver would, but
# against our stub sysroot (gen_stubs.py) and crt objects instead of the
# NDK's: crtbegin_so.o first, crtend_so.o last, emutls.o for LLVM's
# emulated TLS, bionic stub libraries from the sysroot. Its name ends in
# "-clang" because rustc guesses the linker flavour from the file name
# ("link.sh" is taken for MSVC's link.exe).
#   DOTCORE_APK_SYSROOT       directory with crt*.o, emutls.o and lib*.so
#   DOTCORE_APK_CLANG_TARGET  clang target with API level, e.g.
#                             aarch64-linux-android26
#   DOTCORE_APK_CLANG         the clang binary (clang-22)
set -euo pipefail
: "${DOTCORE_APK_SYSROOT:?dotcore-clang.sh is called by build-native.sh, which sets DOTCORE_APK_SYSROOT}"
: "${DOTCORE_APK_CLANG_TARGET:?DOTCORE_APK_CLANG_TARGET not set}"
: "${DOTCORE_APK_CLANG:?DOTCORE_APK_CLANG not set}"
lib="$DOTCORE_APK_SYSROOT"
# -nostdlib: nothing from the host (glibc crt files, libgcc). -z defs: an
# undefined symbol that no stub exports (not in bionic at this API level)
# fails the link instead of failing dlopen on a device. 16 KiB pages for
# Android 15+ devices. GNU hash only (bionic reads it since API 23).
exec "$DOTCORE_APK_CLANG" --target="$DOTCORE_APK_CLANG_TARGET" -fuse-ld=lld -nostdlib \
    -Wl,-z,defs -Wl,-z,max-page-size=16384 -Wl,--hash-style=gnu \
    -Wl,--build-id=sha1 -Wl,-z,noexecstack \
    -L"$lib" "$lib/crtbegin_so.o" "$@" "$lib/emutls.o" "$lib/crtend_so.o"
