//! Runs with privacy rules against a fake presence server that applies them the way the rules
//! loadgen writes say (members of a presentity's list `allowed` active, everyone else pending),
//! with a fake XCAP server that keeps the documents: the upload, the pending outcome (no error,
//! no NOTIFY expected, never stale), the counts of the report, a server that leaks state to
//! pending watchers, one that leaves everyone pending when no rules were asked for, and an
//! XCAP server that refuses a document.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use loadgen::scenario::Scenario;
use loadgen::sipmsg::{self, Start};

type Docs = Arc<Mutex<HashMap<String, (String, String)>>>;

/// A keep-alive HTTP/1.1 server that stores every PUT (path → content type, body) and answers
/// 201, except the `fail_at`-th PUT (from 1), answered 409.
fn xcap_server(fail_at: Option<usize>) -> (SocketAddr, Docs) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let docs: Docs = Arc::default();
    let seen = Arc::new(AtomicUsize::new(0));
    let d = docs.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { return };
            let (d, seen) = (d.clone(), seen.clone());
            std::thread::spawn(move || serve_http(c, &d, &seen, fail_at));
        }
    });
    (addr, docs)
}

fn serve_http(c: std::net::TcpStream, docs: &Docs, seen: &AtomicUsize, fail_at: Option<usize>) {
    let mut out = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or(""),
        );
        let path = path.to_string();
        let (mut len, mut ctype) = (0usize, String::new());
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (name, value) = h.split_once(':').unwrap();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => len = value.trim().parse().unwrap(),
                "content-type" => ctype = value.trim().to_string(),
                _ => {}
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        let n = seen.fetch_add(1, Ordering::Relaxed) + 1;
        let answer = if method != "PUT" {
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n".to_string()
        } else if Some(n) == fail_at {
            "HTTP/1.1 409 Conflict\r\nContent-Length: 11\r\n\r\n<conflict/>".to_string()
        } else {
            let body = String::from_utf8(body).unwrap();
            docs.lock().unwrap().insert(path, (ctype, body));
            "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n".to_string()
        };
        out.write_all(answer.as_bytes()).unwrap();
    }
}

/// One subscription the fake server holds.
struct Sub {
    watcher: String,
    presentity: String,
    from_tag: String,
    to_tag: String,
    addr: SocketAddr,
    cseq: u32,
    pending: bool,
}

/// A fake presence server: PUBLISH stores the body and NOTIFYs the presentity's active
/// watchers; a SUBSCRIBE is active when the presentity's list `allowed` (in `docs`) holds the
/// watcher, else pending (NOTIFYs without a body, unless `leak`).
struct FakePresence {
    sock: UdpSocket,
    docs: Docs,
    leak: bool,
    subs: HashMap<String, Sub>,
    state: HashMap<String, String>,
    etags: u32,
    branches: u32,
}

/// The value of header `name` in a request's head (full header names, as loadgen writes them).
fn header<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .unwrap_or("")
}

fn uri_of(v: &str) -> String {
    v.split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map_or(String::new(), |(u, _)| u.to_string())
}

fn tag_of(v: &str) -> String {
    v.split_once(";tag=")
        .map_or(String::new(), |(_, t)| t.to_string())
}

