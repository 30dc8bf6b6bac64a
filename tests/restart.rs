//! Restart without loss (`storage.durability`): what a PUBLISH was answered 200 for survives
//! `kill -9` of the server, with its SIP-ETag and its expiry; what expired while the server
//! was down is gone when it is back; with durability off, a restart loses everything.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::{Msg, Server, Subscriber, UdpPeer, assert_valid_xml, pidf, temp_dir};

const ALICE: &str = "sip:alice@example.com";

fn publish(peer: &UdpPeer, body: Option<&[u8]>, etag: Option<&str>, expires: u32) -> Msg {
    let mut r = peer
        .req("PUBLISH", ALICE)
        .set("Event", "presence")
        .set("Expires", &expires.to_string());
    if let Some(b) = body {
        r = r.body("application/pidf+xml", b);
    }
    if let Some(t) = etag {
        r = r.set("SIP-If-Match", t);
    }
    peer.call(&r)
}

/// The document a new watcher of alice is sent first.
fn alice_seen(server: &Server) -> String {
    let (w, resp) = Subscriber::subscribe(
        server,
        ALICE,
        "sip:bob@example.com",
        "presence",
        "application/pidf+xml",
        600,
        |r| r,
    );
    assert_eq!(resp.status(), 200, "{}", resp.text());
    let n = w.notify();
    assert_valid_xml(&n.body);
    String::from_utf8_lossy(&n.body).into_owned()
}

fn etag(m: &Msg) -> String {
    assert_eq!(m.status(), 200, "{}", m.text());
    m.header("SIP-ETag").expect("SIP-ETag").to_owned()
}

const SHORT: &str = "[presence]\npublish_min_expires = 1\n";

#[test]
fn publications_survive_kill_9_with_their_entity_tags() {
    let data = temp_dir("restart").join("data");
    let mut s = Server::start_on("", &[], Some(&data));
    let p = UdpPeer::new(s.udp);
    let e1 = etag(&publish(
        &p,
        Some(&pidf(ALICE, "t1", "open", "first")),
        None,
        3600,
    ));
    // modified: the latest document is the one kept
    let e2 = etag(&publish(
        &p,
        Some(&pidf(ALICE, "t1", "open", "at-lunch")),
        Some(&e1),
        3600,
    ));
    // a second source, published and then removed: it stays removed
    let gone = etag(&publish(
        &p,
        Some(&pidf(ALICE, "t2", "open", "removed")),
        None,
        3600,
    ));
    assert_eq!(publish(&p, None, Some(&gone), 0).status(), 200);
    s.kill9();

    let s = Server::start_on("", &[], Some(&data));
    let seen = alice_seen(&s);
    assert!(seen.contains("at-lunch"), "{seen}");
    assert!(
        !seen.contains("first") && !seen.contains("removed"),
        "{seen}"
    );
    // the entity tag the source holds still names its publication: refresh, then modify
    let p = UdpPeer::new(s.udp);
    let e3 = etag(&publish(&p, None, Some(&e2), 3600));
    assert_ne!(e3, e2);
    let e4 = etag(&publish(
        &p,
        Some(&pidf(ALICE, "t1", "closed", "after-restart")),
        Some(&e3),
        3600,
    ));
    // tags that were replaced before the restart stay invalid
    assert_eq!(publish(&p, None, Some(&e1), 3600).status(), 412);
    assert_eq!(publish(&p, None, Some(&gone), 3600).status(), 412);
    drop(s);

    // and once more, after a clean stop
    let s = Server::start_on("", &[], Some(&data));
    let seen = alice_seen(&s);
    assert!(seen.contains("after-restart"), "{seen}");
    let p = UdpPeer::new(s.udp);
    assert_eq!(publish(&p, None, Some(&e4), 0).status(), 200);
}

