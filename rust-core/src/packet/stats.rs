//! One decision per tunnel packet, with a count of every decision, so that
//! "why is DNS not working" can be answered from the numbers.

use super::build::{build_port_unreachable, is_unicast_host};
use super::parse::{parse, Packet, PacketError, ParsedTcp, ParsedUdp};

/// The port DNS queries arrive on; everything else is refused.
pub const DNS_PORT: u16 = 53;

/// Counters of what the tunnel saw. Each packet passed to
/// [`classify_and_count`] increments exactly one field, so the fields add up
/// to the number of packets read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PacketStats {
    /// DNS queries over UDP, passed on.
    pub dns_udp: u64,
    /// Dropped: a DNS response (QR set) sent to the DNS port, where only
    /// queries belong. It gets no answer, not even an error: two servers that
    /// each answer the other's error messages would do so forever.
    pub dns_response: u64,
    /// TCP segments to the DNS port, passed on to the TCP stack.
    pub dns_tcp: u64,
    /// UDP to another port, answered with ICMP port unreachable.
    pub icmp_answered: u64,
    /// Dropped: not a well-formed packet (checksum errors excluded).
    pub malformed: u64,
    /// Dropped: a checksum did not verify.
    pub bad_checksum: u64,
    /// Dropped: a fragment (the tunnel does not reassemble).
    pub fragment: u64,
    /// Dropped: TCP, or UDP that could not be answered with ICMP, to a port
    /// other than DNS.
    pub non_dns_port: u64,
    /// Dropped: a multicast, broadcast or unspecified address at either end,
    /// which no reply could be sent to or from.
    pub not_unicast: u64,
    /// Dropped: an ICMP message (ping, errors, neighbour discovery).
    pub icmp: u64,
    /// Dropped: any other IP protocol.
    pub other_protocol: u64,
}

impl PacketStats {
    /// The number of packets classified so far.
    pub fn total(&self) -> u64 {
        [
            self.dns_udp,
            self.dns_response,
            self.dns_tcp,
            self.icmp_answered,
            self.malformed,
            self.bad_checksum,
            self.fragment,
            self.non_dns_port,
            self.not_unicast,
            self.icmp,
            self.other_protocol,
        ]
        .iter()
        .fold(0, |sum, n| sum.saturating_add(*n))
    }
}

/// What the TUN loop should do with a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Resolve the query in the payload and answer with `build_udp_reply`.
    DnsUdp(ParsedUdp),
    /// Feed the segment to the user-space TCP stack.
    DnsTcp(ParsedTcp),
    /// Write the ICMP error now in the caller's buffer back to the tunnel.
    SendIcmp,
    /// Discard the packet; the reason is for logging, already counted.
    Drop(DropReason),
}

/// Why a packet was discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Not a well-formed packet, including checksum failures.
    Malformed(PacketError),
    /// A fragment, which is never reassembled.
    Fragment,
    /// Traffic for a port other than DNS that gets no ICMP answer.
    NonDnsPort,
    /// No single host to answer.
    NotUnicast,
    /// A DNS response where a query belongs.
    DnsResponse,
    /// An ICMP message.
    Icmp,
    /// Another IP protocol, by number.
    OtherProtocol(u8),
}

/// Parses `packet`, decides what to do with it and counts the decision.
///
/// UDP to a port other than [`DNS_PORT`] is answered with ICMP port
/// unreachable, built into `icmp_out` (cleared first), so that apps fail fast
/// instead of timing out; the caller is expected to rate-limit sending it.
pub fn classify_and_count(
    packet: &[u8],
    stats: &mut PacketStats,
    icmp_out: &mut Vec<u8>,
) -> Verdict {
    let (verdict, counter) = match parse(packet) {
        Packet::Udp(udp) if !is_unicast_host(udp.src.ip()) || !is_unicast_host(udp.dst.ip()) => (
            Verdict::Drop(DropReason::NotUnicast),
            &mut stats.not_unicast,
        ),
        Packet::Udp(udp) if udp.dst.port() == DNS_PORT => {
            if crate::wire::is_response(udp.payload(packet)) {
                (
                    Verdict::Drop(DropReason::DnsResponse),
                    &mut stats.dns_response,
                )
            } else {
                (Verdict::DnsUdp(udp), &mut stats.dns_udp)
            }
        }
        Packet::Udp(_) => match build_port_unreachable(packet, icmp_out) {
            Ok(()) => (Verdict::SendIcmp, &mut stats.icmp_answered),
            Err(_) => {
                icmp_out.clear();
                (
                    Verdict::Drop(DropReason::NonDnsPort),
                    &mut stats.non_dns_port,
                )
            }
        },
        Packet::Tcp(tcp) if !is_unicast_host(tcp.src.ip()) || !is_unicast_host(tcp.dst.ip()) => (
            Verdict::Drop(DropReason::NotUnicast),
            &mut stats.not_unicast,
        ),
        Packet::Tcp(tcp) if tcp.dst.port() == DNS_PORT => {
            (Verdict::DnsTcp(tcp), &mut stats.dns_tcp)
        }
        Packet::Tcp(_) => (
            Verdict::Drop(DropReason::NonDnsPort),
            &mut stats.non_dns_port,
        ),
        Packet::Icmp(_) => (Verdict::Drop(DropReason::Icmp), &mut stats.icmp),
        Packet::Fragment(_) => (Verdict::Drop(DropReason::Fragment), &mut stats.fragment),
        Packet::Other(proto) => (
            Verdict::Drop(DropReason::OtherProtocol(proto)),
            &mut stats.other_protocol,
        ),
        Packet::Malformed(e) if e.is_checksum_error() => (
            Verdict::Drop(DropReason::Malformed(e)),
            &mut stats.bad_checksum,
        ),
        Packet::Malformed(e) => (
            Verdict::Drop(DropReason::Malformed(e)),
            &mut stats.malformed,
        ),
    };
    *counter = counter.saturating_add(1);
    verdict
}
