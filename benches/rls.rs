//! The Resource List Server in the tick: one member's PUBLISH fanned out to 10,000 list
//! subscriptions whose lists (of 50 members) contain it, beside the same PUBLISH fanned out to
//! 10,000 plain presence watchers (the target: a list NOTIFY costs at most twice a plain one);
//! and the full-state NOTIFY of a 100-member list (a refresh). Prints µs and allocations per
//! NOTIFY and the ratio to the plain fan-out of the same run.

mod common;

use common::sip::{answers, msg, publish_pidf, src};

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use presenced_systems::net::Inbound;
use presenced_systems::presence::{self, PresenceConfig};
use presenced_systems::privacy::{self, PrivacyConfig, SubHandling};
use presenced_systems::rls::{self, RlsConfig};
use presenced_systems::xdm::{self, DocumentChange, XdmConfig};
use presenced_systems::{Engine, EngineConfig, Time};

const LISTS: usize = 10_000;
fn members() -> usize {
    std::env::var("RLS_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}

/// An engine serving presence, XDM, privacy (everyone allowed) and lists.
fn engine() -> Engine {
    let mut e = Engine::new(EngineConfig {
        seed: 7,
        ..EngineConfig::default()
    });
    e.add_feature(presence::feature(PresenceConfig::default()));
    e.add_feature(xdm::feature(XdmConfig::default()));
    e.add_feature(privacy::feature(PrivacyConfig {
        default_handling: SubHandling::Allow,
    }));
    e.add_feature(rls::feature(RlsConfig::default()));
    e
}

/// Owner `i`'s rls-services document: service `sip:o{i}-list@example.com` of `members`.
fn list_doc(i: usize, members: &[String]) -> DocumentChange {
    let owner = format!("sip:o{i}@example.com");
    let entries: String = members
        .iter()
        .map(|m| format!("<rl:entry uri=\"{m}\"/>"))
        .collect();
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\" \
xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\"><service uri=\"sip:o{i}-list@example.com\"><list>{entries}</list>\
<packages><package>presence</package></packages></service></rls-services>"
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

/// Owner `i`'s list SUBSCRIBE (or, `to` Some, a plain presence SUBSCRIBE to `to`).
fn subscribe(i: usize, to: Option<&str>) -> Inbound {
    let port = 10000 + (i % 50000) as u16;
    let (uri, list) = match to {
        Some(t) => (t.to_owned(), ""),
        None => (
            format!("sip:o{i}-list@example.com"),
            "Supported: eventlist\r\n",
        ),
    };
    msg(
        src(port),
        format!(
            "SUBSCRIBE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKs{i};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:o{i}@example.com>;tag=w{i}\r\nTo: <{uri}>\r\nCall-ID: sub{i}\r\n\
CSeq: 1 SUBSCRIBE\r\nContact: <sip:o{i}@127.0.0.1:{port}>\r\nEvent: presence\r\nExpires: 3600\r\n{list}\
Accept: multipart/related, application/rlmi+xml, application/pidf+xml\r\nContent-Length: 0\r\n\r\n"
        ),
    )
}

fn publish(aor: &str, n: u64, etag: Option<&str>) -> Inbound {
    let b = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"{aor}\">\
<tuple id=\"t1\"><status><basic>open</basic></status><note>change {n}</note></tuple></presence>"
    );
    publish_pidf(aor, n, etag, &b)
}

/// Run `subs` SUBSCRIBEs in chunks and answer their NOTIFYs.
fn settle(engine: &mut Engine, now: u64, subs: Vec<Inbound>) {
    let mut out = Vec::new();
    let mut it = subs.into_iter().peekable();
    while it.peek().is_some() {
        let chunk: Vec<Inbound> = it.by_ref().take(1024).collect();
        engine.tick(Time(now), chunk, &mut out);
        let (acks, _) = answers(&out);
        out.clear();
        engine.tick(Time(now), acks, &mut out);
        out.clear();
    }
}

/// µs per NOTIFY of one PUBLISH of alice fanned out, over `iters` changes; prints
/// allocations per NOTIFY.
fn fan_out(
    engine: &mut Engine,
    expect: usize,
    iters: u64,
    n: &mut u64,
    etag: &mut Option<String>,
) -> Duration {
    let mut out = Vec::new();
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        *n += 1;
        let change = publish("sip:alice@example.com", *n, etag.as_deref());
        let t = Instant::now();
        engine.tick(Time(*n), [change], &mut out);
        total += t.elapsed();
        assert_eq!(
            out.len(),
            expect + 1,
            "one NOTIFY per subscription and the 200"
        );
        if std::env::var_os("RLS_BENCH_SHOW").is_some() {
            let m = out.iter().find(|m| m.head.starts_with(b"NOTIFY ")).unwrap();
            eprintln!(
                "{}{}",
                String::from_utf8_lossy(&m.head),
                String::from_utf8_lossy(&m.body)
            );
        }
        let (acks, e) = answers(&out);
        *etag = e;
        out.clear();
        engine.tick(Time(*n), acks, &mut out);
        out.clear();
    }
    total
}

fn bench_fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("rls_fanout_10000");
    g.sample_size(10);
    g.throughput(Throughput::Elements(LISTS as u64));
    // plain presence: 10,000 watchers of alice
    let mut plain = engine();
    settle(
        &mut plain,
        1,
        (0..LISTS)
            .map(|i| subscribe(i, Some("sip:alice@example.com")))
            .collect(),
    );
    // lists: 10,000 owners, each list alice and 49 of 20,000 others
    let mut lists = engine();
    let heap0 = common::live_bytes();
    lists.submit_documents((0..LISTS).map(|i| {
        let mut m = vec!["sip:alice@example.com".to_owned()];
        m.extend(
            (1..members()).map(|k| format!("sip:m{}@example.com", (i * 7 + k * 397) % 20_000)),
        );
        list_doc(i, &m)
    }));
    // the documents are taken in at the next tick
    lists.tick(Time(1), [], &mut Vec::new());
    let heap1 = common::live_bytes();
    let t = Instant::now();
    settle(
        &mut lists,
        1,
        (0..LISTS).map(|i| subscribe(i, None)).collect(),
    );
    let heap2 = common::live_bytes();
    eprintln!(
        "rls: heap {:.0} B per stored list document, {:.0} B per list subscription with its \
{} back-end subscriptions ({:.0} B per member)",
        (heap1 - heap0) as f64 / LISTS as f64,
        (heap2 - heap1) as f64 / LISTS as f64,
        members(),
        (heap2 - heap1) as f64 / (LISTS * members()) as f64
    );
    eprintln!(
        "rls: {LISTS} list subscriptions of {} members set up in {:.1} s",
        members(),
        t.elapsed().as_secs_f64()
    );
    let (mut n, mut etag_p, mut etag_l) = (0u64, None, None);
    let mut timed = |engine: &mut Engine, etag: &mut Option<String>| {
        let a0 = common::allocations();
        let d = fan_out(engine, LISTS, 20, &mut n, etag);
        let allocs = (common::allocations() - a0) as f64 / (20 * LISTS) as f64;
        (d.as_secs_f64() * 1e6 / (20 * LISTS) as f64, allocs)
    };
    // alternate, so that drift of the machine hits both alike
    let mut p = Vec::new();
    let mut l = Vec::new();
    for _ in 0..3 {
        p.push(timed(&mut plain, &mut etag_p));
        l.push(timed(&mut lists, &mut etag_l));
    }
    let best = |v: &[(f64, f64)]| {
        v.iter()
            .copied()
            .fold((f64::MAX, 0.0), |a, b| if b.0 < a.0 { b } else { a })
    };
    let (pu, pa) = best(&p);
    let (lu, la) = best(&l);
    eprintln!(
        "rls_fanout_10000: plain {pu:.3} µs/NOTIFY ({pa:.1} allocations), list {lu:.3} µs/NOTIFY \
({la:.1} allocations): ratio {:.2} (target ≤ 2)",
        lu / pu
    );
    g.bench_function(BenchmarkId::new("plain", LISTS), |b| {
        b.iter_custom(|iters| fan_out(&mut plain, LISTS, iters, &mut n, &mut etag_p))
    });
    g.bench_function(BenchmarkId::new("list", LISTS), |b| {
        b.iter_custom(|iters| fan_out(&mut lists, LISTS, iters, &mut n, &mut etag_l))
    });
    g.finish();
}

