//! The engine against four DoT server implementations, each as shipped:
//! Unbound, Knot Resolver, BIND 9.18 and dnsdist (in front of a clear-text
//! Unbound). One test per server and behaviour; each prints one line
//!
//! ```text
//! INTEROP server=<name> behaviour=<name> result=<pass|fail|n/a|info> detail=<measured>
//! ```
//!
//! before it asserts, so `scripts/test-interop.sh` can build the matrix in
//! docs/interop.md from the run itself. `n/a` means the server does not do
//! what the behaviour needs (e.g. it sends no edns-tcp-keepalive), measured
//! by the independent probe client in `dotcore_tests::dot_probe`.
//!
//! Every test skips when a server program is missing, and fails instead
//! with DOTCORE_TESTS_REQUIRE_TOOLS=1.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use dotcore::host::{BoxStream, DialFuture};
use dotcore::message::{build_query, decode_answer, Answer};
use dotcore::Resolver;
use dotcore::{CacheConfig, Config, Dialer, Event, Host, IdlePolicy, Mode};
use dotcore_tests::dot_probe::{self, Probe, ProbeConfig};
use dotcore_tests::interop_servers::{DotServer, ServerKind, A_NAME};
use dotcore_tests::unbound as zone;
use dotcore_tests::CleartextTrap;
use dotcore_tests::{custom_upstream, kdig, require_tool};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

// ---------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------

/// Prints the machine-readable result line the interop script collects.
fn report(kind: ServerKind, behaviour: &str, result: &str, detail: &str) {
    let detail = detail.replace('\n', " ");
    println!("INTEROP server={kind} behaviour={behaviour} result={result} detail={detail}");
}

/// Reports pass or fail and then asserts, so the matrix shows a failure
/// with the same measurement the assertion message carries.
fn verdict(kind: ServerKind, behaviour: &str, ok: bool, detail: &str) {
    report(kind, behaviour, if ok { "pass" } else { "fail" }, detail);
    assert!(ok, "{kind} {behaviour}: {detail}");
}

// ---------------------------------------------------------------------------
// Fixtures and engine set-up
// ---------------------------------------------------------------------------

async fn start(kind: ServerKind) -> Option<DotServer> {
    for tool in kind.required_tools() {
        if !require_tool(tool) {
            return None;
        }
    }
    let server = tokio::task::spawn_blocking(move || DotServer::start(kind))
        .await
        .expect("fixture thread")
        .unwrap_or_else(|e| panic!("{e}"));
    Some(server)
}

/// Strict mode trusting the fixture's CA for `dot.test`, cache off so every
/// query reaches the server.
fn strict_with_ca(server: &DotServer) -> Config {
    let mut config = Config {
        upstream: custom_upstream(server.dot_addr(), Some("dot.test"), vec![]),
        mode: Mode::Strict,
        extra_ca_pem: Some(server.ca_pem().to_string()),
        cache: CacheConfig {
            max_entries: 0,
            ..CacheConfig::default()
        },
        ..Config::default()
    };
    config.timeouts.connect = Duration::from_secs(2);
    config.timeouts.handshake = Duration::from_secs(2);
    config.timeouts.query = Duration::from_secs(4);
    config
}

/// A strict resolver for `server` whose connections are recorded on the
/// wire (TLS record sizes, who closed first).
fn recorded_resolver(server: &DotServer) -> (Resolver, Arc<RecordingDialer>) {
    let dialer = Arc::new(RecordingDialer::default());
    let resolver = Resolver::with_dialer(
        &strict_with_ca(server),
        Arc::new(dotcore::NoHost),
        dialer.clone(),
    )
    .unwrap();
    (resolver, dialer)
}

async fn ask(resolver: &Resolver, name: &str) -> Answer {
    let query = build_query(name, "A").unwrap();
    let bytes = tokio::time::timeout(Duration::from_secs(10), resolver.resolve(&query))
        .await
        .expect("the engine answers within its timeout");
    decode_answer(&bytes).unwrap()
}

/// Whether `answer` is the fixture's answer for `name` (a name under
/// `bench.` or [`A_NAME`]).
fn is_right(answer: &Answer, name: &str) -> bool {
    let want = if name == A_NAME {
        zone::A_TEST_V4
    } else {
        zone::BENCH_V4
    };
    answer.rcode == "NOERROR"
        && answer.records.len() == 1
        && answer.records[0].name.eq_ignore_ascii_case(name)
        && answer.records[0].data == want
}

