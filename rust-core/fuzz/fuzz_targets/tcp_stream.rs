//! Hostile apps talking DNS over TCP to the virtual address: the input is a
//! script of steps (craft a segment from one of four clients, inject raw
//! bytes, run the stack, answer a query) played against the same user-space
//! TCP stack the packet loop uses. Crafted segments carry valid checksums
//! and can acknowledge what the stack sent, so the fuzzer gets past the
//! handshake into framing, pipelining, windows, FIN and RST.
//!
//! Checked after every step: nothing panics, every packet the stack emits
//! is a well-formed TCP segment from port 53 of a virtual address, and the
//! socket count stays within its cap.

#![no_main]

use std::net::IpAddr;

use dotcore::internals::packet::{parse, Packet};
use dotcore::internals::tun::TcpPath;
use dotcore::net::{is_virtual_dns, TUN_ADDRESS_V4, TUN_ADDRESS_V6, VIRTUAL_DNS_V4, VIRTUAL_DNS_V6};
use dotcore::tun::MAX_TCP_CONNECTIONS;
use libfuzzer_sys::fuzz_target;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{IpAddress, IpProtocol, IpRepr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber};

/// Steps per input: enough for several connections' lives.
const MAX_STEPS: usize = 512;

/// Reads the script; runs dry as zeros.
struct Script<'a>(&'a [u8]);

impl<'a> Script<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

/// One app's end of a connection, tracking sequence numbers as a real TCP
/// would so its segments land in the window.
struct Client {
    port: u16,
    v6: bool,
    next_seq: u32,
    /// The stack's next sequence number as last seen in its output.
    their_next: u32,
}

impl Client {
    fn addresses(&self) -> (IpAddress, IpAddress) {
        if self.v6 {
            (
                IpAddress::Ipv6(TUN_ADDRESS_V6),
                IpAddress::Ipv6(VIRTUAL_DNS_V6),
            )
        } else {
            (
                IpAddress::Ipv4(TUN_ADDRESS_V4),
                IpAddress::Ipv4(VIRTUAL_DNS_V4),
            )
        }
    }
}

/// An IP packet holding `tcp` from `src` to `dst`, checksums filled in.
fn ip_packet(src: IpAddress, dst: IpAddress, tcp: &TcpRepr<'_>) -> Vec<u8> {
    let caps = ChecksumCapabilities::default();
    let ip = IpRepr::new(src, dst, IpProtocol::Tcp, tcp.buffer_len(), 64);
    let mut buf = vec![0u8; ip.buffer_len()];
    ip.emit(&mut buf[..], &caps);
    let segment = &mut buf[ip.header_len()..];
    tcp.emit(&mut TcpPacket::new_unchecked(segment), &src, &dst, &caps);
    buf
}

/// A segment from `client`, shaped by the script: flags, a small offset
/// from the expected sequence and acknowledgement numbers, a window, and a
/// payload that is either script bytes or a framed DNS-like message.
fn crafted_segment(client: &mut Client, script: &mut Script<'_>) -> Vec<u8> {
    let flags = script.byte();
    let control = match flags & 0x07 {
        1 => TcpControl::Syn,
        2 => TcpControl::Fin,
        3 => TcpControl::Rst,
        4 => TcpControl::Psh,
        _ => TcpControl::None,
    };
    let seq_offset = i32::from(script.byte() as i8);
    let ack_offset = i32::from(script.byte() as i8);
    let window_len = script.u16();
    let mut payload = Vec::new();
    if flags & 0x08 != 0 {
        // A framed message: the length prefix may lie.
        let n = usize::from(script.byte()) * 2;
        let body = script.take(n);
        let stated = if flags & 0x10 != 0 {
            script.u16()
        } else {
            body.len() as u16
        };
        payload.extend_from_slice(&stated.to_be_bytes());
        payload.extend_from_slice(body);
    } else {
        let n = usize::from(script.byte());
        payload.extend_from_slice(script.take(n));
    }
    if control == TcpControl::Syn {
        payload.clear();
    }
    let seq = client.next_seq.wrapping_add_signed(seq_offset);
    let with_ack = flags & 0x20 != 0 || control != TcpControl::Syn;
    let tcp = TcpRepr {
        src_port: client.port,
        dst_port: 53,
        control,
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: with_ack
            .then(|| TcpSeqNumber(client.their_next.wrapping_add_signed(ack_offset) as i32)),
        window_len,
        window_scale: (flags & 0x40 != 0 && control == TcpControl::Syn).then_some(7),
        max_seg_size: (control == TcpControl::Syn).then_some(536),
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &payload,
    };
    let (src, dst) = client.addresses();
    let packet = ip_packet(src, dst, &tcp);
    if seq_offset == 0 {
        let consumed =
            payload.len() as u32 + u32::from(matches!(control, TcpControl::Syn | TcpControl::Fin));
        client.next_seq = client.next_seq.wrapping_add(consumed);
    }
    packet
}

