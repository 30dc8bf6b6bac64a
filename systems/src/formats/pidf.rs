//! PIDF presence documents (RFC 3863) with the RFC 4479 data model, RFC 4480 RPID and any other
//! extension: parse PUBLISH bodies into verbatim element slices, compose them into one NOTIFY view.
//!
//! Watchers (PJSIP, baresip, Linphone) read PIDF literally, so the composer never rewrites an element:
//! each top-level child of `<presence>` is kept as the exact bytes the publisher sent (a slice of one
//! shared [`Bytes`] buffer) and, when copied into another document, only gains the `xmlns`
//! declarations it needs to keep resolving to the same namespaces.
//!
//! The parser is a single hand-written pass over the bytes (no tokenizer events, no per-tag
//! copies): it checks XML 1.0 and Namespaces in XML well-formedness as it goes and only records
//! byte ranges; the document's strings (entity, ids, elements) are slices of the body.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// Namespace of PIDF itself (RFC 3863 §4.1).
pub const PIDF_NS: &str = "urn:ietf:params:xml:ns:pidf";
/// Namespace of the presence data model, `dm:person` and `dm:device` (RFC 4479).
pub const DATA_MODEL_NS: &str = "urn:ietf:params:xml:ns:pidf:data-model";

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
const XML_DECL: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
const ROOT_OPEN: &[u8] = b"<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"";
/// Root bindings are tracked in a `u128` bit set per element; documents declaring more are refused.
const MAX_ROOT_NAMESPACES: usize = 128;
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

/// Why a PUBLISH body was refused; `Display` is short ASCII usable as a SIP reason phrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PidfError {
    /// The body is not well-formed (or not namespace-well-formed) XML.
    #[error("not well-formed XML at byte {at} ({detail})")]
    NotWellFormed {
        /// Byte offset in the body where the problem was found.
        at: usize,
        /// What is wrong, a fixed ASCII phrase.
        detail: &'static str,
    },
    /// The XML declaration names an encoding other than UTF-8 and the body is not plain ASCII.
    #[error("unsupported encoding (UTF-8 required)")]
    UnsupportedEncoding,
    /// A `<!DOCTYPE>` could define entities that would not survive verbatim copying.
    #[error("DOCTYPE not allowed")]
    Doctype,
    /// The root element is not `presence` in the PIDF namespace.
    #[error("root element is not pidf presence")]
    NotPidf,
    /// `<presence>` has no (or an empty) `entity` attribute (RFC 3863 §4.1.1).
    #[error("missing entity attribute")]
    MissingEntity,
    /// A `tuple`, `person` or `device` has no `id` attribute.
    #[error("{0} without id")]
    MissingId(&'static str),
    /// Two tuples, persons or devices share an `id` (all three are `xs:ID`).
    #[error("duplicate id")]
    DuplicateId,
    /// A tuple has no `status` child (RFC 3863 §4.1.2).
    #[error("tuple without status")]
    MissingStatus,
    /// A `basic` element holds something other than `open` or `closed` (RFC 3863 §4.1.4),
    /// compared literally after reference expansion, as pidf.xsd does.
    #[error("basic status is neither open nor closed")]
    InvalidBasic,
    /// More namespace declarations on `<presence>` than the 128 a document may use here.
    #[error("too many namespace declarations")]
    TooManyNamespaces,
}

/// Byte range into a document body (bodies are far below 4 GB: PUBLISH bodies are bounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    fn is_empty(self) -> bool {
        self.start == self.end
    }

    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A namespace declaration on the root; an empty `prefix` is the default namespace and an empty
/// `uri` (only ever for the default) means "no default namespace".
#[derive(Debug, Clone, Copy, Default)]
struct NsDecl {
    prefix: Span,
    uri: Span,
}

/// Text of a parsed document: a slice of its body (or, when the text held references, its
/// unescaped copy). Compares and dereferences as `str`; cloning it is a reference count.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct SharedStr(Bytes);

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
    body: Bytes,
    /// Namespace declarations of the root; always contains exactly one default entry.
    namespaces: Box<[NsDecl]>,
    /// Length of the view at the start of `body` ([`parse_with_view`]); 0: none.
    view_len: u32,
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

    fn s(&self, span: Span) -> &str {
        std::str::from_utf8(self.b(span)).unwrap_or_default()
    }

    fn b(&self, span: Span) -> &[u8] {
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
    name_end: u32,
    /// A slice of the document buffer holding the element and the texts below.
    buf: Bytes,
    /// The element, from `<` to the end of its end tag.
    raw: Span,
    /// Its unprefixed `id` attribute, unescaped (required for tuple, person and device); empty
    /// when it has none.
    id: Span,
    /// Its namespace name: a [`STATIC_NS`] code, or 0 and its text.
    ns_code: u8,
    ns: Span,
    /// Bit `i` set: the element (or a descendant) uses `namespaces[i]` of its document.
    uses: [u64; 2],
}

/// An element's namespace name: the PIDF and data-model ones are known, others are text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NsRef {
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
const STATIC_NS: [&str; 5] = ["", PIDF_NS, DATA_MODEL_NS, XML_NS, ""];
const NS_PIDF: u8 = 1;
const NS_DM: u8 = 2;
const NS_XML: u8 = 3;
const NS_NONE: u8 = 4;

fn ns_code(ns: NsRef) -> (u8, Span) {
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

    fn name_end(&self) -> usize {
        self.name_end as usize
    }

    fn uses(&self) -> u128 {
        (self.uses[1] as u128) << 64 | self.uses[0] as u128
    }

    fn text(&self, span: Span) -> &str {
        std::str::from_utf8(&self.buf[span.range()]).unwrap_or_default()
    }
}

/// Parses a PUBLISH body (`application/pidf+xml`). What the document keeps (the entity, the
/// root's namespace declarations and the kept elements, each verbatim; no prolog, markup of the
/// root or white space between elements) is copied once into a buffer of its own: a document
/// held as long as its publication lives pins nothing else and carries little beyond its
/// elements.
pub fn parse(body: &[u8]) -> Result<PidfDocument, PidfError> {
    let mut parser = Parser::new(body, check_chars(body)?);
    parser.run_all()?;
    let (buf, layout) = parser.compact();
    parser.finish(&Bytes::from(buf), layout)
}

/// Parses a PUBLISH body as [`parse`] does, and lays the document's buffer out as the view that
/// composing it alone gives for `entity` (the presentity's URI, in pieces that are written one
/// after the other), followed by what that view does not hold verbatim. A presentity with one
/// source (nearly every one) then shares this view ([`PidfDocument::view`]): no composition and no
/// second copy of its elements.
pub fn parse_with_view(body: &[u8], entity: &[&str]) -> Result<PidfDocument, PidfError> {
    let mut parser = Parser::new(body, check_chars(body)?);
    parser.run_all()?;
    let (buf, layout, view_len) = parser.view_layout(entity);
    let mut doc = parser.finish(&Bytes::from(buf), layout)?;
    doc.view_len = view_len as u32;
    Ok(doc)
}

/// Parses a PUBLISH body already held in a [`Bytes`]: elements are slices of it, no copy (unless
/// the entity or an id holds a reference, whose unescaped text needs a buffer: then as
/// [`parse`]).
pub fn parse_bytes(body: Bytes) -> Result<PidfDocument, PidfError> {
    let mut parser = Parser::new(&body, check_chars(&body)?);
    parser.run_all()?;
    match parser.in_place() {
        Some(layout) => parser.finish(&body, layout),
        None => {
            let (buf, layout) = parser.compact();
            parser.finish(&Bytes::from(buf), layout)
        }
    }
}

/// XML 1.0 §2.2: the body is UTF-8 and holds no C0 control other than TAB, LF and CR. One pass
/// eight bytes at a time; UTF-8 is validated only when a byte is not ASCII. Returns whether the
/// body is plain ASCII.
fn check_chars(b: &[u8]) -> Result<bool, PidfError> {
    if b.len() > u32::MAX as usize {
        return Err(nwf(0, "document too large"));
    }
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let bad = |c: u8| c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r');
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    let mut high = 0u64;
    let mut control = None;
    for chunk in chunks.by_ref() {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        high |= w;
        // "hasless(w, 0x20)": some byte of w is below 0x20.
        if w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0
            && let Some(i) = chunk.iter().position(|&c| bad(c))
        {
            control = Some(at + i);
            break;
        }
        at += 8;
    }
    if control.is_none() {
        for (i, &c) in chunks.remainder().iter().enumerate() {
            high |= c as u64;
            if bad(c) {
                control = Some(at + i);
                break;
            }
        }
    }
    let ascii = high & HIGH == 0 && control.is_none();
    if !ascii {
        std::str::from_utf8(b).map_err(|e| nwf(e.valid_up_to(), "invalid UTF-8"))?;
    }
    match control {
        Some(at) => Err(nwf(at, "invalid character")),
        None => Ok(ascii),
    }
}

fn nwf(at: usize, detail: &'static str) -> PidfError {
    PidfError::NotWellFormed { at, detail }
}

/// Byte classes for the scanner.
const C_NAME_START: u8 = 1;
const C_NAME: u8 = 2;
const C_SPACE: u8 = 4;
/// Needs a closer look in character data: `&` and `]`.
const C_TEXT: u8 = 8;
/// Anything but XML white space.
const C_NOT_SPACE: u8 = 16;

/// XML 1.0 §2.3 name characters (non-ASCII accepted without checking their Unicode class, `:`
/// apart: it separates prefix and local part), white space, and `&` / `]`.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 {
            t[c] = C_NAME_START | C_NAME | C_NOT_SPACE;
        } else if b.is_ascii_digit() || b == b'-' || b == b'.' {
            t[c] = C_NAME | C_NOT_SPACE;
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            t[c] = C_SPACE;
        } else if b == b'&' || b == b']' {
            t[c] = C_TEXT | C_NOT_SPACE;
        } else {
            t[c] = C_NOT_SPACE;
        }
        c += 1;
    }
    t
};

/// Scans `NCName (':' NCName)?` (Namespaces in XML 1.0 §4) from `start`: where the name chars
/// end, the colon if any, and whether the name is a well-formed QName.
fn scan_qname(b: &[u8], start: usize) -> (usize, Option<usize>, bool) {
    let mut j = start;
    let mut colon = None;
    let mut ok = true;
    while j < b.len() {
        let c = b[j];
        if CLASS[c as usize] & C_NAME == 0 {
            if c != b':' {
                break;
            }
            ok &= colon.is_none();
            colon = Some(j);
        }
        j += 1;
    }
    let starts = |k: usize| k < j && CLASS[b[k] as usize] & C_NAME_START != 0;
    ok &= match colon {
        Some(c) => c > start && starts(start) && starts(c + 1),
        None => starts(start),
    };
    (j, colon, ok)
}

/// Byte-slice equality for the short names compared here (no call into `memcmp`).
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// XML declarations as nearly every client writes them, accepted without a closer look.
const COMMON_DECLS: [&[u8]; 4] = [
    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
    b"<?xml version=\"1.0\" encoding=\"utf-8\"?>",
    b"<?xml version='1.0' encoding='UTF-8'?>",
    b"<?xml version=\"1.0\"?>",
];

/// A small stack-allocated list that spills to the heap past `N` items (the parser's scratch
/// lists: nearly every body fits, so a parse allocates only what the document keeps).
struct Inline<T: Copy + Default, const N: usize> {
    len: usize,
    items: [T; N],
    spill: Vec<T>,
}

impl<T: Copy + Default, const N: usize> Inline<T, N> {
    fn new() -> Self {
        Inline {
            len: 0,
            items: [T::default(); N],
            spill: Vec::new(),
        }
    }

    fn as_slice(&self) -> &[T] {
        if self.len <= N {
            &self.items[..self.len]
        } else {
            &self.spill
        }
    }

    fn push(&mut self, item: T) {
        if self.len < N {
            self.items[self.len] = item;
        } else {
            if self.len == N {
                self.spill.clear();
                self.spill.extend_from_slice(&self.items);
            }
            self.spill.push(item);
        }
        self.len += 1;
    }

    fn pop(&mut self) -> Option<T> {
        let last = self.last()?;
        if self.len > N {
            self.spill.pop();
        }
        self.len -= 1;
        Some(last)
    }

    fn last(&self) -> Option<T> {
        self.as_slice().last().copied()
    }

