//! What is inside a top-level element, for filters that work below it (pres-rules content rules
//! drop `<rpid:activities>` from a person, `<note>` from a tuple, ...): its child elements (and
//! a child's own children) as (namespace, local name, byte range), a child's text and
//! attributes, found on demand by walking the element's bytes again, and the element written
//! with some of them left out. The parse records nothing for this, so documents that are never
//! filtered cost nothing more.

use std::borrow::Cow;
use std::ops::Range;

use super::model::*;
use crate::xml::namespace::XML_NS;
use crate::xml::scan::{attr_value, is_xml_space, text_value, unescape, unescaped};
use crate::xml::walk::{Handler, Markup, RawAttr, StartTag, TagName, walk};

/// A child element of a top-level element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child<'a> {
    /// Its namespace name (empty: none).
    pub namespace: Cow<'a, str>,
    /// Its local name.
    pub local: &'a str,
    /// Where it is in the element's bytes ([`PidfElement::as_bytes`]), from `<` to the end of
    /// its end tag.
    pub range: Range<usize>,
    /// Its content in the element's bytes, between its start and end tags (empty, at the end of
    /// the tag, for an empty element).
    pub content: Range<usize>,
}

/// An attribute of a child element ([`PidfElement::child_attributes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildAttribute<'a> {
    /// Its qualified name as written.
    pub name: &'a str,
    /// Its value as an application sees it (references expanded, white space normalized).
    pub value: Cow<'a, str>,
    /// Where it is in the element's bytes, with the white space before it: leaving this range
    /// out ([`PidfElement::without`]) leaves a well-formed start tag.
    pub range: Range<usize>,
}

impl PidfElement {
    /// The child elements of this element, in document order; `doc` is the document it was
    /// parsed from (its root declarations resolve the children's prefixes).
    pub fn children<'a>(&'a self, doc: &'a PidfDocument) -> Vec<Child<'a>> {
        self.collect(doc, 2, None)
    }

    /// The child elements of `parent` (a child from [`children`](Self::children)), in document
    /// order, with ranges in this element's bytes (so [`without`](Self::without) can leave
    /// them out too): a tuple's `<status>` holds extensions besides `<basic>`.
    pub fn children_of<'a>(&'a self, doc: &'a PidfDocument, parent: &Child<'_>) -> Vec<Child<'a>> {
        self.collect(doc, 3, Some(parent.range.clone()))
    }

    fn collect<'a>(
        &'a self,
        doc: &'a PidfDocument,
        target: u32,
        parent: Option<Range<usize>>,
    ) -> Vec<Child<'a>> {
        let b = self.as_bytes();
        let text = std::str::from_utf8(b).unwrap_or_default();
        let mut found = Children {
            text,
            doc,
            scope: Vec::new(),
            depth_decls: [0; 4],
            target,
            parent,
            open: None,
            out: Vec::new(),
        };
        // the element was checked whole when its document was parsed
        let _ = walk(b, 0, b.is_ascii(), &mut found);
        found.out
    }

    /// The text of `child` (from [`children`](Self::children) or
    /// [`children_of`](Self::children_of)) as an application sees it: its character data and
    /// CDATA sections, references expanded, the text of elements inside it left out. Not trimmed.
    pub fn child_text<'s>(&'s self, child: &Child<'_>) -> Cow<'s, str> {
        let b = self.as_bytes();
        let Some(content) = b.get(child.content.clone()) else {
            return Cow::Borrowed("");
        };
        let content = std::str::from_utf8(content).unwrap_or_default();
        if !content.contains('<') {
            // nearly always: plain character data
            return text_value(content);
        }
        let whole = &b[child.range.clone()];
        let mut t = TextOf {
            text: std::str::from_utf8(whole).unwrap_or_default(),
            out: String::new(),
        };
        let _ = walk(whole, 0, whole.is_ascii(), &mut t);
        Cow::Owned(t.out)
    }

    /// The attributes on the start tag of `child`, in document order; namespace declarations
    /// are not attributes and are left out.
    pub fn child_attributes<'s>(&'s self, child: &Child<'_>) -> Vec<ChildAttribute<'s>> {
        let whole = &self.as_bytes()[child.range.clone()];
        let mut a = AttributesOf {
            text: std::str::from_utf8(whole).unwrap_or_default(),
            base: child.range.start,
            out: Vec::new(),
        };
        let _ = walk(whole, 0, whole.is_ascii(), &mut a);
        a.out
    }

    /// This element with the ranges `drop` left out: children (from
    /// [`children`](Self::children)), children of a child ([`children_of`](Self::children_of))
    /// or attributes of a child ([`child_attributes`](Self::child_attributes)), none inside
    /// another. The rest stays byte for byte, its start tag (and so every declaration on it)
    /// included. A child's own declarations only ever served that child.
    pub fn without(&self, drop: &[Range<usize>]) -> PidfElement {
        let mut drop: Vec<Range<usize>> = drop.to_vec();
        drop.sort_by_key(|r| r.start);
        let base = self.raw.start as usize;
        let whole = self.buf.as_ref();
        let mut out = Vec::with_capacity(whole.len());
        let mut at = 0;
        for r in &drop {
            out.extend_from_slice(&whole[at..base + r.start]);
            at = base + r.end;
        }
        out.extend_from_slice(&whole[at..]);
        // offsets behind a dropped range move back by its length
        let shift = |pos: u32| {
            let removed: usize = drop
                .iter()
                .filter(|r| base + r.end <= pos as usize)
                .map(|r| r.len())
                .sum();
            pos - removed as u32
        };
        let span = |s: Span| Span {
            start: shift(s.start),
            end: shift(s.end),
        };
        PidfElement {
            kind: self.kind,
            name_end: self.name_end,
            buf: out.into(),
            raw: span(self.raw),
            id: span(self.id),
            ns_code: self.ns_code,
            ns: span(self.ns),
            uses: self.uses,
        }
    }
}

