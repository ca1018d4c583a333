//! The two [`Directory`] implementations: [`DiskDirectory`] over the real `groups/` and
//! `data/` directories, and [`MemoryDirectory`] for tests of the rest of the server.
//!
//! Both resolve auto-subgroups the same way, as Galène does (docs/configuration.md,
//! "Auto-subgroups"): for `a/b/c` they try `a/b/c`, then `a/b`, then `a`; the first description
//! found decides. A parent is used only if it has `auto-subgroups`; the subgroup inherits
//! everything except `public` (false) and `description` (cleared), and carries the parent's
//! revision.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::cache::FileCache;
use super::camus::{CamusRooms, parse_camus_rooms};
use super::ice::{IceServerEntry, parse_ice_servers, resolve_ice_servers};
use super::names::valid_group_name;
use super::stamp::FileStamp;
use super::token::{TokenFile, sort_by_expiry};
use super::{
    ConfigError, Description, Directory, GlobalConfig, GroupEntry, IceServer, Password,
    PermissionsSpec, StatefulToken, UserEntry,
};

/// Name of the group served when the groups directory does not exist.
pub const EMBEDDED_GROUP_NAME: &str = "public";

/// Resolves `name` through `load`, which returns the description stored under an exact
/// name together with its revision.
pub(crate) fn resolve_group(
    name: &str,
    mut load: impl FnMut(&str) -> Result<Option<(Arc<Description>, u64)>, ConfigError>,
) -> Result<Option<GroupEntry>, ConfigError> {
    if !valid_group_name(name) {
        return Ok(None);
    }
    let mut candidate = name;
    loop {
        if let Some((description, revision)) = load(candidate)? {
            if candidate == name {
                return Ok(Some(GroupEntry {
                    name: name.to_owned(),
                    description,
                    is_subgroup: false,
                    revision,
                }));
            }
            if !description.auto_subgroups {
                return Ok(None);
            }
            let mut inherited = Description::clone(&description);
            inherited.public = false;
            inherited.description = None;
            return Ok(Some(GroupEntry {
                name: name.to_owned(),
                description: Arc::new(inherited),
                is_subgroup: true,
                revision,
            }));
        }
        match candidate.rsplit_once('/') {
            Some((parent, _)) => candidate = parent,
            None => return Ok(None),
        }
    }
}

/// One parsed file and the stamp it was parsed from.
#[derive(Debug)]
struct Cached<T> {
    stamp: FileStamp,
    value: Result<T, ConfigError>,
    revision: u64,
}

/// Returns the parsed content of `path`, as `files` has it for the current input (see
/// [`FileCache`]), parsing it again only if its stamp changed. `Ok(None)` when the file does
/// not exist. Parse errors are logged once, when the file is parsed.
fn load_cached<T: Clone>(
    cache: &mut Option<Cached<T>>,
    files: &FileCache,
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, ConfigError>,
    next_revision: &mut u64,
) -> Result<Option<(T, u64)>, ConfigError> {
    let Some(file) = files.read(path).map_err(|err| err.config_error(path))? else {
        *cache = None;
        return Ok(None);
    };
    let stamp = file.stamp;
    if let Some(cached) = cache.as_ref().filter(|c| c.stamp == stamp) {
        return cached.value.clone().map(|v| Some((v, cached.revision)));
    }
    let value = parse(&file.text).map_err(|err| match err {
        ConfigError::Invalid(why) => ConfigError::Invalid(format!("{}: {why}", path.display())),
        other => other,
    });
    if let Err(err) = &value {
        log::error!("{err}");
    }
    *next_revision += 1;
    let revision = *next_revision;
    let result = value.clone().map(|v| Some((v, revision)));
    *cache = Some(Cached {
        stamp,
        value,
        revision,
    });
    result
}

/// The description of the built-in group used when there is no groups directory: public,
/// and anyone may join under any name with the `present` preset.
pub fn embedded_description() -> Description {
    Description {
        public: true,
        description: Some(
            "Built-in public group: anyone may join under any name. \
             Create a groups directory to define your own groups."
                .to_owned(),
        ),
        wildcard_user: Some(UserEntry {
            password: Some(Password::Wildcard),
            permissions: Some(PermissionsSpec::Preset("present".to_owned())),
        }),
        codecs: super::group::DEFAULT_CODECS
            .iter()
            .map(|c| (*c).to_owned())
            .collect(),
        ..Description::default()
    }
}

