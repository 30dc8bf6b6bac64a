use super::*;
use crate::xcap::dom::parse_document;
use std::collections::HashMap;

const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<cr:ruleset xmlns:cr="urn:ietf:params:xml:ns:common-policy"
    xmlns:pr="urn:ietf:params:xml:ns:pres-rules"
    xmlns:ocp="urn:oma:xml:xdm:common-policy"
    xmlns:op="urn:oma:xml:prs:pres-rules">"#;

fn rules(body: &str) -> RuleSet {
    let text = format!("{HEAD}{body}</cr:ruleset>");
    // every document here is one a client could store: check it as the XDMS does
    crate::schema_check::assert_valid(text.as_bytes());
    RuleSet::from_document(&parse_document(text.as_bytes()).unwrap())
}

fn who(uri: &str) -> Context<'_> {
    Context {
        requester: Requester::Identity(uri),
        now_unix: 1_800_000_000,
        sphere: None,
    }
}

fn handling(set: &RuleSet, cx: &Context) -> SubHandling {
    decide(set, cx, &NoLists, SubHandling::Confirm).handling
}

fn rule(id: &str, conditions: &str, sub: &str, transformations: &str) -> String {
    format!(
        "<cr:rule id=\"{id}\"><cr:conditions>{conditions}</cr:conditions>\
         <cr:actions><pr:sub-handling>{sub}</pr:sub-handling></cr:actions>\
         <cr:transformations>{transformations}</cr:transformations></cr:rule>"
    )
}

#[test]
fn one_identity_with_uri_equivalence() {
    let set = rules(&rule(
        "a",
        r#"<cr:identity><cr:one id="sip:bob@Example.COM"/></cr:identity>"#,
        "allow",
        "",
    ));
    assert_eq!(
        handling(&set, &who("sip:bob@example.com")),
        SubHandling::Allow
    );
    assert_eq!(
        handling(&set, &who("sip:b%6fb@example.com;transport=tcp")),
        SubHandling::Allow
    );
    // user parts are case-sensitive (RFC 3261 §19.1.4)
    assert_eq!(
        handling(&set, &who("sip:Bob@example.com")),
        SubHandling::Confirm
    );
    assert_eq!(
        decide(
            &set,
            &who("sip:carol@example.com"),
            &NoLists,
            SubHandling::Block
        )
        .matched,
        0
    );
}

#[test]
fn many_with_domain_and_exceptions() {
    let set = rules(&rule(
        "d",
        r#"<cr:identity><cr:many domain="example.com"><cr:except id="sip:eve@example.com"/></cr:many></cr:identity>"#,
        "allow",
        "",
    ));
    assert_eq!(
        handling(&set, &who("sip:bob@EXAMPLE.com")),
        SubHandling::Allow
    );
    assert_eq!(
        handling(&set, &who("sip:eve@example.com")),
        SubHandling::Confirm
    );
    assert_eq!(
        handling(&set, &who("sip:bob@example.org")),
        SubHandling::Confirm
    );
    let any = rules(&rule(
        "any",
        r#"<cr:identity><cr:many><cr:except domain="spam.example"/></cr:many></cr:identity>"#,
        "polite-block",
        "",
    ));
    assert_eq!(
        handling(&any, &who("sip:x@example.org")),
        SubHandling::PoliteBlock
    );
    assert_eq!(
        handling(&any, &who("sip:x@spam.example")),
        SubHandling::Confirm
    );
    // an identity condition never matches an anonymous request
    let anon = Context {
        requester: Requester::Anonymous,
        ..who("")
    };
    assert_eq!(handling(&any, &anon), SubHandling::Confirm);
}

