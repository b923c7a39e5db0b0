//! A private unbound instance serving DNS-over-TLS on loopback.
//!
//! Tests of a DoT client need a real, independent DoT server: one we did not
//! write, so both sides cannot share the same misunderstanding of RFC 7858.
//! unbound is what many public resolvers run, and it can serve static data
//! with no upstream, so the whole fixture works without internet.
//!
//! Each [`UnboundServer`] owns a temporary directory (config, certificates,
//! log, pid file) and a child `unbound -d` process listening on free loopback
//! ports; dropping it kills the process and removes the directory. It never
//! recurses: the only answers are the records of [`default_zone`] (or the
//! zone a test supplies); everything else is REFUSED.
//!
//! All methods block (they sleep while polling). From async tests call them
//! before entering the runtime or through `tokio::task::spawn_blocking`.

use std::fs;
use std::io::{self, Read as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::certs::{PkiFiles, TestPki};

// ---------------------------------------------------------------------------
// Zone data
// ---------------------------------------------------------------------------

/// Name with one A and one AAAA record: the basic positive answer.
pub const A_TEST: &str = "a.test.";
/// The A record of [`A_TEST`].
pub const A_TEST_V4: &str = "192.0.2.1";
/// The AAAA record of [`A_TEST`].
pub const A_TEST_V6: &str = "2001:db8::1";
/// TTL of the [`A_TEST`] records, for cache-expiry assertions.
pub const A_TEST_TTL: u32 = 300;

/// Name with a single TXT record (no A/AAAA: querying those gives NODATA).
pub const TXT_TEST: &str = "txt.test.";
/// The character-string of the [`TXT_TEST`] record.
pub const TXT_TEST_VALUE: &str = "hello dotcore";

/// Name with several A records, for RRset handling/ordering tests.
pub const MULTI_TEST: &str = "multi.test.";
/// The A records of [`MULTI_TEST`] (unbound may rotate their order).
pub const MULTI_TEST_V4: &[&str] = &["192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.14"];

/// Name whose TXT RRset (~2.1 KB) exceeds both 512 bytes and unbound's EDNS
/// UDP limit (1232), so UDP answers come back truncated (TC=1) and only
/// stream transports (TCP, DoT) get the whole answer.
pub const BIG_TEST: &str = "big.test.";
/// Number of TXT records of [`BIG_TEST`].
pub const BIG_TEST_RECORDS: usize = 16;
/// Length in bytes of each TXT string of [`BIG_TEST`].
pub const BIG_TEST_STRING_LEN: usize = 120;

/// Name with a 2 s TTL, so cache-expiry tests finish quickly.
pub const SHORT_TEST: &str = "short.test.";
/// The A record of [`SHORT_TEST`].
pub const SHORT_TEST_V4: &str = "192.0.2.9";
/// TTL of the [`SHORT_TEST`] record.
pub const SHORT_TEST_TTL: u32 = 2;

/// Name that is a CNAME to [`A_TEST`]. unbound answers a static local-data
/// CNAME with the CNAME record only (it does not chase it), which is what a
/// client must cope with anyway.
pub const CNAME_TEST: &str = "cname.test.";
/// Target of [`CNAME_TEST`].
pub const CNAME_TEST_TARGET: &str = "a.test.";

/// A name that does not exist: any name under `test.` not listed here gets
/// NXDOMAIN with [`TEST_SOA`] in the authority section (negative caching).
pub const NX_TEST: &str = "nx.test.";
/// SOA of the `test.` zone (in unbound local-data syntax), returned with
/// NXDOMAIN/NODATA answers.
pub const TEST_SOA: &str = "test. 3600 SOA ns.test. admin.test. 1 3600 600 86400 60";
/// SOA MINIMUM of `test.`; the negative-caching TTL (RFC 2308) is
/// min(SOA TTL, MINIMUM) = this.
pub const TEST_NEGATIVE_TTL: u32 = 60;

/// Redirect zone: *every* name under `bench.` answers A [`BENCH_V4`], so
/// benchmarks can generate unique names that always miss client caches.
pub const BENCH_ZONE: &str = "bench.";
/// The A answer of every name under [`BENCH_ZONE`].
pub const BENCH_V4: &str = "192.0.2.100";
/// TTL of the [`BENCH_ZONE`] answers.
pub const BENCH_TTL: u32 = 300;

/// A name outside the served zones: the fixture answers REFUSED because it
/// has no upstream (`local-zone: "." refuse`).
pub const REFUSED_NAME: &str = "example.com.";

/// The TXT strings of [`BIG_TEST`], in the order they are configured.
/// Each is distinct (so none is dropped as a duplicate RR) and exactly
/// [`BIG_TEST_STRING_LEN`] bytes of plain ASCII (no escaping needed).
pub fn big_test_txt() -> Vec<String> {
    let filler = "abcdefghijklmnopqrstuvwxyz0123456789".repeat(4);
    (0..BIG_TEST_RECORDS)
        .map(|i| {
            let mut s = format!("big-{i:02}-{filler}");
            s.truncate(BIG_TEST_STRING_LEN);
            s
        })
        .collect()
}

/// The unbound `server:` lines that define the test zones described by the
/// constants above. Public so a test can extend or edit it and pass the
/// result as [`UnboundOptions::zone`].
pub fn default_zone() -> Vec<String> {
    let mut z = vec![
        // No upstream: anything not below a more specific zone is refused.
        r#"local-zone: "." refuse"#.to_string(),
        r#"local-zone: "test." static"#.to_string(),
        format!(r#"local-data: "{TEST_SOA}""#),
        format!(r#"local-data: "{A_TEST} {A_TEST_TTL} IN A {A_TEST_V4}""#),
        format!(r#"local-data: "{A_TEST} {A_TEST_TTL} IN AAAA {A_TEST_V6}""#),
        format!(r#"local-data: '{TXT_TEST} 300 IN TXT "{TXT_TEST_VALUE}"'"#),
        format!(r#"local-data: "{SHORT_TEST} {SHORT_TEST_TTL} IN A {SHORT_TEST_V4}""#),
        format!(r#"local-data: "{CNAME_TEST} 300 IN CNAME {CNAME_TEST_TARGET}""#),
    ];
    for ip in MULTI_TEST_V4 {
        z.push(format!(r#"local-data: "{MULTI_TEST} 300 IN A {ip}""#));
    }
    for s in big_test_txt() {
        z.push(format!(r#"local-data: '{BIG_TEST} 300 IN TXT "{s}"'"#));
    }
    z.push(format!(r#"local-zone: "{BENCH_ZONE}" redirect"#));
    z.push(format!(
        r#"local-data: "{BENCH_ZONE} {BENCH_TTL} IN A {BENCH_V4}""#
    ));
    z
}

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

/// How to configure an [`UnboundServer`]. Start from `Default::default()`
/// and override fields with struct-update syntax.
pub struct UnboundOptions {
    /// Open the DoT listener. Off gives a server with plain DNS only, so
    /// connecting to [`UnboundServer::dot_addr`] is refused.
    pub tls: bool,
    /// Certificates to serve; `None` generates a fresh [`TestPki`] whose
    /// leaf is valid for `dot.test`, 127.0.0.1 and ::1.
    pub pki: Option<TestPki>,
    /// Serve the leaf followed by the CA certificate instead of the leaf
    /// alone, for tests that pin the CA key.
    pub send_chain: bool,
    /// unbound `verbosity` (0-5); raise it when debugging a failing test.
    pub verbosity: u8,
    /// unbound `log-queries`: one log line per query received, so tests can
    /// count what actually reached the server (e.g. cache hits vs misses).
    pub log_queries: bool,
    /// unbound `tcp-idle-timeout` in ms: how long an idle TCP/TLS connection
    /// is kept when the client did not negotiate EDNS TCP keepalive.
    pub tcp_idle_timeout_ms: u32,
    /// unbound `edns-tcp-keepalive`: answer RFC 7828 keepalive options.
    pub edns_tcp_keepalive: bool,
    /// unbound `edns-tcp-keepalive-timeout` in ms: the idle timeout
    /// advertised to (and applied for) clients that sent keepalive.
    pub edns_tcp_keepalive_timeout_ms: u32,
    /// Also listen on ::1 (same ports), for IPv6 loopback tests.
    pub ipv6: bool,
    /// Zone lines (`local-zone:`/`local-data:`), default [`default_zone`].
    pub zone: Vec<String>,
    /// Raw lines appended at the end of the `server:` clause; they may also
    /// open further clauses (e.g. `remote-control:`).
    pub extra_config: Vec<String>,
    /// Run unbound inside this network namespace (`ip netns exec`), for the
    /// device simulator. Readiness is then probed from inside it with dig.
    pub netns: Option<String>,
    /// Addresses to listen on instead of loopback (with [`Self::netns`]:
    /// the namespace's own addresses). Access is then allowed from anywhere,
    /// which only the namespace's peers can reach. The first IPv4 address
    /// (else the first) is what [`UnboundServer::dot_addr`] and
    /// [`UnboundServer::plain_addr`] report.
    pub listen: Vec<IpAddr>,
    /// Fixed (plain, TLS) ports, e.g. (53, 853) inside a namespace, instead
    /// of free loopback ports.
    pub ports: Option<(u16, u16)>,
    /// Serve this (certificate chain PEM, private key PEM) instead of the
    /// leaf of [`Self::pki`], e.g. certificates made with the openssl CLI.
    /// The chain file starts with the server's certificate; unbound sends
    /// the rest in file order. [`UnboundServer::ca_file`] and the pins then
    /// still describe the generated PKI, which is no longer served.
    pub tls_service_files: Option<(PathBuf, PathBuf)>,
    /// Environment of the unbound process, e.g. `OPENSSL_CONF` with a
    /// `MaxProtocol`: unbound 1.17 has no `tls-protocols` option, but the
    /// OpenSSL it links applies the system-default section of that file.
    pub env: Vec<(String, String)>,
}

impl Default for UnboundOptions {
    fn default() -> Self {
        UnboundOptions {
            tls: true,
            pki: None,
            send_chain: false,
            verbosity: 1,
            log_queries: false,
            tcp_idle_timeout_ms: 30_000,
            edns_tcp_keepalive: true,
            edns_tcp_keepalive_timeout_ms: 120_000,
            ipv6: false,
            zone: default_zone(),
            extra_config: Vec::new(),
            netns: None,
            listen: Vec::new(),
            ports: None,
            tls_service_files: None,
            env: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

/// Attempts at finding free ports and starting unbound on them; another
/// process can grab a port between our probe and unbound's bind.
const START_ATTEMPTS: usize = 5;
/// Readiness polling: attempts x interval bounds the wait for unbound.
const READY_ATTEMPTS: usize = 200;
const READY_INTERVAL: Duration = Duration::from_millis(50);
/// Attempts at rebinding the same ports in [`UnboundServer::restart`].
const RESTART_ATTEMPTS: usize = 10;

/// A running (or stopped) private unbound instance. See the module docs.
pub struct UnboundServer {
    dir: tempfile::TempDir,
    files: PkiFiles,
    pki: TestPki,
    conf_path: PathBuf,
    log_path: PathBuf,
    stderr_path: PathBuf,
    pid_path: PathBuf,
    plain_port: u16,
    tls_port: u16,
    tls: bool,
    ipv6: bool,
    netns: Option<String>,
    listen: Vec<IpAddr>,
    identity: String,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

/// Why one launch attempt failed; bind conflicts are retried on new ports.
enum LaunchError {
    PortInUse(String),
    Fatal(String),
}

impl UnboundServer {
    /// Writes the configuration and starts unbound, returning once it answers
    /// on its plain port and accepts TCP on its TLS port.
    ///
    /// Errors (as text meant for a test failure message, including unbound's
    /// log) when unbound is not installed, rejects the configuration, or is
    /// not ready within ~10 s.
    pub fn start(mut options: UnboundOptions) -> Result<UnboundServer, String> {
        let unbound = find_tool("unbound").ok_or_else(|| {
            "unbound is not installed (run scripts/setup.sh or apt-get install unbound)".to_string()
        })?;
        let dir = tempfile::Builder::new()
            .prefix("dotcore-unbound-")
            .tempdir()
            .map_err(|e| format!("create tempdir: {e}"))?;
        let pki = options.pki.take().unwrap_or_else(TestPki::generate);
        let files = pki
            .write_to(dir.path())
            .map_err(|e| format!("write certificates: {e}"))?;
        let identity = unique_identity();
        let mut server = UnboundServer {
            conf_path: dir.path().join("unbound.conf"),
            log_path: dir.path().join("unbound.log"),
            stderr_path: dir.path().join("unbound.stderr"),
            pid_path: dir.path().join("unbound.pid"),
            dir,
            files,
            pki,
            plain_port: 0,
            tls_port: 0,
            tls: options.tls,
            ipv6: options.ipv6,
            netns: options.netns.clone(),
            listen: options.listen.clone(),
            identity,
            env: options.env.clone(),
            child: None,
        };
        let mut last_err = String::new();
        for _ in 0..START_ATTEMPTS {
            let (plain, tls) = match options.ports {
                Some(ports) => ports,
                None => free_port_pair(options.ipv6)?,
            };
            server.plain_port = plain;
            server.tls_port = tls;
            let conf = server.render_config(&options);
            fs::write(&server.conf_path, conf).map_err(|e| format!("write unbound.conf: {e}"))?;
            match server.launch(&unbound) {
                Ok(()) => return Ok(server),
                Err(LaunchError::PortInUse(msg)) => last_err = msg,
                Err(LaunchError::Fatal(msg)) => return Err(msg),
            }
        }
        Err(format!(
            "unbound could not bind free ports after {START_ATTEMPTS} attempts: {last_err}"
        ))
    }

    fn render_config(&self, o: &UnboundOptions) -> String {
        let q = |p: &Path| format!("\"{}\"", p.display());
        let mut c = String::from("server:\n");
        let mut line = |s: String| {
            c.push_str("    ");
            c.push_str(&s);
            c.push('\n');
        };
        let mut listen: Vec<String> = o.listen.iter().map(IpAddr::to_string).collect();
        if listen.is_empty() {
            listen.push("127.0.0.1".into());
            if o.ipv6 {
                listen.push("::1".into());
            }
        }
        for a in &listen {
            line(format!("interface: {a}@{}", self.plain_port));
        }
        if o.tls {
            for a in &listen {
                line(format!("interface: {a}@{}", self.tls_port));
            }
            line(format!("tls-port: {}", self.tls_port));
            let (pem, key) = match &o.tls_service_files {
                Some((pem, key)) => (pem, key),
                None if o.send_chain => (&self.files.leaf_chain, &self.files.leaf_key),
                None => (&self.files.leaf_cert, &self.files.leaf_key),
            };
            line(format!("tls-service-key: {}", q(key)));
            line(format!("tls-service-pem: {}", q(pem)));
        }
        line("do-ip4: yes".into());
        line(format!("do-ip6: {}", yes_no(o.ipv6)));
        line("do-udp: yes".into());
        line("do-tcp: yes".into());
        line("so-reuseport: no".into());
        line("do-daemonize: no".into());
        line("username: \"\"".into());
        line("chroot: \"\"".into());
        line(format!("directory: {}", q(self.dir.path())));
        line(format!("pidfile: {}", q(&self.pid_path)));
        line("use-syslog: no".into());
        line(format!("logfile: {}", q(&self.log_path)));
        line(format!("verbosity: {}", o.verbosity));
        line(format!("log-queries: {}", yes_no(o.log_queries)));
        line(format!("identity: \"{}\"", self.identity));
        line("access-control: 127.0.0.0/8 allow".into());
        line("access-control: ::1/128 allow".into());
        if !o.listen.is_empty() {
            line("access-control: 0.0.0.0/0 allow".into());
            line("access-control: ::/0 allow".into());
        }
        line("num-threads: 1".into());
        line("incoming-num-tcp: 1000".into());
        // We never recurse; keeping the outgoing pool small keeps the fd
        // needs within the default 1024 limit of unprivileged users.
        line("outgoing-range: 64".into());
        line(format!("tcp-idle-timeout: {}", o.tcp_idle_timeout_ms));
        line(format!(
            "edns-tcp-keepalive: {}",
            yes_no(o.edns_tcp_keepalive)
        ));
        line(format!(
            "edns-tcp-keepalive-timeout: {}",
            o.edns_tcp_keepalive_timeout_ms
        ));
        line("qname-minimisation: no".into());
        line("module-config: \"iterator\"".into());
        for z in &o.zone {
            line(z.clone());
        }
        for x in &o.extra_config {
            line(x.clone());
        }
        c
    }

    fn launch(&mut self, unbound: &Path) -> Result<(), LaunchError> {
        let _ = fs::remove_file(&self.pid_path);
        let _ = fs::remove_file(&self.stderr_path);
        let stderr = fs::File::create(&self.stderr_path)
            .map_err(|e| LaunchError::Fatal(format!("create stderr file: {e}")))?;
        let mut cmd = match &self.netns {
            Some(ns) => {
                let ip = find_tool("ip")
                    .ok_or_else(|| LaunchError::Fatal("ip (iproute2) is not installed".into()))?;
                let mut c = Command::new(ip);
                c.args(["netns", "exec", ns]).arg(unbound);
                c
            }
            None => Command::new(unbound),
        };
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .arg("-d")
            .arg("-c")
            .arg(&self.conf_path)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(
                stderr
                    .try_clone()
                    .map_err(|e| LaunchError::Fatal(e.to_string()))?,
            )
            .stderr(stderr);
        let child =
            spawn_tied(cmd).map_err(|e| LaunchError::Fatal(format!("spawn unbound: {e}")))?;
        self.child = Some(child);
        match self.wait_ready() {
            Ok(()) => Ok(()),
            Err(e) => {
                self.stop();
                let log = self.diagnostics();
                if log.contains("Address already in use") || log.contains("could not open ports") {
                    Err(LaunchError::PortInUse(format!("{e}\n{log}")))
                } else {
                    Err(LaunchError::Fatal(format!(
                        "unbound did not start: {e}\n{log}"
                    )))
                }
            }
        }
    }

    /// Polls until our instance (recognised by its unique `identity`) answers
    /// on the plain port and something listens on the TLS port, or the child
    /// exits. unbound binds every listener before serving any, so once the
    /// identity answer arrives the TLS listener is unbound's too.
    fn wait_ready(&mut self) -> Result<(), String> {
        for _ in 0..READY_ATTEMPTS {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("unbound exited with {status}"));
                }
            }
            if let Some(ns) = &self.netns {
                // unbound binds every listener before serving any, so our
                // identity answering means the TLS port is ours too.
                if probe_identity_in_netns(ns, self.plain_addr(), &self.identity) {
                    return Ok(());
                }
            } else if probe_identity(self.plain_addr(), &self.identity)
                && (!self.tls || port_is_listening(self.dot_addr()))
            {
                return Ok(());
            }
            thread::sleep(READY_INTERVAL);
        }
        Err(format!(
            "not ready after {} ms",
            READY_ATTEMPTS as u128 * READY_INTERVAL.as_millis()
        ))
    }

    fn diagnostics(&self) -> String {
        format!(
            "--- unbound.log ---\n{}--- unbound stderr ---\n{}--- unbound.conf ---\n{}",
            self.read_log(),
            fs::read_to_string(&self.stderr_path).unwrap_or_default(),
            fs::read_to_string(&self.conf_path).unwrap_or_default(),
        )
    }

    /// The DoT endpoint (127.0.0.1:TLSPORT) to point clients at. When
    /// [`UnboundOptions::tls`] is off nothing listens there.
    pub fn dot_addr(&self) -> SocketAddr {
        SocketAddr::new(self.main_ip(), self.tls_port)
    }

    /// The DoT endpoint on `[::1]`, present only with [`UnboundOptions::ipv6`].
    pub fn dot_addr_v6(&self) -> Option<SocketAddr> {
        self.v6_ip().map(|ip| SocketAddr::new(ip, self.tls_port))
    }

    /// `::1` with [`UnboundOptions::ipv6`], or the first IPv6 address of
    /// [`UnboundOptions::listen`].
    fn v6_ip(&self) -> Option<IpAddr> {
        if self.listen.is_empty() {
            self.ipv6.then_some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        } else {
            self.listen.iter().find(|a| a.is_ipv6()).copied()
        }
    }

    /// The plain DNS endpoint (UDP and TCP), for comparing DoT answers with
    /// unencrypted ones and for truncation tests.
    pub fn plain_addr(&self) -> SocketAddr {
        SocketAddr::new(self.main_ip(), self.plain_port)
    }

    /// The address clients are pointed at: loopback, or the first IPv4 (else
    /// first) of [`UnboundOptions::listen`].
    fn main_ip(&self) -> IpAddr {
        self.listen
            .iter()
            .find(|a| a.is_ipv4())
            .or(self.listen.first())
            .copied()
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// The network namespace unbound runs in, if any.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// The plain DNS endpoint on `[::1]`, present only with
    /// [`UnboundOptions::ipv6`].
    pub fn plain_addr_v6(&self) -> Option<SocketAddr> {
        self.v6_ip().map(|ip| SocketAddr::new(ip, self.plain_port))
    }

    /// Path of the CA certificate PEM that clients must trust.
    pub fn ca_file(&self) -> &Path {
        &self.files.ca_cert
    }

    /// The CA certificate PEM, for clients configured in memory.
    pub fn ca_pem(&self) -> &str {
        self.pki.ca.cert_pem()
    }

    /// RFC 7469 SPKI pin of the leaf the server presents.
    pub fn leaf_pin(&self) -> String {
        self.pki.leaf.pin()
    }

    /// RFC 7469 SPKI pin of the CA (only matches a client that checks the
    /// whole chain; see [`UnboundOptions::send_chain`]).
    pub fn ca_pin(&self) -> String {
        self.pki.ca.pin()
    }

    /// The certificates in use, e.g. to issue another leaf from the same CA.
    pub fn pki(&self) -> &TestPki {
        &self.pki
    }

    /// Paths of all PEM files written for this server.
    pub fn pki_files(&self) -> &PkiFiles {
        &self.files
    }

    /// The server's private directory, for tests that need scratch files
    /// with the same lifetime as the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Path of the generated unbound.conf, to show in failure messages.
    pub fn config_path(&self) -> &Path {
        &self.conf_path
    }

    /// Path of unbound's log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// unbound's log so far (empty if nothing was written yet), so tests can
    /// assert on what the server saw, e.g. with [`UnboundOptions::log_queries`].
    pub fn read_log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(&self.log_path) {
            let mut buf = Vec::new();
            if f.read_to_end(&mut buf).is_ok() {
                s = String::from_utf8_lossy(&buf).into_owned();
            }
        }
        s
    }

    /// Waits (bounded by `timeout`) until the log contains `needle`, because
    /// unbound logs asynchronously relative to the answer a client receives.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.read_log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Number of log lines containing `needle` (e.g. `"a.test. A IN"` with
    /// [`UnboundOptions::log_queries`] counts queries that reached unbound).
    pub fn count_log(&self, needle: &str) -> usize {
        self.read_log()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Process id of the running unbound, for tests that inspect it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the unbound process is alive (it may have crashed or been
    /// stopped).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills unbound abruptly (SIGKILL), as a crashing or vanishing server:
    /// open connections are reset/closed by the kernel, no goodbye on the
    /// TLS layer. Ports stay reserved for [`restart`](Self::restart) only by
    /// convention (nothing else is expected to take them).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks unbound to exit (SIGTERM) and waits up to 5 s, then kills it:
    /// the orderly shutdown a server restart or redeploy looks like.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        signal(&child, libc::SIGCONT);
        signal(&child, libc::SIGTERM);
        for _ in 0..250 {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// Suspends unbound (SIGSTOP): the kernel still completes TCP handshakes
    /// into the listen backlog, but nothing is answered, like a hung server.
    /// Use it for timeout tests; undo with [`thaw`](Self::thaw).
    pub fn freeze(&self) {
        if let Some(c) = &self.child {
            signal(c, libc::SIGSTOP);
        }
    }

    /// Resumes a server suspended by [`freeze`](Self::freeze).
    pub fn thaw(&self) {
        if let Some(c) = &self.child {
            signal(c, libc::SIGCONT);
        }
    }

    /// Starts unbound again with the same configuration and ports (stopping
    /// it first if running), so clients can reconnect to the same address.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        let unbound = find_tool("unbound").ok_or("unbound is not installed")?;
        let mut last = String::new();
        for _ in 0..RESTART_ATTEMPTS {
            match self.launch(&unbound) {
                Ok(()) => return Ok(()),
                Err(LaunchError::PortInUse(msg)) => {
                    last = msg;
                    thread::sleep(Duration::from_millis(100));
                }
                Err(LaunchError::Fatal(msg)) => return Err(msg),
            }
        }
        Err(format!("restart: ports still in use: {last}"))
    }
}

impl Drop for UnboundServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with the pid of our own, not yet reaped, child.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

fn unique_identity() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "dotcore-fixture-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// Finds a port free for both TCP and UDP on 127.0.0.1 (and ::1 if asked),
/// twice, returning two distinct ports. The probe sockets are held until
/// both ports are chosen so the pair cannot collide.
fn free_port_pair(ipv6: bool) -> Result<(u16, u16), String> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..50 {
        if ports.len() == 2 {
            break;
        }
        let Ok(tcp) = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) else {
            continue;
        };
        let Ok(port) = tcp.local_addr().map(|a| a.port()) else {
            continue;
        };
        let Ok(udp) = UdpSocket::bind((Ipv4Addr::LOCALHOST, port)) else {
            continue;
        };
        if ipv6 {
            let (Ok(t6), Ok(u6)) = (
                TcpListener::bind((Ipv6Addr::LOCALHOST, port)),
                UdpSocket::bind((Ipv6Addr::LOCALHOST, port)),
            ) else {
                continue;
            };
            held.push((t6, u6));
        }
        held.push((tcp, udp));
        ports.push(port);
    }
    drop(held);
    match ports.as_slice() {
        [a, b] => Ok((*a, *b)),
        _ => Err("could not find free loopback ports".into()),
    }
}

/// Whether a TCP listener holds `addr`, checked by failing to bind it.
/// A TCP connect would also work but makes unbound log an "ssl handshake
/// failed" error, which would mislead tests asserting on the server log.
fn port_is_listening(addr: SocketAddr) -> bool {
    matches!(
        TcpListener::bind(addr),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse
    )
}

/// Sends `id.server. CH TXT` over UDP and checks the answer carries
/// `identity`, proving the listener is ours and not a stranger that took
/// the port.
fn probe_identity(addr: SocketAddr, identity: &str) -> bool {
    let bind: SocketAddr = if addr.is_ipv4() {
        (Ipv4Addr::LOCALHOST, 0).into()
    } else {
        (Ipv6Addr::LOCALHOST, 0).into()
    };
    let Ok(sock) = UdpSocket::bind(bind) else {
        return false;
    };
    if sock
        .set_read_timeout(Some(Duration::from_millis(100)))
        .is_err()
        || sock.connect(addr).is_err()
    {
        return false;
    }
    let id: u16 = (std::process::id() as u16) ^ 0x5a5a;
    let mut q = Vec::with_capacity(32);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]); // flags, 1 question
    q.extend_from_slice(b"\x02id\x06server\x00");
    q.extend_from_slice(&[0, 16, 0, 3]); // TXT, CH
    if sock.send(&q).is_err() {
        return false;
    }
    let mut buf = [0u8; 1500];
    match sock.recv(&mut buf) {
        Ok(n) if n >= 12 && buf[..2] == id.to_be_bytes() => buf[..n]
            .windows(identity.len())
            .any(|w| w == identity.as_bytes()),
        _ => false,
    }
}

/// [`probe_identity`] from inside network namespace `ns`, with dig (the
/// test process itself stays in its own namespace).
fn probe_identity_in_netns(ns: &str, addr: SocketAddr, identity: &str) -> bool {
    let (Some(ip), Some(dig)) = (find_tool("ip"), find_tool("dig")) else {
        return false;
    };
    let out = Command::new(ip)
        .args(["netns", "exec", ns])
        .arg(dig)
        .args(["+short", "+time=1", "+tries=1", "-p"])
        .arg(addr.port().to_string())
        .arg(format!("@{}", addr.ip()))
        .args(["id.server", "CH", "TXT"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    matches!(out, Ok(o) if String::from_utf8_lossy(&o.stdout).contains(identity))
}

// ---------------------------------------------------------------------------
// Spawning children that cannot outlive the test process
// ---------------------------------------------------------------------------

type SpawnReply = mpsc::Sender<io::Result<Child>>;

/// Spawns `cmd` with PR_SET_PDEATHSIG=SIGKILL so the child dies with the
/// test process even if Drop never runs (abort, SIGKILL by a test runner).
/// The death signal fires when the *thread* that forked exits, so all
/// spawns go through one thread that lives as long as the process.
pub(crate) fn spawn_tied(cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<(Command, SpawnReply)>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<(Command, SpawnReply)>();
        thread::Builder::new()
            .name("dotcore-tests-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(spawn_with_pdeathsig(&mut cmd));
                }
            })
            .expect("spawn spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    tx.lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("spawner thread gone"))?;
    reply_rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| io::Error::other("spawner thread did not answer"))?
}

#[cfg(target_os = "linux")]
fn spawn_with_pdeathsig(cmd: &mut Command) -> io::Result<Child> {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: the closure only calls async-signal-safe functions (prctl,
    // getppid, kill) between fork and exec.
    let parent = unsafe { libc::getpid() };
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            Ok(())
        })
    };
    cmd.spawn()
}

#[cfg(not(target_os = "linux"))]
fn spawn_with_pdeathsig(cmd: &mut Command) -> io::Result<Child> {
    cmd.spawn()
}

// ---------------------------------------------------------------------------
// External tools
// ---------------------------------------------------------------------------

/// Environment variable that turns [`require_tool`]'s skip into a failure.
/// scripts/test.sh sets it, because setup.sh installed every tool and a
/// missing one there means the run is not testing what it claims to.
pub const REQUIRE_TOOLS_ENV: &str = "DOTCORE_TESTS_REQUIRE_TOOLS";

/// Looks `name` up in PATH and in the sbin directories (unbound lives in
/// /usr/sbin, which is not on unprivileged users' PATH on Debian).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Whether `name` is installed. When it is not, prints
/// `SKIP: <name> not installed` and returns false so the test can return
/// early on developer machines; panics instead when
/// [`REQUIRE_TOOLS_ENV`]=1 (CI), so a broken setup cannot pass silently.
pub fn require_tool(name: &str) -> bool {
    if find_tool(name).is_some() {
        return true;
    }
    if std::env::var(REQUIRE_TOOLS_ENV).is_ok_and(|v| v == "1") {
        panic!("{name} not installed but {REQUIRE_TOOLS_ENV}=1 (run scripts/setup.sh)");
    }
    eprintln!("SKIP: {name} not installed (run scripts/setup.sh)");
    false
}

/// Upper bound on any external tool run, in case its own timeout fails.
const TOOL_WALL_CLOCK_LIMIT: Duration = Duration::from_secs(30);

/// Runs `kdig` with `+timeout=3 +retry=1` prepended (later `args` override
/// them), so a dead server costs seconds, not the default retries; the run is
/// also killed after 30 s. Panics if kdig cannot be started: call
/// [`require_tool`] first.
pub fn kdig(args: &[&str]) -> Output {
    let mut full = vec!["+timeout=3", "+retry=1"];
    full.extend_from_slice(args);
    run_tool("kdig", &full)
}

/// Runs `dig` with `+time=3 +tries=2` prepended, like [`kdig`]; handy where
/// kdig's and dig's behaviours differ (dig falls back to TCP on TC=1).
pub fn dig(args: &[&str]) -> Output {
    let mut full = vec!["+time=3", "+tries=2"];
    full.extend_from_slice(args);
    run_tool("dig", &full)
}

/// Runs an installed tool with a 30 s wall-clock limit and captures its
/// output. Panics if the tool is missing or cannot be started.
pub fn run_tool(name: &str, args: &[&str]) -> Output {
    let path = find_tool(name).unwrap_or_else(|| panic!("{name} not installed"));
    let mut child = Command::new(&path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + TOOL_WALL_CLOCK_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                break child.wait().expect("wait for killed tool");
            }
        }
    };
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_test_exceeds_udp_limits() {
        let txt = big_test_txt();
        assert_eq!(txt.len(), BIG_TEST_RECORDS);
        assert!(txt.iter().all(|s| s.len() == BIG_TEST_STRING_LEN));
        let distinct: std::collections::HashSet<_> = txt.iter().collect();
        assert_eq!(distinct.len(), BIG_TEST_RECORDS);
        // owner pointer(2) + type/class/ttl/rdlength(10) + length octet(1)
        let wire: usize = txt.iter().map(|s| 13 + s.len()).sum();
        assert!(wire > 1232 + 200, "big.test answer only {wire} bytes");
    }

    #[test]
    fn free_ports_are_distinct() {
        let (a, b) = free_port_pair(false).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, 0);
    }
}
