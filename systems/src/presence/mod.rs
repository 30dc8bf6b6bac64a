//! The Presence Server (OMA PRS-1/2/3): PUBLISH (RFC 3903), composition of a presentity's
//! sources into one PIDF view (RFC 3863/4479/4480), and the `presence` event package
//! (RFC 3856) on the shared subscription layer ([`crate::subscription`]).
//!
//! Presentities and publications are entities. Request handlers spawn and change them one
//! request at a time (exclusive systems, so that two requests for one presentity in a tick see
//! each other); composition runs once per tick over what changed, and hands the new view (one
//! shared body) to every watcher.

pub mod components;
pub mod compose;
pub mod config;
pub mod durable;
pub mod expiry;
pub mod publish;
pub mod watch;

use bevy_ecs::prelude::*;

use crate::pipeline::Pipeline;
use crate::router::{Capabilities, MethodQueues};
use crate::sip::Method;
use crate::subscription::{self, PackageSpec};

pub use config::PresenceConfig;

/// The content type of presence documents.
pub const PIDF: &str = "application/pidf+xml";
/// The event package.
pub const EVENT: &str = "presence";

/// Add the Presence Server to an engine (see [`crate::Engine::add_feature`]).
pub fn feature(config: PresenceConfig) -> impl FnOnce(&mut World, &mut Schedule) {
    move |world, schedule| {
        subscription::install(world, schedule);
        subscription::register_package(
            world,
            PackageSpec {
                event: EVENT,
                label: EVENT,
                content_types: &[PIDF],
                min_expires: config.subscribe_min_expires,
                max_expires: config.subscribe_max_expires,
                default_expires: config.subscribe_default_expires,
                max_per_watcher: config.max_subscriptions_per_watcher,
                empty_body: Some(subscription::EmptyBody {
                    content_type: PIDF,
                    render: crate::formats::pidf::empty_view,
                    variant: config.closed_when_unpublished,
                }),
                on_subscribe: watch::on_subscribe,
                on_refresh: watch::on_refresh,
                on_end: watch::on_end,
                claims: None,
                require: None,
                durable: Some(subscription::durable::DurableHooks {
                    save: watch::save,
                    restore: watch::restore,
                }),
            },
        );
        let expected = config.expected_presentities;
        world.insert_resource(config);
        let hash_seed = world.resource::<crate::EngineConfig>().hash_seed;
        world.insert_resource(components::PresenceIndex::with_capacity(
            expected, hash_seed,
        ));
        world.init_resource::<compose::Compositions>();
        world.init_resource::<components::Recompose>();
        world.init_resource::<components::ViewChanges>();
        world
            .resource_mut::<MethodQueues>()
            .register(Method::Publish);
        world.resource_mut::<Capabilities>().add_accept(PIDF);
        schedule.add_systems(
            (
                publish::handle_publish,
                expiry::expire_publications,
                expiry::show_held,
                compose::compose_views,
            )
                .chain()
                .in_set(Pipeline::Publish),
        );
    }
}
