//! Parse throughput of typical presence requests (first pass, then the strict checks building
//! the header index), the work the engine does per inbound message before any presence logic.
//! Allocations per parse are counted and printed first.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use presenced_systems::sip::message::{Parsed, parse};
use presenced_systems::{Inbound, Source, Transport};

const PUBLISH: &str = "PUBLISH sip:alice@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bKPjd9c5a8f1e2b34c6a9f\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=e6c0c1a2b3\r\n\
To: <sip:alice@example.com>\r\n\
Call-ID: 4a7c9f0e-1b2d-4e8f-9a3c-5d6e7f8a9b0c\r\n\
CSeq: 4711 PUBLISH\r\n\
Event: presence\r\n\
Expires: 3600\r\n\
User-Agent: PJSUA v2.14 Linux\r\n\
Content-Type: application/pidf+xml\r\n\
Content-Length: 333\r\n\r\n\
<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"sip:alice@example.com\"><tuple id=\"t1\"><status><basic>open</basic></status></tuple><dm:person id=\"p1\"><rpid:activities><rpid:busy/></rpid:activities></dm:person></presence>";

const SUBSCRIBE: &str = "SUBSCRIBE sip:alice@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.20:5060;rport;branch=z9hG4bKPj7e6d5c4b3a29181\r\n\
Max-Forwards: 70\r\n\
From: <sip:bob@example.com>;tag=9f8e7d6c5b\r\n\
To: <sip:alice@example.com>\r\n\
Contact: <sip:bob@192.0.2.20:5060;ob>\r\n\
Call-ID: 0b9a8f7e-6d5c-4b3a-2918-07f6e5d4c3b2\r\n\
CSeq: 1 SUBSCRIBE\r\n\
Event: presence\r\n\
Expires: 600\r\n\
Accept: application/pidf+xml, application/xpidf+xml\r\n\
Allow-Events: presence, message-summary\r\n\
Supported: replaces, 100rel, timer, norefersub\r\n\
User-Agent: PJSUA v2.14 Linux\r\n\
Content-Length: 0\r\n\r\n";

mod common;

fn inbound(text: &str) -> Inbound {
    Inbound {
        source: Source {
            transport: Transport::Udp,
            peer: "192.0.2.10:5060".parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
            conn: None,
            verified_peer: false,
        },
        bytes: Bytes::copy_from_slice(text.as_bytes()),
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sip_parse");
    g.throughput(Throughput::Elements(1));
    for (name, text) in [("publish", PUBLISH), ("subscribe", SUBSCRIBE)] {
        let msg = inbound(text);
        assert!(
            matches!(parse(&msg, "OPTIONS", false), Parsed::Request(_)),
            "{name} parses"
        );
        let before = common::allocations();
        drop(black_box(parse(&msg, "OPTIONS", false)));
        let n = common::allocations() - before;
        println!("sip_parse/{name}: {n} allocations per parse");
        g.bench_function(format!("{name}_first_pass"), |b| {
            b.iter(|| {
                black_box(
                    presenced_systems::sip::scan::scan(black_box(&msg.bytes), true)
                        .unwrap()
                        .headers
                        .len(),
                )
            })
        });
        g.bench_function(name, |b| {
            b.iter(|| black_box(parse(black_box(&msg), "OPTIONS", false)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
