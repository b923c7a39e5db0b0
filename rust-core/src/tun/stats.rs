//! Counters of the packet path, readable while it runs
//! ([`crate::Engine::packet_stats`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use serde::ser::SerializeStruct as _;
use serde::{Serialize, Serializer};

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

    /// The counters as one line of JSON, for `dotcore tun --stats` (the
    /// keys are those of the [`Serialize`] impl).
    pub fn to_json(&self) -> String {
        crate::stats::to_json_line(self)
    }
}

/// The JSON shape `dotcore tun --stats` prints and the simulator's tests
/// read: traffic flat, drops, ICMP and TCP each grouped.
impl Serialize for PacketPathStats {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let c = &self.classified;
        let dropped = Dropped {
            total: self.dropped(),
            dns_response: c.dns_response,
            malformed: c.malformed,
            bad_checksum: c.bad_checksum,
            fragment: c.fragment,
            non_dns_port: c.non_dns_port,
            not_unicast: c.not_unicast,
            icmp: c.icmp,
            other_protocol: c.other_protocol,
            not_virtual: self.not_virtual,
        };
        let icmp_unreachable = IcmpUnreachable {
            wanted: c.icmp_answered,
            sent: self.icmp_sent,
            rate_limited: self.icmp_rate_limited,
        };
        let tcp = Tcp {
            accepted: self.tcp_connections_accepted,
            refused: self.tcp_connections_refused,
            open: self.tcp_connections_open,
            queries: self.tcp_queries,
            answers: self.tcp_answers,
            bad_frames: self.tcp_bad_frames,
        };
        let mut out = serializer.serialize_struct("PacketPathStats", 17)?;
        out.serialize_field("running", &self.running)?;
        out.serialize_field("packets_in", &self.packets_in)?;
        out.serialize_field("bytes_in", &self.bytes_in)?;
        out.serialize_field("packets_out", &self.packets_out)?;
        out.serialize_field("bytes_out", &self.bytes_out)?;
        out.serialize_field("dns_udp", &c.dns_udp)?;
        out.serialize_field("dns_tcp_segments", &c.dns_tcp)?;
        out.serialize_field("udp_answers", &self.udp_answers)?;
        out.serialize_field("udp_truncated", &self.udp_truncated)?;
        out.serialize_field("dropped", &dropped)?;
        out.serialize_field("icmp_unreachable", &icmp_unreachable)?;
        out.serialize_field("tcp", &tcp)?;
        out.serialize_field("unanswerable", &self.unanswerable)?;
        out.serialize_field("read_errors", &self.read_errors)?;
        out.serialize_field("write_errors", &self.write_errors)?;
        out.serialize_field("backpressure_pauses", &self.backpressure_pauses)?;
        out.serialize_field("queries_in_flight", &self.queries_in_flight)?;
        out.end()
    }
}

/// The `dropped` object: packets read and not answered, by reason.
#[derive(Serialize)]
struct Dropped {
    total: u64,
    dns_response: u64,
    malformed: u64,
    bad_checksum: u64,
    fragment: u64,
    non_dns_port: u64,
    not_unicast: u64,
    icmp: u64,
    other_protocol: u64,
    not_virtual: u64,
}

/// The `icmp_unreachable` object: port-unreachable replies wanted, sent
/// and held back by the rate limit.
#[derive(Serialize)]
struct IcmpUnreachable {
    wanted: u64,
    sent: u64,
    rate_limited: u64,
}

/// The `tcp` object: DNS over TCP on the device.
#[derive(Serialize)]
struct Tcp {
    accepted: u64,
    refused: u64,
    open: u64,
    queries: u64,
    answers: u64,
    bad_frames: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every counter a distinct value, so a field serialised under the
    /// wrong key or from the wrong counter shows.
    fn distinct() -> PacketPathStats {
        PacketPathStats {
            classified: PacketStats {
                dns_udp: 1,
                dns_response: 2,
                dns_tcp: 3,
                icmp_answered: 4,
                malformed: 5,
                bad_checksum: 6,
                fragment: 7,
                non_dns_port: 8,
                not_unicast: 9,
                icmp: 10,
                other_protocol: 11,
            },
            packets_in: 12,
            bytes_in: 13,
            packets_out: 14,
            bytes_out: 15,
            udp_answers: 16,
            udp_truncated: 17,
            not_virtual: 18,
            icmp_sent: 19,
            icmp_rate_limited: 20,
            tcp_connections_accepted: 21,
            tcp_connections_refused: 22,
            tcp_connections_open: 23,
            tcp_queries: 24,
            tcp_answers: 25,
            tcp_bad_frames: 26,
            unanswerable: 27,
            read_errors: 28,
            write_errors: 29,
            backpressure_pauses: 30,
            queries_in_flight: 31,
            running: true,
        }
    }

    #[test]
    fn the_json_has_the_keys_scripts_read_each_from_its_counter() {
        let expected = concat!(
            r#"{"running":true,"packets_in":12,"bytes_in":13,"packets_out":14,"bytes_out":15,"#,
            r#""dns_udp":1,"dns_tcp_segments":3,"udp_answers":16,"udp_truncated":17,"#,
            r#""dropped":{"total":76,"dns_response":2,"malformed":5,"bad_checksum":6,"#,
            r#""fragment":7,"non_dns_port":8,"not_unicast":9,"icmp":10,"other_protocol":11,"#,
            r#""not_virtual":18},"icmp_unreachable":{"wanted":4,"sent":19,"rate_limited":20},"#,
            r#""tcp":{"accepted":21,"refused":22,"open":23,"queries":24,"answers":25,"#,
            r#""bad_frames":26},"unanswerable":27,"read_errors":28,"write_errors":29,"#,
            r#""backpressure_pauses":30,"queries_in_flight":31}"#
        );
        assert_eq!(distinct().to_json(), expected);
    }
}
