//! The engine (`dotcore::Resolver`) against every fault the fault-injection
//! DoT server (`dotcore_tests::fault_server`) can produce.
//!
//! Each test configures short timeouts (connect and handshake 1 s, query
//! 2 s), bounds every resolve with `tokio::time::timeout` a little above the
//! query timeout, and checks that the engine ends with the right answer
//! (192.0.2.1, the client's ID echoed, the client's question) or with
//! SERVFAIL — never a hang or a panic — and the engine's counters wherever
//! they are deterministic. All traffic stays on 127.0.0.1.
//!
//! The last test is the regression test for a bug these tests found: a
//! query in flight at `shutdown` used to be retried on a *new* connection
//! (and answered), leaving a connection open after shutdown.
//!
//! The two load tests (65,536 and 10,000 concurrent queries) take
//! [`MACHINE`] exclusively so they never share the 2-core machine with each
//! other or with the timing-sensitive tests; the others take it shared and
//! run in parallel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dotcore::message::{build_query, decode_answer};
use dotcore::{CacheConfig, Config, CustomServer, Mode, NoHost, Resolver, Timeouts, Upstream};
use dotcore_tests::fault_server::{
    black_hole_connect_addr, refused_addr, Behaviour, FaultServer, LengthFault, ServeOptions,
    TlsIdentity, A_ANSWER, HUGE_TXT_RECORDS,
};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData};
use tokio::sync::RwLock;
use tokio::task::JoinSet;
use tokio::time::{timeout, Instant};

const NAME: &str = "dot.test";
const CONNECT: Duration = Duration::from_secs(1);
const HANDSHAKE: Duration = Duration::from_secs(1);
const QUERY: Duration = Duration::from_secs(2);
/// Upper bound on one resolve: the query timeout plus scheduling slack.
const BOUND: Duration = Duration::from_secs(3);

/// Load tests take it exclusively, everything else shared.
static MACHINE: RwLock<()> = RwLock::const_new(());

/// Strict mode, trusting `tls`'s CA for "dot.test" at `addrs`, short
/// timeouts, no cache (so every query goes upstream).
fn config_for(addrs: &[SocketAddr], tls: &TlsIdentity) -> Config {
    Config {
        upstream: Upstream::Custom(vec![CustomServer {
            name: Some(NAME.into()),
            addresses: addrs.iter().map(|a| a.to_string()).collect(),
            port: 0,
            pins: Vec::new(),
        }]),
        mode: Mode::Strict,
        extra_ca_pem: Some(tls.ca_pem().into()),
        cache: CacheConfig {
            max_entries: 0,
            ..CacheConfig::default()
        },
        timeouts: Timeouts {
            connect: CONNECT,
            handshake: HANDSHAKE,
            query: QUERY,
        },
        ..Config::default()
    }
}

fn resolver(config: &Config) -> Resolver {
    Resolver::new(config, Arc::new(NoHost)).expect("valid config")
}

/// A recursive A query for `name` with the client ID `id`, no EDNS.
fn query(name: &str, id: u16) -> Vec<u8> {
    let mut q = build_query(name, "A").expect("query builds");
    q[..2].copy_from_slice(&id.to_be_bytes());
    q
}

/// Resolves within `bound` (panics on a hang) and says how long it took.
async fn ask_within(r: &Resolver, name: &str, id: u16, bound: Duration) -> (Vec<u8>, Duration) {
    let q = query(name, id);
    let started = Instant::now();
    let response = timeout(bound, r.resolve(&q))
        .await
        .unwrap_or_else(|_| panic!("resolve of {name} hung for more than {bound:?}"));
    (response, started.elapsed())
}

async fn ask(r: &Resolver, name: &str, id: u16) -> (Vec<u8>, Duration) {
    ask_within(r, name, id, BOUND).await
}

fn parse(response: &[u8]) -> Message {
    Message::from_vec(response).expect("response decodes")
}

