//! Presence Server settings.

use bevy_ecs::prelude::Resource;

/// Bounds and policies of the Presence Server.
#[derive(Resource, Debug, Clone)]
pub struct PresenceConfig {
    /// PUBLISH `Expires` bounds and default, seconds (RFC 3903 §6: 423 below the minimum).
    pub publish_min_expires: u32,
    pub publish_max_expires: u32,
    pub publish_default_expires: u32,
    /// SUBSCRIBE `Expires` bounds and default, seconds (RFC 6665 §4.2.1.1, RFC 3856 §6.4).
    pub subscribe_min_expires: u32,
    pub subscribe_max_expires: u32,
    pub subscribe_default_expires: u32,
    /// Largest PUBLISH body accepted (413 above).
    pub max_body_bytes: usize,
    /// Least time between two changes of one publication (OMA SOURCE-THROTTLE-PUBLISH); 0: no
    /// limit.
    pub publish_min_interval_ms: u64,
    /// A change inside the interval is taken and shown when it is over (the latest wins)
    /// instead of refused with 503 and Retry-After.
    pub publish_throttle_merge: bool,
    /// Domains served; empty: every domain.
    pub domains: Vec<String>,
    /// With nothing published, show one tuple with basic status `closed` instead of none.
    pub closed_when_unpublished: bool,
    /// Most subscriptions to one presentity, and by one watcher (excess: 503 / 403).
    pub max_subscriptions_per_presentity: usize,
    pub max_subscriptions_per_watcher: usize,
    /// Presentities (and publications) the indexes are sized for at start, like Kamailio's
    /// presence `hash_size`. Past it they grow a little at a time ([`crate::growing_map`]).
    pub expected_presentities: usize,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            publish_min_expires: 60,
            publish_max_expires: 7200,
            publish_default_expires: 3600,
            subscribe_min_expires: 60,
            subscribe_max_expires: 7200,
            subscribe_default_expires: 3600,
            max_body_bytes: 65536,
            publish_min_interval_ms: 0,
            publish_throttle_merge: false,
            domains: Vec::new(),
            closed_when_unpublished: false,
            max_subscriptions_per_presentity: 10_000,
            max_subscriptions_per_watcher: 1_000,
            expected_presentities: 0,
        }
    }
}

impl PresenceConfig {
    /// True when requests for `host` are ours.
    pub fn serves(&self, host: &str) -> bool {
        self.domains.is_empty() || self.domains.iter().any(|d| d.eq_ignore_ascii_case(host))
    }
}
