//! Go-compatible decoding of JSON objects into known fields.
//!
//! Galène decodes its files with Go's `encoding/json`, which matches object keys to struct
//! fields case-insensitively (an exact match wins) and, for group files and `config.json`,
//! rejects keys that match no field. [`Fields`] reproduces both rules; `null` values are
//! treated as absent, as Go leaves the field at its zero value.
//!
//! The way back, [`ordered_object`], writes an object with its keys in the order Galène's
//! structs declare them, as Go's encoder does.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::{Map, Value};

use super::ConfigError;

/// What to do with a key that matches no known field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unknown {
    /// Fail with `unknown field "<key>"` (Go's `DisallowUnknownFields`).
    Reject,
    /// Skip it (plain `json.Unmarshal`).
    Ignore,
}

/// The fields of one JSON object, keyed by their canonical names.
#[derive(Debug)]
pub(crate) struct Fields {
    values: BTreeMap<&'static str, Value>,
    context: &'static str,
}

impl Fields {
    /// Sorts the keys of `value` (which must be an object) into `known` fields.
    /// `context` names the object in error messages.
    pub(crate) fn new(
        value: Value,
        known: &[&'static str],
        unknown: Unknown,
        context: &'static str,
    ) -> Result<Fields, ConfigError> {
        let Value::Object(map) = value else {
            return Err(invalid(format!("{context}: expected a JSON object")));
        };
        Fields::from_map(map, known, unknown, context)
    }

    fn from_map(
        map: Map<String, Value>,
        known: &[&'static str],
        unknown: Unknown,
        context: &'static str,
    ) -> Result<Fields, ConfigError> {
        let mut values = BTreeMap::new();
        for (key, value) in map {
            let canonical = known
                .iter()
                .find(|name| **name == key)
                .or_else(|| known.iter().find(|name| name.eq_ignore_ascii_case(&key)));
            match (canonical, unknown) {
                (Some(name), _) => {
                    if !value.is_null() {
                        values.insert(*name, value);
                    }
                }
                (None, Unknown::Reject) => {
                    return Err(invalid(format!("{context}: unknown field \"{key}\"")));
                }
                (None, Unknown::Ignore) => {}
            }
        }
        Ok(Fields { values, context })
    }

    /// The values by canonical name (`null`s already dropped), for code that keeps them as
    /// JSON.
    pub(crate) fn into_values(self) -> BTreeMap<&'static str, Value> {
        self.values
    }

    /// Removes and returns a raw value.
    pub(crate) fn take(&mut self, name: &'static str) -> Option<Value> {
        self.values.remove(name)
    }

    fn type_error(&self, name: &str, expected: &str) -> ConfigError {
        invalid(format!(
            "{}: field \"{name}\" must be {expected}",
            self.context
        ))
    }

    /// A string field.
    pub(crate) fn string(&mut self, name: &'static str) -> Result<Option<String>, ConfigError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.type_error(name, "a string")),
        }
    }

    /// A string field where `""` counts as absent (Go's zero value with `omitempty`).
    pub(crate) fn non_empty_string(
        &mut self,
        name: &'static str,
    ) -> Result<Option<String>, ConfigError> {
        Ok(self.string(name)?.filter(|s| !s.is_empty()))
    }

    /// A boolean field; absent is `false`.
    pub(crate) fn bool(&mut self, name: &'static str) -> Result<bool, ConfigError> {
        match self.take(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(_) => Err(self.type_error(name, "a boolean")),
        }
    }

    /// An integer field; absent is 0.
    pub(crate) fn integer(&mut self, name: &'static str) -> Result<i64, ConfigError> {
        match self.take(name) {
            None => Ok(0),
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| self.type_error(name, "an integer")),
            Some(_) => Err(self.type_error(name, "an integer")),
        }
    }

    /// An array of strings; absent is empty.
    pub(crate) fn string_list(&mut self, name: &'static str) -> Result<Vec<String>, ConfigError> {
        match self.take(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    _ => Err(self.type_error(name, "an array of strings")),
                })
                .collect(),
            Some(_) => Err(self.type_error(name, "an array of strings")),
        }
    }

    /// An RFC 3339 time.
    pub(crate) fn time(&mut self, name: &'static str) -> Result<Option<SystemTime>, ConfigError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => parse_time(&s)
                .map(Some)
                .ok_or_else(|| self.type_error(name, "an RFC 3339 time")),
            Some(_) => Err(self.type_error(name, "an RFC 3339 time")),
        }
    }
}

