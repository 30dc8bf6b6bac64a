//! Resource List Server settings.

use std::net::SocketAddr;

use bevy_ecs::prelude::Resource;

/// How list subscriptions are served.
#[derive(Resource, Debug, Clone)]
pub struct RlsConfig {
    /// Most members one list subscription watches (OMA's MAX-NUMBER-OF-SUBSCRIPTIONS-IN-
    /// PRESENCE-LIST): members past it are listed without a back-end subscription.
    pub max_members: usize,
    /// Shortest time between two NOTIFYs of one list subscription, in milliseconds: changes
    /// inside it go out together, with each member's newest state (0: only the NOTIFY in
    /// flight holds the next one back).
    pub min_notify_interval_ms: u64,
    /// Deepest nesting of lists, references included, followed when a list is resolved.
    pub max_depth: usize,
    /// Where back-end SUBSCRIBEs to members in other domains go; None: to the member's domain
    /// when it is an address (names need the proxy).
    pub outbound_proxy: Option<SocketAddr>,
    /// Expires asked of back-end subscriptions to other domains, in seconds.
    pub back_end_expires: u32,
    /// Write list NOTIFYs as Linphone (liblinphone 5.x) reads them: `Event: Presence` and
    /// part Content-IDs without angle brackets (RFC 2392 wants them). Off: standard NOTIFYs,
    /// which Linphone answers 200 and ignores.
    pub linphone_compat: bool,
    /// Our SIP address, which back-end SUBSCRIBEs are sent from (the shell's first listener);
    /// None: members in other domains cannot be watched.
    pub local: Option<SocketAddr>,
}

impl Default for RlsConfig {
    fn default() -> Self {
        RlsConfig {
            max_members: 200,
            min_notify_interval_ms: 0,
            max_depth: 16,
            outbound_proxy: None,
            back_end_expires: 3600,
            linphone_compat: false,
            local: None,
        }
    }
}
