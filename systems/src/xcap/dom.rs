//! A small owned XML tree for XCAP documents: elements keep their prefix, local name and
//! resolved namespace, their namespace declarations and attributes in the order written;
//! text, CDATA, comments and processing instructions are kept, so a document that is parsed
//! and written again keeps its shape. The tree is built by a handler of [`crate::xml::walk`],
//! which checks namespace well-formedness; faults map to RFC 4825
//! §11 `not-well-formed`, `not-utf-8` (the encoding rule of [`crate::xml::encoding`]) and
//! `not-xml-frag`.

use super::error::{ErrorCondition, XcapError, escape_attr_into, escape_text_into};
use crate::xml::encoding::DeclarationUse;
use crate::xml::namespace::{self, Declaration};
use crate::xml::walk::{Handler, Markup, RawAttr, StartTag, TagName, walk};
use crate::xml::{self, Fault, encoding, scan};

pub use crate::xml::namespace::{XML_NS, XMLNS_NS};

/// Deepest element nesting accepted: keeps the recursive walks (validation, serialization,
/// drop) far from the stack limit whatever a client sends.
pub const MAX_DEPTH: usize = 256;

/// A shared name: namespace names and prefixes are shared by every element that uses them.
pub type Name = std::sync::Arc<str>;

/// A namespace binding: prefix (None: the default namespace) and namespace name ("" undeclares
/// the default namespace).
pub type Binding = (Option<Name>, Name);

/// A node of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// An element.
    Element(Element),
    /// Character data, unescaped.
    Text(String),
    /// A CDATA section's content.
    CData(String),
    /// Markup kept verbatim: a comment, processing instruction, XML declaration or DOCTYPE,
    /// as written (`<!--...-->`, `<?...?>`).
    Markup(String),
}

/// An attribute: qualified name as written, resolved namespace (unprefixed: none), value
/// unescaped and normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Prefix as written.
    pub prefix: Option<Name>,
    /// Local name.
    pub local: Name,
    /// Namespace name (None for unprefixed attributes).
    pub ns: Option<Name>,
    /// Value, unescaped.
    pub value: String,
}

/// An element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Prefix as written.
    pub prefix: Option<Name>,
    /// Local name.
    pub local: Name,
    /// Namespace name (None: no namespace).
    pub ns: Option<Name>,
    /// Namespace declarations on this element, in order.
    pub ns_decls: Vec<Binding>,
    /// Other attributes, in order.
    pub attrs: Vec<Attribute>,
    /// Children in document order.
    pub children: Vec<Node>,
}

/// A parsed document: what precedes the root element (declaration, comments, whitespace),
/// the root, and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Nodes before the root element.
    pub prolog: Vec<Node>,
    /// The document element.
    pub root: Element,
    /// Nodes after the root element.
    pub epilog: Vec<Node>,
}

impl Element {
    /// A new element with no attributes or children.
    pub fn new(prefix: Option<&str>, local: &str, ns: Option<&str>) -> Element {
        Element {
            prefix: prefix.map(Name::from),
            local: Name::from(local),
            ns: ns.map(Name::from),
            ns_decls: Vec::new(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Whether this element is `{ns}local`.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        &*self.local == local && self.ns.as_deref() == Some(ns)
    }

    /// Qualified name as written.
    pub fn qname(&self) -> String {
        match &self.prefix {
            Some(p) => format!("{p}:{}", self.local),
            None => self.local.to_string(),
        }
    }

    /// The child elements with their index in `children`.
    pub fn child_elements(&self) -> impl Iterator<Item = (usize, &Element)> {
        self.children
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match n {
                Node::Element(e) => Some((i, e)),
                _ => None,
            })
    }

    /// Value of the attribute `{ns}local` (None ns: unprefixed).
    pub fn attr_ns(&self, ns: Option<&str>, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| &*a.local == local && a.ns.as_deref() == ns)
            .map(|a| a.value.as_str())
    }