#[test]
fn matching_rules_combine_most_permissive_and_union() {
    // Kamailio takes the first match; RFC 4745 §10.2 combines them all.
    let set = rules(&format!(
        "{}{}{}",
        rule(
            "block-domain",
            r#"<cr:identity><cr:many domain="example.com"/></cr:identity>"#,
            "block",
            "<pr:provide-note>true</pr:provide-note>",
        ),
        rule(
            "bob",
            r#"<cr:identity><cr:one id="sip:bob@example.com"/></cr:identity>"#,
            "allow",
            "<pr:provide-services><pr:service-uri-scheme>SIP</pr:service-uri-scheme></pr:provide-services>\
             <pr:provide-activities>true</pr:provide-activities>\
             <pr:provide-user-input>bare</pr:provide-user-input>",
        ),
        rule(
            "bob-too",
            r#"<cr:identity><cr:one id="sip:bob@example.com"/></cr:identity>"#,
            "confirm",
            "<pr:provide-services><pr:occurrence-id>t1</pr:occurrence-id></pr:provide-services>\
             <pr:provide-user-input>thresholds</pr:provide-user-input>\
             <pr:provide-mood>false</pr:provide-mood>",
        ),
    ));
    let d = decide(
        &set,
        &who("sip:bob@example.com"),
        &NoLists,
        SubHandling::Confirm,
    );
    assert_eq!(d.matched, 3);
    assert_eq!(d.handling, SubHandling::Allow);
    let p = &d.permissions;
    assert!(p.shows(Attribute::Note) && p.shows(Attribute::Activities));
    assert!(!p.shows(Attribute::Mood));
    assert_eq!(p.user_input, UserInput::Thresholds);
    assert_eq!(
        p.services,
        Selection::Some(
            [
                ServiceSelector::ServiceUriScheme("sip".into()),
                ServiceSelector::OccurrenceId("t1".into()),
            ]
            .into()
        )
    );
    assert_eq!(p.persons, Selection::Nothing);
    // the rest of the domain is blocked
    assert_eq!(
        handling(&set, &who("sip:carol@example.com")),
        SubHandling::Block
    );
}

#[test]
fn empty_conditions_match_everyone_and_unknown_conditions_no_one() {
    let set = rules(&format!(
        "{}{}",
        rule("all", "", "polite-block", ""),
        rule(
            "never",
            r#"<x:weather xmlns:x="urn:example:weather">rain</x:weather>"#,
            "allow",
            "",
        ),
    ));
    assert_eq!(
        handling(&set, &who("sip:a@b.example")),
        SubHandling::PoliteBlock
    );
    let anon = Context {
        requester: Requester::Anonymous,
        ..who("")
    };
    assert_eq!(handling(&set, &anon), SubHandling::PoliteBlock);
}

#[test]
fn no_matching_rule_takes_the_default() {
    let set = rules(&rule(
        "bob",
        r#"<cr:identity><cr:one id="sip:bob@example.com"/></cr:identity>"#,
        "allow",
        "",
    ));
    for default in [
        SubHandling::Confirm,
        SubHandling::Block,
        SubHandling::PoliteBlock,
    ] {
        let d = decide(&set, &who("sip:x@example.com"), &NoLists, default);
        assert_eq!((d.handling, d.matched), (default, 0));
        assert_eq!(d.permissions, Permissions::default());
    }
    // a matching rule without sub-handling leaves the default too, but grants its permissions
    let text = format!(
        "{HEAD}<cr:rule id=\"r\"><cr:transformations><pr:provide-note>true</pr:provide-note>\
         </cr:transformations></cr:rule></cr:ruleset>"
    );
    let set = RuleSet::from_document(&parse_document(text.as_bytes()).unwrap());
    let d = decide(
        &set,
        &who("sip:x@example.com"),
        &NoLists,
        SubHandling::Confirm,
    );
    assert_eq!((d.handling, d.matched), (SubHandling::Confirm, 1));
    assert!(d.permissions.shows(Attribute::Note));
}

#[test]
fn validity_and_sphere() {
    let set = rules(&format!(
        "{}{}",
        rule(
            "window",
            "<cr:validity><cr:from>2027-01-15T08:00:00+01:00</cr:from>\
             <cr:until>2027-01-15T09:00:00Z</cr:until></cr:validity>",
            "allow",
            "",
        ),
        rule(
            "work",
            r#"<cr:sphere value="work office"/>"#,
            "polite-block",
            ""
        ),
    ));
    let at = |t: i64, sphere: Option<&'static str>| Context {
        now_unix: t,
        sphere,
        ..who("sip:a@b.example")
    };
    let from = rules::date_time("2027-01-15T07:00:00Z").unwrap();
    assert_eq!(from, rules::date_time("2027-01-15T08:00:00+01:00").unwrap());
    assert_eq!(handling(&set, &at(from - 1, None)), SubHandling::Confirm);
    assert_eq!(handling(&set, &at(from, None)), SubHandling::Allow);
    assert_eq!(handling(&set, &at(from + 7199, None)), SubHandling::Allow);
    assert_eq!(handling(&set, &at(from + 7200, None)), SubHandling::Confirm);
    assert_eq!(
        handling(&set, &at(0, Some("office"))),
        SubHandling::PoliteBlock
    );
    assert_eq!(handling(&set, &at(0, Some("home"))), SubHandling::Confirm);
}

