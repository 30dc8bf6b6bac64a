//! List NOTIFYs. The Lists set gathers what back-end subscriptions were told this tick (a
//! member's view changed, its rules moved it) into their list subscriptions' changed slots;
//! the NotifyEncode set writes each list subscription's body just before it is sent: the RLMI
//! document (full or partial state, RFC 4662 §5.2) and the `multipart/related` framing around
//! the member parts, each part encoded once per view and tick however many lists carry it.

use std::borrow::Cow;
use std::hash::BuildHasher;

use bevy_ecs::entity::{EntityHashMap, EntityHashSet};
use bevy_ecs::prelude::*;
use bytes::Bytes;

use super::{BackEnd, ListWatch, Rls, RlsConfig, ServiceList, backend};
use crate::formats::pidf;
use crate::formats::rlmi::{self, Instance, InstanceState, Resource};
use crate::presence::{PIDF, PresenceConfig};
use crate::subscription::{Content, NotifyQueue, Reason, SourceUri, SubState, Subscription};
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
    for e in due {
        if let Some(mut w) = world.get_mut::<ListWatch>(e)
            && w.held
        {
            w.held = false;
            touch(world, e);
        }
    }
    if world.resource::<Rls>().back_ends == 0 {
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
        w.changed.push(b.slot);
        if let SubState::Terminating(reason) = state {
            let reason = reason.unwrap_or(Reason::Deactivated);
            w.slots[slot].back_end = None;
            w.slots[slot].ended = Some(reason);
            let again = reason != Reason::Rejected;
            let (uri, identity) = (w.slots[slot].uri.clone(), w.identity.clone());
            let instance = w.next_instance;
            if again {
                w.next_instance += 1;
            }
            backend::close(world, be);
            // RFC 6665 §4.1.3: a subscriber told `deactivated` subscribes again at once
            if again {
                let opened = backend::open(world, b.list_sub, b.slot, &uri, &identity);
                let mut w = world.get_mut::<ListWatch>(b.list_sub).expect("live");
                let s = &mut w.slots[slot];
                s.instance = instance;
                match opened {
                    Ok(be) => {
                        s.back_end = Some(be);
                        s.ended = None;
                    }
                    Err(r) => s.ended = Some(r),
                }
            }
        }
        touch(world, b.list_sub);
    }
}

fn touch(world: &mut World, sub: Entity) {
    world.resource_scope(|world, mut q: Mut<NotifyQueue>| {
        if let Some(mut s) = world.get_mut::<Subscription>(sub) {
            q.touch(sub, &mut s);
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

/// What one `<resource>` of a NOTIFY says, owned for the length of the NOTIFY.
struct Listed {
    slot: usize,
    instance: Option<(String, InstanceState, Option<Entity>)>,
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
    services: Query<&ServiceList>,
    config: Res<RlsConfig>,
    presence: Res<PresenceConfig>,
    mut rls: ResMut<Rls>,
    mut timers: ResMut<Timers>,
    clock: Res<Clock>,
    mut parts: Local<EntityHashMap<Part>>,
    mut built: Local<EntityHashSet>,
    mut rlmi_buf: Local<Vec<u8>>,
) {
    if rls.lists.is_empty() {
        return;
    }
    let now = clock.now;
    parts.clear();
    built.clear();
    let rls = &mut *rls;
    for &e in &queue.0 {
        let Ok((mut s, mut w, mut content)) = lists.get_mut(e) else {
            continue;
        };
        if !s.flow.ready() || !built.insert(e) {
            continue;
        }
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
        let Ok(list) = services.get(w.list) else {
            continue;
        };
        // RFC 4662 §5.2: the NOTIFY after a SUBSCRIBE is a full state, the one an unsubscribe
        // asks for included (a final NOTIFY is one: expiry and list removal report all too)
        let full = w.full || terminating;
        let mut which: Vec<usize> = if full {
            (0..w.slots.len()).collect()
        } else {
            w.changed.iter().map(|&i| i as usize).collect()
        };
        which.sort_unstable();
        which.dedup();
        let mut listed = Vec::with_capacity(which.len());
        for i in which {
            let Some(slot) = w.slots.get(i) else { continue };
            let instance = if slot.over {
                None
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
                Some((hex(slot.instance), state, source))
            } else {
                slot.ended.map(|r| {
                    (
                        hex(slot.instance),
                        InstanceState::Terminated(Some(r.as_str())),
                        None,
                    )
                })
            };
            listed.push(Listed { slot: i, instance });
        }
        let resources: Vec<Resource<'_>> = listed
            .iter()
            .map(|l| {
                let slot = &w.slots[l.slot];
                Resource {
                    uri: &slot.uri,
                    name: slot.name.as_deref(),
                    instance: l.instance.as_ref().map(|(id, state, src)| Instance {
                        id,
                        state: *state,
                        cid: src.and_then(|s| parts.get(&s)).map(|p| &*p.cid),
                    }),
                }
            })
            .collect();
        let member_parts: Vec<&Part> = listed
            .iter()
            .filter_map(|l| l.instance.as_ref()?.2)
            .filter_map(|src| parts.get(&src))
            .collect();
        let resolved = &list.resolved;
        rlmi_buf.clear();
        rlmi::write(
            &mut rlmi_buf,
            &resolved.uri,
            w.version,
            full,
            resolved.name.as_deref(),
            &resources,
        );
        let host = crate::sip::identity::host_of(&resolved.uri).unwrap_or("localhost");
        let rlmi_cid = format!("rlmi.{:x}.{}@{host}", e.index_u32(), w.version);
        let boundary = boundary_for(&rls.boundary, &rlmi_buf, &member_parts);
        let bytes: Vec<&Bytes> = member_parts.iter().map(|p| &p.bytes).collect();
        *content = Content {
            content_type: Cow::Owned(rlmi::content_type(&boundary, &rlmi_cid)),
            body: rlmi::multipart(&boundary, &rlmi_cid, &rlmi_buf, &bytes),
        };
        drop(resources);
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
            Cow::Borrowed(PIDF),
            pidf::empty_view(uri, presence.closed_when_unpublished),
        ),
    };
    let host = crate::sip::identity::host_of(uri).unwrap_or("localhost");
    let cid = format!("{:016x}@{host}", rls.cid_keys.hash_one((uri, &body[..])));
    let bytes = rlmi::part(&cid, &content_type, &body);
    rls.parts_encoded += 1;
    Part {
        collides: rlmi::collides(&bytes, &rls.boundary),
        cid: cid.into(),
        bytes,
    }
}

/// The boundary of one NOTIFY: the engine's, unless the RLMI document or a part contains it
/// (a document can say anything), then the first variant of it that none contains.
fn boundary_for<'a>(default: &'a str, rlmi_doc: &[u8], parts: &[&Part]) -> Cow<'a, str> {
    if !parts.iter().any(|p| p.collides) && !rlmi::collides(rlmi_doc, default) {
        return Cow::Borrowed(default);
    }
    (1u32..)
        .map(|n| format!("{default}.{n:x}"))
        .find(|b| {
            !rlmi::collides(rlmi_doc, b) && !parts.iter().any(|p| rlmi::collides(&p.bytes, b))
        })
        .map(Cow::Owned)
        .expect("some variant is absent from a finite body")
}

fn hex(n: u32) -> String {
    format!("{n:x}")
}
