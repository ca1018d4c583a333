//! What the HTTP front needs to know about groups, as a trait the application implements.

use std::sync::Arc;
use std::time::Instant;

use crate::config::{ConfigError, GlobalConfig};
use crate::core::{GroupLookup, GroupStatus, RecordingAccess};

/// The group data HTTP needs. The application facade implements it; tests use a fake.
pub trait GroupSource {
    /// Looks a group up .
    fn group_status(&mut self, now: Instant, name: &str) -> GroupLookup;
    /// Every public group, sorted by name.
    fn public_groups(&mut self, now: Instant) -> Vec<GroupStatus>;
    /// The global configuration.
    fn global_config(&mut self) -> Result<Arc<GlobalConfig>, ConfigError>;
    /// The JSON of `/galene-api/v0/.stats`; no groups by default.
    fn stats_json(&mut self) -> String {
        "[]".to_owned()
    }
    /// Whether HTTP Basic credentials may use `group`'s recordings; nobody by default.
    fn recording_access(
        &mut self,
        now: Instant,
        group: &str,
        username: &str,
        password: &str,
    ) -> RecordingAccess {
        let _ = (now, group, username, password);
        RecordingAccess::Denied
    }
}
