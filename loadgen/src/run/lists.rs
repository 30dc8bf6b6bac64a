//! The list subscriptions of a `[lists]` run (RFC 4662): the rls-services documents written
//! before the load (see `crate::lists`), each list NOTIFY read part by part, and the member
//! updates counted against those expected.
//!
//! Each list keeps, per member, the token sequence of the last part it got. A list's first
//! (full-state) NOTIFY sets them; afterwards a part whose token is ahead delivers the member
//! updates in between (the server merges the changes that come while a NOTIFY is unanswered,
//! so one part may cover several modifies) and gives one PUBLISH → list NOTIFY latency, from
//! its token's send time. Expected updates are counted as a modify is acknowledged: one per
//! established list holding its presentity, as the fan-out expects one NOTIFY per watcher; so
//! nothing was lost when delivered = expected and no member is stale at the end.

use super::population::{Auth, WState};
use super::schedule::Phase;
use super::{NONE, Options, Runner};
use crate::lists::{self, Lists};
use crate::rules::{Names, XcapRoot};
use crate::scenario::Scenario;
use crate::sipmsg::Msg;
use crate::stats::ListsReport;

/// The lists of a run and what each has seen.
pub(super) struct ListRun {
    pub set: Lists,
    /// Per list member (flat, as `set.members`): the last token sequence its list got.
    pub last_seq: Vec<u32>,
    /// What was written, for the report.
    pub written: ListsReport,
}

/// Draw the lists and write them when the scenario asks for them.
pub(super) fn install(
    scn: &Scenario,
    opts: &Options,
    zipf: &crate::popularity::Zipf,
) -> Result<Option<ListRun>, String> {
    if !scn.lists.enabled {
        return Ok(None);
    }
    let given = opts.xcap.as_deref().unwrap_or(&scn.lists.xcap);
    if given.is_empty() {
        return Err("lists.enabled needs the target's XCAP root: --xcap http://ADDR".into());
    }
    let root = XcapRoot::parse(given).map_err(|e| format!("--xcap: {e}"))?;
    let pop = &scn.population;
    let names = Names {
        namespace: opts.namespace.clone(),
        domain: pop.domain.clone(),
    };
    let set = Lists::draw(
        pop.watchers,
        pop.presentities,
        scn.lists.members,
        zipf,
        pop.zipf_exponent == 0.0,
        pop.seed,
    );
    let up = lists::put_all(&root, &names, &set, scn.lists.concurrency)?;
    let on = set.memberships(pop.presentities);
    let written = ListsReport {
        xcap_root: root.as_str().to_string(),
        documents: up.documents,
        upload_secs: up.secs,
        lists: pop.watchers as u64,
        members_per_list: set.n,
        memberships_min: on.iter().copied().min().unwrap_or(0),
        memberships_mean: set.members.len() as f64 / pop.presentities as f64,
        memberships_max: on.iter().copied().max().unwrap_or(0),
        ..ListsReport::default()
    };
    Ok(Some(ListRun {
        last_seq: vec![0; set.members.len()],
        set,
        written,
    }))
}

impl Runner<'_> {
    /// Watcher `w`'s subscription starts (`on`) or stops counting among the watchers of what
    /// it watches: its presentity, or every member of its list.
    pub(super) fn watching(&mut self, w: u32, on: bool) {
        let bump = |c: &mut u32| {
            if on { *c += 1 } else { *c -= 1 }
        };
        match &self.lists {
            Some(l) => {
                for &m in l.set.of(w) {
                    bump(&mut self.pres[m as usize].list_subs);
                }
            }
            None => bump(&mut self.pres[self.watchers[w as usize].target as usize].watchers),
        }
    }

    /// A new dialog of watcher `w`: its list has seen nothing yet.
    pub(super) fn list_restarts(&mut self, w: u32) {
        if let Some(l) = &mut self.lists {
            let r = l.set.range(w);
            l.last_seq[r].fill(0);
        }
    }

    /// A list NOTIFY of watcher `w` received at `now` (`first`: the dialog's first).
    pub(super) fn on_list_notify(&mut self, w: u32, m: &Msg<'_>, first: bool, now: u64) {
        let Some(l) = self.lists.as_mut() else {
            return;
        };
        let st = &mut self.stats.lists;
        st.notifies += 1;
        if m.body.is_empty() {
            st.no_body += 1;
            return;
        }
        let range = l.set.range(w);
        let members = &l.set.members[range.clone()];
        let last = &mut l.last_seq[range];
        let tpl = &self.tpl;
        let (mut parts, mut known) = (0u64, 0u64);
        let read = lists::read(m.body, m.content_type, |entity, token| {
            parts += 1;
            let Some(j) = tpl
                .parse_presentity(entity)
                .and_then(|p| members.binary_search(&p).ok())
            else {
                st.foreign_parts += 1;
                return;
            };
            known += 1;
            let Some((seq, t)) = token else {
                st.parts_without_token += 1;
                return;
            };
            if seq > last[j] {
                if !first {
                    st.new_parts += 1;
                    // a member never seen (absent from the first NOTIFY) covers one update
                    st.delivered += if last[j] == 0 {
                        1
                    } else {
                        (seq - last[j]) as u64
                    };
                    let _ = st
                        .pub_to_notify
                        .record((now.saturating_sub(t) / 1000).max(1));
                }
                last[j] = seq;
            }
        });
        st.parts += parts;
        if self.phase == Phase::Steady {
            st.steady_notifies += 1;
            st.steady_parts += parts;
        }
        let Ok(b) = read else {
            st.malformed += 1;
            return;
        };
        if first {
            st.missing_in_first += (members.len() as u64).saturating_sub(known);
        }
        let ending =
            m.sub_state.len() >= 10 && m.sub_state[..10].eq_ignore_ascii_case(b"terminated");
        if ending {
            st.terminal += 1;
        } else if b.full {
            st.full_state += 1;
        } else {
            st.partial += 1;
        }
        st.instances_active += b.active as u64;
        st.instances_pending += b.pending as u64;
        st.instances_terminated += b.terminated as u64;
    }

    /// Members whose list's last part is not their last acknowledged state, over the lists
    /// with an established, active subscription that had its first NOTIFY.
    pub(super) fn count_stale_lists(&mut self) {
        let Some(l) = &self.lists else {
            return;
        };
        let (mut members, mut lists) = (0, 0);
        for (w, wa) in self.watchers.iter().enumerate() {
            if wa.state != WState::Active
                || wa.to_tag.len == 0
                || wa.sub_sched != NONE
                || wa.auth == Auth::Pending
            {
                continue;
            }
            let r = l.set.range(w as u32);
            let stale = l.set.members[r.clone()]
                .iter()
                .zip(&l.last_seq[r])
                .filter(|&(&p, &seen)| seen < self.pres[p as usize].acked_seq)
                .count() as u64;
            members += stale;
            lists += (stale > 0) as u64;
        }
        self.stats.lists.stale_members = members;
        self.stats.lists.stale_lists = lists;
    }
}
