//! Presence Server hot paths: PIDF parse (alone and laid out as a one-source view), composition of N sources, and the fan-out of one
//! change to 1, 100 and 10,000 watchers (reported per NOTIFY, with allocations per NOTIFY from a
//! counting allocator).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use presenced_systems::formats::pidf;
use presenced_systems::presence::{self, PresenceConfig};
use presenced_systems::{Engine, EngineConfig, Inbound, Time};

mod common;

use common::sip::{answers, msg, publish_pidf, src};

fn body(entity: &str, tuple: &str, note: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" \
entity=\"{entity}\"><tuple id=\"{tuple}\"><status><basic>open</basic></status><note>{note}</note></tuple>\
<dm:person id=\"p-{tuple}\"><rpid:activities><rpid:busy/></rpid:activities></dm:person></presence>"
    )
}

fn bench_pidf(c: &mut Criterion) {
    let doc = body("sip:alice@example.com", "t1", "in a meeting");
    let mut g = c.benchmark_group("pidf");
    g.throughput(Throughput::Bytes(doc.len() as u64));
    g.bench_function("parse", |b| {
        b.iter(|| black_box(pidf::parse(black_box(doc.as_bytes())).unwrap()))
    });
    // what PUBLISH does: the buffer laid out as the one-source view (composition then only
    // takes a slice of it)
    g.bench_function("parse_with_view", |b| {
        b.iter(|| {
            black_box(
                pidf::parse_with_view(black_box(doc.as_bytes()), &["sip:", "alice@example.com"])
                    .unwrap(),
            )
        })
    });
    g.finish();
    let mut g = c.benchmark_group("compose");
    for n in [1usize, 4, 16] {
        let docs: Vec<_> = (0..n)
            .map(|i| {
                pidf::parse(body("sip:alice@example.com", &format!("t{i}"), "x").as_bytes())
                    .unwrap()
            })
            .collect();
        let refs: Vec<&pidf::PidfDocument> = docs.iter().collect();
        g.bench_with_input(BenchmarkId::from_parameter(n), &refs, |b, refs| {
            b.iter(|| black_box(pidf::compose("sip:alice@example.com", refs)))
        });
    }
    g.finish();
}

fn subscribe(i: usize) -> Inbound {
    let port = 10000 + (i % 50000) as u16;
    msg(
        src(port),
        format!(
            "SUBSCRIBE sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKs{i};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:w{i}@example.com>;tag=w{i}\r\nTo: <sip:alice@example.com>\r\nCall-ID: sub{i}\r\n\
CSeq: 1 SUBSCRIBE\r\nContact: <sip:w{i}@127.0.0.1:{port}>\r\nEvent: presence\r\nExpires: 3600\r\n\
Accept: application/pidf+xml\r\nContent-Length: 0\r\n\r\n"
        ),
    )
}

fn publish(n: u64, etag: Option<&str>) -> Inbound {
    let b = body("sip:alice@example.com", "t1", &format!("change {n}"));
    publish_pidf("sip:alice@example.com", n, etag, &b)
}

fn bench_fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout");
    g.sample_size(20);
    for watchers in [1usize, 100, 10_000] {
        let mut engine = Engine::new(EngineConfig {
            seed: 7,
            ..EngineConfig::default()
        });
        engine.add_feature(presence::feature(PresenceConfig::default()));
        let mut now = 1u64;
        let mut out = Vec::new();
        for chunk in (0..watchers).collect::<Vec<_>>().chunks(2048) {
            engine.tick(Time(now), chunk.iter().map(|&i| subscribe(i)), &mut out);
        }
        let (acks, _) = answers(&out);
        out.clear();
        engine.tick(Time(now), acks, &mut out);
        out.clear();
        engine.tick(Time(now), [publish(0, None)], &mut out);
        let (acks, mut etag) = answers(&out);
        out.clear();
        engine.tick(Time(now), acks, &mut out);
        let mut n = 1u64;
        g.throughput(Throughput::Elements(watchers as u64));
        let mut allocs_per_notify = 0.0;
        g.bench_function(BenchmarkId::from_parameter(watchers), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let change = publish(n, etag.as_deref());
                    n += 1;
                    now += 1;
                    out.clear();
                    let a0 = common::allocations();
                    let t = Instant::now();
                    engine.tick(Time(now), [change], &mut out);
                    total += t.elapsed();
                    let a = common::allocations() - a0;
                    assert_eq!(
                        out.len(),
                        watchers + 1,
                        "one NOTIFY per watcher and the 200"
                    );
                    allocs_per_notify = a as f64 / watchers as f64;
                    let (acks, e) = answers(&out);
                    etag = e;
                    out.clear();
                    engine.tick(Time(now), acks, &mut out);
                }
                total
            })
        });
        eprintln!(
            "fanout/{watchers}: {allocs_per_notify:.1} allocations per NOTIFY (incl. the PUBLISH)"
        );
    }
    g.finish();
}

criterion_group!(benches, bench_pidf, bench_fanout);
criterion_main!(benches);
