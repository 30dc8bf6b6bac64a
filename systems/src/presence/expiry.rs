//! Expiry of publications (RFC 3903 §6), driven by the deadline table: idle state costs nothing
//! per tick. (Subscription expiry is the subscription layer's.)

use bevy_ecs::prelude::*;

use crate::time::Clock;
use crate::timers::{DueTimers, TimerKind};

use super::components::Publication;
use super::publish::remove_publication;

/// Show the changes the publish throttle held, now that their interval is over.
pub fn show_held(world: &mut World) {
    let now = world.resource::<Clock>().now;
    let due: Vec<Entity> = world
        .resource::<DueTimers>()
        .of(TimerKind::PublishThrottle)
        .map(|d| Entity::from_bits(d.key))
        .collect();
    for p in due {
        let Some(mut pb) = world.get_mut::<Publication>(p).filter(|pb| pb.held) else {
            continue;
        };
        pb.held = false;
        pb.modified_at = now;
        let presentity = pb.presentity;
        if let Some(mut pr) = world.get_mut::<super::components::Presentity>(presentity) {
            pr.publications.move_to_end(p);
        }
        super::components::recompose(world, presentity);
    }
}

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
