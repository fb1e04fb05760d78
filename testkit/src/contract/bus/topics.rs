//! Contract cases for topics, appends and polling a single member.

use super::harness::{all, check, put, tp_of, unique, Crew, Failure, Outcome};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use threds_runtime::bus::{partition_for, Bus, Error};
use tokio::time::Instant;

/// Creating a topic twice with the same count succeeds; another count is a mismatch.
pub(super) async fn create_topic_is_idempotent(bus: Arc<dyn Bus>) -> Outcome {
    let topic = unique("create");
    bus.create_topic(&topic, 3).await?;
    bus.create_topic(&topic, 3).await?;
    check!(
        bus.partitions(&topic).await? == 3,
        "partition count changed"
    );
    match bus.create_topic(&topic, 4).await {
        Err(Error::PartitionMismatch {
            topic: t,
            existing: 3,
            requested: 4,
        }) if t == topic => {}
        other => check!(false, "recreating with 4 partitions gave {other:?}"),
    }
    check!(
        bus.partitions(&topic).await? == 3,
        "a mismatch changed the topic"
    );
    let missing = unique("missing");
    match bus.partitions(&missing).await {
        Err(Error::UnknownTopic(t)) if t == missing => {}
        other => check!(false, "partitions of a missing topic gave {other:?}"),
    }
    Ok(())
}

/// Keyed appends land in `partition_for(key)`, explicit partitions win, no key means 0, and bad
/// targets are refused.
pub(super) async fn appends_pick_partitions(bus: Arc<dyn Bus>) -> Outcome {
    let topic = unique("route");
    bus.create_topic(&topic, 4).await?;
    for i in 0..32 {
        let key = format!("key-{i}");
        let at = put(&*bus, &topic, None, Some(&key), "keyed").await?;
        let want = partition_for(&key, 4);
        check!(
            at.partition == want,
            "{key} landed in {} not {want}",
            at.partition
        );
        check!(at.topic == topic, "appended to {} not {topic}", at.topic);
    }
    let key = (0..)
        .map(|i| format!("other-{i}"))
        .find(|k| partition_for(k, 4) != 3)
        .unwrap_or_default();
    let at = put(&*bus, &topic, Some(3), Some(&key), "explicit").await?;
    check!(
        at.partition == 3,
        "explicit partition 3 gave {}",
        at.partition
    );
    let at = put(&*bus, &topic, None, None, "unkeyed").await?;
    check!(
        at.partition == 0,
        "unkeyed append landed in {}",
        at.partition
    );
    match bus
        .append(&topic, Some(4), None, Vec::new(), Vec::new())
        .await
    {
        Err(Error::UnknownPartition {
            topic: t,
            partition: 4,
        }) if t == topic => {}
        other => check!(false, "append to partition 4 of 4 gave {other:?}"),
    }
    let missing = unique("missing");
    match bus
        .append(&missing, None, None, Vec::new(), Vec::new())
        .await
    {
        Err(Error::UnknownTopic(t)) if t == missing => {}
        other => check!(false, "append to a missing topic gave {other:?}"),
    }
    Ok(())
}

/// Offsets are dense from 0 per partition, and records come back in order, intact.
pub(super) async fn offsets_are_dense_and_ordered(bus: Arc<dyn Bus>) -> Outcome {
    let topic = unique("dense");
    bus.create_topic(&topic, 2).await?;
    let mut appended = Vec::new();
    for i in 0..20u32 {
        let payload = format!("record-{i}");
        let key = format!("k{i}");
        let at = put(&*bus, &topic, Some(i % 2), Some(&key), &payload).await?;
        let want = u64::from(i / 2);
        check!(
            at.offset == want,
            "record {i} got offset {} not {want}",
            at.offset
        );
        appended.push((at, key, payload));
    }
    let mut crew = Crew::new(bus.clone(), &unique("g"), &[&topic]);
    crew.join("reader").await?;
    crew.settle("all 20 records are read", |c| c.received() >= 20)
        .await?;
    let received = &crew.seats[0].received;
    check!(
        received.len() == 20,
        "read {} records, not 20",
        received.len()
    );
    for (position, key, payload) in appended {
        let Some(record) = received.iter().find(|r| r.position == position) else {
            return Err(Failure(format!("{position:?} was never delivered")));
        };
        check!(
            record.key.as_deref() == Some(key.as_str()),
            "key of {position:?} changed"
        );
        check!(
            record.payload == payload.as_bytes(),
            "payload of {position:?} changed"
        );
        check!(
            record.headers == [("contract".to_owned(), payload.clone())],
            "headers of {position:?} changed"
        );
        check!(record.timestamp > 0, "{position:?} has no timestamp");
    }
    Ok(())
}

