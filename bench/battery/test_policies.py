"""Policy simulators, timeline format, trace format and report hook."""
import io
import json
from pathlib import Path

import pytest

from battery import gen_traces, policies as P, report, timeline as TL, trace as T, wire

RTT = 0.1
SP = P.SimParams(rtt=RTT, ticket_lifetime=7200.0)


def mk(lines, duration=None, changes=None):
    qs = [T.Query(t, n, "A", s) for t, n, s in lines]
    ch = changes or [(0.0, lines[0][2] if lines else "on")]
    dur = duration if duration is not None else (qs[-1].t if qs else 0.0)
    return T.Trace("t", qs, ch, dur, 300.0)


def run(tr, pol, sp=SP):
    evs = P.simulate(tr, pol, sp)
    # the output must itself be a valid timeline
    buf = io.StringIO("".join(TL.dumps(e) + "\n" for e in evs))
    parsed = list(TL.iter_events(buf))
    return parsed, TL.summarize(parsed)


def of(evs, kind):
    return [e for e in evs if e["ev"] == kind]


# ------------------------------------------------------------------ android
def test_android_single_query_timeline():
    evs, s = run(mk([(0.0, "a.test", "on")], duration=100.0), P.ANDROID)
    assert of(evs, "conn_open")[0]["t"] == 0.0
    hs = of(evs, "handshake")
    assert len(hs) == 1 and hs[0]["kind"] == "full" and hs[0]["t"] == pytest.approx(2 * RTT)
    q = of(evs, "query")[0]
    assert q["latency_ms"] == pytest.approx(3 * RTT * 1000)     # TCP + TLS 1.3 + query
    # TCP keepalive probe 15 s after the last segment received (0.3), close 20 s
    # after the last data (poll timeout), both timer wake-ups with nothing pending
    wk = of(evs, "wakeup")
    assert [(w["reason"], w["t"]) for w in wk] == [("tcp_keepalive", pytest.approx(15.3)),
                                                   ("idle_timer", pytest.approx(20.3))]
    assert of(evs, "conn_close")[0]["t"] == pytest.approx(20.3)
    assert s.conn_open_seconds == pytest.approx(20.3)
    assert s.wakeups_idle == 2


def test_android_reuse_then_resume():
    tr = mk([(0.0, "a.test", "on"), (10.0, "b.test", "on"), (40.0, "c.test", "on")],
            duration=100.0)
    evs, s = run(tr, P.ANDROID)
    lat = [q["latency_ms"] for q in of(evs, "query")]
    assert lat == pytest.approx([300.0, 100.0, 300.0])
    assert [h["kind"] for h in of(evs, "handshake")] == ["full", "resumed"]
    assert s.conns_opened == 2


def test_resumed_handshake_is_smaller_but_not_faster():
    ftx, frx = wire.handshake_bytes("full")
    rtx, rrx = wire.handshake_bytes("resumed")
    assert frx > 4000 and rrx < 1000 and ftx + frx > 2 * (rtx + rrx)
    _, ready_f, _, _ = wire.handshake_packets("full", "1.3", 1.0)
    _, ready_r, _, _ = wire.handshake_packets("resumed", "1.3", 1.0)
    _, ready_12, _, _ = wire.handshake_packets("full", "1.2", 1.0)
    assert ready_f == ready_r == 2.0 and ready_12 == 3.0


def test_query_and_response_sizes():
    assert wire.QUERY_BYTES == 128 + 2 + 22 + 52
    assert wire.RESPONSE_BYTES == 468 + 2 + 22 + 52


# ------------------------------------------------------------------ cache
def test_ttl_cache_and_coalescing():
    tr = mk([(0.0, "a.test", "on"), (0.1, "a.test", "on"), (100.0, "a.test", "on"),
             (301.0, "a.test", "on")], duration=400.0)
    evs, s = run(tr, P.STUBBY)
    qs = of(evs, "query")
    assert qs[0]["cached"] is False and qs[0]["latency_ms"] == pytest.approx(300)
    assert qs[1].get("coalesced") and qs[1]["latency_ms"] == pytest.approx(200)
    assert qs[2]["cached"] is True and qs[2]["latency_ms"] == 0
    assert qs[3]["cached"] is False          # answer expired at 0.3 + 300
    assert len([e for e in evs if e["ev"] == "tx" and e.get("what") == "query"]) == 2


# ------------------------------------------------------------------ stubby / unbound
def test_stubby_closes_after_10s_and_resumes():
    tr = mk([(0.0, "a.test", "on"), (12.0, "b.test", "on")], duration=60.0)
    evs, s = run(tr, P.STUBBY)
    assert [c["t"] for c in of(evs, "conn_close")] == pytest.approx([10.3, 22.3])
    assert [h["kind"] for h in of(evs, "handshake")] == ["full", "resumed"]
    assert not [w for w in of(evs, "wakeup") if w["reason"] != "idle_timer"]


