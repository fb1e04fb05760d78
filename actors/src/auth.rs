//! Bearer tokens: HS256 JWTs naming a participant and its roles.
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
    /// The token is malformed or its signature does not verify.
    #[error("invalid token: {0}")]
    Invalid(String),
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
        };
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.bytes),
        )
        .map_err(|e| Error::Invalid(e.to_string()))
    }

    /// Verifies a token (signature, algorithm, expiry with no leeway).
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_aud = false;
        decode::<Claims>(token, &DecodingKey::from_secret(&self.bytes), &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => Error::Expired,
                _ => Error::Invalid(e.to_string()),
            })
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
        assert!(matches!(s.verify(&other), Err(Error::Invalid(_))));
        assert!(matches!(s.verify("not a token"), Err(Error::Invalid(_))));
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
