//! A service's members: its `<list>` (or the list its `<resource-list>` names) flattened
//! (RFC 4826 §4.3): nested `<list>`s, `<entry-ref>`s (an entry elsewhere in the XDMS, by a
//! reference relative to the XCAP root, §3.2.2) and `<external>`s (a list by absolute URI,
//! §3.2.3, also in another user's documents when that user's rules allow the list's owner)
//! are followed; a URI listed twice is watched once; a reference back into a list being
//! expanded is a loop and is not followed again; past the member limit members are kept
//! aside, to be reported.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use bevy_ecs::prelude::*;

use super::services::Service;
use crate::sip::identity::identity_key;
use crate::xcap::dom::{Document, Element, parse_document};
use crate::xcap::selector::{NodeSelector, select_all};
use crate::xcap::usages::resource_lists::RL_NS;
use crate::xcap::usages::rls_services::RLS_NS;
use crate::xdm::xcap_diff::{relative, scope_of};
use crate::xdm::{DocumentIndex, XdmConfig};

/// One member of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub uri: Arc<str>,
    /// Its `<display-name>` where the list names it.
    pub name: Option<Arc<str>>,
}

/// A service resolved into its members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The service URI as written.
    pub uri: Box<str>,
    /// The list's `<display-name>`.
    pub name: Option<Box<str>>,
    /// The members watched, in list order.
    pub members: Vec<Member>,
    /// Members past the limit, in list order: listed, not watched.
    pub over: Vec<Member>,
    /// The documents read (decoded selectors), the service's own first: a change to any of
    /// them resolves the service again. Documents referred to but not stored count too.
    pub docs: Vec<Box<str>>,
    /// References not followed: loops, nesting past the limit, lists outside our XCAP root or
    /// in documents the owner may not use.
    pub skipped: u32,
    /// The service offers the `presence` package (`<packages>` absent or naming it).
    pub presence: bool,
}

/// Limits of a resolution.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_members: usize,
    pub max_depth: usize,
}

/// Resolve `service` from the documents stored now; None when its document no longer
/// defines it.
pub fn resolve(world: &World, service: &Service, limits: Limits) -> Option<Resolved> {
    let mut r = Resolver {
        world,
        root: &world.resource::<XdmConfig>().xcap_root,
        owner: &service.owner,
        limits,
        cache: HashMap::new(),
        stack: Vec::new(),
        seen: HashSet::new(),
        out: Resolved {
            uri: service.uri.clone(),
            ..Default::default()
        },
    };
    let doc = r.load(&service.doc)?;
    let key = identity_key(&service.uri);
    let svc = doc.root.child_elements().map(|(_, e)| e).find(|s| {
        s.is(RLS_NS, "service") && s.attr("uri").and_then(identity_key).is_some() && {
            s.attr("uri").and_then(identity_key) == key
        }
    })?;
    r.out.presence = true;
    for (_, c) in svc.child_elements() {
        if c.is(RLS_NS, "list") {
            r.out.name = display_name(c);
            r.list(c, 1);
        } else if c.is(RLS_NS, "resource-list") {
            let target = c.text();
            r.reference(target.trim(), 1, true);
        } else if c.is(RLS_NS, "packages") {
            r.out.presence = c.child_elements().any(|(_, p)| {
                p.is(RLS_NS, "package") && p.text().trim().eq_ignore_ascii_case("presence")
            });
        }
    }
    Some(r.out)
}

struct Resolver<'w> {
    world: &'w World,
    root: &'w str,
    owner: &'w str,
    limits: Limits,
    /// Documents parsed so far (None: not stored or not well-formed).
    cache: HashMap<Box<str>, Option<Rc<Document>>>,
    /// References being expanded, outermost first (the loop guard).
    stack: Vec<String>,
    /// Identity keys (or URIs, for URIs with none) listed so far.
    seen: HashSet<Vec<u8>>,
    out: Resolved,
}

