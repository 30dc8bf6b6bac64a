//! Presence authorization (the seed's §6.1.5): a presentity's pres-rules document (RFC 5025 on
//! common-policy, RFC 4745, with OMA's extensions) decides whether a watcher may subscribe
//! (`sub-handling`) and what it sees (the `provide-*` transformations).
//!
//! A rules document is parsed once per change into a [`RuleSet`]; a watcher's [`Decision`] is
//! the combination of every rule whose conditions match it (RFC 4745 §10: the most permissive
//! `sub-handling`, the union of permissions), not the first match. Equal [`Permissions`] are one
//! view: watchers holding the same permissions share one filtered, encoded document.

mod decide;
mod filter;
mod permissions;
mod rules;
#[cfg(test)]
mod tests;

pub use decide::{Context, Decision, ListMembership, NoLists, Requester, decide};
pub use filter::{GEOPRIV_NS, OMA_PIDF_NS, RPID_NS, filter};
pub use permissions::{Attribute, Permissions, Selection, ServiceSelector, UserInput};
pub use rules::{Condition, IdentityCondition, Rule, RuleSet, SubHandling};

pub use crate::xcap::usages::pres_rules::{CP_NS, OCP_NS, OMA_PR_NS, PR_NS};
