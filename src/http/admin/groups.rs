//! `.groups/…`: the list of groups, a group's description, its users (named, empty and
//! wildcard), their passwords and the group's JWT keys (Galène's endpoints; tokens are in
//! `tokens.rs`).

use serde_json::Value;

use super::{AdminFile, Answer, Call, PASSWORD_COST, plain_not_found, string_array};
use crate::config::edit::{EditError, GroupDocument, UserSlot};
use crate::config::{Password, valid_group_name};
use crate::http::Response;
use crate::http::path::{clean, split_kind};

/// The group name in a path's first part (`/a/b/` → `a/b`); `""` for none.
fn group_name(first: &str) -> String {
    let name = first.strip_prefix('/').unwrap_or(first);
    if name.is_empty() {
        return String::new();
    }
    clean(&format!("/{name}"))
        .trim_start_matches('/')
        .to_owned()
}

impl Call<'_, '_> {
    /// Everything under `.groups`.
    pub(super) fn groups(&mut self, path: &str) -> Answer {
        let (first, kind, rest) = split_kind(path);
        let group = group_name(first);
        match kind {
            "" if group.is_empty() => self.group_list(),
            "" => self.group(&group),
            ".users" => self.users(&group, rest),
            ".empty-user" => self.special_user(&group, rest, UserSlot::Named("")),
            ".wildcard-user" => self.special_user(&group, rest, UserSlot::Wildcard),
            ".keys" if rest.is_empty() => self.keys(&group),
            ".tokens" => self.tokens(&group, rest),
            _ => {
                if let Some(refusal) = self.require_group_admin(&group) {
                    return refusal;
                }
                Answer::NotFoundPage
            }
        }
    }

    /// `.groups/`: the names of the group files.
    fn group_list(&mut self) -> Answer {
        if let Some(answer) = self.cors("HEAD, GET") {
            return answer;
        }
        if let Some(refusal) = self.require_global_admin() {
            return refusal;
        }
        if let Some(refusal) = self.allow_methods(&["HEAD", "GET"]) {
            return refusal;
        }
        match self.store.group_names() {
            Ok(names) => self.json(200, string_array(&names), None),
            Err(why) => {
                log::error!("admin API: listing groups: {why}");
                self.finish(super::internal_error())
            }
        }
    }

    /// A group's file, or the answer when it cannot be used: the 404 page when it does not
    /// exist (unless `missing_ok`), 500 when it cannot be read or parsed.
    fn load_group(
        &mut self,
        group: &str,
        missing_ok: bool,
    ) -> Result<Option<(GroupDocument, String)>, Answer> {
        if !valid_group_name(group) {
            return Err(Answer::NotFoundPage);
        }
        match self.group_document(group) {
            Ok(None) if !missing_ok => Err(Answer::NotFoundPage),
            Ok(found) => Ok(found),
            Err(why) => {
                log::error!("admin API: {why}");
                Err(self.finish(Response::text(
                    500,
                    &format!("Internal server error: {why}"),
                )))
            }
        }
    }

    /// Writes a group's file after the `writableGroups` check.
    fn save_group(&mut self, group: &str, document: Option<&GroupDocument>) -> Result<(), Answer> {
        self.require_writable()?;
        let text = document.map(GroupDocument::to_text);
        self.write(AdminFile::Group(group.to_owned()), text.as_deref())
    }

    /// The answer to a refused edit.
    fn edit_error(&mut self, error: EditError) -> Answer {
        match error {
            EditError::NotFound => Answer::NotFoundPage,
            EditError::BadRequest(why) => self.finish(Response::text(400, &why)),
        }
    }

