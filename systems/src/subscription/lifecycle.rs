//! Subscription life-cycle events: a subscription was created, changed state or ended. Packages
//! that report on other packages' subscriptions (watcher information, RFC 3857, follows
//! presence) read them later in the tick; the package whose subscriptions they are never calls
//! those readers.

use bevy_ecs::prelude::*;

use super::{DialogStore, PackageId, Reason, SubState, Subscription};
use crate::time::Time;

/// A watcher's status (RFC 3858 §4, RFC 3857 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Pending,
    Active,
    /// A pending subscription that timed out: kept so that its owner can still decide.
    Waiting,
    Terminated,
}

impl Status {
    /// The token in a watcherinfo document.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Active => "active",
            Status::Waiting => "waiting",
            Status::Terminated => "terminated",
        }
    }
}

/// What moved a watcher to its status (RFC 3857 §3.2.2's state machine events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    Subscribe,
    Approved,
    Deactivated,
    Probation,
    Rejected,
    Timeout,
    Giveup,
    Noresource,
}

impl Event {
    /// The token in a watcherinfo document.
    pub const fn as_str(self) -> &'static str {
        match self {
            Event::Subscribe => "subscribe",
            Event::Approved => "approved",
            Event::Deactivated => "deactivated",
            Event::Probation => "probation",
            Event::Rejected => "rejected",
            Event::Timeout => "timeout",
            Event::Giveup => "giveup",
            Event::Noresource => "noresource",
        }
    }

    /// The event a subscription ending with `reason` reports.
    pub const fn of_reason(reason: Option<Reason>) -> Event {
        match reason {
            Some(Reason::Deactivated) => Event::Deactivated,
            Some(Reason::Probation) => Event::Probation,
            Some(Reason::Rejected) => Event::Rejected,
            Some(Reason::Timeout) => Event::Timeout,
            Some(Reason::Noresource) => Event::Noresource,
            Some(Reason::Giveup | Reason::Invariant) | None => Event::Giveup,
        }
    }
}

/// One change of one subscription, with what a report needs (the subscription may be gone by
/// the time it is read).
#[derive(Debug, Clone)]
pub struct LifeEvent {
    pub package: PackageId,
    /// The URI of the resource it watches (a presentity's; the entity may be gone).
    pub resource: Box<str>,
    pub sub: Entity,
    pub status: Status,
    pub event: Event,
    /// The watcher's identity URI.
    pub watcher: Box<str>,
    /// The display name of the SUBSCRIBE's From, if any.
    pub display_name: Option<Box<str>>,
    pub expires_at: Time,
    /// When the subscription began.
    pub since: Time,
}

/// This tick's events. Filled only while some package listens (`listening`), emptied at the
/// start of every tick.
#[derive(Resource, Debug, Default)]
pub struct Lifecycle {
    pub listening: bool,
    pub events: Vec<LifeEvent>,
}

/// Start of tick: last tick's events have been read.
pub fn clear_lifecycle(mut l: ResMut<Lifecycle>) {
    l.events.clear();
}

/// The status a subscription's state reports.
pub fn status_of(state: SubState) -> Status {
    match state {
        SubState::Active => Status::Active,
        SubState::Pending => Status::Pending,
        SubState::Terminating(_) => Status::Terminated,
    }
}

/// The display name of a From/To value (`"Mr. X" <sip:x@y>` gives `Mr. X`), unquoted.
pub fn display_name(value: &str) -> Option<&str> {
    let lt = value.find('<')?;
    let name = value[..lt].trim();
    let name = name
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(name)
        .trim();
    (!name.is_empty()).then_some(name)
}

/// Record an event for `sub` (watching `resource`, identified as `watcher`) when anyone
/// listens.
pub fn record(
    world: &mut World,
    sub: Entity,
    resource: Entity,
    watcher: &str,
    status: Status,
    event: Event,
) {
    if !world
        .get_resource::<Lifecycle>()
        .is_some_and(|l| l.listening)
    {
        return;
    }
    let Some(s) = world.get::<Subscription>(sub) else {
        return;
    };
    let strings = s.dialog.strings(world.resource::<DialogStore>());
    let display = display_name(strings.remote()).map(Into::into);
    let since = world
        .get::<Since>(sub)
        .map_or(Time::default(), |since| since.0);
    let resource: Box<str> = match world.get::<super::SourceUri>(resource) {
        Some(u) => u.0.clone(),
        None => return,
    };
    let ev = LifeEvent {
        package: s.package,
        resource,
        sub,
        status,
        event,
        watcher: watcher.into(),
        display_name: display,
        expires_at: s.expires_at,
        since,
    };
    world.resource_mut::<Lifecycle>().events.push(ev);
}

/// When a subscription began, kept only while somebody listens to life cycles (RFC 3858
/// `duration-subscribed`).
#[derive(Component, Debug, Clone, Copy)]
pub struct Since(pub Time);
