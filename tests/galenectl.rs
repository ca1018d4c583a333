//! galenectl against sfubox, replayed: the exact requests `galenectl` sends for each command
//! (method, path, headers in the order Go's `net/http` writes them, body as Go's
//! `encoding/json` writes it), as read in its source (Galène's `galenectl/galenectl.go` at
//! 9e03b36, 2026-07-28: `putJSON`, `postJSON`, `getJSON`, `updateJSON`, `deleteValue`,
//! `makePassword`, `parsePermissions`, `url.JoinPath` paths). galenectl itself is not built:
//! it needs Go 1.24 and Galène's Go modules, and the test machines have Debian's Go 1.19 and
//! no module proxy (docs/admin.md says so).
//!
//! The script is an administrator's first hour: `initial-setup` (the `config.json` it writes),
//! `create-group`, `update-group -json`, `show-group`, `list-groups`, `create-user`,
//! `update-user`, `set-password` (bcrypt made by the client), `create-user -wildcard` and
//! `set-password -wildcard -type wildcard`, `list-users -l`, `create-token`, `list-tokens -l`,
//! `update-token`, a global admin token used with `-admin-token`, `revoke-token`,
//! `delete-token`, `delete-password`, `delete-user`, `delete-group`; and between them, logins
//! through Galène's protocol with what was created.

mod common;

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use common::{Setup, TestServer, WsClient, header, parse_response};
use serde_json::{Map, Value, json};

/// galenectl's administrator, as `initial-setup -admin-username admin -admin-password ...`.
const ADMIN: (&str, &str) = ("admin", "correct horse");

/// What galenectl's `setAuthorization` puts in a request.
#[derive(Clone)]
enum Auth {
    Basic(&'static str, &'static str),
    Bearer(String),
}

/// A request as Go's `http.Client` writes it (`Request.write`): request line, `Host`,
/// `User-Agent`, `Content-Length` (for a body, and for an empty PUT/POST), the request's
/// headers sorted by name, then the transport's `Accept-Encoding: gzip`.
fn go_request(
    server: &TestServer,
    method: &str,
    path: &str,
    auth: &Auth,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut sorted: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    sorted.push((
        "Authorization".into(),
        match auth {
            Auth::Basic(user, password) => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ),
            Auth::Bearer(token) => format!("Bearer {token}"),
        },
    ));
    sorted.sort();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: Go-http-client/1.1\r\n",
        server.host()
    );
    if let Some(body) = body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in &sorted {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Accept-Encoding: gzip\r\n\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    parse_response(&server.raw_exchange(&bytes))
}

/// galenectl's helpers over one server, with its global flags.
struct Galenectl<'a> {
    server: &'a TestServer,
    auth: Auth,
}

impl Galenectl<'_> {
    /// `getJSON`: GET; fails on a status ≥ 300; returns the ETag and the decoded body.
    fn get_json(&self, path: &str) -> Result<(String, Value), u16> {
        let (status, headers, body) = go_request(self.server, "GET", path, &self.auth, &[], None);
        if status >= 300 {
            return Err(status);
        }
        let etag = header(&headers, "etag").unwrap_or("").to_owned();
        Ok((etag, serde_json::from_slice(&body).expect("JSON")))
    }

    /// `putJSON`: PUT of `json.Marshal(value)`; `If-None-Match: *` unless `overwrite`.
    fn put_json(&self, path: &str, value: &Value, overwrite: bool) -> Result<(), u16> {
        let body = go_marshal(value);
        let mut headers = vec![("Content-Type", "application/json")];
        if !overwrite {
            headers.push(("If-None-Match", "*"));
        }
        let (status, _, _) = go_request(
            self.server,
            "PUT",
            path,
            &self.auth,
            &headers,
            Some(body.as_bytes()),
        );
        if status >= 300 { Err(status) } else { Ok(()) }
    }

    /// `postJSON`: POST of `json.Marshal(value)`; returns the `Location`.
    fn post_json(&self, path: &str, value: &Value) -> Result<String, u16> {
        let body = go_marshal(value);
        let (status, headers, _) = go_request(
            self.server,
            "POST",
            path,
            &self.auth,
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        );
        if status >= 300 {
            return Err(status);
        }
        Ok(header(&headers, "location").unwrap_or("").to_owned())
    }

    /// `updateJSON`: GET, fail without an ETag, change, PUT with `If-Match`.
    fn update_json(
        &self,
        path: &str,
        update: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<(), u16> {
        let (etag, old) = self.get_json(path)?;
        assert!(!etag.is_empty(), "galenectl: missing ETag for {path}");
        let Value::Object(mut map) = old else {
            panic!("{path}: not an object")
        };
        update(&mut map);
        let body = go_marshal(&Value::Object(map));
        let (status, _, _) = go_request(
            self.server,
            "PUT",
            path,
            &self.auth,
            &[("Content-Type", "application/json"), ("If-Match", &etag)],
            Some(body.as_bytes()),
        );
        if status >= 300 { Err(status) } else { Ok(()) }
    }

    /// `deleteValue`: DELETE without a body.
    fn delete(&self, path: &str) -> Result<(), u16> {
        let (status, _, _) = go_request(self.server, "DELETE", path, &self.auth, &[], None);
        if status >= 300 { Err(status) } else { Ok(()) }
    }
}

