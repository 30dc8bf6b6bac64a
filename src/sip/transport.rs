//! The SIP I/O loop (one thread, one mio `Poll`, after mio's `tcp_server` example): reads UDP
//! datagrams and TCP streams, frames them, hands them to the engine in batches, and writes what
//! the engine sends back. It holds no presence logic.
//!
//! Overload: the engine's inbox is bounded by a shared in-flight count. A request that would
//! exceed it is answered `503 Service Unavailable` with `Retry-After` right here; what was
//! already handed in is never dropped. Responses from peers always pass, since they complete
//! our own transactions.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use super::coalesce::Coalescer;

/// A tick this long is logged (at debug level): requests waited behind it.
const SLOW_TICK: Duration = Duration::from_millis(10);
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token, Waker};
use presenced_systems::sip::framing::{Frame, next_frame};
use presenced_systems::sip::message::overload_reply;
use presenced_systems::xdm::DocumentChange;
use presenced_systems::{ConnId, Engine, Inbound, Outbound, Source, Time, Transport};
use socket2::SockRef;
use tracing::{debug, info, warn};

use super::datagrams::{InboundSlab, RecvBatch, SendBatch, Sent};

const WAKER: Token = Token(0);
const UDP_BASE: usize = 1;
const LISTENER_BASE: usize = 1 << 16;
const CONN_BASE: usize = 1 << 20;
/// Most bytes waiting to be written on one TCP connection before it is closed as stuck.
const MAX_PENDING_WRITE: usize = 8 << 20;
/// Most datagrams waiting for a writable UDP socket.
const MAX_PENDING_DATAGRAMS: usize = 65536;
/// Datagrams read per `recvmmsg`.
const RECV_SLOTS: usize = 32;
/// Queued datagrams per socket that trigger a send before the loop's turn ends.
const SEND_CHUNK: usize = super::datagrams::SEND_BATCH;

/// Counters of the transport, shared with the rest of the shell.
#[derive(Debug, Default)]
pub struct TransportStats {
    pub datagrams_in: AtomicU64,
    pub tcp_messages_in: AtomicU64,
    pub overload_replies: AtomicU64,
    pub overload_dropped: AtomicU64,
    pub send_errors: AtomicU64,
    pub oversize_dropped: AtomicU64,
    pub tcp_accepted: AtomicU64,
    pub tcp_closed_bad_framing: AtomicU64,
}

/// Settings of the transport.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    pub max_message_bytes: usize,
    pub max_tcp_connections: usize,
    pub inbox_capacity: usize,
    pub retry_after_secs: u32,
    pub force_rport: bool,
    /// After a wake-up that brought messages, how long the loop waits before reading again so
    /// that what arrives meanwhile is taken in one batch (zero: read again at once).
    pub batch_window: Duration,
    /// Requests longer than this go over TCP instead of UDP (RFC 3261 §18.1.1); 0: never.
    pub udp_mtu: usize,
    /// How long such a request waits for its TCP connection before it goes over UDP after all.
    pub tcp_connect_fallback: Duration,
}

/// How the transport reaches the engine.
pub enum EngineSide {
    /// The engine runs on its own thread: batches go over crossbeam channels, bounded by an
    /// in-flight count, and the engine wakes this loop with the waker when it has output.
    Thread(EngineLink),
    /// The engine runs on this thread between reads and writes: no hand-off and no wake-ups,
    /// which on a small machine is most of the cost of a request at moderate rates.
    Inline(Box<InlineEngine>),
}

/// An engine driven by the I/O loop itself.
pub struct InlineEngine {
    pub engine: Engine,
    pub start: Instant,
    pub max_batch: usize,
    /// Committed document changes from the store; the store wakes the loop after each.
    pub documents: Receiver<DocumentChange>,
    out: Vec<Outbound>,
}

impl InlineEngine {
    /// An inline engine reading committed document changes from `documents`.
    pub fn new(
        engine: Engine,
        max_batch: usize,
        documents: Receiver<DocumentChange>,
    ) -> InlineEngine {
        InlineEngine {
            engine,
            start: Instant::now(),
            max_batch,
            documents,
            out: Vec::new(),
        }
    }

    fn now(&self) -> Time {
        Time(self.start.elapsed().as_millis() as u64)
    }

