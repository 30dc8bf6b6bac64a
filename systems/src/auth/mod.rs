//! Who sent a request (RFC 3261 §22, RFC 3325; the seed's §6.1.6.1): once users are defined,
//! every PUBLISH and SUBSCRIBE must carry SIP Digest credentials of one of them, or come from
//! a trusted peer (an IMS core) with a `P-Asserted-Identity`. The identity found is what
//! pres-rules, winfo, xcap-diff and the RLS see ([`crate::sip::Request::authenticated`]), and
//! an identity may only publish its own presence and subscribe as itself.
//!
//! With no user defined the server stays open (a lab, a benchmark): requests are taken as
//! their `From` says, and a warning is logged once.
//!
//! The users are handed in by the shell ([`crate::Engine::set_users`]) from the store the
//! XCAP side authenticates against, with the same passwords; the Digest code is the XCAP
//! side's ([`digest`]).

pub mod check;
pub mod digest;

use std::collections::HashMap;
use std::sync::Arc;

use bevy_ecs::prelude::*;
use smallvec::SmallVec;

use crate::keyed_hash::HashKeys;
use crate::pipeline::Pipeline;

pub use digest::Algorithm;

/// What a listener accepts as proof of identity (`sip.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// SIP Digest only.
    Digest,
    /// `P-Asserted-Identity` from a trusted peer only (behind an IMS core).
    Asserted,
    /// Either.
    Either,
}

/// What one listener accepts instead of [`AuthConfig::mode`] and [`AuthConfig::proxy_facing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerAuth {
    /// The listener's bound address ([`crate::net::Source::local`] of what arrives there).
    pub local: std::net::SocketAddr,
    pub mode: Mode,
    pub proxy_facing: bool,
}

/// Settings of SIP authentication.
#[derive(Resource, Debug, Clone)]
pub struct AuthConfig {
    pub mode: Mode,
    /// Listeners that differ from `mode` and `proxy_facing`.
    pub listeners: Vec<ListenerAuth>,
    /// The realm of challenges; None: the domain of the identity the request claims (its
    /// `From`; for an anonymous one the Request-URI's), the realm SIP clients look their
    /// password up by (RFC 3261 §22.1).
    pub realm: Option<String>,
    /// Offered in this order (RFC 8760 §2.4: the preferred first).
    pub algorithms: Vec<Algorithm>,
    /// How long a nonce is good for; a right answer to an older one earns `stale=true`.
    pub nonce_lifetime_secs: u64,
    /// Wrong answers from one address for one username before 403 instead of a new challenge.
    pub tries: u32,
    /// Challenge with 407 and `Proxy-Authenticate` (a listener that proxies face) instead of
    /// 401 and `WWW-Authenticate`.
    pub proxy_facing: bool,
    /// Who may publish for whom besides the presentity itself (a gateway, a calendar service):
    /// (presentity URI, publisher URIs).
    pub delegates: Vec<(String, Vec<String>)>,
}

impl AuthConfig {
    /// The mode and proxy-facing of the listener at `local`.
    pub fn of_listener(&self, local: std::net::SocketAddr) -> (Mode, bool) {
        self.listeners
            .iter()
            .find(|l| l.local == local)
            .map_or((self.mode, self.proxy_facing), |l| (l.mode, l.proxy_facing))
    }

    /// Whether `publisher` may publish `presentity`'s presence: its own, or as a delegate.
    pub fn may_publish(&self, publisher: &str, presentity: &str) -> bool {
        use crate::sip::identity::identity_key;
        if publisher == presentity {
            return true;
        }
        let (Some(who), Some(whose)) = (identity_key(publisher), identity_key(presentity)) else {
            return false;
        };
        who == whose
            || self.delegates.iter().any(|(p, ds)| {
                identity_key(p).as_ref() == Some(&whose)
                    && ds.iter().any(|d| identity_key(d).as_ref() == Some(&who))
            })
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: Mode::Either,
            listeners: Vec::new(),
            realm: None,
            algorithms: Algorithm::ALL.to_vec(),
            nonce_lifetime_secs: 300,
            tries: 3,
            proxy_facing: false,
            delegates: Vec::new(),
        }
    }
}

/// One digest login of a user: a username in a realm, the user's SIP URI, its HA1 values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLogin {
    pub identity: String,
    pub username: String,
    pub realm: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
}

/// A login as kept: by username, then realm (shared by the logins naming it). HA1 values are
/// kept as bytes (None when the store's hex was not a hash of that algorithm).
#[derive(Debug)]
pub(crate) struct Login {
    realm: Arc<str>,
    pub(crate) identity: Arc<str>,
    ha1_md5: Option<[u8; 16]>,
    ha1_sha256: Option<[u8; 32]>,
}

