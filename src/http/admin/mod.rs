//! Galène's administrative API, `/galene-api/v0/` (docs/admin.md; Galène's rules in
//! docs/galene.md), plus the first-run setup of the box (`.setup`, not Galène's).
//!
//! [`handle`] is a pure function of the request (head and body), the time, the caller's
//! address and an [`AdminStore`], the files it reads and writes. The runtime runs it on its
//! admin thread (`run::admin`) with a store over the real `groups/` and `data/` directories
//! (`run::admin_files`): authentication hashes passwords, so it must not run on the
//! executor, and one thread makes every read-check-write of a file atomic with respect to
//! the others. What needs the engine comes back in the [`AdminReply`]: the statistics, the
//! 404 page, the files that changed (the runtime then touches the groups so that their
//! members see the change at once) and whether a login failed (answered after Galène's
//! 200 ms delay).
//!
//! The rules, in the order Galène applies them: the path picks an endpoint; `OPTIONS` gets
//! the CORS answer without authentication; a state change whose `Origin` is neither this host
//! nor in `allowAdminOrigin` is refused (not Galène's: it would run it); the caller must be an
//! administrator (global, or of the group; for a password, also the user itself with its
//! current password); the method must be one the endpoint has; preconditions (`If-Match`,
//! `If-None-Match`) are checked against the file's ETag (`"<size>-<mtime ns>"`); the body
//! must have the right `Content-Type` (415 with `Accept` otherwise) and parse; group writes
//! need `writableGroups`. Files are rewritten whole (Galène's normal form, see
//! [`crate::config::edit`]).

pub(crate) mod auth;
mod groups;
pub mod memory;
pub mod passwords;
mod setup;
#[cfg(test)]
mod tests;
mod tokens;

use std::net::SocketAddr;
use std::time::SystemTime;

use serde_json::Value;

use super::path::{parse_target, split_kind};
use super::{Request, Response};
use crate::config::{FileNeed, GlobalConfig};

pub use passwords::PasswordChecks;
pub use setup::SETUP_PATH;

/// Where the API lives.
pub const API_PREFIX: &str = "/galene-api/";

/// The largest request body the API reads (Galène's `maxAPIMessageSize`).
pub const MAX_BODY: usize = 1 << 20;

/// bcrypt cost of passwords the API hashes (`POST .password`), as Galène's.
pub const PASSWORD_COST: u32 = 8;

/// A file the API reads or writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AdminFile {
    /// `groups/<name>.json`, exactly (no auto-subgroup resolution).
    Group(String),
    /// `data/config.json`.
    Config,
    /// `data/var/tokens.jsonl`.
    Tokens,
}

impl AdminFile {
    /// What the engine must look at again once this file changed.
    pub fn need(&self) -> FileNeed {
        match self {
            AdminFile::Group(name) => FileNeed::Group(name.clone()),
            AdminFile::Config => FileNeed::Config,
            AdminFile::Tokens => FileNeed::Tokens,
        }
    }
}

/// A file as read: its text and its ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The whole file.
    pub text: String,
    /// `"<size>-<mtime in Unix nanoseconds>"`.
    pub etag: String,
}

/// Why a write did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The file changed since it was read (another writer came in between).
    Conflict,
    /// The write failed; the file is as it was.
    Io(String),
}

/// The files behind the API. The runtime's store reads and writes the real directories;
/// the tests use one in memory.
pub trait AdminStore {
    /// Reads a file (`None`: there is none). The store remembers what it saw, for
    /// [`AdminStore::write`].
    fn read(&mut self, file: &AdminFile) -> Result<Option<Snapshot>, String>;
    /// Replaces the file with `contents` (`None`: removes it), atomically, provided it is
    /// still as last read; its ETag must then differ from the one read. Directories are
    /// created `0700`.
    fn write(&mut self, file: &AdminFile, contents: Option<&str>) -> Result<(), WriteError>;
    /// The names of the group files (`a/b.json` → `a/b`), sorted.
    fn group_names(&mut self) -> Result<Vec<String>, String>;
}