    /// How long the loop may sleep: until the engine's next timer.
    fn poll_timeout(&self) -> Option<std::time::Duration> {
        let now = self.now();
        self.engine
            .next_deadline()
            .map(|d| std::time::Duration::from_millis(now.until(d)))
    }
}

/// The loop's link to the engine thread.
pub struct EngineLink {
    pub to_engine: Sender<Vec<Inbound>>,
    pub from_engine: Receiver<Vec<Outbound>>,
    /// Messages handed to the engine and not yet taken into a tick.
    pub in_flight: Arc<AtomicUsize>,
    /// Set while this loop is (about to be) blocked in `poll`: only then does the engine need
    /// to wake it after a tick (a busy loop drains the outbox on its next turn anyway, and a
    /// wake-up per tick is a system call on each side).
    pub polling: Arc<AtomicBool>,
}

struct UdpEndpoint {
    socket: UdpSocket,
    local: SocketAddr,
    pending: VecDeque<Outbound>,
    /// Registered for writability: only while datagrams wait for room in the send buffer (an
    /// always-on writable interest wakes the loop after nearly every send).
    wants_write: bool,
}

struct Conn {
    id: ConnId,
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    /// Bytes read and not yet framed; messages are split off it without copying or moving the
    /// rest (a `Vec` drained per message moved every pipelined message behind it).
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    connected: bool,
    /// Requests moved from UDP to this connection because of their size (RFC 3261 §18.1.1), as
    /// they were before the move: while the connection is not up they may still go over UDP.
    fallback: Vec<Outbound>,
}

/// The SIP transport: sockets, connections and the batch on its way to the engine.
pub struct SipTransport {
    poll: Poll,
    udp: Vec<UdpEndpoint>,
    listeners: Vec<(TcpListener, SocketAddr)>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    conn_index: HashMap<ConnId, usize>,
    by_peer: HashMap<SocketAddr, ConnId>,
    next_conn: u64,
    batch: Vec<Inbound>,
    link: EngineSide,
    config: TransportConfig,
    pub stats: Arc<TransportStats>,
    recv: RecvBatch,
    /// Where received datagrams are kept (see [`InboundSlab`]).
    slab: InboundSlab,
    send_scratch: SendBatch,
    /// Messages read since the last poll (decides whether the next poll waits the window).
    read_since_poll: usize,
    /// Connections opened for requests moved off UDP, with the time they fall back to UDP.
    connecting: Vec<(ConnId, Instant)>,
}

