//! `dotcore`: the desktop face of the engine.
//!
//! `query` resolves one name; `proxy` is a local stub resolver on UDP and
//! TCP (like stubby) forwarding through the engine; `providers` lists the
//! catalogue. Bad input exits non-zero with a one-line error.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Semaphore};

use dotcore::config::{parse_resolver_address, CustomServer, Upstream};
use dotcore::framing::{self, FrameReader};
use dotcore::{client_udp_payload_limit, truncate_dns_response};
use dotcore::{message, providers, Config, Mode, NoHost, Resolver};

#[derive(Parser)]
#[command(
    name = "dotcore",
    version,
    about = "DNS-over-TLS client (RFC 7858, RFC 8310 profiles)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Resolve one name and print the answer like `dig +short`.
    Query {
        /// Name to resolve.
        #[arg(value_name = "NAME")]
        qname: String,
        /// Record type (A, AAAA, TXT, MX, ... or a number).
        #[arg(default_value = "A")]
        rtype: String,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Run a local stub resolver on UDP and TCP until interrupted.
    Proxy {
        /// Address to listen on, e.g. 127.0.0.1:5353.
        #[arg(long, default_value = "127.0.0.1:5353")]
        listen: String,
        /// Most client queries being answered at once.
        #[arg(long, default_value_t = 4096)]
        max_concurrent: usize,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List the built-in providers.
    Providers,
    /// Answer DNS on a Linux TUN device, like the Android app does on its
    /// VpnService descriptor (Linux only; needs CAP_NET_ADMIN). Addresses and
    /// routes are left to `ip`: route the virtual DNS addresses (printed on
    /// start) into the device. SIGINT/SIGTERM stop (printing the counters
    /// with --stats), SIGHUP tells the engine the network changed (connections
    /// and cache dropped, DoT re-probed, --fallback resolvers kept), SIGUSR1
    /// prints the counters as one JSON line on stdout.
    Tun {
        /// TUN interface to open or create (IFF_TUN, no packet information).
        #[arg(long, default_value = "dotcore0")]
        dev: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Args)]
struct ServerArgs {
    /// Built-in provider id (see `dotcore providers`); default cloudflare.
    #[arg(long, conflicts_with = "server")]
    provider: Option<String>,
    /// Configuration ID for providers that need one (NextDNS).
    #[arg(long)]
    config_id: Option<String>,
    /// A DoT server address, IP or IP:PORT (repeatable).
    #[arg(long = "server")]
    server: Vec<String>,
    /// Authentication domain name of --server.
    #[arg(long)]
    name: Option<String>,
    /// SPKI pin (base64 SHA-256, RFC 7469) of --server (repeatable).
    #[arg(long = "pin")]
    pin: Vec<String>,
    /// Extra CA certificates (PEM file) to trust.
    #[arg(long)]
    ca: Option<String>,
    /// strict or opportunistic.
    #[arg(long, default_value = "strict")]
    mode: String,
    /// The network's clear-text resolver, IP or IP:PORT (repeatable; used by
    /// opportunistic mode).
    #[arg(long = "fallback")]
    fallback: Vec<String>,
    /// Per-query timeout in milliseconds.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Print the engine's counters as one JSON line on exit.
    #[arg(long)]
    stats: bool,
    /// Log each query to stderr.
    #[arg(long)]
    query_log: bool,
}

impl ServerArgs {
    fn config(&self) -> Result<Config, String> {
        let mode = Mode::parse(&self.mode)
            .ok_or_else(|| format!("--mode: {:?} is not strict or opportunistic", self.mode))?;
        let upstream = if !self.server.is_empty() {
            Upstream::Custom(vec![CustomServer {
                name: self.name.clone(),
                addresses: self.server.clone(),
                port: 0,
                pins: self.pin.clone(),
            }])
        } else if self.name.is_some() || !self.pin.is_empty() {
            return Err("--name and --pin need --server".into());
        } else if let Some(id) = &self.provider {
            Upstream::Provider {
                id: id.clone(),
                config_id: self.config_id.clone(),
            }
        } else if mode == Mode::Opportunistic && !self.fallback.is_empty() {
            Upstream::NetworkResolvers
        } else {
            Config::default().upstream
        };
        let extra_ca_pem = match &self.ca {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("--ca: cannot read {path}: {e}"))?,
            ),
            None => None,
        };
        let network_resolvers = self
            .fallback
            .iter()
            .map(|f| {
                parse_resolver_address(f)
                    .map_err(|_| format!("--fallback: {f:?} is not IP or IP:PORT"))
            })
            .collect::<Result<Vec<SocketAddr>, String>>()?;
        if self.timeout_ms == 0 {
            return Err("--timeout-ms: must be above 0".into());
        }
        let mut config = Config {
            upstream,
            mode,
            extra_ca_pem,
            network_resolvers,
            query_log: self.query_log,
            ..Config::default()
        };
        config.timeouts.query = Duration::from_millis(self.timeout_ms);
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    fn resolver(&self) -> Result<Resolver, String> {
        self.resolver_for(&self.config()?)
    }

    fn resolver_for(&self, config: &Config) -> Result<Resolver, String> {
        let host: Arc<dyn dotcore::Host> = if self.query_log {
            Arc::new(StderrLog)
        } else {
            Arc::new(NoHost)
        };
        Resolver::new(config, host).map_err(|e| e.to_string())
    }
}

