//! The state journal under the server's write load: 10,000, 50,000 and 100,000 changes per
//! second of ~300-byte values over 200,000 keys, paced in 1 ms ticks (10, 50, 100 changes a
//! tick), through a `JournalWriter` in Sync mode for 3 s each on a temporary directory. One
//! line per rate: fsyncs per second, changes and ticks per fsync (group commit), CPU time of
//! the writer thread per 1,000 changes, submit-to-durable latency p50/p99, and the time to
//! replay the journal it left.

mod common;

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::dir_bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use hdrhistogram::Histogram;
use presenced::store::journal::{Change, Journal, JournalOptions, JournalWriter, WriterMode};

const KEYS: u64 = 200_000;
const VALUE: usize = 300;
const SECONDS: u64 = 3;
const WRITER: &str = "journal-writer";

/// CPU time the thread named `name` of this process has used: nanoseconds from schedstat,
/// else clock ticks from stat.
fn thread_cpu(name: &str) -> Option<Duration> {
    for e in fs::read_dir("/proc/self/task").ok()? {
        let p = e.ok()?.path();
        if fs::read_to_string(p.join("comm")).ok()?.trim() != name {
            continue;
        }
        if let Some(ns) = fs::read_to_string(p.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        {
            return Some(Duration::from_nanos(ns));
        }
        let stat = fs::read_to_string(p.join("stat")).ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf has no preconditions
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        return Some(Duration::from_nanos(ticks * 1_000_000_000 / hz));
    }
    None
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// One tick's changes: puts of ~300 bytes, one in twenty a delete.
fn tick_changes(rng: &mut Rng, n: u64, tick: u64, template: &[u8]) -> Vec<Change> {
    (0..n)
        .map(|i| {
            let r = rng.next();
            let key = 1 << 56 | (r % KEYS);
            if r >> 59 == 0 {
                Change::Delete(key)
            } else {
                let mut v = template[..VALUE - 16 + (r >> 40) as usize % 32].to_vec();
                v[..8].copy_from_slice(&tick.to_le_bytes());
                v[8..16].copy_from_slice(&i.to_le_bytes());
                Change::Put(key, v)
            }
        })
        .collect()
}

fn tempdir(rate: u64) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "presenced-bench-journal-{}-{rate}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&d);
    d
}

fn run(rate: u64) {
    let per_tick = rate / 1000;
    let ticks = SECONDS * 1000;
    let dir = tempdir(rate);
    let (journal, _) = Journal::open(&dir, JournalOptions::default()).expect("open");
    let fsyncs = Arc::new(AtomicU64::new(0));
    let (tx, rx) = crossbeam_channel::unbounded::<()>();
    let wake = {
        let fsyncs = fsyncs.clone();
        Box::new(move || {
            fsyncs.fetch_add(1, Ordering::Relaxed);
            let _ = tx.send(());
        })
    };
    let w =
        JournalWriter::spawn(journal, WriterMode::Sync { interval_us: 1000 }, wake).expect("spawn");
    let template: Vec<u8> = (0..VALUE + 32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ rate);
    // prepared ahead, so that the pacing thread only submits
    let batches: Vec<Vec<Change>> = (1..=ticks)
        .map(|t| tick_changes(&mut rng, per_tick, t, &template))
        .collect();
    let submitted: Vec<AtomicU64> = (0..=ticks).map(|_| AtomicU64::new(0)).collect();
    let cpu0 = thread_cpu(WRITER).unwrap_or_default();
    let t0 = Instant::now();
    let hist = std::thread::scope(|s| {
        let (w, submitted) = (&w, &submitted);
        // woken after each fsync: every tick now durable gets its latency
        let observer = s.spawn(move || {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
            let mut seen = 0;
            while seen < ticks && rx.recv().is_ok() {
                let now = t0.elapsed().as_nanos() as u64;
                let d = w.durable();
                for seq in seen + 1..=d {
                    let at = submitted[seq as usize].load(Ordering::Acquire);
                    h.saturating_record(now.saturating_sub(at) / 1000);
                }
                seen = seen.max(d);
            }
            h
        });
        for (i, b) in batches.into_iter().enumerate() {
            let tick = i as u64 + 1;
            let due = t0 + Duration::from_millis(tick);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            submitted[tick as usize].store(t0.elapsed().as_nanos() as u64, Ordering::Release);
            w.submit(tick, b);
        }
        observer.join().expect("observer")
    });
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = thread_cpu(WRITER).unwrap_or_default().saturating_sub(cpu0);
    w.close().expect("close");
    let n = fsyncs.load(Ordering::Relaxed).max(1) as f64;
    let changes = (ticks * per_tick) as f64;
    let size = dir_bytes(&dir);
    let t = Instant::now();
    let (_, live) = Journal::open(&dir, JournalOptions::default()).expect("reopen");
    let replay = t.elapsed();
    eprintln!(
        "journal_sync_{rate}/s: {:.0} fsyncs/s, {:.1} changes ({:.2} ticks) per fsync, \
writer CPU {:.3} ms per 1k changes, submit->durable p50 {:.2} ms p99 {:.2} ms max {:.2} ms; \
replay of {} keys, {:.1} MB: {:.0} ms",
        n / elapsed,
        changes / n,
        ticks as f64 / n,
        cpu.as_secs_f64() * 1e3 / (changes / 1000.0),
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.max() as f64 / 1000.0,
        live.len(),
        size as f64 / 1e6,
        replay.as_secs_f64() * 1e3,
    );
    drop(live);
    let _ = fs::remove_dir_all(&dir);
}

fn bench(_c: &mut Criterion) {
    for rate in [10_000, 50_000, 100_000] {
        run(rate);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
