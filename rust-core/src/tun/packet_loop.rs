//! The loop that reads the TUN device, answers DNS and writes packets back.
//!
//! One task on the engine's runtime owns the device, the TCP stack and the
//! set of queries being resolved. Each wake-up it reads a batch of packets,
//! classifies each with the packet layer, answers UDP queries (cache hits
//! at once, without spawning), feeds TCP segments to the stack, then
//! services the stack and writes what it produced. Resolutions that have to
//! wait for upstream run as tasks of a [`JoinSet`] owned by the loop, so
//! when the loop ends they are all cancelled and nothing outlives it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use tokio::sync::watch;
use tokio::task::{Id, JoinSet};
use tokio::time::{Duration, Instant};

use super::device::{ReadOutcome, TunDevice};
use super::stack::{TcpQuery, TcpStack};
use super::stats::PacketCounters;
use super::{is_virtual_dns, MAX_IN_FLIGHT};
use crate::host::{Event, Host};
use crate::packet::{
    build_udp_reply, classify_and_count, client_udp_payload_limit, parse, truncate_dns_response,
    Packet, PacketStats, ParsedUdp, Verdict,
};
use crate::resolver::Resolver;

/// Packets read per wake-up before other work (answers, timers) gets a turn.
const READ_BATCH: usize = 64;
/// The largest IP packet a TUN device can carry.
const MAX_PACKET: usize = 65_535;
/// ICMP errors per second at most (RFC 1812 section 4.3.2.8, RFC 4443
/// section 2.4 (f) ask for a limit), with a burst of the same size.
const ICMP_PER_SECOND: u32 = 100;
/// Pause after a failed read, so a broken descriptor cannot spin the loop.
const READ_ERROR_PAUSE: Duration = Duration::from_millis(20);

/// A finished resolution.
enum Done {
    Udp {
        request: ParsedUdp,
        limit: usize,
        answer: Vec<u8>,
    },
    Tcp {
        conn: u64,
        answer: Vec<u8>,
    },
}

type Resolution = Pin<Box<dyn Future<Output = Vec<u8>> + Send>>;

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

struct LoopState {
    resolver: Resolver,
    counters: Arc<PacketCounters>,
    classified: PacketStats,
    tasks: JoinSet<Done>,
    /// TCP resolutions by task, so a task that panicked still frees its
    /// connection's pipelining slot.
    tcp_tasks: HashMap<Id, u64>,
    tcp: TcpStack,
    tcp_dirty: bool,
    icmp: IcmpLimiter,
    /// Reused buffers: the ICMP error the packet layer builds, the reply
    /// being framed, the segments the TCP stack emits, queries it read.
    icmp_buf: Vec<u8>,
    reply_buf: Vec<u8>,
    tcp_out: Vec<Vec<u8>>,
    tcp_queries: Vec<TcpQuery>,
    paused: bool,
}

