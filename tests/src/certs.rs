//! A throw-away PKI for TLS tests.
//!
//! Every DoT test needs a server certificate that a client can be told to
//! trust (via a CA file or an RFC 7469 SPKI pin) without touching the system
//! trust store, and every "authentication must fail" test needs a certificate
//! that is wrong in one precise way (other name, other CA, expired). Generating
//! them at run time with rcgen keeps private keys out of the repository and
//! lets each test own an independent PKI, so parallel tests cannot interfere.
//!
//! All keys are ECDSA P-256 (`ECDSA_P256_SHA256`): it is what real DoT
//! providers mostly use, it is fast to generate, and both rustls and the
//! OpenSSL/GnuTLS stacks of unbound and kdig accept it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData as _, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest as _, Sha256};

/// The TLS name of the test DoT server; the default leaf carries it as a SAN,
/// so clients pass it as the authentication name (kdig `+tls-hostname`).
pub const DOT_NAME: &str = "dot.test";

/// The SANs of the default leaf: the DoT name plus the loopback addresses, so
/// a client that authenticates by IP address (no name configured) also works.
pub const DEFAULT_LEAF_NAMES: &[&str] = &[DOT_NAME, "127.0.0.1", "::1"];

/// Common name of the generated CA; only informative (it shows up in logs and
/// in kdig/openssl output when a chain is printed).
pub const CA_COMMON_NAME: &str = "dotcore test CA";

/// RFC 7469 pin of a DER SubjectPublicKeyInfo: base64(SHA-256(spki)).
///
/// Exposed separately so tests can pin keys they obtained elsewhere (e.g. from
/// a certificate the client under test received) and compare with the
/// fixture's pins in the exact format the client configuration uses.
pub fn spki_pin(spki_der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(spki_der))
}

fn new_key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("generate P-256 key pair")
}

/// A self-signed certificate authority that can issue leaves.
///
/// Kept as its own type (rather than only inside [`TestPki`]) so tests can
/// create a *second*, unrelated CA and check that a client trusting the first
/// one rejects leaves from the second.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    spki_der: Vec<u8>,
}

