//! Small helpers for checking documents against the usages' XML schemas in Rust (RFC 4825
//! §5.3: the server validates every write). A content model is a sequence of slots, each
//! accepting some element names (and/or a `##other` wildcard) a bounded number of times;
//! this covers the deterministic models of the schemas we serve.

use super::dom::{Element, XML_NS, is_xml_space};
use super::error::XcapError;

/// Unbounded `maxOccurs`.
pub const UNBOUNDED: u32 = u32::MAX;

/// One particle of a sequence.
pub struct Slot<'a> {
    /// Accepted element names: (namespace, local name).
    pub names: &'a [(&'a str, &'a str)],
    /// `##other` relative to this namespace: any element in a namespace other than this one
    /// (and not unqualified).
    pub other_than: Option<&'a str>,
    /// `minOccurs`.
    pub min: u32,
    /// `maxOccurs`.
    pub max: u32,
}

impl Slot<'_> {
    fn accepts(&self, el: &Element) -> bool {
        if self.names.iter().any(|(ns, l)| el.is(ns, l)) {
            return true;
        }
        match (self.other_than, el.ns.as_deref()) {
            (Some(t), Some(ns)) => ns != t,
            _ => false,
        }
    }
}

/// A `schema-validation-error` with a phrase naming the element.
pub fn invalid(el: &Element, why: &str) -> XcapError {
    XcapError::schema(format!("<{}>: {why}", el.qname()))
}

/// Checks the element children of `el` against a sequence of slots (greedy: each child is
/// taken by the current slot while it fits, else by a later one).
pub fn check_children(el: &Element, slots: &[Slot<'_>]) -> Result<(), XcapError> {
    let mut si = 0usize;
    let mut count = 0u32;
    for (_, child) in el.child_elements() {
        loop {
            let Some(slot) = slots.get(si) else {
                return Err(invalid(
                    el,
                    &format!("unexpected child <{}>", child.qname()),
                ));
            };
            if count < slot.max && slot.accepts(child) {
                count += 1;
                break;
            }
            if count < slot.min {
                return Err(invalid(
                    el,
                    &format!("unexpected child <{}>", child.qname()),
                ));
            }
            si += 1;
            count = 0;
        }
    }
    // The slots not reached (and the current one) must allow what they got.
    for (i, slot) in slots.iter().enumerate().skip(si) {
        let got = if i == si { count } else { 0 };
        if got < slot.min {
            return Err(invalid(el, "missing a required child element"));
        }
    }
    Ok(())
}

/// Element-only content: no character data other than whitespace.
pub fn element_only(el: &Element) -> Result<(), XcapError> {
    if el.has_non_ws_text() {
        return Err(invalid(el, "text is not allowed here"));
    }
    Ok(())
}

/// Empty content: no children other than whitespace, comments and PIs.
pub fn empty(el: &Element) -> Result<(), XcapError> {
    element_only(el)?;
    if el.child_elements().next().is_some() {
        return Err(invalid(el, "must be empty"));
    }
    Ok(())
}

/// Simple content: no child elements; returns the text.
pub fn simple(el: &Element) -> Result<String, XcapError> {
    if el.child_elements().next().is_some() {
        return Err(invalid(el, "child elements are not allowed here"));
    }
    Ok(el.text())
}

/// What attributes an element may carry.
pub struct Attrs<'a> {
    /// Unqualified attributes allowed.
    pub allowed: &'a [&'a str],
    /// Unqualified attributes required.
    pub required: &'a [&'a str],
    /// `anyAttribute namespace="##other"` relative to this namespace.
    pub other_than: Option<&'a str>,
    /// `anyAttribute` with any namespace (including unqualified).
    pub any: bool,
    /// `xml:lang` allowed (display-name).
    pub xml_lang: bool,
}

impl Attrs<'_> {
    /// No attributes at all.
    pub const NONE: Attrs<'static> = Attrs {
        allowed: &[],
        required: &[],
        other_than: None,
        any: false,
        xml_lang: false,
    };
}