    fn set(&mut self, i: usize, item: T) {
        if self.len <= N {
            self.items[i] = item;
        } else {
            self.spill[i] = item;
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn clear(&mut self) {
        self.len = 0;
        self.spill.clear();
    }

    fn from_iter(items: impl Iterator<Item = T>) -> Self {
        let mut list = Self::new();
        for item in items {
            list.push(item);
        }
        list
    }

    fn retain(&mut self, keep: impl Fn(&T) -> bool) {
        let kept: Vec<T> = self.as_slice().iter().copied().filter(keep).collect();
        self.clear();
        for item in kept {
            self.push(item);
        }
    }
}

/// Namespace resolution of a prefix.
#[derive(Debug, Clone, Copy)]
enum Resolved {
    /// Declared on the root: index into `root_ns`.
    Root(usize),
    /// Declared inside the current top-level element (the uri may be empty: `xmlns=""`).
    Local(Span),
    /// The reserved `xml` prefix.
    Xml,
    /// Unprefixed element name with no default namespace in scope.
    NoNamespace,
}

/// A namespace declaration made inside the current top-level element.
#[derive(Debug, Clone, Copy, Default)]
struct LocalNs {
    prefix: Span,
    uri: Span,
    depth: u32,
}

/// An attribute of the start tag being read.
#[derive(Debug, Clone, Copy, Default)]
struct Attr {
    key: Span,
    value: Span,
    /// Offset of the `:` in the key; 0 when unprefixed (a key never starts at offset 0).
    colon: u32,
}

/// Where a kept element's namespace name comes from.
#[derive(Debug, Clone, Copy, Default)]
enum NsName {
    /// A [`STATIC_NS`] code.
    Static(u8),
    Body(Span),
    #[default]
    Empty,
}

/// The top-level element being read.
#[derive(Debug, Clone, Copy)]
struct Open {
    start: usize,
    name_end: usize,
    /// `None`: element is dropped (PIDF-namespace or unqualified element that pidf.xsd forbids here).
    kind: Option<ElementKind>,
    /// Raw (possibly escaped) value of its `id`, when non-empty and kept.
    id: Option<Span>,
    ns: NsName,
    saw_status: bool,
    in_status: bool,
    basic_start: Option<usize>,
}

/// A kept top-level element, as byte ranges (turned into a [`PidfElement`] once the body is
/// known to be good).
#[derive(Debug, Clone, Copy)]
struct Found {
    kind: ElementKind,
    start: u32,
    end: u32,
    name_end: u32,
    id: Option<Span>,
    ns: NsName,
    uses: u128,
}

impl Default for Found {
    fn default() -> Self {
        Found {
            kind: ElementKind::Other,
            start: 0,
            end: 0,
            name_end: 0,
            id: None,
            ns: NsName::Empty,
            uses: 0,
        }
    }
}

/// One pass over a body: markup and short character data are scanned byte by byte with a class
/// table, long character data with `memchr`.
struct Parser<'a> {
    /// The body (UTF-8, without forbidden controls), which every offset refers to.
    b: &'a [u8],
    /// The body is plain ASCII.
    ascii: bool,
    /// Declarations on `<presence>` (plus a "no default namespace" entry when it has none).
    root_ns: Inline<NsDecl, 8>,
    /// Bit `i`: `root_ns[i]` binds the PIDF namespace (resp. the data model's).
    pidf_ns: u128,
    dm_ns: u128,
    /// Declarations in scope inside the current top-level element, innermost last.
    local: Inline<LocalNs, 4>,
    /// Scratch: attributes of the start tag being read.
    attrs: Inline<Attr, 8>,
    /// Names of the open elements, innermost last (end tags must match them).
    open: Inline<Span, 16>,
    /// Root bindings used so far by the current top-level element.
    uses: u128,
    /// Value of the root's `entity` without surrounding white space (references unexpanded).
    entity: Span,
    /// Where the root's default namespace entry is in `root_ns`, once the root is read.
    default_root: Option<usize>,
    /// Some attribute value holds a reference (`&`): only then can the entity, an id or a
    /// namespace name need unescaping.
    any_amp: bool,
    /// The top-level element being read.
    top: Option<Open>,
    /// Kept top-level elements.
    found: Inline<Found, 4>,
}

impl<'a> Parser<'a> {
    /// A parser for a body whose characters are good ([`check_chars`]: `ascii` is its answer).
    fn new(b: &'a [u8], ascii: bool) -> Parser<'a> {
        Parser {
            b,
            ascii,
            root_ns: Inline::new(),
            pidf_ns: 0,
            dm_ns: 0,
            local: Inline::new(),
            attrs: Inline::new(),
            open: Inline::new(),
            uses: 0,
            entity: Span::default(),
            any_amp: false,
            default_root: None,
            top: None,
            found: Inline::new(),
        }
    }

    /// Reads the whole body (after a UTF-8 byte order mark, if any).
    fn run_all(&mut self) -> Result<(), PidfError> {
        let bom = if self.b.starts_with(b"\xef\xbb\xbf") {
            3
        } else {
            0
        };
        self.run(bom)
    }

    /// The layout of a document that is the body itself (`None` when an unescaped text is
    /// needed that the body does not hold).
    fn in_place(&self) -> Option<Layout> {
        let escaped = |s: Span| self.any_amp && self.b[s.range()].contains(&b'&');
        if escaped(self.entity)
            || self
                .found
                .as_slice()
                .iter()
                .any(|f| f.id.is_some_and(escaped))
        {
            return None;
        }
        let elements = Inline::from_iter(self.found.as_slice().iter().map(|f| {
            let raw = Span {
                start: f.start,
                end: f.end,
            };
            // a namespace declared on the root precedes the element: the slice covers both
            let start = match f.ns {
                NsName::Body(s) if s.start < raw.start => s.start,
                _ => raw.start,
            };
            let rel = |s: Span| Span {
                start: s.start - start,
                end: s.end - start,
            };
            Placed {
                slice: Span {
                    start,
                    end: raw.end,
                },
                raw: rel(raw),
                id: f.id.map_or(Span::default(), rel),
                ns: match f.ns {
                    NsName::Static(s) => NsRef::Static(s),
                    NsName::Body(s) => NsRef::In(rel(s)),
                    NsName::Empty => NsRef::Static(NS_NONE),
                },
            }
        }));
        Some(Layout {
            entity: self.trimmed_entity(),
            namespaces: self.root_ns.as_slice().into(),
            elements,
        })
    }

    /// Copies what a document keeps into one exact-size buffer: the entity (trimmed,
    /// unescaped), each root namespace declaration's prefix and value, and each kept element,
    /// preceded by its namespace name when the root declares it and followed by its unescaped
    /// id when the id holds a reference.
    fn compact(&self) -> (Vec<u8>, Layout) {
        let b = self.b;
        let trimmed = self.trimmed_entity();
        let escaped = |s: Span| self.any_amp && b[s.range()].contains(&b'&');
        let entity: Cow<'_, [u8]> = if escaped(trimmed) {
            let v = unescaped(self.str(trimmed));
            Cow::Owned(v.trim().as_bytes().to_vec())
        } else {
            Cow::Borrowed(&b[trimmed.range()])
        };
        let found = self.found.as_slice();
        let mut len = entity.len();
        for n in self.root_ns.as_slice() {
            len += (n.prefix.end - n.prefix.start + n.uri.end - n.uri.start) as usize;
        }
        for f in found {
            len += (f.end - f.start) as usize;
            if let NsName::Body(s) = f.ns
                && s.start < f.start
            {
                len += (s.end - s.start) as usize;
            }
            if let Some(id) = f.id
                && escaped(id)
            {
                len += unescaped(self.str(id)).len();
            }
        }
        let mut buf = Vec::with_capacity(len);
        let put = |buf: &mut Vec<u8>, bytes: &[u8]| {
            let start = buf.len();
            buf.extend_from_slice(bytes);
            Span::new(start, buf.len())
        };
        let entity = put(&mut buf, &entity);
        let namespaces = self
            .root_ns
            .as_slice()
            .iter()
            .map(|n| NsDecl {
                prefix: put(&mut buf, &b[n.prefix.range()]),
                uri: put(&mut buf, &b[n.uri.range()]),
            })
            .collect();
        let elements = Inline::from_iter(found.iter().map(|f| {
            let slice_start = buf.len() as u32;
            let rel = |s: Span| Span {
                start: s.start - slice_start,
                end: s.end - slice_start,
            };
            let ns = match f.ns {
                NsName::Static(s) => NsRef::Static(s),
                NsName::Empty => NsRef::Static(NS_NONE),
                NsName::Body(s) if s.start < f.start => {
                    NsRef::In(rel(put(&mut buf, &b[s.range()])))
                }
                NsName::Body(s) => NsRef::In(Span {
                    start: s.start - f.start + (buf.len() as u32 - slice_start),
                    end: s.end - f.start + (buf.len() as u32 - slice_start),
                }),
            };
            let at = buf.len() as u32 - slice_start;
            let raw = rel(put(&mut buf, &b[f.start as usize..f.end as usize]));
            let id = match f.id {
                None => Span::default(),
                Some(id) if escaped(id) => rel(put(&mut buf, unescaped(self.str(id)).as_bytes())),
                Some(id) => Span {
                    start: id.start - f.start + at,
                    end: id.end - f.start + at,
                },
            };
            Placed {
                slice: Span::new(slice_start as usize, buf.len()),
                raw,
                id,
                ns,
            }
        }));
        debug_assert_eq!(buf.len(), len);
        (
            buf,
            Layout {
                entity,
                namespaces,
                elements,
            },
        )
    }

    /// The buffer of [`parse_with_view`]: first the view [`compose`] gives for this document
    /// alone and `entity` (byte for byte), then the entity (trimmed, unescaped), the namespace
    /// declarations the view does not show, root-declared namespace names of kept `Other`
    /// elements, unescaped ids, and the elements that gain a declaration in the view (as
    /// published). Element and namespace spans point into the view wherever it holds their
    /// bytes unchanged. Returns the buffer, its layout and the view's length.
    fn view_layout(&self, entity: &[&str]) -> (Vec<u8>, Layout, usize) {
        let b = self.b;
        let found = self.found.as_slice();
        let root_ns = self.root_ns.as_slice();
        let contributes = !found.is_empty();
        // With one source the composed root binds all its named prefixes the same way: only
        // its default namespace (when not PIDF's, the composed root's) goes on the elements
        // that use it (see `missing_decls`).
        let restated = root_ns
            .iter()
            .position(|n| n.prefix.is_empty() && b[n.uri.range()] != *PIDF_NS.as_bytes());
        let missing = |f: &Found| restated.filter(|&i| f.uses >> i & 1 != 0);
        let named = || {
            root_ns
                .iter()
                .enumerate()
                .filter(|(_, n)| !n.prefix.is_empty())
        };
        let escaped = |s: Span| self.any_amp && b[s.range()].contains(&b'&');
        let trimmed = self.trimmed_entity();
        let entity_text: Cow<'_, [u8]> = if escaped(trimmed) {
            let v = unescaped(self.str(trimmed));
            Cow::Owned(v.trim().as_bytes().to_vec())
        } else {
            Cow::Borrowed(&b[trimmed.range()])
        };

        // exact sizes first: the buffer lives as long as the publication
        let (entity_len, plain) = escaped_len(entity);
        let mut view_len = XML_DECL.len() + ROOT_OPEN.len() + entity_len;
        view_len += if contributes { 1 + 13 } else { 3 };
        let mut len = entity_text.len();
        for (_, n) in named() {
            let (p, u) = (&b[n.prefix.range()], &b[n.uri.range()]);
            if contributes {
                view_len += decl_len(p, u);
            } else {
                len += p.len() + u.len();
            }
        }
        if let Some(i) = restated {
            len += root_ns[i].uri.range().len();
        }
        for f in found {
            let raw = (f.end - f.start) as usize;
            view_len += 1 + raw;
            if let Some(i) = missing(f) {
                view_len += decl_len(b"", &b[root_ns[i].uri.range()]);
                len += raw;
            }
            if let NsName::Body(s) = f.ns
                && s.start < f.start
            {
                len += s.range().len();
            }
            if let Some(id) = f.id
                && escaped(id)
            {
                len += unescaped(self.str(id)).len();
            }
        }
        len += view_len;

        let mut buf = Vec::with_capacity(len);
        let put = |buf: &mut Vec<u8>, bytes: &[u8]| {
            let start = buf.len();
            buf.extend_from_slice(bytes);
            Span::new(start, buf.len())
        };
        let mut namespaces: Box<[NsDecl]> = vec![NsDecl::default(); root_ns.len()].into();
        buf.extend_from_slice(XML_DECL);
        buf.extend_from_slice(ROOT_OPEN);
        if let Some(i) = root_ns.iter().position(|n| n.prefix.is_empty())
            && restated.is_none()
        {
            // PIDF's, as the view's root declares it
            let end = buf.len() - 1;
            namespaces[i].uri = Span::new(end - PIDF_NS.len(), end);
        }
        if contributes {
            for (i, n) in named() {
                let at = buf.len() + " xmlns:".len();
                push_decl(&mut buf, &b[n.prefix.range()], &b[n.uri.range()]);
                let (pl, ul) = (n.prefix.range().len(), n.uri.range().len());
                namespaces[i] = NsDecl {
                    prefix: Span::new(at, at + pl),
                    uri: Span::new(at + pl + 2, at + pl + 2 + ul),
                };
            }
        }
        push_entity(&mut buf, entity, plain);
        let mut in_view = Inline::<u32, 4>::from_iter(found.iter().map(|_| 0));
        if contributes {
            buf.push(b'>');
            for g in 0..3 {
                for (k, f) in found.iter().enumerate() {
                    if group(f.kind) != g {
                        continue;
                    }
                    buf.push(b'\n');
                    let (start, name_end) = (f.start as usize, (f.start + f.name_end) as usize);
                    let at = buf.len();
                    buf.extend_from_slice(&b[start..name_end]);
                    match missing(f) {
                        Some(i) => push_decl(&mut buf, b"", &b[root_ns[i].uri.range()]),
                        None => in_view.set(k, at as u32),
                    }
                    buf.extend_from_slice(&b[name_end..f.end as usize]);
                }
            }
            buf.extend_from_slice(b"\n</presence>\n");
        } else {
            buf.extend_from_slice(b"/>\n");
        }
        debug_assert_eq!(buf.len(), view_len, "view pre-sizing");

