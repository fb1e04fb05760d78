//! A cap on `POST /events` requests in flight at once across the process (`[server]
//! max_requests_in_flight`): each may buffer a body of up to `max_frame_bytes`, so the cap bounds
//! that memory, and a flood of slow requests is refused at once instead of queueing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Requests in flight, up to a maximum.
#[derive(Debug)]
pub struct Gate {
    max: usize,
    open: AtomicUsize,
}

/// One request in flight; dropping it lets another in.
#[derive(Debug)]
pub struct Pass(Arc<Gate>);

impl Gate {
    /// At most `max` requests at once (0: no limit).
    pub fn new(max: usize) -> Arc<Gate> {
        Arc::new(Gate {
            max,
            open: AtomicUsize::new(0),
        })
    }

    /// A pass for one more request, or `None` when `max` are in flight.
    pub fn enter(self: &Arc<Self>) -> Option<Pass> {
        let admitted = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (self.max == 0 || n < self.max).then_some(n + 1)
            })
            .is_ok();
        admitted.then(|| Pass(Arc::clone(self)))
    }

    /// The limit (0: none).
    pub fn max(&self) -> usize {
        self.max
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn at_most_max_passes_until_one_is_dropped() {
        let gate = Gate::new(2);
        let one = gate.enter().unwrap();
        let _two = gate.enter().unwrap();
        assert!(gate.enter().is_none());
        drop(one);
        assert!(gate.enter().is_some());
        let open = Gate::new(0);
        let passes: Vec<_> = (0..100).map(|_| open.enter().unwrap()).collect();
        assert_eq!(passes.len(), 100, "0: no limit");
    }
}
