//! Presence entities and the indexes that find them in O(1).

use std::collections::HashMap;

use bevy_ecs::prelude::*;
use bytes::Bytes;

use crate::formats::pidf::PidfDocument;
use crate::time::Time;

use super::dialog::Dialog;

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

/// Where a subscription is in its life (RFC 6665 §4.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubState {
    Active,
    /// Ending: the final NOTIFY carries `terminated` with this reason (None: no reason).
    Terminating(Option<&'static str>),
}

/// A subscription to one presentity's presence.
#[derive(Component, Debug)]
pub struct Subscription {
    pub presentity: Entity,
    pub watcher_aor: Box<str>,
    /// `Event: presence;id=...` (RFC 6665 §8.2.1).
    pub event_id: Option<Box<str>>,
    pub expires_at: Time,
    pub state: SubState,
    pub flow: NotifyFlow,
}

/// RFC 6665 §4.2.2: NOTIFYs in a dialog are serialized; changes while one is in flight
/// coalesce into the next.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotifyFlow {
    /// A NOTIFY waits for its final response.
    pub in_flight: bool,
    /// There is newer state to send.
    pub dirty: bool,
    /// The view version last sent.
    pub sent_version: u64,
    /// The final (`terminated`) NOTIFY has gone out.
    pub final_sent: bool,
}

/// A subscription entity: its dialog and what it watches.
#[derive(Bundle)]
pub struct SubscriptionBundle {
    pub dialog: Dialog,
    pub subscription: Subscription,
}

/// Index resources kept in step by the systems that spawn and despawn.
#[derive(Resource, Default)]
pub struct PresenceIndex {
    pub presentities: HashMap<Box<str>, Entity>,
    pub etags: HashMap<Box<str>, Entity>,
    /// `Call-ID` + our tag -> subscription.
    pub dialogs: HashMap<(Box<str>, Box<str>), Entity>,
    /// Subscriptions per watcher AoR (limit).
    pub per_watcher: HashMap<Box<str>, usize>,
}

/// Generators of entity tags, dialog tags and publication order (seeded, no clock).
#[derive(Resource, Default)]
pub struct Ids {
    next: u64,
}

impl Ids {
    /// A fresh token unique in this run (the seed keeps runs apart).
    pub fn token(&mut self, seed: u64) -> String {
        self.next += 1;
        format!("{:x}{:06x}", seed & 0xffff_ffff, self.next)
    }

    /// A fresh modification order number.
    pub fn seq(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}
