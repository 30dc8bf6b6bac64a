//! The Authorize step: who may watch a presentity, and which view they get. A new presence
//! subscription is placed when its SUBSCRIBE is answered (block is a 403); the Authorize set
//! of the tick places again every watcher of a presentity whose rules, or a list they name,
//! changed: pending → active with the view, active → terminated (`rejected`), a view narrowed
//! or widened.

use std::sync::Arc;

use bevy_ecs::prelude::*;

use super::book::RuleBook;
use super::config::PrivacyConfig;
use super::decide::{Context, Requester, decide};
use super::permissions::Permissions;
use super::rules::{RuleSet, SubHandling};
use super::views::{Shown, View, attach, detach};
use crate::presence::components::{Presentity, SourceUri, find_presentity};
use crate::router::Answer;
use crate::sip::fields::uri_of;
use crate::sip::identity::{identity_key, is_anonymous};
use crate::subscription::lifecycle::{self, Event, Since, Status};
use crate::subscription::{Content, DialogStore, NotifyQueue, Reason, SubState, Subscription};
use crate::time::Clock;

/// The identity a subscription was made with, when it is not its From (a `P-Asserted-Identity`
/// from a trusted peer). Most subscriptions have none: their From says who they are.
#[derive(Component, Debug, Clone)]
pub struct AssertedIdentity(pub Box<str>);

/// Where a watcher goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// The presentity's whole document (the presentity itself, or rules that grant everything).
    Full,
    /// A view.
    View(Shown),
    /// Refused.
    Block,
}

/// Where the watcher `identity` goes among the watchers of `presentity`.
pub fn place(world: &World, presentity: Entity, identity: &str) -> Placement {
    let presentity_uri = world.get::<SourceUri>(presentity).map_or("", |u| &*u.0);
    let Some(book) = world.get_resource::<RuleBook>() else {
        return Placement::Full;
    };
    let owner = identity_key(presentity_uri);
    // a presentity always sees itself
    if owner.is_some() && owner == identity_key(identity) {
        return Placement::Full;
    }
    let empty = RuleSet::default();
    let rules = owner
        .as_deref()
        .and_then(|k| book.rules_of(k))
        .unwrap_or(&empty);
    let sphere = if super::sphere::needs_sphere(rules) {
        world
            .get::<Content>(presentity)
            .and_then(|c| super::sphere::sphere_of(&c.body))
    } else {
        None
    };
    let cx = context(world, identity, sphere.as_deref());
    let default = world.resource::<PrivacyConfig>().default_handling;
    let d = decide(rules, &cx, book, default);
    // no rule speaks of this watcher and the operator lets everyone watch: a server without
    // privacy, everything shown (a matching rule's permissions are exactly what it grants)
    if d.matched == 0 && d.handling == SubHandling::Allow {
        return Placement::Full;
    }
    match d.handling {
        SubHandling::Block => Placement::Block,
        SubHandling::Confirm => Placement::View(Shown::Pending),
        SubHandling::PoliteBlock => Placement::View(Shown::PoliteBlock),
        SubHandling::Allow if d.permissions == Permissions::everything() => Placement::Full,
        SubHandling::Allow => Placement::View(Shown::Filtered(Arc::new(d.permissions))),
    }
}

/// What rules are decided against for `identity` now (`sphere`: the presentity's, when its
/// rules compare with it).
fn context<'a>(world: &World, identity: &'a str, sphere: Option<&'a str>) -> Context<'a> {
    Context {
        requester: if is_anonymous(identity) {
            Requester::Anonymous
        } else {
            Requester::Identity(identity)
        },
        now_unix: world.resource::<Clock>().unix_secs(),
        sphere,
    }
}

/// Whether the rules of `owner` (a user's URI) let `identity` watch them outright (RFC 5025
/// `allow`): what sharing their lists with `identity` needs (a resource list of `identity`'s
/// that names a list in `owner`'s documents).
pub fn allows(world: &World, owner: &str, identity: &str) -> bool {
    let Some(book) = world.get_resource::<RuleBook>() else {
        return true;
    };
    let key = identity_key(owner);
    if key.is_some() && key == identity_key(identity) {
        return true;
    }
    let empty = RuleSet::default();
    let rules = key
        .as_deref()
        .and_then(|k| book.rules_of(k))
        .unwrap_or(&empty);
    let cx = context(world, identity, None);
    let default = world.resource::<PrivacyConfig>().default_handling;
    decide(rules, &cx, book, default).handling == SubHandling::Allow
}

