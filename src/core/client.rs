//! One signalling client as the core sees it, whatever protocol it speaks.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{Permission, Permissions};
use crate::conn::ConnId;

use super::event::JsonObject;

/// Which tracks of a stream a receiver wants (version "2" requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrackSelection {
    /// The first audio track.
    pub audio: bool,
    /// The first video track.
    pub video: bool,
    /// The last video track (the low simulcast layer).
    pub video_low: bool,
}

/// What a client asked to receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRequest {
    /// Per stream label (key `""` is the default for labels not listed).
    ByStreamLabel(BTreeMap<String, TrackSelection>),
    /// Per track label (seed dialect: `audio`, `video`, `screenshare`).
    ByTrackLabel(BTreeSet<String>),
}

/// A client: identity, permissions and per-group state.
#[derive(Debug, Clone)]
pub struct Client {
    conn: ConnId,
    pub(super) id: String,
    pub(super) username: Option<String>,
    pub(super) permissions: Permissions,
    pub(super) data: Arc<JsonObject>,
    pub(super) remote: Option<SocketAddr>,
    pub(super) group: Option<String>,
    pub(super) request: Option<StreamRequest>,
    /// Lives in this process (a recorder, a WHIP client), not behind a WebSocket: it reads
    /// no messages and its permissions are not an operator's to change.
    pub(super) local: bool,
}

impl Client {
    /// A new client that has not said who it is yet.
    pub fn new(conn: ConnId, remote: Option<SocketAddr>) -> Client {
        Client {
            conn,
            id: String::new(),
            username: None,
            permissions: Permissions::new(),
            data: Arc::new(JsonObject::new()),
            remote,
            group: None,
            request: None,
            local: false,
        }
    }

    /// The connection handle.
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// The client id it announced (empty when none).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its username, once it tried to join.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// Its own copy of its permissions.
    pub fn permissions(&self) -> &Permissions {
        &self.permissions
    }

    /// Whether it holds `p`.
    pub fn has(&self, p: Permission) -> bool {
        self.permissions.has(p)
    }

    /// Its user data (`data` / seed `status`).
    pub fn data(&self) -> &Arc<JsonObject> {
        &self.data
    }

    /// Where it connected from.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// The group it is in.
    pub fn group(&self) -> Option<&str> {
        self.group.as_deref()
    }

    /// Whether it lives in this process rather than behind a WebSocket.
    pub fn is_local(&self) -> bool {
        self.local
    }

    /// What it asked to receive.
    pub fn request(&self) -> Option<&StreamRequest> {
        self.request.as_ref()
    }

    /// Forgets everything that belongs to a group membership.
    pub(super) fn reset_membership(&mut self) {
        self.group = None;
        self.permissions = Permissions::new();
        self.data = Arc::new(JsonObject::new());
        self.request = None;
    }
}
