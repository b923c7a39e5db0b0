//! Certificates as people make them, against dotcore in strict mode.
//!
//! Every certificate here is made at test time with the openssl CLI
//! ([`dotcore_tests::openssl_pki`]) and served by Unbound (or, for the
//! TLS 1.1 refusal, `openssl s_server`). Each accepted form is resolved
//! through dotcore's `Resolver` with the CA given as `extra_ca_pem` (what
//! `dotcore query --ca` does), and checked with kdig so the fixture is
//! known good. Each refusal checks that no query left in clear text, and
//! that the handshake error maps (through `tls::tls_failure`) to its own
//! `ServerFailureKind` and text. See docs/certificates.md.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dotcore::failure::{ServerFailure, ServerFailureKind as Kind};
use dotcore::internals::tls::{self, ChainVerifier, ServerTls};
use dotcore::message::{build_query, decode_answer, Answer};
use dotcore::{Config, CustomServer, Mode, Resolver, Upstream};
use dotcore_tests::openssl_pki::{Issued, KeyType, LeafSpec, OpensslPki, Validity};
use dotcore_tests::unbound::{self as zone, UnboundOptions, UnboundServer};
use dotcore_tests::{dotcore_bin, kdig, require_tool, CleartextTrap};

/// Whether the tools every test here needs are installed.
fn tools() -> bool {
    require_tool("unbound") && require_tool("openssl")
}

/// Unbound serving `chain` (leaf first) with `key`, logging queries so a
/// refusal can show none arrived.
fn serve(chain: &Path, key: &Path) -> UnboundServer {
    serve_with(chain, key, Vec::new())
}

fn serve_with(chain: &Path, key: &Path, env: Vec<(String, String)>) -> UnboundServer {
    UnboundServer::start(UnboundOptions {
        log_queries: true,
        tls_service_files: Some((chain.to_path_buf(), key.to_path_buf())),
        env,
        ..UnboundOptions::default()
    })
    .expect("unbound starts")
}

/// Strict mode for one server at `addr`, authenticated by `name` (or by
/// its address when `None`) against `ca`, with `trap` as the network's
/// resolver.
fn strict(addr: SocketAddr, name: Option<&str>, ca: &Path, trap: &CleartextTrap) -> Config {
    let mut config = Config {
        upstream: Upstream::Custom(vec![CustomServer {
            name: name.map(Into::into),
            addresses: vec![addr.to_string()],
            port: 0,
            pins: vec![],
        }]),
        mode: Mode::Strict,
        extra_ca_pem: Some(std::fs::read_to_string(ca).expect("read CA file")),
        network_resolvers: vec![trap.addr],
        ..Config::default()
    };
    config.timeouts.connect = Duration::from_secs(2);
    config.timeouts.handshake = Duration::from_secs(3);
    config.timeouts.query = Duration::from_secs(4);
    config
}

async fn ask(resolver: &Resolver) -> Answer {
    let query = build_query(zone::A_TEST, "A").unwrap();
    let bytes = tokio::time::timeout(Duration::from_secs(10), resolver.resolve(&query))
        .await
        .expect("the engine answers within its timeout");
    decode_answer(&bytes).unwrap()
}

/// Resolves `a.test` through dotcore with `config` and expects the answer
/// over DoT, without a single clear-text packet.
async fn assert_resolves(config: &Config, trap: &CleartextTrap, what: &str) {
    let resolver = Resolver::new(config, Arc::new(dotcore::NoHost)).expect("config is valid");
    let answer = ask(&resolver).await;
    assert_eq!(answer.rcode, "NOERROR", "{what}");
    let data: Vec<_> = answer.records.iter().map(|r| r.data.clone()).collect();
    assert_eq!(data, vec![zone::A_TEST_V4], "{what}");
    let stats = resolver.stats();
    assert_eq!(stats.fail_tls, 0, "{what}");
    assert_eq!(stats.cleartext_queries, 0, "{what}");
    assert_eq!(trap.count(), 0, "{what}");
}

