//! XCAP errors (RFC 4825 §11): the HTTP status, the `<xcap-error>` condition carried by 409
//! responses, and the `application/xcap-error+xml` body that describes it.

/// Namespace of `application/xcap-error+xml` bodies (RFC 4825 §11.2).
pub const XCAP_ERROR_NS: &str = "urn:ietf:params:xml:ns:xcap-error";

/// MIME type of the 409 body.
pub const XCAP_ERROR_MIME: &str = "application/xcap-error+xml";

/// RFC 4825 §11 conditions (409 body `application/xcap-error+xml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCondition {
    /// §11.3 `<not-well-formed>`: the body is not a well-formed XML document.
    NotWellFormed,
    /// `<not-xml-frag>`: an element PUT whose body is not exactly one well-formed element.
    NotXmlFrag,
    /// `<no-parent>`: the element, attribute or document to insert has no parent to go in.
    /// `ancestor` is the closest existing ancestor, as a URI relative to the XCAP root
    /// (see [`XcapError::body_with_root`] to make it absolute).
    NoParent {
        /// Relative URI (document selector, optionally `/~~/` and a node selector).
        ancestor: Option<String>,
    },
    /// `<schema-validation-error>`: the resulting document would not match the usage's schema.
    SchemaValidationError,
    /// `<not-xml-att-value>`: an attribute PUT whose body is not a valid attribute value.
    NotXmlAttValue,
    /// `<cannot-insert>`: after the PUT, the request URI would not select what was put.
    CannotInsert,
    /// `<cannot-delete>`: after the DELETE, the request URI would still select something.
    CannotDelete,
    /// `<uniqueness-failure>`: each (field node selector, suggested alternative values).
    UniquenessFailure {
        /// One `<exists field=...>` per value that is not unique, with `<alt-value>`s.
        exists: Vec<(String /*field*/, Vec<String> /*alt-values*/)>,
    },
    /// `<constraint-failure>`: a data constraint of the usage, not expressed by the schema.
    ConstraintFailure {
        /// Human text put in the `phrase` attribute (falls back to the error's phrase).
        phrase: Option<String>,
    },
    /// `<not-utf-8>`: the request body (or the result) is not UTF-8.
    NotUtf8,
}

impl ErrorCondition {
    /// The element name of this condition in the xcap-error namespace.
    pub fn element_name(&self) -> &'static str {
        match self {
            ErrorCondition::NotWellFormed => "not-well-formed",
            ErrorCondition::NotXmlFrag => "not-xml-frag",
            ErrorCondition::NoParent { .. } => "no-parent",
            ErrorCondition::SchemaValidationError => "schema-validation-error",
            ErrorCondition::NotXmlAttValue => "not-xml-att-value",
            ErrorCondition::CannotInsert => "cannot-insert",
            ErrorCondition::CannotDelete => "cannot-delete",
            ErrorCondition::UniquenessFailure { .. } => "uniqueness-failure",
            ErrorCondition::ConstraintFailure { .. } => "constraint-failure",
            ErrorCondition::NotUtf8 => "not-utf-8",
        }
    }
}

/// An XCAP failure: the HTTP status, and for 409 the condition of the error body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {phrase}")]
pub struct XcapError {
    /// HTTP status: 400, 404, 405, 409, 415, 500 ...
    pub status: u16,
    /// The RFC 4825 §11 condition (409 only).
    pub condition: Option<ErrorCondition>,
    /// Short human text (for logs and non-409 bodies).
    pub phrase: String,
    /// For 405: the methods allowed on this resource.
    pub allow: Option<&'static str>,
}

impl XcapError {
    /// A plain error with `status` and `phrase`, no condition.
    pub fn new(status: u16, phrase: impl Into<String>) -> XcapError {
        XcapError {
            status,
            condition: None,
            phrase: phrase.into(),
            allow: None,
        }
    }

    /// 400 Bad Request (malformed query or node selector).
    pub fn bad_request(phrase: impl Into<String>) -> XcapError {
        XcapError::new(400, phrase)
    }

    /// 404 Not Found (no such usage, document or node).
    pub fn not_found(phrase: impl Into<String>) -> XcapError {
        XcapError::new(404, phrase)
    }

    /// 405 Method Not Allowed, with the `Allow` header value.
    pub fn method_not_allowed(allow: &'static str, phrase: impl Into<String>) -> XcapError {
        XcapError {
            allow: Some(allow),
            ..XcapError::new(405, phrase)
        }
    }

    /// 415 Unsupported Media Type (Content-Type does not fit the resource).
    pub fn unsupported_media_type(phrase: impl Into<String>) -> XcapError {
        XcapError::new(415, phrase)
    }

    /// 409 Conflict with an XCAP error condition.
    pub fn conflict(condition: ErrorCondition, phrase: impl Into<String>) -> XcapError {
        XcapError {
            condition: Some(condition),
            ..XcapError::new(409, phrase)
        }
    }

    /// 409 `<schema-validation-error>`.
    pub fn schema(phrase: impl Into<String>) -> XcapError {
        XcapError::conflict(ErrorCondition::SchemaValidationError, phrase)
    }

