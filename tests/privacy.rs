//! Presence authorization end to end (RFC 5025 pres-rules on RFC 4745 common-policy, with OMA's
//! extensions): a presentity's rules, written over XCAP, decide each presence SUBSCRIBE (allow,
//! block, polite-block, confirm) and what each watcher is shown; changes of the rules or of an
//! external list they name move live subscriptions. Everything is asserted on the wire; every
//! PIDF body received is validated with the schemas.

mod common;

use std::time::Duration;

use common::{
    Msg, PROVIDE_EVERYTHING, Server, Subscriber, UdpPeer, Xcap, XmlEl, assert_valid_xml,
    identity_one, parse_xml, pidf, pres_rule, pres_rules_doc, publish_pidf, put_pres_rules,
    subscription_state,
};

const ALICE: &str = "sip:alice@example.com";
const BOB: &str = "sip:bob@example.com";
const CAROL: &str = "sip:carol@example.com";
const DAVE: &str = "sip:dave@example.com";

const PIDF_NS: &str = "urn:ietf:params:xml:ns:pidf";
const DM_NS: &str = "urn:ietf:params:xml:ns:pidf:data-model";
const RPID_NS: &str = "urn:ietf:params:xml:ns:pidf:rpid";

/// How long a NOTIFY that should not come is waited for, once a NOTIFY of the same tick reached
/// another watcher (it would have been sent with that one).
const GRACE: Duration = Duration::from_millis(700);

/// Privacy settings of these tests: no rule decides → pending.
const CONFIRM: &str = "[privacy]\ndefault = \"confirm\"\n";
const BLOCK: &str = "[privacy]\ndefault = \"block\"\n";

/// A presence SUBSCRIBE to alice from `from`, through `f`.
fn watch_with(
    s: &Server,
    from: &str,
    f: impl FnOnce(common::Req) -> common::Req,
) -> (Subscriber, Msg) {
    Subscriber::subscribe(s, ALICE, from, "presence", "application/pidf+xml", 600, f)
}

fn watch(s: &Server, from: &str) -> (Subscriber, Msg) {
    watch_with(s, from, |r| r)
}

/// Subscribe and expect 200; returns the subscriber and its first NOTIFY (answered).
fn watch_ok(s: &Server, from: &str) -> (Subscriber, Msg) {
    let (w, resp) = watch(s, from);
    assert_eq!(resp.status(), 200, "SUBSCRIBE from {from}: {}", resp.text());
    let n = w.notify();
    (w, n)
}

fn state(n: &Msg) -> String {
    subscription_state(n).0
}

fn param(n: &Msg, name: &str) -> Option<String> {
    subscription_state(n)
        .1
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn text(n: &Msg) -> String {
    String::from_utf8_lossy(&n.body).into_owned()
}

/// The PIDF body of a NOTIFY, parsed (it has been schema-validated on receipt).
fn doc(n: &Msg) -> XmlEl {
    assert!(!n.body.is_empty(), "a PIDF body:\n{}", n.text());
    let d = parse_xml(&n.body);
    assert_eq!((d.ns.as_str(), d.local.as_str()), (PIDF_NS, "presence"));
    d
}

/// The ids of the tuples of a PIDF document.
fn tuple_ids(d: &XmlEl) -> Vec<String> {
    d.kids(PIDF_NS, "tuple")
        .map(|t| t.attr("id").unwrap_or_default().to_owned())
        .collect()
}

fn tuple<'a>(d: &'a XmlEl, id: &str) -> &'a XmlEl {
    d.kids(PIDF_NS, "tuple")
        .find(|t| t.attr("id") == Some(id))
        .unwrap_or_else(|| panic!("tuple {id} in {d:#?}"))
}

/// Every note text of a document (PIDF notes of tuples and the root, data-model notes of
/// persons and devices).
fn notes(d: &XmlEl) -> Vec<String> {
    let mut v: Vec<String> = d
        .all(PIDF_NS, "note")
        .iter()
        .map(|n| n.text.clone())
        .collect();
    v.extend(d.all(DM_NS, "note").iter().map(|n| n.text.clone()));
    v
}

/// Alice's publisher: one publication, modified in place.
struct Publisher {
    peer: UdpPeer,
    etag: Option<String>,
}

impl Publisher {
    fn new(s: &Server) -> Publisher {
        Publisher {
            peer: UdpPeer::new(s.udp),
            etag: None,
        }
    }

    /// One tuple `t1` (open) with the note `note`: the first call publishes, later ones modify.
    fn publish(&mut self, note: &str) {
        self.publish_status("open", note)
    }

    /// One tuple `t1` with basic status `basic` and the note `note`.
    fn publish_status(&mut self, basic: &str, note: &str) {
        let body = pidf(ALICE, "t1", basic, note);
        let resp = match &self.etag {
            None => publish_pidf(&self.peer, ALICE, &body),
            Some(tag) => {
                let r = self
                    .peer
                    .req("PUBLISH", ALICE)
                    .set("From", &format!("<{ALICE}>;tag={}", common::unique("p")))
                    .set("Event", "presence")
                    .set("Expires", "3600")
                    .set("SIP-If-Match", tag)
                    .body("application/pidf+xml", &body);
                let resp = self.peer.call(&r);
                assert_eq!(resp.status(), 200, "PUBLISH: {}", resp.text());
                resp
            }
        };
        self.etag = Some(resp.header("SIP-ETag").expect("SIP-ETag").to_owned());
    }
}

/// Alice publishes one tuple `t1` (open) with the note `note`, once.
fn publish_simple(s: &Server, note: &str) -> Publisher {
    let mut p = Publisher::new(s);
    p.publish(note);
    p
}

/// Whether a NOTIFY shows alice's real publication (tuple t1 with note `note`).
fn shows_publication(n: &Msg, note: &str) -> bool {
    if n.body.is_empty() {
        return false;
    }
    let d = doc(n);
    tuple_ids(&d).contains(&"t1".to_owned()) && notes(&d).contains(&note.to_owned())
}

fn put_rules(s: &Server, rules: &str) {
    assert_valid_xml(&pres_rules_doc(rules));
    put_pres_rules(&Xcap::new(s.http), ALICE, rules);
}

