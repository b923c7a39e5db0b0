//! An in-process DNS-over-TLS server that misbehaves on purpose.
//!
//! A real resolver (unbound, a public DoT provider) only ever fails in the
//! ways its authors intended, and never on cue. The DoT client's robustness
//! code (timeouts, reconnects, ID matching, framing checks, pipelining,
//! session resumption) can only be tested against a peer that produces each
//! fault deterministically: this module is that peer.
//!
//! The wire protocol is RFC 7858: TLS over TCP, every DNS message prefixed by
//! its length as a 2-byte big-endian integer (RFC 1035 §4.2.2). Answers are
//! synthetic (see [`A_ANSWER`], [`AAAA_ANSWER`]), so tests can assert on them
//! without any zone data.
//!
//! Two ways to run it:
//! * [`FaultServer::start`] listens on a kernel socket on `127.0.0.1` (only
//!   loopback, never any other interface) for tests that exercise the real
//!   connect path;
//! * [`serve_stream`] runs the same per-connection logic over any byte stream,
//!   typically one end of a [`tokio::io::duplex`] pipe, so tests can run under
//!   Tokio's paused clock (`start_paused`), where no kernel socket exists and
//!   a simulated round-trip time ([`ServeOptions::response_delay`]) costs no
//!   wall-clock time.
//!
//! Every loop here is bounded in count ([`MAX_CONNECTIONS`],
//! [`MAX_QUERIES_PER_CONNECTION`]) and in time ([`ServeOptions::idle_timeout`]),
//! and everything is torn down when the [`FaultServer`] is dropped.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use hickory_proto::op::{Edns, Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::rdata::{A, AAAA, TXT};
use hickory_proto::rr::{RData, Record, RecordType};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData as _, PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::ServerSessionMemoryCache;
use rustls::{ClientConfig, HandshakeKind, RootCertStore, ServerConfig};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{sleep_until, timeout, Instant};
use tokio_rustls::TlsAcceptor;

/// The address every A question is answered with (TEST-NET-1, RFC 5737), so
/// a test can tell a synthetic answer from anything a real resolver returns.
pub const A_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// The address every AAAA question is answered with (documentation prefix,
/// RFC 3849), for the same reason as [`A_ANSWER`].
pub const AAAA_ANSWER: Ipv6Addr = Ipv6Addr::new(0x2001, 0x0db8, 0, 0, 0, 0, 0, 1);

/// TTL of every synthetic record; fixed so cache tests can predict expiry.
pub const ANSWER_TTL: u32 = 300;

/// The name on the certificate served under [`Behaviour::WrongName`]: signed
/// by the same CA as the real leaf, so the *only* thing wrong is the name.
pub const WRONG_NAME: &str = "other.test";

/// The ALPN protocol id of DNS over TLS (RFC 7858 §3.2 / IANA registry); the
/// server advertises it so clients that offer it get it confirmed.
pub const DOT_ALPN: &[u8] = b"dot";

/// Upper bound on TCP connections one [`FaultServer`] accepts, so a client
/// stuck in a reconnect loop cannot make a test spin forever: afterwards the
/// listener is closed and further connects are refused.
pub const MAX_CONNECTIONS: usize = 4096;

/// Upper bound on query frames read from one connection, for the same reason
/// as [`MAX_CONNECTIONS`]; the connection is closed when it is reached.
pub const MAX_QUERIES_PER_CONNECTION: usize = 100_000;

/// Number of TXT records in a [`Behaviour::HugeAnswer`] reply; with
/// [`HUGE_TXT_LEN`] this puts the message at ~20 KiB, above one TLS record
/// (16 KiB) and well below the 65535-byte DNS-over-TCP maximum.
pub const HUGE_TXT_RECORDS: usize = 96;

/// Length of the single character-string in each huge-answer TXT record.
pub const HUGE_TXT_LEN: usize = 200;

/// Length of a [`Behaviour::Garbage`] payload: shorter than the 12-byte DNS
/// header, so it can never parse as a DNS message by accident.
pub const GARBAGE_LEN: usize = 11;

/// How a [`Behaviour::WrongLength`] server lies in the 2-byte length prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LengthFault {
    /// The prefix announces 100 bytes more than follow (the real answer is
    /// sent), then the connection is closed: the client sees a truncated
    /// frame and EOF, and must not wait forever for the missing bytes nor
    /// parse the partial frame.
    Overstated,
    /// Each answer is replaced by a frame of length 0 (just `00 00`); the
    /// connection stays open. No DNS message is empty, so the client must
    /// treat it as a protocol error rather than as an answer or a keepalive.
    Zero,
}

