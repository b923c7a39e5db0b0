//! A UDP+TCP port that counts every datagram and connection it receives:
//! the "network resolver" of strict-mode tests, which must stay untouched
//! whatever goes wrong with DoT.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the counting thread looks at its sockets.
const POLL: Duration = Duration::from_millis(50);

/// Polls at most this many times (120 s): longer than any test runs, so the
/// thread ends even if the trap is leaked.
const MAX_POLLS: usize = 2400;

/// The counting port; dropping it stops the thread.
pub struct CleartextTrap {
    /// Where it listens (UDP and TCP, same port on 127.0.0.1).
    pub addr: SocketAddr,
    packets: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl CleartextTrap {
    /// Binds a free loopback port for UDP and TCP and starts counting.
    pub fn new() -> CleartextTrap {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("trap UDP bind");
        let addr = udp.local_addr().expect("trap address");
        let tcp = TcpListener::bind(addr).expect("trap TCP bind");
        tcp.set_nonblocking(true).expect("trap TCP non-blocking");
        udp.set_read_timeout(Some(POLL)).expect("trap UDP timeout");
        let packets = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counter, stopped) = (packets.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            for _ in 0..MAX_POLLS {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if udp.recv_from(&mut buf).is_ok() {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                if tcp.accept().is_ok() {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        CleartextTrap {
            addr,
            packets,
            stop,
        }
    }

    /// Datagrams and connections received so far.
    pub fn count(&self) -> usize {
        self.packets.load(Ordering::SeqCst)
    }
}

impl Default for CleartextTrap {
    fn default() -> Self {
        CleartextTrap::new()
    }
}

impl Drop for CleartextTrap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
