//! The process's memory: which allocator serves what, and how memory goes back to the system.
//!
//! Small blocks come from mimalloc (fast, per-thread free lists). Large blocks (1 MB and up:
//! component table columns, entity records, index arrays, timer heaps of a big population) come
//! from glibc, which maps each of them on its own and grows it with `mremap`: the kernel moves
//! the pages instead of copying them. With mimalloc alone a table that doubled copied every
//! row at once (a few hundred thousand rows: tens of milliseconds during which requests
//! waited); with `mremap` the same growth is a page-table update.

use std::alloc::{GlobalAlloc, Layout};

use mimalloc::MiMalloc;

/// Blocks from this size on are glibc's, one mapping each.
pub const LARGE_BLOCK: usize = 1 << 20;
/// What glibc's malloc guarantees on 64-bit Linux (`MALLOC_ALIGNMENT`).
const GLIBC_ALIGN: usize = 16;

/// The global allocator of the binary (see the module documentation).
pub struct Allocator;

fn large(layout: Layout) -> bool {
    layout.size() >= LARGE_BLOCK && layout.align() <= GLIBC_ALIGN
}

/// The alignment mimalloc's plain calls guarantee for every size (a word: its 24-byte bins are
/// not 16-aligned; its own realloc takes the plain path up to this). The `mimalloc` crate asks
/// for every block through `mi_malloc_aligned`, whose alignment checks cost about 40
/// instructions per block (callgrind: ~600 per PUBLISH, which allocates about 16 blocks);
/// blocks that need no more than this go straight to the plain calls.
const MI_ALIGN: usize = std::mem::size_of::<usize>();

fn plain(layout: Layout) -> bool {
    layout.align() <= MI_ALIGN
}

