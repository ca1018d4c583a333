//! The `-static` directory as a [`FileSource`]: files are read from disk on each request
//! (synchronously: they are small, and a thread pool would cost more than it saves); and the
//! `-recordings` directory as a [`RecordingStore`] (stat and directory reads, synchronous
//! too; a download is read in chunks between socket writes, see `conn.rs`).

use std::borrow::Cow;
use std::fs;
use std::path::PathBuf;
use std::time::SystemTime;

use crate::http::files::{FileLookup, FileSource, StaticFile};
use crate::http::recordings::{DeleteError, RecordingFile, RecordingStore, StoreLookup};

/// Files under a root directory.
#[derive(Debug, Clone)]
pub struct DiskFiles {
    root: PathBuf,
}

impl DiskFiles {
    /// Serves the files under `root`.
    pub fn new(root: impl Into<PathBuf>) -> DiskFiles {
        DiskFiles { root: root.into() }
    }
}

impl FileSource for DiskFiles {
    fn lookup(&self, path: &str) -> FileLookup {
        let mut full = self.root.clone();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            // The router only passes cleaned paths; refuse anything else all the same.
            if part == "." || part == ".." {
                return FileLookup::NotFound;
            }
            full.push(part);
        }
        let Ok(meta) = fs::metadata(&full) else {
            return FileLookup::NotFound;
        };
        if meta.is_dir() {
            return FileLookup::Directory;
        }
        if !meta.is_file() {
            return FileLookup::NotFound;
        }
        match fs::read(&full) {
            Ok(body) => FileLookup::File(StaticFile {
                body: Cow::Owned(body),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            }),
            Err(e) => {
                log::warn!("{}: {e}", full.display());
                FileLookup::NotFound
            }
        }
    }
}

/// The `-recordings` directory as a [`RecordingStore`], and the files the recordings browser
/// sends. Every path is resolved (symbolic links followed) and must stay inside the
/// directory; listings show regular files only, never links, hidden files or directories.
#[derive(Debug, Clone)]
pub struct DiskRecordings {
    root: PathBuf,
}

impl DiskRecordings {
    /// The recordings under `root`.
    pub fn new(root: impl Into<PathBuf>) -> DiskRecordings {
        DiskRecordings { root: root.into() }
    }

    /// The real path of `path` (relative, cleaned), if it is inside the directory.
    fn resolve(&self, path: &str) -> Option<PathBuf> {
        let mut full = self.root.clone();
        for part in path.split('/') {
            if part.is_empty() || part == "." || part == ".." || part.contains('\\') {
                return None;
            }
            full.push(part);
        }
        let root = fs::canonicalize(&self.root).ok()?;
        let real = fs::canonicalize(&full).ok()?;
        real.starts_with(&root).then_some(real)
    }

    /// Opens recording `path` (relative) for reading at byte `start`.
    pub fn open(&self, path: &str, start: u64) -> std::io::Result<fs::File> {
        use std::io::{Seek, SeekFrom};
        let real = self
            .resolve(path)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
        let mut file = fs::File::open(real)?;
        file.seek(SeekFrom::Start(start))?;
        Ok(file)
    }
}

fn recording_file(name: String, meta: &fs::Metadata) -> RecordingFile {
    RecordingFile {
        name,
        size: meta.len(),
        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    }
}

impl RecordingStore for DiskRecordings {
    fn lookup(&self, path: &str) -> StoreLookup {
        let Some(real) = self.resolve(path) else {
            return StoreLookup::NotFound;
        };
        let Ok(meta) = fs::metadata(&real) else {
            return StoreLookup::NotFound;
        };
        if meta.is_file() {
            let name = path.rsplit('/').next().unwrap_or(path).to_owned();
            return StoreLookup::File(recording_file(name, &meta));
        }
        if !meta.is_dir() {
            return StoreLookup::NotFound;
        }
        let Ok(entries) = fs::read_dir(&real) else {
            return StoreLookup::NotFound;
        };
        let mut files: Vec<RecordingFile> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                if name.starts_with('.') {
                    return None;
                }
                // The entry itself: a link is not followed.
                let meta = entry.metadata().ok()?;
                meta.is_file().then(|| recording_file(name, &meta))
            })
            .collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        StoreLookup::Directory(files)
    }

    fn delete(&self, group: &str, name: &str) -> Result<(), DeleteError> {
        let dir = self.resolve(group).ok_or(DeleteError::NotFound)?;
        let path = dir.join(name);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {
                fs::remove_file(&path).map_err(|e| DeleteError::Failed(e.to_string()))
            }
            Ok(_) => Err(DeleteError::NotFound),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DeleteError::NotFound),
            Err(e) => Err(DeleteError::Failed(e.to_string())),
        }
    }
}
