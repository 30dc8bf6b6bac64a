//! NOTIFY encoding and flow control. A changed view is encoded once (by composition) and shared
//! by reference with every watcher; per watcher only the dialog's head is written. NOTIFYs in a
//! dialog never overtake each other (RFC 6665 §4.2.2): while one is in flight, later changes
//! only mark the subscription dirty, and the newest state goes out when the answer arrives.

use bevy_ecs::prelude::*;

use crate::net::Outbound;
use crate::sip::Method;
use crate::time::Clock;
use crate::transaction::{ClientOutcomes, Outcome, Owner, Requester};

use super::components::{PresenceIndex, Presentity, SubState, Subscription, View};
use super::dialog::{Dialog, SubscriptionStateHeader};
use super::{EVENT, PIDF};

/// Subscriptions to look at this tick (duplicates are harmless).
#[derive(Resource, Default)]
pub struct NotifyQueue(pub Vec<Entity>);

/// Queue the watchers of every view that changed this tick, then send what can be sent.
pub fn send_notifies(
    mut queue: ResMut<NotifyQueue>,
    changed: Query<(&Presentity, &View), Changed<View>>,
    views: Query<&View>,
    mut subs: Query<(&mut Subscription, &mut Dialog)>,
    mut requester: Requester,
    clock: Res<Clock>,
) {
    for (presentity, _) in changed.iter() {
        for &w in &presentity.watchers {
            if let Ok((mut s, _)) = subs.get_mut(w) {
                s.flow.dirty = true;
                queue.0.push(w);
            }
        }
    }
    let now = clock.now;
    for e in queue.0.drain(..) {
        let Ok((mut s, mut dialog)) = subs.get_mut(e) else {
            continue;
        };
        if !s.flow.dirty || s.flow.in_flight || s.flow.final_sent {
            continue;
        }
        let Ok(view) = views.get(s.presentity) else {
            continue;
        };
        let state = match s.state {
            SubState::Active => SubscriptionStateHeader::Active {
                expires: now.until(s.expires_at).div_ceil(1000),
            },
            SubState::Terminating(reason) => SubscriptionStateHeader::Terminated { reason },
        };
        let branch = requester.new_branch();
        let head = dialog.notify_head(
            &branch,
            EVENT,
            s.event_id.as_deref(),
            state,
            PIDF,
            view.body.len(),
        );
        let message = Outbound {
            dest: dialog.dest,
            head,
            body: view.body.clone(),
        };
        requester.send(Owner(e.to_bits()), Method::Notify, branch, message);
        s.flow.in_flight = true;
        s.flow.dirty = false;
        s.flow.sent_version = view.version;
        s.flow.final_sent = matches!(s.state, SubState::Terminating(_));
    }
}

/// Act on the answers to our NOTIFYs: a 2xx lets the next one go; anything else, or no answer
/// at all (Timer F), ends the subscription (RFC 6665 §4.2.2: 481 in particular).
pub fn notify_outcomes(
    mut commands: Commands,
    mut outcomes: ResMut<ClientOutcomes>,
    mut queue: ResMut<NotifyQueue>,
    mut subs: Query<(&mut Subscription, &Dialog)>,
    mut presentities: Query<&mut Presentity>,
    mut index: ResMut<PresenceIndex>,
) {
    for (owner, outcome) in outcomes.done.drain(..) {
        let e = Entity::from_bits(owner.0);
        let Ok((mut s, dialog)) = subs.get_mut(e) else {
            continue;
        };
        s.flow.in_flight = false;
        let ok = matches!(&outcome, Outcome::Final(r) if (200..300).contains(&r.code));
        if ok && !s.flow.final_sent {
            if s.flow.dirty {
                queue.0.push(e);
            }
            continue;
        }
        // the subscription is over
        index
            .dialogs
            .remove(&(dialog.call_id.clone(), dialog.local_tag.clone()));
        if let Some(n) = index.per_watcher.get_mut(&s.watcher_aor) {
            *n -= 1;
            if *n == 0 {
                index.per_watcher.remove(&s.watcher_aor);
            }
        }
        if let Ok(mut p) = presentities.get_mut(s.presentity) {
            p.watchers.retain(|&w| w != e);
            if p.watchers.is_empty() && p.publications.is_empty() {
                index.presentities.remove(&p.aor);
                commands.entity(s.presentity).despawn();
            }
        }
        commands.entity(e).despawn();
    }
}
