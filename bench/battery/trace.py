"""Query trace format (version 1).

One query per line::

    <time_seconds_float> <qname> <qtype> <screen>

``screen`` is one of ``on`` (Interactive), ``off`` (Idle, screen off) or
``doze`` (DeepIdle, Android Doze).  Fields are separated by whitespace.
Times are seconds from the start of the trace and must be non-decreasing.

Lines starting with ``#`` are comments.  Lines starting with ``#!`` are
*directives* (a plain comment to readers that ignore them):

``#! name <id>``            trace name (default: file stem)
``#! duration <seconds>``   trace length (default: last query time)
``#! screen <t> <state>``   the screen/power state changes to <state> at <t>
``#! ttl <seconds>``        TTL given to every answer (default 300)

If no ``#! screen`` directive is present, the state timeline is derived
from the per-query ``screen`` field (a change takes effect at the query).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

STATES = ("on", "off", "doze")
DEFAULT_TTL = 300.0


class TraceError(ValueError):
    pass


@dataclass(frozen=True)
class Query:
    t: float
    qname: str
    qtype: str
    screen: str


@dataclass
class Trace:
    name: str
    queries: list[Query]
    screen_changes: list[tuple[float, str]] = field(default_factory=list)
    duration: float = 0.0
    ttl: float = DEFAULT_TTL
    comments: list[str] = field(default_factory=list)

    def state_at(self, t: float) -> str:
        """Screen state in effect at time ``t`` (changes take effect at their time)."""
        state = self.screen_changes[0][1] if self.screen_changes else "on"
        for ct, st in self.screen_changes:
            if ct <= t:
                state = st
            else:
                break
        return state

    def state_intervals(self) -> list[tuple[float, float, str]]:
        """[(start, end, state)] covering [0, duration]."""
        out = []
        ch = self.screen_changes or [(0.0, "on")]
        for i, (t, st) in enumerate(ch):
            end = ch[i + 1][0] if i + 1 < len(ch) else self.duration
            if end > t:
                out.append((t, end, st))
        return out


def parse_lines(lines: Iterable[str], name: str = "trace") -> Trace:
    queries: list[Query] = []
    changes: list[tuple[float, str]] = []
    duration = None
    ttl = DEFAULT_TTL
    comments: list[str] = []
    last_t = float("-inf")
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#!"):
            parts = line[2:].split()
            if not parts:
                continue
            key = parts[0]
            try:
                if key == "name":
                    name = parts[1]
                elif key == "duration":
                    duration = float(parts[1])
                elif key == "ttl":
                    ttl = float(parts[1])
                elif key == "screen":
                    st = parts[2]
                    if st not in STATES:
                        raise TraceError(f"line {lineno}: unknown screen state {st!r}")
                    changes.append((float(parts[1]), st))
                # unknown directives are ignored (forward compatible)
            except (IndexError, ValueError) as e:
                raise TraceError(f"line {lineno}: bad directive {line!r}: {e}") from None
            continue
        if line.startswith("#"):
            comments.append(line[1:].strip())
            continue
        parts = line.split()
        if len(parts) != 4:
            raise TraceError(f"line {lineno}: expected 4 fields, got {len(parts)}: {line!r}")
        try:
            t = float(parts[0])
        except ValueError:
            raise TraceError(f"line {lineno}: bad time {parts[0]!r}") from None
        if t < last_t:
            raise TraceError(f"line {lineno}: time {t} goes backwards (previous {last_t})")
        if parts[3] not in STATES:
            raise TraceError(f"line {lineno}: unknown screen state {parts[3]!r}")
        last_t = t
        queries.append(Query(t, parts[1].lower().rstrip(".") or ".", parts[2].upper(), parts[3]))
    if not changes:
        cur = None
        for q in queries:
            if q.screen != cur:
                changes.append((q.t if cur is not None else 0.0, q.screen))
                cur = q.screen
    changes.sort(key=lambda c: c[0])
    if duration is None:
        duration = max([q.t for q in queries] + [c[0] for c in changes] + [0.0])
    return Trace(name=name, queries=queries, screen_changes=changes,
                 duration=duration, ttl=ttl, comments=comments)


def load(path: str | Path) -> Trace:
    path = Path(path)
    with path.open() as f:
        name = path.name.split(".")[0]
        return parse_lines(f, name=name)


def dump(trace: Trace, path: str | Path, header: Iterable[str] = ()) -> None:
    path = Path(path)
    with path.open("w") as f:
        f.write("# dotcore battery trace, format v1: <t_seconds> <qname> <qtype> <screen:on|off|doze>\n")
        for h in header:
            f.write(f"# {h}\n" if h else "#\n")
        f.write(f"#! name {trace.name}\n")
        f.write(f"#! duration {trace.duration:.3f}\n")
        f.write(f"#! ttl {trace.ttl:g}\n")
        for t, st in trace.screen_changes:
            f.write(f"#! screen {t:.3f} {st}\n")
        for q in trace.queries:
            f.write(f"{q.t:.3f} {q.qname} {q.qtype} {q.screen}\n")
