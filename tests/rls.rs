//! The Resource List Server end to end (RFC 4662, RFC 4826): lists written over XCAP (rls-services
//! and resource-lists documents), one SUBSCRIBE to the list URI, and multipart/related NOTIFYs
//! of RLMI and PIDF. Every body is split with an independent MIME reader (`mailparse`), and the
//! RLMI root and every PIDF part are validated against the schemas.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{
    Msg, Server, Subscriber, Xcap, XmlEl, assert_valid_xml, identity_one, parse_xml, pidf,
    pres_rule, publish_pidf, put_pres_rules, response_to, subscription_state, unique,
};

const ALICE: &str = "sip:alice@example.com";
const LIST: &str = "sip:alice-buddies@example.com";
const RLMI_NS: &str = "urn:ietf:params:xml:ns:rlmi";
const PIDF_NS: &str = "urn:ietf:params:xml:ns:pidf";
const ACCEPT: &str = "multipart/related, application/rlmi+xml, application/pidf+xml";
const RLS_MIME: &str = "application/rls-services+xml";
const RL_MIME: &str = "application/resource-lists+xml";

/// How long a NOTIFY that should not come is waited for.
const GRACE: Duration = Duration::from_millis(700);

fn rls_path(owner: &str) -> String {
    format!("/xcap-root/rls-services/users/{owner}/index")
}

fn rl_path(owner: &str) -> String {
    format!("/xcap-root/resource-lists/users/{owner}/index")
}

/// The absolute XCAP URI of `owner`'s resource-lists list `name` (for `<external>` and
/// `<resource-list>`).
fn list_url(s: &Server, owner: &str, name: &str) -> String {
    format!(
        "http://{}/xcap-root/resource-lists/users/{owner}/index/~~/resource-lists/list%5b@name=%22{name}%22%5d",
        s.http
    )
}

/// alice's service LIST over her resource-lists list `name`.
fn put_list_service(s: &Server, xcap: &Xcap, name: &str) {
    let reference = format!(
        "<resource-list>{}</resource-list>",
        list_url(s, ALICE, name)
    );
    put(
        xcap,
        &rls_path(ALICE),
        RLS_MIME,
        &services_doc(LIST, &reference),
    );
}

/// `<rl:entry>` elements for `uris`.
fn entries(uris: &[&str]) -> String {
    uris.iter()
        .map(|u| format!("<rl:entry uri=\"{u}\"/>"))
        .collect()
}

/// An rls-services document with one service `uri` whose content is `inner` (an inline
/// `<list>` or a `<resource-list>`), for presence.
fn services_doc(uri: &str, inner: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\" \
xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\"><service uri=\"{uri}\">{inner}\
<packages><package>presence</package></packages></service></rls-services>"
    )
    .into_bytes()
}

/// A resource-lists document holding `lists` (the text of `<list>` elements; the default
/// namespace is resource-lists, `rl` is bound to it too).
fn lists_doc(lists: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\" \
xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\">{lists}</resource-lists>"
    )
    .into_bytes()
}

fn put(xcap: &Xcap, path: &str, mime: &str, body: &[u8]) {
    let r = xcap.put(path, mime, body);
    assert!(
        r.status == 200 || r.status == 201,
        "PUT {path}: {} {}",
        r.status,
        r.text()
    );
}

/// alice's list service LIST listing `uris` inline.
fn put_inline_list(xcap: &Xcap, uris: &[&str]) {
    let inner = format!(
        "<list name=\"buddies\"><rl:display-name>Buddies</rl:display-name>{}</list>",
        entries(uris)
    );
    put(
        xcap,
        &rls_path(ALICE),
        RLS_MIME,
        &services_doc(LIST, &inner),
    );
}

/// A list SUBSCRIBE to LIST from `from`; `f` may change the request.
fn subscribe_with(
    s: &Server,
    from: &str,
    f: impl FnOnce(common::Req) -> common::Req,
) -> (Subscriber, Msg) {
    Subscriber::subscribe(s, LIST, from, "presence", ACCEPT, 600, |r| {
        f(r.set("Supported", "eventlist"))
    })
}

/// Subscribe as alice and expect 200 with `Require: eventlist`.
fn subscribe_ok(s: &Server) -> Subscriber {
    let (w, resp) = subscribe_with(s, ALICE, |r| r);
    assert_eq!(resp.status(), 200, "list SUBSCRIBE: {}", resp.text());
    assert_eq!(resp.header("Require"), Some("eventlist"), "{}", resp.text());
    w
}

