//! Segment files: naming, creation, and reading batch frames back with positioned reads.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::record::{self, BATCH_HEADER, SEG_HEADER, SegHeader};

/// One segment file, open for positioned reads (and writes, when it is the active one).
#[derive(Debug)]
pub(super) struct Segment {
    pub id: u32,
    /// Replay position (see [`SegHeader`]).
    pub top: u32,
    pub file: File,
    /// Bytes of valid data in the file, header included (what appends go after).
    pub len: u64,
    /// Bytes of the records the index points to.
    pub live: u64,
}

impl Segment {
    /// A compaction's output, which replaces every segment ordered before it.
    pub fn compacted(&self) -> bool {
        self.top < self.id
    }

    /// The order segments replay in.
    pub fn order(&self) -> (u32, u32) {
        (self.top, self.id)
    }
}

pub(super) fn seg_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:010}.seg"))
}

pub(super) fn tmp_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:010}.seg.tmp"))
}

/// What a file name in the journal directory is.
pub(super) enum Name {
    Segment(u32),
    Temporary,
    Other,
}

pub(super) fn parse_name(name: &str) -> Name {
    let id = |s: &str| (s.len() == 10).then(|| s.parse::<u32>().ok()).flatten();
    if let Some(stem) = name.strip_suffix(".seg.tmp")
        && id(stem).is_some()
    {
        return Name::Temporary;
    }
    match name.strip_suffix(".seg").and_then(id) {
        Some(id) => Name::Segment(id),
        None => Name::Other,
    }
}

/// Makes a directory's entries (a created, renamed or removed file) durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates (or empties) the file at `path` with a segment header, durably, and opens it.
pub(super) fn create_file(path: &Path, h: SegHeader) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all_at(&h.encode(), 0)?;
    file.sync_data()?;
    Ok(file)
}

/// Creates a new empty segment for appends: header written and the file's name durable before
/// anything acknowledged can be in it.
pub(super) fn create(dir: &Path, id: u32) -> io::Result<Segment> {
    let file = create_file(&seg_path(dir, id), SegHeader { id, top: id })?;
    sync_dir(dir)?;
    Ok(Segment {
        id,
        top: id,
        file,
        len: SEG_HEADER,
        live: 0,
    })
}

/// Opens an existing segment file and reads its header: None when the header is missing or
/// does not check (a torn creation, or damage).
pub(super) fn open(path: &Path) -> io::Result<(File, u64, Option<SegHeader>)> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let mut h = [0u8; SEG_HEADER as usize];
    let header = if len >= SEG_HEADER {
        file.read_exact_at(&mut h, 0)?;
        SegHeader::decode(&h)
    } else {
        None
    };
    Ok((file, len, header))
}

/// The size of the reads a [`Reader`] makes.
const CHUNK: usize = 1 << 20;

/// Reads the batch frames of one segment in order, with positioned reads of [`CHUNK`] bytes
/// (a frame longer than that is read whole).
#[derive(Debug)]
pub(super) struct Reader {
    file: File,
    /// Where the data to read ends.
    end: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    start: u64,
    /// Offset of the next frame.
    pos: u64,
}

/// The next thing in a segment.
pub(super) enum Next<'a> {
    /// No more data.
    End,
    /// A frame whose CRC and records check, at offset `at`; `body` is its records.
    Batch {
        at: u64,
        body: &'a [u8],
        records: record::Records<'a>,
    },
    /// Not a valid frame at `at`: torn, damaged or garbage.
    Bad { at: u64, why: &'static str },
}

impl Reader {
    /// A reader of `file`'s frames in `[SEG_HEADER, end)`.
    pub fn new(file: &File, end: u64) -> io::Result<Reader> {
        Ok(Reader {
            file: file.try_clone()?,
            end,
            buf: Vec::new(),
            start: 0,
            pos: SEG_HEADER,
        })
    }

    /// The bytes `[at, at + n)`, or None when the data ends before.
    fn bytes(&mut self, at: u64, n: usize) -> io::Result<Option<&[u8]>> {
        if at + n as u64 > self.end {
            return Ok(None);
        }
        if at < self.start || at + n as u64 > self.start + self.buf.len() as u64 {
            let want = (n.max(CHUNK) as u64).min(self.end - at) as usize;
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, at)?;
            self.start = at;
        }
        let from = (at - self.start) as usize;
        Ok(Some(&self.buf[from..from + n]))
    }

    /// Reads the frame at the current position and moves past it (not past a bad one).
    pub fn next(&mut self) -> io::Result<Next<'_>> {
        let at = self.pos;
        if at >= self.end {
            return Ok(Next::End);
        }
        let Some(h) = self.bytes(at, BATCH_HEADER)? else {
            return Ok(Next::Bad {
                at,
                why: "truncated batch header",
            });
        };
        let Some((body_len, count)) = record::batch_header(h) else {
            return Ok(Next::Bad {
                at,
                why: "bad batch magic",
            });
        };
        let n = BATCH_HEADER + body_len as usize;
        let Some(frame) = self.bytes(at, n)? else {
            return Ok(Next::Bad {
                at,
                why: "truncated batch",
            });
        };
        if !record::batch_crc_ok(frame) {
            return Ok(Next::Bad {
                at,
                why: "batch checksum mismatch",
            });
        }
        // `frame` borrows all of self; the body borrows `buf` alone, so that `pos` can move
        let from = (at - self.start) as usize;
        let body = &self.buf[from + BATCH_HEADER..from + n];
        match record::records(body, count) {
            Ok(records) => {
                self.pos = at + n as u64;
                Ok(Next::Batch { at, body, records })
            }
            Err(why) => Ok(Next::Bad { at, why }),
        }
    }
}

/// An error about the data of a file, naming it and the offset.
pub(super) fn corrupt(path: &Path, at: u64, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("journal: {}: {why} at offset {at}", path.display()),
    )
}

/// The segment ids in the journal directory, sorted; unfinished compaction outputs removed.
pub(super) fn list(dir: &Path) -> io::Result<Vec<u32>> {
    let mut ids = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        match parse_name(name) {
            Name::Segment(id) => ids.push(id),
            Name::Temporary => {
                tracing::info!("journal: removing an unfinished compaction output {name}");
                fs::remove_file(e.path())?;
            }
            Name::Other => {}
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(matches!(parse_name("0000000012.seg"), Name::Segment(12)));
        assert!(matches!(parse_name("0000000012.seg.tmp"), Name::Temporary));
        assert!(matches!(parse_name("12.seg"), Name::Other));
        assert!(matches!(parse_name("000000001x.seg"), Name::Other));
        assert!(matches!(parse_name("LOCK"), Name::Other));
        assert_eq!(
            seg_path(Path::new("/d"), 7),
            PathBuf::from("/d/0000000007.seg")
        );
    }
}
