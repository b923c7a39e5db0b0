//! Clear-text DNS to the network's resolvers: the opportunistic profile's
//! last resort (RFC 8310 §5). UDP first, TCP when the answer is truncated.
//!
//! This module is only reachable from opportunistic mode: [`Cleartext`] can
//! only be built for [`Mode::Opportunistic`], so a strict engine has no
//! value to call it on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, UdpSocket};
use tokio::time::timeout;

use crate::config::Mode;
use crate::host::{protected_socket, Host};
use crate::stats::Stats;
use crate::wire::{self, Layout, Query, QuestionKey};

/// Why the clear-text exchange failed.
#[derive(Debug)]
pub(crate) enum CleartextError {
    NoResolvers,
    Timeout,
    Io(std::io::Error),
    BadResponse,
}

impl std::fmt::Display for CleartextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CleartextError::NoResolvers => f.write_str("no network resolvers known"),
            CleartextError::Timeout => f.write_str("timed out"),
            CleartextError::Io(e) => write!(f, "{e}"),
            CleartextError::BadResponse => f.write_str("invalid response"),
        }
    }
}

/// A clear-text client; exists only in opportunistic mode.
pub(crate) struct Cleartext {
    host: Arc<dyn Host>,
    stats: Arc<Stats>,
    attempt_timeout: Duration,
}

impl Cleartext {
    /// `None` unless `mode` is opportunistic.
    pub fn for_mode(
        mode: Mode,
        host: Arc<dyn Host>,
        stats: Arc<Stats>,
        attempt_timeout: Duration,
    ) -> Option<Cleartext> {
        (mode == Mode::Opportunistic).then_some(Cleartext {
            host,
            stats,
            attempt_timeout,
        })
    }

    /// Asks each resolver in turn until one answers.
    pub async fn exchange(
        &self,
        query: &Query,
        resolvers: &[SocketAddr],
    ) -> Result<(Vec<u8>, Layout), CleartextError> {
        let mut last = CleartextError::NoResolvers;
        for &server in resolvers {
            match self.exchange_one(query, server).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    log::info!("clear-text resolver {server}: {e}");
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn exchange_one(
        &self,
        query: &Query,
        server: SocketAddr,
    ) -> Result<(Vec<u8>, Layout), CleartextError> {
        // A random ID and a fresh socket (random source port) per query, the
        // usual defence against off-path spoofing of clear-text answers.
        let id = random_id();
        let message = query.to_upstream(id, 0, false);
        let (bytes, layout) = timeout(
            self.attempt_timeout,
            self.udp(&message, server, &query.key, id),
        )
        .await
        .map_err(|_| CleartextError::Timeout)??;
        if !wire::is_truncated(&bytes) {
            return Ok((bytes, layout));
        }
        timeout(
            self.attempt_timeout,
            self.tcp(&message, server, &query.key, id),
        )
        .await
        .map_err(|_| CleartextError::Timeout)?
    }

    async fn udp(
        &self,
        message: &[u8],
        server: SocketAddr,
        key: &QuestionKey,
        id: u16,
    ) -> Result<(Vec<u8>, Layout), CleartextError> {
        let socket = protected_socket(&*self.host, server, socket2::Type::DGRAM)
            .map_err(CleartextError::Io)?;
        let socket = UdpSocket::from_std(socket.into()).map_err(CleartextError::Io)?;
        socket.connect(server).await.map_err(CleartextError::Io)?;
        socket.send(message).await.map_err(CleartextError::Io)?;
        Stats::add(&self.stats.bytes_sent, message.len() as u64);
        let mut buf = vec![0u8; 65_535];
        // Stray or spoofed datagrams are skipped, bounded by the timeout above.
        loop {
            let n = socket.recv(&mut buf).await.map_err(CleartextError::Io)?;
            Stats::add(&self.stats.bytes_received, n as u64);
            if let Some(r) = matching(&buf[..n], key, id) {
                return Ok(r);
            }
        }
    }

    async fn tcp(
        &self,
        message: &[u8],
        server: SocketAddr,
        key: &QuestionKey,
        id: u16,
    ) -> Result<(Vec<u8>, Layout), CleartextError> {
        let socket = protected_socket(&*self.host, server, socket2::Type::STREAM)
            .map_err(CleartextError::Io)?;
        let socket = TcpSocket::from_std_stream(socket.into());
        let mut stream = socket.connect(server).await.map_err(CleartextError::Io)?;
        let mut framed = Vec::with_capacity(message.len() + 2);
        framed.extend_from_slice(&(message.len() as u16).to_be_bytes());
        framed.extend_from_slice(message);
        stream
            .write_all(&framed)
            .await
            .map_err(CleartextError::Io)?;
        Stats::add(&self.stats.bytes_sent, framed.len() as u64);
        let len = stream.read_u16().await.map_err(CleartextError::Io)? as usize;
        let mut buf = vec![0u8; len];
        stream
            .read_exact(&mut buf)
            .await
            .map_err(CleartextError::Io)?;
        Stats::add(&self.stats.bytes_received, len as u64 + 2);
        matching(&buf, key, id).ok_or(CleartextError::BadResponse)
    }
}

fn matching(msg: &[u8], key: &QuestionKey, id: u16) -> Option<(Vec<u8>, Layout)> {
    let layout = Layout::parse(msg).ok()?;
    if !wire::is_response(msg) || wire::id(msg) != id {
        return None;
    }
    match QuestionKey::of(msg, &layout) {
        Ok(Some(k)) if k.same_question(key) => Some((msg.to_vec(), layout)),
        _ => None,
    }
}

/// A random 16-bit ID from the OS's generator through ring.
pub(crate) fn random_id() -> u16 {
    use rustls::crypto::ring::default_provider;
    let mut b = [0u8; 2];
    if default_provider().secure_random.fill(&mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        return nanos as u16;
    }
    u16::from_be_bytes(b)
}
