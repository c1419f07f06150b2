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

unsafe extern "C" fn trampoline<F: FnOnce() -> R, R>(arg: *mut c_void) -> *mut c_void {
    let call = unsafe { &mut *(arg as *mut Call<F, R>) };
    if let Some(func) = call.func.take() {
        call.result = Some(panic::catch_unwind(AssertUnwindSafe(func)));
    }
    null_mut()
}

pub fn nogvl<F: FnOnce() -> R, R>(func: F) -> R {
    let mut call = Call {
        func: Some(func),
        result: None,
    };
    let arg = &mut call as *mut Call<F, R> as *mut c_void;
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
