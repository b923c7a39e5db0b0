//! What the host asks the engine to do, and its validation.
//!
//! [`Config`] is plain data a settings screen or a command line fills in;
//! [`Config::validate`] turns it into [`Validated`] or says which field is
//! wrong and why, so the UI can show the message next to that field.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use base64::Engine as _;

use crate::policy::{IdlePolicy, PowerState};
use crate::providers::{self, DOT_PORT};

/// The RFC 8310 usage profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Strict privacy profile (RFC 8310 §5): the server must authenticate,
    /// otherwise the query fails. Never clear text.
    #[default]
    Strict,
    /// Opportunistic privacy profile (RFC 8310 §5): encrypt when possible,
    /// authenticate if possible, fall back to clear text when TLS fails.
    Opportunistic,
}

impl Mode {
    /// Parses `strict` or `opportunistic`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s.to_ascii_lowercase().as_str() {
            "strict" => Some(Mode::Strict),
            "opportunistic" | "automatic" => Some(Mode::Opportunistic),
            _ => None,
        }
    }
}

/// Which DoT servers to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// A built-in provider by id; `config_id` for template providers (NextDNS).
    Provider {
        /// Provider identifier from the catalogue.
        id: String,
        /// Per-user configuration ID, for providers that need one.
        config_id: Option<String>,
    },
    /// User-supplied servers, tried in order of measured speed.
    Custom(Vec<CustomServer>),
    /// No configured server: opportunistic DoT to the network's own
    /// resolvers on port 853 (Android's "Automatic" mode).
    NetworkResolvers,
}

/// A self-hosted or otherwise unlisted DoT server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomServer {
    /// Authentication domain name (SNI and certificate name); optional when
    /// pins are given.
    pub name: Option<String>,
    /// Addresses as `IP` or `IP:PORT` / `[IPv6]:PORT`.
    pub addresses: Vec<String>,
    /// Port for addresses that do not carry one; 0 means the default 853.
    pub port: u16,
    /// RFC 7469 SPKI pins: base64 of the SHA-256 of a SubjectPublicKeyInfo.
    pub pins: Vec<String>,
}

/// Answer cache settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Maximum number of cached answers; 0 disables the cache.
    pub max_entries: usize,
    /// TTLs below this are raised to it.
    pub min_ttl: Duration,
    /// TTLs above this are lowered to it.
    pub max_ttl: Duration,
    /// Upper bound for negative answers (RFC 2308 §5 suggests 1–3 hours max).
    pub max_negative_ttl: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_entries: 4096,
            min_ttl: Duration::from_secs(0),
            max_ttl: Duration::from_secs(86_400),
            max_negative_ttl: Duration::from_secs(3_600),
        }
    }
}

/// Time limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect to one address.
    pub connect: Duration,
    /// TLS handshake after connect.
    pub handshake: Duration,
    /// Whole life of one client query, retries included.
    pub query: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(3),
            handshake: Duration::from_secs(3),
            query: Duration::from_secs(5),
        }
    }
}

/// Back-off between DoT re-probes after opportunistic mode fell back to
/// clear text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReprobeBackoff {
    /// Wait after the first failure.
    pub initial: Duration,
    /// Longest wait.
    pub max: Duration,
}

impl Default for ReprobeBackoff {
    fn default() -> Self {
        ReprobeBackoff {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(30 * 60),
        }
    }
}

