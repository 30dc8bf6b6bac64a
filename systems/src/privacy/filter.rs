//! The content filter of pres-rules (RFC 5025 §3.3 transformations, with OMA's provide-*
//! extensions): what a watcher holding some [`Permissions`] sees of a presentity's composed
//! view.
//!
//! Components (tuples, persons, devices) are shown when a selector of their kind admits them
//! (RFC 5025 §3.3.1); inside a shown component, each child element is a presence attribute
//! that is withheld unless a permission grants it (§3.3.2), except the few the schema or the
//! RFC always provides. The filter never rewrites an element: it leaves children (or a
//! child's attributes) out of the verbatim bytes ([`PidfElement::without`]) and composes the
//! rest as the composer does, so what is shown is byte for byte what was published, and a view
//! nothing of which is withheld is exactly `compose(entity, &[view])`.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::ops::Range;

use bytes::Bytes;

use super::permissions::{Attribute, Permissions, Selection, ServiceSelector, UserInput};
use crate::formats::pidf::{
    Child, DATA_MODEL_NS, ElementKind, PIDF_NS, PidfDocument, PidfElement, compose,
};

/// Namespace of RPID (RFC 4480).
pub const RPID_NS: &str = "urn:ietf:params:xml:ns:pidf:rpid";
/// Namespace of OMA's PIDF extensions (OMA Presence SIMPLE: willingness, network
/// availability, ...).
pub const OMA_PIDF_NS: &str = "urn:oma:xml:prs:pidf:oma-pres";
/// Namespace of the GEOPRIV location object in PIDF (RFC 4119).
pub const GEOPRIV_NS: &str = "urn:ietf:params:xml:ns:pidf:geopriv10";

/// The view a watcher holding `perms` sees of `view` (a composed presence document, parsed with
/// [`parse_bytes`](crate::formats::pidf::parse_bytes)): a complete PIDF document with only what
/// the permissions grant, for the view's entity. With everything withheld it is a `<presence>`
/// without tuples, which pidf.xsd allows.
pub fn filter(view: &PidfDocument, perms: &Permissions) -> Bytes {
    let mut withheld = false;
    let mut kept = Vec::with_capacity(view.elements.len());
    for el in view.elements.iter() {
        match verdict(view, el, perms) {
            Verdict::Whole => kept.push(el.clone()),
            Verdict::Without(drop) => {
                withheld = true;
                kept.push(el.without(&drop));
            }
            Verdict::Hidden => withheld = true,
        }
    }
    if !withheld {
        return compose(&view.entity, &[view]);
    }
    compose(&view.entity, &[&view.with_elements(kept)])
}

/// What becomes of one top-level element.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Shown as it is.
    Whole,
    /// Shown with these ranges of its bytes left out.
    Without(Vec<Range<usize>>),
    /// Withheld.
    Hidden,
}

/// How a presence attribute (a child element of a component) is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Always provided: required by the schema, or provided to every watcher by RFC 5025.
    Always,
    /// A tuple's `<status>`: kept, its `<basic>` too, its extensions decided one by one.
    Status,
    /// Shown when the attribute is granted.
    Grant(Attribute),
    /// RPID `<user-input>`: `provide-user-input` decides it and its attributes.
    UserInput,
    /// Not modelled here: `provide-unknown-attribute` with its namespace and local name.
    Unknown,
}

