//! The protocol-neutral heart of the signalling server: groups, clients, permissions, chat
//! history, locks and tokens.
//!
//! [`Core`] is sans-IO: every method takes `now` and the wall-clock time is derived from an
//! anchor fixed at start-up ([`WallClock`]). It reads configuration only through
//! [`Directory`]. What clients must be told comes out of [`Core::poll_event`] as typed
//! [`Event`]s addressed to connections; the signalling adapters render them. Requests a
//! client may make are methods here (join, leave, chat, user and group actions); a refusal
//! comes back as an error the adapter reports to the requester.

mod actions;
mod client;
mod event;
mod group;
mod login;
mod recorder;
mod status;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;

use crate::config::{ConfigError, Directory, GlobalConfig, GroupEntry, Permission, Permissions};
use crate::conn::ConnId;

pub use actions::{
    ClearScope, GroupAction, OutgoingMessage, PermissionChange, TokenEdit, TokenRequest, TokenTime,
    UserAction,
};
pub use client::{Client, StreamRequest, TrackSelection};
pub use event::{
    ChatEntry, Event, ForwardedMessage, Joined, JoinedKind, JoinedStatus, JsonObject, MessageKind,
    NoticeLevel, RtcConfiguration, TokenFailure, TokenFailureClass, UserEvent, UserEventKind,
};
pub use group::{DEFAULT_LOCK_MESSAGE, DEFAULT_MAX_HISTORY_AGE, MAX_HISTORY};
pub use recorder::{RECORDER_USERNAME, RecordingAccess, ServiceRequest};
pub use status::{GroupLookup, GroupStatus};

use group::Group;

/// The text autokick uses, and the refusal a non-operator gets in an autokick group
/// without operators.
pub const NO_OPERATORS: &str = "there are no operators in this group";

/// Maps monotonic time to wall-clock time from one anchor taken at start-up, so the core
/// never reads the clock.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    anchor: Instant,
    wall: SystemTime,
}

impl WallClock {
    /// `anchor` and `wall` are the same moment on the two clocks.
    pub fn new(anchor: Instant, wall: SystemTime) -> WallClock {
        WallClock { anchor, wall }
    }

    /// The wall-clock time at `now`.
    pub fn at(&self, now: Instant) -> SystemTime {
        if now >= self.anchor {
            self.wall
                .checked_add(now - self.anchor)
                .unwrap_or(self.wall)
        } else {
            self.wall
                .checked_sub(self.anchor - now)
                .unwrap_or(self.wall)
        }
    }
}

/// What a client supplies to join a group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JoinRequest {
    /// The group's name.
    pub group: String,
    /// The username, if given.
    pub username: Option<String>,
    /// The password, if given.
    pub password: Option<String>,
    /// A token (JWT or stateful), if given.
    pub token: Option<String>,
    /// The client's initial user data.
    pub data: JsonObject,
}

/// Why a join failed. The client stays connected and may try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinFailure {
    /// A token without a username, and the client gave none.
    NeedUsername,
    /// The username belongs to a password user of the group.
    DuplicateUsername,
    /// Bad credentials. The adapter MUST delay this reply (200 ms) and process nothing else
    /// from the client meanwhile.
    NotAuthorised,
    /// No such group.
    NoSuchGroup,
    /// Refused for a reason the user should read (lock, not open, closed, no operators, full).
    Refused(String),
    /// Anything else (no credentials, empty or duplicate client id, configuration error).
    Internal,
    /// The group moved to this URL.
    Redirect(String),
}

impl JoinFailure {
    /// The text shown to the user.
    pub fn text(&self) -> &str {
        match self {
            JoinFailure::NeedUsername => "username required",
            JoinFailure::DuplicateUsername => "this username is taken",
            JoinFailure::NotAuthorised => "not authorised",
            JoinFailure::NoSuchGroup => "group does not exist",
            JoinFailure::Refused(text) => text,
            JoinFailure::Internal => "internal server error",
            JoinFailure::Redirect(url) => url,
        }
    }
}

