//! The packet loop driven for real, without root: a datagram socket pair
//! stands in for the TUN device (it keeps packet boundaries, as a TUN
//! descriptor does), the engine owns one end and the test writes raw IP
//! packets into the other. Answers come from a small clear-text DNS server
//! on loopback through the opportunistic fallback (the DoT server given is
//! a closed port), so every answer crosses real sockets.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::*;
use crate::config::{Config, CustomServer, Mode, Upstream};
use crate::engine::Engine;
use crate::host::{Event, Host};
use crate::message::{build_query, decode_answer};
use crate::net::{TUN_ADDRESS_V4, TUN_ADDRESS_V6, VIRTUAL_DNS_V4, VIRTUAL_DNS_V6};
use crate::packet::{build_udp_reply, parse, Packet, ParsedUdp};
use crate::wire::Layout;

const CLIENT_PORT: u16 = 40_000;
const A_V4: [u8; 4] = [192, 0, 2, 1];
/// Number and size of the TXT strings of `big.test`: about 2.1 KB.
const BIG_RECORDS: usize = 16;
const BIG_STRING: usize = 120;

fn client_v4() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(TUN_ADDRESS_V4), CLIENT_PORT)
}

fn client_v6() -> SocketAddr {
    SocketAddr::new(IpAddr::V6(TUN_ADDRESS_V6), CLIENT_PORT)
}

fn dns_v4() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(VIRTUAL_DNS_V4), 53)
}

fn dns_v6() -> SocketAddr {
    SocketAddr::new(IpAddr::V6(VIRTUAL_DNS_V6), 53)
}

/// An IP + UDP packet from `src` to `dst`, checksums set: the packet
/// layer's reply builder, asked to answer a datagram going the other way.
fn udp_packet(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let reverse = ParsedUdp {
        src: dst,
        dst: src,
        payload: 0..0,
    };
    let mut out = Vec::new();
    build_udp_reply(&reverse, payload, &mut out).unwrap();
    out
}

/// `name` `rtype` query with ID `id`, with an OPT record advertising
/// `edns` bytes when given.
fn query(name: &str, rtype: &str, id: u16, edns: Option<u16>) -> Vec<u8> {
    let mut q = build_query(name, rtype).unwrap();
    q[..2].copy_from_slice(&id.to_be_bytes());
    if let Some(size) = edns {
        q[11] = 1;
        q.extend_from_slice(&[0, 0, 41]);
        q.extend_from_slice(&size.to_be_bytes());
        q.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    q
}

/// A clear-text DNS server on loopback: A 192.0.2.1 for any name, 16 TXT
/// records (~2.1 KB) for `big.test`; or, when `swallow`, no answer at all.
struct Upstream53 {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream53 {
    fn start(swallow: bool) -> Upstream53 {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_535];
            // Bounded by the test: the flag is set on drop.
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if swallow {
                    continue;
                }
                if let Some(answer) = answer(&buf[..n]) {
                    let _ = socket.send_to(&answer, peer);
                }
            }
        });
        Upstream53 {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Upstream53 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(q: &[u8]) -> Option<Vec<u8>> {
    let layout = Layout::parse(q).ok()?;
    let question = q.get(layout.question.clone())?;
    let mut out = q.get(..12)?.to_vec();
    out[2] |= 0x80; // QR
    out[3] = 0x80; // RA, NOERROR
    out[6..12].fill(0);
    out.extend_from_slice(question);
    let qname_end = question.iter().position(|&b| b == 0)?;
    let is_big = question[..qname_end].eq_ignore_ascii_case(b"\x03big\x04test");
    let mut records = 0u16;
    if is_big {
        for i in 0..BIG_RECORDS {
            let text = format!("{i:02}{}", "x".repeat(BIG_STRING - 2));
            out.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 1, 44]);
            out.extend_from_slice(&((text.len() + 1) as u16).to_be_bytes());
            out.push(text.len() as u8);
            out.extend_from_slice(text.as_bytes());
            records += 1;
        }
    } else {
        out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4]);
        out.extend_from_slice(&A_V4);
        records = 1;
    }
    out[6..8].copy_from_slice(&records.to_be_bytes());
    Some(out)
}

/// An engine whose "TUN" is one end of a socket pair, and the other end.
/// Keeps the engine's events.
#[derive(Default)]
struct EventLog(std::sync::Mutex<Vec<Event>>);

