//! DNS over TCP on the TUN device, on smoltcp's user-space TCP.
//!
//! The packet loop hands over each validated TCP segment addressed to port
//! 53 of a virtual address; smoltcp does the TCP state machine (handshake,
//! retransmission, windows, FIN/RST) and this module only frames DNS
//! messages (RFC 1035 section 4.2.2: a two-byte length before each) and
//! keeps every buffer bounded:
//!
//! * at most [`MAX_TCP_CONNECTIONS`] sockets, each with fixed-size buffers;
//! * at most [`MAX_PENDING_PER_CONNECTION`] queries in flight per connection
//!   and at most [`OUT_HIGH_WATER`] bytes of answers waiting for the client's
//!   window: past either, the connection is not read, so its client's
//!   window closes instead of our memory growing;
//! * a partial message is at most 2 + 65535 bytes.
//!
//! One socket is always kept listening (while under the limit). smoltcp
//! hands a SYN to the first listening socket, so after every segment that
//! may have been a SYN a fresh listener is added for the next one.

use std::collections::VecDeque;
use std::hash::{BuildHasher as _, Hasher as _};

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration as SmolDuration, Instant as SmolInstant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use tokio::time::{Duration, Instant};

use super::stats::PacketCounters;
use super::MAX_TCP_CONNECTIONS;
use crate::net::{VIRTUAL_DNS_V4, VIRTUAL_DNS_V6};
use crate::packet::{ParsedTcp, DNS_PORT};

/// Queries of one connection being resolved at once (RFC 7766 pipelining).
pub(super) const MAX_PENDING_PER_CONNECTION: usize = 16;
/// Answer bytes waiting for the client's window before the connection is
/// no longer read.
pub(super) const OUT_HIGH_WATER: usize = 32 * 1024;
/// A connection with nothing pending is closed after this long without a
/// query (RFC 7766 section 6.2.3 suggests seconds).
pub(super) const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// smoltcp aborts a connection whose data goes unacknowledged this long.
const ACK_TIMEOUT: SmolDuration = SmolDuration::from_secs(30);
/// A handshake not completed within this is aborted, so half-open
/// connections (a SYN flood from an app) cannot hold the slots for long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const RX_BUFFER: usize = 4 * 1024;
const TX_BUFFER: usize = 16 * 1024;
/// The MTU smoltcp builds segments for: the IPv6 minimum, which every TUN
/// device carries, so no segment of ours is ever too big.
const STACK_MTU: usize = 1280;

/// smoltcp's link: segments the loop fed in, segments to write out.
pub(super) struct QueueDevice {
    pub(super) rx: VecDeque<Vec<u8>>,
    pub(super) tx: Vec<Vec<u8>>,
}

impl QueueDevice {
    pub(super) fn new() -> QueueDevice {
        QueueDevice {
            rx: VecDeque::new(),
            tx: Vec::new(),
        }
    }
}

pub(super) struct QueueRx(Vec<u8>);
pub(super) struct QueueTx<'a>(&'a mut Vec<Vec<u8>>);

impl RxToken for QueueRx {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.0)
    }
}

impl TxToken for QueueTx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut packet = vec![0u8; len];
        let r = f(&mut packet);
        self.0.push(packet);
        r
    }
}

impl Device for QueueDevice {
    type RxToken<'a> = QueueRx;
    type TxToken<'a> = QueueTx<'a>;

    fn receive(&mut self, _now: SmolInstant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let packet = self.rx.pop_front()?;
        Some((QueueRx(packet), QueueTx(&mut self.tx)))
    }

    fn transmit(&mut self, _now: SmolInstant) -> Option<Self::TxToken<'_>> {
        Some(QueueTx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = STACK_MTU;
        caps
    }
}

/// One TCP socket and the DNS framing state of its connection.
struct Conn {
    id: u64,
    handle: SocketHandle,
    /// Counted as accepted (left the listening state).
    accepted: bool,
    /// The message being received: length prefix and body.
    rx: Vec<u8>,
    /// Queries handed to the resolver and not answered yet.
    pending: usize,
    /// Framed answers not yet taken by the socket.
    out: VecDeque<u8>,
    last_active: Instant,
    /// When we closed our side; a peer that never finishes the close is
    /// reset after [`IDLE_TIMEOUT`].
    closing_since: Option<Instant>,
}

