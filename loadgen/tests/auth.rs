//! SIP Digest against the real presenced binary when it has been built (`cargo build -p
//! presenced`; `cargo test --workspace` builds it): `loadgen users` writes the users file of a
//! run, `presenced user import` loads it into the server's data directory before it starts,
//! and the same run with `--auth-password` then publishes, subscribes, modifies and
//! unsubscribes through the server's challenges without an error: each user is challenged
//! once and reuses its nonce with a growing nonce count; with a one-second nonce lifetime the
//! stale nonces are answered too; a wrong password is refused and counted.

mod common;

use common::{presenced_binary, start_presenced_with};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn presenced() -> Option<PathBuf> {
    let bin = presenced_binary();
    if bin.is_none() {
        // `cargo test --workspace` (the CI command) always builds it: a skip there would hide
        // that nothing was checked
        assert!(
            std::env::var_os("CI").is_none(),
            "presenced not built (cargo build -p presenced)"
        );
        eprintln!("SKIP: presenced not built (cargo build -p presenced)");
    }
    bin
}

/// Run the loadgen binary; its stdout.
fn loadgen(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .expect("run loadgen");
    assert!(
        out.status.success(),
        "loadgen {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn report(args: &[&str]) -> Value {
    let out = loadgen(args);
    serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("loadgen JSON: {e}\n{}", String::from_utf8_lossy(&out)))
}

fn u(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} missing in {v:#}"))
}