    /// Value of the unprefixed attribute `local`.
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attr_ns(None, local)
    }

    /// Concatenated text and CDATA children.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            match n {
                Node::Text(t) | Node::CData(t) => s.push_str(t),
                _ => {}
            }
        }
        s
    }

    /// Whether any text child has something other than XML whitespace.
    pub fn has_non_ws_text(&self) -> bool {
        self.children.iter().any(|n| match n {
            Node::Text(t) | Node::CData(t) => !t.chars().all(is_xml_space),
            _ => false,
        })
    }

    /// The element at `path` (child indices into `children`) below this one.
    pub fn at(&self, path: &[usize]) -> Option<&Element> {
        let mut el = self;
        for &i in path {
            el = match el.children.get(i)? {
                Node::Element(e) => e,
                _ => return None,
            };
        }
        Some(el)
    }

    /// Mutable [`at`](Self::at).
    pub fn at_mut(&mut self, path: &[usize]) -> Option<&mut Element> {
        let mut el = self;
        for &i in path {
            el = match el.children.get_mut(i)? {
                Node::Element(e) => e,
                _ => return None,
            };
        }
        Some(el)
    }

    /// Looks `prefix` up in this element's own declarations.
    fn own_binding(&self, prefix: Option<&str>) -> Option<&str> {
        self.ns_decls
            .iter()
            .rev()
            .find(|(p, _)| p.as_deref() == prefix)
            .map(|(_, n)| &**n)
    }
}

impl Document {
    /// Namespace bindings in scope at the element at `path` (its own declarations included),
    /// outermost first; later entries shadow earlier ones with the same prefix.
    pub fn in_scope(&self, path: &[usize]) -> Vec<Binding> {
        let mut out: Vec<Binding> = Vec::new();
        let mut el = &self.root;
        out.extend(el.ns_decls.iter().cloned());
        for &i in path {
            el = match el.children.get(i) {
                Some(Node::Element(e)) => e,
                _ => break,
            };
            out.extend(el.ns_decls.iter().cloned());
        }
        out
    }

    /// Writes the document (prolog, root, epilog) as UTF-8.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(1024);
        for n in &self.prolog {
            write_node(&mut out, n);
        }
        write_element(&mut out, &self.root, &[]);
        for n in &self.epilog {
            write_node(&mut out, n);
        }
        out.into_bytes()
    }
}

/// Resolves `prefix` in `scope` (innermost last); `xml` is always bound.
pub fn lookup<'a>(scope: &'a [Binding], prefix: Option<&str>) -> Option<&'a str> {
    if prefix == Some("xml") {
        return Some(XML_NS);
    }
    scope
        .iter()
        .rev()
        .find(|(p, _)| p.as_deref() == prefix)
        .map(|(_, n)| &**n)
}

/// XML whitespace (S production).
pub fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

pub use crate::xml::scan::{is_ncname, split_qname};

/// What a parse is for: the condition reported when the input is not well-formed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Document,
    Fragment,
}

fn nwf(mode: Mode, why: impl Into<String>) -> XcapError {
    let cond = match mode {
        Mode::Document => ErrorCondition::NotWellFormed,
        Mode::Fragment => ErrorCondition::NotXmlFrag,
    };
    XcapError::conflict(cond, why)
}

fn not_utf8() -> XcapError {
    XcapError::conflict(ErrorCondition::NotUtf8, "body is not UTF-8")
}

/// The XCAP condition of an XML fault (RFC 4825 §11): encodings give `not-utf-8`, the rest
/// `not-well-formed` (`not-xml-frag` for an element PUT).
fn xml_fault(e: xml::Error, mode: Mode) -> XcapError {
    match e.fault {
        Fault::NotUtf8 | Fault::Encoding => not_utf8(),
        Fault::Syntax | Fault::Doctype => nwf(mode, e.to_string()),
    }
}

/// Checks the encoding of a body ([`crate::xml::encoding`]: UTF-8, optionally with a BOM) and
/// returns the text after the BOM. UTF-16/32 BOMs and invalid UTF-8 give `not-utf-8`.
pub fn utf8_body(bytes: &[u8]) -> Result<&str, XcapError> {
    let bytes = &bytes[encoding::bom_len(bytes)..];
    std::str::from_utf8(bytes).map_err(|_| not_utf8())
}

