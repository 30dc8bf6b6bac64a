//! End-to-end tests of the XCAP core through [`apply`](super::apply), and the schema
//! validation helper shared by the module's tests.

/// Asserts that `xml` validates against the schemas and contains `must_contain`.
pub(crate) fn assert_valid(xml: &[u8], must_contain: &str) {
    let text = String::from_utf8_lossy(xml);
    assert!(
        text.contains(must_contain),
        "missing {must_contain:?} in:\n{text}"
    );
    crate::schema_check::assert_valid(xml);
}

use super::*;
use std::cell::RefCell;
use std::collections::HashSet;

const RL_DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:x="urn:example:x">
  <list name="friends">
    <display-name>Friends</display-name>
    <entry uri="sip:bob@example.com"><display-name>Bob</display-name></entry>
    <entry uri="sip:carol@example.com"/>
    <x:note>ours</x:note>
  </list>
  <list name="work">
    <entry uri="sip:dave@example.com"/>
  </list>
</resource-lists>
"#;

const ALICE: &str = "/resource-lists/users/sip:alice@example.com/index";

/// A fake store: the service URIs used by other users' documents.
#[derive(Default)]
struct FakeDir {
    taken: HashSet<String>,
    asked: RefCell<Vec<(String, String, String)>>,
}

impl Directory for FakeDir {
    fn service_uri_in_use(&self, uri: &str, xui: &str, doc_path: &str) -> bool {
        self.asked
            .borrow_mut()
            .push((uri.to_string(), xui.to_string(), doc_path.to_string()));
        self.taken.contains(uri)
    }
}

fn uri(path: &str, query: Option<&str>) -> XcapUri {
    XcapUri::parse(path, query).expect("valid URI")
}

/// Percent-encodes what a client would in a node selector.
fn enc(sel: &str) -> String {
    let mut s = String::new();
    uri::encode_node_selector_into(&mut s, sel);
    s
}

fn run(
    method: Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
    ct: Option<&str>,
    current: Option<&[u8]>,
    dir: &dyn Directory,
) -> Result<Outcome, XcapError> {
    let u = uri(path, query);
    let req = Request {
        method,
        uri: &u,
        body,
        content_type: ct,
    };
    apply(&Usages::standard(), &req, current, dir)
}

fn node(doc: &str, sel: &str) -> String {
    format!("{doc}/~~/{}", enc(sel))
}

fn get(doc: &str, sel: Option<&str>, current: &str) -> Result<(String, String), XcapError> {
    let path = sel.map_or(doc.to_string(), |s| node(doc, s));
    match run(
        Method::Get,
        &path,
        None,
        b"",
        None,
        Some(current.as_bytes()),
        &NoDirectory,
    )? {
        Outcome::Content { body, mime } => Ok((String::from_utf8(body).unwrap(), mime)),
        other => panic!("GET gave {other:?}"),
    }
}

fn put(
    doc: &str,
    sel: Option<&str>,
    body: &str,
    ct: &str,
    current: Option<&str>,
) -> Result<(String, bool), XcapError> {
    let path = sel.map_or(doc.to_string(), |s| node(doc, s));
    let out = run(
        Method::Put,
        &path,
        None,
        body.as_bytes(),
        Some(ct),
        current.map(str::as_bytes),
        &NoDirectory,
    )?;
    match out {
        Outcome::Write {
            document: Some(d),
            created,
        } => Ok((String::from_utf8(d).unwrap(), created)),
        other => panic!("PUT gave {other:?}"),
    }
}

fn delete(doc: &str, sel: Option<&str>, current: &str) -> Result<Option<String>, XcapError> {
    let path = sel.map_or(doc.to_string(), |s| node(doc, s));
    match run(
        Method::Delete,
        &path,
        None,
        b"",
        None,
        Some(current.as_bytes()),
        &NoDirectory,
    )? {
        Outcome::Write { document, created } => {
            assert!(!created);
            Ok(document.map(|d| String::from_utf8(d).unwrap()))
        }
        other => panic!("DELETE gave {other:?}"),
    }
}

/// Asserts a 409 with `condition` whose body validates against xcap-error.xsd.
fn expect_409<T: std::fmt::Debug>(r: Result<T, XcapError>, element: &str) -> XcapError {
    let e = r.expect_err("expected a 409");
    assert_eq!(e.status, 409, "{e:?}");
    let cond = e.condition.as_ref().expect("409 has a condition");
    assert_eq!(cond.element_name(), element, "{e:?}");
    let body = e.body().expect("409 has a body");
    assert_valid(&body, &format!("<{element}"));
    e
}

fn status<T: std::fmt::Debug>(r: Result<T, XcapError>) -> u16 {
    r.expect_err("expected an error").status
}

const EL: &str = "application/xcap-el+xml";
const ATT: &str = "application/xcap-att+xml";
const RLM: &str = "application/resource-lists+xml";

#[test]
fn document_get_put_delete() {
    let (body, mime) = get(ALICE, None, RL_DOC).unwrap();
    assert_eq!(body, RL_DOC, "GET returns the stored bytes");
    assert_eq!(mime, RLM);
    let (stored, created) = put(
        ALICE,
        None,
        RL_DOC,
        "application/resource-lists+xml; charset=UTF-8",
        None,
    )
    .unwrap();
    assert_eq!(stored, RL_DOC);
    assert!(created);
    let (_, created) = put(ALICE, None, RL_DOC, RLM, Some(RL_DOC)).unwrap();
    assert!(!created);
    assert_eq!(delete(ALICE, None, RL_DOC).unwrap(), None);
    let missing = run(Method::Get, ALICE, None, b"", None, None, &NoDirectory);
    assert_eq!(status(missing), 404);
    let missing = run(Method::Delete, ALICE, None, b"", None, None, &NoDirectory);
    assert_eq!(status(missing), 404);
    let r = run(
        Method::Get,
        "/nope/users/x/index",
        None,
        b"",
        None,
        Some(b"<a/>"),
        &NoDirectory,
    );
    assert_eq!(status(r), 404);
}

#[test]
fn document_put_errors() {
    assert_eq!(status(put(ALICE, None, RL_DOC, "text/xml", None)), 415);
    assert_eq!(status(put(ALICE, None, RL_DOC, EL, None)), 415);
    let u = uri(ALICE, None);
    let r = apply(
        &Usages::standard(),
        &Request {
            method: Method::Put,
            uri: &u,
            body: RL_DOC.as_bytes(),
            content_type: None,
        },
        None,
        &NoDirectory,
    );
    assert_eq!(status(r), 415);
    expect_409(
        put(ALICE, None, "<resource-lists", RLM, None),
        "not-well-formed",
    );
    let latin1 = b"<?xml version='1.0' encoding='ISO-8859-1'?><resource-lists xmlns='urn:ietf:params:xml:ns:resource-lists'/>";
    let r = run(
        Method::Put,
        ALICE,
        None,
        latin1,
        Some(RLM),
        None,
        &NoDirectory,
    );
    expect_409(r, "not-utf-8");
    let r = run(
        Method::Put,
        ALICE,
        None,
        b"<a>\xe9</a>",
        Some(RLM),
        None,
        &NoDirectory,
    );
    expect_409(r, "not-utf-8");
    // Schema: wrong root, missing required uri, misplaced display-name, foreign attribute
    // on the root, text in element-only content.
    for bad in [
        "<other xmlns='urn:ietf:params:xml:ns:resource-lists'/>",
        "<resource-lists/>",
        "<resource-lists xmlns='urn:ietf:params:xml:ns:resource-lists'><list><entry/></list></resource-lists>",
        "<resource-lists xmlns='urn:ietf:params:xml:ns:resource-lists'><list><entry uri='a'/><display-name>x</display-name></list></resource-lists>",
        "<resource-lists xmlns='urn:ietf:params:xml:ns:resource-lists' xmlns:x='urn:x' x:y='1'/>",
        "<resource-lists xmlns='urn:ietf:params:xml:ns:resource-lists'><list>text</list></resource-lists>",
        "<resource-lists xmlns='urn:ietf:params:xml:ns:resource-lists'><list bogus='1'/></resource-lists>",
        "<resource-lists xmlns='urn:ietf:params:xml:ns:resource-lists'><list><entry uri='a'><display-name>a</display-name><display-name>b</display-name></entry></list></resource-lists>",
    ] {
        expect_409(put(ALICE, None, bad, RLM, None), "schema-validation-error");
    }
    // ##other wildcards: foreign elements and attributes where the schema allows them.
    let ok = "<resource-lists xmlns='urn:ietf:params:xml:ns:resource-lists' xmlns:x='urn:x'><list x:a='1'><entry uri='a' x:b='2'><x:c/></entry><x:d/></list></resource-lists>";
    put(ALICE, None, ok, RLM, None).unwrap();
}

