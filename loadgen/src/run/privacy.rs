//! The outcomes of authorization: the rules documents written before the run (`[rules]`,
//! see `crate::rules`), each NOTIFY's `Subscription-State` kept per watcher, and the count of
//! active and pending subscriptions with those that differ from what the rules decide.
//!
//! A pending watcher (RFC 5025 `confirm`) has a dialog but is sent no state: it is left out of
//! the presentity's watchers, so modifies expect no NOTIFY for it and the stale check skips it.
//! Without rules every subscription is expected active, so a server that leaves watchers
//! pending (e.g. a privacy default of `confirm`) shows up as unexpected states, not as a run
//! whose NOTIFYs went missing.

use super::population::{Auth, NONE32, WState, Watcher};
use super::{Options, Runner};
use crate::rules::{self, Names, XcapRoot};
use crate::scenario::Scenario;
use crate::stats::RulesReport;

/// Write the rules for `watchers` (aimed at their first presentities) when the scenario asks
/// for them, and note in each watcher the presentity whose list holds it.
pub(super) fn install(
    scn: &Scenario,
    opts: &Options,
    watchers: &mut [Watcher],
) -> Result<Option<RulesReport>, String> {
    if !scn.rules.enabled {
        return Ok(None);
    }
    let given = opts.xcap.as_deref().unwrap_or(&scn.rules.xcap);
    if given.is_empty() {
        return Err("rules.enabled needs the target's XCAP root: --xcap http://ADDR".into());
    }
    let root = XcapRoot::parse(given).map_err(|e| format!("--xcap: {e}"))?;
    let names = Names {
        namespace: opts.namespace.clone(),
        domain: scn.population.domain.clone(),
    };
    let targets: Vec<u32> = watchers.iter().map(|w| w.target).collect();
    let members = rules::membership(&targets, scn.population.presentities);
    let up = rules::put_all(&root, &names, &members, scn.rules.concurrency)?;
    for (wa, &p) in watchers.iter_mut().zip(&members.listed_in) {
        wa.list_of = p;
    }
    Ok(Some(RulesReport {
        xcap_root: root.as_str().to_string(),
        documents: up.documents,
        upload_secs: up.secs,
        listed_watchers: targets.len() as u64 - members.expected_pending(),
        unlisted_watchers: members.expected_pending(),
    }))
}

/// The state word of a `Subscription-State` value (`active;expires=600` → `active`).
fn state_word(v: &[u8]) -> &[u8] {
    let end = v.iter().position(|&c| c == b';').unwrap_or(v.len());
    v[..end].trim_ascii()
}

impl Runner<'_> {
    /// Whether the rules leave watcher `w`'s subscription to its current presentity pending:
    /// with rules, unless that presentity's list holds it; never without.
    pub(super) fn expects_pending(&self, w: u32) -> bool {
        let wa = &self.watchers[w as usize];
        self.rules.is_some() && (wa.list_of == NONE32 || wa.list_of != wa.target)
    }

    /// Keep what a NOTIFY of watcher `w` says of the subscription. Returns whether the NOTIFY
    /// may carry state (not a pending one).
    pub(super) fn on_sub_state(&mut self, w: u32, value: &[u8], has_body: bool) -> bool {
        let word = state_word(value);
        let s = &mut self.stats.subscriptions;
        let wa = &mut self.watchers[w as usize];
        if word.eq_ignore_ascii_case(b"active") {
            s.notify_active += 1;
            wa.auth = Auth::Active;
        } else if word.eq_ignore_ascii_case(b"pending") {
            s.notify_pending += 1;
            wa.auth = Auth::Pending;
            if has_body {
                // RFC 5025 §3.2.1 confirm: nothing is shown until the presentity decides
                s.pending_with_body += 1;
            }
        } else if word.eq_ignore_ascii_case(b"terminated") {
            s.notify_terminated += 1;
        }
        self.recount(w);
        self.watchers[w as usize].auth != Auth::Pending
    }

    /// Count watcher `w` among its presentity's watchers (or its list among its members' lists)
    /// exactly when it has an established, not pending, subscription: those are the NOTIFYs
    /// (member updates) a modify expects.
    pub(super) fn recount(&mut self, w: u32) {
        let wa = &mut self.watchers[w as usize];
        let want = wa.to_tag.len > 0 && wa.state == WState::Active && wa.auth != Auth::Pending;
        if want != wa.counted {
            wa.counted = want;
            self.watching(w, want);
        }
    }

    /// How the established subscriptions stand now (taken with the stale count, last at the
    /// start of the teardown): active, pending, no state said yet, and those whose state is
    /// not the one the rules decide.
    pub(super) fn count_subscriptions(&mut self) {
        let (mut active, mut pending, mut unknown, mut unexpected, mut expected_pending) =
            (0, 0, 0, 0, 0);
        for w in 0..self.watchers.len() as u32 {
            let wa = &self.watchers[w as usize];
            if wa.state != WState::Active || wa.to_tag.len == 0 {
                continue;
            }
            let want_pending = self.expects_pending(w);
            expected_pending += want_pending as u64;
            match wa.auth {
                Auth::Unknown => unknown += 1,
                Auth::Active => active += 1,
                Auth::Pending => pending += 1,
            }
            if wa.auth != Auth::Unknown && (wa.auth == Auth::Pending) != want_pending {
                unexpected += 1;
            }
        }
        let s = &mut self.stats.subscriptions;
        s.active = active;
        s.pending = pending;
        s.no_state = unknown;
        s.unexpected_state = unexpected;
        s.expected_pending = expected_pending;
    }
}

#[cfg(test)]
mod tests {
    use super::state_word;

    #[test]
    fn state_word_drops_parameters_and_blanks() {
        assert_eq!(state_word(b"active;expires=600"), b"active");
        assert_eq!(state_word(b" pending ;expires=10"), b"pending");
        assert_eq!(state_word(b"terminated"), b"terminated");
        assert_eq!(state_word(b""), b"");
    }
}