/// A name in comparable form: lower case, no trailing dot.
fn plain(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

fn question_name(m: &Message) -> String {
    assert_eq!(m.queries.len(), 1, "exactly one question: {m:?}");
    plain(m.queries[0].name())
}

/// The answer to `name`: NOERROR, the client's ID and question, 192.0.2.1.
fn assert_answer(response: &[u8], name: &str, id: u16) -> Message {
    let m = parse(response);
    assert_eq!(m.metadata.id, id, "client ID echoed");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    assert_eq!(question_name(&m), name, "own question");
    let a = m
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .expect("an A record");
    assert_eq!(a, A_ANSWER);
    assert_eq!(plain(&m.answers[0].name), name);
    m
}

/// SERVFAIL (rcode 2) to `name`, ID echoed.
fn assert_servfail(response: &[u8], name: &str, id: u16) {
    let m = parse(response);
    assert_eq!(m.metadata.id, id, "client ID echoed");
    assert_eq!(u16::from(m.metadata.response_code), 2, "SERVFAIL: {m:?}");
    assert_eq!(question_name(&m), name);
    assert!(m.answers.is_empty());
    assert_eq!(decode_answer(response).unwrap().rcode, "SERVFAIL");
}

/// A recursive A query for `name` with ID `id`, built by hand: cheap enough
/// to make tens of thousands in a debug build.
fn raw_query(name: &str, id: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(name.len() + 18);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

fn is_servfail(response: &[u8]) -> bool {
    response.len() >= 4 && response[3] & 0x0F == 2
}

// ---------------------------------------------------------------- connect --

#[tokio::test]
async fn connect_refused_is_servfail_fail_connect() {
    let _m = MACHINE.read().await;
    let tls = TlsIdentity::generate(NAME);
    let refused = refused_addr().expect("reserve a port");
    let r = resolver(&config_for(&[refused.addr()], &tls));
    let (resp, took) = ask(&r, "refused.test", 0x1111).await;
    assert_servfail(&resp, "refused.test", 0x1111);
    assert!(took < CONNECT, "a refused connect fails at once ({took:?})");
    let s = r.stats();
    assert_eq!(s.queries, 1);
    assert_eq!(s.fail_connect, 1);
    assert_eq!(s.failures(), 1);
    assert_eq!(s.connections_opened, 0);
    assert_eq!(s.upstream_queries, 0);
    assert_eq!(s.connections_open_now, 0);
}

#[tokio::test]
async fn black_holed_connect_times_out_after_connect_timeout() {
    let _m = MACHINE.read().await;
    let tls = TlsIdentity::generate(NAME);
    // Blocks ~300 ms to verify the address hangs; nothing else runs yet.
    let hole = black_hole_connect_addr().expect("black hole on loopback");
    let r = resolver(&config_for(&[hole.addr()], &tls));
    let (resp, took) = ask(&r, "hole.test", 0x2222).await;
    assert_servfail(&resp, "hole.test", 0x2222);
    assert!(
        took >= CONNECT && took < QUERY,
        "ends at the connect timeout, before the query timeout ({took:?})"
    );
    let s = r.stats();
    // The connect timeout (1 s) fires before the query timeout (2 s), so it
    // is counted as a connect failure, not a query timeout.
    assert_eq!(s.fail_connect, 1);
    assert_eq!(s.fail_timeout, 0);
    assert_eq!(s.failures(), 1);
    assert_eq!(s.connections_opened, 0);
    assert_eq!(s.upstream_queries, 0);
}

#[tokio::test]
async fn black_holed_connect_longer_than_query_timeout_is_a_query_timeout() {
    let _m = MACHINE.read().await;
    let tls = TlsIdentity::generate(NAME);
    let hole = black_hole_connect_addr().expect("black hole on loopback");
    let mut config = config_for(&[hole.addr()], &tls);
    config.timeouts.connect = Duration::from_secs(10);
    let r = resolver(&config);
    let (resp, took) = ask(&r, "hole2.test", 0x2223).await;
    assert_servfail(&resp, "hole2.test", 0x2223);
    assert!(
        took >= QUERY,
        "the query timeout bounds the connect ({took:?})"
    );
    let s = r.stats();
    assert_eq!(s.fail_timeout, 1);
    assert_eq!(s.failures(), 1);
    assert_eq!(s.connections_opened, 0);
}

// -------------------------------------------------------------- handshake --

async fn handshake_hangs(behaviour: Behaviour) {
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(behaviour.clone(), tls.clone());
    let r = resolver(&config_for(&[server.addr()], &tls));
    let (resp, took) = ask(&r, "hang.test", 0x3333).await;
    assert_servfail(&resp, "hang.test", 0x3333);
    assert!(
        took >= HANDSHAKE && took < QUERY,
        "{behaviour:?}: ends at the handshake timeout ({took:?})"
    );
    let s = r.stats();
    assert_eq!(s.fail_tls, 1, "{behaviour:?}");
    assert_eq!(s.failures(), 1);
    assert_eq!(s.connections_opened, 1);
    assert_eq!(s.connections_open_now, 0, "the hung connection is dropped");
    assert_eq!(s.handshakes_full + s.handshakes_resumed, 0);
    assert_eq!(s.upstream_queries, 0);
    assert_eq!(server.queries_received(), 0);
}

#[tokio::test]
async fn handshake_that_hangs_is_servfail_fail_tls() {
    let _m = MACHINE.read().await;
    // ClientHello read, nothing answered.
    handshake_hangs(Behaviour::HangHandshake).await;
}

#[tokio::test]
async fn server_that_never_reads_is_servfail_fail_tls() {
    let _m = MACHINE.read().await;
    // TCP accepted, ClientHello never even read.
    handshake_hangs(Behaviour::BlackHole).await;
}

#[tokio::test]
async fn certificate_for_another_name_fails_strict_without_sending_queries() {
    let _m = MACHINE.read().await;
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::WrongName, tls.clone());
    let r = resolver(&config_for(&[server.addr()], &tls));
    let (resp, took) = ask(&r, "wrong.test", 0x4444).await;
    assert_servfail(&resp, "wrong.test", 0x4444);
    assert!(
        took < HANDSHAKE,
        "rejected at once, not timed out ({took:?})"
    );
    let s = r.stats();
    assert_eq!(s.fail_tls, 1);
    assert_eq!(s.failures(), 1);
    assert_eq!(s.connections_opened, 1);
    assert_eq!(s.handshakes_full + s.handshakes_resumed, 0);
    assert_eq!(s.upstream_queries, 0);
    assert_eq!(s.connections_open_now, 0);
    assert_eq!(
        server.queries_received(),
        0,
        "no query leaked to the server"
    );
    assert_eq!(server.handshakes_completed(), 0);
}

// ------------------------------------------------------------ connections --

#[tokio::test]
async fn server_closing_after_three_queries_is_retried_transparently() {
    let _m = MACHINE.read().await;
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::CloseAfter(3), tls.clone());
    let r = resolver(&config_for(&[server.addr()], &tls));
    for i in 0..10u16 {
        let name = format!("close{i}.test");
        let (resp, _) = ask(&r, &name, 100 + i).await;
        assert_answer(&resp, &name, 100 + i);
    }
    let s = r.stats();
    // 3 + 3 + 3 + 1 queries: four connections whatever the timing.
    assert_eq!(s.connections_opened, 4);
    assert_eq!(server.connections_accepted(), 4);
    assert_eq!(s.handshakes_full + s.handshakes_resumed, 4);
    assert_eq!(s.failures(), 0);
    // A query sent on a connection the server had just closed (before the
    // close was read) is retried once on the next one; how many hit that
    // race depends on timing, but each one is counted as a retry and an
    // extra upstream query, and there are at most three (one per close).
    assert!(s.retries <= 3, "{s:?}");
    assert_eq!(s.upstream_queries, 10 + s.retries, "{s:?}");
    assert_eq!(server.stats().answers_sent(), 10);
}

