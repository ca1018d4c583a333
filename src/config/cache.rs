//! The configuration files as last seen on disk, shared between the sans-IO directory and the
//! runtime, so that the executor thread does not block on the disk (an SD card can take
//! tens of milliseconds for one `stat`, and every meeting waits meanwhile).
//!
//! # The contract
//!
//! [`FileCache`] holds, for every file [`super::DiskDirectory`] reads (`groups/**.json`,
//! `data/config.json`, `data/ice-servers.json`, `data/camus-rooms.json`,
//! `data/var/tokens.jsonl`) and for the walk of the groups directory, what was found there
//! and the *refresh generation* at which it was looked at. Generations come from one
//! counter; a newer look has a higher number.
//!
//! - **The runtime** knows, before it hands the engine an input, which files that input
//!   will read (a Galène `join` reads its group and parents, `config.json`,
//!   `ice-servers.json` and the tokens; a `.status` request its group and `config.json`;
//!   see `run::prefetch`). It calls [`FileCache::refresh`] with those [`FileNeed`]s on its
//!   file worker thread (one, started with the server) and awaits it: `stat` each file,
//!   re-read it only if its size, modification time or inode changed. The refresh takes a new generation
//!   *after* the input arrived, and returns it as a [`Freshness`]. The runtime then runs the
//!   engine call inside [`FileCache::enter`] with that freshness.
//! - **The sans-IO side** ([`FileCache::read`], [`FileCache::group_names`]) uses an entry
//!   when it was refreshed at the current input's generation or later: the file was looked
//!   at after the input arrived, so an edit made before the request is seen, exactly as
//!   when the file was `stat`ed during the call. Otherwise (a file nobody anticipated, a
//!   timer, no runtime at all) it reads synchronously as before, stores what it found,
//!   counts it ([`FileCache::fallback_reads`]) and logs it at debug level. Correctness
//!   first: a missed prefetch costs time on the executor, never a stale answer.
//!
//! The state sits behind one mutex, held only for map operations, never during I/O: the
//! executor never waits on the worker's disk access.
//!
//! Writes (stateful tokens, `data/var/tokens.jsonl`) stay synchronous on the executor: they
//! are rare operator actions. After one, the writer calls [`FileCache::forget`], which also
//! takes a generation so that a refresh that looked at the file before the write cannot
//! store its older view afterwards.
//!
//! Only what was read is kept: the text of existing files (small JSON files), and for a
//! bounded while the files that were absent (join requests can name any group).

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::ConfigError;
use super::names::valid_group_name;
use super::stamp::FileStamp;

/// Something an input will read, named by what it is; the cache knows which files it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileNeed {
    /// A group by name: its file and the files of its parents, which an auto-subgroup
    /// resolves through (`a/b/c` → `a/b/c.json`, `a/b.json`, `a.json`). Invalid names read
    /// nothing.
    Group(String),
    /// The walk of the groups directory and every group file found (`/public-groups.json`).
    PublicGroups,
    /// `data/config.json`.
    Config,
    /// `data/ice-servers.json`.
    IceServers,
    /// `data/camus-rooms.json`.
    CamusRooms,
    /// `data/var/tokens.jsonl`.
    Tokens,
}

/// What an existing file contained, and its stamp when it was read.
#[derive(Debug, Clone)]
pub(crate) struct FileText {
    /// Size, modification time and inode, taken just before the read.
    pub(crate) stamp: FileStamp,
    /// The whole file.
    pub(crate) text: Arc<str>,
}

/// Why a file could not be looked at or read (the `io::Error`'s text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileError(Arc<str>);