    /// 409 `<constraint-failure>` with `phrase` in the body too.
    pub fn constraint(phrase: impl Into<String>) -> XcapError {
        let phrase = phrase.into();
        XcapError::conflict(
            ErrorCondition::ConstraintFailure {
                phrase: Some(phrase.clone()),
            },
            phrase,
        )
    }

    /// The `application/xcap-error+xml` body for a 409 (validates against xcap-error.xsd).
    /// A `no-parent` ancestor is written as stored (relative to the XCAP root).
    pub fn body(&self) -> Option<Vec<u8>> {
        self.body_with_root("")
    }

    /// Like [`body`](Self::body), with a `no-parent` ancestor made absolute by prefixing the
    /// XCAP root URI (e.g. `http://xcap.example.com/xcap-root`); RFC 4825 §11 wants an HTTP URI.
    pub fn body_with_root(&self, xcap_root: &str) -> Option<Vec<u8>> {
        let condition = self.condition.as_ref()?;
        let mut out = String::with_capacity(160);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xcap-error xmlns=\"");
        out.push_str(XCAP_ERROR_NS);
        out.push_str("\"><");
        out.push_str(condition.element_name());
        let phrase = match condition {
            ErrorCondition::ConstraintFailure { phrase: Some(p) } => p.as_str(),
            _ => self.phrase.as_str(),
        };
        if !phrase.is_empty() {
            out.push_str(" phrase=\"");
            escape_attr_into(&mut out, phrase);
            out.push('"');
        }
        match condition {
            ErrorCondition::NoParent { ancestor: Some(a) } => {
                out.push_str("><ancestor>");
                let full = join_root(xcap_root, a);
                escape_text_into(&mut out, &full);
                out.push_str("</ancestor></no-parent>");
            }
            ErrorCondition::UniquenessFailure { exists } => {
                out.push('>');
                // xcap-error.xsd: at least one <exists>.
                let fallback = [(String::new(), Vec::new())];
                let list: &[(String, Vec<String>)] =
                    if exists.is_empty() { &fallback } else { exists };
                for (field, alts) in list {
                    out.push_str("<exists field=\"");
                    escape_attr_into(&mut out, field);
                    if alts.is_empty() {
                        out.push_str("\"/>");
                        continue;
                    }
                    out.push_str("\">");
                    for alt in alts {
                        out.push_str("<alt-value>");
                        escape_text_into(&mut out, alt);
                        out.push_str("</alt-value>");
                    }
                    out.push_str("</exists>");
                }
                out.push_str("</uniqueness-failure>");
            }
            _ => out.push_str("/>"),
        }
        out.push_str("</xcap-error>\n");
        Some(out.into_bytes())
    }
}

/// `root` + "/" + `rel`, without doubling the slash; `rel` alone when `root` is empty.
fn join_root(root: &str, rel: &str) -> String {
    if root.is_empty() {
        return rel.to_string();
    }
    let mut s = String::with_capacity(root.len() + rel.len() + 1);
    s.push_str(root.trim_end_matches('/'));
    s.push('/');
    s.push_str(rel.trim_start_matches('/'));
    s
}

/// Appends `s` escaped for a double-quoted attribute value.
pub(crate) fn escape_attr_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Appends `s` escaped for character data.
pub(crate) fn escape_text_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xcap::tests::assert_valid;

    #[test]
    fn every_condition_body_validates() {
        let conditions = vec![
            ErrorCondition::NotWellFormed,
            ErrorCondition::NotXmlFrag,
            ErrorCondition::NoParent { ancestor: None },
            ErrorCondition::NoParent {
                ancestor: Some("resource-lists/users/sip:a@b/index/~~/resource-lists".into()),
            },
            ErrorCondition::SchemaValidationError,
            ErrorCondition::NotXmlAttValue,
            ErrorCondition::CannotInsert,
            ErrorCondition::CannotDelete,
            ErrorCondition::UniquenessFailure { exists: vec![] },
            ErrorCondition::UniquenessFailure {
                exists: vec![(
                    "resource-lists/list[2]/@name".into(),
                    vec!["friends1".into(), "friends<2>".into()],
                )],
            },
            ErrorCondition::ConstraintFailure { phrase: None },
            ErrorCondition::ConstraintFailure {
                phrase: Some("bad \"ref\" & more".into()),
            },
            ErrorCondition::NotUtf8,
        ];
        for c in conditions {
            let e = XcapError::conflict(c.clone(), "why & how");
            let body = e.body().expect("409 has a body");
            assert_valid(&body, c.element_name());
            let abs = e.body_with_root("http://xcap.example.com/root/").unwrap();
            assert_valid(&abs, c.element_name());
        }
    }

    #[test]
    fn absolute_ancestor() {
        let e = XcapError::conflict(
            ErrorCondition::NoParent {
                ancestor: Some("resource-lists/users/x/index".into()),
            },
            "",
        );
        let body = String::from_utf8(e.body_with_root("http://h/xcap/").unwrap()).unwrap();
        assert!(body.contains("<ancestor>http://h/xcap/resource-lists/users/x/index</ancestor>"));
        assert!(body.contains("<no-parent>"));
    }

    #[test]
    fn non_409_has_no_body() {
        assert!(XcapError::not_found("x").body().is_none());
        let e = XcapError::method_not_allowed("GET", "read-only");
        assert_eq!(e.allow, Some("GET"));
        assert_eq!(e.status, 405);
    }
}
