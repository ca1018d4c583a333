//! Validity of group names and usernames (Galène's rules; docs/configuration.md, "Names").
//!
//! A group name is a relative slash-separated path that is already clean: no empty, `.` or
//! `..` component, no leading or trailing slash, no backslash. The same rule protects group
//! files on disk from path traversal, which is why usernames (used in recording file names)
//! follow it too, except that the empty username is allowed.

/// Whether `name` is a valid group name (`"a"`, `"a/b"`; not `""`, `"/a"`, `"a/"`, `"a//b"`,
/// `"a/./b"`, `"../a"`, `"a\\b"`).
pub fn valid_group_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\\')
        && name
            .split('/')
            .all(|component| !component.is_empty() && component != "." && component != "..")
}

/// Whether `name` is an acceptable username: empty, or valid as a group name.
pub fn valid_username(name: &str) -> bool {
    name.is_empty() || valid_group_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names() {
        for good in [
            "a", "a/b", "a/b/c", "x.y", "..a", "a..", ".a", "a/.b", "jch@work", "é",
        ] {
            assert!(valid_group_name(good), "{good:?} should be valid");
        }
        for bad in [
            "", "/", "/a", "a/", "a//b", ".", "..", "./a", "a/.", "a/./b", "a/../b", "../a",
            "a/..", "a\\b", "\\", "//",
        ] {
            assert!(!valid_group_name(bad), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn usernames() {
        assert!(valid_username(""));
        assert!(valid_username("Alice c/o Bob"));
        assert!(valid_username("vimes"));
        assert!(!valid_username("/etc"));
        assert!(!valid_username("../x"));
        assert!(!valid_username("a\\b"));
    }
}
