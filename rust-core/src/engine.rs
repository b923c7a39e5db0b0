//! The engine as a host runs it: a resolver on its own thread with a
//! single-threaded Tokio runtime (one thread, fewer wake-ups on a phone),
//! optionally fed by a TUN device.
//!
//! Every method is callable from any thread; the work happens on the
//! engine's thread. [`Engine::resolve`] returns a future that does not need
//! a Tokio runtime to be awaited, so foreign executors (Kotlin coroutines
//! through UniFFI) can await it directly.

use std::fmt;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch};

use crate::config::{Config, ConfigError};
use crate::host::{Event, Host};
use crate::policy::PowerState;
use crate::resolver::Resolver;
use crate::stats::StatsSnapshot;
use crate::tun::{PacketCounters, PacketPathStats};

/// Why the engine could not do what was asked.
#[derive(Debug)]
pub enum EngineError {
    /// The configuration was rejected.
    Config(ConfigError),
    /// The engine thread or runtime could not be started.
    Runtime(std::io::Error),
    /// The engine was stopped.
    Stopped,
    /// A packet loop is already running.
    AlreadyRunning,
    /// The TUN device could not be used.
    Tun(std::io::Error),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Config(e) => write!(f, "{e}"),
            EngineError::Runtime(e) => write!(f, "cannot start the engine thread: {e}"),
            EngineError::Stopped => f.write_str("the engine is stopped"),
            EngineError::AlreadyRunning => f.write_str("a TUN device is already attached"),
            EngineError::Tun(e) => write!(f, "TUN device: {e}"),
        }
    }
}

impl std::error::Error for EngineError {}

impl From<ConfigError> for EngineError {
    fn from(e: ConfigError) -> Self {
        EngineError::Config(e)
    }
}

/// A running engine. Dropping it stops it.
pub struct Engine {
    resolver: Resolver,
    handle: Handle,
    host: Arc<dyn Host>,
    /// Dropping (or sending on) this ends the runtime thread.
    stop: Mutex<Option<oneshot::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The packet loop of the attached TUN device, if any.
    tun: Mutex<Option<AttachedTun>>,
    /// Counters of the packet loop (zero until a TUN device is attached).
    packet_counters: Arc<PacketCounters>,
}

/// A packet loop and the means to stop it and to see it end.
struct AttachedTun {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// Set by the loop once it has let go of its device and its state,
    /// before it reports the device gone: a host that answers that report
    /// by attaching a new device must not be refused because the old
    /// task has not returned yet.
    ended: Arc<AtomicBool>,
}

impl AttachedTun {
    fn has_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire) || self.task.is_finished()
    }
}

