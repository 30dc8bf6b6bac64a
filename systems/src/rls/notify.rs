//! List NOTIFYs. The Lists set gathers what back-end subscriptions were told this tick (a
//! member's view changed, its rules moved it) into their list subscriptions' changed slots;
//! the NotifyEncode set writes each list subscription's body just before it is sent: the RLMI
//! document (full or partial state, RFC 4662 §5.2) and the `multipart/related` framing around
//! the member parts, each part encoded once per view and tick however many lists carry it.

use std::borrow::Cow;
use std::hash::BuildHasher;

use bevy_ecs::entity::EntityHashMap;
use bevy_ecs::prelude::*;
use bytes::Bytes;

use super::remote::{Remote, RemoteState};
use super::{BackEnd, ListWatch, Rls, RlsConfig, backend};
use crate::formats::pidf;
use crate::formats::rlmi::{self, Instance, InstanceState, Resource};
use crate::presence::{PIDF, PresenceConfig};
use crate::subscription::{
    Content, MediaType, NotifyQueue, Reason, SourceUri, SubState, Subscription,
};
use crate::time::Clock;
use crate::timers::{DueTimers, TimerKind, Timers};

/// The Lists set: held NOTIFYs whose interval is over go again; back-end subscriptions that
/// were touched mark their slot changed (and their list subscription dirty); a back-end that
/// its member's rules ended is closed, and one asked to subscribe again (`deactivated`) is
/// opened anew.
pub fn collect(world: &mut World) {
    let due: Vec<Entity> = world
        .resource::<DueTimers>()
        .of(TimerKind::ListNotify)
        .filter_map(|d| Entity::try_from_bits(d.key))
        .collect();
    let mut touched = Vec::new();
    for e in due {
        if let Some(mut w) = world.get_mut::<ListWatch>(e)
            && w.held
        {
            w.held = false;
            touched.push(e);
        }
    }
    if world.resource::<Rls>().back_ends == 0 {
        touch(world, &touched);
        return;
    }
    let mut heard: Vec<(Entity, BackEnd, SubState)> = Vec::new();
    world.resource_scope(|world, queue: Mut<NotifyQueue>| {
        for &e in &queue.0 {
            let Ok(mut er) = world.get_entity_mut(e) else {
                continue;
            };
            let Some(b) = er.get::<BackEnd>().copied() else {
                continue;
            };
            let Some(mut s) = er.get_mut::<Subscription>() else {
                continue;
            };
            if s.flow.dirty {
                s.flow.dirty = false;
                heard.push((e, b, s.state));
            }
        }
    });
    for (be, b, state) in heard {
        let Some(mut w) = world.get_mut::<ListWatch>(b.list_sub) else {
            continue;
        };
        let slot = b.slot as usize;
        if w.slots.get(slot).and_then(|s| s.back_end) != Some(be) {
            continue;
        }
        match state {
            SubState::Terminating(reason) => {
                // its member's rules ended it (`rejected`, or `deactivated`: subscribe again)
                backend::close(world, be);
                let reason = reason.unwrap_or(Reason::Deactivated);
                super::lists::back_end_ended(world, b.list_sub, b.slot, be, reason);
            }
            _ => w.changed.push(b.slot),
        }
        touched.push(b.list_sub);
    }
    touch(world, &touched);
}

/// Mark list subscriptions dirty and queue them (once each; the queue tolerates repeats).
pub(super) fn touch(world: &mut World, subs: &[Entity]) {
    if subs.is_empty() {
        return;
    }
    world.resource_scope(|world, mut q: Mut<NotifyQueue>| {
        for &sub in subs {
            if let Some(mut s) = world.get_mut::<Subscription>(sub)
                && !s.flow.dirty
            {
                q.touch(sub, &mut s);
            }
        }
    });
}

/// A member part written this tick, by the entity whose content it is.
pub struct Part {
    cid: Box<str>,
    bytes: Bytes,
    /// The default boundary occurs in it.
    collides: bool,
}

/// An instance id: a number in hex, inline (written per resource and NOTIFY).
#[derive(Clone, Copy)]
pub struct InstanceId {
    buf: [u8; 8],
    len: u8,
}

impl InstanceId {
    fn of(n: u32) -> InstanceId {
        let mut buf = [0u8; 8];
        let mut len = 0;
        for shift in (0..8).rev() {
            let d = (n >> (shift * 4)) & 0xf;
            if d != 0 || len > 0 || shift == 0 {
                buf[len] = b"0123456789abcdef"[d as usize];
                len += 1;
            }
        }
        InstanceId {
            buf,
            len: len as u8,
        }
    }

