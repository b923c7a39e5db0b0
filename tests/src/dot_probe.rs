//! A minimal DoT client, independent of the engine, that measures what a
//! server does on the wire: whether it answers out of order, whether it
//! answers several queries that arrive in one TLS record, whether it sends
//! edns-tcp-keepalive, whether it issues TLS session tickets, how long its
//! first answer takes. The interoperability tests use it to tell a server's
//! behaviour apart from the engine's.
//!
//! It writes exactly what it is told, in the TLS records it is told, and
//! reads with bounded waits.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::{ClientSessionMemoryCache, ClientSessionStore};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::NamedGroup;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::certs::DOT_NAME;

/// RFC 7828 edns-tcp-keepalive option code.
const KEEPALIVE: u16 = 11;

/// A session store that counts the TLS 1.3 tickets and TLS 1.2 sessions the
/// server handed out, so a probe can tell "server issues no tickets" from
/// "client did not resume".
#[derive(Debug)]
pub struct TicketCounter {
    inner: ClientSessionMemoryCache,
    tickets: AtomicUsize,
}

impl TicketCounter {
    /// An empty store.
    pub fn new() -> Arc<TicketCounter> {
        Arc::new(TicketCounter {
            inner: ClientSessionMemoryCache::new(32),
            tickets: AtomicUsize::new(0),
        })
    }

    /// Tickets (TLS 1.3) or sessions (TLS 1.2) received so far.
    pub fn tickets(&self) -> usize {
        self.tickets.load(Ordering::SeqCst)
    }
}

impl ClientSessionStore for TicketCounter {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.inner.set_kx_hint(server_name, group)
    }
    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.inner.kx_hint(server_name)
    }
    fn set_tls12_session(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.tickets.fetch_add(1, Ordering::SeqCst);
        self.inner.set_tls12_session(server_name, value)
    }
    fn tls12_session(
        &self,
        server_name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.inner.tls12_session(server_name)
    }
    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.inner.remove_tls12_session(server_name)
    }
    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        self.tickets.fetch_add(1, Ordering::SeqCst);
        self.inner.insert_tls13_ticket(server_name, value)
    }
    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        self.inner.take_tls13_ticket(server_name)
    }
}

/// One TLS connection to a DoT server, authenticated with the test CA for
/// [`DOT_NAME`].
pub struct Probe {
    stream: TlsStream<TcpStream>,
    /// How long TCP connect plus TLS handshake took.
    pub handshake: Duration,
    /// TLS version negotiated, e.g. "TLSv1_3".
    pub version: String,
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probe")
            .field("handshake", &self.handshake)
            .field("version", &self.version)
            .finish()
    }
}

/// A client configuration shared by the probes of one test, so a later
/// connection can resume a session from an earlier one (rustls resumes only
/// with the configuration that stored the ticket).
pub struct ProbeConfig {
    config: Arc<rustls::ClientConfig>,
    /// The session store, counting what the server issued.
    pub store: Arc<TicketCounter>,
}

impl ProbeConfig {
    /// Trusts `ca_pem` for [`DOT_NAME`], offers ALPN `dot`, TLS 1.2 and 1.3.
    pub fn new(ca_pem: &str) -> io::Result<ProbeConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| io::Error::other(format!("CA PEM: {e}")))?;
            roots.add(cert).map_err(io::Error::other)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"dot".to_vec()];
        let store = TicketCounter::new();
        config.resumption = rustls::client::Resumption::store(store.clone());
        Ok(ProbeConfig {
            config: Arc::new(config),
            store,
        })
    }
}

impl Probe {
    /// Connects and completes the handshake within 5 s.
    pub async fn connect(addr: SocketAddr, config: &ProbeConfig) -> io::Result<Probe> {
        let connector = TlsConnector::from(config.config.clone());
        let started = Instant::now();
        let fut = async {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from(DOT_NAME).map_err(io::Error::other)?;
            connector.connect(name, tcp).await
        };
        let stream = tokio::time::timeout(Duration::from_secs(5), fut)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"))??;
        let version = stream
            .get_ref()
            .1
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default();
        Ok(Probe {
            stream,
            handshake: started.elapsed(),
            version,
        })
    }

    /// Connects with a configuration of its own (no resumption across
    /// probes), trusting `ca_pem`.
    pub async fn connect_fresh(addr: SocketAddr, ca_pem: &str) -> io::Result<Probe> {
        Probe::connect(addr, &ProbeConfig::new(ca_pem)?).await
    }

