//! UniFFI bindings of the dotcore engine: the Kotlin API of the Android app.
//!
//! This crate is the only place where the engine meets a foreign language.
//! It stays thin, in the manner of mozilla/application-services components
//! and matrix-sdk-ffi: plain records and enums mirroring [`dotcore`]'s
//! types (`config`, `vpn`), one object ([`DotEngine`]) wrapping
//! [`dotcore::Engine`], one foreign trait ([`HostDelegate`]) for what the
//! platform must do (protect sockets, receive events), one error type
//! ([`DotError`]), and the Android-only set-up in `platform` (compiled for
//! `target_os = "android"` only). docs/kotlin-api.md describes the result
//! from the Kotlin side.
//!
//! The Kotlin code is generated from the built library by `uniffi-bindgen`
//! (see `scripts/test-kotlin.sh`); nothing generated is committed. Doc
//! comments here end up in the generated Kotlin, so they use Kotlin names.
//!
//! Rules at this boundary:
//!
//! * Nothing panics across it. Exported functions return [`DotError`] for
//!   everything a caller can get wrong; UniFFI turns a panic that still
//!   happens into a Kotlin `InternalException` instead of unwinding into the
//!   JVM. Calls *into* Kotlin (the delegate) cannot unwind into the engine
//!   either: an exception thrown by the Kotlin delegate arrives as an `Err`
//!   (see [`HostDelegate`]), and the adapter additionally catches panics.
//! * `unsafe` appears only at the edge, each use with a `// SAFETY:`
//!   comment: taking ownership of the TUN descriptor in
//!   [`DotEngine::start`] (after checking it is open), and the `no_mangle`
//!   JNI entry point in `platform` on Android.
//! * A delegate callback must not block and must not call `stop()`: it runs
//!   on the engine's thread.

// uniffi's scaffolding macros generate the `extern "C"` functions (with
// their own audited unsafe code); our own code may only use `unsafe` where a
// function explicitly allows it.
#![deny(unsafe_code)]

uniffi::setup_scaffolding!();

mod config;
mod engine;
mod error;
#[cfg(target_os = "android")]
pub mod platform;
mod vpn;

pub use config::{
    default_cache_settings, default_idle_settings, providers, validate_config, CacheSettings,
    CustomServer, EngineConfig, IdleSettings, Mode, NetworkInfo, PowerState, Provider, Upstream,
};
pub use engine::{
    server_failure_kinds, AnswerSource, DnsAnswer, DnsRecord, DotEngine, EngineEvent, EngineStats,
    HostDelegate, ServerFailure, UpstreamStatus,
};
pub use error::DotError;
pub use vpn::{tunnel_config, IpPrefix, TunnelConfig};
