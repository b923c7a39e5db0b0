//! Opportunistic mode's choice, per query, between DoT and clear text.
//!
//! A pure state machine: it is told the time and what happened (a query
//! arrived, a probe validated DoT or failed, a DoT query could not open a
//! connection, the network changed) and answers where the query goes and
//! whether to start a background probe. It does no I/O and reads no clock;
//! the resolver drives it (resolver.rs) and runs the probes.
//!
//! The rule it enforces: a query never waits for DoT to come up. Until a
//! probe has validated DoT on the current network, queries go in clear text
//! at once and the probe runs beside them. Once validated, queries go over
//! DoT, and clear text is sent too if DoT has not answered within a short
//! grace derived from the validated handshake time (docs/architecture.md,
//! "Opportunistic mode"), so a DoT path that stops answering costs at most
//! that grace, not the query timeout.

use std::time::Duration;

use tokio::time::Instant;

/// Shortest grace before clear text joins a DoT query: on a LAN a handshake
/// takes milliseconds while the DoT server's own recursion for an uncached
/// name takes far longer, and a shorter grace would send most such lookups
/// in clear text too (docs/architecture.md, "Opportunistic mode never waits
/// for DoT").
pub(crate) const GRACE_MIN: Duration = Duration::from_millis(250);
/// Longest grace: the clear-text answer must reach the client before it
/// gives up or retries.
pub(crate) const GRACE_MAX: Duration = Duration::from_millis(1000);
/// The grace in handshake times: a query on a connection closed while idle
/// needs a new handshake (one) plus its own round trip (under one), and the
/// third absorbs jitter.
const GRACE_HANDSHAKES: u32 = 3;

/// Where one query goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Clear text only, at once: DoT is not validated on this network.
    Cleartext,
    /// DoT; and clear text as well if DoT has not answered after
    /// `cleartext_after` (`None`: no clear-text resolver to ask).
    Dot { cleartext_after: Option<Duration> },
}

/// A background DoT probe the resolver should run, then report with
/// [`Fallback::probe_finished`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probe {
    /// The network it was started on; a result from an earlier network is
    /// ignored.
    generation: u64,
}

/// What the decision for one query is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    pub route: Route,
    pub probe: Option<Probe>,
}

/// A change the host should hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notice {
    None,
    /// DoT failed; clear text until the next probe, `retry_in` from now.
    FellBack {
        retry_in: Duration,
    },
    /// DoT validated after an announced fall-back.
    Restored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dot {
    Unvalidated { next_probe: Instant },
    Validated { handshake: Duration },
}

/// The state: see the module documentation.
#[derive(Debug)]
pub(crate) struct Fallback {
    initial: Duration,
    max: Duration,
    backoff: Duration,
    dot: Dot,
    /// Bumped by every network change.
    generation: u64,
    /// Whether a probe of the current generation is running.
    probing: bool,
    /// Whether `FellBack` was announced and `Restored` not yet.
    announced: bool,
}

impl Fallback {
    /// Unvalidated, with a probe due at once; re-probes back off from
    /// `initial` to `max`.
    pub(crate) fn new(initial: Duration, max: Duration, now: Instant) -> Fallback {
        Fallback {
            initial,
            max,
            backoff: initial,
            dot: Dot::Unvalidated { next_probe: now },
            generation: 0,
            probing: false,
            announced: false,
        }
    }

    /// A query arrived; `cleartext_possible` says whether any clear-text
    /// resolver is known (without one, waiting for DoT is the only way to
    /// an answer).
    pub(crate) fn query(&mut self, now: Instant, cleartext_possible: bool) -> Decision {
        let probe = self.probe_if_due(now);
        let route = match self.dot {
            Dot::Validated { handshake } => Route::Dot {
                cleartext_after: cleartext_possible.then(|| grace(handshake)),
            },
            Dot::Unvalidated { .. } if cleartext_possible => Route::Cleartext,
            Dot::Unvalidated { .. } => Route::Dot {
                cleartext_after: None,
            },
        };
        Decision { route, probe }
    }

    /// A probe ended: `Ok(handshake time)` if it opened a DoT connection.
    pub(crate) fn probe_finished(
        &mut self,
        probe: Probe,
        now: Instant,
        result: Result<Duration, ()>,
    ) -> Notice {
        if probe.generation != self.generation {
            // Validated or failed on a network the device has left.
            return Notice::None;
        }
        self.probing = false;
        match result {
            Ok(handshake) => {
                // A check while validated may have reused the open
                // connection: it confirms DoT, it does not re-measure it.
                if !self.validated() {
                    self.dot = Dot::Validated { handshake };
                }
                self.backoff = self.initial;
                if std::mem::replace(&mut self.announced, false) {
                    Notice::Restored
                } else {
                    Notice::None
                }
            }
            Err(()) => self.fail(now),
        }
    }

    /// A query sent over DoT could not open a connection.
    pub(crate) fn dot_failed(&mut self, now: Instant) -> Notice {
        match self.dot {
            Dot::Validated { .. } => self.fail(now),
            // Already falling back; the probe schedule stands.
            Dot::Unvalidated { .. } => Notice::None,
        }
    }

