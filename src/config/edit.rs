//! Editing configuration files the way Galène's administrative API does (docs/admin.md): pure
//! functions from a file's text and a request's JSON to the new text. Reading and writing the
//! files is the runtime's job (`run::admin_files`).
//!
//! [`GroupDocument`] is a group file in Galène's normal form, the form Galène writes when it
//! rewrites a file: keys in their canonical spelling and in the order of Galène's
//! `Description` struct, the obsolete fields upgraded (`op`/`presenter`/`other` to users,
//! `allow-subgroups` to `auto-subgroups`, `allow-anonymous` dropped), zero values left out
//! (Go's `omitempty`), compact JSON and a newline. Everything else is kept as it was
//! written (a `comment`, a codec this server does not know, a permission list), so a file
//! edited through the API changes only where the request asked. Every edit is checked by
//! parsing the result as the server will ([`Description::from_json`]): an edit can never
//! produce a file the server refuses.
//!
//! [`ConfigDocument`] does the same for `data/config.json`, for the first-run setup.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::fields::{Fields, Unknown, invalid, ordered_object};
use super::global::CONFIG_FIELDS;
use super::group::{DESCRIPTION_FIELDS, first_json_value};
use super::{ConfigError, Description, GlobalConfig, Password, PermissionsSpec};

/// The fields of a group file in the order Galène writes them.
const GROUP_FIELD_ORDER: [&str; 21] = [
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
    "users",
    "wildcard-user",
    "authKeys",
    "authServer",
    "authPortal",
    "codecs",
];

/// Fields the API never shows in a description nor accepts in one: they have endpoints of
/// their own (`.users`, `.wildcard-user`, `.keys`).
pub const PRIVATE_GROUP_FIELDS: [&str; 3] = ["users", "wildcard-user", "authKeys"];

/// Obsolete fields that carry users; a description sent to the API must not have them.
const OBSOLETE_USER_FIELDS: [&str; 3] = ["op", "presenter", "other"];

/// Fields Go writes even when they hold a zero value (pointers).
const POINTER_FIELDS: [&str; 3] = ["wildcard-user", "expires", "not-before"];

/// Why an edit was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    /// The user (or the password's user) does not exist: 404.
    NotFound,
    /// The request's JSON is not acceptable: 400 with this text.
    BadRequest(String),
}

impl From<ConfigError> for EditError {
    fn from(err: ConfigError) -> EditError {
        match err {
            ConfigError::Invalid(why) | ConfigError::Io(why) => EditError::BadRequest(why),
        }
    }
}

/// Which user of a group an edit is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserSlot<'a> {
    /// A user of `users` by name; `""` is the API's "empty user".
    Named(&'a str),
    /// The `wildcard-user`.
    Wildcard,
}

/// A group file in Galène's normal form (see the module docs).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupDocument {
    fields: BTreeMap<&'static str, Value>,
}

impl GroupDocument {
    /// Parses an existing group file. It must be a file the server accepts; the error is
    /// the server's.
    pub fn parse(text: &str) -> Result<GroupDocument, ConfigError> {
        let value = first_json_value(text)?;
        Description::from_json(value.clone())?;
        let fields = Fields::new(value, &DESCRIPTION_FIELDS, Unknown::Reject, "group")?;
        normal_form(fields.into_values())
    }

    /// A new file from a description sent to the API (`PUT .groups/<g>`), keeping the users,
    /// wildcard user and keys of `old` (Galène's rule). Unknown fields are dropped, as Go's
    /// decoder drops them; the private fields and the obsolete user lists are refused.
    pub fn from_public(
        body: Value,
        old: Option<&GroupDocument>,
    ) -> Result<GroupDocument, EditError> {
        let fields = Fields::new(body, &DESCRIPTION_FIELDS, Unknown::Ignore, "group")?;
        let values = fields.into_values();
        if let Some(field) = PRIVATE_GROUP_FIELDS
            .iter()
            .chain(OBSOLETE_USER_FIELDS.iter())
            .find(|f| values.contains_key(**f))
        {
            return Err(EditError::BadRequest(format!(
                "description is not sanitised: it has \"{field}\""
            )));
        }
        let mut document = normal_form(values)?;
        if let Some(old) = old {
            for field in PRIVATE_GROUP_FIELDS {
                if let Some(value) = old.fields.get(field) {
                    document.fields.insert(field, value.clone());
                }
            }
        }
        document.check()?;
        Ok(document)
    }