/// Expects `config` to be refused in strict mode: SERVFAIL, nothing in
/// clear text, no query at `server`; returns the handshake's failure.
async fn assert_refused(
    config: &Config,
    trap: &CleartextTrap,
    server: &UnboundServer,
    what: &str,
) -> ServerFailure {
    let resolver = Resolver::new(config, Arc::new(dotcore::NoHost)).expect("config is valid");
    let answer = ask(&resolver).await;
    assert_eq!(answer.rcode, "SERVFAIL", "{what}");
    let stats = resolver.stats();
    assert_eq!(stats.fail_tls, 1, "{what}: {stats:?}");
    assert_eq!(stats.cleartext_queries, 0, "{what}");
    assert_eq!(
        trap.count(),
        0,
        "{what}: a packet reached the clear-text resolver"
    );
    assert_eq!(
        server.count_log("a.test. A IN"),
        0,
        "{what}: a query reached unbound"
    );
    let error = handshake(config)
        .await
        .expect_err("the handshake is refused");
    tls::tls_failure(&error)
}

/// One TLS handshake with dotcore's TLS set-up for the first server of
/// `config` (as the engine makes it); the negotiated version, or the
/// rustls error that ended it.
async fn handshake(config: &Config) -> Result<rustls::ProtocolVersion, rustls::Error> {
    try_handshake(config).await.map_err(|e| {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .cloned()
            .unwrap_or_else(|| panic!("not a TLS error: {e}"))
    })
}

/// [`handshake`], with any I/O error as it came.
async fn try_handshake(config: &Config) -> std::io::Result<rustls::ProtocolVersion> {
    let valid = config.validate().expect("config is valid");
    let chain = Arc::new(ChainVerifier::new(&valid.extra_roots));
    let spec = &valid.servers[0];
    let server_tls = ServerTls::new(spec, Mode::Strict, chain);
    let addr = spec.addresses[0];
    let tcp = tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let connector = tokio_rustls::TlsConnector::from(server_tls.config.clone());
    let name = server_tls.name_for(addr).expect("usable name");
    let stream = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .expect("handshake ends in time")?;
    Ok(stream
        .get_ref()
        .1
        .protocol_version()
        .expect("negotiated version"))
}

/// kdig over DoT to `server` with `ca`, checking `name` (or the address).
fn kdig_a(server: &UnboundServer, ca: &Path, name: Option<&str>) -> Output {
    let at = format!("@{}", server.dot_addr().ip());
    let port = server.dot_addr().port().to_string();
    let ca = format!("+tls-ca={}", ca.display());
    let mut args = vec![at.as_str(), "-p", port.as_str(), ca.as_str()];
    let host;
    if let Some(n) = name {
        host = format!("+tls-hostname={n}");
        args.push(&host);
    }
    args.extend_from_slice(&["+short", zone::A_TEST, "A"]);
    kdig(&args)
}

/// kdig, an independent client, accepts the server: the fixture is good.
fn assert_kdig_accepts(server: &UnboundServer, ca: &Path, name: Option<&str>, what: &str) {
    if !require_tool("kdig") {
        return;
    }
    let out = kdig_a(server, ca, name);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(zone::A_TEST_V4),
        "kdig refused {what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// kdig refuses the server too: the fixture is bad in a way others see.
fn assert_kdig_refuses(server: &UnboundServer, ca: &Path, name: Option<&str>, what: &str) {
    if !require_tool("kdig") {
        return;
    }
    let out = kdig_a(server, ca, name);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(zone::A_TEST_V4),
        "kdig accepted {what}"
    );
}

fn pki() -> OpensslPki {
    OpensslPki::new().expect("scratch directory")
}

// ---------------------------------------------------------------------------
// Accepted
// ---------------------------------------------------------------------------

#[tokio::test]
async fn self_signed_ca_certificates_from_req_x509_are_accepted_as_their_own_ca() {
    if !tools() {
        return;
    }
    let pki = pki();
    for key in KeyType::ALL {
        let what = format!("openssl req -x509 with {key:?}");
        let cert = pki
            .self_signed(&["dot.test", "127.0.0.1"], key)
            .expect(&what);
        assert_eq!(is_ca(&cert), Some(true), "{what}: req -x509 makes CA:TRUE");
        let server = serve(&cert.cert, &cert.key);
        let trap = CleartextTrap::new();
        let config = strict(server.dot_addr(), Some("dot.test"), &cert.cert, &trap);
        assert_resolves(&config, &trap, &what).await;
        assert_kdig_accepts(&server, &cert.cert, Some("dot.test"), &what);
    }
}

