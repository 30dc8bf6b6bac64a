//! XCAP as deployed clients send it: a Python client built like AG Projects' xcaplib
//! (`tests/clients/xcap_urllib.py`: urllib.request and its HTTPDigestAuthHandler, node
//! selectors raw in the request line), and the leniencies of the request parsing that such
//! clients need, each seen on the wire.
//!
//! Without python3 the client test is skipped, except under CI (`CI` set), where it fails.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use common::{Server, Xcap, add_user, assert_status, assert_valid_xml, temp_dir};

const ALICE: &str = "sip:alice@example.com";
const RL_MIME: &str = "application/resource-lists+xml";

const DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list name="friends">
    <entry uri="sip:joe@example.com"><display-name>Joe Smith</display-name></entry>
    <external anchor="http://xcap.example.org/resource-lists/users/sip:a@example.org/index"/>
  </list>
</resource-lists>"#;

/// A data directory with alice (password "wonderland").
fn alice_dir() -> PathBuf {
    let d = temp_dir("clients").join("data");
    add_user(&d, ALICE, "wonderland");
    d
}

/// True when python3 runs; otherwise the test fails under CI, or is skipped with a message.
fn python_available(test: &str) -> bool {
    let why = match Command::new("python3")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(o) if o.status.success() => return true,
        Ok(o) => format!("python3 --version failed: {}", o.status),
        Err(e) => format!("cannot run python3: {e}"),
    };
    common::skip_unless_ci(test, &why);
    false
}

/// What the Python client saw of one response.
#[derive(Debug)]
struct Seen {
    status: u16,
    content_type: Option<String>,
    etag: Option<String>,
    allow: Option<String>,
    body: Vec<u8>,
}

impl Seen {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request for the Python client; `None` fields are left out.
#[derive(Default)]
struct Call<'a> {
    app: &'a str,
    node: Option<&'a str>,
    if_match: Option<&'a str>,
    if_none_match: Option<&'a str>,
    content_type: Option<&'a str>,
    body: Option<&'a [u8]>,
}

/// The running `xcap_urllib.py`, one request per line each way; killed when dropped.
struct Urllib {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Urllib {
    /// xcaplib's way: the SIP address names the user's tree, and its user part and domain are
    /// the digest username and the realm the password is filed under.
    fn start(srv: &Server, password: &str) -> Urllib {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/xcap_urllib.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(format!("http://{}/xcap-root", srv.http))
            .args([ALICE, password])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run python3");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Urllib {
            child,
            stdin,
            stdout,
        }
    }

    fn call(&mut self, method: &str, c: Call) -> Seen {
        let opt = |v: Option<&str>| v.unwrap_or("-").to_owned();
        let body = c.body.map_or("-".to_owned(), hex);
        let line = [
            method.to_owned(),
            c.app.to_owned(),
            opt(c.node),
            opt(c.if_match),
            opt(c.if_none_match),
            opt(c.content_type),
            body,
        ]
        .join("\t");
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut out = String::new();
        self.stdout.read_line(&mut out).unwrap();
        let f: Vec<&str> = out.trim_end_matches('\n').split('\t').collect();
        assert_eq!(f.len(), 5, "client answered {out:?} to {line:?}");
        let opt = |v: &str| (v != "-").then(|| v.to_owned());
        Seen {
            status: f[0].parse().unwrap(),
            content_type: opt(f[1]),
            etag: opt(f[2]),
            allow: opt(f[3]),
            body: if f[4] == "-" { Vec::new() } else { unhex(f[4]) },
        }
    }

    fn get(&mut self, node: Option<&str>) -> Seen {
        self.call(
            "GET",
            Call {
                app: "resource-lists",
                node,
                ..Call::default()
            },
        )
    }
}

