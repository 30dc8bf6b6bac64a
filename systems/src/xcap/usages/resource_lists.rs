//! `resource-lists` (RFC 4826 §3, OMA Shared XDMS): lists of entries, entry references and
//! external lists. Uniqueness among siblings (§3.4.5): list `name`, entry `uri`, entry-ref
//! `ref`, external `anchor`. Data constraints (§3.4.6): entry-ref `ref` is a relative HTTP
//! URI (relative to the XCAP root), external `anchor` an absolute HTTP URI.

use crate::xcap::dom::{Document, Element};
use crate::xcap::error::{ErrorCondition, XcapError};
use crate::xcap::schema::{
    Attrs, Slot, UNBOUNDED, check_attrs, check_children, element_only, invalid,
    is_absolute_http_uri, is_relative_http_uri, simple,
};
use crate::xcap::selector::{NameTest, NodeSelector};
use crate::xcap::uri::XcapUri;
use crate::xcap::usage::{ApplicationUsage, WriteContext, positional_selector};
use std::collections::BTreeSet;

/// `urn:ietf:params:xml:ns:resource-lists`.
pub const RL_NS: &str = "urn:ietf:params:xml:ns:resource-lists";
/// `application/resource-lists+xml`.
pub const RL_MIME: &str = "application/resource-lists+xml";

/// The resource-lists application usage.
pub struct ResourceLists;

impl ApplicationUsage for ResourceLists {
    fn auid(&self) -> &'static str {
        "resource-lists"
    }
    fn mime(&self) -> &'static str {
        RL_MIME
    }
    fn default_namespace(&self) -> &'static str {
        RL_NS
    }
    fn validate_schema(&self, doc: &Document) -> Result<(), XcapError> {
        let root = &doc.root;
        if !root.is(RL_NS, "resource-lists") {
            return Err(invalid(
                root,
                "root must be <resource-lists> in the resource-lists namespace",
            ));
        }
        check_attrs(root, &Attrs::NONE)?;
        element_only(root)?;
        check_children(
            root,
            &[Slot {
                names: &[(RL_NS, "list")],
                other_than: None,
                min: 0,
                max: UNBOUNDED,
            }],
        )?;
        for (_, list) in root.child_elements() {
            validate_list(list)?;
        }
        Ok(())
    }
    fn check_uniqueness(&self, doc: &Document, _ctx: &WriteContext<'_>) -> Result<(), XcapError> {
        let mut failures = Vec::new();
        let mut path = Vec::new();
        sibling_uniqueness(&doc.root, &doc.root, &mut path, RL_NS, &mut failures);
        uniqueness_result(failures)
    }
    fn check_constraints(&self, doc: &Document, _ctx: &WriteContext<'_>) -> Result<(), XcapError> {
        list_constraints(&doc.root)
    }
}

/// Validates an element of type `listType` (also used for rls-services `<list>`).
pub fn validate_list(list: &Element) -> Result<(), XcapError> {
    check_attrs(
        list,
        &Attrs {
            allowed: &["name"],
            required: &[],
            other_than: Some(RL_NS),
            any: false,
            xml_lang: false,
        },
    )?;
    element_only(list)?;
    check_children(
        list,
        &[
            Slot {
                names: &[(RL_NS, "display-name")],
                other_than: None,
                min: 0,
                max: 1,
            },
            Slot {
                names: &[
                    (RL_NS, "list"),
                    (RL_NS, "external"),
                    (RL_NS, "entry"),
                    (RL_NS, "entry-ref"),
                ],
                other_than: None,
                min: 0,
                max: UNBOUNDED,
            },
            Slot {
                names: &[],
                other_than: Some(RL_NS),
                min: 0,
                max: UNBOUNDED,
            },
        ],
    )?;
    for (_, child) in list.child_elements() {
        if child.ns.as_deref() != Some(RL_NS) {
            continue;
        }
        match &*child.local {
            "display-name" => validate_display_name(child)?,
            "list" => validate_list(child)?,
            "entry" => validate_member(child, &["uri"], &["uri"])?,
            "entry-ref" => validate_member(child, &["ref"], &["ref"])?,
            "external" => validate_member(child, &["anchor"], &[])?,
            _ => {}
        }
    }
    Ok(())
}

/// `<display-name>`: a string with an optional `xml:lang`.
fn validate_display_name(el: &Element) -> Result<(), XcapError> {
    check_attrs(
        el,
        &Attrs {
            allowed: &[],
            required: &[],
            other_than: None,
            any: false,
            xml_lang: true,
        },
    )?;
    simple(el)?;
    Ok(())
}