        let entity = put(&mut buf, &entity_text);
        if let Some(i) = restated {
            namespaces[i].uri = put(&mut buf, &b[root_ns[i].uri.range()]);
        }
        if !contributes {
            for (i, n) in named() {
                namespaces[i] = NsDecl {
                    prefix: put(&mut buf, &b[n.prefix.range()]),
                    uri: put(&mut buf, &b[n.uri.range()]),
                };
            }
        }
        let elements = Inline::from_iter(found.iter().enumerate().map(|(k, f)| {
            let start = match missing(f) {
                Some(_) => put(&mut buf, &b[f.start as usize..f.end as usize]).start,
                None => in_view.as_slice()[k],
            };
            let shift = |s: Span| Span {
                start: s.start - f.start + start,
                end: s.end - f.start + start,
            };
            let ns = match f.ns {
                NsName::Static(s) => NsRef::Static(s),
                NsName::Empty => NsRef::Static(NS_NONE),
                NsName::Body(s) if s.start < f.start => NsRef::In(put(&mut buf, &b[s.range()])),
                NsName::Body(s) => NsRef::In(shift(s)),
            };
            let id = match f.id {
                None => Span::default(),
                Some(id) if escaped(id) => put(&mut buf, unescaped(self.str(id)).as_bytes()),
                Some(id) => shift(id),
            };
            Placed {
                slice: Span::new(0, len),
                raw: Span {
                    start,
                    end: start + f.end - f.start,
                },
                id,
                ns,
            }
        }));
        debug_assert_eq!(buf.len(), len, "view layout pre-sizing");
        (
            buf,
            Layout {
                entity,
                namespaces,
                elements,
            },
            view_len,
        )
    }

    /// The raw `entity` value without surrounding white space (as `str::trim` has it).
    fn trimmed_entity(&self) -> Span {
        self.entity
    }

    /// A span without surrounding white space (Unicode's, as `str::trim` has it).
    fn trim(&self, span: Span) -> Span {
        let b = &self.b[span.range()];
        let t = if self.ascii {
            b.trim_ascii()
        } else {
            self.str(span).trim().as_bytes()
        };
        let start = span.start as usize + (t.as_ptr() as usize - b.as_ptr() as usize);
        Span::new(start, start + t.len())
    }

