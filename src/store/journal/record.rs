//! The bytes on disk. A segment file is a header followed by batch frames; a batch frame is a
//! header (magic, body length, record count, CRC32 over length, count and body) followed by its
//! records; a record is its payload length, the CRC32 of its payload, then the payload: key,
//! kind, value. All integers little-endian.
//!
//! ```text
//! segment: "PJS1" id:u32 top:u32 crc:u32 | batch*
//! batch:   "PJB1" body_len:u32 count:u32 crc:u32 | record*      (crc over body_len..=count, body)
//! record:  len:u32 crc:u32 | key:u64 kind:u8 value              (len, crc over key..value)
//! ```
//!
//! The batch CRC makes a batch all-or-nothing at replay; the record CRC lets one record be read
//! and checked alone (a lookup) without its batch.

pub(super) const SEG_MAGIC: [u8; 4] = *b"PJS1";
pub(super) const SEG_HEADER: u64 = 16;
pub(super) const BATCH_MAGIC: [u8; 4] = *b"PJB1";
pub(super) const BATCH_HEADER: usize = 16;
/// Length and CRC before a record's payload.
pub(super) const REC_HEADER: usize = 8;
/// Key and kind at the start of a payload.
const REC_FIXED: usize = 9;
/// The largest value a record holds (its payload length must fit a u32).
pub(super) const MAX_VALUE: usize = u32::MAX as usize - REC_FIXED;

pub(super) const KIND_PUT: u8 = 1;
pub(super) const KIND_DELETE: u8 = 2;

/// A segment's header: its id (also its file name) and the position it replays at. A segment
/// the journal wrote has `top == id`; a compaction's output has the highest `top` of the
/// segments it replaces (`top < id`), and makes every segment ordered before it obsolete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SegHeader {
    pub id: u32,
    pub top: u32,
}

impl SegHeader {
    pub fn encode(self) -> [u8; SEG_HEADER as usize] {
        let mut h = [0u8; SEG_HEADER as usize];
        h[..4].copy_from_slice(&SEG_MAGIC);
        h[4..8].copy_from_slice(&self.id.to_le_bytes());
        h[8..12].copy_from_slice(&self.top.to_le_bytes());
        let crc = crc32fast::hash(&h[..12]);
        h[12..].copy_from_slice(&crc.to_le_bytes());
        h
    }

    pub fn decode(h: &[u8]) -> Option<SegHeader> {
        if h.len() < SEG_HEADER as usize || h[..4] != SEG_MAGIC {
            return None;
        }
        if crc32fast::hash(&h[..12]) != u32le(&h[12..16]) {
            return None;
        }
        Some(SegHeader {
            id: u32le(&h[4..8]),
            top: u32le(&h[8..12]),
        })
    }
}

pub(super) fn u32le(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn u64le(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Starts a batch frame at the end of `buf`; returns where it starts (for [`finish_batch`]).
pub(super) fn begin_batch(buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&BATCH_MAGIC);
    buf.extend_from_slice(&[0u8; BATCH_HEADER - 4]);
    start
}

/// Appends one record to `buf`; returns its length on disk.
pub(super) fn push_record(buf: &mut Vec<u8>, key: u64, kind: u8, value: &[u8]) -> u32 {
    let len = (REC_FIXED + value.len()) as u32;
    let at = buf.len();
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&[0u8; 4]);
    buf.extend_from_slice(&key.to_le_bytes());
    buf.push(kind);
    buf.extend_from_slice(value);
    let crc = crc32fast::hash(&buf[at + REC_HEADER..]);
    buf[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
    REC_HEADER as u32 + len
}

/// Fills in the header of the batch begun at `start` with `count` records; false when its body
/// is too long for the frame (the caller then drops the frame).
pub(super) fn finish_batch(buf: &mut [u8], start: usize, count: u32) -> bool {
    let body = buf.len() - start - BATCH_HEADER;
    let Ok(body) = u32::try_from(body) else {
        return false;
    };
    buf[start + 4..start + 8].copy_from_slice(&body.to_le_bytes());
    buf[start + 8..start + 12].copy_from_slice(&count.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&buf[start + 4..start + 12]);
    h.update(&buf[start + BATCH_HEADER..]);
    let crc = h.finalize();
    buf[start + 12..start + 16].copy_from_slice(&crc.to_le_bytes());
    true
}

/// What a batch header says, once its magic is checked: body length and record count.
pub(super) fn batch_header(h: &[u8]) -> Option<(u32, u32)> {
    (h[..4] == BATCH_MAGIC).then(|| (u32le(&h[4..8]), u32le(&h[8..12])))
}

/// Whether a whole frame (header and body) has the CRC its header says.
pub(super) fn batch_crc_ok(frame: &[u8]) -> bool {
    let mut h = crc32fast::Hasher::new();
    h.update(&frame[4..12]);
    h.update(&frame[BATCH_HEADER..]);
    h.finalize() == u32le(&frame[12..16])
}

/// One record of a batch body.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rec<'a> {
    /// Offset of the record (its length field) in the body.
    pub at: usize,
    /// Its length on disk, header included.
    pub len: u32,
    pub key: u64,
    pub kind: u8,
    pub value: &'a [u8],
}

