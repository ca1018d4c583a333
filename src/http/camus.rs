//! The Camus routes (docs/camus.md, "Routes"): room pages, their WebSockets, `/public` and the
//! client bundle under `/static/`.
//!
//! [`route`] runs before the Galène routes and answers only Camus paths (`None` otherwise):
//!
//! - `GET/HEAD/POST /chat/<slug>` and `/room/<slug>`: the room page (the client, or the
//!   password form of a protected room; a posted password is checked and, when right,
//!   answered with the client and a pass cookie); 418 when the room is full, 404 when it
//!   does not exist. `/chat/<slug>/` redirects to `/chat/<slug>`, since the client builds its
//!   WebSocket URL from the page path.
//! - `/chat/<slug>/ws`, `/room/<slug>/ws`: the upgrade, refused with 404 (no room), 403 (no
//!   pass for a password room, or full) or 500 (invalid `camus-rooms.json`); otherwise the
//!   same handshake and origin checks as Galène's `/ws`.
//! - `GET /public`: the public rooms.
//! - `/static/<path>`: files of the Camus client directory (`-camus-client`), when one is
//!   configured; otherwise these paths are left to the Galène routes.
//!
//! Paths that are not clean are left to the Galène routes, which redirect to the clean form.

use std::borrow::Cow;
use std::time::Instant;

use super::files::{FileLookup, FileSource, mime_type};
use super::path::{canonical, parse_target, percent_decode};
use super::route::{Routed, Signalling, serve_file, websocket};
use super::source::GroupSource;
use super::{Request, Response};
use crate::app::App;
use crate::camus::pass::{pass_cookies, set_cookie};
use crate::camus::{Admission, Page, PublicRoom, Refusal, page};
use crate::config::ConfigError;

/// The largest request body read (a posted password form).
pub const MAX_FORM_BODY: usize = 16 * 1024;

/// The bundles a Camus client directory may hold, newest first.
pub const BUNDLES: [&str; 2] = ["dist/index.js", "dist/chat.js"];

/// The room data the Camus routes need. [`App`] implements it; the defaults answer as if
/// no room existed, for fakes that only test other routes.
pub trait CamusSource: GroupSource {
    /// What a room page request gets (see [`crate::camus::Hub::page`]).
    fn camus_page(
        &mut self,
        now: Instant,
        slug: &str,
        passes: &[&str],
        password: Option<&str>,
    ) -> Page {
        let _ = (now, slug, passes, password);
        Page::Refused(Refusal::NotFound)
    }

    /// Decides a WebSocket upgrade (see [`crate::camus::Hub::admit`]).
    fn camus_admit(
        &mut self,
        now: Instant,
        slug: &str,
        passes: &[&str],
    ) -> Result<Admission, Refusal> {
        let _ = (now, slug, passes);
        Err(Refusal::NotFound)
    }

    /// The public rooms.
    fn camus_public_rooms(&mut self) -> Result<Vec<PublicRoom>, ConfigError> {
        Ok(Vec::new())
    }
}

impl CamusSource for App {
    fn camus_page(
        &mut self,
        now: Instant,
        slug: &str,
        passes: &[&str],
        password: Option<&str>,
    ) -> Page {
        App::camus_page(self, now, slug, passes, password)
    }

    fn camus_admit(
        &mut self,
        now: Instant,
        slug: &str,
        passes: &[&str],
    ) -> Result<Admission, Refusal> {
        App::camus_admit(self, now, slug, passes)
    }

    fn camus_public_rooms(&mut self) -> Result<Vec<PublicRoom>, ConfigError> {
        App::camus_public_rooms(self)
    }
}

/// The Camus client bundle directory (`-camus-client`): its files and which bundle the room
/// page loads.
pub struct CamusClient {
    files: Box<dyn FileSource>,
    script: &'static str,
}

impl CamusClient {
    /// Looks for a bundle in `files` (the `static/` directory of an unpacked `camus-chat`
    /// wheel): `dist/index.js` (0.3.1) or `dist/chat.js` (0.2.3). `None` when neither exists.
    pub fn detect(files: Box<dyn FileSource>) -> Option<CamusClient> {
        let script = BUNDLES
            .into_iter()
            .find(|path| matches!(files.lookup(path), FileLookup::File(_)))?;
        Some(CamusClient { files, script })
    }

