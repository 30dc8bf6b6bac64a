//! Notifier-side subscriptions (RFC 6665), shared by every event package: the dialog a
//! SUBSCRIBE creates, refresh and unsubscribe, expiry, and NOTIFY flow control. An event package
//! ([`PackageSpec`]) decides whether to accept a subscription and keeps each subscription's
//! [`Content`] current; this module sends it.
//!
//! NOTIFYs in a dialog never overtake each other (RFC 6665 §4.2.2): while one is in flight,
//! changes only mark the subscription dirty, and the newest content goes out when the answer
//! arrives. A body many subscriptions share (a presentity's view) is one `Bytes` referenced by
//! all of them: per watcher only the dialog's head is written.

pub mod dialog;
pub mod notify;
pub mod subscribe;

use std::collections::HashMap;

use bevy_ecs::prelude::*;
use bytes::Bytes;

use crate::time::Time;

pub use dialog::Dialog;

/// Where a subscription is in its life (RFC 6665 §4.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubState {
    Active,
    /// Ending: the final NOTIFY carries `terminated` with this reason (None: no reason).
    Terminating(Option<&'static str>),
}

/// Flow control of a subscription's NOTIFYs.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotifyFlow {
    /// A NOTIFY waits for its final response.
    pub in_flight: bool,
    /// There is newer content to send.
    pub dirty: bool,
    /// The final (`terminated`) NOTIFY has gone out.
    pub final_sent: bool,
}

impl NotifyFlow {
    /// True when a NOTIFY may be sent now.
    pub fn ready(&self) -> bool {
        self.dirty && !self.in_flight && !self.final_sent
    }
}

/// What the next NOTIFY carries.
#[derive(Debug, Clone, Default)]
pub struct Content {
    pub content_type: &'static str,
    pub body: Bytes,
}

/// A subscription: its package, its life and what it will send next.
#[derive(Component, Debug)]
pub struct Subscription {
    /// The event package (`presence`, `xcap-diff`, ...).
    pub package: &'static str,
    /// `Event: <package>;id=...` (RFC 6665 §8.2.1).
    pub event_id: Option<Box<str>>,
    /// The watcher's AoR, hashed ([`SubscriptionIndex::watcher_key`]): only counted.
    pub watcher: u64,
    pub expires_at: Time,
    pub state: SubState,
    pub flow: NotifyFlow,
    pub content: Content,
}

/// Subscriptions to look at this tick (duplicates are harmless).
#[derive(Resource, Default)]
pub struct NotifyQueue(pub Vec<Entity>);

impl NotifyQueue {
    /// Mark `sub` dirty and queue it.
    pub fn touch(&mut self, sub: Entity, s: &mut Subscription) {
        s.flow.dirty = true;
        self.0.push(sub);
    }
}

/// Subscriptions per watcher, for the limit. (Dialogs need no index: our To tag names the
/// subscription entity, see `subscribe::dialog_of`.)
#[derive(Resource, Default)]
pub struct SubscriptionIndex {
    /// Hashed watcher AoR -> subscriptions.
    pub per_watcher: HashMap<u64, u32>,
    hasher: std::hash::RandomState,
}

impl SubscriptionIndex {
    /// The key a watcher AoR is counted under (a keyed hash: two AoRs sharing one is as unlikely
    /// as it is harmless, they would share a limit).
    pub fn watcher_key(&self, aor: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(aor)
    }
}

pub use crate::router::Answer;

/// An event package: its name, bounds and hooks.
#[derive(Clone)]
pub struct PackageSpec {
    pub event: &'static str,
    /// Body types a subscriber may accept (RFC 6665 §4.2.1: 406 when none is acceptable).
    pub content_types: &'static [&'static str],
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    /// Most subscriptions per watcher AoR.
    pub max_per_watcher: usize,
    /// Accept a new subscription: attach the package's components to `sub` (already spawned with
    /// its dialog) and set its first content; or refuse it (the entity is then despawned).
    pub on_subscribe: fn(&mut World, &crate::sip::Request, Entity) -> Result<(), Answer>,
    /// A refresh was accepted (RFC 6665 §4.2.1.4: its NOTIFY reports the current state).
    pub on_refresh: fn(&mut World, Entity),
    /// Detach a subscription that ends.
    pub on_end: fn(&mut World, Entity),
}

/// The event packages served.
#[derive(Resource, Default, Clone)]
pub struct Packages(pub Vec<PackageSpec>);

impl Packages {
    /// The package named by an `Event` value.
    pub fn get(&self, event: &str) -> Option<&PackageSpec> {
        self.0.iter().find(|p| p.event.eq_ignore_ascii_case(event))
    }

    /// `Allow-Events` value.
    pub fn allow_events(&self) -> String {
        self.0
            .iter()
            .map(|p| p.event)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Add subscription handling to an engine with the packages registered so far; packages call
/// [`register_package`].
pub fn install(world: &mut World, schedule: &mut Schedule) {
    use crate::pipeline::Pipeline;
    if world.contains_resource::<Packages>() {
        return;
    }
    world.init_resource::<Packages>();
    world.init_resource::<SubscriptionIndex>();
    world.init_resource::<NotifyQueue>();
    world.init_resource::<crate::ids::Ids>();
    world
        .resource_mut::<crate::router::MethodQueues>()
        .register(crate::sip::Method::Subscribe);
    schedule.add_systems(subscribe::handle_subscribe.in_set(Pipeline::Subscribe));
    schedule.add_systems(notify::expire_subscriptions.in_set(Pipeline::Expiry));
    schedule.add_systems(
        (notify::notify_outcomes, notify::send_notifies)
            .chain()
            .in_set(Pipeline::NotifyEncode),
    );
}

/// Register an event package (after [`install`]).
pub fn register_package(world: &mut World, spec: PackageSpec) {
    world.resource_mut::<Packages>().0.push(spec);
    let events = world.resource::<Packages>().allow_events();
    world
        .resource_mut::<crate::router::Capabilities>()
        .allow_events = events;
}