/// Shorthand for [`ConfigError::Invalid`].
pub(crate) fn invalid(why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(why.into())
}

/// Parses an RFC 3339 time (any offset, optional fractional seconds).
pub fn parse_time(text: &str) -> Option<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(SystemTime::from)
}

/// Formats a time the way Go marshals a `time.Time` in UTC: RFC 3339 with the fractional
/// seconds trimmed of trailing zeros (`2026-08-01T12:00:00Z`, `2026-08-01T12:00:00.5Z`).
pub fn format_time(time: SystemTime) -> String {
    let utc: chrono::DateTime<chrono::Utc> = time.into();
    let text = utc.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    // `text` ends in ".nnnnnnnnnZ"; drop trailing zeros of the fraction, then a bare dot.
    let Some(body) = text.strip_suffix('Z') else {
        return text;
    };
    let body = if body.contains('.') {
        body.trim_end_matches('0').trim_end_matches('.')
    } else {
        body
    };
    format!("{body}Z")
}

/// Compact JSON of an object whose keys are written in `order` (those `value_of` returns);
/// keys outside `order` are left out.
pub(crate) fn ordered_object<'a>(
    order: &[&str],
    mut value_of: impl FnMut(&str) -> Option<&'a Value>,
) -> String {
    let mut text = String::from("{");
    for &key in order {
        if let Some(value) = value_of(key) {
            if text.len() > 1 {
                text.push(',');
            }
            text.push_str(&Value::String(key.to_owned()).to_string());
            text.push(':');
            text.push_str(&value.to_string());
        }
    }
    text.push('}');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn keys_match_case_insensitively_exact_first() {
        let mut f = Fields::new(
            json!({"PUBLIC": true, "displayname": "x"}),
            &["public", "displayName"],
            Unknown::Reject,
            "test",
        )
        .unwrap();
        assert!(f.bool("public").unwrap());
        assert_eq!(f.string("displayName").unwrap().as_deref(), Some("x"));
    }

    #[test]
    fn unknown_keys_rejected_or_ignored() {
        let err = Fields::new(json!({"bogus": 1}), &["a"], Unknown::Reject, "ctx").unwrap_err();
        assert_eq!(
            err,
            ConfigError::Invalid("ctx: unknown field \"bogus\"".into())
        );
        assert!(Fields::new(json!({"bogus": 1}), &["a"], Unknown::Ignore, "ctx").is_ok());
        assert!(Fields::new(json!([1]), &["a"], Unknown::Ignore, "ctx").is_err());
    }

    #[test]
    fn null_is_absent_and_types_checked() {
        let mut f = Fields::new(
            json!({"a": null, "b": "no", "c": 1.5, "d": [1]}),
            &["a", "b", "c", "d"],
            Unknown::Reject,
            "t",
        )
        .unwrap();
        assert!(!f.bool("a").unwrap());
        assert!(f.bool("b").is_err());
        assert!(f.integer("c").is_err());
        assert!(f.string_list("d").is_err());
    }

    #[test]
    fn times_round_trip() {
        let t = parse_time("2026-08-01T14:00:00+02:00").unwrap();
        assert_eq!(format_time(t), "2026-08-01T12:00:00Z");
        let t2 = t + Duration::from_millis(500);
        assert_eq!(format_time(t2), "2026-08-01T12:00:00.5Z");
        assert_eq!(parse_time(&format_time(t2)), Some(t2));
        assert_eq!(format_time(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert!(parse_time("yesterday").is_none());
    }
}
