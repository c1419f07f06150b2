//! Where checkpoints live: the interface every backend implements, and the
//! rules that are the same on all of them (which checkpoint a lookup picks,
//! what a task's summary says, what retention prunes, what cleanup removes).
//!
//! A backend stores each checkpoint as the exact sealed JSON document the
//! file store writes (`seal`), so damage is detected the same way on every
//! backend (`verify`). Backends:
//! - `file`: the default, one directory per task (`file/`);
//! - `memory`: in-process, for users' own test suites (`memory.rs`);
//! - `postgres`: one database for many processes and machines (`postgres/`).
//!
//! (Longer than most files here: it is the one interface every backend and
//! service meets — the `Backend` trait, the `Store` handle, the types they
//! pass — and the shared rules sit beside it so that no backend has its
//! own copy.)

pub(crate) mod claims;
mod cleanup;
pub(crate) mod file;
pub(crate) mod gate;
pub(crate) mod layout;
mod memory;
mod postgres;
mod retention;
pub(crate) mod seal;
pub(crate) mod summary;
mod verify;

#[cfg(test)]
mod conformance;

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::checkpoint::{Document, Facts, Status};
use crate::error::{Error, Result};
use claims::{Ask, Claim, ClaimState, Claimed, Fence, QueueRun, Renewed, RunEntry};
pub use cleanup::CleanupRule;
use layout::TaskId;
use seal::Seal;
pub(crate) use summary::TaskSummary;
pub use verify::{resolve_state, verify_checkpoint};

#[derive(Debug, Clone)]
pub(crate) struct WriteOptions {
    /// Keep at most this many checkpoints per task (never pruning the
    /// newest, nor the newest non-failed one); `None` keeps all.
    pub(crate) max_checkpoints: Option<u64>,
    /// Make the write durable before it returns (fsync on the file store).
    /// Off only for tests and benchmarks that measure all but the disk.
    pub(crate) durable: bool,
    /// A queue task's write: refused (`LeaseLost`) unless this claim is
    /// still the task's, checked under the lock the write takes.
    pub(crate) fence: Option<Fence>,
    /// A delta checkpoint's base: written only while that checkpoint is
    /// still the task's newest, else refused with `Error::DeltaBaseMoved`.
    pub(crate) delta_base: Option<DeltaBase>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            max_checkpoints: None,
            durable: true,
            fence: None,
            delta_base: None,
        }
    }
}

/// The checkpoint a delta is written against, as its writer left it, and
/// the whole checkpoint its chain starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeltaBase {
    pub(crate) number: u64,
    pub(crate) seal: Seal,
    pub(crate) full: u64,
}

/// Refuses a delta whose base is no longer the newest checkpoint as its
/// writer left it (another writer came between, or the task was reset and
/// written again): its change would apply to the wrong state. A missing or
/// stale summary refuses too; the writer then writes the state whole.
pub(crate) fn check_base(
    task: &TaskId,
    base: Option<&DeltaBase>,
    numbers: &[u64],
    previous: Option<&TaskSummary>,
) -> Result<()> {
    let Some(base) = base else { return Ok(()) };
    let holds = numbers.last() == Some(&base.number)
        && previous
            .is_some_and(|p| p.latest_checkpoint == base.number && p.seal == Some(base.seal));
    if holds {
        Ok(())
    } else {
        Err(Error::DeltaBaseMoved {
            task_id: task.to_string(),
            base: base.number,
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub(crate) number: u64,
    /// The task's summary after the write (its seal is what a delta's base
    /// is checked against), and the checkpoints it pruned: the conformance
    /// suite checks backends agree on both.
    pub(crate) summary: TaskSummary,
    #[cfg_attr(not(test), expect(dead_code, reason = "checked by tests only"))]
    pub(crate) pruned: Vec<u64>,
    /// Things in the store that are not its own and were worked around.
    pub(crate) warnings: Vec<String>,
}

/// A checkpoint that passed its integrity check: its JSON text (a delta
/// checkpoint's with its chain applied: the whole state in `state`).
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) number: u64,
    pub(crate) json: Vec<u8>,
    pub(crate) envelope: Envelope,
    /// The seal of the checkpoint as stored.
    pub(crate) seal: Seal,
    /// For a delta checkpoint, the chain it was resolved through.
    pub(crate) chain: Option<Chain>,
}

/// A delta checkpoint's chain: the whole checkpoint it starts at, how many
/// delta checkpoints it has up to this one, and their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chain {
    pub(crate) full: u64,
    pub(crate) links: u32,
    pub(crate) bytes: u64,
}

