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

/// The deadline heap.
#[derive(Resource, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Time, TimerKind, u64)>>,
}

impl Timers {
    /// Arm a timer of `kind` for `key` at `at`.
    pub fn arm(&mut self, kind: TimerKind, key: u64, at: Time) {
        self.heap.push(Reverse((at, kind, key)));
    }

    /// The earliest armed deadline, if any (stale entries included: waking early is harmless).
    pub fn next_deadline(&self) -> Option<Time> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Number of entries, live or stale.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Pop every entry due at or before `now`, in deadline order.
    pub fn pop_due(&mut self, now: Time, out: &mut Vec<Due>) {
        while let Some(Reverse((at, kind, key))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            out.push(Due { kind, key, at });
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
    }
}
