//! Writing responses (RFC 3261 §8.2.6): the status line, the echoed Via/From/To/Call-ID/CSeq, our
//! To tag, and where the response goes (§18.2.2 with RFC 3581 `rport`).

use std::net::SocketAddr;

use bytes::Bytes;

use super::fields::{self, TopVia, first_comma_part, split_commas};
use super::headers::{Head, HeaderIndex, Name};
use super::message::Request;
use super::scan::Scan;
use crate::net::{AddrText, Dest, Source};

/// The `Server` header value on everything we answer.
pub const SERVER: &str = concat!("presenced/", env!("CARGO_PKG_VERSION"));

/// The `Server` header line.
const SERVER_LINE: &str = concat!("Server: presenced/", env!("CARGO_PKG_VERSION"), "\r\n");

/// The header values a response copies from its request, read from the request's header
/// index (nothing collected: the Vias are walked when the response is written).
#[derive(Debug, Clone, Copy)]
pub struct Echo<'a> {
    index: &'a HeaderIndex,
    text: &'a str,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub call_id: Option<&'a str>,
    pub cseq: Option<&'a str>,
    /// Whether To carries a tag, when the caller knows already (a parsed request does).
    pub to_tagged: Option<bool>,
    /// Whether the top Via holds one via-parm, when the caller knows already.
    top_alone: Option<bool>,
}

impl<'a> Echo<'a> {
    /// From the first pass of a message (used when the checks rejected it).
    pub fn from_scan(scan: &'a Scan<'_>) -> Self {
        Echo::from_index(&scan.headers, scan.text)
    }

    /// From the header index of a parsed message.
    pub fn from_head(head: &'a Head) -> Self {
        Echo::from_index(head.index(), head.section())
    }

    /// From a parsed request, which found its echoed values at parse time.
    pub fn from_request(req: &'a Request) -> Self {
        let [from, to, call_id, cseq] = req.echoed();
        Echo {
            index: req.head.index(),
            text: req.head.section(),
            from: Some(from),
            to: Some(to),
            call_id: Some(call_id),
            cseq: Some(cseq),
            to_tagged: Some(req.to_tag().is_some()),
            top_alone: Some(req.top_via_alone()),
        }
    }

    fn from_index(index: &'a HeaderIndex, text: &'a str) -> Self {
        Echo {
            index,
            text,
            from: index.get(text, Name::From),
            to: index.get(text, Name::To),
            call_id: index.get(text, Name::CallId),
            cseq: index.get(text, Name::CSeq),
            to_tagged: None,
            top_alone: None,
        }
    }

    /// Every Via value, in order.
    pub fn vias(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        // (one Via, the usual case, without walking the other fields)
        let one = !self.index.repeated(Name::Via);
        let (first, rest) = if one {
            (self.index.get(self.text, Name::Via), None)
        } else {
            (None, Some(self.index.all(self.text, Name::Via)))
        };
        first.into_iter().chain(rest.into_iter().flatten())
    }

    /// The first Via value.
    pub fn top_via(&self) -> Option<&'a str> {
        self.index.get(self.text, Name::Via)
    }

    /// The name of the first missing mandatory header, if any (RFC 3261 §8.1.1).
    pub fn missing(&self) -> Option<&'static str> {
        if self.top_via().is_none() {
            Some("Via")
        } else if self.from.is_none() {
            Some("From")
        } else if self.to.is_none() {
            Some("To")
        } else if self.call_id.is_none() {
            Some("Call-ID")
        } else if self.cseq.is_none() {
            Some("CSeq")
        } else {
            None
        }
    }
}

/// RFC 3261 §18.2.2 and RFC 3581 §4: where a response to a request from `source` goes.
pub fn response_dest(via: &TopVia, source: &Source) -> Dest {
    let addr = if source.transport.is_reliable() || via.rport {
        source.peer
    } else {
        SocketAddr::new(source.peer.ip(), via.port.unwrap_or(5060))
    };
    Dest {
        transport: source.transport,
        addr,
        local: source.local,
        conn: source.conn,
    }
}

