//! The header fields the engine reads, parsed from the values of the header index
//! ([`super::headers`]): top Via (RFC 3261 §18.2, RFC 3581), From/To tags and CSeq once at
//! ingest; Expires, Event, Content-Type/Accept media types, name-addr lists (Contact,
//! Record-Route), entity tags (SIP-If-Match) and option tags (Supported/Require) where a handler
//! needs them.

/// The parts of a Via header field value that transactions and response routing need, in one
/// allocation (transport, host and branch side by side).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopVia {
    /// transport (upper-cased), sent-by host (IPv6 without brackets), branch.
    text: Box<str>,
    host_at: u32,
    branch_at: u32,
    pub port: Option<u16>,
    /// RFC 3581: the `rport` parameter was present without a value.
    pub rport: bool,
    /// `received` already present (set by a proxy on the way).
    pub received: bool,
}

impl TopVia {
    /// `UDP`, `TCP`, ... (upper-cased).
    pub fn transport(&self) -> &str {
        &self.text[..self.host_at as usize]
    }

    /// sent-by host (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.text[self.host_at as usize..self.branch_at as usize]
    }

    /// The branch parameter, empty when absent.
    pub fn branch(&self) -> &str {
        &self.text[self.branch_at as usize..]
    }

    /// RFC 3261 §8.1.1.7: branches that start with the magic cookie are unique per transaction.
    /// A bare cookie with nothing after it identifies nothing (RFC 4475 §3.2.1): such a
    /// request falls back to RFC 2543 matching.
    pub fn has_cookie(&self) -> bool {
        let branch = self.branch();
        branch.len() > 7 && branch.starts_with("z9hG4bK")
    }
}

/// `str::trim` (Unicode white space), answered byte by byte unless an end is not ASCII.
#[inline]
pub fn trim(s: &str) -> &str {
    trim_end(trim_start(s))
}

/// The first `c` in `b`: a plain loop, cheaper than a `memchr` call on the short values of
/// a header.
#[inline]
pub fn find_byte(b: &[u8], c: u8) -> Option<usize> {
    if b.len() >= 16 {
        return find_swar(b, 0, c);
    }
    b.iter().position(|&x| x == c)
}

/// The first `c` in `hay` at or after `from`, eight bytes at a time.
pub(crate) fn find_swar(hay: &[u8], from: usize, c: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let pattern = ONES * c as u64;
    let mut i = from;
    while let Some(chunk) = hay.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default()) ^ pattern;
        // the lowest flagged byte is the first zero byte of x (flags above it may be false)
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    hay.get(i..)?.iter().position(|&x| x == c).map(|k| i + k)
}

/// True when a byte of `b` is below `limit` (at most 128) or equals `c`, eight bytes at a time.
pub(crate) fn any_below_or(b: &[u8], limit: u8, c: u8) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below = ONES * limit as u64;
    let pattern = ONES * c as u64;
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let y = x ^ pattern;
        // (a byte below `limit` in x, a zero byte in y: exact as a yes/no for the word)
        if ((x.wrapping_sub(below) & !x) | (y.wrapping_sub(ONES) & !y)) & HIGHS != 0 {
            return true;
        }
        i += 8;
    }
    b[i..].iter().any(|&x| x < limit || x == c)
}

/// The last `c` in `b`.
#[inline]
pub fn rfind_byte(b: &[u8], c: u8) -> Option<usize> {
    b.iter().rposition(|&x| x == c)
}

/// `char::is_whitespace` for an ASCII byte.
#[inline]
fn is_ascii_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// `str::trim_start`, byte by byte unless the first byte left is not ASCII.
#[inline]
pub fn trim_start(s: &str) -> &str {
    let b = s.as_bytes();
    let mut a = 0;
    while a < b.len() && is_ascii_ws(b[a]) {
        a += 1;
    }
    match b.get(a) {
        Some(&c) if c >= 0x80 => s[a..].trim_start(),
        _ => &s[a..],
    }
}

/// `str::trim_end`, byte by byte unless the last byte left is not ASCII.
#[inline]
pub fn trim_end(s: &str) -> &str {
    let b = s.as_bytes();
    let mut e = b.len();
    while e > 0 && is_ascii_ws(b[e - 1]) {
        e -= 1;
    }
    if e > 0 && b[e - 1] >= 0x80 {
        s[..e].trim_end()
    } else {
        &s[..e]
    }
}

