//! A dialog's record: its strings and what of its next hop does not fit inline, kept in one
//! slot of the [`DialogStore`](super::DialogStore) as a short header then the text.
//!
//! The header is one byte of flags (which optional fields are there), then in this order:
//! the lengths of the call-id, the local part (if [`LOCAL`]) and the remote part; the remote
//! target's shared-prefix length (one byte, if [`SHARED`] or [`HOP`]) and its stored length
//! (unless [`HOP`]); the event id's length (if [`EVENT_ID`]); the peer address (if [`PEER`]), the
//! local address (if [`LOCAL_ADDR`]), the connection id (if [`CONN`]); the number of routes and
//! each one's length (if [`ROUTES`]). Lengths and numbers are LEB128 (one byte below 128, so
//! that a usual dialog's header is four bytes). The text follows: call-id, local part, remote
//! part, stored target, event id, routes, back to back.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::net::ConnId;

/// The local part is stored (else it is rebuilt from the subscription's source URI).
const LOCAL: u8 = 1;
/// The remote target starts with a prefix of the remote URI, not stored again.
const SHARED: u8 = 2;
/// The remote target ends in the inline next-hop address, not stored either.
const HOP: u8 = 4;
const EVENT_ID: u8 = 8;
const PEER: u8 = 16;
const LOCAL_ADDR: u8 = 32;
const CONN: u8 = 64;
const ROUTES: u8 = 128;

/// A dialog's record, to write ([`Record::encode`], with the route set as a slice) or as read
/// ([`Record::decode`], with the route set as [`Routes`]).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a, R> {
    pub call_id: &'a str,
    /// Empty when the local part is rebuilt from the source URI.
    pub local: &'a str,
    pub remote: &'a str,
    pub target: StoredTarget<'a>,
    /// Empty when the `Event` header has no `id`.
    pub event_id: &'a str,
    pub extras: Extras,
    pub route_set: R,
}

/// A remote target as stored: the first `shared` bytes of the remote URI, then the inline
/// next-hop address when `hop` (`ip:port`, the usual Contact of a client on an IP address, whom
/// NOTIFYs are sent to), else `rest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredTarget<'a> {
    pub shared: u8,
    pub hop: bool,
    pub rest: &'a str,
}

/// What of a dialog's next hop does not fit inline (see [`super::route::Hop`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extras {
    /// The peer, when it is not the inline IPv4 address.
    pub peer: Option<SocketAddr>,
    /// Our local address, when it has no index in the store.
    pub local: Option<SocketAddr>,
    pub conn: Option<ConnId>,
}

impl Extras {
    /// True when there is nothing to store.
    pub fn is_empty(&self) -> bool {
        *self == Extras::default()
    }
}

impl Record<'_, &[&str]> {
    /// The record's bytes. Line ends are left out of the strings: they are echoed into header
    /// fields, where one would end the field.
    pub fn encode(&self) -> Vec<u8> {
        let texts = [
            self.call_id,
            self.local,
            self.remote,
            self.target.rest,
            self.event_id,
        ]
        .map(without_line_ends);
        let routes: Vec<Cow<str>> = self
            .route_set
            .iter()
            .map(|r| without_line_ends(r))
            .filter(|r| !r.is_empty())
            .collect();
        let [call_id, local, remote, target, event_id] = &texts;
        let len = texts
            .iter()
            .chain(&routes)
            .map(|t| t.len() + 2)
            .sum::<usize>()
            + 16;
        let mut b = Vec::with_capacity(len);
        let mut flags = 0;
        let mut set = |on: bool, flag: u8| {
            if on {
                flags |= flag;
            }
            on
        };
        let has_local = set(!local.is_empty(), LOCAL);
        let shared = set(self.target.shared > 0 && !self.target.hop, SHARED);
        let hop = set(self.target.hop, HOP);
        let has_event_id = set(!event_id.is_empty(), EVENT_ID);
        set(self.extras.peer.is_some(), PEER);
        set(self.extras.local.is_some(), LOCAL_ADDR);
        set(self.extras.conn.is_some(), CONN);
        set(!routes.is_empty(), ROUTES);
        b.push(flags);
        push_number(&mut b, call_id.len() as u64);
        if has_local {
            push_number(&mut b, local.len() as u64);
        }
        push_number(&mut b, remote.len() as u64);
        if shared || hop {
            b.push(self.target.shared);
        }
        if !hop {
            push_number(&mut b, target.len() as u64);
        }
        if has_event_id {
            push_number(&mut b, event_id.len() as u64);
        }
        for a in [self.extras.peer, self.extras.local].into_iter().flatten() {
            push_addr(&mut b, a);
        }
        if let Some(ConnId(c)) = self.extras.conn {
            push_number(&mut b, c);
        }
        if !routes.is_empty() {
            push_number(&mut b, routes.len() as u64);
            for r in &routes {
                push_number(&mut b, r.len() as u64);
            }
        }
        for t in texts.iter().chain(&routes) {
            b.extend_from_slice(t.as_bytes());
        }
        b
    }
}

