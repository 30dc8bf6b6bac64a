//! Watcher information (RFC 3857): the `presence.winfo` event package tells a presentity who
//! watches it, so that its client can decide about pending watchers (the decision comes back as
//! a pres-rules change over XCAP). It listens to the life-cycle events of presence
//! subscriptions ([`crate::subscription::lifecycle`]); presence never calls it.

use std::collections::HashMap;

use bevy_ecs::prelude::*;

use crate::durable::codec::{Reader, Writer};
use crate::formats::watcherinfo::{self, CONTENT_TYPE, Watcher};
use crate::keyed_hash::HashKeys;
use crate::pipeline::Pipeline;
use crate::presence::components::{Presentity, find_presentity};
use crate::router::Answer;
use crate::sip::Request;
use crate::sip::identity::{identity_key, requester};
use crate::subscription::durable::Restoring;
use crate::subscription::lifecycle::{Event, LifeEvent, Lifecycle, Since, Status, status_of};
use crate::subscription::{
    self, Content, DialogStore, NotifyQueue, PackageSpec, Packages, Subscription,
};
use crate::time::{Clock, Time};

/// The event package.
pub const EVENT: &str = "presence.winfo";

/// A watcher-information subscription: whose watchers it reports, and what it has said.
#[derive(Component, Debug)]
pub struct WinfoWatch {
    /// The presentity's URI (`sip:alice@example.com`) and identity key.
    resource: Box<str>,
    key: Box<[u8]>,
    /// The `version` of the next document (RFC 3858 §4: one more per NOTIFY).
    version: u32,
    /// The next document is full state (first NOTIFY, refresh).
    full: bool,
    /// Changes since the last document, for a partial one.
    changes: Vec<Watcher>,
}

/// Watcher-information subscriptions by the identity key of the presentity they report on.
#[derive(Resource)]
pub struct WinfoIndex(HashMap<Box<[u8]>, Vec<Entity>, HashKeys>);

/// How long a watcher whose pending subscription timed out stays listed as `waiting`
/// (RFC 3857 §3.2.2: the presentity may still decide about it), and how many one presentity
/// keeps.
const WAITING_SECS: u64 = 3600;
const MAX_WAITING: usize = 100;

/// Watchers in the `waiting` state, by presentity, until they are forgotten.
#[derive(Resource)]
pub struct Waiting {
    by_owner: HashMap<Box<[u8]>, Vec<(Watcher, Time)>, HashKeys>,
    /// (forget at, owner), oldest first: the sweep that keeps the table bounded in time.
    order: std::collections::VecDeque<(Time, Box<[u8]>)>,
}

impl Waiting {
    fn add(&mut self, owner: Box<[u8]>, w: Watcher, until: Time) {
        let list = self.by_owner.entry(owner.clone()).or_default();
        list.retain(|(x, _)| x.uri != w.uri);
        if list.len() >= MAX_WAITING {
            list.remove(0);
        }
        list.push((w, until));
        self.order.push_back((until, owner));
    }

    /// A watcher subscribing again is no longer waiting.
    fn remove(&mut self, owner: &[u8], uri: &str) {
        if let Some(list) = self.by_owner.get_mut(owner) {
            list.retain(|(x, _)| x.uri != uri);
        }
    }

    fn sweep(&mut self, now: Time) {
        while self.order.front().is_some_and(|(t, _)| *t <= now) {
            let (_, owner) = self.order.pop_front().expect("checked");
            if let Some(list) = self.by_owner.get_mut(&owner) {
                list.retain(|(_, until)| *until > now);
                if list.is_empty() {
                    self.by_owner.remove(&owner);
                }
            }
        }
    }

    fn of(&self, owner: &[u8]) -> impl Iterator<Item = &Watcher> {
        self.by_owner
            .get(owner)
            .into_iter()
            .flatten()
            .map(|(w, _)| w)
    }
}

/// Settings of the package.
#[derive(Debug, Clone)]
pub struct WinfoConfig {
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub max_per_watcher: usize,
}

/// Add watcher information to an engine serving presence.
pub fn feature(config: WinfoConfig) -> impl FnOnce(&mut World, &mut Schedule) {
    move |world, schedule| {
        subscription::install(world, schedule);
        subscription::register_package(
            world,
            PackageSpec {
                event: EVENT,
                label: EVENT,
                content_types: &[CONTENT_TYPE],
                min_expires: config.min_expires,
                max_expires: config.max_expires,
                default_expires: config.default_expires,
                max_per_watcher: config.max_per_watcher,
                empty_body: None,
                on_subscribe,
                on_refresh,
                on_end,
                claims: None,
                require: None,
                durable: Some(subscription::durable::DurableHooks { save, restore }),
            },
        );
        let hash_seed = world.resource::<crate::EngineConfig>().hash_seed;
        world.insert_resource(WinfoIndex(HashMap::with_hasher(HashKeys::derive(
            hash_seed,
            u64::from_be_bytes(*b"winfo-ix"),
        ))));
        world.insert_resource(Waiting {
            by_owner: HashMap::with_hasher(HashKeys::derive(
                hash_seed,
                u64::from_be_bytes(*b"winfo-wt"),
            )),
            order: Default::default(),
        });
        world.resource_mut::<Lifecycle>().listening = true;
        schedule.add_systems(
            (follow_watchers, build_content)
                .chain()
                .in_set(Pipeline::NotifyEncode)
                .after(subscription::notify::notify_outcomes)
                .before(subscription::notify::send_notifies),
        );
    }
}