impl PidfDocument {
    /// This document with other elements (from [`PidfElement::without`], or a subset of its
    /// own): same entity and root declarations, no view (it no longer composes to the one it
    /// was parsed with).
    pub fn with_elements(&self, elements: impl IntoIterator<Item = PidfElement>) -> PidfDocument {
        let mut doc = self.clone();
        doc.elements = elements.into_iter().collect();
        doc.view_len = 0;
        doc
    }
}

/// Collects the children (depth 2 of the element walked as a document), or the children of
/// one child (depth 3 inside `parent`).
struct Children<'a> {
    text: &'a str,
    doc: &'a PidfDocument,
    /// Declarations of the element and of the open elements down to `target`: (prefix, raw
    /// namespace name).
    scope: Vec<(&'a str, &'a str)>,
    /// How many of `scope` each depth (1: the element, 2: a child, 3: its child) declared.
    depth_decls: [usize; 4],
    /// Depth of the elements collected (2 or 3).
    target: u32,
    /// For depth 3, the range of the child whose children are collected.
    parent: Option<Range<usize>>,
    /// The element being read: its start, name and where its content starts.
    open: Option<(usize, TagName, usize)>,
    out: Vec<Child<'a>>,
}

impl<'a> Children<'a> {
    /// The namespace `prefix` resolves to at the child: its own declarations, the element's,
    /// then the root's.
    fn resolve(&self, prefix: &str) -> Option<Cow<'a, str>> {
        if prefix == "xml" {
            return Some(Cow::Borrowed(XML_NS));
        }
        if let Some((_, ns)) = self.scope.iter().rev().find(|(p, _)| *p == prefix) {
            return Some(unescaped(ns));
        }
        let root = self
            .doc
            .namespaces
            .iter()
            .find(|n| self.doc.s(n.prefix) == prefix)
            .map(|n| self.doc.s(n.uri));
        match root {
            Some(ns) => Some(unescape(ns).unwrap_or(Cow::Borrowed(ns))),
            None => prefix.is_empty().then_some(Cow::Borrowed("")),
        }
    }
}

impl<'a> Handler for Children<'a> {
    type Error = crate::xml::Error;

    fn open(&mut self, name: TagName, lt: usize, depth: u32) -> Result<(), Self::Error> {
        if depth == self.target && self.parent.as_ref().is_none_or(|p| p.contains(&lt)) {
            self.open = Some((lt, name, lt));
        }
        Ok(())
    }