#[tokio::test]
async fn a_private_ca_issues_leaves_of_every_key_type() {
    if !tools() {
        return;
    }
    let pki = pki();
    for root_key in [KeyType::Rsa2048, KeyType::EcdsaP384] {
        let root = pki.root("private root", root_key).unwrap();
        for key in KeyType::ALL {
            let what = format!("{key:?} leaf under a {root_key:?} root");
            let leaf = pki
                .leaf(
                    &root,
                    &LeafSpec {
                        key,
                        ..LeafSpec::default()
                    },
                )
                .expect(&what);
            let server = serve(&leaf.cert, &leaf.key);
            let trap = CleartextTrap::new();
            let config = strict(server.dot_addr(), Some("dot.test"), &root.cert, &trap);
            assert_resolves(&config, &trap, &what).await;
            assert_kdig_accepts(&server, &root.cert, Some("dot.test"), &what);
        }
    }
}

#[tokio::test]
async fn chains_with_one_or_two_intermediates_in_any_order_with_or_without_the_root() {
    if !tools() {
        return;
    }
    let pki = pki();
    // Let's Encrypt's shape: an RSA root, an intermediate, an ECDSA leaf;
    // servers send the intermediate, some the root too.
    let root = pki.root("ISRG-like Root", KeyType::Rsa2048).unwrap();
    let int1 = pki
        .intermediate("R-like intermediate", KeyType::EcdsaP384, &root)
        .unwrap();
    let int2 = pki
        .intermediate("second intermediate", KeyType::EcdsaP256, &int1)
        .unwrap();
    let leaf1 = pki.leaf(&int1, &LeafSpec::default()).unwrap();
    let leaf2 = pki.leaf(&int2, &LeafSpec::default()).unwrap();
    let chains: [(&str, Vec<&Issued>); 7] = [
        ("leaf, intermediate", vec![&leaf1, &int1]),
        ("leaf, intermediate, root", vec![&leaf1, &int1, &root]),
        ("leaf, root, intermediate", vec![&leaf1, &root, &int1]),
        ("leaf, int2, int1", vec![&leaf2, &int2, &int1]),
        ("leaf, int1, int2 (reversed)", vec![&leaf2, &int1, &int2]),
        ("leaf, root, int1, int2", vec![&leaf2, &root, &int1, &int2]),
        ("leaf, int2, int1, root", vec![&leaf2, &int2, &int1, &root]),
    ];
    for (what, certs) in chains {
        let bundle = pki.bundle("chain", &certs).unwrap();
        let key = &certs[0].key;
        let server = serve(&bundle, key);
        let trap = CleartextTrap::new();
        let config = strict(server.dot_addr(), Some("dot.test"), &root.cert, &trap);
        assert_resolves(&config, &trap, what).await;
        assert_kdig_accepts(&server, &root.cert, Some("dot.test"), what);
    }
    // Without the intermediate the chain cannot reach the root: refused as
    // untrusted, the one reason that says what is missing.
    let server = serve(&leaf1.cert, &leaf1.key);
    let trap = CleartextTrap::new();
    let config = strict(server.dot_addr(), Some("dot.test"), &root.cert, &trap);
    let failure = assert_refused(&config, &trap, &server, "leaf alone").await;
    assert_eq!(failure.kind, Kind::CertificateUntrusted, "{failure}");
}

