//! `MASTER::SessionPersistence`, without Ruby: checkpoint documents by
//! task id in one store — the caller's own document saved as the next
//! checkpoint (`document`), the latest loaded back, summaries, listing,
//! history, removal and cleanup. The binding calls only this.

mod document;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};

use crate::checkpoint::{CheckpointView, Facts};
use crate::error::{Error, Result};
use crate::session::{Data, RawJson};
use crate::store::layout::TaskId;
use crate::store::{
    CleanupRule, Found, Listing, Pick, Skipped, Store, StoreSpec, TaskSummary, WriteOptions,
    Written,
};
pub use document::{document, ENVELOPE};

/// One checkpoint of a task's history, as `bin/cli checkpoint show` lists
/// it: what its envelope says (never its state, which may be large), or
/// why it cannot be read.
#[derive(Debug, Clone)]
pub(crate) enum HistoryEntry {
    Intact {
        number: u64,
        facts: Box<Facts>,
        error: Option<Data>,
        copy_of: Option<u64>,
    },
    Damaged(Skipped),
}

/// The storage layer over one store.
#[derive(Debug, Clone)]
pub(crate) struct Persistence {
    store: Store,
}

impl Persistence {
    pub(crate) fn open(spec: &StoreSpec) -> Result<Persistence> {
        Ok(Persistence {
            store: Store::open(spec)?,
        })
    }

    /// Where the store is, for people.
    pub(crate) fn location(&self) -> String {
        self.store.location()
    }

    /// Where one task's checkpoints are, for people.
    pub(crate) fn task_location(&self, task: &TaskId) -> String {
        self.store.task_location(task)
    }

    /// Stores the caller's document (JSON, and the kinds of its keys and
    /// values) as the next checkpoint of `task`.
    pub(crate) fn save(
        &self,
        task: &TaskId,
        user_json: &[u8],
        user_kinds: Option<&[u8]>,
        options: &WriteOptions,
    ) -> Result<Written> {
        let mut doc = document(task, user_json, user_kinds)?;
        let json = doc.to_json();
        let view = CheckpointView::parse(&json).map_err(|e| {
            Error::invalid(format!(
                "data does not fit the checkpoint format ({e}); progress must be like \
                 {{items_processed: 45, items_total: 100}} and budget like {{allocated: 5.0, spent: 2.13}}"
            ))
        })?;
        let facts = view.facts();
        self.store.write_checkpoint(task, &mut doc, &facts, options)
    }

    /// The latest intact checkpoint, and warnings for the damaged ones
    /// passed over; an error when there are checkpoints and none is intact.
    pub(crate) fn load(&self, task: &TaskId) -> Result<(Option<Found>, Vec<String>)> {
        let lookup = self.store.find(task, Pick::Latest)?;
        let warnings = lookup.warnings(task);
        match lookup.found {
            Some(found) => Ok((Some(found), warnings)),
            None if lookup.skipped.is_empty() => Ok((None, warnings)),
            None => Err(Error::no_intact_checkpoint(task, lookup.skipped)),
        }
    }

    pub(crate) fn list(&self) -> Result<Listing> {
        self.store.list()
    }

    pub(crate) fn summary(&self, task: &TaskId) -> Result<(Option<TaskSummary>, Vec<String>)> {
        self.store.summary_with_warnings(task)
    }

    pub(crate) fn numbers(&self, task: &TaskId) -> Result<Vec<u64>> {
        self.store.numbers(task)
    }

    pub(crate) fn read(&self, task: &TaskId, number: u64) -> Result<Found> {
        self.store.read(task, number)
    }

    pub(crate) fn remove(&self, task: &TaskId) -> Result<bool> {
        self.store.remove(task)
    }

    pub(crate) fn cleanup(
        &self,
        rule: &CleanupRule,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Vec<String>> {
        self.store.cleanup(rule, now, dry_run)
    }

    /// Every checkpoint of `task`, oldest first. Each is verified as a
    /// restore would; only its envelope is kept, so memory stays one
    /// checkpoint's worth.
    pub(crate) fn history(&self, task: &TaskId) -> Result<Vec<HistoryEntry>> {
        let mut entries = Vec::new();
        // A delta checkpoint is read on its own and is intact when the one
        // before it (its base, listed just before) is.
        let mut intact: Option<u64> = None;
        for number in self.store.numbers(task)? {
            match self.store.read_envelope(task, number) {
                Ok(found) if found.chain.is_some() && intact != number.checked_sub(1) => entries
                    .push(HistoryEntry::Damaged(Skipped {
                        number,
                        reason: format!(
                            "its delta chain is broken at checkpoint {}: it is missing or damaged",
                            number - 1
                        ),
                        path: self.store.checkpoint_location(task, number),
                    })),
                Ok(found) => {
                    intact = Some(number);
                    entries.push(entry_of(found))
                }
                Err(Error::NotFound(_)) => {} // pruned meanwhile
                Err(Error::Corrupt { reason, path, .. }) => {
                    entries.push(HistoryEntry::Damaged(Skipped {
                        number,
                        reason,
                        path,
                    }))
                }
                // Something else in a checkpoint's place (a directory, a
                // FIFO, an unreadable file) is marked, and the rest listed.
                Err(e) => entries.push(HistoryEntry::Damaged(Skipped {
                    number,
                    reason: e.to_string(),
                    path: self.store.checkpoint_location(task, number),
                })),
            }
        }
        Ok(entries)
    }
}

fn entry_of(found: Found) -> HistoryEntry {
    let part =
        |range: Option<std::ops::Range<usize>>| range.map(|r| RawJson::new(found.json[r].to_vec()));
    let error = part(found.envelope.error.clone()).map(|json| Data {
        json,
        kinds: part(found.envelope.error_kinds.clone()),
    });
    HistoryEntry::Intact {
        number: found.number,
        facts: Box::new(found.envelope.facts),
        error,
        copy_of: found.envelope.copy_of,
    }
}
