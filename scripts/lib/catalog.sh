# Sourced by the scripts that build or test the app outside Gradle
# (test-android-compile.sh, test-app.sh, scripts/apk/): versions come from
# the Gradle version catalog, so every build uses the same ones.
# Usage: catalog_version KEY   (prints the version, or fails naming KEY)

DOTCORE_CATALOG="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/android/gradle/libs.versions.toml"

catalog_version() {
    local v
    v="$(sed -n "s/^$1 *= *\"\([^\"]*\)\".*/\1/p" "$DOTCORE_CATALOG" | head -n 1)"
    if [ -z "$v" ]; then
        printf 'no version %s in %s\n' "'$1'" "$DOTCORE_CATALOG" >&2
        exit 1
    fi
    printf '%s\n' "$v"
}