/// Records events, to see whether the server authenticated.
#[derive(Default)]
struct RecordingHost {
    events: Mutex<Vec<Event>>,
}

impl Host for RecordingHost {
    fn protect_socket(&self, _fd: i32) -> bool {
        true
    }
    fn on_event(&self, event: Event) {
        self.events.lock().unwrap().push(event);
    }
}

// ---------------------------------------------------------------------------
// A dialer that records the engine's TLS bytes and who closes first
// ---------------------------------------------------------------------------

/// What crossed one connection, as seen from the engine's side of the
/// socket.
#[derive(Default)]
struct Wire {
    sent: Mutex<Vec<u8>>,
    received: Mutex<Vec<u8>>,
    opened: Mutex<Option<Instant>>,
    /// When each read returned data.
    receptions: Mutex<Vec<Instant>>,
    /// Deliver nothing more to the engine (data and EOF are still
    /// recorded), so only the engine's own timer can end the connection.
    deaf: AtomicBool,
    server_eof: Mutex<Option<Instant>>,
    client_closed: Mutex<Option<Instant>>,
}

/// A TLS record: content type and payload length.
#[derive(Clone, Copy, Debug)]
struct Record {
    content_type: u8,
    len: usize,
}

fn records(bytes: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 5 <= bytes.len() {
        let len = u16::from_be_bytes([bytes[at + 3], bytes[at + 4]]) as usize;
        if at + 5 + len > bytes.len() {
            break;
        }
        out.push(Record {
            content_type: bytes[at],
            len,
        });
        at += 5 + len;
    }
    out
}

/// TLS record content type of application data (RFC 8446 §5.1).
const APPLICATION_DATA: u8 = 23;

/// Whether the server's first flight chose TLS 1.3: a ServerHello whose
/// supported_versions extension (43) says 0x0304 (RFC 8446 §4.2.1).
fn server_chose_tls13(received: &[u8]) -> bool {
    // Record header (5), handshake header (4), version (2), random (32).
    let Some(hello) = received.get(5..) else {
        return false;
    };
    if received.first() != Some(&22) || hello.first() != Some(&2) {
        return false;
    }
    let mut at = 4 + 2 + 32;
    let Some(&sid_len) = hello.get(at) else {
        return false;
    };
    at += 1 + sid_len as usize + 2 + 1; // session id, cipher suite, compression
    let Some(ext_len) = hello.get(at..at + 2) else {
        return false;
    };
    let end = at + 2 + u16::from_be_bytes([ext_len[0], ext_len[1]]) as usize;
    at += 2;
    while at + 4 <= end.min(hello.len()) {
        let ty = u16::from_be_bytes([hello[at], hello[at + 1]]);
        let len = u16::from_be_bytes([hello[at + 2], hello[at + 3]]) as usize;
        if ty == 43 && len == 2 {
            return hello.get(at + 4..at + 6) == Some(&[3, 4][..]);
        }
        at += 4 + len;
    }
    false
}

struct RecordingStream {
    inner: TcpStream,
    wire: Arc<Wire>,
}

impl AsyncRead for RecordingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let new = &buf.filled()[before..];
            let now = Instant::now();
            if new.is_empty() {
                self.wire.server_eof.lock().unwrap().get_or_insert(now);
            } else {
                self.wire.received.lock().unwrap().extend_from_slice(new);
                self.wire.receptions.lock().unwrap().push(now);
            }
            if self.wire.deaf.load(Ordering::SeqCst) {
                // Never woken for this: the engine's idle timer ends it.
                buf.set_filled(before);
                return Poll::Pending;
            }
        }
        result
    }
}

impl AsyncWrite for RecordingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            self.wire.sent.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.wire
            .client_closed
            .lock()
            .unwrap()
            .get_or_insert(Instant::now());
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Drop for RecordingStream {
    fn drop(&mut self) {
        self.wire
            .client_closed
            .lock()
            .unwrap()
            .get_or_insert(Instant::now());
    }
}

/// Dials real loopback TCP and keeps one [`Wire`] per connection.
#[derive(Default)]
struct RecordingDialer {
    wires: Mutex<Vec<Arc<Wire>>>,
}

impl RecordingDialer {
    fn wire(&self, i: usize) -> Arc<Wire> {
        self.wires.lock().unwrap()[i].clone()
    }
    fn connections(&self) -> usize {
        self.wires.lock().unwrap().len()
    }
}

