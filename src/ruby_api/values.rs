//! Ruby values built from Rust ones, cheaply: interned Symbol keys and
//! Hashes filled in one call (`list` builds ten thousand of them).

use std::ffi::c_long;

use magnus::{prelude::*, Error, RHash, Ruby, Value};
use rb_sys::VALUE;

pub const QNIL: VALUE = rb_sys::Qnil as VALUE;
pub const QTRUE: VALUE = rb_sys::Qtrue as VALUE;
pub const QFALSE: VALUE = rb_sys::Qfalse as VALUE;

/// A UTC `Time`.
pub fn time(ruby: &Ruby, at: chrono::DateTime<chrono::Utc>) -> Result<Value, Error> {
    let spec = magnus::time::Timespec {
        tv_sec: at.timestamp(),
        tv_nsec: at.timestamp_subsec_nanos() as i64,
    };
    Ok(ruby
        .time_timespec_new(spec, magnus::time::Offset::utc())?
        .as_value())
}

pub fn hash_get(hash: RHash, key: &str) -> Value {
    let ruby = Ruby::get_with(hash);
    hash.get(ruby.to_symbol(key))
        .unwrap_or_else(|| ruby.qnil().as_value())
}

/// A static Symbol, interned once per call site. Static symbols are never
/// collected, so the raw VALUE may be kept.
#[macro_export]
macro_rules! sym {
    ($name:literal) => {{
        static SYMBOL: std::sync::OnceLock<rb_sys::VALUE> = std::sync::OnceLock::new();
        let name: &'static str = $name;
        *SYMBOL.get_or_init(|| unsafe {
            rb_sys::rb_id2sym(rb_sys::rb_intern2(
                name.as_ptr() as *const std::ffi::c_char,
                name.len() as std::ffi::c_long,
            ))
        })
    }};
}

/// A Hash from key/value pairs in one call. The pairs live on the caller's
/// stack, where Ruby's GC sees them while they are built.
pub fn hash_of(pairs: &[VALUE]) -> VALUE {
    unsafe {
        let hash = rb_sys::rb_hash_new();
        rb_sys::rb_hash_bulk_insert(pairs.len() as c_long, pairs.as_ptr(), hash);
        hash
    }
}

pub fn str_value(text: &str) -> VALUE {
    unsafe { rb_sys::rb_utf8_str_new(text.as_ptr() as *const _, text.len() as c_long) }
}

pub fn u64_value(n: u64) -> VALUE {
    unsafe { rb_sys::rb_ull2inum(n) }
}

pub fn f64_value(f: f64) -> VALUE {
    unsafe { rb_sys::rb_float_new(f) }
}

pub fn opt<T>(value: Option<T>, to_value: impl FnOnce(T) -> VALUE) -> VALUE {
    value.map_or(QNIL, to_value)
}
