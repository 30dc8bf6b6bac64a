//! Strict checks of the header values a UAS relies on (RFC 3261 §25.1 grammar for name-addr,
//! addr-spec and via-parm). The first pass is lenient; these decide between processing a request
//! and answering it 400 with the fault named.

use super::fields::{any_below_or, find_byte, parm_sent, split_commas, trim, trim_end, trim_start};
use super::scan::is_token_char;

/// Check `( name-addr / addr-spec ) *( SEMI param )` as in From, To and Contact.
pub fn check_name_addr(value: &str) -> Result<(), &'static str> {
    check_params(name_addr_params(value)?)
}

/// [`check_name_addr`], and the `tag` parameter as [`super::fields::tag`] reads it, from one
/// walk over the parameters where that gives the same tag (no `>` among them).
pub fn check_name_addr_tag(value: &str) -> Result<Option<&str>, &'static str> {
    match plain_name_addr_tag(value) {
        Some(tag) => Ok(tag),
        None => name_addr_tag(value),
    }
}

/// [`check_name_addr_tag`] of any value.
fn name_addr_tag(value: &str) -> Result<Option<&str>, &'static str> {
    let params = name_addr_params(value)?;
    if find_byte(params.as_bytes(), b'>').is_some() {
        check_params(params)?;
        return Ok(super::fields::tag(value));
    }
    if trim(params).is_empty() {
        return Ok(None);
    }
    let mut tag = None;
    for p in super::fields::split_byte(params, b';') {
        let eq = find_byte(p.as_bytes(), b'=');
        let name = trim(eq.map_or(p, |i| &p[..i]));
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(MALFORMED_PARAMETER);
        }
        if tag.is_none() && name.eq_ignore_ascii_case("tag") {
            tag = Some(eq.map(|i| super::fields::trim_quotes(trim(&p[i + 1..]))));
        }
    }
    Ok(tag.flatten())
}

/// [`check_name_addr_tag`] of the usual From or To that passes: `<uri>` with nothing around
/// it, then `;name[=value]` parameters without white space, quotes or `>`, in one walk. None
/// for anything else (the general walk then answers, the same for every value this accepts).
fn plain_name_addr_tag(value: &str) -> Option<Option<&str>> {
    let b = value.as_bytes();
    if b.first() != Some(&b'<') || b.last().is_none_or(|&c| c <= b' ' || c >= 0x80) {
        return None;
    }
    // the URI: up to the first '>', with a ':' and no white space (nor any control) or '<'
    let gt = find_byte(b, b'>')?;
    let uri = &b[1..gt];
    if uri.is_empty() || find_byte(uri, b':').is_none() || any_below_or(uri, b' ' + 1, b'<') {
        return None;
    }
    let mut i = gt + 1;
    let mut tag = None;
    if i < b.len() {
        if b[i] != b';' {
            return None;
        }
        // parameters: a token name, then '=' and a value up to the next ';'
        loop {
            i += 1;
            let name_at = i;
            while i < b.len() && is_token_char(b[i]) {
                i += 1;
            }
            let name = &value[name_at..i];
            if name.is_empty() {
                return None;
            }
            let value_at = match b.get(i) {
                None | Some(b';') => None,
                Some(b'=') => Some(i + 1),
                Some(_) => return None,
            };
            if let Some(at) = value_at {
                i = at;
                while i < b.len() && PLAIN_VALUE[b[i] as usize] {
                    i += 1;
                }
                if i < b.len() && b[i] != b';' {
                    return None;
                }
            }
            if tag.is_none() && name.eq_ignore_ascii_case("tag") {
                tag = Some(value_at.map(|at| &value[at..i]));
            }
            if i >= b.len() {
                break;
            }
        }
    }
    Some(tag.flatten())
}

/// Bytes of a parameter value [`plain_name_addr_tag`] takes: not `;`, and nothing a tag's
/// value would be trimmed of (white space, quotes) or read differently by (`>`).
pub(crate) const PLAIN_VALUE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b > b' ' && b < 0x80 && !matches!(b, b';' | b'>' | b'"');
        c += 1;
    }
    t
};

