//! Privacy settings.

use bevy_ecs::prelude::Resource;

use super::SubHandling;

/// How subscriptions are decided when no rule says.
#[derive(Resource, Debug, Clone)]
pub struct PrivacyConfig {
    /// The `sub-handling` of a watcher no rule gives one (OMA: confirm, the presentity
    /// decides).
    pub default_handling: SubHandling,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            default_handling: SubHandling::Confirm,
        }
    }
}
