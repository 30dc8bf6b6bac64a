//! [`JournalWriter`]: the journal on a thread of its own, for the server. The engine submits
//! each tick's changes with the tick's sequence number and holds the tick's responses until
//! [`JournalWriter::durable`] reaches it; the writer calls the wake-up callback after every
//! fsync so that the I/O thread looks.
//!
//! Group commit: the thread takes every batch waiting in its channel, writes them all with one
//! write (each still its own frame, so each tick stays atomic) and makes them durable with one
//! fdatasync; ticks that arrive during an fsync go together into the next.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::{Change, Journal};

/// When a batch counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterMode {
    /// Durable before acknowledged: every group of batches is fsynced before `durable`
    /// moves, fsyncs at most one per `interval_us` (0: as soon as anything waits). On a
    /// fast disk an fsync takes a fraction of a millisecond and costs the CPU of its I/O
    /// submissions: spacing them lets a busy server share each among more ticks.
    Sync { interval_us: u64 },
    /// Acknowledged at once: batches are gathered and written and fsynced every
    /// `window_ms` (a crash may cost that much; closing the writer writes everything).
    Async { window_ms: u64 },
}

/// Intervals up to this are slept through rather than waited out on the channel.
const SLEEP_THROUGH: Duration = Duration::from_millis(5);

/// Staged bytes past which they are written before their fsync is due.
const STAGED_MAX: u64 = 4 << 20;

/// Batches (ticks) that may wait for the writer.
const QUEUE: usize = 1024;
/// Tries of a failing write or fsync at close before giving up (forever before that).
const CLOSE_ATTEMPTS: u32 = 5;

struct Batch {
    seq: u64,
    changes: Vec<Change>,
}

/// A journal owned by a background thread that writes what is submitted to it.
pub struct JournalWriter {
    tx: Option<Sender<Batch>>,
    durable: Arc<AtomicU64>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl std::fmt::Debug for JournalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalWriter")
            .field("durable", &self.durable())
            .finish_non_exhaustive()
    }
}

impl JournalWriter {
    /// Starts the writer thread (named `journal-writer`) on `journal`; `wake` is called on
    /// that thread after each fsync. The writer fsyncs by `mode` whatever `JournalOptions::sync`
    /// says, and compacts between commits by `JournalOptions::compact_step_bytes` (at least
    /// twice what each group of commits wrote), and at close.
    pub fn spawn(
        journal: Journal,
        mode: WriterMode,
        wake: Box<dyn Fn() + Send>,
    ) -> io::Result<JournalWriter> {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        let durable = Arc::new(AtomicU64::new(0));
        let worker = Worker {
            step: journal.opts.compact_step_bytes.max(1),
            j: journal,
            window: match mode {
                WriterMode::Sync { interval_us: 0 } => None,
                WriterMode::Sync { interval_us } => Some(Duration::from_micros(interval_us)),
                WriterMode::Async { window_ms } => Some(Duration::from_millis(window_ms)),
            },
            rx,
            durable: durable.clone(),
            wake,
            written: 0,
            dirty: false,
            staged: false,
            last_sync: Instant::now(),
        };
        let thread = thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || worker.run())?;
        Ok(JournalWriter {
            tx: Some(tx),
            durable,
            thread: Some(thread),
        })
    }

    /// Hands the changes of tick `seq` (strictly increasing) to the writer. Blocks while
    /// the queue is full: back-pressure, so that a disk that falls behind slows the engine
    /// (whose bounded inputs then answer 503) instead of queueing batches in memory without
    /// limit.
    pub fn submit(&self, seq: u64, changes: Vec<Change>) {
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(Batch { seq, changes }).is_ok());
        if !sent {
            tracing::error!("journal: the writer thread is gone: batch {seq} not written");
        }
    }

    /// The highest seq whose batch is durable (0 before any).
    pub fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Writes and fsyncs everything submitted, and stops the thread (at SIGTERM). An error
    /// when the last write or fsync kept failing.
    pub fn close(mut self) -> io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        // the thread sees the channel disconnected once it has taken every batch
        drop(self.tx.take());
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("journal: the writer thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!("journal: closing: {e}");
        }
    }
}

struct Worker {
    j: Journal,
    window: Option<Duration>,
    rx: Receiver<Batch>,
    durable: Arc<AtomicU64>,
    wake: Box<dyn Fn() + Send>,
    step: u64,
    /// The highest seq written.
    written: u64,
    /// Written since the last fsync.
    dirty: bool,
    /// Batches staged and not yet written: within an interval they are gathered in memory
    /// and written with one `write` when the fsync is due, not one per tick.
    staged: bool,
    last_sync: Instant,
}

