//! XCAP node operations through HTTP against the real binary (RFC 4825 §7.4–7.9): element and
//! attribute life cycles with the document's ETag, namespace bindings, and each 409 condition of
//! RFC 4825 §11 with its `application/xcap-error+xml` body. Whole documents and error bodies are
//! validated against the schemas after every step.

mod common;

use common::{HttpResp, Server, Xcap, assert_status, assert_valid_xml, rls_services_doc};

const DOC: &str = "/xcap-root/resource-lists/users/sip:alice@example.com/index";
const RLM: &str = "application/resource-lists+xml";
const EL: &str = "application/xcap-el+xml";
const ATT: &str = "application/xcap-att+xml";

const RL_DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list name="friends">
    <display-name>Friends</display-name>
    <entry uri="sip:bob@example.com"><display-name>Bob</display-name></entry>
    <entry uri="sip:carol@example.com"/>
  </list>
  <list name="work">
    <entry uri="sip:dave@example.com"/>
  </list>
</resource-lists>
"#;

/// The request path of a node selector below the document, percent-encoded as a client would.
fn node(sel: &str) -> String {
    let mut s = format!("{DOC}/~~/");
    for c in sel.chars() {
        match c {
            '[' => s.push_str("%5B"),
            ']' => s.push_str("%5D"),
            '"' => s.push_str("%22"),
            ' ' => s.push_str("%20"),
            c => s.push(c),
        }
    }
    s
}

/// The document as stored now, validated; returns its ETag.
fn doc_valid(c: &Xcap) -> (String, String) {
    let r = c.get(DOC);
    assert_status(&r, 200, "document");
    assert_valid_xml(&r.body);
    (r.text(), r.etag())
}

/// A 409 with the named condition; the body validates.
fn expect_409(r: &HttpResp, condition: &str) -> String {
    assert_status(r, 409, condition);
    assert_eq!(r.header("Content-Type"), Some("application/xcap-error+xml"));
    assert_valid_xml(&r.body);
    let t = r.text();
    assert!(t.contains(&format!("<{condition}")), "{condition} in {t}");
    t
}

fn setup() -> (Server, Xcap, String) {
    let srv = Server::start();
    let c = Xcap::new(srv.http);
    let r = c.put(DOC, RLM, RL_DOC.as_bytes());
    assert_status(&r, 201, "document");
    let e = r.etag();
    (srv, c, e)
}

#[test]
fn element_life_cycle() {
    let (_srv, c, e0) = setup();
    let bob = node("resource-lists/list[@name=\"friends\"]/entry[@uri=\"sip:bob@example.com\"]");
    let r = c.get(&bob);
    assert_status(&r, 200, "element GET");
    assert_eq!(r.header("Content-Type"), Some(EL));
    assert_eq!(r.etag(), e0, "a node GET carries the document's tag");
    assert!(
        r.text().starts_with("<entry") && r.text().contains("Bob"),
        "{}",
        r.text()
    );
    assert_status(
        &c.req("GET", &bob, &[("If-None-Match", &e0)], None),
        304,
        "conditional node GET",
    );
    // Create an element: 201, new document tag.
    let erin = node("resource-lists/list[@name=\"friends\"]/entry[@uri=\"sip:erin@example.com\"]");
    let body = br#"<entry uri="sip:erin@example.com"/>"#;
    assert_status(
        &c.req("PUT", &erin, &[("If-Match", "\"old\"")], Some((EL, body))),
        412,
        "stale tag",
    );
    let r = c.req("PUT", &erin, &[("If-Match", &e0)], Some((EL, body)));
    assert_status(&r, 201, "element create");
    let e1 = r.etag();
    assert_ne!(e1, e0);
    let (text, tag) = doc_valid(&c);
    assert_eq!(tag, e1);
    assert!(text.contains("sip:erin@example.com"), "{text}");
    // Replace it: 200.
    let body = br#"<entry uri="sip:erin@example.com"><display-name>Erin</display-name></entry>"#;
    let r = c.put(&erin, EL, body);
    assert_status(&r, 200, "element replace");
    let e2 = r.etag();
    let r = c.get(&erin);
    assert!(r.text().contains("Erin"));
    assert_eq!(r.etag(), e2);
    doc_valid(&c);
    // Delete it: 200, then 404.
    assert_status(
        &c.req("DELETE", &erin, &[("If-Match", &e1)], None),
        412,
        "stale delete",
    );
    let r = c.delete(&erin);
    assert_status(&r, 200, "element delete");
    assert_ne!(r.etag(), e2);
    assert_status(&c.get(&erin), 404, "gone");
    assert_status(&c.delete(&erin), 404, "gone again");
    let (text, _) = doc_valid(&c);
    assert!(!text.contains("erin"));
    // A whole list.
    let l = node("resource-lists/list[@name=\"family\"]");
    assert_status(
        &c.put(
            &l,
            EL,
            br#"<list name="family"><entry uri="sip:mum@example.com"/></list>"#,
        ),
        201,
        "list",
    );
    let r = c.get(&node("resource-lists/list[3]/entry/@uri"));
    assert_status(&r, 200, "positional selection");
    assert_eq!(r.text(), "sip:mum@example.com");
    doc_valid(&c);
}