/// The first comma at or after `from` outside quotes (with their backslash escapes) and angle
/// brackets, scanning from a point that is outside both.
fn top_comma(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    let mut quoted = false;
    let mut angle = false;
    loop {
        let rest = bytes.get(i..)?;
        if quoted {
            let j = i + memchr::memchr2(b'\\', b'"', rest)?;
            if bytes[j] == b'\\' {
                i = j + 2;
            } else {
                quoted = false;
                i = j + 1;
            }
        } else if angle {
            let j = i + memchr::memchr2(b'>', b'"', rest)?;
            if bytes[j] == b'>' {
                angle = false;
            } else {
                quoted = true;
            }
            i = j + 1;
        } else {
            let j = i + memchr::memchr3(b',', b'"', b'<', rest)?;
            match bytes[j] {
                b',' => return Some(j),
                b'"' => quoted = true,
                _ => angle = true,
            }
            i = j + 1;
        }
    }
}

/// Split a header value at top-level commas (outside quotes and angle brackets).
pub fn split_commas(value: &str) -> impl Iterator<Item = &str> {
    let bytes = value.as_bytes();
    let mut start = Some(0);
    std::iter::from_fn(move || {
        let from = start?;
        match top_comma(bytes, from) {
            Some(i) => {
                start = Some(i + 1);
                Some(trim(&value[from..i]))
            }
            None => {
                start = None;
                Some(trim(&value[from..]))
            }
        }
    })
}

/// The first part of [`split_commas`] and what follows its comma (None without one).
pub fn first_comma_part(value: &str) -> (&str, Option<&str>) {
    match top_comma(value.as_bytes(), 0) {
        Some(i) => (trim(&value[..i]), Some(&value[i + 1..])),
        None => (trim(value), None),
    }
}

/// `str::split` at an ASCII byte.
pub fn split_byte(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        Some(match find_byte(r.as_bytes(), sep) {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                &r[..i]
            }
            None => {
                rest = None;
                r
            }
        })
    })
}

/// Iterate `name[=value]` parameters of a `;`-separated list.
pub fn params(list: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    split_byte(list, b';')
        .map(trim)
        .filter(|p| !p.is_empty())
        .map(|p| match find_byte(p.as_bytes(), b'=') {
            Some(i) => (trim(&p[..i]), Some(trim_quotes(trim(&p[i + 1..])))),
            None => (p, None),
        })
}

/// `str::trim_matches('"')`.
pub(crate) fn trim_quotes(s: &str) -> &str {
    let b = s.as_bytes();
    let mut a = 0;
    let mut e = b.len();
    while a < e && b[a] == b'"' {
        a += 1;
    }
    while e > a && b[e - 1] == b'"' {
        e -= 1;
    }
    &s[a..e]
}

/// The sent-protocol transport, sent-by and parameter list of one via-parm, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViaSent<'a> {
    /// `UDP`, `TCP`, ... as written.
    pub transport: &'a str,
    pub host: &'a str,
    pub port: Option<u16>,
    /// The text after the first `;` ("" without parameters).
    pub params: &'a str,
}

/// Read the first via-parm of a Via value: `SIP/2.0/UDP host[:port] *(;param)`, without
/// allocating; None when malformed.
pub fn via_sent(value: &str) -> Option<ViaSent<'_>> {
    parm_sent(first_comma_part(value).0)
}

/// [`via_sent`] of one via-parm already cut at its commas (and trimmed).
pub fn parm_sent(value: &str) -> Option<ViaSent<'_>> {
    if let Some(sent) = plain_parm_sent(value) {
        return sent;
    }
    general_parm_sent(value)
}

/// [`parm_sent`] of the usual via-parm, `SIP/2.0/` transport, one space, a sent-by without white
/// space, in one walk; None for anything else (the general walk then reads it, the same way
/// for every via-parm this takes).
fn plain_parm_sent(value: &str) -> Option<Option<ViaSent<'_>>> {
    let b = value.as_bytes();
    let rest = b.strip_prefix(b"SIP/2.0/")?;
    let t = rest.iter().position(|&c| !super::scan::is_token_char(c))?;
    // (a token, then exactly one space before the sent-by)
    if t == 0 || rest[t] != b' ' || rest.get(t + 1).is_none_or(|&c| c <= b' ') {
        return None;
    }
    let transport = &value[8..8 + t];
    let by_at = 8 + t + 1;
    let end = find_byte(&b[by_at..], b';').map_or(b.len(), |i| by_at + i);
    if b[by_at..end].iter().any(|&c| c <= b' ' || c >= 0x80)
        || b.last().is_none_or(|&c| c <= b' ' || c >= 0x80)
    {
        return None;
    }
    let params = if end < b.len() { &value[end + 1..] } else { "" };
    Some(
        split_host_port(&value[by_at..end]).map(|(host, port)| ViaSent {
            transport,
            host,
            port,
            params,
        }),
    )
}

