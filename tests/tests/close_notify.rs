//! dotcore ends its TLS sessions with close_notify (RFC 8446 §6.1; RFC 5246
//! §7.2.1 for TLS 1.2) in every way a connection ends on our side: the
//! resolver shutting down, the engine stopping (its runtime ending right
//! after), the CLI exiting, and answering a server that closed first.
//!
//! The fault server tells a clean close from a bare FIN: rustls reads 0
//! bytes after close_notify and reports `UnexpectedEof` without it. All
//! traffic stays on 127.0.0.1; every wait is bounded.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dotcore::message::build_query;
use dotcore::{CacheConfig, Config, CustomServer, Engine, Mode, NoHost, Resolver, Upstream};
use dotcore_tests::dotcore_bin;
use dotcore_tests::fault_server::{Behaviour, FaultServer, Stats, TlsIdentity};

const NAME: &str = "dot.test";

fn config_for(addr: SocketAddr, tls: &TlsIdentity) -> Config {
    Config {
        upstream: Upstream::Custom(vec![CustomServer {
            name: Some(NAME.into()),
            addresses: vec![addr.to_string()],
            port: 0,
            pins: Vec::new(),
        }]),
        mode: Mode::Strict,
        extra_ca_pem: Some(tls.ca_pem().into()),
        cache: CacheConfig {
            max_entries: 0,
            ..CacheConfig::default()
        },
        ..Config::default()
    }
}

fn query(name: &str, id: u16) -> Vec<u8> {
    let mut q = build_query(name, "A").expect("query builds");
    q[..2].copy_from_slice(&id.to_be_bytes());
    q
}

fn is_answer(response: &[u8], id: u16) -> bool {
    response.len() > 12 && response[..2] == id.to_be_bytes() && response[3] & 0x0f == 0
}

/// Waits (at most 3 s) until the server has seen `n` client closes of
/// either kind, then returns (clean, bare).
fn closes_after(stats: &Stats, n: usize) -> (usize, usize) {
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let seen = (stats.client_close_notify(), stats.client_bare_close());
        if seen.0 + seen.1 >= n || Instant::now() > until {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `shutdown` returns only once the close is on the wire: the runtime is
/// dropped right after it, which cancels any task still running.
#[test]
fn resolver_shutdown_sends_close_notify_before_returning() {
    let server_runtime = tokio::runtime::Runtime::new().unwrap();
    let _in_runtime = server_runtime.enter();
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::Normal, tls.clone());
    let client_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    client_runtime.block_on(async {
        let resolver = Resolver::new(&config_for(server.addr(), &tls), Arc::new(NoHost)).unwrap();
        assert!(is_answer(&resolver.resolve(&query("a.test", 7)).await, 7));
        resolver.shutdown().await;
    });
    drop(client_runtime);
    assert_eq!(
        closes_after(&server.stats(), 1),
        (1, 0),
        "clean and bare closes seen by the server"
    );
}

/// The engine's runtime ends right after `stop`, dropping any task that has
/// not finished: the close must be complete before that.
#[test]
fn engine_stop_sends_close_notify_before_its_runtime_ends() {
    let server_runtime = tokio::runtime::Runtime::new().unwrap();
    let _in_runtime = server_runtime.enter();
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::Normal, tls.clone());
    let engine = Engine::new(&config_for(server.addr(), &tls), Arc::new(NoHost)).unwrap();
    let answer = block_on(engine.resolve(query("a.test", 9)));
    assert!(is_answer(&answer, 9));
    engine.stop();
    assert_eq!(closes_after(&server.stats(), 1), (1, 0));
}

/// A server that closes (here after one answer) is answered with our
/// close_notify, not a bare FIN.
#[tokio::test]
async fn a_server_closing_first_gets_close_notify_back() {
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::CloseAfter(1), tls.clone());
    let resolver = Resolver::new(&config_for(server.addr(), &tls), Arc::new(NoHost)).unwrap();
    assert!(is_answer(&resolver.resolve(&query("a.test", 11)).await, 11));
    let stats = server.stats();
    let (clean, bare) = tokio::task::spawn_blocking(move || closes_after(&stats, 1))
        .await
        .unwrap();
    assert_eq!((clean, bare), (1, 0));
    resolver.shutdown().await;
}

#[test]
fn cli_query_exits_after_close_notify() {
    let server_runtime = tokio::runtime::Runtime::new().unwrap();
    let _in_runtime = server_runtime.enter();
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::Normal, tls.clone());
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    tls.write_ca_pem(&ca).unwrap();
    let out = Command::new(dotcore_bin())
        .args(["query", "a.test", "A", "--server"])
        .arg(server.addr().to_string())
        .args(["--name", NAME, "--ca"])
        .arg(&ca)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(closes_after(&server.stats(), 1), (1, 0));
}

/// Runs a future to completion on a throw-away current-thread runtime (the
/// engine's futures run on its own runtime; this only waits for them).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
