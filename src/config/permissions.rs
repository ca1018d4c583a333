//! Permission presets and their expansion (Galène's; docs/configuration.md, "Permissions and
//! presets").
//!
//! A user entry or token names either a preset (`"op"`, `"present"`, ...) or an explicit
//! list. Presets are expanded per group: `op` gains `record` when the group allows recording,
//! `present` gains `token` when tokens are unrestricted. Explicit lists are used verbatim.
//! Every expansion returns a fresh [`Permissions`] value, so changing one client's
//! permissions never affects another's.

use serde_json::Value;

use super::fields::invalid;
use super::{ConfigError, Description, Permission, Permissions, PermissionsSpec};

/// The error text for an unknown preset name (the admin API answers 400 with it).
pub const UNKNOWN_PERMISSION: &str = "unknown permission";

/// The preset names, in Galène's order.
pub const PRESETS: [&str; 6] = ["op", "present", "message", "observe", "caption", "admin"];

/// Expands the preset `name`; `None` if it is not a preset.
pub fn expand_preset(
    name: &str,
    allow_recording: bool,
    unrestricted_tokens: bool,
) -> Option<Permissions> {
    use Permission::*;
    let base: &[Permission] = match name {
        "op" => &[Op, Present, Message, Caption, Token],
        "present" => &[Present, Message],
        "message" => &[Message],
        "observe" => &[],
        "caption" => &[Caption],
        "admin" => &[Admin],
        _ => return None,
    };
    let mut permissions: Permissions = base.iter().copied().collect();
    if allow_recording && permissions.has(Op) {
        permissions.prepend(Record);
    }
    if unrestricted_tokens && permissions.has(Present) {
        permissions.prepend(Token);
    }
    Some(permissions)
}

impl Permissions {
    /// Builds a set from wire names; unknown names are skipped (and logged), duplicates
    /// collapse to their first occurrence.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Permissions {
        let mut permissions = Permissions::new();
        for name in names {
            match Permission::from_name(name) {
                Some(p) => permissions.add(p),
                None => log::warn!("Ignoring unknown permission {name:?}"),
            }
        }
        permissions
    }

    /// The wire names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.iter().map(Permission::name).collect()
    }

    /// The JSON array of wire names.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.iter()
                .map(|p| Value::String(p.name().to_owned()))
                .collect(),
        )
    }

    /// Parses a JSON array of strings from a file or token. Unknown names are skipped, like
    /// [`Permissions::from_names`], and so is `system`: it marks the server's own recorder
    /// and must not be granted from outside.
    pub fn from_json(value: &Value) -> Result<Permissions, ConfigError> {
        let Value::Array(items) = value else {
            return Err(invalid("permissions must be an array of strings"));
        };
        let mut names = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Value::String(s) => names.push(s.as_str()),
                _ => return Err(invalid("permissions must be an array of strings")),
            }
        }
        let mut permissions = Permissions::from_names(names);
        if permissions.has(Permission::System) {
            log::warn!("Ignoring permission \"system\" in a configured permission list");
            permissions.remove(Permission::System);
        }
        Ok(permissions)
    }
}

impl PermissionsSpec {
    /// Parses the JSON form: a preset name (unknown → error `unknown permission`) or an
    /// array of permission names. `null` is not accepted here; callers treat it as absent.
    pub fn from_json(value: &Value) -> Result<PermissionsSpec, ConfigError> {
        match value {
            Value::String(name) => {
                if PRESETS.contains(&name.as_str()) {
                    Ok(PermissionsSpec::Preset(name.clone()))
                } else {
                    Err(invalid(UNKNOWN_PERMISSION))
                }
            }
            Value::Array(_) => Ok(PermissionsSpec::List(Permissions::from_json(value)?)),
            _ => Err(invalid(
                "permissions must be a string or an array of strings",
            )),
        }
    }

    /// The JSON form (preset name or array).
    pub fn to_json(&self) -> Value {
        match self {
            PermissionsSpec::Preset(name) => Value::String(name.clone()),
            PermissionsSpec::List(list) => list.to_json(),
        }
    }

    /// The permissions this grants in a group described by `description` (a fresh copy).
    /// A preset name that is somehow unknown expands to nothing.
    pub fn expand(&self, description: &Description) -> Permissions {
        match self {
            PermissionsSpec::Preset(name) => expand_preset(
                name,
                description.allow_recording,
                description.unrestricted_tokens,
            )
            .unwrap_or_default(),
            PermissionsSpec::List(list) => list.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(spec: &str, allow_recording: bool, unrestricted_tokens: bool) -> Vec<&'static str> {
        expand_preset(spec, allow_recording, unrestricted_tokens)
            .unwrap()
            .names()
    }

    #[test]
    fn presets_expand() {
        assert_eq!(
            names("op", false, false),
            ["op", "present", "message", "caption", "token"]
        );
        assert_eq!(names("present", false, false), ["present", "message"]);
        assert_eq!(names("message", false, false), ["message"]);
        assert!(names("observe", false, false).is_empty());
        assert_eq!(names("caption", false, false), ["caption"]);
        assert_eq!(names("admin", false, false), ["admin"]);
        assert!(expand_preset("root", false, false).is_none());
    }

    #[test]
    fn allow_recording_and_unrestricted_tokens() {
        assert_eq!(
            names("op", true, false),
            ["record", "op", "present", "message", "caption", "token"]
        );
        assert_eq!(names("present", true, false), ["present", "message"]);
        assert_eq!(
            names("present", false, true),
            ["token", "present", "message"]
        );
        // op already has token: nothing more is added.
        assert_eq!(
            names("op", true, true),
            ["record", "op", "present", "message", "caption", "token"]
        );
        assert_eq!(names("message", true, true), ["message"]);
    }

    #[test]
    fn spec_parsing() {
        assert_eq!(
            PermissionsSpec::from_json(&json!("op")).unwrap(),
            PermissionsSpec::Preset("op".into())
        );
        assert_eq!(
            PermissionsSpec::from_json(&json!("superuser")).unwrap_err(),
            ConfigError::Invalid(UNKNOWN_PERMISSION.into())
        );
        let list = PermissionsSpec::from_json(&json!(["present", "bogus", "op", "present"]));
        assert_eq!(
            list.unwrap(),
            PermissionsSpec::List([Permission::Present, Permission::Op].into_iter().collect())
        );
        assert_eq!(
            Permissions::from_json(&json!(["system", "op"]))
                .unwrap()
                .names(),
            ["op"]
        );
        assert!(PermissionsSpec::from_json(&json!(3)).is_err());
        assert!(PermissionsSpec::from_json(&json!(["op", 3])).is_err());
    }

    #[test]
    fn explicit_lists_are_verbatim_and_copies_are_independent() {
        let desc = Description {
            allow_recording: true,
            unrestricted_tokens: true,
            ..Description::default()
        };
        let list = PermissionsSpec::from_json(&json!(["present"])).unwrap();
        assert_eq!(list.expand(&desc).names(), ["present"]);
        let preset = PermissionsSpec::Preset("present".into());
        let mut first = preset.expand(&desc);
        first.remove(Permission::Present);
        assert_eq!(
            preset.expand(&desc).names(),
            ["token", "present", "message"]
        );
        assert_eq!(list.to_json(), json!(["present"]));
        assert_eq!(preset.to_json(), json!("present"));
    }
}