/// [`parm_sent`] of any via-parm.
fn general_parm_sent(value: &str) -> Option<ViaSent<'_>> {
    // sent-protocol = protocol-name SLASH protocol-version SLASH transport, with LWS allowed
    // around the slashes (RFC 3261 §25.1; RFC 4475 §3.1.1.1 folds it over three lines)
    let (name, r) = take_token(trim_start(value));
    let r = trim_start(trim_start(r).strip_prefix('/')?);
    let (version, r) = take_token(r);
    let r = trim_start(trim_start(r).strip_prefix('/')?);
    let (transport, rest) = take_token(r);
    if !name.eq_ignore_ascii_case("SIP") || version.is_empty() || transport.is_empty() {
        return None;
    }
    if !matches!(rest.as_bytes().first(), Some(b' ' | b'\t')) {
        return None;
    }
    let rest = trim(rest);
    let (sent_by, params) = match find_byte(rest.as_bytes(), b';') {
        Some(i) => (trim(&rest[..i]), &rest[i + 1..]),
        None => (rest, ""),
    };
    let (host, port) = split_host_port(sent_by)?;
    Some(ViaSent {
        transport,
        host,
        port,
        params,
    })
}

/// Parse one via-parm: `SIP/2.0/UDP host[:port] *(;param)`.
pub fn parse_via(value: &str) -> Option<TopVia> {
    top_via(&via_sent(value)?)
}

/// The [`TopVia`] of a via-parm read by [`via_sent`].
pub fn top_via(sent: &ViaSent<'_>) -> Option<TopVia> {
    let mut noted = ViaParams::default();
    for (n, v) in params(sent.params) {
        noted.note(n, v);
    }
    Some(via_text(sent, noted))
}

/// [`top_via`], and whether the via-parm's parameters pass
/// [`super::syntax::check_params`], from one walk over them.
pub fn top_via_checked(sent: &ViaSent<'_>) -> (TopVia, bool) {
    if let Some(noted) = plain_via_params(sent.params) {
        return (via_text(sent, noted), true);
    }
    let mut noted = ViaParams::default();
    let mut names_ok = true;
    for seg in split_byte(sent.params, b';') {
        let eq = find_byte(seg.as_bytes(), b'=');
        let name = trim(eq.map_or(seg, |i| &seg[..i]));
        if name.is_empty() {
            names_ok = false;
            continue;
        }
        if !name.bytes().all(super::scan::is_token_char) {
            names_ok = false;
        }
        noted.note(name, eq.map(|i| trim_quotes(trim(&seg[i + 1..]))));
    }
    let checked = names_ok || trim(sent.params).is_empty();
    (via_text(sent, noted), checked)
}

/// The branch, rport and received of [`top_via_checked`] for parameters written plainly
/// (`name[=value]` joined by `;`, no white space or quotes: nothing to trim), in one walk; they
/// then pass the check. None for anything else (the general walk then reads them).
fn plain_via_params(params: &str) -> Option<ViaParams<'_>> {
    let b = params.as_bytes();
    let mut noted = ViaParams::default();
    if b.is_empty() {
        return Some(noted);
    }
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && super::scan::is_token_char(b[i]) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let name = &params[start..i];
        let value = match b.get(i) {
            None | Some(b';') => None,
            Some(b'=') => {
                let at = i + 1;
                i = at;
                while i < b.len() && super::syntax::PLAIN_VALUE[b[i] as usize] {
                    i += 1;
                }
                if i < b.len() && b[i] != b';' {
                    return None;
                }
                Some(&params[at..i])
            }
            Some(_) => return None,
        };
        noted.note(name, value);
        if i >= b.len() {
            return Some(noted);
        }
        i += 1;
    }
}

/// The via-params a server acts on (§18.2.1, RFC 3581): the branch, an empty `rport`, a
/// `received`.
#[derive(Default)]
struct ViaParams<'a> {
    branch: &'a str,
    rport: bool,
    received: bool,
}

impl<'a> ViaParams<'a> {
    fn note(&mut self, name: &str, value: Option<&'a str>) {
        if name.eq_ignore_ascii_case("branch") {
            self.branch = value.unwrap_or("");
        } else if name.eq_ignore_ascii_case("rport") {
            self.rport = value.is_none();
        } else if name.eq_ignore_ascii_case("received") {
            self.received = value.is_some();
        }
    }
}