impl Found {
    /// The document parsed again, for callers that need every member.
    #[cfg(test)]
    pub(crate) fn view(&self) -> crate::checkpoint::CheckpointView<'_> {
        crate::checkpoint::CheckpointView::parse(&self.json).expect("verified when read")
    }

    /// The user's data: raw JSON within `json`.
    #[cfg(test)]
    pub(crate) fn state(&self) -> &[u8] {
        &self.json[self.envelope.state.clone()]
    }
}

/// What the one parse of a checkpoint learned, so nothing parses it (or
/// checks its seal) twice.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    pub(crate) facts: Facts,
    pub(crate) time: DateTime<Utc>,
    /// The checkpoint whose state this one copies (`rollback_of`, `retry_of`).
    pub(crate) copy_of: Option<u64>,
    /// Where `state` and `error`, and their kinds nodes, are within the
    /// document's JSON.
    pub(crate) state: Range<usize>,
    pub(crate) state_kinds: Option<Range<usize>>,
    pub(crate) error: Option<Range<usize>>,
    pub(crate) error_kinds: Option<Range<usize>>,
    /// The whole document's kinds node (`ruby_kinds`).
    pub(crate) kinds: Option<Range<usize>>,
}

/// A checkpoint passed over because it is damaged.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub(crate) number: u64,
    /// Why, without the checkpoint's location: `path` has it.
    pub(crate) reason: String,
    pub(crate) path: PathBuf,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Lookup {
    pub(crate) found: Option<Found>,
    pub(crate) skipped: Vec<Skipped>,
}

/// The one wording of "this task is left out of `list`": it has
/// `checkpoints` stored and none is intact.
pub(crate) fn unlisted_warning(task: &TaskId, checkpoints: usize) -> String {
    format!(
        "task {task:?} has {checkpoints} checkpoint(s) and none is intact; it is not listed \
         until it has one, or is removed"
    )
}

impl Lookup {
    /// The one wording of "checkpoint N was passed over", for every reader.
    pub(crate) fn warnings(&self, task: &TaskId) -> Vec<String> {
        self.skipped
            .iter()
            .map(|s| {
                format!(
                    "task {task:?}: skipping damaged checkpoint {} ({}): {}",
                    s.number,
                    s.path.display(),
                    s.reason
                )
            })
            .collect()
    }
}

/// Which checkpoint a lookup wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pick {
    /// The newest intact one.
    Latest,
    /// The newest intact one that is not a failure.
    LatestGood,
    /// The newest intact non-failure numbered below this.
    GoodBefore(u64),
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Listing {
    pub(crate) tasks: Vec<TaskSummary>,
    pub(crate) warnings: Vec<String>,
}

/// What a backend does. Every method is one whole operation: a backend
/// takes its own locks (a file lock, a database lock, a mutex) so that
/// several processes and threads may use one store at once.
pub(crate) trait Backend: Send + Sync + fmt::Debug {
    /// Where the store is, for messages: a directory, `memory:NAME`.
    fn location(&self) -> String;

    /// Where one checkpoint is, for messages and error fields.
    fn checkpoint_location(&self, task: &TaskId, number: u64) -> PathBuf;

    /// Where a task's checkpoints are, for people (`bin/cli checkpoint show`).
    fn task_location(&self, task: &TaskId) -> String;

    /// Writes `doc` as the task's next checkpoint, numbering it under the
    /// task's lock, and prunes past `max_checkpoints`. On error nothing new
    /// is left behind.
    fn write(
        &self,
        task: &TaskId,
        doc: &mut Document,
        facts: &Facts,
        options: &WriteOptions,
    ) -> Result<Written>;

    /// Checkpoint `number`, verified; `NotFound` if there is none.
    fn read(&self, task: &TaskId, number: u64) -> Result<Found>;

    /// Checkpoint `number`'s bytes as stored, unchecked; `None` if there
    /// is none.
    fn read_raw(&self, task: &TaskId, number: u64) -> Result<Option<Vec<u8>>>;

