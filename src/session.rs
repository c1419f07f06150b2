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

use chrono::{DateTime, SubsecRound, Utc};

use crate::budget::{Budget, BudgetEvent, Money};
use crate::checkpoint::{BudgetFigures, Draft, ErrorInfo, Host, Progress, Status};
use crate::error::{Error, Result};
use crate::store::layout::TaskId;
use crate::store::{gate, Found, Lookup, Pick, Store, WriteOptions};
use crate::ticker::Ticker;
use crate::writer::{self, Job};

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

    /// The bytes `range` of a shared buffer.
    fn range_of(json: &Arc<Vec<u8>>, range: Range<usize>) -> RawJson {
        RawJson {
            buf: Arc::clone(json),
            range,
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
    /// `async: true`: `checkpoint` captures the state and returns; a
    /// background thread writes it (see `writer`).
    pub async_writes: bool,
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
            async_writes: false,
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
    /// What the write worked around in the store (planted entries).
    pub warnings: Vec<String>,
}

impl Snapshot {
    /// A verified checkpoint of `task` (the store checked it names `task`).
    fn from_found(found: Found, task: &TaskId) -> Snapshot {
        let Found {
            number,
            json,
            envelope,
        } = found;
        let json = Arc::new(json);
        let facts = envelope.facts;
        Snapshot {
            task_id: task.to_string(),
            checkpoint: Some(number),
            timestamp: envelope.time,
            status: facts.status,
            progress: facts.progress,
            data: RawJson::range_of(&json, envelope.state),
            message: facts.message,
            budget: facts.budget,
            error: envelope.error.map(|range| RawJson::range_of(&json, range)),
            rollback_of: envelope.rollback_of,
            failures: facts.failures,
            retries: facts.retries,
            warnings: Vec::new(),
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

/// What the caller's thread and the background writer share.
#[derive(Debug)]
struct Core {
    config: SessionConfig,
    store: Store,
    ticker: Ticker,
    state: Mutex<State>,
    write_lock: Mutex<()>,
}

#[derive(Debug)]
pub struct Session {
    core: Arc<Core>,
    writer: writer::Slot,
}

/// A checkpoint captured and ready to write.
struct Prepared {
    snapshot: Snapshot,
    parts: WriteParts,
    /// Items counted since the previous checkpoint that this one covers.
    covered: u64,
}

/// The time a checkpoint records: whole seconds, as the file says, so the
/// state `checkpoint` returns and the one `restore` reads agree.
fn now_whole_seconds() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
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

impl Core {
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
            timestamp: now_whole_seconds(),
            status: state.status,
            progress: Progress::new(self.ticker.progress(), state.items_total),
            data: state.data.clone(),
            message: None,
            budget: BudgetFigures::new(state.budget.allocated(), state.budget.spent()),
            error: None,
            rollback_of: None,
            failures: state.failures,
            retries: state.retries,
            warnings: Vec::new(),
        }
    }

    /// Applies `change` and captures the checkpoint to write (state lock only).
    fn prepare(&self, change: impl FnOnce(&mut State, &Ticker) -> WriteParts) -> Prepared {
        let covered = self.ticker.since_checkpoint();
        let mut state = lock(&self.state);
        let parts = change(&mut state, &self.ticker);
        let snapshot = Snapshot {
            task_id: self.config.task_id.to_string(),
            checkpoint: None,
            timestamp: now_whole_seconds(),
            status: state.status,
            progress: Progress::new(self.ticker.progress(), state.items_total),
            data: parts.data.clone().unwrap_or_else(|| state.data.clone()),
            message: parts.message.clone(),
            budget: BudgetFigures::new(state.budget.allocated(), state.budget.spent()),
            error: parts.error_json.clone(),
            rollback_of: parts.rollback_of,
            failures: state.failures,
            retries: state.retries,
            warnings: Vec::new(),
        };
        Prepared {
            snapshot,
            parts,
            covered,
        }
    }

    /// Writes a captured checkpoint. The caller holds `write_lock` (and the
    /// fork gate).
    fn persist(&self, prepared: Prepared) -> Result<Snapshot> {
        let Prepared {
            mut snapshot,
            parts,
            ..
        } = prepared;
        if !self.config.enabled {
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
        let written = self.store.write_checkpoint(
            &self.config.task_id,
            &mut doc,
            &draft.facts(),
            &options,
        )?;
        lock(&self.state).last_checkpoint = Some(written.number);
        snapshot.checkpoint = Some(written.number);
        snapshot.warnings = written.warnings;
        Ok(snapshot)
    }
}

impl Session {
    /// Opens a session; with `auto_resume`, continues from the newest intact
    /// checkpoint. Damaged checkpoints never stop a session from starting.
    pub fn open(config: SessionConfig) -> Result<(Session, Option<Restored>)> {
        let store = Store::new(&config.checkpoint_dir)?;
        let session = Session {
            core: Arc::new(Core {
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
            }),
            writer: writer::Slot::default(),
        };
        let resumed = if session.core.config.auto_resume {
            let lookup = session
                .core
                .store
                .find(&session.core.config.task_id, Pick::Latest)?;
            let mut warnings = skipped_warnings(&session.core.config.task_id, &lookup);
            match lookup.found {
                Some(found) => {
                    let snapshot = Snapshot::from_found(found, &session.core.config.task_id);
                    session.core.adopt(&snapshot, true);
                    Some(Restored {
                        snapshot,
                        first_resume: true,
                        warnings,
                    })
                }
                None if !warnings.is_empty() => {
                    warnings.push(format!(
                        "task {:?}: no intact checkpoint to resume from; starting fresh",
                        session.core.config.task_id.as_str()
                    ));
                    Some(Restored {
                        snapshot: session.core.snapshot_now(None),
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
        &self.core.config.task_id
    }

    pub fn config(&self) -> &SessionConfig {
        &self.core.config
    }

    pub fn store(&self) -> &Store {
        &self.core.store
    }

    /// Applies `change` to the state, then writes the result as the next
    /// checkpoint, here and now. Whole writes are serialised by `write_lock`,
    /// so a session's checkpoints never go back in time.
    fn write(&self, change: impl FnOnce(&mut State, &Ticker) -> WriteParts) -> Result<Snapshot> {
        self.settle()?;
        let _pass = gate::enter();
        let _writing = lock(&self.core.write_lock);
        let prepared = self.core.prepare(change);
        let covered = prepared.covered;
        match self.core.persist(prepared) {
            Ok(snapshot) => {
                self.core.ticker.rearm(covered);
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
    pub fn is_async(&self) -> bool {
        self.core.config.async_writes && self.core.config.enabled
    }

    /// True when an async checkpoint would wait for the writer.
    pub fn writer_is_full(&self) -> bool {
        self.writer.is_full()
    }

    /// Waits until the writer's queue has room.
    pub fn wait_for_writer(&self) {
        self.writer.wait_for_room();
    }

    /// Waits until every checkpoint captured so far is durable; the number
    /// of the last one written. Reports a background write error.
    pub fn flush(&self) -> Result<Option<u64>> {
        let written = self.writer.flush()?;
        Ok(written.or_else(|| self.last_checkpoint()))
    }

    /// `checkpoint(data:, message:, progress:, items_total:)`: values not
    /// given carry over from the session.
    pub fn checkpoint(&self, request: CheckpointRequest) -> Result<Snapshot> {
        let change = |state: &mut State, ticker: &Ticker| {
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
        };
        if !(self.core.config.async_writes && self.core.config.enabled) {
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
                    let written = core.persist(prepared)?;
                    Ok(written.checkpoint.unwrap_or_default())
                });
                Ok((snapshot, job))
            })
    }

    /// Counts `items`; writes a checkpoint with the last data when one is
    /// due. `Ok(None)` when nothing was due (the common, cheap case).
    pub fn tick(&self, items: u64) -> Result<Option<Snapshot>> {
        if !self.core.ticker.tick(items) {
            return Ok(None);
        }
        self.checkpoint(CheckpointRequest::default()).map(Some)
    }

    /// The `tick` test alone, for callers that write on another path.
    #[inline]
    pub fn tick_due(&self, items: u64) -> bool {
        self.core.ticker.tick(items)
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
        lock(&self.core.state).failures < self.core.config.max_retries
    }

    pub fn failures(&self) -> u32 {
        lock(&self.core.state).failures
    }

    pub fn retries(&self) -> u32 {
        lock(&self.core.state).retries
    }

    /// Goes back to the newest good checkpoint's progress and data and counts
    /// a retry. `None` (and a start from zero) when there is no good one.
    pub fn retry_from_checkpoint(&self) -> Result<(Option<Snapshot>, Vec<String>)> {
        self.settle()?;
        let _pass = gate::enter();
        let _writing = lock(&self.core.write_lock);
        let lookup = self
            .core
            .store
            .find(&self.core.config.task_id, Pick::LatestGood)?;
        let warnings = skipped_warnings(&self.core.config.task_id, &lookup);
        let task = &self.core.config.task_id;
        let snapshot = lookup.found.map(|found| Snapshot::from_found(found, task));
        match &snapshot {
            Some(snapshot) => self.core.adopt(snapshot, false),
            None => {
                let mut state = lock(&self.core.state);
                self.core.ticker.set_progress(0);
                state.items_total = None;
                state.data = RawJson::empty_object();
            }
        }
        let mut state = lock(&self.core.state);
        state.retries = state.retries.saturating_add(1);
        state.status = Status::Running;
        Ok((snapshot, warnings))
    }

    /// Makes the newest good checkpoint before the current one (or number
    /// `to`) current again by writing it anew: history is never destroyed.
    pub fn rollback(&self, to: Option<u64>) -> Result<(Snapshot, Vec<String>)> {
        self.settle()?;
        let task = &self.core.config.task_id;
        let (target, warnings) = match to {
            Some(number) => (self.core.store.read(task, number)?, Vec::new()),
            None => {
                let current = self
                    .core
                    .store
                    .numbers(task)?
                    .last()
                    .copied()
                    .ok_or_else(|| {
                        Error::NotFound(format!(
                        "task {:?} has no checkpoint to roll back; write one with checkpoint first",
                        task.as_str()
                    ))
                    })?;
                let lookup = self.core.store.find(task, Pick::GoodBefore(current))?;
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
        let target = Snapshot::from_found(target, task);
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
        self.settle()?;
        let _pass = gate::enter();
        let _writing = lock(&self.core.write_lock);
        let task = &self.core.config.task_id;
        let (found, warnings) = match number {
            Some(n) => (self.core.store.read(task, n)?, Vec::new()),
            None => {
                let lookup = self.core.store.find(task, Pick::Latest)?;
                let warnings = skipped_warnings(task, &lookup);
                match lookup.found {
                    Some(found) => (found, warnings),
                    None if lookup.skipped.is_empty() => return Ok(None),
                    None => {
                        let path = self
                            .core
                            .store
                            .checkpoint_path(task, lookup.skipped[0].number);
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
        let snapshot = Snapshot::from_found(found, task);
        let first_resume = !lock(&self.core.state).resumed;
        self.core.adopt(&snapshot, false);
        Ok(Some(Restored {
            snapshot,
            first_resume,
            warnings,
        }))
    }

    /// True when the task has an intact checkpoint.
    pub fn checkpoint_exists(&self) -> Result<bool> {
        self.settle()?;
        Ok(self
            .core
            .store
            .summary(&self.core.config.task_id)?
            .is_some())
    }

    pub fn last_checkpoint_time(&self) -> Result<Option<DateTime<Utc>>> {
        self.settle()?;
        Ok(self
            .core
            .store
            .summary(&self.core.config.task_id)?
            .and_then(|s| crate::checkpoint::parse_timestamp(&s.updated_at).ok()))
    }

    /// True when the newest checkpoint file is intact; false when it is
    /// damaged or there is none.
    pub fn checkpoint_valid(&self) -> Result<bool> {
        self.settle()?;
        let task = &self.core.config.task_id;
        let Some(&latest) = self.core.store.numbers(task)?.last() else {
            return Ok(false);
        };
        match self.core.store.read(task, latest) {
            Ok(_) => Ok(true),
            Err(Error::Corrupt { .. }) | Err(Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Forgets the task: removes its checkpoints and zeroes the session.
    pub fn reset(&self) -> Result<()> {
        self.settle()?;
        let _pass = gate::enter();
        let _writing = lock(&self.core.write_lock);
        if self.core.config.enabled {
            self.core.store.remove(&self.core.config.task_id)?;
        }
        let mut state = lock(&self.core.state);
        self.core.ticker.reset();
        state.items_total = None;
        state.data = RawJson::empty_object();
        state.status = Status::Running;
        state.budget = Budget::new(self.core.config.budget, self.core.config.warn_threshold);
        state.failures = 0;
        state.retries = 0;
        state.last_checkpoint = None;
        Ok(())
    }

    pub fn progress(&self) -> u64 {
        self.core.ticker.progress()
    }

    pub fn items_total(&self) -> Option<u64> {
        lock(&self.core.state).items_total
    }

    pub fn status(&self) -> Status {
        lock(&self.core.state).status
    }

    pub fn last_checkpoint(&self) -> Option<u64> {
        lock(&self.core.state).last_checkpoint
    }

    pub fn track_cost(&self, amount: Money) -> Result<Vec<BudgetEvent>> {
        if amount.is_negative() {
            return Err(Error::invalid(format!(
                "amount must not be negative; got {amount}"
            )));
        }
        if !self.core.config.track_costs {
            return Ok(Vec::new());
        }
        lock(&self.core.state).budget.track(amount)
    }

    pub fn increase_budget(&self, amount: Money) -> Result<()> {
        lock(&self.core.state).budget.increase(amount)
    }

    pub fn budget(&self) -> Budget {
        lock(&self.core.state).budget.clone()
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
