//! The packet path as a synchronous state machine, in the manner of
//! smoltcp: fed one packet from the device, [`Dispatch::on_packet`] says
//! what to do with it, and fed an answer, [`Dispatch::udp_answer`] frames
//! the reply. No I/O, no runtime, no resolving: the loop in
//! [`super::packet_loop`] does those, and the fuzz targets drive this same
//! code directly, so what they fuzz is the dispatch the device sees.

use std::sync::Arc;

use tokio::time::Instant;

use super::stack::TcpStack;
use super::stats::PacketCounters;
use crate::net::is_virtual_dns;
use crate::packet::{
    build_udp_reply, classify_and_count, client_udp_payload_limit, parse, truncate_dns_response,
    DropReason, Packet, PacketStats, ParsedUdp, Verdict,
};

/// ICMP errors per second at most (RFC 1812 section 4.3.2.8, RFC 4443
/// section 2.4 (f) ask for a limit), with a burst of the same size.
const ICMP_PER_SECOND: u32 = 100;

/// Token bucket for ICMP errors.
struct IcmpLimiter {
    tokens: u32,
    refilled: Instant,
}

impl IcmpLimiter {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled);
        let earned = elapsed.as_millis() * u128::from(ICMP_PER_SECOND) / 1000;
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            self.tokens = self.tokens.saturating_add(earned).min(ICMP_PER_SECOND);
            self.refilled = now;
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

/// A UDP query being resolved: where its reply goes and how large the
/// client said it may be (its EDNS size, 512 without).
// Public for the fuzz targets (`internals::tun`), crate-private otherwise.
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpQuery {
    /// The datagram that asked (addresses and ports to swap).
    pub request: ParsedUdp,
    /// The largest DNS payload the client accepts.
    pub limit: usize,
}

/// Why a packet gets nothing back.
// Public for the fuzz targets (`internals::tun`), crate-private otherwise.
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Addressed to something other than the virtual DNS addresses.
    NotVirtual,
    /// Would get an ICMP error, but the rate limit is spent.
    IcmpRateLimited,
    /// Classified as not ours to answer (see [`DropReason`]).
    Classified(DropReason),
}

/// What to do with one packet from the device.
#[derive(Debug)]
pub(super) enum Action<'a> {
    /// Resolve `query`, then hand the answer to [`Dispatch::udp_answer`]
    /// with `reply`.
    Resolve {
        /// The DNS message as the client sent it.
        query: Vec<u8>,
        /// Where and how the answer goes back.
        reply: UdpQuery,
    },
    /// The segment went to the TCP stack, which now wants servicing.
    Tcp,
    /// Write this packet (an ICMP error) to the device.
    Send(&'a [u8]),
    /// Nothing to send.
    Drop(Dropped),
}

/// The packet path's state: classification counts, the ICMP budget, the
/// TCP stack and reused buffers.
pub(crate) struct Dispatch {
    counters: Arc<PacketCounters>,
    pub(super) classified: PacketStats,
    pub(super) tcp: TcpStack,
    icmp: IcmpLimiter,
    /// Reused buffers: the ICMP error the packet layer builds, the reply
    /// being framed.
    icmp_buf: Vec<u8>,
    reply_buf: Vec<u8>,
}

impl Dispatch {
    /// A path with no connections and a full ICMP budget, counting into
    /// `counters` (classification counts start from what it holds).
    pub(crate) fn new(counters: Arc<PacketCounters>) -> Dispatch {
        let classified = *counters
            .classified
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Dispatch {
            counters,
            classified,
            tcp: TcpStack::new(),
            icmp: IcmpLimiter {
                tokens: ICMP_PER_SECOND,
                refilled: Instant::now(),
            },
            icmp_buf: Vec::with_capacity(1280),
            reply_buf: Vec::with_capacity(1500),
        }
    }

    /// Decides what `packet` calls for, feeding TCP segments to the stack.
    pub(crate) fn on_packet(&mut self, packet: &[u8]) -> Action<'_> {
        let counters = &*self.counters;
        PacketCounters::add(&counters.packets_in, 1);
        PacketCounters::add(&counters.bytes_in, packet.len() as u64);
        match classify_and_count(packet, &mut self.classified, &mut self.icmp_buf) {
            Verdict::DnsUdp(udp) => {
                if !is_virtual_dns(udp.dst.ip()) {
                    PacketCounters::add(&counters.not_virtual, 1);
                    return Action::Drop(Dropped::NotVirtual);
                }
                let query = udp.payload(packet).to_vec();
                let limit = client_udp_payload_limit(&query);
                Action::Resolve {
                    query,
                    reply: UdpQuery {
                        request: udp,
                        limit,
                    },
                }
            }
            Verdict::DnsTcp(tcp) => {
                if !is_virtual_dns(tcp.dst.ip()) {
                    PacketCounters::add(&counters.not_virtual, 1);
                    return Action::Drop(Dropped::NotVirtual);
                }
                self.tcp.ingest(packet, &tcp, counters);
                Action::Tcp
            }
            Verdict::SendIcmp => {
                let to_us = match parse(packet) {
                    Packet::Udp(udp) => is_virtual_dns(udp.dst.ip()),
                    Packet::Fragment(f) => is_virtual_dns(f.dst),
                    _ => false,
                };
                if !to_us {
                    PacketCounters::add(&counters.not_virtual, 1);
                    Action::Drop(Dropped::NotVirtual)
                } else if self.icmp.take() {
                    Action::Send(&self.icmp_buf)
                } else {
                    PacketCounters::add(&counters.icmp_rate_limited, 1);
                    Action::Drop(Dropped::IcmpRateLimited)
                }
            }
            Verdict::Drop(reason) => Action::Drop(Dropped::Classified(reason)),
        }
    }

    /// The reply packet carrying `answer` to the client of `query`, cut to
    /// its size with TC set when it does not fit (RFC 1035 §4.2.1); `None`
    /// (counted) when there is nothing that can be sent.
    pub(crate) fn udp_answer(&mut self, query: &UdpQuery, answer: &[u8]) -> Option<&[u8]> {
        let counters = &*self.counters;
        let truncated;
        let answer: &[u8] = if answer.len() <= query.limit {
            answer
        } else {
            truncated = truncate_dns_response(answer, query.limit);
            PacketCounters::add(&counters.udp_truncated, 1);
            &truncated
        };
        if answer.len() < crate::wire::HEADER_LEN {
            PacketCounters::add(&counters.unanswerable, 1);
            return None;
        }
        match build_udp_reply(&query.request, answer, &mut self.reply_buf) {
            Ok(()) => Some(&self.reply_buf),
            Err(e) => {
                log::debug!("cannot frame answer: {e}");
                PacketCounters::add(&counters.unanswerable, 1);
                None
            }
        }
    }

    /// Publishes the classification counts to the shared counters.
    pub(crate) fn publish_classified(&self) {
        if let Ok(mut c) = self.counters.classified.lock() {
            *c = self.classified;
        }
    }
}