/// Parses a whole document (PUT of a document, or a stored one).
pub fn parse_document(bytes: &[u8]) -> Result<Document, XcapError> {
    let nodes = parse_nodes(bytes, &[], Mode::Document)?;
    let mut prolog = Vec::new();
    let mut epilog = Vec::new();
    let mut root = None;
    for n in nodes {
        match n {
            Node::Element(e) => root = Some(e),
            other if root.is_none() => prolog.push(other),
            other => epilog.push(other),
        }
    }
    let root = root.ok_or_else(|| nwf(Mode::Document, "no root element"))?;
    Ok(Document {
        prolog,
        root,
        epilog,
    })
}

/// Parses the body of an element PUT (RFC 4825 §7.4): exactly one element, optionally
/// surrounded by whitespace, comments and PIs (dropped) and preceded by an XML declaration
/// (checked like a document's); a DOCTYPE is refused. Prefixes not declared in the body are
/// resolved in `context` (the bindings in scope at the insertion point); the result keeps only
/// its own declarations.
pub fn parse_fragment(bytes: &[u8], context: &[Binding]) -> Result<Element, XcapError> {
    let nodes = parse_nodes(bytes, context, Mode::Fragment)?;
    nodes
        .into_iter()
        .find_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
        .ok_or_else(|| nwf(Mode::Fragment, "body is not an element"))
}

/// Reads `bytes` into top-level nodes, building elements with resolved namespaces.
fn parse_nodes(bytes: &[u8], context: &[Binding], mode: Mode) -> Result<Vec<Node>, XcapError> {
    let ascii = scan::check_chars(bytes).map_err(|e| xml_fault(e, mode))?;
    let mut builder = Builder {
        text: std::str::from_utf8(bytes).map_err(|_| not_utf8())?,
        mode,
        top: Vec::new(),
        stack: Vec::new(),
        scope: context.to_vec(),
        added: Vec::new(),
        names: Vec::new(),
        attrs: Vec::new(),
        was_empty: false,
    };
    match walk(bytes, encoding::bom_len(bytes), ascii, &mut builder) {
        Ok(()) => Ok(builder.top),
        Err(Fail::Xml(e)) => Err(xml_fault(e, mode)),
        Err(Fail::Xcap(e)) => Err(e),
    }
}

/// Why building the tree stopped: the walker's XML fault, or an XCAP error of the tree.
enum Fail {
    Xml(xml::Error),
    Xcap(XcapError),
}

impl From<xml::Error> for Fail {
    fn from(e: xml::Error) -> Fail {
        Fail::Xml(e)
    }
}

impl From<XcapError> for Fail {
    fn from(e: XcapError) -> Fail {
        Fail::Xcap(e)
    }
}

/// Builds the tree from what the walker finds.
struct Builder<'a> {
    /// The input (checked UTF-8); walker offsets index it.
    text: &'a str,
    mode: Mode,
    /// Top-level nodes.
    top: Vec<Node>,
    /// Open elements, innermost last.
    stack: Vec<Element>,
    /// Bindings in scope, and for each open element how many of them it added.
    scope: Vec<Binding>,
    added: Vec<usize>,
    names: Vec<Name>,
    /// Attributes of the start tag being read.
    attrs: Vec<RawAttr>,
    /// The last start tag was empty (`/>`): its close has nothing to pop.
    was_empty: bool,
}

impl Builder<'_> {
    fn push_node(&mut self, node: Node) {
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(node),
            None => self.top.push(node),
        }
    }

    /// Appends text to the open element, merging with a preceding text node.
    fn append_text(&mut self, s: &str) {
        if let Some(parent) = self.stack.last_mut() {
            if let Some(Node::Text(t)) = parent.children.last_mut() {
                t.push_str(s);
            } else {
                parent.children.push(Node::Text(s.to_string()));
            }
        }
    }
}

