//! Durable publications without a disk: the changes one engine records are applied to a map
//! (what the journal keeps), and a second engine, with other seeds, is rebuilt from that map.

use std::collections::BTreeMap;

use presenced_systems::answers;
use presenced_systems::durable::{self, Change};
use presenced_systems::presence::components::Presentity;
use presenced_systems::presence::{self, PresenceConfig};
use presenced_systems::subscription::Content;
use presenced_systems::{Engine, EngineConfig, Inbound, Outbound, Time};

/// Unix time of engine time 0 in these tests.
const EPOCH_MS: i64 = 1_800_000_000_000;

fn publish(n: usize, aor: &str, tuple: &str, expires: u32, if_match: Option<&str>) -> Inbound {
    let body = if tuple.is_empty() {
        String::new()
    } else {
        format!(
            "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"{aor}\"><tuple id=\"{tuple}\">\
<status><basic>open</basic></status></tuple></presence>"
        )
    };
    let if_match = if_match
        .map(|t| format!("SIP-If-Match: {t}\r\n"))
        .unwrap_or_default();
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/pidf+xml\r\n"
    };
    let text = format!(
        "PUBLISH {aor} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9000;branch=z9hG4bKd{n};rport\r\n\
Max-Forwards: 70\r\nFrom: <{aor}>;tag={n}\r\nTo: <{aor}>\r\nCall-ID: d{n}\r\n\
CSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: {expires}\r\n{if_match}{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    answers::inbound(answers::udp_source(9000), text)
}

fn engine(seed: u64) -> Engine {
    let mut e = Engine::new(EngineConfig {
        seed,
        hash_seed: seed as u128 * 7,
        ..EngineConfig::default()
    });
    e.add_feature(presence::feature(PresenceConfig::default()));
    e.add_feature(durable::feature());
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
}

/// An engine and the wall-clock second its time 0 stands for.
struct Node {
    e: Engine,
    start: u64,
}

/// One request in a tick at wall-clock second `t`: status and SIP-ETag of its response.
fn call(n: &mut Node, store: &mut Store, t: u64, req: Inbound) -> (u16, Option<String>) {
    let mut out: Vec<Outbound> = Vec::new();
    let now = Time((t - n.start) * 1000);
    n.e.set_wall_clock(now, EPOCH_MS + (t * 1000) as i64);
    n.e.tick(now, [req], &mut out);
    store.apply(&mut n.e);
    let head = String::from_utf8_lossy(&out[0].head).into_owned();
    let status = head[8..11].parse().unwrap();
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("SIP-ETag: "))
        .map(str::to_owned);
    (status, etag)
}

/// A fresh engine started at second `t`.
fn node(seed: u64, t: u64) -> Node {
    Node {
        e: engine(seed),
        start: t,
    }
}

/// A fresh engine rebuilt from `store` at second `t` (its engine time starts at 0 again).
fn restart(store: &mut Store, seed: u64, t: u64) -> (Node, durable::Restored) {
    let mut n = node(seed, t);
    n.e.set_wall_clock(Time(0), EPOCH_MS + (t * 1000) as i64);
    let done = n.e.restore(Time(0), &store.records());
    let mut out = Vec::new();
    n.e.tick(Time(0), [], &mut out);
    store.apply(&mut n.e);
    (n, done)
}

fn views(n: &mut Node) -> Vec<String> {
    let world = n.e.world_mut();
    let mut q = world.query::<(&Presentity, &Content)>();
    let mut v: Vec<String> = q
        .iter(world)
        .map(|(_, c)| String::from_utf8_lossy(&c.body).into_owned())
        .collect();
    v.sort();
    v
}

const ALICE: &str = "sip:alice@example.com";
const BOB: &str = "sip:bob@example.com";

