//! `MASTER::Queue`'s coordination, without Ruby: claims of its tasks by
//! workers, under leases, with fencing tokens, and the queue's runs, in
//! one store (`store::claims` has the rules). The queue's orchestration —
//! threads, heartbeats, the order tasks run in — is Ruby's; the binding
//! calls only this.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::store::claims::{Ask, Claim, ClaimState, Claimed, Holder, QueueRun, Renewed, RunEntry};
use crate::store::layout::TaskId;
use crate::store::{Store, StoreSpec};

/// A queue's view of one store.
#[derive(Debug, Clone)]
pub(crate) struct Coordination {
    store: Store,
}

/// Lease lengths a queue accepts: long enough to renew, short enough to
/// take over a dead worker's task within a day.
const LEASES: std::ops::RangeInclusive<f64> = 0.05..=86_400.0;

fn lease_ns(lease: Duration) -> i64 {
    lease.as_nanos().min(i64::MAX as u128) as i64
}

/// A lease given in seconds, checked.
pub(crate) fn lease(seconds: f64) -> Result<Duration> {
    if !LEASES.contains(&seconds) {
        return Err(Error::invalid(format!(
            "lease must be between {} and {} seconds; got {seconds}",
            LEASES.start(),
            LEASES.end()
        )));
    }
    Ok(Duration::from_secs_f64(seconds))
}

impl Coordination {
    pub(crate) fn open(spec: &StoreSpec) -> Result<Coordination> {
        Ok(Coordination {
            store: Store::open(spec)?,
        })
    }

    /// The run of `queue` (its ledger task) this process enters. Workers
    /// starting within a lease of each other share the run.
    pub(crate) fn enter_run(
        &self,
        queue: &TaskId,
        resume: bool,
        lease: Duration,
    ) -> Result<QueueRun> {
        let entry = if resume {
            RunEntry::Continue
        } else {
            RunEntry::JoinLive
        };
        self.store.enter_run(queue, entry, lease_ns(lease))
    }

    /// Keeps `run` live while a worker holds a claim expiring at `until_ns`
    /// (on the store's clock), or closes it.
    pub(crate) fn touch_run(
        &self,
        queue: &TaskId,
        run: u64,
        until_ns: i64,
        close: bool,
    ) -> Result<()> {
        self.store.touch_run(queue, run, until_ns, close)
    }

    /// Claims `task` of `queue`'s `run` for `holder`; with `retry_failed`
    /// (`resume`), a task that failed in the run is taken again.
    pub(crate) fn claim(
        &self,
        task: &TaskId,
        queue: &str,
        run: u64,
        holder: &Holder,
        lease: Duration,
        retry_failed: bool,
    ) -> Result<Claimed> {
        let ask = Ask {
            queue,
            run,
            holder,
            lease_ns: lease_ns(lease),
            retry_failed,
        };
        self.store.claim(task, &ask)
    }

    pub(crate) fn renew(
        &self,
        task: &TaskId,
        token: u64,
        lease: Duration,
        spent: &str,
    ) -> Result<Renewed> {
        self.store.renew(task, token, lease_ns(lease), spent)
    }

    /// Ends the claim: finished in `state`, or released (`None`).
    pub(crate) fn end(
        &self,
        task: &TaskId,
        token: u64,
        state: Option<ClaimState>,
        spent: &str,
    ) -> Result<bool> {
        self.store.end_claim(task, token, state, spent)
    }

    pub(crate) fn cancel(&self, task: &TaskId) -> Result<Option<Claim>> {
        self.store.cancel(task)
    }

    pub(crate) fn claim_of(&self, task: &TaskId) -> Result<Option<Claim>> {
        self.store.claim_of(task)
    }
}
