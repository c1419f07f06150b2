//! Which tasks `cleanup` removes, and the removal itself, the same on every
//! backend (`bin/cli checkpoint clean --dry-run` asks the same question).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::layout::TaskId;
use super::{Backend, TaskSummary};
use crate::checkpoint::Status;
use crate::error::Result;

/// Which tasks `cleanup` removes: those whose last checkpoint is at least
/// `older_than` old, except the kinds it keeps.
#[derive(Debug, Clone)]
pub struct CleanupRule {
    pub older_than: Duration,
    pub keep_failed: bool,
    pub keep_completed: bool,
    pub keep_running: bool,
}

impl CleanupRule {
    pub fn removes(&self, summary: &TaskSummary, now: DateTime<Utc>) -> bool {
        let kept = match summary.status {
            Status::Failed => self.keep_failed,
            Status::Completed => self.keep_completed,
            Status::Running => self.keep_running,
        };
        if kept {
            return false;
        }
        let Ok(updated) = crate::checkpoint::parse_timestamp(&summary.updated_at) else {
            return false;
        };
        let age = now.signed_duration_since(updated);
        // An age too long for i64 milliseconds is older than any checkpoint.
        i64::try_from(self.older_than.as_millis())
            .is_ok_and(|limit| age.num_milliseconds() >= limit)
    }
}

/// Removes every task `rule` selects, each decided again under its lock (a
/// checkpoint written meanwhile is seen); with `dry_run`, removes nothing
/// and says which it would. The ids, sorted.
pub(super) fn run(
    backend: &dyn Backend,
    rule: &CleanupRule,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for summary in backend.list()?.tasks {
        if !rule.removes(&summary, now) {
            continue;
        }
        if dry_run {
            removed.push(summary.task_id);
            continue;
        }
        let task = TaskId::parse(&summary.task_id)?;
        if backend.remove_if(&task, &mut |current| {
            current.is_some_and(|s| rule.removes(s, now))
        })? {
            removed.push(summary.task_id);
        }
    }
    if !dry_run {
        backend.sweep()?;
    }
    removed.sort();
    Ok(removed)
}
