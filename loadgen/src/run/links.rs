//! The population's sockets: UDP sockets read with `recvmmsg` (latency from the kernel's
//! receive timestamp) and written with `sendmmsg`, or TCP connections framed into messages,
//! each carrying many user agents the way a proxy's connection does.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use mio::{Events, Interest, Poll, Token};

use super::Runner;
use crate::scenario::{LinkKind, RunLimits};
use crate::udp::{self, RecvBatch, SendQueue};

/// One of the population's sockets and what waits to leave it.
pub(super) struct Sock {
    pub link: Link,
    pub out: SendQueue,
    /// A drain was cut short: read again before sleeping.
    pub more: bool,
    /// A TCP connection's send buffer is full: wait for it to be writable.
    pub blocked: bool,
}

/// How one of the population's sockets reaches the target.
pub(super) enum Link {
    Udp(mio::net::UdpSocket),
    Tcp {
        stream: mio::net::TcpStream,
        /// Bytes read and not yet framed into messages.
        rbuf: Vec<u8>,
        /// The connection failed or the server closed it.
        dead: bool,
    },
}

/// Largest SIP message framed from a TCP stream.
const MAX_TCP_MESSAGE: usize = 65_535;

/// Wall-clock time in ns (the clock of the kernel's receive timestamps).
fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The population's sockets, open and registered, and the buffer sizes the kernel granted.
pub(super) struct Opened {
    pub socks: Vec<Sock>,
    /// Their local addresses, for the templates' Via and Contact.
    pub locals: Vec<SocketAddr>,
    /// Receive and send buffer sizes (the last socket's: all are made alike).
    pub rcvbuf: usize,
    pub sndbuf: usize,
}

/// Open `run.sockets` links to `target` (UDP sockets bound on loopback, or TCP connections),
/// registered with `poll` as tokens 0, 1, …
pub(super) fn open(run: &RunLimits, target: SocketAddr, poll: &Poll) -> Result<Opened, String> {
    let bind_ip: IpAddr = match target.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    let mut opened = Opened {
        socks: Vec::new(),
        locals: Vec::new(),
        rcvbuf: 0,
        sndbuf: 0,
    };
    for i in 0..run.sockets {
        let token = Token(i as usize);
        let (link, local, (rcv, snd)) = match run.transport {
            LinkKind::Udp => open_udp(run, bind_ip, token, poll)?,
            LinkKind::Tcp => connect_tcp(target, token, poll)?,
        };
        (opened.rcvbuf, opened.sndbuf) = (rcv, snd);
        opened.locals.push(local);
        opened.socks.push(Sock {
            link,
            out: SendQueue::new(),
            more: false,
            blocked: false,
        });
    }
    Ok(opened)
}

/// A link, its local address and its (receive, send) buffer sizes.
type Opening = (Link, SocketAddr, (usize, usize));

fn open_udp(
    run: &RunLimits,
    bind_ip: IpAddr,
    token: Token,
    poll: &Poll,
) -> Result<Opening, String> {
    let (mut s, r, sn) = udp::bind(SocketAddr::new(bind_ip, 0), run.socket_buffer_bytes)
        .map_err(|e| format!("bind {bind_ip}: {e}"))?;
    // latencies from the kernel's receive time, whenever the socket is read
    presenced::sip::datagrams::enable_timestamps(udp::fd(&s))
        .map_err(|e| format!("SO_TIMESTAMPNS: {e}"))?;
    // read every tick unless asked to wake per datagram (see RunLimits)
    let interest = if run.wake_on_receive {
        Interest::READABLE
    } else {
        Interest::WRITABLE
    };
    poll.registry()
        .register(&mut s, token, interest)
        .map_err(|e| format!("register: {e}"))?;
    let local = s.local_addr().map_err(|e| e.to_string())?;
    Ok((Link::Udp(s), local, (r, sn)))
}

