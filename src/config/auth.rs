//! The authentication decision for a join, a WHIP session, the admin API or the recordings
//! browser (as Galène decides it; docs/configuration.md, "Authentication"), as one pure function:
//! [`authenticate`].
//!
//! 1. With a token: a JWT (verified with the group's `authKeys`) or else a stateful token
//!    looked up by name. A token that sets no username while the client gave none →
//!    [`AuthError::NeedUsername`]. The token must be valid for the group. The username is the
//!    token's; when that is empty the client's is used, unless it names a user of the group
//!    file ([`AuthError::DuplicateUsername`]). Permissions are the token's, verbatim.
//! 2. Without a token but with a username: a user of the group file must match the password
//!    (no fallback to the wildcard user); otherwise the wildcard user, if its password
//!    matches. Permissions are the preset expansion for the group.
//! 3. Neither: [`AuthError::Internal`] (Galène answers `internal server error`).
//! 4. Finally, the username must be valid (docs/configuration.md, "Names").

use std::time::SystemTime;

use super::jwt::parse_jwt;
use super::names::valid_username;
use super::{GroupEntry, Password, Permissions, StatefulToken};

/// What the client presented.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// The username; `None` when the client sent none (JSON `null` or absent), which differs
    /// from `Some("")`.
    pub username: Option<&'a str>,
    /// The password; `None` is the same as `""`.
    pub password: Option<&'a str>,
    /// A JWT or stateful token name; `None` or `""` means no token.
    pub token: Option<&'a str>,
}

/// A successful authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The username the client will have in the group.
    pub username: String,
    /// Its permissions (a fresh copy).
    pub permissions: Permissions,
}

/// Why authentication failed; maps to Galène's `joined` `fail` message (docs/galene.md, "Joining").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The token sets no username and the client supplied none.
    NeedUsername,
    /// The chosen username belongs to a user of the group file.
    DuplicateUsername,
    /// Bad password, unknown user, invalid token or invalid username; the text says which
    /// (for the log only, never sent to the client).
    NotAuthorised(String),
    /// Neither username nor token was supplied.
    Internal(String),
}

impl AuthError {
    /// The `error` field of the `joined` `fail` message, if any.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            AuthError::NeedUsername => Some("need-username"),
            AuthError::DuplicateUsername => Some("duplicate-username"),
            AuthError::NotAuthorised(_) | AuthError::Internal(_) => None,
        }
    }

    /// The `value` text of the `joined` `fail` message.
    pub fn message(&self) -> &'static str {
        match self {
            AuthError::NeedUsername => "username required",
            AuthError::DuplicateUsername => "this username is taken",
            AuthError::NotAuthorised(_) => "not authorised",
            AuthError::Internal(_) => "internal server error",
        }
    }

    /// Whether Galène delays the answer (200 ms) to slow down password guessing.
    pub fn is_not_authorised(&self) -> bool {
        matches!(self, AuthError::NotAuthorised(_))
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::NotAuthorised(why) | AuthError::Internal(why) => {
                write!(f, "{}: {why}", self.message())
            }
            _ => f.write_str(self.message()),
        }
    }
}

impl std::error::Error for AuthError {}

/// A parsed token of either kind.
enum Token {
    Jwt(super::jwt::Jwt),
    Stateful(StatefulToken),
}

/// Decides who the client is in `group` and with which permissions (docs/configuration.md,
/// "Authentication").
///
/// `canonical_host` is `config.json`'s `canonicalHost` (JWT audiences must name it);
/// `lookup_token` finds a stateful token by name. Bcrypt and PBKDF2 checks are deliberately
/// slow (milliseconds); everything else is cheap.
pub fn authenticate(
    group: &GroupEntry,
    creds: Credentials<'_>,
    canonical_host: Option<&str>,
    now: SystemTime,
    lookup_token: impl FnMut(&str) -> Option<StatefulToken>,
) -> Result<Authenticated, AuthError> {
    authenticate_with(
        group,
        creds,
        canonical_host,
        now,
        lookup_token,
        |stored, given| stored.matches(given),
    )
}

