//! The rules in force: every pres-rules document parsed once per change into a [`Rules`]
//! component on its document entity, each owner's rules merged, and the members of the external
//! lists (Shared XDMS resource-lists) the rules name, kept current as those lists change.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bevy_ecs::prelude::*;

use super::decide::ListMembership;
use super::rules::RuleSet;
use crate::keyed_hash::HashKeys;
use crate::sip::identity::identity_key;
use crate::xcap::dom::{Element, parse_document};
use crate::xcap::selector::{NodeSelector, select_all};
use crate::xdm::{DocumentChanges, DocumentIndex, XdmConfig, decode_selector};

/// The application usages whose documents hold presence rules (RFC 5025, OMA).
pub const AUIDS: [&str; 2] = ["pres-rules", "org.openmobilealliance.pres-rules"];
/// The resource-lists namespace (RFC 4826), the default namespace of list selectors.
const RL_NS: &str = "urn:ietf:params:xml:ns:resource-lists";

/// A pres-rules document in evaluated form.
#[derive(Component, Debug, Clone)]
pub struct Rules(pub Arc<RuleSet>);

/// One owner's rules: the rules of all their pres-rules documents, in one set.
#[derive(Debug, Default)]
struct OwnerRules {
    rules: Arc<RuleSet>,
    lists: Vec<Box<str>>,
}

/// An external list a rule names, and its members' identity keys.
#[derive(Debug, Default)]
struct ListMembers {
    /// The decoded document selector of the list's document.
    doc: Box<str>,
    members: HashSet<Vec<u8>>,
    /// Owners whose rules name it.
    owners: Vec<Box<[u8]>>,
}

/// Owners' rules and the lists they name, by identity key.
#[derive(Resource)]
pub struct RuleBook {
    owners: HashMap<Box<[u8]>, OwnerRules, HashKeys>,
    lists: HashMap<Box<str>, ListMembers, HashKeys>,
    /// List document selector -> the `anc`s that point into it.
    by_doc: HashMap<Box<str>, Vec<Box<str>>, HashKeys>,
    /// Owners (identity keys) whose watchers must be decided again this tick.
    pub changed: Vec<Box<[u8]>>,
    /// Owners with a `<sphere>` condition: while none has one, publications need no look.
    pub sphere_owners: usize,
}

impl RuleBook {
    /// Empty, keyed from the engine's `hash_seed`.
    pub fn new(hash_seed: u128) -> RuleBook {
        let k = |n: &[u8; 8]| HashKeys::derive(hash_seed, u64::from_be_bytes(*n));
        RuleBook {
            owners: HashMap::with_hasher(k(b"rulebook")),
            lists: HashMap::with_hasher(k(b"rulelist")),
            by_doc: HashMap::with_hasher(k(b"rulesdoc")),
            changed: Vec::new(),
            sphere_owners: 0,
        }
    }

    /// The rules of the owner whose identity key is `key` (an empty set when none).
    pub fn rules_of(&self, key: &[u8]) -> Option<&RuleSet> {
        self.owners.get(key).map(|o| &*o.rules)
    }
}

impl ListMembership for RuleBook {
    fn contains(&self, anc: &str, identity: &str) -> bool {
        let Some(list) = self.lists.get(anc) else {
            return false;
        };
        identity_key(identity).is_some_and(|k| list.members.contains(&k))
    }
}

/// After the document changes of the tick are applied: parse changed pres-rules documents,
/// re-read changed lists, and note whose watchers must be decided again.
pub fn follow_rules(world: &mut World) {
    let applied = std::mem::take(&mut world.resource_mut::<DocumentChanges>().applied);
    for change in &applied {
        let key: Box<str> = decode_selector(&change.selector).into();
        if AUIDS.contains(&change.auid.as_str()) {
            if let Some(owner) = change.xui.as_deref() {
                if let Some(e) = world.resource::<DocumentIndex>().by_key.get(&key).copied() {
                    let set = world
                        .get::<crate::xdm::Document>(e)
                        .and_then(|d| parse_document(&d.content).ok())
                        .map(|d| RuleSet::from_document(&d))
                        .unwrap_or_default();
                    world.entity_mut(e).insert(Rules(Arc::new(set)));
                }
                rebuild_owner(world, owner);
            }
            continue;
        }
        let ancs = world.resource::<RuleBook>().by_doc.get(&key).cloned();
        for anc in ancs.unwrap_or_default() {
            let members = read_list(world, &anc).map(|(_, m)| m).unwrap_or_default();
            let mut book = world.resource_mut::<RuleBook>();
            let book = &mut *book;
            if let Some(l) = book.lists.get_mut(&anc)
                && l.members != members
            {
                l.members = members;
                book.changed.extend(l.owners.iter().cloned());
            }
        }
    }
    world.resource_mut::<DocumentChanges>().applied = applied;
}

