//! The packet path on a TUN device. (Being written: see issue "The phone's
//! packet path"; this placeholder only holds the signatures engine.rs uses.)

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use tokio::sync::watch;

use crate::host::Host;
use crate::resolver::Resolver;

/// A TUN descriptor driven by the runtime.
pub(crate) struct TunDevice {
    _fd: OwnedFd,
}

impl TunDevice {
    /// Takes ownership of `fd`.
    pub(crate) fn new(fd: OwnedFd) -> io::Result<TunDevice> {
        Ok(TunDevice { _fd: fd })
    }
}

/// Answers DNS packets on `device` until `stop` turns true.
pub(crate) async fn run_packet_loop(
    device: TunDevice,
    resolver: Resolver,
    host: Arc<dyn Host>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = (device, resolver, host);
    let _ = stop.wait_for(|s| *s).await;
}
