//! A directory held open by file descriptor. Every operation inside the store
//! goes through `*at` calls relative to such a descriptor with `O_NOFOLLOW`,
//! so a symlink planted inside the store is refused instead of followed, and
//! a directory renamed under us cannot redirect a write.
//!
//! (Longer than most files here: it is the one place the store talks to the
//! file system, each call a few lines of `unsafe` libc with its checks.)

#[cfg(not(target_os = "linux"))]
use std::ffi::CStr;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

pub(crate) const DIR_MODE: libc::mode_t = 0o700;
pub(crate) const FILE_MODE: libc::mode_t = 0o600;

fn cstr(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Retries a call interrupted by a signal (Ruby's timer thread sends them).
fn retry_eintr<F: FnMut() -> libc::c_int>(mut call: F) -> io::Result<libc::c_int> {
    loop {
        match cvt(call()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `fstat` of an open descriptor.
fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: `libc::stat` is plain integers, for which all-zero bytes are valid.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open while borrowed, and `st` is a stat fstat may write.
    retry_eintr(|| unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) kind: EntryKind,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Stat {
    pub(crate) kind: EntryKind,
    pub(crate) size: u64,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) links: u64,
}

impl From<&libc::stat> for Stat {
    fn from(st: &libc::stat) -> Stat {
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => EntryKind::File,
            libc::S_IFDIR => EntryKind::Dir,
            libc::S_IFLNK => EntryKind::Symlink,
            _ => EntryKind::Other,
        };
        Stat {
            kind,
            size: st.st_size as u64,
            dev: st.st_dev,
            ino: st.st_ino,
            links: st.st_nlink,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// Opens an existing directory. The path itself may go through links
    /// (a store under a symlinked /var is fine); what is inside may not.
    pub(crate) fn open(path: &Path) -> Result<Dir> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Error::invalid(format!("path {path:?} contains a NUL byte")))?;
        // SAFETY: `c` is a NUL-terminated path that outlives the call.
        let fd = retry_eintr(|| unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })
        .map_err(|e| Error::io("open directory", path, e))?;
        Ok(Dir {
            // SAFETY: `fd` was just opened here and nothing else owns it.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: path.to_path_buf(),
        })
    }

    /// Opens `path`, a directory that must not itself be a symbolic link
    /// (the links above it are the user's business). `None` if missing.
    pub(crate) fn open_nofollow(path: &Path) -> Result<Option<Dir>> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Error::invalid(format!("path {path:?} contains a NUL byte")))?;
        // SAFETY: `c` is a NUL-terminated path that outlives the call.
        match retry_eintr(|| unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        }) {
            Ok(fd) => Ok(Some(Dir {
                // SAFETY: `fd` was just opened here and nothing else owns it.
                fd: unsafe { OwnedFd::from_raw_fd(fd) },
                path: path.to_path_buf(),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("open directory", path, e)),
        }
    }

    /// Opens a directory, creating it and any missing parents (mode 0700).
    pub(crate) fn create_all(path: &Path) -> Result<Dir> {
        match Dir::open(path) {
            Err(e) if e.is_not_found() => {}
            other => return other,
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Dir::create_all(parent)?;
        }
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Error::invalid(format!("path {path:?} contains a NUL byte")))?;
        // SAFETY: `c` is a NUL-terminated path that outlives the call.
        match retry_eintr(|| unsafe { libc::mkdir(c.as_ptr(), DIR_MODE) }) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create directory", path, e)),
        }
        Dir::open(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn child_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Opens the subdirectory `name`, refusing links. `None` if it does not exist.
    pub(crate) fn open_subdir(&self, name: &str) -> Result<Option<Dir>> {
        let c = cstr(name).map_err(|e| Error::io("open directory", self.child_path(name), e))?;
        // SAFETY: `self.raw()` is the directory `self` keeps open, and `c` is
        // a NUL-terminated name; both outlive the call.
        match retry_eintr(|| unsafe {
            libc::openat(
                self.raw(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        }) {
            Ok(fd) => Ok(Some(Dir {
                // SAFETY: `fd` was just opened here and nothing else owns it.
                fd: unsafe { OwnedFd::from_raw_fd(fd) },
                path: self.child_path(name),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.explain(name, "open directory", e)),
        }
    }

    /// Names what is in the way when `name` could not be opened as wanted.
    fn explain(&self, name: &str, action: &'static str, error: io::Error) -> Error {
        let path = self.child_path(name);
        match self.stat(name) {
            Ok(Some(st)) if st.kind == EntryKind::Symlink => Error::UnsafeStore {
                path,
                reason: "is a symbolic link; the store never follows links".into(),
            },
            Ok(Some(st))
                if st.kind != EntryKind::Dir && error.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                Error::UnsafeStore {
                    path,
                    reason: "is a file where the store keeps a directory".into(),
                }
            }
            _ => Error::io(action, path, error),
        }
    }

    /// Opens or creates (0700) the subdirectory `name`, refusing links.
    /// Says whether it had to create it.
    pub(crate) fn create_subdir(&self, name: &str) -> Result<(Dir, bool)> {
        if let Some(dir) = self.open_subdir(name)? {
            return Ok((dir, false));
        }
        let c = cstr(name).map_err(|e| Error::io("create directory", self.child_path(name), e))?;
        // SAFETY: `self.raw()` is the directory `self` keeps open, and `c` is
        // a NUL-terminated name; both outlive the call.
        match retry_eintr(|| unsafe { libc::mkdirat(self.raw(), c.as_ptr(), DIR_MODE) }) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create directory", self.child_path(name), e)),
        }
        let dir = self.open_subdir(name)?.ok_or_else(|| {
            Error::io(
                "open directory",
                self.child_path(name),
                io::Error::from(io::ErrorKind::NotFound),
            )
        })?;
        Ok((dir, true))
    }

    /// Opens a regular file for reading, refusing links and anything that is
    /// not a regular file (a FIFO or device planted in the store). `None` if
    /// it does not exist. Also gives its size.
    pub(crate) fn open_file(&self, name: &str) -> Result<Option<(File, u64)>> {
        let path = || self.child_path(name);
        let c = cstr(name).map_err(|e| Error::io("open", path(), e))?;
        // SAFETY: `self.raw()` is the directory `self` keeps open, and `c` is
        // a NUL-terminated name; both outlive the call.
        let fd = match retry_eintr(|| unsafe {
            libc::openat(
                self.raw(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        }) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open", path(), e)),
        };
        // SAFETY: `fd` was just opened here and nothing else owns it.
        let file = unsafe { File::from_raw_fd(fd) };
        let st = fstat(file.as_fd()).map_err(|e| Error::io("inspect", path(), e))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(Error::UnsafeStore {
                path: path(),
                reason: "is not a regular file".into(),
            });
        }
        Ok(Some((file, st.st_size as u64)))
    }

    /// Reads a whole regular file; `None` if it does not exist.
    pub(crate) fn read_file(&self, name: &str) -> Result<Option<Vec<u8>>> {
        use std::io::Read;
        let Some((mut file, size)) = self.open_file(name)? else {
            return Ok(None);
        };
        // Exactly the size our fstat gave: a checkpoint never changes once
        // it is in place (a cache that changed meanwhile fails its seal and
        // is rebuilt), so no read is spent looking for the end, and
        // File::read_to_end's extra stat and seek are avoided too.
        let mut bytes = vec![0u8; size as usize];
        let mut len = 0;
        while len < bytes.len() {
            match file.read(&mut bytes[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("read", self.child_path(name), e)),
            }
        }
        bytes.truncate(len);
        Ok(Some(bytes))
    }

    /// Creates a new file that did not exist (O_EXCL, 0600).
    pub(crate) fn create_new_file(&self, name: &str) -> Result<File> {
        let c = cstr(name).map_err(|e| Error::io("create", self.child_path(name), e))?;
        // SAFETY: `self.raw()` is the directory `self` keeps open, and `c` is
        // a NUL-terminated name; both outlive the call. O_CREAT takes the mode.
        let fd = retry_eintr(|| unsafe {
            libc::openat(
                self.raw(),
                c.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                FILE_MODE as libc::c_uint,
            )
        })
        .map_err(|e| Error::io("create", self.child_path(name), e))?;
        // SAFETY: `fd` was just opened here and nothing else owns it.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// Replaces the contents of `name` in place (creating it, 0600, if
    /// missing). Only for files that are checked on every read and rebuilt
    /// when torn — the caches — since a crash or a concurrent reader can see
    /// a half-written file. Refuses links: a symlink by O_NOFOLLOW, a hard
    /// link (which could lead outside the store) by replacing it.
    /// Says whether something that was not a plain file had to be replaced.
    pub(crate) fn overwrite_file(&self, name: &str, bytes: &[u8]) -> Result<bool> {
        use std::os::unix::fs::FileExt;
        let path = || self.child_path(name);
        let c = cstr(name).map_err(|e| Error::io("write", path(), e))?;
        let mut replaced = false;
        let file = loop {
            // SAFETY: `self.raw()` is the directory `self` keeps open, and `c`
            // is a NUL-terminated name; both outlive the call. O_CREAT takes
            // the mode.
            let opened = retry_eintr(|| unsafe {
                libc::openat(
                    self.raw(),
                    c.as_ptr(),
                    libc::O_WRONLY
                        | libc::O_CREAT
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC
                        | libc::O_NONBLOCK,
                    FILE_MODE as libc::c_uint,
                )
            });
            let fd = match opened {
                Ok(fd) => fd,
                // A link (ELOOP), a directory (EISDIR) or a FIFO with no
                // reader (ENXIO) where the cache belongs: replace it, once.
                Err(e)
                    if !replaced
                        && matches!(
                            e.raw_os_error(),
                            Some(libc::ELOOP | libc::EISDIR | libc::ENXIO)
                        ) =>
                {
                    self.remove_tree(name)?;
                    replaced = true;
                    continue;
                }
                Err(e) => return Err(self.explain(name, "write", e)),
            };
            // SAFETY: `fd` was just opened here and nothing else owns it.
            let file = unsafe { File::from_raw_fd(fd) };
            let st = fstat(file.as_fd()).map_err(|e| Error::io("inspect", path(), e))?;
            let regular = st.st_mode & libc::S_IFMT == libc::S_IFREG;
            if regular && st.st_nlink == 1 {
                break file;
            }
            if replaced {
                return Err(Error::UnsafeStore {
                    path: path(),
                    reason: "is not a plain file of the store's own".into(),
                });
            }
            // Not a plain file (a FIFO opened for writing), or a hard link
            // that could lead outside the store: replace it, once.
            drop(file);
            self.remove_tree(name)?;
            replaced = true;
        };
        file.write_all_at(bytes, 0)
            .and_then(|_| file.set_len(bytes.len() as u64))
            .map_err(|e| Error::io("write", path(), e))?;
        Ok(replaced)
    }

    pub(crate) fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (f, t) = (cstr(from), cstr(to));
        let (Ok(f), Ok(t)) = (f, t) else {
            return Err(Error::invalid(format!("bad file name {from:?} or {to:?}")));
        };
        // SAFETY: `self.raw()` is the directory `self` keeps open, and `f`
        // and `t` are NUL-terminated names; all outlive the call.
        retry_eintr(|| unsafe { libc::renameat(self.raw(), f.as_ptr(), self.raw(), t.as_ptr()) })
            .map_err(|e| Error::io("rename into place", self.child_path(to), e))?;
        Ok(())
    }

    /// Moves `name` out of this directory into `target` under `new_name`.
    pub(crate) fn rename_to(&self, name: &str, target: &Dir, new_name: &str) -> Result<()> {
        let (Ok(f), Ok(t)) = (cstr(name), cstr(new_name)) else {
            return Err(Error::invalid(format!("bad file name {name:?}")));
        };
        // SAFETY: `self.raw()` and `target.raw()` are the directories `self`
        // and `target` keep open, and `f` and `t` are NUL-terminated names;
        // all outlive the call.
        retry_eintr(|| unsafe { libc::renameat(self.raw(), f.as_ptr(), target.raw(), t.as_ptr()) })
            .map_err(|e| Error::io("move", self.child_path(name), e))?;
        Ok(())
    }

    /// Removes a file (or link). Missing is fine.
    pub(crate) fn unlink(&self, name: &str) -> Result<()> {
        let c = cstr(name).map_err(|e| Error::io("remove", self.child_path(name), e))?;
        // SAFETY: `self.raw()` is the directory `self` keeps open, and `c` is
        // a NUL-terminated name; both outlive the call.
        match retry_eintr(|| unsafe { libc::unlinkat(self.raw(), c.as_ptr(), 0) }) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", self.child_path(name), e)),
        }
    }

    /// Removes `name` and, if it is a directory, everything under it, without
    /// following any link. Missing is fine.
    pub(crate) fn remove_tree(&self, name: &str) -> Result<()> {
        match self.stat(name)? {
            None => Ok(()),
            Some(st) if st.kind == EntryKind::Dir => {
                if let Some(sub) = self.open_subdir(name)? {
                    for entry in sub.entries()? {
                        sub.remove_tree(&entry.name)?;
                    }
                }
                let c = cstr(name).map_err(|e| Error::io("remove", self.child_path(name), e))?;
                // SAFETY: `self.raw()` is the directory `self` keeps open, and
                // `c` is a NUL-terminated name; both outlive the call.
                match retry_eintr(|| unsafe {
                    libc::unlinkat(self.raw(), c.as_ptr(), libc::AT_REMOVEDIR)
                }) {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(Error::io("remove directory", self.child_path(name), e)),
                }
            }
            Some(_) => self.unlink(name),
        }
    }

    /// `lstat` of an entry; `None` if it does not exist.
    pub(crate) fn stat(&self, name: &str) -> Result<Option<Stat>> {
        let c = cstr(name).map_err(|e| Error::io("inspect", self.child_path(name), e))?;
        // SAFETY: `libc::stat` is plain integers, for which all-zero bytes are valid.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `self.raw()` is the directory `self` keeps open, `c` is a
        // NUL-terminated name, and `st` is a stat fstatat may write.
        match retry_eintr(|| unsafe {
            libc::fstatat(self.raw(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW)
        }) {
            Ok(_) => Ok(Some(Stat::from(&st))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("inspect", self.child_path(name), e)),
        }
    }

    /// `fstat` of this directory itself.
    pub(crate) fn self_stat(&self) -> Result<Stat> {
        let st = fstat(self.fd.as_fd()).map_err(|e| Error::io("inspect", &self.path, e))?;
        Ok(Stat::from(&st))
    }

    /// Makes renames and unlinks in this directory durable.
    pub(crate) fn sync(&self) -> Result<()> {
        // SAFETY: `self.raw()` is the directory `self` keeps open.
        retry_eintr(|| unsafe { libc::fsync(self.raw()) })
            .map_err(|e| Error::io("sync directory", &self.path, e))?;
        Ok(())
    }

    /// The entries of this directory, without `.` and `..`. Names that are
    /// not UTF-8 are skipped: the store never writes such names.
    pub(crate) fn entries(&self) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        let mut push = |name: &[u8], d_type: u8| {
            if name == b"." || name == b".." {
                return;
            }
            let Ok(name) = std::str::from_utf8(name) else {
                return;
            };
            let kind = match d_type {
                libc::DT_REG => EntryKind::File,
                libc::DT_DIR => EntryKind::Dir,
                libc::DT_LNK => EntryKind::Symlink,
                libc::DT_UNKNOWN => match self.stat(name) {
                    Ok(Some(st)) => st.kind,
                    _ => return,
                },
                _ => EntryKind::Other,
            };
            entries.push(Entry {
                name: name.to_owned(),
                kind,
            });
        };
        self.read_dir_raw(&mut push)?;
        Ok(entries)
    }

    /// getdents64 straight on our descriptor (from the start): fewer system
    /// calls than opendir, which duplicates, rewinds and closes.
    #[cfg(target_os = "linux")]
    fn read_dir_raw(&self, push: &mut dyn FnMut(&[u8], u8)) -> Result<()> {
        // SAFETY: `self.raw()` is the directory `self` keeps open.
        retry_eintr(|| unsafe { libc::lseek(self.raw(), 0, libc::SEEK_SET) as libc::c_int })
            .map_err(|e| Error::io("list", &self.path, e))?;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // SAFETY: `self.raw()` is the directory `self` keeps open, and the
            // kernel writes at most `buf.len()` bytes into `buf`, which we own.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    self.raw(),
                    buf.as_mut_ptr(),
                    buf.len(),
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::io("list", &self.path, e));
            }
            if n == 0 {
                return Ok(());
            }
            let mut at = 0usize;
            while at < n as usize {
                // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
                let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
                let d_type = buf[at + 18];
                let name = &buf[at + 19..at + reclen];
                let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                push(&name[..len], d_type);
                at += reclen;
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn read_dir_raw(&self, push: &mut dyn FnMut(&[u8], u8)) -> Result<()> {
        // SAFETY: `self.raw()` is the directory `self` keeps open.
        let dup = retry_eintr(|| unsafe { libc::fcntl(self.raw(), libc::F_DUPFD_CLOEXEC, 0) })
            .map_err(|e| Error::io("list", &self.path, e))?;
        // SAFETY: `dup` is a directory descriptor we own; the stream takes it.
        let stream = unsafe { libc::fdopendir(dup) };
        if stream.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: fdopendir failed, so `dup` is still ours to close.
            unsafe { libc::close(dup) };
            return Err(Error::io("list", &self.path, e));
        }
        // SAFETY: `stream` is the open stream fdopendir just gave us.
        unsafe { libc::rewinddir(stream) };
        loop {
            // SAFETY: `stream` is open until the closedir below.
            let ent = unsafe { libc::readdir(stream) };
            if ent.is_null() {
                // SAFETY: `stream` is open, and closed only here.
                unsafe { libc::closedir(stream) };
                return Ok(());
            }
            // SAFETY: `ent` is the non-null entry readdir just returned, valid
            // (its name NUL-terminated) until the next readdir on `stream`;
            // the name is used before then.
            let (name, d_type) = unsafe { (CStr::from_ptr((*ent).d_name.as_ptr()), (*ent).d_type) };
            push(name.to_bytes(), d_type);
        }
    }

    /// A second descriptor for the same open directory.
    pub(crate) fn try_clone(&self) -> Result<Dir> {
        // SAFETY: `self.raw()` is the directory `self` keeps open.
        let fd = retry_eintr(|| unsafe { libc::fcntl(self.raw(), libc::F_DUPFD_CLOEXEC, 0) })
            .map_err(|e| Error::io("open directory", &self.path, e))?;
        Ok(Dir {
            // SAFETY: `fd` is the new descriptor fcntl just made; nothing else owns it.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: self.path.clone(),
        })
    }

    /// Takes this directory's exclusive `flock`, waiting up to `timeout`.
    /// `flock` excludes other processes and, through separate descriptors,
    /// other threads. The lock belongs to the open directory: dropping the
    /// guard, or the process dying, releases it.
    pub(crate) fn lock(&self, timeout: Duration) -> Result<LockedDir> {
        let locked = LockedDir(self.try_clone()?);
        let started = Instant::now();
        let mut pause = Duration::from_micros(50);
        loop {
            // SAFETY: `locked.0` keeps its descriptor open.
            match cvt(unsafe { libc::flock(locked.0.raw(), libc::LOCK_EX | libc::LOCK_NB) }) {
                Ok(_) => return Ok(locked),
                Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("lock", &self.path, e)),
            }
            if started.elapsed() >= timeout {
                return Err(Error::LockTimeout {
                    path: self.path.clone(),
                    waited_secs: started.elapsed().as_secs(),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    /// Takes the lock only if nobody holds it.
    pub(crate) fn try_lock(&self) -> Result<Option<LockedDir>> {
        let locked = LockedDir(self.try_clone()?);
        // SAFETY: `locked.0` keeps its descriptor open.
        match cvt(unsafe { libc::flock(locked.0.raw(), libc::LOCK_EX | libc::LOCK_NB) }) {
            Ok(_) => Ok(Some(locked)),
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(None),
            Err(e) => Err(Error::io("lock", &self.path, e)),
        }
    }
}

/// A held directory lock; released on drop.
pub(crate) struct LockedDir(Dir);

impl Drop for LockedDir {
    fn drop(&mut self) {
        // SAFETY: the descriptor is still open: `self.0` is dropped after this.
        unsafe { libc::flock(self.0.raw(), libc::LOCK_UN) };
    }
}

/// The path of a store root given by the user, made absolute so a later
/// `chdir` cannot move the store.
pub(crate) fn absolute(path: &Path) -> Result<PathBuf> {
    if path.as_os_str().is_empty() {
        return Err(Error::invalid("checkpoint_dir must not be empty"));
    }
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|e| Error::io("find", Path::new("."), e))?;
    Ok(cwd.join(path))
}