/// Checks the attributes of `el`.
pub fn check_attrs(el: &Element, rule: &Attrs<'_>) -> Result<(), XcapError> {
    for a in &el.attrs {
        let ok = rule.any
            || match a.ns.as_deref() {
                None => rule.allowed.contains(&&*a.local),
                Some(ns) => {
                    (rule.xml_lang && ns == XML_NS && &*a.local == "lang")
                        || rule.other_than.is_some_and(|t| t != ns)
                }
            };
        if !ok {
            let name = match &a.prefix {
                Some(p) => format!("{p}:{}", a.local),
                None => a.local.to_string(),
            };
            return Err(invalid(el, &format!("attribute '{name}' is not allowed")));
        }
    }
    for r in rule.required {
        if el.attr(r).is_none() {
            return Err(invalid(el, &format!("attribute '{r}' is required")));
        }
    }
    Ok(())
}

/// XML Schema whiteSpace="collapse".
pub fn collapse(s: &str) -> String {
    s.split(is_xml_space)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `xs:boolean`.
pub fn is_boolean(s: &str) -> bool {
    matches!(collapse(s).as_str(), "true" | "false" | "1" | "0")
}

/// `xs:dateTime` (lexical form: `YYYY-MM-DDThh:mm:ss[.s+][Z|(+|-)hh:mm]`).
pub fn is_datetime(s: &str) -> bool {
    let s = collapse(s);
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i = 1;
    }
    let year_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if i - year_start < 4 {
        return false;
    }
    let rest = &s[i..];
    let r = rest.as_bytes();
    if r.len() < 15 || r[0] != b'-' || r[3] != b'-' || r[6] != b'T' || r[9] != b':' || r[12] != b':'
    {
        return false;
    }
    let base = i;
    if !(digits(base + 1..base + 3)
        && digits(base + 4..base + 6)
        && digits(base + 7..base + 9)
        && digits(base + 10..base + 12)
        && digits(base + 13..base + 15))
    {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(99);
    let (mo, d, h, mi, se) = (
        num(base + 1..base + 3),
        num(base + 4..base + 6),
        num(base + 7..base + 9),
        num(base + 10..base + 12),
        num(base + 13..base + 15),
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 24 || mi > 59 || se > 60 {
        return false;
    }
    let mut tail = &s[base + 15..];
    if let Some(frac) = tail.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        tail = &frac[n..];
    }
    match tail.as_bytes() {
        [] | [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// Characters allowed in a URI reference (RFC 3986), with '%' followed by two hex digits.
pub fn is_uri_reference(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
            continue;
        }
        let ok = c.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&c);
        if !ok {
            return false;
        }
        i += 1;
    }
    true
}

/// An absolute `http:` or `https:` URI with an authority.
pub fn is_absolute_http_uri(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &s[7..]
    } else if lower.starts_with("https://") {
        &s[8..]
    } else {
        return false;
    };
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    host_end > 0 && is_uri_reference(s)
}

/// A relative reference (RFC 3986 §4.2) that is not a network-path reference: no scheme,
/// no `//` authority.
pub fn is_relative_http_uri(s: &str) -> bool {
    if s.is_empty() || s.starts_with("//") || !is_uri_reference(s) {
        return false;
    }
    // A ':' in the first segment would make it a scheme.
    let first = s.split(['/', '?', '#']).next().unwrap_or("");
    !first.contains(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes() {
        for ok in [
            "2026-11-26T22:00:00Z",
            "2026-01-01T00:00:00.5+01:00",
            "2026-12-31T23:59:59",
        ] {
            assert!(is_datetime(ok), "{ok}");
        }
        for bad in [
            "2026-13-01T00:00:00Z",
            "yesterday",
            "2026-01-01",
            "2026-01-01T00:00:00+1",
        ] {
            assert!(!is_datetime(bad), "{bad}");
        }
    }

    #[test]
    fn uris() {
        assert!(is_absolute_http_uri(
            "http://xcap.example.com/resource-lists/users/x/index"
        ));
        assert!(is_absolute_http_uri("HTTPS://h/a%20b"));
        assert!(!is_absolute_http_uri("sip:a@b"));
        assert!(!is_absolute_http_uri("http:///x"));
        assert!(!is_absolute_http_uri("http://h/a b"));
        assert!(is_relative_http_uri(
            "resource-lists/users/sip:a@b/index/~~/resource-lists/list%5b1%5d"
        ));
        assert!(!is_relative_http_uri("http://h/x"));
        assert!(!is_relative_http_uri("sip:a@b"));
        assert!(!is_relative_http_uri("a b"));
        assert!(!is_relative_http_uri(""));
    }

    #[test]
    fn booleans() {
        assert!(is_boolean(" true "));
        assert!(is_boolean("0"));
        assert!(!is_boolean("yes"));
    }
}