    /// Clear text answered a validated DoT query that was still pending.
    /// Returns a check to run (a probe while validated) unless one is
    /// running: if DoT no longer opens, it fails and queries stop waiting
    /// the grace.
    pub(crate) fn cleartext_won(&mut self) -> Option<Probe> {
        if !self.validated() || self.probing {
            return None;
        }
        self.probing = true;
        Some(Probe {
            generation: self.generation,
        })
    }

    /// The device moved to another network: nothing learned on the old one
    /// holds. Returns the probe to start at once.
    pub(crate) fn network_changed(&mut self, now: Instant) -> Probe {
        self.generation = self.generation.wrapping_add(1);
        self.dot = Dot::Unvalidated { next_probe: now };
        self.backoff = self.initial;
        self.probing = true;
        Probe {
            generation: self.generation,
        }
    }

    /// Whether queries currently go over DoT first.
    pub(crate) fn validated(&self) -> bool {
        matches!(self.dot, Dot::Validated { .. })
    }

    fn probe_if_due(&mut self, now: Instant) -> Option<Probe> {
        match self.dot {
            Dot::Unvalidated { next_probe } if !self.probing && now >= next_probe => {
                self.probing = true;
                Some(Probe {
                    generation: self.generation,
                })
            }
            _ => None,
        }
    }

    fn fail(&mut self, now: Instant) -> Notice {
        let retry_in = self.backoff;
        self.dot = Dot::Unvalidated {
            next_probe: now + retry_in,
        };
        self.backoff = (self.backoff * 2).min(self.max);
        self.announced = true;
        Notice::FellBack { retry_in }
    }
}

