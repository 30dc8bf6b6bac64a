//! PIDF rules on top of the XML scanner: the root and its entity, the top-level element kinds
//! and ids, tuple status (RFC 3863 §4.1), and the namespace bindings each kept element uses.

use std::borrow::Cow;

use bytes::Bytes;

use super::model::*;
use crate::inline::Inline;
use crate::xml::namespace::{Declaration, XML_NS, check_declaration, ns_is};
use crate::xml::scan::*;
use crate::xml::walk::{Handler, RawAttr, StartTag, TagName, walk};
use crate::xml::{Error as XmlError, Fault, encoding};

const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

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

impl From<XmlError> for PidfError {
    fn from(e: XmlError) -> PidfError {
        match e.fault {
            Fault::Syntax | Fault::NotUtf8 => nwf(e.at, e.reason),
            Fault::Encoding => PidfError::UnsupportedEncoding,
            Fault::Doctype => PidfError::Doctype,
        }
    }
}

fn nwf(at: usize, detail: &'static str) -> PidfError {
    PidfError::NotWellFormed { at, detail }
}

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

#[derive(Debug, Clone, Copy)]
pub(super) enum Resolved {
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
pub(super) struct LocalNs {
    pub(super) prefix: Span,
    pub(super) uri: Span,
    pub(super) depth: u32,
}

/// An attribute of the start tag being read.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Attr {
    pub(super) key: Span,
    pub(super) value: Span,
    /// Offset of the `:` in the key; 0 when unprefixed (a key never starts at offset 0).
    pub(super) colon: u32,
}

/// Where a kept element's namespace name comes from.
#[derive(Debug, Clone, Copy, Default)]
pub(super) enum NsName {
    /// A [`STATIC_NS`] code.
    Static(u8),
    Body(Span),
    #[default]
    Empty,
}

/// The top-level element being read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Open {
    pub(super) start: usize,
    pub(super) name_end: usize,
    /// `None`: element is dropped (PIDF-namespace or unqualified element that pidf.xsd forbids here).
    pub(super) kind: Option<ElementKind>,
    /// Raw (possibly escaped) value of its `id`, when non-empty and kept.
    pub(super) id: Option<Span>,
    pub(super) ns: NsName,
    pub(super) saw_status: bool,
    pub(super) in_status: bool,
    pub(super) basic_start: Option<usize>,
}

/// A kept top-level element, as byte ranges (turned into a [`PidfElement`] once the body is
/// known to be good).
#[derive(Debug, Clone, Copy)]
pub(super) struct Found {
    pub(super) kind: ElementKind,
    pub(super) start: u32,
    pub(super) end: u32,
    pub(super) name_end: u32,
    pub(super) id: Option<Span>,
    pub(super) ns: NsName,
    pub(super) uses: u128,
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
pub(super) struct Parser<'a> {
    /// The body (UTF-8, without forbidden controls), which every offset refers to.
    pub(super) b: &'a [u8],
    /// The body is plain ASCII.
    pub(super) ascii: bool,
    /// Declarations on `<presence>` (plus a "no default namespace" entry when it has none).
    pub(super) root_ns: Inline<NsDecl, 8>,
    /// Bit `i`: `root_ns[i]` binds the PIDF namespace (resp. the data model's).
    pub(super) pidf_ns: u128,
    pub(super) dm_ns: u128,
    /// Declarations in scope inside the current top-level element, innermost last.
    pub(super) local: Inline<LocalNs, 4>,
    /// Scratch: attributes of the start tag being read.
    pub(super) attrs: Inline<Attr, 8>,
    /// Some attribute of the start tag being read is prefixed.
    pub(super) prefixed: bool,
    /// Root bindings used so far by the current top-level element.
    pub(super) uses: u128,
    /// Value of the root's `entity` without surrounding white space (references unexpanded).
    pub(super) entity: Span,
    /// Where the root's default namespace entry is in `root_ns`, once the root is read.
    pub(super) default_root: Option<usize>,
    /// Some attribute value holds a reference (`&`): only then can the entity, an id or a
    /// namespace name need unescaping.
    pub(super) any_amp: bool,
    /// The top-level element being read.
    pub(super) top: Option<Open>,
    /// Kept top-level elements.
    pub(super) found: Inline<Found, 4>,
}

