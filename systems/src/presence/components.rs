//! Presence entities and the indexes that find them in O(1).

use std::hash::BuildHasher;

use bevy_ecs::entity::{Entities, EntityIndex};
use bevy_ecs::prelude::*;

use crate::growing_map::GrowingMap;
use crate::keyed_hash::HashKeys;

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
    pub publications: Publications,
    /// Subscriptions watching it.
    pub watchers: Watchers,
}

/// A presentity's live publications in order of last modification, oldest first: an exact-size
/// list (nearly always of one), 16 bytes in the component instead of a `Vec`'s 24 and no spare
/// capacity; it changes only when a publication starts, ends or is modified.
#[derive(Debug, Default)]
pub struct Publications(Box<[Entity]>);

impl Publications {
    /// Adds a publication as the newest.
    pub fn push(&mut self, p: Entity) {
        if self.0.is_empty() {
            self.0 = Box::new([p]);
            return;
        }
        let mut v = std::mem::take(&mut self.0).into_vec();
        v.reserve_exact(1);
        v.push(p);
        self.0 = v.into_boxed_slice();
    }

    /// Removes a publication.
    pub fn remove(&mut self, p: Entity) {
        if self.0.contains(&p) {
            let mut v = std::mem::take(&mut self.0).into_vec();
            v.retain(|&x| x != p);
            self.0 = v.into_boxed_slice();
        }
    }

