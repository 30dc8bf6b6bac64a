//! What the I/O loop drives: the engine, handed inbound messages and asked for what it sends.
//!
//! [`EngineLink`] has two implementations, chosen once at start-up (`engine.inline`):
//! [`InlineEngine`] runs the engine on the loop's own thread between reads and writes (no
//! hand-off and no wake-ups, which on a small machine is most of the cost of a request at
//! moderate rates); [`EngineThread`] runs it on a thread of its own, fed through a bounded
//! channel and waking the loop with its mio `Waker`. The loop is generic over the link, so it
//! has one code path and no dispatch per message.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::Waker;
use presenced_systems::stats::Stats;
use presenced_systems::xdm::DocumentChange;
use presenced_systems::{Engine, Inbound, Outbound, Time};
use tracing::debug;

use super::durable_gate::{Gate, Recorder};
use super::stopwatch::{LOG_TARGET, Stopwatch};
use crate::metrics::{Metrics, Publisher};

/// Messages the loop gathers before it hands them in without waiting for the end of its turn.
pub const BATCH: usize = 1024;

/// Outbox batches waiting for the I/O thread before the engine thread pauses (backpressure:
/// the inbox then fills and new requests get 503).
const OUTBOX_HIGH_WATER: usize = 256;

/// Longest the loop sleeps with nothing to do (the metrics snapshot is taken on its turns).
const IDLE_TURN: Duration = Duration::from_secs(1);

/// What the store tells the engine: committed document changes, in commit order, and the
/// users requests authenticate as (all of them, after each change).
pub struct StoreFeed {
    pub documents: Receiver<DocumentChange>,
    pub users: Receiver<Vec<presenced_systems::auth::UserLogin>>,
    /// Settings changed by a configuration reload (SIGHUP).
    pub settings: Receiver<crate::reload::LiveSettings>,
}

/// How an engine link keeps state changes (`storage.durability`).
pub struct Durability {
    /// None: not kept (`off`).
    pub journal: Option<super::durable_gate::Durable>,
    /// Held messages past which the link takes no new requests.
    pub high_water: usize,
}

/// The I/O loop's side of the engine.
pub trait EngineLink {
    /// True when the engine runs on the loop's thread: the kernel's UDP receive buffer is then
    /// its inbox, and overload is judged there (see `overload::backlog_high`).
    const INLINE: bool;

    /// How long the loop may block in `poll` before the engine needs a turn (None: until an
    /// event).
    fn timeout(&self) -> Option<Duration>;

    /// Requests the engine's inbox takes now; those past it are answered 503 (responses always
    /// pass).
    fn room(&self) -> usize;

    /// Hand in `batch` (left empty, for the next messages) with whatever else is due; what the
    /// engine produces on the way goes to `send`.
    fn hand_in(&mut self, batch: &mut Vec<Inbound>, send: impl FnMut(Outbound));

    /// What the engine has produced since the last call, to `send`.
    fn take_output(&mut self, send: impl FnMut(Outbound));

    /// The loop is about to block in `poll`: false when output already waits, and it must not.
    fn may_sleep(&self) -> bool;

    /// The loop is back from `poll`.
    fn woke(&self);

    /// The loop is stopping: what the engine produced, once the journal has it (a bounded
    /// wait), to `send`.
    fn settle(&mut self, send: impl FnMut(Outbound));

    /// Stop the engine; its counters (an error when it died).
    fn finish(self) -> Result<Stats, String>;
}

/// The engine on the I/O loop's thread.
pub struct InlineEngine {
    engine: Engine,
    start: Instant,
    max_batch: usize,
    /// Committed document changes and users from the store, which wakes the loop after each.
    feed: StoreFeed,
    out: Vec<Outbound>,
    metrics: Publisher,
    recorder: Recorder,
    gate: Gate,
}

