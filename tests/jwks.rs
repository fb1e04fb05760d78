//! End-to-end tests of production tokens: a real `threds dev` verifies RS256 and ES256 tokens
//! against the key set of an identity provider served by the test (`threds_testkit::jwks`), and
//! follows the provider's key rotation without a restart (`docs/operations.md`, "Production
//! tokens (OIDC/JWKS)").

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::time::{Duration, Instant};
use threds_testkit::client::{frames, Client};
use threds_testkit::http;
use threds_testkit::jwks::Provider;
use threds_testkit::keys::{TestKey, EC_A, EC_B, RSA_A, RSA_B};
use threds_testkit::rig::Process;
use tokio_tungstenite::tungstenite::Message;

const ISSUER: &str = "https://id.test/realms/threds";
const AUDIENCE: &str = "threds-api";

/// A `threds dev` trusting `provider`'s keys, fetching them every 2 s and at most every second.
fn dev(provider: &Provider) -> Process {
    let env: Vec<(&'static str, String)> = vec![
        ("THREDS_AUTH_JWKS_URL", provider.url().to_owned()),
        ("THREDS_AUTH_ISSUER", ISSUER.to_owned()),
        ("THREDS_AUTH_AUDIENCE", AUDIENCE.to_owned()),
        ("THREDS_AUTH_JWKS_REFRESH_SECS", "2".to_owned()),
        ("THREDS_AUTH_JWKS_MIN_REFRESH_SECS", "1".to_owned()),
    ];
    support::threds()
        .start("dev", &["--patterns", "config/patterns"], &env)
        .unwrap()
}

/// A token of `key` for `participant`, from the provider, for Threds.
fn token(key: TestKey, participant: &str) -> String {
    key.mint(participant, ISSUER, AUDIENCE).unwrap()
}

/// Opens `/ws` with `token` and sends an event: `Ok` once the server answers it (the token was
/// accepted), else the close code and reason.
async fn attempt(server: &Process, token: &str) -> Result<(), (u16, String)> {
    let url = format!("ws://{}/ws?token={token}", server.addr());
    let mut ws = Client::connect_url(&url).await.unwrap();
    let event = json!({"id": "e1", "type": "org.wt.echo", "data": {"content": {"values": {}}}});
    // A refused connection may already be closing: the close frame tells.
    let _ = ws.send(frames::event(&event)).await;
    let answer = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return Err((u16::from(frame.code), frame.reason.to_string()))
                }
                Some(Ok(Message::Text(_))) => return Ok(()),
                Some(Ok(_)) => {}
                other => panic!("expected an answer or a close frame, got {other:?}"),
            }
        }
    });
    answer.await.expect("an answer within 20 s")
}

/// Waits up to 15 s for `token` to be accepted; answers the last refusal if it never is.
async fn accepted_eventually(server: &Process, token: &str) -> Result<(), (u16, String)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let outcome = attempt(server, token).await;
        if outcome.is_ok() || Instant::now() >= deadline {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A refusal with close code 4401 and `reason`.
fn unauthorized(reason: &str) -> Result<(), (u16, String)> {
    Err((4401, reason.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_keys_rotate_without_a_restart() {
    let provider = Provider::start(&[RSA_A, EC_A]).unwrap();
    let server = dev(&provider);
    let (rsa_a, ec_a) = (token(RSA_A, "alice"), token(EC_A, "erin"));
    assert_eq!(attempt(&server, &rsa_a).await, Ok(()), "RS256 of key A");
    assert_eq!(attempt(&server, &ec_a).await, Ok(()), "ES256 of key A");
    // The same keys, but another audience or issuer.
    let elsewhere = RSA_A.mint("alice", ISSUER, "another-api").unwrap();
    assert_eq!(
        attempt(&server, &elsewhere).await,
        unauthorized("invalid token: wrong audience")
    );
    let forged = RSA_A.mint("alice", "https://evil.test/", AUDIENCE).unwrap();
    assert_eq!(
        attempt(&server, &forged).await,
        unauthorized("invalid token: wrong issuer")
    );
    let post = |token: &str| {
        let event = json!({"id": "p1", "type": "org.wt.echo", "data": {"content": {"values": {}}}});
        http::post_json(server.addr(), "/events", Some(token), &event)
            .unwrap()
            .status
    };
    assert!(
        (200..300).contains(&post(&rsa_a)),
        "POST /events with key A"
    );

    // The provider rotates: key B only. A token of B names a key the server has not seen: it
    // fetches the set again (at most once a second) and accepts it.
    provider.publish(&[RSA_B]).unwrap();
    let rsa_b = token(RSA_B, "bob");
    assert_eq!(accepted_eventually(&server, &rsa_b).await, Ok(()), "key B");
    // Key A is gone from the set the server holds now.
    for old in [&rsa_a, &ec_a] {
        assert_eq!(
            attempt(&server, old).await,
            unauthorized("invalid token: unknown signing key")
        );
    }
    assert_eq!(post(&rsa_a), 401, "POST /events with the removed key A");
    assert!(
        (200..300).contains(&post(&rsa_b)),
        "POST /events with key B"
    );

    // A key published later arrives with the periodic refresh (every 2 s), no token needed.
    provider.publish(&[RSA_B, EC_B]).unwrap();
    let before = provider.requests();
    assert!(
        provider.wait_for_requests_over(before, Duration::from_secs(10)),
        "a periodic fetch"
    );
    assert_eq!(attempt(&server, &token(EC_B, "eve")).await, Ok(()));

    // The provider fails: the server keeps the last good set and says so.
    provider.answer_with(503, "down for maintenance");
    let before = provider.requests();
    assert!(provider.wait_for_requests_over(before, Duration::from_secs(10)));
    assert_eq!(attempt(&server, &rsa_b).await, Ok(()), "the last good set");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut warned = false;
    while !warned && Instant::now() < deadline {
        warned = server
            .take_log()
            .iter()
            .any(|l| l.contains("key set fetch failed") && l.contains(provider.url()));
        if !warned {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(warned, "a warning naming the URL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_down_at_start_refuses_its_tokens_until_its_keys_arrive() {
    let provider = Provider::start(&[]).unwrap();
    provider.answer_with(503, "not yet");
    let server = dev(&provider);
    let rsa_b = token(RSA_B, "bob");
    assert_eq!(
        attempt(&server, &rsa_b).await,
        unauthorized("signing keys unavailable")
    );
    // The development secret's tokens do not depend on the provider.
    let dev_token = server.token("dave", &[]).unwrap();
    assert_eq!(attempt(&server, &dev_token).await, Ok(()));
    // The server keeps trying; once the provider is up, its tokens are accepted.
    provider.publish(&[RSA_B]).unwrap();
    assert_eq!(accepted_eventually(&server, &rsa_b).await, Ok(()));
}
