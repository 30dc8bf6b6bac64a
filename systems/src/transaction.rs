//! RFC 3261 §17 non-INVITE transactions, both sides.
//!
//! Server side (§17.2.2): a request opens a transaction keyed as §17.2.3 says; its final response
//! is kept so that a retransmitted request gets the same bytes back without being processed
//! again, until Timer J (64·T1 on UDP, 0 on TCP) forgets it.
//!
//! Client side (§17.1.2): a request we send (NOTIFY) is retransmitted on UDP at Timer E (T1,
//! doubling to T2) until a final response or Timer F (64·T1); the outcome is reported to the
//! owner through [`ClientOutcomes`].

use std::collections::HashMap;

use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemParam;
use bytes::Bytes;

use crate::config::EngineConfig;
use crate::io::Outbox;
use crate::net::{Dest, Outbound};
use crate::sip::{Method, Request, Response};
use crate::stats::Stats;
use crate::time::{Clock, Time};
use crate::timers::{DueTimers, TimerKind, Timers};

/// Identifies a server transaction while it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxId(pub u64);

/// §17.2.3 matching key. With a magic-cookie branch: branch, sent-by and method; otherwise the
/// RFC 2543 fields folded into one string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxKey {
    branch: Box<str>,
    sent_by: Box<str>,
    method: MethodKey,
}

/// `rsip::Method` is not `Hash`; this is its discriminant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct MethodKey(u8);

fn method_key(m: Method) -> MethodKey {
    MethodKey(Method::all().iter().position(|x| *x == m).unwrap_or(255) as u8)
}

impl TxKey {
    /// The key of a request's server transaction (CANCEL matches with `method` = the
    /// cancelled request's method).
    pub fn of(req: &Request, method: Method) -> TxKey {
        let via = &req.via;
        let sent_by = match via.port {
            Some(p) => format!("{}:{}", via.host.to_ascii_lowercase(), p),
            None => via.host.to_ascii_lowercase(),
        };
        if via.has_cookie() {
            TxKey {
                branch: via.branch.as_str().into(),
                sent_by: sent_by.into(),
                method: method_key(method),
            }
        } else {
            // RFC 2543 peers: Request-URI, To tag, From tag, Call-ID, CSeq number and top Via.
            let legacy = format!(
                "{}|{}|{}|{}|{}|{}",
                req.uri,
                req.to_tag.as_deref().unwrap_or(""),
                req.from_tag.as_deref().unwrap_or(""),
                req.call_id,
                req.cseq,
                via.branch
            );
            TxKey {
                branch: legacy.into(),
                sent_by: sent_by.into(),
                method: method_key(method),
            }
        }
    }
}

enum ServerTxState {
    /// The request is being processed; retransmissions are absorbed silently.
    Trying,
    /// The final response, resent on every retransmission until Timer J.
    Completed(Outbound),
}

struct ServerTx {
    key: TxKey,
    state: ServerTxState,
    reliable: bool,
}

/// What the transaction layer says about an incoming request.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// A new transaction: process the request.
    New(TxId),
    /// A retransmission of a transaction still being processed: nothing to do.
    Absorbed,
    /// A retransmission of a completed transaction: its response was queued again.
    Replayed,
}

/// Open server transactions.
#[derive(Resource, Default)]
pub struct ServerTransactions {
    by_key: HashMap<TxKey, TxId>,
    txs: HashMap<TxId, ServerTx>,
    next: u64,
}

impl ServerTransactions {
    /// Match a request against open transactions (§17.2.3) or open a new one.
    pub fn admit(&mut self, req: &Request, outbox: &mut Outbox, stats: &mut Stats) -> Admission {
        let key = TxKey::of(req, req.method);
        if let Some(id) = self.by_key.get(&key) {
            stats.retransmissions_absorbed += 1;
            return match &self.txs[id].state {
                ServerTxState::Trying => Admission::Absorbed,
                ServerTxState::Completed(reply) => {
                    outbox.push(reply.clone());
                    Admission::Replayed
                }
            };
        }
        self.next += 1;
        let id = TxId(self.next);
        self.by_key.insert(key.clone(), id);
        self.txs.insert(
            id,
            ServerTx {
                key,
                state: ServerTxState::Trying,
                reliable: req.source.transport.is_reliable(),
            },
        );
        Admission::New(id)
    }