/// A resource of an RLMI document as the subscriber sees it.
#[derive(Debug, Clone)]
struct Res {
    name: Option<String>,
    /// (state, reason) of its instance, if any.
    instance: Option<(String, Option<String>)>,
    /// Its PIDF part, parsed, when its instance points at one.
    doc: Option<XmlEl>,
}

impl Res {
    fn state(&self) -> &str {
        self.instance.as_ref().map_or("none", |(s, _)| s.as_str())
    }
    /// The `<note>`s of its document.
    fn notes(&self) -> Vec<String> {
        self.doc.as_ref().map_or(Vec::new(), |d| {
            d.all(PIDF_NS, "note")
                .iter()
                .map(|n| n.text.clone())
                .collect()
        })
    }
    /// The `<basic>` of the first tuple of its document.
    fn basic(&self) -> Option<String> {
        let d = self.doc.as_ref()?;
        d.all(PIDF_NS, "basic").first().map(|b| b.text.clone())
    }
}

/// A list NOTIFY, split and checked.
struct ListNotify {
    msg: Msg,
    version: u32,
    full: bool,
    list_name: Option<String>,
    /// Resources in document order, by URI.
    resources: Vec<(String, Res)>,
    /// Body parts after the root.
    parts: usize,
}

impl ListNotify {
    fn get(&self, uri: &str) -> &Res {
        self.resources
            .iter()
            .find(|(u, _)| u == uri)
            .map(|(_, r)| r)
            .unwrap_or_else(|| panic!("{uri} listed in:\n{}", self.msg.text()))
    }
    fn uris(&self) -> Vec<&str> {
        self.resources.iter().map(|(u, _)| u.as_str()).collect()
    }
}

/// The parameter `name` of a Content-Type value.
fn ct_param(ct: &str, name: &str) -> Option<String> {
    ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Split a list NOTIFY with mailparse: RLMI first (its Content-ID the `start`), one PIDF part
/// per instance `cid`, each validated.
fn parse_list(msg: Msg) -> ListNotify {
    assert_eq!(msg.header("Require"), Some("eventlist"), "{}", msg.text());
    let ct = msg.header("Content-Type").expect("a body").to_owned();
    assert!(
        ct.to_ascii_lowercase().starts_with("multipart/related"),
        "{ct}"
    );
    assert_eq!(
        ct_param(&ct, "type").as_deref(),
        Some("application/rlmi+xml")
    );
    let start = ct_param(&ct, "start").expect("start parameter");
    let mut raw = format!("Content-Type: {ct}\r\n\r\n").into_bytes();
    raw.extend_from_slice(&msg.body);
    let mail = mailparse::parse_mail(&raw).expect("a MIME body");
    assert!(
        !mail.subparts.is_empty(),
        "parts in:\n{}",
        String::from_utf8_lossy(&msg.body)
    );
    let header = |p: &mailparse::ParsedMail, n: &str| {
        p.headers
            .iter()
            .find(|h| h.get_key().eq_ignore_ascii_case(n))
            .map(|h| h.get_value())
    };
    let root = &mail.subparts[0];
    assert_eq!(header(root, "Content-ID"), Some(start.clone()));
    assert_eq!(root.ctype.mimetype, "application/rlmi+xml");
    let rlmi_bytes = root.get_body_raw().unwrap();
    assert_valid_xml(&rlmi_bytes);
    let rlmi = parse_xml(&rlmi_bytes);
    assert_eq!((rlmi.ns.as_str(), rlmi.local.as_str()), (RLMI_NS, "list"));
    assert_eq!(rlmi.attr("uri"), Some(LIST));
    let mut parts: HashMap<String, XmlEl> = HashMap::new();
    for p in &mail.subparts[1..] {
        assert_eq!(p.ctype.mimetype, "application/pidf+xml");
        let cid = header(p, "Content-ID").expect("Content-ID");
        let cid = cid.trim_start_matches('<').trim_end_matches('>').to_owned();
        let body = p.get_body_raw().unwrap();
        assert_valid_xml(&body);
        parts.insert(cid, parse_xml(&body));
    }
    let mut resources = Vec::new();
    let mut cited = 0;
    for r in rlmi.kids(RLMI_NS, "resource") {
        let inst = r.kids(RLMI_NS, "instance").next();
        let doc = inst.and_then(|i| i.attr("cid")).map(|cid| {
            cited += 1;
            parts
                .get(cid)
                .unwrap_or_else(|| panic!("a part for cid {cid}"))
                .clone()
        });
        resources.push((
            r.attr("uri").unwrap().to_owned(),
            Res {
                name: r.kids(RLMI_NS, "name").next().map(|n| n.text.clone()),
                instance: inst.map(|i| {
                    (
                        i.attr("state").unwrap().to_owned(),
                        i.attr("reason").map(str::to_owned),
                    )
                }),
                doc,
            },
        ));
    }
    assert_eq!(cited, parts.len(), "every part is cited once");
    ListNotify {
        version: rlmi.attr("version").unwrap().parse().unwrap(),
        full: rlmi.attr("fullState") == Some("true"),
        list_name: rlmi.kids(RLMI_NS, "name").next().map(|n| n.text.clone()),
        resources,
        parts: mail.subparts.len() - 1,
        msg,
    }
}

/// The next NOTIFY of `w`'s dialog within `within`, unanswered.
fn next_raw(w: &Subscriber, within: Duration) -> Option<Msg> {
    let deadline = std::time::Instant::now() + within;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        let m = w.peer.recv(left)?;
        if m.start.starts_with("NOTIFY ") {
            assert_eq!(m.header("Call-ID"), w.sub.get("Call-ID"));
            return Some(m);
        }
    }
    None
}

