//! Smoke tests: the `loadgen` binary plays a 2-second workload at a low rate against (a) the
//! in-process stateless responder and (b) the real presenced binary when it has been built
//! (`cargo build -p presenced`; `cargo test --workspace` builds it), and its JSON report shows
//! no errors and non-empty latency histograms.

mod common;

use common::{presenced_binary, start_presenced};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use loadgen::responder::Responder;
use serde_json::Value;

fn loadgen(args: &[&str]) -> Value {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .args(["--json", "--max-secs", "20"])
        .output()
        .expect("run loadgen");
    assert!(
        out.status.success(),
        "loadgen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("loadgen took {:?}", started.elapsed());
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "loadgen JSON: {e}\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn u(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} missing in {v:#}"))
}

fn assert_clean(r: &Value) {
    assert_eq!(u(r, "/final_failed"), 0, "{r:#}");
    assert_eq!(u(r, "/timeouts"), 0, "{r:#}");
    assert_eq!(
        r["errors_by_status"].as_object().map(|m| m.len()),
        Some(0),
        "{r:#}"
    );
    assert_eq!(u(r, "/loadgen/parse_errors"), 0, "{r:#}");
    assert!(r["cut_short"].is_null(), "{r:#}");
    assert!(u(r, "/requests_sent") > 0);
    assert_eq!(u(r, "/requests_sent"), u(r, "/final_ok"), "{r:#}");
    assert!(
        u(r, "/latency_ms/count") > 0,
        "empty latency histogram: {r:#}"
    );
}

#[test]
fn run_against_the_responder() {
    let resp = Responder::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = resp.local.to_string();
    let stats = resp.stats.clone();
    let (stop, handle) = resp.spawn(Duration::from_secs(30));
    // 200 initial PUBLISHes at 200/s, 100 watchers at 500/s, then 2 s of modifies at 100/s
    let r = loadgen(&[
        "run",
        "--target",
        &addr,
        "--presentities",
        "200",
        "--publish-rate",
        "200",
        "--watchers",
        "100",
        "--subscribe-rate",
        "500",
        "--modify-rate",
        "100",
        "--duration",
        "2",
    ]);
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap().unwrap();
    assert_clean(&r);
    assert_eq!(u(&r, "/ops/publish_initial/ok"), 200);
    assert_eq!(u(&r, "/ops/subscribe_initial/ok"), 100);
    assert!(u(&r, "/ops/publish_modify/ok") >= 190, "{r:#}");
    assert!(u(&r, "/ops/publish_modify/latency_ms/count") > 0);
    // the responder keeps no dialogs: no NOTIFY is expected or missing
    assert_eq!(u(&r, "/notify/missing_first_notify"), 0);
    assert_eq!(
        stats.requests.load(Ordering::Relaxed),
        u(&r, "/requests_sent") + u(&r, "/retransmissions")
    );
}

