//! Settings as Kotlin sees them, and their translation to [`dotcore::Config`].
//!
//! Numbers are `Int` (`i32`) in Kotlin rather than UniFFI's unsigned types,
//! which are awkward there (`UInt`, `UShort`); ranges are checked here and
//! reported like the core's own checks, with the field named.

use std::net::SocketAddr;
use std::time::Duration;

use dotcore::config::parse_resolver_address;

use crate::error::DotError;

/// The RFC 8310 usage profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Mode {
    /// The server must authenticate (name or pin), else the query fails
    /// with SERVFAIL. Never clear text.
    Strict,
    /// Encrypt when possible, fall back to the network's resolvers in clear
    /// text when TLS does not work (Android's "Automatic").
    Opportunistic,
}

impl From<Mode> for dotcore::Mode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Strict => dotcore::Mode::Strict,
            Mode::Opportunistic => dotcore::Mode::Opportunistic,
        }
    }
}

/// What the device is doing; decides how long idle connections stay open
/// (see docs/connection-policy.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PowerState {
    /// Screen on.
    Interactive,
    /// Screen off.
    Idle,
    /// Doze or battery saver.
    DeepIdle,
}

impl From<PowerState> for dotcore::PowerState {
    fn from(p: PowerState) -> Self {
        match p {
            PowerState::Interactive => dotcore::PowerState::Interactive,
            PowerState::Idle => dotcore::PowerState::Idle,
            PowerState::DeepIdle => dotcore::PowerState::DeepIdle,
        }
    }
}

/// A self-hosted or unlisted DoT server.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CustomServer {
    /// Authentication name (SNI, certificate name); may be null when pins
    /// are given.
    #[uniffi(default = None)]
    pub name: Option<String>,
    /// `IP`, `IP:PORT` or `[IPv6]:PORT`.
    pub addresses: Vec<String>,
    /// Port for addresses without one; 0 means 853.
    #[uniffi(default = 0)]
    pub port: i32,
    /// RFC 7469 pins: base64 of the SHA-256 of a SubjectPublicKeyInfo.
    #[uniffi(default = [])]
    pub pins: Vec<String>,
}

/// Which servers to use.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Upstream {
    /// A built-in provider (see `providers()`); `config_id` for providers
    /// that need one (NextDNS).
    Provider {
        /// Provider id, e.g. "cloudflare".
        id: String,
        /// Per-user configuration ID, or null.
        config_id: Option<String>,
    },
    /// User-supplied servers.
    Custom {
        /// The servers, at least one.
        servers: Vec<CustomServer>,
    },
    /// No server of our own: opportunistic DoT to the network's resolvers
    /// (needs `Mode.OPPORTUNISTIC`).
    NetworkResolvers,
}

/// Answer cache settings. Start from `defaultCacheSettings()` and `copy()`
/// what you change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct CacheSettings {
    /// Maximum number of cached answers; 0 disables the cache.
    pub max_entries: i32,
    /// TTLs below this many seconds are raised to it.
    pub min_ttl_secs: i32,
    /// TTLs above this many seconds are lowered to it.
    pub max_ttl_secs: i32,
    /// Upper bound for negative answers, seconds.
    pub max_negative_ttl_secs: i32,
}

/// How long an unused connection stays open in each power state (see
/// docs/connection-policy.md). Start from `defaultIdleSettings()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct IdleSettings {
    /// Screen on, seconds.
    pub interactive_secs: i32,
    /// Screen off, seconds.
    pub idle_secs: i32,
    /// Doze or battery saver, seconds (0: close as soon as queries drain).
    pub deep_idle_secs: i32,
}

