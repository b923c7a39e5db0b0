//! The DNS-over-TCP path without a device or a runtime, for the fuzz
//! targets (feature `fuzzing`). Packets go through the same classification
//! and the same user-space stack as in the packet loop; resolving is left
//! to the caller, who hands back whatever answer it likes.
//!
//! Not part of the supported API: it exists so that `rust-core/fuzz` can
//! reach crate-private code.

use super::stack::{TcpQuery, TcpStack};
use super::{is_virtual_dns, PacketCounters, PacketPathStats};
use crate::packet::{classify_and_count, PacketStats, Verdict};

/// The TCP half of the packet loop, driven by hand.
pub struct TcpPath {
    stack: TcpStack,
    counters: PacketCounters,
    classified: PacketStats,
    icmp_buf: Vec<u8>,
}

impl Default for TcpPath {
    fn default() -> Self {
        TcpPath::new()
    }
}

impl TcpPath {
    /// A stack with one listener and no connections.
    pub fn new() -> TcpPath {
        TcpPath {
            stack: TcpStack::new(),
            counters: PacketCounters::default(),
            classified: PacketStats::default(),
            icmp_buf: Vec::new(),
        }
    }

    /// Offers one packet from the device, as the loop does; returns whether
    /// it reached the TCP stack.
    pub fn packet(&mut self, packet: &[u8]) -> bool {
        match classify_and_count(packet, &mut self.classified, &mut self.icmp_buf) {
            Verdict::DnsTcp(tcp) if is_virtual_dns(tcp.dst.ip()) => {
                self.stack.ingest(packet, &tcp, &self.counters);
                true
            }
            _ => false,
        }
    }

    /// Runs the stack and returns up to `budget` complete queries, each with
    /// the connection that asked it.
    pub fn service(&mut self, budget: usize) -> Vec<(u64, Vec<u8>)> {
        let mut queries = Vec::new();
        self.stack.service(&mut queries, budget, &self.counters);
        queries
            .into_iter()
            .map(|TcpQuery { conn, message }| (conn, message))
            .collect()
    }

    /// Hands the answer to a query of connection `conn` back to the stack.
    pub fn deliver(&mut self, conn: u64, answer: &[u8]) {
        self.stack.deliver(conn, answer, &self.counters);
    }

    /// The packets the stack wants written to the device.
    pub fn take_output(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        self.stack.take_output(&mut out);
        out
    }

    /// Sockets in use, the listener included.
    pub fn sockets_in_use(&self) -> usize {
        self.stack.sockets_in_use()
    }

    /// The counters the loop would publish.
    pub fn stats(&self) -> PacketPathStats {
        self.counters.snapshot()
    }
}