/// The identity of subscription `sub`: the one it was made with.
pub fn identity_of(world: &World, sub: Entity) -> Option<String> {
    if let Some(a) = world.get::<AssertedIdentity>(sub) {
        return Some(a.0.to_string());
    }
    let s = world.get::<Subscription>(sub)?;
    let remote = s.dialog.strings(world.resource::<DialogStore>()).remote();
    Some(uri_of(remote).to_owned())
}

/// A new presence subscription to `presentity` by `identity` (its requester; `from`: its From
/// URI): placed, or refused with 403 (RFC 5025 §3.2.1: block). Called before the subscription
/// is attached to the presentity.
pub fn admit(
    world: &mut World,
    identity: &str,
    from: &str,
    sub: Entity,
    presentity: Entity,
) -> Result<(), Answer> {
    let placement = place(world, presentity, identity);
    if placement == Placement::Block {
        return Err(Answer::new(403, "Forbidden"));
    }
    if identity != from {
        world
            .entity_mut(sub)
            .insert(AssertedIdentity(identity.into()));
    }
    if world
        .get_resource::<lifecycle::Lifecycle>()
        .is_some_and(|l| l.listening)
    {
        let now = world.resource::<Clock>().now;
        world.entity_mut(sub).insert(Since(now));
    }
    let (source, state) = match placement {
        Placement::View(Shown::Pending) => {
            (attach(world, presentity, Shown::Pending), SubState::Pending)
        }
        Placement::View(shown) => (attach(world, presentity, shown), SubState::Active),
        _ => (presentity, SubState::Active),
    };
    let mut s = world.get_mut::<Subscription>(sub).expect("spawned");
    s.source = source;
    // an unsubscribing fetch (Expires: 0) stays terminating
    if s.state == SubState::Active {
        s.state = state;
    }
    Ok(())
}

/// A presence subscription ends: leave its view and announce it (a pending one that timed
/// out is `waiting`, RFC 3857 §3.2.2).
pub fn release(world: &mut World, sub: Entity, presentity: Entity) {
    let Some(s) = world.get::<Subscription>(sub) else {
        return;
    };
    let (source, state) = (s.source, s.state);
    let pending = world
        .get::<View>(source)
        .is_some_and(|v| v.shown == Shown::Pending);
    // rejected and deactivated watchers were reported when the rules ended them
    if matches!(
        state,
        SubState::Terminating(Some(Reason::Rejected | Reason::Deactivated))
    ) {
        if world.get::<View>(source).is_some() {
            detach(world, source);
        }
        return;
    }
    let (status, event) = match state {
        SubState::Terminating(Some(Reason::Timeout)) if pending => {
            (Status::Waiting, Event::Timeout)
        }
        SubState::Terminating(reason) => (Status::Terminated, Event::of_reason(reason)),
        // ended without a final NOTIFY: its NOTIFYs failed
        SubState::Active | SubState::Pending => (Status::Terminated, Event::Giveup),
    };
    if let Some(identity) = identity_of(world, sub) {
        lifecycle::record(world, sub, presentity, &identity, status, event);
    }
    if world.get::<View>(source).is_some() {
        detach(world, source);
    }
}

/// The Authorize set: place again every watcher of each presentity whose rules or lists
/// changed.
pub fn reauthorize(world: &mut World) {
    let mut owners = std::mem::take(&mut world.resource_mut::<RuleBook>().changed);
    // a new document may change the sphere that rules compare with
    let published = &world
        .resource::<crate::presence::components::ViewChanges>()
        .0;
    let spheres = world.resource::<RuleBook>().sphere_owners > 0;
    for &p in published.iter().filter(|_| spheres) {
        let Some(uri) = world.get::<SourceUri>(p) else {
            continue;
        };
        let Some(key) = identity_key(&uri.0) else {
            continue;
        };
        let book = world.resource::<RuleBook>();
        if book.rules_of(&key).is_some_and(super::sphere::needs_sphere) {
            owners.push(key.into_boxed_slice());
        }
    }
    if owners.is_empty() {
        return;
    }
    owners.sort();
    owners.dedup();
    for key in owners {
        let Ok(aor) = std::str::from_utf8(&key) else {
            continue;
        };
        let Some(p) = find_presentity(world, aor) else {
            continue;
        };
        let subs: Vec<Entity> = match world.get::<Presentity>(p) {
            Some(pr) => pr.watchers.iter(world.entities()).collect(),
            None => continue,
        };
        for sub in subs {
            replace(world, sub, p);
        }
    }
}

