//! Counters a UI and a benchmark can read without locking the engine.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use serde::ser::SerializeStruct as _;
use serde::{Serialize, Serializer};
use tokio::time::Instant;

use crate::failure::ServerFailure;

/// Upper bounds (milliseconds) of the latency histogram buckets; a last
/// bucket holds everything slower.
pub const LATENCY_BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

/// Why a query was answered SERVFAIL (or with an error of ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No server could be connected to.
    Connect,
    /// TLS could not be established or the server did not authenticate.
    Tls,
    /// No answer within the query timeout.
    Timeout,
    /// The connection broke and the retry failed too.
    ConnectionLost,
    /// The server sent something that is not a valid answer.
    BadResponse,
    /// The client's query was malformed or unsupported.
    BadQuery,
    /// Clear-text fallback failed.
    Cleartext,
    /// The OS random number generator failed, so no query ID could be drawn
    /// and the query was not sent.
    Random,
}

/// Live counters, shared by all tasks of one resolver.
#[derive(Debug, Default)]
pub struct Stats {
    pub(crate) queries: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
    pub(crate) coalesced: AtomicU64,
    pub(crate) upstream_queries: AtomicU64,
    pub(crate) cleartext_queries: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) fail_connect: AtomicU64,
    pub(crate) fail_tls: AtomicU64,
    pub(crate) fail_timeout: AtomicU64,
    pub(crate) fail_connection_lost: AtomicU64,
    pub(crate) fail_bad_response: AtomicU64,
    pub(crate) fail_bad_query: AtomicU64,
    pub(crate) fail_cleartext: AtomicU64,
    pub(crate) fail_random: AtomicU64,
    pub(crate) handshakes_full: AtomicU64,
    pub(crate) handshakes_resumed: AtomicU64,
    pub(crate) connections_opened: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) connection_micros_closed: AtomicU64,
    pub(crate) latency: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    pub(crate) latency_micros_total: AtomicU64,
    pub(crate) open_connections: Mutex<Vec<(u64, Instant)>>,
}

/// One address of one configured server, as the engine last saw it.
/// Serialised as `server`, `address` (`IP:PORT`), `connected`,
/// `authenticated` (null before a handshake) and `failure` (null, or its
/// `kind` and `reason`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerStatus {
    /// The server's label: its authentication name, or its first address.
    pub server: String,
    /// The address (IP and port).
    pub address: SocketAddr,
    /// Whether a connection to this address is open now.
    pub connected: bool,
    /// Whether the last successful handshake at this address authenticated
    /// the server (always true in strict mode); `None` before the first.
    pub authenticated: Option<bool>,
    /// Why this address last failed, while it is failing: cleared by a
    /// successful handshake or an answer there, and by a network change.
    #[serde(rename = "failure")]
    pub last_failure: Option<ServerFailure>,
}

/// A point-in-time copy of [`Stats`], with the servers' status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// Client queries received.
    pub queries: u64,
    /// Answered from the cache.
    pub cache_hits: u64,
    /// Joined an identical query already in flight.
    pub coalesced: u64,
    /// Queries sent over DoT (retries included).
    pub upstream_queries: u64,
    /// Queries answered in clear text (opportunistic fallback).
    pub cleartext_queries: u64,
    /// Queries retried on a fresh connection.
    pub retries: u64,
    /// Failures: connect.
    pub fail_connect: u64,
    /// Failures: TLS or authentication.
    pub fail_tls: u64,
    /// Failures: timeout.
    pub fail_timeout: u64,
    /// Failures: connection lost twice.
    pub fail_connection_lost: u64,
    /// Failures: invalid response.
    pub fail_bad_response: u64,
    /// Failures: bad client query.
    pub fail_bad_query: u64,
    /// Failures: clear-text fallback.
    pub fail_cleartext: u64,
    /// Failures: no random query ID (the OS generator failed).
    pub fail_random: u64,
    /// Full TLS handshakes.
    pub handshakes_full: u64,
    /// Resumed TLS handshakes.
    pub handshakes_resumed: u64,
    /// TCP connections opened (handshake or not).
    pub connections_opened: u64,
    /// Bytes written to DoT and clear-text sockets (DNS payload with framing).
    pub bytes_sent: u64,
    /// Bytes read from them.
    pub bytes_received: u64,
    /// Total time connections were open, in milliseconds (open ones included).
    pub connection_open_millis: u64,
    /// Connections open now.
    pub connections_open_now: u64,
    /// Latency histogram; bucket `i` counts answers at most
    /// `LATENCY_BUCKETS_MS[i]` ms, the last one everything slower.
    pub latency_histogram: Vec<u64>,
    /// Sum of all answer latencies, in microseconds.
    pub latency_micros_total: u64,
    /// Every address of every configured server, in configured order.
    pub servers: Vec<ServerStatus>,
}

