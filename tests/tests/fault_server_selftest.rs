//! Self-test of the fault-injection DoT server (`dotcore_tests::fault_server`).
//!
//! The fault server is the oracle of the client's robustness tests: if it
//! injected the wrong fault (or none), those tests would pass or fail for the
//! wrong reason. These tests drive it with a minimal, independent
//! tokio-rustls client and check each fault looks on the wire as documented.
//! Every wait is bounded by `tokio::time::timeout`; all traffic is loopback
//! or an in-memory pipe.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dotcore_tests::fault_server::{
    black_hole_connect_addr, refused_addr, serve_stream_with, Behaviour, FaultServer, LengthFault,
    ServeOptions, Stats, TlsIdentity, AAAA_ANSWER, ANSWER_TTL, A_ANSWER, GARBAGE_LEN,
    HUGE_TXT_RECORDS,
};
use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

const NAME: &str = "dot.test";
/// Generous bound for anything that should happen promptly on loopback.
const STEP: Duration = Duration::from_secs(10);
/// How long we wait to conclude that something does *not* happen.
const QUIET: Duration = Duration::from_millis(300);

/// A client config built the way a user would: from the CA *PEM*, so the
/// PEM export is exercised too.
fn client_config(
    tls: &TlsIdentity,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(tls.ca_pem().as_bytes()).expect("CA PEM parses");
    roots.add(ca).expect("CA accepted as root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"dot".to_vec()];
    Arc::new(config)
}

fn default_client(tls: &TlsIdentity) -> Arc<ClientConfig> {
    client_config(tls, &[&rustls::version::TLS13, &rustls::version::TLS12])
}

async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    config: Arc<ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<S>> {
    let name = ServerName::try_from(NAME.to_string()).unwrap();
    timeout(STEP, TlsConnector::from(config).connect(name, io))
        .await
        .expect("handshake bounded")
}

async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = timeout(STEP, TcpStream::connect(addr))
        .await
        .expect("connect bounded")
        .expect("connect");
    handshake(tcp, config).await.expect("handshake")
}

fn query(id: u16, rtype: RecordType, edns: bool) -> Vec<u8> {
    let mut msg = Message::query();
    msg.metadata.id = id;
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(
        Name::from_ascii("www.example.").unwrap(),
        rtype,
    ));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        msg.edns = Some(e);
    }
    msg.to_vec().unwrap()
}

async fn send<W: AsyncWrite + Unpin>(w: &mut W, msg: &[u8]) {
    let mut out = (msg.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    timeout(STEP, w.write_all(&out)).await.unwrap().unwrap();
    timeout(STEP, w.flush()).await.unwrap().unwrap();
}

/// Reads one frame: `Ok(None)` on EOF before a frame starts.
async fn recv_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut prefix = [0u8; 2];
    match r.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; u16::from_be_bytes(prefix) as usize];
    r.read_exact(&mut body).await?;
    Ok(Some(body))
}

async fn recv<R: AsyncRead + Unpin>(r: &mut R) -> Message {
    let body = timeout(STEP, recv_frame(r))
        .await
        .expect("answer within bound")
        .expect("read ok")
        .expect("a frame, not EOF");
    Message::from_vec(&body).expect("answer parses")
}

/// True if the stream ends (EOF or error) within [`STEP`] without a frame.
async fn ends_without_frame<R: AsyncRead + Unpin>(r: &mut R) -> bool {
    matches!(
        timeout(STEP, recv_frame(r)).await,
        Ok(Ok(None)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn normal_answers_with_id_and_question_echoed() {
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::Normal, tls.clone());
    let mut conn = connect(server.addr(), default_client(&tls)).await;
    assert_eq!(conn.get_ref().1.alpn_protocol(), Some(&b"dot"[..]));

    let q1 = query(0x1234, RecordType::A, true);
    send(&mut conn, &q1).await;
    let a = recv(&mut conn).await;
    assert_eq!(a.metadata.id, 0x1234);
    assert_eq!(a.metadata.message_type, MessageType::Response);
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a.queries, Message::from_vec(&q1).unwrap().queries);
    assert_eq!(a.answers.len(), 1);
    assert_eq!(a.answers[0].ttl, ANSWER_TTL);
    assert_eq!(
        a.answers[0].data,
        RData::A(hickory_proto::rr::rdata::A(A_ANSWER))
    );
    assert!(a.edns.is_some(), "EDNS query gets an OPT back");

    let q2 = query(0xBEEF, RecordType::AAAA, false);
    send(&mut conn, &q2).await;
    let a = recv(&mut conn).await;
    assert_eq!(a.metadata.id, 0xBEEF);
    assert_eq!(
        a.answers[0].data,
        RData::AAAA(hickory_proto::rr::rdata::AAAA(AAAA_ANSWER))
    );
    assert!(a.edns.is_none(), "no OPT without EDNS in the query");

    assert_eq!(server.connections_accepted(), 1);
    assert_eq!(server.handshakes_completed(), 1);
    assert_eq!(server.queries_received(), 2);
    assert_eq!(server.query_sizes(), vec![q1.len(), q2.len()]);
    assert_eq!(server.resumed_sessions(), vec![false]);
}

#[tokio::test]
async fn close_after_two_answers_then_closes() {
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::CloseAfter(2), tls.clone());
    let mut conn = connect(server.addr(), default_client(&tls)).await;
    for id in 1..=3 {
        send(&mut conn, &query(id, RecordType::A, false)).await;
    }
    assert_eq!(recv(&mut conn).await.metadata.id, 1);
    assert_eq!(recv(&mut conn).await.metadata.id, 2);
    assert!(
        ends_without_frame(&mut conn).await,
        "third query unanswered, connection closed"
    );
    assert_eq!(server.stats().answers_sent(), 2);
}

