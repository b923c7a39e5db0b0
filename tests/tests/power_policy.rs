//! The idle / power-state connection policy, under Tokio's paused clock.
//!
//! No kernel socket is involved: a [`Dialer`] hands the engine one end of an
//! in-memory pipe per dial and runs the fault server's per-connection logic
//! (`serve_stream_with`, a correct server answering 50 ms after each query)
//! on the other end. With the clock paused, time only moves when every task
//! is waiting on a timer, and then jumps straight to the next one, so the
//! TLS handshake takes zero virtual time, every answer takes exactly 50 ms
//! and idle closes happen at exact instants: the counters (connections,
//! full and resumed handshakes, milliseconds connections were open) are
//! asserted exactly.
//!
//! Policy under test: interactive 10 s, idle 3 s, deep idle 0 (close as soon
//! as nothing is pending); an idle connection is closed that long after its
//! last activity (the last answer), and a power-state change applies to an
//! idle connection at once but never cuts a query in flight.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dotcore::host::{BoxStream, DialFuture};
use dotcore::message::build_query;
use dotcore::{
    CacheConfig, Config, CustomServer, Dialer, IdlePolicy, Mode, NoHost, PowerState, Resolver,
    StatsSnapshot, Timeouts, Upstream,
};
use dotcore_tests::fault_server::{
    serve_stream_with, Behaviour, ServeOptions, Stats as ServerStats, TlsIdentity, A_ANSWER,
};
use tokio::time::{sleep, sleep_until, Instant};

const NAME: &str = "dot.test";
/// The simulated round trip: every answer comes this long after its query.
const RTT: Duration = Duration::from_millis(50);
const INTERACTIVE: Duration = Duration::from_secs(10);
const IDLE: Duration = Duration::from_secs(3);

/// Dials by opening a `tokio::io::duplex` pipe and serving its far end with
/// the fault server's correct behaviour; counts dials.
struct PipeDialer {
    identity: TlsIdentity,
    server: Arc<ServerStats>,
    dials: AtomicUsize,
    /// The server's advertised edns-tcp-keepalive timeout (100 ms units).
    keepalive: Option<u16>,
}

impl Dialer for PipeDialer {
    fn dial(&self, _addr: SocketAddr) -> DialFuture<'_> {
        Box::pin(async move {
            self.dials.fetch_add(1, Ordering::SeqCst);
            let (client, server) = tokio::io::duplex(64 * 1024);
            tokio::spawn(serve_stream_with(
                server,
                self.identity.acceptor_for(&Behaviour::Normal),
                Behaviour::Normal,
                ServeOptions {
                    response_delay: RTT,
                    idle_timeout: None,
                    edns_keepalive: self.keepalive,
                    ..ServeOptions::default()
                },
                self.server.clone(),
            ));
            Ok(Box::new(client) as BoxStream)
        })
    }
}

struct Rig {
    resolver: Resolver,
    dialer: Arc<PipeDialer>,
    start: Instant,
    next_name: usize,
}

impl Rig {
    fn new(power_state: PowerState) -> Rig {
        Rig::with_server_keepalive(power_state, None)
    }

    fn with_server_keepalive(power_state: PowerState, keepalive: Option<u16>) -> Rig {
        let identity = TlsIdentity::generate(NAME);
        let config = Config {
            upstream: Upstream::Custom(vec![CustomServer {
                name: Some(NAME.into()),
                // Never reached over the network: the dialer ignores it.
                addresses: vec!["192.0.2.53:853".into()],
                port: 0,
                pins: Vec::new(),
            }]),
            mode: Mode::Strict,
            extra_ca_pem: Some(identity.ca_pem().into()),
            // Every query must go to the server.
            cache: CacheConfig {
                max_entries: 0,
                ..CacheConfig::default()
            },
            idle: IdlePolicy {
                interactive: INTERACTIVE,
                idle: IDLE,
                deep_idle: Duration::ZERO,
            },
            power_state,
            timeouts: Timeouts {
                connect: Duration::from_secs(1),
                handshake: Duration::from_secs(1),
                query: Duration::from_secs(2),
            },
            ..Config::default()
        };
        let dialer = Arc::new(PipeDialer {
            identity,
            server: ServerStats::new(),
            dials: AtomicUsize::new(0),
            keepalive,
        });
        let resolver =
            Resolver::with_dialer(&config, Arc::new(NoHost), dialer.clone()).expect("valid config");
        Rig {
            resolver,
            dialer,
            start: Instant::now(),
            next_name: 0,
        }
    }

