//! TLS client configuration and server authentication (RFC 8310).
//!
//! A server authenticates in one of two ways, as stubby/getdns do:
//! - **SPKI pins** (RFC 7469 `pin-sha256`): when pins are configured, the
//!   server is authenticated exactly when the SHA-256 of the
//!   SubjectPublicKeyInfo of *any* certificate it presents matches one of
//!   them. A self-signed server can be pinned this way.
//! - **Certificate chain and name**: without pins, the chain must validate
//!   to a trust anchor (the platform's, through rustls-platform-verifier, or
//!   an extra CA given in the configuration) for the authentication domain
//!   name, or for the server's IP address when it has no name. A
//!   self-signed certificate that was itself given as an extra CA is
//!   trusted as itself, names and dates still checked
//!   (see `verify_trusted_end_entity`).
//!
//! A refusal is an [`AuthError`] that says what was expected and what the
//! server presented; [`tls_failure`] turns any handshake error into a
//! [`ServerFailure`]. docs/certificates.md lists which certificate forms are
//! accepted and how each refusal reads.
//!
//! In strict mode failing authentication fails the handshake. In
//! opportunistic mode the handshake is accepted anyway, and whether it
//! authenticated is recorded for the UI.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

use crate::config::{server_name, Mode, ServerSpec};
use crate::failure::{ServerFailure, ServerFailureKind};

/// ALPN protocol identifier for DoT (RFC 7858 §3.1, IANA "dot").
pub const ALPN_DOT: &[u8] = b"dot";

/// TLS sessions remembered per server for resumption.
const SESSIONS_PER_SERVER: usize = 16;

/// How many names or pins a failure text lists before it says "and N more":
/// a server's certificate can carry hundreds of SANs, and the text is for
/// people.
const LISTED_AT_MOST: usize = 4;

/// Why a server did not authenticate.
///
/// Each variant carries what a person needs to fix the configuration (the
/// name that was expected and the names the certificate has, the pins on
/// both sides, the date a certificate stopped being valid).
/// [`AuthError::failure`] turns it into a [`ServerFailure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Pins were configured and no certificate in the chain matched.
    PinMismatch {
        /// The configured pins, base64 (as in `pin-sha256="..."`).
        expected: Vec<String>,
        /// The pins of the certificates the server sent, base64, in the
        /// order sent; certificates webpki cannot parse have none.
        seen: Vec<String>,
    },
    /// The chain is valid but the certificate does not name the server.
    NameMismatch {
        /// The name (or IP address) the server was checked for.
        expected: String,
        /// The DNS names and IP addresses in the certificate's subject
        /// alternative names (webpki ignores the common name).
        presented: Vec<String>,
    },
    /// The certificate, or one in its chain, has expired.
    Expired {
        /// When it stopped being valid, when the verifier said.
        not_after: Option<UnixTime>,
    },
    /// The certificate, or one in its chain, is not valid yet.
    NotYetValid {
        /// When it becomes valid, when the verifier said.
        not_before: Option<UnixTime>,
    },
    /// The certificate's extended key usage does not include TLS server
    /// authentication.
    WrongPurpose {
        /// The purposes it does list, in words.
        presented: Vec<String>,
    },
    /// The chain does not lead to any trusted CA.
    Untrusted,
    /// The server presented a CA certificate (`CA:TRUE`) as its own, and
    /// that certificate was not itself given as trusted.
    IsCa,
    /// Another reason the chain was refused (bad encoding, bad signature,
    /// unsupported algorithm...), as the verifier put it.
    Invalid(String),
    /// No trust anchor is available to validate the chain.
    NoVerifier,
}

impl AuthError {
    /// The stable kind of this refusal.
    pub fn kind(&self) -> ServerFailureKind {
        match self {
            AuthError::PinMismatch { .. } => ServerFailureKind::PinMismatch,
            AuthError::NameMismatch { .. } => ServerFailureKind::CertificateNameMismatch,
            AuthError::Expired { .. } => ServerFailureKind::CertificateExpired,
            AuthError::NotYetValid { .. } => ServerFailureKind::CertificateNotYetValid,
            AuthError::WrongPurpose { .. } => ServerFailureKind::CertificateWrongPurpose,
            AuthError::Untrusted | AuthError::NoVerifier => ServerFailureKind::CertificateUntrusted,
            AuthError::IsCa => ServerFailureKind::CertificateIsCa,
            AuthError::Invalid(_) => ServerFailureKind::CertificateInvalid,
        }
    }

    /// This refusal as a [`ServerFailure`]: its kind and a sentence for
    /// people.
    pub fn failure(&self) -> ServerFailure {
        ServerFailure::new(self.kind(), self.to_string())
    }

