//! The arena of dialog records and our local addresses, shared by all dialogs.

use std::net::SocketAddr;

use bevy_ecs::prelude::Resource;

/// A record in the store: where and how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef {
    at: u32,
    len: u32,
}

impl RecordRef {
    /// No record (a dialog not made yet).
    pub const NONE: RecordRef = RecordRef { at: 0, len: 0 };

    /// Bytes of the record.
    pub fn len(&self) -> usize {
        self.len as usize
    }
}

/// Bytes of a chunk of the store.
const CHUNK: usize = 64 * 1024;
/// Records are stored in slots of this many bytes.
const UNIT: usize = 4;
/// Bits of a [`RecordRef::at`] that hold the slot's offset (in units) in its chunk (the other
/// 18 number chunks: 16 GB of dialog records at most).
const OFFSET_BITS: u32 = 14;
/// Records longer than this get a chunk of their own.
const LARGE: usize = CHUNK / 4;
/// Local addresses named by an index; a dialog's local address past them is in its record.
const MAX_LOCALS: usize = u8::MAX as usize;

/// The records of every dialog and our local addresses, shared by all dialogs.
///
/// Records sit in 64 KB chunks, in slots of a multiple of 4 bytes, with a free list per slot
/// size: no allocation per dialog, no allocator header or size classes, and long-lived dialog
/// records never share pages with the short-lived buffers of transactions (whose holes would
/// otherwise keep those pages resident after a burst). Local addresses are interned so that a
/// dialog names its own with a byte; bounded by the shell's sockets (past 255 the address goes
/// in the dialog's record).
#[derive(Resource, Debug, Default)]
pub struct DialogStore {
    locals: Vec<SocketAddr>,
    chunks: Vec<Box<[u8]>>,
    /// Bytes used in the last regular chunk.
    top: usize,
    /// Index of the chunk `top` is in (None: no regular chunk yet).
    current: Option<usize>,
    /// Free slots by size in units: their `at`.
    free: Vec<Vec<u32>>,
    /// Chunks given back by large records, for reuse.
    free_chunks: Vec<u32>,
}

impl DialogStore {
    /// The index of local address `a`; None past [`MAX_LOCALS`] addresses.
    pub(super) fn intern(&mut self, a: SocketAddr) -> Option<u8> {
        if let Some(i) = self.locals.iter().position(|&x| x == a) {
            return Some(i as u8);
        }
        if self.locals.len() >= MAX_LOCALS {
            return None;
        }
        self.locals.push(a);
        Some((self.locals.len() - 1) as u8)
    }

    /// The local address of index `i`.
    pub(super) fn local(&self, i: u8) -> SocketAddr {
        self.locals
            .get(i as usize)
            .copied()
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    fn new_chunk(&mut self, bytes: Box<[u8]>) -> usize {
        match self.free_chunks.pop() {
            Some(i) => {
                self.chunks[i as usize] = bytes;
                i as usize
            }
            None => {
                self.chunks.push(bytes);
                self.chunks.len() - 1
            }
        }
    }

    /// Store `record`.
    pub(super) fn put(&mut self, record: &[u8]) -> RecordRef {
        let len = record.len();
        if len > LARGE {
            let c = self.new_chunk(record.into());
            return RecordRef {
                at: (c as u32) << OFFSET_BITS,
                len: len as u32,
            };
        }
        let units = len.div_ceil(UNIT).max(1);
        let at = match self.free.get_mut(units).and_then(Vec::pop) {
            Some(at) => at,
            None => {
                let c = match self.current {
                    Some(c) if self.top + units * UNIT <= CHUNK => c,
                    _ => {
                        let c = self.new_chunk(vec![0; CHUNK].into());
                        self.current = Some(c);
                        self.top = 0;
                        c
                    }
                };
                let at = ((c as u32) << OFFSET_BITS) | (self.top / UNIT) as u32;
                self.top += units * UNIT;
                at
            }
        };
        let (c, off) = Self::locate(at);
        self.chunks[c][off..off + len].copy_from_slice(record);
        RecordRef {
            at,
            len: len as u32,
        }
    }

    fn locate(at: u32) -> (usize, usize) {
        (
            (at >> OFFSET_BITS) as usize,
            (at & ((1 << OFFSET_BITS) - 1)) as usize * UNIT,
        )
    }

    /// Give a record's slot back (none for [`RecordRef::NONE`]).
    pub(super) fn free(&mut self, r: RecordRef) {
        let len = r.len as usize;
        if len == 0 {
            return;
        }
        if len > LARGE {
            let (c, _) = Self::locate(r.at);
            self.chunks[c] = Box::default();
            self.free_chunks.push(c as u32);
            return;
        }
        let units = len.div_ceil(UNIT).max(1);
        if self.free.len() <= units {
            self.free.resize_with(units + 1, Vec::new);
        }
        self.free[units].push(r.at);
    }

    /// The bytes of a record (none for [`RecordRef::NONE`]: an internal subscription's
    /// strings read empty).
    pub(super) fn get(&self, r: RecordRef) -> &[u8] {
        if r.len == 0 {
            return &[];
        }
        let (c, off) = Self::locate(r.at);
        &self.chunks[c][off..off + r.len as usize]
    }

    /// True when `r`'s slot is on a free list.
    #[cfg(test)]
    pub(super) fn is_free(&self, r: RecordRef) -> bool {
        self.free.iter().any(|slots| slots.contains(&r.at))
    }

    /// Slots on the free lists.
    #[cfg(test)]
    pub(super) fn free_slots(&self) -> usize {
        self.free.iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_reuses_freed_slots_and_gives_large_records_their_own_chunk() {
        let mut store = DialogStore::default();
        let a = store.put(b"hello");
        let b = store.put(&[b'x'; 100]);
        assert_eq!(store.get(a), b"hello");
        store.free(a);
        let c = store.put(b"world!!");
        assert_eq!(c.at, a.at, "same slot size: the slot is reused");
        assert_eq!(store.get(c), b"world!!");
        assert_eq!(store.get(b), [b'x'; 100]);
        let big = vec![b'y'; LARGE + 1];
        let l = store.put(&big);
        assert_eq!(store.get(l), big);
        let chunks = store.chunks.len();
        store.free(l);
        let l2 = store.put(&big);
        assert_eq!(store.chunks.len(), chunks, "a freed large chunk is reused");
        assert_eq!(store.get(l2), big);
        // a full chunk starts another
        let many: Vec<RecordRef> = (0..2000).map(|_| store.put(&[b'z'; 60])).collect();
        assert!(many.iter().all(|t| store.get(*t) == [b'z'; 60]));
    }
}
