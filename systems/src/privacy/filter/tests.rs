use std::collections::BTreeSet;

use super::*;
use crate::formats::pidf::{parse, parse_bytes};
use crate::schema_check::assert_valid;

const ENTITY: &str = "pres:alice@example.com";
const VENDOR_NS: &str = "urn:example:vendor";

/// What a presentity with a desk phone, a home line, an IM client, a laptop and a second device
/// might publish, with every kind of thing the filter decides on.
const PUBLISHED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
    xmlns:op="urn:oma:xml:prs:pidf:oma-pres"
    xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"
    xmlns:x="urn:example:vendor"
    entity="pres:alice@example.com">
  <tuple id="t-sip">
    <status><basic>open</basic><x:ext>on-hook</x:ext></status>
    <rpid:class>work</rpid:class>
    <rpid:service-class><rpid:electronic/></rpid:service-class>
    <dm:deviceID>urn:uuid:d1</dm:deviceID>
    <op:willingness><op:basic>open</op:basic></op:willingness>
    <op:service-description><op:service-id>org.3gpp.mmtel</op:service-id><op:version>1.0</op:version></op:service-description>
    <contact priority="0.8">sip:alice@192.0.2.10</contact>
    <note xml:lang="en">desk phone</note>
    <timestamp>2025-01-01T10:00:00Z</timestamp>
  </tuple>
  <tuple id="t-tel">
    <status><basic>closed</basic></status>
    <rpid:class>home</rpid:class>
    <contact>TEL:+15551234</contact>
  </tuple>
  <tuple id="t-im">
    <status><basic>open</basic></status>
    <contact>
      im:alice@example.com
    </contact>
  </tuple>
  <note>back at 10</note>
  <dm:person id="p1">
    <rpid:activities><rpid:meeting/></rpid:activities>
    <rpid:class>work</rpid:class>
    <rpid:mood><rpid:happy/></rpid:mood>
    <rpid:place-type><rpid:other>office</rpid:other></rpid:place-type>
    <rpid:time-offset>60</rpid:time-offset>
    <rpid:user-input idle-threshold="600" last-input="2025-01-01T09:50:00Z" id="ui1">idle</rpid:user-input>
    <gp:geopriv><gp:location-info/><gp:usage-rules/></gp:geopriv>
    <x:foo>bar</x:foo>
    <dm:note>In a meeting</dm:note>
    <dm:timestamp>2025-01-01T10:00:00Z</dm:timestamp>
  </dm:person>
  <dm:person id="p2">
    <rpid:class>home</rpid:class>
    <rpid:sphere><rpid:home/></rpid:sphere>
  </dm:person>
  <dm:device id="d1">
    <rpid:class>laptop</rpid:class>
    <rpid:user-input>active</rpid:user-input>
    <op:network-availability><op:network id="IMS"><op:active/></op:network></op:network-availability>
    <dm:deviceID>urn:uuid:d1</dm:deviceID>
    <dm:note>laptop</dm:note>
  </dm:device>
  <dm:device id="d2">
    <dm:deviceID>urn:uuid:d2</dm:deviceID>
  </dm:device>
  <op:willingness><op:basic>open</op:basic></op:willingness>
  <x:card>vendor data</x:card>
</presence>
"#;

/// The presentity's composed view, as the engine holds it.
fn view() -> PidfDocument {
    let source = parse(PUBLISHED.as_bytes()).unwrap();
    let composed = compose(ENTITY, &[&source]);
    assert_valid(&composed);
    parse_bytes(composed).unwrap()
}

/// The filtered view, checked against the schemas and parsed again.
fn run(perms: &Permissions) -> (Bytes, PidfDocument) {
    let out = filter(&view(), perms);
    assert_valid(&out);
    let doc = parse_bytes(out.clone()).unwrap();
    assert_eq!(&*doc.entity, ENTITY);
    (out, doc)
}

