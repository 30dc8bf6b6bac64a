//! Subscriptions rebuilt from their records at start, and the NOTIFY of current state each
//! then gets (what changed while the server was down is repaired), paced.

use std::collections::VecDeque;

use bevy_ecs::prelude::*;

use crate::durable::{DurableConfig, DurableLog, Restored, kind, split_key};
use crate::subscription::dialog::{Dialog, DialogParts, LocalTag};
use crate::subscription::lifecycle::{Lifecycle, Since};
use crate::subscription::{
    DialogStore, NotifyFlow, NotifyQueue, Packages, Reason, SourceUri, SubState, Subscription,
    SubscriptionIndex,
};
use crate::time::{Clock, Time};
use crate::timers::{DueTimers, TimerKind, Timers};

use super::{DialogAliases, DurableSub, NO_SINCE, RestoredTag, Restoring, Stored, record_key};

/// CSeq numbers stay below 2^31 (RFC 3261 §8.1.1.5).
const MAX_CSEQ: u64 = (1 << 31) - 1;

/// Restored subscriptions waiting for their NOTIFY of current state, in order; a batch goes
/// every [`DurableConfig::restore_notify_every_ms`] (the [`TimerKind::RestoreNotify`] timer).
#[derive(Resource, Debug, Default)]
pub struct RestoreNotifies {
    waiting: VecDeque<Entity>,
}

