//! The Galène wire message: one JSON object type for both directions (docs/galene.md).
//!
//! Input keys are matched without regard to ASCII case, as Go's decoder does; when a key
//! appears both exactly and in another case, the exact spelling wins. Unknown keys are
//! ignored, `null` counts as absent, and a value of the wrong JSON type is an error. On
//! output empty fields are omitted, except `username`, which is written whenever it is set
//! (even when empty).

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The protocol variant a client speaks (docs/galene.md, "The seed dialect").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The seed documents' protocol: handshake without `version`.
    Seed,
    /// Protocol version "2".
    V2,
}

/// One Galène protocol message.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Message {
    /// The message type (`handshake`, `join`, `chat`, ...).
    #[serde(rename = "type")]
    pub kind_of: String,
    /// Protocol versions (handshake only); `None` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<Vec<String>>,
    /// The sub-type.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// A machine-readable error class.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Client id (handshake, user) or stream/message id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The stream an offer replaces.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub replace: String,
    /// The originating client id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// The destination client id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub dest: String,
    /// A username; `Some("")` is written as `""`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A password (join).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// A token (join).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub token: String,
    /// Set by the server on messages from operators and from itself.
    #[serde(skip_serializing_if = "is_false")]
    pub privileged: bool,
    /// Permission names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
    /// Group status (`joined`), or user data in the seed dialect (`user`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Map<String, Value>>,
    /// User data (`user`, `join`) or group data (`joined`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    /// A group name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Any JSON payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// Do not echo a broadcast to its sender.
    #[serde(skip_serializing_if = "is_false")]
    pub noecho: bool,
    /// RFC 3339 time (server output only; ignored on input).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub time: String,
    /// An SDP.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sdp: String,
    /// An ICE candidate (`RTCIceCandidateInit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<Map<String, Value>>,
    /// A stream label (version "2").
    #[serde(skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// Track labels by mid (seed dialect offers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Map<String, Value>>,
    /// What to receive (`request`, `requestStream`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
    /// The WebRTC configuration (server output only; ignored on input).
    #[serde(rename = "rtcConfiguration", skip_serializing_if = "Option::is_none")]
    pub rtc_configuration: Option<Value>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Message {
    /// A message of type `kind_of` with nothing else set.
    pub fn new(kind_of: &str) -> Message {
        Message {
            kind_of: kind_of.to_owned(),
            ..Message::default()
        }
    }

    /// Parses one text frame.
    pub fn parse(text: &str) -> Result<Message, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        // Serialising a struct of strings, bools and JSON values cannot fail (all map keys
        // are strings).
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// The input keys, in their canonical spelling.
const FIELDS: [&str; 25] = [
    "type",
    "version",
    "kind",
    "error",
    "id",
    "replace",
    "source",
    "dest",
    "username",
    "password",
    "token",
    "privileged",
    "permissions",
    "status",
    "data",
    "group",
    "value",
    "noecho",
    "time",
    "sdp",
    "candidate",
    "label",
    "labels",
    "request",
    "rtcConfiguration",
];

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Message, D::Error> {
        deserializer.deserialize_map(MessageVisitor)
    }
}

struct MessageVisitor;

