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
pub mod durable;
pub mod gauges;
pub mod lifecycle;
pub mod notify;
pub mod subscribe;

use std::collections::{HashMap, HashSet};

use bevy_ecs::prelude::*;
use bytes::Bytes;

use crate::keyed_hash::HashKeys;
use crate::time::Time;

pub use dialog::{Dialog, DialogStore};

/// Why a subscription ended, as the `reason` of `Subscription-State: terminated` (RFC 6665
/// §4.1.3): a byte instead of a string in every subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Deactivated,
    Probation,
    Rejected,
    Timeout,
    Giveup,
    Noresource,
    Invariant,
}

impl Reason {
    /// The token on the wire (also RFC 3858's `event` of a watcher).
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Deactivated => "deactivated",
            Reason::Probation => "probation",
            Reason::Rejected => "rejected",
            Reason::Timeout => "timeout",
            Reason::Giveup => "giveup",
            Reason::Noresource => "noresource",
            Reason::Invariant => "invariant",
        }
    }
}

/// Where a subscription is in its life (RFC 6665 §4.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubState {
    Active,
    /// Accepted but not yet authorized (RFC 6665 §4.1.3, RFC 5025 `confirm`): NOTIFYs say
    /// `pending` and carry no state.
    Pending,
    /// Ending: the final NOTIFY carries `terminated` with this reason (None: no reason).
    Terminating(Option<Reason>),
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
    /// A restored subscription waiting for its paced NOTIFY ([`durable`]): until then changes
    /// only mark it dirty.
    pub held: bool,
}

impl NotifyFlow {
    /// True when a NOTIFY may be sent now.
    pub fn ready(&self) -> bool {
        self.dirty && !self.in_flight && !self.final_sent && !self.held
    }
}

/// What NOTIFYs carry: a body and its type. It sits on the subscription's [`Subscription::source`]
/// entity, so that a body many subscriptions share (a presentity's view) is held once, not once
/// per subscription.
#[derive(Component, Debug, Clone, Default)]
pub struct Content {
    pub content_type: MediaType,
    pub body: Bytes,
}

/// A body's type: a package's fixed one, or one written for a subscriber and shared by its
/// NOTIFYs (a list's `multipart/related` with its boundary).
#[derive(Debug, Clone)]
pub enum MediaType {
    Static(&'static str),
    Shared(std::sync::Arc<str>),
}

impl Default for MediaType {
    fn default() -> Self {
        MediaType::Static("")
    }
}

impl From<&'static str> for MediaType {
    fn from(t: &'static str) -> Self {
        MediaType::Static(t)
    }
}

impl std::ops::Deref for MediaType {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            MediaType::Static(t) => t,
            MediaType::Shared(t) => t,
        }
    }
}

/// The URI of the resource a shared source stands for (a presentity's `sip:user@host`). NOTIFYs
/// build the package's [`EmptyBody`] from it while the source has no [`Content`], and a
/// dialog whose local URI (the SUBSCRIBE's To) is exactly `<` this `>` does not store it.
#[derive(Component, Debug, Clone)]
pub struct SourceUri(pub Box<str>);

/// The body NOTIFYs carry while a shared source has no [`Content`] (a presentity nobody
/// publishes: a million subscriptions to such presentities would otherwise keep a hundred
/// thousand copies of one template). Built when sent, once per source and tick.
#[derive(Debug, Clone, Copy)]
pub struct EmptyBody {
    pub content_type: &'static str,
    /// The body for a source's URI; `variant` is the package's own setting.
    pub render: fn(uri: &str, variant: bool) -> Bytes,
    pub variant: bool,
}

/// Index of an event package in [`Packages`] (a byte in every subscription, not a `&str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PackageId(pub u8);

/// A subscription: its package, its life, where its content comes from, and its dialog
/// ([`Dialog`], whose strings are in the [`DialogStore`]). Small and fixed, and one component
/// (memory per subscription is a budget of a few hundred bytes, see `benches/memory.rs`: each
/// component of an entity also costs 8 bytes of change ticks).
#[derive(Component, Debug)]
#[component(on_insert = gauges::counted, on_discard = gauges::uncounted)]
pub struct Subscription {
    pub expires_at: Time,
    /// The entity whose [`Content`] the next NOTIFY carries: shared (a presentity's view) or the
    /// subscription itself (a body built for this subscriber).
    pub source: Entity,
    /// The event package (`presence`, `xcap-diff`, ...).
    pub package: PackageId,
    pub state: SubState,
    pub flow: NotifyFlow,
    pub dialog: Dialog,
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
#[derive(Resource)]
pub struct SubscriptionIndex {
    /// Hashed watcher AoRs with one subscription (most watchers: 4 bytes an entry, where a
    /// count beside each key would take 8; at a million watchers this is a tenth of the memory
    /// of all subscriptions).
    single: HashSet<u32, HashKeys>,
    /// Hashed watcher AoRs with more than one subscription, and how many.
    several: HashMap<u32, u32, HashKeys>,
    /// The keys of [`watcher_key`](Self::watcher_key).
    hasher: HashKeys,
}

impl SubscriptionIndex {
    /// Names of the index's keys and of its tables', for [`HashKeys::derive`].
    const KEYS: [u64; 3] = [
        u64::from_be_bytes(*b"watchers"),
        u64::from_be_bytes(*b"watcher1"),
        u64::from_be_bytes(*b"watcherN"),
    ];

