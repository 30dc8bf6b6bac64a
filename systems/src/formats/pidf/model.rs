//! The parsed document: verbatim element slices of one shared buffer, with the namespace
//! bindings each element needs, and the text handle they are read through.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

pub(super) use crate::xml::namespace::XML_NS;

/// Namespace of PIDF itself (RFC 3863 §4.1).
pub const PIDF_NS: &str = "urn:ietf:params:xml:ns:pidf";
/// Namespace of the presence data model, `dm:person` and `dm:device` (RFC 4479).
pub const DATA_MODEL_NS: &str = "urn:ietf:params:xml:ns:pidf:data-model";

/// The XML declaration every written document starts with.
pub(super) const XML_DECL: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
/// The start of every written root, up to its named namespace declarations and entity.
pub(super) const ROOT_OPEN: &[u8] = b"<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"";
/// Root bindings are tracked in a `u128` bit set per element; documents declaring more are refused.
pub(super) const MAX_ROOT_NAMESPACES: usize = 128;
/// `id` of the single tuple that [`empty_view`] emits when a closed tuple is configured.
pub const CLOSED_TUPLE_ID: &str = "offline";

/// What a top-level child of `<presence>` is; decides its place in a composed document and its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementKind {
    /// `pidf:tuple` (RFC 3863 §4.1.2), a service.
    Tuple,
    /// `dm:person` (RFC 4479), the human user.
    Person,
    /// `dm:device` (RFC 4479), a device.
    Device,
    /// `pidf:note` directly under `<presence>` (RFC 3863 §4.1.6).
    Note,
    /// Any other element of a namespace other than PIDF (RPID, CIPID, OMA, unknown extensions).
    Other,
}
/// Byte range into a document body (bodies are far below 4 GB: PUBLISH bodies are bounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Span {
    pub(super) start: u32,
    pub(super) end: u32,
}

impl Span {
    pub(super) fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub(super) fn is_empty(self) -> bool {
        self.start == self.end
    }

    pub(super) fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A namespace declaration on the root; an empty `prefix` is the default namespace and an empty
/// `uri` (only ever for the default) means "no default namespace".
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct NsDecl {
    pub(super) prefix: Span,
    pub(super) uri: Span,
}

/// Text of a parsed document: a slice of its body (or, when the text held references, its
/// unescaped copy). Compares and dereferences as `str`; cloning it is a reference count.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct SharedStr(pub(super) Bytes);

impl SharedStr {
    /// The text's bytes (no UTF-8 check).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Built only from validated UTF-8 (slices at ASCII delimiters, or unescaped strings).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One parsed PUBLISH body, kept as verbatim element slices of the body.
#[derive(Debug, Clone)]
pub struct PidfDocument {
    /// The `entity` attribute of `<presence>`, unescaped and trimmed (RFC 3863 §4.1.1).
    pub entity: SharedStr,
    /// Top-level children of `<presence>` in document order. Each element belongs to the document
    /// that parsed it (its namespace needs refer to this document's root declarations).
    pub elements: Box<[PidfElement]>,
    pub(super) body: Bytes,
    /// Namespace declarations of the root; always contains exactly one default entry.
    pub(super) namespaces: Box<[NsDecl]>,
    /// Length of the view at the start of `body` ([`parse_with_view`]); 0: none.
    pub(super) view_len: u32,
}

impl PidfDocument {
    /// The buffer the elements are slices of: the body given to [`parse_bytes`], or the pieces
    /// of it that [`parse`] keeps.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Namespace bindings declared on the root (`None` = default namespace), values as written
    /// (attribute-escaped).
    pub fn namespaces(&self) -> impl Iterator<Item = (Option<&str>, &str)> + '_ {
        self.namespaces
            .iter()
            .filter(|n| !n.uri.is_empty())
            .map(|n| {
                let p = self.s(n.prefix);
                ((!p.is_empty()).then_some(p), self.s(n.uri))
            })
    }

    /// The view that composing this document alone gives, when it was parsed with one
    /// ([`parse_with_view`]): a slice of its buffer, no copy.
    pub fn view(&self) -> Option<Bytes> {
        (self.view_len > 0).then(|| self.body.slice(..self.view_len as usize))
    }

