//! Group description files, `groups/<name>.json` (Galène's schema; docs/configuration.md, "Group
//! files").
//!
//! Keys match case-insensitively and unknown keys are an error, as with Go's strict decoder.
//! Obsolete fields are upgraded on the way in: the `op`, `presenter` and `other` arrays
//! become users with the presets `op`, `present` and `message` (an entry without username
//! becomes the wildcard user, the first one wins; an entry without password gets a wildcard
//! password; duplicates are logged and ignored); `allow-subgroups` becomes `auto-subgroups`;
//! `allow-anonymous` is ignored with a log line.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::fields::{Fields, Unknown, invalid};
use super::{ConfigError, Description, Password, PermissionsSpec, UserEntry};

/// Codec names a group may list, in Galène's spelling.
pub const KNOWN_CODECS: [&str; 8] = ["vp8", "vp9", "av1", "h264", "opus", "g722", "pcmu", "pcma"];

/// Codecs used when a group lists none.
pub const DEFAULT_CODECS: [&str; 2] = ["vp8", "opus"];

/// Chat history retention when `max-history-age` is absent, in seconds (4 hours).
pub const DEFAULT_MAX_HISTORY_AGE: u64 = 14400;

/// Every field of a group file, in canonical spelling (obsolete ones included).
pub(crate) const DESCRIPTION_FIELDS: [&str; 26] = [
    "users",
    "wildcard-user",
    "displayName",
    "description",
    "contact",
    "comment",
    "public",
    "redirect",
    "max-clients",
    "max-history-age",
    "expires",
    "not-before",
    "allow-recording",
    "unrestricted-tokens",
    "auto-subgroups",
    "autolock",
    "autokick",
    "authKeys",
    "authServer",
    "authPortal",
    "codecs",
    "op",
    "presenter",
    "other",
    "allow-subgroups",
    "allow-anonymous",
];

/// Parses the first JSON value of `text` (Go's decoder ignores anything after it).
pub(crate) fn first_json_value(text: &str) -> Result<Value, ConfigError> {
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    match values.next() {
        Some(Ok(value)) => Ok(value),
        Some(Err(err)) => Err(invalid(err.to_string())),
        None => Err(invalid("empty file")),
    }
}

impl UserEntry {
    /// Parses a user object `{"password": ..., "permissions": ...}`; unknown keys rejected.
    pub fn from_json(value: Value) -> Result<UserEntry, ConfigError> {
        let mut fields = Fields::new(value, &["password", "permissions"], Unknown::Reject, "user")?;
        let password = match fields.take("password") {
            Some(p) => Password::from_json(&p)?,
            None => None,
        };
        let permissions = match fields.take("permissions") {
            Some(p) => Some(PermissionsSpec::from_json(&p)?),
            None => None,
        };
        Ok(UserEntry {
            password,
            permissions,
        })
    }

    /// The JSON form, omitting absent fields.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        if let Some(password) = &self.password {
            map.insert("password".into(), password.to_json());
        }
        if let Some(permissions) = &self.permissions {
            map.insert("permissions".into(), permissions.to_json());
        }
        Value::Object(map)
    }
}

/// Parses a map of username → user object.
pub(crate) fn parse_users(value: Value) -> Result<BTreeMap<String, UserEntry>, ConfigError> {
    let Value::Object(map) = value else {
        return Err(invalid("users must be an object"));
    };
    map.into_iter()
        .map(|(name, user)| Ok((name, UserEntry::from_json(user)?)))
        .collect()
}

impl Description {
    /// Parses the text of a group file.
    pub fn from_json_str(text: &str) -> Result<Description, ConfigError> {
        Description::from_json(first_json_value(text)?)
    }

    /// Parses a group description from a JSON value.
    pub fn from_json(value: Value) -> Result<Description, ConfigError> {
        let mut f = Fields::new(value, &DESCRIPTION_FIELDS, Unknown::Reject, "group")?;
        let users = match f.take("users") {
            Some(users) => parse_users(users)?,
            None => BTreeMap::new(),
        };
        let wildcard_user = f
            .take("wildcard-user")
            .map(UserEntry::from_json)
            .transpose()?;
        let max_clients = usize::try_from(f.integer("max-clients")?).unwrap_or(0);
        let max_history_age = match f.integer("max-history-age")? {
            0 => None,
            // Galène keeps a negative age as is, so nothing is ever kept.
            age => Some(u64::try_from(age).unwrap_or(0)),
        };
        let auth_keys = match f.take("authKeys") {
            None => Vec::new(),
            Some(Value::Array(keys)) if keys.iter().all(Value::is_object) => keys,
            Some(_) => return Err(invalid("group: authKeys must be an array of objects")),
        };
        let codecs = parse_codecs(f.string_list("codecs")?);
        let mut desc = Description {
            users,
            wildcard_user,
            display_name: f.non_empty_string("displayName")?,
            description: f.non_empty_string("description")?,
            contact: f.non_empty_string("contact")?,
            public: f.bool("public")?,
            redirect: f.non_empty_string("redirect")?,
            max_clients,
            max_history_age,
            expires: f.time("expires")?,
            not_before: f.time("not-before")?,
            allow_recording: f.bool("allow-recording")?,
            unrestricted_tokens: f.bool("unrestricted-tokens")?,
            auto_subgroups: f.bool("auto-subgroups")?,
            autolock: f.bool("autolock")?,
            autokick: f.bool("autokick")?,
            auth_keys,
            auth_server: f.non_empty_string("authServer")?,
            auth_portal: f.non_empty_string("authPortal")?,
            codecs,
        };
        // `comment` is for humans only, but must still be a string.
        f.string("comment")?;
        if f.bool("allow-subgroups")? {
            desc.auto_subgroups = true;
        }
        if f.bool("allow-anonymous")? {
            log::info!("Group field allow-anonymous is obsolete, ignored");
        }
        for (field, preset) in [("op", "op"), ("presenter", "present"), ("other", "message")] {
            if let Some(patterns) = f.take(field) {
                upgrade_patterns(&mut desc, patterns, preset)?;
            }
        }
        Ok(desc)
    }

