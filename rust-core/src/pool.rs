//! The server pool: which DoT servers the engine uses, and a connection to
//! the first of them that can give one.
//!
//! Servers are tried in configured order, each in turn when the one before
//! could not be connected to (failover). Within one server, which address
//! goes first (fastest first, failed last) and the live connection are the
//! server's own business ([`UpstreamServer::connection`]). In
//! [`Upstream::NetworkResolvers`] the servers are the network's own
//! resolvers on port 853, so a network change replaces them; otherwise it
//! only resets them (connections closed, address failures forgotten).

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{Config, Mode, ServerSpec, Upstream};
use crate::host::{Dialer, Host};
use crate::policy::PowerState;
use crate::providers::DOT_PORT;
use crate::stats::{ServerStatus, Stats};
use crate::tls::{ChainVerifier, ServerTls};
use crate::transport::{Connection, ConnectionSettings, OpenError};
use crate::upstream::{ConnectEnv, UpstreamServer};

/// The DoT servers and what opening connections to them needs.
pub(crate) struct Pool {
    mode: Mode,
    /// Whether the servers are derived from the network's resolvers, and so
    /// replaced when the network changes.
    from_network: bool,
    chain: Arc<ChainVerifier>,
    dialer: Arc<dyn Dialer>,
    host: Arc<dyn Host>,
    stats: Arc<Stats>,
    settings: ConnectionSettings,
    /// Connections watch it, so a power-state change reaches idle ones at
    /// once.
    power: watch::Sender<PowerState>,
    /// Shared, not copied, by every query that looks them up.
    servers: RwLock<Arc<[Arc<UpstreamServer>]>>,
}

/// A connection and the server it goes to, which is told how queries over
/// it fare.
pub(crate) struct ServerConnection {
    /// The server the connection belongs to.
    pub server: Arc<UpstreamServer>,
    /// A handle on the server's live connection.
    pub connection: Connection,
}

/// What the pool needs from the engine besides its configuration.
pub(crate) struct PoolParts {
    /// Checks certificate chains for every server.
    pub chain: Arc<ChainVerifier>,
    /// Opens the streams.
    pub dialer: Arc<dyn Dialer>,
    /// Protects sockets and hears server events.
    pub host: Arc<dyn Host>,
    /// Counts connections, handshakes and bytes.
    pub stats: Arc<Stats>,
}

impl Pool {
    /// The pool for `config`: the `configured` servers, or in
    /// [`Upstream::NetworkResolvers`] the servers at `network_resolvers`.
    pub(crate) fn new(
        config: &Config,
        configured: Vec<ServerSpec>,
        network_resolvers: &[SocketAddr],
        parts: PoolParts,
    ) -> Pool {
        let from_network = matches!(config.upstream, Upstream::NetworkResolvers);
        let t = config.timeouts;
        let pool = Pool {
            mode: config.mode,
            from_network,
            chain: parts.chain,
            dialer: parts.dialer,
            host: parts.host,
            stats: parts.stats,
            settings: ConnectionSettings {
                connect_timeout: t.connect,
                handshake_timeout: t.handshake,
                query_timeout: t.query,
                max_in_flight: config.max_in_flight,
                idle: config.idle,
            },
            power: watch::channel(config.power_state).0,
            servers: RwLock::new(Arc::new([])),
        };
        pool.install(if from_network {
            network_servers(network_resolvers)
        } else {
            configured
        });
        pool
    }

    /// Replaces the servers with `specs`. The old ones are only dropped,
    /// not closed: a network change resets them before replacing them.
    pub(crate) fn install(&self, specs: Vec<ServerSpec>) {
        let servers = specs
            .into_iter()
            .map(|spec| {
                let tls = ServerTls::new(&spec, self.mode, self.chain.clone());
                Arc::new(UpstreamServer::new(spec, tls))
            })
            .collect();
        if let Ok(mut s) = self.servers.write() {
            *s = servers;
        }
    }

