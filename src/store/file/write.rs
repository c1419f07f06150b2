//! The crash-safe write of one checkpoint. Its crash story, step by step:
//! 1. write `.checkpoint_NNN.json.<pid>.<n>.tmp`, fsync it — a crash leaves a
//!    temp file that the next writer (holding the lock) deletes;
//! 2. rename it to `checkpoint_NNN.json`, fsync the directory — the commit
//!    point: before it the old checkpoint is current, after it the new one;
//! 3. prune old files, rewrite `metadata.json` and `index.json` — caches: a
//!    crash here leaves them stale, and readers detect that (the file after
//!    the one they name exists) and rebuild them from the checkpoints.

use std::io::{self, BufWriter, Write};

use super::caches::{read_json_sealed, write_json_sealed};
use super::dir::Dir;
use super::{lookup, FileStore};
use crate::checkpoint::{Document, Facts};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::store::layout::{checkpoint_file_name, temp_file_name, TaskId, METADATA_FILE};
use crate::store::seal::{Seal, SealedWriter};
use crate::store::summary::TaskSummary;
use crate::store::{check_base, next_number, settle, JustWritten, Settled, WriteOptions, Written};

/// Writes `name` in `dir` through a sealed temp file and a rename. `kind`
/// names the file for failure injection (see `failpoint`).
pub(super) fn write_sealed(
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

impl FileStore {
    /// Writes `doc` as the task's next checkpoint and returns its number.
    /// On error nothing new is left behind: the previous checkpoint is current.
    pub(super) fn write_checkpoint(
        &self,
        task: &TaskId,
        doc: &mut Document,
        facts: &Facts,
        options: &WriteOptions,
    ) -> Result<Written> {
        let root = Dir::create_all(self.root())?;
        let (task_dir, _lock) = self
            .lock_task(&root, task, true)?
            .expect("created when missing");
        if let Some(fence) = &options.fence {
            let claim = super::claims::read_claim(&task_dir);
            crate::store::claims::check_fence(
                task.as_str(),
                claim.as_ref(),
                Some(fence),
                crate::store::claims::now_ns(),
            )?;
        }
        let (numbers, mut warnings) = lookup::scan(&task_dir, true)?;
        let previous: Option<TaskSummary> = read_json_sealed(&task_dir, METADATA_FILE);
        check_base(
            task,
            options.delta_base.as_ref(),
            &numbers,
            previous.as_ref(),
        )?;
        let number = next_number(&numbers, |n| task_dir.child_path(&checkpoint_file_name(n)))?;
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
        let committed = (|| -> Result<Written> {
            let Settled {
                pruned, summary, ..
            } = settle(
                JustWritten {
                    task,
                    number,
                    seal,
                    facts,
                    before: &numbers,
                    previous: previous.as_ref(),
                    max_checkpoints: options.max_checkpoints,
                    chain_start: options.delta_base.map(|base| base.full),
                },
                &mut |n| lookup::read_in(&task_dir, task, n),
                &mut |n| task_dir.unlink(&checkpoint_file_name(n)).is_ok(),
                &|n| task_dir.child_path(&checkpoint_file_name(n)),
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
}
