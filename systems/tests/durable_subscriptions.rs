//! Durable subscriptions without a disk: the changes one engine records are applied to a map
//! (what the journal keeps), and a second engine, with other seeds, is rebuilt from that map.
//! The subscriber only sees its dialog go on: same Call-ID and tags, CSeq moving up.

use std::collections::BTreeMap;

use bytes::Bytes;
use presenced_systems::answers::{self, ok_to};
use presenced_systems::durable::{self, Change, DurableConfig, Restored, kind};
use presenced_systems::presence::{self, PresenceConfig};
use presenced_systems::privacy::{self, PrivacyConfig, SubHandling};
use presenced_systems::subscription::Subscription;
use presenced_systems::winfo::{self, WinfoConfig};
use presenced_systems::xdm::{self, DocumentChange, XdmConfig};
use presenced_systems::{Engine, EngineConfig, Inbound, Outbound, Time};

/// Unix time of wall-clock millisecond 0 in these tests.
const EPOCH_MS: i64 = 1_800_000_000_000;
const ALICE: &str = "sip:alice@example.com";

/// What an engine serves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Serves {
    Presence,
    /// Presence with pres-rules (confirm when no rule says).
    Privacy,
    /// Presence, XDM with xcap-diff, privacy (allow), watcher information and lists.
    Everything,
}

fn engine(seed: u64, serves: Serves, durability: Option<DurableConfig>) -> Engine {
    let mut e = Engine::new(EngineConfig {
        seed,
        hash_seed: seed as u128 * 7,
        ..EngineConfig::default()
    });
    e.add_feature(presence::feature(PresenceConfig::default()));
    if serves != Serves::Presence {
        e.add_feature(xdm::feature(XdmConfig::default()));
        let default_handling = if serves == Serves::Privacy {
            SubHandling::Confirm
        } else {
            SubHandling::Allow
        };
        e.add_feature(privacy::feature(PrivacyConfig { default_handling }));
    }
    if serves == Serves::Everything {
        e.add_feature(presenced_systems::rls::feature(Default::default()));
        e.add_feature(winfo::feature(WinfoConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 600,
            max_per_watcher: 100,
        }));
    }
    if let Some(config) = durability {
        e.add_feature(durable::feature_with(config));
    }
    e
}

/// What a journal keeps: the latest value of each live key.
#[derive(Default)]
struct Store(BTreeMap<u64, Vec<u8>>);

impl Store {
    fn apply(&mut self, e: &mut Engine) {
        let mut changes = Vec::new();
        e.take_changes(&mut changes);
        for c in changes {
            match c {
                Change::Put(k, v) => {
                    self.0.insert(k, v);
                }
                Change::Delete(k) => {
                    self.0.remove(&k);
                }
            }
        }
    }

    fn records(&self) -> Vec<(u64, Vec<u8>)> {
        self.0.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    fn subscriptions(&self) -> usize {
        self.0
            .keys()
            .filter(|&&k| durable::split_key(k).0 == kind::SUBSCRIPTION)
            .count()
    }
}

/// An engine and the wall-clock millisecond its time 0 stands for.
struct Node {
    e: Engine,
    start: u64,
}

impl Node {
    fn new(seed: u64, serves: Serves, start: u64) -> Node {
        Node {
            e: engine(seed, serves, Some(DurableConfig::default())),
            start,
        }
    }

    fn now(&self, t: u64) -> Time {
        Time(t - self.start)
    }

    /// One tick at wall-clock millisecond `t`: what it sent.
    fn tick(&mut self, store: &mut Store, t: u64, inbound: Vec<Inbound>) -> Vec<Outbound> {
        let now = self.now(t);
        self.e.set_wall_clock(now, EPOCH_MS + t as i64);
        let mut out = Vec::new();
        self.e.tick(now, inbound, &mut out);
        store.apply(&mut self.e);
        out
    }

