#!/usr/bin/env bash
# Build the unsigned APK twice from two clean checkouts and require the same
# bytes (the F-Droid reproducible-builds test: signatures aside, anyone
# building the same commit gets the same APK).
#
#   scripts/apk/check/check-reproducible.sh [--build CMD] [--apk PATH]
#                                           [--work DIR] [--in-place]
#
#   --build CMD  the build, run by bash in each checkout's root
#                (default: env DOTCORE_REPRO_BUILD, else
#                "bash scripts/build-apk.sh --unsigned-only").
#   --apk PATH   what it writes, relative to the checkout
#                (default: env DOTCORE_REPRO_APK, else
#                target/apk/dotcore-debug-unsigned.apk).
#   --work DIR   where the checkouts go (default target/repro; emptied).
#   --in-place   build twice in this work tree instead (deleting the APK in
#                between): quicker, but it cannot see absolute paths or
#                leftovers leaking into the output.
#
# Checkouts are `git clone`s of HEAD, at two different paths, so what is
# compared is the committed source: commit first. On a difference it prints
# which entries differ and how (apkdiff.py), and exits 1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
HERE="$ROOT/scripts/apk/check"

die() { printf 'check-reproducible: %s\n' "$*" >&2; exit 2; }
step() { printf '==> check-reproducible: %s\n' "$*" >&2; }

build="${DOTCORE_REPRO_BUILD:-bash scripts/build-apk.sh --unsigned-only}"
apk="${DOTCORE_REPRO_APK:-target/apk/dotcore-debug-unsigned.apk}"
work="$ROOT/target/repro"
in_place=0
while [ "$#" -gt 0 ]; do
    case "$1" in
        --build) build="${2:?--build needs a command}"; shift 2 ;;
        --apk) apk="${2:?--apk needs a path}"; shift 2 ;;
        --work) work="${2:?--work needs a directory}"; shift 2 ;;
        --in-place) in_place=1; shift ;;
        -h | --help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
        *) die "unknown argument: $1" ;;
    esac
done

mkdir -p "$work"
work="$(cd "$work" && pwd)"
out_a="$work/a.apk"
out_b="$work/b.apk"
rm -f "$out_a" "$out_b"

build_in() {
    local dir="$1" dest="$2" log="$3"
    step "building in $dir: $build (log $log)"
    local t0=$SECONDS
    if ! (cd "$dir" && bash -c "$build") >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "the build failed in $dir (full log: $log)"
    fi
    [ -f "$dir/$apk" ] || die "the build in $dir wrote no $apk"
    cp "$dir/$apk" "$dest"
    step "built $(wc -c <"$dest") bytes in $((SECONDS - t0)) s"
}

if [ "$in_place" -eq 1 ]; then
    rm -f "$ROOT/$apk"
    build_in "$ROOT" "$out_a" "$work/a.log"
    rm -f "$ROOT/$apk"
    build_in "$ROOT" "$out_b" "$work/b.log"
else
    command -v git >/dev/null || die "git is needed for the clean checkouts"
    rev="$(git -C "$ROOT" rev-parse HEAD)"
    if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ]; then
        step "note: the work tree has uncommitted changes; the checkouts build $rev without them"
    fi
    # Different path lengths on purpose: a build path baked into the output shows.
    for d in "$work/checkout-a" "$work/checkout-bb"; do
        rm -rf "$d"
        git clone -q --no-hardlinks "$ROOT" "$d"
        git -C "$d" checkout -q "$rev"
    done
    build_in "$work/checkout-a" "$out_a" "$work/a.log"
    build_in "$work/checkout-bb" "$out_b" "$work/b.log"
fi

if cmp -s "$out_a" "$out_b"; then
    printf 'reproducible: the two builds are byte-identical (%s bytes, sha256 %s)\n' \
        "$(wc -c <"$out_a")" "$(sha256sum "$out_a" | cut -d' ' -f1)"
    exit 0
fi
cmp "$out_a" "$out_b" || true
python3 "$HERE/apkdiff.py" "$out_a" "$out_b" || true
printf 'NOT reproducible: %s and %s differ (kept for inspection)\n' "$out_a" "$out_b" >&2
exit 1
