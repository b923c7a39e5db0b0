//! Classifying raw IP packets read from the TUN device.
//!
//! Every length and offset here comes from an untrusted app (or from whatever
//! else can write to the tunnel), so every field is checked against the bytes
//! actually present before it is used, and nothing allocates.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::ops::Range;

use super::checksum::{verifies, Checksum};

pub(super) const PROTO_ICMP: u8 = 1;
pub(super) const PROTO_TCP: u8 = 6;
pub(super) const PROTO_UDP: u8 = 17;
pub(super) const PROTO_ICMPV6: u8 = 58;

const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_DEST_OPTS: u8 = 60;

/// More than any sane stack sends (RFC 8200 section 4.1 allows each header
/// once, destination options twice); past it a chain is an attack, not traffic.
const MAX_IPV6_EXTENSION_HEADERS: usize = 8;

pub(super) const IPV4_HEADER_LEN: usize = 20;
pub(super) const IPV6_HEADER_LEN: usize = 40;
pub(super) const UDP_HEADER_LEN: usize = 8;

/// What one packet from the tunnel turned out to be.
///
/// The TUN loop needs a decision per packet, and which decision depends on
/// more than the protocol number, so parsing answers with the whole picture
/// rather than a pass/fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// A whole, checksum-verified UDP datagram: the only way a DNS query
    /// over UDP can arrive.
    Udp(ParsedUdp),
    /// A checksum-verified TCP segment, left for the user-space TCP stack.
    Tcp(ParsedTcp),
    /// A checksum-verified ICMP or ICMPv6 message of the matching IP version.
    Icmp(ParsedIcmp),
    /// Part of a fragmented datagram. The core does not reassemble (DNS
    /// queries never need it), so these can only be counted and dropped.
    Fragment(ParsedFragment),
    /// A valid IP packet carrying a protocol the core has no use for.
    Other(u8),
    /// Bytes that are not a well-formed packet, and the first reason found.
    Malformed(PacketError),
}

/// A UDP datagram, with offsets into the packet it was parsed from so that
/// the payload can be borrowed without copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUdp {
    /// The app's address: replies go here.
    pub src: SocketAddr,
    /// The address the app sent to: replies come from here.
    pub dst: SocketAddr,
    /// Where the UDP payload lies in the parsed packet.
    pub payload: Range<usize>,
}

impl ParsedUdp {
    /// Borrows the payload, given the very packet this was parsed from; with
    /// any other buffer the result may be empty rather than a panic.
    pub fn payload<'a>(&self, packet: &'a [u8]) -> &'a [u8] {
        packet.get(self.payload.clone()).unwrap_or_default()
    }
}

/// A TCP segment: the addresses for demultiplexing and the bytes for the
/// user-space stack, which does its own header processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedTcp {
    /// The app's end of the connection.
    pub src: SocketAddr,
    /// The end the app connected to.
    pub dst: SocketAddr,
    /// Where the whole TCP segment (header included) lies in the packet.
    pub segment: Range<usize>,
}

/// An ICMP (IPv4) or ICMPv6 (IPv6) message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedIcmp {
    /// Sender of the message.
    pub src: IpAddr,
    /// Receiver of the message.
    pub dst: IpAddr,
    /// Coarse meaning, so callers need not know both type number spaces.
    pub kind: IcmpKind,
    /// The raw type number, for logging.
    pub icmp_type: u8,
    /// The raw code, for logging.
    pub code: u8,
    /// Where the whole ICMP message (header included) lies in the packet.
    pub message: Range<usize>,
}

/// The classes of ICMP message that call for different handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpKind {
    /// Echo request (ping).
    EchoRequest,
    /// Echo reply.
    EchoReply,
    /// An error report: never to be answered with another error.
    Error,
    /// Anything else (neighbour discovery, router solicitation, ...).
    Other,
}

