//! Overload: requests the engine cannot take now are answered `503 Service Unavailable` with
//! `Retry-After` by the I/O loop; what was already handed in is never dropped. Responses from
//! peers always pass, since they complete our own transactions.
//!
//! Two rules, after where the engine's inbox is: inline, it is the kernel's UDP receive buffer,
//! and requests are shed while more than half of it waits ([`backlog_high`]); with the engine on
//! its own thread, it is a count of messages in flight bounded by `engine.inbox_capacity`
//! ([`admit`]).

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use presenced_systems::sip::message::overload_reply;
use presenced_systems::{Inbound, Outbound};

use super::transport::TransportStats;

/// True when `m` is a response (it always passes).
pub fn is_response(m: &Inbound) -> bool {
    m.bytes.starts_with(b"SIP/")
}

/// Keep the responses of `batch` and its first `room` requests; the other requests go to
/// `shed`, in order.
pub fn admit(batch: &mut Vec<Inbound>, room: usize, mut shed: impl FnMut(&Inbound)) {
    if batch.len() <= room {
        return;
    }
    let mut room = room;
    batch.retain(|m| {
        let response = is_response(m);
        if response || room > 0 {
            room = room.saturating_sub(usize::from(!response));
            true
        } else {
            shed(m);
            false
        }
    });
}

/// True when more than half of the socket's receive buffer is waiting (SO_MEMINFO: the bytes
/// queued, against the buffer size).
pub fn backlog_high(socket: &impl AsRawFd) -> bool {
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

/// How a shed request is answered.
pub struct Shedding {
    /// Seconds the client is asked to wait.
    pub retry_after_secs: u32,
    /// Answer to the source address and port even without `rport` in the Via.
    pub force_rport: bool,
    /// Where replies and silent drops are counted.
    pub stats: Arc<TransportStats>,
}

impl Shedding {
    /// The 503 for request `m` (None for what gets no answer, such as ACK), counted.
    pub fn reply(&self, m: &Inbound) -> Option<Outbound> {
        let reply = overload_reply(m, self.retry_after_secs, self.force_rport);
        let counter = match reply {
            Some(_) => &self.stats.overload_replies,
            None => &self.stats.overload_dropped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use presenced_systems::{Source, Transport};

    fn msg(text: &'static str) -> Inbound {
        let addr = "127.0.0.1:5060".parse().unwrap();
        Inbound {
            source: Source {
                transport: Transport::Udp,
                peer: addr,
                local: addr,
                conn: None,
                verified_peer: false,
            },
            bytes: bytes::Bytes::from_static(text.as_bytes()),
        }
    }

    fn texts(ms: &[Inbound]) -> Vec<&[u8]> {
        ms.iter().map(|m| &m.bytes[..]).collect()
    }

    #[test]
    fn past_the_room_requests_are_shed_in_order_and_responses_pass() {
        let mut batch = vec![
            msg("PUBLISH 1"),
            msg("SIP/2.0 200 a"),
            msg("PUBLISH 2"),
            msg("PUBLISH 3"),
            msg("SIP/2.0 200 b"),
        ];
        let mut shed = Vec::new();
        admit(&mut batch, 1, |m| shed.push(m.bytes.clone()));
        assert_eq!(
            texts(&batch),
            [&b"PUBLISH 1"[..], b"SIP/2.0 200 a", b"SIP/2.0 200 b"]
        );
        assert_eq!(shed, [&b"PUBLISH 2"[..], b"PUBLISH 3"]);
    }

    #[test]
    fn a_batch_within_the_room_is_left_alone() {
        let mut batch = vec![msg("PUBLISH 1"), msg("PUBLISH 2")];
        admit(&mut batch, 2, |_| panic!("nothing to shed"));
        assert_eq!(texts(&batch), [&b"PUBLISH 1"[..], b"PUBLISH 2"]);
        let mut none = vec![msg("SIP/2.0 200 a")];
        admit(&mut none, 0, |_| panic!("responses always pass"));
        assert_eq!(none.len(), 1);
    }
}
