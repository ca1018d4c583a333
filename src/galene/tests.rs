//! Whole-protocol tests: Galène clients driven through [`App`] over a [`MemoryDirectory`],
//! with a fake clock (a fixed `Instant` plus durations; nothing sleeps).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::app::{App, AppOptions};
use crate::config::{
    ConfigError, Directory, GlobalConfig, GroupEntry, IceServer, MemoryDirectory, Permissions,
    StatefulToken,
};
use crate::conn::{ConnId, ConnOutput};
use crate::core::GroupLookup;

/// A directory the test can still change after handing it to the app.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<MemoryDirectory>>);

impl Directory for Shared {
    fn group(&mut self, name: &str) -> Result<Option<GroupEntry>, ConfigError> {
        self.0.borrow_mut().group(name)
    }
    fn public_group_names(&mut self) -> Vec<String> {
        self.0.borrow_mut().public_group_names()
    }
    fn config(&mut self) -> Result<Arc<GlobalConfig>, ConfigError> {
        self.0.borrow_mut().config()
    }
    fn ice_servers(&mut self, now: SystemTime) -> Vec<IceServer> {
        self.0.borrow_mut().ice_servers(now)
    }
    fn token(&mut self, name: &str) -> Option<StatefulToken> {
        self.0.borrow_mut().token(name)
    }
    fn add_token(&mut self, token: StatefulToken) -> Result<(), ConfigError> {
        self.0.borrow_mut().add_token(token)
    }
    fn update_token(&mut self, token: StatefulToken) -> Result<bool, ConfigError> {
        self.0.borrow_mut().update_token(token)
    }
    fn tokens_of_group(&mut self, group: &str) -> Vec<StatefulToken> {
        self.0.borrow_mut().tokens_of_group(group)
    }
    fn delete_token(&mut self, name: &str) -> Result<bool, ConfigError> {
        self.0.borrow_mut().delete_token(name)
    }
    fn expire_tokens(&mut self, now: SystemTime) -> Result<usize, ConfigError> {
        self.0.borrow_mut().expire_tokens(now)
    }
}

/// The standard test group: `boss` is an operator (password `boss`), anybody else may
/// present with password `pw`.
const GROUP: &str = r#"{
    "users": {"boss": {"password": "boss", "permissions": "op"}},
    "wildcard-user": {"password": "pw", "permissions": "present"}
}"#;

struct Harness {
    app: App,
    dir: Shared,
    now: Instant,
    wall: SystemTime,
    received: HashMap<ConnId, Vec<Value>>,
    closed: HashMap<ConnId, (u16, String)>,
}

impl Harness {
    fn new() -> Harness {
        Harness::with_options(AppOptions::default())
    }

    fn with_options(options: AppOptions) -> Harness {
        let dir = Shared::default();
        dir.0
            .borrow_mut()
            .set_group_json("g", GROUP)
            .unwrap_or_default();
        let now = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let app = App::new(Box::new(dir.clone()), options, now, wall);
        Harness {
            app,
            dir,
            now,
            wall,
            received: HashMap::new(),
            closed: HashMap::new(),
        }
    }

    fn set_group(&mut self, name: &str, json: &str) {
        let result = self.dir.0.borrow_mut().set_group_json(name, json);
        assert!(result.is_ok(), "bad test group {name}: {result:?}");
    }

    fn pump(&mut self) {
        while let Some((conn, output)) = self.app.poll_output() {
            assert!(
                !self.closed.contains_key(&conn),
                "output after close on {conn:?}: {output:?}"
            );
            match output {
                ConnOutput::Text(text) => {
                    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    assert!(value.is_object(), "not a JSON object: {text}");
                    self.received.entry(conn).or_default().push(value);
                }
                ConnOutput::Close { code, reason } => {
                    self.closed.insert(conn, (code, reason));
                }
                unexpected @ (ConnOutput::Binary(_) | ConnOutput::Ping) => {
                    panic!("Galène sent {unexpected:?} on {conn:?}")
                }
            }
        }
    }

    fn connect(&mut self) -> ConnId {
        let remote = "192.0.2.7:4242".parse().ok();
        let conn = self.app.galene_connect(self.now, remote);
        self.pump();
        conn
    }

    fn send(&mut self, conn: ConnId, message: Value) {
        self.app.handle_text(self.now, conn, &message.to_string());
        self.pump();
    }

    fn send_raw(&mut self, conn: ConnId, text: &str) {
        self.app.handle_text(self.now, conn, text);
        self.pump();
    }

    /// Everything received on `conn` since the last call.
    fn take(&mut self, conn: ConnId) -> Vec<Value> {
        self.received.remove(&conn).unwrap_or_default()
    }

    fn closed(&self, conn: ConnId) -> Option<(u16, &str)> {
        self.closed.get(&conn).map(|(c, r)| (*c, r.as_str()))
    }

    /// Moves the clock forward by `by`, running every timer at its exact time.
    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(due) = self.app.poll_timeout() {
            if due > target {
                break;
            }
            self.now = self.now.max(due);
            self.app.handle_timeout(self.now);
            self.pump();
        }
        self.now = target;
    }

    /// A connected, handshaken version "2" client with client id `id`.
    fn client(&mut self, id: &str) -> ConnId {
        let conn = self.connect();
        self.send(
            conn,
            json!({"type": "handshake", "version": ["2"], "id": id}),
        );
        let replies = self.take(conn);
        assert_eq!(replies, [json!({"type": "handshake", "version": ["2"]})]);
        conn
    }

    /// A connected, handshaken seed-dialect client.
    fn seed_client(&mut self, id: &str) -> ConnId {
        let conn = self.connect();
        self.send(conn, json!({"type": "handshake", "id": id}));
        assert_eq!(self.take(conn), [json!({"type": "handshake"})]);
        conn
    }

    fn join(&mut self, conn: ConnId, group: &str, username: &str, password: &str) -> Vec<Value> {
        self.send(
            conn,
            json!({"type": "join", "kind": "join", "group": group,
                   "username": username, "password": password}),
        );
        self.take(conn)
    }

    /// A client joined to `g` (clears what it received).
    fn member(&mut self, id: &str, username: &str, password: &str) -> ConnId {
        let conn = self.client(id);
        let replies = self.join(conn, "g", username, password);
        assert_eq!(
            replies.first().map(|m| &m["kind"]),
            Some(&json!("join")),
            "{replies:?}"
        );
        conn
    }
}

fn of_type<'a>(messages: &'a [Value], kind_of: &str) -> Vec<&'a Value> {
    messages.iter().filter(|m| m["type"] == kind_of).collect()
}

