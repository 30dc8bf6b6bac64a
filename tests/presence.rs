//! End-to-end Presence Server over loopback: the RFC 3903 publication life cycle, composition of
//! several sources, and SUBSCRIBE/NOTIFY (RFC 6665, RFC 3856) with refresh, unsubscribe, expiry,
//! failed NOTIFYs, retransmission and flow control. Every PIDF body received is validated with
//! the project's schemas.

mod common;

use std::time::{Duration, Instant};

use common::{Msg, Req, Server, TcpPeer, UdpPeer, assert_valid_xml, pidf, response_to, tag_of};

const ALICE: &str = "sip:alice@example.com";

fn publish(peer: &UdpPeer, body: Option<&[u8]>, etag: Option<&str>, expires: u32) -> Msg {
    let mut r = peer
        .req("PUBLISH", ALICE)
        .set("Event", "presence")
        .set("Expires", &expires.to_string());
    if let Some(b) = body {
        r = r.body("application/pidf+xml", b);
    }
    if let Some(t) = etag {
        r = r.set("SIP-If-Match", t);
    }
    peer.call(&r)
}

/// A watcher (bob) with its dialog to alice's presence, over UDP.
type Watcher = common::Subscriber;

fn watch(server: &Server, expires: u32) -> (Watcher, Msg) {
    watch_with(server, expires, |r| r)
}

fn watch_with(server: &Server, expires: u32, f: impl FnOnce(Req) -> Req) -> (Watcher, Msg) {
    common::Subscriber::subscribe(
        server,
        ALICE,
        "sip:bob@example.com",
        "presence",
        "application/pidf+xml",
        expires,
        f,
    )
}

fn body_text(m: &Msg) -> String {
    String::from_utf8_lossy(&m.body).into_owned()
}

#[test]
fn publication_life_cycle_rfc3903() {
    let s = Server::start();
    let p = UdpPeer::new(s.udp);
    let first = publish(&p, Some(&pidf(ALICE, "t1", "open", "hi")), None, 3600);
    assert_eq!(first.status(), 200, "{}", first.text());
    let e1 = first.header("SIP-ETag").expect("SIP-ETag").to_owned();
    assert_eq!(first.header("Expires"), Some("3600"));
    // refresh: no body, new entity tag (§6 step 6)
    let refresh = publish(&p, None, Some(&e1), 120);
    assert_eq!(refresh.status(), 200);
    let e2 = refresh.header("SIP-ETag").unwrap().to_owned();
    assert_ne!(e1, e2);
    assert_eq!(refresh.header("Expires"), Some("120"));
    // the old tag is gone
    assert_eq!(publish(&p, None, Some(&e1), 120).status(), 412);
    // modify
    let modify = publish(
        &p,
        Some(&pidf(ALICE, "t1", "closed", "bye")),
        Some(&e2),
        3600,
    );
    assert_eq!(modify.status(), 200);
    let e3 = modify.header("SIP-ETag").unwrap().to_owned();
    assert_ne!(e3, e2);
    // remove
    let remove = publish(&p, None, Some(&e3), 0);
    assert_eq!(remove.status(), 200);
    assert_eq!(remove.header("Expires"), Some("0"));
    assert_eq!(
        publish(&p, None, Some(&e3), 60).status(),
        412,
        "removed state is gone"
    );
}

#[test]
fn retransmitted_publish_is_processed_once() {
    let s = Server::start();
    let p = UdpPeer::new(s.udp);
    let req = p
        .req("PUBLISH", ALICE)
        .set("Event", "presence")
        .body("application/pidf+xml", &pidf(ALICE, "t1", "open", ""));
    let first = p.call(&req);
    assert_eq!(first.status(), 200, "{}", first.text());
    assert!(first.header("SIP-ETag").is_some());
    p.send(&req.bytes());
    let again = p.recv(Duration::from_secs(5)).unwrap();
    assert_eq!(
        first.header("SIP-ETag"),
        again.header("SIP-ETag"),
        "one publication, one tag"
    );
    assert_eq!(first.raw, again.raw);
}

