"""Event timeline format (JSON lines, version 1) and parser.

Every simulator in :mod:`battery.policies` and the dotcore engine replay
emit this format; :mod:`battery.report` consumes it.  One JSON object per
line, ordered by ``t`` (non-decreasing).  ``t`` is seconds from the start
of the trace (virtual time).  Required keys per ``ev``:

=============  ==============================================================
ev             keys
=============  ==============================================================
``meta``       ``version`` (=1), ``trace``, ``policy``; optional anything else
               (``rtt_ms``, ``duration``, parameters).  First line, t = 0.
``screen``     ``state``: ``on`` | ``off`` | ``doze`` -- power state change.
``conn_open``  ``conn``: int id -- client starts a connection (SYN sent).
``handshake``  ``conn``, ``kind``: ``full`` | ``resumed``; optional ``tls``.
               Emitted when the TLS handshake completes.
``tx``/``rx``  ``bytes``: int, IP packet bytes incl. IP/TCP headers, sent /
               received at ``t``.  Optional ``conn``, ``what`` (``syn``,
               ``tls``, ``query``, ``response``, ``keepalive``, ``close``,
               ``ack``).  One event = one packet or one back-to-back flight.
``query``      ``latency_ms``: float, ``cached``: bool.  ``t`` is when the
               query *arrived* from the trace (not when it completed).
               Optional ``qname``, ``qtype``, ``conn``, ``coalesced``.
``conn_close`` ``conn``; optional ``reason``: ``idle`` | ``state`` |
               ``keepalive`` | ``server`` | ``max_queries`` | ``error`` |
               ``end`` (still open at the end of the trace; no packets).
``wakeup``     ``pending``: int (queries in flight; 0 = a timer woke the
               client while nothing was pending); optional ``reason``
               (``idle_timer``, ``keepalive``, ``tcp_keepalive``, ...).
``end``        end of the trace (t = trace duration).  Optional.
=============  ==============================================================

Unknown ``ev`` values and unknown keys are ignored by the parser, so the
engine may emit more detail.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

VERSION = 1
KNOWN_EVENTS = {"meta", "screen", "conn_open", "handshake", "tx", "rx", "query",
                "conn_close", "wakeup", "end"}
REQUIRED = {
    "meta": ("version",),
    "screen": ("state",),
    "conn_open": ("conn",),
    "handshake": ("conn", "kind"),
    "tx": ("bytes",),
    "rx": ("bytes",),
    "query": ("latency_ms", "cached"),
    "conn_close": ("conn",),
    "wakeup": ("pending",),
    "end": (),
}


class TimelineError(ValueError):
    pass


def dumps(ev: dict) -> str:
    return json.dumps(ev, separators=(",", ":"), sort_keys=False)


def write(events: Iterable[dict], path: str | Path) -> None:
    with Path(path).open("w") as f:
        for ev in events:
            f.write(dumps(ev))
            f.write("\n")


def iter_events(lines: Iterable[str], strict: bool = True) -> Iterator[dict]:
    last_t = float("-inf")
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        try:
            ev = json.loads(line)
        except json.JSONDecodeError as e:
            raise TimelineError(f"line {lineno}: not JSON: {e}") from None
        if not isinstance(ev, dict) or "t" not in ev or "ev" not in ev:
            raise TimelineError(f"line {lineno}: need an object with 't' and 'ev'")
        t = ev["t"]
        if not isinstance(t, (int, float)) or math.isnan(t):
            raise TimelineError(f"line {lineno}: bad t {t!r}")
        if strict and t < last_t - 1e-9:
            raise TimelineError(f"line {lineno}: t={t} goes backwards (previous {last_t})")
        last_t = max(last_t, t)
        kind = ev["ev"]
        for key in REQUIRED.get(kind, ()):
            if key not in ev:
                raise TimelineError(f"line {lineno}: {kind!r} event lacks {key!r}")
        if kind == "handshake" and ev["kind"] not in ("full", "resumed"):
            raise TimelineError(f"line {lineno}: handshake kind must be full|resumed")
        if kind in ("tx", "rx") and (not isinstance(ev["bytes"], int) or ev["bytes"] < 0):
            raise TimelineError(f"line {lineno}: bytes must be a non-negative int")
        yield ev


def read(path: str | Path, strict: bool = True) -> list[dict]:
    with Path(path).open() as f:
        return list(iter_events(f, strict=strict))


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in [0, 100]); NaN for an empty list."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(1, math.ceil(p / 100.0 * len(s)))
    return s[min(k, len(s)) - 1]


def median(values: list[float]) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0


@dataclass
class Summary:
    """What the report needs from one timeline."""
    trace: str = ""
    policy: str = ""
    end: float = 0.0
    conns_opened: int = 0
    handshakes_full: int = 0
    handshakes_resumed: int = 0
    conn_intervals: list[tuple[float, float]] = field(default_factory=list)
    packets: list[tuple[float, int, str]] = field(default_factory=list)
    queries: int = 0
    cached: int = 0
    net_latencies_ms: list[float] = field(default_factory=list)
    all_latencies_ms: list[float] = field(default_factory=list)
    query_done: list[float] = field(default_factory=list)   # completion times
    wakeups_idle: int = 0
    tx_bytes: int = 0
    rx_bytes: int = 0
    screen: list[tuple[float, str]] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def conn_open_seconds(self) -> float:
        return sum(b - a for a, b in self.conn_intervals)

    @property
    def median_ms(self) -> float:
        return median(self.net_latencies_ms)

    @property
    def p99_ms(self) -> float:
        return percentile(self.net_latencies_ms, 99)

    @property
    def mean_ms(self) -> float:
        v = self.net_latencies_ms
        return sum(v) / len(v) if v else float("nan")


def summarize(events: Iterable[dict], end: float | None = None) -> Summary:
    s = Summary()
    open_at: dict = {}
    last_t = 0.0
    for ev in events:
        t = float(ev["t"])
        last_t = max(last_t, t)
        k = ev["ev"]
        if k == "meta":
            s.meta = ev
            s.trace = ev.get("trace", "")
            s.policy = ev.get("policy", "")
            if end is None and "duration" in ev:
                end = float(ev["duration"])
        elif k == "conn_open":
            s.conns_opened += 1
            open_at[ev["conn"]] = t
        elif k == "conn_close":
            a = open_at.pop(ev["conn"], None)
            if a is not None:
                s.conn_intervals.append((a, t))
        elif k == "handshake":
            if ev["kind"] == "full":
                s.handshakes_full += 1
            else:
                s.handshakes_resumed += 1
        elif k in ("tx", "rx"):
            s.packets.append((t, int(ev["bytes"]), k))
            if k == "tx":
                s.tx_bytes += int(ev["bytes"])
            else:
                s.rx_bytes += int(ev["bytes"])
        elif k == "query":
            s.queries += 1
            lat = float(ev["latency_ms"])
            s.all_latencies_ms.append(lat)
            s.query_done.append(t + lat / 1000.0)
            if ev["cached"]:
                s.cached += 1
            else:
                s.net_latencies_ms.append(lat)
        elif k == "wakeup":
            if int(ev["pending"]) == 0:
                s.wakeups_idle += 1
        elif k == "screen":
            s.screen.append((t, ev["state"]))
        elif k == "end":
            if end is None:
                end = t
    if end is None:
        end = last_t
    s.end = end
    for a in open_at.values():          # never closed: count until the end
        s.conn_intervals.append((a, max(a, end)))
    s.conn_intervals.sort()
    s.packets.sort(key=lambda p: p[0])
    return s


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description="Validate and summarize a dotcore event timeline")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args(argv)
    rc = 0
    for fn in args.files:
        try:
            s = summarize(read(fn))
        except (OSError, TimelineError) as e:
            print(f"{fn}: INVALID: {e}", file=sys.stderr)
            rc = 1
            continue
        print(f"{fn}: ok: trace={s.trace!r} policy={s.policy!r} end={s.end:.1f}s "
              f"conns={s.conns_opened} full={s.handshakes_full} resumed={s.handshakes_resumed} "
              f"open={s.conn_open_seconds:.1f}s queries={s.queries} cached={s.cached} "
              f"median={s.median_ms:.1f}ms p99={s.p99_ms:.1f}ms idle_wakeups={s.wakeups_idle} "
              f"tx={s.tx_bytes}B rx={s.rx_bytes}B")
    return rc


if __name__ == "__main__":
    sys.exit(main())
