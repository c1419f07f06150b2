//! The file store: numbered, sealed checkpoint files per task directory,
//! written crash-safely under a per-task lock, plus two summary caches.
//!
//! ```text
//! <root>/index.json                     every task's summary (a cache)
//! <root>/<task>/checkpoint_001.json     the checkpoints
//! <root>/<task>/metadata.json           the task's summary (a cache)
//! <root>/<task>/claim.json              a queue task's claim (`claims`)
//! <root>/queue.<name>/run.json          a queue's run (`claims`)
//! ```
//!
//! By job: `dir` (descriptor-relative file system calls that never follow
//! a link), `lookup` (reading and finding checkpoints), `write` (the crash-
//! safe write and retention), `caches` (metadata.json, index.json and
//! `list`), `remove` (removing tasks), `claims` (queue claims and runs).

mod caches;
mod claims;
pub(crate) mod dir;
mod lookup;
mod remove;
mod write;

#[cfg(test)]
pub(crate) mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::claims::{Ask, Claim, ClaimState, Claimed, QueueRun, Renewed, RunEntry};
use super::layout::{checkpoint_file_name, TaskId};
use super::seal::Seal;
use super::summary::TaskSummary;
use super::{Backend, Found, Listing, Lookup, Pick, WriteOptions, Written};
use crate::checkpoint::{Document, Facts};
use crate::error::Result;
use dir::{Dir, EntryKind, LockedDir};

