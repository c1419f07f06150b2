//! Ruby values built from Rust ones, cheaply: interned Symbol keys and
//! Hashes filled in one call (`list` builds ten thousand of them).
//!
//! Everything here is called from Ruby methods (through `hashes`), so the
//! GVL is held, as the rb_sys calls below need.

use std::ffi::c_long;

use magnus::rb_sys::FromRawValue;
use magnus::{prelude::*, Error, RHash, Ruby, Value};
use rb_sys::VALUE;

pub(super) const QNIL: VALUE = rb_sys::Qnil as VALUE;
pub(super) const QTRUE: VALUE = rb_sys::Qtrue as VALUE;
pub(super) const QFALSE: VALUE = rb_sys::Qfalse as VALUE;

/// A UTC `Time`.
pub(super) fn time(ruby: &Ruby, at: chrono::DateTime<chrono::Utc>) -> Result<Value, Error> {
    let spec = magnus::time::Timespec {
        tv_sec: at.timestamp(),
        tv_nsec: at.timestamp_subsec_nanos() as i64,
    };
    Ok(ruby
        .time_timespec_new(spec, magnus::time::Offset::utc())?
        .as_value())
}

pub(super) fn hash_get(hash: RHash, key: &str) -> Value {
    let ruby = Ruby::get_with(hash);
    hash.get(ruby.to_symbol(key))
        .unwrap_or_else(|| ruby.qnil().as_value())
}

/// A static Symbol, interned once per call site. Static symbols are never
/// collected, so the raw VALUE may be kept.
macro_rules! sym {
    ($name:literal) => {{
        static SYMBOL: std::sync::OnceLock<rb_sys::VALUE> = std::sync::OnceLock::new();
        let name: &'static str = $name;
        // SAFETY: `name` is valid for its `len()` bytes for ever (rb_intern2
        // needs no NUL), and the GVL is held (see the module comment).
        *SYMBOL.get_or_init(|| unsafe {
            rb_sys::rb_id2sym(rb_sys::rb_intern2(
                name.as_ptr() as *const std::ffi::c_char,
                name.len() as std::ffi::c_long,
            ))
        })
    }};
}
pub(super) use sym;

/// A Hash from key, value, key, value… in one call. The pairs live on the
/// caller's stack, where Ruby's GC sees them while they are built.
pub(super) fn hash_of(pairs: &[VALUE]) -> RHash {
    // SAFETY: the GVL is held (see the module comment); `pairs` are live
    // values just made by the caller and kept on its stack, and the new Hash
    // is on ours while they are inserted.
    let hash = unsafe {
        let hash = rb_sys::rb_hash_new();
        rb_sys::rb_hash_bulk_insert(pairs.len() as c_long, pairs.as_ptr(), hash);
        hash
    };
    // SAFETY: `hash` is the live Hash just made, still on this stack.
    RHash::from_value(unsafe { Value::from_raw(hash) }).expect("a Hash")
}

pub(super) fn str_value(text: &str) -> VALUE {
    // SAFETY: `text` is valid UTF-8 for its `len()` bytes, which Ruby copies;
    // the GVL is held (see the module comment).
    unsafe { rb_sys::rb_utf8_str_new(text.as_ptr() as *const _, text.len() as c_long) }
}

pub(super) fn u64_value(n: u64) -> VALUE {
    // SAFETY: any u64 is accepted (a Bignum is allocated when needed); the
    // GVL is held (see the module comment).
    unsafe { rb_sys::rb_ull2inum(n) }
}

pub(super) fn f64_value(f: f64) -> VALUE {
    // SAFETY: any f64 is accepted (a Float is allocated when not a flonum);
    // the GVL is held (see the module comment).
    unsafe { rb_sys::rb_float_new(f) }
}

pub(super) fn opt<T>(value: Option<T>, to_value: impl FnOnce(T) -> VALUE) -> VALUE {
    value.map_or(QNIL, to_value)
}