impl Dialer for RecordingDialer {
    fn dial(&self, addr: SocketAddr) -> DialFuture<'_> {
        Box::pin(async move {
            assert!(addr.ip().is_loopback(), "loopback only");
            let inner = TcpStream::connect(addr).await?;
            inner.set_nodelay(true)?;
            let wire = Arc::new(Wire::default());
            *wire.opened.lock().unwrap() = Some(Instant::now());
            self.wires.lock().unwrap().push(wire.clone());
            Ok(Box::new(RecordingStream { inner, wire }) as BoxStream)
        })
    }
}

/// Waits (bounded by `limit`) until the connection is closed by either
/// side.
async fn wait_closed(wire: &Wire, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if wire.client_closed.lock().unwrap().is_some() || wire.server_eof.lock().unwrap().is_some()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

// ---------------------------------------------------------------------------
// Behaviours
// ---------------------------------------------------------------------------

/// The fixture passed kdig (checked by `DotServer::start`), and the engine
/// in strict mode with the CA file authenticates it and gets its answers
/// over one connection.
async fn strict_ca(kind: ServerKind) {
    let Some(server) = start(kind).await else {
        return;
    };
    report(
        kind,
        "kdig_check",
        "pass",
        &format!("{} answered kdig +tls-ca", server.version()),
    );
    let host = Arc::new(RecordingHost::default());
    let resolver = Resolver::new(&strict_with_ca(&server), host.clone()).unwrap();
    let mut wrong = Vec::new();
    for name in [A_NAME.to_string(), "ca1.bench.".into(), "ca2.bench.".into()] {
        let a = ask(&resolver, &name).await;
        if !is_right(&a, &name) {
            wrong.push(format!("{name}: {} {:?}", a.rcode, a.records));
        }
    }
    let s = resolver.stats();
    let authenticated = host.events.lock().unwrap().iter().any(|e| {
        matches!(
            e,
            Event::ServerValidated {
                authenticated: true,
                ..
            }
        )
    });
    let ok = wrong.is_empty()
        && authenticated
        && s.connections_opened == 1
        && s.handshakes_full == 1
        && s.failures() == 0;
    verdict(
        kind,
        "strict_ca",
        ok,
        &format!(
            "3 answers, wrong={wrong:?} authenticated={authenticated} connections={} full_handshakes={} failures={}",
            s.connections_opened, s.handshakes_full, s.failures()
        ),
    );
}

/// Strict mode with nothing but the leaf's SPKI pin: no name, no CA.
async fn strict_pin(kind: ServerKind) {
    let Some(server) = start(kind).await else {
        return;
    };
    let config = Config {
        upstream: custom_upstream(server.dot_addr(), None, vec![server.leaf_pin()]),
        extra_ca_pem: None,
        ..strict_with_ca(&server)
    };
    let resolver = Resolver::new(&config, Arc::new(dotcore::NoHost)).unwrap();
    let a = ask(&resolver, "pin.bench.").await;
    let s = resolver.stats();
    verdict(
        kind,
        "strict_pin",
        is_right(&a, "pin.bench.") && s.failures() == 0,
        &format!(
            "rcode={} records={} failures={}",
            a.rcode,
            a.records.len(),
            s.failures()
        ),
    );
}

/// A name the certificate does not carry: SERVFAIL, and not one packet to
/// the clear-text resolvers (a trap, and the server's own clear-text port
/// where the fixture has one).
async fn wrong_name(kind: ServerKind) {
    let Some(server) = start(kind).await else {
        return;
    };
    let trap = CleartextTrap::new();
    let mut network = vec![trap.addr];
    network.extend(server.plain_addr());
    let config = Config {
        upstream: custom_upstream(server.dot_addr(), Some("wrong.test"), vec![]),
        network_resolvers: network,
        ..strict_with_ca(&server)
    };
    let resolver = Resolver::new(&config, Arc::new(dotcore::NoHost)).unwrap();
    let mut rcodes = Vec::new();
    for i in 0..3 {
        rcodes.push(ask(&resolver, &format!("wn{i}.bench.")).await.rcode);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = resolver.stats();
    let ok = rcodes.iter().all(|r| r == "SERVFAIL")
        && s.fail_tls == 3
        && s.cleartext_queries == 0
        && trap.count() == 0;
    verdict(
        kind,
        "wrong_name_fails_closed",
        ok,
        &format!(
            "rcodes={rcodes:?} fail_tls={} cleartext_queries={} trap_packets={}",
            s.fail_tls,
            s.cleartext_queries,
            trap.count()
        ),
    );
}

/// 1,000 concurrent queries: one connection, one handshake, each answer
/// matched to its own question.
async fn pipelined_1000(kind: ServerKind) {
    let Some(server) = start(kind).await else {
        return;
    };
    let resolver = Resolver::new(&strict_with_ca(&server), Arc::new(dotcore::NoHost)).unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let r = resolver.clone();
            tokio::spawn(async move {
                let name = format!("p{i}.bench.");
                let a = ask(&r, &name).await;
                is_right(&a, &name)
            })
        })
        .collect();
    let mut right = 0;
    for t in tasks {
        right += usize::from(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    let s = resolver.stats();
    let ok = right == 1000
        && s.connections_opened == 1
        && s.handshakes_full == 1
        && s.failures() == 0
        && s.retries == 0;
    verdict(
        kind,
        "pipelined_1000",
        ok,
        &format!(
            "right={right}/1000 connections={} handshakes={} retries={} failures={} in {}",
            s.connections_opened,
            s.handshakes_full,
            s.retries,
            s.failures(),
            ms(elapsed)
        ),
    );
}

/// Whether the server answers pipelined queries out of order (measured by
/// the probe: 200 queries, one TLS record each), and the engine matching
/// every answer to its question under the same load.
async fn out_of_order(kind: ServerKind) {
    let Some(server) = start(kind).await else {
        return;
    };
    const N: u16 = 200;
    let mut probe = Probe::connect_fresh(server.dot_addr(), server.ca_pem())
        .await
        .expect("probe connects");
    let frames: Vec<_> = (0..N)
        .map(|i| dot_probe::query_frame(i, &format!("o{i}.bench."), false))
        .collect();
    probe.write_separately(&frames).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..N {
        match probe.read_message(Duration::from_secs(3)).await {
            Ok(Some(m)) => ids.push(dot_probe::message_id(&m)),
            _ => break,
        }
    }
    probe.finish().await;
    let reordered = dot_probe::out_of_order(&ids);

    let resolver = Resolver::new(&strict_with_ca(&server), Arc::new(dotcore::NoHost)).unwrap();
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let r = resolver.clone();
            tokio::spawn(async move {
                let name = format!("e{i}.bench.");
                is_right(&ask(&r, &name).await, &name)
            })
        })
        .collect();
    let mut right = 0;
    for t in tasks {
        right += usize::from(t.await.unwrap());
    }
    let detail = format!(
        "probe: {} of {N} answers, {reordered} out of order; engine: {right}/{N} matched",
        ids.len()
    );
    if reordered == 0 && right == N as usize {
        // The server answered in order: matching out of order was not
        // exercised against it.
        report(kind, "out_of_order", "n/a", &detail);
        return;
    }
    verdict(kind, "out_of_order", right == N as usize, &detail);
}