    fn as_str(&self) -> &str {
        // hex digits only
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("0")
    }
}

/// What one `<resource>` of a NOTIFY says: its slot and, if any, its instance's id, state and
/// the entity whose content is its part.
#[derive(Clone, Copy)]
pub struct Listed {
    slot: usize,
    instance: Option<(InstanceId, InstanceState, Option<Entity>)>,
}

/// Buffers of [`encode`], kept between ticks.
#[derive(Default)]
pub struct Scratch {
    which: Vec<usize>,
    listed: Vec<Listed>,
    parts: Vec<Bytes>,
}

/// Write the body of every list subscription about to be notified (ready: dirty, none in
/// flight), unless its minimum interval holds it back.
#[allow(clippy::too_many_arguments)]
pub fn encode(
    queue: Res<NotifyQueue>,
    mut lists: Query<(&mut Subscription, &mut ListWatch, &mut Content)>,
    back_ends: Query<&Subscription, Without<ListWatch>>,
    contents: Query<&Content, Without<ListWatch>>,
    uris: Query<&SourceUri>,
    remotes: Query<&Remote>,
    config: Res<RlsConfig>,
    presence: Res<PresenceConfig>,
    mut rls: ResMut<Rls>,
    mut timers: ResMut<Timers>,
    clock: Res<Clock>,
    mut parts: Local<EntityHashMap<Part>>,
    mut run: Local<u64>,
    mut scratch: Local<Scratch>,
) {
    if rls.lists.is_empty() {
        return;
    }
    let now = clock.now;
    parts.clear();
    *run += 1;
    let run = *run;
    let rls = &mut *rls;
    let Scratch {
        which,
        listed,
        parts: part_bytes,
    } = &mut *scratch;
    for &e in &queue.0 {
        let Ok((mut s, mut w, mut content)) = lists.get_mut(e) else {
            continue;
        };
        if !s.flow.ready() || w.encoded_in == run {
            continue;
        }
        w.encoded_in = run;
        let terminating = matches!(s.state, SubState::Terminating(_));
        let min = config.min_notify_interval_ms;
        if min > 0
            && !terminating
            && let Some(last) = w.last_sent
            && now < last.plus_ms(min)
        {
            // RFC 4662 §4.6: at most one NOTIFY per interval; what changes meanwhile merges
            s.flow.dirty = false;
            if !w.held {
                w.held = true;
                timers.arm(TimerKind::ListNotify, e.to_bits(), last.plus_ms(min));
            }
            continue;
        }
        // RFC 4662 §5.2: the NOTIFY after a SUBSCRIBE is a full state, the one an unsubscribe
        // asks for included (a final NOTIFY is one: expiry and list removal report all too)
        let full = w.full || terminating;
        which.clear();
        if full {
            which.extend(0..w.slots.len());
        } else {
            which.extend(w.changed.iter().map(|&i| i as usize));
            which.sort_unstable();
            which.dedup();
        }
        listed.clear();
        for &i in which.iter() {
            let Some(slot) = w.slots.get(i) else { continue };
            let instance = if slot.over {
                None
            } else if let Some(be) = slot.back_end
                && let Ok(r) = remotes.get(be)
            {
                // another domain's member: its state as its NOTIFYs told it
                let state = match r.state {
                    RemoteState::Active => InstanceState::Active,
                    RemoteState::Pending => InstanceState::Pending,
                    RemoteState::Trying | RemoteState::Closing => {
                        listed.push(Listed {
                            slot: i,
                            instance: None,
                        });
                        continue;
                    }
                };
                let source =
                    (state == InstanceState::Active && contents.contains(be)).then_some(be);
                if let Some(src) = source
                    && !parts.contains_key(&src)
                {
                    let part = member_part(src, &contents, &uris, &presence, rls);
                    parts.insert(src, part);
                }
                Some((InstanceId::of(slot.instance), state, source))
            } else if let Some(be) = slot.back_end {
                let Ok(b) = back_ends.get(be) else { continue };
                let state = match b.state {
                    SubState::Active => InstanceState::Active,
                    SubState::Pending => InstanceState::Pending,
                    SubState::Terminating(r) => InstanceState::Terminated(r.map(Reason::as_str)),
                };
                let source = (state == InstanceState::Active).then_some(b.source);
                if let Some(src) = source
                    && !parts.contains_key(&src)
                {
                    let part = member_part(src, &contents, &uris, &presence, rls);
                    parts.insert(src, part);
                }
                Some((InstanceId::of(slot.instance), state, source))
            } else {
                slot.ended.map(|r| {
                    let state = InstanceState::Terminated(Some(r.as_str()));
                    (InstanceId::of(slot.instance), state, None)
                })
            };
            listed.push(Listed { slot: i, instance });
        }
        part_bytes.clear();
        let mut collides = false;
        for src in listed.iter().filter_map(|l| l.instance?.2) {
            if let Some(p) = parts.get(&src) {
                collides |= p.collides;
                part_bytes.push(p.bytes.clone());
            }
        }
        let resolved = w.resolved.clone();
        // the root's Content-ID names the subscription: the same in each of its NOTIFYs
        if w.root.is_none() {
            let host = crate::sip::identity::host_of(&resolved.uri).unwrap_or("localhost");
            let cid = format!("rlmi.{:x}@{host}", e.index_u32());
            let t = rlmi::content_type(&rls.boundary.text, &cid).into();
            w.root = Some((cid.into(), t));
        }
        let w = &mut *w;
        let (root_cid, content_type) = w.root.as_ref().expect("written above");
        // the RLMI document is written in place, after the root part's headers
        let estimate = 200 + listed.len() * 120;
        let mut body = rlmi::multipart_start(
            &rls.boundary.text,
            root_cid,
            rls.cid_form,
            estimate,
            part_bytes,
        );
        let at = body.len();
        let slots = &w.slots;
        let parts_now = &*parts;
        rlmi::write(
            &mut body,
            &resolved.uri,
            w.version,
            full,
            resolved.name.as_deref(),
            listed.iter().map(|l| {
                let slot = &slots[l.slot];
                Resource {
                    uri: &slot.uri,
                    name: slot.name.as_deref(),
                    instance: l.instance.as_ref().map(|(id, state, src)| Instance {
                        id: id.as_str(),
                        state: *state,
                        cid: src.and_then(|s| parts_now.get(&s)).map(|p| &*p.cid),
                    }),
                }
            }),
        );
        collides |= rls.boundary.occurs_in(&body[at..]);
        *content = if collides {
            let doc = body[at..].to_vec();
            let b = boundary_for(&rls.boundary.text, &doc, part_bytes);
            Content {
                content_type: MediaType::Shared(rlmi::content_type(&b, root_cid).into()),
                body: rlmi::multipart(&b, root_cid, rls.cid_form, &doc, part_bytes),
            }
        } else {
            Content {
                content_type: MediaType::Shared(content_type.clone()),
                body: rlmi::multipart_finish(body, &rls.boundary.text, part_bytes),
            }
        };
        w.version += 1;
        w.full = false;
        w.changed.clear();
        w.last_sent = Some(now);
    }
}

