//! The admin API's files on disk ([`AdminStore`] over the real `groups/` and `data/`
//! directories), used on the runtime's admin thread.
//!
//! A write replaces the whole file atomically: a `0600` temporary file in the same
//! directory, written and `fsync`ed, renamed over the file, and the directory `fsync`ed, so
//! that a crash leaves either the old file or the new one, never a mix. Missing directories
//! are created `0700`. Each write happens under the [`FileCache`]'s write lock and only if
//! the file is still as the request read it (size, modification time, inode); otherwise the
//! request gets 412. A rewrite that would leave the same size and modification time (two
//! writes within one tick of a coarse clock) moves the modification time on, so that every
//! write changes the ETag. After a write the cache is told, so the engine reads the new file.
//!
//! Test hook: with `SFUBOX_TEST_CRASH_BEFORE_RENAME=1` in its environment the process aborts
//! after writing a temporary file and before renaming it (tests/admin_api.rs checks the file
//! survives whole).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::config::cache::walk_group_names;
use crate::config::stamp::FileStamp;
use crate::config::token::create_private_dir;
use crate::config::{FileCache, valid_group_name};
use crate::http::admin::{AdminFile, AdminStore, Snapshot, WriteError};

/// The environment variable of the crash test hook.
pub const CRASH_BEFORE_RENAME: &str = "SFUBOX_TEST_CRASH_BEFORE_RENAME";

/// Distinguishes the temporary files of successive writes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The files of one server's `groups/` and `data/` directories.
pub(super) struct DiskAdminStore {
    cache: FileCache,
    /// The stamp of each file as last read (`None`: absent), checked before writing it.
    seen: HashMap<AdminFile, Option<FileStamp>>,
    crash_before_rename: bool,
}

impl DiskAdminStore {
    /// A store over the directories of `cache`.
    pub(super) fn new(cache: FileCache) -> DiskAdminStore {
        let crash_before_rename = std::env::var_os(CRASH_BEFORE_RENAME).is_some_and(|v| v == "1");
        if crash_before_rename {
            log::warn!(
                "{CRASH_BEFORE_RENAME} is set: the first admin write will abort the process"
            );
        }
        DiskAdminStore {
            cache,
            seen: HashMap::new(),
            crash_before_rename,
        }
    }

    /// Forgets what was read: each request starts afresh.
    pub(super) fn start_request(&mut self) {
        self.seen.clear();
    }

    fn path(&self, file: &AdminFile) -> PathBuf {
        match file {
            AdminFile::Group(name) => self.cache.group_file(name),
            AdminFile::Config => self.cache.config_file(),
            AdminFile::Tokens => self.cache.tokens_file(),
        }
    }

    fn write_file(&self, path: &Path, text: &str, old: Option<FileStamp>) -> io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = self.write_temp_then_rename(&temp, path, text, old);
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result?;
        sync_dir(dir)
    }

    fn write_temp_then_rename(
        &self,
        temp: &Path,
        path: &Path,
        text: &str,
        old: Option<FileStamp>,
    ) -> io::Result<()> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(temp)?;
        file.write_all(text.as_bytes())?;
        if let Some(old) = old
            && FileStamp::of(temp)?.is_some_and(|new| new.etag() == old.etag())
            && let Some(modified) = old.modified()
        {
            file.set_modified(modified + Duration::from_micros(1))?;
        }
        file.sync_all()?;
        drop(file);
        if self.crash_before_rename {
            log::error!(
                "{CRASH_BEFORE_RENAME}: aborting before renaming {}",
                temp.display()
            );
            std::process::abort();
        }
        fs::rename(temp, path)
    }
}

/// Makes a directory's entries (a rename, a removal) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

impl AdminStore for DiskAdminStore {
    fn read(&mut self, file: &AdminFile) -> Result<Option<Snapshot>, String> {
        if let AdminFile::Group(name) = file
            && (!valid_group_name(name) || !self.cache.groups_on_disk())
        {
            self.seen.insert(file.clone(), None);
            return Ok(None);
        }
        let path = self.path(file);
        let describe = |e: io::Error| format!("{}: {e}", path.display());
        // The file may be replaced while it is read: read until the stamp holds still.
        for _ in 0..3 {
            let Some(before) = FileStamp::of(&path).map_err(describe)? else {
                self.seen.insert(file.clone(), None);
                return Ok(None);
            };
            let text = match fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(describe(e)),
            };
            if FileStamp::of(&path).map_err(describe)? == Some(before) {
                self.seen.insert(file.clone(), Some(before));
                return Ok(Some(Snapshot {
                    text,
                    etag: before.etag(),
                }));
            }
        }
        Err(format!("{}: keeps changing while read", path.display()))
    }

    fn write(&mut self, file: &AdminFile, contents: Option<&str>) -> Result<(), WriteError> {
        let path = self.path(file);
        let io_error = |e: io::Error| WriteError::Io(format!("{}: {e}", path.display()));
        let cache = self.cache.clone();
        let _writing = cache.write_lock();
        let current = FileStamp::of(&path).map_err(io_error)?;
        if let Some(seen) = self.seen.get(file)
            && *seen != current
        {
            return Err(WriteError::Conflict);
        }
        let creates_groups_dir = matches!(file, AdminFile::Group(_)) && !cache.groups_on_disk();
        match contents {
            Some(text) => self.write_file(&path, text, current).map_err(io_error)?,
            None => {
                match fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_error(e)),
                    _ => {}
                }
                if let Some(dir) = path.parent() {
                    sync_dir(dir).map_err(io_error)?;
                }
            }
        }
        cache.forget(&path);
        if creates_groups_dir && cache.groups_dir().is_dir() {
            cache.set_groups_on_disk();
        }
        let written = FileStamp::of(&path).map_err(io_error)?;
        self.seen.insert(file.clone(), written);
        Ok(())
    }

    fn group_names(&mut self) -> Result<Vec<String>, String> {
        if !self.cache.groups_on_disk() {
            return Ok(Vec::new());
        }
        Ok(walk_group_names(self.cache.groups_dir()))
    }
}
