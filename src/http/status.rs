//! Group status objects as HTTP serves them (`.status`, `/public-groups.json`; docs/galene.md,
//! "HTTP"), and the base URL they are built from.

use serde::Serialize;

use crate::core::GroupStatus;

/// The externally visible base of the server: `<scheme>://<host><path>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// `http` or `https` (or whatever `proxyURL` says).
    pub scheme: String,
    /// Host and optional port.
    pub host: String,
    /// Path prefix without a trailing slash; `""` at the root.
    pub path: String,
}

/// `proxyURL` cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadProxyUrl;

impl BaseUrl {
    /// Computes the base URL of a request: scheme from the transport, host from the `Host`
    /// header, both overridden by `proxyURL`'s scheme and host when non-empty, and the base
    /// path taken from `proxyURL`.
    pub fn compute(tls: bool, host: &str, proxy_url: Option<&str>) -> Result<BaseUrl, BadProxyUrl> {
        let mut base = BaseUrl {
            scheme: if tls { "https" } else { "http" }.to_owned(),
            host: host.to_owned(),
            path: String::new(),
        };
        if let Some(proxy) = proxy_url.filter(|p| !p.is_empty()) {
            let parts = split_url(proxy)?;
            if let Some(scheme) = parts.scheme {
                base.scheme = scheme.to_ascii_lowercase();
            }
            if !parts.host.is_empty() {
                base.host = parts.host.to_owned();
            }
            base.path = parts.path.trim_end_matches('/').to_owned();
        }
        Ok(base)
    }

    /// `<scheme>://<host><base path>`.
    pub fn to_url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.path)
    }

    /// The group page: `<base>/group/<name>/`.
    pub fn location(&self, group: &str) -> String {
        let joined = super::path::clean(&format!("/{}/group/{group}", self.path));
        format!("{}://{}{joined}/", self.scheme, self.host)
    }

    /// The WebSocket endpoint: `ws://` iff the scheme is `http`, `wss://` otherwise.
    pub fn endpoint(&self) -> String {
        let scheme = if self.scheme == "http" { "ws" } else { "wss" };
        let joined = super::path::clean(&format!("/{}/ws", self.path));
        format!("{scheme}://{}{joined}", self.host)
    }
}

struct UrlParts<'a> {
    scheme: Option<&'a str>,
    host: &'a str,
    path: &'a str,
}

/// Splits an absolute or relative URL into scheme, authority host and path, like Go's
/// `url.Parse` for the cases `proxyURL` meets.
fn split_url(url: &str) -> Result<UrlParts<'_>, BadProxyUrl> {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    let (scheme, rest) = match url.split_once(':') {
        Some((scheme, rest)) if is_scheme(scheme) => (Some(scheme), rest),
        Some(("", _)) => return Err(BadProxyUrl),
        Some((before, _)) if !before.contains('/') => return Err(BadProxyUrl),
        _ => (None, url),
    };
    let (host, path) = match rest.strip_prefix("//") {
        Some(authority_and_path) => match authority_and_path.find('/') {
            Some(i) => authority_and_path.split_at(i),
            None => (authority_and_path, ""),
        },
        None => ("", rest),
    };
    // Drop user information, which has no place in a base URL.
    let host = host.rsplit('@').next().unwrap_or(host);
    Ok(UrlParts { scheme, host, path })
}

fn is_scheme(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
}

/// The JSON object of one group, fields in Galène's order, empty ones omitted.
#[derive(Debug, Serialize)]
struct StatusJson<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    #[serde(rename = "displayName", skip_serializing_if = "is_blank")]
    display_name: Option<&'a str>,
    #[serde(skip_serializing_if = "is_blank")]
    description: Option<&'a str>,
    #[serde(rename = "authServer", skip_serializing_if = "is_blank")]
    auth_server: Option<&'a str>,
    #[serde(rename = "authPortal", skip_serializing_if = "is_blank")]
    auth_portal: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    locked: bool,
    #[serde(rename = "clientCount", skip_serializing_if = "Option::is_none")]
    client_count: Option<usize>,
}

fn is_blank(value: &Option<&str>) -> bool {
    value.is_none_or(str::is_empty)
}

/// Serialises a value followed by a newline, as Go's `json.Encoder` does.
fn json_line<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising plain data into a Vec cannot fail.
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// The body of `.status`: one object and a newline, fields in Galène's order.
pub fn status_bytes(status: &GroupStatus, base: &BaseUrl) -> Vec<u8> {
    json_line(&status_object(status, base))
}

/// The body of `/public-groups.json`: an array (possibly empty) and a newline.
pub fn public_groups_bytes(groups: &[GroupStatus], base: &BaseUrl) -> Vec<u8> {
    let objects: Vec<StatusJson<'_>> = groups.iter().map(|g| status_object(g, base)).collect();
    json_line(&objects)
}

