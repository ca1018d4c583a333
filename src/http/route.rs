//! The route table (docs/galene.md, "HTTP"): what each request path gets.
//!
//! [`route`] is a pure function of the request, the static files and the group data. It
//! mimics Go's `http.ServeMux` (301 to the cleaned path, 301 from `/group` to `/group/`)
//! and Galène's handlers: static files, group pages, `.status`, `/public-groups.json`, and
//! the `/ws` upgrade decision.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use super::files::{FileLookup, FileSource, StaticFile, mime_type};
use super::path::{canonical, encode_path, parse_target, split_kind};
pub use super::source::GroupSource;
use super::status::{BaseUrl, public_groups_bytes, status_bytes};
use super::{Request, Response, date};
use crate::app::App;
use crate::config::{ConfigError, GlobalConfig};
use crate::core::{GroupLookup, GroupStatus};

impl GroupSource for App {
    fn group_status(&mut self, now: Instant, name: &str) -> GroupLookup {
        App::group_status(self, now, name)
    }

    fn public_groups(&mut self, now: Instant) -> Vec<GroupStatus> {
        App::public_groups(self, now)
    }

    fn global_config(&mut self) -> Result<Arc<GlobalConfig>, ConfigError> {
        App::global_config(self)
    }

    fn stats_json(&mut self) -> String {
        App::stats_json(self)
    }

    fn recording_access(
        &mut self,
        now: Instant,
        group: &str,
        username: &str,
        password: &str,
    ) -> crate::core::RecordingAccess {
        App::recording_access(self, now, group, username, password)
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// Send this response (headers only for HEAD) and close.
    Response(Response),
    /// Send this response's head, then `file.len` bytes of the recording from `file.start`
    /// (its `Content-Length`; nothing more for HEAD), and close.
    File {
        /// The status and headers (the body is empty).
        response: Response,
        /// What to send.
        file: super::recordings::FileRange,
    },
    /// Accept the WebSocket: send [`super::upgrade_response`] with this key, then speak the
    /// WebSocket protocol on the connection.
    Upgrade {
        /// The `Sec-WebSocket-Accept` value.
        accept_key: String,
        /// The signalling protocol the connection speaks.
        signalling: Signalling,
    },
}

/// Which signalling protocol a WebSocket speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signalling {
    /// Galène's, on `/ws`.
    Galene,
    /// The GStreamer webrtc examples' ([`crate::gst`]), on every other path.
    Gst,
    /// Camus's ([`crate::camus`]), on `/chat/<slug>/ws` and `/room/<slug>/ws`, admitted to
    /// a room (see [`super::camus`]).
    Camus(crate::camus::Admission),
}

/// The health check of the GStreamer examples' server, answered `200 OK` with `OK\n`.
pub const HEALTH_PATH: &str = "/health";

/// The `Content-Security-Policy` of static files; the group's `authServer` is inserted at
/// the start of `connect-src` on group pages.
const CSP_REST: &str = "ws: wss: 'self'; img-src 'self'; media-src blob: 'self'; \
                        script-src 'unsafe-eval' 'self'; default-src 'self'";

