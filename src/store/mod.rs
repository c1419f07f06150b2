//! The storage engine: numbered, sealed checkpoint files per task, written
//! crash-safely under a per-task lock, plus the two summary caches.
//!
//! Crash story of one checkpoint write, step by step:
//! 1. write `.checkpoint_NNN.json.<pid>.<n>.tmp`, fsync it — a crash leaves a
//!    temp file that the next writer (holding the lock) deletes;
//! 2. rename it to `checkpoint_NNN.json`, fsync the directory — the commit
//!    point: before it the old checkpoint is current, after it the new one;
//! 3. prune old files, rewrite `metadata.json` and `index.json` — caches: a
//!    crash here leaves them stale, and readers detect that (the file after
//!    the one they name exists) and rebuild them from the checkpoints.

pub mod dir;
pub mod gate;
pub mod layout;
pub mod seal;
pub mod summary;

use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::checkpoint::{CheckpointView, Document, Facts, Status, FORMAT_VERSION};
use crate::error::{Error, Result};
use crate::failpoint;
use dir::{Dir, EntryKind, LockedDir};
use layout::{
    checkpoint_file_name, is_temp_file_name, parse_checkpoint_file_name, temp_file_name, TaskId,
    INDEX_FILE, METADATA_FILE, TRASH_PREFIX,
};
use seal::{Seal, SealedWriter};
use summary::IndexFile;
pub use summary::TaskSummary;

/// How long a writer waits for another process's lock before giving up.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Writers keep index.json current while it is at most this big (about
/// 650 tasks). Past that, rewriting it on every checkpoint would make each
/// checkpoint cost O(tasks) — 25 ms at 10,000 tasks — so writers leave it,
/// and `list`, which checks every row anyway, repairs what changed.
pub const EAGER_INDEX_LIMIT: u64 = 256 * 1024;

#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Keep at most this many checkpoint files per task (never pruning the
    /// newest, nor the newest non-failed one); `None` keeps all.
    pub max_checkpoints: Option<u64>,
    /// fsync the file and the directory (the default). Off only for tests
    /// and benchmarks that want to measure everything but the disk.
    pub durable: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            max_checkpoints: None,
            durable: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Written {
    pub number: u64,
    pub summary: TaskSummary,
    pub pruned: Vec<u64>,
    /// Things in the store that are not its own and were worked around.
    pub warnings: Vec<String>,
}

/// A checkpoint file that passed its integrity check: its JSON text.
#[derive(Debug, Clone)]
pub struct Found {
    pub number: u64,
    pub json: Vec<u8>,
    pub envelope: Envelope,
    pub seal: Seal,
}

impl Found {
    /// The document parsed again, for callers that need every member.
    pub fn view(&self) -> CheckpointView<'_> {
        CheckpointView::parse(&self.json).expect("verified when read")
    }

    /// The user's data: raw JSON within `json`.
    pub fn state(&self) -> &[u8] {
        &self.json[self.envelope.state.clone()]
    }
}

/// What the one parse of a checkpoint file learned, so nothing parses it
/// (or checks its seal) twice.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub facts: Facts,
    pub time: DateTime<Utc>,
    /// The checkpoint whose state this one copies (`rollback_of`, `retry_of`).
    pub copy_of: Option<u64>,
    /// Where `state` and `error`, and their kinds nodes, are within the
    /// file's JSON.
    pub state: Range<usize>,
    pub state_kinds: Option<Range<usize>>,
    pub error: Option<Range<usize>>,
    pub error_kinds: Option<Range<usize>>,
    /// The whole document's kinds node (`ruby_kinds`).
    pub kinds: Option<Range<usize>>,
}

fn range_in(whole: &[u8], part: &str) -> Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

/// A checkpoint passed over because it is damaged.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub number: u64,
    /// Why, without the file's name: `path` has it.
    pub reason: String,
    pub path: PathBuf,
}

#[derive(Debug, Clone, Default)]
pub struct Lookup {
    pub found: Option<Found>,
    pub skipped: Vec<Skipped>,
}

impl Lookup {
    /// The one wording of "checkpoint N was passed over", for every reader.
    pub fn warnings(&self, task: &TaskId) -> Vec<String> {
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
pub enum Pick {
    /// The newest intact one.
    Latest,
    /// The newest intact one that is not a failure.
    LatestGood,
    /// The newest intact non-failure numbered below this.
    GoodBefore(u64),
}

#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub tasks: Vec<TaskSummary>,
    pub warnings: Vec<String>,
}

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

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    lock_timeout: Duration,
    eager_index_limit: u64,
}