/// A fragment of a larger datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedFragment {
    /// Sender of the datagram.
    pub src: IpAddr,
    /// Receiver of the datagram.
    pub dst: IpAddr,
    /// The protocol of the whole datagram (for IPv6, the header after the
    /// fragment header).
    pub protocol: u8,
    /// Offset of this fragment's data within the datagram, in bytes; zero for
    /// the first fragment, the only one that may be answered with ICMP.
    pub offset: u16,
    /// Whether more fragments follow this one.
    pub more_fragments: bool,
    /// The datagram identification shared by all its fragments.
    pub id: u32,
}

/// Why a packet was rejected as malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PacketError {
    /// The packet contains no bytes at all.
    Empty,
    /// The version nibble is neither 4 nor 6.
    UnknownIpVersion(u8),
    /// Fewer bytes than the IPv4 header needs.
    Ipv4Truncated,
    /// IHL below 5 words.
    Ipv4BadHeaderLength,
    /// The total-length field is smaller than the header.
    Ipv4TotalLengthTooShort,
    /// The total-length field claims more bytes than were received.
    Ipv4TotalLengthExceedsPacket,
    /// The IPv4 header checksum does not verify.
    BadIpv4Checksum,
    /// Fewer bytes than the fixed IPv6 header.
    Ipv6Truncated,
    /// The payload-length field claims more bytes than were received.
    Ipv6PayloadLengthExceedsPacket,
    /// A zero payload length with hop-by-hop options: a jumbogram, which a
    /// TUN device never carries and this parser does not support.
    Ipv6Jumbogram,
    /// An extension header runs past the end of the payload.
    Ipv6ExtensionHeaderTruncated,
    /// More extension headers than any legitimate sender uses.
    Ipv6TooManyExtensionHeaders,
    /// A hop-by-hop options header not directly after the fixed header.
    Ipv6MisplacedHopByHop,
    /// A routing header with segments left: the addresses (and so the
    /// checksums) are not final yet, and this node does not forward.
    Ipv6UnfinishedRoutingHeader,
    /// Fewer bytes than the UDP header.
    UdpTruncated,
    /// The UDP length field disagrees with the IP payload length.
    UdpLengthMismatch,
    /// The UDP checksum does not verify.
    BadUdpChecksum,
    /// An IPv6 UDP datagram without checksum, which RFC 8200 forbids.
    MissingUdpChecksum,
    /// A TCP or UDP port of zero, to or from which nothing can be sent.
    ZeroPort,
    /// Fewer bytes than the TCP header.
    TcpTruncated,
    /// The TCP data offset is below 5 words or beyond the segment.
    TcpBadDataOffset,
    /// The TCP checksum does not verify.
    BadTcpChecksum,
    /// Fewer bytes than an ICMP header.
    IcmpTruncated,
    /// The ICMP or ICMPv6 checksum does not verify.
    BadIcmpChecksum,
}

impl PacketError {
    /// Bad checksums usually mean corruption or a buggy sender rather than
    /// a crafted packet, so statistics keep them apart.
    pub fn is_checksum_error(&self) -> bool {
        matches!(
            self,
            Self::BadIpv4Checksum
                | Self::BadUdpChecksum
                | Self::MissingUdpChecksum
                | Self::BadTcpChecksum
                | Self::BadIcmpChecksum
        )
    }
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Empty => "empty packet",
            Self::UnknownIpVersion(v) => return write!(f, "unknown IP version {v}"),
            Self::Ipv4Truncated => "IPv4 header truncated",
            Self::Ipv4BadHeaderLength => "IPv4 header length below 20 bytes",
            Self::Ipv4TotalLengthTooShort => "IPv4 total length smaller than its header",
            Self::Ipv4TotalLengthExceedsPacket => "IPv4 total length exceeds the packet",
            Self::BadIpv4Checksum => "bad IPv4 header checksum",
            Self::Ipv6Truncated => "IPv6 header truncated",
            Self::Ipv6PayloadLengthExceedsPacket => "IPv6 payload length exceeds the packet",
            Self::Ipv6Jumbogram => "IPv6 jumbograms are not supported",
            Self::Ipv6ExtensionHeaderTruncated => "IPv6 extension header truncated",
            Self::Ipv6TooManyExtensionHeaders => "too many IPv6 extension headers",
            Self::Ipv6MisplacedHopByHop => "IPv6 hop-by-hop header not first",
            Self::Ipv6UnfinishedRoutingHeader => "IPv6 routing header with segments left",
            Self::UdpTruncated => "UDP header truncated",
            Self::UdpLengthMismatch => "UDP length disagrees with the IP payload length",
            Self::BadUdpChecksum => "bad UDP checksum",
            Self::MissingUdpChecksum => "IPv6 UDP datagram without checksum",
            Self::ZeroPort => "port zero",
            Self::TcpTruncated => "TCP header truncated",
            Self::TcpBadDataOffset => "TCP data offset out of range",
            Self::BadTcpChecksum => "bad TCP checksum",
            Self::IcmpTruncated => "ICMP header truncated",
            Self::BadIcmpChecksum => "bad ICMP checksum",
        };
        f.write_str(s)
    }
}

