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

use super::camus::form_field;
use super::date;
use super::files::mime_type;
use super::path::{canonical, encode_path, parse_target};
use super::route::{Routed, with_security_headers};
use super::source::GroupSource;
use super::stats::basic_credentials;
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
    let access = match basic_credentials(request) {
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
