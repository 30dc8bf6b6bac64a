//! Watcher information (RFC 3857, documents RFC 3858) end to end: a presentity subscribes to
//! `presence.winfo` and learns who watches it: full state first, then partial documents with
//! what changed, one version further each; nobody else may subscribe. Every watcherinfo body
//! is validated with the schemas.

mod common;

use std::time::Duration;

use common::{
    Msg, PROVIDE_EVERYTHING, Server, Subscriber, Xcap, XmlEl, identity_one, parse_xml, pres_rule,
    put_pres_rules, subscription_state,
};

const ALICE: &str = "sip:alice@example.com";
const BOB: &str = "sip:bob@example.com";
const CAROL: &str = "sip:carol@example.com";
const DAVE: &str = "sip:dave@example.com";
const WINFO_NS: &str = "urn:ietf:params:xml:ns:watcherinfo";
const WINFO: &str = "application/watcherinfo+xml";
const CONFIRM: &str = "[privacy]\ndefault = \"confirm\"\n";

/// A `presence.winfo` SUBSCRIBE to alice's watchers from `from`.
fn winfo_subscribe(s: &Server, from: &str) -> (Subscriber, Msg) {
    Subscriber::subscribe(s, ALICE, from, "presence.winfo", WINFO, 600, |r| r)
}

/// A presence SUBSCRIBE to alice from `from`; its first NOTIFY answered.
fn watch(s: &Server, from: &str) -> (Subscriber, Msg) {
    let (w, resp) = Subscriber::subscribe(
        s,
        ALICE,
        from,
        "presence",
        "application/pidf+xml",
        600,
        |r| r,
    );
    assert_eq!(resp.status(), 200, "SUBSCRIBE from {from}: {}", resp.text());
    let n = w.notify();
    (w, n)
}

/// One `<watcher>` as read from a document.
#[derive(Debug, Clone)]
struct W {
    id: String,
    uri: String,
    status: String,
    event: String,
    display_name: Option<String>,
    expiration: Option<u64>,
    duration: Option<u64>,
}

/// A watcherinfo document: (version, state, watchers of alice's presence).
fn winfo(n: &Msg) -> (u32, String, Vec<W>) {
    assert_eq!(n.header("Content-Type"), Some(WINFO), "{}", n.text());
    let d: XmlEl = parse_xml(&n.body);
    assert_eq!((d.ns.as_str(), d.local.as_str()), (WINFO_NS, "watcherinfo"));
    let version = d.attr("version").expect("version").parse().unwrap();
    let state = d.attr("state").expect("state").to_owned();
    let lists: Vec<&XmlEl> = d.kids(WINFO_NS, "watcher-list").collect();
    assert_eq!(lists.len(), 1, "one watcher-list: {}", n.text());
    assert_eq!(lists[0].attr("resource"), Some(ALICE), "{}", n.text());
    assert_eq!(lists[0].attr("package"), Some("presence"), "{}", n.text());
    let watchers = lists[0]
        .kids(WINFO_NS, "watcher")
        .map(|w| W {
            id: w.attr("id").expect("id").to_owned(),
            uri: w.text.clone(),
            status: w.attr("status").expect("status").to_owned(),
            event: w.attr("event").expect("event").to_owned(),
            display_name: w.attr("display-name").map(str::to_owned),
            expiration: w.attr("expiration").map(|v| v.parse().unwrap()),
            duration: w.attr("duration-subscribed").map(|v| v.parse().unwrap()),
        })
        .collect();
    (version, state, watchers)
}

fn only<'a>(ws: &'a [W], uri: &str, body: &Msg) -> &'a W {
    let found: Vec<&W> = ws.iter().filter(|w| w.uri == uri).collect();
    assert_eq!(found.len(), 1, "{uri} listed once: {}", body.text());
    found[0]
}

