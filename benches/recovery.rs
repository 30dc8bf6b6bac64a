//! Start-up recovery at the spec's scale: 200,000 published presentities with 5 watchers each
//! (1,000,000 subscriptions). An engine with the server's features and durability is fed the
//! PUBLISHes and SUBSCRIBEs in ticks of a few thousand messages, each tick's changes committed
//! to a state journal in a temporary directory; then a fresh process (this binary again, with
//! `RECOVERY_REPLAY_DIR` set) does what the server does at start: `Journal::open` (replay), a
//! new engine with the same features, `set_wall_clock` and `restore`, and the first tick, which
//! composes the presentities and places the restored watchers. One line: records, bytes on
//! disk, the time of each step and in all, the restored counts and the resident memory.
//!
//! `RECOVERY_PRESENTITIES` (200000), `RECOVERY_WATCHERS_PER` (5) and `RECOVERY_TICK` (messages
//! per tick while building, 4096) change the sizes; `RECOVERY_KEEP=1` leaves the journal in
//! place, and `RECOVERY_REPLAY_DIR=<dir>` (with the same sizes) times the recovery of a kept
//! journal only (for a profiler).

mod common;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::dir_bytes;
use common::sip::{initial_publish as publish, watcher_subscribe as subscribe};
use criterion::{Criterion, criterion_group, criterion_main};
use presenced::config::Config;
use presenced::store::journal::{Change, Journal, JournalOptions};
use presenced_systems::presence::components::Publication;
use presenced_systems::sip::Method;
use presenced_systems::stats::method_index;
use presenced_systems::subscription::Subscription;
use presenced_systems::{Engine, Inbound, Outbound, Time};

/// Unix time of the building engine's time 0.
const EPOCH_MS: i64 = 1_800_000_000_000;
/// How much later the recovering process starts (well within the 3600 s expiries).
const DOWNTIME_MS: i64 = 5_000;
const REPLAY_DIR: &str = "RECOVERY_REPLAY_DIR";

fn env(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a number")),
        Err(_) => default,
    }
}

#[derive(Clone, Copy)]
struct Sizes {
    presentities: usize,
    watchers_per: usize,
    tick: usize,
}

impl Sizes {
    fn from_env() -> Sizes {
        Sizes {
            presentities: env("RECOVERY_PRESENTITIES", 200_000).max(1),
            watchers_per: env("RECOVERY_WATCHERS_PER", 5),
            tick: env("RECOVERY_TICK", 4096).max(1),
        }
    }

    fn subscriptions(&self) -> usize {
        self.presentities * self.watchers_per
    }

    /// A publication's two records and one per subscription.
    fn records(&self) -> usize {
        2 * self.presentities + self.subscriptions()
    }
}