fn error_message(dest: &str, text: &str) -> Value {
    json!({"type": "usermessage", "kind": "error", "dest": dest, "privileged": true, "value": text})
}

// ----- handshake and dialects -----

#[test]
fn handshake_replies_in_each_dialect_and_warns_about_unknown_versions() {
    let mut h = Harness::new();
    h.client("a");
    h.seed_client("b");
    let c = h.connect();
    h.send(c, json!({"type": "handshake", "version": ["3"], "id": "c"}));
    let replies = h.take(c);
    assert_eq!(replies[0], json!({"type": "handshake", "version": ["2"]}));
    assert_eq!(replies[1]["kind"], "warning");
    assert_eq!(replies[1]["privileged"], true);
    assert!(
        replies[1]["value"]
            .as_str()
            .unwrap_or("")
            .starts_with("This client is using an unknown protocol version.")
    );
    assert_eq!(h.closed(c), None);
    // Treated as version "2": joins with permissions as version 2 shows them.
    let joined = h.join(c, "g", "carol", "pw");
    assert_eq!(joined[0]["permissions"], json!(["present", "message"]));
}

#[test]
fn first_message_must_be_a_handshake() {
    let mut h = Harness::new();
    let c = h.connect();
    h.send(c, json!({"type": "ping"}));
    assert_eq!(h.closed(c), Some((1002, "you must handshake first")));
    assert!(h.take(c).is_empty());
}

#[test]
fn handshake_times_out_after_15_seconds() {
    let mut h = Harness::new();
    let c = h.connect();
    h.advance(Duration::from_millis(14_999));
    assert_eq!(h.closed(c), None);
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed(c), Some((1002, "you must handshake first")));
}

#[test]
fn second_handshake_is_a_protocol_error() {
    let mut h = Harness::new();
    let c = h.client("a");
    h.send(c, json!({"type": "handshake", "version": ["2"], "id": "a"}));
    assert_eq!(h.take(c), [error_message("a", "unexpected message")]);
    assert_eq!(h.closed(c), Some((1002, "unexpected message")));
}

// ----- liveness -----

#[test]
fn ping_after_20_seconds_of_silence_and_drop_after_45() {
    let mut h = Harness::new();
    let c = h.client("a");
    h.advance(Duration::from_millis(19_999));
    assert!(h.take(c).is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.take(c), [json!({"type": "ping"})]);
    h.advance(Duration::from_secs(24));
    assert_eq!(h.closed(c), None);
    assert!(h.take(c).is_empty(), "one ping per silence");
    h.advance(Duration::from_secs(1));
    assert_eq!(h.closed(c), Some((1011, "client is dead")));
}

#[test]
fn any_message_resets_liveness_and_ping_gets_pong() {
    let mut h = Harness::new();
    let c = h.client("a");
    h.advance(Duration::from_secs(30));
    assert_eq!(h.take(c), [json!({"type": "ping"})]);
    h.send(c, json!({"type": "pong"}));
    h.advance(Duration::from_secs(19));
    assert!(h.take(c).is_empty());
    h.send(c, json!({"type": "ping"}));
    assert_eq!(h.take(c), [json!({"type": "pong"})]);
    h.advance(Duration::from_secs(44));
    assert_eq!(h.closed(c), None);
    assert_eq!(h.take(c), [json!({"type": "ping"})]);
}

// ----- join -----

#[test]
fn successful_join_sends_joined_history_self_then_others() {
    let mut h = Harness::new();
    let boss = h.member("b", "boss", "boss");
    h.send(
        boss,
        json!({"type": "chat", "source": "b", "username": "boss", "value": "hi"}),
    );
    h.take(boss);
    let c = h.client("c");
    let got = h.join(c, "g", "carol", "pw");
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(
        got[0],
        json!({"type": "joined", "kind": "join", "group": "g", "username": "carol",
               "permissions": ["present", "message"],
               "status": {"name": "g", "clientCount": 2},
               "rtcConfiguration": {"iceServers": []}})
    );
    assert_eq!(got[1]["type"], "chathistory");
    assert_eq!(got[1]["value"], "hi");
    assert_eq!(got[1]["source"], "b");
    assert_eq!(got[1]["username"], "boss");
    assert!(got[1].get("privileged").is_none() && got[1].get("dest").is_none());
    assert_eq!(
        got[2],
        json!({"type": "user", "kind": "add", "id": "c", "username": "carol",
               "permissions": ["present", "message"]})
    );
    assert_eq!(got[3]["id"], "b");
    assert_eq!(
        got[3]["permissions"],
        json!(["op", "present", "message", "caption", "token"])
    );
    assert_eq!(
        h.take(boss),
        [
            json!({"type": "user", "kind": "add", "id": "c", "username": "carol",
                "permissions": ["present", "message"]})
        ]
    );
}

#[test]
fn join_data_becomes_user_data() {
    let mut h = Harness::new();
    let boss = h.member("b", "boss", "boss");
    let c = h.client("c");
    h.send(
        c,
        json!({"type": "join", "kind": "join", "group": "g", "username": "carol",
                     "password": "pw", "data": {"raisehand": true}}),
    );
    h.take(c);
    assert_eq!(h.take(boss)[0]["data"], json!({"raisehand": true}));
}