impl RestoreNotifies {
    /// Subscriptions still waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

enum Outcome {
    Live,
    /// Expired or ending while the server was down: only its final NOTIFY is left to send.
    Ended,
    Unusable,
}

/// Rebuild the subscriptions among `records` (others are left alone), after the publications
/// (their presentities exist then). Those that expired or were ending are deleted and sent
/// their `terminated` NOTIFY; undecodable ones and those of packages not served are deleted.
/// Every restored subscription waits for its paced NOTIFY ([`release_restored`]).
pub fn restore(world: &mut World, records: &[(u64, Vec<u8>)], done: &mut Restored) {
    let mut found: Vec<(u64, &[u8])> = records
        .iter()
        .filter_map(|(key, value)| match split_key(*key) {
            (kind::SUBSCRIPTION, id) => Some((id, value.as_slice())),
            _ => None,
        })
        .collect();
    if found.is_empty() {
        return;
    }
    found.sort_unstable_by_key(|&(id, _)| id);
    world.init_resource::<DialogAliases>();
    world.init_resource::<RestoreNotifies>();
    let mut gone = Vec::new();
    for (id, bytes) in found {
        world.resource_mut::<DurableLog>().reserve(id);
        let outcome = match Stored::decode(bytes) {
            Some(stored) => restore_one(world, id, &stored),
            None => Outcome::Unusable,
        };
        match outcome {
            Outcome::Live => done.subscriptions += 1,
            Outcome::Ended => {
                done.subscriptions_expired += 1;
                gone.push(id);
            }
            Outcome::Unusable => {
                done.unreadable += 1;
                gone.push(id);
            }
        }
    }
    let mut log = world.resource_mut::<DurableLog>();
    for id in gone {
        log.delete(record_key(id));
    }
    if !world.resource::<RestoreNotifies>().is_empty() {
        let now = world.resource::<Clock>().now;
        world
            .resource_mut::<Timers>()
            .arm(TimerKind::RestoreNotify, 0, now);
    }
}

fn restore_one(world: &mut World, id: u64, stored: &Stored<'_>) -> Outcome {
    let Some((package, hooks)) = world
        .resource::<Packages>()
        .by_label(stored.package)
        .and_then(|(id, spec)| Some((id, spec.durable?)))
    else {
        return Outcome::Unusable;
    };
    let Some((bits, mix)) = LocalTag::parse(stored.tag) else {
        return Outcome::Unusable;
    };
    let clock = *world.resource::<Clock>();
    let now_ms = clock.unix_at_zero_ms + clock.now.0 as i64;
    let at = |ms: i64| Time(clock.now.0.saturating_add_signed(ms - now_ms));
    // The local CSeq is kept only when the record is written, not per NOTIFY. A dialog has at
    // most one NOTIFY in flight, so it sends fewer than one per millisecond; the record is
    // rewritten at every refresh, so the gap is bounded by the expiry. Moving on by the
    // milliseconds since the write, plus one, passes every CSeq sent before.
    let elapsed = now_ms.saturating_sub(stored.written_ms).max(0) as u64;
    let local_cseq = (stored.local_cseq as u64)
        .saturating_add(elapsed)
        .saturating_add(1)
        .min(MAX_CSEQ) as u32;
    let ending = match stored.state {
        SubState::Terminating(reason) => Some(reason),
        _ if stored.expires_ms <= now_ms => Some(Some(Reason::Timeout)),
        _ => None,
    };
    let state = ending.map_or(stored.state, SubState::Terminating);
    let sub = world.spawn_empty().id();
    world.entity_mut(sub).insert(Subscription {
        expires_at: at(stored.expires_ms),
        source: sub,
        package,
        state,
        flow: NotifyFlow {
            dirty: true,
            held: true,
            ..Default::default()
        },
        dialog: Dialog::none(),
    });
    // an ended one is not re-attached: its final NOTIFY carries no state
    if ending.is_none() {
        let r = Restoring {
            state,
            notifies_skipped: local_cseq.saturating_sub(stored.local_cseq),
        };
        if (hooks.restore)(world, sub, stored.package_part, &r).is_none() {
            world.despawn(sub);
            return Outcome::Unusable;
        }
    }
    let source = world.get::<Subscription>(sub).expect("spawned").source;
    let mut dialog = world.resource_scope(|world, mut store: Mut<DialogStore>| {
        Dialog::new(
            &DialogParts {
                call_id: stored.call_id,
                local: stored.local,
                remote: stored.remote,
                remote_target: stored.remote_target,
                event_id: stored.event_id,
                route_set: &stored.route_set,
            },
            stored.remote_cseq,
            stored.dest,
            world.get::<SourceUri>(source).map(|u| &*u.0),
            &mut store,
        )
    });
    dialog.local_cseq = local_cseq;
    world.get_mut::<Subscription>(sub).expect("spawned").dialog = dialog;
    world.entity_mut(sub).insert(RestoredTag { bits, mix });
    world
        .resource_mut::<DialogAliases>()
        .0
        .insert((bits, mix), sub);
    let watcher = world
        .resource::<SubscriptionIndex>()
        .watcher_key_of_from(stored.remote);
    world.resource_mut::<SubscriptionIndex>().add(watcher);
    world
        .resource_mut::<RestoreNotifies>()
        .waiting
        .push_back(sub);
    if ending.is_some() {
        return Outcome::Ended;
    }
    world.entity_mut(sub).insert(DurableSub(id));
    let listening = world
        .get_resource::<Lifecycle>()
        .is_some_and(|l| l.listening);
    if listening && stored.since_ms != NO_SINCE {
        world.entity_mut(sub).insert(Since(at(stored.since_ms)));
    }
    world.resource_mut::<Timers>().arm(
        TimerKind::SubscriptionExpiry,
        sub.index_u32() as u64,
        at(stored.expires_ms),
    );
    Outcome::Live
}

/// Release the next batch of restored subscriptions when its timer is due: each sends its
/// NOTIFY this tick, with its current state. One refreshed meanwhile was released then.
pub fn release_restored(
    mut restored: ResMut<RestoreNotifies>,
    due: Res<DueTimers>,
    clock: Res<Clock>,
    config: Option<Res<DurableConfig>>,
    mut subs: Query<&mut Subscription>,
    mut queue: ResMut<NotifyQueue>,
    mut timers: ResMut<Timers>,
) {
    if restored.waiting.is_empty() || due.of(TimerKind::RestoreNotify).next().is_none() {
        return;
    }
    let config = config.map_or_else(DurableConfig::default, |c| *c);
    let mut released = 0;
    while released < config.restore_notify_batch.max(1) {
        let Some(e) = restored.waiting.pop_front() else {
            break;
        };
        let Ok(mut s) = subs.get_mut(e) else {
            continue;
        };
        if !s.flow.held {
            continue;
        }
        s.flow.held = false;
        queue.touch(e, &mut s);
        released += 1;
    }
    if restored.waiting.is_empty() {
        // a million restored watchers leave no million-entry buffer behind
        restored.waiting = VecDeque::new();
    } else {
        let next = clock.now.plus_ms(config.restore_notify_every_ms.max(1));
        timers.arm(TimerKind::RestoreNotify, 0, next);
    }
}