#[test]
fn subscribe_notify_change_refresh_unsubscribe() {
    let s = Server::start();
    let (mut w, resp) = watch(&s, 600);
    assert_eq!(resp.status(), 200, "{}", resp.text());
    assert_eq!(resp.header("Expires"), Some("600"));
    assert!(!w.to_tag.is_empty(), "200 to SUBSCRIBE carries our tag");
    assert!(resp.header("Contact").is_some());
    // immediate NOTIFY with the current (empty) state
    let n1 = w.notify();
    let state = n1.header("Subscription-State").unwrap();
    assert!(state.starts_with("active;expires="), "{state}");
    let left: u32 = state.rsplit('=').next().unwrap().parse().unwrap();
    assert!((595..=600).contains(&left), "{state}");
    assert!(!body_text(&n1).contains("<tuple"), "nothing published yet");
    assert_eq!(
        n1.header("To").and_then(tag_of),
        w.sub.get("From").and_then(tag_of),
        "To is the subscriber"
    );
    assert_eq!(
        n1.header("From").and_then(tag_of).as_deref(),
        Some(w.to_tag.as_str())
    );
    // a publication reaches the watcher, elements as written
    let publisher = UdpPeer::new(s.udp);
    let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" \
entity=\"sip:alice@example.com\"><tuple id=\"pj1\"><status><basic>open</basic></status></tuple>\
<dm:person id=\"p1\"><rpid:activities><rpid:on-the-phone/></rpid:activities></dm:person></presence>";
    let e = publish(&publisher, Some(body), None, 3600)
        .header("SIP-ETag")
        .unwrap()
        .to_owned();
    let n2 = w.notify();
    let text = body_text(&n2);
    assert!(
        text.contains("<tuple id=\"pj1\"><status><basic>open</basic></status></tuple>"),
        "{text}"
    );
    assert!(text.contains("<dm:person id=\"p1\"><rpid:activities><rpid:on-the-phone/></rpid:activities></dm:person>"), "{text}");
    let cseq = |m: &Msg| {
        m.header("CSeq")
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse::<u32>()
            .unwrap()
    };
    assert!(cseq(&n2) > cseq(&n1), "CSeq increases in the dialog");
    // refresh: 200, then a NOTIFY with the current state
    let r = w.resubscribe(300);
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("Expires"), Some("300"));
    let n3 = w.notify();
    assert!(
        n3.header("Subscription-State")
            .unwrap()
            .starts_with("active;expires=")
    );
    assert!(body_text(&n3).contains("pj1"));
    // unsubscribe: a final NOTIFY with terminated
    let u = w.resubscribe(0);
    assert_eq!(u.status(), 200);
    let n4 = w.notify();
    assert!(
        n4.header("Subscription-State")
            .unwrap()
            .starts_with("terminated"),
        "{:?}",
        n4.header("Subscription-State")
    );
    // no more NOTIFYs after that
    publish(
        &publisher,
        Some(&pidf(ALICE, "pj1", "closed", "")),
        Some(&e),
        3600,
    );
    assert!(
        w.next_notify(Duration::from_millis(500)).is_none(),
        "no NOTIFY after termination"
    );
    assert_eq!(w.resubscribe(300).status(), 481);
}

#[test]
fn two_sources_compose_into_one_view() {
    let s = Server::start();
    let (w, _) = watch(&s, 600);
    w.notify();
    let phone = UdpPeer::new(s.udp);
    let pc = UdpPeer::new(s.udp);
    let e_phone = publish(
        &phone,
        Some(&pidf(ALICE, "phone", "open", "on the phone")),
        None,
        3600,
    );
    assert_eq!(e_phone.status(), 200);
    w.notify();
    publish(
        &pc,
        Some(&pidf(ALICE, "pc", "closed", "pc locked")),
        None,
        3600,
    );
    let n = w.notify();
    let t = body_text(&n);
    assert!(
        t.contains("tuple id=\"phone\"") && t.contains("tuple id=\"pc\""),
        "both sources: {t}"
    );
    // the phone goes away: its tuple leaves the view
    publish(&phone, None, e_phone.header("SIP-ETag"), 0);
    let n = w.notify();
    let t = body_text(&n);
    assert!(
        !t.contains("tuple id=\"phone\"") && t.contains("tuple id=\"pc\""),
        "{t}"
    );
}

#[test]
fn expiry_of_publication_and_subscription() {
    let s = Server::start_with(
        "[presence]\npublish_min_expires = 1\nsubscribe_min_expires = 1\n",
        &[],
    );
    let (w, _) = watch(&s, 600);
    w.notify();
    let p = UdpPeer::new(s.udp);
    publish(&p, Some(&pidf(ALICE, "short", "open", "")), None, 1);
    assert!(body_text(&w.notify()).contains("short"));
    // after a second the publication expires and the watcher is told
    let n = w
        .next_notify(Duration::from_secs(4))
        .expect("NOTIFY on publication expiry");
    w.peer.send(&response_to(&n, 200, "OK"));
    assert!(
        !body_text(&n).contains("short"),
        "expired state removed: {}",
        body_text(&n)
    );
    // a subscription of one second ends with reason=timeout
    let (w2, _) = watch(&s, 1);
    w2.notify();
    let end = w2
        .next_notify(Duration::from_secs(4))
        .expect("NOTIFY on subscription expiry");
    assert_eq!(
        end.header("Subscription-State"),
        Some("terminated;reason=timeout")
    );
}