#[test]
fn element_get_by_position_attribute_and_wildcard() {
    let (body, mime) = get(
        ALICE,
        Some("resource-lists/list[@name=\"friends\"]/entry[2]"),
        RL_DOC,
    )
    .unwrap();
    assert_eq!(mime, EL);
    assert_eq!(body, "<entry uri=\"sip:carol@example.com\"/>");
    let (body, _) = get(
        ALICE,
        Some("resource-lists/list[1]/entry[@uri=\"sip:bob@example.com\"]/display-name"),
        RL_DOC,
    )
    .unwrap();
    assert_eq!(body, "<display-name>Bob</display-name>");
    let (body, _) = get(ALICE, Some("resource-lists/list[1]/*[4]"), RL_DOC).unwrap();
    assert_eq!(body, "<x:note>ours</x:note>");
    let (body, _) = get(ALICE, Some("*/*[2]/*"), RL_DOC).unwrap();
    assert!(body.contains("sip:dave@example.com"));
    let (body, _) = get(
        ALICE,
        Some("resource-lists/list[2][@name=\"work\"]/entry"),
        RL_DOC,
    )
    .unwrap();
    assert!(body.contains("sip:dave@example.com"));
    // Prefixed steps through the query's xmlns() bindings.
    let path = node(ALICE, "r:resource-lists/r:list[1]/y:note");
    let out = run(
        Method::Get,
        &path,
        Some("xmlns(r=urn:ietf:params:xml:ns:resource-lists)xmlns(y=urn:example:x)"),
        b"",
        None,
        Some(RL_DOC.as_bytes()),
        &NoDirectory,
    )
    .unwrap();
    assert!(matches!(out, Outcome::Content { body, .. } if body == b"<x:note>ours</x:note>"));
    // Unbound prefix: 400. No match, several matches: 404.
    assert_eq!(
        status(get(ALICE, Some("resource-lists/q:list"), RL_DOC)),
        400
    );
    assert_eq!(
        status(get(ALICE, Some("resource-lists/list[3]"), RL_DOC)),
        404
    );
    assert_eq!(status(get(ALICE, Some("resource-lists/list"), RL_DOC)), 404);
    assert_eq!(
        status(get(
            ALICE,
            Some("resource-lists/list[1]/entry[@uri=\"nobody\"]"),
            RL_DOC
        )),
        404
    );
    assert_eq!(
        status(run(
            Method::Get,
            &node(ALICE, "resource-lists"),
            None,
            b"",
            None,
            None,
            &NoDirectory
        )),
        404
    );
}

#[test]
fn attribute_and_namespace_get() {
    let (body, mime) = get(ALICE, Some("resource-lists/list[2]/@name"), RL_DOC).unwrap();
    assert_eq!((body.as_str(), mime.as_str()), ("work", ATT));
    assert_eq!(
        status(get(ALICE, Some("resource-lists/list[2]/@nope"), RL_DOC)),
        404
    );
    let (body, mime) = get(ALICE, Some("resource-lists/list[1]/namespace::*"), RL_DOC).unwrap();
    assert_eq!(mime, "application/xcap-ns+xml");
    assert_eq!(
        body,
        "<list xmlns=\"urn:ietf:params:xml:ns:resource-lists\" xmlns:x=\"urn:example:x\"/>"
    );
    for m in [Method::Put, Method::Delete] {
        let r = run(
            m,
            &node(ALICE, "resource-lists/namespace::*"),
            None,
            b"x",
            Some(EL),
            Some(RL_DOC.as_bytes()),
            &NoDirectory,
        );
        let e = r.unwrap_err();
        assert_eq!((e.status, e.allow), (405, Some("GET")));
    }
}

