//! A pres-rules document in evaluated form: parsed once per change of the document, then
//! matched against each watcher without touching XML again.

use super::permissions::{Attribute, Permissions, Selection, ServiceSelector, UserInput};
use super::{CP_NS, OCP_NS, OMA_PR_NS, PR_NS};
use crate::sip::identity::identity_key;
use crate::xcap::dom::{Document, Element};

/// `sub-handling` (RFC 5025 §3.2.1), ordered from least to most permissive: combining takes
/// the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubHandling {
    /// Rejected: 403 to a SUBSCRIBE, `terminated;reason=rejected` for a live subscription.
    Block,
    /// Pending until the presentity decides.
    Confirm,
    /// Accepted, shown a document that reveals nothing.
    PoliteBlock,
    /// Accepted and shown what its permissions allow.
    Allow,
}

impl SubHandling {
    /// From the element's text (whitespace collapsed).
    pub fn parse(s: &str) -> Option<SubHandling> {
        Some(match s.trim() {
            "block" => SubHandling::Block,
            "confirm" => SubHandling::Confirm,
            "polite-block" => SubHandling::PoliteBlock,
            "allow" => SubHandling::Allow,
            _ => return None,
        })
    }

    /// The element's text.
    pub fn as_str(self) -> &'static str {
        match self {
            SubHandling::Block => "block",
            SubHandling::Confirm => "confirm",
            SubHandling::PoliteBlock => "polite-block",
            SubHandling::Allow => "allow",
        }
    }
}

/// `<identity>` (RFC 4745 §7.1): matches when any of its `one` or `many` children does.
/// Identities are kept as [`identity_key`]s, so that a watcher is compared by equality.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentityCondition {
    /// `<one id="…">`: these identities.
    pub one: Vec<Vec<u8>>,
    /// `<many domain="…">` (None: any domain), with the identities and domains it excepts.
    pub many: Vec<Many>,
}

/// One `<many>` of an identity condition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Many {
    /// `domain`; None matches every authenticated identity.
    pub domain: Option<String>,
    /// `<except id="…">`, as identity keys.
    pub except_ids: Vec<Vec<u8>>,
    /// `<except domain="…">`.
    pub except_domains: Vec<String>,
}

/// One child of `<conditions>`; a rule matches when all of its conditions do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `<identity>`.
    Identity(IdentityCondition),
    /// `<sphere value="…">`: the presentity's current sphere is one of these tokens.
    Sphere(Vec<String>),
    /// `<validity>`: now lies in one of these [from, until) intervals, Unix seconds.
    Validity(Vec<(i64, i64)>),
    /// OMA `<external-list>`: the watcher is in one of these lists (`anc` URIs of
    /// resource-lists in the Shared XDMS).
    ExternalList(Vec<String>),
    /// OMA `<anonymous-request>`: the request is anonymous.
    AnonymousRequest,
    /// OMA `<other-identity>`: an identified watcher that no identity or external-list
    /// condition of another rule names.
    OtherIdentity,
    /// A condition this server does not know, or one it cannot read: never matches (RFC 4745
    /// §7 with erratum 5208: an unsupported condition evaluates to false).
    Unsupported,
}

/// One `<rule>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The rule's `id`.
    pub id: String,
    /// All must match; an empty list matches every request (RFC 4745 §10.1).
    pub conditions: Vec<Condition>,
    /// `sub-handling`, when the rule has one.
    pub sub_handling: Option<SubHandling>,
    /// What the rule's transformations grant.
    pub permissions: Permissions,
}

/// A presentity's rules, in document order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleSet {
    /// The rules.
    pub rules: Vec<Rule>,
}

impl RuleSet {
    /// The rules of a pres-rules document (either AUID). Anything that is not a rule of the
    /// common-policy namespace is ignored; documents are schema-checked when written, so this
    /// only has to read, not judge.
    pub fn from_document(doc: &Document) -> RuleSet {
        if !doc.root.is(CP_NS, "ruleset") {
            return RuleSet::default();
        }
        let rules = doc
            .root
            .child_elements()
            .filter(|(_, e)| e.is(CP_NS, "rule"))
            .map(|(_, e)| rule(e))
            .collect();
        RuleSet { rules }
    }

    /// Whether any rule refers to an external list (the set must be re-evaluated when one of
    /// those lists changes).
    pub fn external_lists(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .flat_map(|r| r.conditions.iter())
            .filter_map(|c| match c {
                Condition::ExternalList(l) => Some(l.iter().map(String::as_str)),
                _ => None,
            })
            .flatten()
    }
}

fn children<'a>(el: &'a Element, ns: &'a str, local: &'a str) -> impl Iterator<Item = &'a Element> {
    el.child_elements()
        .map(|(_, e)| e)
        .filter(move |e| e.is(ns, local))
}

fn rule(el: &Element) -> Rule {
    let mut r = Rule {
        id: el.attr("id").unwrap_or_default().to_owned(),
        conditions: Vec::new(),
        sub_handling: None,
        permissions: Permissions::default(),
    };
    for c in children(el, CP_NS, "conditions") {
        r.conditions
            .extend(c.child_elements().map(|(_, e)| condition(e)));
    }
    for a in children(el, CP_NS, "actions") {
        for s in children(a, PR_NS, "sub-handling") {
            // one per rule by the schema; should a document hold more, the most permissive
            r.sub_handling = r.sub_handling.max(SubHandling::parse(&s.text()));
        }
    }
    for t in children(el, CP_NS, "transformations") {
        for (_, p) in t.child_elements() {
            transformation(p, &mut r.permissions);
        }
    }
    r.permissions.canonicalize();
    r
}

