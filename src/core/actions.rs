//! What joined clients may ask for besides joining: chat and user messages, user actions,
//! group actions and invitation tokens, with their permission rules (docs/galene.md,
//! "Chat, user and group actions").

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::config::{Permission, Permissions, StatefulToken, sort_by_expiry};
use crate::conn::ConnId;

use super::event::{
    ChatEntry, Event, ForwardedMessage, JoinedKind, MessageKind, NoticeLevel, TokenFailure,
    TokenFailureClass,
};
use super::group::merge_object;
use super::{ActionError, Core};

/// A chat line or user message a client sends.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    /// Chat or user message.
    pub kind: MessageKind,
    /// The client-supplied id, if any.
    pub id: Option<String>,
    /// `source` as the client gave it (already checked against its id; filled in when
    /// empty).
    pub source: String,
    /// The recipient's client id; empty for everybody.
    pub dest: String,
    /// `username` as the client gave it (already checked; filled in when absent).
    pub username: Option<String>,
    /// The sub-kind (`""`, `me`, `caption`, ...).
    pub subkind: String,
    /// Do not echo a broadcast back to the sender.
    pub noecho: bool,
    /// The payload.
    pub value: Option<Value>,
}

/// A permission change an operator applies to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionChange {
    /// Grant `op` (and `record` if the group allows recording).
    Op,
    /// Remove `op` and `record`.
    Unop,
    /// Grant `present`.
    Present,
    /// Remove `present`.
    Unpresent,
    /// Remove `message`.
    Shutup,
    /// Grant `message`.
    Unshutup,
}

/// An action on one member (the target is the `dest` client id).
#[derive(Debug, Clone, PartialEq)]
pub enum UserAction {
    /// Change the target's permissions (needs `op`).
    Permission(PermissionChange),
    /// Kick the target out with a message (needs `op`).
    Kick {
        /// The message shown to the target (may be empty).
        message: String,
    },
    /// Tell the requester the target's address (needs `op`).
    Identify,
    /// Merge the value into one's own user data (target must be oneself).
    SetData(Option<Value>),
}

/// Which chat lines `clearchat` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClearScope {
    /// Everything.
    All,
    /// Every line of this sender.
    Sender(String),
    /// One line of this sender.
    Entry {
        /// The sender's client id.
        sender: String,
        /// The line's id.
        id: String,
    },
}

/// A moment given in a token request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTime {
    /// An absolute time.
    At(SystemTime),
    /// Milliseconds from now (may be negative).
    FromNow(i64),
}

/// A `maketoken` request, already parsed from the wire.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenRequest {
    /// The group the token is for (must be the current one).
    pub group: String,
    /// The username it forces, if any.
    pub username: Option<String>,
    /// The permission names it grants, if given.
    pub permissions: Option<Vec<String>>,
    /// When it expires (required).
    pub expires: Option<TokenTime>,
    /// When it becomes valid.
    pub not_before: Option<TokenTime>,
    /// Also valid in subgroups.
    pub include_subgroups: bool,
    /// The client tried to choose the token's name itself (refused).
    pub names_token: bool,
}

/// An `edittoken` request, already parsed from the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEdit {
    /// The token's name.
    pub token: String,
    /// New expiry.
    pub expires: Option<TokenTime>,
    /// New start of validity.
    pub not_before: Option<TokenTime>,
}

/// An action on the current group.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupAction {
    /// Clear chat history (needs `op`). `scope` is `None` when the value was malformed;
    /// `value` is what the operator sent, echoed to everybody.
    ClearChat {
        /// What to clear.
        scope: Option<ClearScope>,
        /// The operator's value.
        value: Option<Value>,
    },
    /// Lock with a message (needs `op`).
    Lock(String),
    /// Unlock (needs `op`).
    Unlock,
    /// Start recording (needs `record`): the owner of the core is asked to start a recorder
    /// ([`super::ServiceRequest`]).
    Record,
    /// Stop recording (needs `record`).
    Unrecord,
    /// List the populated subgroups (needs `op`).
    Subgroups,
    /// Merge the value into the group data (needs `op`).
    SetData(Option<Value>),
    /// Create an invitation (needs `token`); `Err` carries the parse error text.
    MakeToken(Result<TokenRequest, String>),
    /// Change an invitation's validity (needs `op` and `token`); `Err` carries the parse
    /// error text.
    EditToken(Result<TokenEdit, String>),
    /// List the group's invitations (needs `op` and `token`).
    ListTokens,
}

