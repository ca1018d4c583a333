//! Interpretation of the structured `request` and `value` payloads of Galène messages:
//! stream requests (both dialects), `clearchat` scopes and token requests.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::core::{ClearScope, StreamRequest, TokenEdit, TokenRequest, TokenTime, TrackSelection};

/// A payload that does not have the shape its message requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadShape;

/// A version "2" `request`: label → list of `audio`, `video`, `video-low`. Absent means
/// nothing; unknown words are ignored; any other shape is an error.
pub fn stream_request(value: Option<&Value>) -> Result<StreamRequest, BadShape> {
    let mut by_label = BTreeMap::new();
    match value {
        None => {}
        Some(Value::Object(map)) => {
            for (label, wanted) in map {
                by_label.insert(label.clone(), track_list(wanted)?);
            }
        }
        Some(_) => return Err(BadShape),
    }
    Ok(StreamRequest::ByStreamLabel(by_label))
}

/// A `requestStream` list of `audio`, `video`, `video-low`; unknown words are ignored.
pub fn track_list(value: &Value) -> Result<TrackSelection, BadShape> {
    let Value::Array(words) = value else {
        return Err(BadShape);
    };
    let mut selection = TrackSelection::default();
    for word in words {
        match word.as_str() {
            Some("audio") => selection.audio = true,
            Some("video") => selection.video = true,
            Some("video-low") => selection.video_low = true,
            Some(other) => log::debug!("Ignoring requested track kind {other:?}"),
            None => return Err(BadShape),
        }
    }
    Ok(selection)
}

/// A seed-dialect `request`: track label → `true`. Absent means nothing; `false` means not
/// wanted; any other shape is an error.
pub fn seed_request(value: Option<&Value>) -> Result<StreamRequest, BadShape> {
    let mut labels = BTreeSet::new();
    match value {
        None => {}
        Some(Value::Object(map)) => {
            for (label, wanted) in map {
                match wanted {
                    Value::Bool(true) => {
                        labels.insert(label.clone());
                    }
                    Value::Bool(false) => {}
                    _ => return Err(BadShape),
                }
            }
        }
        Some(_) => return Err(BadShape),
    }
    Ok(StreamRequest::ByTrackLabel(labels))
}

/// A `clearchat` value: absent → everything; `{"userId":U}` → U's lines; `{"id":I,"userId":U}`
/// → that line. `id` without `userId`, a non-string, or a non-object is an error.
pub fn clear_scope(value: Option<&Value>) -> Result<ClearScope, BadShape> {
    let map = match value {
        None => return Ok(ClearScope::All),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(BadShape),
    };
    let id = optional_string(map, "id").map_err(|_| BadShape)?;
    let user = optional_string(map, "userId").map_err(|_| BadShape)?;
    match (id, user) {
        (None, None) => Ok(ClearScope::All),
        (None, Some(sender)) => Ok(ClearScope::Sender(sender)),
        (Some(id), Some(sender)) => Ok(ClearScope::Entry { sender, id }),
        (Some(_), None) => Err(BadShape),
    }
}

/// A `maketoken` value. Errors are the texts Galène reports.
pub fn token_request(value: Option<&Value>) -> Result<TokenRequest, String> {
    let Some(Value::Object(map)) = value else {
        return Err("bad token value".into());
    };
    let names_token = optional_string(map, "token")?.is_some_and(|t| !t.is_empty());
    let include_subgroups = match map.get("includeSubgroups") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("bad token value".into()),
    };
    Ok(TokenRequest {
        group: optional_string(map, "group")?.unwrap_or_default(),
        username: optional_string(map, "username")?,
        permissions: string_list(map, "permissions")?,
        expires: time_value(map, "expires")?,
        not_before: time_value(map, "not-before")?,
        include_subgroups,
        names_token,
    })
}

/// An `edittoken` value: `token` plus `expires` and/or `not-before`.
pub fn token_edit(value: Option<&Value>) -> Result<TokenEdit, String> {
    let Some(Value::Object(map)) = value else {
        return Err("bad token value".into());
    };
    for fixed in ["group", "username", "permissions", "issuedBy", "issuedAt"] {
        if map.get(fixed).is_some_and(|v| !v.is_null()) {
            return Err("this field cannot be edited".into());
        }
    }
    Ok(TokenEdit {
        token: optional_string(map, "token")?.unwrap_or_default(),
        expires: time_value(map, "expires")?,
        not_before: time_value(map, "not-before")?,
    })
}

