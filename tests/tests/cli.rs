//! The `dotcore` binary: `query` and `proxy` against Unbound, and its
//! handling of bad input. Clients of the proxy are dig and kdig.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use dotcore_tests::unbound::{self as zone, UnboundOptions, UnboundServer};
use dotcore_tests::{dig, dotcore_bin, kdig, require_tool};

fn dotcore(args: &[&str]) -> Output {
    Command::new(dotcore_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn server_args(server: &UnboundServer) -> Vec<String> {
    vec![
        "--server".into(),
        server.dot_addr().to_string(),
        "--name".into(),
        "dot.test".into(),
        "--ca".into(),
        server.ca_file().display().to_string(),
    ]
}

fn start() -> Option<UnboundServer> {
    if !require_tool("unbound") {
        return None;
    }
    Some(UnboundServer::start(UnboundOptions::default()).unwrap())
}

#[test]
fn query_prints_like_dig_short_and_json() {
    let Some(server) = start() else { return };
    let mut args = vec!["query", zone::A_TEST, "A", "--stats"];
    let sargs = server_args(&server);
    args.extend(sargs.iter().map(String::as_str));
    let out = dotcore(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some(zone::A_TEST_V4));
    let stats = lines.next().unwrap();
    assert!(stats.starts_with("{\"queries\":1,"), "{stats}");
    assert!(stats.contains("\"handshakes_full\":1"));

    let mut args = vec!["query", zone::MULTI_TEST, "a", "--json"];
    args.extend(sargs.iter().map(String::as_str));
    let out = dotcore(&args);
    assert!(out.status.success());
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(json.starts_with("{\"answers\":[") || json.contains("\"rcode\":\"NOERROR\""));
    for ip in zone::MULTI_TEST_V4 {
        assert!(json.contains(ip), "{json}");
    }

    let mut args = vec!["query", zone::NX_TEST];
    args.extend(sargs.iter().map(String::as_str));
    let out = dotcore(&args);
    assert_eq!(out.status.code(), Some(1), "NXDOMAIN is a failed lookup");
    assert!(String::from_utf8_lossy(&out.stderr).contains("NXDOMAIN"));
}

#[test]
fn bad_input_is_one_line_naming_the_problem() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "query",
                "a.test",
                "--server",
                "not-an-ip",
                "--name",
                "x.test",
            ],
            "servers[0].addresses",
        ),
        (
            &[
                "query",
                "a.test",
                "--server",
                "127.0.0.1:0",
                "--name",
                "x.test",
            ],
            "port 0",
        ),
        (
            &["query", "a.test", "--server", "127.0.0.1", "--pin", "AAAA"],
            "servers[0].pins[0]",
        ),
        (
            &["query", "a.test", "--server", "127.0.0.1"],
            "servers[0].name",
        ),
        (
            &["query", "a.test", "--provider", "nope"],
            "unknown provider",
        ),
        (&["query", "a.test", "--provider", "nextdns"], "config_id"),
        (&["query", "a.test", "--mode", "sometimes"], "--mode"),
        (&["query", "a.test", "BOGUS"], "type"),
        (&["query", "a.test", "--ca", "/nonexistent.pem"], "--ca"),
        (&["query", "a.test", "--name", "x.test"], "--server"),
        (&["query", "a.test", "--fallback", "nope"], "--fallback"),
        (&["proxy", "--listen", "localhost"], "--listen"),
        (
            &[
                "proxy",
                // Not a local address: should the check go, binding fails
                // (a different message) instead of a proxy running on.
                "--listen",
                "192.0.2.1:5399",
                "--mode",
                "opportunistic",
                "--server",
                "127.0.0.1",
                "--fallback",
                "192.0.2.1:5399",
            ],
            "own --listen address",
        ),
        (
            &[
                "query",
                "a.test",
                "--server",
                "10.111.222.3",
                "--name",
                "dot.test",
            ],
            "own virtual DNS address",
        ),
    ];
    for (args, needle) in cases {
        let out = dotcore(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"));
    }
}

