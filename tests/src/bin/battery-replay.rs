//! Replays a DNS query trace through the real engine in virtual time and
//! writes the packet/connection timeline that `bench/battery` turns into
//! radio energy (format: `bench/battery/timeline.py`).
//!
//! The engine is the production `Resolver` with its own policy; only the
//! network is simulated: each connection is an in-memory pipe to the
//! in-process DoT server, with half the round-trip time added in each
//! direction and the TCP handshake costing one round trip. Tokio's paused
//! clock makes a 24-hour trace replay in seconds, with exact times.
//!
//! ```text
//! battery-replay --trace bench/battery/traces/mixed-day.trace --out mixed-day.dotcore.jsonl \
//!     [--rtt-ms 50] [--interactive S] [--idle S] [--deep-idle S]
//! ```

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dotcore::host::{BoxStream, DialFuture, Dialer};
use dotcore::{
    AnswerSource, Config, CustomServer, Event, Host, IdlePolicy, PowerState, Resolver, Upstream,
};
use dotcore_tests::fault_server::{serve_stream_with, Behaviour, ServeOptions, Stats, TlsIdentity};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

/// IPv4 + TCP header with timestamps, per segment.
const HEADER_BYTES: usize = 52;
/// Payload per segment on a 1500-byte path.
const MSS: usize = 1448;

/// The timeline being written, in virtual seconds since the start.
struct Timeline {
    start: Instant,
    events: Mutex<Vec<(f64, String)>>,
    /// The connection opened last: the one a handshake event belongs to.
    current_conn: AtomicU64,
    open_conns: Mutex<Vec<u64>>,
}

impl Timeline {
    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn push_at(&self, t: f64, body: String) {
        let line = format!("{{\"t\":{t:.6},{body}}}");
        self.events.lock().unwrap().push((t, line));
    }

    fn push(&self, body: String) {
        self.push_at(self.now(), body);
    }

    fn packets(&self, dir: &str, payload: usize, what: &str, conn: u64) {
        let segments = payload.div_ceil(MSS).max(1);
        let bytes = payload + segments * HEADER_BYTES;
        self.push(format!(
            "\"ev\":\"{dir}\",\"bytes\":{bytes},\"what\":\"{what}\",\"conn\":{conn}"
        ));
    }
}

/// Turns engine events into timeline events.
struct ReplayHost {
    timeline: Arc<Timeline>,
}

impl Host for ReplayHost {
    fn on_event(&self, event: Event) {
        let tl = &self.timeline;
        match event {
            Event::ServerValidated { resumed, .. } => {
                let conn = tl.current_conn.load(Ordering::SeqCst);
                let kind = if resumed { "resumed" } else { "full" };
                tl.push(format!(
                    "\"ev\":\"handshake\",\"conn\":{conn},\"kind\":\"{kind}\""
                ));
            }
            Event::Query {
                name,
                qtype,
                source,
                latency,
                ..
            } => {
                let arrived = tl.now() - latency.as_secs_f64();
                let cached = matches!(source, AnswerSource::Cache | AnswerSource::Coalesced);
                tl.push_at(
                    arrived,
                    format!(
                        "\"ev\":\"query\",\"latency_ms\":{:.3},\"cached\":{cached},\"qname\":\"{name}\",\"qtype\":{qtype},\"source\":\"{source:?}\"",
                        latency.as_secs_f64() * 1000.0
                    ),
                );
            }
            _ => {}
        }
    }
}

/// Connections to the in-process server through delayed in-memory pipes.
struct ReplayDialer {
    identity: TlsIdentity,
    rtt: Duration,
    timeline: Arc<Timeline>,
    next_conn: AtomicU64,
    stats: Arc<Stats>,
}

impl Dialer for ReplayDialer {
    fn dial(&self, _addr: SocketAddr) -> DialFuture<'_> {
        Box::pin(async move {
            let conn = self.next_conn.fetch_add(1, Ordering::SeqCst);
            let tl = self.timeline.clone();
            tl.current_conn.store(conn, Ordering::SeqCst);
            tl.open_conns.lock().unwrap().push(conn);
            tl.push(format!("\"ev\":\"conn_open\",\"conn\":{conn}"));
            tl.packets("tx", 8, "syn", conn);
            tokio::time::sleep(self.rtt).await;
            tl.packets("rx", 8, "syn", conn);
            let (engine_side, client_end) = tokio::io::duplex(256 * 1024);
            let (server_end, server_side) = tokio::io::duplex(256 * 1024);
            let behaviour = Behaviour::Normal;
            let acceptor = self.identity.acceptor_for(&behaviour);
            let options = ServeOptions {
                response_delay: Duration::ZERO,
                idle_timeout: None,
                edns_keepalive: None,
                ..ServeOptions::default()
            };
            tokio::spawn(serve_stream_with(
                server_side,
                acceptor,
                behaviour,
                options,
                self.stats.clone(),
            ));
            let (client_read, client_write) = tokio::io::split(client_end);
            let (server_read, server_write) = tokio::io::split(server_end);
            let half = self.rtt / 2;
            tokio::spawn(forward(
                client_read,
                server_write,
                half,
                tl.clone(),
                conn,
                Direction::Up,
            ));
            tokio::spawn(forward(
                server_read,
                client_write,
                half,
                tl,
                conn,
                Direction::Down,
            ));
            Ok(Box::new(engine_side) as BoxStream)
        })
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    /// Phone to server: recorded as `tx` when sent.
    Up,
    /// Server to phone: recorded as `rx` when it arrives.
    Down,
}

