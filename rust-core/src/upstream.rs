//! One DoT server and its (at most one) live connection.
//!
//! The connection opens lazily on the first query and is shared by every
//! query after it; concurrent queries wait for the one handshake in
//! progress rather than starting their own. Addresses are tried fastest
//! first, by the smoothed time their last handshakes took, and an address
//! that failed goes to the back until the network changes.
//!
//! Each address also keeps its last failure, as a [`ServerFailure`], for
//! stats and the CLI. It says the address is *currently* failing, so it
//! clears when the address works again: a successful handshake there (in
//! strict mode, that is an authenticated one), or an answer over its
//! connection. A network change clears it too, since it described the old
//! network. A failure is logged once per change, not once per attempt, and
//! the server's `ServerFailed` event is sent once per change of the
//! failure it reports, until a handshake succeeds again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Mutex};
use tokio::time::Instant;

use crate::config::ServerSpec;
use crate::failure::{ServerFailure, ServerFailureKind};
use crate::host::{Dialer, Event, Host};
use crate::policy::PowerState;
use crate::stats::{ServerStatus, Stats};
use crate::tls::ServerTls;
use crate::transport::{Connection, ConnectionSettings, HandshakeInfo, OpenError};

/// How long a closing connection may take to send close_notify: enough for
/// a local write, short enough that stopping the engine stays quick.
const CLOSE_BOUND: Duration = Duration::from_millis(500);

struct AddressHealth {
    addr: SocketAddr,
    /// Smoothed handshake time (connect + TLS); `None` until measured.
    srtt: Option<Duration>,
    /// Consecutive failures.
    failures: u32,
}

struct State {
    connection: Option<Connection>,
    addresses: Vec<AddressHealth>,
    /// Whether the last handshake authenticated (opportunistic reporting).
    authenticated: Option<bool>,
}

impl State {
    /// The order addresses are tried in, as indices: known-good fastest
    /// first, untried in configured order (the sort is stable), failed last.
    fn attempt_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.addresses.len()).collect();
        order.sort_by_key(|&i| {
            let a = &self.addresses[i];
            (a.failures, a.srtt.unwrap_or(Duration::from_secs(3600)))
        });
        order
    }
}

/// What stats say about one address.
#[derive(Clone)]
struct AddressReport {
    addr: SocketAddr,
    /// The live connection's closed flag, while one is on this address.
    connection: Option<Arc<AtomicBool>>,
    authenticated: Option<bool>,
    failure: Option<ServerFailure>,
}

/// The server's reports, behind a plain mutex: read by stats from any
/// thread, so never held across an await (unlike [`State`], held across
/// handshakes).
struct Reports {
    addresses: Vec<AddressReport>,
    /// The failure last sent in a `ServerFailed` event, until a handshake
    /// succeeds.
    announced: Option<(SocketAddr, ServerFailure)>,
}

/// A server the engine may send queries to.
pub(crate) struct UpstreamServer {
    pub spec: ServerSpec,
    tls: ServerTls,
    state: Mutex<State>,
    reports: std::sync::Mutex<Reports>,
}

impl UpstreamServer {
    pub(crate) fn new(spec: ServerSpec, tls: ServerTls) -> UpstreamServer {
        let addresses = spec
            .addresses
            .iter()
            .map(|&addr| AddressHealth {
                addr,
                srtt: None,
                failures: 0,
            })
            .collect();
        let reports = Reports {
            addresses: spec.addresses.iter().map(|&a| fresh_report(a)).collect(),
            announced: None,
        };
        UpstreamServer {
            spec,
            tls,
            state: Mutex::new(State {
                connection: None,
                addresses,
                authenticated: None,
            }),
            reports: std::sync::Mutex::new(reports),
        }
    }

    /// The live connection, opening one if there is none. Connecting stops
    /// at `env.deadline`.
    pub(crate) async fn connection(&self, env: &ConnectEnv<'_>) -> Result<Connection, OpenError> {
        if let Ok(state) = self.state.try_lock() {
            if let Some(c) = state.connection.as_ref().filter(|c| c.is_open()) {
                return Ok(c.clone());
            }
        }
        // Boxed: waiting for the lock, connecting and the handshake make a
        // future of several kilobytes, which every query's future would
        // otherwise carry (and tokio copy when it spawns one) although
        // almost every query finds the connection open.
        Box::pin(async {
            let mut state = self.state.lock().await;
            if let Some(c) = state.connection.as_ref().filter(|c| c.is_open()) {
                return Ok(c.clone());
            }
            self.open(&mut state, env).await
        })
        .await
    }