fn verdict(doc: &PidfDocument, el: &PidfElement, perms: &Permissions) -> Verdict {
    let shown = |yes: bool| if yes { Verdict::Whole } else { Verdict::Hidden };
    let selection = match el.kind {
        ElementKind::Tuple => &perms.services,
        ElementKind::Person => &perms.persons,
        ElementKind::Device => &perms.devices,
        ElementKind::Note => return shown(perms.shows(Attribute::Note)),
        ElementKind::Other => {
            if perms.all_attributes {
                return Verdict::Whole;
            }
            let (ns, local) = (el.namespace(), el.local_name());
            return shown(match attribute_rule(ns, local) {
                Rule::Always | Rule::Status => true,
                Rule::Grant(a) => perms.shows(a),
                // Not where RPID puts it (person, tuple, device); its attributes are on the
                // element's own start tag, so it is shown whole or not at all.
                Rule::UserInput => perms.user_input == UserInput::Full,
                Rule::Unknown => perms.shows_unknown(ns, local),
            });
        }
    };
    match selection {
        Selection::Nothing => return Verdict::Hidden,
        // the common case of a trusted watcher: nothing to look at inside
        Selection::All if perms.all_attributes => return Verdict::Whole,
        _ => {}
    }
    let children = el.children(doc);
    if !admitted(el, &children, selection) {
        return Verdict::Hidden;
    }
    if perms.all_attributes {
        return Verdict::Whole;
    }
    let mut drop = Vec::new();
    for c in &children {
        match child_rule(el.kind, &c.namespace, c.local) {
            Rule::Always => {}
            Rule::Status => {
                for g in el.children_of(doc, c) {
                    if g.namespace == PIDF_NS && g.local == "basic" {
                        continue;
                    }
                    decide(
                        perms,
                        el,
                        &g,
                        attribute_rule(&g.namespace, g.local),
                        &mut drop,
                    );
                }
            }
            rule => decide(perms, el, c, rule, &mut drop),
        }
    }
    if drop.is_empty() {
        Verdict::Whole
    } else {
        Verdict::Without(drop)
    }
}

/// Adds what of the attribute `c` of `el` is withheld to `drop`.
fn decide(
    perms: &Permissions,
    el: &PidfElement,
    c: &Child<'_>,
    rule: Rule,
    drop: &mut Vec<Range<usize>>,
) {
    let show = match rule {
        Rule::Always | Rule::Status => true,
        Rule::Grant(a) => perms.shows(a),
        Rule::Unknown => perms.shows_unknown(&c.namespace, c.local),
        Rule::UserInput => {
            user_input(el, c, perms.user_input, drop);
            return;
        }
    };
    if !show {
        drop.push(spaced(el, c));
    }
}

/// The range of the child `c` of `el` with the white space before it: what a component holds
/// is element-only content, where that white space means nothing, and a NOTIFY body for
/// thousands of watchers is better without a blank line per withheld attribute.
fn spaced(el: &PidfElement, c: &Child<'_>) -> Range<usize> {
    let b = el.as_bytes();
    let mut start = c.range.start;
    while start > 0 && matches!(b[start - 1], b' ' | b'\t' | b'\n' | b'\r') {
        start -= 1;
    }
    start..c.range.end
}

/// `provide-user-input` (RFC 5025 §3.3.2): `false` withholds the element; `bare` keeps it (its
/// active/idle text) without its `idle-threshold` and `last-input` attributes; `thresholds`
/// keeps `idle-threshold` but not `last-input`; `full` keeps it as it is. RFC 5025 names the
/// time of last input `since`, RPID's draft name for what RFC 4480 calls `last-input`: an
/// unprefixed `since` is withheld with it, as it would tell the same time. Other attributes
/// (`id`, extensions) stay.
fn user_input(el: &PidfElement, c: &Child<'_>, level: UserInput, drop: &mut Vec<Range<usize>>) {
    match level {
        UserInput::False => drop.push(spaced(el, c)),
        UserInput::Full => {}
        UserInput::Bare | UserInput::Thresholds => {
            for a in el.child_attributes(c) {
                let withheld = match a.name {
                    "last-input" | "since" => true,
                    "idle-threshold" => level == UserInput::Bare,
                    _ => false,
                };
                if withheld {
                    drop.push(a.range);
                }
            }
        }
    }
}