    fn attribute(&mut self, a: RawAttr, _lt: usize, depth: u32) -> Result<(), Self::Error> {
        let key = &self.text[a.key_start..a.key_end];
        let prefix = match key.strip_prefix("xmlns") {
            Some("") => "",
            Some(p) if p.starts_with(':') => &p[1..],
            _ => return Ok(()),
        };
        if depth <= self.target {
            self.scope
                .push((prefix, &self.text[a.value_start..a.value_end]));
            self.depth_decls[depth as usize] += 1;
        }
        Ok(())
    }

    fn start(&mut self, tag: StartTag, depth: u32) -> Result<(), Self::Error> {
        if depth == self.target
            && let Some(open) = self.open.as_mut()
        {
            open.2 = tag.after;
        }
        Ok(())
    }

    fn close(&mut self, depth: u32, at: usize, after: usize) -> Result<(), Self::Error> {
        if depth < 2 || depth > self.target {
            return Ok(());
        }
        if depth == self.target
            && let Some((lt, name, content)) = self.open.take()
        {
            let (prefix, local) = match name.colon {
                Some(c) => (&self.text[name.start..c], &self.text[c + 1..name.end]),
                None => ("", &self.text[name.start..name.end]),
            };
            let namespace = self.resolve(prefix).unwrap_or_default();
            self.out.push(Child {
                namespace,
                local,
                range: lt..after,
                // an empty element closes at its own `<`, before its content would start
                content: content..at.max(content),
            });
        }
        let n = std::mem::take(&mut self.depth_decls[depth as usize]);
        self.scope.truncate(self.scope.len() - n);
        Ok(())
    }
}

/// The text of one element walked as a document: character data and CDATA at depth 1.
struct TextOf<'a> {
    text: &'a str,
    out: String,
}

impl Handler for TextOf<'_> {
    type Error = crate::xml::Error;

    fn open(&mut self, _: TagName, _: usize, _: u32) -> Result<(), Self::Error> {
        Ok(())
    }

    fn attribute(&mut self, _: RawAttr, _: usize, _: u32) -> Result<(), Self::Error> {
        Ok(())
    }

    fn start(&mut self, _: StartTag, _: u32) -> Result<(), Self::Error> {
        Ok(())
    }

    fn close(&mut self, _: u32, _: usize, _: usize) -> Result<(), Self::Error> {
        Ok(())
    }

    fn text(&mut self, start: usize, end: usize, depth: u32) -> Result<(), Self::Error> {
        if depth == 1 {
            self.out.push_str(&text_value(&self.text[start..end]));
        }
        Ok(())
    }

    fn markup(
        &mut self,
        kind: Markup,
        start: usize,
        end: usize,
        depth: u32,
    ) -> Result<(), Self::Error> {
        if kind == Markup::CData && depth == 1 {
            // `<![CDATA[` ... `]]>`, taken literally
            self.out.push_str(&self.text[start + 9..end - 3]);
        }
        Ok(())
    }
}

/// The attributes of the start tag of one element walked as a document.
struct AttributesOf<'a> {
    text: &'a str,
    /// Where the element starts in its parent's bytes.
    base: usize,
    out: Vec<ChildAttribute<'a>>,
}

impl<'a> Handler for AttributesOf<'a> {
    type Error = crate::xml::Error;

    fn open(&mut self, _: TagName, _: usize, _: u32) -> Result<(), Self::Error> {
        Ok(())
    }

    fn attribute(&mut self, a: RawAttr, _: usize, depth: u32) -> Result<(), Self::Error> {
        let name = &self.text[a.key_start..a.key_end];
        if depth != 1 || name == "xmlns" || name.starts_with("xmlns:") {
            return Ok(());
        }
        let b = self.text.as_bytes();
        let mut from = a.key_start;
        while from > 0 && is_xml_space(b[from - 1]) {
            from -= 1;
        }
        self.out.push(ChildAttribute {
            name,
            value: attr_value(&self.text[a.value_start..a.value_end]),
            // through the closing quote
            range: self.base + from..self.base + a.value_end + 1,
        });
        Ok(())
    }

    fn start(&mut self, _: StartTag, _: u32) -> Result<(), Self::Error> {
        Ok(())
    }