    /// The refusal a rustls certificate error stands for. `Other` errors
    /// that carry one of our own [`AuthError`]s give it back; webpki's
    /// `CaUsedAsEndEntity` (which rustls passes on as `Other`) is
    /// [`AuthError::IsCa`].
    pub fn from_certificate_error(e: &rustls::CertificateError) -> AuthError {
        use rustls::CertificateError as C;
        #[allow(deprecated)]
        match e {
            C::NotValidForNameContext {
                expected,
                presented,
            } => AuthError::NameMismatch {
                expected: name_text(expected),
                presented: presented.iter().map(|p| presented_name(p)).collect(),
            },
            C::NotValidForName => AuthError::NameMismatch {
                expected: String::new(),
                presented: Vec::new(),
            },
            C::ExpiredContext { not_after, .. } => AuthError::Expired {
                not_after: Some(*not_after),
            },
            C::Expired => AuthError::Expired { not_after: None },
            C::NotValidYetContext { not_before, .. } => AuthError::NotYetValid {
                not_before: Some(*not_before),
            },
            C::NotValidYet => AuthError::NotYetValid { not_before: None },
            C::InvalidPurposeContext { presented, .. } => AuthError::WrongPurpose {
                presented: presented.iter().map(|p| p.to_string()).collect(),
            },
            C::InvalidPurpose => AuthError::WrongPurpose {
                presented: Vec::new(),
            },
            C::UnknownIssuer => AuthError::Untrusted,
            C::Other(other) => {
                if let Some(ours) = other.0.downcast_ref::<AuthError>() {
                    ours.clone()
                } else if matches!(
                    other.0.downcast_ref::<webpki::Error>(),
                    Some(webpki::Error::CaUsedAsEndEntity)
                ) {
                    AuthError::IsCa
                } else {
                    AuthError::Invalid(other.to_string())
                }
            }
            other => AuthError::Invalid(format!("{other:?}")),
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::PinMismatch { expected, seen } => {
                write!(
                    f,
                    "no certificate matches the configured pins (expected pin-sha256 {}; ",
                    listed(expected)
                )?;
                if seen.is_empty() {
                    f.write_str("the server's chain has no certificate with a readable key)")
                } else {
                    write!(f, "the server's chain has {})", listed(seen))
                }
            }
            AuthError::NameMismatch {
                expected,
                presented,
            } => {
                if expected.is_empty() {
                    f.write_str("certificate is not valid for the server's name")?;
                } else {
                    write!(f, "certificate is not valid for {expected}")?;
                }
                if presented.is_empty() {
                    f.write_str(" (it names no DNS name or IP address)")
                } else {
                    write!(f, " (it names {})", listed(presented))
                }
            }
            AuthError::Expired { not_after } => match not_after {
                Some(t) => write!(f, "certificate expired on {}", date(*t)),
                None => f.write_str("certificate expired"),
            },
            AuthError::NotYetValid { not_before } => match not_before {
                Some(t) => write!(f, "certificate is not valid before {}", date(*t)),
                None => f.write_str("certificate is not valid yet"),
            },
            AuthError::WrongPurpose { presented } => {
                f.write_str("certificate is not for TLS servers")?;
                if presented.is_empty() {
                    Ok(())
                } else {
                    write!(f, " (its extended key usage is {})", listed(presented))
                }
            }
            AuthError::Untrusted => f.write_str(
                "certificate is not signed by a trusted CA (give the server's CA or pin its key)",
            ),
            AuthError::IsCa => f.write_str(
                "the server presented a CA certificate as its own; \
                 give that exact certificate as the trusted CA to accept it",
            ),
            AuthError::Invalid(e) => write!(f, "certificate rejected: {e}"),
            AuthError::NoVerifier => f.write_str("no trust anchors available"),
        }
    }
}

impl std::error::Error for AuthError {}

/// `items` joined with ", ", cut after [`LISTED_AT_MOST`] entries.
fn listed(items: &[String]) -> String {
    let mut s = items
        .iter()
        .take(LISTED_AT_MOST)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > LISTED_AT_MOST {
        s.push_str(&format!(" and {} more", items.len() - LISTED_AT_MOST));
    }
    s
}

