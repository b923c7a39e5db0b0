//! [`DotEngine`]: the engine object Kotlin holds, and [`HostDelegate`]: what
//! Kotlin does for it.

use std::os::fd::{FromRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::config::{EngineConfig, NetworkInfo, PowerState};
use crate::error::DotError;

/// What the platform does for the engine; the app implements it (in the
/// VpnService). Calls come on the engine's own thread (except `Started`,
/// delivered on the thread running the constructor, and `Stopped`, on the
/// thread calling `stop()`/`close()`) and must return quickly: post to a
/// Handler or a channel, do not block, do not call `stop()` from them.
///
/// Exceptions thrown by an implementation never unwind into the engine
/// (they reach it as an error value, and Rust panics are caught too): a
/// throwing `protectSocket` counts as "refused", so that connection is not
/// used; a throwing `onEvent` is logged and ignored.
#[uniffi::export(with_foreign)]
pub trait HostDelegate: Send + Sync {
    /// Called with every upstream socket (DoT, and clear-text fallback)
    /// before it connects. Call `VpnService.protect(fd)` and return its
    /// result; `false` (or throwing) aborts that connection, so no query
    /// leaves unprotected. The descriptor stays owned by the engine: do not
    /// close or keep it.
    fn protect_socket(&self, fd: i32) -> Result<bool, DotError>;

    /// An engine event, for the status screen and the query log.
    fn on_event(&self, event: EngineEvent) -> Result<(), DotError>;
}

/// The [`dotcore::Host`] the core sees: forwards to the foreign delegate and
/// keeps its failures (exceptions, panics) on this side of the boundary.
struct DelegateHost {
    delegate: Option<Arc<dyn HostDelegate>>,
}

impl dotcore::Host for DelegateHost {
    fn protect_socket(&self, fd: i32) -> bool {
        let Some(delegate) = &self.delegate else {
            return true;
        };
        match catch_unwind(AssertUnwindSafe(|| delegate.protect_socket(fd))) {
            Ok(Ok(protected)) => protected,
            Ok(Err(e)) => {
                log::warn!("protectSocket({fd}) failed, not using the socket: {e}");
                false
            }
            Err(_) => {
                log::error!("protectSocket({fd}) panicked, not using the socket");
                false
            }
        }
    }

    fn on_event(&self, event: dotcore::Event) {
        let Some(delegate) = &self.delegate else {
            return;
        };
        let event = EngineEvent::from(event);
        match catch_unwind(AssertUnwindSafe(|| delegate.on_event(event))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::warn!("onEvent failed: {e}"),
            Err(_) => log::error!("onEvent panicked"),
        }
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AnswerSource {
    /// The cache.
    Cache,
    /// An identical query already in flight.
    Coalesced,
    /// A DoT server.
    Tls,
    /// Clear-text DNS (opportunistic fallback).
    Cleartext,
    /// No answer: SERVFAIL or FORMERR made by the engine.
    Failed,
}

impl From<dotcore::AnswerSource> for AnswerSource {
    fn from(s: dotcore::AnswerSource) -> Self {
        match s {
            dotcore::AnswerSource::Cache => AnswerSource::Cache,
            dotcore::AnswerSource::Coalesced => AnswerSource::Coalesced,
            dotcore::AnswerSource::Tls => AnswerSource::Tls,
            dotcore::AnswerSource::Cleartext => AnswerSource::Cleartext,
            dotcore::AnswerSource::Failed => AnswerSource::Failed,
        }
    }
}

/// Something the status screen or a log wants to know.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum EngineEvent {
    /// The engine started (delivered during the constructor).
    Started,
    /// The engine stopped; no events follow.
    Stopped,
    /// A TLS connection to a server was established.
    ServerValidated {
        /// Server name (or address when it has none).
        server: String,
        /// `IP:PORT` used.
        address: String,
        /// Whether the server authenticated (always true in strict mode).
        authenticated: bool,
        /// Whether the TLS session was resumed.
        resumed: bool,
    },
    /// No address of a server could be connected to and authenticated.
    /// Sent once per change of failure: queries failing the same way again
    /// send no new event until a `ServerValidated` or a different failure.
    ServerFailed {
        /// Server name.
        server: String,
        /// Why, for people, e.g. "certificate is not valid for dot.test (it
        /// names other.example)". Wording may change between releases;
        /// decide on `kind`.
        reason: String,
        /// `IP:PORT` the failure happened on (of the addresses tried, the
        /// one that got furthest).
        #[uniffi(default = "")]
        address: String,
        /// Stable snake_case name of the failure's kind, e.g.
        /// "connection_refused", "certificate_name_mismatch",
        /// "pin_mismatch", "answer_timed_out" (the list is in
        /// docs/kotlin-api.md).
        #[uniffi(default = "")]
        kind: String,
    },
    /// Opportunistic mode answers in clear text until DoT works again.
    CleartextFallback {
        /// Why DoT is not used.
        reason: String,
        /// Milliseconds until the next DoT probe.
        retry_in_millis: i64,
    },
    /// Opportunistic mode is back on DoT.
    TlsRestored,
    /// The TUN device passed to `start` went away (its interface was torn
    /// down), so the engine no longer answers on it. Not sent after
    /// `stop()`. The engine keeps running; `start` accepts a new device
    /// from the moment this is delivered, also from inside `onEvent`.
    TunClosed {
        /// What the device reported, for people.
        reason: String,
    },
    /// One answered query (only with `EngineConfig.queryLog`).
    Query {
        /// Query name, e.g. "example.com.".
        name: String,
        /// Query type number (1 = A, 28 = AAAA, ...).
        qtype: i32,
        /// Response code sent (0 = NOERROR, 2 = SERVFAIL, 3 = NXDOMAIN).
        rcode: i32,
        /// Where the answer came from.
        source: AnswerSource,
        /// Time to answer, microseconds.
        latency_micros: i64,
    },
}

fn saturating_i64(v: u128) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl From<dotcore::Event> for EngineEvent {
    fn from(e: dotcore::Event) -> Self {
        use dotcore::Event as E;
        match e {
            E::Started => EngineEvent::Started,
            E::Stopped => EngineEvent::Stopped,
            E::ServerValidated {
                server,
                address,
                authenticated,
                resumed,
            } => EngineEvent::ServerValidated {
                server,
                address: address.to_string(),
                authenticated,
                resumed,
            },
            E::ServerFailed {
                server,
                address,
                failure,
            } => EngineEvent::ServerFailed {
                server,
                reason: failure.text,
                address: address.to_string(),
                kind: failure.kind.as_str().to_string(),
            },
            E::CleartextFallback { reason, retry_in } => EngineEvent::CleartextFallback {
                reason,
                retry_in_millis: saturating_i64(retry_in.as_millis()),
            },
            E::TlsRestored => EngineEvent::TlsRestored,
            E::TunClosed { reason } => EngineEvent::TunClosed { reason },
            E::Query {
                name,
                qtype,
                rcode,
                source,
                latency,
            } => EngineEvent::Query {
                name,
                qtype: i32::from(qtype),
                rcode: i32::from(rcode),
                source: source.into(),
                latency_micros: saturating_i64(latency.as_micros()),
            },
        }
    }
}

/// The engine's counters (all since the engine was created).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct EngineStats {
    /// Queries received (TUN and `resolve`/`lookup`).
    pub queries: i64,
    /// Answered from the cache.
    pub cache_hits: i64,
    /// Joined an identical query in flight.
    pub coalesced: i64,
    /// Queries sent over DoT, retries included.
    pub upstream_queries: i64,
    /// Queries answered in clear text (opportunistic fallback).
    pub cleartext_queries: i64,
    /// Queries retried on a fresh connection.
    pub retries: i64,
    /// All failures (sum of the `fail*` counters).
    pub failures: i64,
    /// Failures: no server could be connected to (or the socket was not
    /// protected).
    pub fail_connect: i64,
    /// Failures: TLS or authentication (wrong pin, untrusted certificate).
    pub fail_tls: i64,
    /// Failures: timeout.
    pub fail_timeout: i64,
    /// Failures: connection lost, retry failed too.
    pub fail_connection_lost: i64,
    /// Failures: invalid response from the server.
    pub fail_bad_response: i64,
    /// Failures: malformed query from the client.
    pub fail_bad_query: i64,
    /// Failures: clear-text fallback failed.
    pub fail_cleartext: i64,
    /// Failures: the OS random generator failed, so no unguessable query ID
    /// could be drawn and the query was not sent.
    pub fail_random: i64,
    /// Full TLS handshakes.
    pub handshakes_full: i64,
    /// Resumed TLS handshakes.
    pub handshakes_resumed: i64,
    /// TCP connections opened.
    pub connections_opened: i64,
    /// Connections open now.
    pub connections_open_now: i64,
    /// Total time connections were open, milliseconds.
    pub connection_open_millis: i64,
    /// Bytes sent upstream (DoT and clear text).
    pub bytes_sent: i64,
    /// Bytes received from upstream.
    pub bytes_received: i64,
    /// Mean answer latency, microseconds (0 before the first answer).
    pub mean_latency_micros: i64,
    /// Upper bounds of the latency histogram buckets, milliseconds.
    pub latency_buckets_ms: Vec<i64>,
    /// Latency histogram: `latencyHistogram[i]` counts answers of at most
    /// `latencyBucketsMs[i]` ms; the extra last bucket counts slower ones.
    pub latency_histogram: Vec<i64>,
    /// Every address of every configured server, in configured order, with
    /// why it is failing (if it is).
    #[uniffi(default = [])]
    pub servers: Vec<UpstreamStatus>,
}

/// Why a server address failed.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct ServerFailure {
    /// Stable snake_case name of the kind: "connection_refused",
    /// "connect_timed_out", "network_unreachable", "connect_failed",
    /// "tls_alert", "tls_version", "certificate_name_mismatch",
    /// "certificate_expired", "certificate_not_yet_valid",
    /// "certificate_wrong_purpose", "certificate_untrusted",
    /// "certificate_is_ca", "certificate_invalid", "pin_mismatch",
    /// "protocol_error", "answer_timed_out", "connection_lost".
    pub kind: String,
    /// What happened, for people (wording may change between releases).
    pub text: String,
    /// Whether the user can fix it in the server's settings (name, CA,
    /// pins), as opposed to a network or server problem.
    pub authentication: bool,
}

