//! Recording as the core sees it (docs/galene.md, "Recording"): the `record` and `unrecord`
//! group actions become [`ServiceRequest`]s for the owner of the core, which runs the
//! recorder; the recorder joins as a system client ([`Core::join_system`]); operators get
//! wall-ops warnings ([`Core::wall_ops`]); the recordings browser asks
//! [`Core::recording_access`] whether HTTP credentials may see a group's recordings.

use std::time::Instant;

use crate::config::{Credentials, Permission, Permissions, authenticate};
use crate::conn::ConnId;

use super::event::{JsonObject, NoticeLevel};
use super::{Core, Event, JoinFailure};

/// The username the recorder appears under.
pub const RECORDER_USERNAME: &str = "RECORDING";

/// Something the core cannot do itself and asks its owner for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceRequest {
    /// Start a recorder in this group (there is none).
    StartRecording {
        /// The group.
        group: String,
    },
    /// Remove every recorder of this group.
    StopRecording {
        /// The group.
        group: String,
    },
}

/// Whether HTTP credentials may use a group's recordings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingAccess {
    /// Valid credentials for the group, with `record`.
    Allowed,
    /// Wrong password (the answer is delayed, as for a join).
    BadPassword,
    /// Anything else: no such group, no such user, no `record`.
    Denied,
}

impl Core {
    /// The next request for the owner of the core. Drain after every call.
    pub fn poll_request(&mut self) -> Option<ServiceRequest> {
        self.requests.pop_front()
    }

    /// Marks `conn` as a client that lives in this process: messages addressed to it are
    /// refused (`this user doesn't chat`) and operators cannot change its permissions
    /// (`this is not a real user`).
    pub fn mark_local(&mut self, conn: ConnId) {
        if let Some(client) = self.clients.get_mut(&conn) {
            client.local = true;
        }
    }

    /// Joins `conn` (a local client with a client id) to `group` as a system client named
    /// `username` with the permission `system` only: no credentials, and none of the lock,
    /// opening-hours, autokick or size checks (Galène's recorder).
    pub fn join_system(
        &mut self,
        now: Instant,
        conn: ConnId,
        group: &str,
        username: &str,
    ) -> Result<(), JoinFailure> {
        match self.clients.get(&conn) {
            Some(client) if client.group.is_none() => {}
            _ => return Err(JoinFailure::Internal),
        }
        let entry = match self.directory.group(group) {
            Ok(Some(entry)) => entry,
            Ok(None) => return Err(JoinFailure::NoSuchGroup),
            Err(err) => {
                log::warn!("System join {group:?}: {err}");
                return Err(JoinFailure::Internal);
            }
        };
        let name = entry.name.clone();
        self.touch_group(now, entry);
        if let Some(client) = self.clients.get_mut(&conn) {
            client.username = Some(username.to_owned());
            let mut permissions = Permissions::new();
            permissions.add(Permission::System);
            client.permissions = permissions;
        }
        let config = self.directory.config().ok();
        self.admit(now, conn, &name, JsonObject::new(), config.as_ref())
    }

    /// Sends `text` as a warning to every operator of `group` (Galène's "wall ops").
    pub fn wall_ops(&mut self, group: &str, text: &str) {
        let ops: Vec<ConnId> = self
            .members(group)
            .iter()
            .copied()
            .filter(|m| self.clients.get(m).is_some_and(|c| c.has(Permission::Op)))
            .collect();
        for op in ops {
            self.emit(
                op,
                Event::Notice {
                    level: NoticeLevel::Warning,
                    text: text.to_owned(),
                },
            );
        }
    }

    /// Whether a system client (a recorder) is a member of `group`.
    pub fn is_recording(&self, group: &str) -> bool {
        self.members(group).iter().any(|m| {
            self.clients
                .get(m)
                .is_some_and(|c| c.has(Permission::System))
        })
    }

    /// Whether HTTP Basic credentials give access to the recordings of `group`: a user of
    /// the group (or its wildcard user) whose password matches and whose permissions
    /// include `record`.
    pub fn recording_access(
        &mut self,
        now: Instant,
        group: &str,
        username: &str,
        password: &str,
    ) -> RecordingAccess {
        let entry = match self.directory.group(group) {
            Ok(Some(entry)) => entry,
            _ => return RecordingAccess::Denied,
        };
        let credentials = Credentials {
            username: Some(username),
            password: Some(password),
            token: None,
        };
        let wall = self.clock.at(now);
        let directory = &mut self.directory;
        match authenticate(&entry, credentials, None, wall, |name| {
            directory.token(name)
        }) {
            Ok(auth) if auth.permissions.has(Permission::Record) => RecordingAccess::Allowed,
            Ok(_) => RecordingAccess::Denied,
            Err(_) => {
                let known = entry.description.users.contains_key(username)
                    || entry.description.wildcard_user.is_some();
                if known {
                    RecordingAccess::BadPassword
                } else {
                    RecordingAccess::Denied
                }
            }
        }
    }

    /// `record`: a recorder for the requester's group, unless one is there.
    pub(super) fn request_recording(&mut self, group: &str) -> Result<(), String> {
        if self.is_recording(group) {
            return Err("already recording".to_owned());
        }
        self.requests.push_back(ServiceRequest::StartRecording {
            group: group.to_owned(),
        });
        Ok(())
    }

    /// `unrecord`: every recorder of the requester's group goes.
    pub(super) fn request_stop_recording(&mut self, group: &str) {
        self.requests.push_back(ServiceRequest::StopRecording {
            group: group.to_owned(),
        });
    }
}
