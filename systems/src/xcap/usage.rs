//! Application usages (RFC 4825 §5): what each AUID's documents look like and which rules a
//! write must keep, the registry of the usages presenced serves, and the builders of the
//! computed documents (xcap-caps, the rls-services global index, the OMA xcap-directory).

use super::Directory;
use super::dom::{self, Document, Element, Node};
use super::error::{XcapError, escape_attr_into, escape_text_into};
use super::uri::{Scope, XcapUri};
use super::usages;
use std::fmt::Write as _;

/// What a usage's write hooks may look at besides the new document.
pub struct WriteContext<'a> {
    /// The request URI (AUID, scope and document path of the document being written).
    pub uri: &'a XcapUri,
    /// Cross-document lookups (RFC 4826 §4.4.3 service URI uniqueness).
    pub dir: &'a dyn Directory,
}

/// One application usage (RFC 4825 §5): its identity, MIME type and default namespace, and
/// the checks the core runs on every document a write would produce.
pub trait ApplicationUsage: Send + Sync {
    /// The AUID (RFC 4825 §5.1), the first segment of the URI path.
    fn auid(&self) -> &'static str;
    /// MIME type of whole documents of this usage.
    fn mime(&self) -> &'static str;
    /// Default document namespace (RFC 4825 §6.3: unprefixed names in node selectors).
    fn default_namespace(&self) -> &'static str;
    /// Whether users may write (false for xcap-caps and the global rls-services index).
    fn writable(&self, scope: &Scope) -> bool {
        let _ = scope;
        true
    }
    /// Namespaces this usage's documents use (listed in xcap-caps).
    fn namespaces(&self) -> &'static [&'static str] {
        &[]
    }
    /// Schema validation (RFC 4825 §8.2.5): 409 schema-validation-error.
    fn validate_schema(&self, doc: &Document) -> Result<(), XcapError>;
    /// Uniqueness constraints (409 uniqueness-failure, with alternative values).
    fn check_uniqueness(&self, doc: &Document, ctx: &WriteContext<'_>) -> Result<(), XcapError> {
        let _ = (doc, ctx);
        Ok(())
    }
    /// Other data constraints (409 constraint-failure).
    fn check_constraints(&self, doc: &Document, ctx: &WriteContext<'_>) -> Result<(), XcapError> {
        let _ = (doc, ctx);
        Ok(())
    }
}

/// The registry: every application usage presenced serves.
pub struct Usages {
    list: Vec<Box<dyn ApplicationUsage>>,
}

impl Usages {
    /// resource-lists, rls-services, pres-rules, org.openmobilealliance.pres-rules, xcap-caps,
    /// org.openmobilealliance.xcap-directory.
    pub fn standard() -> Usages {
        Usages {
            list: vec![
                Box::new(usages::resource_lists::ResourceLists),
                Box::new(usages::rls_services::RlsServices),
                Box::new(usages::pres_rules::PresRules::ietf()),
                Box::new(usages::pres_rules::PresRules::oma()),
                Box::new(usages::read_only::XcapCaps),
                Box::new(usages::read_only::XcapDirectory),
            ],
        }
    }

    /// A registry of exactly these usages (tests, or a deployment serving fewer).
    pub fn from_usages(list: Vec<Box<dyn ApplicationUsage>>) -> Usages {
        Usages { list }
    }

    /// The usage with this AUID.
    pub fn get(&self, auid: &str) -> Option<&dyn ApplicationUsage> {
        self.list.iter().find(|u| u.auid() == auid).map(|u| &**u)
    }

    /// The AUIDs served, in registry order.
    pub fn auids(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.list.iter().map(|u| u.auid())
    }
}

/// The xcap-caps global document (RFC 4825 §12.2), listing the AUIDs, extensions and namespaces we support.
pub fn xcap_caps_document(usages: &Usages) -> Vec<u8> {
    let mut out = String::with_capacity(1024);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xcap-caps xmlns=\"");
    out.push_str(usages::read_only::XCAP_CAPS_NS);
    out.push_str("\">\n  <auids>\n");
    for auid in usages.auids() {
        out.push_str("    <auid>");
        escape_text_into(&mut out, auid);
        out.push_str("</auid>\n");
    }
    out.push_str("  </auids>\n  <extensions/>\n  <namespaces>\n");
    let mut seen: Vec<&str> = Vec::new();
    let all = usages
        .list
        .iter()
        .flat_map(|u| std::iter::once(u.default_namespace()).chain(u.namespaces().iter().copied()))
        .chain(std::iter::once(super::error::XCAP_ERROR_NS));
    for ns in all {
        if seen.contains(&ns) {
            continue;
        }
        seen.push(ns);
        out.push_str("    <namespace>");
        escape_text_into(&mut out, ns);
        out.push_str("</namespace>\n");
    }
    out.push_str("  </namespaces>\n</xcap-caps>\n");
    out.into_bytes()
}

