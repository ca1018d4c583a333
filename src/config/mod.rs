//! Configuration that lives on disk: group descriptions (`groups/*.json`), the global
//! `data/config.json`, ICE servers (`data/ice-servers.json`) and stateful tokens
//! (`data/var/tokens.jsonl`), plus the rules that interpret them (permission presets,
//! password checks, token validation).
//!
//! Everything here is plain data and pure functions, except [`DiskDirectory`], which reads the
//! files (and re-reads them when their size or modification time change) through a
//! [`FileCache`] that the runtime refreshes off the executor thread. The rest of the
//! server sees the files only through the [`Directory`] trait, so the core can be tested with
//! the in-memory [`MemoryDirectory`].
//!
//! Submodules (their main public items are also re-exported here):
//!
//! - `names`: validity of group names and usernames (docs/configuration.md, "Names").
//! - `permissions`: permission presets and their per-group expansion ("Permissions and presets").
//! - `password`: the stored password forms and checking a password against them ("Passwords").
//! - `group`: parsing group description files, with the obsolete fields upgraded ("Group files").
//! - `global`: parsing `config.json` ("`data/config.json`").
//! - `ice`: parsing `ice-servers.json` and minting `hmac-sha1` TURN credentials ("ICE servers").
//! - `token`: stateful tokens and their `tokens.jsonl` store ("Tokens").
//! - `jwt`: JWT verification with a group's `authKeys` ("Tokens").
//! - `auth`: the authentication decision, [`authenticate`] ("Authentication").
//! - `dir`: [`DiskDirectory`] and [`MemoryDirectory`], with auto-subgroups ("Reloading",
//!   "Auto-subgroups").
//! - `edit`: editing group files and `config.json` as the admin API does (pure functions of
//!   the old text and the request).
//! - `cache`: [`FileCache`], the files as last seen, refreshed by the runtime before the
//!   inputs that read them, so that the engine's thread does not wait on the disk.
//! - `camus`: the Camus chat rooms, `data/camus-rooms.json` (not part of Galène).
//!
//! The quoted names are sections of docs/configuration.md, which describes the rules these
//! files follow (Galène's, unless it says otherwise).

pub mod auth;
pub mod cache;
pub mod camus;
pub mod dir;
pub mod edit;
mod fields;
pub mod global;
pub mod group;
pub mod ice;
pub mod jwt;
pub mod names;
pub mod password;
pub mod permissions;
#[cfg(test)]
pub(crate) mod scratch;
pub(crate) mod stamp;
pub mod token;

pub use auth::{AuthError, Authenticated, Credentials, authenticate, authenticate_with};
pub use cache::{FileCache, FileNeed, Freshness, InputScope};
pub use camus::{CamusRoom, CamusRooms};
pub use dir::{DiskDirectory, EMBEDDED_GROUP_NAME, MemoryDirectory, embedded_description};
pub use fields::{format_time, parse_time};
pub use group::{DEFAULT_CODECS, DEFAULT_MAX_HISTORY_AGE, KNOWN_CODECS};
pub use ice::{
    CredentialKind, HMAC_CREDENTIAL_LIFETIME, IceServerEntry, parse_ice_servers,
    resolve_ice_servers,
};
pub use jwt::{Jwt, LEEWAY_SECS, parse_jwt};
pub use names::{valid_group_name, valid_username};
pub use permissions::{PRESETS, UNKNOWN_PERMISSION, expand_preset};
pub use token::{TOKEN_PURGE_AGE, TokenFile, TokenRejection, parse_tokens, sort_by_expiry};

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// One permission a client can hold in a group (docs/configuration.md, "Permissions and presets").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Moderation actions; bypasses lock, expiry, autokick and max-clients.
    Op,
    /// May publish streams.
    Present,
    /// May send chat and user messages.
    Message,
    /// May send chat messages of kind `caption`.
    Caption,
    /// May create invitations (`maketoken`).
    Token,
    /// May record and access recordings.
    Record,
    /// May use the administrative API.
    Admin,
    /// Internal: the recorder pseudo-client.
    System,
}

