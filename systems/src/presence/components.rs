//! Presence entities and the indexes that find them in O(1).

use std::collections::HashMap;

use bevy_ecs::entity::{Entities, EntityIndex};
use bevy_ecs::prelude::*;

use crate::formats::pidf::PidfDocument;
pub use crate::subscription::SourceUri;
use crate::time::Time;

/// A presentity: the resource whose presence is published and watched. Its URI
/// (`sip:user@host`, the document `entity`) is its [`SourceUri`]; its composed view, while
/// anybody publishes, is its [`crate::subscription::Content`] (one body shared by every NOTIFY).
/// A presentity nobody publishes keeps no view: NOTIFYs build the empty one from the URI.
#[derive(Component, Debug)]
pub struct Presentity {
    /// Live publications, oldest change first.
    pub publications: Vec<Entity>,
    /// Subscriptions watching it.
    pub watchers: Watchers,
}

/// The subscriptions watching a presentity, by entity index (4 bytes each instead of 8: a
/// subscription leaves the list when it ends, so the entity now at an index is the watcher).
#[derive(Debug, Default)]
pub struct Watchers(Vec<u32>);

impl Watchers {
    pub fn push(&mut self, sub: Entity) {
        self.0.push(sub.index_u32());
    }

    pub fn remove(&mut self, sub: Entity) {
        let i = sub.index_u32();
        self.0.retain(|&w| w != i);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes of the list's buffer.
    pub fn bytes(&self) -> usize {
        self.0.capacity() * 4
    }

    /// The watching subscriptions.
    pub fn iter<'a>(&'a self, entities: &'a Entities) -> impl Iterator<Item = Entity> + 'a {
        self.0
            .iter()
            .filter_map(|&i| EntityIndex::from_raw_u32(i).map(|i| entities.resolve_from_index(i)))
    }
}

/// The index key of a presentity (`user@host`) from its URI (`sip:user@host`).
pub fn aor_of(uri: &SourceUri) -> &str {
    uri.0.strip_prefix("sip:").unwrap_or(&uri.0)
}

/// Marker: the presentity's sources changed this tick; recompose.
#[derive(Component, Debug)]
#[component(storage = "SparseSet")]
pub struct Recompose;

/// One publication (RFC 3903 event state), identified by its entity tag.
#[derive(Component, Debug)]
pub struct Publication {
    pub presentity: Entity,
    pub etag: Box<str>,
    pub expires_at: Time,
    pub doc: PidfDocument,
    /// Order of last modification: newer sources win for elements with the same id.
    pub seq: u64,
}

/// Index resources kept in step by the systems that spawn and despawn.
#[derive(Resource, Default)]
pub struct PresenceIndex {
    pub presentities: HashMap<Box<str>, Entity>,
    pub etags: HashMap<Box<str>, Entity>,
}
