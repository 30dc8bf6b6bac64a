//! The SIP I/O loop (one thread, one mio `Poll`, after mio's `tcp_server` example): reads UDP
//! datagrams and TCP streams (`udp.rs`, `tcp.rs`), hands them to the engine in batches
//! (`engine_link.rs`), and writes what the engine sends back. It holds no presence logic.
//! Requests the engine cannot take now are answered 503 here (`overload.rs`).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use presenced_systems::{Inbound, Outbound, Transport};
use tracing::debug;

use super::coalesce::Coalescer;
use super::engine_link::{BATCH, EngineLink};
use super::overload::{self, Shedding};
use super::stopwatch::{LOG_TARGET, Stopwatch};
use super::tcp::{self, Tcp};
use super::udp::{self, Udp};

const WAKER: Token = Token(0);

/// What the UDP and TCP sides are built with.
pub(super) struct Wiring<'a> {
    /// The loop's registry.
    pub registry: &'a Registry,
    /// The transport's settings.
    pub config: &'a TransportConfig,
    /// The shared counters.
    pub stats: &'a Arc<TransportStats>,
}

impl Wiring<'_> {
    /// `sources` registered for reading (source `i` as token `base + i`).
    pub fn register<S: Source>(
        &self,
        sources: impl IntoIterator<Item = S>,
        base: usize,
    ) -> io::Result<Vec<S>> {
        let mut out = Vec::new();
        for (i, mut s) in sources.into_iter().enumerate() {
            self.registry
                .register(&mut s, Token(base + i), Interest::READABLE)?;
            out.push(s);
        }
        Ok(out)
    }
}

/// Counters of the transport, shared with the rest of the shell.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Datagrams received, dropped ones included.
    pub datagrams_in: AtomicU64,
    /// Messages framed off TCP connections.
    pub tcp_messages_in: AtomicU64,
    /// Requests answered 503 for overload.
    pub overload_replies: AtomicU64,
    /// Requests shed for overload that get no answer (ACK, or too broken to answer).
    pub overload_dropped: AtomicU64,
    /// Messages that could not be sent.
    pub send_errors: AtomicU64,
    /// Datagrams over `max_message_bytes`, dropped.
    pub oversize_dropped: AtomicU64,
    /// TCP connections accepted.
    pub tcp_accepted: AtomicU64,
    /// TCP connections closed for a stream that does not frame as SIP.
    pub tcp_closed_bad_framing: AtomicU64,
}

/// Settings of the transport.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Longest message read; longer datagrams are dropped, longer TCP messages close the
    /// connection.
    pub max_message_bytes: usize,
    /// Most TCP connections, accepted and opened together.
    pub max_tcp_connections: usize,
    /// Seconds a client is asked to wait in a 503.
    pub retry_after_secs: u32,
    /// Answer to the source port even without `rport` (RFC 3581).
    pub force_rport: bool,
    /// After a wake-up that brought messages, how long the loop waits before reading again so
    /// that what arrives meanwhile is taken in one batch (zero: read again at once).
    pub batch_window: Duration,
    /// Requests longer than this go over TCP instead of UDP (RFC 3261 §18.1.1); 0: never.
    pub udp_mtu: usize,
    /// How long such a request waits for its TCP connection before it goes over UDP after all.
    pub tcp_connect_fallback: Duration,
}

/// The sockets and how a message leaves.
struct Io {
    udp: Udp,
    tcp: Tcp,
    shedding: Shedding,
}

impl Io {
    /// Send `m` over its transport (a large UDP request over TCP, see [`Udp::too_large`]).
    fn send(&mut self, m: Outbound) {
        match m.dest.transport {
            Transport::Udp if self.udp.too_large(&m) => {
                let unmoved = self.tcp.send_moved(m);
                // requests that were waiting on a connection found refused leave first
                self.fall_back();
                if let Some(m) = unmoved {
                    self.udp.send(m);
                }
            }
            Transport::Udp => self.udp.send(m),
            Transport::Tcp | Transport::Tls => {
                self.tcp.send(m);
                self.fall_back();
            }
        }
    }

    /// Requests moved to TCP whose connection never came up go over UDP.
    fn fall_back(&mut self) {
        for m in self.tcp.fallen_back() {
            self.udp.send(m);
        }
    }

    /// Answer a request 503 with Retry-After instead of processing it (overload).
    fn shed(&mut self, m: &Inbound) {
        if let Some(reply) = self.shedding.reply(m) {
            self.send(reply);
        }
    }
}

