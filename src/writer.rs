//! The background writer of an `async: true` session: one thread that runs
//! queued checkpoint writes in order, with the same crash-safe recipe as a
//! direct write. The caller's thread only captures the state and queues it.
//!
//! A write error is kept and handed to the next caller (`take_error`,
//! `flush`), never dropped. Fork: the child never touches a parent's writer
//! (its lock may have been held by the writer thread at the fork); it
//! leaves it behind and starts its own.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::error::{Error, Result};

/// A queued write; returns the checkpoint number written.
pub type Job = Box<dyn FnOnce() -> Result<u64> + Send>;

/// How many captured checkpoints may wait; a caller past this waits for the
/// writer (backpressure), so memory stays bounded when the disk is slow.
pub const MAX_QUEUED: usize = 64;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    busy: bool,
    error: Option<Error>,
    last_written: Option<u64>,
    closing: bool,
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
    /// Waits while the queue is full.
    fn wait_for_room(&self) {
        let mut queue = lock(&self.queue);
        while queue.jobs.len() >= MAX_QUEUED {
            queue = self.progress.wait(queue).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn push(&self, job: Job) {
        lock(&self.queue).jobs.push_back(job);
        self.work.notify_one();
    }

    /// Waits until every queued write is done: the last number written, or
    /// the first error since the last report.
    fn flush(&self) -> Result<Option<u64>> {
        let mut queue = lock(&self.queue);
        while !queue.jobs.is_empty() || queue.busy {
            queue = self.progress.wait(queue).unwrap_or_else(|p| p.into_inner());
        }
        match queue.error.take() {
            Some(error) => Err(error),
            None => Ok(queue.last_written),
        }
    }

    fn take_error(&self) -> Option<Error> {
        lock(&self.queue).error.take()
    }

    /// The thread finishes what is queued, then ends.
    fn close(&self) {
        lock(&self.queue).closing = true;
        self.work.notify_one();
    }
}

fn run(shared: &Shared) {
    loop {
        let job = {
            let mut queue = lock(&shared.queue);
            loop {
                if let Some(job) = queue.jobs.pop_front() {
                    queue.busy = true;
                    break job;
                }
                if queue.closing {
                    return;
                }
                queue = shared.work.wait(queue).unwrap_or_else(|p| p.into_inner());
            }
        };
        let result = catch_unwind(AssertUnwindSafe(job)).unwrap_or_else(|_| {
            Err(Error::invalid(
                "internal error in the background writer; that checkpoint was not written",
            ))
        });
        let mut queue = lock(&shared.queue);
        queue.busy = false;
        match result {
            Ok(number) => queue.last_written = Some(number),
            Err(error) => {
                if queue.error.is_none() {
                    queue.error = Some(error);
                }
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
pub struct Slot {
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
    /// with several threads checkpointing. A background error not yet
    /// reported is returned instead, and nothing is queued.
    pub fn enqueue<T>(&self, name: &str, capture: impl FnOnce() -> Result<(T, Job)>) -> Result<T> {
        if let Some(shared) = self.shared() {
            shared.wait_for_room(); // outside the slot's lock
        }
        let mut slot = self.here();
        if slot.is_none() {
            *slot = Some(Handle::start(name)?);
        }
        let shared = &slot.as_ref().expect("started above").shared;
        if let Some(error) = shared.take_error() {
            return Err(error);
        }
        let (value, job) = capture()?;
        shared.push(job);
        Ok(value)
    }

    /// Waits for every queued write. `Ok(None)` if nothing was ever written.
    pub fn flush(&self) -> Result<Option<u64>> {
        match self.shared() {
            Some(shared) => shared.flush(),
            None => Ok(None),
        }
    }

    /// True when a caller would have to wait for room (so should first let
    /// other threads run, then call `wait_for_room`).
    pub fn is_full(&self) -> bool {
        self.shared()
            .is_some_and(|shared| lock(&shared.queue).jobs.len() >= MAX_QUEUED)
    }

    /// Waits until the queue has room.
    pub fn wait_for_room(&self) {
        if let Some(shared) = self.shared() {
            shared.wait_for_room();
        }
    }

    /// A background error not yet reported.
    pub fn take_error(&self) -> Option<Error> {
        self.shared().and_then(|shared| shared.take_error())
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
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn writes_in_order_and_flushes() {
        let slot = Slot::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        for n in 1..=100u64 {
            let log = Arc::clone(&log);
            slot.enqueue("t", || {
                Ok((
                    (),
                    Box::new(move || {
                        log.lock().unwrap().push(n);
                        Ok(n)
                    }) as Job,
                ))
            })
            .unwrap();
        }
        assert_eq!(slot.flush().unwrap(), Some(100));
        assert_eq!(*log.lock().unwrap(), (1..=100).collect::<Vec<_>>());
    }

    #[test]
    fn an_error_surfaces_once_on_the_next_call() {
        let slot = Slot::default();
        slot.enqueue("t", || {
            Ok(((), Box::new(|| Err(Error::invalid("disk full"))) as Job))
        })
        .unwrap();
        let err = slot.flush().unwrap_err();
        assert!(err.to_string().contains("disk full"));
        assert!(slot.flush().is_ok(), "reported once");
        slot.enqueue("t", || {
            Ok(((), Box::new(|| Err(Error::invalid("again"))) as Job))
        })
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let next = slot.enqueue("t", || Ok(((), Box::new(|| Ok(7u64)) as Job)));
        assert!(
            next.unwrap_err().to_string().contains("again"),
            "the next call reports it"
        );
    }

    #[test]
    fn a_full_queue_makes_the_caller_wait() {
        let slot = Slot::default();
        let done = Arc::new(AtomicU64::new(0));
        for _ in 0..(MAX_QUEUED * 3) {
            let done = Arc::clone(&done);
            slot.enqueue("t", || {
                Ok((
                    (),
                    Box::new(move || {
                        std::thread::sleep(std::time::Duration::from_micros(200));
                        Ok(done.fetch_add(1, Ordering::SeqCst) + 1)
                    }) as Job,
                ))
            })
            .unwrap();
        }
        assert!(done.load(Ordering::SeqCst) >= (MAX_QUEUED * 2) as u64 - 1);
        slot.flush().unwrap();
        assert_eq!(done.load(Ordering::SeqCst), (MAX_QUEUED * 3) as u64);
    }

    #[test]
    fn a_panicking_job_becomes_an_error() {
        let slot = Slot::default();
        slot.enqueue("t", || {
            Ok(((), Box::new(|| -> Result<u64> { panic!("boom") }) as Job))
        })
        .unwrap();
        assert!(slot.flush().is_err());
        slot.enqueue("t", || Ok(((), Box::new(|| Ok(1u64)) as Job)))
            .unwrap();
        assert_eq!(slot.flush().unwrap(), Some(1));
    }
}
