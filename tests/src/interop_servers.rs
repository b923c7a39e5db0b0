//! DoT servers other than our Unbound fixture, for the interoperability
//! matrix: Knot Resolver (`kresd`), BIND 9.18 (`named`) and dnsdist in front
//! of a clear-text Unbound backend, plus Unbound itself with its shipped
//! defaults.
//!
//! Each server runs with its packaged defaults; the generated configuration
//! only says where to listen (free loopback ports), which certificate to
//! serve, and which local data to answer. None recurses: every name outside
//! the test data is refused, so no fixture sends a packet beyond loopback.
//! A fixture is only handed out after kdig, an independent client, got the
//! expected answer from it over TLS with the test CA, so a failing test
//! points at the client or the behaviour under test, not at the fixture.
//!
//! The methods block; from async tests call them through
//! `tokio::task::spawn_blocking` or before the runtime starts.

use std::fmt;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::certs::{PkiFiles, TestPki, DOT_NAME};
use crate::unbound::{self as zone, find_tool, kdig, spawn_tied, UnboundOptions, UnboundServer};

/// The name with one A record ([`zone::A_TEST_V4`]) in every fixture.
pub const A_NAME: &str = zone::A_TEST;

/// Every name below this answers A [`zone::BENCH_V4`], in every fixture, so
/// tests can ask unique names that no cache has seen.
pub const BENCH_ZONE: &str = zone::BENCH_ZONE;

/// How long a fixture may take to start and answer kdig.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Attempts with fresh ports when a port was taken between choosing and
/// binding it.
const START_ATTEMPTS: usize = 5;

/// The DoT server implementations of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// Unbound, the project's reference server, with its shipped defaults.
    Unbound,
    /// Knot Resolver 5 (`kresd`).
    Knot,
    /// BIND 9.18 (`named`) with a `tls` block.
    Bind,
    /// dnsdist 1.7: a DoT frontend forwarding to a clear-text Unbound.
    Dnsdist,
}

impl ServerKind {
    /// All servers, in the order of the matrix.
    pub const ALL: [ServerKind; 4] = [
        ServerKind::Unbound,
        ServerKind::Knot,
        ServerKind::Bind,
        ServerKind::Dnsdist,
    ];

    /// Short name used in test names and `INTEROP` lines.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Unbound => "unbound",
            ServerKind::Knot => "knot-resolver",
            ServerKind::Bind => "bind",
            ServerKind::Dnsdist => "dnsdist",
        }
    }

    /// The program that must be installed for this fixture.
    pub fn program(self) -> &'static str {
        match self {
            ServerKind::Unbound => "unbound",
            ServerKind::Knot => "kresd",
            ServerKind::Bind => "named",
            ServerKind::Dnsdist => "dnsdist",
        }
    }

    /// Every program the fixture runs, including kdig for the check.
    pub fn required_tools(self) -> Vec<&'static str> {
        let mut tools = vec![self.program(), "kdig"];
        if self == ServerKind::Dnsdist {
            tools.push("unbound");
        }
        tools
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A running DoT server of some [`ServerKind`], killed on drop.
pub struct DotServer {
    kind: ServerKind,
    ca_pem: String,
    leaf_pin: String,
    files: PkiFiles,
    dir: tempfile::TempDir,
    dot_addr: SocketAddr,
    child: Option<Child>,
    log_path: PathBuf,
    /// Unbound itself, or dnsdist's backend.
    unbound: Option<UnboundServer>,
    /// BIND's clear-text listener.
    plain: Option<SocketAddr>,
    version: String,
}