/// A refreshed presence subscription is placed again: rules that depend on time
/// (`<validity>`) apply from the watcher's next refresh at the latest.
pub fn refreshed(world: &mut World, sub: Entity, presentity: Entity) {
    replace(world, sub, presentity);
}

/// Move one live subscription to where its rules now put it.
fn replace(world: &mut World, sub: Entity, presentity: Entity) {
    let Some(s) = world.get::<Subscription>(sub) else {
        return;
    };
    let (old_source, state) = (s.source, s.state);
    if matches!(state, SubState::Terminating(_)) {
        return;
    }
    let Some(identity) = identity_of(world, sub) else {
        return;
    };
    let placement = place(world, presentity, &identity);
    let current = match world.get::<View>(old_source) {
        // active and shown nothing: restored, not placed yet (see `restored`)
        Some(v) if v.shown == Shown::Pending && state == SubState::Active => None,
        Some(v) => Some(Placement::View(v.shown.clone())),
        None => Some(Placement::Full),
    };
    if current.as_ref() == Some(&placement) {
        return;
    }
    let (status, event, next_state, new_source) = match (&placement, state) {
        // the final NOTIFY of a refused watcher shows nothing any more
        (Placement::Block, _) => (
            Status::Terminated,
            Event::Rejected,
            SubState::Terminating(Some(Reason::Rejected)),
            attach(world, presentity, Shown::Pending),
        ),
        // RFC 6665 allows no way back from active to pending: the watcher is asked to
        // subscribe again, and its new subscription waits for the decision
        (Placement::View(Shown::Pending), SubState::Active) => (
            Status::Terminated,
            Event::Deactivated,
            SubState::Terminating(Some(Reason::Deactivated)),
            attach(world, presentity, Shown::Pending),
        ),
        (Placement::View(Shown::Pending), _) => return,
        (Placement::Full, _) | (Placement::View(_), _) => {
            let source = match &placement {
                Placement::View(shown) => attach(world, presentity, shown.clone()),
                _ => presentity,
            };
            let event = if state == SubState::Pending {
                Event::Approved
            } else {
                Event::Subscribe
            };
            (Status::Active, event, SubState::Active, source)
        }
    };
    let body_changed = {
        let body = |e: Entity| world.get::<Content>(e).map(|c| c.body.clone());
        new_source != old_source && body(new_source) != body(old_source)
    };
    let was_pending = state == SubState::Pending;
    let mut s = world.get_mut::<Subscription>(sub).expect("live");
    s.state = next_state;
    s.source = new_source;
    let notify = next_state != state || body_changed || was_pending;
    // every view placed in was attached above, the old one too when it is placed in again:
    // the old one is always left once
    if world.get::<View>(old_source).is_some() {
        detach(world, old_source);
    }
    if notify {
        world.resource_scope(|world, mut q: Mut<NotifyQueue>| {
            if let Some(mut s) = world.get_mut::<Subscription>(sub) {
                q.touch(sub, &mut s);
            }
        });
    }
    if next_state != state {
        lifecycle::record(world, sub, presentity, &identity, status, event);
        crate::subscription::durable::changed(world, sub);
    }
}

/// A presence subscription restored at start (active or pending) before the rules are back:
/// shown nothing for now, and its presentity's watchers are placed again in the next tick's
/// Authorize set, after the documents handed in before it are applied. Nothing is sent
/// before that: a restored subscription waits for its paced NOTIFY.
pub fn restored(world: &mut World, sub: Entity, presentity: Entity) {
    let view = attach(world, presentity, Shown::Pending);
    world.get_mut::<Subscription>(sub).expect("spawned").source = view;
    if let Some(key) = world
        .get::<SourceUri>(presentity)
        .and_then(|u| identity_key(&u.0))
    {
        world
            .resource_mut::<RuleBook>()
            .changed
            .push(key.into_boxed_slice());
    }
}
