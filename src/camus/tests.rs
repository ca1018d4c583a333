//! Protocol tests of the Camus hub with a fake clock: every message type, the lifecycle,
//! passwords, guest limits and each fix over the original server.

use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::{Value, json};

use super::hub::{
    CLOSE_GOING_AWAY, CLOSE_NORMAL, CLOSE_TRY_AGAIN_LATER, MAX_ROOM_MEMBERS, MAX_USERNAME_CHARS,
};
use super::limit::{BURST_MESSAGES, MAX_MESSAGE_BYTES};
use super::pass::PASS_LIFETIME;
use super::*;
use crate::config::camus::parse_camus_rooms;
use crate::config::{ConfigError, MemoryDirectory};
use crate::conn::{
    CAMUS_PING_AFTER, CAMUS_REAP_AFTER_PING, ConnId, ConnOutput, Deadlines, Effects, Outbox,
};
use crate::core::WallClock;

/// The wall-clock time at `t0`.
const WALL_T0_SECS: u64 = 1_700_000_000;

const ROOMS: &str = r#"{"rooms": [
    {"name": "Lobby", "public": true},
    {"name": "Other"},
    {"name": "Secret Room", "password": "sesame", "public": true, "guest-limit": 3},
    {"name": "Pair", "guest-limit": 2}
]}"#;

/// The hub with a fake clock, and the outbox and deadlines the facade would lend it.
struct Harness {
    hub: Hub,
    out: Outbox,
    deadlines: Deadlines<ConnId>,
    dir: MemoryDirectory,
    now: Instant,
    next_conn: u64,
}

impl Harness {
    fn new(rooms: &str, auto_create: bool) -> Harness {
        let t0 = Instant::now();
        let mut dir = MemoryDirectory::new();
        dir.set_camus_rooms(parse_camus_rooms(rooms).unwrap().resolve(auto_create));
        let wall = WallClock::new(t0, UNIX_EPOCH + Duration::from_secs(WALL_T0_SECS));
        Harness {
            hub: Hub::new([42; 32], wall),
            out: Outbox::default(),
            deadlines: Deadlines::default(),
            dir,
            now: t0,
            next_conn: 0,
        }
    }

    fn standard() -> Harness {
        Harness::new(ROOMS, false)
    }

    fn admit(&mut self, slug: &str, passes: &[&str]) -> Result<Admission, Refusal> {
        self.hub
            .admit(self.now, slug, passes.iter().copied(), &mut self.dir)
    }

    fn page(&mut self, slug: &str, passes: &[&str], password: Option<&str>) -> Page {
        self.hub.page(
            self.now,
            slug,
            passes.iter().copied(),
            password,
            &mut self.dir,
        )
    }

    /// The hub, and the effects it is lent for one call.
    fn parts(&mut self) -> (&mut Hub, Effects<'_>) {
        let fx = Effects {
            out: &mut self.out,
            deadlines: &mut self.deadlines,
        };
        (&mut self.hub, fx)
    }

    fn connect_admitted(&mut self, admission: Admission) -> ConnId {
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        let now = self.now;
        let (hub, mut fx) = self.parts();
        hub.handle_connect(now, conn, admission, &mut fx);
        conn
    }

    fn disconnect(&mut self, conn: ConnId) {
        let now = self.now;
        let (hub, mut fx) = self.parts();
        hub.handle_disconnect(now, conn, &mut fx);
    }

    fn shutdown(&mut self, message: &str) {
        let (hub, mut fx) = self.parts();
        hub.shutdown(message, &mut fx);
    }

