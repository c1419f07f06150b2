//! What a session's caller thread and its background writer share: the
//! state guarded by one mutex, and the steps of a write — capture the
//! checkpoint (`prepare`), write it (`persist`), adopt one read back.

use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, SubsecRound, Utc};

use super::delta::{Planned, Tail};
use super::{Data, RawJson, SessionConfig, Snapshot};
use crate::budget::Budget;
use crate::checkpoint::{BudgetFigures, Draft, ErrorInfo, Host, Progress, Status};
use crate::error::{Error, Result};
use crate::store::claims::Fence;
use crate::store::seal::Seal;
use crate::store::{Found, Store, WriteOptions};
use crate::ticker::Ticker;

#[derive(Debug)]
pub(super) struct State {
    pub(super) items_total: Option<u64>,
    pub(super) data: Data,
    pub(super) status: Status,
    pub(super) budget: Budget,
    /// Failures since the task last made progress (see `can_retry`).
    pub(super) failures: u32,
    pub(super) retries: u32,
    pub(super) last_checkpoint: Option<u64>,
    /// The checkpoint whose state the session stands on: the last one
    /// written or resumed, or for a rollback the one it copied. A rollback
    /// goes back from here, so two rollbacks go back two steps.
    pub(super) stands_on: Option<u64>,
    /// Progress of the checkpoint the session stands on: a checkpoint
    /// beyond it is progress, and clears the failures.
    pub(super) progress_mark: u64,
    pub(super) resumed: bool,
}

impl State {
    pub(super) fn fresh(config: &SessionConfig) -> State {
        State {
            items_total: None,
            data: Data::empty_object(),
            status: Status::Running,
            budget: Budget::new(config.budget, config.warn_threshold),
            failures: 0,
            retries: 0,
            last_checkpoint: None,
            stands_on: None,
            progress_mark: 0,
            resumed: false,
        }
    }
}

/// What the caller's thread and the background writer share.
#[derive(Debug)]
pub(super) struct Core {
    pub(super) config: SessionConfig,
    pub(super) store: Store,
    pub(super) ticker: Ticker,
    pub(super) state: Mutex<State>,
    pub(super) write_lock: Mutex<()>,
    /// The newest checkpoint as this session last read it, and its seal,
    /// until it writes: `restore` hands it out again while the file is
    /// still the newest and still that file, instead of reading (a large
    /// state) twice.
    pub(super) held: Mutex<Option<(Snapshot, Seal)>>,
    /// The queue claim this session writes for, if any: every write carries
    /// it, and the store refuses one whose claim is no longer current.
    pub(super) fence: Mutex<Option<Fence>>,
    /// The session's own last checkpoint, which a delta is written against.
    pub(super) tail: Mutex<Option<Tail>>,
}

/// A checkpoint captured and ready to write.
pub(super) struct Prepared {
    pub(super) snapshot: Snapshot,
    pub(super) error: Option<ErrorInfo>,
    /// A copy made by `retry_from_checkpoint` (else by `rollback`).
    pub(super) retry: bool,
    pub(super) written_at: DateTime<Utc>,
    /// Items counted since the previous checkpoint that this one covers.
    pub(super) covered: u64,
}

/// What a write changes beyond the request's data and message.
#[derive(Debug, Default)]
pub(super) struct WriteParts {
    pub(super) data: Option<Data>,
    pub(super) message: Option<String>,
    pub(super) error: Option<ErrorInfo>,
    pub(super) copy_of: Option<u64>,
    pub(super) retry: bool,
}