#[test]
fn element_put_inserts_and_replaces() {
    // Insert: appended after the last entry of the list, 201, same node afterwards.
    let sel = "resource-lists/list[@name=\"friends\"]/entry[@uri=\"sip:erin@example.com\"]";
    let (doc, created) = put(
        ALICE,
        Some(sel),
        "<entry uri=\"sip:erin@example.com\"/>",
        EL,
        Some(RL_DOC),
    )
    .unwrap();
    assert!(created);
    assert_valid(doc.as_bytes(), "sip:erin@example.com");
    // RFC 4825 §8.3: a GET of the request URI returns what was put, byte for byte.
    assert_eq!(
        get(ALICE, Some(sel), &doc).unwrap().0,
        "<entry uri=\"sip:erin@example.com\"/>"
    );
    let (got, _) = get(ALICE, Some("resource-lists/list[1]/entry[3]"), &doc).unwrap();
    assert!(got.contains("sip:erin@example.com"), "{got}");
    assert!(
        doc.contains(
            "<entry uri=\"sip:carol@example.com\"/>\n    <entry uri=\"sip:erin@example.com\"/>"
        ),
        "{doc}"
    );
    // Replace: 200, the GET returns what was put.
    let body = "<entry xmlns=\"urn:ietf:params:xml:ns:resource-lists\" uri=\"sip:erin@example.com\"><display-name>Erin</display-name></entry>";
    let (doc2, created) = put(ALICE, Some(sel), body, EL, Some(&doc)).unwrap();
    assert!(!created);
    assert_eq!(get(ALICE, Some(sel), &doc2).unwrap().0, body);
    // Positional insert: entry[1] goes before the current first entry.
    let (doc3, created) = put(
        ALICE,
        Some("resource-lists/list[2]/entry[1]"),
        "<entry uri=\"sip:zed@example.com\"/>",
        EL,
        Some(RL_DOC),
    )
    .unwrap();
    assert!(!created, "entry[1] exists: replaced");
    assert!(!doc3.contains("sip:dave@example.com"));
    let (doc4, created) = put(
        ALICE,
        Some("resource-lists/list[2]/entry[1][@uri=\"sip:zed@example.com\"]"),
        "<entry uri=\"sip:zed@example.com\"/>",
        EL,
        Some(RL_DOC),
    )
    .unwrap();
    assert!(created);
    let zed = doc4.find("sip:zed").unwrap();
    assert!(zed < doc4.find("sip:dave").unwrap(), "{doc4}");
    assert_valid(doc4.as_bytes(), "sip:zed@example.com");
    // Positional insert at the end: entry[2] of a one-entry list.
    let (doc5, created) = put(
        ALICE,
        Some("resource-lists/list[2]/entry[2]"),
        "<entry uri=\"sip:yan@example.com\"/>",
        EL,
        Some(RL_DOC),
    )
    .unwrap();
    assert!(created);
    assert!(doc5.find("sip:yan").unwrap() > doc5.find("sip:dave").unwrap());
    // A new list under the root, the body with a prefix bound in the document only.
    let (doc6, created) = put(
        ALICE,
        Some("resource-lists/list[@name=\"new\"]"),
        "<list name=\"new\"><x:tag/></list>",
        EL,
        Some(RL_DOC),
    )
    .unwrap();
    assert!(created);
    assert_valid(doc6.as_bytes(), "<list name=\"new\"><x:tag/></list>");
    // Replace the root element itself.
    let (doc7, _) = put(
        ALICE,
        Some("resource-lists"),
        "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"/>",
        EL,
        Some(RL_DOC),
    )
    .unwrap();
    assert!(doc7.contains("<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"/>"));
}

#[test]
fn element_put_errors() {
    let cur = Some(RL_DOC);
    // Same-node rule: the body does not match the selector's attribute test / name.
    expect_409(
        put(
            ALICE,
            Some("resource-lists/list[1]/entry[@uri=\"sip:a@x\"]"),
            "<entry uri=\"sip:b@x\"/>",
            EL,
            cur,
        ),
        "cannot-insert",
    );
    expect_409(
        put(
            ALICE,
            Some("resource-lists/list[1]/entry[2]"),
            "<external anchor=\"http://x/y\"/>",
            EL,
            cur,
        ),
        "cannot-insert",
    );
    // Position past the end: entry[5] of a list with two entries.
    expect_409(
        put(
            ALICE,
            Some("resource-lists/list[1]/entry[5]"),
            "<entry uri=\"sip:q@x\"/>",
            EL,
            cur,
        ),
        "cannot-insert",
    );
    // A second root.
    expect_409(
        put(ALICE, Some("other"), "<other/>", EL, cur),
        "cannot-insert",
    );
    // Not one element.
    for bad in [
        "<entry uri='a'/><entry uri='b'/>",
        "just text",
        "<entry uri='a'>",
        "",
    ] {
        expect_409(
            put(
                ALICE,
                Some("resource-lists/list[1]/entry[@uri=\"a\"]"),
                bad,
                EL,
                cur,
            ),
            "not-xml-frag",
        );
    }
    let r = run(
        Method::Put,
        &node(ALICE, "resource-lists/list[1]/entry[9]"),
        None,
        b"<entry uri='\xff'/>",
        Some(EL),
        Some(RL_DOC.as_bytes()),
        &NoDirectory,
    );
    expect_409(r, "not-utf-8");
    // MIME type of element bodies.
    assert_eq!(
        status(put(
            ALICE,
            Some("resource-lists/list[1]/entry[9]"),
            "<entry uri='a'/>",
            RLM,
            cur
        )),
        415
    );
    assert_eq!(
        status(put(
            ALICE,
            Some("resource-lists/list[1]/entry[9]"),
            "<entry uri='a'/>",
            ATT,
            cur
        )),
        415
    );
    // No parent: the closest existing ancestor is named.
    let e = expect_409(
        put(
            ALICE,
            Some("resource-lists/list[@name=\"nope\"]/list[@name=\"deeper\"]/entry"),
            "<entry uri='a'/>",
            EL,
            cur,
        ),
        "no-parent",
    );
    assert_eq!(
        e.condition,
        Some(ErrorCondition::NoParent {
            ancestor: Some(
                "resource-lists/users/sip:alice@example.com/index/~~/resource-lists".into()
            )
        })
    );
    let body = String::from_utf8(e.body_with_root("http://xcap.example.com").unwrap()).unwrap();
    assert!(body.contains("<ancestor>http://xcap.example.com/resource-lists/users/sip:alice@example.com/index/~~/resource-lists</ancestor>"), "{body}");
    let e = expect_409(
        put(
            ALICE,
            Some("resource-lists/list[2]/list[@name=\"x\"]/entry"),
            "<entry uri='a'/>",
            EL,
            cur,
        ),
        "no-parent",
    );
    assert_eq!(
        e.condition,
        Some(ErrorCondition::NoParent {
            ancestor: Some(
                "resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5B2%5D"
                    .into()
            )
        })
    );
    let e = expect_409(put(ALICE, Some("other/x"), "<x/>", EL, cur), "no-parent");
    assert_eq!(
        e.condition,
        Some(ErrorCondition::NoParent {
            ancestor: Some("resource-lists/users/sip:alice@example.com/index".into())
        })
    );
    // No document at all.
    let e = expect_409(
        put(ALICE, Some("resource-lists/list[1]"), "<list/>", EL, None),
        "no-parent",
    );
    assert_eq!(
        e.condition,
        Some(ErrorCondition::NoParent {
            ancestor: Some("resource-lists/users/sip:alice@example.com".into())
        })
    );
    // Schema after the operation: a display-name after the entries.
    expect_409(
        put(
            ALICE,
            Some("resource-lists/list[2]/display-name"),
            "<display-name>W</display-name>",
            EL,
            cur,
        ),
        "schema-validation-error",
    );
    // Entry without its required uri.
    expect_409(
        put(
            ALICE,
            Some("resource-lists/list[2]/entry[1]"),
            "<entry/>",
            EL,
            cur,
        ),
        "schema-validation-error",
    );
}

#[test]
fn attribute_put_and_delete() {
    let cur = Some(RL_DOC);
    // Replace a value: the element is still selected by position.
    let (doc, created) = put(ALICE, Some("resource-lists/list[2]/@name"), "job", ATT, cur).unwrap();
    assert!(!created);
    assert_eq!(
        get(ALICE, Some("resource-lists/list[2]/@name"), &doc)
            .unwrap()
            .0,
        "job"
    );
    // Same-node: changing the value the selector tests on.
    expect_409(
        put(
            ALICE,
            Some("resource-lists/list[@name=\"work\"]/@name"),
            "job",
            ATT,
            cur,
        ),
        "cannot-insert",
    );
    // Setting it to the same value is fine.
    put(
        ALICE,
        Some("resource-lists/list[@name=\"work\"]/@name"),
        "work",
        ATT,
        cur,
    )
    .unwrap();
    // Create a namespaced attribute; the prefix comes from the xmlns() binding.
    let path = node(ALICE, "resource-lists/list[2]/@z:prio");
    let out = run(
        Method::Put,
        &path,
        Some("xmlns(z=urn:example:z)"),
        b"a &amp; b",
        Some(ATT),
        Some(RL_DOC.as_bytes()),
        &NoDirectory,
    )
    .unwrap();
    let Outcome::Write {
        document: Some(d),
        created: true,
    } = out
    else {
        panic!("{out:?}")
    };
    let d = String::from_utf8(d).unwrap();
    assert!(
        d.contains("<list name=\"work\" xmlns:z=\"urn:example:z\" z:prio=\"a &amp; b\">")
            || d.contains("<list xmlns:z=\"urn:example:z\" name=\"work\" z:prio=\"a &amp; b\">"),
        "{d}"
    );
    assert_valid(d.as_bytes(), "z:prio");
    // An existing prefix in scope is reused.
    let path = node(ALICE, "resource-lists/list[2]/@q:flag");
    let out = run(
        Method::Put,
        &path,
        Some("xmlns(q=urn:example:x)"),
        b"1",
        Some(ATT),
        Some(RL_DOC.as_bytes()),
        &NoDirectory,
    )
    .unwrap();
    let Outcome::Write {
        document: Some(d), ..
    } = out
    else {
        panic!()
    };
    assert!(String::from_utf8(d).unwrap().contains("x:flag=\"1\""));
    // xml:lang needs no declaration; xmlns is not an attribute.
    let (d, created) = put(
        ALICE,
        Some("resource-lists/list[1]/display-name/@xml:lang"),
        "en",
        ATT,
        cur,
    )
    .unwrap();
    assert!(created);
    assert!(
        d.contains("<display-name xml:lang=\"en\">Friends</display-name>"),
        "{d}"
    );
    assert_valid(d.as_bytes(), "xml:lang");
    expect_409(
        put(
            ALICE,
            Some("resource-lists/list[2]/@xmlns"),
            "urn:evil",
            ATT,
            cur,
        ),
        "cannot-insert",
    );
    assert_eq!(
        status(get(ALICE, Some("resource-lists/@xmlns"), RL_DOC)),
        404
    );
    // Bad values, bad MIME, no element.
    expect_409(
        put(ALICE, Some("resource-lists/list[2]/@name"), "a<b", ATT, cur),
        "not-xml-att-value",
    );
    expect_409(
        put(ALICE, Some("resource-lists/list[2]/@name"), "a&b", ATT, cur),
        "not-xml-att-value",
    );
    assert_eq!(
        status(put(
            ALICE,
            Some("resource-lists/list[2]/@name"),
            "x",
            EL,
            cur
        )),
        415
    );
    let e = expect_409(
        put(ALICE, Some("resource-lists/list[7]/@name"), "x", ATT, cur),
        "no-parent",
    );
    assert!(
        matches!(e.condition, Some(ErrorCondition::NoParent { ancestor: Some(a) }) if a.ends_with("/~~/resource-lists"))
    );
    // Schema: an unknown unqualified attribute.
    expect_409(
        put(
            ALICE,
            Some("resource-lists/list[2]/@color"),
            "red",
            ATT,
            cur,
        ),
        "schema-validation-error",
    );
    // Delete: optional attribute fine, required one is a schema error, missing one 404.
    let d = delete(ALICE, Some("resource-lists/list[2]/@name"), RL_DOC)
        .unwrap()
        .unwrap();
    assert!(d.contains("<list>"));
    assert_valid(d.as_bytes(), "<list>");
    expect_409(
        delete(ALICE, Some("resource-lists/list[2]/entry/@uri"), RL_DOC),
        "schema-validation-error",
    );
    assert_eq!(
        status(delete(ALICE, Some("resource-lists/list[2]/@nope"), RL_DOC)),
        404
    );
    // Deleting the attribute the selector tests on: the element is no longer selected, fine.
    delete(
        ALICE,
        Some("resource-lists/list[@name=\"work\"]/@name"),
        RL_DOC,
    )
    .unwrap();
}

#[test]
fn element_delete_and_same_node_rule() {
    let d = delete(
        ALICE,
        Some("resource-lists/list[1]/entry[@uri=\"sip:bob@example.com\"]"),
        RL_DOC,
    )
    .unwrap()
    .unwrap();
    assert!(!d.contains("sip:bob"));
    assert_valid(d.as_bytes(), "sip:carol@example.com");
    assert!(
        d.contains(
            "<display-name>Friends</display-name>\n    <entry uri=\"sip:carol@example.com\"/>"
        ),
        "{d}"
    );
    // entry[1] of a two-entry list: afterwards entry[1] selects the other one.
    expect_409(
        delete(ALICE, Some("resource-lists/list[1]/entry[1]"), RL_DOC),
        "cannot-delete",
    );
    // *[n] likewise; but the last entry can go by position.
    expect_409(
        delete(ALICE, Some("resource-lists/list[1]/*[2]"), RL_DOC),
        "cannot-delete",
    );
    delete(ALICE, Some("resource-lists/list[1]/entry[2]"), RL_DOC).unwrap();
    delete(ALICE, Some("resource-lists/list[2]/entry"), RL_DOC).unwrap();
    // The root element cannot go.
    expect_409(
        delete(ALICE, Some("resource-lists"), RL_DOC),
        "cannot-delete",
    );
    assert_eq!(
        status(delete(ALICE, Some("resource-lists/list[9]"), RL_DOC)),
        404
    );
    let r = run(
        Method::Delete,
        &node(ALICE, "resource-lists"),
        None,
        b"",
        None,
        None,
        &NoDirectory,
    );
    assert_eq!(status(r), 404);
}

#[test]
fn resource_lists_uniqueness_and_constraints() {
    let cur = Some(RL_DOC);
    let e = expect_409(
        put(
            ALICE,
            Some("resource-lists/list[3]"),
            "<list name=\"friends\"/>",
            EL,
            cur,
        ),
        "uniqueness-failure",
    );
    assert_eq!(
        e.condition,
        Some(ErrorCondition::UniquenessFailure {
            exists: vec![(
                "resource-lists/list[3]/@name".into(),
                vec!["friends1".into(), "friends2".into(), "friends3".into()]
            )]
        })
    );
    let body = String::from_utf8(e.body().unwrap()).unwrap();
    assert!(
        body.contains(
            "<exists field=\"resource-lists/list[3]/@name\"><alt-value>friends1</alt-value>"
        ),
        "{body}"
    );
    let e = expect_409(
        put(
            ALICE,
            Some("resource-lists/list[1]/entry[3]"),
            "<entry uri=\"sip:bob@example.com\"/>",
            EL,
            cur,
        ),
        "uniqueness-failure",
    );
    assert!(
        matches!(&e.condition, Some(ErrorCondition::UniquenessFailure { exists }) if exists[0].0 == "resource-lists/list[1]/entry[3]/@uri")
    );
    // The same URI in another list is fine; nested lists are checked too.
    put(
        ALICE,
        Some("resource-lists/list[2]/entry[2]"),
        "<entry uri=\"sip:bob@example.com\"/>",
        EL,
        cur,
    )
    .unwrap();
    let nested = "<list name=\"n\"><list name=\"a\"/><list name=\"a\"/></list>";
    expect_409(
        put(ALICE, Some("resource-lists/list[3]"), nested, EL, cur),
        "uniqueness-failure",
    );
    let refs = "<list name=\"n\"><entry-ref ref=\"resource-lists/users/sip:bob@example.com/index/~~/resource-lists/list%5b1%5d/entry%5b1%5d\"/><entry-ref ref=\"resource-lists/users/sip:bob@example.com/index/~~/resource-lists/list%5b1%5d/entry%5b1%5d\"/></list>";
    expect_409(
        put(ALICE, Some("resource-lists/list[3]"), refs, EL, cur),
        "uniqueness-failure",
    );
    let ext = "<list name=\"n\"><external anchor=\"http://x/a\"/><external anchor=\"http://x/a\"/></list>";
    expect_409(
        put(ALICE, Some("resource-lists/list[3]"), ext, EL, cur),
        "uniqueness-failure",
    );
    // Data constraints: entry-ref ref relative, external anchor absolute HTTP.
    let (ok, _) = put(ALICE, Some("resource-lists/list[3]"), "<list name=\"n\"><external anchor=\"http://xcap.example.com/resource-lists/users/sip:b@x/index/~~/resource-lists/list%5b1%5d\"/><entry-ref ref=\"resource-lists/users/sip:b@x/index/~~/resource-lists/list%5b1%5d/entry%5b1%5d\"/></list>", EL, cur).unwrap();
    assert_valid(ok.as_bytes(), "entry-ref");
    expect_409(
        put(
            ALICE,
            Some("resource-lists/list[3]"),
            "<list name=\"n\"><entry-ref ref=\"http://x/y\"/></list>",
            EL,
            cur,
        ),
        "constraint-failure",
    );
    expect_409(
        put(
            ALICE,
            Some("resource-lists/list[3]"),
            "<list name=\"n\"><entry-ref ref=\"a b\"/></list>",
            EL,
            cur,
        ),
        "constraint-failure",
    );
    // Relative, but not to a resource-lists <entry>.
    for r in [
        "resource-lists/users/sip:b@x/index",
        "resource-lists/users/sip:b@x/index/~~/resource-lists/list%5b1%5d",
        "pres-rules/users/sip:b@x/index/~~/resource-lists/list/entry",
        "resource-lists/users/sip:b@x/index/~~/resource-lists/list/entry/@uri",
    ] {
        let body = format!("<list name=\"n\"><entry-ref ref=\"{r}\"/></list>");
        expect_409(
            put(ALICE, Some("resource-lists/list[3]"), &body, EL, cur),
            "constraint-failure",
        );
    }
    expect_409(
        put(
            ALICE,
            Some("resource-lists/list[3]"),
            "<list name=\"n\"><external anchor=\"relative/path\"/></list>",
            EL,
            cur,
        ),
        "constraint-failure",
    );
    expect_409(
        put(
            ALICE,
            Some("resource-lists/list[3]"),
            "<list name=\"n\"><external anchor=\"sip:x@y\"/></list>",
            EL,
            cur,
        ),
        "constraint-failure",
    );
}

const RLS_DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rls-services xmlns="urn:ietf:params:xml:ns:rls-services" xmlns:rl="urn:ietf:params:xml:ns:resource-lists">
  <service uri="sip:alice-friends@example.com">
    <resource-list>http://xcap.example.com/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5b@name=%22friends%22%5d</resource-list>
    <packages><package>presence</package></packages>
  </service>
  <service uri="sip:alice-work@example.com">
    <list name="work"><rl:entry uri="sip:dave@example.com"/></list>
  </service>
</rls-services>
"#;

const ALICE_RLS: &str = "/rls-services/users/sip:alice@example.com/index";
const RLSM: &str = "application/rls-services+xml";

#[test]
fn rls_services() {
    assert_valid(RLS_DOC.as_bytes(), "<rls-services");
    let dir = FakeDir::default();
    let r = run(
        Method::Put,
        ALICE_RLS,
        None,
        RLS_DOC.as_bytes(),
        Some(RLSM),
        None,
        &dir,
    )
    .unwrap();
    assert!(matches!(r, Outcome::Write { created: true, .. }));
    assert!(
        dir.asked
            .borrow()
            .iter()
            .any(|(u, x, d)| u == "sip:alice-work@example.com"
                && x == "sip:alice@example.com"
                && d == "index")
    );
    // Another user's document already has the URI.
    let dir = FakeDir {
        taken: [
            "sip:alice-work@example.com".to_string(),
            "sip:alice-work1@example.com".to_string(),
        ]
        .into(),
        ..FakeDir::default()
    };
    let r = run(
        Method::Put,
        ALICE_RLS,
        None,
        RLS_DOC.as_bytes(),
        Some(RLSM),
        None,
        &dir,
    );
    let e = expect_409(r, "uniqueness-failure");
    assert_eq!(
        e.condition,
        Some(ErrorCondition::UniquenessFailure {
            exists: vec![(
                "rls-services/service[2]/@uri".into(),
                vec![
                    "sip:alice-work2@example.com".into(),
                    "sip:alice-work3@example.com".into(),
                    "sip:alice-work4@example.com".into()
                ]
            )]
        })
    );
    // Twice in the same document.
    let sel = node(ALICE_RLS, "rls-services/service[3]");
    let body = b"<service uri=\"sip:alice-friends@example.com\"><list/></service>";
    let r = run(
        Method::Put,
        &sel,
        None,
        body,
        Some(EL),
        Some(RLS_DOC.as_bytes()),
        &NoDirectory,
    );
    expect_409(r, "uniqueness-failure");
    // Both list and resource-list, neither, or packages first: schema errors.
    for svc in [
        "<service uri=\"sip:n@x\"><resource-list>http://x/y</resource-list><list/></service>",
        "<service uri=\"sip:n@x\"/>",
        "<service uri=\"sip:n@x\"><packages/><list/></service>",
        "<service><list/></service>",
    ] {
        let r = run(
            Method::Put,
            &sel,
            None,
            svc.as_bytes(),
            Some(EL),
            Some(RLS_DOC.as_bytes()),
            &NoDirectory,
        );
        expect_409(r, "schema-validation-error");
    }
    // rls:entry inside a list is a foreign element to listType's ##other wildcard: valid, as
    // xmllint agrees (the client most likely meant rl:entry, but the schema allows it).
    let r = run(
        Method::Put,
        &sel,
        None,
        b"<service uri=\"sip:n@x\"><list><entry uri=\"sip:a@b\"/></list></service>",
        Some(EL),
        Some(RLS_DOC.as_bytes()),
        &NoDirectory,
    );
    assert!(r.is_ok());
    // resource-list must be an absolute HTTP URI.
    let r = run(
        Method::Put,
        &sel,
        None,
        b"<service uri=\"sip:n@x\"><resource-list>index</resource-list></service>",
        Some(EL),
        Some(RLS_DOC.as_bytes()),
        &NoDirectory,
    );
    expect_409(r, "constraint-failure");
    // Lists inside services follow the resource-lists rules.
    let r = run(Method::Put, &sel, None, b"<service uri=\"sip:n@x\"><list><rl:entry uri=\"a\"/><rl:entry uri=\"a\"/></list></service>", Some(EL), Some(RLS_DOC.as_bytes()), &NoDirectory);
    let e = expect_409(r, "uniqueness-failure");
    assert!(
        matches!(&e.condition, Some(ErrorCondition::UniquenessFailure { exists }) if exists[0].0 == "rls-services/service[3]/list[1]/*[2]/@uri"),
        "{e:?}"
    );
    // A good new service, with packages and an extension element.
    let good = b"<service uri=\"sip:n@x\" xmlns:e=\"urn:e\"><list name=\"l\"><rl:entry uri=\"sip:a@b\"/></list><packages><package>presence</package><e:p/></packages><e:q/></service>";
    let r = run(
        Method::Put,
        &sel,
        None,
        good,
        Some(EL),
        Some(RLS_DOC.as_bytes()),
        &NoDirectory,
    )
    .unwrap();
    let Outcome::Write {
        document: Some(d),
        created: true,
    } = r
    else {
        panic!("{r:?}")
    };
    assert_valid(&d, "sip:n@x");
    // The global tree is the computed index: read-only.
    let r = run(
        Method::Put,
        "/rls-services/global/index",
        None,
        RLS_DOC.as_bytes(),
        Some(RLSM),
        None,
        &NoDirectory,
    );
    let e = r.unwrap_err();
    assert_eq!((e.status, e.allow), (405, Some("GET")));
}

const PR_DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<cr:ruleset xmlns:pr="urn:ietf:params:xml:ns:pres-rules" xmlns:cr="urn:ietf:params:xml:ns:common-policy" xmlns:ocp="urn:oma:xml:xdm:common-policy">
  <cr:rule id="allow-own">
    <cr:conditions><cr:identity><cr:one id="sip:alice@example.com"/></cr:identity></cr:conditions>
    <cr:actions><pr:sub-handling>allow</pr:sub-handling></cr:actions>
    <cr:transformations>
      <pr:provide-services><pr:all-services/></pr:provide-services>
      <pr:provide-persons><pr:all-persons/></pr:provide-persons>
      <pr:provide-devices><pr:class>home</pr:class></pr:provide-devices>
      <pr:provide-activities>true</pr:provide-activities>
      <pr:provide-user-input>bare</pr:provide-user-input>
      <pr:provide-unknown-attribute name="x" ns="urn:x">false</pr:provide-unknown-attribute>
      <pr:provide-all-attributes/>
    </cr:transformations>
  </cr:rule>
  <cr:rule id="block-others">
    <cr:conditions>
      <ocp:other-identity/>
      <cr:validity><cr:from>2026-01-01T00:00:00Z</cr:from><cr:until>2027-01-01T00:00:00Z</cr:until></cr:validity>
      <cr:sphere value="work"/>
    </cr:conditions>
    <cr:actions><pr:sub-handling>polite-block</pr:sub-handling></cr:actions>
  </cr:rule>
  <cr:rule id="lists">
    <cr:conditions><ocp:external-list><ocp:entry anc="http://xcap.example.com/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5b@name=%22friends%22%5d"/></ocp:external-list><cr:identity><cr:many domain="example.com"><cr:except id="sip:eve@example.com"/></cr:many></cr:identity></cr:conditions>
    <cr:actions><pr:sub-handling>confirm</pr:sub-handling></cr:actions>
  </cr:rule>
</cr:ruleset>
"#;

#[test]
fn pres_rules_ietf_and_oma() {
    assert_valid(PR_DOC.as_bytes(), "ruleset");
    let ap = "application/auth-policy+xml";
    for doc in [
        "/pres-rules/users/sip:alice@example.com/index",
        "/org.openmobilealliance.pres-rules/users/sip:alice@example.com/pres-rules",
    ] {
        put(doc, None, PR_DOC, ap, None).unwrap();
        assert_eq!(status(put(doc, None, PR_DOC, RLM, None)), 415);
        // Unprefixed steps are in common-policy (the default namespace).
        let out = run(
            Method::Get,
            &node(
                doc,
                "ruleset/rule[@id=\"block-others\"]/actions/pr:sub-handling",
            ),
            Some("xmlns(pr=urn:ietf:params:xml:ns:pres-rules)"),
            b"",
            None,
            Some(PR_DOC.as_bytes()),
            &NoDirectory,
        )
        .unwrap();
        let Outcome::Content { body, .. } = out else {
            panic!()
        };
        let v = String::from_utf8(body).unwrap();
        assert_eq!(v, "<pr:sub-handling>polite-block</pr:sub-handling>");
        // sub-handling values.
        let sel = "ruleset/rule[@id=\"allow-own\"]/actions";
        let bad = "<cr:actions xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\"><pr:sub-handling xmlns:pr=\"urn:ietf:params:xml:ns:pres-rules\">maybe</pr:sub-handling></cr:actions>";
        expect_409(
            put(doc, Some(sel), bad, EL, Some(PR_DOC)),
            "schema-validation-error",
        );
        let good = "<cr:actions xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\"><pr:sub-handling>block</pr:sub-handling></cr:actions>";
        let (d, created) = put(doc, Some(sel), good, EL, Some(PR_DOC)).unwrap();
        assert!(!created);
        assert_valid(d.as_bytes(), "<pr:sub-handling>block</pr:sub-handling>");
        // Rule ids are unique.
        let dup = "<cr:rule xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\" id=\"lists\"/>";
        let e = expect_409(
            put(doc, Some("ruleset/rule[4]"), dup, EL, Some(PR_DOC)),
            "uniqueness-failure",
        );
        assert!(
            matches!(&e.condition, Some(ErrorCondition::UniquenessFailure { exists }) if exists[0] == ("ruleset/rule[4]/@id".to_string(), vec!["lists1".to_string(), "lists2".to_string(), "lists3".to_string()]))
        );
        // id must be an xs:ID; the conditions model is checked.
        for bad in [
            "<cr:rule xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\" id=\"1st\"/>",
            "<cr:rule xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\" id=\"r\"><cr:actions/><cr:conditions/></cr:rule>",
            "<cr:rule xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\" id=\"r\"><cr:conditions><cr:identity/></cr:conditions></cr:rule>",
            "<cr:rule xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\" id=\"r\"><cr:conditions><cr:validity><cr:from>soon</cr:from><cr:until>2027-01-01T00:00:00Z</cr:until></cr:validity></cr:conditions></cr:rule>",
            "<cr:rule xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\" id=\"r\"><cr:transformations><pr:provide-activities>maybe</pr:provide-activities></cr:transformations></cr:rule>",
            "<cr:rule xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\" id=\"r\"><cr:transformations><pr:provide-services><pr:all-services/><pr:class>x</pr:class></pr:provide-services></cr:transformations></cr:rule>",
            "<cr:rule xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\" id=\"r\"><cr:actions><cr:sphere value=\"x\"/></cr:actions></cr:rule>",
            "<cr:rule xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\" id=\"r\"><cr:conditions><ocp:other-identity>x</ocp:other-identity></cr:conditions></cr:rule>",
        ] {
            expect_409(
                put(doc, Some("ruleset/rule[4]"), bad, EL, Some(PR_DOC)),
                "schema-validation-error",
            );
        }
        let (d, created) = put(doc, Some("ruleset/rule[4]"), "<cr:rule xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\" id=\"r4\"><cr:actions><pr:sub-handling>block</pr:sub-handling></cr:actions></cr:rule>", EL, Some(PR_DOC)).unwrap();
        assert!(created);
        assert_valid(d.as_bytes(), "id=\"r4\"");
    }
}

#[test]
fn read_only_usages() {
    let caps = xcap_caps_document(&Usages::standard());
    let caps_s = String::from_utf8(caps.clone()).unwrap();
    let (body, mime) = get("/xcap-caps/global/index", None, &caps_s).unwrap();
    assert_eq!(
        (body.as_str(), mime.as_str()),
        (caps_s.as_str(), "application/xcap-caps+xml")
    );
    let (auid, _) = get(
        "/xcap-caps/global/index",
        Some("xcap-caps/auids/auid[1]"),
        &caps_s,
    )
    .unwrap();
    assert_eq!(auid, "<auid>resource-lists</auid>");
    for (m, ct) in [
        (Method::Put, Some("application/xcap-caps+xml")),
        (Method::Delete, None),
    ] {
        let r = run(
            m,
            "/xcap-caps/global/index",
            None,
            &caps,
            ct,
            Some(&caps),
            &NoDirectory,
        );
        let e = r.unwrap_err();
        assert_eq!((e.status, e.allow), (405, Some("GET")));
        let r = run(
            m,
            "/org.openmobilealliance.xcap-directory/users/sip:a@b/directory.xml",
            None,
            b"",
            ct,
            None,
            &NoDirectory,
        );
        assert_eq!(r.unwrap_err().status, 405);
    }
}

/// A resource list with `n` entries.
pub(crate) fn big_list(n: usize) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\n  <list name=\"big\">\n",
    );
    for i in 0..n {
        s.push_str(&format!("    <entry uri=\"sip:user{i}@example.com\"><display-name>User {i}</display-name></entry>\n"));
    }
    s.push_str("  </list>\n</resource-lists>\n");
    s
}

