//! `sfubox -check-config`: reads every configuration file the server would read, with the
//! same parsers, and reports what it found, file by file, without starting anything.
//!
//! Errors are what would make the server refuse a group, ignore a file or fail to start
//! (a group file that does not parse, only one of `cert.pem` and `key.pem`); warnings are
//! things that work but are probably not meant (a file name that is not a valid group name,
//! plain-text passwords, password files readable by every local user, skipped entries).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::{
    Description, GlobalConfig, IceServerEntry, Password, StatefulToken, UserEntry, valid_group_name,
};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The file is fine.
    Ok,
    /// Works, but is probably not what was meant.
    Warning,
    /// The server would refuse or ignore this.
    Error,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How serious.
    pub level: Level,
    /// The file or directory concerned.
    pub path: PathBuf,
    /// What was found.
    pub message: String,
}

/// Everything `-check-config` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Findings in the order the files were checked.
    pub findings: Vec<Finding>,
}

impl Report {
    fn push(&mut self, level: Level, path: &Path, message: impl Into<String>) {
        self.findings.push(Finding {
            level,
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// Number of findings at `level`.
    pub fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }

    /// Whether the configuration has no errors (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.count(Level::Error) == 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            let label = match finding.level {
                Level::Ok => "ok",
                Level::Warning => "warning",
                Level::Error => "ERROR",
            };
            writeln!(
                f,
                "{label:<8}{}: {}",
                finding.path.display(),
                finding.message
            )?;
        }
        let (errors, warnings) = (self.count(Level::Error), self.count(Level::Warning));
        if errors == 0 {
            writeln!(f, "Configuration OK ({warnings} warning(s)).")
        } else {
            writeln!(
                f,
                "Configuration has {errors} error(s) and {warnings} warning(s)."
            )
        }
    }
}

/// Checks the `-groups` and `-data` directories.
pub fn check_config(groups_dir: &Path, data_dir: &Path) -> Report {
    let mut report = Report::default();
    check_groups(groups_dir, &mut report);
    check_data(data_dir, &mut report);
    report
}

fn check_groups(groups_dir: &Path, report: &mut Report) {
    if !groups_dir.is_dir() {
        report.push(
            Level::Warning,
            groups_dir,
            "no such directory: the server would serve only the built-in public group",
        );
        return;
    }
    let mut files = Vec::new();
    collect_group_files(groups_dir, "", &mut files, report);
    files.sort();
    if files.is_empty() {
        report.push(Level::Warning, groups_dir, "no group files (<name>.json)");
    }
    for (name, path) in files {
        match read_text(&path) {
            Err(message) => report.push(Level::Error, &path, message),
            Ok(text) => match Description::from_json_str(&text) {
                Err(error) => report.push(
                    Level::Error,
                    &path,
                    format!("group {name:?} is invalid (its page would answer 500): {error}"),
                ),
                Ok(description) => check_group(&name, &path, &description, report),
            },
        }
    }
}

/// Collects `(group name, path)` of every `.json` file under `dir`, like the server walks
/// it, and reports files it would ignore.
fn collect_group_files(
    dir: &Path,
    prefix: &str,
    files: &mut Vec<(String, PathBuf)>,
    report: &mut Report,
) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            report.push(Level::Error, dir, format!("cannot read: {error}"));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
            report.push(Level::Warning, &path, "ignored: the name is not UTF-8");
            continue;
        };
        if file_name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect_group_files(&path, &format!("{prefix}{file_name}/"), files, report);
        } else if let Some(stem) = file_name.strip_suffix(".json") {
            let name = format!("{prefix}{stem}");
            if valid_group_name(&name) {
                files.push((name, path));
            } else {
                report.push(
                    Level::Warning,
                    &path,
                    format!("ignored: {name:?} is not a valid group name"),
                );
            }
        } else {
            report.push(Level::Warning, &path, "ignored: not a .json file");
        }
    }
}

