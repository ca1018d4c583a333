//! Stored passwords: Galène's JSON forms (docs/configuration.md, "Passwords") and checking a given
//! password.
//!
//! Forms: a JSON string (plain text); `{"type":"plain","key":K}`;
//! `{"type":"pbkdf2","hash":"sha-256","key":HEX,"salt":HEX,"iterations":N}`;
//! `{"type":"bcrypt","key":"$2a$..."}`; `{"type":"wildcard"}`. Object keys match
//! case-insensitively and unknown keys are ignored, as in Galène. An object without `type`
//! is a password that never matches (`None`). Everything that Galène would only notice when a
//! user logs in (missing key, unknown type or hash, bad hex) is rejected here, at parse time.

use std::num::NonZeroU32;

use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::fields::{Fields, Unknown, invalid};
use super::{ConfigError, Password};

impl Password {
    /// Parses the JSON form. `Ok(None)` for an object without a type (cannot log in).
    pub fn from_json(value: &Value) -> Result<Option<Password>, ConfigError> {
        if let Value::String(key) = value {
            return Ok(Some(Password::Plain(key.clone())));
        }
        let mut fields = Fields::new(
            value.clone(),
            &["type", "hash", "key", "salt", "iterations"],
            Unknown::Ignore,
            "password",
        )?;
        let kind = fields.string("type")?.unwrap_or_default();
        let key = fields.string("key")?;
        let missing_key = || invalid("password: missing key");
        match kind.as_str() {
            "" => Ok(None),
            "plain" => Ok(Some(Password::Plain(key.ok_or_else(missing_key)?))),
            "wildcard" => Ok(Some(Password::Wildcard)),
            "bcrypt" => Ok(Some(Password::Bcrypt(key.ok_or_else(missing_key)?))),
            "pbkdf2" => {
                let key = decode_hex(&key.ok_or_else(missing_key)?)
                    .ok_or_else(|| invalid("password: key is not hexadecimal"))?;
                if key.is_empty() {
                    return Err(missing_key());
                }
                let salt = decode_hex(&fields.string("salt")?.unwrap_or_default())
                    .ok_or_else(|| invalid("password: salt is not hexadecimal"))?;
                match fields.string("hash")?.as_deref() {
                    Some("sha-256") => {}
                    _ => return Err(invalid("password: unknown hash type")),
                }
                let iterations = u32::try_from(fields.integer("iterations")?)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| invalid("password: bad iteration count"))?;
                Ok(Some(Password::Pbkdf2 {
                    key,
                    salt,
                    iterations,
                }))
            }
            other => Err(invalid(format!(
                "password: unknown password type {other:?}"
            ))),
        }
    }

    /// Hashes `password` with bcrypt at `cost`, in the `$2a$` form Go's bcrypt writes (the
    /// admin API's `POST .password` and the first-run setup). Slow by design.
    pub fn bcrypt(password: &str, cost: u32) -> Result<Password, ConfigError> {
        let parts = bcrypt::hash_with_result(password, cost)
            .map_err(|e| ConfigError::Invalid(format!("bcrypt: {e}")))?;
        Ok(Password::Bcrypt(
            parts.format_for_version(bcrypt::Version::TwoA),
        ))
    }

    /// The JSON form (plain passwords as a bare string).
    pub fn to_json(&self) -> Value {
        match self {
            Password::Plain(key) => Value::String(key.clone()),
            Password::Pbkdf2 {
                key,
                salt,
                iterations,
            } => json!({
                "type": "pbkdf2",
                "hash": "sha-256",
                "key": encode_hex(key),
                "salt": encode_hex(salt),
                "iterations": iterations,
            }),
            Password::Bcrypt(key) => json!({"type": "bcrypt", "key": key}),
            Password::Wildcard => json!({"type": "wildcard"}),
        }
    }

    /// Whether `given` matches. Plain and PBKDF2 keys are compared in constant time; bcrypt
    /// runs the full hash (slow by design, about 20 ms at cost 8). A malformed bcrypt hash
    /// never matches.
    pub fn matches(&self, given: &str) -> bool {
        match self {
            Password::Plain(key) => plain_matches(key, given),
            Password::Wildcard => true,
            Password::Pbkdf2 {
                key,
                salt,
                iterations,
            } => {
                let Some(iterations) = NonZeroU32::new(*iterations) else {
                    return false;
                };
                ring::pbkdf2::verify(
                    ring::pbkdf2::PBKDF2_HMAC_SHA256,
                    iterations,
                    salt,
                    given.as_bytes(),
                    key,
                )
                .is_ok()
            }
            Password::Bcrypt(hash) => match bcrypt::verify(given, hash) {
                Ok(matched) => matched,
                Err(err) => {
                    log::warn!("Cannot check bcrypt password: {err}");
                    false
                }
            },
        }
    }
}

/// Decodes hexadecimal (either case); `None` on odd length or a non-hex digit.
pub(crate) fn decode_hex(text: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some(digit(*hi)? << 4 | digit(*lo)?),
            _ => None,
        })
        .collect()
}