impl DotServer {
    /// Starts a server of `kind` and checks it with kdig. The error names
    /// what is missing or shows the server's log.
    pub fn start(kind: ServerKind) -> Result<DotServer, String> {
        for tool in kind.required_tools() {
            if find_tool(tool).is_none() {
                return Err(format!(
                    "{tool} is not installed (needed by the {kind} fixture; run scripts/setup.sh)"
                ));
            }
        }
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(kind) {
                Ok(server) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(format!("{kind} fixture did not start: {last}"))
    }

    fn try_start(kind: ServerKind) -> Result<DotServer, String> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("dotcore-{}-", kind.name()))
            .tempdir()
            .map_err(|e| format!("create tempdir: {e}"))?;
        let pki = TestPki::generate();
        let files = pki
            .write_to(dir.path())
            .map_err(|e| format!("write certificates: {e}"))?;
        let log_path = dir.path().join("server.log");
        let mut server = DotServer {
            kind,
            ca_pem: pki.ca.cert_pem().to_string(),
            leaf_pin: pki.leaf.pin(),
            files,
            dot_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            dir,
            child: None,
            log_path,
            unbound: None,
            plain: None,
            version: String::new(),
        };
        match kind {
            ServerKind::Unbound => server.start_unbound()?,
            ServerKind::Knot => server.start_kresd()?,
            ServerKind::Bind => server.start_named()?,
            ServerKind::Dnsdist => server.start_dnsdist()?,
        }
        server.version = version_of(kind);
        server.wait_ready()?;
        Ok(server)
    }

    /// Unbound as shipped: edns-tcp-keepalive off, its default 30 s
    /// tcp-idle-timeout; the fixture writes those lines, so they are set
    /// to Unbound's documented defaults here.
    fn start_unbound(&mut self) -> Result<(), String> {
        let unbound = UnboundServer::start(unbound_as_shipped(None))?;
        self.dot_addr = unbound.dot_addr();
        self.ca_pem = unbound.ca_pem().to_string();
        self.leaf_pin = unbound.leaf_pin();
        self.files = unbound.pki_files().clone();
        self.log_path = unbound.log_path().to_path_buf();
        self.unbound = Some(unbound);
        Ok(())
    }

    fn start_kresd(&mut self) -> Result<(), String> {
        let port = free_port()?;
        self.dot_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let conf = self.dir.path().join("kresd.conf");
        let q = |p: &Path| lua_string(&p.display().to_string());
        let answer = |name: &str, ip: &str, ttl: u32, rule: &str| {
            format!(
                "policy.add(policy.{rule}(policy.ANSWER({{ [kres.type.A] = {{ rdata = kres.str2ip('{ip}'), ttl = {ttl} }} }}, true), {{ todname('{name}') }}))"
            )
        };
        let text = [
            format!("net.listen('127.0.0.1', {port}, {{ kind = 'tls' }})"),
            format!(
                "net.tls({}, {})",
                q(&self.files.leaf_cert),
                q(&self.files.leaf_key)
            ),
            // Local data only: these two rules answer, the last refuses
            // everything else (also kresd's own trust-anchor refreshes),
            // so nothing is ever sent to the root servers.
            answer(A_NAME, zone::A_TEST_V4, zone::A_TEST_TTL, "domains"),
            answer(BENCH_ZONE, zone::BENCH_V4, zone::BENCH_TTL, "suffix"),
            "policy.add(policy.all(policy.REFUSE))".to_string(),
        ]
        .join("\n");
        fs::write(&conf, text + "\n").map_err(|e| format!("write kresd.conf: {e}"))?;
        let rundir = self.dir.path().join("run");
        fs::create_dir(&rundir).map_err(|e| format!("create rundir: {e}"))?;
        let mut cmd = Command::new(find_tool("kresd").ok_or("kresd is not installed")?);
        cmd.arg("-n").arg("-c").arg(&conf).arg(&rundir);
        self.spawn(cmd)
    }

    fn start_named(&mut self) -> Result<(), String> {
        let port = free_port()?;
        let plain = free_port()?;
        self.dot_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        self.plain = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, plain)));
        let d = self.dir.path();
        let zone_file = d.join("test.zone");
        let bench_file = d.join("bench.zone");
        let soa = "@ 3600 IN SOA ns.test. admin.test. 1 3600 600 86400 60\n@ 3600 IN NS ns.test.\n";
        fs::write(
            &zone_file,
            format!(
                "{soa}ns 300 IN A 192.0.2.53\na {} IN A {}\n",
                zone::A_TEST_TTL,
                zone::A_TEST_V4
            ),
        )
        .map_err(|e| format!("write zone: {e}"))?;
        fs::write(
            &bench_file,
            format!("{soa}* {} IN A {}\n", zone::BENCH_TTL, zone::BENCH_V4),
        )
        .map_err(|e| format!("write zone: {e}"))?;
        let q = |p: &Path| format!("\"{}\"", p.display());
        // A clear-text listener is BIND's default next to `listen-on tls`;
        // it is put on a free port so the fixture needs no privileges.
        // `dnssec-validation no`: with its default (auto) named keeps the
        // root trust anchor fresh by fetching `. DNSKEY` from the internet
        // even with recursion off; an authoritative-only server validates
        // nothing, so this changes no answer, only stops that traffic.
        let conf = format!(
            "options {{
    directory {dir};
    pid-file {pid};
    session-keyfile {session};
    managed-keys-directory {dir};
    listen-on port {plain} {{ 127.0.0.1; }};
    listen-on port {port} tls dotcore {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
}};
tls dotcore {{
    cert-file {cert};
    key-file {key};
}};
controls {{ }};
zone \"test.\" {{ type primary; file {zone}; }};
zone \"bench.\" {{ type primary; file {bench}; }};
",
            dir = q(d),
            pid = q(&d.join("named.pid")),
            session = q(&d.join("session.key")),
            cert = q(&self.files.leaf_cert),
            key = q(&self.files.leaf_key),
            zone = q(&zone_file),
            bench = q(&bench_file),
        );
        let conf_path = d.join("named.conf");
        fs::write(&conf_path, conf).map_err(|e| format!("write named.conf: {e}"))?;
        let mut cmd = Command::new(find_tool("named").ok_or("named is not installed")?);
        // -g: foreground, log to stderr (our log file).
        cmd.arg("-g").arg("-c").arg(&conf_path);
        self.spawn(cmd)
    }

    fn start_dnsdist(&mut self) -> Result<(), String> {
        let backend = UnboundServer::start(UnboundOptions {
            tls: false,
            ..unbound_as_shipped(None)
        })?;
        let port = free_port()?;
        self.dot_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let conf_path = self.dir.path().join("dnsdist.conf");
        let conf = format!(
            "-- Debian's packaged dnsdist.conf turns security polling off the same way:\n\
             -- it would otherwise send a DNS query to the internet.\n\
             setSecurityPollSuffix(\"\")\n\
             newServer({{ address = \"{backend}\" }})\n\
             addTLSLocal(\"{addr}\", {cert}, {key})\n",
            backend = backend.plain_addr(),
            addr = self.dot_addr,
            cert = lua_string(&self.files.leaf_cert.display().to_string()),
            key = lua_string(&self.files.leaf_key.display().to_string()),
        );
        fs::write(&conf_path, conf).map_err(|e| format!("write dnsdist.conf: {e}"))?;
        self.unbound = Some(backend);
        let mut cmd = Command::new(find_tool("dnsdist").ok_or("dnsdist is not installed")?);
        cmd.arg("--supervised")
            .arg("--disable-syslog")
            .arg("-C")
            .arg(&conf_path);
        self.spawn(cmd)
    }

    fn spawn(&mut self, mut cmd: Command) -> Result<(), String> {
        let log = fs::File::create(&self.log_path).map_err(|e| format!("create log: {e}"))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        cmd.current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let child = spawn_tied(cmd).map_err(|e| format!("spawn {}: {e}", self.kind.program()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until the TLS port is bound and kdig gets the expected answer
    /// over TLS, authenticated with the test CA and name.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = String::new();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "{} exited with {status}\n{}",
                        self.kind.program(),
                        self.read_log()
                    ));
                }
            }
            if port_is_listening(self.dot_addr) {
                match self.kdig_check() {
                    Ok(()) => return Ok(()),
                    Err(e) => last = e,
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "not ready after {START_TIMEOUT:?}: {last}\n--- log ---\n{}",
                    self.read_log()
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asks the server for [`A_NAME`] with kdig over TLS (CA file and
    /// hostname: the strict profile) and checks the answer.
    pub fn kdig_check(&self) -> Result<(), String> {
        let ca = format!("+tls-ca={}", self.files.ca_cert.display());
        let host = format!("+tls-hostname={DOT_NAME}");
        let port = self.dot_addr.port().to_string();
        let at = format!("@{}", self.dot_addr.ip());
        let out = kdig(&[
            &ca,
            &host,
            "+short",
            "+timeout=2",
            "-p",
            &port,
            &at,
            A_NAME,
            "A",
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && stdout.trim() == zone::A_TEST_V4 {
            Ok(())
        } else {
            Err(format!(
                "kdig got {:?} (status {}, stderr {})",
                stdout.trim(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Which server this is.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// The server's version string, as it reports it.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The DoT endpoint on 127.0.0.1.
    pub fn dot_addr(&self) -> SocketAddr {
        self.dot_addr
    }

    /// The CA certificate PEM that authenticates the server for
    /// [`DOT_NAME`].
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Path of the CA certificate PEM, for kdig.
    pub fn ca_file(&self) -> &Path {
        &self.files.ca_cert
    }

    /// RFC 7469 SPKI pin of the leaf the server presents.
    pub fn leaf_pin(&self) -> String {
        self.leaf_pin.clone()
    }

    /// A clear-text endpoint of the same data (Unbound's or BIND's own, or
    /// dnsdist's backend); `None` for kresd, which listens on TLS only.
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.plain
            .or_else(|| self.unbound.as_ref().map(UnboundServer::plain_addr))
    }

    /// The server's log so far.
    pub fn read_log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for DotServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// [`UnboundOptions`] set to what `unbound` does with an empty
/// configuration: edns-tcp-keepalive off (its timeout then unused) and a
/// 30 s tcp-idle-timeout, which the fixture always writes explicitly.
pub fn unbound_as_shipped(pki: Option<TestPki>) -> UnboundOptions {
    UnboundOptions {
        pki,
        tcp_idle_timeout_ms: 30_000,
        edns_tcp_keepalive: false,
        edns_tcp_keepalive_timeout_ms: 120_000,
        ..UnboundOptions::default()
    }
}

fn lua_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn version_of(kind: ServerKind) -> String {
    let Some(path) = find_tool(kind.program()) else {
        return String::new();
    };
    let flag = match kind {
        ServerKind::Unbound => "-V",
        ServerKind::Bind => "-v",
        ServerKind::Knot | ServerKind::Dnsdist => "--version",
    };
    let out = Command::new(path)
        .arg(flag)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let first = match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
        Err(_) => String::new(),
    };
    // `unbound -V` says only "Version 1.17.1".
    match kind {
        ServerKind::Unbound => format!("Unbound {}", first.trim_start_matches("Version ")),
        _ => first,
    }
}

/// A loopback port free for TCP and UDP right now.
fn free_port() -> Result<u16, String> {
    for _ in 0..50 {
        let Ok(tcp) = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) else {
            continue;
        };
        let Ok(port) = tcp.local_addr().map(|a| a.port()) else {
            continue;
        };
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err("could not find a free loopback port".into())
}

/// Whether something listens on `addr`, checked by failing to bind it
/// (a probe connection would show up in the server's log as a failed
/// handshake).
fn port_is_listening(addr: SocketAddr) -> bool {
    matches!(
        TcpListener::bind(addr),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse
    )
}