/// The status object of a group as HTTP serves it. A redirect group shows only its name,
/// redirect, display name and description; `locked` and `clientCount` appear only for
/// public groups.
fn status_object<'a>(status: &'a GroupStatus, base: &BaseUrl) -> StatusJson<'a> {
    let redirect = status.redirect.as_deref().filter(|r| !r.is_empty());
    match redirect {
        Some(redirect) => StatusJson {
            name: &status.name,
            redirect: Some(redirect),
            location: None,
            endpoint: None,
            display_name: status.display_name.as_deref(),
            description: status.description.as_deref(),
            auth_server: None,
            auth_portal: None,
            locked: false,
            client_count: None,
        },
        None => StatusJson {
            name: &status.name,
            redirect: None,
            location: Some(base.location(&status.name)),
            endpoint: Some(base.endpoint()),
            display_name: status.display_name.as_deref(),
            description: status.description.as_deref(),
            auth_server: status.auth_server.as_deref(),
            auth_portal: status.auth_portal.as_deref(),
            locked: status.public && status.locked,
            client_count: status.public.then_some(status.client_count),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(proxy: &str, tls: bool) -> String {
        let proxy = (!proxy.is_empty()).then_some(proxy);
        BaseUrl::compute(tls, "a.org", proxy).unwrap().to_url()
    }

    #[test]
    fn base_url_vectors_from_galene() {
        assert_eq!(base("", true), "https://a.org");
        assert_eq!(base("", false), "http://a.org");
        assert_eq!(base("/base", true), "https://a.org/base");
        assert_eq!(base("http:", true), "http://a.org");
        assert_eq!(base("https:/base", false), "https://a.org/base");
        assert_eq!(base("https://b.org", true), "https://b.org");
        assert_eq!(base("https://b.org", false), "https://b.org");
    }

    #[test]
    fn bad_proxy_url_is_an_error() {
        assert_eq!(BaseUrl::compute(true, "a", Some(":x")), Err(BadProxyUrl));
        assert_eq!(BaseUrl::compute(true, "a", Some("1ab:x")), Err(BadProxyUrl));
    }

    #[test]
    fn location_and_endpoint() {
        let plain = BaseUrl::compute(false, "h:8443", Some("/base/")).unwrap();
        assert_eq!(plain.location("a/b"), "http://h:8443/base/group/a/b/");
        assert_eq!(plain.endpoint(), "ws://h:8443/base/ws");
        let tls = BaseUrl::compute(true, "h", None).unwrap();
        assert_eq!(tls.location("x"), "https://h/group/x/");
        assert_eq!(tls.endpoint(), "wss://h/ws");
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn status_fields_follow_galene_rules() {
        let base = BaseUrl::compute(true, "g.org", None).unwrap();
        let mut status = GroupStatus {
            name: "city".into(),
            display_name: Some("City".into()),
            description: Some("Night".into()),
            auth_server: Some("".into()),
            locked: true,
            client_count: 0,
            ..GroupStatus::default()
        };
        // Not public: no locked, no clientCount.
        assert_eq!(
            text(status_bytes(&status, &base)),
            "{\"name\":\"city\",\"location\":\"https://g.org/group/city/\",\
             \"endpoint\":\"wss://g.org/ws\",\"displayName\":\"City\",\"description\":\"Night\"}\n"
        );
        status.public = true;
        assert!(
            text(status_bytes(&status, &base)).ends_with(",\"locked\":true,\"clientCount\":0}\n")
        );
        status.locked = false;
        status.client_count = 3;
        assert!(
            text(status_bytes(&status, &base))
                .ends_with("\"description\":\"Night\",\"clientCount\":3}\n")
        );
        status.redirect = Some("https://elsewhere/".into());
        status.auth_portal = Some("https://portal/".into());
        assert_eq!(
            text(status_bytes(&status, &base)),
            "{\"name\":\"city\",\"redirect\":\"https://elsewhere/\",\"displayName\":\"City\",\
             \"description\":\"Night\"}\n"
        );
    }

    #[test]
    fn public_groups_array() {
        let base = BaseUrl::compute(false, "h", None).unwrap();
        assert_eq!(text(public_groups_bytes(&[], &base)), "[]\n");
        let groups = [GroupStatus {
            name: "p".into(),
            public: true,
            ..GroupStatus::default()
        }];
        assert_eq!(
            text(public_groups_bytes(&groups, &base)),
            "[{\"name\":\"p\",\"location\":\"http://h/group/p/\",\"endpoint\":\"ws://h/ws\",\
             \"clientCount\":0}]\n"
        );
    }
}
