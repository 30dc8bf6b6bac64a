//! Back-end subscriptions to members of this domain: a `Subscription` with no SIP dialog,
//! watching the member's presentity on behalf of the list's subscriber (RFC 4662 §4.4.1: the
//! RLS subscribes to each resource; OMA: with the subscriber's identity, so that the member's
//! rules apply to them). The presence package treats it as any watcher: privacy places it,
//! composition touches it, watcher information lists it.

use bevy_ecs::prelude::*;

use super::{BackEnd, Rls};
use crate::subscription::lifecycle::{self, Event};
use crate::subscription::{Dialog, NotifyFlow, Reason, SubState, Subscription};
use crate::time::Time;

/// Open a back-end subscription for slot `slot` of `list_sub`, to `uri`, watched by
/// `identity`. Err: the member cannot be watched (the reason its instance reports).
pub fn open(
    world: &mut World,
    list_sub: Entity,
    slot: u32,
    uri: &str,
    identity: &str,
) -> Result<Entity, Reason> {
    let Ok(parsed) = crate::sip::uri::Uri::parse(uri) else {
        return Err(Reason::Noresource);
    };
    if !world
        .resource::<crate::presence::PresenceConfig>()
        .serves(&parsed.host)
    {
        return super::remote::open(world, list_sub, slot, &parsed, identity);
    }
    let package = world.resource::<Rls>().presence;
    let be = world.spawn_empty().id();
    world.entity_mut(be).insert((
        Subscription {
            expires_at: Time(u64::MAX),
            source: be,
            package,
            state: SubState::Active,
            flow: NotifyFlow::default(),
            dialog: Dialog::none(),
        },
        BackEnd { list_sub, slot },
    ));
    // "" as From: the identity is always kept beside it (there is no dialog to read it from)
    if let Err(refused) = crate::presence::watch::watch(world, be, &parsed.aor(), identity, "") {
        world.despawn(be);
        return Err(match refused.code {
            403 => Reason::Rejected,
            503 => Reason::Probation,
            _ => Reason::Noresource,
        });
    }
    world.resource_mut::<Rls>().back_ends += 1;
    let s = world.get::<Subscription>(be).expect("spawned");
    let (source, status) = (s.source, lifecycle::status_of(s.state));
    let presentity = crate::presence::watch::watched(world, be).unwrap_or(source);
    lifecycle::record(world, be, presentity, identity, status, Event::Subscribe);
    Ok(be)
}

/// End a back-end subscription: its presentity forgets it (and watcher information hears of
/// it: an ended list subscription ends its back-ends as `timeout`).
pub fn close(world: &mut World, be: Entity) {
    if world.get::<super::remote::Remote>(be).is_some() {
        super::remote::close(world, be);
        return;
    }
    let Some(mut s) = world.get_mut::<Subscription>(be) else {
        return;
    };
    if matches!(s.state, SubState::Active | SubState::Pending) {
        s.state = SubState::Terminating(Some(Reason::Timeout));
    }
    crate::presence::watch::on_end(world, be);
    world.despawn(be);
    let mut rls = world.resource_mut::<Rls>();
    rls.back_ends = rls.back_ends.saturating_sub(1);
}
