//! JWT ("stateless") tokens verified with a group's `authKeys` (as Galène does;
//! docs/configuration.md, "Tokens").
//!
//! A token is a compact JWS `header.claims.signature` (base64url without padding). A string
//! that does not have that shape, or whose header or claims are not JSON objects, is not a
//! JWT at all and is looked up as a stateful token instead; a well-formed JWT that fails
//! verification is rejected outright.
//!
//! Keys are JWKs that must carry `alg`: `oct` with HS256/HS384/HS512 and a `k` of exactly
//! 32/48/64 bytes; `EC` with ES256 on P-256 (`x`, `y`); `RSA` with RS256 (`n`, `e`). Keys are
//! filtered by the header's `alg` and, when present, `kid`; every remaining key is tried.
//! Claims: `exp` is required, `iat` must not be in the future, `nbf` is honoured, all with
//! 5 s of leeway; `aud` must name `/group/<group>/` (or an ancestor with
//! `include-subgroups`) on the canonical host when one is configured.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};

use super::Permissions;

/// Clock skew tolerated on `exp`, `iat` and `nbf`, in seconds.
pub const LEEWAY_SECS: f64 = 5.0;

/// Go's `base64.RawURLEncoding`: no padding, trailing bits tolerated.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// A verified JWT whose time claims were valid when it was parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Jwt {
    claims: Map<String, Value>,
}