impl<'a> Parser<'a> {
    /// A parser for a body whose characters are good ([`check_chars`]: `ascii` is its answer).
    pub(super) fn new(b: &'a [u8], ascii: bool) -> Parser<'a> {
        Parser {
            b,
            ascii,
            root_ns: Inline::new(),
            pidf_ns: 0,
            dm_ns: 0,
            local: Inline::new(),
            attrs: Inline::new(),
            prefixed: false,
            uses: 0,
            entity: Span::default(),
            any_amp: false,
            default_root: None,
            top: None,
            found: Inline::new(),
        }
    }

    /// Reads the whole body (after a UTF-8 byte order mark, if any).
    pub(super) fn run_all(&mut self) -> Result<(), PidfError> {
        let (b, ascii) = (self.b, self.ascii);
        walk(b, encoding::bom_len(b), ascii, self)
    }

    /// The raw `entity` value without surrounding white space (as `str::trim` has it).
    pub(super) fn trimmed_entity(&self) -> Span {
        self.entity
    }

    /// A span without surrounding white space (Unicode's, as `str::trim` has it).
    pub(super) fn trim(&self, span: Span) -> Span {
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
    pub(super) fn str(&self, span: Span) -> &'a str {
        std::str::from_utf8(&self.b[span.range()]).unwrap_or_default()
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
    #[inline(always)]
    fn add_attribute(&mut self, a: Attr, at: usize, d: u32) -> Result<(), PidfError> {
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
    fn close_element(&mut self, d: u32, at: usize, after: usize) -> Result<(), PidfError> {
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
                    let value = unescape(self.str(Span::new(start, at))).unwrap_or_default();
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
            let v = unescape(self.str(uri)).ok_or(nwf(at, "invalid reference"))?;
            Cow::Owned(v.into_owned().into_bytes())
        } else {
            Cow::Borrowed(u)
        };
        let value = &*value;
        match check_declaration(p, value) {
            Ok(Declaration::Bind) => {}
            Ok(Declaration::Redundant) => return Ok(()),
            Err(reason) => return Err(nwf(at, reason)),
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
}

impl Handler for Parser<'_> {
    type Error = PidfError;

    #[inline(always)]
    fn open(&mut self, _name: TagName, _lt: usize, d: u32) -> Result<(), PidfError> {
        if d == 2 {
            self.uses = 0;
            self.local.clear();
        }
        self.attrs.clear();
        self.prefixed = false;
        Ok(())
    }

    #[inline(always)]
    fn attribute(&mut self, a: RawAttr, lt: usize, d: u32) -> Result<(), PidfError> {
        self.any_amp |= a.amp;
        self.prefixed |= a.colon.is_some();
        self.add_attribute(
            Attr {
                key: Span::new(a.key_start, a.key_end),
                value: Span::new(a.value_start, a.value_end),
                colon: a.colon.unwrap_or(0) as u32,
            },
            lt,
            d,
        )
    }

    /// The start tag of an element at depth `d` (root = 1) is read (its declarations are
    /// recorded on the root or the local stack): resolves its prefixes (recording in `uses` those
    /// that resolve to the root), then does what its depth asks (root, top-level child, tuple
    /// status).
    #[inline(always)]
    fn start(&mut self, tag: StartTag, d: u32) -> Result<(), PidfError> {
        let StartTag {
            name,
            lt,
            after,
            empty,
        } = tag;
        let b = self.b;
        let (prefix, local) = match name.colon {
            Some(c) => (&b[name.start..c], &b[c + 1..name.end]),
            None => (&b[..0], &b[name.start..name.end]),
        };
        let name = Span::new(name.start, name.end);
        let ns = self
            .resolve(prefix)
            .ok_or(nwf(lt, "undeclared namespace prefix"))?;
        if self.prefixed {
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
        Ok(())
    }

    #[inline(always)]
    fn close(&mut self, d: u32, at: usize, after: usize) -> Result<(), PidfError> {
        self.close_element(d, at, after)
    }
}

/// `tuple`, `dm:person` and `dm:device` ids are `xs:ID`: unique across the document.
pub(super) fn check_unique_ids(elements: &[PidfElement]) -> Result<(), PidfError> {
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
