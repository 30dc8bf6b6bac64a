//! What each operation expects: the final response that ends a transaction (success moves the
//! entity on, failure or timeout ends it), and the server's NOTIFYs, matched to their watcher
//! by Call-ID and checked for the state token that measures PUBLISH → NOTIFY (list NOTIFYs
//! are read part by part in `lists`).

use std::cmp::Reverse;
use std::net::SocketAddr;

use super::population::WState;
use super::schedule::Phase;
use super::transactions::TimerKind;
use super::{NONE, Runner};
use crate::msgs::read_token;
use crate::sipmsg::{self, Start};
use crate::stats::OpKind;

impl Runner<'_> {
    /// Handle one message from the server, received at `now`.
    pub(super) fn on_datagram(&mut self, sock: usize, bytes: &[u8], from: SocketAddr, now: u64) {
        self.stats.msgs_received += 1;
        self.last_rx = self.last_rx.max(now);
        let m = match sipmsg::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                if bytes.iter().all(|&c| c == b'\r' || c == b'\n') {
                    return; // keep-alive
                }
                self.stats.parse_errors += 1;
                if self.stats.first_parse_error.is_none() {
                    self.stats.first_parse_error = Some(format!(
                        "{e:?} ({}): {:?}",
                        sipmsg::describe_unparsed(bytes),
                        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                    ));
                }
                return;
            }
        };
        match m.start {
            Start::Response(code) => self.on_response(&m, code, now),
            Start::Request(method) => {
                if method == b"NOTIFY" {
                    self.on_notify(sock, &m, from, now);
                } else if method != b"ACK" {
                    // RFC 3261 §8.2.1: we do not serve other methods.
                    let q = &mut self.socks[sock].out;
                    q.push_with(from, |out| {
                        sipmsg::write_response(
                            out,
                            &m,
                            b"405 Method Not Allowed",
                            Some(b"lg"),
                            b"Allow: NOTIFY\r\n",
                        )
                    });
                }
            }
        }
    }

    fn on_response(&mut self, m: &sipmsg::Msg<'_>, code: u16, now: u64) {
        let Some((slot, generation)) = self.tpl.parse_branch(m.branch) else {
            self.stats.stray_responses += 1;
            return;
        };
        let Some(t) = self.txns.get_mut(slot as usize) else {
            self.stats.stray_responses += 1;
            return;
        };
        if !t.live || t.generation != generation {
            self.stats.stray_responses += 1;
            return;
        }
        if code < 200 {
            // RFC 3261 §17.1.2.2: after a provisional response retransmit at T2.
            t.interval = self.t2;
            return;
        }
        let (op, entity, sched, seq, asked) = (t.op, t.entity, t.sched, t.seq, t.expires);
        let retried = t.auth_retry;
        self.finish_txn(slot);
        if (code == 401 || code == 407) && self.auth.is_some() {
            // RFC 3261 §22.2: answer the challenge with a new transaction of the same
            // operation, once; its latency still runs from the first send's scheduled time
            if self.take_challenge(op, entity, m, code) && !retried {
                self.stats.auth.retries += 1;
                if op.method() == "PUBLISH" {
                    self.publish_txn(entity, op, sched, seq, asked, now, true);
                } else {
                    self.subscribe_txn(entity, op, sched, asked, now, true);
                }
                return;
            }
            self.stats.auth.refused += 1;
        }
        *self.stats.status.entry(code).or_insert(0) += 1;
        let o = self.stats.op(op);
        let _ = o.hist.record(((now.saturating_sub(sched)) / 1000).max(1));
        if (200..300).contains(&code) {
            o.ok += 1;
            o.last_ok = o.last_ok.max(now);
            self.on_success(op, entity, m, seq, asked, now);
        } else {
            o.failed += 1;
            if code == 412 && op.method() == "PUBLISH" {
                // RFC 3903 §6: the entity tag is unknown; start over with an initial PUBLISH.
                self.pres[entity as usize].etag.clear();
            }
            self.on_failure(op, entity, now);
        }
    }

    /// A final 2xx for a request of `op` (the Expires it asked for in `asked`).
    fn on_success(
        &mut self,
        op: OpKind,
        entity: u32,
        m: &sipmsg::Msg<'_>,
        seq: u32,
        asked: u32,
        now: u64,
    ) {
        let granted = m.expires.unwrap_or(asked);
        match op {
            OpKind::PublishInitial
            | OpKind::PublishModify
            | OpKind::PublishRefresh
            | OpKind::PublishRemove => self.published(op, entity, m, seq, granted, now),
            OpKind::Subscribe | OpKind::SubscribeRefresh => {
                self.subscribed(op, entity, m, granted, now)
            }
            OpKind::Unsubscribe => self.after_unsubscribe(entity, now),
        }
    }

    /// A PUBLISH got its 2xx: keep the entity tag, schedule the refresh, send a waiting modify.
    fn published(
        &mut self,
        op: OpKind,
        entity: u32,
        m: &sipmsg::Msg<'_>,
        seq: u32,
        granted: u32,
        now: u64,
    ) {
        let frac = self.scn.publish.refresh_fraction;
        let pr = &mut self.pres[entity as usize];
        pr.inflight = false;
        if op == OpKind::PublishRemove || granted == 0 {
            pr.etag.clear();
        } else {
            if !pr.etag.set(m.etag) {
                pr.etag.clear();
            }
            pr.timer_gen = pr.timer_gen.wrapping_add(1);
            if pr.etag.len > 0 {
                let at = now + (granted as f64 * frac * 1e9) as u64;
                self.heap
                    .push(Reverse((at, TimerKind::PubRefresh, entity, pr.timer_gen)));
            }
        }
        if seq > pr.acked_seq {
            pr.acked_seq = seq;
            if op == OpKind::PublishModify {
                self.stats.notify.expected += pr.watchers as u64;
                self.stats.lists.expected += pr.list_subs as u64;
            }
        }
        self.after_publish(entity, now);
    }

    /// A SUBSCRIBE got its 2xx: the dialog starts (or goes on) and its refresh is scheduled.
    fn subscribed(&mut self, op: OpKind, entity: u32, m: &sipmsg::Msg<'_>, granted: u32, now: u64) {
        let frac = self.scn.subscribe.refresh_fraction;
        let wa = &mut self.watchers[entity as usize];
        wa.inflight = false;
        if op == OpKind::Subscribe {
            if wa.to_tag.len == 0 && !m.to_tag.is_empty() {
                wa.to_tag.set(m.to_tag);
            }
            if wa.state == WState::Subscribing {
                wa.state = WState::Active;
            }
            if wa.to_tag.len == 0 && wa.sub_sched != NONE {
                // No dialog (e.g. the stateless responder): no NOTIFY will come.
                wa.sub_sched = NONE;
                self.awaiting_first -= 1;
            }
            self.recount(entity);
        }
        let wa = &mut self.watchers[entity as usize];
        if wa.state == WState::Active && granted > 0 {
            wa.timer_gen = wa.timer_gen.wrapping_add(1);
            let at = now + (granted as f64 * frac * 1e9) as u64;
            self.heap
                .push(Reverse((at, TimerKind::SubRefresh, entity, wa.timer_gen)));
        }
    }

    /// A request of `op` for `entity` failed or timed out.
    pub(super) fn on_failure(&mut self, op: OpKind, entity: u32, now: u64) {
        match op {
            OpKind::PublishInitial
            | OpKind::PublishModify
            | OpKind::PublishRefresh
            | OpKind::PublishRemove => {
                self.pres[entity as usize].inflight = false;
                self.after_publish(entity, now);
            }
            OpKind::Subscribe | OpKind::SubscribeRefresh => {
                let wa = &mut self.watchers[entity as usize];
                wa.inflight = false;
                if wa.sub_sched != NONE {
                    wa.sub_sched = NONE;
                    self.awaiting_first -= 1;
                }
                wa.state = WState::Ended;
                self.uncount(entity);
            }
            OpKind::Unsubscribe => self.after_unsubscribe(entity, now),
        }
    }

    fn uncount(&mut self, w: u32) {
        let wa = &mut self.watchers[w as usize];
        if wa.counted {
            wa.counted = false;
            self.watching(w, false);
        }
    }

    fn after_publish(&mut self, p: u32, now: u64) {
        let pr = &mut self.pres[p as usize];
        if pr.pending_modify != NONE && !pr.inflight {
            let sched = pr.pending_modify;
            pr.pending_modify = NONE;
            self.send_publish(p, OpKind::PublishModify, sched, now);
        }
    }

    fn after_unsubscribe(&mut self, w: u32, now: u64) {
        self.uncount(w);
        let wa = &mut self.watchers[w as usize];
        wa.inflight = false;
        wa.state = WState::Ended;
        if wa.sub_sched != NONE {
            wa.sub_sched = NONE;
            self.awaiting_first -= 1;
        }
        if std::mem::take(&mut wa.resubscribe) && self.phase == Phase::Steady {
            // a list watcher subscribes to its own list again
            wa.target = if self.scn.population.zipf_exponent == 0.0 || self.lists.is_some() {
                wa.target
            } else {
                self.zipf.sample(&mut self.rng)
            };
            self.send_subscribe(w, OpKind::Subscribe, now, now);
        }
    }

    fn on_notify(&mut self, sock: usize, m: &sipmsg::Msg<'_>, from: SocketAddr, now: u64) {
        let known = self.tpl.parse_call_id(m.call_id).filter(|&(w, g)| {
            (w as usize) < self.watchers.len() && {
                let cur = self.watchers[w as usize].generation;
                g == cur || g.wrapping_add(1) == cur
            }
        });
        let Some((w, g)) = known else {
            // RFC 6665 §4.1.3: a NOTIFY for no subscription of ours is answered 481.
            self.stats.notify.unknown_dialog += 1;
            self.socks[sock].out.push_with(from, |out| {
                sipmsg::write_response(out, m, b"481 Subscription Does Not Exist", None, b"")
            });
            return;
        };
        self.socks[sock].out.push_with(from, |out| {
            sipmsg::write_response(out, m, b"200 OK", None, b"")
        });
        let wa = &mut self.watchers[w as usize];
        if g != wa.generation {
            // the final NOTIFY of the dialog a churn unsubscribe ended
            return;
        }
        if m.cseq <= wa.last_notify_cseq {
            self.stats.notify.retransmitted += 1;
            return;
        }
        wa.last_notify_cseq = m.cseq;
        self.stats.notify.received += 1;
        if self.phase == Phase::Steady {
            self.stats.notify.steady += 1;
        }
        if wa.to_tag.len == 0 && !m.from_tag.is_empty() {
            // NOTIFY before the 200 (RFC 6665 §4.1.2.4): the dialog starts here.
            wa.to_tag.set(m.from_tag);
        }
        let first = wa.sub_sched != NONE;
        if first {
            // pending subscriptions too: their first NOTIFY is as due (RFC 6665 §4.2.1.2)
            let _ = self
                .stats
                .notify
                .sub_to_first
                .record((now.saturating_sub(wa.sub_sched) / 1000).max(1));
            wa.sub_sched = NONE;
            self.awaiting_first -= 1;
        }
        // a pending NOTIFY's body, if any, is not state this watcher may have
        let shows_state = self.on_sub_state(w, m.sub_state, !m.body.is_empty());
        if self.lists.is_some() {
            self.on_list_notify(w, m, first, now);
        }
        let wa = &mut self.watchers[w as usize];
        if shows_state
            && self.lists.is_none()
            && let Some((seq, t)) = read_token(m.body)
            && seq > wa.last_seq
        {
            wa.last_seq = seq;
            if !first {
                self.stats.notify.new_state += 1;
                let _ = self
                    .stats
                    .notify
                    .pub_to_notify
                    .record((now.saturating_sub(t) / 1000).max(1));
            }
        }
        if m.sub_state.len() >= 10 && m.sub_state[..10].eq_ignore_ascii_case(b"terminated") {
            if wa.state != WState::Unsubscribing && wa.state != WState::Ended {
                self.stats.notify.terminated_by_server += 1;
            }
            if wa.state != WState::Unsubscribing {
                wa.state = WState::Ended;
            }
            self.uncount(w);
        }
    }
}
