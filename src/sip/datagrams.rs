//! Batched UDP I/O: `recvmmsg` and `sendmmsg` (Linux), so that a wake-up that finds many
//! datagrams costs one system call per batch rather than one per datagram. The server's
//! transport and loadgen both read with [`RecvBatch`]; the server sends engine output (head and
//! body buffers, never copied together) with [`SendBatch`].

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use presenced_systems::Outbound;
use socket2::{SockAddr, SockAddrStorage};

/// Datagrams handed to one `sendmmsg`.
pub const SEND_BATCH: usize = 64;

/// Receive buffers for one `recvmmsg` call: `slots` buffers of `slot_len` bytes each, allocated
/// once. A slot is only touched as far as a datagram fills it, so the resident cost is what
/// arrives.
pub struct RecvBatch {
    slots: usize,
    slot_len: usize,
    bufs: Vec<u8>,
    /// Control-message space per slot for the kernel's receive time (empty: not asked for).
    controls: Vec<u64>,
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
    /// When the kernel received it (`CLOCK_REALTIME`, ns), on a batch made
    /// [`with_timestamps`](RecvBatch::with_timestamps) and a socket with `SO_TIMESTAMPNS`.
    pub received_ns: Option<u64>,
}

/// Words of control space per slot: one `SCM_TIMESTAMPNS` message (a cmsghdr and a timespec,
/// 32 bytes on 64-bit Linux) with room to spare.
const CONTROL_WORDS: usize = 8;

impl RecvBatch {
    /// Buffers for `slots` datagrams of up to `slot_len` bytes; longer ones come back truncated.
    pub fn new(slots: usize, slot_len: usize) -> RecvBatch {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let zero_addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let zero_hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
        RecvBatch {
            slots,
            slot_len,
            bufs: vec![0u8; slot_len * slots],
            controls: Vec::new(),
            addrs: vec![zero_addr; slots],
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                slots
            ],
            hdrs: vec![zero_hdr; slots],
            got: 0,
        }
    }

    /// Also read each datagram's kernel receive time (the socket needs `SO_TIMESTAMPNS`, see
    /// [`enable_timestamps`]): a reader that does not wake up per datagram still knows when
    /// each arrived.
    pub fn with_timestamps(mut self) -> RecvBatch {
        self.controls = vec![0u64; CONTROL_WORDS * self.slots];
        self
    }

    /// How many datagrams one call takes at most.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Receive what is waiting, up to `slots` datagrams, without blocking. Returns how many
    /// arrived: 0 when none was waiting.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.got = 0;
        // The headers point into this struct's own vectors; they are rebuilt before every
        // call so that moving the struct can never leave them dangling.
        let base = self.bufs.as_mut_ptr();
        for i in 0..self.slots {
            self.iovs[i] = libc::iovec {
                // SAFETY: slot i lies inside `bufs` (`slots` slots of slot_len bytes).
                iov_base: unsafe { base.add(i * self.slot_len) }.cast(),
                iov_len: self.slot_len,
            };
            let h = &mut self.hdrs[i];
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
            h.msg_hdr.msg_iov = &mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            if self.controls.is_empty() {
                h.msg_hdr.msg_control = std::ptr::null_mut();
                h.msg_hdr.msg_controllen = 0;
            } else {
                h.msg_hdr.msg_control = self.controls[i * CONTROL_WORDS..].as_mut_ptr().cast();
                h.msg_hdr.msg_controllen = CONTROL_WORDS * 8;
            }
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        loop {
            // SAFETY: `hdrs` holds `slots` initialised headers whose buffers outlive the call.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    self.hdrs.as_mut_ptr(),
                    self.slots as u32,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n >= 0 {
                self.got = n as usize;
                return Ok(self.got);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => return Ok(0),
                // A signal, or an ICMP error from an earlier send on this socket (reported once,
                // then cleared): datagrams may still be waiting behind it.
                io::ErrorKind::Interrupted | io::ErrorKind::ConnectionRefused => continue,
                _ => return Err(e),
            }
        }
    }

    /// Datagram `i` of the last `recv`.
    pub fn get(&self, i: usize) -> Datagram<'_> {
        assert!(i < self.got, "datagram {i} of {}", self.got);
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
            received_ns: self.timestamp(i),
        }
    }

    /// The `SCM_TIMESTAMPNS` the kernel put in slot `i`'s control space, if any.
    fn timestamp(&self, i: usize) -> Option<u64> {
        if self.controls.is_empty() {
            return None;
        }
        let msg = &self.hdrs[i].msg_hdr;
        // SAFETY: the kernel wrote msg_controllen bytes of control messages into this slot's
        // control space (the header points there, see `recv`); the CMSG_* walk stays within it.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
                }
                c = libc::CMSG_NXTHDR(msg, c);
            }
        }
        None
    }
}

