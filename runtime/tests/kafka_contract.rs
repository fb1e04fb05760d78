//! Runs the bus contract suite against the Kafka adapter on librdkafka's mock cluster (a real
//! Kafka protocol server on 127.0.0.1, in this process), plus Kafka-specific checks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::sync::Arc;
use std::time::Duration;
use threds_runtime::bus::kafka::{KafkaBus, KafkaConfig};
use threds_runtime::bus::{partition_for, Bus, Error};
use threds_testkit::contract::bus::{run_all, run_durability};
use threds_testkit::kafka::MockKafka;

fn cluster() -> Arc<MockKafka> {
    Arc::new(MockKafka::start(1).expect("the mock cluster starts"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_bus_keeps_the_contract() {
    let mock = cluster();
    run_all(|| {
        let mock = mock.clone();
        async move { Arc::new(mock.bus().unwrap()) as Arc<dyn Bus> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_bus_with_static_membership_keeps_the_contract() {
    let mock = cluster();
    run_all(|| {
        let mock = mock.clone();
        let config = KafkaConfig {
            static_membership: true,
            ..mock.config()
        };
        async move { Arc::new(mock.bus_with(config).unwrap()) as Arc<dyn Bus> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_bus_survives_reconnecting() {
    let mock = cluster();
    let bus = Arc::new(mock.bus().unwrap()) as Arc<dyn Bus>;
    run_durability(bus, |old: Arc<dyn Bus>| {
        drop(old);
        let mock = mock.clone();
        async move { Arc::new(mock.bus().unwrap()) as Arc<dyn Bus> }
    })
    .await;
}

/// A Kafka client using its own murmur2 partitioner puts a key where `partition_for` says, so
/// records appended by Threds and by other Kafka clients agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_land_where_kafka_clients_put_them() {
    let mock = cluster();
    let topic = "keys";
    mock.create_topic(topic, 7).unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap())
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap();
    let bus = mock.bus().unwrap();
    for i in 0..50 {
        let key = format!("thred-{i}");
        let record = FutureRecord::to(topic).key(&key).payload("x");
        let theirs = producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        let ours = bus
            .append(topic, None, Some(&key), b"x".to_vec(), Vec::new())
            .await
            .unwrap();
        assert_eq!(theirs.partition, partition_for(&key, 7) as i32, "{key}");
        assert_eq!(ours.partition, partition_for(&key, 7), "{key}");
    }
}

/// Without a topic creator, the mock cluster cannot create topics (it has no CreateTopics); the
/// bus says so, and accepts topics that were made beforehand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_create_topics_needs_topics_made_beforehand() {
    let mock = cluster();
    let bus = KafkaBus::new(mock.config()).unwrap();
    match bus.create_topic("unmade", 2).await {
        Err(Error::Backend(why)) => assert!(why.contains("beforehand"), "{why}"),
        other => panic!("creating a topic on the mock without a creator gave {other:?}"),
    }
    mock.create_topic("made", 2).unwrap();
    bus.create_topic("made", 2).await.unwrap();
    assert!(matches!(
        bus.create_topic("made", 3).await,
        Err(Error::PartitionMismatch {
            existing: 2,
            requested: 3,
            ..
        })
    ));
    assert_eq!(bus.partitions("made").await.unwrap(), 2);
}

/// Joining a missing topic fails at once instead of waiting for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_a_missing_topic_is_refused() {
    let mock = cluster();
    let bus = mock.bus().unwrap();
    match bus.join("g", &["nowhere"], "m").await {
        Err(Error::UnknownTopic(t)) => assert_eq!(t, "nowhere"),
        other => panic!("joining a missing topic gave {:?}", other.err()),
    }
}

/// A poll whose future is dropped midway (as `select!` does) loses no records: what it fetched
/// comes with a later poll, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_poll_loses_no_records() {
    let mock = cluster();
    let bus = mock.bus().unwrap();
    bus.create_topic("abandoned", 1).await.unwrap();
    let mut consumer = bus.join("g", &["abandoned"], "m").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while consumer.assignment().is_empty() {
        assert!(std::time::Instant::now() < deadline, "never assigned");
        consumer.poll(10, Duration::from_millis(100)).await.unwrap();
    }
    for i in 0..20 {
        bus.append(
            "abandoned",
            Some(0),
            None,
            format!("{i}").into_bytes(),
            Vec::new(),
        )
        .await
        .unwrap();
    }
    let mut offsets = Vec::new();
    for _ in 0..50 {
        // Gives up on most polls after a moment, while librdkafka may be handing over records.
        if let Ok(polled) = tokio::time::timeout(
            Duration::from_micros(300),
            consumer.poll(1, Duration::from_secs(1)),
        )
        .await
        {
            offsets.extend(polled.unwrap().records.iter().map(|r| r.position.offset));
        }
    }
    while offsets.len() < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "read only {offsets:?}"
        );
        let polled = consumer
            .poll(100, Duration::from_millis(200))
            .await
            .unwrap();
        offsets.extend(polled.records.iter().map(|r| r.position.offset));
    }
    assert_eq!(offsets, (0..20).collect::<Vec<u64>>());
    consumer.leave().await.unwrap();
}
