//! RFC 3261 §17 non-INVITE transactions, both sides.
//!
//! Server side (§17.2.2): a request opens a transaction keyed as §17.2.3 says; its final response
//! is kept so that a retransmitted request gets the same bytes back without being processed
//! again, until Timer J (64·T1 on UDP, 0 on TCP) forgets it (by generation, see
//! [`ServerTransactions`]).
//!
//! Client side (§17.1.2): a request we send (NOTIFY) is retransmitted on UDP at Timer E (T1,
//! doubling to T2) until a final response or Timer F (64·T1); the outcome is reported to the
//! owner through [`ClientOutcomes`].

use std::collections::HashMap;

use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemParam;
use bytes::Bytes;

use crate::config::EngineConfig;
use crate::growing_map::{GrowingMap, Packed};
use crate::io::Outbox;
use crate::keyed_hash::HashKeys;
use crate::net::Outbound;
use crate::sip::response::{ResponseWriter, Shape};
use crate::sip::{Method, Request, Response};
use crate::stats::Stats;
use crate::time::{Clock, Time};
use crate::timers::{DueTimers, TimerKind, Timers};

/// Identifies a server transaction while it lives: the first hash of its §17.2.3 key, and
/// where its state is (so that its final response finds it without a lookup).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxId {
    id: u64,
    place: Place,
}

/// §17.2.3 matching key, hashed twice with independent random keys (no string is kept): with a
/// magic-cookie branch, branch + sent-by + method; otherwise the RFC 2543 fields. The first
/// hash indexes the table, the second guards against a collision of the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxKey {
    id: u64,
    check: u64,
}

/// The two keyed hashers of the transaction keys (derived from the engine's hash seed): a
/// SipHash for the id (the table's hash, which a peer must not be able to steer) and a cheap
/// seeded mix for the check (a guard against a collision of ids, which a peer cannot aim at
/// without knowing the SipHash key).
#[derive(Clone)]
struct KeyHashers(HashKeys, u64);

impl KeyHashers {
    /// Names of the two hashes, for [`HashKeys::derive`].
    const IDS: u64 = u64::from_be_bytes(*b"tx-ids\0\0");
    const CHECKS: u64 = u64::from_be_bytes(*b"tx-check");

    fn new(hash_seed: u128) -> Self {
        use std::hash::BuildHasher;
        let check = HashKeys::derive(hash_seed, Self::CHECKS).hash_one(0x5eed_u64);
        KeyHashers(HashKeys::derive(hash_seed, Self::IDS), check)
    }
}

/// A seeded multiply-rotate hash, eight bytes at a time (the check half of a [`TxKey`]).
struct Mix(u64);

impl Mix {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    #[inline]
    fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(Self::K).rotate_left(29);
    }
}

