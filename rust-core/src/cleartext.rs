//! Clear-text DNS to the network's resolvers: the opportunistic profile's
//! last resort (RFC 8310 §5). UDP first, TCP when the answer is truncated.
//!
//! This module is only reachable from opportunistic mode: [`Cleartext`] can
//! only be built for [`Mode::Opportunistic`], so a strict engine has no
//! value to call it on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, UdpSocket};
use tokio::time::timeout;

use crate::config::Mode;
use crate::framing::{self, FrameReader};
use crate::host::{protected_socket, Host};
use crate::stats::{FailureKind, Stats};
use crate::wire::{self, Layout, Query, QuestionKey, Response};

/// Why the clear-text exchange failed.
#[derive(Debug)]
pub(crate) enum CleartextError {
    NoResolvers,
    Timeout,
    Io(std::io::Error),
    BadResponse,
    /// No random ID could be drawn; nothing was sent.
    Random,
}

impl std::fmt::Display for CleartextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CleartextError::NoResolvers => f.write_str("no network resolvers known"),
            CleartextError::Timeout => f.write_str("timed out"),
            CleartextError::Io(e) => write!(f, "{e}"),
            CleartextError::BadResponse => f.write_str("invalid response"),
            CleartextError::Random => write!(f, "{}", crate::rng::RngFailed),
        }
    }
}

/// A clear-text client; exists only in opportunistic mode.
pub(crate) struct Cleartext {
    host: Arc<dyn Host>,
    stats: Arc<Stats>,
    attempt_timeout: Duration,
    random: crate::rng::Random,
}

impl Cleartext {
    /// `None` unless `mode` is opportunistic.
    pub(crate) fn for_mode(
        mode: Mode,
        host: Arc<dyn Host>,
        stats: Arc<Stats>,
        attempt_timeout: Duration,
    ) -> Option<Cleartext> {
        (mode == Mode::Opportunistic).then_some(Cleartext {
            host,
            stats,
            attempt_timeout,
            random: crate::rng::system,
        })
    }

