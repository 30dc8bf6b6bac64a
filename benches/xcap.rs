//! XCAP on a 1,000-entry resource list (RFC 4825 §8): parsing the document, node-selector GET
//! and PUT: the work the XDMS does per request besides HTTP and storage.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use presenced_systems::xcap::{Method, NoDirectory, Outcome, Request, Usages, XcapUri, apply, dom};

fn list(n: usize) -> Vec<u8> {
    let mut d = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\n<list name=\"friends\">\n",
    );
    for i in 0..n {
        d.push_str(&format!(
            "<entry uri=\"sip:user{i}@example.com\"><display-name>User {i}</display-name></entry>\n"
        ));
    }
    d.push_str("</list>\n</resource-lists>\n");
    d.into_bytes()
}

const DOC: &str = "/resource-lists/users/sip:alice@example.com/index";

fn bench(c: &mut Criterion) {
    let usages = Usages::standard();
    let doc = list(1000);
    let mut g = c.benchmark_group("xcap_1000_entries");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_document", |b| {
        b.iter(|| black_box(dom::parse_document(black_box(&doc)).unwrap()))
    });
    let get_uri = XcapUri::parse(
        &format!("{DOC}/~~/resource-lists/list%5b@name=%22friends%22%5d/entry%5b@uri=%22sip:user500@example.com%22%5d"),
        None,
    )
    .unwrap();
    let get = Request {
        method: Method::Get,
        uri: &get_uri,
        body: b"",
        content_type: None,
    };
    assert!(matches!(
        apply(&usages, &get, Some(&doc), &NoDirectory),
        Ok(Outcome::Content { .. })
    ));
    g.bench_function("get_entry_by_attribute", |b| {
        b.iter(|| black_box(apply(&usages, &get, Some(black_box(&doc)), &NoDirectory).unwrap()))
    });
    let put_uri = XcapUri::parse(
        &format!("{DOC}/~~/resource-lists/list%5b@name=%22friends%22%5d/entry%5b@uri=%22sip:new@example.com%22%5d"),
        None,
    )
    .unwrap();
    let body = b"<entry uri=\"sip:new@example.com\"><display-name>New</display-name></entry>";
    let put = Request {
        method: Method::Put,
        uri: &put_uri,
        body,
        content_type: Some("application/xcap-el+xml"),
    };
    assert!(matches!(
        apply(&usages, &put, Some(&doc), &NoDirectory),
        Ok(Outcome::Write { .. })
    ));
    g.bench_function("put_new_entry", |b| {
        b.iter(|| black_box(apply(&usages, &put, Some(black_box(&doc)), &NoDirectory).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