impl Handler for Builder<'_> {
    type Error = Fail;
    // XCAP keeps the document as sent, declaration included
    const DECLARATION: DeclarationUse = DeclarationUse::Stored;

    fn open(&mut self, _name: TagName, _lt: usize, _depth: u32) -> Result<(), Fail> {
        self.attrs.clear();
        Ok(())
    }

    fn attribute(&mut self, a: RawAttr, _lt: usize, _depth: u32) -> Result<(), Fail> {
        self.attrs.push(a);
        Ok(())
    }

    fn start(&mut self, tag: StartTag, depth: u32) -> Result<(), Fail> {
        let (name, empty) = (tag.name, tag.empty);
        if !empty && depth as usize > MAX_DEPTH {
            return Err(nwf(self.mode, "elements nested too deeply").into());
        }
        let qname = &self.text[name.start..name.end];
        let (el, n) = start_element(
            self.text,
            qname,
            &self.attrs,
            &mut self.scope,
            &mut self.names,
            self.mode,
        )?;
        self.was_empty = empty;
        if empty {
            self.scope.truncate(self.scope.len() - n);
            self.push_node(Node::Element(el));
        } else {
            self.added.push(n);
            self.stack.push(el);
        }
        Ok(())
    }

    fn close(&mut self, _depth: u32, _at: usize, _after: usize) -> Result<(), Fail> {
        if std::mem::take(&mut self.was_empty) {
            return Ok(());
        }
        let el = self
            .stack
            .pop()
            .ok_or_else(|| nwf(self.mode, "unmatched end tag"))?;
        let n = self.added.pop().unwrap_or(0);
        self.scope.truncate(self.scope.len() - n);
        self.push_node(Node::Element(el));
        Ok(())
    }

    fn text(&mut self, start: usize, end: usize, depth: u32) -> Result<(), Fail> {
        let raw = &self.text[start..end];
        if depth == 0 {
            // white space around the root, as written
            self.top.push(Node::Text(raw.to_string()));
        } else {
            let value = scan::text_value(raw);
            self.append_text(&value);
        }
        Ok(())
    }

    fn markup(&mut self, kind: Markup, start: usize, end: usize, _depth: u32) -> Result<(), Fail> {
        let raw = &self.text[start..end];
        let node = match kind {
            Markup::CData => Node::CData(raw[9..raw.len() - 3].to_string()),
            _ => Node::Markup(raw.to_string()),
        };
        self.push_node(node);
        Ok(())
    }

    fn doctype(&mut self, _at: usize) -> Result<(), Fail> {
        match self.mode {
            // kept as written; no entity it declares is expanded
            Mode::Document => Ok(()),
            Mode::Fragment => Err(nwf(Mode::Fragment, "DOCTYPE in a fragment").into()),
        }
    }
}

/// Builds an element from a start tag: declarations first (they apply to the element's own
/// name and attributes), then names resolved. Returns the element and how many bindings
/// it pushed on `scope`. Namespace names and prefixes are shared with the declarations
/// (`Arc<str>` clones), so most elements cost only their local name and child list.
fn start_element(
    text: &str,
    qname: &str,
    raw_attrs: &[RawAttr],
    scope: &mut Vec<Binding>,
    names: &mut Vec<Name>,
    mode: Mode,
) -> Result<(Element, usize), XcapError> {
    // the walker has checked the names
    let (prefix, local) = split_qname(qname).ok_or_else(|| nwf(mode, "invalid element name"))?;
    let before = scope.len();
    let mut decls: Vec<Binding> = Vec::new();
    // Ordinary attributes are built as read; prefixed ones are resolved once every
    // declaration of the tag is known (`pending`: index, prefix).
    let mut attrs: Vec<Attribute> = Vec::new();
    let mut pending: Vec<(usize, &str)> = Vec::new();
    for a in raw_attrs {
        let key = &text[a.key_start..a.key_end];
        let value = scan::attr_value(&text[a.value_start..a.value_end]).into_owned();
        let (ap, al) = split_qname(key).ok_or_else(|| nwf(mode, "invalid attribute name"))?;
        let declared = match (ap, al) {
            (None, "xmlns") => Some(""),
            (Some("xmlns"), p) => Some(p),
            _ => None,
        };
        if let Some(p) = declared {
            match namespace::check_declaration(p.as_bytes(), value.as_bytes()) {
                Ok(Declaration::Bind) => {
                    let p = (!p.is_empty()).then(|| Name::from(p));
                    decls.push((p, Name::from(value)));
                }
                Ok(Declaration::Redundant) => {}
                Err(reason) => return Err(nwf(mode, reason)),
            }
            continue;
        }
        if let Some(p) = ap {
            pending.push((attrs.len(), p));
        } else if attrs.iter().any(|x| x.ns.is_none() && &*x.local == al) {
            return Err(nwf(mode, "duplicate attribute"));
        }
        attrs.push(Attribute {
            prefix: None,
            local: intern(names, al),
            ns: None,
            value,
        });
    }
    let n = decls.len();
    scope.extend(decls.iter().cloned());
    let fail = |scope: &mut Vec<Binding>, why: String| {
        scope.truncate(before);
        Err(nwf(mode, why))
    };
    let (el_prefix, ns) = match (binding(scope, prefix), prefix) {
        (Some((p, uri)), _) => (p.clone(), (!uri.is_empty()).then(|| uri.clone())),
        (None, None) => (None, None),
        (None, Some(p)) => return fail(scope, format!("unbound prefix '{p}'")),
    };
    for &(i, p) in &pending {
        let Some((bp, uri)) = binding(scope, Some(p)) else {
            return fail(scope, format!("unbound prefix '{p}'"));
        };
        let (bp, uri) = (bp.clone(), uri.clone());
        // Namespaces in XML §6.3: no two attributes with the same expanded name.
        let local = &attrs[i].local;
        if attrs
            .iter()
            .any(|x| x.ns.as_deref() == Some(&*uri) && x.local == *local)
        {
            return fail(scope, "duplicate attribute".to_string());
        }
        attrs[i].prefix = bp;
        attrs[i].ns = Some(uri);
    }
    Ok((
        Element {
            prefix: el_prefix,
            local: intern(names, local),
            ns,
            ns_decls: decls,
            attrs,
            children: Vec::new(),
        },
        n,
    ))
}