    /// Whether the parsed file would be accepted by the server.
    fn check(&self) -> Result<(), ConfigError> {
        Description::from_json(self.to_value()).map(|_| ())
    }

    /// The whole document as a JSON object (keys sorted).
    pub fn to_value(&self) -> Value {
        Value::Object(
            self.fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    /// The file's text: compact JSON in Galène's field order and a newline.
    pub fn to_text(&self) -> String {
        ordered_json(&self.fields, &[])
    }

    /// What `GET .groups/<g>` answers: the description without users, wildcard user and
    /// keys, in Galène's field order, and a newline.
    pub fn sanitised_text(&self) -> String {
        ordered_json(&self.fields, &PRIVATE_GROUP_FIELDS)
    }

    /// The value of one field (canonical name), if set.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    fn users(&self) -> Option<&Map<String, Value>> {
        self.fields.get("users").and_then(Value::as_object)
    }

    /// The names in `users`, sorted.
    pub fn user_names(&self) -> Vec<String> {
        self.users()
            .map(|users| users.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn user_value(&self, slot: UserSlot<'_>) -> Option<&Value> {
        match slot {
            UserSlot::Named(name) => self.users()?.get(name),
            UserSlot::Wildcard => self.fields.get("wildcard-user"),
        }
    }

    /// A user as `GET .users/<u>` shows it: its permissions, never its password. `None`
    /// when there is no such user.
    pub fn user(&self, slot: UserSlot<'_>) -> Option<Value> {
        let user = self.user_value(slot)?;
        let mut shown = Map::new();
        if let Some(permissions) = user.get("permissions") {
            shown.insert("permissions".into(), permissions.clone());
        }
        Some(Value::Object(shown))
    }

    /// The user's stored password, parsed; `None` when there is no such user or it has no
    /// password.
    pub fn password(&self, slot: UserSlot<'_>) -> Option<Password> {
        let value = self.user_value(slot)?.get("password")?;
        Password::from_json(value).ok().flatten()
    }

    /// Creates or replaces a user from `PUT .users/<u>` (`{"permissions": ...}`; a password
    /// is refused, it has its own endpoint). The old password is kept. Returns whether the
    /// user was created.
    pub fn put_user(&mut self, slot: UserSlot<'_>, body: Value) -> Result<bool, EditError> {
        let fields = Fields::new(body, &["password", "permissions"], Unknown::Ignore, "user")?;
        let mut values = fields.into_values();
        if values.contains_key("password") {
            return Err(EditError::BadRequest(
                "user description is not sanitised: it has a password".into(),
            ));
        }
        let mut user = Map::new();
        if let Some(permissions) = values.remove("permissions") {
            PermissionsSpec::from_json(&permissions)?;
            user.insert("permissions".into(), permissions);
        }
        let old = self.user_value(slot).cloned();
        if let Some(password) = old.as_ref().and_then(|u| u.get("password")) {
            user.insert("password".into(), password.clone());
        }
        self.set_user(slot, Some(Value::Object(user)))?;
        Ok(old.is_none())
    }

    /// Deletes a user.
    pub fn delete_user(&mut self, slot: UserSlot<'_>) -> Result<(), EditError> {
        if self.user_value(slot).is_none() {
            return Err(EditError::NotFound);
        }
        self.set_user(slot, None)
    }

    /// Sets (`Some`) or removes (`None`) an existing user's password. The value is checked
    /// and stored in normal form.
    pub fn set_password(
        &mut self,
        slot: UserSlot<'_>,
        password: Option<&Value>,
    ) -> Result<(), EditError> {
        let Some(Value::Object(mut user)) = self.user_value(slot).cloned() else {
            return Err(EditError::NotFound);
        };
        match password.map(Password::from_json).transpose()?.flatten() {
            Some(password) => {
                user.insert("password".into(), password.to_json());
            }
            None => {
                user.remove("password");
            }
        }
        self.set_user(slot, Some(Value::Object(user)))
    }

    /// Replaces (`Some`) or removes (`None`) the group's `authKeys`; each key must be one the
    /// server can verify tokens with.
    pub fn set_keys(&mut self, keys: Option<Vec<Value>>) -> Result<(), EditError> {
        match keys.filter(|keys| !keys.is_empty()) {
            Some(keys) => {
                for key in &keys {
                    super::jwt::check_key(key)
                        .map_err(|why| EditError::BadRequest(format!("bad key: {why}")))?;
                }
                self.fields.insert("authKeys", Value::Array(keys));
            }
            None => {
                self.fields.remove("authKeys");
            }
        }
        self.check()?;
        Ok(())
    }

    fn set_user(&mut self, slot: UserSlot<'_>, user: Option<Value>) -> Result<(), EditError> {
        match slot {
            UserSlot::Wildcard => match user {
                Some(user) => {
                    self.fields.insert("wildcard-user", user);
                }
                None => {
                    self.fields.remove("wildcard-user");
                }
            },
            UserSlot::Named(name) => {
                let mut users = self.users().cloned().unwrap_or_default();
                match user {
                    Some(user) => {
                        users.insert(name.to_owned(), user);
                    }
                    None => {
                        users.remove(name);
                    }
                }
                if users.is_empty() {
                    self.fields.remove("users");
                } else {
                    self.fields.insert("users", Value::Object(users));
                }
            }
        }
        self.check()?;
        Ok(())
    }
}

/// Puts the values of a group object (canonical names) into normal form: obsolete fields
/// upgraded, users normalised, zero values dropped.
fn normal_form(mut values: BTreeMap<&'static str, Value>) -> Result<GroupDocument, ConfigError> {
    if values
        .remove("allow-subgroups")
        .is_some_and(|v| v == Value::Bool(true))
    {
        values.insert("auto-subgroups", Value::Bool(true));
    }
    values.remove("allow-anonymous");
    let mut users = match values.remove("users") {
        None => Map::new(),
        Some(Value::Object(users)) => users,
        Some(_) => return Err(invalid("group: users must be an object")),
    };
    for (_, user) in users.iter_mut() {
        *user = normal_user(user.clone())?;
    }
    let mut wildcard = values
        .remove("wildcard-user")
        .map(normal_user)
        .transpose()?;
    for (field, preset) in [("op", "op"), ("presenter", "present"), ("other", "message")] {
        if let Some(patterns) = values.remove(field) {
            upgrade_patterns(patterns, preset, &mut users, &mut wildcard)?;
        }
    }
    if !users.is_empty() {
        values.insert("users", Value::Object(users));
    }
    if let Some(wildcard) = wildcard {
        values.insert("wildcard-user", wildcard);
    }
    values.retain(|field, value| POINTER_FIELDS.contains(field) || !is_zero(value));
    Ok(GroupDocument { fields: values })
}

/// Go's `omitempty` zero values.
fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
    }
}

/// A user object in normal form: canonical keys, the password in its normal form, no
/// password when it has no type (it could never match).
fn normal_user(user: Value) -> Result<Value, ConfigError> {
    let fields = Fields::new(user, &["password", "permissions"], Unknown::Reject, "user")?;
    let mut values = fields.into_values();
    let mut out = Map::new();
    if let Some(password) = values.remove("password")
        && let Some(password) = Password::from_json(&password)?
    {
        out.insert("password".into(), password.to_json());
    }
    if let Some(permissions) = values.remove("permissions") {
        PermissionsSpec::from_json(&permissions)?;
        out.insert("permissions".into(), permissions);
    }
    Ok(Value::Object(out))
}

/// Upgrades one obsolete list of `{"username", "password"}` patterns, as the parser does.
fn upgrade_patterns(
    patterns: Value,
    preset: &str,
    users: &mut Map<String, Value>,
    wildcard: &mut Option<Value>,
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
        let mut user = Map::new();
        if let Some(password) = password {
            user.insert("password".into(), password.to_json());
        }
        user.insert("permissions".into(), Value::String(preset.to_owned()));
        if username.is_empty() {
            if wildcard.is_none() {
                *wildcard = Some(Value::Object(user));
            }
        } else if !users.contains_key(&username) {
            users.insert(username, Value::Object(user));
        }
    }
    Ok(())
}

