//! Contract cases for consumer groups: splitting partitions, hand-over on leave, rejoining under
//! the same name, commit ownership, and group independence.

use super::harness::{all, check, put, unique, Crew, Failure, Outcome, Tp};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use threds_runtime::bus::{Bus, Error, Position};

fn at(tp: &Tp, offset: u64) -> Position {
    Position {
        topic: tp.0.clone(),
        partition: tp.1,
        offset,
    }
}

/// Appends `count` records to every partition of `topic`.
async fn fill(bus: &dyn Bus, topic: &str, partitions: u32, count: usize) -> Outcome {
    for p in 0..partitions {
        for i in 0..count {
            put(bus, topic, Some(p), None, &format!("{p}-{i}")).await?;
        }
    }
    Ok(())
}

/// Two members of a group split the partitions with no overlap, and each record reaches exactly
/// one of them: the holder of its partition.
pub(super) async fn two_members_split(bus: Arc<dyn Bus>) -> Outcome {
    let topic = unique("split");
    bus.create_topic(&topic, 4).await?;
    let every = all(&topic, 4);
    let mut crew = Crew::new(bus.clone(), &unique("g"), &[&topic]);
    crew.join("a").await?;
    crew.settle("a holds everything", |c| c.seats[0].owned == every)
        .await?;
    crew.join("b").await?;
    crew.settle("a and b split the partitions", |c| c.split(&every))
        .await?;
    for i in 0..40 {
        let key = format!("key-{i}");
        put(&*bus, &topic, None, Some(&key), &key).await?;
    }
    crew.settle("all 40 records are read", |c| c.received() >= 40)
        .await?;
    crew.round().await?;
    check!(
        crew.received() == 40,
        "{} deliveries of 40 records",
        crew.received()
    );
    for seat in &crew.seats {
        for record in &seat.received {
            let tp = (record.position.topic.clone(), record.position.partition);
            check!(
                seat.owned.contains(&tp),
                "{} read {tp:?} it does not hold",
                seat.name
            );
        }
    }
    Ok(())
}

/// When a member leaves, the other takes its partitions from the committed offsets: what was
/// committed (also by a commit sent without waiting) is not delivered again, what was not is
/// (at-least-once).
pub(super) async fn leave_hands_over_at_committed(bus: Arc<dyn Bus>) -> Outcome {
    let topic = unique("handover");
    bus.create_topic(&topic, 2).await?;
    let every = all(&topic, 2);
    let mut crew = Crew::new(bus.clone(), &unique("g"), &[&topic]);
    crew.join("a").await?;
    crew.join("b").await?;
    crew.settle("a and b split the partitions", |c| c.split(&every))
        .await?;
    fill(&*bus, &topic, 2, 6).await?;
    crew.settle("both read their 6 records", |c| {
        c.seats.iter().all(|s| s.received.len() >= 6)
    })
    .await?;
    let (Some(a_tp), Some(b_tp)) = (
        crew.seats[0].owned.first().cloned(),
        crew.seats[1].owned.first().cloned(),
    ) else {
        return Err(Failure("a member holds nothing".to_owned()));
    };
    // a's commit is sent without waiting: leaving still lands it before the hand-over.
    crew.seats[0].consumer.commit_soon(&[at(&a_tp, 4)]).await?;
    crew.seats[1].consumer.commit(&[at(&b_tp, 6)]).await?;
    let leaver = crew.take(0)?;
    leaver.consumer.leave().await?;
    let b_before = crew.seats[0].offsets_of(&b_tp).len();
    crew.settle("b took a's partition and read its rest", |c| {
        c.seats[0].owned == every && c.seats[0].offsets_of(&a_tp).len() >= 2
    })
    .await?;
    crew.round().await?;
    let b = &crew.seats[0];
    let redelivered = b.offsets_of(&a_tp);
    check!(
        redelivered == [4, 5],
        "after the hand-over b read {redelivered:?} of a's partition, not [4, 5]"
    );
    check!(
        b.offsets_of(&b_tp).len() == b_before,
        "b's own partition was delivered again"
    );
    let committed = b.consumer.committed(&a_tp.0, a_tp.1).await?;
    check!(
        committed == Some(4),
        "a's commit reads back as {committed:?}"
    );
    Ok(())
}

