//! A hash map of `u64` keys that grows a little at a time.
//!
//! A table that rehashes every entry at once stalls every request behind it (hundreds of ms at
//! a few million entries), so this map moves to a table twice the size over the next inserts
//! and removes, a few entries each, with lookups trying both tables meanwhile. The scan for the
//! keys to move is still whole-table, so the map is split in [`SHARDS`] tables by a mix of the
//! key, each starting its move at its own fill level: one shard, a sixty-fourth of the scan, at
//! a time. A table emptied to an eighth shrinks the same way (never below the capacity it was
//! made with), so a burst's memory goes back.
//!
//! Keys are keyed hashes already (uniform, unpredictable to a peer) and values fit in 64 bits
//! ([`Packed`]): each table keeps key and value side by side and probes linearly ([`Table`]),
//! so finding a key, or the free slot for a new one, reads one cache line. The measurements
//! behind this are in docs/performance.md.

/// Entries moved to the new table per insert or remove while the map grows: enough to finish
/// before the new table (twice the old capacity) fills with the inserts made meanwhile.
const MOVES_PER_OP: usize = 8;

/// A value a [`GrowingMap`] holds, kept as 64 bits beside its key.
pub trait Packed: Copy {
    fn pack(self) -> u64;
    fn unpack(bits: u64) -> Self;
}

impl Packed for u64 {
    fn pack(self) -> u64 {
        self
    }
    fn unpack(bits: u64) -> u64 {
        bits
    }
}

impl Packed for bevy_ecs::entity::Entity {
    fn pack(self) -> u64 {
        self.to_bits()
    }
    fn unpack(bits: u64) -> Self {
        bevy_ecs::entity::Entity::from_bits(bits)
    }
}

/// Tables a map is split in.
pub const SHARDS: usize = 64;

/// A map of `u64` keys that grows and shrinks without a pause (see the module documentation).
#[derive(Debug)]
pub struct GrowingMap<V> {
    shards: Box<[Shard]>,
    len: usize,
    values: std::marker::PhantomData<V>,
}

impl<V: Packed> Default for GrowingMap<V> {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl<V: Packed> GrowingMap<V> {
    /// A map with room for `capacity` entries from the start.
    pub fn with_capacity(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS);
        let shards = (0..SHARDS)
            // shard i starts to move at (32 + i/2)/64 of its capacity: spread over a doubling
            .map(|i| Shard::with_capacity(per_shard, 32 + i / 2))
            .collect();
        GrowingMap {
            shards,
            len: 0,
            values: std::marker::PhantomData,
        }
    }

    fn shard(key: u64) -> usize {
        // the top bits of a multiplicative mix: independent of the bits a shard's table uses
        // (see `Table::home`)
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, key: &u64) -> Option<V> {
        self.shards[Self::shard(*key)].get(*key).map(V::unpack)
    }

    pub fn contains_key(&self, key: &u64) -> bool {
        self.get(key).is_some()
    }

    pub fn insert(&mut self, key: u64, value: V) -> Option<V> {
        let before = self.shards[Self::shard(key)].insert(key, value.pack());
        self.len += usize::from(before.is_none());
        before.map(V::unpack)
    }

    pub fn remove(&mut self, key: &u64) -> Option<V> {
        let removed = self.shards[Self::shard(*key)].remove(*key);
        self.len -= usize::from(removed.is_some());
        removed.map(V::unpack)
    }

    /// Remove `key` when its value is `value` (an entry another owner has taken over since
    /// stays).
    pub fn remove_if_eq(&mut self, key: &u64, value: V) -> Option<V>
    where
        V: PartialEq,
    {
        if self.get(key) == Some(value) {
            self.remove(key)
        } else {
            None
        }
    }

    /// True while some shard is moving to another table.
    pub fn growing(&self) -> bool {
        self.shards.iter().any(Shard::growing)
    }
}

/// An open-addressing table of `u64` keys and packed values, side by side, probed linearly;
/// removal shifts the entries behind back (no tombstones). Key 0 marks a free slot, so the
/// entry of key 0 is kept aside.
#[derive(Debug, Default)]
struct Table {
    /// `[key, value]`; a power of two of them, or none.
    slots: Vec<[u64; 2]>,
    /// log2 of the slot count, as the shift that takes a mixed key to its home slot.
    shift: u32,
    zero: Option<u64>,
    len: usize,
}