/// Queries leave padded to 128-byte blocks (RFC 8467 §4.1), whatever the
/// name's length, measured as TLS record sizes on the socket; the server's
/// responses are measured too (RFC 8467 recommends 468-byte blocks).
async fn padding(kind: ServerKind) {
    let Some(server) = start(kind).await else {
        return;
    };
    let (resolver, dialer) = recorded_resolver(&server);
    ask(&resolver, "warm.bench.").await;
    // Let post-handshake records (tickets) arrive before the mark.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let wire = dialer.wire(0);
    let sent_mark = records(&wire.sent.lock().unwrap()).len();
    let recv_mark = records(&wire.received.lock().unwrap()).len();
    let names = [
        "x.bench.".to_string(),
        format!("{}.bench.", "y".repeat(40)),
        format!("{}.{}.bench.", "z".repeat(60), "w".repeat(30)),
    ];
    for name in &names {
        ask(&resolver, name).await;
    }
    let tls13 = server_chose_tls13(&wire.received.lock().unwrap());
    // TLS 1.3 AEAD record: inner content type (1) + tag (16); then the
    // 2-byte DoT length prefix.
    let dns_len = |r: &Record| r.len.saturating_sub(17 + 2);
    let sent: Vec<usize> = records(&wire.sent.lock().unwrap())[sent_mark..]
        .iter()
        .filter(|r| r.content_type == APPLICATION_DATA)
        .map(dns_len)
        .collect();
    let received: Vec<usize> = records(&wire.received.lock().unwrap())[recv_mark..]
        .iter()
        .filter(|r| r.content_type == APPLICATION_DATA)
        .map(dns_len)
        .collect();
    let server_pads = !received.is_empty() && received.iter().all(|l| l % 468 == 0);
    let ok = tls13 && sent.len() == names.len() && sent.iter().all(|l| *l > 0 && l % 128 == 0);
    verdict(
        kind,
        "padding",
        ok,
        &format!(
            "tls13={tls13} query sizes {sent:?} (names of 1/40/91 bytes); response sizes {received:?}, server pads to 468: {}",
            if server_pads { "yes" } else { "no" }
        ),
    );
}

