# Sourced by the scripts that run Kotlin on the JVM (test-kotlin.sh,
# test-android-compile.sh): makes sure a JDK 17+ and Maven are installed,
# with apt-get when missing, so each script also works on its own.
# Usage: ensure_jvm_tools <label> [extra Debian packages whose command is missing...]

jvm_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

java_major() {
    # `java -version` prints e.g. `openjdk version "17.0.15" ...` on stderr.
    java -version 2>&1 | awk -F'"' '/version/ { split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit }'
}

ensure_jvm_tools() {
    local label="$1"
    shift
    local missing=("$@") jdk=0
    if command -v java >/dev/null 2>&1 && command -v javac >/dev/null 2>&1; then
        jdk="$(java_major || true)"
    fi
    # Debian's default JDK is 17 on bookworm, 21 on trixie: either will do.
    [ "${jdk:-0}" -ge 17 ] 2>/dev/null || missing+=(default-jdk-headless)
    command -v mvn >/dev/null 2>&1 || missing+=(maven)
    [ "${#missing[@]}" -eq 0 ] && return 0
    printf '==> %s: installing %s\n' "$label" "${missing[*]}"
    if ! command -v apt-get >/dev/null 2>&1 || ! jvm_as_root true; then
        printf '%s: please install %s (no apt-get or no root here)\n' "$label" "${missing[*]}" >&2
        return 1
    fi
    jvm_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    jvm_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}
