"""Generate the committed query traces (fixed seed, stdlib only).

    PYTHONPATH=bench python3 -m battery.gen_traces [--out bench/battery/traces]

All names are under the reserved ``.test`` TLD.  The models are OUR OWN
ASSUMPTIONS, chosen to be qualitatively consistent with published
observations but not fitted to any data set:

* Page loads (bursts): a site has a fixed page template (its own hosts plus
  a fixed set of third-party hosts); each load resolves 70-100 % of it,
  A + AAAA per host (what getaddrinfo() does on a dual-stack phone), plus an
  HTTPS-RR query for the main host half of the time; 5-40 queries per
  burst; the first host at the burst start, the rest spread uniformly over
  a window W ~ U(0.1, 2.0) s (HTML parse / subresource discovery).
* Think time between page loads: log-normal, median 20 s, sigma 1.2
  (5th-95th percentile ~ 3-145 s), clamped to [1.5, 600] s.  Barford &
  Crovella (SIGMETRICS 1998, SURGE) model user idle ("OFF") periods as
  heavy-tailed; we use a log-normal body for simplicity -- no parameter is
  taken from that paper.  Next page stays on the same site with p = 0.55,
  otherwise a site is drawn from a Zipf(1.1) popularity over 40 sites.
* Background while the screen is on: Poisson, one host per 120 s on average.
* Screen-off background sync: JobScheduler-style batches ("windows") with
  gaps log-normal(median 240 s, sigma 0.6) clamped to [60, 900] s; 1-4 jobs
  per window starting within 8 s; 1-3 hosts per job; plus push-triggered
  fetches (Poisson, one per 600 s).
* Doze: entered 60 min after the screen goes off (device assumed
  stationary); maintenance windows 1 h, 2 h, 4 h, 6 h, 6 h ... after doze
  entry (intervals as observed on Android 6 by a public write-up, the
  GitHub gist "Android Marshmallow Idle Mode Behavior"; newer releases
  differ); deferred jobs run as one larger batch in each window.
* Mixed day: asleep until ~07:00, screen off at ~23:30; ~55 short screen
  sessions (log-normal length, median 40 s, sigma 1.2, clamped 5 s-30 min;
  inter-session gaps log-normal median 600 s, sigma 1.0, max 3 h) plus
  three long browsing sessions (commute, lunch, evening; 10-25 min).  Falaki
  et al. ("Diversity in Smartphone Usage", MobiSys 2010) report 10-200
  interactions per day and mean interaction lengths of 10-250 s across
  users; our day sits inside those ranges.
* Every answer gets TTL 300 s.
"""
from __future__ import annotations

import argparse
import math
import random
from pathlib import Path

from .trace import Query, Trace, dump

SEED = 20240611
TTL = 300.0

SITE_WORDS = ["news", "shop", "video", "sport", "weather", "travel", "recipes", "forum",
              "wiki", "maps", "bank", "mail", "social", "photos", "music", "blog", "tech",
              "games", "cars", "homes", "jobs", "health", "finance", "movies", "books",
              "science", "fashion", "food", "kids", "local", "radio", "tv", "deals",
              "auctions", "dating", "translate", "learn", "code", "art", "docs"]
FIRST_PARTY = ["cdn1", "cdn2", "cdn3", "static", "img", "api", "media", "assets", "edge",
               "login", "search", "comments"]
