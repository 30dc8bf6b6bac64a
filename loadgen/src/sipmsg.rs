//! A zero-allocation reader for the SIP messages loadgen receives (responses to its requests and
//! NOTIFYs) and the writers of the few messages it answers with. Only the fields loadgen needs
//! are picked out; compact header forms (RFC 3261 §7.3.3) are understood. A message this reader
//! rejects is handed to `presenced_systems::sip::scan` for a second opinion in the statistics
//! (see [`describe_unparsed`]).

/// What kind of message: a request (with its method) or a response (with its status code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start<'a> {
    Request(&'a [u8]),
    Response(u16),
}

/// The fields of one received message that loadgen uses, as slices of the datagram.
#[derive(Debug, Clone)]
pub struct Msg<'a> {
    pub start: Start<'a>,
    /// The `branch` parameter of the first Via.
    pub branch: &'a [u8],
    pub call_id: &'a [u8],
    pub cseq: u32,
    pub cseq_method: &'a [u8],
    pub from_tag: &'a [u8],
    pub to_tag: &'a [u8],
    pub etag: &'a [u8],
    pub expires: Option<u32>,
    /// The Subscription-State value (RFC 6665 §8.2.3), empty when absent.
    pub sub_state: &'a [u8],
    /// The Content-Type value, empty when absent.
    pub content_type: &'a [u8],
    /// Header section, from the first header line to the blank line (exclusive).
    pub head: &'a [u8],
    pub body: &'a [u8],
}

/// Why a datagram could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    NoHeaderEnd,
    StartLine,
    MissingHeader,
    BadCseq,
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if *first == b' ' || *first == b'\t' {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if *last == b' ' || *last == b'\t' {
            b = rest;
        } else {
            break;
        }
    }
    b
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let last_start = hay.len() - needle.len();
    let mut i = 0;
    while i <= last_start {
        match hay[i..=last_start].iter().position(|&c| c == first) {
            None => return None,
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

/// Public for the body-token reader: position of `needle` in `hay`.
pub fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    find(hay, needle)
}

/// Parse an unsigned decimal prefix; returns the value and the digits consumed.
pub fn parse_u64(b: &[u8]) -> (u64, usize) {
    let mut v: u64 = 0;
    let mut n = 0;
    for &c in b {
        if c.is_ascii_digit() {
            v = v.wrapping_mul(10).wrapping_add((c - b'0') as u64);
            n += 1;
        } else {
            break;
        }
    }
    (v, n)
}

/// The value of parameter `name` (`;name=value`) in a header value, after any `>`.
fn param<'a>(value: &'a [u8], name: &[u8]) -> &'a [u8] {
    let params = match value.iter().rposition(|&c| c == b'>') {
        Some(p) => &value[p + 1..],
        None => value,
    };
    let mut rest = params;
    while let Some(semi) = rest.iter().position(|&c| c == b';') {
        rest = &rest[semi + 1..];
        let end = rest.iter().position(|&c| c == b';').unwrap_or(rest.len());
        let p = trim(&rest[..end]);
        if p.len() > name.len() && p[..name.len()].eq_ignore_ascii_case(name) {
            let after = trim(&p[name.len()..]);
            if let [b'=', v @ ..] = after {
                return trim(v);
            }
        }
    }
    &[]
}

/// Which header a line names (the ones loadgen reads or echoes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hdr {
    Via,
    From,
    To,
    CallId,
    CSeq,
    ContentLength,
    Expires,
    SipEtag,
    SubState,
    ContentType,
    Other,
}

/// Classify a header name, compact forms included.
pub fn classify(name: &[u8]) -> Hdr {
    if name.len() == 1 {
        return match name[0].to_ascii_lowercase() {
            b'v' => Hdr::Via,
            b'f' => Hdr::From,
            b't' => Hdr::To,
            b'i' => Hdr::CallId,
            b'l' => Hdr::ContentLength,
            b'c' => Hdr::ContentType,
            _ => Hdr::Other,
        };
    }
    const NAMES: [(&[u8], Hdr); 10] = [
        (b"via", Hdr::Via),
        (b"from", Hdr::From),
        (b"to", Hdr::To),
        (b"call-id", Hdr::CallId),
        (b"cseq", Hdr::CSeq),
        (b"content-length", Hdr::ContentLength),
        (b"expires", Hdr::Expires),
        (b"sip-etag", Hdr::SipEtag),
        (b"subscription-state", Hdr::SubState),
        (b"content-type", Hdr::ContentType),
    ];
    for (n, h) in NAMES {
        if name.eq_ignore_ascii_case(n) {
            return h;
        }
    }
    Hdr::Other
}