#[test]
fn bad_password_answer_is_delayed_200ms_and_later_messages_wait() {
    let mut h = Harness::new();
    let c = h.client("c");
    h.send(c, json!({"type": "join", "kind": "join", "group": "g", "username": "boss", "password": "nope"}));
    h.send(c, json!({"type": "ping"}));
    assert!(h.take(c).is_empty(), "nothing before the delay");
    h.advance(Duration::from_millis(199));
    assert!(h.take(c).is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(
        h.take(c),
        [
            json!({"type": "joined", "kind": "fail", "group": "g", "username": "boss", "value": "not authorised"}),
            json!({"type": "pong"})
        ]
    );
    // The connection stays usable.
    let joined = h.join(c, "g", "boss", "boss");
    assert_eq!(joined[0]["kind"], "join");
}

#[test]
fn join_failures_have_the_galene_texts() {
    let mut h = Harness::new();
    let c = h.client("c");
    let fail = |got: Vec<Value>| got.first().map(|m| (m["kind"].clone(), m["value"].clone()));
    assert_eq!(
        fail(h.join(c, "nowhere", "carol", "pw")),
        Some((json!("fail"), json!("group does not exist")))
    );
    h.send(c, json!({"type": "join", "kind": "join", "group": "g"}));
    assert_eq!(
        fail(h.take(c)),
        Some((json!("fail"), json!("internal server error")))
    );
    // Unknown user without wildcard match → not authorised (delayed).
    h.set_group("closed", r#"{"users": {"x": {"password": "y"}}}"#);
    h.join(c, "closed", "someone", "y");
    h.advance(Duration::from_millis(200));
    assert_eq!(
        fail(h.take(c)),
        Some((json!("fail"), json!("not authorised")))
    );
    // Invalid username.
    h.join(c, "g", "/etc", "pw");
    h.advance(Duration::from_millis(200));
    assert_eq!(
        fail(h.take(c)),
        Some((json!("fail"), json!("not authorised")))
    );
    assert_eq!(h.closed(c), None);
}

#[test]
fn empty_or_duplicate_client_id_is_an_internal_error() {
    let mut h = Harness::new();
    let anonymous = h.connect();
    h.send(anonymous, json!({"type": "handshake", "version": ["2"]}));
    h.take(anonymous);
    let got = h.join(anonymous, "g", "carol", "pw");
    assert_eq!(got[0]["value"], "internal server error");
    h.member("same", "a", "pw");
    let twin = h.client("same");
    let got = h.join(twin, "g", "b", "pw");
    assert_eq!(got[0]["kind"], "fail");
    assert_eq!(got[0]["value"], "internal server error");
    assert_eq!(h.closed(twin), None);
}

#[test]
fn redirect_group_answers_joined_redirect() {
    let mut h = Harness::new();
    h.set_group("moved", r#"{"redirect": "https://example.org/"}"#);
    let c = h.client("c");
    assert_eq!(
        h.join(c, "moved", "carol", "pw"),
        [
            json!({"type": "joined", "kind": "redirect", "group": "moved", "username": "carol",
                "value": "https://example.org/"})
        ]
    );
}

#[test]
fn tokens_need_a_username_or_refuse_a_taken_one() {
    let mut h = Harness::new();
    let expires = h.wall + Duration::from_secs(3600);
    h.dir.0.borrow_mut().insert_token(StatefulToken {
        token: "invite".into(),
        group: "g".into(),
        include_subgroups: false,
        username: None,
        permissions: Some(Permissions::from_names(["present"])),
        expires: Some(expires),
        not_before: None,
        issued_at: None,
        issued_by: None,
    });
    let c = h.client("c");
    h.send(
        c,
        json!({"type": "join", "kind": "join", "group": "g", "token": "invite"}),
    );
    assert_eq!(
        h.take(c),
        [
            json!({"type": "joined", "kind": "fail", "group": "g", "error": "need-username",
                "value": "username required"})
        ]
    );
    h.send(c, json!({"type": "join", "kind": "join", "group": "g", "token": "invite", "username": "boss"}));
    let got = h.take(c);
    assert_eq!(got[0]["error"], "duplicate-username");
    assert_eq!(got[0]["value"], "this username is taken");
    h.send(c, json!({"type": "join", "kind": "join", "group": "g", "token": "invite", "username": "carol"}));
    let got = h.take(c);
    assert_eq!(got[0]["kind"], "join");
    assert_eq!(got[0]["permissions"], json!(["present"]));
}

#[test]
fn lock_opening_hours_and_max_clients_refuse_non_operators_only() {
    let mut h = Harness::new();
    let boss = h.member("b", "boss", "boss");
    h.send(
        boss,
        json!({"type": "groupaction", "source": "b", "kind": "lock", "value": "come back later"}),
    );
    let change = h.take(boss);
    assert_eq!(change[0]["kind"], "change");
    assert_eq!(change[0]["status"]["locked"], true);
    let c = h.client("c");
    assert_eq!(h.join(c, "g", "carol", "pw")[0]["value"], "come back later");
    h.send(boss, json!({"type": "groupaction", "kind": "lock"}));
    assert_eq!(
        h.join(c, "g", "carol", "pw")[0]["value"],
        "this group is locked"
    );
    let boss2 = h.client("b2");
    assert_eq!(h.join(boss2, "g", "boss", "boss")[0]["kind"], "join");
    h.take(boss);
    h.send(boss, json!({"type": "groupaction", "kind": "unlock"}));
    let change = h.take(boss);
    assert!(change[0]["status"].get("locked").is_none());

    let past = "2020-01-01T00:00:00Z";
    let future = "2099-01-01T00:00:00Z";
    h.set_group(
        "later",
        &format!(r#"{{"wildcard-user": {{"password": "pw"}}, "not-before": "{future}"}}"#),
    );
    h.set_group(
        "over",
        &format!(r#"{{"wildcard-user": {{"password": "pw"}}, "expires": "{past}"}}"#),
    );
    h.set_group(
        "small",
        r#"{"max-clients": 1, "users": {"boss": {"password": "boss", "permissions": "op"}},
            "wildcard-user": {"password": "pw"}}"#,
    );
    assert_eq!(
        h.join(c, "later", "carol", "pw")[0]["value"],
        "this group is not open yet"
    );
    assert_eq!(
        h.join(c, "over", "carol", "pw")[0]["value"],
        "this group is closed"
    );
    assert_eq!(h.join(c, "small", "carol", "pw")[0]["kind"], "join");
    let d = h.client("d");
    assert_eq!(
        h.join(d, "small", "dave", "pw")[0]["value"],
        "too many users"
    );
    let e = h.client("e");
    assert_eq!(h.join(e, "small", "boss", "boss")[0]["kind"], "join");
}

#[test]
fn joined_carries_ice_servers_relay_policy_and_can_change_password() {
    let mut h = Harness::with_options(AppOptions { relay_only: true });
    h.dir.0.borrow_mut().set_ice_servers(&[IceServer {
        urls: vec!["turn:203.0.113.1:1194".into()],
        username: Some("u".into()),
        credential: Some("secret".into()),
        credential_type: None,
    }]);
    h.dir.0.borrow_mut().set_config(GlobalConfig {
        writable_groups: true,
        ..GlobalConfig::default()
    });
    let c = h.client("c");
    let got = h.join(c, "g", "carol", "pw");
    assert_eq!(
        got[0]["rtcConfiguration"],
        json!({"iceServers": [{"urls": ["turn:203.0.113.1:1194"], "username": "u", "credential": "secret"}],
               "iceTransportPolicy": "relay"})
    );
    assert_eq!(got[0]["status"]["canChangePassword"], true);
}

#[test]
fn join_twice_and_unknown_kind_are_protocol_errors() {
    let mut h = Harness::new();
    let c = h.member("c", "carol", "pw");
    h.send(c, json!({"type": "join", "kind": "join", "group": "g", "username": "carol", "password": "pw"}));
    assert_eq!(
        h.take(c),
        [error_message("c", "cannot join multiple groups")]
    );
    assert_eq!(h.closed(c), Some((1002, "cannot join multiple groups")));
    let d = h.client("d");
    h.send(d, json!({"type": "join", "kind": "sideways", "group": "g"}));
    assert_eq!(h.closed(d), Some((1002, "unknown kind")));
}

#[test]
fn leave_then_join_again() {
    let mut h = Harness::new();
    let boss = h.member("b", "boss", "boss");
    let c = h.member("c", "carol", "pw");
    h.take(boss);
    h.send(
        c,
        json!({"type": "join", "kind": "leave", "group": "g", "username": "carol"}),
    );
    let got = h.take(c);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["kind"], "leave");
    assert_eq!(got[0]["status"]["clientCount"], 1);
    assert_eq!(
        h.take(boss),
        [json!({"type": "user", "kind": "delete", "id": "c", "username": "carol"})]
    );
    assert_eq!(h.join(c, "g", "carol", "pw")[0]["kind"], "join");
    h.send(
        c,
        json!({"type": "join", "kind": "leave", "group": "other"}),
    );
    assert_eq!(h.take(c), [error_message("c", "you are not joined")]);
    assert_eq!(h.closed(c), Some((1000, "you are not joined")));
}

// ----- chat -----

#[test]
fn broadcast_chat_gets_id_time_and_reaches_everybody() {
    let mut h = Harness::new();
    let boss = h.member("b", "boss", "boss");
    let c = h.member("c", "carol", "pw");
    h.take(boss);
    h.send(
        c,
        json!({"type": "chat", "source": "c", "username": "carol", "kind": "me", "value": "waves"}),
    );
    let to_boss = h.take(boss);
    let to_self = h.take(c);
    assert_eq!(to_boss, to_self);
    let m = &to_boss[0];
    assert_eq!(m["type"], "chat");
    assert_eq!(m["kind"], "me");
    assert_eq!(m["value"], "waves");
    assert!(m.get("privileged").is_none());
    let id = m["id"].as_str().unwrap_or("");
    assert_eq!(id.len(), 11, "8 random bytes in base64url: {id}");
    let time = m["time"].as_str().unwrap_or("");
    let parsed = chrono::DateTime::parse_from_rfc3339(time);
    assert_eq!(
        parsed.map(|t| t.timestamp()).ok(),
        Some(1_800_000_000),
        "{time}"
    );
    assert!(!time.contains('.'), "second precision: {time}");
    // An operator's messages are privileged.
    h.send(
        boss,
        json!({"type": "chat", "value": "hello", "noecho": true}),
    );
    assert!(h.take(boss).is_empty(), "noecho");
    assert_eq!(h.take(c)[0]["privileged"], true);
}

#[test]
fn private_messages_and_unknown_recipients() {
    let mut h = Harness::new();
    let boss = h.member("b", "boss", "boss");
    let c = h.member("c", "carol", "pw");
    h.take(boss);
    h.send(
        c,
        json!({"type": "chat", "source": "c", "dest": "b", "value": "psst"}),
    );
    assert!(h.take(c).is_empty());
    let got = h.take(boss);
    assert_eq!(got[0]["dest"], "b");
    assert!(
        got[0].get("id").is_none(),
        "no id generated for private chat"
    );
    h.send(
        c,
        json!({"type": "usermessage", "dest": "nobody", "kind": "mute"}),
    );
    assert_eq!(h.take(c), [error_message("c", "user unknown")]);
    // Private chat is not history.
    let d = h.client("d");
    let got = h.join(d, "g", "dave", "pw");
    assert!(of_type(&got, "chathistory").is_empty());
}

#[test]
fn usermessages_are_forwarded_but_never_stored() {
    let mut h = Harness::new();
    let boss = h.member("b", "boss", "boss");
    let c = h.member("c", "carol", "pw");
    h.take(boss);
    h.send(
        boss,
        json!({"type": "usermessage", "kind": "info", "value": {"x": 1}}),
    );
    let got = h.take(c);
    assert_eq!(got[0]["type"], "usermessage");
    assert_eq!(got[0]["value"], json!({"x": 1}));
    assert!(got[0].get("id").is_none());
    let d = h.client("d");
    assert!(of_type(&h.join(d, "g", "dave", "pw"), "chathistory").is_empty());
}

#[test]
fn chat_needs_a_group_and_the_right_permission() {
    let mut h = Harness::new();
    let c = h.client("c");
    h.send(c, json!({"type": "chat", "value": "hi"}));
    assert_eq!(h.take(c), [error_message("c", "join a group first")]);
    h.join(c, "g", "carol", "pw");
    h.send(
        c,
        json!({"type": "chat", "kind": "caption", "value": "subtitle"}),
    );
    assert_eq!(h.take(c), [error_message("c", "not authorised")]);
    assert_eq!(h.closed(c), None);
    h.set_group(
        "quiet",
        r#"{"wildcard-user": {"password": "pw", "permissions": "observe"}}"#,
    );
    let d = h.client("d");
    h.join(d, "quiet", "dave", "pw");
    h.send(
        d,
        json!({"type": "usermessage", "kind": "filetransfer", "dest": "d"}),
    );
    assert_eq!(h.take(d), [error_message("d", "not authorised")]);
}

#[test]
fn history_keeps_fifty_lines_and_expires_with_max_history_age() {
    let mut h = Harness::new();
    h.set_group(
        "short",
        r#"{"max-history-age": 60, "wildcard-user": {"password": "pw", "permissions": "present"}}"#,
    );
    let a = h.client("a");
    h.join(a, "short", "alice", "pw");
    for i in 0..55 {
        h.send(a, json!({"type": "chat", "value": i}));
    }
    let c = h.client("c");
    let got = h.join(c, "short", "carol", "pw");
    let history = of_type(&got, "chathistory");
    assert_eq!(history.len(), 50);
    assert_eq!(history[0]["value"], 5);
    assert_eq!(history[49]["value"], 54);
    h.advance(Duration::from_secs(30));
    h.send(a, json!({"type": "chat", "value": "recent"}));
    h.advance(Duration::from_secs(31));
    let d = h.client("d");
    let got = h.join(d, "short", "dave", "pw");
    let history = of_type(&got, "chathistory");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["value"], "recent");
}

// ----- user actions -----

#[test]
fn op_gives_permissions_and_everybody_hears_about_it() {
    let mut h = Harness::new();
    let boss = h.member("b", "boss", "boss");
    let c = h.member("c", "carol", "pw");
    h.take(boss);
    h.send(
        boss,
        json!({"type": "useraction", "source": "b", "username": "boss", "kind": "op", "dest": "c"}),
    );
    let got = h.take(c);
    assert_eq!(got[0]["type"], "joined");
    assert_eq!(got[0]["kind"], "change");
    assert_eq!(got[0]["permissions"], json!(["present", "message", "op"]));
    assert_eq!(got[1]["type"], "user");
    assert_eq!(got[1]["kind"], "change");
    assert_eq!(got[1]["permissions"], json!(["present", "message", "op"]));
    assert_eq!(h.take(boss), [got[1].clone()]);
    // Each client has its own copy: unpresent carol does not affect a later joiner.
    h.send(
        boss,
        json!({"type": "useraction", "kind": "unpresent", "dest": "c"}),
    );
    h.send(
        boss,
        json!({"type": "useraction", "kind": "shutup", "dest": "c"}),
    );
    let got = h.take(c);
    assert_eq!(
        got.last().map(|m| m["permissions"].clone()),
        Some(json!(["op"]))
    );
    let d = h.client("d");
    assert_eq!(
        h.join(d, "g", "dave", "pw")[0]["permissions"],
        json!(["present", "message"])
    );
    h.take(c);
    h.send(c, json!({"type": "chat", "value": "can I?"}));
    assert_eq!(h.take(c), [error_message("c", "not authorised")]);
    h.send(
        boss,
        json!({"type": "useraction", "kind": "unshutup", "dest": "c"}),
    );
    h.send(
        boss,
        json!({"type": "useraction", "kind": "unop", "dest": "c"}),
    );
    let got = h.take(c);
    assert_eq!(
        got.last().map(|m| m["permissions"].clone()),
        Some(json!(["message"]))
    );
}

#[test]
fn user_action_errors_do_not_disconnect() {
    let mut h = Harness::new();
    let boss = h.member("b", "boss", "boss");
    let c = h.member("c", "carol", "pw");
    h.take(boss);
    h.send(c, json!({"type": "useraction", "kind": "op", "dest": "c"}));
    assert_eq!(h.take(c), [error_message("c", "not authorised")]);
    h.send(
        boss,
        json!({"type": "useraction", "kind": "present", "dest": "zz"}),
    );
    h.send(
        boss,
        json!({"type": "useraction", "kind": "kick", "dest": "zz"}),
    );
    h.send(
        boss,
        json!({"type": "useraction", "kind": "identify", "dest": "zz"}),
    );
    h.send(
        boss,
        json!({"type": "useraction", "kind": "dance", "dest": "c"}),
    );
    assert_eq!(
        h.take(boss),
        [
            error_message("b", "no suck user"),
            error_message("b", "no such user"),
            error_message("b", "client not found"),
            error_message("b", "unknown user action"),
        ]
    );
    assert_eq!(h.closed(boss), None);
    let d = h.client("d");
    h.send(d, json!({"type": "useraction", "kind": "op", "dest": "c"}));
    h.send(
        d,
        json!({"type": "useraction", "kind": "dance", "dest": "c"}),
    );
    h.send(d, json!({"type": "groupaction", "kind": "juggle"}));
    assert_eq!(h.take(d), vec![error_message("d", "join a group first"); 3]);
}

#[test]
fn kick_closes_the_target_and_others_see_it_leave() {
    let mut h = Harness::new();
    let boss = h.member("b", "boss", "boss");
    let c = h.member("c", "carol", "pw");
    h.take(boss);
    h.send(
        boss,
        json!({"type": "useraction", "kind": "kick", "dest": "c", "value": "behave"}),
    );
    assert_eq!(
        h.take(c),
        [
            json!({"type": "usermessage", "kind": "kicked", "id": "b", "username": "boss",
                "dest": "c", "privileged": true, "value": "behave"})
        ]
    );
    assert_eq!(h.closed(c), Some((1000, "kicked out (behave) by boss")));
    assert_eq!(
        h.take(boss),
        [json!({"type": "user", "kind": "delete", "id": "c", "username": "carol"})]
    );
    // The runtime then reports the disconnect; nothing more happens.
    h.app.handle_disconnect(h.now, c);
    h.pump();
    assert!(h.take(boss).is_empty());
    let d = h.member("d", "dave", "pw");
    h.take(boss);
    h.send(
        boss,
        json!({"type": "useraction", "kind": "kick", "dest": "d"}),
    );
    assert_eq!(h.take(d)[0]["value"], "you have been kicked out");
    assert_eq!(h.closed(d), Some((1000, "kicked out by boss")));
}

#[test]
fn identify_tells_the_operator_and_warns_the_target() {
    let mut h = Harness::new();
    let boss = h.member("b", "boss", "boss");
    let c = h.member("c", "carol", "pw");
    h.take(boss);
    h.send(
        boss,
        json!({"type": "useraction", "kind": "identify", "dest": "c"}),
    );
    assert_eq!(
        h.take(boss),
        [
            json!({"type": "usermessage", "kind": "userinfo", "privileged": true,
                "value": {"id": "c", "username": "carol", "address": "192.0.2.7:4242"}})
        ]
    );
    assert_eq!(
        h.take(c),
        [
            json!({"type": "usermessage", "kind": "warning", "dest": "c", "privileged": true,
                "value": "Your IP address has been communicated to user boss."})
        ]
    );
}

#[test]
fn setdata_raises_a_hand_for_everybody() {
    let mut h = Harness::new();
    let boss = h.member("b", "boss", "boss");
    let c = h.member("c", "carol", "pw");
    h.take(boss);
    h.send(c, json!({"type": "useraction", "source": "c", "kind": "setdata", "dest": "c", "value": {"raisehand": true}}));
    let expected = json!({"type": "user", "kind": "change", "id": "c", "username": "carol",
                          "permissions": ["present", "message"], "data": {"raisehand": true}});
    assert_eq!(h.take(c), std::slice::from_ref(&expected));
    assert_eq!(h.take(boss), [expected]);
    h.send(
        c,
        json!({"type": "useraction", "kind": "setdata", "dest": "c", "value": {"raisehand": null}}),
    );
    assert!(h.take(boss)[0].get("data").is_none());
    h.send(
        c,
        json!({"type": "useraction", "kind": "setdata", "dest": "b", "value": {}}),
    );
    h.send(
        c,
        json!({"type": "useraction", "kind": "setdata", "dest": "c", "value": 3}),
    );
    assert_eq!(
        h.take(c),
        [
            json!({"type": "user", "kind": "change", "id": "c", "username": "carol",
                   "permissions": ["present", "message"]}),
            error_message("c", "not authorised"),
            error_message("c", "Bad value in setdata"),
        ]
    );
}

// ----- both dialects -----

#[test]
fn seed_and_v2_clients_share_a_group_each_in_its_dialect() {
    let mut h = Harness::new();
    let boss = h.member("b", "boss", "boss");
    let s = h.seed_client("s");
    let got = h.join(s, "g", "sam", "pw");
    assert_eq!(
        got[0]["permissions"],
        json!(["present"]),
        "seed knows op/present/record"
    );
    let others = of_type(&got, "user");
    assert_eq!(others[1]["permissions"], json!(["op", "present"]));
    h.take(boss);
    h.send(s, json!({"type": "useraction", "source": "s", "kind": "setstatus", "dest": "s", "value": {"mood": "ok"}}));
    assert_eq!(h.take(s)[0]["status"], json!({"mood": "ok"}));
    let got = h.take(boss);
    assert_eq!(got[0]["data"], json!({"mood": "ok"}));
    assert!(got[0].get("status").is_none());
    h.send(
        boss,
        json!({"type": "useraction", "kind": "setdata", "dest": "b", "value": {"raisehand": true}}),
    );
    let got = h.take(s);
    assert_eq!(got[0]["status"], json!({"raisehand": true}));
    assert!(got[0].get("data").is_none());
    // Requests in each shape.
    h.send(
        s,
        json!({"type": "request", "request": {"audio": true, "video": false}}),
    );
    h.send(
        boss,
        json!({"type": "request", "request": {"": ["audio", "video"]}}),
    );
    assert_eq!(h.closed(s), None);
    assert_eq!(h.closed(boss), None);
    h.send(s, json!({"type": "request", "request": {"": ["audio"]}}));
    assert_eq!(h.closed(s).map(|c| c.0), Some(1011));
}

// ----- group actions -----

#[test]
fn clearchat_in_its_three_forms() {
    let mut h = Harness::new();
    let boss = h.member("b", "boss", "boss");
    let c = h.member("c", "carol", "pw");
    h.send(c, json!({"type": "chat", "value": "one", "id": "m1"}));
    h.send(c, json!({"type": "chat", "value": "two", "id": "m2"}));
    h.send(boss, json!({"type": "chat", "value": "three", "id": "m3"}));
    h.take(boss);
    h.take(c);
    /// The history a newcomer gets.
    fn history(h: &mut Harness) -> Vec<Value> {
        let x = h.client("x");
        let got = h.join(x, "g", "xavier", "pw");
        h.app.handle_disconnect(h.now, x);
        h.pump();
        of_type(&got, "chathistory")
            .iter()
            .map(|m| m["value"].clone())
            .collect()
    }
    h.send(
        boss,
        json!({"type": "groupaction", "kind": "clearchat", "value": {"id": "m1", "userId": "c"}}),
    );
    assert_eq!(
        h.take(c),
        [
            json!({"type": "usermessage", "kind": "clearchat", "privileged": true,
                "value": {"id": "m1", "userId": "c"}})
        ]
    );
    assert_eq!(history(&mut h), [json!("two"), json!("three")]);
    h.send(
        boss,
        json!({"type": "groupaction", "kind": "clearchat", "value": {"userId": "c"}}),
    );
    assert_eq!(history(&mut h), [json!("three")]);
    h.send(boss, json!({"type": "groupaction", "kind": "clearchat"}));
    assert!(history(&mut h).is_empty());
    h.take(boss);
    h.send(
        boss,
        json!({"type": "groupaction", "kind": "clearchat", "value": {"id": "m1"}}),
    );
    h.send(c, json!({"type": "groupaction", "kind": "clearchat"}));
    assert_eq!(
        h.take(boss).last(),
        Some(&error_message("b", "bad value in clearchat"))
    );
    assert_eq!(
        h.take(c).last(),
        Some(&error_message("c", "not authorised"))
    );
}

#[test]
fn group_setdata_subgroups_record_and_unknown_actions() {
    let mut h = Harness::new();
    h.set_group(
        "class",
        r#"{"auto-subgroups": true, "allow-recording": true,
            "users": {"boss": {"password": "boss", "permissions": "op"}},
            "wildcard-user": {"password": "pw", "permissions": "present"}}"#,
    );
    let boss = h.client("b");
    h.join(boss, "class", "boss", "boss");
    let x = h.client("x");
    assert_eq!(h.join(x, "class/room1", "xavier", "pw")[0]["kind"], "join");
    let y = h.client("y");
    h.join(y, "class/room1", "yann", "pw");
    h.send(boss, json!({"type": "groupaction", "kind": "subgroups"}));
    let got = h.take(boss);
    assert_eq!(got[0]["type"], "chat");
    assert_eq!(got[0]["dest"], "b");
    assert_eq!(got[0]["username"], "Server");
    assert_eq!(got[0]["value"], "class/room1 (2 clients)");
    assert!(got[0]["time"].is_string());

    h.send(
        boss,
        json!({"type": "groupaction", "kind": "setdata", "value": {"topic": "maths"}}),
    );
    let got = h.take(boss);
    assert_eq!(got[0]["kind"], "change");
    assert_eq!(got[0]["data"], json!({"topic": "maths"}));
    h.send(
        boss,
        json!({"type": "groupaction", "kind": "setdata", "value": "maths"}),
    );
    h.send(boss, json!({"type": "groupaction", "kind": "juggle"}));
    assert_eq!(
        h.take(boss),
        [
            error_message("b", "Bad value in setdata"),
            error_message("b", "unknown group action"),
        ]
    );
    assert_eq!(h.closed(boss), None);
    h.send(x, json!({"type": "groupaction", "kind": "unrecord"}));
    assert_eq!(
        h.take(x).last(),
        Some(&error_message("x", "not authorised"))
    );
}

#[test]
fn tokens_are_made_listed_and_edited() {
    let mut h = Harness::new();
    let boss = h.member("b", "boss", "boss");
    h.send(
        boss,
        json!({"type": "groupaction", "kind": "maketoken",
                        "value": {"group": "g", "permissions": ["present"], "expires": 86400000}}),
    );
    let got = h.take(boss);
    assert_eq!(got[0]["kind"], "token");
    assert_eq!(got[0]["privileged"], true);
    let token = got[0]["value"].clone();
    let name = token["token"].as_str().unwrap_or("").to_owned();
    assert_eq!(name.len(), 11);
    assert_eq!(token["group"], "g");
    assert_eq!(token["issuedBy"], "boss");
    assert_eq!(token["permissions"], json!(["present"]));
    assert!(
        h.dir.0.borrow_mut().token(&name).is_some(),
        "stored in the directory"
    );

    // The token works for joining.
    let c = h.client("c");
    h.send(
        c,
        json!({"type": "join", "kind": "join", "group": "g", "token": name, "username": "carol"}),
    );
    assert_eq!(h.take(c)[0]["permissions"], json!(["present"]));

    let token_error = |error: &str, text: &str| json!({"type": "usermessage", "kind": "token", "privileged": true, "error": error, "value": text});
    h.send(boss, json!({"type": "groupaction", "kind": "maketoken", "value": {"group": "other", "expires": 1000}}));
    h.send(
        boss,
        json!({"type": "groupaction", "kind": "maketoken", "value": {"group": "g"}}),
    );
    h.send(boss, json!({"type": "groupaction", "kind": "maketoken", "value": {"group": "g", "expires": 1, "token": "mine"}}));
    h.send(boss, json!({"type": "groupaction", "kind": "maketoken", "value": {"group": "g", "expires": 1, "username": "boss"}}));
    h.send(boss, json!({"type": "groupaction", "kind": "maketoken", "value": {"group": "g", "expires": 1, "permissions": ["admin"]}}));
    h.send(
        boss,
        json!({"type": "groupaction", "kind": "maketoken", "value": "please"}),
    );
    h.take(c);
    h.send(
        c,
        json!({"type": "groupaction", "kind": "maketoken", "value": {"group": "g", "expires": 1}}),
    );
    let got: Vec<Value> = h
        .take(boss)
        .into_iter()
        .filter(|m| m["kind"] == "token")
        .collect();
    assert_eq!(
        got,
        [
            token_error("error", "wrong group in token"),
            token_error("error", "token doesn't expire"),
            token_error("error", "client specified token"),
            token_error("error", "that username is taken"),
            token_error("not-authorised", "not authorised"),
            token_error("error", "bad token value"),
        ]
    );
    assert_eq!(h.take(c), [token_error("not-authorised", "not authorised")]);

    h.send(boss, json!({"type": "groupaction", "kind": "listtokens"}));
    let got = h.take(boss);
    assert_eq!(got[0]["kind"], "tokenlist");
    assert_eq!(got[0]["value"][0]["token"], json!(name));

    h.send(boss, json!({"type": "groupaction", "kind": "edittoken", "value": {"token": name, "expires": -1000}}));
    let got = h.take(boss);
    assert_eq!(got[0]["kind"], "token");
    let stored = h.dir.0.borrow_mut().token(&name);
    assert!(stored.is_some_and(|t| t.expires < Some(h.wall)), "revoked");
    h.send(boss, json!({"type": "groupaction", "kind": "edittoken", "value": {"token": "nope", "expires": 1}}));
    h.send(
        boss,
        json!({"type": "groupaction", "kind": "edittoken", "value": {"token": name, "group": "x"}}),
    );
    assert_eq!(
        h.take(boss),
        [
            error_message("b", "file does not exist"),
            error_message("b", "this field cannot be edited"),
        ]
    );
    h.send(c, json!({"type": "groupaction", "kind": "listtokens"}));
    assert_eq!(h.take(c), [error_message("c", "not authorised")]);
}

// ----- autolock, autokick, reload, expiry -----

#[test]
fn autolock_locks_without_operators() {
    let mut h = Harness::new();
    h.set_group(
        "auto",
        r#"{"autolock": true, "users": {"boss": {"password": "boss", "permissions": "op"}},
            "wildcard-user": {"password": "pw", "permissions": "present"}}"#,
    );
    let c = h.client("c");
    assert_eq!(
        h.join(c, "auto", "carol", "pw")[0]["value"],
        "this group is locked"
    );
    let boss = h.client("b");
    let got = h.join(boss, "auto", "boss", "boss");
    assert_eq!(got[0]["status"]["locked"], true);
    h.send(boss, json!({"type": "groupaction", "kind": "unlock"}));
    assert_eq!(h.join(c, "auto", "carol", "pw")[0]["kind"], "join");
    h.take(boss);
    h.app.handle_disconnect(h.now, boss);
    h.pump();
    let got = h.take(c);
    assert_eq!(got[0]["type"], "user");
    assert_eq!(got[0]["kind"], "delete");
    assert_eq!(got[1]["type"], "joined");
    assert_eq!(got[1]["kind"], "change");
    assert_eq!(got[1]["status"]["locked"], true);
}

