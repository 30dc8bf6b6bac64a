//! The application usages' constraints (RFC 4826, RFC 5025, OMA) through `apply`.

use super::*;

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
    assert_valid(d.as_bytes(), "sip:new@example.com");
}