fn connect_tcp(target: SocketAddr, token: Token, poll: &Poll) -> Result<Opening, String> {
    // Loopback connects at once; the connection is then used non-blocking.
    let s = std::net::TcpStream::connect(target).map_err(|e| format!("connect {target}: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    s.set_nonblocking(true).map_err(|e| e.to_string())?;
    let sr = socket2::SockRef::from(&s);
    let bufs = (
        sr.recv_buffer_size().unwrap_or(0),
        sr.send_buffer_size().unwrap_or(0),
    );
    let local = s.local_addr().map_err(|e| e.to_string())?;
    let mut s = mio::net::TcpStream::from_std(s);
    poll.registry()
        .register(&mut s, token, Interest::READABLE | Interest::WRITABLE)
        .map_err(|e| format!("register: {e}"))?;
    let link = Link::Tcp {
        stream: s,
        rbuf: Vec::new(),
        dead: false,
    };
    Ok((link, local, bufs))
}

impl Runner<'_> {
    /// Something waits on a socket: read again or send before sleeping.
    pub(super) fn io_pending(&self) -> bool {
        self.socks
            .iter()
            .any(|s| s.more || (s.out.pending() > 0 && !s.blocked))
    }

    /// After a poll: unblock the sockets that became writable and read every socket that may
    /// hold data (all of them when reading on every tick).
    pub(super) fn on_ready(
        &mut self,
        events: &Events,
        rb: &mut RecvBatch,
        read_every_tick: bool,
    ) -> Result<(), String> {
        for ev in events.iter() {
            if ev.is_writable()
                && let Some(s) = self.socks.get_mut(ev.token().0)
            {
                s.blocked = false;
            }
        }
        for i in 0..self.socks.len() {
            // edge-triggered: drain every socket that may hold data
            if self.socks[i].more
                || read_every_tick
                || events.iter().any(|e| {
                    e.token() == Token(i) && (e.is_readable() || e.is_read_closed() || e.is_error())
                })
            {
                self.drain_socket(i, rb).map_err(|e| format!("recv: {e}"))?;
            }
        }
        Ok(())
    }

    /// Send what every socket has queued, as far as each will take.
    pub(super) fn flush(&mut self) {
        for s in &mut self.socks {
            if s.out.pending() == 0 {
                continue;
            }
            match &mut s.link {
                Link::Udp(sock) => {
                    let (sent, failed) = s.out.flush(udp::fd(sock));
                    self.stats.msgs_sent += sent;
                    self.stats.send_errors += failed;
                }
                Link::Tcp { stream, dead, .. } => {
                    if *dead {
                        // nothing can leave: the requests time out and say so
                        self.stats.send_errors += s.out.pending() as u64;
                        s.out.clear();
                        continue;
                    }
                    match s.out.flush_stream(stream) {
                        Ok(sent) => {
                            self.stats.msgs_sent += sent;
                            s.blocked = s.out.pending() > 0;
                        }
                        Err(e) => {
                            *dead = true;
                            self.stats.send_errors += s.out.pending() as u64;
                            s.out.clear();
                            self.cut_short
                                .get_or_insert_with(|| format!("TCP connection failed: {e}"));
                        }
                    }
                }
            }
        }
    }

    /// Read what socket `i` holds (bounded per wake-up) and hand each message on.
    fn drain_socket(&mut self, i: usize, rb: &mut RecvBatch) -> io::Result<()> {
        if matches!(self.socks[i].link, Link::Tcp { .. }) {
            self.drain_stream(i);
            return Ok(());
        }
        // bounded per wake-up so sends are not starved by a flood of input
        for _ in 0..16 {
            let Link::Udp(sock) = &self.socks[i].link else {
                return Ok(());
            };
            let n = rb.recv(udp::fd(sock))?;
            let now = self.now();
            // the kernel stamps in wall-clock time; our clock counts from the epoch
            let wall_minus_ours = wall_ns() as i128 - now as i128;
            for k in 0..n {
                let d = rb.get(k);
                let (bytes, from) = (d.bytes, d.peer);
                if d.truncated {
                    self.stats.parse_errors += 1;
                    continue;
                }
                let arrived = d.received_ns.map_or(now, |t| {
                    (t as i128 - wall_minus_ours).clamp(0, now as i128) as u64
                });
                if let Some(from) = from {
                    self.on_datagram(i, bytes, from, arrived);
                }
            }
            if self.socks[i].out.pending() >= 256 {
                self.flush();
            }
            if n < crate::udp::RECV_BATCH {
                self.socks[i].more = false;
                return Ok(());
            }
        }
        self.socks[i].more = true;
        Ok(())
    }

    /// Read what a TCP connection holds and hand each framed message on.
    fn drain_stream(&mut self, i: usize) {
        let Link::Tcp {
            stream, rbuf, dead, ..
        } = &mut self.socks[i].link
        else {
            return;
        };
        if *dead {
            return;
        }
        let mut buf = std::mem::take(rbuf);
        let peer = stream.peer_addr().unwrap_or(self.target);
        let (more, mut closed) = read_stream(stream, &mut buf);
        let now = self.now();
        let mut at = 0;
        loop {
            use presenced_systems::sip::framing::{Frame, next_frame};
            match next_frame(&buf[at..], MAX_TCP_MESSAGE, MAX_TCP_MESSAGE) {
                Frame::Message { skip, len } => {
                    let start = at + skip;
                    at = start + len;
                    self.on_datagram(i, &buf[start..start + len], peer, now);
                }
                Frame::KeepAlive { skip, .. } => {
                    at += skip;
                    break;
                }
                Frame::Incomplete => break,
                Frame::Invalid(why) => {
                    self.stats.parse_errors += 1;
                    closed = Some(format!("unframeable TCP stream from the server: {why}"));
                    at = buf.len();
                    break;
                }
            }
        }
        buf.drain(..at);
        let s = &mut self.socks[i];
        s.more = more;
        if let Link::Tcp { rbuf, dead, .. } = &mut s.link {
            *rbuf = buf;
            if let Some(why) = closed {
                *dead = true;
                self.cut_short.get_or_insert(why);
            }
        }
    }
}

/// Append what `stream` holds to `buf`, at most 16 reads so that sends are not starved by a
/// flood of input. Returns whether more may wait, and why the connection ended if it did.
fn read_stream(stream: &mut mio::net::TcpStream, buf: &mut Vec<u8>) -> (bool, Option<String>) {
    let mut chunk = [0u8; 65536];
    for _ in 0..16 {
        match stream.read(&mut chunk) {
            Ok(0) => return (false, Some("server closed the TCP connection".to_owned())),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (false, None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (false, Some(format!("TCP connection failed: {e}"))),
        }
    }
    (true, None)
}
