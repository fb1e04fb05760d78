//! What librdkafka's rebalance callbacks did to a member, folded into what `poll` reports.
//!
//! Callbacks run inside librdkafka's poll (on whichever thread polls), in any number between two
//! of our polls; the caller must hear every partition it held and lost as revoked, before any
//! assignment, and must never get records of a partition fetched before it was revoked.

use std::collections::{BTreeMap, BTreeSet};

/// A topic-partition.
pub(super) type Tp = (String, u32);

/// The member's partitions as the callbacks left them.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    /// Partitions librdkafka holds for the member now.
    current: BTreeSet<Tp>,
    /// Partitions revoked since the last report.
    revoked: BTreeSet<Tp>,
    /// For each partition held, the [`Tracker::changes`] count its latest assignment made:
    /// records fetched before then are stale.
    assigned_at: BTreeMap<Tp, u64>,
    /// Rebalance callbacks so far (to notice one during a poll).
    changes: u64,
}

/// What to tell the caller: partitions lost, then partitions gained.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Report {
    /// Partitions the caller held and must stop working on.
    pub revoked: Vec<Tp>,
    /// Partitions the caller holds from now on.
    pub assigned: Vec<Tp>,
}

impl Tracker {
    /// Partitions were assigned (incrementally, or all of them with an eager protocol).
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = Tp>) {
        self.changes += 1;
        for tp in partitions {
            self.assigned_at.insert(tp.clone(), self.changes);
            self.current.insert(tp);
        }
    }

    /// Partitions were revoked (or lost).
    pub fn revoke(&mut self, partitions: impl IntoIterator<Item = Tp>) {
        self.changes += 1;
        for tp in partitions {
            self.current.remove(&tp);
            self.assigned_at.remove(&tp);
            self.revoked.insert(tp);
        }
    }

    /// Everything was revoked (a rebalance error, or leaving).
    pub fn revoke_all(&mut self) {
        let all = std::mem::take(&mut self.current);
        self.revoke(all);
    }

    /// How many rebalance callbacks ran so far.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Whether the member holds nothing now.
    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }

    /// Whether a record of `tp` fetched when [`Tracker::changes`] was `fetched_at` may be
    /// delivered: the member still holds `tp` and fetched the record since its latest assignment
    /// (a revoked-and-regained partition restarts at its committed offset, so what was fetched
    /// before is stale — and what was fetched after must not be dropped: librdkafka will not
    /// fetch it again).
    pub fn deliverable(&self, tp: &Tp, fetched_at: u64) -> bool {
        self.current.contains(tp) && self.assigned_at.get(tp).is_some_and(|at| fetched_at >= *at)
    }

    /// Folds the callbacks since the last report into what the caller, who last heard that it
    /// holds `reported`, must be told; `reported` becomes the current holding.
    pub fn report(&mut self, reported: &mut BTreeSet<Tp>) -> Report {
        let revoked: Vec<Tp> = reported
            .iter()
            .filter(|tp| self.revoked.contains(*tp) || !self.current.contains(*tp))
            .cloned()
            .collect();
        for tp in &revoked {
            reported.remove(tp);
        }
        let assigned: Vec<Tp> = self.current.difference(reported).cloned().collect();
        reported.extend(assigned.iter().cloned());
        self.revoked.clear();
        Report { revoked, assigned }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: u32) -> Tp {
        ("t".to_owned(), p)
    }

    #[test]
    fn reports_changes_since_the_last_report() {
        let mut tracker = Tracker::default();
        let mut reported = BTreeSet::new();
        tracker.assign([tp(0), tp(1)]);
        let report = tracker.report(&mut reported);
        assert_eq!(report.assigned, [tp(0), tp(1)]);
        assert!(report.revoked.is_empty());
        tracker.revoke([tp(1)]);
        let report = tracker.report(&mut reported);
        assert_eq!(report.revoked, [tp(1)]);
        assert!(report.assigned.is_empty());
        assert_eq!(reported, BTreeSet::from([tp(0)]));
        assert_eq!(tracker.report(&mut reported), Report::default());
    }

    #[test]
    fn a_partition_lost_and_regained_is_reported_both_ways() {
        let mut tracker = Tracker::default();
        let mut reported = BTreeSet::new();
        tracker.assign([tp(0)]);
        tracker.report(&mut reported);
        let before = tracker.changes();
        tracker.revoke([tp(0)]);
        tracker.assign([tp(0)]);
        let after = tracker.changes();
        assert!(
            !tracker.deliverable(&tp(0), before),
            "fetched before: stale"
        );
        assert!(
            tracker.deliverable(&tp(0), after),
            "fetched after the partition was regained, before the report: delivered"
        );
        let report = tracker.report(&mut reported);
        assert_eq!(report.revoked, [tp(0)]);
        assert_eq!(report.assigned, [tp(0)]);
        assert!(tracker.deliverable(&tp(0), after));
        assert!(!tracker.deliverable(&tp(0), before));
    }

    #[test]
    fn a_partition_gained_and_lost_unseen_is_not_reported() {
        let mut tracker = Tracker::default();
        let mut reported = BTreeSet::new();
        tracker.assign([tp(2)]);
        tracker.revoke([tp(2)]);
        assert_eq!(tracker.report(&mut reported), Report::default());
        assert!(reported.is_empty());
        assert_eq!(tracker.changes(), 2);
    }

    #[test]
    fn revoke_all_empties_the_member() {
        let mut tracker = Tracker::default();
        let mut reported = BTreeSet::new();
        tracker.assign([tp(0), tp(3)]);
        tracker.report(&mut reported);
        tracker.revoke_all();
        assert!(tracker.is_empty());
        assert_eq!(tracker.report(&mut reported).revoked, [tp(0), tp(3)]);
    }
}
