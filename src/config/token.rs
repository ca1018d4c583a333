//! Stateful tokens (invitations), stored in `data/var/tokens.jsonl` (docs/configuration.md,
//! "Tokens").
//!
//! One JSON object per line:
//! `{"token":T,"group":G,"includeSubgroups":true,"username":U,"permissions":[...],
//! "expires":RFC3339,"not-before":RFC3339,"issuedAt":RFC3339,"issuedBy":U}`;
//! `token`, `group` and `permissions` are always written (`permissions` may be `null`), the
//! others only when set. [`TokenFile`] keeps the parsed file in memory, re-reads it when its
//! size or modification time change, appends new tokens and rewrites the file atomically
//! (temporary file + rename) on update and delete; the directory is created `0700` and the
//! file `0600`, and the file is removed when no token is left. Reads go through a
//! [`FileCache`] (refreshed off the executor thread by the runtime when it belongs to a
//! [`super::DiskDirectory`]); writes are synchronous, and tell the cache.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::cache::FileCache;
use super::fields::{Fields, Unknown, format_time, invalid, ordered_object};
use super::stamp::FileStamp;
use super::{ConfigError, Permissions, StatefulToken};

/// The fields of a stateful token in the order Galène writes them.
const TOKEN_FIELD_ORDER: [&str; 9] = [
    "token",
    "group",
    "includeSubgroups",
    "username",
    "permissions",
    "expires",
    "not-before",
    "issuedAt",
    "issuedBy",
];

/// Tokens that expired longer ago than this are purged by [`TokenFile::expire`].
pub const TOKEN_PURGE_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a token does not admit a client to a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    /// The token is for another group.
    WrongGroup,
    /// The token has no expiry or has expired.
    Expired,
    /// The token's `not-before` is in the future.
    NotYetValid,
}

impl std::fmt::Display for TokenRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenRejection::WrongGroup => "token for bad group",
            TokenRejection::Expired => "token has expired",
            TokenRejection::NotYetValid => "token is in the future",
        })
    }
}

impl StatefulToken {
    /// Parses one token object (keys case-insensitive, unknown keys ignored, as in Galène).
    pub fn from_json(value: Value) -> Result<StatefulToken, ConfigError> {
        let mut f = Fields::new(value, &TOKEN_FIELD_ORDER, Unknown::Ignore, "token")?;
        let permissions = match f.take("permissions") {
            Some(p) => Some(Permissions::from_json(&p)?),
            None => None,
        };
        Ok(StatefulToken {
            token: f.string("token")?.unwrap_or_default(),
            group: f.string("group")?.unwrap_or_default(),
            include_subgroups: f.bool("includeSubgroups")?,
            username: f.string("username")?,
            permissions,
            expires: f.time("expires")?,
            not_before: f.time("not-before")?,
            issued_at: f.time("issuedAt")?,
            issued_by: f.string("issuedBy")?,
        })
    }

