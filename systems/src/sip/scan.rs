//! A lenient first pass over a SIP message (RFC 3261 §7): finds the start line, unfolds header
//! lines (§7.3.1), expands compact header names (§7.3.3), and cuts the body by Content-Length
//! (§18.3). It never fails on bytes it can step over, so that even a message the strict parser
//! rejects can still be answered with a 400 built from the headers found here.

use super::headers::{HeaderIndex, Key, Name, RawName};

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

/// The first pass over one message.
#[derive(Debug, Clone)]
pub struct Scan<'a> {
    pub start: StartLine<'a>,
    /// The whole input.
    pub input: &'a [u8],
    /// The input up to the end of the header section as text, which the spans of `headers`
    /// point into ("" when the section is not text throughout: its values, checked one by
    /// one, are then copied into the index).
    pub text: &'a str,
    /// The header fields, names canonicalised where we know them, values unfolded and trimmed.
    pub headers: HeaderIndex,
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

/// The first `\n` in `hay` at or after `from`, eight bytes at a time (no call per line: a
/// header line is short, and a `memchr` call costs more than the line).
fn find_nl(hay: &[u8], from: usize) -> Option<usize> {
    super::fields::find_swar(hay, from, b'\n')
}

/// The line ends (`\n` positions) of a header section, the first [`LineEnds::CAP`] of them
/// kept from the search for its end so that splitting it into lines finds them again free.
struct LineEnds {
    at: [u32; LineEnds::CAP],
    n: usize,
}

impl LineEnds {
    const CAP: usize = 64;

    fn new() -> Self {
        LineEnds {
            at: [0; LineEnds::CAP],
            n: 0,
        }
    }

    fn push(&mut self, i: usize) {
        if self.n < Self::CAP {
            self.at[self.n] = i as u32;
            self.n += 1;
        }
    }
}

/// Find the end of the header section: index of the first byte after the blank line, and the
/// index where the blank line starts. Accepts CRLF CRLF and, liberally, LF LF. The line ends
/// met on the way are noted in `ends`.
fn header_end(bytes: &[u8], ends: &mut LineEnds) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(i) = find_nl(bytes, from) {
        ends.push(i);
        // a line ended at i; is the next line empty?
        match bytes.get(i + 1..) {
            Some([b'\n', ..]) => return Some((i + 1, i + 2)),
            Some([b'\r', b'\n', ..]) => return Some((i + 1, i + 3)),
            _ => {}
        }
        from = i + 1;
    }
    None
}

/// Split header-section bytes into lines, without their line ends (`ends`: the first line
/// ends of `section`, as [`header_end`] noted them).
fn lines<'a: 'e, 'e>(section: &'a [u8], ends: &'e LineEnds) -> impl Iterator<Item = &'a [u8]> + 'e {
    let known = &ends.at;
    let n = ends.n;
    let mut k = 0;
    let mut pos = Some(0);
    std::iter::from_fn(move || {
        let p = pos?;
        let end = if k < n {
            k += 1;
            Some(known[k - 1] as usize).filter(|&e| e < section.len())
        } else {
            find_nl(section, p)
        };
        let line = match end {
            Some(e) => {
                pos = Some(e + 1);
                &section[p..e]
            }
            None => {
                pos = None;
                &section[p..]
            }
        };
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    })
}

/// A header line's name and the position of its colon, when the line is the usual
/// `token *(SP / HTAB) ":"`.
#[inline]
fn plain_name(line: &[u8]) -> Option<(&[u8], usize)> {
    let k = line.iter().position(|&c| !is_token_char(c))?;
    let colon = k + line[k..].iter().position(|&c| c != b' ' && c != b'\t')?;
    (k > 0 && line[colon] == b':').then(|| (&line[..k], colon))
}

fn parse_start(line: &str) -> Result<(StartLine<'_>, Option<ScanError>), ScanError> {
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
    let b = line.as_bytes();
    let mut m = 0;
    while m < b.len() && is_token_char(b[m]) {
        m += 1;
    }
    if m > 0
        && b.get(m) == Some(&b' ')
        && let Some(u) = super::fields::find_byte(&b[m + 1..], b' ')
        && u > 0
        && super::fields::find_byte(&b[m + 2 + u..], b' ').is_none()
        && b[m + 2 + u..].starts_with(b"SIP/")
    {
        return Ok((
            StartLine::Request {
                method: &line[..m],
                uri: &line[m + 1..m + 1 + u],
                version: &line[m + 2 + u..],
            },
            None,
        ));
    }
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
    TOKEN[c as usize]
}

const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        c += 1;
    }
    t
};