#[tokio::test]
async fn dropped_queries_time_out_while_the_others_are_answered() {
    let _m = MACHINE.read().await;
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::DropEvery(3), tls.clone());
    let r = resolver(&config_for(&[server.addr()], &tls));
    let mut set = JoinSet::new();
    for i in 0..9u16 {
        let r = r.clone();
        set.spawn(async move {
            let name = format!("drop{i}.test");
            let (resp, took) = ask(&r, &name, 200 + i).await;
            (name, 200 + i, resp, took)
        });
    }
    let (mut answered, mut failed) = (0, 0);
    while let Some(done) = set.join_next().await {
        let (name, id, resp, took) = done.expect("no panic");
        if is_servfail(&resp) {
            assert_servfail(&resp, &name, id);
            assert!(took >= QUERY, "failed only at the query timeout ({took:?})");
            failed += 1;
        } else {
            assert_answer(&resp, &name, id);
            assert!(took < QUERY, "answered promptly ({took:?})");
            answered += 1;
        }
    }
    // The server drops its 3rd, 6th and 9th query.
    assert_eq!((answered, failed), (6, 3));
    let s = r.stats();
    assert_eq!(s.fail_timeout, 3);
    assert_eq!(s.failures(), 3);
    assert_eq!(
        s.connections_opened, 1,
        "a lost answer does not kill the connection"
    );
    assert_eq!(s.upstream_queries, 9);
    assert_eq!(s.retries, 0);
    assert_eq!(server.queries_received(), 9);
}

/// How a broken stream must be counted: a stream that stops (EOF, TLS
/// error) as a lost connection, DNS-level garbage as a bad response.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Counted {
    ConnectionLost,
    BadResponse,
}