    /// The bundle's path under `/static/`.
    pub fn script(&self) -> &'static str {
        self.script
    }
}

/// Answers Camus paths; `None` for every other path. `body` is the request body (read for
/// `POST` only).
pub fn route(
    request: &Request,
    body: &[u8],
    client: Option<&CamusClient>,
    source: &mut dyn CamusSource,
    now: Instant,
) -> Option<Routed> {
    let target = parse_target(&request.target)?;
    let path = target.path.as_str();
    if canonical(path) != path {
        return None;
    }
    if path == "/public" {
        return Some(Routed::Response(public(request, source)));
    }
    if let Some(file) = path.strip_prefix("/static/") {
        return client.map(|client| Routed::Response(static_file(request, file, client)));
    }
    let prefix = if path.starts_with("/chat/") {
        "/chat/"
    } else if path.starts_with("/room/") {
        "/room/"
    } else {
        return None;
    };
    let rest = path.get(prefix.len()..)?;
    let (slug, websocket) = match rest.split_once('/') {
        None => (rest, false),
        Some((slug, "ws")) => (slug, true),
        Some((slug, "")) if !slug.is_empty() => {
            return Some(Routed::Response(Response::redirect(
                301,
                &format!("{prefix}{slug}"),
            )));
        }
        Some(_) => return None,
    };
    if slug.is_empty() {
        return None;
    }
    let passes: Vec<&str> = request
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, value)| pass_cookies(value))
        .collect();
    if websocket {
        return Some(upgrade(request, source, slug, &passes, now));
    }
    let page_path = format!("{prefix}{slug}");
    Some(Routed::Response(room_page(
        request, body, client, source, slug, &page_path, &passes, now,
    )))
}

fn upgrade(
    request: &Request,
    source: &mut dyn CamusSource,
    slug: &str,
    passes: &[&str],
    now: Instant,
) -> Routed {
    match source.camus_admit(now, slug, passes) {
        Ok(admission) => websocket(request, source, Signalling::Camus(admission)),
        Err(refusal) => {
            log::debug!("camus: WebSocket to {slug:?} refused: {refusal:?}");
            Routed::Response(Response::text(refusal.upgrade_status(), refusal.text()))
        }
    }
}

#[allow(clippy::too_many_arguments)] // one request's worth of context, passed down once
fn room_page(
    request: &Request,
    body: &[u8],
    client: Option<&CamusClient>,
    source: &mut dyn CamusSource,
    slug: &str,
    page_path: &str,
    passes: &[&str],
    now: Instant,
) -> Response {
    let password = match request.method.as_str() {
        "GET" | "HEAD" => None,
        "POST" => form_field(body, "password"),
        _ => {
            let mut response = Response::text(405, "Method Not Allowed");
            response.set_header("Allow", "GET, HEAD, POST");
            return response;
        }
    };
    let response = match source.camus_page(now, slug, passes, password.as_deref()) {
        Page::Refused(refusal) => Response::text(refusal.page_status(), refusal.text()),
        Page::PasswordForm { room, wrong } => html(
            if wrong { 401 } else { 200 },
            page::password_page(&room.name, wrong),
        ),
        Page::Client { room, new_pass } => {
            let Some(client) = client else {
                return Response::text(
                    503,
                    "The Camus client is not installed on this server (see -camus-client)",
                );
            };
            let mut response = html(200, page::client_page(&room.name, client.script()));
            if let Some(pass) = new_pass {
                response.set_header("Set-Cookie", &set_cookie(&pass, page_path, request.tls));
            }
            response
        }
    };
    with_security_headers(response)
}

fn public(request: &Request, source: &mut dyn CamusSource) -> Response {
    if request.method != "GET" && request.method != "HEAD" {
        let mut response = Response::text(405, "Method Not Allowed");
        response.set_header("Allow", "GET, HEAD");
        return response;
    }
    match source.camus_public_rooms() {
        Ok(rooms) => with_security_headers(html(200, page::public_page(&rooms))),
        Err(err) => {
            log::warn!("camus-rooms.json: {err}");
            Response::text(500, "Internal server error")
        }
    }
}