impl FileError {
    /// The error as the directory reports it: `"<path>: <error>"`.
    pub(crate) fn config_error(&self, path: &Path) -> ConfigError {
        ConfigError::Io(format!("{}: {self}", path.display()))
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<io::Error> for FileError {
    fn from(err: io::Error) -> FileError {
        FileError(err.to_string().into())
    }
}

/// A look at a file: its text, `None` when there is no such regular file, or the error.
pub(crate) type FileRead = Result<Option<FileText>, FileError>;

/// Looks at `path`: `stat`, then read it unless `known` has the same stamp (then `known` is
/// returned). A file that vanishes between the two is absent.
fn read_file(path: &Path, known: Option<&FileText>) -> FileRead {
    let Some(stamp) = FileStamp::of(path)? else {
        return Ok(None);
    };
    if let Some(known) = known.filter(|known| known.stamp == stamp) {
        return Ok(Some(known.clone()));
    }
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(FileText {
            stamp,
            text: text.into(),
        })),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Names of every group file under `groups_dir` (`a/b.json` → `a/b`), skipping dotfiles and
/// dot directories and invalid names, sorted.
pub(crate) fn walk_group_names(groups_dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    walk_group_files(groups_dir, "", &mut names);
    names.sort();
    names
}

/// Collects group names under `dir` (whose group-name prefix is `prefix`).
fn walk_group_files(dir: &Path, prefix: &str, names: &mut Vec<String>) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            log::warn!("Cannot read {}: {err}", dir.display());
            return;
        }
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            log::debug!("Ignoring non-UTF-8 file name in {}", dir.display());
            continue;
        };
        if file_name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let is_dir = fs::metadata(&path).is_ok_and(|m| m.is_dir());
        if is_dir {
            walk_group_files(&path, &format!("{prefix}{file_name}/"), names);
        } else if let Some(stem) = file_name.strip_suffix(".json") {
            let name = format!("{prefix}{stem}");
            if valid_group_name(&name) {
                names.push(name);
            }
        } else {
            log::debug!("Ignoring {} (not a .json file)", path.display());
        }
    }
}

/// Proof that some files were looked at after an input arrived: the refresh generation they
/// were looked at in. Given by [`FileCache::refresh`], used by [`FileCache::enter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Freshness(u64);

/// One file as last looked at.
#[derive(Debug)]
struct Entry {
    /// The generation of the look (or of the write, for `view: None`).
    generation: u64,
    /// What was found; `None` right after our own write: unknown, read synchronously.
    view: Option<FileRead>,
}

impl Entry {
    /// Whether the entry says nothing worth keeping once it is old: an absent file (any
    /// group name can be asked for) or a written one.
    fn is_disposable(&self) -> bool {
        !matches!(self.view, Some(Ok(Some(_))))
    }

    fn known_text(&self) -> Option<FileText> {
        match &self.view {
            Some(Ok(Some(text))) => Some(text.clone()),
            _ => None,
        }
    }
}

/// The group names found by the last walk of the groups directory.
#[derive(Debug)]
struct Listing {
    generation: u64,
    names: Vec<String>,
}

/// Entries kept before absent and written files are pruned.
const PRUNE_ABOVE_ENTRIES: usize = 1024;

/// Absent and written files looked at within this many generations survive a prune: their
/// input is still on its way to the engine.
const PRUNE_KEEPS_GENERATIONS: u64 = 1024;

#[derive(Debug, Default)]
struct State {
    /// The last generation handed out.
    generation: u64,
    /// While an input runs ([`FileCache::enter`]): entries looked at in this generation or
    /// later are fresh for it. `None`: nothing is, every read is synchronous.
    floor: Option<u64>,
    files: HashMap<PathBuf, Entry>,
    group_names: Option<Listing>,
    fallback_reads: u64,
}

impl State {
    fn is_fresh(&self, generation: u64) -> bool {
        self.floor.is_some_and(|floor| generation >= floor)
    }

    fn next_generation(&mut self) -> u64 {
        self.generation += 1;
        if self.files.len() > PRUNE_ABOVE_ENTRIES {
            let oldest_kept = self.generation.saturating_sub(PRUNE_KEEPS_GENERATIONS);
            self.files
                .retain(|_, entry| !entry.is_disposable() || entry.generation >= oldest_kept);
        }
        self.generation
    }

    /// Stores a look of `generation` unless a later one (or a later write) is there.
    fn store(&mut self, path: &Path, generation: u64, view: FileRead) {
        if self
            .files
            .get(path)
            .is_some_and(|entry| entry.generation > generation)
        {
            return;
        }
        self.files.insert(
            path.to_owned(),
            Entry {
                generation,
                view: Some(view),
            },
        );
    }

