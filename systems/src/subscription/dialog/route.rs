//! Where a dialog's requests go (RFC 3261 §12.2.1.1, §18.2.2): the next hop, chosen from the
//! route set and the remote target when the dialog is made and kept inline in eight bytes; and
//! the remote target, stored without what it shares with the remote URI and the next hop.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use crate::net::{AddrText, Dest, Source, Transport};
use crate::sip::fields::{params, uri_of};
use crate::sip::uri::Uri;

use super::record::{Extras, StoredTarget};
use super::store::DialogStore;

/// Where NOTIFYs go, in 8 bytes: an IPv4 peer inline and our local address as an index into
/// the store's local addresses. What does not fit (an IPv6 peer, a TCP connection, a local
/// address past the table) is kept in the dialog's record ([`Extras`]) and read back when a
/// NOTIFY is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    ip: [u8; 4],
    port: u16,
    local: u8,
    flags: u8,
}

impl Hop {
    const TCP: u8 = 1;
    /// TLS (with [`Hop::TCP`] clear).
    const TLS: u8 = 8;
    /// The record's extras override the inline fields.
    const EXTRAS: u8 = 2;
    /// The local part is `<` + the source's URI + `>` and is not in the record (see
    /// [`crate::subscription::SourceUri`]: a million dialogs to a hundred thousand presentities
    /// would otherwise hold ten copies of each presentity's URI). Not routing, but this byte has
    /// room for it.
    const LOCAL_FROM_SOURCE: u8 = 4;

    /// No hop yet (a dialog not made yet).
    pub const NONE: Hop = Hop {
        ip: [0; 4],
        port: 0,
        local: 0,
        flags: 0,
    };

    /// The hop to `dest`: inline what fits, the rest as extras for the record.
    pub fn new(dest: Dest, store: &mut DialogStore) -> (Hop, Extras) {
        let mut extras = Extras::default();
        let mut hop = Hop {
            port: dest.addr.port(),
            flags: match dest.transport {
                Transport::Udp => 0,
                Transport::Tcp => Hop::TCP,
                Transport::Tls => Hop::TLS,
            },
            ..Hop::NONE
        };
        match dest.addr {
            SocketAddr::V4(v4) => hop.ip = v4.ip().octets(),
            SocketAddr::V6(_) => extras.peer = Some(dest.addr),
        }
        match store.intern(dest.local) {
            Some(i) => hop.local = i,
            None => extras.local = Some(dest.local),
        }
        extras.conn = dest.conn;
        if !extras.is_empty() {
            hop.flags |= Hop::EXTRAS;
        }
        (hop, extras)
    }

    /// The peer address held inline, when the extras do not override it.
    pub fn inline_addr(&self) -> Option<SocketAddrV4> {
        (!self.has_extras()).then(|| SocketAddrV4::new(Ipv4Addr::from(self.ip), self.port))
    }

    /// True when part of the hop is in the record's [`Extras`].
    pub fn has_extras(&self) -> bool {
        self.flags & Hop::EXTRAS != 0
    }

    /// True when the dialog's local part is rebuilt from the source's URI.
    pub fn local_from_source(&self) -> bool {
        self.flags & Hop::LOCAL_FROM_SOURCE != 0
    }

    /// Mark the local part as rebuilt from the source's URI.
    pub fn set_local_from_source(&mut self) {
        self.flags |= Hop::LOCAL_FROM_SOURCE;
    }

    /// Where NOTIFYs go, given the record's `extras` (read only when [`Hop::has_extras`]).
    pub fn dest(&self, extras: Extras, store: &DialogStore) -> Dest {
        Dest {
            transport: if self.flags & Hop::TCP != 0 {
                Transport::Tcp
            } else if self.flags & Hop::TLS != 0 {
                Transport::Tls
            } else {
                Transport::Udp
            },
            addr: extras.peer.unwrap_or(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(self.ip)),
                self.port,
            )),
            local: extras.local.unwrap_or_else(|| store.local(self.local)),
            conn: extras.conn,
        }
    }
}

/// Where requests in a dialog go, without DNS: the first loose route or else the remote target
/// when its host is an IP literal; otherwise (a host name, or `symmetric`) back to where the
/// SUBSCRIBE came from. TCP dialogs reuse the subscriber's connection when it is still open
/// (RFC 3261 §18.2.2; RFC 5626 flows).
pub fn next_hop(remote_target: &str, route_set: &[&str], source: &Source, symmetric: bool) -> Dest {
    let hop = route_set
        .first()
        .map(|r| uri_of(r))
        .unwrap_or(remote_target);
    let parsed = Uri::parse(hop).ok();
    let transport = parsed
        .as_ref()
        .and_then(|u| {
            let after = u.raw.rfind('@').map_or(u.raw.as_str(), |i| &u.raw[i..]);
            let list = after.split_once(';').map_or("", |(_, p)| p);
            params(list)
                .find(|(n, _)| n.eq_ignore_ascii_case("transport"))
                .and_then(|(_, v)| v)
        })
        .map(|t| {
            if t.eq_ignore_ascii_case("tcp") {
                Transport::Tcp
            } else if t.eq_ignore_ascii_case("tls") {
                Transport::Tls
            } else {
                Transport::Udp
            }
        })
        // RFC 5630: a sips: URI is reached over TLS
        .or_else(|| {
            parsed
                .as_ref()
                .filter(|u| {
                    u.raw
                        .get(..5)
                        .is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
                })
                .map(|_| Transport::Tls)
        })
        .unwrap_or(source.transport);
    let literal = parsed.as_ref().and_then(|u| {
        let ip: IpAddr = u.host.parse().ok()?;
        Some(SocketAddr::new(ip, u.port.unwrap_or(5060)))
    });
    let addr = match literal {
        Some(a) if !symmetric => a,
        _ => source.peer,
    };
    let conn = if transport.is_reliable() {
        source.conn
    } else {
        None
    };
    Dest {
        transport,
        addr,
        local: source.local,
        conn,
    }
}

