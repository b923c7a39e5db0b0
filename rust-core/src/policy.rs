//! Battery-aware connection policy: how long an idle DoT connection may stay
//! open in each power state.
//!
//! The reasoning and the numbers are in `docs/connection-policy.md`. In
//! short: every packet after the cellular radio has dropped to idle costs a
//! promotion and a full tail of high power, so a connection should either
//! be used again soon or be closed while the radio is still awake from the
//! last answer. The engine never sends keep-alive traffic and runs no timer
//! while no connection is open.

use std::time::Duration;

/// What the host says about the device, mapped from Android's screen,
/// doze and battery-saver states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum PowerState {
    /// Screen on: a person is waiting for answers; reuse matters most.
    #[default]
    Interactive,
    /// Screen off: background sync only; let the radio sleep.
    Idle,
    /// Doze or battery saver: close as soon as in-flight queries drain.
    DeepIdle,
}

/// Idle time after which an unused connection is closed, per power state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdlePolicy {
    /// Screen on.
    pub interactive: Duration,
    /// Screen off.
    pub idle: Duration,
    /// Doze or battery saver (0: close when drained).
    pub deep_idle: Duration,
}

impl Default for IdlePolicy {
    /// See `docs/connection-policy.md` for how these were chosen.
    fn default() -> Self {
        IdlePolicy {
            interactive: Duration::from_secs(120),
            idle: Duration::from_secs(5),
            deep_idle: Duration::ZERO,
        }
    }
}

impl IdlePolicy {
    /// The idle timeout in `state`, never longer than the server's
    /// edns-tcp-keepalive timeout when it sent one (RFC 7828 §3.2.2: the
    /// client should close before the server does, so the close costs no
    /// extra wake-up from the server's FIN).
    pub fn idle_timeout(&self, state: PowerState, server_keepalive: Option<Duration>) -> Duration {
        let ours = match state {
            PowerState::Interactive => self.interactive,
            PowerState::Idle => self.idle,
            PowerState::DeepIdle => self.deep_idle,
        };
        match server_keepalive {
            Some(theirs) => ours.min(theirs),
            None => ours,
        }
    }

    pub(crate) fn check(&self) -> Result<(), (&'static str, &'static str)> {
        let limit = Duration::from_secs(3600);
        for (field, d) in [
            ("idle.interactive", self.interactive),
            ("idle.idle", self.idle),
            ("idle.deep_idle", self.deep_idle),
        ] {
            if d > limit {
                return Err((field, "must be at most 3600 s"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_keepalive_caps_our_timeout() {
        let p = IdlePolicy::default();
        assert_eq!(
            p.idle_timeout(PowerState::Interactive, None),
            Duration::from_secs(120)
        );
        assert_eq!(
            p.idle_timeout(PowerState::Interactive, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(p.idle_timeout(PowerState::DeepIdle, None), Duration::ZERO);
    }
}
