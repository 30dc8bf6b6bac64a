//! Keyed hashing for the engine's tables: SipHash-1-3 (the hash `std`'s `RandomState` builds),
//! its keys derived from the caller's [`EngineConfig::hash_seed`](crate::EngineConfig) as time
//! comes from the caller. Each table derives its own keys from a constant of its own, so that
//! no two tables share keys and a peer who learns nothing of the seed cannot choose keys that
//! collide (hash flooding).

use std::hash::{BuildHasher, Hasher};

/// The SipHash keys of one table: a [`BuildHasher`] of [`SipHasher13`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashKeys {
    k0: u64,
    k1: u64,
}

impl HashKeys {
    /// The keys of the table named `table` (a constant of its own) under the engine's
    /// `hash_seed`: SipHash keyed by the seed, of the name, twice (a pseudo-random function of
    /// the seed, so that one table's keys tell nothing of another's).
    pub fn derive(hash_seed: u128, table: u64) -> HashKeys {
        let root = HashKeys {
            k0: hash_seed as u64,
            k1: (hash_seed >> 64) as u64,
        };
        let half = |n: u8| {
            let mut h = root.build_hasher();
            h.write_u64(table);
            h.write_u8(n);
            h.finish()
        };
        HashKeys {
            k0: half(0),
            k1: half(1),
        }
    }
}

impl BuildHasher for HashKeys {
    type Hasher = SipHasher13;

    #[inline]
    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.k0, self.k1)
    }
}

/// SipHash-1-3 (one mixing step per 8 bytes, three to finish) with 128-bit keys.
#[derive(Debug, Clone)]
pub struct SipHasher13 {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
    /// Bytes written that do not fill 8 yet, little-endian.
    tail: u64,
    ntail: usize,
    length: usize,
}

impl SipHasher13 {
    /// A hasher with keys `k0`, `k1`.
    #[inline]
    pub fn new_with_keys(k0: u64, k1: u64) -> SipHasher13 {
        SipHasher13 {
            v0: k0 ^ 0x736f_6d65_7073_6575,
            v1: k1 ^ 0x646f_7261_6e64_6f6d,
            v2: k0 ^ 0x6c79_6765_6e65_7261,
            v3: k1 ^ 0x7465_6462_7974_6573,
            tail: 0,
            ntail: 0,
            length: 0,
        }
    }

    /// SipHash's mixing step.
    #[inline]
    fn sip(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13) ^ self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16) ^ self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21) ^ self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17) ^ self.v2;
        self.v2 = self.v2.rotate_left(32);
    }

    #[inline]
    fn compress(&mut self, m: u64) {
        self.v3 ^= m;
        self.sip();
        self.v0 ^= m;
    }
}

/// Up to 8 bytes as a little-endian number.
#[inline]
fn le(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(b)
}

impl Hasher for SipHasher13 {
    #[inline]
    fn write(&mut self, msg: &[u8]) {
        self.length += msg.len();
        let mut msg = msg;
        if self.ntail != 0 {
            let fill = (8 - self.ntail).min(msg.len());
            self.tail |= le(&msg[..fill]) << (8 * self.ntail);
            self.ntail += fill;
            msg = &msg[fill..];
            if self.ntail < 8 {
                return;
            }
            self.compress(self.tail);
            self.ntail = 0;
        }
        let mut words = msg.chunks_exact(8);
        for w in &mut words {
            self.compress(le(w));
        }
        let rest = words.remainder();
        self.tail = le(rest);
        self.ntail = rest.len();
    }

    #[inline]
    fn finish(&self) -> u64 {
        let mut s = self.clone();
        let b = ((self.length as u64 & 0xff) << 56) | self.tail;
        s.compress(b);
        s.v2 ^= 0xff;
        s.sip();
        s.sip();
        s.sip();
        s.v0 ^ s.v1 ^ s.v2 ^ s.v3
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    /// `std`'s `DefaultHasher::new()` is SipHash-1-3 with both keys zero: ours must agree with
    /// it on every split of the input into writes.
    #[test]
    fn agrees_with_std_siphash_1_3() {
        let data: Vec<u8> = (0..80u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        for len in 0..data.len() {
            for split in [0, 1, 3, 7, 8, 9] {
                let (a, b) = data[..len].split_at(split.min(len));
                let mut std = std::hash::DefaultHasher::new();
                let mut ours = SipHasher13::new_with_keys(0, 0);
                for h in [&mut std as &mut dyn Hasher, &mut ours] {
                    h.write(a);
                    h.write_u8(0xff);
                    h.write(b);
                    h.write_u32(len as u32);
                }
                assert_eq!(ours.finish(), std.finish(), "len {len} split {split}");
            }
        }
        let mut std = std::hash::DefaultHasher::new();
        "alice@example.com".hash(&mut std);
        assert_eq!(
            HashKeys { k0: 0, k1: 0 }.hash_one("alice@example.com"),
            std.finish()
        );
    }

    #[test]
    fn tables_and_seeds_get_keys_of_their_own() {
        let a = HashKeys::derive(1, 10);
        assert_eq!(a, HashKeys::derive(1, 10));
        assert_ne!(a, HashKeys::derive(1, 11));
        assert_ne!(a, HashKeys::derive(2, 10));
        assert_ne!(a, HashKeys::derive(1 << 64, 10));
        assert_ne!(a.hash_one("x"), HashKeys::derive(2, 10).hash_one("x"));
    }
}