/// Host printing events to stderr, for `--query-log`.
struct StderrLog;

impl dotcore::Host for StderrLog {
    fn on_event(&self, event: dotcore::Event) {
        eprintln!("{event:?}");
    }
}

fn main() -> ExitCode {
    let cli = Cli::try_parse();
    // `query` prints each server's failure itself, in its last lines; the
    // engine's log of the same failures would only repeat them. `proxy` and
    // `tun` keep that log: one line per server address each time its
    // failure changes.
    let filter = match &cli {
        Ok(Cli {
            command: Command::Query { .. },
        }) => "warn,dotcore::server=off",
        _ => "warn",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(filter)).init();
    let cli = match cli {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // One line, not clap's usage block: scripts log it as it is.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            eprintln!(
                "dotcore: {} (see --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    // One thread, as on the phone.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dotcore: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Query {
                qname,
                rtype,
                json,
                server,
            } => query(&qname, &rtype, json, &server).await,
            Command::Proxy {
                listen,
                max_concurrent,
                server,
            } => proxy(&listen, max_concurrent, &server).await,
            Command::Tun { dev, server } => tun(&dev, &server).await,
            Command::Providers => {
                for p in providers::PROVIDERS {
                    let addrs: Vec<String> = p.addresses.iter().map(|a| a.to_string()).collect();
                    println!("{:<14} {:<40} {}", p.id, p.auth_name, addrs.join(" "));
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dotcore: {e}");
            ExitCode::from(2)
        }
    }
}

