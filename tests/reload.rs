//! SIGHUP: the server reads its configuration file again, applies what can change while it
//! serves (the SIP trusted peers; the log filter too), says which changed keys wait for a restart,
//! and keeps its settings when the new file does not load.

mod common;

use std::time::{Duration, Instant};

use common::{Server, UdpPeer, add_user, pidf, temp_dir, unique};

const ALICE: &str = "sip:alice@example.com";

fn asserted_publish(peer: &UdpPeer) -> u16 {
    let req = peer
        .req("PUBLISH", ALICE)
        .set("From", &format!("<{ALICE}>;tag={}", unique("p")))
        .set("Event", "presence")
        .set("Expires", "600")
        .set("P-Asserted-Identity", &format!("<{ALICE}>"))
        .body("application/pidf+xml", &pidf(ALICE, "t1", "open", "here"));
    peer.call(&req).status()
}

fn sighup(s: &Server) {
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(s.pid() as i32, libc::SIGHUP) };
}

/// Wait (bounded) until the server's log contains `text`.
fn logged(s: &Server, text: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if s.stderr().contains(text) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn sighup_applies_trusted_peers_and_names_what_needs_a_restart() {
    let data = temp_dir("reload");
    add_user(&data, ALICE, "wonderland");
    // info: the reload's report (a --log on the command line outlasts reloads)
    let mut s = Server::start_on("", &["--log", "info"], Some(&data));
    let peer = UdpPeer::new(s.udp);
    // users exist and 127.0.0.1 is not trusted: the asserted identity is not taken
    assert_eq!(asserted_publish(&peer), 401);

    let file = s.dir.join("presenced.toml");
    std::fs::write(
        &file,
        "[sip]\ntrusted_peers = [\"127.0.0.1\"]\n\
         [engine]\nmax_batch = 1000\n[privacy]\ndefault = \"allow\"\n",
    )
    .unwrap();
    sighup(&s);
    assert!(
        logged(&s, "reload: sip.trusted_peers changed"),
        "{}",
        s.stderr()
    );
    assert!(logged(&s, "engine.max_batch"), "{}", s.stderr());
    let log = s.stderr();
    assert!(
        log.contains("applied only at the next restart: engine.max_batch"),
        "{log}"
    );
    assert!(!log.contains("log.level changed"), "{log}");
    assert_eq!(asserted_publish(&peer), 200);

    // a file that does not load changes nothing, and the server goes on
    std::fs::write(&file, "[sip]\ntrusted_peers = [\"not an address\"]\n").unwrap();
    sighup(&s);
    assert!(
        logged(&s, "configuration not loaded, nothing changed"),
        "{}",
        s.stderr()
    );
    assert_eq!(asserted_publish(&peer), 200);
    assert!(s.alive());
    assert_eq!(s.stop(), Some(0));
}