/// A name config validation accepted but rustls cannot connect with used
/// to become a strict query to the bare address that failed every
/// handshake; it must be refused as bad input, naming the field.
#[test]
fn a_name_tls_cannot_use_is_refused_as_bad_input() {
    let args = [
        "query",
        "a.test",
        "--server",
        "127.0.0.1:1",
        "--name",
        "dot.123",
        "--timeout-ms",
        "1000",
    ];
    let out = dotcore(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("servers[0].name"), "{stderr}");
    assert!(stderr.contains("dot.123"), "{stderr}");
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `dotcore proxy`, waits until it answers, and stops it with SIGINT
/// (or kills it if the test ends another way).
struct Proxy {
    child: Option<std::process::Child>,
    addr: SocketAddr,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Proxy {
    fn start(server: &UnboundServer) -> Proxy {
        Proxy::start_with(server_args(server))
    }

    /// A proxy with `upstream` as its server arguments.
    fn start_with(upstream: Vec<String>) -> Proxy {
        Proxy::start_at("127.0.0.1".parse().unwrap(), upstream)
    }

    /// A proxy listening on `ip`, with `upstream` as its server arguments.
    fn start_at(ip: std::net::IpAddr, upstream: Vec<String>) -> Proxy {
        let addr = SocketAddr::new(ip, free_port());
        let mut args = vec![
            "proxy".to_string(),
            "--listen".into(),
            addr.to_string(),
            "--stats".into(),
        ];
        args.extend(upstream);
        let child = Command::new(dotcore_bin())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let proxy = Proxy {
            child: Some(child),
            addr,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(addr).is_ok() {
                return proxy;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("proxy did not start listening on {addr}");
    }

    fn port(&self) -> String {
        self.addr.port().to_string()
    }

    fn interrupt(mut self) -> Output {
        let mut child = self.child.take().expect("running");
        // kill(1) sends the SIGINT, so no unsafe libc call is needed here.
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("proxy did not exit on SIGINT");
    }
}

#[test]
fn proxy_serves_dig_and_kdig_over_udp_and_tcp_and_prints_stats_on_sigint() {
    let Some(server) = start() else { return };
    if !require_tool("dig") || !require_tool("kdig") {
        return;
    }
    let proxy = Proxy::start(&server);
    let port = proxy.port();
    let at = "@127.0.0.1";

    let out = dig(&[
        at,
        "-p",
        &port,
        "+short",
        "+tries=1",
        "+time=5",
        zone::A_TEST,
        "A",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), zone::A_TEST_V4);

    let out = dig(&[
        at,
        "-p",
        &port,
        "+tcp",
        "+short",
        "+tries=1",
        zone::A_TEST,
        "AAAA",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), zone::A_TEST_V6);

    // Over 512 bytes: truncated over UDP without EDNS, whole over TCP.
    let out = dig(&[
        at,
        "-p",
        &port,
        "+noedns",
        "+ignore",
        "+tries=1",
        zone::BIG_TEST,
        "TXT",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" tc"), "TC flag set: {text}");
    let out = dig(&[at, "-p", &port, "+tcp", "+short", zone::BIG_TEST, "TXT"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        zone::BIG_TEST_RECORDS
    );

    let out = kdig(&[at, "-p", &port, "+short", zone::TXT_TEST, "TXT"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("\"{}\"", zone::TXT_TEST_VALUE)
    );

    // An EDNS version the proxy does not implement gets BADVERS (RFC 6891
    // section 6.1.3); dig without negotiation and kdig both show it.
    let out = dig(&[
        at,
        "-p",
        &port,
        "+edns=1",
        "+noednsnegotiation",
        "+tries=1",
        zone::A_TEST,
        "A",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("status: BADVERS"), "{text}");
    let out = kdig(&[at, "-p", &port, "+edns=1", zone::A_TEST, "A"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("status: BADVERS"), "{text}");
    // With negotiation, dig retries with version 0 and gets the answer.
    let out = dig(&[at, "-p", &port, "+edns=1", "+short", zone::A_TEST, "A"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), zone::A_TEST_V4);

    // A DNS response sent to the proxy gets nothing back (answering it,
    // even with an error, could start an endless exchange with another
    // server); the next query from the same socket is answered.
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let proxy_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut response = dotcore::message::build_query(zone::A_TEST, "A").unwrap();
    response[2] |= 0x80;
    client.send_to(&response, proxy_addr).unwrap();
    let mut buf = [0u8; 4096];
    assert!(
        client.recv_from(&mut buf).is_err(),
        "a response was answered"
    );
    let query = dotcore::message::build_query(zone::A_TEST, "A").unwrap();
    client.send_to(&query, proxy_addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (n, _) = client.recv_from(&mut buf).expect("the query is answered");
    let answer = dotcore::message::decode_answer(&buf[..n]).unwrap();
    assert_eq!(answer.rcode, "NOERROR");

    let out = proxy.interrupt();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stats = stdout.lines().last().expect("stats line");
    assert!(stats.starts_with("{\"queries\":"), "{stats}");
    assert!(stats.contains("\"handshakes_full\":1"), "{stats}");
}

/// A burst of UDP queries sent before any answer is read, more than the
/// proxy takes from its socket at once, with DNS responses among them: each
/// query is answered exactly once and no response is. Also with a
/// concurrency limit below the burst, where the kernel's buffer holds the
/// queries that wait for a permit, and over IPv6.
#[test]
fn proxy_answers_every_query_of_a_udp_burst_once() {
    let Some(server) = start() else { return };
    const BURST: u16 = 40;
    for (ip, limit) in [("127.0.0.1", "4096"), ("127.0.0.1", "3"), ("::1", "4096")] {
        let mut args = vec!["--max-concurrent".to_string(), limit.to_string()];
        args.extend(server_args(&server));
        let ip: std::net::IpAddr = ip.parse().unwrap();
        let proxy = Proxy::start_at(ip, args);
        let client = UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
        let mut waiting = std::collections::BTreeSet::new();
        for id in 0..BURST {
            let mut query = dotcore::message::build_query(zone::A_TEST, "A").unwrap();
            query[..2].copy_from_slice(&id.to_be_bytes());
            client.send_to(&query, proxy.addr).unwrap();
            waiting.insert(id);
            if id % 8 == 0 {
                let mut response = query.clone();
                response[..2].copy_from_slice(&(1000 + id).to_be_bytes());
                response[2] |= 0x80;
                client.send_to(&response, proxy.addr).unwrap();
            }
        }
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 4096];
        while !waiting.is_empty() {
            let (n, _) = client
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("{ip}, limit {limit}: {waiting:?} unanswered: {e}"));
            let id = u16::from_be_bytes([buf[0], buf[1]]);
            assert!(
                waiting.remove(&id),
                "{ip}, limit {limit}: answer {id} not expected"
            );
            let answer = dotcore::message::decode_answer(&buf[..n]).unwrap();
            assert_eq!(answer.rcode, "NOERROR");
        }
        client
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        if let Ok((_, _)) = client.recv_from(&mut buf) {
            let id = u16::from_be_bytes([buf[0], buf[1]]);
            panic!("{ip}, limit {limit}: datagram {id} after every query was answered");
        }
        assert!(proxy.interrupt().status.success());
    }
}

#[test]
fn proxy_tcp_clients_are_bounded_in_number_and_in_time() {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    let Some(server) = start() else { return };
    let proxy = Proxy::start(&server);
    let addr: SocketAddr = format!("127.0.0.1:{}", proxy.port()).parse().unwrap();
    let query = dotcore::message::build_query(zone::A_TEST, "A").unwrap();
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    let answered = |s: &mut TcpStream| -> bool {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        if s.write_all(&framed).is_err() {
            return false;
        }
        let mut len = [0u8; 2];
        s.read_exact(&mut len).is_ok()
    };

    // A client that announces a query and never sends it is disconnected
    // (after the proxy's 10 s timeout), not served forever.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled.write_all(&[0, 40, 1, 2, 3]).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = stalled.read(&mut buf);
    assert!(
        matches!(n, Ok(0))
            || n.as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "expected the proxy to close the connection, got {n:?} after {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(19));

    // 256 clients are served; the next connection is closed at once; the
    // connected ones keep working.
    let mut clients: Vec<TcpStream> = (0..256)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    assert!(answered(&mut clients[0]));
    assert!(answered(&mut clients[255]));
    let mut extra = TcpStream::connect(addr).unwrap();
    assert!(!answered(&mut extra), "a 257th client was served");
    assert!(answered(&mut clients[100]));
    // A slot frees when a client leaves.
    drop(clients.pop());
    std::thread::sleep(Duration::from_millis(200));
    let mut again = TcpStream::connect(addr).unwrap();
    assert!(answered(&mut again), "a freed slot was not reused");
    let out = proxy.interrupt();
    assert!(out.status.success());
}

/// A loopback socket bound and never listening: connects are refused until
/// it listens, after which the kernel completes them and nobody ever reads
/// (a server that takes TCP and never speaks TLS).
fn bound_socket() -> (socket2::Socket, SocketAddr) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    (socket, addr)
}

/// A refused address and one that takes TCP but never speaks TLS: the
/// query fails on both, each for its own reason.
#[test]
fn a_failed_query_prints_each_servers_reason_and_exits_1() {
    let (_refusing, refused) = bound_socket();
    let (silent_socket, silent) = bound_socket();
    silent_socket.listen(16).unwrap();
    let (refused_s, silent_s) = (refused.to_string(), silent.to_string());
    let args = [
        "query",
        "a.test",
        "--server",
        &refused_s,
        "--server",
        &silent_s,
        "--name",
        "dot.test",
        "--timeout-ms",
        "2000",
    ];
    let started = Instant::now();
    let out = dotcore(&args);
    assert!(started.elapsed() < Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "no answer printed");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "dotcore: a.test A: SERVFAIL \u{2014} {refused}: the server refused the connection \
                 (nothing listens on that port)"
            ),
            format!(
                "dotcore: a.test A: SERVFAIL \u{2014} {silent}: the server accepted the connection \
                 but completed no TLS handshake within 2 s"
            ),
        ],
        "one line per server address tried, nothing else:\n{stderr}"
    );

    // The same as JSON fields.
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out = dotcore(&json_args);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["rcode"], "SERVFAIL");
    assert_eq!(json["answers"], serde_json::json!([]));
    let failures = json["failures"].as_array().expect("a failures array");
    assert_eq!(failures.len(), 2, "{json}");
    assert_eq!(failures[0]["server"], "dot.test");
    assert_eq!(failures[0]["address"], refused_s.as_str());
    assert_eq!(failures[0]["kind"], "connection_refused");
    assert!(failures[0]["reason"].as_str().unwrap().contains("refused"));
    assert_eq!(failures[1]["address"], silent_s.as_str());
    assert_eq!(failures[1]["kind"], "answer_timed_out");
    assert!(failures[1]["reason"]
        .as_str()
        .unwrap()
        .contains("TLS handshake"));
}

#[test]
fn an_answered_query_has_no_failures_in_json_and_a_wrong_pin_names_its_address() {
    let Some(server) = start() else { return };
    let mut args = vec!["query", zone::A_TEST, "--json"];
    let sargs = server_args(&server);
    args.extend(sargs.iter().map(String::as_str));
    let out = dotcore(&args);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["failures"], serde_json::json!([]));

    let dot = server.dot_addr().to_string();
    let wrong_pin = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let out = dotcore(&["query", zone::A_TEST, "--server", &dot, "--pin", wrong_pin]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let prefix = format!("dotcore: {} A: SERVFAIL \u{2014} {dot}: ", zone::A_TEST);
    assert!(stderr.starts_with(&prefix), "{stderr}");
}

/// The proxy logs a server's failure when it changes, not per query: five
/// refused queries give one line; the port then taking TCP and never
/// speaking TLS gives one more.
#[test]
fn the_proxy_logs_a_servers_failure_once_per_change() {
    let (socket, upstream) = bound_socket();
    let proxy = Proxy::start_with(vec![
        "--server".into(),
        upstream.to_string(),
        "--name".into(),
        "dot.test".into(),
        "--timeout-ms".into(),
        "1500".into(),
    ]);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let ask = || {
        let query = dotcore::message::build_query(zone::A_TEST, "A").unwrap();
        client.send_to(&query, proxy.addr).unwrap();
        let mut buf = [0u8; 512];
        let (n, _) = client.recv_from(&mut buf).expect("the proxy answers");
        dotcore::message::decode_answer(&buf[..n]).unwrap().rcode
    };
    for _ in 0..5 {
        assert_eq!(ask(), "SERVFAIL");
    }
    socket.listen(16).unwrap();
    assert_eq!(ask(), "SERVFAIL");
    assert_eq!(ask(), "SERVFAIL");
    let out = proxy.interrupt();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let about: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(&upstream.to_string()))
        .collect();
    assert_eq!(about.len(), 2, "one line per change:\n{stderr}");
    assert!(about[0].contains("refused"), "{stderr}");
    assert!(about[0].contains("connection_refused"), "{stderr}");
    assert!(about[1].contains("TLS handshake"), "{stderr}");
    assert!(about[1].contains("answer_timed_out"), "{stderr}");
}