/// A rule allowing `uri` to see everything.
fn allow_all(id: &str, uri: &str) -> String {
    pres_rule(id, &identity_one(uri), Some("allow"), PROVIDE_EVERYTHING)
}

// --- 1. the four sub-handling actions ------------------------------------------------------

#[test]
fn allow_gives_an_active_subscription_with_the_presence() {
    let s = Server::start_with(CONFIRM, &[]);
    publish_simple(&s, "at my desk");
    put_rules(&s, &allow_all("a", BOB));
    let (_w, n) = watch_ok(&s, BOB);
    assert_eq!(state(&n), "active", "{}", n.text());
    assert!(param(&n, "expires").is_some(), "{}", n.text());
    assert!(shows_publication(&n, "at my desk"), "{}", text(&n));
}

#[test]
fn block_refuses_the_subscribe_with_403() {
    let s = Server::start_with(CONFIRM, &[]);
    publish_simple(&s, "at my desk");
    put_rules(&s, &pres_rule("b", &identity_one(BOB), Some("block"), ""));
    let (w, resp) = watch(&s, BOB);
    assert_eq!(resp.status(), 403, "{}", resp.text());
    w.assert_no_notify(GRACE);
}

#[test]
fn polite_block_shows_a_neutral_document() {
    let s = Server::start_with(CONFIRM, &[]);
    let mut publisher = publish_simple(&s, "secret note");
    put_rules(
        &s,
        &pres_rule(
            "pb",
            &identity_one(BOB),
            Some("polite-block"),
            PROVIDE_EVERYTHING,
        ),
    );
    let (me, _) = watch_ok(&s, ALICE);
    let (w, n) = watch_ok(&s, BOB);
    assert_eq!(state(&n), "active", "{}", n.text());
    let d = doc(&n);
    assert_eq!(d.attr("entity"), Some(ALICE));
    assert_eq!(tuple_ids(&d), vec!["offline".to_owned()], "{}", text(&n));
    let t = tuple(&d, "offline");
    let basic: Vec<&str> = t
        .all(PIDF_NS, "basic")
        .iter()
        .map(|b| b.text.as_str())
        .collect();
    assert_eq!(basic, vec!["closed"], "{}", text(&n));
    assert!(
        notes(&d).is_empty(),
        "no note of the real publication: {}",
        text(&n)
    );
    assert!(!text(&n).contains("secret"), "{}", text(&n));
    assert!(
        !d.has(DM_NS, "person") && !d.has(DM_NS, "device"),
        "{}",
        text(&n)
    );
    // a new publication changes nothing of what bob is shown
    publisher.publish_status("closed", "another secret");
    assert!(shows_publication(&me.notify(), "another secret"));
    w.assert_no_notify(GRACE);
}

#[test]
fn confirm_leaves_the_watcher_pending_without_presence() {
    let s = Server::start_with(CONFIRM, &[]);
    let mut publisher = publish_simple(&s, "first");
    // the presentity watches itself: its NOTIFYs mark when a publication has been fanned out
    let (me, _) = watch_ok(&s, ALICE);
    let (w, resp) = watch(&s, BOB);
    assert_eq!(resp.status(), 200, "{}", resp.text());
    let n = w.notify();
    assert_eq!(state(&n), "pending", "{}", n.text());
    let left: u32 = param(&n, "expires")
        .expect("pending;expires=N")
        .parse()
        .unwrap();
    assert!((1..=600).contains(&left), "{}", n.text());
    assert!(n.body.is_empty(), "no body while pending:\n{}", n.text());
    assert!(n.header("Content-Type").is_none(), "{}", n.text());
    // a later publication goes to the presentity, not to the pending watcher
    publisher.publish("second");
    let mine = me.notify();
    assert!(shows_publication(&mine, "second"), "{}", text(&mine));
    w.assert_no_notify(GRACE);
    // a refresh is answered with a NOTIFY that is still pending and empty
    let mut w = w;
    let r = w.resubscribe(600);
    assert_eq!(r.status(), 200, "{}", r.text());
    let n = w.notify();
    assert_eq!(state(&n), "pending", "{}", n.text());
    assert!(n.body.is_empty(), "{}", n.text());
}

// --- 2. confirm resolved by a rules change -------------------------------------------------

#[test]
fn pending_watcher_becomes_active_when_rules_allow_it() {
    let s = Server::start_with(CONFIRM, &[]);
    publish_simple(&s, "hello bob");
    let (w, n) = watch_ok(&s, BOB);
    assert_eq!(state(&n), "pending", "{}", n.text());
    assert!(n.body.is_empty(), "{}", n.text());
    put_rules(&s, &allow_all("a", BOB));
    let n = w.notify();
    assert_eq!(state(&n), "active", "{}", n.text());
    assert!(param(&n, "expires").is_some(), "{}", n.text());
    assert!(shows_publication(&n, "hello bob"), "{}", text(&n));
}

// --- 3. allow -> block while subscribed ----------------------------------------------------

#[test]
fn active_watcher_is_rejected_when_rules_block_it() {
    let s = Server::start_with(CONFIRM, &[]);
    publish_simple(&s, "for friends");
    put_rules(&s, &allow_all("a", BOB));
    let (w, n) = watch_ok(&s, BOB);
    assert_eq!(state(&n), "active");
    assert!(shows_publication(&n, "for friends"), "{}", text(&n));
    put_rules(&s, &pres_rule("a", &identity_one(BOB), Some("block"), ""));
    let n = w.notify();
    assert_eq!(state(&n), "terminated", "{}", n.text());
    assert_eq!(
        param(&n, "reason").as_deref(),
        Some("rejected"),
        "{}",
        n.text()
    );
    assert!(
        !text(&n).contains("t1") && !text(&n).contains("for friends"),
        "no presence in the final NOTIFY:\n{}",
        n.text()
    );
    w.assert_no_notify(GRACE);
    // and a new subscription is refused
    let (_w2, resp) = watch(&s, BOB);
    assert_eq!(resp.status(), 403, "{}", resp.text());
}