    fn close(&mut self, _: u32, _: usize, _: usize) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DATA_MODEL_NS, PIDF_NS, compose, parse};
    use super::*;

    const RPID_NS: &str = "urn:ietf:params:xml:ns:pidf:rpid";

    /// The document composed from `doc` with the children `drop` says left out of each element.
    fn filtered(doc: &PidfDocument, drop: impl Fn(&PidfElement, &Child<'_>) -> bool) -> Vec<u8> {
        let elements = doc.elements.iter().map(|el| {
            let ranges: Vec<_> = el
                .children(doc)
                .iter()
                .filter(|c| drop(el, c))
                .map(|c| c.range.clone())
                .collect();
            el.without(&ranges)
        });
        let d = doc.with_elements(elements);
        compose("pres:alice@example.com", &[&d]).to_vec()
    }

    #[test]
    fn lists_children_with_their_namespaces() {
        let doc = parse(&crate::schema_check::example("pidf-rpid.xml")).unwrap();
        let names = |i: usize| -> Vec<(String, String)> {
            doc.elements[i]
                .children(&doc)
                .iter()
                .map(|c| (c.namespace.to_string(), c.local.to_string()))
                .collect()
        };
        let pidf = |l: &str| (PIDF_NS.to_string(), l.to_string());
        let dm = |l: &str| (DATA_MODEL_NS.to_string(), l.to_string());
        assert_eq!(
            names(0),
            [
                pidf("status"),
                dm("deviceID"),
                pidf("contact"),
                pidf("note")
            ]
        );
        assert_eq!(
            names(1),
            [(RPID_NS.to_string(), "activities".to_string()), dm("note")]
        );
        assert_eq!(names(2), [dm("deviceID")]);
        let el = &doc.elements[1];
        let first = &el.children(&doc)[0];
        assert_eq!(
            &el.as_bytes()[first.range.clone()],
            b"<rpid:activities><rpid:busy/></rpid:activities>"
        );
    }

    #[test]
    fn local_declarations_resolve() {
        let doc = parse(
            br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><x:e xmlns:x="urn:x" xmlns:y="urn:y" id="1"><y:f/><x:g xmlns:x="urn:z"/><h xmlns="urn:h"/></x:e></presence>"#,
        )
        .unwrap();
        let got: Vec<_> = doc.elements[0]
            .children(&doc)
            .into_iter()
            .map(|c| format!("{{{}}}{}", c.namespace, c.local))
            .collect();
        assert_eq!(got, ["{urn:y}f", "{urn:z}g", "{urn:h}h"]);
    }

    #[test]
    fn drops_a_child_of_a_person() {
        let doc = parse(&crate::schema_check::example("pidf-rpid.xml")).unwrap();
        let out = filtered(&doc, |el, c| {
            el.kind == ElementKind::Person && c.namespace == RPID_NS && c.local == "activities"
        });
        crate::schema_check::assert_valid(&out);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("activities"), "{text}");
        assert!(text.contains("<dm:note>In a meeting</dm:note>"), "{text}");
        // the untouched elements are as published
        assert!(text.contains(std::str::from_utf8(doc.elements[0].as_bytes()).unwrap()));
    }

    #[test]
    fn drops_children_of_a_tuple() {
        let doc = parse(&crate::schema_check::example("pidf-rpid.xml")).unwrap();
        let out = filtered(&doc, |el, c| {
            el.kind == ElementKind::Tuple
                && ((c.namespace == PIDF_NS && c.local == "note")
                    || (c.namespace == DATA_MODEL_NS && c.local == "deviceID"))
        });
        crate::schema_check::assert_valid(&out);
        let d = parse(&out).unwrap();
        let tuple = std::str::from_utf8(d.elements[0].as_bytes()).unwrap();
        assert!(
            !tuple.contains("note") && !tuple.contains("deviceID"),
            "{tuple}"
        );
        assert_eq!(d.elements[0].id(), Some("sg89ae"));
        assert!(tuple.contains("<contact>sip:alice@192.0.2.10</contact>"));
    }

    #[test]
    fn drops_a_child_of_a_device() {
        // deviceID is required in a device (data-model.xsd): drop a note instead
        let body = br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="pres:alice@example.com"><dm:device id="d&#x31;"><dm:deviceID>urn:x:1</dm:deviceID><dm:note>laptop</dm:note></dm:device></presence>"#;
        let doc = parse(body).unwrap();
        let out = filtered(&doc, |el, c| {
            el.kind == ElementKind::Device && c.namespace == DATA_MODEL_NS && c.local == "note"
        });
        crate::schema_check::assert_valid(&out);
        let d = parse(&out).unwrap();
        assert_eq!(
            d.elements[0].as_bytes(),
            br#"<dm:device id="d&#x31;"><dm:deviceID>urn:x:1</dm:deviceID></dm:device>"#
        );
        // the unescaped id, kept behind the element, moved with it
        let kept = doc.elements[0].without(&[doc.elements[0].children(&doc)[1].range.clone()]);
        assert_eq!(kept.id(), Some("d1"));
        assert_eq!(kept.namespace(), DATA_MODEL_NS);
    }

    #[test]
    fn drops_a_tuple_by_its_contact() {
        let doc = parse(&crate::schema_check::example("pidf-rpid.xml")).unwrap();
        let keep = doc.elements.iter().filter(|el| {
            !el.children(&doc).iter().any(|c| {
                c.local == "contact"
                    && &el.as_bytes()[c.range.clone()] == b"<contact>sip:alice@192.0.2.10</contact>"
            })
        });
        let d = doc.with_elements(keep.cloned());
        let out = compose("pres:alice@example.com", &[&d]);
        crate::schema_check::assert_valid(&out);
        assert_eq!(parse(&out).unwrap().elements.len(), 2);
        assert!(d.view().is_none());
    }

    #[test]
    fn children_of_a_child() {
        let body = br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x="urn:x" entity="sip:a@b"><tuple id="t"><status xmlns:y="urn:y"><basic>open</basic><y:e/><x:f>1</x:f></status><x:g><x:h/></x:g></tuple></presence>"#;
        let doc = parse(body).unwrap();
        let el = &doc.elements[0];
        let children = el.children(&doc);
        let names = |cs: &[Child<'_>]| -> Vec<String> {
            cs.iter()
                .map(|c| format!("{{{}}}{}", c.namespace, c.local))
                .collect()
        };
        let status = el.children_of(&doc, &children[0]);
        assert_eq!(
            names(&status),
            [
                format!("{{{PIDF_NS}}}basic"),
                "{urn:y}e".into(),
                "{urn:x}f".into()
            ]
        );
        assert_eq!(names(&el.children_of(&doc, &children[1])), ["{urn:x}h"]);
        assert_eq!(el.child_text(&status[0]), "open");
        assert_eq!(el.child_text(&status[1]), "");
        // a grandchild left out
        let kept = el.without(&[status[1].range.clone()]);
        assert_eq!(
            kept.as_bytes(),
            br#"<tuple id="t"><status xmlns:y="urn:y"><basic>open</basic><x:f>1</x:f></status><x:g><x:h/></x:g></tuple>"#
        );
        assert_eq!(kept.id(), Some("t"));
    }

    #[test]
    fn text_and_attributes_of_a_child() {
        let body = br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:a@b"><tuple id="t"><status/><r:user-input
 idle-threshold = '600'	last-input="2025-01-01T00:00:00Z" id="u&#x31;" xmlns:z="urn:z">i<!-- c -->d<![CDATA[l]]>&#101;</r:user-input><contact> sip:a@b </contact></tuple></presence>"#;
        let doc = parse(body).unwrap();
        let el = &doc.elements[0];
        let children = el.children(&doc);
        assert_eq!(el.child_text(&children[0]), "");
        assert_eq!(el.child_text(&children[1]), "idle");
        assert_eq!(el.child_text(&children[2]), " sip:a@b ");
        let attrs = el.child_attributes(&children[1]);
        let got: Vec<_> = attrs.iter().map(|a| (a.name, &*a.value)).collect();
        assert_eq!(
            got,
            [
                ("idle-threshold", "600"),
                ("last-input", "2025-01-01T00:00:00Z"),
                ("id", "u1")
            ]
        );
        // attributes left out, the start tag stays well-formed
        let kept = el.without(&[attrs[0].range.clone(), attrs[1].range.clone()]);
        let text = std::str::from_utf8(kept.as_bytes()).unwrap();
        assert!(
            text.contains(r#"<r:user-input id="u&#x31;" xmlns:z="urn:z">"#),
            "{text}"
        );
        let d = doc.with_elements([kept]);
        let out = compose("sip:a@b", &[&d]);
        crate::schema_check::assert_valid(&out);
        assert!(el.child_attributes(&children[2]).is_empty());
    }
}