impl std::hash::Hasher for Mix {
    fn finish(&self) -> u64 {
        let h = self.0 ^ (self.0 >> 32);
        h.wrapping_mul(Self::K) ^ (h >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let mut last = [0u8; 8];
        let rest = chunks.remainder();
        last[..rest.len()].copy_from_slice(rest);
        // the length keeps "ab" + "" apart from "a" + "b"
        self.word(u64::from_le_bytes(last) ^ ((bytes.len() as u64) << 56));
    }

    fn write_u8(&mut self, n: u8) {
        self.word(n as u64 | 0x100);
    }

    fn write_u16(&mut self, n: u16) {
        self.word(n as u64 | 0x1_0000);
    }

    fn write_u32(&mut self, n: u32) {
        self.word(n as u64 | 0x1_0000_0000);
    }

    fn write_u64(&mut self, n: u64) {
        self.word(n);
    }
}

impl KeyHashers {
    /// The [`TxKey`] of `req`'s transaction with `method`.
    fn key(&self, req: &Request, method: Method) -> TxKey {
        use std::hash::{BuildHasher, Hasher};
        let fill = |h: &mut dyn Hasher| {
            let via = &req.via;
            let mut host = [0u8; 64];
            // sent-by host compared case-insensitively (§17.2.3 uses the sent-by as written,
            // hosts are case-insensitive in SIP)
            for chunk in via.host().as_bytes().chunks(64) {
                let lower = &mut host[..chunk.len()];
                lower.copy_from_slice(chunk);
                lower.make_ascii_lowercase();
                h.write(lower);
            }
            h.write_u16(via.port.unwrap_or(0));
            // a fieldless `Copy` enum: its discriminant is the method
            h.write_u8(method as u8);
            if via.has_cookie() {
                h.write(via.branch().as_bytes());
            } else {
                // RFC 2543 peers: Request-URI, To tag, From tag, Call-ID, CSeq number, top Via
                h.write(req.uri.raw.as_bytes());
                h.write_u8(0);
                h.write(req.to_tag().unwrap_or("").as_bytes());
                h.write_u8(0);
                h.write(req.from_tag().unwrap_or("").as_bytes());
                h.write_u8(0);
                h.write(req.call_id().as_bytes());
                h.write_u32(req.cseq);
                h.write(via.branch().as_bytes());
            }
        };
        let mut a = self.0.build_hasher();
        fill(&mut a);
        let mut b = Mix(self.1);
        fill(&mut b);
        TxKey {
            id: a.finish(),
            check: b.finish(),
        }
    }
}

/// A final response as a completed transaction keeps it until Timer J: without the headers it
/// echoed from the request, which a retransmission of the request carries again. What is kept
/// is its status line, the To tag we added and the rest after the echoed headers (about 120
/// bytes for a 200 to PUBLISH instead of the whole 330-byte response), written into its
/// generation's arena (one block per generation, freed with it: no allocation per response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kept {
    /// Where the parts are in the arena: status line, To tag, rest; or the whole response when
    /// `status_len` is 0.
    at: u32,
    len: u32,
    status_len: u16,
    tag_len: u8,
}

impl Kept {
    /// Keep the parts of a response whose [`Shape`] its writer gave; one with parts too long
    /// for the lengths kept is kept whole.
    fn shaped(arena: &mut Vec<u8>, response: &[u8], shape: Shape) -> Option<Kept> {
        let (tag_at, tag_len) = shape.tag;
        let (Ok(status_len), Ok(tag_len)) =
            (u16::try_from(shape.status_len), u8::try_from(tag_len))
        else {
            return Kept::whole(arena, response);
        };
        let tag = &response[tag_at..tag_at + tag_len as usize];
        let rest = &response[shape.rest_at..];
        let at = u32::try_from(arena.len()).ok()?;
        arena.extend_from_slice(&response[..shape.status_len]);
        arena.extend_from_slice(tag);
        arena.extend_from_slice(rest);
        Some(Kept {
            at,
            len: (arena.len() - at as usize) as u32,
            status_len,
            tag_len,
        })
    }

    fn whole(arena: &mut Vec<u8>, response: &[u8]) -> Option<Kept> {
        let at = u32::try_from(arena.len()).ok()?;
        arena.extend_from_slice(response);
        Some(Kept {
            at,
            len: u32::try_from(response.len()).ok()?,
            status_len: 0,
            tag_len: 0,
        })
    }

    /// The parts in `arena`.
    fn bytes<'a>(&self, arena: &'a [u8]) -> &'a [u8] {
        &arena[self.at as usize..][..self.len as usize]
    }

    /// The response again, for a retransmission `req` of the request it answered.
    fn replay(&self, arena: &[u8], req: &Request) -> Bytes {
        let bytes = self.bytes(arena);
        if self.status_len == 0 {
            return Bytes::copy_from_slice(bytes);
        }
        let (status, more) = bytes.split_at(self.status_len as usize);
        let (tag, rest) = more.split_at(self.tag_len as usize);
        let tag = std::str::from_utf8(tag).ok().filter(|t| !t.is_empty());
        crate::sip::response::replay(req, status, tag, rest)
    }
}

/// One server transaction, in the slots of the generation that opened it.
struct Slot {
    id: u64,
    check: u64,
    reliable: bool,
    /// Its final response once it has one (Completed); None while Trying (retransmissions
    /// absorbed silently), or for a response too large to keep (retransmissions then get
    /// nothing until Timer J).
    kept: Option<Kept>,
    completed: bool,
}

/// Where a transaction is: its generation's number and its index there, in one `u64` (the
/// value of the id map, and part of the [`TxId`] its request carries through the tick).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Place(u64);

