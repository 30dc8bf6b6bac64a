//! The dialog a subscription lives in (RFC 3261 §12, RFC 6665 §4.1.2.1) and the NOTIFY head
//! written from it. A dialog's strings are kept as written, to echo them byte for byte.

use std::net::{IpAddr, SocketAddr};

use bevy_ecs::prelude::Component;
use bytes::Bytes;

use crate::net::{Dest, Source, Transport};
use crate::sip::fields::{params, uri_of};
use crate::sip::response::{SERVER, push_header};
use crate::sip::uri::Uri;

/// A notifier-side dialog. Its strings live in one allocation (memory per subscription is a
/// budget: a dozen `String`s would cost more than the rest of the subscription).
#[derive(Component, Debug)]
pub struct Dialog {
    /// call-id, local tag, local (From), remote (To), remote target, then the route set, each
    /// followed by `\n` (none of them can contain a line end).
    text: Box<str>,
    pub local_cseq: u32,
    pub remote_cseq: u32,
    /// Where NOTIFYs go.
    pub dest: Dest,
}

/// The parts of a dialog, to build one.
pub struct DialogParts<'a> {
    pub call_id: &'a str,
    pub local_tag: &'a str,
    /// NOTIFY From: the SUBSCRIBE's To with our tag.
    pub local: &'a str,
    /// NOTIFY To: the SUBSCRIBE's From, as written.
    pub remote: &'a str,
    /// Request-URI of NOTIFYs: the subscriber's Contact URI.
    pub remote_target: &'a str,
    /// Record-Route of the SUBSCRIBE, in order (the UAS route set, §12.1.1).
    pub route_set: &'a [&'a str],
}

impl Dialog {
    /// A dialog from its parts.
    pub fn new(p: &DialogParts<'_>, remote_cseq: u32, dest: Dest) -> Dialog {
        let mut text = String::with_capacity(
            p.call_id.len()
                + p.local_tag.len()
                + p.local.len()
                + p.remote.len()
                + p.remote_target.len()
                + p.route_set.iter().map(|r| r.len() + 1).sum::<usize>()
                + 5,
        );
        for part in [p.call_id, p.local_tag, p.local, p.remote, p.remote_target]
            .iter()
            .chain(p.route_set)
        {
            text.extend(part.chars().filter(|&c| c != '\n' && c != '\r'));
            text.push('\n');
        }
        Dialog {
            text: text.into_boxed_str(),
            local_cseq: 0,
            remote_cseq,
            dest,
        }
    }

    fn part(&self, n: usize) -> &str {
        self.text.split('\n').nth(n).unwrap_or("")
    }

    pub fn call_id(&self) -> &str {
        self.part(0)
    }
    pub fn local_tag(&self) -> &str {
        self.part(1)
    }
    pub fn local(&self) -> &str {
        self.part(2)
    }
    pub fn remote(&self) -> &str {
        self.part(3)
    }
    pub fn remote_target(&self) -> &str {
        self.part(4)
    }
    /// The route set, in order.
    pub fn route_set(&self) -> impl Iterator<Item = &str> {
        self.text.split('\n').skip(5).filter(|r| !r.is_empty())
    }

