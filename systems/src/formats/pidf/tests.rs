//! Tests of PIDF parsing, the model and composition.

use super::model::*;
use super::*;
use bytes::Bytes;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

const AOR: &str = "sip:alice@example.com";

/// PJSIP (pjsua) shape: default PIDF namespace, `dm`, `rpid` and an unused `c` (CIPID) prefix.
const PJSIP: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence entity="sip:alice@example.com" xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:c="urn:ietf:params:xml:ns:pidf:cipid">
 <tuple id="pjb7e1c3a0">
  <status>
   <basic>open</basic>
  </status>
  <contact priority="1">sip:alice@192.0.2.10:5060;transport=udp</contact>
  <note>Online</note>
  <timestamp>2024-05-01T12:00:00Z</timestamp>
 </tuple>
 <dm:person id="pj3f9a1c77">
  <rpid:activities>
   <rpid:unknown />
  </rpid:activities>
  <dm:note>Idle</dm:note>
 </dm:person>
</presence>
"#;

/// Linphone shape: a tuple and a person whose activity is away.
const LINPHONE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">
  <tuple id="qmvbxe">
<status>
  <basic>open</basic>
</status>
<contact>sip:alice@198.51.100.7</contact>
<timestamp>2024-05-01T12:01:00Z</timestamp>
  </tuple>
  <dm:person id="ahmcpa">
<rpid:activities>
  <rpid:away/>
</rpid:activities>
<dm:timestamp>2024-05-01T12:01:00Z</dm:timestamp>
  </dm:person>
</presence>
"#;

/// A gateway: prefixed PIDF, an unknown extension namespace with its own prefix, and `dm`
/// bound to something else than the data model (conflicts with the two bodies above).
const GATEWAY: &str = r#"<?xml version='1.0' encoding='utf-8'?>
<!-- gateway -->
<pidf:presence xmlns:pidf="urn:ietf:params:xml:ns:pidf" xmlns:dm='urn:example:not-data-model' xmlns:geo="urn:example:params:xml:ns:geo-ext" entity="pres:alice@example.com">
  <?gw trace="1"?>
  <pidf:tuple id="gw1">
<pidf:status><pidf:basic>closed</pidf:basic></pidf:status>
<pidf:note xml:lang="en">gateway &amp; co &#x263A;</pidf:note>
  </pidf:tuple>
  <pidf:note>via gateway</pidf:note>
  <geo:location geo:precision="city" dm:tag="x&quot;y">
<geo:city>Paris</geo:city>
  </geo:location>
</pidf:presence>
"#;

fn doc(xml: &str) -> PidfDocument {
    parse(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}: {xml}"))
}

fn err(xml: &str) -> PidfError {
    match parse(xml.as_bytes()) {
        Ok(_) => panic!("accepted: {xml}"),
        Err(e) => e,
    }
}

/// `{ns}local @{ns}attr=value ...` for every element, grouped by top-level child of the root,
/// as resolved by quick-xml's own namespace reader (also proves namespace well-formedness).
fn resolved_groups(xml: &[u8]) -> Vec<Vec<String>> {
    fn ns(r: ResolveResult<'_>) -> String {
        match r {
            ResolveResult::Bound(n) => n.0.to_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(p) => panic!("unknown prefix {p}"),
        }
    }
    let mut reader = NsReader::from_str(std::str::from_utf8(xml).unwrap());
    let (mut depth, mut groups) = (0, Vec::<Vec<String>>::new());
    loop {
        let (res, event) = reader.read_resolved_event().expect("well-formed output");
        let element_ns = ns(res);
        let (e, empty) = match event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                depth -= 1;
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        depth += 1;
        let mut desc = format!("{{{element_ns}}}{}", e.local_name().into_inner());
        for a in e.attributes() {
            let a = a.unwrap();
            if a.key.0 == "xmlns" || a.key.0.starts_with("xmlns:") {
                continue;
            }
            let (r, local) = reader.resolver().resolve_attribute(a.key);
            desc += &format!(" @{{{}}}{}={}", ns(r), local.into_inner(), a.value);
        }
        match depth {
            1 => assert_eq!(
                desc.split(' ').next(),
                Some("{urn:ietf:params:xml:ns:pidf}presence")
            ),
            2 => groups.push(vec![desc]),
            _ => groups.last_mut().unwrap().push(desc),
        }
        if empty {
            depth -= 1;
        }
    }
    groups
}

