//! `loadgen responder`: a trivial stateless SIP UAS that answers every request 200 at once,
//! echoing Via, From, To, Call-ID and CSeq. It keeps no dialogs, so a SUBSCRIBE gets a 200
//! without a To tag and no NOTIFY follows; a PUBLISH gets a `SIP-ETag` so that modifies take
//! the same path as against a real server. It is the harness limit: a server's rate divided by
//! the responder's on the same load shows how much of the box the server leaves unused.
//! With another final status ([`Responder::answering`]) it answers every request with that
//! status and no SIP-ETag or Expires: a server that fails everything, for testing the checks
//! that read loadgen's report.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::sipmsg::{self, Start};
use crate::udp::{self, SendQueue};

/// Counters of a responder, readable while it runs.
#[derive(Debug, Default)]
pub struct ResponderStats {
    pub requests: AtomicU64,
    pub responses_ignored: AtomicU64,
    pub unreadable: AtomicU64,
}

/// A bound responder socket, ready to [`Responder::serve`].
pub struct Responder {
    sock: mio::net::UdpSocket,
    /// Status line of every answer, e.g. `200 OK`.
    status: Vec<u8>,
    pub local: SocketAddr,
    pub stats: Arc<ResponderStats>,
}

impl Responder {
    /// Bind on `addr` (loopback only).
    pub fn bind(addr: SocketAddr) -> Result<Responder, String> {
        crate::run::check_loopback(&addr)?;
        let (sock, _, _) = udp::bind(addr, 8 << 20).map_err(|e| format!("bind {addr}: {e}"))?;
        let local = sock.local_addr().map_err(|e| e.to_string())?;
        Ok(Responder {
            sock,
            status: b"200 OK".to_vec(),
            local,
            stats: Arc::new(ResponderStats::default()),
        })
    }

    /// Answer every request with final status `code` (200 to 699) instead of 200.
    pub fn answering(mut self, code: u16) -> Result<Responder, String> {
        if !(200..700).contains(&code) {
            return Err(format!(
                "status {code}: not a final SIP status (200 to 699)"
            ));
        }
        self.status = format!("{code} {}", reason(code)).into_bytes();
        Ok(self)
    }

    /// Answer requests until `stop` is set, `max` has passed, or `max_requests` were answered.
    pub fn serve(
        mut self,
        stop: &AtomicBool,
        max: Duration,
        max_requests: u64,
    ) -> io::Result<Arc<ResponderStats>> {
        let mut poll = Poll::new()?;
        poll.registry()
            .register(&mut self.sock, Token(0), Interest::READABLE)?;
        let mut events = Events::with_capacity(16);
        let mut rb = udp::recv_batch();
        let mut out = SendQueue::new();
        let fd = udp::fd(&self.sock);
        let started = Instant::now();
        let mut etag: u64 = 0;
        let mut answered: u64 = 0;
        let ok = self.status.starts_with(b"2");
        while !stop.load(Ordering::Relaxed) && started.elapsed() < max && answered < max_requests {
            match poll.poll(&mut events, Some(Duration::from_millis(100))) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            loop {
                let n = rb.recv(fd)?;
                for i in 0..n {
                    let d = rb.get(i);
                    let (bytes, Some(from), false) = (d.bytes, d.peer, d.truncated) else {
                        self.stats.unreadable.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    match sipmsg::parse(bytes) {
                        Ok(m) => match m.start {
                            Start::Request(method) if method != b"ACK" => {
                                answered += 1;
                                etag += 1;
                                out.push_with(from, |o| {
                                    let mut extra = [0u8; 48];
                                    let mut len = 0;
                                    if ok && method == b"PUBLISH" {
                                        let mut b = itoa::Buffer::new();
                                        let e = b.format(etag).as_bytes();
                                        let parts: [&[u8]; 3] = [b"SIP-ETag: r", e, b"\r\n"];
                                        for p in parts {
                                            extra[len..len + p.len()].copy_from_slice(p);
                                            len += p.len();
                                        }
                                    }
                                    if let Some(x) = m.expires.filter(|_| ok) {
                                        let mut b = itoa::Buffer::new();
                                        let e = b.format(x).as_bytes();
                                        let parts: [&[u8]; 3] = [b"Expires: ", e, b"\r\n"];
                                        for p in parts {
                                            extra[len..len + p.len()].copy_from_slice(p);
                                            len += p.len();
                                        }
                                    }
                                    sipmsg::write_response(o, &m, &self.status, None, &extra[..len])
                                });
                            }
                            Start::Request(_) => {}
                            Start::Response(_) => {
                                self.stats.responses_ignored.fetch_add(1, Ordering::Relaxed);
                            }
                        },
                        Err(_) => {
                            self.stats.unreadable.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                out.flush(fd);
                if n < udp::RECV_BATCH {
                    break;
                }
            }
            self.stats.requests.store(answered, Ordering::Relaxed);
        }
        self.stats.requests.store(answered, Ordering::Relaxed);
        Ok(self.stats)
    }

    /// Serve on a background thread (for tests and `compare`); stops when the returned flag
    /// is set or after `max`.
    pub fn spawn(
        self,
        max: Duration,
    ) -> (
        Arc<AtomicBool>,
        std::thread::JoinHandle<io::Result<Arc<ResponderStats>>>,
    ) {
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let h = std::thread::spawn(move || self.serve(&s2, max, u64::MAX));
        (stop, h)
    }
}

/// The reason phrase of a final status (RFC 3261 §21; free text for the others).
fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        202 => "Accepted",
        403 => "Forbidden",
        404 => "Not Found",
        412 => "Conditional Request Failed",
        480 => "Temporarily Unavailable",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}
