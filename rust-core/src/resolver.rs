//! The resolver: wire-format query in, wire-format answer out.
//!
//! Order of work for one query: validate it; answer from the cache; join an
//! identical query already in flight (inflight.rs); otherwise send it
//! upstream. In strict mode that is DoT to the server pool (pool.rs, which
//! fails over between servers), retrying once on a fresh connection if the
//! connection broke. In opportunistic mode the fallback state machine
//! (fallback.rs) picks DoT or clear text so that no query waits for DoT to
//! come up, and this file runs its probes. Whatever goes wrong, the client
//! gets an answer: SERVFAIL, or FORMERR for a query we cannot read; which
//! failure it is counted as is decided by the `From` impls for
//! `FailureKind` beside each error type.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::cache::Cache;
use crate::cleartext::{Cleartext, CleartextError};
use crate::config::{Config, ConfigError, Mode, Validated};
use crate::fallback::{Decision, Fallback, Notice, Probe, Route};
use crate::host::{AnswerSource, Dialer, Event, Host, TcpDialer};
use crate::inflight::{InFlight, Join};
use crate::policy::PowerState;
use crate::pool::{Pool, PoolParts, ServerConnection};
use crate::stats::{FailureKind, Stats, StatsSnapshot};
use crate::tls::ChainVerifier;
use crate::transport::{ExchangeError, OpenError};
use crate::wire::{self, Query, QueryError, QuestionKey, Response};

/// An answer from upstream, before it is adapted to each client that asked.
struct UpstreamAnswer {
    /// The response as the server sent it (ID still the wire ID), with the
    /// layout the cache and the per-client copies work from.
    response: Response,
    /// Which way it came: DoT or clear text.
    source: AnswerSource,
}

/// One upstream result, shared between coalesced queries.
type Shared = Arc<Result<UpstreamAnswer, FailureKind>>;

/// The DNS-over-TLS resolver. Cheap to clone; all clones share one engine.
///
/// Methods that return futures must run inside a Tokio runtime (the engine
/// spawns one task per connection on it). A current-thread runtime is
/// enough and is what the Android build uses.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    host: Arc<dyn Host>,
    stats: Arc<Stats>,
    cache: Cache,
    pool: Pool,
    /// The network's clear-text resolvers (also the servers of
    /// [`crate::Upstream::NetworkResolvers`]).
    network_resolvers: RwLock<Vec<SocketAddr>>,
    cleartext: Option<Cleartext>,
    fallback: Mutex<Fallback>,
    inflight: InFlight<QuestionKey, Shared>,
    shut_down: AtomicBool,
}

/// How sending over DoT failed.
pub(crate) enum DotFailure {
    /// No server gave a connection.
    Open(OpenError),
    /// The connection gave no answer.
    Exchange(ExchangeError),
}

/// A DoT attempt's failure as its query saw it: the same error counts
/// differently depending on whether the query's time was up.
pub(crate) struct DotOutcome<'a> {
    /// How DoT failed.
    pub(crate) error: &'a DotFailure,
    /// Whether the query's deadline had passed. Connect and handshake
    /// attempts stop at it, so an attempt failing then is the query timing
    /// out, not the server failing.
    pub(crate) ran_out: bool,
}

impl From<DotOutcome<'_>> for FailureKind {
    fn from(outcome: DotOutcome<'_>) -> FailureKind {
        if outcome.ran_out {
            return FailureKind::Timeout;
        }
        match outcome.error {
            DotFailure::Open(e) if e.before_tls() => FailureKind::Connect,
            DotFailure::Open(_) => FailureKind::Tls,
            DotFailure::Exchange(ExchangeError::Timeout) => FailureKind::Timeout,
            DotFailure::Exchange(ExchangeError::Closed) => FailureKind::ConnectionLost,
            DotFailure::Exchange(ExchangeError::BadResponse(_)) => FailureKind::BadResponse,
            DotFailure::Exchange(ExchangeError::Random) => FailureKind::Random,
        }
    }
}

impl Resolver {
    /// A resolver for `config` whose sockets go through `host`.
    pub fn new(config: &Config, host: Arc<dyn Host>) -> Result<Resolver, ConfigError> {
        let dialer = Arc::new(TcpDialer::new(host.clone()));
        Resolver::with_dialer(config, host, dialer)
    }

