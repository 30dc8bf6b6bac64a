//! A lenient first pass over a SIP message (RFC 3261 §7): finds the start line, unfolds header
//! lines (§7.3.1), expands compact header names (§7.3.3), and cuts the body by Content-Length
//! (§18.3). It never fails on bytes it can step over, so that even a message the strict parser
//! rejects can still be answered with a 400 built from the headers found here.

use std::borrow::Cow;

/// The start line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine<'a> {
    Request {
        method: &'a str,
        uri: &'a str,
        version: &'a str,
    },
    Response {
        version: &'a str,
        code: u16,
        reason: &'a str,
    },
}

/// One header line, name canonicalised where we know it, value unfolded and trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHeader<'a> {
    pub name: Cow<'a, str>,
    pub value: Cow<'a, str>,
}

/// The first pass over one message.
#[derive(Debug, Clone)]
pub struct Scan<'a> {
    pub start: StartLine<'a>,
    pub headers: Vec<RawHeader<'a>>,
    /// The body, cut to Content-Length when there is one.
    pub body: &'a [u8],
    /// Byte offset of the body in the input.
    pub body_offset: usize,
    pub content_length: Option<usize>,
    /// Bytes after the body (a UDP datagram longer than Content-Length, RFC 3261 §18.3).
    pub trailing: usize,
    /// A fault found in a message that can still be answered (a 400 names it).
    pub fault: Option<ScanError>,
}

/// Why the first pass could not make sense of the bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("empty message")]
    Empty,
    #[error("message is not text")]
    NotText,
    #[error("malformed start line")]
    StartLine,
    #[error("malformed Request-Line")]
    RequestLine,
    #[error("no blank line after the headers")]
    Unterminated,
    #[error("malformed header line {0}")]
    HeaderLine(usize),
    #[error("header {0} is not valid UTF-8")]
    HeaderEncoding(String),
    #[error("malformed Content-Length")]
    ContentLength,
    #[error("Content-Length larger than the message body")]
    ContentLengthTooLarge,
}

impl ScanError {
    /// True when the headers are in doubt, so no response can be built from them.
    pub fn is_unanswerable(&self) -> bool {
        matches!(
            self,
            ScanError::Empty | ScanError::NotText | ScanError::StartLine | ScanError::Unterminated
        )
    }
}

/// Canonical spelling of a header name, expanding RFC 3261 §7.3.3 / RFC 6665 compact forms.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    if name.len() == 1 {
        return Some(match name.as_bytes()[0].to_ascii_lowercase() {
            b'i' => "Call-ID",
            b'm' => "Contact",
            b'e' => "Content-Encoding",
            b'l' => "Content-Length",
            b'c' => "Content-Type",
            b'f' => "From",
            b's' => "Subject",
            b'k' => "Supported",
            b't' => "To",
            b'v' => "Via",
            b'o' => "Event",
            b'u' => "Allow-Events",
            b'r' => "Refer-To",
            b'b' => "Referred-By",
            _ => return None,
        });
    }
    const KNOWN: &[&str] = &[
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Content-Length",
        "Content-Type",
        "Max-Forwards",
        "Expires",
        "Event",
        "Allow-Events",
        "Accept",
        "Require",
        "Proxy-Require",
        "Supported",
        "Route",
        "Record-Route",
        "SIP-If-Match",
        "SIP-ETag",
        "Subscription-State",
        "User-Agent",
        "Content-Encoding",
        "Min-Expires",
        "Allow",
    ];
    KNOWN.iter().copied().find(|k| k.eq_ignore_ascii_case(name))
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t'))
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// Find the end of the header section: index of the first byte after the blank line, and the
/// index where the blank line starts. Accepts CRLF CRLF and, liberally, LF LF.
fn header_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            // a line ended at i; is the next line empty?
            if bytes.get(i + 1) == Some(&b'\n') {
                return Some((i + 1, i + 2));
            }
            if bytes.get(i + 1) == Some(&b'\r') && bytes.get(i + 2) == Some(&b'\n') {
                return Some((i + 1, i + 3));
            }
        }
        i += 1;
    }
    None
}

