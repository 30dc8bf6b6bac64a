//! Batched UDP I/O: reading with the server's `recvmmsg` batch ([`RecvBatch`], up to
//! [`RECV_BATCH`] datagrams per system call) and writing a queue of generated datagrams (to any
//! destinations) with `sendmmsg` in as few calls as possible. All buffers are allocated once;
//! the hot path allocates nothing.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

pub use presenced::sip::datagrams::RecvBatch;

/// Datagrams read per `recvmmsg` call.
pub const RECV_BATCH: usize = 64;
/// Largest datagram read; longer ones are truncated and counted as errors.
pub const RECV_SIZE: usize = 65_535;

/// Receive buffers for [`RECV_BATCH`] datagrams of up to [`RECV_SIZE`] bytes.
pub fn recv_batch() -> RecvBatch {
    RecvBatch::new(RECV_BATCH, RECV_SIZE)
}
/// Datagrams written per `sendmmsg` call.
const SEND_BATCH: usize = 128;

/// A non-blocking UDP socket bound to `addr` with buffers of `buf_bytes` asked for (forced past
/// `net.core.[rw]mem_max` when running as root), made the way the server makes its own. Returns
/// the socket and the granted (receive, send) sizes.
pub fn bind(addr: SocketAddr, buf_bytes: usize) -> io::Result<(mio::net::UdpSocket, usize, usize)> {
    let (s, rcv, snd) = presenced::sip::sockets::udp(addr, buf_bytes, buf_bytes)?;
    Ok((mio::net::UdpSocket::from_std(s), rcv, snd))
}

