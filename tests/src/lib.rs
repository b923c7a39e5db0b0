//! Fixtures for dotcore's cross-component tests.
//!
//! The unit tests inside each crate cannot exercise dotcore against software
//! it did not write; this crate can. Its library holds what several test
//! files share, so every test builds its scenario the same way:
//!
//! * [`certs`]: a throw-away PKI (CA, `dot.test` leaf, wrong-name and expired
//!   leaves, RFC 7469 pins), generated per test so no keys live in the repo.
//! * [`openssl_pki`]: certificates made with the openssl CLI (self-signed
//!   `req -x509`, private CAs with intermediates, chosen dates, purposes
//!   and key types), as people make them for their own servers.
//! * [`unbound`]: a private unbound DoT server on free loopback ports with a
//!   fixed test zone, plus helpers to drive independent clients (kdig, dig).
//! * [`interop_servers`]: Knot Resolver, BIND 9.18 and dnsdist (plus
//!   Unbound with its shipped defaults) as DoT servers on loopback, each
//!   checked with kdig, for the interoperability matrix (docs/interop.md).
//! * [`dot_probe`]: a minimal DoT client, independent of the engine, that
//!   measures what a server does on the wire.
//! * [`simulator`]: the Linux device simulator: phone and network
//!   namespaces, a TUN device served by `dotcore tun`, Unbound upstream
//!   (root only; see docs/simulator.md).
//!
//! The tests themselves live in `tests/tests/*.rs`. Everything here stays on
//! loopback and bounds every wait, so tests behave the same offline and in CI.

pub mod certs;
pub mod cleartext_trap;
pub mod openssl_pki;
pub mod unbound;

pub use certs::{spki_pin, Leaf, PkiFiles, TestCa, TestPki, DOT_NAME};
pub use cleartext_trap::CleartextTrap;
pub use unbound::{dig, find_tool, kdig, require_tool, run_tool, UnboundOptions, UnboundServer};
pub mod dot_probe;
pub mod fault_server;
pub mod interop_servers;
pub mod simulator;

/// One custom DoT server at `addr` (its port used as given), authenticated
/// by `name` and/or `pins`: the upstream most engine tests point at a
/// fixture.
pub fn custom_upstream(
    addr: std::net::SocketAddr,
    name: Option<&str>,
    pins: Vec<String>,
) -> dotcore::Upstream {
    dotcore::Upstream::Custom(vec![dotcore::CustomServer {
        name: name.map(Into::into),
        addresses: vec![addr.to_string()],
        port: 0,
        pins,
    }])
}

/// The `dotcore` CLI binary next to the running test's executable
/// (target/<profile>/), which no test target builds itself.
pub fn dotcore_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable in target/<profile>/deps");
    let bin = dir.join("dotcore");
    assert!(
        bin.exists(),
        "{} missing: build with `cargo build -p dotcore --features cli` (the test script does)",
        bin.display()
    );
    bin
}