    /// Checkpoint `number` verified on its own: a delta checkpoint's chain
    /// is not read, and its state is `null` (`verify::open_shallow`). For
    /// listing a history, where each link is read once, not once per
    /// checkpoint after it.
    fn read_envelope(&self, task: &TaskId, number: u64) -> Result<Found> {
        let bytes = self.read_raw(task, number)?.ok_or_else(|| {
            Error::NotFound(format!(
                "task {task:?} has no checkpoint {number} (at {})",
                self.checkpoint_location(task, number).display()
            ))
        })?;
        verify::open_shallow(task, number, bytes, &|n| self.checkpoint_location(task, n))
    }

    /// The task's checkpoint numbers, ascending (damaged ones included).
    fn numbers(&self, task: &TaskId) -> Result<Vec<u64>>;

    /// The newest intact checkpoint matching `pick`, and the damaged ones
    /// passed over on the way.
    fn find(&self, task: &TaskId, pick: Pick) -> Result<Lookup> {
        let numbers = self.numbers(task)?;
        Ok(find_among(
            &numbers,
            pick,
            |n| self.read(task, n),
            |n| self.checkpoint_location(task, n),
        ))
    }

    /// The task's summary and what was passed over making it; `None` if it
    /// has no intact checkpoint.
    fn summary(&self, task: &TaskId) -> Result<(Option<TaskSummary>, Vec<String>)>;

    /// Every task's summary, newest first.
    fn list(&self) -> Result<Listing>;

    /// Removes the task if `wanted` says so of its current summary, deciding
    /// under the task's lock so a checkpoint written meanwhile is seen.
    fn remove_if(
        &self,
        task: &TaskId,
        wanted: &mut dyn FnMut(Option<&TaskSummary>) -> bool,
    ) -> Result<bool>;

    /// True when checkpoint `number` is still the task's newest and still
    /// the checkpoint `seal` describes.
    fn is_newest(&self, task: &TaskId, number: u64, seal: Seal) -> Result<bool>;

    /// Removes what an interrupted operation left behind (after cleanup).
    fn sweep(&self) -> Result<()> {
        Ok(())
    }

    /// Claims `task` as `ask` says, its lease on the store's clock
    /// (`claims::claim` says when it may). A takeover is ordered with
    /// writes: it takes the lock writes take.
    fn claim(&self, task: &TaskId, ask: &Ask) -> Result<Claimed>;

    /// Extends the claim `token` by `lease_ns` from now, recording `spent`;
    /// `Lost` if it is no longer current.
    fn renew(&self, task: &TaskId, token: u64, lease_ns: i64, spent: &str) -> Result<Renewed>;

    /// Ends the claim `token`: finished in `state`, or (`None`) released
    /// for any worker to take at once. False if it was no longer current.
    fn end_claim(
        &self,
        task: &TaskId,
        token: u64,
        state: Option<ClaimState>,
        spent: &str,
    ) -> Result<bool>;

    /// Asks the task to stop (its holder sees it at the next renewal; an
    /// unclaimed task is finished as cancelled by the next claim). The
    /// claim after, or `None` for a task finished already.
    fn cancel(&self, task: &TaskId) -> Result<Option<Claim>>;

    /// The task's claim, if it has one.
    fn claim_of(&self, task: &TaskId) -> Result<Option<Claim>>;

    /// The run of the queue (its ledger task `queue`) a process enters.
    fn enter_run(&self, queue: &TaskId, entry: RunEntry, grace_ns: i64) -> Result<QueueRun>;

    /// Marks `run` live until `until_ns` (a lease of one of its workers),
    /// or closed (every task finished).
    fn touch_run(&self, queue: &TaskId, run: u64, until_ns: i64, close: bool) -> Result<()>;
}

/// Which store: the one place a store is named and opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreSpec {
    /// The file store in this directory.
    File(PathBuf),
    /// An in-process store, shared by every session of this process that
    /// names it.
    Memory(String),
    /// A PostgreSQL database, by URL (`postgresql://` or `postgres://`).
    Postgres(String),
}

impl StoreSpec {
    /// `memory`, `memory://NAME`, `postgresql://…` (or `postgres://…`),
    /// `file:///path`, or a path. What Ruby's `Config.store` gives: already
    /// checked for shape.
    pub(crate) fn parse(text: &str) -> Result<StoreSpec> {
        if text == "memory" {
            return Ok(StoreSpec::Memory("default".into()));
        }
        if let Some(name) = text.strip_prefix("memory://") {
            if name.is_empty() {
                return Ok(StoreSpec::Memory("default".into()));
            }
            return Ok(StoreSpec::Memory(name.to_owned()));
        }
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("postgresql://") || lower.starts_with("postgres://") {
            return Ok(StoreSpec::Postgres(text.to_owned()));
        }
        let path = text.strip_prefix("file://").unwrap_or(text);
        if path.is_empty() {
            return Err(Error::invalid(
                "store must name a directory, memory, or a file:// URL; got an empty one",
            ));
        }
        Ok(StoreSpec::File(PathBuf::from(path)))
    }
}

