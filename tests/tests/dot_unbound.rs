//! The engine against a real DoT server: Unbound on loopback.
//!
//! Every test skips with a message when unbound is not installed (and fails
//! instead when DOTCORE_TESTS_REQUIRE_TOOLS is set, as the test script does).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dotcore::message::{build_query, decode_answer, Answer};
use dotcore::{Config, CustomServer, Event, Host, IdlePolicy, Mode, Resolver, Upstream};
use dotcore_tests::unbound::{self as zone, UnboundOptions, UnboundServer};
use dotcore_tests::{custom_upstream, require_tool, CleartextTrap, TestPki};

/// Records every event and protected socket.
#[derive(Default)]
struct RecordingHost {
    events: Mutex<Vec<Event>>,
    protected: AtomicUsize,
}

impl Host for RecordingHost {
    fn protect_socket(&self, fd: i32) -> bool {
        assert!(fd >= 0);
        self.protected.fetch_add(1, Ordering::SeqCst);
        true
    }
    fn on_event(&self, event: Event) {
        self.events.lock().unwrap().push(event);
    }
}

impl RecordingHost {
    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }
}

fn start_unbound(options: UnboundOptions) -> Option<UnboundServer> {
    if !require_tool("unbound") {
        return None;
    }
    Some(UnboundServer::start(options).expect("unbound starts"))
}

/// Strict mode trusting the fixture's CA for `dot.test`.
fn strict_with_ca(server: &UnboundServer) -> Config {
    let mut config = Config {
        upstream: custom_upstream(server.dot_addr(), Some("dot.test"), vec![]),
        mode: Mode::Strict,
        extra_ca_pem: Some(server.ca_pem().to_string()),
        ..Config::default()
    };
    config.timeouts.connect = Duration::from_secs(2);
    config.timeouts.handshake = Duration::from_secs(2);
    config.timeouts.query = Duration::from_secs(4);
    config
}

async fn ask(resolver: &Resolver, name: &str, rtype: &str) -> (Answer, Vec<u8>) {
    let query = build_query(name, rtype).unwrap();
    let bytes = tokio::time::timeout(Duration::from_secs(10), resolver.resolve(&query))
        .await
        .expect("the engine answers within its timeout");
    (decode_answer(&bytes).unwrap(), bytes)
}

fn data(answer: &Answer) -> Vec<String> {
    answer.records.iter().map(|r| r.data.clone()).collect()
}

#[tokio::test]
async fn strict_with_ca_answers_a_aaaa_txt_cname_and_nxdomain() {
    let Some(server) = start_unbound(UnboundOptions::default()) else {
        return;
    };
    let host = Arc::new(RecordingHost::default());
    let resolver = Resolver::new(&strict_with_ca(&server), host.clone()).unwrap();

    let (a, bytes) = ask(&resolver, zone::A_TEST, "A").await;
    assert_eq!(a.rcode, "NOERROR");
    assert_eq!(data(&a), vec![zone::A_TEST_V4]);
    assert_eq!(a.records[0].ttl, zone::A_TEST_TTL);
    assert_eq!(
        dotcore::internals::wire::id(&bytes),
        0,
        "client's ID restored"
    );

    let (aaaa, _) = ask(&resolver, zone::A_TEST, "AAAA").await;
    assert_eq!(data(&aaaa), vec![zone::A_TEST_V6]);
    let (txt, _) = ask(&resolver, zone::TXT_TEST, "TXT").await;
    assert_eq!(data(&txt), vec![zone::TXT_TEST_VALUE]);
    let (cname, _) = ask(&resolver, zone::CNAME_TEST, "A").await;
    assert_eq!(cname.records[0].data, zone::CNAME_TEST_TARGET);
    let (nx, _) = ask(&resolver, zone::NX_TEST, "A").await;
    assert_eq!(nx.rcode, "NXDOMAIN");
    // A DoT answer is never truncated: big.test arrives whole.
    let (big, bytes) = ask(&resolver, zone::BIG_TEST, "TXT").await;
    assert_eq!(big.records.len(), zone::BIG_TEST_RECORDS);
    assert!(bytes.len() > 512);

    let stats = resolver.stats();
    assert_eq!(
        stats.connections_opened, 1,
        "one connection for all queries"
    );
    assert_eq!(stats.handshakes_full, 1);
    assert_eq!(stats.failures(), 0);
    assert_eq!(
        host.protected.load(Ordering::SeqCst),
        1,
        "every socket protected"
    );
    assert!(host.events().iter().any(|e| matches!(
        e,
        Event::ServerValidated {
            authenticated: true,
            ..
        }
    )));
}