/// The rule for a child `{ns}local` of a component of `kind`: the structural elements first,
/// then the presence attributes.
fn child_rule(kind: ElementKind, ns: &str, local: &str) -> Rule {
    match (ns, local) {
        (PIDF_NS, "status") if kind == ElementKind::Tuple => Rule::Status,
        // RFC 5025 §3.3.2: a tuple's contact, service class, basic status and timestamp are
        // provided to every watcher.
        (PIDF_NS, "contact" | "timestamp") if kind == ElementKind::Tuple => Rule::Always,
        (RPID_NS, "service-class") if kind == ElementKind::Tuple => Rule::Always,
        // OMA's service description names what the tuple is (like the service class); no
        // OMA permission covers it.
        (OMA_PIDF_NS, "service-description") if kind == ElementKind::Tuple => Rule::Always,
        (PIDF_NS | DATA_MODEL_NS, "note") => Rule::Grant(Attribute::Note),
        (DATA_MODEL_NS, "timestamp") => Rule::Always,
        // data-model.xsd requires exactly one deviceID in a device, and RFC 5025 provides a
        // device's deviceID (and timestamp) to every watcher: a shown device keeps it.
        // `provide-deviceID` is about the deviceID of a tuple, the device a service runs on.
        (DATA_MODEL_NS, "deviceID") if kind == ElementKind::Device => Rule::Always,
        (DATA_MODEL_NS, "deviceID") => Rule::Grant(Attribute::DeviceId),
        _ => attribute_rule(ns, local),
    }
}

/// The rule for a presence attribute `{ns}local` wherever it stands.
fn attribute_rule(ns: &str, local: &str) -> Rule {
    let grant = Rule::Grant;
    match ns {
        RPID_NS => match local {
            "activities" => grant(Attribute::Activities),
            "class" => grant(Attribute::Class),
            "mood" => grant(Attribute::Mood),
            "place-is" => grant(Attribute::PlaceIs),
            "place-type" => grant(Attribute::PlaceType),
            "privacy" => grant(Attribute::Privacy),
            "relationship" => grant(Attribute::Relationship),
            "sphere" => grant(Attribute::Sphere),
            "status-icon" => grant(Attribute::StatusIcon),
            "time-offset" => grant(Attribute::TimeOffset),
            "user-input" => Rule::UserInput,
            _ => Rule::Unknown,
        },
        OMA_PIDF_NS => match local {
            "willingness" | "overriding-willingness" => grant(Attribute::Willingness),
            "network-availability" => grant(Attribute::NetworkAvailability),
            "session-participation" => grant(Attribute::SessionParticipation),
            "registration-state" => grant(Attribute::RegistrationState),
            "barring-state" => grant(Attribute::BarringState),
            _ => Rule::Unknown,
        },
        GEOPRIV_NS => grant(Attribute::Geopriv),
        _ => Rule::Unknown,
    }
}

/// Whether a selector of `selection` names the component `el` (RFC 5025 §3.3.1): by its `id`
/// (occurrence-id), its RPID class, a tuple's contact URI or its scheme, a device's deviceID.
fn admitted(
    el: &PidfElement,
    children: &[Child<'_>],
    selection: &Selection<ServiceSelector>,
) -> bool {
    let text = |ns: &str, local: &str| -> Option<Cow<'_, str>> {
        let c = children
            .iter()
            .find(|c| c.namespace == ns && c.local == local)?;
        Some(el.child_text(c))
    };
    let contact = OnceCell::new();
    let contact = || {
        contact
            .get_or_init(|| text(PIDF_NS, "contact"))
            .as_deref()
            .map(str::trim)
    };
    let class = OnceCell::new();
    let class = || {
        class
            .get_or_init(|| text(RPID_NS, "class"))
            .as_deref()
            .map(str::trim)
    };
    let device_id = OnceCell::new();
    let device_id = || {
        device_id
            .get_or_init(|| text(DATA_MODEL_NS, "deviceID"))
            .as_deref()
            .map(str::trim)
    };
    let tuple = el.kind == ElementKind::Tuple;
    selection.admits(|s| match s {
        ServiceSelector::OccurrenceId(id) => el.id() == Some(id.as_str()),
        ServiceSelector::Class(c) => class() == Some(c.as_str()),
        ServiceSelector::ServiceUri(u) => tuple && contact() == Some(u.as_str()),
        ServiceSelector::ServiceUriScheme(s) => {
            tuple
                && contact()
                    .and_then(|c| c.split_once(':'))
                    .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case(s))
        }
        ServiceSelector::DeviceId(d) => {
            el.kind == ElementKind::Device && device_id() == Some(d.as_str())
        }
    })
}

#[cfg(test)]
mod tests;