impl Conn {
    /// When this connection next needs attention from [`TcpStack::service`]
    /// without any packet arriving: end of the handshake allowance, of the
    /// idle allowance, or of the closing allowance.
    fn deadline(&self, state: tcp::State) -> Option<Instant> {
        if !self.accepted {
            return None;
        }
        if let Some(since) = self.closing_since {
            return Some(since + IDLE_TIMEOUT);
        }
        match state {
            tcp::State::SynReceived => Some(self.last_active + HANDSHAKE_TIMEOUT),
            tcp::State::Established | tcp::State::CloseWait
                if self.pending == 0 && self.out.is_empty() =>
            {
                Some(self.last_active + IDLE_TIMEOUT)
            }
            _ => None,
        }
    }
}

/// A query read from a connection, for the loop to resolve.
pub(super) struct TcpQuery {
    pub(super) conn: u64,
    pub(super) message: Vec<u8>,
}

/// The user-space TCP endpoint for the virtual DNS addresses.
pub(super) struct TcpStack {
    iface: Interface,
    device: QueueDevice,
    sockets: SocketSet<'static>,
    conns: Vec<Conn>,
    next_id: u64,
    epoch: Instant,
}

impl TcpStack {
    pub(super) fn new() -> TcpStack {
        let epoch = Instant::now();
        let mut device = QueueDevice::new();
        let mut config = IfaceConfig::new(HardwareAddress::Ip);
        config.random_seed = random_seed();
        let mut iface = Interface::new(config, &mut device, SmolInstant::ZERO);
        iface.update_ip_addrs(|addrs| {
            // Two addresses always fit the default capacity of two.
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(VIRTUAL_DNS_V4), 32));
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv6(VIRTUAL_DNS_V6), 128));
        });
        // Everything goes back out of the one link: without a route smoltcp
        // would not send to the client. On an IP medium the gateway is never
        // looked up, so our own address serves.
        let _ = iface.routes_mut().add_default_ipv4_route(VIRTUAL_DNS_V4);
        let _ = iface.routes_mut().add_default_ipv6_route(VIRTUAL_DNS_V6);
        let mut stack = TcpStack {
            iface,
            device,
            sockets: SocketSet::new(Vec::new()),
            conns: Vec::new(),
            next_id: 0,
            epoch,
        };
        stack.ensure_listener();
        stack
    }

    fn now(&self) -> SmolInstant {
        let micros = i64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(i64::MAX);
        SmolInstant::from_micros(micros)
    }

    /// Whether anything but the idle listener exists, i.e. whether
    /// [`TcpStack::service`] has work.
    pub(super) fn is_busy(&self) -> bool {
        self.conns.iter().any(|c| c.accepted) || !self.device.rx.is_empty()
    }

    /// Feeds one validated TCP segment to the stack: `packet` is the whole
    /// IP packet and `tcp` what the packet layer parsed from it.
    pub(super) fn ingest(&mut self, packet: &[u8], tcp: &ParsedTcp, counters: &PacketCounters) {
        // Flags byte of the validated header: SYN without ACK opens.
        let flags = packet.get(tcp.segment.start + 13).copied().unwrap_or(0);
        let syn = flags & 0x12 == 0x02;
        if syn && !self.has_listener() {
            // smoltcp answers it with RST: no socket accepts it.
            PacketCounters::add(&counters.tcp_refused, 1);
        }
        self.device.rx.push_back(packet.to_vec());
        // Process it now, so that the next SYN finds a fresh listener.
        let now = self.now();
        self.iface.poll(now, &mut self.device, &mut self.sockets);
        self.update_states(counters);
        self.ensure_listener();
    }

    fn has_listener(&mut self) -> bool {
        let sockets = &mut self.sockets;
        self.conns
            .iter()
            .any(|c| sockets.get::<tcp::Socket>(c.handle).state() == tcp::State::Listen)
    }

    fn ensure_listener(&mut self) {
        if self.conns.len() >= MAX_TCP_CONNECTIONS || self.has_listener() {
            return;
        }
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; RX_BUFFER]),
            tcp::SocketBuffer::new(vec![0u8; TX_BUFFER]),
        );
        // Answers are whole messages: send them at once.
        socket.set_nagle_enabled(false);
        socket.set_timeout(Some(ACK_TIMEOUT));
        if socket.listen(DNS_PORT).is_err() {
            return;
        }
        let handle = self.sockets.add(socket);
        self.next_id += 1;
        self.conns.push(Conn {
            id: self.next_id,
            handle,
            accepted: false,
            rx: Vec::new(),
            pending: 0,
            out: VecDeque::new(),
            last_active: Instant::now(),
            closing_since: None,
        });
    }

    /// Counts connections that left (or went back to) the listening state
    /// and removes closed ones.
    fn update_states(&mut self, counters: &PacketCounters) {
        let sockets = &mut self.sockets;
        self.conns.retain_mut(|c| {
            let state = sockets.get::<tcp::Socket>(c.handle).state();
            match state {
                tcp::State::Listen => {
                    if c.accepted {
                        // Reset during the handshake: back to listening.
                        c.accepted = false;
                        c.closing_since = None;
                        PacketCounters::sub(&counters.tcp_open, 1);
                        c.rx.clear();
                        c.out.clear();
                    }
                    true
                }
                tcp::State::Closed | tcp::State::TimeWait => {
                    if c.accepted {
                        PacketCounters::sub(&counters.tcp_open, 1);
                    }
                    sockets.remove(c.handle);
                    false
                }
                _ => {
                    if !c.accepted {
                        c.accepted = true;
                        c.last_active = Instant::now();
                        PacketCounters::add(&counters.tcp_accepted, 1);
                        PacketCounters::add(&counters.tcp_open, 1);
                    }
                    true
                }
            }
        });
    }

    /// Runs the stack: processes queued segments and timers, reads complete
    /// queries into `queries` (at most `budget` of them), sends what fits of
    /// waiting answers, closes finished and idle connections.
    pub(super) fn service(
        &mut self,
        queries: &mut Vec<TcpQuery>,
        mut budget: usize,
        counters: &PacketCounters,
    ) {
        let now = self.now();
        self.iface.poll(now, &mut self.device, &mut self.sockets);
        self.update_states(counters);
        let wall = Instant::now();
        for conn in self.conns.iter_mut().filter(|c| c.accepted) {
            let socket = self.sockets.get_mut::<tcp::Socket>(conn.handle);
            let overdue = conn.deadline(socket.state()).is_some_and(|d| wall >= d);
            if overdue
                && (conn.closing_since.is_some() || socket.state() == tcp::State::SynReceived)
            {
                // A handshake or a close the peer never completes.
                socket.abort();
                continue;
            }
            flush(conn, socket);
            while budget > 0 && read_query(conn, socket, queries, counters) {
                budget -= 1;
                conn.last_active = wall;
            }
            let quiet = conn.pending == 0 && conn.out.is_empty();
            if quiet && conn.closing_since.is_none() && socket.is_open() {
                // The client sent FIN and everything it asked is answered,
                // or it has been idle too long.
                let client_done =
                    socket.state() == tcp::State::CloseWait && socket.recv_queue() == 0;
                let idle = conn.deadline(socket.state()).is_some_and(|d| wall >= d);
                if client_done || idle {
                    socket.close();
                    conn.closing_since = Some(wall);
                }
            }
        }
        self.iface.poll(now, &mut self.device, &mut self.sockets);
        self.update_states(counters);
        self.ensure_listener();
    }

    /// Queues the answer to a query of connection `conn`, if it still exists.
    pub(super) fn deliver(&mut self, conn: u64, answer: &[u8], counters: &PacketCounters) {
        let Some(c) = self.conns.iter_mut().find(|c| c.id == conn) else {
            return;
        };
        c.pending = c.pending.saturating_sub(1);
        c.last_active = Instant::now();
        if answer.len() < crate::wire::HEADER_LEN {
            PacketCounters::add(&counters.unanswerable, 1);
            return;
        }
        let Ok(framed) = crate::framing::framed(answer) else {
            PacketCounters::add(&counters.unanswerable, 1);
            return;
        };
        c.out.extend(&framed[..]);
        PacketCounters::add(&counters.tcp_answers, 1);
        let socket = self.sockets.get_mut::<tcp::Socket>(c.handle);
        flush(c, socket);
    }

    /// How many sockets exist, the listener included.
    #[cfg(feature = "fuzzing")]
    pub(super) fn sockets_in_use(&self) -> usize {
        self.conns.len()
    }

    /// Takes the segments the stack wants written to the device.
    pub(super) fn take_output(&mut self, into: &mut Vec<Vec<u8>>) {
        into.append(&mut self.device.tx);
    }

    /// When the stack next needs [`TcpStack::service`] even without input:
    /// a retransmission or ACK timer, or a connection's idle timeout.
    pub(super) fn next_wakeup(&mut self) -> Option<Instant> {
        let now = self.now();
        let timer = self
            .iface
            .poll_delay(now, &self.sockets)
            // At least a millisecond: smoltcp's timers are that coarse, and
            // a zero delay it kept asking for would spin the loop.
            .map(|d| {
                Instant::now()
                    + Duration::from_micros(d.total_micros()).max(Duration::from_millis(1))
            });
        let sockets = &self.sockets;
        let idle = self
            .conns
            .iter()
            .filter_map(|c| c.deadline(sockets.get::<tcp::Socket>(c.handle).state()))
            .min()
            // Never in the past: a deadline just acted upon must not spin.
            .map(|d| d.max(Instant::now() + Duration::from_millis(1)));
        match (timer, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Resets every connection (the engine is stopping) and returns the
    /// resets to send.
    pub(super) fn abort_all(&mut self, counters: &PacketCounters) {
        for c in &self.conns {
            self.sockets.get_mut::<tcp::Socket>(c.handle).abort();
        }
        let now = self.now();
        self.iface.poll(now, &mut self.device, &mut self.sockets);
        self.update_states(counters);
    }
}

/// Moves waiting answer bytes into the socket, as far as its buffer allows.
fn flush(conn: &mut Conn, socket: &mut tcp::Socket<'_>) {
    while !conn.out.is_empty() && socket.can_send() {
        let (front, _) = conn.out.as_slices();
        match socket.send_slice(front) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                conn.out.drain(..n);
            }
        }
    }
}

