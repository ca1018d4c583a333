//! Configuration files are looked at off the executor thread: joins, `.status`,
//! `/public-groups.json` and WebSocket upgrades are preceded by a refresh on a blocking
//! thread, so the engine does no synchronous file access for them (the server's
//! `FileCache::fallback_reads` stays 0), and an edit still takes effect at the next request.

mod common;

use common::{Setup, TestServer, WsClient};
use serde_json::{Value, json};

const GROUP: &str = r#"{
    "public": true,
    "auto-subgroups": true,
    "users": {"boss": {"password": "boss", "permissions": "op"}},
    "wildcard-user": {"password": "pw", "permissions": "present"}
}"#;

const GROUP_NEW_PASSWORD: &str = r#"{
    "public": true,
    "auto-subgroups": true,
    "users": {"boss": {"password": "boss", "permissions": "op"}},
    "wildcard-user": {"password": "changed", "permissions": "present"}
}"#;

fn json_body(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("a JSON body")
}

fn handshaken(ws: &mut WsClient, id: &str) {
    ws.send_json(json!({"type": "handshake", "version": ["2"], "id": id}));
    assert_eq!(ws.recv_json()["type"], "handshake");
}

/// Sends a join and returns the `joined` answer's kind (`join` or `fail`).
fn join_kind(ws: &mut WsClient, group: &str, fields: Value) -> String {
    let mut message = json!({"type": "join", "kind": "join", "group": group});
    if let (Some(message), Some(fields)) = (message.as_object_mut(), fields.as_object()) {
        message.extend(fields.clone());
    }
    ws.send_json(message);
    ws.recv_type("joined")["kind"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn status_and_public_groups_read_nothing_on_the_executor_and_see_edits() {
    let server = TestServer::start(
        Setup::insecure()
            .group("g", GROUP)
            .config(r#"{"proxyURL": "https://one.example/"}"#),
    );
    let (status, _, body) = server.http_get("/group/g/.status", &[]);
    assert_eq!(status, 200);
    assert_eq!(json_body(&body)["location"], "https://one.example/group/g/");
    let (status, _, body) = server.http_get("/group/g/sub/.status", &[]);
    assert_eq!(status, 200);
    assert_eq!(json_body(&body)["name"], "g/sub");
    let (status, _, _) = server.http_get("/group/g/", &[]);
    assert_eq!(status, 200);
    let (_, _, body) = server.http_get("/public-groups.json", &[]);
    assert_eq!(json_body(&body)[0]["name"], "g");
    assert_eq!(server.fallback_reads(), 0);

    // Edits, each seen by the very next request.
    server.write_config(r#"{"proxyURL": "https://two.example/"}"#);
    let (_, _, body) = server.http_get("/group/g/.status", &[]);
    assert_eq!(json_body(&body)["location"], "https://two.example/group/g/");
    server.write_group("g", r#"{"public": true, "displayName": "Renamed"}"#);
    let (_, _, body) = server.http_get("/group/g/.status", &[]);
    assert_eq!(json_body(&body)["displayName"], "Renamed");
    // No more auto-subgroups.
    let (status, _, _) = server.http_get("/group/g/sub/.status", &[]);
    assert_eq!(status, 404);
    server.write_group("h", r#"{"public": true}"#);
    let (_, _, body) = server.http_get("/public-groups.json", &[]);
    let listed = json_body(&body);
    let names: Vec<&str> = listed
        .as_array()
        .map(|list| list.iter().filter_map(|g| g["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["g", "h"]);
    std::fs::remove_file(server.groups_dir().join("h.json")).expect("remove h.json");
    let (status, _, _) = server.http_get("/group/h/.status", &[]);
    assert_eq!(status, 404);
    assert_eq!(server.fallback_reads(), 0);
}

#[test]
fn joins_read_nothing_on_the_executor_and_see_edits() {
    let server = TestServer::start(Setup::insecure().group("g", GROUP));
    let origin = [("Origin", "https://elsewhere.example")];

    let mut boss = server.ws_connect();
    handshaken(&mut boss, "b");
    assert_eq!(
        join_kind(
            &mut boss,
            "g",
            json!({"username": "boss", "password": "boss"})
        ),
        "join"
    );
    let mut guest = server.ws_connect();
    handshaken(&mut guest, "s");
    assert_eq!(
        join_kind(
            &mut guest,
            "g/sub",
            json!({"username": "sub", "password": "pw"})
        ),
        "join"
    );
    assert_eq!(server.fallback_reads(), 0);

    // A password change takes effect at the next join.
    server.write_group("g", GROUP_NEW_PASSWORD);
    let mut late = server.ws_connect();
    handshaken(&mut late, "l1");
    assert_eq!(
        join_kind(
            &mut late,
            "g",
            json!({"username": "late", "password": "pw"})
        ),
        "fail"
    );
    let mut late = server.ws_connect();
    handshaken(&mut late, "l2");
    assert_eq!(
        join_kind(
            &mut late,
            "g",
            json!({"username": "late", "password": "changed"})
        ),
        "join"
    );

    // A token written to the store is honoured at once.
    let tokens = server.data_dir().join("var");
    std::fs::create_dir_all(&tokens).expect("create data/var");
    std::fs::write(
        tokens.join("tokens.jsonl"),
        "{\"token\":\"invite\",\"group\":\"g\",\"permissions\":[\"present\"],\
         \"expires\":\"2999-01-01T00:00:00Z\"}\n",
    )
    .expect("write tokens.jsonl");
    let mut invited = server.ws_connect();
    handshaken(&mut invited, "i");
    assert_eq!(
        join_kind(
            &mut invited,
            "g",
            json!({"username": "guest", "token": "invite"})
        ),
        "join"
    );

    // allowOrigin is read at the upgrade that needs it.
    assert_eq!(server.ws_connect_with(&origin).err(), Some(403));
    server.write_config(r#"{"allowOrigin": ["https://elsewhere.example"]}"#);
    assert!(server.ws_connect_with(&origin).is_ok());
    assert_eq!(server.fallback_reads(), 0);
}
