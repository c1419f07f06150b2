//! Session logic, without Ruby: progress, the last data given, retries,
//! rollback and budget for one task, over a `Store`.
//!
//! Locking: `write_lock` orders whole checkpoint writes (so a session's
//! checkpoints on disk never go back in time); `state` guards the fields and
//! is only ever held for a few instructions, never across I/O or a callback.
//! What the caller's thread and the background writer share is in `core`.
//!
//! (Longer than most files here: `Session` is the one service behind
//! `MASTER::SessionRecovery`, one short method per operation; the steps of a
//! write are in `core`, the values it hands out in `snapshot`.)

mod config;
mod core;
mod delta;
mod snapshot;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::budget::{Budget, BudgetEvent, Money};
use crate::checkpoint::{ErrorInfo, Status};
use crate::error::{Error, Result};
use crate::store::layout::TaskId;
use crate::store::{gate, Pick, Store};
use crate::ticker::Ticker;
use crate::writer::{self, Job};
pub(crate) use config::SessionConfig;
use core::{lock, Core, State, WriteParts};
pub(crate) use snapshot::{Data, RawJson, Restored, Snapshot};

/// What a checkpoint call changes before it writes.
#[derive(Debug, Default, Clone)]
pub(crate) struct CheckpointRequest {
    pub(crate) data: Option<Data>,
    pub(crate) message: Option<String>,
    pub(crate) progress: Option<u64>,
    pub(crate) items_total: Option<u64>,
}

/// What `track_cost` did: the warnings to log once, and whether the amount
/// passed an enforced budget (the caller persists it, then raises).
#[derive(Debug, Default)]
pub(crate) struct Tracked {
    pub(crate) events: Vec<BudgetEvent>,
    pub(crate) over_enforced_budget: bool,
}

#[derive(Debug)]
pub(crate) struct Session {
    core: Arc<Core>,
    writer: writer::Slot,
}

impl Session {
    /// Opens a session; with `auto_resume`, continues from the newest intact
    /// checkpoint. Damaged checkpoints never stop a session from starting.
    /// Without it, the task starts afresh, but money it already spent is
    /// still spent: its history's spending carries over, never refunded.
    pub(crate) fn open(config: SessionConfig) -> Result<(Session, Option<Restored>)> {
        let store = Store::open(&config.store)?;
        let session = Session {
            core: Arc::new(Core {
                ticker: Ticker::new(config.checkpoint_on_items, config.checkpoint_interval),
                state: Mutex::new(State::fresh(&config)),
                write_lock: Mutex::new(()),
                held: Mutex::new(None),
                fence: Mutex::new(None),
                tail: Mutex::new(None),
                store,
                config,
            }),
            writer: writer::Slot::default(),
        };
        let core = &session.core;
        let task = &core.config.task_id;
        if !core.config.auto_resume {
            let (summary, warnings) = core.store.summary_with_warnings(task)?;
            if let Some(summary) = summary {
                core.adopt_money(&mut lock(&core.state), &summary.budget);
            }
            let warned = (!warnings.is_empty()).then(|| Restored {
                snapshot: core.snapshot_now(None),
                first_resume: false,
                warnings,
            });
            return Ok((session, warned));
        }
        let lookup = core.store.find(task, Pick::Latest)?;
        let mut warnings = lookup.warnings(task);
        let resumed = match lookup.found {
            Some(found) => {
                let snapshot = core.hold(found);
                core.adopt(&snapshot, true);
                Some(Restored {
                    snapshot,
                    first_resume: true,
                    warnings,
                })
            }
            None if !warnings.is_empty() => {
                warnings.push(format!(
                    "task {:?}: no intact checkpoint to resume from; starting fresh",
                    task.as_str()
                ));
                Some(Restored {
                    snapshot: core.snapshot_now(None),
                    first_resume: false,
                    warnings,
                })
            }
            None => None,
        };
        Ok((session, resumed))
    }

    pub(crate) fn task_id(&self) -> &TaskId {
        &self.core.config.task_id
    }

    #[cfg(test)]
    pub(crate) fn store(&self) -> &Store {
        &self.core.store
    }

    /// Where the session's store is, for people (a directory, `memory://NAME`).
    pub(crate) fn location(&self) -> String {
        self.core.store.location()
    }

