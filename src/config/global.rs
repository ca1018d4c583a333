//! The global configuration file, `data/config.json` (Galène's; docs/configuration.md).
//!
//! Keys match case-insensitively; unknown keys are an error (so the pre-1.0 `publicServer`
//! fails); the obsolete `admin` list is ignored with a log line. A missing file means the
//! default configuration.

use serde_json::Value;

use super::fields::{Fields, Unknown};
use super::group::{first_json_value, parse_users};
use super::{ConfigError, Description, GlobalConfig, Permission};

/// Every field of `config.json`, in canonical spelling.
pub(crate) const CONFIG_FIELDS: [&str; 7] = [
    "users",
    "writableGroups",
    "allowOrigin",
    "allowAdminOrigin",
    "proxyURL",
    "canonicalHost",
    "admin",
];

impl GlobalConfig {
    /// Parses the text of `config.json`.
    pub fn from_json_str(text: &str) -> Result<GlobalConfig, ConfigError> {
        GlobalConfig::from_json(first_json_value(text)?)
    }

    /// Parses the global configuration from a JSON value.
    pub fn from_json(value: Value) -> Result<GlobalConfig, ConfigError> {
        let mut f = Fields::new(value, &CONFIG_FIELDS, Unknown::Reject, "config.json")?;
        let users = match f.take("users") {
            Some(users) => parse_users(users)?,
            None => Default::default(),
        };
        if f.take("admin").is_some() {
            log::info!("config.json: field \"admin\" is obsolete, ignored");
        }
        Ok(GlobalConfig {
            users,
            writable_groups: f.bool("writableGroups")?,
            allow_origin: f.string_list("allowOrigin")?,
            allow_admin_origin: f.string_list("allowAdminOrigin")?,
            proxy_url: f.non_empty_string("proxyURL")?,
            canonical_host: f.non_empty_string("canonicalHost")?,
        })
    }

    /// Whether some user has the `admin` permission and a password it can log in with; until
    /// then the box offers its first-run setup (docs/admin.md).
    pub fn has_admin(&self) -> bool {
        self.users.values().any(|user| {
            user.password.is_some()
                && user
                    .permissions
                    .as_ref()
                    .is_some_and(|spec| spec.expand(&Description::default()).has(Permission::Admin))
        })
    }

    /// Whether `username`/`password` are the credentials of a user with the `admin`
    /// permission (the global administrator of the admin API and the stats page).
    pub fn is_admin(&self, username: &str, password: &str) -> bool {
        let Some(user) = self.users.get(username) else {
            return false;
        };
        let password_ok = user.password.as_ref().is_some_and(|p| p.matches(password));
        password_ok
            && user
                .permissions
                .as_ref()
                .is_some_and(|spec| spec.expand(&Description::default()).has(Permission::Admin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Password, PermissionsSpec};

    #[test]
    fn full_file() {
        let c = GlobalConfig::from_json_str(
            r#"{"users":{"root":{"password":"pw","permissions":"admin"}},
                "writableGroups":true,"allowOrigin":["https://a.example"],
                "allowAdminOrigin":["https://b.example"],"proxyURL":"https://p.example/base",
                "canonicalHost":"galene.example.org:8443","admin":[{"username":"x"}]}"#,
        )
        .unwrap();
        assert!(c.writable_groups);
        assert_eq!(c.allow_origin, ["https://a.example"]);
        assert_eq!(c.allow_admin_origin, ["https://b.example"]);
        assert_eq!(c.proxy_url.as_deref(), Some("https://p.example/base"));
        assert_eq!(c.canonical_host.as_deref(), Some("galene.example.org:8443"));
        let root = &c.users["root"];
        assert_eq!(root.password, Some(Password::Plain("pw".into())));
        assert_eq!(
            root.permissions,
            Some(PermissionsSpec::Preset("admin".into()))
        );
    }

    #[test]
    fn empty_and_case_insensitive() {
        assert_eq!(
            GlobalConfig::from_json_str("{}").unwrap(),
            GlobalConfig::default()
        );
        let c =
            GlobalConfig::from_json_str(r#"{"writablegroups":true,"CANONICALHOST":"h"}"#).unwrap();
        assert!(c.writable_groups);
        assert_eq!(c.canonical_host.as_deref(), Some("h"));
    }

    #[test]
    fn admin_check() {
        let c = GlobalConfig::from_json_str(
            r#"{"users":{"root":{"password":"pw","permissions":"admin"},
                         "op":{"password":"pw","permissions":"op"},
                         "list":{"password":{"type":"wildcard"},"permissions":["admin"]},
                         "nopw":{"permissions":"admin"}}}"#,
        )
        .unwrap();
        assert!(c.is_admin("root", "pw"));
        assert!(!c.is_admin("root", "wrong"));
        assert!(!c.is_admin("op", "pw"));
        assert!(c.is_admin("list", "anything"));
        assert!(!c.is_admin("nopw", ""));
        assert!(!c.is_admin("nobody", "pw"));
        assert!(c.has_admin());
        let no_admin = GlobalConfig::from_json_str(
            r#"{"users":{"op":{"password":"pw","permissions":"op"},
                         "nopw":{"permissions":"admin"}}}"#,
        )
        .unwrap();
        assert!(!no_admin.has_admin());
        assert!(!GlobalConfig::default().has_admin());
    }

    #[test]
    fn errors() {
        for bad in [
            r#"{"publicServer":true}"#,
            r#"{"writableGroups":"yes"}"#,
            r#"{"users":{"a":{"password":"x","bogus":1}}}"#,
            r#"{"allowOrigin":"https://a.example"}"#,
            "[",
            "",
        ] {
            assert!(
                GlobalConfig::from_json_str(bad).is_err(),
                "{bad} should fail"
            );
        }
    }
}