/// The top via-parm with `received` (§18.2.1) and a filled `rport` (RFC 3581) added.
fn write_top_via(out: &mut Vec<u8>, parm: &str, via: &TopVia, source: &Source) {
    // ";received=" and the address, and ";rport=" and the port, each written out once
    const RECEIVED: &[u8] = b";received=";
    let ip_text = AddrText::ip(source.peer.ip());
    let mut received = [0u8; RECEIVED.len() + 64];
    received[..RECEIVED.len()].copy_from_slice(RECEIVED);
    received[RECEIVED.len()..][..ip_text.as_bytes().len()].copy_from_slice(ip_text.as_bytes());
    let received = &received[..RECEIVED.len() + ip_text.as_bytes().len()];
    let ip = &received[RECEIVED.len()..];
    let mut rport = *b";rport=\0\0\0\0\0";
    let mut port_buf = itoa::Buffer::new();
    let port = port_buf.format(source.peer.port()).as_bytes();
    rport[7..7 + port.len()].copy_from_slice(port);
    let rport = &rport[..7 + port.len()];

    let b = parm.as_bytes();
    let first_end = fields::find_byte(b, b';').unwrap_or(b.len());
    out.extend_from_slice(fields::trim_end(&parm[..first_end]).as_bytes());
    let mut rport_written = false;
    let mut at = first_end;
    while at < b.len() {
        // a segment after the ';' at `at`
        let start = at + 1;
        let end = start + fields::find_byte(&b[start..], b';').unwrap_or(b.len() - start);
        at = end;
        let seg = &parm[start..end];
        let eq = fields::find_byte(seg.as_bytes(), b'=');
        let name = fields::trim(eq.map_or(seg, |i| &seg[..i]));
        if name.eq_ignore_ascii_case("received") {
            continue;
        }
        if eq.is_none() && name.eq_ignore_ascii_case("rport") {
            out.extend_from_slice(rport);
            rport_written = true;
        } else {
            let t = fields::trim(seg);
            if t.len() == seg.len() {
                // the segment with its ';', as written
                out.extend_from_slice(&b[start - 1..end]);
            } else {
                out.push(b';');
                out.extend_from_slice(t.as_bytes());
            }
        }
    }
    if via.rport && !rport_written {
        // forced rport (sip.force_rport): say where we answered
        out.extend_from_slice(rport);
    }
    if via.rport || via.host().as_bytes() != ip || via.received {
        out.extend_from_slice(received);
    }
}

/// Builds one response into a buffer.
pub struct ResponseWriter {
    buf: Vec<u8>,
    shape: Shape,
}

/// Where a response built by [`ResponseWriter`] puts what a retransmission of its request cannot
/// give back: its status line, the To tag it added, and the rest after the echoed headers. A
/// completed transaction keeps these parts (`transaction::Kept`) without reading the response
/// again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub status_len: usize,
    /// Start and length of the To tag we added (length 0: none added).
    pub tag: (usize, usize),
    /// Start of the rest (the `Server` line and what follows).
    pub rest_at: usize,
}

impl ResponseWriter {
    /// Status line and the echoed headers. `to_tag` is added to To when it has none
    /// (RFC 3261 §8.2.6.2); pass None for 100 Trying.
    pub fn new(
        code: u16,
        reason: &str,
        echo: &Echo<'_>,
        via: &TopVia,
        source: &Source,
        to_tag: Option<&str>,
    ) -> Self {
        let mut buf = Vec::with_capacity(512);
        if (100..1000).contains(&code) {
            let d = |k: u16| b'0' + (code / k % 10) as u8;
            buf.extend_from_slice(&[
                b'S',
                b'I',
                b'P',
                b'/',
                b'2',
                b'.',
                b'0',
                b' ',
                d(100),
                d(10),
                d(1),
                b' ',
            ]);
        } else {
            buf.extend_from_slice(b"SIP/2.0 ");
            buf.extend_from_slice(itoa::Buffer::new().format(code).as_bytes());
            buf.push(b' ');
        }
        // a reason phrase must not break the line
        if memchr::memchr2(b'\r', b'\n', reason.as_bytes()).is_none() {
            buf.extend_from_slice(reason.as_bytes());
        } else {
            buf.extend(
                reason
                    .bytes()
                    .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
            );
        }
        buf.extend_from_slice(b"\r\n");
        let status_len = buf.len();
        let tag = write_echo(&mut buf, echo, via, source, to_tag);
        let rest_at = buf.len();
        buf.extend_from_slice(SERVER_LINE.as_bytes());
        ResponseWriter {
            buf,
            shape: Shape {
                status_len,
                tag,
                rest_at,
            },
        }
    }

    /// Add one header line.
    pub fn header(&mut self, name: &str, value: &str) -> &mut Self {
        push_header(&mut self.buf, name, value);
        self
    }

    /// Add one header line with a numeric value.
    pub fn header_num(&mut self, name: &str, value: u64) -> &mut Self {
        push_header(&mut self.buf, name, itoa::Buffer::new().format(value));
        self
    }

    /// Finish with no body.
    pub fn finish(self) -> Bytes {
        self.finish_with(None)
    }

    /// Finish with no body, with the response's [`Shape`].
    pub fn finish_shaped(self) -> (Bytes, Shape) {
        let shape = self.shape;
        (self.finish_with(None), shape)
    }

    /// Finish with an optional `(content type, body)`.
    pub fn finish_with(mut self, body: Option<(&str, &[u8])>) -> Bytes {
        if let Some((ct, b)) = body {
            push_header(&mut self.buf, "Content-Type", ct);
            push_header(
                &mut self.buf,
                "Content-Length",
                itoa::Buffer::new().format(b.len()),
            );
            self.buf.extend_from_slice(b"\r\n");
            self.buf.extend_from_slice(b);
        } else {
            self.buf.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        }
        Bytes::from(self.buf)
    }
}