/// RFC 4826 §4.4.1: the rls-services global index, composed from every user's rls-services documents (each (xui, document bytes)).
/// Documents that do not parse are skipped; each `<service>` is copied with the namespace
/// declarations it needs made explicit.
pub fn rls_services_global_index(user_docs: &[(String, Vec<u8>)]) -> Vec<u8> {
    let rls = usages::rls_services::RLS_NS;
    let mut out = String::with_capacity(256 + user_docs.iter().map(|d| d.1.len()).sum::<usize>());
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rls-services xmlns=\"");
    out.push_str(rls);
    out.push_str("\" xmlns:rl=\"");
    out.push_str(usages::resource_lists::RL_NS);
    out.push_str("\">\n");
    for (_xui, bytes) in user_docs {
        let Ok(doc) = dom::parse_document(bytes) else {
            continue;
        };
        if !doc.root.is(rls, "rls-services") {
            continue;
        }
        let scope = doc.in_scope(&[]);
        for (_, service) in doc.root.child_elements() {
            if service.is(rls, "service") {
                out.push_str("  ");
                out.push_str(&dom::element_to_string(service, &scope));
                out.push('\n');
            }
        }
    }
    out.push_str("</rls-services>\n");
    out.into_bytes()
}

/// One document listed in an OMA xcap-directory folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// AUID of the folder the document belongs to.
    pub auid: String,
    /// Document selector below the XCAP root (as [`XcapUri::document_selector`]), or an
    /// absolute URI.
    pub uri: String,
    /// Current strong entity tag.
    pub etag: String,
    /// Last modification, RFC 3339 (empty: omitted).
    pub last_modified: String,
    /// Size in bytes.
    pub size: u64,
}

/// OMA XDM xcap-directory document for one user: each entry (auid, document selector path, etag, last-modified RFC 3339 string, size).
/// One `<folder>` per AUID, in order of first appearance.
pub fn xcap_directory_document(xcap_root: &str, entries: &[DirectoryEntry]) -> Vec<u8> {
    let mut folders: Vec<&str> = Vec::new();
    for e in entries {
        if !folders.contains(&e.auid.as_str()) {
            folders.push(&e.auid);
        }
    }
    let root = xcap_root.trim_end_matches('/');
    let mut out = String::with_capacity(128 + entries.len() * 160);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xcap-directory xmlns=\"");
    out.push_str(usages::read_only::XCAP_DIRECTORY_NS);
    out.push_str("\">\n");
    for auid in folders {
        out.push_str("  <folder auid=\"");
        escape_attr_into(&mut out, auid);
        out.push_str("\">\n");
        for e in entries.iter().filter(|e| e.auid == auid) {
            let uri = if e.uri.contains("://") {
                e.uri.clone()
            } else {
                format!("{root}/{}", e.uri.trim_start_matches('/'))
            };
            out.push_str("    <entry uri=\"");
            escape_attr_into(&mut out, &uri);
            out.push_str("\" etag=\"");
            escape_attr_into(&mut out, &e.etag);
            out.push('"');
            if !e.last_modified.is_empty() {
                out.push_str(" last-modified=\"");
                escape_attr_into(&mut out, &e.last_modified);
                out.push('"');
            }
            let _ = writeln!(out, " size=\"{}\"/>", e.size);
        }
        out.push_str("  </folder>\n");
    }
    out.push_str("</xcap-directory>\n");
    out.into_bytes()
}

/// A node selector that picks the element at `path` unambiguously: unprefixed names with
/// positions for elements in `default_ns`, `*[n]` for others (no prefix bindings needed).
/// Used as the `field` of uniqueness failures.
pub fn positional_selector(root: &Element, path: &[usize], default_ns: &str) -> String {
    let mut s = String::new();
    push_step(&mut s, root, None, default_ns);
    let mut el = root;
    for &i in path {
        let Some(Node::Element(child)) = el.children.get(i) else {
            break;
        };
        s.push('/');
        push_step(&mut s, child, Some((el, i)), default_ns);
        el = child;
    }
    s
}