async fn bad_stream(behaviour: Behaviour, counted: Counted) {
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(behaviour.clone(), tls.clone());
    let r = resolver(&config_for(&[server.addr()], &tls));
    let (resp, took) = ask(&r, "bad.test", 0x5555).await;
    assert_servfail(&resp, "bad.test", 0x5555);
    assert!(
        took < QUERY,
        "{behaviour:?}: fails fast, not by timeout ({took:?})"
    );
    let s = r.stats();
    // The first connection breaks, the query is retried once on a fresh
    // one, which breaks the same way.
    assert_eq!(s.upstream_queries, 2, "{behaviour:?}: {s:?}");
    assert_eq!(s.retries, 1, "{behaviour:?}");
    assert_eq!(s.connections_opened, 2, "{behaviour:?}");
    let expected = match counted {
        Counted::ConnectionLost => (1, 0),
        Counted::BadResponse => (0, 1),
    };
    assert_eq!(
        (s.fail_connection_lost, s.fail_bad_response),
        expected,
        "{behaviour:?}"
    );
    assert_eq!(s.failures(), 1, "{behaviour:?}");
    assert_eq!(server.queries_received(), 2, "{behaviour:?}");
    // Give the engine a moment to finish tearing the connections down.
    for _ in 0..100 {
        if r.stats().connections_open_now == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(r.stats().connections_open_now, 0, "{behaviour:?}");
}

#[tokio::test]
async fn garbage_answer_is_servfail_after_one_retry() {
    let _m = MACHINE.read().await;
    bad_stream(Behaviour::Garbage, Counted::BadResponse).await;
}

#[tokio::test]
async fn garbage_tls_records_are_servfail_after_one_retry() {
    let _m = MACHINE.read().await;
    bad_stream(Behaviour::GarbageRecords, Counted::ConnectionLost).await;
}

#[tokio::test]
async fn overstated_frame_length_is_servfail_after_one_retry() {
    let _m = MACHINE.read().await;
    bad_stream(
        Behaviour::WrongLength(LengthFault::Overstated),
        Counted::ConnectionLost,
    )
    .await;
}

#[tokio::test]
async fn zero_frame_length_is_servfail_after_one_retry() {
    let _m = MACHINE.read().await;
    bad_stream(
        Behaviour::WrongLength(LengthFault::Zero),
        Counted::BadResponse,
    )
    .await;
}

// ---------------------------------------------------------------- answers --

#[tokio::test]
async fn reversed_answers_reach_the_client_that_asked() {
    let _m = MACHINE.read().await;
    const N: u16 = 8;
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::Reversed(N as usize), tls.clone());
    let r = resolver(&config_for(&[server.addr()], &tls));
    all_answered_over_one_connection(&r, &server, "q", 300, N).await;
}

/// Asks `n` queries at once (`{prefix}{i}.test`, client IDs from
/// `first_id`) and checks that each client got its own answer, all over one
/// connection, with no failure.
async fn all_answered_over_one_connection(
    r: &Resolver,
    server: &FaultServer,
    prefix: &str,
    first_id: u16,
    n: u16,
) {
    let mut set = JoinSet::new();
    for i in 0..n {
        let r = r.clone();
        let name = format!("{prefix}{i}.test");
        set.spawn(async move {
            let (resp, _) = ask(&r, &name, first_id + i).await;
            (name, first_id + i, resp)
        });
    }
    while let Some(done) = set.join_next().await {
        let (name, id, resp) = done.expect("no panic");
        assert_answer(&resp, &name, id);
    }
    let s = r.stats();
    assert_eq!(s.connections_opened, 1);
    assert_eq!(s.upstream_queries, n as u64);
    assert_eq!(s.failures(), 0, "{s:?}");
    assert_eq!(server.stats().answers_sent(), n as usize);
}

/// More queries at once than a connection takes in flight: those beyond
/// the limit wait for room on the connection (not a second one, not a
/// failure) and are all answered.
#[tokio::test]
async fn queries_beyond_the_in_flight_limit_wait_for_room() {
    let _m = MACHINE.read().await;
    const N: u16 = 16;
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::Normal, tls.clone());
    let mut config = config_for(&[server.addr()], &tls);
    config.max_in_flight = 2;
    let r = resolver(&config);
    all_answered_over_one_connection(&r, &server, "room", 500, N).await;
}

#[tokio::test]
async fn answer_larger_than_a_tls_record_is_returned_whole() {
    let _m = MACHINE.read().await;
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::HugeAnswer, tls.clone());
    let r = resolver(&config_for(&[server.addr()], &tls));
    let (resp, _) = ask(&r, "huge.test", 0x6666).await;
    assert!(resp.len() > 16_384, "whole answer ({} bytes)", resp.len());
    let m = assert_answer(&resp, "huge.test", 0x6666);
    assert_eq!(m.answers.len(), 1 + HUGE_TXT_RECORDS);
    assert_eq!(
        decode_answer(&resp).unwrap().records.len(),
        1 + HUGE_TXT_RECORDS
    );
    assert_eq!(r.stats().failures(), 0);
}

// ------------------------------------------------------------------- load --

