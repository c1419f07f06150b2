//! A task's summary (`TaskSummary`), what every backend's `summary` and
//! `list` give, and the shape of the file store's two caches:
//! `<task>/metadata.json` (one task's summary) and `index.json` (every
//! task's summary, `IndexFile`). The file store rebuilds those from the
//! checkpoint files whenever they are missing, damaged or stale, so they are
//! rewritten in place without fsync (`file/caches.rs`): after a power loss
//! they are checked, not trusted.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Deserializer, Serialize};

use super::seal::Seal;
use crate::checkpoint::{BudgetFigures, Facts, Progress, Status, FORMAT_VERSION};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSummary {
    pub task_id: String,
    pub version: String,
    pub status: Status,
    #[serde(deserialize_with = "checkpoint_number")]
    pub latest_checkpoint: u64,
    #[serde(default, deserialize_with = "optional_checkpoint_number")]
    pub latest_good_checkpoint: Option<u64>,
    pub checkpoints: u64,
    pub created_at: String,
    pub updated_at: String,
    pub progress: Progress,
    pub budget: BudgetFigures,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub retries: u32,
    /// When the latest checkpoint was written, to the nanosecond: what
    /// orders tasks newest first (`updated_at` is whole seconds).
    #[serde(default)]
    pub written_at: Option<String>,
    /// What identifies the latest checkpoint file, so a reader can tell the
    /// file is still the one this summary describes (not damaged since).
    #[serde(default)]
    pub seal: Option<Seal>,
    /// The runs of kept checkpoints that are delta chains, as `[full,
    /// last]`: retention removes a chain whole or not at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chains: Vec<[u64; 2]>,
}

impl TaskSummary {
    /// A summary that only names a checkpoint and its seal (what freshness
    /// checks look at).
    pub(crate) fn naming(task_id: &str, latest: u64, seal: Seal) -> TaskSummary {
        TaskSummary {
            task_id: task_id.to_owned(),
            version: FORMAT_VERSION.to_owned(),
            status: Status::Running,
            latest_checkpoint: latest,
            latest_good_checkpoint: None,
            checkpoints: 1,
            created_at: String::new(),
            updated_at: String::new(),
            progress: Progress::default(),
            budget: BudgetFigures::default(),
            message: None,
            failures: 0,
            retries: 0,
            written_at: None,
            seal: Some(seal),
            chains: Vec::new(),
        }
    }

    /// When the latest checkpoint was written, as precisely as known: what
    /// "newest" means wherever tasks are ordered.
    pub(crate) fn recency(&self) -> chrono::DateTime<chrono::Utc> {
        self.written_at
            .as_deref()
            .and_then(|t| crate::checkpoint::parse_timestamp(t).ok())
            .or_else(|| crate::checkpoint::parse_timestamp(&self.updated_at).ok())
            .unwrap_or_default()
    }
}

/// Newest first: the most recently written task leads (ties by id).
pub(crate) fn sort_newest_first(tasks: &mut [TaskSummary]) {
    tasks.sort_by_cached_key(|row| (std::cmp::Reverse(row.recency()), row.task_id.clone()));
}

/// A checkpoint number as a summary may name it: one the store writes, from
/// 1, and one that has a successor. The store computes `latest + 1` for
/// every summary it reads (is the next file there?); a cache saying
/// 18446744073709551615 overflowed there (a panic in debug builds, checkpoint
/// 0 in release). Refused, the cache is rebuilt from the files instead.
fn checkpoint_number<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let number = u64::deserialize(d)?;
    if number == 0 || number == u64::MAX {
        return Err(serde::de::Error::custom(format!(
            "checkpoint number {number} is not one the store writes (1 to {})",
            u64::MAX - 1
        )));
    }
    Ok(number)
}

fn optional_checkpoint_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    struct Number(#[serde(deserialize_with = "checkpoint_number")] u64);
    Ok(Option::<Number>::deserialize(d)?.map(|Number(n)| n))
}

impl TaskSummary {
    pub fn from_facts(
        task_id: &str,
        latest: u64,
        latest_good: Option<u64>,
        checkpoints: u64,
        created_at: String,
        facts: &Facts,
        seal: Seal,
    ) -> TaskSummary {
        TaskSummary {
            task_id: task_id.to_owned(),
            version: FORMAT_VERSION.to_owned(),
            status: facts.status,
            latest_checkpoint: latest,
            latest_good_checkpoint: latest_good,
            checkpoints,
            created_at,
            updated_at: facts.timestamp.clone(),
            progress: facts.progress.clone(),
            budget: facts.budget,
            message: facts.message.clone(),
            failures: facts.failures,
            retries: facts.retries,
            written_at: facts.written_at.clone(),
            seal: Some(seal),
            chains: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IndexFile {
    #[serde(default)]
    pub version: String,
    /// Looked up by task while listing; written sorted, for people and diffs.
    #[serde(default, serialize_with = "sorted")]
    pub tasks: HashMap<String, TaskSummary>,
}

fn sorted<S: serde::Serializer>(
    tasks: &HashMap<String, TaskSummary>,
    s: S,
) -> Result<S::Ok, S::Error> {
    tasks.iter().collect::<BTreeMap<_, _>>().serialize(s)
}

#[cfg(test)]
mod tests;
