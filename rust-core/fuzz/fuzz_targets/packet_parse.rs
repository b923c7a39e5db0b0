//! Arbitrary bytes as a packet from the TUN device: parsing, classification
//! and both builders must never panic, and what the builders produce must
//! parse back as what was meant.

#![no_main]

use dotcore::packet::{
    build_port_unreachable, build_udp_reply, classify_and_count, parse, IcmpKind, Packet,
    PacketStats,
};
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
});
