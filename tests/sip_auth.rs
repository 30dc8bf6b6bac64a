//! Who may PUBLISH and SUBSCRIBE, end to end over UDP: once a user exists, SIP Digest (RFC 3261
//! §22, RFC 8760) against the users `presenced user add` made (the XCAP ones), or a
//! P-Asserted-Identity from a trusted peer (RFC 3325); then an identity publishes only its own
//! presence and subscribes only as itself. Credentials are computed by an independent Digest
//! implementation (the `digest_auth` crate).

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::{
    Msg, PROVIDE_EVERYTHING, Req, Server, UdpPeer, Xcap, add_user, identity_one, pidf, pres_rule,
    put_pres_rules, temp_dir, unique,
};

const ALICE: &str = "sip:alice@example.com";
const BOB: &str = "sip:bob@example.com";

/// A data directory holding alice (password `wonderland`) and bob (`builder`).
fn users() -> std::path::PathBuf {
    let d = temp_dir("sip-auth");
    add_user(&d, ALICE, "wonderland");
    add_user(&d, BOB, "builder");
    d
}

fn publish_req(peer: &UdpPeer, aor: &str, from: &str) -> Req {
    peer.req("PUBLISH", aor)
        .set("From", &format!("<{from}>;tag={}", unique("p")))
        .set("Event", "presence")
        .set("Expires", "600")
        .body("application/pidf+xml", &pidf(aor, "t1", "open", "here"))
}

fn subscribe_req(peer: &UdpPeer, to: &str, from: &str) -> Req {
    peer.req("SUBSCRIBE", to)
        .set("From", &format!("{from};tag={}", unique("w")))
        .set("Event", "presence")
        .set("Accept", "application/pidf+xml")
        .set("Contact", &format!("<sip:w@{}>", peer.addr()))
        .set("Expires", "600")
}

/// `req` again as a new transaction: a fresh branch, the next CSeq.
fn again(req: &Req) -> Req {
    let via = req.get("Via").unwrap();
    let (head, _) = via.split_once(";branch=").unwrap();
    let n: u32 = req
        .get("CSeq")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    req.clone()
        .set(
            "Via",
            &format!("{head};branch=z9hG4bK{};rport", unique("b")),
        )
        .set("CSeq", &format!("{} {}", n + 1, req.method))
}

/// A client's answer to the challenges of `resp`: the `alg` one, for `req`'s method and URI.
struct Answerer {
    prompt: digest_auth::WwwAuthenticateHeader,
    user: String,
    password: String,
    /// `Authorization`, or `Proxy-Authorization` for a 407's challenge.
    header: &'static str,
}

impl Answerer {
    fn new(resp: &Msg, alg: &str, user: &str, password: &str) -> Answerer {
        Answerer::of(resp, "WWW-Authenticate", alg, user, password)
    }

    /// The answer to a proxy's challenge (407, `Proxy-Authenticate`).
    fn new_proxy(resp: &Msg, alg: &str, user: &str, password: &str) -> Answerer {
        Answerer::of(resp, "Proxy-Authenticate", alg, user, password)
    }

    fn of(resp: &Msg, challenge: &str, alg: &str, user: &str, password: &str) -> Answerer {
        let challenges = resp.all(challenge);
        let ch = challenges
            .iter()
            .find(|c| c.contains(&format!("algorithm={alg}")))
            .unwrap_or_else(|| panic!("no {alg} challenge in:\n{}", resp.text()));
        Answerer {
            prompt: digest_auth::parse(ch).expect("the challenge parses"),
            user: user.into(),
            password: password.into(),
            header: if challenge == "Proxy-Authenticate" {
                "Proxy-Authorization"
            } else {
                "Authorization"
            },
        }
    }

    /// The Authorization value for `req` (each call counts one more nonce use, nc).
    fn authorization(&mut self, req: &Req) -> String {
        let ctx = digest_auth::AuthContext::new_with_method(
            self.user.as_str(),
            self.password.as_str(),
            req.uri.as_str(),
            None::<&[u8]>,
            digest_auth::HttpMethod(req.method.clone().into()),
        );
        self.prompt
            .respond(&ctx)
            .expect("digest")
            .to_header_string()
    }