    /// A resolver whose DoT streams come from `dialer` (tests and trace
    /// replays reach in-process servers this way).
    pub fn with_dialer(
        config: &Config,
        host: Arc<dyn Host>,
        dialer: Arc<dyn Dialer>,
    ) -> Result<Resolver, ConfigError> {
        let Validated {
            config,
            servers,
            extra_roots,
        } = config.validate()?;
        let stats = Arc::new(Stats::default());
        let chain = Arc::new(ChainVerifier::new(&extra_roots));
        let network_resolvers = without_own_addresses(config.network_resolvers.clone());
        let pool = Pool::new(
            &config,
            servers,
            &network_resolvers,
            PoolParts {
                chain,
                dialer,
                host: host.clone(),
                stats: stats.clone(),
            },
        );
        let cleartext = Cleartext::for_mode(
            config.mode,
            host.clone(),
            stats.clone(),
            config.timeouts.connect,
        );
        let inner = Inner {
            cache: Cache::new(config.cache),
            fallback: Mutex::new(Fallback::new(
                config.reprobe.initial,
                config.reprobe.max,
                Instant::now(),
            )),
            pool,
            network_resolvers: RwLock::new(network_resolvers),
            host,
            stats,
            cleartext,
            inflight: InFlight::new(),
            shut_down: AtomicBool::new(false),
            config,
        };
        Ok(Resolver {
            inner: Arc::new(inner),
        })
    }

    /// Answers one DNS query given in wire format. Always returns a
    /// response: the answer, SERVFAIL when no server could give one, or
    /// FORMERR/NOTIMP for a message that is not a standard query.
    pub async fn resolve(&self, query: &[u8]) -> Vec<u8> {
        self.inner.resolve(query).await
    }

    /// Tells the engine the device's power state; idle connections adopt
    /// the new idle timeout at once.
    pub fn set_power_state(&self, state: PowerState) {
        self.inner.pool.set_power_state(state);
    }

    /// The power state last set.
    pub fn power_state(&self) -> PowerState {
        self.inner.pool.power_state()
    }

    /// The device moved to another network with these resolvers: drops
    /// every connection and cached answer, forgets address failures, and in
    /// opportunistic mode takes DoT as unvalidated (queries go in clear text
    /// at once) while a background probe validates it.
    pub async fn network_changed(&self, resolvers: Vec<SocketAddr>) {
        self.inner.network_changed(resolvers).await;
    }

    /// A copy of the counters, with every server address's status (its
    /// last failure while it is failing).
    pub fn stats(&self) -> StatsSnapshot {
        let mut snapshot = self.inner.stats.snapshot();
        snapshot.servers = self.inner.pool.status();
        snapshot
    }

    /// Closes all connections, each with close_notify (waiting for that
    /// briefly), and answers later queries SERVFAIL. Call it before the
    /// runtime ends: a runtime that ends first drops the connections with
    /// a bare FIN.
    pub async fn shutdown(&self) {
        self.inner.shut_down.store(true, Ordering::Release);
        self.inner.pool.close().await;
    }

    /// The mode in force.
    pub fn mode(&self) -> Mode {
        self.inner.config.mode
    }

    /// Number of cached answers.
    pub fn cache_len(&self) -> usize {
        self.inner.cache.len()
    }

    /// Whether opportunistic mode currently answers in clear text: DoT is
    /// not (or no longer) validated on this network. Always false in strict
    /// mode.
    pub fn in_cleartext_fallback(&self) -> bool {
        self.inner.cleartext.is_some()
            && !self
                .inner
                .fallback
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .validated()
    }
}

