#!/usr/bin/env bash
# Sign an APK written by apkzip.py with APK Signature Scheme v2 and v3
# (Debian's apksigner), then check that signing kept every alignment.
#
#   scripts/apk/package/sign.sh [--release] IN_UNSIGNED.apk OUT_SIGNED.apk
#
# Debug (default): the key in $DOTCORE_DEBUG_KEYSTORE (default
#   target/apk/debug.keystore), created once with keytool the way the
#   Android SDK makes its debug key (alias androiddebugkey, store and key
#   password "android", CN=Android Debug,O=Android,C=US, RSA 2048, 30
#   years) and reused afterwards, so reinstalling a debug build over the
#   previous one keeps working.
# --release: the key from the environment, all required:
#   DOTCORE_KEYSTORE        path of the keystore (JKS or PKCS12)
#   DOTCORE_KEYSTORE_PASS   its password
#   DOTCORE_KEY_ALIAS       the key's alias in it
#   DOTCORE_KEY_PASS        the key's password (for PKCS12 the same as the
#                           store's)
#   The passwords reach apksigner as env:NAME, never on a command line.
#
# v1 (JAR) signing is off: minSdk 26 devices all verify v2 (Android 7.0+),
# and v1 would add META-INF entries and make the signature depend on them.
# v3 is on so that a later key rotation (v3.1 lineage) is possible.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
HERE="$ROOT/scripts/apk/package"
# shellcheck source=../versions.sh
. "$ROOT/scripts/apk/versions.sh"

die() { printf 'sign: %s\n' "$*" >&2; exit 1; }
step() { printf '==> sign: %s\n' "$*" >&2; }

release=0
args=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --release) release=1; shift ;;
        --debug) release=0; shift ;;
        -h | --help) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
        -*) die "unknown option: $1" ;;
        *) args+=("$1"); shift ;;
    esac
done
[ "${#args[@]}" -eq 2 ] || die "usage: sign.sh [--release] IN_UNSIGNED.apk OUT_SIGNED.apk"
in="${args[0]}"
out="${args[1]}"
[ -f "$in" ] || die "no such APK: $in"

ensure_tool() {
    local tool="$1" pkg="$2"
    command -v "$tool" >/dev/null 2>&1 && return 0
    step "installing $pkg (for $tool)"
    if ! apt-cache policy "$pkg" 2>/dev/null | grep >/dev/null 'Candidate: [0-9]'; then
        apt-get update -qq
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
    command -v "$tool" >/dev/null 2>&1 || die "$tool still missing after installing $pkg"
}
ensure_tool apksigner apksigner
ensure_tool keytool openjdk-17-jre-headless

if [ "$release" -eq 1 ]; then
    for var in DOTCORE_KEYSTORE DOTCORE_KEYSTORE_PASS DOTCORE_KEY_ALIAS DOTCORE_KEY_PASS; do
        [ -n "${!var:-}" ] || die "--release needs the environment variable $var (see the header of $0)"
    done
    [ -f "$DOTCORE_KEYSTORE" ] || die "DOTCORE_KEYSTORE=$DOTCORE_KEYSTORE: no such file"
    ks="$DOTCORE_KEYSTORE"
    alias="$DOTCORE_KEY_ALIAS"
    ks_pass="env:DOTCORE_KEYSTORE_PASS"
    key_pass="env:DOTCORE_KEY_PASS"
else
    ks="${DOTCORE_DEBUG_KEYSTORE:-$ROOT/target/apk/debug.keystore}"
    alias=androiddebugkey
    ks_pass="pass:android"
    key_pass="pass:android"
    if [ ! -f "$ks" ]; then
        step "creating the debug key $ks"
        mkdir -p "$(dirname "$ks")"
        keytool -genkeypair -keystore "$ks.tmp" -storetype PKCS12 \
            -alias androiddebugkey -storepass android -keypass android \
            -dname "CN=Android Debug,O=Android,C=US" \
            -keyalg RSA -keysize 2048 -validity 10950 >/dev/null 2>&1 ||
            die "keytool could not create $ks"
        mv "$ks.tmp" "$ks"
    fi
fi

step "apksigner sign (v2+v3, no v1) $in -> $out"
mkdir -p "$(dirname "$out")"
rm -f "$out.tmp"
apksigner sign --ks "$ks" --ks-key-alias "$alias" --ks-pass "$ks_pass" --key-pass "$key_pass" \
    --min-sdk-version "$APK_MIN_SDK" \
    --v1-signing-enabled false --v2-signing-enabled true --v3-signing-enabled true \
    --v4-signing-enabled false \
    --out "$out.tmp" "$in" || die "apksigner sign failed for $in"
rm -f "$out.tmp.idsig"

# apksigner keeps an entry's bytes when its offset is unchanged, and
# otherwise re-pads to the alignment in apkzip.py's 0xd935 extra field;
# checked here rather than trusted.
python3 "$HERE/apkzip.py" --check-alignment "$out.tmp" ||
    die "signing broke the alignment of $out.tmp (kept for inspection)"
apksigner verify --min-sdk-version "$APK_MIN_SDK" "$out.tmp" || die "apksigner verify failed for $out.tmp"
mv "$out.tmp" "$out"
step "signed $out"
