//! A process started before its backends answer waits for them — alive, not ready — and becomes
//! ready when they do, instead of exiting: one test per backend that is reached at start
//! (Redis, MongoDB), and one for the broker (tansu), which the consumers wait for by themselves.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use threds_runtime::bus::kafka::{KafkaBus, KafkaConfig};
use threds_runtime::bus::Bus;
use threds_testkit::deployment::mock_kafka;
use threds_testkit::http;
use threds_testkit::kafka::MOCK_PROPERTIES;
use threds_testkit::mongo::{self, MongoServer};
use threds_testkit::redis::{self, free_port, RedisServer};
use threds_testkit::tansu::{self, TansuServer};

/// `threds engine` listening at `addr` with `env`, its log discarded; killed on drop.
struct Engine(Child);

impl Engine {
    fn start(addr: &str, config: &str, env: &[(&str, String)]) -> Engine {
        let child = Command::new(env!("CARGO_BIN_EXE_threds"))
            .args(["engine", "--listen", addr, "--config", config])
            .args(["--patterns", "config/patterns"])
            .current_dir(support::repo())
            .env("THREDS_JWT_SECRET", support::SECRET)
            .env("THREDS_NODE", "engine-a")
            .env("THREDS_PARTITIONS", support::PARTITIONS.to_string())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Engine(child)
    }

    fn running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The status `path` answers with, or `None` while nothing listens.
fn status(addr: &str, path: &str) -> Option<u16> {
    http::get(addr, path).ok().map(|a| a.status)
}

/// Polls until `check` holds, at most `within`.
fn wait_until(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// While its backend is down the engine stays up: `/livez` 200 and `/readyz` 503 for `for_at_least`.
fn waits_alive_and_not_ready(engine: &mut Engine, addr: &str, for_at_least: Duration) {
    wait_until(Duration::from_secs(30), "the engine answers /livez", || {
        status(addr, "/livez") == Some(200)
    });
    let until = Instant::now() + for_at_least;
    while Instant::now() < until {
        assert!(
            engine.running(),
            "the engine exited while its backend was down"
        );
        assert_eq!(status(addr, "/livez"), Some(200), "alive while waiting");
        assert_eq!(
            status(addr, "/readyz"),
            Some(503),
            "not ready while waiting"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Starts the engine at `addr` off the async workers and checks that it waits, alive and not ready.
async fn started_waiting(
    addr: String,
    config: String,
    env: Vec<(&'static str, String)>,
) -> (String, Engine) {
    tokio::task::spawn_blocking(move || {
        let mut engine = Engine::start(&addr, &config, &env);
        waits_alive_and_not_ready(&mut engine, &addr, Duration::from_secs(3));
        (addr, engine)
    })
    .await
    .unwrap()
}

/// Waits (off the async workers) until the engine at `addr` is ready once `backend` answers.
async fn becomes_ready(addr: String, mut engine: Engine, backend: &'static str) {
    tokio::task::spawn_blocking(move || {
        wait_until(
            Duration::from_secs(60),
            &format!("ready once {backend} answers"),
            || status(&addr, "/readyz") == Some(200),
        );
        assert!(engine.running());
    })
    .await
    .unwrap();
}

fn config(dir: &std::path::Path) -> String {
    let path = dir.join("threds.toml");
    // Short server selection: each attempt to reach a MongoDB that is down fails fast.
    std::fs::write(
        &path,
        "[documents.mongodb]\nserver_selection_timeout_ms = 500\n\n[bus]\nsession_timeout_ms = 6000\n",
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn an_engine_started_before_redis_answers_waits_and_becomes_ready_when_it_does() {
    if !redis::available("an_engine_started_before_redis_answers_waits") {
        return;
    }
    let kafka = mock_kafka(&support::TOPOLOGY).unwrap();
    let mut redis = RedisServer::start().unwrap();
    redis.kill();
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let env = [
        ("THREDS_KAFKA_BROKERS", kafka.bootstrap().to_owned()),
        ("THREDS_KAFKA_PROPERTIES", MOCK_PROPERTIES.to_owned()),
        ("THREDS_REDIS_URLS", redis.url()),
        ("THREDS_DOCUMENTS", "memory".to_owned()),
    ];
    let mut engine = Engine::start(&addr, &config(dir.path()), &env);
    waits_alive_and_not_ready(&mut engine, &addr, Duration::from_secs(3));
    redis.restart().unwrap();
    wait_until(Duration::from_secs(60), "ready once Redis answers", || {
        status(&addr, "/readyz") == Some(200)
    });
    assert!(engine.running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_started_before_mongodb_answers_waits_and_becomes_ready_when_it_does() {
    if !redis::available("an_engine_started_before_mongodb_answers_waits") {
        return;
    }
    // Is briskdb here at all? (Skips, or fails under THREDS_REQUIRE_SERVICES=1, when not.)
    let Some(probe) = mongo::server_or_skip().await else {
        return;
    };
    drop(probe);
    let kafka = mock_kafka(&support::TOPOLOGY).unwrap();
    let redis = RedisServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let mongo_addr = format!("127.0.0.1:{}", free_port().unwrap());
    let env = [
        ("THREDS_KAFKA_BROKERS", kafka.bootstrap().to_owned()),
        ("THREDS_KAFKA_PROPERTIES", MOCK_PROPERTIES.to_owned()),
        ("THREDS_REDIS_URLS", redis.url()),
        ("THREDS_DOCUMENTS", "mongodb".to_owned()),
        (
            "THREDS_MONGODB_URI",
            format!("mongodb://{mongo_addr}/?directConnection=true"),
        ),
    ];
    let config = config(dir.path());
    let (addr, engine) = started_waiting(addr, config, env.to_vec()).await;
    let _mongo = MongoServer::start_at(&mongo_addr).await.unwrap();
    becomes_ready(addr, engine, "MongoDB").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_started_before_the_broker_answers_waits_and_becomes_ready_when_it_does() {
    let name = "an_engine_started_before_the_broker_answers_waits";
    if !redis::available(name) || !tansu::available(name) {
        return;
    }
    // A broker that is not there yet, at a known address.
    let mut broker = TansuServer::start().unwrap();
    broker.kill();
    let redis = RedisServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let env = [
        ("THREDS_KAFKA_BROKERS", broker.bootstrap()),
        ("THREDS_REDIS_URLS", redis.url()),
        ("THREDS_DOCUMENTS", "memory".to_owned()),
    ];
    let config = config(dir.path());
    let (addr, engine) = started_waiting(addr, config, env.to_vec()).await;
    // The broker comes up, with the deployment's topics.
    broker.restart().unwrap();
    let bus = KafkaBus::new(KafkaConfig::new(broker.bootstrap())).unwrap();
    for topic in support::TOPOLOGY.topics() {
        bus.create_topic(&topic.name, topic.partitions)
            .await
            .unwrap();
    }
    becomes_ready(addr, engine, "the broker").await;
}
