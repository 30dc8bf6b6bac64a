//! Presence entities and the indexes that find them in O(1).

use std::collections::HashMap;

use bevy_ecs::prelude::*;
use bytes::Bytes;

use crate::formats::pidf::PidfDocument;
use crate::time::Time;

/// A presentity: the resource whose presence is published and watched.
#[derive(Component, Debug)]
pub struct Presentity {
    /// `user@host`, the index key.
    pub aor: Box<str>,
    /// The URI used as the document `entity` and in NOTIFY From (`sip:user@host`).
    pub uri: Box<str>,
    /// Live publications, oldest change first.
    pub publications: Vec<Entity>,
    /// Subscriptions watching it.
    pub watchers: Vec<Entity>,
}

/// The composed view of a presentity: one encoded body shared by every NOTIFY that carries it.
#[derive(Component, Debug, Clone)]
pub struct View {
    pub body: Bytes,
    pub version: u64,
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
