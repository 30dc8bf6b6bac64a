//! Composition: once per tick, each presentity whose sources changed gets one new view, however
//! many publications arrived for it in the tick.

use bevy_ecs::entity::Entities;
use bevy_ecs::prelude::*;

use crate::formats::pidf;

use crate::subscription::{Content, NotifyQueue, Subscription};

use super::PIDF;
use super::components::{
    PresenceIndex, Presentity, Publication, Recompose, SourceUri, aor_key, aor_of,
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
#[allow(clippy::too_many_arguments)]
pub fn compose_views(
    mut commands: Commands,
    mut changed: Query<(Entity, &Presentity, &SourceUri, Option<&mut Content>), With<Recompose>>,
    uris: Query<&SourceUri>,
    publications: Query<&Publication>,
    mut subs: Query<&mut Subscription>,
    mut queue: ResMut<NotifyQueue>,
    config: Res<PresenceConfig>,
    mut index: ResMut<PresenceIndex>,
    mut compositions: ResMut<Compositions>,
    entities: &Entities,
) {
    for (e, presentity, uri, content) in changed.iter_mut() {
        commands.entity(e).remove::<Recompose>();
        if presentity.publications.is_empty() && presentity.watchers.is_empty() {
            index.remove_presentity(aor_key(aor_of(uri)), e, |x| {
                uris.get(x).ok().map(|u| aor_key(aor_of(u)))
            });
            commands.entity(e).despawn();
            continue;
        }
        // `publications` is in order of last modification, oldest first: newer sources win.
        let sources: Vec<&pidf::PidfDocument> = presentity
            .publications
            .iter()
            .filter_map(|p| publications.get(p).ok())
            .map(|p| &p.doc)
            .collect();
        compositions.0 += 1;
        let empty = || pidf::empty_view(&uri.0, config.closed_when_unpublished);
        let changed = match (sources.is_empty(), content) {
            // still nobody publishes: the empty view, unchanged
            (true, None) => false,
            (true, Some(content)) => {
                commands.entity(e).remove::<Content>();
                content.body != empty()
            }
            (false, Some(mut content)) => {
                let body = pidf::compose(&uri.0, &sources);
                let changed = body != content.body;
                if changed {
                    content.body = body;
                }
                changed
            }
            (false, None) => {
                let body = pidf::compose(&uri.0, &sources);
                let changed = body != empty();
                commands.entity(e).insert(Content {
                    content_type: PIDF,
                    body,
                });
                changed
            }
        };
        if changed {
            for w in presentity.watchers.iter(entities) {
                if let Ok(mut s) = subs.get_mut(w) {
                    queue.touch(w, &mut s);
                }
            }
        }
    }
}