/// The text every refused permission check reports.
const NOT_AUTHORISED: &str = "not authorised";

fn report(text: &str) -> ActionError {
    ActionError::Report(text.to_owned())
}

impl Core {
    /// The group `conn` is in, or the `join a group first` report.
    fn joined_group(&self, conn: ConnId) -> Result<String, ActionError> {
        self.clients
            .get(&conn)
            .and_then(|c| c.group.clone())
            .ok_or_else(|| report("join a group first"))
    }

    fn require(&self, conn: ConnId, permission: Permission) -> Result<(), ActionError> {
        if self.clients.get(&conn).is_some_and(|c| c.has(permission)) {
            Ok(())
        } else {
            Err(report(NOT_AUTHORISED))
        }
    }

    /// Forwards a chat line or user message. Broadcast chat is stored in the history.
    ///
    /// Unlike Galène, an empty `source` or an absent `username` is filled in with the
    /// sender's own: Galène forwards them empty, which makes the message look as if the
    /// server had sent it (docs/galene.md, "Differences from Galène").
    pub fn send_message(
        &mut self,
        now: Instant,
        conn: ConnId,
        message: OutgoingMessage,
    ) -> Result<(), ActionError> {
        let group = self.joined_group(conn)?;
        let needed = if message.kind == MessageKind::Chat && message.subkind == "caption" {
            Permission::Caption
        } else {
            Permission::Message
        };
        self.require(conn, needed)?;
        let (privileged, own_id, own_username) = match self.clients.get(&conn) {
            Some(c) => (c.has(Permission::Op), c.id.clone(), c.username.clone()),
            None => (false, String::new(), None),
        };
        let source = if message.source.is_empty() {
            own_id
        } else {
            message.source
        };
        let username = message.username.or(own_username);
        let time = self.clock.at(now);
        let broadcast = message.dest.is_empty();
        let id = match message.id {
            Some(id) if !id.is_empty() => Some(id),
            _ if broadcast && message.kind == MessageKind::Chat => Some(self.ids.next()),
            _ => None,
        };
        let forwarded = Arc::new(ForwardedMessage {
            kind: message.kind,
            id,
            source,
            dest: message.dest,
            username,
            privileged,
            time,
            subkind: message.subkind,
            noecho: message.noecho,
            value: message.value,
        });
        if !broadcast {
            let Some(target) = self.member_by_id(&group, &forwarded.dest) else {
                return Err(report("user unknown"));
            };
            if self.clients.get(&target).is_some_and(|c| c.local) {
                return Err(report("this user doesn't chat"));
            }
            self.emit(target, Event::Message(forwarded));
            return Ok(());
        }
        let Some(group_state) = self.groups.get_mut(&group) else {
            return Err(report("join a group first"));
        };
        if forwarded.kind == MessageKind::Chat {
            group_state.push_history(
                ChatEntry {
                    id: forwarded.id.clone().unwrap_or_default(),
                    source: forwarded.source.clone(),
                    username: forwarded.username.clone(),
                    time,
                    subkind: forwarded.subkind.clone(),
                    value: forwarded.value.clone(),
                },
                now,
            );
        }
        let members: Vec<ConnId> = group_state.members().to_vec();
        for member in members {
            if forwarded.noecho && member == conn {
                continue;
            }
            self.emit(member, Event::Message(Arc::clone(&forwarded)));
        }
        Ok(())
    }

