//! External STUN/TURN servers, `data/ice-servers.json` (docs/configuration.md, "ICE servers").
//!
//! The file is an array of W3C `RTCIceServer`-like objects with an extra credential type,
//! `hmac-sha1`: coturn's shared-secret scheme (`use-auth-secret`), for which the server mints
//! short-lived credentials: username `<unix time + 86400>` (or `<unix time + 86400>:<username>`
//! when the entry has a username) and credential `base64(HMAC-SHA1(secret, username))`.
//! Entries with errors are skipped and logged; the rest are used.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::Value;

use super::fields::{Fields, Unknown, invalid};
use super::group::first_json_value;
use super::{ConfigError, IceServer};

/// Lifetime of minted `hmac-sha1` credentials, in seconds.
pub const HMAC_CREDENTIAL_LIFETIME: u64 = 86400;

/// How an entry's credential is to be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// Sent as is (`credentialType` absent, `""` or `"password"`).
    Password,
    /// Sent as is with `credentialType: "oauth"`.
    Oauth,
    /// The credential is a shared secret; per-request credentials are minted from it.
    HmacSha1,
}

/// One usable entry of `ice-servers.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceServerEntry {
    /// `stun:`/`turn:`/`turns:` URLs.
    pub urls: Vec<String>,
    /// Username (for `hmac-sha1`: the suffix of the minted username).
    pub username: Option<String>,
    /// Credential (for `hmac-sha1`: the shared secret).
    pub credential: Option<String>,
    /// How to use the credential.
    pub kind: CredentialKind,
}

/// Parses `ice-servers.json`. A file that is not a JSON array is an error; bad entries are
/// skipped (and logged).
pub fn parse_ice_servers(text: &str) -> Result<Vec<IceServerEntry>, ConfigError> {
    let Value::Array(items) = first_json_value(text)? else {
        return Err(invalid("ice-servers.json must be an array"));
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        match IceServerEntry::from_json(item) {
            Ok(entry) => entries.push(entry),
            Err(err) => log::warn!("Parse ICE server: {err}, entry skipped"),
        }
    }
    Ok(entries)
}

