#![allow(clippy::unwrap_used)]

use super::*;
use crate::bus::{Error, Polled};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// What the scripted consumer was asked to do.
#[derive(Debug, Default)]
struct Log {
    commits: Vec<Vec<Position>>,
    /// Whether each commit waited for its answer.
    waited: Vec<bool>,
    left: bool,
    polls: usize,
}

/// A consumer answering polls from a script (then nothing), recording commits.
struct Scripted {
    script: VecDeque<Result<Polled, Error>>,
    log: Arc<Mutex<Log>>,
    assignment: Vec<TopicPartition>,
    failing_commits: usize,
}

#[async_trait]
impl Consumer for Scripted {
    async fn poll(&mut self, _max: usize, timeout: Duration) -> Result<Polled, Error> {
        self.log.lock().unwrap().polls += 1;
        match self.script.pop_front() {
            Some(answer) => {
                if let Ok(p) = &answer {
                    self.assignment.extend(p.assigned.iter().cloned());
                    self.assignment.retain(|tp| !p.revoked.contains(tp));
                }
                answer
            }
            None => {
                tokio::time::sleep(timeout).await;
                Ok(Polled::default())
            }
        }
    }

    async fn commit(&mut self, offsets: &[Position]) -> Result<(), Error> {
        if self.failing_commits > 0 {
            self.failing_commits -= 1;
            return Err(Error::Backend("commit refused".into()));
        }
        let mut log = self.log.lock().unwrap();
        log.commits.push(offsets.to_vec());
        log.waited.push(true);
        Ok(())
    }

    async fn commit_soon(&mut self, offsets: &[Position]) -> Result<(), Error> {
        self.commit(offsets).await?;
        if let Some(waited) = self.log.lock().unwrap().waited.last_mut() {
            *waited = false;
        }
        Ok(())
    }

    async fn committed(&self, _topic: &str, _partition: u32) -> Result<Option<u64>, Error> {
        Ok(None)
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        self.assignment.clone()
    }

    async fn leave(self: Box<Self>) -> Result<(), Error> {
        self.log.lock().unwrap().left = true;
        Ok(())
    }
}

fn scripted(script: Vec<Result<Polled, Error>>) -> (Box<dyn Consumer>, Arc<Mutex<Log>>) {
    let log = Arc::new(Mutex::new(Log::default()));
    let consumer = Scripted {
        script: script.into(),
        log: log.clone(),
        assignment: Vec::new(),
        failing_commits: 0,
    };
    (Box::new(consumer), log)
}

fn record(partition: u32, offset: u64) -> Record {
    Record {
        position: Position {
            topic: "t".into(),
            partition,
            offset,
        },
        key: None,
        payload: Vec::new(),
        headers: Vec::new(),
        timestamp: 0,
    }
}

fn next(partition: u32, offset: u64) -> Position {
    Position {
        topic: "t".into(),
        partition,
        offset,
    }
}

fn batch(assigned: &[u32], records: &[(u32, u64)]) -> Result<Polled, Error> {
    Ok(Polled {
        revoked: Vec::new(),
        assigned: assigned.iter().map(|p| ("t".to_string(), *p)).collect(),
        records: records.iter().map(|(p, o)| record(*p, *o)).collect(),
    })
}

/// Handles every record at once, except those listed as poison (then it fails fatally), and
/// stops the run (by cancelling) once it has seen `stop_after` records.
struct Counting {
    seen: Vec<(u32, u64)>,
    poison: Option<(u32, u64)>,
    stop_after: usize,
    shutdown: CancellationToken,
    /// What [`Handler::busy`] answers.
    busy: bool,
}

#[async_trait(?Send)]
impl Handler for Counting {
    async fn handle(&mut self, records: Vec<Record>) -> Result<Vec<Position>, Fatal> {
        let mut handled = Vec::new();
        for r in records {
            let at = (r.position.partition, r.position.offset);
            if Some(at) == self.poison {
                return Err(Fatal::new(format!("poison at {at:?}")));
            }
            self.seen.push(at);
            handled.push(next(at.0, at.1 + 1));
        }
        if self.seen.len() >= self.stop_after {
            self.shutdown.cancel();
        }
        Ok(handled)
    }

    fn busy(&self) -> bool {
        self.busy
    }
}

fn counting(stop_after: usize, shutdown: &CancellationToken) -> Counting {
    Counting {
        seen: Vec::new(),
        poison: None,
        stop_after,
        shutdown: shutdown.clone(),
        busy: false,
    }
}

#[derive(Default)]
struct Seen {
    failures: Mutex<Vec<Stage>>,
    polled: Mutex<usize>,
}