fn secs_i32(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

/// The engine's cache settings when `EngineConfig.cache` is null.
#[uniffi::export]
pub fn default_cache_settings() -> CacheSettings {
    let c = dotcore::CacheConfig::default();
    CacheSettings {
        max_entries: i32::try_from(c.max_entries).unwrap_or(i32::MAX),
        min_ttl_secs: secs_i32(c.min_ttl),
        max_ttl_secs: secs_i32(c.max_ttl),
        max_negative_ttl_secs: secs_i32(c.max_negative_ttl),
    }
}

/// The engine's idle settings when `EngineConfig.idle` is null.
#[uniffi::export]
pub fn default_idle_settings() -> IdleSettings {
    let p = dotcore::IdlePolicy::default();
    IdleSettings {
        interactive_secs: secs_i32(p.interactive),
        idle_secs: secs_i32(p.idle),
        deep_idle_secs: secs_i32(p.deep_idle),
    }
}

/// Everything an engine is created with. Only `upstream` and `mode` are
/// required; everything else has the engine's defaults.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EngineConfig {
    /// The servers.
    pub upstream: Upstream,
    /// Strict or opportunistic.
    pub mode: Mode,
    /// Extra trust anchors in PEM (self-hosted servers with a private CA).
    #[uniffi(default = None)]
    pub extra_ca_pem: Option<String>,
    /// Cache settings; null for the engine's defaults
    /// (`defaultCacheSettings()`).
    #[uniffi(default = None)]
    pub cache: Option<CacheSettings>,
    /// Idle-close settings; null for the engine's defaults
    /// (`defaultIdleSettings()`).
    #[uniffi(default = None)]
    pub idle: Option<IdleSettings>,
    /// Emit an `EngineEvent.Query` for every answered query.
    #[uniffi(default = false)]
    pub query_log: bool,
    /// The current network's resolvers (`IP` or `IP:PORT`, port 53 by
    /// default), for opportunistic mode; later changes go through
    /// `onNetworkChanged`.
    #[uniffi(default = [])]
    pub network_resolvers: Vec<String>,
}

/// The device's current network, as `ConnectivityManager` reports it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NetworkInfo {
    /// The network's DNS servers (`LinkProperties.getDnsServers()`), `IP` or
    /// `IP:PORT`; port 53 by default.
    pub dns_servers: Vec<String>,
    /// `NET_CAPABILITY_NOT_METERED` absent. Logged; not yet used by the
    /// connection policy.
    #[uniffi(default = false)]
    pub metered: bool,
    /// `NET_CAPABILITY_VALIDATED` present. Logged; not yet used.
    #[uniffi(default = true)]
    pub validated: bool,
}

/// A built-in DoT provider.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Provider {
    /// Stable id for `Upstream.Provider`.
    pub id: String,
    /// Name to show.
    pub display_name: String,
    /// Authentication name; contains `{id}` for providers that need a
    /// configuration ID.
    pub auth_name: String,
    /// Anycast addresses, IPv4 first.
    pub addresses: Vec<String>,
    /// TCP port.
    pub port: i32,
    /// Whether `Upstream.Provider.configId` is required.
    pub needs_config_id: bool,
    /// One line about the service.
    pub description: String,
}

/// The built-in provider catalogue, default provider first.
#[uniffi::export]
pub fn providers() -> Vec<Provider> {
    dotcore::providers::PROVIDERS
        .iter()
        .map(|p| Provider {
            id: p.id.into(),
            display_name: p.display_name.into(),
            auth_name: p.auth_name.into(),
            addresses: p.addresses.iter().map(ToString::to_string).collect(),
            port: i32::from(p.port),
            needs_config_id: p.needs_config_id,
            description: p.description.into(),
        })
        .collect()
}

/// Checks a configuration without starting anything (for a settings
/// screen); throws `DotException.InvalidConfig` naming the field.
#[uniffi::export]
pub fn validate_config(config: EngineConfig) -> Result<(), DotError> {
    let core = config.to_core()?;
    core.validate()?;
    Ok(())
}

fn non_negative(field: &'static str, v: i32) -> Result<u64, DotError> {
    u64::try_from(v).map_err(|_| DotError::setting(field, "must not be negative"))
}

fn secs(field: &'static str, v: i32) -> Result<Duration, DotError> {
    non_negative(field, v).map(Duration::from_secs)
}

/// Parses resolver addresses (`IP` means port 53); errors name `field[i]`.
pub(crate) fn parse_resolvers(field: &str, list: &[String]) -> Result<Vec<SocketAddr>, DotError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            parse_resolver_address(s).map_err(|_| {
                DotError::setting(
                    format!("{field}[{i}]"),
                    format!("{s:?} is not an IP address (expected IP, IP:PORT or [IPv6]:PORT)"),
                )
            })
        })
        .collect()
}