    /// Whether the session was resumed (TLS 1.3 PSK or TLS 1.2 ticket).
    pub fn resumed(&self) -> bool {
        matches!(
            self.stream.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Resumed)
        )
    }

    /// Writes `frames` (each already length-prefixed) in one write, which
    /// rustls sends as one TLS record when it fits in one.
    pub async fn write_together(&mut self, frames: &[Vec<u8>]) -> io::Result<()> {
        let all: Vec<u8> = frames.concat();
        self.stream.write_all(&all).await?;
        self.stream.flush().await
    }

    /// Writes each frame in its own write, so each is its own TLS record.
    pub async fn write_separately(&mut self, frames: &[Vec<u8>]) -> io::Result<()> {
        for f in frames {
            self.stream.write_all(f).await?;
            self.stream.flush().await?;
        }
        Ok(())
    }

    /// Reads one length-prefixed DNS message, waiting at most `wait`.
    /// `Ok(None)` means the wait ran out; an EOF is an error of kind
    /// `UnexpectedEof`.
    pub async fn read_message(&mut self, wait: Duration) -> io::Result<Option<Vec<u8>>> {
        let fut = async {
            let mut len = [0u8; 2];
            self.stream.read_exact(&mut len).await?;
            let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
            self.stream.read_exact(&mut msg).await?;
            Ok::<_, io::Error>(msg)
        };
        match tokio::time::timeout(wait, fut).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Waits up to `wait` for the server to close; returns how long that
    /// took, or `None` if it kept the connection open. Data arriving in the
    /// meantime is discarded.
    pub async fn wait_for_close(&mut self, wait: Duration) -> Option<Duration> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + wait;
        let mut buf = [0u8; 512];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Reads for a short while so post-handshake messages (session tickets)
    /// are processed, then closes with a TLS close_notify.
    pub async fn finish(mut self) {
        let mut buf = [0u8; 512];
        let _ = tokio::time::timeout(Duration::from_millis(100), self.stream.read(&mut buf)).await;
        let _ = self.stream.shutdown().await;
    }
}

/// A length-prefixed query for `name` A with ID `id`, RD set, and an OPT
/// record carrying an empty edns-tcp-keepalive option when `keepalive`.
pub fn query_frame(id: u16, name: &str, keepalive: bool) -> Vec<u8> {
    let mut msg = Vec::with_capacity(64);
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    for label in name.trim_end_matches('.').split('.') {
        msg.push(label.len() as u8);
        msg.extend_from_slice(label.as_bytes());
    }
    msg.push(0);
    msg.extend_from_slice(&[0, 1, 0, 1]); // A, IN
                                          // OPT: root name, type 41, UDP size 1232, no flags.
    msg.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    if keepalive {
        msg.extend_from_slice(&4u16.to_be_bytes());
        msg.extend_from_slice(&KEEPALIVE.to_be_bytes());
        msg.extend_from_slice(&0u16.to_be_bytes());
    } else {
        msg.extend_from_slice(&0u16.to_be_bytes());
    }
    let mut frame = (msg.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(&msg);
    frame
}

/// The message ID.
pub fn message_id(msg: &[u8]) -> u16 {
    dotcore::internals::wire::id(msg)
}

/// The edns-tcp-keepalive timeout (in units of 100 ms) a response carries.
pub fn keepalive_of(msg: &[u8]) -> Option<u16> {
    let layout = dotcore::internals::wire::Layout::parse(msg).ok()?;
    dotcore::internals::wire::keepalive_timeout(msg, &layout)
}

/// How many answers arrived after an answer to a later query: 0 when the
/// server answered strictly in order.
pub fn out_of_order(ids_in_arrival_order: &[u16]) -> usize {
    ids_in_arrival_order
        .windows(2)
        .filter(|w| w[1] < w[0])
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_frame_is_a_parseable_query_with_keepalive() {
        let frame = query_frame(7, "a.test.", true);
        let len = u16::from_be_bytes([frame[0], frame[1]]) as usize;
        assert_eq!(len, frame.len() - 2);
        let q = dotcore::internals::wire::Query::parse(frame[2..].to_vec()).unwrap();
        assert_eq!(q.id(), 7);
        assert!(q.has_edns());
    }

    #[test]
    fn out_of_order_counts_inversions_of_neighbours() {
        assert_eq!(out_of_order(&[0, 1, 2, 3]), 0);
        assert_eq!(out_of_order(&[1, 0, 2, 3]), 1);
        assert_eq!(out_of_order(&[3, 2, 1, 0]), 3);
    }
}