#[tokio::test]
async fn strict_with_pin_only_works_without_name_or_ca() {
    let Some(server) = start_unbound(UnboundOptions::default()) else {
        return;
    };
    // The leaf is not trusted by anything; its pin alone authenticates it.
    let config = Config {
        upstream: custom_upstream(server.dot_addr(), None, vec![server.leaf_pin()]),
        ..strict_with_ca(&server)
    };
    let config = Config {
        extra_ca_pem: None,
        ..config
    };
    let resolver = Resolver::new(&config, Arc::new(dotcore::NoHost)).unwrap();
    let (a, _) = ask(&resolver, zone::A_TEST, "A").await;
    assert_eq!(data(&a), vec![zone::A_TEST_V4]);
}

#[tokio::test]
async fn strict_with_ca_pin_matches_any_certificate_in_the_chain() {
    let Some(server) = start_unbound(UnboundOptions {
        send_chain: true,
        ..UnboundOptions::default()
    }) else {
        return;
    };
    let config = Config {
        upstream: custom_upstream(server.dot_addr(), Some("dot.test"), vec![server.ca_pin()]),
        extra_ca_pem: None,
        ..strict_with_ca(&server)
    };
    let resolver = Resolver::new(&config, Arc::new(dotcore::NoHost)).unwrap();
    let (a, _) = ask(&resolver, zone::A_TEST, "A").await;
    assert_eq!(data(&a), vec![zone::A_TEST_V4]);
}

