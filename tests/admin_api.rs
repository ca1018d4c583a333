//! Galène's administrative API (`/galene-api/v0/`) over real HTTP on 127.0.0.1: every
//! endpoint and every rule of docs/galene.md's "Administrative API" (authentication, CORS,
//! content types, body limits, ETags and preconditions, `writableGroups`, atomic rewrites,
//! private directories), the first-run setup, and what the API changes taking effect in
//! running groups (Galène joins over WebSocket). docs/admin.md describes the API.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::{Setup, TestServer, WsClient, header};
use serde_json::{Value, json};

const API: &str = "/galene-api/v0";

/// `config.json`: root is the global administrator; groups are writable.
const CONFIG: &str = r#"{"writableGroups": true,
    "users": {"root": {"password": "rootpw", "permissions": "admin"},
              "op": {"password": "oppw", "permissions": "op"}},
    "allowAdminOrigin": ["https://admin.example"]}"#;

/// Group `g`: bob presents, gadmin administers the group, anyone may watch.
const GROUP: &str = r#"{"public": true, "displayName": "Gee", "comment": "kept",
    "users": {"bob": {"password": "bobpw", "permissions": "present"},
              "gadmin": {"password": "gpw", "permissions": "admin"}},
    "wildcard-user": {"password": {"type": "wildcard"}, "permissions": "observe"}}"#;

fn server() -> TestServer {
    TestServer::start(Setup::insecure().config(CONFIG).group("g", GROUP))
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// An HTTP client for the API with fixed credentials.
struct Api<'a> {
    server: &'a TestServer,
    auth: Option<String>,
}

type Reply = (u16, Vec<(String, String)>, Vec<u8>);

impl Api<'_> {
    fn root(server: &TestServer) -> Api<'_> {
        Api {
            server,
            auth: Some(basic("root", "rootpw")),
        }
    }

    fn with(server: &TestServer, auth: Option<String>) -> Api<'_> {
        Api { server, auth }
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Reply {
        let mut all: Vec<(&str, &str)> = Vec::new();
        if let Some(auth) = &self.auth {
            all.push(("Authorization", auth));
        }
        if let Some((content_type, _)) = body {
            all.push(("Content-Type", content_type));
        }
        all.extend_from_slice(headers);
        let path = format!("{API}{path}");
        match body {
            Some((_, bytes)) => self.server.http_send(method, &path, &all, bytes),
            None => self.server.http_request(method, &path, &all),
        }
    }

    fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[], None)
    }

    fn put_json(&self, path: &str, value: Value, headers: &[(&str, &str)]) -> Reply {
        self.send(
            "PUT",
            path,
            headers,
            Some(("application/json", value.to_string().as_bytes())),
        )
    }

    fn post_json(&self, path: &str, value: Value) -> Reply {
        self.send(
            "POST",
            path,
            &[],
            Some(("application/json", value.to_string().as_bytes())),
        )
    }

    fn delete(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("DELETE", path, headers, None)
    }
}

fn json_of(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.2)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&reply.2)))
}

fn text_of(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.2).into_owned()
}

fn etag_of(reply: &Reply) -> String {
    header(&reply.1, "etag").expect("an ETag").to_owned()
}

/// Galène's ETag of a file, from its metadata.
fn file_etag(path: &std::path::Path) -> String {
    let meta = std::fs::metadata(path).unwrap();
    let nanos = meta
        .modified()
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("\"{}-{nanos}\"", meta.len())
}

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A handshaken Galène client.
fn client(server: &TestServer, id: &str) -> WsClient {
    let mut ws = server.ws_connect();
    ws.send_json(json!({"type": "handshake", "version": ["2"], "id": id}));
    ws.recv_type("handshake");
    ws
}

/// Joins `group` with these fields and returns the `joined` message.
fn join(server: &TestServer, group: &str, fields: Value) -> (WsClient, Value) {
    let mut ws = client(server, &format!("c{}", rand_suffix()));
    let mut message = json!({"type": "join", "kind": "join", "group": group});
    if let (Some(message), Some(fields)) = (message.as_object_mut(), fields.as_object()) {
        message.extend(fields.clone());
    }
    ws.send_json(message);
    let joined = ws.recv_type("joined");
    (ws, joined)
}

fn rand_suffix() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn join_kind(server: &TestServer, group: &str, fields: Value) -> String {
    let (_, joined) = join(server, group, fields);
    joined["kind"].as_str().unwrap_or("").to_owned()
}

