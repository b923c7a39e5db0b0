# Sourced by scripts/apk/resources/build-resources.sh and
# scripts/apk/dex/build-dex.sh: pinned versions, timing, tool installs and
# the android-all jar both steps need.
# Expects ROOT (the workspace) and APK_LABEL (prefix of messages) to be set.

# shellcheck source=../versions.sh
. "$ROOT/scripts/apk/versions.sh"

APK_BUILD="$ROOT/target/apk-build"

apk_step() { printf '==> %s: %s\n' "$APK_LABEL" "$*"; }
apk_die() { printf '%s: error: %s\n' "$APK_LABEL" "$*" >&2; exit 1; }

# Wall-clock timing of each step: `apk_timed NAME cmd...`.
apk_timed() {
    local name="$1" t0 t1
    shift
    t0=$(date +%s%N)
    "$@"
    t1=$(( ($(date +%s%N) - t0) / 100000000 ))
    printf '    %s: %d.%d s\n' "$name" $((t1 / 10)) $((t1 % 10))
}

# shellcheck source=../../lib/catalog.sh
. "$ROOT/scripts/lib/catalog.sh"

# Installs Debian packages for the commands that are missing:
# `apk_ensure_debs cmd:package ...`.
apk_ensure_debs() {
    local want=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || want+=("${pair#*:}")
    done
    [ "${#want[@]}" -eq 0 ] && return 0
    apk_step "installing ${want[*]} (apt-get)"
    [ "$(id -u)" -eq 0 ] || apk_die "need root to install ${want[*]}"
    # A fresh machine may have no package lists yet.
    if ! apt-cache policy "${want[@]}" 2>/dev/null | grep >/dev/null 'Candidate: [0-9]'; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${want[@]}"
}

apk_ensure_jvm() {
    # shellcheck source=../../lib/jvm-tools.sh
    . "$ROOT/scripts/lib/jvm-tools.sh"
    ensure_jvm_tools "$APK_LABEL" || apk_die "no JDK 17+/Maven"
}

# Copies a Maven Central artifact (groupId:artifactId:version[:type]) into
# DIR unless it is already there; `mvn dependency:copy` keeps its file name.
apk_maven_copy() {
    local artifact="$1" dir="$2" file="$3"
    [ -s "$dir/$file" ] && return 0
    mkdir -p "$dir"
    mvn -B -q -Dstyle.color=never dependency:copy -Dartifact="$artifact" -DoutputDirectory="$dir" \
        || apk_die "could not fetch $artifact from Maven Central"
    [ -s "$dir/$file" ] || apk_die "mvn fetched $artifact but $dir/$file is missing"
}

# Prints the path of the android-all jar (fetched once, ~190 MB).
apk_android_all_jar() {
    local file="android-all-$APK_ANDROID_ALL_VERSION.jar"
    apk_maven_copy "org.robolectric:android-all:$APK_ANDROID_ALL_VERSION" "$APK_BUILD/lib" "$file" >&2
    printf '%s\n' "$APK_BUILD/lib/$file"
}