/// The checkpoint numbers in a task directory, ascending.
fn scan_numbers(task_dir: &Dir, remove_temps: bool) -> Result<Vec<u64>> {
    Ok(scan(task_dir, remove_temps)?.0)
}

/// The checkpoint numbers in a task directory, ascending, and warnings for
/// those held by something that is not a regular file (a planted link,
/// directory or FIFO): whatever is there holds its number, so it is never
/// written over, and reading it reports what it is.
fn scan(task_dir: &Dir, remove_temps: bool) -> Result<(Vec<u64>, Vec<String>)> {
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

/// Writes `name` in `dir` through a sealed temp file and a rename. `kind`
/// names the file for failure injection (see `failpoint`).
fn write_sealed(
    dir: &Dir,
    name: &str,
    kind: &str,
    body: impl FnOnce(&mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()>,
    durable: bool,
) -> Result<Seal> {
    let temp = temp_file_name(name);
    let temp_path = || dir.child_path(&temp);
    failpoint::hit(kind, "create").map_err(|e| Error::io("create", temp_path(), e))?;
    let file = dir.create_new_file(&temp)?;
    let written = (|| -> Result<Seal> {
        let mut writer = SealedWriter::new(BufWriter::with_capacity(1 << 16, &file));
        failpoint::hit(kind, "write").map_err(|e| Error::io("write", temp_path(), e))?;
        body(&mut |chunk| writer.write(chunk)).map_err(|e| Error::io("write", temp_path(), e))?;
        let seal = writer
            .finish()
            .and_then(|(mut buffered, seal)| buffered.flush().map(|_| seal))
            .map_err(|e| Error::io("write", temp_path(), e))?;
        if durable {
            failpoint::hit(kind, "fsync")
                .and_then(|_| file.sync_all())
                .map_err(|e| Error::io("sync", temp_path(), e))?;
        }
        failpoint::hit(kind, "rename")
            .map_err(|e| Error::io("rename into place", dir.child_path(name), e))?;
        dir.rename(&temp, name)?;
        Ok(seal)
    })();
    if written.is_err() {
        let _ = dir.unlink(&temp);
    }
    let seal = written?;
    if durable {
        failpoint::hit(kind, "dirsync").map_err(|e| Error::io("sync directory", dir.path(), e))?;
        dir.sync()?;
    }
    Ok(seal)
}

/// Writes a cache file (metadata.json, index.json): sealed, in place, no
/// fsync; says so if it had to replace something planted there. A crash or a concurrent reader may meet it half-written; the seal
/// then fails and the reader rebuilds it from the checkpoints, which are
/// the truth. That saves the temp file and rename a checkpoint needs.
fn write_json_sealed<T: serde::Serialize>(
    dir: &Dir,
    name: &str,
    kind: &str,
    value: &T,
) -> Result<Option<String>> {
    let json = crate::checkpoint::json_bytes(value);
    // Drop the closing brace: the seal closes the object.
    let sealed = seal::seal(&json[..json.len() - 1]);
    failpoint::hit(kind, "write").map_err(|e| Error::io("write", dir.child_path(name), e))?;
    let replaced = dir.overwrite_file(name, &sealed)?;
    Ok(replaced.then(|| {
        format!(
            "replaced {}: it was not a plain file of the store's own (a link, directory or FIFO)",
            dir.child_path(name).display()
        )
    }))
}

fn read_json_sealed<T: serde::de::DeserializeOwned>(dir: &Dir, name: &str) -> Option<T> {
    read_cache(dir, name).0
}

/// A cache file's contents if intact. A damaged one reads as missing (it is
/// rebuilt, as after a crash); something that is not a plain file of the
/// store's own — a symbolic link, a directory, a FIFO, a hard link that may
/// lead outside — is not read at all, and said so.
fn read_cache<T: serde::de::DeserializeOwned>(
    dir: &Dir,
    name: &str,
) -> (Option<T>, Option<String>) {
    match dir.stat(name) {
        Ok(Some(st)) if st.kind == EntryKind::File && st.links == 1 => {}
        Ok(None) | Err(_) => return (None, None),
        Ok(Some(st)) => {
            let what = match st.kind {
                EntryKind::Symlink => "a symbolic link",
                EntryKind::Dir => "a directory",
                EntryKind::File => "a file with other hard links",
                EntryKind::Other => "not a regular file",
            };
            let warning = format!(
                "ignored {}: it is {what}, not the store's own; rebuilt from the checkpoints (the next write replaces it)",
                dir.child_path(name).display()
            );
            return (None, Some(warning));
        }
    }
    let value = dir.read_file(name).ok().flatten().and_then(|bytes| {
        seal::verify(&bytes)
            .ok()
            .and_then(|json| serde_json::from_slice(json).ok())
    });
    (value, None)
}

/// Why a checkpoint file cannot be trusted, if it cannot.
pub fn verify_checkpoint(bytes: &[u8], task: &str, number: u64) -> Result<(), String> {
    parse_checkpoint(bytes, task, number).map(|_| ())
}

/// Checks the seal and the document once: the length of its JSON text,
/// its seal and what it says.
fn parse_checkpoint(
    bytes: &[u8],
    task: &str,
    number: u64,
) -> Result<(usize, Seal, Envelope), String> {
    let json = seal::verify(bytes)?;
    let seal = Seal {
        crc: seal::stated_crc(json).ok_or("its checksum is malformed")?,
        len: bytes.len() as u64,
    };
    let view = CheckpointView::parse(json)?;
    if view.task_id != task {
        return Err(format!("it belongs to task {:?}", view.task_id));
    }
    if view.sequence != Some(number) {
        return Err(format!(
            "it says it is checkpoint {:?}, not {number}",
            view.sequence
        ));
    }
    let kinds_of = |member: &str| -> Result<Option<Range<usize>>, String> {
        match view.kinds {
            Some(kinds) => Ok(crate::kinds::member_json(kinds.get(), member)?
                .map(|node| range_in(json, node.get()))),
            None => Ok(None),
        }
    };
    let envelope = Envelope {
        facts: view.facts(),
        time: view.time(),
        copy_of: view.rollback_of.or(view.retry_of),
        state: range_in(json, view.state.get()),
        state_kinds: kinds_of("state")?,
        error: view.error.map(|e| range_in(json, e.get())),
        error_kinds: kinds_of("error")?,
        kinds: view.kinds.map(|k| range_in(json, k.get())),
    };
    Ok((json.len(), seal, envelope))
}

impl Store {
    pub fn new(root: &Path) -> Result<Store> {
        Ok(Store {
            root: dir::absolute(root)?,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            eager_index_limit: EAGER_INDEX_LIMIT,
        })
    }

    pub fn with_lock_timeout(mut self, timeout: Duration) -> Store {
        self.lock_timeout = timeout;
        self
    }

    /// See EAGER_INDEX_LIMIT.
    pub fn with_eager_index_limit(mut self, bytes: u64) -> Store {
        self.eager_index_limit = bytes;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn task_path(&self, task: &TaskId) -> PathBuf {
        self.root.join(task.as_str())
    }

    pub fn checkpoint_path(&self, task: &TaskId, number: u64) -> PathBuf {
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

    /// Writes `doc` as the task's next checkpoint and returns its number.
    /// On error nothing new is left behind: the previous checkpoint is current.
    pub fn write_checkpoint(
        &self,
        task: &TaskId,
        doc: &mut Document,
        facts: &Facts,
        options: &WriteOptions,
    ) -> Result<Written> {
        let _pass = gate::enter();
        let root = Dir::create_all(&self.root)?;
        let (task_dir, _lock) = self
            .lock_task(&root, task, true)?
            .expect("created when missing");
        let (mut numbers, mut warnings) = scan(&task_dir, true)?;
        let number = match numbers.last() {
            None => 1,
            Some(&n) => n
                .checked_add(1)
                .filter(|&next| next < u64::MAX)
                .ok_or_else(|| Error::UnsafeStore {
                    path: task_dir.child_path(&checkpoint_file_name(n)),
                    reason: "is the last number a checkpoint can have; remove it".into(),
                })?,
        };
        let name = checkpoint_file_name(number);
        doc.set("sequence", &number);
        let seal = write_sealed(
            &task_dir,
            &name,
            "checkpoint",
            |out| doc.write_open_object(out),
            options.durable,
        )
        .inspect_err(|_| {
            // The rename may have happened before the directory sync failed.
            let _ = task_dir.unlink(&name);
        })?;
        let previous: Option<TaskSummary> = read_json_sealed(&task_dir, METADATA_FILE);
        let committed = (|| -> Result<Written> {
            numbers.push(number);
            let latest_good = if facts.status == Status::Failed {
                match previous
                    .as_ref()
                    .filter(|p| numbers.contains(&p.latest_checkpoint))
                {
                    Some(p) => p.latest_good_checkpoint,
                    None => self
                        .find_in(&task_dir, task, &numbers, Pick::GoodBefore(number))
                        .found
                        .map(|f| f.number),
                }
            } else {
                Some(number)
            };
            let pruned = prune(
                &task_dir,
                &mut numbers,
                options.max_checkpoints,
                latest_good,
            );
            let created_at = match &previous {
                Some(p) => p.created_at.clone(),
                None => self.created_at(&task_dir, task, &numbers, facts),
            };
            let summary = TaskSummary::from_facts(
                task.as_str(),
                number,
                latest_good,
                numbers.len() as u64,
                created_at,
                facts,
                seal,
            );
            warnings.extend(write_json_sealed(
                &task_dir,
                METADATA_FILE,
                "metadata",
                &summary,
            )?);
            warnings.extend(self.maintain_index(&root, |index| {
                index.tasks.insert(task.to_string(), summary.clone());
            })?);
            Ok(Written {
                number,
                summary,
                pruned,
                warnings: std::mem::take(&mut warnings),
            })
        })();
        if committed.is_err() {
            // Take the checkpoint back so the call fails as a whole.
            let _ = task_dir.unlink(&name);
            let _ = task_dir.sync();
            match &previous {
                Some(p) => drop(write_json_sealed(&task_dir, METADATA_FILE, "metadata", p)),
                None => drop(task_dir.unlink(METADATA_FILE)),
            }
        }
        committed
    }

    fn created_at(&self, task_dir: &Dir, task: &TaskId, numbers: &[u64], facts: &Facts) -> String {
        numbers
            .first()
            .filter(|&&oldest| oldest != numbers[numbers.len() - 1])
            .and_then(|&oldest| self.read_in(task_dir, task, oldest).ok())
            .map(|found| found.envelope.facts.timestamp)
            .unwrap_or_else(|| facts.timestamp.clone())
    }

    /// A writer's change to the index, made while the index is small
    /// (see EAGER_INDEX_LIMIT); a large one is left for `list` to repair.
    fn maintain_index(
        &self,
        root: &Dir,
        change: impl FnOnce(&mut IndexFile),
    ) -> Result<Option<String>> {
        let size = root.stat(INDEX_FILE)?.map_or(0, |st| st.size);
        if size > self.eager_index_limit {
            return Ok(None);
        }
        self.update_index(root, change)
    }

    /// Reads the index under the store lock, changes it, writes it back.
    fn update_index(
        &self,
        root: &Dir,
        change: impl FnOnce(&mut IndexFile),
    ) -> Result<Option<String>> {
        failpoint::hit("index", "lock").map_err(|e| Error::io("lock", root.path(), e))?;
        let _lock = root.lock(self.lock_timeout)?;
        let mut index: IndexFile = read_json_sealed(root, INDEX_FILE).unwrap_or_default();
        index.version = FORMAT_VERSION.to_owned();
        change(&mut index);
        write_json_sealed(root, INDEX_FILE, "index", &index)
    }

    fn read_in(&self, task_dir: &Dir, task: &TaskId, number: u64) -> Result<Found> {
        let name = checkpoint_file_name(number);
        let path = task_dir.child_path(&name);
        let bytes = task_dir.read_file(&name)?.ok_or_else(|| {
            Error::NotFound(format!(
                "task {task:?} has no checkpoint {number}; list them with `bin/cli checkpoint show {task}`"
            ))
        })?;
        let (len, seal, envelope) = parse_checkpoint(&bytes, task.as_str(), number)
            .map_err(|reason| Error::corrupt(task, number, &path, reason))?;
        let mut json = bytes;
        json.truncate(len);
        Ok(Found {
            number,
            json,
            envelope,
            seal,
        })
    }

    /// True when checkpoint `number` of `task` is still the newest and still
    /// the file `seal` describes: what a reader that holds it already may
    /// use instead of reading it again.
    pub fn is_newest(&self, task: &TaskId, number: u64, seal: Seal) -> Result<bool> {
        let _pass = gate::enter();
        match self.open_task(task)? {
            Some(task_dir) => {
                let named = TaskSummary::naming(task.as_str(), number, seal);
                summary_is_current(&task_dir, "", &named)
            }
            None => Ok(false),
        }
    }

    /// Reads and verifies checkpoint `number` of `task`.
    pub fn read(&self, task: &TaskId, number: u64) -> Result<Found> {
        let _pass = gate::enter();
        match self.open_task(task)? {
            Some(task_dir) => self.read_in(&task_dir, task, number),
            None => Err(Error::NotFound(format!(
                "task {task:?} has no checkpoints in {}",
                self.root.display()
            ))),
        }
    }

    fn find_in(&self, task_dir: &Dir, task: &TaskId, numbers: &[u64], pick: Pick) -> Lookup {
        let mut lookup = Lookup::default();
        for &number in numbers.iter().rev() {
            match pick {
                Pick::GoodBefore(limit) if number >= limit => continue,
                _ => {}
            }
            match self.read_in(task_dir, task, number) {
                Ok(found) => {
                    let good = found.envelope.facts.status != Status::Failed;
                    if pick == Pick::Latest || good {
                        lookup.found = Some(found);
                        return lookup;
                    }
                }
                Err(Error::NotFound(_)) => {} // pruned meanwhile
                Err(Error::Corrupt { reason, path, .. }) => lookup.skipped.push(Skipped {
                    number,
                    reason,
                    path,
                }),
                Err(e) => lookup.skipped.push(Skipped {
                    number,
                    reason: e.to_string(),
                    path: task_dir.child_path(&checkpoint_file_name(number)),
                }),
            }
        }
        lookup
    }

    /// Finds the newest intact checkpoint matching `pick`, reporting the
    /// damaged ones it passed over.
    pub fn find(&self, task: &TaskId, pick: Pick) -> Result<Lookup> {
        let _pass = gate::enter();
        let Some(task_dir) = self.open_task(task)? else {
            return Ok(Lookup::default());
        };
        let numbers = scan_numbers(&task_dir, false)?;
        Ok(self.find_in(&task_dir, task, &numbers, pick))
    }

    /// The task's checkpoint numbers, ascending.
    pub fn numbers(&self, task: &TaskId) -> Result<Vec<u64>> {
        let _pass = gate::enter();
        match self.open_task(task)? {
            Some(task_dir) => scan_numbers(&task_dir, false),
            None => Ok(Vec::new()),
        }
    }

    /// The task's summary from `metadata.json`, rebuilt from the checkpoint
    /// files when missing, damaged or stale. `None` if it has no checkpoint.
    pub fn summary(&self, task: &TaskId) -> Result<Option<TaskSummary>> {
        let _pass = gate::enter();
        Ok(self.summary_with_warnings(task)?.0)
    }

    /// As `summary`, with what was passed over on the way: a cache that is
    /// not the store's own, damaged checkpoints.
    pub fn summary_with_warnings(
        &self,
        task: &TaskId,
    ) -> Result<(Option<TaskSummary>, Vec<String>)> {
        let _pass = gate::enter();
        match self.open_task(task)? {
            Some(task_dir) => self.summary_in(&task_dir, task),
            None => Ok((None, Vec::new())),
        }
    }

    fn summary_in(
        &self,
        task_dir: &Dir,
        task: &TaskId,
    ) -> Result<(Option<TaskSummary>, Vec<String>)> {
        let (cached, warning) = read_cache::<TaskSummary>(task_dir, METADATA_FILE);
        let mut warnings: Vec<String> = warning.into_iter().collect();
        if let Some(summary) = cached {
            if summary.task_id == task.as_str() && is_fresh(task_dir, &summary)? {
                return Ok((Some(summary), warnings));
            }
        }
        let numbers = scan_numbers(task_dir, false)?;
        let latest = self.find_in(task_dir, task, &numbers, Pick::Latest);
        warnings.extend(latest.warnings(task));
        let Some(found) = latest.found else {
            return Ok((None, warnings));
        };
        let facts = found.envelope.facts.clone();
        let latest_good = if facts.status == Status::Failed {
            self.find_in(task_dir, task, &numbers, Pick::GoodBefore(found.number))
                .found
                .map(|f| f.number)
        } else {
            Some(found.number)
        };
        let summary = TaskSummary::from_facts(
            task.as_str(),
            found.number,
            latest_good,
            numbers.len() as u64,
            self.created_at(task_dir, task, &numbers, &facts),
            &facts,
            found.seal,
        );
        // Repair the cache when no writer is busy; a busy writer repairs it anyway.
        if let Some(_lock) = task_dir.try_lock()? {
            if numbers.last() == Some(&found.number) {
                let _ = write_json_sealed(task_dir, METADATA_FILE, "metadata", &summary);
            }
        }
        Ok((Some(summary), warnings))
    }

    /// One summary per task, newest first. Served from `index.json`, checked
    /// against the files with two `stat`s per task and repaired where stale.
    pub fn list(&self) -> Result<Listing> {
        let _pass = gate::enter();
        let mut listing = Listing::default();
        let Some(root) = self.open_root()? else {
            return Ok(listing);
        };
        let (index, warning) = read_cache::<IndexFile>(&root, INDEX_FILE);
        let mut index = index.unwrap_or_default();
        listing.warnings.extend(warning);
        let mut rebuilt = BTreeMap::new();
        let entries = root.entries()?;
        for entry in &entries {
            if entry.name.starts_with('.') || entry.name == INDEX_FILE {
                continue;
            }
            if entry.kind == EntryKind::Symlink {
                listing.warnings.push(format!(
                    "skipped {}: a symbolic link inside the store is never followed",
                    root.child_path(&entry.name).display()
                ));
                continue;
            }
            if entry.kind != EntryKind::Dir {
                continue;
            }
            let Ok(task) = TaskId::parse(&entry.name) else {
                continue;
            };
            if let Some(row) = index.tasks.remove(&entry.name) {
                if index_row_is_fresh(&root, &entry.name, &row)? {
                    listing.tasks.push(row);
                    continue;
                }
            }
            let Some(task_dir) = root.open_subdir(&entry.name)? else {
                continue;
            };
            match self.summary_in(&task_dir, &task) {
                Ok((Some(summary), warnings)) => {
                    listing.warnings.extend(warnings);
                    rebuilt.insert(entry.name.clone(), summary.clone());
                    listing.tasks.push(summary);
                }
                Ok((None, warnings)) => {
                    listing.warnings.extend(warnings);
                    let files = scan_numbers(&task_dir, false)?.len();
                    if files > 0 {
                        listing.warnings.push(format!(
                            "task {task:?} has {files} checkpoint file(s) and none is intact; \
                             see `bin/cli checkpoint show {task}`, or remove it"
                        ));
                    }
                }
                Err(e) => listing
                    .warnings
                    .push(format!("skipped task {:?}: {e}", entry.name)),
            }
        }
        // Rows are taken out as their directories are met: what is left has none.
        let vanished = !index.tasks.is_empty();
        if !rebuilt.is_empty() || vanished {
            let present: HashSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            // Best effort: the listing is right whether or not the cache is.
            let _ = self.update_index(&root, |current| {
                current.tasks.retain(|k, _| {
                    present.contains(k.as_str()) || root.stat(k).ok().flatten().is_some()
                });
                for (task, summary) in rebuilt {
                    let stale = current
                        .tasks
                        .get(&task)
                        .is_none_or(|row| row.latest_checkpoint <= summary.latest_checkpoint);
                    if stale {
                        current.tasks.insert(task, summary);
                    }
                }
            });
        }
        listing
            .tasks
            .sort_by_cached_key(|row| std::cmp::Reverse((row.recency(), row.task_id.clone())));
        Ok(listing)
    }

    /// Removes the task and all its checkpoints. False if there was none.
    pub fn remove(&self, task: &TaskId) -> Result<bool> {
        self.remove_if(task, |_| true)
    }

    /// Removes the task if `wanted` says so of its current summary, deciding
    /// under the task's lock so a checkpoint written meanwhile is seen.
    pub fn remove_if(
        &self,
        task: &TaskId,
        wanted: impl FnOnce(Option<&TaskSummary>) -> bool,
    ) -> Result<bool> {
        let _pass = gate::enter();
        let Some(root) = self.open_root()? else {
            return Ok(false);
        };
        let Some((task_dir, lock)) = self.lock_task(&root, task, false)? else {
            return Ok(false);
        };
        let (summary, _) = self.summary_in(&task_dir, task)?;
        if !wanted(summary.as_ref()) {
            return Ok(false);
        }
        // One rename makes the whole task disappear at once; the files go after.
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

    /// Removes every task `rule` selects; returns their ids.
    pub fn cleanup(&self, rule: &CleanupRule, now: DateTime<Utc>) -> Result<Vec<String>> {
        let _pass = gate::enter();
        let mut removed = Vec::new();
        for summary in self.list()?.tasks {
            if !rule.removes(&summary, now) {
                continue;
            }
            let task = TaskId::parse(&summary.task_id)?;
            if self.remove_if(&task, |current| {
                current.is_some_and(|s| rule.removes(s, now))
            })? {
                removed.push(summary.task_id);
            }
        }
        // Trash left by a removal that crashed half-way, and temp files an
        // older version of the store left in the root.
        if let Some(root) = self.open_root()? {
            for entry in root.entries()? {
                if entry.name.starts_with(TRASH_PREFIX)
                    || (is_temp_file_name(&entry.name) && entry.kind == EntryKind::File)
                {
                    root.remove_tree(&entry.name)?;
                }
            }
        }
        removed.sort();
        Ok(removed)
    }
}

fn temp_name_in(prefix: &str) -> String {
    let unique = temp_file_name("x");
    format!("{prefix}{}", unique.trim_start_matches('.'))
}

/// A cache's summary of a task is current when the file it names is still
/// the one it describes (`seal_holds`) and the next one does not exist (a
/// writer killed after its commit leaves the next one behind). `prefix` is
/// the task directory's name when `dir` is the store's root.
fn summary_is_current(dir: &Dir, prefix: &str, summary: &TaskSummary) -> Result<bool> {
    let Some(next) = summary.latest_checkpoint.checked_add(1) else {
        return Ok(false);
    };
    let named = |n: u64| format!("{prefix}{}", checkpoint_file_name(n));
    if dir.stat(&named(next))?.is_some() {
        return Ok(false);
    }
    let Some(seal) = summary.seal else {
        return Ok(false); // a cache from before seals were recorded
    };
    seal_holds(dir, &named(summary.latest_checkpoint), seal)
}

/// Files up to this size are read whole and their checksum verified when a
/// cache names them; larger ones are checked by size and stated checksum
/// (a change in place that keeps both is caught when it is read).
const FULLY_CHECKED: u64 = 64 * 1024;

/// True when file `name` is the sealed file `seal` describes, intact.
fn seal_holds(dir: &Dir, name: &str, seal: Seal) -> Result<bool> {
    let Ok(Some((file, size))) = dir.open_file(name) else {
        return Ok(false);
    };
    if size != seal.len {
        return Ok(false);
    }
    let whole = size <= FULLY_CHECKED;
    let from = if whole { 0 } else { size - 64 };
    let mut bytes = vec![0u8; (size - from) as usize];
    use std::os::unix::fs::FileExt;
    if file.read_exact_at(&mut bytes, from).is_err() {
        return Ok(false);
    }
    let stated = if whole {
        seal::verify(&bytes).ok().and_then(seal::stated_crc)
    } else {
        seal::stated_crc(&bytes)
    };
    Ok(stated == Some(seal.crc))
}

fn is_fresh(task_dir: &Dir, summary: &TaskSummary) -> Result<bool> {
    summary_is_current(task_dir, "", summary)
}

fn index_row_is_fresh(root: &Dir, task: &str, row: &TaskSummary) -> Result<bool> {
    summary_is_current(root, &format!("{task}/"), row)
}

/// Deletes the oldest files beyond `max`, never the newest nor `keep`.
fn prune(task_dir: &Dir, numbers: &mut Vec<u64>, max: Option<u64>, keep: Option<u64>) -> Vec<u64> {
    let Some(max) = max.filter(|&m| m > 0) else {
        return Vec::new();
    };
    let mut pruned = Vec::new();
    let excess = numbers.len().saturating_sub(max as usize);
    let newest = numbers.last().copied();
    for &number in numbers.iter().take(excess) {
        if Some(number) == keep || Some(number) == newest {
            continue;
        }
        // Retention is best effort: a file that will not go is kept.
        if task_dir.unlink(&checkpoint_file_name(number)).is_ok() {
            pruned.push(number);
        }
    }
    numbers.retain(|n| !pruned.contains(n));
    pruned
}

#[cfg(test)]
pub(crate) mod tests;
