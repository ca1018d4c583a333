//! Core events as Galène wire messages, in the receiving client's dialect (docs/galene.md,
//! including "The seed dialect").

use std::time::SystemTime;

use serde_json::{Map, Value, json};

use crate::config::{IceServer, Permission, Permissions, StatefulToken};
use crate::core::{
    ChatEntry, Event, ForwardedMessage, JoinFailure, Joined, JoinedKind, JoinedStatus, MessageKind,
    NoticeLevel, RtcConfiguration, TokenFailureClass, UserEvent, UserEventKind,
};

use super::msg::Dialect;
use super::msg::Message;

/// Formats a wall-clock time as Galène does: RFC 3339, whole seconds, the server's local
/// offset (`Z` when it is UTC).
pub fn local_time(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Local>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A server notice (`error`, `warning`) for the client `dest`.
pub fn notice(dest: &str, kind: &str, text: &str) -> Message {
    let mut m = Message::new("usermessage");
    m.kind = kind.to_owned();
    m.dest = dest.to_owned();
    m.privileged = true;
    m.value = Some(Value::String(text.to_owned()));
    m
}

/// The `kind` of the sfubox-only user message that tells a client whether the video of one
/// of its down streams is reduced by its network.
pub const LAYER_KIND: &str = "sfubox-layer";

/// The sfubox-only user message telling client `dest` that the video of its down stream `id`
/// is received below the best layer it asked for because of its own link (`reduced`), or is
/// back. Galène has no such message; other clients ignore the unknown kind. Like every
/// server-originated user message it is privileged and has no `source`.
pub fn layer_reduced(dest: &str, id: &str, reduced: bool) -> Message {
    let mut m = Message::new("usermessage");
    m.kind = LAYER_KIND.to_owned();
    m.dest = dest.to_owned();
    m.privileged = true;
    m.value = Some(json!({"id": id, "reduced": reduced}));
    m
}

/// The `kicked` user message.
pub fn kicked(
    dest: &str,
    by_id: &Option<String>,
    by_username: &Option<String>,
    message: &str,
) -> Message {
    let mut m = notice(
        dest,
        "kicked",
        if message.is_empty() {
            "you have been kicked out"
        } else {
            message
        },
    );
    m.id = by_id.clone().unwrap_or_default();
    m.username = by_username.clone();
    m
}

/// The close reason after a kick: `kicked out (message) by user`, parts omitted when empty.
pub fn kick_reason(by_username: &Option<String>, message: &str) -> String {
    let mut reason = String::from("kicked out");
    if !message.is_empty() {
        reason.push_str(&format!(" ({message})"));
    }
    if let Some(name) = by_username.as_deref().filter(|n| !n.is_empty()) {
        reason.push_str(&format!(" by {name}"));
    }
    reason
}

/// The `joined` reply to a failed join (kind `fail`, or `redirect`).
pub fn join_failure(group: &str, username: Option<String>, failure: &JoinFailure) -> Message {
    let mut m = Message::new("joined");
    m.group = group.to_owned();
    m.username = username;
    m.value = Some(Value::String(failure.text().to_owned()));
    match failure {
        JoinFailure::Redirect(_) => m.kind = "redirect".into(),
        JoinFailure::NeedUsername => {
            m.kind = "fail".into();
            m.error = "need-username".into();
        }
        JoinFailure::DuplicateUsername => {
            m.kind = "fail".into();
            m.error = "duplicate-username".into();
        }
        _ => m.kind = "fail".into(),
    }
    m
}

/// Renders `event` for a client speaking `dialect` whose id is `own_id`; `None` for events
/// that have no wire form ([`Event::Kicked`] is rendered by the session, which also closes).
pub fn event(event: &Event, dialect: Dialect, own_id: &str) -> Option<Message> {
    Some(match event {
        Event::Joined(joined) => joined_message(joined, dialect),
        Event::ChatHistory(entry) => history_message(entry),
        Event::User(user) => user_message(user, dialect),
        Event::Message(forwarded) => forwarded_message(forwarded),
        Event::Notice { level, text } => notice(
            own_id,
            match level {
                NoticeLevel::Error => "error",
                NoticeLevel::Warning => "warning",
            },
            text,
        ),
        Event::ClearChat { scope } => {
            let mut m = Message::new("usermessage");
            m.kind = "clearchat".into();
            m.privileged = true;
            m.value = scope.clone();
            m
        }
        Event::ServerChat { text, time } => {
            let mut m = Message::new("chat");
            m.dest = own_id.to_owned();
            m.username = Some("Server".into());
            m.time = local_time(*time);
            m.value = Some(Value::String(text.clone()));
            m
        }
        Event::Token(result) => {
            let mut m = Message::new("usermessage");
            m.kind = "token".into();
            m.privileged = true;
            match result {
                Ok(token) => m.value = Some(token.to_json()),
                Err(failure) => {
                    m.error = match failure.class {
                        TokenFailureClass::NotAuthorised => "not-authorised",
                        TokenFailureClass::Error => "error",
                    }
                    .into();
                    m.value = Some(Value::String(failure.text.clone()));
                }
            }
            m
        }
        Event::TokenList(tokens) => {
            let mut m = Message::new("usermessage");
            m.kind = "tokenlist".into();
            m.privileged = true;
            m.value = Some(Value::Array(
                tokens.iter().map(StatefulToken::to_json).collect(),
            ));
            m
        }
        Event::UserInfo {
            id,
            username,
            address,
        } => {
            let mut info = Map::new();
            info.insert("id".into(), Value::String(id.clone()));
            if let Some(username) = username {
                info.insert("username".into(), Value::String(username.clone()));
            }
            if let Some(address) = address {
                info.insert("address".into(), Value::String(address.to_string()));
            }
            let mut m = Message::new("usermessage");
            m.kind = "userinfo".into();
            m.privileged = true;
            m.value = Some(Value::Object(info));
            m
        }
        Event::Kicked { .. } => return None,
    })
}

/// Permission names as a client of `dialect` knows them (the seed dialect knows only
/// `op`, `present` and `record`).
fn permission_names(permissions: &Permissions, dialect: Dialect) -> Vec<String> {
    permissions
        .iter()
        .filter(|p| {
            dialect == Dialect::V2
                || matches!(p, Permission::Op | Permission::Present | Permission::Record)
        })
        .map(|p| p.name().to_owned())
        .collect()
}

fn joined_message(joined: &Joined, dialect: Dialect) -> Message {
    let mut m = Message::new("joined");
    m.kind = match joined.kind {
        JoinedKind::Join => "join",
        JoinedKind::Change => "change",
        JoinedKind::Leave => "leave",
    }
    .into();
    m.group = joined.group.clone();
    m.username = joined.username.clone();
    m.permissions = permission_names(&joined.permissions, dialect);
    m.status = Some(joined_status(&joined.status));
    m.data = joined.data.as_ref().map(|d| (**d).clone());
    m.rtc_configuration = Some(rtc_configuration(&joined.rtc));
    m
}

fn joined_status(status: &JoinedStatus) -> Map<String, Value> {
    let group = &status.group;
    let mut map = Map::new();
    map.insert("name".into(), Value::String(group.name.clone()));
    let optional = [
        ("displayName", &group.display_name),
        ("description", &group.description),
        ("authServer", &group.auth_server),
        ("authPortal", &group.auth_portal),
    ];
    for (key, value) in optional {
        if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
            map.insert(key.into(), Value::String(value.clone()));
        }
    }
    if group.locked {
        map.insert("locked".into(), Value::Bool(true));
    }
    map.insert("clientCount".into(), json!(group.client_count));
    if status.can_change_password {
        map.insert("canChangePassword".into(), Value::Bool(true));
    }
    map
}

