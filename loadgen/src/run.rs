//! One run of a scenario against one target: a single thread with one mio `Poll`, the
//! population's UDP sockets read with `recvmmsg` and written with `sendmmsg` (or TCP connections,
//! each carrying many user agents the way a proxy's connection does), a timerfd for
//! sub-millisecond wake-ups, and a deadline heap for RFC 3261 Timers E/F and refreshes.
//!
//! Load is open-loop: each stream (initial PUBLISH, SUBSCRIBE, modify, churn, teardown) sends
//! its k-th request at `start + k / rate` whatever the responses, and latency is measured from
//! that scheduled time, so a slow server cannot slow the offered load down (no coordinated
//! omission). The one exception is per-entity ordering: a presentity never has two PUBLISHes
//! in flight (it needs the previous 200's SIP-ETag, RFC 3903 §4.4), so a modify due while the
//! previous one is open waits for it, keeps its scheduled time, and later ones are merged into
//! it (counted as `publish_coalesced`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::msgs::{Templates, read_token};
use crate::procstat;
use crate::scenario::{LinkKind, Scenario};
use crate::sipmsg::{self, Start};
use crate::stats::{OpKind, Report, SelfReport, ServerReport, Stats};
use crate::udp::{self, RecvBatch, SendQueue};

const NONE: u64 = u64::MAX;
const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

/// Where and how to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub target: SocketAddr,
    /// Server process to sample from /proc.
    pub server_pid: Option<u32>,
    /// Prefix of user parts (fresh names per ramp step or compare target).
    pub namespace: String,
    /// Show a progress bar (on stderr, only when it is a terminal).
    pub progress: bool,
    /// Label of the progress bar.
    pub label: String,
}

/// Refuse any target that is not loopback.
pub fn check_loopback(addr: &SocketAddr) -> Result<(), String> {
    let ip = addr.ip();
    let ok = match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{addr} is not a loopback address: loadgen only talks to 127.0.0.0/8 or ::1"
        ))
    }
}

/// An entity tag kept inline (no allocation per presentity).
#[derive(Clone, Copy)]
struct Inline {
    len: u8,
    b: [u8; 63],
}

impl Inline {
    const EMPTY: Inline = Inline { len: 0, b: [0; 63] };
    fn get(&self) -> &[u8] {
        &self.b[..self.len as usize]
    }
    /// Keep `v`; false when it is too long to keep.
    fn set(&mut self, v: &[u8]) -> bool {
        if v.len() > self.b.len() {
            self.len = 0;
            return false;
        }
        self.b[..v.len()].copy_from_slice(v);
        self.len = v.len() as u8;
        true
    }
    fn clear(&mut self) {
        self.len = 0;
    }
}