/// Decides what a request gets.
pub fn route(
    request: &Request,
    files: &dyn FileSource,
    groups: &mut dyn GroupSource,
    now: Instant,
) -> Routed {
    let Some(target) = parse_target(&request.target) else {
        return respond(Response::text(400, "Bad Request"));
    };
    let path = target.path.as_str();
    if path == HEALTH_PATH {
        return respond(Response::text(200, "OK"));
    }
    // The GStreamer examples' clients upgrade on any path (usually none): every upgrade that
    // is not Galène's speaks their protocol, before any path cleaning or redirect.
    if path != "/ws" && has_token(request, "upgrade", "websocket") {
        log::debug!(
            "WebSocket upgrade on {:?}: GStreamer signalling",
            request.target
        );
        return websocket(request, groups, Signalling::Gst);
    }
    let clean = canonical(path);
    if clean != path {
        let mut location = encode_path(&clean);
        if let Some(query) = target.query {
            location.push('?');
            location.push_str(query);
        }
        return respond(Response::redirect(301, &location));
    }
    match path {
        "/ws" => websocket(request, groups, Signalling::Galene),
        "/public-groups.json" => respond(public_groups(request, groups, now)),
        "/group" => respond(Response::redirect(301, "/group/")),
        "/galene-api" => respond(Response::redirect(301, "/galene-api/")),
        _ if path.starts_with("/galene-api/") => respond(not_found(files)),
        _ if path.starts_with("/group/") => respond(
            canonical_host(request, path, groups)
                .unwrap_or_else(|| group_route(request, path, files, groups, now)),
        ),
        _ => respond(
            canonical_host(request, path, groups)
                .unwrap_or_else(|| static_file(request, path, files)),
        ),
    }
}

fn respond(response: Response) -> Routed {
    Routed::Response(response)
}

/// 301 to `https://<canonicalHost><path>` when the request's `Host` differs, as Galène does.
pub(crate) fn canonical_host(
    request: &Request,
    path: &str,
    groups: &mut dyn GroupSource,
) -> Option<Response> {
    let config = groups.global_config().ok()?;
    let wanted = config.canonical_host.as_deref().filter(|h| !h.is_empty())?;
    if request.host().eq_ignore_ascii_case(wanted) {
        return None;
    }
    Some(Response::redirect(
        301,
        &format!("https://{wanted}{}", encode_path(path)),
    ))
}

fn static_file(request: &Request, path: &str, files: &dyn FileSource) -> Response {
    let name = path.trim_matches('/');
    let response = match files.lookup(name) {
        FileLookup::NotFound => return not_found(files),
        FileLookup::File(file) => serve_file(request, path, mime_type(name), &file),
        FileLookup::Directory if !path.ends_with('/') => {
            return Response::redirect(308, &format!("{}/", encode_path(path)));
        }
        FileLookup::Directory => {
            let index = if name.is_empty() {
                "index.html".to_owned()
            } else {
                format!("{name}/index.html")
            };
            match files.lookup(&index) {
                FileLookup::File(file) => {
                    serve_file(request, path, "text/html; charset=utf-8", &file)
                }
                _ => Response::text(403, "Forbidden"),
            }
        }
    };
    with_security_headers(response, None)
}

/// The 404 page: `404.html` if the site has one, else a one-line fallback.
pub fn not_found(files: &dyn FileSource) -> Response {
    let mut response = Response::new(404);
    response.set_header("Content-Type", "text/html; charset=utf-8");
    response.body = match files.lookup("404.html") {
        FileLookup::File(file) => file.body,
        _ => b"<p>Not found</p>\n"[..].into(),
    };
    with_security_headers(response, None)
}

pub(crate) fn internal_error() -> Response {
    Response::text(500, "Internal server error")
}

pub(crate) fn with_security_headers(mut response: Response, auth_server: Option<&str>) -> Response {
    let csp = match auth_server.filter(|s| !s.is_empty()) {
        Some(server) => format!("connect-src {server} {CSP_REST}"),
        None => format!("connect-src {CSP_REST}"),
    };
    response.set_header("Content-Security-Policy", &csp);
    response.set_header("Referrer-Policy", "no-referrer");
    response.set_header("X-Content-Type-Options", "nosniff");
    response
}

