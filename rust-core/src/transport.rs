//! One DNS-over-TLS connection (RFC 7858) carrying many queries at once
//! (RFC 7766 §6.2.1.1 pipelining, out-of-order answers).
//!
//! A connection is a task that owns the TLS stream. Queries reach it over a
//! bounded channel (backpressure, not an unbounded queue); each gets a fresh
//! wire ID so clients' IDs can never collide, and an answer is accepted only
//! when both its ID and its question match. The task closes the connection
//! when it has been idle for the power state's timeout, and arms no timer
//! at all while there is nothing to wait for.
//!
//! Those rules are `pipeline.rs`, a state machine with no I/O and no clock;
//! the task here only drives it: it reads and writes the TLS stream, keeps
//! one timer at the pipeline's next deadline, and delivers the replies.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::{sleep_until, Instant};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_util::codec::{Decoder, LengthDelimitedCodec};

use crate::coalesce::Coalescing;
use crate::failure::{ServerFailure, ServerFailureKind};
use crate::framing;
use crate::host::{BoxStream, Dialer};
use crate::pipeline::{self, Pipeline, Refused};
use crate::policy::{IdlePolicy, PowerState};
use crate::stats::Stats;
use crate::tls::ServerTls;
use crate::wire::{QuestionKey, Response};

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// Why a query on a connection got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExchangeError {
    /// The connection closed or broke before the answer; worth one retry on
    /// a fresh connection.
    Closed,
    /// The server sent something that is not a DNS answer (a frame too short
    /// for a header, an undecodable message), said here; the connection was
    /// dropped. Retried once like `Closed`, but counted as a bad response.
    BadResponse(&'static str),
    /// No answer in time.
    Timeout,
    /// No random wire ID could be drawn (the OS generator failed); the
    /// query was not sent.
    Random,
}

impl ExchangeError {
    /// The server's failure this error shows, `None` for one of ours (no
    /// random ID) that says nothing about the server. `waited` is how long
    /// the query waited, for the timeout's text.
    pub(crate) fn server_failure(self, waited: Duration) -> Option<ServerFailure> {
        Some(match self {
            ExchangeError::Closed => ServerFailure::new(
                ServerFailureKind::ConnectionLost,
                "the connection closed before the answer came",
            ),
            ExchangeError::BadResponse(why) => ServerFailure::new(
                ServerFailureKind::ProtocolError,
                format!("the server sent something that is not a DNS answer ({why})"),
            ),
            ExchangeError::Timeout => ServerFailure::new(
                ServerFailureKind::AnswerTimedOut,
                format!("no answer within {}", human_duration(waited)),
            ),
            ExchangeError::Random => return None,
        })
    }
}

/// Why a connection could not be opened: the server's failure, and the
/// address it happened on (none when no address was tried).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenError {
    pub address: Option<SocketAddr>,
    pub failure: ServerFailure,
}

impl OpenError {
    /// A failure on `address`.
    pub(crate) fn at(address: SocketAddr, failure: ServerFailure) -> OpenError {
        OpenError {
            address: Some(address),
            failure,
        }
    }

    /// A failure before any address was tried.
    pub(crate) fn untried(text: &str) -> OpenError {
        OpenError {
            address: None,
            failure: ServerFailure::new(ServerFailureKind::ConnectFailed, text),
        }
    }

    /// Whether it failed before TLS started (counted as a connect failure;
    /// everything after, the handshake's timeout included, counts as TLS).
    pub(crate) fn before_tls(&self) -> bool {
        matches!(
            self.failure.kind,
            ServerFailureKind::ConnectionRefused
                | ServerFailureKind::ConnectTimedOut
                | ServerFailureKind::NetworkUnreachable
                | ServerFailureKind::ConnectFailed
        )
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.address {
            Some(a) => write!(f, "{a}: {}", self.failure.text),
            None => f.write_str(&self.failure.text),
        }
    }
}

