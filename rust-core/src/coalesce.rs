//! Several TLS records in one socket write.
//!
//! A burst of queries leaves as one TLS record per query, so that a server
//! that reads one query per record read still sees every one (dnsdist 1.7's
//! DoT frontend answers only the first query of a record holding several,
//! then waits for the socket to become readable again while the rest sits
//! in its TLS library's buffer, until its read timeout closes the
//! connection). The records still leave together: this adapter, under the
//! TLS stream, holds what TLS writes while the connection task says a batch
//! is being written, and sends it on the flush that ends the batch, in as
//! few writes as the socket takes (one for a burst that fits its buffer).
//!
//! Outside a batch (the handshake, close_notify) it passes writes straight
//! through.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Held bytes beyond which a held write sends what is held first.
const HOLD_LIMIT: usize = 64 * 1024;

pub(crate) struct Coalescing<S> {
    inner: S,
    hold: Arc<AtomicBool>,
    held: Vec<u8>,
    /// How much of `held` the socket has taken.
    sent: usize,
}

impl<S> Coalescing<S> {
    /// Wraps `inner`; writes are held while `hold` is set.
    pub(crate) fn new(inner: S, hold: Arc<AtomicBool>) -> Coalescing<S> {
        Coalescing {
            inner,
            hold,
            held: Vec::new(),
            sent: 0,
        }
    }
}

impl<S: AsyncWrite + Unpin> Coalescing<S> {
    /// Sends everything held.
    fn poll_send_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.held.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.held[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.held.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalescing<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalescing<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.hold.load(Ordering::Acquire) {
            if this.held.len() >= HOLD_LIMIT {
                ready!(this.poll_send_held(cx))?;
            }
            this.held.extend_from_slice(buf);
            return Poll::Ready(Ok(buf.len()));
        }
        ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn held_writes_leave_on_flush_and_others_pass_through() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let hold = Arc::new(AtomicBool::new(false));
        let mut c = Coalescing::new(a, hold.clone());
        c.write_all(b"hs").await.unwrap();
        let mut got = [0u8; 2];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hs", "not held outside a batch");

        hold.store(true, Ordering::Release);
        c.write_all(b"one").await.unwrap();
        c.write_all(b"two").await.unwrap();
        hold.store(false, Ordering::Release);
        let mut probe = [0u8; 1];
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), b.read(&mut probe))
                .await
                .is_err(),
            "held until the flush"
        );
        c.flush().await.unwrap();
        let mut got = [0u8; 6];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"onetwo");

        hold.store(true, Ordering::Release);
        let big = vec![7u8; HOLD_LIMIT + 10];
        c.write_all(&big).await.unwrap();
        c.write_all(b"x").await.unwrap();
        hold.store(false, Ordering::Release);
        c.shutdown().await.unwrap();
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest.len(), HOLD_LIMIT + 11);
    }
}