/// A server name as people write it.
fn name_text(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(d) => d.as_ref().to_owned(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

/// Longest SAN kept in a failure text; the certificate comes from the
/// server, so its names are cut and stripped of control characters.
const PRESENTED_NAME_MAX: usize = 100;

/// One SAN as webpki's context reports it (`DnsName("x")`,
/// `IpAddress(1.2.3.4)`), without the wrapping.
fn presented_name(p: &str) -> String {
    let bare = p
        .strip_prefix("DnsName(\"")
        .and_then(|r| r.strip_suffix("\")"))
        .or_else(|| {
            p.strip_prefix("IpAddress(")
                .and_then(|r| r.strip_suffix(')'))
        })
        .unwrap_or(p);
    // webpki writes IPv6 addresses in its own uncompressed form ("0::1");
    // people and every other tool write "::1".
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return ip.to_string();
    }
    bare.chars()
        .filter(|c| !c.is_control())
        .take(PRESENTED_NAME_MAX)
        .collect()
}

/// `t` as a calendar date (UTC), e.g. `2025-01-01`.
fn date(t: UnixTime) -> String {
    let (y, m, d) = civil_from_days(t.as_secs() / 86_400);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The proleptic Gregorian date of day `days` after 1970-01-01, counting
/// in 400-year eras of 146097 days (the calendar repeats every era).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shifted so eras start on 0000-03-01: leap days fall at the end of a
    // year, which makes the month arithmetic linear.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (the inverse
/// of [`civil_from_days`]); `None` before 1970.
fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y / 400;
    let yoe = y % 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d.checked_sub(1)?;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

/// The [`AuthError`] a failed handshake carries, if our verifier refused the
/// server (strict mode wraps it in `CertificateError::Other`).
pub fn auth_error_of(e: &rustls::Error) -> Option<&AuthError> {
    match e {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            other.0.downcast_ref::<AuthError>()
        }
        _ => None,
    }
}

/// The RFC 7469 pin of a certificate: SHA-256 over its SubjectPublicKeyInfo.
/// `None` for bytes that are not one X.509 v3 certificate.
///
/// The certificate is parsed by webpki (through rustls's
/// `ParsedCertificate`), the parser that verifies the handshake's
/// signatures, not by a walker of our own: the bytes come from the server
/// and are hostile until a pin matched. webpki refuses what it cannot verify
/// (trailing data, versions before v3, unknown critical extensions), so
/// such a certificate matches no pin.
pub fn spki_pin(cert_der: &[u8]) -> Option<[u8; 32]> {
    let cert = CertificateDer::from(cert_der);
    let parsed = rustls::server::ParsedCertificate::try_from(&cert).ok()?;
    Some(Sha256::digest(parsed.subject_public_key_info()).into())
}

/// Validates chains against the platform's trust store and any extra
/// anchors; either accepting is enough.
#[derive(Debug)]
pub struct ChainVerifier {
    platform: Option<Arc<dyn ServerCertVerifier>>,
    extra: Option<Arc<WebPkiServerVerifier>>,
    /// The extra anchors as given, to recognise a server that presents one
    /// of them as its own certificate (see [`verify_trusted_end_entity`]).
    extra_roots: Vec<CertificateDer<'static>>,
}

impl ChainVerifier {
    /// Builds the verifier. A platform verifier that cannot be created (on
    /// Android before the JNI set-up ran) is logged and left out, so the
    /// extra anchors and pins still work.
    pub fn new(extra_roots: &[CertificateDer<'static>]) -> ChainVerifier {
        let provider = provider();
        let platform = match rustls_platform_verifier::Verifier::new(provider.clone()) {
            Ok(v) => Some(Arc::new(v) as Arc<dyn ServerCertVerifier>),
            Err(e) => {
                log::warn!("platform certificate verifier unavailable: {e}");
                None
            }
        };
        let extra = if extra_roots.is_empty() {
            None
        } else {
            let mut store = RootCertStore::empty();
            let (added, ignored) = store.add_parsable_certificates(extra_roots.iter().cloned());
            if ignored > 0 {
                log::warn!("{ignored} extra CA certificates could not be used");
            }
            (added > 0)
                .then(|| {
                    WebPkiServerVerifier::builder_with_provider(store.into(), provider).build()
                })
                .and_then(|r| r.map_err(|e| log::warn!("extra CA verifier: {e}")).ok())
        };
        ChainVerifier {
            platform,
            extra,
            extra_roots: extra_roots.to_vec(),
        }
    }

    /// Tries the extra anchors, then the platform's. When both refuse, the
    /// error reported is the one of the verifier that got furthest: any
    /// reason beats "unknown issuer" (which only says the chain did not
    /// reach *that* verifier's anchors), and between two such reasons the
    /// extra anchors' one wins, since the user gave them for this server.
    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), AuthError> {
        let mut best: Option<AuthError> = None;
        if let Some(extra) = &self.extra {
            let refused = match extra.verify_server_cert(end_entity, intermediates, name, &[], now)
            {
                Ok(_) => return Ok(()),
                Err(_) if self.is_extra_root(end_entity) => {
                    match verify_trusted_end_entity(end_entity, name, now) {
                        Ok(()) => return Ok(()),
                        Err(e) => e,
                    }
                }
                Err(e) => auth_error_from_rustls(&e),
            };
            best = Some(refused);
        }
        if let Some(platform) = &self.platform {
            match platform.verify_server_cert(end_entity, intermediates, name, &[], now) {
                Ok(_) => return Ok(()),
                Err(e) => {
                    let e = auth_error_from_rustls(&e);
                    if best.as_ref().is_none_or(|b| *b == AuthError::Untrusted) {
                        best = Some(e);
                    }
                }
            }
        }
        Err(best.unwrap_or(AuthError::NoVerifier))
    }

    fn is_extra_root(&self, cert: &CertificateDer<'_>) -> bool {
        self.extra_roots.iter().any(|r| r.as_ref() == cert.as_ref())
    }
}

/// The [`AuthError`] of any rustls error a certificate verifier returned.
fn auth_error_from_rustls(e: &rustls::Error) -> AuthError {
    match e {
        rustls::Error::InvalidCertificate(c) => AuthError::from_certificate_error(c),
        other => AuthError::Invalid(other.to_string()),
    }
}

/// Checks a server certificate that is byte for byte one of the anchors
/// the user gave, the way `openssl req -x509` makes them for self-hosted
/// servers: a self-signed certificate that is its own CA (`CA:TRUE`).
///
/// webpki refuses any CA certificate as an end entity (`CaUsedAsEndEntity`;
/// RFC 5280 §4.2.1.9 reserves `cA` for certificate signers), so such a
/// server fails chain validation although the user explicitly trusted that
/// very certificate. OpenSSL (Unbound, stubby) and GnuTLS (kdig) accept a
/// certificate found in the trust store as trusted by itself. We do the
/// same, but only for that exact certificate, and still check what makes
/// it right for *this* server: the name or IP address (webpki's
/// `verify_is_valid_for_subject_name`, through rustls), the validity period
/// and, when present, an extended key usage that allows TLS servers. The
/// handshake signature then proves the server holds its key.
fn verify_trusted_end_entity(
    cert: &CertificateDer<'_>,
    name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), AuthError> {
    let parsed = rustls::server::ParsedCertificate::try_from(cert)
        .map_err(|e| auth_error_from_rustls(&e))?;
    let facts = der::CertFacts::read(cert.as_ref()).ok_or_else(|| {
        AuthError::Invalid("the validity or extensions of the certificate are malformed".into())
    })?;
    let at = |secs| Some(UnixTime::since_unix_epoch(Duration::from_secs(secs)));
    if now.as_secs() < facts.not_before {
        return Err(AuthError::NotYetValid {
            not_before: at(facts.not_before),
        });
    }
    if now.as_secs() > facts.not_after {
        return Err(AuthError::Expired {
            not_after: at(facts.not_after),
        });
    }
    if let Some(ekus) = &facts.extended_key_usage {
        if !ekus.iter().any(|oid| *oid == der::OID_SERVER_AUTH) {
            return Err(AuthError::WrongPurpose {
                presented: ekus.iter().map(|oid| der::purpose_name(oid)).collect(),
            });
        }
    }
    rustls::client::verify_server_name(&parsed, name).map_err(|e| auth_error_from_rustls(&e))
}

/// Just enough DER to read the validity period and the extended key usage
/// of a certificate, which webpki checks but does not expose. Used only on
/// a certificate that is byte for byte an anchor the user configured and
/// that webpki already parsed; still, every read is bounds-checked and a
/// malformed encoding is `None`, never a panic.
mod der {
    use super::days_from_civil;

    /// id-kp-serverAuth, 1.3.6.1.5.5.7.3.1 (RFC 5280 §4.2.1.12).
    pub(super) const OID_SERVER_AUTH: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
    /// id-ce-extKeyUsage, 2.5.29.37.
    const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1D, 0x25];
    /// The id-kp arc, 1.3.6.1.5.5.7.3.
    const ID_KP: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03];

    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    const BOOLEAN: u8 = 0x01;
    const OCTET_STRING: u8 = 0x04;
    const UTC_TIME: u8 = 0x17;
    const GENERALIZED_TIME: u8 = 0x18;
    /// `[0] EXPLICIT Version` of TBSCertificate.
    const VERSION: u8 = 0xA0;
    /// `[3] EXPLICIT Extensions` of TBSCertificate.
    const EXTENSIONS: u8 = 0xA3;

    /// What [`super::verify_trusted_end_entity`] checks besides the name.
    #[derive(Debug, PartialEq, Eq)]
    pub(super) struct CertFacts {
        /// notBefore, in seconds since the Unix epoch.
        pub(super) not_before: u64,
        /// notAfter, in seconds since the Unix epoch.
        pub(super) not_after: u64,
        /// The key purpose OIDs (content octets) of the extended key usage
        /// extension; `None` when the certificate has none (any purpose).
        pub(super) extended_key_usage: Option<Vec<Vec<u8>>>,
    }

    impl CertFacts {
        /// Reads `cert` (one DER X.509 certificate).
        pub(super) fn read(cert: &[u8]) -> Option<CertFacts> {
            let mut outer = cert;
            let certificate = expect(&mut outer, SEQUENCE)?;
            let mut certificate_fields = certificate;
            let mut tbs = expect(&mut certificate_fields, SEQUENCE)?;
            if peek(tbs) == Some(VERSION) {
                tlv(&mut tbs)?;
            }
            tlv(&mut tbs)?; // serialNumber
            tlv(&mut tbs)?; // signature
            tlv(&mut tbs)?; // issuer
            let mut validity = expect(&mut tbs, SEQUENCE)?;
            let not_before = time(&mut validity)?;
            let not_after = time(&mut validity)?;
            tlv(&mut tbs)?; // subject
            tlv(&mut tbs)?; // subjectPublicKeyInfo
            let mut extended_key_usage = None;
            while !tbs.is_empty() {
                let (tag, value) = tlv(&mut tbs)?;
                if tag == EXTENSIONS {
                    extended_key_usage = find_eku(value)?;
                }
            }
            Some(CertFacts {
                not_before,
                not_after,
                extended_key_usage,
            })
        }
    }

    /// The EKU purposes in `[3] { SEQUENCE OF Extension }`, if present.
    fn find_eku(mut explicit: &[u8]) -> Option<Option<Vec<Vec<u8>>>> {
        let mut extensions = expect(&mut explicit, SEQUENCE)?;
        while !extensions.is_empty() {
            let mut extension = expect(&mut extensions, SEQUENCE)?;
            let id = expect(&mut extension, OID)?;
            if peek(extension) == Some(BOOLEAN) {
                tlv(&mut extension)?;
            }
            let mut value = expect(&mut extension, OCTET_STRING)?;
            if id != OID_EXT_KEY_USAGE {
                continue;
            }
            let mut purposes = expect(&mut value, SEQUENCE)?;
            let mut found = Vec::new();
            while !purposes.is_empty() {
                found.push(expect(&mut purposes, OID)?.to_vec());
            }
            return Some(Some(found));
        }
        Some(None)
    }

    /// A key purpose OID in words (the RFC 5280 §4.2.1.12 names).
    pub(super) fn purpose_name(oid: &[u8]) -> String {
        match oid.strip_prefix(ID_KP) {
            Some([1]) => "serverAuth".into(),
            Some([2]) => "clientAuth".into(),
            Some([3]) => "codeSigning".into(),
            Some([4]) => "emailProtection".into(),
            Some([8]) => "timeStamping".into(),
            Some([9]) => "OCSPSigning".into(),
            _ if oid == [0x55, 0x1D, 0x25, 0x00] => "anyExtendedKeyUsage".into(),
            _ => dotted(oid),
        }
    }

    /// An OID's content octets in dotted decimal (X.690 §8.19).
    fn dotted(oid: &[u8]) -> String {
        let mut arcs: Vec<u128> = Vec::new();
        let mut acc: u128 = 0;
        for &b in oid {
            acc = acc.saturating_mul(128).saturating_add(u128::from(b & 0x7F));
            if b & 0x80 == 0 {
                if arcs.is_empty() {
                    let first = (acc / 40).min(2);
                    arcs.push(first);
                    arcs.push(acc - first * 40);
                } else {
                    arcs.push(acc);
                }
                acc = 0;
            }
        }
        arcs.iter()
            .map(u128::to_string)
            .collect::<Vec<_>>()
            .join(".")
    }

    fn peek(input: &[u8]) -> Option<u8> {
        input.first().copied()
    }

    /// Takes one TLV with tag `tag` and returns its value.
    fn expect<'a>(input: &mut &'a [u8], tag: u8) -> Option<&'a [u8]> {
        match tlv(input)? {
            (t, value) if t == tag => Some(value),
            _ => None,
        }
    }

    /// Takes one tag-length-value (single-byte tags, definite lengths of
    /// up to four bytes: all a certificate uses).
    fn tlv<'a>(input: &mut &'a [u8]) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7F);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let (bytes, after) = rest.split_at(n);
            rest = after;
            bytes.iter().fold(0usize, |l, &b| (l << 8) | usize::from(b))
        };
        if rest.len() < len {
            return None;
        }
        let (value, after) = rest.split_at(len);
        *input = after;
        Some((tag, value))
    }

    /// A UTCTime (`YYMMDDHHMMSSZ`, years 1950-2049) or GeneralizedTime
    /// (`YYYYMMDDHHMMSSZ`), the two forms RFC 5280 §4.1.2.5 allows, as
    /// seconds since the Unix epoch.
    fn time(input: &mut &[u8]) -> Option<u64> {
        let (tag, value) = tlv(input)?;
        let (year, rest) = match tag {
            UTC_TIME if value.len() == 13 => {
                let yy = digits(&value[..2])?;
                (if yy < 50 { 2000 + yy } else { 1900 + yy }, &value[2..])
            }
            GENERALIZED_TIME if value.len() == 15 => (digits(&value[..4])?, &value[4..]),
            _ => return None,
        };
        if rest.last() != Some(&b'Z') {
            return None;
        }
        let field = |i: usize| digits(rest.get(i..i + 2)?);
        let (month, day) = (field(0)?, field(2)?);
        let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
            return None;
        }
        // Leap seconds (":60") are as valid in a certificate as anywhere.
        if second > 60 {
            return None;
        }
        let days = days_from_civil(year, month, day)?;
        Some(days * 86_400 + hour * 3600 + minute * 60 + second)
    }

    fn digits(s: &[u8]) -> Option<u64> {
        s.iter().try_fold(0u64, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
        })
    }
}