/// One request to the API.
#[derive(Debug, Clone, Copy)]
pub struct AdminRequest<'a> {
    /// The head.
    pub request: &'a Request,
    /// The body (at most [`MAX_BODY`] bytes; the runtime refuses larger ones).
    pub body: &'a [u8],
    /// Who sent it (the first-run setup is only for the local network).
    pub peer: Option<SocketAddr>,
    /// The wall-clock time (token creation times, token and JWT validity).
    pub now: SystemTime,
}

/// What the runtime must send, and what else it must do.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminReply {
    /// The answer.
    pub answer: Answer,
    /// Files that were written: the engine must see them now.
    pub changed: Vec<AdminFile>,
    /// Credentials were given and refused: answer after [`crate::core::NOT_AUTHORISED_DELAY`].
    pub failed_login: bool,
}

/// The answer to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// This response.
    Response(Response),
    /// The site's 404 page.
    NotFoundPage,
    /// This response with the engine's statistics as its body (`.stats`, authorised).
    Stats(Response),
}

/// Whether `path` (decoded, canonical) belongs to the API.
pub fn is_api_path(path: &str) -> bool {
    path.starts_with(API_PREFIX)
}

/// Answers one request to the API. `passwords` remembers recent successful password
/// checks across requests (see [`passwords`]).
pub fn handle(
    request: AdminRequest<'_>,
    store: &mut dyn AdminStore,
    passwords: &mut PasswordChecks,
) -> AdminReply {
    let mut call = Call {
        request,
        store,
        passwords,
        config: None,
        changed: Vec::new(),
        failed_login: false,
    };
    let answer = call.dispatch();
    AdminReply {
        answer,
        changed: call.changed,
        failed_login: call.failed_login,
    }
}

/// One request being answered: the request, the store, and what was learnt on the way.
pub(super) struct Call<'a, 's> {
    request: AdminRequest<'a>,
    store: &'s mut dyn AdminStore,
    passwords: &'s mut PasswordChecks,
    /// `config.json`, read once (`Err`: unreadable or invalid).
    config: Option<Result<GlobalConfig, String>>,
    changed: Vec<AdminFile>,
    failed_login: bool,
}

impl Call<'_, '_> {
    fn dispatch(&mut self) -> Answer {
        let Some(target) = parse_target(&self.request.request.target) else {
            return text(400, "Bad Request");
        };
        let Some(rest) = target.path.strip_prefix("/galene-api") else {
            return plain_not_found();
        };
        let (first, kind, rest) = split_kind(rest);
        if first != "/v0" {
            return plain_not_found();
        }
        match kind {
            ".stats" => self.stats(rest),
            ".groups" => self.groups(rest),
            ".setup" if rest.is_empty() => self.setup(),
            _ => plain_not_found(),
        }
    }

    /// `.stats`: the media statistics, for the global administrator.
    fn stats(&mut self, rest: &str) -> Answer {
        if !rest.is_empty() {
            return plain_not_found();
        }
        if let Some(answer) = self.cors("HEAD, GET") {
            return answer;
        }
        if let Some(refusal) = self.require_global_admin() {
            return refusal;
        }
        if let Some(refusal) = self.allow_methods(&["HEAD", "GET"]) {
            return refusal;
        }
        let mut response = Response::new(200);
        response.set_header("Content-Type", "application/json");
        response.set_header("Cache-Control", "no-cache");
        self.decorate(&mut response);
        Answer::Stats(response)
    }

    fn method(&self) -> &str {
        &self.request.request.method
    }

    fn is_read(&self) -> bool {
        matches!(self.method(), "GET" | "HEAD")
    }

    /// The global configuration (read once per request).
    fn config(&mut self) -> Result<&GlobalConfig, String> {
        if self.config.is_none() {
            let loaded = match self.store.read(&AdminFile::Config) {
                Ok(None) => Ok(GlobalConfig::default()),
                Ok(Some(snapshot)) => {
                    GlobalConfig::from_json_str(&snapshot.text).map_err(|e| e.to_string())
                }
                Err(e) => Err(e),
            };
            if let Err(why) = &loaded {
                log::warn!("config.json: {why}");
            }
            self.config = Some(loaded);
        }
        match &self.config {
            Some(Ok(config)) => Ok(config),
            Some(Err(why)) => Err(why.clone()),
            None => Err("config.json was not read".into()),
        }
    }