/// Compact JSON of `fields` in Galène's order, leaving out `except`, and a newline.
fn ordered_json(fields: &BTreeMap<&'static str, Value>, except: &[&str]) -> String {
    let mut text = ordered_object(&GROUP_FIELD_ORDER, |name| {
        fields.get(name).filter(|_| !except.contains(&name))
    });
    text.push('\n');
    text
}

/// `data/config.json` as an editable object with canonical keys, for the first-run setup.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigDocument {
    fields: BTreeMap<&'static str, Value>,
}

impl ConfigDocument {
    /// Parses an existing `config.json` (which must be valid); `None` is a missing file.
    pub fn parse(text: Option<&str>) -> Result<ConfigDocument, ConfigError> {
        let Some(text) = text else {
            return Ok(ConfigDocument::default());
        };
        let value = first_json_value(text)?;
        GlobalConfig::from_json(value.clone())?;
        let fields = Fields::new(value, &CONFIG_FIELDS, Unknown::Reject, "config.json")?;
        Ok(ConfigDocument {
            fields: fields.into_values(),
        })
    }

    /// The parsed configuration.
    pub fn config(&self) -> Result<GlobalConfig, ConfigError> {
        GlobalConfig::from_json(self.to_value())
    }

    fn to_value(&self) -> Value {
        Value::Object(
            self.fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    /// Adds (or replaces) a user with the `admin` preset and this password, and turns
    /// `writableGroups` on.
    pub fn add_admin(&mut self, username: &str, password: Password) -> Result<(), ConfigError> {
        let mut users = match self.fields.remove("users") {
            Some(Value::Object(users)) => users,
            _ => Map::new(),
        };
        let mut user = Map::new();
        user.insert("password".into(), password.to_json());
        user.insert("permissions".into(), Value::String("admin".into()));
        users.insert(username.to_owned(), Value::Object(user));
        self.fields.insert("users", Value::Object(users));
        self.fields.insert("writableGroups", Value::Bool(true));
        self.config().map(|_| ())
    }

    /// The file's text, indented as `galenectl initial-setup` writes it, and a newline.
    pub fn to_text(&self) -> String {
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        // Serialising a `Value` into a Vec cannot fail.
        let _ = serde::Serialize::serialize(&self.to_value(), &mut serializer);
        let mut text = String::from_utf8(out).unwrap_or_default();
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(text: &str) -> GroupDocument {
        GroupDocument::parse(text).unwrap()
    }

    #[test]
    fn normal_form_is_galenes() {
        let d = doc(
            r#"{"Public":true,"max-clients":0,"displayname":"City","comment":"",
            "codecs":["vp8","bogus"],"allow-subgroups":true,"allow-anonymous":true,
            "op":[{"username":"vimes","password":"pw"},{"password":"x"}],
            "presenter":[{"username":"vimes"},{"username":"carrot"}],
            "users":{"angua":{"PASSWORD":{"type":"bcrypt","key":"$2a$08$x"},"permissions":["present"]}},
            "expires":"2030-01-01T00:00:00+02:00"}"#,
        );
        assert_eq!(
            d.to_text(),
            "{\"displayName\":\"City\",\"public\":true,\"expires\":\"2030-01-01T00:00:00+02:00\",\
             \"auto-subgroups\":true,\"users\":{\"angua\":{\"password\":{\"key\":\"$2a$08$x\",\
             \"type\":\"bcrypt\"},\"permissions\":[\"present\"]},\"carrot\":{\"password\":\
             {\"type\":\"wildcard\"},\"permissions\":\"present\"},\"vimes\":{\"password\":\"pw\",\
             \"permissions\":\"op\"}},\"wildcard-user\":{\"password\":\"x\",\"permissions\":\"op\"},\
             \"codecs\":[\"vp8\",\"bogus\"]}\n"
        );
        // What the API shows: no users, no wildcard user, no keys.
        assert_eq!(
            d.sanitised_text(),
            "{\"displayName\":\"City\",\"public\":true,\"expires\":\"2030-01-01T00:00:00+02:00\",\
             \"auto-subgroups\":true,\"codecs\":[\"vp8\",\"bogus\"]}\n"
        );
        // The normal form reads back as the same group.
        assert_eq!(
            Description::from_json_str(&d.to_text()).unwrap(),
            Description::from_json_str(
                r#"{"public":true,"displayName":"City","codecs":["vp8"],"auto-subgroups":true,
                "expires":"2030-01-01T00:00:00+02:00",
                "users":{"vimes":{"password":"pw","permissions":"op"},
                         "carrot":{"password":{"type":"wildcard"},"permissions":"present"},
                         "angua":{"password":{"type":"bcrypt","key":"$2a$08$x"},"permissions":["present"]}},
                "wildcard-user":{"password":"x","permissions":"op"}}"#
            )
            .unwrap()
        );
    }

    #[test]
    fn invalid_files_are_refused() {
        for bad in [
            r#"{"bogus":1}"#,
            r#"{"public":"yes"}"#,
            "[",
            "",
            r#"{"users":[]}"#,
        ] {
            assert!(GroupDocument::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn public_replacement_keeps_private_fields_and_drops_unknown_ones() {
        let old = doc(r#"{"public":true,"users":{"a":{"password":"x"}},
            "authKeys":[{"kty":"oct","alg":"HS256","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}"#);
        let new = GroupDocument::from_public(
            json!({"displayName": "New", "whatever": 3, "public": false, "max-clients": 5}),
            Some(&old),
        )
        .unwrap();
        let text = new.to_text();
        assert!(
            text.starts_with("{\"displayName\":\"New\",\"max-clients\":5,\"users\":"),
            "{text}"
        );
        assert!(text.contains("\"authKeys\":[{"));
        assert!(!text.contains("whatever") && !text.contains("public"));
        for refused in [
            json!({"users": {}}),
            json!({"wildcard-user": {"password": "x"}}),
            json!({"authkeys": []}),
            json!({"op": [{"username": "x"}]}),
        ] {
            assert!(
                matches!(
                    GroupDocument::from_public(refused.clone(), None),
                    Err(EditError::BadRequest(_))
                ),
                "{refused}"
            );
        }
        for bad in [
            json!({"public": "yes"}),
            json!({"max-clients": "ten"}),
            json!([1]),
        ] {
            assert!(GroupDocument::from_public(bad, None).is_err());
        }
        // Null deletes (galenectl update-group sends null for a key to drop).
        let cleared = GroupDocument::from_public(json!({"displayName": null}), None).unwrap();
        assert_eq!(cleared.to_text(), "{}\n");
    }

    #[test]
    fn users_and_passwords() {
        let mut d = doc(r#"{"users":{"bob":{"password":"old","permissions":"present"}}}"#);
        assert_eq!(d.user_names(), ["bob"]);
        assert_eq!(
            d.user(UserSlot::Named("bob")),
            Some(json!({"permissions": "present"}))
        );
        assert_eq!(d.user(UserSlot::Named("eve")), None);
        assert_eq!(d.user(UserSlot::Wildcard), None);
        // Replacing the permissions keeps the password.
        assert!(
            !d.put_user(UserSlot::Named("bob"), json!({"permissions": "op"}))
                .unwrap()
        );
        assert_eq!(
            d.password(UserSlot::Named("bob")),
            Some(Password::Plain("old".into()))
        );
        assert!(d.put_user(UserSlot::Named(""), json!({})).unwrap());
        assert!(
            d.put_user(UserSlot::Wildcard, json!({"permissions": ["present"]}))
                .unwrap()
        );
        assert_eq!(
            d.put_user(UserSlot::Named("x"), json!({"password": "p"})),
            Err(EditError::BadRequest(
                "user description is not sanitised: it has a password".into()
            ))
        );
        assert_eq!(
            d.put_user(UserSlot::Named("x"), json!({"permissions": "king"})),
            Err(EditError::BadRequest("unknown permission".into()))
        );
        d.set_password(
            UserSlot::Named("bob"),
            Some(&json!({"type": "bcrypt", "key": "$2a$08$k"})),
        )
        .unwrap();
        d.set_password(UserSlot::Wildcard, Some(&json!({"type": "wildcard"})))
            .unwrap();
        assert_eq!(
            d.set_password(UserSlot::Named("eve"), Some(&json!("x"))),
            Err(EditError::NotFound)
        );
        assert!(
            d.set_password(UserSlot::Named("bob"), Some(&json!({"type": "rot13"})))
                .is_err()
        );
        assert_eq!(
            d.to_text(),
            "{\"users\":{\"\":{},\"bob\":{\"password\":{\"key\":\"$2a$08$k\",\"type\":\"bcrypt\"},\
             \"permissions\":\"op\"}},\"wildcard-user\":{\"password\":{\"type\":\"wildcard\"},\
             \"permissions\":[\"present\"]}}\n"
        );
        d.set_password(UserSlot::Named("bob"), None).unwrap();
        assert_eq!(d.password(UserSlot::Named("bob")), None);
        d.delete_user(UserSlot::Named("bob")).unwrap();
        d.delete_user(UserSlot::Named("")).unwrap();
        d.delete_user(UserSlot::Wildcard).unwrap();
        assert_eq!(d.delete_user(UserSlot::Wildcard), Err(EditError::NotFound));
        assert_eq!(d.to_text(), "{}\n");
    }

    #[test]
    fn keys_are_checked() {
        let mut d = GroupDocument::default();
        let good = json!({"kty": "oct", "alg": "HS256",
                          "k": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"});
        d.set_keys(Some(vec![good.clone()])).unwrap();
        assert_eq!(d.field("authKeys"), Some(&json!([good])));
        let short = json!({"kty": "oct", "alg": "HS256", "k": "AAAA"});
        assert!(matches!(
            d.set_keys(Some(vec![short])),
            Err(EditError::BadRequest(_))
        ));
        d.set_keys(None).unwrap();
        assert_eq!(d.to_text(), "{}\n");
    }

    #[test]
    fn config_setup_adds_an_admin_and_keeps_the_rest() {
        let mut c = ConfigDocument::parse(Some(r#"{"CanonicalHost":"h.example"}"#)).unwrap();
        c.add_admin("root", Password::Bcrypt("$2a$12$x".into()))
            .unwrap();
        let config = GlobalConfig::from_json_str(&c.to_text()).unwrap();
        assert!(config.writable_groups);
        assert_eq!(config.canonical_host.as_deref(), Some("h.example"));
        assert_eq!(
            config.users["root"].permissions,
            Some(PermissionsSpec::Preset("admin".into()))
        );
        assert!(c.to_text().contains("\n    \"users\": {"));
        let fresh = ConfigDocument::parse(None).unwrap();
        assert_eq!(fresh.config().unwrap(), GlobalConfig::default());
        assert!(ConfigDocument::parse(Some(r#"{"publicServer":true}"#)).is_err());
    }
}