    /// An empty index, its keys derived from the engine's `hash_seed`.
    pub fn new(hash_seed: u128) -> Self {
        let [keys, single, several] = Self::KEYS.map(|k| HashKeys::derive(hash_seed, k));
        SubscriptionIndex {
            single: HashSet::with_hasher(single),
            several: HashMap::with_hasher(several),
            hasher: keys,
        }
    }

    /// Subscriptions counted under `key`.
    pub fn count(&self, key: u32) -> u32 {
        match self.several.get(&key) {
            Some(&n) => n,
            None => self.single.contains(&key) as u32,
        }
    }

    /// Count one more subscription under `key`.
    pub fn add(&mut self, key: u32) {
        if let Some(n) = self.several.get_mut(&key) {
            *n += 1;
        } else if self.single.remove(&key) {
            self.several.insert(key, 2);
        } else {
            self.single.insert(key);
        }
    }

    /// Count one subscription fewer under `key`.
    pub fn remove(&mut self, key: u32) {
        match self.several.get_mut(&key) {
            Some(n) if *n > 2 => *n -= 1,
            Some(_) => {
                self.several.remove(&key);
                self.single.insert(key);
            }
            None => {
                self.single.remove(&key);
            }
        }
    }

    /// Bytes of the tables (hashbrown: buckets, a power of two of at least 8/7 the capacity,
    /// each an entry and a control byte).
    pub fn bytes(&self) -> usize {
        let table = |cap: usize, entry: usize| {
            if cap == 0 {
                0
            } else {
                (cap * 8 / 7).next_power_of_two() * (entry + 1)
            }
        };
        table(self.single.capacity(), 4) + table(self.several.capacity(), 8)
    }

    /// The key a watcher AoR is counted under: 32 bits of a keyed hash. Two AoRs sharing one
    /// (a few pairs among a million watchers) share a limit, which is harmless; the key is
    /// recomputed from the dialog's From when the subscription ends.
    pub fn watcher_key(&self, aor: &str) -> u32 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(aor) as u32
    }

    /// The key of the watcher who sent a `From` header value.
    pub fn watcher_key_of_from(&self, from: &str) -> u32 {
        let aor = crate::sip::uri::Uri::parse(crate::sip::fields::uri_of(from))
            .map(|u| u.aor())
            .unwrap_or_default();
        self.watcher_key(&aor)
    }
}

pub use crate::router::Answer;

/// An event package: its name, bounds and hooks.
#[derive(Clone)]
pub struct PackageSpec {
    pub event: &'static str,
    /// The package's name in metrics: its event, or more where two share one
    /// (`presence-list`).
    pub label: &'static str,
    /// Body types a subscriber may accept (RFC 6665 §4.2.1: 406 when none is acceptable).
    pub content_types: &'static [&'static str],
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    /// Most subscriptions per watcher AoR.
    pub max_per_watcher: usize,
    /// What NOTIFYs carry when a shared source has no [`Content`] (None: an empty body).
    pub empty_body: Option<EmptyBody>,
    /// Accept a new subscription: attach the package's components to `sub` (already spawned with
    /// its dialog) and set its first content; or refuse it (the entity is then despawned).
    pub on_subscribe: fn(&mut World, &crate::sip::Request, Entity) -> Result<(), Answer>,
    /// A refresh was accepted (RFC 6665 §4.2.1.4: its NOTIFY reports the current state).
    pub on_refresh: fn(&mut World, Entity),
    /// Detach a subscription that ends.
    pub on_end: fn(&mut World, Entity),
    /// For a package that shares its `Event` name with another (a resource list's `presence`):
    /// whether this request is one of ours. Packages without it take what the others leave.
    pub claims: Option<fn(&World, &crate::sip::Request) -> bool>,
    /// An option tag the answer to a SUBSCRIBE and every NOTIFY carry in `Require`
    /// (RFC 4662 §4.3, §4.4: `eventlist`).
    pub require: Option<&'static str>,
    /// How the package's subscriptions survive a restart (None: they do not).
    pub durable: Option<durable::DurableHooks>,
}