impl Observer for Seen {
    fn polled(&self, _: &str, records: &[Record]) {
        *self.polled.lock().unwrap() += records.len();
    }
    fn failed(&self, _: &str, stage: Stage, _: &Error) {
        self.failures.lock().unwrap().push(stage);
    }
}

#[tokio::test(start_paused = true)]
async fn handled_records_are_committed_at_the_highest_next_offset_per_partition() {
    let shutdown = CancellationToken::new();
    let (consumer, log) = scripted(vec![batch(
        &[0, 1],
        &[(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)],
    )]);
    let mut handler = counting(5, &shutdown);
    run(
        consumer,
        &mut handler,
        &Options::new("test"),
        &Unobserved,
        &shutdown,
    )
    .await
    .unwrap();
    let log = log.lock().unwrap();
    assert_eq!(log.commits, [vec![next(0, 3), next(1, 2)]]);
    assert!(log.left, "left the group");
}

#[tokio::test(start_paused = true)]
async fn a_failing_poll_is_retried_after_a_doubling_backoff() {
    let shutdown = CancellationToken::new();
    let down = || Err(Error::Backend("broker down".into()));
    let (consumer, log) = scripted(vec![down(), down(), down(), batch(&[0], &[(0, 0)])]);
    let mut handler = counting(1, &shutdown);
    let observer = Seen::default();
    let started = tokio::time::Instant::now();
    run(
        consumer,
        &mut handler,
        &Options::new("test"),
        &observer,
        &shutdown,
    )
    .await
    .unwrap();
    // 200 + 400 + 800 ms of (virtual) backoff before the fourth poll.
    assert_eq!(started.elapsed(), Duration::from_millis(1_400));
    assert_eq!(*observer.failures.lock().unwrap(), [Stage::Poll; 3]);
    assert_eq!(*observer.polled.lock().unwrap(), 1);
    assert_eq!(log.lock().unwrap().commits, [vec![next(0, 1)]]);
}

#[tokio::test(start_paused = true)]
async fn a_fatal_handler_error_stops_the_driver_after_committing_what_was_handled() {
    let shutdown = CancellationToken::new();
    let (consumer, log) = scripted(vec![
        batch(&[0], &[(0, 0), (0, 1)]),
        batch(&[], &[(0, 2), (0, 3)]),
    ]);
    let mut handler = counting(100, &shutdown);
    handler.poison = Some((0, 3));
    let fatal = run(
        consumer,
        &mut handler,
        &Options::new("test"),
        &Unobserved,
        &shutdown,
    )
    .await
    .unwrap_err();
    assert_eq!(fatal.to_string(), "poison at (0, 3)");
    let log = log.lock().unwrap();
    assert_eq!(
        log.commits,
        [vec![next(0, 2)]],
        "the poison's batch is not committed: redelivered to the next member"
    );
    assert!(log.left);
}

#[tokio::test(start_paused = true)]
async fn a_revoked_partition_is_not_committed_and_a_failed_commit_is_retried() {
    let shutdown = CancellationToken::new();
    let log = Arc::new(Mutex::new(Log::default()));
    let consumer = Scripted {
        script: vec![
            batch(&[0, 1], &[(0, 0), (1, 0)]),
            Ok(Polled {
                revoked: vec![("t".into(), 1)],
                assigned: Vec::new(),
                records: vec![record(0, 1)],
            }),
        ]
        .into(),
        log: log.clone(),
        assignment: Vec::new(),
        failing_commits: 1,
    };
    let mut handler = counting(3, &shutdown);
    run(
        Box::new(consumer),
        &mut handler,
        &Options::new("test"),
        &Unobserved,
        &shutdown,
    )
    .await
    .unwrap();
    // The first commit (0→1, 1→1) failed; partition 1 moved away meanwhile, so the retry
    // commits partition 0 only, at its newer offset.
    assert_eq!(log.lock().unwrap().commits, [vec![next(0, 2)]]);
}

/// Takes records and finishes them only when told (a handler with work in flight).
struct Deferred {
    taken: Vec<Position>,
    finish: tokio::sync::mpsc::UnboundedReceiver<()>,
    drained: bool,
}

#[async_trait(?Send)]
impl Handler for Deferred {
    async fn handle(&mut self, records: Vec<Record>) -> Result<Vec<Position>, Fatal> {
        self.taken.extend(records.iter().map(|r| Position {
            offset: r.position.offset + 1,
            ..r.position.clone()
        }));
        Ok(Vec::new())
    }

    async fn progress(&mut self) -> Result<Vec<Position>, Fatal> {
        match self.finish.recv().await {
            Some(()) => Ok(self.taken.drain(..1.min(self.taken.len())).collect()),
            None => std::future::pending().await,
        }
    }

