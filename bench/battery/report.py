"""Battery report: traces x policies -> Markdown table, sweep, PNG plots.

    PYTHONPATH=bench python3 -m battery.report [--engine-timelines DIR] [--md-out FILE]
                                               [--png-dir DIR] [--sweep|--no-sweep]

Engine hook: ``--engine-timelines DIR`` (or env ``DOTCORE_ENGINE_TIMELINES``)
names a directory holding ``<trace>.dotcore.jsonl`` files produced by the
dotcore engine replay (format: :mod:`battery.timeline`).  Without it, the
report says "dotcore: engine timeline not provided" and shows no dotcore
engine numbers; the "dotcore-model" rows are a Python MODEL of the intended
policy, not the engine.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import policies as P
from . import radio as R
from . import timeline as TL
from . import trace as T

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TRACE_DIR = HERE / "traces"
TRACE_ORDER = ["browsing-hour", "screen-off-hour", "mixed-day"]
NO_ENGINE = "dotcore: engine timeline not provided"

# App traffic that follows every resolved name (for the "marginal" column):
# the app sends one request when the answer is in and gets data one RTT later.
APP_REQUEST_BYTES = 700
APP_RESPONSE_BYTES = 15000


@dataclass
class Row:
    trace: str
    policy: str
    kind: str                 # "sim" | "model" | "engine"
    conns: int
    full: int
    resumed: int
    open_s: float
    wakeups: int
    lte_active_s: float
    lte_j: float
    lte_marginal_j: float
    lte_promotions: int
    wifi_active_s: float
    wifi_j: float
    queries: int
    cached: int
    net_queries: int
    median_ms: float
    p99_ms: float
    mean_ms: float
    tx_bytes: int
    rx_bytes: int


def app_packets(summary: TL.Summary, rtt: float) -> list[tuple]:
    out = []
    for done in summary.query_done:
        out.append((done, APP_REQUEST_BYTES, "tx"))
        out.append((done + rtt, APP_RESPONSE_BYTES, "rx"))
    return out


def row_from_summary(s: TL.Summary, trace: str, policy: str, kind: str, rtt: float) -> Row:
    lte = R.energy(s.packets, R.LTE)
    wifi = R.energy(s.packets, R.WIFI)
    marg = R.marginal(s.packets, app_packets(s, rtt), R.LTE)
    return Row(trace, policy, kind, s.conns_opened, s.handshakes_full, s.handshakes_resumed,
               s.conn_open_seconds, s.wakeups_idle, lte.active_s, lte.energy_j, marg,
               lte.promotions, wifi.active_s, wifi.energy_j, s.queries, s.cached,
               len(s.net_latencies_ms), s.median_ms, s.p99_ms, s.mean_ms, s.tx_bytes, s.rx_bytes)


def sensitivity_markdown(summaries: dict, app_rtt: float, trace: str = "mixed-day") -> list[str]:
    """The mixed day's LTE energy under both parameter sets of radio.py, for
    Android's policy and dotcore (the engine when replayed, else the model)."""
    android = summaries.get((trace, "android"))
    ours_key = (trace, "dotcore (engine)") if (trace, "dotcore (engine)") in summaries \
        else (trace, "dotcore-model")
    ours = summaries.get(ours_key)
    if android is None or ours is None:
        return []
    out = [f"## Sensitivity to the LTE constants ({trace})", "",
           "The LTE values of radio.py are recalled from the paper and two of them differ from "
           "the defaults of AT&T's ARO (`LTE_ARO`: tail about 10.12 s, beta 1.2 W); "
           f"{ours_key[1]} against android under both.", "",
           "| LTE parameters | android J | dotcore J | ratio | android DNS-added J | "
           "dotcore DNS-added J | ratio |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for params in (R.LTE, R.LTE_ARO):
        a_tot = R.energy(android.packets, params).energy_j
        o_tot = R.energy(ours.packets, params).energy_j
        a_add = R.marginal(android.packets, app_packets(android, app_rtt), params)
        o_add = R.marginal(ours.packets, app_packets(ours, app_rtt), params)
        out.append(f"| {params.name} | {a_tot:,.0f} | {o_tot:,.0f} | "
                   f"{o_tot / a_tot * 100:.0f} % | {a_add:,.0f} | {o_add:,.0f} | "
                   f"{o_add / a_add * 100:.0f} % |")
    out.append("")
    return out


def run_policy(tr: T.Trace, pol: P.Policy, sp: P.SimParams, kind="sim", dump_dir=None) -> tuple[Row, TL.Summary]:
    evs = P.simulate(tr, pol, sp)
    if dump_dir is not None:
        TL.write(evs, Path(dump_dir) / f"{tr.name}.{pol.name}.jsonl")
    s = TL.summarize(evs)
    return row_from_summary(s, tr.name, pol.name, kind, sp.rtt), s


# ---------------------------------------------------------------- formatting
def _f(x, nd=0):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:,.{nd}f}"


