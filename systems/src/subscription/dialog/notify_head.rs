//! The head of a NOTIFY in a dialog (RFC 6665 §4.2.2, RFC 3856 §6.5), written from its parts by
//! name. The body is appended by the sender, shared between all watchers of one view.

use bytes::Bytes;

use crate::net::{AddrText, Dest};
use crate::sip::response::{SERVER, push_header};

use super::record::Routes;
use super::route::Target;

/// What a NOTIFY says about the subscription.
#[derive(Debug, Clone, Copy)]
pub enum SubscriptionStateHeader {
    Active { expires: u64 },
    Pending { expires: u64 },
    Terminated { reason: Option<&'static str> },
}

/// What the sender gives for one NOTIFY (the dialog gives the rest).
#[derive(Debug, Clone, Copy)]
pub struct NotifyParts<'a> {
    /// The URI of the subscription's source ([`crate::subscription::SourceUri`]), as given to
    /// [`super::Dialog::new`].
    pub source_uri: Option<&'a str>,
    /// Where it goes (from [`super::Dialog::dest`]): Via and Contact name our address there.
    pub dest: &'a Dest,
    /// Our tag, for From.
    pub local_tag: &'a str,
    /// The branch of the Via.
    pub branch: &'a str,
    /// The event package.
    pub event: &'a str,
    /// An option tag for `Require` (RFC 4662 §4.4: `eventlist` on list NOTIFYs).
    pub require: Option<&'a str>,
    pub state: SubscriptionStateHeader,
    /// Written when the body is not empty.
    pub content_type: &'a str,
    pub body_len: usize,
}

/// NOTIFY From without our tag.
#[derive(Debug, Clone, Copy)]
pub enum LocalPart<'a> {
    /// The source's URI, in angle brackets.
    Source(&'a str),
    /// The SUBSCRIBE's To as written.
    Stored(&'a str),
}

/// What the dialog gives for its next NOTIFY.
#[derive(Debug, Clone, Copy)]
pub struct DialogFields<'a> {
    /// Request-URI: the remote target.
    pub target: Target<'a>,
    /// Route headers, in order.
    pub route_set: Routes<'a>,
    pub local: LocalPart<'a>,
    /// To: the SUBSCRIBE's From.
    pub remote: &'a str,
    pub call_id: &'a str,
    pub cseq: u32,
    /// `id` of the Event header; empty for none.
    pub event_id: &'a str,
}

impl DialogFields<'_> {
    /// Bytes of the strings written from the dialog.
    fn len(&self) -> usize {
        let local = match self.local {
            LocalPart::Source(s) | LocalPart::Stored(s) => s.len(),
        };
        self.target.len()
            + self.route_set.text_len()
            + local
            + self.remote.len()
            + self.call_id.len()
            + self.event_id.len()
    }
}

/// The head of the NOTIFY of `d` and `n`.
pub fn write(d: &DialogFields<'_>, n: &NotifyParts<'_>) -> Bytes {
    let mut b = Vec::with_capacity(512 + d.len());
    let our_addr = AddrText::socket(n.dest.local);
    b.extend_from_slice(b"NOTIFY ");
    d.target.write(&mut b);
    b.extend_from_slice(b" SIP/2.0\r\nVia: SIP/2.0/");
    b.extend_from_slice(n.dest.transport.via_token().as_bytes());
    b.push(b' ');
    b.extend_from_slice(our_addr.as_bytes());
    b.extend_from_slice(b";branch=");
    b.extend_from_slice(n.branch.as_bytes());
    b.extend_from_slice(b";rport\r\nMax-Forwards: 70\r\n");
    for r in d.route_set {
        push_header(&mut b, "Route", r);
    }
    b.extend_from_slice(b"From: ");
    match d.local {
        LocalPart::Source(uri) => {
            b.push(b'<');
            b.extend_from_slice(uri.as_bytes());
            b.push(b'>');
        }
        LocalPart::Stored(local) => b.extend_from_slice(local.as_bytes()),
    }
    b.extend_from_slice(b";tag=");
    b.extend_from_slice(n.local_tag.as_bytes());
    b.extend_from_slice(b"\r\n");
    push_header(&mut b, "To", d.remote);
    push_header(&mut b, "Call-ID", d.call_id);
    b.extend_from_slice(b"CSeq: ");
    b.extend_from_slice(itoa::Buffer::new().format(d.cseq).as_bytes());
    b.extend_from_slice(b" NOTIFY\r\nContact: <sip:");
    b.extend_from_slice(our_addr.as_bytes());
    b.extend_from_slice(n.dest.transport.uri_param().as_bytes());
    b.extend_from_slice(b">\r\nEvent: ");
    b.extend_from_slice(n.event.as_bytes());
    if !d.event_id.is_empty() {
        b.extend_from_slice(b";id=");
        b.extend_from_slice(d.event_id.as_bytes());
    }
    b.extend_from_slice(b"\r\nSubscription-State: ");
    match n.state {
        SubscriptionStateHeader::Active { expires } => {
            b.extend_from_slice(b"active;expires=");
            b.extend_from_slice(itoa::Buffer::new().format(expires).as_bytes());
        }
        SubscriptionStateHeader::Pending { expires } => {
            b.extend_from_slice(b"pending;expires=");
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
    if let Some(tag) = n.require {
        push_header(&mut b, "Require", tag);
    }
    push_header(&mut b, "User-Agent", SERVER);
    if n.body_len > 0 {
        push_header(&mut b, "Content-Type", n.content_type);
    }
    b.extend_from_slice(b"Content-Length: ");
    b.extend_from_slice(itoa::Buffer::new().format(n.body_len).as_bytes());
    b.extend_from_slice(b"\r\n\r\n");
    Bytes::from(b)
}