#[test]
fn what_expired_while_the_server_was_down_is_gone() {
    let data = temp_dir("restart").join("data");
    let mut s = Server::start_on(SHORT, &[], Some(&data));
    let p = UdpPeer::new(s.udp);
    etag(&publish(
        &p,
        Some(&pidf(ALICE, "t1", "open", "brief")),
        None,
        1,
    ));
    etag(&publish(
        &p,
        Some(&pidf(ALICE, "t2", "open", "lasting")),
        None,
        3600,
    ));
    s.kill9();
    // well past the one-second publication's expiry
    std::thread::sleep(Duration::from_millis(2500));
    let s = Server::start_on(SHORT, &[], Some(&data));
    let seen = alice_seen(&s);
    assert!(seen.contains("lasting"), "{seen}");
    assert!(!seen.contains("brief"), "{seen}");
    assert!(!s.stderr().contains("unreadable"), "{}", s.stderr());
}

#[test]
fn async_durability_keeps_what_is_older_than_its_window() {
    let data = temp_dir("restart").join("data");
    let cfg = "[storage]\nasync_window_ms = 50\n";
    let mut s = Server::start_on(cfg, &["--durability", "async"], Some(&data));
    let p = UdpPeer::new(s.udp);
    let e = etag(&publish(
        &p,
        Some(&pidf(ALICE, "t1", "open", "written")),
        None,
        3600,
    ));
    // what is older than the window is on disk (ten windows here)
    std::thread::sleep(Duration::from_millis(500));
    s.kill9();
    let s = Server::start_on("", &[], Some(&data));
    assert!(alice_seen(&s).contains("written"));
    let p = UdpPeer::new(s.udp);
    assert_eq!(publish(&p, None, Some(&e), 3600).status(), 200);
}

#[test]
fn a_clean_stop_loses_nothing_even_in_async_mode() {
    let data = temp_dir("restart").join("data");
    // a window longer than the test: only the stop itself can have written the change
    let cfg = "[storage]\nasync_window_ms = 60000\n";
    let mut s = Server::start_on(cfg, &["--durability", "async"], Some(&data));
    let p = UdpPeer::new(s.udp);
    let e = etag(&publish(
        &p,
        Some(&pidf(ALICE, "t1", "open", "flushed")),
        None,
        3600,
    ));
    assert_eq!(s.stop(), Some(0));
    let s = Server::start_on("", &[], Some(&data));
    assert!(alice_seen(&s).contains("flushed"));
    let p = UdpPeer::new(s.udp);
    assert_eq!(publish(&p, None, Some(&e), 3600).status(), 200);
}

#[test]
fn with_durability_off_a_restart_loses_publications() {
    let data = temp_dir("restart").join("data");
    let mut s = Server::start_on("", &["--durability", "off"], Some(&data));
    let p = UdpPeer::new(s.udp);
    let e = etag(&publish(
        &p,
        Some(&pidf(ALICE, "t1", "open", "volatile")),
        None,
        3600,
    ));
    s.kill9();
    let s = Server::start_on("", &["--durability", "off"], Some(&data));
    assert!(!alice_seen(&s).contains("volatile"));
    let p = UdpPeer::new(s.udp);
    assert_eq!(publish(&p, None, Some(&e), 3600).status(), 412);
}

#[test]
fn a_bad_durability_setting_is_refused_at_start() {
    let dir = temp_dir("restart");
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "[storage]\ndurability = \"sometimes\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_presenced"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("durability") && err.contains("sync"), "{err}");
}

/// The newest segment file of the state journal under `data`.
fn last_segment(data: &std::path::Path) -> std::path::PathBuf {
    let mut segs: Vec<_> = std::fs::read_dir(data.join("state"))
        .expect("state journal directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    segs.pop().expect("a segment")
}

#[test]
fn a_torn_final_write_is_dropped_with_a_log_line_and_the_rest_kept() {
    let data = temp_dir("restart").join("data");
    let mut s = Server::start_on("", &[], Some(&data));
    let p = UdpPeer::new(s.udp);
    let kept = etag(&publish(
        &p,
        Some(&pidf(ALICE, "t1", "open", "kept")),
        None,
        3600,
    ));
    etag(&publish(
        &p,
        Some(&pidf(ALICE, "t2", "open", "torn")),
        None,
        3600,
    ));
    s.kill9();
    // a crash in the middle of the last write: its batch loses its final bytes
    let seg = last_segment(&data);
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 3).unwrap();
    drop(f);

    let s = Server::start_on("", &[], Some(&data));
    let seen = alice_seen(&s);
    assert!(seen.contains("kept") && !seen.contains("torn"), "{seen}");
    assert!(s.stderr().contains("torn tail dropped"), "{}", s.stderr());
    let p = UdpPeer::new(s.udp);
    assert_eq!(publish(&p, None, Some(&kept), 3600).status(), 200);
}