impl Inner {
    async fn resolve(self: &Arc<Self>, bytes: &[u8]) -> Vec<u8> {
        let started = Instant::now();
        Stats::add(&self.stats.queries, 1);
        let query = match Query::parse(bytes.to_vec()) {
            Ok(q) => q,
            Err(e) => {
                self.stats.failure(FailureKind::BadQuery);
                log::debug!("refused client message: {e}");
                let rcode = match e {
                    QueryError::UnsupportedOpcode(_) => wire::RCODE_NOTIMP,
                    QueryError::UnsupportedEdnsVersion(_) => {
                        return wire::badvers_response(bytes);
                    }
                    _ => wire::RCODE_FORMERR,
                };
                return wire::error_response(bytes, rcode);
            }
        };
        let (response, source) = self.answer(&query).await;
        let latency = started.elapsed();
        if source != AnswerSource::Failed {
            self.stats.record_latency(latency);
        }
        if self.config.query_log {
            self.host.on_event(Event::Query {
                name: query.key.display_name(),
                qtype: query.key.qtype,
                rcode: wire::rcode(&response),
                source,
                latency,
            });
        }
        response
    }

    async fn answer(self: &Arc<Self>, query: &Query) -> (Vec<u8>, AnswerSource) {
        if self.shut_down.load(Ordering::Acquire) {
            return (
                wire::error_response(&query.bytes, wire::RCODE_SERVFAIL),
                AnswerSource::Failed,
            );
        }
        if let Some(hit) = self.cache.get(&query.key) {
            Stats::add(&self.stats.cache_hits, 1);
            return (
                wire::response_for_client(&hit.bytes, &hit.layout, query),
                AnswerSource::Cache,
            );
        }
        let (shared, source) = match self.inflight.join(&query.key) {
            Join::Follower(follower) => match follower.wait().await {
                Some(shared) => {
                    Stats::add(&self.stats.coalesced, 1);
                    (shared, AnswerSource::Coalesced)
                }
                // The leading query was cancelled; ask on our own.
                None => {
                    let shared = Arc::new(self.upstream(query).await);
                    let source = source_of(&shared);
                    (shared, source)
                }
            },
            Join::Leader(leader) => {
                let shared = Arc::new(self.upstream(query).await);
                if let Ok(answer) = shared.as_ref() {
                    self.cache.insert(
                        query.key.clone(),
                        &answer.response.bytes,
                        &answer.response.layout,
                    );
                }
                leader.complete(shared.clone());
                let source = source_of(&shared);
                (shared, source)
            }
        };
        match shared.as_ref() {
            Ok(answer) => (
                wire::response_for_client(&answer.response.bytes, &answer.response.layout, query),
                source,
            ),
            Err(_) => (
                wire::error_response(&query.bytes, wire::RCODE_SERVFAIL),
                AnswerSource::Failed,
            ),
        }
    }

    /// Gets an answer from upstream within the query timeout.
    async fn upstream(self: &Arc<Self>, query: &Query) -> Result<UpstreamAnswer, FailureKind> {
        let deadline = Instant::now() + self.config.timeouts.query;
        if self.cleartext.is_some() {
            // Boxed: racing clear text takes two more timers and room for a
            // clear-text exchange, which strict mode's queries would
            // otherwise carry too.
            return Box::pin(self.opportunistic(query, deadline)).await;
        }
        self.dot(query, deadline)
            .await
            .map_err(|e| self.stats.failed(outcome(&e, deadline)))
    }

    /// Opportunistic mode: where the query goes is the fallback state
    /// machine's decision; a failure is counted once, for the answer given.
    async fn opportunistic(
        self: &Arc<Self>,
        query: &Query,
        deadline: Instant,
    ) -> Result<UpstreamAnswer, FailureKind> {
        let cleartext_possible = self
            .network_resolvers
            .read()
            .map(|r| !r.is_empty())
            .unwrap_or(false);
        let Decision { route, probe } = self
            .fallback
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .query(Instant::now(), cleartext_possible);
        if let Some(probe) = probe {
            self.spawn_probe(probe);
        }
        let result = match route {
            Route::Cleartext => Box::pin(self.cleartext(query, deadline)).await,
            Route::Dot { cleartext_after } => {
                self.dot_racing_cleartext(query, deadline, cleartext_after)
                    .await
            }
        };
        result.map_err(|kind| self.stats.failed(kind))
    }

