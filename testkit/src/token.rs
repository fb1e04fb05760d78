//! Bearer tokens for tests and benchmarks: HS256 JWTs naming a participant and its roles, in the
//! format the server verifies (`docs/cli.md`, `threds token`), minted here without a process.

use crate::Error;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;

/// How long minted tokens are valid.
const TTL_SECS: u64 = 3600;

/// The shared secret of a test server and the tokens for it.
#[derive(Clone)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A secret (the value the server gets in `THREDS_JWT_SECRET`).
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A token for `participant` with `roles`, valid for an hour from now.
    pub fn mint(&self, participant: &str, roles: &[&str]) -> Result<String, Error> {
        let now = now_secs();
        let mut claims = json!({"sub": participant, "iat": now, "exp": now + TTL_SECS});
        if !roles.is_empty() {
            claims["roles"] = json!(roles);
        }
        self.sign(&claims)
    }

    /// A token with exactly `claims` (for tests of what the server refuses).
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String, Error> {
        Ok(encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(self.0.as_bytes()),
        )?)
    }
}

/// Now, epoch seconds.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
