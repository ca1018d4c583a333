//! `/recordings/`: the recordings browser (docs/galene.md, "HTTP"; docs/recording.md): a
//! listing per group, downloads with range requests, deletion by a posted form, for HTTP
//! Basic credentials that hold `record` in that group.
//!
//! [`route`] is a pure function like the other routes. What is on disk comes from a
//! [`RecordingStore`] (the runtime's, over the `-recordings` directory, which keeps every
//! lookup inside it); a file's bytes are not in the response: [`Routed::File`] names the
//! range the runtime streams after the head.
//!
//! - `/recordings` → 308 to `/recordings/`; `/recordings/` → 400 `Bad group name`; a
//!   backslash anywhere → 400.
//! - A directory is a group (`/recordings/<group>/`, else 308 there); a file is
//!   `/recordings/<group>/<file>` (else 308). Nothing there → 404.
//! - Without valid credentials → 401 with `WWW-Authenticate: basic realm="recordings/<group>"`
//!   (after 200 ms when the password was wrong).
//! - Directory: `GET`/`HEAD` list the files, `POST` `q=delete&filename=F` deletes one (303
//!   back to the listing; 400 `No filename provided`, `Unknown query`, `Bad filename`), other
//!   methods 405.
//! - File: `GET`/`HEAD`, with `Range` (one range; 206 or 416), `If-None-Match` and
//!   `If-Modified-Since`; cacheable only once it has not changed for a minute (a file being
//!   written is `no-cache`); other methods 405.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::admin::auth::basic_credentials;
use super::camus::form_field;
use super::date;
use super::files::mime_type;
use super::path::{canonical, encode_path, parse_target};
use super::route::{Routed, with_security_headers};
use super::source::GroupSource;
use super::{Request, Response};
use crate::core::RecordingAccess;
use crate::record::naming::is_plain_file_name;

/// The route's prefix.
pub const PREFIX: &str = "/recordings/";

/// How long a refused password delays the answer.
pub const BAD_PASSWORD_DELAY: Duration = Duration::from_millis(200);

/// A file under the recordings directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingFile {
    /// Its name (no directory part).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it last changed.
    pub modified: SystemTime,
}

/// What a path under the recordings directory is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLookup {
    /// A directory, with its regular files (hidden ones and links left out), sorted by name.
    Directory(Vec<RecordingFile>),
    /// A regular file.
    File(RecordingFile),
    /// Nothing, or something outside the directory, or not a file or directory.
    NotFound,
}

/// Why a deletion failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteError {
    /// No such file.
    NotFound,
    /// Anything else (the text is logged).
    Failed(String),
}

/// The recordings directory, as the runtime reads it. Paths are relative, cleaned, without
/// `.`/`..` or empty elements; the store refuses anything that resolves outside the
/// directory (a symbolic link pointing out).
pub trait RecordingStore {
    /// What `path` names.
    fn lookup(&self, path: &str) -> StoreLookup;
    /// Deletes the regular file `name` of directory `group`.
    fn delete(&self, group: &str, name: &str) -> Result<(), DeleteError>;
}

/// What the router answers for a recordings path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingsAnswer {
    /// The answer.
    pub routed: Routed,
    /// Wait this long before answering (a wrong password).
    pub delay: Option<Duration>,
}

/// Bytes of a recording to send after a response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRange {
    /// The file, relative to the recordings directory (`group/name`).
    pub path: String,
    /// The first byte.
    pub start: u64,
    /// How many bytes.
    pub len: u64,
}