/// The fault a server injects. Each variant exists because a DoT client has
/// a distinct code path (or a distinct bug) that only that fault exercises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// A correct server: every query answered promptly, in order. The
    /// baseline every fault test is compared with.
    Normal,
    /// Nothing listens on the port: connects fail immediately with
    /// "connection refused" (RST). [`FaultServer::addr`] returns a port that
    /// is reserved (bound, never listening) so no other test can take it.
    /// Over [`serve_stream`] this behaves like [`Behaviour::BlackHole`], as
    /// a pipe cannot refuse; use a failing connector there instead.
    RefuseConnect,
    /// TCP is accepted but the server never reads or writes: the client's
    /// TLS handshake hangs with its ClientHello unread. Tests the handshake
    /// timeout. (For a *connect* that hangs, see [`black_hole_connect_addr`].)
    BlackHole,
    /// TCP is accepted and the ClientHello is read, but nothing is ever
    /// answered. Differs from [`Behaviour::BlackHole`] in that the client's
    /// bytes are consumed, so a client cannot detect the hang by a full send
    /// buffer; it must rely on a timer.
    HangHandshake,
    /// The certificate is valid and issued by the trusted CA, but for
    /// [`WRONG_NAME`] instead of the configured name: authentication must
    /// fail on the name check alone. Pair with [`TlsIdentity::acceptor_for`].
    WrongName,
    /// Answer the first `n` queries of each connection, then close the TLS
    /// connection (close_notify + FIN). Any query sent after the n-th is
    /// never answered, modelling servers that cap queries per connection;
    /// the client must retry it on a new connection. `CloseAfter(0)` closes
    /// right after the handshake.
    CloseAfter(usize),
    /// Silently never answer every `k`-th query of a connection (the k-th,
    /// 2k-th, ...), answering the others: a lost answer on a healthy
    /// connection, which only a per-query timeout can detect. `k == 0`
    /// drops nothing.
    DropEvery(usize),
    /// Answer each query with a well-framed payload that is not DNS: the
    /// query's ID followed by random bytes, [`GARBAGE_LEN`] bytes in all. The
    /// ID is echoed so a client that matches answers by ID before parsing
    /// must still reject it.
    Garbage,
    /// On the first query after the handshake, write bytes to the TCP stream
    /// that are not TLS records at all (invalid content type 0), bypassing
    /// TLS, then stop answering: the client's TLS layer must fail the
    /// connection instead of hanging or panicking.
    GarbageRecords,
    /// Collect queries in batches of `n` and answer each batch in reverse
    /// order, so a pipelining client must match answers by ID (RFC 7766
    /// §7). An incomplete batch is never answered. `n <= 1` is in-order.
    Reversed(usize),
    /// Send a frame whose length prefix is wrong, see [`LengthFault`].
    WrongLength(LengthFault),
    /// Answer with a valid DNS message larger than 16 KiB (the normal answer
    /// plus [`HUGE_TXT_RECORDS`] TXT records for the question name), which
    /// spans several TLS records and TCP segments: the client must reassemble
    /// the frame from partial reads.
    HugeAnswer,
    /// Answer correctly but late: each answer is sent this long after its
    /// query arrived (added to [`ServeOptions::response_delay`]). Tests
    /// per-query timeouts that must fire without killing the connection.
    Slow(Duration),
}

/// Knobs that apply on top of any [`Behaviour`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeOptions {
    /// Delay between a query's arrival and its answer, simulating the
    /// network round-trip time. Applied per query with
    /// [`tokio::time::sleep_until`] from the arrival instant (not
    /// serialised), so pipelined queries overlap as on a real link, and it
    /// costs no wall-clock time under Tokio's paused clock.
    pub response_delay: Duration,
    /// Close a connection after this long without a complete query (and bound
    /// the hanging behaviours, the TLS handshake, and the drain after a
    /// close). Real servers close idle DoT connections too; `None` means
    /// never, which is only sensible with a paused clock or a dropped server.
    pub idle_timeout: Option<Duration>,
    /// Advertise this idle timeout in an edns-tcp-keepalive option (RFC 7828,
    /// units of 100 ms) on every answer to a query that carried EDNS, as
    /// Unbound does; `None` sends no keepalive option.
    pub edns_keepalive: Option<u16>,
    /// Set the AD bit on every answer, as a validating resolver does for
    /// data it validated: the client must pass it on only from a server
    /// that authenticated.
    pub authentic_data: bool,
}

impl Default for ServeOptions {
    /// No added delay; idle connections closed after 300 s, long enough to
    /// outlast any real-time test while still bounding every connection.
    fn default() -> Self {
        ServeOptions {
            response_delay: Duration::ZERO,
            idle_timeout: Some(Duration::from_secs(300)),
            edns_keepalive: None,
            authentic_data: false,
        }
    }
}