impl std::error::Error for PacketError {}

/// Parses one packet as read from the TUN device (no link-layer header).
///
/// Never panics and never allocates, whatever the bytes; trailing bytes past
/// the IP length field are ignored, as a kernel would.
pub fn parse(packet: &[u8]) -> Packet {
    let net = match parse_network(packet) {
        Ok(net) => net,
        Err(e) => return Packet::Malformed(e),
    };
    if let Some(frag) = net.fragment {
        return Packet::Fragment(frag);
    }
    let result = match (net.protocol, net.src) {
        (PROTO_UDP, _) => parse_udp(packet, &net).map(Packet::Udp),
        (PROTO_TCP, _) => parse_tcp(packet, &net).map(Packet::Tcp),
        (PROTO_ICMP, IpAddr::V4(_)) | (PROTO_ICMPV6, IpAddr::V6(_)) => {
            parse_icmp(packet, &net).map(Packet::Icmp)
        }
        (other, _) => Ok(Packet::Other(other)),
    };
    result.unwrap_or_else(Packet::Malformed)
}

/// The network-layer facts shared by parsing and the ICMP error builder.
#[derive(Debug)]
pub(super) struct Network {
    pub(super) src: IpAddr,
    pub(super) dst: IpAddr,
    /// Upper-layer protocol (for IPv6, after the extension headers walked).
    pub(super) protocol: u8,
    /// The upper-layer bytes of an unfragmented packet.
    pub(super) transport: Range<usize>,
    /// One past the last byte the IP header accounts for.
    pub(super) end: usize,
    /// Set when the packet is a (non-atomic) fragment.
    pub(super) fragment: Option<ParsedFragment>,
}

pub(super) fn parse_network(packet: &[u8]) -> Result<Network, PacketError> {
    let first = *packet.first().ok_or(PacketError::Empty)?;
    match first >> 4 {
        4 => parse_ipv4(packet),
        6 => parse_ipv6(packet),
        v => Err(PacketError::UnknownIpVersion(v)),
    }
}

fn parse_ipv4(packet: &[u8]) -> Result<Network, PacketError> {
    let h = packet
        .first_chunk::<IPV4_HEADER_LEN>()
        .ok_or(PacketError::Ipv4Truncated)?;
    let header_len = usize::from(h[0] & 0x0f) * 4;
    if header_len < IPV4_HEADER_LEN {
        return Err(PacketError::Ipv4BadHeaderLength);
    }
    let header = packet.get(..header_len).ok_or(PacketError::Ipv4Truncated)?;
    let total_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if total_len < header_len {
        return Err(PacketError::Ipv4TotalLengthTooShort);
    }
    if total_len > packet.len() {
        return Err(PacketError::Ipv4TotalLengthExceedsPacket);
    }
    if !verifies(&mut Checksum::new(), header) {
        return Err(PacketError::BadIpv4Checksum);
    }
    let src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
    let protocol = h[9];
    let flags_offset = u16::from_be_bytes([h[6], h[7]]);
    let more_fragments = flags_offset & 0x2000 != 0;
    // 13 bits of 8-byte units: at most 65528, which fits.
    let offset = (flags_offset & 0x1fff) * 8;
    let fragment = (more_fragments || offset != 0).then(|| ParsedFragment {
        src,
        dst,
        protocol,
        offset,
        more_fragments,
        id: u32::from(u16::from_be_bytes([h[4], h[5]])),
    });
    Ok(Network {
        src,
        dst,
        protocol,
        transport: header_len..total_len,
        end: total_len,
        fragment,
    })
}