#[tokio::test]
async fn reversed_answers_batches_in_reverse_order() {
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::Reversed(3), tls.clone());
    let mut conn = connect(server.addr(), default_client(&tls)).await;
    for id in [10, 11, 12] {
        send(&mut conn, &query(id, RecordType::A, false)).await;
    }
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(recv(&mut conn).await.metadata.id);
    }
    assert_eq!(ids, vec![12, 11, 10]);
    // An incomplete batch is never answered.
    send(&mut conn, &query(13, RecordType::A, false)).await;
    assert!(timeout(QUIET, recv_frame(&mut conn)).await.is_err());
}

#[tokio::test]
async fn huge_answer_exceeds_one_tls_record_and_parses() {
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::HugeAnswer, tls.clone());
    let mut conn = connect(server.addr(), default_client(&tls)).await;
    send(&mut conn, &query(7, RecordType::A, true)).await;
    let body = timeout(STEP, recv_frame(&mut conn))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(body.len() > 16384, "frame is {} bytes", body.len());
    let a = Message::from_vec(&body).expect("huge answer is valid DNS");
    assert_eq!(a.metadata.id, 7);
    assert_eq!(a.answers.len(), 1 + HUGE_TXT_RECORDS);
}

async fn check_resumption(versions: &[&'static rustls::SupportedProtocolVersion]) {
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::Normal, tls.clone());
    let config = client_config(&tls, versions);
    for id in 0..2u16 {
        let mut conn = connect(server.addr(), config.clone()).await;
        // Reading an answer also processes the TLS 1.3 session tickets.
        send(&mut conn, &query(id, RecordType::A, false)).await;
        assert_eq!(recv(&mut conn).await.metadata.id, id);
        let _ = timeout(STEP, conn.shutdown()).await;
    }
    assert_eq!(server.handshakes_completed(), 2);
    assert_eq!(server.resumed_sessions(), vec![false, true]);
}

#[tokio::test]
async fn second_connection_resumes_tls13() {
    check_resumption(&[&rustls::version::TLS13]).await;
}

#[tokio::test]
async fn second_connection_resumes_tls12() {
    check_resumption(&[&rustls::version::TLS12]).await;
}

#[tokio::test]
async fn drop_every_second_query() {
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::DropEvery(2), tls.clone());
    let mut conn = connect(server.addr(), default_client(&tls)).await;
    for id in 1..=4 {
        send(&mut conn, &query(id, RecordType::A, false)).await;
    }
    assert_eq!(recv(&mut conn).await.metadata.id, 1);
    assert_eq!(recv(&mut conn).await.metadata.id, 3);
    assert!(timeout(QUIET, recv_frame(&mut conn)).await.is_err());
    assert_eq!(server.queries_received(), 4);
}

#[tokio::test]
async fn garbage_is_framed_but_not_dns() {
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::Garbage, tls.clone());
    let mut conn = connect(server.addr(), default_client(&tls)).await;
    send(&mut conn, &query(0x4242, RecordType::A, false)).await;
    let body = timeout(STEP, recv_frame(&mut conn))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(body.len(), GARBAGE_LEN);
    assert_eq!(&body[..2], &[0x42, 0x42]);
    assert!(Message::from_vec(&body).is_err());
}

#[tokio::test]
async fn garbage_records_break_tls() {
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::GarbageRecords, tls.clone());
    let mut conn = connect(server.addr(), default_client(&tls)).await;
    send(&mut conn, &query(1, RecordType::A, false)).await;
    let result = timeout(STEP, recv_frame(&mut conn)).await.expect("bounded");
    assert!(
        result.is_err(),
        "TLS layer must reject non-records: {result:?}"
    );
}