impl From<dotcore::failure::ServerFailure> for ServerFailure {
    fn from(f: dotcore::failure::ServerFailure) -> Self {
        ServerFailure {
            kind: f.kind.as_str().to_string(),
            authentication: f.kind.is_authentication(),
            text: f.text,
        }
    }
}

/// The stable names of every failure kind the engine reports (`kind` of
/// [`ServerFailure`] and of `EngineEvent.ServerFailed`), so an app can check
/// that it has something to say about each.
#[uniffi::export]
pub fn server_failure_kinds() -> Vec<String> {
    dotcore::failure::ServerFailureKind::ALL
        .iter()
        .map(|k| k.as_str().to_string())
        .collect()
}

/// One address of one configured server, as the engine last saw it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct UpstreamStatus {
    /// Server name (or address when it has none), as in `ServerValidated`.
    pub server: String,
    /// `IP:PORT`.
    pub address: String,
    /// Whether a connection to this address is open now.
    pub connected: bool,
    /// Whether the last handshake here authenticated the server (always
    /// true in strict mode); null before the first handshake.
    pub authenticated: Option<bool>,
    /// Why this address is failing; null while it works or was not tried.
    /// Cleared by a successful handshake or an answer there, and by a
    /// network change.
    pub last_failure: Option<ServerFailure>,
}