fn parse_ipv6(packet: &[u8]) -> Result<Network, PacketError> {
    let h = packet
        .first_chunk::<IPV6_HEADER_LEN>()
        .ok_or(PacketError::Ipv6Truncated)?;
    let payload_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let mut next = h[6];
    if payload_len == 0 && next == IPV6_HOP_BY_HOP {
        return Err(PacketError::Ipv6Jumbogram);
    }
    let end = IPV6_HEADER_LEN + payload_len;
    if end > packet.len() {
        return Err(PacketError::Ipv6PayloadLengthExceedsPacket);
    }
    let src = IpAddr::V6(ipv6_at(h, 8));
    let dst = IpAddr::V6(ipv6_at(h, 24));
    // `end` is within the packet, so the payload slice always exists.
    let payload_area = packet.get(..end).unwrap_or_default();

    let mut offset = IPV6_HEADER_LEN;
    let mut seen = 0;
    let mut fragment = None;
    loop {
        if !matches!(
            next,
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS | IPV6_FRAGMENT
        ) {
            break;
        }
        seen += 1;
        if seen > MAX_IPV6_EXTENSION_HEADERS {
            return Err(PacketError::Ipv6TooManyExtensionHeaders);
        }
        if next == IPV6_HOP_BY_HOP && offset != IPV6_HEADER_LEN {
            return Err(PacketError::Ipv6MisplacedHopByHop);
        }
        let ext = payload_area
            .get(offset..)
            .and_then(|rest| rest.first_chunk::<8>())
            .ok_or(PacketError::Ipv6ExtensionHeaderTruncated)?;
        let this = next;
        next = ext[0];
        if this == IPV6_FRAGMENT {
            offset += 8;
            let field = u16::from_be_bytes([ext[2], ext[3]]);
            // The 13-bit offset sits in the top bits, already scaled by 8.
            let frag_offset = field & 0xfff8;
            let more_fragments = field & 1 != 0;
            if frag_offset != 0 || more_fragments {
                fragment = Some(ParsedFragment {
                    src,
                    dst,
                    protocol: next,
                    offset: frag_offset,
                    more_fragments,
                    id: u32::from_be_bytes([ext[4], ext[5], ext[6], ext[7]]),
                });
                break;
            }
            // An atomic fragment is a whole datagram (RFC 6946): keep going.
            continue;
        }
        let len = (usize::from(ext[1]) + 1) * 8;
        if offset + len > end {
            return Err(PacketError::Ipv6ExtensionHeaderTruncated);
        }
        if this == IPV6_ROUTING && ext[3] != 0 {
            return Err(PacketError::Ipv6UnfinishedRoutingHeader);
        }
        offset += len;
    }
    Ok(Network {
        src,
        dst,
        protocol: next,
        transport: offset..end,
        end,
        fragment,
    })
}

/// Reads the address at `at`; callers pass offsets inside the fixed header.
fn ipv6_at(header: &[u8], at: usize) -> Ipv6Addr {
    header
        .get(at..)
        .and_then(|rest| rest.first_chunk::<16>())
        .map_or(Ipv6Addr::UNSPECIFIED, |octets| Ipv6Addr::from(*octets))
}

fn socket(ip: IpAddr, port: u16) -> SocketAddr {
    match ip {
        IpAddr::V4(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
        IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, 0)),
    }
}

fn upper_len(range: &Range<usize>) -> u32 {
    // IP length fields are 16 bits, so this never saturates in practice.
    u32::try_from(range.len()).unwrap_or(u32::MAX)
}