/// Split header-section bytes into lines, without their line ends.
fn lines(section: &[u8]) -> impl Iterator<Item = &[u8]> {
    section
        .split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

fn parse_start(line: &[u8]) -> Result<(StartLine<'_>, Option<ScanError>), ScanError> {
    let line = std::str::from_utf8(line).map_err(|_| ScanError::NotText)?;
    if let Some(rest) = line.strip_prefix("SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().ok_or(ScanError::StartLine)?;
        let code = parts.next().ok_or(ScanError::StartLine)?;
        let reason = parts.next().unwrap_or("");
        let _ = rest;
        let code: u16 = code.parse().map_err(|_| ScanError::StartLine)?;
        if !(100..=699).contains(&code) {
            return Err(ScanError::StartLine);
        }
        return Ok((
            StartLine::Response {
                version,
                code,
                reason,
            },
            None,
        ));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version (single spaces, §25.1)
    let mut parts = line.split(' ');
    if let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
        && !method.is_empty()
        && !uri.is_empty()
        && method.bytes().all(is_token_char)
        && version.starts_with("SIP/")
    {
        return Ok((
            StartLine::Request {
                method,
                uri,
                version,
            },
            None,
        ));
    }
    // Still recognisably a request (a method token first, a SIP version last) but with extra
    // white space: answerable with a 400 (RFC 4475 §3.1.2.7-10).
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    match words.as_slice() {
        [method, uri, .., version]
            if method.bytes().all(is_token_char) && version.starts_with("SIP/") =>
        {
            Ok((
                StartLine::Request {
                    method,
                    uri,
                    version,
                },
                Some(ScanError::RequestLine),
            ))
        }
        _ => Err(ScanError::StartLine),
    }
}

/// RFC 3261 §25.1 `token` characters.
pub fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

/// First pass over one complete message. `datagram` selects the UDP body rules of §18.3 (the body
/// may be cut short by Content-Length; a missing Content-Length means "the rest").
pub fn scan(bytes: &[u8], datagram: bool) -> Result<Scan<'_>, ScanError> {
    // RFC 3261 §7.5: implementations should ignore CRLFs before the start line.
    let lead = bytes
        .iter()
        .position(|c| !matches!(c, b'\r' | b'\n'))
        .ok_or(ScanError::Empty)?;
    let msg = &bytes[lead..];
    // A datagram is the whole message: one that lacks the blank line after its headers is
    // read as headers only (RFC 4475 §3.1.2.15 is such a message).
    let (blank_at, body_at) = match header_end(msg) {
        Some(ends) => ends,
        None if datagram => (msg.len(), msg.len()),
        None => return Err(ScanError::Unterminated),
    };
    let section = &msg[..blank_at];
    let mut it = lines(section).peekable();
    let (start, start_fault) = parse_start(it.next().ok_or(ScanError::StartLine)?)?;
    let mut headers: Vec<RawHeader<'_>> = Vec::with_capacity(16);
    let mut content_length = None;
    let mut fault = start_fault;
    let mut line_no = 1;
    while let Some(line) = it.next() {
        line_no += 1;
        if line.is_empty() {
            continue;
        }
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            fault.get_or_insert(ScanError::HeaderLine(line_no));
            continue;
        };
        let name = trim(&line[..colon]);
        if name.is_empty() || !name.iter().all(|&c| is_token_char(c)) {
            fault.get_or_insert(ScanError::HeaderLine(line_no));
            continue;
        }
        // token characters are ASCII
        let name = std::str::from_utf8(name).unwrap_or_default();
        let mut value: Cow<'_, [u8]> = Cow::Borrowed(trim(&line[colon + 1..]));
        // §7.3.1: a line starting with white space continues the previous one.
        while let Some(next) = it.peek() {
            if !matches!(next.first(), Some(b' ' | b'\t')) {
                break;
            }
            let cont = trim(next);
            let v = value.to_mut();
            if !cont.is_empty() {
                if !v.is_empty() {
                    v.push(b' ');
                }
                v.extend_from_slice(cont);
            }
            it.next();
            line_no += 1;
        }
        let value: Cow<'_, str> = match value {
            Cow::Borrowed(b) => match std::str::from_utf8(b) {
                Ok(v) => Cow::Borrowed(v),
                Err(_) => {
                    fault.get_or_insert(ScanError::HeaderEncoding(name.into()));
                    continue;
                }
            },
            Cow::Owned(v) => match String::from_utf8(v) {
                Ok(v) => Cow::Owned(v),
                Err(_) => {
                    fault.get_or_insert(ScanError::HeaderEncoding(name.into()));
                    continue;
                }
            },
        };
        let name: Cow<'_, str> = match canonical_name(name) {
            Some(c) => Cow::Borrowed(c),
            None => Cow::Borrowed(name),
        };
        if name == "Content-Length" {
            match value.trim().parse::<usize>() {
                Ok(n) if content_length.is_none_or(|c| c == n) => content_length = Some(n),
                _ => {
                    fault.get_or_insert(ScanError::ContentLength);
                }
            }
        }
        headers.push(RawHeader { name, value });
    }
    let available = &msg[body_at..];
    let (body, trailing) = match content_length {
        Some(n) if n > available.len() => {
            fault.get_or_insert(ScanError::ContentLengthTooLarge);
            (available, 0)
        }
        Some(n) => (&available[..n], available.len() - n),
        None if datagram => (available, 0),
        None => (&available[..0], available.len()),
    };
    Ok(Scan {
        start,
        headers,
        body,
        body_offset: lead + body_at,
        content_length,
        trailing,
        fault,
    })
}

