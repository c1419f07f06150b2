//! The in-process store (`store: "memory"`): what LangGraph's MemorySaver
//! is to its users — a store for a user's own test suite, with every
//! behaviour of the file store and no disk. Checkpoints are kept as the
//! same sealed documents the file store writes, so reading them back takes
//! the same checks. Stores are named (`memory://NAME`, `memory` being
//! `default`) and live as long as the process; each forked child has its
//! own copy.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::claims::{self, Ask, Claim, ClaimState, Claimed, QueueRun, Renewed, RunEntry};
use super::layout::{checkpoint_file_name, TaskId};
use super::seal::Seal;
use super::summary::{sort_newest_first, TaskSummary};
use super::{
    next_number, settle, summarize, verify, Backend, Found, JustWritten, Listing, Settled,
    WriteOptions, Written,
};
use crate::checkpoint::{Document, Facts};
use crate::error::{Error, Result};

#[derive(Debug, Default)]
pub(crate) struct MemoryStore {
    name: String,
    /// One lock for the whole store: every operation is short, and none
    /// does I/O.
    tasks: Mutex<Tasks>,
    /// Queue claims and runs; taken inside `tasks` when both are needed
    /// (a write's fence, a claim ordered with writes).
    coordination: Mutex<Coordination>,
    /// Each task's summary as its last write left it (taken inside `tasks`).
    summaries: Mutex<HashMap<String, TaskSummary>>,
}

#[derive(Debug, Default)]
struct Coordination {
    claims: HashMap<String, Claim>,
    runs: HashMap<String, QueueRun>,
}

/// Task id → checkpoint number → the sealed document.
type Tasks = BTreeMap<String, BTreeMap<u64, Arc<Vec<u8>>>>;

impl MemoryStore {
    /// The store of that name in this process, made on first use.
    pub(super) fn named(name: &str) -> Arc<MemoryStore> {
        static STORES: OnceLock<Mutex<HashMap<String, Arc<MemoryStore>>>> = OnceLock::new();
        let stores = STORES.get_or_init(Default::default);
        let mut stores = stores.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(stores.entry(name.to_owned()).or_insert_with(|| {
            Arc::new(MemoryStore {
                name: name.to_owned(),
                ..MemoryStore::default()
            })
        }))
    }

    fn tasks(&self) -> MutexGuard<'_, Tasks> {
        // A panic while holding it left plain data behind: still usable.
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn summaries(&self) -> MutexGuard<'_, HashMap<String, TaskSummary>> {
        self.summaries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn coordination(&self) -> MutexGuard<'_, Coordination> {
        self.coordination.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read_in(tasks: &Tasks, task: &TaskId, number: u64, location: PathBuf) -> Result<Found> {
        let bytes = tasks
            .get(task.as_str())
            .and_then(|checkpoints| checkpoints.get(&number))
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "task {task:?} has no checkpoint {number} in {}",
                    location
                        .parent()
                        .and_then(|p| p.parent())
                        .unwrap_or(&location)
                        .display()
                ))
            })?;
        let checkpoints = &tasks[task.as_str()];
        let dir = location
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        verify::open(
            task,
            number,
            bytes.to_vec(),
            &|n| dir.join(checkpoint_file_name(n)),
            &mut |n, _| Ok(checkpoints.get(&n).map(|b| b.to_vec())),
        )
    }

    fn summary_in(&self, tasks: &Tasks, task: &TaskId) -> (Option<TaskSummary>, Vec<String>) {
        let numbers: Vec<u64> = tasks
            .get(task.as_str())
            .map(|c| c.keys().copied().collect())
            .unwrap_or_default();
        summarize(
            task,
            &numbers,
            |n| Self::read_in(tasks, task, n, self.checkpoint_location(task, n)),
            |n| self.checkpoint_location(task, n),
        )
    }

    /// Replaces a stored checkpoint's bytes, as damage on a disk would: for
    /// tests of what readers do with a checkpoint that fails its checks.
    #[cfg(test)]
    pub(super) fn damage(&self, task: &TaskId, number: u64, bytes: Vec<u8>) {
        if let Some(checkpoints) = self.tasks().get_mut(task.as_str()) {
            checkpoints.insert(number, Arc::new(bytes));
        }
    }
}

