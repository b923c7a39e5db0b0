//! Tests across the packet layer. Packets are assembled here by hand, with
//! checksums from an independent (byte-at-a-time) implementation, so that a
//! bug shared by the parser and the builder cannot hide itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::*;

// ---------------------------------------------------------------- helpers

/// RFC 1071 the slow way: one byte at a time, carrying as it goes.
fn naive_checksum(parts: &[&[u8]]) -> u16 {
    let bytes = parts.concat();
    let mut sum: u32 = 0;
    for (i, b) in bytes.iter().enumerate() {
        sum += if i % 2 == 0 {
            u32::from(*b) << 8
        } else {
            u32::from(*b)
        };
        if sum > 0xffff {
            sum = (sum & 0xffff) + 1;
        }
    }
    !(sum as u16)
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&[0, proto]);
    p.extend_from_slice(&(len as u16).to_be_bytes());
    p
}

fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&(len as u32).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, proto]);
    p
}

fn udp_segment(sport: u16, dport: u16, payload: &[u8], pseudo: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let c = match naive_checksum(&[pseudo, &u]) {
        0 => 0xffff,
        c => c,
    };
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

fn tcp_segment(sport: u16, dport: u16, pseudo: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&1u32.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02; // SYN
    t[14..16].copy_from_slice(&65535u16.to_be_bytes());
    let c = naive_checksum(&[pseudo, &t]);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

fn fix_v4_header_checksum(p: &mut [u8]) {
    let ihl = usize::from(p[0] & 0xf) * 4;
    p[10] = 0;
    p[11] = 0;
    let c = naive_checksum(&[&p[..ihl]]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, upper: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&((20 + upper.len()) as u16).to_be_bytes());
    p[4..6].copy_from_slice(&0x1111u16.to_be_bytes());
    p[8] = 64;
    p[9] = proto;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    p.extend_from_slice(upper);
    fix_v4_header_checksum(&mut p);
    p
}

fn ipv4_udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let pseudo = pseudo_v4(src, dst, 17, 8 + payload.len());
    ipv4_packet(src, dst, 17, &udp_segment(sport, dport, payload, &pseudo))
}

/// An IPv6 packet whose payload is `exts` (each a next-header value and the
/// header's bytes, in order) followed by `upper` of protocol `proto`.
fn ipv6_packet(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    exts: &[(u8, Vec<u8>)],
    proto: u8,
    upper: &[u8],
) -> Vec<u8> {
    let mut payload = Vec::new();
    for (i, (_, body)) in exts.iter().enumerate() {
        let next = exts.get(i + 1).map_or(proto, |(t, _)| *t);
        let mut body = body.clone();
        body[0] = next;
        payload.extend_from_slice(&body);
    }
    payload.extend_from_slice(upper);
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    p[6] = exts.first().map_or(proto, |(t, _)| *t);
    p[7] = 64;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p.extend_from_slice(&payload);
    p
}

fn ipv6_udp_ext(
    src: Ipv6Addr,
    sport: u16,
    dst: Ipv6Addr,
    dport: u16,
    exts: &[(u8, Vec<u8>)],
    payload: &[u8],
) -> Vec<u8> {
    let pseudo = pseudo_v6(src, dst, 17, 8 + payload.len());
    ipv6_packet(
        src,
        dst,
        exts,
        17,
        &udp_segment(sport, dport, payload, &pseudo),
    )
}

fn ipv6_udp(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    ipv6_udp_ext(src, sport, dst, dport, &[], payload)
}

/// An 8-byte options header (hop-by-hop or destination options: PadN).
fn opts_header() -> Vec<u8> {
    vec![0, 0, 1, 4, 0, 0, 0, 0]
}

fn routing_header(segments_left: u8) -> Vec<u8> {
    // Type 0 style layout; only the length and segments-left matter here.
    vec![0, 0, 4, segments_left, 0, 0, 0, 0]
}

fn fragment_header(offset_bytes: u16, more: bool, id: u32) -> Vec<u8> {
    let mut h = vec![0, 0];
    h.extend_from_slice(&(offset_bytes | u16::from(more)).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn expect_udp(p: &[u8]) -> ParsedUdp {
    match parse(p) {
        Packet::Udp(u) => u,
        other => panic!("expected UDP, got {other:?}"),
    }
}

fn expect_err(p: &[u8]) -> PacketError {
    match parse(p) {
        Packet::Malformed(e) => e,
        other => panic!("expected malformed, got {other:?}"),
    }
}

fn dns_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

fn dns_header(id: u16, flags: u16, qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
    [id, flags, qd, an, ns, ar]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect()
}

fn opt_rr(udp_size: u16, rdata: &[u8]) -> Vec<u8> {
    let mut r = vec![0];
    r.extend_from_slice(&41u16.to_be_bytes());
    r.extend_from_slice(&udp_size.to_be_bytes());
    r.extend_from_slice(&0x0000_8000u32.to_be_bytes()); // DO bit
    r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    r.extend_from_slice(rdata);
    r
}

fn a_rr_compressed(addr: [u8; 4]) -> Vec<u8> {
    let mut r = vec![0xc0, 12]; // pointer to the question name
    r.extend_from_slice(&1u16.to_be_bytes());
    r.extend_from_slice(&1u16.to_be_bytes());
    r.extend_from_slice(&300u32.to_be_bytes());
    r.extend_from_slice(&4u16.to_be_bytes());
    r.extend_from_slice(&addr);
    r
}

fn query(name: &str, qtype: u16, opt: Option<Vec<u8>>) -> Vec<u8> {
    let mut q = dns_header(0x4242, 0x0100, 1, 0, 0, u16::from(opt.is_some()));
    q.extend_from_slice(&dns_name(name));
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    if let Some(opt) = opt {
        q.extend_from_slice(&opt);
    }
    q
}

/// A response with `answers` A records and an optional OPT record.
fn response(name: &str, answers: u16, opt: Option<Vec<u8>>) -> Vec<u8> {
    let mut r = dns_header(0x4242, 0x8183, 1, answers, 0, u16::from(opt.is_some()));
    r.extend_from_slice(&dns_name(name));
    r.extend_from_slice(&[0, 1, 0, 1]);
    for i in 0..answers {
        r.extend_from_slice(&a_rr_compressed([10, 0, (i >> 8) as u8, i as u8]));
    }
    if let Some(opt) = opt {
        r.extend_from_slice(&opt);
    }
    r
}

/// Deterministic pseudo-random bytes for the robustness loops.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const KNOWN_V4: &str = "45000039abcd40004011a273c000020ac63364359c40003500259519\
                        123401000001000000000000076578616d706c6503636f6d0000010001";
const KNOWN_V6: &str = "600000000030114020010db800000000000000000000001020010db8\
                        0000000000000000000000539c410035003058ebbeef0100000100000000\
                        0001076578616d706c6503636f6d00001c000100002904d0000000000000";

// ------------------------------------------------------- known-good input

#[test]
fn known_good_ipv4_dns_query() {
    let p = hex(KNOWN_V4);
    // The vector's checksums agree with the independent implementation.
    assert_eq!(naive_checksum(&[&p[..20]]), 0);
    let u = expect_udp(&p);
    assert_eq!(u.src, "192.0.2.10:40000".parse::<SocketAddr>().unwrap());
    assert_eq!(u.dst, "198.51.100.53:53".parse::<SocketAddr>().unwrap());
    assert_eq!(u.payload, 28..p.len());
    assert_eq!(&u.payload(&p)[..2], &[0x12, 0x34]);
    assert_eq!(client_udp_payload_limit(u.payload(&p)), 512);
}

#[test]
fn known_good_ipv6_dns_query() {
    let p = hex(KNOWN_V6);
    let u = expect_udp(&p);
    assert_eq!(u.src, "[2001:db8::10]:40001".parse::<SocketAddr>().unwrap());
    assert_eq!(u.dst, "[2001:db8::53]:53".parse::<SocketAddr>().unwrap());
    assert_eq!(u.payload, 48..p.len());
    assert_eq!(&u.payload(&p)[..2], &[0xbe, 0xef]);
    assert_eq!(client_udp_payload_limit(u.payload(&p)), 1232);
}

#[test]
fn test_helpers_match_known_vectors() {
    let q = query("example.com", 1, None);
    let mut q4 = q.clone();
    q4[..2].copy_from_slice(&[0x12, 0x34]);
    let mut built = ipv4_udp(v4("192.0.2.10"), 40000, v4("198.51.100.53"), 53, &q4);
    // The vector uses a different identification and sets DF.
    built[4..6].copy_from_slice(&0xabcdu16.to_be_bytes());
    built[6] = 0x40;
    fix_v4_header_checksum(&mut built);
    assert_eq!(built, hex(KNOWN_V4));
}

#[test]
fn payload_accessor_with_wrong_buffer_is_empty() {
    let p = hex(KNOWN_V4);
    let u = expect_udp(&p);
    assert_eq!(u.payload(&p[..10]), &[] as &[u8]);
}

#[test]
fn trailing_bytes_after_ip_length_are_ignored() {
    let mut p = hex(KNOWN_V4);
    let len = p.len();
    p.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(expect_udp(&p).payload, 28..len);
    let mut p = hex(KNOWN_V6);
    let len = p.len();
    p.extend_from_slice(&[0; 7]);
    assert_eq!(expect_udp(&p).payload, 48..len);
}

// ----------------------------------------------------------------- IPv4

#[test]
fn empty_and_unknown_version() {
    assert_eq!(expect_err(&[]), PacketError::Empty);
    assert_eq!(expect_err(&[0x50; 40]), PacketError::UnknownIpVersion(5));
    assert_eq!(expect_err(&[0x00]), PacketError::UnknownIpVersion(0));
}

#[test]
fn every_ipv4_prefix_is_rejected() {
    let p = hex(KNOWN_V4);
    for n in 1..p.len() {
        let e = expect_err(&p[..n]);
        let want = if n < 20 {
            PacketError::Ipv4Truncated
        } else {
            PacketError::Ipv4TotalLengthExceedsPacket
        };
        assert_eq!(e, want, "prefix {n}");
    }
}

#[test]
fn ipv4_header_length_checks() {
    let mut p = hex(KNOWN_V4);
    p[0] = 0x44;
    assert_eq!(expect_err(&p), PacketError::Ipv4BadHeaderLength);
    p[0] = 0x40;
    assert_eq!(expect_err(&p), PacketError::Ipv4BadHeaderLength);
    // IHL of 60 bytes on a 24-byte packet.
    let mut short = hex(KNOWN_V4)[..24].to_vec();
    short[0] = 0x4f;
    assert_eq!(expect_err(&short), PacketError::Ipv4Truncated);
}

#[test]
fn ipv4_total_length_lies() {
    let mut p = hex(KNOWN_V4);
    p[2..4].copy_from_slice(&19u16.to_be_bytes());
    fix_v4_header_checksum(&mut p);
    assert_eq!(expect_err(&p), PacketError::Ipv4TotalLengthTooShort);
    let n = p.len() as u16;
    p[2..4].copy_from_slice(&(n + 1).to_be_bytes());
    fix_v4_header_checksum(&mut p);
    assert_eq!(expect_err(&p), PacketError::Ipv4TotalLengthExceedsPacket);
    p[2..4].copy_from_slice(&u16::MAX.to_be_bytes());
    fix_v4_header_checksum(&mut p);
    assert_eq!(expect_err(&p), PacketError::Ipv4TotalLengthExceedsPacket);
    // Shorter than the datagram: the UDP length no longer matches.
    p[2..4].copy_from_slice(&(n - 1).to_be_bytes());
    fix_v4_header_checksum(&mut p);
    assert_eq!(expect_err(&p), PacketError::UdpLengthMismatch);
}

#[test]
fn ipv4_bad_header_checksum() {
    let mut p = hex(KNOWN_V4);
    p[11] ^= 1;
    assert_eq!(expect_err(&p), PacketError::BadIpv4Checksum);
    let mut p = hex(KNOWN_V4);
    p[8] = 1; // TTL changed, checksum not updated
    let e = expect_err(&p);
    assert_eq!(e, PacketError::BadIpv4Checksum);
    assert!(e.is_checksum_error());
}

#[test]
fn ipv4_options_are_skipped() {
    let src = v4("192.0.2.1");
    let dst = v4("192.0.2.53");
    let plain = ipv4_udp(src, 1234, dst, 53, b"hello");
    let mut p = plain[..20].to_vec();
    p[0] = 0x46;
    p[2..4].copy_from_slice(&((plain.len() + 4) as u16).to_be_bytes());
    p.extend_from_slice(&[1, 1, 1, 0]); // NOP NOP NOP EOL
    p.extend_from_slice(&plain[20..]);
    fix_v4_header_checksum(&mut p);
    let u = expect_udp(&p);
    assert_eq!(u.payload(&p), b"hello");
    assert_eq!(u.payload.start, 24 + 8);
}

#[test]
fn ipv4_fragments() {
    let base = ipv4_udp(v4("192.0.2.1"), 1234, v4("192.0.2.53"), 53, b"q");
    // MF set, offset 0: a first fragment.
    let mut p = base.clone();
    p[6] = 0x20;
    fix_v4_header_checksum(&mut p);
    match parse(&p) {
        Packet::Fragment(f) => {
            assert_eq!(f.offset, 0);
            assert!(f.more_fragments);
            assert_eq!(f.protocol, 17);
            assert_eq!(f.id, 0x1111);
        }
        other => panic!("{other:?}"),
    }
    // Offset 185 * 8, no MF: the last fragment.
    let mut p = base.clone();
    p[6..8].copy_from_slice(&185u16.to_be_bytes());
    fix_v4_header_checksum(&mut p);
    match parse(&p) {
        Packet::Fragment(f) => {
            assert_eq!(f.offset, 1480);
            assert!(!f.more_fragments);
        }
        other => panic!("{other:?}"),
    }
    // Largest offset does not overflow.
    let mut p = base.clone();
    p[6..8].copy_from_slice(&0x3fffu16.to_be_bytes());
    fix_v4_header_checksum(&mut p);
    assert!(matches!(parse(&p), Packet::Fragment(f) if f.offset == 65528));
    // DF alone is not a fragment.
    let mut p = base;
    p[6] = 0x40;
    fix_v4_header_checksum(&mut p);
    expect_udp(&p);
}

#[test]
fn other_protocols() {
    let gre = ipv4_packet(v4("192.0.2.1"), v4("192.0.2.2"), 47, &[0; 8]);
    assert_eq!(parse(&gre), Packet::Other(47));
    // ICMPv6's number inside IPv4 is just another protocol.
    let p = ipv4_packet(v4("192.0.2.1"), v4("192.0.2.2"), 58, &[0; 8]);
    assert_eq!(parse(&p), Packet::Other(58));
    let p = ipv6_packet(v6("2001:db8::1"), v6("2001:db8::2"), &[], 1, &[0; 8]);
    assert_eq!(parse(&p), Packet::Other(1));
    let p = ipv6_packet(v6("2001:db8::1"), v6("2001:db8::2"), &[], 59, &[]);
    assert_eq!(parse(&p), Packet::Other(59));
}

// ------------------------------------------------------------------ UDP

#[test]
fn udp_truncated_and_length_mismatch() {
    let src = v4("192.0.2.1");
    let dst = v4("192.0.2.53");
    let p = ipv4_packet(src, dst, 17, &[0, 53, 0, 53]);
    assert_eq!(expect_err(&p), PacketError::UdpTruncated);

    let good = ipv4_udp(src, 1000, dst, 53, b"abcd");
    for claimed in [0u16, 7, 11, 13, 0xffff] {
        let mut p = good.clone();
        p[24..26].copy_from_slice(&claimed.to_be_bytes());
        assert_eq!(expect_err(&p), PacketError::UdpLengthMismatch, "{claimed}");
    }

    let s6 = v6("2001:db8::1");
    let d6 = v6("2001:db8::53");
    let mut p = ipv6_udp(s6, 1000, d6, 53, b"abcd");
    p[44..46].copy_from_slice(&100u16.to_be_bytes());
    assert_eq!(expect_err(&p), PacketError::UdpLengthMismatch);
    let p = ipv6_packet(s6, d6, &[], 17, &[1, 2, 3]);
    assert_eq!(expect_err(&p), PacketError::UdpTruncated);
}

#[test]
fn udp_checksum_rules() {
    let src = v4("192.0.2.1");
    let dst = v4("192.0.2.53");
    let mut p = ipv4_udp(src, 1000, dst, 53, b"abcd");
    p[30] ^= 0x80;
    assert_eq!(expect_err(&p), PacketError::BadUdpChecksum);
    // IPv4 may omit the checksum.
    p[26] = 0;
    p[27] = 0;
    assert_eq!(expect_udp(&p).payload(&p), &[b'a', b'b', b'c' ^ 0x80, b'd']);

    let s6 = v6("2001:db8::1");
    let d6 = v6("2001:db8::53");
    let mut p = ipv6_udp(s6, 1000, d6, 53, b"abcd");
    p[40 + 8] ^= 1;
    assert_eq!(expect_err(&p), PacketError::BadUdpChecksum);
    // IPv6 may not.
    p[46] = 0;
    p[47] = 0;
    let e = expect_err(&p);
    assert_eq!(e, PacketError::MissingUdpChecksum);
    assert!(e.is_checksum_error());
    // The addresses are covered by the pseudo-header.
    let mut p = ipv6_udp(s6, 1000, d6, 53, b"abcd");
    p[39] ^= 1;
    assert_eq!(expect_err(&p), PacketError::BadUdpChecksum);
}

#[test]
fn udp_zero_port() {
    let src = v4("192.0.2.1");
    let dst = v4("192.0.2.53");
    assert_eq!(
        expect_err(&ipv4_udp(src, 0, dst, 53, b"x")),
        PacketError::ZeroPort
    );
    assert_eq!(
        expect_err(&ipv4_udp(src, 53, dst, 0, b"x")),
        PacketError::ZeroPort
    );
}

#[test]
fn odd_length_udp_payloads_verify() {
    for len in 0..20 {
        let payload: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        let p = ipv4_udp(v4("192.0.2.1"), 999, v4("192.0.2.53"), 53, &payload);
        assert_eq!(expect_udp(&p).payload(&p), &payload[..]);
        let p = ipv6_udp(v6("fe80::1"), 999, v6("fe80::53"), 53, &payload);
        assert_eq!(expect_udp(&p).payload(&p), &payload[..]);
    }
}

// ------------------------------------------------------------------ TCP

#[test]
fn tcp_segments() {
    let src = v4("192.0.2.1");
    let dst = v4("192.0.2.53");
    let seg = tcp_segment(40000, 53, &pseudo_v4(src, dst, 6, 20));
    let p = ipv4_packet(src, dst, 6, &seg);
    match parse(&p) {
        Packet::Tcp(t) => {
            assert_eq!(t.src, "192.0.2.1:40000".parse::<SocketAddr>().unwrap());
            assert_eq!(t.dst.port(), 53);
            assert_eq!(t.segment, 20..40);
        }
        other => panic!("{other:?}"),
    }
    let s6 = v6("2001:db8::1");
    let d6 = v6("2001:db8::53");
    let seg6 = tcp_segment(40000, 53, &pseudo_v6(s6, d6, 6, 20));
    let p6 = ipv6_packet(s6, d6, &[], 6, &seg6);
    assert!(matches!(parse(&p6), Packet::Tcp(t) if t.segment == (40..60)));

    let mut bad = p.clone();
    bad[39] ^= 1;
    assert_eq!(expect_err(&bad), PacketError::BadTcpChecksum);
    let short = ipv4_packet(src, dst, 6, &seg[..19]);
    assert_eq!(expect_err(&short), PacketError::TcpTruncated);
    for doff in [0u8, 4, 6, 15] {
        let mut s = seg.clone();
        s[12] = doff << 4;
        let p = ipv4_packet(src, dst, 6, &s);
        assert_eq!(expect_err(&p), PacketError::TcpBadDataOffset, "{doff}");
    }
    let zero = tcp_segment(0, 53, &pseudo_v4(src, dst, 6, 20));
    assert_eq!(
        expect_err(&ipv4_packet(src, dst, 6, &zero)),
        PacketError::ZeroPort
    );
}

// ----------------------------------------------------------------- ICMP

fn icmpv4(t: u8, code: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![t, code, 0, 0];
    m.extend_from_slice(body);
    let c = naive_checksum(&[&m]);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn icmpv6(src: Ipv6Addr, dst: Ipv6Addr, t: u8, code: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![t, code, 0, 0];
    m.extend_from_slice(body);
    let c = naive_checksum(&[&pseudo_v6(src, dst, 58, m.len()), &m]);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

#[test]
fn icmp_classification() {
    let src = v4("192.0.2.1");
    let dst = v4("192.0.2.53");
    let ping = ipv4_packet(src, dst, 1, &icmpv4(8, 0, &[0, 1, 0, 1, 9, 9]));
    match parse(&ping) {
        Packet::Icmp(i) => {
            assert_eq!(i.kind, IcmpKind::EchoRequest);
            assert_eq!((i.icmp_type, i.code), (8, 0));
            assert_eq!(i.message, 20..30);
        }
        other => panic!("{other:?}"),
    }
    let err = ipv4_packet(src, dst, 1, &icmpv4(11, 0, &[0; 32]));
    assert!(matches!(parse(&err), Packet::Icmp(i) if i.kind == IcmpKind::Error));
    let reply = ipv4_packet(src, dst, 1, &icmpv4(0, 0, &[0; 4]));
    assert!(matches!(parse(&reply), Packet::Icmp(i) if i.kind == IcmpKind::EchoReply));
    let mut bad = ping.clone();
    bad[25] ^= 1;
    assert_eq!(expect_err(&bad), PacketError::BadIcmpChecksum);
    let short = ipv4_packet(src, dst, 1, &[8, 0, 0, 0]);
    assert_eq!(expect_err(&short), PacketError::IcmpTruncated);

    let s6 = v6("2001:db8::1");
    let d6 = v6("2001:db8::53");
    let ping6 = ipv6_packet(s6, d6, &[], 58, &icmpv6(s6, d6, 128, 0, &[0, 7, 0, 1]));
    assert!(matches!(parse(&ping6), Packet::Icmp(i) if i.kind == IcmpKind::EchoRequest));
    let unreach6 = ipv6_packet(s6, d6, &[], 58, &icmpv6(s6, d6, 1, 4, &[0; 44]));
    assert!(matches!(parse(&unreach6), Packet::Icmp(i) if i.kind == IcmpKind::Error));
    let ns = ipv6_packet(s6, d6, &[], 58, &icmpv6(s6, d6, 135, 0, &[0; 20]));
    assert!(matches!(parse(&ns), Packet::Icmp(i) if i.kind == IcmpKind::Other));
    // The ICMPv6 checksum covers the pseudo-header: an ICMPv4-style sum fails.
    let no_pseudo = ipv6_packet(s6, d6, &[], 58, &icmpv4(128, 0, &[0, 7, 0, 1]));
    assert_eq!(expect_err(&no_pseudo), PacketError::BadIcmpChecksum);
}

// ---------------------------------------------------------------- IPv6

#[test]
fn every_ipv6_prefix_is_rejected() {
    let p = hex(KNOWN_V6);
    for n in 1..p.len() {
        let want = if n < 40 {
            PacketError::Ipv6Truncated
        } else {
            PacketError::Ipv6PayloadLengthExceedsPacket
        };
        assert_eq!(expect_err(&p[..n]), want, "prefix {n}");
    }
}

#[test]
fn ipv6_extension_headers_are_walked() {
    let s = v6("2001:db8::1");
    let d = v6("2001:db8::53");
    let exts = vec![
        (0, opts_header()),
        (43, routing_header(0)),
        (60, opts_header()),
    ];
    let p = ipv6_udp_ext(s, 5000, d, 53, &exts, b"query");
    let u = expect_udp(&p);
    assert_eq!(u.payload.start, 40 + 24 + 8);
    assert_eq!(u.payload(&p), b"query");

    // A longer options header (hdr ext len 2 = 24 bytes).
    let mut long = vec![0, 2, 1, 20];
    long.resize(24, 0);
    let p = ipv6_udp_ext(s, 5000, d, 53, &[(60, long)], b"q");
    assert_eq!(expect_udp(&p).payload.start, 40 + 24 + 8);
}

#[test]
fn ipv6_extension_header_errors() {
    let s = v6("2001:db8::1");
    let d = v6("2001:db8::53");
    let p = ipv6_udp_ext(s, 5000, d, 53, &[(43, routing_header(1))], b"q");
    assert_eq!(expect_err(&p), PacketError::Ipv6UnfinishedRoutingHeader);

    let p = ipv6_udp_ext(
        s,
        5000,
        d,
        53,
        &[(60, opts_header()), (0, opts_header())],
        b"q",
    );
    assert_eq!(expect_err(&p), PacketError::Ipv6MisplacedHopByHop);

    // A chain of nine destination-options headers: bounded, not followed.
    let chain: Vec<_> = (0..9).map(|_| (60, opts_header())).collect();
    let p = ipv6_udp_ext(s, 5000, d, 53, &chain, b"q");
    assert_eq!(expect_err(&p), PacketError::Ipv6TooManyExtensionHeaders);
    let chain: Vec<_> = (0..8).map(|_| (60, opts_header())).collect();
    expect_udp(&ipv6_udp_ext(s, 5000, d, 53, &chain, b"q"));

    // A length byte claiming 2 KiB in a short packet.
    let mut huge = opts_header();
    huge[1] = 255;
    let p = ipv6_udp_ext(s, 5000, d, 53, &[(60, huge)], b"q");
    assert_eq!(expect_err(&p), PacketError::Ipv6ExtensionHeaderTruncated);

    // The payload ends inside an extension header.
    let p = ipv6_packet(s, d, &[], 60, &[17, 0, 1]);
    assert_eq!(expect_err(&p), PacketError::Ipv6ExtensionHeaderTruncated);
    let p = ipv6_packet(s, d, &[], 44, &[17, 0, 0, 1, 0]);
    assert_eq!(expect_err(&p), PacketError::Ipv6ExtensionHeaderTruncated);
    // Headers chained to the very end with nothing after.
    let p = ipv6_packet(s, d, &[(60, opts_header())], 60, &[]);
    assert_eq!(expect_err(&p), PacketError::Ipv6ExtensionHeaderTruncated);

    // Payload length zero with hop-by-hop next: a jumbogram.
    let mut p = ipv6_packet(s, d, &[(0, opts_header())], 17, &[]);
    p[4] = 0;
    p[5] = 0;
    assert_eq!(expect_err(&p), PacketError::Ipv6Jumbogram);
}

#[test]
fn ipv6_extension_headers_never_read_past_payload_length() {
    // The extension header is complete in the buffer, but outside the
    // declared payload: it must not be used.
    let s = v6("2001:db8::1");
    let d = v6("2001:db8::53");
    let mut p = ipv6_packet(s, d, &[(60, opts_header())], 59, &[]);
    p[4..6].copy_from_slice(&4u16.to_be_bytes());
    assert_eq!(expect_err(&p), PacketError::Ipv6ExtensionHeaderTruncated);
}

#[test]
fn ipv6_fragments() {
    let s = v6("2001:db8::1");
    let d = v6("2001:db8::53");
    let p = ipv6_udp_ext(s, 5000, d, 53, &[(44, fragment_header(0, true, 77))], b"q");
    match parse(&p) {
        Packet::Fragment(f) => {
            assert_eq!(
                (f.offset, f.more_fragments, f.id, f.protocol),
                (0, true, 77, 17)
            );
            assert_eq!(f.src, IpAddr::V6(s));
        }
        other => panic!("{other:?}"),
    }
    let p = ipv6_udp_ext(
        s,
        5000,
        d,
        53,
        &[(44, fragment_header(1232, false, 9))],
        b"q",
    );
    assert!(matches!(parse(&p), Packet::Fragment(f) if f.offset == 1232 && !f.more_fragments));
    // An atomic fragment (RFC 6946) is a whole datagram.
    let exts = [(0, opts_header()), (44, fragment_header(0, false, 5))];
    let p = ipv6_udp_ext(s, 5000, d, 53, &exts, b"whole");
    assert_eq!(expect_udp(&p).payload(&p), b"whole");
}

// ------------------------------------------------------------- replies

fn check_ipv4_udp_reply(reply: &[u8], request: &ParsedUdp, payload: &[u8]) {
    assert_eq!(reply.len(), 28 + payload.len());
    assert_eq!(reply[0], 0x45);
    assert_eq!(&reply[4..6], &[0, 0], "identification");
    assert_eq!(reply[6] & 0x40, 0x40, "DF");
    assert_eq!(reply[8], 64, "TTL");
    assert_eq!(naive_checksum(&[&reply[..20]]), 0);
    let (IpAddr::V4(s), IpAddr::V4(d)) = (request.dst.ip(), request.src.ip()) else {
        panic!("not v4");
    };
    let pseudo = pseudo_v4(s, d, 17, reply.len() - 20);
    assert_eq!(naive_checksum(&[&pseudo, &reply[20..]]), 0);
    let back = expect_udp(reply);
    assert_eq!((back.src, back.dst), (request.dst, request.src));
    assert_eq!(back.payload(reply), payload);
}

fn check_ipv6_udp_reply(reply: &[u8], request: &ParsedUdp, payload: &[u8]) {
    assert_eq!(reply.len(), 48 + payload.len());
    assert_eq!(reply[0], 0x60);
    assert_eq!(reply[6], 17);
    assert_eq!(reply[7], 64, "hop limit");
    let (IpAddr::V6(s), IpAddr::V6(d)) = (request.dst.ip(), request.src.ip()) else {
        panic!("not v6");
    };
    let pseudo = pseudo_v6(s, d, 17, reply.len() - 40);
    assert_eq!(naive_checksum(&[&pseudo, &reply[40..]]), 0);
    assert_ne!(&reply[46..48], &[0, 0]);
    let back = expect_udp(reply);
    assert_eq!((back.src, back.dst), (request.dst, request.src));
    assert_eq!(back.payload(reply), payload);
}

#[test]
fn ipv4_reply_round_trip() {
    let p = hex(KNOWN_V4);
    let req = expect_udp(&p);
    let mut out = vec![0xaa; 3]; // stale contents must not survive
    for payload in [&b""[..], b"x", b"an answer of odd length", &[0u8; 1500]] {
        build_udp_reply(&req, payload, &mut out).unwrap();
        check_ipv4_udp_reply(&out, &req, payload);
    }
}

#[test]
fn ipv6_reply_round_trip() {
    let p = hex(KNOWN_V6);
    let req = expect_udp(&p);
    let mut out = Vec::new();
    for payload in [&b""[..], b"x", b"an answer of odd length", &[0xffu8; 4000]] {
        build_udp_reply(&req, payload, &mut out).unwrap();
        check_ipv6_udp_reply(&out, &req, payload);
    }
}

#[test]
fn reply_size_limits() {
    let p4 = hex(KNOWN_V4);
    let req4 = expect_udp(&p4);
    let mut out = Vec::new();
    let big = vec![7u8; MAX_UDP_PAYLOAD_V6 + 1];
    build_udp_reply(&req4, &big[..MAX_UDP_PAYLOAD_V4], &mut out).unwrap();
    assert_eq!(out.len(), 65535);
    check_ipv4_udp_reply(&out, &req4, &big[..MAX_UDP_PAYLOAD_V4]);
    assert_eq!(
        build_udp_reply(&req4, &big[..MAX_UDP_PAYLOAD_V4 + 1], &mut out),
        Err(BuildError::PayloadTooLarge {
            len: 65508,
            max: 65507
        })
    );

    let p6 = hex(KNOWN_V6);
    let req6 = expect_udp(&p6);
    build_udp_reply(&req6, &big[..MAX_UDP_PAYLOAD_V6], &mut out).unwrap();
    assert_eq!(out.len(), 40 + 65535);
    check_ipv6_udp_reply(&out, &req6, &big[..MAX_UDP_PAYLOAD_V6]);
    assert!(matches!(
        build_udp_reply(&req6, &big, &mut out),
        Err(BuildError::PayloadTooLarge { max: 65527, .. })
    ));
}

#[test]
fn reply_checksum_zero_is_sent_as_all_ones() {
    let p = hex(KNOWN_V4);
    let req = expect_udp(&p);
    let mut out = Vec::new();
    build_udp_reply(&req, &[0, 0, 1, 2], &mut out).unwrap();
    // Choosing the first payload word equal to the current checksum makes
    // the one's-complement sum all ones, i.e. a computed checksum of zero.
    let c = [out[26], out[27]];
    build_udp_reply(&req, &[c[0], c[1], 1, 2], &mut out).unwrap();
    assert_eq!(&out[26..28], &[0xff, 0xff]);
    check_ipv4_udp_reply(&out, &req, &[c[0], c[1], 1, 2]);

    let p = hex(KNOWN_V6);
    let req = expect_udp(&p);
    build_udp_reply(&req, &[0, 0, 3], &mut out).unwrap();
    let c = [out[46], out[47]];
    build_udp_reply(&req, &[c[0], c[1], 3], &mut out).unwrap();
    assert_eq!(&out[46..48], &[0xff, 0xff]);
    check_ipv6_udp_reply(&out, &req, &[c[0], c[1], 3]);
}

#[test]
fn reply_address_checks() {
    let mut out = Vec::new();
    let mixed = ParsedUdp {
        src: "192.0.2.1:1000".parse().unwrap(),
        dst: "[2001:db8::53]:53".parse().unwrap(),
        payload: 0..0,
    };
    assert_eq!(
        build_udp_reply(&mixed, b"x", &mut out),
        Err(BuildError::AddressFamilyMismatch)
    );
    for (src, dst) in [
        ("192.0.2.1:1000", "224.0.0.251:53"),
        ("192.0.2.1:1000", "255.255.255.255:53"),
        ("0.0.0.0:1000", "192.0.2.53:53"),
        ("[2001:db8::1]:1000", "[ff02::fb]:53"),
        ("[::]:1000", "[2001:db8::53]:53"),
    ] {
        let req = ParsedUdp {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            payload: 0..0,
        };
        assert_eq!(
            build_udp_reply(&req, b"x", &mut out),
            Err(BuildError::NotUnicast),
            "{src} -> {dst}"
        );
    }
    let zero = ParsedUdp {
        src: "192.0.2.1:0".parse().unwrap(),
        dst: "192.0.2.53:53".parse().unwrap(),
        payload: 0..0,
    };
    assert_eq!(
        build_udp_reply(&zero, b"x", &mut out),
        Err(BuildError::Malformed(PacketError::ZeroPort))
    );
}

// ------------------------------------------------------ port unreachable

fn expect_icmp(p: &[u8]) -> ParsedIcmp {
    match parse(p) {
        Packet::Icmp(i) => i,
        other => panic!("expected ICMP, got {other:?}"),
    }
}

#[test]
fn ipv4_port_unreachable_quotes_whole_small_packet() {
    let orig = ipv4_udp(v4("192.0.2.1"), 40000, v4("192.0.2.53"), 9999, b"hi");
    let mut out = Vec::new();
    build_port_unreachable(&orig, &mut out).unwrap();
    assert_eq!(out.len(), 20 + 8 + orig.len());
    assert_eq!(naive_checksum(&[&out[..20]]), 0);
    assert_eq!(naive_checksum(&[&out[20..]]), 0);
    assert_eq!(out[8], 64);
    let icmp = expect_icmp(&out);
    assert_eq!(
        (icmp.icmp_type, icmp.code, icmp.kind),
        (3, 3, IcmpKind::Error)
    );
    assert_eq!(icmp.src, IpAddr::V4(v4("192.0.2.53")));
    assert_eq!(icmp.dst, IpAddr::V4(v4("192.0.2.1")));
    assert_eq!(&out[24..28], &[0; 4], "unused field");
    assert_eq!(&out[28..], &orig[..]);
}

#[test]
fn ipv4_port_unreachable_fits_576_bytes() {
    let orig = ipv4_udp(v4("192.0.2.1"), 40000, v4("192.0.2.53"), 9999, &[5u8; 1400]);
    let mut out = Vec::new();
    build_port_unreachable(&orig, &mut out).unwrap();
    assert_eq!(out.len(), 576);
    assert_eq!(&out[28..], &orig[..548]);
    assert_eq!(naive_checksum(&[&out[20..]]), 0);
    expect_icmp(&out);
    // Exactly at the limit: nothing cut; one more byte: cut to fit.
    for (payload_len, quoted) in [(520usize, 548usize), (521, 548), (519, 547)] {
        let orig = ipv4_udp(
            v4("192.0.2.1"),
            1,
            v4("192.0.2.53"),
            2,
            &vec![1; payload_len],
        );
        build_port_unreachable(&orig, &mut out).unwrap();
        assert_eq!(out.len() - 28, quoted, "{payload_len}");
    }
}

#[test]
fn port_unreachable_quotes_only_the_datagram() {
    let mut orig = ipv4_udp(v4("192.0.2.1"), 40000, v4("192.0.2.53"), 9999, b"hi");
    let len = orig.len();
    orig.extend_from_slice(&[0xee; 100]);
    let mut out = Vec::new();
    build_port_unreachable(&orig, &mut out).unwrap();
    assert_eq!(&out[28..], &orig[..len]);
}

#[test]
fn ipv6_port_unreachable() {
    let s = v6("2001:db8::1");
    let d = v6("2001:db8::53");
    let mut out = Vec::new();
    for (payload_len, quoted) in [(10usize, 58usize), (1184, 1232), (1185, 1232), (3000, 1232)] {
        let orig = ipv6_udp(s, 40000, d, 9999, &vec![3u8; payload_len]);
        build_port_unreachable(&orig, &mut out).unwrap();
        assert_eq!(out.len(), 48 + quoted, "{payload_len}");
        assert!(out.len() <= 1280);
        assert_eq!(&out[48..], &orig[..quoted]);
        let pseudo = pseudo_v6(d, s, 58, out.len() - 40);
        assert_eq!(naive_checksum(&[&pseudo, &out[40..]]), 0);
        let icmp = expect_icmp(&out);
        assert_eq!(
            (icmp.icmp_type, icmp.code, icmp.kind),
            (1, 4, IcmpKind::Error)
        );
        assert_eq!((icmp.src, icmp.dst), (IpAddr::V6(d), IpAddr::V6(s)));
        assert_eq!(out[7], 64);
    }
}

#[test]
fn port_unreachable_for_first_fragment_only() {
    let base = ipv4_udp(v4("192.0.2.1"), 40000, v4("192.0.2.53"), 9999, &[1; 64]);
    let mut out = Vec::new();
    let mut first = base.clone();
    first[6] = 0x20;
    fix_v4_header_checksum(&mut first);
    build_port_unreachable(&first, &mut out).unwrap();
    assert_eq!(&out[28..], &first[..]);
    let mut later = base;
    later[6..8].copy_from_slice(&0x2004u16.to_be_bytes());
    fix_v4_header_checksum(&mut later);
    assert_eq!(
        build_port_unreachable(&later, &mut out),
        Err(BuildError::NonFirstFragment)
    );

    let s = v6("2001:db8::1");
    let d = v6("2001:db8::53");
    let first6 = ipv6_udp_ext(s, 1, d, 2, &[(44, fragment_header(0, true, 1))], &[0; 8]);
    build_port_unreachable(&first6, &mut out).unwrap();
    let later6 = ipv6_udp_ext(s, 1, d, 2, &[(44, fragment_header(8, true, 1))], &[0; 8]);
    assert_eq!(
        build_port_unreachable(&later6, &mut out),
        Err(BuildError::NonFirstFragment)
    );
    // A first fragment of something other than UDP.
    let mut tcp_first = ipv4_packet(v4("192.0.2.1"), v4("192.0.2.53"), 6, &[0; 20]);
    tcp_first[6] = 0x20;
    fix_v4_header_checksum(&mut tcp_first);
    assert_eq!(
        build_port_unreachable(&tcp_first, &mut out),
        Err(BuildError::NotUdp)
    );
}

#[test]
fn port_unreachable_refusals() {
    let mut out = Vec::new();
    let src = v4("192.0.2.1");
    let dst = v4("192.0.2.53");
    // Never an error about an error, in either version.
    let err4 = ipv4_packet(src, dst, 1, &icmpv4(3, 3, &[0; 32]));
    assert_eq!(
        build_port_unreachable(&err4, &mut out),
        Err(BuildError::IcmpError)
    );
    let s6 = v6("2001:db8::1");
    let d6 = v6("2001:db8::53");
    let err6 = ipv6_packet(s6, d6, &[], 58, &icmpv6(s6, d6, 3, 0, &[0; 48]));
    assert_eq!(
        build_port_unreachable(&err6, &mut out),
        Err(BuildError::IcmpError)
    );
    let ping = ipv4_packet(src, dst, 1, &icmpv4(8, 0, &[0; 4]));
    assert_eq!(
        build_port_unreachable(&ping, &mut out),
        Err(BuildError::NotUdp)
    );
    let tcp = ipv4_packet(src, dst, 6, &tcp_segment(1, 2, &pseudo_v4(src, dst, 6, 20)));
    assert_eq!(
        build_port_unreachable(&tcp, &mut out),
        Err(BuildError::NotUdp)
    );
    // Multicast and broadcast, at either end.
    for (s, d) in [
        ("192.0.2.1", "224.0.0.251"),
        ("192.0.2.1", "255.255.255.255"),
        ("224.0.0.1", "192.0.2.53"),
        ("0.0.0.0", "192.0.2.53"),
        ("240.0.0.1", "192.0.2.53"),
    ] {
        let p = ipv4_udp(v4(s), 1000, v4(d), 9999, b"x");
        assert_eq!(
            build_port_unreachable(&p, &mut out),
            Err(BuildError::NotUnicast),
            "{s} -> {d}"
        );
    }
    for (s, d) in [("2001:db8::1", "ff02::fb"), ("::", "2001:db8::53")] {
        let p = ipv6_udp(v6(s), 1000, v6(d), 9999, b"x");
        assert_eq!(
            build_port_unreachable(&p, &mut out),
            Err(BuildError::NotUnicast),
            "{s} -> {d}"
        );
    }
    // Malformed packets are not quoted.
    let mut bad = ipv4_udp(src, 1000, dst, 9999, b"x");
    bad[28] ^= 1;
    assert_eq!(
        build_port_unreachable(&bad, &mut out),
        Err(BuildError::Malformed(PacketError::BadUdpChecksum))
    );
    assert_eq!(
        build_port_unreachable(&[], &mut out),
        Err(BuildError::Malformed(PacketError::Empty))
    );
}

// ---------------------------------------------------------------- DNS

#[test]
fn small_response_is_unchanged() {
    let r = response("example.com", 2, None);
    assert_eq!(truncate_dns_response(&r, 512), r);
    assert_eq!(truncate_dns_response(&r, r.len()), r);
}

#[test]
fn truncation_keeps_question_and_opt() {
    let r = response("example.com", 100, Some(opt_rr(1232, &[])));
    assert!(r.len() > 512);
    let t = truncate_dns_response(&r, 512);
    let question_end = 12 + dns_name("example.com").len() + 4;
    assert_eq!(&t[..2], &r[..2], "ID");
    assert_eq!(t[2], r[2] | 0x02, "TC set, rest of flags kept");
    assert_eq!(t[3], r[3], "RCODE kept");
    assert_eq!(&t[4..12], &[0, 1, 0, 0, 0, 0, 0, 1]);
    assert_eq!(&t[12..question_end], &r[12..question_end]);
    assert_eq!(&t[question_end..], &opt_rr(1232, &[])[..]);
    // And the result is itself a message whose OPT can be found.
    assert_eq!(client_udp_payload_limit(&t), 1232);
}

#[test]
fn truncation_without_opt() {
    let r = response("example.com", 100, None);
    let t = truncate_dns_response(&r, 512);
    assert_eq!(t.len(), 12 + dns_name("example.com").len() + 4);
    assert_eq!(&t[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(t[2] & 0x02, 0x02);
}

#[test]
fn truncation_shrinks_an_oversized_opt() {
    let padding = [&[0u8, 12, 1, 0][..], &[0u8; 256]].concat(); // option 12, 256 bytes
    let r = response("example.com", 100, Some(opt_rr(4096, &padding)));
    let question_end = 12 + dns_name("example.com").len() + 4;
    let full = truncate_dns_response(&r, question_end + 271);
    assert_eq!(&full[question_end..], &opt_rr(4096, &padding)[..]);
    let t = truncate_dns_response(&r, question_end + 270);
    assert_eq!(&t[question_end..], &opt_rr(4096, &[])[..]);
    assert_eq!(&t[10..12], &[0, 1]);
    // Not even the bare OPT fits: it is dropped.
    let t = truncate_dns_response(&r, question_end + 10);
    assert_eq!(t.len(), question_end);
    assert_eq!(&t[10..12], &[0, 0]);
}

#[test]
fn truncation_drops_question_that_does_not_fit() {
    let long = format!(
        "{}.{}.{}.example",
        "a".repeat(60),
        "b".repeat(60),
        "c".repeat(60)
    );
    let r = response(&long, 10, None);
    let t = truncate_dns_response(&r, 100);
    assert_eq!(t.len(), 12);
    assert_eq!(&t[4..6], &[0, 0]);
    assert_eq!(t[2] & 0x02, 0x02);
}

#[test]
fn truncation_with_lying_question_count() {
    let mut r = response("example.com", 100, None);
    r[5] = 200; // QDCOUNT 200, but only one question and then answers
    let t = truncate_dns_response(&r, 512);
    assert!(t.len() <= 512);
    assert_eq!(&t[4..6], &[0, 0]);
    // Not even a header.
    assert_eq!(truncate_dns_response(&[1, 2, 3], 2), Vec::<u8>::new());
}

#[test]
fn truncation_handles_compression_pointers_in_question() {
    // Two questions, the second compressed against the first: valid, and
    // still valid once copied.
    let mut r = dns_header(1, 0x8180, 2, 50, 0, 0);
    r.extend_from_slice(&dns_name("example.com"));
    r.extend_from_slice(&[0, 1, 0, 1]);
    r.extend_from_slice(&[3, b'w', b'w', b'w', 0xc0, 12]);
    r.extend_from_slice(&[0, 28, 0, 1]);
    let qend = r.len();
    for i in 0..50 {
        r.extend_from_slice(&a_rr_compressed([1, 2, 3, i]));
    }
    let t = truncate_dns_response(&r, 512);
    assert_eq!(&t[4..6], &[0, 2]);
    assert_eq!(&t[12..], &r[12..qend]);

    // Pointers that loop, point forward, at themselves or into the header.
    let bad_names: [&[u8]; 5] = [
        &[0xc0, 12],          // itself
        &[0xc0, 14],          // forward
        &[0xc0, 0],           // into the header
        &[1, b'a', 0xc0, 12], // back to its own start: a loop
        &[0xff, 0xff],        // beyond the message
    ];
    for name in bad_names {
        let mut r = dns_header(1, 0x8180, 1, 0, 0, 0);
        r.extend_from_slice(name);
        r.extend_from_slice(&[0, 1, 0, 1]);
        r.extend_from_slice(&[0; 600]);
        let t = truncate_dns_response(&r, 512);
        assert_eq!(&t[4..6], &[0, 0], "{name:?}");
        assert_eq!(t.len(), 12);
    }

    // A pointer chain whose target name runs past the pointer itself.
    let mut r = dns_header(1, 0x8180, 2, 0, 0, 0);
    r.extend_from_slice(&[1, b'a', 0]); // q1 name at 12 ...
    r.extend_from_slice(&[0, 1, 0, 1]);
    // q2 at 19: pointer to 16, which decodes "\x00\x01.." as labels.
    r.extend_from_slice(&[0xc0, 16]);
    r.extend_from_slice(&[0, 1, 0, 1]);
    r.extend_from_slice(&[0; 600]);
    let t = truncate_dns_response(&r, 512);
    assert!(t.len() <= 512);
}

#[test]
fn edns_payload_limit() {
    assert_eq!(
        client_udp_payload_limit(&query("example.com", 1, None)),
        512
    );
    for (advertised, limit) in [
        (1232u16, 1232usize),
        (4096, 4096),
        (100, 512),
        (0, 512),
        (512, 512),
        (513, 513),
        (65535, MAX_UDP_PAYLOAD_V4),
    ] {
        let q = query("example.com", 1, Some(opt_rr(advertised, &[])));
        assert_eq!(client_udp_payload_limit(&q), limit, "{advertised}");
    }
    // Garbage and truncated queries get the safe default.
    assert_eq!(client_udp_payload_limit(&[]), 512);
    assert_eq!(client_udp_payload_limit(&[0; 11]), 512);
    let q = query("example.com", 1, Some(opt_rr(4096, &[])));
    for n in 0..q.len() {
        assert_eq!(client_udp_payload_limit(&q[..n]), 512, "prefix {n}");
    }
    // RDLENGTH pointing past the end.
    let mut bad = q.clone();
    let n = bad.len();
    bad[n - 1] = 1;
    assert_eq!(client_udp_payload_limit(&bad), 512);
}

#[test]
fn edns_opt_found_after_other_records() {
    // An answer (compressed) and an authority record before the OPT, and a
    // non-OPT additional record first.
    let mut q = dns_header(7, 0x0100, 1, 1, 1, 2);
    q.extend_from_slice(&dns_name("example.com"));
    q.extend_from_slice(&[0, 1, 0, 1]);
    q.extend_from_slice(&a_rr_compressed([1, 1, 1, 1]));
    q.extend_from_slice(&a_rr_compressed([2, 2, 2, 2]));
    q.extend_from_slice(&a_rr_compressed([3, 3, 3, 3]));
    q.extend_from_slice(&opt_rr(1400, &[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]));
    assert_eq!(client_udp_payload_limit(&q), 1400);
    // An OPT type with a non-root owner is not the OPT record.
    let mut q = dns_header(7, 0x0100, 0, 0, 0, 1);
    q.extend_from_slice(&dns_name("x"));
    q.extend_from_slice(&opt_rr(4096, &[])[1..]);
    assert_eq!(client_udp_payload_limit(&q), 512);
}

#[test]
fn edns_walk_is_safe_on_hostile_counts_and_names() {
    // Huge counts with no data behind them.
    let q = dns_header(1, 0, 0xffff, 0xffff, 0xffff, 0xffff);
    assert_eq!(client_udp_payload_limit(&q), 512);
    // A self-referencing pointer makes the query malformed (RFC 1035
    // §4.1.4 pointers go to a prior name), so what it advertises is not
    // trusted. (The packet path used to skip the name and read 2048 while
    // the resolver refused the same query: one parser now decides.)
    let mut q = dns_header(1, 0, 1, 0, 0, 1);
    q.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    q.extend_from_slice(&opt_rr(2048, &[]));
    assert_eq!(client_udp_payload_limit(&q), 512);
    q.splice(12..14, [0]); // the root instead: well-formed
    assert_eq!(client_udp_payload_limit(&q), 2048);
    // Reserved label types (0x40, 0x80) are rejected.
    for first in [0x40u8, 0x80] {
        let mut q = dns_header(1, 0, 1, 0, 0, 1);
        q.extend_from_slice(&[first, 0, 0, 1, 0, 1]);
        q.extend_from_slice(&opt_rr(2048, &[]));
        assert_eq!(client_udp_payload_limit(&q), 512);
    }
    // A name longer than 255 bytes is rejected.
    let mut q = dns_header(1, 0, 1, 0, 0, 1);
    for _ in 0..5 {
        q.push(63);
        q.extend_from_slice(&[b'a'; 63]);
    }
    q.push(0);
    q.extend_from_slice(&[0, 1, 0, 1]);
    q.extend_from_slice(&opt_rr(2048, &[]));
    assert_eq!(client_udp_payload_limit(&q), 512);
}

// --------------------------------------------------------------- stats

#[test]
fn classify_counts_each_packet_once() {
    let mut stats = PacketStats::default();
    let mut icmp = Vec::new();
    let src = v4("192.0.2.1");
    let dst = v4("192.0.2.53");

    let v = classify_and_count(&hex(KNOWN_V4), &mut stats, &mut icmp);
    assert!(matches!(v, Verdict::DnsUdp(u) if u.dst.port() == 53));
    let v = classify_and_count(&hex(KNOWN_V6), &mut stats, &mut icmp);
    assert!(matches!(v, Verdict::DnsUdp(_)));

    let other_port = ipv4_udp(src, 1000, dst, 853, b"x");
    assert_eq!(
        classify_and_count(&other_port, &mut stats, &mut icmp),
        Verdict::SendIcmp
    );
    assert_eq!(&icmp[28..], &other_port[..]);

    let tcp53 = ipv4_packet(
        src,
        dst,
        6,
        &tcp_segment(1000, 53, &pseudo_v4(src, dst, 6, 20)),
    );
    assert!(matches!(
        classify_and_count(&tcp53, &mut stats, &mut icmp),
        Verdict::DnsTcp(_)
    ));
    let tcp80 = ipv4_packet(
        src,
        dst,
        6,
        &tcp_segment(1000, 80, &pseudo_v4(src, dst, 6, 20)),
    );
    assert_eq!(
        classify_and_count(&tcp80, &mut stats, &mut icmp),
        Verdict::Drop(DropReason::NonDnsPort)
    );
    let ping = ipv4_packet(src, dst, 1, &icmpv4(8, 0, &[0; 4]));
    assert_eq!(
        classify_and_count(&ping, &mut stats, &mut icmp),
        Verdict::Drop(DropReason::Icmp)
    );
    let mut frag = hex(KNOWN_V4);
    frag[6] = 0x20;
    fix_v4_header_checksum(&mut frag);
    assert_eq!(
        classify_and_count(&frag, &mut stats, &mut icmp),
        Verdict::Drop(DropReason::Fragment)
    );
    let gre = ipv4_packet(src, dst, 47, &[0; 4]);
    assert_eq!(
        classify_and_count(&gre, &mut stats, &mut icmp),
        Verdict::Drop(DropReason::OtherProtocol(47))
    );
    let mut bad_sum = hex(KNOWN_V4);
    bad_sum[40] ^= 1;
    assert_eq!(
        classify_and_count(&bad_sum, &mut stats, &mut icmp),
        Verdict::Drop(DropReason::Malformed(PacketError::BadUdpChecksum))
    );
    assert_eq!(
        classify_and_count(&[0x45, 0], &mut stats, &mut icmp),
        Verdict::Drop(DropReason::Malformed(PacketError::Ipv4Truncated))
    );
    let mcast = ipv4_udp(src, 5353, v4("224.0.0.251"), 53, b"x");
    assert_eq!(
        classify_and_count(&mcast, &mut stats, &mut icmp),
        Verdict::Drop(DropReason::NotUnicast)
    );
    // A DNS response sent to the DNS port: dropped without an answer.
    let mut answer_payload = hex(KNOWN_V4)[28..].to_vec();
    answer_payload[2] |= 0x80;
    let response = ipv4_udp(src, 1000, dst, 53, &answer_payload);
    assert_eq!(
        classify_and_count(&response, &mut stats, &mut icmp),
        Verdict::Drop(DropReason::DnsResponse)
    );
    // UDP to another port from a source that must not get ICMP.
    let bcast = ipv4_udp(src, 68, v4("255.255.255.255"), 67, b"x");
    assert_eq!(
        classify_and_count(&bcast, &mut stats, &mut icmp),
        Verdict::Drop(DropReason::NotUnicast)
    );

    assert_eq!(
        stats,
        PacketStats {
            dns_udp: 2,
            dns_response: 1,
            dns_tcp: 1,
            icmp_answered: 1,
            malformed: 1,
            bad_checksum: 1,
            fragment: 1,
            non_dns_port: 1,
            not_unicast: 2,
            icmp: 1,
            other_protocol: 1,
        }
    );
    assert_eq!(stats.total(), 13);
}

#[test]
fn errors_display() {
    assert_eq!(
        PacketError::BadIpv4Checksum.to_string(),
        "bad IPv4 header checksum"
    );
    assert_eq!(
        PacketError::UnknownIpVersion(7).to_string(),
        "unknown IP version 7"
    );
    assert_eq!(
        BuildError::PayloadTooLarge { len: 9, max: 8 }.to_string(),
        "payload of 9 bytes exceeds the maximum of 8"
    );
    assert!(BuildError::Malformed(PacketError::Empty)
        .to_string()
        .contains("empty packet"));
}

// ---------------------------------------------------------- robustness

/// Runs everything on one input; panics are the failure being looked for.
fn exercise(bytes: &[u8], stats: &mut PacketStats) {
    let mut out = Vec::new();
    if let Packet::Udp(u) = parse(bytes) {
        let payload = u.payload(bytes);
        let limit = client_udp_payload_limit(payload);
        let answer = truncate_dns_response(payload, limit);
        if build_udp_reply(&u, &answer, &mut out).is_ok() {
            let back = expect_udp(&out);
            assert_eq!(back.payload(&out), &answer[..]);
        }
    }
    if build_port_unreachable(bytes, &mut out).is_ok() {
        let icmp = expect_icmp(&out);
        assert_eq!(icmp.kind, IcmpKind::Error);
        assert!(out.len() <= 1280);
    }
    classify_and_count(bytes, stats, &mut out);
    for limit in [0, 12, 100, 512] {
        let t = truncate_dns_response(bytes, limit);
        if bytes.len() > limit {
            assert!(t.len() <= limit.max(12));
        }
    }
    client_udp_payload_limit(bytes);
}

#[test]
fn mutated_packets_never_panic() {
    let seeds = [
        hex(KNOWN_V4),
        hex(KNOWN_V6),
        ipv6_udp_ext(
            v6("2001:db8::1"),
            1,
            v6("2001:db8::53"),
            53,
            &[
                (0, opts_header()),
                (44, fragment_header(0, false, 1)),
                (60, opts_header()),
            ],
            &response("example.com", 3, Some(opt_rr(1232, &[]))),
        ),
        ipv4_udp(v4("192.0.2.1"), 9, v4("192.0.2.2"), 10, &[0; 40]),
    ];
    let mut rng = Lcg(0x5eed);
    let mut stats = PacketStats::default();
    let mut runs = 0u64;
    for seed in &seeds {
        for _ in 0..3000 {
            let mut p = seed.clone();
            for _ in 0..=rng.below(4) {
                match rng.below(3) {
                    0 => {
                        let i = rng.below(p.len());
                        p[i] = rng.next() as u8;
                    }
                    1 => p.truncate(rng.below(p.len() + 1)),
                    _ => p.push(rng.next() as u8),
                }
                if p.is_empty() {
                    break;
                }
            }
            exercise(&p, &mut stats);
            runs += 1;
        }
    }
    for _ in 0..3000 {
        let len = rng.below(120);
        let mut p: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if let Some(first) = p.first_mut() {
            *first = if rng.below(2) == 0 { 0x45 } else { 0x60 };
        }
        exercise(&p, &mut stats);
        runs += 1;
    }
    assert_eq!(stats.total(), runs);
}

#[test]
fn mutated_dns_payloads_in_valid_datagrams_never_panic() {
    // Valid IP/UDP around hostile DNS, so the DNS walkers see the mutations
    // rather than the checksum check.
    let seeds = [
        query("example.com", 1, Some(opt_rr(4096, &[0, 10, 0, 2, 1, 2]))),
        response("example.com", 40, Some(opt_rr(1232, &[]))),
    ];
    let mut rng = Lcg(0xd15);
    let mut stats = PacketStats::default();
    for seed in &seeds {
        for i in 0..3000 {
            let mut m = seed.clone();
            for _ in 0..=rng.below(6) {
                let at = rng.below(m.len());
                m[at] = rng.next() as u8;
            }
            let p = if i % 2 == 0 {
                ipv4_udp(v4("192.0.2.1"), 999, v4("192.0.2.53"), 53, &m)
            } else {
                ipv6_udp(v6("2001:db8::1"), 999, v6("2001:db8::53"), 53, &m)
            };
            exercise(&p, &mut stats);
            let limit = client_udp_payload_limit(&m);
            assert!((512..=MAX_UDP_PAYLOAD_V4).contains(&limit));
            let t = truncate_dns_response(&m, 100);
            if m.len() > 100 {
                assert!(t.len() <= 100);
                assert_eq!(t[2] & 0x02, 0x02);
                assert_eq!(&t[..2], &m[..2]);
            }
        }
    }
    // Each is passed on as a query or, with QR set, dropped as a response.
    assert_eq!(stats.dns_udp + stats.dns_response, 6000);
    assert!(stats.dns_udp > 0 && stats.dns_response > 0, "{stats:?}");
}