    /// The JSON object (keys sorted; use [`StatefulToken::to_json_line`] for the file order).
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("token".into(), Value::String(self.token.clone()));
        map.insert("group".into(), Value::String(self.group.clone()));
        if self.include_subgroups {
            map.insert("includeSubgroups".into(), Value::Bool(true));
        }
        if let Some(username) = &self.username {
            map.insert("username".into(), Value::String(username.clone()));
        }
        map.insert(
            "permissions".into(),
            self.permissions
                .as_ref()
                .map_or(Value::Null, Permissions::to_json),
        );
        let times = [
            ("expires", self.expires),
            ("not-before", self.not_before),
            ("issuedAt", self.issued_at),
        ];
        for (key, time) in times {
            if let Some(time) = time {
                map.insert(key.into(), Value::String(format_time(time)));
            }
        }
        if let Some(issued_by) = &self.issued_by {
            map.insert("issuedBy".into(), Value::String(issued_by.clone()));
        }
        Value::Object(map)
    }

    /// One line of `tokens.jsonl` (without the newline), keys in Galène's order.
    pub fn to_json_line(&self) -> String {
        let Value::Object(map) = self.to_json() else {
            return String::new();
        };
        ordered_object(&TOKEN_FIELD_ORDER, |key| map.get(key))
    }

    /// The token as the admin API shows it: its file form without `token` and `group`.
    pub fn to_shown_json(&self) -> String {
        let Value::Object(map) = self.to_json() else {
            return "{}".into();
        };
        ordered_object(&TOKEN_FIELD_ORDER, |key| {
            map.get(key).filter(|_| key != "token" && key != "group")
        })
    }

    /// Whether the token applies to `group`: the same group; or, with `includeSubgroups`,
    /// any group if the token is global (`group: ""`) or a descendant of the token's group.
    /// The empty group name (global admin endpoints) matches only global tokens that include
    /// subgroups.
    pub fn matches_group(&self, group: &str) -> bool {
        if group.is_empty() {
            return self.include_subgroups && self.group.is_empty();
        }
        if group == self.group {
            return true;
        }
        self.include_subgroups
            && (self.group.is_empty()
                || group
                    .strip_prefix(self.group.as_str())
                    .is_some_and(|rest| rest.starts_with('/')))
    }

    /// Checks that the token admits a client to `group` at `now`: group match, `expires`
    /// present and not passed, `not-before` reached.
    pub fn check(&self, group: &str, now: SystemTime) -> Result<(), TokenRejection> {
        if !self.matches_group(group) {
            return Err(TokenRejection::WrongGroup);
        }
        match self.expires {
            Some(expires) if now <= expires => {}
            _ => return Err(TokenRejection::Expired),
        }
        if self.not_before.is_some_and(|not_before| now < not_before) {
            return Err(TokenRejection::NotYetValid);
        }
        Ok(())
    }

    /// Whether the client must supply a username (the token does not set one).
    pub fn needs_username(&self) -> bool {
        self.username.is_none()
    }

    /// Whether the token expired more than [`TOKEN_PURGE_AGE`] before `now`. A token
    /// without expiry is never valid but is not purged either.
    pub fn is_stale(&self, now: SystemTime) -> bool {
        self.expires
            .is_some_and(|expires| expires + TOKEN_PURGE_AGE < now)
    }
}

/// Parses the text of `tokens.jsonl`: one object per line (blank lines allowed); lines that
/// do not parse are logged and skipped. Later lines win over earlier ones with the same name.
pub fn parse_tokens(text: &str) -> BTreeMap<String, StatefulToken> {
    let mut tokens = BTreeMap::new();
    let values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    for value in values {
        let value = match value {
            Ok(value) => value,
            Err(err) => {
                log::warn!("tokens.jsonl: {err}; ignoring the rest of the file");
                break;
            }
        };
        match StatefulToken::from_json(value) {
            Ok(token) if !token.token.is_empty() => {
                tokens.insert(token.token.clone(), token);
            }
            Ok(_) => log::warn!("tokens.jsonl: token without a name, ignored"),
            Err(err) => log::warn!("tokens.jsonl: {err}, token ignored"),
        }
    }
    tokens
}

/// Sorts tokens by expiry, tokens without expiry first (Galène's listing order).
pub fn sort_by_expiry(tokens: &mut [StatefulToken]) {
    tokens.sort_by(|a, b| {
        a.expires
            .cmp(&b.expires)
            .then_with(|| a.token.cmp(&b.token))
    });
}

/// The text of `tokens.jsonl` holding `tokens`: one line each, sorted by expiry (Galène's
/// order when it rewrites the file).
pub fn tokens_text(tokens: &BTreeMap<String, StatefulToken>) -> String {
    let mut list: Vec<&StatefulToken> = tokens.values().collect();
    list.sort_by(|a, b| {
        a.expires
            .cmp(&b.expires)
            .then_with(|| a.token.cmp(&b.token))
    });
    let mut text = String::new();
    for token in list {
        text.push_str(&token.to_json_line());
        text.push('\n');
    }
    text
}

/// The token store backed by `tokens.jsonl`.
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    stamp: Option<FileStamp>,
    tokens: BTreeMap<String, StatefulToken>,
    /// Where the file is looked at and read.
    files: FileCache,
}

impl TokenFile {
    /// A store for the file at `path` (typically `data/var/tokens.jsonl`); nothing is read
    /// until first use.
    pub fn new(path: impl Into<PathBuf>) -> TokenFile {
        TokenFile::reading_through(path, FileCache::unrefreshed())
    }

