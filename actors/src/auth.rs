//! Bearer tokens: JWTs naming a participant and its roles.
//!
//! Two kinds of token are verified ([`Verifier`]):
//!
//! - **HS256**, signed with the deployment's shared secret (`[auth] jwt_secret`, or
//!   `THREDS_JWT_SECRET` / `THREDS_AUTH_JWT_SECRET` over it): development, tests and
//!   `threds token`. `threds dev` alone may fall back to a well-known development secret, and
//!   says so loudly. Without a secret, HS256 tokens are refused.
//! - **RS256 and ES256**, signed by an OIDC identity provider whose JSON Web Key Set is at
//!   `[auth] jwks_url` ([`jwks`]): production. The header's `kid` names the key; the key's type
//!   must suit the header's `alg` (RSA for RS256, P-256 for ES256), and so must the key's own
//!   `alg` when the set gives one. When `[auth] issuer` is set, `iss` must equal it; when
//!   `[auth] audience` is set, `aud` (a string or a list) must contain it. A token naming a key
//!   the set lacks makes the set be fetched again (at most once every
//!   `[auth] jwks_min_refresh_secs`), then is refused if the key is still unknown.
//!
//! Any other algorithm is refused. Every token must also have an unexpired `exp` (no leeway),
//! `nbf` and `iat` no further in the future than `[auth] clock_leeway_secs`, and a subject that is
//! a valid participant id ([`valid_participant`]). Refusals say which of these failed in a few
//! words (they are WebSocket close reasons); the library's own message goes to the debug log only.
//!
//! Issuer and audience are checked on the provider's tokens only: an HS256 token can only come
//! from a holder of the deployment's own secret.

pub mod jwks;

use jsonwebtoken::jwk::KeyAlgorithm;
use jsonwebtoken::{
    decode, decode_header, encode, errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header,
    Validation,
};
use jwks::KeySet;
use serde::{Deserialize, Serialize};
use threds_runtime::config::{Config, DEV_JWT_SECRET};

/// What a token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The participant id.
    pub sub: String,
    /// Roles, e.g. `admin`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Issued at, epoch seconds.
    pub iat: u64,
    /// Expires at, epoch seconds.
    pub exp: u64,
    /// Not valid before, epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issuer (the provider's tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience: one or several (the provider's tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
}

/// A token's `aud`: one audience or a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// `"aud": "x"`.
    One(String),
    /// `"aud": ["x", "y"]`.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `audience` is (among) it.
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(one) => one == audience,
            Audience::Many(many) => many.iter().any(|a| a == audience),
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No token was presented.
    #[error("no bearer token (send an Authorization: Bearer header or ?token=)")]
    Missing,
    /// The token has expired.
    #[error("the token has expired")]
    Expired,
    /// The token is not valid yet (`nbf` or `iat` in the future, beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The token's subject is not a valid participant id.
    #[error("the token's subject is not a valid participant id")]
    BadSubject,
    /// The token is malformed, its algorithm is not the one expected, or its signature does not
    /// verify (the short reason says which).
    #[error("invalid token: {0}")]
    Invalid(&'static str),
    /// The token's issuer (`iss`) is not `[auth] issuer`.
    #[error("invalid token: wrong issuer")]
    WrongIssuer,
    /// The token's audience (`aud`) does not contain `[auth] audience`.
    #[error("invalid token: wrong audience")]
    WrongAudience,
    /// The token names a signing key (`kid`) that the provider's key set lacks, even after
    /// fetching it again.
    #[error("invalid token: unknown signing key")]
    UnknownKey,
    /// The provider's key set has not been fetched (yet): the provider is unreachable.
    #[error("signing keys unavailable")]
    KeysUnavailable,
    /// No secret is configured (production processes).
    #[error("no JWT secret: set THREDS_JWT_SECRET or [auth] jwt_secret")]
    NoSecret,
    /// Neither a secret nor a key set is configured (production processes).
    #[error("no way to verify tokens: set [auth] jwks_url (THREDS_AUTH_JWKS_URL) for the identity provider's keys, or [auth] jwt_secret (THREDS_JWT_SECRET)")]
    NoVerification,
    /// The key set's HTTP client could not be set up.
    #[error("the key set at [auth] jwks_url: {0}")]
    Setup(String),
}

