//! The box's first-run setup (not Galène's): while `data/config.json` has no administrator,
//! `POST /galene-api/v0/.setup` with `{"username", "password"}` creates one (bcrypt, cost 12
//! as `galenectl initial-setup` hashes it) and turns `writableGroups` on, so that the rest
//! is done through the admin page. Only from the box's own network: the caller's address
//! must be loopback, private (RFC 1918, IPv6 ULA) or link-local, and the request must not
//! come through a proxy (`Forwarded`, `X-Forwarded-For`, `X-Real-IP`: behind a proxy on the
//! same machine every client looks local). A browser's `Origin` must be this host. Once an
//! administrator exists the endpoint refuses (403) and `GET` says `"pending": false`.

use std::net::{IpAddr, SocketAddr};

use serde_json::{Value, json};

use super::{AdminFile, Answer, Call, same_host};
use crate::config::Password;
use crate::config::edit::ConfigDocument;
use crate::config::valid_username;
use crate::http::Response;

/// The setup endpoint.
pub const SETUP_PATH: &str = "/galene-api/v0/.setup";

/// bcrypt cost of the administrator's password (galenectl's `initial-setup`).
pub const ADMIN_PASSWORD_COST: u32 = 12;

/// Headers a reverse proxy adds.
const PROXY_HEADERS: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

/// Whether `ip` is on the box's own network: loopback, private, link-local or unique local.
pub fn is_local_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_local_address(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80
            }
        },
    }
}

impl Call<'_, '_> {
    /// Whether the request comes straight from the local network.
    fn is_on_local_network(&self) -> bool {
        let request = self.request.request;
        let proxied = PROXY_HEADERS.iter().any(|h| request.header(h).is_some());
        !proxied
            && self
                .request
                .peer
                .map(|p: SocketAddr| p.ip())
                .is_some_and(is_local_address)
    }

    /// `.setup`: `GET` whether setup is pending (and allowed from here), `POST` to do it.
    pub(super) fn setup(&mut self) -> Answer {
        let pending = match self.config() {
            Ok(config) => !config.has_admin(),
            Err(_) => false,
        };
        let local = self.is_on_local_network();
        match self.method() {
            "GET" | "HEAD" => {
                let mut response = Response::new(200);
                response.set_header("Content-Type", "application/json");
                response.set_header("Cache-Control", "no-cache");
                let body = json!({"pending": pending, "allowed": pending && local});
                response.body = format!("{body}\n").into_bytes().into();
                Answer::Response(response)
            }
            "POST" => self.do_setup(pending, local),
            _ => {
                let mut response = Response::text(405, "method not allowed");
                response.set_header("Allow", "GET, HEAD, POST");
                Answer::Response(response)
            }
        }
    }

    fn do_setup(&mut self, pending: bool, local: bool) -> Answer {
        let refuse = |why: &str| Answer::Response(Response::text(403, why));
        if let Some(origin) = self.request.request.header("origin")
            && !same_host(origin, self.request.request.host())
        {
            return refuse("origin not allowed");
        }
        if !pending {
            return refuse("this server is already set up");
        }
        if !local {
            log::warn!(
                "First-run setup refused to {:?}: not on the local network",
                self.request.peer
            );
            return refuse("the first-run setup is only available from the local network");
        }
        let body = match self.json_body("application/json") {
            Ok(body) => body,
            Err(answer) => return answer,
        };
        let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
        let (Some(username), Some(password)) = (field("username"), field("password")) else {
            return bad("\"username\" and \"password\" are required strings");
        };
        if username.is_empty() || !valid_username(&username) {
            return bad("invalid username");
        }
        if password.is_empty() {
            return bad("the password must not be empty");
        }
        let existing = match self.store.read(&AdminFile::Config) {
            Ok(existing) => existing,
            Err(why) => {
                log::error!("First-run setup: {why}");
                return Answer::Response(super::internal_error());
            }
        };
        let mut document = match ConfigDocument::parse(existing.as_ref().map(|s| s.text.as_str())) {
            Ok(document) => document,
            Err(why) => {
                log::error!("First-run setup: config.json: {why}");
                return Answer::Response(super::internal_error());
            }
        };
        let hash = match Password::bcrypt(&password, ADMIN_PASSWORD_COST) {
            Ok(hash) => hash,
            Err(e) => {
                log::error!("First-run setup: bcrypt: {e}");
                return Answer::Response(super::internal_error());
            }
        };
        if let Err(why) = document.add_admin(&username, hash) {
            return bad(&why.to_string());
        }
        if let Err(answer) = self.write(AdminFile::Config, Some(&document.to_text())) {
            return answer;
        }
        log::warn!(
            "First-run setup from {}: administrator {username:?} created, writableGroups on",
            self.request
                .peer
                .map_or_else(|| "?".to_owned(), |p| p.to_string())
        );
        Answer::Response(Response::new(201))
    }
}

fn bad(why: &str) -> Answer {
    Answer::Response(Response::text(400, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses() {
        for local in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.20",
            "169.254.3.4",
            "::1",
            "fd12::1",
            "fe80::1",
            "::ffff:192.168.1.2",
        ] {
            assert!(is_local_address(local.parse().unwrap()), "{local}");
        }
        for public in [
            "8.8.8.8",
            "172.32.0.1",
            "100.64.0.1",
            "2001:db8::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_local_address(public.parse().unwrap()), "{public}");
        }
    }
}
