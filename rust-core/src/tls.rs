//! TLS client configuration and server authentication (RFC 8310).
//!
//! A server authenticates in one of two ways, as stubby/getdns do:
//! - **SPKI pins** (RFC 7469 `pin-sha256`): when pins are configured, the
//!   server is authenticated exactly when the SHA-256 of the
//!   SubjectPublicKeyInfo of *any* certificate it presents matches one of
//!   them. A self-signed server can be pinned this way.
//! - **Certificate chain and name**: without pins, the chain must validate
//!   to a trust anchor (the platform's, through rustls-platform-verifier, or
//!   an extra CA given in the configuration) for the authentication domain name.
//!
//! In strict mode failing authentication fails the handshake. In
//! opportunistic mode the handshake is accepted anyway, and whether it
//! authenticated is recorded for the UI.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

use crate::config::{Mode, ServerSpec};
use crate::failure::{ServerFailure, ServerFailureKind};

/// ALPN protocol identifier for DoT (RFC 7858 §3.1, IANA "dot").
pub const ALPN_DOT: &[u8] = b"dot";

/// TLS sessions remembered per server for resumption.
const SESSIONS_PER_SERVER: usize = 16;

/// Why a server did not authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Pins were configured and no certificate in the chain matched.
    PinMismatch,
    /// The chain did not validate for the name.
    Chain(String),
    /// No trust anchor is available to validate the chain.
    NoVerifier,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::PinMismatch => {
                f.write_str("no certificate matches the configured SPKI pins")
            }
            AuthError::Chain(e) => write!(f, "certificate chain rejected: {e}"),
            AuthError::NoVerifier => f.write_str("no trust anchors available"),
        }
    }
}

impl std::error::Error for AuthError {}

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

/// `name` as the TLS server name rustls connects with, or `None` when rustls
/// refuses it. Config validation and [`ServerTls`] both use this, so a name
/// that passed validation is the name the handshake is made for.
pub(crate) fn server_name(name: &str) -> Option<ServerName<'static>> {
    ServerName::try_from(name.to_owned()).ok()
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
        ChainVerifier { platform, extra }
    }

    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), AuthError> {
        let mut last = AuthError::NoVerifier;
        let verifiers = [
            self.extra.clone().map(|v| v as Arc<dyn ServerCertVerifier>),
            self.platform.clone(),
        ];
        for v in verifiers.into_iter().flatten() {
            match v.verify_server_cert(end_entity, intermediates, name, &[], now) {
                Ok(_) => return Ok(()),
                Err(e) => last = AuthError::Chain(e.to_string()),
            }
        }
        Err(last)
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
                Err(AuthError::PinMismatch)
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

#[cfg(test)]
mod tests {
    use super::*;

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

/// Why a TLS handshake (or a TLS session) failed, as a [`ServerFailure`]:
/// our own verifier's [`AuthError`] when it refused the server, otherwise
/// the rustls error's category.
pub fn tls_failure(e: &rustls::Error) -> ServerFailure {
    use rustls::Error as E;
    match e {
        E::AlertReceived(alert) => ServerFailure::new(
            ServerFailureKind::TlsAlert,
            format!("the server sent TLS alert {alert:?}"),
        ),
        E::InvalidCertificate(_) => {
            ServerFailure::new(ServerFailureKind::CertificateInvalid, e.to_string())
        }
        _ => ServerFailure::new(ServerFailureKind::ProtocolError, e.to_string()),
    }
}