/// What the server observed, shared (via `Arc`) between the server tasks and
/// the test, so the test can assert on what the client actually did on the
/// wire (reconnects, resumption, padding) rather than only on its results.
#[derive(Debug, Default)]
pub struct Stats {
    connections_accepted: AtomicUsize,
    handshakes_completed: AtomicUsize,
    handshakes_failed: AtomicUsize,
    queries_received: AtomicUsize,
    answers_sent: AtomicUsize,
    query_sizes: Mutex<Vec<usize>>,
    query_ids: Mutex<Vec<u16>>,
    resumed: Mutex<Vec<bool>>,
    client_close_notify: AtomicUsize,
    client_bare_close: AtomicUsize,
}

impl Stats {
    /// A fresh, zeroed set of counters to hand to [`serve_stream`].
    pub fn new() -> Arc<Stats> {
        Arc::new(Stats::default())
    }

    /// One query read off the wire: its size, its ID (when it has one) and
    /// the count.
    fn record_query(&self, body: &[u8]) {
        self.query_sizes.lock().unwrap().push(body.len());
        if let Some(id) = body.get(..2) {
            self.query_ids
                .lock()
                .unwrap()
                .push(u16::from_be_bytes([id[0], id[1]]));
        }
        self.queries_received.fetch_add(1, Ordering::SeqCst);
    }

    /// Connections (TCP accepts, or [`serve_stream`] calls) seen: counts
    /// reconnects, including ones that never finish a handshake.
    pub fn connections_accepted(&self) -> usize {
        self.connections_accepted.load(Ordering::SeqCst)
    }

    /// TLS handshakes that succeeded, full or resumed.
    pub fn handshakes_completed(&self) -> usize {
        self.handshakes_completed.load(Ordering::SeqCst)
    }

    /// TLS handshakes that failed or timed out on the server side (e.g. the
    /// client aborted on a certificate it rejected).
    pub fn handshakes_failed(&self) -> usize {
        self.handshakes_failed.load(Ordering::SeqCst)
    }

    /// Complete query frames read, over all connections, answered or not.
    pub fn queries_received(&self) -> usize {
        self.queries_received.load(Ordering::SeqCst)
    }

    /// Frames written in reply to queries (answers, garbage, bad frames).
    pub fn answers_sent(&self) -> usize {
        self.answers_sent.load(Ordering::SeqCst)
    }

    /// The DNS message length (the 2-byte prefix value, i.e. without the
    /// prefix) of every query frame received, in arrival order: what EDNS
    /// padding checks (RFC 7830/8467, block size 128) need.
    pub fn query_sizes(&self) -> Vec<usize> {
        self.query_sizes.lock().unwrap().clone()
    }

    /// The DNS ID of every query frame received (of at least two bytes), in
    /// arrival order: the wire IDs the client chose.
    pub fn query_ids(&self) -> Vec<u16> {
        self.query_ids.lock().unwrap().clone()
    }

    /// For every completed TLS handshake, in completion order, whether it was
    /// a resumption (rustls `HandshakeKind::Resumed`), to check the client
    /// reuses sessions instead of paying a full handshake each reconnect.
    pub fn resumed_sessions(&self) -> Vec<bool> {
        self.resumed.lock().unwrap().clone()
    }

    /// Connections the client closed cleanly, with TLS close_notify before
    /// its FIN, between two queries.
    pub fn client_close_notify(&self) -> usize {
        self.client_close_notify.load(Ordering::SeqCst)
    }

    /// Connections the client closed without close_notify (a bare FIN or a
    /// reset) between two queries: a truncation attack looks the same.
    pub fn client_bare_close(&self) -> usize {
        self.client_bare_close.load(Ordering::SeqCst)
    }

    /// Number of resumed handshakes; shorthand over [`Stats::resumed_sessions`].
    pub fn resumed_count(&self) -> usize {
        self.resumed.lock().unwrap().iter().filter(|r| **r).count()
    }
}

/// RFC 7469 SPKI pin: base64 (standard alphabet, padded) of the SHA-256 of a
/// DER SubjectPublicKeyInfo, the format the client's pin configuration uses.
pub fn spki_pin(spki_der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(spki_der))
}

/// A throw-away PKI for one fault server: a self-signed CA, a leaf for the
/// configured name and a leaf for [`WRONG_NAME`], all ECDSA P-256. Cheap to
/// clone (the configs are shared), so one identity can back several servers
/// (sharing its TLS session ticket key, so sessions resume across them).
#[derive(Clone)]
pub struct TlsIdentity {
    dns_name: String,
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    ca_spki_pin: String,
    leaf_spki_pin: String,
    leaf_der: CertificateDer<'static>,
    server_config: Arc<ServerConfig>,
    wrong_name_config: Arc<ServerConfig>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("dns_name", &self.dns_name)
            .field("leaf_spki_pin", &self.leaf_spki_pin)
            .finish_non_exhaustive()
    }
}

