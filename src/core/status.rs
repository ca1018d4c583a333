//! What the core tells the HTTP front about a group: its public status, or why there is none.

/// A group's public status (`.status`, docs/galene.md), without the HTTP-only
/// `location`/`endpoint`.
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
