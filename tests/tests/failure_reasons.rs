//! Why a server failed, end to end through the engine: each real failure
//! (Unbound with a wrong pin or a certificate for another name, a refused
//! loopback port, a port that takes TCP and never speaks TLS, a connect
//! that hangs, a server that drops an answer) must reach the server's
//! status in stats with its stable kind, a text for people and the address
//! it happened on; `ServerFailed` must carry the same, once per change; and
//! the failure must clear when the address works again.
//!
//! Short timeouts (connect and handshake 1 s, query 2 s) keep the timeouts
//! cheap; every resolve is bounded a little above the query timeout. All
//! traffic stays on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use dotcore::failure::ServerFailureKind as Kind;
use dotcore::stats::ServerStatus;
use dotcore::{CacheConfig, Config, CustomServer, Event, Host, Mode, Resolver, Timeouts, Upstream};
use dotcore_tests::certs::TestPki;
use dotcore_tests::fault_server::{black_hole_connect_addr, Behaviour, FaultServer, TlsIdentity};
use dotcore_tests::unbound::{self as zone, UnboundOptions, UnboundServer};
use dotcore_tests::{require_tool, DOT_NAME};

const QUERY: Duration = Duration::from_secs(2);
/// Upper bound on one resolve: the query timeout plus scheduling slack.
const BOUND: Duration = Duration::from_secs(4);

/// A host that records the engine's events.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Host for Recorder {
    fn on_event(&self, event: Event) {
        self.events.lock().unwrap().push(event);
    }
}

impl Recorder {
    /// The `ServerFailed` events so far, as (address, kind, text).
    fn failed(&self) -> Vec<(SocketAddr, Kind, String)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::ServerFailed {
                    address, failure, ..
                } => Some((*address, failure.kind, failure.text.clone())),
                _ => None,
            })
            .collect()
    }

    fn validated(&self) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, Event::ServerValidated { .. }))
            .count()
    }
}

/// Strict mode, one server named `name` at `addrs` with `pins`, trusting
/// `ca_pem`, short timeouts, no cache (every query goes upstream).
fn config(
    addrs: &[SocketAddr],
    name: Option<&str>,
    pins: Vec<String>,
    ca_pem: Option<&str>,
) -> Config {
    Config {
        upstream: Upstream::Custom(vec![CustomServer {
            name: name.map(Into::into),
            addresses: addrs.iter().map(|a| a.to_string()).collect(),
            port: 0,
            pins,
        }]),
        mode: Mode::Strict,
        extra_ca_pem: ca_pem.map(Into::into),
        cache: CacheConfig {
            max_entries: 0,
            ..CacheConfig::default()
        },
        timeouts: Timeouts {
            connect: Duration::from_secs(1),
            handshake: Duration::from_secs(1),
            query: QUERY,
        },
        ..Config::default()
    }
}

fn resolver(config: &Config) -> (Resolver, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let resolver = Resolver::new(config, recorder.clone()).expect("valid config");
    (resolver, recorder)
}

/// Resolves `a.test A` within [`BOUND`] and returns the rcode mnemonic.
async fn ask(r: &Resolver) -> String {
    let q = dotcore::message::build_query(zone::A_TEST, "A").unwrap();
    let answer = tokio::time::timeout(BOUND, r.resolve(&q))
        .await
        .expect("resolve is bounded by the query timeout");
    dotcore::message::decode_answer(&answer).unwrap().rcode
}

/// The status of `addr` in the resolver's stats.
fn status(r: &Resolver, addr: SocketAddr) -> ServerStatus {
    let stats = r.stats();
    stats
        .servers
        .iter()
        .find(|s| s.address == addr)
        .cloned()
        .unwrap_or_else(|| panic!("{addr} not in {:?}", stats.servers))
}

/// The failure recorded for `addr`: (kind, text).
fn failure(r: &Resolver, addr: SocketAddr) -> (Kind, String) {
    let s = status(r, addr);
    let f = s
        .last_failure
        .unwrap_or_else(|| panic!("no failure recorded for {addr}: {:?}", r.stats().servers));
    (f.kind, f.text)
}

fn unbound(options: UnboundOptions) -> Option<UnboundServer> {
    if !require_tool("unbound") {
        return None;
    }
    Some(UnboundServer::start(options).expect("unbound starts"))
}

/// A loopback socket bound and never listening: connects are refused until
/// [`socket2::Socket::listen`] is called, after which the kernel completes
/// them and nobody ever reads (a server that takes TCP and never speaks).
fn bound_socket() -> (socket2::Socket, SocketAddr) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    (socket, addr)
}

