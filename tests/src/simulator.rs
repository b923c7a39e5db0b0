//! A Linux "device simulator": the phone's packet path run for real.
//!
//! ```text
//!  netns "phone" (dcphone-<pid>-<n>)                 netns "network" (dcnet-<pid>-<n>)
//!  +-------------------------------------------+     +------------------------------+
//!  | dig, kdig, getent, python3, dnsperf        |     |                              |
//!  |   | resolv.conf: 10.111.222.3, fd64:..::53 |     |  unbound                     |
//!  |   v                                        |     |    DoT   198.18.0.1:853      |
//!  | dotcore0 (TUN) 10.111.222.1, fd64:..::1    |     |    plain 198.18.0.1:53       |
//!  |   routes: only 10.111.222.3/32 and         |     |    (and fd00:d07c:1::1)      |
//!  |           fd64:d07c:0:1::53/128            |     |  nft: counters for 53/853,   |
//!  |   |                                        |     |       optional 853 drop      |
//!  | `dotcore tun --dev dotcore0`  (Engine)     |     |                              |
//!  |   upstream sockets --> dcv0 198.18.0.2/24 ======= dcv1 198.18.0.1/24          |
//!  |                         fd00:d07c:1::2/64  | veth|      fd00:d07c:1::1/64       |
//!  +-------------------------------------------+     +------------------------------+
//! ```
//!
//! Like the Android app, only the virtual DNS addresses are routed into the
//! TUN device, so the engine's own upstream sockets leave through the veth
//! and cannot loop. Every address lives in namespaces the test creates
//! (198.18.0.0/15 is the benchmarking range of RFC 2544), so nothing is
//! ever sent outside this machine.
//!
//! Everything is torn down by `Drop` (processes killed, nft tables and
//! namespaces deleted, `/etc/netns/<name>` removed), also when a test fails.
//! Requirements: root, `ip netns`, `/dev/net/tun`; [`prerequisites`] prints
//! `SKIP: ...` and returns false when one is missing.

use std::fs;
use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use dotcore::net::{tunnel_config, VIRTUAL_DNS_V4, VIRTUAL_DNS_V6};

use crate::unbound::{find_tool, require_tool, spawn_tied, UnboundOptions, UnboundServer};

/// The TUN interface dotcore serves in the phone namespace.
pub const TUN_DEV: &str = "dotcore0";
/// The phone's end of the veth pair.
pub const PHONE_VETH: &str = "dcv0";
/// The network's end of the veth pair.
pub const NET_VETH: &str = "dcv1";
/// The network namespace's address: Unbound listens here.
pub const NET_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The phone's address on the veth.
pub const PHONE_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// Where the phone's address moves in the network-change test.
pub const PHONE_V4_MOVED: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);
/// The network namespace's IPv6 address.
pub const NET_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xd07c, 1, 0, 0, 0, 0, 1);
/// The phone's IPv6 address on the veth.
pub const PHONE_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xd07c, 1, 0, 0, 0, 0, 2);
/// Where the phone's IPv6 address moves in the network-change test.
pub const PHONE_V6_MOVED: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xd07c, 1, 0, 0, 0, 0, 3);
/// The nft table holding the simulator's counters in the network namespace.
pub const NFT_TABLE: &str = "dcsim";
/// The nft table that blocks DoT when asked.
pub const NFT_BLOCK_TABLE: &str = "dcblock";

/// Upper bound on any command the simulator runs.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// The virtual DNS address as dig wants it.
pub fn dns_v4() -> String {
    VIRTUAL_DNS_V4.to_string()
}

/// The virtual IPv6 DNS address as dig wants it.
pub fn dns_v6() -> String {
    VIRTUAL_DNS_V6.to_string()
}

