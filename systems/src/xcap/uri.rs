//! XCAP URIs (RFC 4825 §6): `<auid>/global/<doc>` or `<auid>/users/<xui>/<doc>`, optionally
//! followed by `/~~/<node selector>`, with namespace bindings in the query (§6.4).

use super::error::XcapError;
use crate::percent;
use std::fmt::Write as _;

/// The tree a document lives in (RFC 4825 §6.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `global`: documents shared by all users of the usage.
    Global,
    /// `users/{XUI}`, the XUI percent-decoded, e.g. "sip:alice@example.com".
    User(String),
}

/// A parsed XCAP request target, below the XCAP root.
#[derive(Debug, Clone)]
pub struct XcapUri {
    /// Application Unique ID (RFC 4825 §5.1), the first path segment.
    pub auid: String,
    /// `global` or `users/{xui}`.
    pub scope: Scope,
    /// Document path below the scope, decoded, e.g. "index" or "dir/buddies.xml".
    pub doc_path: String,
    /// The node selector after "~~" (decoded text), if any.
    pub node: Option<String>,
    /// Namespace bindings from the query's xmlns() pointer parts (RFC 4825 §6.4).
    pub ns_bindings: Vec<(String, String)>,
}

impl XcapUri {
    /// Parse the request target below the XCAP root: `path` is what follows the root path
    /// (e.g. "/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5b@name=%22friends%22%5d"),
    /// still percent-encoded; `query` is the raw query string, if any.
    ///
    /// Errors: 404 when the path cannot name a document (no AUID, no `global`/`users`, no
    /// XUI, no document name, empty segments); 400 for bad percent-encoding or a malformed
    /// `xmlns()` query.
    pub fn parse(path: &str, query: Option<&str>) -> Result<XcapUri, XcapError> {
        // Leading empty segments are dropped: a client joining a root configured with a
        // trailing '/' to a path starting with '/' sends "//"; no AUID is empty, so that can
        // name nothing else.
        let path = path.trim_start_matches('/');
        let mut raw_segments = path.split('/');
        let mut doc_raw: Vec<&str> = Vec::with_capacity(4);
        let mut node_raw: Option<Vec<&str>> = None;
        for seg in raw_segments.by_ref() {
            // RFC 4825 §6: the "~~" segment separates the document selector from the node
            // selector ("~" is unreserved, so "%7E%7E" means the same).
            if seg == "~~" || (seg.len() > 2 && percent::decode(seg).is_ok_and(|s| s == "~~")) {
                node_raw = Some(raw_segments.by_ref().collect());
                break;
            }
            doc_raw.push(seg);
        }
        let mut segs = doc_raw.into_iter();
        let auid = decode_segment(segs.next().unwrap_or(""))?;
        if auid.is_empty() {
            return Err(XcapError::not_found("no application usage in the URI"));
        }
        let scope = match segs.next() {
            Some("global") => Scope::Global,
            Some("users") => {
                // The XUI is one segment: a '/' in it must be percent-encoded (§6.2).
                let xui = decode_segment(segs.next().unwrap_or(""))?;
                if xui.is_empty() {
                    return Err(XcapError::not_found("no XUI in the URI"));
                }
                Scope::User(xui)
            }
            _ => return Err(XcapError::not_found("neither global nor users tree")),
        };
        let mut doc_path = String::new();
        for (i, seg) in segs.enumerate() {
            let seg = decode_segment(seg)?;
            if seg.is_empty() || seg == "." || seg == ".." || seg.contains('/') {
                return Err(XcapError::not_found("malformed document path"));
            }
            if i > 0 {
                doc_path.push('/');
            }
            doc_path.push_str(&seg);
        }
        if doc_path.is_empty() {
            return Err(XcapError::not_found("no document in the URI"));
        }
        let node = match node_raw {
            None => None,
            Some(parts) => {
                let joined = parts.join("/");
                let text = percent::decode(&joined)
                    .map_err(|_| XcapError::bad_request("bad percent-encoding in node selector"))?
                    .into_owned();
                if text.is_empty() {
                    return Err(XcapError::not_found("empty node selector"));
                }
                Some(text)
            }
        };
        let ns_bindings = match query {
            Some(q) if !q.is_empty() => parse_xmlns_query(q)?,
            _ => Vec::new(),
        };
        Ok(XcapUri {
            auid,
            scope,
            doc_path,
            node,
            ns_bindings,
        })
    }

