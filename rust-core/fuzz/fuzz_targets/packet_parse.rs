//! Arbitrary bytes as a packet from the TUN device: parsing, classification
//! and both builders must never panic, and what the builders produce must
//! parse back as what was meant. The packet then goes through the packet
//! loop's own dispatch (`tun::fuzzing::PacketPath`, the same `Dispatch` the
//! device loop drives): a query to resolve is answered with itself as a
//! response, and with an answer too large for the client, and each reply
//! must go back as valid UDP within the client's size.

#![no_main]

use dotcore::internals::packet::{
    build_port_unreachable, build_udp_reply, classify_and_count, parse, IcmpKind, Packet,
    PacketStats,
};
use dotcore::internals::tun::{Handled, PacketPath};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    if let Packet::Udp(request) = parse(data) {
        let payload = request.payload(data);
        if build_udp_reply(&request, payload, &mut out).is_ok() {
            match parse(&out) {
                Packet::Udp(reply) => {
                    assert_eq!(reply.src, request.dst);
                    assert_eq!(reply.dst, request.src);
                    assert_eq!(reply.payload(&out), payload);
                }
                other => panic!("reply does not parse back as UDP: {other:?}"),
            }
        }
    }

    if build_port_unreachable(data, &mut out).is_ok() {
        assert!(out.len() <= 1280, "ICMP error of {} bytes", out.len());
        match parse(&out) {
            Packet::Icmp(icmp) => assert_eq!(icmp.kind, IcmpKind::Error),
            other => panic!("ICMP error does not parse back: {other:?}"),
        }
    }

    let mut stats = PacketStats::default();
    classify_and_count(data, &mut stats, &mut out);
    assert_eq!(stats.total(), 1);

    let mut path = PacketPath::new();
    match path.packet(data) {
        Handled::Resolve { query, reply } => {
            assert!(reply.limit >= 512);
            let mut echo = query.clone();
            if let Some(flags) = echo.get_mut(2) {
                *flags |= 0x80;
            }
            let mut oversized = echo.clone();
            oversized.resize(reply.limit + 1, 0);
            for answer in [echo, oversized] {
                let Some(packet) = path.udp_answer(&reply, &answer) else {
                    continue;
                };
                match parse(&packet) {
                    Packet::Udp(udp) => {
                        assert_eq!(udp.src, reply.request.dst);
                        assert_eq!(udp.dst, reply.request.src);
                        assert!(udp.payload(&packet).len() <= reply.limit);
                    }
                    other => panic!("answer does not parse back as UDP: {other:?}"),
                }
            }
        }
        Handled::Send(icmp) => match parse(&icmp) {
            Packet::Icmp(icmp) => assert_eq!(icmp.kind, IcmpKind::Error),
            other => panic!("ICMP error does not parse back: {other:?}"),
        },
        Handled::Tcp | Handled::Drop(_) => {}
    }
    assert_eq!(path.stats().packets_in, 1);
    assert_eq!(path.stats().classified.total(), 1);
});
