//! Supervision: an actor that keeps one service running — a consumer loop, say — and restarts it
//! when it fails or panics, after a backoff that doubles up to a limit, logging why each time.
//! The service ends for good when it returns `Ok` (its shutdown token was cancelled).

use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use threds_runtime::bus::driver::{self, Fatal, Handler};
use threds_runtime::bus::Bus;
use threds_runtime::telemetry::Metered;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

/// Starts one run of a supervised service.
pub type Start = Box<dyn FnMut() -> LocalBoxFuture<'static, Result<(), Fatal>>>;

/// The first wait before a restart.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait before a restart.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A run that lasted this long resets the backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

/// Keeps a service running (see the module docs).
pub struct Supervisor {
    name: String,
    start: Start,
    backoff: Duration,
    restarts: Arc<AtomicU64>,
    done: Option<oneshot::Sender<()>>,
}

/// What the starter of a supervised service keeps.
pub struct Supervised {
    /// The service's name.
    pub name: String,
    /// Completes once the service ended for good.
    pub stopped: oneshot::Receiver<()>,
    /// How many times it was restarted.
    pub restarts: Arc<AtomicU64>,
}

impl Supervisor {
    /// Supervises the service `start` starts, called `name` in logs, on the current arbiter.
    pub fn spawn(name: impl Into<String>, start: Start) -> Supervised {
        let (done, stopped) = oneshot::channel();
        let restarts = Arc::new(AtomicU64::new(0));
        let name = name.into();
        Supervisor {
            name: name.clone(),
            start,
            backoff: FIRST_BACKOFF,
            restarts: restarts.clone(),
            done: Some(done),
        }
        .start();
        Supervised {
            name,
            stopped,
            restarts,
        }
    }

    /// Runs the service once; when it fails, schedules the next run.
    fn launch(&mut self, ctx: &mut Context<Self>) {
        let began = Instant::now();
        let run = AssertUnwindSafe((self.start)()).catch_unwind();
        ctx.spawn(run.into_actor(self).map(move |outcome, act, ctx| {
            let why = match outcome {
                Ok(Ok(())) => {
                    ctx.stop();
                    return;
                }
                Ok(Err(fatal)) => threds_runtime::codes::chain(&fatal),
                Err(panic) => format!("panicked: {}", threds_runtime::engine::partition::panic_text(panic.as_ref())),
            };
            if began.elapsed() >= HEALTHY_RUN {
                act.backoff = FIRST_BACKOFF;
            }
            let restarts = act.restarts.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(code = threds_runtime::codes::RESTARTED, service = %act.name, error = %why, restarts, restart_in = ?act.backoff, "service failed; restarting it");
            ctx.run_later(act.backoff, |act, ctx| act.launch(ctx));
            act.backoff = (act.backoff * 2).min(MAX_BACKOFF);
        }));
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.launch(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
    }
}

/// What a supervised consumer reads and how.
pub struct Consumption {
    /// The bus.
    pub bus: Arc<dyn Bus>,
    /// Its consumer group.
    pub group: String,
    /// The topics it reads.
    pub topics: Vec<String>,
    /// This process's member name.
    pub member: String,
    /// How it polls.
    pub options: driver::Options,
    /// Ends it for good.
    pub shutdown: CancellationToken,
    /// As a group member, or one partition outside any group.
    pub reading: Reading,
}

/// How a supervised consumer reads.
pub enum Reading {
    /// As a member of its group, from the group's committed offsets.
    Group,
    /// The partition of its (one) topic that the receiver names, once it names one, from that
    /// partition's end ([`Bus::tail`]); a new partition named restarts the run on it.
    Tail(watch::Receiver<Option<u32>>),
}

/// Supervises a consumer: each run joins the group and drives a handler made by `make` until
/// shutdown; a failed join or a [`Fatal`] handler error restarts the run.
pub fn consume<H, M>(consumption: Consumption, make: M) -> Supervised
where
    H: Handler + 'static,
    M: Fn() -> H + 'static,
{
    let consumption = Rc::new(consumption);
    let make = Rc::new(make);
    let name = consumption.options.name.clone();
    Supervisor::spawn(
        name,
        Box::new(move || {
            let (c, make) = (consumption.clone(), make.clone());
            async move {
                let topics: Vec<&str> = c.topics.iter().map(String::as_str).collect();
                let mut slot = match &c.reading {
                    Reading::Group => None,
                    Reading::Tail(slot) => Some(slot.clone()),
                };
                let (joined, stop) = match slot.as_mut() {
                    None => (
                        c.bus.join(&c.group, &topics, &c.member).await,
                        c.shutdown.clone(),
                    ),
                    Some(slot) => {
                        let Some(partition) = named(slot, &c.shutdown).await else {
                            return Ok(());
                        };
                        let topic = topics.first().copied().unwrap_or_default();
                        let stop = c.shutdown.child_token();
                        actix_web::rt::spawn(moved(slot.clone(), partition, stop.clone()));
                        (c.bus.tail(topic, partition).await, stop)
                    }
                };
                let consumer = joined.map_err(|e| {
                    Fatal::caused(format!("joining {} on {}", c.group, c.topics.join(", ")), e)
                })?;
                let mut handler = make();
                driver::run(consumer, &mut handler, &c.options, &Metered, &stop).await?;
                match c.shutdown.is_cancelled() {
                    true => Ok(()),
                    false => Err(Fatal::new("its partition changed")),
                }
            }
            .boxed_local()
        }),
    )
}

/// The partition `slot` names, once it names one; `None` on shutdown.
async fn named(
    slot: &mut watch::Receiver<Option<u32>>,
    shutdown: &CancellationToken,
) -> Option<u32> {
    loop {
        if let Some(partition) = *slot.borrow_and_update() {
            return Some(partition);
        }
        tokio::select! {
            changed = slot.changed() => changed.ok()?,
            () = shutdown.cancelled() => return None,
        }
    }
}

/// Cancels `stop` once `slot` names another partition than `partition` (or none).
async fn moved(mut slot: watch::Receiver<Option<u32>>, partition: u32, stop: CancellationToken) {
    loop {
        tokio::select! {
            changed = slot.changed() => {
                if changed.is_err() || *slot.borrow_and_update() != Some(partition) {
                    stop.cancel();
                    return;
                }
            }
            () = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::cell::Cell;

    #[actix_rt::test]
    async fn a_failing_or_panicking_service_is_restarted_until_it_ends() {
        let runs = Rc::new(Cell::new(0u32));
        let counted = runs.clone();
        let supervised = Supervisor::spawn(
            "flaky",
            Box::new(move || {
                let run = counted.get() + 1;
                counted.set(run);
                async move {
                    match run {
                        1 => Err(Fatal::new("backend unavailable")),
                        2 => panic!("poisoned"),
                        _ => Ok(()),
                    }
                }
                .boxed_local()
            }),
        );
        tokio::time::timeout(Duration::from_secs(10), supervised.stopped)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(runs.get(), 3, "ran until it ended by itself");
        assert_eq!(supervised.restarts.load(Ordering::Relaxed), 2);
    }
}
