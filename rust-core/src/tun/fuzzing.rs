//! The packet path without a device or a runtime, for the fuzz targets
//! (feature `fuzzing`). Packets go through the same [`Dispatch`] as in the
//! packet loop (classification, the UDP reply builder and the user-space
//! TCP stack); resolving is left to the caller, who hands back whatever
//! answer it likes.
//!
//! Not part of the supported API: it exists so that `rust-core/fuzz` can
//! reach crate-private code.

use std::sync::Arc;

use super::dispatch::{Action, Dispatch};
pub use super::dispatch::{Dropped, UdpQuery};
use super::stack::TcpQuery;
use super::{PacketCounters, PacketPathStats};

/// What the dispatch decided for one packet, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// A UDP query to resolve; answer it with [`PacketPath::udp_answer`].
    Resolve {
        /// The DNS message as the client sent it.
        query: Vec<u8>,
        /// Where and how the answer goes back.
        reply: UdpQuery,
    },
    /// A segment the TCP stack took.
    Tcp,
    /// An ICMP error to write to the device.
    Send(Vec<u8>),
    /// Nothing to send.
    Drop(Dropped),
}

/// The packet loop's dispatch, driven by hand.
pub struct PacketPath {
    path: Dispatch,
    counters: Arc<PacketCounters>,
}

impl Default for PacketPath {
    fn default() -> Self {
        PacketPath::new()
    }
}

impl PacketPath {
    /// A path with one TCP listener, no connections and a full ICMP budget.
    pub fn new() -> PacketPath {
        let counters = Arc::new(PacketCounters::default());
        PacketPath {
            path: Dispatch::new(counters.clone()),
            counters,
        }
    }

    /// Offers one packet from the device, as the loop does.
    pub fn packet(&mut self, packet: &[u8]) -> Handled {
        match self.path.on_packet(packet) {
            Action::Resolve { query, reply } => Handled::Resolve { query, reply },
            Action::Tcp => Handled::Tcp,
            Action::Send(p) => Handled::Send(p.to_vec()),
            Action::Drop(why) => Handled::Drop(why),
        }
    }

    /// The reply packet the loop would write for `answer` to `query`.
    pub fn udp_answer(&mut self, query: &UdpQuery, answer: &[u8]) -> Option<Vec<u8>> {
        self.path.udp_answer(query, answer).map(<[u8]>::to_vec)
    }

    /// Runs the TCP stack and returns up to `budget` complete queries, each
    /// with the connection that asked it.
    pub fn service(&mut self, budget: usize) -> Vec<(u64, Vec<u8>)> {
        let mut queries = Vec::new();
        self.path.tcp.service(&mut queries, budget, &self.counters);
        queries
            .into_iter()
            .map(|TcpQuery { conn, message }| (conn, message))
            .collect()
    }

    /// Hands the answer to a query of connection `conn` back to the stack.
    pub fn deliver(&mut self, conn: u64, answer: &[u8]) {
        self.path.tcp.deliver(conn, answer, &self.counters);
    }

    /// The packets the stack wants written to the device.
    pub fn take_output(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        self.path.tcp.take_output(&mut out);
        out
    }

    /// Sockets in use, the listener included.
    pub fn sockets_in_use(&self) -> usize {
        self.path.tcp.sockets_in_use()
    }

    /// The counters the loop would publish.
    pub fn stats(&self) -> PacketPathStats {
        self.path.publish_classified();
        self.counters.snapshot()
    }
}

/// The TCP half of the packet path, as `tcp_stream` drives it.
pub struct TcpPath(PacketPath);

impl Default for TcpPath {
    fn default() -> Self {
        TcpPath::new()
    }
}

impl TcpPath {
    /// A stack with one listener and no connections.
    pub fn new() -> TcpPath {
        TcpPath(PacketPath::new())
    }

    /// Offers one packet from the device, as the loop does; returns whether
    /// it reached the TCP stack.
    pub fn packet(&mut self, packet: &[u8]) -> bool {
        self.0.packet(packet) == Handled::Tcp
    }

    /// Runs the stack and returns up to `budget` complete queries, each with
    /// the connection that asked it.
    pub fn service(&mut self, budget: usize) -> Vec<(u64, Vec<u8>)> {
        self.0.service(budget)
    }

    /// Hands the answer to a query of connection `conn` back to the stack.
    pub fn deliver(&mut self, conn: u64, answer: &[u8]) {
        self.0.deliver(conn, answer);
    }

    /// The packets the stack wants written to the device.
    pub fn take_output(&mut self) -> Vec<Vec<u8>> {
        self.0.take_output()
    }

    /// Sockets in use, the listener included.
    pub fn sockets_in_use(&self) -> usize {
        self.0.sockets_in_use()
    }

    /// The counters the loop would publish.
    pub fn stats(&self) -> PacketPathStats {
        self.0.stats()
    }
}
