//! The [`Leases`] suite: exclusivity, renewal, takeover and release, and rising tokens (what a
//! commit under a lease may do is checked by the `fencing` suite).

use super::{case, durability, must, ManualClock};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use threds_runtime::store::{Lease, Leases};

/// The suite's name in the progress lines.
const SUITE: &str = "leases";

/// The resource the cases fight over.
pub(super) const RESOURCE: &str = "events/3";

/// One second.
pub(super) const TTL: Duration = Duration::from_millis(1000);

/// Runs every case, each on a fresh, empty port from `make` (given the clock it must use).
pub async fn run<F, Fut>(make: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = Arc<dyn Leases>>,
{
    case(SUITE, "lease exclusivity", &make, exclusive).await;
    case(SUITE, "lease renewal", &make, renewal).await;
    case(SUITE, "lease takeover", &make, takeover).await;
    case(SUITE, "lease release", &make, release).await;
}

/// Checks that leases and their tokens survive a restart; `open` opens the same durable port each
/// call (the suite drops the previous handle first).
pub async fn run_durability<F, Fut>(open: F)
where
    F: Fn(ManualClock) -> Fut,
    Fut: Future<Output = Arc<dyn Leases>>,
{
    eprintln!("store contract: {SUITE}: durability");
    durability::leases(&open).await;
}

/// A lease that must be granted.
pub(super) async fn grant(leases: &dyn Leases, resource: &str, owner: &str) -> Lease {
    let lease = must("acquire", leases.acquire(resource, owner, TTL).await);
    lease.unwrap_or_else(|| panic!("{owner} should get {resource}"))
}

/// Asserts `owner` cannot get `resource` now.
pub(super) async fn refused(leases: &dyn Leases, resource: &str, owner: &str) {
    let lease = must("acquire", leases.acquire(resource, owner, TTL).await);
    assert!(
        lease.is_none(),
        "{owner} must not get {resource} while held: {lease:?}"
    );
}

/// A held lease excludes other owners until it expires; resources are independent; granted
/// tokens are positive.
async fn exclusive(leases: Arc<dyn Leases>, clock: ManualClock) {
    let leases = leases.as_ref();
    let lease = grant(leases, RESOURCE, "e1").await;
    assert_eq!(
        (lease.resource.as_str(), lease.owner.as_str()),
        (RESOURCE, "e1")
    );
    assert!(lease.token > 0, "granted tokens are positive");
    assert_eq!(lease.expires_at, clock.now() + 1000);
    refused(leases, RESOURCE, "e2").await;
    clock.advance(999);
    refused(leases, RESOURCE, "e2").await;
    grant(leases, "events/4", "e2").await;
}

/// The holder renewing before expiry keeps its token and gets a later expiry.
async fn renewal(leases: Arc<dyn Leases>, clock: ManualClock) {
    let leases = leases.as_ref();
    let first = grant(leases, RESOURCE, "e1").await;
    clock.advance(600);
    let renewed = grant(leases, RESOURCE, "e1").await;
    assert_eq!(
        (renewed.owner.as_str(), renewed.token),
        ("e1", first.token),
        "same token"
    );
    assert_eq!(renewed.expires_at, clock.now() + 1000);
    clock.advance(600);
    refused(leases, RESOURCE, "e2").await;
}

/// After expiry another owner takes over with a higher token; a grant after expiry is a new lease
/// even to the same owner.
async fn takeover(leases: Arc<dyn Leases>, clock: ManualClock) {
    let leases = leases.as_ref();
    let old = grant(leases, RESOURCE, "e1").await;
    clock.advance(1000);
    let new = grant(leases, RESOURCE, "e2").await;
    assert!(
        new.token > old.token,
        "takeover token {} > {}",
        new.token,
        old.token
    );
    refused(leases, RESOURCE, "e1").await;

    clock.advance(1000);
    let again = grant(leases, RESOURCE, "e2").await;
    assert!(
        again.token > new.token,
        "a grant after expiry is a new lease, even to the same owner"
    );
}

/// A released lease is free at once; releasing a stale lease does nothing; tokens keep rising.
async fn release(leases: Arc<dyn Leases>, clock: ManualClock) {
    let leases = leases.as_ref();
    let first = grant(leases, RESOURCE, "e1").await;
    must("release", leases.release(&first).await);
    let second = grant(leases, RESOURCE, "e2").await;
    assert!(second.token > first.token);
    must("stale release", leases.release(&first).await);
    refused(leases, RESOURCE, "e3").await;

    must("release", leases.release(&second).await);
    clock.advance(1);
    let third = grant(leases, RESOURCE, "e2").await;
    assert!(
        third.token > second.token,
        "tokens keep rising after a release"
    );
}