/// A store: a handle on one backend, cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    backend: Arc<dyn Backend>,
}

impl Store {
    pub(crate) fn open(spec: &StoreSpec) -> Result<Store> {
        let backend: Arc<dyn Backend> = match spec {
            StoreSpec::File(path) => Arc::new(file::FileStore::new(path)?),
            StoreSpec::Memory(name) => memory::MemoryStore::named(name),
            StoreSpec::Postgres(url) => postgres::PostgresStore::open(url)?,
        };
        Ok(Store { backend })
    }

    #[cfg(test)]
    pub(crate) fn from_backend(backend: Arc<dyn Backend>) -> Store {
        Store { backend }
    }

    /// The file store in `dir`.
    #[cfg(test)]
    pub(crate) fn file(dir: &std::path::Path) -> Result<Store> {
        Store::open(&StoreSpec::File(dir.to_path_buf()))
    }

    pub(crate) fn location(&self) -> String {
        self.backend.location()
    }

    pub(crate) fn checkpoint_location(&self, task: &TaskId, number: u64) -> PathBuf {
        self.backend.checkpoint_location(task, number)
    }

    pub(crate) fn task_location(&self, task: &TaskId) -> String {
        self.backend.task_location(task)
    }

    pub(crate) fn write_checkpoint(
        &self,
        task: &TaskId,
        doc: &mut Document,
        facts: &Facts,
        options: &WriteOptions,
    ) -> Result<Written> {
        let _pass = gate::enter();
        self.backend.write(task, doc, facts, options)
    }

    pub(crate) fn read(&self, task: &TaskId, number: u64) -> Result<Found> {
        let _pass = gate::enter();
        self.backend.read(task, number)
    }

    pub(crate) fn read_envelope(&self, task: &TaskId, number: u64) -> Result<Found> {
        let _pass = gate::enter();
        self.backend.read_envelope(task, number)
    }

    pub(crate) fn find(&self, task: &TaskId, pick: Pick) -> Result<Lookup> {
        let _pass = gate::enter();
        self.backend.find(task, pick)
    }

    pub(crate) fn numbers(&self, task: &TaskId) -> Result<Vec<u64>> {
        let _pass = gate::enter();
        self.backend.numbers(task)
    }

    /// The task's summary; `None` if it has no intact checkpoint.
    pub(crate) fn summary(&self, task: &TaskId) -> Result<Option<TaskSummary>> {
        Ok(self.summary_with_warnings(task)?.0)
    }

    /// As `summary`, with what was passed over on the way.
    pub(crate) fn summary_with_warnings(
        &self,
        task: &TaskId,
    ) -> Result<(Option<TaskSummary>, Vec<String>)> {
        let _pass = gate::enter();
        self.backend.summary(task)
    }

    pub(crate) fn list(&self) -> Result<Listing> {
        let _pass = gate::enter();
        self.backend.list()
    }

    /// Removes the task and all its checkpoints. False if there was none.
    pub(crate) fn remove(&self, task: &TaskId) -> Result<bool> {
        let _pass = gate::enter();
        self.backend.remove_if(task, &mut |_| true)
    }

    pub(crate) fn is_newest(&self, task: &TaskId, number: u64, seal: Seal) -> Result<bool> {
        let _pass = gate::enter();
        self.backend.is_newest(task, number, seal)
    }

    pub(crate) fn claim(&self, task: &TaskId, ask: &Ask) -> Result<Claimed> {
        let _pass = gate::enter();
        self.backend.claim(task, ask)
    }

    pub(crate) fn renew(
        &self,
        task: &TaskId,
        token: u64,
        lease_ns: i64,
        spent: &str,
    ) -> Result<Renewed> {
        let _pass = gate::enter();
        self.backend.renew(task, token, lease_ns, spent)
    }

