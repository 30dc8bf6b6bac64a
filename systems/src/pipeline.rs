//! The order of work in one tick. Later features add their systems to these sets.

use bevy_ecs::prelude::SystemSet;

/// The stages of a tick, run in this order.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pipeline {
    /// Collect due timers; parse the inbox; match transactions.
    Ingest,
    /// Transaction timers; shared request checks; routing to method queues.
    Transactions,
    /// PUBLISH handling and composition.
    Publish,
    /// SUBSCRIBE handling and dialogs.
    Subscribe,
    /// Subscription authorisation and content rules.
    Authorize,
    /// Resource list aggregation.
    Lists,
    /// Subscription expiry. It runs before NotifyEncode so that the `terminated` NOTIFY of an
    /// expired subscription leaves in the same tick (publication expiry runs in Publish, before
    /// composition, for the same reason).
    Expiry,
    /// Build documents and NOTIFYs.
    NotifyEncode,
    /// Hand everything produced to the outbox.
    Emit,
}