/// A shared copy of `s` from the parse's small cache of names (most documents use a handful
/// of element and attribute names many times).
fn intern(cache: &mut Vec<Name>, s: &str) -> Name {
    if let Some(n) = cache.iter().find(|n| &***n == s) {
        return n.clone();
    }
    let n = Name::from(s);
    if cache.len() < 32 {
        cache.push(n.clone());
    }
    n
}

/// The binding of `prefix` in `scope` (innermost last), with the shared names; `xml` is
/// always bound.
fn binding<'a>(scope: &'a [Binding], prefix: Option<&str>) -> Option<(&'a Option<Name>, &'a Name)> {
    if prefix == Some("xml") {
        return Some((&XML_BINDING.0, &XML_BINDING.1));
    }
    scope
        .iter()
        .rev()
        .find(|(p, _)| p.as_deref() == prefix)
        .map(|(p, n)| (p, n))
}

static XML_BINDING: std::sync::LazyLock<(Option<Name>, Name)> =
    std::sync::LazyLock::new(|| (Some(Name::from("xml")), Name::from(XML_NS)));

fn write_node(out: &mut String, n: &Node) {
    match n {
        Node::Element(e) => write_element(out, e, &[]),
        Node::Text(t) => escape_text_into(out, t),
        Node::CData(c) => {
            out.push_str("<![CDATA[");
            out.push_str(c);
            out.push_str("]]>");
        }
        Node::Markup(m) => out.push_str(m),
    }
}

/// Writes `el` with `extra` declarations added to its start tag.
fn write_element(out: &mut String, el: &Element, extra: &[Binding]) {
    out.push('<');
    push_qname(out, el.prefix.as_deref(), &el.local);
    for (p, uri) in extra.iter().chain(el.ns_decls.iter()) {
        match p {
            Some(p) => {
                out.push_str(" xmlns:");
                out.push_str(p);
            }
            None => out.push_str(" xmlns"),
        }
        out.push_str("=\"");
        escape_attr_into(out, uri);
        out.push('"');
    }
    for a in &el.attrs {
        out.push(' ');
        push_qname(out, a.prefix.as_deref(), &a.local);
        out.push_str("=\"");
        escape_attr_into(out, &a.value);
        out.push('"');
    }
    if el.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for c in &el.children {
        write_node(out, c);
    }
    out.push_str("</");
    push_qname(out, el.prefix.as_deref(), &el.local);
    out.push('>');
}

fn push_qname(out: &mut String, prefix: Option<&str>, local: &str) {
    if let Some(p) = prefix {
        out.push_str(p);
        out.push(':');
    }
    out.push_str(local);
}

