//! Composition: once per tick, each presentity whose sources changed gets one new view, however
//! many publications arrived for it in the tick.

use bevy_ecs::prelude::*;

use crate::formats::pidf;

use crate::subscription::{Content, NotifyQueue, Subscription};

use super::PIDF;
use super::components::{
    Presentity, Publication, Recompose, SourceUri, ViewChanges, forget_presentity,
};
use super::config::PresenceConfig;

/// Views composed so far (a presentity's sources composed into one document), for tests and
/// metrics: composition runs once per changed presentity per tick.
#[derive(Resource, Debug, Default)]
pub struct Compositions(pub u64);

/// Recompose the views of changed presentities and mark every watcher dirty (their NOTIFYs
/// carry the presentity's [`Content`], one body shared); forget presentities nobody publishes
/// or watches. A presentity left with no publication drops its [`Content`]: NOTIFYs then build
/// the empty view from its URI (see [`crate::subscription::EmptyBody`]).
pub fn compose_views(world: &mut World) {
    if let Some(mut changes) = world.get_resource_mut::<ViewChanges>() {
        changes.0.clear();
    }
    let Some(mut queued) = world.get_resource_mut::<Recompose>() else {
        return;
    };
    if queued.0.is_empty() {
        return;
    }
    let mut todo = std::mem::take(&mut queued.0);
    once_each(&mut todo);
    let mut watchers = Vec::new();
    let mut composed = 0;
    for &e in &todo {
        let (Some(presentity), Some(uri)) = (world.get::<Presentity>(e), world.get::<SourceUri>(e))
        else {
            continue;
        };
        if presentity.publications.is_empty() && presentity.watchers.is_empty() {
            forget_presentity(world, e);
            world.despawn(e);
            continue;
        }
        // `publications` is in order of last modification, oldest first: newer sources win.
        let body = match presentity.publications.len() {
            0 => None,
            // one source (nearly always): its document holds the view, laid out when parsed
            1 => presentity
                .publications
                .iter()
                .find_map(|p| world.get::<Publication>(p))
                .map(|p| {
                    p.doc
                        .view()
                        .unwrap_or_else(|| pidf::compose(&uri.0, &[&p.doc]))
                }),
            _ => {
                let sources: Vec<&pidf::PidfDocument> = presentity
                    .publications
                    .iter()
                    .filter_map(|p| world.get::<Publication>(p))
                    .map(|p| &p.doc)
                    .collect();
                (!sources.is_empty()).then(|| pidf::compose(&uri.0, &sources))
            }
        };
        let empty = |world: &World| {
            let closed = world.resource::<PresenceConfig>().closed_when_unpublished;
            pidf::empty_view(&world.get::<SourceUri>(e).expect("checked").0, closed)
        };
        let content = world.get_mut::<Content>(e);
        let has_view = content.is_some();
        let changed = match (body, has_view) {
            // still nobody publishes: the empty view, unchanged
            (None, false) => false,
            (None, true) => {
                let empty = empty(world);
                let old = world.entity_mut(e).take::<Content>();
                old.is_some_and(|c| c.body != empty)
            }
            (Some(body), true) => {
                let mut content = content.expect("checked");
                let changed = body != content.body;
                if changed {
                    content.body = body;
                }
                changed
            }
            (Some(body), false) => {
                let changed = body != empty(world);
                world.entity_mut(e).insert(Content {
                    content_type: PIDF.into(),
                    body,
                });
                changed
            }
        };
        composed += 1;
        if changed && let Some(mut changes) = world.get_resource_mut::<ViewChanges>() {
            changes.0.push(e);
        }
        if changed
            && let Some(p) = world.get::<Presentity>(e)
            && !p.watchers.is_empty()
        {
            watchers.clear();
            watchers.extend(p.watchers.iter(world.entities()));
            world.resource_scope(|world, mut queue: Mut<NotifyQueue>| {
                for &w in &watchers {
                    // watchers shown another view hear of it when that view changes
                    if let Some(mut s) = world.get_mut::<Subscription>(w)
                        && s.source == e
                    {
                        queue.touch(w, &mut s);
                    }
                }
            });
        }
    }
    if composed > 0 {
        world.resource_mut::<Compositions>().0 += composed;
    }
    // keep the list's buffer for the next tick
    todo.clear();
    world.resource_mut::<Recompose>().0 = todo;
}

/// Drops repeated entries, keeping each first one in place (a presentity with several changes
/// in a tick is recomposed once).
fn once_each(list: &mut Vec<Entity>) {
    if list.len() < 2 {
        return;
    }
    let mut order: Vec<(Entity, usize)> = list.iter().copied().zip(0..).collect();
    order.sort_unstable();
    order.dedup_by_key(|(e, _)| *e);
    order.sort_unstable_by_key(|&(_, i)| i);
    list.clear();
    list.extend(order.into_iter().map(|(e, _)| e));
}