/// Authenticates one server by its pins or by chain and name.
#[derive(Debug)]
pub struct Authenticator {
    pins: Vec<[u8; 32]>,
    chain: Arc<ChainVerifier>,
}

impl Authenticator {
    /// An authenticator for `server`.
    pub fn new(server: &ServerSpec, chain: Arc<ChainVerifier>) -> Authenticator {
        Authenticator {
            pins: server.pins.clone(),
            chain,
        }
    }

    /// Decides whether the presented chain authenticates the server.
    pub fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), AuthError> {
        if !self.pins.is_empty() {
            let matched = std::iter::once(end_entity)
                .chain(intermediates.iter())
                .filter_map(|c| spki_pin(c))
                .any(|pin| self.pins.contains(&pin));
            return if matched {
                Ok(())
            } else {
                let b64 = |p: &[u8; 32]| base64::engine::general_purpose::STANDARD.encode(p);
                Err(AuthError::PinMismatch {
                    expected: self.pins.iter().map(b64).collect(),
                    seen: std::iter::once(end_entity)
                        .chain(intermediates.iter())
                        .filter_map(|c| spki_pin(c))
                        .map(|p| b64(&p))
                        .collect(),
                })
            };
        }
        self.chain.verify(end_entity, intermediates, name, now)
    }
}

