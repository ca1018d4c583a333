//! Noticing that a file changed without reading it: size, modification time and inode.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The size, modification time and inode of a file, used to notice changes. File times are
/// coarse (a few milliseconds on Linux), so the inode is what reveals a same-size file
/// replaced by a rename within the same tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl FileStamp {
    /// The stamp of the regular file at `path`; `None` when there is no such file.
    pub(crate) fn of(path: &Path) -> io::Result<Option<FileStamp>> {
        match fs::metadata(path) {
            Ok(meta) if meta.is_file() => Ok(Some(FileStamp {
                len: meta.len(),
                modified: meta.modified().ok(),
                inode: inode(&meta),
            })),
            Ok(_) => Ok(None),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The modification time, when the file system reports one.
    pub(crate) fn modified(&self) -> Option<SystemTime> {
        self.modified
    }

    /// Galène's ETag, `"<size>-<mtime in Unix nanoseconds>"`.
    pub(crate) fn etag(&self) -> String {
        let nanos = self
            .modified
            .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        format!("\"{}-{nanos}\"", self.len)
    }
}

#[cfg(unix)]
fn inode(meta: &fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_meta: &fs::Metadata) -> u64 {
    0
}