    /// A store for the file at `path` that reads it through `files`.
    pub(crate) fn reading_through(path: impl Into<PathBuf>, files: FileCache) -> TokenFile {
        TokenFile {
            path: path.into(),
            stamp: None,
            tokens: BTreeMap::new(),
            files,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Re-reads the file if its size or modification time changed.
    pub fn refresh(&mut self) -> Result<(), ConfigError> {
        let file = self
            .files
            .read(&self.path)
            .map_err(|err| err.config_error(&self.path))?;
        let stamp = file.as_ref().map(|file| file.stamp);
        if stamp == self.stamp {
            return Ok(());
        }
        self.tokens = match file {
            None => BTreeMap::new(),
            Some(file) => parse_tokens(&file.text),
        };
        self.stamp = stamp;
        Ok(())
    }

    /// Re-reads the file from disk, whatever the cache says: called with the cache's write
    /// lock held, before a change, so that a change another writer (the admin API's thread)
    /// made since this input's refresh is not lost.
    fn refresh_for_write(&mut self) -> Result<(), ConfigError> {
        self.files.forget(&self.path);
        self.refresh()
    }

    fn refresh_logged(&mut self) {
        if let Err(err) = self.refresh() {
            log::warn!("{err}");
        }
    }

    /// The ETag of the whole file, `"<size>-<mtime ns>"`; `None` when it does not exist.
    pub fn etag(&mut self) -> Option<String> {
        self.refresh_logged();
        self.stamp.map(|stamp| stamp.etag())
    }

    /// Looks a token up by name.
    pub fn get(&mut self, name: &str) -> Option<StatefulToken> {
        self.refresh_logged();
        self.tokens.get(name).cloned()
    }

    /// The tokens of `group` (all tokens when `group` is empty), sorted by expiry.
    pub fn list(&mut self, group: &str) -> Vec<StatefulToken> {
        self.refresh_logged();
        let mut list: Vec<StatefulToken> = self
            .tokens
            .values()
            .filter(|t| group.is_empty() || t.group == group)
            .cloned()
            .collect();
        sort_by_expiry(&mut list);
        list
    }

    /// Appends a new token; an error if a token with that name exists.
    pub fn add(&mut self, token: StatefulToken) -> Result<(), ConfigError> {
        let files = self.files.clone();
        let _writing = files.write_lock();
        self.refresh_for_write()?;
        if token.token.is_empty() {
            return Err(invalid("token without a name"));
        }
        if self.tokens.contains_key(&token.token) {
            return Err(invalid("token already exists"));
        }
        let mut line = token.to_json_line();
        line.push('\n');
        self.append(line.as_bytes())
            .map_err(|e| io_error(&self.path, &e))?;
        self.tokens.insert(token.token.clone(), token);
        self.restamp();
        Ok(())
    }

    /// Replaces the token with the same name; `Ok(false)` if there is none.
    pub fn update(&mut self, token: StatefulToken) -> Result<bool, ConfigError> {
        let files = self.files.clone();
        let _writing = files.write_lock();
        self.refresh_for_write()?;
        let Some(old) = self.tokens.insert(token.token.clone(), token.clone()) else {
            self.tokens.remove(&token.token);
            return Ok(false);
        };
        if let Err(err) = self.rewrite() {
            self.tokens.insert(old.token.clone(), old);
            return Err(err);
        }
        Ok(true)
    }

    /// Deletes a token; `Ok(false)` if there is none.
    pub fn delete(&mut self, name: &str) -> Result<bool, ConfigError> {
        let files = self.files.clone();
        let _writing = files.write_lock();
        self.refresh_for_write()?;
        let Some(old) = self.tokens.remove(name) else {
            return Ok(false);
        };
        if let Err(err) = self.rewrite() {
            self.tokens.insert(old.token.clone(), old);
            return Err(err);
        }
        Ok(true)
    }

    /// Removes the tokens that expired more than a week before `now`; returns how many.
    pub fn expire(&mut self, now: SystemTime) -> Result<usize, ConfigError> {
        let files = self.files.clone();
        let _writing = files.write_lock();
        self.refresh_for_write()?;
        let before = self.tokens.len();
        let kept: BTreeMap<String, StatefulToken> = std::mem::take(&mut self.tokens)
            .into_iter()
            .filter(|(_, t)| !t.is_stale(now))
            .collect();
        let removed = before - kept.len();
        self.tokens = kept;
        if removed > 0 {
            self.rewrite()?;
        }
        Ok(removed)
    }

    fn restamp(&mut self) {
        // If the stat fails, forget the stamp so that the next access re-reads the file.
        self.stamp = FileStamp::of(&self.path).ok().flatten();
        self.files.forget(&self.path);
    }

    fn append(&self, bytes: &[u8]) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            create_private_dir(dir)?;
        }
        let mut options = fs::OpenOptions::new();
        options.append(true).create(true);
        private_mode(&mut options);
        let mut file = options.open(&self.path)?;
        file.write_all(bytes)?;
        file.sync_all()
    }

