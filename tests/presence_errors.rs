//! End-to-end over loopback: how the Presence Server refuses PUBLISH (RFC 3903 §6) and
//! SUBSCRIBE (RFC 6665 §4.2.1, RFC 3856 §6) requests it cannot accept, and the bounds it applies
//! to the ones it does. Every refusal must still be a well-formed response to the request
//! (RFC 3261 §8.2.6): same Call-ID, CSeq and From, and a To tag.

mod common;

use std::time::{Duration, Instant};

use common::{Msg, Req, Server, UdpPeer, assert_echoes};

const ALICE: &str = "sip:alice@example.com";
const BOB: &str = "sip:bob@example.com";
const PIDF: &str = "application/pidf+xml";

/// A minimal valid PIDF document for `entity`, with `pad` extra bytes of note text.
fn pidf_padded(entity: &str, pad: usize) -> Vec<u8> {
    let note = if pad == 0 {
        String::new()
    } else {
        format!("<note>{}</note>", "x".repeat(pad))
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{entity}"><tuple id="t1"><status><basic>open</basic></status></tuple>{note}</presence>"#
    )
    .into_bytes()
}

fn pidf(entity: &str) -> Vec<u8> {
    pidf_padded(entity, 0)
}

/// A valid initial PUBLISH for `uri` (whose PIDF entity is `uri`).
fn publish(peer: &UdpPeer, uri: &str) -> Req {
    peer.req("PUBLISH", uri)
        .set("Event", "presence")
        .set("Expires", "3600")
        .body(PIDF, &pidf(uri))
}

/// A valid initial SUBSCRIBE for `uri`, with this peer as the subscriber's Contact.
fn subscribe(peer: &UdpPeer, uri: &str) -> Req {
    peer.req("SUBSCRIBE", uri)
        .set("Event", "presence")
        .set("Expires", "600")
        .set("Accept", PIDF)
        .set(
            "Contact",
            &format!("<sip:watcher@127.0.0.1:{}>", peer.addr().port()),
        )
}

/// `From` with another watcher URI (and a fresh tag).
fn from_watcher(req: Req, user: &str) -> Req {
    let tag = common::unique("w");
    req.set("From", &format!("<sip:{user}@example.com>;tag={tag}"))
}

/// Answer a NOTIFY with 200 built from its own headers (or the server keeps retransmitting).
fn answer_notify(peer: &UdpPeer, notify: &Msg) {
    let mut s = String::from("SIP/2.0 200 OK\r\n");
    for via in notify.all("Via") {
        s.push_str(&format!("Via: {via}\r\n"));
    }
    for name in ["From", "To", "Call-ID", "CSeq"] {
        s.push_str(&format!(
            "{name}: {}\r\n",
            notify
                .header(name)
                .unwrap_or_else(|| panic!("{name} in NOTIFY"))
        ));
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    peer.send(s.as_bytes());
}

fn is_notify(m: &Msg) -> bool {
    !m.start.starts_with("SIP/2.0 ") && m.method() == "NOTIFY"
}

/// Send `req` and wait for its final response, answering any NOTIFY that arrives meanwhile.
fn call(peer: &UdpPeer, req: &Req) -> Msg {
    peer.send(&req.bytes());
    let call_id = req.get("Call-ID").unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let Some(m) = peer.recv(Duration::from_millis(200)) else {
            continue;
        };
        if is_notify(&m) {
            answer_notify(peer, &m);
        } else if m.start.starts_with("SIP/2.0 ")
            && m.header("Call-ID") == Some(&call_id)
            && m.status() >= 200
        {
            return m;
        }
    }
    panic!("no final response to {} {call_id}", req.method)
}

/// Wait for a NOTIFY in the dialog of `call_id` and answer it.
fn expect_notify(peer: &UdpPeer, call_id: &str) -> Msg {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let Some(m) = peer.recv(Duration::from_millis(200)) else {
            continue;
        };
        if is_notify(&m) {
            answer_notify(peer, &m);
            if m.header("Call-ID") == Some(call_id) {
                return m;
            }
        }
    }
    panic!("no NOTIFY for {call_id}")
}