THIRD_PARTY = [  # (host, popularity weight)
    ("ads.example-adnet.test", 10), ("securepubads.example-adnet.test", 8),
    ("pixel.example-metrics.test", 10), ("collect.example-metrics.test", 7),
    ("fonts.example-fonts.test", 9), ("fonts-static.example-fonts.test", 9),
    ("cdn1.example-cdn.test", 6), ("cdn2.example-cdn.test", 6), ("cdn3.example-cdn.test", 5),
    ("cdn4.example-cdn.test", 4), ("cdn5.example-cdn.test", 3), ("cdn6.example-cdn.test", 2),
    ("tags.example-tagmgr.test", 8), ("consent.example-cmp.test", 6),
    ("video.example-stream.test", 3), ("connect.example-socialnet.test", 5),
    ("static.example-socialnet.test", 5), ("ajax.example-libs.test", 6),
    ("js.example-payments.test", 2), ("cdn.example-images.test", 4),
    ("api.example-reviews.test", 2), ("beacon.example-rum.test", 4),
    ("sync.example-dsp.test", 4), ("match.example-dsp2.test", 3),
    ("player.example-vid.test", 2), ("s.example-widgets.test", 3),
    ("cdn.example-captcha.test", 2), ("maps.example-geo.test", 2),
    ("api.example-abtest.test", 3), ("events.example-analytics2.test", 3),
]
BACKGROUND = [  # (host, weight): sync / push / telemetry of installed apps and the OS
    ("imap.example-mail.test", 6), ("sync.example-mail.test", 6),
    ("api.example-weather.test", 3), ("push.example-chat.test", 8),
    ("media.example-chat.test", 3), ("telemetry.example-os.test", 5),
    ("time.example-os.test", 2), ("update.example-store.test", 3),
    ("api.example-social.test", 5), ("graph.example-social.test", 4),
    ("clients.example-os.test", 4), ("connectivity.example-os.test", 3),
    ("calendar.example-cloud.test", 3), ("photos-backup.example-cloud.test", 2),
    ("feed.example-news.test", 3), ("api.example-fitness.test", 2),
    ("location.example-os.test", 2), ("config.example-ads-sdk.test", 3),
]
APP_HOSTS = [  # foreground app sessions (chat, social, ...)
    ("api.example-chat.test", 8), ("media.example-chat.test", 5),
    ("api.example-social.test", 7), ("graph.example-social.test", 6),
    ("img.example-social.test", 6), ("video.example-social.test", 3),
    ("api.example-maps.test", 2), ("tiles.example-maps.test", 2),
    ("api.example-music.test", 2), ("audio.example-music.test", 2),
    ("pixel.example-metrics.test", 4), ("config.example-ads-sdk.test", 3),
]


def _wchoice(rng, items):
    tot = sum(w for _, w in items)
    x = rng.random() * tot
    for h, w in items:
        x -= w
        if x < 0:
            return h
    return items[-1][0]


def _wsample(rng, items, k):
    pool = list(items)
    out = []
    for _ in range(min(k, len(pool))):
        h = _wchoice(rng, pool)
        out.append(h)
        pool = [(x, w) for x, w in pool if x != h]
    return out


def _lognormal(rng, median, sigma, lo=None, hi=None):
    v = rng.lognormvariate(math.log(median), sigma)
    if lo is not None:
        v = max(lo, v)
    if hi is not None:
        v = min(hi, v)
    return v


class World:
    """Sites with fixed page templates (deterministic from the seed)."""

    def __init__(self, rng: random.Random):
        self.sites = []
        for i, w in enumerate(SITE_WORDS):
            site = f"example-{w}.test"
            n1 = rng.randint(1, 6)
            own = [f"www.{site}"] + [f"{h}.{site}" for h in rng.sample(FIRST_PARTY, n1)]
            n3 = rng.randint(2, 14)
            third = _wsample(rng, THIRD_PARTY, n3)
            self.sites.append((own, third))
        # Zipf(1.1) popularity by index
        self.pop = [(i, 1.0 / (i + 1) ** 1.1) for i in range(len(self.sites))]

    def pick_site(self, rng):
        return _wchoice(rng, self.pop)