HEAD = ("| policy | conns opened | handshakes full / resumed | conn-open s | idle wake-ups "
        "| LTE radio-active s | LTE J | LTE J over app traffic | Wi-Fi radio-active s | Wi-Fi J "
        "| median ms | p99 ms | mean ms |")
SEP = "|" + "---|" * 13


def md_row(r: Row) -> str:
    name = {"model": f"{r.policy} (MODEL)", "engine": "dotcore (engine)"}.get(r.kind, r.policy)
    return (f"| {name} | {r.conns} | {r.full} / {r.resumed} | {_f(r.open_s)} | {r.wakeups} "
            f"| {_f(r.lte_active_s)} | {_f(r.lte_j)} | {_f(r.lte_marginal_j)} "
            f"| {_f(r.wifi_active_s, 1)} | {_f(r.wifi_j, 1)} "
            f"| {_f(r.median_ms)} | {_f(r.p99_ms)} | {_f(r.mean_ms, 1)} |")


# ---------------------------------------------------------------- sweep
INF = float("inf")
SWEEP_I = [5, 10, 20, 30, 45, 60, 120, 300, INF]
SWEEP_S = [0, 2, 4, 5, 6, 8, 10, 15, 30]
SWEEP_D = [0, 5, 10]

_SWEEP_STATE: dict = {}


def _sweep_init(traces, sp):
    _SWEEP_STATE["traces"] = traces
    _SWEEP_STATE["sp"] = sp


def _sweep_one(key):
    i, s, d = key
    pol = P.dotcore_model(i, s, d)
    out = {}
    for tr in _SWEEP_STATE["traces"]:
        r, _ = run_policy(tr, pol, _SWEEP_STATE["sp"], kind="model")
        out[tr.name] = r
    return key, out


def sweep(traces: list[T.Trace], sp: P.SimParams, jobs: int = 2):
    grid = [(i, s, d) for i in SWEEP_I for s in SWEEP_S for d in SWEEP_D]
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs, initializer=_sweep_init,
                                 initargs=(traces, sp)) as ex:
            return dict(ex.map(_sweep_one, grid, chunksize=16))
    _sweep_init(traces, sp)
    return dict(map(_sweep_one, grid))


def _secs(x) -> str:
    return "never" if x == INF else f"{x:g} s"


def _names(android):
    return [n for n in TRACE_ORDER if n in android] + [n for n in android if n not in TRACE_ORDER]


def constraints(res, android: dict[str, Row]):
    """(A, B) dicts key -> bool.  A: median <= Android's on every trace;
    B: A and mean <= Android's on every trace."""
    names = _names(android)
    ok_a, ok_b = {}, {}
    for key, rows in res.items():
        ok_a[key] = all(rows[n].median_ms <= android[n].median_ms + 1e-9 for n in names)
        ok_b[key] = ok_a[key] and all(rows[n].mean_ms <= android[n].mean_ms + 1e-9 for n in names)
    return ok_a, ok_b


def best_config(res, android, pred, attr, trace=None):
    names = _names(android)

    def tot(rows, a):
        return sum(getattr(rows[n], a) for n in names)
    cands = [k for k in res if pred[k]]
    if not cands:
        return None
    f = (lambda k: getattr(res[k][trace], attr)) if trace else (lambda k: tot(res[k], attr))
    return min(cands, key=lambda k: (round(f(k), 6), tot(res[k], "mean_ms"), k))


