//! Compaction: the live records of every segment but the active one are copied into a new
//! segment, which then replaces them.
//!
//! Incremental (`Journal::compact_step`, a budget of bytes per call) rather than on a thread of
//! its own: the writer thread calls it between group commits, so the index and the segment
//! table keep one owner and no lock, and no step holds a commit back longer than its budget.
//!
//! Steps, and what a crash after each leaves (replay order is by (top, id), see `SegHeader`):
//! 1. start: the active segment is closed (synced) so that all data so far is compacted; the
//!    output is created as `N.seg.tmp` with `top` = the highest top of the sources. A crash
//!    leaves a `.tmp` file, removed at open: the sources are intact.
//! 2. copy: batches of the sources are read in replay order with positioned reads; a put
//!    whose index entry still points at it is copied verbatim. Tombstones are dropped: the
//!    sources are every segment before the active one, so nothing older is left for them to
//!    hide. Commits meanwhile go to the active segment and only move index entries away from
//!    the sources. A crash: as in 1.
//! 3. seal: the output is synced, renamed to `N.seg` and the directory synced. From the
//!    rename on, open sees a compacted segment (top < id) and removes every segment ordered
//!    before it: the sources, exactly. What it holds is every key whose latest record was in
//!    the sources when it was copied; a key written since has its newer record (or
//!    tombstone) in a later segment, which replays after it.
//! 4. remap: the output is read back and each key whose entry still points into a source is
//!    pointed at its copy (the copy is that very record). A crash: as after 3.
//! 5. delete: the sources, now without live records, are removed one by one. A crash: as
//!    after 3.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;

use super::record::{self, BATCH_HEADER, KIND_PUT, SEG_HEADER, SegHeader};
use super::segment::{self, Next, Reader, Segment, corrupt, seg_path, tmp_path};
use super::{Journal, Loc, next};

/// Output frames hold up to this many bytes of records (or one longer record).
const FRAME_MAX: usize = 1 << 20;
/// What removing one file counts against a step's budget.
const DELETE_COST: u64 = 1 << 20;

/// Where a compaction is.
#[derive(Debug, Default)]
pub(super) enum State {
    #[default]
    Idle,
    Copy(Box<Copy>),
    Seal(Box<Copy>),
    Remap(Remap),
    Delete(Vec<u32>),
}

#[derive(Debug)]
pub(super) struct Copy {
    /// The segments being replaced, in replay order.
    sources: Vec<u32>,
    /// The one being read, and its reader.
    src: usize,
    reader: Option<Reader>,
    id: u32,
    top: u32,
    out: File,
    out_len: u64,
    obuf: Vec<u8>,
    /// The output frame being filled: its start in `obuf` and record count.
    frame: Option<(usize, u32)>,
}

#[derive(Debug)]
pub(super) struct Remap {
    /// Sorted, for lookups.
    sources: Vec<u32>,
    id: u32,
    reader: Reader,
}

impl Copy {
    /// Closes the output frame being filled and writes what is buffered.
    fn flush(&mut self) -> io::Result<()> {
        if let Some((start, count)) = self.frame.take() {
            record::finish_batch(&mut self.obuf, start, count);
        }
        if !self.obuf.is_empty() {
            self.out.write_all_at(&self.obuf, self.out_len)?;
            start_writeback(&self.out, self.out_len, self.obuf.len() as u64);
            self.out_len += self.obuf.len() as u64;
            self.obuf.clear();
        }
        Ok(())
    }
}

impl Journal {
    /// Whether the files hold more than twice the live bytes, and more than
    /// `compact_min_bytes`, with no compaction under way.
    pub fn needs_compaction(&self) -> bool {
        matches!(self.compaction, State::Idle)
            && self.total_bytes > self.live_bytes.saturating_mul(2)
            && self.total_bytes > self.opts.compact_min_bytes
            && self.total_bytes >= self.compact_retry_at
    }

    /// Whether a compaction is under way or should start.
    pub(super) fn compaction_due(&self) -> bool {
        !matches!(self.compaction, State::Idle) || self.needs_compaction()
    }

