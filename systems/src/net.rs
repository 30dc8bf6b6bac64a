//! Where messages come from and go to. The engine names transports and addresses; the shell owns
//! the sockets behind them.

use std::net::SocketAddr;

use bytes::Bytes;

/// A SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// RFC 3261 §18: reliable transports need no retransmission timers and Timer J = 0.
    pub const fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }

    /// The token used in a Via header (`SIP/2.0/UDP`).
    pub const fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// Identifies one TCP connection in the shell; stable while the connection lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

/// Where an inbound message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub transport: Transport,
    /// The peer's address (the packet source, RFC 3581's `received`/`rport`).
    pub peer: SocketAddr,
    /// Our address the message arrived on.
    pub local: SocketAddr,
    /// The TCP connection it arrived on.
    pub conn: Option<ConnId>,
}

/// Where an outbound message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dest {
    pub transport: Transport,
    pub addr: SocketAddr,
    /// Our local address to send from (the listener the dialog or transaction used).
    pub local: SocketAddr,
    /// Prefer this TCP connection; the shell falls back to any connection with `addr`, then to a
    /// new one (RFC 3261 §18.2.2).
    pub conn: Option<ConnId>,
}

/// One message or stream chunk handed to the engine.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub source: Source,
    /// One complete SIP message (a datagram, or one framed message from a TCP stream).
    pub bytes: Bytes,
}

/// One message for the shell to send: `head` then `body`. The body is shared by every message
/// that carries the same document (encode once, send many), so it is kept apart from the head.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub dest: Dest,
    pub head: Bytes,
    pub body: Bytes,
}

impl Outbound {
    /// A message whose bytes are all in one buffer.
    pub fn whole(dest: Dest, bytes: Bytes) -> Self {
        Outbound {
            dest,
            head: bytes,
            body: Bytes::new(),
        }
    }

    /// Total size on the wire.
    pub fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