impl SipTransport {
    /// A transport over already-bound sockets. Returns it with the waker the engine uses.
    pub fn new(
        udp: Vec<std::net::UdpSocket>,
        listeners: Vec<std::net::TcpListener>,
        link: EngineSide,
        config: TransportConfig,
    ) -> io::Result<(SipTransport, Arc<Waker>)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut eps = Vec::new();
        for (i, s) in udp.into_iter().enumerate() {
            let local = s.local_addr()?;
            let mut socket = UdpSocket::from_std(s);
            poll.registry()
                .register(&mut socket, Token(UDP_BASE + i), Interest::READABLE)?;
            eps.push(UdpEndpoint {
                socket,
                local,
                pending: VecDeque::new(),
                wants_write: false,
            });
        }
        let mut ls = Vec::new();
        for (i, l) in listeners.into_iter().enumerate() {
            let local = l.local_addr()?;
            let mut l = TcpListener::from_std(l);
            poll.registry()
                .register(&mut l, Token(LISTENER_BASE + i), Interest::READABLE)?;
            ls.push((l, local));
        }
        let recv = RecvBatch::new(RECV_SLOTS, config.max_message_bytes + 1);
        Ok((
            SipTransport {
                poll,
                udp: eps,
                listeners: ls,
                conns: Vec::new(),
                free: Vec::new(),
                conn_index: HashMap::new(),
                by_peer: HashMap::new(),
                next_conn: 0,
                batch: Vec::with_capacity(1024),
                link,
                config,
                stats: Arc::new(TransportStats::default()),
                recv,
                slab: InboundSlab::default(),
                send_scratch: SendBatch::default(),
                read_since_poll: 0,
                connecting: Vec::new(),
            },
            waker,
        ))
    }

    /// Run until `shutdown` is set (and the waker woken).
    pub fn run(&mut self, shutdown: &AtomicBool) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        // no window (the default): no rate to keep, no clock to read per wake-up
        let mut coalescer = (!self.config.batch_window.is_zero())
            .then(|| Coalescer::new(self.config.batch_window, Instant::now()));
        loop {
            let mut timeout = match &self.link {
                EngineSide::Inline(ie) => ie.poll_timeout(),
                EngineSide::Thread(_) => None,
            };
            if let Some(first) = self.connecting.iter().map(|c| c.1).min() {
                let left = first.saturating_duration_since(Instant::now());
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
            // Interrupt coalescing (see coalesce.rs): at a rate where the window gathers
            // several messages, wait it out before reading again. An idle server still blocks
            // in poll.
            if let Some(wait) = coalescer
                .as_ref()
                .and_then(|c| c.wait(Instant::now(), self.read_since_poll))
            {
                std::thread::sleep(wait);
                timeout = Some(Duration::ZERO);
            }
            self.read_since_poll = 0;
            if let EngineSide::Thread(link) = &self.link {
                // announce the sleep, then look once more: the engine either sees the flag
                // (and wakes us) or its output is already in the channel (both SeqCst)
                link.polling.store(true, Ordering::SeqCst);
                if !link.from_engine.is_empty() {
                    timeout = Some(Duration::ZERO);
                }
            }
            let polled = self.poll.poll(&mut events, timeout);
            if let EngineSide::Thread(link) = &self.link {
                link.polling.store(false, Ordering::SeqCst);
            }
            match polled {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            // a turn of the loop (reads, ticks, sends) that holds the socket up as long as a
            // slow tick is logged with its CPU time too: time off the CPU shows as the difference
            let turn = tracing::enabled!(tracing::Level::DEBUG)
                .then(|| (Instant::now(), thread_cpu(), self.read_since_poll));
            for ev in events.iter() {
                let t = ev.token().0;
                if t == WAKER.0 {
                    continue; // the outbox is drained below
                } else if t >= CONN_BASE {
                    let idx = t - CONN_BASE;
                    if ev.is_writable() {
                        self.conn_writable(idx);
                    }
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        self.conn_readable(idx);
                    }
                } else if t >= LISTENER_BASE {
                    self.accept(t - LISTENER_BASE);
                } else {
                    let i = t - UDP_BASE;
                    if ev.is_readable() {
                        self.read_udp(i);
                    }
                }
            }
            if let Some(c) = coalescer.as_mut() {
                c.woke(Instant::now(), self.read_since_poll);
            }
            self.hand_to_engine();
            self.drain_outbox();
            self.expire_connects();
            self.flush_all_udp();
            if let Some((wall0, cpu0, read0)) = turn {
                let took = wall0.elapsed();
                if took >= SLOW_TICK {
                    debug!(
                        ms = took.as_millis() as u64,
                        cpu_ms = thread_cpu().saturating_sub(cpu0).as_millis() as u64,
                        messages = self.read_since_poll.saturating_sub(read0),
                        "slow turn"
                    );
                }
            }
            if shutdown.load(Ordering::Relaxed) {
                self.drain_outbox();
                self.flush_all_udp();
                return Ok(());
            }
        }
    }

    fn read_udp(&mut self, i: usize) {
        let inline = matches!(self.link, EngineSide::Inline(_));
        // Whether the backlog is high is only asked when a read fills the batch (a partial one
        // drained the socket): a wake-up of a moderate load costs no extra system call for it.
        let mut shed = false;
        let mut read = 0usize;
        loop {
            let fd = self.udp[i].socket.as_raw_fd();
            let n = match self.recv.recv(fd) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) => {
                    debug!("udp recv on {}: {e}", self.udp[i].local);
                    return;
                }
            };
            self.stats
                .datagrams_in
                .fetch_add(n as u64, Ordering::Relaxed);
            self.read_since_poll += n;
            if inline && read == 0 && n == RECV_SLOTS {
                shed = backlog_high(&self.udp[i].socket);
            }
            for k in 0..n {
                let d = self.recv.get(k);
                let Some(peer) = d.peer else { continue };
                if d.truncated || d.bytes.len() > self.config.max_message_bytes {
                    self.stats.oversize_dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let m = Inbound {
                    source: Source {
                        transport: Transport::Udp,
                        peer,
                        local: self.udp[i].local,
                        conn: None,
                    },
                    bytes: self.slab.keep(d.bytes),
                };
                read += 1;
                if inline && read.is_multiple_of(256) {
                    shed = backlog_high(&self.udp[i].socket);
                }
                // Inline, the kernel's receive buffer is the inbox: when more than half of it
                // waits, new requests are answered 503 at once (responses still pass).
                if shed && !m.bytes.starts_with(b"SIP/") {
                    self.shed(&m);
                    continue;
                }
                self.batch.push(m);
            }
            if self.batch.len() >= 1024 {
                self.hand_to_engine();
            }
            if n < RECV_SLOTS {
                // Drained: a datagram that arrives later raises a new readiness edge.
                return;
            }
        }
    }

    /// Answer a request 503 with Retry-After instead of processing it (overload).
    fn shed(&mut self, m: &Inbound) {
        if let Some(reply) =
            overload_reply(m, self.config.retry_after_secs, self.config.force_rport)
        {
            self.stats.overload_replies.fetch_add(1, Ordering::Relaxed);
            self.send(reply);
        } else {
            self.stats.overload_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hand the batch to the engine: to its thread, or run it here.
    fn hand_to_engine(&mut self) {
        if matches!(self.link, EngineSide::Inline(_)) {
            self.tick_inline();
        } else {
            self.hand_to_thread();
        }
    }

    /// Run the inline engine over the batch (in ticks of at most `max_batch`), and over due
    /// timers and document changes, then send what it produced.
    fn tick_inline(&mut self) {
        let EngineSide::Inline(ie) = &mut self.link else {
            return;
        };
        // Changes first: a change committed (and acknowledged over HTTP) before a SIP request
        // arrived is applied before that request is processed.
        let docs: Vec<DocumentChange> = ie.documents.try_iter().collect();
        let now = ie.now();
        let due = ie.engine.next_deadline().is_some_and(|d| d <= now);
        if self.batch.is_empty() && docs.is_empty() && !due {
            return;
        }
        ie.engine.submit_documents(docs);
        let mut batch = std::mem::take(&mut self.batch);
        loop {
            let take = batch.len().min(ie.max_batch);
            let timed = tracing::enabled!(tracing::Level::DEBUG);
            let t0 = timed.then(|| (Instant::now(), thread_cpu()));
            ie.engine.tick(now, batch.drain(..take), &mut ie.out);
            if let Some((wall0, cpu0)) = t0 {
                let took = wall0.elapsed();
                if took >= SLOW_TICK {
                    // CPU time tells the engine's own work from time the thread was not running
                    let cpu_ms = thread_cpu().saturating_sub(cpu0).as_millis() as u64;
                    debug!(
                        ms = took.as_millis() as u64,
                        cpu_ms,
                        messages = take,
                        "slow tick"
                    );
                }
            }
            if batch.is_empty() {
                break;
            }
        }
        self.batch = batch; // keeps its capacity
        let mut out = std::mem::take(&mut ie.out);
        for m in out.drain(..) {
            self.send(m);
        }
        // the outbox keeps its capacity too
        if let EngineSide::Inline(ie) = &mut self.link {
            ie.out = out;
        }
    }

    /// Hand the batch to the engine thread, answering 503 to requests beyond the inbox bound.
    fn hand_to_thread(&mut self) {
        let EngineSide::Thread(link) = &self.link else {
            return;
        };
        if self.batch.is_empty() {
            return;
        }
        let in_flight = link.in_flight.load(Ordering::Acquire);
        let mut batch = std::mem::take(&mut self.batch);
        let cap = self.config.inbox_capacity;
        if in_flight + batch.len() > cap {
            let mut room = cap.saturating_sub(in_flight);
            let mut keep = Vec::with_capacity(batch.len());
            for m in batch.drain(..) {
                let is_response = m.bytes.starts_with(b"SIP/");
                if is_response || room > 0 {
                    room = room.saturating_sub(usize::from(!is_response));
                    keep.push(m);
                } else {
                    self.shed(&m);
                }
            }
            batch = keep;
        }
        // the batch leaves with the messages: the next one is sized like it (a fixed 1,024
        // slots of 120 bytes cost a fresh 120 KB block per request at moderate rates)
        self.batch = Vec::with_capacity(batch.len().clamp(16, 1024));
        if batch.is_empty() {
            return;
        }
        let EngineSide::Thread(link) = &self.link else {
            return;
        };
        let n = batch.len();
        link.in_flight.fetch_add(n, Ordering::AcqRel);
        if link.to_engine.send(batch).is_err() {
            link.in_flight.fetch_sub(n, Ordering::AcqRel);
        }
    }

    fn drain_outbox(&mut self) {
        loop {
            let msgs = match &self.link {
                EngineSide::Thread(link) => match link.from_engine.try_recv() {
                    Ok(msgs) => msgs,
                    Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => return,
                },
                EngineSide::Inline(_) => return,
            };
            for m in msgs {
                self.send(m);
            }
        }
    }

    fn send(&mut self, m: Outbound) {
        match m.dest.transport {
            Transport::Udp if self.too_large_for_udp(&m) => self.send_large_over_tcp(m),
            Transport::Udp => self.send_udp(m),
            Transport::Tcp => {
                self.send_tcp(m);
            }
        }
    }

    /// RFC 3261 §18.1.1: a request longer than the configured MTU (1300 bytes by default, the
    /// RFC's figure when the path MTU is unknown) goes over a congestion-controlled transport.
    /// Responses follow the request's transport (§18.2.2).
    fn too_large_for_udp(&self, m: &Outbound) -> bool {
        self.config.udp_mtu > 0 && m.len() > self.config.udp_mtu && !m.head.starts_with(b"SIP/")
    }

    /// Send a large request over TCP to the address it was meant for over UDP, keeping the UDP
    /// form to fall back to if the connection is refused or slow to come up.
    fn send_large_over_tcp(&mut self, m: Outbound) {
        let Some(head) = via_over(&m.head, b"TCP") else {
            self.send_udp(m);
            return;
        };
        let moved = Outbound {
            dest: presenced_systems::Dest {
                transport: Transport::Tcp,
                conn: None,
                ..m.dest
            },
            head,
            body: m.body.clone(),
        };
        match self.send_tcp(moved) {
            Some(idx) => {
                if let Some(c) = self.conns[idx].as_mut().filter(|c| !c.connected) {
                    if c.fallback.is_empty() {
                        let at = Instant::now() + self.config.tcp_connect_fallback;
                        self.connecting.push((c.id, at));
                    }
                    c.fallback.push(m);
                }
            }
            // no connection could even be started: UDP it is
            None => self.send_udp(m),
        }
    }

    /// Connections for moved requests that are still not up: close them, and their requests
    /// go over UDP.
    fn expire_connects(&mut self) {
        if self.connecting.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut i = 0;
        while i < self.connecting.len() {
            let (id, at) = self.connecting[i];
            let idx = self.conn_index.get(&id).copied();
            let pending = idx
                .and_then(|x| self.conns[x].as_ref())
                .is_some_and(|c| !c.connected);
            if !pending {
                self.connecting.swap_remove(i);
            } else if at <= now {
                self.connecting.swap_remove(i);
                if let Some(x) = idx {
                    debug!("TCP connection for a large request not up in time: UDP instead");
                    self.close_conn(x);
                }
            } else {
                i += 1;
            }
        }
    }

    fn udp_for(&self, local: SocketAddr, to: SocketAddr) -> Option<usize> {
        self.udp.iter().position(|e| e.local == local).or_else(|| {
            self.udp
                .iter()
                .position(|e| e.local.is_ipv4() == to.is_ipv4())
        })
    }

    /// Queue a datagram; queues leave in batches at the end of the loop's turn (or sooner when
    /// a batch is full).
    fn send_udp(&mut self, m: Outbound) {
        let Some(i) = self.udp_for(m.dest.local, m.dest.addr) else {
            self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let ep = &mut self.udp[i];
        if ep.pending.len() >= MAX_PENDING_DATAGRAMS {
            self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        ep.pending.push_back(m);
        if ep.pending.len() >= 4 * SEND_CHUNK {
            self.flush_udp(i);
        }
    }

    fn flush_all_udp(&mut self) {
        for i in 0..self.udp.len() {
            if !self.udp[i].pending.is_empty() {
                self.flush_udp(i);
            }
        }
    }

    /// Send what waits for socket `i` until it is all gone or the socket is full (then the
    /// writable event brings us back).
    fn flush_udp(&mut self, i: usize) {
        let ep = &mut self.udp[i];
        let fd = ep.socket.as_raw_fd();
        let mut blocked = false;
        while !ep.pending.is_empty() {
            match self.send_scratch.send(fd, ep.pending.iter()) {
                Sent::Some(n) => {
                    ep.pending.drain(..n);
                }
                Sent::WouldBlock => {
                    blocked = true;
                    break;
                }
                Sent::Failed(e) => {
                    if let Some(m) = ep.pending.pop_front() {
                        debug!("udp send to {}: {e}", m.dest.addr);
                    }
                    self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if blocked != ep.wants_write {
            let interest = if blocked {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            match self
                .poll
                .registry()
                .reregister(&mut ep.socket, Token(UDP_BASE + i), interest)
            {
                Ok(()) => ep.wants_write = blocked,
                Err(e) => warn!("udp socket {}: {e}", ep.local),
            }
        }
    }

    fn accept(&mut self, li: usize) {
        loop {
            let (listener, local) = &self.listeners[li];
            let local = *local;
            match listener.accept() {
                Ok((stream, peer)) => {
                    if self.conn_index.len() >= self.config.max_tcp_connections {
                        warn!(
                            "refusing TCP connection from {peer}: sip.max_tcp_connections reached"
                        );
                        drop(stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    self.stats.tcp_accepted.fetch_add(1, Ordering::Relaxed);
                    self.add_conn(stream, peer, local, true);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!("accept on {local}: {e}");
                    return;
                }
            }
        }
    }

    fn add_conn(
        &mut self,
        mut stream: TcpStream,
        peer: SocketAddr,
        local: SocketAddr,
        connected: bool,
    ) -> Option<ConnId> {
        let idx = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(CONN_BASE + idx),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            warn!("register connection {peer}: {e}");
            self.free.push(idx);
            return None;
        }
        self.next_conn += 1;
        let id = ConnId(self.next_conn);
        self.conns[idx] = Some(Conn {
            id,
            stream,
            peer,
            local,
            rbuf: BytesMut::new(),
            wbuf: Vec::new(),
            connected,
            fallback: Vec::new(),
        });
        self.conn_index.insert(id, idx);
        self.by_peer.insert(peer, id);
        Some(id)
    }

    fn close_conn(&mut self, idx: usize) {
        if let Some(mut c) = self.conns[idx].take() {
            let _ = self.poll.registry().deregister(&mut c.stream);
            self.conn_index.remove(&c.id);
            if self.by_peer.get(&c.peer) == Some(&c.id) {
                self.by_peer.remove(&c.peer);
            }
            self.free.push(idx);
            // RFC 3261 §18.1.1: requests moved off UDP for their size go over UDP after all when
            // the connection never came up (refused, or not in time).
            if !c.connected {
                for m in c.fallback.drain(..) {
                    self.send_udp(m);
                }
            }
        }
    }

    fn conn_readable(&mut self, idx: usize) {
        let max = self.config.max_message_bytes;
        let mut closed = false;
        {
            let Some(c) = self.conns[idx].as_mut() else {
                return;
            };
            let mut chunk = [0u8; 16384];
            loop {
                match c.stream.read(&mut chunk) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => c.rbuf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
        }
        let mut pongs = 0;
        loop {
            let Some(c) = self.conns[idx].as_mut() else {
                return;
            };
            match next_frame(&c.rbuf, max, max) {
                Frame::Message { skip, len } => {
                    c.rbuf.advance(skip);
                    let bytes = c.rbuf.split_to(len).freeze();
                    let source = Source {
                        transport: Transport::Tcp,
                        peer: c.peer,
                        local: c.local,
                        conn: Some(c.id),
                    };
                    self.stats.tcp_messages_in.fetch_add(1, Ordering::Relaxed);
                    self.batch.push(Inbound { source, bytes });
                }
                Frame::KeepAlive { skip, ping } => {
                    c.rbuf.advance(skip);
                    pongs += usize::from(ping);
                    break;
                }
                Frame::Incomplete => break,
                Frame::Invalid(why) => {
                    debug!("closing TCP connection from {}: {why}", c.peer);
                    self.stats
                        .tcp_closed_bad_framing
                        .fetch_add(1, Ordering::Relaxed);
                    closed = true;
                    break;
                }
            }
        }
        if pongs > 0 {
            // RFC 5626 §3.5.1: a double-CRLF ping is answered with a single CRLF pong.
            if let Some(c) = self.conns[idx].as_mut() {
                c.wbuf.extend_from_slice(b"\r\n");
            }
            self.conn_writable(idx);
        }
        if closed {
            self.close_conn(idx);
        }
    }

    fn conn_writable(&mut self, idx: usize) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        if !c.connected {
            match c.stream.peer_addr() {
                Ok(_) => {
                    c.connected = true;
                    c.fallback.clear();
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(_) => {
                    self.close_conn(idx);
                    return;
                }
            }
        }
        let mut failed = false;
        while !c.wbuf.is_empty() {
            match c.stream.write(&c.wbuf) {
                Ok(n) => {
                    c.wbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            self.close_conn(idx);
        }
    }

    /// Queue `m` on a connection; returns the connection's slot.
    fn send_tcp(&mut self, m: Outbound) -> Option<usize> {
        // RFC 3261 §18.2.2: the connection the request came on; else any to that address; else
        // a new one.
        let idx = m
            .dest
            .conn
            .and_then(|id| self.conn_index.get(&id).copied())
            .or_else(|| {
                self.by_peer
                    .get(&m.dest.addr)
                    .and_then(|id| self.conn_index.get(id).copied())
            });
        let idx = match idx {
            Some(i) => i,
            None => {
                if self.conn_index.len() >= self.config.max_tcp_connections {
                    self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                match TcpStream::connect(m.dest.addr) {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        let local = self.listeners.first().map(|l| l.1).unwrap_or(m.dest.local);
                        let id = self.add_conn(stream, m.dest.addr, local, false)?;
                        self.conn_index[&id]
                    }
                    Err(e) => {
                        debug!("connect to {}: {e}", m.dest.addr);
                        self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                        return None;
                    }
                }
            }
        };
        let c = self.conns[idx].as_mut()?;
        if c.wbuf.len() + m.len() > MAX_PENDING_WRITE {
            warn!("closing TCP connection to {}: peer does not read", c.peer);
            self.close_conn(idx);
            return None;
        }
        c.wbuf.extend_from_slice(&m.head);
        c.wbuf.extend_from_slice(&m.body);
        self.conn_writable(idx);
        // the write may have found the connection refused and closed it
        self.conns[idx].as_ref().map(|_| idx)
    }

    /// The inline engine's counters (None when the engine has its own thread).
    pub fn engine_stats(&self) -> Option<presenced_systems::stats::Stats> {
        match &self.link {
            EngineSide::Inline(ie) => Some(ie.engine.stats().clone()),
            EngineSide::Thread(_) => None,
        }
    }

    /// Log the transport's socket facts.
    pub fn describe(&self) {
        for ep in &self.udp {
            let s = SockRef::from(&ep.socket);
            info!(
                "sip udp {}: receive buffer {} bytes, send buffer {} bytes",
                ep.local,
                s.recv_buffer_size().unwrap_or(0),
                s.send_buffer_size().unwrap_or(0)
            );
        }
    }
}

/// True when more than half of the socket's receive buffer is waiting (SO_MEMINFO: the bytes
/// queued, against the buffer size).
fn backlog_high(socket: &UdpSocket) -> bool {
    use std::os::fd::AsRawFd;
    const SO_MEMINFO: libc::c_int = 55; // include/uapi/asm-generic/socket.h
    let mut info = [0u32; 9]; // SK_MEMINFO_VARS; [0] = rmem_alloc, [1] = rcvbuf
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: a valid fd and a buffer of `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    rc == 0 && info[1] > 0 && info[0] > info[1] / 2
}

/// The head with its top Via's transport replaced (`SIP/2.0/UDP` -> `SIP/2.0/<transport>`, three
/// letters either way, so nothing else moves). Only our own requests are moved, and their first
/// Via is the line after the request line.
fn via_over(head: &[u8], transport: &[u8; 3]) -> Option<Bytes> {
    const VIA: &[u8] = b"\r\nVia: SIP/2.0/";
    let at = head.windows(VIA.len()).position(|w| w == VIA)? + VIA.len();
    let mut out = head.to_vec();
    out.get_mut(at..at + 3)?.copy_from_slice(transport);
    Some(Bytes::from(out))
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
