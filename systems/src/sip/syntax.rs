//! Strict checks of the header values a UAS relies on (RFC 3261 §25.1 grammar for name-addr,
//! addr-spec and via-parm). The first pass is lenient; these decide between processing a request
//! and answering it 400 with the fault named.

use super::fields::{split_commas, via_sent};
use super::scan::is_token_char;

/// Check `( name-addr / addr-spec ) *( SEMI param )` as in From, To and Contact.
pub fn check_name_addr(value: &str) -> Result<(), &'static str> {
    let v = value.trim();
    let params = if let Some(rest) = v.strip_prefix('"') {
        // quoted display name, with backslash escapes
        let mut chars = rest.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.ok_or("unterminated quoted string")?;
        let after = rest[end + 1..].trim_start();
        angle_addr(after)?
    } else if let Some(lt) = v.find('<') {
        let display = &v[..lt];
        if !display
            .bytes()
            .all(|c| is_token_char(c) || c == b' ' || c == b'\t')
        {
            return Err("display name must be a token list or quoted");
        }
        angle_addr(&v[lt..])?
    } else {
        // addr-spec: a URI with ',', '?' or ';' would need angle brackets (§20)
        let (uri, params) = v
            .split_once(';')
            .map_or((v, ""), |(u, p)| (u.trim_end(), p));
        if uri.contains(['?', ',', ' ', '\t', '>']) || !uri.contains(':') {
            return Err("malformed addr-spec");
        }
        params
    };
    check_params(params)
}

fn angle_addr(s: &str) -> Result<&str, &'static str> {
    let inner = s.strip_prefix('<').ok_or("missing '<'")?;
    let gt = inner.find('>').ok_or("missing '>'")?;
    let uri = &inner[..gt];
    if uri.is_empty() || uri.contains([' ', '\t', '<']) || !uri.contains(':') {
        return Err("malformed URI in angle brackets");
    }
    let rest = inner[gt + 1..].trim_start();
    if rest.is_empty() {
        return Ok("");
    }
    rest.strip_prefix(';').ok_or("text after '>'")
}

/// `*( SEMI generic-param )` with the leading semicolon already removed.
fn check_params(params: &str) -> Result<(), &'static str> {
    if params.trim().is_empty() {
        return Ok(());
    }
    for p in params.split(';') {
        let name = p.split('=').next().unwrap_or("").trim();
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err("empty or malformed parameter");
        }
    }
    Ok(())
}

/// Check every via-parm of a Via header value.
pub fn check_via(value: &str) -> Result<(), &'static str> {
    for parm in split_commas(value) {
        if parm.is_empty() {
            return Err("empty via-parm");
        }
        via_sent(parm).ok_or("malformed via-parm")?;
        let params = parm.split_once(';').map_or("", |(_, p)| p);
        check_params(params)?;
    }
    Ok(())
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
    fn via_cases() {
        assert_eq!(
            check_via("SIP/2.0/UDP a:5060;branch=z9hG4bK1, SIP/2.0/TCP b"),
            Ok(())
        );
        assert!(check_via("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
    }
}