/// Copies bytes one way, each chunk arriving `delay` after it was sent.
async fn forward<R, W>(
    mut from: R,
    mut to: W,
    delay: Duration,
    tl: Arc<Timeline>,
    conn: u64,
    dir: Direction,
) where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Option<Vec<u8>>)>();
    let tl_writer = tl.clone();
    let writer = tokio::spawn(async move {
        while let Some((at, chunk)) = rx.recv().await {
            sleep_until(at).await;
            match chunk {
                Some(bytes) => {
                    if dir == Direction::Down {
                        tl_writer.packets("rx", bytes.len(), "tls", conn);
                    }
                    if to.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                None => {
                    let _ = to.shutdown().await;
                    return;
                }
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await.unwrap_or(0);
        let at = Instant::now() + delay;
        if n == 0 {
            if dir == Direction::Up {
                // The engine closed the connection: close_notify went as the
                // last chunk, this is its FIN. Nothing was pending (the
                // engine only closes idle connections here), so a timer woke it.
                tl.packets("tx", 0, "close", conn);
                tl.push(format!(
                    "\"ev\":\"conn_close\",\"conn\":{conn},\"reason\":\"idle\""
                ));
                tl.push("\"ev\":\"wakeup\",\"pending\":0,\"reason\":\"idle_timer\"".into());
                tl.open_conns.lock().unwrap().retain(|c| *c != conn);
            }
            let _ = tx.send((at, None));
            break;
        }
        if dir == Direction::Up {
            tl.packets("tx", n, "tls", conn);
        }
        if tx.send((at, Some(buf[..n].to_vec()))).is_err() {
            break;
        }
    }
    let _ = writer.await;
}

struct TraceQuery {
    t: f64,
    name: String,
    qtype: String,
}

struct Trace {
    name: String,
    duration: f64,
    queries: Vec<TraceQuery>,
    screen: Vec<(f64, String)>,
}

fn parse_trace(text: &str, default_name: &str) -> Result<Trace, String> {
    let mut trace = Trace {
        name: default_name.to_string(),
        duration: 0.0,
        queries: Vec::new(),
        screen: Vec::new(),
    };
    let mut last_state: Option<String> = None;
    let mut explicit_screen = false;
    for (lineno, line) in text.lines().enumerate() {
        let line = line.trim();
        let bad = |what: &str| format!("trace line {}: {what}: {line:?}", lineno + 1);
        if let Some(directive) = line.strip_prefix("#!") {
            let parts: Vec<&str> = directive.split_whitespace().collect();
            match parts.as_slice() {
                ["name", n] => trace.name = n.to_string(),
                ["duration", d] => trace.duration = d.parse().map_err(|_| bad("bad duration"))?,
                ["screen", t, s] => {
                    explicit_screen = true;
                    trace
                        .screen
                        .push((t.parse().map_err(|_| bad("bad time"))?, s.to_string()));
                }
                _ => {}
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [t, name, qtype, screen] = parts.as_slice() else {
            return Err(bad("expected: time qname qtype screen"));
        };
        let t: f64 = t.parse().map_err(|_| bad("bad time"))?;
        if !["on", "off", "doze"].contains(screen) {
            return Err(bad("screen must be on, off or doze"));
        }
        if !explicit_screen && last_state.as_deref() != Some(*screen) {
            trace.screen.push((t, screen.to_string()));
            last_state = Some(screen.to_string());
        }
        trace.queries.push(TraceQuery {
            t,
            name: name.to_string(),
            qtype: qtype.to_string(),
        });
    }
    if trace.duration == 0.0 {
        trace.duration = trace.queries.last().map_or(0.0, |q| q.t);
    }
    Ok(trace)
}

fn power_state(screen: &str) -> PowerState {
    match screen {
        "on" => PowerState::Interactive,
        "off" => PowerState::Idle,
        _ => PowerState::DeepIdle,
    }
}

struct Options {
    trace: String,
    out: String,
    rtt: Duration,
    idle: IdlePolicy,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut trace = None;
    let mut out = None;
    let mut rtt = Duration::from_millis(50);
    let mut idle = IdlePolicy::default();
    while let Some(a) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        let secs = |v: String, flag: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|s| *s >= 0.0 && *s <= 3600.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("{flag}: {v:?} is not 0-3600 seconds"))
        };
        match a.as_str() {
            "--trace" => trace = Some(value("--trace")?),
            "--out" => out = Some(value("--out")?),
            "--rtt-ms" => {
                let v = value("--rtt-ms")?;
                rtt = Duration::from_millis(v.parse().map_err(|_| format!("--rtt-ms: {v:?}"))?);
            }
            "--interactive" => idle.interactive = secs(value(&a)?, &a)?,
            "--idle" => idle.idle = secs(value(&a)?, &a)?,
            "--deep-idle" => idle.deep_idle = secs(value(&a)?, &a)?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Options {
        trace: trace.ok_or("--trace is required")?,
        out: out.ok_or("--out is required")?,
        rtt,
        idle,
    })
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("battery-replay: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    match runtime.block_on(replay(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("battery-replay: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn replay(options: Options) -> Result<(), String> {
    let text =
        std::fs::read_to_string(&options.trace).map_err(|e| format!("{}: {e}", options.trace))?;
    let stem = std::path::Path::new(&options.trace)
        .file_stem()
        .map_or("trace".into(), |s| s.to_string_lossy().to_string());
    let trace = parse_trace(&text, &stem)?;
    let identity = TlsIdentity::generate("dot.test");
    let timeline = Arc::new(Timeline {
        start: Instant::now(),
        events: Mutex::new(Vec::new()),
        current_conn: AtomicU64::new(0),
        open_conns: Mutex::new(Vec::new()),
    });
    let first_state = trace.screen.first().map_or("on", |(_, s)| s.as_str());
    let mut config = Config {
        upstream: Upstream::Custom(vec![CustomServer {
            name: Some("dot.test".into()),
            // Never dialled for real: the replay dialer answers every address.
            addresses: vec!["192.0.2.53".into()],
            port: 853,
            pins: vec![identity.spki_pin().to_string()],
        }]),
        idle: options.idle,
        power_state: power_state(first_state),
        query_log: true,
        ..Config::default()
    };
    config.timeouts.query = Duration::from_secs(10);
    let dialer = Arc::new(ReplayDialer {
        identity: identity.clone(),
        rtt: options.rtt,
        timeline: timeline.clone(),
        next_conn: AtomicU64::new(1),
        stats: Stats::new(),
    });
    let host = Arc::new(ReplayHost {
        timeline: timeline.clone(),
    });
    let resolver = Resolver::with_dialer(&config, host, dialer).map_err(|e| e.to_string())?;
    let p = &options.idle;
    timeline.push_at(
        0.0,
        format!(
            "\"ev\":\"meta\",\"version\":1,\"trace\":\"{}\",\"policy\":\"dotcore\",\"rtt_ms\":{},\"duration\":{},\"interactive_s\":{},\"idle_s\":{},\"deep_idle_s\":{}",
            trace.name,
            options.rtt.as_millis(),
            trace.duration,
            p.interactive.as_secs_f64(),
            p.idle.as_secs_f64(),
            p.deep_idle.as_secs_f64(),
        ),
    );

    // Screen changes and queries, in time order (screen first at equal times).
    let mut actions: Vec<(f64, u8, usize)> = trace
        .screen
        .iter()
        .enumerate()
        .map(|(i, (t, _))| (*t, 0, i))
        .chain(trace.queries.iter().enumerate().map(|(i, q)| (q.t, 1, i)))
        .collect();
    actions.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let start = timeline.start;
    let mut tasks = Vec::with_capacity(trace.queries.len());
    for (t, kind, i) in actions {
        sleep_until(start + Duration::from_secs_f64(t)).await;
        if kind == 0 {
            let state = &trace.screen[i].1;
            resolver.set_power_state(power_state(state));
            timeline.push(format!("\"ev\":\"screen\",\"state\":\"{state}\""));
        } else {
            let q = &trace.queries[i];
            let message = dotcore::message::build_query(&q.name, &q.qtype)
                .map_err(|e| format!("query {} {}: {e}", q.name, q.qtype))?;
            let r = resolver.clone();
            tasks.push(tokio::spawn(async move { r.resolve(&message).await }));
        }
    }
    for t in tasks {
        let answer = t.await.map_err(|e| e.to_string())?;
        if dotcore::internals::wire::rcode(&answer) != 0 {
            return Err("a query failed during the replay".into());
        }
    }
    sleep_until(start + Duration::from_secs_f64(trace.duration)).await;
    // Let idle closes that fall due at the end happen before we look.
    tokio::task::yield_now().await;
    for conn in timeline.open_conns.lock().unwrap().clone() {
        timeline.push(format!(
            "\"ev\":\"conn_close\",\"conn\":{conn},\"reason\":\"end\""
        ));
    }
    timeline.push("\"ev\":\"end\"".into());

    let mut events = std::mem::take(&mut *timeline.events.lock().unwrap());
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = String::new();
    for (_, line) in events {
        let _ = writeln!(out, "{line}");
    }
    std::fs::write(&options.out, out).map_err(|e| format!("{}: {e}", options.out))?;
    eprintln!("{}", resolver.stats().to_json());
    Ok(())
}
