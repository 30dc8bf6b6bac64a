//! Sending NOTIFYs, acting on their answers, and subscription expiry.

use bevy_ecs::entity::{Entities, EntityIndex};
use bevy_ecs::prelude::*;

use crate::net::Outbound;
use crate::sip::Method;
use crate::time::Clock;
use crate::timers::{DueTimers, TimerKind};
use crate::transaction::{ClientOutcomes, Outcome, Owner, Requester};

use super::dialog::{DialogStore, NotifyParts, SubscriptionStateHeader, local_tag};
use super::{
    Content, NotifyQueue, Packages, Reason, SourceUri, SubState, Subscription, SubscriptionIndex,
};

/// Send a NOTIFY for every queued subscription that is ready (dirty, none in flight).
#[allow(clippy::too_many_arguments)]
pub fn send_notifies(
    mut queue: ResMut<NotifyQueue>,
    mut subs: Query<&mut Subscription>,
    contents: Query<&Content>,
    uris: Query<&SourceUri>,
    packages: Res<Packages>,
    store: Res<DialogStore>,
    config: Res<crate::config::EngineConfig>,
    mut requester: Requester,
    clock: Res<Clock>,
    mut empties: Local<bevy_ecs::entity::EntityHashMap<Content>>,
    mut stats: ResMut<crate::stats::Stats>,
    restored: Query<&super::durable::RestoredTag>,
) {
    let now = clock.now;
    let empty = Content::default();
    // empty bodies of sources without content, built once per source this tick whatever the
    // order of the queue (first NOTIFYs, refreshes and fan-out mix sources)
    empties.clear();
    for e in queue.0.drain(..) {
        let Ok(mut s) = subs.get_mut(e) else {
            continue;
        };
        let s = &mut *s;
        // an internal subscription (a list's back-end) has no dialog: its list reports it
        if !s.flow.ready() || s.dialog.is_internal() {
            continue;
        }
        let state = match s.state {
            SubState::Active => SubscriptionStateHeader::Active {
                expires: now.until(s.expires_at).div_ceil(1000),
            },
            SubState::Pending => SubscriptionStateHeader::Pending {
                expires: now.until(s.expires_at).div_ceil(1000),
            },
            SubState::Terminating(reason) => SubscriptionStateHeader::Terminated {
                reason: reason.map(Reason::as_str),
            },
        };
        let spec = packages.spec(s.package);
        let source_uri = uris.get(s.source).ok().map(|u| &*u.0);
        let content = match (contents.get(s.source), source_uri, spec.empty_body) {
            (Ok(c), _, _) => c,
            (Err(_), Some(uri), Some(eb)) => empties.entry(s.source).or_insert_with(|| Content {
                content_type: eb.content_type.into(),
                body: (eb.render)(uri, eb.variant),
            }),
            _ => &empty,
        };
        let branch = requester.new_branch();
        let dest = s.dialog.dest(&store);
        let tag = match restored.get(e) {
            Ok(r) => r.tag(),
            Err(_) => local_tag(e, s.dialog.strings(&store).call_id(), config.seed),
        };
        let head = s.dialog.notify_head(
            &store,
            &NotifyParts {
                source_uri,
                dest: &dest,
                local_tag: &tag,
                branch: &branch,
                event: spec.event,
                require: spec.require,
                state,
                content_type: &content.content_type,
                body_len: content.body.len(),
            },
        );
        let message = Outbound {
            dest,
            head,
            body: content.body.clone(),
        };
        requester.send(Owner(e.to_bits()), Method::Notify, &branch, message);
        stats.notifies_sent += 1;
        s.flow.in_flight = true;
        s.flow.dirty = false;
        s.flow.final_sent = matches!(s.state, SubState::Terminating(_));
    }
}

/// Act on the answers to our NOTIFYs: a 2xx lets the next one go; anything else, or no answer
/// at all (Timer F), ends the subscription (RFC 6665 §4.2.2, 481 in particular).
pub fn notify_outcomes(world: &mut World) {
    let done = std::mem::take(&mut world.resource_mut::<ClientOutcomes>().done);
    let mut ended = Vec::new();
    let mut stats = world.resource_mut::<crate::stats::Stats>();
    for (_, outcome) in &done {
        match outcome {
            Outcome::Final(r) if (200..300).contains(&r.code) => stats.notifies_answered += 1,
            Outcome::Final(_) => stats.notifies_failed += 1,
            Outcome::Timeout => stats.notifies_timed_out += 1,
        }
    }
    for (owner, outcome) in done {
        let e = Entity::from_bits(owner.0);
        let Some(mut s) = world.get_mut::<Subscription>(e) else {
            continue;
        };
        s.flow.in_flight = false;
        let ok = matches!(&outcome, Outcome::Final(r) if (200..300).contains(&r.code));
        if ok && !s.flow.final_sent {
            if s.flow.dirty {
                world.resource_mut::<NotifyQueue>().0.push(e);
            }
            continue;
        }
        ended.push(e);
    }
    for e in ended {
        end_subscription(world, e);
    }
}

/// Remove a subscription: its package detaches it, the indexes forget it.
pub fn end_subscription(world: &mut World, e: Entity) {
    let Some(s) = world.get::<Subscription>(e) else {
        return;
    };
    let on_end = world.resource::<Packages>().spec(s.package).on_end;
    let watcher = world
        .resource::<SubscriptionIndex>()
        .watcher_key_of_from(s.dialog.strings(world.resource::<DialogStore>()).remote());
    on_end(world, e);
    world.resource_mut::<SubscriptionIndex>().remove(watcher);
    world.despawn(e);
}

/// End subscriptions whose time ran out with `terminated;reason=timeout` (RFC 6665 §4.2.2).
/// (The timer names the entity's index: the entity now there is checked against its own expiry.)
pub fn expire_subscriptions(
    due: Res<DueTimers>,
    clock: Res<Clock>,
    entities: &Entities,
    mut subs: Query<&mut Subscription>,
    mut queue: ResMut<NotifyQueue>,
    mut records: Option<ResMut<super::durable::RecordQueue>>,
) {
    for d in due.of(TimerKind::SubscriptionExpiry) {
        let Some(index) = EntityIndex::from_raw_u32(d.key as u32) else {
            continue;
        };
        let e = entities.resolve_from_index(index);
        let Ok(mut s) = subs.get_mut(e) else { continue };
        if matches!(s.state, SubState::Active | SubState::Pending) && s.expires_at <= clock.now {
            s.state = SubState::Terminating(Some(Reason::Timeout));
            queue.touch(e, &mut s);
            if let Some(r) = records.as_mut() {
                r.0.push(e);
            }
        }
    }
}