/// A verification key parsed from a JWK.
enum VerificationKey {
    Hmac(ring::hmac::Key),
    EcdsaP256(Vec<u8>),
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

/// Parses and verifies `token` with `keys` at `now`.
///
/// `Ok(None)`: not a JWT (look it up as a stateful token). `Ok(Some(_))`: signature and time
/// claims valid. `Err(why)`: a JWT that must be rejected.
pub fn parse_jwt(token: &str, keys: &[Value], now: SystemTime) -> Result<Option<Jwt>, String> {
    let mut parts = token.split('.');
    let (Some(header64), Some(claims64), Some(signature64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(None);
    };
    let (Some(header), Some(claims), Ok(signature)) = (
        decode_object(header64),
        decode_object(claims64),
        BASE64URL.decode(signature64),
    ) else {
        return Ok(None);
    };

    let alg = match header.get("alg") {
        Some(Value::String(alg)) if !alg.is_empty() => alg.as_str(),
        _ => return Err("alg not found".into()),
    };
    let kid = match header.get("kid") {
        Some(Value::String(kid)) => kid.as_str(),
        _ => "",
    };
    let mut candidates = Vec::new();
    for key in keys {
        let Value::Object(key) = key else {
            return Err("key is not an object".into());
        };
        if key.get("alg").and_then(Value::as_str) != Some(alg) {
            continue;
        }
        if !kid.is_empty() && key.get("kid").and_then(Value::as_str) != Some(kid) {
            continue;
        }
        candidates.push(parse_key(key)?);
    }
    // The signed input is everything before the second '.', which `split` found, so the
    // index is in range and on a character boundary.
    let signed = &token[..header64.len() + 1 + claims64.len()];
    let verified = candidates
        .iter()
        .any(|key| verify(key, alg, signed.as_bytes(), &signature));
    if !verified {
        return Err("token signature is invalid".into());
    }

    check_times(&claims, now)?;
    Ok(Some(Jwt { claims }))
}

fn decode_object(part: &str) -> Option<Map<String, Value>> {
    let bytes = BASE64URL.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn key_bytes(key: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let Some(Value::String(text)) = key.get(name) else {
        return Err(format!("key {name} not found"));
    };
    BASE64URL
        .decode(text)
        .map_err(|err| format!("key {name}: {err}"))
}

/// Left-pads a big-endian coordinate to 32 bytes (JWK producers sometimes drop leading
/// zeros); `None` if it is longer.
fn coordinate(mut bytes: Vec<u8>) -> Option<Vec<u8>> {
    let missing = 32usize.checked_sub(bytes.len())?;
    bytes.splice(0..0, std::iter::repeat_n(0, missing));
    Some(bytes)
}

/// Checks that a JWK (from a `.keys` request) is one tokens can be verified with; the error
/// says why not.
pub fn check_key(key: &Value) -> Result<(), String> {
    let Value::Object(key) = key else {
        return Err("a key must be a JSON object".into());
    };
    parse_key(key).map(|_| ())
}

fn parse_key(key: &Map<String, Value>) -> Result<VerificationKey, String> {
    let kty = key
        .get("kty")
        .and_then(Value::as_str)
        .ok_or("kty not found")?;
    let alg = key
        .get("alg")
        .and_then(Value::as_str)
        .ok_or("alg not found")?;
    match kty {
        "oct" => {
            let (algorithm, length) = match alg {
                "HS256" => (ring::hmac::HMAC_SHA256, 32),
                "HS384" => (ring::hmac::HMAC_SHA384, 48),
                "HS512" => (ring::hmac::HMAC_SHA512, 64),
                _ => return Err("unknown alg".into()),
            };
            let k = key_bytes(key, "k")?;
            if k.len() != length {
                return Err("bad length for key".into());
            }
            Ok(VerificationKey::Hmac(ring::hmac::Key::new(algorithm, &k)))
        }
        "EC" => {
            if alg != "ES256" {
                return Err("unknown alg".into());
            }
            if key.get("crv").and_then(Value::as_str) != Some("P-256") {
                return Err("unknown crv".into());
            }
            let x = coordinate(key_bytes(key, "x")?).ok_or("bad x")?;
            let y = coordinate(key_bytes(key, "y")?).ok_or("bad y")?;
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Ok(VerificationKey::EcdsaP256(point))
        }
        "RSA" => {
            if alg != "RS256" {
                return Err("unknown alg".into());
            }
            let n = key_bytes(key, "n")?;
            let e = key_bytes(key, "e")?;
            if e.len() > 8 {
                return Err("unsupported e".into());
            }
            Ok(VerificationKey::Rsa { n, e })
        }
        _ => Err("unknown key type".into()),
    }
}

fn verify(key: &VerificationKey, alg: &str, message: &[u8], signature: &[u8]) -> bool {
    use ring::signature::{
        ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
        UnparsedPublicKey,
    };
    match (key, alg) {
        (VerificationKey::Hmac(k), "HS256" | "HS384" | "HS512") => {
            ring::hmac::verify(k, message, signature).is_ok()
        }
        (VerificationKey::EcdsaP256(point), "ES256") => {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(message, signature)
                .is_ok()
        }
        (VerificationKey::Rsa { n, e }, "RS256") => RsaPublicKeyComponents { n, e }
            .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
            .is_ok(),
        _ => false,
    }
}

/// A NumericDate claim, truncated to whole seconds as golang-jwt does.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, String> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(|secs| Some(secs.trunc()))
            .ok_or_else(|| format!("bad {name}")),
        Some(_) => Err(format!("bad {name}")),
    }
}

fn check_times(claims: &Map<String, Value>, now: SystemTime) -> Result<(), String> {
    let now = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    };
    let exp = numeric_date(claims, "exp")?.ok_or("token has no expiration")?;
    if now > exp + LEEWAY_SECS {
        return Err("token is expired".into());
    }
    if let Some(iat) = numeric_date(claims, "iat")?
        && now < iat - LEEWAY_SECS
    {
        return Err("token used before issued".into());
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && now < nbf - LEEWAY_SECS
    {
        return Err("token is not valid yet".into());
    }
    Ok(())
}

impl Jwt {
    /// Checks the token for `group` and returns (username, permissions). The username is
    /// `sub` (empty when absent); unknown permission names are skipped.
    pub fn check(
        &self,
        canonical_host: Option<&str>,
        group: &str,
    ) -> Result<(String, Permissions), String> {
        let subject = match self.claims.get("sub") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(sub)) => sub.clone(),
            Some(_) => return Err("bad sub".into()),
        };
        let audience: Vec<&str> = match self.claims.get("aud") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().ok_or("bad aud"))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("bad aud".into()),
        };
        let include_subgroups = self
            .claims
            .get("include-subgroups")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let host = canonical_host.filter(|h| !h.is_empty());
        let matched = audience.iter().any(|aud| {
            let Some((url_host, path)) = split_url(aud) else {
                return false;
            };
            if let Some(host) = host
                && !url_host.eq_ignore_ascii_case(host)
            {
                return false;
            }
            match_group(&path, group, include_subgroups)
        });
        if !matched {
            return Err("token for wrong group".into());
        }
        let permissions = match self.claims.get("permissions") {
            None | Some(Value::Null) => Permissions::new(),
            Some(value) => Permissions::from_json(value)
                .map_err(|_| "invalid 'permissions' field".to_owned())?,
        };
        Ok((subject, permissions))
    }
}