/// Where the secret came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// The settings (`[auth] jwt_secret`, from the file or the environment).
    Configured,
    /// The development default (only `threds dev`).
    DevelopmentDefault,
}

/// The signing secret.
#[derive(Clone)]
pub struct Secret {
    bytes: Vec<u8>,
    /// Where it came from.
    pub source: SecretSource,
}

/// The longest participant id, in bytes.
pub const MAX_PARTICIPANT_ID: usize = 128;

/// Whether `id` may name a participant: 1 to [`MAX_PARTICIPANT_ID`] bytes of ASCII letters,
/// digits and `.`, `_`, `-`, `@`, `:`, `+`, not starting with `$` (`$all` and the like are
/// addresses) and not `SYSTEM` (the engine's own name).
pub fn valid_participant(id: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-@:+".contains(c);
    !id.is_empty()
        && id.len() <= MAX_PARTICIPANT_ID
        && id.chars().all(allowed)
        && id != threds_patterns::model::event::SYSTEM
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Secret {
    /// Resolves the secret: the settings' `[auth] jwt_secret` (the environment already laid over
    /// the file), else (only if `allow_dev_default`) the development default.
    pub fn resolve(config: &Config, allow_dev_default: bool) -> Result<Secret, Error> {
        if let Some(s) = config.auth.jwt_secret.clone().filter(|s| !s.is_empty()) {
            return Ok(Secret {
                bytes: s.into_bytes(),
                source: SecretSource::Configured,
            });
        }
        if allow_dev_default {
            return Ok(Secret {
                bytes: DEV_JWT_SECRET.as_bytes().to_vec(),
                source: SecretSource::DevelopmentDefault,
            });
        }
        Err(Error::NoSecret)
    }

    /// A secret from raw bytes (tests).
    #[cfg(test)]
    pub fn from_bytes(bytes: &[u8], source: SecretSource) -> Secret {
        Secret {
            bytes: bytes.to_vec(),
            source,
        }
    }

    /// Mints a token for `participant` with `roles`, valid `ttl_secs` from `now_secs`.
    pub fn mint(
        &self,
        participant: &str,
        roles: &[String],
        now_secs: u64,
        ttl_secs: u64,
    ) -> Result<String, Error> {
        let claims = Claims {
            sub: participant.to_string(),
            roles: roles.to_vec(),
            iat: now_secs,
            exp: now_secs + ttl_secs,
            nbf: None,
            iss: None,
            aud: None,
        };
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.bytes),
        )
        .map_err(|e| {
            tracing::debug!(error = %e, "could not mint a token");
            Error::Invalid("could not be signed")
        })
    }

    /// Verifies a token now, as a verifier with this secret alone and a 30 s leeway (tests).
    #[cfg(test)]
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        self.verify_at(token, now_secs())
    }

    /// Verifies a token at `now`, as [`Secret::verify`] (tests).
    #[cfg(test)]
    pub fn verify_at(&self, token: &str, now: u64) -> Result<Claims, Error> {
        Verifier {
            secret: Some(self.clone()),
            keys: None,
            issuer: None,
            audience: None,
            leeway_secs: 30,
        }
        .verify_at(token, now)
    }
}

/// The claims of `token` once its signature verifies with `key` under `alg`; a short reason
/// otherwise (`wrong_alg` when the header names another algorithm).
fn signed_claims(
    token: &str,
    key: &DecodingKey,
    alg: Algorithm,
    wrong_alg: &'static str,
) -> Result<Claims, Error> {
    let mut validation = Validation::new(alg);
    // Time claims are checked by `time_and_subject`, against `now`, each with its own leeway;
    // issuer and audience by the verifier.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = 0;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    decode::<Claims>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|e| {
            tracing::debug!(error = %e, "token refused");
            Error::Invalid(match e.kind() {
                ErrorKind::InvalidSignature => "bad signature",
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => wrong_alg,
                ErrorKind::Json(_) | ErrorKind::MissingRequiredClaim(_) => {
                    "claims missing or malformed (sub, iat, exp)"
                }
                _ => "malformed",
            })
        })
}

