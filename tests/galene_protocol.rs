//! The Galène WebSocket protocol end to end: a real server on 127.0.0.1, real WebSocket
//! clients, plain and TLS (Galène's protocol version "2" and the older seed dialect; see
//! docs/galene.md).

mod common;

use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use common::{Setup, TestServer, WsClient};
use serde_json::{Value, json};

const GROUP: &str = r#"{
    "users": {"boss": {"password": "boss", "permissions": "op"}},
    "wildcard-user": {"password": "pw", "permissions": "present"}
}"#;

fn server(setup: Setup) -> TestServer {
    TestServer::start(setup.group("g", GROUP))
}

/// A handshaken version "2" client.
fn client(server: &TestServer, id: &str) -> WsClient {
    let mut ws = server.ws_connect();
    ws.send_json(json!({"type": "handshake", "version": ["2"], "id": id}));
    assert_eq!(
        ws.recv_json(),
        json!({"type": "handshake", "version": ["2"]})
    );
    ws
}

/// Joins `g` and returns the `joined` message; the rest of the join burst stays queued.
fn join(ws: &mut WsClient, username: &str, password: &str) -> Value {
    ws.send_json(json!({"type": "join", "kind": "join", "group": "g",
                        "username": username, "password": password}));
    ws.recv_type("joined")
}

/// Everything that arrives within `quiet` of silence.
fn drain(ws: &mut WsClient, quiet: Duration) -> Vec<Value> {
    let mut got = Vec::new();
    while let Some(value) = ws.recv_json_within(quiet) {
        got.push(value);
    }
    got
}

fn error_message(dest: &str, text: &str) -> Value {
    json!({"type": "usermessage", "kind": "error", "dest": dest, "privileged": true, "value": text})
}

fn chat_users_and_history(setup: Setup) {
    let server = server(setup);
    let mut boss = client(&server, "b");
    let joined = join(&mut boss, "boss", "boss");
    assert_eq!(joined["kind"], "join");
    assert_eq!(joined["username"], "boss");
    assert_eq!(
        joined["permissions"],
        json!(["op", "present", "message", "caption", "token"])
    );
    assert_eq!(joined["status"]["clientCount"], 1);
    assert!(joined["rtcConfiguration"]["iceServers"].is_array());
    assert_eq!(boss.recv_type("user")["id"], "b");

    boss.send_json(json!({"type": "chat", "source": "b", "username": "boss", "value": "hello"}));
    let echo = boss.recv_type("chat");
    assert_eq!(echo["value"], "hello");
    assert_eq!(echo["privileged"], true);
    assert_eq!(echo["id"].as_str().map(str::len), Some(11));

    let mut carol = client(&server, "c");
    let joined = join(&mut carol, "carol", "pw");
    assert_eq!(joined["permissions"], json!(["present", "message"]));
    assert_eq!(joined["status"]["clientCount"], 2);
    let history = carol.recv_json();
    assert_eq!(history["type"], "chathistory");
    assert_eq!(history["value"], "hello");
    assert_eq!(history["id"], echo["id"]);
    let me = carol.recv_json();
    assert_eq!(
        (me["type"].clone(), me["id"].clone()),
        (json!("user"), json!("c"))
    );
    let other = carol.recv_json();
    assert_eq!(
        (other["kind"].clone(), other["id"].clone()),
        (json!("add"), json!("b"))
    );
    let added = boss.recv_type("user");
    assert_eq!(added["kind"], "add");
    assert_eq!(added["username"], "carol");

    carol.send_json(
        json!({"type": "chat", "source": "c", "username": "carol", "dest": "b", "value": "psst"}),
    );
    let private = boss.recv_type("chat");
    assert_eq!(
        (private["value"].clone(), private["dest"].clone()),
        (json!("psst"), json!("b"))
    );

    carol.send_json(json!({"type": "ping"}));
    assert_eq!(carol.recv_json(), json!({"type": "pong"}));

    drop(carol);
    assert_eq!(
        boss.recv_type("user"),
        json!({"type": "user", "kind": "delete", "id": "c", "username": "carol"})
    );
}

#[test]
fn chat_users_and_history_plain() {
    chat_users_and_history(Setup::insecure());
}

#[test]
fn chat_users_and_history_tls() {
    chat_users_and_history(Setup::tls());
}

#[test]
fn join_failures() {
    let server = server(Setup::insecure());
    let mut c = client(&server, "c");
    let started = Instant::now();
    let fail = join(&mut c, "boss", "wrong");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "failed password is delayed"
    );
    assert_eq!(
        fail,
        json!({"type": "joined", "kind": "fail", "group": "g", "username": "boss", "value": "not authorised"})
    );
    c.send_json(json!({"type": "join", "kind": "join", "group": "nowhere", "username": "x", "password": "pw"}));
    assert_eq!(c.recv_json()["value"], "group does not exist");
    c.send_json(json!({"type": "join", "kind": "join", "group": "g"}));
    assert_eq!(c.recv_json()["value"], "internal server error");
    // Still usable after failures.
    assert_eq!(join(&mut c, "boss", "boss")["kind"], "join");
}

