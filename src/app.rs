//! The application facade: the one sans-IO object the runtime drives.
//!
//! `App` owns the protocol-neutral core and every signalling adapter. The runtime (`run/`)
//! feeds it what arrives on sockets and what time it is, and drains what it must send. It
//! never reads the clock and never touches a socket.
//!
//! SKELETON: signatures agreed between modules; bodies are filled in by the core work.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::config::{ConfigError, Directory, GlobalConfig};

/// A handle for one signalling connection (any protocol). Never reused within a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// What the runtime must do for a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnOutput {
    /// Send one text frame.
    Text(String),
    /// Send a close frame with this code and reason, then close the socket. Nothing more will
    /// be output for this connection.
    Close {
        /// WebSocket close code (1000, 1002, 1011, ...).
        code: u16,
        /// Close reason.
        reason: String,
    },
}

/// Options fixed at start-up.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    /// `-relay-only`: tell clients `iceTransportPolicy: "relay"`.
    pub relay_only: bool,
}

/// A group's public status (galene.md §2.5), without the HTTP-only `location`/`endpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupStatus {
    /// Group name.
    pub name: String,
    /// Redirect target; when set only name, redirect, display name and description are shown.
    pub redirect: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Description (never for auto-subgroups).
    pub description: Option<String>,
    /// Client-side auth server.
    pub auth_server: Option<String>,
    /// Auth portal.
    pub auth_portal: Option<String>,
    /// Whether the group is public (then `locked` and `clientCount` are shown over HTTP).
    pub public: bool,
    /// Whether the group is locked.
    pub locked: bool,
    /// Number of clients in the group.
    pub client_count: usize,
}

/// The result of looking a group up for HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupLookup {
    /// No such group (or an invalid name).
    NotFound,
    /// The group file exists but cannot be parsed.
    Invalid(String),
    /// The group and its status.
    Found(GroupStatus),
}

/// The sans-IO application.
pub struct App {
    _private: (),
}

impl App {
    /// Creates the application over a configuration directory.
    pub fn new(
        directory: Box<dyn Directory>,
        options: AppOptions,
        now: Instant,
        wall: SystemTime,
    ) -> App {
        let _ = (directory, options, now, wall);
        todo!()
    }

    /// Registers a new Galène WebSocket connection (after the upgrade).
    pub fn galene_connect(&mut self, now: Instant, remote: Option<SocketAddr>) -> ConnId {
        let _ = (now, remote);
        todo!()
    }

    /// A text frame arrived on a connection.
    pub fn handle_text(&mut self, now: Instant, conn: ConnId, text: &str) {
        let _ = (now, conn, text);
        todo!()
    }

    /// A binary frame arrived on a connection.
    pub fn handle_binary(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        let _ = (now, conn, data);
        todo!()
    }

    /// The connection is gone (closed by the peer, an I/O error, or after our own `Close`).
    pub fn handle_disconnect(&mut self, now: Instant, conn: ConnId) {
        let _ = (now, conn);
        todo!()
    }

    /// Time passed; run whatever timers are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        todo!()
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }

    /// The next thing to send. Call until `None` after every `handle_*`.
    pub fn poll_output(&mut self) -> Option<(ConnId, ConnOutput)> {
        todo!()
    }

    /// Looks a group up for the HTTP layer (page, `.status`).
    pub fn group_status(&mut self, now: Instant, name: &str) -> GroupLookup {
        let _ = (now, name);
        todo!()
    }

    /// Status of every public group, sorted by name.
    pub fn public_groups(&mut self, now: Instant) -> Vec<GroupStatus> {
        let _ = now;
        todo!()
    }

    /// The global configuration.
    pub fn global_config(&mut self) -> Result<Arc<GlobalConfig>, ConfigError> {
        todo!()
    }

    /// Server shutdown: lock every group with `message` and kick every client with it.
    pub fn shutdown(&mut self, now: Instant, message: &str) {
        let _ = (now, message);
        todo!()
    }
}
