//! The WHIP and WHEP routes (docs/whip.md): `/group/<name>/.whip` and `/group/<name>/.whep`,
//! the endpoints a client posts its offer to, and `/group/<name>/.whip/<id>` (`.whep/<id>`),
//! the resources it patches with trickle ICE fragments and deletes.
//!
//! [`route`] runs before the Galène routes (it needs the request body) and answers only these
//! paths (`None` otherwise). It follows Galène's handler status for status: the canonical host
//! redirect, `Vary: Origin` and `Access-Control-Allow-Origin` for allowed origins, `OPTIONS`
//! with the allowed methods and headers and the ICE servers as `Link` headers, 405 with
//! `Allow`, 415 for a wrong `Content-Type`, 413 for a body above [`MAX_SDP_BODY`], 401 for
//! bad credentials, 403 without the `present` permission or with the wrong token on a
//! resource, 404 for an unknown group or resource, 500 for a resource id that is not 16
//! bytes of base64url, `If-Match`/`If-None-Match` (412), 201 with `Location` and `ETag`,
//! PATCH answered 204 (candidates) or 200 with a fragment (ICE restart), DELETE 200. Where
//! sfubox differs (400 for an offer that cannot be used, 403 with the reason when the group
//! refuses the join, 503 without a media engine, a smaller body limit) docs/galene.md says so.

use std::time::Instant;

use base64::Engine as _;
use subtle::ConstantTimeEq as _;

use super::files::FileSource;
use super::path::{canonical, parse_target, percent_decode, split_kind};
use super::route::{canonical_host, group_name, internal_error, not_found, origin_allowed};
use super::source::GroupSource;
use super::{Request, Response};
use crate::app::{App, WhipPatched};
use crate::config::IceServer;
use crate::conn::ConnId;
use crate::core::GroupLookup;
use crate::streams::Follow;
use crate::whip::{CreateRequest, Created, Kind, Resource, WhipError};

/// The largest offer or fragment read. Galène takes up to 1 MiB; an SDP offer is a few
/// kilobytes (a browser's with simulcast and every codec about 10 kB), and every connection
/// may hold this much while its body arrives.
pub const MAX_SDP_BODY: usize = 64 * 1024;

/// `Content-Type` of offers and answers.
const SDP: &str = "application/sdp";
/// `Content-Type` of trickle ICE fragments.
const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

/// What the WHIP and WHEP routes need. [`App`] implements it; the defaults answer as a server
/// without sessions.
pub trait WhipSource: GroupSource {
    /// Creates a session (see [`App::whip_create`]).
    fn whip_create(
        &mut self,
        now: Instant,
        request: CreateRequest<'_>,
        remote: Option<std::net::SocketAddr>,
    ) -> Result<Created, WhipError> {
        let _ = (now, request, remote);
        Err(WhipError::NoMedia)
    }

    /// The session at `resource` (see [`App::whip_resource`]).
    fn whip_resource(&mut self, kind: Kind, group: &str, resource: &str) -> Option<Resource> {
        let _ = (kind, group, resource);
        None
    }

    /// A trickle or ICE restart fragment (see [`App::whip_patch`]).
    fn whip_patch(
        &mut self,
        now: Instant,
        conn: ConnId,
        fragment: &str,
    ) -> Result<WhipPatched, WhipError> {
        let _ = (now, conn, fragment);
        Err(WhipError::Gone)
    }

    /// Ends a session (see [`App::whip_delete`]).
    fn whip_delete(&mut self, now: Instant, conn: ConnId) {
        let _ = (now, conn);
    }

    /// The ICE servers for the `Link` headers.
    fn ice_servers(&mut self, now: Instant) -> Vec<IceServer> {
        let _ = now;
        Vec::new()
    }
}

impl WhipSource for App {
    fn whip_create(
        &mut self,
        now: Instant,
        request: CreateRequest<'_>,
        remote: Option<std::net::SocketAddr>,
    ) -> Result<Created, WhipError> {
        App::whip_create(self, now, request, remote)
    }