/// A socket error of the TCP connect as a [`ServerFailure`]: the one place
/// connect errors are classified.
pub(crate) fn connect_failure(e: &io::Error) -> ServerFailure {
    use ServerFailureKind as K;
    // Raw errno first: kinds for unreachable networks are recent, and
    // some platforms' errors map to `Uncategorized`.
    let raw = e.raw_os_error();
    let (kind, text) =
        if e.kind() == io::ErrorKind::ConnectionRefused || raw == Some(libc::ECONNREFUSED) {
            (
                K::ConnectionRefused,
                "the server refused the connection (nothing listens on that port)".to_string(),
            )
        } else if e.kind() == io::ErrorKind::NetworkUnreachable || raw == Some(libc::ENETUNREACH) {
            (
                K::NetworkUnreachable,
                "network unreachable from this device".to_string(),
            )
        } else if e.kind() == io::ErrorKind::HostUnreachable || raw == Some(libc::EHOSTUNREACH) {
            (
                K::NetworkUnreachable,
                "host unreachable from this device".to_string(),
            )
        } else {
            (K::ConnectFailed, format!("cannot connect: {e}"))
        };
    ServerFailure::new(kind, text)
}

/// A connect that did not finish within `limit`.
pub(crate) fn connect_timeout_failure(limit: Duration) -> ServerFailure {
    ServerFailure::new(
        ServerFailureKind::ConnectTimedOut,
        format!("no TCP connection within {}", human_duration(limit)),
    )
}

/// A TLS handshake error as a [`ServerFailure`]: the TLS error rustls
/// reported (classified by [`crate::tls::tls_failure`]), or what happened
/// to the socket under it.
pub(crate) fn handshake_failure(e: &io::Error) -> ServerFailure {
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return crate::tls::tls_failure(tls);
    }
    let text = match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            "the server closed the connection during the TLS handshake".to_string()
        }
        io::ErrorKind::ConnectionReset => {
            "the server reset the connection during the TLS handshake".to_string()
        }
        _ => format!("the connection broke during the TLS handshake: {e}"),
    };
    ServerFailure::new(ServerFailureKind::ConnectionLost, text)
}

/// A handshake that did not finish within `limit`: the server took the
/// connection but does not speak (or finish) TLS.
pub(crate) fn handshake_timeout_failure(limit: Duration) -> ServerFailure {
    ServerFailure::new(
        ServerFailureKind::AnswerTimedOut,
        format!(
            "the server accepted the connection but completed no TLS handshake within {}",
            human_duration(limit)
        ),
    )
}

/// `d` the way people say it: "5 s", "1.5 s", "250 ms". A limit cut short
/// by a deadline a moment away (2.999 s) reads as the whole one (3 s).
pub(crate) fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms} ms");
    }
    let secs = format!("{:.1}", d.as_secs_f64());
    format!("{} s", secs.trim_end_matches(".0"))
}

/// Where a query's outcome goes: the client waiting in
/// [`Connection::exchange`].
type Reply = oneshot::Sender<Result<Response, ExchangeError>>;

struct Request {
    /// The upstream message, ID to be assigned by the connection.
    message: Vec<u8>,
    key: QuestionKey,
    reply: Reply,
}

/// Settings a connection needs from the engine configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionSettings {
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
    pub query_timeout: Duration,
    pub max_in_flight: usize,
    pub idle: IdlePolicy,
}

/// What the handshake established.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HandshakeInfo {
    pub resumed: bool,
    pub authenticated: bool,
    pub elapsed: Duration,
}

/// A handle on a live connection. Cloning shares the connection.
#[derive(Clone)]
pub(crate) struct Connection {
    /// Whether the server authenticated in the handshake (always in strict
    /// mode); an unauthenticated server's AD bits are not passed on.
    pub authenticated: bool,
    /// The server address it is connected to.
    pub address: SocketAddr,
    tx: mpsc::Sender<Request>,
    closed: Arc<AtomicBool>,
    shutdown: Arc<Notify>,
}