#[test]
fn thousand_entry_list() {
    let doc = big_list(1000);
    let t = std::time::Instant::now();
    for i in (0..1000).step_by(50) {
        let sel = format!("resource-lists/list/entry[@uri=\"sip:user{i}@example.com\"]");
        let (el, _) = get(ALICE, Some(&sel), &doc).unwrap();
        assert!(el.contains(&format!("User {i}")));
    }
    let (d, created) = put(
        ALICE,
        Some("resource-lists/list/entry[@uri=\"sip:new@example.com\"]"),
        "<entry uri=\"sip:new@example.com\"/>",
        EL,
        Some(&doc),
    )
    .unwrap();
    assert!(created);
    let (_, _) = put(
        ALICE,
        Some("resource-lists/list/entry[1000]"),
        "<entry uri=\"sip:repl@example.com\"/>",
        EL,
        Some(&d),
    )
    .unwrap();
    expect_409(
        put(
            ALICE,
            Some("resource-lists/list/entry[1001]"),
            "<entry uri=\"sip:user5@example.com\"/>",
            EL,
            Some(&doc),
        ),
        "uniqueness-failure",
    );
    // Generous even for an unoptimized build on a shared machine; catches quadratic work.
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
    assert_valid(d.as_bytes(), "sip:new@example.com");
}

