//! The xcap-diff event package (RFC 5875) without a network: documents come in as committed
//! changes, a subscriber gets the full state and then previous/new entity tags per change.

use bytes::Bytes;
use presenced_systems::answers;
use presenced_systems::xdm::{self, DocumentChange, XdmConfig};
use presenced_systems::{Engine, EngineConfig, Inbound, Outbound, Source, Time};

fn src() -> Source {
    answers::udp_source(9100)
}

const SEL: &str = "resource-lists/users/sip:joe@example.com/index";

fn change(prev: Option<&str>, new: Option<&str>) -> DocumentChange {
    DocumentChange {
        auid: "resource-lists".into(),
        xui: Some("sip:joe@example.com".into()),
        doc_path: "index".into(),
        selector: SEL.into(),
        previous_etag: prev.map(Into::into),
        new_etag: new.map(Into::into),
        content: new.map(|_| Bytes::from_static(b"<?xml version=\"1.0\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"/>")),
    }
}

fn subscribe(from: &str, event: &str) -> Inbound {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list>\
<entry uri=\"resource-lists/users/sip:joe@example.com/\"/></list></resource-lists>";
    let text = format!(
        "SUBSCRIBE sip:joe@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9100;branch=z9hG4bKx1;rport\r\nMax-Forwards: 70\r\n\
From: <{from}>;tag=a\r\nTo: <sip:joe@example.com>\r\nCall-ID: xd1\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:joe@127.0.0.1:9100>\r\n\
Event: {event}\r\nAccept: application/xcap-diff+xml\r\nExpires: 600\r\nContent-Type: application/resource-lists+xml\r\n\
Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    answers::inbound(src(), text)
}

fn engine() -> Engine {
    let mut e = Engine::new(EngineConfig::default());
    e.add_feature(xdm::feature(XdmConfig::default()));
    e
}

fn notify_bodies(out: &[Outbound]) -> Vec<String> {
    out.iter()
        .filter(|m| m.head.starts_with(b"NOTIFY "))
        .map(|m| String::from_utf8(m.body.to_vec()).unwrap())
        .collect()
}

fn validate(doc: &str) {
    presenced_systems::schema_check::assert_valid(doc.as_bytes());
}

#[test]
fn full_state_then_previous_and_new_tags() {
    let mut e = engine();
    let mut out = Vec::new();
    e.submit_documents([change(None, Some("e1"))]);
    e.tick(
        Time(1),
        [subscribe("sip:joe@example.com", "xcap-diff")],
        &mut out,
    );
    let bodies = notify_bodies(&out);
    assert_eq!(bodies.len(), 1, "{out:?}");
    assert!(
        bodies[0].contains(&format!("<document sel=\"{SEL}\" new-etag=\"e1\"/>")),
        "{}",
        bodies[0]
    );
    validate(&bodies[0]);
    let notify = out
        .iter()
        .find(|m| m.head.starts_with(b"NOTIFY "))
        .unwrap()
        .clone();
    assert!(
        std::str::from_utf8(&notify.head)
            .unwrap()
            .contains("Content-Type: application/xcap-diff+xml")
    );
    out.clear();
    // two changes before the answer: one NOTIFY with the first previous and the last new tag
    e.submit_documents([change(Some("e1"), Some("e2"))]);
    e.tick(Time(2), [], &mut out);
    e.submit_documents([change(Some("e2"), Some("e3"))]);
    e.tick(Time(3), [], &mut out);
    assert!(notify_bodies(&out).is_empty(), "NOTIFYs are serialized");
    e.tick(Time(4), [answers::ok_to(&notify, src())], &mut out);
    let bodies = notify_bodies(&out);
    assert_eq!(bodies.len(), 1);
    assert!(
        bodies[0].contains("previous-etag=\"e1\" new-etag=\"e3\""),
        "{}",
        bodies[0]
    );
    validate(&bodies[0]);
    let second = out
        .iter()
        .find(|m| m.head.starts_with(b"NOTIFY "))
        .unwrap()
        .clone();
    out.clear();
    e.tick(Time(5), [answers::ok_to(&second, src())], &mut out);
    // deletion: previous tag only
    e.submit_documents([change(Some("e3"), None)]);
    e.tick(Time(6), [], &mut out);
    let bodies = notify_bodies(&out);
    assert!(
        bodies[0].contains(&format!("<document sel=\"{SEL}\" previous-etag=\"e3\"/>")),
        "{}",
        bodies[0]
    );
    validate(&bodies[0]);
}

#[test]
fn patching_mode_carries_the_new_document() {
    let mut e = engine();
    let mut out = Vec::new();
    e.submit_documents([change(None, Some("e1"))]);
    e.tick(
        Time(1),
        [subscribe(
            "sip:joe@example.com",
            "xcap-diff;diff-processing=xcap-patching",
        )],
        &mut out,
    );
    let first = out
        .iter()
        .find(|m| m.head.starts_with(b"NOTIFY "))
        .unwrap()
        .clone();
    out.clear();
    e.tick(Time(2), [answers::ok_to(&first, src())], &mut out);
    e.submit_documents([change(Some("e1"), Some("e2"))]);
    e.tick(Time(3), [], &mut out);
    let bodies = notify_bodies(&out);
    assert!(
        bodies[0].contains("<replace sel=\"*\"><resource-lists"),
        "{}",
        bodies[0]
    );
    validate(&bodies[0]);
}

#[test]
fn another_users_documents_are_refused() {
    let mut e = engine();
    let mut out = Vec::new();
    e.tick(
        Time(1),
        [subscribe("sip:mallory@example.com", "xcap-diff")],
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert!(
        out[0].head.starts_with(b"SIP/2.0 403"),
        "{}",
        String::from_utf8_lossy(&out[0].head)
    );
}
