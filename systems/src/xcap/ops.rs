//! GET, PUT and DELETE of documents, elements and attributes (RFC 4825 §7, §8.2), and
//! [`apply`], which checks the usage, the method and the MIME type, runs the operation and
//! validates the resulting document with the usage.

use super::dom::{self, Attribute, Binding, Document, Element, Name, Node, is_xml_space};
use super::error::{ErrorCondition, XcapError, escape_attr_into};
use super::selector::{NameTest, NodeSelector, Step, Terminal, select_all, select_one};
use super::uri::encode_node_selector_into;
use super::usage::{ApplicationUsage, Usages, WriteContext};
use super::{Directory, Method, Outcome, Request};

/// MIME type of element bodies (RFC 4825 §15.2.1).
pub const XCAP_EL_MIME: &str = "application/xcap-el+xml";
/// MIME type of attribute bodies (RFC 4825 §15.2.2).
pub const XCAP_ATT_MIME: &str = "application/xcap-att+xml";
/// MIME type of namespace binding bodies (RFC 4825 §15.2.3).
pub const XCAP_NS_MIME: &str = "application/xcap-ns+xml";

/// Apply `req` to `current` (the stored document, None when it does not exist).
pub fn apply(
    usages: &Usages,
    req: &Request<'_>,
    current: Option<&[u8]>,
    dir: &dyn Directory,
) -> Result<Outcome, XcapError> {
    let usage = usages
        .get(&req.uri.auid)
        .ok_or_else(|| XcapError::not_found("no such application usage"))?;
    let writing = req.method != Method::Get;
    if writing && !usage.writable(&req.uri.scope) {
        return Err(XcapError::method_not_allowed(
            "GET",
            "this resource is read-only",
        ));
    }
    let selector = match &req.uri.node {
        None => None,
        Some(text) => Some(NodeSelector::parse(
            text,
            &req.uri.ns_bindings,
            usage.default_namespace(),
        )?),
    };
    let op = Op { usage, req, dir };
    match (req.method, selector) {
        (Method::Get, None) => match current {
            Some(bytes) => Ok(Outcome::Content {
                body: bytes.to_vec(),
                mime: usage.mime().to_string(),
            }),
            None => Err(XcapError::not_found("no such document")),
        },
        (Method::Get, Some(sel)) => op.get_node(current, &sel),
        (Method::Put, None) => op.put_document(current),
        (Method::Delete, None) => match current {
            Some(_) => Ok(Outcome::Write {
                document: None,
                created: false,
            }),
            None => Err(XcapError::not_found("no such document")),
        },
        (_, Some(sel)) if sel.terminal == Some(Terminal::Namespaces) => Err(
            // RFC 4825 §7.10: namespace bindings can only be fetched.
            XcapError::method_not_allowed("GET", "namespace bindings cannot be written"),
        ),
        (Method::Put, Some(sel)) => match &sel.terminal {
            Some(Terminal::Attribute { .. }) => op.put_attribute(current, &sel),
            _ => op.put_element(current, &sel),
        },
        (Method::Delete, Some(sel)) => match &sel.terminal {
            Some(Terminal::Attribute { .. }) => op.delete_attribute(current, &sel),
            _ => op.delete_element(current, &sel),
        },
    }
}

/// Whether a Content-Type header value (parameters allowed) is `want`.
fn mime_is(content_type: Option<&str>, want: &str) -> bool {
    content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case(want)
    })
}

/// One request being applied.
struct Op<'a> {
    usage: &'a dyn ApplicationUsage,
    req: &'a Request<'a>,
    dir: &'a dyn Directory,
}