/// Iterate the header lines of a header section as (kind, name, value, whole line).
pub fn headers(head: &[u8]) -> impl Iterator<Item = (Hdr, &[u8], &[u8], &[u8])> {
    head.split(|&c| c == b'\n').filter_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None;
        }
        let colon = line.iter().position(|&c| c == b':')?;
        let name = trim(&line[..colon]);
        let value = trim(&line[colon + 1..]);
        Some((classify(name), name, value, line))
    })
}

/// Read one datagram.
pub fn parse(buf: &[u8]) -> Result<Msg<'_>, ParseError> {
    // Tolerate leading CRLFs (keep-alives).
    let mut start = 0;
    while start < buf.len() && (buf[start] == b'\r' || buf[start] == b'\n') {
        start += 1;
    }
    let buf = &buf[start..];
    let (head_end, body_start) = match find(buf, b"\r\n\r\n") {
        Some(p) => (p, p + 4),
        None => match find(buf, b"\n\n") {
            Some(p) => (p, p + 2),
            None => return Err(ParseError::NoHeaderEnd),
        },
    };
    let line_end = buf[..head_end]
        .iter()
        .position(|&c| c == b'\n')
        .unwrap_or(head_end);
    let first = buf[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&buf[..line_end]);
    let start = if let Some(rest) = first.strip_prefix(b"SIP/2.0 ") {
        let (code, n) = parse_u64(rest);
        if n != 3 {
            return Err(ParseError::StartLine);
        }
        Start::Response(code as u16)
    } else {
        let sp = first
            .iter()
            .position(|&c| c == b' ')
            .ok_or(ParseError::StartLine)?;
        if !first.ends_with(b" SIP/2.0") {
            return Err(ParseError::StartLine);
        }
        Start::Request(&first[..sp])
    };
    let head = if line_end < head_end {
        &buf[line_end + 1..head_end]
    } else {
        &buf[head_end..head_end]
    };
    let mut m = Msg {
        start,
        branch: &[],
        call_id: &[],
        cseq: 0,
        cseq_method: &[],
        from_tag: &[],
        to_tag: &[],
        etag: &[],
        expires: None,
        sub_state: &[],
        content_type: &[],
        head,
        body: &[],
    };
    let mut seen_via = false;
    let mut content_length: Option<usize> = None;
    let mut have_cseq = false;
    for (h, _, value, _) in headers(head) {
        match h {
            Hdr::Via if !seen_via => {
                seen_via = true;
                // first value of a possibly comma-separated Via
                let first_via = match value.iter().position(|&c| c == b',') {
                    Some(p) => &value[..p],
                    None => value,
                };
                m.branch = param(first_via, b"branch");
            }
            Hdr::From => m.from_tag = param(value, b"tag"),
            Hdr::To => m.to_tag = param(value, b"tag"),
            Hdr::CallId => m.call_id = value,
            Hdr::CSeq => {
                let (n, digits) = parse_u64(value);
                if digits == 0 {
                    return Err(ParseError::BadCseq);
                }
                m.cseq = n as u32;
                m.cseq_method = trim(&value[digits..]);
                have_cseq = true;
            }
            Hdr::ContentLength => {
                let (n, digits) = parse_u64(value);
                if digits > 0 {
                    content_length = Some(n as usize);
                }
            }
            Hdr::Expires => {
                let (n, digits) = parse_u64(value);
                if digits > 0 {
                    m.expires = Some(n.min(u32::MAX as u64) as u32);
                }
            }
            Hdr::SipEtag => m.etag = value,
            Hdr::SubState => m.sub_state = value,
            Hdr::ContentType => m.content_type = value,
            _ => {}
        }
    }
    if !seen_via || !have_cseq || m.call_id.is_empty() {
        return Err(ParseError::MissingHeader);
    }
    let body = &buf[body_start.min(buf.len())..];
    m.body = match content_length {
        Some(n) => &body[..n.min(body.len())],
        None => body,
    };
    Ok(m)
}

/// For the error log: what presenced's own lenient scanner makes of a message we rejected.
pub fn describe_unparsed(buf: &[u8]) -> String {
    match presenced_systems::sip::scan::scan(buf, true) {
        Ok(s) => format!(
            "scan accepts it: {:?}, {} headers{}",
            s.start,
            s.headers.len(),
            s.fault.map(|f| format!(", fault {f}")).unwrap_or_default()
        ),
        Err(e) => format!("scan rejects it too: {e}"),
    }
}

