//! presenced server shell: configuration, SIP transport, and the wiring of the engine thread.
//! The presence logic lives in the `presenced-systems` crate (`systems/`).

pub mod config;
pub mod http;
pub mod memory;
pub mod server;
pub mod sip;
pub mod store;