    /// Asks each resolver in turn until one answers.
    pub(crate) async fn exchange(
        &self,
        query: &Query,
        resolvers: &[SocketAddr],
    ) -> Result<Response, CleartextError> {
        let mut last = CleartextError::NoResolvers;
        for &server in resolvers {
            match self.exchange_one(query, server).await {
                Ok(r) => return Ok(r),
                Err(CleartextError::Random) => {
                    log::error!("clear-text query not sent: {}", crate::rng::RngFailed);
                    return Err(CleartextError::Random);
                }
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
    ) -> Result<Response, CleartextError> {
        // A random ID and a fresh socket per query, against off-path spoofing
        // of clear-text answers. The ID is from the OS CSPRNG or the query is
        // not sent (rng.rs). The socket is never bound, so connect() takes an
        // ephemeral port the kernel picks at random (docs/architecture.md):
        // picking one here would need retries on ports in use and could
        // leave the range the system reserves for this.
        let id = crate::rng::id(self.random).map_err(|_| CleartextError::Random)?;
        let message = query.to_upstream(id, 0, false);
        let response = timeout(
            self.attempt_timeout,
            self.udp(&message, server, &query.key, id),
        )
        .await
        .map_err(|_| CleartextError::Timeout)??;
        if !wire::is_truncated(&response.bytes) {
            return Ok(response);
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
    ) -> Result<Response, CleartextError> {
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
    ) -> Result<Response, CleartextError> {
        // Framed before connecting: a message too long for TCP goes nowhere.
        let framed = framing::framed(message).map_err(|e| CleartextError::Io(e.into()))?;
        let socket = protected_socket(&*self.host, server, socket2::Type::STREAM)
            .map_err(CleartextError::Io)?;
        let socket = TcpSocket::from_std_stream(socket.into());
        let mut stream = socket.connect(server).await.map_err(CleartextError::Io)?;
        stream
            .write_all(&framed)
            .await
            .map_err(CleartextError::Io)?;
        Stats::add(&self.stats.bytes_sent, framed.len() as u64);
        let answer = FrameReader::new(&mut stream)
            .next()
            .await
            .map_err(CleartextError::Io)?
            .ok_or_else(|| CleartextError::Io(std::io::ErrorKind::UnexpectedEof.into()))?;
        Stats::add(&self.stats.bytes_received, answer.len() as u64 + 2);
        matching(&answer, key, id).ok_or(CleartextError::BadResponse)
    }
}

fn matching(msg: &[u8], key: &QuestionKey, id: u16) -> Option<Response> {
    let layout = Layout::parse(msg).ok()?;
    if !wire::is_response(msg) || wire::id(msg) != id {
        return None;
    }
    match QuestionKey::of(msg, &layout) {
        Ok(Some(k)) if k.same_question(key) => Some(Response {
            bytes: msg.to_vec(),
            layout,
        }),
        _ => None,
    }
}

impl From<&CleartextError> for FailureKind {
    fn from(e: &CleartextError) -> FailureKind {
        match e {
            // Not a network problem: nothing was sent.
            CleartextError::Random => FailureKind::Random,
            CleartextError::NoResolvers
            | CleartextError::Timeout
            | CleartextError::Io(_)
            | CleartextError::BadResponse => FailureKind::Cleartext,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::NoHost;
    use tokio::io::AsyncReadExt;

    #[test]
    fn only_a_failed_random_draw_is_not_a_cleartext_failure() {
        assert_eq!(
            FailureKind::from(&CleartextError::Random),
            FailureKind::Random
        );
        for e in [
            CleartextError::NoResolvers,
            CleartextError::Timeout,
            CleartextError::Io(std::io::ErrorKind::ConnectionRefused.into()),
            CleartextError::BadResponse,
        ] {
            assert_eq!(FailureKind::from(&e), FailureKind::Cleartext, "{e}");
        }
    }

    /// A query for `a.test. A`.
    fn query() -> Query {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x01a\x04test\x00\x00\x01\x00\x01");
        Query::parse(q).unwrap()
    }

    /// A UDP resolver on loopback that answers every query with itself as
    /// the response (QR set), and reports each query's ID and source port.
    async fn echo_resolver() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<(u16, u16)>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
                let _ = tx.send((wire::id(&buf[..n]), peer.port()));
                buf[2] |= 0x80;
                let _ = socket.send_to(&buf[..n], peer).await;
            }
        });
        (addr, rx)
    }

    fn client(random: crate::rng::Random) -> Cleartext {
        let mut c = Cleartext::for_mode(
            Mode::Opportunistic,
            Arc::new(NoHost),
            Arc::new(Stats::default()),
            Duration::from_secs(2),
        )
        .unwrap();
        c.random = random;
        c
    }

    #[tokio::test]
    async fn a_failing_random_generator_fails_the_query_unsent() {
        let (server, mut seen) = echo_resolver().await;
        let result = client(crate::rng::failing)
            .exchange(&query(), &[server])
            .await;
        assert!(
            matches!(result, Err(CleartextError::Random)),
            "{:?}",
            result.map(|r| r.bytes)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(seen.try_recv().is_err(), "a query went out");
    }

    #[tokio::test]
    async fn a_message_too_long_for_tcp_framing_is_not_sent() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = listener.local_addr().unwrap();
        let received = tokio::spawn(async move {
            let Ok(Ok((mut s, _))) = timeout(Duration::from_millis(500), listener.accept()).await
            else {
                return 0;
            };
            let mut buf = Vec::new();
            let _ = timeout(Duration::from_millis(500), s.read_to_end(&mut buf)).await;
            buf.len()
        });
        let key = query().key;
        // 65536 bytes: a length cast to u16 would announce 0.
        let message = vec![0u8; crate::framing::MAX_MESSAGE + 1];
        let result = timeout(
            Duration::from_secs(2),
            client(crate::rng::system).tcp(&message, server, &key, 0),
        )
        .await;
        assert!(
            matches!(result, Ok(Err(CleartextError::Io(_)))),
            "{:?}",
            result.map(|r| r.map(|a| a.bytes))
        );
        assert_eq!(received.await.unwrap(), 0, "bytes reached the server");
    }

    #[tokio::test]
    async fn ids_and_source_ports_are_not_sequential() {
        let (server, mut seen) = echo_resolver().await;
        let c = client(crate::rng::system);
        let mut ids = Vec::new();
        let mut ports = Vec::new();
        for _ in 0..64 {
            c.exchange(&query(), &[server]).await.unwrap();
            let (id, port) = seen.recv().await.unwrap();
            ids.push(id);
            ports.push(port);
        }
        for (what, v) in [("IDs", &ids), ("ports", &ports)] {
            let steps = v
                .windows(2)
                .filter(|w| w[1].wrapping_sub(w[0]) <= 1)
                .count();
            assert!(steps < 4, "{what}: {steps} sequential steps in {v:?}");
        }
    }
}
