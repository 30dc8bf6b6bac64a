//! The operator's endpoints on the HTTP listener: `/metrics` counts exactly what was sent
//! (read back through Python's `prometheus_client` parser, an independent reader of the text
//! format), and `/healthz` and `/readyz` answer 200 on a running server, without credentials.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, UdpPeer, Xcap, assert_status, pidf, response_to};

const ALICE: &str = "sip:alice@example.com";

/// Prints each sample as `name<TAB>k=v,k=v<TAB>value`, labels sorted, as the Prometheus text
/// parser reads them, after the stricter OpenMetrics parser has accepted the text too.
const PARSE: &str = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families
text = sys.stdin.read()
list(openmetrics(text))
for family in text_string_to_metric_families(text):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print(f"{s.name}\t{labels}\t{s.value}")
"#;

/// The samples of an exposition as Python's parser reads them: (name, labels) -> value.
fn parse(text: &str) -> BTreeMap<(String, String), f64> {
    let mut child = Command::new("python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejects the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.split('\t');
            let (name, labels, value) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            ((name.to_owned(), labels.to_owned()), value.parse().unwrap())
        })
        .collect()
}

fn has_parser() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import prometheus_client.parser"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        common::skip_unless_ci(
            "metrics",
            "python3 with prometheus_client is missing (pip install prometheus_client)",
        );
    }
    ok
}

fn sample(samples: &BTreeMap<(String, String), f64>, name: &str, labels: &str) -> f64 {
    samples
        .get(&(name.to_owned(), labels.to_owned()))
        .copied()
        .unwrap_or(0.0)
}

#[test]
fn metrics_count_what_was_sent_inline_engine() {
    counts_what_was_sent("");
}

#[test]
fn metrics_count_what_was_sent_engine_thread() {
    counts_what_was_sent("[engine]\ninline = false\n");
}