#[test]
fn full_then_partial_state_through_pending_to_active() {
    let s = Server::start_with(CONFIRM, &[]);
    let (wi, resp) = winfo_subscribe(&s, ALICE);
    assert_eq!(resp.status(), 200, "{}", resp.text());
    let n = wi.notify();
    assert!(
        subscription_state(&n).0 == "active",
        "the presentity's own winfo subscription is active: {}",
        n.text()
    );
    let (v, st, ws) = winfo(&n);
    assert_eq!((v, st.as_str()), (0, "full"), "{}", n.text());
    assert!(ws.is_empty(), "nobody watches yet: {}", n.text());
    // bob subscribes: pending (no rule, default confirm)
    let (bob, first) = Subscriber::subscribe(
        &s,
        ALICE,
        &format!("\"Bob\" <{BOB}>"),
        "presence",
        "application/pidf+xml",
        600,
        |r| r,
    );
    assert_eq!(first.status(), 200, "{}", first.text());
    let bn = bob.notify();
    assert_eq!(subscription_state(&bn).0, "pending", "{}", bn.text());
    let n = wi.notify();
    let (v, st, ws) = winfo(&n);
    assert_eq!((v, st.as_str()), (1, "partial"), "{}", n.text());
    assert_eq!(ws.len(), 1, "{}", n.text());
    let w = only(&ws, BOB, &n);
    assert_eq!(
        (w.status.as_str(), w.event.as_str()),
        ("pending", "subscribe"),
        "{}",
        n.text()
    );
    assert_eq!(w.display_name.as_deref(), Some("Bob"), "{}", n.text());
    assert!(!w.id.is_empty());
    let exp = w.expiration.expect("expiration of a pending watcher");
    assert!((1..=600).contains(&exp), "{}", n.text());
    let bob_id = w.id.clone();
    // alice decides: a rule allowing bob
    put_pres_rules(
        &Xcap::new(s.http),
        ALICE,
        &pres_rule("a", &identity_one(BOB), Some("allow"), PROVIDE_EVERYTHING),
    );
    let n = wi.notify();
    let (v, st, ws) = winfo(&n);
    assert_eq!((v, st.as_str()), (2, "partial"), "{}", n.text());
    assert_eq!(ws.len(), 1, "only bob changed: {}", n.text());
    let w = only(&ws, BOB, &n);
    assert_eq!(w.id, bob_id, "the same id in every document");
    assert_eq!(
        (w.status.as_str(), w.event.as_str()),
        ("active", "approved"),
        "{}",
        n.text()
    );
    assert!(w.duration.is_some(), "duration-subscribed: {}", n.text());
    // and bob is told
    let bn = bob.notify();
    assert_eq!(subscription_state(&bn).0, "active", "{}", bn.text());
}

#[test]
fn pending_watchers_from_before_are_in_the_full_state() {
    let s = Server::start_with(CONFIRM, &[]);
    put_pres_rules(
        &Xcap::new(s.http),
        ALICE,
        &pres_rule("d", &identity_one(DAVE), Some("allow"), PROVIDE_EVERYTHING),
    );
    let (_b, n) = watch(&s, BOB);
    assert_eq!(subscription_state(&n).0, "pending", "{}", n.text());
    let (_c, n) = watch(&s, CAROL);
    assert_eq!(subscription_state(&n).0, "pending", "{}", n.text());
    let (_d, n) = watch(&s, DAVE);
    assert_eq!(subscription_state(&n).0, "active", "{}", n.text());
    let (wi, resp) = winfo_subscribe(&s, ALICE);
    assert_eq!(resp.status(), 200, "{}", resp.text());
    let n = wi.notify();
    let (v, st, ws) = winfo(&n);
    assert_eq!((v, st.as_str()), (0, "full"), "{}", n.text());
    assert_eq!(ws.len(), 3, "{}", n.text());
    for uri in [BOB, CAROL] {
        let w = only(&ws, uri, &n);
        assert_eq!(w.status, "pending", "{}", n.text());
        assert_eq!(w.event, "subscribe", "{}", n.text());
        assert!(w.expiration.is_some(), "{}", n.text());
    }
    assert_eq!(only(&ws, DAVE, &n).status, "active", "{}", n.text());
    let mut ids: Vec<&str> = ws.iter().map(|w| w.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "distinct ids: {}", n.text());
    // nothing changes: no partial document follows
    wi.assert_no_notify(Duration::from_millis(700));
}

#[test]
fn someone_else_may_not_see_the_watchers() {
    let s = Server::start_with(CONFIRM, &[]);
    let (w, resp) = winfo_subscribe(&s, BOB);
    assert_eq!(resp.status(), 403, "{}", resp.text());
    w.assert_no_notify(Duration::from_millis(500));
    // bob may see his own
    let (me, resp) = Subscriber::subscribe(&s, BOB, BOB, "presence.winfo", WINFO, 600, |r| r);
    assert_eq!(resp.status(), 200, "{}", resp.text());
    let n = me.notify();
    let d = parse_xml(&n.body);
    assert_eq!(d.attr("state"), Some("full"), "{}", n.text());
}

