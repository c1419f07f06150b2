//! Session logic, without Ruby: progress, the last data given, retries,
//! rollback and budget for one task, over a `Store`.
//!
//! Locking: `write_lock` orders whole checkpoint writes (so a session's
//! checkpoints on disk never go back in time); `state` guards the fields and
//! is only ever held for a few instructions, never across I/O or a callback.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::budget::{Budget, BudgetEvent, Money};
use crate::checkpoint::{BudgetFigures, Draft, ErrorInfo, Host, Progress, Status};
use crate::error::{Error, Result};
use crate::store::layout::TaskId;
use crate::store::{gate, Found, Lookup, Pick, Store, WriteOptions};
use crate::ticker::Ticker;

/// Raw JSON bytes shared without copying: the user's data, or the `state`
/// slice of a checkpoint file that was read.
#[derive(Debug, Clone)]
pub struct RawJson {
    buf: Arc<Vec<u8>>,
    range: Range<usize>,
}

impl RawJson {
    pub fn new(bytes: Vec<u8>) -> RawJson {
        let range = 0..bytes.len();
        RawJson {
            buf: Arc::new(bytes),
            range,
        }
    }

    pub fn empty_object() -> RawJson {
        RawJson::new(b"{}".to_vec())
    }

    /// The part of `json` that `part` (a slice of it) covers.
    fn slice_of(json: &Arc<Vec<u8>>, part: &str) -> RawJson {
        let start = part.as_ptr() as usize - json.as_ptr() as usize;
        RawJson {
            buf: Arc::clone(json),
            range: start..start + part.len(),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub task_id: TaskId,
    pub checkpoint_dir: PathBuf,
    pub budget: Option<Money>,
    pub checkpoint_interval: Option<Duration>,
    pub checkpoint_on_items: Option<u64>,
    pub max_checkpoints: Option<u64>,
    pub warn_threshold: f64,
    pub max_retries: u32,
    /// False: nothing is written; progress and budget are still counted.
    pub enabled: bool,
    /// False: `track_cost` records nothing.
    pub track_costs: bool,
    pub auto_resume: bool,
    pub durable: bool,
}

impl SessionConfig {
    pub fn new(task_id: TaskId, checkpoint_dir: impl Into<PathBuf>) -> SessionConfig {
        SessionConfig {
            task_id,
            checkpoint_dir: checkpoint_dir.into(),
            budget: None,
            checkpoint_interval: Some(Duration::from_secs(300)),
            checkpoint_on_items: Some(10),
            max_checkpoints: Some(10),
            warn_threshold: 0.8,
            max_retries: 3,
            enabled: true,
            track_costs: true,
            auto_resume: true,
            durable: true,
        }
    }
}

/// A checkpoint as the caller sees it — what `restore` returns and what the
/// callbacks receive.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub task_id: String,
    /// `None` when writing is disabled.
    pub checkpoint: Option<u64>,
    pub timestamp: DateTime<Utc>,
    pub status: Status,
    pub progress: Progress,
    pub data: RawJson,
    pub message: Option<String>,
    pub budget: BudgetFigures,
    pub error: Option<RawJson>,
    pub rollback_of: Option<u64>,
    pub failures: u32,
    pub retries: u32,
}

impl Snapshot {
    fn from_found(found: Found) -> Snapshot {
        let json = Arc::new(found.json);
        let view = crate::checkpoint::CheckpointView::parse(&json).expect("verified when read");
        Snapshot {
            task_id: view.task_id.clone(),
            checkpoint: Some(found.number),
            timestamp: view.time(),
            status: view.status,
            progress: view.progress.clone(),
            data: RawJson::slice_of(&json, view.state.get()),
            message: view.message.clone(),
            budget: view.budget,
            error: view.error.map(|e| RawJson::slice_of(&json, e.get())),
            rollback_of: view.rollback_of,
            failures: view.failures,
            retries: view.retries,
        }
    }
}

/// What a restore found: the state, whether it is this session's first
/// resume (`on_resume` fires once), and damaged checkpoints passed over.
#[derive(Debug, Clone)]
pub struct Restored {
    pub snapshot: Snapshot,
    pub first_resume: bool,
    pub warnings: Vec<String>,
}

#[derive(Debug)]
struct State {
    items_total: Option<u64>,
    data: RawJson,
    status: Status,
    budget: Budget,
    failures: u32,
    retries: u32,
    last_checkpoint: Option<u64>,
    resumed: bool,
}

/// What a checkpoint call changes before it writes.
#[derive(Debug, Default, Clone)]
pub struct CheckpointRequest {
    pub data: Option<RawJson>,
    pub message: Option<String>,
    pub progress: Option<u64>,
    pub items_total: Option<u64>,
}

#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    store: Store,
    ticker: Ticker,
    state: Mutex<State>,
    write_lock: Mutex<()>,
}

