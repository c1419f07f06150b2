//! Errors of the Ruby-free core. Each variant maps to one Ruby exception class
//! in `ruby_api::errors`; messages say what went wrong and what to do next.

use std::fmt;
use std::io;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

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
    Corrupt { path: PathBuf, reason: String },
    /// No checkpoint where one was asked for (Ruby `MASTER::CheckpointNotFoundError`).
    NotFound(String),
    /// Another process held a store lock for too long (Ruby `MASTER::LockTimeoutError`).
    LockTimeout { path: PathBuf, waited_secs: u64 },
}

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
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

    pub fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub fn is_not_found(&self) -> bool {
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
            Error::Corrupt { path, reason } => write!(
                f,
                "checkpoint {} is damaged ({reason}); restore an older one or call reset",
                path.display()
            ),
            Error::NotFound(message) => f.write_str(message),
            Error::LockTimeout { path, waited_secs } => write!(
                f,
                "waited {waited_secs}s for the lock on {}; another process is holding it, \
                 check for a hung writer and try again",
                path.display()
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