struct Pres {
    etag: Inline,
    inflight: bool,
    /// Scheduled time of a modify waiting for the open PUBLISH, or NONE.
    pending_modify: u64,
    /// Last token sequence sent, and the highest acknowledged by a 2xx.
    seq: u32,
    acked_seq: u32,
    cseq: u32,
    timer_gen: u32,
    /// Watchers with an established dialog on this presentity.
    watchers: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum WState {
    Idle,
    Subscribing,
    Active,
    Unsubscribing,
    Ended,
}

struct Watcher {
    target: u32,
    generation: u32,
    state: WState,
    inflight: bool,
    cseq: u32,
    to_tag: Inline,
    /// Scheduled time of the initial SUBSCRIBE, NONE once its first NOTIFY came.
    sub_sched: u64,
    /// Counted in the presentity's `watchers`.
    counted: bool,
    last_notify_cseq: u32,
    last_seq: u32,
    timer_gen: u32,
    /// Churn: subscribe again once the unsubscribe is answered.
    resubscribe: bool,
}

struct Txn {
    generation: u32,
    live: bool,
    op: OpKind,
    entity: u32,
    sock: u16,
    sched: u64,
    interval: u64,
    deadline_f: u64,
    seq: u32,
    expires: u32,
    msg: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    Txn,
    PubRefresh,
    SubRefresh,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum StreamKind {
    PublishInitial,
    Subscribe,
    Modify,
    Churn,
    Unsubscribe,
    Remove,
}

struct Stream {
    kind: StreamKind,
    rate: f64,
    start: u64,
    count: u64,
    sent: u64,
}

impl Stream {
    fn due(&self) -> u64 {
        if self.sent >= self.count {
            NONE
        } else {
            self.start + (self.sent as f64 * 1e9 / self.rate) as u64
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
enum Phase {
    Start,
    Publish,
    Subscribe,
    Steady,
    Teardown,
    Drain,
    Done,
}

struct Sock {
    link: Link,
    out: SendQueue,
    /// A drain was cut short: read again before sleeping.
    more: bool,
    /// A TCP connection's send buffer is full: wait for it to be writable.
    blocked: bool,
}

/// How one of the population's sockets reaches the target.
enum Link {
    Udp(mio::net::UdpSocket),
    Tcp {
        stream: mio::net::TcpStream,
        /// Bytes read and not yet framed into messages.
        rbuf: Vec<u8>,
        /// The connection failed or the server closed it.
        dead: bool,
    },
}

/// Largest SIP message framed from a TCP stream.
const MAX_TCP_MESSAGE: usize = 65_535;

/// The state of one run.
struct Runner<'a> {
    scn: &'a Scenario,
    target: SocketAddr,
    epoch: Instant,
    socks: Vec<Sock>,
    tpl: Templates,
    pres: Vec<Pres>,
    watchers: Vec<Watcher>,
    txns: Vec<Txn>,
    free: Vec<u32>,
    inflight: u64,
    heap: BinaryHeap<Reverse<(u64, TimerKind, u32, u32)>>,
    stats: Stats,
    rng: crate::popularity::Rng,
    zipf: crate::popularity::Zipf,
    rr_modify: u32,
    phase: Phase,
    phase_started: u64,
    streams: Vec<Stream>,
    /// When the current phase's streams were all sent.
    sends_done_at: u64,
    /// The current phase had nothing to send.
    phase_empty: bool,
    /// Next time the settle of the steady phase may look for stale watchers.
    next_stale_check: u64,
    last_rx: u64,
    awaiting_first: u64,
    steady_span: Option<(u64, u64)>,
    cut_short: Option<String>,
    requests_started: u64,
    body: Vec<u8>,
    t1: u64,
    t2: u64,
    timer_f: u64,
    /// Over TCP: no retransmissions.
    reliable: bool,
}

fn elapsed_ns(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

/// Wall-clock time in ns (the clock of the kernel's receive timestamps).
fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl<'a> Runner<'a> {
    fn now(&self) -> u64 {
        elapsed_ns(self.epoch)
    }

    // ---- transactions -------------------------------------------------------------------

    fn alloc_txn(&mut self) -> u32 {
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
                msg: Vec::with_capacity(768),
            });
            (self.txns.len() - 1) as u32
        }
    }

    /// Record and send the request just written into `txns[slot].msg`.
    fn start_txn(&mut self, slot: u32, now: u64) {
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
        self.socks[sock].out.push(self.target, &t.msg);
        self.heap
            .push(Reverse((first, TimerKind::Txn, slot, generation)));
        self.inflight += 1;
        self.requests_started += 1;
        let o = self.stats.op(op);
        o.sent += 1;
        o.first_sched = o.first_sched.min(sched);
    }

    fn finish_txn(&mut self, slot: u32) {
        let t = &mut self.txns[slot as usize];
        t.live = false;
        t.generation = t.generation.wrapping_add(1);
        self.free.push(slot);
        self.inflight -= 1;
    }

    // ---- sending ------------------------------------------------------------------------

    fn sock_of(&self, entity: u32) -> u16 {
        (entity % self.socks.len() as u32) as u16
    }