impl<'a> Scan<'a> {
    /// The value of the first header called `name` (canonical spelling).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_ref())
    }

    /// All values of the headers called `name`, in order.
    pub fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_ref())
    }

    /// The method of a request, or the CSeq method of a response.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => self
                .header("CSeq")
                .and_then(|c| c.split_whitespace().nth(1)),
        }
    }

    /// Rebuild the message head in canonical form (one header per line, canonical names,
    /// `Name: value`) for the strict parser; the body is not included.
    pub fn canonical_head(&self, out: &mut Vec<u8>) {
        match &self.start {
            StartLine::Request {
                method,
                uri,
                version,
            } => {
                out.extend_from_slice(method.as_bytes());
                out.push(b' ');
                out.extend_from_slice(uri.as_bytes());
                out.push(b' ');
                out.extend_from_slice(version.as_bytes());
            }
            StartLine::Response {
                version,
                code,
                reason,
            } => {
                out.extend_from_slice(version.as_bytes());
                out.push(b' ');
                out.extend_from_slice(itoa::Buffer::new().format(*code).as_bytes());
                out.push(b' ');
                out.extend_from_slice(reason.as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
        for h in &self.headers {
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfolds_and_expands_compact_names() {
        let m = b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nSubject: one\r\n  two\r\ni: x\r\nl: 3\r\n\r\nabcEXTRA";
        let s = scan(m, true).unwrap();
        assert_eq!(s.header("Via"), Some("SIP/2.0/UDP h;branch=z9hG4bK1"));
        assert_eq!(s.header("Subject"), Some("one two"));
        assert_eq!(s.header("Call-ID"), Some("x"));
        assert_eq!(s.body, b"abc");
        assert_eq!(s.trailing, 5);
    }

    #[test]
    fn content_length_too_large_is_an_error() {
        let m = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\nabc";
        assert_eq!(
            scan(m, true).unwrap().fault,
            Some(ScanError::ContentLengthTooLarge)
        );
    }

    #[test]
    fn garbage_is_unanswerable() {
        for m in [&b""[..], b"\r\n\r\n", b"\x00\x01\x02\xff", b"HELLO\r\n\r\n"] {
            assert!(scan(m, true).unwrap_err().is_unanswerable(), "{m:?}");
        }
        // on a stream, a head without its blank line is incomplete, not a message
        assert!(
            scan(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x", false)
                .unwrap_err()
                .is_unanswerable()
        );
    }

    #[test]
    fn response_start_line() {
        let s = scan(b"SIP/2.0 200 OK\r\nCSeq: 1 NOTIFY\r\n\r\n", true).unwrap();
        assert_eq!(
            s.start,
            StartLine::Response {
                version: "SIP/2.0",
                code: 200,
                reason: "OK"
            }
        );
        assert_eq!(s.method(), Some("NOTIFY"));
    }
}
