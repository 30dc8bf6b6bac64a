//! Subscription authorisation: a pres-rules document's rules (parsed once into a `RuleSet`)
//! evaluated for 10,000 watchers, with rule sets of 1, 10 and 100 rules (RFC 4745 §10:
//! every rule is matched and the matching ones combined).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use presenced_systems::privacy::{Context, NoLists, Requester, RuleSet, SubHandling, decide};
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

criterion_group!(benches, bench);
criterion_main!(benches);