    /// Send a PUBLISH for presentity `p`: initial/modify with a new token, refresh or remove.
    fn send_publish(&mut self, p: u32, mut op: OpKind, sched: u64, now: u64) {
        let slot = self.alloc_txn();
        let sock = self.sock_of(p);
        let pr = &mut self.pres[p as usize];
        if pr.etag.len == 0 {
            if matches!(op, OpKind::PublishRefresh | OpKind::PublishRemove) {
                self.free.push(slot);
                return;
            }
            op = OpKind::PublishInitial;
        }
        pr.cseq += 1;
        pr.inflight = true;
        let expires = if op == OpKind::PublishRemove {
            0
        } else {
            self.scn.publish.expires
        };
        let token = if matches!(op, OpKind::PublishInitial | OpKind::PublishModify) {
            pr.seq += 1;
            Some((pr.seq, sched))
        } else {
            None
        };
        let etag = pr.etag;
        let cseq = pr.cseq;
        let t = &mut self.txns[slot as usize];
        t.op = op;
        t.entity = p;
        t.sock = sock;
        t.sched = sched;
        t.seq = token.map_or(0, |x| x.0);
        t.expires = expires;
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
        );
        self.start_txn(slot, now);
    }

    /// Send a SUBSCRIBE from watcher `w`: initial (new dialog), refresh or unsubscribe.
    fn send_subscribe(&mut self, w: u32, op: OpKind, sched: u64, now: u64) {
        let slot = self.alloc_txn();
        let sock = self.sock_of(w);
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
            self.awaiting_first += 1;
        } else if op == OpKind::Unsubscribe {
            wa.state = WState::Unsubscribing;
        }
        wa.cseq += 1;
        wa.inflight = true;
        let (generation, cseq, target, to_tag) = (wa.generation, wa.cseq, wa.target, wa.to_tag);
        let t = &mut self.txns[slot as usize];
        t.op = op;
        t.entity = w;
        t.sock = sock;
        t.sched = sched;
        t.seq = 0;
        t.expires = expires;
        t.msg.clear();
        self.tpl.subscribe(
            &mut t.msg,
            sock as usize,
            (slot, t.generation),
            w,
            generation,
            target,
            cseq,
            expires,
            to_tag.get(),
        );
        self.start_txn(slot, now);
    }

    fn pick_presentity(&mut self) -> u32 {
        if self.scn.population.zipf_exponent == 0.0 {
            let p = self.rr_modify % self.pres.len() as u32;
            self.rr_modify = self.rr_modify.wrapping_add(1);
            p
        } else {
            self.zipf.sample(&mut self.rng)
        }
    }