/// Collects the prefixes used by names in the subtree (None: unprefixed element names).
fn used_prefixes(el: &Element, out: &mut Vec<Option<Name>>) {
    if !out.contains(&el.prefix) {
        out.push(el.prefix.clone());
    }
    for a in &el.attrs {
        if a.prefix.is_some() && !out.contains(&a.prefix) {
            out.push(a.prefix.clone());
        }
    }
    for (_, c) in el.child_elements() {
        used_prefixes(c, out);
    }
}

/// Serializes `el` exactly as it stands in its document: its own declarations only
/// (RFC 4825 §8.3, element GET).
pub fn element_as_written(el: &Element) -> String {
    let mut out = String::with_capacity(256);
    write_element(&mut out, el, &[]);
    out
}

/// Serializes `el` as a self-contained fragment: the declarations from its ancestors
/// (`ancestors_scope`) that the subtree uses are made explicit on it (for copying an element
/// into another document, such as the rls-services global index).
pub fn element_to_string(el: &Element, ancestors_scope: &[Binding]) -> String {
    let mut used = Vec::new();
    used_prefixes(el, &mut used);
    let mut extra: Vec<Binding> = Vec::new();
    for p in used {
        if p.as_deref() == Some("xml") || el.own_binding(p.as_deref()).is_some() {
            continue;
        }
        match binding(ancestors_scope, p.as_deref()) {
            Some((_, uri)) if p.is_none() && uri.is_empty() => {}
            Some((_, uri)) => extra.push((p, uri.clone())),
            None => {}
        }
    }
    let mut out = String::with_capacity(256);
    write_element(&mut out, el, &extra);
    out
}