impl Packed for Place {
    fn pack(self) -> u64 {
        self.0
    }
    fn unpack(bits: u64) -> Place {
        Place(bits)
    }
}

impl Place {
    fn new(generation: u32, index: usize) -> Place {
        Place((generation as u64) << 32 | index as u64)
    }

    fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    fn index(self) -> usize {
        self.0 as u32 as usize
    }
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

/// Generations of the table: a transaction lives at least Timer J and at most 5/4 of it.
const GENERATIONS: usize = 5;

/// The transactions a generation opened, in order, and the responses they keep.
struct Generation {
    number: u32,
    slots: Vec<Slot>,
    arena: Vec<u8>,
}

impl Generation {
    fn new(number: u32, like: Option<&Generation>) -> Generation {
        // sized like the last one: a steady load does not grow them again every quarter
        let (slots, arena) = like.map_or((0, 0), |g| (g.slots.len(), g.arena.len()));
        Generation {
            number,
            slots: Vec::with_capacity(slots),
            arena: Vec::with_capacity(arena),
        }
    }
}

/// Open server transactions. Timer J (§17.2.2) is kept by age, not by a timer per transaction:
/// the transactions opened during each quarter of Timer J are appended to a generation (their
/// state in its slots, their kept responses in its arena), and every quarter the oldest
/// generation leaves the ring, a slice per tick so that no tick drops a busy generation whole.
/// One map from a transaction's id to its place finds it in one lookup, and it grows and
/// shrinks a little at a time; the final response finds its transaction through the place its
/// [`TxId`] carries. No string per key, no allocation per transaction.
#[derive(Resource)]
pub struct ServerTransactions {
    hashers: KeyHashers,
    open: GrowingMap<Place>,
    /// Newest first.
    ring: std::collections::VecDeque<Generation>,
    rotated_at: Option<Time>,
    /// Generations older than Timer J, being removed.
    retiring: Vec<Generation>,
    /// Final responses sent, counted here because every one passes through [`Self::finish`].
    pub sent: crate::stats::ResponsesSent,
}

/// Transactions of retired generations freed per tick.
const RETIRE_PER_TICK: usize = 4096;

impl ServerTransactions {
    /// No transactions yet; the keys' hashes derived from the engine's `hash_seed`.
    pub fn new(hash_seed: u128) -> Self {
        ServerTransactions {
            hashers: KeyHashers::new(hash_seed),
            open: GrowingMap::default(),
            ring: Default::default(),
            rotated_at: None,
            retiring: Vec::new(),
            sent: Default::default(),
        }
    }

    /// The key of a request's transaction with `method` (CANCEL matches the cancelled method).
    pub fn key(&self, req: &Request, method: Method) -> TxKey {
        self.hashers.key(req, method)
    }

    /// The generation numbered `n`, live or retiring.
    fn generation_mut(&mut self, n: u32) -> Option<&mut Generation> {
        // the newest is the usual one: a request is answered in the tick that admitted it
        let offset = self.ring.front()?.number.wrapping_sub(n) as usize;
        if offset < self.ring.len() {
            return self.ring.get_mut(offset).filter(|g| g.number == n);
        }
        self.retiring.iter_mut().find(|g| g.number == n)
    }

    fn find(&mut self, key: TxKey) -> Option<(Place, &mut Generation)> {
        let place = self.open.get(&key.id)?;
        let g = self.generation_mut(place.generation())?;
        let slot = g.slots.get(place.index())?;
        (slot.id == key.id && slot.check == key.check).then_some((place, g))
    }

    /// Match a request against open transactions (§17.2.3) or open a new one.
    pub fn admit(&mut self, req: &Request, outbox: &mut Outbox, stats: &mut Stats) -> Admission {
        let key = self.key(req, req.method);
        if let Some((place, g)) = self.find(key) {
            stats.retransmissions_absorbed += 1;
            let slot = &g.slots[place.index()];
            return match (slot.completed, slot.kept) {
                (false, _) | (true, None) => Admission::Absorbed,
                (true, Some(kept)) => {
                    let dest = crate::sip::response::response_dest(&req.via, &req.source);
                    outbox.push(Outbound::whole(dest, kept.replay(&g.arena, req)));
                    Admission::Replayed
                }
            };
        }
        if self.ring.is_empty() {
            self.ring.push_front(Generation::new(0, None));
        }
        let g = &mut self.ring[0];
        let place = Place::new(g.number, g.slots.len());
        g.slots.push(Slot {
            id: key.id,
            check: key.check,
            reliable: req.source.transport.is_reliable(),
            kept: None,
            completed: false,
        });
        // An id that collides with an open transaction's (the check differs) takes its place:
        // the older one loses its retransmission cover, nothing else.
        self.open.insert(key.id, place);
        Admission::New(TxId { id: key.id, place })
    }

