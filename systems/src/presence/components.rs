//! Presence entities and the indexes that find them in O(1).

use std::hash::{DefaultHasher, Hash, Hasher};

use bevy_ecs::entity::{Entities, EntityIndex};
use bevy_ecs::prelude::*;

use crate::growing_map::GrowingMap;

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

/// The 64-bit key a presentity `user@host` is indexed under (SipHash with fixed keys: the same
/// in every run). Keys that collide take the next free keys (linear probing over the key space;
/// the presentities' [`SourceUri`]s tell them apart).
pub fn aor_key(aor: &str) -> u64 {
    let mut h = DefaultHasher::new();
    aor.hash(&mut h);
    h.finish()
}

/// The presentity of `aor`, if there is one.
pub fn find_presentity(world: &World, aor: &str) -> Option<Entity> {
    find_presentity_by_key(world, aor_key(aor), aor)
}

/// The presentity of `aor`, whose [`aor_key`] is `key`, if there is one.
pub fn find_presentity_by_key(world: &World, key: u64, aor: &str) -> Option<Entity> {
    let index = &world.resource::<PresenceIndex>().presentities;
    let mut k = key;
    loop {
        let &e = index.get(&k)?;
        if world.get::<SourceUri>(e).is_some_and(|u| aor_of(u) == aor) {
            return Some(e);
        }
        k = k.wrapping_add(1);
    }
}

/// Presentities whose sources changed this tick, in the order they changed: composition gives
/// each one new view (a list rather than a marker component: inserting and removing a
/// component moves the entity between archetypes twice per change).
#[derive(Resource, Debug, Default)]
pub struct Recompose(pub Vec<Entity>);

/// Queues presentity `e` for recomposition this tick.
pub fn recompose(world: &mut World, e: Entity) {
    world.get_resource_or_init::<Recompose>().0.push(e);
}

/// One publication (RFC 3903 event state), identified by its entity tag. Its place in its
/// presentity's [`Presentity::publications`] is its order of last modification.
#[derive(Component, Debug)]
pub struct Publication {
    pub presentity: Entity,
    /// Number of its entity tag, which is written [`etag_text`] (so the tag is not stored).
    pub etag: u64,
    pub expires_at: Time,
    pub doc: PidfDocument,
}

/// Entity tag number `n` as written in SIP-ETag: the engine seed's low 32 bits, then `n` with
/// at least six digits, both in lowercase hex.
pub fn etag_text(seed: u64, n: u64) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = |v: u64, min: usize| min.max((64 - v.leading_zeros() as usize).div_ceil(4));
    let (s, ds, dn) = (
        seed & 0xffff_ffff,
        digits(seed & 0xffff_ffff, 1),
        digits(n, 6),
    );
    let mut out = String::with_capacity(ds + dn);
    for (v, d) in [(s, ds), (n, dn)] {
        for i in (0..d).rev() {
            out.push(HEX[(v >> (4 * i)) as usize & 0xf] as char);
        }
    }
    out
}

/// The number of an entity tag [`etag_text`] wrote with this seed; `None` for any other text.
pub fn etag_number(seed: u64, tag: &str) -> Option<u64> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let s = seed & 0xffff_ffff;
    let digits = if s == 0 {
        1
    } else {
        (64 - s.leading_zeros() as usize).div_ceil(4)
    };
    let mut prefix = [0u8; 8];
    for (i, p) in prefix[..digits].iter_mut().enumerate() {
        *p = HEX[(s >> (4 * (digits - 1 - i))) as usize & 0xf];
    }
    let rest = tag.as_bytes().strip_prefix(&prefix[..digits])?;
    if rest.len() < 6 || rest.len() > 16 || (rest.len() > 6 && rest[0] == b'0') {
        return None;
    }
    rest.iter().try_fold(0u64, |n, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        Some(n << 4 | d as u64)
    })
}

/// Index resources kept in step by the systems that spawn and despawn.
#[derive(Resource, Default)]
pub struct PresenceIndex {
    /// Presentities by [`aor_key`] of their `user@host`: the key text is not stored a second
    /// time beside the presentity's [`SourceUri`], which tells colliding keys apart (see
    /// [`find_presentity`]).
    pub presentities: GrowingMap<Entity>,
    /// Entity tag number -> publication.
    pub etags: GrowingMap<Entity>,
}

impl PresenceIndex {
    /// Indexes presentity `e` under `key`, [`aor_key`] of its `user@host` (which has none yet).
    pub fn add_presentity(&mut self, key: u64, e: Entity) {
        self.seat(key, e);
    }

    fn seat(&mut self, key: u64, e: Entity) {
        let mut k = key;
        while self.presentities.contains_key(&k) {
            k = k.wrapping_add(1);
        }
        self.presentities.insert(k, e);
    }

    /// Forgets presentity `e`, indexed under `key` ([`aor_key`] of its `user@host`). Entries
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
                Some(&x) if x == e => break,
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
        let mut index = PresenceIndex::default();
        let home = |x: Entity| Some(if x == a || x == b { 5 } else { 6 });
        index.seat(5, a);
        index.seat(5, b); // collides: 6
        index.seat(6, c); // 7
        index.seat(9, d);
        assert_eq!(index.presentities.get(&6), Some(&b));
        assert_eq!(index.presentities.get(&7), Some(&c));
        index.remove_presentity(5, a, home);
        let at = |k: u64| index.presentities.get(&k).copied();
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
    fn etag_numbers_round_trip() {
        for seed in [0u64, 1, 0xabc, 0xffff_ffff, 0x1234_5678_9abc_def0] {
            for n in [0u64, 1, 0xfffff, 0x1000000, 0x1234_5678_9abc, u64::MAX] {
                assert_eq!(
                    etag_number(seed, &etag_text(seed, n)),
                    Some(n),
                    "{seed} {n}"
                );
            }
        }
        assert_eq!(etag_text(1, 5), "1000005");
        for (seed, n) in [
            (0u64, 0u64),
            (0xabc, 0x1234567),
            (u64::MAX, u64::MAX),
            (7, 0xfffff),
        ] {
            assert_eq!(
                etag_text(seed, n),
                format!("{:x}{:06x}", seed & 0xffff_ffff, n)
            );
        }
        for bad in [
            "", "1", "100005", "10000005", "1000x05", "1ABCDEF", "2000005", "1-00005",
        ] {
            assert_eq!(etag_number(1, bad), None, "{bad}");
        }
    }
}
