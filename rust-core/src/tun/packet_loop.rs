//! The loop that reads the TUN device, answers DNS and writes packets back.
//!
//! One task on the engine's runtime owns the device, the packet path's
//! state machine ([`Dispatch`]: classification, the TCP stack) and the set
//! of queries being resolved. Each wake-up it reads a batch of packets and
//! does what the dispatch says for each: resolve a UDP query (cache hits
//! at once, without spawning), write an ICMP error, or service the TCP
//! stack and write what it produced. Resolutions that have to
//! wait for upstream run as tasks of a [`JoinSet`] owned by the loop, so
//! when the loop ends they are all cancelled and nothing outlives it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use tokio::sync::watch;
use tokio::task::{Id, JoinSet};
use tokio::time::{Duration, Instant};

use super::device::{ReadOutcome, TunDevice};
use super::dispatch::{Action, Dispatch, UdpQuery};
use super::stack::TcpQuery;
use super::stats::PacketCounters;
use super::MAX_IN_FLIGHT;
use crate::host::{Event, Host};
use crate::resolver::Resolver;

/// Packets read per wake-up before other work (answers, timers) gets a turn.
const READ_BATCH: usize = 64;
/// The largest IP packet a TUN device can carry.
const MAX_PACKET: usize = 65_535;
/// Pause after a failed read, so a broken descriptor cannot spin the loop.
const READ_ERROR_PAUSE: Duration = Duration::from_millis(20);

/// A finished resolution.
enum Done {
    Udp { reply: UdpQuery, answer: Vec<u8> },
    Tcp { conn: u64, answer: Vec<u8> },
}

type Resolution = Pin<Box<dyn Future<Output = Vec<u8>> + Send>>;

struct LoopState {
    resolver: Resolver,
    counters: Arc<PacketCounters>,
    path: Dispatch,
    tasks: JoinSet<Done>,
    /// TCP resolutions by task, so a task that panicked still frees its
    /// connection's pipelining slot.
    tcp_tasks: HashMap<Id, u64>,
    tcp_dirty: bool,
    /// Reused buffers: the segments the TCP stack emits, queries it read.
    tcp_out: Vec<Vec<u8>>,
    tcp_queries: Vec<TcpQuery>,
    paused: bool,
}

/// How the engine stops a packet loop and learns that it has ended.
pub(crate) struct LoopControl {
    /// Turns true (or its sender is dropped) when the loop is to stop.
    pub(crate) stop: watch::Receiver<bool>,
    /// Set once the loop has closed its device and dropped its state.
    pub(crate) ended: Arc<AtomicBool>,
}

/// Answers DNS packets on `device` until `control.stop` says so or the
/// device goes away, then resets open TCP connections, cancels pending
/// resolutions, closes the device and sets `control.ended`. A device that
/// went away is reported to `host` as [`Event::TunClosed`] after that, so
/// the host may attach a new device from inside that report.
pub(crate) async fn run_packet_loop(
    device: TunDevice,
    resolver: Resolver,
    counters: Arc<PacketCounters>,
    host: Arc<dyn Host>,
    control: LoopControl,
) {
    let LoopControl { mut stop, ended } = control;
    PacketCounters::set(&counters.running, 1);
    let mut state = LoopState {
        resolver,
        counters: counters.clone(),
        path: Dispatch::new(counters.clone()),
        tasks: JoinSet::new(),
        tcp_tasks: HashMap::new(),
        tcp_dirty: false,
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
        let wakeup = state.path.tcp.next_wakeup();
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
    state.path.tcp.abort_all(&counters);
    state.flush_tcp(&device).await;
    state.tasks.shutdown().await;
    PacketCounters::set(&counters.in_flight, 0);
    state.publish_classified();
    // The counters are shared with the next loop: nothing of this one may
    // touch them once it has said it ended.
    drop(state);
    drop(device);
    PacketCounters::set(&counters.running, 0);
    ended.store(true, Release);
    if let Some(why) = device_gone {
        host.on_event(Event::TunClosed {
            reason: why.to_string(),
        });
    }
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
        self.path.publish_classified();
    }

    fn resolution(&self, query: Vec<u8>) -> Resolution {
        let resolver = self.resolver.clone();
        Box::pin(async move { resolver.resolve(&query).await })
    }

    fn update_in_flight(&self) {
        PacketCounters::set(&self.counters.in_flight, self.tasks.len() as u64);
    }

    async fn on_packet(&mut self, packet: &[u8], device: &TunDevice) {
        match self.path.on_packet(packet) {
            Action::Resolve { query, reply } => {
                let mut resolution = self.resolution(query);
                match poll_once(&mut resolution) {
                    Poll::Ready(answer) => self.send_udp(&reply, &answer, device).await,
                    Poll::Pending => {
                        self.tasks.spawn(async move {
                            let answer = resolution.await;
                            Done::Udp { reply, answer }
                        });
                        self.update_in_flight();
                    }
                }
            }
            Action::Tcp => self.tcp_dirty = true,
            Action::Send(icmp) => {
                if write(&self.counters, icmp, device).await {
                    PacketCounters::add(&self.counters.icmp_sent, 1);
                }
            }
            Action::Drop(reason) => {
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
            Ok((id, Done::Udp { reply, answer })) => {
                self.tcp_tasks.remove(&id);
                self.send_udp(&reply, &answer, device).await;
            }
            Ok((id, Done::Tcp { conn, answer })) => {
                self.tcp_tasks.remove(&id);
                self.path.tcp.deliver(conn, &answer, &self.counters);
                self.tcp_dirty = true;
            }
            Err(e) => {
                log::error!("DNS resolution task failed: {e}");
                if let Some(conn) = self.tcp_tasks.remove(&e.id()) {
                    // Frees the slot; an empty answer is counted, not sent.
                    self.path.tcp.deliver(conn, &[], &self.counters);
                }
            }
        }
        self.update_in_flight();
    }

    async fn send_udp(&mut self, reply: &UdpQuery, answer: &[u8], device: &TunDevice) {
        if let Some(packet) = self.path.udp_answer(reply, answer) {
            if write(&self.counters, packet, device).await {
                PacketCounters::add(&self.counters.udp_answers, 1);
            }
        }
    }

    /// Services the TCP stack if anything happened to it, starts the
    /// queries it read and writes the segments it produced.
    async fn service_tcp(&mut self, device: &TunDevice) {
        if !self.tcp_dirty && !self.path.tcp.is_busy() {
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
            self.path.tcp.service(&mut queries, budget, &self.counters);
            let mut answered_now = false;
            for TcpQuery { conn, message } in queries.drain(..) {
                let mut resolution = self.resolution(message);
                match poll_once(&mut resolution) {
                    Poll::Ready(answer) => {
                        self.path.tcp.deliver(conn, &answer, &self.counters);
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
        self.path.tcp.take_output(&mut out);
        for segment in out.drain(..) {
            write(&self.counters, &segment, device).await;
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

/// Writes `packet` to the device, counting it; whether it went.
async fn write(counters: &PacketCounters, packet: &[u8], device: &TunDevice) -> bool {
    match device.write(packet).await {
        Ok(()) => {
            PacketCounters::add(&counters.packets_out, 1);
            PacketCounters::add(&counters.bytes_out, packet.len() as u64);
            true
        }
        Err(e) => {
            log::debug!("TUN write: {e}");
            PacketCounters::add(&counters.write_errors, 1);
            false
        }
    }
}