/// Everything the engine is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The servers.
    pub upstream: Upstream,
    /// Strict or opportunistic.
    pub mode: Mode,
    /// Extra trust anchors in PEM, for self-hosted servers and tests.
    pub extra_ca_pem: Option<String>,
    /// The network's own resolvers (from DHCP/RA), for opportunistic mode:
    /// DoT is tried on them on port 853, and clear text on the port given.
    pub network_resolvers: Vec<SocketAddr>,
    /// Cache.
    pub cache: CacheConfig,
    /// Idle close per power state.
    pub idle: IdlePolicy,
    /// Power state at start.
    pub power_state: PowerState,
    /// Time limits.
    pub timeouts: Timeouts,
    /// Queries outstanding on one connection at most (RFC 7766 §6.2.1.1
    /// leaves the number to the client; a cap bounds memory and server load).
    pub max_in_flight: usize,
    /// Padding block size for queries (RFC 8467 §4.1: 128); 0 disables.
    pub padding_block: usize,
    /// Opportunistic re-probe back-off.
    pub reprobe: ReprobeBackoff,
    /// Whether per-query events are produced for a query log.
    pub query_log: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            upstream: Upstream::Provider {
                id: providers::default_provider().id.to_string(),
                config_id: None,
            },
            mode: Mode::Strict,
            extra_ca_pem: None,
            network_resolvers: Vec::new(),
            cache: CacheConfig::default(),
            idle: IdlePolicy::default(),
            power_state: PowerState::Interactive,
            timeouts: Timeouts::default(),
            max_in_flight: 256,
            padding_block: 128,
            reprobe: ReprobeBackoff::default(),
            query_log: false,
        }
    }
}