class Gen:
    def __init__(self, rng: random.Random, world: World):
        self.rng = rng
        self.world = world
        self.out: list[Query] = []

    def add(self, t, host, qtype, state):
        self.out.append(Query(round(t, 3), host, qtype, state))

    def host_pair(self, t, host, state):
        self.add(t, host, "A", state)
        self.add(t + 0.001, host, "AAAA", state)

    def page_load(self, t0, site_idx, state):
        rng = self.rng
        own, third = self.world.sites[site_idx]
        main = own[0]
        rest = own[1:] + third
        keep = [h for h in rest if rng.random() < rng.uniform(0.7, 1.0)]
        https = rng.random() < 0.5
        nq = 2 + (1 if https else 0) + 2 * len(keep)
        while nq < 5:                       # tiny template: add a shared host
            extra = _wchoice(rng, THIRD_PARTY)
            if extra not in keep:
                keep.append(extra)
                nq += 2
        while nq > 40:
            keep.pop(rng.randrange(len(keep)))
            nq -= 2
        self.host_pair(t0, main, state)
        if https:
            self.add(t0 + 0.001, main, "HTTPS", state)
        w = rng.uniform(0.1, 2.0)
        lo = min(0.08, w / 2)
        offs = sorted(rng.uniform(lo, w) for _ in keep)
        for off, h in zip(offs, keep):
            self.host_pair(t0 + off, h, state)
        return t0 + w

    def browse(self, t, t_end, state, site=None):
        """Page loads with think times until t_end; returns the last site."""
        rng = self.rng
        while t < t_end:
            if site is None or rng.random() >= 0.55:
                site = self.world.pick_site(rng)
            end = self.page_load(t, site, state)
            t = end + _lognormal(rng, 20.0, 1.2, 1.5, 600.0)
        return site

    def background(self, t0, t1, state_at, rate=1 / 120.0, pool=BACKGROUND):
        rng = self.rng
        t = t0 + rng.expovariate(rate)
        while t < t1:
            self.host_pair(t, _wchoice(rng, pool), state_at(t))
            t += rng.expovariate(rate)

    def sync_window(self, t0, state, jobs=None):
        rng = self.rng
        if jobs is None:
            jobs = _wchoice(rng, [(1, 35), (2, 35), (3, 20), (4, 10)])
        for _ in range(jobs):
            t = t0 + rng.uniform(0, 8)
            for h in _wsample(rng, BACKGROUND, rng.randint(1, 3)):
                self.host_pair(t, h, state)
                t += rng.uniform(0.02, 0.6)

    def screen_off_period(self, t0, t1, state_changes, doze_after=3600.0,
                          already_off=0.0):
        """Background activity while the screen is off from t0 to t1."""
        rng = self.rng
        doze_at = t0 + max(0.0, doze_after - already_off)
        if doze_at < t1:
            state_changes.append((doze_at, "doze"))
        # sync windows while not dozing
        t = t0 + rng.uniform(20, 120)
        while t < min(t1, doze_at):
            self.sync_window(t, "off")
            t += _lognormal(rng, 240.0, 0.6, 60.0, 900.0)
        # push-triggered fetches while not dozing
        self.background(t0, min(t1, doze_at), lambda _t: "off", rate=1 / 600.0,
                        pool=[("push.example-chat.test", 3), ("media.example-chat.test", 1),
                              ("api.example-social.test", 1)])
        # doze maintenance windows
        if doze_at < t1:
            gaps = [3600.0, 7200.0, 14400.0]
            t = doze_at
            i = 0
            while True:
                t += gaps[i] if i < len(gaps) else 21600.0
                i += 1
                if t >= t1:
                    break
                self.sync_window(t, "doze", jobs=rng.randint(3, 6))


def gen_browsing_hour(world, rng) -> Trace:
    g = Gen(rng, world)
    dur = 3600.0
    g.browse(0.0, dur, "on")
    g.background(0.0, dur, lambda _t: "on")
    qs = sorted((q for q in g.out if q.t < dur), key=lambda q: q.t)
    return Trace("browsing-hour", qs, [(0.0, "on")], dur, TTL)


def gen_screen_off_hour(world, rng) -> Trace:
    g = Gen(rng, world)
    dur = 3600.0
    changes = [(0.0, "off")]
    g.screen_off_period(0.0, dur, changes, doze_after=float("inf"))
    qs = sorted((q for q in g.out if q.t < dur), key=lambda q: q.t)
    return Trace("screen-off-hour", qs, changes, dur, TTL)


