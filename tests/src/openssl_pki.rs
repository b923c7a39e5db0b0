//! Certificates made with the openssl CLI, the way people make them for
//! their own DoT servers.
//!
//! [`crate::certs`] builds certificates with rcgen, which is convenient but
//! is the same Rust ecosystem dotcore verifies with: a shared assumption
//! would go unnoticed. The certificates here come from `openssl req -x509`
//! (a self-signed certificate that is its own CA, OpenSSL's default `v3_ca`
//! extensions) and `openssl ca` (private CAs, intermediates, leaves with
//! chosen dates, purposes and key types), so tests see exactly what a
//! tutorial's commands produce.
//!
//! Everything lives in one temporary directory owned by [`OpensslPki`].
//! Every openssl run is bounded by [`crate::run_tool`]'s wall-clock limit.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;

/// The key types people put on DoT servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// RSA with a 2048-bit modulus (what Let's Encrypt's `certbot` made by
    /// default for years).
    Rsa2048,
    /// ECDSA on P-256.
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
    /// Ed25519 (RFC 8410).
    Ed25519,
}

impl KeyType {
    /// All of them, for tests that try each.
    pub const ALL: [KeyType; 4] = [
        KeyType::Rsa2048,
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::Ed25519,
    ];

    /// `openssl genpkey` arguments for this key type.
    fn genpkey_args(self) -> &'static [&'static str] {
        match self {
            KeyType::Rsa2048 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            KeyType::EcdsaP256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyType::EcdsaP384 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
            KeyType::Ed25519 => &["-algorithm", "ED25519"],
        }
    }
}

/// The validity period of an issued certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From now for this many days (`openssl ca -days`).
    Days(u32),
    /// Between two `YYYYMMDDHHMMSSZ` times (`openssl ca -startdate
    /// -enddate`; OpenSSL 3.0's `x509` has no `-not_before`).
    Between(&'static str, &'static str),
}

/// A certificate and its key, as files.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate alone, PEM.
    pub cert: PathBuf,
    /// Its private key, PKCS#8 PEM.
    pub key: PathBuf,
}

impl Issued {
    /// The certificate PEM, e.g. for `Config::extra_ca_pem`.
    pub fn pem(&self) -> String {
        fs::read_to_string(&self.cert).expect("read certificate PEM")
    }

    /// The certificate in DER.
    pub fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(&self.cert).expect("certificate PEM")
    }
}

/// What a leaf is issued for.
#[derive(Debug, Clone)]
pub struct LeafSpec<'a> {
    /// Subject alternative names: DNS names, or IP literals (which become
    /// `IP:` SANs).
    pub names: &'a [&'a str],
    /// Its key type.
    pub key: KeyType,
    /// `extendedKeyUsage` value, e.g. `serverAuth` (or `clientAuth` for a
    /// certificate that must be refused).
    pub eku: &'a str,
    /// When it is valid.
    pub validity: Validity,
}

impl Default for LeafSpec<'_> {
    /// A leaf for `dot.test` and 127.0.0.1, ECDSA P-256, serverAuth, valid
    /// for 30 days.
    fn default() -> Self {
        LeafSpec {
            names: &[crate::DOT_NAME, "127.0.0.1"],
            key: KeyType::EcdsaP256,
            eku: "serverAuth",
            validity: Validity::Days(30),
        }
    }
}

/// A scratch directory in which certificates are made with the openssl
/// CLI; removed on drop.
pub struct OpensslPki {
    dir: tempfile::TempDir,
    counter: AtomicUsize,
}

/// The `openssl ca` configuration after its `dir = ...` line: a database in
/// the scratch directory and a policy that only asks for a common name.
const CA_CONFIG: &str = "
[ ca ]
default_ca = scratch_ca

[ scratch_ca ]
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
default_md = default
policy = policy_cn
unique_subject = no
copy_extensions = none

[ policy_cn ]
commonName = supplied
";

impl OpensslPki {
    /// A fresh scratch directory with an `openssl ca` database.
    pub fn new() -> Result<OpensslPki, String> {
        let dir = tempfile::Builder::new()
            .prefix("dotcore-openssl-pki-")
            .tempdir()
            .map_err(|e| format!("tempdir: {e}"))?;
        let write = |name: &str, contents: &str| {
            fs::write(dir.path().join(name), contents).map_err(|e| format!("write {name}: {e}"))
        };
        let ca_config = format!("dir = {}\n{CA_CONFIG}", dir.path().display());
        write("ca.cnf", &ca_config)?;
        write("index.txt", "")?;
        write("serial", "1000\n")?;
        fs::create_dir(dir.path().join("issued")).map_err(|e| format!("mkdir issued: {e}"))?;
        Ok(OpensslPki {
            dir,
            counter: AtomicUsize::new(0),
        })
    }

