//! The Resource List Server in the engine, without a network: a list watched by several
//! subscriptions is resolved once, and a member's change is encoded once per tick however many
//! list NOTIFYs carry it (per list subscription only the RLMI and the framing are written).

use bytes::Bytes;
use presenced_systems::answers::{self, ok_to};
use presenced_systems::presence::{self, PresenceConfig};
use presenced_systems::privacy::{self, PrivacyConfig, SubHandling};
use presenced_systems::rls::{self, Rls, RlsConfig};
use presenced_systems::xdm::{self, DocumentChange, XdmConfig};
use presenced_systems::{Engine, EngineConfig, Inbound, Outbound, Source, Time};

fn src(port: u16) -> Source {
    answers::udp_source(port)
}

fn inbound(port: u16, text: String) -> Inbound {
    answers::inbound(src(port), text)
}

/// Owner `o`'s rls-services document: service `sip:o{o}-list@example.com` of bob and carol.
fn list_doc(o: u16) -> DocumentChange {
    let owner = format!("sip:o{o}@example.com");
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\" \
xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\"><service uri=\"sip:o{o}-list@example.com\"><list>\
<rl:entry uri=\"sip:bob@example.com\"/><rl:entry uri=\"sip:carol@example.com\"/></list></service></rls-services>"
    );
    DocumentChange {
        auid: "rls-services".into(),
        xui: Some(owner.clone()),
        doc_path: "index".into(),
        selector: format!("rls-services/users/{owner}/index"),
        previous_etag: None,
        new_etag: Some("e1".into()),
        content: Some(Bytes::from(doc)),
    }
}

/// Owner `o`'s list SUBSCRIBE from device `d` (its own dialog and port).
fn subscribe(o: u16, d: u16) -> Inbound {
    let port = 10_000 + o * 10 + d;
    inbound(
        port,
        format!(
            "SUBSCRIBE sip:o{o}-list@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKs{port};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:o{o}@example.com>;tag=t{port}\r\nTo: <sip:o{o}-list@example.com>\r\nCall-ID: c{port}\r\n\
CSeq: 1 SUBSCRIBE\r\nContact: <sip:o{o}@127.0.0.1:{port}>\r\nEvent: presence\r\nSupported: eventlist\r\n\
Accept: multipart/related, application/rlmi+xml, application/pidf+xml\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
        ),
    )
}

fn publish(n: u32) -> Inbound {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:bob@example.com\">\
<tuple id=\"t1\"><status><basic>open</basic></status><note>change {n}</note></tuple></presence>"
    );
    inbound(
        9000,
        format!(
            "PUBLISH sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9000;branch=z9hG4bKp{n};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=p\r\nTo: <sip:bob@example.com>\r\nCall-ID: pub{n}\r\n\
CSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: 600\r\nContent-Type: application/pidf+xml\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn notifies(out: &[Outbound]) -> Vec<&Outbound> {
    out.iter()
        .filter(|m| m.head.starts_with(b"NOTIFY "))
        .collect()
}

fn answer(engine: &mut Engine, now: u64, out: &[Outbound]) {
    let acks: Vec<Inbound> = notifies(out)
        .into_iter()
        .map(|m| ok_to(m, src(m.dest.addr.port())))
        .collect();
    engine.tick(Time(now), acks, &mut Vec::new());
}

#[test]
fn a_member_part_is_encoded_once_and_a_list_resolved_once() {
    let mut engine = Engine::new(EngineConfig {
        seed: 3,
        ..EngineConfig::default()
    });
    engine.add_feature(presence::feature(PresenceConfig::default()));
    engine.add_feature(xdm::feature(XdmConfig::default()));
    engine.add_feature(privacy::feature(PrivacyConfig {
        default_handling: SubHandling::Allow,
    }));
    engine.add_feature(rls::feature(RlsConfig::default()));
    engine.submit_documents((0..20).map(list_doc));
    // 20 owners, owner 0 from two devices: 21 list subscriptions over 20 lists
    let mut subs: Vec<Inbound> = (0..20).map(|o| subscribe(o, 0)).collect();
    subs.push(subscribe(0, 1));
    let mut out = Vec::new();
    engine.tick(Time(1), subs, &mut out);
    assert_eq!(
        notifies(&out).len(),
        21,
        "a first NOTIFY per list subscription"
    );
    answer(&mut engine, 1, &out);
    let rls = engine.world().resource::<Rls>();
    assert_eq!(
        rls.resolutions, 20,
        "the two subscriptions of one list share its resolution"
    );
    let encoded = rls.parts_encoded;

    out.clear();
    engine.tick(Time(2), [publish(1)], &mut out);
    let sent = notifies(&out);
    assert_eq!(sent.len(), 21);
    for n in &sent {
        let body = String::from_utf8_lossy(&n.body);
        assert!(
            body.contains("fullState=\"false\"") && body.contains("change 1"),
            "{body}"
        );
        assert_eq!(
            body.matches("<resource ").count(),
            1,
            "only bob changed: {body}"
        );
    }
    assert_eq!(
        engine.world().resource::<Rls>().parts_encoded - encoded,
        1,
        "bob's part written once for 21 NOTIFYs"
    );
}