impl Op<'_> {
    fn check_mime(&self, want: &str) -> Result<(), XcapError> {
        if mime_is(self.req.content_type, want) {
            Ok(())
        } else {
            Err(XcapError::unsupported_media_type(format!(
                "Content-Type must be {want}"
            )))
        }
    }

    /// The stored document, parsed; a stored document that does not parse is our fault.
    fn load(&self, current: Option<&[u8]>) -> Result<Option<Document>, XcapError> {
        match current {
            None => Ok(None),
            Some(bytes) => dom::parse_document(bytes).map(Some).map_err(|e| {
                XcapError::new(500, format!("stored document is corrupt: {}", e.phrase))
            }),
        }
    }

    /// For a write under a node selector: the stored document, or 409 no-parent (RFC 4825
    /// §8.2.1) pointing at the directory the document would be in.
    fn load_for_write(&self, current: Option<&[u8]>) -> Result<Document, XcapError> {
        self.load(current)?.ok_or_else(|| {
            XcapError::conflict(
                ErrorCondition::NoParent {
                    ancestor: Some(self.req.uri.scope_selector()),
                },
                "no such document",
            )
        })
    }

    /// 409 no-parent naming the closest ancestor of `steps` that exists (RFC 4825 §8.2.1).
    fn no_parent(&self, doc: &Document, sel: &NodeSelector, upto: usize) -> XcapError {
        let mut ancestor = self.req.uri.document_selector();
        for k in (1..upto).rev() {
            if select_one(&doc.root, &sel.steps[..k]).is_some() {
                ancestor.push_str("/~~/");
                encode_node_selector_into(&mut ancestor, &sel.steps_text(k));
                break;
            }
        }
        XcapError::conflict(
            ErrorCondition::NoParent {
                ancestor: Some(ancestor),
            },
            "parent does not exist",
        )
    }

    /// Validates the resulting document with the usage and serializes it.
    fn commit(&self, doc: &Document, created: bool) -> Result<Outcome, XcapError> {
        self.validate(doc)?;
        Ok(Outcome::Write {
            document: Some(doc.to_bytes()),
            created,
        })
    }

    fn validate(&self, doc: &Document) -> Result<(), XcapError> {
        let ctx = WriteContext {
            uri: self.req.uri,
            dir: self.dir,
        };
        self.usage.validate_schema(doc)?;
        self.usage.check_uniqueness(doc, &ctx)?;
        self.usage.check_constraints(doc, &ctx)
    }

    fn get_node(&self, current: Option<&[u8]>, sel: &NodeSelector) -> Result<Outcome, XcapError> {
        let doc = self
            .load(current)?
            .ok_or_else(|| XcapError::not_found("no such document"))?;
        let path = select_one(&doc.root, &sel.steps)
            .ok_or_else(|| XcapError::not_found("no such element"))?;
        let el = doc.root.at(&path).expect("selected path exists");
        let (body, mime) = match &sel.terminal {
            // RFC 4825 §8.3: the element as it is in the document; the server must not add
            // the bindings it inherits from its ancestors (clients have them, or fetch them
            // with namespace::*). So a GET returns exactly what an element PUT stored.
            None => (dom::element_as_written(el), XCAP_EL_MIME),
            Some(Terminal::Attribute { ns, local, .. }) => {
                let v = el
                    .attr_ns(ns.as_deref(), local)
                    .ok_or_else(|| XcapError::not_found("no such attribute"))?;
                let mut s = String::with_capacity(v.len());
                escape_attr_into(&mut s, v);
                (s, XCAP_ATT_MIME)
            }
            Some(Terminal::Namespaces) => (
                dom::namespaces_to_string(el, &doc.in_scope(&path)),
                XCAP_NS_MIME,
            ),
        };
        Ok(Outcome::Content {
            body: body.into_bytes(),
            mime: mime.to_string(),
        })
    }

    fn put_document(&self, current: Option<&[u8]>) -> Result<Outcome, XcapError> {
        self.check_mime(self.usage.mime())?;
        let doc = dom::parse_document(self.req.body)?;
        self.validate(&doc)?;
        // The body is stored as sent, so a GET returns exactly what was put.
        Ok(Outcome::Write {
            document: Some(self.req.body.to_vec()),
            created: current.is_none(),
        })
    }

    /// RFC 4825 §8.2.3-§8.2.5 (element PUT): replace the selected element, or insert a new child of
    /// the parent; either way the request URI must select the new element afterwards.
    fn put_element(
        &self,
        current: Option<&[u8]>,
        sel: &NodeSelector,
    ) -> Result<Outcome, XcapError> {
        self.check_mime(XCAP_EL_MIME)?;
        let mut doc = self.load_for_write(current)?;
        let steps = &sel.steps;
        let matches = select_all(&doc.root, steps);
        let (new_path, created) = if matches.len() == 1 {
            // Replace.
            let path = matches.into_iter().next().unwrap_or_default();
            let scope = ancestors_scope(&doc, &path);
            let new = dom::parse_fragment(self.req.body, &scope)?;
            match path.split_last() {
                None => doc.root = new,
                Some((&idx, parent)) => {
                    let p = doc
                        .root
                        .at_mut(parent)
                        .expect("parent of a selected element");
                    p.children[idx] = Node::Element(new);
                }
            }
            (path, false)
        } else {
            // Insert under the parent (the document node itself cannot take a second root).
            if steps.len() == 1 {
                return Err(XcapError::conflict(
                    ErrorCondition::CannotInsert,
                    "the document already has a root element",
                ));
            }
            let parent_path = select_one(&doc.root, &steps[..steps.len() - 1])
                .ok_or_else(|| self.no_parent(&doc, sel, steps.len() - 1))?;
            let scope = doc.in_scope(&parent_path);
            let new = dom::parse_fragment(self.req.body, &scope)?;
            let parent = doc
                .root
                .at_mut(&parent_path)
                .expect("selected parent exists");
            let idx = insert_child(parent, steps.last().expect("at least one step"), new);
            let mut path = parent_path;
            path.push(idx);
            (path, true)
        };
        // RFC 4825 §8.2.5: a GET of the request URI must now return what was put.
        if select_one(&doc.root, steps).as_deref() != Some(&new_path[..]) {
            return Err(XcapError::conflict(
                ErrorCondition::CannotInsert,
                "the request URI would not select the new element",
            ));
        }
        self.commit(&doc, created)
    }

    fn put_attribute(
        &self,
        current: Option<&[u8]>,
        sel: &NodeSelector,
    ) -> Result<Outcome, XcapError> {
        self.check_mime(XCAP_ATT_MIME)?;
        let Some(Terminal::Attribute { ns, local, text }) = &sel.terminal else {
            unreachable!("attribute selector");
        };
        let mut doc = self.load_for_write(current)?;
        let steps = &sel.steps;
        let path = select_one(&doc.root, steps)
            .ok_or_else(|| self.no_parent(&doc, sel, steps.len() + 1))?;
        let value = attribute_value(self.req.body)?;
        // Namespace declarations are not attributes (XPath data model): `@xmlns` never selects
        // anything, so a PUT of it could not be read back.
        if (ns.is_none() && local == "xmlns") || ns.as_deref() == Some(dom::XMLNS_NS) {
            return Err(XcapError::conflict(
                ErrorCondition::CannotInsert,
                "namespace declarations are not attributes",
            ));
        }
        let scope = doc.in_scope(&path);
        let el = doc.root.at_mut(&path).expect("selected element exists");
        let created = match el
            .attrs
            .iter_mut()
            .find(|a| &*a.local == local.as_str() && a.ns.as_deref() == ns.as_deref())
        {
            Some(a) => {
                a.value = value.clone();
                false
            }
            None => {
                let prefix = ns.as_ref().map(|ns| prefix_for(el, &scope, ns, text));
                el.attrs.push(Attribute {
                    prefix,
                    local: Name::from(local.as_str()),
                    ns: ns.as_deref().map(Name::from),
                    value: value.clone(),
                });
                true
            }
        };
        // The element must still be selected, with the new value (RFC 4825 §8.2.5).
        let same = select_one(&doc.root, steps).as_deref() == Some(&path[..])
            && doc
                .root
                .at(&path)
                .and_then(|e| e.attr_ns(ns.as_deref(), local))
                == Some(value.as_str());
        if !same {
            return Err(XcapError::conflict(
                ErrorCondition::CannotInsert,
                "the request URI would not select the new attribute",
            ));
        }
        self.commit(&doc, created)
    }

    /// RFC 4825 §8.4 (DELETE): remove the element; a GET of the request URI must then fail.
    fn delete_element(
        &self,
        current: Option<&[u8]>,
        sel: &NodeSelector,
    ) -> Result<Outcome, XcapError> {
        let mut doc = self
            .load(current)?
            .ok_or_else(|| XcapError::not_found("no such document"))?;
        let path = select_one(&doc.root, &sel.steps)
            .ok_or_else(|| XcapError::not_found("no such element"))?;
        let Some((&idx, parent_path)) = path.split_last() else {
            return Err(XcapError::conflict(
                ErrorCondition::CannotDelete,
                "the document element cannot be deleted; delete the document",
            ));
        };
        let parent = doc.root.at_mut(parent_path).expect("parent exists");
        remove_child(parent, idx);
        if select_one(&doc.root, &sel.steps).is_some() {
            return Err(XcapError::conflict(
                ErrorCondition::CannotDelete,
                "the request URI would still select an element",
            ));
        }
        self.commit(&doc, false)
    }

    fn delete_attribute(
        &self,
        current: Option<&[u8]>,
        sel: &NodeSelector,
    ) -> Result<Outcome, XcapError> {
        let Some(Terminal::Attribute { ns, local, .. }) = &sel.terminal else {
            unreachable!("attribute selector");
        };
        let mut doc = self
            .load(current)?
            .ok_or_else(|| XcapError::not_found("no such document"))?;
        let path = select_one(&doc.root, &sel.steps)
            .ok_or_else(|| XcapError::not_found("no such element"))?;
        let el = doc.root.at_mut(&path).expect("selected element exists");
        let before = el.attrs.len();
        el.attrs
            .retain(|a| !(&*a.local == local.as_str() && a.ns.as_deref() == ns.as_deref()));
        if el.attrs.len() == before {
            return Err(XcapError::not_found("no such attribute"));
        }
        let still = select_one(&doc.root, &sel.steps)
            .and_then(|p| doc.root.at(&p))
            .is_some_and(|e| e.attr_ns(ns.as_deref(), local).is_some());
        if still {
            return Err(XcapError::conflict(
                ErrorCondition::CannotDelete,
                "the request URI would still select an attribute",
            ));
        }
        self.commit(&doc, false)
    }
}