    /// Does up to about `budget_bytes` of compaction work (segment bytes read), starting a
    /// compaction when [`Journal::needs_compaction`]; true while one is under way. After an
    /// error the compaction is abandoned (the files stay correct) and the next waits until
    /// the files have grown by `compact_min_bytes`.
    pub fn compact_step(&mut self, budget_bytes: u64) -> io::Result<bool> {
        if matches!(self.compaction, State::Idle) {
            if !self.needs_compaction() {
                return Ok(false);
            }
            if !self.begin_compaction()? {
                // nothing to compact after all: not again until the files grow
                self.compact_retry_at = self.retry_point();
                return Ok(false);
            }
        }
        // the output's id, known before `advance` takes the state (which an error loses)
        let output = match &self.compaction {
            State::Copy(c) | State::Seal(c) => Some(c.id),
            _ => None,
        };
        let mut state = std::mem::take(&mut self.compaction);
        match self.advance(&mut state, budget_bytes) {
            Ok(()) => {
                self.compaction = state;
                Ok(!matches!(self.compaction, State::Idle))
            }
            Err(e) => {
                if let Some(id) = output {
                    // not authoritative yet, or just now: either way the sources are
                    let _ = fs::remove_file(tmp_path(&self.dir, id));
                    let _ = fs::remove_file(seg_path(&self.dir, id));
                }
                // a remap or delete left undone leaves sources and output both valid and
                // open: the next compaction takes them all
                self.compact_failed();
                Err(e)
            }
        }
    }

    /// Compacts now, whatever the sizes, to the end.
    pub fn compact(&mut self) -> io::Result<()> {
        if matches!(self.compaction, State::Idle) && !self.begin_compaction()? {
            return Ok(());
        }
        while self.compact_step(u64::MAX)? {}
        Ok(())
    }

    fn compact_failed(&mut self) {
        self.compaction = State::Idle;
        self.compact_retry_at = self.retry_point();
    }

    /// The size the files must reach before the next automatic compaction.
    fn retry_point(&self) -> u64 {
        self.total_bytes
            .saturating_add(self.opts.compact_min_bytes.max(1))
    }

    /// [`Journal::start_compaction`], abandoned on an error.
    fn begin_compaction(&mut self) -> io::Result<bool> {
        self.start_compaction()
            .inspect_err(|_| self.compact_failed())
    }

    /// Step 1; false when there is nothing to compact.
    fn start_compaction(&mut self) -> io::Result<bool> {
        if self.segs[&self.active].len > SEG_HEADER {
            self.roll()?;
        }
        let mut sources: Vec<&Segment> =
            self.segs.values().filter(|s| s.id != self.active).collect();
        if sources.is_empty() {
            return Ok(false);
        }
        sources.sort_by_key(|s| s.order());
        let top = sources.iter().map(|s| s.top).max().unwrap_or(0);
        let sources: Vec<u32> = sources.iter().map(|s| s.id).collect();
        let id = self.next_id;
        self.next_id = next(id)?;
        let path = tmp_path(&self.dir, id);
        let out = match segment::create_file(&path, SegHeader { id, top }) {
            Ok(out) => out,
            Err(e) => {
                let _ = fs::remove_file(&path);
                return Err(e);
            }
        };
        tracing::info!(
            "journal: compacting {} segments ({} live of {} bytes) into segment {id}",
            sources.len(),
            self.live_bytes,
            self.total_bytes
        );
        self.compaction = State::Copy(Box::new(Copy {
            sources,
            src: 0,
            reader: None,
            id,
            top,
            out,
            out_len: SEG_HEADER,
            obuf: Vec::new(),
            frame: None,
        }));
        Ok(true)
    }

    fn advance(&mut self, state: &mut State, budget: u64) -> io::Result<()> {
        match std::mem::take(state) {
            State::Idle => {}
            State::Copy(mut c) => {
                *state = if self.copy(&mut c, budget)? {
                    State::Seal(c)
                } else {
                    State::Copy(c)
                };
            }
            State::Seal(c) => *state = State::Remap(self.seal(*c)?),
            State::Remap(mut m) => {
                if !self.remap(&mut m, budget)? {
                    *state = State::Remap(m);
                } else {
                    let mut rest = m.sources;
                    rest.reverse();
                    *state = State::Delete(rest);
                }
            }
            State::Delete(mut rest) => {
                let mut used = 0;
                while used < budget
                    && let Some(id) = rest.pop()
                {
                    if let Err(e) = self.remove_source(id) {
                        rest.push(id);
                        *state = State::Delete(rest);
                        return Err(e);
                    }
                    used += DELETE_COST;
                }
                if !rest.is_empty() {
                    *state = State::Delete(rest);
                } else {
                    tracing::info!(
                        "journal: compaction done: {} live of {} bytes",
                        self.live_bytes,
                        self.total_bytes
                    );
                }
            }
        }
        Ok(())
    }