/// Not in the brief's list: active → confirm (no way back to pending in RFC 6665) ends the
/// subscription with `deactivated`; subscribing again waits for the decision.
#[test]
fn active_watcher_is_deactivated_when_rules_fall_back_to_confirm() {
    let s = Server::start_with(CONFIRM, &[]);
    publish_simple(&s, "for friends");
    put_rules(&s, &allow_all("a", BOB));
    let (w, n) = watch_ok(&s, BOB);
    assert_eq!(state(&n), "active");
    put_rules(&s, &pres_rule("a", &identity_one(BOB), Some("confirm"), ""));
    let n = w.notify();
    assert_eq!(state(&n), "terminated", "{}", n.text());
    assert_eq!(
        param(&n, "reason").as_deref(),
        Some("deactivated"),
        "{}",
        n.text()
    );
    assert!(!text(&n).contains("for friends"), "{}", n.text());
    let (_w2, n) = watch_ok(&s, BOB);
    assert_eq!(state(&n), "pending", "{}", n.text());
    assert!(n.body.is_empty(), "{}", n.text());
}

/// Not in the brief's list: a view widened live (polite-block → allow) sends the presence.
#[test]
fn polite_blocked_watcher_sees_the_presence_once_allowed() {
    let s = Server::start_with(CONFIRM, &[]);
    publish_simple(&s, "now visible");
    put_rules(
        &s,
        &pres_rule("a", &identity_one(BOB), Some("polite-block"), ""),
    );
    let (w, n) = watch_ok(&s, BOB);
    assert_eq!(tuple_ids(&doc(&n)), vec!["offline".to_owned()]);
    put_rules(&s, &allow_all("a", BOB));
    let n = w.notify();
    assert_eq!(state(&n), "active", "{}", n.text());
    assert!(shows_publication(&n, "now visible"), "{}", text(&n));
    assert!(
        !tuple_ids(&doc(&n)).contains(&"offline".to_owned()),
        "{}",
        text(&n)
    );
}

// --- 4. external lists ----------------------------------------------------------------------