/// Bindings in scope at the parent of the element at `path` (none for the root).
fn ancestors_scope(doc: &Document, path: &[usize]) -> Vec<Binding> {
    match path.split_last() {
        None => Vec::new(),
        Some((_, parent)) => doc.in_scope(parent),
    }
}

/// Inserts `new` under `parent` where the last step says (RFC 4825 §8.2.3): with a position
/// `[n]`, so that it becomes the n-th sibling passing the name test (before the current n-th,
/// or after the last one); without, after the last sibling passing the name test, or after
/// the last element child when there is none. Indentation before the reference sibling is
/// repeated. Returns the index of the new element in `children`.
fn insert_child(parent: &mut Element, step: &Step, new: Element) -> usize {
    // `*` without a position: the new element goes after its own kind, as if the step had
    // named it (what RFC 4825 §8.2.3's examples do for `*[@att="..."]`).
    let by_new_name = step.name == NameTest::Any && step.position.is_none();
    let named: Vec<usize> = parent
        .child_elements()
        .filter(|(_, c)| {
            if by_new_name {
                c.local == new.local && c.ns == new.ns
            } else {
                step.name.matches(c)
            }
        })
        .map(|(i, _)| i)
        .collect();
    let before = step
        .position
        .and_then(|n| n.checked_sub(1))
        .and_then(|n| named.get(n).copied());
    if let Some(at) = before {
        let ws = whitespace_before(parent, at);
        parent.children.insert(at, Node::Element(new));
        if let Some(ws) = ws {
            parent.children.insert(at + 1, Node::Text(ws));
        }
        return at;
    }
    let after = named
        .last()
        .copied()
        .or_else(|| parent.child_elements().last().map(|(i, _)| i));
    match after {
        Some(i) => {
            let ws = whitespace_before(parent, i);
            let mut at = i + 1;
            if let Some(ws) = ws {
                parent.children.insert(at, Node::Text(ws));
                at += 1;
            }
            parent.children.insert(at, Node::Element(new));
            at
        }
        None => {
            parent.children.push(Node::Element(new));
            parent.children.len() - 1
        }
    }
}