#[test]
fn loopback_only() {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["run", "--target", "192.0.2.1:5060"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("loopback"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn fanout_against_presenced() {
    fanout_against_presenced_over("udp");
}

#[test]
fn fanout_against_presenced_over_tcp() {
    // one TCP connection per loadgen socket, carrying many user agents: requests, responses
    // and the server's NOTIFYs all travel on it (the server's listener shares the UDP port)
    fanout_against_presenced_over("tcp");
}

fn fanout_against_presenced_over(transport: &str) {
    let Some(bin) = presenced_binary() else {
        // `cargo test --workspace` (the CI command) always builds it: a skip there would hide
        // that nothing was checked
        assert!(
            std::env::var_os("CI").is_none(),
            "presenced not built (cargo build -p presenced)"
        );
        eprintln!("SKIP: presenced not built (cargo build -p presenced)");
        return;
    };
    let (server, addr, _) = start_presenced(&bin);
    let pid = server.pid().to_string();
    let scenario = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/loadgen-fanout.toml");
    // 50 presentities, 200 watchers (4 each), 2 s of modifies at 100/s, then unsubscribe
    let r = loadgen(&[
        "run",
        "--scenario",
        scenario.to_str().unwrap(),
        "--target",
        &addr.to_string(),
        "--server-pid",
        &pid,
        "--presentities",
        "50",
        "--publish-rate",
        "500",
        "--watchers",
        "200",
        "--subscribe-rate",
        "1000",
        "--modify-rate",
        "100",
        "--duration",
        "2",
        "--transport",
        transport,
    ]);
    drop(server);
    assert_clean(&r);
    if transport == "tcp" {
        assert_eq!(
            u(&r, "/ops/publish_modify/retransmissions"),
            0,
            "no Timer E over TCP"
        );
    }
    assert_eq!(u(&r, "/ops/publish_initial/ok"), 50);
    assert_eq!(u(&r, "/ops/subscribe_initial/ok"), 200);
    assert_eq!(u(&r, "/ops/unsubscribe/ok"), 200);
    assert!(u(&r, "/ops/publish_modify/ok") >= 190, "{r:#}");
    // every watcher got its first NOTIFY and then the NOTIFYs of the modifies
    assert_eq!(u(&r, "/notify/missing_first_notify"), 0, "{r:#}");
    assert_eq!(u(&r, "/notify/stale_watchers"), 0, "{r:#}");
    assert_eq!(u(&r, "/notify/subscribe_to_first_notify_ms/count"), 200);
    assert!(
        u(&r, "/notify/publish_to_notify_ms/count") > 0,
        "no PUBLISH->NOTIFY latency: {r:#}"
    );
    assert!(u(&r, "/server/ops") > 0);
    assert!(u(&r, "/server/rss_kb_max") > 0);
}

#[test]
fn fanout_with_rules_against_presenced() {
    let Some(bin) = presenced_binary() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "presenced not built (cargo build -p presenced)"
        );
        eprintln!("SKIP: presenced not built (cargo build -p presenced)");
        return;
    };
    let (server, addr, http) = start_presenced(&bin);
    let scenario =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/loadgen-fanout-rules.toml");
    // 50 presentities with 4 watchers each: 3 on the list `allowed`, the last one not
    let r = loadgen(&[
        "run",
        "--scenario",
        scenario.to_str().unwrap(),
        "--target",
        &addr.to_string(),
        "--xcap",
        &format!("http://{http}"),
        "--presentities",
        "50",
        "--publish-rate",
        "500",
        "--watchers",
        "200",
        "--subscribe-rate",
        "1000",
        "--modify-rate",
        "100",
        "--duration",
        "2",
    ]);
    drop(server);
    // the server took every document (it checks them against the schemas)
    assert_eq!(u(&r, "/rules/documents"), 100, "{r:#}");
    assert_eq!(u(&r, "/rules/unlisted_watchers"), 50, "{r:#}");
    assert_clean(&r);
    assert_eq!(u(&r, "/ops/subscribe_initial/ok"), 200);
    assert_eq!(u(&r, "/notify/missing_first_notify"), 0, "{r:#}");
    assert_eq!(u(&r, "/notify/stale_watchers"), 0, "{r:#}");
    assert_eq!(u(&r, "/subscriptions/pending_with_body"), 0, "{r:#}");
    let (active, pending) = (
        u(&r, "/subscriptions/active"),
        u(&r, "/subscriptions/pending"),
    );
    assert_eq!(active + pending, 200, "{r:#}");
    // exactly each presentity's last watcher (not in its allowed list) waits
    assert_eq!(pending, 50, "{r:#}");
    assert_eq!(u(&r, "/subscriptions/unexpected_state"), 0, "{r:#}");
    assert_eq!(u(&r, "/subscriptions/pending_with_body"), 0, "{r:#}");
    assert!(u(&r, "/notify/publish_to_notify_ms/count") > 0, "{r:#}");
}

/// Three initial PUBLISHes at 10/s with a short Timer F (1.2 s), for targets that never answer
/// or fail every request.
fn three_publishes() -> loadgen::scenario::Scenario {
    let mut s = loadgen::scenario::Scenario::default();
    s.population.presentities = 3;
    s.publish.rate = 10.0;
    s.run.timer_f_ms = 1200;
    s.run.settle_secs = 0.5;
    s.run.drain_secs = 3.0;
    // far past the ~3 s the run needs: a guard against a run that never ends, not a timing
    s.run.max_secs = 60.0;
    s
}

fn options_for(target: std::net::SocketAddr, label: &str) -> loadgen::run::Options {
    loadgen::run::Options {
        target,
        server_pid: None,
        namespace: String::new(),
        progress: false,
        label: label.into(),
        xcap: None,
    }
}

#[test]
fn retransmits_and_times_out_against_a_silent_target() {
    // a socket that reads nothing and answers nothing (and keeps ICMP away)
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let s = three_publishes();
    let opts = options_for(silent.local_addr().unwrap(), "silent");
    let r = loadgen::run::run(&s, &opts).unwrap();
    // the run ends by itself once Timer F has closed every transaction, not at run.max_secs
    assert!(r.cut_short.is_none(), "{r:?}");
    // RFC 3261 §17.1.2.2: Timer E at T1 = 500 ms, then 1 s later (past Timer F at 1.2 s)
    assert_eq!(r.requests_sent, 3);
    assert_eq!(r.retransmissions, 3);
    assert_eq!(r.timeouts, 3);
    assert_eq!(r.final_ok, 0);
    assert_eq!(r.errors_by_status.get("timeout"), Some(&3));
    assert!((r.error_pct - 100.0).abs() < 1e-9);
}

#[test]
fn over_tcp_times_out_without_retransmitting() {
    // a listener that takes the connection and the bytes but never answers
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = silent.local_addr().unwrap();
    let sink = std::thread::spawn(move || {
        silent.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut c = loop {
            match silent.accept() {
                Ok((c, _)) => break c,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("loadgen did not connect: {e}"),
            }
        };
        c.set_nonblocking(false).unwrap();
        let mut got = Vec::new();
        c.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
        let mut buf = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut c, &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got
    });
    let mut s = three_publishes();
    s.run.sockets = 1;
    s.run.transport = loadgen::scenario::LinkKind::Tcp;
    let opts = options_for(target, "silent-tcp");
    let r = loadgen::run::run(&s, &opts).unwrap();
    // RFC 3261 §17.1.2.2: over a reliable transport only Timer F runs
    assert_eq!(r.requests_sent, 3);
    assert_eq!(r.retransmissions, 0);
    assert_eq!(r.timeouts, 3);
    let wire = String::from_utf8(sink.join().unwrap()).unwrap();
    assert_eq!(wire.matches("PUBLISH sip:").count(), 3, "{wire}");
    assert_eq!(wire.matches("Via: SIP/2.0/TCP ").count(), 3, "{wire}");
}

#[test]
fn counts_every_answer_of_a_failing_responder_as_an_error() {
    let resp = Responder::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    assert!(
        resp.answering(180).is_err(),
        "a provisional status never ends a request"
    );
    let resp = Responder::bind("127.0.0.1:0".parse().unwrap())
        .unwrap()
        .answering(500)
        .unwrap();
    let opts = options_for(resp.local, "failing");
    let (stop, handle) = resp.spawn(Duration::from_secs(30));
    let r = loadgen::run::run(&three_publishes(), &opts).unwrap();
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap().unwrap();
    assert_eq!((r.requests_sent, r.final_ok, r.final_failed), (3, 0, 3));
    assert_eq!(r.timeouts, 0);
    assert_eq!(r.errors_by_status.get("500"), Some(&3));
    assert!((r.error_pct - 100.0).abs() < 1e-9);
}