#[tokio::test]
async fn wrong_length_overstated_then_eof() {
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::WrongLength(LengthFault::Overstated), tls.clone());
    let mut conn = connect(server.addr(), default_client(&tls)).await;
    send(&mut conn, &query(1, RecordType::A, false)).await;
    let result = timeout(STEP, recv_frame(&mut conn)).await.expect("bounded");
    let err = result.expect_err("frame is truncated");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[tokio::test]
async fn wrong_length_zero() {
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::WrongLength(LengthFault::Zero), tls.clone());
    let mut conn = connect(server.addr(), default_client(&tls)).await;
    send(&mut conn, &query(1, RecordType::A, false)).await;
    let body = timeout(STEP, recv_frame(&mut conn))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(body.is_empty());
}

#[tokio::test]
async fn wrong_name_fails_authentication() {
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::WrongName, tls.clone());
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let err = handshake(tcp, default_client(&tls))
        .await
        .expect_err("name mismatch");
    let tls_err = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .expect("a rustls error");
    assert!(
        matches!(
            tls_err,
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. }
            )
        ),
        "{tls_err:?}"
    );
    // The same CA is trusted: only the name is wrong.
    let config = default_client(&tls);
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let other = ServerName::try_from("other.test").unwrap();
    timeout(STEP, TlsConnector::from(config).connect(other, tcp))
        .await
        .unwrap()
        .expect("other.test leaf is valid for other.test");
}

#[tokio::test]
async fn black_hole_and_hang_handshake_never_complete() {
    let tls = TlsIdentity::generate(NAME);
    for behaviour in [Behaviour::BlackHole, Behaviour::HangHandshake] {
        let server = FaultServer::start(behaviour.clone(), tls.clone());
        let tcp = TcpStream::connect(server.addr()).await.unwrap();
        let name = ServerName::try_from(NAME).unwrap();
        let hs = timeout(
            QUIET,
            TlsConnector::from(default_client(&tls)).connect(name, tcp),
        )
        .await;
        assert!(hs.is_err(), "{behaviour:?}: handshake must hang");
        assert_eq!(server.connections_accepted(), 1);
        assert_eq!(server.handshakes_completed(), 0);
    }
}

#[tokio::test]
async fn refuse_connect_is_refused() {
    let tls = TlsIdentity::generate(NAME);
    let server = FaultServer::start(Behaviour::RefuseConnect, tls);
    let err = timeout(STEP, TcpStream::connect(server.addr()))
        .await
        .unwrap()
        .expect_err("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    let spare = refused_addr().unwrap();
    let err = TcpStream::connect(spare.addr()).await.expect_err("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn black_hole_connect_hangs() {
    let hole = match black_hole_connect_addr() {
        Ok(hole) => hole,
        Err(e) => panic!("black-hole connect address unavailable: {e}"),
    };
    let attempt = timeout(QUIET, TcpStream::connect(hole.addr())).await;
    assert!(attempt.is_err(), "connect must hang, got {attempt:?}");
}

/// The same server logic over an in-memory pipe under the paused clock: a
/// simulated 5 s RTT (plus `Slow`) costs no wall-clock time and is exact.
#[tokio::test(start_paused = true)]
async fn duplex_with_virtual_rtt() {
    let tls = TlsIdentity::generate(NAME);
    let stats = Stats::new();
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let behaviour = Behaviour::Slow(Duration::from_secs(1));
    let options = ServeOptions {
        response_delay: Duration::from_secs(5),
        idle_timeout: None,
        edns_keepalive: None,
        ..ServeOptions::default()
    };
    let server = tokio::spawn(serve_stream_with(
        server_io,
        tls.acceptor_for(&behaviour),
        behaviour,
        options,
        stats.clone(),
    ));
    let mut conn = handshake(client_io, default_client(&tls)).await.unwrap();
    let start = tokio::time::Instant::now();
    send(&mut conn, &query(1, RecordType::A, false)).await;
    send(&mut conn, &query(2, RecordType::A, false)).await;
    assert_eq!(recv(&mut conn).await.metadata.id, 1);
    assert_eq!(recv(&mut conn).await.metadata.id, 2);
    // Pipelined: both answers arrive one RTT after sending, not two.
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(6) && elapsed < Duration::from_secs(7),
        "{elapsed:?}"
    );
    assert_eq!(stats.queries_received(), 2);
    conn.shutdown().await.unwrap();
    drop(conn);
    timeout(STEP, server)
        .await
        .expect("server ends on client EOF")
        .unwrap()
        .ok();
}