/// A poisoned lock means a panic elsewhere already became an error; the
/// state it guards is plain data and still consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn skipped_warnings(task: &TaskId, lookup: &Lookup) -> Vec<String> {
    lookup
        .skipped
        .iter()
        .map(|s| {
            format!(
                "task {task:?}: skipping checkpoint {}: {}",
                s.number, s.reason
            )
        })
        .collect()
}

impl Session {
    /// Opens a session; with `auto_resume`, continues from the newest intact
    /// checkpoint. Damaged checkpoints never stop a session from starting.
    pub fn open(config: SessionConfig) -> Result<(Session, Option<Restored>)> {
        let store = Store::new(&config.checkpoint_dir)?;
        let session = Session {
            ticker: Ticker::new(config.checkpoint_on_items, config.checkpoint_interval),
            state: Mutex::new(State {
                items_total: None,
                data: RawJson::empty_object(),
                status: Status::Running,
                budget: Budget::new(config.budget, config.warn_threshold),
                failures: 0,
                retries: 0,
                last_checkpoint: None,
                resumed: false,
            }),
            write_lock: Mutex::new(()),
            store,
            config,
        };
        let resumed = if session.config.auto_resume {
            let lookup = session.store.find(&session.config.task_id, Pick::Latest)?;
            let mut warnings = skipped_warnings(&session.config.task_id, &lookup);
            match lookup.found {
                Some(found) => {
                    let snapshot = Snapshot::from_found(found);
                    session.adopt(&snapshot, true);
                    Some(Restored {
                        snapshot,
                        first_resume: true,
                        warnings,
                    })
                }
                None if !warnings.is_empty() => {
                    warnings.push(format!(
                        "task {:?}: no intact checkpoint to resume from; starting fresh",
                        session.config.task_id.as_str()
                    ));
                    Some(Restored {
                        snapshot: session.snapshot_now(None),
                        first_resume: false,
                        warnings,
                    })
                }
                None => None,
            }
        } else {
            None
        };
        Ok((session, resumed))
    }