fn new_key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("generate P-256 key")
}

fn issue_leaf(name: &str, issuer: &Issuer<'_, KeyPair>) -> (CertificateDer<'static>, KeyPair) {
    let key = new_key();
    let mut params = CertificateParams::new(vec![name.to_string()]).expect("leaf SAN");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, issuer).expect("sign leaf");
    (cert.der().clone(), key)
}

fn server_config_for(leaf: CertificateDer<'static>, key: &KeyPair) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("TLS 1.2 + 1.3 with ring")
        .with_no_client_auth()
        .with_single_cert(vec![leaf], key_der)
        .expect("leaf matches key");
    config.alpn_protocols = vec![DOT_ALPN.to_vec()];
    // Resumption both ways: stateless tickets (TLS 1.3 PSK and TLS 1.2
    // RFC 5077) and a stateful cache (TLS 1.2 session IDs).
    config.session_storage = ServerSessionMemoryCache::new(1024);
    config.ticketer = rustls::crypto::ring::Ticketer::new().expect("ticketer");
    Arc::new(config)
}

impl TlsIdentity {
    /// Generates a fresh CA and leaves for `dns_name` (e.g. `"dot.test"`).
    /// Each call is an independent trust root, so a client configured with
    /// one identity's CA or pin must reject a server using another.
    pub fn generate(dns_name: &str) -> TlsIdentity {
        let ca_key = new_key();
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, "dotcore fault-server CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = params.self_signed(&ca_key).expect("self-sign CA");
        let ca_spki_pin = spki_pin(&ca_key.subject_public_key_info());
        let issuer = Issuer::new(params, ca_key);

        let (leaf_der, leaf_key) = issue_leaf(dns_name, &issuer);
        let (wrong_der, wrong_key) = issue_leaf(WRONG_NAME, &issuer);
        TlsIdentity {
            dns_name: dns_name.to_string(),
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            ca_spki_pin,
            leaf_spki_pin: spki_pin(&leaf_key.subject_public_key_info()),
            leaf_der: leaf_der.clone(),
            server_config: server_config_for(leaf_der, &leaf_key),
            wrong_name_config: server_config_for(wrong_der, &wrong_key),
        }
    }

    /// The name the (correct) leaf is issued for: what the client must use
    /// as its authentication name / SNI.
    pub fn dns_name(&self) -> &str {
        &self.dns_name
    }

    /// The CA certificate in PEM: what a client's CA-file option takes.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate in DER, for in-process rustls root stores.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// Writes the CA PEM to `path`, for clients (or CLIs) that only accept a
    /// CA file.
    pub fn write_ca_pem(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, &self.ca_pem)
    }

    /// RFC 7469 pin of the correct leaf's key (see [`spki_pin`]): the value
    /// a pinning client is configured with to accept this server.
    pub fn spki_pin(&self) -> &str {
        &self.leaf_spki_pin
    }

    /// RFC 7469 pin of the CA key, for testing pins on a non-leaf
    /// certificate of the chain. Note the server sends only the leaf.
    pub fn ca_spki_pin(&self) -> &str {
        &self.ca_spki_pin
    }

    /// The correct leaf in DER, e.g. to compare with what a client reports
    /// as the peer certificate.
    pub fn leaf_der(&self) -> &CertificateDer<'static> {
        &self.leaf_der
    }

    /// The server config presenting the leaf for [`TlsIdentity::dns_name`]:
    /// ALPN "dot", TLS 1.2 and 1.3, resumption by tickets and session cache.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server_config.clone()
    }

    /// Same as [`TlsIdentity::server_config`] but presenting the leaf for
    /// [`WRONG_NAME`] (same CA, same everything else).
    pub fn wrong_name_server_config(&self) -> Arc<ServerConfig> {
        self.wrong_name_config.clone()
    }

    /// The acceptor a server with `behaviour` must use: the wrong-name one
    /// for [`Behaviour::WrongName`], the correct one otherwise. Needed with
    /// [`serve_stream`], whose caller supplies the acceptor.
    pub fn acceptor_for(&self, behaviour: &Behaviour) -> TlsAcceptor {
        match behaviour {
            Behaviour::WrongName => TlsAcceptor::from(self.wrong_name_server_config()),
            _ => TlsAcceptor::from(self.server_config()),
        }
    }

    /// A minimal rustls client config trusting only this identity's CA, with
    /// ALPN "dot" and rustls' default in-memory session store (so reusing it
    /// across connections resumes). For tests that need a reference client,
    /// not for testing the client under test.
    pub fn client_config(&self) -> ClientConfig {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("add CA root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("TLS 1.2 + 1.3 with ring")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![DOT_ALPN.to_vec()];
        config
    }
}

