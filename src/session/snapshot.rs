//! What a session hands out and keeps: the user's data as raw JSON with its
//! kinds, and a checkpoint as the caller sees it.

use std::ops::Range;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::checkpoint::{BudgetFigures, Progress, Status};
use crate::store::layout::TaskId;
use crate::store::Found;

/// Raw JSON bytes shared without copying: the user's data, or a slice of a
/// checkpoint file that was read.
#[derive(Debug, Clone)]
pub(crate) struct RawJson {
    buf: Arc<Vec<u8>>,
    range: Range<usize>,
}

impl RawJson {
    pub(crate) fn new(bytes: Vec<u8>) -> RawJson {
        let range = 0..bytes.len();
        RawJson {
            buf: Arc::new(bytes),
            range,
        }
    }

    /// The bytes `range` of a shared buffer.
    fn range_of(json: &Arc<Vec<u8>>, range: Range<usize>) -> RawJson {
        RawJson {
            buf: Arc::clone(json),
            range,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }
}

/// The user's data: JSON, and the kinds node saying which keys are Strings
/// and which strings are Symbols (`crate::kinds`), when any are.
#[derive(Debug, Clone)]
pub(crate) struct Data {
    pub(crate) json: RawJson,
    pub(crate) kinds: Option<RawJson>,
}

impl Data {
    pub(crate) fn new(json: Vec<u8>, kinds: Option<Vec<u8>>) -> Data {
        Data {
            json: RawJson::new(json),
            kinds: kinds.map(RawJson::new),
        }
    }

    pub(crate) fn empty_object() -> Data {
        Data::new(b"{}".to_vec(), None)
    }

    pub(crate) fn kinds_bytes(&self) -> Option<&[u8]> {
        self.kinds.as_ref().map(RawJson::as_bytes)
    }
}

/// A checkpoint as the caller sees it — what `restore` returns and what the
/// callbacks receive.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) task_id: String,
    /// `None` when writing is disabled.
    pub(crate) checkpoint: Option<u64>,
    pub(crate) timestamp: DateTime<Utc>,
    pub(crate) status: Status,
    pub(crate) progress: Progress,
    pub(crate) data: Data,
    pub(crate) message: Option<String>,
    pub(crate) budget: BudgetFigures,
    pub(crate) error: Option<Data>,
    /// The checkpoint whose state this one copies (a rollback or a retry).
    pub(crate) copy_of: Option<u64>,
    pub(crate) failures: u32,
    pub(crate) retries: u32,
    /// What the write worked around in the store (planted entries).
    pub(crate) warnings: Vec<String>,
}

impl Snapshot {
    /// A verified checkpoint of `task` (the store checked it names `task`).
    pub(crate) fn from_found(found: Found, task: &TaskId) -> Snapshot {
        let Found {
            number,
            json,
            envelope,
            ..
        } = found;
        let json = Arc::new(json);
        let facts = envelope.facts;
        let part = |range: Range<usize>, kinds: Option<Range<usize>>| Data {
            json: RawJson::range_of(&json, range),
            kinds: kinds.map(|k| RawJson::range_of(&json, k)),
        };
        Snapshot {
            task_id: task.to_string(),
            checkpoint: Some(number),
            timestamp: envelope.time,
            status: facts.status,
            progress: facts.progress,
            data: part(envelope.state, envelope.state_kinds),
            message: facts.message,
            budget: facts.budget,
            error: envelope
                .error
                .map(|range| part(range, envelope.error_kinds)),
            copy_of: envelope.copy_of,
            failures: facts.failures,
            retries: facts.retries,
            warnings: Vec::new(),
        }
    }

    /// The checkpoint a session standing here goes back from: the one whose
    /// state this is (for a copy, the original).
    pub(crate) fn stands_on(&self) -> Option<u64> {
        self.copy_of.or(self.checkpoint)
    }
}

/// What a restore found: the state, whether it is this session's first
/// resume (`on_resume` fires once), and damaged checkpoints passed over.
#[derive(Debug, Clone)]
pub(crate) struct Restored {
    pub(crate) snapshot: Snapshot,
    pub(crate) first_resume: bool,
    pub(crate) warnings: Vec<String>,
}