/// Our Rust schema checks and xmllint with the real XSDs agree, valid and invalid alike.
#[test]
fn schema_checks_agree_with_xmllint() {
    const RL: &str = "xmlns='urn:ietf:params:xml:ns:resource-lists'";
    const RLS: &str = "xmlns='urn:ietf:params:xml:ns:rls-services' xmlns:rl='urn:ietf:params:xml:ns:resource-lists'";
    const CP: &str = "xmlns='urn:ietf:params:xml:ns:common-policy' xmlns:pr='urn:ietf:params:xml:ns:pres-rules' xmlns:ocp='urn:oma:xml:xdm:common-policy'";
    let rl = |body: &str| format!("<resource-lists {RL} xmlns:x='urn:x'>{body}</resource-lists>");
    let rls = |body: &str| format!("<rls-services {RLS} xmlns:x='urn:x'>{body}</rls-services>");
    let cp = |body: &str| format!("<ruleset {CP} xmlns:x='urn:x'>{body}</ruleset>");
    let cases: Vec<(&str, String)> = vec![
        ("resource-lists", rl("")),
        ("resource-lists", rl("<list/>")),
        (
            "resource-lists",
            rl(
                "<list name='a' x:y='1'><display-name xml:lang='en'>A</display-name><entry uri='sip:a@b'/><list><entry-ref ref='r'/></list><external anchor='http://a/b'/><x:z/></list>",
            ),
        ),
        ("resource-lists", rl("<list><x:z/><entry uri='a'/></list>")),
        (
            "resource-lists",
            rl("<list><entry uri='a'/><display-name/></list>"),
        ),
        (
            "resource-lists",
            rl("<list><display-name/><display-name/></list>"),
        ),
        ("resource-lists", rl("<list><entry/></list>")),
        ("resource-lists", rl("<list><entry-ref/></list>")),
        ("resource-lists", rl("<list><external/></list>")),
        (
            "resource-lists",
            rl("<list><entry uri='a'><display-name x:a='1'>n</display-name></entry></list>"),
        ),
        (
            "resource-lists",
            rl("<list><entry uri='a'><display-name><x:b/></display-name></entry></list>"),
        ),
        (
            "resource-lists",
            rl("<list><entry uri='a'><x:b/><display-name/></entry></list>"),
        ),
        (
            "resource-lists",
            rl("<list><entry uri='a' other='1'/></list>"),
        ),
        ("resource-lists", rl("<list>text</list>")),
        ("resource-lists", rl("<entry uri='a'/>")),
        ("resource-lists", rl("<x:foo/>")),
        ("resource-lists", rl("<list><foo/></list>")),
        ("resource-lists", format!("<resource-lists {RL} name='x'/>")),
        ("resource-lists", "<resource-lists/>".to_string()),
        ("rls-services", rls("")),
        ("rls-services", rls("<service uri='a'><list/></service>")),
        (
            "rls-services",
            rls(
                "<service uri='a'><resource-list>http://x/y</resource-list><packages><package>presence</package><x:p/><package>dialog</package></packages><x:q/></service>",
            ),
        ),
        (
            "rls-services",
            rls(
                "<service uri='a'><list name='l'><rl:entry uri='b'/><rl:list><rl:entry uri='c'/></rl:list></list></service>",
            ),
        ),
        ("rls-services", rls("<service uri='a'/>")),
        ("rls-services", rls("<service><list/></service>")),
        (
            "rls-services",
            rls("<service uri='a'><list/><resource-list>x</resource-list></service>"),
        ),
        (
            "rls-services",
            rls("<service uri='a'><packages/><list/></service>"),
        ),
        (
            "rls-services",
            rls("<service uri='a'><list/><packages/><packages/></service>"),
        ),
        (
            "rls-services",
            rls("<service uri='a'><list/><packages><foo/></packages></service>"),
        ),
        (
            "rls-services",
            rls("<service uri='a'><list><rl:entry/></list></service>"),
        ),
        (
            "rls-services",
            rls("<service uri='a'><resource-list><x:a/></resource-list></service>"),
        ),
        (
            "rls-services",
            rls("<service uri='a' x:y='1'><list/></service>"),
        ),
        (
            "rls-services",
            rls("<service uri='a' y='1'><list/></service>"),
        ),
        ("pres-rules", cp("")),
        ("pres-rules", cp("<rule id='a'/>")),
        ("pres-rules", cp("<rule/>")),
        ("pres-rules", cp("<rule id='1a'/>")),
        ("pres-rules", cp("<rule id='a' x:y='1'/>")),
        (
            "pres-rules",
            cp("<rule id='a'><conditions/><actions/><transformations/></rule>"),
        ),
        (
            "pres-rules",
            cp("<rule id='a'><actions/><conditions/></rule>"),
        ),
        (
            "pres-rules",
            cp(
                "<rule id='a'><conditions><identity><one id='sip:a@b'><x:e/></one><many domain='d'><except id='x'/><except domain='e'/><x:f/></many><x:g/></identity><sphere value='s'/><validity><from>2026-01-01T00:00:00Z</from><until>2026-02-01T00:00:00+01:00</until></validity><ocp:other-identity/><ocp:anonymous-request/><ocp:external-list><ocp:entry anc='http://a/b'/></ocp:external-list></conditions></rule>",
            ),
        ),
        (
            "pres-rules",
            cp("<rule id='a'><conditions><identity/></conditions></rule>"),
        ),
        (
            "pres-rules",
            cp("<rule id='a'><conditions><identity><one/></identity></conditions></rule>"),
        ),
        (
            "pres-rules",
            cp(
                "<rule id='a'><conditions><identity><one id='x'><x:a/><x:b/></one></identity></conditions></rule>",
            ),
        ),
        (
            "pres-rules",
            cp("<rule id='a'><conditions><sphere/></conditions></rule>"),
        ),
        (
            "pres-rules",
            cp(
                "<rule id='a'><conditions><validity><from>2026-01-01T00:00:00Z</from></validity></conditions></rule>",
            ),
        ),
        (
            "pres-rules",
            cp(
                "<rule id='a'><conditions><validity><from>x</from><until>2026-01-01T00:00:00Z</until></validity></conditions></rule>",
            ),
        ),
        (
            "pres-rules",
            cp(
                "<rule id='a'><conditions><ocp:other-identity>x</ocp:other-identity></conditions></rule>",
            ),
        ),
        (
            "pres-rules",
            cp(
                "<rule id='a'><conditions><ocp:external-list><ocp:other/></ocp:external-list></conditions></rule>",
            ),
        ),
        (
            "pres-rules",
            cp(
                "<rule id='a'><actions><pr:sub-handling>allow</pr:sub-handling><x:y/></actions></rule>",
            ),
        ),
        (
            "pres-rules",
            cp(
                "<rule id='a'><actions><pr:sub-handling> polite-block </pr:sub-handling></actions></rule>",
            ),
        ),
        (
            "pres-rules",
            cp("<rule id='a'><actions><pr:sub-handling>deny</pr:sub-handling></actions></rule>"),
        ),
        (
            "pres-rules",
            cp("<rule id='a'><actions><sphere value='x'/></actions></rule>"),
        ),
        (
            "pres-rules",
            cp(
                "<rule id='a'><transformations><pr:provide-services><pr:service-uri>sip:x</pr:service-uri><pr:class>c</pr:class><x:o/></pr:provide-services><pr:provide-devices><pr:deviceID>urn:d</pr:deviceID></pr:provide-devices><pr:provide-persons><pr:all-persons/></pr:provide-persons><pr:provide-mood>1</pr:provide-mood><pr:provide-user-input>full</pr:provide-user-input><pr:provide-unknown-attribute name='n' ns='u'>true</pr:provide-unknown-attribute><pr:provide-all-attributes/></transformations></rule>",
            ),
        ),
        (
            "pres-rules",
            cp(
                "<rule id='a'><transformations><pr:provide-services><pr:all-services/><pr:class>c</pr:class></pr:provide-services></transformations></rule>",
            ),
        ),
        (
            "pres-rules",
            cp(
                "<rule id='a'><transformations><pr:provide-persons><pr:deviceID>d</pr:deviceID></pr:provide-persons></transformations></rule>",
            ),
        ),
        (
            "pres-rules",
            cp(
                "<rule id='a'><transformations><pr:provide-mood>yes</pr:provide-mood></transformations></rule>",
            ),
        ),
        (
            "pres-rules",
            cp(
                "<rule id='a'><transformations><pr:provide-user-input>some</pr:provide-user-input></transformations></rule>",
            ),
        ),
        (
            "pres-rules",
            cp(
                "<rule id='a'><transformations><pr:provide-unknown-attribute name='n'>true</pr:provide-unknown-attribute></transformations></rule>",
            ),
        ),
        (
            "pres-rules",
            cp(
                "<rule id='a'><transformations><pr:provide-all-attributes>x</pr:provide-all-attributes></transformations></rule>",
            ),
        ),
        (
            "pres-rules",
            cp("<rule id='a'><transformations><pr:unknown-thing/></transformations></rule>"),
        ),
        (
            "pres-rules",
            cp(
                "<rule id='a'><transformations><pr:provide-services><pr:all-services><x:a/></pr:all-services></pr:provide-services></transformations></rule>",
            ),
        ),
        ("pres-rules", format!("<ruleset {CP} x='1'/>")),
    ];
    let usages = Usages::standard();
    for (auid, doc) in &cases {
        let parsed = dom::parse_document(doc.as_bytes()).expect("well-formed case");
        let ours = usages.get(auid).unwrap().validate_schema(&parsed);
        let theirs = crate::schema_check::validate(doc.as_bytes());
        assert_eq!(
            ours.is_ok(),
            theirs.is_ok(),
            "{doc}\nours: {ours:?}\nxmllint: {theirs:?}"
        );
    }
}

