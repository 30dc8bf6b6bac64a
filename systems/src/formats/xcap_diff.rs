//! `application/xcap-diff+xml` documents (RFC 5874) as the xcap-diff event package sends them
//! (RFC 5875), and the resource list of document selectors a subscriber asks for.

use bytes::Bytes;
use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// The xcap-diff namespace.
pub const NS: &str = "urn:ietf:params:xml:ns:xcap-diff";
/// The content type.
pub const CONTENT_TYPE: &str = "application/xcap-diff+xml";

/// One changed (or, in a full-state report, existing) document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentDiff {
    /// Document selector relative to the XCAP root (`resource-lists/users/sip:joe@example.com/index`).
    pub sel: String,
    /// The entity tag the subscriber knew; None for a document new to it.
    pub previous_etag: Option<String>,
    /// The current entity tag; None when the document was deleted.
    pub new_etag: Option<String>,
    /// xcap-patching mode (RFC 5875 §4.4): the new document to send as a root replacement
    /// (RFC 5261 `<replace sel="*">`); None in no-patching mode.
    pub replacement: Option<Bytes>,
}

/// Write an xcap-diff document.
pub fn write(xcap_root: &str, docs: &[DocumentDiff]) -> Bytes {
    let mut out = Vec::with_capacity(128 + docs.len() * 96);
    out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xcap-diff xmlns=\"");
    out.extend_from_slice(NS.as_bytes());
    out.extend_from_slice(b"\" xcap-root=\"");
    out.extend_from_slice(escape(xcap_root).as_bytes());
    out.extend_from_slice(b"\">\n");
    for d in docs {
        out.extend_from_slice(b"<document sel=\"");
        out.extend_from_slice(escape(d.sel.as_str()).as_bytes());
        out.push(b'"');
        if let Some(p) = &d.previous_etag {
            out.extend_from_slice(b" previous-etag=\"");
            out.extend_from_slice(escape(p.as_str()).as_bytes());
            out.push(b'"');
        }
        if let Some(n) = &d.new_etag {
            out.extend_from_slice(b" new-etag=\"");
            out.extend_from_slice(escape(n.as_str()).as_bytes());
            out.push(b'"');
        }
        match (&d.replacement, &d.previous_etag, &d.new_etag) {
            (Some(doc), Some(_), Some(_)) => {
                // RFC 5261 §4.4: replace the root element with the new one
                out.extend_from_slice(b"><replace sel=\"*\">");
                out.extend_from_slice(root_element(doc));
                out.extend_from_slice(b"</replace></document>\n");
            }
            _ => out.extend_from_slice(b"/>\n"),
        }
    }
    out.extend_from_slice(b"</xcap-diff>\n");
    Bytes::from(out)
}

/// The document from its root element on (the XML declaration, comments and PIs before it cut).
fn root_element(doc: &[u8]) -> &[u8] {
    let mut i = 0;
    while let Some(off) = doc[i..].iter().position(|&c| c == b'<') {
        let at = i + off;
        let rest = &doc[at..];
        if rest.starts_with(b"<?") {
            i = at
                + rest
                    .windows(2)
                    .position(|w| w == b"?>")
                    .map_or(rest.len(), |p| p + 2);
        } else if rest.starts_with(b"<!--") {
            i = at
                + rest
                    .windows(3)
                    .position(|w| w == b"-->")
                    .map_or(rest.len(), |p| p + 3);
        } else if rest.starts_with(b"<!") {
            i = at
                + rest
                    .iter()
                    .position(|&c| c == b'>')
                    .map_or(rest.len(), |p| p + 1);
        } else {
            let end = doc
                .iter()
                .rposition(|&c| c == b'>')
                .map_or(doc.len(), |p| p + 1);
            return &doc[at..end.max(at)];
        }
    }
    &[]
}

/// The `uri` of every `entry` in a resource-lists body (RFC 5875 §4.1: document and directory
/// selectors, relative to the XCAP root or absolute under it).
pub fn selectors(body: &[u8]) -> Result<Vec<String>, String> {
    let mut reader = Reader::from_reader(body);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut root_seen = false;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                let name = e.local_name();
                if !root_seen {
                    root_seen = true;
                    if name.as_ref() != "resource-lists" {
                        return Err("body is not a resource-lists document".into());
                    }
                }
                if name.as_ref() == "entry" {
                    for a in e.attributes().flatten() {
                        if a.key.local_name().as_ref() == "uri" {
                            let v = a
                                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .map_err(|e| e.to_string())?;
                            out.push(v.into_owned());
                        }
                    }
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("not well-formed XML ({e})")),
        }
        buf.clear();
    }
    if !root_seen {
        return Err("empty body".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_documents_and_patches() {
        let doc = Bytes::from_static(b"<?xml version=\"1.0\"?>\n<!-- c -->\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"/>\n");
        let out = write(
            "http://127.0.0.1:8080/xcap-root",
            &[
                DocumentDiff {
                    sel: "resource-lists/users/sip:a@b/index".into(),
                    previous_etag: Some("1".into()),
                    new_etag: Some("2".into()),
                    replacement: Some(doc),
                },
                DocumentDiff {
                    sel: "pres-rules/users/sip:a@b/index".into(),
                    previous_etag: Some("7".into()),
                    new_etag: None,
                    replacement: None,
                },
            ],
        );
        let t = std::str::from_utf8(&out).unwrap();
        assert!(t.contains("<replace sel=\"*\"><resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"/></replace>"), "{t}");
        assert!(
            t.contains("<document sel=\"pres-rules/users/sip:a@b/index\" previous-etag=\"7\"/>")
        );
    }

    #[test]
    fn reads_selectors() {
        let body = br#"<?xml version="1.0"?><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list>
<entry uri="resource-lists/users/sip:joe@example.com/index"/><entry uri="rls-services/users/sip:joe@example.com/"/></list></resource-lists>"#;
        assert_eq!(selectors(body).unwrap().len(), 2);
        assert!(selectors(b"<x/>").is_err());
        assert!(selectors(b"<resource-lists").is_err());
    }
}
