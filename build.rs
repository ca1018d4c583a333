//! Embeds the web client: every file under `static/` becomes an entry of a sorted table in
//! `$OUT_DIR/embedded_site.rs`, so the binary alone is the whole appliance.
//!
//! Text files are stored gzip-compressed (zopfli, a gzip member with no optional header
//! fields) when that saves at least a tenth of their size: the server sends them as they are
//! with `Content-Encoding: gzip` to browsers that accept it and inflates them for the rest
//! (`src/http/files.rs`). The web client shrinks from ≈ 145 kB to ≈ 40 kB in the binary.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn collect(dir: &Path, root: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Dotfiles and editor leftovers are not part of the site.
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        if path.is_dir() {
            collect(&path, root, files);
        } else if let Ok(relative) = path.strip_prefix(root) {
            let relative = relative.to_string_lossy().replace('\\', "/");
            files.push((relative, path));
        }
    }
}

/// The gzip-compressed form of `body`, when it is worth storing instead of `body`.
fn compressed(body: &[u8]) -> Option<Vec<u8>> {
    let mut gzip = Vec::new();
    zopfli::compress(
        zopfli::Options::default(),
        zopfli::Format::Gzip,
        body,
        &mut gzip,
    )
    .ok()?;
    (gzip.len() * 10 <= body.len() * 9).then_some(gzip)
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest.join("static");
    println!("cargo:rerun-if-changed=static");
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    let gzip_dir = out_dir.join("site-gzip");
    let mut out = String::from("&[\n");
    for (index, (relative, path)) in files.iter().enumerate() {
        let body = fs::read(path).expect("a file under static/ is readable");
        let (stored, encoding) = match compressed(&body) {
            Some(gzip) => {
                fs::create_dir_all(&gzip_dir).expect("OUT_DIR is writable");
                let stored = gzip_dir.join(format!("{index}.gz"));
                fs::write(&stored, gzip).expect("OUT_DIR is writable");
                (stored, "Gzip")
            }
            None => (path.clone(), "Identity"),
        };
        writeln!(
            out,
            "    EmbeddedFile {{ path: {relative:?}, body: include_bytes!({:?}), \
             encoding: Encoding::{encoding} }},",
            stored.display().to_string()
        )
        .expect("writing to a String cannot fail");
    }
    out.push_str("]\n");
    fs::write(out_dir.join("embedded_site.rs"), out).expect("OUT_DIR is writable");
}