impl Engine {
    /// Validates `config`, starts the engine thread and its resolver.
    pub fn new(config: &Config, host: Arc<dyn Host>) -> Result<Engine, EngineError> {
        config.validate()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("dotcore")
            .build()
            .map_err(EngineError::Runtime)?;
        let handle = runtime.handle().clone();
        let resolver = {
            let _entered = handle.enter();
            Resolver::new(config, host.clone())?
        };
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("dotcore".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stop_rx.await;
                });
                // Give connection tasks a moment to send close_notify.
                runtime.shutdown_timeout(std::time::Duration::from_millis(500));
            })
            .map_err(EngineError::Runtime)?;
        host.on_event(Event::Started);
        Ok(Engine {
            resolver,
            handle,
            host,
            stop: Mutex::new(Some(stop_tx)),
            thread: Mutex::new(Some(thread)),
            tun: Mutex::new(None),
            packet_counters: Arc::new(PacketCounters::default()),
        })
    }

    /// Starts an engine and attaches it to a TUN device at once.
    pub fn start(
        config: &Config,
        tun: OwnedFd,
        host: Arc<dyn Host>,
    ) -> Result<Engine, EngineError> {
        let engine = Engine::new(config, host)?;
        engine.attach_tun(tun)?;
        Ok(engine)
    }

    /// Answers DNS packets arriving on `tun` (raw IP packets, as Android's
    /// VpnService delivers them) until [`Engine::stop`]. The engine owns
    /// the descriptor from now on and closes it when it stops.
    ///
    /// One device at a time: while a packet loop runs this fails with
    /// [`EngineError::AlreadyRunning`]. A loop that ended on its own, because
    /// its device went away, makes room for a new device by the time it
    /// reports [`Event::TunClosed`].
    pub fn attach_tun(&self, tun: OwnedFd) -> Result<(), EngineError> {
        self.ensure_running()?;
        let mut slot = self.tun.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|attached| !attached.has_ended()) {
            return Err(EngineError::AlreadyRunning);
        }
        let device = {
            let _entered = self.handle.enter();
            crate::tun::TunDevice::new(tun).map_err(EngineError::Tun)?
        };
        let (stop, stop_rx) = watch::channel(false);
        let ended = Arc::new(AtomicBool::new(false));
        // Marked here rather than when the task first runs, so that stats
        // read right after this call already say the loop is on.
        crate::tun::PacketCounters::set(&self.packet_counters.running, 1);
        let task = self.handle.spawn(crate::tun::run_packet_loop(
            device,
            self.resolver.clone(),
            self.packet_counters.clone(),
            self.host.clone(),
            crate::tun::LoopControl {
                stop: stop_rx,
                ended: ended.clone(),
            },
        ));
        *slot = Some(AttachedTun { stop, task, ended });
        Ok(())
    }

    fn ensure_running(&self) -> Result<(), EngineError> {
        if self.stop.lock().map(|s| s.is_some()).unwrap_or(false) {
            Ok(())
        } else {
            Err(EngineError::Stopped)
        }
    }

    /// Answers one wire-format query. The future can be awaited from any
    /// executor; after [`Engine::stop`] it yields SERVFAIL.
    pub fn resolve(
        &self,
        query: Vec<u8>,
    ) -> impl std::future::Future<Output = Vec<u8>> + Send + 'static {
        let resolver = self.resolver.clone();
        let fallback = crate::wire::error_response(&query, crate::wire::RCODE_SERVFAIL);
        let task = self
            .handle
            .spawn(async move { resolver.resolve(&query).await });
        async move { task.await.unwrap_or(fallback) }
    }

    /// Sets the power state.
    pub fn set_power_state(&self, state: PowerState) {
        self.resolver.set_power_state(state);
    }

    /// The device changed networks; see [`Resolver::network_changed`].
    pub fn network_changed(&self, resolvers: Vec<SocketAddr>) {
        let resolver = self.resolver.clone();
        self.handle
            .spawn(async move { resolver.network_changed(resolvers).await });
    }

    /// The counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.resolver.stats()
    }

    /// The packet path's counters: packets in and out, drops by reason,
    /// ICMP sent, TCP connections. All zero until a TUN device is attached;
    /// still readable after [`Engine::stop`].
    pub fn packet_stats(&self) -> PacketPathStats {
        self.packet_counters.snapshot()
    }

    /// The resolver, for callers already on the engine's runtime.
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// Stops the packet loop (closing the TUN descriptor), closes all
    /// connections and ends the engine thread. Idempotent.
    pub fn stop(&self) {
        let Some(stop) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let attached = self.tun.lock().unwrap_or_else(|e| e.into_inner()).take();
        let tun_task = attached.map(|attached| {
            let _ = attached.stop.send(true);
            attached.task
        });
        let resolver = self.resolver.clone();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        self.handle.spawn(async move {
            if let Some(task) = tun_task {
                // The loop checks its stop signal between batches.
                if tokio::time::timeout(std::time::Duration::from_secs(2), task)
                    .await
                    .is_err()
                {
                    log::warn!("packet loop did not stop in time");
                }
            }
            resolver.shutdown().await;
            let _ = done_tx.send(());
        });
        let _ = done_rx.recv_timeout(std::time::Duration::from_secs(5));
        let _ = stop.send(());
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
        self.host.on_event(Event::Stopped);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}
