//! The byte layout of a subscription's record ([`crate::durable::codec`], version 1):
//!
//! written_ms i64 (wall clock of this write), package label bytes, state u32 (0 active,
//! 1 pending, 2 terminating without a reason, 3 + reason index), expires_ms i64, since_ms i64
//! ([`NO_SINCE`]: not kept), local CSeq u32, remote CSeq u32, our tag bytes, Call-ID,
//! local part (the SUBSCRIBE's To as written), remote part (its From), remote target and
//! event id as bytes, route count u32 and each route as bytes, the next hop (transport u32,
//! then the peer's and our address, each as IP octets bytes, port u32, flow info u32, scope
//! id u32), and the package's own part as bytes.
//!
//! A TCP connection id is not kept: it names nothing in the next process, whose shell finds
//! or opens a connection to the peer's address.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::durable::codec::{Reader, Writer};
use crate::net::{Dest, Transport};
use crate::subscription::{Reason, SubState};

const VERSION: u8 = 1;

/// `since_ms` of a subscription whose start is not kept (nobody reports it).
pub const NO_SINCE: i64 = i64::MIN;

const REASONS: [Reason; 7] = [
    Reason::Deactivated,
    Reason::Probation,
    Reason::Rejected,
    Reason::Timeout,
    Reason::Giveup,
    Reason::Noresource,
    Reason::Invariant,
];

/// One subscription's record, by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<'a> {
    pub written_ms: i64,
    pub package: &'a str,
    pub state: SubState,
    pub expires_ms: i64,
    pub since_ms: i64,
    pub local_cseq: u32,
    pub remote_cseq: u32,
    pub tag: &'a str,
    pub call_id: &'a str,
    pub local: &'a str,
    pub remote: &'a str,
    pub remote_target: &'a str,
    pub event_id: &'a str,
    pub route_set: Vec<&'a str>,
    pub dest: Dest,
    pub package_part: &'a [u8],
}

fn state_code(s: SubState) -> u32 {
    match s {
        SubState::Active => 0,
        SubState::Pending => 1,
        SubState::Terminating(None) => 2,
        SubState::Terminating(Some(r)) => {
            3 + REASONS.iter().position(|&x| x == r).unwrap_or(0) as u32
        }
    }
}

fn state_of(code: u32) -> Option<SubState> {
    Some(match code {
        0 => SubState::Active,
        1 => SubState::Pending,
        2 => SubState::Terminating(None),
        n => SubState::Terminating(Some(*REASONS.get(n as usize - 3)?)),
    })
}

fn transport_code(t: Transport) -> u32 {
    match t {
        Transport::Udp => 0,
        Transport::Tcp => 1,
        Transport::Tls => 2,
    }
}

fn transport_of(code: u32) -> Option<Transport> {
    [Transport::Udp, Transport::Tcp, Transport::Tls]
        .get(code as usize)
        .copied()
}

fn put_addr(w: Writer, a: SocketAddr) -> Writer {
    match a {
        SocketAddr::V4(v4) => w
            .bytes(&v4.ip().octets())
            .u32(v4.port().into())
            .u32(0)
            .u32(0),
        SocketAddr::V6(v6) => w
            .bytes(&v6.ip().octets())
            .u32(v6.port().into())
            .u32(v6.flowinfo())
            .u32(v6.scope_id()),
    }
}

fn addr(r: &mut Reader<'_>) -> Option<SocketAddr> {
    let ip = r.bytes()?;
    let port = u16::try_from(r.u32()?).ok()?;
    let (flow, scope) = (r.u32()?, r.u32()?);
    Some(match ip.len() {
        4 => SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::from(<[u8; 4]>::try_from(ip).ok()?),
            port,
        )),
        16 => SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(<[u8; 16]>::try_from(ip).ok()?),
            port,
            flow,
            scope,
        )),
        _ => return None,
    })
}

