//! The background writer of an `async: true` session: one thread that runs
//! queued checkpoint writes in order, with the same crash-safe recipe as a
//! direct write. The caller's thread only captures the state and queues it.
//!
//! A failed write is never dropped: the job stays at the head of the queue,
//! the writer stops there, and the next caller (`enqueue`, `flush`) hears of
//! the failure — how many captured checkpoints are not yet written — and
//! makes the writer try again, in order. Fork: the child never touches a
//! parent's writer (its lock may have been held by the writer thread at the
//! fork); it leaves it behind and starts its own.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::error::{Error, Result};

/// A queued write; returns the checkpoint number written. It may run again
/// after a failure.
pub(crate) type Job = Box<dyn FnMut() -> Result<u64> + Send>;

/// How many captured checkpoints may wait; a caller past this waits for the
/// writer (backpressure), so memory stays bounded when the disk is slow.
pub(crate) const MAX_QUEUED: usize = 64;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    busy: bool,
    /// The head job failed; the writer waits for a caller to retry it.
    stalled: bool,
    /// Why the head job failed, until it is written after all.
    error: Option<Error>,
    /// Jobs the writer has started, and which of those starts last failed:
    /// `flush` gives every waiting job a try that starts after it is called.
    started: u64,
    failed_start: u64,
    last_written: Option<u64>,
    closing: bool,
}

impl Queue {
    /// The failure to report, with how many captured checkpoints wait; the
    /// writer is told to try again.
    fn report_and_retry(&mut self) -> Option<Error> {
        self.stalled = false;
        self.error.take().map(|source| Error::BackgroundWrite {
            source: Box::new(source),
            unwritten: self.jobs.len(),
        })
    }
}

struct Shared {
    queue: Mutex<Queue>,
    /// The writer thread waits here for jobs.
    work: Condvar,
    /// Callers wait here for the queue to drain or shrink.
    progress: Condvar,
}

