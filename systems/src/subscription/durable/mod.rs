//! Notifier-side subscriptions as durable records ([`crate::durable`]): one record per
//! subscription with its whole dialog (module `record` has the layout), written when it is
//! created, refreshed or changes state and deleted when it ends, never per NOTIFY; and their
//! restoration at start (module `restore`).
//!
//! Only packages with [`DurableHooks`] are kept (presence, watcher information, xcap-diff; a
//! resource list's subscriptions are not). Our To tag names the subscription's entity
//! ([`super::dialog::local_tag`]), which a new process does not have: a restored subscription
//! keeps its tag ([`RestoredTag`]) and requests carrying it find it through [`DialogAliases`].

mod record;
mod restore;

use std::collections::HashMap;

use bevy_ecs::lifecycle::HookContext;
use bevy_ecs::prelude::*;
use bevy_ecs::world::DeferredWorld;

use crate::config::EngineConfig;
use crate::durable::{DurableLog, kind};
use crate::time::{Clock, Time};

use super::dialog::{LocalTag, local_tag};
use super::{DialogStore, Packages, SourceUri, SubState, Subscription};

pub use record::{NO_SINCE, Stored};
pub use restore::{RestoreNotifies, release_restored, restore};

/// How an event package's subscriptions survive a restart.
#[derive(Clone, Copy)]
pub struct DurableHooks {
    /// The package's part of `sub`'s record: what re-attaches it (None: `sub` is not kept).
    pub save: fn(&World, Entity) -> Option<Vec<u8>>,
    /// Re-attach the restored `sub` from its part (None, having attached nothing: it cannot
    /// be, and is dropped). The subscription is spawned with its state and expiry; its dialog
    /// is made after the hook, once its source is known.
    pub restore: fn(&mut World, Entity, &[u8], &Restoring) -> Option<()>,
}

/// What a package's restore hook is told.
#[derive(Debug, Clone, Copy)]
pub struct Restoring {
    /// The state kept (active or pending).
    pub state: SubState,
    /// How far the dialog's local CSeq moved on at restore: more than the NOTIFYs that may
    /// have gone out since the record was written. A package that numbers its NOTIFYs (a
    /// watcherinfo `version`) moves on as far.
    pub notifies_skipped: u32,
}

/// The id of a kept subscription's record (with durability only).
#[derive(Component, Debug, Clone, Copy)]
#[component(storage = "SparseSet", on_remove = forget_record)]
pub struct DurableSub(pub u64);

/// A restored subscription's tag, which names an entity of an earlier process.
#[derive(Component, Debug, Clone, Copy)]
#[component(storage = "SparseSet", on_remove = forget_alias)]
pub struct RestoredTag {
    bits: u64,
    mix: u32,
}

impl RestoredTag {
    pub fn tag(&self) -> LocalTag {
        LocalTag::from_parts(self.bits, self.mix)
    }
}

/// Restored subscriptions by the entity bits and mixed bits of their tags. Keyed by both:
/// the tags of two processes may name the same entity bits.
#[derive(Resource, Debug, Default)]
pub struct DialogAliases(HashMap<(u64, u32), Entity>);

/// Subscriptions whose record is written at the end of this tick (duplicates are harmless).
/// Present only with durability.
#[derive(Resource, Debug, Default)]
pub struct RecordQueue(pub Vec<Entity>);

/// A subscription record's key.
fn record_key(id: u64) -> u64 {
    crate::durable::key(kind::SUBSCRIPTION, id)
}

fn forget_record(mut world: DeferredWorld, ctx: HookContext) {
    let Some(id) = world.get::<DurableSub>(ctx.entity).map(|d| d.0) else {
        return;
    };
    if let Some(mut log) = world.get_resource_mut::<DurableLog>() {
        log.delete(record_key(id));
    }
}

fn forget_alias(mut world: DeferredWorld, ctx: HookContext) {
    let Some(r) = world.get::<RestoredTag>(ctx.entity).copied() else {
        return;
    };
    if let Some(mut aliases) = world.get_resource_mut::<DialogAliases>()
        && aliases.0.get(&(r.bits, r.mix)) == Some(&ctx.entity)
    {
        aliases.0.remove(&(r.bits, r.mix));
        // the last restored dialog gone: the table of a million gives its memory back
        if aliases.0.is_empty() {
            aliases.0 = HashMap::new();
        }
    }
}

