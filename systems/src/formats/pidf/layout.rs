//! Where a parsed document's texts go: in place in the body, compacted into a buffer of their
//! own, or laid out behind the view that composing the document alone gives.

use std::borrow::Cow;

use bytes::Bytes;

use super::compose::{decl_len, escaped_len, group, push_decl, push_entity};
use super::model::*;
use super::parse::{Found, NsName, Parser, PidfError, check_unique_ids};
use crate::inline::Inline;
use crate::xml::scan::unescaped;

impl<'a> Parser<'a> {
    /// The layout of a document that is the body itself (`None` when an unescaped text is
    /// needed that the body does not hold).
    pub(super) fn in_place(&self) -> Option<Layout> {
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
    pub(super) fn compact(&self) -> (Vec<u8>, Layout) {
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
    pub(super) fn view_layout(&self, entity: &[&str]) -> (Vec<u8>, Layout, usize) {
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

    /// The document over `owner`, laid out as `layout` says.
    pub(super) fn finish(&self, owner: &Bytes, layout: Layout) -> Result<PidfDocument, PidfError> {
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
pub(super) struct Layout {
    /// The entity, trimmed and unescaped.
    entity: Span,
    namespaces: Box<[NsDecl]>,
    elements: Inline<Placed, 4>,
}

/// Where a kept element is: its slice of the buffer, and its texts within that slice.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Placed {
    slice: Span,
    raw: Span,
    id: Span,
    ns: NsRef,
}
