//! Batched UDP I/O: `recvmmsg` to read up to [`RECV_BATCH`] datagrams per system call and
//! `sendmmsg` to write a queue of datagrams (to any destinations) in as few calls as possible.
//! All buffers are allocated once; the hot path allocates nothing.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

/// Datagrams read per `recvmmsg` call.
pub const RECV_BATCH: usize = 64;
/// Largest datagram read; longer ones are truncated and counted as errors.
pub const RECV_SIZE: usize = 65_535;
/// Datagrams written per `sendmmsg` call.
const SEND_BATCH: usize = 128;

/// Create a non-blocking UDP socket bound to `addr` with buffers of `buf_bytes` asked for
/// (forced past `net.core.[rw]mem_max` when running as root). Returns the socket and the
/// granted (receive, send) sizes.
pub fn bind(addr: SocketAddr, buf_bytes: usize) -> io::Result<(mio::net::UdpSocket, usize, usize)> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_nonblocking(true)?;
    let _ = s.set_recv_buffer_size(buf_bytes);
    let _ = s.set_send_buffer_size(buf_bytes);
    force_buffers(s.as_raw_fd(), buf_bytes);
    s.bind(&addr.into())?;
    let rcv = s.recv_buffer_size().unwrap_or(0);
    let snd = s.send_buffer_size().unwrap_or(0);
    let std: std::net::UdpSocket = s.into();
    Ok((mio::net::UdpSocket::from_std(std), rcv, snd))
}

/// SO_RCVBUFFORCE / SO_SNDBUFFORCE: only root may; failure leaves the capped sizes.
fn force_buffers(fd: RawFd, bytes: usize) {
    let v: libc::c_int = bytes.min(i32::MAX as usize) as libc::c_int;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_SNDBUFFORCE] {
        // SAFETY: fd is a live socket; the option value is a c_int of the stated size.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
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

/// Convert a C socket address back; `None` for families other than IPv4/IPv6.
pub fn from_sockaddr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let sin = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let sin6 =
                unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Receive buffers for `recvmmsg`, allocated once.
pub struct RecvBatch {
    bufs: Vec<u8>,
    iovs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_storage>,
    hdrs: Vec<libc::mmsghdr>,
    /// Datagrams held from the last [`RecvBatch::recv`].
    pub len: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    /// Buffers for [`RECV_BATCH`] datagrams of up to [`RECV_SIZE`] bytes.
    pub fn new() -> RecvBatch {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let zero_addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let zero_hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
        RecvBatch {
            bufs: vec![0; RECV_BATCH * RECV_SIZE],
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                RECV_BATCH
            ],
            addrs: vec![zero_addr; RECV_BATCH],
            hdrs: vec![zero_hdr; RECV_BATCH],
            len: 0,
        }
    }

    /// One `recvmmsg` without blocking. `Ok(0)` means nothing was waiting (WouldBlock).
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let base = self.bufs.as_mut_ptr();
        for i in 0..RECV_BATCH {
            // SAFETY: i * RECV_SIZE is within `bufs` (RECV_BATCH * RECV_SIZE bytes).
            self.iovs[i].iov_base = unsafe { base.add(i * RECV_SIZE) }.cast();
            self.iovs[i].iov_len = RECV_SIZE;
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        // SAFETY: hdrs points at RECV_BATCH initialised headers whose buffers outlive the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                RECV_BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            self.len = 0;
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(0),
                io::ErrorKind::Interrupted => Ok(0),
                // ICMP errors from earlier sends on this socket: nothing to read.
                io::ErrorKind::ConnectionRefused => Ok(0),
                _ => Err(e),
            };
        }
        self.len = n as usize;
        Ok(self.len)
    }

    /// Datagram `i` of the last batch: bytes, source and whether it was truncated.
    pub fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>, bool) {
        let len = self.hdrs[i].msg_len as usize;
        let truncated = self.hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        (
            &self.bufs[i * RECV_SIZE..i * RECV_SIZE + len.min(RECV_SIZE)],
            from_sockaddr(&self.addrs[i]),
            truncated,
        )
    }
}

/// A queue of datagrams to send: one contiguous byte buffer plus (offset, length, destination).
pub struct SendQueue {
    buf: Vec<u8>,
    items: Vec<(u32, u32, SocketAddr)>,
    /// First item not yet sent.
    head: usize,
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

    /// Datagrams waiting.
    pub fn pending(&self) -> usize {
        self.items.len() - self.head
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
        let mut r = RecvBatch::new();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < 200 && std::time::Instant::now() < deadline {
            let n = r.recv(fd(&b)).unwrap();
            for i in 0..n {
                let (bytes, from, trunc) = r.get(i);
                assert!(!trunc);
                assert_eq!(from, Some(a.local_addr().unwrap()));
                got.push(String::from_utf8(bytes.to_vec()).unwrap());
            }
        }
        assert_eq!(got.len(), 200);
        assert_eq!(got[0], "msg 0");
        assert_eq!(got[199], "msg 199");
    }

    #[test]
    fn sockaddr_round_trip() {
        for a in ["127.0.0.1:5060", "[::1]:5090"] {
            let a: SocketAddr = a.parse().unwrap();
            let mut s: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            to_sockaddr(&a, &mut s);
            assert_eq!(from_sockaddr(&s), Some(a));
        }
    }
}