fn check_group(name: &str, path: &Path, description: &Description, report: &mut Report) {
    let mut summary = format!(
        "group {name:?}: {}, {} user(s)",
        if description.public {
            "public"
        } else {
            "not public"
        },
        description.users.len()
    );
    if description.wildcard_user.is_some() {
        summary.push_str(", wildcard user");
    }
    if description.auto_subgroups {
        summary.push_str(", auto-subgroups");
    }
    if let Some(redirect) = &description.redirect {
        summary.push_str(&format!(", redirects to {redirect}"));
    }
    report.push(Level::Ok, path, summary);
    let users = description
        .users
        .iter()
        .map(|(user, entry)| (user.as_str(), entry))
        .chain(
            description
                .wildcard_user
                .iter()
                .map(|entry| ("(wildcard)", entry)),
        );
    check_passwords(path, users, report);
}

/// Warns about plain-text passwords and about password files other local users can read.
fn check_passwords<'a>(
    path: &Path,
    users: impl Iterator<Item = (&'a str, &'a UserEntry)>,
    report: &mut Report,
) {
    let mut has_secret = false;
    for (user, entry) in users {
        match &entry.password {
            Some(Password::Plain(_)) => {
                has_secret = true;
                report.push(
                    Level::Warning,
                    path,
                    format!("user {user:?} has a plain-text password (pbkdf2 or bcrypt is safer)"),
                );
            }
            Some(Password::Wildcard) | None => {}
            Some(_) => has_secret = true,
        }
    }
    if has_secret && readable_by_others(path) {
        report.push(
            Level::Warning,
            path,
            "holds passwords and is readable by every local user (chmod o-r)",
        );
    }
}

#[cfg(unix)]
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o004 != 0)
}

#[cfg(not(unix))]
fn readable_by_others(_path: &Path) -> bool {
    false
}

fn check_data(data_dir: &Path, report: &mut Report) {
    if !data_dir.is_dir() {
        report.push(
            Level::Warning,
            data_dir,
            "no such directory: defaults apply (no config.json, no ICE servers, \
             a self-signed certificate); first-run setup pending",
        );
        return;
    }
    check_global_config(&data_dir.join("config.json"), report);
    check_ice_servers(&data_dir.join("ice-servers.json"), report);
    check_camus_rooms(&data_dir.join("camus-rooms.json"), report);
    check_tokens(&data_dir.join("var").join("tokens.jsonl"), report);
    check_certificate(data_dir, report);
}

/// Reads a file that may be absent: `None` when it does not exist.
fn read_optional(path: &Path, report: &mut Report) -> Option<String> {
    if !path.exists() {
        return None;
    }
    match read_text(path) {
        Ok(text) => Some(text),
        Err(message) => {
            report.push(Level::Error, path, message);
            None
        }
    }
}

fn read_text(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|error| format!("cannot read: {error}"))
}

/// What `-check-config` says while the box has no administrator (docs/admin.md).
const SETUP_PENDING: &str = "first-run setup pending: no administrator yet; open /admin/ on \
                             this server from the local network to create one";

fn check_global_config(path: &Path, report: &mut Report) {
    let Some(text) = read_optional(path, report) else {
        if !path.exists() {
            report.push(Level::Warning, path, SETUP_PENDING);
        }
        return;
    };
    match GlobalConfig::from_json_str(&text) {
        Err(error) => report.push(
            Level::Error,
            path,
            format!("invalid (the server would refuse every join): {error}"),
        ),
        Ok(config) => {
            let admin = if config.has_admin() {
                "an administrator"
            } else {
                "no administrator"
            };
            report.push(
                Level::Ok,
                path,
                format!(
                    "{} user(s), {admin}, writableGroups {}",
                    config.users.len(),
                    config.writable_groups
                ),
            );
            if !config.has_admin() {
                report.push(Level::Warning, path, SETUP_PENDING);
            }
            let users = config
                .users
                .iter()
                .map(|(user, entry)| (user.as_str(), entry));
            check_passwords(path, users, report);
        }
    }
}