    /// Applies a user action to the member whose client id is `dest`.
    ///
    /// Unlike Galène, an unknown action kind never reaches here: the adapter reports it
    /// without disconnecting.
    pub fn user_action(
        &mut self,
        now: Instant,
        conn: ConnId,
        dest: &str,
        action: UserAction,
    ) -> Result<(), ActionError> {
        let group = self.joined_group(conn)?;
        match action {
            UserAction::Permission(change) => {
                self.require(conn, Permission::Op)?;
                let target = self
                    .member_by_id(&group, dest)
                    .ok_or_else(|| report("no suck user"))?;
                if self.clients.get(&target).is_some_and(|c| c.local) {
                    return Err(report("this is not a real user"));
                }
                self.change_permissions(now, target, change);
                Ok(())
            }
            UserAction::Kick { message } => {
                self.require(conn, Permission::Op)?;
                let target = self
                    .member_by_id(&group, dest)
                    .ok_or_else(|| report("no such user"))?;
                let (by_id, by_username) = match self.clients.get(&conn) {
                    Some(c) => (Some(c.id.clone()), c.username.clone()),
                    None => (None, None),
                };
                self.kick(now, target, by_id, by_username, message, true);
                Ok(())
            }
            UserAction::Identify => {
                self.require(conn, Permission::Op)?;
                let target = self
                    .member_by_id(&group, dest)
                    .ok_or_else(|| report("client not found"))?;
                let Some(info) = self.clients.get(&target) else {
                    return Err(report("client not found"));
                };
                let event = Event::UserInfo {
                    id: info.id.clone(),
                    username: info.username.clone(),
                    address: info.remote,
                };
                let requester = self
                    .clients
                    .get(&conn)
                    .and_then(|c| c.username.clone())
                    .unwrap_or_default();
                self.emit(conn, event);
                self.emit(
                    target,
                    Event::Notice {
                        level: NoticeLevel::Warning,
                        text: format!("Your IP address has been communicated to user {requester}."),
                    },
                );
                Ok(())
            }
            UserAction::SetData(value) => {
                let own = self.clients.get(&conn).is_some_and(|c| c.id == dest);
                if !own {
                    return Err(report(NOT_AUTHORISED));
                }
                let Some(Value::Object(update)) = value else {
                    return Err(report("Bad value in setdata"));
                };
                if let Some(client) = self.clients.get_mut(&conn) {
                    merge_object(Arc::make_mut(&mut client.data), &update);
                }
                self.broadcast_user_change(conn);
                Ok(())
            }
        }
    }

    fn change_permissions(&mut self, now: Instant, target: ConnId, change: PermissionChange) {
        let allow_recording = self
            .clients
            .get(&target)
            .and_then(|c| c.group.as_deref())
            .and_then(|g| self.groups.get(g))
            .is_some_and(|g| g.entry().description.allow_recording);
        let Some(client) = self.clients.get_mut(&target) else {
            return;
        };
        let permissions = &mut client.permissions;
        match change {
            PermissionChange::Op => {
                permissions.add(Permission::Op);
                if allow_recording {
                    permissions.add(Permission::Record);
                }
            }
            PermissionChange::Unop => {
                permissions.remove(Permission::Op);
                permissions.remove(Permission::Record);
            }
            PermissionChange::Present => permissions.add(Permission::Present),
            PermissionChange::Unpresent => permissions.remove(Permission::Present),
            PermissionChange::Shutup => permissions.remove(Permission::Message),
            PermissionChange::Unshutup => permissions.add(Permission::Message),
        }
        let group = client.group.clone();
        if let Some(group) = group {
            let rtc = self.rtc_configuration(now);
            let can_change_password = self.can_change_password();
            if let Some(event) = self.joined_for(
                target,
                JoinedKind::Change,
                &group,
                &rtc,
                can_change_password,
            ) {
                self.emit(target, event);
            }
        }
        self.broadcast_user_change(target);
    }

