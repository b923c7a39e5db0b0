"""Connection-policy simulators: other DoT clients, and a model of dotcore.

Each policy replays a :class:`battery.trace.Trace` with virtual time and
emits the same JSON-lines event timeline (see :mod:`battery.timeline`) that
the dotcore engine replay emits, so one report path handles all of them.

Common model (identical for every policy, so differences come from the
connection policy alone):

* a TTL cache in front of the transport (every answer cached for the
  trace's TTL, default 300 s); identical in-flight queries are coalesced.
  Android's resolver (res_cache.cpp) and unbound cache; stubby/getdns has
  no cache of its own (on a phone it would sit behind the OS cache), we give
  it the same cache for a like-for-like comparison;
* one upstream server; queries are pipelined on one connection;
* RTT/byte model of :mod:`battery.wire` (TLS 1.3 for every policy);
* a TLS session ticket is valid for ``ticket_lifetime`` seconds after it was
  received (server-chosen; 7200 s assumed);
* the server never closes an idle connection first unless
  ``server_idle_timeout`` is given;
* timers fire on time.  On a real, suspended Android device the poll()
  timeout and TCP keepalive timers use CLOCK_MONOTONIC, which stops during
  suspend, so they may fire late -- this model does not include suspend.

The per-client constants are cited in :data:`POLICIES` and docs/BATTERY.md.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, replace
from typing import Optional

from . import timeline, trace as tracemod, wire


@dataclass(frozen=True)
class Policy:
    name: str
    # idle timeout (s) per power state; None = never close for idleness.
    # 0 = close as soon as no query is outstanding ("after drain").
    idle_timeout: dict
    resumption: bool = True
    # how long after its last use the client still offers a cached session
    # (None = as long as the ticket is valid)
    session_keep: Optional[float] = None
    tls: str = "1.3"
    # kernel TCP keepalive (idle, interval, count), probes do not reset the
    # application's idle timer (they carry no data)
    tcp_keepalive: Optional[tuple] = None
    # application keepalive every N s of silence (naive client)
    app_keepalive: Optional[float] = None
    # connect at start and reconnect right after any close
    always_connected: bool = False
    # close and replace a connection after this many queries
    max_queries_per_conn: Optional[int] = None
    # re-evaluate the idle deadline when the power state changes
    reevaluate_on_state: bool = False
    description: str = ""
    source: str = ""

    def timeout(self, state: str) -> Optional[float]:
        return self.idle_timeout.get(state, self.idle_timeout.get("on"))


def _flat(t):
    return {"on": t, "off": t, "doze": t}


ANDROID = Policy(
    name="android",
    idle_timeout=_flat(20.0),
    resumption=True,
    session_keep=None,
    tcp_keepalive=(15.0, 3.0, 5),
    description="Android DnsResolver DoT (AOSP packages/modules/DnsResolver)",
    source=("DnsTlsSocket.h: kIdleTimeout = std::chrono::seconds(20), used as the poll() "
            "timeout in DnsTlsSocket::loop(); DnsTlsSocket.cpp tcpConnect(): "
            "enableTcpKeepAlives(fd, 15U, 5U, 3U) ('5 keepalives, 3 s apart, after 15 s "
            "of inactivity'); DnsTlsSessionCache (SSL_SESS_CACHE_CLIENT, new-session "
            "callback, getSession() pops one session per connection); DnsTlsDispatcher.cpp "
            "IDLE_TIMEOUT = 5 min for idle transports (the session cache lives in the "
            "transport)."),
)

STUBBY = Policy(
    name="stubby",
    idle_timeout=_flat(10.0),
    resumption=True,
    description="stubby (getdns) with stubby.yml.example settings",
    source=("getdnsapi/stubby stubby.yml.example: idle_timeout: 10000 (ms, 'EDNS0 option "
            "for keepalive idle timeout ... RFC 7828'); getdns src/stub.c process_keepalive(): "
            "keepalive_timeout = min(idle_timeout, server edns-tcp-keepalive) and, for TLS "
            "without a server value, idle_timeout; tls_create_object(): SSL_set_session("
            "upstream->tls_session) -> resumption."),
)

UNBOUND = Policy(
    name="unbound",
    idle_timeout=_flat(60.0),
    resumption=False,
    max_queries_per_conn=200,
    description="unbound forwarder with forward-tls-upstream: yes (defaults)",
    source=("NLnetLabs/unbound doc: tcp-reuse-timeout default 60000 ms, "
            "max-reuse-tcp-queries default 200 (example.conf.in, unbound.conf "
            "manual).  No client-side session re-use found for upstream TLS "
            "(services/outside_network.c: outgoing_ssl_fd + set_auth_name_on_ssl, no "
            "SSL_set_session); NLnetLabs/unbound#47 (2020) said resumption was being "
            "developed -- TO CHECK against the current release."),
)

NAIVE = Policy(
    name="naive-keepalive",
    idle_timeout=_flat(None),
    resumption=True,
    app_keepalive=60.0,
    always_connected=True,
    description="naive always-connected client, keepalive every 60 s of silence",
    source="strawman: never closes, one keepalive exchange per 60 s of silence",
)


def dotcore_model(interactive: float = 30.0, idle: float = 5.0, deep_idle: float = 0.0,
                  name: str = "dotcore-model") -> Policy:
    """inf (or None) = never close for idleness in that state."""
    def norm(x):
        return None if x is None or x == float("inf") else float(x)
    return Policy(
        name=name,
        idle_timeout={"on": norm(interactive), "off": norm(idle), "doze": norm(deep_idle)},
        resumption=True,
        reevaluate_on_state=True,
        description=(f"MODEL of dotcore's intended policy (not the engine): idle timeout "
                     f"Interactive {interactive:g} s / Idle {idle:g} s / DeepIdle "
                     f"{deep_idle:g} s after drain, re-evaluated on power-state change, "
                     f"TLS resumption"),
        source="docs/BATTERY.md (model parameters, to be tuned)",
    )


DOTCORE_MODEL = dotcore_model()

POLICIES = {p.name: p for p in (ANDROID, STUBBY, UNBOUND, NAIVE, DOTCORE_MODEL)}


@dataclass
class _Conn:
    id: int
    open_t: float
    ready_t: float
    last_data: float
    last_rx: float
    n_queries: int = 0
    draining: bool = False


@dataclass
class SimParams:
    rtt: float = 0.050
    ticket_lifetime: float = 7200.0
    server_idle_timeout: Optional[float] = None
    ttl: Optional[float] = None       # None: take the trace's TTL


class Simulator:
    def __init__(self, trace: tracemod.Trace, policy: Policy, params: SimParams | None = None):
        self.trace = trace
        self.p = policy
        self.sp = params or SimParams()
        self.rtt = self.sp.rtt
        self.ttl = self.sp.ttl if self.sp.ttl is not None else trace.ttl
        self.events: list = []
        self.seq = 0
        self.conn: Optional[_Conn] = None
        self.draining: list[_Conn] = []
        self.next_id = 1
        self.ticket_t: Optional[float] = None
        self.last_use: float = float("-inf")
        self.cache: dict = {}
        self.state = trace.screen_changes[0][1] if trace.screen_changes else "on"

    # -- output ----------------------------------------------------------
    def emit(self, t: float, ev: str, **kw) -> None:
        d = {"t": round(t, 6), "ev": ev}
        d.update(kw)
        self.events.append((t, self.seq, d))
        self.seq += 1

    # -- connection life cycle ---------------------------------------------
    def _can_resume(self, t: float) -> bool:
        if not self.p.resumption or self.ticket_t is None:
            return False
        if t - self.ticket_t >= self.sp.ticket_lifetime:
            return False
        if self.p.session_keep is not None and t - self.last_use >= self.p.session_keep:
            return False
        return True

    def open(self, t: float) -> _Conn:
        kind = "resumed" if self._can_resume(t) else "full"
        cid = self.next_id
        self.next_id += 1
        self.emit(t, "conn_open", conn=cid)
        pkts, ready, done, ticket = wire.handshake_packets(kind, self.p.tls, self.rtt)
        for off, d, b, what in pkts:
            self.emit(t + off, d, bytes=b, conn=cid, what=what)
        self.emit(t + done, "handshake", conn=cid, kind=kind, tls=self.p.tls)
        if self.p.resumption:
            self.ticket_t = t + ticket
        last = t + max(off for off, *_ in pkts)
        self.conn = _Conn(cid, t, t + ready, last, last)
        return self.conn

    def close(self, c: _Conn, t: float, reason: str) -> None:
        if reason == "end":
            self.emit(t, "conn_close", conn=c.id, reason=reason)
        elif reason == "server":
            self.emit(t, "rx", bytes=wire.CLOSE_NOTIFY, conn=c.id, what="close")
            self.emit(t, "tx", bytes=wire.CLOSE_NOTIFY, conn=c.id, what="close")
            self.emit(t + self.rtt, "rx", bytes=wire.ACK, conn=c.id, what="ack")
            self.emit(t, "conn_close", conn=c.id, reason=reason)
        else:
            self.emit(t, "tx", bytes=wire.CLOSE_NOTIFY, conn=c.id, what="close")
            self.emit(t + self.rtt, "rx", bytes=wire.CLOSE_NOTIFY, conn=c.id, what="close")
            self.emit(t + self.rtt, "tx", bytes=wire.ACK, conn=c.id, what="ack")
            self.emit(t, "conn_close", conn=c.id, reason=reason)
        self.last_use = max(self.last_use, t)
        if c is self.conn:
            self.conn = None
            if self.p.always_connected and reason != "end":
                self.open(t)

    # -- timers ------------------------------------------------------------
    def _next_timer(self):
        best = None
        for c in self.draining:
            cand = (c.last_data, 0, "drained", c)
            best = cand if best is None or cand[:2] < best[:2] else best
        c = self.conn
        if c is not None:
            cands = []
            to = self.p.timeout(self.state)
            if to is not None:
                cands.append((c.last_data + to, 1, "idle", c))
            if self.sp.server_idle_timeout is not None:
                cands.append((c.last_data + self.sp.server_idle_timeout, 2, "server", c))
            if self.p.tcp_keepalive is not None:
                cands.append((c.last_rx + self.p.tcp_keepalive[0], 3, "tcp_keepalive", c))
            if self.p.app_keepalive is not None:
                cands.append((c.last_rx + self.p.app_keepalive, 4, "keepalive", c))
            for cand in cands:
                if best is None or cand[:2] < best[:2]:
                    best = cand
        return best

    def advance(self, until: float) -> None:
        while True:
            nt = self._next_timer()
            if nt is None or nt[0] >= until:
                return
            t, _, kind, c = nt
            if kind == "drained":
                self.draining.remove(c)
                self.close(c, t, "max_queries")
            elif kind == "idle":
                self.emit(t, "wakeup", pending=0, reason="idle_timer")
                self.close(c, t, "idle")
            elif kind == "server":
                self.close(c, t, "server")
            else:   # keepalive probe: one packet out, one ACK back
                self.emit(t, "wakeup", pending=0, reason=kind)
                self.emit(t, "tx", bytes=wire.KEEPALIVE_PROBE, conn=c.id, what="keepalive")
                self.emit(t + self.rtt, "rx", bytes=wire.ACK, conn=c.id, what="keepalive")
                c.last_rx = t + self.rtt
                if kind == "keepalive":         # application data: resets idleness
                    c.last_data = max(c.last_data, t + self.rtt)

    # -- inputs ------------------------------------------------------------
    def on_screen(self, t: float, state: str) -> None:
        self.emit(t, "screen", state=state)
        self.state = state
        c = self.conn
        if self.p.reevaluate_on_state and c is not None and c.last_data <= t:
            to = self.p.timeout(state)
            if to is not None and c.last_data + to <= t:
                self.close(c, t, "state")

    def on_query(self, q: tracemod.Query) -> None:
        t = q.t
        key = (q.qname, q.qtype)
        ent = self.cache.get(key)
        if ent is not None and ent[0] <= t < ent[1]:
            self.emit(t, "query", latency_ms=0.0, cached=True, qname=q.qname, qtype=q.qtype)
            return
        if ent is not None and ent[0] > t:          # identical query in flight
            done = ent[0]
            self.emit(t, "query", latency_ms=round((done - t) * 1000.0, 3), cached=False,
                      coalesced=True, qname=q.qname, qtype=q.qtype)
            return
        c = self.conn
        if c is None:
            c = self.open(t)
        send = max(t, c.ready_t)
        resp = send + self.rtt
        self.emit(send, "tx", bytes=wire.QUERY_BYTES, conn=c.id, what="query")
        self.emit(resp, "rx", bytes=wire.RESPONSE_BYTES, conn=c.id, what="response")
        self.emit(t, "query", latency_ms=round((resp - t) * 1000.0, 3), cached=False,
                  qname=q.qname, qtype=q.qtype, conn=c.id)
        c.n_queries += 1
        c.last_data = max(c.last_data, resp)
        c.last_rx = max(c.last_rx, resp)
        self.cache[key] = (resp, resp + self.ttl)   # (answer arrives, answer expires)
        self.last_use = max(self.last_use, t)
        if self.p.max_queries_per_conn and c.n_queries >= self.p.max_queries_per_conn:
            # unbound: a full connection leaves the reuse tree; it closes once
            # its outstanding answers are in, new queries open a new one.
            self.conn = None
            self.draining.append(c)

    # -- driver ------------------------------------------------------------
    def run(self) -> list[dict]:
        tr = self.trace
        self.emit(0.0, "meta", version=timeline.VERSION, trace=tr.name, policy=self.p.name,
                  duration=tr.duration, rtt_ms=self.rtt * 1000.0, ttl=self.ttl,
                  ticket_lifetime=self.sp.ticket_lifetime,
                  idle_timeout=self.p.idle_timeout, resumption=self.p.resumption,
                  model=True)
        inputs = [(t, 0, i, ("screen", st)) for i, (t, st) in enumerate(tr.screen_changes)]
        inputs += [(q.t, 1, i, ("query", q)) for i, q in enumerate(tr.queries)]
        inputs.sort(key=lambda x: x[:3])
        if self.p.always_connected:
            self.open(0.0)
        for t, _, _, (kind, payload) in inputs:
            self.advance(t)
            if kind == "screen":
                self.on_screen(t, payload)
            else:
                self.on_query(payload)
        end = max(tr.duration, inputs[-1][0] if inputs else 0.0)
        self.advance(end)
        for c in list(self.draining):
            self.close(c, min(c.last_data, end) if c.last_data <= end else end,
                       "max_queries" if c.last_data <= end else "end")
        self.draining.clear()
        if self.conn is not None:
            c, self.conn = self.conn, None
            self.close(c, end, "end")
        self.emit(end, "end")
        self.events.sort(key=lambda e: (e[0], e[1]))
        return [e[2] for e in self.events]


def simulate(trace: tracemod.Trace, policy: Policy, params: SimParams | None = None) -> list[dict]:
    return Simulator(trace, policy, params).run()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Simulate a client policy on a trace; "
                                 "writes the event timeline (JSON lines)")
    ap.add_argument("trace")
    ap.add_argument("--policy", default="android",
                    help="one of %s, or dotcore-model:I,S,D" % ", ".join(POLICIES))
    ap.add_argument("--rtt-ms", type=float, default=50.0)
    ap.add_argument("--ticket-lifetime", type=float, default=7200.0)
    ap.add_argument("--server-idle-timeout", type=float, default=None)
    ap.add_argument("-o", "--out", default="-")
    a = ap.parse_args(argv)
    if a.policy.startswith("dotcore-model:"):
        i, s, d = (float(x) for x in a.policy.split(":", 1)[1].split(","))
        pol = dotcore_model(i, s, d)
    else:
        pol = POLICIES[a.policy]
    evs = simulate(tracemod.load(a.trace), pol,
                   SimParams(rtt=a.rtt_ms / 1000.0, ticket_lifetime=a.ticket_lifetime,
                             server_idle_timeout=a.server_idle_timeout))
    out = sys.stdout if a.out == "-" else open(a.out, "w")
    for e in evs:
        out.write(timeline.dumps(e) + "\n")
    if out is not sys.stdout:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
