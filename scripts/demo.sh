#!/usr/bin/env bash
# The main job: dotcore as a local DNS-over-TLS stub resolver, queried by dig.
#
#   scripts/demo.sh            offline: a local Unbound DoT server with a
#                              throw-away certificate, authenticated by its
#                              SPKI pin; shows answers, truncation, the cache
#                              and the engine's counters, then exits
#   scripts/demo.sh --online   the proxy in front of Cloudflare (strict,
#                              one.one.one.one) until Ctrl-C; needs internet
#
# DEMO_LISTEN=IP:PORT changes the listening address (default 127.0.0.1:5300).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LISTEN="${DEMO_LISTEN:-127.0.0.1:5300}"
HOST="${LISTEN%:*}"
PORT="${LISTEN##*:}"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

case "${1:-}" in
    --online)
        cargo build --release --quiet -p dotcore --features cli
        say "dotcore proxy on $LISTEN -> Cloudflare (strict). Try: dig @$HOST -p $PORT example.com"
        exec target/release/dotcore proxy --listen "$LISTEN" --provider cloudflare --stats
        ;;
    "" | --offline) ;;
    *)
        echo "usage: scripts/demo.sh [--online|--offline]" >&2
        exit 2
        ;;
esac

bash scripts/setup.sh >/dev/null
say "building dotcore and the local DoT server fixture (release)"
cargo build --release --quiet -p dotcore --features cli
cargo build --release --quiet -p dotcore-tests --bin unbound-fixture

TMP="$(mktemp -d)"
FIXTURE_PID=""
PROXY_PID=""
cleanup() {
    exec 3>&- 2>/dev/null || true
    [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null || true
    [ -n "$FIXTURE_PID" ] && wait "$FIXTURE_PID" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# The fixture serves until its stdin closes: hold it open on fd 3.
mkfifo "$TMP/fixture.in"
target/release/unbound-fixture <"$TMP/fixture.in" >"$TMP/fixture.json" &
FIXTURE_PID=$!
exec 3>"$TMP/fixture.in"
for _ in $(seq 1 200); do
    [ -s "$TMP/fixture.json" ] && break
    sleep 0.05
done
[ -s "$TMP/fixture.json" ] || { echo "demo: the DoT server did not start" >&2; exit 1; }
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$TMP/fixture.json" "$1"; }
DOT="$(field dot)"
PIN="$(field leaf_pin)"
say "local Unbound DoT server at $DOT (certificate pinned: $PIN)"

say "dotcore proxy --listen $LISTEN --server $DOT --pin $PIN --stats"
target/release/dotcore proxy --listen "$LISTEN" --server "$DOT" --pin "$PIN" --stats \
    >"$TMP/proxy.out" 2>"$TMP/proxy.err" &
PROXY_PID=$!
for _ in $(seq 1 100); do
    if dig @"$HOST" -p "$PORT" +short +tries=1 +time=1 a.test >/dev/null 2>&1; then break; fi
    sleep 0.1
done

run() { echo "\$ $*"; "$@"; }
say "answers, each fetched over one pinned TLS connection"
run dig @"$HOST" -p "$PORT" +short a.test A
run dig @"$HOST" -p "$PORT" +short a.test AAAA
run dig @"$HOST" -p "$PORT" +short txt.test TXT
say "an answer over 512 bytes: truncated over UDP (flag tc), whole over TCP"
run dig @"$HOST" -p "$PORT" +noedns +ignore big.test TXT | grep -E 'flags:|ANSWER SECTION' || true
echo "\$ dig @$HOST -p $PORT +tcp +short big.test TXT | wc -l"
dig @"$HOST" -p "$PORT" +tcp +short big.test TXT | wc -l
say "the same question again: answered from the cache, TTL counting down"
sleep 1
run dig @"$HOST" -p "$PORT" +noall +answer a.test A

say "the engine's counters (printed by the proxy on SIGINT)"
kill -INT "$PROXY_PID"
wait "$PROXY_PID" || true
PROXY_PID=""
python3 -m json.tool <"$TMP/proxy.out"