impl Connection {
    /// Dials `addr`, runs the TLS handshake and starts the connection task.
    /// Connect and handshake each get their timeout, cut short so as not to
    /// outlast `deadline` (the query waiting for them): a query that ends
    /// while connecting then still learns, and reports, why.
    pub(crate) async fn open(
        dialer: &dyn Dialer,
        addr: SocketAddr,
        tls: &ServerTls,
        settings: ConnectionSettings,
        deadline: Option<Instant>,
        power: watch::Receiver<PowerState>,
        stats: Arc<Stats>,
    ) -> Result<(Connection, HandshakeInfo), OpenError> {
        let started = Instant::now();
        let within = |limit: Duration| match deadline {
            Some(d) => limit.min(d.saturating_duration_since(Instant::now())),
            None => limit,
        };
        let name = tls.name_for(addr).map_err(|e| {
            OpenError::at(
                addr,
                ServerFailure::new(ServerFailureKind::ProtocolError, e),
            )
        })?;
        let limit = within(settings.connect_timeout);
        let stream = match tokio::time::timeout(limit, dialer.dial(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(OpenError::at(addr, connect_failure(&e))),
            Err(_) => return Err(OpenError::at(addr, connect_timeout_failure(limit))),
        };
        let id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
        stats.connection_opened(id);
        let hold = Arc::new(AtomicBool::new(false));
        let stream: BoxStream = Box::new(Coalescing::new(stream, hold.clone()));
        let connector = TlsConnector::from(tls.config.clone());
        let handshake = connector.connect(name, stream);
        let limit = within(settings.handshake_timeout);
        let tls_stream = match tokio::time::timeout(limit, handshake).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                stats.connection_closed(id);
                return Err(OpenError::at(addr, handshake_failure(&e)));
            }
            Err(_) => {
                stats.connection_closed(id);
                return Err(OpenError::at(addr, handshake_timeout_failure(limit)));
            }
        };
        let (_, session) = tls_stream.get_ref();
        let resumed = session.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        Stats::add(
            if resumed {
                &stats.handshakes_resumed
            } else {
                &stats.handshakes_full
            },
            1,
        );
        let authenticated = tls.enforce || authenticated_after_handshake(tls, addr, session);
        let (tx, rx) = mpsc::channel(settings.max_in_flight);
        let task = ConnectionTask::new(id, rx, settings, power, stats, hold);
        let closed = task.closed.clone();
        let shutdown = task.shutdown.clone();
        tokio::spawn(task.run(tls_stream));
        let info = HandshakeInfo {
            resumed,
            authenticated,
            elapsed: started.elapsed(),
        };
        Ok((
            Connection {
                authenticated,
                address: addr,
                tx,
                closed,
                shutdown,
            },
            info,
        ))
    }

    /// Whether the connection can still take queries.
    pub(crate) fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Acquire) && !self.tx.is_closed()
    }

    /// Set once the connection has closed; lets status reports tell a live
    /// connection without holding on to it.
    pub(crate) fn closed_flag(&self) -> Arc<AtomicBool> {
        self.closed.clone()
    }

    /// Asks the connection to close after failing what is pending (a
    /// network change: answers would come from the old network).
    pub(crate) fn shut_down(&self) {
        self.shutdown.notify_one();
    }

    /// Closes the connection and waits, at most `bound`, until its task has
    /// sent close_notify and FIN. The engine's runtime drops unfinished
    /// tasks when it ends, so without this wait a stopping engine would
    /// leave the server a bare FIN (RFC 8446 §6.1 asks for close_notify).
    pub(crate) async fn close(&self, bound: Duration) {
        self.shutdown.notify_one();
        // The task closes its receiver only after the TLS shutdown.
        let _ = tokio::time::timeout(bound, self.tx.closed()).await;
    }

    /// Sends one query and waits for its answer.
    pub(crate) async fn exchange(
        &self,
        message: Vec<u8>,
        key: QuestionKey,
    ) -> Result<Response, ExchangeError> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            message,
            key,
            reply,
        };
        match self.tx.try_send(request) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(ExchangeError::Closed),
            // Waiting for room is rare (the connection's in-flight limit is
            // reached) and its future large: boxed, as in
            // `UpstreamServer::connection`.
            Err(mpsc::error::TrySendError::Full(request)) => Box::pin(self.tx.send(request))
                .await
                .map_err(|_| ExchangeError::Closed)?,
        }
        answer.await.unwrap_or(Err(ExchangeError::Closed))
    }
}

/// In opportunistic mode the handshake accepted any certificate; check
/// afterwards whether it would have authenticated, to report it.
fn authenticated_after_handshake(
    tls: &ServerTls,
    addr: SocketAddr,
    session: &rustls::ClientConnection,
) -> bool {
    let Some(certs) = session.peer_certificates() else {
        return false;
    };
    let Some((end_entity, intermediates)) = certs.split_first() else {
        return false;
    };
    let Ok(name) = tls.name_for(addr) else {
        return false;
    };
    tls.auth
        .check(
            end_entity,
            intermediates,
            &name,
            rustls_pki_types::UnixTime::now(),
        )
        .is_ok()
}

