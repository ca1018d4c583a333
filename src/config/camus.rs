//! Camus chat rooms, `data/camus-rooms.json` (the rooms the Camus endpoints serve).
//!
//! The file is one JSON object:
//!
//! ```json
//! {
//!   "auto-create": false,
//!   "rooms": [
//!     {"name": "Team Meeting", "password": "secret", "guest-limit": 5, "public": true},
//!     {"name": "Café", "slug": "cafe"}
//!   ]
//! }
//! ```
//!
//! - `auto-create` (boolean): rooms that are not listed are created on first use (a page load
//!   or a WebSocket), without password or guest limit, and not public. When absent it is true
//!   exactly when the server runs its built-in default setup (no groups directory); a missing
//!   file means the same as `{}`.
//! - `rooms`: every listed room exists permanently. `name` (required, non-empty) is shown on
//!   `/public` and in the page title. `slug` is the room's URL element; it defaults to the
//!   name made URL-safe like Camus does it ([`slugify`]; give `slug` explicitly for names
//!   outside ASCII). `password` takes any of Galène's password forms (docs/configuration.md,
//!   "Passwords": a string, or `{"type": "pbkdf2", ...}`, `{"type": "bcrypt", ...}`). `guest-limit`
//!   is the most clients connected at once, 0 or absent for no limit. `public` lists the room on
//!   `/public`.
//!
//! Keys match case-insensitively. A top-level error (not an object, a bad `auto-create`,
//! `rooms` not an array, an unknown top-level key) makes the whole file invalid, and the
//! Camus endpoints then answer 500 rather than guess. A bad room entry (unknown key, wrong
//! type, invalid slug, duplicate slug, a password object without `type`) is skipped with a
//! warning, like a bad entry of `ice-servers.json`.

use serde_json::Value;

use super::fields::{Fields, Unknown, invalid};
use super::group::first_json_value;
use super::{ConfigError, Password};

/// The longest slug accepted, in bytes.
pub const MAX_SLUG_LEN: usize = 64;

/// One configured room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CamusRoom {
    /// Display name.
    pub name: String,
    /// The URL element (`/chat/<slug>`, `/room/<slug>`), valid per [`valid_slug`].
    pub slug: String,
    /// The password the room page asks for; `None` for an open room.
    pub password: Option<Password>,
    /// Most clients connected at once; 0 means no limit.
    pub guest_limit: usize,
    /// Listed on `/public`.
    pub public: bool,
}

impl CamusRoom {
    /// An open, unlisted room without limit, as created on first use.
    pub fn on_demand(slug: &str) -> CamusRoom {
        CamusRoom {
            name: slug.to_owned(),
            slug: slug.to_owned(),
            password: None,
            guest_limit: 0,
            public: false,
        }
    }
}

/// The parsed `camus-rooms.json`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CamusRooms {
    /// Whether unlisted rooms are created on first use (already resolved against the
    /// built-in default when the file does not say).
    pub auto_create: bool,
    /// The configured rooms in file order, slugs unique.
    pub rooms: Vec<CamusRoom>,
}

impl CamusRooms {
    /// The room for `slug`: a configured one, else an on-demand one when `auto_create` is on
    /// and the slug is valid, else `None`.
    pub fn resolve(&self, slug: &str) -> Option<CamusRoom> {
        if let Some(room) = self.rooms.iter().find(|room| room.slug == slug) {
            return Some(room.clone());
        }
        (self.auto_create && valid_slug(slug)).then(|| CamusRoom::on_demand(slug))
    }
}

/// The file as written: `auto-create` may be absent, to be resolved by the directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CamusRoomsFile {
    /// `auto-create` if the file gives it.
    pub auto_create: Option<bool>,
    /// The valid room entries.
    pub rooms: Vec<CamusRoom>,
}

impl CamusRoomsFile {
    /// Resolves `auto-create` with `default` (true for the built-in default setup).
    pub fn resolve(&self, default_auto_create: bool) -> CamusRooms {
        CamusRooms {
            auto_create: self.auto_create.unwrap_or(default_auto_create),
            rooms: self.rooms.clone(),
        }
    }
}

/// Parses the text of `camus-rooms.json`.
pub fn parse_camus_rooms(text: &str) -> Result<CamusRoomsFile, ConfigError> {
    let mut f = Fields::new(
        first_json_value(text)?,
        &["auto-create", "rooms"],
        Unknown::Reject,
        "camus-rooms.json",
    )?;
    let auto_create = match f.take("auto-create") {
        None => None,
        Some(Value::Bool(b)) => Some(b),
        Some(_) => return Err(invalid("camus-rooms.json: auto-create must be a boolean")),
    };
    let items = match f.take("rooms") {
        None => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid("camus-rooms.json: rooms must be an array")),
    };
    let mut rooms: Vec<CamusRoom> = Vec::with_capacity(items.len());
    for item in items {
        match parse_room(item) {
            Ok(room) if rooms.iter().any(|r| r.slug == room.slug) => {
                log::warn!(
                    "camus-rooms.json: duplicate slug {:?}, room {:?} skipped",
                    room.slug,
                    room.name
                );
            }
            Ok(room) => rooms.push(room),
            Err(err) => log::warn!("camus-rooms.json: {err}, room skipped"),
        }
    }
    Ok(CamusRoomsFile { auto_create, rooms })
}