/// Reads towards the next query; returns true when one was completed and
/// pushed to `queries`. Stops (false) when the connection must not be read:
/// no data, too much pending, or a bad frame (the connection is aborted).
fn read_query(
    conn: &mut Conn,
    socket: &mut tcp::Socket<'_>,
    queries: &mut Vec<TcpQuery>,
    counters: &PacketCounters,
) -> bool {
    loop {
        if conn.pending >= MAX_PENDING_PER_CONNECTION || conn.out.len() >= OUT_HIGH_WATER {
            return false;
        }
        let need = match conn.rx.get(..2) {
            Some(&[hi, lo]) => 2 + usize::from(u16::from_be_bytes([hi, lo])) - conn.rx.len(),
            _ => 2 - conn.rx.len(),
        };
        if need > 0 {
            let rx = &mut conn.rx;
            let got = socket.recv(|data| {
                let n = data.len().min(need);
                rx.extend_from_slice(data.get(..n).unwrap_or_default());
                (n, n)
            });
            match got {
                Ok(n) if n > 0 => {}
                _ => return false,
            }
        }
        let Some(&[hi, lo]) = conn.rx.get(..2) else {
            continue;
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len == 0 {
            // Not a DNS message: nothing sensible to answer.
            PacketCounters::add(&counters.tcp_bad_frames, 1);
            socket.abort();
            conn.rx.clear();
            return false;
        }
        if conn.rx.len() == 2 + len {
            let message = conn.rx.split_off(2);
            conn.rx.clear();
            conn.pending += 1;
            PacketCounters::add(&counters.tcp_queries, 1);
            queries.push(TcpQuery {
                conn: conn.id,
                message,
            });
            return true;
        }
    }
}

/// A seed for smoltcp's initial sequence numbers and ports, different per
/// process and per stack, from the standard library's random hasher keys.
fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}