    /// Answer every NOTIFY of `out` with a 200, at `t`.
    fn answer(&mut self, store: &mut Store, t: u64, out: &[Outbound]) -> Vec<Outbound> {
        let oks = notifies(out)
            .into_iter()
            .map(|n| ok_to(n, answers::udp_source(n.dest.addr.port())))
            .collect();
        self.tick(store, t, oks)
    }
}

/// A fresh engine rebuilt from `store` at wall-clock millisecond `t`, after `documents` were
/// handed in (as the shell does): what restore did and what its first tick sent.
fn restart(
    store: &mut Store,
    seed: u64,
    serves: Serves,
    config: DurableConfig,
    t: u64,
    documents: Vec<DocumentChange>,
) -> (Node, Restored, Vec<Outbound>) {
    let mut n = Node {
        e: engine(seed, serves, Some(config)),
        start: t,
    };
    n.e.submit_documents(documents);
    n.e.set_wall_clock(Time(0), EPOCH_MS + t as i64);
    let done = n.e.restore(Time(0), &store.records());
    let out = n.tick(store, t, Vec::new());
    (n, done, out)
}

/// A subscriber's dialog: who, from which port, to what.
struct Dialog {
    port: u16,
    from: String,
    target: &'static str,
    event: &'static str,
    call_id: String,
    /// Extra header fields and body (xcap-diff's selection).
    extra: String,
}

impl Dialog {
    fn presence(port: u16, user: &str) -> Dialog {
        Dialog {
            port,
            from: format!("sip:{user}@example.com"),
            target: ALICE,
            event: "presence",
            call_id: format!("c{port}"),
            extra: "Content-Length: 0\r\n\r\n".into(),
        }
    }

    /// A SUBSCRIBE in this dialog (`to_tag`: ours, for a request in the dialog).
    fn subscribe(&self, to_tag: Option<&str>, cseq: u32, expires: u32) -> Inbound {
        let Dialog {
            port,
            from,
            target,
            event,
            call_id,
            extra,
        } = self;
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let text = format!(
            "SUBSCRIBE {target} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{port}x{cseq};rport\r\n\
Max-Forwards: 70\r\nFrom: <{from}>;tag=f{port}\r\nTo: <{target}>{to_tag}\r\nCall-ID: {call_id}\r\n\
CSeq: {cseq} SUBSCRIBE\r\nContact: <sip:w@127.0.0.1:{port}>\r\nEvent: {event}\r\nExpires: {expires}\r\n{extra}"
        );
        answers::inbound(answers::udp_source(*port), text)
    }
}

fn publish(n: usize, tuple: &str) -> Inbound {
    let body = format!(
        "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"{ALICE}\"><tuple id=\"{tuple}\">\
<status><basic>open</basic></status></tuple></presence>"
    );
    let text = format!(
        "PUBLISH {ALICE} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9000;branch=z9hG4bKp{n};rport\r\n\
Max-Forwards: 70\r\nFrom: <{ALICE}>;tag=p{n}\r\nTo: <{ALICE}>\r\nCall-ID: p{n}\r\n\
CSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: 3600\r\nContent-Type: application/pidf+xml\r\n\
Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    answers::inbound(answers::udp_source(9000), text)
}

/// Alice's pres-rules letting `who` see everything.
fn allow(who: &str) -> DocumentChange {
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<cr:ruleset xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\" \
xmlns:pr=\"urn:ietf:params:xml:ns:pres-rules\"><cr:rule id=\"a\"><cr:conditions><cr:identity>\
<cr:one id=\"{who}\"/></cr:identity></cr:conditions><cr:actions><pr:sub-handling>allow</pr:sub-handling>\
</cr:actions><cr:transformations><pr:provide-services><pr:all-services/></pr:provide-services>\
<pr:provide-persons><pr:all-persons/></pr:provide-persons><pr:provide-devices><pr:all-devices/>\
</pr:provide-devices><pr:provide-all-attributes/></cr:transformations></cr:rule></cr:ruleset>"
    );
    DocumentChange {
        auid: "pres-rules".into(),
        xui: Some(ALICE.into()),
        doc_path: "index".into(),
        selector: format!("pres-rules/users/{ALICE}/index"),
        previous_etag: None,
        new_etag: Some("r1".into()),
        content: Some(Bytes::from(doc)),
    }
}

fn notifies(out: &[Outbound]) -> Vec<&Outbound> {
    out.iter()
        .filter(|m| m.head.starts_with(b"NOTIFY "))
        .collect()
}

/// The one NOTIFY of `out`, as text.
fn the_notify(out: &[Outbound]) -> String {
    let n = notifies(out);
    assert_eq!(n.len(), 1, "{out:#?}");
    String::from_utf8_lossy(&n[0].head).into_owned() + &String::from_utf8_lossy(&n[0].body)
}

/// The status of the one response of `out`.
fn status(out: &[Outbound]) -> u16 {
    let r: Vec<&Outbound> = out
        .iter()
        .filter(|m| m.head.starts_with(b"SIP/2.0 "))
        .collect();
    assert_eq!(r.len(), 1, "{out:#?}");
    std::str::from_utf8(&r[0].head[8..11])
        .unwrap()
        .parse()
        .unwrap()
}

fn header<'a>(m: &'a str, name: &str) -> &'a str {
    m.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no {name} in {m}"))
}