/// Longest prefix of the remote URI a stored target names by its length.
const MAX_SHARED: usize = u8::MAX as usize;

/// The remote target as stored: its prefix shared with the remote URI (`sip:user@` of a
/// Contact and a From) as a length, then the rest unless it is the inline next-hop address.
pub fn stored_target<'a>(
    target: &'a str,
    remote: &str,
    hop: Option<SocketAddrV4>,
) -> StoredTarget<'a> {
    let base = uri_of(remote);
    let mut shared = base
        .bytes()
        .zip(target.bytes())
        .take_while(|(a, b)| a == b)
        .count()
        .min(MAX_SHARED);
    while !target.is_char_boundary(shared) {
        shared -= 1;
    }
    let rest = &target[shared..];
    let is_hop = hop
        .is_some_and(|a| rest.len() <= 21 && rest == AddrText::socket(SocketAddr::V4(a)).as_str());
    match (is_hop, shared) {
        (true, _) => StoredTarget {
            shared: shared as u8,
            hop: true,
            rest: "",
        },
        // one byte of length for two or more of the URI's
        (false, 2..) => StoredTarget {
            shared: shared as u8,
            hop: false,
            rest,
        },
        (false, _) => StoredTarget {
            shared: 0,
            hop: false,
            rest: target,
        },
    }
}

/// A stored remote target in pieces: a prefix of the remote URI, then the next-hop address or
/// the rest as stored.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    prefix: &'a str,
    addr: Option<SocketAddrV4>,
    rest: &'a str,
}

impl<'a> Target<'a> {
    /// The target `stored` in a dialog whose remote part is `remote` and inline next hop `hop`.
    pub fn of(stored: StoredTarget<'a>, remote: &'a str, hop: Option<SocketAddrV4>) -> Self {
        Target {
            prefix: uri_of(remote).get(..stored.shared as usize).unwrap_or(""),
            addr: hop.filter(|_| stored.hop),
            rest: stored.rest,
        }
    }

    /// Bytes of the target, at most (an IPv4 address is up to 21).
    pub fn len(&self) -> usize {
        self.prefix.len() + self.rest.len() + self.addr.map_or(0, |_| 21)
    }

    /// Append the target to `b`.
    pub fn write(&self, b: &mut Vec<u8>) {
        b.extend_from_slice(self.prefix.as_bytes());
        if let Some(a) = self.addr {
            b.extend_from_slice(AddrText::socket(SocketAddr::V4(a)).as_bytes());
        }
        b.extend_from_slice(self.rest.as_bytes());
    }

    /// The target as one string (borrowed when it is stored whole).
    pub fn text(&self) -> Cow<'a, str> {
        match self {
            Target {
                prefix: "",
                addr: None,
                rest,
            } => Cow::Borrowed(rest),
            t => {
                let mut b = Vec::with_capacity(t.len());
                t.write(&mut b);
                String::from_utf8(b).unwrap_or_default().into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(t: Transport) -> Source {
        Source {
            transport: t,
            peer: "10.0.0.9:40000".parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
            conn: None,
            verified_peer: false,
        }
    }

    #[test]
    fn next_hop_rules() {
        let udp = src(Transport::Udp);
        let route = ["<sip:192.0.2.1:5080;lr>"];
        // (remote target, route set, symmetric, where NOTIFYs go)
        let cases: [(&str, &[&str], bool, &str); 4] = [
            ("sip:bob@192.0.2.5:5070", &[], false, "192.0.2.5:5070"),
            ("sip:bob@client.example.com", &[], false, "10.0.0.9:40000"),
            ("sip:bob@192.0.2.5:5070", &route, false, "192.0.2.1:5080"),
            ("sip:bob@192.0.2.5:5070", &[], true, "10.0.0.9:40000"),
        ];
        for (target, routes, symmetric, addr) in cases {
            let d = next_hop(target, routes, &udp, symmetric);
            assert_eq!(d.addr, addr.parse().unwrap(), "{target} {routes:?}");
        }
        let d = next_hop("sip:bob@192.0.2.5:5070;transport=TCP", &[], &udp, false);
        assert_eq!(d.transport, Transport::Tcp);
    }
}
