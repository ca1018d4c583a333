//! Test support for the file-reading parts of `config`: a fresh directory with `groups/` and
//! `data/` under the system temporary directory, removed on drop.

use std::fs;
use std::path::PathBuf;

/// A scratch configuration tree; `.0` is its root.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    /// A fresh tree named after the test module (`kind`) and the test (`name`).
    pub(crate) fn new(kind: &str, name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "sfubox-config-{kind}-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("groups")).expect("scratch groups/");
        fs::create_dir_all(dir.join("data")).expect("scratch data/");
        Scratch(dir)
    }

    /// Writes `text` to `relative` under the root, creating directories on the way.
    pub(crate) fn write(&self, relative: &str, text: &str) {
        let path = self.0.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("scratch directory");
        }
        fs::write(path, text).expect("scratch file");
    }

    /// The `groups/` directory.
    pub(crate) fn groups(&self) -> PathBuf {
        self.0.join("groups")
    }

    /// The `data/` directory.
    pub(crate) fn data(&self) -> PathBuf {
        self.0.join("data")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