/// No NOTIFY for `call_id` within `wait` (a refused SUBSCRIBE creates no subscription).
fn no_notify(peer: &UdpPeer, call_id: &str, wait: Duration) {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        let Some(m) = peer.recv(Duration::from_millis(50)) else {
            continue;
        };
        if is_notify(&m) {
            answer_notify(peer, &m);
            assert_ne!(
                m.header("Call-ID"),
                Some(call_id),
                "NOTIFY after a refused SUBSCRIBE:\n{}",
                m.text()
            );
        }
    }
}

/// Send `req`, expect `code`, check the echoed headers; returns the response.
fn expect_error(peer: &UdpPeer, req: &Req, code: u16) -> Msg {
    let resp = call(peer, req);
    assert_eq!(
        resp.status(),
        code,
        "{} answered:\n{}",
        req.method,
        resp.text()
    );
    assert_echoes(&resp, req);
    resp
}

/// Send a SUBSCRIBE that must be refused with `code`: checks as `expect_error`, and that no
/// NOTIFY follows for it.
fn expect_sub_error(peer: &UdpPeer, req: &Req, code: u16) -> Msg {
    let resp = expect_error(peer, req, code);
    no_notify(
        peer,
        req.get("Call-ID").unwrap(),
        Duration::from_millis(300),
    );
    resp
}

/// Comma-separated tokens of every `name` header, lower-cased.
fn tokens(resp: &Msg, name: &str) -> Vec<String> {
    resp.all(name)
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap().trim().to_ascii_lowercase())
        .collect()
}

/// A successful PUBLISH: 200 with SIP-ETag and Expires; returns (etag, expires).
fn publish_ok(peer: &UdpPeer, req: &Req) -> (String, u32) {
    let resp = call(peer, req);
    assert_eq!(resp.status(), 200, "{}", resp.text());
    assert_echoes(&resp, req);
    let etag = resp
        .header("SIP-ETag")
        .expect("SIP-ETag in 200 (RFC 3903 §6)")
        .to_owned();
    assert!(!etag.is_empty());
    let expires = resp
        .header("Expires")
        .expect("Expires in 200 (RFC 3903 §6)")
        .parse()
        .expect("numeric Expires");
    (etag, expires)
}

/// A successful SUBSCRIBE: 200 with a To tag and Expires, then the first NOTIFY.
fn subscribe_ok(peer: &UdpPeer, req: &Req) -> Msg {
    let resp = call(peer, req);
    assert_eq!(resp.status(), 200, "{}", resp.text());
    assert_echoes(&resp, req);
    assert!(
        resp.header("Expires").is_some(),
        "Expires in 200 (RFC 6665 §4.2.1.1)"
    );
    expect_notify(peer, req.get("Call-ID").unwrap());
    resp
}

// ---------------------------------------------------------------------------------------------
// PUBLISH (RFC 3903 §6)

#[test]
fn publish_without_event_is_489_with_allow_events() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let req = publish(&peer, ALICE).without("Event");
    let resp = expect_error(&peer, &req, 489);
    assert!(
        tokens(&resp, "Allow-Events").contains(&"presence".into()),
        "{}",
        resp.text()
    );
}

#[test]
fn publish_for_another_event_package_is_489() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let req = publish(&peer, ALICE).set("Event", "dialog");
    let resp = expect_error(&peer, &req, 489);
    assert!(
        tokens(&resp, "Allow-Events").contains(&"presence".into()),
        "{}",
        resp.text()
    );
}

#[test]
fn publish_interval_too_brief_is_423_with_min_expires() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let req = publish(&peer, ALICE).set("Expires", "10");
    let resp = expect_error(&peer, &req, 423);
    assert_eq!(resp.header("Min-Expires"), Some("60"), "{}", resp.text());
}

#[test]
fn publish_expires_is_lowered_to_the_maximum_and_defaulted_when_absent() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let (_, granted) = publish_ok(&peer, &publish(&peer, ALICE).set("Expires", "100000"));
    assert_eq!(
        granted, 7200,
        "lowered to publish_max_expires (RFC 3903 §6 step 4)"
    );
    let (_, granted) = publish_ok(&peer, &publish(&peer, BOB).without("Expires"));
    assert_eq!(granted, 3600, "publish_default_expires when absent");
}

#[test]
fn publish_of_unsupported_type_is_415_with_accept() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let req = publish(&peer, ALICE).body("text/plain", b"I am here");
    let resp = expect_error(&peer, &req, 415);
    assert!(
        tokens(&resp, "Accept").contains(&PIDF.into()),
        "{}",
        resp.text()
    );
}

