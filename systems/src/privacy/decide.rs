//! Matching a watcher against a [`RuleSet`] and combining what every matching rule says
//! (RFC 4745 §10).

use super::permissions::Permissions;
use super::rules::{Condition, IdentityCondition, RuleSet, SubHandling};
use crate::sip::identity::{host_of, identity_key};

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester<'a> {
    /// An identified watcher: its asserted or authenticated URI.
    Identity(&'a str),
    /// An anonymous request (RFC 3323, `sip:anonymous@anonymous.invalid`): only OMA's
    /// `anonymous-request` condition (and a rule without conditions) matches it.
    Anonymous,
}

/// What rules are evaluated against, beside the rules themselves. Time comes in, as
/// everywhere in the engine.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The watcher.
    pub requester: Requester<'a>,
    /// Wall-clock now, Unix seconds (for `<validity>`).
    pub now_unix: i64,
    /// The presentity's current sphere (RPID `<sphere>`), for `<sphere>` conditions.
    pub sphere: Option<&'a str>,
}

/// Membership of the lists OMA `external-list` conditions name (resource-lists in the Shared
/// XDMS, followed live by the engine).
pub trait ListMembership {
    /// Whether `identity` is an entry of the list `anc` points at.
    fn contains(&self, anc: &str, identity: &str) -> bool;
}

/// No lists at all: every external-list condition fails.
pub struct NoLists;

impl ListMembership for NoLists {
    fn contains(&self, _: &str, _: &str) -> bool {
        false
    }
}

/// The outcome for one watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The most permissive `sub-handling` of the matching rules, or the default when none
    /// says one.
    pub handling: SubHandling,
    /// The union of the matching rules' permissions.
    pub permissions: Permissions,
    /// How many rules matched (0: the default applied).
    pub matched: usize,
}

/// Combines every rule of `rules` that matches `cx` (RFC 4745 §10.2: `sub-handling` is an
/// ordered value, its maximum wins; permissions are united). When no matching rule says a
/// `sub-handling`, `default` applies (OMA: confirm).
pub fn decide(
    rules: &RuleSet,
    cx: &Context,
    lists: &dyn ListMembership,
    default: SubHandling,
) -> Decision {
    let watcher = match cx.requester {
        Requester::Identity(uri) => Some(Watcher {
            uri,
            key: identity_key(uri),
            domain: host_of(uri),
        }),
        Requester::Anonymous => None,
    };
    let mut handling: Option<SubHandling> = None;
    let mut permissions = Permissions::default();
    let mut matched = 0;
    for (i, rule) in rules.rules.iter().enumerate() {
        let holds = rule
            .conditions
            .iter()
            .all(|c| condition_holds(c, i, rules, cx, watcher.as_ref(), lists));
        if holds {
            matched += 1;
            handling = handling.max(rule.sub_handling);
            permissions.combine(&rule.permissions);
        }
    }
    Decision {
        handling: handling.unwrap_or(default),
        permissions,
        matched,
    }
}

fn condition_holds(
    c: &Condition,
    rule: usize,
    rules: &RuleSet,
    cx: &Context,
    who: Option<&Watcher>,
    lists: &dyn ListMembership,
) -> bool {
    match c {
        Condition::Identity(id) => who.is_some_and(|w| identity_holds(id, w)),
        Condition::ExternalList(ancs) => {
            who.is_some_and(|w| ancs.iter().any(|anc| lists.contains(anc, w.uri)))
        }
        Condition::AnonymousRequest => who.is_none(),
        // OMA: no identity or external-list condition of any other rule names the watcher
        Condition::OtherIdentity => {
            who.is_some()
                && !rules.rules.iter().enumerate().any(|(j, other)| {
                    j != rule
                        && other.conditions.iter().any(|oc| {
                            matches!(oc, Condition::Identity(_) | Condition::ExternalList(_))
                                && condition_holds(oc, j, rules, cx, who, lists)
                        })
                })
        }
        Condition::Sphere(values) => cx
            .sphere
            .is_some_and(|s| values.iter().any(|v| v.eq_ignore_ascii_case(s.trim()))),
        Condition::Validity(spans) => spans
            .iter()
            .any(|&(from, until)| from <= cx.now_unix && cx.now_unix < until),
        Condition::Unsupported => false,
    }
}

/// RFC 4745 §7.1: `one` compares URIs (RFC 3261 §19.1.4 for SIP: by identity key); `many`
/// compares the domain, case-insensitively, minus its exceptions.
fn identity_holds(id: &IdentityCondition, who: &Watcher) -> bool {
    if who.key.as_ref().is_some_and(|k| id.one.contains(k)) {
        return true;
    }
    id.many.iter().any(|m| {
        let in_domain = match (&m.domain, who.domain) {
            (None, _) => true,
            (Some(d), Some(w)) => d.eq_ignore_ascii_case(w),
            (Some(_), None) => false,
        };
        in_domain
            && !who.key.as_ref().is_some_and(|k| m.except_ids.contains(k))
            && !m
                .except_domains
                .iter()
                .any(|x| who.domain.is_some_and(|w| x.eq_ignore_ascii_case(w)))
    })
}

/// An identified watcher, read once per decision.
struct Watcher<'a> {
    uri: &'a str,
    key: Option<Vec<u8>>,
    domain: Option<&'a str>,
}
