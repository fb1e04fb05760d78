//! Test-only signing keys (`testkit/keys/`, see its README: never use them for anything else) and
//! the tokens an identity provider would sign with them: RS256 with RSA keys, ES256 with P-256
//! keys, each token naming its key in the header's `kid`.

use crate::Error;
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// A test key: its id, algorithm and private key (PEM).
#[derive(Debug, Clone, Copy)]
pub struct TestKey {
    kid: &'static str,
    alg: Algorithm,
    pem: &'static str,
}

/// RSA key A (RS256, kid `rsa-a`).
pub const RSA_A: TestKey = TestKey {
    kid: "rsa-a",
    alg: Algorithm::RS256,
    pem: include_str!("../keys/TEST-ONLY-rsa-a.pem"),
};

/// RSA key B (RS256, kid `rsa-b`).
pub const RSA_B: TestKey = TestKey {
    kid: "rsa-b",
    alg: Algorithm::RS256,
    pem: include_str!("../keys/TEST-ONLY-rsa-b.pem"),
};

/// P-256 key A (ES256, kid `ec-a`).
pub const EC_A: TestKey = TestKey {
    kid: "ec-a",
    alg: Algorithm::ES256,
    pem: include_str!("../keys/TEST-ONLY-ec-a.pem"),
};

/// P-256 key B (ES256, kid `ec-b`).
pub const EC_B: TestKey = TestKey {
    kid: "ec-b",
    alg: Algorithm::ES256,
    pem: include_str!("../keys/TEST-ONLY-ec-b.pem"),
};

impl TestKey {
    /// Its key id.
    pub fn kid(&self) -> &'static str {
        self.kid
    }

    /// Its algorithm.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The private key (RSA: PKCS#1, P-256: PKCS#8; DER inside the PEM armour).
    fn encoding(&self) -> Result<EncodingKey, Error> {
        let body: String = self
            .pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|_| Error::Key(self.kid))?;
        Ok(match self.alg {
            Algorithm::ES256 => EncodingKey::from_ec_der(&der),
            _ => EncodingKey::from_rsa_der(&der),
        })
    }

    /// The public key as a provider publishes it: a JWK with `kid`, `alg` and `use: sig`.
    pub fn jwk(&self) -> Result<Jwk, Error> {
        let mut jwk = Jwk::from_encoding_key(&self.encoding()?, self.alg)?;
        jwk.common.key_id = Some(self.kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(jwk)
    }

    /// [`TestKey::jwk`] as JSON.
    pub fn jwk_json(&self) -> Result<Value, Error> {
        Ok(serde_json::to_value(self.jwk()?)?)
    }

    /// `claims` signed with this key, the header naming its algorithm and key id.
    pub fn sign(&self, claims: &Value) -> Result<String, Error> {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.to_owned());
        self.sign_with(&header, claims)
    }

    /// `claims` signed with this key under `header` as given (for tests of what is refused).
    pub fn sign_with(&self, header: &Header, claims: &Value) -> Result<String, Error> {
        Ok(encode(header, claims, &self.encoding()?)?)
    }

    /// A token for `participant` from issuer `iss` for audience `aud`, valid for an hour.
    pub fn mint(&self, participant: &str, iss: &str, aud: &str) -> Result<String, Error> {
        let now = crate::token::now_secs();
        self.sign(&json!({
            "sub": participant, "iss": iss, "aud": aud, "iat": now, "exp": now + 3600,
        }))
    }
}

/// A JSON Web Key Set of the public halves of `keys`.
pub fn key_set(keys: &[TestKey]) -> Result<Value, Error> {
    let keys = keys
        .iter()
        .map(TestKey::jwk_json)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({ "keys": keys }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_key_gives_a_public_jwk_of_its_type() {
        for key in [RSA_A, RSA_B, EC_A, EC_B] {
            let jwk = key.jwk_json().unwrap();
            assert_eq!(jwk["kid"], key.kid());
            assert_eq!(jwk["use"], "sig");
            assert!(jwk.get("d").is_none(), "no private part: {jwk}");
            let kty = if key.alg() == Algorithm::ES256 {
                "EC"
            } else {
                "RSA"
            };
            assert_eq!(jwk["kty"], kty, "{jwk}");
            assert!(key.sign(&json!({"sub": "a"})).is_ok());
        }
        assert_ne!(RSA_A.jwk_json().unwrap(), RSA_B.jwk_json().unwrap());
        assert_ne!(EC_A.jwk_json().unwrap(), EC_B.jwk_json().unwrap());
    }
}
