//! Presence entities and the indexes that find them in O(1).

use std::collections::HashMap;

use bevy_ecs::entity::{Entities, EntityIndex};
use bevy_ecs::prelude::*;

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
    pub publications: Vec<Entity>,
    /// Subscriptions watching it.
    pub watchers: Watchers,
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

/// Marker: the presentity's sources changed this tick; recompose.
#[derive(Component, Debug)]
#[component(storage = "SparseSet")]
pub struct Recompose;

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

impl Publication {
    /// Heap bytes the publication holds besides its document (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        0
    }
}

/// Entity tag number `n` as written in SIP-ETag: the engine seed's low 32 bits, then `n` with
/// at least six digits, both in lowercase hex.
pub fn etag_text(seed: u64, n: u64) -> String {
    format!("{:x}{:06x}", seed & 0xffff_ffff, n)
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
    pub presentities: HashMap<Box<str>, Entity>,
    /// Entity tag number -> publication.
    pub etags: HashMap<u64, Entity>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_numbers_round_trip() {
        for seed in [0u64, 1, 0xabc, 0xffff_ffff, 0x1234_5678_9abc_def0] {
            for n in [0u64, 1, 0xfffff, 0x1000000, 0x1234_5678_9abc, u64::MAX] {
                assert_eq!(etag_number(seed, &etag_text(seed, n)), Some(n), "{seed} {n}");
            }
        }
        assert_eq!(etag_text(1, 5), "1000005");
        for bad in ["", "1", "100005", "10000005", "1000x05", "1ABCDEF", "2000005", "1-00005"] {
            assert_eq!(etag_number(1, bad), None, "{bad}");
        }
    }
}
