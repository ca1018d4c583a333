//! The Camus wire format: one JSON object per text frame, the envelope
//! `{"sender", "receiver", "type", "data"}` (docs/camus.md, "The protocol").
//!
//! Incoming frames are parsed into [`Incoming`], which borrows `type` and `data` as raw JSON
//! from the frame, so a relayed payload or an echoed ping is passed on byte for byte and
//! never re-encoded. Outgoing messages always carry the four keys in that order, `null` for an
//! absent one, and nothing else (any other key of an incoming message is dropped).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::config::IceServer;

/// The server's own address, as sender of its messages and receiver of requests.
pub const GROUND_CONTROL: &str = "ground control";
/// The receiver that means "everybody in the sender's room, the sender included".
pub const ROOM: &str = "room";
/// The username of a client that has not sent a `profile` yet.
pub const DEFAULT_USERNAME: &str = "Major Tom";
/// The `data` of the `greeting` sent on connect.
pub const GREETING: &str = "This is Ground Control to Major Tom: You've really made the grade. \
                            Now it's time to leave the capsule if you dare.";

/// An incoming message, borrowed from the frame's text. `sender` is not even read: the
/// server always sets it to the connection's own id.
#[derive(Debug, Deserialize)]
pub struct Incoming<'a> {
    /// `receiver`, as raw JSON (`None` when absent or `null`).
    #[serde(borrow, default)]
    receiver: Option<&'a RawValue>,
    /// `type`, as raw JSON (`None` when absent or `null`).
    #[serde(borrow, default, rename = "type")]
    kind: Option<&'a RawValue>,
    /// `data`, as raw JSON (`None` when absent or `null`).
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

impl<'a> Incoming<'a> {
    /// Parses a frame. `None` unless the text is exactly one JSON object (arrays, strings,
    /// numbers, `null`, invalid JSON and duplicate envelope keys are all refused).
    pub fn parse(text: &'a str) -> Option<Incoming<'a>> {
        // serde would also accept a JSON array as a struct, positionally.
        if !text.trim_start().starts_with('{') {
            return None;
        }
        serde_json::from_str(text).ok()
    }

    /// The receiver when it is a JSON string; `None` for an absent or non-string one.
    pub fn receiver(&self) -> Option<Cow<'a, str>> {
        self.receiver.and_then(json_string)
    }

    /// The type when it is a JSON string.
    pub fn kind(&self) -> Option<Cow<'a, str>> {
        self.kind.and_then(json_string)
    }

    /// The type as raw JSON, whatever it is.
    pub fn raw_kind(&self) -> Option<&'a RawValue> {
        self.kind
    }

    /// The data as raw JSON.
    pub fn data(&self) -> Option<&'a RawValue> {
        self.data
    }

    /// The type as Camus prints it in its error reply: the string itself, `None` when
    /// absent or `null`, the JSON text otherwise.
    pub fn kind_for_error(&self) -> Cow<'a, str> {
        match (self.kind(), self.kind) {
            (Some(kind), _) => kind,
            (None, Some(raw)) => Cow::Borrowed(raw.get()),
            (None, None) => Cow::Borrowed("None"),
        }
    }

    /// The username of a `profile` message: `Some(name)` when `data` is an object (the only
    /// case Camus answers), where `name` is `data.username` if it is a non-empty string.
    pub fn profile_username(&self) -> Option<Option<String>> {
        let raw = self.data?.get();
        if !raw.trim_start().starts_with('{') {
            return None;
        }
        #[derive(Deserialize)]
        struct Profile<'b> {
            #[serde(borrow, default)]
            username: Option<&'b RawValue>,
        }
        let profile: Profile<'_> = serde_json::from_str(raw).ok()?;
        Some(
            profile
                .username
                .and_then(json_string)
                .filter(|name| !name.is_empty())
                .map(Cow::into_owned),
        )
    }
}

/// Decodes a raw JSON value that is a string; `None` for any other value.
fn json_string(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Cow<'_, str>>(raw.get()).ok()
}