/// A loopback port on which connects are refused: the socket is bound (so
/// the port cannot be handed to anyone else while this value lives) but never
/// listens, so the kernel answers SYNs with RST. Keep it alive as long as
/// the address is in use.
#[derive(Debug)]
pub struct RefusingAddr {
    addr: SocketAddr,
    _socket: socket2::Socket,
}

impl RefusingAddr {
    /// The address to connect to (127.0.0.1, some port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Reserves a loopback address where nothing listens (see [`RefusingAddr`]),
/// for "connection refused" tests that need no server at all.
pub fn refused_addr() -> io::Result<RefusingAddr> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
    let addr = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("bound socket has no inet address"))?;
    Ok(RefusingAddr {
        addr,
        _socket: socket,
    })
}

/// A loopback address where TCP connects hang (SYNs dropped) instead of
/// failing: the closest local stand-in for a black-holed, non-routable
/// server address. Keep it alive as long as the address is in use.
///
/// How: a listener with backlog 0 that is never `accept`ed, whose accept
/// queue is already filled by our own connection(s); Linux then drops new
/// SYNs (`tcp_conn_request`: accept queue full ⇒ drop, regardless of SYN
/// cookies), and the connecting side retransmits until its own timeout.
/// Everything stays on 127.0.0.1. This relies on Linux TCP behaviour; other
/// kernels may instead refuse or complete the connect, which
/// [`black_hole_connect_addr`] detects and reports as an error.
#[derive(Debug)]
pub struct BlackHoleAddr {
    addr: SocketAddr,
    _listener: socket2::Socket,
    _fillers: Vec<std::net::TcpStream>,
}

impl BlackHoleAddr {
    /// The address whose connects hang.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Creates a [`BlackHoleAddr`], verifying that a connect to it indeed hangs.
/// Blocks for a few hundred milliseconds (it waits for one probe connect to
/// time out), so call it outside the paused-clock part of a test.
pub fn black_hole_connect_addr() -> io::Result<BlackHoleAddr> {
    const PROBE_TIMEOUT: Duration = Duration::from_millis(300);
    const MAX_FILLERS: usize = 16;
    let listener = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    listener.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
    listener.listen(0)?;
    let addr = listener
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("bound socket has no inet address"))?;
    let mut fillers = Vec::new();
    for _ in 0..MAX_FILLERS {
        match std::net::TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) {
            Ok(stream) => fillers.push(stream),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Ok(BlackHoleAddr {
                    addr,
                    _listener: listener,
                    _fillers: fillers,
                });
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(
        "connects to a full backlog-0 listener keep succeeding: cannot black-hole on this kernel",
    ))
}

/// A fault-injecting DoT server on `127.0.0.1:<ephemeral>`. All its tasks
/// (the accept loop and every connection) are aborted when it is dropped, so
/// a test cannot leak a server into the next one.
pub struct FaultServer {
    addr: SocketAddr,
    stats: Arc<Stats>,
    task: Option<JoinHandle<()>>,
    _refusing: Option<RefusingAddr>,
}

