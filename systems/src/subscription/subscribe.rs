//! SUBSCRIBE (RFC 6665 §4.2.1): initial requests create a dialog and a subscription after the
//! package accepts them; requests in the dialog refresh or end it. Every accepted SUBSCRIBE is
//! followed by an immediate NOTIFY with the current state (§4.2.1.4).

use bevy_ecs::prelude::*;

use crate::config::EngineConfig;
use crate::net::AddrText;
use crate::router::{Answer, Incoming, MethodQueues, Replies, answer_response};
use crate::sip::fields::{self, uri_of};
use crate::sip::{HeaderLookup, Method, Name, Request};
use crate::time::Clock;
use crate::timers::{TimerKind, Timers};

use super::dialog::{Dialog, DialogParts, DialogStore, LocalTag, local_tag, next_hop};
use super::{
    NotifyFlow, NotifyQueue, Packages, Reason, SourceUri, SubState, Subscription, SubscriptionIndex,
};

/// The event package named by an `Event` header (parameters dropped).
pub fn event_package(req: &Request) -> Option<&str> {
    req.header(Name::Event).map(fields::event_package)
}

/// The `id` parameter of an `Event` header.
pub fn event_id(req: &Request) -> Option<&str> {
    fields::param(req.header(Name::Event)?, "id")
}

/// An `Expires` header that is not a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedExpires;

/// `Expires` as a number; Err when present but malformed.
pub fn expires(req: &Request) -> Result<Option<u32>, MalformedExpires> {
    match req.header(Name::Expires) {
        None => Ok(None),
        Some(v) => fields::delta_seconds(v).map(Some).ok_or(MalformedExpires),
    }
}

/// Outcome of applying `Expires` bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granted {
    /// The interval granted, seconds (0: remove / unsubscribe / fetch).
    Secs(u32),
    /// Below the minimum: answer 423 with this Min-Expires.
    TooBrief(u32),
}

/// Apply the bounds to a requested interval (None: header absent).
pub fn grant(requested: Option<u32>, min: u32, max: u32, default: u32) -> Granted {
    match requested {
        None => Granted::Secs(default),
        Some(0) => Granted::Secs(0),
        Some(s) if s < min => Granted::TooBrief(min),
        Some(s) => Granted::Secs(s.min(max)),
    }
}

/// The bounded interval of `req`, or the answer that refuses it (400 / 423).
pub fn granted_expires(req: &Request, min: u32, max: u32, default: u32) -> Result<u32, Answer> {
    let Ok(requested) = expires(req) else {
        return Err(Answer::new(400, "Malformed Expires"));
    };
    match grant(requested, min, max, default) {
        Granted::TooBrief(min) => {
            Err(Answer::new(423, "Interval Too Brief").with("Min-Expires", min))
        }
        Granted::Secs(s) => Ok(s),
    }
}

/// Handle this tick's SUBSCRIBE requests in arrival order (their first NOTIFYs are encoded
/// later in the tick, after the answers).
pub fn handle_subscribe(world: &mut World, mut replies: Local<Replies>) {
    let batch = world.resource_mut::<MethodQueues>().take(Method::Subscribe);
    if batch.is_empty() {
        return;
    }
    let seed = world.resource::<EngineConfig>().seed;
    for inc in batch {
        let (a, tag) = if inc.req.to_tag().is_some() {
            (refresh(world, &inc.req), None)
        } else {
            match initial(world, &inc) {
                Ok((a, tag)) => (a, Some(tag)),
                Err(a) => (a, None),
            }
        };
        let response = answer_response(&inc, a, tag.as_deref(), seed);
        replies.push(inc, response);
    }
    replies.send(world);
}

/// Whether the subscriber's `Accept` allows the body type `t` (RFC 3261 §20.1: `*/*` and
/// `type/*` ranges count).
pub fn accepts_type(req: &Request, t: &str) -> bool {
    req.header_values(Name::Accept)
        .map(fields::media_type)
        .any(|range| {
            range == "*/*"
                || range.eq_ignore_ascii_case(t)
                || range.split_once('/').is_some_and(|(major, minor)| {
                    minor == "*"
                        && t.split('/')
                            .next()
                            .is_some_and(|m| m.eq_ignore_ascii_case(major))
                })
        })
}

/// RFC 6665 §4.2.1 / RFC 3261 §8.2.3: does the subscriber accept one of the package's types?
/// No `Accept` means the package's default type (RFC 6665 §4.2.1).
fn accepts(req: &Request, types: &[&str]) -> bool {
    req.header_values(Name::Accept).next().is_none() || types.iter().any(|t| accepts_type(req, t))
}

