//! Our schema checks against xmllint with the real XSDs, and the RFC 4825 §8.2.3 insertion
//! examples undone byte for byte.

use super::*;

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
