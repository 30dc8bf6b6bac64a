//! Generators of entity tags, dialog tags and modification order (seeded, no clock).

use bevy_ecs::prelude::Resource;

/// Unique tokens and sequence numbers for this run.
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

    /// 64 pseudo-random bits from the seed and the counter (SplitMix64): for tags that must not
    /// be guessable from each other (RFC 3261 §19.3) without a random source in the engine.
    pub fn random(&mut self, seed: u64) -> u64 {
        self.next += 1;
        let mut z = seed.wrapping_add(self.next.wrapping_mul(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }

    /// A fresh modification order number.
    pub fn seq(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}