/// A watcher blocked while active, and one unsubscribing, are reported terminated.
#[test]
fn rejection_and_unsubscribe_are_reported() {
    let s = Server::start_with(CONFIRM, &[]);
    let xcap = Xcap::new(s.http);
    let both = format!(
        "{}{}",
        pres_rule("b", &identity_one(BOB), Some("allow"), PROVIDE_EVERYTHING),
        pres_rule("c", &identity_one(CAROL), Some("allow"), PROVIDE_EVERYTHING)
    );
    put_pres_rules(&xcap, ALICE, &both);
    let (bob, n) = watch(&s, BOB);
    assert_eq!(subscription_state(&n).0, "active");
    let (mut carol, n) = watch(&s, CAROL);
    assert_eq!(subscription_state(&n).0, "active");
    let (wi, _) = winfo_subscribe(&s, ALICE);
    let n = wi.notify();
    let (v, st, ws) = winfo(&n);
    assert_eq!((v, st.as_str(), ws.len()), (0, "full", 2), "{}", n.text());
    assert!(ws.iter().all(|w| w.status == "active"), "{}", n.text());
    // bob blocked
    put_pres_rules(
        &xcap,
        ALICE,
        &format!(
            "{}{}",
            pres_rule("b", &identity_one(BOB), Some("block"), ""),
            pres_rule("c", &identity_one(CAROL), Some("allow"), PROVIDE_EVERYTHING)
        ),
    );
    let bn = bob.notify();
    assert_eq!(subscription_state(&bn).0, "terminated", "{}", bn.text());
    let n = wi.notify();
    let (v, st, ws) = winfo(&n);
    assert_eq!((v, st.as_str()), (1, "partial"), "{}", n.text());
    assert_eq!(ws.len(), 1, "{}", n.text());
    let w = only(&ws, BOB, &n);
    assert_eq!(
        (w.status.as_str(), w.event.as_str()),
        ("terminated", "rejected"),
        "{}",
        n.text()
    );
    assert!(
        w.expiration.is_none(),
        "no expiration once terminated: {}",
        n.text()
    );
    // carol unsubscribes (bob's own end may be told again first: see
    // a_rejected_watcher_is_reported_once)
    let r = carol.resubscribe(0);
    assert_eq!(r.status(), 200, "{}", r.text());
    let cn = carol.notify();
    assert_eq!(subscription_state(&cn).0, "terminated", "{}", cn.text());
    let mut last = v;
    loop {
        let n = wi.notify();
        let (v, st, ws) = winfo(&n);
        assert_eq!((v, st.as_str()), (last + 1, "partial"), "{}", n.text());
        last = v;
        if let Some(w) = ws.iter().find(|w| w.uri == CAROL) {
            assert_eq!(w.status, "terminated", "{}", n.text());
            assert!(w.expiration.is_none(), "{}", n.text());
            break;
        }
        assert!(
            ws.iter().all(|w| w.uri == BOB && w.status == "terminated"),
            "{}",
            n.text()
        );
    }
}

/// A watcher's termination is one change: told once, not again when its subscription is
/// cleared after the final NOTIFY. Carol's later unsubscribe shows what the next document
/// holds.
#[test]
fn a_rejected_watcher_is_reported_once() {
    let s = Server::start_with(CONFIRM, &[]);
    let xcap = Xcap::new(s.http);
    put_pres_rules(
        &xcap,
        ALICE,
        &format!(
            "{}{}",
            pres_rule("b", &identity_one(BOB), Some("allow"), PROVIDE_EVERYTHING),
            pres_rule("c", &identity_one(CAROL), Some("allow"), PROVIDE_EVERYTHING)
        ),
    );
    let (bob, _) = watch(&s, BOB);
    let (mut carol, _) = watch(&s, CAROL);
    let (wi, _) = winfo_subscribe(&s, ALICE);
    assert_eq!(winfo(&wi.notify()).0, 0);
    put_pres_rules(
        &xcap,
        ALICE,
        &format!(
            "{}{}",
            pres_rule("b", &identity_one(BOB), Some("block"), ""),
            pres_rule("c", &identity_one(CAROL), Some("allow"), PROVIDE_EVERYTHING)
        ),
    );
    let bn = bob.notify();
    assert_eq!(subscription_state(&bn).0, "terminated", "{}", bn.text());
    let n = wi.notify();
    let (v, _, ws) = winfo(&n);
    assert_eq!(v, 1);
    assert_eq!(only(&ws, BOB, &n).event, "rejected", "{}", n.text());
    let r = carol.resubscribe(0);
    assert_eq!(r.status(), 200, "{}", r.text());
    carol.notify();
    let n = wi.notify();
    let (v, st, ws) = winfo(&n);
    assert_eq!((v, st.as_str()), (2, "partial"), "{}", n.text());
    let uris: Vec<&str> = ws.iter().map(|w| w.uri.as_str()).collect();
    assert_eq!(
        uris,
        vec![CAROL],
        "only carol changed since version 1 (bob's termination was told then):\n{}",
        n.text()
    );
}

