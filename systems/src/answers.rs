//! Test support: the traffic of a user agent (its address, its messages, the answers it gives
//! to the engine's requests), for tests and benchmarks that drive the engine without a network.

use bytes::Bytes;

use crate::net::{Inbound, Outbound, Source, Transport};

/// A UDP peer on loopback port `port`, reaching the usual listener (127.0.0.1:5060).
pub fn udp_source(port: u16) -> Source {
    Source {
        transport: Transport::Udp,
        peer: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        local: std::net::SocketAddr::from(([127, 0, 0, 1], 5060)),
        conn: None,
        verified_peer: false,
    }
}

/// One message from `source`.
pub fn inbound(source: Source, text: String) -> Inbound {
    Inbound {
        source,
        bytes: Bytes::from(text),
    }
}

/// The `200 OK` a user agent at `from` sends to `request` (one of our NOTIFYs): its Via,
/// From, To, Call-ID and CSeq copied, no body.
pub fn ok_to(request: &Outbound, from: Source) -> Inbound {
    let head = std::str::from_utf8(&request.head).unwrap_or_default();
    let mut r = String::from("SIP/2.0 200 OK\r\n");
    for l in head.lines().filter(|l| {
        ["Via:", "From:", "To:", "Call-ID:", "CSeq:"]
            .iter()
            .any(|p| l.starts_with(p))
    }) {
        r.push_str(l);
        r.push_str("\r\n");
    }
    r.push_str("Content-Length: 0\r\n\r\n");
    Inbound {
        source: from,
        bytes: Bytes::from(r),
    }
}
