//! `pres-rules` (RFC 5025 §9) and `org.openmobilealliance.pres-rules` (OMA Presence, the same
//! document with the OMA common-policy extensions): authorization rules in the common-policy
//! format (RFC 4745) with presence actions and transformations. Rule `id`s are unique in the
//! document (RFC 4745 §7: `xs:ID`); `sub-handling` is one of block, confirm, polite-block,
//! allow (RFC 5025 §3.2.1).

use super::resource_lists::{Failure, suggest, uniqueness_result};
use crate::xcap::dom::{Document, Element, is_ncname};
use crate::xcap::error::XcapError;
use crate::xcap::schema::{
    Attrs, Slot, UNBOUNDED, check_attrs, check_children, collapse, element_only, empty, invalid,
    is_boolean, is_datetime, simple,
};
use crate::xcap::usage::{ApplicationUsage, WriteContext, positional_selector};
use std::collections::BTreeSet;

/// `urn:ietf:params:xml:ns:common-policy` (RFC 4745).
pub const CP_NS: &str = "urn:ietf:params:xml:ns:common-policy";
/// `urn:ietf:params:xml:ns:pres-rules` (RFC 5025).
pub const PR_NS: &str = "urn:ietf:params:xml:ns:pres-rules";
/// `urn:oma:xml:xdm:common-policy` (OMA XDM common policy extensions).
pub const OCP_NS: &str = "urn:oma:xml:xdm:common-policy";
/// `urn:oma:xml:prs:pres-rules` (OMA pres-rules extensions; no schema here, kept well-formed).
pub const OMA_PR_NS: &str = "urn:oma:xml:prs:pres-rules";
/// `application/auth-policy+xml`.
pub const AUTH_POLICY_MIME: &str = "application/auth-policy+xml";

/// A pres-rules usage: the IETF one or the OMA one.
pub struct PresRules {
    auid: &'static str,
    oma: bool,
}

impl PresRules {
    /// RFC 5025 `pres-rules`.
    pub fn ietf() -> PresRules {
        PresRules {
            auid: "pres-rules",
            oma: false,
        }
    }
    /// OMA `org.openmobilealliance.pres-rules`.
    pub fn oma() -> PresRules {
        PresRules {
            auid: "org.openmobilealliance.pres-rules",
            oma: true,
        }
    }
}

impl ApplicationUsage for PresRules {
    fn auid(&self) -> &'static str {
        self.auid
    }
    fn mime(&self) -> &'static str {
        AUTH_POLICY_MIME
    }
    fn default_namespace(&self) -> &'static str {
        CP_NS
    }
    fn namespaces(&self) -> &'static [&'static str] {
        if self.oma {
            &[PR_NS, OCP_NS, OMA_PR_NS]
        } else {
            &[PR_NS]
        }
    }
    fn validate_schema(&self, doc: &Document) -> Result<(), XcapError> {
        let root = &doc.root;
        if !root.is(CP_NS, "ruleset") {
            return Err(invalid(
                root,
                "root must be <ruleset> in the common-policy namespace",
            ));
        }
        check_attrs(root, &Attrs::NONE)?;
        element_only(root)?;
        check_children(root, &[slot(&[(CP_NS, "rule")], false, 0, UNBOUNDED)])?;
        for (_, rule) in root.child_elements() {
            validate_rule(rule)?;
        }
        Ok(())
    }
    fn check_uniqueness(&self, doc: &Document, _ctx: &WriteContext<'_>) -> Result<(), XcapError> {
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut failures: Vec<Failure> = Vec::new();
        for (i, rule) in doc.root.child_elements() {
            let Some(id) = rule.attr("id") else { continue };
            if !seen.insert(id) {
                let ids: BTreeSet<&str> = doc
                    .root
                    .child_elements()
                    .filter_map(|(_, r)| r.attr("id"))
                    .collect();
                let field = format!("{}/@id", positional_selector(&doc.root, &[i], CP_NS));
                failures.push((field, suggest(id, |c| !ids.contains(c))));
            }
        }
        uniqueness_result(failures)
    }
}

fn slot<'a>(names: &'a [(&'a str, &'a str)], other: bool, min: u32, max: u32) -> Slot<'a> {
    Slot {
        names,
        other_than: other.then_some(CP_NS),
        min,
        max,
    }
}

