//! One deadline table for every timer kind in the engine (after quinn-proto's `timer.rs`):
//! systems arm timers, the engine asks [`Timers::next_deadline`] to know when to wake, and each
//! tick the `timers` system moves what is due into [`DueTimers`] for the owning system.
//!
//! Cancelling is lazy: an owner that re-arms or forgets a timer leaves the old entry in the heap
//! and ignores it when it fires (it checks its own state). Idle entities therefore cost nothing
//! per tick, and arming costs O(log n).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

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
    /// A list subscription's NOTIFY held back by its minimum interval may go (RFC 4662 §4.6);
    /// the key is the subscription entity's bits.
    ListNotify,
    /// A back-end subscription of ours to another domain is due for a refresh; the key is the
    /// back-end entity's bits.
    BackEndRefresh,
    /// A publication's change held by the publish throttle may be shown; the key is the
    /// publication entity's bits.
    PublishThrottle,
    /// The next batch of restored subscriptions may send their NOTIFY (key unused).
    RestoreNotify,
}

/// A timer that fired: its kind and the owner's key. For [`TimerKind::SubscriptionExpiry`] only
/// the low 32 bits of the key are kept (the subscription arms it with its entity's index; the
/// owner resolves the entity now at that index and checks its own state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub kind: TimerKind,
    pub key: u64,
    pub at: Time,
}

/// Bits of an entry's first word that hold the kind (below the deadline).
const KIND_BITS: u32 = 3;
const KINDS: [TimerKind; 8] = [
    TimerKind::ClientTxRetransmit,
    TimerKind::ClientTxTimeout,
    TimerKind::PublicationExpiry,
    TimerKind::SubscriptionExpiry,
    TimerKind::ListNotify,
    TimerKind::BackEndRefresh,
    TimerKind::PublishThrottle,
    TimerKind::RestoreNotify,
];
/// Largest unsorted expiry bucket [`Timers::next_deadline`] scans for its exact minimum.
const SCAN_MAX: usize = 64;
/// Latest deadline an entry can hold (about 36 million years of milliseconds); later ones
/// (a saturated `Time`) are clamped to it.
const MAX_AT: u64 = u64::MAX >> KIND_BITS;

/// The deadline heap, and subscription expiries by second. A heap entry is 16 bytes, the
/// deadline and kind packed in one word. Subscription expiries (one per subscription: at a
/// million of them the width counts) sit in per-second buckets of 8-byte entries, the
/// millisecond beside the key's low 32 bits; a bucket is sorted once, when its second comes,
/// and then popped exactly like the heap.
#[derive(Resource, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    /// Second -> entries `ms << 32 | key` (ms within the second).
    expiries: BTreeMap<u64, Vec<u64>>,
    /// The second whose bucket is sorted, latest entry first (popped from the end).
    sorted: Option<u64>,
}

impl Timers {
    /// Arm a timer of `kind` for `key` at `at`.
    pub fn arm(&mut self, kind: TimerKind, key: u64, at: Time) {
        if kind == TimerKind::SubscriptionExpiry {
            let at = at.0.min(MAX_AT);
            let (sec, ms) = (at / 1000, at % 1000);
            let entry = (ms << 32) | (key & u32::MAX as u64);
            let bucket = self.expiries.entry(sec).or_default();
            if self.sorted == Some(sec) {
                // keep the current second's order (descending): an entry due later goes first
                let i = bucket.partition_point(|&e| e >> 32 > ms);
                bucket.insert(i, entry);
            } else {
                bucket.push(entry);
            }
            return;
        }
        let word = (at.0.min(MAX_AT) << KIND_BITS) | kind as u64;
        self.heap.push(Reverse((word, key)));
    }

    /// The earliest subscription expiry, if before `before` (a scan of a small unsorted bucket
    /// only when its second could come first; a large one answers the start of its second).
    fn next_expiry(&self, before: Option<Time>) -> Option<Time> {
        let (&sec, bucket) = self.expiries.first_key_value()?;
        if before.is_some_and(|b| b.0 <= sec * 1000) {
            return None;
        }
        let ms = if self.sorted == Some(sec) {
            bucket.last().map_or(0, |&e| e >> 32)
        } else if bucket.len() <= SCAN_MAX {
            bucket.iter().map(|&e| e >> 32).min().unwrap_or(0)
        } else {
            // the start of its second: one early wake-up sorts the bucket
            0
        };
        Some(Time(sec * 1000 + ms))
    }