#[tokio::test]
async fn an_ip_literal_server_validates_against_its_ip_san_without_a_name() {
    if !tools() {
        return;
    }
    let pki = pki();
    let root = pki.root("private root", KeyType::EcdsaP256).unwrap();
    let leaf = pki
        .leaf(
            &root,
            &LeafSpec {
                names: &["127.0.0.1"],
                ..LeafSpec::default()
            },
        )
        .unwrap();
    let self_signed = pki.self_signed(&["127.0.0.1"], KeyType::EcdsaP256).unwrap();
    for (what, cert, ca) in [
        ("CA-issued IP-only leaf", &leaf, &root.cert),
        ("self-signed IP-only", &self_signed, &self_signed.cert),
    ] {
        let server = serve(&cert.cert, &cert.key);
        let trap = CleartextTrap::new();
        let config = strict(server.dot_addr(), None, ca, &trap);
        assert_resolves(&config, &trap, what).await;
        assert_kdig_accepts(&server, ca, None, what);
    }
    // The address is checked: a certificate for another address is refused.
    let other = pki
        .leaf(
            &root,
            &LeafSpec {
                names: &["192.0.2.53"],
                ..LeafSpec::default()
            },
        )
        .unwrap();
    let server = serve(&other.cert, &other.key);
    let trap = CleartextTrap::new();
    let config = strict(server.dot_addr(), None, &root.cert, &trap);
    let failure = assert_refused(&config, &trap, &server, "other IP").await;
    assert_eq!(failure.kind, Kind::CertificateNameMismatch, "{failure}");
    assert_eq!(
        failure.text,
        "certificate is not valid for 127.0.0.1 (it names 192.0.2.53)"
    );
}

#[tokio::test]
async fn a_name_typed_in_other_case_or_with_a_trailing_dot_still_validates() {
    if !tools() {
        return;
    }
    let pki = pki();
    let root = pki.root("private root", KeyType::EcdsaP256).unwrap();
    let leaf = pki.leaf(&root, &LeafSpec::default()).unwrap();
    let server = serve(&leaf.cert, &leaf.key);
    for typed in ["DOT.Test", "dot.test.", "Dot.TEST."] {
        let trap = CleartextTrap::new();
        let config = strict(server.dot_addr(), Some(typed), &root.cert, &trap);
        assert_resolves(&config, &trap, typed).await;
    }
}

#[tokio::test]
async fn the_sni_is_the_name_without_its_trailing_dot() {
    if !tools() {
        return;
    }
    let pki = pki();
    let root = pki.root("private root", KeyType::EcdsaP256).unwrap();
    for typed in ["dot.test.", "DOT.Test."] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let trap = CleartextTrap::new();
        let config = strict(addr, Some(typed), &root.cert, &trap);
        // rustls's server side reads the ClientHello; the handshake itself
        // is abandoned once the SNI is known.
        let sni = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor =
                tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
            let start = acceptor.await.unwrap();
            start.client_hello().server_name().map(str::to_owned)
        });
        let _ = tokio::time::timeout(Duration::from_secs(3), try_handshake(&config)).await;
        let sni = tokio::time::timeout(Duration::from_secs(3), sni)
            .await
            .expect("ClientHello in time")
            .unwrap();
        assert_eq!(sni.as_deref(), Some("dot.test"), "typed {typed:?}");
    }
}