/// RFC 3857 §5.1: only the presentity itself may learn who watches it (others: 403).
fn on_subscribe(world: &mut World, req: &Request, sub: Entity) -> Result<(), Answer> {
    let trusted = &world.resource::<crate::EngineConfig>().trusted_peers;
    let who = identity_key(requester(req, trusted));
    let resource = format!("sip:{}", req.uri.aor());
    let key = identity_key(&resource);
    if key.is_none() || who != key {
        return Err(Answer::new(
            403,
            "Forbidden: only the presentity sees its watchers",
        ));
    }
    follow(
        world,
        sub,
        &resource,
        key.expect("checked").into_boxed_slice(),
        0,
    );
    Ok(())
}

/// `sub` follows the watchers of `resource` (identity key `key`), its next document full
/// state numbered `version`.
fn follow(world: &mut World, sub: Entity, resource: &str, key: Box<[u8]>, version: u32) {
    world.entity_mut(sub).insert((
        WinfoWatch {
            resource: resource.into(),
            key: key.clone(),
            version,
            full: true,
            changes: Vec::new(),
        },
        Content {
            content_type: CONTENT_TYPE.into(),
            body: Default::default(),
        },
    ));
    world
        .resource_mut::<WinfoIndex>()
        .0
        .entry(key)
        .or_default()
        .push(sub);
}

/// RFC 3857 §5.2: a refresh gets full state.
fn on_refresh(world: &mut World, sub: Entity) {
    if let Some(mut w) = world.get_mut::<WinfoWatch>(sub) {
        w.full = true;
        w.changes.clear();
    }
}

/// Version of a watcher-information subscription's part of its record.
const RECORD_VERSION: u8 = 1;

/// A watcher-information subscription's part of its record
/// ([`crate::subscription::durable`]): the presentity's URI and the next `version`.
fn save(world: &World, sub: Entity) -> Option<Vec<u8>> {
    let w = world.get::<WinfoWatch>(sub)?;
    let record = Writer::new(RECORD_VERSION, w.resource.len() + 8)
        .bytes(w.resource.as_bytes())
        .u32(w.version);
    Some(record.done())
}

/// Follow a presentity's watchers again. The next document is full state, and its `version`
/// moves on as far as the dialog's CSeq (one per NOTIFY), past every one sent before.
fn restore(world: &mut World, sub: Entity, part: &[u8], r: &Restoring) -> Option<()> {
    let mut rd = Reader::new(part, RECORD_VERSION)?;
    let (resource, version) = (rd.str()?, rd.u32()?);
    let key = identity_key(resource)?.into_boxed_slice();
    follow(
        world,
        sub,
        resource,
        key,
        version.wrapping_add(r.notifies_skipped),
    );
    Some(())
}

fn on_end(world: &mut World, sub: Entity) {
    let Some(key) = world.get::<WinfoWatch>(sub).map(|w| w.key.clone()) else {
        return;
    };
    let mut index = world.resource_mut::<WinfoIndex>();
    if let Some(v) = index.0.get_mut(&key) {
        v.retain(|&e| e != sub);
        if v.is_empty() {
            index.0.remove(&key);
        }
    }
}

/// The `id` of a watcher: the same for one subscription in every document.
fn watcher_id(sub: Entity) -> String {
    let mut s = String::with_capacity(16);
    crate::hex::push(&mut s, sub.to_bits(), 1);
    s
}

fn entry(ev: &LifeEvent, now: Time) -> Watcher {
    Watcher {
        id: watcher_id(ev.sub),
        uri: ev.watcher.to_string(),
        display_name: ev.display_name.as_deref().map(str::to_owned),
        status: ev.status,
        event: ev.event,
        expiration: matches!(ev.status, Status::Active | Status::Pending)
            .then(|| now.until(ev.expires_at).div_ceil(1000)),
        duration_subscribed: Some(ev.since.until(now) / 1000),
    }
}

