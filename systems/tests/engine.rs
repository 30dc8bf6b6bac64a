//! The engine without a network: messages and time in, messages out. These check properties a
//! wire test cannot see directly (work done once per tick, state after a tick).

use bytes::Bytes;
use presenced_systems::answers;
use presenced_systems::presence::components::Presentity;
use presenced_systems::presence::compose::Compositions;
use presenced_systems::presence::{self, PresenceConfig};
use presenced_systems::subscription::Content;
use presenced_systems::{Engine, EngineConfig, Inbound, Outbound, Source, Time};

fn src() -> Source {
    answers::udp_source(9000)
}

fn publish(n: usize, tuple: &str) -> Inbound {
    let body = format!(
        "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:alice@example.com\"><tuple id=\"{tuple}\">\
<status><basic>open</basic></status></tuple></presence>"
    );
    let text = format!(
        "PUBLISH sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9000;branch=z9hG4bK{n};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag={n}\r\nTo: <sip:alice@example.com>\r\nCall-ID: c{n}\r\n\
CSeq: 1 PUBLISH\r\nEvent: presence\r\nContent-Type: application/pidf+xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    answers::inbound(src(), text)
}

fn engine() -> Engine {
    let mut e = Engine::new(EngineConfig::default());
    e.add_feature(presence::feature(PresenceConfig::default()));
    e
}

fn statuses(out: &[Outbound]) -> Vec<u16> {
    out.iter()
        .map(|m| {
            std::str::from_utf8(&m.head[8..11])
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

#[test]
fn composition_runs_once_per_presentity_per_tick() {
    let mut e = engine();
    let mut out = Vec::new();
    e.tick(
        Time(1),
        [publish(1, "a"), publish(2, "b"), publish(3, "c")],
        &mut out,
    );
    assert_eq!(statuses(&out), vec![200, 200, 200]);
    let world = e.world_mut();
    let mut q = world.query::<(&Presentity, &Content)>();
    let (p, v) = q.single(world).unwrap();
    assert_eq!(p.publications.len(), 3);
    // the view was composed once for three publications
    assert_eq!(world.resource::<Compositions>().0, 1);
    let body = std::str::from_utf8(&v.body).unwrap();
    assert!(body.contains("id=\"a\"") && body.contains("id=\"b\"") && body.contains("id=\"c\""));
}

#[test]
fn a_retransmission_is_answered_from_the_transaction_not_processed_again() {
    let mut e = engine();
    let mut out = Vec::new();
    e.tick(Time(1), [publish(1, "a")], &mut out);
    // the same request again in a later tick, and twice within one tick
    e.tick(Time(2), [publish(1, "a")], &mut out);
    e.tick(Time(3), [publish(1, "a"), publish(1, "a")], &mut out);
    assert_eq!(out.len(), 4);
    assert!(
        out.windows(2).all(|w| w[0].head == w[1].head),
        "identical responses"
    );
    assert_eq!(e.stats().retransmissions_absorbed, 3);
    let world = e.world_mut();
    let mut q = world.query::<&Presentity>();
    assert_eq!(
        q.single(world).unwrap().publications.len(),
        1,
        "processed once"
    );
}

fn subscribe(to_tag: &str) -> Inbound {
    let text = format!(
        "SUBSCRIBE sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9000;branch=z9hG4bKs{to_tag};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=b1\r\nTo: <sip:alice@example.com>{to_tag}\r\nCall-ID: s1\r\n\
CSeq: 1 SUBSCRIBE\r\nEvent: presence\r\nContact: <sip:bob@127.0.0.1:9000>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
    );
    answers::inbound(src(), text)
}

/// The responses (not the NOTIFYs) among `out`.
fn responses(out: &[Outbound]) -> Vec<Bytes> {
    out.iter()
        .filter(|m| m.head.starts_with(b"SIP/2.0 "))
        .map(|m| m.head.clone())
        .collect()
}

#[test]
fn a_replayed_response_is_byte_for_byte_the_original() {
    // a completed transaction keeps only what the retransmission cannot give back; what it
    // resends must still be the very response sent first (RFC 3261 §17.2.2)
    for to_tag in ["", ";tag=ours"] {
        let mut e = engine();
        let mut out = Vec::new();
        e.tick(Time(1), [subscribe(to_tag)], &mut out);
        let first = responses(&out);
        assert_eq!(first.len(), 1, "{to_tag:?}");
        out.clear();
        e.tick(Time(2), [subscribe(to_tag)], &mut out);
        assert_eq!(responses(&out), first, "{to_tag:?}");
        assert_eq!(e.stats().retransmissions_absorbed, 1);
    }
}

#[test]
fn timer_j_forgets_the_transaction() {
    let mut e = engine();
    let mut out = Vec::new();
    let j = 64 * 500;
    e.tick(Time(1), [publish(1, "a")], &mut out);
    // within Timer J the same branch is a retransmission
    out.clear();
    e.tick(Time(j - 1), [publish(1, "a")], &mut out);
    assert_eq!(e.stats().retransmissions_absorbed, 1);
    // after at most 5/4 of Timer J it is a new transaction: a second publication appears
    out.clear();
    e.tick(Time(1 + j * 5 / 4 + 1), [publish(1, "a")], &mut out);
    assert_eq!(statuses(&out), vec![200]);
    assert_eq!(e.stats().retransmissions_absorbed, 1);
    let world = e.world_mut();
    let mut q = world.query::<&Presentity>();
    assert_eq!(q.single(world).unwrap().publications.len(), 2);
}

fn options(n: usize) -> Inbound {
    let text = format!(
        "OPTIONS sip:presenced@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9000;branch=z9hG4bKo{n};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=o{n}\r\nTo: <sip:presenced@127.0.0.1>\r\nCall-ID: o{n}\r\n\
CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    answers::inbound(src(), text)
}

#[test]
fn a_busy_generation_past_timer_j_is_freed_over_several_ticks() {
    use presenced_systems::transaction::ServerTransactions;
    let mut e = engine();
    let mut out = Vec::new();
    let j = 64 * 500;
    e.tick(Time(1), (0..10_000).map(options), &mut out);
    assert_eq!(out.len(), 10_000);
    let txs = |e: &mut Engine| {
        let t = e.world_mut().resource::<ServerTransactions>();
        (t.len(), t.retiring())
    };
    assert_eq!(txs(&mut e), (10_000, 0));
    // past 5/4 of Timer J the generation leaves the table; no tick frees more than a slice
    let mut now = 1 + j * 5 / 4 + 1;
    e.tick(Time(now), [], &mut out);
    let (open, retiring) = txs(&mut e);
    assert_eq!(open, retiring, "only the retiring ones are left");
    assert!(
        retiring > 0 && retiring < 10_000,
        "{retiring} still to free"
    );
    let mut ticks = 1;
    while txs(&mut e).1 > 0 {
        now += 1;
        e.tick(Time(now), [], &mut out);
        ticks += 1;
        assert!(ticks < 10, "freed within a few ticks");
    }
    assert_eq!(txs(&mut e), (0, 0));
    // a retransmission now is a new transaction, answered again
    out.clear();
    e.tick(Time(now + 1), [options(7)], &mut out);
    assert_eq!(statuses(&out), vec![200]);
    assert_eq!(e.stats().retransmissions_absorbed, 0);
}

#[test]
fn an_idle_server_ages_its_transactions_out_on_its_own_deadlines() {
    use presenced_systems::transaction::ServerTransactions;
    let mut e = engine();
    let mut out = Vec::new();
    let j = 64 * 500;
    e.tick(Time(1), (0..100).map(options), &mut out);
    // no more traffic: the engine is ticked only when it asks to be
    let mut ticks = 0;
    loop {
        let t = e.world_mut().resource::<ServerTransactions>();
        if t.is_empty() && t.retiring() == 0 {
            break;
        }
        let due = e
            .next_deadline()
            .expect("a deadline while transactions are open");
        assert!(
            due.0 <= 1 + j * 5 / 4 + 2 * j,
            "deadline {due:?} within the table's age"
        );
        e.tick(due, [], &mut out);
        ticks += 1;
        assert!(ticks < 20, "aged out within a few rotations");
    }
    assert_eq!(out.len(), 100, "nothing sent but the 100 answers");
}

#[test]
fn reserved_entity_records_are_sized_up_front_and_handed_out_once() {
    let mut e = engine();
    e.reserve_entities(50_000);
    let records = e.world().entities().len();
    assert!(records >= 50_000, "{records} records");
    // presentities and their publications spawned over the reserved indexes: every entity is
    // distinct and none needed the record array to grow
    let mut out = Vec::new();
    let many = (0..10_000).map(|n| {
        let mut m = publish(n, "t");
        m.bytes = Bytes::from(
            String::from_utf8(m.bytes.to_vec())
                .unwrap()
                .replace("alice@", &format!("{n:05}@")),
        );
        m
    });
    e.tick(Time(1), many, &mut out);
    assert_eq!(statuses(&out).iter().filter(|&&s| s == 200).count(), 10_000);
    let world = e.world_mut();
    let mut all = world.query::<bevy_ecs::entity::Entity>();
    let ids: std::collections::HashSet<_> = all.iter(world).collect();
    assert!(ids.len() >= 20_000, "{} entities", ids.len());
    // handed out from the bottom of the reservation, as a fresh world would: an entity made
    // now (a resource is one) does not land at its top
    let highest = ids.iter().map(|e| e.index().index()).max().unwrap();
    assert!(
        highest < 25_000,
        "highest index in use {highest} of {records}"
    );
    assert_eq!(
        world.entities().len(),
        records,
        "the record array did not grow"
    );
}

/// What an engine with `config` sends for a PUBLISH, a SUBSCRIBE and an OPTIONS: every
/// message's destination, head and body.
fn outputs_of(config: EngineConfig) -> Vec<String> {
    let mut e = Engine::new(config);
    e.add_feature(presence::feature(PresenceConfig::default()));
    let mut out = Vec::new();
    e.tick(Time(1), [publish(1, "a")], &mut out);
    e.tick(Time(2), [subscribe(""), options(1)], &mut out);
    out.iter()
        .map(|m| {
            let head = String::from_utf8_lossy(&m.head);
            format!("{:?}\n{head}{}", m.dest, String::from_utf8_lossy(&m.body))
        })
        .collect()
}

/// The value of header `name` in the message `m` begins with.
fn header<'a>(m: &'a str, name: &str) -> &'a str {
    m.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no {name} in {m}"))
}

#[test]
fn the_same_seeds_give_the_same_bytes_and_another_seed_other_tags() {
    let config = |seed, hash_seed| EngineConfig {
        seed,
        hash_seed,
        ..EngineConfig::default()
    };
    let a = outputs_of(config(0x5eed, 0xfeed));
    // PUBLISH 200, SUBSCRIBE 200, its NOTIFY, OPTIONS 200
    assert_eq!(a.len(), 4, "{a:#?}");
    assert_eq!(a, outputs_of(config(0x5eed, 0xfeed)));
    // the hash keys never show on the wire
    assert_eq!(a, outputs_of(config(0x5eed, 0xbeef)));
    let b = outputs_of(config(0x5eee, 0xfeed));
    let response_to = |out: &[String], method: &str| {
        out.iter()
            .find(|m| m.contains("\nSIP/2.0 200") && header(m, "CSeq").ends_with(method))
            .cloned()
            .unwrap_or_else(|| panic!("no 200 to {method} in {out:#?}"))
    };
    for method in ["PUBLISH", "SUBSCRIBE", "OPTIONS"] {
        let (x, y) = (response_to(&a, method), response_to(&b, method));
        assert_ne!(header(&x, "To"), header(&y, "To"), "{method}");
    }
    let (x, y) = (response_to(&a, "PUBLISH"), response_to(&b, "PUBLISH"));
    assert_ne!(header(&x, "SIP-ETag"), header(&y, "SIP-ETag"));
}
