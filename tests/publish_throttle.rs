//! The publish throttle (OMA SOURCE-THROTTLE-PUBLISH, `presence.publish_min_interval_ms`): one
//! source changing its presence faster than the interval is refused with 503 and Retry-After,
//! or (merge) taken and shown once the interval is over, the latest change winning.

mod common;

use std::time::Duration;

use common::{Msg, Server, Subscriber, UdpPeer, pidf, unique};

const ALICE: &str = "sip:alice@example.com";

/// alice's PUBLISH of `note`, modifying `etag`'s publication when given.
fn publish(peer: &UdpPeer, etag: Option<&str>, note: &str) -> Msg {
    let mut r = peer
        .req("PUBLISH", ALICE)
        .set("From", &format!("<{ALICE}>;tag={}", unique("p")))
        .set("Event", "presence")
        .set("Expires", "600")
        .body("application/pidf+xml", &pidf(ALICE, "t1", "open", note));
    if let Some(e) = etag {
        r = r.set("SIP-If-Match", e);
    }
    peer.call(&r)
}

fn etag(m: &Msg) -> String {
    m.header("SIP-ETag").expect("SIP-ETag").to_owned()
}

#[test]
fn a_source_publishing_too_often_gets_503_with_retry_after() {
    let s = Server::start_with("[presence]\npublish_min_interval_ms = 5000\n", &[]);
    let peer = UdpPeer::new(s.udp);
    let first = publish(&peer, None, "one");
    assert_eq!(first.status(), 200);
    let tag = etag(&first);
    let second = publish(&peer, Some(&tag), "two");
    assert_eq!(second.status(), 503, "{}", second.text());
    let wait: u64 = second
        .header("Retry-After")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=5).contains(&wait), "Retry-After {wait}");
    // the refused change left the publication as it was: its tag still names it, and a
    // refresh (no body) is not a change
    let refresh = peer.call(
        &peer
            .req("PUBLISH", ALICE)
            .set("From", &format!("<{ALICE}>;tag={}", unique("p")))
            .set("Event", "presence")
            .set("Expires", "600")
            .set("SIP-If-Match", &tag),
    );
    assert_eq!(refresh.status(), 200, "{}", refresh.text());
    // another source of alice is a source of its own
    let other = UdpPeer::new(s.udp);
    assert_eq!(publish(&other, None, "phone").status(), 200);
}

#[test]
fn merged_changes_show_once_the_interval_is_over_the_latest_winning() {
    let s = Server::start_with(
        "[presence]\npublish_min_interval_ms = 3000\npublish_throttle = \"merge\"\n",
        &[],
    );
    let peer = UdpPeer::new(s.udp);
    let first = publish(&peer, None, "one");
    assert_eq!(first.status(), 200);
    let (w, resp) = Subscriber::subscribe(
        &s,
        ALICE,
        "sip:bob@example.com",
        "presence",
        "application/pidf+xml",
        600,
        |r| r,
    );
    assert_eq!(resp.status(), 200);
    let n = w.notify();
    assert!(
        String::from_utf8_lossy(&n.body).contains("one"),
        "{}",
        n.text()
    );
    // two changes inside the interval: both taken
    let second = publish(&peer, Some(&etag(&first)), "two");
    assert_eq!(second.status(), 200, "{}", second.text());
    let third = publish(&peer, Some(&etag(&second)), "three");
    assert_eq!(third.status(), 200, "{}", third.text());
    // one NOTIFY when the interval is over, with the latest
    let n = w
        .next_notify(Duration::from_secs(6))
        .expect("the held change");
    let body = String::from_utf8_lossy(&n.body).into_owned();
    assert!(body.contains("three") && !body.contains("two"), "{body}");
}
