//! A durable log of the engine's live state (publications, subscriptions) that survives
//! `kill -9`: each tick's changes are appended as one batch and the tick's responses go out
//! once the batch is on disk. Bitcask-style: append-only segment files, an in-memory index of
//! where each live key's latest record is (never the value), replay at open, and compaction
//! that copies only the live records into a new segment.
//!
//! A directory holds `NNNNNNNNNN.seg` files (the framing is in `record.rs`). Records of one
//! commit share one batch frame with a CRC over all of it, so replay applies a commit whole or
//! not at all; a torn or garbage tail of the last segment (a crash mid-write) is cut away at
//! open, while damage anywhere else is an error naming the file and offset. [`JournalWriter`]
//! runs a journal on its own thread with group commit: whatever batches wait are written with
//! one `write` and made durable with one `fdatasync`.

mod compact;
mod record;
mod segment;
mod writer;

#[cfg(test)]
mod tests;

pub use writer::{JournalWriter, WriterMode};

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use record::{BATCH_HEADER, KIND_DELETE, KIND_PUT, SEG_HEADER};
use segment::{Next, Reader, Segment, corrupt, seg_path};

/// How a journal writes and when it compacts.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// `fdatasync` after each [`Journal::commit`] (a [`JournalWriter`] syncs by its mode).
    pub sync: bool,
    /// Size at which the active segment is closed and a new one begun.
    pub segment_bytes: u64,
    /// Compaction starts once the files hold more than twice the live bytes and more than this.
    pub compact_min_bytes: u64,
    /// Bytes of segment data a [`JournalWriter`] compacts between two commits.
    pub compact_step_bytes: u64,
}

impl Default for JournalOptions {
    fn default() -> JournalOptions {
        JournalOptions {
            sync: true,
            segment_bytes: 64 << 20,
            compact_min_bytes: 16 << 20,
            compact_step_bytes: 256 << 10,
        }
    }
}

/// One change of the live state: the engine's own type. Keys are chosen by the caller (a kind
/// in the top byte).
pub use presenced_systems::durable::Change;

/// Where a key's latest record is: 16 bytes, so an index slot is 24 (with the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    off: u64,
    seg: u32,
    /// The record's length on disk, header included.
    len: u32,
}

/// A fixed-key hasher for server-chosen u64 keys: the MurmurHash3 finaliser, which spreads
/// every input bit to the high bits (control bytes) and the low ones (bucket index).
#[derive(Debug, Default, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = fmix64(self.0);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = fmix64(self.0 ^ n);
    }
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

type KeyMap<V> = HashMap<u64, V, BuildHasherDefault<KeyHasher>>;

/// A staged record whose index entry is applied once it is written.
#[derive(Debug, Clone, Copy)]
struct Pending {
    key: u64,
    /// Offset from the start of the staged bytes.
    off: u64,
    len: u32,
    put: bool,
}

/// What [`Journal::open`] replays: every live key's latest value, sorted by key.
pub type Replayed = Vec<(u64, Vec<u8>)>;

/// Sizes of a journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalStats {
    pub keys: usize,
    /// Bytes of the records of the live keys.
    pub live_bytes: u64,
    /// Bytes of all segment files.
    pub total_bytes: u64,
    pub segments: usize,
    pub compacting: bool,
}

/// The journal: segment files, the index, and the write buffer.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    opts: JournalOptions,
    index: KeyMap<Loc>,
    /// Every segment by id, the active one included.
    segs: BTreeMap<u32, Segment>,
    /// The segment appends go to.
    active: u32,
    next_id: u32,
    live_bytes: u64,
    total_bytes: u64,
    /// `[..written]`: bytes written to the end of the active segment but not yet synced (kept
    /// to write again after a failed fsync, whose pages the kernel may have dropped);
    /// `[written..]`: staged batch frames not yet written.
    buf: Vec<u8>,
    written: usize,
    sync_failed: bool,
    pending: Vec<Pending>,
    compaction: compact::State,
    /// No automatic compaction before the files reach this size (after a failed one).
    compact_retry_at: u64,
}

