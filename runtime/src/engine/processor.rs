//! Steps of the engine host: prefetch, run the pure core (again after a miss or a conflict),
//! commit atomically with the records' position, publish the messages.
//!
//! A batch of inputs (the consecutive events of one partition, or its due timers) runs as one
//! unit: one prefetch of every thred the batch names, the steps one after the other over that
//! state (each sees the earlier ones' writes), one commit, and the messages appended together.
//! Each step's ids come from its own record, so a batch that is run again — after a conflict, or
//! record by record after a failure — produces the same ids and events.

use super::routing::{self, route, Slots};
use super::view::{Miss, Prefetched};
use super::watch::Watchers;
use super::{MachineHandle, RecordEnv};
use crate::bus::Position;
use crate::bus::{self, partition_for, Append, Bus, Record};
use crate::history::{self, History};
use crate::metrics::{metrics, StepOutcome};
use crate::store::{
    self, Commit, Lease, Outgoing, PatternRegistry, SessionDirectory, ThredWrite, Threds,
};
use crate::telemetry::{spans, traces};
use crate::topology::Topology;
use crate::trace::TraceParent;
use std::sync::Arc;
use std::time::{Duration, Instant};
use threds_patterns::machine::{
    history as log, quota, Input, Machine, Message, Outcome, ThredChange,
};
use threds_patterns::model::Event;
use tracing::Span;

/// Most times one input is re-run after misses or version conflicts before giving up.
const MAX_ATTEMPTS: usize = 16;

/// What happened to a record.
#[derive(Debug)]
pub enum Done {
    /// Applied: its outcome (messages already published).
    Applied(Box<Outcome>),
    /// Already applied before (a redelivery); nothing done.
    Duplicate,
    /// Not an event; the caller dead-letters it with this reason.
    Invalid(String),
    /// A control event (`sysControl`, `userControl`, `dataControl`) for the admin service.
    Control(Event),
}

/// How long an append to one topic may take before the engine stops waiting for it (the default
/// of [`Processor::with_publish_breakers`]).
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a topic whose append stalled is left alone (its records wait in the outbox).
pub const BREAKER_OPEN_FOR: Duration = Duration::from_secs(10);

/// A record of the events topic, sorted out before any step runs.
#[derive(Debug)]
pub enum Incoming {
    /// At or below the applied watermark: applied before.
    Duplicate,
    /// Not an event; the caller dead-letters it with this reason.
    Invalid(String),
    /// An event larger than `[engine] max_event_bytes`: refused (its sender is told, the history
    /// records it), not stepped.
    Oversized {
        /// Its envelope (id, type, source, thred id; not its data).
        event: Event,
        /// Why it was refused.
        reason: String,
    },
    /// A control event (`sysControl`, `userControl`, `dataControl`) for the admin service.
    Control(Event),
    /// An event to step (its time defaulted to now).
    Event(Event),
}

/// Why a step could not complete; the record stays unacknowledged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thred store failed (including `Fenced`: this engine lost its lease).
    #[error(transparent)]
    Store(#[from] store::Error),
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] bus::Error),
    /// The step kept conflicting with concurrent writers.
    #[error("gave up after {MAX_ATTEMPTS} attempts: {0}")]
    Contention(String),
}

/// Runs steps for one engine process.
pub struct Processor {
    engine: MachineHandle,
    threds: Arc<dyn Threds>,
    sessions: Arc<dyn SessionDirectory>,
    bus: Arc<dyn Bus>,
    topology: Topology,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    history: Option<History>,
    watchers: Watchers,
    max_event_bytes: usize,
    breakers: super::breaker::Breakers,
    registry: Option<Arc<dyn PatternRegistry>>,
    last_refresh: std::sync::Mutex<Option<Instant>>,
    slot_routing: bool,
}

/// How often at most a step that meets a pattern version this engine does not hold reads the
/// pattern registry again.
const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(1);

impl Processor {
    /// A processor over `threds` and `bus` for the deployment `topology`, resolving `$all` from
    /// `sessions`.
    pub fn new(
        engine: MachineHandle,
        threds: Arc<dyn Threds>,
        sessions: Arc<dyn SessionDirectory>,
        bus: Arc<dyn Bus>,
        topology: Topology,
        clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    ) -> Processor {
        Processor {
            engine,
            threds,
            sessions,
            bus,
            topology,
            clock,
            history: None,
            watchers: Watchers::default(),
            max_event_bytes: usize::MAX,
            breakers: super::breaker::Breakers::new(PUBLISH_TIMEOUT, BREAKER_OPEN_FOR),
            registry: None,
            last_refresh: std::sync::Mutex::new(None),
            slot_routing: false,
        }
    }

    /// Addresses participants' messages to the delivery slots of the session nodes holding their
    /// connections (one session-directory lookup per batch), dropping and counting those of
    /// participants with none; without it they go to the first recipient's partition of the
    /// sessions topic, for readers of the whole topic.
    pub fn with_slot_routing(mut self) -> Processor {
        self.slot_routing = true;
        self
    }

