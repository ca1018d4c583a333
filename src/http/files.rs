//! Where static files come from, and their MIME types.
//!
//! The router asks a [`FileSource`] for cleaned, relative paths (`"index.html"`,
//! `"third-party/x/y.css"`, `""` for the root). Two sources exist: [`EmbeddedSite`], the
//! web client compiled into the binary from `static/` (by `build.rs`), and the `-static` directory on
//! disk, which is I/O and therefore lives in `run/`.

use std::borrow::Cow;
use std::time::SystemTime;

/// A file ready to be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticFile {
    /// The whole content.
    pub body: Cow<'static, [u8]>,
    /// Last modification time (drives `ETag` and `Last-Modified`).
    pub modified: SystemTime,
}

/// What a path names in a [`FileSource`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileLookup {
    /// A regular file.
    File(StaticFile),
    /// A directory (its `index.html`, if any, is looked up separately).
    Directory,
    /// Nothing (or something that cannot be read).
    NotFound,
}

/// A tree of static files.
pub trait FileSource {
    /// Looks up `path`: relative, cleaned, without `.`/`..` elements or empty elements;
    /// `""` is the root directory.
    fn lookup(&self, path: &str) -> FileLookup;
}

/// One file of the embedded site.
struct EmbeddedFile {
    path: &'static str,
    body: &'static [u8],
}

/// The files of `static/`, compiled in by `build.rs`, sorted by path.
const EMBEDDED_FILES: &[EmbeddedFile] = include!(concat!(env!("OUT_DIR"), "/embedded_site.rs"));

/// The web client compiled into the binary. Its files all carry the same modification
/// time, given at construction (the server's start), so caches revalidate after a restart.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedSite {
    modified: SystemTime,
}

impl EmbeddedSite {
    /// The embedded site, with `modified` as every file's modification time.
    pub fn new(modified: SystemTime) -> EmbeddedSite {
        EmbeddedSite { modified }
    }
}

impl FileSource for EmbeddedSite {
    fn lookup(&self, path: &str) -> FileLookup {
        if path.is_empty() {
            return FileLookup::Directory;
        }
        // The table is sorted, so a file is found by binary search and a directory `d` is a
        // prefix of the first entry at or after `d/`.
        if let Ok(index) = EMBEDDED_FILES.binary_search_by(|f| f.path.cmp(path)) {
            let file = &EMBEDDED_FILES[index];
            return FileLookup::File(StaticFile {
                body: Cow::Borrowed(file.body),
                modified: self.modified,
            });
        }
        let directory = format!("{path}/");
        let first_after = EMBEDDED_FILES.partition_point(|f| f.path < directory.as_str());
        let prefix_of_a_file = EMBEDDED_FILES
            .get(first_after)
            .is_some_and(|f| f.path.starts_with(&directory));
        if prefix_of_a_file {
            FileLookup::Directory
        } else {
            FileLookup::NotFound
        }
    }
}

/// The `Content-Type` for a file name, from its extension, as Galène serves them
/// (docs/galene.md, "HTTP"). Unknown
/// extensions are `application/octet-stream`: with `nosniff`, guessing would not help.
pub fn mime_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let extension = match name.rsplit_once('.') {
        Some((_, extension)) => extension.to_ascii_lowercase(),
        None => return "application/octet-stream",
    };
    match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "text/xml; charset=utf-8",
        "wasm" => "application/wasm",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/vnd.microsoft.icon",
        "pdf" => "application/pdf",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "mp4" => "video/mp4",
        "ogg" => "audio/ogg",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn mime_types_that_nosniff_requires() {
        for (path, expected) in [
            ("a/index.html", "text/html; charset=utf-8"),
            ("x.JS", "text/javascript; charset=utf-8"),
            ("v.mjs", "text/javascript; charset=utf-8"),
            ("c.css", "text/css; charset=utf-8"),
            ("f.woff2", "font/woff2"),
            ("f.ttf", "font/ttf"),
            ("d.json", "application/json"),
            ("m.wasm", "application/wasm"),
            ("models/s.tflite", "application/octet-stream"),
            ("noextension", "application/octet-stream"),
            ("dir.d/noextension", "application/octet-stream"),
        ] {
            assert_eq!(mime_type(path), expected, "{path}");
        }
    }

    #[test]
    fn embedded_site_has_the_required_pages() {
        let site = EmbeddedSite::new(UNIX_EPOCH);
        assert_eq!(site.lookup(""), FileLookup::Directory);
        for page in ["index.html", "galene.html", "404.html"] {
            let FileLookup::File(file) = site.lookup(page) else {
                panic!("{page} missing");
            };
            assert!(!file.body.is_empty());
            assert_eq!(file.modified, UNIX_EPOCH);
        }
        assert_eq!(site.lookup("nope.html"), FileLookup::NotFound);
        assert_eq!(site.lookup("index"), FileLookup::NotFound);
    }
}