/// Why a request (other than join) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionError {
    /// Tell the requester (an error notice); the connection stays open.
    Report(String),
    /// Tell the requester and close the connection normally.
    Fatal(String),
}

/// The core state machine. See the module documentation.
pub struct Core {
    directory: Box<dyn Directory>,
    relay_only: bool,
    clock: WallClock,
    clients: HashMap<ConnId, Client>,
    groups: HashMap<String, Group>,
    events: VecDeque<(ConnId, Event)>,
    /// What the core asks its owner to do (start or stop a recorder).
    requests: VecDeque<ServiceRequest>,
    ids: IdSource,
}

impl Core {
    /// A core over `directory`; `relay_only` is the `-relay-only` flag.
    pub fn new(directory: Box<dyn Directory>, relay_only: bool, clock: WallClock) -> Core {
        Core {
            directory,
            relay_only,
            clock,
            clients: HashMap::new(),
            groups: HashMap::new(),
            events: VecDeque::new(),
            requests: VecDeque::new(),
            ids: IdSource::new(),
        }
    }

    /// The wall-clock time at `now`.
    pub fn wall(&self, now: Instant) -> SystemTime {
        self.clock.at(now)
    }

    /// The configuration directory, for the other protocols' adapters (Camus rooms, ICE
    /// servers).
    pub fn directory(&mut self) -> &mut dyn Directory {
        self.directory.as_mut()
    }

    /// The cache the configuration files are read through, if the directory has files: the
    /// runtime refreshes it before the inputs that read them.
    pub fn file_cache(&self) -> Option<crate::config::FileCache> {
        self.directory.file_cache()
    }

    /// The next event to deliver. Drain after every call.
    pub fn poll_event(&mut self) -> Option<(ConnId, Event)> {
        self.events.pop_front()
    }

    /// Registers a connection.
    pub fn add_client(&mut self, conn: ConnId, remote: Option<SocketAddr>) {
        self.clients.insert(conn, Client::new(conn, remote));
    }

    /// Records the client id the connection announced.
    pub fn set_client_id(&mut self, conn: ConnId, id: String) {
        if let Some(client) = self.clients.get_mut(&conn) {
            client.id = id;
        }
    }

    /// A client by connection.
    pub fn client(&self, conn: ConnId) -> Option<&Client> {
        self.clients.get(&conn)
    }

    /// The connection is gone: leave its group (others are told) and forget it. Idempotent.
    pub fn remove_client(&mut self, now: Instant, conn: ConnId) {
        self.detach(now, conn, true);
        self.clients.remove(&conn);
    }

    /// The global configuration.
    pub fn global_config(&mut self) -> Result<Arc<GlobalConfig>, ConfigError> {
        self.directory.config()
    }