#[test]
fn autokick_kicks_everybody_when_the_last_operator_leaves() {
    let mut h = Harness::new();
    h.set_group(
        "strict",
        r#"{"autokick": true, "users": {"boss": {"password": "boss", "permissions": "op"}},
            "wildcard-user": {"password": "pw", "permissions": "present"}}"#,
    );
    let c = h.client("c");
    assert_eq!(
        h.join(c, "strict", "carol", "pw")[0]["value"],
        "there are no operators in this group"
    );
    let boss = h.client("b");
    h.join(boss, "strict", "boss", "boss");
    h.join(c, "strict", "carol", "pw");
    let d = h.client("d");
    h.join(d, "strict", "dave", "pw");
    h.send(
        boss,
        json!({"type": "join", "kind": "leave", "group": "strict"}),
    );
    for conn in [c, d] {
        assert_eq!(
            h.closed(conn),
            Some((1000, "kicked out (there are no operators in this group)"))
        );
    }
    let GroupLookup::Found(status) = h.app.group_status(h.now, "strict") else {
        panic!("group strict vanished");
    };
    assert_eq!(status.client_count, 0);
}

#[test]
fn edited_group_file_sends_joined_change_to_members() {
    let mut h = Harness::new();
    let c = h.member("c", "carol", "pw");
    h.set_group(
        "g",
        r#"{"displayName": "The G", "wildcard-user": {"password": "pw", "permissions": "present"}}"#,
    );
    let GroupLookup::Found(status) = h.app.group_status(h.now, "g") else {
        panic!("group g not found");
    };
    assert_eq!(status.display_name.as_deref(), Some("The G"));
    assert_eq!(status.client_count, 1);
    h.pump();
    let got = h.take(c);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["kind"], "change");
    assert_eq!(got[0]["status"]["displayName"], "The G");
    // Unchanged: no notification.
    h.app.group_status(h.now, "g");
    h.pump();
    assert!(h.take(c).is_empty());
}