/// The top-level elements: tuples, persons and devices by id, others by local name.
fn shown(doc: &PidfDocument) -> Vec<String> {
    doc.elements
        .iter()
        .map(|el| el.id().unwrap_or(el.local_name()).to_string())
        .collect()
}

/// The local names of the children of the element with `id`.
fn kids(doc: &PidfDocument, id: &str) -> Vec<String> {
    let el = element(doc, id);
    el.children(doc)
        .iter()
        .map(|c| c.local.to_string())
        .collect()
}

fn element<'d>(doc: &'d PidfDocument, id: &str) -> &'d PidfElement {
    doc.elements
        .iter()
        .find(|el| el.id() == Some(id))
        .unwrap_or_else(|| panic!("no element {id}"))
}

/// Components of every kind, no attribute.
fn components() -> Permissions {
    selecting(Selection::All, Selection::All, Selection::All)
}

/// These components, no attribute.
fn selecting(
    services: Selection<ServiceSelector>,
    persons: Selection<ServiceSelector>,
    devices: Selection<ServiceSelector>,
) -> Permissions {
    let mut p = Permissions::default();
    p.services = services;
    p.persons = persons;
    p.devices = devices;
    p
}

fn some(selectors: impl IntoIterator<Item = ServiceSelector>) -> Selection<ServiceSelector> {
    Selection::Some(selectors.into_iter().collect())
}

const ALL_COMPONENTS: [&str; 7] = ["t-sip", "t-tel", "t-im", "p1", "p2", "d1", "d2"];

#[test]
fn everything_is_the_composed_view() {
    let v = view();
    let out = filter(&v, &Permissions::everything());
    assert_eq!(out, compose(ENTITY, &[&v]));
    assert_valid(&out);
}

#[test]
fn granting_each_thing_withholds_nothing() {
    let mut p = components();
    for (_, a) in Attribute::IETF.iter().chain(&Attribute::OMA) {
        p.grant(*a);
    }
    p.user_input = UserInput::Full;
    p.unknown_attributes = [("foo", VENDOR_NS), ("ext", VENDOR_NS), ("card", VENDOR_NS)]
        .into_iter()
        .map(|(l, n)| (n.to_string(), l.to_string()))
        .collect();
    let v = view();
    assert_eq!(filter(&v, &p), compose(ENTITY, &[&v]));
    // one unknown attribute fewer and the view changes
    p.unknown_attributes
        .remove(&(VENDOR_NS.to_string(), "ext".to_string()));
    let (_, doc) = run(&p);
    assert_eq!(kids(&doc, "t-sip")[0], "status");
    let tuple = element(&doc, "t-sip");
    let status = &tuple.children(&doc)[0];
    let inside: Vec<_> = tuple
        .children_of(&doc, status)
        .iter()
        .map(|c| c.local.to_string())
        .collect();
    assert_eq!(inside, ["basic"]);
}

#[test]
fn nothing_granted_is_an_empty_document() {
    let (out, doc) = run(&Permissions::default());
    assert!(doc.elements.is_empty());
    let text = std::str::from_utf8(&out).unwrap();
    assert!(
        text.ends_with(
            "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"pres:alice@example.com\"/>\n"
        ),
        "{text}"
    );
}