    /// True when a transaction with this key exists (CANCEL matching, §9.2).
    pub fn contains(&mut self, key: &TxKey) -> bool {
        self.find(*key).is_some()
    }

    /// Number of open transactions.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When the oldest generation next leaves the ring, while any generation lists an id: an
    /// idle server must still age its transactions out and give their memory back.
    pub fn next_rotation(&self, timer_j_ms: u64) -> Option<Time> {
        let quarter = (timer_j_ms / (GENERATIONS as u64 - 1)).max(1);
        self.ring
            .iter()
            .any(|g| !g.slots.is_empty())
            .then_some(self.rotated_at?)
            .map(|at| at.plus_ms(quarter))
    }

    /// Transactions past Timer J still being freed (of retired generations, some of them
    /// already gone; the others still count in [`len`](Self::len)).
    pub fn retiring(&self) -> usize {
        self.retiring.iter().map(|g| g.slots.len()).sum()
    }

    /// Record the final response of `tx` (bytes and [`Shape`], from
    /// [`ResponseWriter::finish_shaped`](crate::sip::response::ResponseWriter::finish_shaped))
    /// and return the message to send. None when the transaction already has its final
    /// response (one per transaction). On reliable transports the transaction ends at once
    /// (Timer J = 0).
    pub fn finish(
        &mut self,
        tx: TxId,
        req: &Request,
        (bytes, shape): (Bytes, Shape),
    ) -> Option<Outbound> {
        let place = tx.place;
        let g = self.generation_mut(place.generation())?;
        let slot = g.slots.get_mut(place.index())?;
        if slot.id != tx.id || slot.completed {
            return None;
        }
        slot.completed = true;
        if slot.reliable {
            // ends here: the slot stays behind, unlisted, until its generation goes
            self.open.remove_if_eq(&tx.id, place);
        } else {
            slot.kept = Kept::shaped(&mut g.arena, &bytes, shape);
        }
        // the status line starts "SIP/2.0 NNN" (ResponseWriter writes it)
        if let Some(&[a, b, c]) = bytes.get(8..11) {
            let digit = |d: u8| u16::from(d.wrapping_sub(b'0'));
            let status = digit(a) * 100 + digit(b) * 10 + digit(c);
            self.sent.count(req.method, status);
            if status >= 300 {
                // why a request was refused, for the operator (debug: off on the hot path)
                let line = &bytes[..memchr::memchr(b'\r', &bytes).unwrap_or(bytes.len())];
                tracing::debug!(
                    target: "presenced::rejected",
                    status,
                    method = crate::sip::message::method_str(req.method),
                    peer = %req.source.peer,
                    reason = %String::from_utf8_lossy(line.get(12..).unwrap_or_default()),
                    "request refused"
                );
            }
        }
        let dest = crate::sip::response::response_dest(&req.via, &req.source);
        Some(Outbound::whole(dest, bytes))
    }

    /// Age the table: every quarter of Timer J the oldest generation leaves the ring (as many
    /// quarters as have passed since the last tick).
    pub fn rotate(&mut self, now: Time, timer_j_ms: u64) {
        let quarter = (timer_j_ms / (GENERATIONS as u64 - 1)).max(1);
        let mut since = *self.rotated_at.get_or_insert(now);
        let mut turns = 0;
        while now.0 >= since.0 + quarter && turns < GENERATIONS {
            since = since.plus_ms(quarter);
            turns += 1;
            if self.ring.len() >= GENERATIONS
                && let Some(old) = self.ring.pop_back()
                && !old.slots.is_empty()
            {
                self.retiring.push(old);
            }
            let number = self.ring.front().map_or(0, |g| g.number.wrapping_add(1));
            let next = Generation::new(number, self.ring.front());
            self.ring.push_front(next);
        }
        self.rotated_at = Some(if turns == GENERATIONS { now } else { since });
        self.retire_some();
    }