/// ID exhaustion: 65,536 distinct queries at once on one connection that
/// allows the maximum of 65,535 in flight. The server (`Reversed(65535)`)
/// answers nothing until it holds 65,535 queries, so at that moment every
/// wire ID but one is in use (the engine never gives a pending ID twice),
/// and the 65,536th query can only be sent once answers free IDs; it then
/// sits in an incomplete batch the server never answers, until shutdown
/// fails it. Every query ends, 65,535 with their own answer and one with
/// SERVFAIL, no panic and no hang. The query timeout is raised to 60 s
/// because in a debug build the 65,535 answers take several seconds to
/// flow (that is CPU, not waiting); no query gets near it.
#[tokio::test]
async fn id_exhaustion_with_65536_queries_in_flight() {
    let _m = MACHINE.write().await;
    const N: u32 = 65_536;
    const BATCH: usize = 65_535;
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::Reversed(BATCH), tls.clone());
    let mut config = config_for(&[server.addr()], &tls);
    config.max_in_flight = BATCH;
    config.timeouts.query = Duration::from_secs(60);
    let r = resolver(&config);
    let started = Instant::now();
    let mut set = JoinSet::new();
    for i in 0..N {
        let r = r.clone();
        set.spawn(async move {
            // Built and checked by hand: hickory is too slow for 65,536 in a
            // debug build.
            let name = format!("n{i}.load.test");
            let id = i as u16;
            let q = raw_query(&name, id);
            let resp = timeout(Duration::from_secs(61), r.resolve(&q))
                .await
                .expect("resolve bounded by its query timeout");
            assert_eq!(resp[..2], q[..2], "client ID");
            assert_eq!(resp[12..q.len()], q[12..], "own question");
            if is_servfail(&resp) {
                false
            } else {
                assert_eq!(resp[3] & 0x0F, 0, "NOERROR");
                assert!(resp.ends_with(&A_ANSWER.octets()), "192.0.2.1");
                true
            }
        });
    }
    let mut answered = 0usize;
    let first_batch = async {
        while answered < BATCH {
            let done = set.join_next().await.expect("tasks left");
            assert!(done.expect("no panic"), "no SERVFAIL before shutdown");
            answered += 1;
        }
    };
    timeout(Duration::from_secs(50), first_batch)
        .await
        .expect("the batch of 65,535 is answered");
    let answered_in = started.elapsed();
    // The last query was sent when the first answers freed IDs.
    for _ in 0..500 {
        if server.queries_received() == N as usize {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.queries_received(), N as usize);
    assert_eq!(server.stats().answers_sent(), BATCH);
    let s = r.stats();
    assert_eq!(s.queries, N as u64);
    assert_eq!(s.upstream_queries, N as u64);
    assert_eq!(s.failures(), 0, "{s:?}");
    assert_eq!(s.connections_opened, 1);
    assert_eq!(s.handshakes_full, 1);

    timeout(BOUND, r.shutdown())
        .await
        .expect("shutdown bounded");
    let mut failed = 0;
    let rest = async {
        while let Some(done) = set.join_next().await {
            assert!(
                !done.expect("no panic"),
                "the last query cannot be answered"
            );
            failed += 1;
        }
    };
    timeout(BOUND, rest)
        .await
        .expect("the last query ends at shutdown");
    println!(
        "65536 queries: {answered} answered in {answered_in:?}, {failed} SERVFAIL, total {:?}",
        started.elapsed()
    );
    assert_eq!((answered, failed), (BATCH, 1));
    let s = r.stats();
    assert_eq!(s.fail_connection_lost, 1, "{s:?}");
    assert_eq!(s.failures(), 1);
    assert_eq!(s.retries, 0, "no retry after shutdown");
    assert_eq!(s.connections_opened, 1);
}

#[tokio::test]
async fn ten_thousand_racing_queries_share_one_handshake() {
    let _m = MACHINE.write().await;
    const N: u16 = 10_000;
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::Normal, tls.clone());
    let mut config = config_for(&[server.addr()], &tls);
    // All answers are required here, so give a debug build on a busy
    // 2-core machine room; the point is the race, not the speed.
    config.timeouts.query = Duration::from_secs(10);
    let r = resolver(&config);
    let mut set = JoinSet::new();
    for i in 0..N {
        let r = r.clone();
        set.spawn(async move {
            let name = format!("race{i}.test");
            let (resp, _) = ask_within(&r, &name, i, Duration::from_secs(11)).await;
            assert_answer(&resp, &name, i);
        });
    }
    let started = Instant::now();
    let all = async {
        while let Some(done) = set.join_next().await {
            done.expect("answered, no panic");
        }
    };
    timeout(Duration::from_secs(12), all)
        .await
        .expect("every query ends");
    println!("10000 racing queries in {:?}", started.elapsed());
    let s = r.stats();
    assert_eq!(s.handshakes_full, 1, "one handshake for all: {s:?}");
    assert_eq!(s.handshakes_resumed, 0);
    assert_eq!(s.connections_opened, 1);
    assert_eq!(s.upstream_queries, N as u64);
    assert_eq!(s.failures(), 0);
    assert_eq!(server.queries_received(), N as usize);
}

