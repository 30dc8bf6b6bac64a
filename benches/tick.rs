//! The fixed cost of a tick: the schedule with nothing to do, and a tick that answers a batch
//! of OPTIONS (parse, transaction, dispatch, response).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use presenced_systems::{Engine, EngineConfig, Inbound, Source, Time, Transport};

fn options(i: usize) -> Inbound {
    let text = format!(
        "OPTIONS sip:presenced@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{i};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag={i}\r\nTo: <sip:presenced@127.0.0.1>\r\nCall-ID: {i}@bench\r\n\
CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    Inbound {
        source: Source {
            transport: Transport::Udp,
            peer: "192.0.2.1:5060".parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
            conn: None,
            verified_peer: false,
        },
        bytes: Bytes::from(text),
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("tick");
    let mut engine = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    let mut t = 0u64;
    g.bench_function("empty", |b| {
        b.iter(|| {
            t += 1;
            engine.tick(Time(t), std::iter::empty(), &mut out);
            black_box(&out);
        })
    });
    // the server's whole schedule (presence, subscriptions, XDM change notification): what a
    // tick costs before the first message, paid once per wake-up under a moderate load
    let mut server = Engine::new(EngineConfig::default());
    server.add_feature(presenced_systems::presence::feature(
        presenced_systems::presence::PresenceConfig::default(),
    ));
    server.add_feature(presenced_systems::xdm::feature(
        presenced_systems::xdm::XdmConfig::default(),
    ));
    g.bench_function("empty_server_schedule", |b| {
        b.iter(|| {
            t += 1;
            server.tick(Time(t), std::iter::empty(), &mut out);
            black_box(&out);
        })
    });
    const BATCH: usize = 256;
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut n = 0usize;
    g.bench_function("options_batch_256", |b| {
        b.iter_batched(
            || {
                n += BATCH;
                (0..BATCH).map(|i| options(n + i)).collect::<Vec<_>>()
            },
            |batch| {
                t += 1;
                out.clear();
                engine.tick(Time(t), batch, &mut out);
                assert_eq!(out.len(), BATCH);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
