//! SIP Digest for a run with `[auth]`: every presentity (its PUBLISHes) and every watcher
//! (its SUBSCRIBEs) is a user of its own with one Digest state (nonce, nonce count, HA1), made by
//! its first challenge and then reused for all its requests, as a real client does.

use super::Runner;
use crate::digest::{UserAuth, pick_challenge};
use crate::msgs::Watched;
use crate::sipmsg::Msg;
use crate::stats::OpKind;

/// The population's Digest states and the scratch space of the header being written.
pub(super) struct Auth {
    password: String,
    /// Per presentity and per watcher: its Digest state, once challenged (a box: 8 bytes for the
    /// ones not yet challenged).
    pres: Vec<Option<Box<UserAuth>>>,
    watchers: Vec<Option<Box<UserAuth>>>,
    user: Vec<u8>,
    uri: Vec<u8>,
    /// The credentials line of the request being written.
    pub line: Vec<u8>,
}

impl Auth {
    /// For `presentities` and `watchers` who all log in with `password`.
    pub(super) fn new(password: &str, presentities: usize, watchers: usize) -> Auth {
        Auth {
            password: password.to_owned(),
            pres: (0..presentities).map(|_| None).collect(),
            watchers: (0..watchers).map(|_| None).collect(),
            user: Vec::with_capacity(32),
            uri: Vec::with_capacity(96),
            line: Vec::with_capacity(512),
        }
    }
}

impl Runner<'_> {
    /// Write into `auth.line` the credentials of the next request of `op` by `entity` (to
    /// `what` for a SUBSCRIBE, whose Request-URI it is) when that user has a Digest state, the
    /// nonce count one up. Whether it did.
    pub(super) fn write_credentials(&mut self, op: OpKind, entity: u32, what: Watched) -> bool {
        let Some(a) = self.auth.as_mut() else {
            return false;
        };
        let Auth {
            pres,
            watchers,
            user,
            uri,
            line,
            ..
        } = a;
        line.clear();
        let publish = op.method() == "PUBLISH";
        let states = if publish { pres } else { watchers };
        let Some(s) = states[entity as usize].as_deref_mut() else {
            return false;
        };
        user.clear();
        uri.clear();
        if publish {
            self.tpl.user(user, b'p', entity);
            self.tpl.uri(uri, b'p', entity);
        } else {
            self.tpl.user(user, b'w', entity);
            self.tpl.watched(uri, entity, what);
        }
        // unique with the nonce count: the run, the user
        let cnonce = ((self.tpl.run_id as u64) << 32) | entity as u64;
        s.write_header(line, user, op.method(), uri, cnonce);
        self.stats.auth.with_credentials += 1;
        true
    }

    /// A 401 (or 407) ended a transaction of `op` for `entity`: take its challenge into the
    /// user's Digest state (a new one for a user's first). Whether it had one loadgen can answer.
    pub(super) fn take_challenge(
        &mut self,
        op: OpKind,
        entity: u32,
        m: &Msg<'_>,
        code: u16,
    ) -> bool {
        let Some(a) = self.auth.as_mut() else {
            return false;
        };
        let proxy = code == 407;
        let Some(ch) = pick_challenge(m.head, proxy) else {
            return false;
        };
        let st = &mut self.stats.auth;
        st.challenges += 1;
        if ch.stale {
            st.stale += 1;
        }
        let publish = op.method() == "PUBLISH";
        a.user.clear();
        self.tpl
            .user(&mut a.user, if publish { b'p' } else { b'w' }, entity);
        let username = std::str::from_utf8(&a.user).unwrap_or_default();
        let states = if publish {
            &mut a.pres
        } else {
            &mut a.watchers
        };
        match &mut states[entity as usize] {
            Some(s) => s.renew(ch, username, &a.password, proxy),
            none => {
                *none = Some(Box::new(UserAuth::new(ch, username, &a.password, proxy)));
                st.users += 1;
            }
        }
        true
    }
}