#[test]
fn fetch_gets_one_terminated_notify() {
    let s = Server::start();
    let p = UdpPeer::new(s.udp);
    publish(&p, Some(&pidf(ALICE, "t", "open", "")), None, 3600);
    let (w, resp) = watch(&s, 0);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.header("Expires"), Some("0"));
    let n = w.notify();
    assert_eq!(
        n.header("Subscription-State"),
        Some("terminated;reason=timeout")
    );
    assert!(
        body_text(&n).contains("tuple id=\"t\""),
        "fetch carries the state"
    );
    assert!(w.next_notify(Duration::from_millis(300)).is_none());
}

#[test]
fn notify_answered_481_removes_the_subscription() {
    let s = Server::start();
    let (mut w, _) = watch(&s, 600);
    let n = w.next_notify(Duration::from_secs(5)).unwrap();
    w.peer
        .send(&response_to(&n, 481, "Subscription Does Not Exist"));
    std::thread::sleep(Duration::from_millis(200));
    let p = UdpPeer::new(s.udp);
    publish(&p, Some(&pidf(ALICE, "t", "open", "")), None, 3600);
    assert!(
        w.next_notify(Duration::from_millis(500)).is_none(),
        "no NOTIFY to a removed subscription"
    );
    assert_eq!(w.resubscribe(600).status(), 481);
}

#[test]
fn unanswered_notify_is_retransmitted_then_times_out() {
    // T1 = 50 ms: Timer E fires at 50, 100, 200 ... ms and Timer F at 3.2 s
    let s = Server::start_with("[engine]\nt1_ms = 50\nt2_ms = 400\n", &[]);
    let (mut w, _) = watch(&s, 600);
    let first = w.next_notify(Duration::from_secs(5)).unwrap();
    let again = w
        .next_notify(Duration::from_secs(2))
        .expect("retransmission (Timer E)");
    assert_eq!(first.raw, again.raw, "a retransmission is the same message");
    let mut copies = 2;
    while w.next_notify(Duration::from_millis(800)).is_some() {
        copies += 1;
    }
    assert!(copies >= 4, "retransmitted until Timer F: {copies} copies");
    // Timer F fired: the subscription is gone
    assert_eq!(w.resubscribe(600).status(), 481);
}

#[test]
fn changes_during_an_unanswered_notify_coalesce_into_one() {
    let s = Server::start();
    let (w, _) = watch(&s, 600);
    let first = w.next_notify(Duration::from_secs(5)).unwrap();
    // three changes while the first NOTIFY waits for its answer
    let p = UdpPeer::new(s.udp);
    let mut etag = publish(&p, Some(&pidf(ALICE, "t", "open", "one")), None, 3600)
        .header("SIP-ETag")
        .unwrap()
        .to_owned();
    for note in ["two", "three"] {
        etag = publish(&p, Some(&pidf(ALICE, "t", "open", note)), Some(&etag), 3600)
            .header("SIP-ETag")
            .unwrap()
            .to_owned();
    }
    // nothing overtakes the first NOTIFY (retransmissions of it aside)
    while let Some(m) = w.next_notify(Duration::from_millis(300)) {
        assert_eq!(
            m.header("CSeq"),
            first.header("CSeq"),
            "only retransmissions of the pending NOTIFY"
        );
    }
    w.peer.send(&response_to(&first, 200, "OK"));
    let next = w.notify();
    assert!(
        body_text(&next).contains("<note>three</note>"),
        "newest state: {}",
        body_text(&next)
    );
    assert!(
        w.next_notify(Duration::from_millis(400)).is_none(),
        "one NOTIFY for three changes"
    );
}

#[test]
fn event_id_is_echoed() {
    let s = Server::start();
    let (w, resp) = watch_with(&s, 600, |r| r.set("Event", "presence;id=42"));
    assert_eq!(resp.status(), 200);
    assert_eq!(w.notify().header("Event"), Some("presence;id=42"));
}

#[test]
fn subscription_over_tcp_gets_notify_on_the_same_connection() {
    let s = Server::start();
    let mut c = TcpPeer::connect(s.tcp);
    let sub = c
        .req("SUBSCRIBE", ALICE)
        .set("Event", "presence")
        .set("Contact", &format!("<sip:bob@{};transport=tcp>", c.addr()))
        .set("Expires", "600");
    assert_eq!(c.call(&sub).status(), 200);
    let n = c.recv(Duration::from_secs(5)).expect("NOTIFY over TCP");
    assert_eq!(n.method(), "NOTIFY");
    assert!(n.header("Via").unwrap().starts_with("SIP/2.0/TCP"));
    c.send(&response_to(&n, 200, "OK"));
    let p = UdpPeer::new(s.udp);
    publish(&p, Some(&pidf(ALICE, "t", "open", "")), None, 3600);
    let n2 = c
        .recv(Duration::from_secs(5))
        .expect("NOTIFY after a change");
    assert!(String::from_utf8_lossy(&n2.body).contains("tuple id=\"t\""));
    assert_valid_xml(&n2.body);
}

