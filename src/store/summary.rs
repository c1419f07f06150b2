//! The two caches beside the checkpoints: `<task>/metadata.json` (one task's
//! summary) and `index.json` (every task's summary). Both are rebuilt from the
//! checkpoint files whenever they are missing, damaged or stale, so they are
//! written atomically but without fsync: after a power loss they are checked,
//! not trusted.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::checkpoint::{BudgetFigures, Facts, Progress, Status, FORMAT_VERSION};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSummary {
    pub task_id: String,
    pub version: String,
    pub status: Status,
    pub latest_checkpoint: u64,
    #[serde(default)]
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
}

impl TaskSummary {
    pub fn from_facts(
        task_id: &str,
        latest: u64,
        latest_good: Option<u64>,
        checkpoints: u64,
        created_at: String,
        facts: &Facts,
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
