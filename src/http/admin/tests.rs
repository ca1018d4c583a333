//! The API's decisions with an in-memory store: what tests/admin_api.rs cannot provoke over
//! real files (a write conflict, a failing disk) and the small parsers.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Value, json};

use super::memory::MemoryStore;
use super::*;

const CONFIG: &str =
    r#"{"writableGroups":true,"users":{"root":{"password":"pw","permissions":"admin"}}}"#;

fn store() -> MemoryStore {
    MemoryStore::default().with(AdminFile::Config, CONFIG).with(
        AdminFile::Group("g".into()),
        r#"{"users":{"bob":{"password":"b"}}}"#,
    )
}

fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
    let mut all = vec![
        ("Host".to_owned(), "box.local".to_owned()),
        (
            "Authorization".to_owned(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("root:pw")
            ),
        ),
    ];
    for (name, value) in headers {
        all.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        all.push(((*name).to_owned(), (*value).to_owned()));
    }
    Request {
        method: method.to_owned(),
        target: format!("/galene-api/v0{path}"),
        headers: all,
        tls: true,
    }
}

fn call(store: &mut MemoryStore, request: &Request, body: &[u8]) -> AdminReply {
    handle(
        AdminRequest {
            request,
            body,
            peer: Some(SocketAddr::from(([192, 168, 1, 5], 40000))),
            now: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        },
        store,
        &mut PasswordChecks::new(),
    )
}

fn status(reply: &AdminReply) -> u16 {
    match &reply.answer {
        Answer::Response(r) | Answer::Stats(r) => r.status,
        Answer::NotFoundPage => 404,
    }
}

fn json_put(path: &str, value: Value) -> (Request, Vec<u8>) {
    (
        request("PUT", path, &[("Content-Type", "application/json")]),
        value.to_string().into_bytes(),
    )
}

#[test]
fn a_write_that_lost_a_race_is_a_412_and_changes_nothing() {
    let mut store = store();
    store.conflict_next = true;
    let (put, body) = json_put("/.groups/g", json!({"displayName": "x"}));
    let reply = call(&mut store, &put, &body);
    assert_eq!(status(&reply), 412);
    assert!(reply.changed.is_empty());
    let reply = call(&mut store, &put, &body);
    assert_eq!(status(&reply), 204);
    assert_eq!(reply.changed, [AdminFile::Group("g".into())]);
}

#[test]
fn a_failed_write_is_a_500_and_the_file_is_unchanged() {
    let mut store = store();
    store.fail_writes = true;
    let before = store.text(&AdminFile::Group("g".into())).map(str::to_owned);
    let (put, body) = json_put("/.groups/g", json!({"displayName": "x"}));
    let reply = call(&mut store, &put, &body);
    assert_eq!(status(&reply), 500);
    assert!(reply.changed.is_empty());
    assert_eq!(
        store.text(&AdminFile::Group("g".into())).map(str::to_owned),
        before
    );
}

#[test]
fn an_invalid_group_file_is_a_500_that_says_why() {
    let mut store = store().with(AdminFile::Group("bad".into()), r#"{"pubic":true}"#);
    let reply = call(&mut store, &request("GET", "/.groups/bad", &[]), b"");
    let Answer::Response(response) = &reply.answer else {
        panic!("{reply:?}");
    };
    assert_eq!(response.status, 500);
    assert!(String::from_utf8_lossy(&response.body).contains("unknown field \"pubic\""));
    // Nor is it overwritten: its users would be lost. It is fixed on disk.
    let (put, body) = json_put("/.groups/bad", json!({"public": true}));
    assert_eq!(status(&call(&mut store, &put, &body)), 500);
}

#[test]
fn failed_logins_are_flagged_for_the_delay_and_anonymous_probes_are_not() {
    let mut store = store();
    let mut anonymous = request("GET", "/.groups/", &[]);
    anonymous.headers.retain(|(n, _)| n != "Authorization");
    let reply = call(&mut store, &anonymous, b"");
    assert_eq!((status(&reply), reply.failed_login), (401, false));
    let wrong = request("GET", "/.groups/", &[("Authorization", "Bearer nope")]);
    let reply = call(&mut store, &wrong, b"");
    assert_eq!((status(&reply), reply.failed_login), (401, true));
    let reply = call(&mut store, &request("GET", "/.groups/", &[]), b"");
    assert_eq!((status(&reply), reply.failed_login), (200, false));
}

#[test]
fn stats_and_the_not_found_page_are_left_to_the_runtime() {
    let mut store = store();
    let reply = call(&mut store, &request("GET", "/.stats", &[]), b"");
    let Answer::Stats(head) = &reply.answer else {
        panic!("{reply:?}");
    };
    assert_eq!(head.header("cache-control"), Some("no-cache"));
    let reply = call(&mut store, &request("GET", "/.groups/nothing", &[]), b"");
    assert_eq!(reply.answer, Answer::NotFoundPage);
}

#[test]
fn setup_from_a_public_address_is_refused() {
    let mut store = MemoryStore::default();
    let post = request("POST", "/.setup", &[("Content-Type", "application/json")]);
    let body = json!({"username": "a", "password": "b"}).to_string();
    let reply = handle(
        AdminRequest {
            request: &post,
            body: body.as_bytes(),
            peer: Some(SocketAddr::from(([203, 0, 113, 7], 40000))),
            now: SystemTime::UNIX_EPOCH,
        },
        &mut store,
        &mut PasswordChecks::new(),
    );
    assert_eq!(status(&reply), 403);
    assert!(store.text(&AdminFile::Config).is_none());
}

#[test]
fn etag_lists_like_galene() {
    assert!(etag_match("\"a\"", "\"a\""));
    assert!(etag_match("\"a\"", " \"b\", \"a\""));
    assert!(etag_match("\"a\"", "*"));
    assert!(!etag_match("", "*"));
    assert!(!etag_match("", ""));
    assert!(!etag_match("\"a\"", "W/\"a\""));
    assert!(!etag_match("\"a\"", "\"b\""));
    assert!(!etag_match("\"a\"", "garbage, \"a\""));
    assert_eq!(scan_etag("W/\"x\" rest"), Some(("W/\"x\"", " rest")));
    assert_eq!(scan_etag("\"x"), None);
}

#[test]
fn media_types() {
    assert_eq!(
        media_type("application/json; charset=utf-8"),
        Some("application/json")
    );
    assert_eq!(media_type(" text/plain "), Some("text/plain"));
    assert_eq!(media_type("json"), None);
    assert_eq!(media_type("a/b c"), None);
    assert_eq!(media_type(""), None);
}