def gen_mixed_day(world, rng) -> Trace:
    g = Gen(rng, world)
    dur = 86400.0
    changes = [(0.0, "off")]
    wake = 7 * 3600.0 + rng.uniform(-600, 600)
    sleep = 23.5 * 3600.0 + rng.uniform(-900, 900)
    # night: screen went off at 23:30 the day before (30 min already elapsed)
    g.screen_off_period(0.0, wake, changes, already_off=1800.0)
    longs = [8.25 * 3600 + rng.uniform(-1200, 1200), 12.5 * 3600 + rng.uniform(-1200, 1200),
             21.0 * 3600 + rng.uniform(-1200, 1200)]
    t = wake
    first = True
    while t < sleep:
        if longs and longs[0] <= t:
            longs.pop(0)
            length = rng.uniform(600, 1500)
            kind = "browse"
        else:
            length = 240.0 + rng.uniform(0, 300) if first else _lognormal(rng, 40.0, 1.2, 5.0, 1800.0)
            kind = "browse" if (first or rng.random() < 0.4) else "app"
            if longs and t + length > longs[0]:
                length = max(5.0, longs[0] - t - 1.0)
        first = False
        end = min(t + length, sleep)
        changes.append((t, "on"))
        # unlock: apps refresh
        for h in _wsample(rng, BACKGROUND, rng.randint(1, 3)):
            g.host_pair(t + rng.uniform(0.05, 1.5), h, "on")
        if kind == "browse":
            g.browse(t + rng.uniform(1.0, 4.0), end, "on")
        else:
            s = t + rng.uniform(0.5, 3.0)
            while s < end:
                for h in _wsample(rng, APP_HOSTS, rng.randint(1, 4)):
                    g.host_pair(s + rng.uniform(0, 0.8), h, "on")
                s += _lognormal(rng, 12.0, 0.8, 2.0, 120.0)
        changes.append((end, "off"))
        gap = _lognormal(rng, 600.0, 1.0, 20.0, 3 * 3600.0)
        nxt = end + gap
        if longs and nxt > longs[0] > end:
            nxt = longs[0]
        off_end = min(nxt, dur)
        g.screen_off_period(end, off_end, changes)
        t = nxt
    if t < dur and changes[-1][1] == "on":   # pragma: no cover - defensive
        changes.append((min(t, dur), "off"))
    # merge consecutive identical states, drop changes past the end
    changes.sort(key=lambda c: c[0])
    merged = []
    for ct, st in changes:
        if ct >= dur:
            continue
        if merged and merged[-1][1] == st:
            continue
        if merged and merged[-1][0] == ct:
            merged[-1] = (ct, st)
            continue
        merged.append((round(ct, 3), st))
    qs = sorted((q for q in g.out if q.t < dur), key=lambda q: q.t)
    # the per-query screen field must agree with the state timeline
    tr = Trace("mixed-day", [], merged, dur, TTL)
    qs = [Query(q.t, q.qname, q.qtype, tr.state_at(q.t)) for q in qs]
    tr.queries = qs
    return tr


HEADERS = {
    "browsing-hour": ["Interactive browsing hour (screen on throughout).",
                      "Model: see bench/battery/gen_traces.py and docs/BATTERY.md (our assumptions)."],
    "screen-off-hour": ["Screen-off hour, device not dozing: JobScheduler-style background sync batches.",
                        "Model: see bench/battery/gen_traces.py and docs/BATTERY.md (our assumptions)."],
    "mixed-day": ["Mixed 24 h day starting 00:00: doze at night, screen sessions by day.",
                  "Model: see bench/battery/gen_traces.py and docs/BATTERY.md (our assumptions)."],
}


def generate(seed: int = SEED) -> dict[str, Trace]:
    world = World(random.Random(f"{seed}-world"))
    return {
        "browsing-hour": gen_browsing_hour(world, random.Random(f"{seed}-browsing")),
        "screen-off-hour": gen_screen_off_hour(world, random.Random(f"{seed}-screen-off")),
        "mixed-day": gen_mixed_day(world, random.Random(f"{seed}-mixed")),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "traces"))
    ap.add_argument("--seed", type=int, default=SEED)
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, tr in generate(a.seed).items():
        hdr = HEADERS[name] + [f"Generated by bench/battery/gen_traces.py, seed {a.seed}. Do not edit by hand."]
        dump(tr, out / f"{name}.trace", hdr)
        n_on = sum(1 for q in tr.queries if q.screen == "on")
        print(f"{name}: {len(tr.queries)} queries ({n_on} screen-on), "
              f"{len({(q.qname, q.qtype) for q in tr.queries})} distinct, "
              f"{len(tr.screen_changes)} state changes, {tr.duration:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