/// Joining again under a member name replaces the old membership: the group still counts two
/// members, and the newcomer resumes from the committed offsets.
pub(super) async fn rejoin_replaces_member(bus: Arc<dyn Bus>) -> Outcome {
    let topic = unique("rejoin");
    bus.create_topic(&topic, 2).await?;
    let every = all(&topic, 2);
    let group = unique("g");
    let mut crew = Crew::new(bus.clone(), &group, &[&topic]);
    crew.join("a").await?;
    crew.join("b").await?;
    crew.settle("a and b split the partitions", |c| c.split(&every))
        .await?;
    fill(&*bus, &topic, 2, 5).await?;
    crew.settle("both read their 5 records", |c| {
        c.seats.iter().all(|s| s.received.len() >= 5)
    })
    .await?;
    let commits: Vec<Position> = crew
        .seats
        .iter()
        .flat_map(|s| s.owned.iter().map(|tp| at(tp, 3)))
        .collect();
    for seat in 0..2 {
        let mine: Vec<Position> = commits
            .iter()
            .filter(|p| {
                crew.seats[seat]
                    .owned
                    .contains(&(p.topic.clone(), p.partition))
            })
            .cloned()
            .collect();
        crew.seats[seat].consumer.commit(&mine).await?;
    }
    // "a" comes back (say, after a crash) while its old handle is still around.
    let stale = crew.take(0)?;
    crew.join("a").await?;
    crew.settle("the new a and b split the partitions", |c| c.split(&every))
        .await?;
    let newcomer = crew.seats.len() - 1;
    crew.settle("the new a read the rest of its partitions", |c| {
        c.seats[newcomer]
            .owned
            .iter()
            .all(|tp| c.seats[newcomer].offsets_of(tp).len() >= 2)
    })
    .await?;
    for tp in crew.seats[newcomer].owned.clone() {
        let first = crew.seats[newcomer].first_since_assigned(&tp);
        check!(
            first == Some(3),
            "the new a resumed {tp:?} at {first:?}, not 3"
        );
    }
    drop(stale);
    crew.round().await?;
    check!(
        crew.split(&every),
        "dropping the stale handle disturbed the group"
    );
    Ok(())
}

/// Committing a partition held by another member fails with `NotAssigned`; commits are
/// visible group-wide.
pub(super) async fn commit_requires_ownership(bus: Arc<dyn Bus>) -> Outcome {
    let topic = unique("owned");
    bus.create_topic(&topic, 2).await?;
    let every = all(&topic, 2);
    let mut crew = Crew::new(bus.clone(), &unique("g"), &[&topic]);
    crew.join("a").await?;
    crew.join("b").await?;
    crew.settle("a and b split the partitions", |c| c.split(&every))
        .await?;
    let (Some(mine), Some(theirs)) = (
        crew.seats[0].owned.first().cloned(),
        crew.seats[1].owned.first().cloned(),
    ) else {
        return Err(Failure("a member holds nothing".to_owned()));
    };
    match crew.seats[0].consumer.commit(&[at(&theirs, 1)]).await {
        Err(Error::NotAssigned { topic, partition })
            if (topic.as_str(), partition) == (theirs.0.as_str(), theirs.1) => {}
        other => check!(
            false,
            "committing another member's partition gave {other:?}"
        ),
    }
    crew.seats[0].consumer.commit(&[at(&mine, 0)]).await?;
    let seen = crew.seats[1].consumer.committed(&mine.0, mine.1).await?;
    check!(
        seen == Some(0),
        "the other member sees the commit as {seen:?}"
    );
    let untouched = crew.seats[1]
        .consumer
        .committed(&theirs.0, theirs.1)
        .await?;
    check!(
        untouched.is_none(),
        "a refused commit was stored: {untouched:?}"
    );
    Ok(())
}

