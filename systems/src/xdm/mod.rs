//! The engine's view of the XDM documents (OMA XDM, RFC 4825): the store is the source of truth
//! and reports every committed change, in commit order, through [`crate::Engine::submit_documents`];
//! the engine keeps each document as an entity so that the packages that follow documents (the
//! `xcap-diff` event package here; pres-rules and rls-services readers later) see them the next
//! tick.

pub mod xcap_diff;

use std::collections::HashMap;

use bevy_ecs::prelude::*;
use bytes::Bytes;

use crate::keyed_hash::HashKeys;
use crate::pipeline::Pipeline;
use crate::subscription::{self, PackageSpec};

/// One committed change of an XDM document (or, at start-up, one existing document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentChange {
    pub auid: String,
    /// The owner (`sip:alice@example.com`), None for the global tree.
    pub xui: Option<String>,
    /// Path below the scope (`index`).
    pub doc_path: String,
    /// The document selector below the XCAP root, as the store writes it.
    pub selector: String,
    pub previous_etag: Option<String>,
    /// None: the document was deleted.
    pub new_etag: Option<String>,
    /// The new content (None when deleted).
    pub content: Option<Bytes>,
}

/// A stored document as the engine knows it.
#[derive(Component, Debug, Clone)]
pub struct Document {
    pub selector: Box<str>,
    /// Decoded selector, for matching subscriptions' selections.
    pub key: Box<str>,
    pub auid: Box<str>,
    pub xui: Option<Box<str>>,
    pub etag: Box<str>,
    pub content: Bytes,
}

/// Documents by decoded selector, and by owner. The keys are clients' names, so the tables
/// hash them with keys derived from the engine's `hash_seed`.
#[derive(Resource)]
pub struct DocumentIndex {
    pub by_key: HashMap<Box<str>, Entity, HashKeys>,
    /// Owner XUI (None: global) -> documents.
    pub by_owner: HashMap<Option<Box<str>>, Vec<Entity>, HashKeys>,
}

impl DocumentIndex {
    /// Empty, with the tables' keys derived from `hash_seed`.
    pub fn new(hash_seed: u128) -> DocumentIndex {
        DocumentIndex {
            by_key: HashMap::with_hasher(HashKeys::derive(
                hash_seed,
                u64::from_be_bytes(*b"xdm-keys"),
            )),
            by_owner: HashMap::with_hasher(HashKeys::derive(
                hash_seed,
                u64::from_be_bytes(*b"xdm-ownr"),
            )),
        }
    }
}

/// Changes handed in, and those applied this tick (for the packages).
#[derive(Resource, Default)]
pub struct DocumentChanges {
    pub incoming: Vec<DocumentChange>,
    pub applied: Vec<DocumentChange>,
}

/// XDM settings the engine needs.
#[derive(Resource, Debug, Clone)]
pub struct XdmConfig {
    /// The XCAP root URI reported in xcap-diff documents (`http://host:port/xcap-root`).
    pub xcap_root: String,
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub max_per_watcher: usize,
}

impl Default for XdmConfig {
    fn default() -> Self {
        XdmConfig {
            xcap_root: "http://127.0.0.1:8080/xcap-root".into(),
            min_expires: 60,
            max_expires: 7200,
            default_expires: 3600,
            max_per_watcher: 100,
        }
    }
}

/// Percent-decode a selector for comparison (one with an invalid escape is kept as written).
pub fn decode_selector(s: &str) -> String {
    crate::percent::decode(s).map_or_else(|_| s.to_owned(), |d| d.into_owned())
}

/// Apply the changes handed in since the last tick, in order.
pub fn apply_document_changes(world: &mut World) {
    let incoming = {
        let mut ch = world.resource_mut::<DocumentChanges>();
        ch.applied.clear();
        std::mem::take(&mut ch.incoming)
    };
    for change in incoming {
        let key: Box<str> = decode_selector(&change.selector).into();
        let owner: Option<Box<str>> = change.xui.as_deref().map(Into::into);
        let existing = world.resource::<DocumentIndex>().by_key.get(&key).copied();
        match (&change.new_etag, existing) {
            (Some(etag), Some(e)) => {
                if let Some(mut d) = world.get_mut::<Document>(e) {
                    d.etag = etag.as_str().into();
                    d.content = change.content.clone().unwrap_or_default();
                }
            }
            (Some(etag), None) => {
                let e = world
                    .spawn(Document {
                        selector: change.selector.as_str().into(),
                        key: key.clone(),
                        auid: change.auid.as_str().into(),
                        xui: owner.clone(),
                        etag: etag.as_str().into(),
                        content: change.content.clone().unwrap_or_default(),
                    })
                    .id();
                let mut idx = world.resource_mut::<DocumentIndex>();
                idx.by_key.insert(key, e);
                idx.by_owner.entry(owner).or_default().push(e);
            }
            (None, Some(e)) => {
                world.despawn(e);
                let mut idx = world.resource_mut::<DocumentIndex>();
                idx.by_key.remove(&key);
                if let Some(v) = idx.by_owner.get_mut(&owner) {
                    v.retain(|&x| x != e);
                }
            }
            (None, None) => {}
        }
        world.resource_mut::<DocumentChanges>().applied.push(change);
    }
}

/// Add the XDM document view and the xcap-diff event package to an engine.
pub fn feature(config: XdmConfig) -> impl FnOnce(&mut World, &mut Schedule) {
    move |world, schedule| {
        subscription::install(world, schedule);
        subscription::register_package(
            world,
            PackageSpec {
                event: xcap_diff::EVENT,
                label: xcap_diff::EVENT,
                content_types: &[crate::formats::xcap_diff::CONTENT_TYPE],
                min_expires: config.min_expires,
                max_expires: config.max_expires,
                default_expires: config.default_expires,
                max_per_watcher: config.max_per_watcher,
                empty_body: None,
                on_subscribe: xcap_diff::on_subscribe,
                on_refresh: xcap_diff::on_refresh,
                on_end: |_, _| {},
                claims: None,
                require: None,
                durable: Some(subscription::durable::DurableHooks {
                    save: xcap_diff::save,
                    restore: xcap_diff::restore,
                }),
            },
        );
        world.insert_resource(config);
        world
            .resource_mut::<crate::router::Capabilities>()
            .add_accept("application/resource-lists+xml");
        let hash_seed = world.resource::<crate::EngineConfig>().hash_seed;
        world.insert_resource(DocumentIndex::new(hash_seed));
        world.init_resource::<DocumentChanges>();
        schedule.add_systems(
            apply_document_changes
                .in_set(Pipeline::Ingest)
                .after(crate::router::ingest),
        );
        schedule.add_systems(xcap_diff::follow_changes.in_set(Pipeline::Lists));
        schedule.add_systems(
            xcap_diff::build_content
                .in_set(Pipeline::NotifyEncode)
                .after(subscription::notify::notify_outcomes)
                .before(subscription::notify::send_notifies),
        );
    }
}