/// Minimum time per call of `f` over 30 batches of 10 (robust to a busy machine).
fn min_time(mut f: impl FnMut()) -> std::time::Duration {
    (0..30)
        .map(|_| {
            let t = std::time::Instant::now();
            for _ in 0..10 {
                f();
            }
            t.elapsed() / 10
        })
        .min()
        .unwrap()
}

/// Parse / GET / PUT on a 1,000-entry list, minimum times (`--release --ignored --nocapture`).
#[test]
#[ignore]
fn perf_min() {
    let doc = big_list(1000);
    let usages = Usages::standard();
    let get_uri = uri(
        &node(
            ALICE,
            "resource-lists/list/entry[@uri=\"sip:user500@example.com\"]",
        ),
        None,
    );
    let put_uri = uri(
        &node(
            ALICE,
            "resource-lists/list/entry[@uri=\"sip:new@example.com\"]",
        ),
        None,
    );
    let raw = min_time(|| {
        let mut r = quick_xml::reader::Reader::from_str(&doc);
        while !matches!(r.read_event().unwrap(), quick_xml::events::Event::Eof) {}
    });
    let parse = min_time(|| {
        std::hint::black_box(dom::parse_document(doc.as_bytes()).unwrap());
    });
    let get = min_time(|| {
        let req = Request {
            method: Method::Get,
            uri: &get_uri,
            body: b"",
            content_type: None,
        };
        std::hint::black_box(apply(&usages, &req, Some(doc.as_bytes()), &NoDirectory).unwrap());
    });
    let put = min_time(|| {
        let req = Request {
            method: Method::Put,
            uri: &put_uri,
            body: b"<entry uri=\"sip:new@example.com\"/>",
            content_type: Some(EL),
        };
        std::hint::black_box(apply(&usages, &req, Some(doc.as_bytes()), &NoDirectory).unwrap());
    });
    println!("min: raw quick-xml {raw:?}, parse {parse:?}, GET {get:?}, PUT {put:?}");
}

