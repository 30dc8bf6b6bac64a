//! Composition: once per tick, each presentity whose sources changed gets one new view, however
//! many publications arrived for it in the tick.

use bevy_ecs::prelude::*;

use crate::formats::pidf;

use super::components::{PresenceIndex, Presentity, Publication, Recompose, View};
use super::config::PresenceConfig;

/// Recompose the views of changed presentities; forget presentities nobody publishes or watches.
pub fn compose_views(
    mut commands: Commands,
    mut changed: Query<(Entity, &Presentity, &mut View), With<Recompose>>,
    publications: Query<&Publication>,
    config: Res<PresenceConfig>,
    mut index: ResMut<PresenceIndex>,
) {
    for (e, presentity, mut view) in changed.iter_mut() {
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
        if body != view.body {
            view.body = body;
            view.version += 1;
        }
    }
}