/// RFC 3339 time `secs` from now (negative: in the past).
fn time_from_now(secs: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t = chrono::DateTime::from_timestamp(now + secs, 0).unwrap();
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Appends a token line to `data/var/tokens.jsonl`.
fn add_token(server: &TestServer, token: Value) {
    let path = server.data_dir().join("var/tokens.jsonl");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str(&format!("{token}\n"));
    std::fs::write(path, text).unwrap();
}

#[test]
fn authentication_global_and_group_administrators() {
    let server = server();
    add_token(
        &server,
        json!({"token": "global-admin", "group": "", "includeSubgroups": true,
        "permissions": ["admin"], "expires": time_from_now(3600)}),
    );
    // A group token must name its user to be used alone (Galène: "username required").
    add_token(
        &server,
        json!({"token": "group-admin", "group": "g", "username": "ga",
        "permissions": ["admin"], "expires": time_from_now(3600)}),
    );
    add_token(
        &server,
        json!({"token": "nameless", "group": "g",
        "permissions": ["admin"], "expires": time_from_now(3600)}),
    );
    add_token(
        &server,
        json!({"token": "old-admin", "group": "", "includeSubgroups": true,
        "permissions": ["admin"], "expires": time_from_now(-60)}),
    );
    server.write_group("other", "{}");

    // No credentials: 401 with Galène's realm and body, at once.
    let anonymous = Api::with(&server, None);
    let refused = anonymous.get("/.groups/");
    assert_eq!(refused.0, 401);
    assert_eq!(
        header(&refused.1, "www-authenticate"),
        Some("basic realm=\"/galene-api/\"")
    );
    assert_eq!(text_of(&refused), "Haha!\n");

    // Wrong credentials: the same, after Galène's 200 ms delay.
    let started = Instant::now();
    assert_eq!(
        Api::with(&server, Some(basic("root", "wrong")))
            .get("/.groups/")
            .0,
        401
    );
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );

    // The global administrator: Basic of a config.json admin, or a global admin token.
    assert_eq!(Api::root(&server).get("/.groups/").0, 200);
    let global = Api::with(&server, Some("Bearer global-admin".into()));
    assert_eq!(global.get("/.groups/").0, 200);
    assert_eq!(global.get("/.stats").0, 200);
    assert_eq!(global.get("/.groups/g").0, 200);
    for not_global in [
        basic("op", "oppw"),
        "Bearer group-admin".into(),
        "Bearer old-admin".into(),
        "Bearer nosuchtoken".into(),
        basic("gadmin", "gpw"),
    ] {
        let api = Api::with(&server, Some(not_global.clone()));
        assert_eq!(api.get("/.groups/").0, 401, "{not_global}");
        assert_eq!(api.get("/.stats").0, 401, "{not_global}");
    }

    // A group's administrator: a group user with `admin`, a group token with `admin`, a JWT
    // with `admin` signed with the group's keys; for that group only.
    for group_admin in [basic("gadmin", "gpw"), "Bearer group-admin".into()] {
        let api = Api::with(&server, Some(group_admin.clone()));
        assert_eq!(api.get("/.groups/g").0, 200, "{group_admin}");
        assert_eq!(api.get("/.groups/g/.users/").0, 200, "{group_admin}");
        assert_eq!(api.get("/.groups/other").0, 401, "{group_admin}");
    }
    assert_eq!(
        Api::with(&server, Some(basic("bob", "bobpw")))
            .get("/.groups/g")
            .0,
        401
    );
    assert_eq!(
        Api::with(&server, Some("Bearer nameless".into()))
            .get("/.groups/g")
            .0,
        401
    );
    assert_eq!(
        Api::with(&server, Some(basic("gadmin", "bad")))
            .get("/.groups/g")
            .0,
        401
    );

    let secret = [7u8; 32];
    let key = json!({"kty": "oct", "alg": "HS256",
        "k": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)});
    let reply = Api::root(&server).send(
        "PUT",
        "/.groups/g/.keys",
        &[],
        Some((
            "application/jwk-set+json",
            json!({"keys": [key]}).to_string().as_bytes(),
        )),
    );
    assert_eq!(reply.0, 204);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let jwt = sign_hs256(
        &secret,
        &json!({"sub": "jo", "aud": format!("http://{}/group/g/", server.host()),
        "permissions": ["admin"], "iat": now, "exp": now + 600}),
    );
    assert_eq!(
        Api::with(&server, Some(format!("Bearer {jwt}")))
            .get("/.groups/g")
            .0,
        200
    );
    assert_eq!(
        Api::with(&server, Some(format!("Bearer {jwt}")))
            .get("/.groups/")
            .0,
        401
    );
}

/// A compact JWS signed with HMAC-SHA-256.
fn sign_hs256(secret: &[u8], claims: &Value) -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let signature = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(signature.as_ref()))
}

#[test]
fn a_user_changes_its_own_password_with_the_current_one() {
    let server = server();
    let text = |auth: &str, password: &str| {
        Api::with(&server, Some(auth.to_owned())).send(
            "POST",
            "/.groups/g/.users/bob/.password",
            &[],
            Some(("text/plain", password.as_bytes())),
        )
    };
    // The explicit-password rule: the Basic password is bob's current one (the user name in
    // the header is not compared).
    assert_eq!(text(&basic("bob", "bobpw"), "second").0, 204);
    assert_eq!(text(&basic("anybody", "second"), "third").0, 204);
    assert_eq!(text(&basic("bob", "second"), "x").0, 401);
    // Another user's password, or bob's via another user's password: refused.
    assert_eq!(
        Api::with(&server, Some(basic("bob", "third")))
            .send(
                "POST",
                "/.groups/g/.users/gadmin/.password",
                &[],
                Some(("text/plain", b"x"))
            )
            .0,
        401
    );
    // The wildcard user's password needs an administrator, whatever the password.
    assert_eq!(
        Api::with(&server, Some(basic("x", "anything")))
            .put_json("/.groups/g/.wildcard-user/.password", json!("y"), &[])
            .0,
        401
    );
    // Stored as bcrypt cost 8, and the Galène login works with it.
    let file = read_json(&server.groups_dir().join("g.json"));
    let key = file["users"]["bob"]["password"]["key"].as_str().unwrap();
    assert!(key.starts_with("$2a$08$"), "{key}");
    assert_eq!(file["users"]["bob"]["password"]["type"], "bcrypt");
    assert_eq!(
        join_kind(
            &server,
            "g",
            json!({"username": "bob", "password": "third"})
        ),
        "join"
    );
    assert_eq!(
        join_kind(
            &server,
            "g",
            json!({"username": "bob", "password": "bobpw"})
        ),
        "fail"
    );
}

