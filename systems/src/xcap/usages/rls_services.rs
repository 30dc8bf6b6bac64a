//! `rls-services` (RFC 4826 §4, OMA RLS XDMS): resource list services, each a `uri` with
//! either an inline `<list>` or a `<resource-list>` reference, and the event `<packages>`.
//! Constraints (§4.4.3): each service URI is unique within the document and across all users'
//! documents; `<resource-list>` holds an absolute HTTP URI; inline lists obey the
//! resource-lists rules. The global tree (the index of §4.4.1) is computed, not written.

use super::resource_lists::{
    Failure, RL_NS, list_constraints, sibling_uniqueness, uniqueness_result, validate_list,
};
use crate::xcap::dom::{Document, Element};
use crate::xcap::error::XcapError;
use crate::xcap::schema::{
    Attrs, Slot, UNBOUNDED, check_attrs, check_children, collapse, element_only, invalid,
    is_absolute_http_uri, simple,
};
use crate::xcap::uri::Scope;
use crate::xcap::usage::{ApplicationUsage, WriteContext, positional_selector};
use std::collections::BTreeSet;

/// `urn:ietf:params:xml:ns:rls-services`.
pub const RLS_NS: &str = "urn:ietf:params:xml:ns:rls-services";
/// `application/rls-services+xml`.
pub const RLS_MIME: &str = "application/rls-services+xml";

/// The rls-services application usage.
pub struct RlsServices;

impl ApplicationUsage for RlsServices {
    fn auid(&self) -> &'static str {
        "rls-services"
    }
    fn mime(&self) -> &'static str {
        RLS_MIME
    }
    fn default_namespace(&self) -> &'static str {
        RLS_NS
    }
    fn namespaces(&self) -> &'static [&'static str] {
        &[RL_NS]
    }
    fn writable(&self, scope: &Scope) -> bool {
        // RFC 4826 §4.4.1: global/index is composed by the server from the users' documents.
        matches!(scope, Scope::User(_))
    }
    fn validate_schema(&self, doc: &Document) -> Result<(), XcapError> {
        let root = &doc.root;
        if !root.is(RLS_NS, "rls-services") {
            return Err(invalid(
                root,
                "root must be <rls-services> in the rls-services namespace",
            ));
        }
        check_attrs(root, &Attrs::NONE)?;
        element_only(root)?;
        check_children(
            root,
            &[Slot {
                names: &[(RLS_NS, "service")],
                other_than: None,
                min: 0,
                max: UNBOUNDED,
            }],
        )?;
        for (_, s) in root.child_elements() {
            validate_service(s)?;
        }
        Ok(())
    }
    fn check_uniqueness(&self, doc: &Document, ctx: &WriteContext<'_>) -> Result<(), XcapError> {
        let mut failures: Vec<Failure> = Vec::new();
        let uris: BTreeSet<&str> = services(&doc.root)
            .filter_map(|(_, s)| s.attr("uri"))
            .collect();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let xui = ctx.uri.xui();
        let doc_path = ctx.uri.doc_path.as_str();
        let free =
            |cand: &str| !uris.contains(cand) && !ctx.dir.service_uri_in_use(cand, xui, doc_path);
        for (i, s) in services(&doc.root) {
            let Some(uri) = s.attr("uri") else { continue };
            // RFC 4826 §4.4.3: unique in this document and across every other document.
            let dup_here = !seen.insert(uri);
            if dup_here || ctx.dir.service_uri_in_use(uri, xui, doc_path) {
                let field = format!("{}/@uri", positional_selector(&doc.root, &[i], RLS_NS));
                failures.push((field, suggest_service_uri(uri, &free)));
            }
        }
        let mut path = Vec::new();
        for (i, s) in services(&doc.root) {
            for (j, list) in s.child_elements() {
                if list.is(RLS_NS, "list") {
                    path.clear();
                    path.extend([i, j]);
                    sibling_uniqueness(&doc.root, list, &mut path, RLS_NS, &mut failures);
                }
            }
        }
        uniqueness_result(failures)
    }
    fn check_constraints(&self, doc: &Document, _ctx: &WriteContext<'_>) -> Result<(), XcapError> {
        for (_, s) in services(&doc.root) {
            for (_, c) in s.child_elements() {
                if c.is(RLS_NS, "resource-list") {
                    let v = collapse(&c.text());
                    if !is_absolute_http_uri(&v) {
                        return Err(XcapError::constraint(format!(
                            "resource-list '{v}' is not an absolute HTTP URI"
                        )));
                    }
                } else if c.is(RLS_NS, "list") {
                    list_constraints(c)?;
                }
            }
        }
        Ok(())
    }
}

fn services(root: &Element) -> impl Iterator<Item = (usize, &Element)> {
    root.child_elements()
        .filter(|(_, s)| s.is(RLS_NS, "service"))
}

/// Alternatives for a taken service URI: a number before the '@' (or at the end).
fn suggest_service_uri(uri: &str, free: &dyn Fn(&str) -> bool) -> Vec<String> {
    let (head, tail) = match uri.find('@') {
        Some(at) => uri.split_at(at),
        None => (uri, ""),
    };
    let mut out = Vec::new();
    let mut n = 1;
    while out.len() < 3 && n < 100 {
        let cand = format!("{head}{n}{tail}");
        if free(&cand) {
            out.push(cand);
        }
        n += 1;
    }
    out
}

fn validate_service(s: &Element) -> Result<(), XcapError> {
    check_attrs(
        s,
        &Attrs {
            allowed: &["uri"],
            required: &["uri"],
            other_than: Some(RLS_NS),
            any: false,
            xml_lang: false,
        },
    )?;
    element_only(s)?;
    // Exactly one of <resource-list> / <list>, then <packages>?, then ##other*.
    check_children(
        s,
        &[
            Slot {
                names: &[(RLS_NS, "resource-list"), (RLS_NS, "list")],
                other_than: None,
                min: 1,
                max: 1,
            },
            Slot {
                names: &[(RLS_NS, "packages")],
                other_than: None,
                min: 0,
                max: 1,
            },
            Slot {
                names: &[],
                other_than: Some(RLS_NS),
                min: 0,
                max: UNBOUNDED,
            },
        ],
    )?;
    for (_, c) in s.child_elements() {
        if c.ns.as_deref() != Some(RLS_NS) {
            continue;
        }
        match &*c.local {
            "resource-list" => {
                check_attrs(c, &Attrs::NONE)?;
                simple(c)?;
            }
            "list" => validate_list(c)?,
            "packages" => {
                check_attrs(c, &Attrs::NONE)?;
                element_only(c)?;
                check_children(
                    c,
                    &[Slot {
                        names: &[(RLS_NS, "package")],
                        other_than: Some(RLS_NS),
                        min: 0,
                        max: UNBOUNDED,
                    }],
                )?;
                for (_, p) in c.child_elements() {
                    if p.is(RLS_NS, "package") {
                        check_attrs(p, &Attrs::NONE)?;
                        simple(p)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}