// ------------------------------------------------- padding, pins, IDs ------

#[tokio::test]
async fn every_query_frame_is_padded_to_128_bytes() {
    let _m = MACHINE.read().await;
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::Normal, tls.clone());
    let r = resolver(&config_for(&[server.addr()], &tls));
    let long_label = "x".repeat(63);
    let names = [
        "a.test".to_string(),
        "a-somewhat-longer-name.example.test".to_string(),
        format!("{long_label}.{long_label}.test"),
        format!("{long_label}.{long_label}.{long_label}.test"),
    ];
    for (i, name) in names.iter().enumerate() {
        let (resp, _) = ask(&r, name, i as u16).await;
        assert_answer(&resp, name, i as u16);
        // AAAA too, through the same path.
        let mut q = build_query(name, "AAAA").unwrap();
        q[..2].copy_from_slice(&0x7000u16.to_be_bytes());
        let resp = timeout(BOUND, r.resolve(&q)).await.expect("bounded");
        assert_eq!(parse(&resp).metadata.id, 0x7000);
    }
    let sizes = server.query_sizes();
    assert_eq!(sizes.len(), 2 * names.len());
    assert!(
        sizes.iter().all(|s| s % 128 == 0 && *s > 0),
        "padded to 128: {sizes:?}"
    );
    // Different name lengths, some in different blocks: padding is real.
    assert!(sizes.iter().any(|&s| s > 128), "{sizes:?}");
}

/// Wire IDs come from the OS CSPRNG, each on its own: a sequence (as from
/// a per-connection counter) would let the server link queries, and anyone
/// who saw one ID predict the next.
#[tokio::test]
async fn wire_ids_on_one_connection_are_not_a_sequence() {
    let _m = MACHINE.read().await;
    const N: u16 = 200;
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::Normal, tls.clone());
    let r = resolver(&config_for(&[server.addr()], &tls));
    for i in 0..N {
        let name = format!("n{i}.test");
        let (resp, _) = ask(&r, &name, i).await;
        assert_answer(&resp, &name, i);
    }
    assert_eq!(r.stats().connections_opened, 1);
    let ids = server.query_ids();
    assert_eq!(ids.len(), N as usize);
    let steps = ids
        .windows(2)
        .filter(|w| w[1].wrapping_sub(w[0]) <= 1)
        .count();
    // Random IDs repeat or step by one with probability 2/65536 each.
    assert!(steps < 4, "{steps} sequential steps: {ids:?}");
}

#[tokio::test]
async fn leaf_pin_without_ca_authenticates_in_strict_mode() {
    let _m = MACHINE.read().await;
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::Normal, tls.clone());
    for name in [Some(NAME.to_string()), None] {
        let mut config = config_for(&[server.addr()], &tls);
        config.extra_ca_pem = None;
        let Upstream::Custom(servers) = &mut config.upstream else {
            unreachable!()
        };
        servers[0].name = name.clone();
        servers[0].pins = vec![tls.spki_pin().to_string()];
        let r = resolver(&config);
        let (resp, _) = ask(&r, "pinned.test", 0x7777).await;
        assert_answer(&resp, "pinned.test", 0x7777);
        let s = r.stats();
        assert_eq!(s.failures(), 0, "name {name:?}");
        assert_eq!(s.handshakes_full, 1);
    }
}

#[tokio::test]
async fn wrong_pin_is_servfail_even_with_a_trusted_chain() {
    let _m = MACHINE.read().await;
    let tls = TlsIdentity::generate(NAME);
    let other = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::Normal, tls.clone());
    for (ca, pin) in [
        (None, other.spki_pin()),
        // The CA's pin: the server sends only its leaf, so it cannot match.
        (None, tls.ca_spki_pin()),
        // Pins take precedence over a chain that would validate.
        (Some(tls.ca_pem().to_string()), other.spki_pin()),
    ] {
        let mut config = config_for(&[server.addr()], &tls);
        config.extra_ca_pem = ca.clone();
        let Upstream::Custom(servers) = &mut config.upstream else {
            unreachable!()
        };
        servers[0].pins = vec![pin.to_string()];
        let r = resolver(&config);
        let (resp, took) = ask(&r, "pinned.test", 0x8888).await;
        assert_servfail(&resp, "pinned.test", 0x8888);
        assert!(took < HANDSHAKE, "rejected, not timed out ({took:?})");
        let s = r.stats();
        assert_eq!(s.fail_tls, 1, "ca {}, pin {pin}", ca.is_some());
        assert_eq!(s.failures(), 1);
        assert_eq!(s.upstream_queries, 0);
    }
    assert_eq!(server.queries_received(), 0);
}

