//! What each operation sends: a PUBLISH (initial, modify, refresh, remove) for a presentity
//! or a SUBSCRIBE (initial, refresh, unsubscribe) for a watcher (to a presentity, or to its own
//! list with `[lists]`), written from the templates into a new transaction, with the user's
//! credentials once it has been challenged (`[auth]`). A presentity has one PUBLISH open at a
//! time (RFC 3903 §4.4).

use super::population::{Auth, WState};
use super::{NONE, Runner};
use crate::msgs::Watched;
use crate::stats::OpKind;

impl Runner<'_> {
    /// The socket an entity always uses.
    fn sock_of(&self, entity: u32) -> u16 {
        (entity % self.socks.len() as u32) as u16
    }

    /// Send a PUBLISH for presentity `p`: initial/modify with a new token, refresh or remove.
    pub(super) fn send_publish(&mut self, p: u32, mut op: OpKind, sched: u64, now: u64) {
        let pr = &mut self.pres[p as usize];
        if pr.etag.len == 0 {
            if matches!(op, OpKind::PublishRefresh | OpKind::PublishRemove) {
                return;
            }
            op = OpKind::PublishInitial;
        }
        let expires = if op == OpKind::PublishRemove {
            0
        } else {
            self.scn.publish.expires
        };
        let seq = if matches!(op, OpKind::PublishInitial | OpKind::PublishModify) {
            pr.seq += 1;
            pr.seq
        } else {
            0
        };
        self.publish_txn(p, op, sched, seq, expires, now, false);
    }

    /// Write and start the PUBLISH transaction of `op` for `p`, carrying token `seq` (0:
    /// none) with the scheduled time `sched`; `retry`: the same operation again after a
    /// challenge (it then carries credentials and is not counted as another request).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn publish_txn(
        &mut self,
        p: u32,
        op: OpKind,
        sched: u64,
        seq: u32,
        expires: u32,
        now: u64,
        retry: bool,
    ) {
        let slot = self.alloc_txn();
        let sock = self.sock_of(p);
        let pr = &mut self.pres[p as usize];
        pr.cseq += 1;
        pr.inflight = true;
        let (etag, cseq) = (pr.etag, pr.cseq);
        let token = (seq > 0).then_some((seq, sched));
        let creds = self.write_credentials(op, p, Watched::Presentity(p));
        let extra: &[u8] = match &self.auth {
            Some(a) if creds => &a.line,
            _ => &[],
        };
        let t = &mut self.txns[slot as usize];
        t.op = op;
        t.entity = p;
        t.sock = sock;
        t.sched = sched;
        t.seq = seq;
        t.expires = expires;
        t.auth_retry = retry;
        t.msg.clear();
        self.tpl.publish(
            &mut t.msg,
            &mut self.body,
            sock as usize,
            (slot, t.generation),
            p,
            cseq,
            expires,
            etag.get(),
            token,
            extra,
        );
        self.start_txn(slot, now);
    }

    /// Send a SUBSCRIBE from watcher `w`: initial (new dialog), refresh or unsubscribe.
    pub(super) fn send_subscribe(&mut self, w: u32, op: OpKind, sched: u64, now: u64) {
        let wa = &mut self.watchers[w as usize];
        let expires = if op == OpKind::Unsubscribe {
            0
        } else {
            self.scn.subscribe.expires
        };
        if op == OpKind::Subscribe {
            wa.generation = wa.generation.wrapping_add(1);
            wa.cseq = 0;
            wa.to_tag.clear();
            wa.state = WState::Subscribing;
            wa.sub_sched = sched;
            wa.last_notify_cseq = 0;
            wa.last_seq = 0;
            wa.auth = Auth::Unknown;
            self.awaiting_first += 1;
            self.list_restarts(w);
        } else if op == OpKind::Unsubscribe {
            wa.state = WState::Unsubscribing;
        }
        self.subscribe_txn(w, op, sched, expires, now, false);
    }

    /// Write and start the SUBSCRIBE transaction of `op` for `w` in its current dialog
    /// generation; `retry` as for [`Runner::publish_txn`] (an initial SUBSCRIBE sent again
    /// keeps its Call-ID and From tag, RFC 3261 §22.2).
    pub(super) fn subscribe_txn(
        &mut self,
        w: u32,
        op: OpKind,
        sched: u64,
        expires: u32,
        now: u64,
        retry: bool,
    ) {
        let slot = self.alloc_txn();
        let sock = self.sock_of(w);
        let what = if self.lists.is_some() {
            Watched::OwnList
        } else {
            Watched::Presentity(self.watchers[w as usize].target)
        };
        let wa = &mut self.watchers[w as usize];
        wa.cseq += 1;
        wa.inflight = true;
        let (generation, cseq, to_tag) = (wa.generation, wa.cseq, wa.to_tag);
        let creds = self.write_credentials(op, w, what);
        let extra: &[u8] = match &self.auth {
            Some(a) if creds => &a.line,
            _ => &[],
        };
        let t = &mut self.txns[slot as usize];
        t.op = op;
        t.entity = w;
        t.sock = sock;
        t.sched = sched;
        t.seq = 0;
        t.expires = expires;
        t.auth_retry = retry;
        t.msg.clear();
        self.tpl.subscribe(
            &mut t.msg,
            sock as usize,
            (slot, t.generation),
            w,
            generation,
            what,
            cseq,
            expires,
            to_tag.get(),
            extra,
        );
        self.start_txn(slot, now);
    }

    /// The presentity a modify goes to: in turn, or drawn by popularity.
    pub(super) fn pick_presentity(&mut self) -> u32 {
        if self.scn.population.zipf_exponent == 0.0 {
            let p = self.rr_modify % self.pres.len() as u32;
            self.rr_modify = self.rr_modify.wrapping_add(1);
            p
        } else {
            self.zipf.sample(&mut self.rng)
        }
    }

    /// A modify for `p` scheduled at `sched`: now, or after the open PUBLISH.
    pub(super) fn modify(&mut self, p: u32, sched: u64, now: u64) {
        let pr = &mut self.pres[p as usize];
        if pr.inflight {
            if pr.pending_modify == NONE {
                pr.pending_modify = sched;
            } else {
                self.stats.publish_coalesced += 1;
            }
            return;
        }
        self.send_publish(p, OpKind::PublishModify, sched, now);
    }
}