/// How long a writer waits for another process's lock before giving up.
pub(crate) const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Writers keep index.json current while it is at most this big (about
/// 650 tasks). Past that, rewriting it on every checkpoint would make each
/// checkpoint cost O(tasks) — 25 ms at 10,000 tasks — so writers leave it,
/// and `list`, which checks every row anyway, repairs what changed.
pub(crate) const EAGER_INDEX_LIMIT: u64 = 256 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct FileStore {
    root: PathBuf,
    lock_timeout: Duration,
    eager_index_limit: u64,
}

impl FileStore {
    pub(crate) fn new(root: &Path) -> Result<FileStore> {
        Ok(FileStore {
            root: dir::absolute(root)?,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            eager_index_limit: EAGER_INDEX_LIMIT,
        })
    }

    /// See EAGER_INDEX_LIMIT.
    #[cfg(test)]
    pub(crate) fn with_eager_index_limit(mut self, bytes: u64) -> FileStore {
        self.eager_index_limit = bytes;
        self
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn task_path(&self, task: &TaskId) -> PathBuf {
        self.root.join(task.as_str())
    }

    pub(crate) fn checkpoint_path(&self, task: &TaskId, number: u64) -> PathBuf {
        self.task_path(task).join(checkpoint_file_name(number))
    }

    fn open_root(&self) -> Result<Option<Dir>> {
        match Dir::open(&self.root) {
            Ok(dir) => Ok(Some(dir)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The task's directory for reading: one `open` of root/task with
    /// O_NOFOLLOW, the only component inside the store. On refusal, asks
    /// again through the root, which says what is in the way.
    fn open_task(&self, task: &TaskId) -> Result<Option<Dir>> {
        match Dir::open_nofollow(&self.task_path(task)) {
            Ok(dir) => Ok(dir),
            Err(_) => match self.open_root()? {
                Some(root) => root.open_subdir(task.as_str()),
                None => Ok(None),
            },
        }
    }

    /// Locks a task directory that is still linked at `root/task` once
    /// locked (a concurrent `remove` may have moved the one we opened).
    fn lock_task(
        &self,
        root: &Dir,
        task: &TaskId,
        create: bool,
    ) -> Result<Option<(Dir, LockedDir)>> {
        loop {
            let task_dir = if create {
                let (task_dir, created) = root.create_subdir(task.as_str())?;
                if created {
                    // The new directory's name must survive a power loss too.
                    root.sync()?;
                }
                task_dir
            } else {
                match root.open_subdir(task.as_str())? {
                    Some(task_dir) => task_dir,
                    None => return Ok(None),
                }
            };
            let lock = task_dir.lock(self.lock_timeout)?;
            let mine = task_dir.self_stat()?;
            match root.stat(task.as_str())? {
                Some(now)
                    if now.kind == EntryKind::Dir && (now.dev, now.ino) == (mine.dev, mine.ino) =>
                {
                    return Ok(Some((task_dir, lock)))
                }
                _ if !create => return Ok(None),
                _ => continue,
            }
        }
    }
}

impl Backend for FileStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn checkpoint_location(&self, task: &TaskId, number: u64) -> PathBuf {
        self.checkpoint_path(task, number)
    }

    fn task_location(&self, task: &TaskId) -> String {
        self.task_path(task).display().to_string()
    }

    fn write(
        &self,
        task: &TaskId,
        doc: &mut Document,
        facts: &Facts,
        options: &WriteOptions,
    ) -> Result<Written> {
        self.write_checkpoint(task, doc, facts, options)
    }

    fn read(&self, task: &TaskId, number: u64) -> Result<Found> {
        match self.open_task(task)? {
            Some(task_dir) => lookup::read_in(&task_dir, task, number),
            None => Err(lookup::not_found(task, number, &self.root)),
        }
    }

    fn read_raw(&self, task: &TaskId, number: u64) -> Result<Option<Vec<u8>>> {
        match self.open_task(task)? {
            Some(task_dir) => task_dir.read_file(&checkpoint_file_name(number)),
            None => Ok(None),
        }
    }

    fn numbers(&self, task: &TaskId) -> Result<Vec<u64>> {
        match self.open_task(task)? {
            Some(task_dir) => lookup::scan_numbers(&task_dir, false),
            None => Ok(Vec::new()),
        }
    }

    fn find(&self, task: &TaskId, pick: Pick) -> Result<Lookup> {
        let Some(task_dir) = self.open_task(task)? else {
            return Ok(Lookup::default());
        };
        let numbers = lookup::scan_numbers(&task_dir, false)?;
        Ok(lookup::find_in(&task_dir, task, &numbers, pick))
    }

    fn summary(&self, task: &TaskId) -> Result<(Option<TaskSummary>, Vec<String>)> {
        match self.open_task(task)? {
            Some(task_dir) => caches::summary_in(&task_dir, task),
            None => Ok((None, Vec::new())),
        }
    }

    fn list(&self) -> Result<Listing> {
        self.list_tasks()
    }

    fn remove_if(
        &self,
        task: &TaskId,
        wanted: &mut dyn FnMut(Option<&TaskSummary>) -> bool,
    ) -> Result<bool> {
        self.remove_task_if(task, wanted)
    }

    fn is_newest(&self, task: &TaskId, number: u64, seal: Seal) -> Result<bool> {
        match self.open_task(task)? {
            Some(task_dir) => {
                let named = TaskSummary::naming(task.as_str(), number, seal);
                caches::summary_is_current(&task_dir, "", &named)
            }
            None => Ok(false),
        }
    }

    fn sweep(&self) -> Result<()> {
        self.sweep_leftovers()
    }

    fn claim(&self, task: &TaskId, ask: &Ask) -> Result<Claimed> {
        self.claim_task(task, ask)
    }

    fn renew(&self, task: &TaskId, token: u64, lease_ns: i64, spent: &str) -> Result<Renewed> {
        self.renew_claim(task, token, lease_ns, spent)
    }

    fn end_claim(
        &self,
        task: &TaskId,
        token: u64,
        state: Option<ClaimState>,
        spent: &str,
    ) -> Result<bool> {
        self.end_task_claim(task, token, state, spent)
    }

    fn cancel(&self, task: &TaskId) -> Result<Option<Claim>> {
        self.cancel_task(task)
    }

    fn claim_of(&self, task: &TaskId) -> Result<Option<Claim>> {
        self.task_claim(task)
    }

    fn enter_run(&self, queue: &TaskId, entry: RunEntry, grace_ns: i64) -> Result<QueueRun> {
        self.enter_queue_run(queue, entry, grace_ns)
    }

    fn touch_run(&self, queue: &TaskId, run: u64, until_ns: i64, close: bool) -> Result<()> {
        self.touch_queue_run(queue, run, until_ns, close)
    }
}