    fn whip_resource(&mut self, kind: Kind, group: &str, resource: &str) -> Option<Resource> {
        App::whip_resource(self, kind, group, resource)
    }

    fn whip_patch(
        &mut self,
        now: Instant,
        conn: ConnId,
        fragment: &str,
    ) -> Result<WhipPatched, WhipError> {
        App::whip_patch(self, now, conn, fragment)
    }

    fn whip_delete(&mut self, now: Instant, conn: ConnId) {
        App::whip_delete(self, now, conn)
    }

    fn ice_servers(&mut self, now: Instant) -> Vec<IceServer> {
        App::ice_servers(self, now)
    }
}

/// Whether `path` is a WHIP or WHEP endpoint or resource (the runtime reads a body of up to
/// [`MAX_SDP_BODY`] for these).
pub fn is_whip_path(path: &str) -> bool {
    path.starts_with("/group/") && matches!(split_kind(path).1, ".whip" | ".whep")
}

/// Answers WHIP and WHEP paths; `None` for every other path. `body` is the request body (read
/// for `POST` and `PATCH`), `remote` the client's address.
pub fn route(
    request: &Request,
    body: &[u8],
    files: &dyn FileSource,
    source: &mut dyn WhipSource,
    remote: Option<std::net::SocketAddr>,
    now: Instant,
) -> Option<Response> {
    let target = parse_target(&request.target)?;
    let path = target.path.as_str();
    if !is_whip_path(path) || canonical(path) != path {
        return None;
    }
    if let Some(redirect) = canonical_host(request, path, source) {
        return Some(redirect);
    }
    let (dir, kind_text, rest) = split_kind(path);
    let kind = if kind_text == ".whep" {
        Kind::Whep
    } else {
        Kind::Whip
    };
    let mut response = match group_name(&format!("{dir}/")) {
        None => not_found(files),
        Some(group) if rest.is_empty() => {
            let call = Endpoint {
                request,
                body,
                kind,
                group: &group,
                query: target.query,
                remote,
            };
            endpoint(call, files, source, now)
        }
        Some(group) => resource(request, body, kind, &group, rest, files, source, now),
    };
    response.set_header("Vary", "Origin");
    if let Some(origin) = request.header("origin")
        && origin_allowed(request, source)
    {
        response.set_header("Access-Control-Allow-Origin", origin);
    }
    Some(response)
}

/// A request to an endpoint.
struct Endpoint<'a> {
    request: &'a Request,
    body: &'a [u8],
    kind: Kind,
    group: &'a str,
    query: Option<&'a str>,
    remote: Option<std::net::SocketAddr>,
}