    /// Makes a (modified) publication the newest.
    pub fn move_to_end(&mut self, p: Entity) {
        if let Some(i) = self.0.iter().position(|&x| x == p) {
            self.0[i..].rotate_left(1);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Entity> + '_ {
        self.0.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes of the list's buffer.
    pub fn bytes(&self) -> usize {
        self.0.len() * size_of::<Entity>()
    }
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

/// The presentity of `aor`, if there is one.
pub fn find_presentity(world: &World, aor: &str) -> Option<Entity> {
    presentity_or_slot(world, aor).ok()
}

/// The presentity of `aor`, or else the free index key a new one takes
/// ([`PresenceIndex::add_presentity_at`]).
pub fn presentity_or_slot(world: &World, aor: &str) -> Result<Entity, u64> {
    let index = world.resource::<PresenceIndex>();
    let mut k = index.key(aor);
    loop {
        let Some(e) = index.presentities.get(&k) else {
            return Err(k);
        };
        if world.get::<SourceUri>(e).is_some_and(|u| aor_of(u) == aor) {
            return Ok(e);
        }
        k = k.wrapping_add(1);
    }
}

/// Drops presentity `e` from the index (the caller despawns it).
pub fn forget_presentity(world: &mut World, e: Entity) {
    let Some(uri) = world.get::<SourceUri>(e) else {
        return;
    };
    let keys = world.resource::<PresenceIndex>().keys;
    let key = keys.hash_one(aor_of(uri));
    world.resource_scope(|world, mut index: Mut<PresenceIndex>| {
        index.remove_presentity(key, e, |x| {
            world.get::<SourceUri>(x).map(|u| keys.hash_one(aor_of(u)))
        })
    });
}

/// Presentities whose sources changed this tick, in the order they changed: composition gives
/// each one new view (a list rather than a marker component: inserting and removing a
/// component moves the entity between archetypes twice per change).
#[derive(Resource, Debug, Default)]
pub struct Recompose(pub Vec<Entity>);

/// Queues presentity `e` for recomposition this tick.
pub fn recompose(world: &mut World, e: Entity) {
    match world.get_resource_mut::<Recompose>() {
        Some(mut r) => r.0.push(e),
        None => world.insert_resource(Recompose(vec![e])),
    }
}

/// Presentities whose composed document changed this tick, for whoever shows it differently
/// (privacy views): refilled by every composition, so it never outgrows one tick.
#[derive(Resource, Debug, Default)]
pub struct ViewChanges(pub Vec<Entity>);

/// One publication (RFC 3903 event state), identified by its entity tag. Its place in its
/// presentity's [`Presentity::publications`] is its order of last modification.
#[derive(Component, Debug)]
pub struct Publication {
    pub presentity: Entity,
    /// The secret part of its entity tag, new at every refresh, modify or remove; the tag is
    /// written [`etag_text`] (so it is not stored).
    pub etag: u64,
    pub expires_at: Time,
    pub doc: PidfDocument,
    /// When its document last changed in the view (for the publish throttle).
    pub modified_at: Time,
    /// A change inside the throttle's interval waits for it to end (merge).
    pub held: bool,
    /// Its id in durable state ([`crate::durable`]); 0 without durability.
    pub durable: u64,
}

/// The entity tag (RFC 3903 §6) of publication `p` whose secret part is `secret`: `secret` in 16
/// lowercase hex digits, then the bits of `p` in lowercase hex without leading zeros. The tag
/// finds its publication without an index of tags (see [`etag_parts`]); the secret, drawn from
/// [`crate::ids::Ids::random`] at every change and kept in the [`Publication`], makes it unique
/// and not guessable from other tags.
pub fn etag_text(secret: u64, p: Entity) -> String {
    let mut out = String::with_capacity(32);
    crate::hex::push(&mut out, secret, 16);
    crate::hex::push(&mut out, p.to_bits(), 1);
    out
}

/// The secret and the publication of an entity tag written by [`etag_text`]; `None` for any
/// other text. The caller compares the secret with the one its publication keeps.
pub fn etag_parts(tag: &str) -> Option<(u64, Entity)> {
    let t = tag.as_bytes();
    if !(17..=32).contains(&t.len()) || (t.len() > 17 && t[16] == b'0') {
        return None;
    }
    let secret = crate::hex::read(&t[..16])?;
    let p = Entity::try_from_bits(crate::hex::read(&t[16..])?)?;
    Some((secret, p))
}

/// Index resources kept in step by the systems that spawn and despawn. (A publication needs
/// none: its entity tag names it, see [`etag_parts`].)
#[derive(Resource)]
pub struct PresenceIndex {
    /// Presentities by [`key`](Self::key) of their `user@host`: the key text is not stored a
    /// second time beside the presentity's [`SourceUri`], which tells colliding keys apart (see
    /// [`find_presentity`]). The keys are keyed hashes already: the table uses them as they are.
    pub presentities: GrowingMap<Entity>,
    /// The SipHash keys of [`key`](Self::key), derived from the engine's secret hash seed:
    /// nobody outside can choose URIs whose index keys collide.
    keys: HashKeys,
}

impl PresenceIndex {
    /// Name of the index's keys, for [`HashKeys::derive`].
    const KEYS: u64 = u64::from_be_bytes(*b"presence");

    /// An empty index sized for `capacity` presentities, its keys derived from the engine's
    /// `hash_seed`.
    pub fn with_capacity(capacity: usize, hash_seed: u128) -> Self {
        PresenceIndex {
            presentities: GrowingMap::with_capacity(capacity),
            keys: HashKeys::derive(hash_seed, Self::KEYS),
        }
    }

    /// The 64-bit key a presentity `user@host` is indexed under. Keys that collide take the
    /// next free keys (linear probing over the key space).
    pub fn key(&self, aor: &str) -> u64 {
        self.keys.hash_one(aor)
    }

    /// Indexes a new presentity `e` at the free key [`presentity_or_slot`] gave.
    pub fn add_presentity_at(&mut self, slot: u64, e: Entity) {
        self.presentities.insert(slot, e);
    }

    fn seat(&mut self, key: u64, e: Entity) {
        let mut k = key;
        while self.presentities.contains_key(&k) {
            k = k.wrapping_add(1);
        }
        self.presentities.insert(k, e);
    }

    /// Forgets presentity `e`, indexed under `key` ([`key`](Self::key) of its `user@host`). Entries
    /// that probed past it are seated again (`key_of` gives their keys); there are none unless
    /// keys collided.
    pub fn remove_presentity(
        &mut self,
        key: u64,
        e: Entity,
        key_of: impl Fn(Entity) -> Option<u64>,
    ) {
        let mut k = key;
        loop {
            match self.presentities.get(&k) {
                None => return,
                Some(x) if x == e => break,
                Some(_) => k = k.wrapping_add(1),
            }
        }
        self.presentities.remove(&k);
        let mut run = Vec::new();
        let mut j = k.wrapping_add(1);
        while let Some(x) = self.presentities.remove(&j) {
            run.push(x);
            j = j.wrapping_add(1);
        }
        for x in run {
            if let Some(key) = key_of(x) {
                self.seat(key, x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_keys_probe_and_reseat() {
        let mut world = World::new();
        let [a, b, c, d] = [(); 4].map(|_| world.spawn_empty().id());
        let mut index = PresenceIndex::with_capacity(0, 0);
        let home = |x: Entity| Some(if x == a || x == b { 5 } else { 6 });
        index.seat(5, a);
        index.seat(5, b); // collides: 6
        index.seat(6, c); // 7
        index.seat(9, d);
        assert_eq!(index.presentities.get(&6), Some(b));
        assert_eq!(index.presentities.get(&7), Some(c));
        index.remove_presentity(5, a, home);
        let at = |k: u64| index.presentities.get(&k);
        assert_eq!(
            (at(5), at(6), at(7), at(9)),
            (Some(b), Some(c), None, Some(d))
        );
        index.remove_presentity(6, c, home);
        index.remove_presentity(5, b, home);
        assert_eq!(index.presentities.len(), 1);
        index.remove_presentity(5, d, home); // not there: nothing happens
        assert_eq!(index.presentities.len(), 1);
    }

    #[test]
    fn etags_round_trip() {
        let mut world = World::new();
        let entities: Vec<Entity> = (0..3).map(|_| world.spawn_empty().id()).collect();
        for &p in &entities {
            for secret in [0u64, 1, 0xfffff, 0x1234_5678_9abc, u64::MAX] {
                let tag = etag_text(secret, p);
                assert_eq!(etag_parts(&tag), Some((secret, p)), "{tag}");
            }
        }
        let p = entities[1];
        assert_eq!(
            etag_text(0xabc, p),
            format!("{:016x}{:x}", 0xabc, p.to_bits())
        );
        let good = etag_text(0xab_cdef, p);
        for bad in [
            String::new(),
            "1".into(),
            good[..16].into(),
            good.to_uppercase(),
            format!("{}0{}", &good[..16], &good[16..]),
            format!("{good}x"),
            format!("{}-{}", &good[..16], &good[16..]),
            "nosuchetag".into(),
        ] {
            assert_eq!(etag_parts(&bad), None, "{bad}");
        }
    }
}