def sweep_markdown(res, android: dict[str, Row], default_key) -> list[str]:
    names = _names(android)
    lines = []
    ok_median, ok_strict = constraints(res, android)

    def tot(rows, attr):
        return sum(getattr(rows[n], attr) for n in names)

    def best(pred, attr, trace=None):
        return best_config(res, android, pred, attr, trace)

    def fmt_key(k):
        return f"Interactive {_secs(k[0])} / Idle {_secs(k[1])} / DeepIdle {_secs(k[2])}"

    lines.append(f"Grid: Interactive {[_secs(x) for x in SWEEP_I]} x Idle {[_secs(x) for x in SWEEP_S]} "
                 f"x DeepIdle {[_secs(x) for x in SWEEP_D]} "
                 f"({len(res)} configurations), each replayed on {', '.join(names)}.  "
                 "Constraint A: median latency of network queries <= Android's on every trace.  "
                 "Constraint B: A and mean latency <= Android's on every trace.")
    lines.append("")
    lines.append("| objective | constraint | best configuration | " +
                 " | ".join(f"{n} LTE J / over-app J / median / mean ms" for n in names) + " |")
    lines.append("|---|---|---|" + "---|" * len(names))

    def add(label, cons_name, pred, attr, trace=None):
        k = best(pred, attr, trace)
        if k is None:
            lines.append(f"| {label} | {cons_name} | (none satisfies) |" + " |" * len(names))
            return
        cells = " | ".join(f"{_f(res[k][n].lte_j)} / {_f(res[k][n].lte_marginal_j)} / "
                           f"{_f(res[k][n].median_ms)} / {_f(res[k][n].mean_ms, 1)}" for n in names)
        lines.append(f"| {label} | {cons_name} | {fmt_key(k)} | {cells} |")

    add("min LTE J, sum of traces", "A", ok_median, "lte_j")
    add("min LTE J over app traffic, sum", "A", ok_median, "lte_marginal_j")
    if "mixed-day" in names:
        add("min LTE J over app traffic, mixed-day", "A", ok_median, "lte_marginal_j", "mixed-day")
    add("min LTE J, sum of traces", "B", ok_strict, "lte_j")
    add("min LTE J over app traffic, sum", "B", ok_strict, "lte_marginal_j")
    add("min Wi-Fi J, sum of traces", "A", ok_median, "wifi_j")
    cells = " | ".join(f"{_f(android[n].lte_j)} / {_f(android[n].lte_marginal_j)} / "
                       f"{_f(android[n].median_ms)} / {_f(android[n].mean_ms, 1)}" for n in names)
    lines.append(f"| (reference) Android | - | idle 20 s, TCP keepalive 15 s | {cells} |")
    if default_key in res:
        r = res[default_key]
        cells = " | ".join(f"{_f(r[n].lte_j)} / {_f(r[n].lte_marginal_j)} / "
                           f"{_f(r[n].median_ms)} / {_f(r[n].mean_ms, 1)}" for n in names)
        lines.append(f"| (reference) dotcore-model defaults | - | {fmt_key(default_key)} | {cells} |")
    lines.append("")
    # sensitivity: best Idle/DeepIdle for each Interactive value (constraint A)
    lines.append("Sensitivity (constraint A; for each Interactive timeout, the Idle/DeepIdle pair "
                 "with the lowest summed LTE J over app traffic):")
    lines.append("")
    lines.append("| Interactive | best Idle | best DeepIdle | sum LTE J | sum LTE J over app "
                 "| sum Wi-Fi J | mean ms (" + ", ".join(names) + ") |")
    lines.append("|---|---|---|---|---|---|---|")
    for i in SWEEP_I:
        ks = [k for k in res if k[0] == i and ok_median[k]]
        if not ks:
            lines.append(f"| {_secs(i)} | - | - | - | - | - | (median constraint violated) |")
            continue
        k = min(ks, key=lambda k: (tot(res[k], "lte_marginal_j"), k))
        means = ", ".join(_f(res[k][n].mean_ms, 1) for n in names)
        lines.append(f"| {_secs(i)} | {_secs(k[1])} | {_secs(k[2])} | {_f(tot(res[k], 'lte_j'))} "
                     f"| {_f(tot(res[k], 'lte_marginal_j'))} | {_f(tot(res[k], 'wifi_j'), 1)} | {means} |")
    return lines