#[test]
fn operator_actions_raise_hand_lock_and_kick() {
    let server = server(Setup::tls());
    let mut boss = client(&server, "b");
    join(&mut boss, "boss", "boss");
    let mut carol = client(&server, "c");
    join(&mut carol, "carol", "pw");
    drain(&mut carol, Duration::from_millis(200));
    drain(&mut boss, Duration::from_millis(200));

    boss.send_json(json!({"type": "useraction", "source": "b", "kind": "op", "dest": "c"}));
    let change = carol.recv_type("joined");
    assert_eq!(change["kind"], "change");
    assert_eq!(change["permissions"], json!(["present", "message", "op"]));
    assert_eq!(
        boss.recv_type("user")["permissions"],
        json!(["present", "message", "op"])
    );
    boss.send_json(json!({"type": "useraction", "kind": "unop", "dest": "c"}));
    carol.recv_type("joined");
    drain(&mut carol, Duration::from_millis(100));
    drain(&mut boss, Duration::from_millis(100));

    carol.send_json(
        json!({"type": "useraction", "source": "c", "kind": "setdata", "dest": "c",
                           "value": {"raisehand": true}}),
    );
    let raised = boss.recv_type("user");
    assert_eq!(
        (raised["kind"].clone(), raised["data"].clone()),
        (json!("change"), json!({"raisehand": true}))
    );

    carol.send_json(json!({"type": "groupaction", "kind": "lock"}));
    assert_eq!(
        carol.recv_type("usermessage"),
        error_message("c", "not authorised")
    );
    boss.send_json(json!({"type": "groupaction", "kind": "lock", "value": "closed for today"}));
    assert_eq!(boss.recv_type("joined")["status"]["locked"], true);
    assert_eq!(carol.recv_type("joined")["status"]["locked"], true);
    let mut late = client(&server, "l");
    assert_eq!(join(&mut late, "lea", "pw")["value"], "closed for today");

    boss.send_json(json!({"type": "useraction", "kind": "kick", "dest": "c", "value": "bye"}));
    let kicked = carol.recv_type("usermessage");
    assert_eq!(
        kicked,
        json!({"type": "usermessage", "kind": "kicked", "id": "b", "username": "boss",
               "dest": "c", "privileged": true, "value": "bye"})
    );
    assert_eq!(
        carol.expect_close(),
        (1000, "kicked out (bye) by boss".to_owned())
    );
    assert_eq!(boss.recv_type("user")["kind"], "delete");
}

#[test]
fn error_close_codes() {
    let server = server(Setup::insecure());

    let mut ws = server.ws_connect();
    ws.send_json(json!({"type": "join", "kind": "join", "group": "g"}));
    assert_eq!(
        ws.expect_close(),
        (1002, "you must handshake first".to_owned())
    );

    let mut ws = client(&server, "a");
    ws.send_text("{this is not json");
    assert_eq!(ws.expect_close().0, 1011);

    let mut ws = client(&server, "a");
    join(&mut ws, "alice", "pw");
    drain(&mut ws, Duration::from_millis(100));
    ws.send_json(json!({"type": "chat", "source": "mallory", "value": "x"}));
    assert_eq!(ws.recv_json(), error_message("a", "spoofed client id"));
    assert_eq!(ws.expect_close(), (1002, "spoofed client id".to_owned()));

    let mut ws = client(&server, "a");
    ws.send_json(json!({"type": "useraction", "kind": "dance"}));
    assert_eq!(ws.recv_json(), error_message("a", "join a group first"));
    ws.send_json(json!({"type": "requestStream", "id": "nope", "request": ["audio"]}));
    assert_eq!(ws.expect_close().0, 1011);

    let mut ws = client(&server, "a");
    ws.send_message(Message::binary(b"{}".to_vec()));
    assert_eq!(ws.expect_close().0, 1003);
}

#[test]
fn seed_dialect_and_version_2_in_one_group() {
    let server = server(Setup::insecure());
    let mut seed = server.ws_connect();
    seed.send_json(json!({"type": "handshake", "id": "s"}));
    assert_eq!(seed.recv_json(), json!({"type": "handshake"}));
    let mut v2 = client(&server, "v");
    join(&mut v2, "boss", "boss");
    drain(&mut v2, Duration::from_millis(100));

    let joined = join(&mut seed, "sam", "pw");
    assert_eq!(joined["permissions"], json!(["present"]));
    drain(&mut seed, Duration::from_millis(100));
    v2.recv_type("user");

    seed.send_json(
        json!({"type": "useraction", "source": "s", "kind": "setstatus", "dest": "s",
                          "value": {"mood": "happy"}}),
    );
    assert_eq!(seed.recv_type("user")["status"], json!({"mood": "happy"}));
    let seen = v2.recv_type("user");
    assert_eq!(seen["data"], json!({"mood": "happy"}));
    assert!(seen.get("status").is_none());

    seed.send_json(json!({"type": "request", "request": {"audio": true, "video": true}}));
    v2.send_json(json!({"type": "request", "request": {"": ["audio", "video"]}}));
    seed.send_json(json!({"type": "ping"}));
    assert_eq!(seed.recv_json(), json!({"type": "pong"}));
    v2.send_json(json!({"type": "ping"}));
    assert_eq!(v2.recv_json(), json!({"type": "pong"}));
}

#[test]
fn a_chat_message_larger_than_the_tls_send_buffer_arrives_whole_over_tls() {
    // rustls holds at most 16 KiB of outgoing TLS per connection; a 600 KiB frame goes out in
    // pieces as the client reads.
    let server = server(Setup::tls());
    let mut sender = client(&server, "a");
    assert_eq!(join(&mut sender, "alice", "pw")["kind"], "join");
    let mut receiver = client(&server, "b");
    assert_eq!(join(&mut receiver, "bob", "pw")["kind"], "join");
    let text: String = (0..600 * 1024)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    sender.send_json(json!({"type": "chat", "source": "a", "username": "alice", "value": text}));
    let chat = receiver.recv_type("chat");
    assert_eq!(chat["value"].as_str().map(str::len), Some(text.len()));
    assert_eq!(chat["value"], text.as_str());
}