    fn at(word: u64) -> Time {
        Time(word >> KIND_BITS)
    }

    /// The earliest armed deadline, if any (stale entries included: waking early is harmless).
    pub fn next_deadline(&self) -> Option<Time> {
        let heap = self.heap.peek().map(|Reverse((w, _))| Self::at(*w));
        match (heap, self.next_expiry(heap)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Number of entries, live or stale.
    pub fn len(&self) -> usize {
        self.heap.len() + self.expiries.values().map(Vec::len).sum::<usize>()
    }

    /// Bytes held: the heap's capacity, the buckets' capacities and their map entries
    /// (about 48 bytes each: key, vector, B-tree node share).
    pub fn bytes(&self) -> usize {
        self.heap.capacity() * 16
            + self
                .expiries
                .values()
                .map(|b| b.capacity() * 8 + 48)
                .sum::<usize>()
    }

    /// True when no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty() && self.expiries.is_empty()
    }

    /// Pop every entry due at or before `now`: heap timers in deadline order, then subscription
    /// expiries in deadline order (consumers take them by kind, `DueTimers::of`).
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
        self.pop_expiries(now, out);
        // A burst (a NOTIFY per subscription, each leaving its Timer E and F entries) must not
        // keep its peak capacity for ever: shrink once less than half is used.
        let len = self.heap.len();
        if self.heap.capacity() > 2 * len + 4096 {
            self.heap.shrink_to(len + len / 4);
        }
    }
}

impl Timers {
    /// Pop the subscription expiries due at or before `now`, in deadline order.
    fn pop_expiries(&mut self, now: Time, out: &mut Vec<Due>) {
        let (now_sec, now_ms) = (now.0 / 1000, now.0 % 1000);
        while let Some(mut first) = self.expiries.first_entry() {
            let sec = *first.key();
            if sec > now_sec {
                break;
            }
            let bucket = first.get_mut();
            if self.sorted != Some(sec) {
                bucket.sort_unstable_by(|a, b| b.cmp(a));
                self.sorted = Some(sec);
            }
            while let Some(&e) = bucket.last() {
                let ms = e >> 32;
                if sec == now_sec && ms > now_ms {
                    break;
                }
                bucket.pop();
                out.push(Due {
                    kind: TimerKind::SubscriptionExpiry,
                    key: e & u32::MAX as u64,
                    at: Time(sec * 1000 + ms),
                });
            }
            if !bucket.is_empty() {
                break;
            }
            first.remove();
            self.sorted = None;
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

    #[test]
    fn subscription_expiries_pop_exactly_and_in_order() {
        let mut t = Timers::default();
        let sub = |t: &mut Timers, key: u64, at: u64| {
            t.arm(TimerKind::SubscriptionExpiry, key | 7 << 32, Time(at))
        };
        sub(&mut t, 1, 5_700);
        sub(&mut t, 2, 5_200);
        sub(&mut t, 3, 7_000);
        t.arm(TimerKind::ClientTxTimeout, 9, Time(5_500));
        assert_eq!(t.next_deadline(), Some(Time(5_200)));
        let mut out = Vec::new();
        t.pop_due(Time(5_000), &mut out);
        assert!(out.is_empty());
        assert_eq!(t.next_deadline(), Some(Time(5_200)));
        // armed into the current second: kept in order
        sub(&mut t, 4, 5_300);
        t.pop_due(Time(5_600), &mut out);
        let got: Vec<(TimerKind, u64, u64)> = out.iter().map(|d| (d.kind, d.key, d.at.0)).collect();
        assert_eq!(
            got,
            vec![
                (TimerKind::ClientTxTimeout, 9, 5_500),
                (TimerKind::SubscriptionExpiry, 2, 5_200),
                (TimerKind::SubscriptionExpiry, 4, 5_300),
            ]
        );
        out.clear();
        t.pop_due(Time(10_000), &mut out);
        assert_eq!(out.iter().map(|d| d.key).collect::<Vec<_>>(), vec![1, 3]);
        assert!(t.is_empty());
        // a large unsorted bucket answers its second's start, then its exact minimum
        for k in 0..(SCAN_MAX as u64 + 1) {
            sub(&mut t, k, 20_500 + k);
        }
        assert_eq!(t.next_deadline(), Some(Time(20_000)));
        out.clear();
        t.pop_due(Time(20_000), &mut out);
        assert!(out.is_empty());
        assert_eq!(t.next_deadline(), Some(Time(20_500)));
    }
}