fn tag_of(value: &str) -> &str {
    value.split(";tag=").nth(1).expect("a tag")
}

fn cseq(m: &str) -> u32 {
    header(m, "CSeq")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Subscribe `d` at `t` and answer its first NOTIFY: our tag and that NOTIFY.
fn subscribed(
    n: &mut Node,
    store: &mut Store,
    t: u64,
    d: &Dialog,
    expires: u32,
) -> (String, String) {
    let out = n.tick(store, t, vec![d.subscribe(None, 1, expires)]);
    assert_eq!(status(&out), 200, "{out:#?}");
    let notify = the_notify(&out);
    n.answer(store, t, &out);
    (tag_of(header(&notify, "From")).to_owned(), notify)
}

#[test]
fn a_subscription_goes_on_in_its_dialog_after_a_restart() {
    let mut store = Store::default();
    let mut a = Node::new(1, Serves::Presence, 0);
    a.tick(&mut store, 500, vec![publish(1, "phone")]);
    let bob = Dialog::presence(10_001, "bob");
    let (tag, first) = subscribed(&mut a, &mut store, 1_000, &bob, 600);
    assert_eq!(cseq(&first), 1);
    // a change: the second NOTIFY (no record is written for it)
    let out = a.tick(&mut store, 2_000, vec![publish(2, "laptop")]);
    let second = the_notify(&out);
    assert_eq!(cseq(&second), 2);
    let records = store.records();
    a.answer(&mut store, 2_000, &out);
    assert_eq!(store.records(), records, "a NOTIFY writes nothing");
    assert_eq!(store.subscriptions(), 1);
    drop(a);

    // 30 s later: the dialog goes on with its remaining time
    let (mut b, done, out) = restart(
        &mut store,
        2,
        Serves::Presence,
        DurableConfig::default(),
        31_000,
        vec![],
    );
    assert_eq!((done.subscriptions, done.subscriptions_expired), (1, 0));
    let n = the_notify(&out);
    assert_eq!(header(&n, "Call-ID"), "c10001");
    assert_eq!(tag_of(header(&n, "From")), tag, "our tag, as before");
    assert_eq!(tag_of(header(&n, "To")), "f10001", "theirs");
    assert!(n.starts_with("NOTIFY sip:w@127.0.0.1:10001 SIP/2.0"), "{n}");
    assert!(cseq(&n) > 2, "{n}");
    assert_eq!(header(&n, "Subscription-State"), "active;expires=570");
    assert!(n.contains("laptop") && n.contains("phone"), "{n}");
    b.answer(&mut store, 31_000, &out);

    // a refresh with the old tag and the next CSeq
    let out = b.tick(&mut store, 32_000, vec![bob.subscribe(Some(&tag), 2, 600)]);
    assert_eq!(status(&out), 200);
    let refreshed = the_notify(&out);
    assert_eq!(cseq(&refreshed), cseq(&n) + 1, "the next CSeq");
    assert_eq!(
        header(&refreshed, "Subscription-State"),
        "active;expires=600"
    );
    b.answer(&mut store, 32_000, &out);
    // the tag is ours only with its Call-ID
    let stranger = Dialog {
        call_id: "other".into(),
        ..Dialog::presence(10_001, "bob")
    };
    let out = b.tick(
        &mut store,
        32_500,
        vec![stranger.subscribe(Some(&tag), 3, 600)],
    );
    assert_eq!(status(&out), 481);

    // restarted again: the tag of the first process still names it
    drop(b);
    let (mut c, done, out) = restart(
        &mut store,
        3,
        Serves::Presence,
        DurableConfig::default(),
        40_000,
        vec![],
    );
    assert_eq!(done.subscriptions, 1);
    let again = the_notify(&out);
    assert_eq!(tag_of(header(&again, "From")), tag);
    assert!(cseq(&again) > cseq(&refreshed));
    assert_eq!(header(&again, "Subscription-State"), "active;expires=592");
    c.answer(&mut store, 40_000, &out);

    // the unsubscribe ends it, and its record goes
    let out = c.tick(&mut store, 41_000, vec![bob.subscribe(Some(&tag), 3, 0)]);
    assert_eq!(status(&out), 200);
    let last = the_notify(&out);
    assert_eq!(
        header(&last, "Subscription-State"),
        "terminated;reason=timeout"
    );
    c.answer(&mut store, 41_000, &out);
    assert_eq!(store.subscriptions(), 0);
    assert_eq!(c.e.count::<Subscription>(), 0);
    let out = c.tick(&mut store, 42_000, vec![bob.subscribe(Some(&tag), 4, 600)]);
    assert_eq!(status(&out), 481);
}

#[test]
fn a_pending_subscription_stays_pending_until_its_presentity_decides() {
    let mut store = Store::default();
    let mut a = Node::new(1, Serves::Privacy, 0);
    let bob = Dialog::presence(10_001, "bob");
    let carol = Dialog::presence(10_002, "carol");
    let (bob_tag, n) = subscribed(&mut a, &mut store, 1_000, &bob, 600);
    assert!(header(&n, "Subscription-State").starts_with("pending"));
    let (_, n) = subscribed(&mut a, &mut store, 1_000, &carol, 600);
    assert!(header(&n, "Subscription-State").starts_with("pending"));
    drop(a);

    // alice let bob in while the server was down: the documents come back at start
    let (mut b, done, out) = restart(
        &mut store,
        2,
        Serves::Privacy,
        DurableConfig::default(),
        11_000,
        vec![allow("sip:bob@example.com")],
    );
    assert_eq!(done.subscriptions, 2);
    let sent = notifies(&out);
    assert_eq!(sent.len(), 2, "{out:#?}");
    for m in sent {
        let head = String::from_utf8_lossy(&m.head);
        let state = header(&head, "Subscription-State");
        if m.dest.addr.port() == 10_001 {
            assert_eq!(state, "active;expires=590");
            assert_eq!(tag_of(header(&head, "From")), bob_tag);
        } else {
            assert_eq!(state, "pending;expires=590", "carol still waits");
            assert!(m.body.is_empty());
        }
    }
    b.answer(&mut store, 11_000, &out);
    drop(b);

    // the change of state was recorded: bob is active at the next start too
    let (_, _, out) = restart(
        &mut store,
        3,
        Serves::Privacy,
        DurableConfig::default(),
        12_000,
        vec![allow("sip:bob@example.com")],
    );
    for m in notifies(&out) {
        let head = String::from_utf8_lossy(&m.head);
        let active = header(&head, "Subscription-State").starts_with("active");
        assert_eq!(active, m.dest.addr.port() == 10_001, "{head}");
    }
}

#[test]
fn a_subscription_that_expired_while_down_is_told_and_deleted() {
    let mut store = Store::default();
    let mut a = Node::new(1, Serves::Presence, 0);
    let bob = Dialog::presence(10_001, "bob");
    let carol = Dialog::presence(10_002, "carol");
    let (tag, first) = subscribed(&mut a, &mut store, 1_000, &bob, 60);
    subscribed(&mut a, &mut store, 1_000, &carol, 3600);
    assert_eq!(store.subscriptions(), 2);
    drop(a);

    let (mut b, done, out) = restart(
        &mut store,
        2,
        Serves::Presence,
        DurableConfig::default(),
        120_000,
        vec![],
    );
    assert_eq!((done.subscriptions, done.subscriptions_expired), (1, 1));
    assert_eq!(store.subscriptions(), 1, "its record is deleted at once");
    let ended: Vec<String> = notifies(&out)
        .into_iter()
        .filter(|m| m.dest.addr.port() == 10_001)
        .map(|m| String::from_utf8_lossy(&m.head).into_owned())
        .collect();
    assert_eq!(ended.len(), 1, "{out:#?}");
    let n = &ended[0];
    assert_eq!(header(n, "Subscription-State"), "terminated;reason=timeout");
    assert_eq!(tag_of(header(n, "From")), tag);
    assert_eq!(header(n, "Call-ID"), "c10001");
    assert!(cseq(n) > cseq(&first));
    b.answer(&mut store, 120_000, &out);
    let out = b.tick(&mut store, 121_000, vec![bob.subscribe(Some(&tag), 2, 60)]);
    assert_eq!(status(&out), 481);
    assert_eq!(b.e.count::<Subscription>(), 1);
}

#[test]
fn restored_subscriptions_are_notified_a_batch_at_a_time() {
    let mut store = Store::default();
    let mut a = Node::new(1, Serves::Presence, 0);
    let watchers: Vec<Dialog> = (1..=10)
        .map(|i| Dialog::presence(10_000 + i, &format!("w{i}")))
        .collect();
    let tags: Vec<String> = watchers
        .iter()
        .map(|d| subscribed(&mut a, &mut store, 1_000, d, 600).0)
        .collect();
    drop(a);

    let config = DurableConfig {
        restore_notify_batch: 3,
        restore_notify_every_ms: 10,
    };
    let mut b = Node {
        e: engine(2, Serves::Presence, Some(config)),
        start: 5_000,
    };
    b.e.set_wall_clock(Time(0), EPOCH_MS + 5_000);
    assert_eq!(b.e.restore(Time(0), &store.records()).subscriptions, 10);
    // the last watcher refreshes in the first tick: it is answered and notified at once
    let out = b.tick(
        &mut store,
        5_000,
        vec![watchers[9].subscribe(Some(&tags[9]), 2, 600)],
    );
    let mut seen: Vec<u16> = notifies(&out).iter().map(|m| m.dest.addr.port()).collect();
    assert_eq!(seen.len(), 4, "a batch and the refreshed one");
    assert!(seen.contains(&10_010));
    b.answer(&mut store, 5_000, &out);
    assert_eq!(b.e.next_deadline(), Some(Time(10)));
    for (t, expected) in [(5_010, 3), (5_020, 3), (5_030, 0)] {
        let out = b.tick(&mut store, t, vec![]);
        let ports: Vec<u16> = notifies(&out).iter().map(|m| m.dest.addr.port()).collect();
        assert_eq!(ports.len(), expected, "at {t}");
        seen.extend(ports);
        b.answer(&mut store, t, &out);
    }
    seen.sort();
    let all: Vec<u16> = (10_001..=10_010).collect();
    assert_eq!(seen, all, "each one once");
}

#[test]
fn watcher_information_and_xcap_diff_subscriptions_survive_too() {
    let mut store = Store::default();
    let mut a = Node::new(1, Serves::Everything, 0);
    let doc = DocumentChange {
        auid: "resource-lists".into(),
        xui: Some(ALICE.into()),
        doc_path: "index".into(),
        selector: format!("resource-lists/users/{ALICE}/index"),
        previous_etag: None,
        new_etag: Some("e1".into()),
        content: Some(Bytes::from_static(
            b"<?xml version=\"1.0\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"/>",
        )),
    };
    a.e.submit_documents([doc.clone()]);
    let winfo = Dialog {
        event: "presence.winfo",
        ..Dialog::presence(10_001, "alice")
    };
    let selection = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\
<list><entry uri=\"resource-lists/users/{ALICE}/\"/></list></resource-lists>"
    );
    let diff = Dialog {
        event: "xcap-diff",
        extra: format!(
            "Content-Type: application/resource-lists+xml\r\nContent-Length: {}\r\n\r\n{selection}",
            selection.len()
        ),
        ..Dialog::presence(10_002, "alice")
    };
    let (_, w1) = subscribed(&mut a, &mut store, 1_000, &winfo, 600);
    let version = |m: &str| -> u32 {
        let root = m
            .split("<watcherinfo")
            .nth(1)
            .expect("a watcherinfo document");
        let v = root.split("version=\"").nth(1).expect("a version");
        v[..v.find('"').unwrap()].parse().unwrap()
    };
    assert!(w1.contains("state=\"full\""), "{w1}");
    let (_, d1) = subscribed(&mut a, &mut store, 1_000, &diff, 600);
    assert!(d1.contains("new-etag=\"e1\""), "{d1}");
    // bob watches alice: her watcher information says so (a partial document)
    let out = a.tick(
        &mut store,
        2_000,
        vec![Dialog::presence(10_003, "bob").subscribe(None, 1, 600)],
    );
    let w2 = notifies(&out)
        .into_iter()
        .find(|m| m.dest.addr.port() == 10_001)
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .expect("a winfo NOTIFY");
    assert!(w2.contains("sip:bob@example.com"), "{w2}");
    a.answer(&mut store, 2_000, &out);
    assert_eq!(store.subscriptions(), 3);
    drop(a);

    let (_, done, out) = restart(
        &mut store,
        2,
        Serves::Everything,
        DurableConfig::default(),
        10_000,
        vec![doc],
    );
    assert_eq!(done.subscriptions, 3, "{done:?}");
    let body = |port: u16| {
        notifies(&out)
            .into_iter()
            .find(|m| m.dest.addr.port() == port)
            .map(|m| String::from_utf8_lossy(&m.body).into_owned())
            .unwrap_or_else(|| panic!("no NOTIFY to {port}: {out:#?}"))
    };
    let w = body(10_001);
    assert!(
        w.contains("state=\"full\"") && w.contains("sip:bob@example.com"),
        "{w}"
    );
    assert!(version(&w) > version(&w2), "{w}");
    let d = body(10_002);
    assert!(d.contains("new-etag=\"e1\""), "full state again: {d}");
    assert!(body(10_003).contains("<presence"), "bob's presence NOTIFY");
}

