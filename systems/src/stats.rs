//! Counters the engine keeps about what it saw and did (for logs, metrics and tests).

use crate::sip::Method;
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
    /// Requests parsed, by method (index: [`method_index`]).
    pub requests_by_method: [u64; METHODS.len()],
    /// Final responses sent from server transactions (filled in by `Engine::stats_snapshot`).
    pub responses_sent: ResponsesSent,
    /// NOTIFYs sent (retransmissions not counted).
    pub notifies_sent: u64,
    /// NOTIFYs answered 2xx.
    pub notifies_answered: u64,
    /// NOTIFYs answered with a final response other than 2xx.
    pub notifies_failed: u64,
    /// NOTIFYs never answered (Timer F).
    pub notifies_timed_out: u64,
    /// PUBLISH and SUBSCRIBE requests challenged for credentials (401 or 407).
    pub auth_challenges: u64,
    /// Credentials that did not verify (a wrong password, an unknown user).
    pub auth_failures: u64,
    /// Requests refused for their identity (403: tries used up, another's presentity).
    pub auth_refusals: u64,
}

/// Methods counted per method, and where each is counted: the router's order.
pub use crate::router::{ALL as METHODS, slot as method_index};

/// Final responses the engine sent, by request method and status class (1xx..6xx).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResponsesSent(pub [[u64; 6]; METHODS.len()]);

impl ResponsesSent {
    /// Count a response with status `code` to a `method` request; codes outside 100..700 are
    /// not SIP and are not counted.
    pub fn count(&mut self, method: Method, code: u16) {
        if (100..700).contains(&code) {
            self.0[method_index(method)][usize::from(code / 100 - 1)] += 1;
        }
    }
}