impl Permission {
    /// The wire name (`"op"`, `"present"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Permission::Op => "op",
            Permission::Present => "present",
            Permission::Message => "message",
            Permission::Caption => "caption",
            Permission::Token => "token",
            Permission::Record => "record",
            Permission::Admin => "admin",
            Permission::System => "system",
        }
    }

    /// Parses a wire name; `None` for an unknown word.
    pub fn from_name(name: &str) -> Option<Permission> {
        Some(match name {
            "op" => Permission::Op,
            "present" => Permission::Present,
            "message" => Permission::Message,
            "caption" => Permission::Caption,
            "token" => Permission::Token,
            "record" => Permission::Record,
            "admin" => Permission::Admin,
            "system" => Permission::System,
            _ => return None,
        })
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An ordered set of permissions. Order is kept because Galène sends the list in the order the
/// preset or the explicit array gave it. Each client owns its own copy (Galène's shared-slice
/// bug is not reproduced).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions(heapless::Vec<Permission, 8>);

impl Permissions {
    /// The empty set.
    pub fn new() -> Self {
        Permissions(heapless::Vec::new())
    }

    /// Whether `p` is in the set.
    pub fn has(&self, p: Permission) -> bool {
        self.0.contains(&p)
    }

    /// Adds `p` at the end if absent.
    pub fn add(&mut self, p: Permission) {
        if !self.has(p) {
            // Cannot fail: there are 8 distinct permissions and capacity 8.
            let _ = self.0.push(p);
        }
    }

    /// Adds `p` at the front if absent (Galène prepends `record` and `token`).
    pub fn prepend(&mut self, p: Permission) {
        if !self.has(p) {
            // Cannot fail: there are 8 distinct permissions and capacity 8.
            let _ = self.0.insert(0, p);
        }
    }

    /// Removes `p` if present.
    pub fn remove(&mut self, p: Permission) {
        self.0.retain(|q| *q != p);
    }

    /// The permissions in order.
    pub fn iter(&self) -> impl Iterator<Item = Permission> + '_ {
        self.0.iter().copied()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Permission> for Permissions {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = Permissions::new();
        for p in iter {
            set.add(p);
        }
        set
    }
}

/// What a user entry or token says about permissions: a preset name or an explicit list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionsSpec {
    /// A preset (`op`, `present`, `message`, `observe`, `caption`, `admin`), expanded per group.
    Preset(String),
    /// An explicit list, used verbatim.
    List(Permissions),
}

/// A stored password (docs/configuration.md, "Passwords").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// Plain text, compared in constant time.
    Plain(String),
    /// PBKDF2 with HMAC-SHA-256.
    Pbkdf2 {
        /// Derived key.
        key: Vec<u8>,
        /// Salt.
        salt: Vec<u8>,
        /// Iteration count.
        iterations: u32,
    },
    /// A bcrypt hash (`$2a$...`).
    Bcrypt(String),
    /// Any password matches, including the empty one.
    Wildcard,
}

/// A user entry in a group file or in `config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserEntry {
    /// The password; `None` means the user cannot log in with a password.
    pub password: Option<Password>,
    /// The permissions; `None` means no permissions.
    pub permissions: Option<PermissionsSpec>,
}

/// A parsed group description file (docs/configuration.md, "Group files"), after the obsolete
/// fields were upgraded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Description {
    /// Password users.
    pub users: BTreeMap<String, UserEntry>,
    /// The user for any name not in `users`.
    pub wildcard_user: Option<UserEntry>,
    /// Title shown in the UI.
    pub display_name: Option<String>,
    /// Shown on the landing page.
    pub description: Option<String>,
    /// Informational.
    pub contact: Option<String>,
    /// Listed in `/public-groups.json`.
    pub public: bool,
    /// Where the group moved to.
    pub redirect: Option<String>,
    /// 0 means unlimited.
    pub max_clients: usize,
    /// Chat history retention and idle expiry, in seconds (default 14400).
    pub max_history_age: Option<u64>,
    /// After this instant non-op joins fail.
    pub expires: Option<SystemTime>,
    /// Before this instant non-op joins fail.
    pub not_before: Option<SystemTime>,
    /// The `op` preset gains `record`.
    pub allow_recording: bool,
    /// The `present` preset gains `token`.
    pub unrestricted_tokens: bool,
    /// Subgroups are created on demand.
    pub auto_subgroups: bool,
    /// Lock whenever no operator is present.
    pub autolock: bool,
    /// Kick everyone whenever no operator is present.
    pub autokick: bool,
    /// JWKs for token validation, as given in the file.
    pub auth_keys: Vec<serde_json::Value>,
    /// Client-side authentication server.
    pub auth_server: Option<String>,
    /// Authentication portal.
    pub auth_portal: Option<String>,
    /// Codec names, lower case, known ones only; default `["vp8", "opus"]`.
    pub codecs: Vec<String>,
}

/// A group as the rest of the server sees it.
#[derive(Debug, Clone)]
pub struct GroupEntry {
    /// The group's name, e.g. `"teaching/networking"`.
    pub name: String,
    /// The description (for an auto-subgroup: the parent's, with `public` false and no
    /// `description`).
    pub description: Arc<Description>,
    /// Whether this group is an auto-subgroup of a group file.
    pub is_subgroup: bool,
    /// Changes whenever the description was re-read from disk; compare to notice reloads.
    pub revision: u64,
}

