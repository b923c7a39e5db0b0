//! One DoT server and its (at most one) live connection.
//!
//! The connection opens lazily on the first query and is shared by every
//! query after it; concurrent queries wait for the one handshake in
//! progress rather than starting their own. Addresses are tried fastest
//! first, by the smoothed time their last handshakes took, and an address
//! that failed goes to the back until the network changes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Mutex};

use crate::config::ServerSpec;
use crate::host::{Dialer, Event, Host};
use crate::policy::PowerState;
use crate::stats::Stats;
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

/// A server the engine may send queries to.
pub(crate) struct UpstreamServer {
    pub spec: ServerSpec,
    tls: ServerTls,
    state: Mutex<State>,
}

impl UpstreamServer {
    pub fn new(spec: ServerSpec, tls: ServerTls) -> UpstreamServer {
        let addresses = spec
            .addresses
            .iter()
            .map(|&addr| AddressHealth {
                addr,
                srtt: None,
                failures: 0,
            })
            .collect();
        UpstreamServer {
            spec,
            tls,
            state: Mutex::new(State {
                connection: None,
                addresses,
                authenticated: None,
            }),
        }
    }

    /// The live connection, opening one if there is none.
    pub async fn connection(&self, env: &ConnectEnv<'_>) -> Result<Connection, OpenError> {
        let mut state = self.state.lock().await;
        if let Some(c) = &state.connection {
            if c.is_open() {
                return Ok(c.clone());
            }
        }
        state.connection = None;
        // Known-good fastest first; untried in configured order; failed last.
        let mut order: Vec<usize> = (0..state.addresses.len()).collect();
        order.sort_by_key(|&i| {
            let a = &state.addresses[i];
            (a.failures, a.srtt.unwrap_or(Duration::from_secs(3600)))
        });
        let mut last_error = OpenError::Connect("no address".into());
        for i in order {
            let addr = state.addresses[i].addr;
            match Connection::open(
                env.dialer,
                addr,
                &self.tls,
                env.settings,
                env.power.clone(),
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
                    self.report_validated(env.host, &mut state, addr, info);
                    state.connection = Some(connection.clone());
                    return Ok(connection);
                }
                Err(e) => {
                    log::info!("{} at {addr}: {e}", self.spec.label());
                    state.addresses[i].failures = state.addresses[i].failures.saturating_add(1);
                    last_error = e;
                }
            }
        }
        env.host.on_event(Event::ServerFailed {
            server: self.spec.label(),
            reason: last_error.to_string(),
        });
        Err(last_error)
    }

    fn report_validated(
        &self,
        host: &dyn Host,
        state: &mut State,
        addr: SocketAddr,
        info: HandshakeInfo,
    ) {
        state.authenticated = Some(info.authenticated);
        host.on_event(Event::ServerValidated {
            server: self.spec.label(),
            address: addr,
            authenticated: info.authenticated,
            resumed: info.resumed,
        });
    }

    /// Closes the connection and forgets address failures (a new network).
    pub async fn reset(&self) {
        let mut state = self.state.lock().await;
        if let Some(c) = state.connection.take() {
            c.shut_down();
        }
        for a in &mut state.addresses {
            a.failures = 0;
            a.srtt = None;
        }
    }

    /// Closes the connection without forgetting anything (engine stop).
    pub async fn close(&self) {
        let connection = self.state.lock().await.connection.take();
        if let Some(c) = connection {
            c.close(CLOSE_BOUND).await;
        }
    }
}

/// What opening a connection needs from the engine.
pub(crate) struct ConnectEnv<'a> {
    pub dialer: &'a dyn Dialer,
    pub host: &'a dyn Host,
    pub settings: ConnectionSettings,
    pub power: &'a watch::Receiver<PowerState>,
    pub stats: &'a Arc<Stats>,
}