impl StatsSnapshot {
    /// All failures.
    pub fn failures(&self) -> u64 {
        self.fail_connect
            + self.fail_tls
            + self.fail_timeout
            + self.fail_connection_lost
            + self.fail_bad_response
            + self.fail_bad_query
            + self.fail_cleartext
            + self.fail_random
    }

    /// Mean answer latency in microseconds (0 before the first answer).
    pub fn mean_latency_micros(&self) -> u64 {
        let n: u64 = self.latency_histogram.iter().sum();
        self.latency_micros_total.checked_div(n).unwrap_or(0)
    }

    /// The counters as one line of JSON, for `--stats` and benchmarks (the
    /// keys are those of the [`Serialize`] impl).
    pub fn to_json(&self) -> String {
        to_json_line(self)
    }
}

/// The JSON shape scripts read (`scripts/bench/`, the CLI's `--stats`): the
/// counters flat, except the failures grouped under `failures` and the
/// latency as its mean, bucket bounds and histogram.
impl Serialize for StatsSnapshot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("StatsSnapshot", 17)?;
        out.serialize_field("queries", &self.queries)?;
        out.serialize_field("cache_hits", &self.cache_hits)?;
        out.serialize_field("coalesced", &self.coalesced)?;
        out.serialize_field("upstream_queries", &self.upstream_queries)?;
        out.serialize_field("cleartext_queries", &self.cleartext_queries)?;
        out.serialize_field("retries", &self.retries)?;
        out.serialize_field("failures", &FailureCounts::of(self))?;
        out.serialize_field("handshakes_full", &self.handshakes_full)?;
        out.serialize_field("handshakes_resumed", &self.handshakes_resumed)?;
        out.serialize_field("connections_opened", &self.connections_opened)?;
        out.serialize_field("bytes_sent", &self.bytes_sent)?;
        out.serialize_field("bytes_received", &self.bytes_received)?;
        out.serialize_field("connection_open_millis", &self.connection_open_millis)?;
        out.serialize_field("connections_open_now", &self.connections_open_now)?;
        out.serialize_field("latency_mean_us", &self.mean_latency_micros())?;
        out.serialize_field("latency_buckets_ms", &LATENCY_BUCKETS_MS)?;
        out.serialize_field("latency_histogram", &self.latency_histogram)?;
        out.serialize_field("servers", &self.servers)?;
        out.end()
    }
}

/// The `failures` object of the stats JSON: one count per [`FailureKind`].
#[derive(Serialize)]
struct FailureCounts {
    connect: u64,
    tls: u64,
    timeout: u64,
    connection_lost: u64,
    bad_response: u64,
    bad_query: u64,
    cleartext: u64,
    random: u64,
}

impl FailureCounts {
    fn of(s: &StatsSnapshot) -> FailureCounts {
        FailureCounts {
            connect: s.fail_connect,
            tls: s.fail_tls,
            timeout: s.fail_timeout,
            connection_lost: s.fail_connection_lost,
            bad_response: s.fail_bad_response,
            bad_query: s.fail_bad_query,
            cleartext: s.fail_cleartext,
            random: s.fail_random,
        }
    }
}

