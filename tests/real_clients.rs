//! Interop with real SIP clients: PJSIP's PJSUA2 (Python binding, `pip install pjsua2-python`)
//! uses presenced as its outbound proxy (`Route: <sip:presenced;lr>`, no registrar). alice
//! PUBLISHes, bob SUBSCRIBEs to alice and must see every change: see
//! `tests/clients/pjsua_presence.py`.
//!
//! Linphone's command-line client (`linphonec`, Debian `linphone-cli`) subscribes to a buddy
//! list (RFC 4662) and shows each buddy's presence: see `tests/clients/linphone_rls.py`.
//!
//! Without the `pjsua2` module or `linphonec` the tests are skipped, except under CI (`CI`
//! set), where they fail: CI installs both.

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;

/// The longest a client script may run before it is killed.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// True when `python3 -c "import pjsua2"` works. Otherwise: panic under CI, else say why the
/// test is skipped and return false.
fn pjsua2_available(test: &str) -> bool {
    let out = Command::new("python3")
        .args(["-c", "import pjsua2"])
        .stdin(Stdio::null())
        .output();
    let why = match out {
        Ok(o) if o.status.success() => return true,
        Ok(o) => format!(
            "`python3 -c \"import pjsua2\"` failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => format!("cannot run python3: {e}"),
    };
    common::skip_unless_ci(test, &format!("{why} (pip install pjsua2-python)"));
    false
}

/// Run a client script against `proxy` over `transport`, killing it after `CLIENT_TIMEOUT`.
/// Returns (exit code, or None when killed/signalled; stdout; stderr).
fn run_client(
    script: &str,
    proxy: SocketAddr,
    transport: &str,
    extra: &[String],
) -> (Option<i32>, String, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let mut child = Command::new("python3")
        .arg(&path)
        .arg("--proxy")
        .arg(proxy.to_string())
        .arg("--transport")
        .arg(transport)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", path.display()));
    // Drain both pipes in threads so a chatty client never blocks on a full pipe.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (code, out.join().unwrap(), err.join().unwrap())
}

fn pjsua_presence(transport: &str) {
    pjsua_run(transport, Mode::Open);
}

/// What the server asks of the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Open,
    /// The server decides by pres-rules (default confirm) and the client writes the rule that
    /// lets bob see alice while bob's subscription is pending.
    Privacy,
    /// Users exist: every PUBLISH and SUBSCRIBE is challenged (SIP Digest).
    Digest,
}

fn pjsua_run(transport: &str, mode: Mode) {
    let test = format!("pjsua_presence_{transport}_{mode:?}");
    if !pjsua2_available(&test) {
        return;
    }
    let mut server = match mode {
        Mode::Privacy => Server::start_with("[privacy]\ndefault = \"confirm\"\n", &[]),
        Mode::Open => Server::start(),
        Mode::Digest => {
            let data = common::temp_dir("pjsua-digest");
            common::add_user(&data, "sip:alice@example.com", "wonderland");
            common::add_user(&data, "sip:bob@example.com", "builder");
            Server::start_on("", &[], Some(&data))
        }
    };
    let addr = if transport == "udp" {
        server.udp
    } else {
        server.tcp
    };
    let extra = match mode {
        Mode::Privacy => vec![
            "--xcap".to_owned(),
            format!("http://{}/xcap-root", server.http),
        ],
        Mode::Digest => vec!["--auth".to_owned()],
        Mode::Open => Vec::new(),
    };
    let (code, out, err) = run_client("pjsua_presence.py", addr, transport, &extra);
    let alive = server.alive();
    assert!(
        code == Some(0) && out.contains("PASS"),
        "pjsua2 over {transport} via {addr}: {}\n---- client stdout ----\n{out}\n---- client stderr \
         ----\n{err}\n---- presenced stderr ----\n{}",
        match code {
            Some(c) => format!("exit code {c}"),
            None => format!("killed after {CLIENT_TIMEOUT:?} (or by a signal)"),
        },
        server.stderr()
    );
    assert!(alive, "presenced died during the run:\n{}", server.stderr());
    println!("{}", out.trim());
}

#[test]
fn pjsua_presence_udp() {
    pjsua_presence("udp");
}

#[test]
fn pjsua_presence_tcp() {
    pjsua_presence("tcp");
}

/// Privacy with a real client: bob's buddy subscription waits (pending) until alice's rules,
/// written over XCAP, allow him; then he sees each of her changes.
#[test]
fn pjsua_pending_until_rules_allow_udp() {
    pjsua_run("udp", Mode::Privacy);
}

/// SIP Digest with a real client: no registration, PUBLISH and SUBSCRIBE each answered with
/// the account's credentials after presenced's challenge.
#[test]
fn pjsua_presence_with_digest_udp() {
    pjsua_run("udp", Mode::Digest);
}

#[test]
fn pjsua_presence_with_digest_tcp() {
    pjsua_run("tcp", Mode::Digest);
}

/// True when `linphonec` (Debian `linphone-cli`) is installed. Otherwise: panic under CI, else
/// say why the test is skipped and return false.
fn linphonec_available(test: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("linphonec").is_file()));
    if !found {
        common::skip_unless_ci(test, "linphonec not found (apt-get install linphone-cli)");
    }
    found
}

/// Linphone's command-line client (liblinphone 5.1) subscribes to alice's buddy list, which
/// presenced resolves from her rls-services document, and shows each buddy's presence from the
/// list NOTIFYs (`rls.linphone_compat`, see config/presenced.toml): see
/// `tests/clients/linphone_rls.py`.
fn linphone_list(transport: &str) {
    let test = format!("linphone_watches_a_list_{transport}");
    if !linphonec_available(&test) {
        return;
    }
    let mut server = Server::start_with("[rls]\nlinphone_compat = true\n", &[]);
    let xcap = common::Xcap::new(server.http);
    let (bob, carol) = ("sip:bob@example.com", "sip:carol@example.com");
    let list = "sip:alice-buddies@example.com";
    let r = xcap.put(
        "/xcap-root/rls-services/users/sip:alice@example.com/index",
        "application/rls-services+xml",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\" \
xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\"><service uri=\"{list}\"><list>\
<rl:entry uri=\"{bob}\"><rl:display-name>Bob</rl:display-name></rl:entry><rl:entry uri=\"{carol}\"/></list>\
<packages><package>presence</package></packages></service></rls-services>"
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let publisher = common::UdpPeer::new(server.udp);
    common::publish_pidf(
        &publisher,
        bob,
        &common::pidf(bob, "t1", "open", "at my desk"),
    );
    let addr = if transport == "udp" {
        server.udp
    } else {
        server.tcp
    };
    let args: Vec<String> = [
        "--identity",
        "sip:alice@example.com",
        "--list",
        list,
        "--buddy",
        bob,
        "--buddy",
        carol,
        "--expect",
        &format!("{bob}=open"),
        "--expect",
        &format!("{carol}=closed"),
        "--timeout",
        "20",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (code, out, err) = run_client("linphone_rls.py", addr, transport, &args);
    let alive = server.alive();
    assert!(
        code == Some(0) && out.contains("\"subscribed_to_list\": true"),
        "linphonec over {transport} via {addr}: {code:?}\n---- client stdout ----\n{out}\n\
         ---- client stderr ----\n{err}\n---- presenced stderr ----\n{}",
        server.stderr()
    );
    assert!(alive, "presenced died during the run:\n{}", server.stderr());
    println!("{}", out.trim());
}

#[test]
fn linphone_watches_a_list_udp() {
    linphone_list("udp");
}

#[test]
fn linphone_watches_a_list_tcp() {
    linphone_list("tcp");
}