// SAFETY: every block is freed and resized by the allocator that made it: which one made it
// follows from its layout alone (size and alignment), which the caller passes back unchanged.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if large(layout) {
            // SAFETY: plain malloc of a non-zero size.
            unsafe { libc::malloc(layout.size()).cast() }
        } else if plain(layout) {
            // SAFETY: mi_malloc of a non-zero size; its blocks are aligned to MI_ALIGN.
            unsafe { mi_malloc(layout.size()).cast() }
        } else {
            // SAFETY: forwarded as received.
            unsafe { MiMalloc.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if large(layout) {
            // SAFETY: plain calloc of a non-zero size.
            unsafe { libc::calloc(1, layout.size()).cast() }
        } else if plain(layout) {
            // SAFETY: as in `alloc`.
            unsafe { mi_zalloc(layout.size()).cast() }
        } else {
            // SAFETY: forwarded as received.
            unsafe { MiMalloc.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if large(layout) {
            // SAFETY: `ptr` came from glibc (its layout is large).
            unsafe { libc::free(ptr.cast()) }
        } else {
            // SAFETY: `ptr` came from mimalloc (aligned or not, mi_free frees both).
            unsafe { mi_free(ptr.cast()) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees a valid layout for the new size with the same alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (large(layout), large(new_layout)) {
            // SAFETY: `ptr` came from glibc; glibc keeps the alignment.
            (true, true) => unsafe { libc::realloc(ptr.cast(), new_size).cast() },
            // SAFETY: `ptr` came from mimalloc; the new block keeps MI_ALIGN.
            (false, false) if plain(layout) => unsafe { mi_realloc(ptr.cast(), new_size).cast() },
            // SAFETY: `ptr` came from mimalloc with `layout`.
            (false, false) => unsafe { MiMalloc.realloc(ptr, layout, new_size) },
            // crossing the threshold: move the block to the other allocator
            _ => {
                // SAFETY: non-zero size (it is on one side of a non-zero threshold or was).
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    // SAFETY: both blocks are valid for the smaller size and do not overlap.
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                new
            }
        }
    }
}

/// Set glibc up for [`Allocator`]: every large block is a mapping of its own, so that it grows
/// with `mremap` and goes back to the system when freed. (glibc's threshold would otherwise
/// rise to 32 MB as blocks are freed, and smaller blocks would come from its heap and be copied
/// when they grow.) Call first thing in `main`.
pub fn configure() {
    // SAFETY: mallopt with integer arguments, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE_BLOCK as libc::c_int);
    }
    disable_transparent_huge_pages();
}

/// mimalloc asks for transparent huge pages, and the first touch of each then zeroes 2 MB at
/// once: while a fresh server's tables grow, that showed as 15-25 ms stalls (PUBLISH p99 at
/// 5,000/s) and about a third more CPU per request. With 4 KB pages the p99 was 1-1.7 ms
/// (loadgen publish scenario, same machine, same run). So THP is off for this process.
fn disable_transparent_huge_pages() {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

// mimalloc's plain calls (see MI_ALIGN), always in libmimalloc.
unsafe extern "C" {
    fn mi_malloc(size: usize) -> *mut libc::c_void;
    fn mi_zalloc(size: usize) -> *mut libc::c_void;
    fn mi_realloc(p: *mut libc::c_void, newsize: usize) -> *mut libc::c_void;
    fn mi_free(p: *mut libc::c_void);
    /// mimalloc's collection: frees retired pages and, forced, purges the free memory it keeps
    /// committed (the symbol is always in libmimalloc; the crate declares it only with its
    /// `extended` feature).
    fn mi_collect(force: bool);
}

/// Give memory freed after a burst back to the system. mimalloc returns free pages to the OS
/// only after a delay and only when it allocates again; an idle server that has just aged out
/// a burst's transactions (Timer J) would otherwise keep their pages resident (measured: about
/// 40 % of the RSS of a million settled subscriptions). Once every few seconds is cheap.
pub fn spawn_collector() {
    let _ = std::thread::Builder::new()
        .name("mem-collect".into())
        .spawn(|| {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                // SAFETY: no arguments besides a flag; callable from any thread.
                unsafe { mi_collect(true) };
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exercise every path of the allocator through its trait, as the binary would.
    #[test]
    fn blocks_keep_their_bytes_across_the_threshold() {
        let a = Allocator;
        for &(from, to) in &[
            (64, 4096),
            (4096, LARGE_BLOCK),
            (LARGE_BLOCK, 4 * LARGE_BLOCK),
            (4 * LARGE_BLOCK, 512),
            (LARGE_BLOCK - 1, LARGE_BLOCK + 1),
        ] {
            let layout = Layout::from_size_align(from, 8).unwrap();
            unsafe {
                let p = a.alloc(layout);
                assert!(!p.is_null());
                for i in 0..from {
                    *p.add(i) = (i % 251) as u8;
                }
                let q = a.realloc(p, layout, to);
                assert!(!q.is_null());
                for i in 0..from.min(to) {
                    assert_eq!(*q.add(i), (i % 251) as u8, "byte {i} of {from} -> {to}");
                }
                a.dealloc(q, Layout::from_size_align(to, 8).unwrap());
            }
        }
    }

    #[test]
    fn large_blocks_with_wide_alignment_stay_with_mimalloc() {
        let a = Allocator;
        let layout = Layout::from_size_align(2 * LARGE_BLOCK, 4096).unwrap();
        assert!(!large(layout));
        unsafe {
            let p = a.alloc_zeroed(layout);
            assert_eq!(p as usize % 4096, 0);
            assert!((0..layout.size()).step_by(4093).all(|i| *p.add(i) == 0));
            a.dealloc(p, layout);
        }
        let big = Layout::from_size_align(2 * LARGE_BLOCK, 16).unwrap();
        unsafe {
            let p = a.alloc_zeroed(big);
            assert!((0..big.size()).step_by(4093).all(|i| *p.add(i) == 0));
            a.dealloc(p, big);
        }
    }

    /// Every small size with every alignment up to a page: the plain calls serve word-aligned
    /// blocks, the aligned ones the rest; each block is as aligned as asked and keeps its bytes
    /// through realloc.
    #[test]
    fn small_blocks_are_as_aligned_as_asked() {
        let a = Allocator;
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in (1..=130).chain([1000, 4097]) {
                let layout = Layout::from_size_align(size, align).unwrap();
                unsafe {
                    let p = a.alloc(layout);
                    assert_eq!(p as usize % align, 0, "alloc {size} aligned {align}");
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "alloc_zeroed {size} aligned {align}");
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    std::ptr::write_bytes(p, 0xa5, size);
                    let q = a.realloc(p, layout, size * 3);
                    assert_eq!(q as usize % align, 0, "realloc {size} aligned {align}");
                    assert!((0..size).all(|i| *q.add(i) == 0xa5));
                    a.dealloc(q, Layout::from_size_align(size * 3, align).unwrap());
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
