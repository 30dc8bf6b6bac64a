//! List subscriptions (RFC 4662 §4): a SUBSCRIBE to a service URI. The subscriber must
//! support `eventlist` (421 otherwise, §4.1) and accept RLMI in `multipart/related` (406,
//! §4.2); only the list's owner may subscribe to it (403). Accepted, it watches every member
//! through a back-end subscription; a refresh reports the full state again and gives members
//! whose back-end ended another one; its end ends them all.

use bevy_ecs::prelude::*;

use super::lists::{build_slots, list_for, release};
use super::services::Services;
use super::{EVENTLIST, ListWatch, ServiceList, backend};
use crate::formats::rlmi::{CONTENT_TYPE as RLMI, MULTIPART};
use crate::router::Answer;
use crate::sip::fields::uri_of;
use crate::sip::identity::{identity_key, requester};
use crate::sip::{HeaderLookup, Name, Request};
use crate::subscription::Content;
use crate::subscription::subscribe::accepts_type;

/// Whether a presence SUBSCRIBE is to one of our list services.
pub fn claims(world: &World, req: &Request) -> bool {
    world
        .get_resource::<Services>()
        .is_some_and(|s| s.find(&req.uri.raw).is_some())
}

/// Whether the subscriber accepts list notifications: `multipart/related` and RLMI (RFC 4662
/// §4.2; wildcards count). With no `Accept` only the package's PIDF is acceptable.
fn accepts_lists(req: &Request) -> bool {
    accepts_type(req, MULTIPART) && accepts_type(req, RLMI)
}

/// Accept a list subscription.
pub fn on_subscribe(world: &mut World, req: &Request, sub: Entity) -> Result<(), Answer> {
    let Some(service) = world.resource::<Services>().find(&req.uri.raw).cloned() else {
        return Err(Answer::new(404, "Not Found"));
    };
    let supported = req
        .header_values(Name::Supported)
        .any(|t| t.eq_ignore_ascii_case(EVENTLIST));
    if !supported {
        return Err(Answer::new(421, "Extension Required").with("Require", EVENTLIST));
    }
    if !accepts_lists(req) {
        return Err(Answer::new(406, "Not Acceptable").with(
            "Accept",
            format!("{MULTIPART}, {RLMI}, {}", crate::presence::PIDF),
        ));
    }
    let trusted = &world.resource::<crate::EngineConfig>().trusted_peers;
    let identity = requester(req, trusted).to_owned();
    // a user's services are theirs (OMA RLS: the list is the owner's buddy list)
    if identity_key(&identity).is_none() || identity_key(&identity) != identity_key(&service.owner)
    {
        return Err(Answer::new(403, "Forbidden: not the list's owner"));
    }
    let key = identity_key(&service.uri).unwrap_or_default();
    let Some(list) = list_for(world, &key, &service) else {
        return Err(Answer::new(404, "Not Found"));
    };
    let resolved = world
        .get::<ServiceList>(list)
        .expect("live")
        .resolved
        .clone();
    if !resolved.presence {
        release(world, list, sub);
        let events = world
            .resource::<crate::subscription::Packages>()
            .allow_events();
        return Err(Answer::new(489, "Bad Event").with("Allow-Events", events));
    }
    world
        .get_mut::<ServiceList>(list)
        .expect("live")
        .subscribers
        .push(sub);
    let from = uri_of(req.header(Name::From).unwrap_or(""));
    if identity != from {
        world
            .entity_mut(sub)
            .insert(crate::privacy::AssertedIdentity(identity.as_str().into()));
    }
    world.entity_mut(sub).insert((
        ListWatch {
            list,
            resolved: resolved.clone(),
            identity: identity.as_str().into(),
            slots: Vec::new(),
            version: 0,
            full: true,
            changed: smallvec::SmallVec::new(),
            last_sent: None,
            held: false,
            next_instance: 1,
            root: None,
            encoded_in: 0,
        },
        // written before each NOTIFY (module `notify`)
        Content::default(),
    ));
    let slots = build_slots(world, sub, &resolved, Vec::new(), &identity);
    world.get_mut::<ListWatch>(sub).expect("inserted").slots = slots;
    Ok(())
}

/// A refresh: the next NOTIFY is a full state; members whose back-end subscription ended get
/// a new one, the others are placed again by their rules.
pub fn on_refresh(world: &mut World, sub: Entity) {
    let Some(w) = world.get::<ListWatch>(sub) else {
        return;
    };
    let slots: Vec<(Option<Entity>, bool)> = w.slots.iter().map(|s| (s.back_end, s.over)).collect();
    for (i, (back_end, over)) in slots.into_iter().enumerate() {
        match back_end {
            Some(be) => {
                if let Some(p) = crate::presence::watch::watched(world, be) {
                    crate::privacy::refreshed(world, be, p);
                }
            }
            None if !over => super::lists::reopen(world, sub, i as u32),
            None => {}
        }
    }
    if let Some(mut w) = world.get_mut::<ListWatch>(sub) {
        w.full = true;
    }
}

/// The list subscription ends: so do its back-end subscriptions.
pub fn on_end(world: &mut World, sub: Entity) {
    let Some(mut w) = world.get_mut::<ListWatch>(sub) else {
        return;
    };
    let (list, slots) = (w.list, std::mem::take(&mut w.slots));
    for be in slots.into_iter().filter_map(|s| s.back_end) {
        backend::close(world, be);
    }
    release(world, list, sub);
}
