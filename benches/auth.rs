//! SIP Digest in the tick: 1,000 publishers each modifying their presence, one tick of 1,000
//! PUBLISHes, on an open engine and on one with users where every PUBLISH carries Digest
//! credentials (MD5, the nonce reused with a growing nc, as clients do). Prints µs per
//! PUBLISH of each and the ratio (the cost of authentication beside the PUBLISH itself).

mod common;

use common::sip::{answers, msg, src};

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use presenced_systems::auth::digest::{Algorithm, expected_response, ha1};
use presenced_systems::auth::{self, AuthConfig, UserLogin};
use presenced_systems::presence::{self, PresenceConfig};
use presenced_systems::{Engine, EngineConfig, Inbound, Time};

const USERS: usize = 1000;

fn engine(users: bool) -> Engine {
    let mut e = Engine::new(EngineConfig {
        seed: 11,
        hash_seed: 12,
        ..EngineConfig::default()
    });
    e.add_feature(presence::feature(PresenceConfig::default()));
    e.add_feature(auth::feature(AuthConfig::default()));
    if users {
        e.set_users((0..USERS).map(|i| {
            let (name, realm) = (format!("u{i}"), "example.com");
            UserLogin {
                identity: format!("sip:u{i}@example.com"),
                ha1_md5: ha1(Algorithm::Md5, &name, realm, "pw"),
                ha1_sha256: ha1(Algorithm::Sha256, &name, realm, "pw"),
                username: name,
                realm: realm.into(),
            }
        }));
    }
    e
}

/// User `i`'s PUBLISH number `n`, with its entity tag and (nonce, nc) credentials when given.
fn publish(i: usize, n: u64, etag: Option<&str>, creds: Option<(&str, u32)>) -> Inbound {
    let aor = format!("sip:u{i}@example.com");
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"{aor}\">\
<tuple id=\"t1\"><status><basic>open</basic></status><note>change {n}</note></tuple></presence>"
    );
    let if_match = etag
        .map(|e| format!("SIP-If-Match: {e}\r\n"))
        .unwrap_or_default();
    let auth = creds
        .map(|(nonce, nc)| {
            let (nc, cnonce) = (format!("{nc:08x}"), format!("c{i}"));
            let h = ha1(Algorithm::Md5, &format!("u{i}"), "example.com", "pw");
            let r = expected_response(Algorithm::Md5, &h, nonce, &nc, &cnonce, "auth", "PUBLISH", &aor);
            format!(
                "Authorization: Digest username=\"u{i}\", realm=\"example.com\", nonce=\"{nonce}\", \
uri=\"{aor}\", response=\"{r}\", algorithm=MD5, cnonce=\"{cnonce}\", qop=auth, nc={nc}\r\n"
            )
        })
        .unwrap_or_default();
    let port = 10000 + i as u16;
    msg(
        src(port),
        format!(
            "PUBLISH {aor} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKp{n}x{i};rport\r\n\
Max-Forwards: 70\r\nFrom: <{aor}>;tag=pub\r\nTo: <{aor}>\r\nCall-ID: pub{n}x{i}\r\n\
CSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: 3600\r\n{if_match}{auth}Content-Type: application/pidf+xml\r\n\
Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// The publishers: their entity tags, and with users their nonces and counts.
struct Publishers {
    etags: Vec<Option<String>>,
    nonces: Option<Vec<(String, u32)>>,
    n: u64,
}

impl Publishers {
    /// Everyone's first PUBLISH (challenged first when `users`).
    fn new(engine: &mut Engine, users: bool) -> Publishers {
        let mut p = Publishers {
            etags: vec![None; USERS],
            nonces: None,
            n: 0,
        };
        if users {
            let mut out = Vec::new();
            engine.tick(
                Time(1),
                (0..USERS).map(|i| publish(i, 0, None, None)),
                &mut out,
            );
            let nonces = out
                .iter()
                .map(|m| {
                    let head = String::from_utf8_lossy(&m.head);
                    assert!(head.starts_with("SIP/2.0 401"), "{head}");
                    let at = head.find("nonce=\"").unwrap() + 7;
                    (head[at..at + 64].to_owned(), 0)
                })
                .collect();
            p.nonces = Some(nonces);
        }
        p.round(engine);
        p
    }

    /// One tick of everyone's next PUBLISH; its time.
    fn round(&mut self, engine: &mut Engine) -> Duration {
        self.n += 1;
        let n = self.n;
        let batch: Vec<Inbound> = (0..USERS)
            .map(|i| {
                let creds = self.nonces.as_mut().map(|v| {
                    v[i].1 += 1;
                    (v[i].0.as_str(), v[i].1)
                });
                publish(i, n, self.etags[i].as_deref(), creds)
            })
            .collect();
        let mut out = Vec::new();
        let t = Instant::now();
        engine.tick(Time(1 + n), batch, &mut out);
        let d = t.elapsed();
        assert_eq!(out.len(), USERS);
        for (i, m) in out.iter().enumerate() {
            assert!(
                m.head.starts_with(b"SIP/2.0 200"),
                "{}",
                String::from_utf8_lossy(&m.head)
            );
            let (_, etag) = answers(std::slice::from_ref(m));
            self.etags[i] = etag;
        }
        d
    }
}

fn bench(c: &mut Criterion) {
    let mut open = engine(false);
    let mut authed = engine(true);
    let mut po = Publishers::new(&mut open, false);
    let mut pa = Publishers::new(&mut authed, true);
    let per = |d: Duration, rounds: u32| d.as_secs_f64() * 1e6 / (rounds as f64 * USERS as f64);
    let (mut best_o, mut best_a) = (f64::MAX, f64::MAX);
    // alternate, so that drift of the machine hits both alike
    for _ in 0..3 {
        let o: Duration = (0..20).map(|_| po.round(&mut open)).sum();
        let a: Duration = (0..20).map(|_| pa.round(&mut authed)).sum();
        best_o = best_o.min(per(o, 20));
        best_a = best_a.min(per(a, 20));
    }
    eprintln!(
        "auth_publish_1000: open {best_o:.3} µs/PUBLISH, with SIP Digest {best_a:.3} µs/PUBLISH: \
ratio {:.2} (Digest {:.3} µs per request)",
        best_a / best_o,
        best_a - best_o
    );
    let mut g = c.benchmark_group("auth_publish_1000");
    g.sample_size(20);
    g.throughput(Throughput::Elements(USERS as u64));
    g.bench_function(BenchmarkId::new("open", USERS), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| po.round(&mut open)).sum())
    });
    g.bench_function(BenchmarkId::new("digest", USERS), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| pa.round(&mut authed)).sum())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
