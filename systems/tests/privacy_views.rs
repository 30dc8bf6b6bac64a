//! Privacy in the engine, without a network: watchers are placed by the presentity's rules,
//! and a publication is filtered once per distinct permission set, its body shared by every
//! NOTIFY of that set, never encoded per watcher.

use bytes::Bytes;
use presenced_systems::answers::{self, ok_to};
use presenced_systems::presence::{self, PresenceConfig};
use presenced_systems::privacy::{self, Filterings, PrivacyConfig, SubHandling};
use presenced_systems::xdm::{self, DocumentChange, XdmConfig};
use presenced_systems::{Engine, EngineConfig, Inbound, Outbound, Source, Time};

fn src(port: u16) -> Source {
    answers::udp_source(port)
}

fn inbound(port: u16, text: String) -> Inbound {
    answers::inbound(src(port), text)
}

fn subscribe(i: u16) -> Inbound {
    let port = 10_000 + i;
    inbound(
        port,
        format!(
            "SUBSCRIBE sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKs{i};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:w{i}@example.com>;tag=t{i}\r\nTo: <sip:alice@example.com>\r\nCall-ID: c{i}\r\n\
CSeq: 1 SUBSCRIBE\r\nContact: <sip:w{i}@127.0.0.1:{port}>\r\nEvent: presence\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
        ),
    )
}