/// The restored subscription a To tag names, if any.
pub fn alias(world: &World, tag: &str) -> Option<Entity> {
    let aliases = world.get_resource::<DialogAliases>()?;
    if aliases.0.is_empty() {
        return None;
    }
    aliases.0.get(&LocalTag::parse(tag)?).copied()
}

/// Our tag in `sub`'s dialog (Call-ID `call_id`): the one kept from an earlier process, or
/// the one derived from the entity.
pub fn our_tag(world: &World, sub: Entity, call_id: &str) -> LocalTag {
    match world.get::<RestoredTag>(sub) {
        Some(r) => r.tag(),
        None => local_tag(sub, call_id, world.resource::<EngineConfig>().seed),
    }
}

/// `sub` was just accepted: keep it when durability is on and its package keeps its
/// subscriptions (an unsubscribing fetch and a dialog-less one are never kept).
pub fn created(world: &mut World, sub: Entity) {
    if !world.contains_resource::<RecordQueue>() {
        return;
    }
    let Some(s) = world.get::<Subscription>(sub) else {
        return;
    };
    let live = matches!(s.state, SubState::Active | SubState::Pending);
    let hooks = world.resource::<Packages>().spec(s.package).durable;
    if !live || s.dialog.is_internal() || hooks.is_none() {
        return;
    }
    let id = world.resource_mut::<DurableLog>().new_id();
    world.entity_mut(sub).insert(DurableSub(id));
    world.resource_mut::<RecordQueue>().0.push(sub);
}

/// `sub` was refreshed or changed state: its record is written again at the end of the tick.
pub fn changed(world: &mut World, sub: Entity) {
    if let Some(mut q) = world.get_resource_mut::<RecordQueue>() {
        q.0.push(sub);
    }
}

fn unix_ms(clock: &Clock, t: Time) -> i64 {
    clock.unix_at_zero_ms + t.0 as i64
}

/// The record of kept subscription `sub` now; None when its package no longer keeps it.
fn record_of(world: &World, sub: Entity) -> Option<Vec<u8>> {
    let s = world.get::<Subscription>(sub)?;
    let spec = world.resource::<Packages>().spec(s.package);
    let package_part = (spec.durable?.save)(world, sub)?;
    let clock = world.resource::<Clock>();
    let store = world.resource::<DialogStore>();
    let strings = s.dialog.strings(store);
    let source_uri = world.get::<SourceUri>(s.source).map(|u| &*u.0);
    let tag = our_tag(world, sub, strings.call_id());
    let since_ms = world
        .get::<super::lifecycle::Since>(sub)
        .map_or(NO_SINCE, |t| unix_ms(clock, t.0));
    Some(
        Stored {
            written_ms: unix_ms(clock, clock.now),
            package: spec.label,
            state: s.state,
            expires_ms: unix_ms(clock, s.expires_at),
            since_ms,
            local_cseq: s.dialog.local_cseq,
            remote_cseq: s.dialog.remote_cseq,
            tag: &tag,
            call_id: strings.call_id(),
            local: &s.dialog.local_part(store, source_uri),
            remote: strings.remote(),
            remote_target: &strings.remote_target(),
            event_id: strings.event_id().unwrap_or(""),
            route_set: strings.route_set().collect(),
            dest: s.dialog.dest(store),
            package_part: &package_part,
        }
        .encode(),
    )
}

/// End of tick: write the records of the subscriptions created, refreshed or changed in it.
pub fn write_records(world: &mut World) {
    let mut queue = std::mem::take(&mut world.resource_mut::<RecordQueue>().0);
    if queue.is_empty() {
        return;
    }
    queue.sort_unstable();
    queue.dedup();
    for &sub in &queue {
        let Some(id) = world.get::<DurableSub>(sub).map(|d| d.0) else {
            continue;
        };
        match record_of(world, sub) {
            Some(record) => world
                .resource_mut::<DurableLog>()
                .put(record_key(id), record),
            // its record goes with the component
            None => {
                world.entity_mut(sub).remove::<DurableSub>();
            }
        }
    }
    queue.clear();
    world.resource_mut::<RecordQueue>().0 = queue;
}