    /// Opens a connection, the addresses tried in [`State::attempt_order`],
    /// and makes it the live one.
    async fn open(&self, state: &mut State, env: &ConnectEnv<'_>) -> Result<Connection, OpenError> {
        state.connection = None;
        let mut failed: Vec<OpenError> = Vec::new();
        for i in state.attempt_order() {
            if env.deadline.is_some_and(|d| d <= Instant::now()) {
                // Out of time: the addresses left were not tried, so they
                // did not fail.
                break;
            }
            let addr = state.addresses[i].addr;
            match Connection::open(
                env.dialer,
                addr,
                &self.tls,
                *env.settings,
                env.deadline,
                env.power.subscribe(),
                env.stats.clone(),
            )
            .await
            {
                Ok((connection, info)) => {
                    let health = &mut state.addresses[i];
                    health.failures = 0;
                    health.srtt = Some(match health.srtt {
                        Some(s) => (s * 7 + info.elapsed) / 8,
                        None => info.elapsed,
                    });
                    self.report_validated(env.host, state, &connection, info);
                    state.connection = Some(connection.clone());
                    return Ok(connection);
                }
                Err(e) => {
                    log::debug!("{} at {e}", self.spec.label());
                    state.addresses[i].failures = state.addresses[i].failures.saturating_add(1);
                    self.note_failure(addr, &e.failure);
                    failed.push(e);
                }
            }
        }
        let Some(worst) = headline(&failed) else {
            return Err(OpenError::untried(
                "the query's time ran out before a connection could be tried",
            ));
        };
        let worst = worst.clone();
        if let Some(address) = worst.address {
            self.announce_failure(env.host, address, &worst.failure);
        }
        Err(worst)
    }

    fn report_validated(
        &self,
        host: &dyn Host,
        state: &mut State,
        connection: &Connection,
        info: HandshakeInfo,
    ) {
        state.authenticated = Some(info.authenticated);
        let addr = connection.address;
        self.with_reports(|r| {
            r.announced = None;
            if let Some(a) = r.addresses.iter_mut().find(|a| a.addr == addr) {
                if a.failure.take().is_some() {
                    log::info!(target: "dotcore::server", "{} at {addr}: works again", self.spec.label());
                }
                a.connection = Some(connection.closed_flag());
                a.authenticated = Some(info.authenticated);
            }
        });
        host.on_event(Event::ServerValidated {
            server: self.spec.label(),
            address: addr,
            authenticated: info.authenticated,
            resumed: info.resumed,
        });
    }

    /// Records that `addr` failed with `failure`; logged when it differs
    /// from the failure already recorded there.
    pub(crate) fn note_failure(&self, addr: SocketAddr, failure: &ServerFailure) {
        self.with_reports(|r| {
            let Some(a) = r.addresses.iter_mut().find(|a| a.addr == addr) else {
                return;
            };
            if a.failure.as_ref() != Some(failure) {
                log::warn!(
                    target: "dotcore::server",
                    "{} at {addr}: {} [{}]",
                    self.spec.label(),
                    failure.text,
                    failure.kind
                );
                a.failure = Some(failure.clone());
            }
        });
    }

    /// An answer came over the connection to `addr`: it works.
    pub(crate) fn note_answer(&self, addr: SocketAddr) {
        self.with_reports(|r| {
            if let Some(a) = r.addresses.iter_mut().find(|a| a.addr == addr) {
                if a.failure.take().is_some() {
                    log::info!(target: "dotcore::server", "{} at {addr}: answers again", self.spec.label());
                }
            }
        });
    }

    /// Sends `ServerFailed` unless this failure is the one last sent.
    fn announce_failure(&self, host: &dyn Host, address: SocketAddr, failure: &ServerFailure) {
        let changed = self.with_reports(|r| {
            let now = Some((address, failure.clone()));
            let changed = r.announced != now;
            r.announced = now;
            changed
        });
        if changed {
            host.on_event(Event::ServerFailed {
                server: self.spec.label(),
                address,
                failure: failure.clone(),
            });
        }
    }