/// `json.Marshal` of a decoded value: maps with sorted keys (serde_json's map is sorted).
fn go_marshal(value: &Value) -> String {
    value.to_string()
}

/// `time.Now().Add(d)` as `encoding/json` writes a `time.Time` (RFC 3339 with nanoseconds,
/// trailing zeros trimmed; the test machines run in UTC).
fn go_time(offset_secs: i64) -> String {
    let now = SystemTime::now();
    let t = if offset_secs >= 0 {
        now + Duration::from_secs(offset_secs as u64)
    } else {
        now - Duration::from_secs(offset_secs.unsigned_abs())
    };
    sfubox::config::format_time(t)
}

/// `makePassword(pw, "bcrypt", …, cost)`: `{"type":"bcrypt","key":"$2a$…"}`.
fn bcrypt_password(password: &str, cost: u32) -> Value {
    let key = bcrypt::hash_with_result(password, cost)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoA);
    json!({"type": "bcrypt", "key": key})
}

/// The `config.json` that `galenectl initial-setup` writes: a `group.Configuration` with
/// `writableGroups` and the administrator (bcrypt cost 12), indented by four spaces.
fn initial_setup_config() -> String {
    let password = bcrypt_password(ADMIN.1, 12);
    format!(
        "{{\n    \"writableGroups\": true,\n    \"users\": {{\n        \"{}\": {{\n            \"password\": {{\n                \"type\": \"bcrypt\",\n                \"key\": {}\n            }},\n            \"permissions\": \"admin\"\n        }}\n    }}\n}}\n",
        ADMIN.0, password["key"]
    )
}

fn handshaken(server: &TestServer, id: &str) -> WsClient {
    let mut ws = server.ws_connect();
    ws.send_json(json!({"type": "handshake", "version": ["2"], "id": id}));
    ws.recv_type("handshake");
    ws
}