async fn query(name: &str, rtype: &str, json: bool, args: &ServerArgs) -> Result<ExitCode, String> {
    let bytes = message::build_query(name, rtype).map_err(|e| e.to_string())?;
    let resolver = args.resolver()?;
    let answer = resolver.resolve(&bytes).await;
    let answer = message::decode_answer(&answer).map_err(|e| e.to_string())?;
    let stats = resolver.stats();
    // A fresh resolver answered one query: every failure recorded is this
    // query's, one per address tried.
    let failed: Vec<_> = stats
        .servers
        .iter()
        .filter_map(|s| s.last_failure.as_ref().map(|f| (s, f)))
        .collect();
    if json {
        let records: Vec<serde_json::Value> = answer
            .records
            .iter()
            .map(|r| serde_json::json!({"name": r.name, "type": r.rtype, "ttl": r.ttl, "data": r.data}))
            .collect();
        let failures: Vec<serde_json::Value> = failed
            .iter()
            .map(|(s, f)| {
                serde_json::json!({
                    "server": s.server,
                    "address": s.address.to_string(),
                    "kind": f.kind.as_str(),
                    "reason": f.text,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"rcode": answer.rcode, "answers": records, "failures": failures})
        );
    } else {
        for r in &answer.records {
            println!("{}", r.data);
        }
    }
    if args.stats {
        println!("{}", stats.to_json());
    }
    resolver.shutdown().await;
    if answer.rcode == "NOERROR" {
        return Ok(ExitCode::SUCCESS);
    }
    if answer.rcode == "SERVFAIL" && !failed.is_empty() {
        for (s, f) in &failed {
            eprintln!(
                "dotcore: {name} {rtype}: SERVFAIL \u{2014} {}: {}",
                s.address, f.text
            );
        }
    } else {
        // The server's own answer: NXDOMAIN, or a SERVFAIL of its own.
        eprintln!("dotcore: {name} {rtype}: {}", answer.rcode);
    }
    Ok(ExitCode::FAILURE)
}

async fn proxy(listen: &str, max_concurrent: usize, args: &ServerArgs) -> Result<ExitCode, String> {
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| format!("--listen: {listen:?} is not IP:PORT"))?;
    if max_concurrent == 0 {
        return Err("--max-concurrent: must be above 0".into());
    }
    let config = args.config()?;
    if config.network_resolvers.contains(&addr) {
        return Err(format!(
            "--fallback: {addr} is this proxy's own --listen address; queries would loop"
        ));
    }
    let resolver = args.resolver_for(&config)?;
    let udp = Arc::new(
        UdpSocket::bind(addr)
            .await
            .map_err(|e| format!("--listen: cannot bind UDP {addr}: {e}"))?,
    );
    let tcp = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--listen: cannot bind TCP {addr}: {e}"))?;
    eprintln!("dotcore: listening on {addr} (UDP and TCP)");
    let limit = Arc::new(Semaphore::new(max_concurrent));
    let udp_task = tokio::spawn(serve_udp(udp, resolver.clone(), limit.clone()));
    let tcp_task = tokio::spawn(serve_tcp(tcp, resolver.clone(), limit));
    wait_for_signal().await;
    udp_task.abort();
    tcp_task.abort();
    if args.stats {
        println!("{}", resolver.stats().to_json());
    }
    resolver.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

/// The largest UDP payload over IPv4 or IPv6 (without jumbograms) fits, so
/// no query is ever cut short by the buffer.
const MAX_UDP_DATAGRAM: usize = 65_535;

/// Most datagrams taken from the socket by one `recvmmsg`: a burst costs
/// one system call per this many queries. The kernel writes only the start
/// of each slot, so most of the buffer's pages are never touched and, as a
/// fresh zeroed mapping, never take memory.
#[cfg(target_os = "linux")]
const UDP_BATCH: usize = 16;

/// Serves UDP clients. The datagrams ready at a wake-up are taken with one
/// `recvmmsg`. When it returns fewer than it had room for, its own next
/// read inside the kernel found the queue empty, so readiness is cleared
/// there and then, instead of being confirmed by a further read failing
/// with `EAGAIN` as tokio's `recv_from` loop does: one system call less per
/// wake-up. Room is offered for twice the datagrams the last call took
/// (2 to [`UDP_BATCH`]): one spare slot is all it takes to see the queue
/// run dry, and every slot costs a header to set up and a permit to hold.
///
/// The answers run inside this task rather than in a task each: tokio
/// allocates each task aligned to a cache line, which glibc serves on its
/// slow path whatever the size. Here each answer is one plain allocation,
/// and with a query's future kept small (resolver.rs's
/// `the_future_of_a_query_stays_small`) it fits glibc's per-thread cache
/// (1,032 bytes). Together the two took libc from 14–19 % of the proxy's
/// CPU samples under load to 9 % (docs/BENCHMARKS.md).
#[cfg(target_os = "linux")]
async fn serve_udp(socket: Arc<UdpSocket>, resolver: Resolver, limit: Arc<Semaphore>) {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    use futures_util::FutureExt;
    use std::panic::AssertUnwindSafe;

    let ipv6 = socket.local_addr().is_ok_and(|a| a.is_ipv6());
    let mut buf = vec![0u8; UDP_BATCH * MAX_UDP_DATAGRAM];
    // (length, source) of each datagram of the last `recvmmsg`, slot by slot.
    let mut taken: Vec<(usize, Option<SocketAddr>)> = Vec::with_capacity(UDP_BATCH);
    // One permit per slot offered to the kernel, so that every datagram
    // taken already has its place in the concurrency limit.
    let mut permits = Vec::with_capacity(UDP_BATCH);
    let mut answers = FuturesUnordered::new();
    let mut want = 2;
    loop {
        let batch = UdpBatch {
            socket: &socket,
            ipv6,
            buf: &mut buf,
            taken: &mut taken,
            permits: &mut permits,
        };
        let received = tokio::select! {
            // Answers first: each one done frees a permit for the next read.
            biased;
            Some(answered) = answers.next() => {
                // As for a tokio task that panics: that query goes
                // unanswered (the panic message is printed), the others
                // carry on.
                let answered: std::thread::Result<()> = answered;
                if answered.is_err() {
                    log::error!("a UDP answer panicked; that query got no answer");
                }
                continue;
            }
            received = batch.receive(&limit, want) => received,
        };
        match received {
            Ok(()) => {}
            Err(BatchError::Closed) => return,
            Err(BatchError::Io(e)) => {
                log::warn!("UDP receive: {e}");
                continue;
            }
        }
        for (slot, &(len, peer)) in buf.chunks(MAX_UDP_DATAGRAM).zip(&taken) {
            let Some(peer) = peer else {
                // A socket bound to an IP address only hears from IP
                // addresses; nowhere to answer otherwise.
                log::debug!("UDP datagram without an IP source address, dropped");
                continue;
            };
            let query = &slot[..len.min(slot.len())];
            if is_response_to_drop(query, peer) {
                continue;
            }
            let Some(permit) = permits.pop() else {
                // Not reached: the kernel fills at most as many datagrams
                // as there are permits.
                break;
            };
            let answer = answer_udp(
                socket.clone(),
                resolver.clone(),
                query.to_vec(),
                peer,
                permit,
            );
            answers.push(AssertUnwindSafe(answer).catch_unwind());
        }
        want = (taken.len() * 2).clamp(2, UDP_BATCH);
    }
}

/// What one read of [`serve_udp`] works with, borrowed from its loop.
#[cfg(target_os = "linux")]
struct UdpBatch<'a> {
    socket: &'a UdpSocket,
    ipv6: bool,
    buf: &'a mut [u8],
    taken: &'a mut Vec<(usize, Option<SocketAddr>)>,
    permits: &'a mut Vec<tokio::sync::OwnedSemaphorePermit>,
}

