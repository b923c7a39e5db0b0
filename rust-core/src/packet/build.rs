//! Building the packets the core writes back into the TUN device.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::checksum::Checksum;
use super::parse::{
    parse, parse_network, IcmpKind, Packet, PacketError, ParsedUdp, IPV4_HEADER_LEN,
    IPV6_HEADER_LEN, PROTO_ICMP, PROTO_ICMPV6, PROTO_UDP, UDP_HEADER_LEN,
};

/// Largest UDP payload an IPv4 reply can carry: the 16-bit total length
/// covers the IPv4 and UDP headers too.
pub const MAX_UDP_PAYLOAD_V4: usize = u16::MAX as usize - IPV4_HEADER_LEN - UDP_HEADER_LEN;

/// Largest UDP payload an IPv6 reply can carry without a jumbogram, which
/// this layer never produces.
pub const MAX_UDP_PAYLOAD_V6: usize = u16::MAX as usize - UDP_HEADER_LEN;

/// RFC 792 / RFC 1812 section 4.3.2.3: an ICMPv4 error must fit in 576 bytes.
const ICMPV4_ERROR_MAX: usize = 576;
/// RFC 4443 section 2.4 (c): an ICMPv6 error must fit in the minimum MTU.
const ICMPV6_ERROR_MAX: usize = 1280;
const ICMP_HEADER_LEN: usize = 8;
const HOP_LIMIT: u8 = 64;

/// Why no packet was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The payload does not fit in one unfragmented datagram.
    PayloadTooLarge {
        /// The payload length asked for.
        len: usize,
        /// The most this address family allows.
        max: usize,
    },
    /// Source and destination are of different IP versions.
    AddressFamilyMismatch,
    /// An address is multicast, broadcast or unspecified, so there is no
    /// single host to answer (or to answer as).
    NotUnicast,
    /// Port unreachable only makes sense for UDP; TCP gets a reset from its
    /// own stack and other protocols get nothing.
    NotUdp,
    /// The packet is itself an ICMP error: answering it could loop forever
    /// (RFC 1122 section 3.2.2, RFC 4443 section 2.4 (e)).
    IcmpError,
    /// A fragment other than the first carries no transport header, so the
    /// quote would identify nothing (RFC 1122 section 3.2.2).
    NonFirstFragment,
    /// The offending packet is not well-formed enough to quote.
    Malformed(PacketError),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PayloadTooLarge { len, max } => {
                write!(f, "payload of {len} bytes exceeds the maximum of {max}")
            }
            Self::AddressFamilyMismatch => f.write_str("source and destination IP versions differ"),
            Self::NotUnicast => f.write_str("address is not a single unicast host"),
            Self::NotUdp => f.write_str("port unreachable answers only UDP"),
            Self::IcmpError => f.write_str("never answer an ICMP error with an ICMP error"),
            Self::NonFirstFragment => f.write_str("only a first fragment may be answered"),
            Self::Malformed(e) => write!(f, "malformed packet: {e}"),
        }
    }
}

impl std::error::Error for BuildError {}

/// Writes into `out` (cleared first, so one buffer can serve every reply)
/// the IP + UDP packet that answers `request` with `payload`.
///
/// Addresses and ports are swapped; TTL/hop limit is 64 and IPv4 sets DF with
/// identification 0 (RFC 6864 allows that for atomic datagrams).
pub fn build_udp_reply(
    request: &ParsedUdp,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), BuildError> {
    let (src, dst) = (request.dst, request.src);
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(BuildError::AddressFamilyMismatch);
    }
    if !is_unicast_host(src.ip()) || !is_unicast_host(dst.ip()) {
        return Err(BuildError::NotUnicast);
    }
    if src.port() == 0 || dst.port() == 0 {
        return Err(BuildError::Malformed(PacketError::ZeroPort));
    }
    let max = if src.is_ipv4() {
        MAX_UDP_PAYLOAD_V4
    } else {
        MAX_UDP_PAYLOAD_V6
    };
    if payload.len() > max {
        return Err(BuildError::PayloadTooLarge {
            len: payload.len(),
            max,
        });
    }
    let udp_len = UDP_HEADER_LEN + payload.len();
    out.clear();
    push_ip_header(out, src.ip(), dst.ip(), PROTO_UDP, udp_len)?;
    out.reserve(udp_len);
    let udp_start = out.len();
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    let udp_len16 = len16(udp_len)?;
    out.extend_from_slice(&udp_len16.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(payload);
    let mut c = Checksum::new();
    c.add_pseudo_header(src.ip(), dst.ip(), PROTO_UDP, u32::from(udp_len16));
    let sum = match c.add(out.get(udp_start..).unwrap_or_default()).finish() {
        // Zero means "no checksum" on the wire; all-ones is the same value.
        0 => 0xffff,
        s => s,
    };
    set_u16(out, udp_start + 6, sum);
    Ok(())
}

