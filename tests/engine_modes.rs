//! The two places the engine can run: `engine.inline = true` (the default: on the SIP I/O
//! thread) and `false` (its own thread, fed through a channel). The rest of the suite runs the
//! default; here the paths that differ are run in both modes — requests and responses, timers
//! (NOTIFY retransmission), document changes from the HTTP side — and the inline overload rule
//! (503 when the kernel's receive buffer, its inbox, fills). The threaded overload rule is in
//! tests/sip_transport.rs.

mod common;

use std::time::Duration;

use common::{Server, TcpPeer, UdpPeer, Xcap, example, pidf, response_to};

const INLINE: &str = "[engine]\ninline = true\nt1_ms = 100\nt2_ms = 400\n";
const THREAD: &str = "[engine]\ninline = false\nt1_ms = 100\nt2_ms = 400\n";

#[test]
fn requests_over_udp_and_tcp_and_retransmissions() {
    requests_and_retransmissions(INLINE);
    requests_and_retransmissions(THREAD);
}

#[test]
fn publish_subscribe_notify_and_timer_driven_retransmission() {
    publish_subscribe_notify(INLINE);
    publish_subscribe_notify(THREAD);
}

#[test]
fn document_changes_reach_the_engine() {
    document_changes(INLINE);
    document_changes(THREAD);
}

fn requests_and_retransmissions(config: &str) {
    let s = Server::start_with(config, &[]);
    let u = UdpPeer::new(s.udp);
    let req = u.req("OPTIONS", "sip:presenced@127.0.0.1");
    let first = u.call(&req);
    assert_eq!(first.status(), 200);
    u.send(&req.bytes());
    assert_eq!(
        u.recv(Duration::from_secs(5)).unwrap().raw,
        first.raw,
        "retransmission answered from the transaction"
    );
    let mut t = TcpPeer::connect(s.tcp);
    assert_eq!(
        t.call(&t.req("OPTIONS", "sip:presenced@127.0.0.1"))
            .status(),
        200
    );
}

fn publish_subscribe_notify(config: &str) {
    let s = Server::start_with(config, &[]);
    let w = UdpPeer::new(s.udp);
    let sub = w
        .req("SUBSCRIBE", "sip:alice@example.com")
        .set("Event", "presence")
        .set("Contact", &format!("<sip:bob@{}>", w.addr()))
        .set("Expires", "600");
    assert_eq!(w.call(&sub).status(), 200);
    let n1 = w.recv(Duration::from_secs(5)).expect("initial NOTIFY");
    assert_eq!(n1.method(), "NOTIFY");
    // not answered: Timer E (T1 = 100 ms) brings it again, with no other traffic to wake us
    let again = w
        .recv(Duration::from_secs(2))
        .expect("retransmitted NOTIFY");
    assert_eq!(again.raw, n1.raw);
    w.send(&response_to(&n1, 200, "OK"));
    let p = UdpPeer::new(s.udp);
    let publish = p
        .req("PUBLISH", "sip:alice@example.com")
        .set("Event", "presence")
        .body(
            "application/pidf+xml",
            &pidf("sip:alice@example.com", "t9", "open", "inline"),
        );
    assert_eq!(p.call(&publish).status(), 200);
    let n2 = loop {
        let m = w
            .recv(Duration::from_secs(5))
            .expect("NOTIFY after PUBLISH");
        if m.header("CSeq") != n1.header("CSeq") {
            break m;
        }
    };
    assert!(String::from_utf8_lossy(&n2.body).contains("<note>inline</note>"));
}

fn document_changes(config: &str) {
    let s = Server::start_with(config, &[]);
    let c = UdpPeer::new(s.udp);
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\
<list><entry uri=\"resource-lists/users/sip:alice@example.com/\"/></list></resource-lists>";
    let req = c
        .req("SUBSCRIBE", "sip:alice@example.com")
        .set("From", "<sip:alice@example.com>;tag=xi")
        .set("Event", "xcap-diff")
        .set("Contact", &format!("<sip:alice@{}>", c.addr()))
        .body("application/resource-lists+xml", body.as_bytes());
    assert_eq!(c.call(&req).status(), 200);
    let full = c.recv(Duration::from_secs(5)).unwrap();
    c.send(&response_to(&full, 200, "OK"));
    let put = Xcap::new(s.http).put(
        "/xcap-root/resource-lists/users/sip:alice@example.com/index",
        "application/resource-lists+xml",
        &example("resource-lists.xml"),
    );
    assert_eq!(put.status, 201);
    let etag = put.etag().trim_matches('"').to_owned();
    let n = c.recv(Duration::from_secs(5)).expect("xcap-diff NOTIFY");
    assert!(String::from_utf8_lossy(&n.body).contains(&format!("new-etag=\"{etag}\"")));
}

#[test]
fn a_full_receive_buffer_is_answered_503() {
    // A 256 KB receive buffer, and the server stopped while a burst arrives: when it resumes,
    // more than half of the buffer waits, so requests are answered 503 until it drains.
    let s = Server::start_with(
        "[engine]\ninline = true\n[sip]\nrecv_buffer_bytes = 262144\n",
        &[],
    );
    let peer = UdpPeer::new(s.udp);
    let reqs: Vec<Vec<u8>> = (0..500)
        .map(|_| peer.req("OPTIONS", "sip:presenced@127.0.0.1").bytes())
        .collect();
    unsafe {
        libc::kill(s.pid() as i32, libc::SIGSTOP);
    }
    for r in &reqs {
        peer.send(r);
    }
    unsafe {
        libc::kill(s.pid() as i32, libc::SIGCONT);
    }
    let mut got = Vec::new();
    while let Some(m) = peer.recv(Duration::from_secs(2)) {
        if m.status() == 503 {
            assert_eq!(m.header("Retry-After"), Some("5"), "{}", m.text());
        }
        got.push(m.status());
    }
    let busy = got.iter().filter(|&&c| c == 503).count();
    assert!(
        busy > 0,
        "a backlog over half the buffer is shed with 503: {got:?}"
    );
    assert!(got.iter().all(|&c| c == 200 || c == 503));
    // and once it drained, requests are served again
    assert_eq!(
        peer.call(&peer.req("OPTIONS", "sip:presenced@127.0.0.1"))
            .status(),
        200
    );
}