/// Whether an audience URL path admits `group`.
fn match_group(path: &str, group: &str, include_subgroups: bool) -> bool {
    let wanted = format!("/group/{group}/");
    if !include_subgroups {
        return path == wanted;
    }
    path.starts_with("/group/") && path.ends_with('/') && wanted.starts_with(path)
}

/// Splits a URL into (host with port, percent-decoded path), the way Go's `url.Parse` fills
/// `Host` and `Path`. `None` when it does not parse.
fn split_url(url: &str) -> Option<(String, String)> {
    let url = url.split_once('#').map_or(url, |(before, _)| before);
    let url = url.split_once('?').map_or(url, |(before, _)| before);
    let rest = match url.split_once(':') {
        Some((scheme, rest))
            if scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            if !rest.starts_with('/') {
                // Opaque URL ("mailto:x"): no host, no path.
                return Some((String::new(), String::new()));
            }
            rest
        }
        _ => url,
    };
    let (host, path) = match rest.strip_prefix("//") {
        Some(authority_and_path) => {
            let (authority, path) = match authority_and_path.find('/') {
                Some(i) => authority_and_path.split_at(i),
                None => (authority_and_path, ""),
            };
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            (host, path)
        }
        None => ("", rest),
    };
    Some((host.to_owned(), percent_decode(path)?))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Permission;
    use ring::rand::SystemRandom;
    use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
    use serde_json::json;
    use std::time::Duration;

    /// A 2048-bit RSA test key (PKCS#8, generated with `openssl genpkey` for these tests).
    const RSA_TEST_KEY_PEM: &str = include_str!("testdata/rsa-test-key.pem");

    pub(crate) const NOW: u64 = 1_800_000_000;

    pub(crate) fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }

    fn b64(bytes: &[u8]) -> String {
        BASE64URL.encode(bytes)
    }

    /// Builds `header.claims` for signing.
    fn signing_input(alg: &str, kid: Option<&str>, claims: &Value) -> String {
        let mut header = json!({"alg": alg, "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        )
    }

    /// An HS256 key (JWK) and a function signing claims with it.
    pub(crate) fn hs256_key(secret: &[u8; 32]) -> Value {
        json!({"kty": "oct", "alg": "HS256", "k": b64(secret)})
    }

    pub(crate) fn sign_hs(alg: &str, secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
        let algorithm = match alg {
            "HS256" => ring::hmac::HMAC_SHA256,
            "HS384" => ring::hmac::HMAC_SHA384,
            _ => ring::hmac::HMAC_SHA512,
        };
        let input = signing_input(alg, kid, claims);
        let tag = ring::hmac::sign(&ring::hmac::Key::new(algorithm, secret), input.as_bytes());
        format!("{input}.{}", b64(tag.as_ref()))
    }

    fn es256_pair() -> (EcdsaKeyPair, Value) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({"kty": "EC", "alg": "ES256", "crv": "P-256",
                         "x": b64(&point[1..33]), "y": b64(&point[33..65])});
        (pair, jwk)
    }

    fn sign_es256(pair: &EcdsaKeyPair, claims: &Value) -> String {
        let input = signing_input("ES256", None, claims);
        let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }

    fn rsa_pair() -> (RsaKeyPair, Value) {
        let body: String = RSA_TEST_KEY_PEM
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        let pair = RsaKeyPair::from_pkcs8(&der).unwrap();
        let public = pair.public();
        let components: signature::RsaPublicKeyComponents<Vec<u8>> = public.into();
        let jwk = json!({"kty": "RSA", "alg": "RS256",
                         "n": b64(&components.n), "e": b64(&components.e)});
        (pair, jwk)
    }

    fn sign_rs256(pair: &RsaKeyPair, claims: &Value) -> String {
        let input = signing_input("RS256", None, claims);
        let mut sig = vec![0; pair.public().modulus_len()];
        pair.sign(
            &signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
        format!("{input}.{}", b64(&sig))
    }

    pub(crate) fn claims(group: &str) -> Value {
        json!({"sub": "john", "aud": format!("https://galene.example.org:8443/group/{group}/"),
               "permissions": ["present"], "iat": NOW - 10, "exp": NOW + 3600})
    }

    fn accepts(token: &str, keys: &[Value], group: &str) -> bool {
        match parse_jwt(token, keys, now()) {
            Ok(Some(jwt)) => jwt.check(None, group).is_ok(),
            _ => false,
        }
    }

    #[test]
    fn hs256_accept_and_claims() {
        let secret = [7u8; 32];
        let keys = [hs256_key(&secret)];
        let token = sign_hs("HS256", &secret, None, &claims("test"));
        let jwt = parse_jwt(&token, &keys, now()).unwrap().unwrap();
        let (user, perms) = jwt.check(None, "test").unwrap();
        assert_eq!(user, "john");
        assert_eq!(perms.names(), ["present"]);
        assert!(jwt.check(Some("GALENE.example.org:8443"), "test").is_ok());
        assert!(jwt.check(Some("other.example.org"), "test").is_err());
        assert!(jwt.check(Some("galene.example.org"), "test").is_err());
        assert!(jwt.check(None, "test2").is_err());
        assert!(jwt.check(None, "test/sub").is_err());
    }

    #[test]
    fn hs384_and_hs512() {
        let s384 = [1u8; 48];
        let s512 = [2u8; 64];
        let keys = [
            json!({"kty": "oct", "alg": "HS384", "k": b64(&s384)}),
            json!({"kty": "oct", "alg": "HS512", "k": b64(&s512)}),
        ];
        assert!(accepts(
            &sign_hs("HS384", &s384, None, &claims("g")),
            &keys,
            "g"
        ));
        assert!(accepts(
            &sign_hs("HS512", &s512, None, &claims("g")),
            &keys,
            "g"
        ));
        assert!(!accepts(
            &sign_hs("HS512", &[3u8; 64], None, &claims("g")),
            &keys,
            "g"
        ));
    }

    #[test]
    fn wrong_key_and_tampering() {
        let keys = [hs256_key(&[7u8; 32])];
        let bad = sign_hs("HS256", &[8u8; 32], None, &claims("test"));
        assert!(parse_jwt(&bad, &keys, now()).is_err());
        let good = sign_hs("HS256", &[7u8; 32], None, &claims("test"));
        let (input, sig) = good.rsplit_once('.').unwrap();
        let forged_claims = b64(claims("other").to_string().as_bytes());
        let header = input.split('.').next().unwrap();
        let forged = format!("{header}.{forged_claims}.{sig}");
        assert!(parse_jwt(&forged, &keys, now()).is_err());
        // No keys at all: a JWT is still rejected, not treated as a stateful token.
        assert!(parse_jwt(&good, &[], now()).is_err());
    }

    #[test]
    fn kid_filtering() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        let mut key_a = hs256_key(&a);
        key_a["kid"] = json!("a");
        let mut key_b = hs256_key(&b);
        key_b["kid"] = json!("b");
        let keys = [key_a, key_b];
        assert!(accepts(
            &sign_hs("HS256", &b, Some("b"), &claims("g")),
            &keys,
            "g"
        ));
        assert!(accepts(
            &sign_hs("HS256", &b, None, &claims("g")),
            &keys,
            "g"
        ));
        assert!(!accepts(
            &sign_hs("HS256", &b, Some("a"), &claims("g")),
            &keys,
            "g"
        ));
    }

    #[test]
    fn bad_keys() {
        let token = sign_hs("HS256", &[7u8; 32], None, &claims("g"));
        for key in [
            json!({"kty": "oct", "alg": "HS256", "k": b64(&[7u8; 31])}),
            json!({"kty": "oct", "alg": "HS256"}),
            json!({"kty": "oct", "alg": "HS256", "k": "!!"}),
            json!({"alg": "HS256", "k": b64(&[7u8; 32])}),
            json!({"kty": "foo", "alg": "HS256"}),
        ] {
            assert!(
                parse_jwt(&token, std::slice::from_ref(&key), now()).is_err(),
                "{key}"
            );
        }
        // A key with another alg is filtered out, not an error, but nothing verifies.
        let es = json!({"kty": "EC", "alg": "ES256", "crv": "P-256", "x": "", "y": ""});
        assert!(parse_jwt(&token, &[es, hs256_key(&[7u8; 32])], now()).is_ok());
    }

    #[test]
    fn es256() {
        let (pair, jwk) = es256_pair();
        let keys = [jwk.clone()];
        assert!(accepts(&sign_es256(&pair, &claims("g")), &keys, "g"));
        let (other, _) = es256_pair();
        assert!(parse_jwt(&sign_es256(&other, &claims("g")), &keys, now()).is_err());
        let mut off_curve = jwk;
        off_curve["y"] = off_curve["x"].clone();
        assert!(parse_jwt(&sign_es256(&pair, &claims("g")), &[off_curve], now()).is_err());
        let p384 = json!({"kty": "EC", "alg": "ES256", "crv": "P-384", "x": "AA", "y": "AA"});
        assert!(parse_jwt(&sign_es256(&pair, &claims("g")), &[p384], now()).is_err());
    }

    #[test]
    fn rs256() {
        let (pair, jwk) = rsa_pair();
        let keys = [jwk.clone()];
        assert!(accepts(&sign_rs256(&pair, &claims("g")), &keys, "g"));
        let mut wrong = jwk;
        wrong["e"] = json!(b64(&[3]));
        assert!(parse_jwt(&sign_rs256(&pair, &claims("g")), &[wrong], now()).is_err());
        let big_e = json!({"kty": "RSA", "alg": "RS256", "n": "AQAB", "e": b64(&[1; 9])});
        assert!(parse_jwt(&sign_rs256(&pair, &claims("g")), &[big_e], now()).is_err());
    }

    #[test]
    fn time_claims() {
        let secret = [7u8; 32];
        let keys = [hs256_key(&secret)];
        let with = |patch: Value| {
            let mut c = claims("g");
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
            parse_jwt(&sign_hs("HS256", &secret, None, &c), &keys, now())
        };
        assert!(with(json!({"exp": NOW - 10})).is_err());
        assert!(with(json!({"exp": NOW - 4})).unwrap().is_some());
        assert!(with(json!({"exp": null})).is_err());
        assert!(with(json!({"exp": "tomorrow"})).is_err());
        assert!(with(json!({"iat": NOW + 60})).is_err());
        assert!(with(json!({"iat": NOW + 4})).unwrap().is_some());
        assert!(with(json!({"iat": null})).unwrap().is_some());
        assert!(with(json!({"nbf": NOW + 60})).is_err());
        assert!(with(json!({"nbf": NOW + 3})).unwrap().is_some());
        assert!(
            with(json!({"exp": (NOW + 100) as f64 + 0.5}))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn audience_and_subgroups() {
        let secret = [7u8; 32];
        let keys = [hs256_key(&secret)];
        let check = |aud: Value, include: bool, group: &str| {
            let mut c = claims("x");
            c["aud"] = aud;
            if include {
                c["include-subgroups"] = json!(true);
            }
            let jwt = parse_jwt(&sign_hs("HS256", &secret, None, &c), &keys, now())
                .unwrap()
                .unwrap();
            jwt.check(Some("a.org"), group).is_ok()
        };
        assert!(check(json!("https://a.org/group/g/"), false, "g"));
        assert!(check(
            json!(["https://b.org/group/g/", "https://a.org/group/g/"]),
            false,
            "g"
        ));
        assert!(!check(json!("https://a.org/group/g"), false, "g"));
        assert!(!check(json!("https://a.org/group/g/"), false, "g/h"));
        assert!(check(json!("https://a.org/group/g/"), true, "g/h"));
        assert!(check(json!("https://a.org/group/g/"), true, "g/h/i"));
        assert!(check(json!("https://a.org/group/g/"), true, "g"));
        assert!(!check(json!("https://a.org/group/g/"), true, "gh"));
        assert!(!check(json!("https://a.org/group/g/h/"), true, "g"));
        assert!(check(
            json!("https://a.org/group/caf%C3%A9/?token=1#x"),
            false,
            "café"
        ));
        assert!(check(json!("https://user@a.org/group/g/"), false, "g"));
        assert!(!check(json!([]), false, "g"));
        assert!(!check(json!("mailto:a.org"), false, "g"));
    }

    #[test]
    fn claim_types() {
        let secret = [7u8; 32];
        let keys = [hs256_key(&secret)];
        let check = |patch: Value| {
            let mut c = claims("g");
            for (k, v) in patch.as_object().unwrap() {
                c[k] = v.clone();
            }
            let jwt = parse_jwt(&sign_hs("HS256", &secret, None, &c), &keys, now())
                .unwrap()
                .unwrap();
            jwt.check(None, "g")
        };
        assert!(check(json!({"sub": 3})).is_err());
        assert!(check(json!({"aud": 3})).is_err());
        assert!(check(json!({"permissions": "op"})).is_err());
        let (user, perms) =
            check(json!({"sub": null, "permissions": ["op", "record", "x"]})).unwrap();
        assert_eq!(user, "");
        assert!(perms.has(Permission::Op) && perms.has(Permission::Record));
    }

    #[test]
    fn not_a_jwt() {
        let keys = [hs256_key(&[7u8; 32])];
        for text in [
            "Zx9abcdefgh",
            "a.b",
            "a.b.c.d",
            "!!.e30.",
            "e30.e30.!!",
            "WzFd.e30.", // header is an array
            "e30.bm90IGpzb24.",
        ] {
            assert_eq!(parse_jwt(text, &keys, now()), Ok(None), "{text}");
        }
        // Well-formed but without alg: rejected.
        assert!(parse_jwt("e30.e30.", &keys, now()).is_err());
    }

    #[test]
    fn url_splitting() {
        assert_eq!(
            split_url("https://a.org:8443/group/x/?q#f"),
            Some(("a.org:8443".into(), "/group/x/".into()))
        );
        assert_eq!(
            split_url("/group/x/"),
            Some((String::new(), "/group/x/".into()))
        );
        assert_eq!(split_url("//h/p"), Some(("h".into(), "/p".into())));
        assert_eq!(
            split_url("https://a.org"),
            Some(("a.org".into(), String::new()))
        );
        assert_eq!(split_url("https://a.org/%zz"), None);
    }
}
