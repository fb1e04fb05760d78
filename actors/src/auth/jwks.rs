//! The identity provider's signing keys: a JSON Web Key Set fetched from `[auth] jwks_url`, kept
//! in memory for verification, fetched again every `[auth] jwks_refresh_secs` and, when a token
//! names a key id the set lacks, at most once every `[auth] jwks_min_refresh_secs`.
//!
//! Verification reads the current set without waiting ([`KeySet::current`]); only a token with an
//! unknown key id waits, for one fetch ([`KeySet::refresh_after`]). Fetches are serialized: a
//! caller that finds a fetch under way waits for it rather than starting another. A failed fetch
//! (provider down, an error status, a body that is not a key set) keeps the last good set and logs
//! a warning naming the URL. Until the first fetch succeeds there is no set: tokens that need one
//! are refused ("signing keys unavailable") and the fetch is retried every
//! `jwks_min_refresh_secs`.

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use threds_runtime::config::AuthConfig;
use tokio_util::sync::CancellationToken;

/// How long one fetch of the set may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest key set accepted, bytes.
const MAX_BODY: usize = 1024 * 1024;

/// Why a fetch failed (logged, never shown to clients).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP client could not be set up.
    #[error("HTTP client: {0}")]
    Client(String),
    /// The request failed (connection, TLS, timeout).
    #[error("request failed: {0}")]
    Request(String),
    /// The provider answered with an error status.
    #[error("status {0}")]
    Status(u16),
    /// The body is larger than [`MAX_BODY`].
    #[error("the key set is larger than {MAX_BODY} bytes")]
    TooLarge,
    /// The body is not a JSON Web Key Set.
    #[error("not a JSON Web Key Set: {0}")]
    NotKeySet(String),
    /// The set holds no key this server can use (RSA or P-256 signing keys with a key id).
    #[error("no usable signing key (RSA or P-256, with a kid) among {0}")]
    NoUsableKey(usize),
}

/// One usable signing key.
pub struct Key {
    /// The key itself.
    pub decoding: DecodingKey,
    /// The algorithm its type allows: RS256 (RSA) or ES256 (P-256).
    pub family: Algorithm,
    /// The algorithm the set names for it (`alg`), if any.
    pub alg: Option<KeyAlgorithm>,
}

/// A fetched set: usable keys by key id.
#[derive(Default)]
pub struct Keys {
    by_kid: HashMap<String, Key>,
}

impl Keys {
    /// The usable keys of `set` (encryption keys, symmetric keys, other curves and keys without a
    /// key id are skipped); an error when none is left.
    pub fn from_set(set: &JwkSet) -> Result<Keys, Error> {
        let mut by_kid = HashMap::new();
        for jwk in &set.keys {
            if let Some(key) = usable(jwk) {
                if let Some(kid) = &jwk.common.key_id {
                    by_kid.insert(kid.clone(), key);
                }
            }
        }
        let skipped = set.keys.len().saturating_sub(by_kid.len());
        if skipped > 0 {
            tracing::debug!(
                skipped,
                "key set: keys skipped (not RSA or P-256 signing keys with a kid)"
            );
        }
        if by_kid.is_empty() {
            return Err(Error::NoUsableKey(set.keys.len()));
        }
        Ok(Keys { by_kid })
    }

    /// The key named `kid`.
    pub fn get(&self, kid: &str) -> Option<&Key> {
        self.by_kid.get(kid)
    }

    /// The key ids, sorted (for logs).
    fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.by_kid.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }
}

/// `jwk` as a key for verifying signatures, when it is one this server accepts.
fn usable(jwk: &Jwk) -> Option<Key> {
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return None;
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        _ => return None,
    };
    let decoding = DecodingKey::from_jwk(jwk)
        .map_err(|e| tracing::debug!(error = %e, kid = ?jwk.common.key_id, "key set: unusable key"))
        .ok()?;
    Some(Key {
        decoding,
        family,
        alg: jwk.common.key_algorithm,
    })
}