impl std::fmt::Debug for FaultServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultServer")
            .field("addr", &self.addr)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl FaultServer {
    /// Starts a server with default [`ServeOptions`]. Must be called inside
    /// a Tokio runtime (it spawns the accept loop). Panics if binding a
    /// loopback socket fails, which only happens on a broken test host.
    pub fn start(behaviour: Behaviour, tls: TlsIdentity) -> FaultServer {
        FaultServer::start_with(behaviour, tls, ServeOptions::default())
    }

    /// Starts a server with explicit [`ServeOptions`] (e.g. a simulated RTT
    /// or a short idle timeout). Same requirements as [`FaultServer::start`].
    pub fn start_with(
        behaviour: Behaviour,
        tls: TlsIdentity,
        options: ServeOptions,
    ) -> FaultServer {
        let stats = Stats::new();
        if behaviour == Behaviour::RefuseConnect {
            let refusing = refused_addr().expect("reserve a loopback port");
            return FaultServer {
                addr: refusing.addr(),
                stats,
                task: None,
                _refusing: Some(refusing),
            };
        }
        let std_listener =
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        std_listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = std_listener.local_addr().expect("listener address");
        let listener = TcpListener::from_std(std_listener).expect("register listener with Tokio");
        let acceptor = tls.acceptor_for(&behaviour);
        let task = tokio::spawn(accept_loop(
            listener,
            acceptor,
            behaviour,
            options,
            stats.clone(),
        ));
        FaultServer {
            addr,
            stats,
            task: Some(task),
            _refusing: None,
        }
    }

    /// Where the client should connect (always 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared counters, e.g. to keep observing after moving the server.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// See [`Stats::connections_accepted`].
    pub fn connections_accepted(&self) -> usize {
        self.stats.connections_accepted()
    }

    /// See [`Stats::handshakes_completed`].
    pub fn handshakes_completed(&self) -> usize {
        self.stats.handshakes_completed()
    }

    /// See [`Stats::queries_received`].
    pub fn queries_received(&self) -> usize {
        self.stats.queries_received()
    }

    /// See [`Stats::query_sizes`].
    pub fn query_sizes(&self) -> Vec<usize> {
        self.stats.query_sizes()
    }

    /// See [`Stats::query_ids`].
    pub fn query_ids(&self) -> Vec<u16> {
        self.stats.query_ids()
    }

    /// See [`Stats::resumed_sessions`].
    pub fn resumed_sessions(&self) -> Vec<bool> {
        self.stats.resumed_sessions()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every
        // connection task with it.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    behaviour: Behaviour,
    options: ServeOptions,
    stats: Arc<Stats>,
) {
    let mut connections = JoinSet::new();
    for _ in 0..MAX_CONNECTIONS {
        match listener.accept().await {
            Ok((socket, _peer)) => {
                let _ = socket.set_nodelay(true);
                connections.spawn(serve_stream_with(
                    socket,
                    acceptor.clone(),
                    behaviour.clone(),
                    options.clone(),
                    stats.clone(),
                ));
            }
            // E.g. EMFILE: back off briefly; the iteration still counts.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Serves one connection with [`ServeOptions::default`]; see
/// [`serve_stream_with`].
pub async fn serve_stream<S>(
    stream: S,
    acceptor: TlsAcceptor,
    behaviour: Behaviour,
    stats: Arc<Stats>,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    serve_stream_with(stream, acceptor, behaviour, ServeOptions::default(), stats).await
}

/// Runs the fault server's per-connection logic (TLS handshake, framing,
/// answers, the fault) over any byte stream, e.g. one end of a
/// [`tokio::io::duplex`] pipe under a paused clock. Returns when the
/// connection is over; the `Err` only says why the server side ended (it is
/// informational: most faults end in an error by design). Use
/// [`TlsIdentity::acceptor_for`] to get the acceptor matching `behaviour`.
pub async fn serve_stream_with<S>(
    mut stream: S,
    acceptor: TlsAcceptor,
    behaviour: Behaviour,
    options: ServeOptions,
    stats: Arc<Stats>,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    stats.connections_accepted.fetch_add(1, Ordering::SeqCst);
    let idle = options.idle_timeout;

    match behaviour {
        Behaviour::BlackHole | Behaviour::RefuseConnect => {
            // Hold the stream open without touching it.
            match idle {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending::<()>().await,
            }
            return Ok(());
        }
        Behaviour::HangHandshake => {
            with_idle(idle, read_tls_record(&mut stream)).await??;
            // Keep consuming (so the client's sends succeed) but never reply.
            let mut buf = [0u8; 4096];
            loop {
                if with_idle(idle, stream.read(&mut buf)).await?? == 0 {
                    return Ok(());
                }
            }
        }
        _ => {}
    }

    let tls = match with_idle(idle, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) | Err(e) => {
            stats.handshakes_failed.fetch_add(1, Ordering::SeqCst);
            return Err(e);
        }
    };
    let resumed = tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
    stats.resumed.lock().unwrap().push(resumed);
    stats.handshakes_completed.fetch_add(1, Ordering::SeqCst);

    if behaviour == Behaviour::GarbageRecords {
        return serve_garbage_records(tls, idle, &stats).await;
    }

    let (read_half, write_half) = tokio::io::split(tls);
    let (tx, rx) = mpsc::unbounded_channel();
    let reader = read_queries(read_half, tx, idle, &stats);
    let writer = write_answers(write_half, rx, &behaviour, &options, &stats);
    let (read_result, write_result) = tokio::join!(reader, writer);
    write_result.and(read_result)
}

/// Applies the optional idle timeout to one wait.
async fn with_idle<F: std::future::Future>(
    idle: Option<Duration>,
    fut: F,
) -> io::Result<F::Output> {
    match idle {
        Some(d) => timeout(d, fut)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "fault server idle timeout")),
        None => Ok(fut.await),
    }
}

/// Reads one raw TLS record (the ClientHello, for HangHandshake).
async fn read_tls_record<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<()> {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).await?;
    let len = u16::from_be_bytes([header[3], header[4]]) as usize;
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    Ok(())
}

/// How a client's side of a connection ended between two frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientEnd {
    /// close_notify, then FIN: rustls reads 0.
    CloseNotify,
    /// FIN (or RST) without close_notify: rustls reports `UnexpectedEof`.
    Bare,
}

