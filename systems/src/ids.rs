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

    /// A fresh modification order number.
    pub fn seq(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}
