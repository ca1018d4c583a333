//! Who may call the API (Galène's rules, docs/galene.md "Administrative API"): HTTP Basic and
//! bearer credentials; the global administrator (a `config.json` user with `admin`, or a
//! global stateful token with `admin`); a group's administrator (credentials that give
//! `admin` in that group, JWTs included); and, for a password, the user itself with its
//! current password (the change-password page). A refusal is a 401 with Galène's realm and
//! body, marked as a failed login when credentials were given.

use std::collections::BTreeMap;

use base64::Engine as _;

use super::{AdminFile, Answer, Call};
use crate::config::dir::resolve_group;
use crate::config::edit::{GroupDocument, UserSlot};
use crate::config::{
    Credentials, Description, GroupEntry, Permission, StatefulToken, authenticate_with,
    parse_tokens,
};
use crate::http::{Request, Response};

/// The credentials of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Caller {
    /// `Authorization: Basic`: user name and password.
    pub(super) basic: Option<(String, String)>,
    /// `Authorization: Bearer`: a token (stateful or JWT).
    pub(super) bearer: Option<String>,
}

impl Caller {
    /// The credentials in the request's `Authorization` headers.
    pub(super) fn of(request: &Request) -> Caller {
        let mut caller = Caller::default();
        for (name, value) in &request.headers {
            if !name.eq_ignore_ascii_case("authorization") {
                continue;
            }
            if caller.basic.is_none() {
                caller.basic = basic_credentials(value);
            }
            if caller.bearer.is_none() {
                caller.bearer = bearer_token(value);
            }
        }
        caller
    }

    fn has_credentials(&self) -> bool {
        self.basic.is_some() || self.bearer.is_some()
    }
}