    /// When the next deadline is due.
    fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.earliest()
    }

    /// Connects to an open room, checks the greeting and returns the connection and its id.
    fn join(&mut self, slug: &str) -> (ConnId, String) {
        let admission = self.admit(slug, &[]).unwrap();
        let conn = self.connect_admitted(admission);
        let out = self.drain();
        assert_eq!(out.len(), 1, "{out:?}");
        let greeting = json_of(&out[0], conn);
        let id = greeting["receiver"].as_str().unwrap().to_owned();
        assert_eq!(
            greeting,
            json!({"sender": "ground control", "receiver": id, "type": "greeting",
                   "data": msg::GREETING})
        );
        assert_eq!(self.hub.client_id(conn), Some(id.as_str()));
        (conn, id)
    }

    fn send(&mut self, conn: ConnId, message: Value) -> Vec<(ConnId, ConnOutput)> {
        self.send_text(conn, &message.to_string())
    }

    fn send_text(&mut self, conn: ConnId, text: &str) -> Vec<(ConnId, ConnOutput)> {
        let mut fx = Effects {
            out: &mut self.out,
            deadlines: &mut self.deadlines,
        };
        self.hub
            .handle_text(self.now, conn, text, &mut self.dir, &mut fx);
        self.drain()
    }

    fn drain(&mut self) -> Vec<(ConnId, ConnOutput)> {
        std::iter::from_fn(|| self.out.pop()).collect()
    }

    /// Moves the clock and runs every connection whose deadline has passed, as the facade
    /// does.
    fn advance(&mut self, by: Duration) -> Vec<(ConnId, ConnOutput)> {
        self.now += by;
        while let Some(conn) = self.deadlines.pop_due(self.now) {
            let now = self.now;
            let (hub, mut fx) = self.parts();
            hub.handle_timeout(now, conn, &mut fx);
        }
        self.drain()
    }
}