    /// Heap bytes this document holds (body, element and namespace tables, unescaped copies),
    /// for memory accounting; the body counts once however many slices share it, and a
    /// [`view`](Self::view) it carries is left to whoever holds that view (a presentity's
    /// composed view, counted there).
    pub fn heap_bytes(&self) -> usize {
        self.body.len() - self.view_len as usize
            + self.elements.len() * size_of::<PidfElement>()
            + self.namespaces.len() * size_of::<NsDecl>()
    }

    pub(super) fn s(&self, span: Span) -> &str {
        std::str::from_utf8(self.b(span)).unwrap_or_default()
    }

    pub(super) fn b(&self, span: Span) -> &[u8] {
        &self.body[span.range()]
    }
}

/// One top-level child of `<presence>`: its exact bytes plus which root namespace bindings it uses.
/// It holds one handle on its document's buffer, a slice that covers the element and, next to
/// it, the text of its namespace and id (offsets below are into that slice).
#[derive(Debug, Clone)]
pub struct PidfElement {
    /// What the element is.
    pub kind: ElementKind,
    /// Length of `<` + the element name: where extra `xmlns` declarations go.
    pub(super) name_end: u32,
    /// A slice of the document buffer holding the element and the texts below.
    pub(super) buf: Bytes,
    /// The element, from `<` to the end of its end tag.
    pub(super) raw: Span,
    /// Its unprefixed `id` attribute, unescaped (required for tuple, person and device); empty
    /// when it has none.
    pub(super) id: Span,
    /// Its namespace name: a [`STATIC_NS`] code, or 0 and its text.
    pub(super) ns_code: u8,
    pub(super) ns: Span,
    /// Bit `i` set: the element (or a descendant) uses `namespaces[i]` of its document.
    pub(super) uses: [u64; 2],
}

/// An element's namespace name: the PIDF and data-model ones are known, others are text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NsRef {
    /// A [`STATIC_NS`] code.
    Static(u8),
    In(Span),
}

impl Default for NsRef {
    fn default() -> Self {
        NsRef::Static(NS_NONE)
    }
}

/// Static namespace names an element may have, by code (0: text in its slice).
pub(super) const STATIC_NS: [&str; 5] = ["", PIDF_NS, DATA_MODEL_NS, XML_NS, ""];
pub(super) const NS_PIDF: u8 = 1;
pub(super) const NS_DM: u8 = 2;
pub(super) const NS_XML: u8 = 3;
pub(super) const NS_NONE: u8 = 4;

pub(super) fn ns_code(ns: NsRef) -> (u8, Span) {
    match ns {
        NsRef::In(span) => (0, span),
        NsRef::Static(code) => (code, Span::default()),
    }
}

impl PidfElement {
    /// The element exactly as published, from `<` to the end of its end tag.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[self.raw.range()]
    }

    /// The element as a cheap slice of the shared document buffer.
    pub fn bytes(&self) -> Bytes {
        self.buf.slice(self.raw.range())
    }

    /// Its unprefixed `id` attribute, unescaped (tuple, person and device always have one).
    pub fn id(&self) -> Option<&str> {
        (!self.id.is_empty()).then(|| self.text(self.id))
    }

    /// The element's namespace name as written in its declaration.
    pub fn namespace(&self) -> &str {
        match self.ns_code {
            0 => self.text(self.ns),
            c => STATIC_NS[c as usize],
        }
    }

    /// The element's local name (without prefix).
    pub fn local_name(&self) -> &str {
        let name = self.qname();
        name.split_once(':').map_or(name, |(_, l)| l)
    }

    /// The element's qualified name as written (`tuple`, `dm:person`, ...).
    pub fn qname(&self) -> &str {
        self.text(Span {
            start: self.raw.start + 1,
            end: self.raw.start + self.name_end,
        })
    }

    pub(super) fn name_end(&self) -> usize {
        self.name_end as usize
    }

    pub(super) fn uses(&self) -> u128 {
        (self.uses[1] as u128) << 64 | self.uses[0] as u128
    }

    pub(super) fn text(&self, span: Span) -> &str {
        std::str::from_utf8(&self.buf[span.range()]).unwrap_or_default()
    }
}