#[tokio::test]
async fn a_server_limited_to_tls_1_2_works() {
    if !tools() {
        return;
    }
    let pki = pki();
    let root = pki.root("private root", KeyType::EcdsaP256).unwrap();
    let leaf = pki.leaf(&root, &LeafSpec::default()).unwrap();
    let conf = pki.max_protocol_config("TLSv1.2").unwrap();
    let server = serve_with(
        &leaf.cert,
        &leaf.key,
        vec![("OPENSSL_CONF".into(), conf.display().to_string())],
    );
    let trap = CleartextTrap::new();
    let config = strict(server.dot_addr(), Some("dot.test"), &root.cert, &trap);
    // The fixture really is limited, or this test proves nothing.
    assert_eq!(
        handshake(&config).await,
        Ok(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_resolves(&config, &trap, "TLS 1.2 only").await;
}

// ---------------------------------------------------------------------------
// Refused, each for its own reason
// ---------------------------------------------------------------------------

/// A running Unbound with `leaf`, trusted through `root`, expected to be
/// refused with `kind`; returns the failure text.
async fn refused_leaf(root: &Issued, leaf: &Issued, name: &str, kind: Kind, what: &str) -> String {
    let server = serve(&leaf.cert, &leaf.key);
    let trap = CleartextTrap::new();
    let config = strict(server.dot_addr(), Some(name), &root.cert, &trap);
    let failure = assert_refused(&config, &trap, &server, what).await;
    assert_eq!(failure.kind, kind, "{what}: {failure}");
    if kind != Kind::CertificateIsCa {
        assert_kdig_refuses(&server, &root.cert, Some(name), what);
    }
    failure.text
}

#[tokio::test]
async fn expired_and_not_yet_valid_certificates_are_refused() {
    if !tools() {
        return;
    }
    let pki = pki();
    let root = pki.root("private root", KeyType::EcdsaP256).unwrap();
    let spec = |validity| LeafSpec {
        validity,
        ..LeafSpec::default()
    };
    let expired = pki
        .leaf(
            &root,
            &spec(Validity::Between("20200101000000Z", "20210101000000Z")),
        )
        .unwrap();
    let text = refused_leaf(
        &root,
        &expired,
        "dot.test",
        Kind::CertificateExpired,
        "expired",
    )
    .await;
    assert_eq!(text, "certificate expired on 2021-01-01");
    let future = pki
        .leaf(
            &root,
            &spec(Validity::Between("20900101000000Z", "20910101000000Z")),
        )
        .unwrap();
    let text = refused_leaf(
        &root,
        &future,
        "dot.test",
        Kind::CertificateNotYetValid,
        "not yet valid",
    )
    .await;
    assert_eq!(text, "certificate is not valid before 2090-01-01");
    // A self-signed certificate given as its own CA is dated too.
    for (validity, kind, text) in [
        (
            Validity::Between("20200101000000Z", "20210101000000Z"),
            Kind::CertificateExpired,
            "certificate expired on 2021-01-01",
        ),
        (
            Validity::Between("20900101000000Z", "20910101000000Z"),
            Kind::CertificateNotYetValid,
            "certificate is not valid before 2090-01-01",
        ),
    ] {
        let cert = pki
            .self_signed_dated(&["dot.test"], KeyType::EcdsaP256, validity)
            .unwrap();
        assert_eq!(is_ca(&cert), Some(true));
        let got = refused_leaf(&cert, &cert, "dot.test", kind, text).await;
        assert_eq!(got, text);
    }
}

#[tokio::test]
async fn a_wrong_name_is_reported_as_such_not_as_an_unknown_issuer() {
    if !tools() {
        return;
    }
    let pki = pki();
    let root = pki.root("private root", KeyType::EcdsaP256).unwrap();
    let other = pki
        .leaf(
            &root,
            &LeafSpec {
                names: &["other.example"],
                ..LeafSpec::default()
            },
        )
        .unwrap();
    let text = refused_leaf(
        &root,
        &other,
        "dot.test",
        Kind::CertificateNameMismatch,
        "wrong name",
    )
    .await;
    assert_eq!(
        text,
        "certificate is not valid for dot.test (it names other.example)"
    );
    // The same for a self-signed certificate given as its own CA.
    let self_signed = pki.self_signed(&["dot.test"], KeyType::EcdsaP256).unwrap();
    let text = refused_leaf(
        &self_signed,
        &self_signed,
        "other.example",
        Kind::CertificateNameMismatch,
        "self-signed, wrong name",
    )
    .await;
    assert_eq!(
        text,
        "certificate is not valid for other.example (it names dot.test)"
    );
}

#[tokio::test]
async fn a_client_auth_only_certificate_is_refused_for_its_purpose() {
    if !tools() {
        return;
    }
    let pki = pki();
    let root = pki.root("private root", KeyType::EcdsaP256).unwrap();
    let client = pki
        .leaf(
            &root,
            &LeafSpec {
                eku: "clientAuth",
                ..LeafSpec::default()
            },
        )
        .unwrap();
    let text = refused_leaf(
        &root,
        &client,
        "dot.test",
        Kind::CertificateWrongPurpose,
        "clientAuth only",
    )
    .await;
    assert_eq!(
        text,
        "certificate is not for TLS servers (its extended key usage is client authentication)"
    );
}

#[tokio::test]
async fn a_ca_certificate_not_itself_trusted_is_refused_as_a_ca() {
    if !tools() {
        return;
    }
    let pki = pki();
    let root = pki.root("private root", KeyType::EcdsaP256).unwrap();
    // An intermediate CA (with the server's SAN) presented as the server's
    // certificate: its issuer is trusted, it is not.
    let ca_as_server = issue_ca_with_san(&pki, &root);
    let text = refused_leaf(
        &root,
        &ca_as_server,
        "dot.test",
        Kind::CertificateIsCa,
        "intermediate CA as server",
    )
    .await;
    assert!(text.contains("CA certificate"), "{text}");
    // A self-signed CA:TRUE certificate when another CA was given.
    let self_signed = pki.self_signed(&["dot.test"], KeyType::EcdsaP256).unwrap();
    let server = serve(&self_signed.cert, &self_signed.key);
    let trap = CleartextTrap::new();
    let config = strict(server.dot_addr(), Some("dot.test"), &root.cert, &trap);
    let failure = assert_refused(&config, &trap, &server, "untrusted self-signed CA").await;
    assert_eq!(failure.kind, Kind::CertificateIsCa, "{failure}");
}

/// A CA certificate (CA:TRUE) that also names `dot.test` and allows
/// serverAuth, signed by `root`: an intermediate, as a misconfigured server
/// might present it.
fn issue_ca_with_san(pki: &OpensslPki, root: &Issued) -> Issued {
    let cert = pki
        .issue(
            "ca-as-server",
            "dot.test",
            KeyType::EcdsaP256,
            root,
            "basicConstraints=critical,CA:TRUE\n\
             keyUsage=critical,keyCertSign,digitalSignature\n\
             extendedKeyUsage=serverAuth\n\
             subjectAltName=DNS:dot.test,IP:127.0.0.1\n",
            Validity::Days(30),
        )
        .expect("CA with SAN");
    assert_eq!(is_ca(&cert), Some(true), "the test certificate is a CA");
    cert
}

#[tokio::test]
async fn a_leaf_from_an_unknown_ca_is_untrusted() {
    if !tools() {
        return;
    }
    let pki = pki();
    let root = pki.root("trusted root", KeyType::EcdsaP256).unwrap();
    let stranger = pki.root("stranger root", KeyType::EcdsaP256).unwrap();
    let leaf = pki.leaf(&stranger, &LeafSpec::default()).unwrap();
    let text = refused_leaf(
        &root,
        &leaf,
        "dot.test",
        Kind::CertificateUntrusted,
        "unknown CA",
    )
    .await;
    assert!(text.contains("not signed by a trusted CA"), "{text}");
}

// ---------------------------------------------------------------------------
// TLS versions below 1.2
// ---------------------------------------------------------------------------

/// `openssl s_server` on a free loopback port, killed on drop.
struct SServer {
    child: Child,
    addr: SocketAddr,
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s_server(cert: &Issued, extra: &[&str]) -> SServer {
    let openssl = dotcore_tests::find_tool("openssl").expect("openssl");
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut child = Command::new(&openssl)
            .arg("s_server")
            .arg("-accept")
            .arg(addr.to_string())
            .arg("-cert")
            .arg(&cert.cert)
            .arg("-key")
            .arg(&cert.key)
            .args(extra)
            .args(["-quiet", "-naccept", "20"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn openssl s_server");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if matches!(TcpListener::bind(addr), Err(e) if e.kind() == std::io::ErrorKind::AddrInUse)
            {
                return SServer { child, addr };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("openssl s_server did not start");
}

#[tokio::test]
async fn a_server_offering_only_tls_1_1_or_1_0_is_refused_for_its_version() {
    if !tools() {
        return;
    }
    let pki = pki();
    let root = pki.root("private root", KeyType::EcdsaP256).unwrap();
    let leaf = pki.leaf(&root, &LeafSpec::default()).unwrap();
    for version in ["-tls1_1", "-tls1"] {
        let server = s_server(&leaf, &[version, "-cipher", "DEFAULT:@SECLEVEL=0"]);
        let trap = CleartextTrap::new();
        let config = strict(server.addr, Some("dot.test"), &root.cert, &trap);
        let resolver = Resolver::new(&config, Arc::new(dotcore::NoHost)).unwrap();
        let answer = ask(&resolver).await;
        assert_eq!(answer.rcode, "SERVFAIL", "{version}");
        assert_eq!(resolver.stats().cleartext_queries, 0, "{version}");
        assert_eq!(trap.count(), 0, "{version}");
        let error = handshake(&config).await.expect_err(version);
        let failure = tls::tls_failure(&error);
        assert_eq!(failure.kind, Kind::TlsVersion, "{version}: {error:?}");
        assert_eq!(
            failure.text,
            "the server supports only TLS 1.1 or older; dotcore requires TLS 1.2 or 1.3"
        );
    }
}

// ---------------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------------

#[test]
fn dotcore_query_with_ca_accepts_a_self_signed_certificate_by_name_or_address() {
    if !tools() {
        return;
    }
    let pki = pki();
    let cert = pki
        .self_signed(&["dot.test", "127.0.0.1"], KeyType::EcdsaP256)
        .unwrap();
    let server = serve(&cert.cert, &cert.key);
    let addr = server.dot_addr().to_string();
    let ca = cert.cert.display().to_string();
    for name in [Some("dot.test"), None] {
        let mut args = vec!["query", zone::A_TEST, "A", "--server", &addr, "--ca", &ca];
        if let Some(n) = name {
            args.extend_from_slice(&["--name", n]);
        }
        let out = Command::new(dotcore_bin())
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            zone::A_TEST_V4,
            "{args:?}"
        );
    }
    // And a wrong name fails the command.
    let out = Command::new(dotcore_bin())
        .args([
            "query",
            zone::A_TEST,
            "--server",
            &addr,
            "--ca",
            &ca,
            "--name",
            "other.example",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !out.status.success() || !String::from_utf8_lossy(&out.stdout).contains(zone::A_TEST_V4)
    );
}

/// Whether the certificate says `CA:TRUE`, read by openssl.
fn is_ca(cert: &Issued) -> Option<bool> {
    let out = dotcore_tests::run_tool(
        "openssl",
        &[
            "x509",
            "-in",
            cert.cert.to_str()?,
            "-noout",
            "-ext",
            "basicConstraints",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.contains("CA:TRUE"))
}

/// The RFC 7469 pin of the certificate's key, computed by openssl (not by
/// the parser dotcore uses) and hashed here.
fn openssl_pin(pki: &OpensslPki, cert: &Issued) -> String {
    let pubkey = pki.dir().join("pin-pubkey.pem");
    let der = pki.dir().join("pin-pubkey.der");
    let (pubkey_s, der_s) = (pubkey.display().to_string(), der.display().to_string());
    let cert_s = cert.cert.display().to_string();
    let out = dotcore_tests::run_tool(
        "openssl",
        &[
            "x509", "-in", &cert_s, "-pubkey", "-noout", "-out", &pubkey_s,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = dotcore_tests::run_tool(
        "openssl",
        &[
            "pkey", "-pubin", "-in", &pubkey_s, "-outform", "DER", "-out", &der_s,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dotcore_tests::spki_pin(&std::fs::read(&der).unwrap())
}

#[tokio::test]
async fn a_pin_mismatch_names_the_expected_and_the_presented_pins() {
    if !tools() {
        return;
    }
    let pki = pki();
    let root = pki.root("private root", KeyType::EcdsaP256).unwrap();
    let leaf = pki.leaf(&root, &LeafSpec::default()).unwrap();
    let bundle = pki.bundle("chain", &[&leaf, &root]).unwrap();
    let server = serve(&bundle, &leaf.key);
    let other = pki.self_signed(&["dot.test"], KeyType::EcdsaP256).unwrap();
    let wrong = openssl_pin(&pki, &other);
    let trap = CleartextTrap::new();
    let mut config = strict(server.dot_addr(), Some("dot.test"), &root.cert, &trap);
    if let Upstream::Custom(servers) = &mut config.upstream {
        servers[0].pins = vec![wrong.clone()];
    }
    let failure = assert_refused(&config, &trap, &server, "wrong pin").await;
    assert_eq!(failure.kind, Kind::PinMismatch, "{failure}");
    assert_eq!(
        failure.text,
        format!(
            "no certificate matches the configured pins (expected pin-sha256 {wrong}; \
             the server's chain has {}, {})",
            openssl_pin(&pki, &leaf),
            openssl_pin(&pki, &root)
        )
    );
}