/// Answers `/recordings` paths; `None` for every other path (and for unclean ones, which the
/// main router redirects).
pub fn route(
    request: &Request,
    body: &[u8],
    store: &dyn RecordingStore,
    groups: &mut dyn GroupSource,
    now: Instant,
    wall: SystemTime,
) -> Option<RecordingsAnswer> {
    let target = parse_target(&request.target)?;
    let path = target.path.as_str();
    let answer = |response| {
        Some(RecordingsAnswer {
            routed: Routed::Response(response),
            delay: None,
        })
    };
    if path == "/recordings" {
        return answer(Response::redirect(308, PREFIX));
    }
    let rest = path.strip_prefix(PREFIX)?;
    if path.contains('\\') {
        return answer(Response::text(400, "Bad path"));
    }
    if canonical(path) != path {
        return None;
    }
    if rest.is_empty() {
        return answer(Response::text(400, "Bad group name"));
    }
    if let Some(redirect) = canonical_host(request, groups) {
        return answer(redirect);
    }
    let trimmed = rest.trim_end_matches('/');
    if trimmed.split('/').any(|part| part.starts_with('.')) {
        return answer(not_found());
    }
    match store.lookup(trimmed) {
        StoreLookup::NotFound => answer(not_found()),
        StoreLookup::Directory(files) => {
            let group = trimmed;
            let wanted = format!("{PREFIX}{group}/");
            if path != wanted {
                return answer(Response::redirect(308, &encode_path(&wanted)));
            }
            if let Some(refusal) = authorise(request, groups, group, now) {
                return Some(refusal);
            }
            answer(directory(request, body, store, group, &files))
        }
        StoreLookup::File(file) => {
            let Some((group, name)) = trimmed.rsplit_once('/') else {
                // A file at the top of the recordings directory belongs to no group.
                return answer(not_found());
            };
            if path != format!("{PREFIX}{group}/{name}") {
                let wanted = format!("{PREFIX}{group}/{name}");
                return answer(Response::redirect(308, &encode_path(&wanted)));
            }
            if let Some(refusal) = authorise(request, groups, group, now) {
                return Some(refusal);
            }
            Some(RecordingsAnswer {
                routed: serve(request, trimmed, &file, wall),
                delay: None,
            })
        }
    }
}

/// 301 to `https://<canonicalHost><path>` when the request's `Host` differs.
fn canonical_host(request: &Request, groups: &mut dyn GroupSource) -> Option<Response> {
    let config = groups.global_config().ok()?;
    let wanted = config.canonical_host.as_deref().filter(|h| !h.is_empty())?;
    if request.host().eq_ignore_ascii_case(wanted) {
        return None;
    }
    let path = parse_target(&request.target)?.path;
    Some(Response::redirect(
        301,
        &format!("https://{wanted}{}", encode_path(&path)),
    ))
}

/// `None` when the request's credentials may use `group`'s recordings; else the 401.
fn authorise(
    request: &Request,
    groups: &mut dyn GroupSource,
    group: &str,
    now: Instant,
) -> Option<RecordingsAnswer> {
    let access = match request.header("authorization").and_then(basic_credentials) {
        Some((user, password)) => groups.recording_access(now, group, &user, &password),
        None => RecordingAccess::Denied,
    };
    if access == RecordingAccess::Allowed {
        return None;
    }
    let mut response = Response::text(401, "Haha!");
    response.set_header(
        "WWW-Authenticate",
        &format!("basic realm=\"recordings/{group}\""),
    );
    Some(RecordingsAnswer {
        routed: Routed::Response(response),
        delay: (access == RecordingAccess::BadPassword).then_some(BAD_PASSWORD_DELAY),
    })
}

fn not_found() -> Response {
    let mut response = Response::new(404);
    response.set_header("Content-Type", "text/html; charset=utf-8");
    response.body = b"<p>Not found</p>\n"[..].into();
    response
}