#[test]
fn a_list_subscription_is_not_kept() {
    let mut store = Store::default();
    let mut a = Node::new(1, Serves::Everything, 0);
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\" \
xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\"><service uri=\"sip:friends@example.com\"><list>\
<rl:entry uri=\"{ALICE}\"/></list></service></rls-services>"
    );
    a.e.submit_documents([DocumentChange {
        auid: "rls-services".into(),
        xui: Some("sip:bob@example.com".into()),
        doc_path: "index".into(),
        selector: "rls-services/users/sip:bob@example.com/index".into(),
        previous_etag: None,
        new_etag: Some("e1".into()),
        content: Some(Bytes::from(doc)),
    }]);
    let list = Dialog {
        target: "sip:friends@example.com",
        extra: "Supported: eventlist\r\nAccept: multipart/related, application/rlmi+xml, \
application/pidf+xml\r\nContent-Length: 0\r\n\r\n"
            .into(),
        ..Dialog::presence(10_001, "bob")
    };
    let out = a.tick(&mut store, 1_000, vec![list.subscribe(None, 1, 600)]);
    assert_eq!(status(&out), 200);
    assert!(header(&the_notify(&out), "Require").contains("eventlist"));
    a.answer(&mut store, 1_000, &out);
    assert_eq!(store.subscriptions(), 0);
    subscribed(
        &mut a,
        &mut store,
        1_000,
        &Dialog::presence(10_002, "carol"),
        600,
    );
    assert_eq!(store.subscriptions(), 1, "a plain one is");
    let (_, done, _) = restart(
        &mut store,
        2,
        Serves::Everything,
        DurableConfig::default(),
        2_000,
        vec![],
    );
    assert_eq!((done.subscriptions, done.unreadable), (1, 0));
}