/// The next list NOTIFY (within 5 s), answered 200, split.
fn list_notify(w: &Subscriber) -> ListNotify {
    let m = next_raw(w, Duration::from_secs(5)).expect("a list NOTIFY");
    w.peer.send(&response_to(&m, 200, "OK"));
    parse_list(m)
}

/// `aor` subscribes to its own watcher information (RFC 3857) on `s`.
fn watch_watchers(s: &Server, aor: &str) -> Subscriber {
    let (w, resp) = Subscriber::subscribe(
        s,
        aor,
        aor,
        "presence.winfo",
        "application/watcherinfo+xml",
        600,
        |r| r,
    );
    assert_eq!(resp.status(), 200, "{}", resp.text());
    w
}

fn publish(s: &Server, aor: &str, basic: &str, note: &str) {
    let peer = common::UdpPeer::new(s.udp);
    publish_pidf(&peer, aor, &pidf(aor, &unique("t"), basic, note));
}

fn user(name: &str) -> String {
    format!("sip:{name}@example.com")
}

#[test]
fn a_list_reports_full_state_then_one_partial_notify_for_two_publishes() {
    let s = Server::start();
    let xcap = Xcap::new(s.http);
    let [bob, carol, dave, erin, frank] = ["bob", "carol", "dave", "erin", "frank"].map(user);
    // dave decides later (confirm), erin blocks alice politely
    let confirm = pres_rule("a", &identity_one(ALICE), Some("confirm"), "");
    put_pres_rules(&xcap, &dave, &confirm);
    let polite = pres_rule("a", &identity_one(ALICE), Some("polite-block"), "");
    put_pres_rules(&xcap, &erin, &polite);
    publish(&s, &bob, "open", "bob here");
    publish(&s, &erin, "open", "erin here");
    put_inline_list(&xcap, &[&bob, &carol, &dave, &erin, &frank]);

    let w = subscribe_ok(&s);
    // the first NOTIFY is held (not answered) while bob and carol publish: the next one then
    // carries both changes, and only them
    let first = parse_list(next_raw(&w, Duration::from_secs(5)).expect("first NOTIFY"));
    assert_eq!(subscription_state(&first.msg).0, "active");
    assert_eq!((first.version, first.full), (0, true));
    assert_eq!(first.list_name.as_deref(), Some("Buddies"));
    assert_eq!(first.uris(), [&bob, &carol, &dave, &erin, &frank]);
    assert_eq!(first.get(&bob).state(), "active");
    assert_eq!(first.get(&bob).basic().as_deref(), Some("open"));
    assert_eq!(first.get(&dave).state(), "pending");
    assert!(
        first.get(&dave).doc.is_none(),
        "a pending member shows nothing"
    );
    // polite blocking looks like an active watch of someone offline
    assert_eq!(first.get(&erin).state(), "active");
    assert_eq!(first.get(&erin).basic().as_deref(), Some("closed"));
    assert_eq!(first.get(&carol).state(), "active");
    assert_eq!(first.parts, 4);

    publish(&s, &bob, "closed", "bob gone");
    publish(&s, &carol, "open", "carol here");
    w.peer.send(&response_to(&first.msg, 200, "OK"));
    let second = list_notify(&w);
    assert_eq!((second.version, second.full), (1, false));
    assert_eq!(
        second.uris(),
        [&bob, &carol],
        "only the members that changed"
    );
    assert_eq!(second.parts, 2);
    assert!(second.get(&bob).notes().contains(&"bob gone".to_owned()));
    assert_eq!(second.get(&carol).basic().as_deref(), Some("open"));
    w.assert_no_notify(GRACE);

    // dave allows alice: his instance becomes active in a partial NOTIFY
    let allow = pres_rule(
        "a",
        &identity_one(ALICE),
        Some("allow"),
        common::PROVIDE_EVERYTHING,
    );
    put_pres_rules(&xcap, &dave, &allow);
    let third = list_notify(&w);
    assert_eq!((third.version, third.full), (2, false));
    assert_eq!(third.uris(), [&dave]);
    assert_eq!(third.get(&dave).state(), "active");
}