    fn busy(&self) -> bool {
        !self.taken.is_empty()
    }

    async fn drain(&mut self) -> Vec<Position> {
        self.drained = true;
        std::mem::take(&mut self.taken)
    }
}

/// A [`Deferred`] handler and the sender that finishes its oldest record.
fn deferred() -> (Deferred, tokio::sync::mpsc::UnboundedSender<()>) {
    let (tell, finish) = tokio::sync::mpsc::unbounded_channel();
    let handler = Deferred {
        taken: Vec::new(),
        finish,
        drained: false,
    };
    (handler, tell)
}

#[tokio::test(start_paused = true)]
async fn work_finished_later_is_committed_and_shutdown_drains_the_rest() {
    let shutdown = CancellationToken::new();
    let (consumer, log) = scripted(vec![batch(&[0, 1], &[(0, 0), (1, 0)])]);
    let (mut handler, tell) = deferred();
    let stop = shutdown.clone();
    let log_seen = log.clone();
    let driver = async {
        run(
            consumer,
            &mut handler,
            &Options::new("test"),
            &Unobserved,
            &shutdown,
        )
        .await
    };
    let script = async move {
        // Finish the first record once both were taken, wait for its commit, then shut down.
        while log_seen.lock().unwrap().polls < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tell.send(()).unwrap();
        while log_seen.lock().unwrap().commits.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.cancel();
    };
    let (result, ()) = tokio::join!(driver, script);
    result.unwrap();
    assert!(handler.drained);
    let log = log.lock().unwrap();
    assert_eq!(log.commits, [vec![next(0, 1)], vec![next(1, 1)]]);
    assert_eq!(
        log.waited,
        [false, true],
        "commits while running do not wait; the last one does"
    );
    assert!(log.left);
}

#[tokio::test(start_paused = true)]
async fn with_a_commit_interval_what_was_handled_meanwhile_is_committed_together_once_it_passed() {
    let shutdown = CancellationToken::new();
    let (consumer, log) = scripted(vec![
        batch(&[0, 1], &[(0, 0)]),
        batch(&[], &[(1, 0), (0, 1)]),
        batch(&[], &[(0, 2)]),
    ]);
    let mut handler = counting(usize::MAX, &shutdown);
    handler.busy = true;
    let every = Duration::from_secs(1);
    let options = Options::new("test").commit_every(every);
    let started = tokio::time::Instant::now();
    let stop = shutdown.clone();
    let log_seen = log.clone();
    let driver = async { run(consumer, &mut handler, &options, &Unobserved, &shutdown).await };
    let script = async move {
        while log_seen.lock().unwrap().commits.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let at = started.elapsed();
        stop.cancel();
        at
    };
    let (result, committed_after) = tokio::join!(driver, script);
    result.unwrap();
    assert!(
        committed_after >= every,
        "no commit before the interval passed: {committed_after:?}"
    );
    let log = log.lock().unwrap();
    assert_eq!(
        log.commits,
        [vec![next(0, 3), next(1, 1)]],
        "one commit of everything handled meanwhile, none at shutdown (nothing left)"
    );
}

#[tokio::test(start_paused = true)]
async fn with_a_commit_interval_work_is_committed_at_once_when_nothing_else_is_in_hand() {
    let shutdown = CancellationToken::new();
    let (consumer, log) = scripted(vec![batch(&[0, 1], &[(0, 0), (1, 0)])]);
    let (mut handler, tell) = deferred();
    let every = Duration::from_secs(60);
    let options = Options::new("test").commit_every(every);
    let started = tokio::time::Instant::now();
    let stop = shutdown.clone();
    let log_seen = log.clone();
    let driver = async { run(consumer, &mut handler, &options, &Unobserved, &shutdown).await };
    let script = async move {
        while log_seen.lock().unwrap().polls < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The first record finishes while the second is in hand: not committed yet. Once the
        // second finishes too, both go out together, long before the interval.
        tell.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let early = log_seen.lock().unwrap().commits.clone();
        tell.send(()).unwrap();
        while log_seen.lock().unwrap().commits.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let at = started.elapsed();
        stop.cancel();
        (early, at)
    };
    let (result, (early, committed_after)) = tokio::join!(driver, script);
    result.unwrap();
    assert!(early.is_empty(), "committed while busy: {early:?}");
    assert!(
        committed_after < every,
        "an idle handler's work waited for the interval: {committed_after:?}"
    );
    let log = log.lock().unwrap();
    assert_eq!(log.commits, [vec![next(0, 1), next(1, 1)]]);
    assert_eq!(log.waited, [false]);
}
