//! Reading a list NOTIFY (RFC 4662 §5): a `multipart/related` body (RFC 2387) whose root is
//! the RLMI document and whose other parts are the members' PIDF documents. Read in place, with
//! no allocation: the root says full or partial state and its instances' states, and each PIDF
//! part is handed over with its `entity` and loadgen's `<note>` token, from which the run
//! tells new member state from old and measures PUBLISH → list NOTIFY.

use crate::msgs::read_token;
use crate::sipmsg::{find_bytes, parse_u64};

/// What the RLMI root of one list NOTIFY says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListBody {
    /// `fullState="true"`.
    pub full: bool,
    pub version: u32,
    /// `<resource>` elements, and their `<instance>`s by state.
    pub resources: u32,
    pub active: u32,
    pub pending: u32,
    pub terminated: u32,
    /// Parts other than the root and PIDF documents (e.g. a nested list's).
    pub other_parts: u32,
}

/// The longest boundary RFC 2046 §5.1.1 allows.
const MAX_BOUNDARY: usize = 70;

/// Read a list NOTIFY's body of type `content_type`; `part(entity, token)` is called for each
/// PIDF part, in order. Err says why the body is not a list NOTIFY's.
pub fn read(
    body: &[u8],
    content_type: &[u8],
    mut part: impl FnMut(&[u8], Option<(u32, u64)>),
) -> Result<ListBody, &'static str> {
    if !starts_with_ignore_case(content_type, b"multipart/related") {
        return Err("not multipart/related");
    }
    let b = param(content_type, b"boundary").ok_or("no boundary")?;
    if b.is_empty() || b.len() > MAX_BOUNDARY {
        return Err("bad boundary");
    }
    // "\r\n--" boundary: every delimiter but possibly the first
    let mut delim = [0u8; MAX_BOUNDARY + 4];
    delim[..4].copy_from_slice(b"\r\n--");
    delim[4..4 + b.len()].copy_from_slice(b);
    let delim = &delim[..4 + b.len()];
    let mut at = if body.starts_with(&delim[2..]) {
        delim.len() - 2
    } else {
        find_bytes(body, delim).ok_or("no delimiter")? + delim.len()
    };
    let mut out = ListBody::default();
    let mut root = true;
    loop {
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            break; // the close delimiter
        }
        let line = find_bytes(rest, b"\r\n").ok_or("truncated")? + 2;
        let start = at + line;
        let end = start + find_bytes(&body[start..], delim).ok_or("no close delimiter")?;
        let (ctype, content) = split_part(&body[start..end]).ok_or("part without headers")?;
        if root {
            if find_ignore_case(ctype, b"application/rlmi+xml").is_none() {
                return Err("root is not RLMI");
            }
            rlmi(content, &mut out);
            root = false;
        } else if find_ignore_case(ctype, b"application/pidf+xml").is_some() {
            part(entity(content).unwrap_or(b""), read_token(content));
        } else {
            out.other_parts += 1;
        }
        at = end + delim.len();
    }
    if root {
        return Err("no root part");
    }
    Ok(out)
}

/// A part's Content-Type value and its content.
fn split_part(p: &[u8]) -> Option<(&[u8], &[u8])> {
    let (head, content) = if p.starts_with(b"\r\n") {
        (&p[..0], &p[2..])
    } else {
        let e = find_bytes(p, b"\r\n\r\n")?;
        (&p[..e], &p[e + 4..])
    };
    let ctype = head
        .split(|&c| c == b'\n')
        .find_map(|l| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            let colon = l.iter().position(|&c| c == b':')?;
            l[..colon]
                .trim_ascii()
                .eq_ignore_ascii_case(b"content-type")
                .then(|| l[colon + 1..].trim_ascii())
        })
        .unwrap_or(b"");
    Some((ctype, content))
}

/// The counts of an RLMI document (RFC 4662 §5.2), by plain scans of its elements.
fn rlmi(doc: &[u8], out: &mut ListBody) {
    // the root element's attributes (not the XML declaration's version)
    let list = find_bytes(doc, b"<list").map_or(doc, |i| &doc[i..]);
    let list = &list[..list.iter().position(|&c| c == b'>').unwrap_or(list.len())];
    out.full = attr(list, b"fullState=\"").is_some_and(|v| v == b"true" || v == b"1");
    out.version = attr(list, b" version=\"").map_or(0, |v| parse_u64(v).0 as u32);
    let mut rest = doc;
    while let Some(i) = find_bytes(rest, b"<resource ") {
        out.resources += 1;
        rest = &rest[i + 10..];
    }
    let mut rest = doc;
    while let Some(i) = find_bytes(rest, b"<instance ") {
        rest = &rest[i + 10..];
        let end = rest.iter().position(|&c| c == b'>').unwrap_or(rest.len());
        match attr(&rest[..end], b"state=\"") {
            Some(b"active") => out.active += 1,
            Some(b"pending") => out.pending += 1,
            _ => out.terminated += 1,
        }
    }
}

/// The value of the first attribute opened by `open` (`name="`).
fn attr<'a>(doc: &'a [u8], open: &[u8]) -> Option<&'a [u8]> {
    let at = find_bytes(doc, open)? + open.len();
    let len = doc[at..].iter().position(|&c| c == b'"')?;
    Some(&doc[at..at + len])
}