    /// Joins `request.group` with Galène's rules (docs/galene.md). On success the client
    /// receives its `joined`, the chat history, itself and the other members, and the others
    /// learn about it.
    pub fn join(
        &mut self,
        now: Instant,
        conn: ConnId,
        request: JoinRequest,
    ) -> Result<(), JoinFailure> {
        match self.clients.get(&conn) {
            Some(client) if client.group.is_none() => {}
            _ => return Err(JoinFailure::Internal),
        }
        // 1. Resolve the group.
        let entry = match self.directory.group(&request.group) {
            Ok(Some(entry)) => entry,
            Ok(None) => {
                self.forget_group_if_empty(&request.group);
                return Err(JoinFailure::NoSuchGroup);
            }
            Err(err) => {
                log::warn!("Join {:?}: {err}", request.group);
                return Err(JoinFailure::Internal);
            }
        };
        if let Some(url) = &entry.description.redirect {
            return Err(JoinFailure::Redirect(url.clone()));
        }
        let name = entry.name.clone();
        self.touch_group(now, entry);
        self.apply_auto_rules(now, &name);
        let Some(group) = self.groups.get(&name) else {
            return Err(JoinFailure::Internal);
        };
        let entry = group.entry().clone();
        let description = Arc::clone(&entry.description);

        // 2. Who is it and what may it do.
        let wall = self.clock.at(now);
        let config = self.directory.config().ok();
        let (username, permissions) =
            self.authenticate(&entry, &request, wall, config.as_deref())?;

        // 3. Recorded even if a later check fails.
        log::debug!("{conn:?} joins {name:?} as {username:?}");
        if let Some(client) = self.clients.get_mut(&conn) {
            client.username = Some(username);
            client.permissions = permissions;
        }
        let is_op = self
            .clients
            .get(&conn)
            .is_some_and(|c| c.has(Permission::Op));

        let Some(group) = self.groups.get(&name) else {
            return Err(JoinFailure::Internal);
        };
        // 4. Lock, opening hours, autokick.
        if !is_op {
            if let Some(message) = group.lock_message() {
                return Err(JoinFailure::Refused(message.to_owned()));
            }
            if description.not_before.is_some_and(|t| wall < t) {
                return Err(JoinFailure::Refused("this group is not open yet".into()));
            }
            if description.expires.is_some_and(|t| wall > t) {
                return Err(JoinFailure::Refused("this group is closed".into()));
            }
            if description.autokick && !self.has_operator(&name) {
                return Err(JoinFailure::Refused(NO_OPERATORS.into()));
            }
            // 5. Room left.
            if description.max_clients > 0 && group.members().len() >= description.max_clients {
                return Err(JoinFailure::Refused("too many users".into()));
            }
        }
        self.admit(now, conn, &name, request.data, config.as_ref())
    }

    /// Steps 6 and 7 of a join: with a usable, unique client id, `conn` becomes a member of
    /// `name` (which is in memory); it gets `joined`, the history, itself and the others,
    /// and they learn about it.
    fn admit(
        &mut self,
        now: Instant,
        conn: ConnId,
        name: &str,
        data: JsonObject,
        config: Option<&Arc<GlobalConfig>>,
    ) -> Result<(), JoinFailure> {
        let Some(group) = self.groups.get(name) else {
            return Err(JoinFailure::Internal);
        };
        // 6. A usable, unique client id.
        let id = self
            .clients
            .get(&conn)
            .map(|c| c.id.clone())
            .unwrap_or_default();
        let duplicate = group
            .members()
            .iter()
            .any(|m| self.clients.get(m).is_some_and(|c| c.id == id));
        if id.is_empty() || duplicate {
            return Err(JoinFailure::Internal);
        }

        // 7. In.
        if let Some(client) = self.clients.get_mut(&conn) {
            client.group = Some(name.to_owned());
            client.data = Arc::new(data);
        }
        let Some(group) = self.groups.get_mut(name) else {
            return Err(JoinFailure::Internal);
        };
        group.add_member(conn, now);
        let history: Vec<Arc<ChatEntry>> = group.history(now).cloned().collect();
        let others: Vec<ConnId> = group
            .members()
            .iter()
            .copied()
            .filter(|m| *m != conn)
            .collect();

        let rtc = self.rtc_configuration(now);
        let can_change_password = config.is_some_and(|c| c.writable_groups);
        if let Some(joined) =
            self.joined_for(conn, JoinedKind::Join, name, &rtc, can_change_password)
        {
            self.emit(conn, joined);
        }
        for entry in history {
            self.emit(conn, Event::ChatHistory(entry));
        }
        let Some(me) = self.user_event(conn, UserEventKind::Add) else {
            return Ok(());
        };
        self.emit(conn, Event::User(Arc::clone(&me)));
        for other in &others {
            if let Some(them) = self.user_event(*other, UserEventKind::Add) {
                self.emit(conn, Event::User(them));
            }
        }
        for other in others {
            self.emit(other, Event::User(Arc::clone(&me)));
        }
        Ok(())
    }

