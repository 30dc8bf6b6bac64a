//! Engine settings: protocol timers and bounds. The shell fills it from the config file.

use bevy_ecs::prelude::Resource;

/// Settings the engine's systems read.
#[derive(Resource, Debug, Clone)]
pub struct EngineConfig {
    /// RFC 3261 §17.1.1.1 T1 (round-trip estimate), milliseconds.
    pub t1_ms: u64,
    /// RFC 3261 §17.1.2.2 T2 (retransmit interval cap for non-INVITE), milliseconds.
    pub t2_ms: u64,
    /// Seed mixed into tags and branches so that two runs never reuse them.
    pub seed: u64,
    /// Secret the keys of the engine's hash tables are derived from ([`crate::keyed_hash`]);
    /// the shell draws it from the operating system. Apart from `seed`, whose low half every
    /// branch and token carries in plain text: a peer must not learn the keys.
    pub hash_seed: u128,
    /// Option tags we support (RFC 3261 §8.2.2.3); a Require naming any other gets 420.
    pub supported: Vec<String>,
    /// Seconds a client is asked to wait in a 503 (overload).
    pub retry_after_secs: u32,
    /// Answer at the packet source as if every request carried `rport` (RFC 3581).
    pub force_rport: bool,
    /// Peers whose `P-Asserted-Identity` is believed (RFC 3325's Trust Domain: an IMS core).
    pub trusted_peers: Vec<std::net::IpAddr>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            t1_ms: 500,
            t2_ms: 4000,
            seed: 0,
            hash_seed: 0,
            supported: Vec::new(),
            retry_after_secs: 5,
            force_rport: false,
            trusted_peers: Vec::new(),
        }
    }
}

impl EngineConfig {
    /// Timer F / Timer J: 64·T1.
    pub fn timer_64t1(&self) -> u64 {
        64 * self.t1_ms
    }
}
