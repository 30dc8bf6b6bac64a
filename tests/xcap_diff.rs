//! xcap-diff (RFC 5875) end to end: an XDM client subscribes over SIP to its documents, changes
//! them over XCAP, and is told each change with the previous and new entity tags (RFC 5874);
//! documents stored before a restart are part of the full state afterwards. Every NOTIFY body
//! is validated with the schemas.

mod common;

use std::time::Duration;

use common::{Msg, Server, UdpPeer, Xcap, assert_valid_xml, example, response_to, tag_of};

const ALICE: &str = "sip:alice@example.com";
const DOC: &str = "/xcap-root/resource-lists/users/sip:alice@example.com/index";
const SEL: &str = "resource-lists/users/sip:alice@example.com/index";

fn unquote(etag: &str) -> String {
    etag.trim_matches('"').to_owned()
}

struct Client {
    peer: UdpPeer,
}

impl Client {
    fn subscribe(server: &Server, selector: &str, event: &str) -> (Client, Msg) {
        let peer = UdpPeer::new(server.udp);
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\
<list><entry uri=\"{selector}\"/></list></resource-lists>"
        );
        let req = peer
            .req("SUBSCRIBE", ALICE)
            .set("From", &format!("<{ALICE}>;tag={}", common::unique("x")))
            .set("Event", event)
            .set("Accept", "application/xcap-diff+xml")
            .set("Contact", &format!("<sip:alice@{}>", peer.addr()))
            .set("Expires", "600")
            .body("application/resource-lists+xml", body.as_bytes());
        let resp = peer.call(&req);
        (Client { peer }, resp)
    }

    /// The next NOTIFY, validated and answered.
    fn notify(&self) -> String {
        loop {
            let m = self.peer.recv(Duration::from_secs(5)).expect("a NOTIFY");
            if m.method() != "NOTIFY" {
                continue;
            }
            assert_eq!(
                m.header("Event").map(|e| e.split(';').next().unwrap()),
                Some("xcap-diff")
            );
            assert_eq!(m.header("Content-Type"), Some("application/xcap-diff+xml"));
            assert_valid_xml(&m.body);
            self.peer.send(&response_to(&m, 200, "OK"));
            return String::from_utf8(m.body).unwrap();
        }
    }
}

#[test]
fn changes_over_xcap_are_notified_with_both_etags() {
    let s = Server::start();
    let xcap = Xcap::new(s.http);
    let e1 = unquote(
        &xcap
            .put(
                DOC,
                "application/resource-lists+xml",
                &example("resource-lists.xml"),
            )
            .etag(),
    );
    let (c, resp) = Client::subscribe(
        &s,
        "resource-lists/users/sip:alice@example.com/",
        "xcap-diff",
    );
    assert_eq!(resp.status(), 200, "{}", resp.text());
    assert!(resp.header("To").and_then(tag_of).is_some());
    // full state first
    let full = c.notify();
    assert!(
        full.contains(&format!("<document sel=\"{SEL}\" new-etag=\"{e1}\"/>")),
        "{full}"
    );
    assert!(
        full.contains(&format!("xcap-root=\"http://{}/xcap-root\"", s.http)),
        "{full}"
    );
    // a whole-document change
    let mut doc = String::from_utf8(example("resource-lists.xml")).unwrap();
    doc = doc.replace("Bill Doe", "Bill D.");
    let put = xcap.put(DOC, "application/resource-lists+xml", doc.as_bytes());
    assert_eq!(put.status, 200);
    let e2 = unquote(&put.etag());
    let n = c.notify();
    assert!(
        n.contains(&format!("previous-etag=\"{e1}\" new-etag=\"{e2}\"")),
        "{n}"
    );
    // an element change made by the subscriber itself is reported too
    let el = xcap.put(
        &format!("{DOC}/~~/resource-lists/list%5b@name=%22friends%22%5d/entry%5b@uri=%22sip:new@example.com%22%5d"),
        "application/xcap-el+xml",
        b"<entry uri=\"sip:new@example.com\"/>",
    );
    assert_eq!(el.status, 201, "{}", el.text());
    let e3 = unquote(&el.etag());
    let n = c.notify();
    assert!(
        n.contains(&format!("previous-etag=\"{e2}\" new-etag=\"{e3}\"")),
        "{n}"
    );
    // deletion: the previous tag only
    assert_eq!(xcap.delete(DOC).status, 200);
    let n = c.notify();
    assert!(
        n.contains(&format!("<document sel=\"{SEL}\" previous-etag=\"{e3}\"/>")),
        "{n}"
    );
}

#[test]
fn documents_stored_before_a_restart_are_in_the_full_state() {
    let data = common::temp_dir("xdiff");
    let etag = {
        let s = Server::start_on("", &[], Some(&data));
        let xcap = Xcap::new(s.http);
        unquote(
            &xcap
                .put(
                    DOC,
                    "application/resource-lists+xml",
                    &example("resource-lists.xml"),
                )
                .etag(),
        )
    };
    let s = Server::start_on("", &[], Some(&data));
    let (c, resp) = Client::subscribe(&s, SEL, "xcap-diff");
    assert_eq!(resp.status(), 200);
    let full = c.notify();
    assert!(full.contains(&format!("new-etag=\"{etag}\"")), "{full}");
}

#[test]
fn another_users_documents_are_forbidden() {
    let s = Server::start();
    let (_c, resp) = Client::subscribe(
        &s,
        "resource-lists/users/sip:bob@example.com/index",
        "xcap-diff",
    );
    assert_eq!(resp.status(), 403);
}
