//! SIP transport: the mio event loop that moves bytes between sockets and the engine. Only
//! the datagram and socket helpers are built without the `server` feature (loadgen uses them).

pub mod coalesce;
pub mod datagrams;
#[cfg(feature = "server")]
pub mod durable_gate;
#[cfg(feature = "server")]
pub mod engine_link;
#[cfg(feature = "server")]
mod overload;
pub mod sockets;
#[cfg(feature = "server")]
mod stopwatch;
#[cfg(feature = "server")]
mod tcp;
#[cfg(feature = "server")]
pub mod transport;
#[cfg(feature = "server")]
mod udp;
