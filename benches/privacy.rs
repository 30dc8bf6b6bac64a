//! Subscription authorisation: a pres-rules document's rules (parsed once into a `RuleSet`)
//! evaluated for 10,000 watchers, with rule sets of 1, 10 and 100 rules (RFC 4745 §10:
//! every rule is matched and the matching ones combined). And the content filter: one change
//! of a presentity's view filtered and encoded for 10,000 watchers holding 1, 10 or 100
//! distinct permission sets (watchers with equal permissions share one body).

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use presenced_systems::formats::pidf::{compose, parse, parse_bytes};
use presenced_systems::privacy::{
    Attribute, Context, NoLists, Permissions, Requester, RuleSet, Selection, ServiceSelector,
    SubHandling, UserInput, decide, filter,
};
use presenced_systems::xcap::dom::parse_document;

/// `n` rules: one allowing a single identity each, the last blocking a domain, as a user's
/// buddy-by-buddy rules tend to look.
fn rule_set(n: usize) -> RuleSet {
    let mut d = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<cr:ruleset xmlns:cr="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules">"#,
    );
    for i in 0..n.saturating_sub(1) {
        d.push_str(&format!(
            "<cr:rule id=\"r{i}\"><cr:conditions><cr:identity><cr:one id=\"sip:w{i}@example.com\"/></cr:identity></cr:conditions>\
             <cr:actions><pr:sub-handling>allow</pr:sub-handling></cr:actions><cr:transformations>\
             <pr:provide-services><pr:all-services/></pr:provide-services><pr:provide-note>true</pr:provide-note>\
             </cr:transformations></cr:rule>"
        ));
    }
    d.push_str(
        "<cr:rule id=\"spam\"><cr:conditions><cr:identity><cr:many domain=\"spam.example\"/></cr:identity></cr:conditions>\
         <cr:actions><pr:sub-handling>block</pr:sub-handling></cr:actions></cr:rule></cr:ruleset>",
    );
    RuleSet::from_document(&parse_document(d.as_bytes()).unwrap())
}

fn bench(c: &mut Criterion) {
    let watchers: Vec<String> = (0..10_000)
        .map(|i| format!("sip:w{i}@example.com"))
        .collect();
    let mut g = c.benchmark_group("privacy_decide_10000_watchers");
    g.throughput(Throughput::Elements(watchers.len() as u64));
    for n in [1, 10, 100] {
        let set = rule_set(n);
        assert_eq!(set.rules.len(), n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &set, |b, set| {
            b.iter(|| {
                let mut allowed = 0;
                for w in &watchers {
                    let cx = Context {
                        requester: Requester::Identity(w),
                        now_unix: 1_800_000_000,
                        sphere: None,
                    };
                    let d = decide(set, &cx, &NoLists, SubHandling::Confirm);
                    allowed += (d.handling == SubHandling::Allow) as usize;
                }
                black_box(allowed)
            })
        });
    }
    g.finish();
}

/// A presentity's view as a rich client publishes it: two services, a person with RPID
/// attributes, a device, a note, OMA willingness and a vendor extension.
const PUBLISHED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:op="urn:oma:xml:prs:pidf:oma-pres"
    xmlns:x="urn:example:vendor" entity="sip:alice@example.com">
  <tuple id="t-sip">
    <status><basic>open</basic></status>
    <rpid:class>work</rpid:class>
    <dm:deviceID>urn:uuid:d1</dm:deviceID>
    <op:willingness><op:basic>open</op:basic></op:willingness>
    <contact priority="0.8">sip:alice@192.0.2.10</contact>
    <note>desk phone</note>
    <timestamp>2025-01-01T10:00:00Z</timestamp>
  </tuple>
  <tuple id="t-tel">
    <status><basic>closed</basic></status>
    <rpid:class>home</rpid:class>
    <contact>tel:+15551234</contact>
  </tuple>
  <note>back at 10</note>
  <dm:person id="p1">
    <rpid:activities><rpid:meeting/></rpid:activities>
    <rpid:mood><rpid:happy/></rpid:mood>
    <rpid:place-type><rpid:other>office</rpid:other></rpid:place-type>
    <rpid:user-input idle-threshold="600" last-input="2025-01-01T09:50:00Z">idle</rpid:user-input>
    <x:foo>bar</x:foo>
    <dm:note>In a meeting</dm:note>
  </dm:person>
  <dm:device id="d1">
    <dm:deviceID>urn:uuid:d1</dm:deviceID>
    <dm:note>laptop</dm:note>
  </dm:device>
  <x:card>vendor data</x:card>
</presence>
"#;

/// `k` distinct permission sets: the attributes granted are the bits of the set's number, the
/// user-input level and the services shown vary too.
fn permission_sets(k: usize) -> Vec<Permissions> {
    let attrs: Vec<Attribute> = Attribute::IETF
        .iter()
        .chain(&Attribute::OMA)
        .map(|&(_, a)| a)
        .collect();
    let sets: Vec<Permissions> = (0..k)
        .map(|i| {
            let mut p = Permissions::default();
            p.services = if i % 3 == 2 {
                Selection::Some([ServiceSelector::ServiceUriScheme("sip".into())].into())
            } else {
                Selection::All
            };
            p.persons = Selection::All;
            p.devices = Selection::All;
            for (bit, a) in attrs.iter().enumerate() {
                if i >> bit & 1 == 1 {
                    p.grant(*a);
                }
            }
            p.user_input = [
                UserInput::False,
                UserInput::Bare,
                UserInput::Thresholds,
                UserInput::Full,
            ][i % 4];
            p
        })
        .collect();
    for (i, a) in sets.iter().enumerate() {
        assert!(
            sets[..i].iter().all(|b| b != a),
            "permission sets are distinct"
        );
    }
    sets
}

fn bench_filter(c: &mut Criterion) {
    const WATCHERS: usize = 10_000;
    let source = parse(PUBLISHED.as_bytes()).unwrap();
    let composed = compose("sip:alice@example.com", &[&source]);
    let mut g = c.benchmark_group("privacy_filter_encode_10000_watchers");
    g.throughput(Throughput::Elements(WATCHERS as u64));
    for k in [1, 10, 100] {
        let sets = permission_sets(k);
        let holds: Vec<usize> = (0..WATCHERS).map(|w| w % k).collect();
        // one change: the view parsed once, one body per distinct set, one handle per watcher
        let change = || {
            let view = parse_bytes(composed.clone()).unwrap();
            let bodies: Vec<_> = sets.iter().map(|p| filter(&view, p)).collect();
            let notify: Vec<_> = holds.iter().map(|&s| bodies[s].clone()).collect();
            black_box(notify)
        };
        let runs = 200;
        let t = Instant::now();
        for _ in 0..runs {
            change();
        }
        let per_change = t.elapsed().as_secs_f64() / runs as f64;
        println!(
            "privacy_filter_encode_10000_watchers/{k}: {k} encodes per change, {:.3} µs per change, \
             {:.4} µs per NOTIFY body",
            per_change * 1e6,
            per_change * 1e6 / WATCHERS as f64
        );
        g.bench_function(BenchmarkId::from_parameter(k), |b| b.iter(change));
    }
    g.finish();
}

criterion_group!(benches, bench, bench_filter);
criterion_main!(benches);
