//! The one error type of the API; Kotlin sees it as the sealed class
//! `DotException` with one subclass per variant.

use std::fmt;

use dotcore::{ConfigError, EngineError};

/// Why a call failed. Every variant carries text meant for people; the
/// settings screen shows [`DotError::InvalidConfig`]'s `reason` next to the
/// input named by `field`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Error)]
pub enum DotError {
    /// The configuration was rejected. `field` is the path of the offending
    /// setting (`provider`, `config_id`, `servers[0].pins[1]`, `extra_ca`,
    /// `cache.max_ttl`, `network_resolvers[2]`, ...; the full list is in
    /// docs/kotlin-api.md) and `reason` says what is wrong with it.
    InvalidConfig {
        /// Path of the offending setting.
        field: String,
        /// What is wrong, for people.
        reason: String,
    },
    /// `lookup` got a name or record type it cannot put in a query, or the
    /// answer could not be decoded.
    InvalidQuery {
        /// What is wrong, for people.
        reason: String,
    },
    /// The TUN descriptor given to `start` is unusable.
    Tun {
        /// What is wrong, for people.
        reason: String,
    },
    /// `start` was called while a TUN device is already attached.
    AlreadyStarted,
    /// The engine was stopped (`stop()` or `close()`); create a new one.
    Stopped,
    /// The engine could not start its thread, or another failure that is not
    /// the caller's fault.
    Internal {
        /// What happened, for logs.
        reason: String,
    },
    /// Only produced for the host delegate: the Kotlin implementation threw.
    /// The engine treats it as "refused" (the socket is not used) or ignores
    /// it (events), and keeps running.
    Delegate {
        /// The exception, as text.
        reason: String,
    },
}

impl fmt::Display for DotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DotError::InvalidConfig { field, reason } => write!(f, "{field}: {reason}"),
            DotError::InvalidQuery { reason } => write!(f, "invalid query: {reason}"),
            DotError::Tun { reason } => write!(f, "TUN device: {reason}"),
            DotError::AlreadyStarted => f.write_str("a TUN device is already attached"),
            DotError::Stopped => f.write_str("the engine is stopped"),
            DotError::Internal { reason } => write!(f, "internal error: {reason}"),
            DotError::Delegate { reason } => write!(f, "host delegate failed: {reason}"),
        }
    }
}

impl std::error::Error for DotError {}

impl DotError {
    /// A setting of ours (not the core's) out of range.
    pub(crate) fn setting(field: impl Into<String>, reason: impl Into<String>) -> DotError {
        DotError::InvalidConfig {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<ConfigError> for DotError {
    fn from(e: ConfigError) -> Self {
        let field = e.field();
        let text = e.to_string();
        // The core's Display is "FIELD: REASON"; the screen wants the two apart.
        let reason = text
            .strip_prefix(&format!("{field}: "))
            .map(str::to_string)
            .unwrap_or(text);
        DotError::InvalidConfig { field, reason }
    }
}

impl From<EngineError> for DotError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Config(c) => c.into(),
            EngineError::Runtime(io) => DotError::Internal {
                reason: format!("cannot start the engine thread: {io}"),
            },
            EngineError::Stopped => DotError::Stopped,
            EngineError::AlreadyRunning => DotError::AlreadyStarted,
            EngineError::Tun(io) => DotError::Tun {
                reason: io.to_string(),
            },
        }
    }
}

/// What a throwing Kotlin delegate turns into (instead of a panic).
impl From<uniffi::UnexpectedUniFFICallbackError> for DotError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        DotError::Delegate { reason: e.reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_keep_field_and_reason_apart() {
        let e: DotError = ConfigError::BadPin {
            server: 0,
            pin: 1,
            value: "AAAA".into(),
        }
        .into();
        match e {
            DotError::InvalidConfig { field, reason } => {
                assert_eq!(field, "servers[0].pins[1]");
                assert!(
                    reason.starts_with("\"AAAA\" is not a pin-sha256 value"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn engine_errors_map_to_variants() {
        assert_eq!(DotError::from(EngineError::Stopped), DotError::Stopped);
        assert_eq!(
            DotError::from(EngineError::AlreadyRunning),
            DotError::AlreadyStarted
        );
        let e = DotError::from(EngineError::Tun(std::io::Error::from_raw_os_error(9)));
        assert!(matches!(e, DotError::Tun { .. }), "{e:?}");
    }
}
