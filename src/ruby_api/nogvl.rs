//! Runs slow work (file I/O, fsync, waiting for a lock) without Ruby's GVL,
//! so other Ruby threads keep running.
//!
//! `rb_thread_call_without_gvl2` is used rather than the plain form because
//! the plain form runs pending interrupts (a `trap` handler, `Thread#raise`)
//! on its way out, which could re-enter the session or unwind through Rust
//! frames. The `2` form never does: if an interrupt is already pending it
//! returns without calling us, and we then do the work with the GVL held.
//! Interrupts run once the method has returned to Ruby.

use std::ffi::c_void;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::null_mut;

struct Call<F, R> {
    func: Option<F>,
    result: Option<std::thread::Result<R>>,
}

/// Runs the closure in a `Call` once, catching a panic: it must not unwind
/// through Ruby's C frames.
///
/// # Safety
/// `arg` points at a live `Call<F, R>` that nothing else uses meanwhile.
unsafe extern "C" fn trampoline<F: FnOnce() -> R, R>(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the caller's promise: `arg` is a live `Call<F, R>`, ours alone.
    let call = unsafe { &mut *(arg as *mut Call<F, R>) };
    if let Some(func) = call.func.take() {
        call.result = Some(panic::catch_unwind(AssertUnwindSafe(func)));
    }
    null_mut()
}

/// `func()`, run without the GVL when Ruby allows. `Send` keeps Ruby objects
/// (magnus values are not `Send`) out of the closure and its result: they
/// must not be touched without the GVL.
pub(crate) fn nogvl<F: FnOnce() -> R + Send, R: Send>(func: F) -> R {
    let mut call = Call {
        func: Some(func),
        result: None,
    };
    let arg = &mut call as *mut Call<F, R> as *mut c_void;
    // SAFETY: `arg` points at `call`, which outlives both trampoline calls
    // and is read directly only between them, when no reference made from
    // `arg` is alive. Ruby runs the trampoline at most once; we run it only
    // if Ruby did not, with the GVL held as in any Ruby method.
    unsafe {
        rb_sys::rb_thread_call_without_gvl2(Some(trampoline::<F, R>), arg, None, null_mut());
        if call.result.is_none() {
            trampoline::<F, R>(arg);
        }
    }
    match call.result.expect("the trampoline ran") {
        Ok(value) => value,
        Err(panic) => panic::resume_unwind(panic),
    }
}