/// `POST /group/<name>/.whip` (or `.whep`): a new session.
fn endpoint(
    call: Endpoint<'_>,
    files: &dyn FileSource,
    source: &mut dyn WhipSource,
    now: Instant,
) -> Response {
    let Endpoint {
        request,
        body,
        kind,
        group,
        query,
        remote,
    } = call;
    match source.group_status(now, group) {
        GroupLookup::Found(_) => {}
        GroupLookup::NotFound => return not_found(files),
        GroupLookup::Invalid(why) => {
            log::warn!("group {group:?}: {why}");
            return internal_error();
        }
    }
    if request.method == "OPTIONS" {
        let mut response = Response::new(200);
        response.set_header("Access-Control-Allow-Methods", "OPTIONS, POST");
        response.set_header(
            "Access-Control-Allow-Headers",
            "Authorization, Content-Type",
        );
        response.set_header("Access-Control-Expose-Headers", "Link");
        add_ice_links(&mut response, &source.ice_servers(now));
        return response;
    }
    if request.method != "POST" {
        return method_not_allowed("OPTIONS, POST");
    }
    if !content_type_is(request, SDP) {
        let mut response = Response::text(415, "Unsupported Media Type");
        response.set_header("Accept", SDP);
        return response;
    }
    if body.len() > MAX_SDP_BODY {
        return Response::text(413, "Request body too large");
    }
    let Ok(offer) = std::str::from_utf8(body) else {
        return Response::text(400, "the offer is not UTF-8 text");
    };
    if offer.trim().is_empty() {
        return Response::text(400, "no SDP offer");
    }
    let token = bearer_token(request);
    let create = CreateRequest {
        kind,
        group,
        token: token.as_deref(),
        offer,
        follow: follow_of(query),
    };
    match source.whip_create(now, create, remote) {
        Ok(created) => {
            let mut response = Response::new(201);
            response.set_header("Content-Type", SDP);
            let location = format!(
                "{}/{}",
                super::path::encode_path(&format!("/group/{group}/{}", kind.path_kind())),
                created.resource
            );
            response.set_header("Location", &location);
            response.set_header("ETag", &created.etag);
            response.set_header(
                "Access-Control-Expose-Headers",
                "Location, Content-Type, Link, ETag",
            );
            add_ice_links(&mut response, &source.ice_servers(now));
            response.body = created.answer.into_bytes().into();
            response
        }
        Err(error) => error_response(&error, files),
    }
}

/// `/group/<name>/.whip/<id>` (or `.whep/<id>`): an existing session.
#[allow(clippy::too_many_arguments)]
fn resource(
    request: &Request,
    body: &[u8],
    kind: Kind,
    group: &str,
    rest: &str,
    files: &dyn FileSource,
    source: &mut dyn WhipSource,
    now: Instant,
) -> Response {
    let id = rest.strip_prefix('/').unwrap_or(rest);
    let well_formed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id)
        .is_ok_and(|bytes| bytes.len() == 16);
    if !well_formed {
        // Galène answers a resource id it cannot decode with 500.
        return internal_error();
    }
    let Some(session) = source.whip_resource(kind, group, id) else {
        return not_found(files);
    };
    if let Some(expected) = &session.token {
        let given = bearer_token(request).unwrap_or_default();
        if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            return Response::text(403, "Forbidden");
        }
    }
    match request.method.as_str() {
        "OPTIONS" => {
            let mut response = Response::new(200);
            response.set_header("Access-Control-Allow-Methods", "OPTIONS, DELETE, PATCH");
            response.set_header(
                "Access-Control-Allow-Headers",
                "Authorization, Content-Type, If-Match, If-None-Match",
            );
            response
        }
        "DELETE" | "PATCH" if !preconditions_hold(request, &session.etag) => Response::new(412),
        "DELETE" => {
            source.whip_delete(now, session.conn);
            Response::new(200)
        }
        "PATCH" => patch(request, body, session.conn, files, source, now),
        _ => method_not_allowed("OPTIONS, DELETE, PATCH"),
    }
}

/// `PATCH` on a session: trickled candidates (204) or an ICE restart (200 with a fragment).
fn patch(
    request: &Request,
    body: &[u8],
    conn: ConnId,
    files: &dyn FileSource,
    source: &mut dyn WhipSource,
    now: Instant,
) -> Response {
    if !content_type_is(request, SDPFRAG) {
        let mut response = Response::text(415, "Unsupported Media Type");
        response.set_header("Accept", SDPFRAG);
        return response;
    }
    if body.len() > MAX_SDP_BODY {
        return Response::text(413, "Request body too large");
    }
    let Ok(fragment) = std::str::from_utf8(body) else {
        return Response::text(400, "bad request");
    };
    match source.whip_patch(now, conn, fragment) {
        Ok(WhipPatched::Trickled) => Response::new(204),
        Ok(WhipPatched::Restarted { etag, fragment }) => {
            let mut response = Response::new(200);
            response.set_header("Content-Type", SDPFRAG);
            response.set_header("ETag", &etag);
            response.set_header("Access-Control-Expose-Headers", "ETag");
            response.body = fragment.into_bytes().into();
            response
        }
        Err(error) => error_response(&error, files),
    }
}