/// Serves a file with `ETag`, `Last-Modified` and `Cache-Control`, answering conditional
/// requests (`If-None-Match`, then `If-Modified-Since`) like Go's `ServeContent`.
pub(crate) fn serve_file(
    request: &Request,
    path: &str,
    content_type: &str,
    file: &StaticFile,
) -> Response {
    let nanos = file
        .modified
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let etag = format!("\"{}-{nanos}\"", file.body.len());
    let max_age = if path.starts_with("/third-party/") {
        86_400
    } else {
        1800
    };
    let mut response = Response::new(200);
    response.set_header("Cache-Control", &format!("max-age={max_age}"));
    response.set_header("ETag", &etag);
    response.set_header("Last-Modified", &date::format(file.modified));
    let get_or_head = request.method == "GET" || request.method == "HEAD";
    if let Some(candidates) = request.header("if-none-match") {
        if etag_matches(candidates, &etag) {
            response.status = if get_or_head { 304 } else { 412 };
            response.remove_header("Last-Modified");
            return response;
        }
    } else if get_or_head
        && let Some(since) = request.header("if-modified-since").and_then(date::parse)
        && file.modified > UNIX_EPOCH
        && whole_seconds(file.modified) <= whole_seconds(since)
    {
        response.status = 304;
        return response;
    }
    response.set_header("Content-Type", content_type);
    response.body = file.body.clone();
    response
}