    fn rewrite(&mut self) -> Result<(), ConfigError> {
        let result = if self.tokens.is_empty() {
            match fs::remove_file(&self.path) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
                _ => Ok(()),
            }
        } else {
            write_atomically(&self.path, tokens_text(&self.tokens).as_bytes())
        };
        self.restamp();
        result.map_err(|e| io_error(&self.path, &e))
    }
}

fn io_error(path: &Path, err: &io::Error) -> ConfigError {
    ConfigError::Io(format!("{}: {err}", path.display()))
}

/// Creates `dir` and its parents with mode `0700`.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn private_mode(options: &mut fs::OpenOptions) {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    #[cfg(not(unix))]
    let _ = options;
}

/// Writes `path` atomically: a `0600` temporary file in the same directory, synced, then
/// renamed over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    private_mode(&mut options);
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| fs::rename(&temp, path));
    if renamed.is_err() {
        let _ = fs::remove_file(&temp);
    }
    renamed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Permission;
    use crate::config::fields::parse_time;
    use serde_json::json;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn token(name: &str, group: &str) -> StatefulToken {
        StatefulToken {
            token: name.into(),
            group: group.into(),
            include_subgroups: false,
            username: None,
            permissions: Some([Permission::Present].into_iter().collect()),
            expires: Some(at(2000)),
            not_before: None,
            issued_at: None,
            issued_by: None,
        }
    }

    #[test]
    fn json_line_format() {
        let t = StatefulToken {
            token: "Zx9".into(),
            group: "city-watch".into(),
            include_subgroups: true,
            username: Some("carrot".into()),
            permissions: Some(
                [Permission::Present, Permission::Message]
                    .into_iter()
                    .collect(),
            ),
            expires: parse_time("2026-08-01T12:00:00Z"),
            not_before: parse_time("2026-07-01T12:00:00Z"),
            issued_at: parse_time("2026-06-01T12:00:00.25Z"),
            issued_by: Some("vimes".into()),
        };
        let line = t.to_json_line();
        assert_eq!(
            line,
            r#"{"token":"Zx9","group":"city-watch","includeSubgroups":true,"username":"carrot","permissions":["present","message"],"expires":"2026-08-01T12:00:00Z","not-before":"2026-07-01T12:00:00Z","issuedAt":"2026-06-01T12:00:00.25Z","issuedBy":"vimes"}"#
        );
        let parsed = StatefulToken::from_json(serde_json::from_str(&line).unwrap()).unwrap();
        assert_eq!(parsed, t);
        let minimal = StatefulToken {
            permissions: None,
            expires: None,
            ..token("a", "")
        };
        assert_eq!(
            minimal.to_json_line(),
            r#"{"token":"a","group":"","permissions":null}"#
        );
    }

    #[test]
    fn parse_is_lenient_with_keys_strict_with_types() {
        let t = StatefulToken::from_json(json!({"TOKEN": "x", "group": "g", "extra": 1,
            "username": "", "expires": "2026-08-01T14:00:00+02:00"}))
        .unwrap();
        assert_eq!(t.token, "x");
        assert_eq!(t.username.as_deref(), Some(""));
        assert_eq!(t.expires, parse_time("2026-08-01T12:00:00Z"));
        assert!(!t.needs_username());
        assert!(StatefulToken::from_json(json!({"token": 1})).is_err());
        assert!(StatefulToken::from_json(json!({"token": "x", "expires": 5})).is_err());
    }

    #[test]
    fn group_matching() {
        let plain = token("t", "a/b");
        assert!(plain.matches_group("a/b"));
        assert!(!plain.matches_group("a/b/c"));
        assert!(!plain.matches_group("a"));
        assert!(!plain.matches_group(""));
        let sub = StatefulToken {
            include_subgroups: true,
            ..plain.clone()
        };
        assert!(sub.matches_group("a/b"));
        assert!(sub.matches_group("a/b/c"));
        assert!(sub.matches_group("a/b/c/d"));
        assert!(!sub.matches_group("a/bc"));
        assert!(!sub.matches_group("a"));
        let global = token("t", "");
        assert!(!global.matches_group("x"));
        assert!(!global.matches_group(""));
        let global_sub = StatefulToken {
            include_subgroups: true,
            ..global
        };
        assert!(global_sub.matches_group("x"));
        assert!(global_sub.matches_group("x/y"));
        assert!(global_sub.matches_group(""));
    }

    #[test]
    fn validity() {
        let t = StatefulToken {
            not_before: Some(at(1000)),
            ..token("t", "g")
        };
        assert_eq!(t.check("g", at(999)), Err(TokenRejection::NotYetValid));
        assert_eq!(t.check("g", at(1000)), Ok(()));
        assert_eq!(t.check("g", at(2000)), Ok(()));
        assert_eq!(t.check("g", at(2001)), Err(TokenRejection::Expired));
        assert_eq!(t.check("h", at(1500)), Err(TokenRejection::WrongGroup));
        let forever = StatefulToken {
            expires: None,
            ..token("t", "g")
        };
        assert_eq!(forever.check("g", at(1)), Err(TokenRejection::Expired));
        assert!(forever.needs_username());
        assert!(!forever.is_stale(at(u64::from(u32::MAX))));
        assert!(!t.is_stale(at(2000) + TOKEN_PURGE_AGE));
        assert!(t.is_stale(at(2001) + TOKEN_PURGE_AGE));
    }

    #[test]
    fn jsonl_parsing_skips_bad_entries() {
        let text = "{\"token\":\"a\",\"group\":\"g\"}\n\n{\"token\":\"b\",\"group\":3}\n{\"group\":\"g\"}\n{\"token\":\"a\",\"group\":\"h\"}\n{broken\n{\"token\":\"c\"}\n";
        let tokens = parse_tokens(text);
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens["a"].group, "h");
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sfubox-config-token-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn file_store() {
        let dir = scratch("store");
        let path = dir.join("var").join("tokens.jsonl");
        let mut store = TokenFile::new(&path);
        assert_eq!(store.get("a"), None);
        assert_eq!(store.etag(), None);
        store.add(token("a", "g")).unwrap();
        store
            .add(StatefulToken {
                expires: Some(at(1000)),
                ..token("b", "g")
            })
            .unwrap();
        store.add(token("c", "other")).unwrap();
        assert!(store.add(token("a", "g")).is_err());

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(
            text.lines()
                .next()
                .unwrap()
                .starts_with(r#"{"token":"a","group":"g""#)
        );

        let names: Vec<String> = store.list("g").into_iter().map(|t| t.token).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(store.list("").len(), 3);

        // Another store on the same file sees the same tokens.
        let mut other = TokenFile::new(&path);
        assert_eq!(other.get("c").unwrap().group, "other");

        let mut changed = token("a", "g");
        changed.expires = Some(at(5000));
        assert!(store.update(changed).unwrap());
        assert!(!store.update(token("zz", "g")).unwrap());
        assert_eq!(store.get("zz"), None);
        assert_eq!(other.get("a").unwrap().expires, Some(at(5000)));
        assert!(other.etag().unwrap().starts_with('"'));

        assert!(store.delete("c").unwrap());
        assert!(!store.delete("c").unwrap());
        assert_eq!(other.get("c"), None);

        // "b" expired at 1000 and is purged a week later; "a" stays.
        assert_eq!(store.expire(at(1000) + TOKEN_PURGE_AGE).unwrap(), 0);
        assert_eq!(store.expire(at(1001) + TOKEN_PURGE_AGE).unwrap(), 1);
        assert_eq!(other.get("b"), None);
        assert!(other.get("a").is_some());

        assert!(store.delete("a").unwrap());
        assert!(!path.exists());
        assert_eq!(other.get("a"), None);
        let _ = fs::remove_dir_all(&dir);
    }
}