/// Go's `Request.BasicAuth`.
pub(crate) fn basic_credentials(value: &str) -> Option<(String, String)> {
    let value = value.trim();
    let prefix = value.get(..6)?;
    if !prefix.eq_ignore_ascii_case("basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.get(6..)?.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Galène's `parseBearerToken`: the first `Bearer <token>` of a comma-separated list.
fn bearer_token(value: &str) -> Option<String> {
    value.split(',').find_map(|part| {
        let mut words = part.trim_matches([' ', '\t']).split(' ');
        match (words.next(), words.next(), words.next()) {
            (Some(scheme), Some(token), None)
                if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() =>
            {
                Some(token.to_owned())
            }
            _ => None,
        }
    })
}

impl Call<'_, '_> {
    fn caller(&self) -> Caller {
        Caller::of(self.request.request)
    }

    /// The stateful tokens, by name (none when the file is unreadable).
    pub(super) fn read_tokens(&mut self) -> (BTreeMap<String, StatefulToken>, Option<String>) {
        match self.store.read(&AdminFile::Tokens) {
            Ok(Some(snapshot)) => (parse_tokens(&snapshot.text), Some(snapshot.etag)),
            Ok(None) => (BTreeMap::new(), None),
            Err(why) => {
                log::warn!("tokens.jsonl: {why}");
                (BTreeMap::new(), None)
            }
        }
    }

    /// The group file stored under exactly `name`, parsed; `Ok(None)` when there is none,
    /// `Err` when it cannot be read or parsed.
    pub(super) fn group_document(
        &mut self,
        name: &str,
    ) -> Result<Option<(GroupDocument, String)>, String> {
        let Some(snapshot) = self.store.read(&AdminFile::Group(name.to_owned()))? else {
            return Ok(None);
        };
        let document =
            GroupDocument::parse(&snapshot.text).map_err(|e| format!("groups/{name}.json: {e}"))?;
        Ok(Some((document, snapshot.etag)))
    }

    /// The group `name` as a join would find it (auto-subgroups resolved).
    pub(super) fn group_entry(&mut self, name: &str) -> Option<GroupEntry> {
        let store = &mut *self.store;
        let loaded = resolve_group(name, |candidate| {
            match store.read(&AdminFile::Group(candidate.to_owned())) {
                Ok(Some(snapshot)) => Description::from_json_str(&snapshot.text)
                    .map(|d| Some((std::sync::Arc::new(d), 0))),
                Ok(None) => Ok(None),
                Err(why) => Err(crate::config::ConfigError::Io(why)),
            }
        });
        match loaded {
            Ok(entry) => entry,
            Err(why) => {
                log::warn!("admin API: group {name:?}: {why}");
                None
            }
        }
    }

    /// Whether the caller is the global administrator.
    fn is_global_admin(&mut self, caller: &Caller) -> bool {
        if let Some((user, password)) = &caller.basic {
            let admin_password = self.config().ok().and_then(|config| {
                let entry = config.users.get(user)?;
                let is_admin = entry.permissions.as_ref().is_some_and(|spec| {
                    spec.expand(&Description::default()).has(Permission::Admin)
                });
                entry.password.clone().filter(|_| is_admin)
            });
            let now = self.request.now;
            if admin_password.is_some_and(|stored| self.passwords.check(&stored, password, now)) {
                return true;
            }
        }
        // Only a stateful token can be global: a JWT needs a group's keys.
        if let Some(bearer) = &caller.bearer {
            let now = self.request.now;
            let (tokens, _) = self.read_tokens();
            return tokens.get(bearer).is_some_and(|token| {
                token.check("", now).is_ok()
                    && token
                        .permissions
                        .as_ref()
                        .is_some_and(|p| p.has(Permission::Admin))
            });
        }
        false
    }

    /// Whether the caller is an administrator of `group` (the global one included).
    fn is_group_admin(&mut self, caller: &Caller, group: &str) -> bool {
        if self.is_global_admin(caller) {
            return true;
        }
        if group.is_empty() || !caller.has_credentials() {
            return false;
        }
        let Some(entry) = self.group_entry(group) else {
            return false;
        };
        let canonical_host = self.config().ok().and_then(|c| c.canonical_host.clone());
        let (tokens, _) = if caller.bearer.is_some() {
            self.read_tokens()
        } else {
            (BTreeMap::new(), None)
        };
        let credentials = Credentials {
            username: caller.basic.as_ref().map(|(u, _)| u.as_str()),
            password: caller.basic.as_ref().map(|(_, p)| p.as_str()),
            token: caller.bearer.as_deref(),
        };
        let now = self.request.now;
        let passwords = &mut *self.passwords;
        authenticate_with(
            &entry,
            credentials,
            canonical_host.as_deref(),
            now,
            |name| tokens.get(name).cloned(),
            |stored, given| passwords.check(stored, given, now),
        )
        .is_ok_and(|auth| auth.permissions.has(Permission::Admin))
    }

    /// Whether the Basic password is `user`'s current password in `group` (the user name in
    /// the header is not compared, as in Galène). Without Basic credentials, never: Galène
    /// would let anybody change the password of a user whose password is a wildcard.
    fn is_own_password(&mut self, caller: &Caller, group: &str, user: &str) -> bool {
        let Some((_, password)) = &caller.basic else {
            return false;
        };
        if user.is_empty() {
            return false;
        }
        let stored = self
            .group_entry(group)
            .and_then(|entry| entry.description.users.get(user).cloned())
            .and_then(|entry| entry.password);
        let now = self.request.now;
        stored.is_some_and(|stored| self.passwords.check(&stored, password, now))
    }

    /// The 401 for a refused caller.
    fn refuse(&mut self, caller: &Caller) -> Answer {
        if caller.has_credentials() {
            self.failed_login = true;
        }
        let mut response = Response::text(401, "Haha!");
        response.set_header("WWW-Authenticate", "basic realm=\"/galene-api/\"");
        self.finish(response)
    }

    /// `None` when the caller is the global administrator, else the refusal.
    pub(super) fn require_global_admin(&mut self) -> Option<Answer> {
        let caller = self.caller();
        if self.is_global_admin(&caller) {
            return None;
        }
        Some(self.refuse(&caller))
    }

    /// `None` when the caller administers `group` (`""`: the global administrator only).
    pub(super) fn require_group_admin(&mut self, group: &str) -> Option<Answer> {
        let caller = self.caller();
        if self.is_group_admin(&caller, group) {
            return None;
        }
        Some(self.refuse(&caller))
    }

    /// `None` when the caller administers `group` or gives `slot`'s current password.
    pub(super) fn require_admin_or_password(
        &mut self,
        group: &str,
        slot: UserSlot<'_>,
    ) -> Option<Answer> {
        let caller = self.caller();
        if let UserSlot::Named(user) = slot
            && self.is_own_password(&caller, group, user)
        {
            return None;
        }
        if self.is_group_admin(&caller, group) {
            return None;
        }
        Some(self.refuse(&caller))
    }

    /// Who made a change, for a token's `issuedBy`: the Basic user name, or what the bearer
    /// token says.
    pub(super) fn issuer(&mut self) -> Option<String> {
        let caller = self.caller();
        if let Some((user, _)) = caller.basic {
            return Some(user);
        }
        let bearer = caller.bearer?;
        let (tokens, _) = self.read_tokens();
        let token = tokens.get(&bearer)?;
        token.issued_by.clone().or_else(|| token.username.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_headers() {
        assert_eq!(
            basic_credentials("Basic YWxpY2U6cHc6eA=="),
            Some(("alice".into(), "pw:x".into()))
        );
        assert_eq!(
            basic_credentials("basic YWxpY2U6"),
            Some(("alice".into(), String::new()))
        );
        assert_eq!(basic_credentials("Basic !!"), None);
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(bearer_token("Bearer abc"), Some("abc".into()));
        assert_eq!(bearer_token("Basic x, bearer tok"), Some("tok".into()));
        assert_eq!(bearer_token("Bearer a b"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }
}