impl FakePresence {
    fn spawn(docs: Docs, leak: bool) -> (SocketAddr, Arc<AtomicBool>, JoinHandle<()>) {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let mut me = FakePresence {
            sock,
            docs,
            leak,
            subs: HashMap::new(),
            state: HashMap::new(),
            etags: 0,
            branches: 0,
        };
        let h = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !s.load(Ordering::Relaxed) {
                if let Ok((n, from)) = me.sock.recv_from(&mut buf) {
                    let dg = buf[..n].to_vec();
                    me.on_datagram(&dg, from);
                }
            }
        });
        (addr, stop, h)
    }

    fn allowed(&self, presentity: &str, watcher: &str) -> bool {
        let path = format!("/xcap-root/resource-lists/users/{presentity}/index");
        self.docs
            .lock()
            .unwrap()
            .get(&path)
            .is_some_and(|(_, doc)| doc.contains(&format!("<entry uri=\"{watcher}\"/>")))
    }

    fn on_datagram(&mut self, dg: &[u8], from: SocketAddr) {
        let Ok(m) = sipmsg::parse(dg) else { return };
        let Start::Request(method) = m.start else {
            return; // loadgen's 200 to a NOTIFY
        };
        let head = std::str::from_utf8(m.head).unwrap();
        let ruri = std::str::from_utf8(dg)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string();
        let body = String::from_utf8_lossy(m.body).to_string();
        let mut out = Vec::new();
        match method {
            b"PUBLISH" => {
                self.etags += 1;
                let extra = format!("SIP-ETag: e{}\r\nExpires: 3600\r\n", self.etags);
                sipmsg::write_response(&mut out, &m, b"200 OK", None, extra.as_bytes());
                self.sock.send_to(&out, from).unwrap();
                if !body.is_empty() {
                    self.state.insert(ruri.clone(), body);
                    let ids: Vec<String> = self
                        .subs
                        .iter()
                        .filter(|(_, s)| s.presentity == ruri && !s.pending)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for id in ids {
                        self.notify(&id, "active;expires=3600");
                    }
                }
            }
            b"SUBSCRIBE" => {
                let cid = std::str::from_utf8(m.call_id).unwrap().to_string();
                let expires = m.expires.unwrap_or(3600);
                let to_tag = format!("fp{}", self.subs.len() + 1);
                let extra = format!("Expires: {expires}\r\n");
                let tag = self
                    .subs
                    .get(&cid)
                    .map_or(to_tag.clone(), |s| s.to_tag.clone());
                sipmsg::write_response(
                    &mut out,
                    &m,
                    b"200 OK",
                    Some(tag.as_bytes()),
                    extra.as_bytes(),
                );
                self.sock.send_to(&out, from).unwrap();
                if expires == 0 {
                    if self.subs.contains_key(&cid) {
                        self.notify(&cid, "terminated;reason=timeout");
                        self.subs.remove(&cid);
                    }
                } else if m.to_tag.is_empty() {
                    let watcher = uri_of(header(head, "From"));
                    let pending = !self.allowed(&ruri, &watcher);
                    self.subs.insert(
                        cid.clone(),
                        Sub {
                            watcher,
                            presentity: ruri,
                            from_tag: tag_of(header(head, "From")),
                            to_tag,
                            addr: from,
                            cseq: 0,
                            pending,
                        },
                    );
                    let st = if pending {
                        "pending;expires=3600"
                    } else {
                        "active;expires=3600"
                    };
                    self.notify(&cid, st);
                }
            }
            _ => {}
        }
    }

    fn notify(&mut self, cid: &str, sub_state: &str) {
        self.branches += 1;
        let s = self.subs.get_mut(cid).unwrap();
        s.cseq += 1;
        let body = if s.pending && !self.leak {
            ""
        } else {
            self.state.get(&s.presentity).map_or("", String::as_str)
        };
        let local = self.sock.local_addr().unwrap();
        let ctype = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/pidf+xml\r\n"
        };
        let msg = format!(
            "NOTIFY sip:{} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-fp{}\r\n\
             From: <{}>;tag={}\r\nTo: <{}>;tag={}\r\nCall-ID: {cid}\r\nCSeq: {} NOTIFY\r\n\
             Event: presence\r\nSubscription-State: {sub_state}\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
            s.addr,
            self.branches,
            s.presentity,
            s.to_tag,
            s.watcher,
            s.from_tag,
            s.cseq,
            body.len()
        );
        self.sock.send_to(msg.as_bytes(), s.addr).unwrap();
    }
}

/// 20 presentities, 100 watchers (5 each), 1 s of modifies at 40/s, then unsubscribe.
fn scenario(rules: bool) -> Scenario {
    let mut s = Scenario {
        name: "privacy".into(),
        ..Scenario::default()
    };
    s.population.presentities = 20;
    s.population.watchers = 100;
    s.publish.rate = 200.0;
    s.publish.modify_rate = 40.0;
    s.subscribe.rate = 500.0;
    s.subscribe.unsubscribe_at_end = true;
    s.rules.enabled = rules;
    s.run.duration_secs = 1.0;
    s.run.settle_secs = 1.0;
    s.run.drain_secs = 1.0;
    s.run.max_secs = 30.0;
    s.run.sockets = 2;
    s
}

fn options(target: SocketAddr, xcap: Option<SocketAddr>) -> loadgen::run::Options {
    loadgen::run::Options {
        target,
        server_pid: None,
        namespace: String::new(),
        progress: false,
        label: "privacy".into(),
        xcap: xcap.map(|a| format!("http://{a}")),
    }
}

fn run(rules: bool, leak: bool, xcap: Option<(SocketAddr, Docs)>) -> loadgen::stats::Report {
    let docs = xcap.as_ref().map_or_else(Docs::default, |x| x.1.clone());
    let (sip, stop, h) = FakePresence::spawn(docs, leak);
    let r = loadgen::run::run(&scenario(rules), &options(sip, xcap.map(|x| x.0)));
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    r.unwrap()
}