/// Why the simulator cannot run here, if it cannot.
pub fn missing_privileges() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (the simulator creates network namespaces and TUN devices)".into());
    }
    if find_tool("ip").is_none() {
        return Some("ip (iproute2) not installed".into());
    }
    if let Err(e) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
    {
        return Some(format!("/dev/net/tun unusable: {e}"));
    }
    // Creating a namespace is the real test (containers may forbid it).
    let probe = format!("dcprobe-{}-{}", std::process::id(), next_serial());
    let out = run("ip", &["netns", "add", &probe]);
    if !out.status.success() {
        return Some(format!(
            "ip netns unavailable: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let _ = run("ip", &["netns", "del", &probe]);
    None
}

/// Whether the simulator can run: root, `ip netns`, `/dev/net/tun` (else
/// prints `SKIP: <why>`), plus the tools (through [`require_tool`], which
/// fails instead of skipping under scripts/test.sh).
pub fn prerequisites(tools: &[&str]) -> bool {
    if let Some(why) = missing_privileges() {
        eprintln!("SKIP: {why}");
        return false;
    }
    tools.iter().all(|t| require_tool(t))
}

fn next_serial() -> u32 {
    static SERIAL: AtomicU32 = AtomicU32::new(0);
    SERIAL.fetch_add(1, Ordering::Relaxed)
}

/// Runs `program` (looked up like [`find_tool`]) with a wall-clock limit,
/// capturing its output.
pub fn run(program: &str, args: &[&str]) -> Output {
    let path = find_tool(program).unwrap_or_else(|| PathBuf::from(program));
    let child = Command::new(&path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    match child {
        Ok(child) => wait_output(child, COMMAND_LIMIT),
        Err(e) => Output {
            status: failed_status(),
            stdout: Vec::new(),
            stderr: format!("cannot run {}: {e}", path.display()).into_bytes(),
        },
    }
}

fn failed_status() -> std::process::ExitStatus {
    use std::os::unix::process::ExitStatusExt as _;
    std::process::ExitStatus::from_raw(127 << 8)
}

/// Collects a child's output, killing it after `limit`.
fn wait_output(mut child: Child, limit: Duration) -> Output {
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let out_reader = thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut v);
        }
        v
    });
    let err_reader = thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut v);
        }
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                break child.wait().unwrap_or_else(|_| failed_status());
            }
        }
    };
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Text of a command's stdout.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Both streams, for failure messages.
pub fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

// ---------------------------------------------------------------------------
// Network namespaces
// ---------------------------------------------------------------------------