/// The `entity` of a PIDF document (its `<presence>` element's).
fn entity(doc: &[u8]) -> Option<&[u8]> {
    let at = find_bytes(doc, b"<presence")?;
    attr(&doc[at..], b"entity=\"")
}

/// A media type parameter (`;name=value` or `;name="value"`).
fn param<'a>(v: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut rest = v;
    loop {
        let semi = rest.iter().position(|&c| c == b';')?;
        rest = &rest[semi + 1..];
        let t = rest.trim_ascii_start();
        if t.len() > name.len() && t[..name.len()].eq_ignore_ascii_case(name) {
            let after = t[name.len()..].trim_ascii_start();
            if let Some(val) = after.strip_prefix(b"=") {
                let val = val.trim_ascii_start();
                return Some(match val.strip_prefix(b"\"") {
                    Some(q) => &q[..q.iter().position(|&c| c == b'"').unwrap_or(q.len())],
                    None => {
                        let end = val.iter().position(|&c| c == b';').unwrap_or(val.len());
                        val[..end].trim_ascii_end()
                    }
                });
            }
        }
        // skip a quoted value that may hold a ';'
        if let Some(q) = rest.iter().position(|&c| c == b'"')
            && rest[..q].iter().all(|&c| c != b';')
        {
            let close = rest[q + 1..].iter().position(|&c| c == b'"')?;
            rest = &rest[q + 1 + close + 1..];
        }
    }
}

fn starts_with_ignore_case(v: &[u8], p: &[u8]) -> bool {
    v.len() >= p.len() && v[..p.len()].eq_ignore_ascii_case(p)
}

fn find_ignore_case(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msgs::Templates;
    // the server's own framing
    use presenced_systems::formats::rlmi::{
        CidForm, Instance, InstanceState, Resource, content_type, multipart, part, write,
    };

    fn pidf(p: u32, seq: u32, t: u64) -> Vec<u8> {
        let tpl = Templates::new(1, "example.com", "", &[], false);
        let mut b = Vec::new();
        tpl.pidf(&mut b, p, seq, t);
        b
    }

    #[test]
    fn reads_the_servers_list_notify() {
        let mut rlmi = Vec::new();
        let res = [
            Resource {
                uri: "sip:p1@example.com",
                name: None,
                instance: Some(Instance {
                    id: "1",
                    state: InstanceState::Active,
                    cid: Some("a@lg"),
                }),
            },
            Resource {
                uri: "sip:p2@example.com",
                name: None,
                instance: Some(Instance {
                    id: "2",
                    state: InstanceState::Pending,
                    cid: None,
                }),
            },
            Resource {
                uri: "sip:p3@example.com",
                name: None,
                instance: Some(Instance {
                    id: "3",
                    state: InstanceState::Active,
                    cid: Some("c@lg"),
                }),
            },
        ];
        write(&mut rlmi, "sip:w1-list@example.com", 4, false, None, res);
        let parts = [
            part(
                "a@lg",
                CidForm::Bracketed,
                "application/pidf+xml",
                &pidf(0, 3, 99),
            ),
            part(
                "c@lg",
                CidForm::Bracketed,
                "application/pidf+xml",
                &pidf(2, 7, 5),
            ),
        ];
        let body = multipart("b1x", "root@lg", CidForm::Bracketed, &rlmi, &parts);
        let ct = content_type("b1x", "root@lg");
        let mut seen = Vec::new();
        let r = read(&body, ct.as_bytes(), |e, t| seen.push((e.to_vec(), t))).unwrap();
        assert_eq!(
            r,
            ListBody {
                full: false,
                version: 4,
                resources: 3,
                active: 2,
                pending: 1,
                terminated: 0,
                other_parts: 0
            }
        );
        assert_eq!(
            seen,
            vec![
                (b"sip:p1@example.com".to_vec(), Some((3, 99))),
                (b"sip:p3@example.com".to_vec(), Some((7, 5)))
            ]
        );
        // a quoted boundary reads the same; a plain PIDF body is not a list NOTIFY's
        let quoted = ct.replace("boundary=b1x", "boundary=\"b1x\"");
        assert_eq!(
            read(&body, quoted.as_bytes(), |_, _| {}).unwrap().resources,
            3
        );
        assert!(read(&pidf(0, 1, 1), b"application/pidf+xml", |_, _| {}).is_err());
        assert!(read(&body, b"multipart/related;boundary=zzz", |_, _| {}).is_err());
    }

    #[test]
    fn media_type_parameters() {
        let v = b"multipart/related;type=\"application/rlmi+xml\";start=\"<x;y>\";boundary=TOK";
        assert_eq!(param(v, b"boundary"), Some(&b"TOK"[..]));
        assert_eq!(param(v, b"start"), Some(&b"<x;y>"[..]));
        assert_eq!(
            param(b"multipart/related; boundary = \"a b\" ", b"boundary"),
            Some(&b"a b"[..])
        );
        assert_eq!(param(b"multipart/related", b"boundary"), None);
    }
}