/// Why [`UdpBatch::receive`] took no datagrams.
#[cfg(target_os = "linux")]
enum BatchError {
    /// The concurrency limit was closed: the proxy is stopping.
    Closed,
    /// The socket failed.
    Io(std::io::Error),
}

#[cfg(target_os = "linux")]
impl UdpBatch<'_> {
    /// Waits for a permit and for datagrams, then takes up to `want` of
    /// them (as many as permits are free) into `taken`. Dropping it while
    /// it waits loses nothing: permits already taken stay in `permits`.
    async fn receive(self, limit: &Arc<Semaphore>, want: usize) -> Result<(), BatchError> {
        use std::io::ErrorKind;
        use std::os::fd::AsRawFd;
        use tokio::io::Interest;

        // Wait for one permit before reading: a full engine slows the
        // reader, and the kernel's socket buffer (not our memory) absorbs
        // the burst. Further slots take only permits free once there is
        // something to read, so an idle reader holds just one.
        self.permits.truncate(1);
        if self.permits.is_empty() {
            let permit = limit
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| BatchError::Closed)?;
            self.permits.push(permit);
        }
        self.socket.readable().await.map_err(BatchError::Io)?;
        while self.permits.len() < want {
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                break;
            };
            self.permits.push(permit);
        }
        let slots = self.permits.len();
        self.taken.clear();
        // `try_io` clears readiness when the closure reports `WouldBlock`,
        // which it does exactly when the kernel's reads ran dry.
        let received = self.socket.try_io(Interest::READABLE, || {
            let fd = self.socket.as_raw_fd();
            recv_datagrams(fd, self.ipv6, self.buf, slots, self.taken)?;
            if self.taken.len() < slots {
                return Err(ErrorKind::WouldBlock.into());
            }
            Ok(())
        });
        match received {
            Err(e) if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                Err(BatchError::Io(e))
            }
            _ => Ok(()),
        }
    }
}

