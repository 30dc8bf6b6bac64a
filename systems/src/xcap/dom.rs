//! A small owned XML tree for XCAP documents: elements keep their prefix, local name and
//! resolved namespace, their namespace declarations and attributes in the order written;
//! text, CDATA, comments and processing instructions are kept, so a document that is parsed
//! and written again keeps its shape. Parsing checks namespace well-formedness (RFC 4825
//! §11: `not-well-formed`, `not-utf-8`, `not-xml-frag`).

use super::error::{ErrorCondition, XcapError, escape_attr_into, escape_text_into};
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

/// The namespace the `xml` prefix is bound to (Namespaces in XML §3).
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// Deepest element nesting accepted: keeps the recursive walks (validation, serialization,
/// drop) far from the stack limit whatever a client sends.
pub const MAX_DEPTH: usize = 256;

/// The namespace of `xmlns` declarations (never declared, never used for content).
pub const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

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

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic()
        || c == '_'
        || matches!(c as u32,
            0xC0..=0xD6 | 0xD8..=0xF6 | 0xF8..=0x2FF | 0x370..=0x37D | 0x37F..=0x1FFF
            | 0x200C..=0x200D | 0x2070..=0x218F | 0x2C00..=0x2FEF | 0x3001..=0xD7FF
            | 0xF900..=0xFDCF | 0xFDF0..=0xFFFD | 0x10000..=0xEFFFF)
}

fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || c.is_ascii_digit()
        || c == '-'
        || c == '.'
        || matches!(c as u32, 0xB7 | 0x300..=0x36F | 0x203F..=0x2040)
}

