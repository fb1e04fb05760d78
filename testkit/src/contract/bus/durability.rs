//! Contract cases for durable adapters: topics, records and committed offsets survive closing
//! and reopening the bus, and an acknowledged append is never lost.

use super::harness::{all, check, put, unique, Crew, Failure};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use threds_runtime::bus::{Bus, Error, Position, Record};

/// Appends, commits, reopens, and checks that everything is still there; then appends again,
/// reopens once more, and checks that offsets continued densely.
pub(super) async fn everything_survives_reopen<R, Fut>(
    bus: Arc<dyn Bus>,
    reopen: &mut R,
) -> Result<Arc<dyn Bus>, Failure>
where
    R: FnMut(Arc<dyn Bus>) -> Fut,
    Fut: Future<Output = Arc<dyn Bus>>,
{
    let (logs, single) = (unique("durable"), unique("durable-single"));
    bus.create_topic(&logs, 3).await?;
    bus.create_topic(&single, 1).await?;
    for i in 0..12 {
        let key = format!("key-{i}");
        put(&*bus, &logs, None, Some(&key), &format!("logs-{i}")).await?;
    }
    for i in 0..3 {
        put(&*bus, &single, Some(0), None, &format!("single-{i}")).await?;
    }
    // A burst of concurrent appends right before closing: acknowledged means durable.
    let mut burst = Vec::new();
    for i in 0..64 {
        let (bus, topic) = (bus.clone(), single.clone());
        burst.push(tokio::spawn(async move {
            put(&*bus, &topic, None, None, &format!("burst-{i}")).await
        }));
    }
    for task in burst {
        task.await
            .map_err(|e| Failure(format!("append task failed: {e}")))??;
    }
    let group = unique("g");
    let mut crew = Crew::new(bus.clone(), &group, &[&logs, &single]);
    crew.join("m").await?;
    crew.settle("everything is read before the restart", |c| {
        c.received() >= 79
    })
    .await?;
    let before = by_position(&crew.seats[0].received);
    // Commit one record short of the end of each of the topic's partitions.
    let mut commits = Vec::new();
    for tp in all(&logs, 3) {
        let read = crew.seats[0].offsets_of(&tp).len() as u64;
        if read > 0 {
            commits.push(Position {
                topic: tp.0,
                partition: tp.1,
                offset: read - 1,
            });
        }
    }
    crew.seats[0].consumer.commit(&commits).await?;
    crew.take(0)?.consumer.leave().await?;
    drop(crew);

    let bus = reopen(bus).await;
    check!(
        bus.partitions(&logs).await? == 3,
        "the topic lost its partitions"
    );
    check!(
        bus.partitions(&single).await? == 1,
        "the topic lost its partitions"
    );
    bus.create_topic(&logs, 3).await?;
    match bus.create_topic(&logs, 5).await {
        Err(Error::PartitionMismatch { existing: 3, .. }) => {}
        other => check!(
            false,
            "recreating with 5 partitions after reopening gave {other:?}"
        ),
    }
    let mut fresh = Crew::new(bus.clone(), &unique("g"), &[&logs, &single]);
    fresh.join("n").await?;
    fresh
        .settle("a new group reads everything after the restart", |c| {
            c.received() >= 79
        })
        .await?;
    fresh.round().await?;
    let after = by_position(&fresh.seats[0].received);
    check!(
        after == before,
        "the records read after reopening differ from before"
    );
    fresh.take(0)?.consumer.leave().await?;
    drop(fresh);

    let mut resumed = Crew::new(bus.clone(), &group, &[&logs, &single]);
    resumed.join("m").await?;
    resumed
        .settle("the old group resumes", |c| {
            commits.iter().all(|p| {
                let tp = (p.topic.clone(), p.partition);
                !c.seats[0].offsets_of(&tp).is_empty()
            })
        })
        .await?;
    for p in &commits {
        let tp = (p.topic.clone(), p.partition);
        let committed = resumed.seats[0].consumer.committed(&tp.0, tp.1).await?;
        check!(
            committed == Some(p.offset),
            "{tp:?} committed {committed:?} after reopening"
        );
        let first = resumed.seats[0].first_since_assigned(&tp);
        check!(
            first == Some(p.offset),
            "{tp:?} resumed at {first:?}, not {}",
            p.offset
        );
    }
    resumed.take(0)?.consumer.leave().await?;
    drop(resumed);

    let next = put(&*bus, &single, Some(0), None, "after").await?;
    check!(
        next.offset == 67,
        "the first append after reopening got offset {}",
        next.offset
    );
    let bus = reopen(bus).await;
    let last = put(&*bus, &single, Some(0), None, "last").await?;
    check!(
        last.offset == 68,
        "offsets did not continue after the second reopen"
    );
    let mut check_crew = Crew::new(bus.clone(), &unique("g"), &[&single]);
    check_crew.join("z").await?;
    check_crew
        .settle("the records appended between restarts are read", |c| {
            c.received() >= 69
        })
        .await?;
    let payload = |offset| {
        check_crew.seats[0]
            .received
            .iter()
            .find(|r| r.position.offset == offset)
            .map(|r| r.payload.clone())
    };
    check!(
        payload(67).as_deref() == Some(&b"after"[..]),
        "offset 67 lost its record"
    );
    check!(
        payload(68).as_deref() == Some(&b"last"[..]),
        "offset 68 lost its record"
    );
    check_crew.take(0)?.consumer.leave().await?;
    drop(check_crew);
    Ok(bus)
}

fn by_position(records: &[Record]) -> BTreeMap<Position, Record> {
    records
        .iter()
        .map(|r| (r.position.clone(), r.clone()))
        .collect()
}
