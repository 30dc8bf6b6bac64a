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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::journal::{Journal, JournalOptions, WriterMode};
    use bytes::Bytes;
    use presenced_systems::net::{Dest, Transport};

    fn msg(head: &'static str) -> Outbound {
        let addr = "127.0.0.1:5060".parse().unwrap();
        let dest = Dest {
            transport: Transport::Udp,
            addr,
            local: addr,
            conn: None,
        };
        Outbound::whole(dest, Bytes::from_static(head.as_bytes()))
    }

    // A NOTIFY may not overtake the 200 to its SUBSCRIBE either: many clients answer a NOTIFY
    // of a dialog they do not know yet with 481.
    #[test]
    fn output_waits_for_its_batch_in_tick_order() {
        let dir = std::env::temp_dir().join(format!("presenced-gate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (journal, _) = Journal::open(&dir, JournalOptions::default()).unwrap();
        let writer = JournalWriter::spawn(
            journal,
            WriterMode::Sync { interval_us: 0 },
            Box::new(|| {}),
        )
        .unwrap();
        let durable = Durable {
            writer: Arc::new(writer),
            hold: true,
        };
        let mut gate = Gate::new(Some(durable.clone()), 100);
        let mut sent = Vec::new();
        gate.pass(
            1,
            [msg("SIP/2.0 200 OK\r\n"), msg("NOTIFY sip:w@x SIP/2.0\r\n")].into_iter(),
            |m| sent.push(m.head),
        );
        // a later tick with nothing to write waits behind it
        gate.pass(1, [msg("SIP/2.0 202 Later\r\n")].into_iter(), |m| {
            sent.push(m.head)
        });
        assert!(sent.is_empty() && gate.holding());
        gate.release(|m| sent.push(m.head));
        assert!(sent.is_empty());
        durable
            .writer
            .submit(1, vec![presenced_systems::durable::Change::Delete(7)]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while durable.writer.durable() < 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        gate.release(|m| sent.push(m.head));
        assert_eq!(
            sent,
            [
                &b"SIP/2.0 200 OK\r\n"[..],
                b"NOTIFY sip:w@x SIP/2.0\r\n",
                b"SIP/2.0 202 Later\r\n"
            ]
        );
        assert!(!gate.holding());
        // with nothing held and the batch durable, output goes at once
        gate.pass(1, [msg("SIP/2.0 200 OK\r\n")].into_iter(), |m| {
            sent.push(m.head)
        });
        assert_eq!(sent.len(), 4);
        drop(gate);
        drop(durable);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
