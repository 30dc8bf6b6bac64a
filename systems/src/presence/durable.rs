//! Publications as durable records ([`crate::durable`]): the presentity and document of each
//! (written when its document changes) and its entity tag and expiry (at every refresh), and
//! their restoration at start.
//!
//! An entity tag names its publication's entity ([`super::components::etag_text`]), which a
//! new process does not have: a restored publication is also found by the entity bits its
//! tag names ([`EtagAliases`]) until its next refresh gives it a tag of this process.

use std::collections::HashMap;

use bevy_ecs::prelude::*;
use bytes::Bytes;

use crate::durable::codec::{Reader, Writer};
use crate::durable::{DurableLog, Restored, kind, split_key};
use crate::formats::pidf;
use crate::time::{Clock, Time};
use crate::timers::{TimerKind, Timers};

use super::components::{Presentity, Publication, SourceUri, aor_of, recompose};

const VERSION: u8 = 1;

/// Restored publications by the entity bits their (pre-restart) entity tags name.
#[derive(Resource, Debug, Default)]
pub struct EtagAliases(pub HashMap<u64, Entity>);

/// A restored publication's tag still names another process's entity: these bits.
#[derive(Component, Debug, Clone, Copy)]
#[component(storage = "SparseSet")]
pub struct RestoredTag(pub u64);

fn unix_ms(clock: &Clock, t: Time) -> i64 {
    clock.unix_at_zero_ms + t.0 as i64
}

/// Record publication `p`'s presentity and document `body` (as received), changed `now`.
pub(super) fn record_document(world: &mut World, p: Entity, body: &[u8]) {
    let Some(id) = durable_id(world, p) else {
        return;
    };
    let clock = *world.resource::<Clock>();
    let Some(pb) = world.get::<Publication>(p) else {
        return;
    };
    let Some(uri) = world.get::<SourceUri>(pb.presentity) else {
        return;
    };
    let aor = aor_of(uri);
    let record = Writer::new(VERSION, 24 + aor.len() + body.len())
        .i64(unix_ms(&clock, clock.now))
        .bytes(aor.as_bytes())
        .bytes(body)
        .done();
    world
        .resource_mut::<DurableLog>()
        .put(crate::durable::key(kind::PUBLICATION, id), record);
}

/// Record publication `p`'s entity tag and expiry.
pub(super) fn record_tag(world: &mut World, p: Entity) {
    let Some(id) = durable_id(world, p) else {
        return;
    };
    let clock = *world.resource::<Clock>();
    let Some(pb) = world.get::<Publication>(p) else {
        return;
    };
    let named = world.get::<RestoredTag>(p).map_or(p.to_bits(), |r| r.0);
    let record = Writer::new(VERSION, 24)
        .u64(pb.etag)
        .u64(named)
        .i64(unix_ms(&clock, pb.expires_at))
        .done();
    world
        .resource_mut::<DurableLog>()
        .put(crate::durable::key(kind::PUBLICATION_TAG, id), record);
}

/// Publication `p` is going: delete its records and its alias.
pub(super) fn record_removed(world: &mut World, p: Entity) {
    forget_alias(world, p);
    let Some(id) = durable_id(world, p) else {
        return;
    };
    let mut log = world.resource_mut::<DurableLog>();
    log.delete(crate::durable::key(kind::PUBLICATION, id));
    log.delete(crate::durable::key(kind::PUBLICATION_TAG, id));
}

/// `p` got a tag of this process: the old one no longer names it.
pub(super) fn forget_alias(world: &mut World, p: Entity) {
    let Some(old) = world.get::<RestoredTag>(p).copied() else {
        return;
    };
    world.entity_mut(p).remove::<RestoredTag>();
    if let Some(mut aliases) = world.get_resource_mut::<EtagAliases>()
        && aliases.0.get(&old.0) == Some(&p)
    {
        aliases.0.remove(&old.0);
    }
}

