//! The `presence` event package's side of a subscription (RFC 3856): which presentity it
//! watches, the limits, and the view it carries.

use bevy_ecs::prelude::*;

use crate::durable::codec::{Reader, Writer};
use crate::router::Answer;
use crate::sip::{HeaderLookup, Name, Request};
use crate::subscription::durable::Restoring;
use crate::subscription::{SubState, Subscription};

use super::components::{Presentity, SourceUri, aor_of, find_presentity, forget_presentity};
use super::config::PresenceConfig;
use super::publish::presentity_for;

/// The presentity a presence subscription watches: its content's source (the presentity holds
/// the view every watcher's NOTIFY carries).
pub fn watched(world: &World, sub: Entity) -> Option<Entity> {
    let s = world.get::<Subscription>(sub)?;
    if s.source == sub {
        return None;
    }
    // a watcher shown a privacy view watches that view's presentity
    Some(
        world
            .get::<crate::privacy::View>(s.source)
            .map_or(s.source, |v| v.presentity),
    )
}

/// Accept a presence subscription: the domain, then [`watch`] by its requester.
pub fn on_subscribe(world: &mut World, req: &Request, sub: Entity) -> Result<(), Answer> {
    if !world.resource::<PresenceConfig>().serves(&req.uri.host) {
        return Err(Answer::new(404, "Not Found"));
    }
    let trusted = &world.resource::<crate::EngineConfig>().trusted_peers;
    let identity = crate::sip::identity::requester(req, trusted).to_owned();
    let from = crate::sip::fields::uri_of(req.header(Name::From).unwrap_or(""));
    watch(world, sub, &req.uri.aor(), &identity, from)
}

/// Make `sub` a watcher of the presentity `aor` on behalf of `identity` (`from`: the From URI
/// it was asked with): the per-presentity limit, then the Authorize step (who may watch, which
/// view they get), then attached to the presentity, whose view is its content. A resource
/// list's back-end subscriptions come here too, with the list's subscriber as `identity`.
pub fn watch(
    world: &mut World,
    sub: Entity,
    aor: &str,
    identity: &str,
    from: &str,
) -> Result<(), Answer> {
    let max = world
        .resource::<PresenceConfig>()
        .max_subscriptions_per_presentity;
    let existing = find_presentity(world, aor);
    if existing
        .and_then(|p| world.get::<Presentity>(p))
        .is_some_and(|p| p.watchers.len() >= max)
    {
        return Err(
            Answer::new(503, "Too many subscriptions to this presentity").with("Retry-After", "60"),
        );
    }
    let presentity = presentity_for(world, aor);
    let privacy = world.contains_resource::<crate::privacy::RuleBook>();
    if privacy {
        if let Err(refused) = crate::privacy::admit(world, identity, from, sub, presentity) {
            forget_if_unused(world, presentity);
            return Err(refused);
        }
    } else {
        world.get_mut::<Subscription>(sub).expect("spawned").source = presentity;
    }
    world
        .get_mut::<Presentity>(presentity)
        .expect("live")
        .watchers
        .push(sub);
    Ok(())
}

/// Forget a presentity nobody publishes or watches.
fn forget_if_unused(world: &mut World, presentity: Entity) {
    if world
        .get::<Presentity>(presentity)
        .is_some_and(|p| p.watchers.is_empty() && p.publications.is_empty())
    {
        forget_presentity(world, presentity);
        world.despawn(presentity);
    }
}

/// A refresh: privacy places the watcher again (its NOTIFY then reports where it stands).
pub fn on_refresh(world: &mut World, sub: Entity) {
    if let Some(presentity) = watched(world, sub)
        && world.contains_resource::<crate::privacy::RuleBook>()
    {
        crate::privacy::refreshed(world, sub, presentity);
    }
}

/// Detach an ended subscription; forget a presentity nobody publishes or watches any more.
pub fn on_end(world: &mut World, sub: Entity) {
    let Some(presentity) = watched(world, sub) else {
        return;
    };
    if world.contains_resource::<crate::privacy::RuleBook>() {
        crate::privacy::release(world, sub, presentity);
    }
    let Some(mut p) = world.get_mut::<Presentity>(presentity) else {
        return;
    };
    p.watchers.remove(sub);
    forget_if_unused(world, presentity);
}

/// Version of a presence subscription's part of its record.
const RECORD_VERSION: u8 = 1;

/// A presence subscription's part of its record ([`crate::subscription::durable`]): the AoR
/// of the presentity it watches, and the identity it was made with when that is not its From
/// (privacy decides by it).
pub fn save(world: &World, sub: Entity) -> Option<Vec<u8>> {
    let presentity = watched(world, sub)?;
    let aor = aor_of(world.get::<SourceUri>(presentity)?);
    let identity = world
        .get::<crate::privacy::AssertedIdentity>(sub)
        .map_or("", |a| &*a.0);
    let w = Writer::new(RECORD_VERSION, aor.len() + identity.len() + 8);
    Some(w.bytes(aor.as_bytes()).bytes(identity.as_bytes()).done())
}

/// Attach a restored presence subscription to its presentity again (the watcher limit is not
/// applied: it held before). With privacy it is placed again by the rules (see
/// [`crate::privacy::restored`]).
pub fn restore(world: &mut World, sub: Entity, part: &[u8], _: &Restoring) -> Option<()> {
    let mut rd = Reader::new(part, RECORD_VERSION)?;
    let (aor, identity) = (rd.str()?, rd.str()?);
    if !identity.is_empty() {
        world
            .entity_mut(sub)
            .insert(crate::privacy::AssertedIdentity(identity.into()));
    }
    let presentity = presentity_for(world, aor);
    if world.contains_resource::<crate::privacy::RuleBook>() {
        crate::privacy::restored(world, sub, presentity);
    } else {
        let mut s = world.get_mut::<Subscription>(sub).expect("spawned");
        s.source = presentity;
        // only privacy keeps a watcher pending: without it everyone is let in
        if s.state == SubState::Pending {
            s.state = SubState::Active;
            crate::subscription::durable::changed(world, sub);
        }
    }
    world
        .get_mut::<Presentity>(presentity)
        .expect("live")
        .watchers
        .push(sub);
    Some(())
}