/// The global `data/config.json` (docs/configuration.md, "`data/config.json`").
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GlobalConfig {
    /// Users; only `admin` permission matters.
    pub users: BTreeMap<String, UserEntry>,
    /// Enables write operations of the admin API and `canChangePassword`.
    pub writable_groups: bool,
    /// Origins allowed for `/ws` besides the same host.
    pub allow_origin: Vec<String>,
    /// Origins allowed for the admin API.
    pub allow_admin_origin: Vec<String>,
    /// External base URL.
    pub proxy_url: Option<String>,
    /// The one host name clients should use.
    pub canonical_host: Option<String>,
}

/// One entry of `rtcConfiguration.iceServers`, credentials already computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:`/`turn:`/`turns:` URLs.
    pub urls: Vec<String>,
    /// Username, if any.
    pub username: Option<String>,
    /// Credential, if any.
    pub credential: Option<String>,
    /// `None` for password credentials, `Some("oauth")` otherwise.
    pub credential_type: Option<String>,
}

/// A stateful token (invitation), one line of `tokens.jsonl` (docs/configuration.md, "Tokens").
#[derive(Debug, Clone, PartialEq)]
pub struct StatefulToken {
    /// The token's name (what the client sends).
    pub token: String,
    /// The group it is valid for; `""` is global.
    pub group: String,
    /// Also valid for subgroups.
    pub include_subgroups: bool,
    /// Username it forces, if any.
    pub username: Option<String>,
    /// Permissions it grants, verbatim (`None` is written as `null`).
    pub permissions: Option<Permissions>,
    /// Required; the token is invalid after it.
    pub expires: Option<SystemTime>,
    /// The token is invalid before it.
    pub not_before: Option<SystemTime>,
    /// When it was made.
    pub issued_at: Option<SystemTime>,
    /// Who made it.
    pub issued_by: Option<String>,
}

/// An error reading or interpreting configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The file exists but is not valid (syntax, unknown field, bad value); the text says why.
    Invalid(String),
    /// Reading or writing failed.
    Io(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Invalid(why) => write!(f, "invalid configuration: {why}"),
            ConfigError::Io(why) => write!(f, "I/O error: {why}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Everything the server reads from (and writes to) its `groups/` and `data/` directories.
///
/// Implementations re-read a file when its size or modification time changed since the last
/// call, so callers simply call again whenever they need fresh data.
pub trait Directory {
    /// Looks up a group by name, resolving auto-subgroups (docs/configuration.md). `Ok(None)` when
    /// no such group exists or the name is invalid.
    fn group(&mut self, name: &str) -> Result<Option<GroupEntry>, ConfigError>;
    /// Names of every group whose file says `public: true` (walks the groups directory).
    fn public_group_names(&mut self) -> Vec<String>;
    /// The global configuration (default when `config.json` does not exist).
    fn config(&mut self) -> Result<Arc<GlobalConfig>, ConfigError>;
    /// The ICE servers for `rtcConfiguration`, with `hmac-sha1` credentials computed for `now`.
    fn ice_servers(&mut self, now: SystemTime) -> Vec<IceServer>;
    /// Looks up a stateful token by name.
    fn token(&mut self, name: &str) -> Option<StatefulToken>;
    /// Appends a new stateful token.
    fn add_token(&mut self, token: StatefulToken) -> Result<(), ConfigError>;
    /// Replaces a stateful token with the same name; `Ok(false)` when it does not exist.
    fn update_token(&mut self, token: StatefulToken) -> Result<bool, ConfigError>;
    /// All stateful tokens of a group (every token when `group` is empty), sorted by expiry.
    fn tokens_of_group(&mut self, group: &str) -> Vec<StatefulToken>;
    /// Deletes a stateful token; `Ok(false)` when it does not exist.
    fn delete_token(&mut self, name: &str) -> Result<bool, ConfigError>;
    /// Purges tokens that expired more than [`TOKEN_PURGE_AGE`] before `now` (Galène does
    /// this every 15 minutes); returns how many were removed.
    fn expire_tokens(&mut self, now: SystemTime) -> Result<usize, ConfigError>;
    /// The Camus chat rooms (`data/camus-rooms.json`, see [`camus`]). The default, for
    /// directories without such a file, is no rooms and no creation on first use.
    fn camus_rooms(&mut self) -> Result<Arc<CamusRooms>, ConfigError> {
        Ok(Arc::default())
    }
    /// The cache the files are read through, for the runtime to refresh before the inputs
    /// that read them; `None` (the default) for directories without files.
    fn file_cache(&self) -> Option<FileCache> {
        None
    }
}
