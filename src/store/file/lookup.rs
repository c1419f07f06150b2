//! Reading checkpoint files: which numbers a task directory holds, and one
//! checkpoint read and verified.

use super::dir::{Dir, EntryKind};
use crate::error::{Error, Result};
use crate::store::layout::{
    checkpoint_file_name, is_temp_file_name, parse_checkpoint_file_name, TaskId,
};
use crate::store::{find_among, verify, Found, Lookup, Pick};

/// The checkpoint numbers in a task directory, ascending.
pub(super) fn scan_numbers(task_dir: &Dir, remove_temps: bool) -> Result<Vec<u64>> {
    Ok(scan(task_dir, remove_temps)?.0)
}

/// The checkpoint numbers in a task directory, ascending, and warnings for
/// those held by something that is not a regular file (a planted link,
/// directory or FIFO): whatever is there holds its number, so it is never
/// written over, and reading it reports what it is.
pub(super) fn scan(task_dir: &Dir, remove_temps: bool) -> Result<(Vec<u64>, Vec<String>)> {
    let mut numbers = Vec::new();
    let mut planted = Vec::new();
    for entry in task_dir.entries()? {
        if let Some(n) = parse_checkpoint_file_name(&entry.name) {
            numbers.push(n);
            if entry.kind != EntryKind::File {
                planted.push(format!(
                    "{} is not a regular file (a planted link, directory or FIFO?); it is never read, \
                     and its number is not reused — remove it",
                    task_dir.child_path(&entry.name).display()
                ));
            }
        } else if remove_temps && is_temp_file_name(&entry.name) && entry.kind == EntryKind::File {
            // Only called under the task lock: no live writer owns a temp file.
            task_dir.unlink(&entry.name)?;
        }
    }
    numbers.sort_unstable();
    Ok((numbers, planted))
}

pub(super) fn not_found(task: &TaskId, number: u64, store: &std::path::Path) -> Error {
    Error::NotFound(format!(
        "task {task:?} has no checkpoint {number} in {}; its checkpoints are listed by \
         SessionPersistence.checkpoints({task:?})",
        store.display()
    ))
}

/// Reads and verifies checkpoint `number` in its task directory.
pub(super) fn read_in(task_dir: &Dir, task: &TaskId, number: u64) -> Result<Found> {
    let name = checkpoint_file_name(number);
    let bytes = task_dir.read_file(&name)?.ok_or_else(|| {
        not_found(
            task,
            number,
            task_dir.path().parent().unwrap_or(task_dir.path()),
        )
    })?;
    verify::open(
        task,
        number,
        bytes,
        &|n| task_dir.child_path(&checkpoint_file_name(n)),
        &mut |n, _| task_dir.read_file(&checkpoint_file_name(n)),
    )
}

pub(super) fn find_in(task_dir: &Dir, task: &TaskId, numbers: &[u64], pick: Pick) -> Lookup {
    find_among(
        numbers,
        pick,
        |n| read_in(task_dir, task, n),
        |n| task_dir.child_path(&checkpoint_file_name(n)),
    )
}
