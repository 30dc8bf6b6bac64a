//! Where messages come from and go to. The engine names transports and addresses; the shell owns
//! the sockets behind them.

use std::net::SocketAddr;

use bytes::Bytes;

/// A SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    /// TLS over TCP (RFC 3261 §26, RFC 5630): framed like TCP.
    Tls,
}

impl Transport {
    /// RFC 3261 §18: reliable transports need no retransmission timers and Timer J = 0.
    pub const fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }

    /// The token used in a Via header (`SIP/2.0/UDP`).
    pub const fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// The `transport` parameter of a URI of ours reached over it (none for UDP).
    pub const fn uri_param(self) -> &'static str {
        match self {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
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
    /// It came over a TLS connection whose client certificate the configured CA verified (a
    /// trusted core proxy, RFC 3325's Trust Domain by certificate rather than address).
    pub verified_peer: bool,
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

/// An address in its `Display` form (`192.0.2.1`, `192.0.2.1:5060`, `[2001:db8::1]:5060`),
/// written into a stack buffer: IPv4, the usual case, without the formatting machinery, which
/// cost more than the rest of a NOTIFY's head.
pub struct AddrText {
    buf: [u8; 64],
    len: usize,
}

impl AddrText {
    /// An IP address.
    pub fn ip(ip: std::net::IpAddr) -> AddrText {
        let mut t = AddrText {
            buf: [0; 64],
            len: 0,
        };
        match ip {
            std::net::IpAddr::V4(v4) => t.push_v4(v4),
            std::net::IpAddr::V6(_) => t.push_display(ip),
        }
        t
    }

    /// A socket address.
    pub fn socket(a: SocketAddr) -> AddrText {
        match a {
            SocketAddr::V4(v4) => {
                let mut t = AddrText::ip(std::net::IpAddr::V4(*v4.ip()));
                t.push(b":");
                t.push(itoa::Buffer::new().format(v4.port()).as_bytes());
                t
            }
            SocketAddr::V6(_) => {
                let mut t = AddrText {
                    buf: [0; 64],
                    len: 0,
                };
                t.push_display(a);
                t
            }
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn as_str(&self) -> &str {
        // only ASCII digits, dots, colons, brackets and hex digits were written
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }

    fn push_v4(&mut self, v4: std::net::Ipv4Addr) {
        for (i, octet) in v4.octets().into_iter().enumerate() {
            if i > 0 {
                self.push(b".");
            }
            // decimal, no leading zeros
            if octet >= 100 {
                self.push(&[b'0' + octet / 100]);
            }
            if octet >= 10 {
                self.push(&[b'0' + octet / 10 % 10]);
            }
            self.push(&[b'0' + octet % 10]);
        }
    }

    fn push(&mut self, s: &[u8]) {
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    fn push_display(&mut self, d: impl std::fmt::Display) {
        use std::io::Write;
        let mut w = &mut self.buf[self.len..];
        let room = w.len();
        // an IPv6 socket address with a scope id is at most 58 bytes: it fits
        let _ = write!(w, "{d}");
        self.len += room - w.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_their_display_form() {
        for a in [
            "0.0.0.0:0",
            "127.0.0.1:5060",
            "255.255.255.255:65535",
            "10.20.3.4:80",
            "192.0.2.7:5060",
            "[::ffff:1.2.3.4]:5060",
            "[::1]:5060",
            "[2001:db8::1%7]:65535",
            "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535",
        ] {
            let a: SocketAddr = a.parse().unwrap();
            assert_eq!(AddrText::socket(a).as_str(), a.to_string());
            assert_eq!(AddrText::ip(a.ip()).as_str(), a.ip().to_string());
        }
    }
}
