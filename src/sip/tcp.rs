//! SIP over TCP and TLS: the listeners, the connections (accepted and opened), framing of the
//! byte streams into messages, the connection limits, and requests moved here from UDP for
//! their size, which go over UDP after all when their connection does not come up in time.
//! A TLS connection (RFC 3261 §26) is a TCP one whose bytes pass through rustls:
//! the same framing, limits and reuse; presenced accepts TLS connections and answers over
//! them, it does not open any.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use presenced_systems::sip::framing::{Frame, next_frame};
use presenced_systems::{ConnId, Dest, Inbound, Outbound, Source, Transport};
use tracing::{debug, warn};

use super::transport::{TransportStats, Wiring};

/// The token of listener `i` is `LISTENER_BASE + i`.
pub const LISTENER_BASE: usize = 1 << 16;
/// The token of the connection in slot `i` is `CONN_BASE + i`.
const CONN_BASE: usize = 1 << 20;
/// Most bytes waiting to be written on one TCP connection before it is closed as stuck.
const MAX_PENDING_WRITE: usize = 8 << 20;

struct Conn {
    id: ConnId,
    stream: TcpStream,
    /// The TLS state (rustls) of a connection accepted on a TLS listener.
    tls: Option<Box<rustls::ServerConnection>>,
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

/// The listeners and connections.
pub struct Tcp {
    registry: Registry,
    /// Each with its TLS configuration when it is a TLS listener.
    listeners: Vec<(SocketAddr, TcpListener, Option<Arc<rustls::ServerConfig>>)>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    conn_index: HashMap<ConnId, usize>,
    by_peer: HashMap<SocketAddr, ConnId>,
    next_conn: u64,
    /// Connections opened for requests moved off UDP, with the time they fall back to UDP.
    connecting: Vec<(ConnId, Instant)>,
    /// The UDP forms of moved requests whose connection closed before it came up, to be sent
    /// over UDP (see [`Tcp::fallen_back`]).
    to_udp: Vec<Outbound>,
    max_message_bytes: usize,
    max_connections: usize,
    connect_fallback: Duration,
    stats: Arc<TransportStats>,
}

impl Tcp {
    /// Over `listeners` and `tls_listeners` (with `tls`), listener `i` of them all registered
    /// as token `LISTENER_BASE + i`.
    pub fn new(
        wiring: &Wiring,
        listeners: Vec<std::net::TcpListener>,
        tls_listeners: Vec<std::net::TcpListener>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<Tcp> {
        let config = wiring.config;
        let n_plain = listeners.len();
        let ls = wiring.register(
            listeners
                .into_iter()
                .chain(tls_listeners)
                .map(TcpListener::from_std),
            LISTENER_BASE,
        )?;
        let listeners = ls
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                let tls = if i < n_plain { None } else { tls.clone() };
                Ok((l.local_addr()?, l, tls))
            })
            .collect::<io::Result<_>>()?;
        Ok(Tcp {
            registry: wiring.registry.try_clone()?,
            listeners,
            conns: Vec::new(),
            free: Vec::new(),
            conn_index: HashMap::new(),
            by_peer: HashMap::new(),
            next_conn: 0,
            connecting: Vec::new(),
            to_udp: Vec::new(),
            max_message_bytes: config.max_message_bytes,
            max_connections: config.max_tcp_connections,
            connect_fallback: config.tcp_connect_fallback,
            stats: wiring.stats.clone(),
        })
    }