/// Why a configuration was rejected. [`ConfigError::field`] names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// No provider has this id.
    UnknownProvider {
        /// The id given.
        id: String,
    },
    /// A template provider (NextDNS) was chosen without a configuration ID.
    MissingConfigId {
        /// The provider.
        provider: String,
    },
    /// The configuration ID is not a valid DNS label.
    BadConfigId {
        /// The value given.
        value: String,
    },
    /// Custom upstream with an empty server list.
    NoServers,
    /// A custom server without addresses.
    NoAddress {
        /// Index of the server.
        server: usize,
    },
    /// An address that is not `IP`, `IP:PORT` or `[IPv6]:PORT`.
    BadAddress {
        /// Index of the server.
        server: usize,
        /// The value given.
        value: String,
    },
    /// Port 0 given explicitly in an address.
    PortZero {
        /// Index of the server.
        server: usize,
    },
    /// One of the engine's own virtual DNS addresses
    /// ([`crate::net::VIRTUAL_DNS_V4`], [`crate::net::VIRTUAL_DNS_V6`]) given
    /// as a server: queries sent there would come back to the engine.
    OwnAddress {
        /// Index of the server.
        server: usize,
        /// The value given.
        value: String,
    },
    /// The authentication name is not a valid host name.
    BadName {
        /// Index of the server.
        server: usize,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Strict mode with neither a name, a pin nor an extra CA: nothing to
    /// authenticate. (With an extra CA, a server known only by address is
    /// checked against the IP address SANs of its certificate, as kdig does
    /// with `@IP +tls-ca=FILE`.)
    NoAuthentication {
        /// Index of the server.
        server: usize,
    },
    /// A pin that is not base64 of 32 bytes.
    BadPin {
        /// Index of the server.
        server: usize,
        /// Index of the pin.
        pin: usize,
        /// The value given.
        value: String,
    },
    /// The extra CA PEM holds no certificate or is malformed.
    BadCaPem {
        /// What is wrong with it.
        reason: String,
    },
    /// A numeric setting out of range.
    BadSetting {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl ConfigError {
    /// The path of the offending field, e.g. `servers[0].pins[1]`, for a UI
    /// to put the message next to the right input.
    pub fn field(&self) -> String {
        match self {
            ConfigError::UnknownProvider { .. } => "provider".into(),
            ConfigError::MissingConfigId { .. } | ConfigError::BadConfigId { .. } => {
                "config_id".into()
            }
            ConfigError::NoServers => "servers".into(),
            ConfigError::NoAddress { server } => format!("servers[{server}].addresses"),
            ConfigError::BadAddress { server, .. }
            | ConfigError::PortZero { server }
            | ConfigError::OwnAddress { server, .. } => format!("servers[{server}].addresses"),
            ConfigError::BadName { server, .. } | ConfigError::NoAuthentication { server } => {
                format!("servers[{server}].name")
            }
            ConfigError::BadPin { server, pin, .. } => format!("servers[{server}].pins[{pin}]"),
            ConfigError::BadCaPem { .. } => "extra_ca".into(),
            ConfigError::BadSetting { field, .. } => (*field).into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.field())?;
        match self {
            ConfigError::UnknownProvider { id } => {
                let known: Vec<_> = providers::PROVIDERS.iter().map(|p| p.id).collect();
                write!(f, "unknown provider {id:?} (known: {})", known.join(", "))
            }
            ConfigError::MissingConfigId { provider } => {
                write!(f, "provider {provider} needs a configuration ID")
            }
            ConfigError::BadConfigId { value } => write!(
                f,
                "configuration ID {value:?} must be 1-32 letters or digits"
            ),
            ConfigError::NoServers => f.write_str("no server given"),
            ConfigError::NoAddress { .. } => f.write_str("server has no address"),
            ConfigError::BadAddress { value, .. } => write!(
                f,
                "{value:?} is not an IP address (expected IP, IP:PORT or [IPv6]:PORT)"
            ),
            ConfigError::PortZero { .. } => f.write_str("port 0 is not a usable port"),
            ConfigError::OwnAddress { value, .. } => write!(
                f,
                "{value} is dotcore's own virtual DNS address; queries sent there would come \
                 back to dotcore"
            ),
            ConfigError::BadName { value, reason, .. } => {
                write!(f, "{value:?} is not a valid host name: {reason}")
            }
            ConfigError::NoAuthentication { .. } => f.write_str(
                "strict mode needs an authentication name or at least one SPKI pin \
                     (or, for a server known by its IP address, the CA of its certificate)",
            ),
            ConfigError::BadPin { value, .. } => write!(
                f,
                "{value:?} is not a pin-sha256 value (base64 of 32 bytes, as in RFC 7469)"
            ),
            ConfigError::BadCaPem { reason } => write!(f, "CA certificates unusable: {reason}"),
            ConfigError::BadSetting { reason, .. } => f.write_str(reason),
        }
    }
}

impl std::error::Error for ConfigError {}

/// One DoT server, checked and ready to dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// Authentication domain name; `None` for pin-only or opportunistic
    /// servers known only by address.
    pub auth_name: Option<String>,
    /// Addresses with ports.
    pub addresses: Vec<SocketAddr>,
    /// SHA-256 SPKI pins.
    pub pins: Vec<[u8; 32]>,
}

impl ServerSpec {
    /// A short label for logs and events: the name or the first address.
    pub fn label(&self) -> String {
        match (&self.auth_name, self.addresses.first()) {
            (Some(n), _) => n.clone(),
            (None, Some(a)) => a.to_string(),
            (None, None) => "?".into(),
        }
    }
}

/// A configuration that passed [`Config::validate`].
#[derive(Debug, Clone)]
pub struct Validated {
    /// The original settings.
    pub config: Config,
    /// Resolved DoT servers (empty for [`Upstream::NetworkResolvers`]; those
    /// are derived from the network's resolvers at run time).
    pub servers: Vec<ServerSpec>,
    /// Parsed extra trust anchors (DER).
    pub extra_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
}

impl Config {
    /// Checks every field and resolves providers to servers.
    pub fn validate(&self) -> Result<Validated, ConfigError> {
        let servers = match &self.upstream {
            Upstream::Provider { id, config_id } => {
                vec![provider_server(id, config_id.as_deref())?]
            }
            Upstream::Custom(list) => {
                if list.is_empty() {
                    return Err(ConfigError::NoServers);
                }
                list.iter()
                    .enumerate()
                    .map(|(i, s)| custom_server(i, s, self.mode, self.extra_ca_pem.is_some()))
                    .collect::<Result<Vec<_>, _>>()?
            }
            Upstream::NetworkResolvers => {
                if self.mode == Mode::Strict {
                    return Err(ConfigError::NoServers);
                }
                Vec::new()
            }
        };
        let extra_roots = match &self.extra_ca_pem {
            Some(pem) => parse_ca_pem(pem)?,
            None => Vec::new(),
        };
        self.check_settings()?;
        Ok(Validated {
            config: self.clone(),
            servers,
            extra_roots,
        })
    }

    fn check_settings(&self) -> Result<(), ConfigError> {
        let bad = |field, reason| Err(ConfigError::BadSetting { field, reason });
        if self.cache.min_ttl > self.cache.max_ttl {
            return bad("cache.min_ttl", "must not exceed cache.max_ttl");
        }
        if self.cache.max_entries > 1_000_000 {
            return bad("cache.max_entries", "must be at most 1000000");
        }
        if self.max_in_flight == 0 || self.max_in_flight > 65_535 {
            return bad("max_in_flight", "must be between 1 and 65535");
        }
        if self.padding_block > 1024 {
            return bad("padding_block", "must be at most 1024 bytes (0 disables)");
        }
        for (field, t) in [
            ("timeouts.connect", self.timeouts.connect),
            ("timeouts.handshake", self.timeouts.handshake),
            ("timeouts.query", self.timeouts.query),
        ] {
            if t.is_zero() || t > Duration::from_secs(120) {
                return bad(field, "must be between 1 ms and 120 s");
            }
        }
        if self.reprobe.initial.is_zero() || self.reprobe.initial > self.reprobe.max {
            return bad(
                "reprobe.initial",
                "must be non-zero and at most reprobe.max",
            );
        }
        self.idle
            .check()
            .map_err(|(field, reason)| ConfigError::BadSetting { field, reason })
    }
}

fn provider_server(id: &str, config_id: Option<&str>) -> Result<ServerSpec, ConfigError> {
    let p = providers::find(id).ok_or_else(|| ConfigError::UnknownProvider { id: id.into() })?;
    let auth_name = if p.needs_config_id {
        let cid =
            config_id
                .filter(|c| !c.is_empty())
                .ok_or_else(|| ConfigError::MissingConfigId {
                    provider: p.id.into(),
                })?;
        if !providers::valid_config_id(cid) {
            return Err(ConfigError::BadConfigId { value: cid.into() });
        }
        p.auth_name.replace("{id}", &cid.to_ascii_lowercase())
    } else {
        p.auth_name.to_string()
    };
    Ok(ServerSpec {
        auth_name: Some(auth_name),
        addresses: p
            .addresses
            .iter()
            .map(|ip| SocketAddr::new(*ip, p.port))
            .collect(),
        pins: Vec::new(),
    })
}

fn custom_server(
    i: usize,
    s: &CustomServer,
    mode: Mode,
    has_extra_ca: bool,
) -> Result<ServerSpec, ConfigError> {
    if s.addresses.is_empty() {
        return Err(ConfigError::NoAddress { server: i });
    }
    let default_port = if s.port == 0 { DOT_PORT } else { s.port };
    let addresses = s
        .addresses
        .iter()
        .map(|a| parse_address(a, default_port).map_err(|e| e.at(i)))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(own) = addresses
        .iter()
        .find(|a| crate::net::is_virtual_dns(a.ip()))
    {
        return Err(ConfigError::OwnAddress {
            server: i,
            value: own.ip().to_string(),
        });
    }
    let auth_name = match s.name.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(n) => Some(check_host_name(n).map_err(|reason| ConfigError::BadName {
            server: i,
            value: n.into(),
            reason,
        })?),
    };
    let pins = s
        .pins
        .iter()
        .enumerate()
        .map(|(p, v)| {
            parse_pin(v).ok_or_else(|| ConfigError::BadPin {
                server: i,
                pin: p,
                value: v.clone(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // With a CA of its own but neither name nor pins, the certificate is
    // checked against the server's IP address (tls::ServerTls::name_for).
    // Without that CA the whole public PKI would vouch for a bare address
    // nobody named, so strict mode still asks for something.
    if mode == Mode::Strict && auth_name.is_none() && pins.is_empty() && !has_extra_ca {
        return Err(ConfigError::NoAuthentication { server: i });
    }
    Ok(ServerSpec {
        auth_name,
        addresses,
        pins,
    })
}

/// Why an address string was refused (before we know the server index).
#[derive(Debug)]
pub(crate) enum AddressError {
    Bad(String),
    PortZero,
}

impl AddressError {
    fn at(self, server: usize) -> ConfigError {
        match self {
            AddressError::Bad(value) => ConfigError::BadAddress { server, value },
            AddressError::PortZero => ConfigError::PortZero { server },
        }
    }
}

/// Parses `IP`, `IP:PORT` or `[IPv6]:PORT`.
pub(crate) fn parse_address(s: &str, default_port: u16) -> Result<SocketAddr, AddressError> {
    let s = s.trim();
    let addr = if let Ok(ip) = s.parse::<IpAddr>() {
        SocketAddr::new(ip, default_port)
    } else if let Ok(sa) = s.parse::<SocketAddr>() {
        sa
    } else {
        return Err(AddressError::Bad(s.into()));
    };
    if addr.port() == 0 {
        return Err(AddressError::PortZero);
    }
    Ok(addr)
}

/// Parses a network resolver address (`IP` means port 53).
pub fn parse_resolver_address(s: &str) -> Result<SocketAddr, ConfigError> {
    parse_address(s, 53).map_err(|e| match e {
        AddressError::Bad(value) => ConfigError::BadAddress { server: 0, value },
        AddressError::PortZero => ConfigError::PortZero { server: 0 },
    })
}

/// Decodes an RFC 7469 `pin-sha256` value (with or without the
/// `pin-sha256=` prefix and quotes).
pub fn parse_pin(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    let s = s.strip_prefix("pin-sha256=").unwrap_or(s).trim_matches('"');
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    bytes.try_into().ok()
}

/// Checks a host name (RFC 1123 §2.1 labels) and returns it lower-cased
/// without a trailing dot.
fn check_host_name(n: &str) -> Result<String, &'static str> {
    let n = n.strip_suffix('.').unwrap_or(n);
    if n.is_empty() || n.len() > 253 {
        return Err("length must be 1 to 253 characters");
    }
    if n.parse::<IpAddr>().is_ok() {
        // An IP literal is a valid reference identity for an IP SAN.
        return Ok(n.into());
    }
    for label in n.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each label must be 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("only letters, digits and '-' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label must not start or end with '-'");
        }
    }
    let n = n.to_ascii_lowercase();
    // The connection is opened with rustls's ServerName: a name it refuses
    // is refused here, not found out at every handshake. Past the checks
    // above, what it refuses is a last label that is a (decimal or hex)
    // number.
    if server_name(&n).is_none() {
        return Err("the last label must not be a number (it would read as an IPv4 address)");
    }
    Ok(n)
}

/// `name` as the TLS server name rustls connects with, or `None` when rustls
/// refuses it. Config validation and `tls::ServerTls` both use this, so a name
/// that passed validation is the name the handshake is made for.
///
/// DNS names compare without regard to case and a trailing dot only marks
/// the name as absolute (RFC 4343 §3, RFC 1034 §3.1), so `DOT.Test.` is
/// `dot.test`; the SNI must not carry the dot anyway (RFC 6066 §3).
pub(crate) fn server_name(name: &str) -> Option<rustls_pki_types::ServerName<'static>> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    rustls_pki_types::ServerName::try_from(bare.to_ascii_lowercase()).ok()
}

fn parse_ca_pem(pem: &str) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, ConfigError> {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::BadCaPem {
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(ConfigError::BadCaPem {
            reason: "no CERTIFICATE block found".into(),
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom(name: Option<&str>, addrs: &[&str], pins: &[&str]) -> Config {
        Config {
            upstream: Upstream::Custom(vec![CustomServer {
                name: name.map(Into::into),
                addresses: addrs.iter().map(|s| s.to_string()).collect(),
                port: 0,
                pins: pins.iter().map(|s| s.to_string()).collect(),
            }]),
            ..Config::default()
        }
    }

    const PIN: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

    #[test]
    fn default_config_is_valid() {
        let v = Config::default().validate().unwrap();
        assert_eq!(v.servers[0].auth_name.as_deref(), Some("one.one.one.one"));
        assert_eq!(v.servers[0].addresses[0], "1.1.1.1:853".parse().unwrap());
    }

    #[test]
    fn errors_name_the_field() {
        let cases: Vec<(Config, &str)> = vec![
            (
                Config {
                    upstream: Upstream::Provider {
                        id: "nope".into(),
                        config_id: None,
                    },
                    ..Config::default()
                },
                "provider",
            ),
            (
                Config {
                    upstream: Upstream::Provider {
                        id: "nextdns".into(),
                        config_id: None,
                    },
                    ..Config::default()
                },
                "config_id",
            ),
            (custom(Some("dot.test"), &[], &[]), "servers[0].addresses"),
            (
                custom(Some("dot.test"), &["1.2.3.4:0"], &[]),
                "servers[0].addresses",
            ),
            (
                custom(Some("dot.test"), &["not-an-ip"], &[]),
                "servers[0].addresses",
            ),
            (
                custom(Some("dot.test"), &["127.0.0.1"], &[PIN, "AAAA"]),
                "servers[0].pins[1]",
            ),
            (custom(None, &["127.0.0.1"], &[]), "servers[0].name"),
            (
                custom(Some("bad_name!"), &["127.0.0.1"], &[]),
                "servers[0].name",
            ),
        ];
        // An address alone, with a CA given, is authenticated by its IP
        // address SAN.
        let ca = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap()
            .pem();
        let v = Config {
            extra_ca_pem: Some(ca),
            ..custom(None, &["127.0.0.1"], &[])
        }
        .validate()
        .unwrap();
        assert_eq!(v.servers[0].auth_name, None);
        for (cfg, field) in cases {
            let err = cfg.validate().unwrap_err();
            assert_eq!(err.field(), field, "{err}");
            assert!(err.to_string().starts_with(field));
        }
        let cfg = Config {
            extra_ca_pem: Some("garbage".into()),
            ..Config::default()
        };
        assert_eq!(cfg.validate().unwrap_err().field(), "extra_ca");
        let cfg = Config {
            max_in_flight: 0,
            ..Config::default()
        };
        assert_eq!(cfg.validate().unwrap_err().field(), "max_in_flight");
    }

    #[test]
    fn names_rustls_refuses_are_refused_here() {
        // rustls's ServerName (what the connection is opened with) refuses
        // a last label that is a number: it would read as an IPv4 address.
        for name in ["dot.123", "dot.0x1f"] {
            let err = custom(Some(name), &["127.0.0.1"], &[PIN])
                .validate()
                .unwrap_err();
            assert!(
                matches!(err, ConfigError::BadName { server: 0, .. }),
                "{name}: {err}"
            );
            assert_eq!(err.field(), "servers[0].name");
            assert!(err.to_string().contains(name), "{err}");
        }
        // A number elsewhere, and an IP literal as the name, stay valid.
        for name in ["123.dot.test", "dot.4.example", "192.0.2.1", "::1"] {
            custom(Some(name), &["127.0.0.1"], &[])
                .validate()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn the_engines_own_virtual_addresses_are_not_servers() {
        for own in ["10.111.222.3", "[fd64:d07c:0:1::53]:853"] {
            let err = custom(Some("dot.test"), &["192.0.2.1", own], &[])
                .validate()
                .unwrap_err();
            assert!(
                matches!(err, ConfigError::OwnAddress { server: 0, .. }),
                "{err}"
            );
            assert_eq!(err.field(), "servers[0].addresses");
            assert!(err.to_string().contains("own virtual DNS address"), "{err}");
        }
    }

    #[test]
    fn pin_only_and_nextdns_are_accepted() {
        let v = custom(None, &["[::1]:8853", "127.0.0.1"], &[PIN])
            .validate()
            .unwrap();
        assert_eq!(v.servers[0].addresses[0], "[::1]:8853".parse().unwrap());
        assert_eq!(v.servers[0].addresses[1].port(), 853);
        assert_eq!(v.servers[0].pins.len(), 1);
        let cfg = Config {
            upstream: Upstream::Provider {
                id: "nextdns".into(),
                config_id: Some("AbC123".into()),
            },
            ..Config::default()
        };
        let v = cfg.validate().unwrap();
        assert_eq!(
            v.servers[0].auth_name.as_deref(),
            Some("abc123.dns.nextdns.io")
        );
        assert_eq!(parse_pin(&format!("pin-sha256=\"{PIN}\"")), parse_pin(PIN));
    }
}
