//! Tests specific to the embedded bus: hand-over timing, drop, eviction, fencing, assignment
//! shape and odd inputs (the contract suite covers the port itself).

#![allow(clippy::unwrap_used)]

use super::MemoryBus;
use crate::bus::{Bus, Consumer, Error, Polled, Position};
use std::time::Duration;
use tokio::time::Instant;

const TICK: Duration = Duration::from_millis(10);

fn tp(topic: &str, partition: u32) -> (String, u32) {
    (topic.to_owned(), partition)
}

/// Polls until the consumer's assignment equals `want` (bounded).
async fn poll_until_assigned(consumer: &mut dyn Consumer, want: &[(String, u32)]) {
    let give_up = Instant::now() + Duration::from_secs(10);
    while consumer.assignment() != want {
        assert!(Instant::now() < give_up, "never got {want:?}");
        consumer.poll(10, TICK).await.unwrap();
    }
}

#[tokio::test]
async fn a_partition_moves_only_after_its_holder_polls() {
    let bus = MemoryBus::new();
    bus.create_topic("t", 2).await.unwrap();
    let mut a = bus.join("g", &["t"], "a").await.unwrap();
    poll_until_assigned(&mut *a, &[tp("t", 0), tp("t", 1)]).await;
    let mut b = bus.join("g", &["t"], "b").await.unwrap();
    for _ in 0..3 {
        let polled = b.poll(10, TICK).await.unwrap();
        assert_eq!(polled, Polled::default(), "b got a partition a still holds");
    }
    let polled = a.poll(10, TICK).await.unwrap();
    assert_eq!(polled.revoked, [tp("t", 1)]);
    assert!(polled.assigned.is_empty() && polled.records.is_empty());
    assert_eq!(a.assignment(), [tp("t", 0)]);
    let polled = b.poll(10, TICK).await.unwrap();
    assert_eq!(polled.assigned, [tp("t", 1)]);
}

#[tokio::test]
async fn dropping_a_member_leaves_the_group() {
    let bus = MemoryBus::new();
    bus.create_topic("t", 2).await.unwrap();
    let mut a = bus.join("g", &["t"], "a").await.unwrap();
    let mut b = bus.join("g", &["t"], "b").await.unwrap();
    poll_until_assigned(&mut *a, &[tp("t", 0)]).await;
    poll_until_assigned(&mut *b, &[tp("t", 1)]).await;
    drop(a);
    poll_until_assigned(&mut *b, &[tp("t", 0), tp("t", 1)]).await;
}

#[tokio::test]
async fn a_silent_member_is_evicted_and_rejoins_when_it_polls_again() {
    let bus = MemoryBus::new().with_session_timeout(Duration::from_millis(100));
    bus.create_topic("t", 2).await.unwrap();
    let mut a = bus.join("g", &["t"], "a").await.unwrap();
    poll_until_assigned(&mut *a, &[tp("t", 0), tp("t", 1)]).await;
    a.commit(&[Position {
        topic: "t".to_owned(),
        partition: 0,
        offset: 0,
    }])
    .await
    .unwrap();
    let mut b = bus.join("g", &["t"], "b").await.unwrap();
    // a never polls: b gets everything once a's session times out.
    let started = Instant::now();
    poll_until_assigned(&mut *b, &[tp("t", 0), tp("t", 1)]).await;
    assert!(started.elapsed() >= Duration::from_millis(50));
    let stale = a
        .commit(&[Position {
            topic: "t".to_owned(),
            partition: 0,
            offset: 1,
        }])
        .await;
    assert!(matches!(stale, Err(Error::NotAssigned { .. })));
    // a comes back: it learns it lost everything, then rejoins and gets its share again.
    let polled = a.poll(10, TICK).await.unwrap();
    assert_eq!(polled.revoked, [tp("t", 0), tp("t", 1)]);
    assert!(a.assignment().is_empty());
    for _ in 0..100 {
        if a.assignment() == [tp("t", 0)] && b.assignment() == [tp("t", 1)] {
            break;
        }
        b.poll(10, TICK).await.unwrap();
        a.poll(10, TICK).await.unwrap();
    }
    assert_eq!(a.assignment(), [tp("t", 0)]);
    assert_eq!(b.assignment(), [tp("t", 1)]);
}

#[tokio::test]
async fn a_member_waiting_in_poll_is_not_evicted() {
    let bus = MemoryBus::new().with_session_timeout(Duration::from_millis(50));
    bus.create_topic("t", 2).await.unwrap();
    let mut a = bus.join("g", &["t"], "a").await.unwrap();
    poll_until_assigned(&mut *a, &[tp("t", 0), tp("t", 1)]).await;
    let joiner = bus.clone();
    let later = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        joiner.join("g", &["t"], "b").await.unwrap()
    });
    // The join wakes a, which gives up one partition, not both (it was not evicted).
    let polled = a.poll(10, Duration::from_secs(10)).await.unwrap();
    assert_eq!(polled.revoked, [tp("t", 1)]);
    drop(later.await.unwrap());
}

