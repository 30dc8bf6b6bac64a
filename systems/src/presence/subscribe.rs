//! SUBSCRIBE for the presence event package (RFC 6665 §4.2.1, RFC 3856 §6): initial requests
//! create a dialog and a subscription; requests in the dialog refresh or end it. Every accepted
//! SUBSCRIBE is followed by an immediate NOTIFY with the current state (§4.2.1.4).

use bevy_ecs::prelude::*;

use crate::config::EngineConfig;
use crate::router::{Incoming, MethodQueues};
use crate::sip::fields::{split_commas, uri_of};
use crate::sip::{HeaderLookup, Method, Request};
use crate::time::Clock;
use crate::timers::{TimerKind, Timers};

use super::components::{
    Ids, NotifyFlow, PresenceIndex, Presentity, SubState, Subscription, SubscriptionBundle,
};
use super::config::{Granted, PresenceConfig, grant};
use super::dialog::{Dialog, next_hop};
use super::notify::NotifyQueue;
use super::publish::{Answer, answer, event_id, event_package, expires, presentity_for};
use super::{EVENT, PIDF};

/// Handle this tick's SUBSCRIBE requests in arrival order.
pub fn handle_subscribe(world: &mut World) {
    let batch = world.resource_mut::<MethodQueues>().take(Method::Subscribe);
    for inc in batch {
        let (a, tag) = if inc.req.to_tag.is_some() {
            refresh(world, &inc.req)
        } else {
            initial(world, &inc)
        };
        answer(world, &inc, a, tag.as_deref());
    }
}

/// RFC 6665 §4.2.1.1 / RFC 3261 §8.2.2: does the subscriber accept PIDF?
fn accepts_pidf(req: &Request) -> bool {
    let mut any = false;
    for v in req.header_values("Accept") {
        any = true;
        let t = v.split(';').next().unwrap_or("").trim();
        if t.eq_ignore_ascii_case(PIDF) || t == "*/*" || t.eq_ignore_ascii_case("application/*") {
            return true;
        }
    }
    !any // absent: PIDF is the package default (RFC 3856 §6.6)
}

fn initial(world: &mut World, inc: &Incoming) -> (Answer, Option<String>) {
    let req = &inc.req;
    let now = world.resource::<Clock>().now;
    let engine = world.resource::<EngineConfig>();
    let (seed, symmetric) = (engine.seed, engine.force_rport);
    let cfg = world.resource::<PresenceConfig>().clone();
    if !cfg.serves(&req.uri.host) {
        return (Answer::new(404, "Not Found"), None);
    }
    if event_package(req).is_none_or(|e| !e.eq_ignore_ascii_case(EVENT)) {
        return (
            Answer::new(489, "Bad Event").with("Allow-Events", EVENT),
            None,
        );
    }
    if !accepts_pidf(req) {
        return (
            Answer::new(406, "Not Acceptable").with("Accept", PIDF),
            None,
        );
    }
    let Ok(requested) = expires(req) else {
        return (Answer::new(400, "Malformed Expires"), None);
    };
    let granted = match grant(
        requested,
        cfg.subscribe_min_expires,
        cfg.subscribe_max_expires,
        cfg.subscribe_default_expires,
    ) {
        Granted::TooBrief(min) => {
            return (
                Answer::new(423, "Interval Too Brief").with("Min-Expires", min.to_string()),
                None,
            );
        }
        Granted::Secs(s) => s,
    };
    // RFC 6665 §4.1.2.1: a SUBSCRIBE carries exactly one Contact, the subscriber's target.
    let Some(contact) = req
        .header_values("Contact")
        .next()
        .map(|c| uri_of(c).to_owned())
    else {
        return (Answer::new(400, "Missing Contact header"), None);
    };
    let watcher_aor = crate::sip::uri::Uri::parse(uri_of(req.header("From").unwrap_or("")))
        .map(|u| u.aor())
        .unwrap_or_default();
    let aor = req.uri.aor();
    let existing = world
        .resource::<PresenceIndex>()
        .presentities
        .get(aor.as_str())
        .copied();
    if let Some(p) = existing {
        if world
            .get::<Presentity>(p)
            .is_some_and(|p| p.watchers.len() >= cfg.max_subscriptions_per_presentity)
        {
            return (
                Answer::new(503, "Too many subscriptions to this presentity")
                    .with("Retry-After", "60"),
                None,
            );
        }
    }
    if world
        .resource::<PresenceIndex>()
        .per_watcher
        .get(watcher_aor.as_str())
        .copied()
        .unwrap_or(0)
        >= cfg.max_subscriptions_per_watcher
    {
        return (
            Answer::new(403, "Too many subscriptions by this watcher"),
            None,
        );
    }

    let presentity = presentity_for(world, &aor);
    let local_tag = world.resource_mut::<Ids>().token(seed);
    let route_set: Vec<Box<str>> = req.header_values("Record-Route").map(Into::into).collect();
    let dest = next_hop(&contact, &route_set, &req.source, symmetric);
    let to = req.header("To").unwrap_or_default();
    let dialog = Dialog {
        call_id: req.call_id.as_str().into(),
        local_tag: local_tag.as_str().into(),
        local: format!("{to};tag={local_tag}").into(),
        remote: req.header("From").unwrap_or_default().into(),
        remote_target: contact.into(),
        route_set,
        local_cseq: 0,
        remote_cseq: req.cseq,
        dest,
    };
    let state = if granted == 0 {
        SubState::Terminating(Some("timeout"))
    } else {
        SubState::Active
    };
    let expires_at = now.plus_secs(granted as u64);
    let sub = world
        .spawn(SubscriptionBundle {
            dialog,
            subscription: Subscription {
                presentity,
                watcher_aor: watcher_aor.as_str().into(),
                event_id: event_id(req).map(Into::into),
                expires_at,
                state,
                flow: NotifyFlow {
                    dirty: true,
                    ..Default::default()
                },
            },
        })
        .id();
    {
        let mut idx = world.resource_mut::<PresenceIndex>();
        idx.dialogs.insert(
            (req.call_id.as_str().into(), local_tag.as_str().into()),
            sub,
        );
        *idx.per_watcher
            .entry(watcher_aor.as_str().into())
            .or_default() += 1;
    }
    world
        .get_mut::<Presentity>(presentity)
        .expect("live")
        .watchers
        .push(sub);
    if granted > 0 {
        world.resource_mut::<Timers>().arm(
            TimerKind::SubscriptionExpiry,
            sub.to_bits(),
            expires_at,
        );
    }
    world.resource_mut::<NotifyQueue>().0.push(sub);
    let contact = our_contact(req);
    (
        Answer::new(200, "OK")
            .with("Expires", granted.to_string())
            .with("Contact", contact),
        Some(local_tag),
    )
}