#[test]
fn publish_of_malformed_xml_is_400_naming_xml() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let body = br#"<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com"><tuple id="t1"></presence>"#;
    let req = publish(&peer, ALICE).body(PIDF, body);
    let resp = expect_error(&peer, &req, 400);
    assert!(
        resp.reason().to_ascii_lowercase().contains("xml"),
        "reason {:?} mentions XML",
        resp.reason()
    );
}

#[test]
fn publish_of_well_formed_non_pidf_is_400() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    // right local name, wrong namespace; then an unrelated root
    for body in [
        &br#"<?xml version="1.0"?><presence xmlns="urn:example:not-pidf" entity="sip:alice@example.com"/>"#[..],
        &br#"<?xml version="1.0"?><note xmlns="urn:ietf:params:xml:ns:pidf">hello</note>"#[..],
    ] {
        let req = publish(&peer, ALICE).body(PIDF, body);
        expect_error(&peer, &req, 400);
    }
}

#[test]
fn publish_with_entity_of_someone_else_is_400() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let req = publish(&peer, ALICE).body(PIDF, &pidf("sip:mallory@example.com"));
    expect_error(&peer, &req, 400);
    // and nothing was stored: a watcher of alice sees no tuple and no trace of mallory
    let sub = subscribe(&peer, ALICE);
    assert_eq!(call(&peer, &sub).status(), 200);
    let n = expect_notify(&peer, sub.get("Call-ID").unwrap());
    let body = String::from_utf8_lossy(&n.body);
    assert!(
        !body.contains("<tuple") && !body.contains("mallory"),
        "{body}"
    );
}

#[test]
fn publish_body_over_max_body_bytes_is_413() {
    let s = Server::start_with("[presence]\nmax_body_bytes = 1024\n", &[]);
    let peer = UdpPeer::new(s.udp);
    let big = pidf_padded(ALICE, 2000);
    assert!(big.len() > 1024);
    expect_error(&peer, &publish(&peer, ALICE).body(PIDF, &big), 413);
    // at the limit it is accepted
    let small = pidf_padded(ALICE, 1024 - pidf_padded(ALICE, 1).len() + 1);
    assert_eq!(small.len(), 1024);
    publish_ok(&peer, &publish(&peer, ALICE).body(PIDF, &small));
}

#[test]
fn initial_publish_without_body_is_400() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let mut req = publish(&peer, ALICE).without("Content-Type");
    req.body.clear();
    expect_error(&peer, &req, 400);
}

#[test]
fn publish_with_unknown_or_stale_etag_is_412() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    // never issued: a refresh (no body) and a modify (body)
    let refresh = peer
        .req("PUBLISH", ALICE)
        .set("Event", "presence")
        .set("Expires", "3600")
        .set("SIP-If-Match", "nosuchetag");
    expect_error(&peer, &refresh, 412);
    expect_error(
        &peer,
        &publish(&peer, ALICE).set("SIP-If-Match", "nosuchetag"),
        412,
    );
    // replaced by a refresh (RFC 3903 §6: a new entity-tag for each successful publication)
    let (first, _) = publish_ok(&peer, &publish(&peer, ALICE));
    let refresh = |etag: &str| {
        peer.req("PUBLISH", ALICE)
            .set("Event", "presence")
            .set("Expires", "3600")
            .set("SIP-If-Match", etag)
    };
    let (second, _) = publish_ok(&peer, &refresh(&first));
    assert_ne!(first, second, "refresh issues a new entity-tag");
    expect_error(&peer, &refresh(&first), 412);
    // removed: its entity-tag names nothing any more
    let removed = call(&peer, &refresh(&second).set("Expires", "0"));
    assert_eq!(removed.status(), 200, "{}", removed.text());
    expect_error(&peer, &refresh(&second), 412);
}