impl Table {
    /// A table that holds `capacity` entries before it is full.
    fn with_capacity(capacity: usize) -> Table {
        if capacity == 0 {
            return Table::default();
        }
        // full at 3/4 of the slots: a free slot is then at most a couple of cache lines away
        let n = (capacity * 4).div_ceil(3).next_power_of_two().max(8);
        Table {
            slots: vec![[0; 2]; n],
            shift: 64 - n.trailing_zeros(),
            zero: None,
            len: 0,
        }
    }

    /// Entries it holds before it is full.
    fn capacity(&self) -> usize {
        self.slots.len() / 4 * 3
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Where `key` would be without collisions: a mix of all its bits (the shard of a key is
    /// taken from the top of another mix, see `GrowingMap::shard`).
    fn home(&self, key: u64) -> usize {
        ((key ^ (key >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) >> self.shift) as usize
    }

    /// The slot of `key`, or the free slot where it would go.
    fn probe(&self, key: u64) -> (usize, bool) {
        let mask = self.mask();
        let mut i = self.home(key);
        loop {
            let k = self.slots[i][0];
            if k == key {
                return (i, true);
            }
            if k == 0 {
                return (i, false);
            }
            i = (i + 1) & mask;
        }
    }

    fn get(&self, key: u64) -> Option<u64> {
        if key == 0 {
            return self.zero;
        }
        if self.len == 0 {
            return None;
        }
        match self.probe(key) {
            (i, true) => Some(self.slots[i][1]),
            _ => None,
        }
    }

    fn insert(&mut self, key: u64, value: u64) -> Option<u64> {
        if key == 0 {
            let before = self.zero.replace(value);
            self.len += usize::from(before.is_none());
            return before;
        }
        if self.len + 1 > self.capacity() {
            // the map moves tables before this happens; a table used on its own rehashes
            self.rehash((self.capacity() * 2).max(8));
        }
        let (i, found) = self.probe(key);
        if found {
            return Some(std::mem::replace(&mut self.slots[i][1], value));
        }
        self.slots[i] = [key, value];
        self.len += 1;
        None
    }

    fn remove(&mut self, key: u64) -> Option<u64> {
        if key == 0 {
            let before = self.zero.take();
            self.len -= usize::from(before.is_some());
            return before;
        }
        if self.len == 0 {
            return None;
        }
        let (mut hole, true) = self.probe(key) else {
            return None;
        };
        let value = self.slots[hole][1];
        self.len -= 1;
        // shift back the entries of the run that may no longer be found past the hole: an
        // entry moves into it unless its home lies cyclically after the hole
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let k = self.slots[j][0];
            if k == 0 {
                break;
            }
            let home = self.home(k);
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.slots[hole] = self.slots[j];
                hole = j;
            }
        }
        self.slots[hole] = [0; 2];
        Some(value)
    }

    fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.zero
            .map(|_| 0)
            .into_iter()
            .chain(self.slots.iter().map(|s| s[0]).filter(|&k| k != 0))
    }

    /// Move every entry to a table for `capacity` (at once: only for a table on its own).
    fn rehash(&mut self, capacity: usize) {
        let mut next = Table::with_capacity(capacity);
        next.zero = self.zero;
        next.len = usize::from(self.zero.is_some());
        for s in &self.slots {
            if s[0] != 0 {
                next.insert(s[0], s[1]);
            }
        }
        *self = next;
    }
}

