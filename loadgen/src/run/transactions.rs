//! Client transactions (RFC 3261 §17.1.2): a slab of open requests reused by slot and
//! generation, and the deadline heap that drives Timers E and F and the refreshes.

use std::cmp::Reverse;

use super::population::WState;
use super::{NONE, Runner};
use crate::stats::OpKind;

/// One open request: what it is, when it was due, and its bytes for retransmission.
pub(super) struct Txn {
    pub generation: u32,
    pub live: bool,
    pub op: OpKind,
    pub entity: u32,
    pub sock: u16,
    pub sched: u64,
    pub interval: u64,
    pub deadline_f: u64,
    pub seq: u32,
    pub expires: u32,
    /// Sent again with credentials after a challenge: a challenge to it ends the operation.
    pub auth_retry: bool,
    pub msg: Vec<u8>,
}

/// What a deadline in the heap is for: a transaction's Timer E/F, or a refresh.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TimerKind {
    Txn,
    PubRefresh,
    SubRefresh,
}

impl Runner<'_> {
    /// A free transaction slot (a new one when none is free).
    pub(super) fn alloc_txn(&mut self) -> u32 {
        if let Some(i) = self.free.pop() {
            i
        } else {
            self.txns.push(Txn {
                generation: 0,
                live: false,
                op: OpKind::PublishInitial,
                entity: 0,
                sock: 0,
                sched: 0,
                interval: 0,
                deadline_f: 0,
                seq: 0,
                expires: 0,
                auth_retry: false,
                msg: Vec::with_capacity(1024),
            });
            (self.txns.len() - 1) as u32
        }
    }

    /// Record and send the request just written into `txns[slot].msg`. A retry after a
    /// challenge is the same operation: it is not counted again.
    pub(super) fn start_txn(&mut self, slot: u32, now: u64) {
        let t = &mut self.txns[slot as usize];
        t.live = true;
        t.interval = self.t1;
        t.deadline_f = now + self.timer_f;
        // RFC 3261 §17.1.2.2: Timer E retransmits over unreliable transports only.
        let first = if self.reliable {
            t.deadline_f
        } else {
            (now + self.t1).min(t.deadline_f)
        };
        let (sock, op, sched, generation) = (t.sock as usize, t.op, t.sched, t.generation);
        let retry = t.auth_retry;
        self.socks[sock].out.push(self.target, &t.msg);
        self.heap
            .push(Reverse((first, TimerKind::Txn, slot, generation)));
        self.inflight += 1;
        if retry {
            return;
        }
        self.requests_started += 1;
        let o = self.stats.op(op);
        o.sent += 1;
        o.first_sched = o.first_sched.min(sched);
    }

    /// Close the transaction in `slot`: its late answers and timers no longer match it.
    pub(super) fn finish_txn(&mut self, slot: u32) {
        let t = &mut self.txns[slot as usize];
        t.live = false;
        t.generation = t.generation.wrapping_add(1);
        self.free.push(slot);
        self.inflight -= 1;
    }

    /// Fire every deadline due by `now`. Returns the next one.
    pub(super) fn fire_timers(&mut self, now: u64) -> u64 {
        while let Some(&Reverse((at, kind, key, generation))) = self.heap.peek() {
            if at > now {
                return at;
            }
            self.heap.pop();
            match kind {
                TimerKind::Txn => {
                    let t = &mut self.txns[key as usize];
                    if !t.live || t.generation != generation {
                        continue;
                    }
                    if now >= t.deadline_f {
                        // RFC 3261 §17.1.2.2: Timer F fires, the transaction times out.
                        let (op, entity) = (t.op, t.entity);
                        self.stats.op(op).timeouts += 1;
                        self.finish_txn(key);
                        self.on_failure(op, entity, now);
                    } else {
                        // Timer E: retransmit, doubling up to T2.
                        t.interval = (t.interval * 2).min(self.t2);
                        let next = (now + t.interval).min(t.deadline_f);
                        let (sock, op) = (t.sock as usize, t.op);
                        self.socks[sock].out.push(self.target, &t.msg);
                        self.heap
                            .push(Reverse((next, TimerKind::Txn, key, generation)));
                        self.stats.op(op).retrans += 1;
                    }
                }
                TimerKind::PubRefresh => {
                    let pr = &self.pres[key as usize];
                    if pr.timer_gen == generation && !pr.inflight && pr.etag.len > 0 {
                        self.send_publish(key, OpKind::PublishRefresh, now, now);
                    }
                }
                TimerKind::SubRefresh => {
                    let wa = &self.watchers[key as usize];
                    if wa.timer_gen == generation && !wa.inflight && wa.state == WState::Active {
                        self.send_subscribe(key, OpKind::SubscribeRefresh, now, now);
                    }
                }
            }
        }
        NONE
    }

    /// At the end of the run: whatever is still open has not been answered in time.
    pub(super) fn count_unanswered(&mut self) {
        for t in &self.txns {
            if t.live {
                self.stats.ops[t.op as usize].timeouts += 1;
            }
        }
    }
}