impl Backend for MemoryStore {
    fn location(&self) -> String {
        format!("memory://{}", self.name)
    }

    fn checkpoint_location(&self, task: &TaskId, number: u64) -> PathBuf {
        PathBuf::from(format!(
            "memory://{}/{}/{}",
            self.name,
            task.as_str(),
            checkpoint_file_name(number)
        ))
    }

    fn task_location(&self, task: &TaskId) -> String {
        format!("memory://{}/{}", self.name, task.as_str())
    }

    fn write(
        &self,
        task: &TaskId,
        doc: &mut Document,
        facts: &Facts,
        options: &WriteOptions,
    ) -> Result<Written> {
        let mut tasks = self.tasks();
        claims::check_fence(
            task.as_str(),
            self.coordination().claims.get(task.as_str()),
            options.fence.as_ref(),
            claims::now_ns(),
        )?;
        let numbers: Vec<u64> = tasks
            .get(task.as_str())
            .map(|c| c.keys().copied().collect())
            .unwrap_or_default();
        let mut summaries = self.summaries();
        super::check_base(
            task,
            options.delta_base.as_ref(),
            &numbers,
            summaries.get(task.as_str()),
        )?;
        let number = next_number(&numbers, |n| self.checkpoint_location(task, n))?;
        doc.set("sequence", &number);
        let (bytes, seal) = super::seal_in_memory(doc);
        tasks
            .entry(task.to_string())
            .or_default()
            .insert(number, Arc::new(bytes));
        let Settled {
            pruned, summary, ..
        } = settle(
            JustWritten {
                task,
                number,
                seal,
                facts,
                before: &numbers,
                previous: summaries.get(task.as_str()),
                max_checkpoints: options.max_checkpoints,
                chain_start: options.delta_base.map(|base| base.full),
            },
            &mut |n| Self::read_in(&tasks, task, n, self.checkpoint_location(task, n)),
            &mut |_| true,
            &|n| self.checkpoint_location(task, n),
        );
        let checkpoints = tasks.get_mut(task.as_str()).expect("inserted above");
        for n in &pruned {
            checkpoints.remove(n);
        }
        summaries.insert(task.to_string(), summary.clone());
        Ok(Written {
            number,
            summary,
            pruned,
            warnings: Vec::new(),
        })
    }