#[tokio::test]
async fn strict_wrong_name_is_servfail_with_zero_cleartext_packets() {
    let Some(server) = start_unbound(UnboundOptions {
        log_queries: true,
        ..UnboundOptions::default()
    }) else {
        return;
    };
    let trap = CleartextTrap::new();
    let config = Config {
        upstream: custom_upstream(server.dot_addr(), Some("wrong.test"), vec![]),
        network_resolvers: vec![trap.addr, server.plain_addr()],
        ..strict_with_ca(&server)
    };
    let resolver = Resolver::new(&config, Arc::new(dotcore::NoHost)).unwrap();
    for _ in 0..3 {
        let (a, _) = ask(&resolver, zone::A_TEST, "A").await;
        assert_eq!(a.rcode, "SERVFAIL");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats = resolver.stats();
    assert_eq!(stats.fail_tls, 3);
    assert_eq!(stats.cleartext_queries, 0);
    assert_eq!(trap.count(), 0, "no packet reached the clear-text resolver");
    assert_eq!(
        server.count_log("a.test. A IN"),
        0,
        "no query reached unbound on any port"
    );
}

#[tokio::test]
async fn strict_wrong_pin_is_servfail() {
    let Some(server) = start_unbound(UnboundOptions::default()) else {
        return;
    };
    let other = TestPki::generate();
    let trap = CleartextTrap::new();
    let config = Config {
        upstream: custom_upstream(server.dot_addr(), Some("dot.test"), vec![other.leaf.pin()]),
        network_resolvers: vec![trap.addr],
        ..strict_with_ca(&server)
    };
    let resolver = Resolver::new(&config, Arc::new(dotcore::NoHost)).unwrap();
    let (a, _) = ask(&resolver, zone::A_TEST, "A").await;
    assert_eq!(a.rcode, "SERVFAIL");
    assert_eq!(resolver.stats().fail_tls, 1);
    assert_eq!(trap.count(), 0);
}

#[tokio::test]
async fn strict_server_down_is_servfail_with_zero_cleartext_packets() {
    let Some(mut server) = start_unbound(UnboundOptions::default()) else {
        return;
    };
    let trap = CleartextTrap::new();
    let config = Config {
        network_resolvers: vec![trap.addr],
        ..strict_with_ca(&server)
    };
    server.stop();
    let resolver = Resolver::new(&config, Arc::new(dotcore::NoHost)).unwrap();
    let (a, _) = ask(&resolver, zone::A_TEST, "A").await;
    assert_eq!(a.rcode, "SERVFAIL");
    assert_eq!(resolver.stats().fail_connect, 1);
    assert_eq!(trap.count(), 0);
}

#[tokio::test]
async fn opportunistic_with_853_closed_answers_in_cleartext_then_returns_to_tls() {
    let Some(mut server) = start_unbound(UnboundOptions::default()) else {
        return;
    };
    let dot_addr = server.dot_addr();
    // Same server without its TLS listener: port 853-equivalent refuses.
    server.stop();
    let plain_only = start_unbound(UnboundOptions {
        tls: false,
        ..UnboundOptions::default()
    })
    .unwrap();
    let host = Arc::new(RecordingHost::default());
    let config = Config {
        upstream: custom_upstream(dot_addr, Some("dot.test"), vec![]),
        mode: Mode::Opportunistic,
        network_resolvers: vec![plain_only.plain_addr()],
        ..strict_with_ca(&server)
    };
    let resolver = Resolver::new(&config, host.clone()).unwrap();
    let (a, _) = ask(&resolver, zone::A_TEST, "A").await;
    assert_eq!(data(&a), vec![zone::A_TEST_V4]);
    let (big, _) = ask(&resolver, zone::BIG_TEST, "TXT").await;
    assert_eq!(
        big.records.len(),
        zone::BIG_TEST_RECORDS,
        "truncated UDP answer retried over TCP"
    );
    let stats = resolver.stats();
    assert_eq!(stats.cleartext_queries, 2);
    // Every clear-text socket goes through the host's protect hook too (on
    // Android it must not loop back into the VPN): the refused DoT probe,
    // one UDP socket per query and the TCP retry of the truncated answer.
    assert_eq!(host.protected.load(Ordering::SeqCst), 1 + 2 + 1);
    assert!(resolver.in_cleartext_fallback());
    assert!(host
        .events()
        .iter()
        .any(|e| matches!(e, Event::CleartextFallback { .. })));

    // DoT comes back on the same ports; a network change re-probes at once.
    server.restart().unwrap();
    resolver
        .network_changed(vec![plain_only.plain_addr()])
        .await;
    for _ in 0..100 {
        if !resolver.in_cleartext_fallback() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!resolver.in_cleartext_fallback(), "back on DoT");
    let (txt, _) = ask(&resolver, zone::TXT_TEST, "TXT").await;
    assert_eq!(data(&txt), vec![zone::TXT_TEST_VALUE]);
    let stats = resolver.stats();
    assert_eq!(stats.cleartext_queries, 2, "no more clear text");
    assert!(stats.upstream_queries >= 1);
    assert!(host.events().contains(&Event::TlsRestored));
    assert!(host.events().iter().any(|e| matches!(
        e,
        Event::ServerValidated {
            authenticated: true,
            ..
        }
    )));
}

#[tokio::test]
async fn opportunistic_records_unauthenticated_servers() {
    let Some(server) = start_unbound(UnboundOptions::default()) else {
        return;
    };
    let host = Arc::new(RecordingHost::default());
    // No CA, no pin: TLS works but cannot authenticate.
    let config = Config {
        mode: Mode::Opportunistic,
        extra_ca_pem: None,
        network_resolvers: vec![server.plain_addr()],
        ..strict_with_ca(&server)
    };
    let resolver = Resolver::new(&config, host.clone()).unwrap();
    // The first query goes in clear text while the probe validates DoT.
    let (a, _) = ask(&resolver, zone::A_TEST, "A").await;
    assert_eq!(data(&a), vec![zone::A_TEST_V4]);
    for _ in 0..100 {
        if !resolver.in_cleartext_fallback() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!resolver.in_cleartext_fallback(), "validated");
    let (txt, _) = ask(&resolver, zone::TXT_TEST, "TXT").await;
    assert_eq!(data(&txt), vec![zone::TXT_TEST_VALUE]);
    let stats = resolver.stats();
    assert_eq!(
        stats.cleartext_queries, 1,
        "then encrypted, unauthenticated"
    );
    assert!(stats.upstream_queries >= 1, "{stats:?}");
    assert!(host.events().iter().any(|e| matches!(
        e,
        Event::ServerValidated {
            authenticated: false,
            ..
        }
    )));
}

#[tokio::test]
async fn thousand_concurrent_queries_share_one_connection_and_handshake() {
    let Some(server) = start_unbound(UnboundOptions::default()) else {
        return;
    };
    let resolver = Resolver::new(&strict_with_ca(&server), Arc::new(dotcore::NoHost)).unwrap();
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let r = resolver.clone();
            tokio::spawn(async move { ask(&r, &format!("q{i}.bench."), "A").await })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let (a, _) = t.await.unwrap();
        assert_eq!(a.records.len(), 1, "query {i}");
        assert_eq!(a.records[0].name, format!("q{i}.bench."));
        assert_eq!(a.records[0].data, zone::BENCH_V4);
    }
    let stats = resolver.stats();
    assert_eq!(stats.handshakes_full, 1);
    assert_eq!(stats.connections_opened, 1);
    assert_eq!(stats.upstream_queries, 1000);
    assert_eq!(stats.failures(), 0);
}