impl Journal {
    /// Opens (creating it if needed) the journal in `dir` and replays it: every live key's
    /// latest value, sorted by key.
    pub fn open(dir: &Path, options: JournalOptions) -> io::Result<(Journal, Replayed)> {
        fs::create_dir_all(dir)?;
        let ids = segment::list(dir)?;
        let max_id = ids.last().copied();
        let mut segs = Vec::with_capacity(ids.len());
        for &id in &ids {
            let path = seg_path(dir, id);
            let (file, len, header) = segment::open(&path)?;
            match header {
                Some(h) if h.id == id && h.top <= id => segs.push(Segment {
                    id,
                    top: h.top,
                    file,
                    len,
                    live: 0,
                }),
                // headers are synced before anything is appended: this one's creation was torn
                _ if Some(id) == max_id && len <= SEG_HEADER => {
                    tracing::warn!(
                        file = %path.display(),
                        offset = 0,
                        dropped = len,
                        "journal: torn segment header rewritten"
                    );
                    // made again as new: it holds nothing acknowledged, and the crash may have
                    // come before its name was durable (create syncs the directory)
                    segs.push(segment::create(dir, id)?);
                }
                _ => return Err(corrupt(&path, 0, "bad segment header")),
            }
        }
        segs.sort_by_key(Segment::order);
        // a compaction's output replaces everything before it; those left are from a crash
        // after the output was made authoritative
        if let Some(c) = segs.iter().rposition(Segment::compacted)
            && c > 0
        {
            segment::sync_dir(dir)?;
            for s in segs.drain(..c) {
                tracing::info!("journal: removing segment {} (compacted)", s.id);
                fs::remove_file(seg_path(dir, s.id))?;
            }
        }
        let mut values = KeyMap::<(Loc, Vec<u8>)>::default();
        let mut live = BTreeMap::<u32, u64>::new();
        let n = segs.len();
        for (i, seg) in segs.iter_mut().enumerate() {
            let tolerant = i + 1 == n && !seg.compacted();
            replay(dir, seg, tolerant, &mut values, &mut live)?;
        }
        let mut next_id = max_id.map_or(Ok(1), next)?;
        if segs.last().is_none_or(Segment::compacted) {
            segs.push(segment::create(dir, next_id)?);
            next_id = next(next_id)?;
        }
        let active = segs.last().map_or(0, |s| s.id);
        let mut index = KeyMap::with_capacity_and_hasher(values.len(), Default::default());
        let mut out = Vec::with_capacity(values.len());
        for (k, (loc, v)) in values {
            index.insert(k, loc);
            out.push((k, v));
        }
        out.sort_unstable_by_key(|(k, _)| *k);
        let segs: BTreeMap<u32, Segment> = segs
            .into_iter()
            .map(|mut s| {
                s.live = live.get(&s.id).copied().unwrap_or(0);
                (s.id, s)
            })
            .collect();
        let journal = Journal {
            dir: dir.to_owned(),
            live_bytes: segs.values().map(|s| s.live).sum(),
            total_bytes: segs.values().map(|s| s.len).sum(),
            opts: options,
            index,
            segs,
            active,
            next_id,
            buf: Vec::new(),
            written: 0,
            sync_failed: false,
            pending: Vec::new(),
            compaction: compact::State::Idle,
            compact_retry_at: 0,
        };
        Ok((journal, out))
    }

    /// Appends `changes` as one batch (all of them or none survive a crash) with one write,
    /// then one `fdatasync` when `options.sync`. On an error the batch stays pending and goes
    /// out, in order, with the next commit.
    pub fn commit(&mut self, changes: &[Change]) -> io::Result<()> {
        self.stage(changes)?;
        self.write_staged()?;
        if self.opts.sync {
            self.sync()
        } else {
            self.forget_written();
            Ok(())
        }
    }

    /// The latest value of `key`, read from its segment.
    pub fn get(&self, key: u64) -> io::Result<Option<Vec<u8>>> {
        let Some(loc) = self.index.get(&key) else {
            return Ok(None);
        };
        let path = || seg_path(&self.dir, loc.seg);
        let Some(seg) = self.segs.get(&loc.seg) else {
            return Err(corrupt(&path(), loc.off, "segment missing"));
        };
        let mut b = vec![0u8; loc.len as usize];
        seg.file.read_exact_at(&mut b, loc.off)?;
        match record::decode_record(&b) {
            Ok(r) if r.key == key && r.kind == KIND_PUT => Ok(Some(r.value.to_vec())),
            Ok(_) => Err(corrupt(&path(), loc.off, "unexpected record")),
            Err(why) => Err(corrupt(&path(), loc.off, why)),
        }
    }

    pub fn stats(&self) -> JournalStats {
        JournalStats {
            keys: self.index.len(),
            live_bytes: self.live_bytes,
            total_bytes: self.total_bytes,
            segments: self.segs.len(),
            compacting: self.compacting(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes staged and not yet written.
    fn staged_bytes(&self) -> u64 {
        (self.buf.len() - self.written) as u64
    }

    /// Whether a compaction is under way.
    fn compacting(&self) -> bool {
        !matches!(self.compaction, compact::State::Idle)
    }

    /// Adds one batch frame of `changes` to the staged bytes.
    fn stage(&mut self, changes: &[Change]) -> io::Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let (start, pending) = (self.buf.len(), self.pending.len());
        let refuse = |j: &mut Journal, what: &str| {
            j.buf.truncate(start);
            j.pending.truncate(pending);
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("journal: {what}"),
            ))
        };
        let Ok(count) = u32::try_from(changes.len()) else {
            return refuse(self, "too many changes in one batch");
        };
        let frame = record::begin_batch(&mut self.buf);
        for c in changes {
            let (key, kind, value) = match c {
                Change::Put(k, v) => (*k, KIND_PUT, &v[..]),
                Change::Delete(k) => (*k, KIND_DELETE, &[][..]),
            };
            if value.len() > record::MAX_VALUE {
                return refuse(self, "value too long");
            }
            let off = (self.buf.len() - self.written) as u64;
            let len = record::push_record(&mut self.buf, key, kind, value);
            self.pending.push(Pending {
                key,
                off,
                len,
                put: kind == KIND_PUT,
            });
        }
        if !record::finish_batch(&mut self.buf, frame, count) {
            return refuse(self, "batch too long");
        }
        Ok(())
    }

