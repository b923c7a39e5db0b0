//! Immediate ACKs for the start of a connection (TCP_QUICKACK, Linux and
//! Android).
//!
//! Unbound and BIND send their TLS 1.3 NewSessionTicket and then the first
//! answer as two small writes; with Nagle on their side the answer waits
//! until the ticket is acknowledged, and the client's delayed ACK holds
//! that for ~40 ms. Quick-ACK mode acknowledges at once. The kernel leaves
//! the mode by itself, so it is set again after each read, for the first
//! reads of a connection only (handshake, tickets, first answers): later
//! ACKs ride on the next query as usual.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Reads after which quick-ACK mode is set again.
const QUICK_READS: u32 = 16;

pub(crate) struct QuickAck {
    inner: TcpStream,
    reads_left: u32,
}

impl QuickAck {
    pub(crate) fn new(inner: TcpStream) -> QuickAck {
        set(&inner);
        QuickAck {
            inner,
            reads_left: QUICK_READS,
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set(stream: &TcpStream) {
    // Best effort: without it answers are only later.
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_quickack(true) {
        log::debug!("TCP_QUICKACK not set: {e}");
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set(_stream: &TcpStream) {}

impl AsyncRead for QuickAck {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        if self.reads_left > 0 && buf.filled().len() > before {
            self.reads_left -= 1;
            set(&self.inner);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn quick_ack_is_set_on_connect_and_after_a_read() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let mut q = QuickAck::new(client);
        assert!(socket2::SockRef::from(&q.inner).tcp_quickack().unwrap());
        socket2::SockRef::from(&q.inner)
            .set_tcp_quickack(false)
            .unwrap();
        server.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        q.read_exact(&mut b).await.unwrap();
        assert!(socket2::SockRef::from(&q.inner).tcp_quickack().unwrap());
        assert_eq!(q.reads_left, QUICK_READS - 1);
    }
}
