//! The schedule of a run: its phases (publish, subscribe, steady, teardown, drain) and in each
//! the open-loop streams of operations, the k-th sent at `start + k / rate` whatever the
//! responses; a phase ends once its streams are sent and the answers are in, or at its limit.

use super::population::{Auth, WState};
use super::{MS, NONE, Runner};
use crate::stats::OpKind;

/// What a stream sends, one operation per entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum StreamKind {
    PublishInitial,
    Subscribe,
    Modify,
    Churn,
    Unsubscribe,
    Remove,
}

/// Operations of one kind at a fixed rate from `start`: `count` of them, `sent` so far.
pub(super) struct Stream {
    pub kind: StreamKind,
    pub rate: f64,
    pub start: u64,
    pub count: u64,
    pub sent: u64,
}

impl Stream {
    /// When the next operation is due, or NONE once all are sent.
    pub(super) fn due(&self) -> u64 {
        if self.sent >= self.count {
            NONE
        } else {
            self.start + (self.sent as f64 * 1e9 / self.rate) as u64
        }
    }
}

/// The phases of a run, in order.
#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
pub(super) enum Phase {
    Start,
    Publish,
    Subscribe,
    Steady,
    Teardown,
    Drain,
    Done,
}

impl Runner<'_> {
    /// Send the `k`-th operation of a stream of `kind`, scheduled at `sched`.
    fn fire_stream(&mut self, kind: StreamKind, k: u64, sched: u64, now: u64) {
        match kind {
            StreamKind::PublishInitial => {
                let p = k as u32;
                if !self.pres[p as usize].inflight {
                    self.send_publish(p, OpKind::PublishInitial, sched, now);
                }
            }
            StreamKind::Subscribe => {
                let w = k as u32;
                if !self.watchers[w as usize].inflight {
                    self.send_subscribe(w, OpKind::Subscribe, sched, now);
                }
            }
            StreamKind::Modify => {
                let p = self.pick_presentity();
                self.modify(p, sched, now);
            }
            StreamKind::Churn => {
                // a random watcher with an established, idle dialog (a few tries)
                for _ in 0..8 {
                    let w = self.rng.below(self.watchers.len() as u32);
                    let wa = &mut self.watchers[w as usize];
                    if wa.state == WState::Active && !wa.inflight {
                        wa.resubscribe = true;
                        self.send_subscribe(w, OpKind::Unsubscribe, sched, now);
                        break;
                    }
                }
            }
            StreamKind::Unsubscribe => {
                let w = k as u32;
                let wa = &self.watchers[w as usize];
                if matches!(wa.state, WState::Active) && !wa.inflight {
                    self.send_subscribe(w, OpKind::Unsubscribe, sched, now);
                }
            }
            StreamKind::Remove => {
                let p = k as u32;
                let pr = &mut self.pres[p as usize];
                pr.pending_modify = NONE;
                if !pr.inflight && pr.etag.len > 0 {
                    self.send_publish(p, OpKind::PublishRemove, sched, now);
                }
            }
        }
    }

    /// Send everything due by `now`. Returns the next due time.
    pub(super) fn fire_streams(&mut self, now: u64) -> u64 {
        let max_req = self.scn.run.max_requests;
        let mut next = NONE;
        for i in 0..self.streams.len() {
            loop {
                let due = self.streams[i].due();
                if due > now {
                    next = next.min(due);
                    break;
                }
                if self.requests_started >= max_req {
                    if self.cut_short.is_none() {
                        self.cut_short = Some(format!("run.max_requests = {max_req} reached"));
                    }
                    for s in &mut self.streams {
                        s.sent = s.count;
                    }
                    return NONE;
                }
                let k = self.streams[i].sent;
                self.streams[i].sent += 1;
                let kind = self.streams[i].kind;
                self.fire_stream(kind, k, due, now);
            }
        }
        next
    }

    fn streams_done(&self) -> bool {
        self.streams.iter().all(|s| s.sent >= s.count)
    }

    /// Move on when the phase is over. Returns false once the run is done.
    pub(super) fn advance(&mut self, now: u64) -> bool {
        let settle = (self.scn.run.settle_secs * 1e9) as u64;
        let drain = (self.scn.run.drain_secs * 1e9) as u64;
        if now >= (self.scn.run.max_secs * 1e9) as u64 {
            if self.cut_short.is_none() {
                self.cut_short = Some(format!("run.max_secs = {} reached", self.scn.run.max_secs));
            }
            return false;
        }
        if self.phase == Phase::Start {
            self.enter(Phase::Publish, now);
        }
        loop {
            if self.phase == Phase::Done {
                return false;
            }
            if self.phase == Phase::Steady && now < self.phase_started + self.steady_ns() {
                return true;
            }
            if !self.streams_done() {
                return true;
            }
            if self.sends_done_at == NONE {
                self.sends_done_at = now;
            }
            // A phase that had nothing to send moves on at once (except the final drain).
            if !(self.phase_empty && self.phase != Phase::Drain) {
                let mut quiet = self.inflight == 0
                    && self.awaiting_first == 0
                    && now.saturating_sub(self.last_rx) >= 100 * MS
                    && self.socks.iter().all(|s| s.out.pending() == 0);
                // After modifies, also wait (at most the settle time) until every watcher
                // (every list member) has the last acknowledged state; checked every 50 ms
                // (O(watchers), O(watchers × members) with lists).
                if quiet && self.phase == Phase::Steady && !self.watchers.is_empty() {
                    if now >= self.next_stale_check {
                        self.next_stale_check = now + 50 * MS;
                        self.count_stale();
                        quiet =
                            self.stats.stale_watchers == 0 && self.stats.lists.stale_members == 0;
                    } else {
                        quiet = false;
                    }
                }
                let limit = if self.phase == Phase::Drain {
                    drain
                } else {
                    settle
                };
                if !quiet && now.saturating_sub(self.sends_done_at) < limit {
                    return true;
                }
            }
            let next = match self.phase {
                Phase::Start | Phase::Publish => Phase::Subscribe,
                Phase::Subscribe => Phase::Steady,
                Phase::Steady => Phase::Teardown,
                Phase::Teardown => Phase::Drain,
                Phase::Drain | Phase::Done => Phase::Done,
            };
            if self.phase == Phase::Steady && !self.phase_empty {
                self.steady_span = Some((self.phase_started, self.last_rx.max(self.phase_started)));
            }
            self.enter(next, now);
        }
    }

    fn steady_ns(&self) -> u64 {
        (self.scn.run.duration_secs * 1e9) as u64
    }

    fn enter(&mut self, phase: Phase, now: u64) {
        if phase == Phase::Teardown {
            self.count_stale();
        }
        self.phase = phase;
        self.phase_started = now;
        self.sends_done_at = NONE;
        self.streams.clear();
        let s = self.scn;
        let (p, w) = (self.pres.len() as u64, self.watchers.len() as u64);
        let mut add = |kind, rate: f64, count: u64| {
            if rate > 0.0 && count > 0 {
                self.streams.push(Stream {
                    kind,
                    rate,
                    start: now,
                    count,
                    sent: 0,
                });
            }
        };
        let secs = s.run.duration_secs;
        match phase {
            Phase::Publish if s.publish.initial => {
                add(StreamKind::PublishInitial, s.publish.rate, p)
            }
            Phase::Subscribe => add(StreamKind::Subscribe, s.subscribe.rate, w),
            Phase::Steady if secs > 0.0 => {
                add(
                    StreamKind::Modify,
                    s.publish.modify_rate,
                    (s.publish.modify_rate * secs).round() as u64,
                );
                if w > 0 {
                    add(
                        StreamKind::Churn,
                        s.subscribe.churn_rate,
                        (s.subscribe.churn_rate * secs).round() as u64,
                    );
                }
            }
            Phase::Teardown => {
                if s.subscribe.unsubscribe_at_end {
                    add(StreamKind::Unsubscribe, s.subscribe.rate, w);
                }
                if s.publish.remove_at_end {
                    add(StreamKind::Remove, s.publish.rate, p);
                }
            }
            _ => {}
        }
        self.phase_empty = self.streams.is_empty() && !(phase == Phase::Steady && secs > 0.0);
    }

    /// Watchers whose last NOTIFY does not carry the last acknowledged state (pending ones
    /// are sent none), list members likewise, and how the subscriptions stand.
    pub(super) fn count_stale(&mut self) {
        let mut stale = 0;
        let mut missing = 0;
        for wa in &self.watchers {
            if wa.state == WState::Active && wa.to_tag.len > 0 {
                if wa.sub_sched != NONE {
                    missing += 1;
                } else if wa.auth != Auth::Pending
                    && self.lists.is_none()
                    && wa.last_seq < self.pres[wa.target as usize].acked_seq
                {
                    stale += 1;
                }
            }
        }
        self.stats.stale_watchers = stale;
        self.stats.missing_first_notify = missing;
        self.count_stale_lists();
        self.count_subscriptions();
    }

    /// At the end of the run: count stale watchers unless the teardown already did.
    pub(super) fn final_stale_count(&mut self) {
        if self.phase < Phase::Teardown {
            self.count_stale();
        }
    }
}