/// How long a DoT query runs alone before clear text joins it.
pub(crate) fn grace(handshake: Duration) -> Duration {
    (handshake * GRACE_HANDSHAKES).clamp(GRACE_MIN, GRACE_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INITIAL: Duration = Duration::from_secs(30);
    const MAX: Duration = Duration::from_secs(120);
    const HANDSHAKE: Duration = Duration::from_millis(100);

    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    fn machine() -> (Fallback, Instant) {
        let t0 = Instant::now();
        (Fallback::new(INITIAL, MAX, t0), t0)
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_query_goes_in_clear_text_at_once_and_starts_a_probe() {
        let (mut f, t0) = machine();
        let d = f.query(t0, true);
        assert_eq!(d.route, Route::Cleartext);
        assert!(d.probe.is_some());
        // One probe at a time: the next query does not start another.
        let d = f.query(t0, true);
        assert_eq!(d.route, Route::Cleartext);
        assert_eq!(d.probe, None);
        assert!(!f.validated());
    }

    #[tokio::test(start_paused = true)]
    async fn after_validation_queries_go_over_dot_with_a_grace_from_the_handshake() {
        let (mut f, t0) = machine();
        let probe = f.query(t0, true).probe.unwrap();
        assert_eq!(f.probe_finished(probe, t0, Ok(HANDSHAKE)), Notice::None);
        assert!(f.validated());
        let d = f.query(at(t0, 1), true);
        assert_eq!(
            d.route,
            Route::Dot {
                cleartext_after: Some(HANDSHAKE * 3)
            }
        );
        assert_eq!(d.probe, None);
        // No clear-text resolver: DoT alone.
        assert_eq!(
            f.query(at(t0, 1), false).route,
            Route::Dot {
                cleartext_after: None
            }
        );
    }

    #[test]
    fn the_grace_is_bounded_both_ways() {
        assert_eq!(grace(Duration::from_millis(1)), GRACE_MIN);
        assert_eq!(
            grace(Duration::from_millis(200)),
            Duration::from_millis(600)
        );
        assert_eq!(grace(Duration::from_secs(3)), GRACE_MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_backs_off_doubling_up_to_the_maximum() {
        let (mut f, t0) = machine();
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..4 {
            let probe = f.query(now, true).probe.expect("probe due");
            match f.probe_finished(probe, now, Err(())) {
                Notice::FellBack { retry_in } => waits.push(retry_in),
                other => panic!("{other:?}"),
            }
            // Not due a moment before the back-off ends.
            let early = now + *waits.last().unwrap() - Duration::from_millis(1);
            let d = f.query(early, true);
            assert_eq!(d.route, Route::Cleartext);
            assert_eq!(d.probe, None);
            now += *waits.last().unwrap();
        }
        let s = Duration::from_secs;
        assert_eq!(waits, [s(30), s(60), s(120), s(120)]);
    }

    #[tokio::test(start_paused = true)]
    async fn validation_after_a_fall_back_is_announced_once() {
        let (mut f, t0) = machine();
        let probe = f.query(t0, true).probe.unwrap();
        assert!(matches!(
            f.probe_finished(probe, t0, Err(())),
            Notice::FellBack { .. }
        ));
        let probe = f.query(at(t0, 30), true).probe.unwrap();
        assert_eq!(
            f.probe_finished(probe, at(t0, 31), Ok(HANDSHAKE)),
            Notice::Restored
        );
        // The back-off starts over.
        assert!(matches!(
            f.dot_failed(at(t0, 40)),
            Notice::FellBack { retry_in } if retry_in == INITIAL
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dot_failure_while_validated_falls_back_and_schedules_a_probe() {
        let (mut f, t0) = machine();
        let probe = f.query(t0, true).probe.unwrap();
        f.probe_finished(probe, t0, Ok(HANDSHAKE));
        assert_eq!(
            f.dot_failed(at(t0, 5)),
            Notice::FellBack { retry_in: INITIAL }
        );
        assert!(!f.validated());
        let d = f.query(at(t0, 6), true);
        assert_eq!((d.route, d.probe), (Route::Cleartext, None));
        assert!(f.query(at(t0, 35), true).probe.is_some());
        // A second failure report while unvalidated changes nothing.
        assert_eq!(f.dot_failed(at(t0, 36)), Notice::None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_network_change_resets_to_unvalidated_with_a_probe_at_once() {
        let (mut f, t0) = machine();
        let probe = f.query(t0, true).probe.unwrap();
        f.probe_finished(probe, t0, Ok(HANDSHAKE));
        let new = f.network_changed(at(t0, 10));
        assert!(!f.validated());
        // The first query on the new network does not wait for the probe.
        let d = f.query(at(t0, 10), true);
        assert_eq!((d.route, d.probe), (Route::Cleartext, None));
        assert_eq!(
            f.probe_finished(new, at(t0, 11), Ok(HANDSHAKE)),
            Notice::None
        );
        assert!(f.validated());
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_from_the_previous_network_is_ignored() {
        let (mut f, t0) = machine();
        let old = f.query(t0, true).probe.unwrap();
        let new = f.network_changed(at(t0, 1));
        // The old network's DoT worked; that says nothing about this one.
        assert_eq!(
            f.probe_finished(old, at(t0, 2), Ok(HANDSHAKE)),
            Notice::None
        );
        assert!(!f.validated());
        assert_eq!(f.query(at(t0, 2), true).route, Route::Cleartext);
        // Nor does its failure push this network's probe back.
        let old2 = {
            let mut g = Fallback::new(INITIAL, MAX, t0);
            let p = g.query(t0, true).probe.unwrap();
            g.network_changed(t0);
            assert_eq!(g.probe_finished(p, t0, Err(())), Notice::None);
            g.validated()
        };
        assert!(!old2);
        assert!(matches!(
            f.probe_finished(new, at(t0, 3), Err(())),
            Notice::FellBack { retry_in } if retry_in == INITIAL
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_network_change_restarts_the_back_off() {
        let (mut f, t0) = machine();
        let mut now = t0;
        for _ in 0..3 {
            let p = f.query(now, true).probe.unwrap();
            f.probe_finished(p, now, Err(()));
            now += MAX;
        }
        let p = f.network_changed(now);
        assert_eq!(
            f.probe_finished(p, now, Err(())),
            Notice::FellBack { retry_in: INITIAL }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn clear_text_winning_a_race_checks_dot_once_and_a_failed_check_falls_back() {
        let (mut f, t0) = machine();
        assert_eq!(
            f.cleartext_won(),
            None,
            "nothing to check before validation"
        );
        let p = f.query(t0, true).probe.unwrap();
        f.probe_finished(p, t0, Ok(HANDSHAKE));
        let check = f.cleartext_won().expect("a check");
        assert_eq!(f.cleartext_won(), None, "one check at a time");
        // A check that reuses the open connection keeps the measured grace.
        assert_eq!(
            f.probe_finished(check, at(t0, 1), Ok(Duration::ZERO)),
            Notice::None
        );
        assert_eq!(
            f.query(at(t0, 1), true).route,
            Route::Dot {
                cleartext_after: Some(grace(HANDSHAKE))
            }
        );
        let check = f.cleartext_won().unwrap();
        assert_eq!(
            f.probe_finished(check, at(t0, 2), Err(())),
            Notice::FellBack { retry_in: INITIAL }
        );
        assert_eq!(f.query(at(t0, 2), true).route, Route::Cleartext);
    }

    #[tokio::test(start_paused = true)]
    async fn without_clear_text_resolvers_an_unvalidated_query_waits_for_dot() {
        let (mut f, t0) = machine();
        let d = f.query(t0, false);
        assert_eq!(
            d.route,
            Route::Dot {
                cleartext_after: None
            }
        );
        assert!(d.probe.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn under_a_paused_clock_the_probe_comes_due_exactly_at_the_back_off() {
        let (mut f, _) = machine();
        let p = f.query(Instant::now(), true).probe.unwrap();
        f.probe_finished(p, Instant::now(), Err(()));
        tokio::time::advance(INITIAL - Duration::from_millis(1)).await;
        assert_eq!(f.query(Instant::now(), true).probe, None);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(f.query(Instant::now(), true).probe.is_some());
    }
}