    /// The servers now, in configured order.
    pub(crate) fn servers(&self) -> Arc<[Arc<UpstreamServer>]> {
        self.servers
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|_| Arc::new([]))
    }

    /// Sets the power state connections adopt their idle timeout from.
    pub(crate) fn set_power_state(&self, state: PowerState) {
        self.power.send_replace(state);
    }

    /// The power state last set.
    pub(crate) fn power_state(&self) -> PowerState {
        *self.power.borrow()
    }

    /// A connection to the first server that can give one; connecting stops
    /// at `deadline` (none for probes). The error is the last server's.
    pub(crate) async fn any_connection(
        &self,
        deadline: Option<Instant>,
    ) -> Result<ServerConnection, OpenError> {
        let env = ConnectEnv {
            dialer: &*self.dialer,
            host: &*self.host,
            settings: &self.settings,
            deadline,
            power: &self.power,
            stats: &self.stats,
        };
        let mut last = None;
        for server in self.servers().iter() {
            match server.connection(&env).await {
                Ok(connection) => {
                    return Ok(ServerConnection {
                        server: server.clone(),
                        connection,
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| OpenError::untried("no DoT server configured")))
    }

    /// The device moved to another network: every connection is dropped
    /// and every address failure forgotten, since they described the old
    /// network; servers derived from the network's resolvers are replaced
    /// by those `resolvers` returns. It is asked only after the reset
    /// (which waits for connects in progress), so that when changes overlap
    /// the latest network's resolvers are the ones installed.
    pub(crate) async fn network_changed(&self, resolvers: impl FnOnce() -> Vec<SocketAddr>) {
        for s in self.servers().iter() {
            s.reset().await;
        }
        if self.from_network {
            self.install(network_servers(&resolvers()));
        }
    }

    /// Closes every connection with close_notify.
    pub(crate) async fn close(&self) {
        // Concurrently, so one slow server does not hold the others' close.
        let mut closing = tokio::task::JoinSet::new();
        for s in self.servers().iter() {
            let s = s.clone();
            closing.spawn(async move { s.close().await });
        }
        while closing.join_next().await.is_some() {}
    }

    /// Every address of every server, in configured order.
    pub(crate) fn status(&self) -> Vec<ServerStatus> {
        self.servers().iter().flat_map(|s| s.status()).collect()
    }
}

/// Opportunistic DoT to the network's own resolvers: port 853, no name to
/// authenticate.
fn network_servers(resolvers: &[SocketAddr]) -> Vec<ServerSpec> {
    resolvers
        .iter()
        .map(|r| ServerSpec {
            auth_name: None,
            addresses: vec![SocketAddr::new(r.ip(), DOT_PORT)],
            pins: Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::Mutex;

    use crate::host::{BoxStream, DialFuture, NoHost};

    const REFUSING: SocketAddr = SocketAddr::new(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)),
        853,
    );
    const ANSWERING: SocketAddr = SocketAddr::new(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)),
        853,
    );

    /// Refuses [`REFUSING`]; elsewhere accepts TLS over an in-memory pipe
    /// and holds the connection open. Records every address dialled.
    struct FakeDialer {
        acceptor: tokio_rustls::TlsAcceptor,
        dialled: Mutex<Vec<SocketAddr>>,
    }

    impl FakeDialer {
        fn new() -> FakeDialer {
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = rcgen::CertificateParams::new(vec!["dot.test".to_string()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
            let mut config = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![cert.der().clone()],
                    rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
                )
                .unwrap();
            config.alpn_protocols = vec![crate::tls::ALPN_DOT.to_vec()];
            FakeDialer {
                acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
                dialled: Mutex::new(Vec::new()),
            }
        }

        fn dialled(&self) -> Vec<SocketAddr> {
            self.dialled.lock().unwrap().clone()
        }
    }

    impl Dialer for FakeDialer {
        fn dial(&self, addr: SocketAddr) -> DialFuture<'_> {
            Box::pin(async move {
                self.dialled.lock().unwrap().push(addr);
                if addr == REFUSING {
                    return Err(io::Error::from(io::ErrorKind::ConnectionRefused));
                }
                let (client, server) = tokio::io::duplex(16 * 1024);
                let acceptor = self.acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(server).await {
                        // Until the client closes: nothing to answer.
                        let _ = tokio::io::copy(&mut tls, &mut tokio::io::sink()).await;
                    }
                });
                Ok(Box::new(client) as BoxStream)
            })
        }
    }

    fn spec(addr: SocketAddr) -> ServerSpec {
        ServerSpec {
            auth_name: None,
            addresses: vec![addr],
            pins: Vec::new(),
        }
    }

    /// Opportunistic, so the fake server's self-signed certificate is
    /// accepted (unauthenticated) and only reachability decides.
    fn pool(servers: Vec<ServerSpec>, dialer: Arc<FakeDialer>) -> Pool {
        let config = Config {
            mode: Mode::Opportunistic,
            ..Config::default()
        };
        Pool::new(
            &config,
            servers,
            &[],
            PoolParts {
                chain: Arc::new(ChainVerifier::new(&[])),
                dialer,
                host: Arc::new(NoHost),
                stats: Arc::new(Stats::default()),
            },
        )
    }

    #[tokio::test]
    async fn a_refusing_server_fails_over_to_the_next() {
        let dialer = Arc::new(FakeDialer::new());
        let pool = pool(vec![spec(REFUSING), spec(ANSWERING)], dialer.clone());
        let got = pool.any_connection(None).await.expect("a connection");
        assert_eq!(got.connection.address, ANSWERING);
        assert_eq!(got.server.spec.addresses, vec![ANSWERING]);
        assert_eq!(dialer.dialled(), vec![REFUSING, ANSWERING]);
        let status = pool.status();
        assert!(status[0].last_failure.is_some(), "{status:?}");
        assert!(status[1].connected, "{status:?}");
        pool.close().await;
    }

    #[tokio::test]
    async fn with_every_server_refusing_the_last_ones_error_is_returned() {
        let dialer = Arc::new(FakeDialer::new());
        let pool = pool(vec![spec(REFUSING)], dialer.clone());
        let err = pool
            .any_connection(None)
            .await
            .err()
            .expect("no connection");
        assert_eq!(err.address, Some(REFUSING));
        assert!(err.before_tls(), "{err}");
    }

    #[tokio::test]
    async fn install_replaces_the_servers() {
        let dialer = Arc::new(FakeDialer::new());
        let pool = pool(vec![spec(REFUSING)], dialer.clone());
        pool.install(vec![spec(ANSWERING)]);
        let addresses: Vec<SocketAddr> = pool.status().iter().map(|s| s.address).collect();
        assert_eq!(addresses, vec![ANSWERING]);
        let got = pool.any_connection(None).await.expect("a connection");
        assert_eq!(got.connection.address, ANSWERING);
        assert_eq!(
            dialer.dialled(),
            vec![ANSWERING],
            "the old server was not tried"
        );
        pool.close().await;
    }

    #[tokio::test]
    async fn the_network_resolvers_pool_follows_the_network() {
        let config = Config {
            mode: Mode::Opportunistic,
            upstream: Upstream::NetworkResolvers,
            ..Config::default()
        };
        let old: SocketAddr = "192.0.2.53:53".parse().unwrap();
        let new: SocketAddr = "198.51.100.53:53".parse().unwrap();
        let pool = Pool::new(
            &config,
            Vec::new(),
            &[old],
            PoolParts {
                chain: Arc::new(ChainVerifier::new(&[])),
                dialer: Arc::new(FakeDialer::new()),
                host: Arc::new(NoHost),
                stats: Arc::new(Stats::default()),
            },
        );
        let addresses = |p: &Pool| p.status().iter().map(|s| s.address).collect::<Vec<_>>();
        assert_eq!(addresses(&pool), vec![SocketAddr::new(old.ip(), DOT_PORT)]);
        pool.network_changed(|| vec![new]).await;
        assert_eq!(addresses(&pool), vec![SocketAddr::new(new.ip(), DOT_PORT)]);
    }
}
