//! Secrets of the Camus hub: client ids and room passes.
//!
//! - **Client ids** are 32 lower-case hex digits like Camus's `uuid4().hex`, derived as
//!   HMAC-SHA-256(key, counter): unique, and unpredictable without the key.
//! - **Room passes** implement the 0.3.1 cookie model for password-protected rooms: the room
//!   page, once the right password was posted, sets the cookie [`PASS_COOKIE`] (scoped to the
//!   page's path, so also sent with the page's `/ws`), and the WebSocket upgrade is refused
//!   without a valid one. A pass is `<expiry>.<tag>`, where `expiry` is Unix seconds and
//!   `tag` the hex HMAC-SHA-256 of the room's slug, the expiry and the room's password as
//!   configured. Nothing is stored: a pass expires after [`PASS_LIFETIME`], and changing a
//!   room's password (or restarting the server, which picks a new key) revokes every pass.
//!
//! The key comes from the caller (random in production, fixed in tests); nothing here
//! reads a clock or the system's random source.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;

use crate::config::CamusRoom;
use crate::config::password::{decode_hex, encode_hex};

/// The name of the cookie that carries a room pass.
pub const PASS_COOKIE: &str = "camus_pass";
/// How long a pass stays valid.
pub const PASS_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The hub's key and id counter.
pub struct Secrets {
    key: hmac::Key,
    issued_ids: u64,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("issued_ids", &self.issued_ids)
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// Secrets over a 32-byte key.
    pub fn new(key: [u8; 32]) -> Secrets {
        Secrets {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            issued_ids: 0,
        }
    }

    /// A new client id: 32 lower-case hex digits, never repeated by this instance.
    pub fn next_client_id(&mut self) -> String {
        self.issued_ids += 1;
        let mut input = *b"camus-client-id\0\0\0\0\0\0\0\0";
        input[15..].copy_from_slice(&self.issued_ids.to_be_bytes());
        let tag = hmac::sign(&self.key, &input);
        // A SHA-256 tag is 32 bytes long.
        encode_hex(tag.as_ref().get(..16).unwrap_or_default())
    }

    /// A pass for `room`, valid from `now` for [`PASS_LIFETIME`].
    pub fn issue_pass(&self, room: &CamusRoom, now: SystemTime) -> String {
        let expiry = unix_seconds(now).saturating_add(PASS_LIFETIME.as_secs());
        let tag = hmac::sign(&self.key, &pass_input(room, expiry));
        format!("{expiry}.{}", encode_hex(tag.as_ref()))
    }

    /// Whether `pass` is a pass for `room` (as configured now) that has not expired at `now`.
    pub fn check_pass(&self, room: &CamusRoom, pass: &str, now: SystemTime) -> bool {
        let Some((expiry, tag)) = pass.split_once('.') else {
            return false;
        };
        let (Ok(expiry), Some(tag)) = (expiry.parse::<u64>(), decode_hex(tag)) else {
            return false;
        };
        expiry > unix_seconds(now)
            && hmac::verify(&self.key, &pass_input(room, expiry), &tag).is_ok()
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// What a pass's tag covers: the slug, the expiry and the password's configured form.
fn pass_input(room: &CamusRoom, expiry: u64) -> Vec<u8> {
    let password = room
        .password
        .as_ref()
        .map(|p| p.to_json().to_string())
        .unwrap_or_default();
    format!("camus-pass\0{}\0{expiry}\0{password}", room.slug).into_bytes()
}

/// The values of every [`PASS_COOKIE`] in a `Cookie` header (there is one per room path
/// the browser holds a pass for).
pub fn pass_cookies(cookie_header: &str) -> impl Iterator<Item = &str> {
    cookie_header.split(';').filter_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name.trim() == PASS_COOKIE).then(|| value.trim().trim_matches('"'))
    })
}

/// The `Set-Cookie` value for a pass: scoped to the room page's `path` (the WebSocket lives
/// under it), invisible to scripts, same-site only, `Secure` over TLS, and gone when the
/// pass expires.
pub fn set_cookie(pass: &str, path: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{PASS_COOKIE}={pass}; Path={path}; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        PASS_LIFETIME.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Password;

    fn room(password: &str) -> CamusRoom {
        CamusRoom {
            password: Some(Password::Plain(password.into())),
            ..CamusRoom::on_demand("secret-room")
        }
    }

    #[test]
    fn client_ids_look_like_uuid_hex_and_never_repeat() {
        let mut secrets = Secrets::new([7; 32]);
        let a = secrets.next_client_id();
        let b = secrets.next_client_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
        assert_ne!(a, b);
        assert_ne!(Secrets::new([8; 32]).next_client_id(), a);
        assert_eq!(Secrets::new([7; 32]).next_client_id(), a);
    }

    #[test]
    fn passes_are_bound_to_room_password_key_and_time() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let secrets = Secrets::new([1; 32]);
        let pass = secrets.issue_pass(&room("pw"), now);
        assert!(secrets.check_pass(&room("pw"), &pass, now));
        assert!(secrets.check_pass(
            &room("pw"),
            &pass,
            now + PASS_LIFETIME - Duration::from_secs(1)
        ));
        assert!(!secrets.check_pass(&room("pw"), &pass, now + PASS_LIFETIME));
        assert!(!secrets.check_pass(&room("changed"), &pass, now));
        let other = CamusRoom {
            slug: "other".into(),
            ..room("pw")
        };
        assert!(!secrets.check_pass(&other, &pass, now));
        assert!(!Secrets::new([2; 32]).check_pass(&room("pw"), &pass, now));
        let (expiry, tag) = pass.split_once('.').unwrap();
        let later: u64 = expiry.parse::<u64>().unwrap() + 3600;
        assert!(!secrets.check_pass(&room("pw"), &format!("{later}.{tag}"), now));
        for junk in ["", ".", "x.y", "1.zz", "99999999999.00"] {
            assert!(!secrets.check_pass(&room("pw"), junk, now), "{junk}");
        }
    }

    #[test]
    fn cookie_header_and_set_cookie() {
        let values: Vec<_> =
            pass_cookies("a=1; camus_pass=x.1 ; camus_passx=2;camus_pass=\"y.2\"; b").collect();
        assert_eq!(values, ["x.1", "y.2"]);
        assert_eq!(
            set_cookie("p", "/chat/r", true),
            "camus_pass=p; Path=/chat/r; Max-Age=43200; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(!set_cookie("p", "/room/r", false).contains("Secure"));
    }
}
