//! Responses after durability (`storage.durability`): each tick's state changes go to the
//! journal writer as one batch, and the tick's output (the 200s that acknowledge the changes,
//! and everything after them, in order) is held until that batch is on disk. The I/O loop
//! keeps reading meanwhile, so a slow disk makes the next batches larger, not each request
//! slower. [`Recorder`] is the engine's side (it submits), [`Gate`] the sending side (it
//! holds and releases); with the engine inline both are on the loop's thread.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use presenced_systems::durable::Change;
use presenced_systems::{Engine, Outbound};

use crate::store::journal::JournalWriter;

/// The journal a server writes its live state to, shared by both sides.
#[derive(Clone)]
pub struct Durable {
    pub writer: Arc<JournalWriter>,
    /// True (`sync`): output waits for its batch; false (`async`): output goes at once and
    /// the writer fsyncs on its own schedule.
    pub hold: bool,
}

/// The engine's side: hands each tick's changes to the writer.
pub struct Recorder {
    durable: Option<Durable>,
    /// The last batch submitted (0 before any).
    seq: u64,
    changes: Vec<Change>,
}

impl Recorder {
    pub fn new(durable: Option<Durable>) -> Recorder {
        Recorder {
            durable,
            seq: 0,
            changes: Vec::new(),
        }
    }

    /// After a tick: submit its changes; the batch its output must wait for (0: none).
    pub fn after_tick(&mut self, engine: &mut Engine) -> u64 {
        let Some(d) = &self.durable else {
            return 0;
        };
        engine.take_changes(&mut self.changes);
        if !self.changes.is_empty() {
            self.seq += 1;
            d.writer.submit(self.seq, std::mem::take(&mut self.changes));
        }
        if d.hold { self.seq } else { 0 }
    }
}

/// The sending side: output in tick order, each tick's once its batch is durable.
pub struct Gate {
    durable: Option<Durable>,
    held: VecDeque<(u64, Vec<Outbound>)>,
    held_messages: usize,
    /// Past this many held messages the link reports no room (new requests get 503).
    high_water: usize,
}

/// Longest a stopping server waits for the journal before it gives up on held output.
const SETTLE: Duration = Duration::from_secs(5);

impl Gate {
    pub fn new(durable: Option<Durable>, high_water: usize) -> Gate {
        Gate {
            durable,
            held: VecDeque::new(),
            held_messages: 0,
            high_water,
        }
    }

    fn durable_seq(&self) -> u64 {
        self.durable
            .as_ref()
            .map_or(u64::MAX, |d| d.writer.durable())
    }

    /// Output of a tick that waits for batch `seq`: sent now when nothing is held before it
    /// and its batch is durable, else held (in order).
    pub fn pass(
        &mut self,
        seq: u64,
        out: impl Iterator<Item = Outbound>,
        mut send: impl FnMut(Outbound),
    ) {
        if self.held.is_empty() && seq <= self.durable_seq() {
            out.for_each(&mut send);
            return;
        }
        let out: Vec<Outbound> = out.collect();
        if out.is_empty() {
            return;
        }
        self.held_messages += out.len();
        match self.held.back_mut() {
            // a later tick waiting for the same batch joins it
            Some((s, v)) if *s == seq => v.extend(out),
            _ => self.held.push_back((seq, out)),
        }
    }

    /// Send what has become durable.
    pub fn release(&mut self, mut send: impl FnMut(Outbound)) {
        if self.held.is_empty() {
            return;
        }
        let done = self.durable_seq();
        while let Some((seq, _)) = self.held.front() {
            if *seq > done {
                break;
            }
            let (_, out) = self.held.pop_front().expect("front");
            self.held_messages -= out.len();
            out.into_iter().for_each(&mut send);
        }
    }

    /// True when output waits for the disk.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// True when so much waits for the disk that new requests should be refused.
    pub fn full(&self) -> bool {
        self.held_messages >= self.high_water
    }

    /// At shutdown: wait (a bounded time) for the journal, then send what it made durable.
    pub fn settle(&mut self, mut send: impl FnMut(Outbound)) {
        let until = Instant::now() + SETTLE;
        while self.holding() && Instant::now() < until {
            self.release(&mut send);
            std::thread::sleep(Duration::from_millis(1));
        }
        if self.holding() {
            tracing::warn!(
                "journal: {} responses not sent: their changes were not durable within {SETTLE:?}",
                self.held_messages
            );
        }
    }
}