/// First pass over one complete message. `datagram` selects the UDP body rules of §18.3 (the body
/// may be cut short by Content-Length; a missing Content-Length means "the rest").
pub fn scan(bytes: &[u8], datagram: bool) -> Result<Scan<'_>, ScanError> {
    // RFC 3261 §7.5: implementations should ignore CRLFs before the start line.
    let lead = bytes
        .iter()
        .position(|c| !matches!(c, b'\r' | b'\n'))
        .ok_or(ScanError::Empty)?;
    if let Some(fast) = scan_usual(bytes, lead, datagram) {
        return Ok(fast);
    }
    let msg = &bytes[lead..];
    // A datagram is the whole message: one that lacks the blank line after its headers is
    // read as headers only (RFC 4475 §3.1.2.15 is such a message).
    let mut ends = LineEnds::new();
    let (blank_at, body_at) = match header_end(msg, &mut ends) {
        Some(ends) => ends,
        None if datagram => (msg.len(), msg.len()),
        None => return Err(ScanError::Unterminated),
    };
    let section = &msg[..blank_at];
    // Most heads are text throughout: checked once here, no value needs checking on its own,
    // and every value is read in place as text from now on.
    let text = std::str::from_utf8(&bytes[..lead + blank_at]).ok();
    let all_text = text.is_some();
    let mut it = lines(section, &ends).peekable();
    let first_line = it.next().ok_or(ScanError::StartLine)?;
    let first_line = match text {
        // (the line is cut from text at ASCII bytes)
        Some(t) => t.get(lead..lead + first_line.len()).unwrap_or_default(),
        None => std::str::from_utf8(first_line).map_err(|_| ScanError::NotText)?,
    };
    let (start, start_fault) = parse_start(first_line)?;
    let text = text.unwrap_or_default();
    let mut headers = HeaderIndex::with_capacity(16);
    let mut content_length = None;
    let mut fault = start_fault;
    let mut line_no = 1;
    let base = bytes.as_ptr() as usize;
    let at = |s: &[u8]| s.as_ptr() as usize - base;
    let mut unfolded: Vec<u8> = Vec::new();
    while let Some(line) = it.next() {
        line_no += 1;
        if line.is_empty() {
            continue;
        }
        let (name_bytes, colon) = match plain_name(line) {
            Some(found) => found,
            None => {
                let Some(colon) = memchr::memchr(b':', line) else {
                    fault.get_or_insert(ScanError::HeaderLine(line_no));
                    continue;
                };
                let name_bytes = trim(&line[..colon]);
                if name_bytes.is_empty() || !name_bytes.iter().all(|&c| is_token_char(c)) {
                    fault.get_or_insert(ScanError::HeaderLine(line_no));
                    continue;
                }
                (name_bytes, colon)
            }
        };
        let name = Name::from_wire(name_bytes);
        let raw_name = (at(name_bytes), name_bytes.len());
        let first = trim(&line[colon + 1..]);
        // §7.3.1: a line starting with white space continues the previous one.
        let mut folded = false;
        while let Some(next) = it.peek() {
            if !matches!(next.first(), Some(b' ' | b'\t')) {
                break;
            }
            if !folded {
                folded = true;
                unfolded.clear();
                unfolded.extend_from_slice(first);
            }
            let cont = trim(next);
            if !cont.is_empty() {
                if !unfolded.is_empty() {
                    unfolded.push(b' ');
                }
                unfolded.extend_from_slice(cont);
            }
            it.next();
            line_no += 1;
        }
        let value_bytes: &[u8] = if folded { &unfolded } else { first };
        // (a value is cut from text at ASCII bytes, so it is text when the section is)
        let value = if all_text && !folded {
            text.get(at(first)..at(first) + first.len())
        } else {
            std::str::from_utf8(value_bytes).ok()
        };
        let Some(value) = value else {
            // token characters are ASCII
            let name = std::str::from_utf8(name_bytes).unwrap_or_default();
            fault.get_or_insert(ScanError::HeaderEncoding(name.into()));
            continue;
        };
        if name == Name::ContentLength {
            match value.trim().parse::<usize>() {
                Ok(n) if content_length.is_none_or(|c| c == n) => content_length = Some(n),
                _ => {
                    fault.get_or_insert(ScanError::ContentLength);
                }
            }
        }
        if all_text && !folded {
            headers.push(name, raw_name, (at(first), first.len()));
        } else {
            let raw_name = if all_text {
                RawName::At(raw_name.0, raw_name.1)
            } else {
                // token characters are ASCII
                RawName::Text(std::str::from_utf8(name_bytes).unwrap_or_default())
            };
            headers.push_owned(name, raw_name, value);
        }
    }
    let available = &msg[body_at..];
    let (body, trailing) = split_body(available, content_length, datagram, &mut fault);
    Ok(Scan {
        start,
        input: bytes,
        text,
        headers,
        body,
        body_offset: lead + body_at,
        content_length,
        trailing,
        fault,
    })
}