/// A [`TopVia`] of what its via-parm says.
fn via_text(sent: &ViaSent<'_>, noted: ViaParams<'_>) -> TopVia {
    let ViaParams {
        branch,
        rport,
        received,
    } = noted;
    let mut text = String::with_capacity(sent.transport.len() + sent.host.len() + branch.len());
    text.push_str(sent.transport);
    // (a token: ASCII)
    text.make_ascii_uppercase();
    let host_at = text.len() as u32;
    text.push_str(sent.host);
    let branch_at = text.len() as u32;
    text.push_str(branch);
    TopVia {
        text: text.into_boxed_str(),
        host_at,
        branch_at,
        port: sent.port,
        rport,
        received,
    }
}

fn take_token(s: &str) -> (&str, &str) {
    let end = s
        .bytes()
        .position(|c| !super::scan::is_token_char(c))
        .unwrap_or(s.len());
    s.split_at(end)
}

/// Split `host[:port]` or `[v6]:port`; None when malformed.
pub fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    // the usual `host` or `host:digits`, in one walk
    let b = s.as_bytes();
    if let (Some(&first), Some(&last)) = (b.first(), b.last())
        && first > b' '
        && first != b'['
        && first < 0x80
        && last > b' '
        && last < 0x80
    {
        match find_byte(b, b':') {
            None => return Some((s, None)),
            Some(i) => {
                let digits = &b[i + 1..];
                if (1..=5).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) {
                    let port = digits.iter().fold(0u32, |n, &d| n * 10 + (d - b'0') as u32);
                    return u16::try_from(port).ok().map(|p| (&s[..i], Some(p)));
                }
            }
        }
    }
    general_split_host_port(s)
}

/// [`split_host_port`] of any text.
fn general_split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let s = trim(s);
    if s.is_empty() {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let close = find_byte(rest.as_bytes(), b']')?;
        let (h, after) = (&rest[..close], &rest[close + 1..]);
        let port = match after.strip_prefix(':') {
            Some(p) => Some(trim(p).parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((h, port));
    }
    match rfind_byte(s.as_bytes(), b':') {
        Some(i) if find_byte(&s.as_bytes()[..i], b':').is_none() => {
            Some((&s[..i], Some(trim(&s[i + 1..]).parse().ok()?)))
        }
        Some(_) => None,
        None => Some((s, None)),
    }
}

/// The `tag` parameter of a From or To value (outside the URI when it is in angle brackets).
pub fn tag(value: &str) -> Option<&str> {
    let b = value.as_bytes();
    let after_uri = match rfind_byte(b, b'>') {
        Some(i) => &value[i + 1..],
        None => find_byte(b, b';').map_or("", |i| &value[i..]),
    };
    params(after_uri)
        .find(|(n, _)| n.eq_ignore_ascii_case("tag"))
        .and_then(|(_, v)| v)
}

/// The URI of a name-addr or addr-spec (From, To, Contact, Route).
pub fn uri_of(value: &str) -> &str {
    // a quoted display name may hold `<`; header parameters after the URI may hold `>`
    // (`+sip.instance="<urn:uuid:...>"`, RFC 5626): the URI is between the first `<` after
    // the display name and the first `>` after that
    let v = value.trim();
    let mut from = 0;
    if v.starts_with('"') {
        let mut escaped = false;
        for (i, c) in v.char_indices().skip(1) {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    from = i + 1;
                    break;
                }
                _ => {}
            }
        }
    }
    if let Some(a) = v[from..].find('<').map(|a| from + a)
        && let Some(b) = v[a..].find('>').map(|b| a + b)
    {
        return v[a + 1..b].trim();
    }
    v.split(';').next().unwrap_or(v).trim()
}

/// The media type of a Content-Type or Accept value, parameters dropped (RFC 3261 §20.15).
pub fn media_type(value: &str) -> &str {
    value.split(';').next().unwrap_or("").trim()
}

/// The event package of an Event value, parameters dropped (RFC 6665 §8.2.1).
pub fn event_package(value: &str) -> &str {
    media_type(value)
}

/// The parameter `name` of a header value (`value;name=x`), case-insensitive; None when absent
/// or without a value.
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    params(value.split_once(';')?.1)
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v)
}

/// delta-seconds (Expires, RFC 3261 §20.19), saturating at `u32::MAX`; None when not a number.
pub fn delta_seconds(value: &str) -> Option<u32> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|n| n.min(u32::MAX as u64) as u32)
}