    /// The text of a span (the body is valid UTF-8 and spans end at ASCII delimiters).
    fn str(&self, span: Span) -> &'a str {
        std::str::from_utf8(&self.b[span.range()]).unwrap_or_default()
    }

    /// Reads the whole body: character data up to the next `<`, then one piece of markup.
    fn run(&mut self, bom: usize) -> Result<(), PidfError> {
        let b = self.b;
        let mut i = bom;
        let mut depth: u32 = 0;
        let mut root_seen = false;
        while i < b.len() {
            let lt = self.char_data(i, depth)?;
            if lt == b.len() {
                break;
            }
            i = match b.get(lt + 1) {
                Some(b'/') => {
                    // Nearly always exactly `</name>` of the innermost open element.
                    let expected = self.open.last().unwrap_or_default();
                    let after_name = lt + 2 + (expected.end - expected.start) as usize;
                    let exact = b.get(after_name) == Some(&b'>')
                        && same(&b[lt + 2..after_name], &b[expected.range()]);
                    let gt = if exact {
                        after_name
                    } else {
                        memchr::memchr(b'>', &b[lt + 2..])
                            .map(|k| lt + 2 + k)
                            .ok_or(nwf(lt, "syntax error"))?
                    };
                    let Some(open) = self.open.pop() else {
                        return Err(nwf(lt, "unmatched end tag"));
                    };
                    if !exact {
                        // XML 1.0 §3.1: `</` Name S? `>`, the name of the innermost open element.
                        let mut name = &b[lt + 2..gt];
                        while let [rest @ .., last] = name
                            && is_xml_space(*last)
                        {
                            name = rest;
                        }
                        if !same(name, &b[open.range()]) {
                            return Err(nwf(lt, "mismatched end tag"));
                        }
                    }
                    self.close(depth, lt, gt + 1)?;
                    depth -= 1;
                    gt + 1
                }
                Some(b'?') => self.pi(lt, bom)?,
                Some(b'!') => self.bang(lt, depth)?,
                _ => {
                    if depth == 0 && root_seen {
                        return Err(nwf(lt, "content after root element"));
                    }
                    root_seen = true;
                    let d = depth + 1;
                    let (name, after, empty) = self.element(lt, d)?;
                    if empty {
                        self.close(d, lt, after)?;
                    } else {
                        self.open.push(name);
                        depth = d;
                    }
                    after
                }
            };
        }
        if !root_seen {
            return Err(nwf(b.len(), "no root element"));
        }
        if depth != 0 {
            return Err(nwf(b.len(), "unexpected end of document"));
        }
        Ok(())
    }

    /// Character data from `i` to the next `<` (returned; the body's length if none): only white
    /// space outside the root; inside, every `&` starts a well-formed reference and `]]>` does
    /// not occur (XML 1.0 §2.4).
    fn char_data(&self, i: usize, depth: u32) -> Result<usize, PidfError> {
        let b = self.b;
        let mut lt = i;
        let mut seen = 0u8;
        // Short runs (most of a PIDF body) byte by byte; long ones with memchr.
        let short = b.len().min(i + 64);
        while lt < short {
            let c = b[lt];
            if c == b'<' {
                break;
            }
            seen |= CLASS[c as usize];
            lt += 1;
        }
        if lt == short && lt < b.len() {
            lt = memchr::memchr(b'<', &b[lt..]).map_or(b.len(), |k| lt + k);
            seen = 0xff;
        }
        if lt == i {
            return Ok(lt);
        }
        if depth == 0 {
            if seen & C_NOT_SPACE != 0 && !b[i..lt].iter().all(|&c| is_xml_space(c)) {
                return Err(nwf(i, "text outside root element"));
            }
            return Ok(lt);
        }
        if seen & C_TEXT != 0 {
            self.text(i, lt)?;
        }
        Ok(lt)
    }

    /// References and `]]>` in the character data `[i, lt)`.
    fn text(&self, i: usize, lt: usize) -> Result<(), PidfError> {
        let s = &self.b[i..lt];
        let mut k = 0;
        while let Some(off) = memchr::memchr2(b'&', b']', &s[k..]) {
            let j = k + off;
            if s[j] == b']' {
                if s[j..].starts_with(b"]]>") {
                    return Err(nwf(i + j, "']]>' in text"));
                }
                k = j + 1;
                continue;
            }
            let rest = &s[j + 1..];
            match memchr::memchr2(b';', b'&', rest) {
                Some(e) if rest[e] == b';' => {
                    if !is_valid_reference(&rest[..e]) {
                        return Err(nwf(i + j, "invalid reference"));
                    }
                    k = j + 1 + e + 1;
                }
                _ => return Err(nwf(i + j, "unclosed reference")),
            }
        }
        Ok(())
    }

    /// `<?...?>` at `lt`: the XML declaration (only at the very start) or a processing
    /// instruction. Returns the offset after it.
    fn pi(&self, lt: usize, bom: usize) -> Result<usize, PidfError> {
        let b = self.b;
        let mut k = lt + 2;
        let end = loop {
            match memchr::memchr(b'?', &b[k..]) {
                Some(q) if b.get(k + q + 1) == Some(&b'>') => break k + q,
                Some(q) => k += q + 1,
                None => return Err(nwf(lt, "syntax error")),
            }
        };
        let after = end + 2;
        let content = &b[lt + 2..end];
        if content.starts_with(b"xml") && (content.len() == 3 || is_xml_space(content[3])) {
            if lt != bom {
                return Err(nwf(lt, "XML declaration not at start"));
            }
            let raw = &b[lt..after];
            if !COMMON_DECLS.iter().any(|d| same(d, raw)) {
                check_decl(self.str(Span::new(lt, after)), self.ascii, lt)?;
            }
        } else if !is_valid_pi(self.str(Span::new(lt, after))) {
            return Err(nwf(lt, "invalid processing instruction"));
        }
        Ok(after)
    }

    /// `<!` at `lt`: a comment, a CDATA section (only inside the root) or a refused DOCTYPE.
    fn bang(&self, lt: usize, depth: u32) -> Result<usize, PidfError> {
        let b = self.b;
        let rest = &b[lt..];
        if rest.starts_with(b"<!--") {
            let end = memchr::memmem::find(&b[lt + 4..], b"-->")
                .map(|k| lt + 4 + k)
                .ok_or(nwf(lt, "syntax error"))?;
            // XML 1.0 §2.5: no `--` inside, and no `-` just before the closing `-->`.
            let content = &b[lt + 4..end];
            if let Some(k) = memchr::memmem::find(content, b"--") {
                return Err(nwf(lt + 4 + k, "'--' in comment"));
            }
            if content.ends_with(b"-") {
                return Err(nwf(end - 1, "'--' in comment"));
            }
            Ok(end + 3)
        } else if rest.starts_with(b"<![CDATA[") {
            let end = memchr::memmem::find(&b[lt + 9..], b"]]>")
                .map(|k| lt + 9 + k)
                .ok_or(nwf(lt, "syntax error"))?;
            if depth == 0 {
                return Err(nwf(lt, "text outside root element"));
            }
            Ok(end + 3)
        } else if rest.len() >= 9 && rest[2..9].eq_ignore_ascii_case(b"DOCTYPE") {
            Err(PidfError::Doctype)
        } else {
            Err(nwf(lt, "syntax error"))
        }
    }

    /// A start tag at `lt` for an element at depth `d` (root = 1): its name, attributes and
    /// their values, namespace declarations (recorded on the root or the local stack) and the
    /// prefixes it uses (recorded in `uses` when they resolve to the root); then what its depth
    /// asks (root, top-level child, tuple status). Returns its name, the offset after the tag
    /// and whether it was empty (`/>`).
    fn element(&mut self, lt: usize, d: u32) -> Result<(Span, usize, bool), PidfError> {
        let b = self.b;
        let (mut j, colon, ok) = scan_qname(b, lt + 1);
        if !ok
            || !matches!(
                b.get(j),
                None | Some(b' ' | b'\t' | b'\n' | b'\r' | b'/' | b'>')
            )
        {
            return Err(nwf(lt, "invalid element name"));
        }
        let name = Span::new(lt + 1, j);
        let (prefix, local) = match colon {
            Some(c) => (&b[lt + 1..c], &b[c + 1..j]),
            None => (&b[..0], &b[lt + 1..j]),
        };
        if same(prefix, b"xmlns") {
            return Err(nwf(lt, "invalid element name"));
        }
        if d == 2 {
            self.uses = 0;
            self.local.clear();
        }
        self.attrs.clear();
        let mut prefixed = false;
        let (after, empty) = loop {
            let ws = j;
            while j < b.len() && CLASS[b[j] as usize] & C_SPACE != 0 {
                j += 1;
            }
            match b.get(j) {
                None => return Err(nwf(lt, "syntax error")),
                Some(b'>') => break (j + 1, false),
                Some(b'/') if b.get(j + 1) == Some(&b'>') => break (j + 2, true),
                Some(b'/') => return Err(nwf(lt, "syntax error")),
                // XML 1.0 §3.1: attributes are separated by white space.
                _ if j == ws => return Err(nwf(lt, "malformed attribute")),
                _ => {}
            }
            let ks = j;
            let (ke, kc, ok) = scan_qname(b, ks);
            if !ok {
                return Err(nwf(lt, "invalid attribute name"));
            }
            if !matches!(
                b.get(ke),
                None | Some(b'=' | b' ' | b'\t' | b'\n' | b'\r' | b'>' | b'/')
            ) {
                return Err(nwf(lt, "malformed attribute"));
            }
            j = ke;
            while j < b.len() && CLASS[b[j] as usize] & C_SPACE != 0 {
                j += 1;
            }
            if b.get(j) != Some(&b'=') {
                return Err(nwf(lt, "malformed attribute"));
            }
            j += 1;
            while j < b.len() && CLASS[b[j] as usize] & C_SPACE != 0 {
                j += 1;
            }
            let quote = match b.get(j) {
                Some(&q @ (b'"' | b'\'')) => q,
                _ => return Err(nwf(lt, "malformed attribute")),
            };
            // One pass to the closing quote that also finds `<` and `&` (nearly every value
            // has neither).
            let vs = j + 1;
            let ve = match memchr::memchr3(quote, b'<', b'&', &b[vs..]) {
                Some(k) if b[vs + k] == quote => vs + k,
                Some(_) => {
                    let ve = memchr::memchr(quote, &b[vs..])
                        .map(|k| vs + k)
                        .ok_or(nwf(lt, "syntax error"))?;
                    // XML 1.0 §3.1 WFC: No < in Attribute Values; references must be
                    // well-formed.
                    if !is_valid_attr_value(&b[vs..ve]) {
                        return Err(nwf(lt, "invalid attribute value"));
                    }
                    self.any_amp |= b[vs..ve].contains(&b'&');
                    ve
                }
                None => return Err(nwf(lt, "syntax error")),
            };
            j = ve + 1;
            prefixed |= kc.is_some();
            self.attribute(
                Attr {
                    key: Span::new(ks, ke),
                    value: Span::new(vs, ve),
                    colon: kc.unwrap_or(0) as u32,
                },
                lt,
                d,
            )?;
        };
        let ns = self
            .resolve(prefix)
            .ok_or(nwf(lt, "undeclared namespace prefix"))?;
        if prefixed {
            self.prefixed_attributes(lt)?;
        }
        match d {
            1 => self.root(ns, local)?,
            2 => self.top(ns, local, name)?,
            _ => {
                if self.top.is_some_and(|o| o.kind == Some(ElementKind::Tuple)) {
                    // RFC 3863 §4.1.2-§4.1.4: tuple > status > basic, basic is open or closed.
                    let pidf = self.is_ns(ns, self.pidf_ns, PIDF_NS);
                    let o = self.top.as_mut().expect("checked");
                    if d == 3 && pidf && same(local, b"status") {
                        o.saw_status = true;
                        o.in_status = !empty;
                    } else if d == 4 && o.in_status && pidf && same(local, b"basic") {
                        if empty {
                            return Err(PidfError::InvalidBasic);
                        }
                        o.basic_start = Some(after);
                    }
                }
            }
        }
        Ok((name, after, empty))
    }

    /// Prefixes of the attributes just read (other than `xmlns:`) must be bound.
    fn prefixed_attributes(&mut self, at: usize) -> Result<(), PidfError> {
        let b = self.b;
        for i in 0..self.attrs.len() {
            let a = self.attrs.as_slice()[i];
            if a.colon == 0 {
                continue;
            }
            let (p, l) = (
                &b[a.key.start as usize..a.colon as usize],
                &b[a.colon as usize + 1..a.key.end as usize],
            );
            if same(p, b"xmlns") {
                continue;
            }
            let r = self
                .resolve(p)
                .ok_or(nwf(at, "undeclared namespace prefix"))?;
            // `xsi:type` holds a QName (unprefixed: default namespace) whose prefix must stay
            // bound; an unknown one is a schema error, not a well-formedness error, so it is only
            // recorded when it resolves.
            if same(l, b"type") && self.uri(r) == XSI_NS.as_bytes() {
                let v = self.str(a.value).trim();
                let vp = v.split_once(':').map_or("", |(vp, _)| vp);
                let _ = self.resolve(vp.as_bytes());
            }
        }
        Ok(())
    }

    /// One attribute of the start tag at `at` (element depth `d`).
    fn attribute(&mut self, a: Attr, at: usize, d: u32) -> Result<(), PidfError> {
        let b = self.b;
        let k = &b[a.key.range()];
        // XML 1.0 §3.1 WFC: Unique Att Spec.
        if self
            .attrs
            .as_slice()
            .iter()
            .any(|o| same(&b[o.key.range()], k))
        {
            return Err(nwf(at, "duplicate attribute"));
        }
        if k.starts_with(b"xmlns") {
            if k.len() == 5 {
                self.declare(
                    Span::new(a.key.end as usize, a.key.end as usize),
                    a.value,
                    at,
                    d,
                )?;
            } else if a.colon as usize == a.key.start as usize + 5 {
                self.declare(
                    Span::new(a.colon as usize + 1, a.key.end as usize),
                    a.value,
                    at,
                    d,
                )?;
            }
        }
        self.attrs.push(a);
        Ok(())
    }

    /// Handles the end of the element at depth `d` whose end tag starts at `at` and ends at `after`.
    #[inline(always)]
    fn close(&mut self, d: u32, at: usize, after: usize) -> Result<(), PidfError> {
        while self.local.last().is_some_and(|l| l.depth >= d) {
            self.local.pop();
        }
        if d == 4
            && let Some(start) = self.top.as_mut().and_then(|o| o.basic_start.take())
        {
            let raw = &self.b[start..at];
            let ok = match raw {
                b"open" | b"closed" => true,
                _ if raw.contains(&b'&') => {
                    let value = quick_xml::escape::unescape(self.str(Span::new(start, at)))
                        .unwrap_or(Cow::Borrowed(""));
                    value == "open" || value == "closed"
                }
                _ => false,
            };
            if !ok {
                return Err(PidfError::InvalidBasic);
            }
        }
        if d == 3
            && let Some(o) = self.top.as_mut()
        {
            o.in_status = false;
        }
        if d == 2
            && let Some(o) = self.top.take()
            && let Some(kind) = o.kind
        {
            if kind == ElementKind::Tuple && !o.saw_status {
                return Err(PidfError::MissingStatus);
            }
            self.found.push(Found {
                kind,
                start: o.start as u32,
                end: after as u32,
                name_end: o.name_end as u32,
                id: o.id,
                ns: o.ns,
                uses: self.uses,
            });
        }
        Ok(())
    }

    /// Reads `<presence>`: its namespace and `entity` (its declarations are recorded already).
    fn root(&mut self, ns: Resolved, local: &[u8]) -> Result<(), PidfError> {
        // RFC 3863 §4.1.1: the root is `presence` in the PIDF namespace, whatever the prefix.
        if !same(local, b"presence") || !ns_is(self.uri(ns), PIDF_NS) {
            return Err(PidfError::NotPidf);
        }
        if !self
            .root_ns
            .as_slice()
            .iter()
            .any(|n| n.prefix.is_empty() && !n.uri.is_empty())
        {
            // No default namespace: unprefixed descendants are in no namespace, which a copy
            // under the composed root (default = PIDF) must restate with `xmlns=""`.
            self.root_ns.retain(|n| !n.prefix.is_empty());
            self.root_ns.push(NsDecl::default());
        }
        if self.root_ns.len() > MAX_ROOT_NAMESPACES {
            return Err(PidfError::TooManyNamespaces);
        }
        self.default_root = self
            .root_ns
            .as_slice()
            .iter()
            .position(|n| n.prefix.is_empty());
        for (i, n) in self.root_ns.as_slice().iter().enumerate() {
            let uri = &self.b[n.uri.range()];
            self.pidf_ns |= (ns_is(uri, PIDF_NS) as u128) << i;
            self.dm_ns |= (ns_is(uri, DATA_MODEL_NS) as u128) << i;
        }
        match self.attr(b"entity") {
            Some(raw) => {
                self.entity = self.trim(raw);
                match self.entity.is_empty() {
                    true => Err(PidfError::MissingEntity),
                    false => Ok(()),
                }
            }
            None => Err(PidfError::MissingEntity),
        }
    }

    /// Whether `r` resolves to `ns` (`mask`: the root bindings known to be `ns`).
    #[inline(always)]
    fn is_ns(&self, r: Resolved, mask: u128, ns: &str) -> bool {
        match r {
            Resolved::Root(i) => mask >> i & 1 != 0,
            Resolved::Local(u) => ns_is(&self.b[u.range()], ns),
            Resolved::Xml | Resolved::NoNamespace => false,
        }
    }

    /// Reads the start tag of a top-level child of `<presence>` and classifies it.
    fn top(&mut self, ns: Resolved, local: &[u8], name: Span) -> Result<(), PidfError> {
        let kind = if self.is_ns(ns, self.pidf_ns, PIDF_NS) {
            // pidf.xsd: `tuple*, note*, ##other*`; other PIDF names are not allowed here.
            match local {
                b"tuple" => Some(ElementKind::Tuple),
                b"note" => Some(ElementKind::Note),
                _ => None,
            }
        } else if self.uri(ns).is_empty() {
            // `##other` excludes unqualified elements: not representable in a valid document.
            None
        } else if same(local, b"person") && self.is_ns(ns, self.dm_ns, DATA_MODEL_NS) {
            Some(ElementKind::Person)
        } else if same(local, b"device") && self.is_ns(ns, self.dm_ns, DATA_MODEL_NS) {
            Some(ElementKind::Device)
        } else {
            Some(ElementKind::Other)
        };
        let id = match (kind, self.attr(b"id")) {
            (Some(ElementKind::Note) | None, _) => None,
            (Some(_), Some(raw)) if !raw.is_empty() => Some(raw),
            (Some(ElementKind::Tuple), _) => return Err(PidfError::MissingId("tuple")),
            (Some(ElementKind::Person), _) => return Err(PidfError::MissingId("person")),
            (Some(ElementKind::Device), _) => return Err(PidfError::MissingId("device")),
            (Some(ElementKind::Other), _) => None,
        };
        let ns = match (kind, ns) {
            // Known kinds need no slice of the body (and no reference count).
            (Some(ElementKind::Tuple | ElementKind::Note), _) => NsName::Static(NS_PIDF),
            (Some(ElementKind::Person | ElementKind::Device), _) => NsName::Static(NS_DM),
            (None, _) => NsName::Empty,
            (_, Resolved::Root(i)) => NsName::Body(self.root_ns.as_slice()[i].uri),
            (_, Resolved::Local(u)) => NsName::Body(u),
            (_, Resolved::Xml) => NsName::Static(NS_XML),
            (_, Resolved::NoNamespace) => NsName::Empty,
        };
        self.top = Some(Open {
            start: name.start as usize - 1,
            name_end: (name.end - name.start) as usize + 1,
            kind,
            id,
            ns,
            saw_status: false,
            in_status: false,
            basic_start: None,
        });
        Ok(())
    }

    /// Records `xmlns[:prefix]="uri"` made by the element at depth `d` (Namespaces in XML 1.0 §3).
    fn declare(&mut self, prefix: Span, uri: Span, at: usize, d: u32) -> Result<(), PidfError> {
        let b = self.b;
        let (p, u) = (&b[prefix.range()], &b[uri.range()]);
        let value: Cow<'_, [u8]> = if self.any_amp && u.contains(&b'&') {
            let v = unescape(self.str(uri)).map_err(|_| nwf(at, "invalid reference"))?;
            Cow::Owned(v.into_owned().into_bytes())
        } else {
            Cow::Borrowed(u)
        };
        let value = &*value;
        if same(p, b"xmlns") {
            return Err(nwf(at, "reserved prefix xmlns declared"));
        }
        if same(p, b"xml") {
            if value != XML_NS.as_bytes() {
                return Err(nwf(at, "reserved prefix xml rebound"));
            }
            return Ok(());
        }
        if value == XML_NS.as_bytes() || value == XMLNS_NS.as_bytes() {
            return Err(nwf(at, "reserved namespace bound"));
        }
        // Namespaces in XML 1.0, NSC: No Prefix Undeclaring: only the default may be emptied.
        if !p.is_empty() && u.is_empty() {
            return Err(nwf(at, "empty namespace name"));
        }
        if d == 1 {
            self.root_ns.push(NsDecl { prefix, uri });
            if self.root_ns.len() > MAX_ROOT_NAMESPACES {
                return Err(PidfError::TooManyNamespaces);
            }
        } else {
            self.local.push(LocalNs {
                prefix,
                uri,
                depth: d,
            });
        }
        Ok(())
    }

    /// Resolves a prefix (`""` = default namespace, for element names only) in the current scope.
    #[inline(always)]
    fn resolve(&mut self, prefix: &[u8]) -> Option<Resolved> {
        let b = self.b;
        // most names: unprefixed, no declaration inside the top-level element
        if prefix.is_empty()
            && self.local.len() == 0
            && let Some(i) = self.default_root
        {
            self.uses |= 1u128 << i;
            return Some(Resolved::Root(i));
        }
        if same(prefix, b"xml") {
            return Some(Resolved::Xml);
        }
        if let Some(l) = self
            .local
            .as_slice()
            .iter()
            .rev()
            .find(|l| same(&b[l.prefix.range()], prefix))
        {
            return Some(Resolved::Local(l.uri));
        }
        if let Some(i) = self
            .root_ns
            .as_slice()
            .iter()
            .position(|n| same(&b[n.prefix.range()], prefix))
        {
            self.uses |= 1u128 << i;
            return Some(Resolved::Root(i));
        }
        prefix.is_empty().then_some(Resolved::NoNamespace)
    }

    #[inline(always)]
    fn uri(&self, r: Resolved) -> &'a [u8] {
        match r {
            Resolved::Root(i) => &self.b[self.root_ns.as_slice()[i].uri.range()],
            Resolved::Local(u) => &self.b[u.range()],
            Resolved::Xml => XML_NS.as_bytes(),
            Resolved::NoNamespace => b"",
        }
    }

    /// Raw value of the unprefixed attribute `name` of the start tag just read.
    fn attr(&self, name: &[u8]) -> Option<Span> {
        self.attrs
            .as_slice()
            .iter()
            .find(|a| same(&self.b[a.key.range()], name))
            .map(|a| a.value)
    }

    /// The document over `owner`, laid out as `layout` says.
    fn finish(&self, owner: &Bytes, layout: Layout) -> Result<PidfDocument, PidfError> {
        let found = self.found.as_slice();
        let mut elements = Vec::with_capacity(found.len());
        for (f, p) in found.iter().zip(layout.elements.as_slice()) {
            let uses = f.uses;
            let (ns_code, ns) = ns_code(p.ns);
            elements.push(PidfElement {
                kind: f.kind,
                name_end: f.name_end,
                buf: owner.slice(p.slice.range()),
                raw: p.raw,
                id: p.id,
                ns_code,
                ns,
                uses: [uses as u64, (uses >> 64) as u64],
            });
        }
        check_unique_ids(&elements)?;
        Ok(PidfDocument {
            entity: SharedStr(owner.slice(layout.entity.range())),
            elements: elements.into_boxed_slice(),
            body: owner.clone(),
            namespaces: layout.namespaces,
            view_len: 0,
        })
    }
}