# ---------------------------------------------------------------- plots
def plots(png_dir: Path, traces: dict, summaries: dict, rows: list[Row]) -> list[str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ["(matplotlib not installed: no PNG written; scripts/battery-report.sh installs it)"]
    png_dir.mkdir(parents=True, exist_ok=True)
    written = []
    day = "mixed-day"
    if day in traces:
        tr = traces[day]
        pols = [p for (tname, p) in summaries if tname == day and p != "dotcore (engine)"]
        if (day, "dotcore (engine)") in summaries:
            pols.append("dotcore (engine)")
        fig, ax = plt.subplots(figsize=(13, 1.0 + 0.55 * (len(pols) + 1)))
        colors = {"on": "#f2b134", "off": "#9db4c0", "doze": "#3d5a80"}
        for a, b, st in tr.state_intervals():
            ax.broken_barh([(a / 3600, (b - a) / 3600)], (len(pols) + 0.1, 0.8),
                           facecolors=colors[st], edgecolor="none")
        for i, p in enumerate(reversed(pols)):
            s = summaries[(day, p)]
            ax.broken_barh([(a / 3600, max((b - a) / 3600, 0.004)) for a, b in s.conn_intervals],
                           (i + 0.15, 0.7), facecolors="#c0392b", edgecolor="#c0392b",
                           linewidth=0.3)   # keeps 10-20 s connections visible
        ax.set_yticks([i + 0.5 for i in range(len(pols) + 1)])
        labels = []
        for p in reversed(pols):
            sm = summaries[(day, p)]
            labels.append(f"{p}\n{sm.conns_opened} conns, {sm.conn_open_seconds / 3600:.1f} h open")
        ax.set_yticklabels(labels + ["screen: on / off / doze"], fontsize=8)
        ax.set_xlim(0, tr.duration / 3600)
        ax.set_xticks(range(0, 25, 2))
        ax.set_xlabel("hour of the mixed day (connection-open periods in red)")
        ax.set_title("DoT connection-open periods per policy, mixed 24 h trace (simulated)")
        fig.tight_layout()
        fn = png_dir / "battery-timeline.png"
        fig.savefig(fn, dpi=110)
        plt.close(fig)
        written.append(str(fn))
    names = [n for n in TRACE_ORDER if any(r.trace == n for r in rows)]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4.2), squeeze=False)
    for ax, n in zip(axes[0], names):
        rs = [r for r in rows if r.trace == n]
        labels = [("dotcore\n(engine)" if r.kind == "engine" else r.policy.replace("-", "-\n", 1))
                  for r in rs]
        x = range(len(rs))
        ax.bar([i - 0.2 for i in x], [r.lte_j for r in rs], width=0.4, label="LTE J (DNS alone)",
               color="#c0392b")
        ax.bar([i + 0.2 for i in x], [r.lte_marginal_j for r in rs], width=0.4,
               label="LTE J over app traffic", color="#e5989b")
        ax.set_xticks(list(x))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_title(n)
        ax.set_ylabel("joules (radio, above idle)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Estimated LTE radio energy per trace and policy (model; see docs/BATTERY.md)")
    fig.tight_layout()
    fn = png_dir / "battery-energy.png"
    fig.savefig(fn, dpi=110)
    plt.close(fig)
    written.append(str(fn))
    return written