impl Stored<'_> {
    pub fn encode(&self) -> Vec<u8> {
        let texts = [
            self.package,
            self.tag,
            self.call_id,
            self.local,
            self.remote,
            self.remote_target,
            self.event_id,
        ];
        let len = texts.iter().map(|t| t.len() + 4).sum::<usize>()
            + self.route_set.iter().map(|r| r.len() + 4).sum::<usize>()
            + self.package_part.len()
            + 128;
        let mut w = Writer::new(VERSION, len)
            .i64(self.written_ms)
            .bytes(self.package.as_bytes())
            .u32(state_code(self.state))
            .i64(self.expires_ms)
            .i64(self.since_ms)
            .u32(self.local_cseq)
            .u32(self.remote_cseq);
        for t in [
            self.tag,
            self.call_id,
            self.local,
            self.remote,
            self.remote_target,
            self.event_id,
        ] {
            w = w.bytes(t.as_bytes());
        }
        w = w.u32(self.route_set.len() as u32);
        for r in &self.route_set {
            w = w.bytes(r.as_bytes());
        }
        w = w.u32(transport_code(self.dest.transport));
        w = put_addr(w, self.dest.addr);
        w = put_addr(w, self.dest.local);
        w.bytes(self.package_part).done()
    }
}

impl<'a> Stored<'a> {
    /// The record in `bytes`; None when it does not decode.
    pub fn decode(bytes: &'a [u8]) -> Option<Stored<'a>> {
        let mut r = Reader::new(bytes, VERSION)?;
        let written_ms = r.i64()?;
        let package = r.str()?;
        let state = state_of(r.u32()?)?;
        let (expires_ms, since_ms) = (r.i64()?, r.i64()?);
        let (local_cseq, remote_cseq) = (r.u32()?, r.u32()?);
        let tag = r.str()?;
        let call_id = r.str()?;
        let local = r.str()?;
        let remote = r.str()?;
        let remote_target = r.str()?;
        let event_id = r.str()?;
        let routes = r.u32()?;
        // a count no record of this length could hold is not trusted with an allocation
        let mut route_set = Vec::with_capacity((routes as usize).min(bytes.len() / 4));
        for _ in 0..routes {
            route_set.push(r.str()?);
        }
        let transport = transport_of(r.u32()?)?;
        let dest = Dest {
            transport,
            addr: addr(&mut r)?,
            local: addr(&mut r)?,
            conn: None,
        };
        Some(Stored {
            written_ms,
            package,
            state,
            expires_ms,
            since_ms,
            local_cseq,
            remote_cseq,
            tag,
            call_id,
            local,
            remote,
            remote_target,
            event_id,
            route_set,
            dest,
            package_part: r.bytes()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dest: Dest, state: SubState) -> Stored<'static> {
        Stored {
            written_ms: 1_800_000_000_123,
            package: "presence",
            state,
            expires_ms: 1_800_000_600_000,
            since_ms: NO_SINCE,
            local_cseq: 7,
            remote_cseq: u32::MAX,
            tag: "2a.0badcafe",
            call_id: "c1@x",
            local: "<sip:p@example.com>",
            remote: "\"W\" <sip:w@example.com>;tag=9",
            remote_target: "sip:w@10.0.0.9:5070",
            event_id: "7",
            route_set: vec!["<sip:192.0.2.1;lr>", "<sip:192.0.2.2;lr>"],
            dest,
            package_part: b"\x01alice",
        }
    }

    #[test]
    fn a_subscription_record_reads_back_field_for_field() {
        let v4 = Dest {
            transport: Transport::Udp,
            addr: "10.0.0.9:5070".parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
            conn: None,
        };
        let v6 = Dest {
            transport: Transport::Tls,
            addr: SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 5061, 5, 3)),
            local: "[::1]:5061".parse().unwrap(),
            conn: None,
        };
        let states = [
            SubState::Active,
            SubState::Pending,
            SubState::Terminating(None),
            SubState::Terminating(Some(Reason::Rejected)),
            SubState::Terminating(Some(Reason::Invariant)),
        ];
        for (dest, state) in [v4, v6].into_iter().zip(states.into_iter().cycle()) {
            let s = sample(dest, state);
            assert_eq!(Stored::decode(&s.encode()), Some(s));
        }
        for state in states {
            let s = sample(v4, state);
            assert_eq!(Stored::decode(&s.encode()).unwrap().state, state);
        }
    }

    #[test]
    fn a_connection_id_is_not_kept_and_a_cut_record_does_not_decode() {
        let dest = Dest {
            transport: Transport::Tcp,
            addr: "10.0.0.9:5070".parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
            conn: Some(crate::net::ConnId(42)),
        };
        let bytes = sample(dest, SubState::Active).encode();
        let read = Stored::decode(&bytes).unwrap();
        assert_eq!(read.dest.conn, None);
        assert_eq!(read.dest.addr, dest.addr);
        for cut in 0..bytes.len() {
            assert!(Stored::decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut other = bytes.clone();
        other[0] = VERSION + 1;
        assert!(Stored::decode(&other).is_none(), "another version");
    }
}
