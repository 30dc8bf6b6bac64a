//! Live subscriptions per event package, kept by the hooks of [`Subscription`] so that metrics
//! read a count instead of scanning the table.

use bevy_ecs::lifecycle::HookContext;
use bevy_ecs::prelude::*;
use bevy_ecs::world::DeferredWorld;

use super::Subscription;

/// Live subscriptions by [`super::PackageId`] (index).
#[derive(Resource, Debug, Default, Clone)]
pub struct SubscriptionGauges {
    pub live: Vec<u64>,
}

fn adjust(world: &mut DeferredWorld, entity: Entity, up: bool) {
    let Some(package) = world.get::<Subscription>(entity).map(|s| s.package.0) else {
        return;
    };
    let Some(mut g) = world.get_resource_mut::<SubscriptionGauges>() else {
        return;
    };
    let i = usize::from(package);
    if g.live.len() <= i {
        // once per package: the first subscription to it
        g.live.resize(i + 1, 0);
    }
    g.live[i] = if up {
        g.live[i] + 1
    } else {
        g.live[i].saturating_sub(1)
    };
}

/// A subscription was inserted (an insertion over an existing one was discarded first).
pub(super) fn counted(mut world: DeferredWorld, ctx: HookContext) {
    adjust(&mut world, ctx.entity, true);
}

/// A subscription goes (despawn, removal or replacement): uncount it and free its dialog.
pub(super) fn uncounted(mut world: DeferredWorld, ctx: HookContext) {
    adjust(&mut world, ctx.entity, false);
    super::dialog::free_record(world, ctx);
}