fn initial(world: &mut World, inc: &Incoming) -> Result<(Answer, LocalTag), Answer> {
    let req = &inc.req;
    let now = world.resource::<Clock>().now;
    let engine = world.resource::<EngineConfig>();
    let (seed, symmetric) = (engine.seed, engine.force_rport);
    let packages = world.resource::<Packages>();
    let Some((package, spec)) = event_package(req)
        .and_then(|e| packages.for_request(world, req, e))
        .map(|(id, spec)| (id, spec.clone()))
    else {
        return Err(Answer::new(489, "Bad Event").with("Allow-Events", packages.allow_events()));
    };
    if !accepts(req, spec.content_types) {
        return Err(
            Answer::new(406, "Not Acceptable").with("Accept", spec.content_types.join(", "))
        );
    }
    let granted = granted_expires(
        req,
        spec.min_expires,
        spec.max_expires,
        spec.default_expires,
    )?;
    // RFC 6665 §4.1.2.1: a SUBSCRIBE carries the subscriber's target in Contact.
    let Some(contact) = req
        .header_values(Name::Contact)
        .next()
        .map(|c| uri_of(c).to_owned())
    else {
        return Err(Answer::new(400, "Missing Contact header"));
    };
    let watcher = world
        .resource::<SubscriptionIndex>()
        .watcher_key_of_from(req.header(Name::From).unwrap_or(""));
    if world.resource::<SubscriptionIndex>().count(watcher) as usize >= spec.max_per_watcher {
        return Err(Answer::new(403, "Too many subscriptions by this watcher"));
    }
    // Our tag names the subscription's entity, so that a request in the dialog finds it
    // without a dialog index.
    let sub = world.spawn_empty().id();
    let local_tag = local_tag(sub, req.call_id(), seed);
    let state = if granted == 0 {
        SubState::Terminating(Some(Reason::Timeout))
    } else {
        SubState::Active
    };
    let expires_at = now.plus_secs(granted as u64);
    // the package attaches the content (or points `source` at a shared one)
    world.entity_mut(sub).insert(Subscription {
        expires_at,
        source: sub,
        package,
        state,
        flow: NotifyFlow {
            dirty: true,
            ..Default::default()
        },
        dialog: Dialog::none(),
    });
    if let Err(refusal) = (spec.on_subscribe)(world, req, sub) {
        world.despawn(sub);
        return Err(refusal);
    }
    // the dialog, once the source is known: a To naming it need not be stored
    let route_set: Vec<&str> = req.header_values(Name::RecordRoute).collect();
    let dest = next_hop(&contact, &route_set, &req.source, symmetric);
    let source = world.get::<Subscription>(sub).expect("spawned").source;
    let dialog = world.resource_scope(|world, mut store: Mut<DialogStore>| {
        Dialog::new(
            &DialogParts {
                call_id: req.call_id(),
                local: req.header(Name::To).unwrap_or_default(),
                remote: req.header(Name::From).unwrap_or_default(),
                remote_target: &contact,
                event_id: event_id(req).unwrap_or(""),
                route_set: &route_set,
            },
            req.cseq,
            dest,
            world.get::<SourceUri>(source).map(|u| &*u.0),
            &mut store,
        )
    });
    let mut s = world.get_mut::<Subscription>(sub).expect("spawned");
    s.dialog = dialog;
    let state = s.state;
    world.resource_mut::<SubscriptionIndex>().add(watcher);
    // for packages that report on subscriptions (watcher information)
    let trusted = &world.resource::<EngineConfig>().trusted_peers;
    let who = crate::sip::identity::requester(req, trusted).to_owned();
    super::lifecycle::record(
        world,
        sub,
        source,
        &who,
        super::lifecycle::status_of(state),
        super::lifecycle::Event::Subscribe,
    );
    if granted > 0 {
        world.resource_mut::<Timers>().arm(
            TimerKind::SubscriptionExpiry,
            sub.index_u32() as u64,
            expires_at,
        );
    }
    world.resource_mut::<NotifyQueue>().0.push(sub);
    super::durable::created(world, sub);
    let contact = our_contact(req);
    let mut ok = Answer::new(200, "OK")
        .with("Expires", granted)
        .with("Contact", contact);
    if let Some(tag) = spec.require {
        ok = ok.with("Require", tag);
    }
    Ok((ok, local_tag))
}