/// Whether the server sends edns-tcp-keepalive (probe), and if it does,
/// that the engine closes the idle connection by its own timer when the
/// server's timeout runs out, well before the engine's own 120 s: the
/// server's close is hidden from the engine here.
async fn keepalive(kind: ServerKind) {
    let Some(server) = start(kind).await else {
        return;
    };
    let mut probe = Probe::connect_fresh(server.dot_addr(), server.ca_pem())
        .await
        .expect("probe connects");
    probe
        .write_together(&[dot_probe::query_frame(1, "ka.bench.", true)])
        .await
        .unwrap();
    let answer = probe.read_message(Duration::from_secs(3)).await;
    probe.finish().await;
    let advertised = match answer {
        Ok(Some(m)) => dot_probe::keepalive_of(&m),
        other => panic!("{kind}: probe got no answer: {other:?}"),
    };
    let Some(units) = advertised else {
        report(
            kind,
            "edns_tcp_keepalive",
            "n/a",
            "server sends no edns-tcp-keepalive option (probe asked with one)",
        );
        return;
    };
    let theirs = Duration::from_millis(u64::from(units) * 100);
    let dialer = Arc::new(RecordingDialer::default());
    let config = strict_with_ca(&server);
    assert!(config.idle.interactive > theirs + Duration::from_secs(5));
    let resolver =
        Resolver::with_dialer(&config, Arc::new(dotcore::NoHost), dialer.clone()).unwrap();
    ask(&resolver, "ka2.bench.").await;
    let answered = Instant::now();
    let wire = dialer.wire(0);
    // Post-handshake messages (tickets) may trail the answer; after them,
    // the engine hears nothing more, not even the server's close_notify.
    tokio::time::sleep(Duration::from_millis(100)).await;
    wire.deaf.store(true, Ordering::SeqCst);
    let deadline = answered + theirs + Duration::from_secs(10);
    while wire.client_closed.lock().unwrap().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let closed = *wire.client_closed.lock().unwrap();
    let after = closed.map(|c| c.duration_since(answered));
    let server_spoke = wire
        .receptions
        .lock()
        .unwrap()
        .iter()
        .find(|t| **t > answered + Duration::from_millis(500))
        .map(|t| ms(t.duration_since(answered)));
    let ok = after.is_some_and(|a| {
        a + Duration::from_millis(200) >= theirs && a <= theirs + Duration::from_secs(1)
    });
    verdict(
        kind,
        "edns_tcp_keepalive",
        ok,
        &format!(
            "server advertises {}; engine closed {} after the answer by its own timer (own idle {}s, server's close hidden); server sent its close {}",
            ms(theirs),
            after.map(ms).unwrap_or_else(|| "never".into()),
            config.idle.interactive.as_secs(),
            server_spoke
                .map(|t| format!("after {t}"))
                .unwrap_or_else(|| "not before the engine".into())
        ),
    );
}

/// Whether the server issues session tickets and accepts them (probe), and
/// the engine resuming its session on the connection after an idle close.
async fn resumption(kind: ServerKind) {
    let Some(server) = start(kind).await else {
        return;
    };
    let probe_config = ProbeConfig::new(server.ca_pem()).unwrap();
    let mut probe = Probe::connect(server.dot_addr(), &probe_config)
        .await
        .expect("probe connects");
    probe
        .write_together(&[dot_probe::query_frame(1, "t1.bench.", false)])
        .await
        .unwrap();
    let _ = probe.read_message(Duration::from_secs(3)).await;
    probe.finish().await;
    let tickets = probe_config.store.tickets();
    let second = Probe::connect(server.dot_addr(), &probe_config)
        .await
        .expect("probe reconnects");
    let probe_resumed = second.resumed();
    second.finish().await;

    let config = Config {
        idle: IdlePolicy {
            interactive: Duration::from_millis(200),
            ..IdlePolicy::default()
        },
        ..strict_with_ca(&server)
    };
    let resolver = Resolver::new(&config, Arc::new(dotcore::NoHost)).unwrap();
    let first = ask(&resolver, "r1.bench.").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let closed = resolver.stats().connections_open_now == 0;
    let again = ask(&resolver, "r2.bench.").await;
    let s = resolver.stats();
    let detail = format!(
        "server issued {tickets} ticket(s), probe resumed={probe_resumed}; engine: closed when idle={closed}, connections={}, full={}, resumed={}",
        s.connections_opened, s.handshakes_full, s.handshakes_resumed
    );
    let answered = is_right(&first, "r1.bench.") && is_right(&again, "r2.bench.");
    if tickets == 0 || !probe_resumed {
        report(kind, "session_resumption", "n/a", &detail);
        assert!(answered, "{kind}: {detail}");
        return;
    }
    verdict(
        kind,
        "session_resumption",
        answered && closed && s.connections_opened == 2 && s.handshakes_resumed == 1,
        &detail,
    );
}

