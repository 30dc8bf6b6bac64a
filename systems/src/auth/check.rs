//! The Authenticate step of the tick: each PUBLISH and SUBSCRIBE routed this tick either gets
//! its identity ([`crate::sip::Request::authenticated`]) or is answered here: 401/407 with a
//! challenge, 403 when its identity may not do what it asks.

use std::sync::Arc;

use bevy_ecs::prelude::*;

use super::digest::{self, Algorithm, Verdict};
use super::{AuthConfig, AuthState, Mode, TRACKED_FAILURES, Users};
use crate::router::{MethodQueues, local_tag, respond};
use crate::sip::identity::{ANONYMOUS, host_of, identity_key, is_anonymous};
use crate::sip::response::ResponseWriter;
use crate::sip::{HeaderLookup, Method, Name, Request};
use crate::stats::Stats;
use crate::time::Clock;
use crate::transaction::Responder;

/// How long an address that used up its tries for a username is refused without a check.
const LOCKOUT_SECS: u64 = 60;

/// Wrong answers of one address for one username.
#[derive(Debug, Clone, Copy)]
pub(super) struct Failures {
    count: u32,
    last: u64,
}

/// Authenticate and authorise this tick's PUBLISH and SUBSCRIBE requests.
#[allow(clippy::too_many_arguments)]
pub fn authenticate(
    mut queues: ResMut<MethodQueues>,
    mut users: ResMut<Users>,
    mut state: ResMut<AuthState>,
    config: Res<AuthConfig>,
    clock: Res<Clock>,
    mut responder: Responder,
    mut stats: ResMut<Stats>,
) {
    if users.is_empty() {
        if !state.warned_open
            && [Method::Publish, Method::Subscribe]
                .into_iter()
                .any(|m| queues.queue_mut(m).is_some_and(|q| !q.is_empty()))
        {
            state.warned_open = true;
            tracing::warn!(
                target: "presenced::auth",
                "SIP requests are taken as their From says: no users are defined (presenced user add)"
            );
        }
        return;
    }
    let now = clock.unix_secs().max(0) as u64;
    let trusted = responder.config.trusted_peers.clone();
    let seed = responder.config.seed;
    let mut ctx = Ctx {
        users: &mut users,
        state: &mut state,
        config: &config,
        trusted: &trusted,
        now,
        stats: &mut stats,
    };
    for method in [Method::Publish, Method::Subscribe] {
        let Some(q) = queues.queue_mut(method) else {
            continue;
        };
        q.retain_mut(|inc| match ctx.decide(&inc.req) {
            Ok(who) => {
                inc.req.authenticated = Some(who);
                true
            }
            Err(refusal) => {
                let tag = local_tag(&inc.req, seed);
                let w = ctx.answer(&inc.req, refusal, &tag);
                responder.reply_to(inc.tx, &inc.req, w);
                false
            }
        });
    }
}

/// Why a request is answered here.
enum Refusal {
    /// Challenge it (again); `stale`: its answer was right but its nonce old.
    Challenge {
        stale: bool,
    },
    Forbidden(&'static str),
}

struct Ctx<'a> {
    users: &'a mut Users,
    state: &'a mut AuthState,
    config: &'a AuthConfig,
    trusted: &'a [std::net::IpAddr],
    now: u64,
    stats: &'a mut Stats,
}

