//! Member URIs and display names, one string per distinct text however many lists name it: a
//! popular member's URI is stored once and is warm in cache when its change reaches the
//! thousands of list NOTIFYs that carry it.

use std::collections::HashSet;
use std::sync::Arc;

use crate::keyed_hash::HashKeys;

/// The strings lists hold now.
pub struct SharedNames {
    set: HashSet<Arc<str>, HashKeys>,
    /// Past this size, strings no list holds any more are let go (so the set stays bounded
    /// by the lists alive, at O(1) amortised per string).
    sweep_at: usize,
}

impl SharedNames {
    pub fn new(keys: HashKeys) -> SharedNames {
        SharedNames {
            set: HashSet::with_hasher(keys),
            sweep_at: 1024,
        }
    }

    /// The shared string equal to `s`.
    pub fn share(&mut self, s: &Arc<str>) -> Arc<str> {
        if let Some(k) = self.set.get(&**s) {
            return k.clone();
        }
        if self.set.len() >= self.sweep_at {
            self.set.retain(|k| Arc::strong_count(k) > 1);
            self.sweep_at = (2 * self.set.len()).max(1024);
        }
        self.set.insert(s.clone());
        s.clone()
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_share_one_string_and_unheld_ones_go() {
        let mut n = SharedNames::new(HashKeys::derive(1, 2));
        let a = n.share(&Arc::from("sip:alice@example.com"));
        let b = n.share(&Arc::from("sip:alice@example.com"));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(n.len(), 1);
        drop((a, b));
        // 1,100 strings each held by nobody but the set: the sweep at 1,024 lets them go
        for i in 0..1100 {
            n.share(&Arc::from(format!("sip:m{i}@example.com")));
        }
        assert!(n.len() < 100, "{} strings kept", n.len());
    }
}