/// Answers DNS packets on `device` until `stop` turns true (or its sender
/// is dropped) or the device goes away, then resets open TCP connections,
/// cancels pending resolutions and closes the device. A device that went
/// away is reported to `host` as [`Event::TunClosed`].
pub(crate) async fn run_packet_loop(
    device: TunDevice,
    resolver: Resolver,
    counters: Arc<PacketCounters>,
    host: Arc<dyn Host>,
    mut stop: watch::Receiver<bool>,
) {
    PacketCounters::set(&counters.running, 1);
    let mut state = LoopState {
        resolver,
        counters: counters.clone(),
        classified: *counters
            .classified
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
        tasks: JoinSet::new(),
        tcp_tasks: HashMap::new(),
        tcp: TcpStack::new(),
        tcp_dirty: false,
        icmp: IcmpLimiter {
            tokens: ICMP_PER_SECOND,
            refilled: Instant::now(),
        },
        icmp_buf: Vec::with_capacity(1280),
        reply_buf: Vec::with_capacity(1500),
        tcp_out: Vec::new(),
        tcp_queries: Vec::new(),
        paused: false,
    };
    let mut buf = vec![0u8; MAX_PACKET];
    let mut device_gone = None;
    loop {
        if *stop.borrow() {
            break;
        }
        let can_read = state.tasks.len() < MAX_IN_FLIGHT;
        if !can_read && !state.paused {
            PacketCounters::add(&counters.backpressure, 1);
        }
        state.paused = !can_read;
        let wakeup = state.tcp.next_wakeup();
        tokio::select! {
            biased;
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
                continue;
            }
            Some(done) = state.tasks.join_next_with_id(), if !state.tasks.is_empty() => {
                state.finish(done, &device).await;
                while let Some(done) = state.tasks.try_join_next_with_id() {
                    state.finish(done, &device).await;
                }
            }
            ready = device.readable(), if can_read => {
                let mut guard = match ready {
                    Ok(guard) => guard,
                    Err(e) => {
                        log::warn!("TUN device: {e}");
                        PacketCounters::add(&counters.read_errors, 1);
                        tokio::time::sleep(READ_ERROR_PAUSE).await;
                        continue;
                    }
                };
                for _ in 0..READ_BATCH {
                    match TunDevice::try_read(&mut guard, &mut buf) {
                        ReadOutcome::Packet(n) => {
                            state.on_packet(buf.get(..n).unwrap_or_default(), &device).await;
                        }
                        ReadOutcome::Empty => break,
                        ReadOutcome::Closed(why) => {
                            device_gone = Some(why);
                            break;
                        }
                        ReadOutcome::Error(e) => {
                            log::warn!("TUN read: {e}");
                            PacketCounters::add(&counters.read_errors, 1);
                            drop(guard);
                            tokio::time::sleep(READ_ERROR_PAUSE).await;
                            break;
                        }
                    }
                    if state.tasks.len() >= MAX_IN_FLIGHT {
                        break;
                    }
                }
                state.publish_classified();
                if let Some(why) = device_gone {
                    log::warn!("TUN device gone ({why}); the packet loop ends");
                    break;
                }
            }
            () = sleep_until_opt(wakeup), if wakeup.is_some() => {
                state.tcp_dirty = true;
            }
        }
        state.service_tcp(&device).await;
    }
    state.tcp.abort_all(&counters);
    state.flush_tcp(&device).await;
    state.tasks.shutdown().await;
    PacketCounters::set(&counters.in_flight, 0);
    state.publish_classified();
    PacketCounters::set(&counters.running, 0);
    if let Some(why) = device_gone {
        host.on_event(Event::TunClosed {
            reason: why.to_string(),
        });
    }
    // `device` drops here: the descriptor is closed.
}