/// Sets `$field` from the next value when `$exact` or when no exact key set it before.
macro_rules! take {
    ($map:ident, $exact:ident, $seen:ident, $index:expr, $field:expr) => {{
        let value = $map.next_value()?;
        if $exact || !$seen[$index] {
            if let Some(value) = value {
                $field = value;
            }
        }
        if $exact {
            $seen[$index] = true;
        }
    }};
}

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = Message;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
        let mut m = Message::default();
        // Whether a field was set by its exactly spelled key.
        let mut seen = [false; FIELDS.len()];
        while let Some(key) = map.next_key::<String>()? {
            let Some(index) = FIELDS.iter().position(|f| f.eq_ignore_ascii_case(&key)) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let exact = FIELDS[index] == key;
            match index {
                0 => take!(map, exact, seen, 0, m.kind_of),
                1 => {
                    let value: Option<Vec<String>> = map.next_value()?;
                    if exact || !seen[1] {
                        m.version = value;
                    }
                    seen[1] |= exact;
                }
                2 => take!(map, exact, seen, 2, m.kind),
                3 => take!(map, exact, seen, 3, m.error),
                4 => take!(map, exact, seen, 4, m.id),
                5 => take!(map, exact, seen, 5, m.replace),
                6 => take!(map, exact, seen, 6, m.source),
                7 => take!(map, exact, seen, 7, m.dest),
                8 => {
                    let value: Option<String> = map.next_value()?;
                    if exact || !seen[8] {
                        m.username = value;
                    }
                    seen[8] |= exact;
                }
                9 => take!(map, exact, seen, 9, m.password),
                10 => take!(map, exact, seen, 10, m.token),
                11 => take!(map, exact, seen, 11, m.privileged),
                12 => take!(map, exact, seen, 12, m.permissions),
                13 => {
                    let value: Option<Map<String, Value>> = map.next_value()?;
                    if exact || !seen[13] {
                        m.status = value;
                    }
                    seen[13] |= exact;
                }
                14 => {
                    let value: Option<Map<String, Value>> = map.next_value()?;
                    if exact || !seen[14] {
                        m.data = value;
                    }
                    seen[14] |= exact;
                }
                15 => take!(map, exact, seen, 15, m.group),
                16 => {
                    let value: Option<Value> = map.next_value()?;
                    if exact || !seen[16] {
                        m.value = value;
                    }
                    seen[16] |= exact;
                }
                17 => take!(map, exact, seen, 17, m.noecho),
                19 => take!(map, exact, seen, 19, m.sdp),
                20 => {
                    let value: Option<Map<String, Value>> = map.next_value()?;
                    if exact || !seen[20] {
                        m.candidate = value;
                    }
                    seen[20] |= exact;
                }
                21 => take!(map, exact, seen, 21, m.label),
                22 => {
                    let value: Option<Map<String, Value>> = map.next_value()?;
                    if exact || !seen[22] {
                        m.labels = value;
                    }
                    seen[22] |= exact;
                }
                23 => {
                    let value: Option<Value> = map.next_value()?;
                    if exact || !seen[23] {
                        m.request = value;
                    }
                    seen[23] |= exact;
                }
                // `time` and `rtcConfiguration` are server output; ignore what clients send.
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_case_insensitive_and_exact_wins() {
        let m = Message::parse(r#"{"TYPE":"chat","Kind":"me","kind":"x","USERNAME":"a"}"#)
            .unwrap_or_default();
        assert_eq!(m.kind_of, "chat");
        assert_eq!(m.kind, "x");
        assert_eq!(m.username.as_deref(), Some("a"));
        let m = Message::parse(r#"{"kind":"x","Kind":"me","type":"chat"}"#).unwrap_or_default();
        assert_eq!(m.kind, "x");
    }

    #[test]
    fn nulls_are_absent_and_unknown_keys_ignored() {
        let m = Message::parse(
            r#"{"type":"join","kind":null,"username":null,"value":null,"whatever":[1,2]}"#,
        )
        .unwrap_or_default();
        assert_eq!(m.kind_of, "join");
        assert_eq!(m.kind, "");
        assert_eq!(m.username, None);
        assert_eq!(m.value, None);
    }

    #[test]
    fn wrong_types_fail() {
        assert!(Message::parse(r#"{"type":"chat","kind":5}"#).is_err());
        assert!(Message::parse(r#"{"type":"chat","noecho":"yes"}"#).is_err());
        assert!(Message::parse(r#"{"type":"ice","candidate":"x"}"#).is_err());
        assert!(Message::parse(r#"["type"]"#).is_err());
        let untyped = Message::parse(r#"{"kind":"x"}"#).unwrap_or_else(|_| Message::new("?"));
        assert_eq!(untyped.kind_of, "");
        assert!(Message::parse("not json").is_err());
    }

    #[test]
    fn output_omits_empty_but_keeps_empty_username() {
        let mut m = Message::new("user");
        m.username = Some(String::new());
        m.kind = "add".into();
        let v: Value = serde_json::from_str(&m.to_json()).unwrap_or_default();
        assert_eq!(v, json!({"type":"user","kind":"add","username":""}));
        let mut m = Message::new("joined");
        m.rtc_configuration = Some(json!({"iceServers":[]}));
        m.privileged = true;
        let v: Value = serde_json::from_str(&m.to_json()).unwrap_or_default();
        assert_eq!(
            v,
            json!({"type":"joined","privileged":true,"rtcConfiguration":{"iceServers":[]}})
        );
    }

    #[test]
    fn version_and_request_kept() {
        let m = Message::parse(r#"{"type":"handshake","version":["2","1"],"id":"c"}"#)
            .unwrap_or_default();
        assert_eq!(m.version, Some(vec!["2".to_owned(), "1".to_owned()]));
        assert_eq!(m.id, "c");
        let m =
            Message::parse(r#"{"type":"request","request":{"":["audio"]}}"#).unwrap_or_default();
        assert_eq!(m.request, Some(json!({"": ["audio"]})));
    }

    #[test]
    fn numbers_survive_a_round_trip() {
        // Found by the galene_message fuzz target: without serde_json's exact float parsing,
        // a large number came back as a different one after being forwarded once.
        let text = r#"{"type":"request","request":999999999999999999999999999999999999199999}"#;
        let once = Message::parse(text).unwrap_or_default().to_json();
        let twice = Message::parse(&once).unwrap_or_default().to_json();
        assert_eq!(once, twice);
    }
}