/// Send a known number of each request to a server started with `config`, then scrape.
fn counts_what_was_sent(config: &str) {
    if !has_parser() {
        return;
    }
    let server = Server::start_with(config, &[]);
    let peer = UdpPeer::new(server.udp);
    const PUBLISHES: usize = 5;
    const OPTIONS: usize = 4;
    const SUBSCRIBES: usize = 3;
    for i in 0..PUBLISHES {
        let body = pidf(ALICE, &format!("t{i}"), "open", "here");
        let r = peer
            .req("PUBLISH", ALICE)
            .set("Event", "presence")
            .set("Expires", "600")
            .body("application/pidf+xml", &body);
        assert_eq!(peer.call(&r).status(), 200);
    }
    for _ in 0..OPTIONS {
        assert_eq!(peer.call(&peer.req("OPTIONS", ALICE)).status(), 200);
    }
    for _ in 0..SUBSCRIBES {
        let watcher = UdpPeer::new(server.udp);
        let sub = common::presence_subscribe(&watcher, ALICE, 600);
        let resp = watcher.call(&sub);
        assert!((200..300).contains(&resp.status()), "{}", resp.text());
        // answer the first NOTIFY, so that nothing is retransmitted while we count
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(m) = watcher.recv(Duration::from_millis(500))
                && m.method() == "NOTIFY"
            {
                watcher.send(&response_to(&m, 200, "OK"));
                break;
            }
        }
    }
    let xcap = Xcap::new(server.http);
    assert_status(&xcap.get("/xcap-root/xcap-caps/global/index"), 200, "caps");
    for _ in 0..2 {
        let r = xcap.get("/xcap-root/resource-lists/users/sip:alice@example.com/index");
        assert_status(&r, 404, "no list yet");
    }
    let r = xcap.get("/xcap-root/no-such-usage/users/sip:alice@example.com/index");
    let unknown_status = r.status;

    // the engine's snapshot is published every ~100 ms: poll, with a bound, until it has them
    let want_publish = PUBLISHES as f64;
    let deadline = Instant::now() + Duration::from_secs(20);
    let samples = loop {
        let resp = xcap.get("/metrics");
        assert_status(&resp, 200, "/metrics");
        let ct = resp.header("Content-Type").unwrap_or("").to_owned();
        assert!(
            ct.starts_with("application/openmetrics-text"),
            "content type {ct}"
        );
        let s = parse(&resp.text());
        let seen = sample(&s, "presenced_sip_requests_total", "method=PUBLISH");
        let subs = sample(&s, "presenced_sip_requests_total", "method=SUBSCRIBE");
        let answered = sample(&s, "presenced_notifies_total", "outcome=answered");
        let caught_up =
            seen == want_publish && subs == SUBSCRIBES as f64 && answered == SUBSCRIBES as f64;
        if caught_up || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let req = |m: &str| {
        sample(
            &samples,
            "presenced_sip_requests_total",
            &format!("method={m}"),
        )
    };
    assert_eq!(req("PUBLISH"), PUBLISHES as f64);
    assert_eq!(req("OPTIONS"), OPTIONS as f64);
    assert_eq!(req("SUBSCRIBE"), SUBSCRIBES as f64);
    assert_eq!(
        req("NOTIFY"),
        0.0,
        "NOTIFY answers are responses, not requests"
    );
    let resp = |m: &str, s: &str| {
        sample(
            &samples,
            "presenced_sip_responses_total",
            &format!("method={m},status={s}"),
        )
    };
    assert_eq!(resp("PUBLISH", "2xx"), PUBLISHES as f64);
    assert_eq!(resp("OPTIONS", "2xx"), OPTIONS as f64);
    assert_eq!(resp("SUBSCRIBE", "2xx"), SUBSCRIBES as f64);
    assert_eq!(sample(&samples, "presenced_presentities", ""), 1.0);
    // each PUBLISH without SIP-If-Match starts a publication of its own
    assert_eq!(
        sample(&samples, "presenced_publications", ""),
        PUBLISHES as f64
    );
    assert_eq!(
        sample(
            &samples,
            "presenced_subscriptions",
            "package=presence,state=active"
        ),
        SUBSCRIBES as f64
    );
    let notifies = |o: &str| {
        sample(
            &samples,
            "presenced_notifies_total",
            &format!("outcome={o}"),
        )
    };
    assert_eq!(
        notifies("sent"),
        SUBSCRIBES as f64,
        "one NOTIFY per SUBSCRIBE"
    );
    assert_eq!(notifies("answered"), SUBSCRIBES as f64);
    assert_eq!(notifies("failed"), 0.0);
    assert_eq!(notifies("timeout"), 0.0);
    let ticks = sample(&samples, "presenced_ticks_total", "");
    assert!(ticks >= 1.0);
    // every tick is in the duration histogram, taken in the same snapshot
    let tick_hist = |suffix: &str, labels: &str| {
        sample(
            &samples,
            &format!("presenced_tick_duration_seconds_{suffix}"),
            labels,
        )
    };
    assert_eq!(tick_hist("count", ""), ticks);
    assert_eq!(tick_hist("bucket", "le=+Inf"), ticks);
    assert!(tick_hist("sum", "") > 0.0);
    assert_eq!(
        sample(&samples, "presenced_overload_rejections_total", ""),
        0.0
    );
    let x = |a: &str, s: &str| {
        sample(
            &samples,
            "presenced_xcap_requests_total",
            &format!("auid={a},status={s}"),
        )
    };
    assert_eq!(x("xcap-caps", "200"), 1.0);
    assert_eq!(x("resource-lists", "404"), 2.0);
    assert_eq!(x("other", &unknown_status.to_string()), 1.0);
    let all_xcap: f64 = samples
        .iter()
        .filter(|((n, _), _)| n == "presenced_xcap_requests_total")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(all_xcap, 4.0, "scrapes are not XCAP requests");
}

#[test]
fn probes_answer_200_without_credentials() {
    let dir = common::temp_dir("probes");
    common::add_user(&dir, "sip:alice@example.com", "secret");
    let server = Server::start_on("", &[], Some(&dir));
    let http = Xcap::new(server.http);
    assert_status(&http.get("/healthz"), 200, "/healthz");
    // ready once the engine has published its first snapshot
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ready = http.get("/readyz");
    while ready.status != 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        ready = http.get("/readyz");
    }
    assert_status(&ready, 200, "/readyz");
    assert_status(&http.get("/metrics"), 200, "/metrics");
    // XCAP itself still asks for credentials
    let r = http.get("/xcap-root/resource-lists/users/sip:alice@example.com/index");
    assert_status(&r, 401, "XCAP without credentials");
}