impl InlineEngine {
    /// An inline engine reading what the store says from `feed`, at most `max_batch` messages
    /// a tick, publishing snapshots into `metrics`, its state changes kept by `durable`
    /// (whose writer wakes the loop after each fsync).
    pub fn new(
        engine: Engine,
        max_batch: usize,
        feed: StoreFeed,
        metrics: Arc<Metrics>,
        durable: Durability,
    ) -> InlineEngine {
        InlineEngine {
            engine,
            start: Instant::now(),
            max_batch,
            feed,
            out: Vec::new(),
            metrics: Publisher::new(metrics),
            recorder: Recorder::new(durable.journal.clone()),
            gate: Gate::new(durable.journal, durable.high_water),
        }
    }

    fn now(&self) -> Time {
        Time(self.start.elapsed().as_millis() as u64)
    }
}

impl EngineLink for InlineEngine {
    const INLINE: bool = true;

    /// Until the engine's next timer, and at least once a second so that an idle server's
    /// metrics snapshot stays fresh (`/readyz`).
    fn timeout(&self) -> Option<Duration> {
        let now = self.now();
        let timer = self
            .engine
            .next_deadline()
            .map_or(IDLE_TURN, |d| Duration::from_millis(now.until(d)));
        Some(timer.min(IDLE_TURN))
    }

    fn room(&self) -> usize {
        if self.gate.full() { 0 } else { usize::MAX }
    }

    /// Run the engine over the batch (in ticks of at most `max_batch`), and over due timers and
    /// document changes.
    fn hand_in(&mut self, batch: &mut Vec<Inbound>, mut send: impl FnMut(Outbound)) {
        // Changes first: a change committed (and acknowledged over HTTP) before a SIP request
        // arrived is applied before that request is processed.
        let docs: Vec<DocumentChange> = self.feed.documents.try_iter().collect();
        if let Some(users) = self.feed.users.try_iter().last() {
            self.engine.set_users(users);
        }
        if let Some(s) = self.feed.settings.try_iter().last() {
            self.engine.set_trusted_peers(s.trusted_peers);
        }
        let now = self.now();
        let due = self.engine.next_deadline().is_some_and(|d| d <= now);
        // its inbox is the receive buffer: the publisher sees overload in the transport's 503s
        self.metrics.maybe_publish(&self.engine, false);
        if batch.is_empty() && docs.is_empty() && !due {
            return;
        }
        self.engine.submit_documents(docs);
        loop {
            let take = batch.len().min(self.max_batch);
            let timed =
                tracing::enabled!(target: LOG_TARGET, tracing::Level::DEBUG).then(Stopwatch::start);
            let started = Instant::now();
            self.engine.tick(now, batch.drain(..take), &mut self.out);
            let seq = self.recorder.after_tick(&mut self.engine);
            self.metrics.record_tick(started.elapsed());
            if let Some((ms, cpu_ms)) = timed.and_then(|t| t.slow()) {
                debug!(target: LOG_TARGET, ms, cpu_ms, messages = take, "slow tick");
            }
            // the batch and the outbox keep their capacity
            self.gate.pass(seq, self.out.drain(..), &mut send);
            if batch.is_empty() {
                break;
            }
        }
    }

    /// Output held for the journal (the rest left in [`hand_in`](EngineLink::hand_in)).
    fn take_output(&mut self, send: impl FnMut(Outbound)) {
        self.gate.release(send);
    }

    /// The journal writer wakes the loop when held output may go.
    fn may_sleep(&self) -> bool {
        true
    }

    fn woke(&self) {}

    fn settle(&mut self, send: impl FnMut(Outbound)) {
        self.gate.settle(send);
    }

    fn finish(self) -> Result<Stats, String> {
        Ok(self.engine.stats().clone())
    }
}