fn check_ice_servers(path: &Path, report: &mut Report) {
    let Some(text) = read_optional(path, report) else {
        return;
    };
    let items = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(items)) => items,
        Ok(_) => {
            report.push(Level::Error, path, "must be a JSON array; no ICE servers");
            return;
        }
        Err(error) => {
            report.push(
                Level::Error,
                path,
                format!("not JSON ({error}); no ICE servers"),
            );
            return;
        }
    };
    let total = items.len();
    let mut valid = 0;
    for (index, item) in items.into_iter().enumerate() {
        match IceServerEntry::from_json(item) {
            Ok(_) => valid += 1,
            Err(error) => report.push(
                Level::Warning,
                path,
                format!("entry {index} is skipped: {error}"),
            ),
        }
    }
    report.push(
        Level::Ok,
        path,
        format!("{valid} of {total} ICE server entries usable"),
    );
}

fn check_camus_rooms(path: &Path, report: &mut Report) {
    let Some(text) = read_optional(path, report) else {
        return;
    };
    match crate::config::camus::parse_camus_rooms(&text) {
        Err(error) => report.push(
            Level::Error,
            path,
            format!("invalid (the Camus endpoints would answer 500): {error}"),
        ),
        Ok(file) => {
            let listed = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|value| {
                    let object = value.as_object()?;
                    let rooms = object
                        .iter()
                        .find(|(key, _)| key.eq_ignore_ascii_case("rooms"))?;
                    rooms.1.as_array().map(Vec::len)
                })
                .unwrap_or(file.rooms.len());
            if listed > file.rooms.len() {
                report.push(
                    Level::Warning,
                    path,
                    format!(
                        "{} room entries are skipped (see the warnings logged above)",
                        listed - file.rooms.len()
                    ),
                );
            }
            report.push(
                Level::Ok,
                path,
                format!(
                    "{} room(s), auto-create {}",
                    file.rooms.len(),
                    file.auto_create
                        .map_or("unset (off with a groups directory)".to_owned(), |on| {
                            on.to_string()
                        })
                ),
            );
        }
    }
}

fn check_tokens(path: &Path, report: &mut Report) {
    let Some(text) = read_optional(path, report) else {
        return;
    };
    let mut count = 0;
    for (index, value) in serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .enumerate()
    {
        match value
            .map_err(|e| e.to_string())
            .and_then(|value| StatefulToken::from_json(value).map_err(|e| e.to_string()))
        {
            Ok(_) => count += 1,
            Err(error) => {
                report.push(
                    Level::Error,
                    path,
                    format!("token {index}: {error}; it and what follows may be ignored"),
                );
                return;
            }
        }
    }
    report.push(Level::Ok, path, format!("{count} token(s)"));
}