# ---------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--traces", default=str(TRACE_DIR))
    ap.add_argument("--engine-timelines", default=os.environ.get("DOTCORE_ENGINE_TIMELINES"),
                    help="directory with <trace>.dotcore.jsonl from the engine replay "
                         "(env DOTCORE_ENGINE_TIMELINES)")
    ap.add_argument("--rtt-ms", type=float, default=50.0)
    ap.add_argument("--ticket-lifetime", type=float, default=7200.0)
    ap.add_argument("--server-idle-timeout", type=float, default=None)
    ap.add_argument("--dotcore-model", default="120,5,0",
                    help="Interactive,Idle,DeepIdle idle timeouts in seconds for the model row")
    ap.add_argument("--md-out", default=None, help="also write the Markdown here")
    ap.add_argument("--png-dir", default=None, help="write PNG plots here (needs matplotlib)")
    ap.add_argument("--timelines-out", default=None,
                    help="write every simulated timeline as <trace>.<policy>.jsonl here")
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--robustness-server-idle", type=float, default=None, metavar="SECONDS",
                    help="repeat the sweep assuming the server closes idle connections "
                         "after SECONDS (Android re-simulated under the same assumption)")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)

    sp = P.SimParams(rtt=a.rtt_ms / 1000.0, ticket_lifetime=a.ticket_lifetime,
                     server_idle_timeout=a.server_idle_timeout)
    tdir = Path(a.traces)
    files = sorted(tdir.glob("*.trace"),
                   key=lambda p: (TRACE_ORDER.index(p.stem) if p.stem in TRACE_ORDER else 99, p.stem))
    traces = {f.stem: T.load(f) for f in files}
    for k, tr in list(traces.items()):
        if tr.name != k:
            tr.name = k
    i, s, d = (float(x) for x in a.dotcore_model.split(","))
    model = P.dotcore_model(i, s, d)
    pols = [P.ANDROID, P.STUBBY, P.UNBOUND, P.NAIVE, model]
    dump = None
    if a.timelines_out:
        dump = Path(a.timelines_out)
        dump.mkdir(parents=True, exist_ok=True)

    rows: list[Row] = []
    summaries = {}
    engine_notes = []
    eng_dir = Path(a.engine_timelines) if a.engine_timelines else None
    for name, tr in traces.items():
        for pol in pols:
            kind = "model" if pol is model else "sim"
            r, sm = run_policy(tr, pol, sp, kind, dump)
            rows.append(r)
            summaries[(name, pol.name)] = sm
        ef = eng_dir / f"{name}.dotcore.jsonl" if eng_dir else None
        if ef is not None and ef.is_file():
            try:
                sm = TL.summarize(TL.read(ef), end=tr.duration)
            except TL.TimelineError as e:
                engine_notes.append(f"{name}: engine timeline {ef} is INVALID ({e}); not used")
            else:
                rtt = float(sm.meta.get("rtt_ms", a.rtt_ms)) / 1000.0
                rows.append(row_from_summary(sm, name, "dotcore", "engine", rtt))
                summaries[(name, "dotcore (engine)")] = sm
                engine_notes.append(f"{name}: engine timeline {ef}")
        else:
            engine_notes.append(f"{name}: {NO_ENGINE}")

    res = None
    tuned_key = None
    if not a.no_sweep:
        res = sweep([traces[n] for n in traces], sp, jobs=a.jobs)
        android = {r.trace: r for r in rows if r.policy == "android"}
        _, ok_b = constraints(res, android)
        tuned_key = best_config(res, android, ok_b, "lte_marginal_j")
        if tuned_key is not None:
            tuned = P.dotcore_model(*tuned_key, name="dotcore-model-tuned")
            extra = []
            for name, tr in traces.items():
                r, sm = run_policy(tr, tuned, sp, "model", dump)
                extra.append(r)
                summaries[(name, tuned.name)] = sm
            # keep the engine row last within each trace
            merged = []
            for name in traces:
                rs = [r for r in rows if r.trace == name]
                eng = [r for r in rs if r.kind == "engine"]
                merged += [r for r in rs if r.kind != "engine"]
                merged += [r for r in extra if r.trace == name] + eng
            rows = merged

    out: list[str] = []
    out.append("# dotcore battery benchmark: results")
    out.append("")
    out.append("Generated by `scripts/battery-report.sh` (bench/battery/report.py).  All rows "
               "except \"dotcore (engine)\" are **simulations** of each client's connection "
               "policy on the same traces; \"dotcore-model (MODEL)\" is a Python model of "
               "dotcore's *intended* policy, not the engine.  Energy is a **model estimate** "
               "(LTE: Huang et al., MobiSys 2012; parameter values from memory, cross-checked "
               "against AT&T ARO's defaults, the two that differ marked CHECK in "
               "bench/battery/radio.py).  See docs/BATTERY.md for every assumption.")
    out.append("")
    out.append(f"Parameters: RTT {a.rtt_ms:g} ms, TTL cache {next(iter(traces.values())).ttl:g} s, "
               f"ticket lifetime {a.ticket_lifetime:g} s, server idle timeout "
               f"{'none' if a.server_idle_timeout is None else f'{a.server_idle_timeout:g} s'}, "
               f"dotcore-model Interactive {i:g} s / Idle {s:g} s / DeepIdle {d:g} s"
               + (f"; dotcore-model-tuned (best of the sweep under constraint B, see below) "
                  f"Interactive {_secs(tuned_key[0])} / Idle {_secs(tuned_key[1])} / DeepIdle "
                  f"{_secs(tuned_key[2])}" if tuned_key else "") + ".")
    out.append("")
    out.append("Engine timelines:")
    out.append("")
    for n in engine_notes:
        out.append(f"- {n}")
    out.append("")
    for name, tr in traces.items():
        rs = [r for r in rows if r.trace == name]
        r0 = rs[0]
        on = sum(b - a for a, b, st in tr.state_intervals() if st == "on")
        out.append(f"## {name}")
        out.append("")
        out.append(f"{len(tr.queries)} queries over {tr.duration / 3600:g} h "
                   f"(screen on {on / tr.duration * 100:.0f} % of the time); TTL cache answers "
                   f"{r0.cached} ({r0.cached / max(1, r0.queries) * 100:.0f} %), "
                   f"{r0.net_queries} go to the network.  Latency columns: network (non-cached) "
                   "queries only.")
        out.append("")
        out.append(HEAD)
        out.append(SEP)
        for r in rs:
            out.append(md_row(r))
        if not any(r.kind == "engine" for r in rs):
            out.append(f"| dotcore (engine) | {NO_ENGINE} |" + " |" * 12)
        out.append("")

    out += sensitivity_markdown(summaries, app_rtt=sp.rtt)

    if res is not None:
        out.append("## Sweep of the dotcore-model idle timeouts")
        out.append("")
        tl = [traces[n] for n in traces]
        android = {r.trace: r for r in rows if r.policy == "android"}
        out += sweep_markdown(res, android, (i, s, d))
        out.append("")
        if a.robustness_server_idle is not None:
            sp2 = P.SimParams(rtt=sp.rtt, ticket_lifetime=sp.ticket_lifetime,
                              server_idle_timeout=a.robustness_server_idle)
            out.append(f"### Robustness: the server closes idle connections after "
                       f"{a.robustness_server_idle:g} s")
            out.append("")
            out.append("Same sweep, but every policy (Android included) sees the server close "
                       "a connection after that much silence (the FIN arrives unprompted and "
                       "wakes the radio).")
            out.append("")
            android2 = {n: run_policy(traces[n], P.ANDROID, sp2)[0] for n in traces}
            res2 = sweep(tl, sp2, jobs=a.jobs)
            out += sweep_markdown(res2, android2, (i, s, d))
            out.append("")

    if a.png_dir:
        out.append("## Plots")
        out.append("")
        written = plots(Path(a.png_dir), traces, summaries, rows)
        for w in written:
            p = Path(w)
            if p.suffix == ".png":
                try:
                    rel = os.path.relpath(p, Path(a.md_out).parent if a.md_out else Path.cwd())
                except ValueError:
                    rel = str(p)
                out.append(f"![{p.stem}]({rel})")
            else:
                out.append(w)
        out.append("")

    text = "\n".join(out)
    print(text)
    if a.md_out:
        Path(a.md_out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.md_out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