/// The configuration as files on disk: `groups/**.json`, `data/config.json`,
/// `data/ice-servers.json`, `data/camus-rooms.json` and `data/var/tokens.jsonl`. Every access
/// checks the file's size and modification time and re-reads it when they changed; the
/// checks and reads go through a [`FileCache`], which the runtime refreshes off the
/// executor thread before the inputs that need them ([`DiskDirectory::file_cache`]).
///
/// When the groups directory does not exist at construction, one built-in group,
/// [`EMBEDDED_GROUP_NAME`], is served instead (see [`embedded_description`]).
#[derive(Debug)]
pub struct DiskDirectory {
    groups_dir: PathBuf,
    data_dir: PathBuf,
    embedded: Option<Arc<Description>>,
    groups: HashMap<PathBuf, Option<Cached<Arc<Description>>>>,
    config: Option<Cached<Arc<GlobalConfig>>>,
    ice: Option<Cached<Vec<IceServerEntry>>>,
    camus: Option<Cached<Arc<CamusRooms>>>,
    tokens: TokenFile,
    next_revision: u64,
    /// Every look at the files above (writes of the tokens excepted).
    files: FileCache,
}

impl DiskDirectory {
    /// A directory over `groups_dir` (Galène's `-groups`) and `data_dir` (`-data`).
    pub fn new(groups_dir: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> DiskDirectory {
        let groups_dir = groups_dir.into();
        let data_dir = data_dir.into();
        let embedded = if groups_dir.is_dir() {
            None
        } else {
            log::warn!(
                "Groups directory {} does not exist: serving the built-in group \
                 \"{EMBEDDED_GROUP_NAME}\" (public, anyone may join under any name). \
                 To define groups, create {} and put one <name>.json file per group in it; \
                 global settings go to {}, external TURN servers to {}.",
                groups_dir.display(),
                groups_dir.display(),
                data_dir.join("config.json").display(),
                data_dir.join("ice-servers.json").display(),
            );
            Some(Arc::new(embedded_description()))
        };
        let files = FileCache::new(groups_dir.clone(), data_dir.clone(), embedded.is_none());
        let tokens = TokenFile::reading_through(files.tokens_file(), files.clone());
        DiskDirectory {
            groups_dir,
            data_dir,
            embedded,
            groups: HashMap::new(),
            config: None,
            ice: None,
            camus: None,
            tokens,
            next_revision: 0,
            files,
        }
    }

    /// The cache every read of the configuration files goes through, for the runtime to
    /// refresh (see [`FileCache`]).
    pub fn file_cache(&self) -> FileCache {
        self.files.clone()
    }

    /// Whether the built-in group is served because the groups directory was missing (until
    /// the admin API creates it).
    pub fn uses_embedded_default(&self) -> bool {
        self.serving_embedded().is_some()
    }

    /// The built-in group's description while it is served.
    fn serving_embedded(&self) -> Option<&Arc<Description>> {
        self.embedded
            .as_ref()
            .filter(|_| !self.files.groups_on_disk())
    }

    /// The groups directory.
    pub fn groups_dir(&self) -> &Path {
        &self.groups_dir
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The file a group with exactly this name is read from (no subgroup resolution).
    pub fn group_file(&self, name: &str) -> PathBuf {
        self.files.group_file(name)
    }

    /// Whether `data/ice-servers.json` exists (Galène's `-turn auto` starts the built-in
    /// TURN server only when it does not).
    pub fn ice_servers_file_exists(&self) -> bool {
        self.data_dir.join("ice-servers.json").is_file()
    }

    /// The stateful token store.
    pub fn token_file(&mut self) -> &mut TokenFile {
        &mut self.tokens
    }

    /// Reads (or re-reads) the description stored under exactly `name`.
    fn load_exact(&mut self, name: &str) -> Result<Option<(Arc<Description>, u64)>, ConfigError> {
        let path = self.group_file(name);
        let cache = self.groups.entry(path.clone()).or_default();
        let result = load_cached(
            cache,
            &self.files,
            &path,
            |text| Description::from_json_str(text).map(Arc::new),
            &mut self.next_revision,
        );
        if cache.is_none() {
            self.groups.remove(&path);
        }
        result
    }

    /// Names of every group file on disk (`a/b.json` → `a/b`), skipping dotfiles and dot
    /// directories, sorted. Auto-subgroups are not listed.
    pub fn group_names(&self) -> Vec<String> {
        if self.serving_embedded().is_some() {
            return vec![EMBEDDED_GROUP_NAME.to_owned()];
        }
        self.files.group_names()
    }
}

impl Directory for DiskDirectory {
    fn group(&mut self, name: &str) -> Result<Option<GroupEntry>, ConfigError> {
        if let Some(embedded) = self.serving_embedded() {
            return Ok((name == EMBEDDED_GROUP_NAME).then(|| GroupEntry {
                name: name.to_owned(),
                description: Arc::clone(embedded),
                is_subgroup: false,
                revision: 0,
            }));
        }
        resolve_group(name, |candidate| self.load_exact(candidate))
    }

    fn public_group_names(&mut self) -> Vec<String> {
        let names = self.group_names();
        if self.serving_embedded().is_some() {
            return names;
        }
        names
            .into_iter()
            .filter(|name| match self.load_exact(name) {
                Ok(Some((description, _))) => description.public,
                _ => false,
            })
            .collect()
    }

    fn config(&mut self) -> Result<Arc<GlobalConfig>, ConfigError> {
        let path = self.files.config_file();
        let loaded = load_cached(
            &mut self.config,
            &self.files,
            &path,
            |text| GlobalConfig::from_json_str(text).map(Arc::new),
            &mut self.next_revision,
        )?;
        Ok(loaded.map(|(config, _)| config).unwrap_or_default())
    }

    fn ice_servers(&mut self, now: SystemTime) -> Vec<IceServer> {
        let path = self.files.ice_servers_file();
        match load_cached(
            &mut self.ice,
            &self.files,
            &path,
            parse_ice_servers,
            &mut self.next_revision,
        ) {
            Ok(Some((entries, _))) => resolve_ice_servers(&entries, now),
            Ok(None) | Err(_) => Vec::new(),
        }
    }

    fn token(&mut self, name: &str) -> Option<StatefulToken> {
        self.tokens.get(name)
    }

    fn add_token(&mut self, token: StatefulToken) -> Result<(), ConfigError> {
        self.tokens.add(token)
    }

    fn update_token(&mut self, token: StatefulToken) -> Result<bool, ConfigError> {
        self.tokens.update(token)
    }

    fn tokens_of_group(&mut self, group: &str) -> Vec<StatefulToken> {
        self.tokens.list(group)
    }

    fn delete_token(&mut self, name: &str) -> Result<bool, ConfigError> {
        self.tokens.delete(name)
    }

    fn expire_tokens(&mut self, now: SystemTime) -> Result<usize, ConfigError> {
        self.tokens.expire(now)
    }

    fn file_cache(&self) -> Option<FileCache> {
        Some(self.files.clone())
    }

    fn camus_rooms(&mut self) -> Result<Arc<CamusRooms>, ConfigError> {
        let path = self.files.camus_rooms_file();
        let embedded = self.serving_embedded().is_some();
        let loaded = load_cached(
            &mut self.camus,
            &self.files,
            &path,
            |text| parse_camus_rooms(text).map(|file| Arc::new(file.resolve(embedded))),
            &mut self.next_revision,
        )?;
        Ok(loaded.map(|(rooms, _)| rooms).unwrap_or_else(|| {
            Arc::new(CamusRooms {
                auto_create: embedded,
                rooms: Vec::new(),
            })
        }))
    }
}

/// Everything in memory, for tests. Setting a group again gives it a new revision, which is
/// how tests simulate a group file being edited on disk.
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    groups: BTreeMap<String, (Arc<Description>, u64)>,
    config: Arc<GlobalConfig>,
    config_error: Option<ConfigError>,
    ice: Vec<IceServerEntry>,
    tokens: BTreeMap<String, StatefulToken>,
    camus: Arc<CamusRooms>,
    camus_error: Option<ConfigError>,
    next_revision: u64,
}

impl MemoryDirectory {
    /// An empty directory: no groups, default config, no ICE servers, no tokens.
    pub fn new() -> MemoryDirectory {
        MemoryDirectory::default()
    }