/// The SIP transport: sockets, connections and the batch on its way to the engine.
pub struct SipTransport {
    poll: Poll,
    io: Io,
    batch: Vec<Inbound>,
    /// Requests read while the receive buffer was over half full, to be answered 503.
    shed: Vec<Inbound>,
    batch_window: Duration,
    /// Messages read since the last poll (decides whether the next poll waits the window).
    read_since_poll: usize,
    /// Shared with the rest of the shell.
    pub stats: Arc<TransportStats>,
}

impl SipTransport {
    /// A transport over already-bound sockets. Returns it with the waker of its loop.
    pub fn new(
        udp: Vec<std::net::UdpSocket>,
        listeners: Vec<std::net::TcpListener>,
        tls_listeners: Vec<std::net::TcpListener>,
        tls: Option<Arc<rustls::ServerConfig>>,
        config: TransportConfig,
    ) -> io::Result<(SipTransport, Arc<Waker>)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stats = Arc::new(TransportStats::default());
        let wiring = Wiring {
            registry: poll.registry(),
            config: &config,
            stats: &stats,
        };
        let io = Io {
            udp: Udp::new(&wiring, udp)?,
            tcp: Tcp::new(&wiring, listeners, tls_listeners, tls)?,
            shedding: Shedding {
                retry_after_secs: config.retry_after_secs,
                force_rport: config.force_rport,
                stats: stats.clone(),
            },
        };
        Ok((
            SipTransport {
                poll,
                io,
                batch: Vec::with_capacity(BATCH),
                shed: Vec::new(),
                batch_window: config.batch_window,
                read_since_poll: 0,
                stats,
            },
            waker,
        ))
    }

    /// Run with `engine` until `shutdown` is set (and the waker woken).
    pub fn run<E: EngineLink>(&mut self, engine: &mut E, shutdown: &AtomicBool) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        // no window (the default): no rate to keep, no clock to read per wake-up
        let mut coalescer = (!self.batch_window.is_zero())
            .then(|| Coalescer::new(self.batch_window, Instant::now()));
        loop {
            let mut timeout = engine.timeout();
            if let Some(first) = self.io.tcp.next_fallback() {
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
            if !engine.may_sleep() {
                timeout = Some(Duration::ZERO);
            }
            let polled = self.poll.poll(&mut events, timeout);
            engine.woke();
            match polled {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            // a turn of the loop (reads, ticks, sends) that holds the socket up as long as a
            // slow tick is logged with its CPU time too: time off the CPU shows as the difference
            let turn = tracing::enabled!(target: LOG_TARGET, tracing::Level::DEBUG)
                .then(|| (Stopwatch::start(), self.read_since_poll));
            for ev in events.iter() {
                let t = ev.token().0;
                if t == WAKER.0 {
                    continue; // the outbox is drained below
                } else if t >= tcp::LISTENER_BASE {
                    self.io.tcp.event(ev, &mut self.batch);
                    self.io.fall_back();
                } else if ev.is_readable() {
                    self.read_udp(t - udp::TOKEN_BASE, engine);
                }
            }
            if let Some(c) = coalescer.as_mut() {
                c.woke(Instant::now(), self.read_since_poll);
            }
            self.hand_to_engine(engine);
            self.take_output(engine);
            self.io.tcp.expire_connects();
            self.io.fall_back();
            self.io.udp.flush_all();
            if let Some((watch, read0)) = turn
                && let Some((ms, cpu_ms)) = watch.slow()
            {
                let messages = self.read_since_poll.saturating_sub(read0);
                debug!(target: LOG_TARGET, ms, cpu_ms, messages, "slow turn");
            }
            if shutdown.load(Ordering::Relaxed) {
                self.take_output(engine);
                let io = &mut self.io;
                engine.settle(|m| io.send(m));
                self.io.udp.flush_all();
                return Ok(());
            }
        }
    }

    /// Read UDP socket `i` until it is drained, handing in each full batch on the way.
    fn read_udp<E: EngineLink>(&mut self, i: usize, engine: &mut E) {
        loop {
            let read = self
                .io
                .udp
                .read(i, E::INLINE, &mut self.batch, &mut self.shed);
            self.read_since_poll += read.datagrams;
            for m in self.shed.drain(..) {
                self.io.shed(&m);
            }
            if self.batch.len() >= BATCH {
                self.hand_to_engine(engine);
            }
            if !read.more {
                return;
            }
        }
    }

    /// Hand the batch to the engine, answering 503 to requests beyond its inbox's room.
    fn hand_to_engine<E: EngineLink>(&mut self, engine: &mut E) {
        let io = &mut self.io;
        overload::admit(&mut self.batch, engine.room(), |m| io.shed(m));
        engine.hand_in(&mut self.batch, |m| io.send(m));
    }

    /// Send what the engine has produced.
    fn take_output<E: EngineLink>(&mut self, engine: &mut E) {
        let io = &mut self.io;
        engine.take_output(|m| io.send(m));
    }
}