/// The envelope as sent, with the four keys in Camus's order.
#[derive(Serialize)]
struct Envelope<'a, K: Serialize, D: Serialize> {
    sender: &'a str,
    receiver: Option<&'a str>,
    #[serde(rename = "type")]
    kind: K,
    data: D,
}

fn encode<K: Serialize, D: Serialize>(
    sender: &str,
    receiver: Option<&str>,
    kind: K,
    data: D,
) -> String {
    let envelope = Envelope {
        sender,
        receiver,
        kind,
        data,
    };
    // Serialising strings, raw values and plain structs into a String cannot fail.
    serde_json::to_string(&envelope).unwrap_or_default()
}

/// A message relayed from a client: `sender` is the connection's own id, `receiver` the
/// (string) receiver it gave, `type` and `data` exactly as received.
pub fn relayed(sender: &str, receiver: &str, incoming: &Incoming<'_>) -> String {
    encode(sender, Some(receiver), incoming.kind, incoming.data)
}

/// A message from ground control to `receiver` whose data is raw JSON (`null` if `None`).
pub fn from_ground_control_raw(receiver: &str, kind: &str, data: Option<&RawValue>) -> String {
    encode(GROUND_CONTROL, Some(receiver), kind, data)
}

/// A message from ground control to `receiver` with a string as data.
pub fn from_ground_control_text(receiver: &str, kind: &str, data: &str) -> String {
    encode(GROUND_CONTROL, Some(receiver), kind, data)
}

/// A message from ground control to `receiver` with an integer as data (timestamps).
pub fn from_ground_control_int(receiver: &str, kind: &str, data: u64) -> String {
    encode(GROUND_CONTROL, Some(receiver), kind, data)
}

/// One client in a `room-info`.
#[derive(Debug, Serialize)]
pub struct ClientInfo<'a> {
    /// Client id.
    pub id: &'a str,
    /// Username.
    pub username: &'a str,
}

/// The `data` of a `room-info`, encoded once and reused for every recipient.
pub fn room_info_data(room_id: &str, clients: &[ClientInfo<'_>]) -> Box<RawValue> {
    #[derive(Serialize)]
    struct RoomInfo<'a> {
        room_id: &'a str,
        clients: &'a [ClientInfo<'a>],
    }
    serde_json::value::to_raw_value(&RoomInfo { room_id, clients })
        // Serialising strings into JSON cannot fail; `null` is never used in practice.
        .unwrap_or_else(|_| null())
}

/// The `data` of an `ice-servers` reply: RTCIceServer dictionaries (`credentialType` only
/// for the rare non-password credentials).
pub fn ice_servers_data(servers: &[IceServer]) -> Box<RawValue> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Server<'a> {
        urls: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        username: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        credential: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        credential_type: Option<&'a str>,
    }
    let list: Vec<Server<'_>> = servers
        .iter()
        .map(|server| Server {
            urls: &server.urls,
            username: server.username.as_deref(),
            credential: server.credential.as_deref(),
            credential_type: server.credential_type.as_deref(),
        })
        .collect();
    // Serialising strings into JSON cannot fail.
    serde_json::value::to_raw_value(&list).unwrap_or_else(|_| null())
}

fn null() -> Box<RawValue> {
    // "null" is valid JSON.
    RawValue::from_string("null".to_owned()).unwrap_or_default()
}