    /// `.groups/<g>`: the description without users and keys.
    fn group(&mut self, group: &str) -> Answer {
        if let Some(answer) = self.cors("HEAD, GET, PUT, DELETE") {
            return answer;
        }
        if let Some(refusal) = self.require_group_admin(group) {
            return refusal;
        }
        match self.method() {
            "HEAD" | "GET" => {
                let (document, etag) = match self.load_group(group, false) {
                    Ok(Some(found)) => found,
                    Ok(None) => return Answer::NotFoundPage,
                    Err(answer) => return answer,
                };
                if let Some(answer) = self.preconditions(&etag) {
                    return answer;
                }
                self.json(200, document.sanitised_text(), Some(&etag))
            }
            "PUT" => {
                let old = match self.load_group(group, true) {
                    Ok(old) => old,
                    Err(answer) => return answer,
                };
                let etag = old
                    .as_ref()
                    .map(|(_, etag)| etag.clone())
                    .unwrap_or_default();
                if let Some(answer) = self.preconditions(&etag) {
                    return answer;
                }
                let body = match self.json_body("application/json") {
                    Ok(body) => body,
                    Err(answer) => return answer,
                };
                let document = match GroupDocument::from_public(body, old.as_ref().map(|(d, _)| d))
                {
                    Ok(document) => document,
                    Err(error) => return self.edit_error(error),
                };
                if let Err(answer) = self.save_group(group, Some(&document)) {
                    return answer;
                }
                self.done(if old.is_some() { 204 } else { 201 })
            }
            "DELETE" => {
                let etag = match self.load_group(group, false) {
                    Ok(Some((_, etag))) => etag,
                    Ok(None) => return Answer::NotFoundPage,
                    Err(answer) => return answer,
                };
                if let Some(answer) = self.preconditions(&etag) {
                    return answer;
                }
                if let Err(answer) = self.save_group(group, None) {
                    return answer;
                }
                self.done(204)
            }
            _ => self
                .allow_methods(&["HEAD", "GET", "PUT", "DELETE"])
                .unwrap_or(Answer::NotFoundPage),
        }
    }

    /// `.groups/<g>/.users…`: the list (`/`), a user (`/<u>`) or its password
    /// (`/<u>/.password`).
    fn users(&mut self, group: &str, path: &str) -> Answer {
        if path.is_empty() {
            return plain_not_found();
        }
        if path == "/" {
            return self.user_list(group);
        }
        let (first, kind, rest) = split_kind(path);
        let user = first.strip_prefix('/').unwrap_or(first);
        match (kind, rest) {
            ("", _) if !user.is_empty() => self.user(group, UserSlot::Named(user)),
            (".password", "") if !user.is_empty() => self.password(group, UserSlot::Named(user)),
            _ => {
                if let Some(refusal) = self.require_group_admin(group) {
                    return refusal;
                }
                Answer::NotFoundPage
            }
        }
    }

    /// `.empty-user` and `.wildcard-user`: the user (``) or its password (`/.password`).
    fn special_user(&mut self, group: &str, path: &str, slot: UserSlot<'_>) -> Answer {
        match path {
            "" => self.user(group, slot),
            "/.password" => self.password(group, slot),
            _ => {
                if let Some(refusal) = self.require_group_admin(group) {
                    return refusal;
                }
                Answer::NotFoundPage
            }
        }
    }

    /// `.users/`: the user names.
    fn user_list(&mut self, group: &str) -> Answer {
        if let Some(answer) = self.cors("HEAD, GET") {
            return answer;
        }
        if let Some(refusal) = self.require_group_admin(group) {
            return refusal;
        }
        if let Some(refusal) = self.allow_methods(&["HEAD", "GET"]) {
            return refusal;
        }
        let (document, etag) = match self.load_group(group, false) {
            Ok(Some(found)) => found,
            Ok(None) => return Answer::NotFoundPage,
            Err(answer) => return answer,
        };
        if let Some(answer) = self.preconditions(&etag) {
            return answer;
        }
        self.json(200, string_array(&document.user_names()), Some(&etag))
    }

    /// A user: `{"permissions": …}`, never its password.
    fn user(&mut self, group: &str, slot: UserSlot<'_>) -> Answer {
        if let Some(answer) = self.cors("HEAD, GET, PUT, DELETE") {
            return answer;
        }
        if let Some(refusal) = self.require_group_admin(group) {
            return refusal;
        }
        if let Some(refusal) = self.allow_methods(&["HEAD", "GET", "PUT", "DELETE"]) {
            return refusal;
        }
        let (mut document, group_etag) = match self.load_group(group, false) {
            Ok(Some(found)) => found,
            Ok(None) => return Answer::NotFoundPage,
            Err(answer) => return answer,
        };
        let existing = document.user(slot);
        // A user's ETag is its group file's; a missing user has none.
        let etag = if existing.is_some() {
            group_etag
        } else {
            String::new()
        };
        match self.method() {
            "HEAD" | "GET" => {
                let Some(user) = existing else {
                    return Answer::NotFoundPage;
                };
                if let Some(answer) = self.preconditions(&etag) {
                    return answer;
                }
                self.json(200, user.to_string(), Some(&etag))
            }
            "PUT" => {
                if let Some(answer) = self.preconditions(&etag) {
                    return answer;
                }
                let body = match self.json_body("application/json") {
                    Ok(body) => body,
                    Err(answer) => return answer,
                };
                let created = match document.put_user(slot, body) {
                    Ok(created) => created,
                    Err(error) => return self.edit_error(error),
                };
                if let Err(answer) = self.save_group(group, Some(&document)) {
                    return answer;
                }
                self.done(if created { 201 } else { 204 })
            }
            _ => {
                if existing.is_none() {
                    return Answer::NotFoundPage;
                }
                if let Some(answer) = self.preconditions(&etag) {
                    return answer;
                }
                if let Err(error) = document.delete_user(slot) {
                    return self.edit_error(error);
                }
                if let Err(answer) = self.save_group(group, Some(&document)) {
                    return answer;
                }
                self.done(204)
            }
        }
    }

