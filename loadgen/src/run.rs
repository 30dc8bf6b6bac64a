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
//!
//! The modules: `schedule` plays the phases and their streams, `requests` writes what each
//! operation sends and `inbound` handles what comes back, over `transactions` (Timers E/F,
//! refreshes) and the `population`'s state; `privacy` writes the rules of a `[rules]` run and
//! follows each subscription's authorization state; `lists` writes the lists of a `[lists]` run
//! and reads their NOTIFYs; `auth` keeps each user's Digest state (`[auth]`) and answers
//! challenges; `links` and `wakeup` do the socket I/O and the timerfd; `report` shows progress
//! and makes the report.

mod auth;
mod inbound;
mod links;
mod lists;
mod population;
mod privacy;
mod report;
mod requests;
mod schedule;
mod transactions;
mod wakeup;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mio::{Events, Poll};

use crate::msgs::Templates;
use crate::scenario::{LinkKind, Scenario};
use crate::stats::{Report, RulesReport, Stats};
use crate::udp;
use links::Sock;
use population::{Pres, Watcher};
use report::Monitor;
use schedule::{Phase, Stream};
use transactions::{TimerKind, Txn};
use wakeup::Wakeup;

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
    /// The target's XCAP root for `[rules]` (overrides `rules.xcap`).
    pub xcap: Option<String>,
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
    /// The rules written before the run, when the scenario has them.
    rules: Option<RulesReport>,
    /// The lists written before the run and what they have seen (`[lists]`).
    lists: Option<lists::ListRun>,
    /// The users' Digest states (`[auth]`).
    auth: Option<auth::Auth>,
}

fn elapsed_ns(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

impl Runner<'_> {
    fn now(&self) -> u64 {
        elapsed_ns(self.epoch)
    }

    /// At the end of the run: the last counts of stale watchers and of unanswered requests.
    fn close(&mut self) {
        self.final_stale_count();
        self.count_unanswered();
    }
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
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let opened = links::open(&scn.run, opts.target, &poll)?;
    let mut wakeup = Wakeup::new(&poll)?;
    let reliable = scn.run.transport == LinkKind::Tcp;
    let pop = &scn.population;
    let tpl = Templates::new(
        new_run_id(),
        &pop.domain,
        &opts.namespace,
        &opened.locals,
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
    let mut watchers = population::watchers(pop, &zipf, &mut rng);
    let pres = population::presentities(pop);
    // before the clock starts: the upload is not part of the measured run
    let rules = privacy::install(scn, opts, &mut watchers)?;
    let lists = lists::install(scn, opts, &zipf)?;
    let mut mon = Monitor::start(scn, opts)?;
    let mut r = Runner {
        scn,
        target: opts.target,
        epoch: Instant::now(),
        socks: opened.socks,
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
        rules,
        lists,
        auth: scn.auth.enabled().then(|| {
            auth::Auth::new(
                &scn.auth.password,
                pop.presentities as usize,
                pop.watchers as usize,
            )
        }),
    };
    play(&mut r, &mut poll, &mut wakeup, &mut mon)?;
    let end = r.now();
    mon.stop();
    r.close();
    Ok(mon.report(&r, end, opts, (opened.rcvbuf, opened.sndbuf)))
}

/// The event loop: send what is due, fire timers, sleep until the next thing to do or an
/// arrival, read, and again until the schedule is done.
fn play(
    r: &mut Runner<'_>,
    poll: &mut Poll,
    wakeup: &mut Wakeup,
    mon: &mut Monitor,
) -> Result<(), String> {
    let mut events = Events::with_capacity(256);
    let mut rb = udp::recv_batch().with_timestamps();
    let tick = r.scn.run.tick_us * 1000;
    let read_every_tick = !r.scn.run.wake_on_receive && r.scn.run.transport == LinkKind::Udp;
    loop {
        let now = r.now();
        if !r.advance(now) {
            return Ok(());
        }
        let next_stream = r.fire_streams(now);
        let next_timer = r.fire_timers(now);
        r.flush();
        mon.update(now, r);
        let timeout = if r.io_pending() {
            Some(Duration::ZERO)
        } else {
            let now2 = r.now();
            // reading on ticks, a NOTIFY waits for the next one to be answered: keep them
            // close; and a challenge for its retry, which the operation's latency includes,
            // so with [auth] and requests open read on every tick
            let idle_cap = match read_every_tick {
                true if r.auth.is_some() && r.inflight > 0 => tick,
                true => 5 * MS,
                false => 50 * MS,
            };
            let next = next_stream
                .min(next_timer)
                .min(mon.next_update())
                .min(now2 + idle_cap);
            wakeup.sleep_until(next.max(now2 + tick), now2)
        };
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        wakeup.on_events(&events);
        r.on_ready(&events, &mut rb, read_every_tick)?;
        r.flush();
    }
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