fn parse_room(value: Value) -> Result<CamusRoom, ConfigError> {
    let mut f = Fields::new(
        value,
        &["name", "slug", "password", "guest-limit", "public"],
        Unknown::Reject,
        "room",
    )?;
    let name = f
        .non_empty_string("name")?
        .ok_or_else(|| invalid("room without a name"))?;
    let slug = match f.non_empty_string("slug")? {
        Some(slug) => slug,
        None => slugify(&name),
    };
    if !valid_slug(&slug) {
        return Err(invalid(format!(
            "room {name:?}: slug {slug:?} is not lower-case ASCII letters and digits \
             separated by single dashes (at most {MAX_SLUG_LEN} bytes)"
        )));
    }
    let password = match f.take("password") {
        None => None,
        Some(value) => Some(
            Password::from_json(&value)?
                .ok_or_else(|| invalid(format!("room {name:?}: password without type")))?,
        ),
    };
    let guest_limit = usize::try_from(f.integer("guest-limit")?)
        .map_err(|_| invalid(format!("room {name:?}: negative guest-limit")))?;
    Ok(CamusRoom {
        name,
        slug,
        password,
        guest_limit,
        public: f.bool("public")?,
    })
}

/// Whether `slug` can name a room: 1 to [`MAX_SLUG_LEN`] bytes of lower-case ASCII letters
/// and digits in runs separated by single dashes (what [`slugify`] produces).
pub fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= MAX_SLUG_LEN
        && slug.split('-').all(|run| {
            !run.is_empty() && run.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9'))
        })
}

/// A room name made URL-safe the way Camus (python-slugify) does it for ASCII names:
/// lower case, quotes dropped, every other run of non-alphanumeric characters one dash, no
/// dash at either end, cut to [`MAX_SLUG_LEN`] bytes at a dash boundary. Characters outside
/// ASCII count as separators (python-slugify would transliterate them).
pub fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    let mut pending_dash = false;
    for c in name.chars() {
        if c == '\'' || c == '"' {
            continue;
        }
        if c.is_ascii_alphanumeric() {
            if pending_dash && !slug.is_empty() {
                slug.push('-');
            }
            pending_dash = false;
            slug.push(c.to_ascii_lowercase());
        } else {
            pending_dash = true;
        }
    }
    if slug.len() > MAX_SLUG_LEN {
        // Every byte is ASCII, so any index is a character boundary.
        slug.truncate(MAX_SLUG_LEN);
        while slug.ends_with('-') {
            slug.pop();
        }
    }
    slug
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_camus() {
        assert_eq!(slugify("Probe Room 1a2b"), "probe-room-1a2b");
        assert_eq!(slugify("  Bob's   Room!! "), "bobs-room");
        assert_eq!(slugify("a--b__c"), "a-b-c");
        assert_eq!(slugify("Café au lait"), "caf-au-lait");
        assert_eq!(slugify("!!!"), "");
        let long = slugify(&"ab ".repeat(40));
        assert!(long.len() <= MAX_SLUG_LEN && valid_slug(&long), "{long}");
        assert!(valid_slug("probe-room-1a2b"));
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "A",
            "a b",
            "a/b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(!valid_slug(bad), "{bad:?}");
        }
    }

    #[test]
    fn parses_rooms_and_skips_bad_entries() {
        let file = parse_camus_rooms(
            r#"{"Auto-Create": true, "rooms": [
                {"name": "Team Meeting", "password": "secret", "guest-limit": 5, "public": true},
                {"name": "Café", "slug": "cafe"},
                {"name": "Dup", "slug": "cafe"},
                {"name": ""},
                {"name": "x", "bogus": 1},
                {"name": "y", "slug": "Not Valid"},
                {"name": "z", "password": {"key": "k"}},
                {"name": "w", "guest-limit": -1},
                {"name": "v", "public": "yes"},
                {"name": "Hashed", "password": {"type": "bcrypt", "key": "$2a$10$x"}},
                3
            ]}"#,
        )
        .unwrap();
        assert_eq!(file.auto_create, Some(true));
        let slugs: Vec<_> = file.rooms.iter().map(|r| r.slug.as_str()).collect();
        assert_eq!(slugs, ["team-meeting", "cafe", "hashed"]);
        let team = &file.rooms[0];
        assert_eq!(team.name, "Team Meeting");
        assert_eq!(team.password, Some(Password::Plain("secret".into())));
        assert_eq!(team.guest_limit, 5);
        assert!(team.public);
        let cafe = &file.rooms[1];
        assert_eq!(
            (cafe.guest_limit, cafe.public, &cafe.password),
            (0, false, &None)
        );
    }

    #[test]
    fn whole_file_errors() {
        for bad in [
            "[]",
            "{",
            r#"{"auto-create": 1}"#,
            r#"{"rooms": {}}"#,
            r#"{"other": 1}"#,
        ] {
            assert!(parse_camus_rooms(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_camus_rooms("{}").unwrap(), CamusRoomsFile::default());
    }

    #[test]
    fn auto_create_default_and_resolution() {
        let file = parse_camus_rooms(r#"{"rooms": [{"name": "Lobby", "public": true}]}"#).unwrap();
        let embedded = file.resolve(true);
        assert!(embedded.auto_create);
        assert!(!file.resolve(false).auto_create);
        assert_eq!(
            embedded.resolve("lobby").map(|r| r.name),
            Some("Lobby".into())
        );
        assert_eq!(
            embedded.resolve("fresh"),
            Some(CamusRoom::on_demand("fresh"))
        );
        assert_eq!(embedded.resolve("Fresh"), None);
        assert_eq!(file.resolve(false).resolve("fresh"), None);
        let explicit = parse_camus_rooms(r#"{"auto-create": false}"#).unwrap();
        assert!(!explicit.resolve(true).auto_create);
    }
}