/// Append `Name: value\r\n`.
pub fn push_header(buf: &mut Vec<u8>, name: &str, value: &str) {
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b": ");
    buf.extend_from_slice(value.as_bytes());
    buf.extend_from_slice(b"\r\n");
}

/// The echoed headers of a response (RFC 3261 §8.2.6.2): the Vias (the top one with received and
/// rport), From, To with `to_tag` added when it has none, Call-ID and CSeq. Returns where the
/// added tag is in `out` (start, length; length 0 when none was added).
fn write_echo(
    out: &mut Vec<u8>,
    echo: &Echo<'_>,
    via: &TopVia,
    source: &Source,
    to_tag: Option<&str>,
) -> (usize, usize) {
    let mut added = (0, 0);
    for (i, v) in echo.vias().enumerate() {
        out.extend_from_slice(b"Via: ");
        if i == 0 {
            let (first, rest) = match echo.top_alone {
                Some(true) => (fields::trim(v), None),
                _ => first_comma_part(v),
            };
            write_top_via(out, first, via, source);
            for part in rest.into_iter().flat_map(split_commas) {
                out.extend_from_slice(b", ");
                out.extend_from_slice(part.as_bytes());
            }
        } else {
            out.extend_from_slice(v.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    if let Some(f) = echo.from {
        out.extend_from_slice(b"From: ");
        out.extend_from_slice(f.as_bytes());
    }
    // (each line's CRLF goes out with the next line's name)
    let mut open = echo.from.is_some();
    let mut line = |out: &mut Vec<u8>, crlf_name: &[u8]| {
        out.extend_from_slice(if open { crlf_name } else { &crlf_name[2..] });
        open = true;
    };
    if let Some(t) = echo.to {
        line(out, b"\r\nTo: ");
        out.extend_from_slice(t.as_bytes());
        let tagged = || echo.to_tagged.unwrap_or_else(|| fields::tag(t).is_some());
        if let Some(tag) = to_tag.filter(|_| !tagged()) {
            out.extend_from_slice(b";tag=");
            added = (out.len(), tag.len());
            out.extend_from_slice(tag.as_bytes());
        }
    }
    if let Some(c) = echo.call_id {
        line(out, b"\r\nCall-ID: ");
        out.extend_from_slice(c.as_bytes());
    }
    if let Some(c) = echo.cseq {
        line(out, b"\r\nCSeq: ");
        out.extend_from_slice(c.as_bytes());
    }
    if open {
        out.extend_from_slice(b"\r\n");
    }
    added
}

/// The response a completed server transaction resends to a retransmission of `req`: the kept
/// status line, the headers echoed from the retransmission (identical to the original's),
/// the To tag we added, and the kept rest of the response (RFC 3261 §17.2.2).
pub fn replay(req: &Request, status_line: &[u8], to_tag: Option<&str>, rest: &[u8]) -> Bytes {
    let echo = Echo::from_request(req);
    let mut buf = Vec::with_capacity(status_line.len() + req.head.section().len() + rest.len());
    buf.extend_from_slice(status_line);
    write_echo(&mut buf, &echo, &req.via, &req.source, to_tag);
    buf.extend_from_slice(rest);
    Bytes::from(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Transport;
    use crate::sip::fields::parse_via;

    fn src(peer: &str) -> Source {
        Source {
            transport: Transport::Udp,
            peer: peer.parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
            conn: None,
            verified_peer: false,
        }
    }

    #[test]
    fn rport_and_received_are_filled() {
        let v = "SIP/2.0/UDP client.example:5070;branch=z9hG4bK1;rport";
        let via = parse_via(v).unwrap();
        let s = src("192.0.2.7:40000");
        let m = format!(
            "OPTIONS sip:c@d SIP/2.0\r\nVia: {v}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\n\
Call-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n"
        );
        let scan = crate::sip::scan::scan(m.as_bytes(), true).unwrap();
        let echo = Echo::from_scan(&scan);
        let r = ResponseWriter::new(200, "OK", &echo, &via, &s, Some("srv")).finish();
        let text = std::str::from_utf8(&r).unwrap();
        assert!(text.contains("Via: SIP/2.0/UDP client.example:5070;branch=z9hG4bK1;rport=40000;received=192.0.2.7\r\n"), "{text}");
        assert!(text.contains("To: <sip:c@d>;tag=srv\r\n"));
        assert_eq!(
            response_dest(&via, &s).addr,
            "192.0.2.7:40000".parse().unwrap()
        );
    }

    #[test]
    fn without_rport_goes_to_sent_by_port() {
        let via = parse_via("SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK1").unwrap();
        assert_eq!(
            response_dest(&via, &src("192.0.2.7:40000")).addr,
            "192.0.2.7:5070".parse().unwrap()
        );
        let via = parse_via("SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK1").unwrap();
        assert_eq!(
            response_dest(&via, &src("192.0.2.7:40000")).addr,
            "192.0.2.7:5060".parse().unwrap()
        );
    }
}