#[tokio::test]
async fn a_refused_port_is_connection_refused_reported_once_per_change() {
    let (socket, addr) = bound_socket();
    let (r, events) = resolver(&config(&[addr], Some(DOT_NAME), vec![], None));
    for _ in 0..5 {
        assert_eq!(ask(&r).await, "SERVFAIL");
    }
    let (kind, text) = failure(&r, addr);
    assert_eq!(kind, Kind::ConnectionRefused, "{text}");
    assert!(text.contains("refused"), "{text}");
    let s = status(&r, addr);
    assert_eq!(s.server, DOT_NAME);
    assert!(!s.connected);
    assert_eq!(s.authenticated, None);
    assert_eq!(r.stats().fail_connect, 5);
    // Five queries failing the same way: one event.
    let failed = events.failed();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, addr);
    assert_eq!(failed[0].1, Kind::ConnectionRefused);
    assert_eq!(failed[0].2, text);

    // The same stats as JSON, kind and reason included.
    let json: serde_json::Value = serde_json::from_str(&r.stats().to_json()).unwrap();
    let entry = &json["servers"][0];
    assert_eq!(entry["server"], DOT_NAME);
    assert_eq!(entry["address"], addr.to_string());
    assert_eq!(entry["failure"]["kind"], "connection_refused");
    assert_eq!(entry["failure"]["reason"], text.as_str());

    // Now the port takes connections and never speaks TLS: a new failure,
    // so one more event.
    socket.listen(16).unwrap();
    assert_eq!(ask(&r).await, "SERVFAIL");
    let (kind, text) = failure(&r, addr);
    assert_eq!(kind, Kind::AnswerTimedOut, "{text}");
    assert!(text.contains("TLS handshake"), "{text}");
    let failed = events.failed();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed[1].1, Kind::AnswerTimedOut);
    assert_eq!(r.stats().fail_tls, 1, "a handshake timeout counts as TLS");
}

#[tokio::test]
async fn a_server_that_takes_tcp_and_never_answers_tls_is_answer_timed_out() {
    let server = FaultServer::start(Behaviour::BlackHole, TlsIdentity::generate(DOT_NAME));
    let addr = server.addr();
    let (r, events) = resolver(&config(&[addr], Some(DOT_NAME), vec![], None));
    let started = tokio::time::Instant::now();
    assert_eq!(ask(&r).await, "SERVFAIL");
    assert!(
        started.elapsed() < QUERY,
        "the handshake timeout (1 s) ended it"
    );
    let (kind, text) = failure(&r, addr);
    assert_eq!(kind, Kind::AnswerTimedOut, "{text}");
    assert!(text.contains("no TLS handshake within 1 s"), "{text}");
    assert_eq!(server.connections_accepted(), 1);
    assert_eq!(events.failed().len(), 1);
}

#[tokio::test]
async fn a_handshake_cut_short_by_the_query_deadline_still_says_why() {
    // The query's own timeout is shorter than the handshake's: the attempt
    // ends at the query's deadline and the reason says so, instead of the
    // query timing out with nothing recorded.
    let server = FaultServer::start(Behaviour::HangHandshake, TlsIdentity::generate(DOT_NAME));
    let addr = server.addr();
    let mut config = config(&[addr], Some(DOT_NAME), vec![], None);
    config.timeouts.handshake = Duration::from_secs(10);
    config.timeouts.query = Duration::from_millis(800);
    let (r, _) = resolver(&config);
    assert_eq!(ask(&r).await, "SERVFAIL");
    let (kind, text) = failure(&r, addr);
    assert_eq!(kind, Kind::AnswerTimedOut, "{text}");
    assert!(text.contains("TLS handshake within"), "{text}");
}

#[tokio::test]
async fn a_connect_that_hangs_is_connect_timed_out() {
    let hole = black_hole_connect_addr().expect("a black-holed loopback address");
    let addr = hole.addr();
    let (r, events) = resolver(&config(&[addr], Some(DOT_NAME), vec![], None));
    assert_eq!(ask(&r).await, "SERVFAIL");
    let (kind, text) = failure(&r, addr);
    assert_eq!(kind, Kind::ConnectTimedOut, "{text}");
    assert!(text.contains("within 1 s"), "{text}");
    assert_eq!(r.stats().fail_connect, 1);
    assert_eq!(events.failed()[0].0, addr);
}

#[tokio::test]
async fn a_wrong_pin_against_unbound_is_pin_mismatch() {
    let Some(server) = unbound(UnboundOptions::default()) else {
        return;
    };
    let addr = server.dot_addr();
    let wrong = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
    let (r, events) = resolver(&config(&[addr], None, vec![wrong], None));
    assert_eq!(ask(&r).await, "SERVFAIL");
    assert_eq!(ask(&r).await, "SERVFAIL");
    let (kind, text) = failure(&r, addr);
    assert!(kind.is_authentication(), "{kind}: {text}");
    assert_eq!(kind, Kind::PinMismatch, "{text}");
    assert_eq!(r.stats().fail_tls, 2);
    let failed = events.failed();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!((failed[0].0, failed[0].1), (addr, Kind::PinMismatch));
    assert_eq!(events.validated(), 0);
}