#[test]
fn nested_lists_entry_refs_and_external_lists_are_flattened() {
    let s = Server::start();
    let xcap = Xcap::new(s.http);
    let [bob, carol, dave, erin, frank, grace, henry] =
        ["bob", "carol", "dave", "erin", "frank", "grace", "henry"].map(user);
    // frank shares his list with alice (his rules allow her); grace does not
    put_pres_rules(
        &xcap,
        &frank,
        &pres_rule("a", &identity_one(ALICE), Some("allow"), ""),
    );
    put_pres_rules(
        &xcap,
        &grace,
        &pres_rule("a", &identity_one(ALICE), Some("block"), ""),
    );
    put(
        &xcap,
        &rl_path(&frank),
        RL_MIME,
        &lists_doc(&format!(
            "<list name=\"shared\"><entry uri=\"{erin}\"/></list>"
        )),
    );
    put(
        &xcap,
        &rl_path(&grace),
        RL_MIME,
        &lists_doc(&format!(
            "<list name=\"secret\"><entry uri=\"{henry}\"/></list>"
        )),
    );
    let external =
        |owner: &str, list: &str| format!("<external anchor=\"{}\"/>", list_url(&s, owner, list));
    let entry_ref = format!(
        "<entry-ref ref=\"resource-lists/users/{ALICE}/index/~~/resource-lists/list%5b@name=%22work%22%5d/entry%5b@uri=%22{dave}%22%5d\"><display-name>Dave (work)</display-name></entry-ref>"
    );
    let alice_lists = format!(
        "<list name=\"friends\"><entry uri=\"{bob}\"><display-name>Bob</display-name></entry>\
<list name=\"inner\"><entry uri=\"{carol}\"/><entry uri=\"{bob}\"/></list>{entry_ref}{}{}</list>\
<list name=\"work\"><entry uri=\"{dave}\"/></list>",
        external(&frank, "shared"),
        external(&grace, "secret"),
    );
    put(&xcap, &rl_path(ALICE), RL_MIME, &lists_doc(&alice_lists));
    put_list_service(&s, &xcap, "friends");

    let w = subscribe_ok(&s);
    let n = list_notify(&w);
    // bob once, in first place; grace's list is not alice's to read
    assert_eq!(n.uris(), [&bob, &carol, &dave, &erin]);
    assert_eq!(n.get(&bob).name.as_deref(), Some("Bob"));
    assert_eq!(n.get(&dave).name.as_deref(), Some("Dave (work)"));
    assert!(n.resources.iter().all(|(_, r)| r.state() == "active"));
    // grace allows alice after all: her list joins alice's at once
    put_pres_rules(
        &xcap,
        &grace,
        &pres_rule("a", &identity_one(ALICE), Some("allow"), ""),
    );
    let n = list_notify(&w);
    assert!(n.full);
    assert_eq!(n.uris(), [&bob, &carol, &dave, &erin, &henry]);
}

