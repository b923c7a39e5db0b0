#!/usr/bin/env bash
# Fuzz the TUN packet layer (rust-core/src/packet) with cargo-fuzz.
#
#   scripts/fuzz.sh [seconds-per-target]    (default 60)
#
# Every byte the tunnel carries is hostile, so the parsers must survive
# anything; this runs each target for a fixed time. libFuzzer needs a nightly
# toolchain: without one the run is skipped (exit 0), not failed, so machines
# that only have stable are not blocked. A crash exits non-zero and leaves
# the input under rust-core/fuzz/artifacts/<target>/.
set -euo pipefail

secs="${1:-60}"
case "$secs" in
  '' | *[!0-9]*)
    echo "usage: $0 [seconds-per-target]" >&2
    exit 2
    ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$root/rust-core/fuzz"
targets=(packet_parse dns_truncate dns_query tcp_stream wire_vs_hickory)

nightly=""
if command -v rustup >/dev/null 2>&1; then
  nightly="$(rustup toolchain list | awk '/^nightly/ { print $1; exit }')"
fi
if [ -z "$nightly" ]; then
  echo "SKIP: fuzzing needs a nightly toolchain and none is installed" \
    "(rustup toolchain install nightly)"
  exit 0
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# cargo fuzz looks for ./fuzz from the crate directory.
cd "$root/rust-core"
for target in "${targets[@]}"; do
  corpus="$fuzz_dir/corpus/$target"
  mkdir -p "$corpus"
  echo "fuzz: $target for ${secs}s on $nightly"
  # New inputs go to the first corpus directory; the checked-in seeds (valid
  # packets whose checksums random mutation would rarely get right) only feed it.
  cargo "+$nightly" fuzz run "$target" "$corpus" "$fuzz_dir/seeds/$target" -- \
    -max_total_time="$secs" -rss_limit_mb=1024
done
echo "fuzz: ${#targets[@]} targets ran ${secs}s each without a crash"