#[test]
fn publish_with_etag_of_another_presentity_is_412() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let (bobs, _) = publish_ok(&peer, &publish(&peer, BOB));
    let refresh = peer
        .req("PUBLISH", ALICE)
        .set("Event", "presence")
        .set("Expires", "3600")
        .set("SIP-If-Match", &bobs);
    expect_error(&peer, &refresh, 412);
    expect_error(
        &peer,
        &publish(&peer, ALICE).set("SIP-If-Match", &bobs),
        412,
    );
    // bob's publication is untouched
    let bob_refresh = peer
        .req("PUBLISH", BOB)
        .set("Event", "presence")
        .set("Expires", "3600")
        .set("SIP-If-Match", &bobs);
    publish_ok(&peer, &bob_refresh);
}

#[test]
fn publish_outside_served_domains_is_404() {
    let s = Server::start_with("[presence]\ndomains = [\"example.com\"]\n", &[]);
    let peer = UdpPeer::new(s.udp);
    let other = "sip:alice@other.org";
    expect_error(&peer, &publish(&peer, other), 404);
    publish_ok(&peer, &publish(&peer, ALICE));
}

#[test]
fn publish_with_malformed_expires_is_400() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    expect_error(&peer, &publish(&peer, ALICE).set("Expires", "abc"), 400);
}

/// RFC 3903 §6: the entity-tag (step 3) is checked before Expires (step 4), and each failing
/// step skips the remaining ones: an unknown entity-tag is 412 even with too brief an interval.
#[test]

fn publish_etag_is_checked_before_expires() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let req = peer
        .req("PUBLISH", ALICE)
        .set("Event", "presence")
        .set("SIP-If-Match", "nosuchetag")
        .set("Expires", "10");
    expect_error(&peer, &req, 412);
}

/// RFC 3903 §6: the entity-tag (step 3) is checked before the body (step 5): an unknown
/// entity-tag is 412 even with a body of a type we do not take.
#[test]

fn publish_etag_is_checked_before_body() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let req = peer
        .req("PUBLISH", ALICE)
        .set("Event", "presence")
        .set("SIP-If-Match", "nosuchetag")
        .set("Expires", "3600")
        .body("text/plain", b"here");
    expect_error(&peer, &req, 412);
}

/// RFC 3903 §6 step 3: a SIP-If-Match with more than one entity-tag is 400.
#[test]

fn publish_with_several_etags_is_400() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let (etag, _) = publish_ok(&peer, &publish(&peer, ALICE));
    let req = peer
        .req("PUBLISH", ALICE)
        .set("Event", "presence")
        .set("Expires", "3600")
        .set("SIP-If-Match", &format!("{etag}, other"));
    expect_error(&peer, &req, 400);
}

// ---------------------------------------------------------------------------------------------
// SUBSCRIBE (RFC 6665 §4.2.1, RFC 3856 §6)

#[test]
fn subscribe_without_event_is_489_with_allow_events() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let req = subscribe(&peer, ALICE).without("Event");
    let resp = expect_sub_error(&peer, &req, 489);
    assert!(
        tokens(&resp, "Allow-Events").contains(&"presence".into()),
        "{}",
        resp.text()
    );
}

#[test]
fn subscribe_accepting_only_other_types_is_406() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    expect_sub_error(
        &peer,
        &subscribe(&peer, ALICE).set("Accept", "text/plain"),
        406,
    );
}

#[test]
fn subscribe_accepting_pidf_among_others_is_200() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    // one header with a list
    let req = subscribe(&peer, ALICE).set(
        "Accept",
        "application/cpim-pidf+xml, application/pidf+xml;q=0.9, text/plain",
    );
    subscribe_ok(&peer, &req);
    // several Accept header lines (RFC 3261 §7.3.1: the same as one comma-separated list)
    let mut req = subscribe(&peer, BOB).set("Accept", "text/plain");
    req.headers.push((
        "Accept".into(),
        "multipart/related, application/pidf+xml".into(),
    ));
    subscribe_ok(&peer, &req);
}

#[test]
fn subscribe_interval_too_brief_is_423_with_min_expires() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let resp = expect_sub_error(&peer, &subscribe(&peer, ALICE).set("Expires", "5"), 423);
    assert_eq!(resp.header("Min-Expires"), Some("60"), "{}", resp.text());
}

#[test]
fn subscribe_without_contact_is_400() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    expect_sub_error(&peer, &subscribe(&peer, ALICE).without("Contact"), 400);
}

