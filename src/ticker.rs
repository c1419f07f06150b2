//! The `tick` fast path: counting items and noticing that a checkpoint is
//! due, with atomics only — no lock, no allocation, no system call. Time is
//! read from CLOCK_MONOTONIC_COARSE, which the kernel serves from memory
//! through the vDSO (a few nanoseconds, millisecond resolution).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::time::Duration;

pub(crate) fn coarse_now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is ours to write; the clock id is a constant the kernel knows.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

#[derive(Debug)]
pub(crate) struct Ticker {
    progress: AtomicU64,
    /// Progress covered by the last checkpoint: items since then are
    /// `progress - covered`, so a tick needs one atomic add, not two.
    covered: AtomicU64,
    every_items: u64,
    every_ms: u64,
    deadline_ms: AtomicU64,
    /// Set by the one tick that goes on to write, so eight threads crossing
    /// the line together write one checkpoint, not eight.
    claimed: AtomicBool,
}

impl Ticker {
    /// `None` (or zero) turns a trigger off.
    pub(crate) fn new(every_items: Option<u64>, every: Option<Duration>) -> Ticker {
        let every_ms = every.map_or(0, |d| (d.as_millis() as u64).max(1));
        Ticker {
            progress: AtomicU64::new(0),
            covered: AtomicU64::new(0),
            every_items: every_items.unwrap_or(0),
            every_ms,
            deadline_ms: AtomicU64::new(coarse_now_ms().saturating_add(every_ms)),
            claimed: AtomicBool::new(false),
        }
    }

    /// Counts `items`; `Some(true)` when this caller should write a
    /// checkpoint now, `None` (and nothing counted) when the count would
    /// pass `u64::MAX` — an error, never a wrapped count.
    #[inline]
    pub(crate) fn tick(&self, items: u64) -> Option<bool> {
        let before = self
            .progress
            .fetch_update(Relaxed, Relaxed, |p| p.checked_add(items))
            .ok()?;
        let progress = before + items;
        let since = progress.saturating_sub(self.covered.load(Relaxed));
        let due = (self.every_items != 0 && since >= self.every_items)
            || (self.every_ms != 0 && coarse_now_ms() >= self.deadline_ms.load(Relaxed));
        Some(due && !self.claimed.swap(true, Acquire))
    }

    /// Gives up a claim without writing (the write failed).
    pub(crate) fn release(&self) {
        self.claimed.store(false, Release);
    }

    pub(crate) fn progress(&self) -> u64 {
        self.progress.load(Relaxed)
    }

    /// Sets the count (an explicit `progress:`, a restore); counting toward
    /// the next checkpoint starts again from there.
    pub(crate) fn set_progress(&self, items: u64) {
        self.progress.store(items, Relaxed);
        self.covered.store(items, Relaxed);
    }

    /// Items counted since the last checkpoint; pass it to `rearm` once the
    /// checkpoint that includes them is written.
    pub(crate) fn since_checkpoint(&self) -> u64 {
        self.progress().saturating_sub(self.covered.load(Relaxed))
    }

    /// Starts the next period after a checkpoint that covered `covered` items.
    pub(crate) fn rearm(&self, covered: u64) {
        let progress = self.progress();
        let _ = self.covered.fetch_update(Relaxed, Relaxed, |c| {
            Some(c.saturating_add(covered).min(progress))
        });
        self.deadline_ms
            .store(coarse_now_ms().saturating_add(self.every_ms), Relaxed);
        self.claimed.store(false, Release);
    }

    pub(crate) fn reset(&self) {
        self.set_progress(0);
        self.rearm(0);
    }
}

#[cfg(test)]
mod tests;
