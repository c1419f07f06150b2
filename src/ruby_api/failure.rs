//! What `checkpoint_error` records of what it is given. It runs in
//! `rescue` blocks, so nothing here raises because of its arguments: an
//! error that is not an Exception, an item or a context that is not plain
//! data, is recorded by its `inspect`, with a note saying so.

use magnus::{prelude::*, RArray, RHash, RString, Ruby, Symbol, Value};
use serde_json::value::RawValue;

use super::args;
use super::encode::{self, to_json};
use crate::checkpoint::ErrorInfo;

/// How many backtrace lines a failed checkpoint keeps.
const BACKTRACE_LINES: usize = 10;

/// The record of `error` (an Exception, a message String, or anything),
/// `item` and `context`; `notes` says what was not kept as given.
pub(super) fn error_info(ruby: &Ruby, error: Value, item: Value, context: Value) -> ErrorInfo {
    let mut notes = Vec::new();
    let mut info = if let Some(message) = RString::from_value(error) {
        ErrorInfo {
            class: "RuntimeError".into(),
            message: lossy(message.as_value()),
            ..ErrorInfo::default()
        }
    } else if error.is_kind_of(ruby.exception_exception()) {
        let class: Value = error.class().as_value();
        let backtrace: Option<RArray> = error.funcall("backtrace", ()).unwrap_or(None);
        ErrorInfo {
            class: call_text(class, "name", || encode::class_of(error)),
            message: call_text(error, "message", || args::inspect_value(error)),
            backtrace: backtrace
                .map(|lines| lines.into_iter().take(BACKTRACE_LINES).map(lossy).collect())
                .unwrap_or_default(),
            ..ErrorInfo::default()
        }
    } else {
        let class = encode::class_of(error);
        notes.push(format!(
            "error is {} {class}, not an Exception: recorded as its inspect",
            encode::article(&class)
        ));
        ErrorInfo {
            class,
            message: args::inspect_value(error),
            ..ErrorInfo::default()
        }
    };
    (info.item, info.item_kinds) = recorded(ruby, item, "item", &mut notes);
    (info.context, info.context_kinds) = recorded(ruby, context, "context", &mut notes);
    info.notes = notes;
    info
}

/// Exception diagnostics are kept even when not clean UTF-8.
fn lossy(value: Value) -> String {
    RString::from_value(value)
        // SAFETY: the borrowed bytes are copied (`into_owned`) before any
        // Ruby code could change or free them.
        .map(|s| unsafe { s.to_string_lossy() }.into_owned())
        .unwrap_or_else(|| args::inspect_value(value))
}

/// `value.name` (a method call that may raise), or `fallback`.
fn call_text(value: Value, method: &str, fallback: impl FnOnce() -> String) -> String {
    match value.funcall::<_, _, Value>(method, ()) {
        Ok(v) if !v.is_nil() => lossy(v),
        _ => fallback(),
    }
}

/// A failure's record of `value`: as given when it is plain data, else —
/// never failing, since this runs in `rescue` blocks — the plain members of
/// a Hash as given and everything else as its `inspect`, noted in `notes`.
fn recorded(
    ruby: &Ruby,
    value: Value,
    name: &str,
    notes: &mut Vec<String>,
) -> (Option<Box<RawValue>>, Option<Vec<u8>>) {
    if value.is_nil() {
        return (None, None);
    }
    let raw = |encoded: encode::Encoded| {
        let text = String::from_utf8(encoded.json).ok()?;
        Some((RawValue::from_string(text).ok()?, encoded.kinds))
    };
    if let Some((json, kinds)) = to_json(ruby, value, name).ok().and_then(raw) {
        return (Some(json), kinds);
    }
    let inspected = |v: Value| args::inspect_value(v);
    let mut note = |what: String, v: Value| {
        let class = encode::class_of(v);
        notes.push(format!(
            "{what} is {} {class}, not plain data: recorded as its inspect",
            encode::article(&class)
        ));
    };
    let plain = match RHash::from_value(value) {
        Some(hash) => {
            // Member by member, so a context keeps what it can as data.
            let copy = ruby.hash_new();
            let _ = hash.foreach(|key: Value, member: Value| {
                let key_name = args::inspect_value(key);
                let key = if Symbol::from_value(key).is_some() || RString::from_value(key).is_some()
                {
                    key
                } else {
                    note(format!("{name} key {key_name}"), key);
                    ruby.str_new(&key_name).as_value()
                };
                let member = if to_json(ruby, member, name).is_ok() {
                    member
                } else {
                    note(format!("{name}[{key_name}]"), member);
                    ruby.str_new(&inspected(member)).as_value()
                };
                let _ = copy.aset(key, member);
                Ok(magnus::r_hash::ForEach::Continue)
            });
            to_json(ruby, copy.as_value(), name).ok().and_then(raw)
        }
        None => None,
    };
    if let Some((json, kinds)) = plain {
        return (Some(json), kinds);
    }
    note(name.to_owned(), value);
    let text = serde_json::to_string(&inspected(value)).expect("a String encodes");
    (RawValue::from_string(text).ok(), None)
}