impl IceServerEntry {
    /// Parses one entry (keys case-insensitive, unknown keys ignored).
    pub fn from_json(value: Value) -> Result<IceServerEntry, ConfigError> {
        let mut f = Fields::new(
            value,
            &["urls", "username", "credential", "credentialType"],
            Unknown::Ignore,
            "ICE server",
        )?;
        let urls = match f.take("urls") {
            Some(Value::String(url)) => vec![url],
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(url) => Ok(url),
                    _ => Err(invalid("ICE server URLs must be strings")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(invalid("ICE server URLs must be strings")),
            None => Vec::new(),
        };
        if urls.is_empty() {
            return Err(invalid("ICE server without URLs"));
        }
        let username = f.non_empty_string("username")?;
        let credential = match f.take("credential") {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(invalid("ICE server credential is not a string")),
        };
        let kind = match f.string("credentialType")?.as_deref() {
            None | Some("") | Some("password") => CredentialKind::Password,
            Some("oauth") => CredentialKind::Oauth,
            Some("hmac-sha1") => {
                if credential.is_none() {
                    return Err(invalid("ICE server credential is not a string"));
                }
                CredentialKind::HmacSha1
            }
            Some(other) => {
                return Err(invalid(format!("unsupported credential type {other:?}")));
            }
        };
        Ok(IceServerEntry {
            urls,
            username,
            credential,
            kind,
        })
    }

    /// An entry that hands out fixed credentials (as given by a W3C `RTCIceServer`).
    pub fn from_server(server: &IceServer) -> IceServerEntry {
        IceServerEntry {
            urls: server.urls.clone(),
            username: server.username.clone(),
            credential: server.credential.clone(),
            kind: match server.credential_type.as_deref() {
                Some("oauth") => CredentialKind::Oauth,
                _ => CredentialKind::Password,
            },
        }
    }

    /// The server as sent to clients at `now` (minting `hmac-sha1` credentials).
    pub fn resolve(&self, now: SystemTime) -> IceServer {
        match self.kind {
            CredentialKind::Password | CredentialKind::Oauth => IceServer {
                urls: self.urls.clone(),
                username: self.username.clone(),
                credential: self.credential.clone(),
                credential_type: (self.kind == CredentialKind::Oauth).then(|| "oauth".to_owned()),
            },
            CredentialKind::HmacSha1 => {
                let expiry = now
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
                    .saturating_add(HMAC_CREDENTIAL_LIFETIME);
                let username = match &self.username {
                    Some(name) => format!("{expiry}:{name}"),
                    None => expiry.to_string(),
                };
                let secret = self.credential.as_deref().unwrap_or_default();
                let key = aws_lc_rs::hmac::Key::new(
                    aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                    secret.as_bytes(),
                );
                let tag = aws_lc_rs::hmac::sign(&key, username.as_bytes());
                IceServer {
                    urls: self.urls.clone(),
                    username: Some(username),
                    credential: Some(
                        base64::engine::general_purpose::STANDARD.encode(tag.as_ref()),
                    ),
                    credential_type: None,
                }
            }
        }
    }
}

/// Resolves every entry at `now`.
pub fn resolve_ice_servers(entries: &[IceServerEntry], now: SystemTime) -> Vec<IceServer> {
    entries.iter().map(|entry| entry.resolve(now)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parses_and_resolves() {
        let entries = parse_ice_servers(
            r#"[{"urls":["stun:stun.example.org"]},
                {"urls":["turn:turn.example.org:443","turn:turn.example.org:443?transport=tcp"],
                 "username":"u","credential":"p","credentialType":"password","extra":1},
                {"URLS":"turn:o.example.org","username":"u","credential":"tok","credentialType":"oauth"},
                {"urls":["turn:h.example.org"],"credential":"secret","credentialType":"hmac-sha1"},
                {"urls":["turn:h.example.org"],"username":"bob","credential":"secret","credentialType":"hmac-sha1"},
                {"urls":["turn:bad.example.org"],"credentialType":"kerberos"},
                {"urls":["turn:bad.example.org"],"credentialType":"hmac-sha1"},
                {"urls":["turn:bad.example.org"],"credential":{"macKey":"x"}},
                {"urls":[]},
                {"urls":[3]},
                7]"#,
        )
        .unwrap();
        assert_eq!(entries.len(), 5);
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let servers = resolve_ice_servers(&entries, now);
        assert_eq!(
            servers[0],
            IceServer {
                urls: vec!["stun:stun.example.org".into()],
                username: None,
                credential: None,
                credential_type: None,
            }
        );
        assert_eq!(servers[1].urls.len(), 2);
        assert_eq!(servers[1].username.as_deref(), Some("u"));
        assert_eq!(servers[1].credential.as_deref(), Some("p"));
        assert_eq!(servers[1].credential_type, None);
        assert_eq!(servers[2].urls, ["turn:o.example.org"]);
        assert_eq!(servers[2].credential_type.as_deref(), Some("oauth"));
        assert_eq!(servers[3].username.as_deref(), Some("1086400"));
        assert_eq!(servers[3].credential_type, None);
        assert_eq!(servers[4].username.as_deref(), Some("1086400:bob"));
        // base64(HMAC-SHA1("secret", "1086400")), computed independently with openssl.
        assert_eq!(
            servers[3].credential.as_deref(),
            Some("KZRVcct+Z1rCKJM26hVHSG0GjCw=")
        );
        assert_ne!(servers[3].credential, servers[4].credential);
    }

    #[test]
    fn whole_file_errors() {
        assert!(parse_ice_servers("{}").is_err());
        assert!(parse_ice_servers("[").is_err());
        assert_eq!(parse_ice_servers("[]").unwrap(), Vec::new());
    }

    #[test]
    fn fixed_servers_round_trip() {
        let server = IceServer {
            urls: vec!["turn:x".into()],
            username: Some("u".into()),
            credential: Some("c".into()),
            credential_type: Some("oauth".into()),
        };
        assert_eq!(
            IceServerEntry::from_server(&server).resolve(UNIX_EPOCH),
            server
        );
    }
}