/// The task that owns one connection's TLS stream and drives its
/// [`Pipeline`].
struct ConnectionTask {
    /// The connection's number, in logs and stats.
    id: u64,
    /// Queries from [`Connection::exchange`].
    rx: mpsc::Receiver<Request>,
    /// Set when the task ends ([`Connection::is_open`]).
    closed: Arc<AtomicBool>,
    /// Notified by [`Connection::shut_down`] and [`Connection::close`].
    shutdown: Arc<Notify>,
    /// Set while a batch is written: its records leave in one write
    /// (coalesce.rs).
    hold: Arc<AtomicBool>,
    /// The device's power state, which sets the idle timeout.
    power: watch::Receiver<PowerState>,
    stats: Arc<Stats>,
    /// The protocol: IDs, queries in flight, deadlines, idle close.
    pipeline: Pipeline<Reply>,
    /// Splits what the server sent into messages.
    codec: LengthDelimitedCodec,
}

/// Why the connection task ended.
#[derive(Debug)]
enum End {
    Idle,
    Shutdown,
    HandlesDropped,
    /// The server closed the TLS session cleanly (close_notify).
    PeerClosed,
    Io(io::Error),
    Protocol(&'static str),
}

impl ConnectionTask {
    /// The task for connection `id`, its queries arriving on `rx`.
    fn new(
        id: u64,
        rx: mpsc::Receiver<Request>,
        settings: ConnectionSettings,
        power: watch::Receiver<PowerState>,
        stats: Arc<Stats>,
        hold: Arc<AtomicBool>,
    ) -> ConnectionTask {
        let limits = pipeline::Settings {
            query_timeout: settings.query_timeout,
            max_in_flight: settings.max_in_flight,
            idle: settings.idle,
        };
        ConnectionTask {
            id,
            rx,
            closed: Arc::new(AtomicBool::new(false)),
            shutdown: Arc::new(Notify::new()),
            hold,
            power,
            stats,
            pipeline: Pipeline::new(id, limits, crate::rng::system, Instant::now()),
            codec: framing::codec(),
        }
    }

    /// Serves the connection until it ends, then closes it and fails what
    /// is left.
    async fn run(mut self, stream: TlsStream<BoxStream>) {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut buf = BytesMut::with_capacity(4096);
        let end = self.serve(&mut reader, &mut writer, &mut buf).await;
        self.closed.store(true, Ordering::Release);
        match &end {
            End::Idle => {
                // close_notify, then FIN: a clean close the server need not time out.
                let _ = tokio::time::timeout(Duration::from_secs(1), writer.shutdown()).await;
            }
            // Answering the server's close_notify with ours (RFC 8446 §6.1)
            // lets it tell our close from a cut connection.
            End::Shutdown | End::HandlesDropped | End::PeerClosed => {
                let _ = tokio::time::timeout(Duration::from_millis(200), writer.shutdown()).await;
            }
            End::Io(e) => log::debug!("connection {} ended: {e}", self.id),
            End::Protocol(why) => log::warn!("connection {} dropped: {why}", self.id),
        }
        log::debug!("connection {} closed ({end:?})", self.id);
        self.fail_all(match end {
            End::Protocol(why) => ExchangeError::BadResponse(why),
            _ => ExchangeError::Closed,
        });
        self.stats.connection_closed(self.id);
    }

    /// Answers everything pending with `error`, and what is still queued
    /// with `Closed` (it was never sent).
    fn fail_all(&mut self, error: ExchangeError) {
        for reply in self.pipeline.take_all() {
            let _ = reply.send(Err(error));
        }
        self.rx.close();
        while let Ok(r) = self.rx.try_recv() {
            let _ = r.reply.send(Err(ExchangeError::Closed));
        }
    }