/// Watchers waiting for the presentity's decision (privacy.default = confirm, no rules) are
/// counted as pending, and as active once rules allow them.
#[test]
fn pending_subscriptions_are_counted_as_pending() {
    if !has_parser() {
        return;
    }
    let server = Server::start_with("[privacy]\ndefault = \"confirm\"\n", &[]);
    let xcap = Xcap::new(server.http);
    let watcher = UdpPeer::new(server.udp);
    let resp = watcher.call(&common::presence_subscribe(&watcher, ALICE, 600));
    assert_eq!(resp.status(), 200, "{}", resp.text());
    let wait_for = |state: &str, want: f64| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // answer whatever NOTIFY came meanwhile
            while let Some(m) = watcher.recv(Duration::from_millis(20)) {
                if m.method() == "NOTIFY" {
                    watcher.send(&response_to(&m, 200, "OK"));
                }
            }
            let s = parse(&xcap.get("/metrics").text());
            let labels = format!("package=presence,state={state}");
            let n = sample(&s, "presenced_subscriptions", &labels);
            if n == want {
                return s;
            }
            assert!(Instant::now() < deadline, "{state}: {n}, not {want}");
        }
    };
    let s = wait_for("pending", 1.0);
    assert_eq!(
        sample(
            &s,
            "presenced_subscriptions",
            "package=presence,state=active"
        ),
        0.0
    );
    let rules = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<cr:ruleset xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\" \
xmlns:pr=\"urn:ietf:params:xml:ns:pres-rules\"><cr:rule id=\"bob\"><cr:conditions><cr:identity>\
<cr:one id=\"sip:bob@example.com\"/></cr:identity></cr:conditions><cr:actions>\
<pr:sub-handling>allow</pr:sub-handling></cr:actions></cr:rule></cr:ruleset>";
    let put = xcap.put(
        "/xcap-root/pres-rules/users/sip:alice@example.com/index",
        "application/auth-policy+xml",
        rules.as_bytes(),
    );
    assert_status(&put, 201, "rules");
    let s = wait_for("active", 1.0);
    assert_eq!(
        sample(
            &s,
            "presenced_subscriptions",
            "package=presence,state=pending"
        ),
        0.0
    );
}

/// SIP authentication outcomes: a PUBLISH without credentials (challenged) and one with a wrong
/// answer (wrong, and challenged again).
#[test]
fn sip_auth_outcomes_are_counted() {
    if !has_parser() {
        return;
    }
    let data = common::temp_dir("metrics-auth");
    common::add_user(&data, "sip:alice@example.com", "secret");
    let server = Server::start_on("", &[], Some(&data));
    let peer = UdpPeer::new(server.udp);
    let publish = || {
        peer.req("PUBLISH", "sip:alice@example.com")
            .set("From", "<sip:alice@example.com>;tag=m")
            .set("Event", "presence")
            .body(
                "application/pidf+xml",
                &pidf("sip:alice@example.com", "t", "open", "x"),
            )
    };
    assert_eq!(peer.call(&publish()).status(), 401);
    let wrong = publish().set(
        "Authorization",
        "Digest username=\"alice\", realm=\"example.com\", nonce=\"n\", uri=\"sip:alice@example.com\", \
         response=\"00\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c\"",
    );
    assert_eq!(peer.call(&wrong).status(), 401);
    let http = Xcap::new(server.http);
    let deadline = Instant::now() + Duration::from_secs(20);
    let s = loop {
        let s = parse(&http.get("/metrics").text());
        if sample(&s, "presenced_sip_auth_total", "outcome=challenged") >= 2.0
            || Instant::now() > deadline
        {
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        sample(&s, "presenced_sip_auth_total", "outcome=challenged"),
        2.0
    );
    assert_eq!(sample(&s, "presenced_sip_auth_total", "outcome=wrong"), 1.0);
    assert_eq!(
        sample(&s, "presenced_sip_auth_total", "outcome=refused"),
        0.0
    );
}
