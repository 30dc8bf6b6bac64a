//! HTTP Digest (RFC 7616) for the Aggregation Proxy: the engine's Digest code
//! ([`presenced_systems::auth::digest`], shared with SIP) over the wall clock, with a secret
//! and nonce uniqueness from the operating system's random source.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use presenced_systems::auth::digest::{self as core};
pub use presenced_systems::auth::digest::{Algorithm, Credentials, Verdict, credentials, ha1};

/// The proxy's nonces, shared by its request handlers.
pub struct Nonces(Mutex<core::Nonces>);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("operating system random source");
    u64::from_le_bytes(b)
}

impl Nonces {
    /// A fresh secret; nonces live `lifetime`.
    pub fn new(lifetime: Duration) -> Nonces {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("operating system random source");
        Nonces(Mutex::new(core::Nonces::new(secret, lifetime.as_secs())))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, core::Nonces> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A nonce issued now.
    pub fn issue(&self) -> String {
        self.lock().issue(now(), random_u64())
    }
}

/// The WWW-Authenticate values of a 401, one per offered algorithm, with a fresh nonce.
pub fn challenges(
    algorithms: &[Algorithm],
    realm: &str,
    nonces: &Nonces,
    stale: bool,
) -> Vec<String> {
    core::challenges(algorithms, realm, &nonces.issue(), stale)
}

/// Check `c` (already matched to a user with these HA1 values) for a request with `method`.
pub fn verify(
    c: &Credentials,
    ha1_md5: &str,
    ha1_sha256: &str,
    method: &str,
    request_target: &str,
    nonces: &Nonces,
) -> Verdict {
    core::verify(
        c,
        ha1_md5,
        ha1_sha256,
        method,
        request_target,
        &mut nonces.lock(),
        now(),
    )
}
