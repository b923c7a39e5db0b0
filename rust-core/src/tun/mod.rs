//! The phone's packet path: DNS answered on a TUN device.
//!
//! Android's `VpnService` gives the app a TUN descriptor carrying raw IP
//! packets. The app routes only the virtual DNS addresses below into it and
//! tells the system they are the DNS servers, so every app's DNS query
//! arrives here as an IPv4 or IPv6 packet:
//!
//! * UDP to port 53 of a virtual address: the query is validated by the
//!   packet layer ([`crate::packet`]: lengths, checksums), resolved, cut to
//!   the client's EDNS buffer size (512 bytes without EDNS) with TC set when
//!   it does not fit, and written back with swapped addresses and fresh
//!   checksums.
//! * TCP to port 53 of a virtual address: handed to a user-space TCP stack
//!   (smoltcp), framed per RFC 1035 section 4.2.2, pipelined, answers in
//!   completion order (RFC 7766).
//! * A DNS response (QR set) to port 53: counted and dropped, never
//!   answered, so that no exchange of error messages can start.
//! * Anything else: counted and dropped, or, for UDP to another port,
//!   answered with a rate-limited ICMP port unreachable.
//!
//! Memory is bounded: at most [`MAX_IN_FLIGHT`] queries are being resolved
//! at once; when that many are pending the loop stops reading the device,
//! so a slow upstream pushes back on the kernel's queue (which drops), never
//! on an unbounded queue of ours. TCP connections, their buffers and the
//! pipelining depth per connection are capped too.
//!
//! The only `unsafe` code of the crate lives in [`device`] (fcntl and the
//! TUNSETIFF ioctl), each use with its `SAFETY` argument.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[allow(unsafe_code)]
mod device;
mod dispatch;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod packet_loop;
mod stack;
mod stats;

pub(crate) use device::TunDevice;
pub(crate) use packet_loop::run_packet_loop;
pub(crate) use stats::PacketCounters;
pub use stats::PacketPathStats;

#[cfg(target_os = "linux")]
pub use device::open_tun;

/// The IPv4 address apps send DNS queries to: the TUN's only IPv4 route.
/// In 10.0.0.0/8 (RFC 1918) so it is never a real server's address; the
/// host must not use it on any other interface.
pub const VIRTUAL_DNS_V4: Ipv4Addr = Ipv4Addr::new(10, 111, 222, 3);

/// The IPv6 address apps send DNS queries to: the TUN's only IPv6 route.
/// In a unique local prefix (RFC 4193, fd00::/8).
pub const VIRTUAL_DNS_V6: Ipv6Addr = Ipv6Addr::new(0xfd64, 0xd07c, 0, 1, 0, 0, 0, 0x53);

/// The address the host gives the TUN interface itself (IPv4, prefix
/// [`TUN_PREFIX_V4`]): queries come from it.
pub const TUN_ADDRESS_V4: Ipv4Addr = Ipv4Addr::new(10, 111, 222, 1);

/// The prefix length of [`TUN_ADDRESS_V4`]: only the interface's own address.
pub const TUN_PREFIX_V4: u8 = 32;

/// The address the host gives the TUN interface itself (IPv6, prefix
/// [`TUN_PREFIX_V6`]).
pub const TUN_ADDRESS_V6: Ipv6Addr = Ipv6Addr::new(0xfd64, 0xd07c, 0, 1, 0, 0, 0, 1);

/// The prefix length of [`TUN_ADDRESS_V6`].
pub const TUN_PREFIX_V6: u8 = 128;

/// Largest number of queries being resolved at once for the TUN path;
/// beyond it the device is not read until answers come back.
pub const MAX_IN_FLIGHT: usize = 512;

/// Largest number of simultaneous DNS-over-TCP connections; further SYNs
/// are answered with a reset.
pub const MAX_TCP_CONNECTIONS: usize = 64;

/// Whether `ip` is one of the virtual DNS addresses.
pub fn is_virtual_dns(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a == VIRTUAL_DNS_V4,
        IpAddr::V6(a) => a == VIRTUAL_DNS_V6,
    }
}

#[cfg(test)]
mod tests;
