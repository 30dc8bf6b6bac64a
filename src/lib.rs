//! presenced server shell: configuration, SIP transport, and the wiring of the engine thread.
//! The presence logic lives in the `presenced-systems` crate (`systems/`).
//!
//! Without the default `server` feature only the socket layer in [`sip`] is built, for loadgen.

#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod memory;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod reload;
#[cfg(feature = "server")]
pub mod server;
pub mod sip;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "server")]
pub mod tls;
