#!/usr/bin/env bash
# Installs everything the test suite needs, idempotently, on Debian/Ubuntu.
#
# Why a script: CI starts from a fresh machine and developers from whatever
# they have; both must end up with the same external tools (an independent
# DoT server and clients, packet capture, firewalling for fault injection)
# or tests would silently skip. Every step checks first and only installs
# what is missing, so re-running it is cheap.
set -euo pipefail

step() { printf '==> setup: %s\n' "$*"; }

# --- privileges --------------------------------------------------------------
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        SUDO=(__none__)
    fi
fi
as_root() {
    if [ "${SUDO[0]:-}" = "__none__" ]; then
        return 1
    fi
    "${SUDO[@]}" "$@"
}

# --- Debian packages ----------------------------------------------------------
PACKAGES=(unbound knot-dnsutils bind9-dnsutils knot-resolver bind9 dnsdist dnsperf stubby tcpdump tshark
    nftables iproute2 openssl python3)

is_installed() {
    dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | grep -q '^ii'
}

step "checking Debian packages: ${PACKAGES[*]}"
if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    missing=()
    for p in "${PACKAGES[@]}"; do
        is_installed "$p" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        step "all packages already installed"
    else
        step "missing packages: ${missing[*]}"
        if ! as_root true 2>/dev/null; then
            echo "setup: not root and no passwordless sudo; install them with:" >&2
            echo "    sudo apt-get install -y ${missing[*]}" >&2
            exit 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        step "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        step "apt-get install ${missing[*]}"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends "${missing[@]}"
        still=()
        for p in "${missing[@]}"; do
            is_installed "$p" || still+=("$p")
        done
        if [ "${#still[@]}" -ne 0 ]; then
            echo "setup: failed to install: ${still[*]}" >&2
            exit 1
        fi
    fi
else
    # Not Debian: only report, the package names differ per distribution.
    missing=()
    for t in unbound kdig dig dnsperf stubby tcpdump tshark nft ip openssl python3; do
        command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || missing+=("$t")
    done
    if [ "${#missing[@]}" -ne 0 ]; then
        echo "setup: no apt-get here; please install: ${missing[*]}" >&2
        exit 1
    fi
    step "all tools present"
fi

# --- system services that would hold DNS ports ---------------------------------
# The packages may start system-wide unbound/stubby/named/dnsdist daemons on
# ports 53/853; tests run their own instances on free ports, and a resolver
# daemon changing the machine's DNS under the tests would only add noise.
step "disabling the system DNS daemons the packages start (if systemd manages them)"
if command -v systemctl >/dev/null 2>&1 && systemctl list-units --no-pager >/dev/null 2>&1; then
    for svc in unbound unbound-resolvconf stubby named dnsdist; do
        if systemctl list-unit-files --no-pager "$svc.service" 2>/dev/null | grep -q "^$svc.service"; then
            if systemctl is-enabled --quiet "$svc" 2>/dev/null || systemctl is-active --quiet "$svc" 2>/dev/null; then
                step "systemctl disable --now $svc"
                as_root systemctl disable --now "$svc" || echo "setup: could not disable $svc (continuing)" >&2
            fi
        fi
    done
else
    step "no running systemd; nothing to disable"
fi

# --- Rust toolchain components ------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 1
fi
for comp in rustfmt clippy; do
    if [ "$comp" = rustfmt ]; then probe=(cargo fmt --version); else probe=(cargo clippy --version); fi
    if "${probe[@]}" >/dev/null 2>&1; then
        step "$comp present"
    elif command -v rustup >/dev/null 2>&1; then
        step "rustup component add $comp"
        rustup component add "$comp"
    else
        echo "setup: $comp missing and no rustup to install it" >&2
        exit 1
    fi
done

# cargo-nextest is used when present; it is not installed here because
# compiling it takes about 12 minutes on a 2-core machine, more than the
# whole test suite. scripts/test.sh falls back to `cargo test`.
if cargo nextest --version >/dev/null 2>&1; then
    step "cargo-nextest present"
else
    step "cargo-nextest absent: tests run with cargo test"
fi

step "done"
