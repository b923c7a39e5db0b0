#!/usr/bin/env bash
# libdotcore_ffi.so for the APK, built without the Android NDK or rustup
# targets (docs/android.md explains every step and its sources).
#
#   scripts/apk/native/build-native.sh [--release|--debug]
#                                      [--abis arm64-v8a,x86_64] [--out DIR]
#
# Writes DIR/<abi>/libdotcore_ffi.so (default DIR target/apk-build/native):
# stripped (the dynamic symbols JNA looks up stay), 16 KiB-aligned LOAD
# segments, linked against bionic stub libraries at API $APK_MIN_SDK.
# Installs what it needs on the first run (apt packages; Debian's Rust
# unpacked under target/android-toolchain/); later runs reuse it all.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
# shellcheck source=toolchain.sh
. "$ROOT/scripts/apk/native/toolchain.sh"

usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

profile=release
abis="arm64-v8a,x86_64"
out="$APK_BUILD/native"
while [ "$#" -gt 0 ]; do
    case "$1" in
        --release) profile=release; shift ;;
        --debug) profile=debug; shift ;;
        --abis) abis="${2:?--abis needs a value}"; shift 2 ;;
        --out) out="${2:?--out needs a directory}"; shift 2 ;;
        -h | --help) usage ;;
        *) native_die "unknown argument: $1 (see --help)" ;;
    esac
done
case "$out" in /*) ;; *) out="$ROOT/$out" ;; esac

abi_list=()
IFS=, read -r -a abi_list <<<"$abis"
[ "${#abi_list[@]}" -gt 0 ] || native_die "--abis is empty"
for abi in "${abi_list[@]}"; do
    abi_triple "$abi" >/dev/null
    if [ "$abi" = armeabi-v7a ]; then
        native_die "armeabi-v7a is not built: the unwinding crate has no ARM EHABI unwinder and
bionic's libc exports _Unwind_VRS_Get only from API 30 (see docs/android.md, "Native libraries")"
    fi
done

timed "host tools" ensure_host_tools
timed "Rust $APK_RUST_WEB_VERSION" ensure_rust_web

# The stub sysroot of one ABI: bionic's libraries as the NDK's stubs would
# be (gen_stubs.py), plus our crt objects and emutls. Rebuilt when its inputs
# change (a stamp holds their hash).
build_sysroot() {
    local abi="$1" triple arch dir stamp inputs
    triple="$(abi_triple "$abi")"
    arch="$(abi_map_arch "$abi")"
    dir="$APK_BUILD/sysroot/$abi"
    stamp="$dir/.inputs"
    inputs="$(cat scripts/apk/bionic/symbols.tsv scripts/apk/native/gen_stubs.py \
        scripts/apk/native/crt/* | sha256sum | cut -d' ' -f1) $APK_CLANG $APK_MIN_SDK"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then
        return 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir/src"
    python3 scripts/apk/native/gen_stubs.py --symbols scripts/apk/bionic/symbols.tsv \
        --arch "$arch" --api "$APK_MIN_SDK" --out "$dir/src" >&2
    local cc=("$APK_CLANG" "--target=$triple$APK_MIN_SDK" -fPIC)
    local lib
    for lib in libc libm libdl liblog; do
        # -fno-builtin: the dummy definitions reuse names like memcpy with
        # other types; -w: and clang would warn about each.
        "${cc[@]}" -O0 -ffreestanding -fno-builtin -w -c "$dir/src/$lib.c" -o "$dir/src/$lib.o"
        "${cc[@]}" -shared -nostdlib -fuse-ld=lld "-Wl,-soname,$lib.so" \
            "-Wl,--version-script,$dir/src/$lib.map" "$dir/src/$lib.o" -o "$dir/$lib.so"
    done
    # std's unwind crate asks for -lunwind (the NDK's libunwind.a); the
    # unwinder is the `unwinding` crate inside libdotcore_ffi itself, so an
    # empty archive satisfies the request.
    "llvm-ar-$APK_LLVM_MAJOR" rcs "$dir/libunwind.a"
    local crt=scripts/apk/native/crt
    "${cc[@]}" -O2 -Wall -Wextra -Werror -c "$crt/crtbegin_so.c" -o "$dir/src/crtbegin_so_c.o"
    "${cc[@]}" "-DANDROID_API=$APK_MIN_SDK" -c "$crt/crtbrand.S" -o "$dir/src/crtbrand.o"
    "ld.lld-$APK_LLVM_MAJOR" -r "$dir/src/crtbegin_so_c.o" "$dir/src/crtbrand.o" -o "$dir/crtbegin_so.o"
    "${cc[@]}" -c "$crt/crtend_so.S" -o "$dir/crtend_so.o"
    "${cc[@]}" -O2 -Wall -Wextra -Werror -ffreestanding -c "$crt/emutls.c" -o "$dir/emutls.o"
    printf '%s\n' "$inputs" >"$stamp"
}

# What we ship must be what Android loads: right machine, 16 KiB pages,
# bionic's libraries only, the API-level note.
check_library() {
    local abi="$1" so="$2" readelf="llvm-readelf-$APK_LLVM_MAJOR"
    local machine want
    machine="$("$readelf" -h "$so" | sed -n 's/^ *Machine: *//p')"
    want="$(abi_machine "$abi")"
    [ "$machine" = "$want" ] || native_die "$so: e_machine is '$machine', $abi needs '$want'"
    local align count=0
    for align in $("$readelf" -lW "$so" | awk '$1 == "LOAD" { print $NF }'); do
        [ "$((align))" -ge 16384 ] || native_die "$so: a LOAD segment is aligned to $align (< 16384)"
        count=$((count + 1))
    done
    [ "$count" -gt 0 ] || native_die "$so: no LOAD segments"
    local needed
    needed="$("$readelf" -dW "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')"
    local n
    for n in $needed; do
        case "$n" in libc.so | libm.so | libdl.so | liblog.so) ;;
            *) native_die "$so needs $n, which is not one of bionic's NDK libraries" ;;
        esac
    done
    "$readelf" -nW "$so" | grep >/dev/null 'Android' || native_die "$so: no .note.android.ident"
    native_step "$abi: $(stat -c %s "$so") bytes, $count LOAD segments aligned >= 16384, $machine, needs: $needed"
}

