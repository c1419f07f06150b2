//! Errors of the Ruby-free core. Each variant maps to one Ruby exception class
//! in `ruby_api::errors`; messages say what went wrong and what to do next.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::budget::Money;
use crate::store::layout::TaskId;
use crate::store::Skipped;

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug)]
pub enum Error {
    /// A caller passed a bad value (Ruby `ArgumentError`).
    InvalidArgument(String),
    /// The file system refused an operation (Ruby `MASTER::StoreError`).
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// Something inside the store is not what the store wrote: a symlink, a
    /// directory where a file belongs (Ruby `MASTER::StoreError`).
    UnsafeStore { path: PathBuf, reason: String },
    /// A checkpoint file failed its integrity check or does not parse
    /// (Ruby `MASTER::CorruptCheckpointError`).
    Corrupt {
        task_id: String,
        number: u64,
        path: PathBuf,
        reason: String,
        /// For a delta checkpoint whose chain is broken, the checkpoint it
        /// breaks at: every one between it and this one is broken too.
        broken_at: Option<u64>,
    },
    /// A task has checkpoints and none is intact (Ruby
    /// `MASTER::CorruptCheckpointError`, naming the newest).
    NoIntactCheckpoint {
        task_id: String,
        path: PathBuf,
        skipped: Vec<Skipped>,
    },
    /// `track_cost` passed an enforced budget; the amount is recorded
    /// (Ruby `MASTER::BudgetExceededError`).
    BudgetExceeded {
        task_id: String,
        spent: Money,
        limit: Money,
    },
    /// The database refused or could not be reached (Ruby
    /// `MASTER::StoreError`). `action` names the store without a password.
    Database {
        action: String,
        detail: String,
        hint: String,
    },
    /// A background (`async: true`) write failed; `unwritten` captured
    /// checkpoints are kept and written again by the next call or flush.
    BackgroundWrite {
        source: Box<Error>,
        unwritten: usize,
    },
    /// No checkpoint where one was asked for (Ruby `MASTER::CheckpointNotFoundError`).
    NotFound(String),
    /// Another process held a store lock for too long (Ruby `MASTER::LockTimeoutError`).
    LockTimeout { path: PathBuf, waited_secs: u64 },
    /// A write made for a queue task's claim that is no longer the
    /// caller's (Ruby `MASTER::LeaseLostError`): nothing was written.
    LeaseLost { task_id: String, reason: String },
    /// A delta checkpoint's base is no longer the task's newest checkpoint
    /// (`store::check_base`); the session writes the state whole instead,
    /// so this never reaches a caller.
    DeltaBaseMoved { task_id: String, base: u64 },
}

impl Error {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        // A planted symlink surfaces as ELOOP from O_NOFOLLOW: say so plainly.
        if source.raw_os_error() == Some(libc::ELOOP) {
            return Error::UnsafeStore {
                path,
                reason: "is a symbolic link; the store never follows links".into(),
            };
        }
        if source.raw_os_error() == Some(libc::ENOTDIR) {
            return Error::UnsafeStore {
                path,
                reason: "is not a directory (or is a link to one)".into(),
            };
        }
        Error::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn corrupt(
        task: &TaskId,
        number: u64,
        path: impl Into<PathBuf>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corrupt {
            task_id: task.to_string(),
            number,
            path: path.into(),
            reason: reason.into(),
            broken_at: None,
        }
    }

    /// Every checkpoint of `task` was passed over (`skipped`, newest first).
    pub(crate) fn no_intact_checkpoint(task: &TaskId, skipped: Vec<Skipped>) -> Self {
        let path = skipped.first().map(|s| s.path.clone()).unwrap_or_default();
        Error::NoIntactCheckpoint {
            task_id: task.to_string(),
            path,
            skipped,
        }
    }

    /// The error a caller sees: a background write failure reports its cause.
    pub(crate) fn root(&self) -> &Error {
        match self {
            Error::BackgroundWrite { source, .. } => source.root(),
            other => other,
        }
    }

    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

fn io_hint(source: &io::Error) -> &'static str {
    match source.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => {
            "free some disk space (bin/cli checkpoint clean --older-than 7d) and try again"
        }
        Some(libc::EACCES) | Some(libc::EPERM) => {
            "check that this user owns the checkpoint directory and may write to it"
        }
        Some(libc::EROFS) => "the file system is read-only; set checkpoint_dir to a writable path",
        Some(libc::EIO) => "the disk reported an I/O error; check the device, then try again",
        _ => "check the path and its permissions, then try again",
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(message) => f.write_str(message),
            Error::Io {
                action,
                path,
                source,
            } => write!(
                f,
                "could not {action} {}: {source}; {}",
                path.display(),
                io_hint(source)
            ),
            Error::UnsafeStore { path, reason } => write!(
                f,
                "refusing to use {}: it {reason}; remove it or point checkpoint_dir elsewhere",
                path.display()
            ),
            Error::Corrupt { path, reason, .. } => write!(
                f,
                "checkpoint {} is damaged ({reason}); restore an older one or call reset",
                path.display()
            ),
            Error::NoIntactCheckpoint {
                task_id, skipped, ..
            } => {
                write!(
                    f,
                    "task {task_id:?} has {} checkpoint file(s) and none is intact (",
                    skipped.len()
                )?;
                for (i, s) in skipped.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "; " };
                    write!(f, "{sep}{}: {}", s.number, s.reason)?;
                }
                write!(
                    f,
                    "); nothing can be restored: call reset, or remove the task, to start over"
                )
            }
            Error::BudgetExceeded {
                task_id,
                spent,
                limit,
            } => write!(
                f,
                "task {task_id:?} is over its budget: spent ${} of ${} (recorded); \
                 call increase_budget to go on",
                spent.to_cents_string(),
                limit.to_cents_string()
            ),
            Error::Database {
                action,
                detail,
                hint,
            } => write!(f, "could not {action}: {detail}; {hint}"),
            Error::BackgroundWrite { source, unwritten } => write!(
                f,
                "{source}; the {unwritten} captured checkpoint(s) not yet written are kept and \
                 written again, in order, by the next checkpoint or flush"
            ),
            Error::NotFound(message) => f.write_str(message),
            Error::LockTimeout { path, waited_secs } => write!(
                f,
                "waited {waited_secs}s for the lock on {}; another process is holding it, \
                 check for a hung writer and try again",
                path.display()
            ),
            Error::LeaseLost { task_id, reason } => write!(
                f,
                "task {task_id:?} is no longer this worker's: {reason}; nothing was written, and \
                 the worker that holds it now resumes it from its last checkpoint"
            ),
            Error::DeltaBaseMoved { task_id, base } => write!(
                f,
                "task {task_id:?} changed since its checkpoint {base}: a change against it \
                 was not written; write the state whole"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
