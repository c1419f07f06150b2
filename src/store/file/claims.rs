//! Queue claims on the file store: a task's claim is `<task>/claim.json`,
//! and a queue's run `<queue ledger task>/run.json`, each replaced whole
//! (temp file, rename) under the task directory's lock — the lock every
//! checkpoint write takes, so a takeover and a write of the old holder
//! never interleave. The lease clock is this machine's: every process
//! sharing a file store is on it. Claims are not fsynced: a power loss that
//! could roll one back also ends every worker that held it, and a task
//! finished meanwhile has its completed checkpoint, which is.

use super::caches::read_json_sealed;
use super::dir::Dir;
use super::write::write_sealed;
use super::FileStore;
use crate::error::Result;
use crate::store::claims::{self, Ask, Claim, ClaimState, Claimed, QueueRun, Renewed, RunEntry};
use crate::store::layout::TaskId;

pub(super) const CLAIM_FILE: &str = "claim.json";
const RUN_FILE: &str = "run.json";

/// A claim or run record as stored: sealed JSON, replaced atomically.
fn store_record<T: serde::Serialize>(dir: &Dir, name: &str, record: &T) -> Result<()> {
    let json = crate::checkpoint::json_bytes(record);
    // The seal closes the object: write all but the closing brace.
    write_sealed(
        dir,
        name,
        "claim",
        |out| out(&json[..json.len() - 1]),
        false,
    )?;
    Ok(())
}

pub(super) fn read_claim(task_dir: &Dir) -> Option<Claim> {
    read_json_sealed(task_dir, CLAIM_FILE)
}

impl FileStore {
    /// Runs `change` on the task's claim under the task's lock, storing
    /// what it returns to store.
    fn with_claim<T>(
        &self,
        task: &TaskId,
        create: bool,
        change: impl FnOnce(&Dir, Option<&Claim>) -> (Option<Claim>, T),
    ) -> Result<Option<T>> {
        let root = if create {
            Dir::create_all(self.root())?
        } else {
            match Dir::open_nofollow(self.root())? {
                Some(root) => root,
                None => return Ok(None),
            }
        };
        let Some((task_dir, _lock)) = self.lock_task(&root, task, create)? else {
            return Ok(None);
        };
        let existing = read_claim(&task_dir);
        let (stored, outcome) = change(&task_dir, existing.as_ref());
        if let Some(claim) = stored.filter(|c| Some(c) != existing.as_ref()) {
            store_record(&task_dir, CLAIM_FILE, &claim)?;
        }
        Ok(Some(outcome))
    }

    pub(super) fn claim_task(&self, task: &TaskId, ask: &Ask) -> Result<Claimed> {
        let now = claims::now_ns();
        let claimed = self.with_claim(task, true, |task_dir, existing| {
            let newest = super::lookup::scan_numbers(task_dir, false)
                .ok()
                .and_then(|numbers| numbers.last().copied());
            let claimed = claims::claim(existing, task.as_str(), ask, now, newest);
            let stored = match &claimed {
                Claimed::Taken(c) | Claimed::Finished(c) => Some(c.clone()),
                Claimed::Held(_) => None,
            };
            (stored, claimed)
        })?;
        Ok(claimed.expect("the task directory is created"))
    }

    pub(super) fn renew_claim(
        &self,
        task: &TaskId,
        token: u64,
        lease_ns: i64,
        spent: &str,
    ) -> Result<Renewed> {
        let now = claims::now_ns();
        let renewed = self.with_claim(task, false, |_, existing| {
            claims::renew(existing, token, now, lease_ns, spent)
        })?;
        Ok(renewed.unwrap_or(Renewed::Lost))
    }

    pub(super) fn end_task_claim(
        &self,
        task: &TaskId,
        token: u64,
        state: Option<ClaimState>,
        spent: &str,
    ) -> Result<bool> {
        let now = claims::now_ns();
        let ended = self.with_claim(task, false, |_, existing| {
            let ended = claims::end(existing, token, state, now, spent);
            let done = ended.is_some();
            (ended, done)
        })?;
        Ok(ended == Some(true))
    }

    pub(super) fn cancel_task(&self, task: &TaskId) -> Result<Option<Claim>> {
        let cancelled = self.with_claim(task, true, |_, existing| {
            let cancelled = claims::cancel(existing, task.as_str());
            (cancelled.clone(), cancelled)
        })?;
        Ok(cancelled.flatten())
    }

    pub(super) fn task_claim(&self, task: &TaskId) -> Result<Option<Claim>> {
        let Some(root) = Dir::open_nofollow(self.root())? else {
            return Ok(None);
        };
        Ok(root
            .open_subdir(task.as_str())?
            .and_then(|task_dir| read_claim(&task_dir)))
    }

    /// Runs `change` on the queue's run record, under the ledger task's lock.
    fn with_run<T>(
        &self,
        queue: &TaskId,
        change: impl FnOnce(Option<&QueueRun>) -> (Option<QueueRun>, T),
    ) -> Result<T> {
        let root = Dir::create_all(self.root())?;
        let (queue_dir, _lock) = self
            .lock_task(&root, queue, true)?
            .expect("created when missing");
        let existing: Option<QueueRun> = read_json_sealed(&queue_dir, RUN_FILE);
        let (stored, outcome) = change(existing.as_ref());
        if let Some(record) = stored.filter(|r| Some(r) != existing.as_ref()) {
            store_record(&queue_dir, RUN_FILE, &record)?;
        }
        Ok(outcome)
    }

    pub(super) fn enter_queue_run(
        &self,
        queue: &TaskId,
        entry: RunEntry,
        grace_ns: i64,
    ) -> Result<QueueRun> {
        let now = claims::now_ns();
        self.with_run(queue, |existing| {
            let run = claims::enter_run(existing, entry, now, grace_ns);
            (Some(run.clone()), run)
        })
    }

    pub(super) fn touch_queue_run(
        &self,
        queue: &TaskId,
        run: u64,
        until_ns: i64,
        close: bool,
    ) -> Result<()> {
        self.with_run(queue, |existing| {
            (claims::touch(existing, run, until_ns, close), ())
        })
    }
}
