//! Who a joining client is and what it may do: [`crate::config::authenticate`]
//! (docs/configuration.md, "Authentication") with the core's token store, mapped onto join
//! failures.

use std::time::SystemTime;

use crate::config::{AuthError, Credentials, GlobalConfig, GroupEntry, Permissions, authenticate};

use super::{Core, JoinFailure, JoinRequest};

impl Core {
    /// Decides the username and permissions for a join of the group `entry`.
    pub(super) fn authenticate(
        &mut self,
        entry: &GroupEntry,
        request: &JoinRequest,
        wall: SystemTime,
        config: Option<&GlobalConfig>,
    ) -> Result<(String, Permissions), JoinFailure> {
        let credentials = Credentials {
            username: request.username.as_deref(),
            password: request.password.as_deref(),
            token: request.token.as_deref(),
        };
        let canonical_host = config.and_then(|c| c.canonical_host.as_deref());
        let directory = &mut self.directory;
        match authenticate(entry, credentials, canonical_host, wall, |name| {
            directory.token(name)
        }) {
            Ok(authenticated) => Ok((authenticated.username, authenticated.permissions)),
            Err(AuthError::NeedUsername) => Err(JoinFailure::NeedUsername),
            Err(AuthError::DuplicateUsername) => Err(JoinFailure::DuplicateUsername),
            Err(AuthError::NotAuthorised(why)) => {
                log::info!("Join {:?} refused: {why}", entry.name);
                Err(JoinFailure::NotAuthorised)
            }
            Err(AuthError::Internal(why)) => {
                log::info!("Join {:?} failed: {why}", entry.name);
                Err(JoinFailure::Internal)
            }
        }
    }
}
