//! The Aggregation Proxy over loopback against the real binary: HTTP Digest (RFC 7616, MD5 and
//! SHA-256) against users made with `presenced user`, asserted identities from trusted peers
//! only, each user confined to their own tree, the global tree read-only, and open access (with
//! a warning) while no user exists.

mod common;

use common::{Server, Xcap, add_user, assert_valid_xml, presenced, temp_dir};

const ALICE: &str = "sip:alice@example.com";
const RL_MIME: &str = "application/resource-lists+xml";

fn rl_path(xui: &str) -> String {
    format!("/xcap-root/resource-lists/users/{xui}/index")
}

fn rl_doc() -> Vec<u8> {
    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list name=\"friends\"><entry uri=\"sip:bob@example.com\"/></list></resource-lists>".to_vec()
}

/// A data directory with alice (password "wonderland") and bob ("builder").
fn users_dir() -> std::path::PathBuf {
    let d = temp_dir("users").join("data");
    add_user(&d, ALICE, "wonderland");
    add_user(&d, "sip:bob@example.com", "builder");
    d
}

#[test]
fn user_command_round_trip() {
    let d = temp_dir("cli").join("data");
    let ds = d.to_str().unwrap();
    let (code, out, err) = presenced(&["user", "list", "--data", ds]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let (code, out, _) = presenced(&["user", "add", ALICE, "--password", "pw1", "--data", ds]);
    assert_eq!(code, 0);
    assert!(out.starts_with("added sip:alice@example.com"), "{out}");
    assert!(out.contains("username alice@example.com") && out.contains("realm presenced"));
    let (code, out, _) = presenced(&["user", "add", ALICE, "--password", "pw2", "--data", ds]);
    assert_eq!(code, 0);
    assert!(out.starts_with("updated"), "{out}");
    let (_, out, _) = presenced(&[
        "user",
        "add",
        "sip:bob@example.com",
        "--password",
        "b",
        "--data",
        ds,
    ]);
    assert!(out.starts_with("added"));
    let (code, out, _) = presenced(&["user", "list", "--data", ds]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "sip:alice@example.com alice@example.com presenced\nsip:bob@example.com bob@example.com presenced\n"
    );
    // Only HA1 values are stored: the password is nowhere in the database file.
    let db = std::fs::read(d.join("presenced.sqlite")).unwrap();
    let wal = std::fs::read(d.join("presenced.sqlite-wal")).unwrap_or_default();
    for f in [&db, &wal] {
        assert!(
            !f.windows(3).any(|w| w == b"pw2"),
            "password stored in clear"
        );
    }
    let (code, out, _) = presenced(&["user", "del", ALICE, "--data", ds]);
    assert_eq!((code, out.as_str()), (0, "deleted sip:alice@example.com\n"));
    let (code, _, err) = presenced(&["user", "del", ALICE, "--data", ds]);
    assert_eq!(code, 1);
    assert!(err.contains("no such user"), "{err}");
    let (_, out, _) = presenced(&["user", "list", "--data", ds]);
    assert_eq!(out, "sip:bob@example.com bob@example.com presenced\n");
    for bad in [
        "alice@example.com",
        "http:alice@example.com",
        "sip:example.com",
        "sip:a b@x",
    ] {
        let (code, _, err) = presenced(&["user", "add", bad, "--password", "x", "--data", ds]);
        assert_eq!(code, 1, "{bad} accepted");
        assert!(err.contains("SIP URI"), "{err}");
    }
    // The realm comes from the configuration.
    let cfg = temp_dir("cli-cfg").join("c.toml");
    std::fs::write(&cfg, "[xcap]\nrealm = \"example.com\"\n").unwrap();
    let (code, out, _) = presenced(&[
        "user",
        "add",
        "sip:carol@example.com",
        "--password",
        "c",
        "--data",
        ds,
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("realm example.com"), "{out}");
}

#[test]
fn open_without_users_then_closed_once_one_exists() {
    let srv = Server::start();
    let c = Xcap::new(srv.http);
    let r = c.put(&rl_path(ALICE), RL_MIME, &rl_doc());
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(c.get(&rl_path(ALICE)).status, 200);
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(
        srv.stderr().contains("WITHOUT authentication"),
        "warning logged: {}",
        srv.stderr()
    );
    // A user added while the server runs closes the door at the next request.
    add_user(&srv.data, ALICE, "wonderland");
    let r = c.get(&rl_path(ALICE));
    assert_eq!(r.status, 401);
    let ok = Xcap::new(srv.http).with_auth("alice@example.com", "wonderland", "SHA-256");
    assert_eq!(ok.get(&rl_path(ALICE)).status, 200);
}

#[test]
fn digest_challenges_and_answers() {
    let d = users_dir();
    // SHA-256 preferred here; the default order is checked in
    // digest_algorithms_follow_the_configuration.
    let sha_first = "[xcap]\ndigest_algorithms = [\"SHA-256\", \"MD5\"]\n";
    let srv = Server::start_on(sha_first, &[], Some(&d));
    let anon = Xcap::new(srv.http);
    let r = anon.get(&rl_path(ALICE));
    assert_eq!(r.status, 401);
    let ch = r.all("WWW-Authenticate");
    assert_eq!(ch.len(), 2, "{ch:?}");
    assert!(
        ch[0].starts_with("Digest ") && ch[0].contains("algorithm=SHA-256"),
        "{ch:?}"
    );
    assert!(
        ch[1].starts_with("Digest ") && ch[1].contains("algorithm=MD5"),
        "{ch:?}"
    );
    for c in &ch {
        // a user's tree is challenged in that user's domain (xcap.domain_realm)
        assert!(
            c.contains("realm=\"example.com\"") && c.contains("qop=\"auth\""),
            "{c}"
        );
        assert!(c.contains("nonce=\"") && !c.contains("stale=true"), "{c}");
    }
    // Both algorithms work, for reads and writes.
    let sha = Xcap::new(srv.http).with_auth("alice@example.com", "wonderland", "SHA-256");
    let r = sha.put(&rl_path(ALICE), RL_MIME, &rl_doc());
    assert_eq!(r.status, 201, "{}", r.text());
    let md5 = Xcap::new(srv.http).with_auth("alice@example.com", "wonderland", "MD5");
    let r = md5.get(&rl_path(ALICE));
    assert_eq!(r.status, 200);
    assert_valid_xml(&r.body);
    // Wrong password, unknown user: 401 again, with fresh challenges.
    for (u, p) in [("alice@example.com", "nope"), ("mallory@example.com", "x")] {
        for alg in ["SHA-256", "MD5"] {
            let r = Xcap::new(srv.http)
                .with_auth(u, p, alg)
                .get(&rl_path(ALICE));
            assert_eq!(r.status, 401, "{u} {alg}");
            assert_eq!(r.all("WWW-Authenticate").len(), 2);
        }
    }
    // A digest computed for another request target does not pass.
    let r = anon.get(&rl_path(ALICE));
    let auth = Xcap::authorization(
        &r.all("WWW-Authenticate"),
        "SHA-256",
        "alice@example.com",
        "wonderland",
        "GET",
        "/xcap-root/other",
    );
    assert_eq!(
        anon.raw("GET", &rl_path(ALICE), &[("Authorization", &auth)], None)
            .status,
        401
    );
    // The same Authorization again (same nonce count) is a replay: challenged, stale=true.
    let r = anon.get(&rl_path(ALICE));
    let path = rl_path(ALICE);
    let auth = Xcap::authorization(
        &r.all("WWW-Authenticate"),
        "MD5",
        "alice@example.com",
        "wonderland",
        "GET",
        &path,
    );
    assert_eq!(
        anon.raw("GET", &path, &[("Authorization", &auth)], None)
            .status,
        200
    );
    let r = anon.raw("GET", &path, &[("Authorization", &auth)], None);
    assert_eq!(r.status, 401, "replay");
    assert!(
        r.all("WWW-Authenticate")
            .iter()
            .all(|c| c.contains("stale=true"))
    );
    // A correct answer to a nonce that is not (or no longer) ours: stale=true.
    let foreign = "Digest realm=\"presenced\", qop=\"auth\", algorithm=SHA-256, nonce=\"0000000000000001ffffffffffffffffffffffffffffffffffffffffffffffff\"";
    let path = rl_path(ALICE);
    let auth = Xcap::authorization(
        &[foreign],
        "SHA-256",
        "alice@example.com",
        "wonderland",
        "GET",
        &path,
    );
    let r = anon.raw("GET", &path, &[("Authorization", &auth)], None);
    assert_eq!(r.status, 401);
    let ch = r.all("WWW-Authenticate");
    assert!(ch.iter().all(|c| c.contains("stale=true")), "{ch:?}");
}

#[test]
fn digest_algorithms_follow_the_configuration() {
    let d = users_dir();
    // By default MD5 comes first, for clients that read only the first challenge (Python's
    // urllib); SHA-256 is still offered and answered.
    let srv = Server::start_on("", &[], Some(&d));
    let r = Xcap::new(srv.http).get(&rl_path(ALICE));
    let ch = r.all("WWW-Authenticate");
    assert_eq!(ch.len(), 2, "{ch:?}");
    assert!(ch[0].contains("algorithm=MD5"), "{ch:?}");
    assert!(ch[1].contains("algorithm=SHA-256"), "{ch:?}");
    for alg in ["MD5", "SHA-256"] {
        let c = Xcap::new(srv.http).with_auth("alice@example.com", "wonderland", alg);
        assert_eq!(
            c.put(&rl_path(ALICE), RL_MIME, &rl_doc()).status / 100,
            2,
            "{alg}"
        );
    }
    drop(srv);
    // SHA-256 alone: one challenge, and a right MD5 answer (to a nonce of ours) is refused.
    let srv = Server::start_on("[xcap]\ndigest_algorithms = [\"SHA-256\"]\n", &[], Some(&d));
    let anon = Xcap::new(srv.http);
    let r = anon.get(&rl_path(ALICE));
    let ch = r.all("WWW-Authenticate");
    assert_eq!(ch.len(), 1, "{ch:?}");
    assert!(ch[0].contains("algorithm=SHA-256"), "{ch:?}");
    let md5 = ch[0].replace("algorithm=SHA-256", "algorithm=MD5");
    let path = rl_path(ALICE);
    let auth = Xcap::authorization(
        &[&md5],
        "MD5",
        "alice@example.com",
        "wonderland",
        "GET",
        &path,
    );
    let r = anon.raw("GET", &path, &[("Authorization", &auth)], None);
    assert_eq!(r.status, 401, "MD5 is not offered");
    let sha = Xcap::new(srv.http).with_auth("alice@example.com", "wonderland", "SHA-256");
    assert_eq!(sha.get(&path).status, 200);
}

#[test]
fn users_keep_to_their_own_tree_and_global_is_read_only() {
    let d = users_dir();
    let srv = Server::start_on("", &[], Some(&d));
    let alice = Xcap::new(srv.http).with_auth("alice@example.com", "wonderland", "SHA-256");
    let bob = Xcap::new(srv.http).with_auth("bob@example.com", "builder", "MD5");
    assert_eq!(alice.put(&rl_path(ALICE), RL_MIME, &rl_doc()).status, 201);
    assert_eq!(bob.get(&rl_path(ALICE)).status, 403);
    assert_eq!(bob.put(&rl_path(ALICE), RL_MIME, &rl_doc()).status, 403);
    assert_eq!(bob.delete(&rl_path(ALICE)).status, 403);
    // Percent-encoding the XUI changes nothing.
    assert_eq!(
        bob.get("/xcap-root/resource-lists/users/sip%3Aalice%40example.com/index")
            .status,
        403
    );
    assert_eq!(
        alice
            .get("/xcap-root/resource-lists/users/sip%3Aalice%40example.com/index")
            .status,
        200
    );
    assert_eq!(alice.get(&rl_path(ALICE)).status, 200);
    // Everyone reads global documents; nobody writes them.
    let r = bob.get("/xcap-root/xcap-caps/global/index");
    assert_eq!(r.status, 200);
    assert_valid_xml(&r.body);
    let r = alice.put("/xcap-root/resource-lists/global/index", RL_MIME, &rl_doc());
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET"));
    let r = alice.delete("/xcap-root/xcap-caps/global/index");
    assert_eq!(r.status, 405);
}

#[test]
fn asserted_identity_only_from_trusted_peers() {
    let d = users_dir();
    // Not trusted: the header is ignored and digest is required.
    let srv = Server::start_on("", &[], Some(&d));
    for h in ["X-XCAP-Asserted-Identity", "X-3GPP-Asserted-Identity"] {
        let c = Xcap::new(srv.http).with_header(h, "<sip:alice@example.com>");
        let r = c.put(&rl_path(ALICE), RL_MIME, &rl_doc());
        assert_eq!(r.status, 401, "{h} from an untrusted peer");
        assert_eq!(r.all("WWW-Authenticate").len(), 2);
    }
    drop(srv);
    // Trusted: believed, and confined to that user's tree like a digest user.
    let srv = Server::start_on("[xcap]\ntrusted_peers = [\"127.0.0.1\"]\n", &[], Some(&d));
    let c = Xcap::new(srv.http).with_header(
        "X-XCAP-Asserted-Identity",
        "\"Alice\" <sip:alice@example.com>",
    );
    let r = c.put(&rl_path(ALICE), RL_MIME, &rl_doc());
    assert_eq!(r.status, 201, "{}", r.text());
    let c3 =
        Xcap::new(srv.http).with_header("X-3GPP-Asserted-Identity", "\"sip:alice@example.com\"");
    assert_eq!(c3.get(&rl_path(ALICE)).status, 200);
    let bob =
        Xcap::new(srv.http).with_header("X-3GPP-Asserted-Identity", "\"sip:bob@example.com\"");
    assert_eq!(bob.get(&rl_path(ALICE)).status, 403);
    // Without the header a trusted peer still authenticates with digest.
    assert_eq!(Xcap::new(srv.http).get(&rl_path(ALICE)).status, 401);
}

#[test]
fn realms_per_domain_or_one_for_all() {
    let d = users_dir();
    let realm_of = |srv: &Server, path: &str| {
        let r = Xcap::new(srv.http).get(path);
        assert_eq!(r.status, 401, "{path}");
        let ch = r.all("WWW-Authenticate");
        let at = ch[0].find("realm=\"").unwrap() + 7;
        ch[0][at..].split('"').next().unwrap().to_owned()
    };
    let global = "/xcap-root/xcap-caps/global/index";
    // By default a user's tree is challenged in the user's domain, where both the bare user
    // part (xcaplib, OpenXCAP) and the whole address log in; the rest in xcap.realm.
    let srv = Server::start_on("", &[], Some(&d));
    assert_eq!(realm_of(&srv, &rl_path(ALICE)), "example.com");
    assert_eq!(realm_of(&srv, global), "presenced");
    for user in ["alice", "alice@example.com"] {
        let c = Xcap::new(srv.http).with_auth(user, "wonderland", "MD5");
        assert_eq!(
            c.get(&rl_path(ALICE)).status,
            404,
            "{user}: in, no document yet"
        );
        let wrong = Xcap::new(srv.http).with_auth(user, "looking-glass", "MD5");
        assert_eq!(wrong.get(&rl_path(ALICE)).status, 401, "{user}");
    }
    // the whole address in xcap.realm still works for the global tree
    let c = Xcap::new(srv.http).with_auth("alice@example.com", "wonderland", "MD5");
    assert_eq!(c.get(global).status, 200);
    drop(srv);
    // One realm for all: the bare user part is no login there.
    let srv = Server::start_on("[xcap]\ndomain_realm = false\n", &[], Some(&d));
    assert_eq!(realm_of(&srv, &rl_path(ALICE)), "presenced");
    let bare = Xcap::new(srv.http).with_auth("alice", "wonderland", "MD5");
    assert_eq!(bare.get(&rl_path(ALICE)).status, 401);
    let full = Xcap::new(srv.http).with_auth("alice@example.com", "wonderland", "MD5");
    assert_eq!(full.get(&rl_path(ALICE)).status, 404);
}

/// `presenced user list | head`: a reader that stops early ends the listing quietly.
#[test]
fn user_list_into_a_reader_that_stops_early_ends_quietly() {
    use std::io::{BufRead, BufReader};
    let d = common::temp_dir("user-list-pipe");
    let file = d.join("users.txt");
    // more than a pipe buffer of output (64 KiB)
    let text: String = (0..3000)
        .map(|i| format!("sip:user{i}@example.com pw\n"))
        .collect();
    std::fs::write(&file, text).unwrap();
    let data = d.join("data");
    let (code, out, err) = common::presenced(&[
        "user",
        "import",
        file.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_presenced"))
        .args(["user", "list", "--data", data.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("sip:user"), "{first}");
    // the reader is gone (stdout dropped above)
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}