/// One `recvmmsg` into the first `slots` slots of `buf` (at most
/// [`UDP_BATCH`]), each datagram's length and source pushed onto `taken`;
/// `ipv6` tells the socket's address family.
#[cfg(target_os = "linux")]
fn recv_datagrams(
    fd: std::os::fd::RawFd,
    ipv6: bool,
    buf: &mut [u8],
    slots: usize,
    taken: &mut Vec<(usize, Option<SocketAddr>)>,
) -> std::io::Result<()> {
    use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
    use std::cell::RefCell;
    use std::io::IoSliceMut;

    type Headers = RefCell<Option<MultiHeaders<SockaddrStorage>>>;
    thread_local! {
        // Set up once: allocating headers anew per call cost about 500
        // instructions per query at a low rate. They hold raw pointers, so
        // they are not `Send` and cannot live in `serve_udp`'s future; one
        // set per runtime thread the task runs on. One set per address
        // family, too: the kernel leaves in each header the length of the
        // address it stored, nix does not reset it, and the next call takes
        // it as the room for an address, which only holds when every
        // datagram through a set comes from the same family.
        static HEADERS: [Headers; 2] = const { [RefCell::new(None), RefCell::new(None)] };
    }
    HEADERS.with(|sets| {
        let mut set = sets[usize::from(ipv6)].borrow_mut();
        let headers = set.get_or_insert_with(|| MultiHeaders::preallocate(UDP_BATCH, None));
        let mut slots_of_buf = buf.chunks_mut(MAX_UDP_DATAGRAM);
        let mut iovs: [[IoSliceMut<'_>; 1]; UDP_BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(slots_of_buf.next().unwrap_or_default())]);
        let offered = &mut iovs[..slots.min(UDP_BATCH)];
        let received = recvmmsg(fd, headers, offered.iter_mut(), MsgFlags::empty(), None)?;
        taken.extend(received.map(|datagram| {
            let peer = datagram.address.and_then(|a| {
                a.as_sockaddr_in()
                    .map(|&v4| SocketAddr::from(v4))
                    .or_else(|| a.as_sockaddr_in6().map(|&v6| SocketAddr::from(v6)))
            });
            (datagram.bytes, peer)
        }));
        Ok(())
    })
}

#[cfg(not(target_os = "linux"))]
async fn serve_udp(socket: Arc<UdpSocket>, resolver: Resolver, limit: Arc<Semaphore>) {
    let mut buf = vec![0u8; MAX_UDP_DATAGRAM];
    loop {
        // Take a permit before reading: a full engine slows the reader, and
        // the kernel's socket buffer (not our memory) absorbs the burst.
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                log::warn!("UDP receive: {e}");
                continue;
            }
        };
        if is_response_to_drop(&buf[..n], peer) {
            continue;
        }
        tokio::spawn(answer_udp(
            socket.clone(),
            resolver.clone(),
            buf[..n].to_vec(),
            peer,
            permit,
        ));
    }
}

/// Whether a UDP datagram is a DNS response, which gets no answer at all,
/// not even an error: with a spoofed source, two servers doing so would
/// answer each other forever.
fn is_response_to_drop(datagram: &[u8], peer: SocketAddr) -> bool {
    let response = dotcore::is_dns_response(datagram);
    if response {
        log::debug!("UDP from {peer}: a DNS response, dropped");
    }
    response
}

/// Resolves `query` and sends the answer to `peer`, cut to the client's
/// buffer; `permit` (its place in the concurrency limit) is held until
/// then.
async fn answer_udp(
    socket: Arc<UdpSocket>,
    resolver: Resolver,
    query: Vec<u8>,
    peer: SocketAddr,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let mut answer = resolver.resolve(&query).await;
    let limit = client_udp_payload_limit(&query);
    if answer.len() > limit {
        answer = truncate_dns_response(&answer, limit);
    }
    if let Err(e) = socket.send_to(&answer, peer).await {
        log::debug!("UDP send to {peer}: {e}");
    }
    drop(permit);
}

/// TCP clients served at once. Further connections are closed as soon as
/// they are accepted, so that clients cannot take every descriptor of the
/// process.
const MAX_TCP_CLIENTS: usize = 256;

