//! `/galene-api/v0/.stats` (Galène's format; docs/galene.md, "Statistics"): the media statistics of
//! every group, for the global administrator only (HTTP Basic credentials of a `config.json` user
//! with the `admin` permission).

use base64::Engine as _;

use super::source::GroupSource;
use super::{Request, Response};

/// The path of the statistics endpoint.
pub const STATS_PATH: &str = "/galene-api/v0/.stats";

/// Answers a request for [`STATS_PATH`].
pub fn stats(request: &Request, groups: &mut dyn GroupSource) -> Response {
    if request.method != "GET" && request.method != "HEAD" {
        let mut response = Response::text(405, "method not allowed");
        response.set_header("Allow", "GET, HEAD");
        return response;
    }
    let admin = basic_credentials(request).is_some_and(|(user, password)| {
        groups
            .global_config()
            .is_ok_and(|config| config.is_admin(&user, &password))
    });
    if !admin {
        let mut response = Response::text(401, "Haha!");
        response.set_header("WWW-Authenticate", "basic realm=\"/galene-api/\"");
        return response;
    }
    let mut response = Response::new(200);
    response.set_header("Content-Type", "application/json");
    response.set_header("Cache-Control", "no-cache");
    response.body = groups.stats_json().into_bytes().into();
    response
}

/// The user name and password of an `Authorization: Basic` header.
pub(crate) fn basic_credentials(request: &Request) -> Option<(String, String)> {
    let value = request.header("authorization")?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}