    /// True when a transaction with this key exists (CANCEL matching, §9.2).
    pub fn contains(&self, key: &TxKey) -> bool {
        self.by_key.contains_key(key)
    }

    /// Number of open transactions.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// Record the final response of `tx` and say what to do with it: the message to send, and
    /// the Timer J to arm (none on reliable transports, where the transaction ends at once).
    /// None when the transaction already has its final response.
    pub fn finish(
        &mut self,
        tx: TxId,
        dest: Dest,
        bytes: Bytes,
        now: Time,
        timer_j_ms: u64,
    ) -> Option<(Outbound, Option<Time>)> {
        let out = Outbound::whole(dest, bytes);
        match self.complete(tx, &out)? {
            true => {
                self.forget(tx);
                Some((out, None))
            }
            false => Some((out, Some(now.plus_ms(timer_j_ms)))),
        }
    }

    fn complete(&mut self, id: TxId, reply: &Outbound) -> Option<bool> {
        let tx = self.txs.get_mut(&id)?;
        if matches!(tx.state, ServerTxState::Completed(_)) {
            return None; // one final response per transaction
        }
        tx.state = ServerTxState::Completed(reply.clone());
        Some(tx.reliable)
    }

    fn forget(&mut self, id: TxId) {
        if let Some(tx) = self.txs.remove(&id) {
            self.by_key.remove(&tx.key);
        }
    }
}

/// Everything a system needs to answer a request: send the final response of a transaction.
#[derive(SystemParam)]
pub struct Responder<'w> {
    pub txs: ResMut<'w, ServerTransactions>,
    pub outbox: ResMut<'w, Outbox>,
    pub timers: ResMut<'w, Timers>,
    pub clock: Res<'w, Clock>,
    pub config: Res<'w, EngineConfig>,
}

impl Responder<'_> {
    /// Send the final response of transaction `tx` to `req`, routed by its Via (§18.2.2).
    pub fn reply_to(&mut self, tx: TxId, req: &Request, bytes: Bytes) {
        self.reply(
            tx,
            crate::sip::response::response_dest(&req.via, &req.source),
            bytes,
        );
    }

    /// Send the final response of transaction `tx` (bytes built by the caller) to `dest`.
    pub fn reply(&mut self, tx: TxId, dest: Dest, bytes: Bytes) {
        let (now, j) = (self.clock.now, self.config.timer_64t1());
        if let Some((out, linger)) = self.txs.finish(tx, dest, bytes, now, j) {
            if let Some(at) = linger {
                self.timers.arm(TimerKind::ServerTxLinger, tx.0, at);
            }
            self.outbox.push(out);
        }
    }
}

/// [`Responder::reply_to`] for exclusive systems that hold the whole `World`.
pub fn reply_in_world(world: &mut World, tx: TxId, req: &Request, bytes: Bytes) {
    let now = world.resource::<Clock>().now;
    let j = world.resource::<EngineConfig>().timer_64t1();
    let dest = crate::sip::response::response_dest(&req.via, &req.source);
    let Some((out, linger)) = world
        .resource_mut::<ServerTransactions>()
        .finish(tx, dest, bytes, now, j)
    else {
        return;
    };
    if let Some(at) = linger {
        world
            .resource_mut::<Timers>()
            .arm(TimerKind::ServerTxLinger, tx.0, at);
    }
    world.resource_mut::<Outbox>().push(out);
}

/// Forget completed server transactions whose Timer J fired.
pub fn expire_server_transactions(due: Res<DueTimers>, mut txs: ResMut<ServerTransactions>) {
    for d in due.of(TimerKind::ServerTxLinger) {
        txs.forget(TxId(d.key));
    }
}

/// Who started a client transaction, so its outcome finds its way back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner(pub u64);

/// How a client transaction ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A final response arrived.
    Final(Box<Response>),
    /// Timer F fired without a final response.
    Timeout,
}

struct ClientTx {
    owner: Owner,
    method: Method,
    message: Outbound,
    reliable: bool,
    interval_ms: u64,
    deadline: Time,
    seq: u64,
}

/// Outcomes of client transactions, for their owners to take each tick.
#[derive(Resource, Default)]
pub struct ClientOutcomes {
    pub done: Vec<(Owner, Outcome)>,
}

/// Open client transactions, by branch.
#[derive(Resource, Default)]
pub struct ClientTransactions {
    by_branch: HashMap<Box<str>, ClientTx>,
    by_seq: HashMap<u64, Box<str>>,
    next: u64,
}