/// entryType, entry-refType, externalType: display-name?, ##other*.
fn validate_member(el: &Element, allowed: &[&str], required: &[&str]) -> Result<(), XcapError> {
    check_attrs(
        el,
        &Attrs {
            allowed,
            required,
            other_than: Some(RL_NS),
            any: false,
            xml_lang: false,
        },
    )?;
    element_only(el)?;
    check_children(
        el,
        &[
            Slot {
                names: &[(RL_NS, "display-name")],
                other_than: None,
                min: 0,
                max: 1,
            },
            Slot {
                names: &[],
                other_than: Some(RL_NS),
                min: 0,
                max: UNBOUNDED,
            },
        ],
    )?;
    for (_, c) in el.child_elements() {
        if c.is(RL_NS, "display-name") {
            validate_display_name(c)?;
        }
    }
    Ok(())
}

/// A uniqueness failure: field node selector and suggested values.
pub type Failure = (String, Vec<String>);

/// 409 uniqueness-failure when `failures` is not empty.
pub fn uniqueness_result(failures: Vec<Failure>) -> Result<(), XcapError> {
    if failures.is_empty() {
        return Ok(());
    }
    let phrase = format!("{} is not unique", failures[0].0);
    Err(XcapError::conflict(
        ErrorCondition::UniquenessFailure { exists: failures },
        phrase,
    ))
}

/// RFC 4826 §3.4.5: among the children of `parent` (a `<resource-lists>` or a list), list
/// names, entry URIs, entry-ref refs and external anchors are unique; recurses into lists.
/// `path` is the path of `parent` below `doc_root`; fields are positional node selectors.
pub fn sibling_uniqueness(
    doc_root: &Element,
    parent: &Element,
    path: &mut Vec<usize>,
    default_ns: &str,
    out: &mut Vec<Failure>,
) {
    const KEYS: [(&str, &str); 4] = [
        ("list", "name"),
        ("entry", "uri"),
        ("entry-ref", "ref"),
        ("external", "anchor"),
    ];
    let mut seen: [BTreeSet<&str>; 4] = Default::default();
    for (i, child) in parent.child_elements() {
        if child.ns.as_deref() != Some(RL_NS) {
            continue;
        }
        let Some(k) = KEYS.iter().position(|(l, _)| *l == &*child.local) else {
            continue;
        };
        let attr = KEYS[k].1;
        if let Some(v) = child.attr(attr)
            && !seen[k].insert(v)
        {
            path.push(i);
            let field = format!(
                "{}/@{attr}",
                positional_selector(doc_root, path, default_ns)
            );
            path.pop();
            let alts = if k == 0 {
                let names: BTreeSet<&str> = parent
                    .child_elements()
                    .filter(|(_, c)| c.is(RL_NS, "list"))
                    .filter_map(|(_, c)| c.attr("name"))
                    .collect();
                suggest(v, |cand| !names.contains(cand))
            } else {
                Vec::new()
            };
            out.push((field, alts));
        }
        if k == 0 {
            path.push(i);
            sibling_uniqueness(doc_root, child, path, default_ns, out);
            path.pop();
        }
    }
}

/// Up to three alternatives `value1`, `value2`, ... that `free` accepts.
pub fn suggest(value: &str, free: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut n = 1;
    while out.len() < 3 && n < 1000 {
        let cand = format!("{value}{n}");
        if free(&cand) {
            out.push(cand);
        }
        n += 1;
    }
    out
}

/// RFC 4826 §3.2/§3.4.6: an entry-ref `ref` is a relative HTTP URI, relative to the XCAP
/// root, naming an `<entry>` of a resource-lists document.
fn is_entry_reference(r: &str) -> bool {
    if !is_relative_http_uri(r) {
        return false;
    }
    let (path, query) = match r.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (r, None),
    };
    let Ok(uri) = XcapUri::parse(path, query) else {
        return false;
    };
    let Some(node) = uri.node.as_deref() else {
        return false;
    };
    uri.auid == "resource-lists"
        && NodeSelector::parse(node, &uri.ns_bindings, RL_NS).is_ok_and(|sel| {
            sel.terminal.is_none()
                && sel.steps.last().is_some_and(|s| {
                    s.name
                        == NameTest::Name {
                            ns: Some(RL_NS.to_string()),
                            local: "entry".to_string(),
                        }
                })
        })
}

/// RFC 4826 §3.4.6 data constraints on every list below `parent`.
pub fn list_constraints(parent: &Element) -> Result<(), XcapError> {
    for (_, child) in parent.child_elements() {
        if child.ns.as_deref() != Some(RL_NS) {
            continue;
        }
        match &*child.local {
            "list" => list_constraints(child)?,
            "entry-ref" => {
                let r = child.attr("ref").unwrap_or("");
                if !is_entry_reference(r) {
                    return Err(XcapError::constraint(format!(
                        "entry-ref ref '{r}' is not a relative HTTP URI of a resource-lists <entry>"
                    )));
                }
            }
            "external" => {
                if let Some(a) = child.attr("anchor")
                    && !is_absolute_http_uri(a)
                {
                    return Err(XcapError::constraint(format!(
                        "external anchor '{a}' is not an absolute HTTP URI"
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}