/// The engine on a thread of its own.
pub struct EngineThread {
    to_engine: Sender<Vec<Inbound>>,
    /// Each tick's output with the journal batch it waits for.
    from_engine: Receiver<(u64, Vec<Outbound>)>,
    gate: Gate,
    /// Messages handed to the engine and not yet taken into a tick.
    in_flight: Arc<AtomicUsize>,
    /// Set while the loop is (about to be) blocked in `poll`: only then does the engine need
    /// to wake it after a tick (a busy loop drains the outbox on its next turn anyway, and a
    /// wake-up per tick is a system call on each side).
    polling: Arc<AtomicBool>,
    /// Most messages in flight; past it new requests get 503.
    inbox_capacity: usize,
    thread: JoinHandle<Stats>,
}

impl EngineThread {
    /// Start `engine` on its own thread, reading what the store says from `feed`, at most
    /// `max_batch` messages a tick; it wakes the loop with `waker`, publishes snapshots into
    /// `metrics` and has its state changes kept by `durable`.
    pub fn spawn(
        engine: Engine,
        feed: StoreFeed,
        max_batch: usize,
        inbox_capacity: usize,
        waker: Arc<Waker>,
        metrics: Arc<Metrics>,
        durable: Durability,
    ) -> io::Result<EngineThread> {
        let (to_engine, inbox) = crossbeam_channel::bounded::<Vec<Inbound>>(inbox_capacity);
        let (outbox, from_engine) = crossbeam_channel::unbounded::<(u64, Vec<Outbound>)>();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let polling = Arc::new(AtomicBool::new(false));
        let side = ThreadSide {
            inbox,
            feed,
            outbox,
            waker,
            polling: polling.clone(),
            in_flight: in_flight.clone(),
            max_batch,
            inbox_capacity,
            metrics: Publisher::new(metrics),
            recorder: Recorder::new(durable.journal.clone()),
        };
        let thread = thread::Builder::new()
            .name("engine".into())
            .spawn(move || side.run(engine))?;
        Ok(EngineThread {
            to_engine,
            from_engine,
            gate: Gate::new(durable.journal, durable.high_water),
            in_flight,
            polling,
            inbox_capacity,
            thread,
        })
    }
}

impl EngineLink for EngineThread {
    const INLINE: bool = false;

    /// The engine keeps its own timers.
    fn timeout(&self) -> Option<Duration> {
        None
    }

    fn room(&self) -> usize {
        if self.gate.full() {
            return 0;
        }
        self.inbox_capacity
            .saturating_sub(self.in_flight.load(Ordering::Acquire))
    }

    fn hand_in(&mut self, batch: &mut Vec<Inbound>, _send: impl FnMut(Outbound)) {
        if batch.is_empty() {
            return;
        }
        // the batch leaves with the messages: the next one is sized like it (a fixed 1,024
        // slots of 120 bytes cost a fresh 120 KB block per request at moderate rates)
        let next = Vec::with_capacity(batch.len().clamp(16, BATCH));
        let batch = std::mem::replace(batch, next);
        let n = batch.len();
        self.in_flight.fetch_add(n, Ordering::AcqRel);
        if self.to_engine.send(batch).is_err() {
            self.in_flight.fetch_sub(n, Ordering::AcqRel);
        }
    }

    fn take_output(&mut self, mut send: impl FnMut(Outbound)) {
        self.gate.release(&mut send);
        while let Ok((seq, msgs)) = self.from_engine.try_recv() {
            self.gate.pass(seq, msgs.into_iter(), &mut send);
        }
    }

    /// Announce the sleep, then look once more: the engine either sees the flag (and wakes the
    /// loop) or its output is already in the channel (both SeqCst).
    fn may_sleep(&self) -> bool {
        self.polling.store(true, Ordering::SeqCst);
        self.from_engine.is_empty()
    }

    fn woke(&self) {
        self.polling.store(false, Ordering::SeqCst);
    }

    fn settle(&mut self, mut send: impl FnMut(Outbound)) {
        self.take_output(&mut send);
        self.gate.settle(send);
    }