/// A refresh of one list subscription of 100 published members: its full-state NOTIFY.
fn bench_full_state(c: &mut Criterion) {
    let mut engine = engine();
    let members: Vec<String> = (0..100).map(|k| format!("sip:m{k}@example.com")).collect();
    engine.submit_documents([list_doc(0, &members)]);
    let mut out = Vec::new();
    for (k, m) in members.iter().enumerate() {
        engine.tick(Time(1), [publish(m, k as u64, None)], &mut out);
    }
    out.clear();
    // subscribe; our To tag is in the 200
    engine.tick(Time(1), [subscribe(0, None)], &mut out);
    let tag = out
        .iter()
        .map(|m| String::from_utf8_lossy(&m.head).into_owned())
        .find(|h| h.starts_with("SIP/2.0 200"))
        .and_then(|h| {
            let to = h.lines().find(|l| l.starts_with("To: "))?.to_owned();
            Some(to.split("tag=").nth(1)?.trim().to_owned())
        })
        .expect("200 with a To tag");
    let (acks, _) = answers(&out);
    out.clear();
    engine.tick(Time(1), acks, &mut out);
    let mut cseq = 1u32;
    let refresh = |cseq: u32, tag: &str| {
        msg(
            src(10000),
            format!(
                "SUBSCRIBE sip:o0-list@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:10000;branch=z9hG4bKr{cseq};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:o0@example.com>;tag=w0\r\nTo: <sip:o0-list@example.com>;tag={tag}\r\nCall-ID: sub0\r\n\
CSeq: {cseq} SUBSCRIBE\r\nContact: <sip:o0@127.0.0.1:10000>\r\nEvent: presence\r\nExpires: 3600\r\nSupported: eventlist\r\n\
Accept: multipart/related, application/rlmi+xml, application/pidf+xml\r\nContent-Length: 0\r\n\r\n"
            ),
        )
    };
    out.clear();
    let mut g = c.benchmark_group("rls_full_state");
    g.throughput(Throughput::Elements(1));
    let mut body_len = 0;
    g.bench_function(BenchmarkId::from_parameter(100), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                cseq += 1;
                let r = refresh(cseq, &tag);
                let t = Instant::now();
                engine.tick(Time(3), [r], &mut out);
                total += t.elapsed();
                let notify = out
                    .iter()
                    .find(|m| m.head.starts_with(b"NOTIFY "))
                    .expect("the full-state NOTIFY");
                body_len = notify.body.len();
                let (acks, _) = answers(&out);
                out.clear();
                engine.tick(Time(3), acks, &mut out);
                out.clear();
            }
            total
        })
    });
    eprintln!("rls_full_state/100: body {body_len} bytes");
    g.finish();
}

criterion_group!(benches, bench_fanout, bench_full_state);
criterion_main!(benches);