    /// Step 2, up to `budget` bytes read; true when every source is copied.
    fn copy(&mut self, c: &mut Copy, budget: u64) -> io::Result<bool> {
        let mut used = 0u64;
        while used < budget && c.src < c.sources.len() {
            let sid = c.sources[c.src];
            if c.reader.is_none() {
                let s = &self.segs[&sid];
                c.reader = Some(Reader::new(&s.file, s.len)?);
            }
            let Some(reader) = c.reader.as_mut() else {
                continue;
            };
            match reader.next()? {
                Next::End => {
                    c.reader = None;
                    c.src += 1;
                }
                Next::Bad { at, why } => return Err(corrupt(&seg_path(&self.dir, sid), at, why)),
                Next::Batch { at, body, records } => {
                    used += (BATCH_HEADER + body.len()) as u64;
                    for rec in records {
                        let loc = Loc {
                            off: at + (BATCH_HEADER + rec.at) as u64,
                            seg: sid,
                            len: rec.len,
                        };
                        if rec.kind != KIND_PUT || self.index.get(&rec.key) != Some(&loc) {
                            continue;
                        }
                        let (start, count) = match c.frame {
                            Some((start, count))
                                if c.obuf.len() - start - BATCH_HEADER + rec.len as usize
                                    <= FRAME_MAX =>
                            {
                                (start, count)
                            }
                            open => {
                                if let Some((start, count)) = open {
                                    record::finish_batch(&mut c.obuf, start, count);
                                }
                                (record::begin_batch(&mut c.obuf), 0)
                            }
                        };
                        c.obuf.extend_from_slice(rec.bytes(body));
                        c.frame = Some((start, count + 1));
                    }
                    // a large budget (a forced compaction) must not buffer the whole output
                    if c.obuf.len() >= FRAME_MAX {
                        c.flush()?;
                    }
                }
            }
        }
        c.flush()?;
        Ok(c.src == c.sources.len())
    }

    /// Step 3: the output made durable and authoritative.
    fn seal(&mut self, c: Copy) -> io::Result<Remap> {
        c.out.sync_data()?;
        fs::rename(tmp_path(&self.dir, c.id), seg_path(&self.dir, c.id))?;
        segment::sync_dir(&self.dir)?;
        let seg = Segment {
            id: c.id,
            top: c.top,
            file: c.out,
            len: c.out_len,
            live: 0,
        };
        let reader = Reader::new(&seg.file, seg.len)?;
        self.total_bytes += seg.len;
        self.segs.insert(c.id, seg);
        let mut sources = c.sources;
        sources.sort_unstable();
        Ok(Remap {
            sources,
            id: c.id,
            reader,
        })
    }

    /// Step 4, up to `budget` bytes read; true when done.
    fn remap(&mut self, m: &mut Remap, budget: u64) -> io::Result<bool> {
        let mut used = 0u64;
        let mut moved = 0u64;
        let done = loop {
            if used >= budget {
                break false;
            }
            match m.reader.next()? {
                Next::End => break true,
                Next::Bad { at, why } => {
                    return Err(corrupt(&seg_path(&self.dir, m.id), at, why));
                }
                Next::Batch { at, body, records } => {
                    used += (BATCH_HEADER + body.len()) as u64;
                    for rec in records {
                        let Some(loc) = self.index.get_mut(&rec.key) else {
                            continue;
                        };
                        if m.sources.binary_search(&loc.seg).is_err() {
                            continue;
                        }
                        if let Some(s) = self.segs.get_mut(&loc.seg) {
                            s.live -= u64::from(loc.len);
                        }
                        moved += u64::from(rec.len);
                        *loc = Loc {
                            off: at + (BATCH_HEADER + rec.at) as u64,
                            seg: m.id,
                            len: rec.len,
                        };
                    }
                }
            }
        };
        if let Some(s) = self.segs.get_mut(&m.id) {
            s.live += moved;
        }
        Ok(done)
    }