/// Where a document's texts are in its buffer.
struct Layout {
    /// The entity, trimmed and unescaped.
    entity: Span,
    namespaces: Box<[NsDecl]>,
    elements: Inline<Placed, 4>,
}

/// Where a kept element is: its slice of the buffer, and its texts within that slice.
#[derive(Debug, Clone, Copy, Default)]
struct Placed {
    slice: Span,
    raw: Span,
    id: Span,
    ns: NsRef,
}

/// Text with its references expanded (the parser has checked them all).
fn unescaped(raw: &str) -> Cow<'_, str> {
    unescape(raw).unwrap_or(Cow::Borrowed(raw))
}

fn unescape(raw: &str) -> Result<Cow<'_, str>, quick_xml::escape::EscapeError> {
    if raw.contains('&') {
        quick_xml::escape::unescape(raw)
    } else {
        Ok(Cow::Borrowed(raw))
    }
}

/// Compares a namespace name as written (possibly with references) to an expected one.
fn ns_is(raw: &[u8], expected: &str) -> bool {
    raw == expected.as_bytes()
        // a reference is longer than the character it stands for
        || (raw.len() > expected.len()
            && raw.contains(&b'&')
            && std::str::from_utf8(raw)
                .ok()
                .and_then(|r| unescape(r).ok())
                .is_some_and(|v| v == expected))
}

fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// XML 1.0 §2.3 Name; non-ASCII characters are accepted without checking their Unicode class.
fn is_name(b: &[u8]) -> bool {
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || matches!(b[0], b'_' | b':') || b[0] >= 0x80)
        && b.iter().all(|&c| {
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b':') || c >= 0x80
        })
}

/// Name of a general reference without `&` and `;`: predefined entity or character reference to
/// a legal character (XML 1.0 §4.1, §2.2). No DTD, so no other entity is declared.
fn is_valid_reference(name: &[u8]) -> bool {
    if let Some(num) = name.strip_prefix(b"#") {
        let code = match num.strip_prefix(b"x") {
            Some(hex) if !hex.is_empty() && hex.iter().all(u8::is_ascii_hexdigit) => {
                hex.iter().try_fold(0u32, |acc, &h| {
                    let d = (h as char).to_digit(16)?;
                    acc.checked_mul(16)?.checked_add(d)
                })
            }
            None if !num.is_empty() && num.iter().all(u8::is_ascii_digit) => {
                num.iter().try_fold(0u32, |acc, &d| {
                    acc.checked_mul(10)?.checked_add((d - b'0') as u32)
                })
            }
            _ => None,
        };
        return code.is_some_and(
            |c| matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF),
        );
    }
    matches!(name, b"lt" | b"gt" | b"amp" | b"apos" | b"quot")
}

/// XML 1.0 §3.1 WFC: No < in Attribute Values, and every `&` starts a valid reference.
fn is_valid_attr_value(raw: &[u8]) -> bool {
    let Some(first) = memchr::memchr2(b'<', b'&', raw) else {
        return true;
    };
    if memchr::memchr(b'<', &raw[first..]).is_some() {
        return false;
    }
    let mut rest = &raw[first..];
    while let Some(amp) = memchr::memchr(b'&', rest) {
        rest = &rest[amp + 1..];
        let Some(semi) = memchr::memchr(b';', rest) else {
            return false;
        };
        if !is_valid_reference(&rest[..semi]) {
            return false;
        }
        rest = &rest[semi + 1..];
    }
    true
}

/// The XML declaration `<?xml ...?>` follows XML 1.0 §2.8 (quick-xml is lenient there) and, for
/// a non-ASCII body, names UTF-8: elements are copied byte for byte into UTF-8 documents.
fn check_decl(decl: &str, ascii: bool, at: usize) -> Result<(), PidfError> {
    let bad = || nwf(at, "bad XML declaration");
    let mut rest = decl
        .strip_prefix("<?xml")
        .and_then(|s| s.strip_suffix("?>"))
        .ok_or_else(bad)?;
    let version = decl_attr(&mut rest, "version").ok_or_else(bad)?;
    if !version
        .strip_prefix("1.")
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    let encoding = decl_attr(&mut rest, "encoding");
    if let Some(standalone) = decl_attr(&mut rest, "standalone")
        && standalone != "yes"
        && standalone != "no"
    {
        return Err(bad());
    }
    if !rest.bytes().all(is_xml_space) {
        return Err(bad());
    }
    match encoding {
        None => Ok(()),
        Some(enc)
            if !enc.as_bytes()[0].is_ascii_alphabetic()
                || !enc
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) =>
        {
            Err(bad())
        }
        Some(enc) if enc.eq_ignore_ascii_case("utf-8") || enc.eq_ignore_ascii_case("utf8") => {
            Ok(())
        }
        // Same bytes as UTF-8 when the body is plain ASCII.
        Some(enc) if ascii && is_ascii_compatible(enc) => Ok(()),
        Some(_) => Err(PidfError::UnsupportedEncoding),
    }
}

/// Encoding names that agree with UTF-8 on ASCII text.
fn is_ascii_compatible(enc: &str) -> bool {
    let enc = enc.to_ascii_lowercase();
    matches!(enc.as_str(), "us-ascii" | "ascii" | "latin1")
        || enc
            .strip_prefix("iso-8859-")
            .or_else(|| enc.strip_prefix("windows-125"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// XML 1.0 §2.6: `<?target ...?>` where the target is a Name other than `xml` (any case),
/// followed by white space or the end.
fn is_valid_pi(raw: &str) -> bool {
    let Some(inner) = raw.strip_prefix("<?").and_then(|s| s.strip_suffix("?>")) else {
        return false;
    };
    let target = inner
        .split([' ', '\t', '\n', '\r'])
        .next()
        .unwrap_or_default();
    is_name(target.as_bytes()) && !target.eq_ignore_ascii_case("xml")
}

/// Reads ` name="value"` (or single quotes, XML 1.0 §2.8 `S name Eq value`) from the front of
/// `rest`, advancing it; leaves `rest` alone and returns `None` when it does not start that way.
fn decl_attr<'a>(rest: &mut &'a str, name: &str) -> Option<&'a str> {
    let ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
    let s = rest.trim_start_matches(ws);
    if s.len() == rest.len() {
        return None;
    }
    let s = s.strip_prefix(name)?.trim_start_matches(ws);
    let s = s.strip_prefix('=')?.trim_start_matches(ws);
    let quote = s.chars().next().filter(|&q| q == '"' || q == '\'')?;
    let (value, after) = s[1..].split_once(quote)?;
    (!value.is_empty()).then_some(())?;
    *rest = after;
    Some(value)
}

/// `tuple`, `dm:person` and `dm:device` ids are `xs:ID`: unique across the document.
fn check_unique_ids(elements: &[PidfElement]) -> Result<(), PidfError> {
    let keyed = |e: &&PidfElement| {
        matches!(
            e.kind,
            ElementKind::Tuple | ElementKind::Person | ElementKind::Device
        )
    };
    if elements.iter().filter(keyed).nth(1).is_none() {
        return Ok(());
    }
    let mut ids: Vec<&str> = elements
        .iter()
        .filter(keyed)
        .filter_map(|e| e.id())
        .collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(PidfError::DuplicateId);
    }
    Ok(())
}

/// Whether the presence `entity` names the address of record `aor`: `pres:`, `sip:` and `sips:`
/// (or no scheme) are equivalent; user part case-sensitive after %-decoding, host (and port)
/// case-insensitive, URI parameters and headers ignored (RFC 3261 §19.1.4; `pres:` is RFC 3859).
pub fn entity_matches(entity: &str, aor: &str) -> bool {
    if entity.strip_prefix("sip:") == Some(aor) && plain_aor(aor) {
        return true;
    }
    match (uri_identity(entity), uri_identity(aor)) {
        (Some((u1, h1)), Some((u2, h2))) => {
            !h1.is_empty()
                && h1.eq_ignore_ascii_case(h2)
                && crate::percent::decoded_bytes(u1).eq(crate::percent::decoded_bytes(u2))
        }
        _ => false,
    }
}

/// [`entity_matches`] for the entity of a parsed document, compared as bytes in the common case.
pub fn entity_names(entity: &SharedStr, aor: &str) -> bool {
    let e = entity.as_bytes();
    if e.len() == 4 + aor.len() && e.starts_with(b"sip:") && e[4..] == *aor.as_bytes() {
        return plain_aor(aor) || entity_matches(entity.as_str(), aor);
    }
    entity_matches(entity.as_str(), aor)
}

/// The common case of [`entity_matches`], `sip:` + exactly the address of record, holds when
/// nothing in it needs the general comparison (escapes, parameters, a password, brackets, white
/// space).
fn plain_aor(aor: &str) -> bool {
    static PLAIN: [bool; 256] = {
        let mut t = [false; 256];
        let mut c = b' ' as usize + 1;
        while c < 256 {
            t[c] = !matches!(c as u8, b':' | b'%' | b';' | b'?' | b'<' | b'>');
            c += 1;
        }
        t
    };
    let b = aor.as_bytes();
    if !b.iter().all(|&c| PLAIN[c as usize]) {
        return false;
    }
    // a host after the first `@`, when there is one
    match b.iter().position(|&c| c == b'@') {
        Some(at) => at + 1 < b.len(),
        None => !b.is_empty(),
    }
}

/// (user, host[:port]) of a `sip:`/`sips:`/`pres:` URI or of a bare `user@host`.
fn uri_identity(uri: &str) -> Option<(&str, &str)> {
    let mut s = uri.trim();
    if let Some(inner) = s.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
        s = inner.trim();
    }
    if let Some(colon) = s.find(':') {
        let scheme = &s[..colon];
        if !scheme.contains('@') {
            if ["sip", "sips", "pres"]
                .iter()
                .any(|k| scheme.eq_ignore_ascii_case(k))
            {
                s = &s[colon + 1..];
            } else if scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            {
                return None;
            }
        }
    }
    let s = s.split('?').next().unwrap_or_default();
    let (user, hostport) = match s.split_once('@') {
        Some((userinfo, rest)) => (userinfo.split(':').next().unwrap_or_default(), rest),
        None => ("", s),
    };
    let host = hostport.split(';').next().unwrap_or_default();
    Some((user, host))
}

/// Position group in the composed document: pidf.xsd orders `tuple*, note*, ##other*`.
fn group(kind: ElementKind) -> u8 {
    match kind {
        ElementKind::Tuple => 0,
        ElementKind::Note => 1,
        ElementKind::Person | ElementKind::Device | ElementKind::Other => 2,
    }
}

/// Same replacement key: kind and id (and for `Other`, also namespace and local name).
fn same_key(a: &PidfElement, b: &PidfElement) -> bool {
    a.kind == b.kind
        && a.id().is_some()
        && a.id() == b.id()
        && (a.kind != ElementKind::Other
            || (a.namespace() == b.namespace() && a.local_name() == b.local_name()))
}

/// Same bytes and the same namespace bindings for the prefixes they use.
fn same_content(da: &PidfDocument, a: &PidfElement, db: &PidfDocument, b: &PidfElement) -> bool {
    a.kind == b.kind
        && a.as_bytes() == b.as_bytes()
        && bits(a.uses(), da.namespaces.len()).all(|i| {
            let na = da.namespaces[i];
            let prefix = da.b(na.prefix);
            bits(b.uses(), db.namespaces.len()).any(|j| {
                let nb = db.namespaces[j];
                db.b(nb.prefix) == prefix && db.b(nb.uri) == da.b(na.uri)
            })
        })
}

fn bits(mask: u128, len: usize) -> impl Iterator<Item = usize> {
    (0..len.min(128)).filter(move |i| mask & (1u128 << i) != 0)
}