struct Lists(HashMap<&'static str, Vec<&'static str>>);

impl ListMembership for Lists {
    fn contains(&self, anc: &str, identity: &str) -> bool {
        self.0.get(anc).is_some_and(|l| {
            l.iter()
                .any(|e| crate::sip::identity::entity_matches(e, identity))
        })
    }
}

#[test]
fn oma_external_list_anonymous_and_other_identity() {
    const FRIENDS: &str = "http://xcap.example.com/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5b@name=%22friends%22%5d";
    let set = rules(&format!(
        "{}{}{}{}",
        rule(
            "friends",
            &format!(r#"<ocp:external-list><ocp:entry anc="{FRIENDS}"/></ocp:external-list>"#),
            "allow",
            "<pr:provide-persons><pr:all-persons/></pr:provide-persons>",
        ),
        rule(
            "eve",
            r#"<cr:identity><cr:one id="sip:eve@example.com"/></cr:identity>"#,
            "block",
            "",
        ),
        rule("anon", "<ocp:anonymous-request/>", "block", ""),
        rule("others", "<ocp:other-identity/>", "polite-block", ""),
    ));
    assert_eq!(set.external_lists().collect::<Vec<_>>(), [FRIENDS]);
    let lists = Lists([(FRIENDS, vec!["sip:bob@example.com"])].into());
    let d = |cx: &Context| decide(&set, cx, &lists, SubHandling::Confirm);
    let bob = d(&who("sip:bob@example.com"));
    assert_eq!(bob.handling, SubHandling::Allow);
    assert_eq!(bob.permissions.persons, Selection::All);
    // eve is named by a rule, so other-identity does not cover her
    assert_eq!(d(&who("sip:eve@example.com")).handling, SubHandling::Block);
    assert_eq!(
        d(&who("sip:zed@example.org")).handling,
        SubHandling::PoliteBlock
    );
    let anon = Context {
        requester: Requester::Anonymous,
        ..who("")
    };
    assert_eq!(d(&anon).handling, SubHandling::Block);
    // with the list emptied, bob falls to other-identity
    let empty = Lists(HashMap::new());
    assert_eq!(
        decide(
            &set,
            &who("sip:bob@example.com"),
            &empty,
            SubHandling::Confirm
        )
        .handling,
        SubHandling::PoliteBlock
    );
}

#[test]
fn transformations_read_into_one_canonical_form() {
    let set = rules(&format!(
        "{}{}",
        rule(
            "a",
            "",
            "allow",
            "<pr:provide-devices><pr:deviceID>urn:uuid:d1</pr:deviceID><pr:class>phone</pr:class></pr:provide-devices>\
             <pr:provide-unknown-attribute ns=\"urn:example:x\" name=\"weather\">true</pr:provide-unknown-attribute>\
             <op:provide-willingness>true</op:provide-willingness>",
        ),
        rule(
            "b",
            "",
            "allow",
            "<pr:provide-services><pr:all-services/></pr:provide-services>",
        ),
    ));
    let p = decide(
        &set,
        &who("sip:a@b.example"),
        &NoLists,
        SubHandling::Confirm,
    )
    .permissions;
    assert_eq!(p.services, Selection::All);
    assert!(
        p.devices
            .admits(|s| *s == ServiceSelector::DeviceId("urn:uuid:d1".into()))
    );
    assert!(
        !p.devices
            .admits(|s| *s == ServiceSelector::Class("pc".into()))
    );
    assert!(p.shows_unknown("urn:example:x", "weather"));
    assert!(!p.shows_unknown("urn:example:x", "rain"));
    assert!(p.shows(Attribute::Willingness));
    assert!(!p.shows(Attribute::Geopriv));
    // all-attributes subsumes the single grants: one view, one hash
    let mut wide = p.clone();
    wide.all_attributes = true;
    wide.canonicalize();
    let mut wider = wide.clone();
    wider.grant(Attribute::Mood);
    wider.canonicalize();
    assert_eq!(wide, wider);
    assert!(wide.shows(Attribute::Mood) && wide.shows_unknown("urn:example:y", "z"));
}
