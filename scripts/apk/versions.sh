# One place for every pinned version of the SDK-free APK build
# (scripts/build-apk.sh and scripts/apk/*). Sourced by bash.
#
# Versions shared with the Gradle build (Kotlin, coroutines, JNA, SDK levels)
# are read from android/gradle/libs.versions.toml, so both builds compile the
# same sources against the same libraries; this file pins only what Gradle
# does not use.

# Debian bookworm(-security) Rust with its std source, for -Zbuild-std on the
# Android targets (rustup cannot add Android targets on these machines).
APK_RUST_WEB_VERSION="1.96.0+dfsg1-1~deb12u2"
# Debian's LLVM: clang as the C compiler (ring) and linker driver, lld.
APK_LLVM_MAJOR="22"
# The Android framework jar and resources (API 36, Android 16), from Maven
# Central: the same artifact android/compile-check compiles against.
APK_ANDROID_ALL_VERSION="16-robolectric-13921718"
# API levels (the manifest's minSdk/targetSdk are checked against these).
APK_MIN_SDK="26"
APK_TARGET_SDK="36"
# D8/R8 (com.android.tools:r8 on Maven Central, the newest release there in
# November 2026): dexes and, for --release, shrinks the app's classes
# (scripts/apk/dex/build-dex.sh).
APK_R8_VERSION="9.5.28"
