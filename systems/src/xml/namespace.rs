//! Namespaces in XML 1.0: the reserved `xml` and `xmlns` prefixes and names (§3), and which
//! declarations are allowed; each user keeps its own scope (a bit set per root binding in PIDF,
//! a binding stack in the XCAP DOM) and asks these rules.

use super::scan::same;

/// The namespace the `xml` prefix is bound to (Namespaces in XML §3).
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// The namespace of `xmlns` declarations (never declared, never used for content).
pub const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// What a valid namespace declaration does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declaration {
    /// Binds the prefix (or, for an empty prefix, the default namespace; an empty name
    /// undeclares it) in the element's scope.
    Bind,
    /// `xmlns:xml` with its own namespace: allowed, and changes nothing.
    Redundant,
}

/// Checks the declaration of `prefix` (empty: the default namespace) as `name` (its value with
/// references expanded) against Namespaces in XML §3: `xmlns` is never declared, `xml` only as
/// itself, their namespace names are bound to no other prefix, and only the default namespace
/// may be undeclared (NSC: No Prefix Undeclaring). Returns the fault's reason when it is not
/// allowed.
pub fn check_declaration(prefix: &[u8], name: &[u8]) -> Result<Declaration, &'static str> {
    if same(prefix, b"xmlns") {
        return Err("reserved prefix xmlns declared");
    }
    if same(prefix, b"xml") {
        return match name == XML_NS.as_bytes() {
            true => Ok(Declaration::Redundant),
            false => Err("reserved prefix xml rebound"),
        };
    }
    if name == XML_NS.as_bytes() || name == XMLNS_NS.as_bytes() {
        return Err("reserved namespace bound");
    }
    if !prefix.is_empty() && name.is_empty() {
        return Err("empty namespace name");
    }
    Ok(Declaration::Bind)
}

/// Compares a namespace name as written (possibly with references) to an expected one.
pub fn ns_is(raw: &[u8], expected: &str) -> bool {
    raw == expected.as_bytes()
        // a reference is longer than the character it stands for
        || (raw.len() > expected.len()
            && raw.contains(&b'&')
            && std::str::from_utf8(raw)
                .ok()
                .and_then(super::scan::unescape)
                .is_some_and(|v| v == expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_prefixes_and_names() {
        assert_eq!(check_declaration(b"p", b"urn:x"), Ok(Declaration::Bind));
        assert_eq!(check_declaration(b"", b""), Ok(Declaration::Bind));
        assert_eq!(
            check_declaration(b"xml", XML_NS.as_bytes()),
            Ok(Declaration::Redundant)
        );
        assert!(check_declaration(b"xml", b"urn:x").is_err());
        assert!(check_declaration(b"xmlns", XMLNS_NS.as_bytes()).is_err());
        assert!(check_declaration(b"p", XML_NS.as_bytes()).is_err());
        assert!(check_declaration(b"", XMLNS_NS.as_bytes()).is_err());
        assert!(check_declaration(b"p", b"").is_err());
        assert!(ns_is(b"urn:a&amp;b", "urn:a&b"));
    }
}