#[test]
fn external_list_change_activates_a_pending_watcher() {
    let s = Server::start_with(CONFIRM, &[]);
    let xcap = Xcap::new(s.http);
    let list_doc = "/xcap-root/resource-lists/users/sip:alice@example.com/index";
    let anc = format!(
        "http://{}/xcap-root/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5B@name=%22friends%22%5D",
        s.http
    );
    let lists = |members: &[&str]| {
        let entries: String = members
            .iter()
            .map(|m| format!("<entry uri=\"{m}\"/>"))
            .collect();
        let d = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\
<list name=\"friends\">{entries}</list><list name=\"others\"><entry uri=\"{DAVE}\"/></list></resource-lists>"
        );
        assert_valid_xml(d.as_bytes());
        d.into_bytes()
    };
    let r = xcap.put(list_doc, "application/resource-lists+xml", &lists(&[CAROL]));
    assert!(
        r.status == 200 || r.status == 201,
        "{} {}",
        r.status,
        r.text()
    );
    publish_simple(&s, "friends only");
    put_rules(
        &s,
        &pres_rule(
            "friends",
            &format!("<ocp:external-list><ocp:entry anc=\"{anc}\"/></ocp:external-list>"),
            Some("allow"),
            PROVIDE_EVERYTHING,
        ),
    );
    // carol is in the list; bob and dave (another list) are not
    let (_c, n) = watch_ok(&s, CAROL);
    assert_eq!(state(&n), "active", "{}", n.text());
    assert!(shows_publication(&n, "friends only"), "{}", text(&n));
    let (b, n) = watch_ok(&s, BOB);
    assert_eq!(state(&n), "pending", "{}", n.text());
    assert!(n.body.is_empty());
    let (d, n) = watch_ok(&s, DAVE);
    assert_eq!(state(&n), "pending", "{}", n.text());
    // bob is added to the list
    let r = xcap.put(
        list_doc,
        "application/resource-lists+xml",
        &lists(&[CAROL, BOB]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let n = b.notify();
    assert_eq!(state(&n), "active", "{}", n.text());
    assert!(shows_publication(&n, "friends only"), "{}", text(&n));
    d.assert_no_notify(GRACE);
}

// --- 5. combining (RFC 4745 §10) --------------------------------------------------------------

#[test]
fn combining_takes_the_most_permissive_sub_handling() {
    let s = Server::start_with(CONFIRM, &[]);
    publish_simple(&s, "combined");
    let domain_block = pres_rule(
        "everyone-blocked",
        "<cr:identity><cr:many domain=\"example.com\"/></cr:identity>",
        Some("block"),
        "",
    );
    put_rules(
        &s,
        &format!(
            "{domain_block}{}{}",
            allow_all("bob-allowed", BOB),
            pres_rule("dave-confirm", &identity_one(DAVE), Some("confirm"), "")
        ),
    );
    // block + allow → allow
    let (_b, n) = watch_ok(&s, BOB);
    assert_eq!(state(&n), "active", "{}", n.text());
    assert!(shows_publication(&n, "combined"), "{}", text(&n));
    // block + confirm → confirm
    let (_d, n) = watch_ok(&s, DAVE);
    assert_eq!(state(&n), "pending", "{}", n.text());
    // block alone
    let (_c, resp) = watch(&s, CAROL);
    assert_eq!(resp.status(), 403, "{}", resp.text());
}

/// Filter-dependent: bob's two rules grant the tuples (one) and notes (the other), so he sees
/// the tuple with its note; dave, granted the tuples alone, sees it without the note.
#[test]
fn combining_unites_the_permissions_of_matching_rules() {
    let s = Server::start_with(CONFIRM, &[]);
    publish_simple(&s, "united");
    let dave = "sip:dave@example.org";
    let all_services = "<pr:provide-services><pr:all-services/></pr:provide-services>";
    put_rules(
        &s,
        &format!(
            "{}{}{}",
            pres_rule(
                "bob-services",
                &identity_one(BOB),
                Some("allow"),
                all_services
            ),
            pres_rule(
                "domain-notes",
                "<cr:identity><cr:many domain=\"example.com\"/></cr:identity>",
                None,
                "<pr:provide-note>true</pr:provide-note>"
            ),
            pres_rule(
                "dave-services",
                &identity_one(dave),
                Some("allow"),
                all_services
            ),
        ),
    );
    let (_b, n) = watch_ok(&s, BOB);
    assert_eq!(state(&n), "active", "{}", n.text());
    let d = doc(&n);
    assert_eq!(tuple_ids(&d), vec!["t1".to_owned()], "{}", text(&n));
    assert_eq!(notes(&d), vec!["united".to_owned()], "{}", text(&n));
    let (_d, n) = watch_ok(&s, dave);
    assert_eq!(state(&n), "active", "{}", n.text());
    let d = doc(&n);
    assert_eq!(tuple_ids(&d), vec!["t1".to_owned()], "{}", text(&n));
    assert!(
        notes(&d).is_empty(),
        "dave has no provide-note: {}",
        text(&n)
    );
}

// --- 6. transformations (RFC 5025 §3.2.2-3.2.4) ---------------------------------------------

const RICH: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"sip:alice@example.com\">\
<tuple id=\"t-sip\"><status><basic>open</basic></status><dm:deviceID>urn:x-mac:0003ba4811e3</dm:deviceID>\
<contact>sip:alice@192.0.2.10</contact><note>tuple-note-sip</note></tuple>\
<tuple id=\"t-im\"><status><basic>open</basic></status><contact>im:alice@example.com</contact>\
<note>tuple-note-im</note></tuple>\
<dm:person id=\"p1\"><rpid:activities><rpid:busy/></rpid:activities><rpid:mood><rpid:happy/></rpid:mood>\
<dm:note>person-note</dm:note></dm:person>\
<dm:device id=\"d1\"><dm:deviceID>urn:x-mac:0003ba4811e3</dm:deviceID><dm:note>device-note</dm:note></dm:device>\
</presence>";

#[test]
fn transformations_hide_what_a_watcher_is_not_granted() {
    let s = Server::start_with(CONFIRM, &[]);
    assert_valid_xml(RICH.as_bytes());
    publish_pidf(&UdpPeer::new(s.udp), ALICE, RICH.as_bytes());
    // carol: sip services, all persons, mood only; no devices, no notes, no activities, no
    // deviceID. bob: everything.
    put_rules(
        &s,
        &format!(
            "{}{}",
            pres_rule(
                "carol",
                &identity_one(CAROL),
                Some("allow"),
                "<pr:provide-services><pr:service-uri-scheme>sip</pr:service-uri-scheme></pr:provide-services>\
<pr:provide-persons><pr:all-persons/></pr:provide-persons>\
<pr:provide-mood>true</pr:provide-mood>"
            ),
            allow_all("bob", BOB)
        ),
    );
    // bob sees everything
    let (_b, n) = watch_ok(&s, BOB);
    assert_eq!(state(&n), "active", "{}", n.text());
    let d = doc(&n);
    let mut ids = tuple_ids(&d);
    ids.sort();
    assert_eq!(
        ids,
        vec!["t-im".to_owned(), "t-sip".to_owned()],
        "{}",
        text(&n)
    );
    let mut all_notes = notes(&d);
    all_notes.sort();
    assert_eq!(
        all_notes,
        vec![
            "device-note",
            "person-note",
            "tuple-note-im",
            "tuple-note-sip"
        ],
        "{}",
        text(&n)
    );
    assert!(
        d.has(RPID_NS, "activities") && d.has(RPID_NS, "mood"),
        "{}",
        text(&n)
    );
    assert_eq!(d.kids(DM_NS, "device").count(), 1, "{}", text(&n));
    assert!(tuple(&d, "t-sip").has(DM_NS, "deviceID"), "{}", text(&n));
    // carol sees the sip tuple and the person's mood, nothing else
    let (_c, n) = watch_ok(&s, CAROL);
    assert_eq!(state(&n), "active", "{}", n.text());
    let body = text(&n);
    let d = doc(&n);
    assert_eq!(
        tuple_ids(&d),
        vec!["t-sip".to_owned()],
        "only the sip: service: {body}"
    );
    assert_eq!(
        tuple(&d, "t-sip").all(PIDF_NS, "basic")[0].text,
        "open",
        "{body}"
    );
    assert!(notes(&d).is_empty(), "no provide-note, no note: {body}");
    assert!(!body.contains("-note"), "{body}");
    assert!(!d.has(DM_NS, "device"), "no provide-devices: {body}");
    assert!(
        !tuple(&d, "t-sip").has(DM_NS, "deviceID"),
        "no provide-deviceID: {body}"
    );
    let persons: Vec<&XmlEl> = d.kids(DM_NS, "person").collect();
    assert_eq!(persons.len(), 1, "all persons: {body}");
    assert_eq!(persons[0].attr("id"), Some("p1"));
    assert!(persons[0].has(RPID_NS, "mood"), "provide-mood: {body}");
    assert!(
        !persons[0].has(RPID_NS, "activities"),
        "no provide-activities: {body}"
    );
}

// --- 7. anonymous requests ------------------------------------------------------------------

#[test]
fn anonymous_watcher_is_matched_only_by_anonymous_request() {
    let s = Server::start_with(BLOCK, &[]);
    publish_simple(&s, "public");
    let anonymous = "\"Anonymous\" <sip:anonymous@anonymous.invalid>";
    let everyone = pres_rule(
        "identified",
        "<cr:identity><cr:many/></cr:identity>",
        Some("allow"),
        PROVIDE_EVERYTHING,
    );
    put_rules(&s, &everyone);
    // every identified watcher is allowed, the anonymous one falls to the default (block)
    let (_b, n) = watch_ok(&s, BOB);
    assert!(shows_publication(&n, "public"), "{}", text(&n));
    let (_a, resp) = watch(&s, anonymous);
    assert_eq!(
        resp.status(),
        403,
        "anonymous is not any identity: {}",
        resp.text()
    );
    // an anonymous-request rule lets it in
    put_rules(
        &s,
        &format!(
            "{everyone}{}",
            pres_rule(
                "anon",
                "<ocp:anonymous-request/>",
                Some("allow"),
                PROVIDE_EVERYTHING
            )
        ),
    );
    let (_a, n) = watch_ok(&s, anonymous);
    assert_eq!(state(&n), "active", "{}", n.text());
    assert!(shows_publication(&n, "public"), "{}", text(&n));
    // and matches nobody else: with only that rule, bob is refused
    put_rules(
        &s,
        &pres_rule(
            "anon",
            "<ocp:anonymous-request/>",
            Some("allow"),
            PROVIDE_EVERYTHING,
        ),
    );
    let (_b2, resp) = watch(&s, BOB);
    assert_eq!(resp.status(), 403, "{}", resp.text());
}

// --- 8. P-Asserted-Identity -------------------------------------------------------------------

#[test]
fn p_asserted_identity_counts_only_from_a_trusted_peer() {
    let boss = "sip:boss@example.com";
    let with_pai = |r: common::Req| r.set("P-Asserted-Identity", &format!("<{boss}>"));
    // trusted: PAI says boss, From says carol: boss is allowed
    let trusted = Server::start_with(
        &format!("[sip]\ntrusted_peers = [\"127.0.0.1\"]\n{BLOCK}"),
        &[],
    );
    publish_simple(&trusted, "boss only");
    put_rules(&trusted, &allow_all("boss", boss));
    let (w, resp) = watch_with(&trusted, CAROL, with_pai);
    assert_eq!(resp.status(), 200, "{}", resp.text());
    let n = w.notify();
    assert_eq!(state(&n), "active", "{}", n.text());
    assert!(shows_publication(&n, "boss only"), "{}", text(&n));
    // without the header carol is carol
    let (_w, resp) = watch(&trusted, CAROL);
    assert_eq!(resp.status(), 403, "{}", resp.text());
    // untrusted: the same request is carol's
    let untrusted = Server::start_with(BLOCK, &[]);
    publish_simple(&untrusted, "boss only");
    put_rules(&untrusted, &allow_all("boss", boss));
    let (_w, resp) = watch_with(&untrusted, CAROL, with_pai);
    assert_eq!(
        resp.status(),
        403,
        "PAI from an untrusted peer ignored: {}",
        resp.text()
    );
}

// --- 9. the presentity itself ---------------------------------------------------------------

#[test]
fn the_presentity_always_sees_itself() {
    let s = Server::start_with(BLOCK, &[]);
    let mut publisher = publish_simple(&s, "my own note");
    // rules that block every identity, alice's own included
    put_rules(
        &s,
        &format!(
            "{}{}",
            pres_rule(
                "nobody",
                "<cr:identity><cr:many/></cr:identity>",
                Some("block"),
                ""
            ),
            pres_rule("alice", &identity_one(ALICE), Some("block"), ""),
        ),
    );
    let (_b, resp) = watch(&s, BOB);
    assert_eq!(resp.status(), 403, "{}", resp.text());
    let (me, n) = watch_ok(&s, ALICE);
    assert_eq!(state(&n), "active", "{}", n.text());
    assert!(shows_publication(&n, "my own note"), "{}", text(&n));
    // and keeps seeing its changes
    publisher.publish("changed");
    let n = me.notify();
    assert!(shows_publication(&n, "changed"), "{}", text(&n));
}

// --- beyond the brief's list ----------------------------------------------------------------

/// The OMA usage's document decides as well, and an owner's documents of both usages add up.
#[test]
fn rules_of_both_usages_are_merged() {
    let s = Server::start_with(CONFIRM, &[]);
    publish_simple(&s, "merged");
    put_rules(&s, &allow_all("bob", BOB));
    let oma = pres_rules_doc(&allow_all("carol", CAROL));
    let r = Xcap::new(s.http).put(
        "/xcap-root/org.openmobilealliance.pres-rules/users/sip:alice@example.com/index",
        common::AUTH_POLICY,
        &oma,
    );
    assert!(
        r.status == 200 || r.status == 201,
        "{} {}",
        r.status,
        r.text()
    );
    for who in [BOB, CAROL] {
        let (_w, n) = watch_ok(&s, who);
        assert_eq!(state(&n), "active", "{who}: {}", n.text());
        assert!(shows_publication(&n, "merged"), "{}", text(&n));
    }
    let (_d, n) = watch_ok(&s, DAVE);
    assert_eq!(state(&n), "pending", "{}", n.text());
}

/// XCAP clients add a rule as an element (RFC 4825 §7.4): that too applies at once.
#[test]
fn a_rule_added_by_element_put_applies_live() {
    let s = Server::start_with(CONFIRM, &[]);
    publish_simple(&s, "element");
    put_rules(&s, &allow_all("carol", CAROL));
    let (w, n) = watch_ok(&s, BOB);
    assert_eq!(state(&n), "pending", "{}", n.text());
    let el = allow_all("bob", BOB).replacen(
        "<cr:rule ",
        "<cr:rule xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\" xmlns:pr=\"urn:ietf:params:xml:ns:pres-rules\" ",
        1,
    );
    let r = Xcap::new(s.http).put(
        &format!(
            "{}/~~/ruleset/rule%5B@id=%22bob%22%5D",
            common::pres_rules_path(ALICE)
        ),
        "application/xcap-el+xml",
        el.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let n = w.notify();
    assert_eq!(state(&n), "active", "{}", n.text());
    assert!(shows_publication(&n, "element"), "{}", text(&n));
}

/// Deleting the rules document leaves the default (confirm): an allowed watcher is deactivated.
#[test]
fn deleting_the_rules_falls_back_to_the_default() {
    let s = Server::start_with(CONFIRM, &[]);
    publish_simple(&s, "gone");
    put_rules(&s, &allow_all("bob", BOB));
    let (w, n) = watch_ok(&s, BOB);
    assert_eq!(state(&n), "active");
    let r = Xcap::new(s.http).delete(&common::pres_rules_path(ALICE));
    assert_eq!(r.status, 200, "{}", r.text());
    let n = w.notify();
    assert_eq!(state(&n), "terminated", "{}", n.text());
    assert_eq!(
        param(&n, "reason").as_deref(),
        Some("deactivated"),
        "{}",
        n.text()
    );
    assert!(!text(&n).contains("gone"), "{}", n.text());
}

/// A rules change that leaves a watcher where it was sends it nothing (another watcher's
/// NOTIFY of the same change marks when it has been applied).
#[test]
fn a_rules_change_that_does_not_concern_a_watcher_sends_it_nothing() {
    let s = Server::start_with(CONFIRM, &[]);
    publish_simple(&s, "steady");
    put_rules(&s, &allow_all("bob", BOB));
    let (b, n) = watch_ok(&s, BOB);
    assert_eq!(state(&n), "active");
    let (c, n) = watch_ok(&s, CAROL);
    assert_eq!(state(&n), "pending");
    put_rules(
        &s,
        &format!("{}{}", allow_all("bob", BOB), allow_all("carol", CAROL)),
    );
    let n = c.notify();
    assert_eq!(state(&n), "active", "{}", n.text());
    b.assert_no_notify(GRACE);
}

/// Rules that name a list not written yet; the list is written with the watcher, then
/// rewritten without it.
#[test]
fn external_list_written_after_the_rules_then_shrunk() {
    let s = Server::start_with(CONFIRM, &[]);
    let xcap = Xcap::new(s.http);
    let list_doc = "/xcap-root/resource-lists/users/sip:alice@example.com/index";
    let anc = format!(
        "http://{}/xcap-root/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5B@name=%22friends%22%5D",
        s.http
    );
    publish_simple(&s, "listed");
    put_rules(
        &s,
        &pres_rule(
            "friends",
            &format!("<ocp:external-list><ocp:entry anc=\"{anc}\"/></ocp:external-list>"),
            Some("allow"),
            PROVIDE_EVERYTHING,
        ),
    );
    let (b, n) = watch_ok(&s, BOB);
    assert_eq!(state(&n), "pending", "{}", n.text());
    let list = |m: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\
<list name=\"friends\">{m}</list></resource-lists>"
        )
        .into_bytes()
    };
    let r = xcap.put(
        list_doc,
        "application/resource-lists+xml",
        &list(&format!("<entry uri=\"{BOB}\"/>")),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let n = b.notify();
    assert_eq!(state(&n), "active", "{}", n.text());
    assert!(shows_publication(&n, "listed"), "{}", text(&n));
    // out of the list: back to the default, confirm → deactivated
    let r = xcap.put(
        list_doc,
        "application/resource-lists+xml",
        &list(&format!("<entry uri=\"{CAROL}\"/>")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let n = b.notify();
    assert_eq!(state(&n), "terminated", "{}", n.text());
    assert_eq!(
        param(&n, "reason").as_deref(),
        Some("deactivated"),
        "{}",
        n.text()
    );
}

/// RFC 4745 §7.3: a rule holds only within its validity.
#[test]
fn validity_limits_a_rule_in_time() {
    let s = Server::start_with(CONFIRM, &[]);
    publish_simple(&s, "timely");
    let valid = |from: &str, until: &str| {
        format!("<cr:validity><cr:from>{from}</cr:from><cr:until>{until}</cr:until></cr:validity>")
    };
    put_rules(
        &s,
        &format!(
            "{}{}",
            pres_rule(
                "bob-expired",
                &format!(
                    "{}{}",
                    identity_one(BOB),
                    valid("2000-01-01T00:00:00Z", "2001-01-01T00:00:00Z")
                ),
                Some("allow"),
                PROVIDE_EVERYTHING
            ),
            pres_rule(
                "carol-valid",
                &format!(
                    "{}{}",
                    identity_one(CAROL),
                    valid("2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z")
                ),
                Some("allow"),
                PROVIDE_EVERYTHING
            ),
        ),
    );
    let (_b, n) = watch_ok(&s, BOB);
    assert_eq!(
        state(&n),
        "pending",
        "an expired rule does not hold: {}",
        n.text()
    );
    let (_c, n) = watch_ok(&s, CAROL);
    assert_eq!(state(&n), "active", "{}", n.text());
    assert!(shows_publication(&n, "timely"), "{}", text(&n));
}

/// RFC 4745 §7.2: a `<sphere>` condition holds when the presentity's current sphere (its
/// published RPID `<sphere>`) is one of its values.
#[test]
fn sphere_condition_follows_the_published_sphere() {
    let s = Server::start_with(CONFIRM, &[]);
    let at_work = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"sip:alice@example.com\">\
<tuple id=\"t1\"><status><basic>open</basic></status><note>at work</note></tuple>\
<dm:person id=\"p1\"><rpid:sphere><rpid:work/></rpid:sphere></dm:person></presence>";
    assert_valid_xml(at_work.as_bytes());
    publish_pidf(&UdpPeer::new(s.udp), ALICE, at_work.as_bytes());
    put_rules(
        &s,
        &pres_rule(
            "colleagues-at-work",
            &format!("{}<cr:sphere value=\"work\"/>", identity_one(BOB)),
            Some("allow"),
            PROVIDE_EVERYTHING,
        ),
    );
    let (_b, n) = watch_ok(&s, BOB);
    assert_eq!(
        state(&n),
        "active",
        "alice's sphere is work, the rule holds: {}",
        n.text()
    );
    assert!(shows_publication(&n, "at work"), "{}", text(&n));
}

/// The sphere changes with a publication: the rule no longer holds, bob falls back to the
/// default (confirm) and, active, is deactivated; back at work he may subscribe again.
#[test]
fn a_published_sphere_change_moves_the_watchers() {
    let s = Server::start_with(CONFIRM, &[]);
    let sphere_doc = |sphere: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"sip:alice@example.com\">\
<tuple id=\"t1\"><status><basic>open</basic></status><note>in sphere {sphere}</note></tuple>\
<dm:person id=\"p1\"><rpid:sphere><rpid:{sphere}/></rpid:sphere></dm:person></presence>"
        )
        .into_bytes()
    };
    let p = UdpPeer::new(s.udp);
    let etag = publish_pidf(&p, ALICE, &sphere_doc("work"))
        .header("SIP-ETag")
        .unwrap()
        .to_owned();
    put_rules(
        &s,
        &pres_rule(
            "colleagues-at-work",
            &format!("{}<cr:sphere value=\"work\"/>", identity_one(BOB)),
            Some("allow"),
            PROVIDE_EVERYTHING,
        ),
    );
    let (w, n) = watch_ok(&s, BOB);
    assert_eq!(state(&n), "active", "{}", n.text());
    // alice goes home
    let r = p
        .req("PUBLISH", ALICE)
        .set("Event", "presence")
        .set("Expires", "3600")
        .set("SIP-If-Match", &etag)
        .body("application/pidf+xml", &sphere_doc("home"));
    assert_eq!(p.call(&r).status(), 200);
    let n = w.notify();
    assert_eq!(state(&n), "terminated", "{}", n.text());
    assert_eq!(
        param(&n, "reason").as_deref(),
        Some("deactivated"),
        "{}",
        n.text()
    );
    assert!(
        !text(&n).contains("sphere home"),
        "nothing of the new document: {}",
        n.text()
    );
    let (_w2, n) = watch_ok(&s, BOB);
    assert_eq!(state(&n), "pending", "{}", n.text());
}

/// RFC 5025 §3.3: what no permission grants is withheld; `allow` with no transformations
/// shows a document without tuples.
#[test]
fn allow_without_transformations_shows_nothing_of_the_presence() {
    let s = Server::start_with(CONFIRM, &[]);
    publish_simple(&s, "hidden");
    put_rules(
        &s,
        &pres_rule("bare", &identity_one(BOB), Some("allow"), ""),
    );
    let (_w, n) = watch_ok(&s, BOB);
    assert_eq!(state(&n), "active", "{}", n.text());
    let d = doc(&n);
    assert_eq!(d.attr("entity"), Some(ALICE));
    assert!(d.children.is_empty(), "{}", text(&n));
}

/// RFC 5025 §3.3.1: services by service URI and class, persons by occurrence id, devices by
/// deviceID.
#[test]
fn components_are_selected_by_uri_class_occurrence_and_device_id() {
    let s = Server::start_with(CONFIRM, &[]);
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"sip:alice@example.com\">\
<tuple id=\"t-a\"><status><basic>open</basic></status><contact>sip:alice@a.example.com</contact></tuple>\
<tuple id=\"t-b\"><status><basic>open</basic></status><contact>sip:alice@b.example.com</contact></tuple>\
<tuple id=\"t-c\"><status><basic>open</basic></status><rpid:class>work</rpid:class><contact>sip:alice@c.example.com</contact></tuple>\
<dm:person id=\"p1\"><rpid:activities><rpid:busy/></rpid:activities></dm:person>\
<dm:person id=\"p2\"><rpid:activities><rpid:away/></rpid:activities></dm:person>\
<dm:device id=\"d1\"><dm:deviceID>urn:x-mac:000000000001</dm:deviceID></dm:device>\
<dm:device id=\"d2\"><dm:deviceID>urn:x-mac:000000000002</dm:deviceID></dm:device>\
</presence>";
    assert_valid_xml(body.as_bytes());
    publish_pidf(&UdpPeer::new(s.udp), ALICE, body.as_bytes());
    put_rules(
        &s,
        &pres_rule(
            "carol",
            &identity_one(CAROL),
            Some("allow"),
            "<pr:provide-services><pr:service-uri>sip:alice@a.example.com</pr:service-uri><pr:class>work</pr:class></pr:provide-services>\
<pr:provide-persons><pr:occurrence-id>p2</pr:occurrence-id></pr:provide-persons>\
<pr:provide-devices><pr:deviceID>urn:x-mac:000000000002</pr:deviceID></pr:provide-devices>",
        ),
    );
    let (_w, n) = watch_ok(&s, CAROL);
    let d = doc(&n);
    let body = text(&n);
    let mut ids = tuple_ids(&d);
    ids.sort();
    assert_eq!(ids, vec!["t-a", "t-c"], "{body}");
    let persons: Vec<&str> = d
        .kids(DM_NS, "person")
        .filter_map(|p| p.attr("id"))
        .collect();
    assert_eq!(persons, vec!["p2"], "{body}");
    let devices: Vec<&str> = d
        .kids(DM_NS, "device")
        .filter_map(|p| p.attr("id"))
        .collect();
    assert_eq!(devices, vec!["d2"], "{body}");
    // the device keeps its deviceID (data-model.xsd requires it); no provide-activities
    assert!(
        d.kids(DM_NS, "device").all(|dv| dv.has(DM_NS, "deviceID")),
        "{body}"
    );
    assert!(!d.has(RPID_NS, "activities"), "{body}");
}

/// A view narrowed live: bob, granted everything, is then granted the services alone: a NOTIFY
/// with the narrower document; a further change of his rule that shows the same sends nothing.
#[test]
fn a_view_narrowed_live_is_notified_only_when_it_differs() {
    let s = Server::start_with(CONFIRM, &[]);
    publish_simple(&s, "narrowed away");
    put_rules(&s, &allow_all("bob", BOB));
    let (b, n) = watch_ok(&s, BOB);
    assert!(shows_publication(&n, "narrowed away"), "{}", text(&n));
    let services = "<pr:provide-services><pr:all-services/></pr:provide-services>";
    put_rules(
        &s,
        &pres_rule("bob", &identity_one(BOB), Some("allow"), services),
    );
    let n = b.notify();
    assert_eq!(state(&n), "active", "{}", n.text());
    let d = doc(&n);
    assert_eq!(tuple_ids(&d), vec!["t1".to_owned()], "{}", text(&n));
    assert!(notes(&d).is_empty(), "{}", text(&n));
    // provide-persons added: alice published no person, bob's document stays the same
    let (c, n) = watch_ok(&s, CAROL);
    assert_eq!(state(&n), "pending");
    put_rules(
        &s,
        &format!(
            "{}{}",
            pres_rule(
                "bob",
                &identity_one(BOB),
                Some("allow"),
                &format!("{services}<pr:provide-persons><pr:all-persons/></pr:provide-persons>")
            ),
            allow_all("carol", CAROL)
        ),
    );
    let n = c.notify();
    assert_eq!(state(&n), "active", "{}", n.text());
    b.assert_no_notify(GRACE);
}

/// A publication that changes only what a watcher may not see sends that watcher nothing.
#[test]
fn a_change_a_watcher_may_not_see_sends_it_nothing() {
    let s = Server::start_with(CONFIRM, &[]);
    let mut publisher = publish_simple(&s, "first note");
    put_rules(
        &s,
        &format!(
            "{}{}",
            pres_rule(
                "carol",
                &identity_one(CAROL),
                Some("allow"),
                "<pr:provide-services><pr:all-services/></pr:provide-services>"
            ),
            allow_all("bob", BOB)
        ),
    );
    let (b, _) = watch_ok(&s, BOB);
    let (c, n) = watch_ok(&s, CAROL);
    assert!(notes(&doc(&n)).is_empty(), "{}", text(&n));
    publisher.publish("second note");
    let n = b.notify();
    assert!(shows_publication(&n, "second note"), "{}", text(&n));
    c.assert_no_notify(GRACE);
}

/// Identities compare as SIP URIs (RFC 3261 §19.1.4): the host in any case, URI parameters
/// ignored.
#[test]
fn identities_compare_as_sip_uris() {
    let s = Server::start_with(CONFIRM, &[]);
    publish_simple(&s, "same bob");
    put_rules(&s, &allow_all("bob", "sip:bob@Example.COM"));
    let (_w, n) = watch_ok(&s, "\"Bob\" <sip:bob@EXAMPLE.com;transport=udp>");
    assert_eq!(state(&n), "active", "{}", n.text());
    assert!(shows_publication(&n, "same bob"), "{}", text(&n));
}

/// Watchers with equal permissions share one view: one of them moved elsewhere leaves the
/// others seeing, and being told, the presentity's changes.
#[test]
fn watchers_sharing_a_view_stay_served_when_one_leaves_it() {
    let s = Server::start_with(CONFIRM, &[]);
    let mut publisher = publish_simple(&s, "shared");
    let services = "<pr:provide-services><pr:all-services/></pr:provide-services>";
    let rule = |id: &str, uri: &str, h: &str| {
        let t = if h == "allow" { services } else { "" };
        pres_rule(id, &identity_one(uri), Some(h), t)
    };
    put_rules(
        &s,
        &format!("{}{}", rule("b", BOB, "allow"), rule("c", CAROL, "allow")),
    );
    let (b, n) = watch_ok(&s, BOB);
    assert_eq!(tuple_ids(&doc(&n)), vec!["t1".to_owned()]);
    let (c, n) = watch_ok(&s, CAROL);
    assert_eq!(tuple_ids(&doc(&n)), vec!["t1".to_owned()]);
    put_rules(
        &s,
        &format!("{}{}", rule("b", BOB, "block"), rule("c", CAROL, "allow")),
    );
    let n = b.notify();
    assert_eq!(state(&n), "terminated", "{}", n.text());
    publisher.publish_status("closed", "changed");
    let n = c.notify();
    assert_eq!(state(&n), "active", "{}", n.text());
    let d = doc(&n);
    assert_eq!(tuple_ids(&d), vec!["t1".to_owned()], "{}", text(&n));
    assert_eq!(d.all(PIDF_NS, "basic")[0].text, "closed", "{}", text(&n));
    assert!(notes(&d).is_empty(), "{}", text(&n));
    let carol_sees = n.body.clone();
    // a new watcher with the same permissions sees the current document
    put_rules(
        &s,
        &format!(
            "{}{}{}",
            rule("b", BOB, "block"),
            rule("c", CAROL, "allow"),
            rule("d", DAVE, "allow")
        ),
    );
    let (_d, n) = watch_ok(&s, DAVE);
    assert_eq!(
        text(&n),
        String::from_utf8_lossy(&carol_sees),
        "same permissions, same document"
    );
    c.assert_no_notify(GRACE);
}

/// OMA `<other-identity>`: an identified watcher that no other rule's identity or
/// external-list condition names; not an anonymous one.
#[test]
fn other_identity_matches_the_watchers_no_rule_names() {
    let s = Server::start_with(BLOCK, &[]);
    publish_simple(&s, "others");
    put_rules(
        &s,
        &format!(
            "{}{}",
            allow_all("bob", BOB),
            pres_rule("others", "<ocp:other-identity/>", Some("polite-block"), "")
        ),
    );
    let (_b, n) = watch_ok(&s, BOB);
    assert!(
        shows_publication(&n, "others"),
        "bob is named: {}",
        text(&n)
    );
    let (_c, n) = watch_ok(&s, CAROL);
    assert_eq!(
        tuple_ids(&doc(&n)),
        vec!["offline".to_owned()],
        "carol is another identity: {}",
        text(&n)
    );
    let (_a, resp) = watch(&s, "<sip:anonymous@anonymous.invalid>");
    assert_eq!(
        resp.status(),
        403,
        "anonymous is no identity: {}",
        resp.text()
    );
}

/// RFC 4745 §7.1.2: `<many domain>` with an `<except>`.
#[test]
fn many_with_an_exception() {
    let s = Server::start_with(CONFIRM, &[]);
    publish_simple(&s, "domain");
    put_rules(
        &s,
        &pres_rule(
            "domain",
            &format!(
                "<cr:identity><cr:many domain=\"example.com\"><cr:except id=\"{CAROL}\"/></cr:many></cr:identity>"
            ),
            Some("allow"),
            PROVIDE_EVERYTHING,
        ),
    );
    let (_b, n) = watch_ok(&s, BOB);
    assert_eq!(state(&n), "active", "{}", n.text());
    let (_c, n) = watch_ok(&s, CAROL);
    assert_eq!(state(&n), "pending", "excepted: {}", n.text());
    let (_d, n) = watch_ok(&s, "sip:dave@example.org");
    assert_eq!(state(&n), "pending", "another domain: {}", n.text());
}
