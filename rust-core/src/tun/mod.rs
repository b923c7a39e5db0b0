//! The phone's packet path: DNS answered on a TUN device.
//!
//! Android's `VpnService` gives the app a TUN descriptor carrying raw IP
//! packets. The app routes only the virtual DNS addresses ([`crate::net`]) into it and
//! tells the system they are the DNS servers, so every app's DNS query
//! arrives here as an IPv4 or IPv6 packet:
//!
//! * UDP to port 53 of a virtual address: the query is validated by the
//!   packet layer (`packet`: lengths, checksums), resolved, cut to
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
//! The only `unsafe` code of the crate lives in `tun/device.rs` (fcntl and the
//! TUNSETIFF ioctl), each use with its `SAFETY` argument.

#[allow(unsafe_code)]
mod device;
mod dispatch;
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzzing;
mod packet_loop;
mod stack;
mod stats;

pub(crate) use device::TunDevice;
pub(crate) use packet_loop::{run_packet_loop, LoopControl};
pub(crate) use stats::PacketCounters;
pub use stats::PacketPathStats;

#[cfg(target_os = "linux")]
pub use device::open_tun;

/// Largest number of queries being resolved at once for the TUN path;
/// beyond it the device is not read until answers come back.
pub const MAX_IN_FLIGHT: usize = 512;

/// Largest number of simultaneous DNS-over-TCP connections; further SYNs
/// are answered with a reset.
pub const MAX_TCP_CONNECTIONS: usize = 64;

#[cfg(test)]
mod tests;