fn lock(mutex: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// Waits while the queue is full (not while it is stalled: the caller
    /// then hears of the failure instead of waiting for ever).
    fn wait_for_room(&self) {
        let mut queue = lock(&self.queue);
        while queue.jobs.len() >= MAX_QUEUED && !queue.stalled {
            queue = self.progress.wait(queue).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Queues a job; reports a failure not yet reported (the job is queued
    /// all the same, behind the ones that failed).
    fn push(&self, job: Job) -> Option<Error> {
        let report = {
            let mut queue = lock(&self.queue);
            queue.jobs.push_back(job);
            queue.report_and_retry()
        };
        self.work.notify_one();
        report
    }

    /// Retries what failed and waits until every queued write is done: the
    /// last number written, or the failure that stopped the writer again.
    fn flush(&self) -> Result<Option<u64>> {
        let mut queue = lock(&self.queue);
        let called_at = queue.started;
        loop {
            if queue.stalled && queue.failed_start <= called_at {
                // Failed on a try that began before this flush: try again.
                queue.stalled = false;
                self.work.notify_one();
            }
            if (queue.jobs.is_empty() && !queue.busy) || queue.stalled {
                break;
            }
            queue = self.progress.wait(queue).unwrap_or_else(|p| p.into_inner());
        }
        match queue.report_and_retry() {
            Some(error) => {
                // Stalled again: the next call retries.
                queue.stalled = true;
                Err(error)
            }
            None => Ok(queue.last_written),
        }
    }

    /// The thread finishes what is queued, then ends.
    fn close(&self) {
        lock(&self.queue).closing = true;
        self.work.notify_one();
    }
}

fn run(shared: &Shared) {
    loop {
        let mut job = {
            let mut queue = lock(&shared.queue);
            loop {
                if !queue.stalled {
                    if let Some(job) = queue.jobs.pop_front() {
                        queue.busy = true;
                        queue.started += 1;
                        break job;
                    }
                }
                if queue.closing && (queue.stalled || queue.jobs.is_empty()) {
                    return;
                }
                queue = shared.work.wait(queue).unwrap_or_else(|p| p.into_inner());
            }
        };
        let result = catch_unwind(AssertUnwindSafe(&mut job)).unwrap_or_else(|_| {
            Err(Error::invalid(
                "internal error in the background writer; that checkpoint was not written",
            ))
        });
        let mut queue = lock(&shared.queue);
        queue.busy = false;
        match result {
            Ok(number) => {
                queue.last_written = Some(number);
                queue.error = None; // written after all
            }
            Err(error) => {
                queue.jobs.push_front(job);
                queue.stalled = true;
                queue.failed_start = queue.started;
                queue.error = Some(error);
            }
        }
        drop(queue);
        shared.progress.notify_all();
    }
}

/// The writer thread of this process, and its queue.
struct Handle {
    pid: u32,
    shared: Arc<Shared>,
}

impl Handle {
    fn start(name: &str) -> Result<Handle> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            progress: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(format!("master-writer-{name}"))
            .spawn(move || run(&worker))
            .map_err(|e| Error::invalid(format!("could not start the background writer: {e}")))?;
        Ok(Handle {
            pid: std::process::id(),
            shared,
        })
    }
}

/// A session's writer. Only callers lock it, never the writer thread.
#[derive(Default)]
pub(crate) struct Slot {
    handle: Mutex<Option<Handle>>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("writer::Slot")
    }
}

impl Slot {
    /// The slot, emptied of a writer inherited across fork: the parent
    /// writes those jobs, and its queue's lock may have been held by the
    /// writer thread at the fork, so the child leaves it untouched.
    fn here(&self) -> MutexGuard<'_, Option<Handle>> {
        let mut slot = self.handle.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_some_and(|h| h.pid != std::process::id()) {
            std::mem::forget(slot.take());
        }
        slot
    }

    fn shared(&self) -> Option<Arc<Shared>> {
        self.here().as_ref().map(|h| Arc::clone(&h.shared))
    }

    /// Queues a write, starting the writer thread if needed. `capture` runs
    /// under the slot's lock, so capture order and write order agree even
    /// with several threads checkpointing. A background failure not yet
    /// reported is returned after the capture is queued (nothing captured is
    /// ever dropped), and the writer tries the failed writes again.
    pub(crate) fn enqueue<T>(
        &self,
        name: &str,
        capture: impl FnOnce() -> Result<(T, Job)>,
    ) -> Result<T> {
        if let Some(shared) = self.shared() {
            shared.wait_for_room(); // outside the slot's lock
        }
        let mut slot = self.here();
        if slot.is_none() {
            *slot = Some(Handle::start(name)?);
        }
        let shared = &slot.as_ref().expect("started above").shared;
        let (value, job) = capture()?;
        match shared.push(job) {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }

    /// Waits for every queued write. `Ok(None)` if nothing was ever written.
    pub(crate) fn flush(&self) -> Result<Option<u64>> {
        match self.shared() {
            Some(shared) => shared.flush(),
            None => Ok(None),
        }
    }

    /// True when a caller would have to wait for room (so should first let
    /// other threads run, then call `wait_for_room`).
    pub(crate) fn is_full(&self) -> bool {
        self.shared()
            .is_some_and(|shared| lock(&shared.queue).jobs.len() >= MAX_QUEUED)
    }

    /// Waits until the queue has room.
    pub(crate) fn wait_for_room(&self) {
        if let Some(shared) = self.shared() {
            shared.wait_for_room();
        }
    }
}

#[cfg(test)]
impl Slot {
    /// True once the writer has stopped at a failed job.
    fn stalled(&self) -> bool {
        self.shared()
            .is_some_and(|shared| lock(&shared.queue).stalled)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(handle) = self.here().take() {
            handle.shared.close();
        }
    }
}

#[cfg(test)]
mod tests;
