//! dotcore: a DNS-over-TLS client core for phones.
//!
//! The engine takes DNS queries in wire format and answers them over TLS
//! (RFC 7858) under the strict or opportunistic privacy profile (RFC 8310),
//! keeping connections open only as long as the device's power state makes
//! worthwhile. Start with [`Resolver`] and [`Config`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), dotcore::ConfigError> {
//! use std::sync::Arc;
//! let resolver = dotcore::Resolver::new(&dotcore::Config::default(), Arc::new(dotcore::NoHost))?;
//! let query: Vec<u8> = vec![/* a DNS query */];
//! let answer = resolver.resolve(&query).await;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]
#![warn(unreachable_pub)]

mod cache;
mod cleartext;
mod coalesce;
pub mod config;
pub mod engine;
pub mod failure;
mod fallback;
pub mod framing;
pub mod host;
mod inflight;
pub mod message;
pub mod net;
mod packet;
mod pipeline;
pub mod policy;
mod pool;
pub mod providers;
mod quickack;
pub mod resolver;
mod rng;
pub mod stats;
mod tls;
mod transport;
pub mod tun;
mod upstream;
mod wire;

pub use config::{CacheConfig, Config, ConfigError, CustomServer, Mode, Timeouts, Upstream};
pub use engine::{Engine, EngineError};
pub use host::{AnswerSource, Dialer, Event, Host, NoHost};
pub use policy::{IdlePolicy, PowerState};
pub use resolver::Resolver;
pub use stats::StatsSnapshot;

/// Serving DNS to UDP clients the way the TUN path does, for hosts with a
/// socket of their own (the CLI's proxy): answer only queries, and fit the
/// answer into the client's buffer.
pub use packet::{client_udp_payload_limit, truncate_dns_response};
/// Whether a message is a DNS response (QR set): a UDP server must not
/// answer one, not even with an error, or two servers tricked into it
/// answer each other forever.
pub use wire::is_response as is_dns_response;

/// The crate's internals, opened for its own integration tests and fuzz
/// targets (`tests/`, `rust-core/fuzz/`). Not a supported API: anything in
/// here may change or go in any release.
#[doc(hidden)]
pub mod internals {
    /// The DNS wire parser (`wire`).
    pub mod wire {
        pub use crate::wire::*;
    }
    /// The TUN path's packet layer (`packet`).
    pub mod packet {
        pub use crate::packet::*;
    }
    /// TLS configuration and server authentication (`tls`).
    pub mod tls {
        pub use crate::tls::*;
    }
    /// The packet path without a device or runtime (`tun::fuzzing`).
    #[cfg(feature = "fuzzing")]
    pub mod tun {
        pub use crate::tun::fuzzing::*;
    }
}