impl Host for EventLog {
    fn on_event(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

impl EventLog {
    /// The reasons of the `TunClosed` events so far.
    fn tun_closed(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::TunClosed { reason } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Opportunistic mode with a DoT server that refuses at once, so answers
/// come from `upstream` in clear text.
fn config_for(upstream: &Upstream53, query_timeout: Duration) -> Config {
    let mut config = Config {
        upstream: Upstream::Custom(vec![CustomServer {
            name: Some("dot.test".into()),
            // Port 1: nothing listens, so DoT fails at once and the
            // opportunistic profile answers in clear text.
            addresses: vec!["127.0.0.1:1".into()],
            port: 0,
            pins: Vec::new(),
        }]),
        mode: Mode::Opportunistic,
        network_resolvers: vec![upstream.addr],
        ..Config::default()
    };
    config.timeouts.query = query_timeout;
    config.timeouts.connect = query_timeout;
    config
}

/// Polls until the host has been told that the device is gone, for at
/// most `wait`; the packet stats as they are then, and the reasons given.
fn wait_for_device_gone(
    engine: &Engine,
    events: &EventLog,
    wait: Duration,
) -> (PacketPathStats, Vec<String>) {
    let deadline = Instant::now() + wait;
    loop {
        let closed = events.tun_closed();
        if !closed.is_empty() || Instant::now() >= deadline {
            return (engine.packet_stats(), closed);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct Rig {
    engine: Engine,
    phone: UnixDatagram,
    events: Arc<EventLog>,
    _upstream: Upstream53,
}

impl Rig {
    fn start(swallow: bool, query_timeout: Duration) -> Rig {
        let upstream = Upstream53::start(swallow);
        let (phone, tun) = UnixDatagram::pair().unwrap();
        phone
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let events = Arc::new(EventLog::default());
        let engine = Engine::start(
            &config_for(&upstream, query_timeout),
            OwnedFd::from(tun),
            events.clone(),
        )
        .unwrap();
        Rig {
            engine,
            phone,
            events,
            _upstream: upstream,
        }
    }

    fn send(&self, packet: &[u8]) {
        self.phone.send(packet).unwrap();
    }

    fn recv(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 65_535];
        let n = self.phone.recv(&mut buf).ok()?;
        buf.truncate(n);
        Some(buf)
    }

    fn recv_within(&self, wait: Duration) -> Option<Vec<u8>> {
        self.phone.set_read_timeout(Some(wait)).unwrap();
        let r = self.recv();
        self.phone
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        r
    }

    /// Sends a UDP query and returns the reply packet, checked to be UDP
    /// from `dst` to `src` with valid checksums, and its DNS payload.
    fn udp_exchange(&self, src: SocketAddr, dst: SocketAddr, q: &[u8]) -> (Vec<u8>, Vec<u8>) {
        self.send(&udp_packet(src, dst, q));
        let reply = self.recv().expect("no reply within 3 s");
        match parse(&reply) {
            Packet::Udp(udp) => {
                assert_eq!(udp.src, dst, "reply must come from the address asked");
                assert_eq!(udp.dst, src, "reply must go back to the asker");
                let payload = udp.payload(&reply).to_vec();
                (reply, payload)
            }
            other => panic!("reply is not a valid UDP packet: {other:?}"),
        }
    }

    /// Waits (bounded) until the counters satisfy `f`.
    fn wait_stats(&self, f: impl Fn(&PacketPathStats) -> bool) -> PacketPathStats {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = self.engine.packet_stats();
            if f(&s) || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn tc(msg: &[u8]) -> bool {
    msg.get(2).is_some_and(|b| b & 0x02 != 0)
}

#[test]
fn udp_queries_over_ipv4_and_ipv6_are_answered_with_swapped_addresses() {
    let rig = Rig::start(false, Duration::from_secs(5));
    for (client, server, id) in [
        (client_v4(), dns_v4(), 0x1111),
        (client_v6(), dns_v6(), 0x2222),
    ] {
        let (reply, payload) = rig.udp_exchange(client, server, &query("a.test", "A", id, None));
        assert_eq!(payload[..2], id.to_be_bytes(), "answer keeps the query ID");
        let answer = decode_answer(&payload).unwrap();
        assert_eq!(answer.rcode, "NOERROR");
        assert_eq!(answer.records.len(), 1);
        assert_eq!(answer.records[0].data, "192.0.2.1");
        if client.is_ipv4() {
            assert_eq!(reply[0] >> 4, 4);
            assert_eq!(reply[8], 64, "TTL");
        } else {
            assert_eq!(reply[0] >> 4, 6);
            assert_eq!(reply[7], 64, "hop limit");
        }
    }
    // The second identical question is a cache hit, answered inline.
    let (_, payload) = rig.udp_exchange(client_v4(), dns_v4(), &query("a.test", "A", 0x3333, None));
    assert_eq!(payload[..2], [0x33, 0x33]);
    assert!(rig.engine.stats().cache_hits >= 1);
    let s = rig.wait_stats(|s| s.udp_answers == 3);
    assert_eq!(s.udp_answers, 3);
    assert_eq!(s.classified.dns_udp, 3);
    assert_eq!(s.packets_in, 3);
    assert_eq!(s.packets_out, 3);
    assert!(s.running);
}

#[test]
fn answers_larger_than_the_client_buffer_are_truncated_with_tc() {
    let rig = Rig::start(false, Duration::from_secs(5));
    // No EDNS: 512 bytes at most.
    let (_, plain) = rig.udp_exchange(client_v4(), dns_v4(), &query("big.test", "TXT", 1, None));
    assert!(plain.len() <= 512, "{} bytes", plain.len());
    assert!(tc(&plain), "TC must be set");
    assert_eq!(decode_answer(&plain).unwrap().records.len(), 0);
    // EDNS 1232 (dig's default): still too small for ~2.1 KB.
    let (_, edns) = rig.udp_exchange(
        client_v6(),
        dns_v6(),
        &query("big.test", "TXT", 2, Some(1232)),
    );
    assert!(edns.len() <= 1232 && tc(&edns));
    // EDNS 4096: the whole answer, no TC.
    let (reply, whole) = rig.udp_exchange(
        client_v4(),
        dns_v4(),
        &query("big.test", "TXT", 3, Some(4096)),
    );
    assert!(!tc(&whole));
    assert!(
        whole.len() > BIG_RECORDS * BIG_STRING,
        "{} bytes",
        whole.len()
    );
    assert_eq!(decode_answer(&whole).unwrap().records.len(), BIG_RECORDS);
    assert_eq!(
        usize::from(u16::from_be_bytes([reply[2], reply[3]])),
        reply.len()
    );
    let s = rig.wait_stats(|s| s.udp_answers == 3);
    assert_eq!(s.udp_truncated, 2);
}

/// A query for the name made of `labels` (lengths, each label of `x`),
/// type A, with the given OPT records.
fn query_for_labels(id: u16, labels: &[usize], opts: usize) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, opts as u8]);
    for &len in labels {
        q.push(len as u8);
        q.extend(std::iter::repeat_n(b'x', len));
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    for _ in 0..opts {
        q.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
    }
    q
}

#[test]
fn the_packet_path_applies_the_wire_parsers_rules() {
    // The packet layer and the resolver read a TUN query with one parser:
    // a 255-octet name is answered, a 256-octet one and a query with two
    // OPT records get FORMERR (RFC 1035 §3.1, RFC 6891 §6.1.1).
    let rig = Rig::start(false, Duration::from_secs(5));
    let cases = [
        (
            0x0255u16,
            query_for_labels(0x0255, &[63, 63, 63, 61], 1),
            0u8,
        ),
        (0x0256, query_for_labels(0x0256, &[63, 63, 63, 62], 1), 1),
        (0x0002, query_for_labels(0x0002, &[1], 2), 1),
    ];
    for (id, q, rcode) in cases {
        let (_, answer) = rig.udp_exchange(client_v4(), dns_v4(), &q);
        assert_eq!(answer[..2], id.to_be_bytes());
        assert_eq!(answer[3] & 0x0f, rcode, "query {id:#06x}");
        assert!(Layout::parse(&answer).is_ok());
    }
    let s = rig.wait_stats(|s| s.udp_answers == 3);
    assert_eq!(s.udp_answers, 3);
}

#[test]
fn the_dispatch_says_what_each_packet_calls_for() {
    use super::dispatch::{Action, Dispatch, Dropped};
    let counters = Arc::new(PacketCounters::default());
    let mut path = Dispatch::new(counters.clone());
    // A UDP query to the virtual address: resolve, with its reply context.
    let q = query("a.test", "A", 7, Some(1232));
    let (query_bytes, reply) = match path.on_packet(&udp_packet(client_v4(), dns_v4(), &q)) {
        Action::Resolve { query, reply } => (query, reply),
        other => panic!("expected Resolve, got {other:?}"),
    };
    assert_eq!(query_bytes, q);
    assert_eq!(reply.limit, 1232);
    assert_eq!(
        (reply.request.src, reply.request.dst),
        (client_v4(), dns_v4())
    );
    // Its answer, too large for the client, comes back cut to 1232 with
    // TC set, from the address asked to the asker.
    let mut answer = q.clone();
    answer[2] |= 0x80;
    answer[7] = 200;
    answer.truncate(answer.len() - 11);
    answer[11] = 0;
    for i in 0..200u8 {
        answer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, i]);
    }
    let packet = path.udp_answer(&reply, &answer).unwrap().to_vec();
    match parse(&packet) {
        Packet::Udp(udp) => {
            assert_eq!((udp.src, udp.dst), (dns_v4(), client_v4()));
            let payload = udp.payload(&packet);
            assert!(payload.len() <= 1232 && tc(payload));
            assert!(Layout::parse(payload).is_ok());
        }
        other => panic!("reply is not UDP: {other:?}"),
    }
    // An answer too short to be DNS is not sent.
    assert!(path.udp_answer(&reply, &[0; 5]).is_none());
    // A query to another address is dropped with its reason.
    let elsewhere = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)), 53);
    assert!(matches!(
        path.on_packet(&udp_packet(client_v4(), elsewhere, &q)),
        Action::Drop(Dropped::NotVirtual)
    ));
    // UDP to another port of ours: an ICMP error to write.
    let other_port = SocketAddr::new(IpAddr::V4(VIRTUAL_DNS_V4), 5353);
    match path.on_packet(&udp_packet(client_v4(), other_port, b"x")) {
        Action::Send(icmp) => assert!(matches!(parse(icmp), Packet::Icmp(_))),
        other => panic!("expected Send, got {other:?}"),
    }
    // A DNS response to port 53 is never answered.
    assert!(matches!(
        path.on_packet(&udp_packet(client_v4(), dns_v4(), &answer)),
        Action::Drop(Dropped::Classified(_))
    ));
    let s = counters.snapshot();
    assert_eq!(
        (s.packets_in, s.not_virtual, s.udp_truncated, s.unanswerable),
        (4, 1, 1, 1)
    );
}

#[test]
fn udp_to_other_ports_gets_icmp_unreachable_and_other_traffic_is_dropped() {
    let rig = Rig::start(false, Duration::from_secs(5));
    let other_port = SocketAddr::new(IpAddr::V4(VIRTUAL_DNS_V4), 5353);
    let original = udp_packet(client_v4(), other_port, b"hello");
    rig.send(&original);
    let icmp = rig.recv().expect("ICMP port unreachable");
    match parse(&icmp) {
        Packet::Icmp(m) => {
            assert_eq!((m.icmp_type, m.code), (3, 3), "port unreachable");
            assert_eq!(m.src, IpAddr::V4(VIRTUAL_DNS_V4));
            assert_eq!(m.dst, IpAddr::V4(TUN_ADDRESS_V4));
            // It quotes the offending datagram.
            assert_eq!(&icmp[28..28 + original.len()], &original[..]);
        }
        other => panic!("not ICMP: {other:?}"),
    }
    let other_port6 = SocketAddr::new(IpAddr::V6(VIRTUAL_DNS_V6), 443);
    rig.send(&udp_packet(client_v6(), other_port6, b"quic?"));
    match parse(&rig.recv().expect("ICMPv6")) {
        Packet::Icmp(m) => assert_eq!((m.icmp_type, m.code), (1, 4)),
        other => panic!("not ICMPv6: {other:?}"),
    }

    // DNS to an address that is not ours: dropped, not answered.
    let stranger = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 111, 222, 9)), 53);
    rig.send(&udp_packet(
        client_v4(),
        stranger,
        &query("a.test", "A", 7, None),
    ));
    // ICMP echo request to the virtual address: dropped.
    let mut ping = vec![
        0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 1, 0, 0, 10, 111, 222, 1, 10, 111, 222, 3, 8, 0, 0xf7,
        0xff, 0, 0, 0, 0,
    ];
    let sum = ipv4_header_checksum(&ping[..20]);
    ping[10..12].copy_from_slice(&sum.to_be_bytes());
    rig.send(&ping);
    // A DNS response sent to the DNS address: no answer, not even an error.
    let mut response = query("a.test", "A", 8, None);
    response[2] |= 0x80;
    rig.send(&udp_packet(client_v4(), dns_v4(), &response));
    assert!(
        rig.recv_within(Duration::from_millis(300)).is_none(),
        "nothing answers these"
    );

    let s = rig.wait_stats(|s| s.packets_in == 5);
    assert_eq!(s.icmp_sent, 2);
    assert_eq!(s.classified.icmp_answered, 2);
    assert_eq!(s.not_virtual, 1);
    assert_eq!(s.classified.icmp, 1);
    assert_eq!(s.classified.dns_response, 1);
    assert_eq!(s.dropped(), 3);
    assert_eq!(s.udp_answers, 0);
}