#[test]
fn publications_come_back_with_their_tags_documents_and_remaining_time() {
    let mut store = Store::default();
    let mut a = node(1, 0);
    let (s, tag_a) = call(
        &mut a,
        &mut store,
        1,
        publish(1, ALICE, "phone", 3600, None),
    );
    assert_eq!(s, 200);
    let (_, tag_b) = call(
        &mut a,
        &mut store,
        2,
        publish(2, ALICE, "laptop", 3600, None),
    );
    let (_, short) = call(&mut a, &mut store, 3, publish(3, BOB, "desk", 60, None));
    // a refresh gives alice's phone a new tag: only that one is kept
    let (s, tag_a2) = call(
        &mut a,
        &mut store,
        4,
        publish(4, ALICE, "", 3600, tag_a.as_deref()),
    );
    assert_eq!(s, 200);
    assert_ne!(tag_a, tag_a2);
    let before = views(&mut a);
    drop(a);

    // 30 s later: everything is back, composed as before
    let (mut b, done) = restart(&mut store, 2, 34);
    assert_eq!(done.publications, 3, "{done:?}");
    assert_eq!(views(&mut b), before);
    // the tags a peer holds still name their publications; the replaced one does not
    let (s, tag_a3) = call(
        &mut b,
        &mut store,
        35,
        publish(5, ALICE, "", 3600, tag_a2.as_deref()),
    );
    assert_eq!(s, 200, "the refreshed tag refreshes after the restart");
    assert_eq!(
        call(
            &mut b,
            &mut store,
            35,
            publish(6, ALICE, "", 3600, tag_a.as_deref())
        )
        .0,
        412
    );
    // a modify after the restart replaces the document, and bob's short one still runs out
    let (s, _) = call(
        &mut b,
        &mut store,
        36,
        publish(7, ALICE, "tablet", 3600, tag_b.as_deref()),
    );
    assert_eq!(s, 200);
    let v = views(&mut b).join("\n");
    assert!(
        v.contains("tablet") && !v.contains("laptop") && v.contains("phone"),
        "{v}"
    );
    assert_eq!(
        call(
            &mut b,
            &mut store,
            37,
            publish(8, BOB, "", 60, short.as_deref())
        )
        .0,
        200
    );

    // restarting twice: a tag of the first process and one of the second both still work
    let (mut c, done) = restart(&mut store, 3, 40);
    assert_eq!(done.publications, 3);
    assert_eq!(
        call(
            &mut c,
            &mut store,
            41,
            publish(9, ALICE, "", 3600, tag_a3.as_deref())
        )
        .0,
        200
    );
    // a removal deletes the records: the next start has only what is left
    let (_, bob_tag) = call(&mut c, &mut store, 42, publish(10, BOB, "desk2", 60, None));
    assert_eq!(
        call(
            &mut c,
            &mut store,
            43,
            publish(11, BOB, "", 0, bob_tag.as_deref())
        )
        .0,
        200
    );
    drop(c);
    let (mut d, done) = restart(&mut store, 4, 44);
    let v = views(&mut d).join("\n");
    assert!(!v.contains("desk2"), "{v}");
    assert!(v.contains("tablet"), "{v}");
    assert_eq!(done.expired, 0);
}

#[test]
fn what_expired_while_the_server_was_down_is_dropped_and_deleted() {
    let mut store = Store::default();
    let mut a = node(1, 0);
    let (_, tag) = call(&mut a, &mut store, 1, publish(1, BOB, "desk", 60, None));
    call(
        &mut a,
        &mut store,
        1,
        publish(2, ALICE, "phone", 3600, None),
    );
    drop(a);
    let (mut b, done) = restart(&mut store, 2, 120);
    assert_eq!((done.publications, done.expired), (1, 1), "{done:?}");
    assert!(!views(&mut b).join("").contains("desk"));
    assert_eq!(
        call(
            &mut b,
            &mut store,
            121,
            publish(3, BOB, "", 60, tag.as_deref())
        )
        .0,
        412
    );
    assert_eq!(store.0.len(), 2, "only alice's two records are left");
}

#[test]
fn an_engine_without_durability_records_nothing() {
    let mut e = Node {
        e: Engine::new(EngineConfig::default()),
        start: 0,
    };
    e.e.add_feature(presence::feature(PresenceConfig::default()));
    let mut store = Store::default();
    call(
        &mut e,
        &mut store,
        1,
        publish(1, ALICE, "phone", 3600, None),
    );
    assert!(store.0.is_empty());
}