#[tokio::test]
async fn session_is_resumed_after_idle_close() {
    let Some(server) = start_unbound(UnboundOptions::default()) else {
        return;
    };
    let config = Config {
        idle: IdlePolicy {
            interactive: Duration::from_millis(200),
            ..IdlePolicy::default()
        },
        ..strict_with_ca(&server)
    };
    let resolver = Resolver::new(&config, Arc::new(dotcore::NoHost)).unwrap();
    ask(&resolver, "r1.bench.", "A").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(resolver.stats().connections_open_now, 0, "closed when idle");
    let (a, _) = ask(&resolver, "r2.bench.", "A").await;
    assert_eq!(data(&a), vec![zone::BENCH_V4]);
    let stats = resolver.stats();
    assert_eq!(stats.connections_opened, 2);
    assert_eq!(stats.handshakes_full, 1);
    assert_eq!(stats.handshakes_resumed, 1, "second handshake resumed");
}

#[tokio::test]
async fn cache_answers_repeats_with_aged_ttls_and_expires() {
    let Some(server) = start_unbound(UnboundOptions {
        log_queries: true,
        ..UnboundOptions::default()
    }) else {
        return;
    };
    let resolver = Resolver::new(&strict_with_ca(&server), Arc::new(dotcore::NoHost)).unwrap();
    let (first, _) = ask(&resolver, zone::A_TEST, "A").await;
    // Case differs: same cache entry.
    let (second, _) = ask(&resolver, "A.TeSt.", "A").await;
    assert_eq!(data(&first), data(&second));
    let stats = resolver.stats();
    assert_eq!(stats.cache_hits, 1);
    assert_eq!(stats.upstream_queries, 1);
    // Negative answers are cached too (RFC 2308).
    ask(&resolver, zone::NX_TEST, "A").await;
    let (nx, _) = ask(&resolver, zone::NX_TEST, "A").await;
    assert_eq!(nx.rcode, "NXDOMAIN");
    assert_eq!(resolver.stats().cache_hits, 2);
    // short.test has TTL 2: aged when served, gone after it.
    ask(&resolver, zone::SHORT_TEST, "A").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (aged, _) = ask(&resolver, zone::SHORT_TEST, "A").await;
    assert_eq!(aged.records[0].ttl, zone::SHORT_TEST_TTL - 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ask(&resolver, zone::SHORT_TEST, "A").await;
    let stats = resolver.stats();
    assert_eq!(stats.cache_hits, 3);
    assert_eq!(stats.upstream_queries, 4);
    assert!(server.wait_for_log("short.test. A IN", Duration::from_secs(2)));
    assert_eq!(
        server.count_log("short.test. A IN"),
        2,
        "unbound saw two fetches"
    );
}

#[tokio::test]
async fn identical_concurrent_queries_are_coalesced() {
    let Some(server) = start_unbound(UnboundOptions::default()) else {
        return;
    };
    let resolver = Resolver::new(&strict_with_ca(&server), Arc::new(dotcore::NoHost)).unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let r = resolver.clone();
            tokio::spawn(async move { ask(&r, "same.bench.", "A").await })
        })
        .collect();
    for t in tasks {
        assert_eq!(data(&t.await.unwrap().0), vec![zone::BENCH_V4]);
    }
    let stats = resolver.stats();
    assert_eq!(stats.upstream_queries, 1);
    assert_eq!(stats.coalesced + stats.cache_hits, 49);
    assert!(stats.coalesced > 0);
}

/// The question of a response, as raw bytes (name, type, class).
fn question_bytes(msg: &[u8]) -> Vec<u8> {
    let layout = dotcore::internals::wire::Layout::parse(msg).unwrap();
    msg[layout.question].to_vec()
}

#[tokio::test]
async fn answers_from_cache_and_coalescing_keep_each_clients_name_case() {
    let Some(server) = start_unbound(UnboundOptions::default()) else {
        return;
    };
    let resolver = Resolver::new(&strict_with_ca(&server), Arc::new(dotcore::NoHost)).unwrap();
    // Coalesced: the same name in four spellings at once, one upstream query.
    let spellings = ["case.bench.", "CASE.BENCH.", "cAsE.bEnCh.", "Case.Bench."];
    let tasks: Vec<_> = spellings
        .iter()
        .map(|name| {
            let r = resolver.clone();
            let name = name.to_string();
            tokio::spawn(async move {
                let query = build_query(&name, "A").unwrap();
                let answer = r.resolve(&query).await;
                (query, answer)
            })
        })
        .collect();
    for t in tasks {
        let (query, answer) = t.await.unwrap();
        assert_eq!(question_bytes(&answer), question_bytes(&query));
        assert_eq!(data(&decode_answer(&answer).unwrap()), vec![zone::BENCH_V4]);
    }
    assert_eq!(resolver.stats().upstream_queries, 1);
    // From the cache, in yet another spelling.
    let query = build_query("CaSe.BeNcH.", "A").unwrap();
    let answer = resolver.resolve(&query).await;
    assert_eq!(question_bytes(&answer), question_bytes(&query));
    assert_eq!(resolver.stats().upstream_queries, 1);
    assert!(resolver.stats().cache_hits >= 1);
}