#[test]
fn subscribe_in_unknown_dialog_is_481() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let req = subscribe(&peer, ALICE)
        .set("To", &format!("<{ALICE}>;tag=neverissued"))
        .set("CSeq", "2 SUBSCRIBE");
    expect_sub_error(&peer, &req, 481);
    // a real dialog, addressed with a tag of ours but a Call-ID we never saw
    let first = subscribe(&peer, BOB);
    let ok = subscribe_ok(&peer, &first);
    let to = ok.header("To").unwrap();
    let stray = subscribe(&peer, BOB)
        .set("To", to)
        .set("CSeq", "2 SUBSCRIBE");
    assert_ne!(stray.get("Call-ID"), first.get("Call-ID"));
    expect_sub_error(&peer, &stray, 481);
}

#[test]
fn subscribe_outside_served_domains_is_404() {
    let s = Server::start_with("[presence]\ndomains = [\"example.com\"]\n", &[]);
    let peer = UdpPeer::new(s.udp);
    expect_sub_error(&peer, &subscribe(&peer, "sip:alice@other.org"), 404);
    subscribe_ok(&peer, &subscribe(&peer, ALICE));
}

#[test]
fn subscriptions_per_watcher_are_limited_with_403() {
    let s = Server::start_with("[presence]\nmax_subscriptions_per_watcher = 1\n", &[]);
    let peer = UdpPeer::new(s.udp);
    let first = subscribe(&peer, ALICE);
    subscribe_ok(&peer, &first);
    // same From URI, new tag and Call-ID, another presentity
    let second = from_watcher(subscribe(&peer, BOB), "tester");
    assert_ne!(first.get("Call-ID"), second.get("Call-ID"));
    expect_sub_error(&peer, &second, 403);
    // another watcher is not affected
    let other = from_watcher(subscribe(&peer, BOB), "carol");
    subscribe_ok(&peer, &other);
}

#[test]
fn subscriptions_per_presentity_are_limited_with_503() {
    let s = Server::start_with("[presence]\nmax_subscriptions_per_presentity = 1\n", &[]);
    let w1 = UdpPeer::new(s.udp);
    subscribe_ok(&w1, &subscribe(&w1, ALICE));
    let w2 = UdpPeer::new(s.udp);
    let second = from_watcher(subscribe(&w2, ALICE), "carol");
    let busy = expect_sub_error(&w2, &second, 503);
    assert!(
        busy.header("Retry-After")
            .is_some_and(|v| v.parse::<u32>().is_ok()),
        "{}",
        busy.text()
    );
    // another presentity is not affected
    subscribe_ok(&w2, &from_watcher(subscribe(&w2, BOB), "carol"));
}

// ---------------------------------------------------------------------------------------------
// What the operator sees of refused requests

#[test]
fn refused_requests_are_logged_as_json_lines_with_status_and_peer() {
    let s = Server::start_with(
        "",
        &[
            "--log",
            "warn,presenced::rejected=debug",
            "--log-format",
            "json",
        ],
    );
    let peer = UdpPeer::new(s.udp);
    expect_error(&peer, &publish(&peer, ALICE).without("Event"), 489);
    // a parse-time refusal: an unknown SIP version (505)
    let bad = String::from_utf8(publish(&peer, ALICE).bytes())
        .unwrap()
        .replacen("SIP/2.0\r\n", "SIP/7.0\r\n", 1);
    peer.send(bad.as_bytes());
    let got = peer.recv(Duration::from_secs(5)).expect("505");
    assert_eq!(got.status(), 505);
    let logs = std::iter::repeat_with(|| {
        std::thread::sleep(Duration::from_millis(50));
        s.stderr()
    })
    .take(100)
    .find(|l| l.matches("presenced::rejected").count() >= 2)
    .unwrap_or_else(|| s.stderr());
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter(|l| l.contains("presenced::rejected"))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let peer_addr = peer.addr().to_string();
    let find = |status: u64| {
        lines
            .iter()
            .find(|v| v["fields"]["status"] == status)
            .unwrap_or_else(|| panic!("no {status} line in {logs}"))
    };
    let refused = find(489);
    assert_eq!(refused["level"], "DEBUG");
    assert_eq!(refused["fields"]["method"], "PUBLISH");
    assert_eq!(refused["fields"]["peer"], peer_addr.as_str());
    assert!(
        refused["fields"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("Bad Event")),
        "{refused}"
    );
    assert_eq!(find(505)["fields"]["peer"], peer_addr.as_str());
}