/// The whitespace-only text node just before child `i`, if any.
fn whitespace_before(parent: &Element, i: usize) -> Option<String> {
    match i.checked_sub(1).map(|j| &parent.children[j]) {
        Some(Node::Text(t)) if !t.is_empty() && t.chars().all(is_xml_space) => Some(t.clone()),
        _ => None,
    }
}

/// Removes child `idx` and the indentation just before it.
fn remove_child(parent: &mut Element, idx: usize) {
    parent.children.remove(idx);
    if idx > 0
        && let Node::Text(t) = &parent.children[idx - 1]
        && t.chars().all(is_xml_space)
    {
        parent.children.remove(idx - 1);
    }
}

/// The body of an attribute PUT (RFC 4825 §7.7): an XML attribute value without the quotes;
/// returned unescaped and normalized.
fn attribute_value(body: &[u8]) -> Result<String, XcapError> {
    let text = dom::utf8_body(body)?;
    let bad = |why: &str| XcapError::conflict(ErrorCondition::NotXmlAttValue, why.to_string());
    if text.contains('<') {
        return Err(bad("'<' is not allowed in an attribute value"));
    }
    if text
        .chars()
        .any(|c| (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(bad("control character in attribute value"));
    }
    let v =
        quick_xml::escape::unescape(text).map_err(|_| bad("bad reference in attribute value"))?;
    // XML 1.0 §3.3.3: literal whitespace characters become spaces.
    Ok(v.replace(['\t', '\n', '\r'], " "))
}

/// A prefix bound to `ns` at `el` for a new attribute: one in scope, else the one the request
/// used (declared on `el`), else a fresh one.
fn prefix_for(el: &mut Element, scope: &[Binding], ns: &str, text: &str) -> Name {
    if ns == dom::XML_NS {
        return Name::from("xml");
    }
    if let Some((Some(p), _)) = scope
        .iter()
        .rev()
        .find(|(p, n)| p.is_some() && &**n == ns && dom::lookup(scope, p.as_deref()) == Some(ns))
    {
        return p.clone();
    }
    let wanted = text
        .trim_start_matches('@')
        .split_once(':')
        .map(|(p, _)| p.to_string())
        .unwrap_or_else(|| "ns".to_string());
    let mut p = wanted.clone();
    let mut n = 0;
    while dom::lookup(scope, Some(&p)).is_some()
        || el.ns_decls.iter().any(|(q, _)| q.as_deref() == Some(&p))
    {
        n += 1;
        p = format!("{wanted}{n}");
    }
    let p = Name::from(p);
    el.ns_decls.push((Some(p.clone()), Name::from(ns)));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_matching() {
        assert!(mime_is(Some("application/xcap-el+xml"), XCAP_EL_MIME));
        assert!(mime_is(
            Some("Application/XCAP-el+xml; charset=utf-8"),
            XCAP_EL_MIME
        ));
        assert!(!mime_is(Some("text/xml"), XCAP_EL_MIME));
        assert!(!mime_is(None, XCAP_EL_MIME));
    }

    #[test]
    fn attribute_values() {
        assert_eq!(attribute_value(b"a &amp; b").unwrap(), "a & b");
        assert_eq!(attribute_value(b"x\ty").unwrap(), "x y");
        for bad in [&b"a<b"[..], b"a & b", b"&nope;"] {
            let e = attribute_value(bad).unwrap_err();
            assert_eq!(e.condition, Some(ErrorCondition::NotXmlAttValue));
        }
        let e = attribute_value(b"\xff").unwrap_err();
        assert_eq!(e.condition, Some(ErrorCondition::NotUtf8));
    }
}