/// Convert a socket address to the C form; returns its length.
pub fn to_sockaddr(addr: &SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in.
            let sin =
                unsafe { &mut *(out as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 =
                unsafe { &mut *(out as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// A queue of datagrams to send: one contiguous byte buffer plus (offset, length, destination).
pub struct SendQueue {
    buf: Vec<u8>,
    items: Vec<(u32, u32, SocketAddr)>,
    /// First item not yet sent.
    head: usize,
    /// Bytes of `buf` already written to a stream ([`SendQueue::flush_stream`]).
    written: usize,
    iovs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_storage>,
    hdrs: Vec<libc::mmsghdr>,
}

impl Default for SendQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl SendQueue {
    /// An empty queue with room reserved for a typical batch.
    pub fn new() -> SendQueue {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let zero_addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let zero_hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
        SendQueue {
            buf: Vec::with_capacity(1 << 20),
            items: Vec::with_capacity(4096),
            head: 0,
            written: 0,
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                SEND_BATCH
            ],
            addrs: vec![zero_addr; SEND_BATCH],
            hdrs: vec![zero_hdr; SEND_BATCH],
        }
    }

    /// Messages waiting.
    pub fn pending(&self) -> usize {
        self.items.len() - self.head
    }

    /// Drop whatever waits.
    pub fn clear(&mut self) {
        self.items.clear();
        self.buf.clear();
        self.head = 0;
        self.written = 0;
    }

    /// Write what is queued to a byte stream (a TCP connection: destinations are ignored, the
    /// messages follow each other) until done or the stream would block. Returns the number of
    /// messages fully written, or the stream's error (the connection is then unusable).
    pub fn flush_stream(&mut self, stream: &mut impl std::io::Write) -> io::Result<u64> {
        let mut sent = 0u64;
        while self.written < self.buf.len() {
            match stream.write(&self.buf[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        while self.head < self.items.len() {
            let (off, len, _) = self.items[self.head];
            if (off + len) as usize > self.written {
                break;
            }
            self.head += 1;
            sent += 1;
        }
        if self.head == self.items.len() {
            self.items.clear();
            self.buf.clear();
            self.head = 0;
            self.written = 0;
        }
        Ok(sent)
    }

    /// Queue a datagram whose bytes are written by `write` straight into the queue's buffer.
    pub fn push_with(&mut self, dest: SocketAddr, write: impl FnOnce(&mut Vec<u8>)) {
        let off = self.buf.len();
        write(&mut self.buf);
        let len = self.buf.len() - off;
        self.items.push((off as u32, len as u32, dest));
    }

    /// Queue a copy of `bytes`.
    pub fn push(&mut self, dest: SocketAddr, bytes: &[u8]) {
        self.push_with(dest, |b| b.extend_from_slice(bytes));
    }

    /// Send what is queued with `sendmmsg` until done or the socket would block. Returns the
    /// number of datagrams sent and the number of failed ones (dropped with an error other
    /// than WouldBlock, e.g. ENOBUFS).
    pub fn flush(&mut self, fd: RawFd) -> (u64, u64) {
        let (mut sent, mut failed) = (0u64, 0u64);
        while self.head < self.items.len() {
            let n = (self.items.len() - self.head).min(SEND_BATCH);
            let base = self.buf.as_mut_ptr();
            for i in 0..n {
                let (off, len, dest) = self.items[self.head + i];
                // SAFETY: off..off+len lies within `buf`.
                self.iovs[i].iov_base = unsafe { base.add(off as usize) }.cast();
                self.iovs[i].iov_len = len as usize;
                let alen = to_sockaddr(&dest, &mut self.addrs[i]);
                let h = &mut self.hdrs[i].msg_hdr;
                h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
                h.msg_namelen = alen;
                h.msg_iov = &mut self.iovs[i];
                h.msg_iovlen = 1;
                h.msg_control = std::ptr::null_mut();
                h.msg_controllen = 0;
                h.msg_flags = 0;
            }
            // SAFETY: n initialised headers pointing into live buffers.
            let r = unsafe { libc::sendmmsg(fd, self.hdrs.as_mut_ptr(), n as libc::c_uint, 0) };
            if r < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock => break,
                    io::ErrorKind::Interrupted => continue,
                    _ => {
                        // The first datagram failed: drop it and go on with the rest.
                        self.head += 1;
                        failed += 1;
                        continue;
                    }
                }
            }
            self.head += r as usize;
            sent += r as u64;
        }
        if self.head == self.items.len() {
            self.items.clear();
            self.buf.clear();
            self.head = 0;
        }
        (sent, failed)
    }
}

/// The raw descriptor of a mio UDP socket.
pub fn fd(s: &mio::net::UdpSocket) -> RawFd {
    s.as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_send_and_receive_over_loopback() {
        let (a, _, _) = bind("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap();
        let (b, _, _) = bind("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap();
        let bdest = b.local_addr().unwrap();
        let mut q = SendQueue::new();
        for i in 0..200u32 {
            q.push_with(bdest, |buf| {
                buf.extend_from_slice(format!("msg {i}").as_bytes())
            });
        }
        let (sent, failed) = q.flush(fd(&a));
        assert_eq!((sent, failed), (200, 0));
        assert_eq!(q.pending(), 0);
        let mut r = recv_batch();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < 200 && std::time::Instant::now() < deadline {
            let n = r.recv(fd(&b)).unwrap();
            for i in 0..n {
                let d = r.get(i);
                assert!(!d.truncated);
                assert_eq!(d.peer, Some(a.local_addr().unwrap()));
                got.push(String::from_utf8(d.bytes.to_vec()).unwrap());
            }
        }
        let want: Vec<String> = (0..200).map(|i| format!("msg {i}")).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn sockaddr_matches_the_kernel_form() {
        for a in ["127.0.0.1:5060", "[::1]:5090"] {
            let a: SocketAddr = a.parse().unwrap();
            let mut s: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let len = to_sockaddr(&a, &mut s);
            let theirs = socket2::SockAddr::from(a);
            assert_eq!(len, theirs.len());
            // SAFETY: both hold `len` initialised bytes.
            let ours = unsafe {
                std::slice::from_raw_parts(
                    (&s as *const libc::sockaddr_storage).cast::<u8>(),
                    len as usize,
                )
            };
            let theirs =
                unsafe { std::slice::from_raw_parts(theirs.as_ptr().cast::<u8>(), len as usize) };
            assert_eq!(ours, theirs);
        }
    }
}