    pub(crate) fn end_claim(
        &self,
        task: &TaskId,
        token: u64,
        state: Option<ClaimState>,
        spent: &str,
    ) -> Result<bool> {
        let _pass = gate::enter();
        self.backend.end_claim(task, token, state, spent)
    }

    pub(crate) fn cancel(&self, task: &TaskId) -> Result<Option<Claim>> {
        let _pass = gate::enter();
        self.backend.cancel(task)
    }

    pub(crate) fn claim_of(&self, task: &TaskId) -> Result<Option<Claim>> {
        let _pass = gate::enter();
        self.backend.claim_of(task)
    }

    pub(crate) fn enter_run(
        &self,
        queue: &TaskId,
        entry: RunEntry,
        grace_ns: i64,
    ) -> Result<QueueRun> {
        let _pass = gate::enter();
        self.backend.enter_run(queue, entry, grace_ns)
    }

    pub(crate) fn touch_run(
        &self,
        queue: &TaskId,
        run: u64,
        until_ns: i64,
        close: bool,
    ) -> Result<()> {
        let _pass = gate::enter();
        self.backend.touch_run(queue, run, until_ns, close)
    }

    /// Removes every task `rule` selects (or, with `dry_run`, only says
    /// which); their ids, sorted.
    pub(crate) fn cleanup(
        &self,
        rule: &CleanupRule,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Vec<String>> {
        let _pass = gate::enter();
        cleanup::run(self.backend.as_ref(), rule, now, dry_run)
    }
}

/// Walks `numbers` newest first, reading each, to the first intact one that
/// `pick` wants; damaged ones are reported, vanished ones (pruned
/// meanwhile) passed over in silence.
pub(crate) fn find_among(
    numbers: &[u64],
    pick: Pick,
    mut read: impl FnMut(u64) -> Result<Found>,
    location: impl Fn(u64) -> PathBuf,
) -> Lookup {
    let mut lookup = Lookup::default();
    // Past a delta chain broken at `at`, the checkpoints down to it are
    // links of the same chain: broken for the same reason, not read again.
    let mut broken: Option<(u64, String)> = None;
    for &number in numbers.iter().rev() {
        if let Pick::GoodBefore(limit) = pick {
            if number >= limit {
                continue;
            }
        }
        if let Some((at, reason)) = &broken {
            if number > *at {
                lookup.skipped.push(Skipped {
                    number,
                    reason: reason.clone(),
                    path: location(number),
                });
                continue;
            }
        }
        match read(number) {
            Ok(found) => {
                let good = found.envelope.facts.status != Status::Failed;
                if pick == Pick::Latest || good {
                    lookup.found = Some(found);
                    return lookup;
                }
            }
            Err(Error::NotFound(_)) => {}
            Err(Error::Corrupt {
                reason,
                path,
                broken_at,
                ..
            }) => {
                if let Some(at) = broken_at {
                    broken = Some((at, reason.clone()));
                }
                lookup.skipped.push(Skipped {
                    number,
                    reason,
                    path,
                })
            }
            Err(e) => lookup.skipped.push(Skipped {
                number,
                reason: e.to_string(),
                path: location(number),
            }),
        }
    }
    lookup
}

/// A task's summary from its checkpoints, as every backend makes it when it
/// has none at hand: the newest intact checkpoint, the newest good one, how
/// many there are, and when the oldest was written.
pub(crate) fn summarize(
    task: &TaskId,
    numbers: &[u64],
    mut read: impl FnMut(u64) -> Result<Found>,
    location: impl Fn(u64) -> PathBuf,
) -> (Option<TaskSummary>, Vec<String>) {
    let latest = find_among(numbers, Pick::Latest, &mut read, &location);
    let warnings = latest.warnings(task);
    let Some(found) = latest.found else {
        return (None, warnings);
    };
    let facts = &found.envelope.facts;
    let latest_good = if facts.status == Status::Failed {
        find_among(
            numbers,
            Pick::GoodBefore(found.number),
            &mut read,
            &location,
        )
        .found
        .map(|f| f.number)
    } else {
        Some(found.number)
    };
    let created_at = numbers
        .first()
        .filter(|&&oldest| oldest != found.number)
        .and_then(|&oldest| read(oldest).ok())
        .map_or_else(
            || facts.timestamp.clone(),
            |oldest| oldest.envelope.facts.timestamp,
        );
    let summary = TaskSummary::from_facts(
        task.as_str(),
        found.number,
        latest_good,
        numbers.len() as u64,
        created_at,
        facts,
        found.seal,
    );
    (Some(summary), warnings)
}

/// The number a task's next checkpoint gets after `numbers`, or why there
/// is none (the last one a checkpoint can have is taken).
pub(crate) fn next_number(numbers: &[u64], location: impl FnOnce(u64) -> PathBuf) -> Result<u64> {
    match numbers.last() {
        None => Ok(1),
        Some(&n) => n
            .checked_add(1)
            .filter(|&next| next < u64::MAX)
            .ok_or_else(|| Error::UnsafeStore {
                path: location(n),
                reason: "is the last number a checkpoint can have; remove it".into(),
            }),
    }
}

/// A checkpoint just written, and how to reach the task's others: what
/// `settle` needs of a backend.
pub(crate) struct JustWritten<'a> {
    pub(crate) task: &'a TaskId,
    pub(crate) number: u64,
    pub(crate) seal: Seal,
    pub(crate) facts: &'a Facts,
    /// The task's numbers before the write.
    pub(crate) before: &'a [u64],
    /// The task's summary before the write, if the backend keeps one.
    pub(crate) previous: Option<&'a TaskSummary>,
    pub(crate) max_checkpoints: Option<u64>,
    /// For a delta checkpoint, the whole one its chain starts at.
    pub(crate) chain_start: Option<u64>,
}

