//! A session's settings, as the core takes them: one typed value (Ruby's
//! `Options.session` has checked every one).

use std::time::Duration;

use crate::budget::Money;
use crate::store::layout::TaskId;
use crate::store::StoreSpec;

/// 16 KiB: every state of the user's document is written whole; a long
/// job's growing list becomes deltas early enough that its writes stay a
/// few times its final size.
pub(crate) const DEFAULT_DELTA_THRESHOLD: u64 = 16 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct SessionConfig {
    pub(crate) task_id: TaskId,
    pub(crate) store: StoreSpec,
    pub(crate) budget: Option<Money>,
    pub(crate) checkpoint_interval: Option<Duration>,
    pub(crate) checkpoint_on_items: Option<u64>,
    pub(crate) max_checkpoints: Option<u64>,
    pub(crate) warn_threshold: f64,
    pub(crate) max_retries: u32,
    /// False: nothing is written; progress and budget are still counted.
    pub(crate) enabled: bool,
    /// False: `track_cost` records nothing.
    pub(crate) track_costs: bool,
    /// True: the `track_cost` that passes the budget (and every later one)
    /// persists the amount, then fails with `Error::BudgetExceeded`.
    pub(crate) enforce_budget: bool,
    pub(crate) auto_resume: bool,
    pub(crate) durable: bool,
    /// `async: true`: `checkpoint` captures the state and returns; a
    /// background thread writes it (see `writer`).
    pub(crate) async_writes: bool,
    /// States of at least this many bytes (as JSON) may be written as a
    /// change since the previous checkpoint (`session::delta`); `None`:
    /// always whole.
    pub(crate) delta_threshold: Option<u64>,
}

impl SessionConfig {
    /// The settings a session has when nothing is given: the document's
    /// defaults (Ruby's `Options` and the shipped YAML say the same for
    /// sessions made from Ruby, which always pass every setting).
    pub(crate) fn new(task_id: TaskId, store: StoreSpec) -> SessionConfig {
        SessionConfig {
            task_id,
            store,
            budget: None,
            checkpoint_interval: Some(Duration::from_secs(300)),
            checkpoint_on_items: Some(10),
            max_checkpoints: Some(10),
            warn_threshold: 0.8,
            max_retries: 3,
            enabled: true,
            track_costs: true,
            enforce_budget: false,
            auto_resume: true,
            durable: true,
            async_writes: false,
            delta_threshold: Some(DEFAULT_DELTA_THRESHOLD),
        }
    }
}