/// Writes into `out` (cleared first) the ICMP / ICMPv6 port-unreachable
/// error for `original`, so that an app sending UDP to a port the tunnel
/// does not serve fails at once instead of waiting for a timeout.
///
/// Refuses, per RFC 1122 and RFC 4443, whenever an error must not be sent;
/// rate limiting is left to the caller.
pub fn build_port_unreachable(original: &[u8], out: &mut Vec<u8>) -> Result<(), BuildError> {
    let net = parse_network(original).map_err(BuildError::Malformed)?;
    match &net.fragment {
        Some(frag) if frag.offset != 0 => return Err(BuildError::NonFirstFragment),
        Some(frag) if frag.protocol != PROTO_UDP => return Err(BuildError::NotUdp),
        Some(_) => {}
        None => match parse(original) {
            Packet::Udp(_) => {}
            Packet::Icmp(icmp) if icmp.kind == IcmpKind::Error => {
                return Err(BuildError::IcmpError)
            }
            Packet::Malformed(e) => return Err(BuildError::Malformed(e)),
            _ => return Err(BuildError::NotUdp),
        },
    }
    // The error goes to the original sender, from the address it wrote to.
    let (src, dst) = (net.dst, net.src);
    if !is_unicast_host(src) || !is_unicast_host(dst) {
        return Err(BuildError::NotUnicast);
    }
    let (limit, ip_len, icmp_type, code, protocol) = match src {
        IpAddr::V4(_) => (ICMPV4_ERROR_MAX, IPV4_HEADER_LEN, 3, 3, PROTO_ICMP),
        IpAddr::V6(_) => (ICMPV6_ERROR_MAX, IPV6_HEADER_LEN, 1, 4, PROTO_ICMPV6),
    };
    let quote_len = net.end.min(limit - ip_len - ICMP_HEADER_LEN);
    let quote = original.get(..quote_len).unwrap_or_default();
    let icmp_len = ICMP_HEADER_LEN + quote.len();
    let icmp_len16 = len16(icmp_len)?;

    out.clear();
    push_ip_header(out, src, dst, protocol, icmp_len)?;
    out.reserve(icmp_len);
    let icmp_start = out.len();
    out.extend_from_slice(&[icmp_type, code, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(quote);
    let mut c = Checksum::new();
    if protocol == PROTO_ICMPV6 {
        c.add_pseudo_header(src, dst, protocol, u32::from(icmp_len16));
    }
    let sum = c.add(out.get(icmp_start..).unwrap_or_default()).finish();
    set_u16(out, icmp_start + 2, sum);
    Ok(())
}

/// Whether `ip` names one host that can send or receive a unicast packet.
///
/// Loopback is allowed: a TUN device never carries it, and tests may use it.
pub(super) fn is_unicast_host(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.octets()[0] >= 240),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    }
}

fn len16(len: usize) -> Result<u16, BuildError> {
    u16::try_from(len).map_err(|_| BuildError::PayloadTooLarge {
        len,
        max: usize::from(u16::MAX),
    })
}

fn set_u16(out: &mut [u8], at: usize, v: u16) {
    if let Some(field) = out.get_mut(at..at + 2) {
        field.copy_from_slice(&v.to_be_bytes());
    }
}

/// Appends the IP header for `upper_len` bytes of `protocol`.
fn push_ip_header(
    out: &mut Vec<u8>,
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    upper_len: usize,
) -> Result<(), BuildError> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => push_ipv4_header(out, s, d, protocol, upper_len),
        (IpAddr::V6(s), IpAddr::V6(d)) => push_ipv6_header(out, s, d, protocol, upper_len),
        _ => Err(BuildError::AddressFamilyMismatch),
    }
}

fn push_ipv4_header(
    out: &mut Vec<u8>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    upper_len: usize,
) -> Result<(), BuildError> {
    let total = len16(IPV4_HEADER_LEN + upper_len)?;
    let mut h = [0u8; IPV4_HEADER_LEN];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[6] = 0x40; // DF, offset 0
    h[8] = HOP_LIMIT;
    h[9] = protocol;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let sum = Checksum::new().add(&h).finish();
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    out.extend_from_slice(&h);
    Ok(())
}

fn push_ipv6_header(
    out: &mut Vec<u8>,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    upper_len: usize,
) -> Result<(), BuildError> {
    let payload_len = len16(upper_len)?;
    let mut h = [0u8; IPV6_HEADER_LEN];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&payload_len.to_be_bytes());
    h[6] = next_header;
    h[7] = HOP_LIMIT;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
    out.extend_from_slice(&h);
    Ok(())
}
