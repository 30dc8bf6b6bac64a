//! One deadline table for every timer kind in the engine (after quinn-proto's `timer.rs`):
//! systems arm timers, the engine asks [`Timers::next_deadline`] to know when to wake, and each
//! tick the `timers` system moves what is due into [`DueTimers`] for the owning system.
//!
//! Cancelling is lazy: an owner that re-arms or forgets a timer leaves the old entry in the heap
//! and ignores it when it fires (it checks its own state). Idle entities therefore cost nothing
//! per tick, and arming costs O(log n).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use bevy_ecs::prelude::*;

use crate::time::{Clock, Time};

/// What a timer is for. The payload is a key the owning system understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// RFC 3261 §17.1.2.2 Timer E: retransmit a non-INVITE request over UDP.
    ClientTxRetransmit,
    /// RFC 3261 §17.1.2.2 Timer F (and Timer K): client transaction timeout / linger end.
    ClientTxTimeout,
    /// A publication reached its expiry (RFC 3903 §6).
    PublicationExpiry,
    /// A subscription reached its expiry (RFC 6665 §4.2.2).
    SubscriptionExpiry,
}

/// A timer that fired: its kind and the owner's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub kind: TimerKind,
    pub key: u64,
    pub at: Time,
}

/// Bits of an entry's first word that hold the kind (below the deadline).
const KIND_BITS: u32 = 2;
const KINDS: [TimerKind; 4] = [
    TimerKind::ClientTxRetransmit,
    TimerKind::ClientTxTimeout,
    TimerKind::PublicationExpiry,
    TimerKind::SubscriptionExpiry,
];
/// Latest deadline an entry can hold (about 36 million years of milliseconds); later ones
/// (a saturated `Time`) are clamped to it.
const MAX_AT: u64 = u64::MAX >> KIND_BITS;

/// The deadline heap. An entry is 16 bytes, the deadline and kind packed in one word (there is
/// one entry per subscription and publication: at a million of them the width counts).
#[derive(Resource, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(u64, u64)>>,
}

impl Timers {
    /// Arm a timer of `kind` for `key` at `at`.
    pub fn arm(&mut self, kind: TimerKind, key: u64, at: Time) {
        let word = (at.0.min(MAX_AT) << KIND_BITS) | kind as u64;
        self.heap.push(Reverse((word, key)));
    }

    fn at(word: u64) -> Time {
        Time(word >> KIND_BITS)
    }

    /// The earliest armed deadline, if any (stale entries included: waking early is harmless).
    pub fn next_deadline(&self) -> Option<Time> {
        self.heap.peek().map(|Reverse((w, _))| Self::at(*w))
    }

    /// Number of entries, live or stale.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Entries the heap has room for (its memory is 16 bytes each).
    pub fn capacity(&self) -> usize {
        self.heap.capacity()
    }

    /// True when no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Pop every entry due at or before `now`, in deadline order.
    pub fn pop_due(&mut self, now: Time, out: &mut Vec<Due>) {
        while let Some(Reverse((word, key))) = self.heap.peek().copied() {
            let at = Self::at(word);
            if at > now {
                break;
            }
            self.heap.pop();
            let kind = KINDS[(word & ((1 << KIND_BITS) - 1)) as usize];
            out.push(Due { kind, key, at });
        }
        // A burst (a NOTIFY per subscription, each leaving its Timer E and F entries) must not
        // keep its peak capacity for ever: shrink once less than half is used.
        let len = self.heap.len();
        if self.heap.capacity() > 2 * len + 4096 {
            self.heap.shrink_to(len + len / 4);
        }
    }
}

/// Timers that fired this tick, for their owners to take by kind.
#[derive(Resource, Default)]
pub struct DueTimers {
    pub due: Vec<Due>,
}

impl DueTimers {
    /// The keys of the due timers of one kind.
    pub fn of(&self, kind: TimerKind) -> impl Iterator<Item = &Due> {
        self.due.iter().filter(move |d| d.kind == kind)
    }
}

/// First system of a tick: collects the due timers.
pub fn collect_due_timers(
    clock: Res<Clock>,
    mut timers: ResMut<Timers>,
    mut due: ResMut<DueTimers>,
) {
    due.due.clear();
    timers.pop_due(clock.now, &mut due.due);
    // after a burst (every NOTIFY's Timer F at once) the list keeps no peak capacity
    let len = due.due.len();
    if due.due.capacity() > 2 * len + 4096 {
        due.due.shrink_to(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_deadline_order_and_only_due() {
        let mut t = Timers::default();
        t.arm(TimerKind::SubscriptionExpiry, 3, Time(300));
        t.arm(TimerKind::PublicationExpiry, 1, Time(100));
        t.arm(TimerKind::ClientTxTimeout, 2, Time(200));
        assert_eq!(t.next_deadline(), Some(Time(100)));
        let mut out = Vec::new();
        t.pop_due(Time(250), &mut out);
        assert_eq!(out.iter().map(|d| d.key).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(t.next_deadline(), Some(Time(300)));
        // kinds survive the packing; a saturated deadline is clamped, not wrapped
        t.arm(TimerKind::ClientTxRetransmit, 4, Time(u64::MAX));
        out.clear();
        t.pop_due(Time(300), &mut out);
        assert_eq!(out[0].kind, TimerKind::SubscriptionExpiry);
        assert_eq!(t.next_deadline(), Some(Time(MAX_AT)));
        for (i, k) in KINDS.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
    }
}