/// The server closes an idle connection on its own schedule (or the engine
/// does first, honouring keepalive): either way the next query is answered
/// on a fresh connection without a failure or a retry.
async fn server_idle_close(kind: ServerKind) {
    let Some(server) = start(kind).await else {
        return;
    };
    let (resolver, dialer) = recorded_resolver(&server);
    ask(&resolver, "i1.bench.").await;
    let answered = Instant::now();
    let wire = dialer.wire(0);
    wait_closed(&wire, Duration::from_secs(45)).await;
    let server_eof = *wire.server_eof.lock().unwrap();
    let client_closed = *wire.client_closed.lock().unwrap();
    // Data long after the answer is the server's close_notify: it closed.
    let server_spoke = wire
        .receptions
        .lock()
        .unwrap()
        .iter()
        .copied()
        .find(|t| *t > answered + Duration::from_millis(500));
    let server_first = [server_spoke, server_eof].into_iter().flatten().min();
    let closer = match (server_first, client_closed) {
        (Some(s), Some(c)) if c < s => format!("engine after {}", ms(c - answered)),
        (Some(s), _) => format!("server after {}", ms(s - answered)),
        (None, Some(c)) => format!("engine after {}", ms(c - answered)),
        (None, None) => "nobody within 45 s".into(),
    };
    // Let the engine see the close before the next query.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let a = ask(&resolver, "i2.bench.").await;
    let s = resolver.stats();
    let ok = (server_eof.is_some() || client_closed.is_some())
        && is_right(&a, "i2.bench.")
        && s.failures() == 0
        && s.retries == 0
        && dialer.connections() == 2;
    verdict(
        kind,
        "idle_close",
        ok,
        &format!(
            "closed by {closer}; next query {} with retries={} failures={} connections={}",
            a.rcode,
            s.retries,
            s.failures(),
            dialer.connections()
        ),
    );
}

/// A burst of concurrent queries on an established connection, which the
/// engine writes together (often in one TLS record): every one answered,
/// no SERVFAIL, none slower than [`STALL`]. The probe shows what the server does
/// with five queries in one TLS record.
async fn burst(kind: ServerKind) {
    let Some(server) = start(kind).await else {
        return;
    };
    let mut probe = Probe::connect_fresh(server.dot_addr(), server.ca_pem())
        .await
        .expect("probe connects");
    let frames: Vec<_> = (0..5)
        .map(|i| dot_probe::query_frame(i, &format!("b{i}.bench."), false))
        .collect();
    probe.write_together(&frames).await.unwrap();
    let sent = Instant::now();
    let mut answered = 0;
    let mut probe_end = "kept open".to_string();
    for _ in 0..5 {
        match probe.read_message(Duration::from_secs(3)).await {
            Ok(Some(_)) => answered += 1,
            Ok(None) => {
                probe_end = "silent for 3 s".into();
                break;
            }
            Err(_) => {
                probe_end = format!("closed by server {} after the write", ms(sent.elapsed()));
                break;
            }
        }
    }
    probe.finish().await;

    // On a new connection the burst queues during the handshake and leaves
    // in few writes; on an established one it leaves as it arrives. Five
    // rounds each, because how the queries fall into TLS records depends
    // on timing.
    let mut fresh = Vec::new();
    let mut established = Vec::new();
    for _ in 0..ROUNDS {
        fresh.push(burst_of_20(&server, false).await);
        established.push(burst_of_20(&server, true).await);
    }
    let all_ok = fresh.iter().chain(&established).all(Burst::ok);
    let show = |v: &[Burst]| {
        let bad: Vec<String> = v
            .iter()
            .filter(|b| !b.ok())
            .map(|b| b.to_string())
            .collect();
        let slowest = v.iter().map(|b| b.slowest).max().unwrap_or_default();
        let records: Vec<usize> = v.iter().map(|b| b.records).collect();
        format!(
            "{} of {ROUNDS} rounds clean, slowest answer {}, TLS records carrying the 20 queries per round {records:?}{}",
            v.len() - bad.len(),
            ms(slowest),
            if bad.is_empty() {
                String::new()
            } else {
                format!(", failed rounds: {}", bad.join("; "))
            }
        )
    };
    verdict(
        kind,
        "burst",
        all_ok,
        &format!(
            "probe: {answered}/5 answered from one TLS record, then {probe_end}; engine, 20 at once on a new connection: {}; on an established one: {}",
            show(&fresh),
            show(&established)
        ),
    );
}

