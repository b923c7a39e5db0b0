//! Counters of the packet path, readable while it runs
//! ([`crate::Engine::packet_stats`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use crate::packet::PacketStats;

/// Live counters shared by the packet loop and its readers.
#[derive(Debug, Default)]
pub(crate) struct PacketCounters {
    pub(crate) classified: Mutex<PacketStats>,
    pub(crate) packets_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) packets_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) udp_answers: AtomicU64,
    pub(crate) udp_truncated: AtomicU64,
    pub(crate) not_virtual: AtomicU64,
    pub(crate) icmp_sent: AtomicU64,
    pub(crate) icmp_rate_limited: AtomicU64,
    pub(crate) tcp_accepted: AtomicU64,
    pub(crate) tcp_refused: AtomicU64,
    pub(crate) tcp_open: AtomicU64,
    pub(crate) tcp_queries: AtomicU64,
    pub(crate) tcp_answers: AtomicU64,
    pub(crate) tcp_bad_frames: AtomicU64,
    pub(crate) unanswerable: AtomicU64,
    pub(crate) read_errors: AtomicU64,
    pub(crate) write_errors: AtomicU64,
    pub(crate) backpressure: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    pub(crate) running: AtomicU64,
}

impl PacketCounters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn set(counter: &AtomicU64, n: u64) {
        counter.store(n, Relaxed);
    }

    pub(crate) fn sub(counter: &AtomicU64, n: u64) {
        // Gauges never go below zero, even if bookkeeping were off by one.
        let _ = counter.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(n)));
    }

    /// Copies the counters.
    pub(crate) fn snapshot(&self) -> PacketPathStats {
        let g = |c: &AtomicU64| c.load(Relaxed);
        PacketPathStats {
            classified: *self.classified.lock().unwrap_or_else(|e| e.into_inner()),
            packets_in: g(&self.packets_in),
            bytes_in: g(&self.bytes_in),
            packets_out: g(&self.packets_out),
            bytes_out: g(&self.bytes_out),
            udp_answers: g(&self.udp_answers),
            udp_truncated: g(&self.udp_truncated),
            not_virtual: g(&self.not_virtual),
            icmp_sent: g(&self.icmp_sent),
            icmp_rate_limited: g(&self.icmp_rate_limited),
            tcp_connections_accepted: g(&self.tcp_accepted),
            tcp_connections_refused: g(&self.tcp_refused),
            tcp_connections_open: g(&self.tcp_open),
            tcp_queries: g(&self.tcp_queries),
            tcp_answers: g(&self.tcp_answers),
            tcp_bad_frames: g(&self.tcp_bad_frames),
            unanswerable: g(&self.unanswerable),
            read_errors: g(&self.read_errors),
            write_errors: g(&self.write_errors),
            backpressure_pauses: g(&self.backpressure),
            queries_in_flight: g(&self.in_flight),
            running: g(&self.running) != 0,
        }
    }
}

/// A point-in-time copy of the packet path's counters.
///
/// `classified` counts every packet read exactly once by what it was; the
/// other fields count what the loop then did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacketPathStats {
    /// Per-packet classification by the packet layer (see
    /// [`PacketStats`]): DNS over UDP/TCP, malformed, bad checksum,
    /// fragment, ICMP, other ports and protocols.
    pub classified: PacketStats,
    /// Packets read from the device.
    pub packets_in: u64,
    /// Bytes read from the device.
    pub bytes_in: u64,
    /// Packets written to the device (answers, TCP segments, ICMP).
    pub packets_out: u64,
    /// Bytes written to the device.
    pub bytes_out: u64,
    /// DNS answers sent over UDP.
    pub udp_answers: u64,
    /// Of those, answers cut to the client's buffer size with TC set.
    pub udp_truncated: u64,
    /// Dropped: DNS (or UDP needing ICMP) to an address that is not a
    /// virtual DNS address (a routing mistake of the host).
    pub not_virtual: u64,
    /// ICMP port unreachable messages sent.
    pub icmp_sent: u64,
    /// ICMP port unreachable messages not sent because of the rate limit.
    pub icmp_rate_limited: u64,
    /// DNS-over-TCP connections accepted.
    pub tcp_connections_accepted: u64,
    /// Connection attempts refused (connection limit reached).
    pub tcp_connections_refused: u64,
    /// DNS-over-TCP connections open now.
    pub tcp_connections_open: u64,
    /// Queries received over TCP.
    pub tcp_queries: u64,
    /// Answers sent over TCP.
    pub tcp_answers: u64,
    /// TCP connections aborted for a zero-length DNS message.
    pub tcp_bad_frames: u64,
    /// Answers that could not be framed (e.g. shorter than a DNS header).
    pub unanswerable: u64,
    /// Failed reads from the device.
    pub read_errors: u64,
    /// Failed writes to the device (packet dropped).
    pub write_errors: u64,
    /// Times the loop stopped reading because [`super::MAX_IN_FLIGHT`]
    /// queries were pending.
    pub backpressure_pauses: u64,
    /// Queries being resolved now.
    pub queries_in_flight: u64,
    /// Whether the packet loop is running.
    pub running: bool,
}

impl PacketPathStats {
    /// Packets read but not answered: every drop reason added up.
    pub fn dropped(&self) -> u64 {
        let c = &self.classified;
        c.malformed
            + c.dns_response
            + c.bad_checksum
            + c.fragment
            + c.non_dns_port
            + c.not_unicast
            + c.icmp
            + c.other_protocol
            + self.not_virtual
    }

    /// The counters as one line of JSON, for `dotcore tun --stats`.
    pub fn to_json(&self) -> String {
        let c = &self.classified;
        format!(
            concat!(
                "{{\"running\":{},\"packets_in\":{},\"bytes_in\":{},\"packets_out\":{},",
                "\"bytes_out\":{},\"dns_udp\":{},\"dns_tcp_segments\":{},\"udp_answers\":{},",
                "\"udp_truncated\":{},\"dropped\":{{\"total\":{},\"dns_response\":{},\"malformed\":{},",
                "\"bad_checksum\":{},\"fragment\":{},\"non_dns_port\":{},\"not_unicast\":{},",
                "\"icmp\":{},\"other_protocol\":{},\"not_virtual\":{}}},",
                "\"icmp_unreachable\":{{\"wanted\":{},\"sent\":{},\"rate_limited\":{}}},",
                "\"tcp\":{{\"accepted\":{},\"refused\":{},\"open\":{},\"queries\":{},",
                "\"answers\":{},\"bad_frames\":{}}},\"unanswerable\":{},\"read_errors\":{},",
                "\"write_errors\":{},\"backpressure_pauses\":{},\"queries_in_flight\":{}}}"
            ),
            self.running,
            self.packets_in,
            self.bytes_in,
            self.packets_out,
            self.bytes_out,
            c.dns_udp,
            c.dns_tcp,
            self.udp_answers,
            self.udp_truncated,
            self.dropped(),
            c.dns_response,
            c.malformed,
            c.bad_checksum,
            c.fragment,
            c.non_dns_port,
            c.not_unicast,
            c.icmp,
            c.other_protocol,
            self.not_virtual,
            c.icmp_answered,
            self.icmp_sent,
            self.icmp_rate_limited,
            self.tcp_connections_accepted,
            self.tcp_connections_refused,
            self.tcp_connections_open,
            self.tcp_queries,
            self.tcp_answers,
            self.tcp_bad_frames,
            self.unanswerable,
            self.read_errors,
            self.write_errors,
            self.backpressure_pauses,
            self.queries_in_flight,
        )
    }
}