    /// `…/.password`: `PUT` a password as JSON, `POST` one as text (stored as bcrypt),
    /// `DELETE` it. The wildcard user's needs an administrator; a named user may also change
    /// its own with its current password.
    fn password(&mut self, group: &str, slot: UserSlot<'_>) -> Answer {
        if let Some(answer) = self.cors("PUT, POST, DELETE") {
            return answer;
        }
        let refusal = match slot {
            UserSlot::Wildcard => self.require_group_admin(group),
            UserSlot::Named(_) => self.require_admin_or_password(group, slot),
        };
        if let Some(refusal) = refusal {
            return refusal;
        }
        if let Some(refusal) = self.allow_methods(&["PUT", "POST", "DELETE"]) {
            return refusal;
        }
        let password: Option<Value> = match self.method() {
            "PUT" => match self.json_body("application/json") {
                Ok(value) => Some(value),
                Err(answer) => return answer,
            },
            "POST" => {
                if let Err(answer) = self.check_content_type("text/plain") {
                    return answer;
                }
                let Ok(text) = std::str::from_utf8(self.request.body) else {
                    return self.finish(Response::text(400, "the password is not UTF-8"));
                };
                match Password::bcrypt(text, PASSWORD_COST) {
                    Ok(hash) => Some(hash.to_json()),
                    Err(e) => {
                        log::error!("admin API: bcrypt: {e}");
                        return self.finish(super::internal_error());
                    }
                }
            }
            _ => None,
        };
        let mut document = match self.load_group(group, false) {
            Ok(Some((document, _))) => document,
            Ok(None) => return Answer::NotFoundPage,
            Err(answer) => return answer,
        };
        if let Err(error) = document.set_password(slot, password.as_ref()) {
            return self.edit_error(error);
        }
        if let Err(answer) = self.save_group(group, Some(&document)) {
            return answer;
        }
        self.done(204)
    }

    /// `.keys`: `PUT` a JWK set (`application/jwk-set+json`), `DELETE` the keys.
    fn keys(&mut self, group: &str) -> Answer {
        if let Some(answer) = self.cors("PUT, DELETE") {
            return answer;
        }
        if let Some(refusal) = self.require_group_admin(group) {
            return refusal;
        }
        if let Some(refusal) = self.allow_methods(&["PUT", "DELETE"]) {
            return refusal;
        }
        let keys = if self.method() == "PUT" {
            let body = match self.json_body("application/jwk-set+json") {
                Ok(body) => body,
                Err(answer) => return answer,
            };
            let keys = match body {
                Value::Object(mut set) => set
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("keys"))
                    .map(|(k, _)| k.clone())
                    .and_then(|k| set.remove(&k)),
                _ => return self.finish(Response::text(400, "a JWK set must be a JSON object")),
            };
            match keys {
                None | Some(Value::Null) => None,
                Some(Value::Array(keys)) => Some(keys),
                Some(_) => return self.finish(Response::text(400, "\"keys\" must be an array")),
            }
        } else {
            None
        };
        let mut document = match self.load_group(group, false) {
            Ok(Some((document, _))) => document,
            Ok(None) => return Answer::NotFoundPage,
            Err(answer) => return answer,
        };
        if let Err(error) = document.set_keys(keys) {
            return self.edit_error(error);
        }
        if let Err(answer) = self.save_group(group, Some(&document)) {
            return answer;
        }
        self.done(204)
    }
}