build_abi() {
    local abi="$1" triple sysroot
    triple="$(abi_triple "$abi")"
    sysroot="$APK_BUILD/sysroot/$abi"
    timed "$abi stub sysroot" build_sysroot "$abi"

    local env_lines=()
    mapfile -t env_lines < <(android_cargo_env "$triple" "$sysroot")
    local args=(rustc --locked -p dotcore-ffi --lib --crate-type cdylib --target "$triple"
        -Zbuild-std=std,panic_unwind)
    local profile_env=()
    if [ "$profile" = release ]; then
        args+=(--release)
        # One codegen unit with LTO: smaller and faster code, as the Gradle
        # build's release. Debug info off here; the strip below removes
        # the rest of the static symbols.
        profile_env=(CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_LTO=true
            CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1)
    fi
    native_step "$abi: cargo ${args[*]}"
    timed "$abi cargo build ($profile)" env "${env_lines[@]}" "${profile_env[@]}" \
        nice -n 10 "$APK_TOOLCHAIN/usr/bin/cargo" "${args[@]}"

    local built="$APK_CARGO_TARGET_DIR/$triple/$profile/libdotcore_ffi.so"
    [ -f "$built" ] || native_die "cargo did not produce $built"
    mkdir -p "$out/$abi"
    local so="$out/$abi/libdotcore_ffi.so"
    # --strip-all keeps .dynsym: the UniFFI entry points JNA resolves.
    "llvm-strip-$APK_LLVM_MAJOR" --strip-all -o "$so.tmp" "$built"
    mv -f "$so.tmp" "$so"
    check_library "$abi" "$so"
}

for abi in "${abi_list[@]}"; do
    build_abi "$abi"
done
native_step "done: $(printf "$out/%s/libdotcore_ffi.so " "${abi_list[@]}")"