/// Rounds of each kind of burst.
const ROUNDS: usize = 5;

/// An answer slower than this in a burst is a stall: well above what a
/// loaded 2-core machine takes (0.5 s measured), below dnsdist's 2 s read
/// timeout that ends a stuck connection.
const STALL: Duration = Duration::from_millis(1500);

struct Burst {
    right: usize,
    servfail: usize,
    slowest: Duration,
    retries: u64,
    connections: u64,
    /// TLS application-data records the engine wrote for the burst.
    records: usize,
}

impl Burst {
    fn ok(&self) -> bool {
        self.right == 20 && self.servfail == 0 && self.slowest < STALL
    }
}

impl std::fmt::Display for Burst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} record(s): {}/20 right, {} SERVFAIL, slowest {}, retries={}, connections={}",
            self.records,
            self.right,
            self.servfail,
            ms(self.slowest),
            self.retries,
            self.connections
        )
    }
}

async fn burst_of_20(server: &DotServer, warm: bool) -> Burst {
    let (resolver, dialer) = recorded_resolver(server);
    // Before the burst the engine has written its Finished (TLS 1.3 sends
    // it as an application-data record) and, when warm, one query.
    let mut before = 1;
    if warm {
        ask(&resolver, "warm.bench.").await;
        before = app_records(&dialer.wire(0).sent.lock().unwrap());
    }
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let r = resolver.clone();
            tokio::spawn(async move {
                let name = format!("burst{i}-{warm}.bench.");
                let t = Instant::now();
                let a = ask(&r, &name).await;
                (is_right(&a, &name), a.rcode == "SERVFAIL", t.elapsed())
            })
        })
        .collect();
    let mut b = Burst {
        right: 0,
        servfail: 0,
        slowest: Duration::ZERO,
        retries: 0,
        connections: 0,
        records: 0,
    };
    for t in tasks {
        let (ok, sf, took) = t.await.unwrap();
        b.right += usize::from(ok);
        b.servfail += usize::from(sf);
        b.slowest = b.slowest.max(took);
    }
    let s = resolver.stats();
    b.retries = s.retries;
    b.connections = s.connections_opened;
    b.records = app_records(&dialer.wire(0).sent.lock().unwrap()).saturating_sub(before);
    b
}

fn app_records(bytes: &[u8]) -> usize {
    records(bytes)
        .iter()
        .filter(|r| r.content_type == APPLICATION_DATA)
        .count()
}

