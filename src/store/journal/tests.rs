//! Journal tests: replay, torn tails, damage, rollover; and the helpers the other modules'
//! tests share.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::segment::seg_path;
use super::*;

/// A directory under the system's temporary one, removed when dropped.
pub(super) struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!(
            "presenced-journal-{}-{tag}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&d);
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Small segments and an early compaction threshold; no fsync per commit (the fsync paths
/// have their own tests), so that many journals can be made quickly.
pub(super) fn opts() -> JournalOptions {
    JournalOptions {
        sync: false,
        segment_bytes: 16 << 10,
        compact_min_bytes: 8 << 10,
        compact_step_bytes: 4 << 10,
    }
}

/// Random changes over a small key space, and the state they make.
pub(super) struct Model {
    rng: u64,
    state: BTreeMap<u64, Vec<u8>>,
}

impl Model {
    pub fn new(seed: u64) -> Model {
        Model {
            rng: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            state: BTreeMap::new(),
        }
    }

    fn rand(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `n` changes (one in five a delete) over 150 keys of two kinds.
    pub fn batch(&mut self, round: u64, n: usize) -> Vec<Change> {
        (0..n)
            .map(|i| {
                let r = self.rand();
                let key = ((r >> 60) & 1) << 56 | (r % 150);
                if r.is_multiple_of(5) {
                    self.state.remove(&key);
                    Change::Delete(key)
                } else {
                    let len = 20 + (r >> 8) as usize % 200;
                    let v: Vec<u8> = format!("{round}:{i}:{key}:")
                        .bytes()
                        .chain((0..len).map(|j| (j as u8).wrapping_mul(r as u8)))
                        .collect();
                    self.state.insert(key, v.clone());
                    Change::Put(key, v)
                }
            })
            .collect()
    }

    pub fn state(&self) -> Vec<(u64, Vec<u8>)> {
        self.state.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    /// The journal's index and files give the model's state.
    pub fn check_get(&self, j: &Journal) {
        assert_eq!(j.stats().keys, self.state.len());
        for (k, v) in &self.state {
            assert_eq!(j.get(*k).unwrap().as_ref(), Some(v), "key {k:#x}");
        }
        let live: u64 = j.index.values().map(|l| u64::from(l.len)).sum();
        assert_eq!(live, j.stats().live_bytes);
        let per_seg: u64 = j.segs.values().map(|s| s.live).sum();
        assert_eq!(per_seg, live);
    }
}

fn seg_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn put_overwrite_delete_then_reopen() {
    let d = TempDir::new("basic");
    let o = JournalOptions {
        sync: true,
        ..JournalOptions::default()
    };
    let (mut j, got) = Journal::open(&d.0, o.clone()).unwrap();
    assert!(got.is_empty());
    j.commit(&[
        Change::Put(3, b"three".to_vec()),
        Change::Put(1 << 56 | 1, b"one".to_vec()),
        Change::Put(2, b"two".to_vec()),
    ])
    .unwrap();
    j.commit(&[Change::Put(3, b"THREE".to_vec()), Change::Delete(2)])
        .unwrap();
    j.commit(&[Change::Delete(99), Change::Put(4, Vec::new())])
        .unwrap();
    j.commit(&[]).unwrap();
    assert_eq!(j.get(3).unwrap().as_deref(), Some(&b"THREE"[..]));
    assert_eq!(j.get(2).unwrap(), None);
    let stats = j.stats();
    assert_eq!(stats.keys, 3);
    drop(j);
    let (j, got) = Journal::open(&d.0, o).unwrap();
    assert_eq!(
        got,
        vec![
            (3, b"THREE".to_vec()),
            (4, Vec::new()),
            (1 << 56 | 1, b"one".to_vec()),
        ]
    );
    assert_eq!(j.stats(), stats);
}

#[test]
fn many_batches_with_a_reopen_after_each() {
    let d = TempDir::new("reopen");
    let mut model = Model::new(1);
    let (mut j, _) = Journal::open(&d.0, opts()).unwrap();
    for round in 0..60 {
        let batch = model.batch(round, 1 + round as usize % 7);
        j.commit(&batch).unwrap();
        let stats = j.stats();
        drop(j);
        let got;
        (j, got) = Journal::open(&d.0, opts()).unwrap();
        assert_eq!(got, model.state(), "round {round}");
        assert_eq!(j.stats(), stats, "round {round}");
    }
    model.check_get(&j);
}

/// Every cut of the file inside the last batch (a write torn by a crash) reopens to the state
/// before that batch, and the journal takes commits after it.
#[test]
fn torn_last_batch_at_every_offset() {
    let d = TempDir::new("torn");
    let mut model = Model::new(2);
    let (mut j, _) = Journal::open(&d.0, opts()).unwrap();
    for round in 0..5 {
        let batch = model.batch(round, 4);
        j.commit(&batch).unwrap();
    }
    let before = model.state();
    let path = seg_path(&d.0, j.active);
    let start = fs::metadata(&path).unwrap().len();
    let last = model.batch(5, 6);
    j.commit(&last).unwrap();
    drop(j);
    let full = fs::read(&path).unwrap();
    assert!(full.len() as u64 > start + 6 * 17);
    for cut in start as usize..full.len() {
        fs::write(&path, &full[..cut]).unwrap();
        let (mut j, got) = Journal::open(&d.0, opts()).unwrap();
        assert_eq!(got, before, "cut at {cut}");
        assert_eq!(fs::metadata(&path).unwrap().len(), start, "cut at {cut}");
        if cut % 50 == 0 {
            j.commit(&last).unwrap();
            drop(j);
            let (_, got) = Journal::open(&d.0, opts()).unwrap();
            assert_eq!(got, model.state(), "cut at {cut}");
        }
    }
    fs::write(&path, &full).unwrap();
    let (_, got) = Journal::open(&d.0, opts()).unwrap();
    assert_eq!(got, model.state());
}

#[test]
fn garbage_after_the_last_batch_is_dropped() {
    let d = TempDir::new("garbage");
    let mut model = Model::new(3);
    let (mut j, _) = Journal::open(&d.0, opts()).unwrap();
    for round in 0..3 {
        let batch = model.batch(round, 5);
        j.commit(&batch).unwrap();
    }
    let path = seg_path(&d.0, j.active);
    drop(j);
    let mut good = fs::metadata(&path).unwrap().len();
    let junk: [&[u8]; 4] = [
        b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        b"some text that is not a frame at all",
        // a frame header whose checksum does not match
        b"PJB1\x10\0\0\0\x01\0\0\0\xde\xad\xbe\xefxxxxxxxxxxxxxxxx",
        // one whose length runs past the end
        b"PJB1\xff\xff\xff\x7f",
    ];
    for (i, g) in junk.into_iter().enumerate() {
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(g)
            .unwrap();
        let (mut j, got) = Journal::open(&d.0, opts()).unwrap();
        assert_eq!(got, model.state(), "junk {i}");
        assert_eq!(fs::metadata(&path).unwrap().len(), good, "junk {i}");
        let batch = model.batch(10 + i as u64, 2);
        j.commit(&batch).unwrap();
        drop(j);
        let (_, got) = Journal::open(&d.0, opts()).unwrap();
        assert_eq!(got, model.state(), "junk {i}");
        let now = fs::metadata(&path).unwrap().len();
        assert!(now > good);
        good = now;
    }
}

#[test]
fn damage_in_an_older_segment_is_an_error_naming_the_file() {
    let d = TempDir::new("damage");
    let mut model = Model::new(4);
    let (mut j, _) = Journal::open(&d.0, opts()).unwrap();
    for round in 0..30 {
        let batch = model.batch(round, 10);
        j.commit(&batch).unwrap();
    }
    assert!(j.stats().segments >= 3);
    drop(j);
    let files = seg_files(&d.0);
    let victim = &files[1];
    let mut bytes = fs::read(victim).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    fs::write(victim, &bytes).unwrap();
    let err = Journal::open(&d.0, opts()).unwrap_err();
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    let msg = err.to_string();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(msg.contains(&name) && msg.contains("offset"), "{msg}");
    // and a damaged header of an older segment
    bytes[at] ^= 0x40;
    bytes[5] ^= 1;
    fs::write(victim, &bytes).unwrap();
    let msg = Journal::open(&d.0, opts()).unwrap_err().to_string();
    assert!(msg.contains(&name) && msg.contains("header"), "{msg}");
}

#[test]
fn segments_roll_over() {
    let d = TempDir::new("roll");
    let mut model = Model::new(5);
    let o = JournalOptions {
        compact_min_bytes: u64::MAX,
        ..opts()
    };
    let (mut j, _) = Journal::open(&d.0, o.clone()).unwrap();
    for round in 0..50 {
        let batch = model.batch(round, 8);
        j.commit(&batch).unwrap();
    }
    let files = seg_files(&d.0);
    assert!(files.len() >= 4, "{files:?}");
    assert_eq!(files.len(), j.stats().segments);
    for f in &files {
        assert!(fs::metadata(f).unwrap().len() <= o.segment_bytes, "{f:?}");
    }
    assert!(!j.needs_compaction());
    model.check_get(&j);
    drop(j);
    let (j, got) = Journal::open(&d.0, o).unwrap();
    assert_eq!(got, model.state());
    model.check_get(&j);
}

/// A crash while a new segment's header was being written leaves a short last file.
#[test]
fn torn_header_of_a_new_segment() {
    let d = TempDir::new("torn-header");
    let mut model = Model::new(6);
    let (mut j, _) = Journal::open(&d.0, opts()).unwrap();
    let batch = model.batch(0, 5);
    j.commit(&batch).unwrap();
    let next = j.next_id;
    drop(j);
    fs::write(seg_path(&d.0, next), b"PJS1\x02").unwrap();
    let (mut j, got) = Journal::open(&d.0, opts()).unwrap();
    assert_eq!(got, model.state());
    assert_eq!(j.active, next);
    let batch = model.batch(1, 5);
    j.commit(&batch).unwrap();
    drop(j);
    let (_, got) = Journal::open(&d.0, opts()).unwrap();
    assert_eq!(got, model.state());
}

#[test]
fn sync_and_rewrite_after_a_failed_fsync() {
    let d = TempDir::new("resync");
    let o = JournalOptions {
        sync: true,
        ..opts()
    };
    let (mut j, _) = Journal::open(&d.0, o.clone()).unwrap();
    j.stage(&[Change::Put(1, b"a".to_vec())]).unwrap();
    j.write_staged().unwrap();
    // as after an fsync error: the bytes are written again before the next fsync
    j.sync_failed = true;
    j.sync().unwrap();
    assert_eq!(j.written, 0);
    j.commit(&[Change::Put(2, b"b".to_vec())]).unwrap();
    drop(j);
    let (_, got) = Journal::open(&d.0, o).unwrap();
    assert_eq!(got, vec![(1, b"a".to_vec()), (2, b"b".to_vec())]);
}

#[test]
fn key_hasher_spreads_sequential_keys() {
    let mut buckets = [0u32; 64];
    let mut tops = [0u32; 128];
    for k in 0..64_000u64 {
        let mut h = KeyHasher::default();
        h.write_u64(3 << 56 | k);
        let v = h.finish();
        buckets[(v & 63) as usize] += 1;
        tops[(v >> 57) as usize] += 1;
    }
    assert!(
        buckets.iter().all(|&n| (800..1200).contains(&n)),
        "{buckets:?}"
    );
    assert!(tops.iter().all(|&n| (350..650).contains(&n)), "{tops:?}");
}