/// Write a response to request `req` with `status` and `reason`, echoing Via, From, To,
/// Call-ID and CSeq (RFC 3261 §8.2.6.2), plus `extra` header lines (each ending in CRLF).
/// When `to_tag` is given and To has no tag, it is added.
pub fn write_response(
    out: &mut Vec<u8>,
    req: &Msg<'_>,
    status: &[u8],
    to_tag: Option<&[u8]>,
    extra: &[u8],
) {
    out.extend_from_slice(b"SIP/2.0 ");
    out.extend_from_slice(status);
    out.extend_from_slice(b"\r\n");
    for (h, _, _, line) in headers(req.head) {
        match h {
            Hdr::Via | Hdr::From | Hdr::CallId | Hdr::CSeq => {
                out.extend_from_slice(line);
                out.extend_from_slice(b"\r\n");
            }
            Hdr::To => {
                out.extend_from_slice(line);
                if let Some(t) = to_tag
                    && req.to_tag.is_empty()
                {
                    out.extend_from_slice(b";tag=");
                    out.extend_from_slice(t);
                }
                out.extend_from_slice(b"\r\n");
            }
            _ => {}
        }
    }
    out.extend_from_slice(extra);
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTIFY: &[u8] = b"NOTIFY sip:w1@127.0.0.1:4000 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKabc;rport\r\n\
v: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKdef\r\n\
Max-Forwards: 70\r\n\
f: <sip:p1@example.com>;tag=srv1\r\n\
To: <sip:w1@example.com>;tag=lgw1\r\n\
i: lgw1.0.7@lg\r\n\
CSeq: 3 NOTIFY\r\n\
Event: presence\r\n\
Subscription-State: active;expires=600\r\n\
Content-Type: application/pidf+xml\r\n\
l: 5\r\n\r\nhelloEXTRA";

    #[test]
    fn reads_fields_and_compact_forms() {
        let m = parse(NOTIFY).unwrap();
        assert_eq!(m.start, Start::Request(b"NOTIFY"));
        assert_eq!(m.branch, b"z9hG4bKabc");
        assert_eq!(m.call_id, b"lgw1.0.7@lg");
        assert_eq!(m.cseq, 3);
        assert_eq!(m.cseq_method, b"NOTIFY");
        assert_eq!(m.from_tag, b"srv1");
        assert_eq!(m.to_tag, b"lgw1");
        assert_eq!(m.sub_state, b"active;expires=600");
        assert_eq!(m.content_type, b"application/pidf+xml");
        assert_eq!(m.body, b"hello");
    }

    #[test]
    fn agrees_with_presenced_scan() {
        let m = parse(NOTIFY).unwrap();
        let s = presenced_systems::sip::scan::scan(NOTIFY, true).unwrap();
        assert_eq!(s.header("Call-ID").unwrap().as_bytes(), m.call_id);
        assert_eq!(s.body, m.body);
        assert_eq!(s.method(), Some("NOTIFY"));
    }

    #[test]
    fn response_echoes_dialog_headers_and_parses_back() {
        let m = parse(NOTIFY).unwrap();
        let mut out = Vec::new();
        write_response(&mut out, &m, b"200 OK", None, b"");
        let r = parse(&out).unwrap();
        assert_eq!(r.start, Start::Response(200));
        assert_eq!(r.branch, b"z9hG4bKabc");
        assert_eq!(r.call_id, m.call_id);
        assert_eq!(r.to_tag, b"lgw1");
        let s = presenced_systems::sip::scan::scan(&out, true).unwrap();
        assert_eq!(s.headers_named("Via").count(), 2);
        assert!(s.fault.is_none());
    }

    #[test]
    fn response_parse_and_etag() {
        let r = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK-lg5.9;rport=1;received=127.0.0.1\r\nFrom: <sip:p@x>;tag=a\r\nTo: <sip:p@x>;tag=b\r\nCall-ID: c\r\nCSeq: 7 PUBLISH\r\nSIP-ETag: e12\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n";
        let m = parse(r).unwrap();
        assert_eq!(m.start, Start::Response(200));
        assert_eq!(m.branch, b"z9hG4bK-lg5.9");
        assert_eq!(m.etag, b"e12");
        assert_eq!(m.expires, Some(3600));
        assert_eq!(m.cseq_method, b"PUBLISH");
        assert!(parse(b"garbage").is_err());
    }
}
