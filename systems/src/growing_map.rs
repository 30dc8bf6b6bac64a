//! A hash map of `u64` keys that grows a little at a time.
//!
//! A hash table that outgrows its capacity rehashes every entry at once: at 3.7 million
//! presentities that was one 250-360 ms tick, every request of it waiting and the socket buffer
//! overflowing into 503s. This map moves to a table twice the size over the next inserts and
//! removes instead, a few entries each; lookups try both tables meanwhile. What is left at the
//! start of a growth is a scan of the full table for its keys (an array read, about 30 times
//! cheaper than the rehash, but at a few million entries still a 10-25 ms tick). So the map is
//! also split in [`SHARDS`] tables by a mix of the key, each moving on its own, and each starts
//! its move at its own fill level (between half full and full): a growing population moves one
//! shard at a time, a sixty-fourth of the scan each. A table that has emptied to an eighth
//! moves to a smaller one the same way (never below the capacity it was made with), so that a
//! burst's memory goes back.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

/// Entries moved to the new table per insert or remove while the map grows: enough to finish
/// before the new table (twice the old capacity) fills with the inserts made meanwhile.
const MOVES_PER_OP: usize = 8;

/// A hasher for maps whose `u64` keys are already keyed hashes (uniform and unpredictable to a
/// peer): the key serves as its own hash.
#[derive(Default)]
pub struct KeyAsHash(u64);

impl std::hash::Hasher for KeyAsHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Tables a map is split in.
pub const SHARDS: usize = 64;

/// A map of `u64` keys that grows and shrinks without a pause (see the module documentation).
#[derive(Debug)]
pub struct GrowingMap<V, S = RandomState> {
    shards: Box<[Shard<V, S>]>,
    len: usize,
}

impl<V, S: BuildHasher + Default + Clone> Default for GrowingMap<V, S> {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl<V, S: BuildHasher + Default + Clone> GrowingMap<V, S> {
    /// A map with room for `capacity` entries from the start.
    pub fn with_capacity(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS);
        let shards = (0..SHARDS)
            // shard i starts to move at (32 + i/2)/64 of its capacity: spread over a doubling
            .map(|i| Shard::with_capacity(per_shard, 32 + i / 2))
            .collect();
        GrowingMap { shards, len: 0 }
    }

    fn shard(key: u64) -> usize {
        // the top bits of a multiplicative mix: independent of the bits a shard's table uses
        // (the low bits for the bucket, the top seven for the tag) when keys are their own hash
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, key: &u64) -> Option<&V> {
        self.shards[Self::shard(*key)].get(key)
    }

    pub fn get_mut(&mut self, key: &u64) -> Option<&mut V> {
        self.shards[Self::shard(*key)].get_mut(key)
    }

    pub fn contains_key(&self, key: &u64) -> bool {
        self.get(key).is_some()
    }

    pub fn insert(&mut self, key: u64, value: V) -> Option<V> {
        let before = self.shards[Self::shard(key)].insert(key, value);
        self.len += usize::from(before.is_none());
        before
    }

    pub fn remove(&mut self, key: &u64) -> Option<V> {
        let removed = self.shards[Self::shard(*key)].remove(key);
        self.len -= usize::from(removed.is_some());
        removed
    }

    /// True while some shard is moving to another table.
    pub fn growing(&self) -> bool {
        self.shards.iter().any(Shard::growing)
    }
}

/// One table of a [`GrowingMap`], moving a few entries per operation while it grows or shrinks.
#[derive(Debug)]
struct Shard<V, S> {
    cur: HashMap<u64, V, S>,
    /// The previous table, being emptied into `cur`.
    old: HashMap<u64, V, S>,
    /// Keys of `old` still to move (some may have been removed meanwhile).
    pending: Vec<u64>,
    /// The capacity of the table made at creation: the table never shrinks below it.
    floor: usize,
    /// The fill, in 64ths of the capacity, at which the table starts to move to a bigger one.
    grow_at: usize,
}

/// Tables at most this large are not shrunk (not worth a move)...
const SHRINK_ABOVE: usize = 4096;
/// ...unless they are empty and larger than this (a table that empties after every use, such as
/// the transactions of a TCP-only server, stays allocated).
const KEEP_WHEN_EMPTY: usize = 64;