    /// Handle an event of a token from `LISTENER_BASE` up; messages read go to `batch`.
    pub fn event(&mut self, ev: &Event, batch: &mut Vec<Inbound>) {
        let t = ev.token().0;
        if t < CONN_BASE {
            self.accept(t - LISTENER_BASE);
            return;
        }
        let idx = t - CONN_BASE;
        if ev.is_writable() {
            self.conn_writable(idx);
        }
        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
            self.conn_readable(idx, batch);
        }
    }

    /// The UDP forms of moved requests whose connection never came up (refused, or not in
    /// time): RFC 3261 §18.1.1 lets them go over UDP after all.
    pub fn fallen_back(&mut self) -> std::vec::Drain<'_, Outbound> {
        self.to_udp.drain(..)
    }

    /// When the first connection for moved requests is due to give up.
    pub fn next_fallback(&self) -> Option<Instant> {
        self.connecting.iter().map(|c| c.1).min()
    }

    /// Connections for moved requests that are still not up: close them, and their requests
    /// go over UDP.
    pub fn expire_connects(&mut self) {
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

    /// Send a large request over TCP to the address it was meant for over UDP, keeping the UDP
    /// form to fall back to if the connection is refused or slow to come up. Returns the
    /// request when it is to go over UDP at once.
    pub fn send_moved(&mut self, m: Outbound) -> Option<Outbound> {
        let Some(head) = via_over(&m.head, b"TCP") else {
            return Some(m);
        };
        let moved = Outbound {
            dest: Dest {
                transport: Transport::Tcp,
                conn: None,
                ..m.dest
            },
            head,
            body: m.body.clone(),
        };
        let Some(idx) = self.queue(moved) else {
            // no connection could even be started: UDP it is
            return Some(m);
        };
        if let Some(c) = self.conns[idx].as_mut().filter(|c| !c.connected) {
            if c.fallback.is_empty() {
                self.connecting
                    .push((c.id, Instant::now() + self.connect_fallback));
            }
            c.fallback.push(m);
        }
        None
    }

    /// Queue `m` on its connection.
    pub fn send(&mut self, m: Outbound) {
        self.queue(m);
    }

    fn accept(&mut self, li: usize) {
        loop {
            let (local, listener, tls) = &self.listeners[li];
            let (local, tls) = (*local, tls.clone());
            match listener.accept() {
                Ok((stream, peer)) => {
                    if self.conn_index.len() >= self.max_connections {
                        warn!(
                            "refusing TCP connection from {peer}: sip.max_tcp_connections reached"
                        );
                        drop(stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    self.stats.tcp_accepted.fetch_add(1, Ordering::Relaxed);
                    let tls_state = match tls.map(rustls::ServerConnection::new) {
                        None => None,
                        Some(Ok(s)) => Some(Box::new(s)),
                        Some(Err(e)) => {
                            warn!("TLS for {peer}: {e}");
                            continue;
                        }
                    };
                    if let Some(id) = self.add_conn(stream, peer, local, true)
                        && let Some(&idx) = self.conn_index.get(&id)
                        && let Some(c) = self.conns[idx].as_mut()
                    {
                        c.tls = tls_state;
                    }
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
        if let Err(e) = self.registry.register(
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
            tls: None,
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
            let _ = self.registry.deregister(&mut c.stream);
            self.conn_index.remove(&c.id);
            if self.by_peer.get(&c.peer) == Some(&c.id) {
                self.by_peer.remove(&c.peer);
            }
            self.free.push(idx);
            // RFC 3261 §18.1.1: requests moved off UDP for their size go over UDP after all when
            // the connection never came up (refused, or not in time).
            if !c.connected {
                self.to_udp.append(&mut c.fallback);
            }
        }
    }

    fn conn_readable(&mut self, idx: usize, batch: &mut Vec<Inbound>) {
        let max = self.max_message_bytes;
        let mut closed = {
            let Some(c) = self.conns[idx].as_mut() else {
                return;
            };
            match c.tls.as_deref_mut() {
                Some(tls) => read_tls(tls, &mut c.stream, &mut c.rbuf, c.peer),
                None => read_plain(&mut c.stream, &mut c.rbuf),
            }
        };
        // a handshake message may want an answer before any SIP flows
        if self.conns[idx]
            .as_ref()
            .is_some_and(|c| c.tls.as_ref().is_some_and(|t| t.wants_write()))
        {
            self.conn_writable(idx);
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
                        transport: if c.tls.is_some() {
                            Transport::Tls
                        } else {
                            Transport::Tcp
                        },
                        peer: c.peer,
                        local: c.local,
                        conn: Some(c.id),
                        // presented and verified in the handshake (only asked for with
                        // tls.client_ca)
                        verified_peer: c
                            .tls
                            .as_ref()
                            .is_some_and(|t| t.peer_certificates().is_some()),
                    };
                    self.stats.tcp_messages_in.fetch_add(1, Ordering::Relaxed);
                    batch.push(Inbound { source, bytes });
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
        let failed = match c.tls.as_deref_mut() {
            Some(tls) => write_tls(tls, &mut c.stream, &mut c.wbuf),
            None => write_plain(&mut c.stream, &mut c.wbuf),
        };
        if failed {
            self.close_conn(idx);
        }
    }

    /// Queue `m` on a connection; returns the connection's slot.
    fn queue(&mut self, m: Outbound) -> Option<usize> {
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
            None if m.dest.transport == Transport::Tls => {
                // we open no TLS connections (no client identity or name to verify)
                debug!("no TLS connection to {}: not sent", m.dest.addr);
                self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            None => {
                if self.conn_index.len() >= self.max_connections {
                    self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                match TcpStream::connect(m.dest.addr) {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        let local = self.listeners.first().map(|l| l.0).unwrap_or(m.dest.local);
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
}

/// Read what the socket has into `rbuf`; true when the connection is closed.
fn read_plain(stream: &mut TcpStream, rbuf: &mut BytesMut) -> bool {
    let mut chunk = [0u8; 16384];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return true,
            Ok(n) => rbuf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// Read what the socket has through TLS, the plaintext into `rbuf`; true when the
/// connection is closed (by the peer, or for a TLS error, after the alert is sent).
fn read_tls(
    tls: &mut rustls::ServerConnection,
    stream: &mut TcpStream,
    rbuf: &mut BytesMut,
    peer: SocketAddr,
) -> bool {
    let mut chunk = [0u8; 16384];
    loop {
        let eof = match tls.read_tls(stream) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        };
        if let Err(e) = tls.process_new_packets() {
            debug!("closing TLS connection from {peer}: {e}");
            let _ = tls.write_tls(stream);
            return true;
        }
        loop {
            match tls.reader().read(&mut chunk) {
                Ok(0) => return true, // close_notify
                Ok(n) => rbuf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return true,
            }
        }
        if eof {
            return true;
        }
    }
}

/// Write `wbuf` (as much as the socket takes); true when the connection failed.
fn write_plain(stream: &mut TcpStream, wbuf: &mut Vec<u8>) -> bool {
    while !wbuf.is_empty() {
        match stream.write(wbuf) {
            Ok(n) => {
                wbuf.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
    false
}

/// Hand `wbuf` to TLS (as much as it buffers) and write its records (handshake
/// ones too) as far as the socket takes; true when the connection failed.
fn write_tls(
    tls: &mut rustls::ServerConnection,
    stream: &mut TcpStream,
    wbuf: &mut Vec<u8>,
) -> bool {
    loop {
        if !wbuf.is_empty() {
            match tls.writer().write(wbuf) {
                Ok(n) => {
                    wbuf.drain(..n);
                }
                Err(_) => return true,
            }
        }
        if !tls.wants_write() {
            return false;
        }
        match tls.write_tls(stream) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::via_over;

    #[test]
    fn a_moved_request_names_tcp_in_its_top_via_and_nothing_else_changes() {
        let head = b"NOTIFY sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP ps;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP x\r\n\r\n";
        let moved = via_over(head, b"TCP").unwrap();
        assert_eq!(
            &moved[..],
            b"NOTIFY sip:b@h SIP/2.0\r\nVia: SIP/2.0/TCP ps;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP x\r\n\r\n"
        );
        assert!(via_over(b"NOTIFY sip:b@h SIP/2.0\r\n\r\n", b"TCP").is_none());
    }
}