    /// Leaves `group` at the client's request; it gets `joined` kind leave.
    pub fn leave(&mut self, now: Instant, conn: ConnId, group: &str) -> Result<(), ActionError> {
        let joined = self
            .clients
            .get(&conn)
            .and_then(|c| c.group.as_deref())
            .is_some_and(|g| g == group);
        if !joined {
            return Err(ActionError::Fatal("you are not joined".into()));
        }
        let username = self.clients.get(&conn).and_then(|c| c.username.clone());
        self.detach(now, conn, true);
        let Some(group_state) = self.groups.get(group) else {
            return Ok(());
        };
        let status = group_state.status();
        let data = non_empty(group_state.data());
        let can_change_password = self.can_change_password();
        let rtc = self.rtc_configuration(now);
        self.emit(
            conn,
            Event::Joined(Box::new(Joined {
                kind: JoinedKind::Leave,
                group: group.to_owned(),
                username,
                permissions: Permissions::new(),
                status: JoinedStatus {
                    group: status,
                    can_change_password,
                },
                data,
                rtc,
            })),
        );
        Ok(())
    }

    /// Stores what the client wants to receive.
    pub fn set_request(&mut self, conn: ConnId, request: StreamRequest) -> Result<(), ActionError> {
        match self.clients.get_mut(&conn) {
            Some(client) if client.group.is_some() => {
                client.request = Some(request);
                Ok(())
            }
            _ => Err(ActionError::Fatal("join a group first".into())),
        }
    }

    /// Looks a group up for HTTP: reloads a changed description, applies autolock, and
    /// reports the runtime lock state and member count.
    pub fn group_status(&mut self, now: Instant, name: &str) -> GroupLookup {
        match self.directory.group(name) {
            Ok(Some(entry)) => {
                let name = entry.name.clone();
                self.touch_group(now, entry);
                self.apply_auto_rules(now, &name);
                match self.groups.get(&name) {
                    Some(group) => GroupLookup::Found(group.status()),
                    None => GroupLookup::NotFound,
                }
            }
            Ok(None) => {
                self.forget_group_if_empty(name);
                GroupLookup::NotFound
            }
            Err(ConfigError::Invalid(why)) | Err(ConfigError::Io(why)) => GroupLookup::Invalid(why),
        }
    }

    /// The status of every public group, sorted by name.
    pub fn public_groups(&mut self, now: Instant) -> Vec<GroupStatus> {
        let mut names = self.directory.public_group_names();
        names.sort();
        names.dedup();
        let mut statuses = Vec::with_capacity(names.len());
        for name in names {
            if let GroupLookup::Found(status) = self.group_status(now, &name)
                && status.public
            {
                statuses.push(status);
            }
        }
        statuses.sort_by(|a, b| a.name.cmp(&b.name));
        statuses
    }

    /// Periodic housekeeping (every 15 minutes): reload changed descriptions, drop groups
    /// whose file vanished and that are empty, drop idle empty non-public groups, purge
    /// long-expired tokens.
    pub fn maintenance(&mut self, now: Instant) {
        match self.directory.expire_tokens(self.clock.at(now)) {
            Ok(0) => {}
            Ok(purged) => log::info!("Purged {purged} expired tokens"),
            Err(err) => log::warn!("Purging tokens: {err}"),
        }
        let mut names: Vec<String> = self.groups.keys().cloned().collect();
        names.sort();
        for name in names {
            match self.directory.group(&name) {
                Ok(Some(entry)) => self.touch_group(now, entry),
                Ok(None) => self.forget_group_if_empty(&name),
                Err(err) => log::warn!("Group {name:?}: {err}"),
            }
            if self.groups.get(&name).is_some_and(|g| g.is_expired(now)) {
                log::debug!("Dropping idle group {name:?}");
                self.groups.remove(&name);
            }
        }
    }

    /// Server shutdown: every group is locked with `message`, every client kicked with it.
    pub fn shutdown(&mut self, now: Instant, message: &str) {
        for group in self.groups.values_mut() {
            group.lock(message.to_owned());
        }
        let mut conns: Vec<ConnId> = self.clients.keys().copied().collect();
        conns.sort();
        for conn in conns {
            self.kick(now, conn, None, None, message.to_owned(), false);
        }
    }