fn condition(el: &Element) -> Condition {
    match (el.ns.as_deref(), &*el.local) {
        (Some(CP_NS), "identity") => Condition::Identity(identity(el)),
        (Some(CP_NS), "sphere") => match el.attr("value") {
            Some(v) => Condition::Sphere(v.split_ascii_whitespace().map(str::to_owned).collect()),
            None => Condition::Unsupported,
        },
        (Some(CP_NS), "validity") => {
            validity(el).map_or(Condition::Unsupported, Condition::Validity)
        }
        (Some(OCP_NS), "external-list") => Condition::ExternalList(
            children(el, OCP_NS, "entry")
                .filter_map(|e| e.attr("anc"))
                .map(str::to_owned)
                .collect(),
        ),
        (Some(OCP_NS), "anonymous-request") => Condition::AnonymousRequest,
        (Some(OCP_NS), "other-identity") => Condition::OtherIdentity,
        _ => Condition::Unsupported,
    }
}

fn identity(el: &Element) -> IdentityCondition {
    let mut id = IdentityCondition::default();
    for (_, c) in el.child_elements() {
        if c.is(CP_NS, "one") {
            id.one.extend(c.attr("id").and_then(identity_key));
        } else if c.is(CP_NS, "many") {
            let mut m = Many {
                domain: c.attr("domain").map(str::to_owned),
                ..Many::default()
            };
            for x in children(c, CP_NS, "except") {
                m.except_ids.extend(x.attr("id").and_then(identity_key));
                m.except_domains.extend(x.attr("domain").map(str::to_owned));
            }
            id.many.push(m);
        }
    }
    id
}

/// The (from, until) pairs; None when one cannot be read (the condition then never matches).
fn validity(el: &Element) -> Option<Vec<(i64, i64)>> {
    let times: Vec<&Element> = el.child_elements().map(|(_, e)| e).collect();
    times
        .chunks(2)
        .map(|pair| match pair {
            [f, u] if f.is(CP_NS, "from") && u.is(CP_NS, "until") => {
                Some((date_time(&f.text())?, date_time(&u.text())?))
            }
            _ => None,
        })
        .collect()
}

/// An xs:dateTime as Unix seconds. RFC 4745 §7.3 requires a time zone; one without is read as
/// UTC rather than refused.
pub(super) fn date_time(s: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    let zoned = s.ends_with('Z') || s.ends_with('z') || {
        let t = s.rfind('T').map_or("", |i| &s[i..]);
        t.contains('+') || t.contains('-')
    };
    let parsed = if zoned {
        time::OffsetDateTime::parse(s, &Rfc3339)
    } else {
        time::OffsetDateTime::parse(&format!("{s}Z"), &Rfc3339)
    };
    parsed.ok().map(|t| t.unix_timestamp())
}

fn transformation(el: &Element, p: &mut Permissions) {
    let text = || el.text();
    let yes = || matches!(text().trim(), "true" | "1");
    match el.ns.as_deref() {
        Some(PR_NS) => match &*el.local {
            "provide-services" => p.services.union(&selection(el, "all-services")),
            "provide-persons" => p.persons.union(&selection(el, "all-persons")),
            "provide-devices" => p.devices.union(&selection(el, "all-devices")),
            "provide-all-attributes" => p.all_attributes = true,
            "provide-user-input" => {
                p.user_input = p
                    .user_input
                    .max(UserInput::parse(text().trim()).unwrap_or_default())
            }
            "provide-unknown-attribute" => {
                if let (Some(ns), Some(name), true) = (el.attr("ns"), el.attr("name"), yes()) {
                    p.unknown_attributes
                        .insert((ns.to_owned(), name.to_owned()));
                }
            }
            name => {
                if let Some(&(_, a)) = Attribute::IETF.iter().find(|(n, _)| *n == name)
                    && yes()
                {
                    p.grant(a);
                }
            }
        },
        Some(OMA_PR_NS) => {
            if let Some(&(_, a)) = Attribute::OMA.iter().find(|(n, _)| *n == &*el.local) {
                // booleans, except provide-geopriv's scale, where anything but false grants
                if !matches!(text().trim(), "false" | "0" | "") {
                    p.grant(a);
                }
            }
        }
        _ => {}
    }
}

/// A provide-services / -persons / -devices element: its `all-*` child, or its selectors.
fn selection(el: &Element, all: &str) -> Selection<ServiceSelector> {
    if children(el, PR_NS, all).next().is_some() {
        return Selection::All;
    }
    let set: std::collections::BTreeSet<ServiceSelector> = el
        .child_elements()
        .filter(|(_, e)| e.ns.as_deref() == Some(PR_NS))
        .filter_map(|(_, e)| {
            let v = e.text().trim().to_owned();
            Some(match &*e.local {
                "service-uri" => ServiceSelector::ServiceUri(v),
                "service-uri-scheme" => ServiceSelector::ServiceUriScheme(v.to_ascii_lowercase()),
                "occurrence-id" => ServiceSelector::OccurrenceId(v),
                "class" => ServiceSelector::Class(v),
                "deviceID" => ServiceSelector::DeviceId(v),
                _ => return None,
            })
        })
        .collect();
    if set.is_empty() {
        Selection::Nothing
    } else {
        Selection::Some(set)
    }
}
