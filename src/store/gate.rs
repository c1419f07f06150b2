//! Fork safety. A store operation holds file descriptors and `flock`s while
//! Ruby's lock is released; if another thread forked then, the child would
//! inherit a descriptor it never closes and the lock would outlive the
//! operation. So operations hold this gate shared, and `fork` waits for it
//! exclusively (a `pthread_atfork` prepare handler) until none is in flight.

use std::cell::Cell;
use std::sync::Once;

struct Gate(std::cell::UnsafeCell<libc::pthread_rwlock_t>);
// SAFETY: the rwlock is only used through pthread calls, which synchronise
// threads themselves; it is written directly only in a fork child, which
// has one thread.
unsafe impl Sync for Gate {}

static GATE: Gate = Gate(std::cell::UnsafeCell::new(libc::PTHREAD_RWLOCK_INITIALIZER));
static INSTALL: Once = Once::new();

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

extern "C" fn before_fork() {
    // SAFETY: GATE is a static rwlock, initialised and never moved.
    unsafe { libc::pthread_rwlock_wrlock(GATE.0.get()) };
}

extern "C" fn after_fork_in_parent() {
    // SAFETY: this thread took the write lock in `before_fork`.
    unsafe { libc::pthread_rwlock_unlock(GATE.0.get()) };
}

extern "C" fn after_fork_in_child() {
    // The child has one thread, the one that forked: start from a fresh lock.
    // SAFETY: with one thread nothing else uses the lock while it is
    // overwritten; the pointer is GATE's own, valid and aligned.
    unsafe { GATE.0.get().write(libc::PTHREAD_RWLOCK_INITIALIZER) };
}

/// Held for the length of one store operation; nests within a thread.
pub(crate) struct Pass(());

pub(crate) fn enter() -> Pass {
    // SAFETY: the handlers are plain `extern "C"` functions that live as long
    // as the process; `INSTALL` registers them once.
    INSTALL.call_once(|| unsafe {
        libc::pthread_atfork(
            Some(before_fork),
            Some(after_fork_in_parent),
            Some(after_fork_in_child),
        );
    });
    DEPTH.with(|depth| {
        if depth.get() == 0 {
            // SAFETY: GATE is a static rwlock, initialised and never moved;
            // the depth count has this thread take it once, not once per level.
            unsafe { libc::pthread_rwlock_rdlock(GATE.0.get()) };
        }
        depth.set(depth.get() + 1);
    });
    Pass(())
}

impl Drop for Pass {
    fn drop(&mut self) {
        DEPTH.with(|depth| {
            depth.set(depth.get() - 1);
            if depth.get() == 0 {
                // SAFETY: this thread took the read lock when its depth left 0.
                unsafe { libc::pthread_rwlock_unlock(GATE.0.get()) };
            }
        });
    }
}