#[test]
fn attribute_life_cycle_and_namespaces() {
    let (_srv, c, e0) = setup();
    let name = node("resource-lists/list[2]/@name");
    let r = c.get(&name);
    assert_status(&r, 200, "attribute GET");
    assert_eq!(r.header("Content-Type"), Some(ATT));
    assert_eq!(r.text(), "work");
    assert_eq!(r.etag(), e0);
    let r = c.put(&name, ATT, b"job");
    assert_status(&r, 200, "attribute replace");
    let e1 = r.etag();
    assert_eq!(c.get(&name).text(), "job");
    doc_valid(&c);
    let r = c.req("DELETE", &name, &[("If-Match", &e1)], None);
    assert_status(&r, 200, "attribute delete");
    assert_status(&c.get(&name), 404, "attribute gone");
    let (text, _) = doc_valid(&c);
    assert!(!text.contains("\"job\""), "{text}");
    let r = c.put(&name, ATT, b"work &amp; more");
    assert_status(&r, 201, "attribute create");
    assert_eq!(c.get(&name).text(), "work &amp; more");
    let (text, _) = doc_valid(&c);
    assert!(text.contains("name=\"work &amp; more\""), "{text}");
    // Namespace bindings in scope of an element (RFC 4825 §7.10).
    let r = c.get(&node("resource-lists/list[1]/namespace::*"));
    assert_status(&r, 200, "namespace bindings");
    assert_eq!(r.header("Content-Type"), Some("application/xcap-ns+xml"));
    assert!(
        r.text().contains("urn:ietf:params:xml:ns:resource-lists"),
        "{}",
        r.text()
    );
}

#[test]
fn each_conflict_condition() {
    let (srv, c, e0) = setup();
    // Documents.
    expect_409(&c.put(DOC, RLM, b"<resource-lists"), "not-well-formed");
    let latin1 = b"<?xml version='1.0' encoding='ISO-8859-1'?><resource-lists xmlns='urn:ietf:params:xml:ns:resource-lists'/>";
    expect_409(&c.put(DOC, RLM, latin1), "not-utf-8");
    expect_409(
        &c.put(DOC, RLM, b"<resource-lists/>"),
        "schema-validation-error",
    );
    // Elements.
    let friends = "resource-lists/list[@name=\"friends\"]";
    expect_409(
        &c.put(
            &node(&format!("{friends}/entry[@uri=\"a\"]")),
            EL,
            b"just text",
        ),
        "not-xml-frag",
    );
    expect_409(
        &c.put(
            &node(&format!("{friends}/entry[@uri=\"sip:a@x\"]")),
            EL,
            br#"<entry uri="sip:b@x"/>"#,
        ),
        "cannot-insert",
    );
    expect_409(&c.delete(&node("resource-lists")), "cannot-delete");
    expect_409(
        &c.delete(&node(&format!("{friends}/entry[1]"))),
        "cannot-delete",
    );
    let t = expect_409(
        &c.put(
            &node("resource-lists/list[@name=\"nope\"]/list[@name=\"deeper\"]/entry"),
            EL,
            br#"<entry uri="sip:a@x"/>"#,
        ),
        "no-parent",
    );
    let ancestor = format!(
        "<ancestor>http://{}/xcap-root/resource-lists/users/sip:alice@example.com/index/~~/resource-lists</ancestor>",
        srv.http
    );
    assert!(t.contains(&ancestor), "absolute ancestor URI in {t}");
    let t = expect_409(
        &c.put(
            &node("resource-lists/list[3]"),
            EL,
            br#"<list name="friends"/>"#,
        ),
        "uniqueness-failure",
    );
    assert!(t.contains("<alt-value>"), "{t}");
    expect_409(
        &c.put(
            &node("resource-lists/list[3]"),
            EL,
            br#"<list name="n"><external anchor="relative/path"/></list>"#,
        ),
        "constraint-failure",
    );
    // Attributes.
    expect_409(
        &c.put(&node("resource-lists/list[2]/@name"), ATT, b"a<b"),
        "not-xml-att-value",
    );
    // None of these changed the document.
    let (_, tag) = doc_valid(&c);
    assert_eq!(tag, e0);
}

const RLSM: &str = "application/rls-services+xml";

#[test]
fn rls_service_uris_are_unique_across_users() {
    // RFC 4826 §4.4.3, checked by the core against the store through the Directory.
    let srv = Server::start();
    let c = Xcap::new(srv.http);
    let alice = "/xcap-root/rls-services/users/sip:alice@example.com/index";
    let bob = "/xcap-root/rls-services/users/sip:bob@example.com/index";
    assert_status(
        &c.put(alice, RLSM, &rls_services_doc("sip:team@example.com")),
        201,
        "alice",
    );
    let t = expect_409(
        &c.put(bob, RLSM, &rls_services_doc("sip:team@example.com")),
        "uniqueness-failure",
    );
    assert!(t.contains("<alt-value>"), "{t}");
    assert_status(
        &c.put(bob, RLSM, &rls_services_doc("sip:bobs-team@example.com")),
        201,
        "bob, another URI",
    );
    // Alice may rewrite her own document with the same URI.
    assert_status(
        &c.put(alice, RLSM, &rls_services_doc("sip:team@example.com")),
        200,
        "alice again",
    );
    // Once alice lets the URI go, bob can take it.
    assert_status(&c.delete(alice), 200, "alice deletes");
    assert_status(
        &c.put(bob, RLSM, &rls_services_doc("sip:team@example.com")),
        200,
        "bob takes it",
    );
    let r = c.get("/xcap-root/rls-services/global/index");
    assert_valid_xml(&r.body);
    assert!(r.text().contains("sip:team@example.com"));
}