impl Worker {
    fn run(mut self) -> io::Result<()> {
        loop {
            let deadline = self
                .window
                .filter(|_| self.dirty || self.staged)
                .map(|w| self.last_sync + w);
            let first = if self.j.compaction_due() {
                // compact while nothing waits, checking for batches between steps
                match self.rx.try_recv() {
                    Ok(b) => Some(b),
                    Err(TryRecvError::Empty) => {
                        if deadline.is_none_or(|d| Instant::now() < d) {
                            self.compact(self.step);
                            continue;
                        }
                        None
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            } else if let Some(d) = deadline
                && self.window.is_some_and(|w| w <= SLEEP_THROUGH)
            {
                // a short interval is slept through: waking for every tick's batch costs two
                // context switches each, more than the fsync it waits for
                std::thread::sleep(d.saturating_duration_since(Instant::now()));
                match self.rx.try_recv() {
                    Ok(b) => Some(b),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => break,
                }
            } else if let Some(d) = deadline {
                // a long window waits on the channel, so that a close is seen at once
                match self.rx.recv_deadline(d) {
                    Ok(b) => Some(b),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match self.rx.recv() {
                    Ok(b) => Some(b),
                    Err(_) => break,
                }
            };
            let mut group = 0;
            if let Some(b) = first {
                self.stage(b);
                while let Ok(b) = self.rx.try_recv() {
                    self.stage(b);
                }
                self.staged = true;
            }
            let due = self
                .window
                .is_none_or(|w| Instant::now() >= self.last_sync + w);
            if self.staged && (due || self.j.staged_bytes() >= STAGED_MAX) {
                group = self.j.staged_bytes();
                self.retry("write", false, Journal::write_staged)?;
                self.staged = false;
                self.dirty = true;
            }
            if self.dirty && due {
                self.sync(false)?;
            }
            if self.j.compaction_due() {
                // one step per group, of at least twice what the group wrote, so that
                // compaction keeps up even when batches never stop coming (the files then
                // stay within about three times the live bytes)
                self.compact(self.step.max(group.saturating_mul(2)));
            }
        }
        self.retry("write", true, Journal::write_staged)?;
        if self.dirty || self.staged {
            self.sync(true)?;
        }
        self.finish_compaction();
        Ok(())
    }

    /// At close, with nothing left to commit: finishes the compaction under way (which would
    /// otherwise be thrown away at the next open) and runs one more if the files still call
    /// for it.
    fn finish_compaction(&mut self) {
        let mut started = 0;
        while self.j.compaction_due() {
            if !self.j.compacting() {
                started += 1;
                if started > 1 {
                    break;
                }
            }
            self.compact(self.step);
        }
    }

    fn stage(&mut self, b: Batch) {
        if b.seq <= self.written {
            tracing::warn!(
                "journal: batch {} submitted after {}: seqs must increase",
                b.seq,
                self.written
            );
        }
        if let Err(e) = self.j.stage(&b.changes) {
            // a batch that no retry can write (too long for a frame)
            tracing::error!("journal: batch {} dropped: {e}", b.seq);
        }
        self.written = self.written.max(b.seq);
    }

    fn sync(&mut self, closing: bool) -> io::Result<()> {
        // the interval counts from the start of an fsync: a slow disk is not slowed further
        let started = Instant::now();
        self.retry("fsync", closing, Journal::sync)?;
        self.dirty = false;
        self.last_sync = started;
        self.durable.store(self.written, Ordering::Release);
        (self.wake)();
        Ok(())
    }

    fn compact(&mut self, budget: u64) {
        if let Err(e) = self.j.compact_step(budget) {
            tracing::error!("journal: compaction abandoned: {e}");
        }
    }

    /// Runs `op` until it succeeds, with a growing pause between tries; at close, gives up
    /// after [`CLOSE_ATTEMPTS`].
    fn retry(
        &mut self,
        what: &str,
        closing: bool,
        op: fn(&mut Journal) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut pause = Duration::from_millis(10);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match op(&mut self.j) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::error!("journal: {what} failed (attempt {attempt}): {e}");
                    if closing && attempt >= CLOSE_ATTEMPTS {
                        return Err(e);
                    }
                    thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Model, TempDir, opts};
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counter() -> (Arc<AtomicUsize>, Box<dyn Fn() + Send>) {
        let n = Arc::new(AtomicUsize::new(0));
        let m = n.clone();
        (
            n,
            Box::new(move || {
                m.fetch_add(1, Ordering::Relaxed);
            }),
        )
    }

    fn wait_durable(w: &JournalWriter, seq: u64) {
        let t = Instant::now();
        while w.durable() < seq {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "durable {}",
                w.durable()
            );
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn sync_writer_group_commits_a_thousand_batches() {
        let d = TempDir::new("writer-sync");
        let mut model = Model::new(21);
        let batches: Vec<_> = (0..1000).map(|i| model.batch(i, 4)).collect();
        let (j, _) = Journal::open(&d.0, opts()).unwrap();
        let (wakes, wake) = counter();
        let w = JournalWriter::spawn(j, WriterMode::Sync { interval_us: 0 }, wake).unwrap();
        thread::scope(|s| {
            s.spawn(|| {
                for (i, b) in batches.into_iter().enumerate() {
                    w.submit(i as u64 + 1, b);
                }
            });
        });
        wait_durable(&w, 1000);
        assert_eq!(w.durable(), 1000);
        let n = wakes.load(Ordering::Relaxed);
        assert!((1..=1000).contains(&n), "{n} wakes");
        w.close().unwrap();
        let (_, got) = Journal::open(&d.0, opts()).unwrap();
        assert_eq!(got, model.state());
    }

    #[test]
    fn async_writer_is_durable_after_close() {
        let d = TempDir::new("writer-async");
        let mut model = Model::new(22);
        let (j, _) = Journal::open(&d.0, opts()).unwrap();
        let (wakes, wake) = counter();
        let w = JournalWriter::spawn(j, WriterMode::Async { window_ms: 20 }, wake).unwrap();
        for i in 1..=300 {
            w.submit(i, model.batch(i, 3));
            if i % 50 == 0 {
                thread::sleep(Duration::from_millis(5));
            }
        }
        // the window passes with nothing new: the last batches are synced
        wait_durable(&w, 300);
        let n = wakes.load(Ordering::Relaxed);
        assert!((1..300).contains(&n), "{n} wakes");
        w.submit(301, model.batch(301, 3));
        w.close().unwrap();
        let (_, got) = Journal::open(&d.0, opts()).unwrap();
        assert_eq!(got, model.state());
    }

    #[test]
    fn writer_compacts_between_commits() {
        let d = TempDir::new("writer-compact");
        let mut model = Model::new(23);
        let (j, _) = Journal::open(&d.0, opts()).unwrap();
        let (_, wake) = counter();
        let w = JournalWriter::spawn(j, WriterMode::Sync { interval_us: 0 }, wake).unwrap();
        for i in 1..=600 {
            w.submit(i, model.batch(i, 10));
        }
        w.close().unwrap();
        let (j, got) = Journal::open(&d.0, opts()).unwrap();
        assert_eq!(got, model.state());
        let s = j.stats();
        // 600 × 10 changes of ~130 bytes went through: without compaction ~800 kB
        assert!(
            s.total_bytes < 2 * s.live_bytes + 4 * opts().segment_bytes,
            "{s:?}"
        );
    }

    /// Compaction runs while the writer is open, not only at close: once the commits pause,
    /// the files shrink to about the live size.
    #[test]
    fn writer_compacts_while_open() {
        let d = TempDir::new("writer-compact-open");
        let mut model = Model::new(25);
        let (j, _) = Journal::open(&d.0, opts()).unwrap();
        let (_, wake) = counter();
        let w = JournalWriter::spawn(j, WriterMode::Sync { interval_us: 0 }, wake).unwrap();
        for i in 1..=600 {
            w.submit(i, model.batch(i, 10));
        }
        wait_durable(&w, 600);
        let on_disk = || -> u64 {
            std::fs::read_dir(&d.0)
                .unwrap()
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        };
        let t = Instant::now();
        while on_disk() > 200 << 10 {
            assert!(t.elapsed() < Duration::from_secs(30), "{} bytes", on_disk());
            thread::sleep(Duration::from_millis(5));
        }
        w.close().unwrap();
        let (_, got) = Journal::open(&d.0, opts()).unwrap();
        assert_eq!(got, model.state());
    }

    #[test]
    fn dropping_the_writer_closes_it() {
        let d = TempDir::new("writer-drop");
        let mut model = Model::new(24);
        let (j, _) = Journal::open(&d.0, opts()).unwrap();
        let (_, wake) = counter();
        let w = JournalWriter::spawn(j, WriterMode::Async { window_ms: 1000 }, wake).unwrap();
        for i in 1..=20 {
            w.submit(i, model.batch(i, 3));
        }
        drop(w);
        let (_, got) = Journal::open(&d.0, opts()).unwrap();
        assert_eq!(got, model.state());
    }
}