#[test]
fn rules_leave_each_presentitys_last_watcher_pending() {
    let (addr, docs) = xcap_server(None);
    let r = run(true, false, Some((addr, docs.clone())));
    let rules = r.rules.as_ref().expect("rules report");
    assert_eq!(rules.documents, 40);
    assert_eq!((rules.listed_watchers, rules.unlisted_watchers), (80, 20));
    {
        let d = docs.lock().unwrap();
        assert_eq!(d.len(), 40);
        let (ct, rl) = &d["/xcap-root/resource-lists/users/sip:p1@example.com/index"];
        assert_eq!(ct, "application/resource-lists+xml");
        // watchers 1, 21, 41, 61 listed; 81, the last of p1, is not
        assert!(
            rl.contains("\"sip:w61@example.com\"") && !rl.contains("w81@"),
            "{rl}"
        );
        let (ct, pr) = &d["/xcap-root/pres-rules/users/sip:p1@example.com/index"];
        assert_eq!(ct, "application/auth-policy+xml");
        assert!(
            pr.contains(&format!(
                "anc=\"http://{addr}/xcap-root/resource-lists/users/sip:p1@example.com/index/~~/"
            )),
            "{pr}"
        );
    }
    // pending is not an error, nor stale, nor a missing NOTIFY
    assert_eq!((r.final_failed, r.timeouts), (0, 0), "{r:#?}");
    assert_eq!(r.notify.stale_watchers, 0, "{r:#?}");
    assert_eq!(r.notify.missing_first_notify, 0, "{r:#?}");
    let u = &r.subscriptions;
    assert_eq!((u.active, u.pending, u.no_state), (80, 20, 0), "{u:?}");
    assert_eq!((u.expected_pending, u.unexpected_state), (20, 0), "{u:?}");
    assert_eq!(u.notify_pending, 20, "{u:?}");
    assert_eq!(u.pending_with_body, 0);
    // pending subscriptions hold server state too: the teardown ends them as well
    assert_eq!(u.notify_terminated, 100, "{u:?}");
    assert_eq!(r.ops["unsubscribe"].ok, 100);
    // a modify expects the NOTIFYs of its presentity's 4 active watchers, and gets them
    let modifies = r.ops["publish_modify"].ok;
    assert!(modifies >= 38, "{r:#?}");
    assert_eq!(r.notify.expected, 4 * modifies);
    assert_eq!(r.notify.new_state, r.notify.expected);
    assert_eq!(r.notify.publish_to_notify_ms.count, r.notify.expected);
    assert!(
        r.table().contains("pending 20 (expected 20)"),
        "{}",
        r.table()
    );
}

#[test]
fn state_shown_to_a_pending_watcher_is_counted() {
    let r = run(true, true, Some(xcap_server(None)));
    let u = &r.subscriptions;
    assert_eq!(u.pending, 20);
    // the initial publishes came before the subscriptions: every pending NOTIFY has a body
    assert_eq!(u.pending_with_body, 20, "{u:?}");
    // and its token is not taken for a NOTIFY the watcher should have had
    assert_eq!(r.notify.new_state, r.notify.expected);
}

#[test]
fn without_rules_a_pending_watcher_is_an_unexpected_state() {
    // no documents: the fake server leaves everyone pending, as a privacy default of confirm
    let r = run(false, false, None);
    assert!(r.rules.is_none());
    let u = &r.subscriptions;
    assert_eq!((u.active, u.pending), (0, 100), "{u:?}");
    assert_eq!((u.expected_pending, u.unexpected_state), (0, 100), "{u:?}");
    assert_eq!(r.notify.expected, 0);
    assert_eq!(r.notify.stale_watchers, 0);
}

#[test]
fn a_refused_document_fails_the_run() {
    let (addr, _) = xcap_server(Some(3));
    let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
    let e = loadgen::run::run(
        &scenario(true),
        &options(sip.local_addr().unwrap(), Some(addr)),
    )
    .unwrap_err();
    assert!(e.contains("HTTP 409") && e.contains("<conflict/>"), "{e}");
    assert!(e.contains(&format!("PUT http://{addr}/xcap-root/")), "{e}");
    // and without an XCAP root, a run with rules does not start
    let e =
        loadgen::run::run(&scenario(true), &options(sip.local_addr().unwrap(), None)).unwrap_err();
    assert!(e.contains("--xcap"), "{e}");
}