#[tokio::test]
async fn a_certificate_for_another_name_is_name_mismatch() {
    // Unbound presents a certificate from the trusted CA, for other.example.
    let mut pki = TestPki::generate();
    pki.leaf = pki.ca.issue_leaf(&["other.example"]);
    let ca_pem = pki.ca.cert_pem().to_string();
    let Some(server) = unbound(UnboundOptions {
        pki: Some(pki),
        ..UnboundOptions::default()
    }) else {
        return;
    };
    let addr = server.dot_addr();
    let (r, events) = resolver(&config(&[addr], Some(DOT_NAME), vec![], Some(&ca_pem)));
    assert_eq!(ask(&r).await, "SERVFAIL");
    let (kind, text) = failure(&r, addr);
    assert_eq!(kind, Kind::CertificateNameMismatch, "{text}");
    assert!(text.contains(DOT_NAME), "names the configured name: {text}");
    assert!(
        text.contains("other.example"),
        "names the certificate's: {text}"
    );
    assert_eq!(events.failed()[0].1, Kind::CertificateNameMismatch);
}

#[tokio::test]
async fn a_failure_clears_when_the_address_works_and_on_a_network_change() {
    let Some(server) = unbound(UnboundOptions::default()) else {
        return;
    };
    let good = server.dot_addr();
    let (_refusing, refused) = bound_socket();
    // The refused address first: tried first, fails, then the good one.
    let (r, events) = resolver(&config(
        &[refused, good],
        Some(DOT_NAME),
        vec![],
        Some(server.ca_pem()),
    ));
    assert_eq!(ask(&r).await, "NOERROR");
    let (kind, _) = failure(&r, refused);
    assert_eq!(kind, Kind::ConnectionRefused, "still failing");
    let ok = status(&r, good);
    assert_eq!(ok.last_failure, None);
    assert!(ok.connected);
    assert_eq!(ok.authenticated, Some(true));
    assert!(events.failed().is_empty(), "the server as a whole worked");
    assert_eq!(events.validated(), 1);

    // A new network: what failed on the old one no longer says anything.
    r.network_changed(Vec::new()).await;
    assert_eq!(status(&r, refused).last_failure, None);
    let after = status(&r, good);
    assert!(!after.connected, "the connection was dropped");
    assert_eq!(after.last_failure, None);
}

#[tokio::test]
async fn a_dropped_answer_is_answer_timed_out_until_the_next_answer() {
    // Every second query on a connection goes unanswered.
    let tls = TlsIdentity::generate(DOT_NAME);
    let server = FaultServer::start(Behaviour::DropEvery(2), tls.clone());
    let addr = server.addr();
    let (r, events) = resolver(&config(&[addr], Some(DOT_NAME), vec![], Some(tls.ca_pem())));
    assert_eq!(ask(&r).await, "NOERROR");
    assert_eq!(ask(&r).await, "SERVFAIL");
    let (kind, text) = failure(&r, addr);
    assert_eq!(kind, Kind::AnswerTimedOut, "{text}");
    assert!(text.contains("no answer within 2 s"), "{text}");
    assert!(
        status(&r, addr).connected,
        "a lost answer keeps the connection"
    );
    assert_eq!(r.stats().fail_timeout, 1);
    // Not a failure to connect: no event (the app would show the server
    // down while it answers).
    assert!(events.failed().is_empty(), "{:?}", events.failed());
    assert_eq!(ask(&r).await, "NOERROR");
    assert_eq!(status(&r, addr).last_failure, None, "an answer clears it");
}

#[tokio::test]
async fn the_event_reports_the_address_that_got_furthest() {
    let Some(server) = unbound(UnboundOptions::default()) else {
        return;
    };
    let pinned = server.dot_addr();
    let (_refusing, refused) = bound_socket();
    let wrong = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let (r, events) = resolver(&config(&[refused, pinned], None, vec![wrong], None));
    assert_eq!(ask(&r).await, "SERVFAIL");
    // Both addresses keep their own reason...
    assert_eq!(failure(&r, refused).0, Kind::ConnectionRefused);
    assert!(failure(&r, pinned).0.is_authentication());
    // ...and the event names the one a person can act on.
    let failed = events.failed();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, pinned);
    assert!(failed[0].1.is_authentication(), "{failed:?}");
}
