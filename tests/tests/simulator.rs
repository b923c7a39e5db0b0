//! The Linux device simulator (see docs/simulator.md and
//! `dotcore_tests::simulator`): `dotcore tun` in a "phone" network namespace
//! whose only DNS server is the virtual address routed into the TUN device,
//! Unbound in a "network" namespace behind a veth pair, and real clients
//! (dig, kdig, glibc's getent, Python, dnsperf) in the phone.
//!
//! They need root, `ip netns` and /dev/net/tun, so they are `#[ignore]`d
//! in the plain workspace run and executed by scripts/test-simulator.sh
//! (`--ignored`); without the privileges each prints `SKIP: ...`.

use std::time::{Duration, Instant};

use dotcore_tests::simulator::{
    describe, dns_v4, dns_v6, parse_dnsperf, prerequisites, stat, stdout, write_dnsperf_file,
    SimOptions, Simulator, NET_V4, PHONE_V4_MOVED, TUN_DEV,
};
use dotcore_tests::unbound::{
    self as zone, A_TEST_V4, A_TEST_V6, BIG_TEST_RECORDS, MULTI_TEST_V4, TXT_TEST_VALUE,
};

fn start(tools: &[&str], options: SimOptions) -> Option<Simulator> {
    let mut needed = vec!["unbound", "dig", "nft"];
    needed.extend_from_slice(tools);
    if !prerequisites(&needed) {
        return None;
    }
    match Simulator::start(options) {
        Ok(sim) => Some(sim),
        Err(e) => panic!("simulator setup failed: {e}"),
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The header flags dig or kdig printed (`qr aa tc rd ra`).
fn flags_of(out: &std::process::Output) -> Vec<String> {
    stdout(out)
        .lines()
        .find_map(|l| {
            let lower = l.to_ascii_lowercase();
            let rest = lower.split("flags:").nth(1)?.to_string();
            Some(rest.split(';').next().unwrap_or_default().to_string())
        })
        .map(|f| f.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn status_of(out: &std::process::Output) -> String {
    let text = stdout(out);
    text.lines()
        .find_map(|l| l.split("status: ").nth(1))
        .map(|s| s.split(',').next().unwrap_or_default().trim().to_string())
        .unwrap_or_else(|| format!("<no status>\n{}", describe(out)))
}

#[test]
#[ignore = "needs root and network namespaces: run scripts/test-simulator.sh"]
fn real_clients_get_a_aaaa_and_txt_answers_over_udp_and_tcp() {
    let Some(mut sim) = start(&["kdig", "getent"], SimOptions::default()) else {
        return;
    };
    let (v4, v6) = (dns_v4(), dns_v6());
    let at4 = format!("@{v4}");
    let at6 = format!("@{v6}");

    // dig over UDP, to both virtual addresses.
    assert_eq!(sim.dig_short(&[&at4, zone::A_TEST, "A"]), [A_TEST_V4]);
    assert_eq!(sim.dig_short(&[&at6, zone::A_TEST, "AAAA"]), [A_TEST_V6]);
    assert_eq!(
        sim.dig_short(&[&at4, zone::TXT_TEST, "TXT"]),
        [format!("\"{TXT_TEST_VALUE}\"")]
    );
    // dig over TCP (the user-space TCP stack), both families.
    let mut multi: Vec<String> = MULTI_TEST_V4.iter().map(|s| s.to_string()).collect();
    multi.sort();
    assert_eq!(
        sorted(sim.dig_short(&["+tcp", &at4, zone::MULTI_TEST, "A"])),
        multi
    );
    assert_eq!(
        sim.dig_short(&["+tcp", &at6, zone::A_TEST, "AAAA"]),
        [A_TEST_V6]
    );
    let nx = sim.dig(&[&at4, zone::NX_TEST, "A"]);
    assert_eq!(status_of(&nx), "NXDOMAIN");

    // kdig, an independent implementation, UDP and TCP.
    let k = sim.kdig(&["+short", &at6, zone::A_TEST, "A"]);
    assert_eq!(stdout(&k).trim(), A_TEST_V4, "{}", describe(&k));
    let k = sim.kdig(&["+short", "+tcp", &at4, zone::TXT_TEST, "TXT"]);
    assert_eq!(
        stdout(&k).trim(),
        format!("\"{TXT_TEST_VALUE}\""),
        "{}",
        describe(&k)
    );

    // glibc's resolver, configured only with the virtual addresses.
    let g = sim.phone.exec("getent", &["ahosts", "a.test"]);
    let text = stdout(&g);
    assert!(
        text.contains(A_TEST_V4) && text.contains(A_TEST_V6),
        "{}",
        describe(&g)
    );

    // Python's getaddrinfo (glibc again, through another runtime).
    let p = sim.python(
        "import socket\n\
         print(' '.join(sorted({a[4][0] for a in socket.getaddrinfo('multi.test', 53, proto=socket.IPPROTO_UDP)})))",
    );
    assert_eq!(stdout(&p).trim(), multi.join(" "), "{}", describe(&p));

    // Python over TCP with pipelining: 8 queries in one write (RFC 7766),
    // all answered on the same connection, in whatever order.
    let p = sim.python(&format!(
        r#"
import socket, struct
names = ["a.test", "txt.test", "multi.test", "cname.test", "nx.test", "p1.bench", "p2.bench", "p3.bench"]
def q(i, name):
    body = struct.pack(">HHHHHH", 0x100 + i, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        body += bytes([len(label)]) + label.encode()
    body += b"\0" + struct.pack(">HH", 1, 1)
    return struct.pack(">H", len(body)) + body
s = socket.create_connection(("{v4}", 53), timeout=5)
s.sendall(b"".join(q(i, n) for i, n in enumerate(names)))
def read(n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise SystemExit("closed after %d bytes" % len(buf))
        buf += chunk
    return buf
ids = []
for _ in names:
    (length,) = struct.unpack(">H", read(2))
    msg = read(length)
    ids.append(struct.unpack(">H", msg[:2])[0] - 0x100)
print(sorted(ids))
"#
    ));
    assert_eq!(
        stdout(&p).trim(),
        "[0, 1, 2, 3, 4, 5, 6, 7]",
        "{}",
        describe(&p)
    );

    let stats = sim.dotcore().stats().unwrap();
    eprintln!("dotcore counters: {stats}");
    assert!(stat(&stats, "/packets/udp_answers") >= 6, "{stats}");
    assert!(stat(&stats, "/packets/tcp/accepted") >= 4, "{stats}");
    assert!(stat(&stats, "/packets/tcp/answers") >= 11, "{stats}");
    assert_eq!(stat(&stats, "/packets/dropped/malformed"), 0, "{stats}");
    assert_eq!(stat(&stats, "/packets/dropped/bad_checksum"), 0, "{stats}");
    assert_eq!(stat(&stats, "/packets/write_errors"), 0, "{stats}");
    assert!(stat(&stats, "/resolver/handshakes_full") >= 1, "{stats}");

    // A clean stop: exit 0, final counters printed, descriptor released
    // (the persistent TUN device loses its carrier).
    let (status, last) = sim.dotcore().terminate().unwrap();
    assert!(status.success(), "{status}");
    let last: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(
        last.pointer("/packets/running"),
        Some(&serde_json::Value::Bool(false))
    );
    assert_eq!(stat(&last, "/packets/tcp/open"), 0, "{last}");
    assert_eq!(stat(&last, "/resolver/connections_open_now"), 0, "{last}");
    let link = sim.phone.ip_output(&["link", "show", TUN_DEV]);
    assert!(link.contains("NO-CARRIER"), "TUN still attached: {link}");
}

#[test]
#[ignore = "needs root and network namespaces: run scripts/test-simulator.sh"]
fn answers_over_512_bytes_are_truncated_over_udp_and_whole_over_tcp() {
    let Some(mut sim) = start(&["kdig"], SimOptions::default()) else {
        return;
    };
    let at4 = format!("@{}", dns_v4());
    let at6 = format!("@{}", dns_v6());
    // No EDNS: at most 512 bytes, TC set, no answers.
    let udp = sim.dig(&["+noedns", "+ignore", &at4, zone::BIG_TEST, "TXT"]);
    let text = stdout(&udp);
    assert!(
        flags_of(&udp).contains(&"tc".to_string()),
        "{}",
        describe(&udp)
    );
    assert!(text.contains("ANSWER: 0"), "{text}");
    let size: usize = text
        .lines()
        .find_map(|l| l.split("MSG SIZE  rcvd: ").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .expect("message size");
    assert!(size <= 512, "{size} bytes over UDP without EDNS");
    // EDNS 1232 (the default of dig and kdig) is still too small for ~2.1 KB.
    let k = sim.kdig(&["+bufsize=1232", "+notcp", &at6, zone::BIG_TEST, "TXT"]);
    assert!(flags_of(&k).contains(&"tc".to_string()), "{}", describe(&k));

    // A client that advertises 4096 bytes gets the ~2.1 KB answer whole over
    // UDP, in one IP packet larger than the TUN's MTU (1500, as the app sets
    // it), over IPv4 and IPv6: the kernel takes it from the device whole.
    let link = sim.phone.ip_output(&["link", "show", TUN_DEV]);
    assert!(link.contains("mtu 1500"), "{link}");
    for at in [&at4, &at6] {
        let big = sim.dig(&["+bufsize=4096", "+ignore", at, zone::BIG_TEST, "TXT"]);
        assert!(
            !flags_of(&big).contains(&"tc".to_string()),
            "{}",
            describe(&big)
        );
        assert!(
            stdout(&big).contains(&format!("ANSWER: {BIG_TEST_RECORDS}")),
            "{}",
            describe(&big)
        );
    }

    // Over TCP, the whole RRset.
    let tcp = sim.dig_short(&["+tcp", &at4, zone::BIG_TEST, "TXT"]);
    assert_eq!(tcp.len(), BIG_TEST_RECORDS, "{tcp:?}");
    let k = sim.kdig(&["+tcp", "+short", &at6, zone::BIG_TEST, "TXT"]);
    assert_eq!(
        stdout(&k).lines().count(),
        BIG_TEST_RECORDS,
        "{}",
        describe(&k)
    );
    // And what a client does with TC: dig retries over TCP by itself.
    let retry = sim.dig(&[&at4, zone::BIG_TEST, "TXT"]);
    let text = stdout(&retry);
    assert!(text.contains("Truncated, retrying in TCP mode"), "{text}");
    assert!(
        text.contains(&format!("ANSWER: {BIG_TEST_RECORDS}")),
        "{text}"
    );

    let stats = sim.dotcore().stats().unwrap();
    assert!(stat(&stats, "/packets/udp_truncated") >= 3, "{stats}");
    assert!(stat(&stats, "/packets/tcp/answers") >= 3, "{stats}");
}

#[test]
#[ignore = "needs root and network namespaces: run scripts/test-simulator.sh"]
fn strict_mode_with_the_dot_server_down_fails_closed_and_sends_nothing_to_port_53() {
    let Some(mut sim) = start(&[], SimOptions::default()) else {
        return;
    };
    let at4 = format!("@{}", dns_v4());
    assert_eq!(sim.dig_short(&[&at4, zone::A_TEST, "A"]), [A_TEST_V4]);
    sim.unbound.stop();
    // Not cached, so it needs the server.
    let out = sim.dig(&[&at4, zone::MULTI_TEST, "A"]);
    assert_eq!(status_of(&out), "SERVFAIL");
    let out = sim.dig(&["+tcp", &format!("@{}", dns_v6()), zone::TXT_TEST, "TXT"]);
    assert_eq!(status_of(&out), "SERVFAIL");
    let (dns53, dot853) = sim.upstream_packets().unwrap();
    assert!(dot853 > 0, "the counters must see the DoT attempts");
    assert_eq!(dns53, 0, "strict mode sent {dns53} packets to port 53");
    let stats = sim.dotcore().stats().unwrap();
    assert_eq!(stat(&stats, "/resolver/cleartext_queries"), 0, "{stats}");
    assert!(stat(&stats, "/resolver/failures/connect") >= 2, "{stats}");
}

/// dig's answer and how long it took, with a 5 s dig timeout (the engine's
/// query timeout, so a query that waited for DoT would show as SERVFAIL or
/// as a time near 5 s).
fn timed_dig_short(sim: &Simulator, args: &[&str]) -> (Vec<String>, Duration) {
    let started = Instant::now();
    let answer = sim.dig_short(args);
    (answer, started.elapsed())
}

#[test]
#[ignore = "needs root and network namespaces: run scripts/test-simulator.sh"]
fn opportunistic_mode_never_waits_for_dropped_dot_at_start_or_after_network_changes() {
    let Some(mut sim) = start(
        &[],
        SimOptions {
            mode: "opportunistic",
            fallback: true,
            block_dot: true,
            ..SimOptions::default()
        },
    ) else {
        return;
    };
    let at4 = format!("@{}", dns_v4());
    // What clear text costs here: dig straight to the network's resolver.
    let (direct, clear_rtt) = timed_dig_short(&sim, &[&format!("@{NET_V4}"), zone::A_TEST, "A"]);
    assert_eq!(direct, [A_TEST_V4]);
    // The engine's query timeout is 5 s and its connect timeout 3 s: a
    // query that waited for the dropped DoT connect would take 3 s or more.
    let prompt = clear_rtt + Duration::from_millis(1250);
    let (dns53_start, _) = sim.upstream_packets().unwrap();

    // First query after start, TCP/853 dropped (no RST).
    let (answer, took) = timed_dig_short(&sim, &[&at4, zone::A_TEST, "A"]);
    assert_eq!(answer, [A_TEST_V4]);
    assert!(
        took < prompt,
        "first query took {took:?} (clear text {clear_rtt:?})"
    );
    // The background probe gives up at the connect timeout.
    assert!(
        sim.dotcore()
            .wait_stderr("CleartextFallback", 1, Duration::from_secs(8)),
        "{}",
        sim.dotcore().stderr()
    );
    let (dns53, dot853) = sim.upstream_packets().unwrap();
    assert!(dns53 > dns53_start, "the answer came from port 53");
    assert!(dot853 >= 1, "DoT was probed (SYNs counted before the drop)");

    // A network change with DoT still dropped: the first query after it
    // does not wait for the new probe either.
    sim.dotcore().signal(libc::SIGHUP);
    assert!(sim
        .dotcore()
        .wait_stderr("network changed", 1, Duration::from_secs(5)));
    let (answer, took) = timed_dig_short(&sim, &[&at4, zone::TXT_TEST, "TXT"]);
    assert_eq!(answer, [format!("\"{TXT_TEST_VALUE}\"")]);
    assert!(took < prompt, "first query after the change took {took:?}");
    let stats = sim.dotcore().stats().unwrap();
    assert_eq!(stat(&stats, "/resolver/cleartext_queries"), 2, "{stats}");
    assert_eq!(stat(&stats, "/resolver/upstream_queries"), 0, "{stats}");
    assert_eq!(stat(&stats, "/resolver/failures/timeout"), 0, "{stats}");
    assert!(
        sim.dotcore()
            .wait_stderr("CleartextFallback", 2, Duration::from_secs(8)),
        "{}",
        sim.dotcore().stderr()
    );

    // The network lets DoT through again and the host says so (SIGHUP =
    // network_changed): the probe validates DoT and queries go over it.
    sim.unblock_dot().unwrap();
    sim.dotcore().signal(libc::SIGHUP);
    assert!(
        sim.dotcore()
            .wait_stderr("TlsRestored", 1, Duration::from_secs(10)),
        "{}",
        sim.dotcore().stderr()
    );
    let (dns53_before, dot853_before) = sim.upstream_packets().unwrap();
    assert_eq!(sim.dig_short(&[&at4, zone::MULTI_TEST, "A"]).len(), 4);
    assert_eq!(sim.dig_short(&[&at4, zone::A_TEST, "AAAA"]), [A_TEST_V6]);
    let (dns53_after, dot853_after) = sim.upstream_packets().unwrap();
    assert_eq!(dns53_after, dns53_before, "back on DoT, nothing to port 53");
    assert!(dot853_after > dot853_before, "the answers came over DoT");
    let stats = sim.dotcore().stats().unwrap();
    assert_eq!(stat(&stats, "/resolver/cleartext_queries"), 2, "{stats}");
    assert!(stat(&stats, "/resolver/upstream_queries") >= 2, "{stats}");
}

#[test]
#[ignore = "needs root and network namespaces: run scripts/test-simulator.sh"]
fn network_changes_under_the_engine_and_it_recovers_without_a_restart() {
    let Some(mut sim) = start(&["ss"], SimOptions::default()) else {
        return;
    };
    let at4 = format!("@{}", dns_v4());
    assert_eq!(sim.dig_short(&[&at4, zone::A_TEST, "A"]), [A_TEST_V4]);
    let pid = sim.dotcore().pid();

    // The upstream restarts: the open DoT connection dies under the engine,
    // the next query reconnects by itself.
    sim.unbound.restart().unwrap();
    assert_eq!(sim.dig_short(&[&at4, zone::MULTI_TEST, "A"]).len(), 4);

    // The phone's addresses move (new network); the host tells the engine.
    sim.move_phone_addresses().unwrap();
    sim.dotcore().signal(libc::SIGHUP);
    assert!(sim
        .dotcore()
        .wait_stderr("network changed", 1, Duration::from_secs(5)));
    assert_eq!(
        sim.dig_short(&[&format!("@{}", dns_v6()), zone::TXT_TEST, "TXT"]),
        [format!("\"{TXT_TEST_VALUE}\"")]
    );
    // The DoT connection now comes from the new address.
    let ss = sim
        .network
        .exec("ss", &["-Htn", "state", "established", "( sport = :853 )"]);
    let text = stdout(&ss);
    assert!(
        text.contains(&format!("{PHONE_V4_MOVED}:")),
        "no DoT connection from the new address:\n{}",
        describe(&ss)
    );
    // (The server may still list the old connection from the vanished
    // address: nothing can reach that address any more to close it.)
    assert_eq!(sim.dotcore().pid(), pid, "same process throughout");
    let stats = sim.dotcore().stats().unwrap();
    assert!(stat(&stats, "/resolver/connections_opened") >= 3, "{stats}");
}

#[test]
#[ignore = "needs root and network namespaces: run scripts/test-simulator.sh"]
fn deleting_the_tun_device_ends_dotcore_tun_with_a_message() {
    let Some(mut sim) = start(&[], SimOptions::default()) else {
        return;
    };
    let at4 = format!("@{}", dns_v4());
    assert_eq!(sim.dig_short(&[&at4, zone::A_TEST, "A"]), [A_TEST_V4]);
    // As when Android tears down a VPN's interface under the app.
    sim.phone.ip(&["link", "del", TUN_DEV]).unwrap();
    let status = sim.dotcore().wait_exit(Duration::from_secs(10));
    let stderr = sim.dotcore().stderr();
    let status = status.unwrap_or_else(|| panic!("dotcore tun kept running:\n{stderr}"));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("TunClosed"), "{stderr}");
    assert!(
        stderr.contains(&format!("the TUN device {TUN_DEV} went away")),
        "{stderr}"
    );
}

#[test]
#[ignore = "needs root and network namespaces: run scripts/test-simulator.sh"]
fn non_dns_traffic_is_refused_or_dropped_and_counted() {
    let Some(mut sim) = start(&[], SimOptions::default()) else {
        return;
    };
    let v4 = dns_v4();
    // UDP to another port: ICMP port unreachable, so the client fails fast.
    let started = Instant::now();
    let out = sim.dig(&["+time=5", "-p", "5353", &format!("@{v4}"), zone::A_TEST]);
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "dig waited for a timeout instead of seeing ICMP: {}",
        describe(&out)
    );
    // A ping, a UDP datagram with a wrong checksum and a TCP SYN to port 80,
    // from raw sockets.
    let p = sim.python(&format!(
        r#"
import socket, struct
dst = "{v4}"
icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
echo = struct.pack("!BBHHH", 8, 0, 0, 1, 1) + b"ping"
echo = echo[:2] + struct.pack("!H", csum(echo)) + echo[4:]
icmp.sendto(echo, (dst, 0))
icmp.settimeout(1)
try:
    icmp.recv(100)
    print("ping answered")
except socket.timeout:
    print("no ping reply")
udp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
payload = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x04test\x00\x00\x01\x00\x01"
udp.sendto(struct.pack("!HHHH", 40000, 53, 8 + len(payload), 0xbeef) + payload, (dst, 0))
tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp.settimeout(1)
try:
    tcp.connect((dst, 80))
    print("port 80 open")
except (socket.timeout, OSError) as e:
    print("port 80 closed")
"#
    ));
    let text = stdout(&p);
    assert!(text.contains("no ping reply"), "{}", describe(&p));
    assert!(text.contains("port 80 closed"), "{}", describe(&p));

    let stats = sim.dotcore().stats().unwrap();
    assert!(
        stat(&stats, "/packets/icmp_unreachable/sent") >= 1,
        "{stats}"
    );
    assert!(stat(&stats, "/packets/dropped/icmp") >= 1, "{stats}");
    assert!(
        stat(&stats, "/packets/dropped/bad_checksum") >= 1,
        "{stats}"
    );
    assert!(
        stat(&stats, "/packets/dropped/non_dns_port") >= 1,
        "{stats}"
    );
    assert_eq!(stat(&stats, "/packets/udp_answers"), 0, "{stats}");
    // Still serving.
    assert_eq!(
        sim.dig_short(&[&format!("@{v4}"), zone::A_TEST, "A"]),
        [A_TEST_V4]
    );
}

#[test]
#[ignore = "needs root and network namespaces: run scripts/test-simulator.sh"]
fn hundred_thousand_parallel_queries_lose_none_and_memory_stays_flat() {
    let Some(mut sim) = start(&["dnsperf"], SimOptions::default()) else {
        return;
    };
    let file = sim.unbound.dir().join("queries.txt");
    // 1000 lines: 500 distinct names under bench. (misses on the first
    // pass, hits after) and the fixed test names (hits).
    write_dnsperf_file(
        &file,
        &[
            ("a.test", "A"),
            ("a.test", "AAAA"),
            ("txt.test", "TXT"),
            ("multi.test", "A"),
        ],
        500,
    )
    .unwrap();
    let file = file.to_string_lossy().into_owned();
    let dnsperf = |sim: &Simulator, runs: &str| {
        sim.phone.exec(
            "dnsperf",
            &[
                "-s",
                &dns_v4(),
                "-d",
                &file,
                "-c",
                "8",
                "-q",
                "64",
                "-t",
                "5",
                "-l",
                "50",
                "-n",
                runs,
            ],
        )
    };
    // Warm-up: 10,000 queries fill the cache and the allocator's pools.
    let warm = dnsperf(&sim, "10");
    let w = parse_dnsperf(&stdout(&warm)).unwrap_or_else(|| panic!("{}", describe(&warm)));
    assert_eq!((w.sent, w.lost), (10_000, 0), "{}", describe(&warm));
    let rss_before = sim.dotcore().rss_kib().expect("RSS");

    let run = dnsperf(&sim, "100");
    let r = parse_dnsperf(&stdout(&run)).unwrap_or_else(|| panic!("{}", describe(&run)));
    assert_eq!(r.sent, 100_000, "{}", describe(&run));
    assert_eq!(r.completed, 100_000, "{}", describe(&run));
    assert_eq!(r.lost, 0, "{}", describe(&run));
    let rss_after = sim.dotcore().rss_kib().expect("RSS");
    let growth = rss_after.saturating_sub(rss_before);
    eprintln!(
        "dnsperf: {:.0} queries/s, mean latency {:.3} ms; RSS {rss_before} -> {rss_after} KiB",
        r.qps,
        r.avg_latency * 1000.0
    );
    assert!(
        growth < 10 * 1024,
        "RSS grew by {growth} KiB (bound: 10 MiB)"
    );

    let stats = sim.dotcore().stats().unwrap();
    assert_eq!(stat(&stats, "/packets/udp_answers"), 110_000, "{stats}");
    assert_eq!(stat(&stats, "/packets/queries_in_flight"), 0, "{stats}");
    assert!(stat(&stats, "/resolver/cache_hits") >= 100_000, "{stats}");
    assert_eq!(stat(&stats, "/resolver/failures/timeout"), 0, "{stats}");
}

/// One dnsperf measurement.
#[derive(Debug, Clone, Copy)]
struct Measured {
    qps: f64,
    latency_ms: f64,
    lost: u64,
    cpu_us_per_query: f64,
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces): utime and
    // stime are the 12th and 13th of them.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<u64> = rest
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0)
}

fn measure(sim: &Simulator, pid: u32, args: &[&str]) -> Measured {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let before = cpu_ticks(pid);
    let out = sim.phone.exec("dnsperf", args);
    let after = cpu_ticks(pid);
    let r = parse_dnsperf(&stdout(&out)).unwrap_or_else(|| panic!("{}", describe(&out)));
    let cpu_s = after.saturating_sub(before) as f64 / hz;
    Measured {
        qps: r.qps,
        latency_ms: r.avg_latency * 1000.0,
        lost: r.lost,
        cpu_us_per_query: cpu_s * 1e6 / (r.completed.max(1) as f64),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The benchmark of scripts/bench-tun.sh (not a test: it only runs when
/// DOTCORE_BENCH_OUT names the JSON file to write its numbers to).
#[test]
#[ignore = "benchmark: run scripts/bench-tun.sh"]
fn bench_tun_path_against_proxy_path() {
    let Ok(out_path) = std::env::var("DOTCORE_BENCH_OUT") else {
        eprintln!("SKIP: benchmark; set DOTCORE_BENCH_OUT (scripts/bench-tun.sh does)");
        return;
    };
    let secs: String = std::env::var("DOTCORE_BENCH_SECS").unwrap_or_else(|_| "10".into());
    let rounds: usize = std::env::var("DOTCORE_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let Some(mut sim) = start(&["dnsperf"], SimOptions::default()) else {
        return;
    };
    let proxy_addr: std::net::SocketAddr = "127.0.0.1:5300".parse().unwrap();
    let mut proxy = sim.start_proxy(proxy_addr).unwrap();
    let file = sim.unbound.dir().join("bench-queries.txt");
    write_dnsperf_file(&file, &[("a.test", "A"), ("a.test", "AAAA")], 100).unwrap();
    let file = file.to_string_lossy().into_owned();
    let (v4, proxy_ip, proxy_port) = (
        dns_v4(),
        proxy_addr.ip().to_string(),
        proxy_addr.port().to_string(),
    );
    let targets = [
        ("tun", v4.as_str(), "53"),
        ("proxy", proxy_ip.as_str(), proxy_port.as_str()),
    ];
    // Warm-up: two passes fill both caches; every later query is a hit.
    for (_, server, port) in targets {
        let w = sim.phone.exec(
            "dnsperf",
            &[
                "-s", server, "-p", port, "-d", &file, "-c", "4", "-n", "2", "-t", "5",
            ],
        );
        let w = parse_dnsperf(&stdout(&w)).unwrap();
        assert_eq!(w.lost, 0);
    }
    let tun_pid = sim.dotcore().pid().unwrap();
    let proxy_pid = proxy.pid().unwrap();
    let upstream_before = stat(
        &sim.dotcore().stats().unwrap(),
        "/resolver/upstream_queries",
    );
    let packets_before = sim.dotcore().stats().unwrap();

    let load = |server: &str, port: &str| -> Vec<String> {
        [
            "-s", server, "-p", port, "-d", &file, "-c", "8", "-q", "128", "-t", "2", "-l", &secs,
        ]
        .map(String::from)
        .to_vec()
    };
    // Light load: one client, a steady 2,000 queries/s, so latency is the
    // path's own and not queueing.
    let light = |server: &str, port: &str| -> Vec<String> {
        [
            "-s", server, "-p", port, "-d", &file, "-c", "1", "-q", "10", "-Q", "2000", "-t", "2",
            "-l", &secs,
        ]
        .map(String::from)
        .to_vec()
    };
    let mut results: std::collections::BTreeMap<String, Vec<Measured>> = Default::default();
    for _ in 0..rounds {
        for (name, server, port) in targets {
            let pid = if name == "tun" { tun_pid } else { proxy_pid };
            for (kind, args) in [("load", load(server, port)), ("light", light(server, port))] {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let m = measure(&sim, pid, &args);
                eprintln!("{name} {kind}: {m:?}");
                results.entry(format!("{name}_{kind}")).or_default().push(m);
            }
        }
    }
    let upstream_after = stat(
        &sim.dotcore().stats().unwrap(),
        "/resolver/upstream_queries",
    );
    let packets_after = sim.dotcore().stats().unwrap();
    assert_eq!(
        upstream_before, upstream_after,
        "measured queries must all hit the cache"
    );
    let proxy_final = proxy.terminate().map(|(_, last)| last).unwrap_or_default();

    let summary = |key: &str| {
        let v = &results[key];
        serde_json::json!({
            "qps": median(v.iter().map(|m| m.qps).collect()),
            "latency_ms": median(v.iter().map(|m| m.latency_ms).collect()),
            "cpu_us_per_query": median(v.iter().map(|m| m.cpu_us_per_query).collect()),
            "lost": v.iter().map(|m| m.lost).sum::<u64>(),
            "runs": v.iter().map(|m| serde_json::json!({
                "qps": m.qps, "latency_ms": m.latency_ms, "cpu_us_per_query": m.cpu_us_per_query
            })).collect::<Vec<_>>(),
        })
    };
    let report = serde_json::json!({
        "seconds_per_run": secs,
        "rounds": rounds,
        "tun_load": summary("tun_load"),
        "tun_light": summary("tun_light"),
        "proxy_load": summary("proxy_load"),
        "proxy_light": summary("proxy_light"),
        "load_command": format!("dnsperf {}", load("<server>", "<port>").join(" "))
            .replace(&file, "<query file>"),
        "light_command": format!("dnsperf {}", light("<server>", "<port>").join(" "))
            .replace(&file, "<query file>"),
        "query_file_lines": 200,
        "tun_packets_in": stat(&packets_after, "/packets/packets_in") - stat(&packets_before, "/packets/packets_in"),
        "tun_packets_out": stat(&packets_after, "/packets/packets_out") - stat(&packets_before, "/packets/packets_out"),
        "tun_final_counters": packets_after,
        "proxy_final_counters": proxy_final,
    });
    std::fs::write(&out_path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    eprintln!("benchmark written to {out_path}");
}
