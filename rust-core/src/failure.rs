//! Why a server could not be used, in a stable kind and in words a person
//! understands.
//!
//! Every failure to reach, authenticate or talk to a DoT server ends up as
//! one [`ServerFailure`]: the engine keeps the last one per server, reports
//! it in stats and events, and the CLI and the app print its text. The kind
//! is stable (its [`ServerFailureKind::as_str`] name is what JSON and the FFI
//! carry); the text may improve between releases.

use std::fmt;

use serde::{Serialize, Serializer};

/// The stable category of a server failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerFailureKind {
    /// The server's address refused the TCP connection (RST).
    ConnectionRefused,
    /// The TCP connection was not established within the connect timeout.
    ConnectTimedOut,
    /// The network or host is unreachable from this device.
    NetworkUnreachable,
    /// Another socket error while connecting.
    ConnectFailed,
    /// The server sent a TLS alert during or after the handshake.
    TlsAlert,
    /// The server offered only TLS versions we refuse (below 1.2).
    TlsVersion,
    /// The certificate is valid but not for the configured name or address.
    CertificateNameMismatch,
    /// The certificate (or one in its chain) has expired.
    CertificateExpired,
    /// The certificate (or one in its chain) is not valid yet.
    CertificateNotYetValid,
    /// The certificate is not for TLS servers (extended key usage).
    CertificateWrongPurpose,
    /// The chain does not lead to a trusted CA.
    CertificateUntrusted,
    /// The server presented a CA certificate as its own, and that CA was
    /// not itself given as trusted.
    CertificateIsCa,
    /// Another certificate problem (bad encoding, bad signature, revoked...).
    CertificateInvalid,
    /// Pins are configured and no certificate in the chain matched them.
    PinMismatch,
    /// The server broke the TLS or DNS protocol.
    ProtocolError,
    /// The server accepted the connection but did not answer in time.
    AnswerTimedOut,
    /// The connection closed while queries were outstanding.
    ConnectionLost,
}

impl ServerFailureKind {
    /// Every kind, in declaration order: for consumers that must handle
    /// each (the app's advice per kind is tested against this list).
    pub const ALL: [ServerFailureKind; 17] = [
        ServerFailureKind::ConnectionRefused,
        ServerFailureKind::ConnectTimedOut,
        ServerFailureKind::NetworkUnreachable,
        ServerFailureKind::ConnectFailed,
        ServerFailureKind::TlsAlert,
        ServerFailureKind::TlsVersion,
        ServerFailureKind::CertificateNameMismatch,
        ServerFailureKind::CertificateExpired,
        ServerFailureKind::CertificateNotYetValid,
        ServerFailureKind::CertificateWrongPurpose,
        ServerFailureKind::CertificateUntrusted,
        ServerFailureKind::CertificateIsCa,
        ServerFailureKind::CertificateInvalid,
        ServerFailureKind::PinMismatch,
        ServerFailureKind::ProtocolError,
        ServerFailureKind::AnswerTimedOut,
        ServerFailureKind::ConnectionLost,
    ];

    /// The kind's stable name (snake case), as JSON and the FFI carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerFailureKind::ConnectionRefused => "connection_refused",
            ServerFailureKind::ConnectTimedOut => "connect_timed_out",
            ServerFailureKind::NetworkUnreachable => "network_unreachable",
            ServerFailureKind::ConnectFailed => "connect_failed",
            ServerFailureKind::TlsAlert => "tls_alert",
            ServerFailureKind::TlsVersion => "tls_version",
            ServerFailureKind::CertificateNameMismatch => "certificate_name_mismatch",
            ServerFailureKind::CertificateExpired => "certificate_expired",
            ServerFailureKind::CertificateNotYetValid => "certificate_not_yet_valid",
            ServerFailureKind::CertificateWrongPurpose => "certificate_wrong_purpose",
            ServerFailureKind::CertificateUntrusted => "certificate_untrusted",
            ServerFailureKind::CertificateIsCa => "certificate_is_ca",
            ServerFailureKind::CertificateInvalid => "certificate_invalid",
            ServerFailureKind::PinMismatch => "pin_mismatch",
            ServerFailureKind::ProtocolError => "protocol_error",
            ServerFailureKind::AnswerTimedOut => "answer_timed_out",
            ServerFailureKind::ConnectionLost => "connection_lost",
        }
    }

    /// Whether the user can fix this by changing the server's name, CA or
    /// pins (as opposed to a network or server problem).
    pub fn is_authentication(self) -> bool {
        matches!(
            self,
            ServerFailureKind::CertificateNameMismatch
                | ServerFailureKind::CertificateExpired
                | ServerFailureKind::CertificateNotYetValid
                | ServerFailureKind::CertificateWrongPurpose
                | ServerFailureKind::CertificateUntrusted
                | ServerFailureKind::CertificateIsCa
                | ServerFailureKind::CertificateInvalid
                | ServerFailureKind::PinMismatch
        )
    }
}

/// Serialised as its stable name, [`ServerFailureKind::as_str`].
impl Serialize for ServerFailureKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for ServerFailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failure of one server: its kind and a sentence for people.
/// Serialised as `kind` (the stable name) and `reason` (the text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerFailure {
    /// The stable category.
    pub kind: ServerFailureKind,
    /// What happened, for people (no trailing period), e.g. "certificate is
    /// not valid for dot.test (it names other.example)".
    #[serde(rename = "reason")]
    pub text: String,
}

impl ServerFailure {
    /// A failure of `kind` described by `text`.
    pub fn new(kind: ServerFailureKind, text: impl Into<String>) -> ServerFailure {
        ServerFailure {
            kind,
            text: text.into(),
        }
    }
}

impl fmt::Display for ServerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::ServerFailureKind;

    /// `ALL` must list every variant once: a new variant is a compile error
    /// in this match until it is also added to `ALL` (its index here).
    #[test]
    fn all_lists_every_kind_once() {
        for (i, kind) in ServerFailureKind::ALL.iter().enumerate() {
            let position = match kind {
                ServerFailureKind::ConnectionRefused => 0,
                ServerFailureKind::ConnectTimedOut => 1,
                ServerFailureKind::NetworkUnreachable => 2,
                ServerFailureKind::ConnectFailed => 3,
                ServerFailureKind::TlsAlert => 4,
                ServerFailureKind::TlsVersion => 5,
                ServerFailureKind::CertificateNameMismatch => 6,
                ServerFailureKind::CertificateExpired => 7,
                ServerFailureKind::CertificateNotYetValid => 8,
                ServerFailureKind::CertificateWrongPurpose => 9,
                ServerFailureKind::CertificateUntrusted => 10,
                ServerFailureKind::CertificateIsCa => 11,
                ServerFailureKind::CertificateInvalid => 12,
                ServerFailureKind::PinMismatch => 13,
                ServerFailureKind::ProtocolError => 14,
                ServerFailureKind::AnswerTimedOut => 15,
                ServerFailureKind::ConnectionLost => 16,
            };
            assert_eq!(i, position, "{kind} out of place in ALL");
        }
        let mut names: Vec<&str> = ServerFailureKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            ServerFailureKind::ALL.len(),
            "names are distinct"
        );
    }
}
