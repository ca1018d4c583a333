//! Shared by the tests that run the sfubox binary itself (not the in-process server of
//! `tests/common`): start it on loopback over a directory's `groups/` and `data/`, and read its
//! log line by line.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;

/// Starts `sfubox -insecure -http 127.0.0.1:0 -groups DIR/groups -data DIR/data` plus `args`,
/// with `RUST_LOG=info`; returns the process and its stderr, one line per message.
pub fn spawn_sfubox(dir: &Path, args: &[&str]) -> (Child, Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sfubox"))
        .args(["-insecure", "-http", "127.0.0.1:0"])
        .arg("-groups")
        .arg(dir.join("groups"))
        .arg("-data")
        .arg(dir.join("data"))
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the sfubox binary");
    let stderr = child.stderr.take().expect("piped stderr");
    let (lines, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    (child, log)
}