impl ClientTransactions {
    /// A fresh RFC 3261 branch (magic cookie, seed, counter).
    pub fn new_branch(&mut self, seed: u64) -> String {
        self.next += 1;
        format!("z9hG4bK{:x}.{:x}", seed & 0xffff_ffff, self.next)
    }

    /// Number of open client transactions.
    pub fn len(&self) -> usize {
        self.by_branch.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.by_branch.is_empty()
    }
}

/// Starting and tracking requests we send.
#[derive(SystemParam)]
pub struct Requester<'w> {
    pub txs: ResMut<'w, ClientTransactions>,
    pub outbox: ResMut<'w, Outbox>,
    pub timers: ResMut<'w, Timers>,
    pub clock: Res<'w, Clock>,
    pub config: Res<'w, EngineConfig>,
}

impl Requester<'_> {
    /// A branch for the Via of the next request.
    pub fn new_branch(&mut self) -> String {
        let seed = self.config.seed;
        self.txs.new_branch(seed)
    }

    /// Send `message` (whose top Via carries `branch`) and track it for `owner`.
    pub fn send(&mut self, owner: Owner, method: Method, branch: String, message: Outbound) {
        let now = self.clock.now;
        let reliable = message.dest.transport.is_reliable();
        let t1 = self.config.t1_ms;
        let deadline = now.plus_ms(self.config.timer_64t1());
        let seq = self.txs.next;
        self.txs.next += 1;
        if !reliable {
            self.timers
                .arm(TimerKind::ClientTxRetransmit, seq, now.plus_ms(t1));
        }
        self.timers.arm(TimerKind::ClientTxTimeout, seq, deadline);
        self.outbox.push(message.clone());
        let branch: Box<str> = branch.into();
        self.txs.by_seq.insert(seq, branch.clone());
        self.txs.by_branch.insert(
            branch,
            ClientTx {
                owner,
                method,
                message,
                reliable,
                interval_ms: t1,
                deadline,
                seq,
            },
        );
    }
}

/// Match a response to its client transaction (§17.1.3); returns false for strays.
pub fn match_response(
    resp: Box<Response>,
    txs: &mut ClientTransactions,
    outcomes: &mut ClientOutcomes,
) -> bool {
    let Some(tx) = txs.by_branch.get(resp.via.branch.as_str()) else {
        return false;
    };
    if tx.method != resp.cseq_method {
        return false;
    }
    if resp.code < 200 {
        return true; // provisional: keep waiting (Timer E continues at T2, §17.1.2.2)
    }
    let tx = txs
        .by_branch
        .remove(resp.via.branch.as_str())
        .expect("present");
    txs.by_seq.remove(&tx.seq);
    outcomes.done.push((tx.owner, Outcome::Final(resp)));
    true
}

/// Timer E and Timer F of client transactions.
pub fn drive_client_transactions(
    due: Res<DueTimers>,
    clock: Res<Clock>,
    config: Res<EngineConfig>,
    mut txs: ResMut<ClientTransactions>,
    mut timers: ResMut<Timers>,
    mut outbox: ResMut<Outbox>,
    mut outcomes: ResMut<ClientOutcomes>,
    mut stats: ResMut<Stats>,
) {
    let txs = &mut *txs;
    for d in due.due.iter() {
        let Some(branch) = txs.by_seq.get(&d.key) else {
            continue;
        };
        match d.kind {
            TimerKind::ClientTxRetransmit => {
                let tx = txs.by_branch.get_mut(branch).expect("indexed");
                if tx.reliable || clock.now >= tx.deadline {
                    continue;
                }
                outbox.push(tx.message.clone());
                stats.retransmissions_sent += 1;
                tx.interval_ms = (tx.interval_ms * 2).min(config.t2_ms);
                timers.arm(
                    TimerKind::ClientTxRetransmit,
                    d.key,
                    clock.now.plus_ms(tx.interval_ms),
                );
            }
            TimerKind::ClientTxTimeout => {
                let branch = txs.by_seq.remove(&d.key).expect("indexed");
                let tx = txs.by_branch.remove(&branch).expect("indexed");
                stats.client_timeouts += 1;
                outcomes.done.push((tx.owner, Outcome::Timeout));
            }
            _ => {}
        }
    }
}
