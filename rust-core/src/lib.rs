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

pub mod cache;
mod cleartext;
mod coalesce;
pub mod config;
pub mod engine;
pub mod failure;
mod fallback;
pub mod framing;
pub mod host;
pub mod message;
pub mod net;
pub mod packet;
mod pipeline;
pub mod policy;
pub mod providers;
mod quickack;
pub mod resolver;
mod rng;
pub mod stats;
pub mod tls;
mod transport;
pub mod tun;
mod upstream;
pub mod wire;

pub use config::{CacheConfig, Config, ConfigError, CustomServer, Mode, Timeouts, Upstream};
pub use engine::{Engine, EngineError};
pub use host::{AnswerSource, Dialer, Event, Host, NoHost};
pub use policy::{IdlePolicy, PowerState};
pub use resolver::Resolver;
pub use stats::StatsSnapshot;