/// First-answer latency on a new connection, by the engine (query issued
/// before the connection exists) with its TCP_QUICKACK dialer and over
/// plain TCP without it (the engine before that fix), by kdig (its reported
/// round trip after the handshake), and by the probe (from the end of the
/// handshake). Informational: it records the delay some servers add behind
/// their NewSessionTicket until the client's delayed ACK.
async fn first_answer(kind: ServerKind) {
    let Some(server) = start(kind).await else {
        return;
    };
    const RUNS: usize = 5;
    let (mut engine_first, mut engine_second, mut kdig_runs, mut probe_runs, mut plain_first) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..RUNS {
        let resolver = Resolver::new(&strict_with_ca(&server), Arc::new(dotcore::NoHost)).unwrap();
        let t = Instant::now();
        let a = ask(&resolver, &format!("fa{run}.bench.")).await;
        engine_first.push(t.elapsed());
        assert_eq!(a.rcode, "NOERROR", "{kind}: first answer");
        let t = Instant::now();
        ask(&resolver, &format!("fb{run}.bench.")).await;
        engine_second.push(t.elapsed());

        let ca = format!("+tls-ca={}", server.ca_file().display());
        let port = server.dot_addr().port().to_string();
        let at = format!("@{}", server.dot_addr().ip());
        let name = format!("fk{run}.bench.");
        let out = tokio::task::spawn_blocking(move || {
            kdig(&[&ca, "+tls-hostname=dot.test", "-p", &port, &at, &name, "A"])
        })
        .await
        .unwrap();
        assert!(out.status.success(), "{kind}: kdig failed");
        // kdig's own figure: ";; From 127.0.0.1@PORT(TCP) in 45.3 ms",
        // the query's round trip after its handshake.
        let text = String::from_utf8_lossy(&out.stdout);
        let reported = text
            .lines()
            .find(|l| l.starts_with(";; From "))
            .and_then(|l| l.rsplit_once(" in "))
            .and_then(|(_, t)| t.trim_end_matches(" ms").trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{kind}: no time in kdig output: {text}"));
        kdig_runs.push(Duration::from_secs_f64(reported / 1000.0));

        let mut probe = Probe::connect_fresh(server.dot_addr(), server.ca_pem())
            .await
            .expect("probe connects");
        let t = Instant::now();
        probe
            .write_together(&[dot_probe::query_frame(1, &format!("fp{run}.bench."), false)])
            .await
            .unwrap();
        let got = probe.read_message(Duration::from_secs(3)).await;
        probe_runs.push(t.elapsed());
        assert!(matches!(got, Ok(Some(_))), "{kind}: probe answer");
        probe.finish().await;

        // The engine as it was before TCP_QUICKACK: the same resolver over
        // plain loopback TCP with TCP_NODELAY only.
        let plain = Resolver::with_dialer(
            &strict_with_ca(&server),
            Arc::new(dotcore::NoHost),
            Arc::new(RecordingDialer::default()),
        )
        .unwrap();
        let t = Instant::now();
        let a = ask(&plain, &format!("fq{run}.bench.")).await;
        plain_first.push(t.elapsed());
        assert_eq!(
            a.rcode, "NOERROR",
            "{kind}: first answer without TCP_QUICKACK"
        );
    }
    // The minimum is what the protocol costs; the median shows the load.
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        format!("{}/{}", ms(v[0]), ms(v[v.len() / 2]))
    };
    report(
        kind,
        "first_answer_latency",
        "info",
        &format!(
            "min/median of {RUNS}: engine first query (with handshake) {} with TCP_QUICKACK, {} without it, engine second query {}, kdig query after its handshake {}, probe first answer after handshake {}",
            median(&mut engine_first),
            median(&mut plain_first),
            median(&mut engine_second),
            median(&mut kdig_runs),
            median(&mut probe_runs)
        ),
    );
}

// ---------------------------------------------------------------------------
// The matrix: one test per behaviour and server
// ---------------------------------------------------------------------------

/// `matrix!(behaviour { server => Kind [#[attr]]; ... })` makes module
/// `behaviour` with one test per server, so a single cell can be ignored
/// with its reason.
macro_rules! matrix {
    ($behaviour:ident { $($server:ident => $kind:expr $(, #[$attr:meta])* ;)* }) => {
        mod $behaviour {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                $(#[$attr])*
                async fn $server() {
                    super::$behaviour($kind).await
                }
            )*
        }
    };
}

macro_rules! all_servers {
    ($behaviour:ident) => {
        matrix!($behaviour {
            unbound => ServerKind::Unbound;
            knot_resolver => ServerKind::Knot;
            bind => ServerKind::Bind;
            dnsdist => ServerKind::Dnsdist;
        });
    };
}

all_servers!(strict_ca);
all_servers!(strict_pin);
all_servers!(wrong_name);
matrix!(pipelined_1000 {
    unbound => ServerKind::Unbound;
    knot_resolver => ServerKind::Knot;
    bind => ServerKind::Bind;
    dnsdist => ServerKind::Dnsdist;
});
matrix!(out_of_order {
    unbound => ServerKind::Unbound;
    knot_resolver => ServerKind::Knot;
    bind => ServerKind::Bind;
    dnsdist => ServerKind::Dnsdist;
});
all_servers!(padding);
all_servers!(keepalive);
all_servers!(resumption);
all_servers!(server_idle_close);
matrix!(burst {
    unbound => ServerKind::Unbound;
    knot_resolver => ServerKind::Knot;
    bind => ServerKind::Bind;
    dnsdist => ServerKind::Dnsdist;
});
all_servers!(first_answer);
