//! Composition: once per tick, each presentity whose sources changed gets one new view, however
//! many publications arrived for it in the tick.

use bevy_ecs::prelude::*;

use crate::formats::pidf;

use crate::subscription::{Content, NotifyQueue, Subscription};

use super::components::{PresenceIndex, Presentity, Publication, Recompose, View};
use super::config::PresenceConfig;

/// Recompose the views of changed presentities and mark every watcher dirty (their NOTIFYs
/// carry the presentity's [`Content`], one body shared); forget presentities nobody publishes
/// or watches.
pub fn compose_views(
    mut commands: Commands,
    mut changed: Query<(Entity, &Presentity, &mut View, &mut Content), With<Recompose>>,
    publications: Query<&Publication>,
    mut subs: Query<&mut Subscription>,
    mut queue: ResMut<NotifyQueue>,
    config: Res<PresenceConfig>,
    mut index: ResMut<PresenceIndex>,
) {
    for (e, presentity, mut view, mut content) in changed.iter_mut() {
        commands.entity(e).remove::<Recompose>();
        if presentity.publications.is_empty() && presentity.watchers.is_empty() {
            index.presentities.remove(&presentity.aor);
            commands.entity(e).despawn();
            continue;
        }
        let mut docs: Vec<(u64, &pidf::PidfDocument)> = presentity
            .publications
            .iter()
            .filter_map(|&p| publications.get(p).ok())
            .map(|p| (p.seq, &p.doc))
            .collect();
        docs.sort_unstable_by_key(|(seq, _)| *seq);
        let sources: Vec<&pidf::PidfDocument> = docs.into_iter().map(|(_, d)| d).collect();
        let body = if sources.is_empty() {
            pidf::empty_view(&presentity.uri, config.closed_when_unpublished)
        } else {
            pidf::compose(&presentity.uri, &sources)
        };
        if body == view.body {
            continue;
        }
        view.version += 1;
        for &w in &presentity.watchers {
            if let Ok(mut s) = subs.get_mut(w) {
                queue.touch(w, &mut s);
            }
        }
        content.body = body.clone();
        view.body = body;
    }
}