/// Merge the rules of `owner`'s pres-rules documents again, and follow the lists they name.
fn rebuild_owner(world: &mut World, owner: &str) {
    let Some(key) = identity_key(owner).map(Vec::into_boxed_slice) else {
        return;
    };
    let docs: Vec<Entity> = world
        .resource::<DocumentIndex>()
        .by_owner
        .get(&Some(owner.into()))
        .map(|v| v.to_vec())
        .unwrap_or_default()
        .into_iter()
        .filter(|&e| {
            world
                .get::<crate::xdm::Document>(e)
                .is_some_and(|d| AUIDS.contains(&&*d.auid))
        })
        .collect();
    let mut merged = RuleSet::default();
    for &d in &docs {
        if let Some(r) = world.get::<Rules>(d) {
            merged.rules.extend(r.0.rules.iter().cloned());
        }
    }
    let lists: Vec<Box<str>> = {
        let mut l: Vec<Box<str>> = merged.external_lists().map(Into::into).collect();
        l.sort();
        l.dedup();
        l
    };
    let old = world.resource_mut::<RuleBook>().owners.remove(&key);
    let had_sphere = old
        .as_ref()
        .is_some_and(|o| super::sphere::needs_sphere(&o.rules));
    let has_sphere = !docs.is_empty() && super::sphere::needs_sphere(&merged);
    {
        let mut book = world.resource_mut::<RuleBook>();
        book.sphere_owners = book.sphere_owners + has_sphere as usize - had_sphere as usize;
    }
    let old_lists = old.map(|o| o.lists).unwrap_or_default();
    // lists no longer named by this owner
    for anc in old_lists.iter().filter(|a| !lists.contains(a)) {
        let mut book = world.resource_mut::<RuleBook>();
        let drop = book.lists.get_mut(anc).is_some_and(|l| {
            l.owners.retain(|o| *o != key);
            l.owners.is_empty()
        });
        if drop
            && let Some(l) = book.lists.remove(anc)
            && let Some(v) = book.by_doc.get_mut(&l.doc)
        {
            v.retain(|a| a != anc);
            if v.is_empty() {
                book.by_doc.remove(&l.doc);
            }
        }
    }
    // lists newly named
    for anc in lists.iter().filter(|a| !old_lists.contains(a)) {
        let known = world.resource::<RuleBook>().lists.contains_key(anc);
        if !known {
            let Some((doc, members)) = read_list(world, anc) else {
                continue;
            };
            let mut book = world.resource_mut::<RuleBook>();
            book.by_doc
                .entry(doc.clone())
                .or_default()
                .push(anc.clone());
            book.lists.insert(
                anc.clone(),
                ListMembers {
                    doc,
                    members,
                    owners: Vec::new(),
                },
            );
        }
        if let Some(l) = world.resource_mut::<RuleBook>().lists.get_mut(anc) {
            l.owners.push(key.clone());
        }
    }
    let mut book = world.resource_mut::<RuleBook>();
    if !docs.is_empty() {
        book.owners.insert(
            key.clone(),
            OwnerRules {
                rules: Arc::new(merged),
                lists,
            },
        );
    }
    book.changed.push(key);
}

/// The document an `anc` points into (decoded selector) and the identity keys of the entries
/// of the list it selects, nested lists included. None when the URI is not under our XCAP root
/// or cannot be read; a list not stored (yet) has no members.
fn read_list(world: &World, anc: &str) -> Option<(Box<str>, HashSet<Vec<u8>>)> {
    let root = &world.resource::<XdmConfig>().xcap_root;
    let rel = crate::xdm::xcap_diff::relative(anc, root)?;
    let (doc, node) = match rel.split_once("/~~/") {
        Some((d, n)) => (d.to_owned(), Some(n.to_owned())),
        None => (rel.clone(), None),
    };
    let doc: Box<str> = doc.into();
    let mut members = HashSet::new();
    let stored = world
        .resource::<DocumentIndex>()
        .by_key
        .get(&doc)
        .and_then(|&e| world.get::<crate::xdm::Document>(e));
    if let Some(parsed) = stored.and_then(|d| parse_document(&d.content).ok()) {
        let root_el = &parsed.root;
        let selected: Vec<&Element> = match &node {
            None => vec![root_el],
            Some(n) => match NodeSelector::parse(n, &[], RL_NS) {
                Ok(sel) => select_all(root_el, &sel.steps)
                    .iter()
                    .filter_map(|p| root_el.at(p))
                    .collect(),
                Err(_) => Vec::new(),
            },
        };
        for el in selected {
            entries(el, &mut members);
        }
    }
    Some((doc, members))
}

/// Every `<entry uri>` at or below `el`.
fn entries(el: &Element, out: &mut HashSet<Vec<u8>>) {
    for (_, c) in el.child_elements() {
        if c.is(RL_NS, "entry") {
            out.extend(c.attr("uri").and_then(identity_key));
        } else if c.is(RL_NS, "list") {
            entries(c, out);
        }
    }
}