async fn sleep_until_opt(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// Polls `fut` once without a real waker: a resolution answered from the
/// cache completes here, with no task spawned. A pending one is moved into
/// a task, whose first poll registers the task's waker (a future must
/// accept being polled with a different waker each time).
fn poll_once(fut: &mut Resolution) -> Poll<Vec<u8>> {
    let mut cx = Context::from_waker(Waker::noop());
    fut.as_mut().poll(&mut cx)
}

impl LoopState {
    fn publish_classified(&self) {
        if let Ok(mut c) = self.counters.classified.lock() {
            *c = self.classified;
        }
    }

    fn resolution(&self, query: Vec<u8>) -> Resolution {
        let resolver = self.resolver.clone();
        Box::pin(async move { resolver.resolve(&query).await })
    }

    fn update_in_flight(&self) {
        PacketCounters::set(&self.counters.in_flight, self.tasks.len() as u64);
    }

    async fn on_packet(&mut self, packet: &[u8], device: &TunDevice) {
        PacketCounters::add(&self.counters.packets_in, 1);
        PacketCounters::add(&self.counters.bytes_in, packet.len() as u64);
        match classify_and_count(packet, &mut self.classified, &mut self.icmp_buf) {
            Verdict::DnsUdp(udp) => {
                if !is_virtual_dns(udp.dst.ip()) {
                    PacketCounters::add(&self.counters.not_virtual, 1);
                    return;
                }
                let query = udp.payload(packet).to_vec();
                let limit = client_udp_payload_limit(&query);
                let mut resolution = self.resolution(query);
                match poll_once(&mut resolution) {
                    Poll::Ready(answer) => self.send_udp(&udp, limit, &answer, device).await,
                    Poll::Pending => {
                        self.tasks.spawn(async move {
                            let answer = resolution.await;
                            Done::Udp {
                                request: udp,
                                limit,
                                answer,
                            }
                        });
                        self.update_in_flight();
                    }
                }
            }
            Verdict::DnsTcp(tcp) => {
                if !is_virtual_dns(tcp.dst.ip()) {
                    PacketCounters::add(&self.counters.not_virtual, 1);
                    return;
                }
                self.tcp.ingest(packet, &tcp, &self.counters);
                self.tcp_dirty = true;
            }
            Verdict::SendIcmp => {
                let to_us = match parse(packet) {
                    Packet::Udp(udp) => is_virtual_dns(udp.dst.ip()),
                    Packet::Fragment(f) => is_virtual_dns(f.dst),
                    _ => false,
                };
                if !to_us {
                    PacketCounters::add(&self.counters.not_virtual, 1);
                } else if self.icmp.take() {
                    let icmp = std::mem::take(&mut self.icmp_buf);
                    if self.write(&icmp, device).await {
                        PacketCounters::add(&self.counters.icmp_sent, 1);
                    }
                    self.icmp_buf = icmp;
                } else {
                    PacketCounters::add(&self.counters.icmp_rate_limited, 1);
                }
            }
            Verdict::Drop(reason) => {
                log::trace!("TUN packet dropped: {reason:?}");
            }
        }
    }

    async fn finish(
        &mut self,
        done: Result<(Id, Done), tokio::task::JoinError>,
        device: &TunDevice,
    ) {
        match done {
            Ok((
                id,
                Done::Udp {
                    request,
                    limit,
                    answer,
                },
            )) => {
                self.tcp_tasks.remove(&id);
                self.send_udp(&request, limit, &answer, device).await;
            }
            Ok((id, Done::Tcp { conn, answer })) => {
                self.tcp_tasks.remove(&id);
                self.tcp.deliver(conn, &answer, &self.counters);
                self.tcp_dirty = true;
            }
            Err(e) => {
                log::error!("DNS resolution task failed: {e}");
                if let Some(conn) = self.tcp_tasks.remove(&e.id()) {
                    // Frees the slot; an empty answer is counted, not sent.
                    self.tcp.deliver(conn, &[], &self.counters);
                }
            }
        }
        self.update_in_flight();
    }

    async fn send_udp(
        &mut self,
        request: &ParsedUdp,
        limit: usize,
        answer: &[u8],
        device: &TunDevice,
    ) {
        let truncated;
        let answer: &[u8] = if answer.len() <= limit {
            answer
        } else {
            truncated = truncate_dns_response(answer, limit);
            PacketCounters::add(&self.counters.udp_truncated, 1);
            &truncated
        };
        if answer.len() < crate::wire::HEADER_LEN {
            PacketCounters::add(&self.counters.unanswerable, 1);
            return;
        }
        let mut reply = std::mem::take(&mut self.reply_buf);
        match build_udp_reply(request, answer, &mut reply) {
            Ok(()) => {
                if self.write(&reply, device).await {
                    PacketCounters::add(&self.counters.udp_answers, 1);
                }
            }
            Err(e) => {
                log::debug!("cannot frame answer: {e}");
                PacketCounters::add(&self.counters.unanswerable, 1);
            }
        }
        self.reply_buf = reply;
    }

    async fn write(&self, packet: &[u8], device: &TunDevice) -> bool {
        match device.write(packet).await {
            Ok(()) => {
                PacketCounters::add(&self.counters.packets_out, 1);
                PacketCounters::add(&self.counters.bytes_out, packet.len() as u64);
                true
            }
            Err(e) => {
                log::debug!("TUN write: {e}");
                PacketCounters::add(&self.counters.write_errors, 1);
                false
            }
        }
    }

    /// Services the TCP stack if anything happened to it, starts the
    /// queries it read and writes the segments it produced.
    async fn service_tcp(&mut self, device: &TunDevice) {
        if !self.tcp_dirty && !self.tcp.is_busy() {
            return;
        }
        self.tcp_dirty = false;
        // A few rounds: answers from the cache are delivered at once and
        // may let the stack read the next pipelined query; the last round
        // (budget 0) only sends what the others queued.
        for round in 0..5 {
            let budget = if round == 4 {
                0
            } else {
                MAX_IN_FLIGHT.saturating_sub(self.tasks.len())
            };
            let mut queries = std::mem::take(&mut self.tcp_queries);
            self.tcp.service(&mut queries, budget, &self.counters);
            let mut answered_now = false;
            for TcpQuery { conn, message } in queries.drain(..) {
                let mut resolution = self.resolution(message);
                match poll_once(&mut resolution) {
                    Poll::Ready(answer) => {
                        self.tcp.deliver(conn, &answer, &self.counters);
                        answered_now = true;
                    }
                    Poll::Pending => {
                        let handle = self.tasks.spawn(async move {
                            let answer = resolution.await;
                            Done::Tcp { conn, answer }
                        });
                        self.tcp_tasks.insert(handle.id(), conn);
                    }
                }
            }
            self.tcp_queries = queries;
            self.update_in_flight();
            if !answered_now {
                break;
            }
        }
        self.flush_tcp(device).await;
    }

    async fn flush_tcp(&mut self, device: &TunDevice) {
        let mut out = std::mem::take(&mut self.tcp_out);
        self.tcp.take_output(&mut out);
        for segment in out.drain(..) {
            self.write(&segment, device).await;
        }
        self.tcp_out = out;
    }
}

impl Drop for LoopState {
    fn drop(&mut self) {
        // Also when the loop's task is aborted rather than stopped.
        PacketCounters::set(&self.counters.running, 0);
        self.counters.in_flight.store(0, Relaxed);
    }
}
