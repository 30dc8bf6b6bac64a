//! PUBLISH for the presence event package (RFC 3903 §6): initial, refresh, modify and remove,
//! each answered with the entity tag of the publication and the interval granted.

use bevy_ecs::prelude::*;

use crate::config::EngineConfig;
use crate::formats::pidf;
use crate::ids::Ids;
use crate::router::{Answer, MethodQueues, Replies, answer_response};
use crate::sip::{HeaderLookup, Method, Name, Request};
use crate::subscription::subscribe::{event_package, granted_expires};
use crate::time::{Clock, Time};
use crate::timers::{TimerKind, Timers};

use super::components::{
    PresenceIndex, Presentity, Publication, SourceUri, aor_of, etag_parts, etag_text,
    presentity_or_slot, recompose,
};
use super::config::PresenceConfig;
use super::{EVENT, PIDF};
use crate::subscription::Content;

/// The presentity entity for `aor`, spawned when new (with no view: until somebody publishes,
/// NOTIFYs carry the empty view built from its URI).
pub fn presentity_for(world: &mut World, aor: &str) -> Entity {
    indexed_presentity(world, aor, |world, presentity| world.spawn(presentity).id())
}

/// The presentity entity for `aor` about to get a publication. When new it is spawned with the
/// (still empty) view that this tick's composition fills: straight into the archetype of
/// published presentities, not through the one of watched-only presentities (bevy tables keep
/// their capacity: a growing population would leave a second, empty table behind).
pub(super) fn published_presentity(world: &mut World, aor: &str) -> Entity {
    indexed_presentity(world, aor, |world, presentity| {
        let view = Content {
            content_type: PIDF.into(),
            body: Default::default(),
        };
        world.spawn((presentity, view)).id()
    })
}

/// The presentity of `aor`, or a new one made by `spawn` from its components and indexed.
fn indexed_presentity(
    world: &mut World,
    aor: &str,
    spawn: impl FnOnce(&mut World, (Presentity, SourceUri)) -> Entity,
) -> Entity {
    let slot = match presentity_or_slot(world, aor) {
        Ok(e) => return e,
        Err(slot) => slot,
    };
    let e = spawn(world, new_presentity(aor));
    world
        .resource_mut::<PresenceIndex>()
        .add_presentity_at(slot, e);
    e
}

fn new_presentity(aor: &str) -> (Presentity, SourceUri) {
    let mut uri = String::with_capacity(4 + aor.len());
    uri.push_str("sip:");
    uri.push_str(aor);
    (
        Presentity {
            publications: Default::default(),
            watchers: Default::default(),
        },
        SourceUri(uri.into_boxed_str()),
    )
}

/// Remove a publication and mark its presentity for recomposition.
pub fn remove_publication(world: &mut World, publication: Entity) {
    let Some(p) = world.get::<Publication>(publication) else {
        return;
    };
    let presentity = p.presentity;
    super::durable::record_removed(world, publication);
    world.despawn(publication);
    if let Some(mut pr) = world.get_mut::<Presentity>(presentity) {
        pr.publications.remove(publication);
        recompose(world, presentity);
    }
}

/// Handle this tick's PUBLISH requests, one by one in arrival order.
pub fn handle_publish(world: &mut World, mut replies: Local<Replies>) {
    let batch = world.resource_mut::<MethodQueues>().take(Method::Publish);
    if batch.is_empty() {
        return;
    }
    let now = world.resource::<Clock>().now;
    let seed = world.resource::<EngineConfig>().seed;
    // (read once per batch: nothing below changes it)
    let cfg = world.resource::<PresenceConfig>().clone();
    for inc in batch {
        let a = publish(world, &cfg, &inc.req, now, seed);
        let response = answer_response(&inc, a, None, seed);
        replies.push(inc, response);
    }
    replies.send(world);
}