#[tokio::test]
async fn a_replaced_handle_is_fenced_and_its_drop_changes_nothing() {
    let bus = MemoryBus::new();
    bus.create_topic("t", 1).await.unwrap();
    let mut old = bus.join("g", &["t"], "a").await.unwrap();
    poll_until_assigned(&mut *old, &[tp("t", 0)]).await;
    let mut new = bus.join("g", &["t"], "a").await.unwrap();
    poll_until_assigned(&mut *new, &[tp("t", 0)]).await;
    let commit = old
        .commit(&[Position {
            topic: "t".to_owned(),
            partition: 0,
            offset: 0,
        }])
        .await;
    assert!(matches!(commit, Err(Error::NotAssigned { .. })));
    let polled = old.poll(10, TICK).await.unwrap();
    assert_eq!(polled.revoked, [tp("t", 0)]);
    bus.append("t", None, None, b"x".to_vec(), Vec::new())
        .await
        .unwrap();
    let polled = old.poll(10, TICK).await.unwrap();
    assert_eq!(polled, Polled::default(), "a fenced handle read records");
    drop(old);
    let polled = new.poll(10, TICK).await.unwrap();
    assert_eq!(polled.records.len(), 1);
    assert_eq!(new.assignment(), [tp("t", 0)]);
}

#[tokio::test]
async fn equal_partitions_of_co_partitioned_topics_go_to_the_same_member() {
    let bus = MemoryBus::new();
    bus.create_topic("events", 4).await.unwrap();
    bus.create_topic("commands", 4).await.unwrap();
    let mut a = bus.join("g", &["events", "commands"], "a").await.unwrap();
    let mut b = bus.join("g", &["commands", "events"], "b").await.unwrap();
    let want_a = [
        tp("commands", 0),
        tp("commands", 1),
        tp("events", 0),
        tp("events", 1),
    ];
    let want_b = [
        tp("commands", 2),
        tp("commands", 3),
        tp("events", 2),
        tp("events", 3),
    ];
    poll_until_assigned(&mut *a, &want_a).await;
    poll_until_assigned(&mut *b, &want_b).await;
}

#[tokio::test]
async fn odd_inputs_are_refused_or_tolerated_without_panics() {
    let bus = MemoryBus::new();
    assert!(matches!(
        bus.create_topic("none", 0).await,
        Err(Error::UnknownPartition { .. })
    ));
    assert!(matches!(
        bus.create_topic("huge", u32::MAX).await,
        Err(Error::Backend(_))
    ));
    assert!(matches!(
        bus.join("g", &["missing"], "a").await,
        Err(Error::UnknownTopic(_))
    ));
    bus.create_topic("t", 1).await.unwrap();
    bus.append("t", None, Some(""), Vec::new(), Vec::new())
        .await
        .unwrap();
    let mut a = bus.join("", &["t", "t"], "").await.unwrap();
    poll_until_assigned(&mut *a, &[tp("t", 0)]).await;
    // max 0 still makes progress; an endless timeout is fine when records are there.
    let polled = a.poll(0, Duration::MAX).await.unwrap();
    assert_eq!(polled.records.len(), 1);
    a.commit(&[]).await.unwrap();
    let bad = Position {
        topic: "t".to_owned(),
        partition: 9,
        offset: 0,
    };
    assert!(matches!(
        a.commit(&[bad]).await,
        Err(Error::UnknownPartition { .. })
    ));
    assert!(matches!(
        a.committed("missing", 0).await,
        Err(Error::UnknownTopic(_))
    ));
    a.leave().await.unwrap();
}