/// Groups read independently: each gets every record, and commits stay in their group; a later
/// member of a group starts at the group's commits.
pub(super) async fn groups_are_independent(bus: Arc<dyn Bus>) -> Outcome {
    let topic = unique("groups");
    bus.create_topic(&topic, 2).await?;
    fill(&*bus, &topic, 2, 4).await?;
    let every = all(&topic, 2);
    let first = unique("g1");
    let mut one = Crew::new(bus.clone(), &first, &[&topic]);
    one.join("x").await?;
    one.settle("group 1 read all 8", |c| c.received() >= 8)
        .await?;
    let commits: Vec<Position> = every.iter().map(|tp| at(tp, 4)).collect();
    one.seats[0].consumer.commit(&commits).await?;
    let mut two = Crew::new(bus.clone(), &unique("g2"), &[&topic]);
    two.join("x").await?;
    two.settle("group 2 read all 8", |c| c.received() >= 8)
        .await?;
    for tp in &every {
        check!(
            two.seats[0].first_since_assigned(tp) == Some(0),
            "group 2 did not start {tp:?} at 0"
        );
        let theirs = two.seats[0].consumer.committed(&tp.0, tp.1).await?;
        check!(theirs.is_none(), "group 1's commit leaked into group 2");
    }
    one.take(0)?.consumer.leave().await?;
    put(&*bus, &topic, Some(0), None, "later").await?;
    let mut again = Crew::new(bus.clone(), &first, &[&topic]);
    again.join("y").await?;
    let zero: Tp = (topic.clone(), 0);
    again
        .settle("the new member of group 1 read the new record", |c| {
            !c.seats[0].offsets_of(&zero).is_empty()
        })
        .await?;
    again.round().await?;
    let read: BTreeSet<u64> = again.seats[0]
        .received
        .iter()
        .map(|r| r.position.offset)
        .collect();
    check!(
        read == BTreeSet::from([4]),
        "group 1's new member read offsets {read:?}, not just 4"
    );
    Ok(())
}

/// A group's lag is what was appended after its committed offsets: everything for a group that
/// committed nothing, less once it commits; bytes, where the adapter counts them, follow.
pub(super) async fn lag_counts_what_the_group_has_not_committed(bus: Arc<dyn Bus>) -> Outcome {
    let topic = unique("lag");
    bus.create_topic(&topic, 2).await?;
    for n in 0..3 {
        put(&*bus, &topic, Some(0), None, &format!("zero-{n}")).await?;
    }
    put(&*bus, &topic, Some(1), None, "one-0").await?;
    let group = unique("g");
    let records = |lags: &[threds_runtime::bus::Lag]| -> Vec<u64> {
        lags.iter().map(|l| l.records).collect()
    };
    let before = bus.lag(&group, &topic).await?;
    check!(
        records(&before) == [3, 1],
        "a group that committed nothing lags {before:?}"
    );
    let mut crew = Crew::new(bus.clone(), &group, &[&topic]);
    crew.join("a").await?;
    let every = all(&topic, 2);
    crew.settle("a holds both partitions", |c| c.seats[0].owned == every)
        .await?;
    crew.seats[0]
        .consumer
        .commit(&[at(&(topic.clone(), 0), 2), at(&(topic.clone(), 1), 1)])
        .await?;
    let after = bus.lag(&group, &topic).await?;
    check!(
        records(&after) == [1, 0],
        "after committing 2 and 1 the group lags {after:?}"
    );
    for (b, a) in before.iter().zip(&after) {
        if let (Some(bytes_before), Some(bytes_after)) = (b.bytes, a.bytes) {
            check!(
                bytes_after < bytes_before && (bytes_after == 0) == (a.records == 0),
                "bytes did not follow the records: {before:?} then {after:?}"
            );
        }
    }
    Ok(())
}