#[tokio::test]
async fn client_ids_are_preserved() {
    let _m = MACHINE.read().await;
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::Normal, tls.clone());
    let r = resolver(&config_for(&[server.addr()], &tls));
    for (i, id) in [0u16, 1, 0x00FF, 0x8000, 0xBEEF, 0xFFFF]
        .into_iter()
        .enumerate()
    {
        let name = format!("id{i}.test");
        let (resp, _) = ask(&r, &name, id).await;
        assert_answer(&resp, &name, id);
    }
    assert_eq!(r.stats().failures(), 0);
}

#[tokio::test]
async fn two_clients_with_the_same_id_get_their_own_answers() {
    let _m = MACHINE.read().await;
    let tls = TlsIdentity::generate(NAME);
    // Reversed(2): the server answers only once both queries are in flight
    // on the one connection, and answers the second first.
    let server = FaultServer::start(Behaviour::Reversed(2), tls.clone());
    let r = resolver(&config_for(&[server.addr()], &tls));
    const SAME: u16 = 0x4242;
    let (a, b) = tokio::join!(ask(&r, "alpha.test", SAME), ask(&r, "beta.test", SAME));
    assert_answer(&a.0, "alpha.test", SAME);
    assert_answer(&b.0, "beta.test", SAME);
    let s = r.stats();
    assert_eq!(s.connections_opened, 1);
    assert_eq!(s.upstream_queries, 2);
    assert_eq!(s.failures(), 0);
    assert_eq!(server.queries_received(), 2);
}

// ---------------------------------------------------------------- AD bit --

/// AD from a server that authenticated is passed on; from one that did not
/// (opportunistic TLS to an untrusted certificate) it is cleared: anyone on
/// the path could have set it.
#[tokio::test]
async fn authentic_data_is_passed_on_only_from_an_authenticated_server() {
    let _m = MACHINE.read().await;
    let tls = TlsIdentity::generate(NAME);
    let options = ServeOptions {
        authentic_data: true,
        ..ServeOptions::default()
    };
    let server = FaultServer::start_with(Behaviour::Normal, tls.clone(), options);

    let strict = resolver(&config_for(&[server.addr()], &tls));
    let (resp, _) = ask(&strict, "ad1.test", 0x0ad1).await;
    let m = parse(&resp);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authentic_data, "AD from an authenticated server");

    // No CA for the server's certificate: opportunistic TLS goes ahead
    // without authentication.
    let unauthenticated = resolver(&Config {
        mode: Mode::Opportunistic,
        extra_ca_pem: None,
        ..config_for(&[server.addr()], &tls)
    });
    let (resp, _) = ask(&unauthenticated, "ad2.test", 0x0ad2).await;
    let m = parse(&resp);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(unauthenticated.stats().cleartext_queries, 0, "over TLS");
    assert_eq!(unauthenticated.stats().handshakes_full, 1);
    assert!(
        !m.metadata.authentic_data,
        "AD from an unauthenticated server"
    );
}

/// A clear-text DNS server on loopback UDP that answers every query with
/// the query itself turned into a response with AD set, as a forged answer
/// on the path could. Serves at most `n` queries, for at most 10 s.
fn udp_server_claiming_authentic_data(n: usize) -> SocketAddr {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        for _ in 0..n {
            let Ok((len, peer)) = socket.recv_from(&mut buf) else {
                return;
            };
            let reply = &mut buf[..len];
            if reply.len() >= 4 {
                reply[2] |= 0x80; // QR
                reply[3] |= 0x80 | 0x20; // RA, AD
            }
            let _ = socket.send_to(reply, peer);
        }
    });
    addr
}

#[tokio::test]
async fn authentic_data_from_clear_text_is_cleared() {
    let _m = MACHINE.read().await;
    let tls = TlsIdentity::generate(NAME);
    let refusing = refused_addr().expect("reserve a port");
    let plain = udp_server_claiming_authentic_data(4);
    let r = resolver(&Config {
        mode: Mode::Opportunistic,
        network_resolvers: vec![plain],
        ..config_for(&[refusing.addr()], &tls)
    });
    let (resp, _) = ask(&r, "ad3.test", 0x0ad3).await;
    let m = parse(&resp);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(r.stats().cleartext_queries, 1, "answered in clear text");
    assert!(!m.metadata.authentic_data, "AD from clear text");
}

// ---------------------------------------------------- opportunistic fallback --

