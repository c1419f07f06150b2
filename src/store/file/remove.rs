//! Removing a task: one rename makes the whole task directory disappear at
//! once (so no reader sees half of it), then its files go. A removal that
//! crashed half-way leaves a `.trash-*` directory that `sweep` deletes.

use super::caches::summary_in;
use super::dir::EntryKind;
use super::FileStore;
use crate::error::Result;
use crate::store::layout::{is_temp_file_name, temp_file_name, TaskId, TRASH_PREFIX};
use crate::store::summary::TaskSummary;

impl FileStore {
    /// Removes the task if `wanted` says so of its current summary, deciding
    /// under the task's lock so a checkpoint written meanwhile is seen.
    pub(super) fn remove_task_if(
        &self,
        task: &TaskId,
        wanted: &mut dyn FnMut(Option<&TaskSummary>) -> bool,
    ) -> Result<bool> {
        let Some(root) = self.open_root()? else {
            return Ok(false);
        };
        let Some((task_dir, lock)) = self.lock_task(&root, task, false)? else {
            return Ok(false);
        };
        let (summary, _) = summary_in(&task_dir, task)?;
        if !wanted(summary.as_ref()) {
            return Ok(false);
        }
        let trash = temp_name_in(TRASH_PREFIX);
        root.rename_to(task.as_str(), &root, &trash)?;
        root.sync()?;
        self.maintain_index(&root, |index| {
            index.tasks.remove(task.as_str());
        })?;
        drop(lock);
        drop(task_dir);
        root.remove_tree(&trash)?;
        Ok(true)
    }

    /// Trash left by a removal that crashed half-way, and temp files an
    /// older version of the store left in the root.
    pub(super) fn sweep_leftovers(&self) -> Result<()> {
        if let Some(root) = self.open_root()? {
            for entry in root.entries()? {
                if entry.name.starts_with(TRASH_PREFIX)
                    || (is_temp_file_name(&entry.name) && entry.kind == EntryKind::File)
                {
                    root.remove_tree(&entry.name)?;
                }
            }
        }
        Ok(())
    }
}

fn temp_name_in(prefix: &str) -> String {
    let unique = temp_file_name("x");
    format!("{prefix}{}", unique.trim_start_matches('.'))
}