/// Joins `group` through Galène's protocol; the `joined` message.
fn join(server: &TestServer, group: &str, fields: Value) -> Value {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let id = format!(
        "ctl{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut ws = handshaken(server, &id);
    let mut message = json!({"type": "join", "kind": "join", "group": group});
    if let (Some(m), Some(f)) = (message.as_object_mut(), fields.as_object()) {
        m.extend(f.clone());
    }
    ws.send_json(message);
    ws.recv_type("joined")
}

const V0: &str = "/galene-api/v0";

#[test]
fn galenectl_manages_a_box_as_it_manages_galene() {
    // initial-setup: the operator copies the config.json galenectl wrote into data/.
    let server = TestServer::start(Setup::insecure().config(&initial_setup_config()));
    let ctl = Galenectl {
        server: &server,
        auth: Auth::Basic(ADMIN.0, ADMIN.1),
    };

    // create-group -group office -auto-subgroups=false ; then again: refused (exists).
    ctl.put_json(
        &format!("{V0}/.groups/office"),
        &json!({"auto-subgroups": false}),
        false,
    )
    .unwrap();
    assert_eq!(
        ctl.put_json(&format!("{V0}/.groups/office"), &json!({}), false),
        Err(412)
    );
    // update-group -group office -json <<< '{"displayName": "Office", "public": true, "max-clients": 10}'
    let template = json!({"displayName": "Office", "public": true, "max-clients": 10});
    ctl.update_json(&format!("{V0}/.groups/office"), |m| {
        for (k, v) in template.as_object().unwrap() {
            if v.is_null() {
                m.remove(k);
            } else {
                m.insert(k.clone(), v.clone());
            }
        }
    })
    .unwrap();
    // show-group
    let (_, description) = ctl.get_json(&format!("{V0}/.groups/office")).unwrap();
    assert_eq!(
        description,
        json!({"displayName": "Office", "public": true, "max-clients": 10})
    );
    // update-group -json <<< '{"max-clients": null}' (null deletes a key)
    ctl.update_json(&format!("{V0}/.groups/office"), |m| {
        m.remove("max-clients");
    })
    .unwrap();
    // list-groups
    let (_, groups) = ctl.get_json(&format!("{V0}/.groups/")).unwrap();
    assert_eq!(groups, json!(["office"]));

    // create-user -group office -user alice -permissions op ; create-user -user bob (present)
    ctl.put_json(
        &format!("{V0}/.groups/office/.users/alice"),
        &json!({"permissions": "op"}),
        false,
    )
    .unwrap();
    ctl.put_json(
        &format!("{V0}/.groups/office/.users/bob"),
        &json!({"permissions": "present"}),
        false,
    )
    .unwrap();
    // update-user -group office -user bob -permissions '["present","message","token"]'
    ctl.update_json(&format!("{V0}/.groups/office/.users/bob"), |m| {
        m.insert("permissions".into(), json!(["present", "message", "token"]));
    })
    .unwrap();
    // set-password -group office -user alice -password … (hashed by galenectl, bcrypt cost 8)
    ctl.put_json(
        &format!("{V0}/.groups/office/.users/alice/.password"),
        &bcrypt_password("alice-pw", 8),
        true,
    )
    .unwrap();
    ctl.put_json(
        &format!("{V0}/.groups/office/.users/bob/.password"),
        &bcrypt_password("bob-pw", 8),
        true,
    )
    .unwrap();
    // create-user -group office -wildcard -permissions observe ; set-password -wildcard -type wildcard
    ctl.put_json(
        &format!("{V0}/.groups/office/.wildcard-user"),
        &json!({"permissions": "observe"}),
        false,
    )
    .unwrap();
    ctl.put_json(
        &format!("{V0}/.groups/office/.wildcard-user/.password"),
        &json!({"type": "wildcard"}),
        true,
    )
    .unwrap();
    // list-users -group office -l
    let (_, users) = ctl
        .get_json(&format!("{V0}/.groups/office/.users/"))
        .unwrap();
    assert_eq!(users, json!(["alice", "bob"]));
    for (user, permissions) in [
        ("alice", json!("op")),
        ("bob", json!(["present", "message", "token"])),
    ] {
        let (_, d) = ctl
            .get_json(&format!("{V0}/.groups/office/.users/{user}"))
            .unwrap();
        assert_eq!(d, json!({"permissions": permissions}));
    }

    // What was created logs in through Galène's protocol.
    let alice = join(
        &server,
        "office",
        json!({"username": "alice", "password": "alice-pw"}),
    );
    assert_eq!(alice["kind"], "join");
    assert_eq!(
        alice["permissions"],
        json!(["op", "present", "message", "caption", "token"])
    );
    assert_eq!(alice["status"]["displayName"], "Office");
    let bob = join(
        &server,
        "office",
        json!({"username": "bob", "password": "bob-pw"}),
    );
    assert_eq!(bob["permissions"], json!(["present", "message", "token"]));
    assert_eq!(
        join(
            &server,
            "office",
            json!({"username": "bob", "password": "wrong"})
        )["kind"],
        "fail"
    );
    let guest = join(
        &server,
        "office",
        json!({"username": "visitor", "password": ""}),
    );
    assert_eq!(guest["kind"], "join");
    assert!(
        guest["permissions"].as_array().is_none_or(Vec::is_empty),
        "{guest}"
    );

    // create-token -group office -user guest (permissions present, expanded; 24 h)
    let token = ctl.post_json(&format!("{V0}/.groups/office/.tokens/"),
        &json!({"expires": go_time(24 * 3600), "permissions": ["present", "message"], "username": "guest"})).unwrap();
    assert!(!token.is_empty() && !token.contains('/'), "{token}");
    let joined = join(&server, "office", json!({"token": token}));
    assert_eq!(
        (joined["kind"].as_str(), joined["username"].as_str()),
        (Some("join"), Some("guest"))
    );
    assert_eq!(joined["permissions"], json!(["present", "message"]));
    // list-tokens -group office -l
    let (_, tokens) = ctl
        .get_json(&format!("{V0}/.groups/office/.tokens/"))
        .unwrap();
    assert_eq!(tokens, json!([token]));
    let (_, t) = ctl
        .get_json(&format!("{V0}/.groups/office/.tokens/{token}"))
        .unwrap();
    assert_eq!(t["username"], "guest");
    assert!(t["expires"].is_string());
    // update-token -group office -token … -permissions op -duration 1h
    ctl.update_json(&format!("{V0}/.groups/office/.tokens/{token}"), |v| {
        v.insert(
            "permissions".into(),
            json!(["op", "present", "message", "caption", "token"]),
        );
        v.insert("expires".into(), json!(go_time(3600)));
    })
    .unwrap();
    assert_eq!(
        join(&server, "office", json!({"token": token}))["permissions"],
        json!(["op", "present", "message", "caption", "token"])
    );

    // create-token -group "" -include-subgroups -permissions admin: a global admin token,
    // then list-groups -admin-token …
    let global = ctl
        .post_json(
            &format!("{V0}/.groups/.tokens/"),
            &json!({"expires": go_time(3600), "includeSubgroups": true, "permissions": ["admin"]}),
        )
        .unwrap();
    let by_token = Galenectl {
        server: &server,
        auth: Auth::Bearer(global.clone()),
    };
    assert_eq!(
        by_token.get_json(&format!("{V0}/.groups/")).unwrap().1,
        json!(["office"])
    );
    let (_, global_tokens) = by_token
        .get_json(&format!("{V0}/.groups/.tokens/"))
        .unwrap();
    assert_eq!(global_tokens, json!([global]));

    // revoke-token: expires a minute ago; the invitation no longer admits anybody.
    ctl.update_json(&format!("{V0}/.groups/office/.tokens/{token}"), |v| {
        v.insert("expires".into(), json!(go_time(-60)));
    })
    .unwrap();
    assert_eq!(
        join(&server, "office", json!({"token": token}))["kind"],
        "fail"
    );
    // delete-token (both)
    ctl.delete(&format!("{V0}/.groups/office/.tokens/{token}"))
        .unwrap();
    by_token
        .delete(&format!("{V0}/.groups/.tokens/{global}"))
        .unwrap();
    assert_eq!(by_token.get_json(&format!("{V0}/.groups/")), Err(401));
    assert_eq!(
        ctl.get_json(&format!("{V0}/.groups/office/.tokens/"))
            .unwrap()
            .1,
        json!([])
    );

    // delete-password -group office -user bob ; delete-user -user bob ; delete-user -wildcard
    ctl.delete(&format!("{V0}/.groups/office/.users/bob/.password"))
        .unwrap();
    assert_eq!(
        join(
            &server,
            "office",
            json!({"username": "bob", "password": "bob-pw"})
        )["kind"],
        "fail"
    );
    ctl.delete(&format!("{V0}/.groups/office/.users/bob"))
        .unwrap();
    ctl.delete(&format!("{V0}/.groups/office/.wildcard-user"))
        .unwrap();
    assert_eq!(
        join(
            &server,
            "office",
            json!({"username": "visitor", "password": ""})
        )["kind"],
        "fail"
    );
    assert_eq!(
        ctl.get_json(&format!("{V0}/.groups/office/.users/"))
            .unwrap()
            .1,
        json!(["alice"])
    );

    // The file galenectl's edits left is Galène's normal form.
    assert_eq!(
        std::fs::read_to_string(server.groups_dir().join("office.json"))
            .unwrap()
            .lines()
            .count(),
        1
    );
    // delete-group
    ctl.delete(&format!("{V0}/.groups/office")).unwrap();
    assert_eq!(
        ctl.get_json(&format!("{V0}/.groups/")).unwrap().1,
        json!([])
    );
    assert_eq!(
        join(
            &server,
            "office",
            json!({"username": "alice", "password": "alice-pw"})
        )["kind"],
        "fail"
    );
    // Errors galenectl reports: a wrong password, a missing group.
    let wrong = Galenectl {
        server: &server,
        auth: Auth::Basic(ADMIN.0, "wrong"),
    };
    assert_eq!(wrong.get_json(&format!("{V0}/.groups/")), Err(401));
    assert_eq!(ctl.delete(&format!("{V0}/.groups/office")), Err(404));
}
