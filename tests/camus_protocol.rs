//! The Camus endpoints over real sockets: every message type, both routes, the lifecycle
//! (greeting, bye, disconnect, keepalive in real time), passwords, guest limits, and each
//! documented fix over the original server.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_tungstenite::tungstenite::Message;
use common::{Setup, TestServer, WsClient, header};
use serde_json::{Value, json};

const ROOMS: &str = r#"{"rooms": [
    {"name": "Lobby", "public": true},
    {"name": "Other"},
    {"name": "Secret Room", "password": "sesame", "public": true},
    {"name": "Pair", "guest-limit": 2}
]}"#;

const BUNDLE: &[u8] = b"// the Camus client bundle\n";

fn setup() -> Setup {
    Setup::insecure()
        .data_file("camus-rooms.json", ROOMS.as_bytes())
        .camus_client_file("dist/chat.js", BUNDLE)
        .camus_client_file("css/app.css", b"body {}\n")
}

fn server() -> TestServer {
    TestServer::start(setup())
}

/// Opens the WebSocket at `path` (with `headers`), checks the greeting and returns the
/// client with its id.
fn join_with(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> (WsClient, String) {
    let mut ws = match server.ws_connect_at(path, headers) {
        Ok(ws) => ws,
        Err(status) => panic!("{path}: refused with {status}"),
    };
    let greeting = ws.recv_json();
    let id = greeting["receiver"]
        .as_str()
        .expect("a receiver")
        .to_owned();
    assert_eq!(
        greeting,
        json!({"sender": "ground control", "receiver": id, "type": "greeting",
               "data": "This is Ground Control to Major Tom: You've really made the grade. \
                        Now it's time to leave the capsule if you dare."})
    );
    assert!(
        id.len() == 32
            && id
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{id}"
    );
    (ws, id)
}

fn join(server: &TestServer, path: &str) -> (WsClient, String) {
    join_with(server, path, &[])
}

/// A message to ground control.
fn gc(kind: &str, data: Value) -> Value {
    json!({"receiver": "ground control", "type": kind, "data": data})
}

/// Nothing arrives within a short while.
fn assert_silent(ws: &mut WsClient) {
    if let Some(message) = ws.recv_message(Duration::from_millis(300)) {
        panic!("unexpected {message:?}");
    }
}

/// The next text frame, raw.
fn recv_text(ws: &mut WsClient) -> String {
    match ws.recv_message(common::RECV_TIMEOUT) {
        Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

fn room_info(receiver: &str, room: &str, clients: &[(&str, &str)]) -> Value {
    let clients: Vec<Value> = clients
        .iter()
        .map(|(id, username)| json!({"id": id, "username": username}))
        .collect();
    json!({"sender": "ground control", "receiver": receiver, "type": "room-info",
           "data": {"room_id": room, "clients": clients}})
}

/// A form POST; returns (status, headers, body).
fn post_form(server: &TestServer, path: &str, body: &str) -> (u16, Vec<(String, String)>, String) {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n{body}",
        server.host(),
        body.len()
    );
    let (status, headers, body) = common::parse_response(&server.raw_exchange(request.as_bytes()));
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn get(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, String) {
    let (status, headers, body) = server.http_get(path, headers);
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[test]
fn ping_is_answered_with_the_data_echoed_byte_for_byte() {
    let server = server();
    let (mut a, id) = join(&server, "/chat/lobby/ws");
    a.send_text(r#"{"receiver":"ground control","type":"ping","data":{"t":1.50,"n":123456789012345678901234567890}}"#);
    assert_eq!(
        recv_text(&mut a),
        format!(
            r#"{{"sender":"ground control","receiver":"{id}","type":"pong","data":{{"t":1.50,"n":123456789012345678901234567890}}}}"#
        )
    );
    a.send_json(json!({"receiver": "ground control", "type": "ping"}));
    assert_eq!(
        a.recv_json(),
        json!({"sender": "ground control", "receiver": id, "type": "pong", "data": null})
    );
    // pong and greeting to ground control: no reply.
    a.send_json(gc("pong", json!(1)));
    a.send_json(gc("greeting", json!("Major Tom to Ground Control")));
    assert_silent(&mut a);
}

#[test]
fn room_info_and_profile() {
    let server = server();
    let (mut a, id_a) = join(&server, "/chat/lobby/ws");
    let (mut b, id_b) = join(&server, "/chat/lobby/ws");
    b.send_json(gc("get-room-info", Value::Null));
    assert_eq!(
        b.recv_json(),
        room_info(
            &id_b,
            "lobby",
            &[(&id_a, "Major Tom"), (&id_b, "Major Tom")]
        )
    );
    a.send_json(gc("profile", json!({"username": "Ziggy"})));
    let clients = [(id_a.as_str(), "Ziggy"), (id_b.as_str(), "Major Tom")];
    assert_eq!(a.recv_json(), room_info(&id_a, "lobby", &clients));
    assert_eq!(b.recv_json(), room_info(&id_b, "lobby", &clients));
    // A profile without object data: no reply at all.
    a.send_json(gc("profile", json!("Ziggy")));
    assert_silent(&mut a);
    assert_silent(&mut b);
}

#[test]
fn ice_servers_come_from_ice_servers_json() {
    let server = TestServer::start(setup().data_file(
        "ice-servers.json",
        br#"[{"urls": ["stun:stun.example.org"]},
             {"urls": ["turn:turn.example.org:3478"], "username": "box",
              "credential": "secret", "credentialType": "hmac-sha1"}]"#,
    ));
    let (mut a, id) = join(&server, "/room/lobby/ws");
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    a.send_json(gc("get-ice-servers", Value::Null));
    let reply = a.recv_json();
    assert_eq!(reply["type"], "ice-servers");
    assert_eq!(reply["receiver"], id.as_str());
    assert_eq!(reply["data"][0], json!({"urls": ["stun:stun.example.org"]}));
    let turn = &reply["data"][1];
    let username = turn["username"].as_str().unwrap();
    let (expiry, suffix) = username.split_once(':').unwrap();
    assert_eq!(suffix, "box");
    let expiry: u64 = expiry.parse().unwrap();
    assert!(
        (before + 86400..=before + 86400 + 5).contains(&expiry),
        "{expiry}"
    );
    assert_eq!(turn["credential"].as_str().map(str::len), Some(28));
}

#[test]
fn broadcast_and_relay_with_the_true_sender() {
    let server = server();
    let (mut a, id_a) = join(&server, "/chat/lobby/ws");
    let (mut b, id_b) = join(&server, "/chat/lobby/ws");
    let text = json!({"from": "A", "time": 1, "text": "hello"});
    a.send_json(
        json!({"sender": "forged", "receiver": "room", "type": "text", "data": text, "x": 1}),
    );
    let expected = json!({"sender": id_a, "receiver": "room", "type": "text", "data": text});
    assert_eq!(a.recv_json(), expected);
    assert_eq!(b.recv_json(), expected);

    for (kind, data) in [
        ("offer", json!({"type": "offer", "sdp": "v=0\r\n"})),
        ("answer", json!({"type": "answer", "sdp": "v=0\r\n"})),
        (
            "icecandidate",
            json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0",
                   "sdpMLineIndex": 0, "usernameFragment": "u"}),
        ),
        ("text", json!({"from": "A", "time": 2, "text": "psst"})),
        ("bye", json!(3)),
        ("whatever", json!([1])),
    ] {
        a.send_json(json!({"sender": id_b, "receiver": id_b, "type": kind, "data": data}));
        assert_eq!(
            b.recv_json(),
            json!({"sender": id_a, "receiver": id_b, "type": kind, "data": data}),
            "{kind}"
        );
    }
    // Unknown receivers: dropped silently.
    a.send_json(json!({"receiver": "0123456789abcdef0123456789abcdef", "type": "offer"}));
    a.send_json(json!({"type": "offer"}));
    assert_silent(&mut a);
    assert_silent(&mut b);
}

#[test]
fn unknown_types_to_ground_control_get_an_error() {
    let server = server();
    let (mut a, id) = join(&server, "/chat/lobby/ws");
    for (message, printed) in [
        (gc("text", json!({})), "text"),
        (gc("offer", Value::Null), "offer"),
        (gc("bogus-type", Value::Null), "bogus-type"),
        (json!({"receiver": "ground control"}), "None"),
    ] {
        a.send_json(message);
        assert_eq!(
            a.recv_json(),
            json!({"sender": "ground control", "receiver": id, "type": "error",
                   "data": format!("Unknown message type: {printed}")})
        );
    }
}

#[test]
fn malformed_frames_are_dropped_and_the_socket_stays_usable() {
    let server = server();
    let (mut a, _) = join(&server, "/chat/lobby/ws");
    for text in [
        "not json",
        "[1, 2]",
        "\"ping\"",
        "7",
        "null",
        "{\"receiver\": 5}",
    ] {
        a.send_text(text);
    }
    a.send_message(Message::binary(
        br#"{"receiver":"ground control","type":"ping"}"#.to_vec(),
    ));
    assert_silent(&mut a);
    a.send_json(gc("ping", json!(5)));
    assert_eq!(a.recv_json()["data"], 5);
}

#[test]
fn both_routes_lead_to_the_same_room_and_serve_the_page() {
    let server = server();
    let (mut a, id_a) = join(&server, "/chat/lobby/ws");
    let (mut b, id_b) = join(&server, "/room/lobby/ws");
    b.send_json(gc("get-room-info", Value::Null));
    assert_eq!(
        b.recv_json(),
        room_info(
            &id_b,
            "lobby",
            &[(&id_a, "Major Tom"), (&id_b, "Major Tom")]
        )
    );
    b.send_json(json!({"receiver": id_a, "type": "offer", "data": {}}));
    assert_eq!(a.recv_json()["sender"], id_b.as_str());

    for path in ["/chat/lobby", "/room/lobby"] {
        let (status, headers, body) = get(&server, path, &[]);
        assert_eq!(status, 200, "{path}");
        assert_eq!(
            header(&headers, "content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(body.contains("<div id=\"react-root\""), "{body}");
        assert!(body.contains("<script src=\"/static/dist/chat.js\"></script>"));
    }
    let (status, headers, body) = get(&server, "/static/dist/chat.js", &[]);
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(body.as_bytes(), BUNDLE);
    assert_eq!(get(&server, "/static/css/app.css", &[]).0, 200);
    assert_eq!(get(&server, "/static/nothing.js", &[]).0, 404);
    let (status, headers, _) = get(&server, "/chat/lobby/", &[]);
    assert_eq!(
        (status, header(&headers, "location")),
        (301, Some("/chat/lobby"))
    );
    // Unknown rooms: 404 for the page and the socket.
    assert_eq!(get(&server, "/chat/nowhere", &[]).0, 404);
    assert_eq!(
        server.ws_connect_at("/room/nowhere/ws", &[]).err(),
        Some(404)
    );
    // The Galène endpoint is untouched.
    assert!(server.ws_connect_at("/ws", &[]).is_ok());
}

#[test]
fn rooms_are_created_on_first_use_in_the_built_in_setup() {
    let server = TestServer::start(
        Setup::insecure()
            .without_groups_dir()
            .camus_client_file("dist/index.js", BUNDLE),
    );
    let (mut a, _) = join(&server, "/room/fresh-room/ws");
    a.send_json(gc("get-room-info", Value::Null));
    assert_eq!(a.recv_json()["data"]["room_id"], "fresh-room");
    let (status, _, body) = get(&server, "/chat/another-room", &[]);
    assert_eq!(status, 200);
    assert!(body.contains("/static/dist/index.js"));
    // Only URL-safe lower-case slugs.
    assert_eq!(get(&server, "/chat/Not-A-Slug", &[]).0, 404);
    // Not listed.
    assert!(
        get(&server, "/public", &[])
            .2
            .contains("No rooms are available")
    );
}

#[test]
fn an_invalid_rooms_file_fails_closed() {
    let server = TestServer::start(
        Setup::insecure().data_file("camus-rooms.json", br#"{"rooms": "lobby"}"#),
    );
    assert_eq!(server.ws_connect_at("/chat/lobby/ws", &[]).err(), Some(500));
    assert_eq!(get(&server, "/chat/lobby", &[]).0, 500);
}

#[test]
fn password_room_needs_the_pass_cookie_set_by_its_page() {
    let server = server();
    let (status, _, body) = get(&server, "/chat/secret-room", &[]);
    assert_eq!(status, 200);
    assert!(body.contains("name=\"password\"") && body.contains("Join Secret Room"));
    assert_eq!(
        server.ws_connect_at("/chat/secret-room/ws", &[]).err(),
        Some(403)
    );

    let (status, headers, body) =
        post_form(&server, "/chat/secret-room", "password=wrong&submit=Go");
    assert_eq!(status, 401);
    assert!(body.contains("Invalid password"));
    assert_eq!(header(&headers, "set-cookie"), None);

    let (status, headers, body) =
        post_form(&server, "/chat/secret-room", "password=sesame&submit=Go");
    assert_eq!(status, 200);
    assert!(body.contains("react-root"));
    let set_cookie = header(&headers, "set-cookie")
        .expect("a pass cookie")
        .to_owned();
    assert!(
        set_cookie.contains("Path=/chat/secret-room;")
            && set_cookie.contains("HttpOnly")
            && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("camus_pass="));

    // With the cookie: the socket opens, and the page skips the form.
    let (mut a, _) = join_with(&server, "/chat/secret-room/ws", &[("Cookie", &cookie)]);
    a.send_json(gc("get-room-info", Value::Null));
    assert_eq!(a.recv_json()["data"]["room_id"], "secret-room");
    let (status, _, body) = get(&server, "/chat/secret-room", &[("Cookie", &cookie)]);
    assert_eq!(status, 200);
    assert!(body.contains("react-root"));
    // A forged or foreign pass does not open it; an open room needs none.
    let forged = [("Cookie", "camus_pass=99999999999.00")];
    assert_eq!(
        server.ws_connect_at("/chat/secret-room/ws", &forged).err(),
        Some(403)
    );
    join(&server, "/chat/lobby/ws");
}

#[test]
fn guest_limit_refuses_page_and_socket_until_someone_leaves() {
    let server = server();
    let (mut a, _) = join(&server, "/chat/pair/ws");
    let (_b, _) = join(&server, "/chat/pair/ws");
    assert_eq!(server.ws_connect_at("/chat/pair/ws", &[]).err(), Some(403));
    let (status, _, body) = get(&server, "/room/pair", &[]);
    assert_eq!(
        (status, body.as_str()),
        (418, "Guest limit already reached\n")
    );
    a.send_json(gc("bye", json!(1)));
    assert_eq!(a.recv_json()["type"], "bye");
    assert_eq!(a.expect_close(), (1000, "bye".to_owned()));
    join(&server, "/chat/pair/ws");
}

#[test]
fn bye_and_disconnect_tell_the_rest_of_the_room() {
    let server = server();
    let (mut a, id_a) = join(&server, "/chat/lobby/ws");
    let (mut b, id_b) = join(&server, "/chat/lobby/ws");
    let (c, _) = join(&server, "/chat/lobby/ws");

    let sent = epoch_ms();
    a.send_json(gc("bye", json!(sent)));
    let bye = a.recv_json();
    assert_eq!(
        (bye["sender"].as_str(), bye["receiver"].as_str()),
        (Some("ground control"), Some(id_a.as_str()))
    );
    assert_eq!(bye["type"], "bye");
    assert!(
        bye["data"]
            .as_u64()
            .is_some_and(|t| t >= sent.saturating_sub(1000))
    );
    assert_eq!(a.expect_close(), (1000, "bye".to_owned()));
    let info = b.recv_json();
    assert_eq!(info["type"], "room-info");
    assert!(
        !info["data"]["clients"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id_a.as_str())
    );

    // A socket closed without bye leaves at once.
    drop(c);
    let info = b.recv_type("room-info");
    assert_eq!(info, room_info(&id_b, "lobby", &[(&id_b, "Major Tom")]));
}

#[test]
fn relaying_never_crosses_rooms() {
    let server = server();
    let (mut a, _) = join(&server, "/chat/lobby/ws");
    let (mut c, id_c) = join(&server, "/chat/other/ws");
    a.send_json(json!({"receiver": id_c, "type": "offer", "data": {}}));
    a.send_json(json!({"receiver": "room", "type": "text", "data": {}}));
    assert_eq!(a.recv_json()["type"], "text");
    assert_silent(&mut c);
}

#[test]
fn oversized_and_flooding_clients_are_limited() {
    let server = server();
    let (mut a, id) = join(&server, "/chat/lobby/ws");
    let (mut b, _) = join(&server, "/chat/lobby/ws");
    let big = json!({"receiver": "room", "type": "text", "data": "x".repeat(70 * 1024)});
    a.send_json(big);
    assert_eq!(
        a.recv_json(),
        json!({"sender": "ground control", "receiver": id, "type": "error",
               "data": "Message too large"})
    );
    assert_silent(&mut b);

    for n in 0..300 {
        a.send_json(gc("ping", json!(n)));
    }
    let mut pongs = 0;
    let mut limited = 0;
    while let Some(message) = a.recv_json_within(Duration::from_millis(500)) {
        match message["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") => {
                assert_eq!(message["data"], "Rate limit exceeded");
                limited += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!((200..300).contains(&pongs), "{pongs} pongs");
    // One error per streak of refused frames, not one per frame. A new streak can only start
    // after a token refilled while the burst was arriving (50 per second) let a frame through,
    // so on a slow machine there may be a few streaks, never more than the extra pongs + 1.
    assert!(limited >= 1, "the flood was not limited");
    assert!(
        limited <= 1 + (pongs - 200),
        "{limited} errors for {} refused frames",
        300 - pongs
    );
}

#[test]
fn a_burst_of_relays_reaches_the_receiver_whole() {
    // 150 frames sent at once (within the rate limit's burst) and relayed to B: more than
    // an outgoing queue holds, so the runtime must let B's writer drain between frames.
    let server = server();
    let (mut a, _) = join(&server, "/chat/lobby/ws");
    let (mut b, id_b) = join(&server, "/chat/lobby/ws");
    let burst: String = (0..150)
        .map(|n| json!({"receiver": id_b, "type": "icecandidate", "data": n}).to_string())
        .collect::<Vec<_>>()
        .join("\n");
    for line in burst.lines() {
        a.send_text(line);
    }
    for n in 0..150 {
        assert_eq!(b.recv_json()["data"], n);
    }
}

#[test]
fn public_lists_public_rooms_with_occupancy() {
    let server = server();
    let _a = join(&server, "/room/lobby/ws");
    let (status, _, body) = get(&server, "/public", &[]);
    assert_eq!(status, 200);
    assert!(
        body.contains("href=\"/room/lobby\">Lobby</a></td><td>1 / &#8734;</td>"),
        "{body}"
    );
    assert!(body.contains("href=\"/room/secret-room\">Secret Room</a></td><td>0 / &#8734;</td>"));
    assert!(!body.contains("other"));
}

#[test]
fn foreign_origins_are_refused_like_galene() {
    let server = server();
    let foreign = [("Origin", "https://elsewhere.example")];
    assert_eq!(
        server.ws_connect_at("/chat/lobby/ws", &foreign).err(),
        Some(403)
    );
    let same = format!("http://{}", server.host());
    join_with(&server, "/chat/lobby/ws", &[("Origin", &same)]);
}

#[test]
fn shutdown_closes_camus_sockets() {
    let mut server = server();
    let (mut a, _) = join(&server, "/chat/lobby/ws");
    server.request_stop();
    assert_eq!(
        a.expect_close(),
        (1001, "server is shutting down".to_owned())
    );
}

/// Real time: ~60 s. The silent client is pinged after 30 s and removed 30 s later; the
/// other, which keeps talking, is told.
#[test]
fn keepalive_pings_after_30_s_and_removes_30_s_later() {
    let server = server();
    let (mut a, id_a) = join(&server, "/chat/lobby/ws");
    let (mut b, id_b) = join(&server, "/chat/lobby/ws");
    let start = Instant::now();
    let ping = loop {
        b.send_json(gc("pong", Value::Null));
        if let Some(message) = a.recv_json_within(Duration::from_secs(5)) {
            break message;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "no keepalive ping"
        );
    };
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(29), "pinged after {waited:?}");
    assert_eq!(ping["type"], "ping");
    assert_eq!(ping["sender"], "ground control");
    assert_eq!(ping["receiver"], id_a.as_str());
    assert!(
        ping["data"]
            .as_u64()
            .is_some_and(|t| t.abs_diff(epoch_ms()) < 10_000)
    );

    // A stays silent; B keeps talking and sees A leave about 30 s after the ping.
    let pinged = Instant::now();
    let info = loop {
        b.send_json(gc("pong", Value::Null));
        if let Some(message) = b.recv_json_within(Duration::from_secs(5)) {
            break message;
        }
        assert!(
            pinged.elapsed() < Duration::from_secs(40),
            "A was not removed"
        );
    };
    let waited = pinged.elapsed();
    assert!(
        waited >= Duration::from_secs(25),
        "removed after {waited:?}"
    );
    assert_eq!(info, room_info(&id_b, "lobby", &[(&id_b, "Major Tom")]));
    assert_eq!(a.recv_json()["type"], "bye");
    assert_eq!(a.expect_close(), (1000, "keepalive timeout".to_owned()));
}
