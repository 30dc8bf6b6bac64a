//! PUBLISH for the presence event package (RFC 3903 §6): initial, refresh, modify and remove,
//! each answered with the entity tag of the publication and the interval granted.

use bevy_ecs::prelude::*;

use crate::config::EngineConfig;
use crate::formats::pidf;
use crate::router::{Incoming, MethodQueues, local_tag, respond};
use crate::sip::{HeaderLookup, Method, Request};
use crate::time::{Clock, Time};
use crate::timers::{TimerKind, Timers};
use crate::transaction::reply_in_world;

use super::components::{Ids, PresenceIndex, Presentity, Publication, Recompose};
use super::config::{Granted, PresenceConfig, grant};
use super::{EVENT, PIDF};

/// A final answer: status, reason and extra headers.
pub struct Answer {
    pub code: u16,
    pub reason: String,
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    pub fn new(code: u16, reason: impl Into<String>) -> Answer {
        Answer {
            code,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Answer {
        self.headers.push((name, value.into()));
        self
    }
}

/// Send `answer` as the final response of `inc`'s transaction.
pub fn answer(world: &mut World, inc: &Incoming, answer: Answer, to_tag: Option<&str>) {
    let seed = world.resource::<EngineConfig>().seed;
    let tag = to_tag.map_or_else(|| local_tag(&inc.req, seed), str::to_owned);
    let mut w = respond(&inc.req, answer.code, &answer.reason, &tag);
    for (n, v) in &answer.headers {
        w.header(n, v);
    }
    reply_in_world(world, inc.tx, &inc.req, w.finish());
}

/// The event package named by an `Event` header (parameters dropped).
pub fn event_package(req: &Request) -> Option<&str> {
    req.header("Event")
        .map(|v| v.split(';').next().unwrap_or("").trim())
}

/// The `id` parameter of an `Event` header.
pub fn event_id(req: &Request) -> Option<&str> {
    let v = req.header("Event")?;
    crate::sip::fields::params(v.split_once(';')?.1)
        .find(|(n, _)| n.eq_ignore_ascii_case("id"))
        .and_then(|(_, v)| v)
}

/// `Expires` as a number; Err when present but malformed.
pub fn expires(req: &Request) -> Result<Option<u32>, ()> {
    match req.header("Expires") {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(|n| Some(n.min(u32::MAX as u64) as u32))
            .map_err(|_| ()),
    }
}

/// The presentity entity for `aor`, spawned (with its empty view) when new.
pub fn presentity_for(world: &mut World, aor: &str) -> Entity {
    if let Some(&e) = world.resource::<PresenceIndex>().presentities.get(aor) {
        return e;
    }
    let uri = format!("sip:{aor}");
    let closed = world.resource::<PresenceConfig>().closed_when_unpublished;
    let view = super::components::View {
        body: pidf::empty_view(&uri, closed),
        version: 1,
    };
    let e = world
        .spawn((
            Presentity {
                aor: aor.into(),
                uri: uri.into(),
                publications: Vec::new(),
                watchers: Vec::new(),
            },
            view,
        ))
        .id();
    world
        .resource_mut::<PresenceIndex>()
        .presentities
        .insert(aor.into(), e);
    e
}

/// Remove a publication and mark its presentity for recomposition.
pub fn remove_publication(world: &mut World, publication: Entity) {
    let Some(p) = world.get::<Publication>(publication) else {
        return;
    };
    let (presentity, etag) = (p.presentity, p.etag.clone());
    world.resource_mut::<PresenceIndex>().etags.remove(&etag);
    world.despawn(publication);
    if let Some(mut pr) = world.get_mut::<Presentity>(presentity) {
        pr.publications.retain(|&x| x != publication);
        world.entity_mut(presentity).insert(Recompose);
    }
}

/// Handle this tick's PUBLISH requests, one by one in arrival order.
pub fn handle_publish(world: &mut World) {
    let batch = world.resource_mut::<MethodQueues>().take(Method::Publish);
    for inc in batch {
        let a = publish(world, &inc.req);
        answer(world, &inc, a, None);
    }
}

fn publish(world: &mut World, req: &Request) -> Answer {
    let now = world.resource::<Clock>().now;
    let seed = world.resource::<EngineConfig>().seed;
    let cfg = world.resource::<PresenceConfig>();
    if !cfg.serves(&req.uri.host) {
        return Answer::new(404, "Not Found");
    }
    // RFC 3903 §6 step 2: the event package must be one we serve.
    if event_package(req).is_none_or(|e| !e.eq_ignore_ascii_case(EVENT)) {
        return Answer::new(489, "Bad Event").with("Allow-Events", EVENT);
    }
    let Ok(requested) = expires(req) else {
        return Answer::new(400, "Malformed Expires");
    };
    let granted = match grant(
        requested,
        cfg.publish_min_expires,
        cfg.publish_max_expires,
        cfg.publish_default_expires,
    ) {
        Granted::TooBrief(min) => {
            return Answer::new(423, "Interval Too Brief").with("Min-Expires", min.to_string());
        }
        Granted::Secs(s) => s,
    };
    let aor = req.uri.aor();
    // RFC 3903 §6 step 3: the body must be of a type we understand.
    let doc = if req.body.is_empty() {
        None
    } else {
        let ct = req
            .header("Content-Type")
            .map(|v| v.split(';').next().unwrap_or("").trim());
        if ct.is_none_or(|t| !t.eq_ignore_ascii_case(PIDF)) {
            return Answer::new(415, "Unsupported Media Type").with("Accept", PIDF);
        }
        if req.body.len() > cfg.max_body_bytes {
            return Answer::new(413, "Request Entity Too Large");
        }
        let doc = match pidf::parse_bytes(req.body.clone()) {
            Ok(d) => d,
            Err(e) => return Answer::new(400, format!("Bad Request ({e})")),
        };
        if !pidf::entity_matches(&doc.entity, &aor) {
            return Answer::new(400, "PIDF entity does not name the presentity");
        }
        Some(doc)
    };
    let at = now.plus_secs(granted as u64);
    match req.header("SIP-If-Match").map(str::trim) {
        None => {
            let Some(doc) = doc else {
                return Answer::new(400, "Initial PUBLISH without a body");
            };
            if granted == 0 {
                return Answer::new(400, "Initial PUBLISH with Expires 0");
            }
            let presentity = presentity_for(world, &aor);
            let (etag, seq) = {
                let mut ids = world.resource_mut::<Ids>();
                (ids.token(seed), ids.seq())
            };
            let p = world
                .spawn(Publication {
                    presentity,
                    etag: etag.as_str().into(),
                    expires_at: at,
                    doc,
                    seq,
                })
                .id();
            world
                .resource_mut::<PresenceIndex>()
                .etags
                .insert(etag.as_str().into(), p);
            world
                .get_mut::<Presentity>(presentity)
                .expect("live")
                .publications
                .push(p);
            world.entity_mut(presentity).insert(Recompose);
            arm(world, p, at);
            Answer::new(200, "OK")
                .with("SIP-ETag", etag)
                .with("Expires", granted.to_string())
        }
        Some(tag) => {
            // §6 step 4: the entity tag must name live state of this presentity.
            let found = world.resource::<PresenceIndex>().etags.get(tag).copied();
            let Some(p) = found.filter(|&p| {
                world.get::<Publication>(p).is_some_and(|pb| {
                    world
                        .get::<Presentity>(pb.presentity)
                        .is_some_and(|pr| *pr.aor == *aor)
                        && pb.expires_at > now
                })
            }) else {
                return Answer::new(412, "Conditional Request Failed");
            };
            if granted == 0 {
                remove_publication(world, p);
                return Answer::new(200, "OK").with("Expires", "0");
            }
            let (etag, seq) = {
                let mut ids = world.resource_mut::<Ids>();
                (ids.token(seed), ids.seq())
            };
            let mut pb = world.get_mut::<Publication>(p).expect("live");
            let old = std::mem::replace(&mut pb.etag, etag.as_str().into());
            pb.expires_at = at;
            let presentity = pb.presentity;
            let modified = doc.is_some();
            if let Some(doc) = doc {
                pb.doc = doc;
                pb.seq = seq;
            }
            let mut idx = world.resource_mut::<PresenceIndex>();
            idx.etags.remove(&old);
            idx.etags.insert(etag.as_str().into(), p);
            if modified {
                // a modified source is now the newest: it wins on shared ids
                let mut pr = world.get_mut::<Presentity>(presentity).expect("live");
                pr.publications.retain(|&x| x != p);
                pr.publications.push(p);
                world.entity_mut(presentity).insert(Recompose);
            }
            arm(world, p, at);
            Answer::new(200, "OK")
                .with("SIP-ETag", etag)
                .with("Expires", granted.to_string())
        }
    }
}

fn arm(world: &mut World, publication: Entity, at: Time) {
    world
        .resource_mut::<Timers>()
        .arm(TimerKind::PublicationExpiry, publication.to_bits(), at);
}