/// Whether `s` is an NCName (a name without a colon).
pub fn is_ncname(s: &str) -> bool {
    if s.is_ascii() {
        let b = s.as_bytes();
        return matches!(b.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_')
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'));
    }
    let mut it = s.chars();
    matches!(it.next(), Some(c) if is_name_start(c)) && it.all(is_name_char)
}

/// Splits a QName into (prefix, local), or None when it is not a valid QName.
pub fn split_qname(s: &str) -> Option<(Option<&str>, &str)> {
    match s.split_once(':') {
        Some((p, l)) if is_ncname(p) && is_ncname(l) => Some((Some(p), l)),
        Some(_) => None,
        None if is_ncname(s) => Some((None, s)),
        None => None,
    }
}

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

/// Checks the encoding of a body: UTF-8 (optionally with a BOM), and returns the text
/// after the BOM. UTF-16/32 BOMs and invalid UTF-8 give `not-utf-8`.
pub fn utf8_body(bytes: &[u8]) -> Result<&str, XcapError> {
    if bytes.starts_with(&[0xFE, 0xFF]) || bytes.starts_with(&[0xFF, 0xFE]) {
        return Err(not_utf8());
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|_| not_utf8())
}

/// XML 1.0 §2.2 Char, applied to the whole input once (on bytes: in UTF-8 the C0 controls
/// are single bytes and U+FFFE/U+FFFF are EF BF BE/BF).
fn check_chars(text: &str, mode: Mode) -> Result<(), XcapError> {
    let b = text.as_bytes();
    let bad = b.iter().enumerate().any(|(i, &c)| {
        (c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r'))
            || (c == 0xEF
                && b.get(i + 1) == Some(&0xBF)
                && matches!(b.get(i + 2), Some(0xBE | 0xBF)))
    });
    if bad {
        return Err(nwf(mode, "character not allowed in XML"));
    }
    Ok(())
}

/// Parses a whole document (PUT of a document, or a stored one).
pub fn parse_document(bytes: &[u8]) -> Result<Document, XcapError> {
    let text = utf8_body(bytes)?;
    check_chars(text, Mode::Document)?;
    let nodes = parse_nodes(text, &[], Mode::Document)?;
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
/// surrounded by whitespace, comments and PIs (dropped) and preceded by an XML declaration. Prefixes not declared in the body
/// are resolved in `context` (the bindings in scope at the insertion point); the result
/// keeps only its own declarations.
pub fn parse_fragment(bytes: &[u8], context: &[Binding]) -> Result<Element, XcapError> {
    let text = utf8_body(bytes)?;
    check_chars(text, Mode::Fragment)?;
    let nodes = parse_nodes(text, context, Mode::Fragment)?;
    let mut el = None;
    for n in nodes {
        match n {
            Node::Element(e) => el = Some(e),
            // An XML declaration is tolerated (and checked for UTF-8); a DTD is not.
            Node::Markup(m) if m.starts_with("<!DOCTYPE") => {
                return Err(nwf(Mode::Fragment, "DOCTYPE in a fragment"));
            }
            _ => {}
        }
    }
    el.ok_or_else(|| nwf(Mode::Fragment, "body is not an element"))
}

/// Checks an XML declaration (raw `<?xml ...?>`): version 1.x, encoding UTF-8 if given.
fn check_decl(raw: &str, mode: Mode) -> Result<(), XcapError> {
    let inner = raw
        .strip_prefix("<?xml")
        .and_then(|s| s.strip_suffix("?>"))
        .ok_or_else(|| nwf(mode, "bad XML declaration"))?;
    let mut version = None;
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| nwf(mode, "bad XML declaration"))?;
        let after = after.trim_start();
        let q = after
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
            .ok_or_else(|| nwf(mode, "bad XML declaration"))?;
        let end = after[1..]
            .find(q)
            .ok_or_else(|| nwf(mode, "bad XML declaration"))?;
        let value = &after[1..1 + end];
        match name.trim() {
            "version" => version = Some(value.to_string()),
            "encoding" => {
                if !value.eq_ignore_ascii_case("utf-8") && !value.eq_ignore_ascii_case("utf8") {
                    return Err(not_utf8());
                }
            }
            "standalone" => {}
            _ => return Err(nwf(mode, "bad XML declaration")),
        }
        rest = after[end + 2..].trim_start();
    }
    match version {
        Some(v) if v.starts_with("1.") => Ok(()),
        _ => Err(nwf(mode, "bad XML version")),
    }
}

/// Reads `text` into top-level nodes, building elements with resolved namespaces.
fn parse_nodes(text: &str, context: &[Binding], mode: Mode) -> Result<Vec<Node>, XcapError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_comments = true;
    reader.config_mut().check_end_names = true;
    let mut top: Vec<Node> = Vec::new();
    let mut stack: Vec<Element> = Vec::new();
    // Bindings in scope, and for each open element how many of them it added.
    let mut scope: Vec<Binding> = context.to_vec();
    let mut added: Vec<usize> = Vec::new();
    let mut names: Vec<Name> = Vec::new();
    let mut roots = 0usize;
    let mut first = true;
    loop {
        let start = reader.buffer_position() as usize;
        let ev = reader
            .read_event()
            .map_err(|e| nwf(mode, format!("not well-formed XML: {e}")))?;
        let end = reader.buffer_position() as usize;
        let is_first = std::mem::replace(&mut first, false);
        let raw = text.get(start..end).unwrap_or("");
        match ev {
            Event::Eof => break,
            Event::Start(s) => {
                if stack.is_empty() {
                    roots += 1;
                    if roots > 1 {
                        return Err(nwf(mode, "more than one root element"));
                    }
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(nwf(mode, "elements nested too deeply"));
                }
                let (el, n) = start_element(&s, &mut scope, &mut names, mode)?;
                added.push(n);
                stack.push(el);
            }
            Event::Empty(s) => {
                if stack.is_empty() {
                    roots += 1;
                    if roots > 1 {
                        return Err(nwf(mode, "more than one root element"));
                    }
                }
                let (el, n) = start_element(&s, &mut scope, &mut names, mode)?;
                scope.truncate(scope.len() - n);
                push_node(&mut stack, &mut top, Node::Element(el));
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| nwf(mode, "unmatched end tag"))?;
                let n = added.pop().unwrap_or(0);
                scope.truncate(scope.len() - n);
                push_node(&mut stack, &mut top, Node::Element(el));
            }
            Event::Text(t) => {
                if t.contains("]]>") {
                    return Err(nwf(mode, "']]>' in text"));
                }
                if stack.is_empty() {
                    if !t.chars().all(is_xml_space) {
                        return Err(nwf(mode, "text outside the root element"));
                    }
                    push_node(&mut stack, &mut top, Node::Text(t.to_string()));
                } else {
                    let s = t.xml10_content();
                    append_text(&mut stack, &s);
                }
            }
            Event::GeneralRef(r) => {
                if stack.is_empty() {
                    return Err(nwf(mode, "reference outside the root element"));
                }
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => {
                        let u = c as u32;
                        if (u < 0x20 && !matches!(c, '\t' | '\n' | '\r'))
                            || u == 0xFFFE
                            || u == 0xFFFF
                        {
                            return Err(nwf(mode, "character reference to a non-character"));
                        }
                        c
                    }
                    Ok(None) => match &*r {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        _ => return Err(nwf(mode, format!("undefined entity &{};", &*r))),
                    },
                    Err(_) => return Err(nwf(mode, "bad character reference")),
                };
                let mut buf = [0u8; 4];
                append_text(&mut stack, c.encode_utf8(&mut buf));
            }
            Event::CData(c) => {
                if stack.is_empty() {
                    return Err(nwf(mode, "CDATA outside the root element"));
                }
                push_node(&mut stack, &mut top, Node::CData(c.to_string()));
            }
            Event::Comment(_) => push_node(&mut stack, &mut top, Node::Markup(raw.to_string())),
            Event::PI(_) => {
                let target: String = raw[2..]
                    .chars()
                    .take_while(|c| !is_xml_space(*c) && *c != '?')
                    .collect();
                if !is_ncname(&target) || target.eq_ignore_ascii_case("xml") {
                    return Err(nwf(mode, "bad processing instruction"));
                }
                push_node(&mut stack, &mut top, Node::Markup(raw.to_string()));
            }
            Event::Decl(_) => {
                if !is_first || start != 0 {
                    return Err(nwf(mode, "XML declaration not at the start"));
                }
                check_decl(raw, mode)?;
                top.push(Node::Markup(raw.to_string()));
            }
            Event::DocType(_) => {
                if roots > 0 || !stack.is_empty() {
                    return Err(nwf(mode, "DOCTYPE after the root element"));
                }
                top.push(Node::Markup(raw.to_string()));
            }
        }
    }
    if !stack.is_empty() {
        return Err(nwf(mode, "unexpected end of input"));
    }
    if roots == 0 {
        return Err(nwf(mode, "no element"));
    }
    Ok(top)
}

