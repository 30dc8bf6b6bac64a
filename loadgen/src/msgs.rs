//! Pre-formatted request templates. The constant parts of every message (Via prefix per local
//! socket, Contact suffix, domain, name space) are formatted once; each request is then written
//! by appending slices and integers (itoa) into a reused buffer, without allocating.

use std::net::SocketAddr;

/// The token loadgen puts in a published PIDF and reads back from NOTIFY bodies:
/// `<note>lg SEQ SENDTIME_NS</note>`.
pub const TOKEN_OPEN: &[u8] = b"<note>lg ";

/// Branch prefix of our Via headers (RFC 3261 magic cookie + "-lg").
pub const BRANCH_PREFIX: &[u8] = b"z9hG4bK-lg";

/// Constant parts of the requests of one run.
pub struct Templates {
    /// Distinguishes runs (and ramp steps) so late messages of an earlier run are not taken
    /// for this one's.
    pub run_id: u32,
    domain: Vec<u8>,
    /// Prefix of user parts, e.g. `r3` for ramp step 3 (`sip:r3p17@example.com`).
    ns: Vec<u8>,
    /// Per local socket: `Via: SIP/2.0/UDP 127.0.0.1:PORT;rport;branch=z9hG4bK-lg` (TCP over
    /// TCP).
    via: Vec<Vec<u8>>,
    /// Per local socket: `@127.0.0.1:PORT>` closing a Contact (`;transport=tcp` before `>` over
    /// TCP).
    contact: Vec<Vec<u8>>,
}