/// Checks what the stack sent and lets the clients learn its sequence
/// numbers from it.
fn check_output(path: &mut TcpPath, clients: &mut [Client]) {
    for packet in path.take_output() {
        let Packet::Tcp(tcp) = parse(&packet) else {
            panic!("the stack emitted a packet that is not valid TCP: {packet:02x?}");
        };
        assert!(is_virtual_dns(tcp.src.ip()), "sent from {}", tcp.src);
        assert_eq!(tcp.src.port(), 53);
        let Some(segment) = packet.get(tcp.segment.clone()) else {
            panic!("segment range outside the packet");
        };
        let header = TcpPacket::new_checked(segment).expect("a parsed segment");
        let mut next = header
            .seq_number()
            .0
            .wrapping_add(header.payload().len() as i32);
        if header.syn() || header.fin() {
            next = next.wrapping_add(1);
        }
        let to_v6 = matches!(tcp.dst.ip(), IpAddr::V6(_));
        if let Some(c) = clients
            .iter_mut()
            .find(|c| c.port == tcp.dst.port() && c.v6 == to_v6)
        {
            c.their_next = next as u32;
        }
    }
    assert!(path.sockets_in_use() <= MAX_TCP_CONNECTIONS);
}

fuzz_target!(|data: &[u8]| {
    let mut script = Script(data);
    let mut path = TcpPath::new();
    let mut clients: Vec<Client> = (0..4u16)
        .map(|i| Client {
            port: 40_000 + i,
            v6: i % 2 == 1,
            next_seq: u32::from(i) * 0x1000_0000,
            their_next: 0,
        })
        .collect();
    let mut queries: Vec<(u64, Vec<u8>)> = Vec::new();
    for _ in 0..MAX_STEPS {
        if script.0.is_empty() {
            break;
        }
        match script.byte() % 6 {
            0 | 1 => {
                let i = usize::from(script.byte()) % clients.len();
                let packet = crafted_segment(&mut clients[i], &mut script);
                path.packet(&packet);
            }
            2 => {
                // Raw bytes: mostly rejected by the packet layer, which is
                // the point (they must be rejected, not crash the stack).
                let n = usize::from(script.u16() % 1600);
                path.packet(script.take(n));
            }
            3 => {
                let budget = usize::from(script.byte() % 32);
                let got = path.service(budget);
                assert!(got.len() <= budget, "more queries than the budget");
                for (_, message) in &got {
                    assert!(!message.is_empty(), "an empty query was framed");
                }
                queries.extend(got);
            }
            4 => {
                if queries.is_empty() {
                    continue;
                }
                let i = usize::from(script.byte()) % queries.len();
                let (conn, query) = queries.swap_remove(i);
                let answer = match script.byte() % 4 {
                    // The query echoed as a response, as a resolver would.
                    0 | 1 => {
                        let mut a = query;
                        if let Some(flags) = a.get_mut(2) {
                            *flags |= 0x80;
                        }
                        a
                    }
                    // Too short to be DNS, or arbitrary bytes.
                    2 => Vec::new(),
                    _ => {
                        let n = usize::from(script.u16() % 4096);
                        script.take(n).to_vec()
                    }
                };
                path.deliver(conn, &answer);
            }
            _ => {
                // A new connection from a client that starts over.
                let i = usize::from(script.byte()) % clients.len();
                clients[i].next_seq = clients[i].next_seq.wrapping_add(0x0100_0000);
            }
        }
        check_output(&mut path, &mut clients);
    }
    // Answer what is left and let the stack flush.
    for (conn, mut answer) in queries.drain(..) {
        if let Some(flags) = answer.get_mut(2) {
            *flags |= 0x80;
        }
        path.deliver(conn, &answer);
    }
    path.service(usize::MAX);
    check_output(&mut path, &mut clients);
    let stats = path.stats();
    assert!(stats.tcp_connections_open <= MAX_TCP_CONNECTIONS as u64);
});