/// One table of a [`GrowingMap`], moving a few entries per operation while it grows or shrinks.
#[derive(Debug)]
struct Shard {
    cur: Table,
    /// The previous table, being emptied into `cur`.
    old: Table,
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

impl Shard {
    fn with_capacity(capacity: usize, grow_at: usize) -> Self {
        let cur = Table::with_capacity(capacity);
        Shard {
            floor: cur.capacity(),
            cur,
            old: Table::default(),
            pending: Vec::new(),
            grow_at,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.cur.len() + self.old.len()
    }

    fn get(&self, key: u64) -> Option<u64> {
        self.cur.get(key).or_else(|| self.old.get(key))
    }

    fn insert(&mut self, key: u64, value: u64) -> Option<u64> {
        self.step();
        let cap = self.cur.capacity();
        if self.cur.len() * 64 >= cap * self.grow_at {
            self.grow();
        }
        let before = self.old.remove(key);
        self.cur.insert(key, value).or(before)
    }

    fn remove(&mut self, key: u64) -> Option<u64> {
        self.step();
        let removed = self.cur.remove(key).or_else(|| self.old.remove(key));
        let cap = self.cur.capacity();
        if removed.is_none() || self.growing() || cap <= self.floor {
            return removed;
        }
        if self.cur.is_empty() && cap > KEEP_WHEN_EMPTY {
            // nothing to move: give the table back at once
            self.cur = Table::with_capacity(self.floor);
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
        let next = Table::with_capacity(capacity);
        self.old = std::mem::replace(&mut self.cur, next);
        self.pending = self.old.keys().collect();
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
            if let Some(v) = self.old.remove(k) {
                self.cur.insert(k, v);
            }
        }
        if self.pending.is_empty() {
            // every key moved or was removed: give the old table's memory back
            self.old = Table::default();
            self.pending = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The next number of a xorshift sequence (keys for the tests).
    fn next(x: &mut u64) {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
    }

    #[test]
    fn behaves_like_a_map_through_growths() {
        let mut m: GrowingMap<u64> = GrowingMap::with_capacity(4);
        let mut model = HashMap::new();
        let mut saw_growth = false;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..20_000u64 {
            next(&mut x);
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
                    assert_eq!(m.get(k), Some(*v));
                }
            }
        }
        assert!(saw_growth, "the test grew the map");
        assert!(!m.contains_key(&5_001));
    }

    #[test]
    fn an_emptied_table_shrinks_but_not_below_its_first_capacity() {
        let mut m = Shard::with_capacity(100, 64);
        for k in 0..100_000u64 {
            m.insert(k, k);
        }
        let big = m.cur.capacity();
        for k in 0..99_990u64 {
            assert_eq!(m.remove(k), Some(k));
        }
        while m.growing() {
            m.remove(u64::MAX);
        }
        assert!(
            m.cur.capacity() * 32 < big,
            "shrank: {} of {big}",
            m.cur.capacity()
        );
        assert!(m.cur.capacity() >= 100);
        for k in 99_990..100_000u64 {
            assert_eq!(m.get(k), Some(k));
            assert_eq!(m.insert(k, k + 1), Some(k));
            assert_eq!(m.remove(k), Some(k + 1));
        }
        assert_eq!(m.cur.capacity(), m.floor, "emptied: given back");
        let mut sized = Shard::with_capacity(50_000, 64);
        let cap = sized.cur.capacity();
        sized.insert(1, 1);
        sized.remove(1);
        assert_eq!(
            sized.cur.capacity(),
            cap,
            "kept the capacity it was made with"
        );
    }

    #[test]
    fn a_growth_ends_before_the_new_table_fills() {
        let mut m = Shard::with_capacity(1000, 64);
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
        assert!(m.old.slots.is_empty(), "old table freed");
    }

    #[test]
    fn shards_start_their_moves_one_at_a_time() {
        let mut m: GrowingMap<u64> = GrowingMap::with_capacity(64 * 2_000);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut starts = Vec::new();
        let mut moving = 0;
        for i in 0..400_000usize {
            next(&mut x);
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

    /// Runs that wrap around the end of the slots, keys sharing a home slot, key 0 and
    /// removals in the middle of runs: every key stays findable, as in a model map.
    #[test]
    fn a_table_keeps_every_key_findable_through_removals() {
        let mut t = Table::with_capacity(12);
        assert_eq!(t.slots.len(), 16);
        let mut model = HashMap::new();
        let mut x = 0x853c_49e6_748f_ea9bu64;
        for i in 0..200_000u64 {
            next(&mut x);
            // few distinct keys, so that runs are long and most operations hit a present key
            let k = x % 24;
            if x >> 60 < 7 {
                assert_eq!(t.remove(k), model.remove(&k), "remove {k} at {i}");
            } else if model.len() < 12 || model.contains_key(&k) {
                assert_eq!(t.insert(k, i), model.insert(k, i), "insert {k} at {i}");
            }
            assert_eq!(t.len(), model.len());
            for k in 0..24 {
                assert_eq!(t.get(k), model.get(&k).copied(), "get {k} at {i}");
            }
        }
        // on its own, a full table rehashes into a bigger one
        let mut own = Table::default();
        for k in 0..1000u64 {
            own.insert(k * 7919, k);
        }
        assert!((0..1000u64).all(|k| own.get(k * 7919) == Some(k)));
        assert_eq!(own.keys().count(), 1000);
    }
}
