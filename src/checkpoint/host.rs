//! Who wrote a checkpoint (`metadata {hostname, user, pid}`), read from the
//! system once per process (the pid each time: a forked child has its own).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Who wrote a checkpoint: `metadata {hostname, user, pid}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Host {
    #[serde(default)]
    pub(crate) hostname: String,
    #[serde(default)]
    pub(crate) user: String,
    #[serde(default)]
    pub(crate) pid: u32,
}

impl Host {
    pub(crate) fn current() -> Host {
        static NAMES: OnceLock<(String, String)> = OnceLock::new();
        let (hostname, user) = NAMES.get_or_init(|| (hostname(), user_name()));
        Host {
            hostname: hostname.clone(),
            user: user.clone(),
            // Not cached: a forked child writes its own pid.
            pid: std::process::id(),
        }
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is ours and writable for the `buf.len()` bytes passed.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if ok {
        String::from_utf8_lossy(&buf[..len]).into_owned()
    } else {
        "unknown".into()
    }
}

/// The name of the user running this process (PGUSER's default too).
pub(crate) fn user_name() -> String {
    // SAFETY: getuid takes nothing and always succeeds.
    let uid = unsafe { libc::getuid() };
    // SAFETY: `passwd` is integers and pointers, for which all-zero (null) is valid.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: `pwd`, `result` and `buf` (for the `buf.len()` bytes passed)
    // are ours to write, and the reentrant form shares no static buffer.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
        // SAFETY: on success a non-null `pw_name` points at a NUL-terminated
        // name inside `buf`, which is still alive here.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        return name.to_string_lossy().into_owned();
    }
    std::env::var("USER").unwrap_or_else(|_| uid.to_string())
}
