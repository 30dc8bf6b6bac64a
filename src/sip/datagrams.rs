//! Batched UDP I/O: `recvmmsg` and `sendmmsg` (Linux), so that a wake-up that finds many
//! datagrams costs one system call per batch rather than one per datagram. On a loaded server the
//! per-datagram system calls and the wake-ups around them cost more than parsing and presence
//! logic together (README, Capacity planning).

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use presenced_systems::Outbound;
use socket2::{SockAddr, SockAddrStorage};

/// Datagrams taken by one `recvmmsg`.
pub const RECV_BATCH: usize = 32;
/// Datagrams handed to one `sendmmsg`.
pub const SEND_BATCH: usize = 64;

/// Receive buffers for one `recvmmsg` call: `RECV_BATCH` slots of `slot_len` bytes each. A slot
/// is only touched as far as a datagram fills it, so the resident cost is what arrives.
pub struct RecvBatch {
    slot_len: usize,
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    got: usize,
}

/// One received datagram.
pub struct Datagram<'a> {
    pub bytes: &'a [u8],
    pub peer: Option<SocketAddr>,
    /// The datagram was longer than the slot and was cut (`MSG_TRUNC`).
    pub truncated: bool,
}

impl RecvBatch {
    /// Buffers for datagrams of up to `slot_len` bytes; longer ones come back truncated.
    pub fn new(slot_len: usize) -> RecvBatch {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let zero_addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let zero_hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
        RecvBatch {
            slot_len,
            bufs: vec![0u8; slot_len * RECV_BATCH],
            addrs: vec![zero_addr; RECV_BATCH],
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                RECV_BATCH
            ],
            hdrs: vec![zero_hdr; RECV_BATCH],
            got: 0,
        }
    }

    /// Receive what is waiting, up to `RECV_BATCH` datagrams, without blocking. Returns how
    /// many arrived; `WouldBlock` when none was waiting.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.got = 0;
        // The headers point into this struct's own vectors; they are rebuilt before every
        // call so that moving the struct can never leave them dangling.
        let base = self.bufs.as_mut_ptr();
        for i in 0..RECV_BATCH {
            self.iovs[i] = libc::iovec {
                // SAFETY: slot i lies inside `bufs` (RECV_BATCH slots of slot_len bytes).
                iov_base: unsafe { base.add(i * self.slot_len) }.cast(),
                iov_len: self.slot_len,
            };
            let h = &mut self.hdrs[i];
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
            h.msg_hdr.msg_iov = &mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: `hdrs` holds RECV_BATCH initialised headers whose buffers outlive the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                RECV_BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.got = n as usize;
        Ok(self.got)
    }

    /// Datagram `i` of the last `recv`.
    pub fn get(&self, i: usize) -> Datagram<'_> {
        debug_assert!(i < self.got);
        let h = &self.hdrs[i];
        let len = (h.msg_len as usize).min(self.slot_len);
        let start = i * self.slot_len;
        // SAFETY: the kernel wrote msg_namelen bytes of a socket address into addrs[i];
        // SockAddrStorage is a transparent wrapper of sockaddr_storage.
        let peer = unsafe {
            let storage: SockAddrStorage = std::mem::transmute(self.addrs[i]);
            SockAddr::new(storage, h.msg_hdr.msg_namelen)
        }
        .as_socket();
        Datagram {
            bytes: &self.bufs[start..start + len],
            peer,
            truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
        }
    }
}

/// What one `sendmmsg` did with the front of the queue.
pub enum Sent {
    /// The first `n` messages left (n ≥ 1).
    Some(usize),
    /// The socket's send buffer is full: try again when it is writable.
    WouldBlock,
    /// The first message failed for good (it is to be dropped and counted).
    Failed(io::Error),
}

/// Scratch space for `sendmmsg`, kept between calls to avoid allocating per batch.
#[derive(Default)]
pub struct SendBatch {
    addrs: Vec<SockAddr>,
    iovs: Vec<[libc::iovec; 2]>,
    hdrs: Vec<libc::mmsghdr>,
}

impl SendBatch {
    /// Send up to `SEND_BATCH` messages from the front of `queue` (head and body of each as one
    /// datagram, without copying them together).
    pub fn send<'a>(&mut self, fd: RawFd, queue: impl IntoIterator<Item = &'a Outbound>) -> Sent {
        self.addrs.clear();
        self.iovs.clear();
        self.hdrs.clear();
        for m in queue.into_iter().take(SEND_BATCH) {
            self.addrs.push(SockAddr::from(m.dest.addr));
            self.iovs.push([
                libc::iovec {
                    iov_base: m.head.as_ptr() as *mut libc::c_void,
                    iov_len: m.head.len(),
                },
                libc::iovec {
                    iov_base: m.body.as_ptr() as *mut libc::c_void,
                    iov_len: m.body.len(),
                },
            ]);
        }
        if self.iovs.is_empty() {
            return Sent::Some(0);
        }
        for (addr, iov) in self.addrs.iter().zip(self.iovs.iter_mut()) {
            // SAFETY: all-zero is a valid mmsghdr; the pointers set below outlive the call.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
            h.msg_hdr.msg_namelen = addr.len();
            h.msg_hdr.msg_iov = iov.as_mut_ptr();
            h.msg_hdr.msg_iovlen = if iov[1].iov_len == 0 { 1 } else { 2 };
            self.hdrs.push(h);
        }
        // SAFETY: every header points at an address and buffers borrowed for this call.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as u32,
                libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            return Sent::Some(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock => Sent::WouldBlock,
            // Interrupted before anything was sent: the caller simply tries again.
            io::ErrorKind::Interrupted => Sent::Some(0),
            _ => Sent::Failed(e),
        }
    }
}
