//! SIP traffic of the engine benches: a UDP source, a message from it, and the answers a
//! watcher and a publisher give (200 to each NOTIFY, the publisher's new entity tag).

use presenced_systems::{Inbound, Outbound};

pub use presenced_systems::answers::{inbound as msg, udp_source as src};

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

/// PUBLISH `n` of `body` (PIDF) for `aor`, refreshing `etag`'s publication when given.
pub fn publish_pidf(aor: &str, n: u64, etag: Option<&str>, body: &str) -> Inbound {
    let if_match = etag
        .map(|e| format!("SIP-If-Match: {e}\r\n"))
        .unwrap_or_default();
    msg(
        src(9999),
        format!(
            "PUBLISH {aor} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9999;branch=z9hG4bKp{n};rport\r\n\
Max-Forwards: 70\r\nFrom: <{aor}>;tag=pub\r\nTo: <{aor}>\r\nCall-ID: pub{n}{aor}\r\n\
CSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: 3600\r\n{if_match}Content-Type: application/pidf+xml\r\n\
Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Presentity `i`'s initial PUBLISH (a one-tuple PIDF), from port 9999.
pub fn initial_publish(i: usize) -> Inbound {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
entity=\"sip:p{i}@example.com\"><tuple id=\"t\"><status><basic>open</basic></status></tuple></presence>"
    );
    let text = format!(
        "PUBLISH sip:p{i}@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9999;branch=z9hG4bKp{i};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:p{i}@example.com>;tag=pub{i}\r\nTo: <sip:p{i}@example.com>\r\nCall-ID: pub{i}@loadgen\r\n\
CSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: 3600\r\nContent-Type: application/pidf+xml\r\n\
Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    Inbound {
        source: src(9999),
        bytes: bytes::Bytes::from(text),
    }
}

/// Watcher `i`'s SUBSCRIBE (its own dialog and port) to presentity `i % presentities`.
pub fn watcher_subscribe(i: usize, presentities: usize) -> Inbound {
    let port = 10000 + (i % 50000) as u16;
    let p = i % presentities;
    let text = format!(
        "SUBSCRIBE sip:p{p}@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKs{i};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:w{i}@example.com>;tag=w{i}x\r\nTo: <sip:p{p}@example.com>\r\n\
Call-ID: sub{i}-8f2c41d7@loadgen\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:w{i}@127.0.0.1:{port}>\r\n\
Event: presence\r\nExpires: 3600\r\nAccept: application/pidf+xml\r\nContent-Length: 0\r\n\r\n"
    );
    Inbound {
        source: src(port),
        bytes: bytes::Bytes::from(text),
    }
}