    /// The document's own URI path below the root (no node selector): "<auid>/users/<xui>/<doc>" or "<auid>/global/<doc>", with the XUI percent-encoded as needed; used as the `sel` in xcap-diff and as a storage key.
    pub fn document_selector(&self) -> String {
        let mut s = String::with_capacity(self.auid.len() + self.doc_path.len() + 48);
        encode_segment_into(&mut s, &self.auid);
        match &self.scope {
            Scope::Global => s.push_str("/global/"),
            Scope::User(xui) => {
                s.push_str("/users/");
                encode_segment_into(&mut s, xui);
                s.push('/');
            }
        }
        for (i, seg) in self.doc_path.split('/').enumerate() {
            if i > 0 {
                s.push('/');
            }
            encode_segment_into(&mut s, seg);
        }
        s
    }

    /// The scope's directory below the root: "<auid>/users/<xui>" or "<auid>/global".
    pub fn scope_selector(&self) -> String {
        let mut s = String::new();
        encode_segment_into(&mut s, &self.auid);
        match &self.scope {
            Scope::Global => s.push_str("/global"),
            Scope::User(xui) => {
                s.push_str("/users/");
                encode_segment_into(&mut s, xui);
            }
        }
        s
    }

    /// The XUI, or "" for the global tree.
    pub fn xui(&self) -> &str {
        match &self.scope {
            Scope::Global => "",
            Scope::User(x) => x,
        }
    }
}

/// Decodes one path segment; 400 on bad escapes or non-UTF-8 results.
fn decode_segment(seg: &str) -> Result<String, XcapError> {
    percent::decode(seg)
        .map(|d| d.into_owned())
        .map_err(|_| XcapError::bad_request("bad percent-encoding in URI"))
}

/// RFC 3986 pchar minus '%' (unreserved, sub-delims, ':' and '@').
fn is_pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