impl TestCa {
    /// Generates a fresh CA; each call yields an independent trust root.
    pub fn new(common_name: &str) -> TestCa {
        let key = new_key();
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-sign CA");
        let spki_der = key.subject_public_key_info();
        TestCa {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            spki_der,
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA certificate in PEM, i.e. what goes into a client's CA file.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate in DER, for building in-process rustls root stores.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA's DER SubjectPublicKeyInfo, the input of its SPKI pin.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// RFC 7469 pin of the CA key, for tests of pinning an intermediate/root
    /// rather than the leaf.
    pub fn pin(&self) -> String {
        spki_pin(&self.spki_der)
    }

    /// Issues a currently valid server leaf for `names` (DNS names or IP
    /// literals). Use it with any name other than [`DOT_NAME`] to build
    /// "server presents a certificate for the wrong name" scenarios.
    pub fn issue_leaf(&self, names: &[&str]) -> Leaf {
        self.issue(names, false)
    }

    /// Issues a leaf for `names` whose validity ended in 2001, so tests can
    /// check that expiry is enforced independently of name and chain checks.
    pub fn issue_expired_leaf(&self, names: &[&str]) -> Leaf {
        self.issue(names, true)
    }

    fn issue(&self, names: &[&str], expired: bool) -> Leaf {
        let key = new_key();
        let owned: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(owned.clone()).expect("leaf params (invalid SAN?)");
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        if expired {
            params.not_before = date_time_ymd(2000, 1, 1);
            params.not_after = date_time_ymd(2001, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        let key_der = key.serialize_der();
        Leaf {
            names: owned,
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_pem: key.serialize_pem(),
            key_der,
            spki_der: key.subject_public_key_info(),
            ca_pem: self.cert_pem.clone(),
        }
    }
}

/// A server certificate with its private key, as a TLS server needs it.
#[derive(Clone)]
pub struct Leaf {
    names: Vec<String>,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key_pem: String,
    key_der: Vec<u8>,
    spki_der: Vec<u8>,
    ca_pem: String,
}

impl Leaf {
    /// The SANs the leaf was issued for, so assertions can say which name a
    /// failing scenario was built with.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The leaf certificate alone in PEM (what unbound's `tls-service-pem`
    /// gets by default: clients must then know the CA themselves).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Leaf followed by its issuing CA in PEM, for servers that should send
    /// the full chain (e.g. to test pinning the CA key).
    pub fn chain_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.ca_pem)
    }

    /// The leaf certificate in DER, for in-process rustls servers.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The private key in PKCS#8 PEM, readable by OpenSSL (unbound) and rustls.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The private key in PKCS#8 DER, for in-process rustls servers.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// The leaf's DER SubjectPublicKeyInfo, the input of its SPKI pin.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// RFC 7469 pin of the leaf key, the value a "pin the server key"
    /// configuration must contain.
    pub fn pin(&self) -> String {
        spki_pin(&self.spki_der)
    }
}

/// A CA plus the leaf a test server presents.
///
/// Both fields are public so a test can swap in a different leaf (wrong name,
/// expired, or from another CA) while clients keep trusting the same CA.
pub struct TestPki {
    /// The trust root clients are given.
    pub ca: TestCa,
    /// The certificate the server presents.
    pub leaf: Leaf,
}

impl TestPki {
    /// A new CA and a leaf for [`DEFAULT_LEAF_NAMES`]: the "everything is
    /// correct" configuration most tests start from.
    pub fn generate() -> TestPki {
        let ca = TestCa::new(CA_COMMON_NAME);
        let leaf = ca.issue_leaf(DEFAULT_LEAF_NAMES);
        TestPki { ca, leaf }
    }

    /// Writes the PEM files into `dir` (which must exist), because external
    /// programs (unbound, kdig, stubby) only take file paths.
    pub fn write_to(&self, dir: &Path) -> io::Result<PkiFiles> {
        let files = PkiFiles {
            ca_cert: dir.join("ca.pem"),
            leaf_cert: dir.join("leaf.pem"),
            leaf_chain: dir.join("leaf-chain.pem"),
            leaf_key: dir.join("leaf.key"),
        };
        fs::write(&files.ca_cert, self.ca.cert_pem())?;
        fs::write(&files.leaf_cert, self.leaf.cert_pem())?;
        fs::write(&files.leaf_chain, self.leaf.chain_pem())?;
        write_private(&files.leaf_key, self.leaf.key_pem())?;
        Ok(files)
    }

    /// Writes the PEM files into a fresh temporary directory that lives as
    /// long as the returned value, for tests that need files but no server.
    pub fn write_temp(&self) -> io::Result<TempPkiFiles> {
        let dir = tempfile::Builder::new().prefix("dotcore-pki-").tempdir()?;
        let files = self.write_to(dir.path())?;
        Ok(TempPkiFiles { _dir: dir, files })
    }
}

fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    fs::write(path, contents)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Paths of the PEM files written by [`TestPki::write_to`].
#[derive(Clone, Debug)]
pub struct PkiFiles {
    /// CA certificate: the client's trust anchor (kdig `+tls-ca=`).
    pub ca_cert: PathBuf,
    /// Leaf certificate alone.
    pub leaf_cert: PathBuf,
    /// Leaf followed by the CA certificate.
    pub leaf_chain: PathBuf,
    /// Leaf private key (PKCS#8, mode 0600).
    pub leaf_key: PathBuf,
}

/// [`PkiFiles`] inside a temporary directory that is deleted on drop.
pub struct TempPkiFiles {
    _dir: tempfile::TempDir,
    /// The written files; valid while `self` is alive.
    pub files: PkiFiles,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_base64_sha256() {
        let pki = TestPki::generate();
        for pin in [pki.leaf.pin(), pki.ca.pin()] {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(&pin)
                .expect("pin is base64");
            assert_eq!(raw.len(), 32, "pin {pin} is not a SHA-256 digest");
        }
        assert_ne!(pki.leaf.pin(), pki.ca.pin());
    }

    #[test]
    fn leaves_are_independent_keys() {
        let pki = TestPki::generate();
        let other = pki.ca.issue_leaf(&["wrong.test"]);
        assert_ne!(pki.leaf.pin(), other.pin());
        assert_eq!(other.names(), ["wrong.test".to_string()]);
        assert!(pki.leaf.chain_pem().ends_with(pki.ca.cert_pem()));
    }

    #[test]
    fn files_are_written() {
        let pki = TestPki::generate();
        let tmp = pki.write_temp().unwrap();
        let ca = std::fs::read_to_string(&tmp.files.ca_cert).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        let key = std::fs::read_to_string(&tmp.files.leaf_key).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    }
}