/// Reads one length-prefixed frame; `Err(end)` in `Ok` when the client
/// closed between frames, saying how.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> io::Result<Result<Vec<u8>, ClientEnd>> {
    let mut prefix = [0u8; 2];
    // The first byte alone: `read_exact` would turn rustls's clean 0 into
    // the same `UnexpectedEof` as a bare FIN.
    match reader.read(&mut prefix[..1]).await {
        Ok(0) => return Ok(Err(ClientEnd::CloseNotify)),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Err(ClientEnd::Bare)),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(Err(ClientEnd::Bare)),
        Err(e) => return Err(e),
    }
    reader.read_exact(&mut prefix[1..]).await?;
    let len = u16::from_be_bytes(prefix) as usize;
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).await?;
    Ok(Ok(body))
}

/// A query as the writer sees it: the raw message and when it arrived.
struct Received {
    at: Instant,
    body: Vec<u8>,
}

async fn read_queries<R: AsyncRead + Unpin>(
    mut reader: R,
    tx: mpsc::UnboundedSender<Received>,
    idle: Option<Duration>,
    stats: &Stats,
) -> io::Result<()> {
    for _ in 0..MAX_QUERIES_PER_CONNECTION {
        let body = match with_idle(idle, read_frame(&mut reader)).await?? {
            Ok(body) => body,
            Err(end) => {
                let counter = match end {
                    ClientEnd::CloseNotify => &stats.client_close_notify,
                    ClientEnd::Bare => &stats.client_bare_close,
                };
                counter.fetch_add(1, Ordering::SeqCst);
                return Ok(());
            }
        };
        stats.record_query(&body);
        // After the writer has closed (CloseAfter, WrongLength) we keep
        // draining so the client's unanswered queries are consumed and our
        // close is a clean FIN, not an RST that could destroy the answers
        // already sent.
        let _ = tx.send(Received {
            at: Instant::now(),
            body,
        });
    }
    Ok(())
}

async fn write_answers<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut rx: mpsc::UnboundedReceiver<Received>,
    behaviour: &Behaviour,
    options: &ServeOptions,
    stats: &Stats,
) -> io::Result<()> {
    let delay = match behaviour {
        Behaviour::Slow(extra) => options.response_delay + *extra,
        _ => options.response_delay,
    };
    if *behaviour == Behaviour::CloseAfter(0) {
        return close(&mut writer, options.idle_timeout).await;
    }
    let mut seen = 0usize;
    let mut answered = 0usize;
    let mut batch: Vec<Received> = Vec::new();
    while let Some(query) = rx.recv().await {
        seen += 1;
        match behaviour {
            Behaviour::DropEvery(k) if *k > 0 && seen % *k == 0 => continue,
            Behaviour::Reversed(n) if *n > 1 => {
                batch.push(query);
                if batch.len() < *n {
                    continue;
                }
                let due = batch
                    .last()
                    .map(|q| q.at + delay)
                    .unwrap_or_else(Instant::now);
                sleep_until(due).await;
                for q in batch.drain(..).rev() {
                    writer
                        .write_all(&frame(&answer_bytes(&q.body, false, options)))
                        .await?;
                    stats.answers_sent.fetch_add(1, Ordering::SeqCst);
                }
                writer.flush().await?;
                continue;
            }
            _ => {}
        }
        sleep_until(query.at + delay).await;
        let out = match behaviour {
            Behaviour::Garbage => frame(&garbage_payload(&query.body)),
            Behaviour::WrongLength(LengthFault::Zero) => vec![0, 0],
            Behaviour::WrongLength(LengthFault::Overstated) => {
                let body = answer_bytes(&query.body, false, options);
                let mut out = ((body.len() + 100) as u16).to_be_bytes().to_vec();
                out.extend_from_slice(&body);
                out
            }
            Behaviour::HugeAnswer => frame(&answer_bytes(&query.body, true, options)),
            _ => frame(&answer_bytes(&query.body, false, options)),
        };
        writer.write_all(&out).await?;
        writer.flush().await?;
        stats.answers_sent.fetch_add(1, Ordering::SeqCst);
        answered += 1;
        match behaviour {
            Behaviour::CloseAfter(n) if answered >= *n => {
                return close(&mut writer, options.idle_timeout).await
            }
            Behaviour::WrongLength(LengthFault::Overstated) => {
                return close(&mut writer, options.idle_timeout).await
            }
            _ => {}
        }
    }
    // The client finished sending (EOF): answer what is owed, then close.
    close(&mut writer, options.idle_timeout).await
}

