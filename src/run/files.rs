//! The `-static` directory as a [`FileSource`]: files are read from disk on each request
//! (synchronously: they are small, and a thread pool would cost more than it saves).

use std::borrow::Cow;
use std::fs;
use std::path::PathBuf;
use std::time::SystemTime;

use crate::http::files::{Encoding, FileLookup, FileSource, StaticFile};

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
                encoding: Encoding::Identity,
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            }),
            Err(e) => {
                log::warn!("{}: {e}", full.display());
                FileLookup::NotFound
            }
        }
    }
}