/// Compose the view of a presentity from its live sources, oldest first: an element with the same
/// kind and id as one from an older source replaces it (in the older one's place); everything else
/// is kept (union; an id-less element identical to one of an older source appears once). Output is
/// one complete PIDF document.
pub fn compose(entity: &str, sources: &[&PidfDocument]) -> Bytes {
    let total: usize = sources.iter().map(|d| d.elements.len()).sum();
    let mut chosen: Vec<(usize, usize)> = Vec::with_capacity(total);
    for (si, doc) in sources.iter().enumerate() {
        'elements: for (ei, el) in doc.elements.iter().enumerate() {
            for slot in chosen.iter_mut() {
                if slot.0 == si {
                    // A source's own elements never replace or absorb each other.
                    continue;
                }
                let (cdoc, cel) = (sources[slot.0], &sources[slot.0].elements[slot.1]);
                if el.id().is_some() {
                    if same_key(el, cel) {
                        *slot = (si, ei);
                        continue 'elements;
                    }
                } else if same_content(doc, el, cdoc, cel) {
                    continue 'elements;
                }
            }
            chosen.push((si, ei));
        }
    }

    // Root bindings: the union of the contributing sources' root prefixes, first binding wins.
    let mut root: Vec<(&[u8], &[u8])> = Vec::new();
    for (si, doc) in sources.iter().enumerate() {
        if !chosen.iter().any(|c| c.0 == si) {
            continue;
        }
        for n in doc.namespaces.iter().filter(|n| !n.prefix.is_empty()) {
            let p = doc.b(n.prefix);
            if !root.iter().any(|(rp, _)| *rp == p) {
                root.push((p, doc.b(n.uri)));
            }
        }
    }

    // The exact length: the view is kept as long as the presentity is published, so its buffer
    // has no slack (and, as a boxed slice, needs no separate reference-count header until shared).
    let entity = [entity];
    let (entity_len, plain) = escaped_len(&entity);
    let mut cap = XML_DECL.len() + ROOT_OPEN.len() + entity_len;
    cap += root.iter().map(|(p, u)| decl_len(p, u)).sum::<usize>();
    cap += if chosen.is_empty() { 3 } else { 1 + 13 };
    for &(si, ei) in &chosen {
        let (doc, el) = (sources[si], &sources[si].elements[ei]);
        cap += el.raw.end as usize - el.raw.start as usize + 1;
        cap += missing_decls(doc, el, &root)
            .map(|(p, u)| decl_len(p, u))
            .sum::<usize>();
    }
    let mut out = Vec::with_capacity(cap);
    out.extend_from_slice(XML_DECL);
    out.extend_from_slice(ROOT_OPEN);
    for (p, u) in &root {
        push_decl(&mut out, p, u);
    }
    push_entity(&mut out, &entity, plain);
    if chosen.is_empty() {
        out.extend_from_slice(b"/>\n");
        debug_assert_eq!(out.len(), cap, "compose pre-sizing");
        return Bytes::from(out);
    }
    out.push(b'>');
    for g in 0..3 {
        for &(si, ei) in &chosen {
            let (doc, el) = (sources[si], &sources[si].elements[ei]);
            if group(el.kind) != g {
                continue;
            }
            out.push(b'\n');
            out.extend_from_slice(&el.as_bytes()[..el.name_end()]);
            for (p, u) in missing_decls(doc, el, &root) {
                push_decl(&mut out, p, u);
            }
            out.extend_from_slice(&el.as_bytes()[el.name_end()..]);
        }
    }
    out.extend_from_slice(b"\n</presence>\n");
    debug_assert_eq!(out.len(), cap, "compose pre-sizing");
    Bytes::from(out)
}

/// Root bindings of `doc` that `el` uses but the composed root (default namespace PIDF, named
/// prefixes `root`) does not bind the same way: they go on `el`'s own start tag.
fn missing_decls<'d>(
    doc: &'d PidfDocument,
    el: &PidfElement,
    root: &[(&[u8], &[u8])],
) -> impl Iterator<Item = (&'d [u8], &'d [u8])> {
    bits(el.uses(), doc.namespaces.len())
        .map(|i| {
            (
                doc.b(doc.namespaces[i].prefix),
                doc.b(doc.namespaces[i].uri),
            )
        })
        .filter(|&(p, u)| {
            if p.is_empty() {
                u != PIDF_NS.as_bytes()
            } else {
                !root.iter().any(|&(rp, ru)| rp == p && ru == u)
            }
        })
}

/// The view of a presentity nobody publishes for: no tuples (pidf.xsd allows that), or one
/// tuple [`CLOSED_TUPLE_ID`] with basic status `closed` when configured.
pub fn empty_view(entity: &str, closed_tuple: bool) -> Bytes {
    let mut out = Vec::with_capacity(XML_DECL.len() + ROOT_OPEN.len() + entity.len() + 120);
    out.extend_from_slice(XML_DECL);
    out.extend_from_slice(ROOT_OPEN);
    push_entity(&mut out, &[entity], entity_is_plain(entity));
    if closed_tuple {
        out.extend_from_slice(b">\n<tuple id=\"");
        out.extend_from_slice(CLOSED_TUPLE_ID.as_bytes());
        out.extend_from_slice(b"\"><status><basic>closed</basic></status></tuple>\n</presence>\n");
    } else {
        out.extend_from_slice(b"/>\n");
    }
    Bytes::from(out)
}

/// ` xmlns[:prefix]="uri"` with `uri` as written in the source (already attribute-escaped; a value
/// that came from single quotes may hold `"`, so it keeps single quotes).
fn push_decl(out: &mut Vec<u8>, prefix: &[u8], uri: &[u8]) {
    out.extend_from_slice(b" xmlns");
    if !prefix.is_empty() {
        out.push(b':');
        out.extend_from_slice(prefix);
    }
    let q = if uri.contains(&b'"') { b'\'' } else { b'"' };
    out.push(b'=');
    out.push(q);
    out.extend_from_slice(uri);
    out.push(q);
}

/// What a byte of an entity is written as in a double-quoted attribute: `None` as itself.
fn entity_escape(b: u8) -> Option<&'static [u8]> {
    match b {
        b'&' => Some(b"&amp;"),
        b'<' => Some(b"&lt;"),
        b'>' => Some(b"&gt;"),
        b'"' => Some(b"&quot;"),
        b'\t' => Some(b"&#9;"),
        b'\n' => Some(b"&#10;"),
        b'\r' => Some(b"&#13;"),
        // Other C0 controls cannot appear in XML 1.0 at all, not even as references.
        0..0x20 => Some(b""),
        _ => None,
    }
}

/// Whether an entity is written as it is (the common case: a plain SIP URI).
fn entity_is_plain(entity: &str) -> bool {
    static PLAIN: [bool; 256] = {
        let mut t = [false; 256];
        let mut c = 0x20;
        while c < 256 {
            t[c] = !matches!(c as u8, b'&' | b'<' | b'>' | b'"');
            c += 1;
        }
        t
    };
    entity.bytes().all(|b| PLAIN[b as usize])
}

/// Length of ` entity="..."` as written by [`push_entity`], and whether the value is written
/// as it is.
fn escaped_len(entity: &[&str]) -> (usize, bool) {
    let mut plain = true;
    let written: usize = entity
        .iter()
        .map(|part| {
            if entity_is_plain(part) {
                part.len()
            } else {
                plain = false;
                part.bytes()
                    .map(|b| entity_escape(b).map_or(1, <[u8]>::len))
                    .sum()
            }
        })
        .sum();
    (10 + written, plain)
}

/// Length of ` xmlns[:prefix]="uri"` as written by [`push_decl`].
fn decl_len(prefix: &[u8], uri: &[u8]) -> usize {
    6 + if prefix.is_empty() {
        0
    } else {
        1 + prefix.len()
    } + 3
        + uri.len()
}