/// Send `req`; its final response, or None once the server answers nothing for 2 s (it is
/// gone).
fn send_until_gone(peer: &UdpPeer, req: &common::Req) -> Option<Msg> {
    peer.send(&req.bytes());
    let call_id = req.get("Call-ID").unwrap();
    loop {
        let m = peer.recv(Duration::from_secs(2))?;
        if m.start.starts_with("SIP/2.0 ")
            && m.header("Call-ID") == Some(call_id)
            && m.status() >= 200
        {
            return Some(m);
        }
    }
}

/// One request of a load: the acknowledged item, or None once the server answers nothing (it
/// is gone); any other answer fails the test.
type LoadStep<T> = fn(server: SocketAddr, thread: usize, i: usize) -> Option<T>;

/// On a server on a fresh data directory, run `step(server, thread, 0..)` from four threads at
/// once, each as fast as its answers come, and kill -9 the server at a random point of the
/// load (printed, to replay a failure); the killed server, its data and what was acknowledged.
fn crash_under_load<T: Send + 'static>(step: LoadStep<T>) -> (Server, PathBuf, Vec<T>) {
    use std::hash::{BuildHasher, RandomState};
    let data = temp_dir("restart").join("data");
    let mut s = Server::start_on("", &[], Some(&data));
    let server = s.udp;
    let workers: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || (0..).map_while(|i| step(server, t, i)).collect::<Vec<T>>())
        })
        .collect();
    let after = 300 + RandomState::new().hash_one(0u8) % 700;
    eprintln!("killing presenced after {after} ms of load");
    std::thread::sleep(Duration::from_millis(after));
    s.kill9();
    let acked: Vec<T> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(
        acked.len() >= 4,
        "the load ran: {} acknowledged",
        acked.len()
    );
    (s, data, acked)
}

/// A presentity's initial PUBLISH: its AoR and entity tag.
fn publish_step(server: SocketAddr, t: usize, i: usize) -> Option<(String, String)> {
    let peer = UdpPeer::new(server);
    let aor = format!("sip:load{t}x{i}@example.com");
    let req = peer
        .req("PUBLISH", &aor)
        .set("Event", "presence")
        .set("Expires", "3600")
        .body("application/pidf+xml", &pidf(&aor, "t", "open", "load"));
    let m = send_until_gone(&peer, &req)?;
    assert_eq!(m.status(), 200, "{}", m.text());
    Some((aor, m.header("SIP-ETag").unwrap().to_owned()))
}

#[test]
fn every_publish_answered_200_before_a_crash_under_load_is_kept() {
    let (_, data, acked) = crash_under_load(publish_step);
    let s = Server::start_on("", &[], Some(&data));
    let p = UdpPeer::new(s.udp);
    for (aor, tag) in &acked {
        let refresh = p
            .req("PUBLISH", aor)
            .set("Event", "presence")
            .set("Expires", "3600")
            .set("SIP-If-Match", tag);
        let r = p.call(&refresh);
        assert_eq!(
            r.status(),
            200,
            "{aor} {tag} of {}: {}",
            acked.len(),
            r.text()
        );
    }
}