/// Checks that `out` is `orig` with only `xmlns` declarations inserted after the element name;
/// returns the inserted text.
fn added_decls(out: &PidfElement, orig: &PidfElement) -> String {
    let (o, i) = (out.as_bytes(), orig.as_bytes());
    let ne = orig.name_end();
    assert_eq!(&o[..ne], &i[..ne], "start of {}", orig.qname());
    assert!(o.ends_with(&i[ne..]), "{} changed", orig.qname());
    let added = std::str::from_utf8(&o[ne..o.len() - (i.len() - ne)]).unwrap();
    let mut rest = added;
    while !rest.is_empty() {
        let r = rest.strip_prefix(" xmlns").expect("only xmlns added");
        let eq = r.find('=').unwrap();
        let q = r.as_bytes()[eq + 1];
        let close = r[eq + 2..].find(q as char).unwrap();
        rest = &r[eq + 2 + close + 1..];
    }
    added.to_owned()
}

fn validate(xml: &[u8]) {
    crate::schema_check::assert_valid(xml);
}

fn example(name: &str) -> Vec<u8> {
    crate::schema_check::example(name)
}

#[test]
fn parses_pjsip_body() {
    let d = doc(PJSIP);
    assert_eq!(d.entity, "sip:alice@example.com");
    let ns: Vec<_> = d.namespaces().collect();
    assert_eq!(
        ns,
        [
            (None, PIDF_NS),
            (Some("dm"), DATA_MODEL_NS),
            (Some("rpid"), "urn:ietf:params:xml:ns:pidf:rpid"),
            (Some("c"), "urn:ietf:params:xml:ns:pidf:cipid"),
        ]
    );
    assert_eq!(d.elements.len(), 2);
    let (t, p) = (&d.elements[0], &d.elements[1]);
    assert_eq!((t.kind, t.id()), (ElementKind::Tuple, Some("pjb7e1c3a0")));
    assert_eq!((p.kind, p.id()), (ElementKind::Person, Some("pj3f9a1c77")));
    assert!(t.as_bytes().starts_with(b"<tuple id=\"pjb7e1c3a0\">"));
    assert!(t.as_bytes().ends_with(b"</tuple>"));
    assert!(p.as_bytes().starts_with(b"<dm:person id="));
    assert!(p.as_bytes().ends_with(b"</dm:person>"));
    assert_eq!(
        (p.qname(), p.local_name(), p.namespace()),
        ("dm:person", "person", DATA_MODEL_NS)
    );
    assert_eq!(t.namespace(), PIDF_NS);
}

/// A document parsed with its view holds what `parse` gives (entity, namespaces, elements
/// with their ids and namespaces, byte for byte) and a view equal to composing it alone.
#[test]
fn view_layout_is_compose_of_one_source() {
    let bodies = [
        PJSIP,
        LINPHONE,
        GATEWAY,
        // a default namespace other than PIDF's: elements restate it in the view
        r#"<p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" xmlns="urn:example:ext" xmlns:rpid="urn:example:not-rpid" entity="sip:alice@example.com">
  <p:tuple id="t9"><p:status><p:basic>open</p:basic></p:status><flag on="yes"/></p:tuple>
  <gadget kind="x"><part/><rpid:thing/></gadget>
  <rpid:own/>
</p:presence>"#,
        // no default namespace at all
        r#"<p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com"><p:tuple id="t"><p:status><p:basic>open</p:basic></p:status><flag/></p:tuple></p:presence>"#,
        // nothing kept, references in the entity and an id, a namespace declared in place
        r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x="urn:x" entity=" sip:alice@example.com&#32;"/>"#,
        r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x="urn:x" entity="sip:alice@example.com"><x:y id="a&amp;b"/><z:w xmlns:z="urn:z" id="q"/><tuple id="t&#49;"><status/></tuple><note>n</note></presence>"#,
        r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x='urn:x"q' entity="sip:a@b"><x:y/></presence>"#,
    ];
    for body in bodies {
        for entity in [&["sip:", "alice@example.com"][..], &["sip:\"a&b\"<c>@x\t"]] {
            let plain = doc(body);
            let d = parse_with_view(body.as_bytes(), entity).unwrap();
            let view = d.view().expect("a view");
            assert_eq!(view, compose(&entity.concat(), &[&plain]), "{body}");
            assert_eq!(view, compose(&entity.concat(), &[&d]), "{body}");
            assert!(plain.view().is_none());
            assert_eq!(d.entity, plain.entity);
            assert_eq!(
                d.namespaces().collect::<Vec<_>>(),
                plain.namespaces().collect::<Vec<_>>()
            );
            assert_eq!(d.elements.len(), plain.elements.len());
            for (a, b) in d.elements.iter().zip(&plain.elements) {
                assert_eq!(a.as_bytes(), b.as_bytes());
                assert_eq!(
                    (a.kind, a.id(), a.namespace(), a.qname(), a.uses()),
                    (b.kind, b.id(), b.namespace(), b.qname(), b.uses())
                );
            }
            assert_eq!(
                d.heap_bytes() + view.len(),
                d.body().len()
                    + d.elements.len() * size_of::<PidfElement>()
                    + d.namespaces.len() * size_of::<NsDecl>()
            );
        }
    }
    let d = parse_with_view(PJSIP.as_bytes(), &["sip:", "alice@example.com"]).unwrap();
    validate(&d.view().unwrap());
}

