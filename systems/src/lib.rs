//! presenced engine (sans-IO): ECS components, resources and systems, and the wire formats they
//! speak. Nothing here touches a socket, a thread or a clock: messages and time come in through
//! [`Engine::tick`], messages to send come out.

// A refusal (`Answer`, ~136 bytes) is returned once per refused request, never in a loop:
// boxing it would cost an allocation on that path and buy nothing.
#![allow(clippy::result_large_err)]

#[cfg(any(test, feature = "test-support"))]
pub mod answers;
pub mod auth;
pub mod config;
pub mod durable;
pub mod engine;
pub mod formats;
pub mod growing_map;
pub mod hex;
pub mod ids;
pub(crate) mod inline;
pub mod io;
pub mod keyed_hash;
pub mod net;
pub mod percent;
pub mod pipeline;
pub mod presence;
pub mod privacy;
pub mod rls;
pub mod router;
#[cfg(any(test, feature = "test-support"))]
pub mod schema_check;
pub mod sip;
pub mod stats;
pub mod subscription;
pub mod time;
pub mod timers;
pub mod transaction;
pub mod winfo;
pub mod xcap;
pub mod xdm;
pub mod xml;

pub use config::EngineConfig;
pub use engine::Engine;
pub use net::{ConnId, Dest, Inbound, Outbound, Source, Transport};
pub use time::Time;
