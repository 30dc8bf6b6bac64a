//! End-to-end tests of the XCAP core through [`apply`](super::apply): documents, elements
//! and attributes here, the application usages' constraints in `usages`, our schema checks
//! against xmllint and the RFC 4825 insertion examples in `schema_agreement`; and the
//! schema validation helper shared by the module's tests.

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

mod schema_agreement;
mod usages;