#[tokio::test]
async fn network_change_drops_connections_and_recovers() {
    let Some(mut server) = start_unbound(UnboundOptions::default()) else {
        return;
    };
    let resolver = Resolver::new(&strict_with_ca(&server), Arc::new(dotcore::NoHost)).unwrap();
    ask(&resolver, "n1.bench.", "A").await;
    assert_eq!(resolver.stats().connections_open_now, 1);
    resolver.network_changed(vec![]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(resolver.stats().connections_open_now, 0);
    assert_eq!(resolver.cache_len(), 0, "cache flushed");
    // The upstream restarts under the engine; the next query reconnects.
    server.restart().unwrap();
    let (a, _) = ask(&resolver, "n2.bench.", "A").await;
    assert_eq!(data(&a), vec![zone::BENCH_V4]);
    assert_eq!(resolver.stats().connections_opened, 2);
}

#[tokio::test]
async fn server_restart_mid_connection_is_retried_on_a_fresh_connection() {
    let Some(mut server) = start_unbound(UnboundOptions::default()) else {
        return;
    };
    let resolver = Resolver::new(&strict_with_ca(&server), Arc::new(dotcore::NoHost)).unwrap();
    ask(&resolver, "m1.bench.", "A").await;
    server.restart().unwrap();
    let (a, _) = ask(&resolver, "m2.bench.", "A").await;
    assert_eq!(data(&a), vec![zone::BENCH_V4]);
    let stats = resolver.stats();
    assert_eq!(stats.connections_opened, 2);
    assert_eq!(stats.failures(), 0);
}

#[tokio::test]
async fn malformed_client_messages_get_formerr_not_silence() {
    let Some(server) = start_unbound(UnboundOptions::default()) else {
        return;
    };
    let resolver = Resolver::new(&strict_with_ca(&server), Arc::new(dotcore::NoHost)).unwrap();
    for junk in [&b""[..], &[0u8; 3], &[0xFF; 40]] {
        let r = resolver.resolve(junk).await;
        assert_eq!(
            dotcore::internals::wire::rcode(&r),
            dotcore::internals::wire::RCODE_FORMERR
        );
    }
    assert_eq!(resolver.stats().fail_bad_query, 3);
    assert_eq!(resolver.stats().upstream_queries, 0);
}

#[tokio::test]
async fn failover_to_a_working_address_and_prefer_it_afterwards() {
    let Some(server) = start_unbound(UnboundOptions::default()) else {
        return;
    };
    // A bound but not listening port: connects are refused at once.
    let refusing = dotcore_tests::fault_server::refused_addr().unwrap();
    let host = Arc::new(RecordingHost::default());
    let config = Config {
        upstream: Upstream::Custom(vec![CustomServer {
            name: Some("dot.test".into()),
            addresses: vec![refusing.addr().to_string(), server.dot_addr().to_string()],
            port: 0,
            pins: vec![],
        }]),
        idle: IdlePolicy {
            interactive: Duration::from_millis(100),
            ..IdlePolicy::default()
        },
        ..strict_with_ca(&server)
    };
    let resolver = Resolver::new(&config, host.clone()).unwrap();
    let (a, _) = ask(&resolver, "f1.bench.", "A").await;
    assert_eq!(data(&a), vec![zone::BENCH_V4]);
    assert_eq!(
        host.protected.load(Ordering::SeqCst),
        2,
        "tried both addresses"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (a, _) = ask(&resolver, "f2.bench.", "A").await;
    assert_eq!(data(&a), vec![zone::BENCH_V4]);
    assert_eq!(
        host.protected.load(Ordering::SeqCst),
        3,
        "the working address is tried first after a failure"
    );
    assert!(host.events().iter().all(|e| match e {
        Event::ServerValidated { address, .. } => *address == server.dot_addr(),
        _ => true,
    }));
    assert_eq!(resolver.stats().failures(), 0);
}