    /// Defines (or redefines) the group stored under exactly `name`; returns its revision.
    pub fn set_group(&mut self, name: &str, description: Description) -> u64 {
        self.next_revision += 1;
        self.groups
            .insert(name.to_owned(), (Arc::new(description), self.next_revision));
        self.next_revision
    }

    /// Like [`MemoryDirectory::set_group`], parsing a group file's JSON text.
    pub fn set_group_json(&mut self, name: &str, json: &str) -> Result<u64, ConfigError> {
        Ok(self.set_group(name, Description::from_json_str(json)?))
    }

    /// Removes a group (as if its file was deleted); whether it existed.
    pub fn remove_group(&mut self, name: &str) -> bool {
        self.groups.remove(name).is_some()
    }

    /// Replaces the global configuration (and clears any error set before).
    pub fn set_config(&mut self, config: GlobalConfig) {
        self.config = Arc::new(config);
        self.config_error = None;
    }

    /// Makes [`Directory::config`] fail, as with an invalid `config.json`.
    pub fn set_config_error(&mut self, error: ConfigError) {
        self.config_error = Some(error);
    }

    /// Sets fixed ICE servers.
    pub fn set_ice_servers(&mut self, servers: &[IceServer]) {
        self.ice = servers.iter().map(IceServerEntry::from_server).collect();
    }

