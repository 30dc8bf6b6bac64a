//! Counters the engine keeps about what it saw and did (for logs, metrics and tests).

use bevy_ecs::prelude::Resource;

/// Engine-wide counters; monotonic.
#[derive(Resource, Debug, Default, Clone)]
pub struct Stats {
    pub ticks: u64,
    pub messages_in: u64,
    pub requests: u64,
    pub responses: u64,
    /// Answered at parse time (400, 416, 501, 505).
    pub rejected: u64,
    /// Dropped unanswered: not SIP, unroutable, or malformed responses/ACKs.
    pub dropped: u64,
    /// Request retransmissions answered from a completed server transaction.
    pub retransmissions_absorbed: u64,
    /// Responses that matched no client transaction.
    pub stray_responses: u64,
    /// Requests we retransmitted (Timer E).
    pub retransmissions_sent: u64,
    /// Client transactions that timed out (Timer F).
    pub client_timeouts: u64,
    pub messages_out: u64,
}
