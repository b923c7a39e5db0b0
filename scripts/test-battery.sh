#!/usr/bin/env bash
# The battery benchmark's own checks, fast enough for every CI run: the
# Python model's unit tests, and one engine replay whose timeline must be
# valid and show the policy at work (one full handshake, the rest resumed).
# The full report with plots and the sweep is scripts/battery-report.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

python3 -m pytest -q -p no:cacheprovider bench/battery

cargo build --quiet -p dotcore-tests --bin battery-replay
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
target/debug/battery-replay --trace bench/battery/traces/screen-off-hour.trace \
    --out "$OUT/screen-off-hour.dotcore.jsonl" 2>/dev/null
summary="$(cd bench && python3 -m battery.timeline "$OUT/screen-off-hour.dotcore.jsonl")"
echo "$summary"
case "$summary" in
    *": ok: "*"full=1 "*) echo "battery: engine replay ok" ;;
    *) echo "battery: unexpected engine replay summary" >&2; exit 1 ;;
esac
