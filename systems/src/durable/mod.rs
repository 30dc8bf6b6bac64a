//! Durable state: what a tick changed, as keyed records the shell writes to its journal before
//! it lets the tick's responses go (`storage.durability`), and the state rebuilt from those
//! records at start ([`crate::Engine::restore`]). The engine never touches the disk: records
//! come out as [`Change`]s after each tick and come back in as `(key, value)` pairs.
//!
//! A key is a kind (top byte) and an id the engine hands out ([`DurableLog::new_id`]); ids are
//! not entity ids, which mean nothing to the next process. Expiry times are kept as wall-clock
//! instants (Unix milliseconds), so that time that passed while the server was down counts.

pub mod codec;

use bevy_ecs::prelude::*;

/// One change of durable state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Put(u64, Vec<u8>),
    Delete(u64),
}

/// Record kinds (the top byte of a key).
pub mod kind {
    /// A publication's presentity and document (written when its document changes).
    pub const PUBLICATION: u8 = 1;
    /// A publication's entity tag and expiry (written at every refresh).
    pub const PUBLICATION_TAG: u8 = 2;
    /// A subscription with its dialog (written when it is created, refreshed or changes
    /// state; see [`crate::subscription::durable`]).
    pub const SUBSCRIPTION: u8 = 3;
}

const ID_BITS: u32 = 56;

/// The key of record `kind` of the state with `id`.
pub fn key(kind: u8, id: u64) -> u64 {
    (kind as u64) << ID_BITS | (id & ((1 << ID_BITS) - 1))
}

/// The kind and id of `key`.
pub fn split_key(key: u64) -> (u8, u64) {
    ((key >> ID_BITS) as u8, key & ((1 << ID_BITS) - 1))
}

/// This tick's changes, and the ids handed out so far. Absent from an engine without
/// durability: then nothing is recorded at all.
#[derive(Resource, Debug, Default)]
pub struct DurableLog {
    changes: Vec<Change>,
    last_id: u64,
}

impl DurableLog {
    /// A fresh id (never 0, which stands for "not durable").
    pub fn new_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// Ids below `id` are taken (by restored state).
    pub fn reserve(&mut self, id: u64) {
        self.last_id = self.last_id.max(id);
    }

    pub fn put(&mut self, key: u64, value: Vec<u8>) {
        self.changes.push(Change::Put(key, value));
    }

    pub fn delete(&mut self, key: u64) {
        self.changes.push(Change::Delete(key));
    }

    /// Hand this tick's changes to the caller (the buffer keeps its capacity when `into` was
    /// emptied by it).
    pub fn drain_into(&mut self, into: &mut Vec<Change>) {
        into.append(&mut self.changes);
    }
}

/// What [`crate::Engine::restore`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restored {
    pub publications: usize,
    /// Publications that expired while the server was down (deleted now).
    pub expired: usize,
    /// Subscriptions restored live.
    pub subscriptions: usize,
    /// Subscriptions that expired (or were ending) while the server was down: deleted now,
    /// each sent its `terminated` NOTIFY.
    pub subscriptions_expired: usize,
    /// Records that did not decode (skipped, deleted).
    pub unreadable: usize,
}

/// Durability settings.
#[derive(Resource, Debug, Clone, Copy)]
pub struct DurableConfig {
    /// Restored subscriptions sent their NOTIFY of current state per release: a million
    /// restored watchers must not all be notified in the first tick.
    pub restore_notify_batch: u32,
    /// Milliseconds between two releases.
    pub restore_notify_every_ms: u64,
}

impl Default for DurableConfig {
    fn default() -> Self {
        DurableConfig {
            restore_notify_batch: 2_000,
            restore_notify_every_ms: 10,
        }
    }
}

/// Add durability to an engine with the default settings: its features record their changes
/// from now on.
pub fn feature() -> impl FnOnce(&mut World, &mut Schedule) {
    feature_with(DurableConfig::default())
}

/// Add durability to an engine with `config`.
pub fn feature_with(config: DurableConfig) -> impl FnOnce(&mut World, &mut Schedule) {
    move |world, _| {
        world.insert_resource(config);
        world.init_resource::<DurableLog>();
        world.init_resource::<crate::subscription::durable::RecordQueue>();
    }
}