/// A group's directory: the listing, or a deletion.
fn directory(
    request: &Request,
    body: &[u8],
    store: &dyn RecordingStore,
    group: &str,
    files: &[RecordingFile],
) -> Response {
    match request.method.as_str() {
        "GET" | "HEAD" => listing(group, files),
        "POST" => {
            match form_field(body, "q").as_deref() {
                Some("delete") => {}
                _ => return Response::text(400, "Unknown query"),
            }
            let Some(name) = form_field(body, "filename").filter(|f| !f.is_empty()) else {
                return Response::text(400, "No filename provided");
            };
            if !is_plain_file_name(&name) {
                return Response::text(400, "Bad filename");
            }
            match store.delete(group, &name) {
                Ok(()) => {
                    log::info!("Recording {group}/{name} deleted");
                    Response::redirect(303, &encode_path(&format!("{PREFIX}{group}/")))
                }
                Err(DeleteError::NotFound) => not_found(),
                Err(DeleteError::Failed(why)) => {
                    log::warn!("Deleting recording {group}/{name}: {why}");
                    Response::text(500, "Internal server error")
                }
            }
        }
        _ => {
            let mut response = Response::text(405, "Method not allowed");
            response.set_header("Allow", "OPTIONS, GET, HEAD, POST");
            response
        }
    }
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The listing page: a row per file with its link, its size and a delete button.
fn listing(group: &str, files: &[RecordingFile]) -> Response {
    let title = escape(&format!("Recordings of {group}"));
    let action = escape(&encode_path(&format!("{PREFIX}{group}/")));
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n<table>\n"
    );
    for file in files {
        let href = escape(&encode_path(&file.name));
        let name = escape(&file.name);
        html.push_str(&format!(
            "<tr><td><a href=\"./{href}\">{name}</a></td><td>{}</td>\
             <td><form action=\"{action}\" method=\"post\">\
             <input type=\"hidden\" name=\"filename\" value=\"{name}\">\
             <button type=\"submit\" name=\"q\" value=\"delete\">Delete</button>\
             </form></td></tr>\n",
            file.size
        ));
    }
    html.push_str("</table>\n</body>\n</html>\n");
    let mut response = Response::new(200);
    response.set_header("Content-Type", "text/html; charset=utf-8");
    response.set_header("Cache-Control", "no-cache");
    response.body = html.into_bytes().into();
    with_security_headers(response, None)
}

/// A recording: conditional requests, then one byte range or the whole file.
fn serve(request: &Request, path: &str, file: &RecordingFile, wall: SystemTime) -> Routed {
    if request.method != "GET" && request.method != "HEAD" {
        let mut response = Response::text(405, "Method not allowed");
        response.set_header("Allow", "OPTIONS, GET, HEAD");
        return Routed::Response(response);
    }
    let nanos = file
        .modified
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let etag = format!("\"{}-{nanos}\"", file.size);
    let mut response = Response::new(200);
    // A file still being written changes: caches must come back.
    let settled = wall
        .duration_since(file.modified)
        .is_ok_and(|age| age >= Duration::from_secs(60));
    if settled {
        response.set_header("Cache-Control", "max-age=1800");
    } else {
        response.set_header("Cache-Control", "no-cache");
    }
    response.set_header("ETag", &etag);
    response.set_header("Last-Modified", &date::format(file.modified));
    response.set_header("Accept-Ranges", "bytes");
    response.set_header("X-Content-Type-Options", "nosniff");
    let unchanged = match request.header("if-none-match") {
        Some(tags) => tags
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag),
        None => request
            .header("if-modified-since")
            .and_then(date::parse)
            .is_some_and(|since| whole_seconds(file.modified) <= whole_seconds(since)),
    };
    if unchanged {
        response.status = 304;
        return Routed::Response(response);
    }
    response.set_header("Content-Type", mime_type(&file.name));
    let (start, len) = match request.header("range").map(|r| byte_range(r, file.size)) {
        None | Some(RangeRequest::Ignored) => (0, file.size),
        Some(RangeRequest::Satisfiable { start, len }) => {
            response.status = 206;
            response.set_header(
                "Content-Range",
                &format!("bytes {start}-{}/{}", start + len - 1, file.size),
            );
            (start, len)
        }
        Some(RangeRequest::Unsatisfiable) => {
            let mut refused = Response::text(416, "invalid range");
            refused.set_header("Content-Range", &format!("bytes */{}", file.size));
            return Routed::Response(refused);
        }
    };
    Routed::File {
        response,
        file: FileRange {
            path: path.to_owned(),
            start,
            len,
        },
    }
}

fn whole_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A `Range` header, for a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeRequest {
    /// Serve the whole file (no usable single range: several ranges, another unit, a
    /// malformed one).
    Ignored,
    /// Serve these bytes (206).
    Satisfiable { start: u64, len: u64 },
    /// 416.
    Unsatisfiable,
}