/// The part of a member's current view (`source`): its document, or the empty view of a
/// presentity nobody publishes, named by a hash of its URI and content.
fn member_part(
    source: Entity,
    contents: &Query<&Content, Without<ListWatch>>,
    uris: &Query<&SourceUri>,
    presence: &PresenceConfig,
    rls: &mut Rls,
) -> Part {
    let uri = uris.get(source).map_or("", |u| &*u.0);
    let (content_type, body) = match contents.get(source) {
        Ok(c) if !c.body.is_empty() => (c.content_type.clone(), c.body.clone()),
        _ => (
            MediaType::Static(PIDF),
            pidf::empty_view(uri, presence.closed_when_unpublished),
        ),
    };
    let host = crate::sip::identity::host_of(uri).unwrap_or("localhost");
    let cid = format!("{:016x}@{host}", rls.cid_keys.hash_one((uri, &body[..])));
    let bytes = rlmi::part(&cid, rls.cid_form, &content_type, &body);
    rls.parts_encoded += 1;
    Part {
        collides: rls.boundary.occurs_in(&bytes),
        cid: cid.into(),
        bytes,
    }
}

/// The boundary of one NOTIFY whose RLMI document or a part contains the engine's (a document
/// can say anything): the first variant of it that none contains.
fn boundary_for<'a>(default: &'a str, rlmi_doc: &[u8], parts: &[Bytes]) -> Cow<'a, str> {
    (1u32..)
        .map(|n| format!("{default}.{n:x}"))
        .find(|b| !rlmi::collides(rlmi_doc, b) && !parts.iter().any(|p| rlmi::collides(p, b)))
        .map(Cow::Owned)
        .expect("some variant is absent from a finite body")
}
