//! The engine host: turns records of the events topic and due timers into steps of the pure core,
//! commits their outcomes to the thred store and routes their messages to topics. Actors drive it;
//! it holds no pattern logic of its own.

pub mod admin;
pub mod breaker;
pub mod control;
mod env;
pub mod lanes;
pub mod pages;
pub mod partition;
mod processor;
pub mod reload;
mod routing;
mod view;
pub mod watch;

pub use env::RecordEnv;
pub use processor::{Done, Error, Incoming, Processor};
pub use routing::route;
pub use view::{Miss, Prefetched};

use std::sync::{Arc, RwLock};
use threds_patterns::machine::Machine;

/// The current compiled patterns, replaceable at run time (pattern reloads).
#[derive(Debug, Clone, Default)]
pub struct MachineHandle(Arc<RwLock<Arc<Machine>>>);

impl MachineHandle {
    /// A handle on `engine`.
    pub fn new(engine: Machine) -> Self {
        MachineHandle(Arc::new(RwLock::new(Arc::new(engine))))
    }

    /// The engine in force now.
    pub fn current(&self) -> Arc<Machine> {
        match self.0.read() {
            Ok(e) => e.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the engine (new patterns); steps already running finish with the old one. The
    /// quotas are the deployment's, not the patterns': the running engine's carry over.
    pub fn replace(&self, engine: Machine) {
        let engine = engine.with_quotas(self.current().quotas());
        match self.0.write() {
            Ok(mut e) => *e = Arc::new(engine),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(engine),
        }
    }
}