/// `value` as one line of JSON. Serialising these types cannot fail (no
/// maps with non-string keys, no fallible impls), but a stats line is not
/// worth a panic if that ever changes: the error is reported in the line.
pub(crate) fn to_json_line<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| {
        serde_json::json!({ "error": format!("cannot serialise the stats: {e}") }).to_string()
    })
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn failure(&self, kind: FailureKind) {
        let c = match kind {
            FailureKind::Connect => &self.fail_connect,
            FailureKind::Tls => &self.fail_tls,
            FailureKind::Timeout => &self.fail_timeout,
            FailureKind::ConnectionLost => &self.fail_connection_lost,
            FailureKind::BadResponse => &self.fail_bad_response,
            FailureKind::BadQuery => &self.fail_bad_query,
            FailureKind::Cleartext => &self.fail_cleartext,
            FailureKind::Random => &self.fail_random,
        };
        Stats::add(c, 1);
    }

    /// Counts the failure a client is answered SERVFAIL for, and returns
    /// its kind for the answer.
    pub(crate) fn failed(&self, failure: impl Into<FailureKind>) -> FailureKind {
        let kind = failure.into();
        self.failure(kind);
        kind
    }

    pub(crate) fn record_latency(&self, d: Duration) {
        let ms = d.as_millis() as u64;
        let i = LATENCY_BUCKETS_MS
            .iter()
            .position(|&b| ms < b || (ms == b && d.subsec_nanos() % 1_000_000 == 0))
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        Stats::add(&self.latency[i], 1);
        Stats::add(&self.latency_micros_total, d.as_micros() as u64);
    }

    pub(crate) fn connection_opened(&self, id: u64) {
        Stats::add(&self.connections_opened, 1);
        if let Ok(mut open) = self.open_connections.lock() {
            open.push((id, Instant::now()));
        }
    }

    pub(crate) fn connection_closed(&self, id: u64) {
        if let Ok(mut open) = self.open_connections.lock() {
            if let Some(i) = open.iter().position(|(c, _)| *c == id) {
                let (_, since) = open.swap_remove(i);
                Stats::add(
                    &self.connection_micros_closed,
                    since.elapsed().as_micros() as u64,
                );
            }
        }
    }

    /// Copies the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        let (open_now, open_micros) = match self.open_connections.lock() {
            Ok(open) => (
                open.len() as u64,
                open.iter()
                    .map(|(_, s)| s.elapsed().as_micros() as u64)
                    .sum::<u64>(),
            ),
            Err(_) => (0, 0),
        };
        let g = |c: &AtomicU64| c.load(Relaxed);
        StatsSnapshot {
            queries: g(&self.queries),
            cache_hits: g(&self.cache_hits),
            coalesced: g(&self.coalesced),
            upstream_queries: g(&self.upstream_queries),
            cleartext_queries: g(&self.cleartext_queries),
            retries: g(&self.retries),
            fail_connect: g(&self.fail_connect),
            fail_tls: g(&self.fail_tls),
            fail_timeout: g(&self.fail_timeout),
            fail_connection_lost: g(&self.fail_connection_lost),
            fail_bad_response: g(&self.fail_bad_response),
            fail_bad_query: g(&self.fail_bad_query),
            fail_cleartext: g(&self.fail_cleartext),
            fail_random: g(&self.fail_random),
            handshakes_full: g(&self.handshakes_full),
            handshakes_resumed: g(&self.handshakes_resumed),
            connections_opened: g(&self.connections_opened),
            bytes_sent: g(&self.bytes_sent),
            bytes_received: g(&self.bytes_received),
            connection_open_millis: (g(&self.connection_micros_closed) + open_micros) / 1000,
            connections_open_now: open_now,
            latency_histogram: self.latency.iter().map(g).collect(),
            latency_micros_total: g(&self.latency_micros_total),
            // Filled in by the resolver, which holds the servers.
            servers: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_and_json() {
        let s = Stats::default();
        s.record_latency(Duration::from_micros(500));
        s.record_latency(Duration::from_millis(1));
        s.record_latency(Duration::from_millis(7));
        s.record_latency(Duration::from_secs(60));
        let snap = s.snapshot();
        assert_eq!(snap.latency_histogram[0], 2);
        assert_eq!(snap.latency_histogram[3], 1);
        assert_eq!(*snap.latency_histogram.last().unwrap(), 1);
        let json = snap.to_json();
        assert!(json.starts_with("{\"queries\":0"));
        assert!(json.contains("\"latency_histogram\":[2,0,0,1,"));
    }

    #[test]
    fn the_json_has_the_keys_scripts_read_each_from_its_counter() {
        let snap = StatsSnapshot {
            queries: 1,
            cache_hits: 2,
            coalesced: 3,
            upstream_queries: 4,
            cleartext_queries: 5,
            retries: 6,
            fail_connect: 7,
            fail_tls: 8,
            fail_timeout: 9,
            fail_connection_lost: 10,
            fail_bad_response: 11,
            fail_bad_query: 12,
            fail_cleartext: 13,
            fail_random: 14,
            handshakes_full: 15,
            handshakes_resumed: 16,
            connections_opened: 17,
            bytes_sent: 18,
            bytes_received: 19,
            connection_open_millis: 20,
            connections_open_now: 21,
            latency_histogram: vec![0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            latency_micros_total: 4_000,
            servers: Vec::new(),
        };
        let expected = concat!(
            r#"{"queries":1,"cache_hits":2,"coalesced":3,"upstream_queries":4,"#,
            r#""cleartext_queries":5,"retries":6,"failures":{"connect":7,"tls":8,"#,
            r#""timeout":9,"connection_lost":10,"bad_response":11,"bad_query":12,"#,
            r#""cleartext":13,"random":14},"handshakes_full":15,"handshakes_resumed":16,"#,
            r#""connections_opened":17,"bytes_sent":18,"bytes_received":19,"#,
            r#""connection_open_millis":20,"connections_open_now":21,"latency_mean_us":1000,"#,
            r#""latency_buckets_ms":[1,2,5,10,20,50,100,200,500,1000,2000,5000],"#,
            r#""latency_histogram":[0,3,0,0,0,0,0,0,0,0,0,0,1],"servers":[]}"#
        );
        assert_eq!(snap.to_json(), expected);
    }

    #[test]
    fn servers_in_json_carry_kind_and_reason_escaped() {
        use crate::failure::{ServerFailure, ServerFailureKind};
        let mut snap = Stats::default().snapshot();
        let hostile = "names \"a\\b\"\n\u{1}\u{2028}é";
        snap.servers = vec![
            ServerStatus {
                server: "dot.test".into(),
                address: "127.0.0.1:853".parse().unwrap(),
                connected: false,
                authenticated: None,
                last_failure: Some(ServerFailure::new(ServerFailureKind::PinMismatch, hostile)),
            },
            ServerStatus {
                server: "dot.test".into(),
                address: "[::1]:853".parse().unwrap(),
                connected: true,
                authenticated: Some(true),
                last_failure: None,
            },
        ];
        let json: serde_json::Value = serde_json::from_str(&snap.to_json()).unwrap();
        let servers = json["servers"].as_array().unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0]["address"], "127.0.0.1:853");
        assert_eq!(servers[0]["authenticated"], serde_json::Value::Null);
        assert_eq!(servers[0]["failure"]["kind"], "pin_mismatch");
        assert_eq!(servers[0]["failure"]["reason"], hostile);
        assert_eq!(servers[1]["address"], "[::1]:853");
        assert_eq!(servers[1]["connected"], true);
        assert_eq!(servers[1]["failure"], serde_json::Value::Null);
    }
}