    fn read_raw(&self, task: &TaskId, number: u64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tasks()
            .get(task.as_str())
            .and_then(|checkpoints| checkpoints.get(&number))
            .map(|bytes| bytes.to_vec()))
    }

    fn read(&self, task: &TaskId, number: u64) -> Result<Found> {
        Self::read_in(
            &self.tasks(),
            task,
            number,
            self.checkpoint_location(task, number),
        )
    }

    fn numbers(&self, task: &TaskId) -> Result<Vec<u64>> {
        Ok(self
            .tasks()
            .get(task.as_str())
            .map(|c| c.keys().copied().collect())
            .unwrap_or_default())
    }

    fn summary(&self, task: &TaskId) -> Result<(Option<TaskSummary>, Vec<String>)> {
        Ok(self.summary_in(&self.tasks(), task))
    }

    fn list(&self) -> Result<Listing> {
        let tasks = self.tasks();
        let mut listing = Listing::default();
        for id in tasks.keys() {
            let task = TaskId::parse(id)?;
            let (summary, warnings) = self.summary_in(&tasks, &task);
            listing.warnings.extend(warnings);
            match summary {
                Some(summary) => listing.tasks.push(summary),
                None => listing
                    .warnings
                    .push(super::unlisted_warning(&task, tasks[id].len())),
            }
        }
        sort_newest_first(&mut listing.tasks);
        Ok(listing)
    }

    fn remove_if(
        &self,
        task: &TaskId,
        wanted: &mut dyn FnMut(Option<&TaskSummary>) -> bool,
    ) -> Result<bool> {
        let mut tasks = self.tasks();
        if !tasks.contains_key(task.as_str()) {
            return Ok(false);
        }
        let (summary, _) = self.summary_in(&tasks, task);
        if !wanted(summary.as_ref()) {
            return Ok(false);
        }
        tasks.remove(task.as_str());
        self.summaries().remove(task.as_str());
        self.coordination().claims.remove(task.as_str());
        Ok(true)
    }

    fn is_newest(&self, task: &TaskId, number: u64, seal: Seal) -> Result<bool> {
        let tasks = self.tasks();
        let Some(checkpoints) = tasks.get(task.as_str()) else {
            return Ok(false);
        };
        Ok(checkpoints.last_key_value().is_some_and(|(&n, bytes)| {
            n == number
                && bytes.len() as u64 == seal.len
                && super::seal::stated_crc(bytes) == Some(seal.crc)
        }))
    }

    fn claim(&self, task: &TaskId, ask: &Ask) -> Result<Claimed> {
        let tasks = self.tasks();
        let newest = tasks
            .get(task.as_str())
            .and_then(|c| c.last_key_value())
            .map(|(&n, _)| n);
        let mut coordination = self.coordination();
        let existing = coordination.claims.get(task.as_str());
        let claimed = claims::claim(existing, task.as_str(), ask, claims::now_ns(), newest);
        if let Claimed::Taken(claim) | Claimed::Finished(claim) = &claimed {
            coordination.claims.insert(task.to_string(), claim.clone());
        }
        Ok(claimed)
    }

    fn renew(&self, task: &TaskId, token: u64, lease_ns: i64, spent: &str) -> Result<Renewed> {
        let mut coordination = self.coordination();
        let existing = coordination.claims.get(task.as_str());
        let (renewed, outcome) = claims::renew(existing, token, claims::now_ns(), lease_ns, spent);
        if let Some(claim) = renewed {
            coordination.claims.insert(task.to_string(), claim);
        }
        Ok(outcome)
    }

    fn end_claim(
        &self,
        task: &TaskId,
        token: u64,
        state: Option<ClaimState>,
        spent: &str,
    ) -> Result<bool> {
        let _writes = self.tasks();
        let mut coordination = self.coordination();
        let existing = coordination.claims.get(task.as_str());
        match claims::end(existing, token, state, claims::now_ns(), spent) {
            Some(claim) => {
                coordination.claims.insert(task.to_string(), claim);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn cancel(&self, task: &TaskId) -> Result<Option<Claim>> {
        let mut coordination = self.coordination();
        let cancelled = claims::cancel(coordination.claims.get(task.as_str()), task.as_str());
        if let Some(claim) = &cancelled {
            coordination.claims.insert(task.to_string(), claim.clone());
        }
        Ok(cancelled)
    }

    fn claim_of(&self, task: &TaskId) -> Result<Option<Claim>> {
        Ok(self.coordination().claims.get(task.as_str()).cloned())
    }

    fn enter_run(&self, queue: &TaskId, entry: RunEntry, grace_ns: i64) -> Result<QueueRun> {
        let mut coordination = self.coordination();
        let run = claims::enter_run(
            coordination.runs.get(queue.as_str()),
            entry,
            claims::now_ns(),
            grace_ns,
        );
        coordination.runs.insert(queue.to_string(), run.clone());
        Ok(run)
    }

    fn touch_run(&self, queue: &TaskId, run: u64, until_ns: i64, close: bool) -> Result<()> {
        let mut coordination = self.coordination();
        if let Some(record) =
            claims::touch(coordination.runs.get(queue.as_str()), run, until_ns, close)
        {
            coordination.runs.insert(queue.to_string(), record);
        }
        Ok(())
    }
}