/// The response for a failure.
fn error_response(error: &WhipError, files: &dyn FileSource) -> Response {
    match error {
        WhipError::NoSuchGroup | WhipError::Gone => not_found(files),
        WhipError::NotAuthorised => Response::text(401, "not authorised"),
        WhipError::Forbidden => Response::text(403, "Forbidden"),
        WhipError::Refused(why) => Response::text(403, why),
        WhipError::BadOffer(why) => Response::text(400, why),
        WhipError::BadFragment(_) => Response::text(400, "bad request"),
        WhipError::NoMedia => Response::text(503, crate::streams::NO_MEDIA),
        WhipError::Internal => internal_error(),
    }
}

fn method_not_allowed(allow: &str) -> Response {
    let mut response = Response::text(405, "method not allowed");
    response.set_header("Allow", allow);
    response
}

/// Whether the `Content-Type` is exactly `wanted` (ASCII case-insensitive, surrounding
/// blanks ignored), as Galène requires.
fn content_type_is(request: &Request, wanted: &str) -> bool {
    request
        .header("content-type")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(wanted))
}

/// The token of the first `Bearer` credential of `Authorization` (a comma-separated list).
fn bearer_token(request: &Request) -> Option<String> {
    let header = request.header("authorization")?;
    header.split(',').find_map(|credential| {
        let mut words = credential.trim().split(' ');
        let scheme = words.next()?;
        let token = words.next()?;
        (words.next().is_none() && scheme.eq_ignore_ascii_case("bearer") && !token.is_empty())
            .then(|| token.to_owned())
    })
}

/// `If-Match` and `If-None-Match` against the resource's entity tag (RFC 9110 §13.1.1-2;
/// for methods other than GET and HEAD a matching `If-None-Match` fails too).
fn preconditions_hold(request: &Request, etag: &str) -> bool {
    if let Some(list) = request.header("if-match")
        && !etag_listed(list, etag)
    {
        return false;
    }
    if let Some(list) = request.header("if-none-match")
        && etag_listed(list, etag)
    {
        return false;
    }
    true
}

/// Whether a list of entity tags contains `etag` (or is `*`); weak tags compare equal.
fn etag_listed(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

/// What a WHEP session follows, from the query: `user`, `label` and `stream`.
fn follow_of(query: Option<&str>) -> Follow {
    let mut follow = Follow::default();
    for pair in query.unwrap_or("").split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(value) = percent_decode(&value.replace('+', " ")) else {
            continue;
        };
        match name {
            "user" | "username" => follow.username = Some(value),
            "label" => follow.label = Some(value),
            "stream" => follow.stream = Some(value),
            _ => {}
        }
    }
    follow
}

/// One `Link` header per ICE server URL, as Galène writes them: `stun:` URLs alone, `turn:`
/// and `turns:` with their password credentials; other schemes and TURN servers without a
/// password credential are left out.
fn add_ice_links(response: &mut Response, servers: &[IceServer]) {
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    for server in servers {
        for url in &server.urls {
            let scheme = url.split(':').next().unwrap_or("");
            if scheme.eq_ignore_ascii_case("stun") {
                response.add_header("Link", &format!("<{url}>; rel=\"ice-server\""));
            } else if scheme.eq_ignore_ascii_case("turn") || scheme.eq_ignore_ascii_case("turns") {
                let (Some(credential), None) = (&server.credential, &server.credential_type) else {
                    continue;
                };
                let username = server.username.as_deref().unwrap_or("");
                response.add_header(
                    "Link",
                    &format!(
                        "<{url}>; rel=\"ice-server\"; username=\"{}\"; credential=\"{}\"; \
                         credential-type=\"password\"",
                        quote(username),
                        quote(credential)
                    ),
                );
            }
        }
    }
}