impl From<dotcore::stats::ServerStatus> for UpstreamStatus {
    fn from(s: dotcore::stats::ServerStatus) -> Self {
        UpstreamStatus {
            server: s.server,
            address: s.address.to_string(),
            connected: s.connected,
            authenticated: s.authenticated,
            last_failure: s.last_failure.map(ServerFailure::from),
        }
    }
}

/// The mirror of the core's counters. The snapshot is destructured without
/// `..`, so a counter added to the core does not compile here until the
/// FFI carries it too (or says here why not).
impl From<dotcore::StatsSnapshot> for EngineStats {
    fn from(s: dotcore::StatsSnapshot) -> Self {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let failures = n(s.failures());
        let mean_latency_micros = n(s.mean_latency_micros());
        let dotcore::StatsSnapshot {
            queries,
            cache_hits,
            coalesced,
            upstream_queries,
            cleartext_queries,
            retries,
            fail_connect,
            fail_tls,
            fail_timeout,
            fail_connection_lost,
            fail_bad_response,
            fail_bad_query,
            fail_cleartext,
            fail_random,
            handshakes_full,
            handshakes_resumed,
            connections_opened,
            bytes_sent,
            bytes_received,
            connection_open_millis,
            connections_open_now,
            latency_histogram,
            // Carried as its mean: a total of microseconds means nothing on
            // a status screen.
            latency_micros_total: _,
            servers,
        } = s;
        EngineStats {
            queries: n(queries),
            cache_hits: n(cache_hits),
            coalesced: n(coalesced),
            upstream_queries: n(upstream_queries),
            cleartext_queries: n(cleartext_queries),
            retries: n(retries),
            failures,
            fail_connect: n(fail_connect),
            fail_tls: n(fail_tls),
            fail_timeout: n(fail_timeout),
            fail_connection_lost: n(fail_connection_lost),
            fail_bad_response: n(fail_bad_response),
            fail_bad_query: n(fail_bad_query),
            fail_cleartext: n(fail_cleartext),
            fail_random: n(fail_random),
            handshakes_full: n(handshakes_full),
            handshakes_resumed: n(handshakes_resumed),
            connections_opened: n(connections_opened),
            connections_open_now: n(connections_open_now),
            connection_open_millis: n(connection_open_millis),
            bytes_sent: n(bytes_sent),
            bytes_received: n(bytes_received),
            mean_latency_micros,
            latency_buckets_ms: dotcore::stats::LATENCY_BUCKETS_MS
                .iter()
                .map(|&b| n(b))
                .collect(),
            latency_histogram: latency_histogram.into_iter().map(n).collect(),
            servers: servers.into_iter().map(UpstreamStatus::from).collect(),
        }
    }
}