    /// Applies `change` to the state, then writes the result as the next
    /// checkpoint, here and now. Whole writes are serialised by `write_lock`,
    /// so a session's checkpoints never go back in time.
    fn write(&self, change: impl FnOnce(&mut State, &Ticker) -> WriteParts) -> Result<Snapshot> {
        self.settle()?;
        let _pass = gate::enter();
        let _writing = lock(&self.core.write_lock);
        let prepared = self.core.prepare(change);
        match self.core.persist(&prepared) {
            Ok(snapshot) => {
                self.core.ticker.rearm(prepared.covered);
                Ok(snapshot)
            }
            Err(e) => {
                self.core.ticker.release();
                Err(e)
            }
        }
    }

    /// With `async_writes`, waits for the background writer before an
    /// operation that reads or rewrites the store, and reports its error.
    fn settle(&self) -> Result<()> {
        if self.core.config.async_writes {
            self.writer.flush()?;
        }
        Ok(())
    }

    /// With `async_writes`, a checkpoint only captures and queues; the
    /// caller may keep Ruby's lock for it unless the queue is full.
    pub(crate) fn is_async(&self) -> bool {
        self.core.config.async_writes && self.core.config.enabled
    }

    /// True when an async checkpoint would wait for the writer.
    pub(crate) fn writer_is_full(&self) -> bool {
        self.writer.is_full()
    }

    /// Waits until the writer's queue has room.
    pub(crate) fn wait_for_writer(&self) {
        self.writer.wait_for_room();
    }

    /// Makes every later write carry the queue claim `token` (or none).
    pub(crate) fn fence(&self, token: Option<u64>) {
        *lock(&self.core.fence) = token.map(|token| crate::store::claims::Fence { token });
    }

    /// Waits until every checkpoint captured so far is durable; the number
    /// of the last one written. Reports a background write error, keeping
    /// what was not written for the next try.
    pub(crate) fn flush(&self) -> Result<Option<u64>> {
        let written = self.writer.flush()?;
        Ok(written.or_else(|| self.last_checkpoint()))
    }

    /// `checkpoint(data:, message:, progress:, items_total:)`: values not
    /// given carry over from the session. A checkpoint that moves progress
    /// beyond where the session stood is progress: failures start over.
    pub(crate) fn checkpoint(&self, request: CheckpointRequest) -> Result<Snapshot> {
        let change = |state: &mut State, ticker: &Ticker| {
            if let Some(progress) = request.progress {
                ticker.set_progress(progress);
            }
            if request.items_total.is_some() {
                state.items_total = request.items_total;
            }
            if ticker.progress() > state.progress_mark {
                state.failures = 0;
            }
            state.status = Status::Running;
            WriteParts {
                data: request.data,
                message: request.message,
                ..WriteParts::default()
            }
        };
        if !self.is_async() {
            return self.write(change);
        }
        // Capture now, write in the background: the caller gets the state
        // (without a number yet) as soon as it is taken.
        let core = Arc::clone(&self.core);
        self.writer
            .enqueue(self.core.config.task_id.as_str(), move || {
                let prepared = core.prepare(change);
                core.ticker.rearm(prepared.covered);
                let snapshot = prepared.snapshot.clone();
                let job: Job = Box::new(move || {
                    let _pass = gate::enter();
                    let _writing = lock(&core.write_lock);
                    let written = core.persist(&prepared)?;
                    Ok(written.checkpoint.unwrap_or_default())
                });
                Ok((snapshot, job))
            })
    }

    /// Counts `items`: `Some(true)` when a checkpoint is due (the caller
    /// writes it with `checkpoint`, holding the current data), `None` when
    /// the count would pass the largest number of items a checkpoint holds.
    #[inline]
    pub(crate) fn tick_due(&self, items: u64) -> Option<bool> {
        self.core.ticker.tick(items)
    }

    /// Gives up a due tick that could not be written (its data would not
    /// encode): the next tick is due again.
    pub(crate) fn release_tick(&self) {
        self.core.ticker.release();
    }

    /// The final checkpoint: status completed, holding `data` (the current
    /// data) when given. Completion is progress: failures start over.
    pub(crate) fn complete(&self, data: Option<Data>) -> Result<Snapshot> {
        self.write(|state, ticker| {
            if state.items_total.is_none() {
                state.items_total = Some(ticker.progress());
            }
            state.status = Status::Completed;
            state.failures = 0;
            WriteParts {
                data,
                ..WriteParts::default()
            }
        })
    }