impl Drop for Urllib {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn assert_seen(s: &Seen, status: u16, content_type: Option<&str>, what: &str) {
    assert_eq!(
        (s.status, s.content_type.as_deref()),
        (status, content_type),
        "{what}: {s:?} {}",
        s.text()
    );
}

#[test]
fn xcaplib_style_client_with_digest() {
    if !python_available("xcaplib_style_client_with_digest") {
        return;
    }
    // The default configuration: MD5 must come first for urllib to answer at all.
    let srv = Server::start_on("", &[], Some(&alice_dir()));
    let mut c = Urllib::start(&srv, "wonderland");
    const FRIENDS: &str = r#"/resource-lists/list[@name="friends"]"#;
    const BOB: &str = r#"/resource-lists/list[@name="friends"]/entry[@uri="sip:bob@example.com"]"#;
    const ANCHOR: &str = r#"/resource-lists/list[@name="friends"]/external/@anchor"#;

    // A document PUT without a Content-Type of its own goes out with urllib's default,
    // application/x-www-form-urlencoded: refused as RFC 4825 §8.2.1 requires.
    let r = c.call(
        "PUT",
        Call {
            app: "resource-lists",
            body: Some(DOC.as_bytes()),
            ..Call::default()
        },
    );
    assert_seen(
        &r,
        415,
        Some("text/plain; charset=utf-8"),
        "urllib's default type",
    );
    // Document: PUT with the usage's type, GET it back byte for byte.
    let doc = |c: &mut Urllib, if_match: Option<&str>| {
        c.call(
            "PUT",
            Call {
                app: "resource-lists",
                if_match,
                content_type: Some(RL_MIME),
                body: Some(DOC.as_bytes()),
                ..Call::default()
            },
        )
    };
    let r = doc(&mut c, None);
    assert_seen(&r, 201, None, "document PUT");
    let e1 = r.etag.expect("ETag of the PUT");
    let r = c.get(None);
    assert_seen(&r, 200, Some(RL_MIME), "document GET");
    assert_eq!((r.text().as_str(), r.etag.as_deref()), (DOC, Some(&*e1)));

    // Attributes, with '"', '[' and ']' raw in the request line and in the digest uri.
    let r = c.get(Some(
        r#"/resource-lists/list[@name="other"]/@some-attribute"#,
    ));
    assert_seen(
        &r,
        404,
        Some("text/plain; charset=utf-8"),
        "absent attribute",
    );
    let r = c.get(Some(&format!("{FRIENDS}/@name")));
    assert_seen(&r, 200, Some("application/xcap-att+xml"), "attribute GET");
    assert_eq!(
        (r.text().as_str(), r.etag.as_deref()),
        ("friends", Some(&*e1))
    );

    // A prefixed selector with its xmlns() binding in the query, as SIP SIMPLE SDK sends it.
    let r = c.get(Some(
        r#"/rl:resource-lists/rl:list[@name="friends"]/@name?xmlns(rl=urn:ietf:params:xml:ns:resource-lists)"#,
    ));
    assert_seen(&r, 200, Some("application/xcap-att+xml"), "xmlns() query");
    assert_eq!(r.text(), "friends");

    // Elements: GET; PUT a new one under If-Match (xcaplib's insert); a stale tag is refused.
    let r = c.get(Some(&format!(
        r#"{FRIENDS}/entry[@uri="sip:joe@example.com"]/display-name"#
    )));
    assert_seen(&r, 200, Some("application/xcap-el+xml"), "element GET");
    assert_eq!(r.text(), "<display-name>Joe Smith</display-name>");
    let put_bob = |c: &mut Urllib, if_match: &str, ct: Option<&str>, body: &[u8]| {
        c.call(
            "PUT",
            Call {
                app: "resource-lists",
                node: Some(BOB),
                if_match: Some(if_match),
                content_type: ct,
                body: Some(body),
                ..Call::default()
            },
        )
    };
    let r = put_bob(&mut c, &e1, None, br#"<entry uri="sip:bob@example.com"/>"#);
    assert_seen(&r, 201, None, "element PUT");
    let e2 = r.etag.expect("ETag of the element PUT");
    assert_ne!(e1, e2);
    let r = put_bob(&mut c, &e1, None, br#"<entry uri="sip:bob@example.com"/>"#);
    assert_seen(&r, 412, Some("text/plain; charset=utf-8"), "stale If-Match");
    let r = c.call(
        "GET",
        Call {
            app: "resource-lists",
            if_none_match: Some(&e2),
            ..Call::default()
        },
    );
    assert_seen(&r, 304, None, "If-None-Match of the current tag");
    // Replaced, with a charset parameter on the Content-Type.
    let bob = br#"<entry uri="sip:bob@example.com"><display-name>Bob</display-name></entry>"#;
    let r = put_bob(
        &mut c,
        &e2,
        Some("application/xcap-el+xml; charset=utf-8"),
        bob,
    );
    assert_seen(&r, 200, None, "element replaced");
    let r = c.get(Some(BOB));
    assert_eq!(r.body, bob);

    // Attribute PUT and GET.
    let r = c.call(
        "PUT",
        Call {
            app: "resource-lists",
            node: Some(ANCHOR),
            body: Some(b"http://xcap.example.org/other"),
            ..Call::default()
        },
    );
    assert_seen(&r, 200, None, "attribute PUT");
    assert_eq!(c.get(Some(ANCHOR)).text(), "http://xcap.example.org/other");

    // DELETE of an element and an attribute, then again: 404.
    for node in [BOB, &format!("{FRIENDS}/@name")] {
        let del = |c: &mut Urllib| {
            c.call(
                "DELETE",
                Call {
                    app: "resource-lists",
                    node: Some(node),
                    ..Call::default()
                },
            )
        };
        assert_seen(&del(&mut c), 200, None, node);
        assert_eq!(del(&mut c).status, 404, "{node} again");
    }
    let r = c.get(None);
    assert_seen(&r, 200, Some(RL_MIME), "document after the edits");
    assert_valid_xml(&r.body);
    assert!(!r.text().contains("sip:bob@") && !r.text().contains("friends"));

    // Methods XCAP does not define: 405 with Allow, on a document.
    let r = c.call(
        "POST",
        Call {
            app: "resource-lists",
            content_type: Some(RL_MIME),
            body: Some(DOC.as_bytes()),
            ..Call::default()
        },
    );
    assert_eq!(
        (r.status, r.allow.as_deref()),
        (405, Some("GET, PUT, DELETE"))
    );
    // (The root itself is outside any user's tree, so it is challenged in xcap.realm, where
    // an xcaplib client files no password: its 405 is checked with the Rust client.)

    // The whole document away.
    let r = c.call(
        "DELETE",
        Call {
            app: "resource-lists",
            ..Call::default()
        },
    );
    assert_seen(&r, 200, None, "document DELETE");
    assert_eq!(c.get(None).status, 404);
    drop(c);

    // A wrong password stays out.
    let mut wrong = Urllib::start(&srv, "looking-glass");
    assert_eq!(wrong.get(None).status, 401);
    assert_eq!(doc(&mut wrong, None).status, 401);
}

#[test]
fn methods_xcap_does_not_define_get_405_with_allow() {
    let srv = Server::start();
    let c = Xcap::new(srv.http);
    // The root, with or without its slash; the read-only composed xcap-directory.
    let dir =
        format!("/xcap-root/org.openmobilealliance.xcap-directory/users/{ALICE}/directory.xml");
    for root in ["/xcap-root", "/xcap-root/", &dir] {
        let r = c.req("POST", root, &[], None);
        assert_status(&r, 405, root);
        assert_eq!(r.header("Allow"), Some("GET"), "{root}");
    }
    assert_status(&c.get("/xcap-root"), 404, "GET on the root");
    assert_status(&c.get("/xcap-root/"), 404, "GET on the root");
    assert_status(&c.get("/xcap-rootx/resource-lists"), 404, "not the root");
}

#[test]
fn one_resource_however_the_uri_is_spelled() {
    let srv = Server::start();
    let c = Xcap::new(srv.http);
    let p = format!("/xcap-root/resource-lists/users/{ALICE}/index");
    // The type compares without case and with its parameters ignored (RFC 9110 §8.3.1).
    let ct = "Application/Resource-Lists+XML; charset=\"UTF-8\"";
    assert_status(&c.put(&p, ct, DOC.as_bytes()), 201, "PUT");
    // '//' after the root (a root configured with a trailing '/').
    let r = c.get(&p.replacen("/resource-lists", "//resource-lists", 1));
    assert_status(&r, 200, "GET //");
    assert_eq!(r.text(), DOC);
    // Node selectors raw (as xcaplib sends them), percent-encoded, single-quoted.
    for sel in [
        r#"/~~/resource-lists/list[@name="friends"]/@name"#,
        "/~~/resource-lists/list%5B@name=%22friends%22%5D/@name",
        "/%7E%7E/resource-lists/list%5b@name=%22friends%22%5d/%40name",
        "/~~/resource-lists/list[@name='friends']/@name",
    ] {
        let r = c.get(&format!("{p}{sel}"));
        assert_status(&r, 200, sel);
        assert_eq!(r.text(), "friends", "{sel}");
    }
}