/// RFC 3857 §5.2 / RFC 3858 §4: a refresh gets full state, and the version goes on counting.
#[test]
fn refresh_gets_full_state_with_the_next_version() {
    let s = Server::start_with(CONFIRM, &[]);
    let (mut wi, _) = winfo_subscribe(&s, ALICE);
    let n = wi.notify();
    assert_eq!(winfo(&n).0, 0);
    let (_b, _) = watch(&s, BOB);
    let n = wi.notify();
    let (v, st, _) = winfo(&n);
    assert_eq!((v, st.as_str()), (1, "partial"), "{}", n.text());
    let r = wi.resubscribe(600);
    assert_eq!(r.status(), 200, "{}", r.text());
    let n = wi.notify();
    let (v, st, ws) = winfo(&n);
    assert_eq!((v, st.as_str()), (2, "full"), "{}", n.text());
    let w = only(&ws, BOB, &n);
    assert_eq!(w.status, "pending", "{}", n.text());
}

/// RFC 3857 §3.2.2: a pending subscription that times out is `waiting` (event `timeout`), so
/// the presentity can still decide about it; an active one that times out is `terminated`.
#[test]
fn timed_out_watchers_are_waiting_or_terminated() {
    let s = Server::start_with(
        &format!("[presence]\nsubscribe_min_expires = 1\n{CONFIRM}"),
        &[],
    );
    put_pres_rules(
        &Xcap::new(s.http),
        ALICE,
        &pres_rule("c", &identity_one(CAROL), Some("allow"), PROVIDE_EVERYTHING),
    );
    let (wi, _) = winfo_subscribe(&s, ALICE);
    assert_eq!(winfo(&wi.notify()).0, 0);
    let short = |from: &str| {
        let (w, resp) = Subscriber::subscribe(
            &s,
            ALICE,
            from,
            "presence",
            "application/pidf+xml",
            2,
            |r| r,
        );
        assert_eq!(resp.status(), 200, "{}", resp.text());
        assert_eq!(resp.header("Expires"), Some("2"), "{}", resp.text());
        w.notify();
        w
    };
    let bob = short(BOB);
    let carol = short(CAROL);
    // both expire: their final NOTIFYs
    for w in [&bob, &carol] {
        let n = w.notify();
        assert_eq!(subscription_state(&n).0, "terminated", "{}", n.text());
    }
    // the watcher documents up to both ends
    let mut seen: Vec<W> = Vec::new();
    while !(seen.iter().any(|w| w.uri == BOB && w.status != "pending")
        && seen.iter().any(|w| w.uri == CAROL && w.status != "active"))
    {
        let n = wi.notify();
        let (_, st, ws) = winfo(&n);
        assert_eq!(st, "partial", "{}", n.text());
        seen.extend(ws);
    }
    let last = |uri: &str| seen.iter().rev().find(|w| w.uri == uri).unwrap().clone();
    let b = last(BOB);
    assert_eq!(
        (b.status.as_str(), b.event.as_str()),
        ("waiting", "timeout"),
        "{seen:?}"
    );
    let c = last(CAROL);
    assert_eq!(
        (c.status.as_str(), c.event.as_str()),
        ("terminated", "timeout"),
        "{seen:?}"
    );
    // a waiting watcher stays listed: a new watcher-information subscription's full state
    // names bob as waiting, and not carol, whose subscription simply ended
    let (again, resp) = winfo_subscribe(&s, ALICE);
    assert_eq!(resp.status(), 200, "{}", resp.text());
    let n = again.notify();
    let (_, st, ws) = winfo(&n);
    assert_eq!(st, "full", "{}", n.text());
    let listed: Vec<(&str, &str)> = ws
        .iter()
        .map(|w| (w.uri.as_str(), w.status.as_str()))
        .collect();
    assert_eq!(listed, vec![(BOB, "waiting")], "{}", n.text());
}
