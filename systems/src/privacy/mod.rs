//! Presence authorization (the seed's §6.1.5): a presentity's pres-rules document (RFC 5025 on
//! common-policy, RFC 4745, with OMA's extensions) decides whether a watcher may subscribe
//! (`sub-handling`) and what it sees (the `provide-*` transformations).
//!
//! A rules document is parsed once per change into a [`RuleSet`]; a watcher's [`Decision`] is
//! the combination of every rule whose conditions match it (RFC 4745 §10: the most permissive
//! `sub-handling`, the union of permissions), not the first match. Equal [`Permissions`] are one
//! view: watchers holding the same permissions share one filtered, encoded document.

pub mod authorize;
pub mod book;
mod config;
mod decide;
pub mod filter;
mod permissions;
mod rules;
mod sphere;
#[cfg(test)]
mod tests;
pub mod views;

pub use authorize::{
    AssertedIdentity, Placement, admit, allows, place, refreshed, release, restored,
};
pub use book::{RuleBook, Rules};
pub use config::PrivacyConfig;
pub use decide::{Context, Decision, ListMembership, NoLists, Requester, decide};
pub use filter::{GEOPRIV_NS, OMA_PIDF_NS, RPID_NS, filter};
pub use permissions::{Attribute, Permissions, Selection, ServiceSelector, UserInput};
pub use rules::{Condition, IdentityCondition, Rule, RuleSet, SubHandling};

pub use crate::xcap::usages::pres_rules::{CP_NS, OCP_NS, OMA_PR_NS, PR_NS};
pub use views::{Filterings, PendingWatchers, Shown, View, Views};

use bevy_ecs::prelude::*;

use crate::pipeline::Pipeline;

/// Add presence authorization to an engine that serves presence and XDM documents (after
/// [`crate::presence::feature`] and [`crate::xdm::feature`]).
pub fn feature(config: PrivacyConfig) -> impl FnOnce(&mut World, &mut Schedule) {
    move |world, schedule| {
        assert!(
            world.contains_resource::<crate::xdm::DocumentIndex>(),
            "privacy follows XDM documents: add the xdm feature first"
        );
        world.insert_resource(config);
        let hash_seed = world.resource::<crate::EngineConfig>().hash_seed;
        world.insert_resource(RuleBook::new(hash_seed));
        world.init_resource::<Filterings>();
        world.init_resource::<PendingWatchers>();
        // rules are current before this tick's SUBSCRIBEs are decided
        schedule.add_systems(
            book::follow_rules
                .in_set(Pipeline::Ingest)
                .after(crate::xdm::apply_document_changes),
        );
        schedule.add_systems(
            (authorize::reauthorize, views::refresh_views)
                .chain()
                .in_set(Pipeline::Authorize),
        );
    }
}