/// The rustls verifier: enforces [`Authenticator`] in strict mode and
/// accepts any certificate in opportunistic mode (where the result is
/// checked after the handshake instead, only to be reported).
#[derive(Debug)]
struct DotVerifier {
    auth: Arc<Authenticator>,
    enforce: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for DotVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.enforce {
            return Ok(ServerCertVerified::assertion());
        }
        match self.auth.check(end_entity, intermediates, server_name, now) {
            Ok(()) => Ok(ServerCertVerified::assertion()),
            // Carried whole, so the failure report can say exactly why
            // (see `auth_error_of`).
            Err(e) => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(e))),
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The crypto provider: ring, for a simple Android cross-compile.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Everything needed to open TLS to one server: the rustls configuration
/// (with its own session store, so resumption works per server), the name
/// to present, and the authenticator to report on.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// rustls client configuration.
    pub config: Arc<ClientConfig>,
    /// Name sent as SNI and checked; `None` when the server has no name
    /// (then the address is checked instead).
    pub server_name: Option<ServerName<'static>>,
    /// A configured name rustls refuses (possible only for a [`ServerSpec`]
    /// that did not come from `Config::validate`): no connection is opened
    /// rather than one authenticated against the bare address.
    unusable_name: Option<String>,
    /// Authenticator, used after the handshake in opportunistic mode.
    pub auth: Arc<Authenticator>,
    /// Whether failing authentication fails the handshake.
    pub enforce: bool,
}

impl ServerTls {
    /// Builds the TLS set-up for `server` under `mode`.
    pub fn new(server: &ServerSpec, mode: Mode, chain: Arc<ChainVerifier>) -> ServerTls {
        let auth = Arc::new(Authenticator::new(server, chain));
        let enforce = mode == Mode::Strict;
        let verifier = Arc::new(DotVerifier {
            auth: auth.clone(),
            enforce,
            provider: provider(),
        });
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("ring supports TLS 1.2 and 1.3")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN_DOT.to_vec()];
        config.resumption = Resumption::in_memory_sessions(SESSIONS_PER_SERVER);
        let server_name = server.auth_name.as_deref().and_then(server_name);
        let unusable_name = match (&server.auth_name, &server_name) {
            (Some(n), None) => Some(n.clone()),
            _ => None,
        };
        ServerTls {
            config: Arc::new(config),
            server_name,
            unusable_name,
            auth,
            enforce,
        }
    }

    /// The name to hand rustls when connecting to `addr`: the authentication
    /// name, or the address itself when the server has none (rustls then
    /// sends no SNI). An error when the configured name is one rustls
    /// refuses: the address must not silently stand in for it.
    pub fn name_for(&self, addr: std::net::SocketAddr) -> Result<ServerName<'static>, String> {
        if let Some(n) = &self.unusable_name {
            return Err(format!("{n:?} is not a valid TLS server name"));
        }
        Ok(self
            .server_name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into())))
    }
}

/// Why a TLS handshake (or a TLS session) failed, as a [`ServerFailure`]:
/// our own verifier's [`AuthError`] when it refused the server, a
/// certificate kind for rustls's own certificate errors, [`TlsVersion`]
/// when the server speaks only TLS 1.1 or older, [`TlsAlert`] for other
/// alerts the server sent, otherwise [`ProtocolError`].
///
/// [`TlsVersion`]: ServerFailureKind::TlsVersion
/// [`TlsAlert`]: ServerFailureKind::TlsAlert
/// [`ProtocolError`]: ServerFailureKind::ProtocolError
pub fn tls_failure(e: &rustls::Error) -> ServerFailure {
    use rustls::{AlertDescription as A, Error as E, PeerIncompatible as P};
    match e {
        E::InvalidCertificate(c) => AuthError::from_certificate_error(c).failure(),
        // A server whose highest version is below ours either answers with
        // that version (rustls then refuses it) or, when it checks the
        // client's range first, with a protocol_version alert (RFC 8446
        // §4.2.1, RFC 5246 Appendix E.1).
        E::PeerIncompatible(P::ServerDoesNotSupportTls12Or13)
        | E::AlertReceived(A::ProtocolVersion) => ServerFailure::new(
            ServerFailureKind::TlsVersion,
            "the server supports only TLS 1.1 or older; dotcore requires TLS 1.2 or 1.3",
        ),
        E::AlertReceived(alert) => ServerFailure::new(
            ServerFailureKind::TlsAlert,
            format!(
                "the server ended the TLS handshake with alert {}",
                alert_name(*alert)
            ),
        ),
        _ => ServerFailure::new(ServerFailureKind::ProtocolError, format!("TLS failed: {e}")),
    }
}