    /// Moves queries, answers and time between the stream and the
    /// pipeline until something ends the connection.
    async fn serve(
        &mut self,
        reader: &mut ReadHalf<TlsStream<BoxStream>>,
        writer: &mut WriteHalf<TlsStream<BoxStream>>,
        buf: &mut BytesMut,
    ) -> End {
        let shutdown = self.shutdown.clone();
        let mut out = BytesMut::with_capacity(4096);
        // Where each query's frame in `out` ends.
        let mut ends = Vec::new();
        // One timer for every deadline, moved only when the pipeline's next
        // one changes (re-arming it costs a trip through tokio's wheel).
        let timer = sleep_until(far_future());
        tokio::pin!(timer);
        let mut armed = None;
        loop {
            let power = *self.power.borrow();
            let deadline = self.pipeline.next_deadline(power);
            if let Some(d) = deadline {
                if armed != Some(d) {
                    timer.as_mut().reset(d);
                    armed = Some(d);
                }
            }
            tokio::select! {
                biased;
                _ = shutdown.notified() => return End::Shutdown,
                read = reader.read_buf(buf) => {
                    match read {
                        // rustls reads 0 only after the server's close_notify;
                        // a bare FIN is an `UnexpectedEof` error instead.
                        Ok(0) => return End::PeerClosed,
                        Ok(n) => {
                            Stats::add(&self.stats.bytes_received, n as u64);
                            if let Err(why) = self.take_frames(buf) {
                                return End::Protocol(why);
                            }
                        }
                        Err(e) => return End::Io(e),
                    }
                }
                request = self.rx.recv(), if self.pipeline.has_room() => {
                    let Some(request) = request else { return End::HandlesDropped };
                    out.clear();
                    ends.clear();
                    let now = Instant::now();
                    self.enqueue(request, now, &mut out);
                    ends.push(out.len());
                    // Everything already queued goes out in the same write:
                    // one TLS record per query (some servers read only one
                    // query per record), one syscall for the burst.
                    while self.pipeline.has_room() {
                        match self.rx.try_recv() {
                            Ok(r) => {
                                self.enqueue(r, now, &mut out);
                                ends.push(out.len());
                            }
                            Err(_) => break,
                        }
                    }
                    if out.is_empty() {
                        continue;
                    }
                    if let Err(e) = write_records(writer, &self.hold, &out, &ends).await {
                        return End::Io(e);
                    }
                    Stats::add(&self.stats.bytes_sent, out.len() as u64);
                }
                () = &mut timer, if deadline.is_some() => {
                    let now = Instant::now();
                    for reply in self.pipeline.expire(now) {
                        let _ = reply.send(Err(ExchangeError::Timeout));
                    }
                    // A query still queued keeps the connection: the next
                    // turn sends it.
                    if self.pipeline.should_close_idle(now, power) && self.rx.is_empty() {
                        return End::Idle;
                    }
                }
                changed = self.power.changed() => {
                    if changed.is_err() {
                        return End::HandlesDropped;
                    }
                }
            }
        }
    }

    /// Hands `request` to the pipeline, its frame appended to `out`, or
    /// fails it unsent.
    fn enqueue(&mut self, request: Request, now: Instant, out: &mut BytesMut) {
        if request.reply.is_closed() {
            return; // the client gave up while queued
        }
        let refused = self
            .pipeline
            .submit(request.message, request.key, request.reply, now, out);
        let Err((reply, why)) = refused else { return };
        let error = match why {
            Refused::Random(e) => {
                log::error!("connection {}: query not sent: {e}", self.id);
                ExchangeError::Random
            }
            Refused::TooLong(_) | Refused::Full => {
                log::warn!("connection {}: query not sent: {why}", self.id);
                ExchangeError::Closed
            }
        };
        let _ = reply.send(Err(error));
    }

    /// Answers every complete frame in `buf` and keeps the partial rest.
    fn take_frames(&mut self, buf: &mut BytesMut) -> Result<(), &'static str> {
        let now = Instant::now();
        // A 2-byte length cannot exceed the codec's bound, so decoding
        // cannot fail; mapped all the same rather than unwrapped.
        while let Some(frame) = self.codec.decode(buf).map_err(|_| "bad frame")? {
            if let Some((reply, answer)) = self.pipeline.on_frame(&frame, now)? {
                let _ = reply.send(Ok(answer));
            }
        }
        Ok(())
    }
}

