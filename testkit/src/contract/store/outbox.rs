//! Cases of the [`Threds`] suite for the transactional outbox: a commit's bus records are kept,
//! numbered and stamped with its commit time, if and only if the commit is applied, until
//! acknowledged (a fenced commit's records: see the `fencing` suite).

use super::{conflict, must, save, thred, writes, ManualClock, START};
use std::sync::Arc;
use threds_runtime::store::{Commit, Outgoing, Pending, Threds};

/// A bus record to send.
pub(super) fn outgoing(topic: &str, key: Option<&str>, payload: &[u8]) -> Outgoing {
    Outgoing {
        topic: topic.to_string(),
        key: key.map(str::to_string),
        payload: payload.to_vec(),
        partition: None,
    }
}

/// A commit of outbox records only.
pub(super) fn sending(outbox: Vec<Outgoing>) -> Commit {
    Commit {
        outbox,
        ..Commit::default()
    }
}

/// The pending entry the store must list for `record`, numbered `seq`, committed at `at`.
pub(super) fn pending(seq: u64, at: i64, record: Outgoing) -> Pending {
    Pending { seq, at, record }
}

/// Every unacknowledged entry.
pub(super) async fn all(store: &dyn Threds) -> Vec<Pending> {
    must("outbox", store.outbox(i64::MAX, usize::MAX).await)
}

/// Sequence numbers of `entries`.
fn seqs(entries: &[Pending]) -> Vec<u64> {
    entries.iter().map(|p| p.seq).collect()
}

/// Asserts `seqs` strictly increase.
pub(super) fn rising(what: &str, seqs: &[u64]) {
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "{what}: sequence numbers must strictly increase: {seqs:?}"
    );
}

/// A commit's entries come back in order, numbered in increasing order and stamped with the
/// commit time; its bytes and chosen partition are kept as given; reading consumes nothing.
pub(super) async fn order(store: Arc<dyn Threds>, clock: ManualClock) {
    let store = store.as_ref();
    let a = outgoing("out", Some("alice"), b"{\"n\":1}");
    let b = outgoing("out", None, &[0, 159, 146, 150, 255]);
    let c = Outgoing {
        partition: Some(7),
        ..outgoing("sessions", Some("s1"), b"")
    };
    assert!(all(store).await.is_empty(), "empty store");

    let first = Commit {
        threds: vec![save(thred("t1", 1), None)],
        outbox: vec![a.clone(), b.clone()],
        ..Commit::default()
    };
    let first = must("first", store.commit(None, first).await);
    assert_eq!(first.len(), 2, "one sequence number per entry");
    rising("first", &first);
    let none = must("no outbox", store.commit(None, writes(vec![])).await);
    assert!(none.is_empty(), "no entries, no sequence numbers: {none:?}");

    clock.advance(10);
    let second = Commit {
        threds: vec![save(thred("t1", 2), Some(1))],
        outbox: vec![c.clone()],
        ..Commit::default()
    };
    let second = must("second", store.commit(None, second).await);
    assert_eq!(second.len(), 1);
    let numbers = [first.as_slice(), second.as_slice()].concat();
    rising("across commits", &numbers);

    let expected = vec![
        pending(first[0], START, a),
        pending(first[1], START, b),
        pending(second[0], START + 10, c),
    ];
    assert_eq!(all(store).await, expected);
    assert_eq!(all(store).await, expected, "reading consumes nothing");
}

/// A refused commit (conflict) leaves no outbox entry; later numbers still rise.
pub(super) async fn refused(store: Arc<dyn Threds>, clock: ManualClock) {
    let store = store.as_ref();
    let kept = outgoing("out", Some("k"), b"kept");
    let setup = Commit {
        threds: vec![save(thred("t1", 1), None)],
        outbox: vec![kept.clone()],
        ..Commit::default()
    };
    let setup = must("setup", store.commit(None, setup).await);

    let stale = Commit {
        threds: vec![save(thred("t1", 2), None)],
        outbox: vec![outgoing("out", None, b"lost")],
        ..Commit::default()
    };
    conflict("stale", store.commit(None, stale).await);
    assert_eq!(
        all(store).await,
        vec![pending(setup[0], START, kept.clone())]
    );

    clock.advance(1000);
    let next = Commit {
        threds: vec![save(thred("t1", 2), Some(1))],
        outbox: vec![outgoing("out", None, b"late")],
        ..Commit::default()
    };
    let sent = must("next", store.commit(None, next).await);
    assert_eq!(sent.len(), 1);
    assert!(sent[0] > setup[0], "numbers rise: {sent:?} after {setup:?}");
    let expected = vec![
        pending(setup[0], START, kept),
        pending(sent[0], START + 1000, outgoing("out", None, b"late")),
    ];
    assert_eq!(all(store).await, expected);
}