fn ipv4_header_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[test]
fn malformed_packets_are_counted_and_never_kill_the_loop() {
    let rig = Rig::start(false, Duration::from_secs(5));
    let good = udp_packet(client_v4(), dns_v4(), &query("a.test", "A", 9, None));
    let mut bad_udp_sum = good.clone();
    let last = bad_udp_sum.len() - 1;
    bad_udp_sum[last] ^= 0xff;
    let mut bad_ip_sum = good.clone();
    bad_ip_sum[10] ^= 0xff;
    let mut fragment = good.clone();
    fragment[6] = 0x20; // more fragments
    let sum = {
        fragment[10] = 0;
        fragment[11] = 0;
        ipv4_header_checksum(&fragment[..20])
    };
    fragment[10..12].copy_from_slice(&sum.to_be_bytes());
    let cases: Vec<Vec<u8>> = vec![
        vec![0x45],
        vec![0x00; 40],
        good[..good.len() - 3].to_vec(),
        bad_udp_sum,
        bad_ip_sum,
        fragment,
    ];
    for c in &cases {
        rig.send(c);
    }
    // Pseudo-random bytes, some starting like IPv4/IPv6 headers.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut sent = cases.len() as u64;
    for i in 0..3000u32 {
        let len = (i as usize * 7919) % 1600 + 1;
        let mut p = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            p.push(x as u8);
        }
        p[0] = match i % 3 {
            0 => 0x45,
            1 => 0x60,
            _ => p[0],
        };
        // A full socket buffer only means the loop is busy: retry briefly.
        let deadline = Instant::now() + Duration::from_secs(5);
        while rig.phone.send(&p).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        sent += 1;
    }
    let s = rig.wait_stats(|s| s.packets_in == sent);
    assert_eq!(s.packets_in, sent);
    assert!(s.classified.malformed >= 3, "{s:?}");
    assert!(s.classified.bad_checksum >= 2, "{s:?}");
    assert!(s.classified.fragment >= 1, "{s:?}");
    assert_eq!(s.classified.dns_udp, 0);
    assert_eq!(s.udp_answers, 0);
    // Still alive and answering.
    let (_, payload) = rig.udp_exchange(client_v4(), dns_v4(), &query("a.test", "A", 10, None));
    assert_eq!(decode_answer(&payload).unwrap().rcode, "NOERROR");
}