    /// Sets ICE servers from the text of an `ice-servers.json` (including `hmac-sha1`).
    pub fn set_ice_servers_json(&mut self, json: &str) -> Result<(), ConfigError> {
        self.ice = parse_ice_servers(json)?;
        Ok(())
    }

    /// Stores a token, replacing one with the same name.
    pub fn insert_token(&mut self, token: StatefulToken) {
        self.tokens.insert(token.token.clone(), token);
    }

    /// All stored tokens, by name.
    pub fn tokens(&self) -> impl Iterator<Item = &StatefulToken> {
        self.tokens.values()
    }

    /// Sets the Camus rooms (and clears any error set before).
    pub fn set_camus_rooms(&mut self, rooms: CamusRooms) {
        self.camus = Arc::new(rooms);
        self.camus_error = None;
    }

    /// Makes [`Directory::camus_rooms`] fail, as with an invalid `camus-rooms.json`.
    pub fn set_camus_rooms_error(&mut self, error: ConfigError) {
        self.camus_error = Some(error);
    }
}

impl Directory for MemoryDirectory {
    fn group(&mut self, name: &str) -> Result<Option<GroupEntry>, ConfigError> {
        resolve_group(name, |candidate| Ok(self.groups.get(candidate).cloned()))
    }

    fn public_group_names(&mut self) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(name, (description, _))| description.public && valid_group_name(name))
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn config(&mut self) -> Result<Arc<GlobalConfig>, ConfigError> {
        match &self.config_error {
            Some(err) => Err(err.clone()),
            None => Ok(Arc::clone(&self.config)),
        }
    }

    fn ice_servers(&mut self, now: SystemTime) -> Vec<IceServer> {
        resolve_ice_servers(&self.ice, now)
    }

    fn token(&mut self, name: &str) -> Option<StatefulToken> {
        self.tokens.get(name).cloned()
    }

    fn add_token(&mut self, token: StatefulToken) -> Result<(), ConfigError> {
        if token.token.is_empty() {
            return Err(ConfigError::Invalid("token without a name".into()));
        }
        if self.tokens.contains_key(&token.token) {
            return Err(ConfigError::Invalid("token already exists".into()));
        }
        self.insert_token(token);
        Ok(())
    }