impl<'a> Rec<'a> {
    /// The record's bytes on disk.
    pub fn bytes(&self, body: &'a [u8]) -> &'a [u8] {
        &body[self.at..self.at + self.len as usize]
    }
}

/// Decodes one record at the start of `b`, checking its CRC and kind (a record read alone).
pub(super) fn decode_record(b: &[u8]) -> Result<Rec<'_>, &'static str> {
    let r = split_record(b)?;
    if crc32fast::hash(&b[REC_HEADER..r.len as usize]) != u32le(&b[4..8]) {
        return Err("record checksum mismatch");
    }
    Ok(r)
}

/// The record at the start of `b` without checking its CRC (its batch's CRC covered it).
fn split_record(b: &[u8]) -> Result<Rec<'_>, &'static str> {
    if b.len() < REC_HEADER + REC_FIXED {
        return Err("truncated record");
    }
    let len = u32le(&b[..4]) as usize;
    if len < REC_FIXED || b.len() - REC_HEADER < len {
        return Err("bad record length");
    }
    let payload = &b[REC_HEADER..REC_HEADER + len];
    let kind = payload[8];
    if kind != KIND_PUT && kind != KIND_DELETE {
        return Err("bad record kind");
    }
    Ok(Rec {
        at: 0,
        len: (REC_HEADER + len) as u32,
        key: u64le(payload),
        kind,
        value: &payload[REC_FIXED..],
    })
}

/// The records of a batch body whose CRC was checked, once the body is seen to hold exactly
/// `count` well-formed records (so that a batch is applied whole or not at all).
pub(super) fn records(body: &[u8], count: u32) -> Result<Records<'_>, &'static str> {
    let (mut at, mut n) = (0usize, 0u32);
    while at < body.len() {
        at += split_record(&body[at..])?.len as usize;
        n = n.wrapping_add(1);
    }
    if n != count {
        return Err("record count mismatch");
    }
    Ok(Records { body, at: 0 })
}

/// Iterator over the records of a checked batch body.
#[derive(Debug)]
pub(super) struct Records<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = Rec<'a>;

    fn next(&mut self) -> Option<Rec<'a>> {
        let mut r = split_record(&self.body[self.at..]).ok()?;
        r.at = self.at;
        self.at += r.len as usize;
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = b"junk".to_vec();
        let start = begin_batch(&mut buf);
        let a = push_record(&mut buf, 7, KIND_PUT, b"hello");
        let b = push_record(&mut buf, 1 << 56, KIND_DELETE, b"");
        assert!(finish_batch(&mut buf, start, 2));
        let frame = &buf[start..];
        assert_eq!(a as usize, REC_HEADER + REC_FIXED + 5);
        let (len, count) = batch_header(frame).unwrap();
        assert_eq!((len as usize, count), (frame.len() - BATCH_HEADER, 2));
        assert!(batch_crc_ok(frame));
        let body = &frame[BATCH_HEADER..];
        let recs: Vec<_> = records(body, count).unwrap().collect();
        assert_eq!(
            (recs[0].key, recs[0].kind, recs[0].value),
            (7, KIND_PUT, &b"hello"[..])
        );
        assert_eq!(
            (recs[1].key, recs[1].kind, recs[1].len),
            (1 << 56, KIND_DELETE, b)
        );
        assert_eq!(recs[1].at, a as usize);
        let mut bad = frame.to_vec();
        *bad.last_mut().unwrap() ^= 1;
        assert!(!batch_crc_ok(&bad));
        assert!(records(body, 3).is_err());
        assert!(records(&body[..body.len() - 1], 2).is_err());
        assert!(decode_record(recs[0].bytes(body)).is_ok());
        let mut rec = recs[0].bytes(body).to_vec();
        rec[12] ^= 1;
        assert!(decode_record(&rec).is_err());
    }

    #[test]
    fn segment_header_round_trips() {
        let h = SegHeader { id: 9, top: 4 };
        assert_eq!(SegHeader::decode(&h.encode()), Some(h));
        let mut b = h.encode();
        b[5] ^= 1;
        assert_eq!(SegHeader::decode(&b), None);
        assert_eq!(SegHeader::decode(&b[..10]), None);
    }
}