impl Ctx<'_> {
    /// The identity `req` proves, allowed to do what it asks; or why not.
    fn decide(&mut self, req: &Request) -> Result<Arc<str>, Refusal> {
        let (mode, proxy_facing) = self.config.of_listener(req.source.local);
        if mode != Mode::Digest
            && crate::sip::identity::from_trusted_peer(&req.source, self.trusted)
            && let Some(pai) = req
                .header_values("P-Asserted-Identity")
                .map(crate::sip::fields::uri_of)
                .find(|u| !u.is_empty())
        {
            return self.authorise(req, pai.into(), true);
        }
        if mode == Mode::Asserted {
            return Err(Refusal::Forbidden(
                "Forbidden: an asserted identity from a trusted peer is required",
            ));
        }
        let header = if proxy_facing {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        let target: &str = &req.uri.raw;
        let method = crate::sip::message::method_str(req.method);
        let (mut stale, mut wrong) = (false, None);
        for value in req.headers_named(header) {
            let Some(c) = digest::credentials(value, target) else {
                continue;
            };
            // wrong answers are counted by address and username (the key is made only when
            // some are)
            let key = || format!("{} {}", req.source.peer.ip(), c.username);
            if !self.state.failures.is_empty()
                && let Some(f) = self.state.failures.get(&key()).copied()
                && f.count >= self.config.tries
            {
                if self.now.saturating_sub(f.last) < LOCKOUT_SECS {
                    self.stats.auth_refusals += 1;
                    return Err(Refusal::Forbidden("Forbidden: too many wrong credentials"));
                }
                self.state.failures.remove(&key());
            }
            let alg = Algorithm::parse(c.algorithm.as_deref())
                .filter(|a| self.config.algorithms.contains(a));
            let found = alg.and_then(|a| {
                let (l, slot) = self.users.login_mut(&c.username, &c.realm)?;
                Some((l.ha1_hex(a)?, l, slot))
            });
            let verdict = match found {
                Some((ha1, l, slot)) if digest::right_answer(&c, ha1.as_str(), method, target) => {
                    // a replayed count gets a fresh challenge: the client simply retries
                    let counted = c.nc.as_deref().is_some_and(|nc| {
                        self.state
                            .nonces
                            .admit_in(slot, &c.username, &c.nonce, nc, self.now)
                    });
                    if counted {
                        Ok(l.identity.clone())
                    } else {
                        Err(Verdict::Stale)
                    }
                }
                _ => Err(Verdict::Wrong),
            };
            match verdict {
                Ok(identity) => {
                    if !self.state.failures.is_empty() {
                        self.state.failures.remove(&key());
                    }
                    return self.authorise(req, identity, false);
                }
                Err(Verdict::Stale) => stale = true,
                Err(_) => wrong = Some(key()),
            }
        }
        if let Some(key) = wrong {
            self.stats.auth_failures += 1;
            if self.state.failures.len() >= TRACKED_FAILURES
                && !self.state.failures.contains_key(&key)
            {
                self.state.failures.clear();
            }
            let f = self.state.failures.entry(key).or_insert(Failures {
                count: 0,
                last: self.now,
            });
            f.count += 1;
            f.last = self.now;
            if f.count >= self.config.tries {
                self.stats.auth_refusals += 1;
                return Err(Refusal::Forbidden("Forbidden: too many wrong credentials"));
            }
        }
        Err(Refusal::Challenge { stale })
    }

    /// What `who` may do: publish its own presence, subscribe as itself (or anonymously, RFC
    /// 3323: its rules then see `anonymous-request`). A trusted core's assertion stands for
    /// itself: its `From` may differ.
    fn authorise(
        &mut self,
        req: &Request,
        who: Arc<str>,
        asserted: bool,
    ) -> Result<Arc<str>, Refusal> {
        match req.method {
            Method::Publish => {
                if !self.config.may_publish(&who, &req.uri.raw) {
                    self.stats.auth_refusals += 1;
                    return Err(Refusal::Forbidden("Forbidden: not your presentity"));
                }
                Ok(who)
            }
            _ => {
                let from = crate::sip::fields::uri_of(req.header(Name::From).unwrap_or(""));
                if is_anonymous(from) {
                    return Ok(ANONYMOUS.into());
                }
                if !asserted && from != &*who && identity_key(from) != identity_key(&who) {
                    self.stats.auth_refusals += 1;
                    return Err(Refusal::Forbidden(
                        "Forbidden: From is not the authenticated identity",
                    ));
                }
                Ok(who)
            }
        }
    }

    /// The response of a refusal.
    fn answer(&mut self, req: &Request, refusal: Refusal, tag: &str) -> ResponseWriter {
        match refusal {
            Refusal::Forbidden(reason) => respond(req, 403, reason, tag),
            Refusal::Challenge { stale } => {
                self.stats.auth_challenges += 1;
                let proxy_facing = self.config.of_listener(req.source.local).1;
                let (code, reason, header) = if proxy_facing {
                    (407, "Proxy Authentication Required", "Proxy-Authenticate")
                } else {
                    (401, "Unauthorized", "WWW-Authenticate")
                };
                // the claimed identity's domain; an anonymous one names none, the
                // Request-URI's then (the domain served)
                let from = crate::sip::fields::uri_of(req.header(Name::From).unwrap_or(""));
                let realm = match &self.config.realm {
                    Some(r) => r.clone(),
                    None => Some(from)
                        .filter(|f| !is_anonymous(f))
                        .and_then(host_of)
                        .or_else(|| host_of(&req.uri.raw))
                        .unwrap_or("presenced")
                        .to_ascii_lowercase(),
                };
                self.state.issued = self.state.issued.wrapping_add(1);
                let nonce = self.state.nonces.issue(self.now, self.state.issued);
                let mut w = respond(req, code, reason, tag);
                for c in digest::challenges(&self.config.algorithms, &realm, &nonce, stale) {
                    w.header(header, &c);
                }
                w
            }
        }
    }
}