fn publish(world: &mut World, cfg: &PresenceConfig, req: &Request, now: Time, seed: u64) -> Answer {
    if !cfg.serves(&req.uri.host) {
        return Answer::new(404, "Not Found");
    }
    // RFC 3903 §6 step 2: the event package must be one we serve.
    if event_package(req).is_none_or(|e| !e.eq_ignore_ascii_case(EVENT)) {
        return Answer::new(489, "Bad Event").with("Allow-Events", EVENT);
    }
    // Step 3: SIP-If-Match names exactly one entity tag of live state of this presentity. It is
    // checked before Expires and the body: a failed step ends the processing.
    let aor = req.uri.aor();
    let target = match req.header(Name::SipIfMatch) {
        None => None,
        Some(v) => {
            let mut tags = crate::sip::fields::split_commas(v).filter(|t| !t.is_empty());
            let (Some(tag), None) = (tags.next(), tags.next()) else {
                return Answer::new(400, "SIP-If-Match must carry exactly one entity-tag");
            };
            match live_publication(world, tag, &aor, now) {
                Some(p) => Some(p),
                None => return Answer::new(412, "Conditional Request Failed"),
            }
        }
    };
    // Step 4: the interval.
    let granted = match granted_expires(
        req,
        cfg.publish_min_expires,
        cfg.publish_max_expires,
        cfg.publish_default_expires,
    ) {
        Ok(g) => g,
        Err(a) => return a,
    };
    // Step 5: a body of a type we understand, naming this presentity.
    let doc = if req.body.is_empty() {
        None
    } else {
        let ct = req
            .header(Name::ContentType)
            .map(crate::sip::fields::media_type);
        if ct.is_none_or(|t| !t.eq_ignore_ascii_case(PIDF)) {
            return Answer::new(415, "Unsupported Media Type").with("Accept", PIDF);
        }
        if req.body.len() > cfg.max_body_bytes {
            return Answer::new(413, "Request Entity Too Large");
        }
        // laid out as the view of a presentity with this one source (see `compose_views`)
        let doc = match pidf::parse_with_view(&req.body, &["sip:", &aor]) {
            Ok(d) => d,
            Err(e) => return Answer::new(400, format!("Bad Request ({e})")),
        };
        if !crate::sip::identity::entity_names(&doc.entity, &aor) {
            return Answer::new(400, "PIDF entity does not name the presentity");
        }
        Some(doc)
    };
    // OMA SOURCE-THROTTLE-PUBLISH: a change of one source sooner than the interval allows
    let mut hold = false;
    if let (Some(p), Some(_), min @ 1..) = (target, &doc, cfg.publish_min_interval_ms)
        && granted > 0
        && let Some(pb) = world.get::<Publication>(p)
        && now < pb.modified_at.plus_ms(min)
    {
        let free_at = pb.modified_at.plus_ms(min);
        if !cfg.publish_throttle_merge {
            let secs = now.until(free_at).div_ceil(1000).max(1);
            return Answer::new(503, "Service Unavailable (publishing too often)")
                .with("Retry-After", secs);
        }
        hold = true;
        if !pb.held {
            world
                .resource_mut::<Timers>()
                .arm(TimerKind::PublishThrottle, p.to_bits(), free_at);
        }
    }
    let at = now.plus_secs(granted as u64);
    let secret = world.resource_mut::<Ids>().random(seed);
    // Steps 6-8: create, refresh, modify or remove; every 2xx carries SIP-ETag and Expires.
    let ok = |p: Entity, secs: u32| {
        Answer::new(200, "OK")
            .with("SIP-ETag", etag_text(secret, p))
            .with("Expires", secs)
    };
    let Some(p) = target else {
        let Some(doc) = doc else {
            return Answer::new(400, "Initial PUBLISH without a body");
        };
        if granted == 0 {
            return Answer::new(400, "Initial PUBLISH with Expires 0");
        }
        let presentity = published_presentity(world, &aor);
        let durable = world
            .get_resource_mut::<crate::durable::DurableLog>()
            .map_or(0, |mut d| d.new_id());
        let p = world
            .spawn(Publication {
                presentity,
                etag: secret,
                expires_at: at,
                doc,
                modified_at: now,
                held: false,
                durable,
            })
            .id();
        super::durable::record_document(world, p, &req.body);
        super::durable::record_tag(world, p);
        world
            .get_mut::<Presentity>(presentity)
            .expect("live")
            .publications
            .push(p);
        recompose(world, presentity);
        arm(world, p, at);
        return ok(p, granted);
    };
    if granted == 0 {
        remove_publication(world, p);
        // this tag names state that is gone: it is only there because every 2xx has one
        return ok(p, 0);
    }
    let mut pb = world.get_mut::<Publication>(p).expect("live");
    // the previous tag no longer names this publication
    pb.etag = secret;
    pb.expires_at = at;
    let presentity = pb.presentity;
    let modified = doc.is_some() && !hold;
    let new_document = doc.is_some();
    if let Some(doc) = doc {
        pb.doc = doc;
    }
    if hold {
        // shown when the interval is over (`show_held`), with whatever is latest then
        pb.held = true;
    } else if modified {
        pb.modified_at = now;
        pb.held = false;
    }
    super::durable::forget_alias(world, p);
    if new_document {
        super::durable::record_document(world, p, &req.body);
    }
    super::durable::record_tag(world, p);
    if modified {
        // a modified source is now the newest: it wins on shared ids
        let mut pr = world.get_mut::<Presentity>(presentity).expect("live");
        pr.publications.move_to_end(p);
        recompose(world, presentity);
    }
    arm(world, p, at);
    ok(p, granted)
}

/// The publication `etag` names, if it is live state of `aor`: the tag names its publication
/// entity, and only the publication's current tag carries its secret.
fn live_publication(world: &World, etag: &str, aor: &str, now: Time) -> Option<Entity> {
    let (secret, named) = etag_parts(etag)?;
    // a tag from before a restart names another process's entity (`durable::alias`)
    let live = |p: Entity| {
        world
            .get::<Publication>(p)
            .filter(|pb| pb.etag == secret && pb.expires_at > now)
            .map(|pb| (p, pb))
    };
    let (p, pb) = live(named).or_else(|| live(super::durable::alias(world, named.to_bits())?))?;
    let uri = world.get::<SourceUri>(pb.presentity)?;
    (aor_of(uri) == aor).then_some(p)
}

fn arm(world: &mut World, publication: Entity, at: Time) {
    world
        .resource_mut::<Timers>()
        .arm(TimerKind::PublicationExpiry, publication.to_bits(), at);
}