    /// Virtual time since the rig was built.
    fn now(&self) -> Duration {
        Instant::now() - self.start
    }

    async fn sleep_until_secs(&self, secs: f64) {
        sleep_until(self.start + Duration::from_secs_f64(secs)).await;
    }

    /// Asks a fresh name and checks the answer; returns the name.
    async fn query(&mut self) -> String {
        self.next_name += 1;
        let name = format!("q{}.power.test", self.next_name);
        let response = self.resolver.resolve(&query(&name)).await;
        assert_answer(&response, &name);
        name
    }

    /// Runs the tasks that are ready (the connection closing, the server
    /// finishing) without letting virtual time move, until `done` holds or
    /// a bounded number of rounds has passed.
    async fn settle(&self, done: impl Fn(&StatsSnapshot) -> bool) -> StatsSnapshot {
        let before = Instant::now();
        for _ in 0..1_000 {
            let s = self.resolver.stats();
            if done(&s) {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(Instant::now(), before, "settling must not advance time");
        self.resolver.stats()
    }

    fn stats(&self) -> StatsSnapshot {
        self.resolver.stats()
    }
}

fn query(name: &str) -> Vec<u8> {
    let mut q = build_query(name, "A").expect("query builds");
    q[..2].copy_from_slice(&0x5A5Au16.to_be_bytes());
    q
}

fn assert_answer(response: &[u8], name: &str) {
    let m = hickory_proto::op::Message::from_vec(response).expect("decodes");
    assert_eq!(m.metadata.id, 0x5A5A);
    assert_eq!(
        u16::from(m.metadata.response_code),
        0,
        "answered, not failed: {m:?}"
    );
    assert_eq!(
        m.queries[0].name().to_ascii().trim_end_matches('.'),
        name,
        "own question"
    );
    assert!(response.ends_with(&A_ANSWER.octets()));
}

fn connections(s: &StatsSnapshot) -> (u64, u64, u64) {
    (
        s.connections_opened,
        s.handshakes_full,
        s.handshakes_resumed,
    )
}

/// After the last close nothing is left: no connection, no task (the
/// server ends with the pipe), no timer (an hour of virtual time changes
/// no counter), and the server saw exactly what the engine sent.
async fn assert_quiescent(rig: &Rig, queries: usize) {
    let s = rig.settle(|s| s.connections_open_now == 0).await;
    assert_eq!(s.connections_open_now, 0);
    for _ in 0..1_000 {
        if tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
            == 0
        {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        0,
        "no connection or server task left"
    );
    let before = rig.stats();
    let at = Instant::now();
    sleep(Duration::from_secs(3600)).await;
    assert_eq!(Instant::now() - at, Duration::from_secs(3600));
    assert_eq!(rig.stats(), before, "nothing happens in an idle hour");
    assert_eq!(before.queries, queries as u64);
    assert_eq!(before.upstream_queries, queries as u64);
    assert_eq!(before.failures(), 0);
    assert_eq!(rig.dialer.server.queries_received(), queries);
    assert_eq!(
        rig.dialer.server.connections_accepted() as u64,
        before.connections_opened
    );
    assert_eq!(
        rig.dialer.dials.load(Ordering::SeqCst) as u64,
        before.connections_opened
    );
}

#[tokio::test(start_paused = true)]
async fn interactive_keeps_the_connection_for_ten_idle_seconds() {
    let mut rig = Rig::new(PowerState::Interactive);
    // 0 s: opens; 5 s and 14 s: reuse (idle 4.95 s and 8.95 s < 10 s);
    // closes at 24.05 s (10 s after the answer at 14.05 s); 40 s: reopens,
    // resumed, and closes at 50.05 s.
    for t in [0.0, 5.0, 14.0, 40.0] {
        rig.sleep_until_secs(t).await;
        rig.query().await;
        assert_eq!(
            rig.now(),
            Duration::from_secs_f64(t) + RTT,
            "answered in one RTT"
        );
    }
    assert_eq!(connections(&rig.stats()), (2, 1, 1));
    assert_eq!(rig.stats().connections_open_now, 1);

    // Just before the second connection's idle timeout it is still open;
    // at the timeout it is closed.
    rig.sleep_until_secs(50.049).await;
    assert_eq!(rig.stats().connections_open_now, 1);
    rig.sleep_until_secs(50.05).await;
    let s = rig.settle(|s| s.connections_open_now == 0).await;
    assert_eq!(s.connections_open_now, 0);
    assert_eq!(connections(&s), (2, 1, 1));
    // Exact: 0 → 24.05 s plus 40 → 50.05 s.
    assert_eq!(s.connection_open_millis, 24_050 + 10_050);
    assert_quiescent(&rig, 4).await;
}

#[tokio::test(start_paused = true)]
async fn interactive_close_happens_exactly_at_the_idle_timeout() {
    let mut rig = Rig::new(PowerState::Interactive);
    rig.query().await;
    // Last activity: the answer at 0.05 s; the close is due at 10.05 s.
    rig.sleep_until_secs(10.049).await;
    let s = rig.stats();
    assert_eq!(s.connections_open_now, 1);
    assert_eq!(s.connection_open_millis, 10_049);
    rig.sleep_until_secs(10.05).await;
    let s = rig.settle(|s| s.connections_open_now == 0).await;
    assert_eq!(s.connections_open_now, 0);
    // Handshake (zero virtual time) + 50 ms RTT + 10 s idle.
    assert_eq!(s.connection_open_millis, 10_050);
    assert_eq!(connections(&s), (1, 1, 0));
    assert_quiescent(&rig, 1).await;
    assert_eq!(rig.stats().connection_open_millis, 10_050);
}

#[tokio::test(start_paused = true)]
async fn a_shorter_server_keepalive_timeout_closes_the_connection_first() {
    // The server advertises 2 s (RFC 7828: 20 units of 100 ms); our
    // interactive timeout is 10 s, so the engine closes at 2.05 s.
    let mut rig = Rig::with_server_keepalive(PowerState::Interactive, Some(20));
    rig.query().await;
    rig.sleep_until_secs(2.049).await;
    assert_eq!(rig.stats().connections_open_now, 1);
    rig.sleep_until_secs(2.05).await;
    let s = rig.settle(|s| s.connections_open_now == 0).await;
    assert_eq!(s.connections_open_now, 0);
    assert_eq!(s.connection_open_millis, 2_050);
    assert_quiescent(&rig, 1).await;
}

#[tokio::test(start_paused = true)]
async fn a_longer_server_keepalive_timeout_does_not_extend_ours() {
    // 60 s advertised, 10 s ours: the close stays at 10.05 s.
    let mut rig = Rig::with_server_keepalive(PowerState::Interactive, Some(600));
    rig.query().await;
    rig.sleep_until_secs(10.049).await;
    assert_eq!(rig.stats().connections_open_now, 1);
    rig.sleep_until_secs(10.05).await;
    let s = rig.settle(|s| s.connections_open_now == 0).await;
    assert_eq!(s.connection_open_millis, 10_050);
    assert_quiescent(&rig, 1).await;
}

#[tokio::test(start_paused = true)]
async fn idle_closes_after_three_idle_seconds() {
    let mut rig = Rig::new(PowerState::Idle);
    // 0 s opens; 2 s reuses (idle 1.95 s); closes at 5.05 s; 6 s reopens
    // (resumed); 7 s reuses; closes at 10.05 s.
    for t in [0.0, 2.0, 6.0, 7.0] {
        rig.sleep_until_secs(t).await;
        rig.query().await;
    }
    assert_eq!(connections(&rig.stats()), (2, 1, 1));
    rig.sleep_until_secs(10.05).await;
    let s = rig.settle(|s| s.connections_open_now == 0).await;
    assert_eq!(s.connections_open_now, 0);
    assert_eq!(s.connection_open_millis, 5_050 + 4_050);
    assert_quiescent(&rig, 4).await;
}

#[tokio::test(start_paused = true)]
async fn deep_idle_closes_as_soon_as_drained() {
    let mut rig = Rig::new(PowerState::DeepIdle);
    for (i, t) in [0.0, 1.0, 2.0].into_iter().enumerate() {
        rig.sleep_until_secs(t).await;
        rig.query().await;
        // Closed right after the answer, without time passing.
        let s = rig.settle(|s| s.connections_open_now == 0).await;
        assert_eq!(s.connections_open_now, 0, "query {i}");
        assert_eq!(s.connections_opened, i as u64 + 1);
    }
    let s = rig.stats();
    // A new connection per query; all but the first resume the session.
    assert_eq!(connections(&s), (3, 1, 2));
    assert_eq!(
        rig.dialer.server.resumed_sessions(),
        vec![false, true, true]
    );
    assert_eq!(s.connection_open_millis, 3 * 50);
    assert_quiescent(&rig, 3).await;
}

#[tokio::test(start_paused = true)]
async fn switch_to_deep_idle_closes_an_idle_connection_at_once() {
    let mut rig = Rig::new(PowerState::Interactive);
    rig.query().await;
    rig.sleep_until_secs(1.0).await;
    assert_eq!(rig.stats().connections_open_now, 1);
    rig.resolver.set_power_state(PowerState::DeepIdle);
    assert_eq!(rig.resolver.power_state(), PowerState::DeepIdle);
    let s = rig.settle(|s| s.connections_open_now == 0).await;
    assert_eq!(s.connections_open_now, 0, "closed without waiting");
    assert_eq!(rig.now(), Duration::from_secs(1));
    assert_eq!(s.connection_open_millis, 1_000);
    assert_eq!(connections(&s), (1, 1, 0));
    assert_quiescent(&rig, 1).await;
}

#[tokio::test(start_paused = true)]
async fn switch_to_deep_idle_keeps_the_connection_until_the_answer() {
    let rig = Rig::new(PowerState::Interactive);
    let resolver = rig.resolver.clone();
    let in_flight = tokio::spawn(async move { resolver.resolve(&query("inflight.test")).await });
    rig.sleep_until_secs(0.010).await;
    assert_eq!(rig.stats().connections_open_now, 1);
    rig.resolver.set_power_state(PowerState::DeepIdle);
    // The switch is seen, but the query is pending: the connection stays.
    let s = rig.settle(|_| false).await;
    assert_eq!(
        s.connections_open_now, 1,
        "not closed under a query in flight"
    );
    let response = in_flight.await.expect("no panic");
    assert_answer(&response, "inflight.test");
    assert_eq!(rig.now(), RTT, "answered in one RTT");
    let s = rig.settle(|s| s.connections_open_now == 0).await;
    assert_eq!(s.connections_open_now, 0, "closed once drained");
    assert_eq!(s.connection_open_millis, 50);
    assert_eq!(connections(&s), (1, 1, 0));
    assert_quiescent(&rig, 1).await;
}

#[tokio::test(start_paused = true)]
async fn switch_back_to_interactive_extends_an_idle_connection() {
    let mut rig = Rig::new(PowerState::Idle);
    rig.query().await;
    // Idle would close at 3.05 s; interactive from 1 s on moves that to
    // 10.05 s (measured from the same last activity).
    rig.sleep_until_secs(1.0).await;
    rig.resolver.set_power_state(PowerState::Interactive);
    rig.sleep_until_secs(9.0).await;
    rig.query().await;
    assert_eq!(connections(&rig.stats()), (1, 1, 0));
    rig.sleep_until_secs(19.05).await;
    let s = rig.settle(|s| s.connections_open_now == 0).await;
    assert_eq!(s.connection_open_millis, 19_050);
    assert_quiescent(&rig, 2).await;
}