/// Our Contact for the dialog: the address the SUBSCRIBE reached.
fn our_contact(req: &Request) -> String {
    let tcp = if req.source.transport.is_reliable() {
        ";transport=tcp"
    } else {
        ""
    };
    format!("<sip:{}{tcp}>", req.source.local)
}

fn refresh(world: &mut World, req: &Request) -> (Answer, Option<String>) {
    let now = world.resource::<Clock>().now;
    let to_tag = req.to_tag.clone().unwrap_or_default();
    let key: (Box<str>, Box<str>) = (req.call_id.as_str().into(), to_tag.as_str().into());
    let Some(sub) = world.resource::<PresenceIndex>().dialogs.get(&key).copied() else {
        return (Answer::new(481, "Subscription Does Not Exist"), None);
    };
    let cfg = world.resource::<PresenceConfig>().clone();
    let Some(s) = world.get::<Subscription>(sub) else {
        return (Answer::new(481, "Subscription Does Not Exist"), None);
    };
    if !matches!(s.state, SubState::Active) {
        return (Answer::new(481, "Subscription Does Not Exist"), None);
    }
    if event_package(req).is_none_or(|e| !e.eq_ignore_ascii_case(EVENT))
        || event_id(req) != s.event_id.as_deref()
    {
        return (
            Answer::new(489, "Bad Event").with("Allow-Events", EVENT),
            None,
        );
    }
    let Ok(requested) = expires(req) else {
        return (Answer::new(400, "Malformed Expires"), None);
    };
    let granted = match grant(
        requested,
        cfg.subscribe_min_expires,
        cfg.subscribe_max_expires,
        cfg.subscribe_default_expires,
    ) {
        Granted::TooBrief(min) => {
            return (
                Answer::new(423, "Interval Too Brief").with("Min-Expires", min.to_string()),
                None,
            );
        }
        Granted::Secs(s) => s,
    };
    {
        let mut d = world
            .get_mut::<Dialog>(sub)
            .expect("subscription has a dialog");
        // RFC 3261 §12.2.2: requests in a dialog carry increasing CSeq numbers.
        if req.cseq <= d.remote_cseq {
            return (Answer::new(500, "CSeq out of order"), None);
        }
        d.remote_cseq = req.cseq;
        // target refresh (RFC 6665 §4.1.2.1)
        if let Some(c) = req.header_values("Contact").flat_map(split_commas).next() {
            d.remote_target = uri_of(c).into();
        }
    }
    let expires_at = now.plus_secs(granted as u64);
    let mut s = world.get_mut::<Subscription>(sub).expect("live");
    s.expires_at = expires_at;
    s.flow.dirty = true;
    if granted == 0 {
        // unsubscribe: one final NOTIFY (RFC 6665 §4.2.1.4)
        s.state = SubState::Terminating(None);
    } else {
        world.resource_mut::<Timers>().arm(
            TimerKind::SubscriptionExpiry,
            sub.to_bits(),
            expires_at,
        );
    }
    world.resource_mut::<NotifyQueue>().0.push(sub);
    let contact = our_contact(req);
    (
        Answer::new(200, "OK")
            .with("Expires", granted.to_string())
            .with("Contact", contact),
        None,
    )
}