/// A network namespace this process created; dropping it kills every
/// process left in it and deletes it with its `/etc/netns/<name>` files.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `<prefix>-<pid>-<n>` with its loopback up.
    pub fn create(prefix: &str) -> Result<Netns, String> {
        let name = format!("{prefix}-{}-{}", std::process::id(), next_serial());
        let out = run("ip", &["netns", "add", &name]);
        if !out.status.success() {
            return Err(format!("ip netns add {name}: {}", describe(&out)));
        }
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <name> <args>`, failing with ip's message.
    pub fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        let out = run("ip", &full);
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("ip {}: {}", full.join(" "), describe(&out)))
        }
    }

    /// `ip -n <name> <args>`, returning its stdout.
    pub fn ip_output(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        stdout(&run("ip", &full))
    }

    /// Runs `program args` inside the namespace (bounded), as
    /// `ip netns exec`, which also bind-mounts `/etc/netns/<name>/*`.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        let path = find_tool(program).unwrap_or_else(|| PathBuf::from(program));
        let path = path.to_string_lossy().into_owned();
        let mut full = vec!["netns", "exec", self.name.as_str(), path.as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// A command prepared to run inside the namespace.
    pub fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(find_tool("ip").unwrap_or_else(|| PathBuf::from("ip")));
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Writes `/etc/netns/<name>/<file>`, which `ip netns exec` mounts over
    /// `/etc/<file>` (resolv.conf for glibc's resolver).
    pub fn write_etc(&self, file: &str, contents: &str) -> Result<(), String> {
        let dir = Path::new("/etc/netns").join(&self.name);
        fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        fs::write(dir.join(file), contents).map_err(|e| format!("write {file}: {e}"))
    }

    /// Runs an nft script inside the namespace.
    pub fn nft(&self, script: &str) -> Result<(), String> {
        let mut child = self
            .command(&find_tool("nft").ok_or("nft not installed")?)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("nft: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write as _;
            stdin
                .write_all(script.as_bytes())
                .map_err(|e| format!("nft stdin: {e}"))?;
        }
        let out = wait_output(child, COMMAND_LIMIT);
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("nft -f:\n{script}\n{}", describe(&out)))
        }
    }

    /// Packets counted so far by the named nft counter of `table`.
    pub fn nft_counter(&self, table: &str, counter: &str) -> Result<u64, String> {
        let out = self.exec("nft", &["list", "counter", "inet", table, counter]);
        let text = stdout(&out);
        text.split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("no counter {counter}: {}", describe(&out)))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Only our processes can be in a namespace we created.
        for _ in 0..3 {
            let pids = stdout(&run("ip", &["netns", "pids", &self.name]));
            if pids.trim().is_empty() {
                break;
            }
            for pid in pids
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                // SAFETY: kill(2) on a pid listed in our own namespace.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = run("ip", &["netns", "del", &self.name]);
        let _ = fs::remove_dir_all(Path::new("/etc/netns").join(&self.name));
    }
}

// ---------------------------------------------------------------------------
// The dotcore process
// ---------------------------------------------------------------------------

/// The `dotcore` binary next to the test executable (target/<profile>/);
/// scripts/test-simulator.sh builds it.
pub fn dotcore_bin() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("no target directory")?;
    let bin = dir.join("dotcore");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{} missing: build it with `cargo build -p dotcore --features cli` \
             (scripts/test-simulator.sh does)",
            bin.display()
        ))
    }
}

/// `dotcore tun` running in the phone namespace, output captured to files.
pub struct DotcoreProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl DotcoreProcess {
    /// Runs the dotcore binary with `args` in `ns`, returning once its
    /// stderr shows `ready` (within 10 s).
    pub fn spawn(ns: &Netns, args: &[String], ready: &str) -> Result<DotcoreProcess, String> {
        let bin = dotcore_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("dotcore-sim-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let out = fs::File::create(dir.path().join("stdout")).map_err(|e| e.to_string())?;
        let err = fs::File::create(dir.path().join("stderr")).map_err(|e| e.to_string())?;
        let mut cmd = ns.command(&bin);
        cmd.args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = spawn_tied(cmd).map_err(|e| format!("spawn dotcore: {e}"))?;
        let mut process = DotcoreProcess {
            child: Some(child),
            dir,
        };
        if !process.wait_stderr(ready, 1, Duration::from_secs(10)) {
            return Err(format!(
                "dotcore {} did not start; stderr:\n{}",
                args.first().map(String::as_str).unwrap_or_default(),
                process.stderr()
            ));
        }
        Ok(process)
    }

    /// Process id (`ip netns exec` execs, so it is dotcore's own).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn stdout_path(&self) -> PathBuf {
        self.dir.path().join("stdout")
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("stderr")
    }

    /// Everything dotcore printed on stdout (JSON counter lines).
    pub fn stdout(&self) -> String {
        fs::read_to_string(self.stdout_path()).unwrap_or_default()
    }

    /// Everything dotcore printed on stderr (events, errors).
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    /// Sends `sig` to the process.
    pub fn signal(&self, sig: libc::c_int) {
        if let Some(pid) = self.pid().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Waits (bounded) for the process to exit on its own; its status, or
    /// None if it still runs after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.child.as_mut()?.try_wait().ok()?;
            if let Some(status) = status {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) until stderr contains `needle` `count` times.
    pub fn wait_stderr(&mut self, needle: &str, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr().matches(needle).count() >= count {
                return true;
            }
            if Instant::now() > deadline || !self.is_running() {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The counters now (SIGUSR1 makes dotcore print them as one line).
    pub fn stats(&mut self) -> Result<serde_json::Value, String> {
        let before = self.stdout().lines().count();
        self.signal(libc::SIGUSR1);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = self.stdout();
            if text.lines().count() > before && text.ends_with('\n') {
                let line = text.lines().last().unwrap_or_default();
                return serde_json::from_str(line).map_err(|e| format!("{e}: {line}"));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no stats line after SIGUSR1; stderr:\n{}",
                    self.stderr()
                ));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Resident memory in KiB, from /proc.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// SIGTERM, then waits up to 10 s for a clean exit (SIGKILL after).
    /// Returns the exit status and the last stdout line (the final counters
    /// with --stats).
    pub fn terminate(&mut self) -> Result<(std::process::ExitStatus, String), String> {
        if self.child.is_none() {
            return Err("not running".into());
        }
        self.signal(libc::SIGTERM);
        if let Some(status) = self.wait_exit(Duration::from_secs(10)) {
            let last = self.stdout().lines().last().unwrap_or_default().to_string();
            return Ok((status, last));
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        Err(format!(
            "dotcore did not exit within 10 s of SIGTERM; stderr:\n{}",
            self.stderr()
        ))
    }
}

impl Drop for DotcoreProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Reads a number at a JSON pointer (`/packets/udp_answers`), 0 if absent.
pub fn stat(v: &serde_json::Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// The whole simulator
// ---------------------------------------------------------------------------

/// How to set a simulator up.
pub struct SimOptions {
    /// `strict` or `opportunistic`.
    pub mode: &'static str,
    /// Give dotcore the network's clear-text resolver (198.18.0.1:53) as
    /// `--fallback`.
    pub fallback: bool,
    /// Block DoT (drop TCP to port 853 in the network namespace) before
    /// dotcore starts.
    pub block_dot: bool,
    /// Extra `dotcore tun` arguments.
    pub extra_args: Vec<String>,
    /// Log every query unbound receives.
    pub log_queries: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            mode: "strict",
            fallback: false,
            block_dot: false,
            extra_args: Vec::new(),
            log_queries: false,
        }
    }
}

/// The phone and network namespaces, Unbound, nft counters and `dotcore
/// tun`. Fields drop in order: dotcore, Unbound, then the namespaces.
pub struct Simulator {
    dotcore: Option<DotcoreProcess>,
    /// The DoT and clear-text server in the network namespace.
    pub unbound: UnboundServer,
    /// The namespace of the apps and of dotcore.
    pub phone: Netns,
    /// The namespace of the upstream servers.
    pub network: Netns,
    options: SimOptions,
}

impl Simulator {
    /// Builds the topology, starts Unbound and `dotcore tun`, and returns
    /// once dotcore attached to the TUN device.
    pub fn start(options: SimOptions) -> Result<Simulator, String> {
        let phone = Netns::create("dcphone")?;
        let network = Netns::create("dcnet")?;
        build_topology(&phone, &network)?;
        network.nft(&format!(
            "table inet {NFT_TABLE} {{
                counter dns53 {{ }}
                counter dot853 {{ }}
                chain input {{
                    type filter hook input priority -20; policy accept;
                    iifname \"{NET_VETH}\" udp dport 53 counter name dns53
                    iifname \"{NET_VETH}\" tcp dport 53 counter name dns53
                    iifname \"{NET_VETH}\" tcp dport 853 counter name dot853
                }}
            }}"
        ))?;
        let unbound = UnboundServer::start(UnboundOptions {
            netns: Some(network.name().to_string()),
            listen: vec![IpAddr::V4(NET_V4), IpAddr::V6(NET_V6)],
            ports: Some((53, 853)),
            ipv6: true,
            log_queries: options.log_queries,
            ..UnboundOptions::default()
        })?;
        let mut sim = Simulator {
            dotcore: None,
            unbound,
            phone,
            network,
            options,
        };
        if sim.options.block_dot {
            sim.block_dot()?;
        }
        sim.start_dotcore()?;
        Ok(sim)
    }

    /// The DoT server address dotcore is given.
    pub fn dot_server(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(NET_V4), 853)
    }

    /// The server options every dotcore of this simulator gets.
    fn server_args(&self) -> Vec<String> {
        let mut args = vec![
            "--mode".to_string(),
            self.options.mode.to_string(),
            "--server".to_string(),
            self.dot_server().to_string(),
            "--name".to_string(),
            crate::certs::DOT_NAME.to_string(),
            "--ca".to_string(),
            self.unbound.ca_file().display().to_string(),
        ];
        if self.options.fallback {
            args.push("--fallback".into());
            args.push(format!("{NET_V4}:53"));
        }
        args.extend(self.options.extra_args.iter().cloned());
        args
    }

    /// (Re)starts `dotcore tun` with the simulator's options.
    pub fn start_dotcore(&mut self) -> Result<(), String> {
        self.dotcore = None;
        let mut args: Vec<String> = ["tun", "--dev", TUN_DEV, "--stats"]
            .map(String::from)
            .to_vec();
        args.extend(self.server_args());
        let process = DotcoreProcess::spawn(&self.phone, &args, "answering DNS on")?;
        self.dotcore = Some(process);
        Ok(())
    }

    /// Starts `dotcore proxy` in the phone namespace on `listen` (e.g.
    /// 127.0.0.1:5300), with the same server options as `dotcore tun`: the
    /// socket path to compare the TUN path with.
    pub fn start_proxy(&self, listen: SocketAddr) -> Result<DotcoreProcess, String> {
        let mut args: Vec<String> = ["proxy", "--stats", "--listen"].map(String::from).to_vec();
        args.push(listen.to_string());
        args.extend(self.server_args());
        DotcoreProcess::spawn(&self.phone, &args, "listening on")
    }

    /// The running dotcore.
    pub fn dotcore(&mut self) -> &mut DotcoreProcess {
        self.dotcore.as_mut().expect("dotcore is running")
    }

    /// dig in the phone namespace, with `+time=5 +tries=1` unless overridden.
    pub fn dig(&self, args: &[&str]) -> Output {
        let mut full = vec!["+time=5", "+tries=1"];
        full.extend_from_slice(args);
        self.phone.exec("dig", &full)
    }

    /// `dig +short` answers, one per line.
    pub fn dig_short(&self, args: &[&str]) -> Vec<String> {
        let mut full = vec!["+short"];
        full.extend_from_slice(args);
        let out = self.dig(&full);
        stdout(&out).lines().map(str::to_string).collect()
    }

    /// kdig in the phone namespace, with `+timeout=5 +retry=0` first.
    pub fn kdig(&self, args: &[&str]) -> Output {
        let mut full = vec!["+timeout=5", "+retry=0"];
        full.extend_from_slice(args);
        self.phone.exec("kdig", &full)
    }

    /// Packets the network namespace received on port 53 (UDP+TCP) and on
    /// TCP port 853, from the phone.
    pub fn upstream_packets(&self) -> Result<(u64, u64), String> {
        Ok((
            self.network.nft_counter(NFT_TABLE, "dns53")?,
            self.network.nft_counter(NFT_TABLE, "dot853")?,
        ))
    }

    /// Drops every TCP packet to port 853 in the network namespace (as a
    /// network blocking DoT would). Undo with [`Simulator::unblock_dot`].
    pub fn block_dot(&self) -> Result<(), String> {
        self.network.nft(&format!(
            "table inet {NFT_BLOCK_TABLE} {{
                chain input {{
                    type filter hook input priority -10; policy accept;
                    tcp dport 853 drop
                }}
            }}"
        ))
    }

    /// Lifts [`Simulator::block_dot`].
    pub fn unblock_dot(&self) -> Result<(), String> {
        self.network
            .nft(&format!("delete table inet {NFT_BLOCK_TABLE}"))
    }

    /// Moves the phone's veth addresses (as when the device changes
    /// networks): the old ones disappear, the new ones appear.
    pub fn move_phone_addresses(&self) -> Result<(), String> {
        self.phone.ip(&["addr", "flush", "dev", PHONE_VETH])?;
        self.phone.ip(&[
            "addr",
            "add",
            &format!("{PHONE_V4_MOVED}/24"),
            "dev",
            PHONE_VETH,
        ])?;
        self.phone.ip(&[
            "addr",
            "add",
            &format!("{PHONE_V6_MOVED}/64"),
            "dev",
            PHONE_VETH,
            "nodad",
        ])
    }

    /// Runs a Python snippet in the phone namespace.
    pub fn python(&self, code: &str) -> Output {
        self.phone.exec(&python(), &["-c", code])
    }
}

/// The Python interpreter: Debian's (setup.sh installs it) or PATH's.
pub fn python() -> String {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3".into()
    } else {
        "python3".into()
    }
}

fn build_topology(phone: &Netns, network: &Netns) -> Result<(), String> {
    // The veth pair, created directly inside the namespaces so its names
    // never clash with the host's or another test's.
    phone.ip(&[
        "link",
        "add",
        PHONE_VETH,
        "type",
        "veth",
        "peer",
        "name",
        NET_VETH,
        "netns",
        network.name(),
    ])?;
    phone.ip(&["addr", "add", &format!("{PHONE_V4}/24"), "dev", PHONE_VETH])?;
    phone.ip(&[
        "addr",
        "add",
        &format!("{PHONE_V6}/64"),
        "dev",
        PHONE_VETH,
        "nodad",
    ])?;
    phone.ip(&["link", "set", PHONE_VETH, "up"])?;
    network.ip(&["addr", "add", &format!("{NET_V4}/24"), "dev", NET_VETH])?;
    network.ip(&[
        "addr",
        "add",
        &format!("{NET_V6}/64"),
        "dev",
        NET_VETH,
        "nodad",
    ])?;
    network.ip(&["link", "set", NET_VETH, "up"])?;

    // The TUN device as the VpnService builder sets it up, from the same
    // record the app reads (`tunnel_config`): its own addresses, MTU, and
    // routes for the virtual DNS addresses only. Created persistent here so
    // it is configured before dotcore attaches.
    let tunnel = tunnel_config();
    phone.ip(&["tuntap", "add", "dev", TUN_DEV, "mode", "tun"])?;
    for own in &tunnel.interface_addresses {
        let mut args = vec!["addr".to_string(), "add".into(), own.to_string()];
        args.extend(["dev".into(), TUN_DEV.into()]);
        if own.address.is_ipv6() {
            args.push("nodad".into());
        }
        phone.ip(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    }
    let mtu = tunnel.mtu.to_string();
    phone.ip(&["link", "set", TUN_DEV, "mtu", &mtu, "up"])?;
    for route in &tunnel.routes {
        let family = if route.address.is_ipv6() { "-6" } else { "-4" };
        phone.ip(&[family, "route", "add", &route.to_string(), "dev", TUN_DEV])?;
    }
    // glibc (getent, Python) in the phone asks the virtual addresses only.
    phone.write_etc(
        "resolv.conf",
        &format!(
            "# written by the dotcore device simulator\n\
             nameserver {VIRTUAL_DNS_V4}\nnameserver {VIRTUAL_DNS_V6}\n\
             options timeout:3 attempts:1\n"
        ),
    )?;
    Ok(())
}

/// Writes a dnsperf query file: `names` lines cycling through the given
/// (name, type) pairs and `distinct` unique names under `bench.`, so that a
/// run is partly cache misses (first pass) and mostly hits after.
pub fn write_dnsperf_file(
    path: &Path,
    fixed: &[(&str, &str)],
    distinct: usize,
) -> Result<(), String> {
    let mut text = String::new();
    for i in 0..distinct {
        let (name, rtype) = fixed[i % fixed.len().max(1)];
        text.push_str(&format!("{name} {rtype}\n"));
        text.push_str(&format!(
            "host{i}.{} A\n",
            crate::unbound::BENCH_ZONE.trim_end_matches('.')
        ));
    }
    fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))
}

/// The numbers of a dnsperf run.
#[derive(Debug, Default, Clone, Copy)]
pub struct DnsperfResult {
    /// Queries sent.
    pub sent: u64,
    /// Queries answered.
    pub completed: u64,
    /// Queries that got no answer within the timeout.
    pub lost: u64,
    /// Queries per second achieved.
    pub qps: f64,
    /// Mean latency in seconds.
    pub avg_latency: f64,
}

/// Parses dnsperf's summary.
pub fn parse_dnsperf(text: &str) -> Option<DnsperfResult> {
    let field = |label: &str| -> Option<String> {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .map(|l| l.trim_start()[label.len()..].trim().to_string())
    };
    let first_num =
        |s: String| -> Option<f64> { s.split_whitespace().next().and_then(|n| n.parse().ok()) };
    Some(DnsperfResult {
        sent: first_num(field("Queries sent:")?)? as u64,
        completed: first_num(field("Queries completed:")?)? as u64,
        lost: first_num(field("Queries lost:")?)? as u64,
        qps: first_num(field("Queries per second:")?)?,
        avg_latency: field("Average Latency (s):")
            .and_then(first_num)
            .unwrap_or(0.0),
    })
}