    /// DoT, joined by clear text when DoT fails or has not answered after
    /// `cleartext_after`; the first answer wins. Without `cleartext_after`,
    /// DoT alone.
    async fn dot_racing_cleartext(
        self: &Arc<Self>,
        query: &Query,
        deadline: Instant,
        cleartext_after: Option<Duration>,
    ) -> Result<UpstreamAnswer, FailureKind> {
        let dot = tokio::time::timeout_at(deadline, self.dot(query, deadline));
        tokio::pin!(dot);
        // Half the query timeout at most, so that under a short configured
        // timeout clear text still gets its turn.
        let grace = cleartext_after.map(|g| Instant::now() + g.min(self.config.timeouts.query / 2));
        let first = tokio::select! {
            r = &mut dot => Some(r),
            _ = tokio::time::sleep_until(grace.unwrap_or(deadline)), if grace.is_some() => None,
        };
        match first {
            Some(Ok(Ok(answer))) => return Ok(answer),
            Some(Ok(Err(e))) => {
                self.note_dot_failure(&e, deadline);
                if cleartext_after.is_none() {
                    return Err(outcome(&e, deadline).into());
                }
                return Box::pin(self.cleartext(query, deadline)).await;
            }
            Some(Err(_)) => return Err(FailureKind::Timeout),
            None => {}
        }
        // DoT is late: clear text joins it.
        let mut clear = Box::pin(self.cleartext(query, deadline));
        tokio::select! {
            r = &mut dot => match r {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(e)) => {
                    self.note_dot_failure(&e, deadline);
                    clear.await
                }
                Err(_) => clear.await,
            },
            r = &mut clear => match r {
                Ok(answer) => {
                    // DoT was dropped unanswered: find out in the background
                    // whether it still opens, so a DoT path that went dark
                    // stops costing every query the grace.
                    let check = self
                        .fallback
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .cleartext_won();
                    if let Some(check) = check {
                        self.spawn_probe(check);
                    }
                    Ok(answer)
                }
                Err(kind) => match dot.await {
                    Ok(Ok(answer)) => Ok(answer),
                    Ok(Err(e)) => {
                        self.note_dot_failure(&e, deadline);
                        Err(kind)
                    }
                    Err(_) => Err(FailureKind::Timeout),
                },
            },
        }
    }

    /// A DoT query failed; if no connection could be opened, DoT is no
    /// longer taken as working on this network. Not when the attempt only
    /// ended because the query's time ran out: that says the query's
    /// deadline was short, not that DoT does not work.
    fn note_dot_failure(&self, e: &DotFailure, deadline: Instant) {
        if ran_out(deadline) {
            return;
        }
        if let DotFailure::Open(e) = e {
            let notice = self
                .fallback
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .dot_failed(Instant::now());
            self.announce(notice, &e.to_string());
        }
    }

    /// DoT with one retry on a fresh connection when the first one broke
    /// (closed, or dropped for sending garbage), all by `deadline`. Whatever
    /// fails is recorded against the server address it failed on: that is
    /// what a failed query is explained with.
    async fn dot(&self, query: &Query, deadline: Instant) -> Result<UpstreamAnswer, DotFailure> {
        // Only the error of a broken connection is kept across the retry,
        // not a whole result: it is what the query's future holds meanwhile.
        let mut broken = ExchangeError::Closed;
        for attempt in 0..2 {
            // After shutdown no connection may be opened, not even for the
            // retry of a query whose connection shutdown just closed.
            if self.shut_down.load(Ordering::Acquire) {
                break;
            }
            if attempt == 1 {
                Stats::add(&self.stats.retries, 1);
            }
            // Connecting stops at the deadline by itself; this bounds the
            // wait for a connection another query is opening. Its timer is
            // only set when that wait is not over at once.
            let ServerConnection { server, connection } =
                tokio::time::timeout_at(deadline, self.pool.any_connection(Some(deadline)))
                    .await
                    .unwrap_or_else(|_| {
                        Err(OpenError::untried(
                            "the query's time ran out waiting for a connection",
                        ))
                    })
                    .map_err(DotFailure::Open)?;
            let message = query.to_upstream(0, self.config.padding_block, true);
            Stats::add(&self.stats.upstream_queries, 1);
            // Bounded here rather than only by the caller, so that a query
            // that times out knows which server kept it waiting.
            let exchange = connection.exchange(message, query.key.clone());
            let outcome = tokio::time::timeout_at(deadline, exchange)
                .await
                .unwrap_or(Err(ExchangeError::Timeout));
            match outcome {
                Ok(mut answer) => {
                    server.note_answer(connection.address);
                    if !connection.authenticated {
                        wire::clear_authentic_data(&mut answer.bytes);
                    }
                    return Ok(UpstreamAnswer {
                        response: answer,
                        source: AnswerSource::Tls,
                    });
                }
                Err(e) => {
                    if let Some(failure) = e.server_failure(self.config.timeouts.query) {
                        server.note_failure(connection.address, &failure);
                    }
                    match e {
                        ExchangeError::Closed | ExchangeError::BadResponse(_) => {
                            broken = e;
                        }
                        _ => return Err(DotFailure::Exchange(e)),
                    }
                }
            }
        }
        Err(DotFailure::Exchange(broken))
    }

    /// One clear-text exchange within `deadline`. Failures are returned,
    /// not counted: the caller may still get an answer over DoT. Callers
    /// box it: only a query that falls back needs its room, and every
    /// query's future would carry it otherwise.
    async fn cleartext(
        self: &Arc<Self>,
        query: &Query,
        deadline: Instant,
    ) -> Result<UpstreamAnswer, FailureKind> {
        let Some(cleartext) = &self.cleartext else {
            // Unreachable by construction in strict mode; fail closed.
            return Err(FailureKind::Tls);
        };
        if deadline <= Instant::now() {
            // DoT used up the query's time (its attempts stop at the
            // deadline): too late to send anything, and a timer that has
            // already fired would only be checked after sending.
            return Err(FailureKind::Timeout);
        }
        let resolvers = self
            .network_resolvers
            .read()
            .map(|r| r.clone())
            .unwrap_or_default();
        match tokio::time::timeout_at(deadline, cleartext.exchange(query, &resolvers)).await {
            Ok(Ok(mut response)) => {
                Stats::add(&self.stats.cleartext_queries, 1);
                wire::clear_authentic_data(&mut response.bytes);
                Ok(UpstreamAnswer {
                    response,
                    source: AnswerSource::Cleartext,
                })
            }
            Ok(Err(e)) => {
                // A failed random draw was logged where it happened.
                if !matches!(e, CleartextError::Random) {
                    log::info!("clear-text query failed: {e}");
                }
                Err(FailureKind::from(&e))
            }
            Err(_) => Err(FailureKind::Timeout),
        }
    }

    fn spawn_probe(self: &Arc<Self>, probe: Probe) {
        let inner = self.clone();
        tokio::spawn(async move { inner.probe(probe).await });
    }

    /// Tries to open a DoT connection and reports the result to the state
    /// machine. Bounded by the connect and handshake timeouts of each
    /// address.
    async fn probe(self: Arc<Self>, probe: Probe) {
        let result = if self.shut_down.load(Ordering::Acquire) {
            Err(OpenError::untried("engine shut down"))
        } else {
            let started = Instant::now();
            self.pool
                .any_connection(None)
                .await
                .map(|_| started.elapsed())
        };
        let reason = match &result {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        let notice = self
            .fallback
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .probe_finished(probe, Instant::now(), result.map_err(|_| ()));
        self.announce(notice, &reason);
    }

    fn announce(&self, notice: Notice, reason: &str) {
        match notice {
            Notice::None => {}
            Notice::FellBack { retry_in } => {
                log::warn!(
                    "DoT unavailable ({reason}); clear text, DoT probed again in {retry_in:?}"
                );
                self.host.on_event(Event::CleartextFallback {
                    reason: reason.to_string(),
                    retry_in,
                });
            }
            Notice::Restored => {
                log::info!("DoT works again");
                self.host.on_event(Event::TlsRestored);
            }
        }
    }

    async fn network_changed(self: &Arc<Self>, resolvers: Vec<SocketAddr>) {
        if let Ok(mut r) = self.network_resolvers.write() {
            *r = without_own_addresses(resolvers);
        }
        // Before the connections are reset (which waits for a connect in
        // progress): from here on, queries go to the new network's
        // resolvers in clear text instead of waiting for DoT.
        let probe = self
            .fallback
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .network_changed(Instant::now());
        self.cache.clear();
        self.pool
            .network_changed(|| {
                self.network_resolvers
                    .read()
                    .map(|r| r.clone())
                    .unwrap_or_default()
            })
            .await;
        if self.cleartext.is_some() {
            self.spawn_probe(probe);
        }
    }
}