fn rtc_configuration(rtc: &RtcConfiguration) -> Value {
    let servers: Vec<Value> = rtc.ice_servers.iter().map(ice_server).collect();
    let mut map = Map::new();
    map.insert("iceServers".into(), Value::Array(servers));
    if rtc.relay_only {
        map.insert("iceTransportPolicy".into(), Value::String("relay".into()));
    }
    Value::Object(map)
}

fn ice_server(server: &IceServer) -> Value {
    let mut map = Map::new();
    map.insert("urls".into(), json!(server.urls));
    if let Some(username) = &server.username {
        map.insert("username".into(), Value::String(username.clone()));
    }
    if let Some(credential) = &server.credential {
        map.insert("credential".into(), Value::String(credential.clone()));
    }
    if let Some(kind) = &server.credential_type {
        map.insert("credentialType".into(), Value::String(kind.clone()));
    }
    Value::Object(map)
}

fn history_message(entry: &ChatEntry) -> Message {
    let mut m = Message::new("chathistory");
    m.id = entry.id.clone();
    m.source = entry.source.clone();
    m.username = entry.username.clone();
    m.time = local_time(entry.time);
    m.kind = entry.subkind.clone();
    m.value = entry.value.clone();
    m
}

fn user_message(user: &UserEvent, dialect: Dialect) -> Message {
    let mut m = Message::new("user");
    m.kind = match user.kind {
        UserEventKind::Add => "add",
        UserEventKind::Change => "change",
        UserEventKind::Delete => "delete",
    }
    .into();
    m.id = user.id.clone();
    m.username = Some(user.username.clone().unwrap_or_default());
    if user.kind != UserEventKind::Delete {
        m.permissions = permission_names(&user.permissions, dialect);
        if !user.data.is_empty() {
            let data = (*user.data).clone();
            match dialect {
                Dialect::V2 => m.data = Some(data),
                Dialect::Seed => m.status = Some(data),
            }
        }
    }
    m
}

fn forwarded_message(forwarded: &ForwardedMessage) -> Message {
    let mut m = Message::new(match forwarded.kind {
        MessageKind::Chat => "chat",
        MessageKind::UserMessage => "usermessage",
    });
    m.id = forwarded.id.clone().unwrap_or_default();
    m.source = forwarded.source.clone();
    m.dest = forwarded.dest.clone();
    m.username = forwarded.username.clone();
    m.privileged = forwarded.privileged;
    m.time = local_time(forwarded.time);
    m.kind = forwarded.subkind.clone();
    m.noecho = forwarded.noecho;
    m.value = forwarded.value.clone();
    m
}