#[test]
fn idle_empty_groups_are_dropped_by_maintenance() {
    let mut h = Harness::new();
    h.set_group("pub", r#"{"public": true, "max-history-age": 60}"#);
    h.set_group(
        "idle",
        r#"{"max-history-age": 60, "wildcard-user": {"password": "pw"}}"#,
    );
    let c = h.client("c");
    h.join(c, "idle", "carol", "pw");
    h.app.group_status(h.now, "pub");
    h.app.handle_disconnect(h.now, c);
    h.pump();
    assert_eq!(h.app.core().group_count(), 2);
    h.advance(Duration::from_secs(15 * 60));
    assert_eq!(h.app.core().group_count(), 1, "the public group stays");
}

#[test]
fn public_groups_show_runtime_lock_and_count() {
    let mut h = Harness::new();
    h.set_group(
        "pub",
        r#"{"public": true, "displayName": "Pub",
            "users": {"boss": {"password": "boss", "permissions": "op"}}}"#,
    );
    let boss = h.client("b");
    h.join(boss, "pub", "boss", "boss");
    h.send(boss, json!({"type": "groupaction", "kind": "lock"}));
    let list = h.app.public_groups(h.now);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "pub");
    assert!(list[0].locked);
    assert_eq!(list[0].client_count, 1);
    assert_eq!(h.app.group_status(h.now, "nope"), GroupLookup::NotFound);
}