async fn serve_tcp(listener: TcpListener, resolver: Resolver, limit: Arc<Semaphore>) {
    let clients = Arc::new(Semaphore::new(MAX_TCP_CLIENTS));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Ok(slot) = clients.clone().try_acquire_owned() else {
                    log::debug!("TCP from {peer}: {MAX_TCP_CLIENTS} clients connected; closed");
                    continue;
                };
                let (resolver, limit) = (resolver.clone(), limit.clone());
                tokio::spawn(async move {
                    serve_tcp_client(stream, resolver, limit).await;
                    drop(slot);
                });
            }
            Err(e) => {
                log::warn!("TCP accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// How long a TCP client may stay idle and then take to send a whole query
/// before the connection is closed (RFC 7766 §6.2.3 suggests seconds).
const TCP_CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One TCP client: queries answered concurrently, answers written in
/// completion order (RFC 7766 §6.2.1.1), the connection closed when the
/// client is idle, or sends a query too slowly, for [`TCP_CLIENT_TIMEOUT`].
async fn serve_tcp_client(stream: TcpStream, resolver: Resolver, limit: Arc<Semaphore>) {
    let _ = stream.set_nodelay(true);
    let (reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    let writer_task = tokio::spawn(async move {
        while let Some(answer) = rx.recv().await {
            let framed = match framing::framed(&answer) {
                Ok(f) => f,
                Err(e) => {
                    // Its client waits for an answer that cannot come; closing
                    // tells it at once.
                    log::warn!("TCP answer not sent: {e}");
                    return;
                }
            };
            if writer.write_all(&framed).await.is_err() {
                return;
            }
        }
    });
    let mut reader = FrameReader::new(reader);
    loop {
        // A client that stays idle, or announces a length and then stalls,
        // must not hold the connection (and its buffer) forever.
        let query = match tokio::time::timeout(TCP_CLIENT_TIMEOUT, reader.next()).await {
            Ok(Ok(Some(query))) => query,
            _ => break,
        };
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        let resolver = resolver.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let answer = resolver.resolve(&query).await;
            let _ = tx.send(answer).await;
            drop(permit);
        });
    }
    drop(tx);
    let _ = writer_task.await;
}

/// Host of `dotcore tun`: events to stderr (per-query ones with
/// --query-log). On Linux nothing needs protecting: only the virtual DNS
/// addresses are routed into the device, so upstream sockets never loop.
struct TunHost {
    query_log: bool,
    /// Signalled when the device went away, so the command ends.
    device_gone: tokio::sync::Notify,
}

impl dotcore::Host for TunHost {
    fn on_event(&self, event: dotcore::Event) {
        if matches!(event, dotcore::Event::TunClosed { .. }) {
            self.device_gone.notify_one();
        }
        if self.query_log || !matches!(event, dotcore::Event::Query { .. }) {
            eprintln!("dotcore: event: {event:?}");
        }
    }
}

/// Resolver and packet-path counters as one JSON line.
fn engine_stats_json(engine: &dotcore::Engine) -> String {
    /// The line's shape: each part keeps its own key order.
    #[derive(serde::Serialize)]
    struct EngineStatsLine {
        resolver: dotcore::StatsSnapshot,
        packets: dotcore::tun::PacketPathStats,
    }
    let line = EngineStatsLine {
        resolver: engine.stats(),
        packets: engine.packet_stats(),
    };
    serde_json::to_string(&line).unwrap_or_else(|e| {
        serde_json::json!({ "error": format!("cannot serialise the stats: {e}") }).to_string()
    })
}

#[cfg(target_os = "linux")]
async fn tun(dev: &str, args: &ServerArgs) -> Result<ExitCode, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let config = args.config()?;
    let mut signals = Vec::new();
    for kind in [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
        SignalKind::user_defined1(),
    ] {
        signals.push(signal(kind).map_err(|e| format!("cannot handle signals: {e}"))?);
    }
    let [int, term, hup, usr1] = signals.as_mut_slice() else {
        return Err("cannot handle signals".into());
    };
    let (fd, name) = dotcore::tun::open_tun(dev)
        .map_err(|e| format!("--dev: cannot open TUN device {dev:?}: {e}"))?;
    let host = Arc::new(TunHost {
        query_log: args.query_log,
        device_gone: tokio::sync::Notify::new(),
    });
    let engine = dotcore::Engine::start(&config, fd, host.clone()).map_err(|e| e.to_string())?;
    eprintln!(
        "dotcore: answering DNS on {name} at {} and {}",
        dotcore::net::VIRTUAL_DNS_V4,
        dotcore::net::VIRTUAL_DNS_V6
    );
    let mut exit = ExitCode::SUCCESS;
    loop {
        tokio::select! {
            _ = int.recv() => break,
            _ = term.recv() => break,
            () = host.device_gone.notified() => {
                eprintln!("dotcore: the TUN device {name} went away; exiting");
                exit = ExitCode::FAILURE;
                break;
            }
            _ = hup.recv() => {
                eprintln!("dotcore: network changed");
                engine.network_changed(config.network_resolvers.clone());
            }
            _ = usr1.recv() => println!("{}", engine_stats_json(&engine)),
        }
    }
    engine.stop();
    if args.stats {
        println!("{}", engine_stats_json(&engine));
    }
    eprintln!("dotcore: stopped");
    Ok(exit)
}

#[cfg(not(target_os = "linux"))]
async fn tun(_dev: &str, _args: &ServerArgs) -> Result<ExitCode, String> {
    Err("tun: only available on Linux".into())
}