fn check_certificate(data_dir: &Path, report: &mut Report) {
    let cert = data_dir.join("cert.pem");
    let key = data_dir.join("key.pem");
    match (cert.exists(), key.exists()) {
        (false, false) => report.push(
            Level::Ok,
            data_dir,
            "no cert.pem/key.pem: a self-signed certificate is made at start-up \
             (browsers ask to accept it)",
        ),
        (true, false) | (false, true) => report.push(
            Level::Error,
            data_dir,
            "only one of cert.pem and key.pem exists: the server would refuse to start",
        ),
        (true, true) => match super::tls::server_config(data_dir) {
            Ok(_) => report.push(Level::Ok, &cert, "certificate and key load"),
            Err(error) => report.push(Level::Error, &cert, error.to_string()),
        },
    }
    if key.exists() && readable_by_others(&key) {
        report.push(
            Level::Warning,
            &key,
            "the private key is readable by every local user (chmod 600)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sfubox-check-{label}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn messages(report: &Report, level: Level) -> Vec<String> {
        report
            .findings
            .iter()
            .filter(|f| f.level == level)
            .map(|f| format!("{}: {}", f.path.display(), f.message))
            .collect()
    }

    #[test]
    fn the_example_configuration_is_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let report = check_config(&root.join("groups"), &root.join("data"));
        assert!(report.is_ok(), "{report}");
        let text = report.to_string();
        assert!(text.contains("group \"office\": public"), "{text}");
        assert!(text.ends_with("warning(s)).\n"), "{text}");
    }

    #[test]
    fn broken_files_are_errors_and_oddities_warnings() {
        let root = scratch("broken");
        let (groups, data) = (root.join("groups"), root.join("data"));
        write(&groups.join("good.json"), r#"{"public": true}"#);
        write(
            &groups.join("sub/inner.json"),
            r#"{"users": {"a": {"password": "x"}}}"#,
        );
        write(&groups.join("typo.json"), r#"{"pubic": true}"#);
        write(&groups.join("notes.txt"), "hello");
        write(&groups.join(".hidden.json"), "not json");
        write(&data.join("config.json"), "{");
        write(
            &data.join("ice-servers.json"),
            r#"[{"urls": ["stun:a.example"]}, {"urls": 3}]"#,
        );
        write(
            &data.join("var/tokens.jsonl"),
            "{\"token\": \"t\", \"group\": \"g\"}\nnope\n",
        );
        write(&data.join("cert.pem"), "x");

        let report = check_config(&groups, &data);
        assert!(!report.is_ok());
        let errors = messages(&report, Level::Error).join("\n");
        assert!(
            errors.contains("typo.json: group \"typo\" is invalid"),
            "{errors}"
        );
        assert!(errors.contains("config.json: invalid"), "{errors}");
        assert!(errors.contains("tokens.jsonl: token 1:"), "{errors}");
        assert!(
            errors.contains("only one of cert.pem and key.pem"),
            "{errors}"
        );
        let warnings = messages(&report, Level::Warning).join("\n");
        assert!(warnings.contains("notes.txt: ignored"), "{warnings}");
        assert!(
            warnings.contains("ice-servers.json: entry 1 is skipped"),
            "{warnings}"
        );
        assert!(
            warnings.contains("user \"a\" has a plain-text password"),
            "{warnings}"
        );
        assert!(!warnings.contains(".hidden"), "{warnings}");
        let fine = messages(&report, Level::Ok).join("\n");
        assert!(fine.contains("group \"sub/inner\""), "{fine}");
        assert!(fine.contains("group \"good\": public, 0 user(s)"), "{fine}");
        assert!(fine.contains("1 of 2 ICE server entries usable"), "{fine}");
        assert!(report.to_string().contains("Configuration has 4 error(s)"));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn missing_directories_are_warnings_only() {
        let root = scratch("missing");
        let report = check_config(&root.join("groups"), &root.join("data"));
        assert!(report.is_ok(), "{report}");
        assert_eq!(report.count(Level::Warning), 2);
        fs::remove_dir_all(&root).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_password_files_are_flagged() {
        use std::os::unix::fs::PermissionsExt as _;
        let root = scratch("modes");
        let file = root.join("groups/g.json");
        write(
            &file,
            r#"{"users": {"a": {"password": {"type": "bcrypt", "key": "$2b$04$abcdefghijklmnopqrstuu5F5Nq1vd6WQyUQ4fl6yqcIg2C8K0OVm"}}}}"#,
        );
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let report = check_config(&root.join("groups"), &root.join("data"));
        assert!(
            messages(&report, Level::Warning)
                .iter()
                .any(|m| m.contains("readable by every local user")),
            "{report}"
        );
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        let report = check_config(&root.join("groups"), &root.join("data"));
        assert!(
            !report.to_string().contains("readable by every local user"),
            "{report}"
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