/// Appends from many tasks at once all land, each at its own offset, offsets dense.
pub(super) async fn concurrent_appends_lose_nothing(bus: Arc<dyn Bus>) -> Outcome {
    const TASKS: usize = 16;
    const EACH: usize = 25;
    let topic = unique("busy");
    bus.create_topic(&topic, 4).await?;
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (bus, topic) = (bus.clone(), topic.clone());
        tasks.push(tokio::spawn(async move {
            let mut landed = Vec::new();
            for i in 0..EACH {
                let payload = format!("task-{task}-{i}");
                landed.push((
                    put(&*bus, &topic, None, Some(&payload), &payload).await?,
                    payload,
                ));
            }
            Ok::<_, Failure>(landed)
        }));
    }
    let mut by_partition: BTreeMap<u32, BTreeSet<u64>> = BTreeMap::new();
    let mut payloads = BTreeSet::new();
    for task in tasks {
        let landed = task
            .await
            .map_err(|e| Failure(format!("append task failed: {e}")))??;
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        for (at, payload) in landed {
            if let Some(before) = last.insert(at.partition, at.offset) {
                check!(before < at.offset, "one task's appends were reordered");
            }
            check!(
                by_partition
                    .entry(at.partition)
                    .or_default()
                    .insert(at.offset),
                "two appends got {at:?}"
            );
            payloads.insert(payload);
        }
    }
    for (partition, offsets) in &by_partition {
        let dense = offsets.iter().copied().eq(0..offsets.len() as u64);
        check!(
            dense,
            "offsets of partition {partition} are not 0..{}",
            offsets.len()
        );
    }
    let total = TASKS * EACH;
    let mut crew = Crew::new(bus.clone(), &unique("g"), &[&topic]);
    crew.join("reader").await?;
    crew.settle("every appended record is read", |c| c.received() >= total)
        .await?;
    let read: BTreeSet<String> = crew.seats[0]
        .received
        .iter()
        .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
        .collect();
    check!(
        read == payloads && crew.received() == total,
        "read back other records than appended"
    );
    Ok(())
}

/// A member alone in its group gets every partition, reported before any record, and reads
/// from offset 0 when nothing was committed.
pub(super) async fn one_member_gets_everything(bus: Arc<dyn Bus>) -> Outcome {
    let topic = unique("solo");
    bus.create_topic(&topic, 3).await?;
    for p in 0..3 {
        put(&*bus, &topic, Some(p), None, "early").await?;
    }
    let mut crew = Crew::new(bus.clone(), &unique("g"), &[&topic]);
    crew.join("only").await?;
    let every = all(&topic, 3);
    crew.settle("the member holds all and read all", |c| {
        c.seats[0].owned == every && c.received() >= 3
    })
    .await?;
    for tp in &every {
        let first = crew.seats[0].first_since_assigned(tp);
        check!(first == Some(0), "{tp:?} started at {first:?}, not 0");
        let committed = crew.seats[0].consumer.committed(&tp.0, tp.1).await?;
        check!(committed.is_none(), "{tp:?} has a commit nobody made");
    }
    Ok(())
}

/// A poll with nothing to read waits about its timeout and returns nothing, without error.
pub(super) async fn poll_times_out_empty(bus: Arc<dyn Bus>) -> Outcome {
    let topic = unique("quiet");
    bus.create_topic(&topic, 1).await?;
    let mut crew = Crew::new(bus.clone(), &unique("g"), &[&topic]);
    crew.join("idle").await?;
    let every = all(&topic, 1);
    crew.settle("the member holds the partition", |c| {
        c.seats[0].owned == every
    })
    .await?;
    let timeout = Duration::from_millis(150);
    let started = Instant::now();
    let polled = crew.poll(0, timeout).await?;
    let waited = started.elapsed();
    check!(polled.records.is_empty(), "an idle poll returned records");
    check!(
        waited >= timeout / 2,
        "an idle poll returned after {waited:?}"
    );
    Ok(())
}

/// A waiting poll returns as soon as a record arrives, well before its timeout.
pub(super) async fn poll_wakes_on_append(bus: Arc<dyn Bus>) -> Outcome {
    let topic = unique("wake");
    bus.create_topic(&topic, 1).await?;
    let mut crew = Crew::new(bus.clone(), &unique("g"), &[&topic]);
    crew.join("waiter").await?;
    let every = all(&topic, 1);
    crew.settle("the member holds the partition", |c| {
        c.seats[0].owned == every
    })
    .await?;
    let (writer, name) = (bus.clone(), topic.clone());
    let append = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        put(&*writer, &name, Some(0), None, "wake up").await
    });
    let started = Instant::now();
    let timeout = Duration::from_secs(20);
    while crew.received() == 0 && started.elapsed() < timeout {
        crew.poll(0, timeout).await?;
    }
    let waited = started.elapsed();
    append
        .await
        .map_err(|e| Failure(format!("append task failed: {e}")))??;
    check!(crew.received() == 1, "the record never arrived");
    check!(
        waited < timeout / 2,
        "the poll took {waited:?} to see the record"
    );
    check!(
        tp_of(&crew.seats[0].received[0]) == (topic, 0),
        "the record came from elsewhere"
    );
    Ok(())
}