impl<'a> Record<'a, Routes<'a>> {
    /// The record in `bytes` (from [`Record::encode`]); empty fields where it is cut short.
    pub fn decode(bytes: &'a [u8]) -> Self {
        let mut h = Reader(bytes);
        let flags = h.byte();
        let has = |flag: u8| flags & flag != 0;
        let call_id = h.number();
        let local = if has(LOCAL) { h.number() } else { 0 };
        let remote = h.number();
        let shared = if has(SHARED | HOP) { h.byte() } else { 0 };
        let target = if has(HOP) { 0 } else { h.number() };
        let event_id = if has(EVENT_ID) { h.number() } else { 0 };
        let extras = Extras {
            peer: has(PEER).then(|| h.addr()),
            local: has(LOCAL_ADDR).then(|| h.addr()),
            conn: has(CONN).then(|| ConnId(h.number())),
        };
        let routes = if has(ROUTES) { h.number() } else { 0 };
        // the route lengths, then the text
        let (lens, text) = {
            let start = h.0;
            for _ in 0..routes {
                h.number();
            }
            start.split_at(start.len() - h.0.len())
        };
        // written from `&str` parts only
        let mut text = std::str::from_utf8(text).unwrap_or("");
        let mut next = |len: u64| {
            let (field, rest) = text.split_at_checked(len as usize).unwrap_or((text, ""));
            text = rest;
            field
        };
        Record {
            call_id: next(call_id),
            local: next(local),
            remote: next(remote),
            target: StoredTarget {
                shared,
                hop: has(HOP),
                rest: next(target),
            },
            event_id: next(event_id),
            extras,
            route_set: Routes {
                lens: Reader(lens),
                count: routes,
                text,
            },
        }
    }
}

/// A record's route set, in order.
#[derive(Debug, Clone, Copy)]
pub struct Routes<'a> {
    lens: Reader<'a>,
    count: u64,
    text: &'a str,
}

impl Routes<'_> {
    /// Bytes of the routes left.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }
}

impl<'a> Iterator for Routes<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.count == 0 {
            return None;
        }
        self.count -= 1;
        let len = self.lens.number() as usize;
        let (route, rest) = self.text.split_at_checked(len).unwrap_or((self.text, ""));
        self.text = rest;
        Some(route)
    }
}

/// `s` without line ends (borrowed when it has none).
pub fn without_line_ends(s: &str) -> Cow<'_, str> {
    if s.contains(['\r', '\n']) {
        s.split(['\r', '\n']).collect::<String>().into()
    } else {
        s.into()
    }
}

/// LEB128: seven bits a byte, low first, the top bit set on all but the last.
fn push_number(b: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        b.push(n as u8 | 0x80);
        n >>= 7;
    }
    b.push(n as u8);
}

/// An address: 4 or 6, the IP, the port (little-endian); for IPv6 the flow label and scope id.
fn push_addr(b: &mut Vec<u8>, a: SocketAddr) {
    match a {
        SocketAddr::V4(v4) => {
            b.push(4);
            b.extend_from_slice(&v4.ip().octets());
            b.extend_from_slice(&v4.port().to_le_bytes());
        }
        SocketAddr::V6(v6) => {
            b.push(6);
            b.extend_from_slice(&v6.ip().octets());
            b.extend_from_slice(&v6.port().to_le_bytes());
            push_number(b, v6.flowinfo().into());
            push_number(b, v6.scope_id().into());
        }
    }
}

/// Reads a record's header; zeros past its end.
#[derive(Debug, Clone, Copy)]
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        for b in &mut out {
            *b = self.byte();
        }
        out
    }

    fn number(&mut self) -> u64 {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte();
            n |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        n
    }

    fn addr(&mut self) -> SocketAddr {
        if self.byte() == 4 {
            let ip = Ipv4Addr::from(self.bytes::<4>());
            SocketAddr::V4(SocketAddrV4::new(ip, u16::from_le_bytes(self.bytes())))
        } else {
            let ip = Ipv6Addr::from(self.bytes::<16>());
            let port = u16::from_le_bytes(self.bytes());
            let flow = self.number() as u32;
            let scope = self.number() as u32;
            SocketAddr::V6(SocketAddrV6::new(ip, port, flow, scope))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_reads_back_by_name() {
        let v6 = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 5062, 7, 3));
        let long = "r".repeat(300);
        let routes = ["<sip:192.0.2.1;lr>", "", long.as_str()];
        let record = Record {
            call_id: "c1@x",
            local: "<sip:p@example.com>",
            remote: "<sip:w@example.com>;tag=9",
            target: StoredTarget {
                shared: 6,
                hop: false,
                rest: "10.0.0.9",
            },
            event_id: "7",
            extras: Extras {
                peer: Some(v6),
                local: Some("127.0.0.1:5060".parse().unwrap()),
                conn: Some(ConnId(u64::MAX)),
            },
            route_set: &routes[..],
        };
        let bytes = record.encode();
        let read = Record::decode(&bytes);
        assert_eq!(read.call_id, record.call_id);
        assert_eq!(read.local, record.local);
        assert_eq!(read.remote, record.remote);
        assert_eq!(read.target, record.target);
        assert_eq!(read.event_id, record.event_id);
        assert_eq!(read.extras, record.extras);
        // an empty route is left out
        let read_routes: Vec<&str> = read.route_set.collect();
        assert_eq!(read_routes, [routes[0], routes[2]]);
    }

    #[test]
    fn a_usual_dialog_has_a_four_byte_header_and_no_line_ends() {
        let record = Record {
            call_id: "c1@x",
            local: "",
            remote: "<sip:w@exam\r\n ple.com>",
            target: StoredTarget {
                shared: 6,
                hop: true,
                rest: "",
            },
            event_id: "",
            extras: Extras::default(),
            route_set: &[][..],
        };
        let bytes = record.encode();
        assert_eq!(bytes.len(), 4 + "c1@x".len() + "<sip:w@exam ple.com>".len());
        let read = Record::decode(&bytes);
        assert_eq!(read.remote, "<sip:w@exam ple.com>");
        assert_eq!((read.local, read.event_id), ("", ""));
        assert_eq!(read.target, record.target);
        assert!(read.extras.is_empty());
        assert_eq!(read.route_set.count(), 0);
    }
}
