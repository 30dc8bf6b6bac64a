//! Views: what the watchers of a presentity who may not see everything are shown. Watchers with
//! equal permissions share one [`View`] entity, whose [`Content`] is filtered once per change of
//! the presentity's document and sent to all of them; a watcher who may see everything watches
//! the presentity itself. A pending watcher's view carries nothing, a polite-blocked one's a
//! neutral document.

use std::sync::Arc;

use bevy_ecs::prelude::*;
use bytes::Bytes;

use super::permissions::Permissions;
use crate::formats::pidf;
use crate::presence::PIDF;
use crate::presence::components::{Presentity, ViewChanges};
use crate::subscription::{Content, NotifyQueue, SourceUri, Subscription};

/// What a view shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Shown {
    /// The presentity's document with what these permissions withhold left out.
    Filtered(Arc<Permissions>),
    /// A document that reveals nothing (RFC 5025 `polite-block`): one closed tuple.
    PoliteBlock,
    /// Nothing: the subscription waits for the presentity's decision (`confirm`).
    Pending,
}

/// One way of showing a presentity, shared by the watchers who see it so.
#[derive(Component, Debug)]
pub struct View {
    pub presentity: Entity,
    pub shown: Shown,
    /// Subscriptions whose source it is.
    pub watchers: u32,
}

/// A presentity's views (beside the full one, which is the presentity itself).
#[derive(Component, Debug, Default)]
pub struct Views(pub Vec<Entity>);

/// Filters built so far, for tests and benchmarks: one per view and change, never per watcher.
#[derive(Resource, Debug, Default)]
pub struct Filterings(pub u64);

/// Presence subscriptions shown the pending view (waiting for a decision, or ending with
/// nothing shown), for metrics.
#[derive(Resource, Debug, Default)]
pub struct PendingWatchers(pub u64);

/// The view of `presentity` showing `shown`, made when none exists yet, with one more watcher.
pub fn attach(world: &mut World, presentity: Entity, shown: Shown) -> Entity {
    if shown == Shown::Pending {
        world.resource_mut::<PendingWatchers>().0 += 1;
    }
    let existing = world.get::<Views>(presentity).and_then(|vs| {
        vs.0.iter()
            .copied()
            .find(|&v| world.get::<View>(v).is_some_and(|v| v.shown == shown))
    });
    if let Some(v) = existing {
        world.get_mut::<View>(v).expect("listed").watchers += 1;
        return v;
    }
    let uri = world
        .get::<SourceUri>(presentity)
        .map(|u| u.0.clone())
        .unwrap_or_default();
    let content = content_of(world, presentity, &shown, &uri);
    let mut e = world.spawn((
        View {
            presentity,
            shown,
            watchers: 1,
        },
        SourceUri(uri),
    ));
    if let Some(c) = content {
        e.insert(c);
    }
    let v = e.id();
    match world.get_mut::<Views>(presentity) {
        Some(mut vs) => vs.0.push(v),
        None => {
            world.entity_mut(presentity).insert(Views(vec![v]));
        }
    }
    v
}

/// One watcher fewer on `view`; the last one takes the view with it.
pub fn detach(world: &mut World, view: Entity) {
    let Some(mut v) = world.get_mut::<View>(view) else {
        return;
    };
    v.watchers = v.watchers.saturating_sub(1);
    let (pending, left) = (v.shown == Shown::Pending, v.watchers);
    if pending {
        let mut n = world.resource_mut::<PendingWatchers>();
        n.0 = n.0.saturating_sub(1);
    }
    if left > 0 {
        return;
    }
    let v = world.get::<View>(view).expect("checked");
    let presentity = v.presentity;
    world.despawn(view);
    if let Some(mut vs) = world.get_mut::<Views>(presentity) {
        vs.0.retain(|&x| x != view);
        if vs.0.is_empty() {
            world.entity_mut(presentity).remove::<Views>();
        }
    }
}

/// The content a view carries now; None: the presentity has nothing published, and NOTIFYs
/// build its empty view.
fn content_of(world: &mut World, presentity: Entity, shown: &Shown, uri: &str) -> Option<Content> {
    match shown {
        Shown::Pending => Some(Content {
            content_type: "".into(),
            body: Bytes::new(),
        }),
        Shown::PoliteBlock => Some(Content {
            content_type: PIDF.into(),
            body: pidf::empty_view(uri, true),
        }),
        Shown::Filtered(perms) => {
            let body = world.get::<Content>(presentity)?.body.clone();
            let doc = pidf::parse_bytes(body).ok()?;
            world.resource_mut::<Filterings>().0 += 1;
            Some(Content {
                content_type: PIDF.into(),
                body: super::filter::filter(&doc, perms),
            })
        }
    }
}

/// After composition: presentities whose document changed filter it again for each of their
/// views (the document parsed once, filtered once per view), and the watchers of each view
/// whose body changed get a NOTIFY.
pub fn refresh_views(world: &mut World) {
    let changed = std::mem::take(&mut world.resource_mut::<ViewChanges>().0);
    let mut touched: Vec<Entity> = Vec::new();
    for &p in &changed {
        let Some(views) = world.get::<Views>(p).map(|v| v.0.clone()) else {
            continue;
        };
        let doc = world
            .get::<Content>(p)
            .and_then(|c| pidf::parse_bytes(c.body.clone()).ok());
        touched.clear();
        for v in views {
            let Some(Shown::Filtered(perms)) = world.get::<View>(v).map(|v| v.shown.clone()) else {
                continue;
            };
            let body = doc.as_ref().map(|d| super::filter::filter(d, &perms));
            if body.is_some() {
                world.resource_mut::<Filterings>().0 += 1;
            }
            let old = world.get::<Content>(v).map(|c| c.body.clone());
            if old == body {
                continue;
            }
            match body {
                Some(body) => {
                    world.entity_mut(v).insert(Content {
                        content_type: PIDF.into(),
                        body,
                    });
                }
                None => {
                    world.entity_mut(v).remove::<Content>();
                }
            }
            touched.push(v);
        }
        if touched.is_empty() {
            continue;
        }
        let subs: Vec<Entity> = match world.get::<Presentity>(p) {
            Some(pr) => pr.watchers.iter(world.entities()).collect(),
            None => continue,
        };
        world.resource_scope(|world, mut queue: Mut<NotifyQueue>| {
            for s in subs {
                if let Some(mut sub) = world.get_mut::<Subscription>(s)
                    && touched.contains(&sub.source)
                {
                    queue.touch(s, &mut sub);
                }
            }
        });
    }
    let mut buf = changed;
    buf.clear();
    world.resource_mut::<ViewChanges>().0 = buf;
}
