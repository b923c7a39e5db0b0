//! Random DNS message IDs, from the operating system's CSPRNG only.
//!
//! An off-path attacker who guesses a clear-text query's ID (and source
//! port) can forge its answer; on a DoT connection predictable IDs would let
//! a server link queries by sequence. So IDs come from the OS generator
//! (ring's `SystemRandom`, the one rustls uses: `getrandom(2)` on Linux and
//! Android), and when it fails the query fails. There is no weaker fallback.

use std::fmt;
use std::sync::LazyLock;

use rustls::crypto::SecureRandom;

/// The OS generator failed; the query that needed an ID is not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RngFailed;

impl fmt::Display for RngFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the system's random number generator failed")
    }
}

/// Where random bytes come from. A plain function so that tests can put a
/// failing generator in its place.
pub(crate) type Random = fn(&mut [u8]) -> Result<(), RngFailed>;

/// Built once: rustls builds a whole provider (cipher suite lists) to hand
/// out its generator.
static SYSTEM: LazyLock<&'static dyn SecureRandom> =
    LazyLock::new(|| rustls::crypto::ring::default_provider().secure_random);

/// Bytes drawn from the OS at a time. A query needs two; one `getrandom(2)`
/// per query was a tenth of the proxy's syscalls (docs/BENCHMARKS.md,
/// "Instructions and syscalls per query").
const POOL_BYTES: usize = 256;

struct Pool {
    bytes: [u8; POOL_BYTES],
    /// Bytes of `bytes` already handed out; `POOL_BYTES` when empty.
    used: usize,
}

/// One pool for the process: IDs are drawn from the engine's one thread, so
/// the lock is uncontended.
static POOL: std::sync::Mutex<Pool> = std::sync::Mutex::new(Pool {
    bytes: [0; POOL_BYTES],
    used: POOL_BYTES,
});

/// The OS CSPRNG. Small requests are served from a process-wide buffer of
/// OS output, each byte handed out once; a failed refill fails the request.
pub(crate) fn system(buf: &mut [u8]) -> Result<(), RngFailed> {
    if buf.len() > POOL_BYTES / 4 {
        return SYSTEM.fill(buf).map_err(|_| RngFailed);
    }
    {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        if POOL_BYTES - pool.used < buf.len() {
            SYSTEM.fill(&mut pool.bytes).map_err(|_| RngFailed)?;
            pool.used = 0;
        }
        let start = pool.used;
        buf.copy_from_slice(&pool.bytes[start..start + buf.len()]);
        // Handed-out bytes are wiped so that they exist in one place only.
        pool.bytes[start..start + buf.len()].fill(0);
        pool.used += buf.len();
        Ok(())
    }
}

/// A random 16-bit ID from `random`.
pub(crate) fn id(random: Random) -> Result<u16, RngFailed> {
    let mut b = [0u8; 2];
    random(&mut b)?;
    Ok(u16::from_be_bytes(b))
}

/// A generator that always fails, for tests of the failure path.
#[cfg(test)]
pub(crate) fn failing(_: &mut [u8]) -> Result<(), RngFailed> {
    Err(RngFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_generator_gives_no_id() {
        assert_eq!(id(failing), Err(RngFailed));
    }

    #[test]
    fn pooled_bytes_are_never_handed_out_twice() {
        // Across several refills of the pool: a repeat of a 16-byte draw
        // has probability 2^-128.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..(4 * POOL_BYTES / 16) {
            let mut b = [0u8; 16];
            system(&mut b).unwrap();
            assert_ne!(b, [0u8; 16]);
            assert!(seen.insert(b), "a draw repeated");
        }
        let mut big = [0u8; POOL_BYTES];
        system(&mut big).unwrap();
        assert!(big.iter().any(|&x| x != 0));
    }

    #[test]
    fn system_ids_are_not_a_sequence() {
        let ids: Vec<u16> = (0..1000).map(|_| id(system).unwrap()).collect();
        let steps = ids
            .windows(2)
            .filter(|w| w[1].wrapping_sub(w[0]) <= 1)
            .count();
        // Random IDs repeat or step by one with probability 2/65536 each.
        assert!(steps < 5, "{steps} sequential steps in {ids:?}");
        let mut distinct = ids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 970, "{} distinct", distinct.len());
    }
}