def test_unbound_no_resumption_and_max_queries():
    lines = [(i * 0.01, f"n{i}.test", "on") for i in range(201)]
    evs, s = run(mk(lines, duration=200.0), P.UNBOUND)
    assert s.conns_opened == 2
    assert s.handshakes_resumed == 0 and s.handshakes_full == 2
    reasons = [c["reason"] for c in of(evs, "conn_close")]
    assert "max_queries" in reasons
    # second query burst after 60 s idle: new full handshake
    tr = mk([(0.0, "a.test", "on"), (61.0, "b.test", "on")], duration=100.0)
    evs, s = run(tr, P.UNBOUND)
    assert [h["kind"] for h in of(evs, "handshake")] == ["full", "full"]
    assert of(evs, "conn_close")[0]["t"] == pytest.approx(60.3)


# ------------------------------------------------------------------ naive
def test_naive_keepalive_connects_at_start_and_pings():
    tr = T.Trace("t", [], [(0.0, "off")], 200.0, 300.0)
    evs, s = run(tr, P.NAIVE)
    assert s.conns_opened == 1 and of(evs, "conn_open")[0]["t"] == 0.0
    ka = [w["t"] for w in of(evs, "wakeup")]
    assert ka == pytest.approx([60.3, 120.4, 180.5])
    assert of(evs, "conn_close")[0]["reason"] == "end"
    assert s.conn_open_seconds == pytest.approx(200.0)


# ------------------------------------------------------------------ dotcore model
def test_dotcore_model_closes_on_state_change():
    pol = P.dotcore_model(30.0, 5.0, 0.0)
    tr = mk([(0.0, "a.test", "on")], duration=100.0,
            changes=[(0.0, "on"), (8.0, "off")])
    evs, s = run(tr, pol)
    c = of(evs, "conn_close")[0]
    assert c["t"] == pytest.approx(8.0) and c["reason"] == "state"
    assert s.wakeups_idle == 0          # the state change, not a timer, closed it


def test_dotcore_model_shorter_timeout_after_state_change():
    pol = P.dotcore_model(30.0, 5.0, 0.0)
    tr = mk([(0.0, "a.test", "on")], duration=100.0,
            changes=[(0.0, "on"), (2.0, "off")])
    evs, _ = run(tr, pol)
    c = of(evs, "conn_close")[0]
    assert c["t"] == pytest.approx(5.3) and c["reason"] == "idle"


def test_dotcore_model_deep_idle_closes_after_drain():
    pol = P.dotcore_model(30.0, 5.0, 0.0)
    tr = mk([(0.0, "a.test", "doze"), (0.05, "b.test", "doze")], duration=100.0,
            changes=[(0.0, "doze")])
    evs, s = run(tr, pol)
    # both queries ride one connection; it closes as soon as nothing is
    # outstanding (last response 0.3, ticket also at 0.3)
    assert s.conns_opened == 1
    assert of(evs, "conn_close")[0]["t"] == pytest.approx(0.3)


def test_ticket_lifetime_forces_full_handshake():
    sp = P.SimParams(rtt=RTT, ticket_lifetime=100.0)
    tr = mk([(0.0, "a.test", "on"), (50.0, "b.test", "on"), (500.0, "c.test", "on")],
            duration=600.0)
    evs, _ = run(tr, P.STUBBY, sp)
    assert [h["kind"] for h in of(evs, "handshake")] == ["full", "resumed", "full"]


def test_server_idle_timeout_closes_first():
    sp = P.SimParams(rtt=RTT, server_idle_timeout=30.0)
    tr = mk([(0.0, "a.test", "on")], duration=100.0)
    evs, _ = run(tr, P.UNBOUND, sp)
    c = of(evs, "conn_close")[0]
    assert c["reason"] == "server" and c["t"] == pytest.approx(30.3)


# ------------------------------------------------------------------ formats
def test_timeline_parser_rejects_bad_input():
    with pytest.raises(TL.TimelineError):
        list(TL.iter_events(['{"t": 1, "ev": "tx"}']))                  # no bytes
    with pytest.raises(TL.TimelineError):
        list(TL.iter_events(['{"t": 2, "ev": "end"}', '{"t": 1, "ev": "end"}']))
    with pytest.raises(TL.TimelineError):
        list(TL.iter_events(['{"t": 1, "ev": "handshake", "conn": 1, "kind": "zero"}']))
    # unknown events and keys are accepted
    evs = list(TL.iter_events(['{"t": 0, "ev": "meta", "version": 1, "x": 2}',
                               '{"t": 1, "ev": "cpu", "ms": 3}']))
    assert len(evs) == 2