    /// The delivery slots of the participant recipients of `messages`, when routing by slot:
    /// those of `known` (read ahead) and the others' read now.
    async fn slots_for<'m>(
        &self,
        engine: &'m Machine,
        messages: impl Iterator<Item = &'m Message>,
        known: &Slots,
    ) -> Result<Option<Slots>, Error> {
        if !self.slot_routing {
            return Ok(None);
        }
        let mut slots = Slots::new();
        let mut wanted: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for message in messages {
            for p in routing::participants(engine, message) {
                if !seen.insert(p.as_str()) {
                    continue;
                }
                match known.get(p) {
                    Some(found) => drop(slots.insert(p.clone(), found.clone())),
                    None => wanted.push(p.clone()),
                }
            }
        }
        if !wanted.is_empty() {
            let found = self.sessions.slots_of(&wanted).await?;
            slots.extend(wanted.into_iter().zip(found));
        }
        Ok(Some(slots))
    }

    /// The delivery slots of the senders of `steps`' events, read ahead while their threds load:
    /// a reaction usually answers its sender, whose slot then costs no round trip of its own.
    async fn senders_slots(&self, steps: &[Step]) -> Result<Slots, Error> {
        if !self.slot_routing {
            return Ok(Slots::new());
        }
        let mut senders: Vec<String> = Vec::new();
        for step in steps {
            if let Input::Event(e) = &step.input {
                let sender = e.source_id();
                if !sender.is_empty() && !senders.iter().any(|s| s == sender) {
                    senders.push(sender.to_owned());
                }
            }
        }
        if senders.is_empty() {
            return Ok(Slots::new());
        }
        let found = self.sessions.slots_of(&senders).await?;
        Ok(senders.into_iter().zip(found).collect())
    }

    /// Reads `registry` again when a step meets a thred pinned to a pattern version this engine
    /// does not hold yet (another engine pushed it and the announcement has not arrived).
    pub fn with_registry(mut self, registry: Arc<dyn PatternRegistry>) -> Processor {
        self.registry = Some(registry);
        self
    }

    /// The machine to step `pre`'s threds with: the running one, refreshed from the pattern
    /// registry first when one of them runs a version it does not hold.
    async fn machine_for(&self, pre: &Prefetched) -> Arc<Machine> {
        let engine = self.engine.current();
        let Some(registry) = &self.registry else {
            return engine;
        };
        let patterns = engine.patterns();
        let missing = pre.threds.values().flatten().any(|s| {
            s.state
                .pattern_version
                .is_some_and(|v| patterns.version(&s.state.pattern_id, v).is_none())
        });
        if !missing {
            return engine;
        }
        {
            let Ok(mut last) = self.last_refresh.lock() else {
                return engine;
            };
            if last.is_some_and(|at| at.elapsed() < REFRESH_AT_MOST_EVERY) {
                return engine;
            }
            *last = Some(Instant::now());
        }
        match super::reload::from_registry(registry.as_ref(), &self.engine, 0).await {
            Ok(()) => self.engine.current(),
            Err(e) => {
                tracing::warn!(code = e.code(), error = %e, "a thred runs a pattern version this engine does not hold, and the pattern registry could not be read");
                engine
            }
        }
    }

    /// Refuses records larger than `bytes`, whoever produced them (their senders are told).
    pub fn with_max_event_bytes(mut self, bytes: usize) -> Processor {
        self.max_event_bytes = bytes;
        self
    }

    /// Gives up on an append to a topic after `timeout` and then leaves the topic alone for
    /// `open_for` (its records wait in the outbox): see [`super::breaker`].
    pub fn with_publish_breakers(mut self, timeout: Duration, open_for: Duration) -> Processor {
        self.breakers = super::breaker::Breakers::new(timeout, open_for);
        self
    }

    /// The `watchThreds` registrations.
    pub fn watchers(&self) -> &Watchers {
        &self.watchers
    }

    /// Also records every step's history.
    pub fn with_history(mut self, history: History) -> Processor {
        self.history = Some(history);
        self
    }

    /// The history, when kept.
    pub fn history(&self) -> Option<&History> {
        self.history.as_ref()
    }

    /// The clock (epoch ms).
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// The thred state port.
    pub fn threds(&self) -> &Arc<dyn Threds> {
        &self.threds
    }

    /// The deployment's names.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The patterns in force.
    pub fn engine(&self) -> &MachineHandle {
        &self.engine
    }

    /// The partition that owns thred `id`.
    pub fn partition_of(&self, thred_id: &str) -> u32 {
        partition_for(thred_id, self.topology.partitions())
    }

    /// Sorts out a record of the events topic. `applied` is the partition's applied watermark
    /// (records at or below it were applied before and are skipped).
    pub fn sort(&self, record: &Record, applied: Option<u64>) -> Incoming {
        if applied.is_some_and(|a| record.position.offset <= a) {
            return Incoming::Duplicate;
        }
        if record.payload.len() > self.max_event_bytes {
            let reason = format!(
                "an event of {} bytes exceeds the limit of {} ([engine] max_event_bytes)",
                record.payload.len(),
                self.max_event_bytes
            );
            return match envelope(&record.payload) {
                Ok(event) => Incoming::Oversized { event, reason },
                Err(e) => Incoming::Invalid(format!("{reason}; {e}")),
            };
        }
        match parse(&record.payload) {
            Ok(event) if event.is_system() => {
                Incoming::Control(event.with_default_time(self.now()))
            }
            Ok(event) => Incoming::Event(event.with_default_time(self.now())),
            Err(reason) => Incoming::Invalid(reason),
        }
    }

    /// Processes one record of the events topic (see [`Processor::sort`] for `applied`).
    pub async fn record(
        &self,
        record: &Record,
        applied: Option<u64>,
        lease: Option<&Lease>,
    ) -> Result<Done, Error> {
        match self.sort(record, applied) {
            Incoming::Duplicate => Ok(Done::Duplicate),
            Incoming::Invalid(reason) => Ok(Done::Invalid(reason)),
            Incoming::Control(event) => Ok(Done::Control(event)),
            Incoming::Event(event) => {
                let trace = TraceParent::of_headers(&record.headers);
                let mut outcomes = self
                    .inputs(
                        vec![(record.position.clone(), Input::Event(event), trace)],
                        lease,
                    )
                    .await?;
                Ok(Done::Applied(Box::new(outcomes.pop().unwrap_or_default())))
            }
            Incoming::Oversized { event, reason } => {
                let trace = TraceParent::of_headers(&record.headers);
                let input = Input::Refused { event, reason };
                let mut outcomes = self
                    .inputs(vec![(record.position.clone(), input, trace)], lease)
                    .await?;
                Ok(Done::Applied(Box::new(outcomes.pop().unwrap_or_default())))
            }
        }
    }

    /// Steps consecutive events of one partition of the events topic (in offset order, none a
    /// control event), each with the trace context of its record, as one batch with one commit;
    /// answers their outcomes, in order.
    pub async fn events(
        &self,
        events: Vec<(Position, Event, Option<TraceParent>)>,
        lease: Option<&Lease>,
    ) -> Result<Vec<Outcome>, Error> {
        let inputs = events
            .into_iter()
            .map(|(position, event, trace)| (position, Input::Event(event), trace))
            .collect();
        self.inputs(inputs, lease).await
    }

    /// Steps consecutive inputs of records of one partition (events or refused events), as
    /// [`Processor::events`] does.
    async fn inputs(
        &self,
        events: Vec<(Position, Input, Option<TraceParent>)>,
        lease: Option<&Lease>,
    ) -> Result<Vec<Outcome>, Error> {
        let Some((last, _, _)) = events.last() else {
            return Ok(Vec::new());
        };
        let watermark = (last.topic.clone(), last.partition, last.offset);
        metrics().batch_records.observe(events.len() as f64);
        let now = self.now();
        let group = traces::exporting().then(|| self.topology.engine_group());
        let steps = events
            .into_iter()
            .map(|(position, input, trace)| {
                let env = RecordEnv::new(&position, self.topology.partitions(), now);
                let id = match &input {
                    Input::Event(event) | Input::Refused { event, .. } => event.id().to_owned(),
                    _ => String::new(),
                };
                let span = match &group {
                    Some(group) => spans::process_event(&position, group, &id, trace),
                    None => Span::none(),
                };
                // Exported, the step's context is its span's (one trace id in spans and logs).
                let trace = spans::traceparent(&span).or(trace).unwrap_or_else(|| {
                    let p = &position;
                    spans::root(&format!("{}/{}/{}", p.topic, p.partition, p.offset))
                });
                Step {
                    input,
                    env,
                    trace,
                    span,
                }
            })
            .collect();
        self.steps(steps, Some(watermark), lease).await
    }

    /// Fires the due timers of `partition`; returns the outcomes.
    pub async fn timers(
        &self,
        partition: u32,
        lease: Option<&Lease>,
        limit: usize,
    ) -> Result<Vec<Outcome>, Error> {
        let now = (self.clock)();
        let due = self.threds.due_timers(partition, now, limit).await?;
        let steps = due
            .into_iter()
            .map(|timer| {
                let env = RecordEnv::for_timer(
                    &timer.thred_id,
                    timer.due,
                    partition,
                    self.topology.partitions(),
                    now,
                );
                let span = spans::fire_timer(&timer.thred_id, timer.due);
                let trace = spans::traceparent(&span).unwrap_or_else(|| {
                    spans::root(&format!("timer/{}/{}", timer.thred_id, timer.due))
                });
                Step {
                    input: Input::Timer(timer),
                    env,
                    trace,
                    span,
                }
            })
            .collect::<Vec<_>>();
        if steps.len() < 2 {
            let outcomes = self.steps(steps.clone(), None, lease).await?;
            fired(&steps, now);
            return Ok(outcomes);
        }
        let error = match self.steps(steps.clone(), None, lease).await {
            Ok(outcomes) => {
                fired(&steps, now);
                return Ok(outcomes);
            }
            Err(e @ Error::Store(store::Error::Fenced { .. })) => return Err(e),
            Err(e) => e,
        };
        // One timer's step may be what fails: fire the others without it.
        tracing::warn!(error = %error, timers = steps.len(), "firing due timers together failed; firing them one by one");
        let mut outcomes = Vec::new();
        let mut failed = None;
        for step in steps {
            let thred = match &step.input {
                Input::Timer(t) => t.thred_id.clone(),
                _ => String::new(),
            };
            match self.steps(vec![step.clone()], None, lease).await {
                Ok(mut done) => {
                    fired(std::slice::from_ref(&step), now);
                    outcomes.append(&mut done);
                }
                Err(e) => {
                    tracing::warn!(thred, error = %e, "a due timer could not fire; will retry");
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) if outcomes.is_empty() => Err(e),
            _ => Ok(outcomes),
        }
    }

    /// Runs an admin input (terminate, transition) outside any record.
    pub async fn admin(&self, input: Input, id_seed: &str) -> Result<Outcome, Error> {
        let now = (self.clock)();
        let step = Step {
            input,
            env: RecordEnv::for_timer(id_seed, now, 0, self.topology.partitions(), now),
            trace: TraceParent::root(&format!("admin/{id_seed}/{now}")),
            span: Span::none(),
        };
        let mut outcomes = self.steps(vec![step], None, None).await?;
        Ok(outcomes.pop().unwrap_or_default())
    }

    /// Runs `steps` in order over one view of the store and commits them together (with
    /// `watermark`, under `lease`); then publishes their messages. Runs the batch again from a
    /// fresh read when a thred or counter changed underneath it.
    async fn steps(
        &self,
        steps: Vec<Step>,
        watermark: Option<(String, u32, u64)>,
        lease: Option<&Lease>,
    ) -> Result<Vec<Outcome>, Error> {
        if steps.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let mut pre = Prefetched::default();
        let (loaded, senders) = tokio::join!(
            self.prefetch(steps.iter().map(|s| &s.input), &mut pre),
            self.senders_slots(&steps)
        );
        loaded?;
        let senders = senders?;
        let mut last = String::new();
        for _ in 0..MAX_ATTEMPTS {
            let engine = self.machine_for(&pre).await;
            let (mut commit, outcomes) = self.run(&engine, &mut pre, &steps).await?;
            // Steps of one thred in a batch write it once.
            commit.coalesce();
            commit.applied = watermark.clone().into_iter().collect();
            // The trace context of each outbox record: a child of its step's.
            let mut traces = Vec::new();
            let messages = outcomes.iter().flat_map(|o| &o.messages);
            let slots = self.slots_for(&engine, messages, &senders).await?;
            let mut undeliverable = 0;
            for (step, outcome) in steps.iter().zip(&outcomes) {
                let cause = match &step.input {
                    Input::Event(e) => Some(e.id()),
                    _ => None,
                };
                let (records, dropped) =
                    outgoing(&engine, outcome, &self.topology, slots.as_ref(), cause);
                undeliverable += dropped;
                traces.extend((0..records.len()).map(|n| {
                    Some(Traced {
                        step: step.span.clone(),
                        fallback: step.trace.child(&n.to_string()),
                    })
                }));
                commit.outbox.extend(records);
            }
            if self.history.is_some() {
                // The batch's history goes out with its messages, in the same commit.
                let records = self.history_records(&engine, &steps, &outcomes);
                traces.extend(records.iter().map(|_| None));
                commit.outbox.extend(records);
            }
            let outbox = commit.outbox.clone();
            // Each step's trace shows the commit it was part of.
            let committing: Vec<Span> = match traces::exporting() {
                true => steps
                    .iter()
                    .map(|s| spans::commit(&s.span, steps.len()))
                    .collect(),
                false => Vec::new(),
            };
            let committed = self.threds.commit(lease, commit).await;
            drop(committing);
            match committed {
                Ok(seqs) => {
                    metrics().messages_undeliverable.inc_by(undeliverable);
                    for (step, outcome) in steps.iter().zip(&outcomes) {
                        for failure in &outcome.failures {
                            step.span.in_scope(|| {
                                tracing::warn!(thred = ?failure.thred_id, trace_id = step.trace.trace_id_hex(), error = %failure.detail, "step failed; its sender was notified");
                            });
                        }
                    }
                    self.committed(&engine, &outcomes, outbox, seqs, traces)
                        .await;
                    observe(&outcomes, &pre, started.elapsed());
                    return Ok(outcomes);
                }
                Err(store::Error::Conflict(what)) => {
                    metrics().commit_conflicts.inc();
                    last = what;
                    pre = Prefetched::default();
                    self.prefetch(steps.iter().map(|s| &s.input), &mut pre)
                        .await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Contention(last))
    }

    /// Runs the batch's steps one after the other over `pre` (each seeing the earlier ones'
    /// writes), answering their writes and outcomes. What the steps ask for that `pre` does not
    /// hold is gathered over the whole batch and loaded at once, then the batch runs again: a
    /// batch of steps that each start a thred for another participant reads their counters in
    /// one round trip, not one each (the core is pure, and each step's environment is its
    /// record's own every time).
    async fn run(
        &self,
        engine: &Machine,
        pre: &mut Prefetched,
        steps: &[Step],
    ) -> Result<(Commit, Vec<Outcome>), Error> {
        for _ in 0..MAX_ATTEMPTS {
            let mut commit = Commit::default();
            let mut outcomes = Vec::with_capacity(steps.len());
            let mut misses = Vec::new();
            for step in steps {
                let outcome = step
                    .span
                    .in_scope(|| engine.process(&*pre, &step.input, &mut step.env.clone()));
                misses.extend(pre.take_misses());
                if misses.is_empty() {
                    if !step.span.is_none() {
                        describe(&step.span, &outcome, pre);
                    }
                    self.add_writes(&mut commit, pre, &outcome);
                }
                pre.apply(&outcome);
                outcomes.push(outcome);
            }
            if misses.is_empty() {
                return Ok((commit, outcomes));
            }
            pre.forget_writes();
            self.load(&misses, pre).await?;
        }
        Err(Error::Contention(
            "the steps kept asking for state they had been given".into(),
        ))
    }

    /// What follows a commit: the messages (and history records), watchers.
    async fn committed(
        &self,
        engine: &Machine,
        outcomes: &[Outcome],
        outbox: Vec<Outgoing>,
        seqs: Vec<u64>,
        traces: Vec<Option<Traced>>,
    ) {
        // The steps are committed, and with them their messages (the outbox): a failure to
        // publish them now is the relay's to retry, not a reason to run the records again on
        // top of their own commit.
        let records = seqs
            .into_iter()
            .zip(outbox)
            .zip(traces)
            .map(|((seq, record), trace)| (seq, record, trace))
            .collect();
        if let (_, Some(e)) = self.publish(records).await {
            tracing::warn!(error = %e, "messages of a committed step not yet published; the outbox relay will retry them");
        }
        for outcome in outcomes {
            self.notify_watchers(engine, outcome).await;
        }
    }

    /// The records of the history topic carrying what `steps` did (their `outcomes`).
    fn history_records(
        &self,
        engine: &Machine,
        steps: &[Step],
        outcomes: &[Outcome],
    ) -> Vec<Outgoing> {
        let Some(first) = steps.first() else {
            return Vec::new();
        };
        let now = (self.clock)();
        let mut encoder = history::Encoder::new(&self.topology, &history_key(&first.input));
        for (step, outcome) in steps.iter().zip(outcomes) {
            encoder.step(engine, outcome, step.env.ids(), now);
        }
        encoder.finish()
    }

    /// Loads, in one read, what the inputs obviously need; anything else arrives through misses.
    async fn prefetch<'i>(
        &self,
        inputs: impl Iterator<Item = &'i Input>,
        pre: &mut Prefetched,
    ) -> Result<(), Error> {
        let mut misses = Vec::new();
        let mut unbound = false;
        for input in inputs {
            let id = match input {
                Input::Event(e) => match e.thred_id() {
                    Some(id) => id.to_string(),
                    None => {
                        unbound = true;
                        continue;
                    }
                },
                Input::Timer(t) => t.thred_id.clone(),
                Input::Terminate { thred_id }
                | Input::Transition { thred_id, .. }
                | Input::Migrate { thred_id, .. } => thred_id.clone(),
                // Only the sender is told: nothing to load.
                Input::Refused { .. } => continue,
            };
            misses.push(Miss::Thred(id));
        }
        if unbound {
            pre.unbound = self.threds.unbound_listeners().await?;
            misses.extend(pre.unbound.iter().cloned().map(Miss::Thred));
        }
        self.load(&misses, pre).await
    }

    async fn load(&self, misses: &[Miss], pre: &mut Prefetched) -> Result<(), Error> {
        let mut threds = Vec::new();
        let mut counters = Vec::new();
        for miss in misses {
            match miss {
                Miss::Thred(id) if !pre.knows(id) && !threds.contains(id) => {
                    threds.push(id.clone())
                }
                Miss::Counter(p) if !pre.counters.contains_key(p) && !counters.contains(p) => {
                    counters.push(p.clone())
                }
                Miss::Participants if pre.participants.is_none() => {
                    pre.participants = Some(self.sessions.participants().await?);
                }
                _ => {}
            }
        }
        if !threds.is_empty() {
            for (id, stored) in threds.iter().zip(self.threds.load(&threds).await?) {
                pre.threds.insert(id.clone(), stored);
            }
        }
        if !counters.is_empty() {
            for (id, c) in counters.iter().zip(self.threds.counters(&counters).await?) {
                pre.counters.insert(id.clone(), c);
            }
        }
        Ok(())
    }

    /// Adds a step's thred and counter writes to `commit`, each expecting the version `pre`
    /// holds before the step's changes are laid over it.
    fn add_writes(&self, commit: &mut Commit, pre: &Prefetched, outcome: &Outcome) {
        commit
            .threds
            .extend(outcome.threds.iter().map(|change| match change {
                ThredChange::Saved {
                    state,
                    listens_unbound,
                    timer,
                } => ThredWrite::Save {
                    expected: pre.version(&state.id),
                    partition: self.partition_of(&state.id),
                    timer: timer.clone(),
                    listens_unbound: *listens_unbound,
                    state: state.clone(),
                },
                ThredChange::Removed { state } => ThredWrite::Remove {
                    id: state.id.clone(),
                    expected: pre.version(&state.id),
                    partition: self.partition_of(&state.id),
                },
            }));
        commit.counters.extend(
            outcome
                .counters
                .iter()
                .map(|(p, c)| (p.clone(), pre.counter_version(p), *c)),
        );
    }

    /// Publishes messages that do not come from a step (admin replies, watch notifications).
    pub async fn send(&self, messages: &[Message]) -> Result<(), Error> {
        let engine = self.engine.current();
        let slots = self
            .slots_for(&engine, messages.iter(), &Slots::new())
            .await?;
        for message in messages {
            let split = route(&engine, message, &self.topology, slots.as_ref(), None);
            metrics().messages_undeliverable.inc_by(split.undeliverable);
            for routed in split.records {
                self.bus
                    .append(
                        &routed.topic,
                        routed.partition,
                        routed.key.as_deref(),
                        routed.payload,
                        Vec::new(),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Tells every `watchThreds` registrant about the threds this step changed (best effort).
    async fn notify_watchers(&self, engine: &Machine, outcome: &Outcome) {
        if outcome.threds.is_empty() {
            return;
        }
        let watchers = self.watchers.active((self.clock)());
        if watchers.is_empty() {
            return;
        }
        let mut messages = Vec::new();
        for change in &outcome.threds {
            let state = match change {
                ThredChange::Saved { state, .. } | ThredChange::Removed { state } => state,
            };
            let thred = state.to_json(engine.pattern_of(state).map(|p| p.as_ref()));
            for w in &watchers {
                let event = serde_json::json!({
                    "id": format!("watch-{}-{}-{}", state.id, state.last_update_time, w.participant),
                    "type": threds_patterns::model::event::TELL,
                    "re": w.re,
                    "thredId": threds_patterns::model::event::SYSTEM,
                    "source": threds_patterns::model::Source::system(),
                    "time": (self.clock)(),
                    "data": {"content": {"values": {"threds": [thred]}}}
                });
                if let Ok(event) = Event::from_value(event) {
                    messages.push(Message {
                        to: vec![w.participant.clone()],
                        event,
                    });
                }
            }
        }
        if let Err(e) = self.send(&messages).await {
            tracing::warn!(error = %e, "could not notify thred watchers");
        }
    }

    /// Appends outbox records `(seq, record, trace context)` together, in order, and acknowledges
    /// those that went out; the rest stay in the outbox for the relay. Answers how many went out
    /// and the first failure.
    async fn publish(
        &self,
        records: Vec<(u64, Outgoing, Option<Traced>)>,
    ) -> (usize, Option<Error>) {
        if records.is_empty() {
            return (0, None);
        }
        let mut seqs = Vec::with_capacity(records.len());
        let mut appends = Vec::with_capacity(records.len());
        // Open until the appends are done; each record carries its own span's context.
        let mut sending = Vec::new();
        for (seq, r, trace) in records {
            let header = trace.map(|t| {
                let span = spans::publish(&t.step, &r.topic, r.key.as_deref());
                let context = spans::traceparent(&span).unwrap_or(t.fallback);
                sending.push(span);
                context.to_header()
            });
            seqs.push(seq);
            appends.push(Append {
                topic: r.topic,
                partition: r.partition,
                key: r.key,
                payload: r.payload,
                headers: header.into_iter().collect(),
            });
        }
        // One append per topic, side by side: a topic that fails, or does not answer (its breaker
        // opens), holds back only its own records.
        let mut by_topic: Vec<(String, Vec<(u64, Append)>)> = Vec::new();
        for (seq, append) in seqs.into_iter().zip(appends) {
            match by_topic.iter_mut().find(|(t, _)| *t == append.topic) {
                Some((_, group)) => group.push((seq, append)),
                None => by_topic.push((append.topic.clone(), vec![(seq, append)])),
            }
        }
        let now = Instant::now();
        let tries = by_topic
            .into_iter()
            .filter(|(topic, _)| self.breakers.allows(topic, now))
            .map(|(topic, group)| async move {
                let (seqs, appends): (Vec<u64>, Vec<Append>) = group.into_iter().unzip();
                let appended =
                    tokio::time::timeout(self.breakers.timeout(), self.bus.append_all(appends))
                        .await;
                (topic, seqs, appended)
            });
        let results = futures_util::future::join_all(tries).await;
        drop(sending);
        let mut sent = Vec::new();
        let mut failure = None;
        for (topic, seqs, appended) in results {
            let answered = appended.is_ok();
            let results = match appended {
                Ok(results) => results,
                Err(_) => {
                    let waited = self.breakers.timeout();
                    failure.get_or_insert(Error::Bus(bus::Error::Backend(format!(
                        "appending to {topic} took more than {waited:?}"
                    ))));
                    Vec::new()
                }
            };
            for (seq, result) in seqs.into_iter().zip(results) {
                match result {
                    Ok(_) => sent.push(seq),
                    Err(e) => {
                        failure.get_or_insert(Error::from(e));
                    }
                }
            }
            if self.breakers.record(&topic, answered, Instant::now()) {
                metrics().publish_breaker_opened.inc();
                tracing::warn!(code = crate::codes::UNPUBLISHED, topic, open_for = ?self.breakers.open_for(), "publishing to the topic stalled: its records wait in the outbox, and steps leave it alone for a while");
            }
        }
        if !sent.is_empty() {
            if let Err(e) = self.threds.ack_outbox(&sent).await {
                failure.get_or_insert(Error::from(e));
            }
        }
        (sent.len(), failure)
    }

    /// Republishes outbox records committed more than `grace_ms` ago and still unacknowledged
    /// (a crash between commit and publish, or a failed append); answers how many went out, or
    /// the first failure (records of other topics still went out). Consumers deduplicate by
    /// message id.
    pub async fn relay(&self, grace_ms: i64, limit: usize) -> Result<usize, Error> {
        let pending = self.threds.outbox((self.clock)() - grace_ms, limit).await?;
        metrics()
            .outbox_backlog
            .set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
        let (n, failure) = self
            .publish(
                pending
                    .into_iter()
                    .map(|p| (p.seq, p.record, None))
                    .collect(),
            )
            .await;
        if n > 0 {
            tracing::info!(
                records = n,
                "relayed outbox records left by an interrupted step"
            );
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }
}

/// One input of a batch: what it is, the environment its step runs in, its trace context, and
/// its span (none unless spans are exported).
#[derive(Clone)]
struct Step {
    input: Input,
    env: RecordEnv,
    trace: TraceParent,
    span: Span,
}

/// Where an outbox record's trace context comes from: the span of the step that wrote it when
/// spans are exported, else a deterministic child of the step's context.
struct Traced {
    step: Span,
    fallback: TraceParent,
}

/// Counts fired timers and how late they fired (`now` is when they were read as due).
fn fired(steps: &[Step], now: i64) {
    let m = metrics();
    for step in steps {
        if let Input::Timer(timer) = &step.input {
            m.timers_fired.inc();
            let late_ms = u64::try_from(now - timer.due).unwrap_or(0);
            m.timer_lateness
                .observe(Duration::from_millis(late_ms).as_secs_f64());
        }
    }
}

/// Records what committed steps did: their latency, outcome per pattern, live threds (`pre`: the
/// threds as the steps read them, for the patterns of threds they did not change).
fn observe(outcomes: &[Outcome], pre: &Prefetched, elapsed: Duration) {
    let m = metrics();
    let seconds = elapsed.as_secs_f64();
    for outcome in outcomes {
        m.step_duration.observe(seconds);
        for verdict in verdicts(outcome, pre) {
            m.step(verdict.pattern.unwrap_or(""), verdict.outcome);
        }
        // Participants' and versions' counts stay out of the metrics (one series per
        // participant would not).
        let patterns = outcome
            .counters
            .iter()
            .filter_map(|(key, c)| Some((quota::pattern_of_key(key)?, c)));
        for (pattern, counter) in patterns {
            m.live_threds
                .get_or_create(&crate::metrics::PatternLabel {
                    pattern: pattern.to_owned(),
                })
                .set(i64::try_from(counter.instances).unwrap_or(i64::MAX));
        }
    }
}

/// Puts what a step did on its span: the first reaction that matched (else the first verdict).
fn describe(span: &Span, outcome: &Outcome, pre: &Prefetched) {
    let all = verdicts(outcome, pre);
    let Some(v) = all
        .iter()
        .find(|v| v.outcome == StepOutcome::matched)
        .or(all.first())
    else {
        return;
    };
    spans::record_step(
        span,
        v.pattern.unwrap_or(""),
        v.reaction,
        v.thred_id,
        v.outcome.as_str(),
    );
}

/// What a step did at one thred or pattern, read off its history log records.
struct Verdict<'a> {
    outcome: StepOutcome,
    pattern: Option<&'a str>,
    thred_id: Option<&'a str>,
    reaction: Option<&'a str>,
}

/// The verdicts of a step (`pre`: the threds as it read them, for the patterns of threds it did
/// not change).
fn verdicts<'a>(outcome: &'a Outcome, pre: &'a Prefetched) -> Vec<Verdict<'a>> {
    let mut all = Vec::new();
    for record in &outcome.history {
        let log::Record::Log {
            kind,
            thred_id,
            pattern_id,
            from_reaction,
            ..
        } = record
        else {
            continue;
        };
        let verdict = match kind {
            log::LogKind::Match => StepOutcome::matched,
            log::LogKind::NoMatch | log::LogKind::NoThred | log::LogKind::NoPattern => {
                StepOutcome::no_match
            }
            log::LogKind::Veto => StepOutcome::vetoed,
            log::LogKind::Expired => StepOutcome::expired,
            log::LogKind::SpawnSkipped | log::LogKind::Error => StepOutcome::error,
        };
        let pattern = pattern_id.as_deref().or_else(|| {
            let thred = thred_id.as_deref()?;
            outcome
                .threds
                .iter()
                .find_map(|change| match change {
                    ThredChange::Saved { state, .. } | ThredChange::Removed { state }
                        if state.id == thred =>
                    {
                        Some(state.pattern_id.as_str())
                    }
                    _ => None,
                })
                .or_else(|| {
                    let stored = pre.threds.get(thred)?.as_ref()?;
                    Some(stored.state.pattern_id.as_str())
                })
        });
        all.push(Verdict {
            outcome: verdict,
            pattern,
            thred_id: thred_id.as_deref(),
            reaction: from_reaction.as_deref(),
        });
    }
    all
}

/// The bus records of a step's messages (to `slots` when routing by slot; naming the event that
/// `cause`d them), and how many recipients were dropped for want of a live session.
fn outgoing(
    engine: &Machine,
    outcome: &Outcome,
    topology: &Topology,
    slots: Option<&Slots>,
    cause: Option<&str>,
) -> (Vec<Outgoing>, u64) {
    let mut records = Vec::new();
    let mut undeliverable = 0;
    for message in &outcome.messages {
        let split = route(engine, message, topology, slots, cause);
        undeliverable += split.undeliverable;
        records.extend(split.records.into_iter().map(|r| Outgoing {
            topic: r.topic,
            key: r.key,
            payload: r.payload,
            partition: r.partition,
        }));
    }
    (records, undeliverable)
}

/// The key of a batch's history records: the thred (else the sender) of its first input, whose
/// partition every thred of the batch shares.
fn history_key(input: &Input) -> String {
    match input {
        Input::Event(e) => crate::topology::event_key(e.thred_id(), e.source_id()).to_owned(),
        Input::Timer(t) => t.thred_id.clone(),
        Input::Terminate { thred_id }
        | Input::Transition { thred_id, .. }
        | Input::Migrate { thred_id, .. } => thred_id.clone(),
        Input::Refused { event, .. } => {
            crate::topology::event_key(event.thred_id(), event.source_id()).to_owned()
        }
    }
}

/// Decodes a record payload as an event.
/// The envelope of an event too large to step: its id, type, thred id and source id, read without
/// keeping its data.
fn envelope(payload: &[u8]) -> Result<Event, String> {
    #[derive(serde::Deserialize)]
    struct Source {
        id: serde_json::Value,
    }
    #[derive(serde::Deserialize)]
    struct Envelope {
        id: serde_json::Value,
        #[serde(rename = "type")]
        kind: serde_json::Value,
        #[serde(rename = "thredId", default)]
        thred_id: Option<serde_json::Value>,
        #[serde(default)]
        source: Option<Source>,
    }
    let e: Envelope = serde_json::from_slice(payload)
        .map_err(|e| format!("its envelope could not be read: {e}"))?;
    let mut value = serde_json::json!({"id": e.id, "type": e.kind});
    if let Some(thred) = e.thred_id {
        value["thredId"] = thred;
    }
    if let Some(source) = e.source {
        value["source"] = serde_json::json!({"id": source.id});
    }
    Event::from_value(value).map_err(|e| format!("its envelope is not an event's: {e}"))
}

fn parse(payload: &[u8]) -> Result<Event, String> {
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("record is not JSON: {e}"))?;
    Event::from_value(value).map_err(|e| format!("record is not an event: {e}"))
}
