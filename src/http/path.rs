//! URL paths: splitting the request target, percent-decoding, cleaning (Go's `path.Clean`
//! as `http.ServeMux` applies it) and re-encoding for `Location` headers.

/// A request target split into its decoded path and its raw query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// The percent-decoded path, starting with `/`.
    pub path: String,
    /// The raw query string after `?` (without it), if any.
    pub query: Option<&'a str>,
}

/// Splits and decodes an origin-form target (`/path?query`). `None` when the target is not
/// origin-form, has a bad percent escape, or decodes to invalid UTF-8 or a NUL byte.
pub fn parse_target(target: &str) -> Option<Target<'_>> {
    if !target.starts_with('/') {
        return None;
    }
    let without_fragment = target.split('#').next().unwrap_or(target);
    let (raw_path, query) = match without_fragment.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (without_fragment, None),
    };
    let path = percent_decode(raw_path)?;
    if path.contains('\0') {
        return None;
    }
    Some(Target { path, query })
}

/// Decodes `%XX` escapes; `None` on a malformed escape or invalid UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let high = hex_value(*bytes.get(i + 1)?)?;
            let low = hex_value(*bytes.get(i + 2)?)?;
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes a decoded path for a `Location` header, leaving `/`, the unreserved
/// characters and the sub-delimiters Go leaves alone.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/$&+,:;=@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Go's `path.Clean`: one `/` between elements, no `.` elements, `..` elements resolved
/// (never above the root for a rooted path), no trailing slash, `"."` for an empty result.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// `http.ServeMux`'s canonical form of a request path: cleaned, rooted, keeping a trailing
/// slash. A request whose path differs from this is redirected (301) to it.
pub fn canonical(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let rooted;
    let path = if path.starts_with('/') {
        path
    } else {
        rooted = format!("/{path}");
        &rooted
    };
    let mut cleaned = clean(path);
    if path.ends_with('/') && cleaned != "/" {
        cleaned.push('/');
    }
    cleaned
}

/// Splits a path at the first `/.` into (directory, dot-kind, rest), as Galène does for
/// `/group/<name>/.status` and friends: `/group/a/.whip/X` → (`/group/a`, `.whip`, `/X`).
pub fn split_kind(path: &str) -> (&str, &str, &str) {
    let Some(i) = path.find("/.") else {
        return (path, "", "");
    };
    let after = &path[i + 1..];
    match after.find('/') {
        None => (&path[..i], after, ""),
        Some(j) => (&path[..i], &after[..j], &after[j..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        for (input, expected) in [
            ("", "."),
            ("/", "/"),
            ("//a//b/", "/a/b"),
            ("/a/./b/../c", "/a/c"),
            ("/../../x", "/x"),
            ("a/../..", ".."),
            ("a/b/../../..", ".."),
            ("/a/..", "/"),
        ] {
            assert_eq!(clean(input), expected, "{input}");
        }
    }

    #[test]
    fn canonical_keeps_trailing_slash() {
        assert_eq!(canonical(""), "/");
        assert_eq!(canonical("/a/b/"), "/a/b/");
        assert_eq!(canonical("/a//b/"), "/a/b/");
        assert_eq!(canonical("/a/../"), "/");
        assert_eq!(canonical("/a/.."), "/");
        assert_eq!(canonical("/../etc/passwd"), "/etc/passwd");
        assert_eq!(canonical("/x/."), "/x");
    }

    #[test]
    fn target_is_decoded_and_validated() {
        let target = parse_target("/%2e%2e/a%20b?x=1#frag").unwrap();
        assert_eq!(target.path, "/../a b");
        assert_eq!(target.query, Some("x=1"));
        assert_eq!(parse_target("/a").unwrap().query, None);
        for bad in ["a", "http://x/", "*", "/%zz", "/%2", "/%00", "/%ff"] {
            assert_eq!(parse_target(bad), None, "{bad}");
        }
    }

    #[test]
    fn encode_path_escapes_what_must_be() {
        assert_eq!(encode_path("/a b/é?#%"), "/a%20b/%C3%A9%3F%23%25");
        assert_eq!(encode_path("/group/x-y_z.~/"), "/group/x-y_z.~/");
    }

    #[test]
    fn split_kind_like_galene() {
        assert_eq!(
            split_kind("/group/a/b/.whip/XYZ"),
            ("/group/a/b", ".whip", "/XYZ")
        );
        assert_eq!(split_kind("/group/a/.status"), ("/group/a", ".status", ""));
        assert_eq!(split_kind("/group/a/"), ("/group/a/", "", ""));
        assert_eq!(split_kind("/group/.x/"), ("/group", ".x", "/"));
    }
}
