//! The packet path's one piece of DNS: how large a reply a UDP client
//! accepts. The message itself is read by [`crate::wire`], the crate's only
//! DNS parser; this adds the UDP bounds.

use super::build::MAX_UDP_PAYLOAD_V4;

/// RFC 6891 §6.2.5: an advertised size below 512 is treated as 512, the
/// size every client accepts (RFC 1035 §2.3.4).
const MIN_UDP_PAYLOAD: usize = 512;

/// The largest DNS response a UDP client can be sent.
///
/// Without EDNS that is 512 bytes; with an OPT record it is the advertised
/// size, raised to 512 (RFC 6891 section 6.2.5) and capped so that the reply
/// fits in one IPv4 UDP datagram. A malformed query gets 512: whatever
/// it advertised cannot be trusted. Callers may lower it further (TUN MTU).
pub fn client_udp_payload_limit(query: &[u8]) -> usize {
    crate::wire::advertised_udp_payload(query)
        .map_or(0, usize::from)
        .clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD_V4)
}