// ----- errors and close codes -----

#[test]
fn malformed_input_closes_with_1011() {
    for (text, what) in [
        ("{not json", "malformed JSON"),
        (r#"{"type":"chat","kind":3}"#, "wrong type"),
        (r#"{"type":"request","request":[1]}"#, "bad request shape"),
        (
            r#"{"type":"requestStream","id":"s","request":["audio"]}"#,
            "unknown stream",
        ),
    ] {
        let mut h = Harness::new();
        let c = h.member("c", "carol", "pw");
        h.send_raw(c, text);
        assert_eq!(h.closed(c).map(|c| c.0), Some(1011), "{what}");
        assert!(
            h.take(c).is_empty(),
            "{what}: no message before a 1011 close"
        );
    }
}

#[test]
fn protocol_errors_close_with_1002_after_an_error_message() {
    for (message, text) in [
        (
            json!({"type": "chat", "source": "someone", "value": "x"}),
            "spoofed client id",
        ),
        (
            json!({"type": "chat", "username": "boss", "value": "x"}),
            "spoofed username",
        ),
        (json!({"type": "dance"}), "unexpected message"),
        (json!({"type": "ice", "id": "s1"}), "null candidate"),
        (json!({"type": "offer", "sdp": "v=0"}), "empty id"),
    ] {
        let mut h = Harness::new();
        let c = h.member("c", "carol", "pw");
        h.send(c, message);
        assert_eq!(h.take(c), [error_message("c", text)]);
        assert_eq!(h.closed(c), Some((1002, text)));
    }
}

#[test]
fn request_before_join_is_a_user_error() {
    let mut h = Harness::new();
    let c = h.client("c");
    h.send(c, json!({"type": "request", "request": {"": ["audio"]}}));
    assert_eq!(h.take(c), [error_message("c", "join a group first")]);
    assert_eq!(h.closed(c), Some((1000, "join a group first")));
}

#[test]
fn offers_are_refused_without_disconnecting() {
    let mut h = Harness::new();
    h.set_group(
        "watch",
        r#"{"wildcard-user": {"password": "pw", "permissions": "observe"}}"#,
    );
    let o = h.client("o");
    h.join(o, "watch", "olga", "pw");
    h.send(
        o,
        json!({"type": "offer", "id": "s1", "label": "camera", "sdp": "v=0"}),
    );
    assert_eq!(
        h.take(o),
        [
            json!({"type": "abort", "id": "s1"}),
            error_message("o", "not authorised")
        ]
    );
    let c = h.member("c", "carol", "pw");
    h.send(
        c,
        json!({"type": "offer", "id": "s2", "label": "camera", "sdp": "v=0"}),
    );
    assert_eq!(
        h.take(c),
        [
            json!({"type": "abort", "id": "s2"}),
            error_message("c", "publishing is not available on this server")
        ]
    );
    h.send(c, json!({"type": "answer", "id": "d1", "sdp": "v=0"}));
    h.send(c, json!({"type": "abort", "id": "d2"}));
    h.send(c, json!({"type": "renegotiate", "id": "d3"}));
    h.send(c, json!({"type": "close", "id": "s2"}));
    h.send(c, json!({"type": "ice", "id": "d4", "candidate": {"candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host"}}));
    assert_eq!(
        h.take(c),
        [
            json!({"type": "close", "id": "d1"}),
            json!({"type": "close", "id": "d2"})
        ]
    );
    assert_eq!(h.closed(c), None);
    assert_eq!(h.closed(o), None);
}

#[test]
fn binary_frames_close_with_1003() {
    let mut h = Harness::new();
    let c = h.member("c", "carol", "pw");
    let boss = h.member("b", "boss", "boss");
    h.take(c);
    h.app.handle_binary(h.now, c, b"{}");
    h.pump();
    assert_eq!(h.closed(c).map(|c| c.0), Some(1003));
    assert_eq!(
        h.take(boss),
        [json!({"type": "user", "kind": "delete", "id": "c", "username": "carol"})]
    );
}

#[test]
fn disconnect_tells_the_others() {
    let mut h = Harness::new();
    let c = h.member("c", "carol", "pw");
    let d = h.member("d", "dave", "pw");
    h.take(c);
    h.app.handle_disconnect(h.now, d);
    h.pump();
    assert_eq!(
        h.take(c),
        [json!({"type": "user", "kind": "delete", "id": "d", "username": "dave"})]
    );
}

#[test]
fn shutdown_locks_groups_and_kicks_everybody() {
    let mut h = Harness::new();
    let c = h.member("c", "carol", "pw");
    let idle = h.client("i");
    h.app.shutdown(h.now, "server restarting");
    h.pump();
    for conn in [c, idle] {
        assert_eq!(
            h.closed(conn),
            Some((1000, "kicked out (server restarting)"))
        );
    }
    assert_eq!(
        h.take(c).last().map(|m| m["value"].clone()),
        Some(json!("server restarting"))
    );
    let late = h.client("l");
    assert_eq!(
        h.join(late, "g", "lea", "pw")[0]["value"],
        "server restarting"
    );
}

#[test]
fn close_reasons_fit_in_a_close_frame() {
    let mut h = Harness::new();
    let boss = h.member("b", "boss", "boss");
    let c = h.member("c", "carol", "pw");
    let long = "é".repeat(100);
    h.send(
        boss,
        json!({"type": "useraction", "kind": "kick", "dest": "c", "value": long}),
    );
    let (code, reason) = h.closed(c).unwrap_or((0, ""));
    assert_eq!(code, 1000);
    assert!(reason.len() <= 123 && reason.starts_with("kicked out (é"));
}