    /// Applies a group action to the requester's group.
    ///
    /// Unlike Galène, an unknown action kind never reaches here: the adapter reports it
    /// without disconnecting.
    pub fn group_action(
        &mut self,
        now: Instant,
        conn: ConnId,
        action: GroupAction,
    ) -> Result<(), ActionError> {
        let group = self.joined_group(conn)?;
        match action {
            GroupAction::ClearChat { scope, value } => {
                self.require(conn, Permission::Op)?;
                let scope = scope.ok_or_else(|| report("bad value in clearchat"))?;
                let Some(group_state) = self.groups.get_mut(&group) else {
                    return Ok(());
                };
                match &scope {
                    ClearScope::All => group_state.clear_history(None, None),
                    ClearScope::Sender(sender) => group_state.clear_history(Some(sender), None),
                    ClearScope::Entry { sender, id } => {
                        group_state.clear_history(Some(sender), Some(id))
                    }
                }
                let members: Vec<ConnId> = group_state.members().to_vec();
                for member in members {
                    self.emit(
                        member,
                        Event::ClearChat {
                            scope: value.clone(),
                        },
                    );
                }
                Ok(())
            }
            GroupAction::Lock(message) => {
                self.require(conn, Permission::Op)?;
                if let Some(group_state) = self.groups.get_mut(&group) {
                    group_state.lock(message);
                }
                self.joined_change_all(now, &group);
                Ok(())
            }
            GroupAction::Unlock => {
                self.require(conn, Permission::Op)?;
                if let Some(group_state) = self.groups.get_mut(&group) {
                    group_state.unlock();
                }
                self.joined_change_all(now, &group);
                Ok(())
            }
            GroupAction::Record => {
                self.require(conn, Permission::Record)?;
                self.request_recording(&group).map_err(ActionError::Report)
            }
            GroupAction::Unrecord => {
                self.require(conn, Permission::Record)?;
                self.request_stop_recording(&group);
                Ok(())
            }
            GroupAction::Subgroups => {
                self.require(conn, Permission::Op)?;
                let text = self.subgroups_text(&group);
                let time = self.clock.at(now);
                self.emit(conn, Event::ServerChat { text, time });
                Ok(())
            }
            GroupAction::SetData(value) => {
                self.require(conn, Permission::Op)?;
                let Some(Value::Object(update)) = value else {
                    return Err(report("Bad value in setdata"));
                };
                if let Some(group_state) = self.groups.get_mut(&group) {
                    group_state.merge_data(&update);
                }
                self.joined_change_all(now, &group);
                Ok(())
            }
            GroupAction::MakeToken(request) => {
                let reply = self.make_token(now, conn, &group, request);
                self.emit(conn, Event::Token(reply));
                Ok(())
            }
            GroupAction::EditToken(edit) => {
                self.require(conn, Permission::Op)?;
                self.require(conn, Permission::Token)?;
                let edit = edit.map_err(ActionError::Report)?;
                let token = self.edit_token(now, &group, edit)?;
                self.emit(conn, Event::Token(Ok(token)));
                Ok(())
            }
            GroupAction::ListTokens => {
                self.require(conn, Permission::Op)?;
                self.require(conn, Permission::Token)?;
                let mut tokens = self.directory.tokens_of_group(&group);
                sort_by_expiry(&mut tokens);
                self.emit(conn, Event::TokenList(tokens));
                Ok(())
            }
        }
    }