/// Whether the query's time is up. Connect and handshake attempts stop at
/// the query's deadline, so an attempt failing then is the query timing
/// out, and counts as such.
fn ran_out(deadline: Instant) -> bool {
    Instant::now() >= deadline
}

/// How a DoT failure counts, judged now against the query's `deadline`.
fn outcome(error: &DotFailure, deadline: Instant) -> DotOutcome<'_> {
    DotOutcome {
        error,
        ran_out: ran_out(deadline),
    }
}

/// Where a shared result came from, for the query log.
fn source_of(shared: &Shared) -> AnswerSource {
    shared
        .as_ref()
        .as_ref()
        .map_or(AnswerSource::Failed, |answer| answer.source)
}

/// The network's resolvers minus the engine's own virtual DNS addresses: a
/// host that reports the VPN's DNS servers as the network's would otherwise
/// have the clear-text fallback send queries back to the engine (or, through
/// a protected socket, to an address that exists nowhere).
fn without_own_addresses(mut resolvers: Vec<SocketAddr>) -> Vec<SocketAddr> {
    resolvers.retain(|r| {
        let own = crate::net::is_virtual_dns(r.ip());
        if own {
            log::warn!("network resolver {r} is dotcore's own virtual DNS address; ignored");
        }
        !own
    });
    resolvers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dot_failure_after_the_deadline_counts_as_a_timeout() {
        use crate::failure::{ServerFailure, ServerFailureKind as K};
        use crate::transport::OpenError;
        let addr = "127.0.0.1:853".parse().unwrap();
        let refused = DotFailure::Open(OpenError::at(
            addr,
            ServerFailure::new(K::ConnectionRefused, "refused"),
        ));
        let pin = DotFailure::Open(OpenError::at(
            addr,
            ServerFailure::new(K::PinMismatch, "pin"),
        ));
        let lost = DotFailure::Exchange(ExchangeError::Closed);
        let kind = |error, ran_out| FailureKind::from(DotOutcome { error, ran_out });
        assert_eq!(kind(&refused, false), FailureKind::Connect);
        assert_eq!(kind(&pin, false), FailureKind::Tls);
        assert_eq!(kind(&lost, false), FailureKind::ConnectionLost);
        for failure in [&refused, &pin, &lost] {
            assert_eq!(kind(failure, true), FailureKind::Timeout);
        }
    }

    /// A host moves each query's future whole when it spawns it (tokio
    /// copies it into the task, and its stage again when it completes), so
    /// its size is paid on every query; and each is one allocation, which
    /// glibc serves from its per-thread cache only up to 1,032 bytes, and
    /// above that on a slow path that under load took a tenth of the
    /// proxy's CPU. The rare paths that make futures large (opening a
    /// connection, the handshake, waiting for room on a full connection,
    /// racing clear text) are boxed to keep it small: 752 bytes on
    /// 2026-12-03, down from 3,520, and with the proxy's own state under
    /// that limit. This fails when one of them is inlined again.
    #[tokio::test]
    async fn the_future_of_a_query_stays_small() {
        let resolver = Resolver::new(&Config::default(), Arc::new(crate::host::NoHost)).unwrap();
        let query = crate::wire::tests::sample_query(true);
        let size = std::mem::size_of_val(&resolver.resolve(&query));
        assert!(size <= 800, "the future of one query is {size} bytes");
    }

    #[test]
    fn own_virtual_addresses_are_never_network_resolvers() {
        let own4 = SocketAddr::new(crate::net::VIRTUAL_DNS_V4.into(), 53);
        let own6 = SocketAddr::new(crate::net::VIRTUAL_DNS_V6.into(), 53);
        let real: SocketAddr = "192.0.2.53:53".parse().unwrap();
        assert_eq!(without_own_addresses(vec![own4, real, own6]), vec![real]);
    }
}
