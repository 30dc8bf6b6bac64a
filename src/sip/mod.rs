//! SIP transport: the mio event loop that moves bytes between sockets and the engine.

pub mod coalesce;
pub mod datagrams;
pub mod sockets;
#[cfg(feature = "server")]
pub mod transport;