impl<V, S: BuildHasher + Default + Clone> Shard<V, S> {
    fn with_capacity(capacity: usize, grow_at: usize) -> Self {
        let cur = HashMap::with_capacity_and_hasher(capacity, S::default());
        Shard {
            floor: cur.capacity(),
            cur,
            old: HashMap::with_hasher(S::default()),
            pending: Vec::new(),
            grow_at,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.cur.len() + self.old.len()
    }

    fn get(&self, key: &u64) -> Option<&V> {
        self.cur.get(key).or_else(|| self.old.get(key))
    }

    fn get_mut(&mut self, key: &u64) -> Option<&mut V> {
        match self.cur.get_mut(key) {
            Some(v) => Some(v),
            None => self.old.get_mut(key),
        }
    }

    fn insert(&mut self, key: u64, value: V) -> Option<V> {
        self.step();
        let cap = self.cur.capacity();
        if cap > 0 && self.cur.len() * 64 >= cap * self.grow_at {
            self.grow();
        }
        let before = self.old.remove(&key);
        self.cur.insert(key, value).or(before)
    }

    fn remove(&mut self, key: &u64) -> Option<V> {
        self.step();
        let removed = self.cur.remove(key).or_else(|| self.old.remove(key));
        let cap = self.cur.capacity();
        if removed.is_none() || self.growing() || cap <= self.floor {
            return removed;
        }
        if self.cur.is_empty() && cap > KEEP_WHEN_EMPTY {
            // nothing to move: give the table back at once
            self.cur = HashMap::with_capacity_and_hasher(self.floor, self.cur.hasher().clone());
        } else if cap > SHRINK_ABOVE && self.cur.len() * 8 < cap {
            self.migrate((self.cur.len() * 2).max(self.floor));
        }
        removed
    }

    /// True while entries are still moving to the larger table (every key of `old` is in
    /// `pending`, so an empty `pending` means an empty `old`).
    fn growing(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Start moving to a table twice the size.
    fn grow(&mut self) {
        self.migrate((self.cur.capacity() * 2).max(16));
    }

    /// Start moving to a table of `capacity`. Should the previous move still be under way (it
    /// cannot be for a growth, at [`MOVES_PER_OP`]), it is finished first.
    fn migrate(&mut self, capacity: usize) {
        while self.growing() {
            self.step();
        }
        let next = HashMap::with_capacity_and_hasher(capacity, self.cur.hasher().clone());
        self.old = std::mem::replace(&mut self.cur, next);
        self.pending = self.old.keys().copied().collect();
    }

    /// Move a few entries of the old table.
    fn step(&mut self) {
        if !self.growing() {
            return;
        }
        for _ in 0..MOVES_PER_OP {
            let Some(k) = self.pending.pop() else {
                break;
            };
            if let Some(v) = self.old.remove(&k) {
                self.cur.insert(k, v);
            }
        }
        if self.pending.is_empty() {
            // every key moved or was removed: give the old table's memory back
            self.old = HashMap::with_hasher(self.cur.hasher().clone());
            self.pending = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_map_through_growths() {
        let mut m: GrowingMap<u64> = GrowingMap::with_capacity(4);
        let mut model = HashMap::new();
        let mut saw_growth = false;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = x % 5_000;
            if i % 3 == 2 {
                assert_eq!(m.remove(&k), model.remove(&k), "remove {k}");
            } else {
                assert_eq!(m.insert(k, i), model.insert(k, i), "insert {k}");
            }
            saw_growth |= m.growing();
            assert_eq!(m.len(), model.len());
            if i % 97 == 0 {
                for (k, v) in &model {
                    assert_eq!(m.get(k), Some(v));
                }
            }
        }
        assert!(saw_growth, "the test grew the map");
        assert!(!m.contains_key(&5_001));
    }

    #[test]
    fn an_emptied_table_shrinks_but_not_below_its_first_capacity() {
        let mut m: Shard<u64, RandomState> = Shard::with_capacity(100, 64);
        for k in 0..100_000u64 {
            m.insert(k, k);
        }
        let big = m.cur.capacity();
        for k in 0..99_990u64 {
            assert_eq!(m.remove(&k), Some(k));
        }
        while m.growing() {
            m.remove(&u64::MAX);
        }
        assert!(
            m.cur.capacity() * 32 < big,
            "shrank: {} of {big}",
            m.cur.capacity()
        );
        assert!(m.cur.capacity() >= 100);
        for k in 99_990..100_000u64 {
            assert_eq!(m.get(&k), Some(&k));
            *m.get_mut(&k).unwrap() += 1;
            assert_eq!(m.remove(&k), Some(k + 1));
        }
        assert_eq!(m.cur.capacity(), m.floor, "emptied: given back");
        let mut sized: Shard<u64, RandomState> = Shard::with_capacity(50_000, 64);
        let cap = sized.cur.capacity();
        sized.insert(1, 1);
        sized.remove(&1);
        assert_eq!(
            sized.cur.capacity(),
            cap,
            "kept the capacity it was made with"
        );
    }

    #[test]
    fn a_growth_ends_before_the_new_table_fills() {
        let mut m: Shard<u32, RandomState> = Shard::with_capacity(1000, 64);
        let cap = m.cur.capacity();
        for k in 0..cap as u64 {
            m.insert(k, 0);
        }
        assert!(!m.growing());
        m.insert(u64::MAX, 0);
        assert!(m.growing(), "the next insert starts a growth");
        let bigger = m.cur.capacity();
        let mut n = 0;
        while m.growing() {
            m.insert(1_000_000 + n, 0);
            n += 1;
        }
        assert_eq!(
            m.cur.capacity(),
            bigger,
            "no rehash of the new table meanwhile"
        );
        assert_eq!(m.len(), cap + 1 + n as usize);
        assert!(m.old.capacity() == 0, "old table freed");
    }

    #[test]
    fn shards_start_their_moves_one_at_a_time() {
        let mut m: GrowingMap<u32> = GrowingMap::with_capacity(64 * 2_000);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut starts = Vec::new();
        let mut moving = 0;
        for i in 0..400_000usize {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            m.insert(x, 0);
            let now = m.shards.iter().filter(|s| s.growing()).count();
            if now > moving {
                starts.extend(std::iter::repeat_n(i, now - moving));
            }
            moving = now;
        }
        assert_eq!(m.len(), 400_000);
        assert!(starts.len() >= 64, "{} moves", starts.len());
        // no more than a few shards start within any stretch of 1,000 inserts
        let crowded = starts.windows(5).filter(|w| w[4] - w[0] < 1_000).count();
        assert_eq!(crowded, 0, "moves started together: {starts:?}");
    }
}
