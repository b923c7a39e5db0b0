//! A query leaves as one TLS record in one write (RFC 7858 §3.4 asks
//! clients to keep messages in as few segments as they can; one write is
//! one syscall on a real socket and one TCP segment for a small query), and
//! queries queued together leave as one record each in a shared write.
//!
//! The engine's stream is wrapped in a counter of write calls and the bytes
//! it writes are parsed as TLS records, over an in-memory pipe to the
//! in-process DoT server, with Tokio's clock paused so nothing else happens
//! between queries.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use dotcore::host::{BoxStream, DialFuture};
use dotcore::message::build_query;
use dotcore::{CacheConfig, Config, CustomServer, Dialer, NoHost, Resolver, Upstream};
use dotcore_tests::fault_server::{
    serve_stream_with, Behaviour, ServeOptions, Stats as ServerStats, TlsIdentity,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// TLS record content type of application data (RFC 8446 §5.1).
const APPLICATION_DATA: u8 = 23;

/// What the engine wrote: the number of write calls, and the bytes.
#[derive(Default)]
struct Written {
    calls: AtomicUsize,
    bytes: Mutex<Vec<u8>>,
}

impl Written {
    /// Content types of the complete TLS records written so far.
    fn record_types(&self) -> Vec<u8> {
        let bytes = self.bytes.lock().unwrap();
        let mut types = Vec::new();
        let mut at = 0;
        while at + 5 <= bytes.len() {
            let len = u16::from_be_bytes([bytes[at + 3], bytes[at + 4]]) as usize;
            if at + 5 + len > bytes.len() {
                break;
            }
            types.push(bytes[at]);
            at += 5 + len;
        }
        types
    }
}

struct CountingStream {
    inner: BoxStream,
    written: Arc<Written>,
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            self.written.calls.fetch_add(1, Ordering::SeqCst);
            self.written
                .bytes
                .lock()
                .unwrap()
                .extend_from_slice(&buf[..n]);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

struct CountingDialer {
    identity: TlsIdentity,
    written: Arc<Written>,
}

impl Dialer for CountingDialer {
    fn dial(&self, _addr: SocketAddr) -> DialFuture<'_> {
        Box::pin(async move {
            let (client, server) = tokio::io::duplex(64 * 1024);
            tokio::spawn(serve_stream_with(
                server,
                self.identity.acceptor_for(&Behaviour::Normal),
                Behaviour::Normal,
                ServeOptions {
                    response_delay: Duration::from_millis(20),
                    idle_timeout: None,
                    edns_keepalive: None,
                    ..ServeOptions::default()
                },
                ServerStats::new(),
            ));
            Ok(Box::new(CountingStream {
                inner: Box::new(client),
                written: self.written.clone(),
            }) as BoxStream)
        })
    }
}

/// A resolver whose only connection is counted, after a first query that
/// paid for the handshake (so later writes are queries only).
async fn counted_resolver() -> (Resolver, Arc<Written>) {
    let identity = TlsIdentity::generate("dot.test");
    let written = Arc::new(Written::default());
    let config = Config {
        upstream: Upstream::Custom(vec![CustomServer {
            name: Some("dot.test".into()),
            addresses: vec!["192.0.2.53:853".into()],
            port: 0,
            pins: vec![identity.spki_pin().to_string()],
        }]),
        cache: CacheConfig {
            max_entries: 0,
            ..CacheConfig::default()
        },
        ..Config::default()
    };
    let dialer = Arc::new(CountingDialer {
        identity,
        written: written.clone(),
    });
    let resolver = Resolver::with_dialer(&config, Arc::new(NoHost), dialer).unwrap();
    resolver
        .resolve(&build_query("first.test", "A").unwrap())
        .await;
    (resolver, written)
}

#[tokio::test(start_paused = true)]
async fn each_query_is_one_tls_record_in_one_write() {
    let (resolver, written) = counted_resolver().await;
    let calls_before = written.calls.load(Ordering::SeqCst);
    let records_before = written.record_types().len();

    const QUERIES: usize = 10;
    for i in 0..QUERIES {
        let answer = resolver
            .resolve(&build_query(&format!("q{i}.test"), "A").unwrap())
            .await;
        assert_eq!(dotcore::internals::wire::rcode(&answer), 0);
    }
    let calls = written.calls.load(Ordering::SeqCst) - calls_before;
    let records = written.record_types();
    let new_records = &records[records_before..];
    assert_eq!(calls, QUERIES, "one write per query");
    assert_eq!(new_records.len(), QUERIES, "one TLS record per query");
    assert!(new_records.iter().all(|&t| t == APPLICATION_DATA));
    assert_eq!(resolver.stats().connections_opened, 1);
}

#[tokio::test(start_paused = true)]
async fn queries_queued_together_share_one_write() {
    let (resolver, written) = counted_resolver().await;
    let calls_before = written.calls.load(Ordering::SeqCst);
    let records_before = written.record_types().len();

    // 20 queries issued in the same instant reach the connection together
    // and leave in fewer writes than queries, each still its own TLS record
    // (a server may read only one query per record: dnsdist 1.7).
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let r = resolver.clone();
            tokio::spawn(async move {
                r.resolve(&build_query(&format!("b{i}.test"), "A").unwrap())
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(dotcore::internals::wire::rcode(&t.await.unwrap()), 0);
    }
    let calls = written.calls.load(Ordering::SeqCst) - calls_before;
    assert!(calls < 20, "batched: {calls} writes for 20 queries");
    let records = written.record_types();
    let new_records = &records[records_before..];
    assert_eq!(new_records.len(), 20, "one TLS record per query");
    assert!(new_records.iter().all(|&t| t == APPLICATION_DATA));
}