/// Sends close_notify and FIN; bounded so a client that stops reading
/// cannot hold the server.
async fn close<W: AsyncWrite + Unpin>(writer: &mut W, idle: Option<Duration>) -> io::Result<()> {
    with_idle(idle, writer.shutdown()).await?
}

async fn serve_garbage_records<S: AsyncRead + AsyncWrite + Unpin>(
    mut tls: tokio_rustls::server::TlsStream<S>,
    idle: Option<Duration>,
    stats: &Stats,
) -> io::Result<()> {
    // Flush whatever TLS still owes (e.g. TLS 1.3 session tickets) so the
    // garbage lands after valid records, as "after the handshake" promises.
    tls.flush().await?;
    if let Ok(body) = with_idle(idle, read_frame(&mut tls)).await?? {
        stats.record_query(&body);
        let mut junk = vec![0u8; 32];
        fill_random(&mut junk);
        // Content type 0 is invalid in every TLS version: not a record.
        junk[0] = 0;
        let raw = tls.get_mut().0;
        raw.write_all(&junk).await?;
        raw.flush().await?;
        stats.answers_sent.fetch_add(1, Ordering::SeqCst);
    }
    // Drain the raw stream (the client's alert, its close) until EOF.
    let raw = tls.get_mut().0;
    let mut buf = [0u8; 4096];
    loop {
        if with_idle(idle, raw.read(&mut buf)).await?? == 0 {
            return Ok(());
        }
    }
}

/// EDNS option code of edns-tcp-keepalive (RFC 7828).
const KEEPALIVE_OPTION: u16 = 11;

/// Prefixes a DNS message with its 2-byte length (RFC 1035 §4.2.2).
fn frame(body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(body.len()).expect("DNS message over 65535 bytes");
    let mut out = Vec::with_capacity(body.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// The wire answer to a raw query, with an edns-tcp-keepalive option when
/// `keepalive` is set and the query had EDNS; FORMERR (ID echoed) if it does
/// not parse.
fn answer_bytes(query: &[u8], huge: bool, options: &ServeOptions) -> Vec<u8> {
    match Message::from_vec(query) {
        Ok(q) => {
            let mut answer = build_answer(&q, huge);
            answer.metadata.authentic_data = options.authentic_data;
            if let (Some(units), Some(edns)) = (options.edns_keepalive, answer.edns.as_mut()) {
                edns.options_mut().insert(EdnsOption::Unknown(
                    KEEPALIVE_OPTION,
                    units.to_be_bytes().to_vec(),
                ));
            }
            answer.to_vec().expect("encode answer")
        }
        Err(_) => {
            let id = if query.len() >= 2 {
                u16::from_be_bytes([query[0], query[1]])
            } else {
                0
            };
            Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
                .to_vec()
                .expect("encode FORMERR")
        }
    }
}

/// Builds the synthetic answer to `query`: NOERROR, ID and question echoed,
/// one A/AAAA record per A/AAAA question (other types get NODATA), an OPT
/// record iff the query had one; with `huge`, plus the TXT padding records.
/// Public so tests can compute the exact answer they expect.
pub fn build_answer(query: &Message, huge: bool) -> Message {
    let mut response = Message::response(query.metadata.id, query.metadata.op_code);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.metadata.response_code = ResponseCode::NoError;
    response.queries = query.queries.clone();
    for question in &query.queries {
        let rdata = match question.query_type() {
            RecordType::A => Some(RData::A(A(A_ANSWER))),
            RecordType::AAAA => Some(RData::AAAA(AAAA(AAAA_ANSWER))),
            _ => None,
        };
        if let Some(rdata) = rdata {
            response.answers.push(Record::from_rdata(
                question.name().clone(),
                ANSWER_TTL,
                rdata,
            ));
        }
        if huge {
            for i in 0..HUGE_TXT_RECORDS {
                let text = format!("{i:04}{}", "x".repeat(HUGE_TXT_LEN - 4));
                response.answers.push(Record::from_rdata(
                    question.name().clone(),
                    ANSWER_TTL,
                    RData::TXT(TXT::new(vec![text])),
                ));
            }
        }
    }
    if let Some(query_edns) = &query.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(query_edns.max_payload().max(512));
        response.edns = Some(edns);
    }
    response
}

/// The query ID followed by random bytes, [`GARBAGE_LEN`] in all.
fn garbage_payload(query: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; GARBAGE_LEN];
    fill_random(&mut out);
    if query.len() >= 2 {
        out[..2].copy_from_slice(&query[..2]);
    }
    out
}

/// Non-cryptographic randomness (xorshift64*), enough to make garbage
/// unpredictable to the client without another dependency.
fn fill_random(buf: &mut [u8]) {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = (STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ nanos) | 1;
    for byte in buf.iter_mut() {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *byte = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8;
    }
}