/// The `application/xcap-ns+xml` body (RFC 4825 §10, namespace selector): the element's
/// name with a declaration for every binding in scope, no attributes and no content.
pub fn namespaces_to_string(el: &Element, scope: &[Binding]) -> String {
    let mut effective: Vec<Binding> = Vec::new();
    for (p, uri) in scope {
        if let Some(slot) = effective.iter_mut().find(|(q, _)| q == p) {
            slot.1 = uri.clone();
        } else {
            effective.push((p.clone(), uri.clone()));
        }
    }
    effective.retain(|(p, uri)| !(p.is_none() && uri.is_empty()));
    let bare = Element {
        prefix: el.prefix.clone(),
        local: el.local.clone(),
        ns: el.ns.clone(),
        ns_decls: Vec::new(),
        attrs: Vec::new(),
        children: Vec::new(),
    };
    let mut out = String::with_capacity(128);
    write_element(&mut out, &bare, &effective);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(e: XcapError) -> ErrorCondition {
        e.condition.expect("409 condition")
    }

    #[test]
    fn round_trip_keeps_shape() {
        let src = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c -->\n<rl:resource-lists xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\" xmlns:x=\"urn:x\">\n  <rl:list name=\"a &amp; b\" x:y=\"1\">\n    <rl:entry uri=\"sip:b@c\"><rl:display-name xml:lang=\"en\">B &lt;b&gt;</rl:display-name></rl:entry>\n    <?pi data?><![CDATA[<raw>]]>\n  </rl:list>\n</rl:resource-lists>\n";
        let doc = parse_document(src.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(doc.to_bytes()).unwrap(), src);
        assert_eq!(
            doc.root.ns.as_deref(),
            Some("urn:ietf:params:xml:ns:resource-lists")
        );
        let list = doc.root.at(&[1]).unwrap();
        assert_eq!(list.attr("name"), Some("a & b"));
        assert_eq!(list.attr_ns(Some("urn:x"), "y"), Some("1"));
        let dn = list.at(&[1, 0]).unwrap();
        assert_eq!(dn.attr_ns(Some(XML_NS), "lang"), Some("en"));
        assert_eq!(dn.text(), "B <b>");
    }

    #[test]
    fn not_well_formed() {
        for bad in [
            "",
            "<a>",
            "<a></b>",
            "<a/><b/>",
            "text<a/>",
            "<p:a/>",
            "<a p:x='1'/>",
            "<a x='1' x='2'/>",
            "<a xmlns:p='u' xmlns:q='u' p:x='1' q:x='2'/>",
            "<a xmlns:p=''/>",
            "<a>&foo;</a>",
            "<a x='<'/>",
            "<a>\u{1}</a>",
            "<a>\u{FFFE}</a>",
            "<a x='\u{FFFF}'/>",
            "<a>]]></a>",
            "<1a/>",
            "<a xmlns:xml='urn:other'/>",
            "<a/><?xml version='1.0'?>",
        ] {
            let e = parse_document(bad.as_bytes()).unwrap_err();
            assert_eq!(e.status, 409, "{bad}");
            assert_eq!(cond(e), ErrorCondition::NotWellFormed, "{bad}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        let e = parse_document(deep.as_bytes()).unwrap_err();
        assert_eq!(cond(e), ErrorCondition::NotWellFormed);
        let ok = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert!(parse_document(ok.as_bytes()).is_ok());
    }

    #[test]
    fn not_utf8() {
        let e = parse_document(b"<a>\xff</a>").unwrap_err();
        assert_eq!(cond(e), ErrorCondition::NotUtf8);
        let e = parse_document(b"<?xml version='1.0' encoding='ISO-8859-1'?><a/>").unwrap_err();
        assert_eq!(cond(e), ErrorCondition::NotUtf8);
        // xml::encoding: a stored document declares UTF-8, whatever its bytes
        for label in ["US-ASCII", "UTF-16", "windows-1252"] {
            let body = format!("<?xml version='1.0' encoding='{label}'?><a/>");
            let e = parse_document(body.as_bytes()).unwrap_err();
            assert_eq!(cond(e), ErrorCondition::NotUtf8, "{label}");
        }
        let latin1 = "<?xml version='1.0' encoding='ISO-8859-1'?><a>\u{e9}</a>";
        let e = parse_document(latin1.as_bytes()).unwrap_err();
        assert_eq!(cond(e), ErrorCondition::NotUtf8);
        assert!(parse_document(b"<?xml version='1.0' encoding='utf8'?><a/>").is_ok());
        let e = parse_document(b"\xff\xfe<\x00a\x00/\x00>\x00").unwrap_err();
        assert_eq!(cond(e), ErrorCondition::NotUtf8);
        assert!(parse_document(b"\xef\xbb\xbf<a/>").is_ok());
    }

    #[test]
    fn fragment() {
        let ctx = vec![
            (None, Name::from("urn:d")),
            (Some("p".into()), "urn:p".into()),
        ];
        let el = parse_fragment(b" <entry p:x='1'/> ", &ctx).unwrap();
        assert_eq!(
            parse_fragment(b"<?xml version='1.0'?>\n<a/>", &ctx)
                .unwrap()
                .local,
            "a".into()
        );
        let e = parse_fragment(b"<?xml version='1.0' encoding='UTF-16'?><a/>", &ctx).unwrap_err();
        assert_eq!(cond(e), ErrorCondition::NotUtf8);
        assert_eq!(el.ns.as_deref(), Some("urn:d"));
        assert_eq!(el.attr_ns(Some("urn:p"), "x"), Some("1"));
        for bad in [
            "<a/><b/>",
            "text",
            "<a/>text",
            "<a>",
            "<!DOCTYPE a><a/>",
            "",
        ] {
            let e = parse_fragment(bad.as_bytes(), &ctx).unwrap_err();
            assert_eq!(cond(e), ErrorCondition::NotXmlFrag, "{bad}");
        }
    }

    #[test]
    fn element_serialization_makes_scope_explicit() {
        let src = "<r xmlns='urn:d' xmlns:p='urn:p' xmlns:q='urn:q'><p:a><b q:z='1'/></p:a></r>";
        let doc = parse_document(src.as_bytes()).unwrap();
        let a = doc.root.at(&[0]).unwrap();
        let s = element_to_string(a, &doc.in_scope(&[]));
        assert_eq!(
            s,
            "<p:a xmlns:p=\"urn:p\" xmlns=\"urn:d\" xmlns:q=\"urn:q\"><b q:z=\"1\"/></p:a>"
        );
        let n = namespaces_to_string(a, &doc.in_scope(&[0]));
        assert_eq!(
            n,
            "<p:a xmlns=\"urn:d\" xmlns:p=\"urn:p\" xmlns:q=\"urn:q\"/>"
        );
    }
}