#[test]
fn closed_view_when_configured() {
    let s = Server::start_with("[presence]\nclosed_when_unpublished = true\n", &[]);
    let (w, _) = watch(&s, 600);
    let t = body_text(&w.notify());
    assert!(t.contains("<basic>closed</basic>"), "{t}");
}

/// A PIDF document longer than 1,300 bytes once in a NOTIFY (RFC 3261 §18.1.1's limit).
fn large_pidf() -> Vec<u8> {
    let note = "x".repeat(120);
    let tuples: String = (0..12)
        .map(|i| {
            format!(
                "<tuple id=\"t{i}\"><status><basic>open</basic></status><note>{note}</note></tuple>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"{ALICE}\">{tuples}</presence>"
    )
    .into_bytes()
}

#[test]
fn large_notify_goes_over_tcp_to_the_watcher_address() {
    // RFC 3261 §18.1.1: a request over 1,300 bytes goes over a congestion-controlled transport.
    // The watcher listens on TCP at the port of its UDP Contact, as SIP user agents do.
    let s = Server::start();
    let (w, _) = watch(&s, 600);
    let listener = std::net::TcpListener::bind(w.peer.addr()).expect("TCP on the UDP port");
    w.notify();
    let p = UdpPeer::new(s.udp);
    let doc = large_pidf();
    let r = publish(&p, Some(&doc), None, 3600);
    assert_eq!(r.status(), 200);
    let etag = r.header("SIP-ETag").unwrap().to_owned();
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("the server did not connect: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    let mut c = TcpPeer::from_stream(stream);
    let n = c.recv(Duration::from_secs(5)).expect("NOTIFY over TCP");
    assert_eq!(n.method(), "NOTIFY");
    assert!(n.raw.len() > 1300, "{} bytes", n.raw.len());
    assert!(
        n.header("Via").unwrap().starts_with("SIP/2.0/TCP "),
        "{}",
        n.text()
    );
    assert_eq!(n.header("Call-ID"), w.sub.get("Call-ID"));
    assert_valid_xml(&n.body);
    assert!(body_text(&n).contains("tuple id=\"t11\""));
    c.send(&response_to(&n, 200, "OK"));
    // answered over TCP: nothing is retransmitted over UDP
    assert!(w.next_notify(Duration::from_millis(1500)).is_none());
    // the publication made small again: its NOTIFY travels over UDP
    let r = publish(&p, Some(&pidf(ALICE, "t", "closed", "")), Some(&etag), 3600);
    assert_eq!(r.status(), 200);
    let small = w.notify();
    assert!(small.header("Via").unwrap().starts_with("SIP/2.0/UDP "));
}

#[test]
fn large_notify_falls_back_to_udp_when_tcp_is_refused() {
    // No TCP listener at the watcher's address: the connection is refused, and the NOTIFY goes
    // over UDP after all (RFC 3261 §18.1.1 SHOULD).
    let s = Server::start();
    let (w, _) = watch(&s, 600);
    w.notify();
    let p = UdpPeer::new(s.udp);
    assert_eq!(publish(&p, Some(&large_pidf()), None, 3600).status(), 200);
    let n = w
        .next_notify(Duration::from_secs(5))
        .expect("NOTIFY over UDP");
    assert!(n.raw.len() > 1300);
    assert!(n.header("Via").unwrap().starts_with("SIP/2.0/UDP "));
    assert!(body_text(&n).contains("tuple id=\"t11\""));
    w.peer.send(&response_to(&n, 200, "OK"));
}

#[test]
fn large_notify_over_udp_when_udp_mtu_is_off() {
    let s = Server::start_with("[sip]\nudp_mtu = 0\n", &[]);
    let (w, _) = watch(&s, 600);
    let _listener = std::net::TcpListener::bind(w.peer.addr()).expect("TCP on the UDP port");
    w.notify();
    let p = UdpPeer::new(s.udp);
    assert_eq!(publish(&p, Some(&large_pidf()), None, 3600).status(), 200);
    let n = w
        .next_notify(Duration::from_secs(5))
        .expect("NOTIFY over UDP");
    assert!(n.header("Via").unwrap().starts_with("SIP/2.0/UDP "));
    w.peer.send(&response_to(&n, 200, "OK"));
}