#[test]
fn components_without_attributes_keep_what_is_always_provided() {
    let (_, doc) = run(&components());
    assert_eq!(shown(&doc), ALL_COMPONENTS);
    assert_eq!(
        kids(&doc, "t-sip"),
        [
            "status",
            "service-class",
            "service-description",
            "contact",
            "timestamp"
        ]
    );
    assert_eq!(kids(&doc, "t-tel"), ["status", "contact"]);
    assert_eq!(kids(&doc, "p1"), ["timestamp"]);
    assert!(kids(&doc, "p2").is_empty());
    // data-model.xsd requires it, and RFC 5025 gives it to every watcher of the device
    assert_eq!(kids(&doc, "d1"), ["deviceID"]);
    assert_eq!(kids(&doc, "d2"), ["deviceID"]);
    // the tuple's status keeps its basic status, not its extension
    let tuple = element(&doc, "t-sip");
    let text = std::str::from_utf8(tuple.as_bytes()).unwrap();
    assert!(
        text.contains("<status><basic>open</basic></status>"),
        "{text}"
    );
    assert!(text.contains(r#"<contact priority="0.8">sip:alice@192.0.2.10</contact>"#));
    // ids and namespaces survive the cuts
    assert_eq!(tuple.namespace(), PIDF_NS);
    assert_eq!(element(&doc, "p1").namespace(), DATA_MODEL_NS);
}

#[test]
fn attributes_are_shown_as_granted() {
    let mut p = components();
    p.grant(Attribute::Activities);
    p.grant(Attribute::Mood);
    p.grant(Attribute::Note);
    let (_, doc) = run(&p);
    assert_eq!(
        shown(&doc),
        ["t-sip", "t-tel", "t-im", "note", "p1", "p2", "d1", "d2"]
    );
    assert_eq!(
        kids(&doc, "p1"),
        ["activities", "mood", "note", "timestamp"]
    );
    assert_eq!(
        kids(&doc, "t-sip"),
        [
            "status",
            "service-class",
            "service-description",
            "contact",
            "note",
            "timestamp"
        ]
    );
    assert_eq!(kids(&doc, "d1"), ["deviceID", "note"]);

    let mut p = components();
    for a in [
        Attribute::Class,
        Attribute::PlaceType,
        Attribute::TimeOffset,
        Attribute::Sphere,
        Attribute::Geopriv,
    ] {
        p.grant(a);
    }
    let (_, doc) = run(&p);
    assert_eq!(
        kids(&doc, "p1"),
        ["class", "place-type", "time-offset", "geopriv", "timestamp"]
    );
    assert_eq!(kids(&doc, "p2"), ["class", "sphere"]);
    assert_eq!(kids(&doc, "d1"), ["class", "deviceID"]);
    assert_eq!(kids(&doc, "t-tel"), ["status", "class", "contact"]);
}

#[test]
fn device_id_of_a_tuple_is_an_attribute() {
    let mut p = components();
    p.grant(Attribute::DeviceId);
    let (_, doc) = run(&p);
    assert_eq!(
        kids(&doc, "t-sip"),
        [
            "status",
            "service-class",
            "deviceID",
            "service-description",
            "contact",
            "timestamp"
        ]
    );
    assert_eq!(kids(&doc, "d1"), ["deviceID"]);
}

#[test]
fn oma_attributes() {
    let mut p = components();
    p.grant(Attribute::Willingness);
    let (_, doc) = run(&p);
    assert!(kids(&doc, "t-sip").contains(&"willingness".to_string()));
    assert_eq!(shown(&doc).last().map(String::as_str), Some("willingness"));
    assert_eq!(kids(&doc, "d1"), ["deviceID"]);

    let mut p = components();
    p.grant(Attribute::NetworkAvailability);
    let (_, doc) = run(&p);
    assert!(!kids(&doc, "t-sip").contains(&"willingness".to_string()));
    assert_eq!(kids(&doc, "d1"), ["network-availability", "deviceID"]);
    assert_eq!(shown(&doc), ALL_COMPONENTS);
}

/// The attributes of the user-input of p1 (None: withheld) and its text.
fn user_input_of(level: UserInput) -> Option<(Vec<(String, String)>, String)> {
    let mut p = components();
    p.user_input = level;
    let (_, doc) = run(&p);
    let person = element(&doc, "p1");
    let children = person.children(&doc);
    let ui = children.iter().find(|c| c.local == "user-input")?;
    let attrs = person
        .child_attributes(ui)
        .into_iter()
        .map(|a| (a.name.to_string(), a.value.into_owned()))
        .collect();
    Some((attrs, person.child_text(ui).into_owned()))
}

#[test]
fn user_input_levels() {
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(user_input_of(UserInput::False), None);
    assert_eq!(
        user_input_of(UserInput::Bare),
        Some((vec![s("id", "ui1")], "idle".into()))
    );
    assert_eq!(
        user_input_of(UserInput::Thresholds),
        Some((
            vec![s("idle-threshold", "600"), s("id", "ui1")],
            "idle".into()
        ))
    );
    assert_eq!(
        user_input_of(UserInput::Full),
        Some((
            vec![
                s("idle-threshold", "600"),
                s("last-input", "2025-01-01T09:50:00Z"),
                s("id", "ui1")
            ],
            "idle".into()
        ))
    );
    // the device's bare user-input is kept whole at every level but false
    let mut p = components();
    p.user_input = UserInput::Bare;
    let (_, doc) = run(&p);
    assert_eq!(kids(&doc, "d1"), ["user-input", "deviceID"]);
    let text = std::str::from_utf8(element(&doc, "p1").as_bytes()).unwrap();
    assert!(
        text.contains(r#"<rpid:user-input id="ui1">idle</rpid:user-input>"#),
        "{text}"
    );
}

#[test]
fn unknown_attributes_by_namespace_and_name() {
    let mut p = components();
    p.unknown_attributes = BTreeSet::from([(VENDOR_NS.to_string(), "foo".to_string())]);
    let (_, doc) = run(&p);
    assert_eq!(kids(&doc, "p1"), ["foo", "timestamp"]);
    assert_eq!(shown(&doc), ALL_COMPONENTS);
    // the right namespace is needed, not the prefix or the name alone
    p.unknown_attributes = BTreeSet::from([("urn:other".to_string(), "foo".to_string())]);
    let (_, doc) = run(&p);
    assert_eq!(kids(&doc, "p1"), ["timestamp"]);
    // a top-level element of another namespace, and a status extension
    p.unknown_attributes = BTreeSet::from([
        (VENDOR_NS.to_string(), "card".to_string()),
        (VENDOR_NS.to_string(), "ext".to_string()),
    ]);
    let (_, doc) = run(&p);
    assert_eq!(shown(&doc).last().map(String::as_str), Some("card"));
    let tuple = std::str::from_utf8(element(&doc, "t-sip").as_bytes()).unwrap();
    assert!(tuple.contains("<x:ext>on-hook</x:ext>"), "{tuple}");
}

#[test]
fn all_attributes_keeps_shown_components_whole() {
    let v = view();
    let mut p = Permissions::everything();
    p.services = some([ServiceSelector::OccurrenceId("t-sip".into())]);
    p.devices = Selection::Nothing;
    let (_, doc) = run(&p);
    assert_eq!(
        shown(&doc),
        ["t-sip", "note", "p1", "p2", "willingness", "card"]
    );
    assert_eq!(
        element(&doc, "t-sip").as_bytes(),
        element(&v, "t-sip").as_bytes()
    );
    assert_eq!(element(&doc, "p1").as_bytes(), element(&v, "p1").as_bytes());
}

/// The components these selections show.
fn picked(
    services: Selection<ServiceSelector>,
    persons: Selection<ServiceSelector>,
    devices: Selection<ServiceSelector>,
) -> Vec<String> {
    run(&selecting(services, persons, devices))
        .1
        .elements
        .iter()
        .filter_map(|el| el.id().map(str::to_string))
        .collect()
}

#[test]
fn service_selectors() {
    use ServiceSelector::*;
    let n = || Selection::Nothing;
    let services = |s: Vec<ServiceSelector>| picked(some(s), n(), n());
    assert_eq!(services(vec![OccurrenceId("t-tel".into())]), ["t-tel"]);
    assert_eq!(
        services(vec![ServiceUri("sip:alice@192.0.2.10".into())]),
        ["t-sip"]
    );
    // the contact's text is trimmed
    assert_eq!(
        services(vec![ServiceUri("im:alice@example.com".into())]),
        ["t-im"]
    );
    // schemes compare without case
    assert_eq!(services(vec![ServiceUriScheme("tel".into())]), ["t-tel"]);
    assert_eq!(services(vec![ServiceUriScheme("sip".into())]), ["t-sip"]);
    assert_eq!(services(vec![Class("home".into())]), ["t-tel"]);
    // a union of selectors
    assert_eq!(
        services(vec![Class("work".into()), ServiceUriScheme("im".into())]),
        ["t-sip", "t-im"]
    );
    // nothing matches: no tuple
    assert!(services(vec![ServiceUri("sip:alice@192.0.2.11".into())]).is_empty());
    assert!(services(vec![Class("Work".into())]).is_empty());
    // a service is not chosen by the device it runs on
    assert!(services(vec![DeviceId("urn:uuid:d1".into())]).is_empty());
}

#[test]
fn person_and_device_selectors() {
    use ServiceSelector::*;
    let n = || Selection::Nothing;
    let persons = |s: Vec<ServiceSelector>| picked(n(), some(s), n());
    assert_eq!(persons(vec![OccurrenceId("p2".into())]), ["p2"]);
    assert_eq!(persons(vec![Class("work".into())]), ["p1"]);
    assert!(persons(vec![ServiceUriScheme("sip".into())]).is_empty());
    assert!(persons(vec![DeviceId("urn:uuid:d1".into())]).is_empty());

    let devices = |s: Vec<ServiceSelector>| picked(n(), n(), some(s));
    assert_eq!(devices(vec![DeviceId("urn:uuid:d2".into())]), ["d2"]);
    assert_eq!(devices(vec![OccurrenceId("d1".into())]), ["d1"]);
    assert_eq!(devices(vec![Class("laptop".into())]), ["d1"]);
    assert_eq!(
        devices(vec![Class("laptop".into()), DeviceId("urn:uuid:d2".into())]),
        ["d1", "d2"]
    );
    assert!(devices(vec![DeviceId("urn:uuid:d3".into())]).is_empty());
    assert!(devices(vec![OccurrenceId("p1".into())]).is_empty());

    // each kind by its own selection
    assert_eq!(
        picked(Selection::All, n(), some([OccurrenceId("d2".into())])),
        ["t-sip", "t-tel", "t-im", "d2"]
    );
}

#[test]
fn selectors_read_escaped_text() {
    let body = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" entity="pres:a&amp;b@example.com">
<tuple id="a"><status><basic>open</basic></status><r:class><![CDATA[vip]]></r:class><contact>sip:a&amp;b@example.com</contact></tuple>
<tuple id="b"><status><basic>open</basic></status><r:class>v&#105;p </r:class></tuple>
</presence>"#;
    let source = parse(body.as_bytes()).unwrap();
    let v = parse_bytes(compose(&source.entity, &[&source])).unwrap();
    let p = |s: ServiceSelector| selecting(some([s]), Selection::Nothing, Selection::Nothing);
    let ids = |p: &Permissions| -> Vec<String> {
        let out = filter(&v, p);
        assert_valid(&out);
        let d = parse_bytes(out).unwrap();
        assert_eq!(&*d.entity, "pres:a&b@example.com");
        d.elements
            .iter()
            .map(|e| e.id().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(&p(ServiceSelector::ServiceUri(
            "sip:a&b@example.com".into()
        ))),
        ["a"]
    );
    assert_eq!(ids(&p(ServiceSelector::Class("vip".into()))), ["a", "b"]);
}

#[test]
fn hidden_top_level_note_and_others() {
    let mut p = Permissions::default();
    p.grant(Attribute::Note);
    p.grant(Attribute::Willingness);
    let (_, doc) = run(&p);
    assert_eq!(shown(&doc), ["note", "willingness"]);
}