impl EngineConfig {
    /// The core's configuration. Range checks of our own types happen here;
    /// everything else is [`dotcore::Config::validate`]'s job.
    pub(crate) fn to_core(&self) -> Result<dotcore::Config, DotError> {
        let upstream = match &self.upstream {
            Upstream::Provider { id, config_id } => dotcore::Upstream::Provider {
                id: id.clone(),
                config_id: config_id.clone(),
            },
            Upstream::Custom { servers } => dotcore::Upstream::Custom(
                servers
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let port = u16::try_from(s.port).map_err(|_| {
                            DotError::setting(
                                format!("servers[{i}].port"),
                                "must be between 0 and 65535 (0 means 853)",
                            )
                        })?;
                        Ok(dotcore::CustomServer {
                            name: s.name.clone(),
                            addresses: s.addresses.clone(),
                            port,
                            pins: s.pins.clone(),
                        })
                    })
                    .collect::<Result<Vec<_>, DotError>>()?,
            ),
            Upstream::NetworkResolvers => dotcore::Upstream::NetworkResolvers,
        };
        let cache = match &self.cache {
            None => dotcore::CacheConfig::default(),
            Some(c) => dotcore::CacheConfig {
                max_entries: usize::try_from(non_negative("cache.max_entries", c.max_entries)?)
                    .map_err(|_| DotError::setting("cache.max_entries", "too large"))?,
                min_ttl: secs("cache.min_ttl", c.min_ttl_secs)?,
                max_ttl: secs("cache.max_ttl", c.max_ttl_secs)?,
                max_negative_ttl: secs("cache.max_negative_ttl", c.max_negative_ttl_secs)?,
            },
        };
        let idle = match &self.idle {
            None => dotcore::IdlePolicy::default(),
            Some(i) => dotcore::IdlePolicy {
                interactive: secs("idle.interactive", i.interactive_secs)?,
                idle: secs("idle.idle", i.idle_secs)?,
                deep_idle: secs("idle.deep_idle", i.deep_idle_secs)?,
            },
        };
        Ok(dotcore::Config {
            upstream,
            mode: self.mode.into(),
            extra_ca_pem: self.extra_ca_pem.clone(),
            network_resolvers: parse_resolvers("network_resolvers", &self.network_resolvers)?,
            cache,
            idle,
            query_log: self.query_log,
            ..dotcore::Config::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(upstream: Upstream) -> EngineConfig {
        EngineConfig {
            upstream,
            mode: Mode::Strict,
            extra_ca_pem: None,
            cache: None,
            idle: None,
            query_log: false,
            network_resolvers: Vec::new(),
        }
    }

    fn field_of(r: Result<(), DotError>) -> String {
        match r {
            Err(DotError::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_cores() {
        let mut c = config(Upstream::Provider {
            id: "cloudflare".into(),
            config_id: None,
        });
        assert_eq!(c.to_core().unwrap(), dotcore::Config::default());
        // The exported defaults translate back to exactly the core's.
        c.cache = Some(default_cache_settings());
        c.idle = Some(default_idle_settings());
        assert_eq!(c.to_core().unwrap(), dotcore::Config::default());
    }

    #[test]
    fn our_range_checks_name_the_field() {
        let mut c = config(Upstream::Custom {
            servers: vec![CustomServer {
                name: Some("dot.test".into()),
                addresses: vec!["127.0.0.1".into()],
                port: 70000,
                pins: vec![],
            }],
        });
        assert_eq!(field_of(validate_config(c.clone())), "servers[0].port");
        if let Upstream::Custom { servers } = &mut c.upstream {
            servers[0].port = 8853;
        }
        validate_config(c.clone()).unwrap();
        let mut cache = default_cache_settings();
        cache.max_ttl_secs = -1;
        c.cache = Some(cache);
        assert_eq!(field_of(validate_config(c.clone())), "cache.max_ttl");
        cache.max_ttl_secs = 10;
        cache.min_ttl_secs = 20;
        c.cache = Some(cache);
        assert_eq!(field_of(validate_config(c.clone())), "cache.min_ttl");
        c.cache = None;
        c.network_resolvers = vec!["192.0.2.53".into(), "nope".into()];
        assert_eq!(field_of(validate_config(c)), "network_resolvers[1]");
    }

    #[test]
    fn catalogue_is_exported_in_order() {
        let list = providers();
        assert_eq!(list.len(), dotcore::providers::PROVIDERS.len());
        assert_eq!(list[0].id, dotcore::providers::default_provider().id);
        assert!(list.iter().any(|p| p.needs_config_id));
    }
}