fn push_node(stack: &mut [Element], top: &mut Vec<Node>, node: Node) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => top.push(node),
    }
}

/// Appends text to the open element, merging with a preceding text node.
fn append_text(stack: &mut [Element], s: &str) {
    if let Some(parent) = stack.last_mut() {
        if let Some(Node::Text(t)) = parent.children.last_mut() {
            t.push_str(s);
        } else {
            parent.children.push(Node::Text(s.to_string()));
        }
    }
}

/// Builds an element from a start tag: declarations first (they apply to the element's own
/// name and attributes), then names resolved. Returns the element and how many bindings
/// it pushed on `scope`. Namespace names and prefixes are shared with the declarations
/// (`Arc<str>` clones), so most elements cost only their local name and child list.
fn start_element(
    s: &BytesStart<'_>,
    scope: &mut Vec<Binding>,
    names: &mut Vec<Name>,
    mode: Mode,
) -> Result<(Element, usize), XcapError> {
    let qname = s.name();
    let (prefix, local) =
        split_qname(qname.as_ref()).ok_or_else(|| nwf(mode, "invalid element name"))?;
    let before = scope.len();
    let mut decls: Vec<Binding> = Vec::new();
    // Ordinary attributes are built as read; prefixed ones are resolved once every
    // declaration of the tag is known (`pending`: index, prefix).
    let mut attrs: Vec<Attribute> = Vec::new();
    let mut pending: Vec<(usize, &str)> = Vec::new();
    for a in s.attributes() {
        let a = a.map_err(|e| nwf(mode, format!("bad attribute: {e}")))?;
        let key: &str = a.key.0;
        if a.value.contains('<') {
            return Err(nwf(mode, "'<' in attribute value"));
        }
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| nwf(mode, format!("bad attribute value: {e}")))?
            .into_owned();
        let (ap, al) = split_qname(key).ok_or_else(|| nwf(mode, "invalid attribute name"))?;
        match (ap, al) {
            (None, "xmlns") => {
                if value == XML_NS || value == XMLNS_NS {
                    return Err(nwf(mode, "reserved namespace as default"));
                }
                decls.push((None, Name::from(value)));
            }
            (Some("xmlns"), p) => {
                // Namespaces in XML 1.0 §3: no empty bindings, xml/xmlns are reserved.
                if value.is_empty() {
                    return Err(nwf(mode, "empty namespace for a prefix"));
                }
                if p == "xmlns" || (p == "xml") != (value == XML_NS) || value == XMLNS_NS {
                    return Err(nwf(mode, "reserved prefix or namespace"));
                }
                if p == "xml" {
                    continue;
                }
                decls.push((Some(Name::from(p)), Name::from(value)));
            }
            (p, l) => {
                if let Some(p) = p {
                    pending.push((attrs.len(), p));
                } else if attrs.iter().any(|x| x.ns.is_none() && &*x.local == l) {
                    return Err(nwf(mode, "duplicate attribute"));
                }
                attrs.push(Attribute {
                    prefix: None,
                    local: intern(names, l),
                    ns: None,
                    value,
                });
            }
        }
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
