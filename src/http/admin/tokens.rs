//! `.groups/<g>/.tokens/…` and `.groups/.tokens/…` (global tokens): list, create with a name
//! the server makes, read, edit and delete stateful tokens (invitations). Unlike group
//! writes, token writes do not need `writableGroups` (as in Galène).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;

use super::{AdminFile, Answer, Call, plain_not_found, string_array};
use crate::config::StatefulToken;
use crate::config::token::tokens_text;
use crate::http::Response;

/// Random bytes in a token name made by the server (Galène's 8, base64url).
const TOKEN_NAME_BYTES: usize = 8;

/// A fresh token name: 8 random bytes, base64url without padding.
fn new_token_name() -> Option<String> {
    use aws_lc_rs::rand::SecureRandom as _;
    let mut bytes = [0u8; TOKEN_NAME_BYTES];
    aws_lc_rs::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Parses a token sent to the API; it must not name itself nor its group (400
/// `overspecified token`).
fn template(body: Value) -> Result<StatefulToken, String> {
    let token = StatefulToken::from_json(body).map_err(|e| e.to_string())?;
    if !token.token.is_empty() || !token.group.is_empty() {
        return Err("overspecified token".into());
    }
    Ok(token)
}

impl Call<'_, '_> {
    /// Everything under `.tokens` of `group` (`""`: the global tokens).
    pub(super) fn tokens(&mut self, group: &str, path: &str) -> Answer {
        if path.is_empty() {
            return plain_not_found();
        }
        if let Some(answer) = self.cors("HEAD, GET, POST, PUT, DELETE") {
            return answer;
        }
        if let Some(refusal) = self.require_group_admin(group) {
            return refusal;
        }
        if !group.is_empty() && self.group_entry(group).is_none() {
            return Answer::NotFoundPage;
        }
        match path.strip_prefix('/') {
            Some("") => self.token_list(group),
            Some(name) => self.token(group, name),
            None => plain_not_found(),
        }
    }

    /// Writes the tokens file (removed when no token is left).
    fn save_tokens(&mut self, tokens: &BTreeMap<String, StatefulToken>) -> Result<(), Answer> {
        let text = (!tokens.is_empty()).then(|| tokens_text(tokens));
        self.write(AdminFile::Tokens, text.as_deref())
    }

    /// `.tokens/`: `GET` the names of the group's tokens (sorted by expiry), `POST` a new one.
    fn token_list(&mut self, group: &str) -> Answer {
        match self.method() {
            "HEAD" | "GET" => {
                let (tokens, etag) = self.read_tokens();
                let mut list: Vec<&StatefulToken> =
                    tokens.values().filter(|t| t.group == group).collect();
                list.sort_by(|a, b| {
                    a.expires
                        .cmp(&b.expires)
                        .then_with(|| a.token.cmp(&b.token))
                });
                let names: Vec<String> = list.iter().map(|t| t.token.clone()).collect();
                self.json(200, string_array(&names), etag.as_deref())
            }
            "POST" => {
                let body = match self.json_body("application/json") {
                    Ok(body) => body,
                    Err(answer) => return answer,
                };
                let mut token = match template(body) {
                    Ok(token) => token,
                    Err(why) => return self.finish(Response::text(400, &why)),
                };
                let (mut tokens, _) = self.read_tokens();
                let Some(name) = (0..4)
                    .filter_map(|_| new_token_name())
                    .find(|n| !tokens.contains_key(n))
                else {
                    log::error!("admin API: cannot make a token name");
                    return self.finish(super::internal_error());
                };
                token.token = name.clone();
                token.group = group.to_owned();
                token.issued_at.get_or_insert(self.request.now);
                if token.issued_by.is_none() {
                    token.issued_by = self.issuer();
                }
                tokens.insert(name.clone(), token);
                if let Err(answer) = self.save_tokens(&tokens) {
                    return answer;
                }
                let mut response = Response::new(201);
                response.set_header("Location", &name);
                self.finish(response)
            }
            _ => self
                .allow_methods(&["HEAD", "GET", "POST"])
                .unwrap_or(Answer::NotFoundPage),
        }
    }

    /// `.tokens/<t>`: read, create or replace, delete one token.
    fn token(&mut self, group: &str, name: &str) -> Answer {
        let (mut tokens, file_etag) = self.read_tokens();
        let existing = tokens.get(name).cloned();
        let etag = if existing.is_some() {
            file_etag.unwrap_or_default()
        } else {
            String::new()
        };
        match self.method() {
            "HEAD" | "GET" => {
                let Some(token) = existing else {
                    return Answer::NotFoundPage;
                };
                if token.group != group {
                    return plain_not_found();
                }
                if let Some(answer) = self.preconditions(&etag) {
                    return answer;
                }
                self.json(200, token.to_shown_json(), Some(&etag))
            }
            "PUT" => {
                if existing.as_ref().is_some_and(|t| t.group != group) {
                    return self.finish(Response::text(409, "token exists in different group"));
                }
                if let Some(answer) = self.preconditions(&etag) {
                    return answer;
                }
                let body = match self.json_body("application/json") {
                    Ok(body) => body,
                    Err(answer) => return answer,
                };
                let mut token = match template(body) {
                    Ok(token) => token,
                    Err(why) => return self.finish(Response::text(400, &why)),
                };
                token.token = name.to_owned();
                token.group = group.to_owned();
                tokens.insert(name.to_owned(), token);
                if let Err(answer) = self.save_tokens(&tokens) {
                    return answer;
                }
                self.done(if existing.is_some() { 204 } else { 201 })
            }
            "DELETE" => {
                let Some(token) = existing else {
                    return Answer::NotFoundPage;
                };
                if token.group != group {
                    return plain_not_found();
                }
                if let Some(answer) = self.preconditions(&etag) {
                    return answer;
                }
                tokens.remove(name);
                if let Err(answer) = self.save_tokens(&tokens) {
                    return answer;
                }
                self.done(204)
            }
            _ => self
                .allow_methods(&["HEAD", "GET", "PUT", "DELETE"])
                .unwrap_or(Answer::NotFoundPage),
        }
    }
}
