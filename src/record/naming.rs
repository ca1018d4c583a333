//! Recording file names, as Galène gives them (docs/galene.md, "Recording"):
//! `<local time YYYY-MM-DDTHH:MM:SS.mmm>[-<username>][-NN].<ext>` in the group's directory,
//! the username with `/` spelled `-slash-` and `\` spelled `-backslash-`, and `-01` … `-99`
//! added when a name is taken (the runtime creates files with `O_EXCL` and tries the next).

use chrono::{DateTime, TimeZone};

/// How many numbered names are tried after the plain one.
pub const MAX_COLLISIONS: u32 = 99;

/// The part of the file name before any collision number: the local time of `at`, then the
/// username (if any) made safe for a file name.
pub fn file_stem<Tz: TimeZone>(at: &DateTime<Tz>, username: &str) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let mut stem = at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string();
    if !username.is_empty() {
        stem.push('-');
        stem.push_str(
            &username
                .replace('/', "-slash-")
                .replace('\\', "-backslash-"),
        );
    }
    stem
}

/// The `attempt`th name to try: the stem itself first (`attempt` 0), then `-01` … `-99`.
pub fn candidate(stem: &str, attempt: u32, extension: &str) -> String {
    if attempt == 0 {
        format!("{stem}.{extension}")
    } else {
        format!("{stem}-{attempt:02}.{extension}")
    }
}

/// Whether `name` is a plain file name (no directory part, not hidden, not `.`/`..`): what
/// the recordings browser accepts.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && name.chars().all(|c| !c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    #[test]
    fn stems_use_local_time_in_milliseconds_and_a_safe_username() {
        // A fake clock: 2026-07-28 15:52:24.123 at UTC+2.
        let offset = FixedOffset::east_opt(2 * 3600).unwrap();
        let at = offset
            .with_ymd_and_hms(2026, 7, 28, 15, 52, 24)
            .unwrap()
            .checked_add_signed(chrono::TimeDelta::milliseconds(123))
            .unwrap();
        assert_eq!(file_stem(&at, ""), "2026-07-28T15:52:24.123");
        assert_eq!(file_stem(&at, "vimes"), "2026-07-28T15:52:24.123-vimes");
        assert_eq!(
            file_stem(&at, r"a/b\c"),
            "2026-07-28T15:52:24.123-a-slash-b-backslash-c"
        );
        // The same instant elsewhere gives that place's local time.
        let utc = at.with_timezone(&chrono::Utc);
        assert_eq!(file_stem(&utc, "x"), "2026-07-28T13:52:24.123-x");
    }

    #[test]
    fn collisions_are_numbered_from_01_to_99() {
        assert_eq!(candidate("s", 0, "webm"), "s.webm");
        assert_eq!(candidate("s", 1, "webm"), "s-01.webm");
        assert_eq!(candidate("s", MAX_COLLISIONS, "mkv"), "s-99.mkv");
    }

    #[test]
    fn plain_file_names() {
        assert!(is_plain_file_name("2026-07-28T15:52:24.123-vimes.webm"));
        for bad in ["", ".", "..", ".hidden", "a/b", r"a\b", "a\0b", "a\nb"] {
            assert!(!is_plain_file_name(bad), "{bad:?}");
        }
    }
}
