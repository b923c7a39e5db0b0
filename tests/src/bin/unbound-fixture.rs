//! The local unbound DoT server of the Rust tests, as a process, for test
//! suites written in other languages (the Kotlin suite in tests/kotlin).
//!
//! Starts `UnboundServer::start(UnboundOptions::default())` on free loopback
//! ports, prints one line of JSON describing it, then serves until its stdin
//! is closed (so the server dies with the test JVM, however it ends) or
//! `DOTCORE_FIXTURE_MAX_SECS` (default 1800) pass, and stops unbound. Exit status 1 (with the reason on stderr) if unbound
//! cannot start.
//!
//! ```text
//! {"dot":"127.0.0.1:PORT","plain":"127.0.0.1:PORT","dot_name":"dot.test",
//!  "ca_pem_path":"/tmp/.../ca.pem","leaf_pin":"BASE64","ca_pin":"BASE64",
//!  "a_name":"a.test.","a_v4":"192.0.2.1","a_v6":"2001:db8::1","a_ttl":300,
//!  "txt_name":"txt.test.","txt_value":"hello dotcore","nx_name":"nx.test.",
//!  "bench_zone":"bench.","bench_v4":"192.0.2.100"}
//! ```

use std::io::{Read, Write};
use std::time::Duration;

use dotcore_tests::unbound::{
    A_TEST, A_TEST_TTL, A_TEST_V4, A_TEST_V6, BENCH_V4, BENCH_ZONE, NX_TEST, TXT_TEST,
    TXT_TEST_VALUE,
};
use dotcore_tests::{UnboundOptions, UnboundServer, DOT_NAME};

/// A JSON string literal (RFC 8259 §7).
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn main() {
    let server = match UnboundServer::start(UnboundOptions::default()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("unbound-fixture: {e}");
            std::process::exit(1);
        }
    };
    let fields: Vec<(&str, String)> = vec![
        ("dot", json_str(&server.dot_addr().to_string())),
        ("plain", json_str(&server.plain_addr().to_string())),
        ("dot_name", json_str(DOT_NAME)),
        (
            "ca_pem_path",
            json_str(&server.ca_file().display().to_string()),
        ),
        ("leaf_pin", json_str(&server.leaf_pin())),
        ("ca_pin", json_str(&server.ca_pin())),
        ("a_name", json_str(A_TEST)),
        ("a_v4", json_str(A_TEST_V4)),
        ("a_v6", json_str(A_TEST_V6)),
        ("a_ttl", A_TEST_TTL.to_string()),
        ("txt_name", json_str(TXT_TEST)),
        ("txt_value", json_str(TXT_TEST_VALUE)),
        ("nx_name", json_str(NX_TEST)),
        ("bench_zone", json_str(BENCH_ZONE)),
        ("bench_v4", json_str(BENCH_V4)),
    ];
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", json_str(k)))
        .collect();
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{{{}}}", body.join(",")).is_err() || stdout.flush().is_err() {
        return; // Nobody is listening; dropping the server stops unbound.
    }
    drop(stdout);
    // Serve until the parent closes our stdin (or dies), but never longer
    // than MAX_LIFETIME, so a wedged parent cannot leave unbound running.
    let (eof_tx, eof_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = [0u8; 256];
        let mut stdin = std::io::stdin().lock();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        let _ = eof_tx.send(());
    });
    if eof_rx.recv_timeout(max_lifetime()).is_err() {
        eprintln!("unbound-fixture: lifetime limit reached, stopping");
    }
    drop(server);
}

/// `DOTCORE_FIXTURE_MAX_SECS` (default 1800 s).
fn max_lifetime() -> Duration {
    let secs = std::env::var("DOTCORE_FIXTURE_MAX_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1800);
    Duration::from_secs(secs)
}
