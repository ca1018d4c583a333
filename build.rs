//! Embeds the web client: every file under `static/` becomes an entry of a sorted table in
//! `$OUT_DIR/embedded_site.rs`, so the binary alone is the whole appliance.

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

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest.join("static");
    println!("cargo:rerun-if-changed=static");
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut out = String::from("&[\n");
    for (relative, path) in &files {
        writeln!(
            out,
            "    EmbeddedFile {{ path: {relative:?}, body: include_bytes!({:?}) }},",
            path.display().to_string()
        )
        .expect("writing to a String cannot fail");
    }
    out.push_str("]\n");
    let target = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("embedded_site.rs");
    fs::write(target, out).expect("OUT_DIR is writable");
}
