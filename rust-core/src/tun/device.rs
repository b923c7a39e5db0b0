//! The TUN descriptor: the crate's only `unsafe` code.
//!
//! Android hands the engine a blocking descriptor
//! (`ParcelFileDescriptor.detachFd()`); Linux tests open `/dev/net/tun`.
//! Either way it is switched to non-blocking and driven by Tokio's
//! [`AsyncFd`], each `read` yielding one whole IP packet and each `write`
//! taking one.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::time::Duration;

use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};
use tokio::io::Interest;

/// Longest a single packet write waits for the device to accept it before
/// the packet is dropped, so a wedged device cannot stall the loop forever.
const WRITE_WAIT: Duration = Duration::from_secs(1);

/// A TUN descriptor driven by the runtime. Dropping it closes the
/// descriptor.
pub(crate) struct TunDevice {
    fd: AsyncFd<File>,
}

/// What one non-blocking read gave.
pub(crate) enum ReadOutcome {
    /// A packet of this many bytes is at the start of the buffer.
    Packet(usize),
    /// Nothing more to read now.
    Empty,
    /// The device is gone for good: a zero-length read (EOF from a
    /// stream or sequenced-packet socket pair standing in for the device),
    /// or `EBADFD`, which Linux returns once the TUN interface behind the
    /// descriptor has been deleted (and then returns on every later read).
    /// The text says which, for the host.
    Closed(&'static str),
    /// The read failed.
    Error(io::Error),
}

impl TunDevice {
    /// Takes ownership of `fd`, makes it non-blocking and registers it with
    /// the current Tokio runtime (so call it inside one).
    pub(crate) fn new(fd: OwnedFd) -> io::Result<TunDevice> {
        set_nonblocking(&fd)?;
        let file = File::from(fd);
        // SAFETY: `file` owns the descriptor and moves into the `AsyncFd`,
        // which owns it from then on; nothing else can close or replace it,
        // `into_inner` is never called, and `File::as_raw_fd` always returns
        // that same descriptor, so it stays valid and registered as long as
        // the `AsyncFd` lives.
        let fd = unsafe {
            AsyncFd::register_with_interest(file, Interest::READABLE | Interest::WRITABLE)
        }
        .map_err(|e| e.into_parts().1)?;
        Ok(TunDevice { fd })
    }

    /// Waits until the device has something to read, or reports an error
    /// condition: a deleted TUN interface only raises `EPOLLERR`, which a
    /// wait for readability alone would never see.
    pub(crate) async fn readable(&self) -> io::Result<AsyncFdReadyGuard<'_, File>> {
        self.fd.ready(Interest::READABLE | Interest::ERROR).await
    }

    /// Reads one packet into `buf` without blocking, clearing the readiness
    /// in `guard` when the device is drained.
    pub(crate) fn try_read(guard: &mut AsyncFdReadyGuard<'_, File>, buf: &mut [u8]) -> ReadOutcome {
        loop {
            match guard.try_io(|fd| fd.get_ref().read(buf)) {
                Ok(Ok(0)) => return ReadOutcome::Closed("end of file on the device"),
                Ok(Ok(n)) => return ReadOutcome::Packet(n),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EBADFD) => {
                    return ReadOutcome::Closed("the TUN interface was deleted (EBADFD)")
                }
                Ok(Err(e)) => return ReadOutcome::Error(e),
                Err(_would_block) => return ReadOutcome::Empty,
            }
        }
    }

    /// Writes one packet. A packet device takes it whole or not at all; if
    /// the device is not writable within a second the packet is dropped.
    pub(crate) async fn write(&self, packet: &[u8]) -> io::Result<()> {
        // The common case: the device takes it at once.
        match self.fd.get_ref().write(packet) {
            Ok(n) => return check_whole(n, packet.len()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let wait = self
            .fd
            .async_io(Interest::WRITABLE, |fd| (&*fd).write(packet));
        match tokio::time::timeout(WRITE_WAIT, wait).await {
            Ok(Ok(n)) => check_whole(n, packet.len()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TUN device not writable",
            )),
        }
    }
}

fn check_whole(written: usize, len: usize) -> io::Result<()> {
    if written == len {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write to the TUN device: {written} of {len} bytes"),
        ))
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: F_GETFL takes no argument and only reads the flags of `raw`,
    // which is open for the whole call because `fd` owns it.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_NONBLOCK != 0 {
        return Ok(());
    }
    // SAFETY: F_SETFL with an integer argument changes only the status flags
    // of `raw`, which `fd` keeps open; no memory is passed.
    let rc = unsafe { libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opens (creating it if needed) the Linux TUN interface `name` in the
/// current network namespace, in TUN mode without packet information
/// (`IFF_TUN | IFF_NO_PI`), as Android's `VpnService` provides it. Returns
/// the descriptor and the interface name the kernel used (`name` may be
/// empty, or contain `%d`, to let the kernel pick).
///
/// Needs CAP_NET_ADMIN, or a persistent device owned by the caller. The
/// addresses and routes of the interface are left to the caller (`ip`).
#[cfg(target_os = "linux")]
pub fn open_tun(name: &str) -> io::Result<(OwnedFd, String)> {
    use std::os::unix::fs::OpenOptionsExt as _;

    let bytes = name.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ
        || bytes
            .iter()
            .any(|&b| b == 0 || b == b'/' || b.is_ascii_whitespace())
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{name:?} is not a valid interface name (at most 15 bytes, no '/', space or NUL)"
            ),
        ));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open("/dev/net/tun")?;

    let mut ifr_name = [0 as libc::c_char; libc::IFNAMSIZ];
    for (dst, &src) in ifr_name.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    // The flag values fit in a c_short (they are defined for it).
    let flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    let mut req = libc::ifreq {
        ifr_name,
        ifr_ifru: libc::__c_anonymous_ifr_ifru { ifru_flags: flags },
    };
    // SAFETY: TUNSETIFF reads and writes exactly one `struct ifreq`; `req` is
    // a fully initialised one that lives across the call, and the
    // descriptor is open because `file` owns it.
    let rc = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            libc::TUNSETIFF,
            &mut req as *mut libc::ifreq,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let actual: Vec<u8> = req
        .ifr_name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    Ok((
        OwnedFd::from(file),
        String::from_utf8_lossy(&actual).into_owned(),
    ))
}
