//! SIP traffic of the engine benches: a UDP source, a message from it, and the answers a
//! watcher and a publisher give (200 to each NOTIFY, the publisher's new entity tag).

use bytes::Bytes;
use presenced_systems::{Inbound, Outbound, Source, Transport};

/// A UDP peer on loopback port `port`, reaching our usual listener.
pub fn src(port: u16) -> Source {
    Source {
        transport: Transport::Udp,
        peer: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        local: "127.0.0.1:5060".parse().unwrap(),
        conn: None,
    }
}

/// One message from `source`.
pub fn msg(source: Source, text: String) -> Inbound {
    Inbound {
        source,
        bytes: Bytes::from(text),
    }
}

/// The watchers' 200s to the NOTIFYs in `out`, and the publisher's new ETag if its 200 is
/// there.
pub fn answers(out: &[Outbound]) -> (Vec<Inbound>, Option<String>) {
    let mut replies = Vec::new();
    let mut etag = None;
    for m in out {
        if m.head.starts_with(b"SIP/2.0 200") {
            let head = std::str::from_utf8(&m.head).unwrap();
            if let Some(l) = head.lines().find(|l| l.starts_with("SIP-ETag: ")) {
                etag = Some(l[10..].to_owned());
            }
        } else if m.head.starts_with(b"NOTIFY ") {
            replies.push(presenced_systems::answers::ok_to(
                m,
                src(m.dest.addr.port()),
            ));
        }
    }
    (replies, etag)
}