/// The text of the `error` reply for an unknown type.
pub fn unknown_type(kind: &str) -> String {
    format!("Unknown message type: {kind}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn value(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn parses_objects_only() {
        let m = Incoming::parse(r#" {"receiver":"room","type":"text","data":{"a":[1, 2]},"x":1}"#)
            .unwrap();
        assert_eq!(m.receiver().as_deref(), Some("room"));
        assert_eq!(m.kind().as_deref(), Some("text"));
        assert_eq!(m.data().unwrap().get(), r#"{"a":[1, 2]}"#);
        for bad in [
            "[\"s\",\"r\",\"t\",\"d\"]",
            "\"ping\"",
            "3",
            "null",
            "{",
            "not json",
            r#"{"type":"a","type":"b"}"#,
            r#"{"type":"a"} trailing"#,
        ] {
            assert!(Incoming::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn null_and_non_string_fields() {
        let m = Incoming::parse(r#"{"receiver":null,"type":null,"data":null}"#).unwrap();
        assert!(m.receiver().is_none() && m.raw_kind().is_none() && m.data().is_none());
        assert_eq!(m.kind_for_error(), "None");
        let m = Incoming::parse(r#"{"receiver":5,"type":[1,2]}"#).unwrap();
        assert!(m.receiver().is_none());
        assert!(m.kind().is_none());
        assert_eq!(m.kind_for_error(), "[1,2]");
        let m =
            Incoming::parse(r#"{"receiver":"gr\u006fund control","type":"p\u0069ng"}"#).unwrap();
        assert_eq!(m.receiver().as_deref(), Some(GROUND_CONTROL));
        assert_eq!(m.kind().as_deref(), Some("ping"));
    }

    #[test]
    fn relays_keep_type_and_data_bytes_and_drop_other_keys() {
        let text = r#"{"sender":"forged","receiver":"abc","type":"offer","data":{"sdp":"v=0\r\n","n":1.50},"extra":true}"#;
        let m = Incoming::parse(text).unwrap();
        let out = relayed("me", "abc", &m);
        assert_eq!(
            out,
            r#"{"sender":"me","receiver":"abc","type":"offer","data":{"sdp":"v=0\r\n","n":1.50}}"#
        );
        let m = Incoming::parse(r#"{"receiver":"abc"}"#).unwrap();
        assert_eq!(
            value(&relayed("me", "abc", &m)),
            json!({"sender":"me","receiver":"abc","type":null,"data":null})
        );
    }

    #[test]
    fn ground_control_messages() {
        assert_eq!(
            from_ground_control_raw("id", "pong", None),
            r#"{"sender":"ground control","receiver":"id","type":"pong","data":null}"#
        );
        assert_eq!(
            value(&from_ground_control_int("id", "ping", 1_700_000_000_123)),
            json!({"sender":"ground control","receiver":"id","type":"ping","data":1_700_000_000_123_u64})
        );
        assert_eq!(
            value(&from_ground_control_text(
                "id",
                "error",
                &unknown_type("None")
            )),
            json!({"sender":"ground control","receiver":"id","type":"error",
                   "data":"Unknown message type: None"})
        );
        let info = room_info_data(
            "r",
            &[ClientInfo {
                id: "a",
                username: "Major \"Tom\"",
            }],
        );
        assert_eq!(
            value(&from_ground_control_raw("a", "room-info", Some(&info))),
            json!({"sender":"ground control","receiver":"a","type":"room-info",
                   "data":{"room_id":"r","clients":[{"id":"a","username":"Major \"Tom\""}]}})
        );
    }

    #[test]
    fn ice_servers_omit_absent_credentials() {
        let data = ice_servers_data(&[
            IceServer {
                urls: vec!["stun:s.example.org".into()],
                username: None,
                credential: None,
                credential_type: None,
            },
            IceServer {
                urls: vec!["turn:t.example.org".into()],
                username: Some("1:u".into()),
                credential: Some("c".into()),
                credential_type: Some("oauth".into()),
            },
        ]);
        assert_eq!(
            value(data.get()),
            json!([{"urls":["stun:s.example.org"]},
                   {"urls":["turn:t.example.org"],"username":"1:u","credential":"c",
                    "credentialType":"oauth"}])
        );
    }

    #[test]
    fn profile_data() {
        let username = |text: &str| Incoming::parse(text).unwrap().profile_username();
        assert_eq!(
            username(r#"{"data":{"username":"Ziggy"}}"#),
            Some(Some("Ziggy".into()))
        );
        assert_eq!(username(r#"{"data":{"username":""}}"#), Some(None));
        assert_eq!(username(r#"{"data":{"username":7}}"#), Some(None));
        assert_eq!(username(r#"{"data":{}}"#), Some(None));
        assert_eq!(username(r#"{"data":["Ziggy"]}"#), None);
        assert_eq!(username(r#"{"data":"Ziggy"}"#), None);
        assert_eq!(username(r#"{}"#), None);
    }
}
