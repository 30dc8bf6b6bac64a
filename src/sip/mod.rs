//! SIP transport: the mio event loop that moves bytes between sockets and the engine.

pub mod coalesce;
pub mod datagrams;
pub mod engine_link;
mod overload;
pub mod sockets;
mod stopwatch;
mod tcp;
pub mod transport;
mod udp;