/// The event packages served.
#[derive(Resource, Default, Clone)]
pub struct Packages(pub Vec<PackageSpec>);

impl Packages {
    /// The package named by an `Event` value, with its id.
    pub fn find(&self, event: &str) -> Option<(PackageId, &PackageSpec)> {
        self.0
            .iter()
            .enumerate()
            .find(|(_, p)| p.event.eq_ignore_ascii_case(event))
            .map(|(i, p)| (PackageId(i as u8), p))
    }

    /// The package a new SUBSCRIBE is for: among those named by its `Event`, one that claims
    /// the request, else one that claims nothing.
    pub fn for_request(
        &self,
        world: &World,
        req: &crate::sip::Request,
        event: &str,
    ) -> Option<(PackageId, &PackageSpec)> {
        let named = || {
            self.0
                .iter()
                .enumerate()
                .filter(|(_, p)| p.event.eq_ignore_ascii_case(event))
        };
        named()
            .find(|(_, p)| p.claims.is_some_and(|claims| claims(world, req)))
            .or_else(|| named().find(|(_, p)| p.claims.is_none()))
            .map(|(i, p)| (PackageId(i as u8), p))
    }

    /// The package whose [`PackageSpec::label`] is `label`, with its id.
    pub fn by_label(&self, label: &str) -> Option<(PackageId, &PackageSpec)> {
        self.0
            .iter()
            .enumerate()
            .find(|(_, p)| p.label == label)
            .map(|(i, p)| (PackageId(i as u8), p))
    }

    /// The package of a subscription.
    pub fn spec(&self, id: PackageId) -> &PackageSpec {
        &self.0[id.0 as usize]
    }

    /// `Allow-Events` value.
    pub fn allow_events(&self) -> String {
        let mut events: Vec<&str> = Vec::new();
        for p in &self.0 {
            if !events.iter().any(|e| e.eq_ignore_ascii_case(p.event)) {
                events.push(p.event);
            }
        }
        events.join(", ")
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
    let hash_seed = world.resource::<crate::EngineConfig>().hash_seed;
    world.insert_resource(SubscriptionIndex::new(hash_seed));
    world.init_resource::<NotifyQueue>();
    world.init_resource::<crate::ids::Ids>();
    world.init_resource::<dialog::DialogStore>();
    world.init_resource::<gauges::SubscriptionGauges>();
    world.init_resource::<lifecycle::Lifecycle>();
    schedule.add_systems(
        lifecycle::clear_lifecycle
            .in_set(Pipeline::Ingest)
            .before(crate::router::ingest),
    );
    world
        .resource_mut::<crate::router::MethodQueues>()
        .register(crate::sip::Method::Subscribe);
    schedule.add_systems(subscribe::handle_subscribe.in_set(Pipeline::Subscribe));
    schedule.add_systems(notify::expire_subscriptions.in_set(Pipeline::Expiry));
    schedule.add_systems(
        durable::release_restored
            .run_if(resource_exists::<durable::RestoreNotifies>)
            .in_set(Pipeline::Expiry)
            .after(notify::expire_subscriptions),
    );
    schedule.add_systems(
        (notify::notify_outcomes, notify::send_notifies)
            .chain()
            .in_set(Pipeline::NotifyEncode),
    );
    // after every change of the tick and its NOTIFYs (the local CSeq kept is the latest)
    schedule.add_systems(
        durable::write_records
            .run_if(resource_exists::<durable::RecordQueue>)
            .in_set(Pipeline::Emit),
    );
}

/// Register an event package (after [`install`]).
pub fn register_package(world: &mut World, spec: PackageSpec) {
    assert!(
        world.resource::<Packages>().0.len() < 256,
        "at most 256 event packages"
    );
    world.resource_mut::<Packages>().0.push(spec);
    let events = world.resource::<Packages>().allow_events();
    world
        .resource_mut::<crate::router::Capabilities>()
        .allow_events = events;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_watcher_counts_move_between_the_single_and_several_tables() {
        let mut idx = SubscriptionIndex::new(0);
        assert_eq!(idx.count(7), 0);
        for n in 1..=3 {
            idx.add(7);
            assert_eq!(idx.count(7), n);
        }
        idx.add(8);
        for n in (0..3).rev() {
            idx.remove(7);
            assert_eq!(idx.count(7), n);
        }
        assert_eq!(idx.count(8), 1);
        assert!(idx.several.is_empty() && idx.single.len() == 1);
    }
}
