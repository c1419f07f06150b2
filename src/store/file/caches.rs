//! The two caches beside the checkpoints — `<task>/metadata.json` and
//! `index.json` — and `list`, which reads the index. Both caches are sealed
//! like the checkpoints but rewritten in place without fsync: a torn, stale
//! or planted one is detected and rebuilt from the checkpoint files, which
//! are the truth.

use std::collections::{BTreeMap, HashSet};

use super::dir::{Dir, EntryKind};
use super::{lookup, FileStore};
use crate::checkpoint::FORMAT_VERSION;
use crate::error::{Error, Result};
use crate::failpoint;
use crate::store::layout::{checkpoint_file_name, TaskId, INDEX_FILE, METADATA_FILE};
use crate::store::seal::{self, Seal};
use crate::store::summary::{sort_newest_first, IndexFile, TaskSummary};
use crate::store::{summarize, Listing};

/// Writes a cache file: sealed, in place, no fsync; says so if it had to
/// replace something planted there. A crash or a concurrent reader may
/// meet it half-written; the seal then fails and the reader rebuilds it.
/// That saves the temp file and rename a checkpoint needs.
pub(super) fn write_json_sealed<T: serde::Serialize>(
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

pub(super) fn read_json_sealed<T: serde::de::DeserializeOwned>(dir: &Dir, name: &str) -> Option<T> {
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

/// The task's summary from `metadata.json`, rebuilt from the checkpoint
/// files when missing, damaged or stale.
pub(super) fn summary_in(
    task_dir: &Dir,
    task: &TaskId,
) -> Result<(Option<TaskSummary>, Vec<String>)> {
    let (cached, warning) = read_cache::<TaskSummary>(task_dir, METADATA_FILE);
    let mut warnings: Vec<String> = warning.into_iter().collect();
    if let Some(summary) = cached {
        if summary.task_id == task.as_str() && summary_is_current(task_dir, "", &summary)? {
            return Ok((Some(summary), warnings));
        }
    }
    let numbers = lookup::scan_numbers(task_dir, false)?;
    let (summary, passed_over) = summarize(
        task,
        &numbers,
        |n| lookup::read_in(task_dir, task, n),
        |n| task_dir.child_path(&checkpoint_file_name(n)),
    );
    warnings.extend(passed_over);
    // Repair the cache when no writer is busy; a busy writer repairs it anyway.
    if let Some(summary) = &summary {
        if let Some(_lock) = task_dir.try_lock()? {
            if numbers.last() == Some(&summary.latest_checkpoint) {
                let _ = write_json_sealed(task_dir, METADATA_FILE, "metadata", summary);
            }
        }
    }
    Ok((summary, warnings))
}

impl FileStore {
    /// A writer's change to the index, made while the index is small
    /// (see EAGER_INDEX_LIMIT); a large one is left for `list` to repair.
    pub(super) fn maintain_index(
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

    /// One summary per task, newest first. Served from `index.json`, each
    /// row checked against the file it names and repaired where stale.
    pub(super) fn list_tasks(&self) -> Result<Listing> {
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
                if summary_is_current(&root, &format!("{}/", entry.name), &row)? {
                    listing.tasks.push(row);
                    continue;
                }
            }
            let Some(task_dir) = root.open_subdir(&entry.name)? else {
                continue;
            };
            match summary_in(&task_dir, &task) {
                Ok((Some(summary), warnings)) => {
                    listing.warnings.extend(warnings);
                    rebuilt.insert(entry.name.clone(), summary.clone());
                    listing.tasks.push(summary);
                }
                Ok((None, warnings)) => {
                    listing.warnings.extend(warnings);
                    let files = lookup::scan_numbers(&task_dir, false)?.len();
                    if files > 0 {
                        listing
                            .warnings
                            .push(crate::store::unlisted_warning(&task, files));
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
        sort_newest_first(&mut listing.tasks);
        Ok(listing)
    }
}

/// A cache's summary of a task is current when the file it names is still
/// the one it describes (`seal_holds`) and the next one does not exist (a
/// writer killed after its commit leaves the next one behind). `prefix` is
/// the task directory's name when `dir` is the store's root.
pub(super) fn summary_is_current(dir: &Dir, prefix: &str, summary: &TaskSummary) -> Result<bool> {
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
    use std::os::unix::fs::FileExt;
    let Ok(Some((file, size))) = dir.open_file(name) else {
        return Ok(false);
    };
    if size != seal.len {
        return Ok(false);
    }
    let whole = size <= FULLY_CHECKED;
    let from = if whole { 0 } else { size - 64 };
    let mut bytes = vec![0u8; (size - from) as usize];
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