#[test]
fn parses_shared_examples() {
    {
        let good = example("pidf-rpid.xml");
        let d = parse(&good).unwrap();
        let kinds: Vec<_> = d.elements.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [ElementKind::Tuple, ElementKind::Person, ElementKind::Device]
        );
        let out = compose("pres:alice@example.com", &[&d]);
        validate(&out);
        assert_eq!(resolved_groups(&out), resolved_groups(&good));
    }
    {
        let bad = example("pidf-bad.xml");
        assert_eq!(parse(&bad).unwrap_err(), PidfError::MissingId("tuple"));
    }
}

#[test]
fn accepts_any_prefix_and_skips_prolog() {
    let d = doc(GATEWAY);
    assert_eq!(d.entity, "pres:alice@example.com");
    let kinds: Vec<_> = d.elements.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [ElementKind::Tuple, ElementKind::Note, ElementKind::Other]
    );
    assert_eq!(
        d.elements[2].namespace(),
        "urn:example:params:xml:ns:geo-ext"
    );
    assert_eq!(d.elements[2].id(), None);
    // UTF-8 BOM, comments and PIs around the root are fine.
    let bom = format!(
        "\u{feff}<!--c--><?pi x?>\n{}\n<!--after-->\n",
        &LINPHONE[39..]
    );
    let d = doc(&bom);
    assert!(
        d.elements[0]
            .as_bytes()
            .starts_with(b"<tuple id=\"qmvbxe\">")
    );
    // Empty root.
    let d = doc(r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>"#);
    assert!(d.elements.is_empty());
}