#[test]
fn a_list_that_refers_to_itself_is_answered_once_around() {
    let s = Server::start();
    let xcap = Xcap::new(s.http);
    let [bob, carol] = ["bob", "carol"].map(user);
    let anchor = |list: &str| format!("<external anchor=\"{}\"/>", list_url(&s, ALICE, list));
    let lists = format!(
        "<list name=\"a\"><entry uri=\"{bob}\"/>{}</list><list name=\"b\"><entry uri=\"{carol}\"/>{}</list>",
        anchor("b"),
        anchor("a")
    );
    put(&xcap, &rl_path(ALICE), RL_MIME, &lists_doc(&lists));
    put_list_service(&s, &xcap, "a");
    let w = subscribe_ok(&s);
    let n = list_notify(&w);
    assert_eq!(n.uris(), [&bob, &carol]);
}

#[test]
fn a_list_edited_over_xcap_gains_and_loses_members_live() {
    let s = Server::start();
    let xcap = Xcap::new(s.http);
    let [bob, carol, dave] = ["bob", "carol", "dave"].map(user);
    put_inline_list(&xcap, &[&bob, &carol]);
    let w = subscribe_ok(&s);
    assert_eq!(list_notify(&w).uris(), [&bob, &carol]);
    put_inline_list(&xcap, &[&carol, &dave]);
    let n = list_notify(&w);
    assert!(n.full, "a changed list is reported in full");
    assert_eq!(n.version, 1);
    assert_eq!(n.uris(), [&carol, &dave]);
    // bob left the list: his changes reach nobody; dave's do
    publish(&s, &bob, "open", "bob");
    w.assert_no_notify(GRACE);
    publish(&s, &dave, "open", "dave");
    let n = list_notify(&w);
    assert_eq!(n.uris(), [&dave]);
    assert_eq!(n.get(&dave).basic().as_deref(), Some("open"));
    // the service removed: the subscription ends
    let r = xcap.delete(&rls_path(ALICE));
    assert_eq!(r.status, 200, "{}", r.text());
    let m = next_raw(&w, Duration::from_secs(5)).expect("final NOTIFY");
    w.peer.send(&response_to(&m, 200, "OK"));
    let (state, params) = subscription_state(&m);
    assert_eq!(state, "terminated");
    assert!(
        params.contains(&("reason".into(), "noresource".into())),
        "{}",
        m.text()
    );
}

#[test]
fn eventlist_support_accept_and_ownership_are_checked() {
    let s = Server::start();
    let xcap = Xcap::new(s.http);
    put_inline_list(&xcap, &[&user("bob")]);
    // RFC 4662 §4.1: no `Supported: eventlist`
    let (_, r) = Subscriber::subscribe(&s, LIST, ALICE, "presence", ACCEPT, 600, |r| r);
    assert_eq!(r.status(), 421, "{}", r.text());
    assert_eq!(r.header("Require"), Some("eventlist"));
    // RFC 4662 §4.2: PIDF alone cannot carry a list
    let (_, r) = subscribe_with(&s, ALICE, |r| r.set("Accept", "application/pidf+xml"));
    assert_eq!(r.status(), 406, "{}", r.text());
    assert!(r.header("Accept").unwrap().contains("multipart/related"));
    // another user's list
    let (_, r) = subscribe_with(&s, &user("mallory"), |r| r);
    assert_eq!(r.status(), 403, "{}", r.text());
    // OPTIONS says eventlist is supported
    let peer = common::UdpPeer::new(s.udp);
    let r = peer.call(&peer.req("OPTIONS", "sip:presenced@example.com"));
    assert!(
        r.header("Supported").unwrap().contains("eventlist"),
        "{}",
        r.text()
    );
}

#[test]
fn changes_inside_the_minimum_interval_merge_into_one_notify() {
    let s = Server::start_with("[rls]\nmin_notify_interval_ms = 1500\n", &[]);
    let xcap = Xcap::new(s.http);
    let [bob, carol] = ["bob", "carol"].map(user);
    put_inline_list(&xcap, &[&bob, &carol]);
    let w = subscribe_ok(&s);
    assert_eq!(list_notify(&w).version, 0);
    publish(&s, &bob, "open", "one");
    publish(&s, &carol, "open", "two");
    publish(&s, &bob, "closed", "three");
    let n = list_notify(&w);
    assert_eq!((n.version, n.full), (1, false));
    assert_eq!(n.uris(), [&bob, &carol]);
    assert!(
        n.get(&bob).notes().contains(&"three".to_owned()),
        "bob's newest state"
    );
    w.assert_no_notify(GRACE);
}