/// [`authenticate`] with the password check given: `check(stored, given)` (the admin API
/// remembers recent successful checks, see `http::admin`).
pub fn authenticate_with(
    group: &GroupEntry,
    creds: Credentials<'_>,
    canonical_host: Option<&str>,
    now: SystemTime,
    mut lookup_token: impl FnMut(&str) -> Option<StatefulToken>,
    mut check: impl FnMut(&Password, &str) -> bool,
) -> Result<Authenticated, AuthError> {
    let desc = &group.description;
    let (username, permissions) = match creds.token.filter(|t| !t.is_empty()) {
        Some(text) => {
            let token = match parse_jwt(text, &desc.auth_keys, now) {
                Ok(Some(jwt)) => Token::Jwt(jwt),
                Ok(None) => match lookup_token(text) {
                    Some(stateful) => Token::Stateful(stateful),
                    None => return Err(AuthError::NotAuthorised("unknown token".into())),
                },
                Err(why) => return Err(AuthError::NotAuthorised(why)),
            };
            let needs_username = match &token {
                Token::Jwt(_) => false,
                Token::Stateful(stateful) => stateful.needs_username(),
            };
            if creds.username.is_none() && needs_username {
                return Err(AuthError::NeedUsername);
            }
            let (token_username, permissions) = match token {
                Token::Jwt(jwt) => jwt
                    .check(canonical_host, &group.name)
                    .map_err(AuthError::NotAuthorised)?,
                Token::Stateful(stateful) => {
                    stateful
                        .check(&group.name, now)
                        .map_err(|why| AuthError::NotAuthorised(why.to_string()))?;
                    (
                        stateful.username.unwrap_or_default(),
                        stateful.permissions.unwrap_or_default(),
                    )
                }
            };
            let username = match creds.username {
                Some(chosen) if token_username.is_empty() => {
                    if desc.users.contains_key(chosen) {
                        return Err(AuthError::DuplicateUsername);
                    }
                    chosen.to_owned()
                }
                _ => token_username,
            };
            (username, permissions)
        }
        None => {
            let Some(username) = creds.username else {
                return Err(AuthError::Internal(
                    "neither username nor token provided".into(),
                ));
            };
            let password = creds.password.unwrap_or_default();
            let user = match desc.users.get(username) {
                Some(user) => {
                    if !user.password.as_ref().is_some_and(|p| check(p, password)) {
                        return Err(AuthError::NotAuthorised("bad password".into()));
                    }
                    user
                }
                None => match &desc.wildcard_user {
                    Some(user) if user.password.as_ref().is_some_and(|p| check(p, password)) => {
                        user
                    }
                    _ => return Err(AuthError::NotAuthorised("user not found".into())),
                },
            };
            let permissions = user
                .permissions
                .as_ref()
                .map(|spec| spec.expand(desc))
                .unwrap_or_default();
            (username.to_owned(), permissions)
        }
    };
    if !valid_username(&username) {
        return Err(AuthError::NotAuthorised("invalid username".into()));
    }
    Ok(Authenticated {
        username,
        permissions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::jwt::tests::{NOW, claims, hs256_key, now, sign_hs};
    use crate::config::{Description, Permission};
    use serde_json::json;
    use std::sync::Arc;
    use std::time::Duration;

    fn group(name: &str, desc: serde_json::Value) -> GroupEntry {
        GroupEntry {
            name: name.into(),
            description: Arc::new(Description::from_json(desc).unwrap()),
            is_subgroup: false,
            revision: 1,
        }
    }

    fn city() -> GroupEntry {
        group(
            "city",
            json!({
                "allow-recording": true,
                "users": {
                    "vimes": {"password": "sybil", "permissions": "op"},
                    "nobby": {"permissions": "present"},
                    "carrot": {"password": "angua", "permissions": ["present", "caption"]},
                },
                "wildcard-user": {"password": "guest", "permissions": "present"},
                "authKeys": [hs256_key(&[7u8; 32])],
            }),
        )
    }

    fn login(
        g: &GroupEntry,
        username: Option<&str>,
        password: Option<&str>,
    ) -> Result<Authenticated, AuthError> {
        let creds = Credentials {
            username,
            password,
            token: None,
        };
        authenticate(g, creds, None, now(), |_| None)
    }

    fn with_token(
        g: &GroupEntry,
        username: Option<&str>,
        token: &str,
        stored: Option<StatefulToken>,
    ) -> Result<Authenticated, AuthError> {
        let creds = Credentials {
            username,
            password: None,
            token: Some(token),
        };
        authenticate(g, creds, Some("galene.example.org:8443"), now(), |name| {
            stored.clone().filter(|t| t.token == name)
        })
    }

    fn invitation(group: &str, username: Option<&str>) -> StatefulToken {
        StatefulToken {
            token: "invite".into(),
            group: group.into(),
            include_subgroups: false,
            username: username.map(str::to_owned),
            permissions: Some([Permission::Present].into_iter().collect()),
            expires: Some(now() + Duration::from_secs(60)),
            not_before: None,
            issued_at: None,
            issued_by: None,
        }
    }

    #[test]
    fn password_users() {
        let g = city();
        let vimes = login(&g, Some("vimes"), Some("sybil")).unwrap();
        assert_eq!(vimes.username, "vimes");
        assert_eq!(
            vimes.permissions.names(),
            ["record", "op", "present", "message", "caption", "token"]
        );
        let carrot = login(&g, Some("carrot"), Some("angua")).unwrap();
        assert_eq!(carrot.permissions.names(), ["present", "caption"]);
        // A wrong password for a named user does not fall back to the wildcard user.
        assert!(
            login(&g, Some("vimes"), Some("guest"))
                .unwrap_err()
                .is_not_authorised()
        );
        // A user without password cannot log in.
        assert!(login(&g, Some("nobby"), Some("")).is_err());
        assert!(login(&g, Some("nobby"), None).is_err());
        let guest = login(&g, Some("colon"), Some("guest")).unwrap();
        assert_eq!(guest.username, "colon");
        assert_eq!(guest.permissions.names(), ["present", "message"]);
        assert!(login(&g, Some("colon"), Some("wrong")).is_err());
        assert_eq!(
            login(&g, None, Some("guest")).unwrap_err().message(),
            "internal server error"
        );
        let err = login(&g, Some("../etc"), Some("guest")).unwrap_err();
        assert_eq!(err, AuthError::NotAuthorised("invalid username".into()));
        assert!(login(&g, Some(""), Some("guest")).is_ok());
    }

    #[test]
    fn no_wildcard_user() {
        let g = group("g", json!({"users": {"a": {"password": "x"}}}));
        let a = login(&g, Some("a"), Some("x")).unwrap();
        assert!(a.permissions.is_empty());
        assert_eq!(
            login(&g, Some("b"), Some("x")).unwrap_err(),
            AuthError::NotAuthorised("user not found".into())
        );
    }

    #[test]
    fn stateful_tokens() {
        let g = city();
        let named = invitation("city", Some("carrot2"));
        let ok = with_token(&g, None, "invite", Some(named.clone())).unwrap();
        assert_eq!(ok.username, "carrot2");
        assert_eq!(ok.permissions.names(), ["present"]);
        // The token's username overrides the client's.
        let ok = with_token(&g, Some("other"), "invite", Some(named.clone())).unwrap();
        assert_eq!(ok.username, "carrot2");

        let anonymous = invitation("city", None);
        let err = with_token(&g, None, "invite", Some(anonymous.clone())).unwrap_err();
        assert_eq!(err, AuthError::NeedUsername);
        assert_eq!(err.error_code(), Some("need-username"));
        assert_eq!(err.message(), "username required");
        let ok = with_token(&g, Some("angua"), "invite", Some(anonymous.clone())).unwrap();
        assert_eq!(ok.username, "angua");
        let err = with_token(&g, Some("vimes"), "invite", Some(anonymous.clone())).unwrap_err();
        assert_eq!(err, AuthError::DuplicateUsername);
        assert_eq!(err.error_code(), Some("duplicate-username"));

        // Empty username in the token: the client's name is used.
        let empty = invitation("city", Some(""));
        assert_eq!(
            with_token(&g, Some("x"), "invite", Some(empty.clone()))
                .unwrap()
                .username,
            "x"
        );
        assert_eq!(
            with_token(&g, None, "invite", Some(empty))
                .unwrap()
                .username,
            ""
        );

        let expired = StatefulToken {
            expires: Some(now() - Duration::from_secs(1)),
            ..named.clone()
        };
        assert!(with_token(&g, None, "invite", Some(expired)).is_err());
        let other_group = invitation("elsewhere", Some("a"));
        assert!(with_token(&g, None, "invite", Some(other_group)).is_err());
        assert!(with_token(&g, None, "unknown", Some(named.clone())).is_err());
        // An empty token means "no token": password authentication.
        let creds = Credentials {
            username: Some("vimes"),
            password: Some("sybil"),
            token: Some(""),
        };
        assert!(authenticate(&g, creds, None, now(), |_| None).is_ok());
    }

    #[test]
    fn stateful_token_subgroups() {
        let g = GroupEntry {
            name: "city/watch".into(),
            is_subgroup: true,
            ..city()
        };
        let token = StatefulToken {
            include_subgroups: true,
            ..invitation("city", Some("a"))
        };
        assert!(with_token(&g, None, "invite", Some(token.clone())).is_ok());
        let token = StatefulToken {
            include_subgroups: false,
            ..token
        };
        assert!(with_token(&g, None, "invite", Some(token)).is_err());
    }

    #[test]
    fn jwt_tokens() {
        let g = city();
        let secret = [7u8; 32];
        let token = sign_hs("HS256", &secret, None, &claims("city"));
        let ok = with_token(&g, None, &token, None).unwrap();
        assert_eq!(ok.username, "john");
        assert_eq!(ok.permissions.names(), ["present"]);

        let mut anonymous = claims("city");
        anonymous.as_object_mut().unwrap().remove("sub");
        let token = sign_hs("HS256", &secret, None, &anonymous);
        assert_eq!(with_token(&g, None, &token, None).unwrap().username, "");
        assert_eq!(
            with_token(&g, Some("x"), &token, None).unwrap().username,
            "x"
        );
        assert_eq!(
            with_token(&g, Some("carrot"), &token, None).unwrap_err(),
            AuthError::DuplicateUsername
        );

        let mut expired = claims("city");
        expired["exp"] = json!(NOW - 60);
        let token = sign_hs("HS256", &secret, None, &expired);
        assert!(
            with_token(&g, None, &token, None)
                .unwrap_err()
                .is_not_authorised()
        );

        let wrong_aud = sign_hs("HS256", &secret, None, &claims("elsewhere"));
        assert!(with_token(&g, None, &wrong_aud, None).is_err());
        let wrong_key = sign_hs("HS256", &[9u8; 32], None, &claims("city"));
        assert!(with_token(&g, None, &wrong_key, None).is_err());

        let mut bad_name = claims("city");
        bad_name["sub"] = json!("a//b");
        let token = sign_hs("HS256", &secret, None, &bad_name);
        assert_eq!(
            with_token(&g, None, &token, None).unwrap_err(),
            AuthError::NotAuthorised("invalid username".into())
        );
    }
}