    /// The origin of the request, when it is this host or one `allowAdminOrigin` lists.
    fn allowed_origin(&mut self) -> Option<String> {
        let origin = self.request.request.header("origin")?.to_owned();
        if same_host(&origin, self.request.request.host()) {
            return Some(origin);
        }
        let allowed = self
            .config()
            .ok()?
            .allow_admin_origin
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&origin));
        allowed.then_some(origin)
    }

    /// Adds `Vary: Origin` and, for an allowed origin, `Access-Control-Allow-Origin`.
    fn decorate(&mut self, response: &mut Response) {
        response.set_header("Vary", "Origin");
        if let Some(origin) = self.allowed_origin() {
            response.set_header("Access-Control-Allow-Origin", &origin);
        }
    }

    /// Galène's `apiCORS`, then our origin rule for state changes: `Some(answer)` ends the
    /// request (the `OPTIONS` answer, or 403).
    fn cors(&mut self, methods: &str) -> Option<Answer> {
        if self.method() == "OPTIONS" {
            let mut response = Response::new(200);
            self.decorate(&mut response);
            response.set_header(
                "Access-Control-Allow-Methods",
                &format!("OPTIONS, {methods}"),
            );
            response.set_header(
                "Access-Control-Allow-Headers",
                "Authorization, Content-Type",
            );
            return Some(Answer::Response(response));
        }
        if !self.is_read()
            && self.request.request.header("origin").is_some()
            && self.allowed_origin().is_none()
        {
            return Some(self.finish(Response::text(403, "origin not allowed")));
        }
        None
    }

    /// 405 unless the method is one of `methods`.
    fn allow_methods(&mut self, methods: &[&str]) -> Option<Answer> {
        if methods.contains(&self.method()) {
            return None;
        }
        let mut response = Response::text(405, "method not allowed");
        response.set_header("Allow", &format!("OPTIONS, {}", methods.join(", ")));
        Some(self.finish(response))
    }

    /// A response with the CORS headers.
    fn finish(&mut self, mut response: Response) -> Answer {
        self.decorate(&mut response);
        Answer::Response(response)
    }

    /// A JSON body (`Content-Type: application/json`) and a newline, as Go's encoder writes.
    fn json(&mut self, status: u16, text: String, etag: Option<&str>) -> Answer {
        let mut response = Response::new(status);
        response.set_header("Content-Type", "application/json");
        if let Some(etag) = etag.filter(|e| !e.is_empty()) {
            response.set_header("ETag", etag);
        }
        let mut text = text;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        response.body = text.into_bytes().into();
        self.finish(response)
    }

    /// An empty answer with this status (201, 204).
    fn done(&mut self, status: u16) -> Answer {
        self.finish(Response::new(status))
    }

    /// Galène's `checkPreconditions` for a resource whose ETag is `etag` (`""`: it does not
    /// exist): 412, or 304 for a read; `None` to go on.
    fn preconditions(&mut self, etag: &str) -> Option<Answer> {
        let request = self.request.request;
        if let Some(wanted) = request.header("if-match").filter(|h| !h.is_empty())
            && !etag_match(etag, wanted)
        {
            return Some(self.done(412));
        }
        if let Some(unwanted) = request.header("if-none-match").filter(|h| !h.is_empty())
            && etag_match(etag, unwanted)
        {
            if self.is_read() {
                let mut response = Response::new(304);
                if !etag.is_empty() {
                    response.set_header("ETag", etag);
                }
                return Some(self.finish(response));
            }
            return Some(self.done(412));
        }
        None
    }

    /// The body as JSON of `Content-Type: expected`: 415 with `Accept` for another type, 400
    /// when it does not parse.
    fn json_body(&mut self, expected: &str) -> Result<Value, Answer> {
        self.check_content_type(expected)?;
        let mut values =
            serde_json::Deserializer::from_slice(self.request.body).into_iter::<Value>();
        match values.next() {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => Err(self.finish(Response::text(400, &format!("bad JSON: {e}")))),
            None => Err(self.finish(Response::text(400, "bad JSON: empty body"))),
        }
    }

    fn check_content_type(&mut self, expected: &str) -> Result<(), Answer> {
        let given = self
            .request
            .request
            .header("content-type")
            .and_then(media_type);
        if given.is_some_and(|t| t.eq_ignore_ascii_case(expected)) {
            return Ok(());
        }
        let mut response = Response::text(415, "unsupported content type");
        response.set_header("Accept", expected);
        Err(self.finish(response))
    }

    /// Writes a file and records the change; a failure is the answer.
    fn write(&mut self, file: AdminFile, contents: Option<&str>) -> Result<(), Answer> {
        match self.store.write(&file, contents) {
            Ok(()) => {
                if !self.changed.contains(&file) {
                    self.changed.push(file);
                }
                Ok(())
            }
            Err(WriteError::Conflict) => {
                log::info!("admin API: {file:?} changed while a request was editing it");
                Err(self.done(412))
            }
            Err(WriteError::Io(why)) => {
                log::error!("admin API: writing {file:?}: {why}");
                Err(self.finish(internal_error()))
            }
        }
    }

    /// `writableGroups` must be on for group writes: 401 `not authorised` otherwise.
    fn require_writable(&mut self) -> Result<(), Answer> {
        match self.config() {
            Ok(config) if config.writable_groups => Ok(()),
            Ok(_) => Err(self.finish(Response::text(401, "not authorised"))),
            Err(_) => Err(self.finish(internal_error())),
        }
    }
}