    /// A modify for `p` scheduled at `sched`: now, or after the open PUBLISH.
    fn modify(&mut self, p: u32, sched: u64, now: u64) {
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
    fn fire_streams(&mut self, now: u64) -> u64 {
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

    // ---- timers -------------------------------------------------------------------------

    fn fire_timers(&mut self, now: u64) -> u64 {
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

    // ---- receiving ----------------------------------------------------------------------

    fn on_datagram(&mut self, sock: usize, bytes: &[u8], from: SocketAddr, now: u64) {
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
        self.finish_txn(slot);
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
            | OpKind::PublishRemove => {
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
                    }
                }
                self.after_publish(entity, now);
            }
            OpKind::Subscribe | OpKind::SubscribeRefresh => {
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
                    if wa.to_tag.len > 0 && !wa.counted && wa.state == WState::Active {
                        wa.counted = true;
                        self.pres[wa.target as usize].watchers += 1;
                    }
                }
                if wa.state == WState::Active && granted > 0 {
                    wa.timer_gen = wa.timer_gen.wrapping_add(1);
                    let at = now + (granted as f64 * frac * 1e9) as u64;
                    self.heap
                        .push(Reverse((at, TimerKind::SubRefresh, entity, wa.timer_gen)));
                }
            }
            OpKind::Unsubscribe => self.after_unsubscribe(entity, now),
        }
    }

    fn on_failure(&mut self, op: OpKind, entity: u32, now: u64) {
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
            self.pres[wa.target as usize].watchers -= 1;
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
            wa.target = if self.scn.population.zipf_exponent == 0.0 {
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
        if wa.to_tag.len == 0 && !m.from_tag.is_empty() {
            // NOTIFY before the 200 (RFC 6665 §4.1.2.4): the dialog starts here.
            wa.to_tag.set(m.from_tag);
        }
        let first = wa.sub_sched != NONE;
        if first {
            let _ = self
                .stats
                .notify
                .sub_to_first
                .record((now.saturating_sub(wa.sub_sched) / 1000).max(1));
            wa.sub_sched = NONE;
            self.awaiting_first -= 1;
        }
        if let Some((seq, t)) = read_token(m.body)
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

    // ---- phases -------------------------------------------------------------------------

    fn streams_done(&self) -> bool {
        self.streams.iter().all(|s| s.sent >= s.count)
    }

    /// Move on when the phase is over. Returns false once the run is done.
    fn advance(&mut self, now: u64) -> bool {
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
                // has the last acknowledged state; checked every 50 ms (O(watchers)).
                if quiet && self.phase == Phase::Steady && !self.watchers.is_empty() {
                    if now >= self.next_stale_check {
                        self.next_stale_check = now + 50 * MS;
                        self.count_stale();
                        quiet = self.stats.stale_watchers == 0;
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

    /// Watchers whose last NOTIFY does not carry the last acknowledged state.
    fn count_stale(&mut self) {
        let mut stale = 0;
        let mut missing = 0;
        for wa in &self.watchers {
            if wa.state == WState::Active && wa.to_tag.len > 0 {
                if wa.sub_sched != NONE {
                    missing += 1;
                } else if wa.last_seq < self.pres[wa.target as usize].acked_seq {
                    stale += 1;
                }
            }
        }
        self.stats.stale_watchers = stale;
        self.stats.missing_first_notify = missing;
    }

    // ---- I/O ----------------------------------------------------------------------------

    fn flush(&mut self) {
        for s in &mut self.socks {
            if s.out.pending() == 0 {
                continue;
            }
            match &mut s.link {
                Link::Udp(sock) => {
                    let (sent, failed) = s.out.flush(udp::fd(sock));
                    self.stats.msgs_sent += sent;
                    self.stats.send_errors += failed;
                }
                Link::Tcp { stream, dead, .. } => {
                    if *dead {
                        // nothing can leave: the requests time out and say so
                        self.stats.send_errors += s.out.pending() as u64;
                        s.out.clear();
                        continue;
                    }
                    match s.out.flush_stream(stream) {
                        Ok(sent) => {
                            self.stats.msgs_sent += sent;
                            s.blocked = s.out.pending() > 0;
                        }
                        Err(e) => {
                            *dead = true;
                            self.stats.send_errors += s.out.pending() as u64;
                            s.out.clear();
                            self.cut_short
                                .get_or_insert_with(|| format!("TCP connection failed: {e}"));
                        }
                    }
                }
            }
        }
    }

    fn drain_socket(&mut self, i: usize, rb: &mut RecvBatch) -> io::Result<()> {
        if matches!(self.socks[i].link, Link::Tcp { .. }) {
            self.drain_stream(i);
            return Ok(());
        }
        // bounded per wake-up so sends are not starved by a flood of input
        for _ in 0..16 {
            let Link::Udp(sock) = &self.socks[i].link else {
                return Ok(());
            };
            let n = rb.recv(udp::fd(sock))?;
            let now = self.now();
            // the kernel stamps in wall-clock time; our clock counts from the epoch
            let wall_minus_ours = wall_ns() as i128 - now as i128;
            for k in 0..n {
                let d = rb.get(k);
                let (bytes, from) = (d.bytes, d.peer);
                if d.truncated {
                    self.stats.parse_errors += 1;
                    continue;
                }
                let arrived = d.received_ns.map_or(now, |t| {
                    (t as i128 - wall_minus_ours).clamp(0, now as i128) as u64
                });
                if let Some(from) = from {
                    self.on_datagram(i, bytes, from, arrived);
                }
            }
            if self.socks[i].out.pending() >= 256 {
                self.flush();
            }
            if n < crate::udp::RECV_BATCH {
                self.socks[i].more = false;
                return Ok(());
            }
        }
        self.socks[i].more = true;
        Ok(())
    }

    /// Read what a TCP connection holds and hand each framed message on.
    fn drain_stream(&mut self, i: usize) {
        let Link::Tcp {
            stream, rbuf, dead, ..
        } = &mut self.socks[i].link
        else {
            return;
        };
        if *dead {
            return;
        }
        let mut buf = std::mem::take(rbuf);
        let peer = stream.peer_addr().unwrap_or(self.target);
        let mut chunk = [0u8; 65536];
        let mut closed = None;
        // bounded per wake-up so sends are not starved by a flood of input
        let mut more = true;
        for _ in 0..16 {
            match stream.read(&mut chunk) {
                Ok(0) => {
                    closed = Some("server closed the TCP connection".to_owned());
                    more = false;
                    break;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    more = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    closed = Some(format!("TCP connection failed: {e}"));
                    more = false;
                    break;
                }
            }
        }
        let now = self.now();
        let mut at = 0;
        loop {
            use presenced_systems::sip::framing::{Frame, next_frame};
            match next_frame(&buf[at..], MAX_TCP_MESSAGE, MAX_TCP_MESSAGE) {
                Frame::Message { skip, len } => {
                    let start = at + skip;
                    at = start + len;
                    self.on_datagram(i, &buf[start..start + len], peer, now);
                }
                Frame::KeepAlive { skip, .. } => {
                    at += skip;
                    break;
                }
                Frame::Incomplete => break,
                Frame::Invalid(why) => {
                    self.stats.parse_errors += 1;
                    closed = Some(format!("unframeable TCP stream from the server: {why}"));
                    at = buf.len();
                    break;
                }
            }
        }
        buf.drain(..at);
        let s = &mut self.socks[i];
        s.more = more;
        if let Link::Tcp { rbuf, dead, .. } = &mut s.link {
            *rbuf = buf;
            if let Some(why) = closed {
                *dead = true;
                self.cut_short.get_or_insert(why);
            }
        }
    }
}

fn timerfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the result is checked and owned.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Arm the timer `after` from now (relative; at least 1 µs).
fn arm(fd: &OwnedFd, after: Duration) {
    let after = after.max(Duration::from_micros(1));
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: after.as_secs() as libc::time_t,
            tv_nsec: after.subsec_nanos() as libc::c_long,
        },
    };
    // SAFETY: valid fd and itimerspec.
    unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
}

fn clear_timer(fd: &OwnedFd) {
    let mut buf = [0u8; 8];
    // SAFETY: reading 8 bytes into a local buffer from a non-blocking timerfd.
    unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
}

/// A fresh run identifier (distinguishes runs and steps on the wire).
pub fn new_run_id() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let x = (t.as_nanos() as u64) ^ ((std::process::id() as u64) << 32);
    (crate::popularity::Rng::new(x).next_u64() % 1_000_000_000) as u32 + 1
}

/// Run `scn` against `opts.target` and report.
pub fn run(scn: &Scenario, opts: &Options) -> Result<Report, String> {
    check_loopback(&opts.target)?;
    scn.validate().map_err(|e| e.to_string())?;
    let bind_ip: IpAddr = match opts.target.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let mut socks = Vec::new();
    let mut locals = Vec::new();
    let (mut rcv, mut snd) = (0, 0);
    for i in 0..scn.run.sockets {
        let token = Token(i as usize);
        let link = match scn.run.transport {
            LinkKind::Udp => {
                let (mut s, r, sn) =
                    udp::bind(SocketAddr::new(bind_ip, 0), scn.run.socket_buffer_bytes)
                        .map_err(|e| format!("bind {bind_ip}: {e}"))?;
                (rcv, snd) = (r, sn);
                // latencies from the kernel's receive time, whenever the socket is read
                presenced::sip::datagrams::enable_timestamps(udp::fd(&s))
                    .map_err(|e| format!("SO_TIMESTAMPNS: {e}"))?;
                // read every tick unless asked to wake per datagram (see RunLimits)
                let interest = if scn.run.wake_on_receive {
                    Interest::READABLE
                } else {
                    Interest::WRITABLE
                };
                poll.registry()
                    .register(&mut s, token, interest)
                    .map_err(|e| format!("register: {e}"))?;
                locals.push(s.local_addr().map_err(|e| e.to_string())?);
                Link::Udp(s)
            }
            LinkKind::Tcp => {
                // Loopback connects at once; the connection is then used non-blocking.
                let s = std::net::TcpStream::connect(opts.target)
                    .map_err(|e| format!("connect {}: {e}", opts.target))?;
                s.set_nodelay(true).map_err(|e| e.to_string())?;
                s.set_nonblocking(true).map_err(|e| e.to_string())?;
                let sr = socket2::SockRef::from(&s);
                (rcv, snd) = (
                    sr.recv_buffer_size().unwrap_or(0),
                    sr.send_buffer_size().unwrap_or(0),
                );
                locals.push(s.local_addr().map_err(|e| e.to_string())?);
                let mut s = mio::net::TcpStream::from_std(s);
                poll.registry()
                    .register(&mut s, token, Interest::READABLE | Interest::WRITABLE)
                    .map_err(|e| format!("register: {e}"))?;
                Link::Tcp {
                    stream: s,
                    rbuf: Vec::new(),
                    dead: false,
                }
            }
        };
        socks.push(Sock {
            link,
            out: SendQueue::new(),
            more: false,
            blocked: false,
        });
    }
    let tfd = timerfd().map_err(|e| format!("timerfd: {e}"))?;
    let timer_token = Token(usize::MAX - 1);
    poll.registry()
        .register(
            &mut SourceFd(&tfd.as_raw_fd()),
            timer_token,
            Interest::READABLE,
        )
        .map_err(|e| format!("register timerfd: {e}"))?;

    let pop = &scn.population;
    let reliable = scn.run.transport == LinkKind::Tcp;
    let tpl = Templates::new(
        new_run_id(),
        &pop.domain,
        &opts.namespace,
        &locals,
        reliable,
    );
    {
        // the body template must be valid PIDF for the server's parser
        let mut b = Vec::new();
        tpl.pidf(&mut b, 0, 1, 1);
        presenced_systems::formats::pidf::parse(&b)
            .map_err(|e| format!("internal: PIDF template rejected: {e}"))?;
    }
    let mut rng = crate::popularity::Rng::new(pop.seed);
    let zipf = crate::popularity::Zipf::new(pop.presentities, pop.zipf_exponent);
    let watchers = (0..pop.watchers)
        .map(|i| Watcher {
            target: if pop.zipf_exponent == 0.0 {
                i % pop.presentities
            } else {
                zipf.sample(&mut rng)
            },
            generation: 0,
            state: WState::Idle,
            inflight: false,
            cseq: 0,
            to_tag: Inline::EMPTY,
            sub_sched: NONE,
            counted: false,
            last_notify_cseq: 0,
            last_seq: 0,
            timer_gen: 0,
            resubscribe: false,
        })
        .collect();
    let pres = (0..pop.presentities)
        .map(|_| Pres {
            etag: Inline::EMPTY,
            inflight: false,
            pending_modify: NONE,
            seq: 0,
            acked_seq: 0,
            cseq: 0,
            timer_gen: 0,
            watchers: 0,
        })
        .collect();

    let server_start = opts.server_pid.and_then(procstat::sample_tree);
    if let (Some(pid), None) = (opts.server_pid, server_start) {
        return Err(format!("--server-pid {pid}: no such process"));
    }
    let cpu_start = procstat::self_cpu();
    let epoch = Instant::now();
    let mut r = Runner {
        scn,
        target: opts.target,
        epoch,
        socks,
        tpl,
        pres,
        watchers,
        txns: Vec::new(),
        free: Vec::new(),
        inflight: 0,
        heap: BinaryHeap::with_capacity(1 << 16),
        stats: Stats::default(),
        rng,
        zipf,
        rr_modify: 0,
        phase: Phase::Start,
        phase_started: 0,
        streams: Vec::new(),
        sends_done_at: NONE,
        phase_empty: true,
        next_stale_check: 0,
        last_rx: 0,
        awaiting_first: 0,
        steady_span: None,
        cut_short: None,
        requests_started: 0,
        body: Vec::with_capacity(1024),
        t1: scn.run.t1_ms * MS,
        t2: scn.run.t2_ms * MS,
        timer_f: scn.run.timer_f_ms * MS,
        reliable,
    };

    let pb = if opts.progress {
        let pb = ProgressBar::with_draw_target(
            Some((scn.estimated_secs() * 1000.0) as u64),
            ProgressDrawTarget::stderr(),
        );
        pb.set_style(
            ProgressStyle::with_template("{prefix} [{elapsed_precise}] {wide_bar} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb.set_prefix(opts.label.clone());
        pb
    } else {
        ProgressBar::hidden()
    };

    let mut events = Events::with_capacity(256);
    let mut rb = udp::recv_batch().with_timestamps();
    let tick = scn.run.tick_us * 1000;
    let read_every_tick = !scn.run.wake_on_receive && scn.run.transport == LinkKind::Udp;
    let mut next_ui = 0u64;
    let mut next_sample = 0u64;
    let mut armed_at = NONE;
    let mut rss_max = server_start.map_or(0, |s| s.rss_kb);
    let mut procs = server_start.map_or(0, |s| s.procs);
    loop {
        let now = r.now();
        if !r.advance(now) {
            break;
        }
        let next_stream = r.fire_streams(now);
        let next_timer = r.fire_timers(now);
        r.flush();
        if now >= next_ui {
            next_ui = now + 250 * MS;
            pb.set_position(now / MS);
            let st = &r.stats;
            let ok: u64 = st.ops.iter().map(|o| o.ok).sum();
            let bad: u64 = st.ops.iter().map(|o| o.failed + o.timeouts).sum();
            pb.set_message(format!(
                "{:?} sent {} ok {} err {} notify {} inflight {}",
                r.phase, r.requests_started, ok, bad, st.notify.received, r.inflight
            ));
            if let Some(pid) = opts.server_pid
                && now >= next_sample
                && let Some(s) = procstat::sample_tree(pid)
            {
                next_sample = now + SEC;
                rss_max = rss_max.max(s.rss_kb);
                procs = procs.max(s.procs);
            }
        }
        let more = r
            .socks
            .iter()
            .any(|s| s.more || (s.out.pending() > 0 && !s.blocked));
        let timeout = if more {
            Some(Duration::ZERO)
        } else {
            let now2 = r.now();
            // reading on ticks, a NOTIFY waits for the next one to be answered: keep them close
            let idle_cap = if read_every_tick { 5 * MS } else { 50 * MS };
            let next = next_stream
                .min(next_timer)
                .min(next_ui)
                .min(now2 + idle_cap);
            let wake = next.max(now2 + tick);
            // re-arm only when the armed wake-up is gone or too late (saves a syscall per
            // response-driven wake-up)
            if armed_at == NONE || armed_at <= now2 || armed_at > wake {
                arm(&tfd, Duration::from_nanos(wake - now2));
                armed_at = wake;
            }
            // the timerfd wakes us; the poll timeout is a safety net
            Some(Duration::from_millis(100))
        };
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        for ev in events.iter() {
            if ev.token() == timer_token {
                clear_timer(&tfd);
                armed_at = NONE;
            }
        }
        for ev in events.iter() {
            if ev.is_writable()
                && let Some(s) = r.socks.get_mut(ev.token().0)
            {
                s.blocked = false;
            }
        }
        for i in 0..r.socks.len() {
            // edge-triggered: drain every socket that may hold data
            if r.socks[i].more
                || read_every_tick
                || events.iter().any(|e| {
                    e.token() == Token(i) && (e.is_readable() || e.is_read_closed() || e.is_error())
                })
            {
                r.drain_socket(i, &mut rb)
                    .map_err(|e| format!("recv: {e}"))?;
            }
        }
        r.flush();
    }
    let end = r.now();
    pb.finish_and_clear();
    if r.phase < Phase::Teardown {
        r.count_stale();
    }
    // whatever is still open has not been answered in time
    for t in &r.txns {
        if t.live {
            r.stats.ops[t.op as usize].timeouts += 1;
        }
    }
    let cpu = procstat::self_cpu().saturating_sub(cpu_start);
    let wall = end as f64 / 1e9;
    let mut rep = Report {
        scenario: scn.name.clone(),
        target: opts.target.to_string(),
        wall_secs: wall,
        cut_short: r.cut_short.clone(),
        ..Report::default()
    };
    rep.fill(&r.stats, r.steady_span);
    let msgs = r.stats.msgs_sent + r.stats.msgs_received;
    rep.loadgen = SelfReport {
        cpu_secs: cpu.as_secs_f64(),
        cpu_pct: cpu.as_secs_f64() * 100.0 / wall.max(1e-9),
        msgs_sent: r.stats.msgs_sent,
        msgs_received: r.stats.msgs_received,
        msgs_per_sec: msgs as f64 / wall.max(1e-9),
        msgs_per_cpu_sec: msgs as f64 / cpu.as_secs_f64().max(1e-9),
        sockets: scn.run.sockets,
        socket_rcvbuf: rcv,
        socket_sndbuf: snd,
        parse_errors: r.stats.parse_errors,
        send_errors: r.stats.send_errors,
        stray_responses: r.stats.stray_responses,
        publish_coalesced: r.stats.publish_coalesced,
    };
    if let Some(e) = &r.stats.first_parse_error {
        eprintln!("loadgen: first unreadable datagram: {e}");
    }
    if let (Some(pid), Some(s0)) = (opts.server_pid, server_start) {
        let s1 = procstat::sample_tree(pid).unwrap_or(s0);
        let cpu = s1.cpu.saturating_sub(s0.cpu).as_secs_f64();
        let ops = rep.server_ops();
        rep.server = Some(ServerReport {
            pid,
            processes: procs.max(s1.procs),
            cpu_secs: cpu,
            cpu_pct: cpu * 100.0 / wall.max(1e-9),
            rss_kb_start: s0.rss_kb,
            rss_kb_end: s1.rss_kb,
            rss_kb_max: rss_max.max(s1.rss_kb),
            ops,
            cpu_ms_per_1k_ops: if ops > 0 {
                cpu * 1000.0 * 1000.0 / ops as f64
            } else {
                0.0
            },
        });
    }
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        assert!(check_loopback(&"127.0.0.1:5060".parse().unwrap()).is_ok());
        assert!(check_loopback(&"127.3.2.1:5060".parse().unwrap()).is_ok());
        assert!(check_loopback(&"[::1]:5060".parse().unwrap()).is_ok());
        let e = check_loopback(&"10.0.0.1:5060".parse().unwrap()).unwrap_err();
        assert!(e.contains("loopback"), "{e}");
        assert!(check_loopback(&"[2001:db8::1]:5060".parse().unwrap()).is_err());
        assert!(check_loopback(&"0.0.0.0:5060".parse().unwrap()).is_err());
    }
}