#[tokio::test]
async fn a_damaged_store_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bus.redb"), b"this is not a database").unwrap();
    assert!(matches!(
        MemoryBus::open(dir.path()),
        Err(Error::Backend(_))
    ));
    let file = dir.path().join("file");
    std::fs::write(&file, b"").unwrap();
    assert!(matches!(MemoryBus::open(&file), Err(Error::Backend(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_durable_appends_share_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let bus = MemoryBus::open(dir.path()).unwrap();
    bus.create_topic("t", 4).await.unwrap();
    let before = bus.durable_commits();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..50 {
        let bus = bus.clone();
        tasks.spawn(async move {
            for i in 0..10 {
                let key = format!("{task}-{i}");
                bus.append("t", None, Some(&key), key.clone().into_bytes(), Vec::new())
                    .await
                    .unwrap();
            }
        });
    }
    tasks.join_all().await;
    let commits = bus.durable_commits() - before;
    // Fifty appenders in flight: transactions carry many appends each (typically ~40).
    assert!(commits < 500, "{commits} transactions for 500 appends");
    let mut total = 0;
    for p in 0..4 {
        let mut c = bus.join(&format!("g{p}"), &["t"], "m").await.unwrap();
        poll_until_assigned(&mut *c, &[tp("t", 0), tp("t", 1), tp("t", 2), tp("t", 3)]).await;
        let mut read = 0;
        loop {
            let polled = c.poll(1000, TICK).await.unwrap();
            if polled.records.is_empty() {
                break;
            }
            read += polled.records.len();
        }
        total += read;
    }
    assert_eq!(total, 4 * 500);
}

/// Appends `n` records to `t`/0 and answers the offsets a fresh group reads.
async fn offsets_read_after(bus: &MemoryBus, n: u64) -> Vec<u64> {
    for i in 0..n {
        bus.append("t", Some(0), None, i.to_string().into_bytes(), Vec::new())
            .await
            .unwrap();
    }
    let mut c = bus.join("fresh", &["t"], "a").await.unwrap();
    poll_until_assigned(&mut *c, &[tp("t", 0)]).await;
    let mut got = Vec::new();
    loop {
        let polled = c.poll(100, TICK).await.unwrap();
        if polled.records.is_empty() {
            break;
        }
        for r in polled.records {
            assert_eq!(r.payload, r.position.offset.to_string().into_bytes());
            got.push(r.position.offset);
        }
    }
    got
}

#[tokio::test]
async fn retention_keeps_the_newest_records_and_offsets_stay_dense() {
    let bus = MemoryBus::new().with_retention(3);
    bus.create_topic("t", 1).await.unwrap();
    assert_eq!(offsets_read_after(&bus, 10).await, [7, 8, 9]);
    let next = bus.append("t", Some(0), None, b"10".to_vec(), Vec::new());
    assert_eq!(next.await.unwrap().offset, 10);
}

#[tokio::test]
async fn byte_retention_keeps_the_newest_records_within_the_budget() {
    let bus = MemoryBus::new().with_retention_bytes(10_000);
    bus.create_topic("t", 1).await.unwrap();
    for i in 0..100u64 {
        let payload = vec![b'x'; 1_000 + usize::try_from(i).unwrap()];
        bus.append("t", Some(0), None, payload, Vec::new())
            .await
            .unwrap();
    }
    let mut reader = bus.join("g", &["t"], "a").await.unwrap();
    poll_until_assigned(&mut *reader, &[tp("t", 0)]).await;
    let polled = reader.poll(1_000, TICK).await.unwrap();
    let kept: Vec<u64> = polled.records.iter().map(|r| r.position.offset).collect();
    let bytes: usize = polled.records.iter().map(|r| r.payload.len()).sum();
    assert!(bytes <= 10_000, "{bytes} bytes kept");
    assert!(kept.len() >= 5, "{kept:?}");
    assert_eq!(kept.last(), Some(&99), "the newest are kept");
    assert!(kept.windows(2).all(|w| w[1] == w[0] + 1), "dense: {kept:?}");
    // A record over the whole budget is still kept, alone.
    bus.append("t", Some(0), None, vec![b'y'; 50_000], Vec::new())
        .await
        .unwrap();
    let polled = reader.poll(1_000, TICK).await.unwrap();
    let offsets: Vec<u64> = polled.records.iter().map(|r| r.position.offset).collect();
    assert_eq!(offsets, [100]);
}

#[tokio::test]
async fn a_group_behind_the_retained_records_skips_ahead() {
    let bus = MemoryBus::new().with_retention(2);
    bus.create_topic("t", 1).await.unwrap();
    let mut slow = bus.join("slow", &["t"], "a").await.unwrap();
    poll_until_assigned(&mut *slow, &[tp("t", 0)]).await;
    for i in 0..5u64 {
        bus.append("t", Some(0), None, i.to_string().into_bytes(), Vec::new())
            .await
            .unwrap();
    }
    let polled = slow.poll(100, TICK).await.unwrap();
    let offsets: Vec<u64> = polled.records.iter().map(|r| r.position.offset).collect();
    assert_eq!(offsets, [3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_retention_removes_records_from_disk_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let bus = MemoryBus::open(dir.path()).unwrap().with_retention(4);
        bus.create_topic("t", 1).await.unwrap();
        assert_eq!(offsets_read_after(&bus, 10).await, [6, 7, 8, 9]);
    }
    let bus = MemoryBus::open(dir.path()).unwrap();
    let mut c = bus.join("again", &["t"], "a").await.unwrap();
    poll_until_assigned(&mut *c, &[tp("t", 0)]).await;
    let polled = c.poll(100, TICK).await.unwrap();
    let offsets: Vec<u64> = polled.records.iter().map(|r| r.position.offset).collect();
    assert_eq!(
        offsets,
        [6, 7, 8, 9],
        "records below the retained ones are gone from disk"
    );
    let next = bus.append("t", Some(0), None, b"10".to_vec(), Vec::new());
    assert_eq!(next.await.unwrap().offset, 10);
}