/// One answer record, in presentation form.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DnsRecord {
    /// Owner name, e.g. "example.com.".
    pub name: String,
    /// Type mnemonic, e.g. "A".
    pub record_type: String,
    /// TTL, seconds.
    pub ttl_secs: i64,
    /// Data as `dig +short` prints it, e.g. "192.0.2.1".
    pub data: String,
}

/// A decoded answer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DnsAnswer {
    /// Response code mnemonic: "NOERROR", "NXDOMAIN", "SERVFAIL", ...
    pub rcode: String,
    /// The answer section.
    pub records: Vec<DnsRecord>,
}

/// A running DoT engine: one thread with its own event loop, connections to
/// the configured servers, a cache. Every method may be called from any
/// thread. Call `stop()` (or `close()`, which also frees the native object)
/// when done; a stopped engine cannot be restarted.
#[derive(uniffi::Object)]
pub struct DotEngine {
    engine: dotcore::Engine,
    stopped: AtomicBool,
}

impl std::fmt::Debug for DotEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DotEngine")
            .field("stopped", &self.stopped.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl DotEngine {
    fn ensure_running(&self) -> Result<(), DotError> {
        if self.stopped.load(Ordering::Acquire) {
            Err(DotError::Stopped)
        } else {
            Ok(())
        }
    }
}

#[uniffi::export]
impl DotEngine {
    /// Validates `config` and starts the engine thread; `EngineEvent.Started`
    /// reaches `delegate` before this returns. Throws
    /// `DotException.InvalidConfig` naming the offending field.
    #[uniffi::constructor(default(delegate = None))]
    pub fn new(
        config: EngineConfig,
        delegate: Option<Arc<dyn HostDelegate>>,
    ) -> Result<Arc<DotEngine>, DotError> {
        let core = config.to_core()?;
        let host = Arc::new(DelegateHost { delegate });
        let engine = dotcore::Engine::new(&core, host)?;
        Ok(Arc::new(DotEngine {
            engine,
            stopped: AtomicBool::new(false),
        }))
    }

    /// Starts answering DNS packets on the TUN device `tun_fd` (from
    /// `ParcelFileDescriptor.detachFd()`). The engine owns an open
    /// descriptor from this call on, even when the call throws (it is then
    /// closed at once), and closes it on `stop()`. Throws
    /// `DotException.Tun` for a descriptor that is not open (left alone),
    /// `AlreadyStarted` while a device is attached (a device that went away,
    /// its interface deleted, makes room for a new one), `Stopped` after
    /// `stop()`.
    #[allow(unsafe_code)]
    pub fn start(&self, tun_fd: i32) -> Result<(), DotError> {
        // SAFETY: fcntl(F_GETFD) only reads the descriptor flags of the
        // calling process; any integer is a valid argument.
        if tun_fd < 0 || unsafe { libc::fcntl(tun_fd, libc::F_GETFD) } == -1 {
            return Err(DotError::Tun {
                reason: format!("{tun_fd} is not an open file descriptor"),
            });
        }
        // SAFETY: the descriptor is open (checked just above) and the caller
        // transfers ownership of it with this call: on Android it comes from
        // `ParcelFileDescriptor.detachFd()`, after which nothing in the JVM
        // refers to it or closes it. From here the OwnedFd is its only owner
        // and closes it exactly once.
        let fd = unsafe { OwnedFd::from_raw_fd(tun_fd) };
        self.engine.attach_tun(fd)?;
        Ok(())
    }

    /// Stops the engine: closes the TUN descriptor and all connections, ends
    /// the engine thread, delivers `EngineEvent.Stopped`. Blocks up to a few
    /// seconds (not on the main thread); idempotent. Later calls other than
    /// `stats()` throw `DotException.Stopped`.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.engine.stop();
    }

    /// Tells the engine whether the screen is on, off, or the device dozes;
    /// idle connections adopt the new idle timeout at once.
    pub fn set_power_state(&self, state: PowerState) -> Result<(), DotError> {
        self.ensure_running()?;
        self.engine.set_power_state(state.into());
        Ok(())
    }

    /// The device switched networks (or the network's DNS servers changed):
    /// drops connections and cached answers, and in opportunistic mode
    /// probes DoT on the new network. Scoped link-local addresses
    /// ("fe80::1%wlan0", as `InetAddress.hostAddress` prints them) are
    /// skipped: a socket address without the interface cannot reach them.
    /// Throws `InvalidConfig` (field `dns_servers[i]`) for an entry that is
    /// not an IP address.
    pub fn on_network_changed(&self, network: NetworkInfo) -> Result<(), DotError> {
        self.ensure_running()?;
        let mut resolvers = Vec::with_capacity(network.dns_servers.len());
        for (i, server) in network.dns_servers.iter().enumerate() {
            if !server.contains('%') {
                let parsed = dotcore::config::parse_resolver_address(server).map_err(|_| {
                    DotError::setting(
                        format!("dns_servers[{i}]"),
                        format!(
                            "{server:?} is not an IP address (expected IP, IP:PORT or [IPv6]:PORT)"
                        ),
                    )
                })?;
                resolvers.push(parsed);
            }
        }
        log::info!(
            "network changed: {} resolvers ({} scoped skipped), metered={}, validated={}",
            resolvers.len(),
            network.dns_servers.len() - resolvers.len(),
            network.metered,
            network.validated
        );
        self.engine.network_changed(resolvers);
        Ok(())
    }

    /// The counters. Works after `stop()` too (final values).
    pub fn stats(&self) -> EngineStats {
        self.engine.stats().into()
    }

    /// Whether `stop()` has not been called yet.
    pub fn is_running(&self) -> bool {
        !self.stopped.load(Ordering::Acquire)
    }

    /// Answers one DNS query in wire format (RFC 1035 message, no length
    /// prefix). Always yields a response message: the answer, SERVFAIL when
    /// no server could answer (in strict mode: none authenticated), FORMERR
    /// for garbage. Throws only `DotException.Stopped`.
    pub async fn resolve(&self, query: Vec<u8>) -> Result<Vec<u8>, DotError> {
        self.ensure_running()?;
        Ok(self.engine.resolve(query).await)
    }

    /// Looks up `name` (e.g. "example.com") for `record_type` (a mnemonic
    /// such as "A", "AAAA", "TXT", or a number) and decodes the answer.
    /// Throws `InvalidQuery` for a bad name or type.
    #[uniffi::method(default(record_type = "A"))]
    pub async fn lookup(&self, name: String, record_type: String) -> Result<DnsAnswer, DotError> {
        self.ensure_running()?;
        let query = dotcore::message::build_query(&name, &record_type).map_err(|e| {
            DotError::InvalidQuery {
                reason: e.to_string(),
            }
        })?;
        let answer = self.engine.resolve(query).await;
        let decoded =
            dotcore::message::decode_answer(&answer).map_err(|e| DotError::InvalidQuery {
                reason: e.to_string(),
            })?;
        Ok(DnsAnswer {
            rcode: decoded.rcode,
            records: decoded
                .records
                .into_iter()
                .map(|r| DnsRecord {
                    name: r.name,
                    record_type: r.rtype,
                    ttl_secs: i64::from(r.ttl),
                    data: r.data,
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Mode, Upstream};
    use std::sync::Mutex;

    /// Every counter of the core's stats JSON, each a distinct value, is
    /// in `EngineStats` with that value: a counter the FFI drops or takes
    /// from the wrong field fails here. Keys differ only where named.
    #[test]
    fn engine_stats_mirror_every_counter_of_the_core() {
        use serde_json::Value;
        let mut json: Value =
            serde_json::from_str(&dotcore::stats::Stats::default().snapshot().to_json()).unwrap();
        let mut next = 1u64;
        let mut number_every_counter = |v: &mut Value| {
            if v.is_u64() {
                *v = Value::from(next);
                next += 1;
            }
        };
        for (key, value) in json.as_object_mut().unwrap() {
            match value {
                Value::Object(group) => group.values_mut().for_each(&mut number_every_counter),
                _ if key == "latency_histogram" || key == "latency_buckets_ms" => {}
                _ => number_every_counter(value),
            }
        }
        let o = json.as_object().unwrap();
        let c = |k: &str| o[k].as_u64().unwrap();
        let f = |k: &str| o["failures"][k].as_u64().unwrap();
        let core = dotcore::StatsSnapshot {
            queries: c("queries"),
            cache_hits: c("cache_hits"),
            coalesced: c("coalesced"),
            upstream_queries: c("upstream_queries"),
            cleartext_queries: c("cleartext_queries"),
            retries: c("retries"),
            fail_connect: f("connect"),
            fail_tls: f("tls"),
            fail_timeout: f("timeout"),
            fail_connection_lost: f("connection_lost"),
            fail_bad_response: f("bad_response"),
            fail_bad_query: f("bad_query"),
            fail_cleartext: f("cleartext"),
            fail_random: f("random"),
            handshakes_full: c("handshakes_full"),
            handshakes_resumed: c("handshakes_resumed"),
            connections_opened: c("connections_opened"),
            bytes_sent: c("bytes_sent"),
            bytes_received: c("bytes_received"),
            connection_open_millis: c("connection_open_millis"),
            connections_open_now: c("connections_open_now"),
            latency_histogram: vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            latency_micros_total: 2 * c("latency_mean_us"),
            servers: Vec::new(),
        };
        let core_json: Value = serde_json::from_str(&core.to_json()).unwrap();
        let ffi = serde_json::to_value(EngineStats::from(core.clone())).unwrap();
        let ffi = ffi.as_object().unwrap();
        let mut mirrored = std::collections::BTreeSet::new();
        for (key, value) in core_json.as_object().unwrap() {
            match value {
                Value::Object(group) if key == "failures" => {
                    for (kind, count) in group {
                        let name = format!("fail_{kind}");
                        assert_eq!(&ffi[&name], count, "{name}");
                        mirrored.insert(name);
                    }
                }
                _ => {
                    let name = match key.as_str() {
                        "latency_mean_us" => "mean_latency_micros",
                        other => other,
                    };
                    assert_eq!(ffi.get(name), Some(value), "core {key} as FFI {name}");
                    mirrored.insert(name.to_string());
                }
            }
        }
        assert_eq!(
            ffi["failures"],
            core.failures(),
            "the total of the fail_* counters"
        );
        mirrored.insert("failures".into());
        let unmirrored: Vec<&String> = ffi.keys().filter(|k| !mirrored.contains(*k)).collect();
        assert!(
            unmirrored.is_empty(),
            "FFI fields with no core counter: {unmirrored:?}"
        );
    }

    /// A Rust-side delegate that fails in every way a foreign one could.
    struct Hostile {
        panic: bool,
        events: Mutex<Vec<EngineEvent>>,
    }

    impl HostDelegate for Hostile {
        fn protect_socket(&self, _fd: i32) -> Result<bool, DotError> {
            if self.panic {
                panic!("delegate panic (expected by the test)");
            }
            Err(DotError::Delegate {
                reason: "refused".into(),
            })
        }
        fn on_event(&self, event: EngineEvent) -> Result<(), DotError> {
            self.events.lock().unwrap().push(event);
            if self.panic {
                panic!("delegate panic (expected by the test)");
            }
            Err(DotError::Delegate {
                reason: "no".into(),
            })
        }
    }

    fn loopback_config() -> EngineConfig {
        EngineConfig {
            upstream: Upstream::Custom {
                servers: vec![crate::config::CustomServer {
                    name: Some("dot.test".into()),
                    // Discard port on loopback: nothing listens, and the
                    // delegate refuses before any connect anyway.
                    addresses: vec!["127.0.0.1:9".into()],
                    port: 0,
                    pins: vec![],
                }],
            },
            mode: Mode::Strict,
            extra_ca_pem: None,
            cache: None,
            idle: None,
            query_log: false,
            network_resolvers: vec![],
        }
    }

    #[test]
    fn failing_delegates_do_not_take_the_engine_down() {
        for panic in [false, true] {
            let hostile = Arc::new(Hostile {
                panic,
                events: Mutex::new(Vec::new()),
            });
            let engine = DotEngine::new(loopback_config(), Some(hostile.clone())).unwrap();
            let query = dotcore::message::build_query("a.test", "A").unwrap();
            let answer = futures_lite_block_on(engine.resolve(query)).unwrap();
            let decoded = dotcore::message::decode_answer(&answer).unwrap();
            assert_eq!(decoded.rcode, "SERVFAIL");
            assert!(engine.stats().fail_connect >= 1, "{:?}", engine.stats());
            engine.stop();
            let events = hostile.events.lock().unwrap();
            assert_eq!(events.first(), Some(&EngineEvent::Started));
            assert_eq!(events.last(), Some(&EngineEvent::Stopped));
        }
    }

    #[test]
    fn calls_after_stop_fail_cleanly() {
        let engine = DotEngine::new(loopback_config(), None).unwrap();
        engine.stop();
        engine.stop();
        assert!(!engine.is_running());
        assert_eq!(
            engine.set_power_state(PowerState::Idle),
            Err(DotError::Stopped)
        );
        assert_eq!(
            futures_lite_block_on(engine.resolve(vec![0; 12])),
            Err(DotError::Stopped)
        );
        // A descriptor of our own (never 0-2: the test harness uses them).
        let fd = std::os::fd::IntoRawFd::into_raw_fd(std::fs::File::open("/dev/null").unwrap());
        assert_eq!(engine.start(fd), Err(DotError::Stopped));
        // Ownership passed even though start failed: the engine closed it.
        // SAFETY: fcntl(F_GETFD) only reads descriptor flags.
        #[allow(unsafe_code)]
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert_eq!(flags, -1, "the engine did not close the descriptor");
        let _ = engine.stats();
    }

    #[test]
    fn network_change_skips_scoped_addresses_and_names_bad_ones() {
        let engine = DotEngine::new(loopback_config(), None).unwrap();
        let network = |servers: &[&str]| NetworkInfo {
            dns_servers: servers.iter().map(|s| s.to_string()).collect(),
            metered: false,
            validated: true,
        };
        engine
            .on_network_changed(network(&[
                "fe80::1%wlan0",
                "192.0.2.53",
                "[2001:db8::53]:53",
            ]))
            .unwrap();
        match engine.on_network_changed(network(&["fe80::1%wlan0", "192.0.2.53", "dns.example"])) {
            Err(DotError::InvalidConfig { field, reason }) => {
                assert_eq!(field, "dns_servers[2]");
                assert!(reason.contains("dns.example"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn start_rejects_closed_descriptors() {
        let engine = DotEngine::new(loopback_config(), None).unwrap();
        assert!(matches!(engine.start(-1), Err(DotError::Tun { .. })));
        // Far above any descriptor this test process has open.
        assert!(matches!(engine.start(1 << 20), Err(DotError::Tun { .. })));
    }

    /// A minimal executor: the engine's futures need no runtime of their own
    /// (that is what lets Kotlin await them), so a parked thread will do.
    fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
        use std::task::{Context, Poll, Wake, Waker};
        struct Unpark(std::thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut f = std::pin::pin!(f);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "future did not finish"
            );
            std::thread::park_timeout(std::time::Duration::from_millis(100));
        }
    }
}