    /// Every address of the server, as stats report them.
    pub(crate) fn status(&self) -> Vec<ServerStatus> {
        let label = self.spec.label();
        self.with_reports(|r| {
            r.addresses
                .iter()
                .map(|a| ServerStatus {
                    server: label.clone(),
                    address: a.addr,
                    connected: a
                        .connection
                        .as_ref()
                        .is_some_and(|closed| !closed.load(Ordering::Acquire)),
                    authenticated: a.authenticated,
                    last_failure: a.failure.clone(),
                })
                .collect()
        })
    }

    /// Runs `f` on the reports. A panic elsewhere while holding them left
    /// them consistent (each update is one assignment), so a poisoned lock
    /// is used as it is.
    fn with_reports<T>(&self, f: impl FnOnce(&mut Reports) -> T) -> T {
        let mut reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut reports)
    }

    /// Closes the connection and forgets address failures and reports (a
    /// new network).
    pub(crate) async fn reset(&self) {
        let mut state = self.state.lock().await;
        if let Some(c) = state.connection.take() {
            c.shut_down();
        }
        for a in &mut state.addresses {
            a.failures = 0;
            a.srtt = None;
        }
        self.with_reports(|r| {
            r.announced = None;
            for a in &mut r.addresses {
                *a = fresh_report(a.addr);
            }
        });
    }

    /// Closes the connection without forgetting anything (engine stop).
    pub(crate) async fn close(&self) {
        let connection = self.state.lock().await.connection.take();
        if let Some(c) = connection {
            c.close(CLOSE_BOUND).await;
        }
    }
}

fn fresh_report(addr: SocketAddr) -> AddressReport {
    AddressReport {
        addr,
        connection: None,
        authenticated: None,
        failure: None,
    }
}

/// How far an attempt got before it failed: the furthest one says most
/// about the server (a certificate problem over a refused IPv6 address
/// on a network without IPv6).
fn progress(kind: ServerFailureKind) -> u8 {
    use ServerFailureKind as K;
    match kind {
        K::NetworkUnreachable => 0,
        K::ConnectionRefused | K::ConnectTimedOut | K::ConnectFailed => 1,
        K::AnswerTimedOut | K::ConnectionLost => 2,
        _ => 3,
    }
}

/// The failure a server reports for one round of attempts: the one that
/// got furthest, the first of those on a tie.
fn headline(failed: &[OpenError]) -> Option<&OpenError> {
    failed.iter().rev().max_by_key(|e| progress(e.failure.kind))
}

/// What opening a connection needs from the engine.
pub(crate) struct ConnectEnv<'a> {
    pub dialer: &'a dyn Dialer,
    pub host: &'a dyn Host,
    pub settings: &'a ConnectionSettings,
    /// When the query waiting for the connection gives up (none for probes).
    pub deadline: Option<Instant>,
    /// A new connection watches it for its idle timeout.
    pub power: &'a watch::Sender<PowerState>,
    pub stats: &'a Arc<Stats>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(port: u16, kind: ServerFailureKind) -> OpenError {
        OpenError::at(
            SocketAddr::from(([127, 0, 0, 1], port)),
            ServerFailure::new(kind, format!("{kind}")),
        )
    }

    #[test]
    fn addresses_are_tried_fastest_first_and_failed_last() {
        let health = |port, srtt: Option<u64>, failures| AddressHealth {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            srtt: srtt.map(Duration::from_millis),
            failures,
        };
        let state = State {
            connection: None,
            addresses: vec![
                health(1, Some(90), 0),
                health(2, None, 0),
                health(3, Some(10), 1),
                health(4, Some(20), 0),
                health(5, None, 0),
            ],
            authenticated: None,
        };
        assert_eq!(state.attempt_order(), vec![3, 0, 1, 4, 2]);
    }

    #[test]
    fn the_failure_that_got_furthest_is_the_servers_headline() {
        use ServerFailureKind as K;
        let round = [
            failed(1, K::NetworkUnreachable),
            failed(2, K::ConnectionRefused),
            failed(3, K::PinMismatch),
            failed(4, K::AnswerTimedOut),
            failed(5, K::CertificateExpired),
        ];
        assert_eq!(headline(&round).unwrap().address.unwrap().port(), 3);
        assert_eq!(headline(&round[..2]).unwrap().address.unwrap().port(), 2);
        let refused = [
            failed(1, K::ConnectionRefused),
            failed(2, K::ConnectTimedOut),
        ];
        assert_eq!(headline(&refused).unwrap().address.unwrap().port(), 1);
        assert!(headline(&[]).is_none());
    }
}