    /// Close the inbox (and the outbox): the engine thread ends.
    fn finish(self) -> Result<Stats, String> {
        drop(self.to_engine);
        drop(self.from_engine);
        self.thread
            .join()
            .map_err(|_| "engine thread panicked".to_owned())
    }
}

/// The engine thread's ends of the channels.
struct ThreadSide {
    inbox: Receiver<Vec<Inbound>>,
    feed: StoreFeed,
    outbox: Sender<(u64, Vec<Outbound>)>,
    waker: Arc<Waker>,
    polling: Arc<AtomicBool>,
    in_flight: Arc<AtomicUsize>,
    max_batch: usize,
    inbox_capacity: usize,
    metrics: Publisher,
    recorder: Recorder,
}

impl ThreadSide {
    /// Wait for messages or the next timer, run a tick over a bounded batch, hand what it
    /// produced to the I/O loop and wake it.
    fn run(mut self, mut engine: Engine) -> Stats {
        let start = Instant::now();
        let mut batch: Vec<Inbound> = Vec::with_capacity(self.max_batch);
        let mut out: Vec<Outbound> = Vec::new();
        let mut changed_documents = true; // the start-up snapshot
        loop {
            let now = start.elapsed().as_millis() as u64;
            let wait = engine
                .next_deadline()
                .map_or(1000, |d| d.0.saturating_sub(now))
                .min(1000);
            let mut users_gone = false;
            let mut settings_gone = false;
            if !changed_documents {
                crossbeam_channel::select! {
                    recv(self.inbox) -> m => match m {
                        Ok(v) => batch.extend(v),
                        Err(_) => break,
                    },
                    recv(self.feed.documents) -> d => {
                        if let Ok(d) = d {
                            engine.submit_documents([d]);
                            changed_documents = true;
                        }
                    },
                    recv(self.feed.users) -> u => match u {
                        Ok(u) => engine.set_users(u),
                        // its thread is gone: a closed channel would be ready forever
                        Err(_) => users_gone = true,
                    },
                    recv(self.feed.settings) -> s => match s {
                        Ok(s) => engine.set_trusted_peers(s.trusted_peers),
                        Err(_) => settings_gone = true,
                    },
                    default(Duration::from_millis(wait)) => {}
                }
            }
            if users_gone {
                self.feed.users = crossbeam_channel::never();
            }
            if settings_gone {
                self.feed.settings = crossbeam_channel::never();
            }
            while batch.len() < self.max_batch {
                match self.inbox.try_recv() {
                    Ok(v) => batch.extend(v),
                    Err(_) => break,
                }
            }
            // document changes are never dropped: they are committed (the store waits on a full
            // channel)
            let more: Vec<DocumentChange> = self.feed.documents.try_iter().collect();
            changed_documents |= !more.is_empty();
            engine.submit_documents(more);
            let left = self.in_flight.fetch_sub(batch.len(), Ordering::AcqRel) - batch.len();
            self.metrics
                .maybe_publish(&engine, left >= self.inbox_capacity);
            let now = Time(start.elapsed().as_millis() as u64);
            if batch.is_empty()
                && !changed_documents
                && engine.next_deadline().is_none_or(|d| d > now)
            {
                continue;
            }
            changed_documents = false;
            let started = Instant::now();
            engine.tick(now, batch.drain(..), &mut out);
            let seq = self.recorder.after_tick(&mut engine);
            self.metrics.record_tick(started.elapsed());
            if !out.is_empty() {
                if self.outbox.send((seq, std::mem::take(&mut out))).is_err() {
                    break;
                }
                // only a loop blocked in poll needs the wake-up (see `EngineThread::polling`)
                if self.polling.load(Ordering::SeqCst) {
                    let _ = self.waker.wake();
                }
                while self.outbox.len() > OUTBOX_HIGH_WATER {
                    thread::sleep(Duration::from_micros(200));
                }
            }
        }
        engine.stats().clone()
    }
}