    fn update_token(&mut self, token: StatefulToken) -> Result<bool, ConfigError> {
        match self.tokens.get_mut(&token.token) {
            Some(slot) => {
                *slot = token;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn tokens_of_group(&mut self, group: &str) -> Vec<StatefulToken> {
        let mut list: Vec<StatefulToken> = self
            .tokens
            .values()
            .filter(|t| group.is_empty() || t.group == group)
            .cloned()
            .collect();
        sort_by_expiry(&mut list);
        list
    }

    fn delete_token(&mut self, name: &str) -> Result<bool, ConfigError> {
        Ok(self.tokens.remove(name).is_some())
    }

    fn expire_tokens(&mut self, now: SystemTime) -> Result<usize, ConfigError> {
        let before = self.tokens.len();
        self.tokens.retain(|_, t| !t.is_stale(now));
        Ok(before - self.tokens.len())
    }

    fn camus_rooms(&mut self) -> Result<Arc<CamusRooms>, ConfigError> {
        match &self.camus_error {
            Some(err) => Err(err.clone()),
            None => Ok(Arc::clone(&self.camus)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::scratch::Scratch;
    use crate::config::{Credentials, Permission, TOKEN_PURGE_AGE, authenticate};
    use std::fs;
    use std::time::Duration;

    fn scratch(name: &str) -> Scratch {
        Scratch::new("dir", name)
    }

    /// The directory over a scratch tree.
    fn directory(s: &Scratch) -> DiskDirectory {
        DiskDirectory::new(s.groups(), s.data())
    }

    fn at(secs: u64) -> SystemTime {
        std::time::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn disk_groups_and_subgroups() {
        let s = scratch("groups");
        s.write("groups/a.json", r#"{"public": true, "displayName": "A"}"#);
        s.write("groups/b/c.json", r#"{"public": true}"#);
        s.write(
            "groups/sub.json",
            r#"{"auto-subgroups": true, "public": true, "description": "parent"}"#,
        );
        s.write("groups/noauto.json", "{}");
        s.write("groups/.hidden.json", r#"{"public": true}"#);
        s.write("groups/.dotdir/x.json", r#"{"public": true}"#);
        s.write("groups/notes.txt", "not a group");
        let mut dir = directory(&s);
        assert!(!dir.uses_embedded_default());

        let a = dir.group("a").unwrap().unwrap();
        assert_eq!(a.name, "a");
        assert!(!a.is_subgroup);
        assert_eq!(a.description.display_name.as_deref(), Some("A"));
        assert!(dir.group("b/c").unwrap().is_some());
        assert!(dir.group("b").unwrap().is_none());
        assert!(dir.group("missing").unwrap().is_none());
        assert!(dir.group("../groups/a").unwrap().is_none());
        assert!(dir.group("/a").unwrap().is_none());

        let parent = dir.group("sub").unwrap().unwrap();
        let child = dir.group("sub/x/y").unwrap().unwrap();
        assert_eq!(child.name, "sub/x/y");
        assert!(child.is_subgroup);
        assert!(!child.description.public);
        assert_eq!(child.description.description, None);
        assert!(child.description.auto_subgroups);
        assert_eq!(child.revision, parent.revision);
        assert!(dir.group("noauto/x").unwrap().is_none());
        // The nearest file decides: b/c exists without auto-subgroups, so b/c/d is unknown.
        assert!(dir.group("b/c/d").unwrap().is_none());

        assert_eq!(dir.group_names(), ["a", "b/c", "noauto", "sub"]);
        assert_eq!(dir.public_group_names(), ["a", "b/c", "sub"]);
        assert_eq!(dir.group_file("b/c"), s.0.join("groups/b/c.json"));
    }

    #[test]
    fn disk_reload_invalid_and_delete() {
        let s = scratch("reload");
        s.write("groups/g.json", r#"{"displayName": "one"}"#);
        let mut dir = directory(&s);
        let first = dir.group("g").unwrap().unwrap();
        let again = dir.group("g").unwrap().unwrap();
        assert_eq!(first.revision, again.revision);
        assert!(Arc::ptr_eq(&first.description, &again.description));

        s.write("groups/g.json", r#"{"displayName": "second"}"#);
        let second = dir.group("g").unwrap().unwrap();
        assert_ne!(second.revision, first.revision);
        assert_eq!(second.description.display_name.as_deref(), Some("second"));

        s.write("groups/g.json", r#"{"displayName": "x", "bogus": 1}"#);
        match dir.group("g") {
            Err(ConfigError::Invalid(why)) => {
                assert!(why.contains("g.json") && why.contains("bogus"), "{why}");
            }
            other => panic!("expected an invalid file, got {other:?}"),
        }
        assert!(dir.group("g").is_err());
        assert!(dir.public_group_names().is_empty());

        s.write("groups/g.json", r#"{"displayName": "fixed!"}"#);
        let fixed = dir.group("g").unwrap().unwrap();
        assert!(fixed.revision > second.revision);

        fs::remove_file(s.0.join("groups/g.json")).unwrap();
        assert!(dir.group("g").unwrap().is_none());
    }

    #[test]
    fn disk_config_and_ice() {
        let s = scratch("config");
        let mut dir = directory(&s);
        assert_eq!(*dir.config().unwrap(), GlobalConfig::default());
        assert!(dir.ice_servers(at(0)).is_empty());
        assert!(!dir.ice_servers_file_exists());

        s.write("data/config.json", r#"{"canonicalHost": "a.example"}"#);
        assert_eq!(
            dir.config().unwrap().canonical_host.as_deref(),
            Some("a.example")
        );
        s.write("data/config.json", r#"{"publicServer": true}"#);
        assert!(matches!(dir.config(), Err(ConfigError::Invalid(_))));
        s.write("data/config.json", r#"{"writableGroups": true}"#);
        assert!(dir.config().unwrap().writable_groups);
        fs::remove_file(s.0.join("data/config.json")).unwrap();
        assert!(!dir.config().unwrap().writable_groups);

        s.write(
            "data/ice-servers.json",
            r#"[{"urls": ["turn:t.example"], "credential": "k", "credentialType": "hmac-sha1"}]"#,
        );
        assert!(dir.ice_servers_file_exists());
        let servers = dir.ice_servers(at(100));
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0].username.as_deref(), Some("86500"));
        s.write("data/ice-servers.json", "not json at all");
        assert!(dir.ice_servers(at(100)).is_empty());
    }

    #[test]
    fn disk_tokens() {
        let s = scratch("tokens");
        let mut dir = directory(&s);
        let token = StatefulToken {
            token: "t1".into(),
            group: "g".into(),
            include_subgroups: false,
            username: None,
            permissions: Some([Permission::Present].into_iter().collect()),
            expires: Some(at(1000)),
            not_before: None,
            issued_at: Some(at(10)),
            issued_by: Some("vimes".into()),
        };
        assert!(dir.token("t1").is_none());
        dir.add_token(token.clone()).unwrap();
        assert!(dir.add_token(token.clone()).is_err());
        assert_eq!(dir.token("t1"), Some(token.clone()));
        assert!(s.0.join("data/var/tokens.jsonl").is_file());
        assert_eq!(dir.tokens_of_group("g").len(), 1);
        assert!(dir.tokens_of_group("h").is_empty());
        let longer = StatefulToken {
            expires: Some(at(5000)),
            ..token.clone()
        };
        assert!(dir.update_token(longer.clone()).unwrap());
        // A second directory over the same files sees the change.
        let mut other = directory(&s);
        assert_eq!(other.token("t1"), Some(longer));
        assert_eq!(dir.expire_tokens(at(5000) + TOKEN_PURGE_AGE).unwrap(), 0);
        assert_eq!(dir.expire_tokens(at(5001) + TOKEN_PURGE_AGE).unwrap(), 1);
        assert!(other.token("t1").is_none());
        assert!(!dir.delete_token("t1").unwrap());
        assert!(dir.token_file().etag().is_none());
    }

    #[test]
    fn embedded_default() {
        let s = scratch("embedded");
        let mut dir = DiskDirectory::new(s.0.join("no-such-dir"), s.0.join("data"));
        assert!(dir.uses_embedded_default());
        assert_eq!(dir.public_group_names(), [EMBEDDED_GROUP_NAME]);
        assert!(dir.group("other").unwrap().is_none());
        let group = dir.group(EMBEDDED_GROUP_NAME).unwrap().unwrap();
        assert!(group.description.public);
        assert!(group.description.description.is_some());
        let creds = Credentials {
            username: Some("anyone"),
            password: None,
            token: None,
        };
        let joined = authenticate(&group, creds, None, at(0), |_| None).unwrap();
        assert_eq!(joined.username, "anyone");
        assert_eq!(joined.permissions.names(), ["present", "message"]);
        // Config and tokens still come from the data directory.
        s.write("data/config.json", r#"{"writableGroups": true}"#);
        assert!(dir.config().unwrap().writable_groups);
    }

    #[test]
    fn disk_camus_rooms() {
        let s = scratch("camus");
        let mut dir = directory(&s);
        let none = dir.camus_rooms().unwrap();
        assert!(!none.auto_create && none.rooms.is_empty());
        let mut embedded = DiskDirectory::new(s.0.join("no-such-dir"), s.0.join("data"));
        assert!(embedded.camus_rooms().unwrap().auto_create);

        s.write(
            "data/camus-rooms.json",
            r#"{"rooms": [{"name": "Lobby", "public": true}]}"#,
        );
        let rooms = dir.camus_rooms().unwrap();
        assert!(!rooms.auto_create);
        assert_eq!(rooms.rooms[0].slug, "lobby");
        assert!(embedded.camus_rooms().unwrap().auto_create);

        s.write(
            "data/camus-rooms.json",
            r#"{"auto-create": true, "rooms": 1}"#,
        );
        assert!(dir.camus_rooms().is_err());
        s.write("data/camus-rooms.json", r#"{"auto-create": true}"#);
        assert!(dir.camus_rooms().unwrap().auto_create);
        assert!(dir.camus_rooms().unwrap().rooms.is_empty());
    }

    #[test]
    fn memory_directory() {
        let mut dir = MemoryDirectory::new();
        assert!(dir.group("g").unwrap().is_none());
        let r1 = dir
            .set_group_json("g", r#"{"public": true, "auto-subgroups": true}"#)
            .unwrap();
        assert!(dir.set_group_json("bad", r#"{"bogus": 1}"#).is_err());
        let g = dir.group("g").unwrap().unwrap();
        assert_eq!(g.revision, r1);
        let sub = dir.group("g/h").unwrap().unwrap();
        assert!(sub.is_subgroup && !sub.description.public);
        let r2 = dir.set_group("g", Description::default());
        assert!(r2 > r1);
        assert_eq!(dir.group("g").unwrap().unwrap().revision, r2);
        assert!(dir.group("g/h").unwrap().is_none());
        dir.set_group(
            "p",
            Description {
                public: true,
                ..Description::default()
            },
        );
        assert_eq!(dir.public_group_names(), ["p"]);
        assert!(dir.remove_group("g"));
        assert!(dir.group("g").unwrap().is_none());

        dir.set_config_error(ConfigError::Invalid("broken".into()));
        assert!(dir.config().is_err());
        dir.set_config(GlobalConfig {
            writable_groups: true,
            ..GlobalConfig::default()
        });
        assert!(dir.config().unwrap().writable_groups);

        let stun = IceServer {
            urls: vec!["stun:s.example".into()],
            username: None,
            credential: None,
            credential_type: None,
        };
        dir.set_ice_servers(std::slice::from_ref(&stun));
        assert_eq!(dir.ice_servers(at(0)), [stun]);
        dir.set_ice_servers_json(
            r#"[{"urls":"turn:x","credential":"k","credentialType":"hmac-sha1"}]"#,
        )
        .unwrap();
        assert_eq!(dir.ice_servers(at(0))[0].username.as_deref(), Some("86400"));

        let token = StatefulToken {
            token: "t".into(),
            group: "p".into(),
            include_subgroups: false,
            username: None,
            permissions: None,
            expires: Some(at(10)),
            not_before: None,
            issued_at: None,
            issued_by: None,
        };
        dir.add_token(token.clone()).unwrap();
        assert!(dir.add_token(token.clone()).is_err());
        assert!(dir.update_token(token.clone()).unwrap());
        assert_eq!(dir.tokens_of_group("p"), std::slice::from_ref(&token));
        assert_eq!(dir.tokens_of_group(""), std::slice::from_ref(&token));
        assert_eq!(dir.expire_tokens(at(11) + TOKEN_PURGE_AGE).unwrap(), 1);
        assert!(!dir.delete_token("t").unwrap());
        dir.insert_token(token);
        assert_eq!(dir.tokens().count(), 1);
    }
}