    pub fn task_id(&self) -> &TaskId {
        &self.config.task_id
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Takes over a checkpoint's progress and data. With `whole`, also its
    /// budget, counters and status (a resume); otherwise spent money never
    /// goes down.
    fn adopt(&self, snapshot: &Snapshot, whole: bool) {
        let mut state = lock(&self.state);
        self.ticker.set_progress(snapshot.progress.items_processed);
        state.items_total = snapshot.progress.items_total;
        state.data = snapshot.data.clone();
        state.resumed = true;
        if whole {
            if self.config.budget.is_none() {
                state.budget = Budget::new(snapshot.budget.allocated, self.config.warn_threshold);
            }
            state.budget.resume(snapshot.budget.spent);
            state.failures = snapshot.failures;
            state.retries = snapshot.retries;
            state.status = snapshot.status;
            state.last_checkpoint = snapshot.checkpoint;
        } else if snapshot.budget.spent > state.budget.spent() {
            state.budget.resume(snapshot.budget.spent);
        }
    }

    /// The session as it stands, as if checkpointed now (not written).
    fn snapshot_now(&self, number: Option<u64>) -> Snapshot {
        let state = lock(&self.state);
        Snapshot {
            task_id: self.config.task_id.to_string(),
            checkpoint: number,
            timestamp: Utc::now(),
            status: state.status,
            progress: Progress::new(self.ticker.progress(), state.items_total),
            data: state.data.clone(),
            message: None,
            budget: BudgetFigures::new(state.budget.allocated(), state.budget.spent()),
            error: None,
            rollback_of: None,
            failures: state.failures,
            retries: state.retries,
        }
    }

    /// Applies `change` to the state, then writes the result as the next
    /// checkpoint. Whole writes are serialised by `write_lock`.
    fn write(&self, change: impl FnOnce(&mut State, &Ticker) -> WriteParts) -> Result<Snapshot> {
        let _pass = gate::enter();
        let _writing = lock(&self.write_lock);
        let covered = self.ticker.since_checkpoint();
        let (parts, mut snapshot) = {
            let mut state = lock(&self.state);
            let parts = change(&mut state, &self.ticker);
            let snapshot = Snapshot {
                task_id: self.config.task_id.to_string(),
                checkpoint: None,
                timestamp: Utc::now(),
                status: state.status,
                progress: Progress::new(self.ticker.progress(), state.items_total),
                data: parts.data.clone().unwrap_or_else(|| state.data.clone()),
                message: parts.message.clone(),
                budget: BudgetFigures::new(state.budget.allocated(), state.budget.spent()),
                error: parts.error_json.clone(),
                rollback_of: parts.rollback_of,
                failures: state.failures,
                retries: state.retries,
            };
            (parts, snapshot)
        };
        if !self.config.enabled {
            self.ticker.rearm(covered);
            return Ok(snapshot);
        }
        let draft = Draft {
            task_id: self.config.task_id.as_str(),
            timestamp: snapshot.timestamp,
            status: snapshot.status,
            message: snapshot.message.as_deref(),
            progress: snapshot.progress.clone(),
            budget: snapshot.budget,
            state: snapshot.data.as_bytes(),
            error: parts.error.as_ref(),
            rollback_of: snapshot.rollback_of,
            failures: snapshot.failures,
            retries: snapshot.retries,
            host: Host::current(),
        };
        let mut doc = draft.to_document();
        let options = WriteOptions {
            max_checkpoints: self.config.max_checkpoints,
            durable: self.config.durable,
        };
        match self
            .store
            .write_checkpoint(&self.config.task_id, &mut doc, &draft.facts(), &options)
        {
            Ok(written) => {
                lock(&self.state).last_checkpoint = Some(written.number);
                self.ticker.rearm(covered);
                snapshot.checkpoint = Some(written.number);
                Ok(snapshot)
            }
            Err(e) => {
                self.ticker.release();
                Err(e)
            }
        }
    }

    /// `checkpoint(data:, message:, progress:, items_total:)`: values not
    /// given carry over from the session.
    pub fn checkpoint(&self, request: CheckpointRequest) -> Result<Snapshot> {
        self.write(|state, ticker| {
            if let Some(progress) = request.progress {
                ticker.set_progress(progress);
            }
            if request.items_total.is_some() {
                state.items_total = request.items_total;
            }
            if let Some(data) = &request.data {
                state.data = data.clone();
            }
            state.status = Status::Running;
            WriteParts {
                data: request.data,
                message: request.message,
                ..WriteParts::default()
            }
        })
    }

    /// Counts `items`; writes a checkpoint with the last data when one is
    /// due. `Ok(None)` when nothing was due (the common, cheap case).
    pub fn tick(&self, items: u64) -> Result<Option<Snapshot>> {
        if !self.ticker.tick(items) {
            return Ok(None);
        }
        self.checkpoint(CheckpointRequest::default()).map(Some)
    }

    /// The `tick` test alone, for callers that write on another path.
    #[inline]
    pub fn tick_due(&self, items: u64) -> bool {
        self.ticker.tick(items)
    }

    pub fn complete(&self, message: Option<String>) -> Result<Snapshot> {
        self.write(|state, ticker| {
            if state.items_total.is_none() {
                state.items_total = Some(ticker.progress());
            }
            state.status = Status::Completed;
            WriteParts {
                message,
                ..WriteParts::default()
            }
        })
    }

    /// Writes a failed checkpoint holding `error`, keeping the last data.
    pub fn checkpoint_error(&self, error: ErrorInfo) -> Result<Snapshot> {
        let error_json = RawJson::new(crate::checkpoint::json_bytes(&error));
        let message = Some(format!("{}: {}", error.class, error.message));
        self.write(|state, _| {
            state.failures = state.failures.saturating_add(1);
            state.status = Status::Failed;
            WriteParts {
                message,
                error: Some(error),
                error_json: Some(error_json),
                ..WriteParts::default()
            }
        })
    }

    pub fn can_retry(&self) -> bool {
        lock(&self.state).failures < self.config.max_retries
    }

    pub fn failures(&self) -> u32 {
        lock(&self.state).failures
    }

    pub fn retries(&self) -> u32 {
        lock(&self.state).retries
    }

    /// Goes back to the newest good checkpoint's progress and data and counts
    /// a retry. `None` (and a start from zero) when there is no good one.
    pub fn retry_from_checkpoint(&self) -> Result<(Option<Snapshot>, Vec<String>)> {
        let _pass = gate::enter();
        let _writing = lock(&self.write_lock);
        let lookup = self.store.find(&self.config.task_id, Pick::LatestGood)?;
        let warnings = skipped_warnings(&self.config.task_id, &lookup);
        let snapshot = lookup.found.map(Snapshot::from_found);
        match &snapshot {
            Some(snapshot) => self.adopt(snapshot, false),
            None => {
                let mut state = lock(&self.state);
                self.ticker.set_progress(0);
                state.items_total = None;
                state.data = RawJson::empty_object();
            }
        }
        let mut state = lock(&self.state);
        state.retries = state.retries.saturating_add(1);
        state.status = Status::Running;
        Ok((snapshot, warnings))
    }

    /// Makes the newest good checkpoint before the current one (or number
    /// `to`) current again by writing it anew: history is never destroyed.
    pub fn rollback(&self, to: Option<u64>) -> Result<(Snapshot, Vec<String>)> {
        let task = &self.config.task_id;
        let (target, warnings) = match to {
            Some(number) => (self.store.read(task, number)?, Vec::new()),
            None => {
                let current = self.store.numbers(task)?.last().copied().ok_or_else(|| {
                    Error::NotFound(format!(
                        "task {:?} has no checkpoint to roll back; write one with checkpoint first",
                        task.as_str()
                    ))
                })?;
                let lookup = self.store.find(task, Pick::GoodBefore(current))?;
                let warnings = skipped_warnings(task, &lookup);
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
        let target = Snapshot::from_found(target);
        let number = target.checkpoint.expect("read from the store");
        let snapshot = self.write(|state, ticker| {
            ticker.set_progress(target.progress.items_processed);
            state.items_total = target.progress.items_total;
            state.data = target.data.clone();
            state.status = match target.status {
                Status::Failed => Status::Running,
                other => other,
            };
            WriteParts {
                data: Some(target.data.clone()),
                message: Some(format!("rolled back to checkpoint {number}")),
                rollback_of: Some(number),
                ..WriteParts::default()
            }
        })?;
        Ok((snapshot, warnings))
    }

    /// The newest intact checkpoint (or number `n`), adopted as the session's
    /// progress and data. `Ok(None)` when the task has none.
    pub fn restore(&self, number: Option<u64>) -> Result<Option<Restored>> {
        let _pass = gate::enter();
        let _writing = lock(&self.write_lock);
        let task = &self.config.task_id;
        let (found, warnings) = match number {
            Some(n) => (self.store.read(task, n)?, Vec::new()),
            None => {
                let lookup = self.store.find(task, Pick::Latest)?;
                let warnings = skipped_warnings(task, &lookup);
                match lookup.found {
                    Some(found) => (found, warnings),
                    None if lookup.skipped.is_empty() => return Ok(None),
                    None => {
                        let path = self.store.checkpoint_path(task, lookup.skipped[0].number);
                        let reasons: Vec<_> = lookup
                            .skipped
                            .iter()
                            .map(|s| format!("{}: {}", s.number, s.reason))
                            .collect();
                        return Err(Error::corrupt(
                            path,
                            format!("no intact checkpoint left ({})", reasons.join("; ")),
                        ));
                    }
                }
            }
        };
        let snapshot = Snapshot::from_found(found);
        let first_resume = !lock(&self.state).resumed;
        self.adopt(&snapshot, false);
        Ok(Some(Restored {
            snapshot,
            first_resume,
            warnings,
        }))
    }

    /// True when the task has an intact checkpoint.
    pub fn checkpoint_exists(&self) -> Result<bool> {
        Ok(self.store.summary(&self.config.task_id)?.is_some())
    }

    pub fn last_checkpoint_time(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .store
            .summary(&self.config.task_id)?
            .and_then(|s| crate::checkpoint::parse_timestamp(&s.updated_at).ok()))
    }

    /// True when the newest checkpoint file is intact; false when it is
    /// damaged or there is none.
    pub fn checkpoint_valid(&self) -> Result<bool> {
        let task = &self.config.task_id;
        let Some(&latest) = self.store.numbers(task)?.last() else {
            return Ok(false);
        };
        match self.store.read(task, latest) {
            Ok(_) => Ok(true),
            Err(Error::Corrupt { .. }) | Err(Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Forgets the task: removes its checkpoints and zeroes the session.
    pub fn reset(&self) -> Result<()> {
        let _pass = gate::enter();
        let _writing = lock(&self.write_lock);
        if self.config.enabled {
            self.store.remove(&self.config.task_id)?;
        }
        let mut state = lock(&self.state);
        self.ticker.reset();
        state.items_total = None;
        state.data = RawJson::empty_object();
        state.status = Status::Running;
        state.budget = Budget::new(self.config.budget, self.config.warn_threshold);
        state.failures = 0;
        state.retries = 0;
        state.last_checkpoint = None;
        Ok(())
    }

    pub fn progress(&self) -> u64 {
        self.ticker.progress()
    }

    pub fn items_total(&self) -> Option<u64> {
        lock(&self.state).items_total
    }

    pub fn status(&self) -> Status {
        lock(&self.state).status
    }

    pub fn last_checkpoint(&self) -> Option<u64> {
        lock(&self.state).last_checkpoint
    }

    pub fn track_cost(&self, amount: Money) -> Result<Vec<BudgetEvent>> {
        if amount.is_negative() {
            return Err(Error::invalid(format!(
                "amount must not be negative; got {amount}"
            )));
        }
        if !self.config.track_costs {
            return Ok(Vec::new());
        }
        lock(&self.state).budget.track(amount)
    }

    pub fn increase_budget(&self, amount: Money) -> Result<()> {
        lock(&self.state).budget.increase(amount)
    }

    pub fn budget(&self) -> Budget {
        lock(&self.state).budget.clone()
    }
}

#[derive(Debug, Default)]
struct WriteParts {
    data: Option<RawJson>,
    message: Option<String>,
    error: Option<ErrorInfo>,
    error_json: Option<RawJson>,
    rollback_of: Option<u64>,
}

#[cfg(test)]
mod tests;