fn num(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

impl Templates {
    /// Templates for local sockets `locals` (TCP connections when `tcp`), user parts prefixed by
    /// `ns`.
    pub fn new(run_id: u32, domain: &str, ns: &str, locals: &[SocketAddr], tcp: bool) -> Templates {
        let (proto, uri_param) = if tcp {
            ("TCP", ";transport=tcp")
        } else {
            ("UDP", "")
        };
        Templates {
            run_id,
            domain: domain.as_bytes().to_vec(),
            ns: ns.as_bytes().to_vec(),
            via: locals
                .iter()
                .map(|a| format!("Via: SIP/2.0/{proto} {a};rport;branch=z9hG4bK-lg").into_bytes())
                .collect(),
            contact: locals
                .iter()
                .map(|a| format!("@{a}{uri_param}>").into_bytes())
                .collect(),
        }
    }

    /// `sip:<ns><kind><idx>@<domain>`, idx counted from 1.
    pub fn uri(&self, out: &mut Vec<u8>, kind: u8, idx: u32) {
        out.extend_from_slice(b"sip:");
        self.user(out, kind, idx);
        out.push(b'@');
        out.extend_from_slice(&self.domain);
    }

    /// The user part of [`Templates::uri`], `<ns><kind><idx>`: also the digest username.
    pub fn user(&self, out: &mut Vec<u8>, kind: u8, idx: u32) {
        out.extend_from_slice(&self.ns);
        out.push(kind);
        num(out, idx + 1);
    }

    fn via(&self, out: &mut Vec<u8>, sock: usize, slot: u32, generation: u32) {
        out.extend_from_slice(&self.via[sock]);
        num(out, self.run_id);
        out.push(b'.');
        num(out, slot);
        out.push(b'.');
        num(out, generation);
        out.extend_from_slice(b"\r\nMax-Forwards: 70\r\n");
    }

    /// The PIDF body of presentity `p` carrying token (`seq`, `t_ns`).
    pub fn pidf(&self, out: &mut Vec<u8>, p: u32, seq: u32, t_ns: u64) {
        out.extend_from_slice(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"",
        );
        self.uri(out, b'p', p);
        out.extend_from_slice(b"\"><tuple id=\"lg\"><status><basic>");
        out.extend_from_slice(if seq % 2 == 1 { b"open" } else { b"closed" });
        out.extend_from_slice(b"</basic></status>");
        out.extend_from_slice(TOKEN_OPEN);
        num(out, seq);
        out.push(b' ');
        num(out, t_ns);
        out.extend_from_slice(b"</note></tuple></presence>\n");
    }

    /// A PUBLISH for presentity `p` (RFC 3903): initial (no `etag`, with body), modify (`etag`
    /// and body) or refresh/remove (`etag`, no body). `body` is scratch space; `extra` is
    /// header lines (each ending in CRLF, e.g. `Authorization`) put before `Content-Length`.
    #[allow(clippy::too_many_arguments)]
    pub fn publish(
        &self,
        out: &mut Vec<u8>,
        body: &mut Vec<u8>,
        sock: usize,
        (slot, generation): (u32, u32),
        p: u32,
        cseq: u32,
        expires: u32,
        etag: &[u8],
        token: Option<(u32, u64)>,
        extra: &[u8],
    ) {
        body.clear();
        if let Some((seq, t)) = token {
            self.pidf(body, p, seq, t);
        }
        out.extend_from_slice(b"PUBLISH ");
        self.uri(out, b'p', p);
        out.extend_from_slice(b" SIP/2.0\r\n");
        self.via(out, sock, slot, generation);
        out.extend_from_slice(b"From: <");
        self.uri(out, b'p', p);
        out.extend_from_slice(b">;tag=lgp");
        num(out, p + 1);
        out.extend_from_slice(b"\r\nTo: <");
        self.uri(out, b'p', p);
        out.extend_from_slice(b">\r\nCall-ID: lgp");
        num(out, p + 1);
        out.push(b'.');
        num(out, self.run_id);
        out.extend_from_slice(b"@lg\r\nCSeq: ");
        num(out, cseq);
        out.extend_from_slice(b" PUBLISH\r\nEvent: presence\r\nExpires: ");
        num(out, expires);
        out.extend_from_slice(b"\r\n");
        if !etag.is_empty() {
            out.extend_from_slice(b"SIP-If-Match: ");
            out.extend_from_slice(etag);
            out.extend_from_slice(b"\r\n");
        }
        if !body.is_empty() {
            out.extend_from_slice(b"Content-Type: application/pidf+xml\r\n");
        }
        out.extend_from_slice(extra);
        out.extend_from_slice(b"Content-Length: ");
        num(out, body.len());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body);
    }

    /// Watcher `w`'s own resource list (a `<service>` URI, `crate::lists`):
    /// `sip:<ns>w<w+1>-list@<domain>`.
    pub fn list_uri(&self, out: &mut Vec<u8>, w: u32) {
        out.extend_from_slice(b"sip:");
        out.extend_from_slice(&self.ns);
        out.push(b'w');
        num(out, w + 1);
        out.extend_from_slice(b"-list@");
        out.extend_from_slice(&self.domain);
    }

    /// The Request-URI (and To) of watcher `w`'s SUBSCRIBE to `what`.
    pub fn watched(&self, out: &mut Vec<u8>, w: u32, what: Watched) {
        match what {
            Watched::Presentity(p) => self.uri(out, b'p', p),
            Watched::OwnList => self.list_uri(out, w),
        }
    }

    /// A SUBSCRIBE (RFC 6665, RFC 3856) from watcher `w` (dialog generation `wgen`) to a
    /// presentity or to its own list (RFC 4662: `Supported: eventlist` and an Accept of the
    /// multipart RLMI body); in-dialog when `to_tag` is not empty. `extra` as for
    /// [`Templates::publish`].
    #[allow(clippy::too_many_arguments)]
    pub fn subscribe(
        &self,
        out: &mut Vec<u8>,
        sock: usize,
        (slot, generation): (u32, u32),
        w: u32,
        wgen: u32,
        what: Watched,
        cseq: u32,
        expires: u32,
        to_tag: &[u8],
        extra: &[u8],
    ) {
        out.extend_from_slice(b"SUBSCRIBE ");
        self.watched(out, w, what);
        out.extend_from_slice(b" SIP/2.0\r\n");
        self.via(out, sock, slot, generation);
        out.extend_from_slice(b"From: <");
        self.uri(out, b'w', w);
        out.extend_from_slice(b">;tag=lgw");
        num(out, wgen);
        out.extend_from_slice(b"\r\nTo: <");
        self.watched(out, w, what);
        out.push(b'>');
        if !to_tag.is_empty() {
            out.extend_from_slice(b";tag=");
            out.extend_from_slice(to_tag);
        }
        out.extend_from_slice(b"\r\nCall-ID: ");
        self.call_id(out, w, wgen);
        out.extend_from_slice(b"\r\nCSeq: ");
        num(out, cseq);
        out.extend_from_slice(b" SUBSCRIBE\r\nContact: <sip:");
        out.extend_from_slice(&self.ns);
        out.push(b'w');
        num(out, w + 1);
        out.extend_from_slice(&self.contact[sock]);
        out.extend_from_slice(match what {
            Watched::Presentity(_) => b"\r\nEvent: presence\r\nAccept: application/pidf+xml".as_slice(),
            Watched::OwnList => b"\r\nEvent: presence\r\nSupported: eventlist\r\nAccept: multipart/related, application/rlmi+xml, application/pidf+xml",
        });
        out.extend_from_slice(b"\r\nExpires: ");
        num(out, expires);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(extra);
        out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    }

    /// Call-ID of watcher `w`'s dialog generation `wgen`: `lgw<w>.<wgen>.<run>@lg`.
    pub fn call_id(&self, out: &mut Vec<u8>, w: u32, wgen: u32) {
        out.extend_from_slice(b"lgw");
        num(out, w + 1);
        out.push(b'.');
        num(out, wgen);
        out.push(b'.');
        num(out, self.run_id);
        out.extend_from_slice(b"@lg");
    }

    /// Read a watcher Call-ID back: (watcher index, generation) when it is one of this run's.
    pub fn parse_call_id(&self, cid: &[u8]) -> Option<(u32, u32)> {
        use crate::sipmsg::parse_u64;
        let rest = cid.strip_prefix(b"lgw")?;
        let (w, n) = parse_u64(rest);
        let rest = rest.get(n..)?.strip_prefix(b".")?;
        let (g, n2) = parse_u64(rest);
        let rest = rest.get(n2..)?.strip_prefix(b".")?;
        let (run, n3) = parse_u64(rest);
        if n == 0 || n2 == 0 || n3 == 0 || w == 0 || run != self.run_id as u64 {
            return None;
        }
        Some(((w - 1) as u32, g as u32))
    }

    /// Read a presentity URI back (a member part's `entity`): its index when it is
    /// `sip:<ns>p<i>@<domain>`.
    pub fn parse_presentity(&self, uri: &[u8]) -> Option<u32> {
        use crate::sipmsg::parse_u64;
        let rest = uri
            .strip_prefix(b"sip:")?
            .strip_prefix(self.ns.as_slice())?;
        let rest = rest.strip_prefix(b"p")?;
        let (i, n) = parse_u64(rest);
        let dom = rest.get(n..)?.strip_prefix(b"@")?;
        (n > 0 && i > 0 && i <= u32::MAX as u64 && dom == self.domain.as_slice())
            .then(|| (i - 1) as u32)
    }

    /// Read a branch back: (slot, generation) when it is one of this run's.
    pub fn parse_branch(&self, branch: &[u8]) -> Option<(u32, u32)> {
        use crate::sipmsg::parse_u64;
        let rest = branch.strip_prefix(BRANCH_PREFIX)?;
        let (run, n) = parse_u64(rest);
        let rest = rest.get(n..)?.strip_prefix(b".")?;
        let (slot, n2) = parse_u64(rest);
        let rest = rest.get(n2..)?.strip_prefix(b".")?;
        let (generation, n3) = parse_u64(rest);
        if n == 0 || n2 == 0 || n3 == 0 || run != self.run_id as u64 {
            return None;
        }
        Some((slot as u32, generation as u32))
    }
}