/// This tick's changes of presence subscriptions, to the watcher-information subscriptions of
/// their presentities.
pub fn follow_watchers(world: &mut World) {
    let events = std::mem::take(&mut world.resource_mut::<Lifecycle>().events);
    let presence = world
        .resource::<Packages>()
        .find(crate::presence::EVENT)
        .map(|(id, _)| id);
    let now = world.resource::<Clock>().now;
    world.resource_mut::<Waiting>().sweep(now);
    for ev in events.iter().filter(|e| Some(e.package) == presence) {
        let Some(key) = identity_key(&ev.resource) else {
            continue;
        };
        {
            let mut waiting = world.resource_mut::<Waiting>();
            match ev.status {
                Status::Waiting => waiting.add(
                    key.clone().into_boxed_slice(),
                    entry(ev, now),
                    now.plus_secs(WAITING_SECS),
                ),
                _ => waiting.remove(&key, &ev.watcher),
            }
        }
        let Some(subs) = world.resource::<WinfoIndex>().0.get(&*key).cloned() else {
            continue;
        };
        let w = entry(ev, now);
        world.resource_scope(|world, mut queue: Mut<NotifyQueue>| {
            for s in subs {
                if let Some(mut watch) = world.get_mut::<WinfoWatch>(s) {
                    // a watcher's newest state replaces what is not yet sent about it
                    watch.changes.retain(|c| c.id != w.id);
                    watch.changes.push(w.clone());
                }
                if let Some(mut sub) = world.get_mut::<Subscription>(s) {
                    queue.touch(s, &mut sub);
                }
            }
        });
    }
    world.resource_mut::<Lifecycle>().events = events;
}

/// The document of each watcher-information subscription about to be notified: full state
/// (every live presence subscription of the presentity) or the changes since the last one.
pub fn build_content(world: &mut World) {
    // the queue is mostly presence fan-out: without watcher-information subscriptions there
    // is nothing to look for in it
    if world.resource::<WinfoIndex>().0.is_empty() {
        return;
    }
    world.resource_scope(|world, queue: Mut<NotifyQueue>| build_queued(world, &queue.0));
}

fn build_queued(world: &mut World, queued: &[Entity]) {
    let mut built = bevy_ecs::entity::EntityHashSet::default();
    for &e in queued {
        let ready = world.get::<Subscription>(e).is_some_and(|s| s.flow.ready());
        if !ready || world.get::<WinfoWatch>(e).is_none() || !built.insert(e) {
            continue;
        }
        let (full, resource) = {
            let w = world.get::<WinfoWatch>(e).expect("checked");
            (w.full, w.resource.clone())
        };
        let watchers = if full {
            current_watchers(world, &resource)
        } else {
            std::mem::take(&mut world.get_mut::<WinfoWatch>(e).expect("checked").changes)
        };
        let mut w = world.get_mut::<WinfoWatch>(e).expect("checked");
        let body = watcherinfo::write(
            w.version,
            full,
            &w.resource,
            crate::presence::EVENT,
            &watchers,
        );
        w.version = w.version.wrapping_add(1);
        w.full = false;
        w.changes.clear();
        world.entity_mut(e).insert(Content {
            content_type: CONTENT_TYPE.into(),
            body,
        });
    }
}

/// Every live presence subscription to the presentity `resource`, and the watchers still
/// waiting.
fn current_watchers(world: &World, resource: &str) -> Vec<Watcher> {
    let mut out: Vec<Watcher> = identity_key(resource)
        .map(|k| world.resource::<Waiting>().of(&k).cloned().collect())
        .unwrap_or_default();
    out.extend(live_watchers(world, resource));
    out
}

/// Every live presence subscription to the presentity `resource`.
fn live_watchers(world: &World, resource: &str) -> Vec<Watcher> {
    let aor = resource.strip_prefix("sip:").unwrap_or(resource);
    let Some(p) = find_presentity(world, aor) else {
        return Vec::new();
    };
    let Some(presentity) = world.get::<Presentity>(p) else {
        return Vec::new();
    };
    let now = world.resource::<Clock>().now;
    let store = world.resource::<DialogStore>();
    presentity
        .watchers
        .iter(world.entities())
        .filter_map(|sub| {
            let s = world.get::<Subscription>(sub)?;
            let remote = s.dialog.strings(store).remote();
            let uri = crate::privacy::authorize::identity_of(world, sub)?;
            let status = status_of(s.state);
            let event = match status {
                Status::Terminated => Event::of_reason(match s.state {
                    subscription::SubState::Terminating(r) => r,
                    _ => None,
                }),
                _ => Event::Subscribe,
            };
            Some(Watcher {
                id: watcher_id(sub),
                uri,
                display_name: crate::subscription::lifecycle::display_name(remote)
                    .map(str::to_owned),
                status,
                event,
                expiration: (status != Status::Terminated)
                    .then(|| now.until(s.expires_at).div_ceil(1000)),
                duration_subscribed: world.get::<Since>(sub).map(|t| t.0.until(now) / 1000),
            })
        })
        .collect()
}