/// `before` keeps entries committed at or before it; `limit` keeps the oldest; both by seq.
pub(super) async fn window(store: Arc<dyn Threds>, clock: ManualClock) {
    let store = store.as_ref();
    let record = |n: u8| outgoing("out", None, &[n]);
    let mut numbers = must(
        "at 0",
        store
            .commit(None, sending(vec![record(1), record(2)]))
            .await,
    );
    clock.advance(100);
    numbers.extend(must(
        "at 100",
        store.commit(None, sending(vec![record(3)])).await,
    ));
    clock.advance(100);
    let late = sending(vec![record(4), record(5)]);
    numbers.extend(must("at 200", store.commit(None, late).await));
    assert_eq!(numbers.len(), 5);
    rising("window", &numbers);

    let listed = |before: i64, limit: usize| async move {
        seqs(&must("outbox", store.outbox(before, limit).await))
    };
    assert!(listed(START - 1, 10).await.is_empty(), "nothing that old");
    assert_eq!(listed(START, 10).await, numbers[..2], "at before is kept");
    assert_eq!(listed(START + 99, 10).await, numbers[..2]);
    assert_eq!(listed(START + 100, 10).await, numbers[..3]);
    assert_eq!(listed(START + 200, 10).await, numbers);
    assert_eq!(listed(i64::MAX, 10).await, numbers);
    assert_eq!(
        listed(START + 150, 2).await,
        numbers[..2],
        "limit keeps the oldest"
    );
    assert_eq!(listed(i64::MAX, 4).await, numbers[..4]);
    assert!(listed(i64::MAX, 0).await.is_empty(), "limit 0");
    let stamps: Vec<i64> = all(store).await.iter().map(|p| p.at).collect();
    assert_eq!(
        stamps,
        vec![START, START, START + 100, START + 200, START + 200]
    );
}

/// `ack_outbox` deletes exactly the given entries; unknown and repeated numbers are ignored; a
/// number is never given again.
pub(super) async fn ack(store: Arc<dyn Threds>, _clock: ManualClock) {
    let store = store.as_ref();
    let records: Vec<Outgoing> = (1..=4)
        .map(|n: u8| outgoing("out", Some("k"), &[n]))
        .collect();
    let numbers = must("send", store.commit(None, sending(records.clone())).await);
    assert_eq!(numbers.len(), 4);

    let unknown = numbers[3] + 1000;
    let acked = [numbers[1], numbers[3], unknown, numbers[1]];
    must("ack", store.ack_outbox(&acked).await);
    let left = vec![
        pending(numbers[0], START, records[0].clone()),
        pending(numbers[2], START, records[2].clone()),
    ];
    assert_eq!(all(store).await, left);
    must("ack again", store.ack_outbox(&acked).await);
    must("ack nothing", store.ack_outbox(&[]).await);
    assert_eq!(all(store).await, left, "already acknowledged: no effect");

    must(
        "ack rest",
        store.ack_outbox(&[numbers[2], numbers[0]]).await,
    );
    assert!(all(store).await.is_empty());
    let next = must(
        "send",
        store.commit(None, sending(vec![records[0].clone()])).await,
    );
    assert_eq!(next.len(), 1);
    assert!(
        next[0] > numbers[3],
        "numbers are not reused after acknowledgement: {next:?} after {numbers:?}"
    );
    assert_eq!(
        all(store).await,
        vec![pending(next[0], START, records[0].clone())]
    );
}

/// A commit of many records (more than any one script call adds at once) lists them all in
/// order, each numbered once; acknowledging them all in one call empties the outbox.
pub(super) async fn large(store: Arc<dyn Threds>, _clock: ManualClock) {
    let store = store.as_ref();
    let records: Vec<Outgoing> = (0..4_321u32)
        .map(|n| Outgoing {
            partition: (n % 3 == 0).then_some(n % 5),
            ..outgoing("out", (n % 2 == 0).then_some("k"), &n.to_be_bytes())
        })
        .collect();
    let numbers = must("send", store.commit(None, sending(records.clone())).await);
    assert_eq!(numbers.len(), records.len(), "one number per record");
    rising("large", &numbers);
    let listed = all(store).await;
    let expected: Vec<Pending> = numbers
        .iter()
        .zip(&records)
        .map(|(seq, r)| pending(*seq, START, r.clone()))
        .collect();
    assert!(
        listed == expected,
        "every record listed once, in order, as given"
    );
    must("ack all", store.ack_outbox(&numbers).await);
    assert!(all(store).await.is_empty(), "acknowledged: nothing left");
}
