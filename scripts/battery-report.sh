#!/usr/bin/env bash
# Battery report for dotcore's connection policy (see docs/BATTERY.md).
#
#   scripts/battery-report.sh [--engine-timelines DIR] [more bench/battery/report.py options]
#
# Replays the committed traces (bench/battery/traces/*.trace) through the
# policy simulators (Android, stubby, unbound, naive keepalive) and the
# Python MODEL of dotcore's intended policy, estimates radio energy, runs the
# idle-timeout sweep, and writes:
#   stdout                      Markdown tables
#   docs/battery-results.md     the same Markdown
#   docs/battery-timeline.png   connection-open periods over the mixed day
#   docs/battery-energy.png     energy per trace and policy
#   target/battery/timelines/   every simulated event timeline (JSON lines)
#
# dotcore ENGINE rows: each trace is replayed through the real engine by
# target/release/battery-replay (built here) into target/battery/engine/.
#   DOTCORE_ENGINE_TIMELINES=DIR   use DIR/<trace>.dotcore.jsonl instead
#   DOTCORE_REPLAY_CMD="<command>" run `<command> <trace file>` per trace
#                                  instead; its stdout is the timeline
#
# matplotlib is installed idempotently into target/battery-venv (set
# BATTERY_NO_VENV=1 to use the system python3 as is; no PNG without matplotlib).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PY=python3
if [ -z "${BATTERY_NO_VENV:-}" ]; then
    VENV="$ROOT/target/battery-venv"
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
    fi
    if ! "$VENV/bin/python" -c 'import matplotlib' >/dev/null 2>&1; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check matplotlib \
            || echo "battery-report: could not install matplotlib; continuing without PNG" >&2
    fi
    PY="$VENV/bin/python"
fi

# The dotcore rows come from the real engine: tests/src/bin/battery-replay.rs
# replays each trace through dotcore's Resolver in virtual time (paused Tokio
# clock, in-process DoT server, 50 ms RTT). DOTCORE_ENGINE_TIMELINES=DIR uses
# timelines made elsewhere instead; DOTCORE_REPLAY_CMD replaces the replay.
ENGINE_DIR="${DOTCORE_ENGINE_TIMELINES:-}"
if [ -z "$ENGINE_DIR" ]; then
    ENGINE_DIR="$ROOT/target/battery/engine"
    mkdir -p "$ENGINE_DIR"
    if [ -z "${DOTCORE_REPLAY_CMD:-}" ]; then
        cargo build --release --quiet -p dotcore-tests --bin battery-replay
    fi
    for tr in bench/battery/traces/*.trace; do
        name=$(basename "$tr" .trace)
        out="$ENGINE_DIR/$name.dotcore.jsonl"
        if [ -n "${DOTCORE_REPLAY_CMD:-}" ]; then
            echo "battery-report: engine replay of $name: $DOTCORE_REPLAY_CMD $tr" >&2
            # shellcheck disable=SC2086  # the command may carry its own arguments
            $DOTCORE_REPLAY_CMD "$tr" > "$out"
        else
            echo "battery-report: engine replay of $name" >&2
            target/release/battery-replay --trace "$tr" --out "$out" >/dev/null
        fi
    done
fi

args=(--md-out docs/battery-results.md --png-dir docs
      --timelines-out target/battery/timelines --robustness-server-idle 30)
if [ -n "$ENGINE_DIR" ]; then
    args+=(--engine-timelines "$ENGINE_DIR")
fi

PYTHONPATH="$ROOT/bench${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" -m battery.report "${args[@]}" "$@"