/// Encodes bytes as lower-case hexadecimal.
pub(crate) fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Both indices are nibbles, below 16.
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Compares a plain-text password in time independent of where the texts differ and of
/// their lengths: a byte-wise compare of unequal lengths returns early, which tells an
/// attacker the stored password's length. Both sides are hashed to 32 bytes first, and the
/// digests compared in constant time (SHA-256 is collision-resistant, so equal digests mean
/// equal passwords).
fn plain_matches(key: &str, given: &str) -> bool {
    let key = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let given = ring::digest::digest(&ring::digest::SHA256, given.as_bytes());
    bool::from(key.as_ref().ct_eq(given.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: Value) -> Password {
        Password::from_json(&value).unwrap().unwrap()
    }

    fn pbkdf2_json(password: &str, salt: &[u8], iterations: u32) -> Value {
        let mut key = [0u8; 32];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            NonZeroU32::new(iterations).unwrap(),
            salt,
            password.as_bytes(),
            &mut key,
        );
        json!({"type": "pbkdf2", "hash": "sha-256", "key": encode_hex(&key),
               "salt": encode_hex(salt), "iterations": iterations})
    }

    #[test]
    fn plain_forms() {
        let bare = parse(json!("sybil"));
        assert_eq!(bare, Password::Plain("sybil".into()));
        assert!(bare.matches("sybil"));
        assert!(!bare.matches("Sybil"));
        assert!(!bare.matches("sybil2"));
        assert!(!bare.matches(""));
        assert!(!bare.matches("syb"), "a prefix is not a match");
        assert!(!bare.matches(&"sybil".repeat(1000)));
        let object = parse(json!({"type": "plain", "key": "pw"}));
        assert!(object.matches("pw"));
        assert!(!object.matches("pw "));
        assert_eq!(object.to_json(), json!("pw"));
        let empty = parse(json!(""));
        assert!(empty.matches(""));
        assert!(!empty.matches("x"));
    }

    #[test]
    fn wildcard_matches_anything() {
        let w = parse(json!({"type": "wildcard"}));
        assert!(w.matches(""));
        assert!(w.matches("anything"));
        assert_eq!(w.to_json(), json!({"type": "wildcard"}));
    }

    #[test]
    fn pbkdf2() {
        let value = pbkdf2_json("secret", b"\x01\x02\x03\x04\x05\x06\x07\x08", 4096);
        let p = parse(value.clone());
        assert!(p.matches("secret"));
        assert!(!p.matches("Secret"));
        assert!(!p.matches(""));
        assert_eq!(p.to_json(), value);
        // Upper-case hex and case-insensitive keys are accepted.
        let mut upper = value.clone();
        upper["key"] = json!(value["key"].as_str().unwrap().to_uppercase());
        let upper = json!({"Type": "pbkdf2", "HASH": "sha-256", "key": upper["key"],
                           "salt": value["salt"], "iterations": 4096});
        assert!(parse(upper).matches("secret"));
    }

    #[test]
    fn bcrypt() {
        let hash = bcrypt::hash("sybil", 4).unwrap();
        let p = parse(json!({"type": "bcrypt", "key": hash}));
        assert!(p.matches("sybil"));
        assert!(!p.matches("vimes"));
        assert!(!parse(json!({"type": "bcrypt", "key": "not a hash"})).matches("x"));
    }

    #[test]
    fn no_type_never_matches() {
        assert_eq!(Password::from_json(&json!({})).unwrap(), None);
        assert_eq!(
            Password::from_json(&json!({"key": "x", "comment": 1})).unwrap(),
            None
        );
    }

    #[test]
    fn errors() {
        for bad in [
            json!({"type": "plain"}),
            json!({"type": "bcrypt"}),
            json!({"type": "pbkdf2", "hash": "sha-256", "salt": "00", "iterations": 1}),
            json!({"type": "pbkdf2", "hash": "sha-1", "key": "00", "salt": "00", "iterations": 1}),
            json!({"type": "pbkdf2", "hash": "sha-256", "key": "0g", "salt": "00", "iterations": 1}),
            json!({"type": "pbkdf2", "hash": "sha-256", "key": "00", "salt": "0", "iterations": 1}),
            json!({"type": "pbkdf2", "hash": "sha-256", "key": "00", "salt": "00", "iterations": 0}),
            json!({"type": "md5", "key": "x"}),
            json!({"type": 3}),
            json!(42),
            json!(["x"]),
        ] {
            assert!(
                Password::from_json(&bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn hex() {
        assert_eq!(decode_hex("00fFa1").unwrap(), [0, 255, 161]);
        assert_eq!(decode_hex("").unwrap(), Vec::<u8>::new());
        assert!(decode_hex("abc").is_none());
        assert!(decode_hex("zz").is_none());
        assert_eq!(encode_hex(&[0, 255, 161]), "00ffa1");
    }
}
