//! Bearer tokens: HS256 JWTs naming a participant and its roles.
//!
//! A token is accepted when its signature verifies, it has not expired (`exp`, no leeway), it is
//! already valid (`nbf` and `iat` no further in the future than `[auth] clock_leeway_secs`), and
//! its subject is a valid participant id ([`valid_participant`]). Refusals say which of these
//! failed in a few words; the library's own message goes to the debug log only.
//!
//! The secret comes from the settings (`[auth] jwt_secret`, or `THREDS_JWT_SECRET` /
//! `THREDS_AUTH_JWT_SECRET` over it); `threds dev` alone may fall back to a well-known development
//! secret, and says so loudly.

use jsonwebtoken::{
    decode, encode, errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
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
    /// No secret is configured (production processes).
    #[error("no JWT secret: set THREDS_JWT_SECRET or [auth] jwt_secret")]
    NoSecret,
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
    /// Leeway for `nbf` and `iat`, seconds.
    leeway_secs: u64,
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
                leeway_secs: config.auth.clock_leeway_secs,
            });
        }
        if allow_dev_default {
            return Ok(Secret {
                bytes: DEV_JWT_SECRET.as_bytes().to_vec(),
                source: SecretSource::DevelopmentDefault,
                leeway_secs: config.auth.clock_leeway_secs,
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
            leeway_secs: 30,
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

    /// Verifies a token (see the module's rules) at the current time.
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.verify_at(token, now)
    }

    /// Verifies a token at `now` (epoch seconds) for the time claims.
    pub fn verify_at(&self, token: &str, now: u64) -> Result<Claims, Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Time claims are checked below, against `now`, each with its own leeway.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = decode::<Claims>(token, &DecodingKey::from_secret(&self.bytes), &validation)
            .map(|data| data.claims)
            .map_err(|e| {
                tracing::debug!(error = %e, "token refused");
                Error::Invalid(match e.kind() {
                    ErrorKind::InvalidSignature => "bad signature",
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        "algorithm not accepted (HS256 expected)"
                    }
                    ErrorKind::Json(_) | ErrorKind::MissingRequiredClaim(_) => {
                        "claims missing or malformed (sub, iat, exp)"
                    }
                    _ => "malformed",
                })
            })?;
        if claims.exp <= now {
            return Err(Error::Expired);
        }
        let latest = now.saturating_add(self.leeway_secs);
        if claims.iat > latest || claims.nbf.is_some_and(|nbf| nbf > latest) {
            return Err(Error::NotYetValid);
        }
        if !valid_participant(&claims.sub) {
            return Err(Error::BadSubject);
        }
        Ok(claims)
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
}