/// The end of the line starting at `from` (its `\n`, one `\r` before it left out) and the start
/// of the next line; None when no `\n` follows.
#[inline]
/// The body after the header section and the length of what trails it: `Content-Length` bytes
/// (all there is, and a fault, when fewer arrived); without the header, the rest of a datagram
/// or nothing on a stream (§18.3).
fn split_body<'a>(
    available: &'a [u8],
    content_length: Option<usize>,
    datagram: bool,
    fault: &mut Option<ScanError>,
) -> (&'a [u8], usize) {
    match content_length {
        Some(n) if n > available.len() => {
            fault.get_or_insert(ScanError::ContentLengthTooLarge);
            (available, 0)
        }
        Some(n) => (&available[..n], available.len() - n),
        None if datagram => (available, 0),
        None => (&available[..0], available.len()),
    }
}

fn line_at(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    let nl = find_nl(bytes, from)?;
    let end = if nl > from && bytes[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    Some((end, nl + 1))
}

/// A Content-Length made of digits only (at most 18: no overflow); None otherwise.
#[inline]
fn plain_number(b: &[u8]) -> Option<usize> {
    if b.is_empty() || b.len() > 18 {
        return None;
    }
    let mut n = 0usize;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + d as usize;
    }
    Some(n)
}

/// The first pass over the usual message in one walk over its lines: a blank line ends the
/// head, every header line is `token *(SP / HTAB) ":" value` with no continuation line, every
/// Content-Length is plain digits, and the head is text. None for anything else, which
/// [`scan`] then reads the general way; for every message this accepts, the general way gives
/// the same [`Scan`] (the parse differential tool checks that).
fn scan_usual(bytes: &[u8], lead: usize, datagram: bool) -> Option<Scan<'_>> {
    let (first_end, mut pos) = line_at(bytes, lead)?;
    let mut headers = HeaderIndex::with_capacity(16);
    let mut content_length = None;
    let mut length_fault = false;
    let (blank_at, body_at) = loop {
        let (end, next) = line_at(bytes, pos)?;
        let line = &bytes[pos..end];
        if line.is_empty() {
            break (pos, next);
        }
        // the name: up to the first ':', less the white space before it; a known name is all
        // token characters by its spelling, any other is checked
        let colon = super::fields::find_swar(line, 0, b':')?;
        let mut k = colon;
        while k > 0 && matches!(line[k - 1], b' ' | b'\t') {
            k -= 1;
        }
        // (a line starting with white space continues the one before: the general way)
        if k == 0 || matches!(bytes.get(next), Some(b' ' | b'\t')) {
            return None;
        }
        let name = Name::from_wire(&line[..k]);
        if name == Name::Other && !line[..k].iter().all(|&c| TOKEN[c as usize]) {
            return None;
        }
        let mut a = colon + 1;
        let mut e = line.len();
        while a < e && matches!(line[a], b' ' | b'\t') {
            a += 1;
        }
        while e > a && matches!(line[e - 1], b' ' | b'\t') {
            e -= 1;
        }
        if name == Name::ContentLength {
            let n = plain_number(&line[a..e])?;
            match content_length {
                None => content_length = Some(n),
                Some(c) if c == n => {}
                Some(_) => length_fault = true,
            }
        }
        headers.push(name, (pos, k), (pos + a, e - a));
        pos = next;
    };
    let text = std::str::from_utf8(&bytes[..blank_at]).ok()?;
    let (start, mut fault) = parse_start(text.get(lead..first_end)?).ok()?;
    if length_fault {
        fault.get_or_insert(ScanError::ContentLength);
    }
    let available = &bytes[body_at..];
    let (body, trailing) = split_body(available, content_length, datagram, &mut fault);
    Some(Scan {
        start,
        input: bytes,
        text,
        headers,
        body,
        body_offset: body_at,
        content_length,
        trailing,
        fault,
    })
}

impl<'a> Scan<'a> {
    /// The value of the first header called `name`.
    pub fn header<'k>(&self, name: impl Into<Key<'k>>) -> Option<&str> {
        self.headers.get(self.text, name)
    }

    /// All values of the headers called `name`, in order.
    pub fn headers_named<'s, 'k>(
        &'s self,
        name: impl Into<Key<'k>>,
    ) -> impl Iterator<Item = &'s str> {
        self.headers.all(self.text, name)
    }

    /// The method of a request, or the CSeq method of a response.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => self
                .header(Name::CSeq)
                .and_then(|c| c.split_whitespace().nth(1)),
        }
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
