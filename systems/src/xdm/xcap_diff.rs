//! The `xcap-diff` event package (RFC 5875): an XDM client subscribes to documents and
//! directories by selector and is told of every change with the previous and new entity tags
//! (RFC 5874), changes it made itself included. The first NOTIFY, and the one after a refresh,
//! report the full state (every selected document with its current tag).
//!
//! `diff-processing=xcap-patching` gets each changed document as an RFC 5261 root replacement
//! (the cheap patch: the new content, no tree diff); otherwise (`no-patching`, absent, or
//! `aggregate`) only the tags.

use std::collections::BTreeMap;

use bevy_ecs::prelude::*;

use crate::durable::codec::{Reader, Writer};
use crate::formats::xcap_diff::{self, CONTENT_TYPE, DocumentDiff};
use crate::router::Answer;
use crate::sip::uri::Uri;
use crate::sip::{HeaderLookup, Name, Request};
use crate::subscription::{Content, NotifyQueue, Subscription};

use super::{Document, DocumentChanges, DocumentIndex, XdmConfig, decode_selector};

/// The event package name.
pub const EVENT: &str = "xcap-diff";

/// What an xcap-diff subscription follows and what its subscriber was last told.
#[derive(Component, Debug)]
pub struct XcapDiffWatch {
    /// Decoded selectors; one ending in '/' selects a directory.
    pub selection: Vec<String>,
    /// Owners whose documents the selection may name (None: global).
    pub owners: Vec<Option<Box<str>>>,
    pub patching: bool,
    /// Decoded selector -> (selector as stored, entity tag) last reported.
    pub known: BTreeMap<Box<str>, (Box<str>, Box<str>)>,
}

impl XcapDiffWatch {
    fn selects(&self, key: &str) -> bool {
        self.selection.iter().any(|s| {
            if s.ends_with('/') {
                key.starts_with(s.as_str())
            } else {
                key == s
            }
        })
    }
}

/// Where a selector points: (auid, owner), or None when it is neither `auid/global/...` nor
/// `auid/users/<xui>/...`.
pub(crate) fn scope_of(sel: &str) -> Option<(&str, Option<&str>)> {
    let mut parts = sel.splitn(4, '/');
    let auid = parts.next()?;
    match parts.next()? {
        "global" => Some((auid, None)),
        "users" => Some((auid, Some(parts.next()?))),
        _ => None,
    }
}

/// A selection entry relative to the XCAP root: absolute URIs under our root are cut to the
/// part after it; leading slashes dropped.
pub(crate) fn relative(entry: &str, root: &str) -> Option<String> {
    let e = entry.trim();
    let rel = if let Some(r) = e.strip_prefix(root) {
        r
    } else if e.starts_with("http://") || e.starts_with("https://") {
        let path = e.splitn(4, '/').nth(3)?;
        path.split_once("xcap-root/").map(|(_, r)| r)?
    } else {
        e
    };
    Some(decode_selector(rel.trim_start_matches('/')))
}

/// Accept an xcap-diff subscription: a resource-lists body of selectors, each of the
/// subscriber's own tree or of the global tree.
pub fn on_subscribe(world: &mut World, req: &Request, sub: Entity) -> Result<(), Answer> {
    let ct = req
        .header(Name::ContentType)
        .map(crate::sip::fields::media_type);
    if ct.is_none_or(|t| !t.eq_ignore_ascii_case("application/resource-lists+xml")) {
        return Err(Answer::new(415, "Unsupported Media Type")
            .with("Accept", "application/resource-lists+xml"));
    }
    let entries = xcap_diff::selectors(&req.body)
        .map_err(|e| Answer::new(400, format!("Bad Request ({e})")))?;
    let root = world.resource::<XdmConfig>().xcap_root.clone();
    // the requester: a trusted peer's asserted identity, else From
    let trusted = &world.resource::<crate::EngineConfig>().trusted_peers;
    let watcher = Uri::parse(crate::sip::identity::requester(req, trusted)).ok();
    let mut selection = Vec::new();
    let mut owners: Vec<Option<Box<str>>> = Vec::new();
    for e in &entries {
        let Some(sel) = relative(e, &root) else {
            return Err(Answer::new(400, "Selector outside the XCAP root"));
        };
        let Some((_, owner)) = scope_of(&sel) else {
            return Err(Answer::new(400, "Malformed document selector"));
        };
        if let Some(xui) = owner {
            // a user follows only their own documents (OMA XDM: the Aggregation Proxy's rule)
            let mine = watcher
                .as_ref()
                .zip(Uri::parse(xui).ok())
                .is_some_and(|(w, x)| w.aor() == x.aor());
            if !mine {
                return Err(Answer::new(403, "Forbidden: another user's documents"));
            }
        }
        let owner: Option<Box<str>> = owner.map(Into::into);
        if !owners.contains(&owner) {
            owners.push(owner);
        }
        selection.push(sel);
    }
    let patching = req
        .header(Name::Event)
        .and_then(|v| crate::sip::fields::param(v, "diff-processing"))
        .is_some_and(|v| v.eq_ignore_ascii_case("xcap-patching"));
    world.entity_mut(sub).insert(XcapDiffWatch {
        selection,
        owners,
        patching,
        known: BTreeMap::new(),
    });
    // the body is built for this subscriber before each NOTIFY: its own content
    world.entity_mut(sub).insert(Content {
        content_type: CONTENT_TYPE.into(),
        body: Default::default(),
    });
    Ok(())
}