    /// Send `req` again with credentials.
    fn call(&mut self, peer: &UdpPeer, req: &Req) -> (Req, Msg) {
        let r = again(req);
        let r = r.clone().set(self.header, &self.authorization(&r));
        let resp = peer.call(&r);
        (r, resp)
    }
}

fn param<'a>(challenge: &'a str, name: &str) -> Option<&'a str> {
    challenge.split(',').find_map(|p| {
        let (k, v) = p.trim().trim_start_matches("Digest ").split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

#[test]
fn publish_is_challenged_then_taken_with_md5_or_sha256_and_a_reused_nonce() {
    let s = Server::start_on("", &[], Some(&users()));
    let peer = UdpPeer::new(s.udp);
    let req = publish_req(&peer, ALICE, ALICE);
    let resp = peer.call(&req);
    assert_eq!(resp.status(), 401, "{}", resp.text());
    let ch = resp.all("WWW-Authenticate");
    assert_eq!(ch.len(), 2, "{}", resp.text());
    // MD5 first (clients reading one challenge), then SHA-256; the realm is the domain
    assert_eq!(param(ch[0], "algorithm"), Some("MD5"));
    assert_eq!(param(ch[1], "algorithm"), Some("SHA-256"));
    for c in &ch {
        assert_eq!(param(c, "realm"), Some("example.com"), "{c}");
        assert_eq!(param(c, "qop"), Some("auth"), "{c}");
        assert!(param(c, "stale").is_none(), "{c}");
    }
    for (alg, user) in [("MD5", "alice"), ("SHA-256", "alice@example.com")] {
        // each from a challenge of its own (nonce counts are per nonce)
        let resp = peer.call(&again(&req));
        let mut a = Answerer::new(&resp, alg, user, "wonderland");
        let (_, ok) = a.call(&peer, &req);
        assert_eq!(ok.status(), 200, "{alg}: {}", ok.text());
        assert!(ok.header("SIP-ETag").is_some(), "{}", ok.text());
        // as real clients do: the next request reuses the nonce, nc one higher, unchallenged
        let (_, ok2) = a.call(&peer, &req);
        assert_eq!(ok2.status(), 200, "{alg} nc=2: {}", ok2.text());
    }
}

#[test]
fn a_wrong_password_is_challenged_again_until_its_tries_are_used_up() {
    let s = Server::start_on("", &[], Some(&users()));
    let peer = UdpPeer::new(s.udp);
    let req = publish_req(&peer, ALICE, ALICE);
    let mut resp = peer.call(&req);
    for attempt in 1..=3 {
        assert_eq!(resp.status(), 401, "{}", resp.text());
        let mut a = Answerer::new(&resp, "MD5", "alice", "not-it");
        resp = a.call(&peer, &req).1;
        if attempt < 3 {
            assert_eq!(resp.status(), 401, "try {attempt}: {}", resp.text());
        }
    }
    assert_eq!(resp.status(), 403, "{}", resp.text());
    // refused for a while now, even with the right password
    let fresh = peer.call(&again(&req));
    let mut a = Answerer::new(&fresh, "MD5", "alice", "wonderland");
    assert_eq!(a.call(&peer, &req).1.status(), 403);
    // another address is not locked out
    let other = UdpPeer {
        sock: UdpSocket::bind("127.0.0.3:0").expect("127.0.0.3 is loopback"),
        server: s.udp,
    };
    let req = publish_req(&other, ALICE, ALICE);
    let resp = other.call(&req);
    let mut a = Answerer::new(&resp, "MD5", "alice", "wonderland");
    assert_eq!(a.call(&other, &req).1.status(), 200);
}

#[test]
fn a_replayed_nonce_count_and_a_foreign_nonce_are_challenged_again() {
    let data = users();
    let s = Server::start_on("", &[], Some(&data));
    let peer = UdpPeer::new(s.udp);
    let req = publish_req(&peer, ALICE, ALICE);
    let resp = peer.call(&req);
    let mut a = Answerer::new(&resp, "MD5", "alice", "wonderland");
    let (sent, ok) = a.call(&peer, &req);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    // the same credentials (nonce and nc) in a new request: a replay
    let replay = again(&sent).set("Authorization", sent.get("Authorization").unwrap());
    let resp = peer.call(&replay);
    assert_eq!(resp.status(), 401, "{}", resp.text());
    // a right answer to a nonce another server issued (or this one before a restart): stale
    let other = Server::start_on("", &[], Some(&users()));
    let p2 = UdpPeer::new(other.udp);
    let r2 = publish_req(&p2, ALICE, ALICE);
    let foreign = p2.call(&r2);
    let mut a = Answerer::new(&foreign, "MD5", "alice", "wonderland");
    let resp = a.call(&peer, &req).1;
    assert_eq!(resp.status(), 401, "{}", resp.text());
    let ch = resp.all("WWW-Authenticate");
    assert!(
        ch.iter().all(|c| param(c, "stale") == Some("true")),
        "{ch:?}"
    );
    let mut a = Answerer::new(&resp, "MD5", "alice", "wonderland");
    assert_eq!(a.call(&peer, &req).1.status(), 200);
}

#[test]
fn an_identity_publishes_only_its_own_presence_and_subscribes_only_as_itself() {
    let s = Server::start_on("", &[], Some(&users()));
    let peer = UdpPeer::new(s.udp);
    // bob's credentials for alice's presentity
    let req = publish_req(&peer, ALICE, BOB);
    let resp = peer.call(&req);
    let mut a = Answerer::new(&resp, "MD5", "bob", "builder");
    let resp = a.call(&peer, &req).1;
    assert_eq!(resp.status(), 403, "{}", resp.text());
    // a SUBSCRIBE whose From is alice, with bob's credentials
    let req = subscribe_req(&peer, BOB, &format!("<{ALICE}>"));
    let resp = peer.call(&req);
    assert_eq!(resp.status(), 401, "{}", resp.text());
    let mut a = Answerer::new(&resp, "MD5", "bob", "builder");
    let resp = a.call(&peer, &req).1;
    assert_eq!(resp.status(), 403, "{}", resp.text());
    // as himself, bob watches alice
    let req = subscribe_req(&peer, ALICE, &format!("<{BOB}>"));
    let resp = peer.call(&req);
    let mut a = Answerer::new(&resp, "MD5", "bob", "builder");
    let resp = a.call(&peer, &req).1;
    assert_eq!(resp.status(), 200, "{}", resp.text());
}

/// The first NOTIFY `peer` receives within 5 s, answered 200.
fn notify(peer: &UdpPeer) -> Msg {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(m) = peer.recv(Duration::from_millis(500))
            && m.start.starts_with("NOTIFY ")
        {
            peer.send(&common::response_to(&m, 200, "OK"));
            return m;
        }
    }
    panic!("no NOTIFY")
}

#[test]
fn the_rules_see_the_authenticated_identity_and_an_anonymous_request_as_anonymous() {
    let s = Server::start_on("[privacy]\ndefault = \"block\"\n", &[], Some(&users()));
    let xcap = Xcap::new(s.http).with_auth("alice@example.com", "wonderland", "MD5");
    // alice lets bob see everything, and anonymous requests nothing (polite-block)
    put_pres_rules(
        &xcap,
        ALICE,
        &format!(
            "{}{}",
            pres_rule("b", &identity_one(BOB), Some("allow"), PROVIDE_EVERYTHING),
            pres_rule("anon", "<ocp:anonymous-request/>", Some("polite-block"), "")
        ),
    );
    let peer = UdpPeer::new(s.udp);
    let req = publish_req(&peer, ALICE, ALICE);
    let resp = peer.call(&req);
    let mut a = Answerer::new(&resp, "MD5", "alice", "wonderland");
    assert_eq!(a.call(&peer, &req).1.status(), 200);

    // bob, authenticated: allowed, sees alice's note
    let w = UdpPeer::new(s.udp);
    let req = subscribe_req(&w, ALICE, &format!("<{BOB}>"));
    let resp = w.call(&req);
    let mut b = Answerer::new(&resp, "MD5", "bob", "builder");
    let resp = b.call(&w, &req).1;
    assert_eq!(resp.status(), 200, "{}", resp.text());
    let n = notify(&w);
    assert!(
        String::from_utf8_lossy(&n.body).contains("here"),
        "{}",
        n.text()
    );

    // bob asking anonymously (RFC 3323): the anonymous-request rule applies, not bob's
    let w2 = UdpPeer::new(s.udp);
    let req = subscribe_req(
        &w2,
        ALICE,
        "\"Anonymous\" <sip:anonymous@anonymous.invalid>",
    );
    let resp = w2.call(&req);
    let mut b = Answerer::new(&resp, "MD5", "bob", "builder");
    let resp = b.call(&w2, &req).1;
    assert_eq!(resp.status(), 200, "{}", resp.text());
    let n = notify(&w2);
    let body = String::from_utf8_lossy(&n.body).into_owned();
    assert!(!body.contains("here"), "polite-blocked: {body}");
    assert!(body.contains("closed"), "polite-blocked: {body}");
}

#[test]
fn an_asserted_identity_counts_from_a_trusted_peer_only() {
    let s = Server::start_on(
        "[sip]\ntrusted_peers = [\"127.0.0.2\"]\n",
        &[],
        Some(&users()),
    );
    let core = UdpPeer {
        sock: UdpSocket::bind("127.0.0.2:0").expect("127.0.0.2 is loopback"),
        server: s.udp,
    };
    let req = publish_req(&core, ALICE, ALICE).set("P-Asserted-Identity", &format!("<{ALICE}>"));
    let resp = core.call(&req);
    assert_eq!(resp.status(), 200, "{}", resp.text());
    // the assertion stands for the requester: it may not publish for another
    let req = publish_req(&core, BOB, BOB).set("P-Asserted-Identity", &format!("<{ALICE}>"));
    assert_eq!(core.call(&req).status(), 403);
    // from anyone else the header proves nothing
    let peer = UdpPeer::new(s.udp);
    let req = publish_req(&peer, ALICE, ALICE).set("P-Asserted-Identity", &format!("<{ALICE}>"));
    let resp = peer.call(&req);
    assert_eq!(resp.status(), 401, "{}", resp.text());
}

#[test]
fn behind_an_ims_core_only_its_assertions_are_taken() {
    let s = Server::start_on(
        "[sip]\nauth = \"asserted\"\ntrusted_peers = [\"127.0.0.2\"]\n",
        &[],
        Some(&users()),
    );
    let peer = UdpPeer::new(s.udp);
    let resp = peer.call(&publish_req(&peer, ALICE, ALICE));
    assert_eq!(
        resp.status(),
        403,
        "no challenge to answer: {}",
        resp.text()
    );
    let core = UdpPeer {
        sock: UdpSocket::bind("127.0.0.2:0").expect("127.0.0.2 is loopback"),
        server: s.udp,
    };
    let req = subscribe_req(&core, ALICE, &format!("<{BOB}>"))
        .set("P-Asserted-Identity", &format!("<{BOB}>"));
    assert_eq!(core.call(&req).status(), 200);
}

#[test]
fn each_listener_asks_for_what_its_own_settings_say() {
    // clients on 127.0.0.1 answer Digest challenges (401); 127.0.0.3 faces the core's proxies:
    // their assertions are taken there, and anyone else is challenged as a proxy does (407)
    let s = Server::start_on(
        "[sip]\nauth = \"digest\"\ntrusted_peers = [\"127.0.0.2\"]\n\
         [sip.listener.\"127.0.0.3:0\"]\nauth = \"either\"\nproxy_challenge = true\n",
        &["--sip", "127.0.0.3:0"],
        Some(&users()),
    );
    let (clients, core_facing) = (s.udp_all[0], s.udp_all[1]);
    assert_eq!(core_facing.ip().to_string(), "127.0.0.3");
    let core = |server| UdpPeer {
        sock: UdpSocket::bind("127.0.0.2:0").expect("127.0.0.2 is loopback"),
        server,
    };
    let asserted = |peer: &UdpPeer| {
        publish_req(peer, ALICE, ALICE).set("P-Asserted-Identity", &format!("<{ALICE}>"))
    };
    // on the clients' listener only Digest counts, even from the trusted peer
    let c = core(clients);
    let resp = c.call(&asserted(&c));
    assert_eq!(resp.status(), 401, "{}", resp.text());
    assert!(resp.header("WWW-Authenticate").is_some());
    let c = core(core_facing);
    let resp = c.call(&asserted(&c));
    assert_eq!(resp.status(), 200, "{}", resp.text());
    // an untrusted sender on the core-facing listener gets a proxy's challenge and answers it
    let peer = UdpPeer::new(core_facing);
    let req = publish_req(&peer, BOB, BOB);
    let resp = peer.call(&req);
    assert_eq!(resp.status(), 407, "{}", resp.text());
    let challenge = resp
        .header("Proxy-Authenticate")
        .expect("Proxy-Authenticate");
    assert!(challenge.starts_with("Digest "), "{challenge}");
    assert!(resp.header("WWW-Authenticate").is_none());
    let mut a = Answerer::new_proxy(&resp, "MD5", "bob", "builder");
    let (_, resp) = a.call(&peer, &req);
    assert_eq!(resp.status(), 200, "{}", resp.text());
}

#[test]
fn a_listener_setting_names_a_listener() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_presenced"))
        .args(["--sip", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .arg("--config")
        .arg({
            let d = temp_dir("listener-cfg");
            let f = d.join("presenced.toml");
            std::fs::write(&f, "[sip.listener.\"127.0.0.9:5060\"]\nauth = \"digest\"\n").unwrap();
            f
        })
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sip.listener") && err.contains("127.0.0.9:5060"),
        "{err}"
    );
}

#[test]
fn users_added_while_running_are_asked_for_credentials_at_once() {
    let data = temp_dir("sip-auth-live");
    let s = Server::start_on("", &[], Some(&data));
    let peer = UdpPeer::new(s.udp);
    // open: no users yet
    assert_eq!(peer.call(&publish_req(&peer, ALICE, ALICE)).status(), 200);
    add_user(&data, ALICE, "wonderland");
    // the server follows its store (polled every second): give it a bounded while
    let deadline = Instant::now() + Duration::from_secs(10);
    let resp = loop {
        let resp = peer.call(&publish_req(&peer, ALICE, ALICE));
        if resp.status() != 200 || Instant::now() > deadline {
            break resp;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(resp.status(), 401, "{}", resp.text());
    let req = publish_req(&peer, ALICE, ALICE);
    let resp = peer.call(&req);
    let mut a = Answerer::new(&resp, "SHA-256", "alice", "wonderland");
    assert_eq!(a.call(&peer, &req).1.status(), 200);
}

#[test]
fn a_delegated_publisher_may_publish_for_the_presentity_that_names_it() {
    let data = users();
    add_user(&data, "sip:calendar@example.com", "clock");
    let s = Server::start_on(
        "[sip.delegated_publishers]\n\"sip:alice@example.com\" = [\"sip:calendar@example.com\"]\n",
        &[],
        Some(&data),
    );
    let peer = UdpPeer::new(s.udp);
    // the calendar service publishes alice's presence (the PIDF names alice)
    let req = publish_req(&peer, ALICE, "sip:calendar@example.com");
    let resp = peer.call(&req);
    let mut a = Answerer::new(&resp, "MD5", "calendar", "clock");
    let resp = a.call(&peer, &req).1;
    assert_eq!(resp.status(), 200, "{}", resp.text());
    // but not bob's, who does not name it
    let req = publish_req(&peer, BOB, "sip:calendar@example.com");
    let resp = peer.call(&req);
    let mut a = Answerer::new(&resp, "MD5", "calendar", "clock");
    let resp = a.call(&peer, &req).1;
    assert_eq!(resp.status(), 403, "{}", resp.text());
}
