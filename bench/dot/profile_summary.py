#!/usr/bin/env python3
"""Summarises `scripts/bench.sh --profile` output (RUN/profile/) as Markdown.

perf-stat.csv -> CPU, context switches and syscalls per query;
strace.txt -> calls of every syscall from strace -c (strace slows dotcore
so much that dnsperf loses queries, so only the calls are shown);
perf-dso.txt / perf-sym.txt -> where the cpu-clock samples fell.
Per-query figures divide by the queries dnsperf sent in the perf window
(argument 2: its fixed rate times the window), not by `sendto` calls:
dotcore's TLS records go out through `sendto` too (std's `send` on a TCP
stream), as its UDP answers do.
"""

import os
import re
import sys


def perf_stat(path):
    vals = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) >= 3 and re.match(r"^[\d.]+$", parts[0]):
                    vals[parts[2]] = float(parts[0])
    except FileNotFoundError:
        pass
    return vals


def main(d, window_queries):
    out = []
    st = perf_stat(os.path.join(d, "perf-stat.csv"))
    answers = window_queries
    if st and answers:
        out.append(f"perf stat over 3 s of load, {int(answers)} queries sent in it:")
        out.append("")
        out.append("| counter | total | per query |")
        out.append("|---|---|---|")
        if "task-clock" in st:
            out.append(f"| CPU (task-clock) | {st['task-clock']:.0f} ms | "
                       f"{st['task-clock'] * 1000 / answers:.1f} µs |")
        for k, v in sorted(st.items(), key=lambda kv: -kv[1]):
            if k == "task-clock" or v == 0:
                continue
            name = k.replace("syscalls:sys_enter_", "").replace("raw_syscalls:sys_enter", "all syscalls")
            out.append(f"| {name} | {int(v)} | {v / answers:.2f} |")
        out.append("")
    try:
        with open(os.path.join(d, "strace.txt")) as f:
            rows = []
            for line in f:
                m = re.match(r"\s*([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(\d+)?\s*(\w+)\s*$", line)
                if m and m.group(6) != "total":
                    rows.append((m.group(6), int(m.group(4)), int(m.group(5) or 0)))
        rows.sort(key=lambda r: -r[1])
        if rows:
            total = sum(r[1] for r in rows)
            out.append(f"strace -c -f over 3 s: {total} syscalls")
            out.append("")
            out.append("| syscall | calls | share | errors |")
            out.append("|---|---|---|---|")
            for name, calls, errs in rows[:8]:
                out.append(f"| {name} | {calls} | {100 * calls / total:.0f} % | {errs} |")
            out.append("")
    except FileNotFoundError:
        pass
    for name, title, n in (("perf-dso.txt", "perf samples by object", 6),
                           ("perf-sym.txt", "top symbols (self time)", 30)):
        try:
            with open(os.path.join(d, name)) as f:
                lines = [ln.rstrip() for ln in f if re.match(r"\s+[\d.]+%", ln)]
        except FileNotFoundError:
            continue
        if lines:
            out.append(f"{title} (perf record, cpu-clock):")
            out.append("")
            out.append("```")
            out.extend(lines[:n])
            out.append("```")
            out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0)
