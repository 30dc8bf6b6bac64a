//! Service lists: one entity per service URI watched, resolved when first subscribed and again
//! whenever a document it reads changes; its list subscriptions then gain and lose members
//! (back-end subscriptions opened and closed in the same tick) and send a full state.

use std::sync::Arc;

use bevy_ecs::prelude::*;

use super::resolve::{Limits, Resolved, resolve};
use super::services::{AUID, Service, Services};
use super::{ListWatch, Rls, RlsConfig, ServiceList, Slot, backend};
use crate::sip::identity::identity_key;
use crate::subscription::{NotifyQueue, Reason, SubState, Subscription};
use crate::xdm::{DocumentChanges, decode_selector};

/// The limits of resolutions under `config`.
fn limits(world: &World) -> Limits {
    let c = world.resource::<RlsConfig>();
    Limits {
        max_members: c.max_members,
        max_depth: c.max_depth,
    }
}

/// Resolve `service` now, counting it.
fn resolve_now(world: &mut World, service: &Service) -> Option<Resolved> {
    let mut r = resolve(world, service, limits(world));
    let mut rls = world.resource_mut::<Rls>();
    rls.resolutions += 1;
    if let Some(r) = &mut r {
        for m in r.members.iter_mut().chain(&mut r.over) {
            m.uri = rls.names.share(&m.uri);
            if let Some(n) = &mut m.name {
                *n = rls.names.share(n);
            }
        }
    }
    if let Some(r) = &r
        && (!r.over.is_empty() || r.skipped > 0)
    {
        // the owner's client sees the excess members without an instance; the operator here
        tracing::info!(
            target: "presenced::rls",
            list = %r.uri,
            watched = r.members.len(),
            over_limit = r.over.len(),
            references_not_followed = r.skipped,
            "list not watched in full (rls.max_members, loops, or lists the owner may not read)"
        );
    }
    r
}

/// The service list entity of `service`, resolved when not watched yet; None when its document
/// no longer defines it.
pub fn list_for(world: &mut World, key: &[u8], service: &Service) -> Option<Entity> {
    if let Some(&e) = world.resource::<Rls>().lists.get(key) {
        return Some(e);
    }
    let resolved = resolve_now(world, service)?;
    let docs = resolved.docs.clone();
    let e = world
        .spawn(ServiceList {
            key: key.to_vec(),
            service: service.clone(),
            resolved: Arc::new(resolved),
            subscribers: Vec::new(),
        })
        .id();
    let mut rls = world.resource_mut::<Rls>();
    rls.lists.insert(key.to_vec(), e);
    for d in docs {
        rls.by_doc.entry(d).or_default().push(e);
    }
    Some(e)
}

/// Forget a service list nobody subscribes to any more.
pub fn release(world: &mut World, list: Entity, sub: Entity) {
    let Some(mut l) = world.get_mut::<ServiceList>(list) else {
        return;
    };
    l.subscribers.retain(|&s| s != sub);
    if !l.subscribers.is_empty() {
        return;
    }
    let (key, docs) = (l.key.clone(), l.resolved.docs.clone());
    world.despawn(list);
    let mut rls = world.resource_mut::<Rls>();
    rls.lists.remove(&key);
    unindex(&mut rls, list, &docs);
}

fn unindex(rls: &mut Rls, list: Entity, docs: &[Box<str>]) {
    for d in docs {
        if let Some(v) = rls.by_doc.get_mut(d) {
            v.retain(|&x| x != list);
            if v.is_empty() {
                rls.by_doc.remove(d);
            }
        }
    }
}