/// A poisoned lock means a panic elsewhere already became an error; the
/// state it guards is plain data and still consistent.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Core {
    /// Takes over a checkpoint's progress and data. With `whole`, also its
    /// budget, counters and status (a resume); otherwise spent money never
    /// goes down.
    pub(super) fn adopt(&self, snapshot: &Snapshot, whole: bool) {
        let mut state = lock(&self.state);
        self.ticker.set_progress(snapshot.progress.items_processed);
        state.items_total = snapshot.progress.items_total;
        state.data = snapshot.data.clone();
        state.resumed = true;
        state.stands_on = snapshot.stands_on();
        state.progress_mark = snapshot.progress.items_processed;
        if whole {
            state.failures = snapshot.failures;
            state.retries = snapshot.retries;
            state.status = snapshot.status;
            state.last_checkpoint = snapshot.checkpoint;
        }
        self.adopt_money(&mut state, &snapshot.budget);
    }

    /// Spent money carries over and never goes down; the limit comes from
    /// the history only when this session was given none.
    pub(super) fn adopt_money(&self, state: &mut State, figures: &BudgetFigures) {
        let spent = state.budget.spent().max(figures.spent);
        if self.config.budget.is_none() && state.budget.allocated().is_none() {
            state.budget = Budget::new(figures.allocated, self.config.warn_threshold);
        }
        state.budget.resume(spent);
    }

    /// The session as it stands, as if checkpointed now (not written).
    pub(super) fn snapshot_now(&self, number: Option<u64>) -> Snapshot {
        let state = lock(&self.state);
        Snapshot {
            task_id: self.config.task_id.to_string(),
            checkpoint: number,
            timestamp: Utc::now().trunc_subsecs(0),
            status: state.status,
            progress: Progress::new(self.ticker.progress(), state.items_total),
            data: state.data.clone(),
            message: None,
            budget: BudgetFigures::new(state.budget.allocated(), state.budget.spent()),
            error: None,
            copy_of: None,
            failures: state.failures,
            retries: state.retries,
            warnings: Vec::new(),
        }
    }

    /// Applies `change` and captures the checkpoint to write (state lock only).
    pub(super) fn prepare(
        &self,
        change: impl FnOnce(&mut State, &Ticker) -> WriteParts,
    ) -> Prepared {
        let covered = self.ticker.since_checkpoint();
        let mut state = lock(&self.state);
        let parts = change(&mut state, &self.ticker);
        if let Some(data) = &parts.data {
            state.data = data.clone();
        }
        let written_at = Utc::now();
        let error = parts.error.as_ref().map(|e| Data {
            json: RawJson::new(crate::checkpoint::json_bytes(e)),
            kinds: e.kinds().map(RawJson::new),
        });
        let snapshot = Snapshot {
            task_id: self.config.task_id.to_string(),
            checkpoint: None,
            // Whole seconds, as the file says, so the state `checkpoint`
            // returns and the one `restore` reads agree.
            timestamp: written_at.trunc_subsecs(0),
            status: state.status,
            progress: Progress::new(self.ticker.progress(), state.items_total),
            data: state.data.clone(),
            message: parts.message,
            budget: BudgetFigures::new(state.budget.allocated(), state.budget.spent()),
            error,
            copy_of: parts.copy_of,
            failures: state.failures,
            retries: state.retries,
            warnings: Vec::new(),
        };
        Prepared {
            snapshot,
            error: parts.error,
            retry: parts.retry,
            written_at,
            covered,
        }
    }

    /// Writes a captured checkpoint. The caller holds `write_lock` (and the
    /// fork gate).
    pub(super) fn persist(&self, prepared: &Prepared) -> Result<Snapshot> {
        let mut snapshot = prepared.snapshot.clone();
        if !self.config.enabled {
            self.stand_on(&snapshot, None);
            return Ok(snapshot);
        }
        let error_kinds = snapshot.error.as_ref().and_then(|e| e.kinds_bytes());
        let parts: Vec<(&str, &[u8])> = [
            ("state", snapshot.data.kinds_bytes()),
            ("error", error_kinds),
        ]
        .into_iter()
        .filter_map(|(name, kinds)| kinds.map(|k| (name, k)))
        .collect();
        let kinds = crate::kinds::write::document(&parts);
        let draft = Draft {
            task_id: self.config.task_id.as_str(),
            timestamp: snapshot.timestamp,
            status: snapshot.status,
            message: snapshot.message.as_deref(),
            progress: snapshot.progress.clone(),
            budget: snapshot.budget,
            state: snapshot.data.json.as_bytes(),
            error: prepared.error.as_ref(),
            copy_of: snapshot.copy_of,
            retry: prepared.retry,
            failures: snapshot.failures,
            retries: snapshot.retries,
            host: Host::current(),
            written_at: prepared.written_at,
            kinds: kinds.as_deref(),
        };
        let tail = lock(&self.tail).clone();
        let mut doc = draft.to_document();
        let state = snapshot.data.json.as_bytes();
        let envelope = (doc.byte_len() - state.len() + crate::store::seal::SUFFIX_LEN) as u64;
        let mut planned: Option<Planned> = match (&tail, self.config.delta_threshold) {
            (Some(tail), Some(threshold)) if snapshot.copy_of.is_none() => {
                tail.plan(state, threshold, envelope)
            }
            _ => None,
        };
        if let Some(planned) = &planned {
            doc.replace_member("state", "delta", planned.member.as_slice());
        }
        let mut options = WriteOptions {
            max_checkpoints: self.config.max_checkpoints,
            durable: self.config.durable,
            fence: lock(&self.fence).clone(),
            delta_base: planned.as_ref().map(|p| p.base),
        };
        let facts = draft.facts();
        let written =
            match self
                .store
                .write_checkpoint(&self.config.task_id, &mut doc, &facts, &options)
            {
                // Another writer came between: the state goes whole.
                Err(Error::DeltaBaseMoved { .. }) => {
                    planned = None;
                    options.delta_base = None;
                    doc = draft.to_document();
                    self.store
                        .write_checkpoint(&self.config.task_id, &mut doc, &facts, &options)?
                }
                written => written?,
            };
        *lock(&self.tail) = written.summary.seal.map(|seal| {
            Tail::after(
                tail.as_ref(),
                planned.as_ref(),
                written.number,
                seal,
                snapshot.data.json.clone(),
            )
        });
        self.stand_on(&snapshot, Some(written.number));
        snapshot.checkpoint = Some(written.number);
        snapshot.warnings = written.warnings;
        Ok(snapshot)
    }

    /// A checkpoint read as the newest: kept for the next `restore`.
    /// Also what the next delta may be written against: the store checks
    /// it is still the newest when it is.
    pub(super) fn hold(&self, found: Found) -> Snapshot {
        let seal = found.seal;
        let chain = found.chain;
        let snapshot = Snapshot::from_found(found, &self.config.task_id);
        *lock(&self.held) = Some((snapshot.clone(), seal));
        if let Some(number) = snapshot.checkpoint {
            *lock(&self.tail) = Some(Tail::resumed(
                number,
                seal,
                snapshot.data.json.clone(),
                chain,
            ));
        }
        snapshot
    }

    /// After a write (numbered `number`, or not written at all).
    pub(super) fn stand_on(&self, snapshot: &Snapshot, number: Option<u64>) {
        *lock(&self.held) = None;
        let mut state = lock(&self.state);
        if number.is_some() {
            state.last_checkpoint = number;
        }
        state.stands_on = snapshot.copy_of.or(number).or(state.stands_on);
        state.progress_mark = snapshot.progress.items_processed;
    }
}