    /// Target refresh (RFC 6665 §4.1.2.1): a new remote target.
    pub fn set_remote_target(&mut self, target: &str) {
        let routes: Vec<&str> = self.route_set().collect();
        let rebuilt = Dialog::new(
            &DialogParts {
                call_id: self.call_id(),
                local_tag: self.local_tag(),
                local: self.local(),
                remote: self.remote(),
                remote_target: target,
                route_set: &routes,
            },
            self.remote_cseq,
            self.dest,
        );
        self.text = rebuilt.text;
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
            } else {
                Transport::Udp
            }
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
    let conn = if transport == Transport::Tcp {
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

/// What a NOTIFY says about the subscription.
#[derive(Debug, Clone, Copy)]
pub enum SubscriptionStateHeader {
    Active { expires: u64 },
    Terminated { reason: Option<&'static str> },
}

impl Dialog {
    /// Write the head of the next NOTIFY in this dialog (RFC 6665 §4.2.2, RFC 3856 §6.5); the
    /// body is appended by the sender, shared between all watchers of one view.
    #[allow(clippy::too_many_arguments)]
    pub fn notify_head(
        &mut self,
        branch: &str,
        event: &str,
        event_id: Option<&str>,
        state: SubscriptionStateHeader,
        content_type: &str,
        body_len: usize,
    ) -> Bytes {
        self.local_cseq += 1;
        let mut b = Vec::with_capacity(512 + self.text.len());
        // one pass over the dialog's text
        let mut parts = self.text.split('\n');
        let mut next = || parts.next().unwrap_or("");
        let (call_id, _local_tag, local, remote, remote_target) =
            (next(), next(), next(), next(), next());
        b.extend_from_slice(b"NOTIFY ");
        b.extend_from_slice(remote_target.as_bytes());
        b.extend_from_slice(b" SIP/2.0\r\nVia: SIP/2.0/");
        b.extend_from_slice(self.dest.transport.via_token().as_bytes());
        b.push(b' ');
        write_addr(&mut b, self.dest.local);
        b.extend_from_slice(b";branch=");
        b.extend_from_slice(branch.as_bytes());
        b.extend_from_slice(b";rport\r\nMax-Forwards: 70\r\n");
        for r in self.route_set() {
            push_header(&mut b, "Route", r);
        }
        push_header(&mut b, "From", local);
        push_header(&mut b, "To", remote);
        push_header(&mut b, "Call-ID", call_id);
        b.extend_from_slice(b"CSeq: ");
        b.extend_from_slice(itoa::Buffer::new().format(self.local_cseq).as_bytes());
        b.extend_from_slice(b" NOTIFY\r\nContact: <sip:");
        write_addr(&mut b, self.dest.local);
        if self.dest.transport == Transport::Tcp {
            b.extend_from_slice(b";transport=tcp");
        }
        b.extend_from_slice(b">\r\nEvent: ");
        b.extend_from_slice(event.as_bytes());
        if let Some(id) = event_id {
            b.extend_from_slice(b";id=");
            b.extend_from_slice(id.as_bytes());
        }
        b.extend_from_slice(b"\r\nSubscription-State: ");
        match state {
            SubscriptionStateHeader::Active { expires } => {
                b.extend_from_slice(b"active;expires=");
                b.extend_from_slice(itoa::Buffer::new().format(expires).as_bytes());
            }
            SubscriptionStateHeader::Terminated { reason } => {
                b.extend_from_slice(b"terminated");
                if let Some(r) = reason {
                    b.extend_from_slice(b";reason=");
                    b.extend_from_slice(r.as_bytes());
                }
            }
        }
        b.extend_from_slice(b"\r\n");
        push_header(&mut b, "User-Agent", SERVER);
        if body_len > 0 {
            push_header(&mut b, "Content-Type", content_type);
        }
        b.extend_from_slice(b"Content-Length: ");
        b.extend_from_slice(itoa::Buffer::new().format(body_len).as_bytes());
        b.extend_from_slice(b"\r\n\r\n");
        Bytes::from(b)
    }
}

/// `ip:port`, with brackets for IPv6 (RFC 3261 §25.1 hostport).
pub fn write_addr(b: &mut Vec<u8>, a: SocketAddr) {
    use std::io::Write;
    let _ = write!(b, "{a}");
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
        }
    }

    #[test]
    fn next_hop_rules() {
        let d = next_hop("sip:bob@192.0.2.5:5070", &[], &src(Transport::Udp), false);
        assert_eq!(d.addr, "192.0.2.5:5070".parse().unwrap());
        let d = next_hop(
            "sip:bob@client.example.com",
            &[],
            &src(Transport::Udp),
            false,
        );
        assert_eq!(d.addr, "10.0.0.9:40000".parse().unwrap());
        let d = next_hop(
            "sip:bob@192.0.2.5:5070",
            &["<sip:192.0.2.1:5080;lr>".into()],
            &src(Transport::Udp),
            false,
        );
        assert_eq!(d.addr, "192.0.2.1:5080".parse().unwrap());
        let d = next_hop(
            "sip:bob@192.0.2.5:5070;transport=TCP",
            &[],
            &src(Transport::Udp),
            false,
        );
        assert_eq!(d.transport, Transport::Tcp);
        let d = next_hop("sip:bob@192.0.2.5:5070", &[], &src(Transport::Udp), true);
        assert_eq!(d.addr, "10.0.0.9:40000".parse().unwrap());
    }
}