/// The number of a message's CSeq.
fn cseq(m: &Msg) -> u32 {
    m.header("CSeq")
        .and_then(|c| c.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("CSeq")
}

/// The tag of a header value.
fn tag(m: &Msg, header: &str) -> String {
    m.header(header)
        .and_then(common::tag_of)
        .unwrap_or_else(|| panic!("{header} tag in {}", m.text()))
}

/// A server started again on the data and SIP port of `old` (the peers of restored dialogs
/// keep sending there).
fn restart_on(old: &Server, config: &str, data: &std::path::Path) -> Server {
    let s = Server::start_on(config, &["--sip", &old.udp.to_string()], Some(data));
    assert_eq!(s.udp, old.udp);
    s
}

#[test]
fn a_subscription_goes_on_in_its_dialog_after_kill_9() {
    let data = temp_dir("restart").join("data");
    let mut s = Server::start_on("", &[], Some(&data));
    let p = UdpPeer::new(s.udp);
    let e = etag(&publish(
        &p,
        Some(&pidf(ALICE, "t1", "open", "before")),
        None,
        3600,
    ));
    let (mut w, resp) = Subscriber::subscribe(
        &s,
        ALICE,
        "sip:bob@example.com",
        "presence",
        "application/pidf+xml",
        600,
        |r| r,
    );
    assert_eq!(resp.status(), 200);
    let first = w.notify();
    assert!(String::from_utf8_lossy(&first.body).contains("before"));
    s.kill9();

    let s = restart_on(&s, "", &data);
    // the restored subscription is told the current state, in the same dialog
    let again = w.notify();
    assert!(cseq(&again) > cseq(&first), "{}", again.text());
    assert_eq!(tag(&again, "From"), tag(&first, "From"));
    assert_eq!(tag(&again, "To"), tag(&first, "To"));
    let state = again.header("Subscription-State").unwrap();
    assert!(state.starts_with("active;expires="), "{state}");
    assert!(String::from_utf8_lossy(&again.body).contains("before"));
    // a change on the new server reaches it
    let p = UdpPeer::new(s.udp);
    etag(&publish(
        &p,
        Some(&pidf(ALICE, "t1", "closed", "after")),
        Some(&e),
        3600,
    ));
    let changed = w.notify();
    assert!(cseq(&changed) > cseq(&again));
    assert!(String::from_utf8_lossy(&changed.body).contains("after"));
    // in-dialog refresh and unsubscribe
    assert_eq!(w.resubscribe(600).status(), 200);
    w.notify();
    assert_eq!(w.resubscribe(0).status(), 200);
    let last = w.notify();
    assert!(
        last.header("Subscription-State")
            .unwrap()
            .starts_with("terminated"),
        "{}",
        last.text()
    );
}

#[test]
fn a_subscription_that_expired_while_the_server_was_down_is_ended() {
    let cfg = "[presence]\nsubscribe_min_expires = 1\n";
    let data = temp_dir("restart").join("data");
    let mut s = Server::start_on(cfg, &[], Some(&data));
    let (w, resp) = Subscriber::subscribe(
        &s,
        ALICE,
        "sip:bob@example.com",
        "presence",
        "application/pidf+xml",
        1,
        |r| r,
    );
    assert_eq!(resp.status(), 200);
    let first = w.notify();
    s.kill9();
    std::thread::sleep(Duration::from_millis(2500));
    let _s = restart_on(&s, cfg, &data);
    let end = w.notify();
    assert!(cseq(&end) > cseq(&first));
    assert_eq!(
        end.header("Subscription-State"),
        Some("terminated;reason=timeout")
    );
}

/// A watcher's SUBSCRIBE: its peer (its Contact), request and our To tag.
fn subscribe_step(
    server: SocketAddr,
    t: usize,
    i: usize,
) -> Option<(UdpPeer, common::Req, String)> {
    let peer = UdpPeer::new(server);
    // one watcher per subscription: the per-watcher limit stays out of it
    let req = common::presence_subscribe(&peer, &format!("sip:sub{t}x{i}@example.com"), 600).set(
        "From",
        &format!("<sip:w{t}x{i}@example.com>;tag={}", common::unique("w")),
    );
    let m = send_until_gone(&peer, &req)?;
    assert_eq!(m.status(), 200, "{}", m.text());
    let to = tag(&m, "To");
    Some((peer, req, to))
}

#[test]
fn every_subscribe_answered_200_before_a_crash_under_load_is_kept() {
    let (s, data, acked) = crash_under_load(subscribe_step);
    let _s = restart_on(&s, "", &data);
    for (peer, req, to_tag) in &acked {
        let to = format!("{};tag={to_tag}", req.get("To").unwrap());
        let refresh = req.clone().set("To", &to).set("CSeq", "2 SUBSCRIBE").set(
            "Via",
            &format!(
                "SIP/2.0/UDP {};branch=z9hG4bK{};rport",
                peer.addr(),
                common::unique("r")
            ),
        );
        let r = peer.call(&refresh);
        assert_eq!(r.status(), 200, "{} of {}: {}", to, acked.len(), r.text());
    }
}