#[test]
fn cors_options_and_the_origin_rule() {
    let server = server();
    let anonymous = Api::with(&server, None);
    // OPTIONS is answered without authentication.
    let options = anonymous.send(
        "OPTIONS",
        "/.groups/g",
        &[("Origin", "https://admin.example")],
        None,
    );
    assert_eq!(options.0, 200);
    assert_eq!(
        header(&options.1, "access-control-allow-methods"),
        Some("OPTIONS, HEAD, GET, PUT, DELETE")
    );
    assert_eq!(
        header(&options.1, "access-control-allow-headers"),
        Some("Authorization, Content-Type")
    );
    assert_eq!(
        header(&options.1, "access-control-allow-origin"),
        Some("https://admin.example")
    );
    assert_eq!(header(&options.1, "vary"), Some("Origin"));
    for (path, methods) in [
        ("/.stats", "OPTIONS, HEAD, GET"),
        ("/.groups/", "OPTIONS, HEAD, GET"),
        ("/.groups/g/.users/", "OPTIONS, HEAD, GET"),
        ("/.groups/g/.users/bob", "OPTIONS, HEAD, GET, PUT, DELETE"),
        (
            "/.groups/g/.users/bob/.password",
            "OPTIONS, PUT, POST, DELETE",
        ),
        ("/.groups/g/.keys", "OPTIONS, PUT, DELETE"),
        (
            "/.groups/g/.tokens/",
            "OPTIONS, HEAD, GET, POST, PUT, DELETE",
        ),
    ] {
        let reply = anonymous.send("OPTIONS", path, &[], None);
        assert_eq!(
            (reply.0, header(&reply.1, "access-control-allow-methods")),
            (200, Some(methods)),
            "{path}"
        );
    }
    // The origin is echoed for this host and for allowAdminOrigin, not for others.
    let root = Api::root(&server);
    let same_host = format!("http://{}", server.host());
    for (origin, echoed) in [
        (same_host.as_str(), true),
        ("https://admin.example", true),
        ("https://evil.example", false),
    ] {
        let reply = root.send("GET", "/.groups/", &[("Origin", origin)], None);
        assert_eq!(reply.0, 200);
        assert_eq!(
            header(&reply.1, "access-control-allow-origin"),
            echoed.then_some(origin),
            "{origin}"
        );
    }
    // A state change from another origin is refused before anything happens.
    let before = std::fs::read(server.groups_dir().join("g.json")).unwrap();
    let evil = root.put_json(
        "/.groups/g",
        json!({"displayName": "pwned"}),
        &[("Origin", "https://evil.example")],
    );
    assert_eq!(evil.0, 403);
    let evil = root.send(
        "POST",
        "/.groups/g/.users/bob/.password",
        &[("Origin", "https://evil.example")],
        Some(("text/plain", b"pwned")),
    );
    assert_eq!(evil.0, 403);
    assert_eq!(
        std::fs::read(server.groups_dir().join("g.json")).unwrap(),
        before
    );
    let allowed = root.put_json(
        "/.groups/g",
        json!({"displayName": "ok"}),
        &[("Origin", "https://admin.example")],
    );
    assert_eq!(allowed.0, 204);
    assert_eq!(
        header(&allowed.1, "access-control-allow-origin"),
        Some("https://admin.example")
    );
}

#[test]
fn content_types_body_limits_and_methods() {
    let server = server();
    let root = Api::root(&server);
    for (method, path, expected) in [
        ("PUT", "/.groups/g", "application/json"),
        ("PUT", "/.groups/g/.users/bob", "application/json"),
        ("PUT", "/.groups/g/.users/bob/.password", "application/json"),
        ("POST", "/.groups/g/.users/bob/.password", "text/plain"),
        ("PUT", "/.groups/g/.keys", "application/jwk-set+json"),
        ("POST", "/.groups/g/.tokens/", "application/json"),
    ] {
        let reply = root.send(
            method,
            path,
            &[],
            Some(("application/x-www-form-urlencoded", b"a=b")),
        );
        assert_eq!(reply.0, 415, "{method} {path}");
        assert_eq!(
            header(&reply.1, "accept"),
            Some(expected),
            "{method} {path}"
        );
    }
    // Parameters and case do not matter.
    let reply = root.send(
        "PUT",
        "/.groups/g",
        &[],
        Some(("Application/JSON; charset=utf-8", b"{}")),
    );
    assert_eq!(reply.0, 204);
    // Malformed JSON is a 400 (Galène: 500).
    assert_eq!(
        root.send("PUT", "/.groups/g", &[], Some(("application/json", b"{")))
            .0,
        400
    );
    // Bodies above 1 MiB are refused before they are read.
    let (status, _, body) = server.http_request(
        "PUT",
        &format!("{API}/.groups/g"),
        &[
            ("Authorization", &basic("root", "rootpw")),
            ("Content-Type", "application/json"),
            ("Content-Length", "1048577"),
        ],
    );
    assert_eq!(
        (status, String::from_utf8_lossy(&body).trim()),
        (413, "Request body too large")
    );
    // A body of exactly 1 MiB is read (and here refused as a description with a huge field).
    let mut big = br#"{"comment":""#.to_vec();
    big.resize((1 << 20) - 2, b'x');
    big.extend_from_slice(b"\"}");
    assert_eq!(
        root.send("PUT", "/.groups/big", &[], Some(("application/json", &big)))
            .0,
        201
    );
    // Chunked bodies are not accepted.
    let (status, _, _) = server.http_request(
        "PUT",
        &format!("{API}/.groups/g"),
        &[
            ("Authorization", &basic("root", "rootpw")),
            ("Transfer-Encoding", "chunked"),
        ],
    );
    assert_eq!(status, 411);
    // Methods: 405 with Allow.
    for (method, path, allow) in [
        ("POST", "/.groups/g", "OPTIONS, HEAD, GET, PUT, DELETE"),
        ("DELETE", "/.groups/", "OPTIONS, HEAD, GET"),
        ("PUT", "/.stats", "OPTIONS, HEAD, GET"),
        (
            "GET",
            "/.groups/g/.users/bob/.password",
            "OPTIONS, PUT, POST, DELETE",
        ),
        ("GET", "/.groups/g/.keys", "OPTIONS, PUT, DELETE"),
        ("PUT", "/.groups/g/.tokens/", "OPTIONS, HEAD, GET, POST"),
    ] {
        let reply = root.send(method, path, &[], None);
        assert_eq!(
            (reply.0, header(&reply.1, "allow")),
            (405, Some(allow)),
            "{method} {path}"
        );
    }
    // Unknown paths: Go's 404 text at the top, the 404 page (after authentication) below.
    for path in [
        "/galene-api/v1/.groups/",
        "/galene-api/v0/.nothing",
        "/galene-api/v0/.groups/g/.users",
    ] {
        let (status, _, body) =
            server.http_request("GET", path, &[("Authorization", &basic("root", "rootpw"))]);
        assert_eq!(
            (status, String::from_utf8_lossy(&body).trim()),
            (404, "404 page not found"),
            "{path}"
        );
    }
    assert_eq!(Api::with(&server, None).get("/.groups/g/.bogus").0, 401);
    let page = root.get("/.groups/g/.bogus");
    assert_eq!(page.0, 404);
    assert_eq!(
        header(&page.1, "content-type"),
        Some("text/html; charset=utf-8")
    );
    // Non-canonical paths are redirected like every other path.
    let (status, headers, _) = server.http_get("/galene-api/v0/.groups//g", &[]);
    assert_eq!(
        (status, header(&headers, "location")),
        (301, Some("/galene-api/v0/.groups/g"))
    );
}

