//! The SIP UDP sockets: datagrams read and written in batches (`recvmmsg`, `sendmmsg`, see
//! `datagrams.rs`), the inline overload check on reads, and which requests are too large for
//! UDP (RFC 3261 §18.1.1; the loop moves them to TCP).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use presenced_systems::{Inbound, Outbound, Source, Transport};
use tracing::{debug, warn};

use super::datagrams::{InboundSlab, RecvBatch, SEND_BATCH, SendBatch, Sent};
use super::engine_link::BATCH;
use super::overload::{backlog_high, is_response};
use super::transport::{TransportStats, Wiring};

/// The token of UDP socket `i` is `TOKEN_BASE + i`.
pub const TOKEN_BASE: usize = 1;
/// Most datagrams waiting for a writable UDP socket.
const MAX_PENDING_DATAGRAMS: usize = 65536;
/// Datagrams read per `recvmmsg`.
const RECV_SLOTS: usize = 32;
/// Queued datagrams per socket that trigger a send before the loop's turn ends.
const SEND_CHUNK: usize = SEND_BATCH;

struct Endpoint {
    socket: UdpSocket,
    local: SocketAddr,
    pending: VecDeque<Outbound>,
    /// Registered for writability: only while datagrams wait for room in the send buffer (an
    /// always-on writable interest wakes the loop after nearly every send).
    wants_write: bool,
}

/// What one [`Udp::read`] did.
pub struct Read {
    /// Datagrams received (the dropped ones too).
    pub datagrams: usize,
    /// False when the socket was drained: a datagram that arrives later raises a new
    /// readiness edge. True when the read stopped at a full batch with more perhaps waiting.
    pub more: bool,
}

/// The UDP sockets with their send queues.
pub struct Udp {
    registry: Registry,
    stats: Arc<TransportStats>,
    endpoints: Vec<Endpoint>,
    recv: RecvBatch,
    /// Where received datagrams are kept (see [`InboundSlab`]).
    slab: InboundSlab,
    send_scratch: SendBatch,
    max_message_bytes: usize,
    udp_mtu: usize,
}

impl Udp {
    /// Over `sockets` (socket `i` registered as token `TOKEN_BASE + i`).
    pub fn new(wiring: &Wiring, sockets: Vec<std::net::UdpSocket>) -> io::Result<Udp> {
        let config = wiring.config;
        let sockets = wiring.register(sockets.into_iter().map(UdpSocket::from_std), TOKEN_BASE)?;
        let endpoints = sockets
            .into_iter()
            .map(|socket| {
                Ok(Endpoint {
                    local: socket.local_addr()?,
                    socket,
                    pending: VecDeque::new(),
                    wants_write: false,
                })
            })
            .collect::<io::Result<_>>()?;
        Ok(Udp {
            registry: wiring.registry.try_clone()?,
            stats: wiring.stats.clone(),
            endpoints,
            recv: RecvBatch::new(RECV_SLOTS, config.max_message_bytes + 1),
            slab: InboundSlab::default(),
            send_scratch: SendBatch::default(),
            max_message_bytes: config.max_message_bytes,
            udp_mtu: config.udp_mtu,
        })
    }

    /// Read socket `i` into `batch` until it is drained or the batch holds [`BATCH`] messages.
    /// With `inline` (the receive buffer is the engine's inbox), requests that arrive while
    /// more than half of it waits go to `shed` instead, to be answered 503.
    pub fn read(
        &mut self,
        i: usize,
        inline: bool,
        batch: &mut Vec<Inbound>,
        shed: &mut Vec<Inbound>,
    ) -> Read {
        let ep = &self.endpoints[i];
        let fd = ep.socket.as_raw_fd();
        let mut done = Read {
            datagrams: 0,
            more: true,
        };
        // Whether the backlog is high is only asked when a read fills the batch (a partial one
        // drained the socket): a wake-up of a moderate load costs no extra system call for it.
        let mut high = false;
        let mut read = 0usize;
        while batch.len() < BATCH {
            let n = match self.recv.recv(fd) {
                Ok(n) => n,
                Err(e) => {
                    debug!("udp recv on {}: {e}", ep.local);
                    0
                }
            };
            done.datagrams += n;
            done.more = n == RECV_SLOTS;
            if n == 0 {
                break;
            }
            self.stats
                .datagrams_in
                .fetch_add(n as u64, Ordering::Relaxed);
            if inline && read == 0 && n == RECV_SLOTS {
                high = backlog_high(&ep.socket);
            }
            for k in 0..n {
                let d = self.recv.get(k);
                let Some(peer) = d.peer else { continue };
                if d.truncated || d.bytes.len() > self.max_message_bytes {
                    self.stats.oversize_dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let m = Inbound {
                    source: Source {
                        transport: Transport::Udp,
                        peer,
                        local: ep.local,
                        conn: None,
                        verified_peer: false,
                    },
                    bytes: self.slab.keep(d.bytes),
                };
                read += 1;
                if inline && read.is_multiple_of(256) {
                    high = backlog_high(&ep.socket);
                }
                if high && !is_response(&m) {
                    shed.push(m);
                } else {
                    batch.push(m);
                }
            }
            if !done.more {
                break;
            }
        }
        done
    }

    /// RFC 3261 §18.1.1: a request longer than the configured MTU (1300 bytes by default, the
    /// RFC's figure when the path MTU is unknown) goes over a congestion-controlled transport.
    /// Responses follow the request's transport (§18.2.2).
    pub fn too_large(&self, m: &Outbound) -> bool {
        self.udp_mtu > 0 && m.len() > self.udp_mtu && !m.head.starts_with(b"SIP/")
    }

    fn endpoint_for(&self, local: SocketAddr, to: SocketAddr) -> Option<usize> {
        let eps = &self.endpoints;
        eps.iter()
            .position(|e| e.local == local)
            .or_else(|| eps.iter().position(|e| e.local.is_ipv4() == to.is_ipv4()))
    }

    /// Queue a datagram; queues leave in batches at the end of the loop's turn (or sooner when
    /// a batch is full).
    pub fn send(&mut self, m: Outbound) {
        let Some(i) = self.endpoint_for(m.dest.local, m.dest.addr) else {
            self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let ep = &mut self.endpoints[i];
        if ep.pending.len() >= MAX_PENDING_DATAGRAMS {
            self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        ep.pending.push_back(m);
        if ep.pending.len() >= 4 * SEND_CHUNK {
            self.flush(i);
        }
    }

    /// Send what waits on every socket.
    pub fn flush_all(&mut self) {
        for i in 0..self.endpoints.len() {
            if !self.endpoints[i].pending.is_empty() {
                self.flush(i);
            }
        }
    }

    /// Send what waits for socket `i` until it is all gone or the socket is full (then the
    /// writable event brings us back).
    fn flush(&mut self, i: usize) {
        let ep = &mut self.endpoints[i];
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
                .registry
                .reregister(&mut ep.socket, Token(TOKEN_BASE + i), interest)
            {
                Ok(()) => ep.wants_write = blocked,
                Err(e) => warn!("udp socket {}: {e}", ep.local),
            }
        }
    }
}