    fn store_listing(&mut self, generation: u64, names: Vec<String>) {
        if self
            .group_names
            .as_ref()
            .is_some_and(|listing| listing.generation > generation)
        {
            return;
        }
        self.group_names = Some(Listing { generation, names });
    }
}

#[derive(Debug)]
struct Inner {
    groups_dir: PathBuf,
    data_dir: PathBuf,
    /// False when the built-in group is served (no groups directory): group needs read
    /// nothing. Set when the admin API creates the directory.
    groups_on_disk: AtomicBool,
    state: Mutex<State>,
    /// Held by whoever reads, changes and rewrites a file (token writes on the executor, the
    /// admin API's thread), so that neither loses the other's change.
    write_lock: Mutex<()>,
}

/// The configuration files as last seen, shared (cheap to clone) between the directory and
/// the runtime; see the module documentation for who refreshes what.
#[derive(Debug, Clone)]
pub struct FileCache {
    inner: Arc<Inner>,
}

/// While alive, reads are answered from entries refreshed for this input; see
/// [`FileCache::enter`].
#[must_use = "the input's freshness ends when the scope is dropped"]
#[derive(Debug)]
pub struct InputScope<'a> {
    cache: &'a FileCache,
}

impl Drop for InputScope<'_> {
    fn drop(&mut self) {
        self.cache.lock().floor = None;
    }
}

impl FileCache {
    /// A cache of the files under `groups_dir` and `data_dir`. With `groups_on_disk` false
    /// (the built-in group is served), refreshing group needs reads nothing.
    pub(crate) fn new(groups_dir: PathBuf, data_dir: PathBuf, groups_on_disk: bool) -> FileCache {
        FileCache {
            inner: Arc::new(Inner {
                groups_dir,
                data_dir,
                groups_on_disk: AtomicBool::new(groups_on_disk),
                state: Mutex::new(State::default()),
                write_lock: Mutex::new(()),
            }),
        }
    }