    /// Writes a failed checkpoint holding `error` and `data` (the current
    /// data; the last data given when `None`).
    pub(crate) fn checkpoint_error(
        &self,
        error: ErrorInfo,
        data: Option<Data>,
    ) -> Result<Snapshot> {
        let message = Some(format!("{}: {}", error.class, error.message));
        self.write(|state, _| {
            state.failures = state.failures.saturating_add(1);
            state.status = Status::Failed;
            WriteParts {
                data,
                message,
                error: Some(error),
                ..WriteParts::default()
            }
        })
    }

    /// True while the failures since the task last made progress are fewer
    /// than `max_retries`.
    pub(crate) fn can_retry(&self) -> bool {
        lock(&self.core.state).failures < self.core.config.max_retries
    }

    pub(crate) fn failures(&self) -> u32 {
        lock(&self.core.state).failures
    }

    pub(crate) fn retries(&self) -> u32 {
        lock(&self.core.state).retries
    }

    /// Goes back to the newest good checkpoint's progress and data, counts a
    /// retry and persists both as a new checkpoint (a copy of the good one,
    /// `retry_of`). `None` (and a start from zero) when there is no good one.
    pub(crate) fn retry_from_checkpoint(&self) -> Result<(Option<Snapshot>, Vec<String>)> {
        self.settle()?;
        let task = &self.core.config.task_id;
        let lookup = self.core.store.find(task, Pick::LatestGood)?;
        let warnings = lookup.warnings(task);
        let good = lookup.found.map(|found| Snapshot::from_found(found, task));
        let number = good.as_ref().and_then(|g| g.checkpoint);
        let written = self.write(|state, ticker| {
            let (progress, items_total, data) = match &good {
                Some(g) => (
                    g.progress.items_processed,
                    g.progress.items_total,
                    g.data.clone(),
                ),
                None => (0, None, Data::empty_object()),
            };
            ticker.set_progress(progress);
            state.items_total = items_total;
            state.retries = state.retries.saturating_add(1);
            state.status = Status::Running;
            let message = match number {
                Some(n) => format!("retry {} from checkpoint {n}", state.retries),
                None => format!("retry {} from the start", state.retries),
            };
            WriteParts {
                data: Some(data),
                message: Some(message),
                copy_of: number,
                retry: true,
                ..WriteParts::default()
            }
        })?;
        Ok((good.map(|_| written), warnings))
    }

    /// Makes the newest good checkpoint before the one the session stands on
    /// (or number `to`) current again by writing it anew: history is never
    /// destroyed, and a second rollback goes back one more step.
    pub(crate) fn rollback(&self, to: Option<u64>) -> Result<(Snapshot, Vec<String>)> {
        self.settle()?;
        let task = &self.core.config.task_id;
        let (target, warnings) = match to {
            Some(number) => (self.core.store.read(task, number)?, Vec::new()),
            None => {
                let current = match lock(&self.core.state).stands_on {
                    Some(n) => n,
                    None => self.core.store.numbers(task)?.last().copied().ok_or_else(|| {
                        Error::NotFound(format!(
                            "task {:?} has no checkpoint to roll back; write one with checkpoint first",
                            task.as_str()
                        ))
                    })?,
                };
                let lookup = self.core.store.find(task, Pick::GoodBefore(current))?;
                let warnings = lookup.warnings(task);
                let found = lookup.found.ok_or_else(|| {
                    Error::NotFound(format!(
                        "task {:?} has no good checkpoint before checkpoint {current} to roll back to; \
                         pass to_checkpoint: N or call reset",
                        task.as_str()
                    ))
                })?;
                (found, warnings)
            }
        };
        let target = Snapshot::from_found(target, task);
        let number = target.checkpoint.expect("read from the store");
        let snapshot = self.write(|state, ticker| {
            ticker.set_progress(target.progress.items_processed);
            state.items_total = target.progress.items_total;
            state.status = match target.status {
                Status::Failed => Status::Running,
                other => other,
            };
            WriteParts {
                data: Some(target.data.clone()),
                message: Some(format!("rolled back to checkpoint {number}")),
                copy_of: Some(number),
                ..WriteParts::default()
            }
        })?;
        Ok((snapshot, warnings))
    }

