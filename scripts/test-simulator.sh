#!/usr/bin/env bash
# The Linux device simulator suite: `dotcore tun` in network namespaces,
# Unbound upstream, real clients (dig, kdig, getent, Python, dnsperf).
# See docs/simulator.md. scripts/test.sh runs this automatically.
#
#   scripts/test-simulator.sh [test-name-filter]
#
# Needs root (network namespaces, a TUN device, nftables). Without root, or
# without `ip netns` / /dev/net/tun, it prints SKIP and exits 0; the tests
# themselves also skip with "SKIP: ..." in that case.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: the device simulator needs root (network namespaces, TUN, nftables)"
    exit 0
fi
if [ ! -c /dev/net/tun ]; then
    echo "SKIP: /dev/net/tun is missing"
    exit 0
fi

# The external tools come from scripts/setup.sh (idempotent); only call it
# when something is missing so a normal run stays fast.
missing=()
for tool in ip nft unbound dig kdig dnsperf getent ss python3; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || [ -x "/sbin/$tool" ] ||
        missing+=("$tool")
done
if [ "${#missing[@]}" -ne 0 ]; then
    echo "==> test-simulator: missing ${missing[*]}; running scripts/setup.sh"
    bash scripts/setup.sh
fi
if ! ip netns list >/dev/null 2>&1; then
    echo "SKIP: ip netns is not available here"
    exit 0
fi

# Namespaces left by a run that was killed (Drop never ran): their names
# carry the test process id, so only those of dead processes are removed.
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^dc(phone|net|probe)-[0-9]+-[0-9]+$' || true); do
    pid="$(echo "$ns" | cut -d- -f2)"
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "==> test-simulator: removing stale namespace $ns"
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
        rm -rf "/etc/netns/$ns"
    fi
done

# setup.sh installed every tool, so a missing one is a failure, not a skip.
export DOTCORE_TESTS_REQUIRE_TOOLS="${DOTCORE_TESTS_REQUIRE_TOOLS:-1}"

echo "==> test-simulator: building the dotcore CLI"
cargo build -p dotcore --features cli
echo "==> test-simulator: running the simulator tests (one at a time)"
# --ignored: the tests are ignored in the plain workspace run (they need
# root); the benchmark is left to scripts/bench-tun.sh.
timeout 600 cargo test -p dotcore-tests --test simulator -- \
    --ignored --test-threads=1 --skip bench_ "$@"