/// What a SUBSCRIBE watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    Presentity(u32),
    /// The watcher's own resource list (`[lists]`).
    OwnList,
}

/// Read the token from a NOTIFY body: (seq, send time ns).
pub fn read_token(body: &[u8]) -> Option<(u32, u64)> {
    use crate::sipmsg::{find_bytes, parse_u64};
    let at = find_bytes(body, TOKEN_OPEN)? + TOKEN_OPEN.len();
    let (seq, n) = parse_u64(&body[at..]);
    let rest = body.get(at + n..)?.strip_prefix(b" ")?;
    let (t, n2) = parse_u64(rest);
    if n == 0 || n2 == 0 {
        return None;
    }
    Some((seq as u32, t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sipmsg;

    fn templates() -> Templates {
        Templates::new(
            42,
            "example.com",
            "r1",
            &["127.0.0.1:4000".parse().unwrap()],
            false,
        )
    }

    #[test]
    fn pidf_body_is_valid_and_carries_the_token() {
        let t = templates();
        let mut b = Vec::new();
        t.pidf(&mut b, 6, 3, 123_456_789);
        let doc = presenced_systems::formats::pidf::parse(&b).expect("valid PIDF");
        assert_eq!(doc.entity, "sip:r1p7@example.com");
        assert_eq!(read_token(&b), Some((3, 123_456_789)));
        // and the composed view the server will send keeps it
        let view = presenced_systems::formats::pidf::compose("sip:r1p7@example.com", &[&doc]);
        assert_eq!(read_token(&view), Some((3, 123_456_789)));
    }

    #[test]
    fn publish_and_subscribe_parse_with_both_readers() {
        let t = templates();
        let (mut out, mut body) = (Vec::new(), Vec::new());
        t.publish(
            &mut out,
            &mut body,
            0,
            (5, 9),
            0,
            2,
            3600,
            b"e1",
            Some((1, 77)),
            b"X-Extra: 1\r\n",
        );
        let m = sipmsg::parse(&out).unwrap();
        assert_eq!(m.start, sipmsg::Start::Request(b"PUBLISH"));
        assert_eq!(t.parse_branch(m.branch), Some((5, 9)));
        assert_eq!(m.body.len(), body.len());
        let s = presenced_systems::sip::scan::scan(&out, true).unwrap();
        assert!(s.fault.is_none());
        assert_eq!(s.header("SIP-If-Match"), Some("e1"));
        assert_eq!(s.header("X-Extra"), Some("1"));
        assert_eq!(s.header("Content-Length").unwrap(), body.len().to_string());

        out.clear();
        t.subscribe(
            &mut out,
            0,
            (1, 1),
            9,
            4,
            Watched::Presentity(0),
            1,
            600,
            b"",
            b"",
        );
        let m = sipmsg::parse(&out).unwrap();
        assert_eq!(t.parse_call_id(m.call_id), Some((9, 4)));
        assert!(m.to_tag.is_empty());
        let s = presenced_systems::sip::scan::scan(&out, true).unwrap();
        assert_eq!(s.header("Contact"), Some("<sip:r1w10@127.0.0.1:4000>"));
        assert!(
            Templates::new(43, "example.com", "r1", &[], false)
                .parse_call_id(m.call_id)
                .is_none(),
            "another run's Call-ID"
        );

        // a list SUBSCRIBE: to the watcher's own list, asking for RLMI (RFC 4662 §4.1)
        out.clear();
        t.subscribe(
            &mut out,
            0,
            (2, 1),
            6,
            1,
            Watched::OwnList,
            1,
            600,
            b"",
            b"X-Extra: 2\r\n",
        );
        let s = presenced_systems::sip::scan::scan(&out, true).unwrap();
        assert!(s.fault.is_none());
        assert!(
            String::from_utf8_lossy(&out)
                .starts_with("SUBSCRIBE sip:r1w7-list@example.com SIP/2.0\r\n")
        );
        assert_eq!(s.header("To"), Some("<sip:r1w7-list@example.com>"));
        assert_eq!(s.header("From"), Some("<sip:r1w7@example.com>;tag=lgw1"));
        assert_eq!(s.header("Supported"), Some("eventlist"));
        assert_eq!(s.header("X-Extra"), Some("2"));
        assert!(s.header("Accept").unwrap().contains("application/rlmi+xml"));
        assert_eq!(t.parse_presentity(b"sip:r1p12@example.com"), Some(11));
        assert_eq!(t.parse_presentity(b"sip:r1p12@example.org"), None);
        assert_eq!(t.parse_presentity(b"sip:p12@example.com"), None);
        assert_eq!(t.parse_presentity(b"sip:r1p@example.com"), None);
    }
}