/// Appends `s` percent-encoded as one path segment (everything but pchar is escaped).
pub fn encode_segment_into(out: &mut String, s: &str) {
    for &b in s.as_bytes() {
        if is_pchar(b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Appends a node selector percent-encoded for a URI path: '/' separates steps and stays;
/// '[', ']', '"' and everything else outside pchar is escaped.
pub fn encode_node_selector_into(out: &mut String, s: &str) {
    for &b in s.as_bytes() {
        if is_pchar(b) || b == b'/' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Parses the query of RFC 4825 §6.4: a sequence of XPointer `xmlns(prefix=namespace)`
/// parts (XPointer xmlns() scheme, with `^` escaping `(`, `)` and `^`).
fn parse_xmlns_query(raw: &str) -> Result<Vec<(String, String)>, XcapError> {
    let bad = || XcapError::bad_request("malformed xmlns() query");
    let q = percent::decode(&raw.replace('+', "%2B"))
        .map_err(|_| bad())?
        .into_owned();
    let mut out = Vec::new();
    let mut rest = q.trim();
    while !rest.is_empty() {
        let open = rest.find('(').ok_or_else(bad)?;
        let scheme = rest[..open].trim();
        // Scheme data runs to the matching unescaped ')' (balanced parentheses allowed).
        let mut depth = 1usize;
        let mut data = String::new();
        let mut chars = rest[open + 1..].char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '^' => {
                    let (_, n) = chars.next().ok_or_else(bad)?;
                    if !matches!(n, '(' | ')' | '^') {
                        return Err(bad());
                    }
                    data.push(n);
                }
                '(' => {
                    depth += 1;
                    data.push(c);
                }
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(open + 1 + i);
                        break;
                    }
                    data.push(c);
                }
                c => data.push(c),
            }
        }
        let end = end.ok_or_else(bad)?;
        if scheme == "xmlns" {
            let (prefix, ns) = data.split_once('=').ok_or_else(bad)?;
            let prefix = prefix.trim();
            let ns = ns.trim();
            if !super::dom::is_ncname(prefix) || ns.is_empty() {
                return Err(bad());
            }
            out.push((prefix.to_string(), ns.to_string()));
        } else if scheme.is_empty() {
            return Err(bad());
        }
        // Other XPointer schemes carry no bindings for XCAP; they are ignored.
        rest = rest[end + 1..].trim_start();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_document_with_node_selector() {
        let u = XcapUri::parse(
            "/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5b@name=%22friends%22%5d",
            None,
        )
        .unwrap();
        assert_eq!(u.auid, "resource-lists");
        assert_eq!(u.scope, Scope::User("sip:alice@example.com".into()));
        assert_eq!(u.doc_path, "index");
        assert_eq!(
            u.node.as_deref(),
            Some("resource-lists/list[@name=\"friends\"]")
        );
        assert_eq!(
            u.document_selector(),
            "resource-lists/users/sip:alice@example.com/index"
        );
    }

    #[test]
    fn xui_with_encoded_slash_and_nested_doc() {
        let u = XcapUri::parse(
            "rls-services/users/tel%2Fweird%20x/dir/my%20buddies.xml",
            None,
        )
        .unwrap();
        assert_eq!(u.scope, Scope::User("tel/weird x".into()));
        assert_eq!(u.doc_path, "dir/my buddies.xml");
        assert_eq!(
            u.document_selector(),
            "rls-services/users/tel%2Fweird%20x/dir/my%20buddies.xml"
        );
        let again = XcapUri::parse(&u.document_selector(), None).unwrap();
        assert_eq!(again.scope, u.scope);
        assert_eq!(again.doc_path, u.doc_path);
    }

    #[test]
    fn global_document() {
        let u = XcapUri::parse("/xcap-caps/global/index", None).unwrap();
        assert_eq!(u.scope, Scope::Global);
        assert_eq!(u.doc_path, "index");
        assert!(u.node.is_none());
        assert_eq!(u.document_selector(), "xcap-caps/global/index");
    }

    #[test]
    fn selector_slash_inside_attribute_value_survives() {
        let u = XcapUri::parse(
            "/resource-lists/users/x/index/~~/resource-lists/list/entry%5b@uri=%22http:%2F%2Fa%2Fb%22%5d",
            None,
        )
        .unwrap();
        assert_eq!(
            u.node.as_deref(),
            Some("resource-lists/list/entry[@uri=\"http://a/b\"]")
        );
    }

    #[test]
    fn doubled_slash_after_the_root() {
        let u = XcapUri::parse("//resource-lists/users/sip:a@x/index", None).unwrap();
        assert_eq!(u.document_selector(), "resource-lists/users/sip:a@x/index");
        assert_eq!(XcapUri::parse("//", None).unwrap_err().status, 404);
    }

    #[test]
    fn xmlns_query() {
        let u = XcapUri::parse(
            "/pres-rules/users/x/index/~~/cp:ruleset",
            Some("xmlns(cp=urn:ietf:params:xml:ns:common-policy)xmlns(pr=urn:ietf:params:xml:ns:pres-rules)"),
        )
        .unwrap();
        assert_eq!(
            u.ns_bindings,
            vec![
                (
                    "cp".to_string(),
                    "urn:ietf:params:xml:ns:common-policy".to_string()
                ),
                (
                    "pr".to_string(),
                    "urn:ietf:params:xml:ns:pres-rules".to_string()
                )
            ]
        );
        let enc = XcapUri::parse("/pres-rules/users/x/index", Some("xmlns%28a=urn:x%29")).unwrap();
        assert_eq!(enc.ns_bindings, vec![("a".into(), "urn:x".into())]);
    }

    #[test]
    fn errors() {
        assert_eq!(XcapUri::parse("/", None).unwrap_err().status, 404);
        assert_eq!(XcapUri::parse("/rl/other/x", None).unwrap_err().status, 404);
        assert_eq!(XcapUri::parse("/rl/users/", None).unwrap_err().status, 404);
        assert_eq!(XcapUri::parse("/rl/users/x", None).unwrap_err().status, 404);
        assert_eq!(
            XcapUri::parse("/rl/users/x/", None).unwrap_err().status,
            404
        );
        assert_eq!(
            XcapUri::parse("/rl/users/x/a//b", None).unwrap_err().status,
            404
        );
        assert_eq!(
            XcapUri::parse("/rl/global/index/~~", None)
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(
            XcapUri::parse("/rl/users/%zz/i", None).unwrap_err().status,
            400
        );
        assert_eq!(
            XcapUri::parse("/rl/users/x/i", Some("xmlns(a"))
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            XcapUri::parse("/rl/users/x/i", Some("xmlns(1a=urn:x)"))
                .unwrap_err()
                .status,
            400
        );
    }
}