/// ` entity="..."` with the value (the pieces of `entity`, one after the other) escaped for a
/// double-quoted attribute; `plain`: nothing in it needs escaping (see [`escaped_len`]).
fn push_entity(out: &mut Vec<u8>, entity: &[&str], plain: bool) {
    out.extend_from_slice(b" entity=\"");
    for part in entity {
        if plain {
            out.extend_from_slice(part.as_bytes());
            continue;
        }
        for b in part.bytes() {
            match entity_escape(b) {
                Some(e) => out.extend_from_slice(e),
                None => out.push(b),
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    use quick_xml::reader::NsReader;

    const AOR: &str = "sip:alice@example.com";

    /// PJSIP (pjsua) shape: default PIDF namespace, `dm`, `rpid` and an unused `c` (CIPID) prefix.
    const PJSIP: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence entity="sip:alice@example.com" xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:c="urn:ietf:params:xml:ns:pidf:cipid">
 <tuple id="pjb7e1c3a0">
  <status>
   <basic>open</basic>
  </status>
  <contact priority="1">sip:alice@192.0.2.10:5060;transport=udp</contact>
  <note>Online</note>
  <timestamp>2024-05-01T12:00:00Z</timestamp>
 </tuple>
 <dm:person id="pj3f9a1c77">
  <rpid:activities>
   <rpid:unknown />
  </rpid:activities>
  <dm:note>Idle</dm:note>
 </dm:person>
</presence>
"#;

    /// Linphone shape: a tuple and a person whose activity is away.
    const LINPHONE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">
  <tuple id="qmvbxe">
    <status>
      <basic>open</basic>
    </status>
    <contact>sip:alice@198.51.100.7</contact>
    <timestamp>2024-05-01T12:01:00Z</timestamp>
  </tuple>
  <dm:person id="ahmcpa">
    <rpid:activities>
      <rpid:away/>
    </rpid:activities>
    <dm:timestamp>2024-05-01T12:01:00Z</dm:timestamp>
  </dm:person>
</presence>
"#;

    /// A gateway: prefixed PIDF, an unknown extension namespace with its own prefix, and `dm`
    /// bound to something else than the data model (conflicts with the two bodies above).
    const GATEWAY: &str = r#"<?xml version='1.0' encoding='utf-8'?>
<!-- gateway -->
<pidf:presence xmlns:pidf="urn:ietf:params:xml:ns:pidf" xmlns:dm='urn:example:not-data-model' xmlns:geo="urn:example:params:xml:ns:geo-ext" entity="pres:alice@example.com">
  <?gw trace="1"?>
  <pidf:tuple id="gw1">
    <pidf:status><pidf:basic>closed</pidf:basic></pidf:status>
    <pidf:note xml:lang="en">gateway &amp; co &#x263A;</pidf:note>
  </pidf:tuple>
  <pidf:note>via gateway</pidf:note>
  <geo:location geo:precision="city" dm:tag="x&quot;y">
    <geo:city>Paris</geo:city>
  </geo:location>
</pidf:presence>
"#;

    fn doc(xml: &str) -> PidfDocument {
        parse(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}: {xml}"))
    }

    fn err(xml: &str) -> PidfError {
        match parse(xml.as_bytes()) {
            Ok(_) => panic!("accepted: {xml}"),
            Err(e) => e,
        }
    }

    /// `{ns}local @{ns}attr=value ...` for every element, grouped by top-level child of the root,
    /// as resolved by quick-xml's own namespace reader (also proves namespace well-formedness).
    fn resolved_groups(xml: &[u8]) -> Vec<Vec<String>> {
        fn ns(r: ResolveResult<'_>) -> String {
            match r {
                ResolveResult::Bound(n) => n.0.to_owned(),
                ResolveResult::Unbound => String::new(),
                ResolveResult::Unknown(p) => panic!("unknown prefix {p}"),
            }
        }
        let mut reader = NsReader::from_str(std::str::from_utf8(xml).unwrap());
        let (mut depth, mut groups) = (0, Vec::<Vec<String>>::new());
        loop {
            let (res, event) = reader.read_resolved_event().expect("well-formed output");
            let element_ns = ns(res);
            let (e, empty) = match event {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(_) => {
                    depth -= 1;
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            depth += 1;
            let mut desc = format!("{{{element_ns}}}{}", e.local_name().into_inner());
            for a in e.attributes() {
                let a = a.unwrap();
                if a.key.0 == "xmlns" || a.key.0.starts_with("xmlns:") {
                    continue;
                }
                let (r, local) = reader.resolver().resolve_attribute(a.key);
                desc += &format!(" @{{{}}}{}={}", ns(r), local.into_inner(), a.value);
            }
            match depth {
                1 => assert_eq!(
                    desc.split(' ').next(),
                    Some("{urn:ietf:params:xml:ns:pidf}presence")
                ),
                2 => groups.push(vec![desc]),
                _ => groups.last_mut().unwrap().push(desc),
            }
            if empty {
                depth -= 1;
            }
        }
        groups
    }

    /// Checks that `out` is `orig` with only `xmlns` declarations inserted after the element name;
    /// returns the inserted text.
    fn added_decls(out: &PidfElement, orig: &PidfElement) -> String {
        let (o, i) = (out.as_bytes(), orig.as_bytes());
        let ne = orig.name_end();
        assert_eq!(&o[..ne], &i[..ne], "start of {}", orig.qname());
        assert!(o.ends_with(&i[ne..]), "{} changed", orig.qname());
        let added = std::str::from_utf8(&o[ne..o.len() - (i.len() - ne)]).unwrap();
        let mut rest = added;
        while !rest.is_empty() {
            let r = rest.strip_prefix(" xmlns").expect("only xmlns added");
            let eq = r.find('=').unwrap();
            let q = r.as_bytes()[eq + 1];
            let close = r[eq + 2..].find(q as char).unwrap();
            rest = &r[eq + 2 + close + 1..];
        }
        added.to_owned()
    }

    fn validate(xml: &[u8]) {
        crate::schema_check::assert_valid(xml);
    }

    fn example(name: &str) -> Vec<u8> {
        crate::schema_check::example(name)
    }

    #[test]
    fn parses_pjsip_body() {
        let d = doc(PJSIP);
        assert_eq!(d.entity, "sip:alice@example.com");
        let ns: Vec<_> = d.namespaces().collect();
        assert_eq!(
            ns,
            [
                (None, PIDF_NS),
                (Some("dm"), DATA_MODEL_NS),
                (Some("rpid"), "urn:ietf:params:xml:ns:pidf:rpid"),
                (Some("c"), "urn:ietf:params:xml:ns:pidf:cipid"),
            ]
        );
        assert_eq!(d.elements.len(), 2);
        let (t, p) = (&d.elements[0], &d.elements[1]);
        assert_eq!((t.kind, t.id()), (ElementKind::Tuple, Some("pjb7e1c3a0")));
        assert_eq!((p.kind, p.id()), (ElementKind::Person, Some("pj3f9a1c77")));
        assert!(t.as_bytes().starts_with(b"<tuple id=\"pjb7e1c3a0\">"));
        assert!(t.as_bytes().ends_with(b"</tuple>"));
        assert!(p.as_bytes().starts_with(b"<dm:person id="));
        assert!(p.as_bytes().ends_with(b"</dm:person>"));
        assert_eq!(
            (p.qname(), p.local_name(), p.namespace()),
            ("dm:person", "person", DATA_MODEL_NS)
        );
        assert_eq!(t.namespace(), PIDF_NS);
    }

    /// A document parsed with its view holds what `parse` gives (entity, namespaces, elements
    /// with their ids and namespaces, byte for byte) and a view equal to composing it alone.
    #[test]
    fn view_layout_is_compose_of_one_source() {
        let bodies = [
            PJSIP,
            LINPHONE,
            GATEWAY,
            // a default namespace other than PIDF's: elements restate it in the view
            r#"<p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" xmlns="urn:example:ext" xmlns:rpid="urn:example:not-rpid" entity="sip:alice@example.com">
  <p:tuple id="t9"><p:status><p:basic>open</p:basic></p:status><flag on="yes"/></p:tuple>
  <gadget kind="x"><part/><rpid:thing/></gadget>
  <rpid:own/>
</p:presence>"#,
            // no default namespace at all
            r#"<p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com"><p:tuple id="t"><p:status><p:basic>open</p:basic></p:status><flag/></p:tuple></p:presence>"#,
            // nothing kept, references in the entity and an id, a namespace declared in place
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x="urn:x" entity=" sip:alice@example.com&#32;"/>"#,
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x="urn:x" entity="sip:alice@example.com"><x:y id="a&amp;b"/><z:w xmlns:z="urn:z" id="q"/><tuple id="t&#49;"><status/></tuple><note>n</note></presence>"#,
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x='urn:x"q' entity="sip:a@b"><x:y/></presence>"#,
        ];
        for body in bodies {
            for entity in [&["sip:", "alice@example.com"][..], &["sip:\"a&b\"<c>@x\t"]] {
                let plain = doc(body);
                let d = parse_with_view(body.as_bytes(), entity).unwrap();
                let view = d.view().expect("a view");
                assert_eq!(view, compose(&entity.concat(), &[&plain]), "{body}");
                assert_eq!(view, compose(&entity.concat(), &[&d]), "{body}");
                assert!(plain.view().is_none());
                assert_eq!(d.entity, plain.entity);
                assert_eq!(
                    d.namespaces().collect::<Vec<_>>(),
                    plain.namespaces().collect::<Vec<_>>()
                );
                assert_eq!(d.elements.len(), plain.elements.len());
                for (a, b) in d.elements.iter().zip(&plain.elements) {
                    assert_eq!(a.as_bytes(), b.as_bytes());
                    assert_eq!(
                        (a.kind, a.id(), a.namespace(), a.qname(), a.uses()),
                        (b.kind, b.id(), b.namespace(), b.qname(), b.uses())
                    );
                }
                assert_eq!(
                    d.heap_bytes() + view.len(),
                    d.body().len()
                        + d.elements.len() * size_of::<PidfElement>()
                        + d.namespaces.len() * size_of::<NsDecl>()
                );
            }
        }
        let d = parse_with_view(PJSIP.as_bytes(), &["sip:", "alice@example.com"]).unwrap();
        validate(&d.view().unwrap());
    }

    #[test]
    fn parses_shared_examples() {
        {
            let good = example("pidf-rpid.xml");
            let d = parse(&good).unwrap();
            let kinds: Vec<_> = d.elements.iter().map(|e| e.kind).collect();
            assert_eq!(
                kinds,
                [ElementKind::Tuple, ElementKind::Person, ElementKind::Device]
            );
            let out = compose("pres:alice@example.com", &[&d]);
            validate(&out);
            assert_eq!(resolved_groups(&out), resolved_groups(&good));
        }
        {
            let bad = example("pidf-bad.xml");
            assert_eq!(parse(&bad).unwrap_err(), PidfError::MissingId("tuple"));
        }
    }

    #[test]
    fn accepts_any_prefix_and_skips_prolog() {
        let d = doc(GATEWAY);
        assert_eq!(d.entity, "pres:alice@example.com");
        let kinds: Vec<_> = d.elements.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [ElementKind::Tuple, ElementKind::Note, ElementKind::Other]
        );
        assert_eq!(
            d.elements[2].namespace(),
            "urn:example:params:xml:ns:geo-ext"
        );
        assert_eq!(d.elements[2].id(), None);
        // UTF-8 BOM, comments and PIs around the root are fine.
        let bom = format!(
            "\u{feff}<!--c--><?pi x?>\n{}\n<!--after-->\n",
            &LINPHONE[39..]
        );
        let d = doc(&bom);
        assert!(
            d.elements[0]
                .as_bytes()
                .starts_with(b"<tuple id=\"qmvbxe\">")
        );
        // Empty root.
        let d = doc(r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>"#);
        assert!(d.elements.is_empty());
    }

    #[test]
    fn rejects_non_well_formed() {
        let cases = [
            ("", "no root element"),
            ("   ", "no root element"),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a">"#,
                "unexpected end of document",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><note></presence>"#,
                "mismatched end tag",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"/><presence/>"#,
                "content after root element",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"/>x"#,
                "text outside root element",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><note>&nbsp;</note></presence>"#,
                "invalid reference",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><note>&#1;</note></presence>"#,
                "invalid reference",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><note>a & b</note></presence>"#,
                "unclosed reference",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a<b"/>"#,
                "invalid attribute value",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a&b"/>"#,
                "invalid attribute value",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a" entity="b"/>"#,
                "duplicate attribute",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity=a/>"#,
                "malformed attribute",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><x:y/></presence>"#,
                "undeclared namespace prefix",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><note x:y="1"/></presence>"#,
                "undeclared namespace prefix",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x="" entity="a"/>"#,
                "empty namespace name",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><1note/></presence>"#,
                "invalid element name",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><!-- a -- b --></presence>"#,
                "'--' in comment",
            ),
            (
                "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"a\">\u{1}</presence>",
                "invalid character",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><note>]]></note></presence>"#,
                "']]>' in text",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"></note></presence>"#,
                "mismatched end tag",
            ),
            (
                r#" <?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"/>"#,
                "XML declaration not at start",
            ),
            (
                r#"<?xml version="1." ?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"/>"#,
                "bad XML declaration",
            ),
            (
                r#"<?xml version="1.0"encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"/>"#,
                "bad XML declaration",
            ),
            (
                r#"<?xml version="1.0" standalone="maybe"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"/>"#,
                "bad XML declaration",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><?XML x?></presence>"#,
                "invalid processing instruction",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"xmlns:x="urn:x"/>"#,
                "malformed attribute",
            ),
            (
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><note>x</note"#,
                "syntax error",
            ),
        ];
        for (xml, detail) in cases {
            match err(xml) {
                PidfError::NotWellFormed { detail: d, at } => {
                    assert_eq!(d, detail, "{xml}");
                    assert!(at <= xml.len());
                    // Usable as a SIP reason phrase: printable ASCII only.
                    let phrase = err(xml).to_string();
                    assert!(
                        phrase.bytes().all(|b| (0x20..0x7f).contains(&b)),
                        "{phrase}"
                    );
                }
                e => panic!("{xml}: {e}"),
            }
        }
        let mut bad_utf8 =
            br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><note>"#.to_vec();
        bad_utf8.extend_from_slice(b"\xff</note></presence>");
        assert_eq!(
            parse(&bad_utf8).unwrap_err(),
            PidfError::NotWellFormed {
                at: 63,
                detail: "invalid UTF-8"
            }
        );
        let e =
            err(r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><note></presence>"#);
        assert_eq!(
            e.to_string(),
            "not well-formed XML at byte 63 (mismatched end tag)"
        );
        assert_eq!(err(r#"<!DOCTYPE presence><presence/>"#), PidfError::Doctype);
        let latin1 = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"a\"><note>\u{e9}</note></presence>";
        assert_eq!(err(latin1), PidfError::UnsupportedEncoding);
        // Pure ASCII under another declared encoding is the same bytes in UTF-8.
        doc(
            r#"<?xml version="1.0" encoding="US-ASCII"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"/>"#,
        );
    }

    #[test]
    fn rejects_invalid_pidf() {
        assert_eq!(err(r#"<presence entity="a"/>"#), PidfError::NotPidf);
        assert_eq!(
            err(r#"<presence xmlns="urn:ietf:params:xml:ns:pidf2" entity="a"/>"#),
            PidfError::NotPidf
        );
        assert_eq!(
            err(r#"<p:presenc xmlns:p="urn:ietf:params:xml:ns:pidf" entity="a"/>"#),
            PidfError::NotPidf
        );
        assert_eq!(
            err(r#"<presence xmlns="urn:ietf:params:xml:ns:pidf"/>"#),
            PidfError::MissingEntity
        );
        assert_eq!(
            err(r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity=" "/>"#),
            PidfError::MissingEntity
        );
        assert_eq!(
            err(r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" p:entity="a" xmlns:p="urn:x"/>"#),
            PidfError::MissingEntity
        );
        let p = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="a">"#;
        let st = "<status><basic>open</basic></status>";
        let e = |body: &str| err(&format!("{p}{body}</presence>"));
        assert_eq!(
            e(&format!("<tuple>{st}</tuple>")),
            PidfError::MissingId("tuple")
        );
        assert_eq!(
            e(&format!("<tuple id=''>{st}</tuple>")),
            PidfError::MissingId("tuple")
        );
        assert_eq!(e("<dm:person/>"), PidfError::MissingId("person"));
        assert_eq!(
            e("<dm:device><dm:deviceID>x</dm:deviceID></dm:device>"),
            PidfError::MissingId("device")
        );
        assert_eq!(
            e(&format!("<tuple id='a'>{st}</tuple><dm:person id='a'/>")),
            PidfError::DuplicateId
        );
        assert_eq!(
            e("<tuple id='a'><contact>sip:a@b</contact></tuple>"),
            PidfError::MissingStatus
        );
        assert_eq!(e("<tuple id='a'/>"), PidfError::MissingStatus);
        assert_eq!(
            e("<tuple id='a'><status><basic>maybe</basic></status></tuple>"),
            PidfError::InvalidBasic
        );
        assert_eq!(
            e("<tuple id='a'><status><basic/></status></tuple>"),
            PidfError::InvalidBasic
        );
        assert_eq!(
            e("<tuple id='a'><status><basic> open</basic></status></tuple>"),
            PidfError::InvalidBasic
        );
        // A character reference in basic is still `closed`.
        doc(&format!(
            "{p}<tuple id='a'><status><basic>clos&#101;d</basic></status></tuple></presence>"
        ));
        // PIDF-namespace and unqualified elements that pidf.xsd does not allow at the top are dropped.
        let d = doc(&format!(
            "{p}<tuple id='a'>{st}</tuple><bogus/><z xmlns=''/></presence>"
        ));
        assert_eq!(d.elements.len(), 1);
    }

    #[test]
    fn composes_real_world_sources_verbatim() {
        let (a, b, c) = (doc(PJSIP), doc(LINPHONE), doc(GATEWAY));
        let out = compose(AOR, &[&a, &b, &c]);
        validate(&out);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" xmlns:c=\"urn:ietf:params:xml:ns:pidf:cipid\" xmlns:pidf=\"urn:ietf:params:xml:ns:pidf\" xmlns:geo=\"urn:example:params:xml:ns:geo-ext\" entity=\"sip:alice@example.com\">\n"), "{text}");
        // tuples, then notes, then other namespaces; each group in source order.
        let expected = [
            (&a, 0),
            (&b, 0),
            (&c, 0),
            (&c, 1),
            (&a, 1),
            (&b, 1),
            (&c, 2),
        ];
        let o = parse(&out).unwrap();
        assert_eq!(o.elements.len(), expected.len());
        let added: Vec<_> = expected
            .iter()
            .zip(&o.elements)
            .map(|((d, i), out)| added_decls(out, &d.elements[*i]))
            .collect();
        // Only the gateway's extension needs its own `dm` (the composed root's `dm` is RFC 4479's).
        assert_eq!(
            added,
            [
                "",
                "",
                "",
                "",
                "",
                "",
                " xmlns:dm=\"urn:example:not-data-model\""
            ]
        );
        // Every element and attribute still resolves to the namespace it had in its source.
        let (ga, gb, gc) = (
            resolved_groups(PJSIP.as_bytes()),
            resolved_groups(LINPHONE.as_bytes()),
            resolved_groups(GATEWAY.as_bytes()),
        );
        let want = [&ga[0], &gb[0], &gc[0], &gc[1], &ga[1], &gb[1], &gc[2]];
        let got = resolved_groups(&out);
        assert_eq!(got.iter().collect::<Vec<_>>(), want);
        assert!(got[6].contains(&"{urn:example:params:xml:ns:geo-ext}location @{urn:example:params:xml:ns:geo-ext}precision=city @{urn:example:not-data-model}tag=x&quot;y".to_owned()));
        // Composing the composed view again changes nothing.
        assert_eq!(compose(AOR, &[&o]), out);
    }

    #[test]
    fn newer_source_replaces_same_kind_and_id() {
        let p = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">"#;
        let older = doc(&format!(
            "{p}<tuple id='t1'><status><basic>open</basic></status></tuple>\
             <dm:person id='p1'><rpid:activities><rpid:busy/></rpid:activities></dm:person>\
             <note>old note</note></presence>"
        ));
        let newer = doc(&format!(
            "{p}<dm:person id='p1'><rpid:activities><rpid:away/></rpid:activities></dm:person>\
             <tuple id='t2'><status><basic>open</basic></status></tuple>\
             <tuple id='t1'><status><basic>closed</basic></status></tuple></presence>"
        ));
        let out = compose(AOR, &[&older, &newer]);
        validate(&out);
        let o = parse(&out).unwrap();
        let got: Vec<_> = o.elements.iter().map(|e| e.as_bytes()).collect();
        assert_eq!(
            got,
            [
                newer.elements[2].as_bytes(), // t1 from the newer source, in t1's first place
                newer.elements[1].as_bytes(), // t2
                older.elements[2].as_bytes(), // note kept
                newer.elements[0].as_bytes(), // p1 from the newer source
            ]
        );
        // Oldest-first order matters: swapped, the other copies win.
        let o = parse(&compose(AOR, &[&newer, &older])).unwrap();
        let got: Vec<_> = o.elements.iter().map(|e| e.as_bytes()).collect();
        assert_eq!(
            got,
            [
                newer.elements[1].as_bytes(),
                older.elements[0].as_bytes(),
                older.elements[2].as_bytes(),
                older.elements[1].as_bytes(),
            ]
        );
        // Different kinds never replace each other, even with equal ids; the resulting xs:ID
        // collision is the publishers' doing and shows up when the view is parsed again.
        let x = doc(&format!("{p}<dm:person id='t1'/></presence>"));
        let e = parse(&compose(AOR, &[&older, &x])).unwrap_err();
        assert_eq!(e, PidfError::DuplicateId);
    }

    #[test]
    fn orders_tuple_note_other() {
        let d = doc(
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:op="urn:oma:xml:prs:pres-content" entity="sip:alice@example.com">
  <dm:person id="p"/>
  <note xml:lang="en">first</note>
  <op:pres-content><op:mime-type>image/png</op:mime-type></op:pres-content>
  <tuple id="t"><status><basic>open</basic></status></tuple>
  <note>second</note>
</presence>"#,
        );
        let out = compose(AOR, &[&d]);
        validate(&out);
        let o = parse(&out).unwrap();
        let names: Vec<_> = o.elements.iter().map(|e| e.qname()).collect();
        assert_eq!(
            names,
            ["tuple", "note", "note", "dm:person", "op:pres-content"]
        );
    }

    #[test]
    fn identical_id_less_elements_appear_once() {
        let note = |n: &str| {
            doc(&format!(
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x="urn:example:{n}" entity="sip:a@b"><note>Busy</note><x:e>1</x:e></presence>"#
            ))
        };
        let (a, b, c) = (note("x"), note("x"), note("y"));
        let o = parse(&compose(AOR, &[&a, &b])).unwrap();
        assert_eq!(o.elements.len(), 2);
        // Same bytes, but `x:` means another namespace: both kept, the second with its binding.
        let out = compose(AOR, &[&a, &c]);
        let o = parse(&out).unwrap();
        assert_eq!(o.elements.len(), 3);
        assert_eq!(
            o.elements[2].as_bytes(),
            b"<x:e xmlns:x=\"urn:example:y\">1</x:e>"
        );
        validate(&out);
    }

    #[test]
    fn restates_default_namespace_when_it_is_not_pidf() {
        let odd = r#"<p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" xmlns="urn:example:ext" xmlns:rpid="urn:example:not-rpid" entity="sip:alice@example.com">
  <p:tuple id="t9"><p:status><p:basic>open</p:basic></p:status><flag on="yes"/></p:tuple>
  <gadget kind="x"><part/><rpid:thing/></gadget>
  <rpid:own/>
</p:presence>"#;
        let (pj, d) = (doc(PJSIP), doc(odd));
        let out = compose(AOR, &[&pj, &d]);
        validate(&out);
        let o = parse(&out).unwrap();
        let added: Vec<_> = [(&pj, 0), (&d, 0), (&pj, 1), (&d, 1), (&d, 2)]
            .iter()
            .zip(&o.elements)
            .map(|((s, i), out)| added_decls(out, &s.elements[*i]))
            .collect();
        assert_eq!(
            added,
            [
                "",
                " xmlns=\"urn:example:ext\"",
                "",
                " xmlns=\"urn:example:ext\" xmlns:rpid=\"urn:example:not-rpid\"",
                " xmlns:rpid=\"urn:example:not-rpid\"",
            ]
        );
        let (gp, gd) = (
            resolved_groups(PJSIP.as_bytes()),
            resolved_groups(odd.as_bytes()),
        );
        assert_eq!(
            resolved_groups(&out),
            [
                gp[0].clone(),
                gd[0].clone(),
                gp[1].clone(),
                gd[1].clone(),
                gd[2].clone()
            ]
        );

        // No default namespace at all: unqualified descendants must stay unqualified.
        let bare = r#"<p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com"><p:tuple id="t"><p:status><p:basic>open</p:basic></p:status><flag/></p:tuple></p:presence>"#;
        let out = compose(AOR, &[&doc(bare)]);
        assert!(
            std::str::from_utf8(&out)
                .unwrap()
                .contains("<p:tuple xmlns=\"\" id=\"t\">")
        );
        assert_eq!(resolved_groups(&out), resolved_groups(bare.as_bytes()));
    }

    #[test]
    fn local_declarations_and_xsi_type() {
        // Declarations inside the element are its own; prefixes in xsi:type values are kept bound.
        let src = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:e="urn:example:e" xmlns:t="urn:example:types" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" entity="sip:a@b">
<e:x xmlns:l="urn:example:local" l:a="1" xsi:type="t:kind"><l:y xmlns:e="urn:example:inner"><e:z/></l:y></e:x>
</presence>"#;
        let other = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:t="urn:example:other" xmlns:xsi="urn:example:not-xsi" xmlns:e="urn:example:not-e" entity="sip:a@b"><t:w/></presence>"#;
        let (o, d) = (doc(other), doc(src));
        let out = compose(AOR, &[&o, &d]);
        let c = parse(&out).unwrap();
        assert_eq!(
            added_decls(&c.elements[1], &d.elements[0]),
            " xmlns:e=\"urn:example:e\" xmlns:t=\"urn:example:types\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""
        );
        assert_eq!(resolved_groups(&out)[1], resolved_groups(src.as_bytes())[0]);
    }

    #[test]
    fn empty_views_are_valid() {
        let out = empty_view("sip:alice@example.com", false);
        assert_eq!(
            &out[..],
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:alice@example.com\"/>\n"
        );
        validate(&out);
        let out = empty_view("pres:a&b@example.com", true);
        validate(&out);
        let d = parse(&out).unwrap();
        assert_eq!(d.entity, "pres:a&b@example.com");
        assert_eq!(d.elements.len(), 1);
        assert_eq!(
            (d.elements[0].kind, d.elements[0].id()),
            (ElementKind::Tuple, Some(CLOSED_TUPLE_ID))
        );
        assert_eq!(compose("sip:x@y", &[]), empty_view("sip:x@y", false));
    }

    #[test]
    fn compose_escapes_entity() {
        let out = compose("sip:\"a&b\"<c>@example.com", &[&doc(LINPHONE)]);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.contains(" entity=\"sip:&quot;a&amp;b&quot;&lt;c&gt;@example.com\">"));
        assert_eq!(parse(&out).unwrap().entity, "sip:\"a&b\"<c>@example.com");
    }

    #[test]
    fn entity_matching() {
        for (entity, aor) in [
            ("pres:alice@example.com", "sip:alice@example.com"),
            ("sip:alice@example.com", "sip:alice@example.com"),
            ("sips:alice@EXAMPLE.com", "sip:alice@example.COM"),
            ("PRES:alice@example.com", "alice@example.com"),
            ("<sip:alice@example.com>", "sip:alice@example.com"),
            (
                "sip:alice@example.com;transport=tcp",
                "sip:alice@example.com",
            ),
            (
                "sip:alice@example.com?subject=x",
                "pres:alice@example.com;x=y",
            ),
            ("sip:alice:secret@example.com", "sip:alice@example.com"),
            ("sip:%61lice@example.com", "sip:alice@example.com"),
            (
                "sip:+1555;phone-context=x@example.com",
                "sip:+1555;phone-context=x@example.com",
            ),
            ("sip:example.com", "sip:example.com"),
        ] {
            assert!(entity_matches(entity, aor), "{entity} vs {aor}");
        }
        for (entity, aor) in [
            ("sip:Alice@example.com", "sip:alice@example.com"),
            ("sip:alice@example.com", "sip:alice@example.org"),
            ("sip:alice@example.com:5061", "sip:alice@example.com"),
            ("sip:bob@example.com", "sip:alice@example.com"),
            ("tel:+15551234", "sip:+15551234@example.com"),
            ("", "sip:alice@example.com"),
            ("sip:alice@", "sip:alice@"),
        ] {
            assert!(!entity_matches(entity, aor), "{entity} vs {aor}");
        }
    }

    /// The hot path stores slices of one buffer: no per-element copies, no per-byte work beyond
    /// the reader's scan, and only ids allocate per element.
    #[test]
    fn parse_shares_one_buffer() {
        let mut body = PJSIP.replace("</presence>\n", "");
        while body.len() < 1000 {
            body.push_str(" <note>padding note</note>\n");
        }
        body.push_str("</presence>\n");
        let body = Bytes::from(body);
        let d = parse_bytes(body.clone()).unwrap();
        assert_eq!(
            d.body().as_ptr(),
            body.as_ptr(),
            "parse_bytes must not copy the body"
        );
        let range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
        for e in &d.elements {
            let p = e.as_bytes().as_ptr() as usize;
            assert!(range.contains(&p) && p + e.as_bytes().len() <= range.end);
        }
        assert!(d.elements.len() > 8);
        let n = if cfg!(debug_assertions) {
            2_000
        } else {
            200_000
        };
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(parse_bytes(body.clone()).unwrap());
        }
        let per = t.elapsed() / n;
        let docs: Vec<_> = (0..4).map(|_| doc(PJSIP)).collect();
        let refs: Vec<_> = docs.iter().collect();
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(compose(AOR, &refs));
        }
        eprintln!(
            "parse {} B: {per:?}/body, compose 4 sources: {:?}/view",
            body.len(),
            t.elapsed() / n
        );
    }

    #[test]
    fn other_elements_replace_by_name_and_id() {
        let src = |body: &str| {
            doc(&format!(
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x="urn:example:x" xmlns:y="urn:example:y" entity="sip:a@b">{body}</presence>"#
            ))
        };
        let older = src(r#"<x:e id="1">old</x:e><y:e id="1">kept</y:e><x:f id="1">kept too</x:f>"#);
        let newer = src(r#"<x:e id="1">new</x:e>"#);
        let o = parse(&compose(AOR, &[&older, &newer])).unwrap();
        let got: Vec<_> = o.elements.iter().map(|e| e.as_bytes()).collect();
        assert_eq!(
            got,
            [
                &b"<x:e id=\"1\">new</x:e>"[..],
                b"<y:e id=\"1\">kept</y:e>",
                b"<x:f id=\"1\">kept too</x:f>"
            ]
        );
        // The key is the namespace, not the prefix.
        let renamed = doc(
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:z="urn:example:x" entity="sip:a@b"><z:e id="1">z</z:e></presence>"#,
        );
        let o = parse(&compose(AOR, &[&older, &renamed])).unwrap();
        assert_eq!(o.elements[0].as_bytes(), b"<z:e id=\"1\">z</z:e>");
        assert_eq!(o.elements.len(), 3);
    }

    /// Random edits of real bodies: parsing never panics, and whatever is accepted composes into a
    /// document where every element keeps its namespaces (alone, and next to a conflicting source).
    #[test]
    fn mutated_bodies_keep_namespaces() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as usize
        };
        let alphabet = b"<>&;:\"'/=x# ]!?-\n\xc3\t[CDATAxmlns0%#";
        let group_of = |g: &Vec<String>| {
            let first = g[0].split(' ').next().unwrap();
            match first {
                "{urn:ietf:params:xml:ns:pidf}tuple" => Some(0),
                "{urn:ietf:params:xml:ns:pidf}note" => Some(1),
                _ if first.starts_with("{}")
                    || first.starts_with("{urn:ietf:params:xml:ns:pidf}") =>
                {
                    None
                }
                _ => Some(2),
            }
        };
        let pjsip = doc(PJSIP);
        let mut accepted = 0;
        for base in [PJSIP, LINPHONE, GATEWAY] {
            for _ in 0..1000 {
                let mut b = base.as_bytes().to_vec();
                for _ in 0..1 + next() % 3 {
                    let pos = next() % b.len();
                    let c = alphabet[next() % alphabet.len()];
                    match next() % 3 {
                        0 => drop(b.remove(pos)),
                        1 => b.insert(pos, c),
                        _ => b[pos] = c,
                    }
                }
                let Ok(d) = parse(&b) else { continue };
                accepted += 1;
                let out = compose(AOR, &[&d]);
                let mut want: Vec<_> = resolved_groups(&b)
                    .into_iter()
                    .filter_map(|g| group_of(&g).map(|k| (k, g)))
                    .collect();
                want.sort_by_key(|(k, _)| *k);
                let want: Vec<_> = want.into_iter().map(|(_, g)| g).collect();
                assert_eq!(
                    resolved_groups(&out),
                    want,
                    "{}",
                    String::from_utf8_lossy(&b)
                );
                let out = compose(AOR, &[&pjsip, &d]);
                parse(&out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
                resolved_groups(&out);
            }
        }
        assert!(accepted > 300, "{accepted}");
    }
}