/// The rules every token follows, whoever signed it: `exp` past `now` (no leeway), `iat` and
/// `nbf` at most `leeway_secs` in the future, a valid participant id as subject.
fn time_and_subject(claims: Claims, now: u64, leeway_secs: u64) -> Result<Claims, Error> {
    if claims.exp <= now {
        return Err(Error::Expired);
    }
    let latest = now.saturating_add(leeway_secs);
    if claims.iat > latest || claims.nbf.is_some_and(|nbf| nbf > latest) {
        return Err(Error::NotYetValid);
    }
    if !valid_participant(&claims.sub) {
        return Err(Error::BadSubject);
    }
    Ok(claims)
}

/// Now, epoch seconds.
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Verifies tokens: HS256 against the secret, RS256 and ES256 against the provider's key set
/// (whichever is configured; see the module). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Verifier {
    secret: Option<Secret>,
    keys: Option<KeySet>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway_secs: u64,
}

impl Verifier {
    /// The verifier the settings describe: the secret as [`Secret::resolve`] finds it (the
    /// development default only if `allow_dev_default`) and the key set at `[auth] jwks_url`. At
    /// least one of them is needed. Fetches nothing: [`Verifier::key_set`]'s
    /// [`KeySet::run`] does.
    pub fn resolve(config: &Config, allow_dev_default: bool) -> Result<Verifier, Error> {
        let auth = &config.auth;
        let secret = match Secret::resolve(config, allow_dev_default) {
            Ok(secret) => Some(secret),
            Err(Error::NoSecret) => None,
            Err(e) => return Err(e),
        };
        let keys = match auth.jwks_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => Some(KeySet::new(url, auth).map_err(|e| Error::Setup(e.to_string()))?),
            None => None,
        };
        if secret.is_none() && keys.is_none() {
            return Err(Error::NoVerification);
        }
        Ok(Verifier {
            secret,
            keys,
            issuer: auth.issuer.clone(),
            audience: auth.audience.clone(),
            leeway_secs: auth.clock_leeway_secs,
        })
    }

    /// The shared secret, if HS256 tokens are accepted.
    pub fn secret(&self) -> Option<&Secret> {
        self.secret.as_ref()
    }

    /// The provider's key set, if RS256 and ES256 tokens are accepted.
    pub fn key_set(&self) -> Option<&KeySet> {
        self.keys.as_ref()
    }

    /// Verifies a token now. A token whose key is unknown (or that came before the first key
    /// set) waits for one fetch of the set, when one is due (see [`KeySet::refresh_after`]).
    pub async fn verify(&self, token: &str) -> Result<Claims, Error> {
        let seen = self.keys.as_ref().map(KeySet::fetches);
        match self.verify_at(token, now_secs()) {
            Err(e @ (Error::UnknownKey | Error::KeysUnavailable)) => {
                let (Some(keys), Some(seen)) = (&self.keys, seen) else {
                    return Err(e);
                };
                if keys.refresh_after(seen).await {
                    self.verify_at(token, now_secs())
                } else {
                    Err(e)
                }
            }
            other => other,
        }
    }

    /// Verifies a token at `now` (epoch seconds) against the key set as it is.
    pub fn verify_at(&self, token: &str, now: u64) -> Result<Claims, Error> {
        let header = decode_header(token).map_err(|e| {
            tracing::debug!(error = %e, "token refused: header");
            Error::Invalid("malformed")
        })?;
        match (header.alg, &self.secret, &self.keys) {
            (Algorithm::HS256, Some(secret), _) => {
                let claims = signed_claims(
                    token,
                    &DecodingKey::from_secret(&secret.bytes),
                    Algorithm::HS256,
                    self.accepted(),
                )?;
                time_and_subject(claims, now, self.leeway_secs)
            }
            (alg @ (Algorithm::RS256 | Algorithm::ES256), _, Some(keys)) => {
                let kid = header.kid.ok_or(Error::Invalid("no key id (kid)"))?;
                let set = keys.current().ok_or(Error::KeysUnavailable)?;
                let key = set.get(&kid).ok_or(Error::UnknownKey)?;
                if key.family != alg || key.alg.is_some_and(|a| a != KeyAlgorithm::from(alg)) {
                    tracing::debug!(%kid, ?alg, key_alg = ?key.alg, "token refused: algorithm does not suit the key");
                    return Err(Error::Invalid("algorithm does not match the key"));
                }
                let claims = signed_claims(token, &key.decoding, alg, self.accepted())?;
                let claims = time_and_subject(claims, now, self.leeway_secs)?;
                if let Some(issuer) = &self.issuer {
                    if claims.iss.as_ref() != Some(issuer) {
                        tracing::debug!(iss = ?claims.iss, "token refused: issuer");
                        return Err(Error::WrongIssuer);
                    }
                }
                if let Some(audience) = &self.audience {
                    if !claims.aud.as_ref().is_some_and(|a| a.contains(audience)) {
                        tracing::debug!(aud = ?claims.aud, "token refused: audience");
                        return Err(Error::WrongAudience);
                    }
                }
                Ok(claims)
            }
            (alg, _, _) => {
                tracing::debug!(?alg, "token refused: algorithm");
                Err(Error::Invalid(self.accepted()))
            }
        }
    }

    /// The refusal of an algorithm, naming those accepted.
    fn accepted(&self) -> &'static str {
        match (self.secret.is_some(), self.keys.is_some()) {
            (true, true) => "algorithm not accepted (HS256, RS256 or ES256 expected)",
            (false, true) => "algorithm not accepted (RS256 or ES256 expected)",
            _ => "algorithm not accepted (HS256 expected)",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn mint_and_verify_round_trip_with_roles() {
        let s = Secret::from_bytes(b"k", SecretSource::Configured);
        let t = s.mint("alice", &["admin".into()], now(), 60).unwrap();
        let c = s.verify(&t).unwrap();
        assert_eq!(c.sub, "alice");
        assert_eq!(c.roles, ["admin"]);
    }

    #[test]
    fn expired_wrong_secret_and_garbage_are_refused() {
        let s = Secret::from_bytes(b"k", SecretSource::Configured);
        let old = s.mint("alice", &[], now() - 100, 10).unwrap();
        assert_eq!(s.verify(&old), Err(Error::Expired));
        let other = Secret::from_bytes(b"other", SecretSource::Configured)
            .mint("alice", &[], now(), 60)
            .unwrap();
        assert_eq!(s.verify(&other), Err(Error::Invalid("bad signature")));
        assert_eq!(s.verify("not a token"), Err(Error::Invalid("malformed")));
    }

    fn signed(claims: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap()
    }

    #[test]
    fn time_claims_are_checked_with_the_leeway_and_exp_without() {
        let s = Secret::from_bytes(b"k", SecretSource::Configured);
        let now = 1_000_000;
        let token = |iat: u64, exp: u64, nbf: Option<u64>| {
            let mut c = serde_json::json!({"sub": "alice", "iat": iat, "exp": exp});
            if let Some(nbf) = nbf {
                c["nbf"] = nbf.into();
            }
            signed(c)
        };
        assert!(s.verify_at(&token(now, now + 60, None), now).is_ok());
        assert!(
            s.verify_at(&token(now + 30, now + 60, Some(now + 30)), now)
                .is_ok(),
            "within the leeway"
        );
        assert_eq!(
            s.verify_at(&token(now + 31, now + 60, None), now),
            Err(Error::NotYetValid)
        );
        assert_eq!(
            s.verify_at(&token(now, now + 60, Some(now + 31)), now),
            Err(Error::NotYetValid)
        );
        assert_eq!(
            s.verify_at(&token(now - 60, now, None), now),
            Err(Error::Expired)
        );
        let no_exp = signed(serde_json::json!({"sub": "alice", "iat": now}));
        assert_eq!(
            s.verify_at(&no_exp, now),
            Err(Error::Invalid(
                "claims missing or malformed (sub, iat, exp)"
            ))
        );
    }

    #[test]
    fn subjects_must_be_valid_participant_ids() {
        for good in ["alice", "bob.smith@example.com", "svc:reports-1", "p+1_x"] {
            assert!(valid_participant(good), "{good}");
        }
        let long = "a".repeat(MAX_PARTICIPANT_ID + 1);
        for bad in [
            "",
            "../x",
            "a b",
            "nul\u{0}",
            "$all",
            "SYSTEM",
            "é",
            long.as_str(),
        ] {
            assert!(!valid_participant(bad), "{bad:?}");
        }
        let s = Secret::from_bytes(b"k", SecretSource::Configured);
        let now = 1_000_000;
        let t = signed(serde_json::json!({"sub": "$all", "iat": now, "exp": now + 60}));
        assert_eq!(s.verify_at(&t, now), Err(Error::BadSubject));
    }

    #[test]
    fn secret_resolution_order_and_dev_default_only_when_allowed() {
        let config = Config::default();
        assert_eq!(
            Secret::resolve(&config, false).unwrap_err(),
            Error::NoSecret
        );
        assert_eq!(
            Secret::resolve(&config, true).unwrap().source,
            SecretSource::DevelopmentDefault
        );
        let file = Config::parse("t.toml", "[auth]\njwt_secret = \"file\"\n").unwrap();
        let from_file = Secret::resolve(&file, false).unwrap();
        assert_eq!(from_file.source, SecretSource::Configured);
        assert_eq!(from_file.bytes, b"file");
        for name in ["THREDS_JWT_SECRET", "THREDS_AUTH_JWT_SECRET"] {
            let env = file
                .clone()
                .with_env(|k| (k == name).then(|| "env".to_string()))
                .unwrap();
            let over = Secret::resolve(&env, true).unwrap();
            assert_eq!(over.bytes, b"env", "{name} overrides the file");
            assert_eq!(over.source, SecretSource::Configured);
        }
    }

    mod provider_tokens {
        use super::super::*;
        use jsonwebtoken::jwk::JwkSet;
        use serde_json::{json, Value};
        use std::time::Duration;
        use threds_testkit::jwks::Provider;
        use threds_testkit::keys::{key_set, TestKey, EC_A, EC_B, RSA_A, RSA_B};

        const ISSUER: &str = "https://id.test/realm";
        const AUDIENCE: &str = "threds";

        fn now() -> u64 {
            now_secs()
        }

        /// A verifier with the key set `set` (no fetch due for an hour), the issuer and audience,
        /// and `secret` if given.
        fn verifier(set: Value, secret: Option<&[u8]>) -> Verifier {
            let set: JwkSet = serde_json::from_value(set).unwrap();
            let keys = jwks::Keys::from_set(&set).unwrap();
            Verifier {
                secret: secret.map(|b| Secret::from_bytes(b, SecretSource::Configured)),
                keys: Some(KeySet::preloaded(
                    "http://127.0.0.1:9/jwks",
                    keys,
                    Duration::from_secs(3600),
                )),
                issuer: Some(ISSUER.into()),
                audience: Some(AUDIENCE.into()),
                leeway_secs: 30,
            }
        }

        fn claims(sub: &str) -> Value {
            let now = now();
            json!({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60})
        }

        fn with(mut claims: Value, key: &str, value: Value) -> Value {
            claims[key] = value;
            claims
        }

        #[test]
        fn rs256_and_es256_tokens_of_the_key_set_are_accepted() {
            let v = verifier(key_set(&[RSA_A, EC_A]).unwrap(), None);
            for key in [RSA_A, EC_A] {
                let c = v.verify_at(&key.sign(&claims("alice")).unwrap(), now());
                assert_eq!(c.unwrap().sub, "alice", "{}", key.kid());
                let listed = with(claims("bob"), "aud", json!(["other", AUDIENCE]));
                let c = v.verify_at(&key.sign(&listed).unwrap(), now()).unwrap();
                assert_eq!(c.sub, "bob");
                let roles = with(claims("carol"), "roles", json!(["admin"]));
                let c = v.verify_at(&key.sign(&roles).unwrap(), now()).unwrap();
                assert_eq!(c.roles, ["admin"]);
            }
        }

        #[test]
        fn wrong_issuer_or_audience_expired_and_bad_subjects_are_refused() {
            let v = verifier(key_set(&[RSA_A, EC_A]).unwrap(), None);
            let now = now();
            for key in [RSA_A, EC_A] {
                let refused = |claims: Value| v.verify_at(&key.sign(&claims).unwrap(), now);
                let base = claims("alice");
                let mut no_iss = base.clone();
                no_iss.as_object_mut().unwrap().remove("iss");
                let mut no_aud = base.clone();
                no_aud.as_object_mut().unwrap().remove("aud");
                for (claims, want) in [
                    (
                        with(base.clone(), "iss", json!("https://evil.test/")),
                        Error::WrongIssuer,
                    ),
                    (no_iss, Error::WrongIssuer),
                    (
                        with(base.clone(), "aud", json!("other")),
                        Error::WrongAudience,
                    ),
                    (
                        with(base.clone(), "aud", json!(["a", "b"])),
                        Error::WrongAudience,
                    ),
                    (no_aud, Error::WrongAudience),
                    (with(base.clone(), "exp", json!(now - 1)), Error::Expired),
                    (
                        with(base.clone(), "nbf", json!(now + 31)),
                        Error::NotYetValid,
                    ),
                    (
                        with(base.clone(), "sub", json!("SYSTEM")),
                        Error::BadSubject,
                    ),
                ] {
                    assert_eq!(
                        refused(claims.clone()),
                        Err(want),
                        "{}: {claims}",
                        key.kid()
                    );
                }
            }
            // Signed by a key of the same kid that the set does not hold: the signature fails.
            let impostor = TestKey::sign_with(
                &RSA_B,
                &{
                    let mut h = jsonwebtoken::Header::new(Algorithm::RS256);
                    h.kid = Some("rsa-a".into());
                    h
                },
                &claims("alice"),
            )
            .unwrap();
            assert_eq!(
                v.verify_at(&impostor, now),
                Err(Error::Invalid("bad signature"))
            );
        }

        #[test]
        fn unknown_kid_missing_kid_and_algorithm_mismatches_are_refused() {
            let mut set = key_set(&[RSA_A, EC_A]).unwrap();
            // A second RSA key whose `alg` says RS512: RS256 tokens naming it are refused.
            let mut rs512 = RSA_B.jwk_json().unwrap();
            rs512["alg"] = json!("RS512");
            set["keys"].as_array_mut().unwrap().push(rs512);
            let v = verifier(set, None);
            let now = now();
            let header = |alg: Algorithm, kid: Option<&str>| {
                let mut h = jsonwebtoken::Header::new(alg);
                h.kid = kid.map(str::to_owned);
                h
            };
            assert_eq!(
                v.verify_at(&EC_B.sign(&claims("alice")).unwrap(), now),
                Err(Error::UnknownKey)
            );
            let no_kid = RSA_A
                .sign_with(&header(Algorithm::RS256, None), &claims("alice"))
                .unwrap();
            assert_eq!(
                v.verify_at(&no_kid, now),
                Err(Error::Invalid("no key id (kid)"))
            );
            // ES256 header naming an RSA key, RS256 naming a P-256 key, RS256 naming an RS512 key.
            for (token, kid) in [
                (
                    EC_A.sign_with(&header(Algorithm::ES256, Some("rsa-a")), &claims("a")),
                    "rsa-a",
                ),
                (
                    RSA_A.sign_with(&header(Algorithm::RS256, Some("ec-a")), &claims("a")),
                    "ec-a",
                ),
                (
                    RSA_B.sign_with(&header(Algorithm::RS256, Some("rsa-b")), &claims("a")),
                    "rsa-b",
                ),
            ] {
                assert_eq!(
                    v.verify_at(&token.unwrap(), now),
                    Err(Error::Invalid("algorithm does not match the key")),
                    "{kid}"
                );
            }
        }

        #[test]
        fn hs256_is_refused_without_a_secret_and_accepted_with_one() {
            let hs = Secret::from_bytes(b"k", SecretSource::Configured)
                .mint("alice", &[], now(), 60)
                .unwrap();
            let keys_only = verifier(key_set(&[RSA_A]).unwrap(), None);
            assert_eq!(
                keys_only.verify_at(&hs, now()),
                Err(Error::Invalid(
                    "algorithm not accepted (RS256 or ES256 expected)"
                ))
            );
            let both = verifier(key_set(&[RSA_A]).unwrap(), Some(b"k"));
            assert_eq!(both.verify_at(&hs, now()).unwrap().sub, "alice");
            assert!(both
                .verify_at(&RSA_A.sign(&claims("bob")).unwrap(), now())
                .is_ok());
            // Other algorithms are refused whatever is configured.
            let hs512 = encode(
                &Header::new(Algorithm::HS512),
                &claims("alice"),
                &EncodingKey::from_secret(b"k"),
            )
            .unwrap();
            assert_eq!(
                both.verify_at(&hs512, now()),
                Err(Error::Invalid(
                    "algorithm not accepted (HS256, RS256 or ES256 expected)"
                ))
            );
            // Without a key set, RS256 is refused as an algorithm.
            let secret_only = Secret::from_bytes(b"k", SecretSource::Configured);
            assert_eq!(
                secret_only.verify(&RSA_A.sign(&claims("bob")).unwrap()),
                Err(Error::Invalid("algorithm not accepted (HS256 expected)"))
            );
        }

        #[tokio::test]
        async fn an_unknown_kid_fetches_the_set_once_then_waits_for_the_minimum_interval() {
            let provider = Provider::start(&[RSA_A]).unwrap();
            let config = Config::parse(
                "t.toml",
                &format!(
                    "[auth]\njwks_url = \"{}\"\njwks_min_refresh_secs = 3600\n",
                    provider.url()
                ),
            )
            .unwrap();
            let v = Verifier::resolve(&config, false).unwrap();
            assert!(v.secret().is_none());
            let a = RSA_A.mint("alice", ISSUER, AUDIENCE).unwrap();
            // Before any fetch: the first token fetches the set.
            assert_eq!(v.verify(&a).await.unwrap().sub, "alice");
            assert_eq!(provider.requests(), 1);
            // A token of a key published later: the next fetch is not due, so it is refused
            // without asking the provider.
            provider.publish(&[RSA_A, RSA_B]).unwrap();
            let b = RSA_B.mint("bob", ISSUER, AUDIENCE).unwrap();
            for _ in 0..20 {
                assert_eq!(v.verify(&b).await, Err(Error::UnknownKey));
            }
            assert_eq!(provider.requests(), 1);
        }

        #[test]
        fn a_production_process_needs_a_secret_or_a_key_set() {
            let none = Config::default();
            assert_eq!(
                Verifier::resolve(&none, false).unwrap_err(),
                Error::NoVerification
            );
            let keys =
                Config::parse("t.toml", "[auth]\njwks_url = \"http://127.0.0.1:9/k\"\n").unwrap();
            let v = Verifier::resolve(&keys, false).unwrap();
            assert!(v.secret().is_none() && v.key_set().is_some());
            let dev = Verifier::resolve(&keys, true).unwrap();
            assert_eq!(
                dev.secret().map(|s| s.source),
                Some(SecretSource::DevelopmentDefault)
            );
        }
    }
}
