//! The `tick` fast path: counting items and noticing that a checkpoint is
//! due, with atomics only — no lock, no allocation, no system call. Time is
//! read from CLOCK_MONOTONIC_COARSE, which the kernel serves from memory
//! through the vDSO (a few nanoseconds, millisecond resolution).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::time::Duration;

pub fn coarse_now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

#[derive(Debug)]
pub struct Ticker {
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
    pub fn new(every_items: Option<u64>, every: Option<Duration>) -> Ticker {
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
    pub fn tick(&self, items: u64) -> Option<bool> {
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
    pub fn release(&self) {
        self.claimed.store(false, Release);
    }

    pub fn progress(&self) -> u64 {
        self.progress.load(Relaxed)
    }

    /// Sets the count (an explicit `progress:`, a restore); counting toward
    /// the next checkpoint starts again from there.
    pub fn set_progress(&self, items: u64) {
        self.progress.store(items, Relaxed);
        self.covered.store(items, Relaxed);
    }

    /// Items counted since the last checkpoint; pass it to `rearm` once the
    /// checkpoint that includes them is written.
    pub fn since_checkpoint(&self) -> u64 {
        self.progress().saturating_sub(self.covered.load(Relaxed))
    }

    /// Starts the next period after a checkpoint that covered `covered` items.
    pub fn rearm(&self, covered: u64) {
        let progress = self.progress();
        let _ = self.covered.fetch_update(Relaxed, Relaxed, |c| {
            Some(c.saturating_add(covered).min(progress))
        });
        self.deadline_ms
            .store(coarse_now_ms().saturating_add(self.every_ms), Relaxed);
        self.claimed.store(false, Release);
    }

    pub fn reset(&self) {
        self.set_progress(0);
        self.rearm(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_every_n_items() {
        let ticker = Ticker::new(Some(3), None);
        assert!(!ticker.tick(1).unwrap());
        assert!(!ticker.tick(1).unwrap());
        assert!(ticker.tick(1).unwrap());
        // Claimed until rearmed: nobody else writes the same checkpoint.
        assert!(!ticker.tick(1).unwrap());
        ticker.rearm(3);
        assert!(!ticker.tick(1).unwrap());
        assert!(ticker.tick(1).unwrap());
        assert_eq!(ticker.progress(), 6);
    }

    #[test]
    fn due_after_the_interval() {
        let ticker = Ticker::new(None, Some(Duration::from_millis(30)));
        assert!(!ticker.tick(1).unwrap());
        std::thread::sleep(Duration::from_millis(60));
        assert!(ticker.tick(1).unwrap());
        ticker.rearm(ticker.since_checkpoint());
        assert!(!ticker.tick(1).unwrap());
    }

    #[test]
    fn items_ticked_during_a_write_count_toward_the_next() {
        let ticker = Ticker::new(Some(10), None);
        assert!(!ticker.tick(9).unwrap());
        let covered = ticker.since_checkpoint();
        ticker.tick(4).unwrap(); // arrives while the checkpoint is being written
        ticker.rearm(covered);
        assert_eq!(ticker.since_checkpoint(), 4);
    }

    // Regression (issue 8): tick(2**62) five times wrapped the count.
    #[test]
    fn a_count_past_the_largest_is_refused_not_wrapped() {
        let ticker = Ticker::new(None, None);
        for _ in 0..3 {
            assert_eq!(ticker.tick(1 << 62), Some(false));
        }
        assert_eq!(ticker.tick(1 << 62), None);
        assert_eq!(ticker.progress(), 3 << 62, "nothing counted");
        assert_eq!(ticker.tick(u64::MAX - (3 << 62)), Some(false));
        assert_eq!(ticker.tick(1), None);
    }

    #[test]
    fn no_triggers_never_due() {
        let ticker = Ticker::new(None, None);
        assert!(!ticker.tick(1_000_000).unwrap());
    }

    #[test]
    fn eight_threads_lose_no_count_and_one_claims() {
        let ticker = std::sync::Arc::new(Ticker::new(Some(1_000_000), None));
        let claims: u32 = (0..8)
            .map(|_| {
                let ticker = ticker.clone();
                std::thread::spawn(move || {
                    (0..100_000).filter(|_| ticker.tick(1).unwrap()).count() as u32
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(ticker.progress(), 800_000);
        assert_eq!(claims, 0);
        assert!(ticker.tick(200_000).unwrap());
    }
}