/// The insertion examples of RFC 4825 §8.2.3, on a list: every successful PUT is undone by
/// a DELETE of the same URI, giving back the original document byte for byte.
#[test]
fn insertion_points_and_reversal() {
    let start = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\n<list name=\"l\">\n<entry uri=\"first\"/>\n<entry uri=\"second\"/>\n<!-- comment -->\n<external anchor=\"http://x/first\"/>\n</list>\n</resource-lists>\n";
    let check = |sel: &str, body: &str, expect_pos: &str| {
        let (doc, created) = put(ALICE, Some(sel), body, EL, Some(start)).unwrap();
        assert!(created, "{sel}");
        assert_eq!(get(ALICE, Some(sel), &doc).unwrap().0, body, "{sel}");
        assert_eq!(get(ALICE, Some(expect_pos), &doc).unwrap().0, body, "{sel}");
        assert_valid(doc.as_bytes(), body);
        let back = delete(ALICE, Some(sel), &doc).unwrap().unwrap();
        assert_eq!(back, start, "{sel}");
    };
    let l = "resource-lists/list";
    for sel in [
        "entry[@uri=\"third\"]",
        "entry[3][@uri=\"third\"]",
        "*[3][@uri=\"third\"]",
    ] {
        check(
            &format!("{l}/{sel}"),
            "<entry uri=\"third\"/>",
            &format!("{l}/*[3]"),
        );
    }
    check(
        &format!("{l}/*[@uri=\"2\"]"),
        "<entry uri=\"2\"/>",
        &format!("{l}/*[3]"),
    );
    check(
        &format!("{l}/*[@anchor=\"http://x/2\"]"),
        "<external anchor=\"http://x/2\"/>",
        &format!("{l}/*[4]"),
    );
    check(
        &format!("{l}/*[2][@anchor=\"http://x/2\"]"),
        "<external anchor=\"http://x/2\"/>",
        &format!("{l}/*[2]"),
    );
    check(
        &format!("{l}/external[1][@anchor=\"http://x/2\"]"),
        "<external anchor=\"http://x/2\"/>",
        &format!("{l}/*[3]"),
    );
    check(
        &format!("{l}/entry-ref"),
        "<entry-ref ref=\"resource-lists/users/sip:bob@example.com/index/~~/resource-lists/list%5b1%5d/entry%5b1%5d\"/>",
        &format!("{l}/*[4]"),
    );
    // Out of range positions, and a body that the selector would not select.
    for sel in [
        "entry[4][@uri=\"third\"]",
        "*[0][@uri=\"third\"]",
        "entry[@uri=\"third\"]",
    ] {
        let body = if sel.starts_with("entry[@") {
            "<entry uri=\"fourth\"/>"
        } else {
            "<entry uri=\"third\"/>"
        };
        expect_409(
            put(ALICE, Some(&format!("{l}/{sel}")), body, EL, Some(start)),
            "cannot-insert",
        );
    }
    assert_eq!(status(get(ALICE, Some(&format!("{l}/*[0]")), start)), 404);
    // Replacement must keep selecting: by attribute no, by position yes.
    expect_409(
        put(
            ALICE,
            Some(&format!("{l}/entry[@uri=\"first\"]")),
            "<entry uri=\"third\"/>",
            EL,
            Some(start),
        ),
        "cannot-insert",
    );
    for sel in ["entry[1]", "*[1]"] {
        let (doc, created) = put(
            ALICE,
            Some(&format!("{l}/{sel}")),
            "<entry uri=\"third\"/>",
            EL,
            Some(start),
        )
        .unwrap();
        assert!(!created);
        assert_eq!(doc, start.replace("uri=\"first\"", "uri=\"third\""));
    }
}