    /// The scratch directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A unique file stem for `label`, so two certificates never share
    /// files.
    fn stem(&self, label: &str) -> String {
        format!("{label}-{}", self.counter.fetch_add(1, Ordering::Relaxed))
    }

    /// Runs openssl (bounded by [`crate::run_tool`]); an error carries its
    /// stderr.
    fn openssl(&self, args: &[&str]) -> Result<(), String> {
        if crate::find_tool("openssl").is_none() {
            return Err("openssl is not installed".into());
        }
        let out = crate::run_tool("openssl", args);
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn new_key(&self, stem: &str, key: KeyType) -> Result<PathBuf, String> {
        let path = self.dir().join(format!("{stem}.key"));
        let out = path.display().to_string();
        let mut args = vec!["genpkey"];
        args.extend_from_slice(key.genpkey_args());
        args.extend_from_slice(&["-out", &out]);
        self.openssl(&args)?;
        Ok(path)
    }

    /// What people type for a self-hosted server: `openssl req -x509 -subj
    /// /CN=NAME -addext subjectAltName=... -days 365` (with a key from
    /// `openssl genpkey`, as `-newkey` would make). The result is
    /// self-signed and, from OpenSSL's default `v3_ca` section, `CA:TRUE`.
    pub fn self_signed(&self, names: &[&str], key: KeyType) -> Result<Issued, String> {
        let stem = self.stem("self-signed");
        let key_path = self.new_key(&stem, key)?;
        let cert = self.dir().join(format!("{stem}.pem"));
        let subject = format!("/CN={}", names.first().copied().unwrap_or("dot.test"));
        let san = format!("subjectAltName={}", san_list(names));
        self.openssl(&[
            "req",
            "-x509",
            "-key",
            &key_path.display().to_string(),
            "-out",
            &cert.display().to_string(),
            "-subj",
            &subject,
            "-addext",
            &san,
            "-days",
            "365",
        ])?;
        Ok(Issued {
            cert,
            key: key_path,
        })
    }

    /// A private root CA named `common_name`.
    pub fn root(&self, common_name: &str, key: KeyType) -> Result<Issued, String> {
        let stem = self.stem("root");
        let key_path = self.new_key(&stem, key)?;
        let cert = self.dir().join(format!("{stem}.pem"));
        self.openssl(&[
            "req",
            "-x509",
            "-key",
            &key_path.display().to_string(),
            "-out",
            &cert.display().to_string(),
            "-subj",
            &format!("/CN={common_name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-days",
            "3650",
        ])?;
        Ok(Issued {
            cert,
            key: key_path,
        })
    }

    /// An intermediate CA named `common_name`, signed by `issuer`.
    pub fn intermediate(
        &self,
        common_name: &str,
        key: KeyType,
        issuer: &Issued,
    ) -> Result<Issued, String> {
        let ext = "basicConstraints=critical,CA:TRUE\n\
                   keyUsage=critical,keyCertSign,cRLSign,digitalSignature\n\
                   subjectKeyIdentifier=hash\n\
                   authorityKeyIdentifier=keyid:always\n";
        self.issue(
            "intermediate",
            common_name,
            key,
            issuer,
            ext,
            Validity::Days(365),
        )
    }

    /// A server certificate signed by `issuer`.
    pub fn leaf(&self, issuer: &Issued, spec: &LeafSpec<'_>) -> Result<Issued, String> {
        let ext = format!(
            "basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature{}\n\
             extendedKeyUsage={}\n\
             subjectAltName={}\n\
             subjectKeyIdentifier=hash\n\
             authorityKeyIdentifier=keyid:always\n",
            if spec.key == KeyType::Rsa2048 {
                ",keyEncipherment"
            } else {
                ""
            },
            spec.eku,
            san_list(spec.names),
        );
        let cn = spec.names.first().copied().unwrap_or("dot.test");
        self.issue("leaf", cn, spec.key, issuer, &ext, spec.validity)
    }

    /// A self-signed certificate like [`Self::self_signed`]'s (`CA:TRUE`,
    /// the SANs) but with chosen dates: `openssl ca -selfsign`, since
    /// OpenSSL 3.0's `req -x509` cannot set a start date.
    pub fn self_signed_dated(
        &self,
        names: &[&str],
        key: KeyType,
        validity: Validity,
    ) -> Result<Issued, String> {
        let ext = format!(
            "basicConstraints=critical,CA:TRUE\n\
             subjectAltName={}\n\
             subjectKeyIdentifier=hash\n",
            san_list(names)
        );
        let cn = names.first().copied().unwrap_or("dot.test");
        self.issue_signed("self-signed-dated", cn, key, None, &ext, validity)
    }

    /// A new key and a certificate for it, `/CN=common_name`, signed by
    /// `issuer` with `openssl ca` under `extensions` (lines of an openssl
    /// extension section, e.g. `basicConstraints=critical,CA:TRUE`), for
    /// shapes the other constructors do not make.
    pub fn issue(
        &self,
        label: &str,
        common_name: &str,
        key: KeyType,
        issuer: &Issued,
        extensions: &str,
        validity: Validity,
    ) -> Result<Issued, String> {
        self.issue_signed(label, common_name, key, Some(issuer), extensions, validity)
    }

    /// [`Self::issue`], or self-signed (`-selfsign`) without an issuer.
    fn issue_signed(
        &self,
        label: &str,
        common_name: &str,
        key: KeyType,
        issuer: Option<&Issued>,
        extensions: &str,
        validity: Validity,
    ) -> Result<Issued, String> {
        let stem = self.stem(label);
        let key_path = self.new_key(&stem, key)?;
        let csr = self.dir().join(format!("{stem}.csr"));
        let cert = self.dir().join(format!("{stem}.pem"));
        let ext = self.dir().join(format!("{stem}.ext"));
        fs::write(&ext, format!("[ ext ]\n{extensions}")).map_err(|e| format!("write ext: {e}"))?;
        self.openssl(&[
            "req",
            "-new",
            "-key",
            &key_path.display().to_string(),
            "-subj",
            &format!("/CN={common_name}"),
            "-out",
            &csr.display().to_string(),
        ])?;
        let days;
        let ca_config = self.dir().join("ca.cnf").display().to_string();
        let mut args = vec![
            "ca",
            "-batch",
            "-notext",
            "-config",
            &ca_config,
            "-in",
            csr.to_str().ok_or("non-UTF-8 path")?,
            "-out",
            cert.to_str().ok_or("non-UTF-8 path")?,
            "-extfile",
            ext.to_str().ok_or("non-UTF-8 path")?,
            "-extensions",
            "ext",
        ];
        let key_str = key_path.display().to_string();
        match issuer {
            Some(issuer) => args.extend_from_slice(&[
                "-cert",
                issuer.cert.to_str().ok_or("non-UTF-8 path")?,
                "-keyfile",
                issuer.key.to_str().ok_or("non-UTF-8 path")?,
            ]),
            None => args.extend_from_slice(&["-selfsign", "-keyfile", &key_str]),
        }
        match validity {
            Validity::Days(n) => {
                days = n.to_string();
                args.extend_from_slice(&["-days", &days]);
            }
            Validity::Between(start, end) => {
                args.extend_from_slice(&["-startdate", start, "-enddate", end]);
            }
        }
        self.openssl(&args)?;
        Ok(Issued {
            cert,
            key: key_path,
        })
    }

    /// Concatenates the certificates into one PEM file, in the order given:
    /// what a server is configured to send (`tls-service-pem`).
    pub fn bundle(&self, label: &str, certs: &[&Issued]) -> Result<PathBuf, String> {
        let path = self.dir().join(format!("{}.pem", self.stem(label)));
        let mut pem = String::new();
        for c in certs {
            pem.push_str(&c.pem());
        }
        fs::write(&path, pem).map_err(|e| format!("write bundle: {e}"))?;
        Ok(path)
    }

    /// An OpenSSL configuration file whose system-default section caps the
    /// TLS version, for servers (unbound 1.17) that cannot do it themselves;
    /// pass it as `OPENSSL_CONF`. `max` is e.g. `TLSv1.2`.
    pub fn max_protocol_config(&self, max: &str) -> Result<PathBuf, String> {
        let path = self
            .dir()
            .join(format!("{}.cnf", self.stem("max-protocol")));
        let conf = format!(
            "openssl_conf = openssl_init\n\
             [openssl_init]\nssl_conf = ssl_sect\n\
             [ssl_sect]\nsystem_default = system_default_sect\n\
             [system_default_sect]\nMaxProtocol = {max}\n"
        );
        fs::write(&path, conf).map_err(|e| format!("write {}: {e}", path.display()))?;
        Ok(path)
    }
}

/// `DNS:a,IP:b` for openssl's `subjectAltName`.
fn san_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| match n.parse::<IpAddr>() {
            Ok(_) => format!("IP:{n}"),
            Err(_) => format!("DNS:{n}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}
