//! Proves the unbound fixture is what the other tests assume, using
//! independent clients (kdig, dig, openssl) rather than dotcore itself: if
//! these fail, a dotcore test failure says nothing about dotcore.

use std::process::Output;
use std::time::{Duration, Instant};

use dotcore_tests::certs::{TestCa, TestPki, DEFAULT_LEAF_NAMES};
use dotcore_tests::unbound::*;
use dotcore_tests::{kdig, require_tool, run_tool, DOT_NAME};

fn tools(names: &[&str]) -> bool {
    names.iter().all(|n| require_tool(n))
}

fn start(options: UnboundOptions) -> UnboundServer {
    UnboundServer::start(options).unwrap_or_else(|e| panic!("fixture failed to start: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `+short` answer lines, trimmed, in order.
fn short(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(";;"))
        .map(String::from)
        .collect()
}

/// kdig over DoT to the fixture, authenticating with the CA and `dot.test`
/// unless `auth` overrides (`auth` replaces the default auth options).
fn dot_query(server: &UnboundServer, auth: &[String], qname: &str, qtype: &str) -> Output {
    let port = server.dot_addr().port().to_string();
    let default_auth = vec![
        format!("+tls-ca={}", server.ca_file().display()),
        format!("+tls-hostname={DOT_NAME}"),
    ];
    let auth = if auth.is_empty() { &default_auth } else { auth };
    let mut args: Vec<&str> = vec!["@127.0.0.1", "-p", &port];
    args.extend(auth.iter().map(String::as_str));
    args.extend(["+short", qname, qtype]);
    kdig(&args)
}

/// Plain-DNS kdig to the fixture; `transport` is e.g. "+notcp" or "+tcp".
fn plain_query(server: &UnboundServer, transport: &str, qname: &str, qtype: &str) -> Output {
    let port = server.plain_addr().port().to_string();
    kdig(&["@127.0.0.1", "-p", &port, transport, qname, qtype])
}

fn assert_dot_ok(server: &UnboundServer, auth: &[String]) {
    let out = dot_query(server, auth, A_TEST, "A");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(short(&out), vec![A_TEST_V4.to_string()], "{}", text(&out));
}

fn assert_dot_fails(server: &UnboundServer, auth: &[String]) {
    let out = dot_query(server, auth, A_TEST, "A");
    assert!(
        short(&out).is_empty(),
        "expected authentication failure, got an answer:\n{}",
        text(&out)
    );
    let all = text(&out);
    assert!(
        !out.status.success() || all.contains("failed") || all.contains("WARNING"),
        "kdig did not report a failure:\n{all}"
    );
}

#[test]
fn dot_with_ca_and_hostname_answers() {
    if !tools(&["unbound", "kdig"]) {
        return;
    }
    let server = start(UnboundOptions::default());
    assert_dot_ok(&server, &[]);

    let out = dot_query(&server, &[], A_TEST, "AAAA");
    assert_eq!(short(&out), vec![A_TEST_V6.to_string()], "{}", text(&out));

    // The readiness probe must not leave TLS noise for log-based assertions.
    let log = server.read_log();
    assert!(log.contains("start of service"), "{log}");
    assert!(!log.contains("handshake failed"), "{log}");
}

#[test]
fn dot_with_leaf_pin_answers_and_wrong_pin_fails() {
    if !tools(&["unbound", "kdig"]) {
        return;
    }
    let server = start(UnboundOptions::default());
    assert_dot_ok(&server, &[format!("+tls-pin={}", server.leaf_pin())]);
    // The CA is not sent by default, so its pin matches nothing presented.
    assert_dot_fails(&server, &[format!("+tls-pin={}", server.ca_pin())]);
    let other = TestPki::generate();
    assert_dot_fails(&server, &[format!("+tls-pin={}", other.leaf.pin())]);
}

#[test]
fn dot_with_wrong_hostname_fails() {
    if !tools(&["unbound", "kdig"]) {
        return;
    }
    let server = start(UnboundOptions::default());
    assert_dot_fails(
        &server,
        &[
            format!("+tls-ca={}", server.ca_file().display()),
            "+tls-hostname=wrong.test".to_string(),
        ],
    );
}

#[test]
fn dot_leaf_for_other_name_fails() {
    if !tools(&["unbound", "kdig"]) {
        return;
    }
    let ca = TestCa::new("dotcore test CA");
    let leaf = ca.issue_leaf(&["other.test"]);
    let server = start(UnboundOptions {
        pki: Some(TestPki { ca, leaf }),
        ..Default::default()
    });
    assert_dot_fails(&server, &[]);
    // Same certificate, right name: the chain itself is fine.
    assert_dot_ok(
        &server,
        &[
            format!("+tls-ca={}", server.ca_file().display()),
            "+tls-hostname=other.test".to_string(),
        ],
    );
}

#[test]
fn dot_leaf_from_other_ca_and_expired_leaf_fail() {
    if !tools(&["unbound", "kdig"]) {
        return;
    }
    let trusted = TestPki::generate();
    let trusted_files = trusted.write_temp().unwrap();
    let ca_arg = format!("+tls-ca={}", trusted_files.files.ca_cert.display());
    let host_arg = format!("+tls-hostname={DOT_NAME}");

    let foreign = start(UnboundOptions::default()); // its own, different CA
    assert_dot_fails(&foreign, &[ca_arg.clone(), host_arg.clone()]);

    let ca = TestCa::new("expiring CA");
    let leaf = ca.issue_expired_leaf(DEFAULT_LEAF_NAMES);
    let expired = start(UnboundOptions {
        pki: Some(TestPki { ca, leaf }),
        ..Default::default()
    });
    assert_dot_fails(&expired, &[]);
}

#[test]
fn dot_with_chain_allows_ca_pin() {
    if !tools(&["unbound", "kdig", "openssl"]) {
        return;
    }
    let server = start(UnboundOptions {
        send_chain: true,
        ..Default::default()
    });
    assert_dot_ok(&server, &[]);
    // kdig accepts a pin matching any certificate the server sent.
    assert_dot_ok(&server, &[format!("+tls-pin={}", server.ca_pin())]);
    assert_dot_ok(&server, &[format!("+tls-pin={}", server.leaf_pin())]);

    // The server really sends leaf + CA, and openssl verifies the chain.
    let connect = server.dot_addr().to_string();
    let ca = server.ca_file().display().to_string();
    let out = run_tool(
        "openssl",
        &[
            "s_client",
            "-connect",
            &connect,
            "-servername",
            DOT_NAME,
            "-showcerts",
            "-CAfile",
            &ca,
            "-verify_hostname",
            DOT_NAME,
            "-verify_return_error",
        ],
    );
    let all = text(&out);
    assert_eq!(
        all.matches("-----BEGIN CERTIFICATE-----").count(),
        2,
        "{all}"
    );
    assert!(all.contains("Verify return code: 0 (ok)"), "{all}");
}

#[test]
fn pins_match_openssl() {
    if !tools(&["openssl", "sh"]) {
        return;
    }
    let pki = TestPki::generate();
    let files = pki.write_temp().unwrap();
    for (cert, pin) in [
        (&files.files.leaf_cert, pki.leaf.pin()),
        (&files.files.ca_cert, pki.ca.pin()),
    ] {
        let script = format!(
            "openssl x509 -in '{}' -pubkey -noout | openssl pkey -pubin -outform der \
             | openssl dgst -sha256 -binary | openssl base64 -A",
            cert.display()
        );
        let out = run_tool("sh", &["-c", &script]);
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pin);
    }
}

#[test]
fn big_answer_truncates_over_udp_and_is_whole_over_tcp_and_tls() {
    if !tools(&["unbound", "kdig"]) {
        return;
    }
    let server = start(UnboundOptions::default());

    let udp = plain_query(&server, "+notcp", BIG_TEST, "TXT");
    let udp_text = text(&udp);
    let flags = udp_text
        .lines()
        .find(|l| l.starts_with(";; Flags:"))
        .unwrap_or_else(|| panic!("no flags line:\n{udp_text}"));
    assert!(
        flags.contains(" tc"),
        "UDP answer not truncated:\n{udp_text}"
    );

    let expected: Vec<String> = big_test_txt().iter().map(|s| format!("\"{s}\"")).collect();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();

    let tcp = plain_query(&server, "+tcp", BIG_TEST, "TXT");
    let tcp_text = text(&tcp);
    assert!(tcp.status.success(), "{tcp_text}");
    let tcp_flags = tcp_text
        .lines()
        .find(|l| l.starts_with(";; Flags:"))
        .unwrap();
    assert!(!tcp_flags.contains(" tc"), "{tcp_text}");
    let mut got: Vec<String> = tcp_text
        .lines()
        .filter(|l| l.starts_with(BIG_TEST) && l.contains("TXT"))
        .map(|l| l.split("TXT").nth(1).unwrap().trim().to_string())
        .collect();
    got.sort();
    assert_eq!(got, expected_sorted, "{tcp_text}");

    let tls = dot_query(&server, &[], BIG_TEST, "TXT");
    let mut got = short(&tls);
    got.sort();
    assert_eq!(got, expected_sorted, "{}", text(&tls));
}

#[test]
fn zone_records_are_served() {
    if !tools(&["unbound", "kdig"]) {
        return;
    }
    let server = start(UnboundOptions::default());

    let out = dot_query(&server, &[], TXT_TEST, "TXT");
    assert_eq!(short(&out), vec![format!("\"{TXT_TEST_VALUE}\"")]);

    let out = dot_query(&server, &[], MULTI_TEST, "A");
    let mut got = short(&out);
    got.sort();
    assert_eq!(got, MULTI_TEST_V4, "{}", text(&out));

    let out = dot_query(&server, &[], CNAME_TEST, "CNAME");
    assert_eq!(short(&out), vec![CNAME_TEST_TARGET.to_string()]);

    // TTLs are served as configured.
    let out = plain_query(&server, "+tcp", SHORT_TEST, "A");
    let t = text(&out);
    let line = t
        .lines()
        .find(|l| l.starts_with(SHORT_TEST) && l.contains("\tA\t"))
        .unwrap_or_else(|| panic!("no A answer:\n{t}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[1], SHORT_TEST_TTL.to_string(), "{t}");
    assert_eq!(fields[4], SHORT_TEST_V4, "{t}");

    let out = plain_query(&server, "+tcp", A_TEST, "A");
    let t = text(&out);
    let line = t.lines().find(|l| l.starts_with(A_TEST)).unwrap();
    assert_eq!(
        line.split_whitespace().nth(1),
        Some(A_TEST_TTL.to_string().as_str()),
        "{t}"
    );

    // Unlisted name under test.: NXDOMAIN with the SOA for negative caching.
    let out = plain_query(&server, "+tcp", NX_TEST, "A");
    let t = text(&out);
    assert!(t.contains("status: NXDOMAIN"), "{t}");
    let soa = t
        .lines()
        .find(|l| l.starts_with("test.") && l.contains("SOA"))
        .unwrap_or_else(|| panic!("no SOA in authority:\n{t}"));
    assert!(
        soa.contains("ns.test. admin.test. 1 3600 600 86400 60"),
        "{t}"
    );
    assert_eq!(
        soa.split_whitespace().nth(1),
        Some(TEST_NEGATIVE_TTL.to_string().as_str()),
        "{t}"
    );

    // Existing name, missing type: NODATA (NOERROR, no answer).
    let out = plain_query(&server, "+tcp", TXT_TEST, "A");
    let t = text(&out);
    assert!(
        t.contains("status: NOERROR") && t.contains("ANSWER: 0"),
        "{t}"
    );

    // No upstream: everything outside the served zones is refused.
    let out = plain_query(&server, "+tcp", REFUSED_NAME, "A");
    let t = text(&out);
    assert!(t.contains("status: REFUSED"), "{t}");
}

#[test]
fn bench_names_all_answer() {
    if !tools(&["unbound", "kdig"]) {
        return;
    }
    let server = start(UnboundOptions::default());
    for name in ["bench.", "q1.bench.", "x7f3a9.deep.sub.bench."] {
        let out = dot_query(&server, &[], name, "A");
        assert_eq!(short(&out), vec![BENCH_V4.to_string()], "{}", text(&out));
    }
}

#[test]
fn stop_and_restart_on_same_ports() {
    if !tools(&["unbound", "kdig"]) {
        return;
    }
    let mut server = start(UnboundOptions::default());
    let (dot, plain) = (server.dot_addr(), server.plain_addr());
    assert_dot_ok(&server, &[]);

    server.stop();
    assert!(!server.is_running());
    assert!(
        std::net::TcpStream::connect(dot).is_err(),
        "DoT port still accepting after stop"
    );
    assert_dot_fails(&server, &[]);

    server.restart().expect("restart");
    assert!(server.is_running());
    assert_eq!((server.dot_addr(), server.plain_addr()), (dot, plain));
    assert_dot_ok(&server, &[]);

    let status = server.terminate().expect("was running");
    assert!(!server.is_running(), "terminated with {status}");
}

#[test]
fn frozen_server_times_out_then_recovers() {
    if !tools(&["unbound", "kdig"]) {
        return;
    }
    let server = start(UnboundOptions::default());
    server.freeze();
    let started = Instant::now();
    let out = dot_query(
        &server,
        &[
            format!("+tls-ca={}", server.ca_file().display()),
            format!("+tls-hostname={DOT_NAME}"),
            "+timeout=1".into(),
            "+retry=0".into(),
        ],
        A_TEST,
        "A",
    );
    let took = started.elapsed();
    server.thaw();
    assert!(short(&out).is_empty(), "{}", text(&out));
    // It waited for the timeout (not refused), and the timeout bounded it.
    assert!(took >= Duration::from_millis(900), "took {took:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_dot_ok(&server, &[]);
}

#[test]
fn log_queries_records_each_query() {
    if !tools(&["unbound", "kdig"]) {
        return;
    }
    let server = start(UnboundOptions {
        log_queries: true,
        ..Default::default()
    });
    assert_dot_ok(&server, &[]);
    assert_dot_ok(&server, &[]);
    let needle = format!("{A_TEST} A IN");
    assert!(
        server.wait_for_log(&needle, Duration::from_secs(5)),
        "{}",
        server.read_log()
    );
    // unbound logs each query it receives; wait for both to be flushed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.count_log(&needle) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.count_log(&needle), 2, "{}", server.read_log());
}

#[test]
fn plain_only_server_has_no_dot_listener() {
    if !tools(&["unbound", "kdig"]) {
        return;
    }
    let server = start(UnboundOptions {
        tls: false,
        ..Default::default()
    });
    let out = plain_query(&server, "+notcp", A_TEST, "A");
    assert!(text(&out).contains(A_TEST_V4), "{}", text(&out));
    assert!(std::net::TcpStream::connect(server.dot_addr()).is_err());
}

#[test]
fn ipv6_listener_answers() {
    if !tools(&["unbound", "kdig"]) {
        return;
    }
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIP: no IPv6 loopback");
        return;
    }
    let server = start(UnboundOptions {
        ipv6: true,
        ..Default::default()
    });
    let dot6 = server.dot_addr_v6().expect("ipv6 enabled");
    let port = dot6.port().to_string();
    let out = kdig(&[
        "@::1",
        "-p",
        &port,
        &format!("+tls-ca={}", server.ca_file().display()),
        &format!("+tls-hostname={DOT_NAME}"),
        "+short",
        A_TEST,
        "A",
    ]);
    assert_eq!(short(&out), vec![A_TEST_V4.to_string()], "{}", text(&out));
}

#[test]
fn parallel_servers_are_independent() {
    if !tools(&["unbound", "kdig"]) {
        return;
    }
    let a = start(UnboundOptions::default());
    let b = start(UnboundOptions::default());
    assert_ne!(a.dot_addr(), b.dot_addr());
    assert_ne!(a.plain_addr(), b.plain_addr());
    assert_ne!(a.leaf_pin(), b.leaf_pin());
    assert_dot_ok(&a, &[]);
    assert_dot_ok(&b, &[]);
    // b's CA does not vouch for a's leaf.
    assert_dot_fails(
        &a,
        &[
            format!("+tls-ca={}", b.ca_file().display()),
            format!("+tls-hostname={DOT_NAME}"),
        ],
    );
}