#[test]
fn members_past_the_limit_are_listed_without_a_subscription() {
    let s = Server::start_with("[rls]\nmax_members = 2\n", &[]);
    let xcap = Xcap::new(s.http);
    let [bob, carol, dave] = ["bob", "carol", "dave"].map(user);
    put_inline_list(&xcap, &[&bob, &carol, &dave]);
    let w = subscribe_ok(&s);
    let n = list_notify(&w);
    assert_eq!(n.uris(), [&bob, &carol, &dave]);
    assert_eq!(n.get(&dave).state(), "none");
    publish(&s, &dave, "open", "over");
    w.assert_no_notify(GRACE);
}

#[test]
fn unsubscribing_ends_the_list_and_its_back_end_subscriptions() {
    let s = Server::start();
    let xcap = Xcap::new(s.http);
    let bob = user("bob");
    put_inline_list(&xcap, &[&bob]);
    let mut w = subscribe_ok(&s);
    list_notify(&w);
    let r = w.resubscribe(0);
    assert_eq!(r.status(), 200, "{}", r.text());
    let m = next_raw(&w, Duration::from_secs(5)).expect("final NOTIFY");
    w.peer.send(&response_to(&m, 200, "OK"));
    assert_eq!(subscription_state(&m).0, "terminated");
    let last = parse_list(m);
    assert_eq!(
        (last.version, last.full),
        (1, true),
        "after a SUBSCRIBE: full state"
    );
    assert_eq!(last.uris(), [&bob]);
    publish(&s, &bob, "open", "after");
    w.assert_no_notify(GRACE);
    // bob's watchers no longer include alice's back-end subscription
    let winfo = watch_watchers(&s, &bob);
    let n = winfo.notify();
    let doc = parse_xml(&n.body);
    let active: Vec<_> = doc
        .all("urn:ietf:params:xml:ns:watcherinfo", "watcher")
        .into_iter()
        .filter(|w| w.attr("status") == Some("active"))
        .collect();
    assert!(active.is_empty(), "{}", String::from_utf8_lossy(&n.body));
}

#[test]
fn a_refresh_reports_the_full_state_again() {
    let s = Server::start();
    let xcap = Xcap::new(s.http);
    let [bob, carol] = ["bob", "carol"].map(user);
    put_inline_list(&xcap, &[&bob, &carol]);
    let mut w = subscribe_ok(&s);
    list_notify(&w);
    let r = w.resubscribe(600);
    assert_eq!(r.status(), 200, "{}", r.text());
    assert_eq!(r.header("Require"), Some("eventlist"));
    let n = list_notify(&w);
    assert_eq!((n.version, n.full), (1, true));
    assert_eq!(n.uris(), [&bob, &carol]);
}

#[test]
fn a_member_in_another_domain_is_watched_through_a_second_server() {
    // "other.example" is served by a second presenced, the other network's presence server
    let other = Server::start_with("[presence]\ndomains = [\"other.example\"]\n", &[]);
    let s = Server::start_with(
        &format!(
            "[presence]\ndomains = [\"example.com\"]\n[rls]\noutbound_proxy = \"{}\"\n",
            other.udp
        ),
        &[],
    );
    let xcap = Xcap::new(s.http);
    let (carol, bob) = (user("carol"), "sip:bob@other.example".to_owned());
    let peer = common::UdpPeer::new(other.udp);
    publish_pidf(&peer, &bob, &pidf(&bob, "t1", "open", "remote bob"));
    put_inline_list(&xcap, &[&carol, &bob]);
    let mut w = subscribe_ok(&s);
    let first = list_notify(&w);
    assert_eq!(first.uris(), [&carol, &bob]);
    // bob's state arrives when the other server notifies presenced
    let mut seen = first.get(&bob).clone();
    for _ in 0..3 {
        if seen.notes().contains(&"remote bob".to_owned()) {
            break;
        }
        seen = list_notify(&w).get(&bob).clone();
    }
    assert_eq!(seen.state(), "active");
    assert_eq!(seen.notes(), ["remote bob"]);
    // a change on the other server reaches the list
    publish_pidf(&peer, &bob, &pidf(&bob, "t2", "closed", "bob left"));
    let n = list_notify(&w);
    assert_eq!(n.uris(), [&bob]);
    assert!(n.get(&bob).notes().contains(&"bob left".to_owned()));
    // the other server lists alice (the list's subscriber) among bob's watchers, until the end
    // of the list ends the back-end subscription there too
    let winfo = watch_watchers(&other, &bob);
    let alice_status = |n: &Msg| {
        parse_xml(&n.body)
            .all("urn:ietf:params:xml:ns:watcherinfo", "watcher")
            .into_iter()
            .find(|w| w.text == ALICE)
            .and_then(|w| w.attr("status").map(str::to_owned))
    };
    assert_eq!(alice_status(&winfo.notify()).as_deref(), Some("active"));
    let r = w.resubscribe(0);
    assert_eq!(r.status(), 200);
    let m = next_raw(&w, Duration::from_secs(5)).expect("final NOTIFY");
    w.peer.send(&response_to(&m, 200, "OK"));
    assert_eq!(alice_status(&winfo.notify()).as_deref(), Some("terminated"));
}