/// What a write leaves: the checkpoints retention pruned, the numbers kept,
/// and the task's summary.
pub(crate) struct Settled {
    pub(crate) pruned: Vec<u64>,
    pub(crate) numbers: Vec<u64>,
    pub(crate) summary: TaskSummary,
}

/// Settles a write the same way on every backend: the newest good
/// checkpoint (this one, or for a failure the one before it), retention
/// (`remove` deletes one checkpoint, false if it would not go: retention is
/// best effort), and the summary — `created_at` carried from the previous
/// summary, or the oldest kept checkpoint's time. `read` reads a checkpoint
/// when the previous summary cannot say.
pub(crate) fn settle(
    new: JustWritten,
    read: &mut dyn FnMut(u64) -> Result<Found>,
    remove: &mut dyn FnMut(u64) -> bool,
    location: &dyn Fn(u64) -> PathBuf,
) -> Settled {
    let number = new.number;
    let mut numbers = new.before.to_vec();
    numbers.push(number);
    let previous = new
        .previous
        .filter(|p| numbers.contains(&p.latest_checkpoint));
    let latest_good = if new.facts.status == Status::Failed {
        match previous {
            Some(p) => p.latest_good_checkpoint,
            None => find_among(&numbers, Pick::GoodBefore(number), &mut *read, location)
                .found
                .map(|f| f.number),
        }
    } else {
        Some(number)
    };
    let mut chains = previous.map(|p| p.chains.clone()).unwrap_or_default();
    if let Some(full) = new.chain_start {
        match chains.last_mut() {
            Some(chain) if chain[0] == full => chain[1] = number,
            _ => chains.push([full, number]),
        }
    }
    let pruned: Vec<u64> = retention::prunable(&numbers, new.max_checkpoints, latest_good, &chains)
        .into_iter()
        .filter(|&n| remove(n))
        .collect();
    numbers.retain(|n| !pruned.contains(n));
    chains.retain(|chain| numbers.iter().any(|n| (chain[0]..=chain[1]).contains(n)));
    let created_at = match previous.or(new.previous) {
        Some(p) => p.created_at.clone(),
        None => numbers
            .first()
            .filter(|&&oldest| oldest != number)
            .and_then(|&oldest| read(oldest).ok())
            .map(|found| found.envelope.facts.timestamp)
            .unwrap_or_else(|| new.facts.timestamp.clone()),
    };
    let mut summary = TaskSummary::from_facts(
        new.task.as_str(),
        number,
        latest_good,
        numbers.len() as u64,
        created_at,
        new.facts,
        new.seal,
    );
    summary.chains = chains;
    Settled {
        pruned,
        numbers,
        summary,
    }
}

/// The document sealed in memory (the backends that keep bytes, not files).
pub(crate) fn seal_in_memory(doc: &Document) -> (Vec<u8>, Seal) {
    let mut writer = seal::SealedWriter::new(Vec::new());
    doc.write_open_object(|chunk| writer.write(chunk))
        .expect("writing to memory cannot fail");
    writer.finish().expect("writing to memory cannot fail")
}