#[test]
fn a_stalled_upstream_pushes_back_instead_of_queueing() {
    // The upstream never answers and queries wait up to 20 s: the loop must
    // stop reading at MAX_IN_FLIGHT pending queries.
    let rig = Rig::start(true, Duration::from_secs(20));
    rig.phone.set_nonblocking(true).unwrap();
    let mut sent = 0usize;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut i = 0u32;
    while Instant::now() < deadline && i < 20_000 {
        let q = query(&format!("n{i}.test"), "A", i as u16, None);
        match rig.phone.send(&udp_packet(client_v4(), dns_v4(), &q)) {
            Ok(_) => sent += 1,
            Err(_) => {
                // The socket pair is full: the loop stopped reading.
                if sent > MAX_IN_FLIGHT {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        i += 1;
    }
    assert!(sent > MAX_IN_FLIGHT, "only {sent} queries could be sent");
    let s = rig.wait_stats(|s| s.queries_in_flight as usize == MAX_IN_FLIGHT);
    assert_eq!(s.queries_in_flight as usize, MAX_IN_FLIGHT, "{s:?}");
    assert!(s.backpressure_pauses >= 1);
    assert!(
        (s.packets_in as usize) < sent,
        "the loop kept reading: {s:?}"
    );
    // Stopping with everything pending is prompt and clean.
    let started = Instant::now();
    rig.engine.stop();
    assert!(started.elapsed() < Duration::from_secs(3));
    let s = rig.engine.packet_stats();
    assert!(!s.running);
    assert_eq!(s.queries_in_flight, 0);
}

#[test]
fn stop_closes_the_descriptor_and_ends_the_loop() {
    let rig = Rig::start(false, Duration::from_secs(5));
    let (_, payload) = rig.udp_exchange(client_v4(), dns_v4(), &query("a.test", "A", 1, None));
    assert_eq!(decode_answer(&payload).unwrap().rcode, "NOERROR");
    rig.engine.stop();
    assert!(!rig.engine.packet_stats().running);
    // The engine's end is closed: the kernel refuses datagrams to it.
    let err = rig.phone.send(b"\x45").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED), "{err}");
    // And attaching again is refused rather than leaking a second loop.
    let (_a, b) = UnixDatagram::pair().unwrap();
    assert!(rig.engine.attach_tun(OwnedFd::from(b)).is_err());
    // A stop is not a lost device.
    assert!(rig.events.tun_closed().is_empty());
}

#[test]
fn the_loop_ends_when_the_device_reports_end_of_file() {
    // A datagram pair never reports its peer's close, so this one uses a
    // sequenced-packet pair: packet boundaries as on a TUN, and EOF once
    // the other end is closed.
    let upstream = Upstream53::start(false);
    let (phone, tun) =
        socket2::Socket::pair(socket2::Domain::UNIX, socket2::Type::SEQPACKET, None).unwrap();
    let events = Arc::new(EventLog::default());
    let engine = Engine::start(
        &config_for(&upstream, Duration::from_secs(5)),
        OwnedFd::from(tun),
        events.clone(),
    )
    .unwrap();
    assert!(engine.packet_stats().running, "running as soon as started");
    // The loop answers through this device before it goes away.
    phone
        .send(&udp_packet(
            client_v4(),
            dns_v4(),
            &query("a.test", "A", 7, None),
        ))
        .unwrap();
    phone
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut reply = [std::mem::MaybeUninit::<u8>::uninit(); 1500];
    let n = phone.recv(&mut reply).expect("an answer through the pair");
    assert!(n > 28, "{n} bytes");

    // A second device is refused while the loop runs.
    let (_spare, spare_tun) = UnixDatagram::pair().unwrap();
    assert!(matches!(
        engine.attach_tun(OwnedFd::from(spare_tun)),
        Err(crate::engine::EngineError::AlreadyRunning)
    ));

    drop(phone);
    let (s, closed) = wait_for_device_gone(&engine, &events, Duration::from_secs(5));
    assert_eq!(closed, vec!["end of file on the device"]);
    assert!(!s.running, "reported gone while still running: {s:?}");
    assert_eq!(s.read_errors, 0, "EOF is an end, not an error: {s:?}");

    // The engine itself still runs: a new device can be attached as soon
    // as the host has heard the old one is gone, and is answered on.
    let (phone, tun) = UnixDatagram::pair().unwrap();
    phone
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    engine.attach_tun(OwnedFd::from(tun)).unwrap();
    assert!(engine.packet_stats().running);
    phone
        .send(&udp_packet(
            client_v4(),
            dns_v4(),
            &query("b.test", "A", 8, None),
        ))
        .unwrap();
    let mut buf = vec![0u8; 1500];
    let n = phone.recv(&mut buf).expect("an answer on the new device");
    let Packet::Udp(reply) = parse(&buf[..n]) else {
        panic!("not a UDP reply");
    };
    assert_eq!(
        decode_answer(reply.payload(&buf[..n])).unwrap().rcode,
        "NOERROR"
    );
    engine.stop();
}

/// A host that answers the report of a lost device by attaching the next
/// one at once, from inside the report, as the app does when Android
/// revokes and re-establishes its tunnel.
#[derive(Default)]
struct ReattachingHost {
    engine: std::sync::OnceLock<std::sync::Weak<Engine>>,
    next_device: std::sync::Mutex<Option<OwnedFd>>,
    attached: std::sync::Mutex<Option<Result<(), String>>>,
}

impl Host for ReattachingHost {
    fn on_event(&self, event: Event) {
        if !matches!(event, Event::TunClosed { .. }) {
            return;
        }
        let Some(engine) = self.engine.get().and_then(std::sync::Weak::upgrade) else {
            return;
        };
        if let Some(device) = self.next_device.lock().unwrap().take() {
            let result = engine.attach_tun(device).map_err(|e| e.to_string());
            *self.attached.lock().unwrap() = Some(result);
        }
    }
}

#[test]
fn a_new_device_can_be_attached_from_inside_the_report_that_the_old_one_is_gone() {
    let upstream = Upstream53::start(false);
    let (old_phone, old_tun) =
        socket2::Socket::pair(socket2::Domain::UNIX, socket2::Type::SEQPACKET, None).unwrap();
    let (new_phone, new_tun) = UnixDatagram::pair().unwrap();
    new_phone
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let host = Arc::new(ReattachingHost::default());
    *host.next_device.lock().unwrap() = Some(OwnedFd::from(new_tun));
    let engine = Arc::new(
        Engine::start(
            &config_for(&upstream, Duration::from_secs(5)),
            OwnedFd::from(old_tun),
            host.clone(),
        )
        .unwrap(),
    );
    host.engine.set(Arc::downgrade(&engine)).unwrap();

    drop(old_phone);
    let deadline = Instant::now() + Duration::from_secs(5);
    let attached = loop {
        if let Some(result) = host.attached.lock().unwrap().take() {
            break result;
        }
        assert!(Instant::now() < deadline, "the host never heard of the EOF");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(attached, Ok(()), "attaching from inside the report");
    assert!(engine.packet_stats().running);
    new_phone
        .send(&udp_packet(
            client_v4(),
            dns_v4(),
            &query("c.test", "A", 9, None),
        ))
        .unwrap();
    let mut buf = vec![0u8; 1500];
    let n = new_phone
        .recv(&mut buf)
        .expect("an answer on the new device");
    let Packet::Udp(reply) = parse(&buf[..n]) else {
        panic!("not a UDP reply");
    };
    assert_eq!(
        decode_answer(reply.payload(&buf[..n])).unwrap().rcode,
        "NOERROR"
    );
    engine.stop();
}

#[test]
fn the_loop_ends_when_the_tun_interface_is_deleted() {
    // Linux keeps returning EBADFD from a TUN descriptor whose interface
    // was deleted; the loop must take that as the end of the device
    // rather than retry it forever.
    let (fd, name) = match open_tun("dctest%d") {
        Ok(opened) => opened,
        Err(e) => {
            eprintln!(
                "SKIP: cannot create a TUN interface here ({e}); needs root and /dev/net/tun"
            );
            return;
        }
    };
    let upstream = Upstream53::start(false);
    let events = Arc::new(EventLog::default());
    let engine = Engine::start(
        &config_for(&upstream, Duration::from_secs(5)),
        fd,
        events.clone(),
    )
    .unwrap();
    assert!(engine.packet_stats().running);
    let deleted = std::process::Command::new("ip")
        .args(["link", "del", &name])
        .status();
    match deleted {
        Ok(status) => assert!(status.success(), "ip link del {name}: {status}"),
        Err(e) => {
            engine.stop();
            eprintln!("SKIP: cannot run `ip` ({e}); install iproute2");
            return;
        }
    }
    let (s, closed) = wait_for_device_gone(&engine, &events, Duration::from_secs(5));
    assert!(
        !s.running,
        "the loop kept running on a deleted interface: {s:?}"
    );
    assert_eq!(s.read_errors, 0, "{s:?}");
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert!(closed[0].contains("EBADFD"), "{closed:?}");
    engine.stop();
}

/// The TCP side on its own, against a second smoltcp acting as the phone's
/// TCP stack, in virtual time.
mod tcp {
    use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
    use smoltcp::socket::tcp;
    use smoltcp::time::Instant as SmolInstant;
    use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpEndpoint};
    use tokio::time::{advance, Duration, Instant};

    use super::super::stack::{
        QueueDevice, TcpQuery, TcpStack, IDLE_TIMEOUT, MAX_PENDING_PER_CONNECTION,
    };
    use super::super::stats::PacketCounters;
    use super::super::MAX_TCP_CONNECTIONS;
    use crate::net::{TUN_ADDRESS_V4, VIRTUAL_DNS_V4};
    use crate::packet::{parse, Packet};

    /// The phone's side: a smoltcp interface with TCP client sockets.
    struct Phone {
        iface: Interface,
        device: QueueDevice,
        sockets: SocketSet<'static>,
        epoch: Instant,
    }

    impl Phone {
        fn new() -> Phone {
            let mut device = QueueDevice::new();
            let mut iface = Interface::new(
                IfaceConfig::new(HardwareAddress::Ip),
                &mut device,
                SmolInstant::ZERO,
            );
            iface.update_ip_addrs(|a| {
                let _ = a.push(IpCidr::new(IpAddress::Ipv4(TUN_ADDRESS_V4), 32));
            });
            let _ = iface.routes_mut().add_default_ipv4_route(TUN_ADDRESS_V4);
            Phone {
                iface,
                device,
                sockets: SocketSet::new(Vec::new()),
                epoch: Instant::now(),
            }
        }

        fn now(&self) -> SmolInstant {
            SmolInstant::from_micros(self.epoch.elapsed().as_micros() as i64)
        }

        fn connect(&mut self, port: u16) -> SocketHandle {
            let mut s = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; 65_536]),
                tcp::SocketBuffer::new(vec![0; 65_536]),
            );
            s.set_nagle_enabled(false);
            let remote = IpEndpoint::new(IpAddress::Ipv4(VIRTUAL_DNS_V4), 53);
            s.connect(self.iface.context(), remote, port).unwrap();
            self.sockets.add(s)
        }

        fn socket(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
            self.sockets.get_mut::<tcp::Socket>(h)
        }
    }

    /// Moves packets both ways until nothing moves; the server's queries
    /// are appended to `queries`.
    fn pump(
        phone: &mut Phone,
        server: &mut TcpStack,
        queries: &mut Vec<TcpQuery>,
        c: &PacketCounters,
    ) {
        for _ in 0..100 {
            let now = phone.now();
            phone.iface.poll(now, &mut phone.device, &mut phone.sockets);
            let out: Vec<Vec<u8>> = phone.device.tx.drain(..).collect();
            for p in &out {
                let Packet::Tcp(t) = parse(p) else {
                    panic!("phone sent a non-TCP packet")
                };
                server.ingest(p, &t, c);
            }
            server.service(queries, usize::MAX, c);
            let mut back = Vec::new();
            server.take_output(&mut back);
            if out.is_empty() && back.is_empty() {
                return;
            }
            for p in back {
                assert!(
                    matches!(parse(&p), Packet::Tcp(_)),
                    "server sent a bad packet"
                );
                phone.device.rx.push_back(p);
            }
        }
        panic!("packets kept moving after 100 rounds");
    }

    fn framed(id: u16) -> Vec<u8> {
        let mut q = super::query("a.test", "A", id, None);
        let mut f = (q.len() as u16).to_be_bytes().to_vec();
        f.append(&mut q);
        f
    }

    fn read_frames(phone: &mut Phone, h: SocketHandle) -> Vec<u16> {
        let mut data = Vec::new();
        let s = phone.socket(h);
        while s.can_recv() {
            s.recv(|b| {
                data.extend_from_slice(b);
                (b.len(), ())
            })
            .unwrap();
        }
        let mut ids = Vec::new();
        let mut rest = &data[..];
        while rest.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            assert!(rest.len() >= 2 + len, "partial frame");
            ids.push(u16::from_be_bytes([rest[2], rest[3]]));
            rest = &rest[2 + len..];
        }
        ids
    }

    #[tokio::test(start_paused = true)]
    async fn pipelined_queries_are_framed_and_answered_in_completion_order() {
        let c = PacketCounters::default();
        let mut server = TcpStack::new();
        let mut phone = Phone::new();
        let h = phone.connect(40_001);
        let mut queries = Vec::new();
        pump(&mut phone, &mut server, &mut queries, &c);
        assert_eq!(phone.socket(h).state(), tcp::State::Established);
        let mut burst = Vec::new();
        for id in 1..=3 {
            burst.extend(framed(id));
        }
        phone.socket(h).send_slice(&burst).unwrap();
        pump(&mut phone, &mut server, &mut queries, &c);
        let ids: Vec<u16> = queries
            .iter()
            .map(|q| u16::from_be_bytes([q.message[0], q.message[1]]))
            .collect();
        assert_eq!(ids, [1, 2, 3]);
        // Answer in reverse: the client gets them in that order.
        for q in queries.drain(..).rev() {
            let mut answer = q.message.clone();
            answer[2] |= 0x80;
            server.deliver(q.conn, &answer, &c);
        }
        pump(&mut phone, &mut server, &mut queries, &c);
        assert_eq!(read_frames(&mut phone, h), [3, 2, 1]);
        let s = c.snapshot();
        assert_eq!((s.tcp_connections_accepted, s.tcp_connections_open), (1, 1));
        assert_eq!((s.tcp_queries, s.tcp_answers), (3, 3));

        // The client closes: once everything is answered the server closes
        // too and forgets the connection.
        phone.socket(h).close();
        pump(&mut phone, &mut server, &mut queries, &c);
        assert!(matches!(
            phone.socket(h).state(),
            tcp::State::TimeWait | tcp::State::Closed
        ));
        assert_eq!(c.snapshot().tcp_connections_open, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_not_read_past_its_pipelining_limit() {
        let c = PacketCounters::default();
        let mut server = TcpStack::new();
        let mut phone = Phone::new();
        let h = phone.connect(40_002);
        let mut queries = Vec::new();
        pump(&mut phone, &mut server, &mut queries, &c);
        let mut burst = Vec::new();
        for id in 0..40 {
            burst.extend(framed(id));
        }
        phone.socket(h).send_slice(&burst).unwrap();
        pump(&mut phone, &mut server, &mut queries, &c);
        assert_eq!(queries.len(), MAX_PENDING_PER_CONNECTION);
        // Answering one lets exactly one more in.
        let q = queries.remove(0);
        server.deliver(q.conn, &q.message, &c);
        pump(&mut phone, &mut server, &mut queries, &c);
        assert_eq!(queries.len(), MAX_PENDING_PER_CONNECTION);
        assert_eq!(
            c.snapshot().tcp_queries as usize,
            MAX_PENDING_PER_CONNECTION + 1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connections_are_closed_and_bad_frames_reset() {
        let c = PacketCounters::default();
        let mut server = TcpStack::new();
        let mut phone = Phone::new();
        let idle = phone.connect(40_003);
        let bad = phone.connect(40_004);
        let mut queries = Vec::new();
        pump(&mut phone, &mut server, &mut queries, &c);
        phone.socket(bad).send_slice(&[0, 0]).unwrap();
        pump(&mut phone, &mut server, &mut queries, &c);
        assert_eq!(phone.socket(bad).state(), tcp::State::Closed, "reset");
        assert_eq!(c.snapshot().tcp_bad_frames, 1);

        assert_eq!(phone.socket(idle).state(), tcp::State::Established);
        let wake = server.next_wakeup().expect("an idle deadline");
        assert!(wake <= Instant::now() + IDLE_TIMEOUT);
        advance(IDLE_TIMEOUT + Duration::from_millis(10)).await;
        pump(&mut phone, &mut server, &mut queries, &c);
        assert!(!phone.socket(idle).may_recv(), "server sent FIN");
        assert!(queries.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn connections_beyond_the_limit_are_refused() {
        let c = PacketCounters::default();
        let mut server = TcpStack::new();
        let mut phone = Phone::new();
        let mut queries = Vec::new();
        let handles: Vec<SocketHandle> = (0..=MAX_TCP_CONNECTIONS as u16)
            .map(|i| phone.connect(41_000 + i))
            .collect();
        pump(&mut phone, &mut server, &mut queries, &c);
        let established = handles
            .iter()
            .filter(|h| phone.socket(**h).state() == tcp::State::Established)
            .count();
        assert_eq!(established, MAX_TCP_CONNECTIONS);
        let s = c.snapshot();
        assert_eq!(s.tcp_connections_accepted as usize, MAX_TCP_CONNECTIONS);
        assert_eq!(s.tcp_connections_refused, 1);
    }
}
