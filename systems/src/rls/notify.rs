//! List NOTIFYs. The Lists set gathers what back-end subscriptions were told this tick (a
//! member's view changed, its rules moved it) into their list subscriptions' changed slots;
//! the NotifyEncode set writes each list subscription's body just before it is sent: the RLMI
//! document (full or partial state, RFC 4662 §5.2) and the `multipart/related` framing around
//! the member parts, each part encoded once per view and tick however many lists carry it.

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::sync::Arc;

use bevy_ecs::entity::EntityHashMap;
use bevy_ecs::prelude::*;
use bytes::Bytes;

use super::remote::{Remote, RemoteState};
use super::{BackEnd, ListWatch, Rls, RlsConfig, Root, backend};
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
    let mut heard: Vec<(Entity, BackEnd, SubState, Entity)> = Vec::new();
    // back-ends leave the queue here: nothing is sent for them, and the later systems need
    // not look each of them up again
    world.resource_scope(|world, mut queue: Mut<NotifyQueue>| {
        queue.0.retain(|&e| {
            let Ok(mut er) = world.get_entity_mut(e) else {
                return true;
            };
            let Some(b) = er.get::<BackEnd>().copied() else {
                return true;
            };
            if let Some(mut s) = er.get_mut::<Subscription>()
                && s.flow.dirty
            {
                s.flow.dirty = false;
                heard.push((e, b, s.state, s.source));
            }
            false
        });
    });
    for (be, b, state, source) in heard {
        let Some(mut w) = world.get_mut::<ListWatch>(b.list_sub) else {
            continue;
        };
        match state {
            SubState::Terminating(reason) => {
                if w.slots.get(b.slot as usize).and_then(|s| s.back_end) != Some(be) {
                    continue;
                }
                // its member's rules ended it (`rejected`, or `deactivated`: subscribe again)
                backend::close(world, be);
                let reason = reason.unwrap_or(Reason::Deactivated);
                super::lists::back_end_ended(world, b.list_sub, b.slot, be, reason);
            }
            // what it heard goes along: the NOTIFY need not look at the back-end again (and
            // checks that the slot still has it)
            _ => w.changed.push(Changed {
                slot: b.slot,
                heard: Some((be, state, source)),
            }),
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
    instance: Option<(InstanceId, InstanceState, Option<u32>)>,
}

/// The member parts written this tick: by source entity, the index of its part.
#[derive(Default)]
pub struct Parts {
    by_source: EntityHashMap<u32>,
    written: Vec<Part>,
}

impl Parts {
    /// The index of `source`'s part, written at its first use this tick.
    fn of(&mut self, source: Entity, write: impl FnOnce() -> Part) -> u32 {
        *self.by_source.entry(source).or_insert_with(|| {
            self.written.push(write());
            (self.written.len() - 1) as u32
        })
    }
}

/// A slot that changed since the last NOTIFY and, if its local back-end told it in the Lists
/// set, what it was told: (back-end, its state, its source).
#[derive(Debug, Clone, Copy)]
pub struct Changed {
    pub slot: u32,
    pub heard: Option<(Entity, SubState, Entity)>,
}

impl Changed {
    pub fn slot(slot: u32) -> Changed {
        Changed { slot, heard: None }
    }
}

/// Buffers of [`encode`], kept between ticks.
#[derive(Default)]
pub struct Scratch {
    which: Vec<Changed>,
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
    mut parts: Local<Parts>,
    mut run: Local<u64>,
    mut scratch: Local<Scratch>,
) {
    if rls.lists.is_empty() {
        return;
    }
    let now = clock.now;
    parts.by_source.clear();
    parts.written.clear();
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
            which.extend((0..w.slots.len() as u32).map(Changed::slot));
        } else {
            which.extend_from_slice(&w.changed);
            // once per slot, with what it heard last
            which.sort_by_key(|c| c.slot);
            which.dedup_by(|later, kept| {
                let same = later.slot == kept.slot;
                if same {
                    *kept = *later;
                }
                same
            });
        }
        listed.clear();
        for &Changed { slot: i, heard } in which.iter() {
            let i = i as usize;
            let Some(slot) = w.slots.get(i) else { continue };
            let local = |state: SubState, src: Entity, parts: &mut Parts, rls: &mut Rls| {
                let state = match state {
                    SubState::Active => InstanceState::Active,
                    SubState::Pending => InstanceState::Pending,
                    SubState::Terminating(r) => InstanceState::Terminated(r.map(Reason::as_str)),
                };
                let part = (state == InstanceState::Active)
                    .then(|| parts.of(src, || member_part(src, &contents, &uris, &presence, rls)));
                Some((InstanceId::of(slot.instance), state, part))
            };
            let instance = if slot.over {
                None
            } else if let Some((be, state, src)) = heard
                && slot.back_end == Some(be)
            {
                local(state, src, &mut parts, rls)
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
                let part = (state == InstanceState::Active && contents.contains(be))
                    .then(|| parts.of(be, || member_part(be, &contents, &uris, &presence, rls)));
                Some((InstanceId::of(slot.instance), state, part))
            } else if let Some(be) = slot.back_end {
                let Ok(b) = back_ends.get(be) else { continue };
                local(b.state, b.source, &mut parts, rls)
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
        for i in listed.iter().filter_map(|l| l.instance?.2) {
            let p = &parts.written[i as usize];
            collides |= p.collides;
            part_bytes.push(p.bytes.clone());
        }
        let w = &mut *w;
        let root = w.root.get_or_insert_with(|| {
            // the root's Content-ID names the subscription: the same in each of its NOTIFYs
            let uri = &w.resolved.uri;
            let host = crate::sip::identity::host_of(uri).unwrap_or("localhost");
            let cid = format!("rlmi.{:x}@{host}", e.index_u32());
            let start = rlmi::BodyStart::new(
                &rls.boundary,
                &cid,
                rls.cid_form,
                uri,
                w.resolved.name.as_deref(),
            );
            Root {
                content_type: rlmi::content_type(&rls.boundary.text, &cid).into(),
                cid: cid.into(),
                start,
                in_body: false,
            }
        });
        let framing = rls.boundary.text.len() + 6;
        // the rest of the document (a resource's markup and its instance: about 100 bytes
        // besides its URI and name), each part's delimiter and the close delimiter
        let more = 64
            + framing
            + listed
                .iter()
                .map(|l| {
                    let slot = &w.slots[l.slot];
                    100 + slot.uri.len() + slot.name.as_ref().map_or(0, |n| n.len() + 16)
                })
                .sum::<usize>()
            + part_bytes.iter().map(|p| p.len() + framing).sum::<usize>();
        let mut body = if root.in_body {
            root.start.resume(std::mem::take(&mut content.body), more)
        } else {
            root.start.begin(more)
        };
        let slots = &w.slots;
        let parts_now = &*parts;
        collides |= root.start.finish_rlmi(
            &mut body,
            &rls.boundary,
            w.version,
            full,
            listed.iter().map(|l| {
                let slot = &slots[l.slot];
                Resource {
                    uri: &slot.uri,
                    name: slot.name.as_deref(),
                    instance: l.instance.as_ref().map(|(id, state, part)| Instance {
                        id: id.as_str(),
                        state: *state,
                        cid: part.map(|i| &*parts_now.written[i as usize].cid),
                    }),
                }
            }),
        );
        root.in_body = !collides;
        if collides {
            let doc = root.start.rlmi(&body).to_vec();
            let b = boundary_for(&rls.boundary.text, &doc, part_bytes);
            *content = Content {
                content_type: MediaType::Shared(rlmi::content_type(&b, &root.cid).into()),
                body: rlmi::multipart(&b, &root.cid, rls.cid_form, &doc, part_bytes),
            };
        } else {
            // the type is the subscription's own: set again only after a NOTIFY that needed
            // another boundary (or at the first)
            if !matches!(&content.content_type, MediaType::Shared(t) if Arc::ptr_eq(t, &root.content_type))
            {
                content.content_type = MediaType::Shared(root.content_type.clone());
            }
            content.body = rlmi::multipart_finish(body, &rls.boundary.text, part_bytes);
        }
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
