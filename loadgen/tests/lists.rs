//! List subscriptions (RFC 4662) against the real presenced binary when it has been built
//! (`cargo build -p presenced`; `cargo test --workspace` builds it): config/loadgen-lists-smoke.toml
//! writes 50 lists of 5 members over 100 presentities over XCAP, subscribes to each once,
//! modifies for 2 s and unsubscribes; every member update must arrive, with no error, one
//! full-state NOTIFY per list and one final one.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use loadgen::scenario::Scenario;

/// presenced as built by `cargo build -p presenced` (debug first, then release).
fn presenced_binary() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    ["debug", "release"]
        .iter()
        .map(|p| target.join(p).join("presenced"))
        .find(|p| p.is_file())
}

struct Server(Child, PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) of our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                let _ = std::fs::remove_dir_all(&self.1);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

/// A fresh presenced letting everyone watch (the members have no pres-rules): the server, its
/// SIP address and its HTTP address.
fn start_presenced(bin: &PathBuf) -> (Server, SocketAddr, SocketAddr) {
    let dir = std::env::temp_dir().join(format!("loadgen-lists-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(bin)
        .args([
            "--sip",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--log",
            "warn",
        ])
        .args(["--privacy-default", "allow", "--data"])
        .arg(dir.join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start presenced");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child, dir);
    // through a channel, so that a server that never gets ready fails at the deadline
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut sip, mut http) = (None, None);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("presenced ready within 30 s");
        if let Some(a) = line.strip_prefix("presenced listening sip/udp ") {
            sip = Some(a.parse().unwrap());
        } else if let Some(a) = line.strip_prefix("presenced listening http ") {
            http = Some(a.parse().unwrap());
        } else if line == "presenced ready" {
            break;
        }
    }
    (server, sip.unwrap(), http.unwrap())
}

#[test]
fn list_subscriptions_against_presenced() {
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
    let (server, sip, http) = start_presenced(&bin);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/loadgen-lists-smoke.toml");
    let s = Scenario::load(&path).unwrap();
    assert_eq!(
        (
            s.population.presentities,
            s.population.watchers,
            s.lists.members
        ),
        (100, 50, 5)
    );
    let opts = loadgen::run::Options {
        target: sip,
        server_pid: Some(server.0.id()),
        namespace: String::new(),
        progress: false,
        label: "lists".into(),
        xcap: Some(format!("http://{http}")),
    };
    let r = loadgen::run::run(&s, &opts).unwrap();
    drop(server);
    let l = r.lists.as_ref().expect("lists report");
    // the server took every document (it checks them against the schema)
    assert_eq!(
        (l.documents, l.lists, l.members_per_list),
        (50, 50, 5),
        "{l:#?}"
    );
    assert_eq!((l.memberships_min, l.memberships_max), (2, 3), "{l:#?}");
    // no error of any kind
    assert!(r.cut_short.is_none(), "{r:#?}");
    assert_eq!((r.final_failed, r.timeouts), (0, 0), "{r:#?}");
    assert!(r.errors_by_status.is_empty(), "{r:#?}");
    assert_eq!(r.requests_sent, r.final_ok, "{r:#?}");
    assert_eq!(r.loadgen.parse_errors, 0, "{r:#?}");
    assert_eq!(r.ops["subscribe_initial"].ok, 50);
    assert_eq!(r.ops["unsubscribe"].ok, 50);
    assert_eq!(r.notify.missing_first_notify, 0, "{r:#?}");
    assert_eq!(r.subscriptions.unexpected_state, 0, "{r:#?}");
    // one full-state NOTIFY per list at its start (nothing refreshed or edited), one at its end
    assert_eq!(l.full_state, 50, "{l:#?}");
    assert_eq!(l.terminal, 50, "{l:#?}");
    assert_eq!(l.notifies, l.full_state + l.partial + l.terminal, "{l:#?}");
    assert_eq!(l.missing_in_first_notify, 0, "{l:#?}");
    assert_eq!(
        (
            l.malformed,
            l.no_body,
            l.foreign_parts,
            l.parts_without_token
        ),
        (0, 0, 0, 0)
    );
    // every member is active (privacy default allow)
    assert_eq!(
        (l.instances_pending, l.instances_terminated),
        (0, 0),
        "{l:#?}"
    );
    // every modify reached every list holding its presentity: 100 modifies round-robin, p1-p50
    // on 3 lists, p51-p100 on 2
    assert_eq!(r.ops["publish_modify"].ok, 100, "{r:#?}");
    assert_eq!(l.expected_member_updates, 250, "{l:#?}");
    assert_eq!(l.lost_member_updates, 0, "{l:#?}");
    assert_eq!(
        l.delivered_member_updates, l.expected_member_updates,
        "{l:#?}"
    );
    assert_eq!((l.stale_members, l.stale_lists), (0, 0), "{l:#?}");
    assert_eq!(l.publish_to_list_notify_ms.count, l.new_member_parts);
    assert!(l.notify_rate > 0.0 && l.parts_rate > 0.0, "{l:#?}");
    assert!(r.table().contains("lost 0;"), "{}", r.table());
}