/// Whether an `Origin` (`scheme://host[:port]`) names `host`.
fn same_host(origin: &str, host: &str) -> bool {
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(rest))
        .unwrap_or("");
    !origin_host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// The media type of a `Content-Type` value (`application/json; charset=utf-8` →
/// `application/json`); `None` when it is not `type/subtype`.
fn media_type(value: &str) -> Option<&str> {
    let media = value.split(';').next()?.trim();
    let (kind, sub) = media.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
    };
    (token(kind) && token(sub)).then_some(media)
}

/// Galène's `etagMatch`: whether an `If-Match`/`If-None-Match` list names `etag` (`""`:
/// the resource does not exist, which only nothing matches).
fn etag_match(etag: &str, header: &str) -> bool {
    if header == etag {
        return !etag.is_empty();
    }
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches([' ', '\t', '\r', '\n']);
        if rest.is_empty() {
            return false;
        }
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
            continue;
        }
        if rest.starts_with('*') {
            return !etag.is_empty();
        }
        let Some((tag, after)) = scan_etag(rest) else {
            return false;
        };
        if tag == etag {
            return true;
        }
        rest = after;
    }
}

/// One entity tag at the start of `s` (`"x"` or `W/"x"`) and what follows it.
fn scan_etag(s: &str) -> Option<(&str, &str)> {
    let start = if s.starts_with("W/") { 2 } else { 0 };
    let quoted = s.get(start..)?;
    if quoted.len() < 2 || !quoted.starts_with('"') {
        return None;
    }
    for (i, c) in quoted.char_indices().skip(1) {
        match c {
            '"' => return Some((&s[..start + i + 1], &s[start + i + 1..])),
            '\u{21}' | '\u{23}'..='\u{7e}' => {}
            c if u32::from(c) >= 0x80 => {}
            _ => return None,
        }
    }
    None
}

/// Go's `http.NotFound`.
fn plain_not_found() -> Answer {
    Answer::Response(Response::text(404, "404 page not found"))
}

fn text(status: u16, body: &str) -> Answer {
    Answer::Response(Response::text(status, body))
}

fn internal_error() -> Response {
    Response::text(500, "Internal server error")
}

/// A JSON array of strings, as Go encodes a `[]string`.
fn string_array(items: &[String]) -> String {
    Value::Array(items.iter().cloned().map(Value::String).collect()).to_string()
}