/// An engine with the server's features (`server::build_engine` on the shipped configuration,
/// privacy letting everyone watch), no users, without durability yet.
fn engine(seed: u64) -> Engine {
    let mut config = Config::load(None).expect("the default configuration");
    config.privacy.default = "allow".into();
    let hash_seed = u128::from(seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut e =
        presenced::server::build_engine(&config, (seed, hash_seed), String::new(), None, &[]);
    e.set_users(Vec::new());
    e
}

/// One tick of `inbound` at `now`, its changes committed to `journal`; what it sent is dropped
/// (the watchers never answer: all of this happens well within Timer E).
fn step(
    e: &mut Engine,
    journal: &mut Journal,
    now: Time,
    inbound: Vec<Inbound>,
    out: &mut Vec<Outbound>,
    changes: &mut Vec<Change>,
) {
    out.clear();
    e.tick(now, inbound, out);
    changes.clear();
    e.take_changes(changes);
    journal.commit(changes).expect("journal commit");
}

/// Resident and peak resident memory of this process, in MB.
fn rss_mb() -> (f64, f64) {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The state the spec recovers, built through SIP and journaled in `dir`.
fn build(dir: &Path, sizes: Sizes) {
    let (presentities, subscriptions) = (sizes.presentities, sizes.subscriptions());
    let t0 = Instant::now();
    let mut e = engine(1);
    e.add_feature(presenced_systems::durable::feature());
    e.reserve_entities(u32::try_from(2 * presentities + subscriptions).unwrap_or(u32::MAX));
    e.set_wall_clock(Time(0), EPOCH_MS);
    let options = JournalOptions {
        sync: false,
        ..JournalOptions::default()
    };
    let (mut journal, old) = Journal::open(dir, options).expect("journal open");
    assert!(old.is_empty(), "{} is not empty", dir.display());
    // one instant for the whole build: no NOTIFY is retransmitted or times out, and nothing
    // expires
    let now = Time(1);
    let (mut out, mut changes) = (Vec::new(), Vec::new());
    let mut ticks = 0u64;
    let mut i = 0;
    while i < presentities {
        let end = (i + sizes.tick).min(presentities);
        let msgs = (i..end).map(publish).collect();
        step(&mut e, &mut journal, now, msgs, &mut out, &mut changes);
        ticks += 1;
        i = end;
    }
    let mut i = 0;
    while i < subscriptions {
        let end = (i + sizes.tick).min(subscriptions);
        let msgs = (i..end).map(|i| subscribe(i, presentities)).collect();
        step(&mut e, &mut journal, now, msgs, &mut out, &mut changes);
        ticks += 1;
        i = end;
    }
    let stats = e.stats_snapshot();
    let sent = |m: Method| stats.responses_sent.0[method_index(m)];
    let (pubs, subs) = (sent(Method::Publish), sent(Method::Subscribe));
    let failed = |r: [u64; 6]| r[2..].iter().sum::<u64>();
    assert_eq!(
        (pubs[1], failed(pubs)),
        (presentities as u64, 0),
        "PUBLISH answers (2xx, 3xx-6xx)"
    );
    assert_eq!(
        (subs[1], failed(subs)),
        (subscriptions as u64, 0),
        "SUBSCRIBE answers (2xx, 3xx-6xx)"
    );
    assert_eq!(
        (stats.client_timeouts, stats.notifies_failed),
        (0, 0),
        "NOTIFY timeouts and failures"
    );
    assert_eq!(
        e.count::<Publication>(),
        presentities as u64,
        "publications"
    );
    assert_eq!(
        e.count::<Subscription>(),
        subscriptions as u64,
        "subscriptions"
    );
    let js = journal.stats();
    assert_eq!(js.keys, sizes.records(), "journal keys");
    eprintln!(
        "recovery/build: {presentities} publications, {subscriptions} subscriptions in {ticks} ticks \
of {} messages, {} records ({:.1} MB live, {:.1} MB in {} segments) in {:.1} s",
        sizes.tick,
        js.keys,
        js.live_bytes as f64 / 1e6,
        js.total_bytes as f64 / 1e6,
        js.segments,
        t0.elapsed().as_secs_f64(),
    );
}

/// What the server does at start on the journal in `dir`, timed (`server::run`, `open_journal`,
/// then its first tick).
fn recover(dir: &Path, sizes: Sizes) {
    let (presentities, subscriptions) = (sizes.presentities, sizes.subscriptions());
    let bytes = dir_bytes(dir);
    let t0 = Instant::now();
    let mut e = engine(2);
    // a presentity and its publication are two entities
    e.reserve_entities(u32::try_from(2 * presentities).unwrap_or(u32::MAX));
    let unix_ms = EPOCH_MS + DOWNTIME_MS;
    e.set_wall_clock(Time(0), unix_ms);
    let setup = t0.elapsed();

    let t = Instant::now();
    let (mut journal, records) = Journal::open(dir, JournalOptions::default()).expect("replay");
    let replay = t.elapsed();

    let t = Instant::now();
    e.add_feature(presenced_systems::durable::feature());
    let done = e.restore(Time(0), &records);
    let restore = t.elapsed();
    let n_records = records.len();
    drop(records);

    let t = Instant::now();
    let mut out = Vec::new();
    e.tick(Time(1), [], &mut out);
    let first_tick = t.elapsed();

    // the restore's and the first tick's own changes, made durable before the tick's messages
    // may go (the writer thread's work in the server)
    let t = Instant::now();
    let mut changes = Vec::new();
    e.take_changes(&mut changes);
    journal.commit(&changes).expect("journal commit");
    let commit = t.elapsed();
    let total = t0.elapsed();
    let (rss, peak) = rss_mb();

    let publications = e.count::<Publication>();
    let live = e.count::<Subscription>();
    eprintln!(
        "recovery: {n_records} records, {:.1} MB on disk; setup {:.0} ms, replay {:.0} ms, \
restore {:.0} ms, first tick {:.0} ms ({} messages out), commit of {} changes {:.0} ms, \
total {:.0} ms; restored {} publications, {} subscriptions ({} and {} expired, {} unreadable); \
RSS {:.0} MB (peak {:.0} MB)",
        bytes as f64 / 1e6,
        ms(setup),
        ms(replay),
        ms(restore),
        ms(first_tick),
        out.len(),
        changes.len(),
        ms(commit),
        ms(total),
        done.publications,
        done.subscriptions,
        done.expired,
        done.subscriptions_expired,
        done.unreadable,
        rss,
        peak,
    );
    assert_eq!(n_records, sizes.records(), "records replayed");
    assert_eq!(
        (done.publications, done.subscriptions),
        (presentities, subscriptions),
        "restored (publications, subscriptions)"
    );
    assert_eq!(
        (done.expired, done.subscriptions_expired, done.unreadable),
        (0, 0, 0),
        "restored (expired publications, expired subscriptions, unreadable)"
    );
    assert_eq!(
        (publications, live),
        (presentities as u64, subscriptions as u64),
        "live (publications, subscriptions) after the first tick"
    );
}

fn bench(_c: &mut Criterion) {
    let sizes = Sizes::from_env();
    if let Some(dir) = std::env::var_os(REPLAY_DIR) {
        recover(Path::new(&dir), sizes);
        return;
    }
    let dir: PathBuf =
        std::env::temp_dir().join(format!("presenced-bench-recovery-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    build(&dir, sizes);
    // recovery in a process of its own, as after a restart: nothing of the build is left in
    // its heap
    let status = std::process::Command::new(std::env::current_exe().expect("this binary"))
        .args(std::env::args_os().skip(1))
        .env(REPLAY_DIR, OsStr::new(&dir))
        .status()
        .expect("run the recovery");
    if std::env::var_os("RECOVERY_KEEP").is_some() {
        eprintln!("recovery: journal kept in {}", dir.display());
    } else {
        let _ = fs::remove_dir_all(&dir);
    }
    assert!(status.success(), "recovery failed: {status}");
}

criterion_group!(benches, bench);
criterion_main!(benches);