fn attrs<'a>(allowed: &'a [&'a str], required: &'a [&'a str]) -> Attrs<'a> {
    Attrs {
        allowed,
        required,
        other_than: None,
        any: false,
        xml_lang: false,
    }
}

fn validate_rule(rule: &Element) -> Result<(), XcapError> {
    check_attrs(rule, &attrs(&["id"], &["id"]))?;
    // xs:ID is an NCName.
    if !is_ncname(rule.attr("id").unwrap_or("")) {
        return Err(invalid(rule, "id must be an NCName"));
    }
    element_only(rule)?;
    check_children(
        rule,
        &[
            slot(&[(CP_NS, "conditions")], false, 0, 1),
            slot(&[(CP_NS, "actions")], false, 0, 1),
            slot(&[(CP_NS, "transformations")], false, 0, 1),
        ],
    )?;
    for (_, part) in rule.child_elements() {
        check_attrs(part, &Attrs::NONE)?;
        element_only(part)?;
        match &*part.local {
            "conditions" => {
                check_children(
                    part,
                    &[slot(
                        &[(CP_NS, "identity"), (CP_NS, "sphere"), (CP_NS, "validity")],
                        true,
                        0,
                        UNBOUNDED,
                    )],
                )?;
                for (_, c) in part.child_elements() {
                    match (c.ns.as_deref(), &*c.local) {
                        (Some(CP_NS), "identity") => validate_identity(c)?,
                        (Some(CP_NS), "sphere") => {
                            check_attrs(c, &attrs(&["value"], &["value"]))?;
                            empty(c)?;
                        }
                        (Some(CP_NS), "validity") => validate_validity(c)?,
                        _ => lax(c)?,
                    }
                }
            }
            _ => {
                // actions, transformations: ##other*, checked laxly.
                check_children(part, &[slot(&[], true, 0, UNBOUNDED)])?;
                for (_, c) in part.child_elements() {
                    lax(c)?;
                }
            }
        }
    }
    Ok(())
}

fn validate_identity(id: &Element) -> Result<(), XcapError> {
    check_attrs(id, &Attrs::NONE)?;
    element_only(id)?;
    check_children(
        id,
        &[slot(&[(CP_NS, "one"), (CP_NS, "many")], true, 1, UNBOUNDED)],
    )?;
    for (_, c) in id.child_elements() {
        match (c.ns.as_deref(), &*c.local) {
            (Some(CP_NS), "one") => {
                check_attrs(c, &attrs(&["id"], &["id"]))?;
                element_only(c)?;
                check_children(c, &[slot(&[], true, 0, 1)])?;
                for (_, x) in c.child_elements() {
                    lax(x)?;
                }
            }
            (Some(CP_NS), "many") => {
                check_attrs(c, &attrs(&["domain"], &[]))?;
                element_only(c)?;
                check_children(c, &[slot(&[(CP_NS, "except")], true, 0, UNBOUNDED)])?;
                for (_, x) in c.child_elements() {
                    if x.is(CP_NS, "except") {
                        check_attrs(x, &attrs(&["domain", "id"], &[]))?;
                        empty(x)?;
                    } else {
                        lax(x)?;
                    }
                }
            }
            _ => lax(c)?,
        }
    }
    Ok(())
}

/// `<validity>`: one or more (`<from>`, `<until>`) pairs of xs:dateTime.
fn validate_validity(v: &Element) -> Result<(), XcapError> {
    check_attrs(v, &Attrs::NONE)?;
    element_only(v)?;
    let kids: Vec<&Element> = v.child_elements().map(|(_, c)| c).collect();
    if kids.is_empty() || !kids.len().is_multiple_of(2) {
        return Err(invalid(v, "needs (from, until) pairs"));
    }
    for (k, c) in kids.iter().enumerate() {
        let want = if k % 2 == 0 { "from" } else { "until" };
        if !c.is(CP_NS, want) {
            return Err(invalid(v, &format!("expected <{want}>")));
        }
        check_attrs(c, &Attrs::NONE)?;
        if !is_datetime(&simple(c)?) {
            return Err(invalid(c, "not an xs:dateTime"));
        }
    }
    Ok(())
}

/// processContents="lax": elements of namespaces we have schemas for (pres-rules, OMA
/// common policy) are checked against their global declarations; others are accepted.
fn lax(el: &Element) -> Result<(), XcapError> {
    match el.ns.as_deref() {
        Some(PR_NS) => pres_rules_element(el),
        Some(OCP_NS) => oma_policy_element(el),
        _ => Ok(()),
    }
}

const BOOLEAN_PERMISSIONS: &[&str] = &[
    "provide-activities",
    "provide-class",
    "provide-deviceID",
    "provide-mood",
    "provide-place-is",
    "provide-place-type",
    "provide-privacy",
    "provide-relationship",
    "provide-status-icon",
    "provide-sphere",
    "provide-time-offset",
    "provide-note",
];

fn pres_rules_element(el: &Element) -> Result<(), XcapError> {
    let name = &*el.local;
    match name {
        "sub-handling" => {
            check_attrs(el, &Attrs::NONE)?;
            let v = collapse(&simple(el)?);
            // RFC 5025 §3.2.1.
            if !matches!(v.as_str(), "block" | "confirm" | "polite-block" | "allow") {
                return Err(invalid(el, "must be block, confirm, polite-block or allow"));
            }
        }
        "provide-services" => provide(
            el,
            "all-services",
            &[
                "service-uri",
                "service-uri-scheme",
                "occurrence-id",
                "class",
            ],
        )?,
        "provide-devices" => provide(el, "all-devices", &["deviceID", "occurrence-id", "class"])?,
        "provide-persons" => provide(el, "all-persons", &["occurrence-id", "class"])?,
        "provide-user-input" => {
            check_attrs(el, &Attrs::NONE)?;
            let v = simple(el)?;
            if !matches!(v.as_str(), "false" | "bare" | "thresholds" | "full") {
                return Err(invalid(el, "must be false, bare, thresholds or full"));
            }
        }
        "provide-unknown-attribute" => {
            check_attrs(el, &attrs(&["name", "ns"], &["name", "ns"]))?;
            if !is_boolean(&simple(el)?) {
                return Err(invalid(el, "not a boolean"));
            }
        }
        "provide-all-attributes" => {
            check_attrs(el, &Attrs::NONE)?;
            empty(el)?;
        }
        "service-uri" | "service-uri-scheme" | "class" | "occurrence-id" | "deviceID" => {
            check_attrs(el, &Attrs::NONE)?;
            simple(el)?;
        }
        n if BOOLEAN_PERMISSIONS.contains(&n) => {
            check_attrs(el, &Attrs::NONE)?;
            if !is_boolean(&simple(el)?) {
                return Err(invalid(el, "not a boolean"));
            }
        }
        _ => {}
    }
    Ok(())
}

/// provide-services / provide-devices / provide-persons: either the single `all-*` element,
/// or any number of the listed selectors and foreign elements.
fn provide(el: &Element, all: &str, items: &[&str]) -> Result<(), XcapError> {
    check_attrs(el, &Attrs::NONE)?;
    element_only(el)?;
    let kids: Vec<&Element> = el.child_elements().map(|(_, c)| c).collect();
    if kids.iter().any(|c| c.is(PR_NS, all)) {
        if kids.len() != 1 {
            return Err(invalid(el, &format!("<{all}> must be alone")));
        }
        check_attrs(kids[0], &Attrs::NONE)?;
        return empty(kids[0]);
    }
    for c in kids {
        match c.ns.as_deref() {
            Some(PR_NS) if items.contains(&&*c.local) => pres_rules_element(c)?,
            Some(PR_NS) | None => {
                return Err(invalid(el, &format!("unexpected child <{}>", c.qname())));
            }
            Some(_) => lax(c)?,
        }
    }
    Ok(())
}

fn oma_policy_element(el: &Element) -> Result<(), XcapError> {
    match &*el.local {
        "other-identity" | "anonymous-request" => {
            check_attrs(el, &Attrs::NONE)?;
            empty(el)
        }
        "external-list" => {
            check_attrs(el, &Attrs::NONE)?;
            element_only(el)?;
            check_children(
                el,
                &[Slot {
                    names: &[(OCP_NS, "entry")],
                    other_than: None,
                    min: 0,
                    max: UNBOUNDED,
                }],
            )?;
            for (_, e) in el.child_elements() {
                check_attrs(
                    e,
                    &Attrs {
                        allowed: &["anc"],
                        required: &[],
                        other_than: None,
                        any: true,
                        xml_lang: false,
                    },
                )?;
                empty(e)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