    /// Writes the staged frames to the end of the active segment with one write (closing the
    /// segment first when they would take it past its size), and updates the index.
    fn write_staged(&mut self) -> io::Result<()> {
        let staged = (self.buf.len() - self.written) as u64;
        if staged == 0 {
            return Ok(());
        }
        let len = self.segs[&self.active].len;
        if len > SEG_HEADER && len + staged > self.opts.segment_bytes {
            self.roll()?;
        }
        let seg = self.segs.get_mut(&self.active).expect("active segment");
        let at = seg.len;
        if let Err(e) = seg.file.write_all_at(&self.buf[self.written..], at) {
            // no partial frame left behind for the next write to land after
            let _ = seg.file.set_len(at);
            return Err(e);
        }
        seg.len += staged;
        self.total_bytes += staged;
        self.written = self.buf.len();
        for p in self.pending.drain(..) {
            // added before the old copy is taken off: a key put twice in one write replaces
            // a location in this very segment
            let old = if p.put {
                if let Some(s) = self.segs.get_mut(&self.active) {
                    s.live += u64::from(p.len);
                }
                self.live_bytes += u64::from(p.len);
                self.index.insert(
                    p.key,
                    Loc {
                        off: at + p.off,
                        seg: self.active,
                        len: p.len,
                    },
                )
            } else {
                self.index.remove(&p.key)
            };
            if let Some(old) = old {
                if let Some(s) = self.segs.get_mut(&old.seg) {
                    s.live -= u64::from(old.len);
                }
                self.live_bytes -= u64::from(old.len);
            }
        }
        Ok(())
    }

    /// Makes everything written durable.
    fn sync(&mut self) -> io::Result<()> {
        let seg = &self.segs[&self.active];
        if self.sync_failed {
            seg.file
                .write_all_at(&self.buf[..self.written], seg.len - self.written as u64)?;
        }
        if let Err(e) = seg.file.sync_data() {
            self.sync_failed = true;
            return Err(e);
        }
        self.sync_failed = false;
        self.forget_written();
        Ok(())
    }

    /// Drops the copy of the bytes written since the last sync.
    fn forget_written(&mut self) {
        self.buf.drain(..self.written);
        self.written = 0;
    }

    /// Closes the active segment (durably) and begins the next.
    fn roll(&mut self) -> io::Result<()> {
        self.sync()?;
        let id = self.next_id;
        let seg = segment::create(&self.dir, id)?;
        self.next_id = next(id)?;
        self.total_bytes += seg.len;
        self.segs.insert(id, seg);
        self.active = id;
        Ok(())
    }
}

fn next(id: u32) -> io::Result<u32> {
    id.checked_add(1)
        .ok_or_else(|| io::Error::other("journal: segment ids exhausted"))
}

/// Replays one segment into `values`, counting live bytes per segment in `live`. With
/// `tolerant` (the last segment) a bad frame is a torn tail, cut away; otherwise an error.
fn replay(
    dir: &Path,
    seg: &mut Segment,
    tolerant: bool,
    values: &mut KeyMap<(Loc, Vec<u8>)>,
    live: &mut BTreeMap<u32, u64>,
) -> io::Result<()> {
    let mut r = Reader::new(&seg.file, seg.len)?;
    loop {
        match r.next()? {
            Next::End => return Ok(()),
            Next::Batch { at, records, .. } => {
                for rec in records {
                    let old = if rec.kind == KIND_PUT {
                        let loc = Loc {
                            off: at + (BATCH_HEADER + rec.at) as u64,
                            seg: seg.id,
                            len: rec.len,
                        };
                        *live.entry(seg.id).or_default() += u64::from(rec.len);
                        values.insert(rec.key, (loc, rec.value.to_vec()))
                    } else {
                        values.remove(&rec.key)
                    };
                    if let Some((old, _)) = old {
                        *live.entry(old.seg).or_default() -= u64::from(old.len);
                    }
                }
            }
            Next::Bad { at, why } => {
                let path = seg_path(dir, seg.id);
                if !tolerant {
                    return Err(corrupt(&path, at, why));
                }
                tracing::warn!(
                    file = %path.display(),
                    offset = at,
                    dropped = seg.len - at,
                    "journal: {why}: torn tail dropped"
                );
                seg.file.set_len(at)?;
                seg.file.sync_data()?;
                seg.len = at;
                return Ok(());
            }
        }
    }
}
