//! Composition: the view of a presentity from its sources' verbatim elements, each copied with
//! the namespace declarations it needs under the composed root.

use bytes::Bytes;

use super::model::*;

/// Position group in the composed document: pidf.xsd orders `tuple*, note*, ##other*`.
pub(super) fn group(kind: ElementKind) -> u8 {
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
pub(super) fn push_decl(out: &mut Vec<u8>, prefix: &[u8], uri: &[u8]) {
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
pub(super) fn escaped_len(entity: &[&str]) -> (usize, bool) {
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
pub(super) fn decl_len(prefix: &[u8], uri: &[u8]) -> usize {
    6 + if prefix.is_empty() {
        0
    } else {
        1 + prefix.len()
    } + 3
        + uri.len()
}

/// ` entity="..."` with the value (the pieces of `entity`, one after the other) escaped for a
/// double-quoted attribute; `plain`: nothing in it needs escaping (see [`escaped_len`]).
pub(super) fn push_entity(out: &mut Vec<u8>, entity: &[&str], plain: bool) {
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