#[test]
fn etags_and_preconditions() {
    let server = server();
    let root = Api::root(&server);
    let file = server.groups_dir().join("g.json");
    let got = root.get("/.groups/g");
    assert_eq!(got.0, 200);
    let etag = etag_of(&got);
    assert_eq!(etag, file_etag(&file));
    // If-None-Match: 304 for a read when it matches (also `*` and in a list), 200 otherwise
    // (also for a weak tag: Galène compares strongly).
    for matching in [etag.as_str(), "*", &format!("\"x\", {etag}")] {
        let reply = root.send("GET", "/.groups/g", &[("If-None-Match", matching)], None);
        assert_eq!(reply.0, 304, "{matching}");
        assert!(reply.2.is_empty());
        assert_eq!(header(&reply.1, "etag"), Some(etag.as_str()));
    }
    assert_eq!(
        root.send("GET", "/.groups/g", &[("If-None-Match", "\"other\"")], None)
            .0,
        200
    );
    assert_eq!(
        root.send(
            "GET",
            "/.groups/g",
            &[("If-None-Match", &format!("W/{etag}"))],
            None
        )
        .0,
        200
    );
    // If-Match: 412 when it does not match.
    assert_eq!(
        root.put_json(
            "/.groups/g",
            json!({"public": true}),
            &[("If-Match", "\"stale\"")]
        )
        .0,
        412
    );
    assert_eq!(
        root.delete("/.groups/g", &[("If-Match", "\"stale\"")]).0,
        412
    );
    // If-None-Match on a write: 412 when it matches, so `*` means "create only".
    assert_eq!(
        root.put_json("/.groups/g", json!({}), &[("If-None-Match", "*")])
            .0,
        412
    );
    assert_eq!(
        root.put_json("/.groups/new", json!({}), &[("If-None-Match", "*")])
            .0,
        201
    );
    assert_eq!(
        root.put_json("/.groups/new", json!({}), &[("If-None-Match", "*")])
            .0,
        412
    );
    // If-Match: * needs an existing resource.
    assert_eq!(
        root.put_json("/.groups/absent", json!({}), &[("If-Match", "*")])
            .0,
        412
    );
    // Two edits from the same ETag: the first wins, the second gets 412. Every write
    // changes the ETag, even one of the same size within a tick of the clock.
    assert_eq!(
        root.put_json(
            "/.groups/g",
            json!({"displayName": "AAA"}),
            &[("If-Match", &etag)]
        )
        .0,
        204
    );
    assert_eq!(
        root.put_json(
            "/.groups/g",
            json!({"displayName": "BBB"}),
            &[("If-Match", &etag)]
        )
        .0,
        412
    );
    let etag2 = etag_of(&root.get("/.groups/g"));
    assert_eq!(
        root.put_json(
            "/.groups/g",
            json!({"displayName": "BBB"}),
            &[("If-Match", &etag2)]
        )
        .0,
        204
    );
    let etag3 = etag_of(&root.get("/.groups/g"));
    assert_ne!(etag2, etag3);
    assert_eq!(read_json(&file)["displayName"], "BBB");
    // Really concurrent: two clients PUT with the same ETag at once; exactly one wins.
    let results: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = ["one", "two"]
            .iter()
            .map(|name| {
                let root = Api::root(&server);
                let etag = etag3.clone();
                scope.spawn(move || {
                    root.put_json(
                        "/.groups/g",
                        json!({"displayName": name}),
                        &[("If-Match", &etag)],
                    )
                    .0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = results.clone();
    sorted.sort();
    assert_eq!(sorted, [204, 412], "{results:?}");
    // Users and tokens carry ETags too (the group file's, the tokens file's).
    let users = root.get("/.groups/g/.users/");
    assert_eq!(etag_of(&users), file_etag(&file));
    assert_eq!(
        root.send(
            "GET",
            "/.groups/g/.users/bob",
            &[("If-None-Match", &file_etag(&file))],
            None
        )
        .0,
        304
    );
}

#[test]
fn groups_list_create_read_update_delete() {
    let server = TestServer::start(
        Setup::insecure()
            .config(CONFIG)
            .group("g", GROUP)
            .group("team/a", r#"{"auto-subgroups": true}"#)
            .group(".hidden", "{}"),
    );
    std::fs::write(server.groups_dir().join("notes.txt"), "x").unwrap();
    let root = Api::root(&server);
    let list = root.get("/.groups/");
    assert_eq!(header(&list.1, "content-type"), Some("application/json"));
    assert_eq!(json_of(&list), json!(["g", "team/a"]));
    assert_eq!(json_of(&root.get("/.groups")), json!(["g", "team/a"]));
    // Read: the description without users, wildcard user and keys; a trailing slash is fine.
    let got = root.get("/.groups/g/");
    assert_eq!(
        text_of(&got),
        "{\"displayName\":\"Gee\",\"comment\":\"kept\",\"public\":true}\n"
    );
    assert_eq!(root.send("HEAD", "/.groups/g", &[], None).2, b"");
    // Auto-subgroups and missing groups are not found (the 404 page).
    assert_eq!(root.get("/.groups/team/a/x").0, 404);
    assert_eq!(root.get("/.groups/nothing").0, 404);
    // Create: 201, written compactly in Galène's form, unknown fields dropped, in a new
    // private directory.
    let created = root.put_json(
        "/.groups/team/b/c",
        json!({"displayName": "C", "max-clients": 3,
        "public": false, "frobnicate": 1, "codecs": ["vp9", "opus"]}),
        &[],
    );
    assert_eq!(created.0, 201);
    let path = server.groups_dir().join("team/b/c.json");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\"displayName\":\"C\",\"max-clients\":3,\"codecs\":[\"vp9\",\"opus\"]}\n"
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(server.groups_dir().join("team/b"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    assert_eq!(
        json_of(&root.get("/.groups/")),
        json!(["g", "team/a", "team/b/c"])
    );
    // Update: 204; users, wildcard user and keys are kept; the private fields are refused.
    assert_eq!(
        root.put_json("/.groups/g", json!({"displayName": "New"}), &[])
            .0,
        204
    );
    let file = read_json(&server.groups_dir().join("g.json"));
    assert_eq!(file["displayName"], "New");
    assert!(file.get("comment").is_none() && file.get("public").is_none());
    assert_eq!(file["users"]["bob"]["password"], "bobpw");
    assert_eq!(file["wildcard-user"]["permissions"], "observe");
    for private in [
        json!({"users": {}}),
        json!({"wildcard-user": {}}),
        json!({"authKeys": []}),
    ] {
        let reply = root.put_json("/.groups/g", private.clone(), &[]);
        assert_eq!(reply.0, 400, "{private}");
        assert!(text_of(&reply).contains("not sanitised"));
    }
    assert_eq!(
        root.put_json("/.groups/g", json!({"max-clients": "lots"}), &[])
            .0,
        400
    );
    // Delete: 204, then gone.
    assert_eq!(root.delete("/.groups/team/b/c", &[]).0, 204);
    assert!(!path.exists());
    assert_eq!(root.get("/.groups/team/b/c").0, 404);
    assert_eq!(root.delete("/.groups/team/b/c", &[]).0, 404);
    // Without writableGroups, group writes are refused with 401 "not authorised"; reads work.
    server.write_config(&CONFIG.replace("\"writableGroups\": true", "\"writableGroups\": false"));
    for reply in [
        root.put_json("/.groups/g", json!({}), &[]),
        root.delete("/.groups/g", &[]),
        root.put_json("/.groups/g/.users/z", json!({}), &[]),
        root.put_json("/.groups/g/.users/bob/.password", json!("x"), &[]),
    ] {
        assert_eq!(
            (reply.0, text_of(&reply).trim().to_owned()),
            (401, "not authorised".to_owned())
        );
        assert!(header(&reply.1, "www-authenticate").is_none());
    }
    assert_eq!(root.get("/.groups/g").0, 200);
}

#[test]
fn users_empty_user_and_wildcard_user() {
    let server = server();
    let root = Api::root(&server);
    assert_eq!(
        json_of(&root.get("/.groups/g/.users/")),
        json!(["bob", "gadmin"])
    );
    assert_eq!(
        text_of(&root.get("/.groups/g/.users/bob")),
        "{\"permissions\":\"present\"}\n"
    );
    assert_eq!(root.get("/.groups/g/.users/nobody").0, 404);
    // Create with If-None-Match: * (galenectl create-user), once.
    assert_eq!(
        root.put_json(
            "/.groups/g/.users/carol",
            json!({"permissions": "op"}),
            &[("If-None-Match", "*")]
        )
        .0,
        201
    );
    assert_eq!(
        root.put_json(
            "/.groups/g/.users/carol",
            json!({"permissions": "op"}),
            &[("If-None-Match", "*")]
        )
        .0,
        412
    );
    // Update keeps the password; a password in the body and unknown presets are refused.
    assert_eq!(
        root.put_json(
            "/.groups/g/.users/bob",
            json!({"permissions": ["present", "message"]}),
            &[]
        )
        .0,
        204
    );
    assert_eq!(
        read_json(&server.groups_dir().join("g.json"))["users"]["bob"],
        json!({"password": "bobpw", "permissions": ["present", "message"]})
    );
    assert_eq!(
        root.put_json("/.groups/g/.users/bob", json!({"password": "x"}), &[])
            .0,
        400
    );
    let unknown = root.put_json("/.groups/g/.users/bob", json!({"permissions": "king"}), &[]);
    assert_eq!(
        (unknown.0, text_of(&unknown).trim().to_owned()),
        (400, "unknown permission".to_owned())
    );
    // The empty user (user name "") and the wildcard user.
    assert_eq!(root.get("/.groups/g/.empty-user").0, 404);
    assert_eq!(
        root.put_json(
            "/.groups/g/.empty-user",
            json!({"permissions": "observe"}),
            &[]
        )
        .0,
        201
    );
    assert_eq!(
        json_of(&root.get("/.groups/g/.empty-user")),
        json!({"permissions": "observe"})
    );
    assert_eq!(
        root.put_json(
            "/.groups/g/.empty-user/.password",
            json!({"type": "wildcard"}),
            &[]
        )
        .0,
        204
    );
    assert_eq!(
        json_of(&root.get("/.groups/g/.users/")),
        json!(["", "bob", "carol", "gadmin"])
    );
    assert_eq!(
        json_of(&root.get("/.groups/g/.wildcard-user")),
        json!({"permissions": "observe"})
    );
    assert_eq!(
        root.put_json(
            "/.groups/g/.wildcard-user",
            json!({"permissions": "present"}),
            &[]
        )
        .0,
        204
    );
    assert_eq!(
        join_kind(&server, "g", json!({"username": "zed", "password": "?"})),
        "join"
    );
    assert_eq!(root.delete("/.groups/g/.wildcard-user", &[]).0, 204);
    assert_eq!(root.get("/.groups/g/.wildcard-user").0, 404);
    assert_eq!(
        join_kind(&server, "g", json!({"username": "zed", "password": "?"})),
        "fail"
    );
    assert_eq!(root.delete("/.groups/g/.empty-user", &[]).0, 204);
    assert_eq!(root.delete("/.groups/g/.users/carol", &[]).0, 204);
    assert_eq!(root.delete("/.groups/g/.users/carol", &[]).0, 404);
    assert_eq!(
        json_of(&root.get("/.groups/g/.users/")),
        json!(["bob", "gadmin"])
    );
    // A user of a missing group.
    assert_eq!(
        root.put_json("/.groups/nothing/.users/x", json!({}), &[]).0,
        404
    );
    assert_eq!(root.get("/.groups/g/.wildcard-user/.whatever").0, 404);
}

#[test]
fn passwords_as_json_as_text_and_deleted() {
    let server = server();
    let root = Api::root(&server);
    let login = |password: &str| {
        join_kind(
            &server,
            "g",
            json!({"username": "bob", "password": password}),
        )
    };
    // A JSON password of each form Galène stores.
    assert_eq!(
        root.put_json("/.groups/g/.users/bob/.password", json!("plain"), &[])
            .0,
        204
    );
    assert_eq!(login("plain"), "join");
    let salt = [1u8, 2, 3, 4, 5, 6, 7, 8];
    let mut key = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(4096).unwrap(),
        &salt,
        b"derived",
        &mut key,
    );
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(
        root.put_json(
            "/.groups/g/.users/bob/.password",
            json!({"type": "pbkdf2", "hash": "sha-256",
        "key": hex(&key), "salt": hex(&salt), "iterations": 4096}),
            &[]
        )
        .0,
        204
    );
    assert_eq!(login("derived"), "join");
    assert_eq!(login("plain"), "fail");
    assert_eq!(
        root.put_json(
            "/.groups/g/.users/bob/.password",
            json!({"type": "rot13", "key": "x"}),
            &[]
        )
        .0,
        400
    );
    // A text password is stored as bcrypt.
    assert_eq!(
        root.send(
            "POST",
            "/.groups/g/.users/bob/.password",
            &[],
            Some(("text/plain", "mot de passé".as_bytes()))
        )
        .0,
        204
    );
    assert_eq!(login("mot de passé"), "join");
    // Deleted: nobody can log in as bob.
    assert_eq!(root.delete("/.groups/g/.users/bob/.password", &[]).0, 204);
    assert_eq!(
        read_json(&server.groups_dir().join("g.json"))["users"]["bob"],
        json!({"permissions": "present"})
    );
    assert_eq!(login(""), "fail");
    // Missing users.
    assert_eq!(
        root.put_json("/.groups/g/.users/nobody/.password", json!("x"), &[])
            .0,
        404
    );
    assert_eq!(
        root.put_json("/.groups/g/.wildcard-user/.password", json!("x"), &[])
            .0,
        204
    );
    assert_eq!(
        root.put_json("/.groups/g/.empty-user/.password", json!("x"), &[])
            .0,
        404
    );
}

#[test]
fn keys_are_validated_stored_and_removed() {
    let server = server();
    let root = Api::root(&server);
    let put = |body: &Value| {
        root.send(
            "PUT",
            "/.groups/g/.keys",
            &[],
            Some(("application/jwk-set+json", body.to_string().as_bytes())),
        )
    };
    let secret = [9u8; 32];
    let key = json!({"kty": "oct", "alg": "HS256", "k": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)});
    assert_eq!(
        put(&json!({"keys": [{"kty": "oct", "alg": "HS256", "k": "AAAA"}]})).0,
        400
    );
    assert_eq!(
        put(&json!({"keys": [{"kty": "RSA", "alg": "PS512"}]})).0,
        400
    );
    assert_eq!(put(&json!({"keys": "no"})).0, 400);
    assert_eq!(put(&json!({"keys": [key]})).0, 204);
    assert_eq!(
        read_json(&server.groups_dir().join("g.json"))["authKeys"],
        json!([key])
    );
    // The keys are not shown with the description.
    assert!(!text_of(&root.get("/.groups/g")).contains("authKeys"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let jwt = sign_hs256(
        &secret,
        &json!({"sub": "jwtuser", "aud": format!("http://{}/group/g/", server.host()),
        "permissions": ["present"], "iat": now, "exp": now + 600}),
    );
    let (_, joined) = join(&server, "g", json!({"token": jwt}));
    assert_eq!(
        (joined["kind"].as_str(), joined["username"].as_str()),
        (Some("join"), Some("jwtuser"))
    );
    assert_eq!(root.delete("/.groups/g/.keys", &[]).0, 204);
    assert!(
        read_json(&server.groups_dir().join("g.json"))
            .get("authKeys")
            .is_none()
    );
    assert_eq!(join_kind(&server, "g", json!({"token": jwt})), "fail");
    assert_eq!(root.delete("/.groups/nothing/.keys", &[]).0, 404);
}

#[test]
fn tokens_of_a_group_and_global_tokens() {
    let server = server();
    let root = Api::root(&server);
    let expires = time_from_now(3600);
    // Create: the server names it; 201 with the bare name as Location.
    let created = root.post_json(
        "/.groups/g/.tokens/",
        json!({"permissions": ["present"], "expires": expires, "username": "guest"}),
    );
    assert_eq!(created.0, 201);
    let name = header(&created.1, "location").unwrap().to_owned();
    assert_eq!(name.len(), 11, "{name}");
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(server.data_dir().join("var/tokens.jsonl"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    assert_eq!(
        (
            line["token"].as_str(),
            line["group"].as_str(),
            line["issuedBy"].as_str()
        ),
        (Some(name.as_str()), Some("g"), Some("root"))
    );
    let dir_mode = std::fs::metadata(server.data_dir().join("var"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    // It admits its holder.
    let (_, joined) = join(&server, "g", json!({"token": name}));
    assert_eq!(
        (joined["kind"].as_str(), joined["username"].as_str()),
        (Some("join"), Some("guest"))
    );
    // Overspecified templates are refused.
    for bad in [json!({"token": "mine"}), json!({"group": "g"})] {
        let reply = root.post_json("/.groups/g/.tokens/", bad);
        assert_eq!(
            (reply.0, text_of(&reply).trim().to_owned()),
            (400, "overspecified token".to_owned())
        );
    }
    // List and read (without token and group), with the tokens file's ETag.
    let second = header(
        &root
            .post_json("/.groups/g/.tokens/", json!({"expires": time_from_now(60)}))
            .1,
        "location",
    )
    .unwrap()
    .to_owned();
    let list = root.get("/.groups/g/.tokens/");
    assert_eq!(json_of(&list), json!([second, name]));
    let tokens_file = server.data_dir().join("var/tokens.jsonl");
    assert_eq!(etag_of(&list), file_etag(&tokens_file));
    let got = root.get(&format!("/.groups/g/.tokens/{name}"));
    let token = json_of(&got);
    assert!(token.get("token").is_none() && token.get("group").is_none());
    assert_eq!(
        (token["username"].as_str(), token["permissions"].clone()),
        (Some("guest"), json!(["present"]))
    );
    let etag = etag_of(&got);
    // Edit (galenectl revoke-token: expires a minute ago, with If-Match): the join is refused.
    let mut revoked = token.clone();
    revoked["expires"] = json!(time_from_now(-60));
    assert_eq!(
        root.put_json(
            &format!("/.groups/g/.tokens/{name}"),
            revoked.clone(),
            &[("If-Match", "\"stale\"")]
        )
        .0,
        412
    );
    assert_eq!(
        root.put_json(
            &format!("/.groups/g/.tokens/{name}"),
            revoked,
            &[("If-Match", &etag)]
        )
        .0,
        204
    );
    let (_, joined) = join(&server, "g", json!({"token": name}));
    assert_eq!(joined["kind"], "fail");
    // PUT of a name that does not exist creates it (Galène's handler crashes).
    assert_eq!(
        root.put_json(
            "/.groups/g/.tokens/chosen",
            json!({"expires": expires}),
            &[]
        )
        .0,
        201
    );
    assert_eq!(
        root.put_json("/.groups/g/.tokens/chosen", json!({"group": "h"}), &[])
            .0,
        400
    );
    // Another group's token: 404 to read or delete, 409 to write.
    server.write_group("h", "{}");
    assert_eq!(root.get("/.groups/h/.tokens/chosen").0, 404);
    assert_eq!(root.delete("/.groups/h/.tokens/chosen", &[]).0, 404);
    let conflict = root.put_json("/.groups/h/.tokens/chosen", json!({}), &[]);
    assert_eq!(
        (conflict.0, text_of(&conflict).trim().to_owned()),
        (409, "token exists in different group".to_owned())
    );
    assert_eq!(json_of(&root.get("/.groups/h/.tokens/")), json!([]));
    // The group must exist.
    assert_eq!(root.get("/.groups/nothing/.tokens/").0, 404);
    assert_eq!(root.get("/.groups/g/.tokens").0, 404);
    // Delete.
    assert_eq!(
        root.delete(&format!("/.groups/g/.tokens/{second}"), &[]).0,
        204
    );
    assert_eq!(
        root.delete(&format!("/.groups/g/.tokens/{second}"), &[]).0,
        404
    );
    // Global tokens: only the global administrator, listed apart from the groups'.
    let global = root.post_json(
        "/.groups/.tokens/",
        json!({"permissions": ["admin"], "includeSubgroups": true, "expires": expires}),
    );
    assert_eq!(global.0, 201);
    let global_name = header(&global.1, "location").unwrap().to_owned();
    assert_eq!(
        json_of(&root.get("/.groups/.tokens/")),
        json!([global_name])
    );
    assert_eq!(
        Api::with(&server, Some(basic("gadmin", "gpw")))
            .get("/.groups/.tokens/")
            .0,
        401
    );
    // ... and it is a global administrator's credential.
    assert_eq!(
        Api::with(&server, Some(format!("Bearer {global_name}")))
            .get("/.groups/")
            .0,
        200
    );
    // Tokens need no writableGroups; removing the last one removes the file.
    server.write_config(&CONFIG.replace("\"writableGroups\": true", "\"writableGroups\": false"));
    for name in [name.as_str(), "chosen"] {
        assert_eq!(
            root.delete(&format!("/.groups/g/.tokens/{name}"), &[]).0,
            204
        );
    }
    assert_eq!(
        root.delete(&format!("/.groups/.tokens/{global_name}"), &[])
            .0,
        204
    );
    assert!(!tokens_file.exists());
}

#[test]
fn stats_name_who_is_in_each_group() {
    let server = server();
    let (_bob, joined) = join(
        &server,
        "g",
        json!({"username": "bob", "password": "bobpw"}),
    );
    assert_eq!(joined["kind"], "join");
    let reply = Api::root(&server).get("/.stats");
    assert_eq!(reply.0, 200);
    assert_eq!(header(&reply.1, "cache-control"), Some("no-cache"));
    let stats = json_of(&reply);
    assert_eq!(stats[0]["name"], "g");
    assert_eq!(stats[0]["clients"][0]["username"], "bob");
}

#[test]
fn api_changes_reach_running_groups_at_once() {
    let server = server();
    let (mut bob, joined) = join(
        &server,
        "g",
        json!({"username": "bob", "password": "bobpw"}),
    );
    assert_eq!(joined["status"]["displayName"], "Gee");
    let root = Api::root(&server);
    // The member is told without doing anything (a file edit is seen at the group's next use;
    // an API edit at once).
    assert_eq!(
        root.put_json(
            "/.groups/g",
            json!({"displayName": "Renamed", "allow-recording": true}),
            &[]
        )
        .0,
        204
    );
    let change = bob.recv_type("joined");
    assert_eq!(
        (
            change["kind"].as_str(),
            change["status"]["displayName"].as_str()
        ),
        (Some("change"), Some("Renamed"))
    );
    // Permissions follow the user's new entry at the next change.
    assert_eq!(
        root.put_json("/.groups/g/.users/bob", json!({"permissions": "op"}), &[])
            .0,
        204
    );
    bob.recv_type("joined");
    // A group created through the API is joinable at once; a deleted one is gone.
    assert_eq!(root.put_json("/.groups/fresh", json!({}), &[]).0, 201);
    assert_eq!(
        root.put_json(
            "/.groups/fresh/.wildcard-user",
            json!({"permissions": "present"}),
            &[]
        )
        .0,
        201
    );
    assert_eq!(
        root.put_json(
            "/.groups/fresh/.wildcard-user/.password",
            json!({"type": "wildcard"}),
            &[]
        )
        .0,
        204
    );
    assert_eq!(
        join_kind(&server, "fresh", json!({"username": "x", "password": ""})),
        "join"
    );
    let (status, _, _) = server.http_get("/group/fresh/.status", &[]);
    assert_eq!(status, 200);
    assert_eq!(root.delete("/.groups/fresh", &[]).0, 204);
    let (status, _, _) = server.http_get("/group/fresh/.status", &[]);
    assert_eq!(status, 404);
}

#[test]
fn first_run_setup_is_local_once_and_logged() {
    let server = TestServer::start(Setup::insecure());
    let anonymous = Api::with(&server, None);
    assert_eq!(
        json_of(&anonymous.get("/.setup")),
        json!({"pending": true, "allowed": true})
    );
    let body = json!({"username": "admin", "password": "s3cret-pass"});
    let post = |headers: &[(&str, &str)], body: &Value| {
        anonymous.send(
            "POST",
            "/.setup",
            headers,
            Some(("application/json", body.to_string().as_bytes())),
        )
    };
    // Not from another origin, not through a proxy, not without a name or password.
    assert_eq!(post(&[("Origin", "https://evil.example")], &body).0, 403);
    assert_eq!(post(&[("X-Forwarded-For", "203.0.113.9")], &body).0, 403);
    assert_eq!(post(&[], &json!({"username": "", "password": "x"})).0, 400);
    assert_eq!(post(&[], &json!({"username": "admin"})).0, 400);
    assert!(!server.data_dir().join("config.json").exists());
    let same_origin = format!("http://{}", server.host());
    assert_eq!(post(&[("Origin", &same_origin)], &body).0, 201);
    let config = read_json(&server.data_dir().join("config.json"));
    assert_eq!(config["writableGroups"], true);
    assert_eq!(config["users"]["admin"]["permissions"], "admin");
    let key = config["users"]["admin"]["password"]["key"]
        .as_str()
        .unwrap();
    assert!(key.starts_with("$2a$12$"), "{key}");
    // Done: gone for good, and the administrator can use the API.
    assert_eq!(
        json_of(&anonymous.get("/.setup")),
        json!({"pending": false, "allowed": false})
    );
    assert_eq!(
        post(&[], &json!({"username": "evil", "password": "x"})).0,
        403
    );
    let admin = Api::with(&server, Some(basic("admin", "s3cret-pass")));
    assert_eq!(
        admin
            .put_json("/.groups/first", json!({"public": true}), &[])
            .0,
        201
    );
    assert_eq!(json_of(&admin.get("/.groups/")), json!(["first"]));
}

#[test]
fn first_run_setup_keeps_an_existing_configuration() {
    let server = TestServer::start(Setup::insecure().config(r#"{"canonicalHost": "box.example", "users": {"op": {"password": "x", "permissions": "op"}}}"#));
    let reply = Api::with(&server, None).send(
        "POST",
        "/.setup",
        &[],
        Some((
            "application/json",
            json!({"username": "admin", "password": "pw"})
                .to_string()
                .as_bytes(),
        )),
    );
    assert_eq!(reply.0, 201);
    let config = read_json(&server.data_dir().join("config.json"));
    assert_eq!(config["canonicalHost"], "box.example");
    assert_eq!(config["users"]["op"]["permissions"], "op");
}

#[test]
fn groups_created_without_a_groups_directory_replace_the_built_in_group() {
    let server = TestServer::start(Setup::insecure().without_groups_dir().config(CONFIG));
    assert_eq!(server.http_get("/group/public/.status", &[]).0, 200);
    let root = Api::root(&server);
    assert_eq!(json_of(&root.get("/.groups/")), json!([]));
    assert_eq!(
        root.put_json("/.groups/office", json!({"public": true}), &[])
            .0,
        201
    );
    assert_eq!(
        std::fs::metadata(server.groups_dir())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    assert_eq!(server.http_get("/group/office/.status", &[]).0, 200);
    assert_eq!(server.http_get("/group/public/.status", &[]).0, 404);
    assert_eq!(json_of(&root.get("/.groups/")), json!(["office"]));
}

/// Runs the sfubox binary on `root`'s directories; returns it and its address.
fn spawn_binary(root: &std::path::Path, env: &[(&str, &str)]) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sfubox"));
    command
        .args([
            "-insecure",
            "-http",
            &format!("127.0.0.1:{port}"),
            "-groups",
            &root.join("groups").to_string_lossy(),
            "-data",
            &root.join("data").to_string_lossy(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let child = command.spawn().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "sfubox did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, addr)
}

/// One request to `addr`; the raw response (empty when the connection dropped).
fn raw_request(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(request.as_bytes());
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_rewrite_interrupted_before_the_rename_leaves_the_old_file_whole() {
    let root = common::fresh_dir("crash");
    std::fs::create_dir_all(root.join("groups")).unwrap();
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::write(root.join("data/config.json"), CONFIG).unwrap();
    std::fs::write(root.join("groups/g.json"), GROUP).unwrap();
    let (mut child, addr) = spawn_binary(&root, &[("SFUBOX_TEST_CRASH_BEFORE_RENAME", "1")]);
    let body = json!({"displayName": "never"}).to_string();
    let auth = basic("root", "rootpw");
    let response = raw_request(
        &addr,
        &format!(
            "PUT {API}/.groups/g HTTP/1.1\r\nHost: {addr}\r\n\
        Authorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(response.is_empty(), "the server answered: {response}");
    let status = child.wait().unwrap();
    assert!(!status.success(), "{status:?}");
    // The old file is there, whole; the new text sits in a temporary dot file.
    assert_eq!(
        std::fs::read_to_string(root.join("groups/g.json")).unwrap(),
        GROUP
    );
    let temps: Vec<String> = std::fs::read_dir(root.join("groups"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".g.json."))
        .collect();
    assert_eq!(temps.len(), 1, "{temps:?}");
    assert!(
        std::fs::read_to_string(root.join("groups").join(&temps[0]))
            .unwrap()
            .contains("never")
    );
    // Restarted, the server serves the old group and ignores the leftover.
    let (mut child, addr) = spawn_binary(&root, &[]);
    let response = raw_request(
        &addr,
        &format!("GET {API}/.groups/ HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\n\r\n"),
    );
    assert!(response.ends_with("[\"g\"]\n"), "{response}");
    let response = raw_request(
        &addr,
        &format!("GET {API}/.groups/g HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\n\r\n"),
    );
    assert!(response.contains("\"displayName\":\"Gee\""), "{response}");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn check_config_reports_a_pending_setup() {
    let root = common::fresh_dir("check");
    std::fs::create_dir_all(root.join("groups")).unwrap();
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::write(root.join("groups/g.json"), "{}").unwrap();
    let check = || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_sfubox"))
            .args([
                "-check-config",
                "-groups",
                &root.join("groups").to_string_lossy(),
                "-data",
                &root.join("data").to_string_lossy(),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let report = check();
    assert!(report.contains("first-run setup pending"), "{report}");
    std::fs::write(root.join("data/config.json"), CONFIG).unwrap();
    let report = check();
    assert!(!report.contains("setup pending"), "{report}");
    assert!(report.contains("an administrator"), "{report}");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_client_that_waits_for_100_continue_gets_it() {
    use std::io::{Read, Write};
    let server = server();
    let body = json!({"displayName": "Continued"}).to_string();
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "PUT {API}/.groups/g HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        server.host(),
        basic("root", "rootpw"),
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(body.as_bytes()).unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(
        rest.starts_with(b"HTTP/1.1 204 "),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    assert_eq!(
        read_json(&server.groups_dir().join("g.json"))["displayName"],
        "Continued"
    );
}