    /// Chat history retention in seconds (the default when unset).
    pub fn history_age_secs(&self) -> u64 {
        self.max_history_age.unwrap_or(DEFAULT_MAX_HISTORY_AGE)
    }
}

fn parse_codecs(names: Vec<String>) -> Vec<String> {
    let mut codecs = Vec::with_capacity(names.len());
    for name in names {
        let lower = name.to_ascii_lowercase();
        if !KNOWN_CODECS.contains(&lower.as_str()) {
            log::warn!("Unknown codec {name:?} in group file, ignored");
        } else if !codecs.contains(&lower) {
            codecs.push(lower);
        }
    }
    if codecs.is_empty() {
        codecs = DEFAULT_CODECS.iter().map(|c| (*c).to_owned()).collect();
    }
    codecs
}

/// Upgrades one obsolete array of `{"username","password"}` patterns.
fn upgrade_patterns(
    desc: &mut Description,
    patterns: Value,
    preset: &str,
) -> Result<(), ConfigError> {
    let Value::Array(patterns) = patterns else {
        return Err(invalid("group: obsolete user lists must be arrays"));
    };
    for pattern in patterns {
        let mut f = Fields::new(pattern, &["username", "password"], Unknown::Reject, "user")?;
        let username = f.string("username")?.unwrap_or_default();
        let password = match f.take("password") {
            Some(p) => Password::from_json(&p)?,
            None => Some(Password::Wildcard),
        };
        let user = UserEntry {
            password,
            permissions: Some(PermissionsSpec::Preset(preset.to_owned())),
        };
        if username.is_empty() {
            if desc.wildcard_user.is_some() {
                log::warn!("Group file: duplicate wildcard user, ignored");
            } else {
                desc.wildcard_user = Some(user);
            }
        } else {
            match desc.users.entry(username) {
                std::collections::btree_map::Entry::Occupied(existing) => {
                    log::warn!("Group file: duplicate user {:?}, ignored", existing.key());
                }
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(user);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Permission;
    use serde_json::json;
    use std::time::{Duration, UNIX_EPOCH};

    fn parse(value: Value) -> Result<Description, ConfigError> {
        Description::from_json(value)
    }

    #[test]
    fn empty_object_gives_defaults() {
        let d = parse(json!({})).unwrap();
        assert_eq!(d.codecs, ["vp8", "opus"]);
        assert!(!d.public);
        assert!(d.users.is_empty());
        assert_eq!(d.history_age_secs(), 14400);
    }

    #[test]
    fn full_example() {
        let text = r#"{"public":true,"displayName":"City Watch","allow-recording":true,
            "max-clients":50,"max-history-age":60,"description":"Night watch",
            "contact":"vimes@example.org","comment":"x","redirect":"",
            "expires":"2030-01-01T00:00:00Z","not-before":"2020-01-01T01:00:00+01:00",
            "unrestricted-tokens":true,"auto-subgroups":true,"autolock":true,"autokick":true,
            "authServer":"https://auth.example.org","authPortal":"https://portal.example.org",
            "authKeys":[{"kty":"oct","alg":"HS256","k":"AAAA"}],
            "users":{"vimes":{"password":{"type":"wildcard"},"permissions":"op"},
                     "nobby":{"permissions":["present"]}},
            "wildcard-user":{"password":"x","permissions":"present"},
            "codecs":["VP8","vp9","opus","speex","vp9"]} trailing garbage"#;
        let d = Description::from_json_str(text).unwrap();
        assert!(d.public && d.allow_recording && d.unrestricted_tokens);
        assert!(d.auto_subgroups && d.autolock && d.autokick);
        assert_eq!(d.display_name.as_deref(), Some("City Watch"));
        assert_eq!(d.description.as_deref(), Some("Night watch"));
        assert_eq!(d.contact.as_deref(), Some("vimes@example.org"));
        assert_eq!(d.redirect, None);
        assert_eq!(d.max_clients, 50);
        assert_eq!(d.history_age_secs(), 60);
        assert_eq!(
            d.expires,
            Some(UNIX_EPOCH + Duration::from_secs(1_893_456_000))
        );
        assert_eq!(
            d.not_before,
            Some(UNIX_EPOCH + Duration::from_secs(1_577_836_800))
        );
        assert_eq!(d.auth_server.as_deref(), Some("https://auth.example.org"));
        assert_eq!(d.auth_portal.as_deref(), Some("https://portal.example.org"));
        assert_eq!(d.auth_keys.len(), 1);
        assert_eq!(d.codecs, ["vp8", "vp9", "opus"]);
        assert_eq!(d.users["vimes"].password, Some(Password::Wildcard));
        assert_eq!(
            d.users["vimes"].permissions,
            Some(PermissionsSpec::Preset("op".into()))
        );
        assert_eq!(d.users["nobby"].password, None);
        assert_eq!(
            d.users["nobby"].permissions,
            Some(PermissionsSpec::List(
                [Permission::Present].into_iter().collect()
            ))
        );
        assert_eq!(
            d.wildcard_user.as_ref().unwrap().password,
            Some(Password::Plain("x".into()))
        );
    }

    #[test]
    fn keys_are_case_insensitive() {
        let d = parse(json!({"PUBLIC": true, "DisplayName": "x", "Max-Clients": 3,
                             "Wildcard-User": {"Password": "p", "PERMISSIONS": "op"}}))
        .unwrap();
        assert!(d.public);
        assert_eq!(d.display_name.as_deref(), Some("x"));
        assert_eq!(d.max_clients, 3);
        assert!(d.wildcard_user.is_some());
    }

    #[test]
    fn errors() {
        for bad in [
            json!({"bogus": true}),
            json!({"publicServer": true}),
            json!({"users": {"a": {"password": "x", "extra": 1}}}),
            json!({"users": {"a": {"permissions": "superuser"}}}),
            json!({"users": []}),
            json!({"public": "yes"}),
            json!({"max-clients": 1.5}),
            json!({"expires": "tomorrow"}),
            json!({"authKeys": [1]}),
            json!({"op": [{"username": "a", "pass": "x"}]}),
            json!({"op": {"username": "a"}}),
            json!({"users": {"a": {"password": {"type": "nope"}}}}),
            json!([]),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad} should be rejected");
        }
        assert_eq!(
            parse(json!({"users": {"a": {"permissions": "superuser"}}})).unwrap_err(),
            ConfigError::Invalid("unknown permission".into())
        );
        assert!(Description::from_json_str("{").is_err());
        assert!(Description::from_json_str("").is_err());
    }

    #[test]
    fn legacy_upgrade() {
        let d = parse(json!({
            "users": {"bob": {"password": "b", "permissions": "observe"}},
            "op": [{"username": "vimes", "password": "sybil"}, {"username": "bob", "password": "x"}],
            "presenter": [{"username": "carrot"}, {"password": "anyone"}],
            "other": [{}],
            "allow-subgroups": true,
            "allow-anonymous": true,
        }))
        .unwrap();
        assert!(d.auto_subgroups);
        let vimes = &d.users["vimes"];
        assert_eq!(vimes.password, Some(Password::Plain("sybil".into())));
        assert_eq!(
            vimes.permissions,
            Some(PermissionsSpec::Preset("op".into()))
        );
        // Existing users win over legacy duplicates.
        assert_eq!(d.users["bob"].password, Some(Password::Plain("b".into())));
        let carrot = &d.users["carrot"];
        assert_eq!(carrot.password, Some(Password::Wildcard));
        assert_eq!(
            carrot.permissions,
            Some(PermissionsSpec::Preset("present".into()))
        );
        // The first entry without username becomes the wildcard user.
        let wildcard = d.wildcard_user.unwrap();
        assert_eq!(wildcard.password, Some(Password::Plain("anyone".into())));
        assert_eq!(
            wildcard.permissions,
            Some(PermissionsSpec::Preset("present".into()))
        );
        assert_eq!(d.users.len(), 3);
    }

    #[test]
    fn codecs() {
        assert_eq!(
            parse(json!({"codecs": []})).unwrap().codecs,
            ["vp8", "opus"]
        );
        assert_eq!(
            parse(json!({"codecs": ["x"]})).unwrap().codecs,
            ["vp8", "opus"]
        );
        assert_eq!(
            parse(json!({"codecs": ["H264", "PCMA", "g722", "pcmu", "av1"]}))
                .unwrap()
                .codecs,
            ["h264", "pcma", "g722", "pcmu", "av1"]
        );
    }

    #[test]
    fn user_round_trip() {
        let user =
            UserEntry::from_json(json!({"password": {"type": "wildcard"}, "permissions": "op"}))
                .unwrap();
        assert_eq!(
            user.to_json(),
            json!({"password": {"type": "wildcard"}, "permissions": "op"})
        );
        assert_eq!(UserEntry::default().to_json(), json!({}));
    }

    #[test]
    fn negative_numbers() {
        let d = parse(json!({"max-clients": -1, "max-history-age": -5})).unwrap();
        assert_eq!(d.max_clients, 0);
        assert_eq!(d.history_age_secs(), 0);
    }
}
