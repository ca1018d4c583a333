//! What the core tells clients: typed events, each addressed to one connection.
//!
//! A signalling adapter renders every event in its own wire format (and dialect). Events
//! carry values, never wire field names; opaque JSON (chat values, user and group data) stays
//! `serde_json` values.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};

use super::GroupStatus;
use crate::config::{IceServer, Permissions, StatefulToken};

/// A JSON object, as carried in user and group data.
pub type JsonObject = Map<String, Value>;

/// One event for one client. The adapter MUST render it for the addressed connection, in
/// order; [`Event::Kicked`] additionally means the adapter MUST close the connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The client joined, left, or its view of the group changed.
    Joined(Box<Joined>),
    /// One entry of the chat history, sent right after a successful join, oldest first.
    ChatHistory(Arc<ChatEntry>),
    /// A group member appeared, changed or went away.
    User(Arc<UserEvent>),
    /// A chat message or user message forwarded from a client.
    Message(Arc<ForwardedMessage>),
    /// A server notice for this client only (an error or warning text).
    Notice {
        /// Error or warning.
        level: NoticeLevel,
        /// The text.
        text: String,
    },
    /// The chat history was (partly) cleared; `scope` is the value the operator sent, echoed
    /// back verbatim so clients can apply the same filter.
    ClearChat {
        /// The operator's value (`None` means everything).
        scope: Option<Value>,
    },
    /// A chat line from the server itself (username `Server`), addressed to this client.
    ServerChat {
        /// The text.
        text: String,
        /// When it was produced.
        time: SystemTime,
    },
    /// The answer to a token request (make or edit).
    Token(Result<StatefulToken, TokenFailure>),
    /// The tokens of the current group, sorted by expiry.
    TokenList(Vec<StatefulToken>),
    /// The answer to an `identify` action.
    UserInfo {
        /// The target's client id.
        id: String,
        /// The target's username, if known.
        username: Option<String>,
        /// The target's remote address, if known.
        address: Option<SocketAddr>,
    },
    /// The client was kicked out and is no longer in its group. The adapter MUST tell the
    /// client and close the connection.
    Kicked {
        /// The kicker's client id (`None` for the server itself).
        by_id: Option<String>,
        /// The kicker's username.
        by_username: Option<String>,
        /// The message (empty for none).
        message: String,
    },
}

/// Which `joined` notification this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinedKind {
    /// The join succeeded.
    Join,
    /// Something about the group or the client's permissions changed.
    Change,
    /// The client left the group at its own request.
    Leave,
}

/// The body of a `joined` notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    /// Join, change or leave.
    pub kind: JoinedKind,
    /// The group's name.
    pub group: String,
    /// The client's username in the group.
    pub username: Option<String>,
    /// The client's permissions.
    pub permissions: Permissions,
    /// The group's status as members see it.
    pub status: JoinedStatus,
    /// The group's shared data (`None` when empty).
    pub data: Option<Arc<JsonObject>>,
    /// What the client should use for its peer connections.
    pub rtc: Arc<RtcConfiguration>,
}

/// A group's status inside a `joined` notification: always with the client count, with the
/// lock flag, and with whether passwords may be changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedStatus {
    /// The same fields the HTTP status has.
    pub group: GroupStatus,
    /// Whether the change-password page works (global `writableGroups`).
    pub can_change_password: bool,
}

/// The WebRTC configuration clients receive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RtcConfiguration {
    /// STUN/TURN servers with credentials.
    pub ice_servers: Vec<IceServer>,
    /// Whether only relayed candidates may be used (`-relay-only`).
    pub relay_only: bool,
}

/// The kind of a member notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserEventKind {
    /// The member joined (or is listed to a newcomer).
    Add,
    /// Its permissions or data changed.
    Change,
    /// It left.
    Delete,
}

/// A member notification.
#[derive(Debug, Clone, PartialEq)]
pub struct UserEvent {
    /// Add, change or delete.
    pub kind: UserEventKind,
    /// The member's client id.
    pub id: String,
    /// The member's username.
    pub username: Option<String>,
    /// The member's permissions (empty for delete).
    pub permissions: Permissions,
    /// The member's data (empty for delete).
    pub data: Arc<JsonObject>,
}

/// Whether a client message is a chat line or a user message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// A chat line (kept in the history when broadcast).
    Chat,
    /// A user message (never kept).
    UserMessage,
}

/// A chat line or user message as forwarded to its recipients.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardedMessage {
    /// Chat or user message.
    pub kind: MessageKind,
    /// The message id (client supplied, or generated for broadcast chat).
    pub id: Option<String>,
    /// The sender's client id.
    pub source: String,
    /// The recipient's client id, empty for a broadcast.
    pub dest: String,
    /// The sender's username.
    pub username: Option<String>,
    /// Whether the sender is an operator.
    pub privileged: bool,
    /// When the server forwarded it.
    pub time: SystemTime,
    /// The sub-kind (`""`, `me`, `caption`, `mute`, ...), not interpreted.
    pub subkind: String,
    /// Whether the sender asked not to get its own copy.
    pub noecho: bool,
    /// The payload, not interpreted.
    pub value: Option<Value>,
}

/// One entry of a group's chat history.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatEntry {
    /// The message id.
    pub id: String,
    /// The sender's client id.
    pub source: String,
    /// The sender's username.
    pub username: Option<String>,
    /// When it was sent.
    pub time: SystemTime,
    /// The chat sub-kind.
    pub subkind: String,
    /// The payload.
    pub value: Option<Value>,
}

/// The severity of a server notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeLevel {
    /// Something the client asked for failed.
    Error,
    /// Information the client should see.
    Warning,
}

/// Why a token request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFailure {
    /// The machine-readable class.
    pub class: TokenFailureClass,
    /// The human-readable text.
    pub text: String,
}

/// The class of a token failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFailureClass {
    /// The requester lacks a permission.
    NotAuthorised,
    /// Anything else (bad value, wrong group, ...).
    Error,
}