    /// Remove up to `RETIRE_PER_TICK` transactions of retired generations: those the map still
    /// places there (an id may have ended early, on a reliable transport, and been opened
    /// again since). A generation's arena goes with its last transaction.
    fn retire_some(&mut self) {
        let mut budget = RETIRE_PER_TICK;
        while budget > 0
            && let Some(g) = self.retiring.last_mut()
        {
            let take = g.slots.len().min(budget);
            let from = g.slots.len() - take;
            for (i, slot) in g.slots.drain(from..).enumerate() {
                self.open
                    .remove_if_eq(&slot.id, Place::new(g.number, from + i));
            }
            budget -= take;
            if g.slots.is_empty() {
                self.retiring.pop();
            }
        }
    }
}

/// Everything a system needs to answer a request: send the final response of a transaction.
#[derive(SystemParam)]
pub struct Responder<'w> {
    pub txs: ResMut<'w, ServerTransactions>,
    pub outbox: ResMut<'w, Outbox>,
    pub config: Res<'w, EngineConfig>,
}

impl Responder<'_> {
    /// Send the final response of transaction `tx` to `req`, routed by its Via (§18.2.2).
    pub fn reply_to(&mut self, tx: TxId, req: &Request, response: ResponseWriter) {
        if let Some(out) = self.txs.finish(tx, req, response.finish_shaped()) {
            self.outbox.push(out);
        }
    }
}

/// Forget completed server transactions older than Timer J (by generation).
pub fn expire_server_transactions(
    clock: Res<Clock>,
    config: Res<EngineConfig>,
    mut txs: ResMut<ServerTransactions>,
) {
    txs.rotate(clock.now, config.timer_64t1());
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
}

/// Outcomes of client transactions, for their owners to take each tick.
#[derive(Resource, Default)]
pub struct ClientOutcomes {
    pub done: Vec<(Owner, Outcome)>,
}

/// Open client transactions, by the number their branch carries (no string kept: the branch
/// is `z9hG4bK<seed>.<number>`, both in hex, and a response's branch is read back to its number).
#[derive(Resource)]
pub struct ClientTransactions {
    open: HashMap<u64, ClientTx, HashKeys>,
    next: u64,
}

impl ClientTransactions {
    /// Name of the table's keys, for [`HashKeys::derive`].
    const KEYS: u64 = u64::from_be_bytes(*b"tx-clnt\0");

    /// No open transaction; the table's hash keys derived from the engine's `hash_seed`.
    pub fn new(hash_seed: u128) -> ClientTransactions {
        ClientTransactions {
            open: HashMap::with_hasher(HashKeys::derive(hash_seed, Self::KEYS)),
            next: 0,
        }
    }

    /// A fresh RFC 3261 branch (magic cookie, seed, counter).
    pub fn new_branch(&mut self, seed: u64) -> Branch {
        self.next += 1;
        let mut text = String::with_capacity(32);
        text.push_str("z9hG4bK");
        crate::hex::push(&mut text, seed & 0xffff_ffff, 1);
        text.push('.');
        crate::hex::push(&mut text, self.next, 1);
        Branch {
            number: self.next,
            text,
        }
    }

    /// The number of a branch [`new_branch`](Self::new_branch) made with `seed`; None for any
    /// other branch.
    fn number(branch: &str, seed: u64) -> Option<u64> {
        let rest = branch.as_bytes().strip_prefix(b"z9hG4bK")?;
        let (ours, rest) = crate::hex::read_prefix(rest)?;
        let (number, rest) = crate::hex::read_prefix(rest.strip_prefix(b".")?)?;
        (rest.is_empty() && ours == seed & 0xffff_ffff).then_some(number)
    }
    /// Number of open client transactions.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// A branch of ours and the number it carries.
#[derive(Debug)]
pub struct Branch {
    number: u64,
    text: String,
}

impl std::ops::Deref for Branch {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
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
    pub fn new_branch(&mut self) -> Branch {
        let seed = self.config.seed;
        self.txs.new_branch(seed)
    }

