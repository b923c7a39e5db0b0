//! DNS messages on a byte stream: each behind a 2-byte big-endian length
//! (DNS over TCP and over TLS). The only code that writes that prefix: the
//! DoT transport, clear-text TCP, the CLI proxy and the TUN device's TCP
//! stack (synchronously, through [`encode`]) all frame here, so none of
//! them can send a wrapped length; the tokio streams are read here too.
//!
//! Both directions are tokio-util's [`LengthDelimitedCodec`], set to a
//! 2-byte length field and at most [`MAX_MESSAGE`] bytes.

use std::fmt;
use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

/// The largest message a 2-byte length can announce.
pub const MAX_MESSAGE: usize = u16::MAX as usize;

/// A message longer than [`MAX_MESSAGE`]: it cannot be framed, and is
/// refused rather than sent with a wrapped length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    /// The message's length.
    pub len: usize,
}

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a {}-byte DNS message does not fit a 2-byte length (at most {MAX_MESSAGE})",
            self.len
        )
    }
}

impl std::error::Error for TooLong {}

impl From<TooLong> for io::Error {
    fn from(e: TooLong) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// The codec: a 2-byte length field, frames of at most [`MAX_MESSAGE`].
pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(2)
        .max_frame_length(MAX_MESSAGE)
        .new_codec()
}

/// Appends `message` with its length prefix to `out`; `out` is untouched
/// when the message is too long.
pub fn encode(message: &[u8], out: &mut BytesMut) -> Result<(), TooLong> {
    let too_long = TooLong { len: message.len() };
    if message.len() > MAX_MESSAGE {
        return Err(too_long);
    }
    // The codec checks the bound too; with the check above it cannot fail.
    codec().encode(message, out).map_err(|_| too_long)
}

/// `message` with its length prefix, as one buffer.
pub fn framed(message: &[u8]) -> Result<BytesMut, TooLong> {
    let mut out = BytesMut::with_capacity(message.len() + 2);
    encode(message, &mut out)?;
    Ok(out)
}

/// Reads messages from a stream, keeping what arrived beyond the current
/// message (pipelined queries) for the next call.
pub struct FrameReader<R> {
    inner: R,
    codec: LengthDelimitedCodec,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Reads from `inner`.
    pub fn new(inner: R) -> FrameReader<R> {
        FrameReader {
            inner,
            codec: codec(),
            buf: BytesMut::new(),
        }
    }

    /// The next message; `None` when the stream ended between messages, an
    /// error when it ended inside one. Cancel-safe: bytes read before a
    /// cancellation stay buffered.
    pub async fn next(&mut self) -> io::Result<Option<BytesMut>> {
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buf)? {
                return Ok(Some(frame));
            }
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn longer_than_65535_is_refused_not_wrapped() {
        let mut out = BytesMut::from(&b"kept"[..]);
        for len in [MAX_MESSAGE + 1, MAX_MESSAGE + 2, 2 * MAX_MESSAGE + 3] {
            let message = vec![0xAB; len];
            assert_eq!(encode(&message, &mut out), Err(TooLong { len }));
            assert_eq!(&out[..], b"kept", "nothing written for {len}");
            assert!(framed(&message).is_err());
        }
    }

    #[test]
    fn exactly_65535_and_empty_are_framed() {
        let message = vec![0xCD; MAX_MESSAGE];
        let out = framed(&message).unwrap();
        assert_eq!(out.len(), MAX_MESSAGE + 2);
        assert_eq!(out[..2], [0xFF, 0xFF]);
        assert_eq!(out[2..], message[..]);
        assert_eq!(&framed(&[]).unwrap()[..], [0, 0]);
        assert_eq!(&framed(&[7; 300]).unwrap()[..2], [1, 44]);
    }

    #[tokio::test]
    async fn reader_takes_pipelined_split_and_boundary_frames() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let messages: Vec<Vec<u8>> = vec![vec![1; 12], vec![], vec![2; MAX_MESSAGE], vec![3; 40]];
        let mut all = BytesMut::new();
        for m in &messages {
            encode(m, &mut all).unwrap();
        }
        let writer = tokio::spawn(async move {
            // Odd chunk sizes: prefixes and bodies split across reads.
            for chunk in all.chunks(7) {
                tx.write_all(chunk).await.unwrap();
            }
        });
        let mut reader = FrameReader::new(rx);
        for m in &messages {
            assert_eq!(&reader.next().await.unwrap().unwrap()[..], &m[..]);
        }
        writer.await.unwrap();
        assert!(reader.next().await.unwrap().is_none(), "clean end");
    }

    #[tokio::test]
    async fn reader_reports_a_stream_cut_inside_a_message() {
        for cut in [&[0x00][..], &[0x00, 0x05, 1, 2]] {
            let (mut tx, rx) = tokio::io::duplex(64);
            tx.write_all(cut).await.unwrap();
            drop(tx);
            let err = FrameReader::new(rx).next().await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{cut:?}");
        }
    }
}