/// Ask the kernel to stamp each datagram `fd` receives with its receive time (`SO_TIMESTAMPNS`).
pub fn enable_timestamps(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt with a pointer to a live c_int and its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Where received datagrams are kept while the engine reads them: copied one after another
/// into a shared block (64 KB, about ninety requests) instead of a block each. A request's
/// text is read in place (spans of its datagram's `Bytes`), which made a datagram cost two
/// allocations and two frees (its bytes, then the shared header `Bytes` adds at the first
/// span); from a slab it costs a copy and a reference count. A block is freed when the last
/// datagram in it is dropped: nothing the engine keeps may hold a span of a request past its
/// tick (what it keeps, it copies), or the whole block would stay.
pub struct InboundSlab {
    block: bytes::BytesMut,
}

/// Bytes of one slab block.
const SLAB_BLOCK: usize = 64 << 10;

impl Default for InboundSlab {
    fn default() -> Self {
        InboundSlab {
            block: bytes::BytesMut::new(),
        }
    }
}

impl InboundSlab {
    /// `data`, kept in the current block (a new one when it does not fit).
    pub fn keep(&mut self, data: &[u8]) -> bytes::Bytes {
        if self.block.capacity() - self.block.len() < data.len() {
            self.block = bytes::BytesMut::with_capacity(SLAB_BLOCK.max(data.len()));
        }
        self.block.extend_from_slice(data);
        self.block.split().freeze()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn outbound(to: SocketAddr, head: &str, body: &str) -> Outbound {
        use presenced_systems::{Dest, Transport};
        Outbound {
            dest: Dest {
                transport: Transport::Udp,
                addr: to,
                local: to,
                conn: None,
            },
            head: bytes::Bytes::copy_from_slice(head.as_bytes()),
            body: bytes::Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    #[test]
    fn batches_cross_loopback_whole_and_in_order() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        let to = b.local_addr().unwrap();
        let queue: Vec<Outbound> = (0..200)
            .map(|i| {
                outbound(
                    to,
                    &format!("head {i}|"),
                    if i % 2 == 0 { "body" } else { "" },
                )
            })
            .collect();
        let mut sb = SendBatch::default();
        let mut sent = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while sent < queue.len() {
            assert!(std::time::Instant::now() < deadline, "{sent} of 200 sent");
            match sb.send(a.as_raw_fd(), &queue[sent..]) {
                Sent::Some(n) => sent += n,
                Sent::WouldBlock => std::thread::yield_now(),
                Sent::Failed(e) => panic!("{e}"),
            }
        }
        let mut rb = RecvBatch::new(16, 64);
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < 200 && std::time::Instant::now() < deadline {
            let n = rb.recv(b.as_raw_fd()).unwrap();
            assert!(n <= rb.slots());
            for i in 0..n {
                let d = rb.get(i);
                assert!(!d.truncated);
                assert_eq!(d.peer, Some(a.local_addr().unwrap()));
                got.push(String::from_utf8(d.bytes.to_vec()).unwrap());
            }
        }
        let want: Vec<String> = (0..200)
            .map(|i| format!("head {i}|{}", if i % 2 == 0 { "body" } else { "" }))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_datagram_longer_than_its_slot_is_marked_truncated() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        a.send_to(&[b'x'; 100], b.local_addr().unwrap()).unwrap();
        let mut rb = RecvBatch::new(4, 64);
        let mut n = 0;
        for _ in 0..1000 {
            n = rb.recv(b.as_raw_fd()).unwrap();
            if n > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(n, 1);
        let d = rb.get(0);
        assert!(d.truncated);
        assert_eq!(d.bytes.len(), 64);
    }

    /// A datagram read well after it arrived still says when it arrived (the reader's clock
    /// at read time would be late by the wait); without the option there is no time.
    #[test]
    fn timestamps_say_when_the_kernel_received_a_datagram() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        enable_timestamps(b.as_raw_fd()).unwrap();
        // the kernel switches receive stamping on for the system a moment later (a deferred
        // static key); until then a datagram is stamped when it is read
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now_ns = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        };
        let before = now_ns();
        a.send_to(b"one", b.local_addr().unwrap()).unwrap();
        a.send_to(b"two", b.local_addr().unwrap()).unwrap();
        let sent = now_ns();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut rb = RecvBatch::new(4, 64).with_timestamps();
        assert_eq!(rb.recv(b.as_raw_fd()).unwrap(), 2);
        for i in 0..2 {
            let t = rb.get(i).received_ns.expect("stamped");
            assert!(
                t >= before && t <= sent + 5_000_000,
                "{t} not in {before}..{sent}"
            );
        }
        // a batch without control space reads no time
        a.send_to(b"three", b.local_addr().unwrap()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
        let mut plain = RecvBatch::new(4, 64);
        assert_eq!(plain.recv(b.as_raw_fd()).unwrap(), 1);
        assert_eq!(plain.get(0).received_ns, None);
        assert_eq!(plain.get(0).bytes, b"three");
    }

    /// Datagrams kept in a slab read back as they were, spans of them too, across blocks, and
    /// one larger than a block gets a block of its own.
    #[test]
    fn a_slab_keeps_datagrams_as_they_were() {
        let mut slab = InboundSlab::default();
        let datagrams: Vec<Vec<u8>> = (0..500u32)
            .map(|i| {
                let len = 1 + (i as usize * 997) % 3000;
                (0..len).map(|k| (k as u32 ^ i) as u8).collect()
            })
            .chain([vec![7u8; SLAB_BLOCK * 2]])
            .collect();
        let kept: Vec<bytes::Bytes> = datagrams.iter().map(|d| slab.keep(d)).collect();
        for (d, k) in datagrams.iter().zip(&kept) {
            assert_eq!(&k[..], &d[..]);
            let mid = k.slice(k.len() / 3..k.len() / 2);
            assert_eq!(&mid[..], &d[d.len() / 3..d.len() / 2]);
        }
        // an early datagram's block outlives the slab's move to later blocks
        drop(slab);
        assert_eq!(&kept[0][..], &datagrams[0][..]);
    }
}
