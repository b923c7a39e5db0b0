#!/usr/bin/env python3
"""Summarises `scripts/bench.sh --profile` output (RUN/profile/) as Markdown.

perf-stat.csv -> CPU, context switches and syscalls per answered query;
strace.txt -> the same from strace -c (slower, but names every syscall);
perf-dso.txt / perf-sym.txt -> where the cpu-clock samples fell.
Per-query figures divide by the sendto calls: dotcore sends one UDP answer
per client query, so that is the number of queries answered in the window.
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


def main(d):
    out = []
    st = perf_stat(os.path.join(d, "perf-stat.csv"))
    answers = st.get("syscalls:sys_enter_sendto", 0)
    if answers:
        out.append(f"perf stat over 3 s of load, {int(answers)} answers sent:")
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
        q = dict((r[0], r[1]) for r in rows).get("sendto", 0)
        if q and rows:
            total = sum(r[1] for r in rows)
            out.append(f"strace -c -f ({q} answers sent): {total / q:.2f} syscalls per query")
            out.append("")
            out.append("| syscall | calls | per query | errors |")
            out.append("|---|---|---|---|")
            for name, calls, errs in rows[:8]:
                out.append(f"| {name} | {calls} | {calls / q:.2f} | {errs} |")
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
    main(sys.argv[1])