    /// `"<name> (N client[s])"` for every populated group below `group`, one per line.
    fn subgroups_text(&self, group: &str) -> String {
        let prefix = format!("{group}/");
        let mut lines: Vec<(&str, usize)> = self
            .groups
            .values()
            .filter(|g| g.name().starts_with(&prefix) && !g.members().is_empty())
            .map(|g| (g.name(), g.members().len()))
            .collect();
        lines.sort();
        if lines.is_empty() {
            return "No subgroups".to_owned();
        }
        lines
            .iter()
            .map(|(name, count)| {
                let plural = if *count > 1 { "s" } else { "" };
                format!("{name} ({count} client{plural})")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn resolve_time(&self, now: Instant, time: TokenTime) -> Option<SystemTime> {
        match time {
            TokenTime::At(at) => Some(at),
            TokenTime::FromNow(ms) => {
                let wall = self.clock.at(now);
                let offset = Duration::from_millis(ms.unsigned_abs());
                if ms >= 0 {
                    wall.checked_add(offset)
                } else {
                    wall.checked_sub(offset)
                }
            }
        }
    }

    fn make_token(
        &mut self,
        now: Instant,
        conn: ConnId,
        group: &str,
        request: Result<TokenRequest, String>,
    ) -> Result<StatefulToken, TokenFailure> {
        let failure = |class, text: &str| TokenFailure {
            class,
            text: text.to_owned(),
        };
        let error = |text: &str| failure(TokenFailureClass::Error, text);
        let Some(requester) = self.clients.get(&conn) else {
            return Err(failure(TokenFailureClass::NotAuthorised, NOT_AUTHORISED));
        };
        if !requester.has(Permission::Token) {
            return Err(failure(TokenFailureClass::NotAuthorised, NOT_AUTHORISED));
        }
        let request = request.map_err(|text| error(&text))?;
        if request.names_token {
            return Err(error("client specified token"));
        }
        if request.group != group {
            return Err(error("wrong group in token"));
        }
        let Some(expires) = request.expires else {
            return Err(error("token doesn't expire"));
        };
        let users_defined = self
            .groups
            .get(group)
            .map(|g| Arc::clone(&g.entry().description));
        if let (Some(name), Some(description)) = (&request.username, &users_defined)
            && description.users.contains_key(name)
        {
            return Err(error("that username is taken"));
        }
        let permissions = match &request.permissions {
            None => None,
            Some(names) => {
                let mut granted = Permissions::new();
                for name in names {
                    match Permission::from_name(name) {
                        Some(p) if requester.has(p) => granted.add(p),
                        _ => {
                            return Err(failure(TokenFailureClass::NotAuthorised, NOT_AUTHORISED));
                        }
                    }
                }
                Some(granted)
            }
        };
        let issued_by = requester.username.clone().filter(|u| !u.is_empty());
        let Some(expires) = self.resolve_time(now, expires) else {
            return Err(error("bad time value"));
        };
        let not_before = match request.not_before {
            Some(t) => Some(
                self.resolve_time(now, t)
                    .ok_or_else(|| error("bad time value"))?,
            ),
            None => None,
        };
        let token = StatefulToken {
            token: self.ids.next(),
            group: group.to_owned(),
            include_subgroups: request.include_subgroups,
            username: request.username,
            permissions,
            expires: Some(expires),
            not_before,
            issued_at: Some(self.clock.at(now)),
            issued_by,
        };
        match self.directory.add_token(token.clone()) {
            Ok(()) => Ok(token),
            Err(err) => {
                log::warn!("maketoken: {err}");
                Err(error(&err.to_string()))
            }
        }
    }

    /// Changes a token's validity. Unlike Galène, only tokens of the current group can be
    /// edited (Galène does not check).
    fn edit_token(
        &mut self,
        now: Instant,
        group: &str,
        edit: TokenEdit,
    ) -> Result<StatefulToken, ActionError> {
        const MISSING: &str = "file does not exist";
        let mut token = self
            .directory
            .token(&edit.token)
            .filter(|t| t.group == group)
            .ok_or_else(|| report(MISSING))?;
        if let Some(expires) = edit.expires {
            token.expires = Some(
                self.resolve_time(now, expires)
                    .ok_or_else(|| report("bad time value"))?,
            );
        }
        if let Some(not_before) = edit.not_before {
            token.not_before = Some(
                self.resolve_time(now, not_before)
                    .ok_or_else(|| report("bad time value"))?,
            );
        }
        match self.directory.update_token(token.clone()) {
            Ok(true) => Ok(token),
            Ok(false) => Err(report(MISSING)),
            Err(err) => Err(ActionError::Report(err.to_string())),
        }
    }
}