/// The JSON of a text output, which must be for `conn`.
fn json_of(output: &(ConnId, ConnOutput), conn: ConnId) -> Value {
    assert_eq!(output.0, conn, "{output:?}");
    match &output.1 {
        ConnOutput::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// The single JSON message in `out`, for `conn`.
fn only(out: &[(ConnId, ConnOutput)], conn: ConnId) -> Value {
    assert_eq!(out.len(), 1, "{out:?}");
    json_of(&out[0], conn)
}

fn room_info(receiver: &str, room: &str, clients: &[(&str, &str)]) -> Value {
    let clients: Vec<Value> = clients
        .iter()
        .map(|(id, username)| json!({"id": id, "username": username}))
        .collect();
    json!({"sender": "ground control", "receiver": receiver, "type": "room-info",
           "data": {"room_id": room, "clients": clients}})
}

#[test]
fn ping_is_answered_with_pong_echoing_data_bytes() {
    let mut h = Harness::standard();
    let (a, id) = h.join("lobby");
    let out = h.send_text(
        a,
        r#"{"receiver":"ground control","type":"ping","data":{"t":1.50,"big":123456789012345678901234567890}}"#,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].1,
        ConnOutput::Text(format!(
            r#"{{"sender":"ground control","receiver":"{id}","type":"pong","data":{{"t":1.50,"big":123456789012345678901234567890}}}}"#
        ))
    );
    let out = h.send(a, json!({"receiver": "ground control", "type": "ping"}));
    assert_eq!(
        only(&out, a),
        json!({"sender": "ground control", "receiver": id, "type": "pong", "data": null})
    );
}

#[test]
fn pong_and_greeting_get_no_reply() {
    let mut h = Harness::standard();
    let (a, _) = h.join("lobby");
    for kind in ["pong", "greeting"] {
        let out = h.send(
            a,
            json!({"receiver": "ground control", "type": kind, "data": 1}),
        );
        assert!(out.is_empty(), "{kind}: {out:?}");
    }
}

#[test]
fn room_info_lists_clients_in_joining_order() {
    let mut h = Harness::standard();
    let (_, id_a) = h.join("lobby");
    let (b, id_b) = h.join("lobby");
    h.join("other");
    let out = h.send(
        b,
        json!({"receiver": "ground control", "type": "get-room-info"}),
    );
    assert_eq!(
        only(&out, b),
        room_info(
            &id_b,
            "lobby",
            &[(&id_a, "Major Tom"), (&id_b, "Major Tom")]
        )
    );
    assert_eq!(h.hub.room_size("lobby"), 2);
}

#[test]
fn ice_servers_come_from_the_galene_configuration() {
    let mut h = Harness::standard();
    h.dir
        .set_ice_servers_json(
            r#"[{"urls": ["stun:stun.example.org:3478"]},
                {"urls": ["turn:turn.example.org:3478"], "username": "box",
                 "credential": "secret", "credentialType": "hmac-sha1"}]"#,
        )
        .unwrap();
    let (a, id) = h.join("lobby");
    h.now += Duration::from_secs(100);
    let out = h.send(
        a,
        json!({"receiver": "ground control", "type": "get-ice-servers"}),
    );
    let reply = only(&out, a);
    assert_eq!(reply["type"], "ice-servers");
    assert_eq!(reply["receiver"], id.as_str());
    assert_eq!(
        reply["data"][0],
        json!({"urls": ["stun:stun.example.org:3478"]})
    );
    let turn = &reply["data"][1];
    assert_eq!(turn["urls"], json!(["turn:turn.example.org:3478"]));
    // Galène's hmac-sha1 scheme at the wall time of `now`: t0 + 100 s, valid one day.
    let expiry = WALL_T0_SECS + 100 + 86400;
    assert_eq!(turn["username"], format!("{expiry}:box"));
    assert!(turn["credential"].as_str().is_some_and(|c| c.len() == 28));

    let mut empty = Harness::standard();
    let (e, _) = empty.join("lobby");
    let out = empty.send(
        e,
        json!({"receiver": "ground control", "type": "get-ice-servers"}),
    );
    assert_eq!(only(&out, e)["data"], json!([]));
}

#[test]
fn profile_sets_the_username_and_tells_the_whole_room() {
    let mut h = Harness::standard();
    let (a, id_a) = h.join("lobby");
    let (b, id_b) = h.join("lobby");
    let (c, _) = h.join("other");
    let out = h.send(
        b,
        json!({"receiver": "ground control", "type": "profile", "data": {"username": "Ziggy"}}),
    );
    let clients = [(id_a.as_str(), "Major Tom"), (id_b.as_str(), "Ziggy")];
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(json_of(&out[0], a), room_info(&id_a, "lobby", &clients));
    assert_eq!(json_of(&out[1], b), room_info(&id_b, "lobby", &clients));
    assert!(out.iter().all(|(to, _)| *to != c));

    // An empty username changes nothing but still broadcasts.
    let out = h.send(
        a,
        json!({"receiver": "ground control", "type": "profile", "data": {"username": ""}}),
    );
    assert_eq!(json_of(&out[0], a), room_info(&id_a, "lobby", &clients));
    assert_eq!(out.len(), 2);

    // No object data: no reply at all.
    for data in [json!("Ziggy"), json!(null), json!(["x"])] {
        let out = h.send(
            a,
            json!({"receiver": "ground control", "type": "profile", "data": data}),
        );
        assert!(out.is_empty(), "{out:?}");
    }

    // Long names are cut.
    let long = "é".repeat(MAX_USERNAME_CHARS + 10);
    let out = h.send(
        a,
        json!({"receiver": "ground control", "type": "profile", "data": {"username": long}}),
    );
    let name = json_of(&out[0], a)["data"]["clients"][0]["username"].clone();
    assert_eq!(name.as_str().unwrap().chars().count(), MAX_USERNAME_CHARS);
}

#[test]
fn bye_removes_the_client_tells_the_room_and_closes() {
    let mut h = Harness::standard();
    let (a, id_a) = h.join("lobby");
    let (b, id_b) = h.join("lobby");
    h.now += Duration::from_secs(5);
    let out = h.send(
        a,
        json!({"receiver": "ground control", "type": "bye", "data": 1}),
    );
    assert_eq!(out.len(), 3, "{out:?}");
    let bye = json_of(&out[0], a);
    assert_eq!(
        bye,
        json!({"sender": "ground control", "receiver": id_a, "type": "bye",
               "data": (WALL_T0_SECS + 5) * 1000})
    );
    assert_eq!(
        out[1],
        (
            a,
            ConnOutput::Close {
                code: CLOSE_NORMAL,
                reason: "bye".into()
            }
        )
    );
    assert_eq!(
        json_of(&out[2], b),
        room_info(&id_b, "lobby", &[(&id_b, "Major Tom")])
    );
    assert!(!h.hub.contains(a));
    // Later frames and the disconnect of the forgotten connection do nothing.
    assert!(
        h.send(a, json!({"receiver": "ground control", "type": "ping"}))
            .is_empty()
    );
    h.disconnect(a);
    assert!(h.drain().is_empty());
    // Its id is no longer a receiver.
    assert!(
        h.send(b, json!({"receiver": id_a, "type": "text"}))
            .is_empty()
    );
}

#[test]
fn room_broadcast_reaches_every_member_including_the_sender() {
    let mut h = Harness::standard();
    let (a, id_a) = h.join("lobby");
    let (b, _) = h.join("lobby");
    let (c, _) = h.join("other");
    let text = json!({"from": "Ziggy", "time": 1, "text": "hello"});
    let out = h.send(
        a,
        json!({"sender": "forged", "receiver": "room", "type": "text", "data": text, "extra": 1}),
    );
    let expected = json!({"sender": id_a, "receiver": "room", "type": "text", "data": text});
    assert_eq!(out.len(), 2);
    assert_eq!(json_of(&out[0], a), expected);
    assert_eq!(json_of(&out[1], b), expected);
    assert!(out.iter().all(|(to, _)| *to != c));
}

#[test]
fn messages_to_an_id_are_relayed_with_the_true_sender() {
    let mut h = Harness::standard();
    let (a, id_a) = h.join("lobby");
    let (b, id_b) = h.join("lobby");
    let offer = json!({"type": "offer", "sdp": "v=0\r\n"});
    for (kind, data) in [
        ("offer", offer.clone()),
        ("answer", json!({"type": "answer", "sdp": "v=0\r\n"})),
        (
            "icecandidate",
            json!({"candidate": "candidate:1 1 udp 1 10.0.0.1 9 typ host", "sdpMid": "0",
                   "sdpMLineIndex": 0, "usernameFragment": "u"}),
        ),
        ("text", json!({"from": "A", "time": 2, "text": "psst"})),
        ("bye", json!(3)),
        ("anything-at-all", json!([1, 2])),
    ] {
        let out = h.send(
            a,
            json!({"sender": id_b, "receiver": id_b, "type": kind, "data": data}),
        );
        assert_eq!(
            only(&out, b),
            json!({"sender": id_a, "receiver": id_b, "type": kind, "data": data}),
            "{kind}"
        );
    }
    // To oneself is fine.
    let out = h.send(a, json!({"receiver": id_a, "type": "offer", "data": offer}));
    assert_eq!(only(&out, a)["sender"], id_a.as_str());
    // Unknown, missing and non-string receivers: dropped without reply.
    for message in [
        json!({"receiver": "0123456789abcdef0123456789abcdef", "type": "offer"}),
        json!({"type": "offer"}),
        json!({"receiver": 7, "type": "offer"}),
        json!({"receiver": null, "type": "offer"}),
    ] {
        assert!(h.send(a, message.clone()).is_empty(), "{message}");
    }
}

#[test]
fn relaying_never_crosses_rooms() {
    let mut h = Harness::standard();
    let (a, _) = h.join("lobby");
    let (_, id_c) = h.join("other");
    assert!(
        h.send(a, json!({"receiver": id_c, "type": "offer", "data": {}}))
            .is_empty()
    );
    assert!(
        h.send(a, json!({"receiver": id_c, "type": "bye", "data": 1}))
            .is_empty()
    );
}

#[test]
fn unknown_types_to_ground_control_get_an_error() {
    let mut h = Harness::standard();
    let (a, id) = h.join("lobby");
    for (message, printed) in [
        (
            json!({"receiver": "ground control", "type": "text", "data": {}}),
            "text",
        ),
        (
            json!({"receiver": "ground control", "type": "offer"}),
            "offer",
        ),
        (
            json!({"receiver": "ground control", "type": "bogus-type"}),
            "bogus-type",
        ),
        (json!({"receiver": "ground control"}), "None"),
        (json!({"receiver": "ground control", "type": null}), "None"),
        (json!({"receiver": "ground control", "type": 5}), "5"),
    ] {
        let out = h.send(a, message);
        assert_eq!(
            only(&out, a),
            json!({"sender": "ground control", "receiver": id, "type": "error",
                   "data": format!("Unknown message type: {printed}")})
        );
    }
}

#[test]
fn malformed_frames_are_dropped_silently_and_the_socket_stays_usable() {
    let mut h = Harness::standard();
    let (a, id) = h.join("lobby");
    for text in [
        "not json",
        "[\"ground control\", \"ping\"]",
        "\"ping\"",
        "42",
        "null",
        "{\"receiver\": \"ground control\", \"type\": \"ping\"",
        "",
    ] {
        assert!(h.send_text(a, text).is_empty(), "{text:?}");
    }
    h.hub.handle_binary(h.now, a, 40);
    assert!(h.drain().is_empty());
    let out = h.send(
        a,
        json!({"receiver": "ground control", "type": "ping", "data": 9}),
    );
    assert_eq!(only(&out, a)["receiver"], id.as_str());
}

#[test]
fn keepalive_pings_after_silence_and_removes_after_no_answer() {
    let mut h = Harness::standard();
    let (a, id_a) = h.join("lobby");
    let (b, id_b) = h.join("lobby");
    assert_eq!(h.poll_timeout(), Some(h.now + CAMUS_PING_AFTER));

    // b keeps talking; a stays silent.
    h.now += Duration::from_secs(20);
    h.send(b, json!({"receiver": "ground control", "type": "pong"}));
    let out = h.advance(Duration::from_secs(10));
    assert_eq!(
        only(&out, a),
        json!({"sender": "ground control", "receiver": id_a, "type": "ping",
               "data": (WALL_T0_SECS + 30) * 1000})
    );
    // b's entry fired at t0 + 30 s too, and was pushed to its real deadline, t0 + 50 s.
    assert!(h.advance(Duration::from_secs(19)).is_empty());
    let out = h.advance(Duration::from_secs(1));
    assert_eq!(only(&out, b)["type"], "ping");

    // b answers; a does not. 30 s after its ping, a is removed and b told.
    h.send(b, json!({"receiver": "ground control", "type": "pong"}));
    assert!(
        h.advance(CAMUS_REAP_AFTER_PING - Duration::from_secs(21))
            .is_empty()
    );
    let out = h.advance(Duration::from_secs(1));
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(json_of(&out[0], a)["type"], "bye");
    assert_eq!(
        out[1],
        (
            a,
            ConnOutput::Close {
                code: CLOSE_NORMAL,
                reason: "keepalive timeout".into()
            }
        )
    );
    assert_eq!(
        json_of(&out[2], b),
        room_info(&id_b, "lobby", &[(&id_b, "Major Tom")])
    );
    assert!(!h.hub.contains(a));
    assert!(h.hub.contains(b));
}

#[test]
fn any_frame_after_a_keepalive_ping_keeps_the_client() {
    let mut h = Harness::standard();
    let (a, _) = h.join("lobby");
    let out = h.advance(CAMUS_PING_AFTER);
    assert_eq!(only(&out, a)["type"], "ping");
    h.now += Duration::from_secs(29);
    h.hub.handle_binary(h.now, a, 1);
    assert!(h.advance(Duration::from_secs(1)).is_empty());
    // A fresh 30 s of silence: pinged again, not removed.
    let out = h.advance(CAMUS_PING_AFTER);
    assert_eq!(only(&out, a)["type"], "ping");
    assert!(h.hub.contains(a));
}

#[test]
fn a_closed_socket_leaves_at_once() {
    let mut h = Harness::standard();
    let (a, _) = h.join("lobby");
    let (b, id_b) = h.join("lobby");
    h.disconnect(a);
    let out = h.drain();
    assert_eq!(
        only(&out, b),
        room_info(&id_b, "lobby", &[(&id_b, "Major Tom")])
    );
    h.disconnect(b);
    assert!(h.drain().is_empty());
    assert_eq!(h.hub.room_size("lobby"), 0);
    assert_eq!(h.hub.connection_count(), 0);
}

#[test]
fn password_room_page_asks_then_sets_a_pass_the_websocket_requires() {
    let mut h = Harness::standard();
    let slug = "secret-room";
    match h.page(slug, &[], None) {
        Page::PasswordForm { room, wrong } => {
            assert_eq!(room.name, "Secret Room");
            assert!(!wrong);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        h.page(slug, &[], Some("wrong")),
        Page::PasswordForm { wrong: true, .. }
    ));
    assert_eq!(h.admit(slug, &[]), Err(Refusal::PasswordRequired));
    assert_eq!(h.admit(slug, &["junk"]), Err(Refusal::PasswordRequired));

    let Page::Client {
        new_pass: Some(pass),
        ..
    } = h.page(slug, &[], Some("sesame"))
    else {
        panic!("no pass");
    };
    assert!(h.admit(slug, &["junk", &pass]).is_ok());
    // With the pass, the page goes straight to the client.
    assert_eq!(
        h.page(slug, &[&pass], None),
        Page::Client {
            room: h.admit(slug, &[&pass]).unwrap().room().clone(),
            new_pass: None
        }
    );
    // The pass is for this room only.
    assert!(h.admit("lobby", &[&pass]).is_ok());
    let mut other = Harness::new(
        r#"{"rooms": [{"name": "Secret Room", "slug": "other-secret", "password": "sesame"}]}"#,
        false,
    );
    assert_eq!(
        other.admit("other-secret", &[&pass]),
        Err(Refusal::PasswordRequired)
    );

    // It expires.
    h.now += PASS_LIFETIME;
    assert_eq!(h.admit(slug, &[&pass]), Err(Refusal::PasswordRequired));
}

#[test]
fn changing_the_password_revokes_passes() {
    let mut h = Harness::standard();
    let Page::Client {
        new_pass: Some(pass),
        ..
    } = h.page("secret-room", &[], Some("sesame"))
    else {
        panic!("no pass");
    };
    h.dir.set_camus_rooms(
        parse_camus_rooms(r#"{"rooms": [{"name": "Secret Room", "password": "new"}]}"#)
            .unwrap()
            .resolve(false),
    );
    assert_eq!(
        h.admit("secret-room", &[&pass]),
        Err(Refusal::PasswordRequired)
    );
}

#[test]
fn guest_limit_refuses_page_and_socket_until_someone_leaves() {
    let mut h = Harness::standard();
    let (a, _) = h.join("pair");
    let (_b, _) = h.join("pair");
    assert_eq!(h.admit("pair", &[]), Err(Refusal::Full));
    assert_eq!(h.page("pair", &[], None), Page::Refused(Refusal::Full));
    assert_eq!(Refusal::Full.page_status(), 418);
    assert_eq!(Refusal::Full.upgrade_status(), 403);
    h.disconnect(a);
    h.drain();
    assert!(h.admit("pair", &[]).is_ok());
}

#[test]
fn a_room_that_filled_up_after_admission_closes_the_socket() {
    let mut h = Harness::standard();
    let first = h.admit("pair", &[]).unwrap();
    let second = h.admit("pair", &[]).unwrap();
    let third = h.admit("pair", &[]).unwrap();
    h.connect_admitted(first);
    h.connect_admitted(second);
    h.drain();
    let late = h.connect_admitted(third);
    assert_eq!(
        h.drain(),
        [(
            late,
            ConnOutput::Close {
                code: CLOSE_TRY_AGAIN_LATER,
                reason: "Guest limit already reached".into()
            }
        )]
    );
    assert!(!h.hub.contains(late));
    assert_eq!(h.hub.room_size("pair"), 2);
}

#[test]
fn rooms_without_limit_are_capped() {
    let mut h = Harness::standard();
    for _ in 0..MAX_ROOM_MEMBERS {
        let admission = h.admit("lobby", &[]).unwrap();
        h.connect_admitted(admission);
    }
    assert_eq!(h.admit("lobby", &[]), Err(Refusal::Full));
}

#[test]
fn rooms_are_configured_or_created_on_first_use() {
    let mut h = Harness::standard();
    assert_eq!(h.admit("nowhere", &[]), Err(Refusal::NotFound));
    assert_eq!(
        h.page("nowhere", &[], None),
        Page::Refused(Refusal::NotFound)
    );
    assert_eq!(h.admit("Lobby", &[]), Err(Refusal::NotFound));

    let mut auto = Harness::new(ROOMS, true);
    let (a, _) = auto.join("fresh-room");
    let out = auto.send(
        a,
        json!({"receiver": "ground control", "type": "get-room-info"}),
    );
    assert_eq!(only(&out, a)["data"]["room_id"], "fresh-room");
    assert_eq!(auto.admit("Not-Valid", &[]), Err(Refusal::NotFound));
    // On-demand rooms are open and unlisted; configured ones keep their password.
    assert_eq!(
        auto.admit("secret-room", &[]),
        Err(Refusal::PasswordRequired)
    );
    let public: Vec<_> = auto
        .hub
        .public_rooms(&mut auto.dir)
        .unwrap()
        .into_iter()
        .map(|room| room.slug)
        .collect();
    assert_eq!(public, ["lobby", "secret-room"]);

    let mut broken = Harness::standard();
    broken
        .dir
        .set_camus_rooms_error(ConfigError::Invalid("bad".into()));
    let refusal = broken.admit("lobby", &[]).unwrap_err();
    assert!(matches!(refusal, Refusal::Invalid(_)));
    assert_eq!(
        (refusal.page_status(), refusal.upgrade_status()),
        (500, 500)
    );
}

#[test]
fn public_rooms_show_occupancy_and_limit() {
    let mut h = Harness::standard();
    h.join("lobby");
    h.join("lobby");
    let rooms = h.hub.public_rooms(&mut h.dir).unwrap();
    assert_eq!(
        rooms,
        [
            PublicRoom {
                name: "Lobby".into(),
                slug: "lobby".into(),
                clients: 2,
                guest_limit: 0
            },
            PublicRoom {
                name: "Secret Room".into(),
                slug: "secret-room".into(),
                clients: 0,
                guest_limit: 3
            }
        ]
    );
}

#[test]
fn oversized_and_too_fast_messages_are_refused() {
    let mut h = Harness::standard();
    let (a, id) = h.join("lobby");
    let (b, _) = h.join("lobby");
    let big = format!(
        r#"{{"receiver":"room","type":"text","data":"{}"}}"#,
        "x".repeat(MAX_MESSAGE_BYTES)
    );
    let out = h.send_text(a, &big);
    assert_eq!(
        only(&out, a),
        json!({"sender": "ground control", "receiver": id, "type": "error",
               "data": "Message too large"})
    );

    // The oversized message was refused before it was charged: the whole burst is left.
    let ping = json!({"receiver": "ground control", "type": "ping"});
    for _ in 0..BURST_MESSAGES {
        assert_eq!(h.send(a, ping.clone()).len(), 1);
    }
    let out = h.send(
        a,
        json!({"receiver": "room", "type": "text", "data": "flood"}),
    );
    assert_eq!(only(&out, a)["data"], "Rate limit exceeded");
    // Further messages in the same streak: dropped silently, nothing reaches the room.
    assert!(
        h.send(a, json!({"receiver": "room", "type": "text"}))
            .is_empty()
    );
    // b is not affected, and a recovers with time.
    assert_eq!(h.send(b, ping.clone()).len(), 1);
    h.now += Duration::from_secs(1);
    assert_eq!(h.send(a, ping).len(), 1);
}

#[test]
fn shutdown_closes_everyone() {
    let mut h = Harness::standard();
    let (a, _) = h.join("lobby");
    let (b, _) = h.join("other");
    h.shutdown("server is shutting down");
    let closing = ConnOutput::Close {
        code: CLOSE_GOING_AWAY,
        reason: "server is shutting down".into(),
    };
    assert_eq!(h.drain(), [(a, closing.clone()), (b, closing)]);
    assert_eq!(h.hub.connection_count(), 0);
    assert_eq!(h.poll_timeout(), None);
}