fn push_step(s: &mut String, el: &Element, parent: Option<(&Element, usize)>, default_ns: &str) {
    let named = el.ns.as_deref() == Some(default_ns);
    if named {
        s.push_str(&el.local);
    } else {
        s.push('*');
    }
    if let Some((p, idx)) = parent {
        let pos = p
            .child_elements()
            .filter(|(i, c)| *i <= idx && (!named || (c.local == el.local && c.ns == el.ns)))
            .count();
        let _ = write!(s, "[{pos}]");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xcap::tests::assert_valid;

    #[test]
    fn registry() {
        let u = Usages::standard();
        let auids: Vec<_> = u.auids().collect();
        assert_eq!(
            auids,
            [
                "resource-lists",
                "rls-services",
                "pres-rules",
                "org.openmobilealliance.pres-rules",
                "xcap-caps",
                "org.openmobilealliance.xcap-directory"
            ]
        );
        assert_eq!(
            u.get("resource-lists").unwrap().mime(),
            "application/resource-lists+xml"
        );
        assert!(u.get("nope").is_none());
        assert!(!u.get("xcap-caps").unwrap().writable(&Scope::Global));
        assert!(!u.get("rls-services").unwrap().writable(&Scope::Global));
        assert!(
            u.get("rls-services")
                .unwrap()
                .writable(&Scope::User("x".into()))
        );
    }

    #[test]
    fn xcap_caps_validates() {
        let doc = xcap_caps_document(&Usages::standard());
        assert_valid(&doc, "<auid>org.openmobilealliance.pres-rules</auid>");
        let text = String::from_utf8(doc).unwrap();
        assert!(text.contains("<namespace>urn:ietf:params:xml:ns:resource-lists</namespace>"));
    }

    #[test]
    fn rls_global_index_validates() {
        let a = br#"<?xml version="1.0"?><rls-services xmlns="urn:ietf:params:xml:ns:rls-services" xmlns:r="urn:ietf:params:xml:ns:resource-lists"><service uri="sip:a-friends@example.com"><list name="f"><r:entry uri="sip:b@example.com"/></list><packages><package>presence</package></packages></service></rls-services>"#;
        let b = br#"<s:rls-services xmlns:s="urn:ietf:params:xml:ns:rls-services"><s:service uri="sip:b-list@example.com"><s:resource-list>http://xcap.example.com/resource-lists/users/sip:b@example.com/index/~~/resource-lists/list%5b@name=%22l%22%5d</s:resource-list></s:service></s:rls-services>"#;
        let docs = vec![
            ("sip:a@example.com".to_string(), a.to_vec()),
            ("sip:b@example.com".to_string(), b.to_vec()),
            ("sip:c@example.com".to_string(), b"<broken".to_vec()),
        ];
        let idx = rls_services_global_index(&docs);
        assert_valid(&idx, "sip:b-list@example.com");
        assert_valid(&idx, "sip:a-friends@example.com");
        assert_valid(&rls_services_global_index(&[]), "<rls-services");
    }

    #[test]
    fn xcap_directory_validates() {
        let entries = vec![
            DirectoryEntry {
                auid: "resource-lists".into(),
                uri: "resource-lists/users/sip:a@example.com/index".into(),
                etag: "\"e1\"".into(),
                last_modified: "2026-11-26T22:00:00Z".into(),
                size: 123,
            },
            DirectoryEntry {
                auid: "pres-rules".into(),
                uri: "pres-rules/users/sip:a@example.com/index".into(),
                etag: "e2".into(),
                last_modified: String::new(),
                size: 0,
            },
            DirectoryEntry {
                auid: "resource-lists".into(),
                uri: "resource-lists/users/sip:a@example.com/other%20doc".into(),
                etag: "e3".into(),
                last_modified: "2026-11-26T22:00:00.123+01:00".into(),
                size: 9,
            },
        ];
        let doc = xcap_directory_document("http://xcap.example.com/xcap-root/", &entries);
        assert_valid(
            &doc,
            "uri=\"http://xcap.example.com/xcap-root/resource-lists/users/sip:a@example.com/index\"",
        );
        let text = String::from_utf8(doc).unwrap();
        assert_eq!(text.matches("<folder").count(), 2);
        assert_valid(&xcap_directory_document("http://x", &[]), "<xcap-directory");
    }

    #[test]
    fn positional_fields() {
        let doc = dom::parse_document(
            b"<resource-lists xmlns='urn:ietf:params:xml:ns:resource-lists' xmlns:x='urn:x'><list/><x:y/><list><entry uri='a'/></list></resource-lists>",
        )
        .unwrap();
        let rl = usages::resource_lists::RL_NS;
        assert_eq!(
            positional_selector(&doc.root, &[2, 0], rl),
            "resource-lists/list[2]/entry[1]"
        );
        assert_eq!(
            positional_selector(&doc.root, &[1], rl),
            "resource-lists/*[2]"
        );
    }
}
