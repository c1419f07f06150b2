//! Names inside the store: task ids as path components, numbered checkpoint
//! files, and the store's own dot-files.

use std::fmt;

use crate::error::{Error, Result};

pub(crate) const INDEX_FILE: &str = "index.json";
pub(crate) const METADATA_FILE: &str = "metadata.json";
const CHECKPOINT_PREFIX: &str = "checkpoint_";
const CHECKPOINT_SUFFIX: &str = ".json";
/// Temp files end so; a crash can leave them behind, and the next writer
/// holding the directory's lock removes them.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";
/// A task directory being removed is first renamed to this prefix, so it
/// disappears from the store in one step.
pub(crate) const TRASH_PREFIX: &str = ".trash-";
pub(crate) const MAX_TASK_ID_BYTES: usize = 255;

/// A task id that is safe as a single path component.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(String);

/// Quoted like the string it is, so messages read `task "x"`.
impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl TaskId {
    pub fn parse(id: &str) -> Result<TaskId> {
        let refuse = |why: &str| {
            Err(Error::invalid(format!(
                "task_id {id:?} {why}; use letters, digits, '-', '_' or '.' (as in \"refactor-users-module\")"
            )))
        };
        if id.is_empty() {
            return refuse("is empty");
        }
        if id == "." || id == ".." {
            return refuse("is a directory reference");
        }
        if id.contains('/') {
            return refuse("contains '/'");
        }
        if id.contains('\0') {
            return refuse("contains a NUL byte");
        }
        if id.chars().any(char::is_control) {
            return refuse("contains a control character");
        }
        if id.starts_with('.') {
            return refuse("starts with '.', which the store keeps for its own files");
        }
        if id.len() > MAX_TASK_ID_BYTES {
            return Err(Error::invalid(format!(
                "task_id is {} bytes long; the limit is {MAX_TASK_ID_BYTES} (it names a directory)",
                id.len()
            )));
        }
        if id == INDEX_FILE {
            return refuse("is the name of the store's index file");
        }
        Ok(TaskId(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `checkpoint_001.json` … `checkpoint_999.json`, then `checkpoint_1000.json`.
pub fn checkpoint_file_name(number: u64) -> String {
    format!("{CHECKPOINT_PREFIX}{number:03}{CHECKPOINT_SUFFIX}")
}

/// The number in a checkpoint file name; `None` for any other name,
/// including ones the store would not write (`checkpoint_01.json`).
pub fn parse_checkpoint_file_name(name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix(CHECKPOINT_PREFIX)?
        .strip_suffix(CHECKPOINT_SUFFIX)?;
    if digits.len() < 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number: u64 = digits.parse().ok()?;
    // 2^64-1 would leave no number after it: not a name the store writes.
    ((1..u64::MAX).contains(&number) && checkpoint_file_name(number) == name).then_some(number)
}

/// A temp name unique across processes and threads: `.<target>.<pid>.<n>.tmp`.
pub(crate) fn temp_file_name(target: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".{target}.{}.{n}{TEMP_SUFFIX}", std::process::id())
}

pub(crate) fn is_temp_file_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(TEMP_SUFFIX)
}

#[cfg(test)]
mod tests;