/// `presenced <args> --data <data>` with `stdin`; its stdout.
fn presenced_cmd(bin: &Path, args: &[&str], data: &Path, stdin: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new(bin)
        .args(args)
        .arg("--data")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start presenced");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "presenced {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Import the users of `loadgen users run <run_args>` into `data`; check that all were added
/// and that `presenced user list` shows them.
fn import_users(bin: &Path, data: &Path, run_args: &[&str], expect: usize) {
    let users = loadgen(&[&["users", "run"], run_args].concat());
    let text = String::from_utf8(users.clone()).unwrap();
    assert_eq!(text.lines().count(), expect, "{text}");
    assert!(text.starts_with("sip:p1@example.com s3cret\n"), "{text}");
    let out = presenced_cmd(bin, &["user", "import", "-"], data, &users);
    assert!(
        out.contains(&format!(
            "imported {expect} users from -: {expect} added, 0 updated"
        )),
        "{out}"
    );
    let list = presenced_cmd(bin, &["user", "list"], data, b"");
    assert_eq!(list.lines().count(), expect, "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("sip:w1@example.com w1@example.com ")),
        "{list}"
    );
}

fn assert_clean(r: &Value) {
    assert!(r["cut_short"].is_null(), "{r:#}");
    assert_eq!((u(r, "/final_failed"), u(r, "/timeouts")), (0, 0), "{r:#}");
    assert_eq!(
        r["errors_by_status"].as_object().map(|m| m.len()),
        Some(0),
        "{r:#}"
    );
    assert_eq!(u(r, "/loadgen/parse_errors"), 0, "{r:#}");
    // an operation answered after its challenge counts once
    assert_eq!(u(r, "/requests_sent"), u(r, "/final_ok"), "{r:#}");
    assert_eq!(u(r, "/auth/refused"), 0, "{r:#}");
    assert_eq!(u(r, "/auth/retries"), u(r, "/auth/challenges"), "{r:#}");
    assert_eq!(u(r, "/notify/stale_watchers"), 0, "{r:#}");
    assert_eq!(u(r, "/notify/missing_first_notify"), 0, "{r:#}");
}

const RUN: &[&str] = &[
    "--presentities",
    "100",
    "--watchers",
    "200",
    "--publish-rate",
    "500",
    "--subscribe-rate",
    "1000",
    "--modify-rate",
    "200",
    "--duration",
    "2",
    "--unsubscribe-at-end",
    "true",
    "--auth-password",
    "s3cret",
];

#[test]
fn authenticated_publish_subscribe_modify_against_presenced() {
    let Some(bin) = presenced() else {
        return;
    };
    let (server, addr, _) = start_presenced_with(&bin, |_, data| {
        import_users(&bin, data, RUN, 300);
        Vec::new()
    });
    let (addr, pid) = (addr.to_string(), server.pid().to_string());
    let base = ["run", "--target", &addr, "--server-pid", &pid, "--json"];
    let r = report(&[&base[..], RUN, &["--max-secs", "20"]].concat());
    assert_clean(&r);
    // every user was challenged once (its first request) and then reused its nonce: every
    // other request carried credentials unprompted with a growing nonce count
    assert_eq!(u(&r, "/auth/users"), 300, "{r:#}");
    assert_eq!(u(&r, "/auth/challenges"), 300, "{r:#}");
    assert_eq!(u(&r, "/auth/stale_challenges"), 0, "{r:#}");
    assert_eq!(
        u(&r, "/auth/proactive"),
        u(&r, "/requests_sent") - 300,
        "{r:#}"
    );
    assert_eq!(u(&r, "/ops/publish_initial/ok"), 100, "{r:#}");
    assert_eq!(u(&r, "/ops/publish_modify/ok"), 400, "{r:#}");
    assert_eq!(u(&r, "/ops/subscribe_initial/ok"), 200, "{r:#}");
    assert_eq!(u(&r, "/ops/unsubscribe/ok"), 200, "{r:#}");
    // the server saw the identities: NOTIFYs of every watcher's presentity arrived
    assert!(u(&r, "/notify/received") >= 400, "{r:#}");
    assert_eq!(
        u(&r, "/notify/new_state"),
        u(&r, "/notify/expected"),
        "{r:#}"
    );
    assert!(u(&r, "/notify/new_state") >= 800, "{r:#}");
    // one datagram out per request and per NOTIFY answer, the retries included
    assert_eq!(
        u(&r, "/loadgen/msgs_sent"),
        u(&r, "/requests_sent")
            + 300
            + u(&r, "/retransmissions")
            + u(&r, "/notify/received")
            + u(&r, "/notify/retransmitted")
            + u(&r, "/notify/unknown_dialog"),
        "{r:#}"
    );

    // a wrong password: challenged, answered once, refused, and counted as an error
    let bad = report(
        &[
            &base[..],
            &[
                "--presentities",
                "5",
                "--publish-rate",
                "100",
                "--auth-password",
                "wrong",
            ],
            &["--max-secs", "20"],
        ]
        .concat(),
    );
    assert_eq!(u(&bad, "/final_failed"), 5, "{bad:#}");
    assert_eq!(u(&bad, "/errors_by_status/401"), 5, "{bad:#}");
    assert_eq!(
        (
            u(&bad, "/auth/challenges"),
            u(&bad, "/auth/retries"),
            u(&bad, "/auth/refused")
        ),
        (10, 5, 5),
        "{bad:#}"
    );
    drop(server);
}

#[test]
fn stale_nonces_are_answered_with_the_new_one() {
    let Some(bin) = presenced() else {
        return;
    };
    // 20 presentities modifying 10 times each over 4 s, 20 watchers: nonces die after 1 s
    let run: &[&str] = &[
        "--presentities",
        "20",
        "--watchers",
        "20",
        "--publish-rate",
        "200",
        "--subscribe-rate",
        "200",
        "--modify-rate",
        "50",
        "--duration",
        "4",
        "--unsubscribe-at-end",
        "true",
        "--auth-password",
        "s3cret",
    ];
    let (server, addr, _) = start_presenced_with(&bin, |dir, data| {
        import_users(&bin, data, run, 40);
        let cfg = dir.join("short-nonces.toml");
        std::fs::write(&cfg, "[sip]\nnonce_lifetime_secs = 1\n").unwrap();
        vec![OsString::from("-c"), cfg.into_os_string()]
    });
    let (addr, pid) = (addr.to_string(), server.pid().to_string());
    let r = report(
        &[
            &["run", "--target", &addr, "--server-pid", &pid, "--json"][..],
            run,
            &["--max-secs", "20"],
        ]
        .concat(),
    );
    drop(server);
    assert_clean(&r);
    assert_eq!(u(&r, "/auth/users"), 40, "{r:#}");
    assert!(u(&r, "/auth/stale_challenges") > 0, "{r:#}");
    assert_eq!(
        u(&r, "/auth/challenges"),
        40 + u(&r, "/auth/stale_challenges"),
        "{r:#}"
    );
    assert_eq!(u(&r, "/ops/publish_modify/ok"), 200, "{r:#}");
    assert_eq!(
        u(&r, "/notify/new_state"),
        u(&r, "/notify/expected"),
        "{r:#}"
    );
}