/// The restored publication an entity tag naming `bits` stands for.
pub(super) fn alias(world: &World, bits: u64) -> Option<Entity> {
    world.get_resource::<EtagAliases>()?.0.get(&bits).copied()
}

fn durable_id(world: &World, p: Entity) -> Option<u64> {
    world.get_resource::<DurableLog>()?;
    world
        .get::<Publication>(p)
        .map(|pb| pb.durable)
        .filter(|&id| id != 0)
}

/// One publication's document and tag records, as found.
type Records<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// One publication's two records, decoded.
struct Stored<'a> {
    id: u64,
    modified_ms: i64,
    aor: &'a str,
    body: &'a [u8],
    secret: u64,
    named: u64,
    expires_ms: i64,
}

fn decode<'a>(id: u64, document: &'a [u8], tag: &'a [u8]) -> Option<Stored<'a>> {
    let mut d = Reader::new(document, VERSION)?;
    let mut t = Reader::new(tag, VERSION)?;
    Some(Stored {
        id,
        modified_ms: d.i64()?,
        aor: d.str()?,
        body: d.bytes()?,
        secret: t.u64()?,
        named: t.u64()?,
        expires_ms: t.i64()?,
    })
}

/// Rebuild the publications among `records` (others are left alone), in their order of
/// modification; those whose time ran out while the server was down, and unreadable ones, are
/// deleted. Their presentities are composed in this tick.
pub fn restore(world: &mut World, records: &[(u64, Vec<u8>)], done: &mut Restored) {
    let mut by_id: HashMap<u64, Records<'_>> = HashMap::new();
    for (key, value) in records {
        match split_key(*key) {
            (kind::PUBLICATION, id) => by_id.entry(id).or_default().0 = Some(value),
            (kind::PUBLICATION_TAG, id) => by_id.entry(id).or_default().1 = Some(value),
            _ => {}
        }
    }
    let clock = *world.resource::<Clock>();
    let now_ms = unix_ms(&clock, clock.now);
    let mut stored = Vec::with_capacity(by_id.len());
    let mut gone = Vec::new();
    for (&id, &(doc, tag)) in &by_id {
        match doc.zip(tag).and_then(|(d, t)| decode(id, d, t)) {
            Some(s) if s.expires_ms > now_ms => stored.push(s),
            Some(_) => {
                done.expired += 1;
                gone.push(id);
            }
            None => {
                done.unreadable += 1;
                gone.push(id);
            }
        }
    }
    stored.sort_by_key(|s| (s.modified_ms, s.id));
    world.init_resource::<EtagAliases>();
    for s in stored {
        world.resource_mut::<DurableLog>().reserve(s.id);
        let body = Bytes::copy_from_slice(s.body);
        let Ok(doc) = pidf::parse_with_view(&body, &["sip:", s.aor]) else {
            done.unreadable += 1;
            gone.push(s.id);
            continue;
        };
        let at = |ms: i64| Time(clock.now.0.saturating_add_signed(ms - now_ms));
        let presentity = super::publish::published_presentity(world, s.aor);
        let expires_at = at(s.expires_ms);
        let p = world
            .spawn((
                Publication {
                    presentity,
                    etag: s.secret,
                    expires_at,
                    doc,
                    modified_at: at(s.modified_ms),
                    held: false,
                    durable: s.id,
                },
                RestoredTag(s.named),
            ))
            .id();
        world.resource_mut::<EtagAliases>().0.insert(s.named, p);
        world
            .get_mut::<Presentity>(presentity)
            .expect("live")
            .publications
            .push(p);
        recompose(world, presentity);
        world
            .resource_mut::<Timers>()
            .arm(TimerKind::PublicationExpiry, p.to_bits(), expires_at);
        done.publications += 1;
    }
    let mut log = world.resource_mut::<DurableLog>();
    for id in gone {
        log.delete(crate::durable::key(kind::PUBLICATION, id));
        log.delete(crate::durable::key(kind::PUBLICATION_TAG, id));
    }
}