/// The parameters after a name-addr or addr-spec whose syntax is checked here (the text after
/// the `;` that starts them), not yet checked themselves.
fn name_addr_params(value: &str) -> Result<&str, &'static str> {
    let v = trim(value);
    let b = v.as_bytes();
    let params = if let Some(rest) = v.strip_prefix('"') {
        // quoted display name, with backslash escapes (an escaped character is skipped whole:
        // its bytes past the first are never a quote or a backslash)
        let rb = rest.as_bytes();
        let mut i = 0;
        let end = loop {
            let Some(j) = rb
                .get(i..)
                .and_then(|r| r.iter().position(|&c| c == b'\\' || c == b'"'))
            else {
                return Err("unterminated quoted string");
            };
            let j = i + j;
            if rb[j] == b'"' {
                break j;
            }
            i = j + 2;
        };
        let after = trim_start(&rest[end + 1..]);
        angle_addr(after)?
    } else if let Some(lt) = find_byte(b, b'<') {
        let display = &b[..lt];
        if !display
            .iter()
            .all(|&c| is_token_char(c) || c == b' ' || c == b'\t')
        {
            return Err("display name must be a token list or quoted");
        }
        angle_addr(&v[lt..])?
    } else {
        // addr-spec: a URI with ',', '?' or ';' would need angle brackets (§20)
        let (uri, params) = match find_byte(b, b';') {
            Some(i) => (trim_end(&v[..i]), &v[i + 1..]),
            None => (v, ""),
        };
        let ub = uri.as_bytes();
        if ub
            .iter()
            .any(|&c| matches!(c, b'?' | b',' | b' ' | b'\t' | b'>'))
            || find_byte(ub, b':').is_none()
        {
            return Err("malformed addr-spec");
        }
        params
    };
    Ok(params)
}

fn angle_addr(s: &str) -> Result<&str, &'static str> {
    let inner = s.strip_prefix('<').ok_or("missing '<'")?;
    let gt = find_byte(inner.as_bytes(), b'>').ok_or("missing '>'")?;
    let uri = &inner.as_bytes()[..gt];
    if uri.is_empty()
        || uri.iter().any(|&c| matches!(c, b' ' | b'\t' | b'<'))
        || find_byte(uri, b':').is_none()
    {
        return Err("malformed URI in angle brackets");
    }
    let rest = trim_start(&inner[gt + 1..]);
    if rest.is_empty() {
        return Ok("");
    }
    rest.strip_prefix(';').ok_or("text after '>'")
}

/// What [`check_params`] says of a bad parameter list.
pub const MALFORMED_PARAMETER: &str = "empty or malformed parameter";

/// `*( SEMI generic-param )` with the leading semicolon already removed.
pub fn check_params(params: &str) -> Result<(), &'static str> {
    if trim(params).is_empty() {
        return Ok(());
    }
    for p in super::fields::split_byte(params, b';') {
        let name = match find_byte(p.as_bytes(), b'=') {
            Some(i) => &p[..i],
            None => p,
        };
        let name = trim(name);
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(MALFORMED_PARAMETER);
        }
    }
    Ok(())
}

/// Check every via-parm of a Via header value.
pub fn check_via(value: &str) -> Result<(), &'static str> {
    for parm in split_commas(value) {
        check_via_parm(parm)?;
    }
    Ok(())
}

/// Check one via-parm (cut at its commas and trimmed).
pub fn check_via_parm(parm: &str) -> Result<(), &'static str> {
    if parm.is_empty() {
        return Err("empty via-parm");
    }
    parm_sent(parm).ok_or("malformed via-parm")?;
    check_parm_params(parm)
}

/// The parameter check of a via-parm whose sent-protocol and sent-by were read already.
pub fn check_parm_params(parm: &str) -> Result<(), &'static str> {
    let params = find_byte(parm.as_bytes(), b';').map_or("", |i| &parm[i + 1..]);
    check_params(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_addr_cases() {
        for ok in [
            "<sip:a@b>;tag=1",
            "\"A \\\"q\\\" B\" <sip:a@b>",
            "Alice Smith <sip:a@b>",
            "sip:a@b;tag=2",
            "  \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com> ; tag = 98asjd8",
        ] {
            assert_eq!(check_name_addr(ok), Ok(()), "{ok}");
        }
        for bad in [
            "\"Mr. J. User <sip:j.user@example.com>",
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "\"Watson, Thomas\" < sip:t.watson@example.org >",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "\"Joe\" <sip:joe@example.org>;;;;",
        ] {
            assert!(check_name_addr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_plain_walk_agrees_with_the_general_one() {
        let seeds = [
            "<sip:a@b>;tag=1",
            "<sip:alice@example.com>",
            "<sip:a@b;lr>;tag=x;foo;TAG=y",
            "<sip:a@b>;x=1;tag",
            "<tel:+1>;tag=abc;q=0.5",
        ];
        let subs = [
            "", " ", "\t", "\x0b", ";", "=", "<", ">", "\"", ":", "@", "é", ",", "T", "\r",
        ];
        for seed in seeds {
            for i in 0..seed.len() {
                for sub in subs {
                    for keep in [false, true] {
                        let v = format!(
                            "{}{sub}{}",
                            &seed[..i],
                            &seed[if keep { i } else { i + 1 }..]
                        );
                        if let Some(fast) = plain_name_addr_tag(&v) {
                            assert_eq!(Ok(fast), name_addr_tag(&v), "{v:?}");
                        }
                    }
                }
            }
        }
        assert_eq!(plain_name_addr_tag("<sip:a@b>;tag=1"), Some(Some("1")));
    }

    #[test]
    fn via_cases() {
        assert_eq!(
            check_via("SIP/2.0/UDP a:5060;branch=z9hG4bK1, SIP/2.0/TCP b"),
            Ok(())
        );
        assert!(check_via("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
    }
}