/// Opportunistic mode on a network that silently drops DoT (connects hang,
/// as behind a firewall that drops SYNs to port 853 without a RST): the
/// first query after start and the first after a network change are
/// answered in clear text at once, never after the query timeout or with
/// SERVFAIL. The connect timeout is set longer than the query timeout, so
/// a query that waited for DoT would end SERVFAIL.
#[tokio::test]
async fn opportunistic_never_waits_for_a_black_holed_dot_server() {
    let _m = MACHINE.read().await;
    let tls = TlsIdentity::generate(NAME);
    let hole = black_hole_connect_addr().expect("black hole on loopback");
    let plain = udp_server_claiming_authentic_data(8);
    let connect_hang = QUERY + Duration::from_secs(1);
    let mut config = Config {
        mode: Mode::Opportunistic,
        network_resolvers: vec![plain],
        ..config_for(&[hole.addr()], &tls)
    };
    config.timeouts.connect = connect_hang;
    let r = resolver(&config);
    // Clear text on loopback answers in well under a millisecond; a quarter
    // of the query timeout leaves room for a loaded machine and is far
    // below what waiting for DoT costs.
    let prompt = QUERY / 4;

    let (resp, took) = ask(&r, "first.test", 0x5a01).await;
    let m = parse(&resp);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    assert!(took < prompt, "first query after start took {took:?}");
    assert!(!m.metadata.authentic_data, "AD from clear text");
    assert_eq!(r.stats().cleartext_queries, 1);
    assert!(r.in_cleartext_fallback());

    // The host reports a network change while the probe still hangs.
    timeout(connect_hang + BOUND, r.network_changed(vec![plain]))
        .await
        .expect("network change bounded");
    let (resp, took) = ask(&r, "after-change.test", 0x5a02).await;
    let m = parse(&resp);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    assert!(took < prompt, "first query after the change took {took:?}");
    let s = r.stats();
    assert_eq!(s.cleartext_queries, 2);
    assert_eq!(s.upstream_queries, 0, "nothing was sent over DoT");
    assert_eq!(s.fail_timeout, 0);
}

/// A DoT server that validated and then stops answering (the connection
/// stays up, every query is dropped): opportunistic mode answers in clear
/// text after the short grace, not SERVFAIL at the query timeout.
#[tokio::test]
async fn opportunistic_answers_in_clear_text_when_validated_dot_goes_silent() {
    let _m = MACHINE.read().await;
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::DropEvery(1), tls.clone());
    let plain = udp_server_claiming_authentic_data(8);
    let r = resolver(&Config {
        mode: Mode::Opportunistic,
        network_resolvers: vec![plain],
        ..config_for(&[server.addr()], &tls)
    });
    let (resp, _) = ask(&r, "before.test", 0x5b01).await;
    assert_eq!(parse(&resp).metadata.response_code, ResponseCode::NoError);
    for _ in 0..200 {
        if !r.in_cleartext_fallback() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!r.in_cleartext_fallback(), "the probe validated DoT");

    let (resp, took) = ask(&r, "silent.test", 0x5b02).await;
    let m = parse(&resp);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    // The grace is at most 1 s (fallback.rs); the query timeout is 2 s.
    assert!(took < QUERY / 2 + QUERY / 8, "took {took:?}");
    let s = r.stats();
    assert!(s.upstream_queries >= 1, "DoT was asked first: {s:?}");
    assert_eq!(s.cleartext_queries, 2, "{s:?}");
    assert_eq!(s.failures(), 0, "{s:?}");
}

// --------------------------------------------------------------- shutdown --

/// A query in flight when the engine shuts down ends at once with SERVFAIL
/// and is not retried: no connection may be opened after shutdown.
#[tokio::test]
async fn shutdown_fails_queries_in_flight_without_reconnecting() {
    let _m = MACHINE.read().await;
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::Slow(Duration::from_secs(1)), tls.clone());
    let r = resolver(&config_for(&[server.addr()], &tls));
    let in_flight = {
        let r = r.clone();
        tokio::spawn(async move { ask(&r, "late.test", 0x9999).await })
    };
    for _ in 0..200 {
        if server.queries_received() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(server.queries_received(), 1, "query on the wire");
    let shut = Instant::now();
    timeout(BOUND, r.shutdown())
        .await
        .expect("shutdown bounded");
    let (resp, _) = in_flight.await.expect("no panic");
    assert_servfail(&resp, "late.test", 0x9999);
    assert!(shut.elapsed() < Duration::from_secs(1), "not answered late");
    for _ in 0..100 {
        if r.stats().connections_open_now == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = r.stats();
    assert_eq!(s.connections_open_now, 0);
    assert_eq!(
        s.connections_opened, 1,
        "no reconnect after shutdown: {s:?}"
    );
    assert_eq!(s.retries, 0);
    assert_eq!(s.fail_connection_lost, 1);
    // Later queries fail without touching the network.
    let (resp, _) = ask(&r, "after.test", 0x9998).await;
    assert_servfail(&resp, "after.test", 0x9998);
    assert_eq!(r.stats().connections_opened, 1);
    assert_eq!(server.connections_accepted(), 1);
}