/// Parse a CSeq value: `number METHOD`. The number must be below 2^31 (RFC 3261 §8.1.1.5).
pub fn parse_cseq(value: &str) -> Option<(u32, &str)> {
    // the usual `digits SP METHOD`, in one walk
    let b = value.as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if (1..=9).contains(&digits)
        && b.get(digits) == Some(&b' ')
        && b.len() > digits + 1
        && b[digits + 1..].iter().all(|&c| c > b' ' && c < 0x7f)
    {
        let n = b[..digits]
            .iter()
            .fold(0u32, |n, &d| n * 10 + (d - b'0') as u32);
        return (n < 1 << 31).then(|| (n, &value[digits + 1..]));
    }
    if value.is_ascii() {
        // (for ASCII text the same split as `split_whitespace`)
        let b = value.as_bytes();
        let mut at = 0;
        let mut it = std::iter::from_fn(|| {
            while at < b.len() && is_ascii_ws(b[at]) {
                at += 1;
            }
            let start = at;
            while at < b.len() && !is_ascii_ws(b[at]) {
                at += 1;
            }
            (at > start).then(|| &value[start..at])
        });
        let n: u32 = it.next()?.parse().ok()?;
        let m = it.next()?;
        if it.next().is_some() || n >= 1 << 31 {
            return None;
        }
        return Some((n, m));
    }
    let mut it = value.split_whitespace();
    let n: u32 = it.next()?.parse().ok()?;
    let m = it.next()?;
    if it.next().is_some() || n >= 1 << 31 {
        return None;
    }
    Some((n, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_forms() {
        let v =
            parse_via("SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKabc;rport, SIP/2.0/TCP x").unwrap();
        assert_eq!(
            (v.transport(), v.host(), v.port),
            ("UDP", "10.0.0.1", Some(5062))
        );
        assert_eq!(v.branch(), "z9hG4bKabc");
        assert!(v.rport && v.has_cookie());
        let v = parse_via("SIP / 2.0 / tcp [2001:db8::9]:5070 ; branch = z9hG4bKx").unwrap();
        assert_eq!(
            (v.transport(), v.host(), v.port),
            ("TCP", "2001:db8::9", Some(5070))
        );
        assert!(parse_via("garbage").is_none());
        assert!(parse_via("SIP/2.0/UDP host:notaport").is_none());
    }

    #[test]
    fn tags_and_uris() {
        assert_eq!(tag("\"A;tag=no\" <sip:a@b;tag=no>;tag=yes"), Some("yes"));
        assert_eq!(tag("sip:a@b;tag=t1"), Some("t1"));
        assert_eq!(tag("<sip:a@b>"), None);
        assert_eq!(
            uri_of("\"Al\" <sip:al@x;transport=tcp>;tag=1"),
            "sip:al@x;transport=tcp"
        );
        assert_eq!(uri_of("sip:al@x;tag=1"), "sip:al@x");
        // Linphone's Contact: a `>` in a parameter after the URI (RFC 5626 instance id)
        assert_eq!(
            uri_of("<sip:127.0.0.1:5062;transport=udp>;+sip.instance=\"<urn:uuid:d3f2>\""),
            "sip:127.0.0.1:5062;transport=udp"
        );
        // a `<` in the quoted display name
        assert_eq!(uri_of("\"a<b \\\" c\" <sip:a@b>"), "sip:a@b");
    }

    #[test]
    fn commas_respect_quotes() {
        let v: Vec<_> = split_commas("\"a,b\" <sip:x>, <sip:y,z>, c").collect();
        assert_eq!(v, vec!["\"a,b\" <sip:x>", "<sip:y,z>", "c"]);
    }

    #[test]
    fn typed_values() {
        assert_eq!(
            media_type(" application/pidf+xml ; charset=x"),
            "application/pidf+xml"
        );
        assert_eq!(event_package("presence;id=1"), "presence");
        assert_eq!(param("presence; id = 7", "ID"), Some("7"));
        assert_eq!(param("presence", "id"), None);
        assert_eq!(delta_seconds(" 600 "), Some(600));
        assert_eq!(delta_seconds("99999999999"), Some(u32::MAX));
        assert_eq!(delta_seconds("-1"), None);
    }

    #[test]
    fn any_below_or_is_exact() {
        let mut b = [b'a'; 19];
        assert!(!any_below_or(&b, 0x21, b'<'));
        for i in 0..b.len() {
            for (x, hit) in [
                (b' ', true),
                (0, true),
                (b'<', true),
                (0xff, false),
                (b'!', false),
            ] {
                b[i] = x;
                assert_eq!(any_below_or(&b, 0x21, b'<'), hit, "{i} {x}");
                b[i] = b'a';
            }
        }
    }

    #[test]
    fn cseq_bounds() {
        assert_eq!(parse_cseq("1 OPTIONS"), Some((1, "OPTIONS")));
        assert_eq!(parse_cseq("2147483648 OPTIONS"), None);
        assert_eq!(parse_cseq("-1 OPTIONS"), None);
    }
}
