//! The pure packet layer of the TUN path: no I/O, no state beyond counters.
//!
//! On Android the `VpnService` hands the core raw IP packets carrying apps'
//! DNS queries. Anything on the device can write to that tunnel, so every
//! byte is treated as hostile: parsing never panics, never allocates, checks
//! every length against the bytes present, and verifies every checksum.
//!
//! The flow is [`classify_and_count`] for each packet read, then
//! [`client_udp_payload_limit`] / [`truncate_dns_response`] to fit the
//! upstream answer, and [`build_udp_reply`] to frame it for the tunnel.
//! DNS messages themselves are read only by [`crate::wire`].

mod build;
mod checksum;
mod dns;
mod parse;
mod stats;

pub use crate::wire::truncate_dns_response;
pub use build::{
    build_port_unreachable, build_udp_reply, BuildError, MAX_UDP_PAYLOAD_V4, MAX_UDP_PAYLOAD_V6,
};
pub use dns::client_udp_payload_limit;
pub use parse::{
    parse, IcmpKind, Packet, PacketError, ParsedFragment, ParsedIcmp, ParsedTcp, ParsedUdp,
};
pub use stats::{classify_and_count, DropReason, PacketStats, Verdict, DNS_PORT};

#[cfg(test)]
mod tests;