fn optional_string(map: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err("bad string value".into()),
    }
}

fn string_list(map: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| "bad string list".to_owned())
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err("bad string list".into()),
    }
}

/// An RFC 3339 string or a number of milliseconds from now.
fn time_value(map: &Map<String, Value>, key: &str) -> Result<Option<TokenTime>, String> {
    const BAD: &str = "bad time value";
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => {
            let parsed = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| BAD.to_owned())?;
            Ok(Some(TokenTime::At(SystemTime::from(parsed))))
        }
        Some(Value::Number(n)) => {
            let ms = n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
                .ok_or_else(|| BAD.to_owned())?;
            Ok(Some(TokenTime::FromNow(ms)))
        }
        Some(_) => Err(BAD.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn v2_request_shapes() {
        let ok = stream_request(Some(
            &json!({"": ["audio", "video-low", "weird"], "camera": []}),
        ));
        let Ok(StreamRequest::ByStreamLabel(map)) = ok else {
            panic!("expected a stream request, got {ok:?}");
        };
        assert_eq!(
            map.get(""),
            Some(&TrackSelection {
                audio: true,
                video: false,
                video_low: true
            })
        );
        assert_eq!(map.get("camera"), Some(&TrackSelection::default()));
        assert!(stream_request(Some(&json!(["audio"]))).is_err());
        assert!(stream_request(Some(&json!({"": "audio"}))).is_err());
        assert!(stream_request(Some(&json!({"": [1]}))).is_err());
        assert_eq!(
            stream_request(None),
            Ok(StreamRequest::ByStreamLabel(BTreeMap::new()))
        );
    }

    #[test]
    fn seed_request_shapes() {
        let ok = seed_request(Some(&json!({"audio": true, "video": false})));
        assert_eq!(
            ok,
            Ok(StreamRequest::ByTrackLabel(BTreeSet::from([
                "audio".to_owned()
            ])))
        );
        assert!(seed_request(Some(&json!({"audio": ["audio"]}))).is_err());
        assert!(seed_request(Some(&json!("audio"))).is_err());
    }

    #[test]
    fn clearchat_scopes() {
        assert_eq!(clear_scope(None), Ok(ClearScope::All));
        assert_eq!(
            clear_scope(Some(&json!({"userId": "u"}))),
            Ok(ClearScope::Sender("u".into()))
        );
        assert_eq!(
            clear_scope(Some(&json!({"userId": "u", "id": "i"}))),
            Ok(ClearScope::Entry {
                sender: "u".into(),
                id: "i".into()
            })
        );
        assert!(clear_scope(Some(&json!({"id": "i"}))).is_err());
        assert!(clear_scope(Some(&json!("all"))).is_err());
    }

    #[test]
    fn token_values() {
        let request = token_request(Some(&json!({
            "group": "g", "username": "u", "permissions": ["present"],
            "expires": 86400000, "not-before": "2026-01-01T00:00:00Z"
        })));
        let Ok(request) = request else {
            panic!("expected a token request, got {request:?}");
        };
        assert_eq!(request.group, "g");
        assert_eq!(request.expires, Some(TokenTime::FromNow(86_400_000)));
        assert!(matches!(request.not_before, Some(TokenTime::At(_))));
        assert_eq!(
            token_request(Some(&json!(3))),
            Err("bad token value".into())
        );
        assert_eq!(
            token_request(Some(&json!({"group": 3}))),
            Err("bad string value".into())
        );
        assert_eq!(
            token_request(Some(&json!({"permissions": "op"}))),
            Err("bad string list".into())
        );
        assert_eq!(
            token_request(Some(&json!({"expires": true}))),
            Err("bad time value".into())
        );
        assert!(token_request(Some(&json!({"token": "mine"}))).is_ok_and(|r| r.names_token));
        assert_eq!(
            token_edit(Some(&json!({"token": "t", "group": "g"}))),
            Err("this field cannot be edited".into())
        );
        assert_eq!(
            token_edit(Some(&json!({"token": "t", "expires": -1000}))),
            Ok(TokenEdit {
                token: "t".into(),
                expires: Some(TokenTime::FromNow(-1000)),
                not_before: None
            })
        );
    }
}