    /// The newest intact checkpoint (or number `n`), adopted as the session's
    /// progress and data. `Ok(None)` when the task has none.
    pub(crate) fn restore(&self, number: Option<u64>) -> Result<Option<Restored>> {
        self.settle()?;
        let _pass = gate::enter();
        let _writing = lock(&self.core.write_lock);
        let task = &self.core.config.task_id;
        let held = lock(&self.core.held).clone();
        let (snapshot, warnings) = match (number, held) {
            (Some(n), _) => (
                Snapshot::from_found(self.core.store.read(task, n)?, task),
                Vec::new(),
            ),
            (None, Some((snapshot, seal)))
                if self
                    .core
                    .store
                    .is_newest(task, snapshot.checkpoint.unwrap_or(0), seal)? =>
            {
                (snapshot, Vec::new())
            }
            (None, _) => {
                let lookup = self.core.store.find(task, Pick::Latest)?;
                let warnings = lookup.warnings(task);
                match lookup.found {
                    Some(found) => (self.core.hold(found), warnings),
                    None if lookup.skipped.is_empty() => return Ok(None),
                    None => return Err(Error::no_intact_checkpoint(task, lookup.skipped)),
                }
            }
        };
        let first_resume = !lock(&self.core.state).resumed;
        self.core.adopt(&snapshot, false);
        Ok(Some(Restored {
            snapshot,
            first_resume,
            warnings,
        }))
    }

    /// True when the task has an intact checkpoint.
    pub(crate) fn checkpoint_exists(&self) -> Result<bool> {
        self.settle()?;
        Ok(self
            .core
            .store
            .summary(&self.core.config.task_id)?
            .is_some())
    }

    pub(crate) fn last_checkpoint_time(&self) -> Result<Option<DateTime<Utc>>> {
        self.settle()?;
        Ok(self
            .core
            .store
            .summary(&self.core.config.task_id)?
            .and_then(|s| crate::checkpoint::parse_timestamp(&s.updated_at).ok()))
    }

    /// True when there is an intact checkpoint to resume from (the newest,
    /// or an older one when the newest is damaged); false when there is none.
    pub(crate) fn checkpoint_valid(&self) -> Result<bool> {
        self.settle()?;
        let lookup = self
            .core
            .store
            .find(&self.core.config.task_id, Pick::Latest)?;
        Ok(lookup.found.is_some())
    }

    /// Forgets the task: removes its checkpoints and zeroes the session.
    pub(crate) fn reset(&self) -> Result<()> {
        self.settle()?;
        let _pass = gate::enter();
        let _writing = lock(&self.core.write_lock);
        if self.core.config.enabled {
            self.core.store.remove(&self.core.config.task_id)?;
        }
        *lock(&self.core.held) = None;
        let mut state = lock(&self.core.state);
        self.core.ticker.reset();
        *state = State::fresh(&self.core.config);
        Ok(())
    }

    pub(crate) fn progress(&self) -> u64 {
        self.core.ticker.progress()
    }

    pub(crate) fn items_total(&self) -> Option<u64> {
        lock(&self.core.state).items_total
    }

    pub(crate) fn status(&self) -> Status {
        lock(&self.core.state).status
    }

    pub(crate) fn last_checkpoint(&self) -> Option<u64> {
        lock(&self.core.state).last_checkpoint
    }

    /// Adds `amount` to the spending. With `enforce_budget`, reports whether
    /// the spending is now past the limit; the caller then persists it
    /// (`checkpoint`) and fails the call.
    pub(crate) fn track_cost(&self, amount: Money) -> Result<Tracked> {
        if !self.core.config.track_costs {
            crate::budget::check_cost(amount)?;
            return Ok(Tracked::default());
        }
        let mut state = lock(&self.core.state);
        let events = state.budget.track(amount)?;
        Ok(Tracked {
            events,
            over_enforced_budget: self.core.config.enforce_budget && state.budget.over(),
        })
    }

    /// The error an enforced budget fails `track_cost` with.
    pub(crate) fn budget_exceeded(&self) -> Error {
        let budget = self.budget();
        Error::BudgetExceeded {
            task_id: self.task_id().to_string(),
            spent: budget.spent(),
            limit: budget.allocated().unwrap_or(Money::ZERO),
        }
    }

    pub(crate) fn increase_budget(&self, amount: Money) -> Result<()> {
        lock(&self.core.state).budget.increase(amount)
    }

    pub(crate) fn budget(&self) -> Budget {
        lock(&self.core.state).budget.clone()
    }
}

#[cfg(test)]
mod tests;