fn whole_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Weak comparison of a list of entity tags (`If-None-Match`) with ours.
fn etag_matches(candidates: &str, etag: &str) -> bool {
    candidates.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

/// `/group/…`: the group page, `.status`, `.status.json`.
fn group_route(
    request: &Request,
    path: &str,
    files: &dyn FileSource,
    groups: &mut dyn GroupSource,
    now: Instant,
) -> Response {
    let (dir, kind, rest) = split_kind(path);
    match (kind, rest) {
        (".status", "") => return group_status(request, dir, files, groups, now),
        (".status.json", "") => return Response::redirect(308, &format!("{dir}/.status")),
        ("", _) => {}
        _ => return not_found(files),
    }
    let Some(name) = group_name(path) else {
        return not_found(files);
    };
    let status = match groups.group_status(now, &name) {
        GroupLookup::NotFound => return not_found(files),
        GroupLookup::Invalid(why) => {
            log::warn!("group {name:?}: {why}");
            return internal_error();
        }
        GroupLookup::Found(status) => status,
    };
    let page = format!("/group/{name}/");
    if path != page {
        return Response::redirect(308, &encode_path(&page));
    }
    if let Some(redirect) = status.redirect.as_deref().filter(|r| !r.is_empty()) {
        return Response::redirect(308, redirect);
    }
    let response = match files.lookup("galene.html") {
        FileLookup::File(file) => serve_file(request, path, "text/html; charset=utf-8", &file),
        _ => return not_found(files),
    };
    with_security_headers(response, status.auth_server.as_deref())
}

/// The group a `/group/…` path is about (its page or its `.status`), as [`route`] looks it
/// up; the runtime refreshes that group's files before routing the request.
pub fn group_of_path(path: &str) -> Option<String> {
    match split_kind(path) {
        (dir, ".status", "") => group_name(&format!("{dir}/")),
        (_, "", _) => group_name(path),
        _ => None,
    }
}

/// The group name in a `/group/…` path: not starting with `.`, cleaned; `None` if empty.
pub(crate) fn group_name(path: &str) -> Option<String> {
    let name = path.strip_prefix("/group/")?;
    if name.is_empty() || name.starts_with('.') {
        return None;
    }
    let cleaned = super::path::clean(&format!("/{name}"));
    let name = cleaned.strip_prefix('/')?;
    (!name.is_empty()).then(|| name.to_owned())
}

/// `/group/<name>/.status` (fields in docs/galene.md, "HTTP").
fn group_status(
    request: &Request,
    dir: &str,
    files: &dyn FileSource,
    groups: &mut dyn GroupSource,
    now: Instant,
) -> Response {
    let Some(name) = dir
        .strip_prefix("/group/")
        .and_then(|_| group_name(&format!("{dir}/")))
    else {
        return not_found(files);
    };
    let status = match groups.group_status(now, &name) {
        GroupLookup::NotFound => return not_found(files),
        GroupLookup::Invalid(why) => {
            log::warn!("group {name:?}: {why}");
            return internal_error();
        }
        GroupLookup::Found(status) => status,
    };
    let Some(base) = base_url(request, groups) else {
        return internal_error();
    };
    json_response(status_bytes(&status, &base))
}

/// `/public-groups.json`: the status of every public group, sorted by name.
fn public_groups(request: &Request, groups: &mut dyn GroupSource, now: Instant) -> Response {
    let Some(base) = base_url(request, groups) else {
        return internal_error();
    };
    let list = groups.public_groups(now);
    json_response(public_groups_bytes(&list, &base))
}

fn base_url(request: &Request, groups: &mut dyn GroupSource) -> Option<BaseUrl> {
    let config = match groups.global_config() {
        Ok(config) => config,
        Err(error) => {
            log::warn!("config.json: {error}");
            return None;
        }
    };
    match BaseUrl::compute(request.tls, request.host(), config.proxy_url.as_deref()) {
        Ok(base) => Some(base),
        Err(_) => {
            log::warn!("config.json: cannot parse proxyURL {:?}", config.proxy_url);
            None
        }
    }
}

fn json_response(body: Vec<u8>) -> Response {
    let mut response = Response::new(200);
    response.set_header("Content-Type", "application/json");
    response.set_header("Cache-Control", "no-cache");
    response.body = body.into();
    response
}

/// Whether a header's comma-separated list contains `token` (ASCII case-insensitive).
fn has_token(request: &Request, header: &str, token: &str) -> bool {
    request
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(header))
        .flat_map(|(_, value)| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// `/ws`: checks the handshake and the origin, in the order Gorilla does. The
/// GStreamer examples' server checks no origin (its JS page may be served from elsewhere), so
/// neither do we for [`Signalling::Gst`].
pub(crate) fn websocket(
    request: &Request,
    groups: &mut dyn GroupSource,
    signalling: Signalling,
) -> Routed {
    if !has_token(request, "connection", "upgrade") || !has_token(request, "upgrade", "websocket") {
        return respond(Response::text(
            400,
            "websocket: the client is not using the websocket protocol",
        ));
    }
    if request.method != "GET" {
        let mut response = Response::text(405, "websocket: method not GET");
        response.set_header("Allow", "GET");
        return respond(response);
    }
    if !has_token(request, "sec-websocket-version", "13") {
        let mut response = Response::text(400, "websocket: unsupported version");
        response.set_header("Sec-WebSocket-Version", "13");
        return respond(response);
    }
    if signalling != Signalling::Gst && !origin_allowed(request, groups) {
        return respond(Response::text(403, "websocket: request origin not allowed"));
    }
    let key = request.header("sec-websocket-key").unwrap_or("").trim();
    let key_is_valid = base64::engine::general_purpose::STANDARD
        .decode(key)
        .is_ok_and(|bytes| bytes.len() == 16);
    if !key_is_valid {
        return respond(Response::text(
            400,
            "websocket: not a websocket handshake: bad Sec-WebSocket-Key",
        ));
    }
    Routed::Upgrade {
        accept_key: async_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()),
        signalling,
    }
}

/// Allowed: no `Origin`; or the origin's host equals `Host` (case-insensitive); or the origin
/// equals an `allowOrigin` entry of `config.json` (case-insensitive).
pub(crate) fn origin_allowed(request: &Request, groups: &mut dyn GroupSource) -> bool {
    let Some(origin) = request.header("origin") else {
        return true;
    };
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(rest))
        .unwrap_or("");
    if !origin_host.is_empty() && origin_host.eq_ignore_ascii_case(request.host()) {
        return true;
    }
    groups.global_config().is_ok_and(|config| {
        config
            .allow_origin
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use std::collections::BTreeMap;
    use std::time::Duration;

    /// Files in memory: a map path → content; directories are implied by paths.
    struct MemoryFiles(BTreeMap<&'static str, &'static str>);

    const MODIFIED_SECONDS: u64 = 1_700_000_000;

    impl FileSource for MemoryFiles {
        fn lookup(&self, path: &str) -> FileLookup {
            if let Some(body) = self.0.get(path) {
                return FileLookup::File(StaticFile {
                    body: Cow::Borrowed(body.as_bytes()),
                    modified: UNIX_EPOCH + Duration::from_secs(MODIFIED_SECONDS),
                });
            }
            let is_dir = path.is_empty()
                || self.0.keys().any(|k| {
                    k.strip_prefix(path)
                        .is_some_and(|rest| rest.starts_with('/'))
                });
            if is_dir {
                FileLookup::Directory
            } else {
                FileLookup::NotFound
            }
        }
    }

    fn site() -> MemoryFiles {
        MemoryFiles(BTreeMap::from([
            ("index.html", "<h1>home</h1>"),
            ("galene.html", "<h1>meeting</h1>"),
            ("404.html", "<h1>lost</h1>"),
            ("app.js", "js"),
            ("third-party/x/y.css", "css"),
            ("noindex/a.txt", "a"),
            ("docs/index.html", "docs"),
        ]))
    }

    #[derive(Default)]
    struct FakeGroups {
        groups: BTreeMap<String, GroupLookup>,
        config: GlobalConfig,
        config_broken: bool,
    }

    impl FakeGroups {
        fn with_group(mut self, status: GroupStatus) -> Self {
            self.groups
                .insert(status.name.clone(), GroupLookup::Found(status));
            self
        }
    }

    impl GroupSource for FakeGroups {
        fn group_status(&mut self, _now: Instant, name: &str) -> GroupLookup {
            self.groups
                .get(name)
                .cloned()
                .unwrap_or(GroupLookup::NotFound)
        }

        fn public_groups(&mut self, _now: Instant) -> Vec<GroupStatus> {
            self.groups
                .values()
                .filter_map(|g| match g {
                    GroupLookup::Found(s) if s.public => Some(s.clone()),
                    _ => None,
                })
                .collect()
        }

        fn global_config(&mut self) -> Result<Arc<GlobalConfig>, ConfigError> {
            if self.config_broken {
                return Err(ConfigError::Invalid("broken".into()));
            }
            Ok(Arc::new(self.config.clone()))
        }
    }

    fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> Request {
        let mut all = vec![("Host".to_owned(), "h.org".to_owned())];
        for (name, value) in headers {
            all.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            all.push(((*name).to_owned(), (*value).to_owned()));
        }
        Request {
            method: method.to_owned(),
            target: target.to_owned(),
            headers: all,
            tls: true,
        }
    }

    fn get_with(groups: &mut FakeGroups, target: &str, headers: &[(&str, &str)]) -> Response {
        match route(
            &request("GET", target, headers),
            &site(),
            groups,
            Instant::now(),
        ) {
            Routed::Response(response) => response,
            other => panic!("unexpected {other:?} for {target}"),
        }
    }

    fn get(target: &str) -> Response {
        get_with(&mut FakeGroups::default(), target, &[])
    }

    fn body(response: &Response) -> &str {
        std::str::from_utf8(&response.body).unwrap()
    }

    #[test]
    fn root_serves_index_with_security_and_cache_headers() {
        let response = get("/");
        assert_eq!(response.status, 200);
        assert_eq!(body(&response), "<h1>home</h1>");
        assert_eq!(
            response.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(
            response.header("content-security-policy"),
            Some(
                "connect-src ws: wss: 'self'; img-src 'self'; media-src blob: 'self'; \
                 script-src 'unsafe-eval' 'self'; default-src 'self'"
            )
        );
        assert_eq!(response.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(response.header("cache-control"), Some("max-age=1800"));
        assert_eq!(
            response.header("etag"),
            Some(format!("\"13-{MODIFIED_SECONDS}000000000\"").as_str())
        );
        assert_eq!(
            response.header("last-modified"),
            Some("Tue, 14 Nov 2023 22:13:20 GMT")
        );
    }

    #[test]
    fn mime_and_third_party_cache() {
        let js = get("/app.js");
        assert_eq!(
            js.header("content-type"),
            Some("text/javascript; charset=utf-8")
        );
        let css = get("/third-party/x/y.css");
        assert_eq!(css.header("cache-control"), Some("max-age=86400"));
        assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    }

    #[test]
    fn conditional_requests() {
        let etag = get("/app.js").header("etag").unwrap().to_owned();
        let mut groups = FakeGroups::default();
        let cached = get_with(&mut groups, "/app.js", &[("If-None-Match", &etag)]);
        assert_eq!(cached.status, 304);
        assert!(cached.body.is_empty());
        assert_eq!(cached.header("etag"), Some(etag.as_str()));
        let weak = format!("\"other\", W/{etag}");
        assert_eq!(
            get_with(&mut groups, "/app.js", &[("If-None-Match", &weak)]).status,
            304
        );
        assert_eq!(
            get_with(&mut groups, "/app.js", &[("If-None-Match", "\"x\"")]).status,
            200
        );
        let post = route(
            &request("POST", "/app.js", &[("If-None-Match", "*")]),
            &site(),
            &mut groups,
            Instant::now(),
        );
        assert!(matches!(
            post,
            Routed::Response(Response { status: 412, .. })
        ));
        let later = "Wed, 15 Nov 2023 00:00:00 GMT";
        let earlier = "Mon, 13 Nov 2023 00:00:00 GMT";
        assert_eq!(
            get_with(&mut groups, "/app.js", &[("If-Modified-Since", later)]).status,
            304
        );
        assert_eq!(
            get_with(&mut groups, "/app.js", &[("If-Modified-Since", earlier)]).status,
            200
        );
    }

    #[test]
    fn non_canonical_paths_redirect_like_serve_mux() {
        for (target, location) in [
            ("/a/../app.js", "/app.js"),
            ("/%2e%2e/%2e%2e/etc/passwd", "/etc/passwd"),
            ("//app.js?x=1", "/app.js?x=1"),
            ("/docs/./", "/docs/"),
            ("/group", "/group/"),
            ("/galene-api", "/galene-api/"),
        ] {
            let response = get(target);
            assert_eq!(response.status, 301, "{target}");
            assert_eq!(response.header("location"), Some(location), "{target}");
        }
        assert_eq!(get("/%zz").status, 400);
        assert_eq!(get("/a%00b").status, 400);
    }

    #[test]
    fn directories_and_missing_files() {
        let response = get("/docs");
        assert_eq!(response.status, 308);
        assert_eq!(response.header("location"), Some("/docs/"));
        assert_eq!(body(&get("/docs/")), "docs");
        assert_eq!(get("/noindex/").status, 403);
        let missing = get("/nothing.html");
        assert_eq!(missing.status, 404);
        assert_eq!(body(&missing), "<h1>lost</h1>");
        assert_eq!(
            missing.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        let bare = MemoryFiles(BTreeMap::new());
        let Routed::Response(fallback) = route(
            &request("GET", "/x", &[]),
            &bare,
            &mut FakeGroups::default(),
            Instant::now(),
        ) else {
            panic!("upgrade");
        };
        assert_eq!(body(&fallback), "<p>Not found</p>\n");
        // The admin API is answered by the runtime's admin thread (http::admin), not here.
        assert_eq!(get("/galene-api/v0/.stats").status, 404);
    }

    fn group(name: &str) -> GroupStatus {
        GroupStatus {
            name: name.into(),
            ..GroupStatus::default()
        }
    }

    #[test]
    fn group_pages() {
        let mut groups = FakeGroups::default()
            .with_group(GroupStatus {
                auth_server: Some("https://auth.example/".into()),
                ..group("a/b")
            })
            .with_group(GroupStatus {
                redirect: Some("https://new.example/group/x/".into()),
                ..group("moved")
            });
        groups
            .groups
            .insert("broken".into(), GroupLookup::Invalid("bad json".into()));
        let page = get_with(&mut groups, "/group/a/b/?token=x", &[]);
        assert_eq!(page.status, 200);
        assert_eq!(body(&page), "<h1>meeting</h1>");
        assert!(
            page.header("content-security-policy")
                .unwrap()
                .starts_with("connect-src https://auth.example/ ws: wss: 'self';")
        );
        assert_eq!(page.header("cache-control"), Some("max-age=1800"));
        let slash = get_with(&mut groups, "/group/a/b", &[]);
        assert_eq!(slash.status, 308);
        assert_eq!(slash.header("location"), Some("/group/a/b/"));
        let moved = get_with(&mut groups, "/group/moved/", &[]);
        assert_eq!(moved.status, 308);
        assert_eq!(
            moved.header("location"),
            Some("https://new.example/group/x/")
        );
        assert_eq!(get_with(&mut groups, "/group/unknown", &[]).status, 404);
        assert_eq!(get_with(&mut groups, "/group/", &[]).status, 404);
        assert_eq!(get_with(&mut groups, "/group/broken/", &[]).status, 500);
        assert_eq!(get_with(&mut groups, "/group/a/b/.other", &[]).status, 404);
        assert_eq!(
            get_with(&mut groups, "/group/a/b/.status/", &[]).status,
            404
        );
        let json = get_with(&mut groups, "/group/a/b/.status.json", &[]);
        assert_eq!(json.status, 308);
        assert_eq!(json.header("location"), Some("/group/a/b/.status"));
    }

    #[test]
    fn status_and_public_groups() {
        let mut groups = FakeGroups::default()
            .with_group(GroupStatus {
                public: true,
                client_count: 2,
                ..group("pub")
            })
            .with_group(group("priv"));
        let status = get_with(&mut groups, "/group/pub/.status", &[]);
        assert_eq!(status.status, 200);
        assert_eq!(status.header("content-type"), Some("application/json"));
        assert_eq!(status.header("cache-control"), Some("no-cache"));
        assert_eq!(
            body(&status),
            "{\"name\":\"pub\",\"location\":\"https://h.org/group/pub/\",\
             \"endpoint\":\"wss://h.org/ws\",\"clientCount\":2}\n"
        );
        assert_eq!(
            get_with(&mut groups, "/group/none/.status", &[]).status,
            404
        );
        assert_eq!(get_with(&mut groups, "/group/.status", &[]).status, 404);
        let list = get_with(&mut groups, "/public-groups.json", &[]);
        assert_eq!(list.header("content-type"), Some("application/json"));
        assert_eq!(
            body(&list),
            "[{\"name\":\"pub\",\"location\":\"https://h.org/group/pub/\",\
             \"endpoint\":\"wss://h.org/ws\",\"clientCount\":2}]\n"
        );
        groups.config.proxy_url = Some("http://proxy.example/base".into());
        let proxied = get_with(&mut groups, "/group/priv/.status", &[]);
        assert_eq!(
            body(&proxied),
            "{\"name\":\"priv\",\"location\":\"http://proxy.example/base/group/priv/\",\
             \"endpoint\":\"ws://proxy.example/base/ws\"}\n"
        );
        groups.config_broken = true;
        assert_eq!(
            get_with(&mut groups, "/group/priv/.status", &[]).status,
            500
        );
    }

    #[test]
    fn canonical_host_redirects_static_and_group_paths_only() {
        let mut groups = FakeGroups::default().with_group(group("g"));
        groups.config.canonical_host = Some("main.example:8443".into());
        let response = get_with(&mut groups, "/app.js?q=1", &[]);
        assert_eq!(response.status, 301);
        assert_eq!(
            response.header("location"),
            Some("https://main.example:8443/app.js")
        );
        let response = get_with(&mut groups, "/group/g/.status", &[]);
        assert_eq!(response.status, 301);
        let same = get_with(
            &mut groups,
            "/group/g/.status",
            &[("Host", "MAIN.example:8443")],
        );
        assert_eq!(same.status, 200);
        assert_eq!(
            get_with(&mut groups, "/public-groups.json", &[]).status,
            200
        );
    }

    fn upgrade(groups: &mut FakeGroups, extra: &[(&str, &str)]) -> Routed {
        let mut headers = vec![
            ("Connection", "keep-alive, Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        headers.extend_from_slice(extra);
        route(
            &request("GET", "/ws", &headers),
            &site(),
            groups,
            Instant::now(),
        )
    }

    fn status_of(routed: Routed) -> u16 {
        match routed {
            Routed::Response(response) | Routed::File { response, .. } => response.status,
            Routed::Upgrade { .. } => 101,
        }
    }

    #[test]
    fn websocket_upgrade_and_origin_rule() {
        let mut groups = FakeGroups::default();
        assert_eq!(
            upgrade(&mut groups, &[]),
            Routed::Upgrade {
                accept_key: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into(),
                signalling: Signalling::Galene,
            }
        );
        let same_host = [("Origin", "https://H.ORG")];
        assert_eq!(status_of(upgrade(&mut groups, &same_host)), 101);
        let other = [("Origin", "https://evil.example")];
        assert_eq!(status_of(upgrade(&mut groups, &other)), 403);
        assert_eq!(status_of(upgrade(&mut groups, &[("Origin", "null")])), 403);
        groups.config.allow_origin = vec!["https://EVIL.example".into()];
        assert_eq!(status_of(upgrade(&mut groups, &other)), 101);
        assert_eq!(
            status_of(upgrade(&mut groups, &[("Sec-WebSocket-Key", "short")])),
            400
        );
        assert_eq!(
            status_of(upgrade(&mut groups, &[("Sec-WebSocket-Version", "8")])),
            400
        );
        assert_eq!(status_of(upgrade(&mut groups, &[("Upgrade", "h2c")])), 400);
        assert_eq!(get("/ws").status, 400);
    }

    /// A WebSocket upgrade request for `target` with `extra` headers.
    fn upgrade_at(groups: &mut FakeGroups, target: &str, extra: &[(&str, &str)]) -> Routed {
        let mut headers = vec![
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        headers.extend_from_slice(extra);
        route(
            &request("GET", target, &headers),
            &site(),
            groups,
            Instant::now(),
        )
    }

    #[test]
    fn upgrades_on_other_paths_speak_the_gst_protocol() {
        let mut groups = FakeGroups::default();
        let gst = Routed::Upgrade {
            accept_key: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into(),
            signalling: Signalling::Gst,
        };
        for target in ["/", "/some/other/path?x=1", "//x/../y", "/ws/", "/group/a/"] {
            assert_eq!(upgrade_at(&mut groups, target, &[]), gst, "{target}");
        }
        // No origin rule, unlike Galène's endpoint.
        let other = [("Origin", "https://elsewhere.example")];
        assert_eq!(upgrade_at(&mut groups, "/", &other), gst);
        assert_eq!(status_of(upgrade_at(&mut groups, "/ws", &other)), 403);
        // The handshake itself is still checked.
        let old_version = [("Sec-WebSocket-Version", "8")];
        assert_eq!(status_of(upgrade_at(&mut groups, "/", &old_version)), 400);
        // Without an upgrade, `/` is the site as before.
        assert_eq!(get("/").status, 200);
    }

    #[test]
    fn health_check() {
        let mut groups = FakeGroups::default();
        for routed in [
            route(
                &request("GET", "/health", &[]),
                &site(),
                &mut groups,
                Instant::now(),
            ),
            upgrade_at(&mut groups, "/health", &[]),
        ] {
            let Routed::Response(response) = routed else {
                panic!("upgraded /health");
            };
            assert_eq!(response.status, 200);
            assert_eq!(&response.body[..], b"OK\n");
        }
    }
}