    /// Step 5 for one source.
    fn remove_source(&mut self, id: u32) -> io::Result<()> {
        let live = self.segs.get(&id).map_or(0, |s| s.live);
        if live != 0 {
            // cannot happen (every live record was copied); keep the file rather than lose it
            tracing::error!("journal: segment {id} still has {live} live bytes after compaction");
            return Ok(());
        }
        match fs::remove_file(seg_path(&self.dir, id)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if let Some(s) = self.segs.remove(&id) {
            self.total_bytes -= s.len;
        }
        Ok(())
    }
}

/// Starts writing a range of the output back, so that sealing has little left to wait for.
fn start_writeback(file: &File, off: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor; the call only schedules writeback
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                off as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, off, len);
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Model, TempDir, opts};
    use super::*;

    /// A journal of several segments with much overwritten and deleted data.
    fn build(dir: &std::path::Path, model: &mut Model) -> Journal {
        let (mut j, got) = Journal::open(dir, opts()).unwrap();
        assert!(got.is_empty());
        for round in 0..40u64 {
            let batch = model.batch(round, 25);
            j.commit(&batch).unwrap();
        }
        j
    }

    #[test]
    fn compaction_shrinks_to_live_size_and_keeps_the_state() {
        let d = TempDir::new("compact");
        let mut model = Model::new(7);
        let mut j = build(&d.0, &mut model);
        let before = j.stats();
        assert!(before.segments > 3, "{before:?}");
        assert!(before.total_bytes > 2 * before.live_bytes, "{before:?}");
        assert!(j.needs_compaction());
        while j.compact_step(4096).unwrap() {}
        let after = j.stats();
        assert_eq!(after.keys, before.keys);
        assert_eq!(after.live_bytes, before.live_bytes);
        assert!(!after.compacting);
        // the output and the new (empty) active segment: live records, frame and file headers
        assert_eq!(after.segments, 2, "{after:?}");
        assert!(
            after.total_bytes < after.live_bytes + after.live_bytes / 10 + 64,
            "{after:?}"
        );
        let on_disk: u64 = fs::read_dir(&d.0)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert_eq!(on_disk, after.total_bytes);
        model.check_get(&j);
        // commits after compaction, then reopen
        let batch = model.batch(99, 30);
        j.commit(&batch).unwrap();
        let stats = j.stats();
        drop(j);
        let (j, got) = Journal::open(&d.0, opts()).unwrap();
        assert_eq!(got, model.state());
        model.check_get(&j);
        assert_eq!(j.stats().live_bytes, stats.live_bytes);
        assert_eq!(j.stats().total_bytes, stats.total_bytes);
    }

    #[test]
    fn compaction_twice_and_forced() {
        let d = TempDir::new("compact2");
        let mut model = Model::new(8);
        let mut j = build(&d.0, &mut model);
        j.compact().unwrap();
        for round in 40..80 {
            let batch = model.batch(round, 25);
            j.commit(&batch).unwrap();
        }
        j.compact().unwrap();
        // nothing new: a forced compaction of the one compacted segment
        j.compact().unwrap();
        model.check_get(&j);
        let stats = j.stats();
        drop(j);
        let (j, got) = Journal::open(&d.0, opts()).unwrap();
        assert_eq!(got, model.state());
        assert_eq!(j.stats().live_bytes, stats.live_bytes);
        assert_eq!(j.stats().total_bytes, stats.total_bytes);
    }

    /// A crash after every step of a compaction (the journal dropped there, with commits in
    /// between steps) reopens to exactly the live state, and compacts again fine.
    #[test]
    fn crash_at_each_compaction_step() {
        let mut steps_seen = 0;
        for crash_after in 0.. {
            let d = TempDir::new("compact-crash");
            let mut model = Model::new(9);
            let mut j = build(&d.0, &mut model);
            let mut steps = 0;
            let mut finished = false;
            while steps < crash_after {
                let more = j.compact_step(3000).unwrap();
                steps += 1;
                let batch = model.batch(1000 + steps, 5);
                j.commit(&batch).unwrap();
                if !more {
                    finished = true;
                    break;
                }
            }
            drop(j);
            let (mut j, got) = Journal::open(&d.0, opts()).unwrap();
            assert_eq!(got, model.state(), "crash after {crash_after} steps");
            assert!(
                !fs::read_dir(&d.0).unwrap().any(|e| e
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")),
                "crash after {crash_after} steps"
            );
            model.check_get(&j);
            j.compact().unwrap();
            model.check_get(&j);
            drop(j);
            let (_, got) = Journal::open(&d.0, opts()).unwrap();
            assert_eq!(got, model.state());
            if finished {
                steps_seen = steps;
                break;
            }
        }
        // copy steps, seal, remap steps, deletes: every phase was crashed in
        assert!(steps_seen > 10, "{steps_seen}");
    }

    #[test]
    fn corrupt_source_abandons_the_compaction() {
        let d = TempDir::new("compact-bad");
        let mut model = Model::new(10);
        let mut j = build(&d.0, &mut model);
        let first = *j.segs.keys().next().unwrap();
        // damage the first segment behind the journal's back
        let f = fs::OpenOptions::new()
            .write(true)
            .open(seg_path(&d.0, first))
            .unwrap();
        f.write_all_at(b"\xff\xff", SEG_HEADER + 40).unwrap();
        let err = j.compact().unwrap_err();
        assert!(err.to_string().contains(".seg"), "{err}");
        assert!(!j.stats().compacting);
        assert!(!j.needs_compaction());
        assert!(
            !fs::read_dir(&d.0).unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp"))
        );
        // commits go on
        let batch = model.batch(500, 5);
        j.commit(&batch).unwrap();
    }
}