    /// A cache nobody refreshes, for a file used on its own (a [`super::TokenFile`] outside
    /// a directory): every read is synchronous, as if there were no cache.
    pub(crate) fn unrefreshed() -> FileCache {
        FileCache::new(PathBuf::new(), PathBuf::new(), false)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a few maps updated in single statements: still consistent after a
        // panic elsewhere.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Held while a file is read, changed and written back by one of the server's writers
    /// (see [`FileCache::forget`] for what the writer does after).
    pub(crate) fn write_lock(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data of its own: a panic while it was held leaves nothing
        // inconsistent.
        self.inner
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether group files are read from the groups directory (false while the built-in
    /// group is served because there is no such directory).
    pub(crate) fn groups_on_disk(&self) -> bool {
        self.inner.groups_on_disk.load(Ordering::Relaxed)
    }

    /// The groups directory was created (by the admin API): from now on groups are read
    /// from it and the built-in group is no longer served.
    pub fn set_groups_on_disk(&self) {
        if !self.inner.groups_on_disk.swap(true, Ordering::Relaxed) {
            log::info!(
                "Groups directory {} created: serving its groups instead of the built-in one",
                self.inner.groups_dir.display()
            );
        }
    }

    /// The groups directory.
    pub fn groups_dir(&self) -> &Path {
        &self.inner.groups_dir
    }

    /// The file a group with exactly this name is stored in.
    pub(crate) fn group_file(&self, name: &str) -> PathBuf {
        self.inner.groups_dir.join(format!("{name}.json"))
    }

    /// `data/config.json`.
    pub(crate) fn config_file(&self) -> PathBuf {
        self.inner.data_dir.join("config.json")
    }

    /// `data/ice-servers.json`.
    pub(crate) fn ice_servers_file(&self) -> PathBuf {
        self.inner.data_dir.join("ice-servers.json")
    }

    /// `data/camus-rooms.json`.
    pub(crate) fn camus_rooms_file(&self) -> PathBuf {
        self.inner.data_dir.join("camus-rooms.json")
    }

    /// `data/var/tokens.jsonl`.
    pub(crate) fn tokens_file(&self) -> PathBuf {
        self.inner.data_dir.join("var").join("tokens.jsonl")
    }

    /// The files behind `need` (for [`FileNeed::PublicGroups`]: none, the walk finds them).
    fn files_of(&self, need: &FileNeed) -> Vec<PathBuf> {
        match need {
            FileNeed::Group(name) if self.groups_on_disk() && valid_group_name(name) => {
                let mut files = vec![self.group_file(name)];
                let mut candidate = name.as_str();
                while let Some((parent, _)) = candidate.rsplit_once('/') {
                    files.push(self.group_file(parent));
                    candidate = parent;
                }
                files
            }
            FileNeed::Group(_) | FileNeed::PublicGroups => Vec::new(),
            FileNeed::Config => vec![self.config_file()],
            FileNeed::IceServers => vec![self.ice_servers_file()],
            FileNeed::CamusRooms => vec![self.camus_rooms_file()],
            FileNeed::Tokens => vec![self.tokens_file()],
        }
    }

    /// Looks at the files behind `needs` now (`stat`, and a read of those that changed) and
    /// returns the generation they were looked at in. **Blocks on the disk**: the runtime
    /// calls it on its file worker thread, after the input arrived and before handing it over.
    pub fn refresh(&self, needs: &[FileNeed]) -> Freshness {
        let generation = self.lock().next_generation();
        let mut files: Vec<PathBuf> = Vec::new();
        for need in needs {
            if *need == FileNeed::PublicGroups && self.groups_on_disk() {
                let names = walk_group_names(&self.inner.groups_dir);
                files.extend(names.iter().map(|name| self.group_file(name)));
                self.lock().store_listing(generation, names);
            }
            files.extend(self.files_of(need));
        }
        files.sort();
        files.dedup();
        for path in files {
            let known = self.lock().files.get(&path).and_then(Entry::known_text);
            let view = read_file(&path, known.as_ref());
            self.lock().store(&path, generation, view);
        }
        Freshness(generation)
    }

    /// Runs the current input with what was refreshed at `freshness` (or later): until the
    /// scope is dropped, [`FileCache::read`] answers from those entries. One input at a time
    /// (the engine is single-threaded).
    pub fn enter(&self, freshness: Freshness) -> InputScope<'_> {
        self.lock().floor = Some(freshness.0);
        InputScope { cache: self }
    }

    /// How many looks at a file (or walks of the groups directory) were done synchronously,
    /// because nothing refreshed them for the input being handled.
    pub fn fallback_reads(&self) -> u64 {
        self.lock().fallback_reads
    }

    /// The file at `path` as of the current input: from the cache when it was refreshed
    /// for this input, otherwise looked at now (synchronously, counted as a fallback).
    pub(crate) fn read(&self, path: &Path) -> FileRead {
        let known = {
            let state = self.lock();
            match state.files.get(path) {
                Some(entry) if state.is_fresh(entry.generation) => {
                    if let Some(view) = &entry.view {
                        return view.clone();
                    }
                    None
                }
                Some(entry) => entry.known_text(),
                None => None,
            }
        };
        log::debug!(
            "{}: looked at on the engine's thread (not refreshed for this input)",
            path.display()
        );
        let view = read_file(path, known.as_ref());
        let mut state = self.lock();
        state.fallback_reads += 1;
        // Looked at after every generation handed out so far.
        let generation = state.generation;
        state.store(path, generation, view.clone());
        view
    }

    /// The group names in the groups directory as of the current input (see
    /// [`FileCache::read`]), sorted.
    pub(crate) fn group_names(&self) -> Vec<String> {
        {
            let state = self.lock();
            if let Some(listing) = &state.group_names
                && state.is_fresh(listing.generation)
            {
                return listing.names.clone();
            }
        }
        log::debug!(
            "{}: walked on the engine's thread (not refreshed for this input)",
            self.inner.groups_dir.display()
        );
        let names = walk_group_names(&self.inner.groups_dir);
        let mut state = self.lock();
        state.fallback_reads += 1;
        let generation = state.generation;
        state.store_listing(generation, names.clone());
        names
    }

    /// We just wrote `path`: what the cache holds is outdated, and so is any look a refresh
    /// took before the write and has yet to store. The next read is synchronous.
    pub(crate) fn forget(&self, path: &Path) {
        let mut state = self.lock();
        let generation = state.next_generation();
        state.files.insert(
            path.to_owned(),
            Entry {
                generation,
                view: None,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::scratch::Scratch;

    fn scratch(name: &str) -> Scratch {
        Scratch::new("cache", name)
    }

    /// The cache over a scratch tree.
    fn cache(s: &Scratch) -> FileCache {
        FileCache::new(s.groups(), s.data(), true)
    }

    fn text_of(view: FileRead) -> Option<String> {
        view.unwrap().map(|file| file.text.to_string())
    }

    #[test]
    fn refreshed_files_are_read_without_touching_the_disk() {
        let s = scratch("refreshed");
        s.write("groups/a.json", "{\"a\": 1}");
        s.write("data/config.json", "{}");
        let cache = cache(&s);
        let fresh = cache.refresh(&[FileNeed::Group("a/b/c".into()), FileNeed::Config]);
        {
            let _input = cache.enter(fresh);
            assert_eq!(
                text_of(cache.read(&cache.group_file("a"))).unwrap(),
                "{\"a\": 1}"
            );
            // The parents of an auto-subgroup were refreshed too, absent or not.
            assert_eq!(text_of(cache.read(&cache.group_file("a/b/c"))), None);
            assert_eq!(text_of(cache.read(&cache.group_file("a/b"))), None);
            assert_eq!(text_of(cache.read(&cache.config_file())).unwrap(), "{}");
            assert_eq!(cache.fallback_reads(), 0);
            // Not anticipated: read synchronously, counted.
            assert_eq!(text_of(cache.read(&cache.ice_servers_file())), None);
            assert_eq!(cache.fallback_reads(), 1);
            // ... and now fresh for the rest of this input.
            assert_eq!(text_of(cache.read(&cache.ice_servers_file())), None);
            assert_eq!(cache.fallback_reads(), 1);
        }
        // Outside an input nothing is fresh.
        assert_eq!(text_of(cache.read(&cache.config_file())).unwrap(), "{}");
        assert_eq!(cache.fallback_reads(), 2);
    }

    #[test]
    fn an_edit_before_the_refresh_is_seen_an_old_refresh_is_not_trusted() {
        let s = scratch("edit");
        s.write("groups/g.json", "one");
        let cache = cache(&s);
        let path = cache.group_file("g");
        let first = cache.refresh(&[FileNeed::Group("g".into())]);
        s.write("groups/g.json", "second");
        let second = cache.refresh(&[FileNeed::Group("g".into())]);
        assert!(second > first);
        {
            let _input = cache.enter(second);
            assert_eq!(text_of(cache.read(&path)).unwrap(), "second");
        }
        assert_eq!(cache.fallback_reads(), 0);

        // An input whose own refresh is older than the entry still uses the entry (it was
        // looked at after that input arrived, too).
        {
            let _input = cache.enter(first);
            assert_eq!(text_of(cache.read(&path)).unwrap(), "second");
        }
        assert_eq!(cache.fallback_reads(), 0);

        // An input that refreshed something else does not trust an older look at this file.
        s.write("groups/g.json", "third");
        let other = cache.refresh(&[FileNeed::Config]);
        {
            let _input = cache.enter(other);
            assert_eq!(text_of(cache.read(&path)).unwrap(), "third");
        }
        assert_eq!(cache.fallback_reads(), 1);

        fs::remove_file(&path).unwrap();
        let gone = cache.refresh(&[FileNeed::Group("g".into())]);
        let _input = cache.enter(gone);
        assert_eq!(text_of(cache.read(&path)), None);
    }

    #[test]
    fn unchanged_files_are_not_read_again() {
        let s = scratch("unchanged");
        s.write("data/config.json", "{}");
        let cache = cache(&s);
        let path = cache.config_file();
        let first = cache.refresh(&[FileNeed::Config]);
        let text = {
            let _input = cache.enter(first);
            cache.read(&path).unwrap().unwrap().text
        };
        let second = cache.refresh(&[FileNeed::Config]);
        let _input = cache.enter(second);
        let again = cache.read(&path).unwrap().unwrap().text;
        assert!(Arc::ptr_eq(&text, &again));
    }

    #[test]
    fn the_walk_is_refreshed_with_the_files_it_finds() {
        let s = scratch("walk");
        s.write("groups/a.json", "{}");
        s.write("groups/b/c.json", "{}");
        s.write("groups/.hidden.json", "{}");
        s.write("groups/notes.txt", "");
        let cache = cache(&s);
        let fresh = cache.refresh(&[FileNeed::PublicGroups]);
        let _input = cache.enter(fresh);
        assert_eq!(cache.group_names(), ["a", "b/c"]);
        assert!(text_of(cache.read(&cache.group_file("b/c"))).is_some());
        assert_eq!(cache.fallback_reads(), 0);
    }

    #[test]
    fn without_a_groups_directory_group_needs_read_nothing() {
        let s = scratch("embedded");
        s.write("groups/a.json", "{}");
        let cache = FileCache::new(s.0.join("groups"), s.0.join("data"), false);
        let fresh = cache.refresh(&[FileNeed::Group("a".into()), FileNeed::PublicGroups]);
        let _input = cache.enter(fresh);
        assert!(cache.lock().files.is_empty());
        assert!(cache.lock().group_names.is_none());
    }

    #[test]
    fn invalid_group_names_read_nothing() {
        let s = scratch("invalid");
        let cache = cache(&s);
        assert!(
            cache
                .files_of(&FileNeed::Group("../data/x".into()))
                .is_empty()
        );
        assert!(cache.files_of(&FileNeed::Group("/a".into())).is_empty());
        assert_eq!(cache.files_of(&FileNeed::Group("a/b".into())).len(), 2);
    }

    #[test]
    fn a_write_outdates_a_refresh_taken_before_it() {
        let s = scratch("write");
        s.write("data/var/tokens.jsonl", "old\n");
        let cache = cache(&s);
        let path = cache.tokens_file();
        // A refresh looks at the file...
        let generation = cache.lock().next_generation();
        let before_write = read_file(&path, None);
        // ... we write it and forget what we knew ...
        s.write("data/var/tokens.jsonl", "new\n");
        cache.forget(&path);
        // ... and the refresh stores its older look only now: it is ignored.
        cache.lock().store(&path, generation, before_write);
        let _input = cache.enter(Freshness(generation));
        assert_eq!(text_of(cache.read(&path)).unwrap(), "new\n");
        assert_eq!(cache.fallback_reads(), 1);
    }

    #[test]
    fn absent_files_are_pruned_when_many() {
        let s = scratch("prune");
        s.write("groups/kept.json", "{}");
        let cache = cache(&s);
        let names: Vec<FileNeed> = (0..PRUNE_ABOVE_ENTRIES + 10)
            .map(|i| FileNeed::Group(format!("absent{i}")))
            .chain([FileNeed::Group("kept".into())])
            .collect();
        cache.refresh(&names);
        assert_eq!(cache.lock().files.len(), PRUNE_ABOVE_ENTRIES + 11);
        cache.lock().generation += PRUNE_KEEPS_GENERATIONS;
        cache.refresh(&[]);
        let state = cache.lock();
        assert_eq!(state.files.len(), 1);
        assert!(state.files.contains_key(&cache.group_file("kept")));
    }

    #[test]
    fn io_errors_are_reported_and_retried() {
        let s = scratch("errors");
        // A directory where a file is expected reads as absent, like before.
        fs::create_dir_all(s.0.join("data/config.json")).unwrap();
        let cache = cache(&s);
        assert_eq!(text_of(cache.read(&cache.config_file())), None);
        // Invalid UTF-8 is an error, not stored as text.
        s.write("data/ice-servers.json", "");
        fs::write(s.0.join("data/ice-servers.json"), [0xff, 0xfe]).unwrap();
        let err = cache.read(&cache.ice_servers_file()).unwrap_err();
        let ConfigError::Io(why) = err.config_error(&cache.ice_servers_file()) else {
            panic!("an I/O error");
        };
        assert!(why.contains("ice-servers.json"), "{why}");
    }
}