fn static_file(request: &Request, file: &str, client: &CamusClient) -> Response {
    match client.files.lookup(file) {
        FileLookup::File(found) => with_security_headers(serve_file(
            request,
            &format!("/static/{file}"),
            mime_type(file),
            &found,
        )),
        FileLookup::Directory | FileLookup::NotFound => Response::text(404, "Not Found"),
    }
}

/// The `Content-Security-Policy` of the pages rendered here: the bundle, its stylesheets and
/// fonts from this server, media from the browser itself (blob:), and WebSockets.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; \
                            style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; \
                            media-src 'self' blob:; connect-src 'self' ws: wss:; \
                            form-action 'self'; frame-ancestors 'none'";

fn html(status: u16, body: String) -> Response {
    let mut response = Response::new(status);
    response.set_header("Content-Type", "text/html; charset=utf-8");
    response.set_header("Content-Security-Policy", PAGE_CSP);
    response.set_header("Cache-Control", "no-cache");
    response.body = Cow::Owned(body.into_bytes());
    response
}

fn with_security_headers(mut response: Response) -> Response {
    response.set_header("Referrer-Policy", "no-referrer");
    response.set_header("X-Content-Type-Options", "nosniff");
    response
}

/// The value of `name` in an `application/x-www-form-urlencoded` body (`+` is a space).
pub(crate) fn form_field(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |text: &str| percent_decode(&text.replace('+', " "));
        (decode(key)? == name).then(|| decode(value))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CamusRoom, GlobalConfig, Password};
    use crate::core::{GroupLookup, GroupStatus};
    use crate::http::files::StaticFile;
    use std::sync::Arc;
    use std::time::{SystemTime, UNIX_EPOCH};

    /// A fake with one open room `open`, one password room `locked` (password `pw`, pass
    /// `good`), and a full room `full`.
    #[derive(Default)]
    struct FakeRooms {
        pages: Vec<(String, Vec<String>, Option<String>)>,
    }

    fn room(slug: &str) -> CamusRoom {
        CamusRoom {
            name: format!("Room {slug}"),
            ..CamusRoom::on_demand(slug)
        }
    }

    impl GroupSource for FakeRooms {
        fn group_status(&mut self, _now: Instant, _name: &str) -> GroupLookup {
            GroupLookup::NotFound
        }
        fn public_groups(&mut self, _now: Instant) -> Vec<GroupStatus> {
            Vec::new()
        }
        fn global_config(&mut self) -> Result<Arc<GlobalConfig>, ConfigError> {
            Ok(Arc::default())
        }
    }

    impl CamusSource for FakeRooms {
        fn camus_page(
            &mut self,
            _now: Instant,
            slug: &str,
            passes: &[&str],
            password: Option<&str>,
        ) -> Page {
            self.pages.push((
                slug.to_owned(),
                passes.iter().map(|p| (*p).to_owned()).collect(),
                password.map(str::to_owned),
            ));
            match (slug, password) {
                ("open", _) => Page::Client {
                    room: room(slug),
                    new_pass: None,
                },
                ("locked", Some("pw")) => Page::Client {
                    room: room(slug),
                    new_pass: Some("new-pass".into()),
                },
                ("locked", wrong) => Page::PasswordForm {
                    room: CamusRoom {
                        password: Some(Password::Plain("pw".into())),
                        ..room(slug)
                    },
                    wrong: wrong.is_some(),
                },
                ("full", _) => Page::Refused(Refusal::Full),
                _ => Page::Refused(Refusal::NotFound),
            }
        }

        fn camus_admit(
            &mut self,
            _now: Instant,
            slug: &str,
            passes: &[&str],
        ) -> Result<Admission, Refusal> {
            match slug {
                "open" => self.open_admission(),
                "locked" if passes.contains(&"good") => self.open_admission(),
                "locked" => Err(Refusal::PasswordRequired),
                "full" => Err(Refusal::Full),
                "broken" => Err(Refusal::Invalid("bad".into())),
                _ => Err(Refusal::NotFound),
            }
        }

        fn camus_public_rooms(&mut self) -> Result<Vec<PublicRoom>, ConfigError> {
            Ok(vec![PublicRoom {
                name: "Lobby".into(),
                slug: "lobby".into(),
                clients: 1,
                guest_limit: 0,
            }])
        }
    }

    impl FakeRooms {
        fn open_admission(&self) -> Result<Admission, Refusal> {
            // The hub is the only maker of admissions; an open on-demand room admits anyone.
            let mut dir = crate::config::MemoryDirectory::new();
            dir.set_camus_rooms(crate::config::CamusRooms {
                auto_create: true,
                rooms: Vec::new(),
            });
            let hub = crate::camus::Hub::new(
                [0; 32],
                crate::core::WallClock::new(Instant::now(), SystemTime::now()),
            );
            hub.admit(Instant::now(), "open", std::iter::empty(), &mut dir)
        }
    }

    /// A client directory holding one bundle and a stylesheet.
    struct Bundle(&'static str);

    impl FileSource for Bundle {
        fn lookup(&self, path: &str) -> FileLookup {
            if path == self.0 || path == "css/app.css" {
                FileLookup::File(StaticFile {
                    body: Cow::Borrowed(b"x"),
                    modified: UNIX_EPOCH,
                })
            } else if path == "css" || path == "dist" {
                FileLookup::Directory
            } else {
                FileLookup::NotFound
            }
        }
    }

    fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.into(),
            target: target.into(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            tls: false,
        }
    }

    fn call(
        rooms: &mut FakeRooms,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Option<Routed> {
        let client = CamusClient::detect(Box::new(Bundle("dist/chat.js")));
        route(
            &request(method, target, headers),
            body.as_bytes(),
            client.as_ref(),
            rooms,
            Instant::now(),
        )
    }

    fn response(routed: Option<Routed>) -> Response {
        match routed {
            Some(Routed::Response(response)) => response,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    fn body(response: &Response) -> String {
        String::from_utf8_lossy(&response.body).into_owned()
    }

    const UPGRADE: [(&str, &str); 4] = [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn detects_the_bundle() {
        let new = CamusClient::detect(Box::new(Bundle("dist/index.js"))).unwrap();
        assert_eq!(new.script(), "dist/index.js");
        let old = CamusClient::detect(Box::new(Bundle("dist/chat.js"))).unwrap();
        assert_eq!(old.script(), "dist/chat.js");
        assert!(CamusClient::detect(Box::new(Bundle("other.js"))).is_none());
    }

    #[test]
    fn room_pages_on_both_prefixes() {
        let mut rooms = FakeRooms::default();
        for target in ["/chat/open", "/room/open"] {
            let page = response(call(&mut rooms, "GET", target, &[], ""));
            assert_eq!(page.status, 200);
            assert!(body(&page).contains("<script src=\"/static/dist/chat.js\">"));
            assert_eq!(page.header("Content-Security-Policy"), Some(PAGE_CSP));
            assert_eq!(page.header("Set-Cookie"), None);
        }
        let head = response(call(&mut rooms, "HEAD", "/chat/open", &[], ""));
        assert_eq!(head.status, 200);
        assert_eq!(
            response(call(&mut rooms, "GET", "/chat/nope", &[], "")).status,
            404
        );
        let full = response(call(&mut rooms, "GET", "/room/full", &[], ""));
        assert_eq!(
            (full.status, body(&full).as_str()),
            (418, "Guest limit already reached\n")
        );
        assert_eq!(
            response(call(&mut rooms, "PUT", "/chat/open", &[], "")).status,
            405
        );
        let slash = response(call(&mut rooms, "GET", "/chat/open/", &[], ""));
        assert_eq!(
            (slash.status, slash.header("Location")),
            (301, Some("/chat/open"))
        );
        // Not Camus paths: left to the other routes.
        for target in [
            "/chat",
            "/chat/",
            "/chat/a/b",
            "/chat/a/../b",
            "/chatx/a",
            "/",
            "/ws",
        ] {
            assert!(
                call(&mut rooms, "GET", target, &[], "").is_none(),
                "{target}"
            );
        }
    }

    #[test]
    fn password_form_post_and_cookie() {
        let mut rooms = FakeRooms::default();
        let form = response(call(&mut rooms, "GET", "/chat/locked", &[], ""));
        assert_eq!(form.status, 200);
        assert!(body(&form).contains("name=\"password\""));
        let wrong = response(call(
            &mut rooms,
            "POST",
            "/chat/locked",
            &[],
            "password=nope&submit=Go",
        ));
        assert_eq!(wrong.status, 401);
        assert!(body(&wrong).contains("Invalid password"));
        let right = response(call(
            &mut rooms,
            "POST",
            "/room/locked",
            &[],
            "submit=Go&password=pw",
        ));
        assert_eq!(right.status, 200);
        assert!(body(&right).contains("react-root"));
        assert_eq!(
            right.header("Set-Cookie"),
            Some(
                "camus_pass=new-pass; Path=/room/locked; Max-Age=43200; HttpOnly; SameSite=Strict"
            )
        );
        // Cookies reach the hub; the form body is decoded.
        call(
            &mut rooms,
            "POST",
            "/chat/locked",
            &[
                ("Cookie", "a=b; camus_pass=one"),
                ("cookie", "camus_pass=two"),
            ],
            "password=a+b%26c%2B",
        );
        let (_, passes, password) = rooms.pages.last().unwrap();
        assert_eq!(passes, &["one", "two"]);
        assert_eq!(password.as_deref(), Some("a b&c+"));
    }

    #[test]
    fn websocket_admission() {
        let mut rooms = FakeRooms::default();
        let Some(Routed::Upgrade { signalling, .. }) =
            call(&mut rooms, "GET", "/chat/open/ws", &UPGRADE, "")
        else {
            panic!("not upgraded");
        };
        assert!(matches!(signalling, Signalling::Camus(_)));
        let status = |rooms: &mut FakeRooms, target: &str, extra: &[(&str, &str)]| {
            let mut headers = UPGRADE.to_vec();
            headers.extend_from_slice(extra);
            match call(rooms, "GET", target, &headers, "") {
                Some(Routed::Upgrade { .. }) => 101,
                Some(Routed::Response(response) | Routed::File { response, .. }) => response.status,
                None => 0,
            }
        };
        assert_eq!(status(&mut rooms, "/room/open/ws", &[]), 101);
        assert_eq!(status(&mut rooms, "/room/nope/ws", &[]), 404);
        assert_eq!(status(&mut rooms, "/room/full/ws", &[]), 403);
        assert_eq!(status(&mut rooms, "/room/broken/ws", &[]), 500);
        assert_eq!(status(&mut rooms, "/chat/locked/ws", &[]), 403);
        assert_eq!(
            status(
                &mut rooms,
                "/chat/locked/ws",
                &[("Cookie", "camus_pass=good")]
            ),
            101
        );
        // Galène's origin rule applies.
        let foreign = [("Origin", "https://elsewhere.example")];
        assert_eq!(status(&mut rooms, "/chat/open/ws", &foreign), 403);
        // Not an upgrade: the handshake check answers.
        assert_eq!(
            response(call(&mut rooms, "GET", "/chat/open/ws", &[], "")).status,
            400
        );
    }

    #[test]
    fn public_and_static() {
        let mut rooms = FakeRooms::default();
        let public = response(call(&mut rooms, "GET", "/public", &[], ""));
        assert_eq!(public.status, 200);
        assert!(body(&public).contains("href=\"/room/lobby\">Lobby</a>"));
        let css = response(call(&mut rooms, "GET", "/static/css/app.css", &[], ""));
        assert_eq!(css.status, 200);
        assert_eq!(css.header("Content-Type"), Some("text/css; charset=utf-8"));
        assert_eq!(
            response(call(&mut rooms, "GET", "/static/css", &[], "")).status,
            404
        );
        assert_eq!(
            response(call(&mut rooms, "GET", "/static/nope.js", &[], "")).status,
            404
        );
        // Without a client directory, /static/ is not ours and pages say what is missing.
        let request = request("GET", "/static/css/app.css", &[]);
        assert!(route(&request, b"", None, &mut rooms, Instant::now()).is_none());
        let request = super::tests::request("GET", "/chat/open", &[]);
        let page = response(route(&request, b"", None, &mut rooms, Instant::now()));
        assert_eq!(page.status, 503);
    }

    #[test]
    fn form_fields() {
        assert_eq!(
            form_field(b"a=1&password=x%20y", "password").as_deref(),
            Some("x y")
        );
        assert_eq!(form_field(b"password=", "password").as_deref(), Some(""));
        assert_eq!(form_field(b"password", "password").as_deref(), Some(""));
        assert_eq!(form_field(b"a=1", "password"), None);
        assert_eq!(form_field(b"password=%zz", "password"), None);
        assert_eq!(form_field(&[0xff], "password"), None);
    }
}