    /// Send `message` (whose top Via carries `branch`, from [`new_branch`](Self::new_branch))
    /// and track it for `owner`.
    pub fn send(&mut self, owner: Owner, method: Method, branch: &Branch, message: Outbound) {
        let now = self.clock.now;
        let reliable = message.dest.transport.is_reliable();
        let t1 = self.config.t1_ms;
        let deadline = now.plus_ms(self.config.timer_64t1());
        let seq = branch.number;
        if !reliable {
            self.timers
                .arm(TimerKind::ClientTxRetransmit, seq, now.plus_ms(t1));
        }
        self.timers.arm(TimerKind::ClientTxTimeout, seq, deadline);
        self.outbox.push(message.clone());
        self.txs.open.insert(
            seq,
            ClientTx {
                owner,
                method,
                message,
                reliable,
                interval_ms: t1,
                deadline,
            },
        );
    }
}

/// Match a response to its client transaction (§17.1.3); returns false for strays.
pub fn match_response(
    resp: Box<Response>,
    seed: u64,
    txs: &mut ClientTransactions,
    outcomes: &mut ClientOutcomes,
) -> bool {
    let Some(seq) = ClientTransactions::number(resp.via.branch(), seed) else {
        return false;
    };
    let Some(tx) = txs.open.get(&seq) else {
        return false;
    };
    if tx.method != resp.cseq_method {
        return false;
    }
    if resp.code < 200 {
        return true; // provisional: keep waiting (Timer E continues at T2, §17.1.2.2)
    }
    let tx = txs.open.remove(&seq).expect("present");
    outcomes.done.push((tx.owner, Outcome::Final(resp)));
    true
}

/// Timer E and Timer F of client transactions.
#[allow(clippy::too_many_arguments)] // a system's parameters are its data access
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
        match d.kind {
            TimerKind::ClientTxRetransmit => {
                let Some(tx) = txs.open.get_mut(&d.key) else {
                    continue;
                };
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
                let Some(tx) = txs.open.remove(&d.key) else {
                    continue;
                };
                stats.client_timeouts += 1;
                outcomes.done.push((tx.owner, Outcome::Timeout));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Parsed, parse};

    fn request(to: &str) -> Request {
        let text = format!(
            "OPTIONS sip:p@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9000;branch=z9hG4bK1;rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: {to}\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
        );
        let inbound = crate::sip::message::tests::inbound(text.as_bytes());
        match parse(&inbound, "OPTIONS", false) {
            Parsed::Request(r) => *r,
            _ => panic!("parses"),
        }
    }

    #[test]
    fn a_response_is_kept_without_its_echoed_headers_and_replayed_whole() {
        for (to, tag) in [
            ("<sip:p@example.com>", Some("t1")),
            ("<sip:p@example.com>;tag=d", None),
        ] {
            let req = request(to);
            let mut w = crate::router::respond(&req, 200, "OK", tag.unwrap_or("unused"));
            w.header("Allow", "OPTIONS");
            let (response, shape) = w.finish_shaped();
            let mut arena = vec![0; 7];
            let kept = Kept::shaped(&mut arena, &response, shape).expect("kept");
            assert_ne!(kept.status_len, 0, "split, not kept whole: {to}");
            assert_eq!(kept.at, 7, "appended to the arena");
            assert!(
                kept.bytes(&arena).len() < response.len() / 2,
                "{} of {}",
                kept.bytes(&arena).len(),
                response.len()
            );
            assert_eq!(kept.replay(&arena, &req), response, "{to}");
        }
    }

    #[test]
    fn a_reopened_transaction_outlives_the_generation_of_its_first_life() {
        let mut txs = ServerTransactions::new(0);
        let (mut outbox, mut stats) = (Outbox::default(), Stats::default());
        let mut req = request("<sip:p@example.com>");
        let ok = |req: &Request| crate::router::respond(req, 200, "OK", "t").finish_shaped();
        let j = 32_000;
        txs.rotate(Time(0), j);
        // over TCP a transaction ends with its response (Timer J = 0)
        req.source.transport = crate::net::Transport::Tcp;
        let Admission::New(first) = txs.admit(&req, &mut outbox, &mut stats) else {
            panic!("new")
        };
        assert!(txs.finish(first, &req, ok(&req)).is_some());
        assert!(txs.is_empty());
        // two quarters later the same key opens again, over UDP this time: it stays open
        txs.rotate(Time(j / 2), j);
        req.source.transport = crate::net::Transport::Udp;
        let Admission::New(second) = txs.admit(&req, &mut outbox, &mut stats) else {
            panic!("new again")
        };
        assert!(txs.finish(second, &req, ok(&req)).is_some());
        // the first life's generation leaves the ring: the second life is not taken with it
        txs.rotate(Time(j * 5 / 4), j);
        assert!(txs.retiring() == 0 && txs.len() == 1);
        assert_eq!(
            txs.admit(&req, &mut outbox, &mut stats),
            Admission::Replayed
        );
        // and leaves with its own generation
        txs.rotate(Time(j * 7 / 4), j);
        assert!(txs.is_empty());
    }

    #[test]
    fn a_final_response_finds_its_transaction_in_an_older_generation() {
        let mut txs = ServerTransactions::new(0);
        let (mut outbox, mut stats) = (Outbox::default(), Stats::default());
        let j = 32_000;
        txs.rotate(Time(0), j);
        let mut answered = Vec::new();
        // one transaction per quarter: the first ones end up in older generations
        for (n, tag) in ["a", "b", "c"].into_iter().enumerate() {
            let mut req = request(&format!("<sip:p@example.com>;tag={tag}"));
            req.via = crate::sip::fields::parse_via(&format!(
                "SIP/2.0/UDP 127.0.0.1:9000;branch=z9hG4bK{tag};rport"
            ))
            .unwrap();
            let Admission::New(tx) = txs.admit(&req, &mut outbox, &mut stats) else {
                panic!("new {tag}")
            };
            answered.push((tx, req));
            txs.rotate(Time(j / 4 * (n as u64 + 1)), j);
        }
        let ok = |req: &Request| crate::router::respond(req, 200, "OK", "t").finish_shaped();
        for (tx, req) in &answered {
            assert!(
                txs.finish(*tx, req, ok(req)).is_some(),
                "{:?}",
                req.via.branch()
            );
            assert!(
                txs.finish(*tx, req, ok(req)).is_none(),
                "one final response"
            );
            assert_eq!(txs.admit(req, &mut outbox, &mut stats), Admission::Replayed);
        }
        // once its generation has left the table, a late answer finds nothing
        txs.rotate(Time(j * 3), j);
        while txs.retiring() > 0 {
            txs.rotate(Time(j * 3), j);
        }
        assert!(txs.is_empty());
        let (tx, req) = &answered[0];
        assert!(txs.finish(*tx, req, ok(req)).is_none());
    }

    #[test]
    fn a_branch_we_made_reads_back_to_its_number_and_no_other_does() {
        let mut txs = ClientTransactions::new(0);
        let seed = 0x1234_5678_9abc_def0;
        for _ in 0..300 {
            let b = txs.new_branch(seed);
            assert_eq!(b.number, txs.next);
            assert_eq!(
                ClientTransactions::number(&b, seed),
                Some(b.number),
                "{b:?}"
            );
        }
        for other in [
            "z9hG4bK9abcdef0.",
            "z9hG4bK.12c",
            "z9hG4bK9abcdef1.12c",
            "z9hG4bK9ABCDEF0.12c",
            "z9hG4bK9abcdef0.+12c",
            "z9hG4bK9abcdef0.12c.1",
            "z9hG4bK9abcdef0.10000000000000000",
            "9abcdef0.12c",
        ] {
            assert_eq!(ClientTransactions::number(other, seed), None, "{other}");
        }
    }

    #[test]
    fn a_response_with_a_tag_too_long_to_split_is_kept_whole() {
        let req = request("<sip:p@example.com>");
        let long_tag = "t".repeat(300);
        let (response, shape) = crate::router::respond(&req, 200, "OK", &long_tag).finish_shaped();
        let mut arena = Vec::new();
        let kept = Kept::shaped(&mut arena, &response, shape).expect("kept");
        assert_eq!(kept.status_len, 0);
        assert_eq!(kept.bytes(&arena), &response[..]);
        assert_eq!(kept.replay(&arena, &req), response);
    }
}