def test_summary_counts_unclosed_connection_until_end():
    evs = [{"t": 0, "ev": "meta", "version": 1, "duration": 50},
           {"t": 10, "ev": "conn_open", "conn": 1},
           {"t": 10, "ev": "tx", "bytes": 60}]
    s = TL.summarize(evs)
    assert s.conn_open_seconds == pytest.approx(40)


def test_trace_roundtrip(tmp_path):
    tr = mk([(0.0, "a.test", "on"), (5.5, "b.test", "off")], duration=10.0,
            changes=[(0.0, "on"), (5.0, "off")])
    p = tmp_path / "x.trace"
    T.dump(tr, p)
    back = T.load(p)
    assert back.queries == tr.queries and back.screen_changes == tr.screen_changes
    assert back.duration == 10.0 and back.state_at(4.9) == "on" and back.state_at(5.0) == "off"
    with pytest.raises(T.TraceError):
        T.parse_lines(["1.0 a.test A on", "0.5 b.test A on"])
    with pytest.raises(T.TraceError):
        T.parse_lines(["1.0 a.test A sleeping"])
    # without directives, the state timeline comes from the queries
    t2 = T.parse_lines(["# c", "0 a.test A on", "3 b.test A off"])
    assert t2.screen_changes == [(0.0, "on"), (3.0, "off")]


def test_committed_traces_match_generator(tmp_path):
    gen_traces.main(["--out", str(tmp_path)])
    here = Path(gen_traces.__file__).parent / "traces"
    for name in ("browsing-hour", "screen-off-hour", "mixed-day"):
        assert (tmp_path / f"{name}.trace").read_text() == (here / f"{name}.trace").read_text(), name


def test_traces_respect_stated_model():
    tr = T.load(Path(gen_traces.__file__).parent / "traces" / "browsing-hour.trace")
    assert all(q.qname.endswith(".test") for q in tr.queries)
    assert {q.screen for q in tr.queries} == {"on"}
    day = T.load(Path(gen_traces.__file__).parent / "traces" / "mixed-day.trace")
    assert day.duration == 86400.0
    assert {st for _, st in day.screen_changes} == {"on", "off", "doze"}
    assert all(day.state_at(q.t) == q.screen for q in day.queries)


# ------------------------------------------------------------------ report hook
def test_report_without_and_with_engine_timelines(tmp_path, capsys):
    tdir = tmp_path / "traces"
    tdir.mkdir()
    tr = mk([(0.0, "a.test", "on"), (40.0, "b.test", "off")], duration=120.0,
            changes=[(0.0, "on"), (30.0, "off")])
    tr.name = "tiny"
    T.dump(tr, tdir / "tiny.trace")
    md = tmp_path / "out.md"
    report.main(["--traces", str(tdir), "--no-sweep", "--md-out", str(md),
                 "--engine-timelines", str(tmp_path / "nowhere")])
    text = md.read_text()
    assert report.NO_ENGINE in text and "dotcore (engine) |" in text
    # an engine timeline (here: the model's output standing in for it) is used
    eng = tmp_path / "eng"
    eng.mkdir()
    TL.write(P.simulate(tr, P.DOTCORE_MODEL), eng / "tiny.dotcore.jsonl")
    report.main(["--traces", str(tdir), "--no-sweep", "--md-out", str(md),
                 "--engine-timelines", str(eng)])
    text = md.read_text()
    assert report.NO_ENGINE not in text
    assert "| dotcore (engine) | 2 |" in text


def test_sweep_picks_best_config_under_latency_constraints(monkeypatch):
    # Two page loads 15 s apart, then the screen goes off.  A short Interactive
    # timeout forces a reconnect (higher mean latency than Android's 20 s);
    # the sweep must respect constraint B and prefer the cheapest valid setting.
    tr = mk([(0.0, "a.test", "on"), (15.0, "b.test", "on"), (16.0, "c.test", "on")],
            duration=200.0, changes=[(0.0, "on"), (40.0, "off")])
    tr.name = "tiny"
    monkeypatch.setattr(report, "SWEEP_I", [5, 60])
    monkeypatch.setattr(report, "SWEEP_S", [5])
    monkeypatch.setattr(report, "SWEEP_D", [0])
    res = report.sweep([tr], SP, jobs=1)
    assert set(res) == {(5, 5, 0), (60, 5, 0)}
    android = {"tiny": report.run_policy(tr, P.ANDROID, SP)[0]}
    ok_a, ok_b = report.constraints(res, android)
    assert ok_b[(60, 5, 0)] and not ok_b[(5, 5, 0)]
    assert report.best_config(res, android, ok_b, "lte_marginal_j") == (60, 5, 0)
    md = "\n".join(report.sweep_markdown(res, android, (60, 5, 0)))
    assert "Interactive 60 s / Idle 5 s / DeepIdle 0 s" in md