#[test]
fn a_fetch_gets_the_full_state_once_and_a_list_of_another_package_is_refused() {
    let s = Server::start();
    let xcap = Xcap::new(s.http);
    let bob = user("bob");
    put_inline_list(&xcap, &[&bob]);
    // RFC 6665 §4.4.3: Expires 0 fetches the state and ends
    let (w, r) = Subscriber::subscribe(&s, LIST, ALICE, "presence", ACCEPT, 0, |r| {
        r.set("Supported", "eventlist")
    });
    assert_eq!(r.status(), 200, "{}", r.text());
    let n = list_notify(&w);
    assert_eq!(subscription_state(&n.msg).0, "terminated");
    assert_eq!((n.version, n.full), (0, true));
    assert_eq!(n.uris(), [&bob]);
    // RFC 4826 §4.3: a service for other packages only is not a presence list
    let doc = String::from_utf8(services_doc(
        LIST,
        "<list><rl:entry uri=\"sip:bob@example.com\"/></list>",
    ))
    .unwrap()
    .replace(
        "<package>presence</package>",
        "<package>message-summary</package>",
    );
    put(&xcap, &rls_path(ALICE), RLS_MIME, doc.as_bytes());
    let (_, r) = subscribe_with(&s, ALICE, |r| r);
    assert_eq!(r.status(), 489, "{}", r.text());
}

#[test]
fn a_member_document_holding_the_boundary_gets_another_for_that_notify_only() {
    let s = Server::start();
    let xcap = Xcap::new(s.http);
    let [bob, carol] = ["bob", "carol"].map(user);
    put_inline_list(&xcap, &[&bob, &carol]);
    let w = subscribe_ok(&s);
    let first = list_notify(&w);
    let ct = first.msg.header("Content-Type").unwrap().to_owned();
    let boundary = ct_param(&ct, "boundary").expect("a boundary");
    // bob's note holds the delimiter: that NOTIFY needs a boundary his document lacks
    publish(&s, &bob, "open", &format!("--{boundary}"));
    let odd = list_notify(&w);
    let odd_boundary = ct_param(odd.msg.header("Content-Type").unwrap(), "boundary").unwrap();
    assert_ne!(odd_boundary, boundary);
    assert_eq!((odd.version, odd.uris()), (1, vec![bob.as_str()]));
    assert!(odd.get(&bob).notes().contains(&format!("--{boundary}")));
    // the next NOTIFYs go back to the subscription's own, each written whole
    for (n, note) in [(2, "plain again"), (3, "and again")] {
        publish(&s, &carol, "open", note);
        let next = list_notify(&w);
        assert_eq!(next.msg.header("Content-Type"), Some(ct.as_str()));
        assert_eq!((next.version, next.uris()), (n, vec![carol.as_str()]));
        assert!(next.get(&carol).notes().contains(&note.to_owned()));
        let body = String::from_utf8_lossy(&next.msg.body).into_owned();
        assert!(body.starts_with(&format!("--{boundary}\r\n")), "{body}");
        assert!(body.ends_with(&format!("\r\n--{boundary}--\r\n")), "{body}");
        assert_eq!(body.matches(&format!("--{boundary}")).count(), 3, "{body}");
    }
}
