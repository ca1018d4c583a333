//! Recent successful password checks of the admin API. A client sends its Basic credentials
//! with every request (galenectl does for each of a command's requests), and checking a bcrypt
//! password of cost 12 (the administrator's, as `galenectl initial-setup` and the first-run
//! setup make it) takes half a second here and seconds on a Raspberry Pi. So a success is
//! remembered for [`REMEMBERED_FOR`]: the same stored password and the same given password
//! then pass without hashing. Failures are never remembered (every guess pays the full
//! check and the failed-login delay). An entry is an HMAC, under a key made when the server
//! starts, of the stored password and the given one: no password is kept, and a changed
//! password makes a different entry.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use crate::config::Password;

/// How long a successful check is remembered.
pub const REMEMBERED_FOR: Duration = Duration::from_secs(600);

/// How many successful checks are remembered.
pub const REMEMBERED: usize = 32;

/// Recent successful checks (see the module docs).
pub struct PasswordChecks {
    /// `None` if no random key could be made: nothing is remembered then.
    key: Option<ring::hmac::Key>,
    recent: VecDeque<(Vec<u8>, SystemTime)>,
}

impl Default for PasswordChecks {
    fn default() -> PasswordChecks {
        PasswordChecks::new()
    }
}

impl PasswordChecks {
    /// No checks remembered, a fresh key.
    pub fn new() -> PasswordChecks {
        let key =
            ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
                .ok();
        PasswordChecks {
            key,
            recent: VecDeque::new(),
        }
    }

    /// Whether `given` matches `stored`, at `now`.
    pub fn check(&mut self, stored: &Password, given: &str, now: SystemTime) -> bool {
        let slow = matches!(stored, Password::Bcrypt(_) | Password::Pbkdf2 { .. });
        let Some(key) = self.key.as_ref().filter(|_| slow) else {
            return stored.matches(given);
        };
        let mut context = ring::hmac::Context::with_key(key);
        context.update(stored.to_json().to_string().as_bytes());
        context.update(b"\0");
        context.update(given.as_bytes());
        let tag = context.sign().as_ref().to_vec();
        self.recent.retain(|(_, at)| {
            now.duration_since(*at)
                .is_ok_and(|age| age < REMEMBERED_FOR)
        });
        if self.recent.iter().any(|(known, _)| *known == tag) {
            return true;
        }
        if !stored.matches(given) {
            return false;
        }
        if self.recent.len() >= REMEMBERED {
            self.recent.pop_front();
        }
        self.recent.push_back((tag, now));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successes_are_remembered_for_a_while_failures_never() {
        let stored = Password::bcrypt("right", 4).unwrap();
        let mut checks = PasswordChecks::new();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(!checks.check(&stored, "wrong", t0));
        assert!(checks.recent.is_empty());
        assert!(checks.check(&stored, "right", t0));
        assert_eq!(checks.recent.len(), 1);
        assert!(checks.check(&stored, "right", t0 + Duration::from_secs(60)));
        assert_eq!(checks.recent.len(), 1);
        // Another stored password (changed) is another entry.
        let changed = Password::bcrypt("right", 4).unwrap();
        assert!(checks.check(&changed, "right", t0));
        assert_eq!(checks.recent.len(), 2);
        // Old entries go.
        assert!(checks.check(
            &stored,
            "right",
            t0 + REMEMBERED_FOR + Duration::from_secs(1)
        ));
        assert_eq!(checks.recent.len(), 1);
        // Plain passwords are checked directly.
        assert!(checks.check(&Password::Plain("p".into()), "p", t0));
        assert_eq!(checks.recent.len(), 1);
        // At most REMEMBERED entries.
        for i in 0..REMEMBERED + 3 {
            let stored = Password::Pbkdf2 {
                key: {
                    let mut key = [0u8; 32];
                    ring::pbkdf2::derive(
                        ring::pbkdf2::PBKDF2_HMAC_SHA256,
                        std::num::NonZeroU32::new(1).unwrap_or(std::num::NonZeroU32::MIN),
                        &[i as u8],
                        b"pw",
                        &mut key,
                    );
                    key.to_vec()
                },
                salt: vec![i as u8],
                iterations: 1,
            };
            assert!(checks.check(&stored, "pw", t0));
        }
        assert_eq!(checks.recent.len(), REMEMBERED);
    }
}
