//! Expiry of publications (RFC 3903 §6), driven by the deadline table: idle state costs nothing
//! per tick. (Subscription expiry is the subscription layer's.)

use bevy_ecs::prelude::*;

use crate::time::Clock;
use crate::timers::{DueTimers, TimerKind};

use super::components::Publication;
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