#[test]
fn rejects_non_well_formed() {
    let cases = [
        ("", "no root element"),
        ("   ", "no root element"),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a">"#,
            "unexpected end of document",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><note></presence>"#,
            "mismatched end tag",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"/><presence/>"#,
            "content after root element",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"/>x"#,
            "text outside root element",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><note>&nbsp;</note></presence>"#,
            "invalid reference",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><note>&#1;</note></presence>"#,
            "invalid reference",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><note>a & b</note></presence>"#,
            "unclosed reference",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a<b"/>"#,
            "invalid attribute value",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a&b"/>"#,
            "invalid attribute value",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a" entity="b"/>"#,
            "duplicate attribute",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity=a/>"#,
            "malformed attribute",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><x:y/></presence>"#,
            "undeclared namespace prefix",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><note x:y="1"/></presence>"#,
            "undeclared namespace prefix",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x="" entity="a"/>"#,
            "empty namespace name",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><1note/></presence>"#,
            "invalid element name",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><!-- a -- b --></presence>"#,
            "'--' in comment",
        ),
        (
            "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"a\">\u{1}</presence>",
            "invalid character",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><note>]]></note></presence>"#,
            "']]>' in text",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"></note></presence>"#,
            "mismatched end tag",
        ),
        (
            r#" <?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"/>"#,
            "XML declaration not at start",
        ),
        (
            r#"<?xml version="1." ?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"/>"#,
            "bad XML declaration",
        ),
        (
            r#"<?xml version="1.0"encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"/>"#,
            "bad XML declaration",
        ),
        (
            r#"<?xml version="1.0" standalone="maybe"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"/>"#,
            "bad XML declaration",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><?XML x?></presence>"#,
            "invalid processing instruction",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"xmlns:x="urn:x"/>"#,
            "malformed attribute",
        ),
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><note>x</note"#,
            "syntax error",
        ),
    ];
    for (xml, detail) in cases {
        match err(xml) {
            PidfError::NotWellFormed { detail: d, at } => {
                assert_eq!(d, detail, "{xml}");
                assert!(at <= xml.len());
                // Usable as a SIP reason phrase: printable ASCII only.
                let phrase = err(xml).to_string();
                assert!(
                    phrase.bytes().all(|b| (0x20..0x7f).contains(&b)),
                    "{phrase}"
                );
            }
            e => panic!("{xml}: {e}"),
        }
    }
    let mut bad_utf8 =
        br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><note>"#.to_vec();
    bad_utf8.extend_from_slice(b"\xff</note></presence>");
    assert_eq!(
        parse(&bad_utf8).unwrap_err(),
        PidfError::NotWellFormed {
            at: 63,
            detail: "invalid UTF-8"
        }
    );
    let e = err(r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><note></presence>"#);
    assert_eq!(
        e.to_string(),
        "not well-formed XML at byte 63 (mismatched end tag)"
    );
    assert_eq!(err(r#"<!DOCTYPE presence><presence/>"#), PidfError::Doctype);
    let latin1 = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"a\"><note>\u{e9}</note></presence>";
    assert_eq!(err(latin1), PidfError::UnsupportedEncoding);
    // Pure ASCII under another declared encoding is the same bytes in UTF-8.
    doc(
        r#"<?xml version="1.0" encoding="US-ASCII"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"/>"#,
    );
}

#[test]
fn rejects_invalid_pidf() {
    assert_eq!(err(r#"<presence entity="a"/>"#), PidfError::NotPidf);
    assert_eq!(
        err(r#"<presence xmlns="urn:ietf:params:xml:ns:pidf2" entity="a"/>"#),
        PidfError::NotPidf
    );
    assert_eq!(
        err(r#"<p:presenc xmlns:p="urn:ietf:params:xml:ns:pidf" entity="a"/>"#),
        PidfError::NotPidf
    );
    assert_eq!(
        err(r#"<presence xmlns="urn:ietf:params:xml:ns:pidf"/>"#),
        PidfError::MissingEntity
    );
    assert_eq!(
        err(r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity=" "/>"#),
        PidfError::MissingEntity
    );
    assert_eq!(
        err(r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" p:entity="a" xmlns:p="urn:x"/>"#),
        PidfError::MissingEntity
    );
    let p = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="a">"#;
    let st = "<status><basic>open</basic></status>";
    let e = |body: &str| err(&format!("{p}{body}</presence>"));
    assert_eq!(
        e(&format!("<tuple>{st}</tuple>")),
        PidfError::MissingId("tuple")
    );
    assert_eq!(
        e(&format!("<tuple id=''>{st}</tuple>")),
        PidfError::MissingId("tuple")
    );
    assert_eq!(e("<dm:person/>"), PidfError::MissingId("person"));
    assert_eq!(
        e("<dm:device><dm:deviceID>x</dm:deviceID></dm:device>"),
        PidfError::MissingId("device")
    );
    assert_eq!(
        e(&format!("<tuple id='a'>{st}</tuple><dm:person id='a'/>")),
        PidfError::DuplicateId
    );
    assert_eq!(
        e("<tuple id='a'><contact>sip:a@b</contact></tuple>"),
        PidfError::MissingStatus
    );
    assert_eq!(e("<tuple id='a'/>"), PidfError::MissingStatus);
    assert_eq!(
        e("<tuple id='a'><status><basic>maybe</basic></status></tuple>"),
        PidfError::InvalidBasic
    );
    assert_eq!(
        e("<tuple id='a'><status><basic/></status></tuple>"),
        PidfError::InvalidBasic
    );
    assert_eq!(
        e("<tuple id='a'><status><basic> open</basic></status></tuple>"),
        PidfError::InvalidBasic
    );
    // A character reference in basic is still `closed`.
    doc(&format!(
        "{p}<tuple id='a'><status><basic>clos&#101;d</basic></status></tuple></presence>"
    ));
    // PIDF-namespace and unqualified elements that pidf.xsd does not allow at the top are dropped.
    let d = doc(&format!(
        "{p}<tuple id='a'>{st}</tuple><bogus/><z xmlns=''/></presence>"
    ));
    assert_eq!(d.elements.len(), 1);
}

#[test]
fn composes_real_world_sources_verbatim() {
    let (a, b, c) = (doc(PJSIP), doc(LINPHONE), doc(GATEWAY));
    let out = compose(AOR, &[&a, &b, &c]);
    validate(&out);
    let text = std::str::from_utf8(&out).unwrap();
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" xmlns:c=\"urn:ietf:params:xml:ns:pidf:cipid\" xmlns:pidf=\"urn:ietf:params:xml:ns:pidf\" xmlns:geo=\"urn:example:params:xml:ns:geo-ext\" entity=\"sip:alice@example.com\">\n"), "{text}");
    // tuples, then notes, then other namespaces; each group in source order.
    let expected = [
        (&a, 0),
        (&b, 0),
        (&c, 0),
        (&c, 1),
        (&a, 1),
        (&b, 1),
        (&c, 2),
    ];
    let o = parse(&out).unwrap();
    assert_eq!(o.elements.len(), expected.len());
    let added: Vec<_> = expected
        .iter()
        .zip(&o.elements)
        .map(|((d, i), out)| added_decls(out, &d.elements[*i]))
        .collect();
    // Only the gateway's extension needs its own `dm` (the composed root's `dm` is RFC 4479's).
    assert_eq!(
        added,
        [
            "",
            "",
            "",
            "",
            "",
            "",
            " xmlns:dm=\"urn:example:not-data-model\""
        ]
    );
    // Every element and attribute still resolves to the namespace it had in its source.
    let (ga, gb, gc) = (
        resolved_groups(PJSIP.as_bytes()),
        resolved_groups(LINPHONE.as_bytes()),
        resolved_groups(GATEWAY.as_bytes()),
    );
    let want = [&ga[0], &gb[0], &gc[0], &gc[1], &ga[1], &gb[1], &gc[2]];
    let got = resolved_groups(&out);
    assert_eq!(got.iter().collect::<Vec<_>>(), want);
    assert!(got[6].contains(&"{urn:example:params:xml:ns:geo-ext}location @{urn:example:params:xml:ns:geo-ext}precision=city @{urn:example:not-data-model}tag=x&quot;y".to_owned()));
    // Composing the composed view again changes nothing.
    assert_eq!(compose(AOR, &[&o]), out);
}

#[test]
fn newer_source_replaces_same_kind_and_id() {
    let p = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">"#;
    let older = doc(&format!(
        "{p}<tuple id='t1'><status><basic>open</basic></status></tuple>\
         <dm:person id='p1'><rpid:activities><rpid:busy/></rpid:activities></dm:person>\
         <note>old note</note></presence>"
    ));
    let newer = doc(&format!(
        "{p}<dm:person id='p1'><rpid:activities><rpid:away/></rpid:activities></dm:person>\
         <tuple id='t2'><status><basic>open</basic></status></tuple>\
         <tuple id='t1'><status><basic>closed</basic></status></tuple></presence>"
    ));
    let out = compose(AOR, &[&older, &newer]);
    validate(&out);
    let o = parse(&out).unwrap();
    let got: Vec<_> = o.elements.iter().map(|e| e.as_bytes()).collect();
    assert_eq!(
        got,
        [
            newer.elements[2].as_bytes(), // t1 from the newer source, in t1's first place
            newer.elements[1].as_bytes(), // t2
            older.elements[2].as_bytes(), // note kept
            newer.elements[0].as_bytes(), // p1 from the newer source
        ]
    );
    // Oldest-first order matters: swapped, the other copies win.
    let o = parse(&compose(AOR, &[&newer, &older])).unwrap();
    let got: Vec<_> = o.elements.iter().map(|e| e.as_bytes()).collect();
    assert_eq!(
        got,
        [
            newer.elements[1].as_bytes(),
            older.elements[0].as_bytes(),
            older.elements[2].as_bytes(),
            older.elements[1].as_bytes(),
        ]
    );
    // Different kinds never replace each other, even with equal ids; the resulting xs:ID
    // collision is the publishers' doing and shows up when the view is parsed again.
    let x = doc(&format!("{p}<dm:person id='t1'/></presence>"));
    let e = parse(&compose(AOR, &[&older, &x])).unwrap_err();
    assert_eq!(e, PidfError::DuplicateId);
}

#[test]
fn orders_tuple_note_other() {
    let d = doc(
        r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:op="urn:oma:xml:prs:pres-content" entity="sip:alice@example.com">
  <dm:person id="p"/>
  <note xml:lang="en">first</note>
  <op:pres-content><op:mime-type>image/png</op:mime-type></op:pres-content>
  <tuple id="t"><status><basic>open</basic></status></tuple>
  <note>second</note>
</presence>"#,
    );
    let out = compose(AOR, &[&d]);
    validate(&out);
    let o = parse(&out).unwrap();
    let names: Vec<_> = o.elements.iter().map(|e| e.qname()).collect();
    assert_eq!(
        names,
        ["tuple", "note", "note", "dm:person", "op:pres-content"]
    );
}

#[test]
fn identical_id_less_elements_appear_once() {
    let note = |n: &str| {
        doc(&format!(
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x="urn:example:{n}" entity="sip:a@b"><note>Busy</note><x:e>1</x:e></presence>"#
        ))
    };
    let (a, b, c) = (note("x"), note("x"), note("y"));
    let o = parse(&compose(AOR, &[&a, &b])).unwrap();
    assert_eq!(o.elements.len(), 2);
    // Same bytes, but `x:` means another namespace: both kept, the second with its binding.
    let out = compose(AOR, &[&a, &c]);
    let o = parse(&out).unwrap();
    assert_eq!(o.elements.len(), 3);
    assert_eq!(
        o.elements[2].as_bytes(),
        b"<x:e xmlns:x=\"urn:example:y\">1</x:e>"
    );
    validate(&out);
}

#[test]
fn restates_default_namespace_when_it_is_not_pidf() {
    let odd = r#"<p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" xmlns="urn:example:ext" xmlns:rpid="urn:example:not-rpid" entity="sip:alice@example.com">
  <p:tuple id="t9"><p:status><p:basic>open</p:basic></p:status><flag on="yes"/></p:tuple>
  <gadget kind="x"><part/><rpid:thing/></gadget>
  <rpid:own/>
</p:presence>"#;
    let (pj, d) = (doc(PJSIP), doc(odd));
    let out = compose(AOR, &[&pj, &d]);
    validate(&out);
    let o = parse(&out).unwrap();
    let added: Vec<_> = [(&pj, 0), (&d, 0), (&pj, 1), (&d, 1), (&d, 2)]
        .iter()
        .zip(&o.elements)
        .map(|((s, i), out)| added_decls(out, &s.elements[*i]))
        .collect();
    assert_eq!(
        added,
        [
            "",
            " xmlns=\"urn:example:ext\"",
            "",
            " xmlns=\"urn:example:ext\" xmlns:rpid=\"urn:example:not-rpid\"",
            " xmlns:rpid=\"urn:example:not-rpid\"",
        ]
    );
    let (gp, gd) = (
        resolved_groups(PJSIP.as_bytes()),
        resolved_groups(odd.as_bytes()),
    );
    assert_eq!(
        resolved_groups(&out),
        [
            gp[0].clone(),
            gd[0].clone(),
            gp[1].clone(),
            gd[1].clone(),
            gd[2].clone()
        ]
    );

    // No default namespace at all: unqualified descendants must stay unqualified.
    let bare = r#"<p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com"><p:tuple id="t"><p:status><p:basic>open</p:basic></p:status><flag/></p:tuple></p:presence>"#;
    let out = compose(AOR, &[&doc(bare)]);
    assert!(
        std::str::from_utf8(&out)
            .unwrap()
            .contains("<p:tuple xmlns=\"\" id=\"t\">")
    );
    assert_eq!(resolved_groups(&out), resolved_groups(bare.as_bytes()));
}

#[test]
fn local_declarations_and_xsi_type() {
    // Declarations inside the element are its own; prefixes in xsi:type values are kept bound.
    let src = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:e="urn:example:e" xmlns:t="urn:example:types" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" entity="sip:a@b">
<e:x xmlns:l="urn:example:local" l:a="1" xsi:type="t:kind"><l:y xmlns:e="urn:example:inner"><e:z/></l:y></e:x>
</presence>"#;
    let other = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:t="urn:example:other" xmlns:xsi="urn:example:not-xsi" xmlns:e="urn:example:not-e" entity="sip:a@b"><t:w/></presence>"#;
    let (o, d) = (doc(other), doc(src));
    let out = compose(AOR, &[&o, &d]);
    let c = parse(&out).unwrap();
    assert_eq!(
        added_decls(&c.elements[1], &d.elements[0]),
        " xmlns:e=\"urn:example:e\" xmlns:t=\"urn:example:types\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""
    );
    assert_eq!(resolved_groups(&out)[1], resolved_groups(src.as_bytes())[0]);
}

#[test]
fn empty_views_are_valid() {
    let out = empty_view("sip:alice@example.com", false);
    assert_eq!(
        &out[..],
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:alice@example.com\"/>\n"
    );
    validate(&out);
    let out = empty_view("pres:a&b@example.com", true);
    validate(&out);
    let d = parse(&out).unwrap();
    assert_eq!(d.entity, "pres:a&b@example.com");
    assert_eq!(d.elements.len(), 1);
    assert_eq!(
        (d.elements[0].kind, d.elements[0].id()),
        (ElementKind::Tuple, Some(CLOSED_TUPLE_ID))
    );
    assert_eq!(compose("sip:x@y", &[]), empty_view("sip:x@y", false));
}

#[test]
fn compose_escapes_entity() {
    let out = compose("sip:\"a&b\"<c>@example.com", &[&doc(LINPHONE)]);
    let text = std::str::from_utf8(&out).unwrap();
    assert!(text.contains(" entity=\"sip:&quot;a&amp;b&quot;&lt;c&gt;@example.com\">"));
    assert_eq!(parse(&out).unwrap().entity, "sip:\"a&b\"<c>@example.com");
}

/// The hot path stores slices of one buffer: no per-element copies, no per-byte work beyond
/// the reader's scan, and only ids allocate per element.
#[test]
fn parse_shares_one_buffer() {
    let mut body = PJSIP.replace("</presence>\n", "");
    while body.len() < 1000 {
        body.push_str(" <note>padding note</note>\n");
    }
    body.push_str("</presence>\n");
    let body = Bytes::from(body);
    let d = parse_bytes(body.clone()).unwrap();
    assert_eq!(
        d.body().as_ptr(),
        body.as_ptr(),
        "parse_bytes must not copy the body"
    );
    let range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
    for e in &d.elements {
        let p = e.as_bytes().as_ptr() as usize;
        assert!(range.contains(&p) && p + e.as_bytes().len() <= range.end);
    }
    assert!(d.elements.len() > 8);
    let n = if cfg!(debug_assertions) {
        2_000
    } else {
        200_000
    };
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(parse_bytes(body.clone()).unwrap());
    }
    let per = t.elapsed() / n;
    let docs: Vec<_> = (0..4).map(|_| doc(PJSIP)).collect();
    let refs: Vec<_> = docs.iter().collect();
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(compose(AOR, &refs));
    }
    eprintln!(
        "parse {} B: {per:?}/body, compose 4 sources: {:?}/view",
        body.len(),
        t.elapsed() / n
    );
}

#[test]
fn other_elements_replace_by_name_and_id() {
    let src = |body: &str| {
        doc(&format!(
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x="urn:example:x" xmlns:y="urn:example:y" entity="sip:a@b">{body}</presence>"#
        ))
    };
    let older = src(r#"<x:e id="1">old</x:e><y:e id="1">kept</y:e><x:f id="1">kept too</x:f>"#);
    let newer = src(r#"<x:e id="1">new</x:e>"#);
    let o = parse(&compose(AOR, &[&older, &newer])).unwrap();
    let got: Vec<_> = o.elements.iter().map(|e| e.as_bytes()).collect();
    assert_eq!(
        got,
        [
            &b"<x:e id=\"1\">new</x:e>"[..],
            b"<y:e id=\"1\">kept</y:e>",
            b"<x:f id=\"1\">kept too</x:f>"
        ]
    );
    // The key is the namespace, not the prefix.
    let renamed = doc(
        r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:z="urn:example:x" entity="sip:a@b"><z:e id="1">z</z:e></presence>"#,
    );
    let o = parse(&compose(AOR, &[&older, &renamed])).unwrap();
    assert_eq!(o.elements[0].as_bytes(), b"<z:e id=\"1\">z</z:e>");
    assert_eq!(o.elements.len(), 3);
}

/// Random edits of real bodies: parsing never panics, and whatever is accepted composes into a
/// document where every element keeps its namespaces (alone, and next to a conflicting source).
#[test]
fn mutated_bodies_keep_namespaces() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as usize
    };
    let alphabet = b"<>&;:\"'/=x# ]!?-\n\xc3\t[CDATAxmlns0%#";
    let group_of = |g: &Vec<String>| {
        let first = g[0].split(' ').next().unwrap();
        match first {
            "{urn:ietf:params:xml:ns:pidf}tuple" => Some(0),
            "{urn:ietf:params:xml:ns:pidf}note" => Some(1),
            _ if first.starts_with("{}") || first.starts_with("{urn:ietf:params:xml:ns:pidf}") => {
                None
            }
            _ => Some(2),
        }
    };
    let pjsip = doc(PJSIP);
    let mut accepted = 0;
    for base in [PJSIP, LINPHONE, GATEWAY] {
        for _ in 0..1000 {
            let mut b = base.as_bytes().to_vec();
            for _ in 0..1 + next() % 3 {
                let pos = next() % b.len();
                let c = alphabet[next() % alphabet.len()];
                match next() % 3 {
                    0 => drop(b.remove(pos)),
                    1 => b.insert(pos, c),
                    _ => b[pos] = c,
                }
            }
            let Ok(d) = parse(&b) else { continue };
            accepted += 1;
            let out = compose(AOR, &[&d]);
            let mut want: Vec<_> = resolved_groups(&b)
                .into_iter()
                .filter_map(|g| group_of(&g).map(|k| (k, g)))
                .collect();
            want.sort_by_key(|(k, _)| *k);
            let want: Vec<_> = want.into_iter().map(|(_, g)| g).collect();
            assert_eq!(
                resolved_groups(&out),
                want,
                "{}",
                String::from_utf8_lossy(&b)
            );
            let out = compose(AOR, &[&pjsip, &d]);
            parse(&out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
            resolved_groups(&out);
        }
    }
    assert!(accepted > 300, "{accepted}");
}

/// xml::encoding for PIDF: its declaration is dropped (views get their own), so an ASCII
/// superset label on a pure-ASCII body is read as UTF-8; nothing else but UTF-8 is.
#[test]
fn encodings() {
    let with = |label: &str, note: &str| {
        format!(
            "<?xml version='1.0' encoding='{label}'?><presence xmlns='urn:ietf:params:xml:ns:pidf' entity='a'><note>{note}</note></presence>"
        )
    };
    for label in ["UTF-8", "utf8", "US-ASCII", "ISO-8859-1", "windows-1252"] {
        doc(&with(label, "plain"));
    }
    doc(&with("UTF-8", "caf\u{e9}"));
    for label in ["ISO-8859-1", "US-ASCII"] {
        assert_eq!(
            err(&with(label, "caf\u{e9}")),
            PidfError::UnsupportedEncoding
        );
    }
    for label in ["UTF-16", "Shift_JIS"] {
        assert_eq!(err(&with(label, "plain")), PidfError::UnsupportedEncoding);
    }
    let bom = format!("\u{feff}{}", with("UTF-8", "x"));
    doc(&bom);
    let utf16 = b"\xff\xfe<\x00p\x00/\x00>\x00";
    assert!(matches!(
        parse(utf16),
        Err(PidfError::NotWellFormed { at: 0, .. })
    ));
}