#[test]
fn without_durability_nothing_is_recorded_or_restored() {
    let mut store = Store::default();
    let mut a = Node::new(1, Serves::Presence, 0);
    subscribed(
        &mut a,
        &mut store,
        1_000,
        &Dialog::presence(10_001, "bob"),
        600,
    );
    assert_eq!(store.subscriptions(), 1);

    // an engine without durability ignores the records
    let mut plain = Node {
        e: engine(2, Serves::Presence, None),
        start: 2_000,
    };
    plain.e.set_wall_clock(Time(0), EPOCH_MS + 2_000);
    assert_eq!(
        plain.e.restore(Time(0), &store.records()),
        Restored::default()
    );
    let out = plain.tick(&mut Store::default(), 2_000, vec![]);
    assert!(notifies(&out).is_empty());
    assert_eq!(plain.e.count::<Subscription>(), 0);

    // and records nothing
    let mut nothing = Store::default();
    let (_, n) = subscribed(
        &mut plain,
        &mut nothing,
        3_000,
        &Dialog::presence(10_002, "carol"),
        600,
    );
    assert!(header(&n, "Subscription-State").starts_with("active"));
    assert!(nothing.0.is_empty());
}

#[test]
fn a_restored_watcher_sees_only_what_its_rules_let_it() {
    // bob may see alice's services but not her notes
    let mut rules = allow("sip:bob@example.com");
    let doc = String::from_utf8(rules.content.unwrap().to_vec()).unwrap();
    let start = doc.find("<pr:provide-persons>").unwrap();
    let end = doc.find("</cr:transformations>").unwrap();
    rules.content = Some(Bytes::from(format!("{}{}", &doc[..start], &doc[end..])));
    let noted = |n: usize| {
        let body = format!(
            "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"{ALICE}\"><tuple id=\"t\">\
<status><basic>open</basic></status><note>secret</note></tuple></presence>"
        );
        let text = format!(
            "PUBLISH {ALICE} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9000;branch=z9hG4bKn{n};rport\r\n\
Max-Forwards: 70\r\nFrom: <{ALICE}>;tag=n{n}\r\nTo: <{ALICE}>\r\nCall-ID: n{n}\r\n\
CSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: 3600\r\nContent-Type: application/pidf+xml\r\n\
Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        answers::inbound(answers::udp_source(9000), text)
    };
    let mut store = Store::default();
    let mut a = Node::new(1, Serves::Privacy, 0);
    a.e.submit_documents([rules.clone()]);
    a.tick(&mut store, 500, vec![noted(1)]);
    let (_, n) = subscribed(
        &mut a,
        &mut store,
        1_000,
        &Dialog::presence(10_001, "bob"),
        600,
    );
    assert!(
        header(&n, "Subscription-State").starts_with("active"),
        "{n}"
    );
    assert!(n.contains("<tuple") && !n.contains("secret"), "{n}");
    drop(a);

    let (_, done, out) = restart(
        &mut store,
        2,
        Serves::Privacy,
        DurableConfig::default(),
        5_000,
        vec![rules],
    );
    assert_eq!(done.subscriptions, 1);
    let n = the_notify(&out);
    assert!(
        header(&n, "Subscription-State").starts_with("active"),
        "{n}"
    );
    assert!(n.contains("<tuple") && !n.contains("secret"), "{n}");
}