/// An alert as RFC 8446 §6 spells it (`handshake_failure`), from rustls's
/// CamelCase variant name.
fn alert_name(alert: rustls::AlertDescription) -> String {
    let camel = format!("{alert:?}");
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_names_read_as_people_write_them() {
        assert_eq!(presented_name("DnsName(\"dot.test\")"), "dot.test");
        assert_eq!(presented_name("IpAddress(192.0.2.1)"), "192.0.2.1");
        assert_eq!(presented_name("IpAddress(0::1)"), "::1");
        assert_eq!(
            presented_name("IpAddress(2001:db8:0:0:0:0:0:53)"),
            "2001:db8::53"
        );
        assert_eq!(
            presented_name("DnsName(\"a\u{7}b\")"),
            "ab",
            "control characters go"
        );
        assert_eq!(presented_name(&"x".repeat(300)).len(), PRESENTED_NAME_MAX);
    }

    fn spec(name: Option<&str>) -> ServerSpec {
        ServerSpec {
            auth_name: name.map(Into::into),
            addresses: vec!["127.0.0.1:853".parse().unwrap()],
            pins: vec![[0; 32]],
        }
    }

    fn certificate() -> (Vec<u8>, [u8; 32]) {
        use rcgen::PublicKeyData;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["dot.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pin = Sha256::digest(key.subject_public_key_info()).into();
        (cert.der().to_vec(), pin)
    }

    fn key() -> rcgen::KeyPair {
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
    }

    /// `openssl req -x509`'s shape: self-signed, `CA:TRUE`, no EKU.
    fn self_signed_ca(names: &[&str], valid: Option<(i32, i32)>) -> CertificateDer<'static> {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        if let Some((from, to)) = valid {
            params.not_before = rcgen::date_time_ymd(from, 1, 1);
            params.not_after = rcgen::date_time_ymd(to, 1, 1);
        }
        params.self_signed(&key()).unwrap().der().clone()
    }

    struct Ca {
        issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
        der: CertificateDer<'static>,
    }

    /// A CA named `name`: webpki finds an issuer by name, so two CAs in a
    /// test need two names.
    fn ca(name: &str) -> Ca {
        let key = key();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let der = params.self_signed(&key).unwrap().der().clone();
        Ca {
            issuer: rcgen::Issuer::new(params, key),
            der,
        }
    }

    fn leaf(
        ca: &Ca,
        names: &[&str],
        eku: rcgen::ExtendedKeyUsagePurpose,
    ) -> CertificateDer<'static> {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.extended_key_usages = vec![eku];
        params.signed_by(&key(), &ca.issuer).unwrap().der().clone()
    }

    fn dns(n: &str) -> ServerName<'static> {
        ServerName::try_from(n.to_owned()).unwrap()
    }

    fn verify(
        roots: &[CertificateDer<'static>],
        ee: &CertificateDer<'_>,
        name: &str,
    ) -> Result<(), AuthError> {
        ChainVerifier::new(roots).verify(ee, &[], &dns(name), UnixTime::now())
    }

    #[test]
    fn a_self_signed_ca_given_as_trusted_is_accepted_for_its_names_only() {
        let cert = self_signed_ca(&["dot.test", "127.0.0.1"], None);
        let roots = [cert.clone()];
        assert_eq!(verify(&roots, &cert, "dot.test"), Ok(()));
        assert_eq!(verify(&roots, &cert, "127.0.0.1"), Ok(()));
        let err = verify(&roots, &cert, "other.example").unwrap_err();
        assert_eq!(
            err,
            AuthError::NameMismatch {
                expected: "other.example".into(),
                presented: vec!["dot.test".into(), "127.0.0.1".into()],
            }
        );
        assert_eq!(
            err.failure().text,
            "certificate is not valid for other.example (it names dot.test, 127.0.0.1)"
        );
    }

    #[test]
    fn a_trusted_self_signed_ca_is_still_checked_for_dates_and_purpose() {
        let expired = self_signed_ca(&["dot.test"], Some((2000, 2001)));
        let err = verify(std::slice::from_ref(&expired), &expired, "dot.test").unwrap_err();
        assert_eq!(err.kind(), ServerFailureKind::CertificateExpired, "{err}");
        assert_eq!(err.to_string(), "certificate expired on 2001-01-01");

        let future = self_signed_ca(&["dot.test"], Some((2090, 2091)));
        let err = verify(std::slice::from_ref(&future), &future, "dot.test").unwrap_err();
        assert_eq!(
            err.kind(),
            ServerFailureKind::CertificateNotYetValid,
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "certificate is not valid before 2090-01-01"
        );

        let mut params = rcgen::CertificateParams::new(vec!["dot.test".to_string()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let client_only = params.self_signed(&key()).unwrap().der().clone();
        let err = verify(std::slice::from_ref(&client_only), &client_only, "dot.test").unwrap_err();
        assert_eq!(
            err,
            AuthError::WrongPurpose {
                presented: vec!["clientAuth".into()]
            }
        );
    }

    #[test]
    fn a_ca_certificate_not_given_as_trusted_is_refused_as_a_ca() {
        let presented = self_signed_ca(&["dot.test"], None);
        let other = self_signed_ca(&["dot.test"], None);
        let err = verify(&[other], &presented, "dot.test").unwrap_err();
        assert_eq!(err, AuthError::IsCa);
        assert_eq!(err.kind(), ServerFailureKind::CertificateIsCa);
        // Without any extra anchor, the platform verifier says the same.
        let err = verify(&[], &presented, "dot.test").unwrap_err();
        assert_eq!(err.kind(), ServerFailureKind::CertificateIsCa, "{err}");
    }

    #[test]
    fn the_verifier_that_reached_the_anchors_is_the_one_reported() {
        // The extra CA issued the leaf, so its "wrong name" is the reason,
        // not the platform's "unknown issuer" that came last.
        let ca = ca("trusted CA");
        let ee = leaf(
            &ca,
            &["other.example"],
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        );
        let err = verify(std::slice::from_ref(&ca.der), &ee, "dot.test").unwrap_err();
        assert_eq!(
            err.kind(),
            ServerFailureKind::CertificateNameMismatch,
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "certificate is not valid for dot.test (it names other.example)"
        );
        // The purpose is checked before the chain is built, so it is found
        // whichever verifier tried.
        let ee = leaf(
            &ca,
            &["dot.test"],
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        );
        let err = verify(std::slice::from_ref(&ca.der), &ee, "dot.test").unwrap_err();
        assert_eq!(
            err.kind(),
            ServerFailureKind::CertificateWrongPurpose,
            "{err}"
        );
        // A chain no verifier knows is untrusted.
        let stranger = self::ca("stranger CA");
        let ee = leaf(
            &stranger,
            &["dot.test"],
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        );
        let err = verify(std::slice::from_ref(&ca.der), &ee, "dot.test").unwrap_err();
        assert_eq!(err, AuthError::Untrusted);
        // And the right leaf from the extra CA is accepted.
        let ee = leaf(
            &ca,
            &["dot.test"],
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        );
        assert_eq!(
            verify(std::slice::from_ref(&ca.der), &ee, "dot.test"),
            Ok(())
        );
    }

    #[test]
    fn pin_mismatch_names_both_sides() {
        let (der, pin) = certificate();
        let chain = Arc::new(ChainVerifier::new(&[]));
        let auth = Authenticator::new(&spec(Some("dot.test")), chain);
        let err = auth
            .check(
                &CertificateDer::from(der),
                &[],
                &dns("dot.test"),
                UnixTime::now(),
            )
            .unwrap_err();
        let b64 = |p: &[u8]| base64::engine::general_purpose::STANDARD.encode(p);
        assert_eq!(
            err,
            AuthError::PinMismatch {
                expected: vec![b64(&[0; 32])],
                seen: vec![b64(&pin)],
            }
        );
        assert_eq!(
            err.failure().text,
            format!(
                "no certificate matches the configured pins (expected pin-sha256 {}; \
                 the server's chain has {})",
                b64(&[0; 32]),
                b64(&pin)
            )
        );
        assert_eq!(err.kind(), ServerFailureKind::PinMismatch);
    }

    fn at(y: u64, m: u64, d: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(
            days_from_civil(y, m, d).unwrap() * 86_400,
        ))
    }

    #[test]
    fn every_certificate_error_has_its_kind_and_text() {
        use rustls::CertificateError as C;
        use ServerFailureKind as K;
        let cases: Vec<(rustls::Error, K, &str)> = vec![
            (
                C::NotValidForNameContext {
                    expected: dns("dot.test"),
                    presented: vec!["DnsName(\"other.example\")".into(), "IpAddress(192.0.2.1)".into()],
                }
                .into(),
                K::CertificateNameMismatch,
                "certificate is not valid for dot.test (it names other.example, 192.0.2.1)",
            ),
            (
                C::NotValidForNameContext {
                    expected: ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
                    presented: vec![],
                }
                .into(),
                K::CertificateNameMismatch,
                "certificate is not valid for 127.0.0.1 (it names no DNS name or IP address)",
            ),
            (
                C::ExpiredContext {
                    time: at(2026, 3, 1),
                    not_after: at(2025, 1, 1),
                }
                .into(),
                K::CertificateExpired,
                "certificate expired on 2025-01-01",
            ),
            (C::Expired.into(), K::CertificateExpired, "certificate expired"),
            (
                C::NotValidYetContext {
                    time: at(2026, 3, 1),
                    not_before: at(2030, 12, 31),
                }
                .into(),
                K::CertificateNotYetValid,
                "certificate is not valid before 2030-12-31",
            ),
            (C::NotValidYet.into(), K::CertificateNotYetValid, "certificate is not valid yet"),
            (
                C::InvalidPurposeContext {
                    required: rustls::ExtendedKeyPurpose::ServerAuth,
                    presented: vec![rustls::ExtendedKeyPurpose::ClientAuth],
                }
                .into(),
                K::CertificateWrongPurpose,
                "certificate is not for TLS servers (its extended key usage is client authentication)",
            ),
            (C::InvalidPurpose.into(), K::CertificateWrongPurpose, "certificate is not for TLS servers"),
            (
                C::UnknownIssuer.into(),
                K::CertificateUntrusted,
                "certificate is not signed by a trusted CA (give the server's CA or pin its key)",
            ),
            (
                C::Other(rustls::OtherError(Arc::new(webpki::Error::CaUsedAsEndEntity))).into(),
                K::CertificateIsCa,
                "the server presented a CA certificate as its own; give that exact certificate as the trusted CA to accept it",
            ),
            (
                C::Other(rustls::OtherError(Arc::new(AuthError::PinMismatch {
                    expected: vec!["AAA=".into(), "BBB=".into()],
                    seen: vec!["CCC=".into(), "DDD=".into()],
                })))
                .into(),
                K::PinMismatch,
                "no certificate matches the configured pins (expected pin-sha256 AAA=, BBB=; the server's chain has CCC=, DDD=)",
            ),
            (C::BadSignature.into(), K::CertificateInvalid, "certificate rejected: BadSignature"),
            (
                rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
                K::TlsAlert,
                "the server ended the TLS handshake with alert handshake_failure",
            ),
            (
                rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion),
                K::TlsVersion,
                "the server supports only TLS 1.1 or older; dotcore requires TLS 1.2 or 1.3",
            ),
            (
                rustls::PeerIncompatible::ServerDoesNotSupportTls12Or13.into(),
                K::TlsVersion,
                "the server supports only TLS 1.1 or older; dotcore requires TLS 1.2 or 1.3",
            ),
            (
                rustls::PeerIncompatible::NoCipherSuitesInCommon.into(),
                K::ProtocolError,
                "TLS failed: peer is incompatible: NoCipherSuitesInCommon",
            ),
            (
                rustls::Error::DecryptError,
                K::ProtocolError,
                "TLS failed: cannot decrypt peer's message",
            ),
        ];
        for (error, kind, text) in cases {
            let f = tls_failure(&error);
            assert_eq!((f.kind, f.text.as_str()), (kind, text), "{error:?}");
        }
    }

    #[test]
    fn our_verifiers_refusal_comes_back_whole() {
        let e = AuthError::NameMismatch {
            expected: "dot.test".into(),
            presented: vec!["other.example".into()],
        };
        let wrapped = rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
            rustls::OtherError(Arc::new(e.clone())),
        ));
        assert_eq!(auth_error_of(&wrapped), Some(&e));
        assert_eq!(tls_failure(&wrapped), e.failure());
    }

    #[test]
    fn hostile_names_are_cut_and_cleaned_in_the_text() {
        let many: Vec<String> = (0..10)
            .map(|i| format!("DnsName(\"n{i}.example\")"))
            .collect();
        let f = tls_failure(
            &rustls::CertificateError::NotValidForNameContext {
                expected: dns("dot.test"),
                presented: many,
            }
            .into(),
        );
        assert!(f.text.ends_with("n3.example and 6 more)"), "{}", f.text);
        let f = tls_failure(
            &rustls::CertificateError::NotValidForNameContext {
                expected: dns("dot.test"),
                presented: vec![format!("DnsName(\"a\u{1b}[2J{}\")", "x".repeat(5000))],
            }
            .into(),
        );
        assert!(!f.text.contains('\u{1b}'));
        assert!(f.text.len() < 200, "{}", f.text.len());
    }

    #[test]
    fn names_ignore_case_and_the_trailing_dot() {
        for typed in ["DOT.Test", "dot.test.", "Dot.TEST."] {
            assert_eq!(server_name(typed), Some(dns("dot.test")), "{typed}");
        }
        assert!(matches!(
            server_name("127.0.0.1"),
            Some(ServerName::IpAddress(_))
        ));
        assert_eq!(server_name("."), None);
        assert_eq!(server_name(""), None);
    }

    #[test]
    fn dates_convert_both_ways() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2025, 1, 1), Some(20_089));
        assert_eq!(days_from_civil(2000, 3, 1), Some(11_017));
        assert_eq!(days_from_civil(1969, 12, 31), None);
        for days in (0..200_000).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), Some(days), "{y}-{m}-{d}");
        }
    }

    #[test]
    fn validity_and_purposes_are_read_as_rcgen_wrote_them() {
        let mut params = rcgen::CertificateParams::new(vec!["dot.test".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2001, 2, 3);
        // After 2049 rcgen (like RFC 5280 §4.1.2.5) switches to GeneralizedTime.
        params.not_after = rcgen::date_time_ymd(2051, 4, 5);
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            rcgen::ExtendedKeyUsagePurpose::Other(vec![1, 2, 840, 113_635, 100]),
        ];
        let der = params.self_signed(&key()).unwrap().der().to_vec();
        let facts = der::CertFacts::read(&der).unwrap();
        assert_eq!(
            facts.not_before,
            days_from_civil(2001, 2, 3).unwrap() * 86_400
        );
        assert_eq!(
            facts.not_after,
            days_from_civil(2051, 4, 5).unwrap() * 86_400
        );
        let names: Vec<String> = facts
            .extended_key_usage
            .unwrap()
            .iter()
            .map(|o| der::purpose_name(o))
            .collect();
        assert_eq!(names, ["clientAuth", "1.2.840.113635.100"]);
        let (plain, _) = certificate();
        assert_eq!(
            der::CertFacts::read(&plain).unwrap().extended_key_usage,
            None
        );
        // Truncations and corruptions are refused or read, never a panic.
        for n in 0..der.len() {
            assert_eq!(der::CertFacts::read(&der[..n]), None, "truncated to {n}");
        }
        for i in 0..der.len() {
            for flip in [0x01, 0x80, 0xFF] {
                let mut bad = der.clone();
                bad[i] ^= flip;
                let _ = der::CertFacts::read(&bad);
            }
        }
    }

    #[test]
    fn pin_is_the_sha256_of_the_certificates_spki() {
        let (der, pin) = certificate();
        assert_eq!(spki_pin(&der), Some(pin));
    }

    #[test]
    fn malformed_certificates_have_no_pin() {
        let (der, _) = certificate();
        // Truncated anywhere.
        for n in 0..der.len() {
            assert_eq!(spki_pin(&der[..n]), None, "truncated to {n}");
        }
        // Trailing data after a whole certificate: not one DER certificate.
        for tail in [&[0u8][..], &[0x30, 0x00], &der] {
            let mut long = der.clone();
            long.extend_from_slice(tail);
            assert_eq!(spki_pin(&long), None, "{} trailing bytes", tail.len());
        }
        // Garbage, including DER that has the shape of a certificate up to
        // the SPKI (nested SEQUENCEs, five fields, a SEQUENCE) but is none.
        let tbs: &[u8] = &[
            0xA0, 0x03, 0x02, 0x01, 0x02, // version v3
            0x02, 0x01, 0x01, // serial
            0x30, 0x00, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00, // alg, issuer, validity, subject
            0x30, 0x00, // "SPKI"
        ];
        let mut shaped = vec![0x30, tbs.len() as u8 + 2, 0x30, tbs.len() as u8];
        shaped.extend_from_slice(tbs);
        for garbage in [
            &[][..],
            &[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF],
            &[0x30, 0x03, 0x30, 0x01],
            &[0xFF; 300],
            &shaped,
        ] {
            assert_eq!(spki_pin(garbage), None, "{garbage:02x?}");
        }
        // Every single-byte corruption is either refused or still yields a
        // pin, never a panic.
        for i in 0..der.len() {
            let mut bad = der.clone();
            bad[i] ^= 0xA5;
            let _ = spki_pin(&bad);
        }
    }

    #[test]
    fn a_name_rustls_refuses_is_never_replaced_by_the_address() {
        let chain = Arc::new(ChainVerifier::new(&[]));
        let addr = "127.0.0.1:853".parse().unwrap();
        let tls = ServerTls::new(&spec(Some("dot.123")), Mode::Strict, chain.clone());
        let err = tls.name_for(addr).unwrap_err();
        assert!(err.contains("dot.123"), "{err}");
        let tls = ServerTls::new(&spec(Some("dot.test")), Mode::Strict, chain.clone());
        assert_eq!(
            tls.name_for(addr).unwrap(),
            ServerName::try_from("dot.test").unwrap()
        );
        // Without a name (pin-only), the address is the name.
        let tls = ServerTls::new(&spec(None), Mode::Strict, chain);
        assert!(matches!(
            tls.name_for(addr).unwrap(),
            ServerName::IpAddress(_)
        ));
    }
}
