//! Expiry of publications (RFC 3903 §6) and subscriptions (RFC 6665 §4.2.2), driven by the
//! deadline table: idle state costs nothing per tick.

use bevy_ecs::prelude::*;

use crate::time::Clock;
use crate::timers::{DueTimers, TimerKind};

use super::components::{Publication, SubState, Subscription};
use super::notify::NotifyQueue;
use super::publish::remove_publication;

/// Remove publications whose time ran out (a refresh re-arms a later timer; stale ones are
/// recognised by the publication's own expiry time).
pub fn expire_publications(world: &mut World) {
    let now = world.resource::<Clock>().now;
    let due: Vec<Entity> = world
        .resource::<DueTimers>()
        .of(TimerKind::PublicationExpiry)
        .map(|d| Entity::from_bits(d.key))
        .collect();
    for p in due {
        if world
            .get::<Publication>(p)
            .is_some_and(|pb| pb.expires_at <= now)
        {
            remove_publication(world, p);
        }
    }
}

/// End subscriptions whose time ran out with `terminated;reason=timeout`.
pub fn expire_subscriptions(
    due: Res<DueTimers>,
    clock: Res<Clock>,
    mut subs: Query<&mut Subscription>,
    mut queue: ResMut<NotifyQueue>,
) {
    for d in due.of(TimerKind::SubscriptionExpiry) {
        let e = Entity::from_bits(d.key);
        let Ok(mut s) = subs.get_mut(e) else { continue };
        if s.state == SubState::Active && s.expires_at <= clock.now {
            s.state = SubState::Terminating(Some("timeout"));
            s.flow.dirty = true;
            queue.0.push(e);
        }
    }
}