/// The subscription a request in a dialog belongs to: the entity our To tag names, if it still
/// holds that dialog (same tag and Call-ID); or a restored one whose kept tag it is.
pub fn dialog_of(world: &World, req: &Request) -> Option<Entity> {
    let tag = req.to_tag()?;
    let same_call = |e: Entity| {
        world.get::<Subscription>(e).is_some_and(|s| {
            s.dialog.strings(world.resource::<DialogStore>()).call_id() == req.call_id()
        })
    };
    if let Some(e) = super::durable::alias(world, tag).filter(|&e| same_call(e)) {
        return Some(e);
    }
    let bits = crate::hex::read(tag.split_once('.')?.0.as_bytes())?;
    let e = Entity::try_from_bits(bits)?;
    let d = &world.get_entity(e).ok()?.get::<Subscription>()?.dialog;
    let seed = world.resource::<EngineConfig>().seed;
    let call_id = d.strings(world.resource::<DialogStore>()).call_id();
    (call_id == req.call_id() && &*local_tag(e, req.call_id(), seed) == tag).then_some(e)
}

/// Our Contact for the dialog: the address the SUBSCRIBE reached.
fn our_contact(req: &Request) -> String {
    let tcp = req.source.transport.uri_param();
    let mut contact = String::with_capacity(64);
    contact.push_str("<sip:");
    contact.push_str(AddrText::socket(req.source.local).as_str());
    contact.push_str(tcp);
    contact.push('>');
    contact
}

fn refresh(world: &mut World, req: &Request) -> Answer {
    let now = world.resource::<Clock>().now;
    let gone = || Answer::new(481, "Subscription Does Not Exist");
    let Some(sub) = dialog_of(world, req) else {
        return gone();
    };
    let Some(s) = world.get::<Subscription>(sub) else {
        return gone();
    };
    if !matches!(s.state, SubState::Active | SubState::Pending) {
        return gone();
    }
    let spec = world.resource::<Packages>().spec(s.package).clone();
    let event_id_differs =
        s.dialog.strings(world.resource::<DialogStore>()).event_id() != event_id(req);
    if event_package(req).is_none_or(|e| !e.eq_ignore_ascii_case(spec.event)) || event_id_differs {
        let events = world.resource::<Packages>().allow_events();
        return Answer::new(489, "Bad Event").with("Allow-Events", events);
    }
    let granted = match granted_expires(
        req,
        spec.min_expires,
        spec.max_expires,
        spec.default_expires,
    ) {
        Ok(g) => g,
        Err(a) => return a,
    };
    let in_order = world.resource_scope(|world, mut store: Mut<DialogStore>| {
        let mut s = world.get_mut::<Subscription>(sub).expect("live");
        let d = &mut s.dialog;
        // RFC 3261 §12.2.2: requests in a dialog carry increasing CSeq numbers.
        if req.cseq <= d.remote_cseq {
            return false;
        }
        d.remote_cseq = req.cseq;
        // target refresh (RFC 6665 §4.1.2.1)
        if let Some(c) = req.header_values(Name::Contact).next() {
            d.set_remote_target(uri_of(c), &mut store);
        }
        true
    });
    if !in_order {
        return Answer::new(500, "CSeq out of order");
    }
    let expires_at = now.plus_secs(granted as u64);
    let mut s = world.get_mut::<Subscription>(sub).expect("live");
    s.expires_at = expires_at;
    s.flow.dirty = true;
    // a restored subscription waiting for its paced NOTIFY gets it now, as any refresh does
    s.flow.held = false;
    if granted == 0 {
        // unsubscribe: one final NOTIFY (RFC 6665 §4.2.1.4). `reason=timeout`, as Kamailio
        // sends: without a reason a client may re-subscribe at once (RFC 6665 §4.1.3), and
        // PJSUA schedules exactly that.
        s.state = SubState::Terminating(Some(Reason::Timeout));
    } else {
        world.resource_mut::<Timers>().arm(
            TimerKind::SubscriptionExpiry,
            sub.index_u32() as u64,
            expires_at,
        );
        (spec.on_refresh)(world, sub);
    }
    world.resource_mut::<NotifyQueue>().0.push(sub);
    super::durable::changed(world, sub);
    let contact = our_contact(req);
    let ok = Answer::new(200, "OK")
        .with("Expires", granted)
        .with("Contact", contact);
    match spec.require {
        Some(tag) => ok.with("Require", tag),
        None => ok,
    }
}