fn byte_range(header: &str, size: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Ignored;
    };
    if spec.contains(',') {
        return RangeRequest::Ignored;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return RangeRequest::Ignored;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // bytes=-N: the last N bytes.
        return match last.parse::<u64>() {
            Ok(0) => RangeRequest::Unsatisfiable,
            Ok(_) if size == 0 => RangeRequest::Unsatisfiable,
            Ok(n) => {
                let len = n.min(size);
                RangeRequest::Satisfiable {
                    start: size - len,
                    len,
                }
            }
            Err(_) => RangeRequest::Ignored,
        };
    }
    let Ok(start) = first.parse::<u64>() else {
        return RangeRequest::Ignored;
    };
    if start >= size {
        return RangeRequest::Unsatisfiable;
    }
    let end = if last.is_empty() {
        size - 1
    } else {
        match last.parse::<u64>() {
            Ok(end) if end >= start => end.min(size - 1),
            _ => return RangeRequest::Ignored,
        }
    };
    RangeRequest::Satisfiable {
        start,
        len: end - start + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigError, GlobalConfig};
    use crate::core::{GroupLookup, GroupStatus};
    use std::cell::RefCell;
    use std::sync::Arc;

    /// A recordings directory in memory: group → files.
    #[derive(Default)]
    struct FakeStore {
        groups: RefCell<Vec<(String, Vec<RecordingFile>)>>,
    }

    impl FakeStore {
        fn with(group: &str, names: &[&str]) -> FakeStore {
            let files = names
                .iter()
                .map(|n| RecordingFile {
                    name: (*n).to_owned(),
                    size: 1000,
                    modified: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                })
                .collect();
            FakeStore {
                groups: RefCell::new(vec![(group.to_owned(), files)]),
            }
        }
    }

    impl RecordingStore for FakeStore {
        fn lookup(&self, path: &str) -> StoreLookup {
            for (group, files) in self.groups.borrow().iter() {
                if path == group {
                    return StoreLookup::Directory(files.clone());
                }
                if let Some(name) = path.strip_prefix(&format!("{group}/"))
                    && let Some(file) = files.iter().find(|f| f.name == name)
                {
                    return StoreLookup::File(file.clone());
                }
            }
            StoreLookup::NotFound
        }

        fn delete(&self, group: &str, name: &str) -> Result<(), DeleteError> {
            let mut groups = self.groups.borrow_mut();
            let files = groups
                .iter_mut()
                .find(|(g, _)| g == group)
                .map(|(_, f)| f)
                .ok_or(DeleteError::NotFound)?;
            let before = files.len();
            files.retain(|f| f.name != name);
            if files.len() == before {
                return Err(DeleteError::NotFound);
            }
            Ok(())
        }
    }

    /// `boss`/`op` may record in `class`; `pupil`/`pw` may not; anything else is a wrong
    /// password for boss, unknown otherwise.
    struct Groups;

    impl GroupSource for Groups {
        fn group_status(&mut self, _now: Instant, _name: &str) -> GroupLookup {
            GroupLookup::Found(GroupStatus::default())
        }
        fn public_groups(&mut self, _now: Instant) -> Vec<GroupStatus> {
            Vec::new()
        }
        fn global_config(&mut self) -> Result<Arc<GlobalConfig>, ConfigError> {
            Ok(Arc::default())
        }
        fn recording_access(
            &mut self,
            _now: Instant,
            group: &str,
            user: &str,
            password: &str,
        ) -> RecordingAccess {
            match (group, user, password) {
                ("class", "boss", "op") => RecordingAccess::Allowed,
                ("class", "boss", _) => RecordingAccess::BadPassword,
                _ => RecordingAccess::Denied,
            }
        }
    }

    const FILE: &str = "2026-07-28T15:52:24.123-vimes.webm";

    fn request(method: &str, target: &str, auth: Option<(&str, &str)>) -> Request {
        let mut headers = vec![("Host".to_owned(), "h.org".to_owned())];
        if let Some((user, password)) = auth {
            use base64::Engine as _;
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            headers.push(("Authorization".to_owned(), format!("Basic {token}")));
        }
        Request {
            method: method.to_owned(),
            target: target.to_owned(),
            headers,
            tls: true,
        }
    }

    fn call(store: &FakeStore, request: &Request, body: &str) -> Option<RecordingsAnswer> {
        let wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        route(
            request,
            body.as_bytes(),
            store,
            &mut Groups,
            Instant::now(),
            wall,
        )
    }

    fn response(answer: Option<RecordingsAnswer>) -> Response {
        match answer.map(|a| a.routed) {
            Some(Routed::Response(r)) | Some(Routed::File { response: r, .. }) => r,
            other => panic!("{other:?}"),
        }
    }

    const BOSS: Option<(&str, &str)> = Some(("boss", "op"));

    #[test]
    fn paths_redirects_and_authentication() {
        let store = FakeStore::with("class", &[FILE]);
        let get = |target: &str, auth| call(&store, &request("GET", target, auth), "");
        assert!(get("/recordingsx", None).is_none());
        assert!(get("/group/class/", None).is_none());
        // Unclean paths are the main router's (it redirects them).
        assert!(get("/recordings/class/../x", BOSS).is_none());
        let r = response(get("/recordings", None));
        assert_eq!(
            (r.status, r.header("location")),
            (308, Some("/recordings/"))
        );
        let r = response(get("/recordings/", BOSS));
        assert_eq!((r.status, &*r.body), (400, &b"Bad group name\n"[..]));
        assert_eq!(response(get("/recordings/class%5Cx/", BOSS)).status, 400);
        assert_eq!(response(get("/recordings/nothere/", BOSS)).status, 404);
        assert_eq!(response(get("/recordings/class/.hidden", BOSS)).status, 404);
        let r = response(get("/recordings/class", BOSS));
        assert_eq!(
            (r.status, r.header("location")),
            (308, Some("/recordings/class/"))
        );
        let r = response(get(&format!("/recordings/class/{FILE}/"), BOSS));
        assert_eq!(r.status, 308);

        let answer = get("/recordings/class/", None).unwrap();
        assert_eq!(answer.delay, None);
        let r = response(Some(answer));
        assert_eq!(r.status, 401);
        assert_eq!(
            r.header("www-authenticate"),
            Some("basic realm=\"recordings/class\"")
        );
        assert_eq!(&*r.body, b"Haha!\n");
        let answer = get("/recordings/class/", Some(("boss", "nope"))).unwrap();
        assert_eq!(answer.delay, Some(BAD_PASSWORD_DELAY));
        let r = response(get(
            &format!("/recordings/class/{FILE}"),
            Some(("pupil", "pw")),
        ));
        assert_eq!(r.status, 401);
    }

    #[test]
    fn listing_and_deletion() {
        let store = FakeStore::with("class", &[FILE, "a<b>&\".webm"]);
        let r = response(call(
            &store,
            &request("GET", "/recordings/class/", BOSS),
            "",
        ));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(r.header("cache-control"), Some("no-cache"));
        let html = String::from_utf8(r.body.to_vec()).unwrap();
        assert!(html.contains(&format!(
            "<a href=\"./{FILE}\">{FILE}</a></td><td>1000</td>"
        )));
        assert!(html.contains("<form action=\"/recordings/class/\" method=\"post\">"));
        assert!(html.contains("name=\"q\" value=\"delete\""));
        assert!(html.contains("a&lt;b&gt;&amp;&quot;.webm"), "{html}");
        assert!(!html.contains("a<b>"));

        let post = |body: &str, auth| {
            response(call(
                &store,
                &request("POST", "/recordings/class/", auth),
                body,
            ))
        };
        let text = |r: &Response| String::from_utf8(r.body.to_vec()).unwrap();
        let r = post("q=delete", BOSS);
        assert_eq!(
            (r.status, text(&r).as_str()),
            (400, "No filename provided\n")
        );
        let r = post(&format!("q=list&filename={FILE}"), BOSS);
        assert_eq!((r.status, text(&r).as_str()), (400, "Unknown query\n"));
        assert_eq!(post("q=delete&filename=..%2Fx", BOSS).status, 400);
        assert_eq!(post("q=delete&filename=nope.webm", BOSS).status, 404);
        assert_eq!(post(&format!("q=delete&filename={FILE}"), None).status, 401);
        let r = post(&format!("q=delete&filename={FILE}"), BOSS);
        assert_eq!(
            (r.status, r.header("location")),
            (303, Some("/recordings/class/"))
        );
        assert_eq!(
            store.lookup(&format!("class/{FILE}")),
            StoreLookup::NotFound
        );
        let r = response(call(
            &store,
            &request("PUT", "/recordings/class/", BOSS),
            "",
        ));
        assert_eq!(
            (r.status, r.header("allow")),
            (405, Some("OPTIONS, GET, HEAD, POST"))
        );
    }

    #[test]
    fn downloads_with_ranges_and_validators() {
        let store = FakeStore::with("class", &[FILE, "old.mkv"]);
        let target = format!("/recordings/class/{FILE}");
        let get = |extra: &[(&str, &str)]| {
            let mut r = request("GET", &target, BOSS);
            for (k, v) in extra {
                r.headers.push(((*k).to_owned(), (*v).to_owned()));
            }
            call(&store, &r, "").map(|a| a.routed)
        };
        let Some(Routed::File { response, file }) = get(&[]) else {
            panic!("no file");
        };
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("video/webm"));
        assert_eq!(response.header("accept-ranges"), Some("bytes"));
        // Not changed for more than a minute: cacheable.
        assert_eq!(response.header("cache-control"), Some("max-age=1800"));
        assert_eq!(
            file,
            FileRange {
                path: format!("class/{FILE}"),
                start: 0,
                len: 1000
            }
        );
        let etag = response.header("etag").unwrap().to_owned();
        for (range, expected) in [
            ("bytes=10-19", Some((10, 10, "bytes 10-19/1000"))),
            ("bytes=990-", Some((990, 10, "bytes 990-999/1000"))),
            ("bytes=-5", Some((995, 5, "bytes 995-999/1000"))),
            ("bytes=900-5000", Some((900, 100, "bytes 900-999/1000"))),
        ] {
            let Some(Routed::File { response, file }) = get(&[("Range", range)]) else {
                panic!("{range}");
            };
            let (start, len, content_range) = expected.unwrap();
            assert_eq!(response.status, 206, "{range}");
            assert_eq!((file.start, file.len), (start, len), "{range}");
            assert_eq!(response.header("content-range"), Some(content_range));
        }
        // Several ranges, other units and nonsense: the whole file.
        for range in ["bytes=0-1,5-6", "items=0-1", "bytes=9-3", "bytes=x-"] {
            let Some(Routed::File { response, file }) = get(&[("Range", range)]) else {
                panic!("{range}");
            };
            assert_eq!((response.status, file.len), (200, 1000), "{range}");
        }
        for range in ["bytes=1000-", "bytes=-0"] {
            let Some(Routed::Response(r)) = get(&[("Range", range)]) else {
                panic!("{range}");
            };
            assert_eq!(r.status, 416, "{range}");
            assert_eq!(r.header("content-range"), Some("bytes */1000"));
        }
        let Some(Routed::Response(r)) = get(&[("If-None-Match", &etag)]) else {
            panic!("no 304");
        };
        assert_eq!(r.status, 304);
        let Some(Routed::File { response, .. }) = call(
            &store,
            &request("HEAD", "/recordings/class/old.mkv", BOSS),
            "",
        )
        .map(|a| a.routed) else {
            panic!("no file");
        };
        assert_eq!(response.header("content-type"), Some("video/x-matroska"));
        let r = response_of(call(&store, &request("POST", &target, BOSS), ""));
        assert_eq!(r.status, 405);
    }

    fn response_of(answer: Option<RecordingsAnswer>) -> Response {
        response(answer)
    }

    #[test]
    fn a_file_being_written_is_not_cached() {
        let store = FakeStore::with("class", &[FILE]);
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_030);
        let answer = route(
            &request("GET", &format!("/recordings/class/{FILE}"), BOSS),
            b"",
            &store,
            &mut Groups,
            Instant::now(),
            wall,
        );
        assert_eq!(response(answer).header("cache-control"), Some("no-cache"));
    }
}