/// Writes each query of `bytes` (its frames ending at `ends`) as its own
/// TLS record, and all of them in one socket write where it takes them.
async fn write_records(
    writer: &mut WriteHalf<TlsStream<BoxStream>>,
    hold: &AtomicBool,
    bytes: &[u8],
    ends: &[usize],
) -> io::Result<()> {
    hold.store(true, Ordering::Release);
    let mut written = Ok(());
    let mut start = 0;
    for &end in ends {
        if end > start {
            // One write to TLS is one record for a frame of up to 16 KiB.
            written = writer.write_all(&bytes[start..end]).await;
            if written.is_err() {
                break;
            }
        }
        start = end;
    }
    hold.store(false, Ordering::Release);
    written?;
    writer.flush().await
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_errors_are_classified_by_kind_and_by_raw_errno() {
        use ServerFailureKind as K;
        let cases = [
            (
                io::Error::from(io::ErrorKind::ConnectionRefused),
                K::ConnectionRefused,
            ),
            (
                io::Error::from_raw_os_error(libc::ECONNREFUSED),
                K::ConnectionRefused,
            ),
            (
                io::Error::from(io::ErrorKind::NetworkUnreachable),
                K::NetworkUnreachable,
            ),
            (
                io::Error::from(io::ErrorKind::HostUnreachable),
                K::NetworkUnreachable,
            ),
            (
                io::Error::from_raw_os_error(libc::ENETUNREACH),
                K::NetworkUnreachable,
            ),
            (
                io::Error::from_raw_os_error(libc::EHOSTUNREACH),
                K::NetworkUnreachable,
            ),
            (
                io::Error::from(io::ErrorKind::PermissionDenied),
                K::ConnectFailed,
            ),
            (
                io::Error::from_raw_os_error(libc::EADDRNOTAVAIL),
                K::ConnectFailed,
            ),
        ];
        for (e, kind) in cases {
            let f = connect_failure(&e);
            assert_eq!(f.kind, kind, "{e}");
            assert!(!f.text.is_empty());
            assert!(OpenError::at("127.0.0.1:853".parse().unwrap(), f).before_tls());
        }
        let timeout = connect_timeout_failure(Duration::from_millis(1500));
        assert_eq!(timeout.kind, K::ConnectTimedOut);
        assert!(timeout.text.contains("1.5 s"), "{}", timeout.text);
    }

    #[test]
    fn handshake_errors_are_tls_failures_or_a_lost_connection() {
        use ServerFailureKind as K;
        let eof = handshake_failure(&io::Error::from(io::ErrorKind::UnexpectedEof));
        assert_eq!(eof.kind, K::ConnectionLost);
        assert!(eof.text.contains("closed"), "{}", eof.text);
        // rustls errors come wrapped in an io::Error; they go to tls_failure.
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        let wrapped = io::Error::new(io::ErrorKind::InvalidData, alert.clone());
        assert_eq!(handshake_failure(&wrapped), crate::tls::tls_failure(&alert));
        let hang = handshake_timeout_failure(Duration::from_secs(3));
        assert_eq!(hang.kind, K::AnswerTimedOut);
        assert!(hang.text.contains("3 s"), "{}", hang.text);
        let at = OpenError::at("127.0.0.1:853".parse().unwrap(), hang);
        assert!(!at.before_tls(), "a handshake timeout counts as TLS");
        assert!(at.to_string().starts_with("127.0.0.1:853: "), "{at}");
    }

    #[test]
    fn exchange_errors_name_the_server_failure_except_our_own() {
        use ServerFailureKind as K;
        let five = Duration::from_secs(5);
        let kind = |e: ExchangeError| e.server_failure(five).map(|f| f.kind);
        assert_eq!(kind(ExchangeError::Timeout), Some(K::AnswerTimedOut));
        assert_eq!(kind(ExchangeError::Closed), Some(K::ConnectionLost));
        assert_eq!(
            kind(ExchangeError::BadResponse("x")),
            Some(K::ProtocolError)
        );
        assert_eq!(kind(ExchangeError::Random), None);
        let bad = ExchangeError::BadResponse("server sent a query").server_failure(five);
        assert!(bad.unwrap().text.contains("server sent a query"));
        assert_eq!(human_duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(human_duration(five), "5 s");
        assert_eq!(human_duration(Duration::from_millis(2999)), "3 s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5 s");
    }
}
