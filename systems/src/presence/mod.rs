//! The Presence Server (OMA PRS-1/2/3): PUBLISH (RFC 3903), composition of a presentity's
//! sources into one PIDF view (RFC 3863/4479/4480), SUBSCRIBE/NOTIFY for the `presence` event
//! package (RFC 6665, RFC 3856).
//!
//! Presentities, publications and subscriptions are entities. Request handlers spawn and change
//! them one request at a time (exclusive systems, so that two requests for one presentity in a
//! tick see each other); composition and NOTIFY encoding run once per tick over what changed.

pub mod components;
pub mod compose;
pub mod config;
pub mod dialog;
pub mod expiry;
pub mod notify;
pub mod publish;
pub mod subscribe;

use bevy_ecs::prelude::*;

use crate::pipeline::Pipeline;
use crate::router::{Capabilities, MethodQueues};
use crate::sip::Method;

pub use config::PresenceConfig;

/// The content type of presence documents.
pub const PIDF: &str = "application/pidf+xml";
/// The event package.
pub const EVENT: &str = "presence";

/// Add the Presence Server to an engine (see [`crate::Engine::add_feature`]).
pub fn feature(config: PresenceConfig) -> impl FnOnce(&mut World, &mut Schedule) {
    move |world, schedule| {
        world.insert_resource(config);
        world.init_resource::<components::PresenceIndex>();
        world.init_resource::<notify::NotifyQueue>();
        world.init_resource::<components::Ids>();
        {
            let mut q = world.resource_mut::<MethodQueues>();
            q.register(Method::Publish);
            q.register(Method::Subscribe);
        }
        {
            let mut caps = world.resource_mut::<Capabilities>();
            caps.accept = PIDF.to_owned();
            caps.allow_events = EVENT.to_owned();
        }
        schedule.add_systems(publish::handle_publish.in_set(Pipeline::Publish));
        schedule.add_systems(
            (expiry::expire_publications, compose::compose_views)
                .chain()
                .after(publish::handle_publish)
                .in_set(Pipeline::Publish),
        );
        schedule.add_systems(subscribe::handle_subscribe.in_set(Pipeline::Subscribe));
        schedule.add_systems(expiry::expire_subscriptions.in_set(Pipeline::Expiry));
        schedule.add_systems(
            (notify::notify_outcomes, notify::send_notifies)
                .chain()
                .in_set(Pipeline::NotifyEncode),
        );
    }
}