    /// The names of the groups in memory, sorted.
    pub fn group_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.groups.keys().cloned().collect();
        names.sort();
        names
    }

    /// The connections that are members of group `name` (none when it is not in memory).
    pub fn members(&self, name: &str) -> &[ConnId] {
        self.groups
            .get(name)
            .map(Group::members)
            .unwrap_or_default()
    }

    /// Number of groups in memory (for tests and statistics).
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    // ----- internals -----

    fn emit(&mut self, to: ConnId, event: Event) {
        self.events.push_back((to, event));
    }

    /// Creates the runtime group for `entry`, or installs a re-read description and tells
    /// the members (`joined` change) when it changed.
    fn touch_group(&mut self, now: Instant, entry: GroupEntry) {
        let name = entry.name.clone();
        match self.groups.get_mut(&name) {
            None => {
                self.groups.insert(name, Group::new(entry, now));
            }
            Some(group) => {
                if group.update_entry(entry) && !group.members().is_empty() {
                    self.joined_change_all(now, &name);
                }
            }
        }
    }

    fn forget_group_if_empty(&mut self, name: &str) {
        if self
            .groups
            .get(name)
            .is_some_and(|g| g.members().is_empty())
        {
            self.groups.remove(name);
        }
    }

    fn has_operator(&self, group: &str) -> bool {
        self.groups.get(group).is_some_and(|g| {
            g.members()
                .iter()
                .any(|m| self.clients.get(m).is_some_and(|c| c.has(Permission::Op)))
        })
    }

    /// Galène's `autolock` and `autokick` (docs/configuration.md), run when a group is accessed
    /// or a member leaves.
    fn apply_auto_rules(&mut self, now: Instant, name: &str) {
        let Some(group) = self.groups.get(name) else {
            return;
        };
        let autolock = group.entry().description.autolock;
        let autokick = group.entry().description.autokick;
        if !autolock && !autokick {
            return;
        }
        if self.has_operator(name) {
            return;
        }
        if autolock
            && let Some(group) = self.groups.get_mut(name)
            && !group.is_locked()
        {
            group.lock(DEFAULT_LOCK_MESSAGE.to_owned());
            self.joined_change_all(now, name);
        }
        if autokick {
            let members: Vec<ConnId> = match self.groups.get(name) {
                Some(group) => group.members().to_vec(),
                None => Vec::new(),
            };
            for member in members {
                self.kick(now, member, None, None, NO_OPERATORS.to_owned(), false);
            }
        }
    }

    /// Kicks `target`: it gets [`Event::Kicked`] and leaves its group.
    fn kick(
        &mut self,
        now: Instant,
        target: ConnId,
        by_id: Option<String>,
        by_username: Option<String>,
        message: String,
        run_auto_rules: bool,
    ) {
        if !self.clients.contains_key(&target) {
            return;
        }
        self.emit(
            target,
            Event::Kicked {
                by_id,
                by_username,
                message,
            },
        );
        self.detach(now, target, run_auto_rules);
    }

    /// Takes `conn` out of its group: the others get `user` delete, the client loses its
    /// membership state, and the auto rules run when asked.
    fn detach(&mut self, now: Instant, conn: ConnId, run_auto_rules: bool) {
        let Some(client) = self.clients.get_mut(&conn) else {
            return;
        };
        let Some(name) = client.group.clone() else {
            return;
        };
        let gone = Arc::new(UserEvent {
            kind: UserEventKind::Delete,
            id: client.id.clone(),
            username: client.username.clone(),
            permissions: Permissions::new(),
            data: Arc::new(JsonObject::new()),
        });
        client.reset_membership();
        let Some(group) = self.groups.get_mut(&name) else {
            return;
        };
        group.remove_member(conn, now);
        let others: Vec<ConnId> = group.members().to_vec();
        for other in others {
            self.emit(other, Event::User(Arc::clone(&gone)));
        }
        if run_auto_rules {
            self.apply_auto_rules(now, &name);
        }
    }

    fn can_change_password(&mut self) -> bool {
        self.directory.config().is_ok_and(|c| c.writable_groups)
    }

    fn rtc_configuration(&mut self, now: Instant) -> Arc<RtcConfiguration> {
        let ice_servers = self.directory.ice_servers(self.clock.at(now));
        Arc::new(RtcConfiguration {
            ice_servers,
            relay_only: self.relay_only,
        })
    }

    /// A `joined` event for `conn` in `group`.
    fn joined_for(
        &self,
        conn: ConnId,
        kind: JoinedKind,
        group: &str,
        rtc: &Arc<RtcConfiguration>,
        can_change_password: bool,
    ) -> Option<Event> {
        let client = self.clients.get(&conn)?;
        let group_state = self.groups.get(group)?;
        Some(Event::Joined(Box::new(Joined {
            kind,
            group: group.to_owned(),
            username: client.username.clone(),
            permissions: client.permissions.clone(),
            status: JoinedStatus {
                group: group_state.status(),
                can_change_password,
            },
            data: non_empty(group_state.data()),
            rtc: Arc::clone(rtc),
        })))
    }

    /// Sends `joined` change to every member of `group`.
    fn joined_change_all(&mut self, now: Instant, group: &str) {
        let members: Vec<ConnId> = match self.groups.get(group) {
            Some(g) => g.members().to_vec(),
            None => return,
        };
        if members.is_empty() {
            return;
        }
        let rtc = self.rtc_configuration(now);
        let can_change_password = self.can_change_password();
        for member in members {
            if let Some(event) =
                self.joined_for(member, JoinedKind::Change, group, &rtc, can_change_password)
            {
                self.emit(member, event);
            }
        }
    }

    /// A `user` event describing `conn`.
    fn user_event(&self, conn: ConnId, kind: UserEventKind) -> Option<Arc<UserEvent>> {
        let client = self.clients.get(&conn)?;
        Some(Arc::new(UserEvent {
            kind,
            id: client.id.clone(),
            username: client.username.clone(),
            permissions: client.permissions.clone(),
            data: Arc::clone(&client.data),
        }))
    }

    /// Tells every member of `conn`'s group that `conn` changed.
    fn broadcast_user_change(&mut self, conn: ConnId) {
        let Some(group) = self.clients.get(&conn).and_then(|c| c.group.clone()) else {
            return;
        };
        let Some(change) = self.user_event(conn, UserEventKind::Change) else {
            return;
        };
        let members: Vec<ConnId> = match self.groups.get(&group) {
            Some(g) => g.members().to_vec(),
            None => return,
        };
        for member in members {
            self.emit(member, Event::User(Arc::clone(&change)));
        }
    }

    /// The member of `group` whose client id is `id`.
    fn member_by_id(&self, group: &str, id: &str) -> Option<ConnId> {
        self.groups
            .get(group)?
            .members()
            .iter()
            .copied()
            .find(|m| self.clients.get(m).is_some_and(|c| c.id == id))
    }
}

fn non_empty(data: &Arc<JsonObject>) -> Option<Arc<JsonObject>> {
    if data.is_empty() {
        None
    } else {
        Some(Arc::clone(data))
    }
}

/// Random identifiers: 8 random bytes, base64url without padding (11 characters).
struct IdSource {
    rng: aws_lc_rs::rand::SystemRandom,
    fallback: u64,
}

impl IdSource {
    fn new() -> IdSource {
        IdSource {
            rng: aws_lc_rs::rand::SystemRandom::new(),
            fallback: 0,
        }
    }

    fn next(&mut self) -> String {
        use aws_lc_rs::rand::SecureRandom as _;
        let mut bytes = [0u8; 8];
        if self.rng.fill(&mut bytes).is_err() {
            // The system generator failed (should not happen); stay unique at least.
            self.fallback = self.fallback.wrapping_add(1);
            bytes = self.fallback.to_be_bytes();
        }
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }
}

/// How long a non-operator may be kept waiting for an answer after bad credentials.
pub const NOT_AUTHORISED_DELAY: Duration = Duration::from_millis(200);