fn publish(n: u32) -> Inbound {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:alice@example.com\">\
<tuple id=\"t1\"><status><basic>open</basic></status><note>change {n}</note></tuple></presence>"
    );
    inbound(
        9000,
        format!(
            "PUBLISH sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9000;branch=z9hG4bKp{n};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=p\r\nTo: <sip:alice@example.com>\r\nCall-ID: pub{n}\r\n\
CSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: 600\r\nContent-Type: application/pidf+xml\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Rules: w1..w30 see tuples and notes, w31..w60 tuples without notes, the rest wait.
fn rules() -> DocumentChange {
    let ids = |r: std::ops::RangeInclusive<u16>| {
        r.map(|i| format!("<cr:one id=\"sip:w{i}@example.com\"/>"))
            .collect::<String>()
    };
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<cr:ruleset xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\" \
xmlns:pr=\"urn:ietf:params:xml:ns:pres-rules\">\
<cr:rule id=\"notes\"><cr:conditions><cr:identity>{}</cr:identity></cr:conditions>\
<cr:actions><pr:sub-handling>allow</pr:sub-handling></cr:actions><cr:transformations>\
<pr:provide-services><pr:all-services/></pr:provide-services><pr:provide-note>true</pr:provide-note>\
</cr:transformations></cr:rule>\
<cr:rule id=\"plain\"><cr:conditions><cr:identity>{}</cr:identity></cr:conditions>\
<cr:actions><pr:sub-handling>allow</pr:sub-handling></cr:actions><cr:transformations>\
<pr:provide-services><pr:all-services/></pr:provide-services></cr:transformations></cr:rule></cr:ruleset>",
        ids(1..=30),
        ids(31..=60)
    );
    DocumentChange {
        auid: "pres-rules".into(),
        xui: Some("sip:alice@example.com".into()),
        doc_path: "index".into(),
        selector: "pres-rules/users/sip:alice@example.com/index".into(),
        previous_etag: None,
        new_etag: Some("e1".into()),
        content: Some(Bytes::from(doc)),
    }
}

fn engine() -> Engine {
    let mut e = Engine::new(EngineConfig::default());
    e.add_feature(presence::feature(PresenceConfig::default()));
    e.add_feature(xdm::feature(XdmConfig::default()));
    e.add_feature(privacy::feature(PrivacyConfig {
        default_handling: SubHandling::Confirm,
    }));
    e
}

fn notifies(out: &[Outbound]) -> Vec<&Outbound> {
    out.iter()
        .filter(|m| m.head.starts_with(b"NOTIFY "))
        .collect()
}

fn watcher_of(n: &Outbound) -> u16 {
    n.dest.addr.port() - 10_000
}

#[test]
fn one_filter_per_permission_set_and_pending_watchers_see_nothing() {
    let mut e = engine();
    let mut out = Vec::new();
    e.submit_documents([rules()]);
    e.tick(Time(1), [publish(0)], &mut out);
    out.clear();
    e.tick(Time(2), (1..=90).map(subscribe), &mut out);
    let first = notifies(&out);
    assert_eq!(first.len(), 90);
    for n in &first {
        let head = std::str::from_utf8(&n.head).unwrap();
        let w = watcher_of(n);
        if w > 60 {
            assert!(
                head.contains("Subscription-State: pending;expires="),
                "{head}"
            );
            assert!(
                n.body.is_empty() && !head.contains("Content-Type"),
                "{head}"
            );
        } else {
            assert!(
                head.contains("Subscription-State: active;expires="),
                "{head}"
            );
            presenced_systems::schema_check::assert_valid(&n.body);
            let text = std::str::from_utf8(&n.body).unwrap();
            assert_eq!(
                text.contains("<note>change 0</note>"),
                w <= 30,
                "w{w}: {text}"
            );
        }
    }
    let acks: Vec<Inbound> = first
        .iter()
        .map(|n| ok_to(n, src(n.dest.addr.port())))
        .collect();
    out.clear();
    e.tick(Time(3), acks, &mut out);

    let before = e.world().resource::<Filterings>().0;
    out.clear();
    e.tick(Time(4), [publish(1)], &mut out);
    let fan = notifies(&out);
    // both views changed (the tuple's note is in one, its basic status the same in the other:
    // the plain view is unchanged, so its watchers get nothing)
    let filtered = e.world().resource::<Filterings>().0 - before;
    assert_eq!(filtered, 2, "one filter per permission set");
    assert_eq!(fan.len(), 30, "only the watchers whose view changed");
    assert!(fan.iter().all(|n| watcher_of(n) <= 30));
    // one body, shared by every NOTIFY of the set
    let p = fan[0].body.as_ptr();
    assert!(
        fan.iter()
            .all(|n| n.body.as_ptr() == p && n.body.len() == fan[0].body.len())
    );
    assert!(
        std::str::from_utf8(&fan[0].body)
            .unwrap()
            .contains("change 1")
    );
}

/// A rule valid until a date stops applying at the watcher's first refresh after it.
#[test]
fn a_rule_that_expires_applies_until_the_next_refresh_after_it() {
    let mut e = engine();
    // engine time 0 is 2030-01-01T00:00:00Z
    e.set_wall_clock(Time(0), 1_893_456_000_000);
    let doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<cr:ruleset xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\" \
xmlns:pr=\"urn:ietf:params:xml:ns:pres-rules\"><cr:rule id=\"for-now\"><cr:conditions>\
<cr:identity><cr:one id=\"sip:w1@example.com\"/></cr:identity>\
<cr:validity><cr:from>2029-12-31T00:00:00Z</cr:from><cr:until>2030-01-01T00:01:00Z</cr:until></cr:validity>\
</cr:conditions><cr:actions><pr:sub-handling>allow</pr:sub-handling></cr:actions></cr:rule></cr:ruleset>";
    let mut change = rules();
    change.content = Some(Bytes::from(doc));
    e.submit_documents([change]);
    let mut out = Vec::new();
    e.tick(Time(1000), [subscribe(1)], &mut out);
    let first: Vec<Outbound> = notifies(&out).into_iter().cloned().collect();
    assert_eq!(first.len(), 1);
    let head = String::from_utf8_lossy(&first[0].head).into_owned();
    assert!(head.contains("Subscription-State: active"), "{head}");
    out.clear();
    e.tick(Time(1001), [ok_to(&first[0], src(10_001))], &mut out);
    // two minutes later (past `until`) the watcher refreshes
    let tag = head
        .lines()
        .find(|l| l.starts_with("From:"))
        .and_then(|l| l.split("tag=").nth(1))
        .unwrap()
        .trim()
        .to_owned();
    let refresh = inbound(
        10_001,
        format!(
            "SUBSCRIBE sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:10001;branch=z9hG4bKr1;rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:w1@example.com>;tag=t1\r\nTo: <sip:alice@example.com>;tag={tag}\r\nCall-ID: c1\r\n\
CSeq: 2 SUBSCRIBE\r\nContact: <sip:w1@127.0.0.1:10001>\r\nEvent: presence\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
        ),
    );
    out.clear();
    e.tick(Time(121_000), [refresh], &mut out);
    let n = notifies(&out);
    assert_eq!(n.len(), 1);
    let head = std::str::from_utf8(&n[0].head).unwrap();
    // active cannot go back to pending (RFC 6665): asked to subscribe again, it will wait
    assert!(
        head.contains("Subscription-State: terminated;reason=deactivated"),
        "{head}"
    );
    assert!(n[0].body.is_empty(), "nothing shown any more");
}