/// The provider's key set, shared by every connection (cheap to clone).
#[derive(Clone)]
pub struct KeySet {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    client: reqwest::Client,
    refresh: Duration,
    min_refresh: Duration,
    /// The last good set (none before the first successful fetch).
    current: RwLock<Option<Arc<Keys>>>,
    /// Fetches completed, successful or not.
    fetches: AtomicU64,
    /// Held during a fetch; when the last one started.
    gate: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("url", &self.inner.url)
            .finish_non_exhaustive()
    }
}

/// Makes ring the process's rustls crypto provider (the key set's HTTPS client and the OTLP
/// exporter's need one; both come through reqwest without a provider of their own). Idempotent.
pub fn install_tls_provider() {
    // An error means one is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl KeySet {
    /// The key set at `url`, with the intervals of `auth`; nothing is fetched yet (see
    /// [`KeySet::run`]).
    pub fn new(url: &str, auth: &AuthConfig) -> Result<KeySet, Error> {
        install_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            // Fetches are rare and may come from any of the server's runtimes: no pooled
            // connection outlives the runtime that opened it.
            .pool_max_idle_per_host(0)
            .user_agent(concat!("threds/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Client(e.to_string()))?;
        Ok(KeySet {
            inner: Arc::new(Inner {
                url: url.to_owned(),
                client,
                refresh: Duration::from_secs(auth.jwks_refresh_secs.max(1)),
                min_refresh: Duration::from_secs(auth.jwks_min_refresh_secs.max(1)),
                current: RwLock::new(None),
                fetches: AtomicU64::new(0),
                gate: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// A set holding `keys` already, whose next fetch is not due for `min_refresh` (tests).
    #[cfg(test)]
    pub fn preloaded(url: &str, keys: Keys, min_refresh: Duration) -> KeySet {
        let auth = AuthConfig {
            jwks_min_refresh_secs: min_refresh.as_secs(),
            ..AuthConfig::default()
        };
        let Ok(set) = KeySet::new(url, &auth) else {
            panic!("an HTTP client for tests");
        };
        if let Ok(mut current) = set.inner.current.write() {
            *current = Some(Arc::new(keys));
        }
        if let Ok(mut gate) = set.inner.gate.try_lock() {
            *gate = Some(Instant::now());
        }
        set
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The last good set, if any.
    pub fn current(&self) -> Option<Arc<Keys>> {
        self.inner.current.read().ok().and_then(|c| c.clone())
    }

    /// Fetches completed so far (pass to [`KeySet::refresh_after`]).
    pub fn fetches(&self) -> u64 {
        self.inner.fetches.load(Ordering::Acquire)
    }

    /// Fetches the set once more for a token whose key was not in it, unless a fetch completed
    /// since the caller looked (`seen`, from [`KeySet::fetches`] before its lookup) or one started
    /// less than `jwks_min_refresh_secs` ago. Waits for a fetch under way. Answers whether a
    /// fetch completed since `seen` (so looking again may help).
    pub async fn refresh_after(&self, seen: u64) -> bool {
        let mut last = self.inner.gate.lock().await;
        if self.fetches() != seen {
            return true;
        }
        if last.is_some_and(|t| t.elapsed() < self.inner.min_refresh) {
            tracing::debug!(url = %self.inner.url, "key set: unknown key id, refresh not due yet");
            return false;
        }
        *last = Some(Instant::now());
        self.fetch_and_keep().await;
        true
    }

    /// Fetches now (waiting for a fetch under way first); answers whether it succeeded.
    async fn refresh_now(&self) -> bool {
        let mut last = self.inner.gate.lock().await;
        *last = Some(Instant::now());
        self.fetch_and_keep().await
    }

    /// Fetches the set every `jwks_refresh_secs` (every `jwks_min_refresh_secs` while fetches
    /// fail) until `shutdown`, starting now.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let wait = if self.refresh_now().await {
                self.inner.refresh
            } else {
                self.inner.min_refresh
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One fetch: keeps the set when it is good, else logs why and keeps the last.
    async fn fetch_and_keep(&self) -> bool {
        let url = &self.inner.url;
        let outcome = self.fetch().await;
        let ok = match outcome {
            Ok(keys) => {
                let kids: Vec<String> = keys.kids().into_iter().map(str::to_owned).collect();
                let previous = self.current();
                let changed = previous.as_ref().is_none_or(|p| p.kids() != kids);
                if let Ok(mut current) = self.inner.current.write() {
                    *current = Some(Arc::new(keys));
                }
                if previous.is_none() {
                    tracing::info!(%url, ?kids, "key set fetched");
                } else if changed {
                    tracing::info!(%url, ?kids, "key set changed");
                }
                true
            }
            Err(e) => {
                let kept = if self.current().is_some() {
                    "keeping the last good set"
                } else {
                    "no keys yet: RS256/ES256 tokens are refused"
                };
                tracing::warn!(%url, error = %e, "key set fetch failed; {kept}");
                false
            }
        };
        self.inner.fetches.fetch_add(1, Ordering::AcqRel);
        ok
    }

    /// GET the set and parse it.
    async fn fetch(&self) -> Result<Keys, Error> {
        let mut response = self
            .inner
            .client
            .get(&self.inner.url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| Error::Request(threds_runtime::codes::chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::Status(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY as u64)
        {
            return Err(Error::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Error::Request(threds_runtime::codes::chain(&e)))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(Error::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let set: JwkSet =
            serde_json::from_slice(&body).map_err(|e| Error::NotKeySet(e.to_string()))?;
        Keys::from_set(&set)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use threds_testkit::jwks::Provider;
    use threds_testkit::keys::{RSA_A, RSA_B};

    fn key_set(url: &str, min_refresh_secs: u64) -> KeySet {
        let auth = AuthConfig {
            jwks_min_refresh_secs: min_refresh_secs,
            ..AuthConfig::default()
        };
        KeySet::new(url, &auth).unwrap()
    }

    fn kids(set: &KeySet) -> Vec<String> {
        set.current()
            .map(|k| k.kids().into_iter().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn a_failed_fetch_keeps_the_last_good_set() {
        let provider = Provider::start(&[RSA_A]).unwrap();
        let set = key_set(provider.url(), 3600);
        assert!(set.current().is_none());
        assert!(set.refresh_now().await);
        assert_eq!(kids(&set), ["rsa-a"]);
        for (status, body) in [
            (503, "down"),
            (200, "not json"),
            (
                200,
                r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]}"#,
            ),
        ] {
            provider.answer_with(status, body);
            assert!(!set.refresh_now().await, "{status} {body}");
            assert_eq!(kids(&set), ["rsa-a"], "{status} {body}");
        }
        provider.publish(&[RSA_B]).unwrap();
        assert!(set.refresh_now().await);
        assert_eq!(kids(&set), ["rsa-b"], "the removed key is gone");
        assert_eq!(set.fetches(), 5);
    }

    #[tokio::test]
    async fn an_unreachable_provider_leaves_no_keys() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        drop(listener);
        let set = key_set(&url, 3600);
        assert!(!set.refresh_now().await);
        assert!(set.current().is_none());
    }

    #[tokio::test]
    async fn concurrent_refreshes_for_unknown_keys_fetch_once() {
        let provider = Provider::start(&[RSA_A]).unwrap();
        let set = key_set(provider.url(), 3600);
        let seen = set.fetches();
        let results =
            futures_util::future::join_all((0..10).map(|_| set.refresh_after(seen))).await;
        assert!(results.iter().all(|fetched| *fetched));
        assert_eq!(provider.requests(), 1);
        // Not due again for an hour.
        assert!(!set.refresh_after(set.fetches()).await);
        assert_eq!(provider.requests(), 1);
    }
}
