//! An [`AdminStore`] in memory, for tests and fuzzing: files are strings, ETags count the
//! writes, and a write can be made to lose a race or to fail like a full disk.

use std::collections::BTreeMap;

use super::{AdminFile, AdminStore, Snapshot, WriteError};

/// Files in memory (see the module docs).
#[derive(Debug, Default)]
pub struct MemoryStore {
    files: BTreeMap<AdminFile, (String, u64)>,
    counter: u64,
    /// The next write fails as if another writer had come first.
    pub conflict_next: bool,
    /// Writes fail as on a full disk.
    pub fail_writes: bool,
}

impl MemoryStore {
    /// The store with `file` holding `text`.
    pub fn with(mut self, file: AdminFile, text: &str) -> MemoryStore {
        self.counter += 1;
        self.files.insert(file, (text.to_owned(), self.counter));
        self
    }

    /// The text of `file`, if it exists.
    pub fn text(&self, file: &AdminFile) -> Option<&str> {
        self.files.get(file).map(|(t, _)| t.as_str())
    }
}

impl AdminStore for MemoryStore {
    fn read(&mut self, file: &AdminFile) -> Result<Option<Snapshot>, String> {
        Ok(self.files.get(file).map(|(text, n)| Snapshot {
            text: text.clone(),
            etag: format!("\"{}-{n}\"", text.len()),
        }))
    }

    fn write(&mut self, file: &AdminFile, contents: Option<&str>) -> Result<(), WriteError> {
        if std::mem::take(&mut self.conflict_next) {
            return Err(WriteError::Conflict);
        }
        if self.fail_writes {
            return Err(WriteError::Io("No space left on device".into()));
        }
        self.counter += 1;
        match contents {
            Some(text) => {
                self.files
                    .insert(file.clone(), (text.to_owned(), self.counter));
            }
            None => {
                self.files.remove(file);
            }
        }
        Ok(())
    }

    fn group_names(&mut self) -> Result<Vec<String>, String> {
        Ok(self
            .files
            .keys()
            .filter_map(|f| match f {
                AdminFile::Group(name) => Some(name.clone()),
                _ => None,
            })
            .collect())
    }
}