/// Version of an xcap-diff subscription's part of its record.
const RECORD_VERSION: u8 = 1;

/// An xcap-diff subscription's part of its record ([`crate::subscription::durable`]): the
/// processing mode and the selection.
pub fn save(world: &World, sub: Entity) -> Option<Vec<u8>> {
    let w = world.get::<XcapDiffWatch>(sub)?;
    let len = w.selection.iter().map(|s| s.len() + 4).sum::<usize>() + 8;
    let mut record = Writer::new(RECORD_VERSION, len)
        .u32(w.patching.into())
        .u32(w.selection.len() as u32);
    for sel in &w.selection {
        record = record.bytes(sel.as_bytes());
    }
    Some(record.done())
}

/// Follow the selection again: the next NOTIFY reports the full state (nothing is known to
/// have been told).
pub fn restore(
    world: &mut World,
    sub: Entity,
    part: &[u8],
    _: &crate::subscription::durable::Restoring,
) -> Option<()> {
    let mut rd = Reader::new(part, RECORD_VERSION)?;
    let patching = rd.u32()? != 0;
    let n = rd.u32()?;
    let mut selection = Vec::new();
    let mut owners: Vec<Option<Box<str>>> = Vec::new();
    for _ in 0..n {
        let sel = rd.str()?;
        let owner: Option<Box<str>> = scope_of(sel)?.1.map(Into::into);
        if !owners.contains(&owner) {
            owners.push(owner);
        }
        selection.push(sel.to_owned());
    }
    world.entity_mut(sub).insert((
        XcapDiffWatch {
            selection,
            owners,
            patching,
            known: BTreeMap::new(),
        },
        Content {
            content_type: CONTENT_TYPE.into(),
            body: Default::default(),
        },
    ));
    Some(())
}

/// A refresh reports the full state again.
pub fn on_refresh(world: &mut World, sub: Entity) {
    if let Some(mut w) = world.get_mut::<XcapDiffWatch>(sub) {
        w.known.clear();
    }
}

/// Mark the subscriptions that follow a document changed this tick.
pub fn follow_changes(
    changes: Res<DocumentChanges>,
    mut subs: Query<(Entity, &XcapDiffWatch, &mut Subscription)>,
    mut queue: ResMut<NotifyQueue>,
) {
    if changes.applied.is_empty() {
        return;
    }
    let keys: Vec<String> = changes
        .applied
        .iter()
        .map(|c| decode_selector(&c.selector))
        .collect();
    for (e, w, mut s) in subs.iter_mut() {
        if keys.iter().any(|k| w.selects(k)) {
            queue.touch(e, &mut s);
        }
    }
}

/// For every xcap-diff subscription about to be notified, the difference between what its
/// subscriber knows and the documents now (changes since the last NOTIFY coalesce into one
/// entry per document).
pub fn build_content(
    queue: Res<NotifyQueue>,
    index: Res<DocumentIndex>,
    docs: Query<&Document>,
    config: Res<XdmConfig>,
    mut subs: Query<(&mut XcapDiffWatch, &Subscription, &mut Content)>,
) {
    let mut built = bevy_ecs::entity::EntityHashSet::default();
    for &e in &queue.0 {
        let Ok((mut w, s, mut content)) = subs.get_mut(e) else {
            continue;
        };
        // the queue may name a subscription twice; its diff is taken once per NOTIFY
        if !s.flow.ready() || !built.insert(e) {
            continue;
        }
        let mut now: BTreeMap<Box<str>, &Document> = BTreeMap::new();
        for owner in &w.owners {
            for d in index
                .by_owner
                .get(owner)
                .into_iter()
                .flatten()
                .filter_map(|&d| docs.get(d).ok())
            {
                if w.selects(&d.key) {
                    now.insert(d.key.clone(), d);
                }
            }
        }
        let mut diffs = Vec::new();
        for (key, d) in &now {
            let known = w.known.get(key).map(|(_, t)| t.as_ref());
            if known != Some(d.etag.as_ref()) {
                diffs.push(DocumentDiff {
                    sel: d.selector.to_string(),
                    previous_etag: known.map(str::to_owned),
                    new_etag: Some(d.etag.to_string()),
                    replacement: (w.patching && known.is_some()).then(|| d.content.clone()),
                });
            }
        }
        for (key, (sel, tag)) in &w.known {
            if !now.contains_key(key) {
                diffs.push(DocumentDiff {
                    sel: sel.to_string(),
                    previous_etag: Some(tag.to_string()),
                    new_etag: None,
                    replacement: None,
                });
            }
        }
        diffs.sort_by(|a, b| a.sel.cmp(&b.sel));
        w.known = now
            .iter()
            .map(|(k, d)| (k.clone(), (d.selector.clone(), d.etag.clone())))
            .collect();
        *content = Content {
            content_type: CONTENT_TYPE.into(),
            body: xcap_diff::write(&config.xcap_root, &diffs),
        };
    }
}