/// A group joined from the end skips what its partitions held when it joined and reads
/// everything appended after — also what comes before its partitions are assigned (a new reader
/// of live traffic neither replays the past nor misses the present); a group joined the usual
/// way on the same topic still reads everything.
pub(super) async fn a_group_joined_from_the_end_reads_only_what_comes_after(
    bus: Arc<dyn Bus>,
) -> Outcome {
    let topic = unique("live");
    bus.create_topic(&topic, 1).await?;
    for i in 0..3 {
        put(&*bus, &topic, Some(0), None, &format!("old-{i}")).await?;
    }
    let mut reader = bus
        .join_from_end(&unique("g"), &[topic.as_str()], "reader")
        .await?;
    // Appended right after joining, before the first poll (so before any assignment).
    put(&*bus, &topic, Some(0), None, "new-0").await?;
    let mut seen: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !seen.iter().any(|p| p == "new-0") {
        check!(
            std::time::Instant::now() < deadline,
            "the record appended right after joining was not read (read: {seen:?})"
        );
        let polled = reader
            .poll(100, std::time::Duration::from_millis(200))
            .await?;
        seen.extend(
            polled
                .records
                .iter()
                .map(|r| String::from_utf8_lossy(&r.payload).into_owned()),
        );
    }
    check!(
        seen == ["new-0"],
        "records from before the join were read: {seen:?}"
    );
    reader.leave().await?;
    let mut crew = Crew::new(bus.clone(), &unique("g"), &[&topic]);
    crew.join("everything").await?;
    crew.settle("a usual group reads the old records too", |c| {
        c.received() > 3
    })
    .await?;
    Ok(())
}

/// A tail reader of one partition reports it assigned, then reads only what is appended to that
/// partition after it was opened — nothing older, nothing of other partitions — and commits
/// nothing.
pub(super) async fn a_tail_reads_one_partition_from_its_end(bus: Arc<dyn Bus>) -> Outcome {
    let topic = unique("slots");
    bus.create_topic(&topic, 3).await?;
    for p in 0..3 {
        put(&*bus, &topic, Some(p), None, &format!("old-{p}")).await?;
    }
    let mut reader = bus.tail(&topic, 1).await?;
    // Appended right after opening, before the first poll.
    for (p, text) in [(1, "new-1a"), (0, "other-0"), (2, "other-2"), (1, "new-1b")] {
        put(&*bus, &topic, Some(p), None, text).await?;
    }
    let first = reader.poll(100, Duration::from_millis(200)).await?;
    check!(
        first.assigned == [(topic.clone(), 1)] && first.records.is_empty(),
        "the first poll did not report the partition assigned alone: {first:?}"
    );
    let mut seen: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < 2 {
        check!(
            std::time::Instant::now() < deadline,
            "the records appended after opening were not read (read: {seen:?})"
        );
        let polled = reader.poll(100, Duration::from_millis(200)).await?;
        for r in &polled.records {
            check!(
                r.position.partition == 1,
                "a record of another partition was read: {r:?}"
            );
        }
        seen.extend(
            polled
                .records
                .iter()
                .map(|r| String::from_utf8_lossy(&r.payload).into_owned()),
        );
    }
    check!(seen == ["new-1a", "new-1b"], "read {seen:?}");
    let at = Position {
        topic: topic.clone(),
        partition: 1,
        offset: 3,
    };
    reader.commit(&[at]).await?;
    check!(
        reader.committed(&topic, 1).await?.is_none(),
        "a tail reader committed"
    );
    check!(
        reader.assignment() == [(topic.clone(), 1)],
        "assignment: {:?}",
        reader.assignment()
    );
    reader.leave().await?;
    check!(
        bus.tail(&topic, 3).await.is_err(),
        "a tail of a partition the topic does not have was opened"
    );
    Ok(())
}