/// The slots of a new list subscription (or of one whose list changed, keeping the slots of
/// members it still has, `old`), with back-end subscriptions for members new to it.
pub fn build_slots(
    world: &mut World,
    sub: Entity,
    resolved: &Resolved,
    old: Vec<Slot>,
    identity: &str,
) -> Vec<Slot> {
    let key = |uri: &str| identity_key(uri).unwrap_or_else(|| uri.as_bytes().to_vec());
    let mut old: Vec<(Vec<u8>, Option<Slot>)> =
        old.into_iter().map(|s| (key(&s.uri), Some(s))).collect();
    let mut slots = Vec::with_capacity(resolved.members.len() + resolved.over.len());
    let watched = resolved.members.iter().map(|m| (m, false));
    let over = resolved.over.iter().map(|m| (m, true));
    for (m, is_over) in watched.chain(over) {
        let k = key(&m.uri);
        let kept = old
            .iter_mut()
            .find(|(ok, s)| *ok == k && s.is_some())
            .and_then(|(_, s)| s.take());
        let mut slot = match kept {
            Some(mut s) => {
                s.name = m.name.clone();
                s.uri = m.uri.clone();
                s
            }
            None => Slot {
                uri: m.uri.clone(),
                name: m.name.clone(),
                back_end: None,
                instance: 0,
                ended: None,
                over: is_over,
            },
        };
        if is_over && let Some(be) = slot.back_end.take() {
            backend::close(world, be);
        }
        slot.over = is_over;
        slots.push(slot);
    }
    // members that left end their back-end subscriptions
    for (_, s) in old {
        if let Some(be) = s.and_then(|s| s.back_end) {
            backend::close(world, be);
        }
    }
    let mut next = world.get::<ListWatch>(sub).map_or(1, |w| w.next_instance);
    for (i, slot) in slots.iter_mut().enumerate() {
        if let Some(be) = slot.back_end
            && let Some(mut b) = world.get_mut::<super::BackEnd>(be)
        {
            b.slot = i as u32;
            continue;
        }
        if slot.over || slot.ended.is_some() {
            continue;
        }
        slot.instance = next;
        next += 1;
        match backend::open(world, sub, i as u32, &slot.uri, identity) {
            Ok(be) => slot.back_end = Some(be),
            Err(reason) => slot.ended = Some(reason),
        }
    }
    if let Some(mut w) = world.get_mut::<ListWatch>(sub) {
        w.next_instance = next;
    }
    slots
}

/// Give slot `i` of `list_sub` a new back-end subscription, as a new instance; when none can
/// be opened the slot reports why.
pub fn reopen(world: &mut World, list_sub: Entity, i: u32) {
    let Some(mut w) = world.get_mut::<ListWatch>(list_sub) else {
        return;
    };
    let instance = w.next_instance;
    w.next_instance += 1;
    let Some(slot) = w.slots.get(i as usize) else {
        return;
    };
    let (uri, identity) = (slot.uri.clone(), w.identity.clone());
    let opened = backend::open(world, list_sub, i, &uri, &identity);
    let mut w = world.get_mut::<ListWatch>(list_sub).expect("live");
    let slot = &mut w.slots[i as usize];
    slot.instance = instance;
    match opened {
        Ok(be) => {
            slot.back_end = Some(be);
            slot.ended = None;
        }
        Err(reason) => slot.ended = Some(reason),
    }
}

/// Slot `i` of `list_sub` lost its back-end subscription `be` (already closed) for
/// `reason`: the slot reports it in the next NOTIFY, and the reasons RFC 6665 §4.1.3 answers
/// with a new subscription at once (`deactivated`, `timeout`) get one. Slots that `be` no
/// longer holds (the list changed meanwhile) are left alone.
pub fn back_end_ended(world: &mut World, list_sub: Entity, i: u32, be: Entity, reason: Reason) {
    let Some(mut w) = world.get_mut::<ListWatch>(list_sub) else {
        return;
    };
    let Some(slot) = w
        .slots
        .get_mut(i as usize)
        .filter(|s| s.back_end == Some(be))
    else {
        return;
    };
    slot.back_end = None;
    slot.ended = Some(reason);
    w.changed.push(super::notify::Changed::slot(i));
    if matches!(reason, Reason::Deactivated | Reason::Timeout) {
        reopen(world, list_sub, i);
    }
}