impl Login {
    /// The HA1 of `alg` in hex, as the response is computed over it.
    pub(crate) fn ha1_hex(&self, alg: Algorithm) -> Option<digest::HexDigest> {
        match alg {
            Algorithm::Md5 => self.ha1_md5.as_ref().map(|h| digest::HexDigest::of(h)),
            Algorithm::Sha256 => self.ha1_sha256.as_ref().map(|h| digest::HexDigest::of(h)),
        }
    }
}

/// The bytes of `N`-byte hex `s`.
fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// The logins of one username, and the count of the nonce it last used.
#[derive(Debug, Default)]
struct Named {
    logins: SmallVec<[Login; 1]>,
    nonce: Option<digest::NonceSlot>,
}

/// The users requests may authenticate as.
#[derive(Resource)]
pub struct Users {
    by_name: HashMap<Box<str>, Named, HashKeys>,
    /// Distinct users (identities).
    count: usize,
}

impl Users {
    /// Replace every login with `logins`.
    /// A username kept keeps its nonce count (a replay across a reload stays refused).
    pub fn replace(&mut self, logins: impl IntoIterator<Item = UserLogin>) {
        let hasher = *self.by_name.hasher();
        let mut old = std::mem::replace(&mut self.by_name, HashMap::with_hasher(hasher));
        let mut identities: HashMap<String, Arc<str>> = HashMap::new();
        let mut realms: HashMap<String, Arc<str>> = HashMap::new();
        for l in logins {
            let identity = identities
                .entry(l.identity.clone())
                .or_insert_with(|| l.identity.as_str().into())
                .clone();
            let realm = realms
                .entry(l.realm.clone())
                .or_insert_with(|| l.realm.as_str().into())
                .clone();
            self.by_name
                .entry(l.username.into_boxed_str())
                .or_insert_with_key(|name| Named {
                    logins: SmallVec::new(),
                    nonce: old.remove(name).and_then(|n| n.nonce),
                })
                .logins
                .push(Login {
                    realm,
                    identity,
                    ha1_md5: unhex(&l.ha1_md5),
                    ha1_sha256: unhex(&l.ha1_sha256),
                });
        }
        self.by_name.shrink_to_fit();
        self.count = identities.len();
    }

    /// No user is defined: the server is open.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// How many users are defined.
    pub fn len(&self) -> usize {
        self.count
    }

    /// The login of `username` in `realm`, and the username's nonce slot.
    pub(crate) fn login_mut(
        &mut self,
        username: &str,
        realm: &str,
    ) -> Option<(&Login, &mut Option<digest::NonceSlot>)> {
        let named = self.by_name.get_mut(username)?;
        let login = named.logins.iter().find(|l| &*l.realm == realm)?;
        Some((login, &mut named.nonce))
    }
}

/// Nonces, the count of unique parts handed out, and wrong answers per address and username.
#[derive(Resource)]
pub struct AuthState {
    nonces: digest::Nonces,
    issued: u64,
    failures: HashMap<String, check::Failures, HashKeys>,
    warned_open: bool,
}

/// Past this many addresses with wrong answers, the oldest counts are forgotten (all at once:
/// a flood of wrong answers cannot grow memory).
const TRACKED_FAILURES: usize = 10_000;

/// Add SIP authentication to an engine (after the features whose requests it guards: it
/// checks PUBLISH and SUBSCRIBE before their systems see them).
pub fn feature(config: AuthConfig) -> impl FnOnce(&mut World, &mut Schedule) {
    move |world, schedule| {
        let hash_seed = world.resource::<crate::EngineConfig>().hash_seed;
        let seed = world.resource::<crate::EngineConfig>().seed;
        // the nonce secret: from the engine's hash secret, which a peer never learns
        let secret = {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            h.update(hash_seed.to_le_bytes());
            h.update(b"sip digest nonces");
            let d: [u8; 32] = h.finalize().into();
            d
        };
        world.insert_resource(AuthState {
            nonces: digest::Nonces::new(secret, config.nonce_lifetime_secs),
            issued: seed,
            failures: HashMap::with_hasher(HashKeys::derive(hash_seed, 0x6175_7468)),
            warned_open: false,
        });
        if !world.contains_resource::<Users>() {
            world.insert_resource(Users {
                by_name: HashMap::with_hasher(HashKeys::derive(hash_seed, 0x7573_6572)),
                count: 0,
            });
        }
        world.insert_resource(config);
        schedule.add_systems(
            check::authenticate
                .after(crate::router::dispatch)
                .in_set(Pipeline::Transactions),
        );
    }
}