fn parse_udp(packet: &[u8], net: &Network) -> Result<ParsedUdp, PacketError> {
    let seg = packet
        .get(net.transport.clone())
        .ok_or(PacketError::UdpTruncated)?;
    let h = seg
        .first_chunk::<UDP_HEADER_LEN>()
        .ok_or(PacketError::UdpTruncated)?;
    let src_port = u16::from_be_bytes([h[0], h[1]]);
    let dst_port = u16::from_be_bytes([h[2], h[3]]);
    let udp_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let checksum = u16::from_be_bytes([h[6], h[7]]);
    if udp_len != seg.len() {
        return Err(PacketError::UdpLengthMismatch);
    }
    if checksum == 0 {
        if net.src.is_ipv6() {
            return Err(PacketError::MissingUdpChecksum);
        }
    } else {
        let mut c = Checksum::new();
        c.add_pseudo_header(net.src, net.dst, PROTO_UDP, upper_len(&net.transport));
        if !verifies(&mut c, seg) {
            return Err(PacketError::BadUdpChecksum);
        }
    }
    if src_port == 0 || dst_port == 0 {
        return Err(PacketError::ZeroPort);
    }
    Ok(ParsedUdp {
        src: socket(net.src, src_port),
        dst: socket(net.dst, dst_port),
        payload: net.transport.start + UDP_HEADER_LEN..net.transport.end,
    })
}

fn parse_tcp(packet: &[u8], net: &Network) -> Result<ParsedTcp, PacketError> {
    let seg = packet
        .get(net.transport.clone())
        .ok_or(PacketError::TcpTruncated)?;
    let h = seg.first_chunk::<20>().ok_or(PacketError::TcpTruncated)?;
    let data_offset = usize::from(h[12] >> 4) * 4;
    if data_offset < 20 || data_offset > seg.len() {
        return Err(PacketError::TcpBadDataOffset);
    }
    let mut c = Checksum::new();
    c.add_pseudo_header(net.src, net.dst, PROTO_TCP, upper_len(&net.transport));
    if !verifies(&mut c, seg) {
        return Err(PacketError::BadTcpChecksum);
    }
    let src_port = u16::from_be_bytes([h[0], h[1]]);
    let dst_port = u16::from_be_bytes([h[2], h[3]]);
    if src_port == 0 || dst_port == 0 {
        return Err(PacketError::ZeroPort);
    }
    Ok(ParsedTcp {
        src: socket(net.src, src_port),
        dst: socket(net.dst, dst_port),
        segment: net.transport.clone(),
    })
}

fn parse_icmp(packet: &[u8], net: &Network) -> Result<ParsedIcmp, PacketError> {
    let msg = packet
        .get(net.transport.clone())
        .ok_or(PacketError::IcmpTruncated)?;
    let h = msg.first_chunk::<8>().ok_or(PacketError::IcmpTruncated)?;
    let mut c = Checksum::new();
    if net.src.is_ipv6() {
        c.add_pseudo_header(net.src, net.dst, PROTO_ICMPV6, upper_len(&net.transport));
    }
    if !verifies(&mut c, msg) {
        return Err(PacketError::BadIcmpChecksum);
    }
    let (icmp_type, code) = (h[0], h[1]);
    let kind = if net.src.is_ipv6() {
        match icmp_type {
            128 => IcmpKind::EchoRequest,
            129 => IcmpKind::EchoReply,
            0..=127 => IcmpKind::Error,
            _ => IcmpKind::Other,
        }
    } else {
        match icmp_type {
            8 => IcmpKind::EchoRequest,
            0 => IcmpKind::EchoReply,
            3 | 4 | 5 | 11 | 12 => IcmpKind::Error,
            _ => IcmpKind::Other,
        }
    };
    Ok(ParsedIcmp {
        src: net.src,
        dst: net.dst,
        kind,
        icmp_type,
        code,
        message: net.transport.clone(),
    })
}