/// After the document changes of the tick are applied: keep the service index current and
/// resolve again every watched service whose documents changed.
pub fn follow_documents(world: &mut World) {
    let applied = std::mem::take(&mut world.resource_mut::<DocumentChanges>().applied);
    let mut dirty: Vec<Entity> = Vec::new();
    for change in &applied {
        let key: Box<str> = decode_selector(&change.selector).into();
        if change.auid == AUID
            && let Some(owner) = change.xui.as_deref()
        {
            let touched =
                world
                    .resource_mut::<Services>()
                    .reindex(&key, owner, change.content.as_deref());
            let rls = world.resource::<Rls>();
            dirty.extend(touched.iter().filter_map(|k| rls.lists.get(k).copied()));
        }
        if let Some(v) = world.resource::<Rls>().by_doc.get(&key) {
            dirty.extend(v.iter().copied());
        }
        // a user's rules decide who may use their lists: lists that read one of that user's
        // documents are resolved again
        if crate::privacy::book::AUIDS.contains(&change.auid.as_str())
            && let Some(owner) = change.xui.as_deref()
        {
            let tree = format!("/users/{}/", crate::xdm::decode_selector(owner));
            let mut q = world.query::<(Entity, &ServiceList)>();
            dirty.extend(q.iter(world).filter_map(|(e, l)| {
                let theirs = identity_key(&l.service.owner) != identity_key(owner);
                (theirs && l.resolved.docs.iter().any(|d| d.contains(&tree))).then_some(e)
            }));
        }
    }
    world.resource_mut::<DocumentChanges>().applied = applied;
    dirty.sort_unstable();
    dirty.dedup();
    for list in dirty {
        refresh_list(world, list);
    }
}

/// Resolve a watched service again; if its members changed, every list subscription of it
/// follows (and sends a full state); if it is gone, they end (`noresource`).
fn refresh_list(world: &mut World, list: Entity) {
    let Some(l) = world.get::<ServiceList>(list) else {
        return;
    };
    let key = l.key.clone();
    let service = world.resource::<Services>().find_key(&key).cloned();
    let resolved = match &service {
        Some(s) => resolve_now(world, s),
        None => None,
    };
    let Some(resolved) = resolved.filter(|r| r.presence) else {
        let subs = world
            .get::<ServiceList>(list)
            .expect("live")
            .subscribers
            .clone();
        world.resource_scope(|world, mut q: Mut<NotifyQueue>| {
            for s in subs {
                if let Some(mut sub) = world.get_mut::<Subscription>(s)
                    && !matches!(sub.state, SubState::Terminating(_))
                {
                    sub.state = SubState::Terminating(Some(Reason::Noresource));
                    q.touch(s, &mut sub);
                }
            }
        });
        return;
    };
    let mut l = world.get_mut::<ServiceList>(list).expect("live");
    if *l.resolved == resolved {
        return;
    }
    let old_docs = l.resolved.docs.clone();
    let new_docs = resolved.docs.clone();
    l.resolved = Arc::new(resolved);
    if let Some(s) = service {
        l.service = s;
    }
    let (resolved, subs) = (l.resolved.clone(), l.subscribers.clone());
    {
        let mut rls = world.resource_mut::<Rls>();
        unindex(&mut rls, list, &old_docs);
        for d in new_docs {
            rls.by_doc.entry(d).or_default().push(list);
        }
    }
    for sub in subs {
        let Some(mut w) = world.get_mut::<ListWatch>(sub) else {
            continue;
        };
        let (old, identity) = (std::mem::take(&mut w.slots), w.identity.clone());
        let slots = build_slots(world, sub, &resolved, old, &identity);
        let mut w = world.get_mut::<ListWatch>(sub).expect("live");
        w.slots = slots;
        w.resolved = resolved.clone();
        // the body start names the list
        w.root = None;
        w.full = true;
        w.changed.clear();
        world.resource_scope(|world, mut q: Mut<NotifyQueue>| {
            if let Some(mut s) = world.get_mut::<Subscription>(sub) {
                q.touch(sub, &mut s);
            }
        });
    }
}