impl Resolver<'_> {
    /// Parse a stored document once per resolution, noting that the service depends on it.
    fn load(&mut self, doc: &str) -> Option<Rc<Document>> {
        if !self.out.docs.iter().any(|d| &**d == doc) {
            self.out.docs.push(doc.into());
        }
        if let Some(d) = self.cache.get(doc) {
            return d.clone();
        }
        let parsed = self
            .world
            .resource::<DocumentIndex>()
            .by_key
            .get(doc)
            .and_then(|&e| self.world.get::<crate::xdm::Document>(e))
            .and_then(|d| parse_document(&d.content).ok())
            .map(Rc::new);
        self.cache.insert(doc.into(), parsed.clone());
        parsed
    }

    /// The children of a `<list>`.
    fn list(&mut self, list: &Element, depth: usize) {
        for (_, c) in list.child_elements() {
            if c.is(RL_NS, "entry") {
                if let Some(uri) = c.attr("uri") {
                    self.add(uri, display_name(c));
                }
            } else if c.is(RL_NS, "entry-ref") {
                if let Some(r) = c.attr("ref") {
                    self.entry_ref(r, display_name(c), depth);
                }
            } else if c.is(RL_NS, "external") {
                if let Some(a) = c.attr("anchor") {
                    self.reference(a, depth, false);
                }
            } else if c.is(RL_NS, "list") {
                if depth >= self.limits.max_depth {
                    self.out.skipped += 1;
                } else {
                    self.list(c, depth + 1);
                }
            }
        }
    }

    /// A member, once, in order; past the limit kept aside.
    fn add(&mut self, uri: &str, name: Option<Box<str>>) {
        let key = identity_key(uri).unwrap_or_else(|| uri.as_bytes().to_vec());
        if !self.seen.insert(key) {
            return;
        }
        let m = Member {
            uri: uri.into(),
            name: name.map(Arc::from),
        };
        if self.out.members.len() < self.limits.max_members {
            self.out.members.push(m);
        } else {
            self.out.over.push(m);
        }
    }

    /// The document and node a reference selects, when the owner may follow it: `uri` is
    /// absolute (`external`, `resource-list`) or relative to the XCAP root (`entry-ref`).
    fn target(&mut self, uri: &str, absolute: bool) -> Option<(Rc<Document>, Vec<Vec<usize>>)> {
        let rel = if absolute {
            relative(uri, self.root)?
        } else {
            crate::xdm::decode_selector(uri.trim().trim_start_matches('/'))
        };
        let (doc, node) = match rel.split_once("/~~/") {
            Some((d, n)) => (d.to_owned(), Some(n.to_owned())),
            None => (rel.clone(), None),
        };
        let (_, xui) = scope_of(&doc)?;
        // depended on even when not readable: its owner's rules may allow it later
        if !self.out.docs.iter().any(|d| **d == *doc) {
            self.out.docs.push(doc.as_str().into());
        }
        if let Some(xui) = xui
            && identity_key(xui) != identity_key(self.owner)
            && !crate::privacy::allows(self.world, xui, self.owner)
        {
            return None;
        }
        let parsed = self.load(&doc)?;
        let paths = match node {
            None => vec![Vec::new()],
            Some(n) => {
                let sel = NodeSelector::parse(&n, &[], RL_NS).ok()?;
                select_all(&parsed.root, &sel.steps)
            }
        };
        Some((parsed, paths))
    }

    /// An `<external>` list or a service's `<resource-list>`: its members, unless it is
    /// already being expanded (a loop) or nested too deep.
    fn reference(&mut self, uri: &str, depth: usize, service_list: bool) {
        let key = relative(uri, self.root).unwrap_or_else(|| uri.to_owned());
        if depth >= self.limits.max_depth || self.stack.contains(&key) {
            self.out.skipped += 1;
            return;
        }
        let Some((doc, paths)) = self.target(uri, true) else {
            self.out.skipped += 1;
            return;
        };
        self.stack.push(key);
        for p in paths {
            let Some(el) = doc.root.at(&p) else { continue };
            if el.is(RL_NS, "list") || el.is(RLS_NS, "list") {
                if service_list && self.out.name.is_none() {
                    self.out.name = display_name(el);
                }
                self.list(el, depth + 1);
            } else if el.is(RL_NS, "resource-lists") {
                for (_, l) in el.child_elements().filter(|(_, l)| l.is(RL_NS, "list")) {
                    self.list(l, depth + 1);
                }
            }
        }
        self.stack.pop();
    }

    /// An `<entry-ref>`: the entry it selects, named by the reference's own display name when
    /// it has one.
    fn entry_ref(&mut self, r: &str, name: Option<Box<str>>, depth: usize) {
        if depth >= self.limits.max_depth {
            self.out.skipped += 1;
            return;
        }
        let Some((doc, paths)) = self.target(r, false) else {
            self.out.skipped += 1;
            return;
        };
        for p in paths {
            if let Some(el) = doc.root.at(&p)
                && el.is(RL_NS, "entry")
                && let Some(uri) = el.attr("uri")
            {
                self.add(uri, name.clone().or_else(|| display_name(el)));
            }
        }
    }
}

/// The `<display-name>` child of a list element.
fn display_name(el: &Element) -> Option<Box<str>> {
    el.child_elements()
        .map(|(_, c)| c)
        .find(|c| c.is(RL_NS, "display-name"))
        .map(|c| c.text().trim().to_owned())
        .filter(|n| !n.is_empty())
        .map(String::into_boxed_str)
}
