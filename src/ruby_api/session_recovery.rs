//! `MASTER::SessionRecovery`: the Rust half. Keyword arguments and
//! configuration are handled in `lib/master/session_recovery.rb`, which calls
//! the `_`-prefixed methods here; everything else is defined here directly.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Duration;

use magnus::rb_sys::{AsRawValue, FromRawValue};
use magnus::{
    gc, method, prelude::*, typed_data::Obj, value::Opaque, DataTypeFunctions, Error, RArray,
    RHash, RString, Ruby, Symbol, TypedData, Value,
};
use serde_json::value::RawValue;

use super::convert::{self, money, optional_count, optional_text, to_json};
use super::errors::{arg_error, guard, to_ruby, type_error, IntoRuby};
use super::nogvl::nogvl;
use crate::budget::{BudgetEvent, Money};
use crate::checkpoint::ErrorInfo;
use crate::kinds::Kind;
use crate::session::{CheckpointRequest, Data, Restored, Session, SessionConfig, Snapshot};
use crate::store::layout::TaskId;
use crate::store::StoreSpec;

/// How many backtrace lines a failed checkpoint keeps.
const BACKTRACE_LINES: usize = 10;

struct Callbacks {
    on_checkpoint: Option<Opaque<Value>>,
    on_resume: Option<Opaque<Value>>,
    on_complete: Option<Opaque<Value>>,
    logger: Option<Opaque<Value>>,
}

struct Inner {
    session: Session,
    callbacks: Callbacks,
    /// The object last given as `data:` (or restored): a writing `tick`,
    /// `complete!` and every other write save it as it is then, so results
    /// gathered into it since are never lost (SPEC: tick data).
    live_data: LiveData,
    /// Bytes the last `data` encoded to: the next one's buffer starts so.
    data_size: AtomicUsize,
}

/// A Ruby object held by the session and marked by its `mark`. Only read
/// and written with the GVL held (encoding it needs the GVL anyway).
#[derive(Default)]
struct LiveData(AtomicUsize);

impl LiveData {
    fn get(&self) -> Option<Value> {
        match self.0.load(Relaxed) {
            0 => None,
            raw => Some(unsafe { Value::from_raw(raw as rb_sys::VALUE) }),
        }
    }

    fn set(&self, value: Option<Value>) {
        let raw = value.map_or(0, |v| v.as_raw() as usize);
        self.0.store(raw, Relaxed);
    }
}

#[derive(TypedData, Default)]
#[magnus(class = "MASTER::SessionRecovery", free_immediately, mark, size)]
pub struct SessionRecovery {
    inner: OnceLock<Inner>,
}

impl DataTypeFunctions for SessionRecovery {
    /// The callbacks and logger live in Rust, so Ruby's GC must be told
    /// they are in use; capturing them is not enough.
    fn mark(&self, marker: &gc::Marker) {
        if let Some(inner) = self.inner.get() {
            let c = &inner.callbacks;
            for value in [c.on_checkpoint, c.on_resume, c.on_complete, c.logger]
                .into_iter()
                .flatten()
            {
                marker.mark(value);
            }
            if let Some(data) = inner.live_data.get() {
                marker.mark(data);
            }
        }
    }
}

fn optional(value: Value) -> Option<Opaque<Value>> {
    (!value.is_nil()).then(|| Opaque::from(value))
}

fn setting(settings: RHash, key: &str) -> Value {
    convert::hash_get(settings, key)
}

fn bool_setting(settings: RHash, key: &str) -> Result<bool, Error> {
    let value = setting(settings, key);
    if value.is_nil() {
        return Err(arg_error(format!("missing setting {key}")));
    }
    Ok(value.to_bool())
}

/// The user's data (or a failure's record) as Ruby objects, each key and
/// string of the kind it was saved as.
pub fn data_value(data: &Data, what: &str) -> Result<Value, Error> {
    let unreadable = |e: String| {
        let ruby = Ruby::get().expect("Ruby thread");
        Error::new(
            ruby.get_inner(&super::errors::CORRUPT_ERROR),
            format!("{what} could not be read back: {e}"),
        )
    };
    let kind = match &data.kinds {
        Some(kinds) => Some(
            std::str::from_utf8(kinds.as_bytes())
                .map_err(|e| e.to_string())
                .and_then(Kind::parse)
                .map_err(unreadable)?,
        ),
        None => None,
    };
    convert::from_json_kinds(data.json.as_bytes(), kind.as_ref()).map_err(unreadable)
}

/// The restored-state hash of SPEC: what `restore` returns and callbacks get.
#[rustfmt::skip]
fn snapshot_hash(ruby: &Ruby, snapshot: &Snapshot, data: Option<Value>) -> Result<RHash, Error> {
    use crate::sym;
    use convert::{f64_value, hash_of, opt, str_value, u64_value};
    let data = match data {
        Some(data) => data,
        None => data_value(&snapshot.data, "data")?,
    };
    let error = match &snapshot.error {
        Some(error) => data_value(error, "error")?,
        None => ruby.qnil().as_value(),
    };
    let b = &snapshot.budget;
    let money = |m: Money| f64_value(m.to_f64());
    let budget = hash_of(&[
        sym!("allocated"), opt(b.allocated, money),
        sym!("spent"), money(b.spent),
        sym!("remaining"), opt(b.remaining, money),
    ]);
    let p = &snapshot.progress;
    let hash = hash_of(&[
        sym!("task_id"), str_value(&snapshot.task_id),
        sym!("checkpoint"), opt(snapshot.checkpoint, u64_value),
        sym!("timestamp"), convert::time(ruby, snapshot.timestamp)?.as_raw(),
        sym!("status"), str_value(snapshot.status.as_str()),
        sym!("progress"), u64_value(p.items_processed),
        sym!("items_total"), opt(p.items_total, u64_value),
        sym!("percentage"), opt(p.percentage, f64_value),
        sym!("data"), data.as_raw(),
        sym!("message"), opt(snapshot.message.as_deref(), str_value),
        sym!("budget"), budget,
        sym!("error"), error.as_raw(),
        sym!("failures"), u64_value(snapshot.failures.into()),
        sym!("retries"), u64_value(snapshot.retries.into()),
    ]);
    Ok(RHash::from_value(unsafe { Value::from_raw(hash) }).expect("a Hash"))
}

/// A checkpoint: written with Ruby's lock released; or, with `async: true`,
/// captured and queued with it held (a queue push is cheaper than handing
/// the lock over), releasing it only to wait when the queue is full.
fn checkpoint_now(session: &Session, request: CheckpointRequest) -> Result<Snapshot, Error> {
    if !session.is_async() {
        return nogvl(|| session.checkpoint(request)).into_ruby();
    }
    if session.writer_is_full() {
        nogvl(|| session.wait_for_writer());
    }
    session.checkpoint(request).into_ruby()
}

fn call(ruby: &Ruby, callback: Option<Opaque<Value>>, state: RHash) -> Result<(), Error> {
    if let Some(callback) = callback {
        let _: Value = ruby.get_inner(callback).funcall("call", (state,))?;
    }
    Ok(())
}

fn log(
    ruby: &Ruby,
    logger: Option<Opaque<Value>>,
    messages: impl IntoIterator<Item = String>,
) -> Result<(), Error> {
    if let Some(logger) = logger {
        for message in messages {
            let _: Value = ruby.get_inner(logger).funcall("warn", (message,))?;
        }
    }
    Ok(())
}

fn arity(args: &[Value], max: usize) -> Result<(), Error> {
    if args.len() > max {
        return Err(arg_error(format!(
            "wrong number of arguments (given {}, expected 0..{max})",
            args.len()
        )));
    }
    Ok(())
}

/// Exception diagnostics are kept even when not clean UTF-8.
fn lossy(value: Value) -> String {
    RString::from_value(value)
        .map(|s| unsafe { s.to_string_lossy() }.into_owned())
        .unwrap_or_else(|| convert::inspect_value(value))
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
    let raw = |encoded: convert::Encoded| {
        let text = String::from_utf8(encoded.json).ok()?;
        Some((RawValue::from_string(text).ok()?, encoded.kinds))
    };
    if let Some((json, kinds)) = to_json(ruby, value, name).ok().and_then(raw) {
        return (Some(json), kinds);
    }
    let inspected = |v: Value| convert::inspect_value(v);
    let mut note = |what: String, v: Value| {
        let class = convert::class_of(v);
        notes.push(format!(
            "{what} is {} {class}, not plain data: recorded as its inspect",
            convert::article(&class)
        ));
    };
    let plain = match RHash::from_value(value) {
        Some(hash) => {
            // Member by member, so a context keeps what it can as data.
            let copy = ruby.hash_new();
            let _ = hash.foreach(|key: Value, member: Value| {
                let key_name = convert::inspect_value(key);
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

impl SessionRecovery {
    fn inner(&self) -> Result<&Inner, Error> {
        self.inner.get().ok_or_else(|| {
            type_error("this SessionRecovery was not initialized; create it with SessionRecovery.new(task_id: ...)")
        })
    }

    fn setup(
        ruby: &Ruby,
        rb_self: &Self,
        task_id: Value,
        budget: Value,
        settings: RHash,
    ) -> Result<(), Error> {
        guard(|| {
            if rb_self.inner.get().is_some() {
                return Err(type_error("SessionRecovery is already initialized"));
            }
            let id = convert::text(task_id, "task_id")?;
            let task = TaskId::parse(&id).into_ruby()?;
            let budget = if budget.is_nil() {
                None
            } else {
                let amount = money(budget, "budget")?;
                if amount.is_negative() || amount.is_zero() {
                    return Err(arg_error(format!(
                        "budget must be a positive number of dollars, or nil for no budget; got {}",
                        convert::inspect(ruby, budget.as_raw())
                    )));
                }
                Some(amount)
            };
            let store = StoreSpec::parse(&convert::text(setting(settings, "store"), "store")?)
                .into_ruby()?;
            let seconds = |key: &str| -> Result<Option<Duration>, Error> {
                let value = setting(settings, key);
                if value.is_nil() {
                    return Ok(None);
                }
                let secs = f64::try_convert(value)?;
                if secs <= 0.0 {
                    return Ok(None);
                }
                Duration::try_from_secs_f64(secs)
                    .map(Some)
                    .map_err(|_| arg_error(format!("{key} is too long a time; got {secs} seconds")))
            };
            let mut config = SessionConfig::new(task, store);
            config.budget = budget;
            config.checkpoint_interval = seconds("checkpoint_interval")?;
            config.checkpoint_on_items = optional_count(
                setting(settings, "checkpoint_on_items"),
                "checkpoint_on_items",
            )?
            .filter(|&n| n > 0);
            config.max_checkpoints =
                optional_count(setting(settings, "max_checkpoints"), "max_checkpoints")?
                    .filter(|&n| n > 0);
            config.warn_threshold = f64::try_convert(setting(settings, "warn_threshold"))?;
            config.max_retries = convert::count(setting(settings, "max_retries"), "max_retries")?
                .min(u32::MAX as u64) as u32;
            config.enabled = bool_setting(settings, "enabled")?;
            config.track_costs = bool_setting(settings, "track_costs")?;
            config.enforce_budget = bool_setting(settings, "enforce_budget")?;
            config.auto_resume = bool_setting(settings, "auto_resume")?;
            config.async_writes = bool_setting(settings, "async")?;
            let callbacks = Callbacks {
                on_checkpoint: optional(setting(settings, "on_checkpoint")),
                on_resume: optional(setting(settings, "on_resume")),
                on_complete: optional(setting(settings, "on_complete")),
                logger: optional(setting(settings, "logger")),
            };
            let (session, resumed) = nogvl(|| Session::open(config)).into_ruby()?;
            let inner = Inner {
                session,
                callbacks,
                live_data: LiveData::default(),
                data_size: Default::default(),
            };
            if rb_self.inner.set(inner).is_err() {
                return Err(type_error("SessionRecovery is already initialized"));
            }
            let inner = rb_self.inner()?;
            if let Some(restored) = resumed {
                log(
                    ruby,
                    inner.callbacks.logger,
                    restored.warnings.iter().cloned(),
                )?;
                if restored.first_resume && inner.callbacks.on_resume.is_some() {
                    let hash = rb_self.adopted_hash(ruby, &restored.snapshot)?;
                    call(ruby, inner.callbacks.on_resume, hash)?;
                }
            }
            Ok(())
        })
    }

    /// `value` encoded as the session's data, with a buffer the size of the
    /// last encoding (a large state is not copied as the buffer grows).
    fn encode_data(&self, ruby: &Ruby, value: Value) -> Result<(Data, bool), Error> {
        let inner = self.inner()?;
        let expected = inner.data_size.load(Relaxed);
        let encoded = convert::to_json_sized(ruby, value, "data", expected + expected / 8)?;
        inner.data_size.store(encoded.json.len(), Relaxed);
        Ok((Data::new(encoded.json, encoded.kinds), encoded.canonical))
    }

    /// The current data as it is now, encoded: what every write saves.
    /// `None` when the session holds no Ruby object for it (its data is
    /// the bytes of the checkpoint it resumed from).
    fn current_data(&self, ruby: &Ruby) -> Result<Option<Data>, Error> {
        match self.inner()?.live_data.get() {
            Some(value) => self.encode_data(ruby, value).map(|(data, _)| Some(data)),
            None => Ok(None),
        }
    }

    /// The state hash of a checkpoint whose data is now the session's own:
    /// its `data` object becomes the live one.
    fn adopted_hash(&self, ruby: &Ruby, snapshot: &Snapshot) -> Result<RHash, Error> {
        let hash = snapshot_hash(ruby, snapshot, None)?;
        let data: Value = hash.aref(ruby.to_symbol("data"))?;
        self.inner()?.live_data.set(Some(data));
        Ok(hash)
    }

    /// The state hash of a checkpoint just written from the live data:
    /// that object itself, not a decoded copy, when it is what a restore
    /// would give (plain Hashes and Arrays).
    fn written_hash(
        &self,
        ruby: &Ruby,
        snapshot: &Snapshot,
        canonical: bool,
    ) -> Result<RHash, Error> {
        let live = self.inner()?.live_data.get();
        match live {
            Some(data) if canonical => snapshot_hash(ruby, snapshot, Some(data)),
            _ => self.adopted_hash(ruby, snapshot),
        }
    }

    fn checkpoint(
        ruby: &Ruby,
        rb_self: &Self,
        data: Value,
        message: Value,
        progress: Value,
        items_total: Value,
    ) -> Result<RHash, Error> {
        guard(|| {
            let inner = rb_self.inner()?;
            let message = optional_text(message, "message")?;
            let progress = optional_count(progress, "progress")?;
            let items_total = optional_count(items_total, "items_total")?;
            let (data, canonical) = if data.is_nil() {
                match inner.live_data.get() {
                    Some(live) => rb_self.encode_data(ruby, live).map(|(d, c)| (Some(d), c))?,
                    None => (None, false),
                }
            } else {
                let (encoded, canonical) = rb_self.encode_data(ruby, data)?;
                inner.live_data.set(Some(data));
                (Some(encoded), canonical)
            };
            let request = CheckpointRequest {
                data,
                message,
                progress,
                items_total,
            };
            let snapshot = checkpoint_now(&inner.session, request)?;
            log(
                ruby,
                inner.callbacks.logger,
                snapshot.warnings.iter().cloned(),
            )?;
            let hash = rb_self.written_hash(ruby, &snapshot, canonical)?;
            call(ruby, inner.callbacks.on_checkpoint, hash)?;
            Ok(hash)
        })
    }

    /// The hot path: a fixnum check, an atomic add and a coarse clock read,
    /// then back to Ruby. Only a due tick goes further, and writes the
    /// current data as it is now.
    fn tick(ruby: &Ruby, rb_self: &Self, args: &[Value]) -> Result<bool, Error> {
        let items = match args {
            [] => 1,
            [n] if rb_sys::FIXNUM_P(n.as_raw()) && unsafe { rb_sys::FIX2LONG(n.as_raw()) } >= 0 => unsafe {
                rb_sys::FIX2LONG(n.as_raw()) as u64
            },
            [n] => convert::count(*n, "items")?,
            _ => return arity(args, 1).map(|_| false),
        };
        let inner = rb_self.inner()?;
        match inner.session.tick_due(items) {
            Some(false) => return Ok(false),
            Some(true) => {}
            None => {
                return Err(arg_error(format!(
                    "tick({items}) would take progress past {} items, the most a checkpoint holds; \
                     nothing was counted",
                    u64::MAX
                )))
            }
        }
        guard(|| {
            let data = match rb_self.current_data(ruby) {
                Ok(data) => data,
                Err(e) => {
                    inner.session.release_tick();
                    return Err(e);
                }
            };
            let request = CheckpointRequest {
                data,
                ..CheckpointRequest::default()
            };
            let snapshot = checkpoint_now(&inner.session, request)?;
            log(
                ruby,
                inner.callbacks.logger,
                snapshot.warnings.iter().cloned(),
            )?;
            if inner.callbacks.on_checkpoint.is_some() {
                let hash = rb_self.written_hash(ruby, &snapshot, true)?;
                call(ruby, inner.callbacks.on_checkpoint, hash)?;
            }
            Ok(true)
        })
    }

    fn restore(ruby: &Ruby, rb_self: &Self, args: &[Value]) -> Result<Option<RHash>, Error> {
        arity(args, 1)?;
        guard(|| {
            let inner = rb_self.inner()?;
            let number = match args.first() {
                Some(v) if !v.is_nil() => Some(convert::checkpoint_number(*v, "checkpoint")?),
                _ => None,
            };
            let restored = nogvl(|| inner.session.restore(number)).into_ruby()?;
            let Some(Restored {
                snapshot,
                first_resume,
                warnings,
            }) = restored
            else {
                return Ok(None);
            };
            log(ruby, inner.callbacks.logger, warnings)?;
            let hash = rb_self.adopted_hash(ruby, &snapshot)?;
            if first_resume {
                call(ruby, inner.callbacks.on_resume, hash)?;
            }
            Ok(Some(hash))
        })
    }

    fn complete(ruby: &Ruby, rb_self: &Self) -> Result<RHash, Error> {
        guard(|| {
            let inner = rb_self.inner()?;
            let data = rb_self.current_data(ruby)?;
            let snapshot = nogvl(|| inner.session.complete(data)).into_ruby()?;
            log(
                ruby,
                inner.callbacks.logger,
                snapshot.warnings.iter().cloned(),
            )?;
            let hash = rb_self.written_hash(ruby, &snapshot, true)?;
            call(ruby, inner.callbacks.on_complete, hash)?;
            Ok(hash)
        })
    }

    /// Called from `rescue` blocks: whatever it is given, it records it
    /// (what is not plain data by its `inspect`) and never raises because
    /// of it, so the caller's own exception is the one that propagates.
    fn checkpoint_error(
        ruby: &Ruby,
        rb_self: &Self,
        error: Value,
        item: Value,
        context: Value,
    ) -> Result<RHash, Error> {
        guard(|| {
            let inner = rb_self.inner()?;
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
                    class: call_text(class, "name", || convert::class_of(error)),
                    message: call_text(error, "message", || convert::inspect_value(error)),
                    backtrace: backtrace
                        .map(|lines| lines.into_iter().take(BACKTRACE_LINES).map(lossy).collect())
                        .unwrap_or_default(),
                    ..ErrorInfo::default()
                }
            } else {
                let class = convert::class_of(error);
                notes.push(format!(
                    "error is {} {class}, not an Exception: recorded as its inspect",
                    convert::article(&class)
                ));
                ErrorInfo {
                    class,
                    message: convert::inspect_value(error),
                    ..ErrorInfo::default()
                }
            };
            (info.item, info.item_kinds) = recorded(ruby, item, "item", &mut notes);
            (info.context, info.context_kinds) = recorded(ruby, context, "context", &mut notes);
            let data = match rb_self.current_data(ruby) {
                Ok(data) => data,
                Err(e) => {
                    notes.push(format!(
                        "the session's data could not be saved ({e}); this checkpoint keeps the data last written"
                    ));
                    None
                }
            };
            info.notes = notes;
            let snapshot = nogvl(|| inner.session.checkpoint_error(info, data)).into_ruby()?;
            log(
                ruby,
                inner.callbacks.logger,
                snapshot.warnings.iter().cloned(),
            )?;
            rb_self.written_hash(ruby, &snapshot, true)
        })
    }

    /// Waits until every checkpoint is durable; the last number written.
    fn flush(&self) -> Result<Option<u64>, Error> {
        let inner = self.inner()?;
        guard(|| nogvl(|| inner.session.flush()).into_ruby())
    }

    fn can_retry(&self) -> Result<bool, Error> {
        Ok(self.inner()?.session.can_retry())
    }

    fn retry_from_checkpoint(ruby: &Ruby, rb_self: &Self) -> Result<Option<RHash>, Error> {
        guard(|| {
            let inner = rb_self.inner()?;
            let (snapshot, warnings) =
                nogvl(|| inner.session.retry_from_checkpoint()).into_ruby()?;
            log(ruby, inner.callbacks.logger, warnings)?;
            match snapshot {
                Some(s) => rb_self.adopted_hash(ruby, &s).map(Some),
                None => {
                    inner.live_data.set(None);
                    Ok(None)
                }
            }
        })
    }

    fn rollback(ruby: &Ruby, rb_self: &Self, to: Value) -> Result<RHash, Error> {
        guard(|| {
            let inner = rb_self.inner()?;
            let to = if to.is_nil() {
                None
            } else {
                Some(convert::checkpoint_number(to, "to_checkpoint")?)
            };
            let (snapshot, warnings) = nogvl(|| inner.session.rollback(to)).into_ruby()?;
            log(ruby, inner.callbacks.logger, warnings)?;
            log(
                ruby,
                inner.callbacks.logger,
                snapshot.warnings.iter().cloned(),
            )?;
            let hash = rb_self.adopted_hash(ruby, &snapshot)?;
            call(ruby, inner.callbacks.on_checkpoint, hash)?;
            Ok(hash)
        })
    }

    fn checkpoint_exists(&self) -> Result<bool, Error> {
        let inner = self.inner()?;
        guard(|| nogvl(|| inner.session.checkpoint_exists()).into_ruby())
    }

    fn last_checkpoint_time(ruby: &Ruby, rb_self: &Self) -> Result<Option<Value>, Error> {
        let inner = rb_self.inner()?;
        guard(|| {
            nogvl(|| inner.session.last_checkpoint_time())
                .into_ruby()?
                .map(|t| convert::time(ruby, t))
                .transpose()
        })
    }

    fn checkpoint_valid(&self) -> Result<bool, Error> {
        let inner = self.inner()?;
        guard(|| nogvl(|| inner.session.checkpoint_valid()).into_ruby())
    }

    fn reset(&self) -> Result<(), Error> {
        let inner = self.inner()?;
        guard(|| nogvl(|| inner.session.reset()).into_ruby())?;
        inner.live_data.set(None);
        Ok(())
    }

    fn progress(&self) -> Result<u64, Error> {
        Ok(self.inner()?.session.progress())
    }

    fn items_total(&self) -> Result<Option<u64>, Error> {
        Ok(self.inner()?.session.items_total())
    }

    fn task_id(&self) -> Result<String, Error> {
        Ok(self.inner()?.session.task_id().to_string())
    }

    fn status(&self) -> Result<&'static str, Error> {
        Ok(self.inner()?.session.status().as_str())
    }

    /// Where the session's checkpoints are (a directory, `memory://NAME`).
    fn store_location(&self) -> Result<String, Error> {
        Ok(self.inner()?.session.location())
    }

    fn latest_checkpoint(&self) -> Result<Option<u64>, Error> {
        Ok(self.inner()?.session.last_checkpoint())
    }

    fn failures(&self) -> Result<u32, Error> {
        Ok(self.inner()?.session.failures())
    }

    fn retries(&self) -> Result<u32, Error> {
        Ok(self.inner()?.session.retries())
    }

    /// Adds a cost. With `enforce_budget`, the call that passes the budget
    /// (and every later one) persists the amount, then raises.
    fn track_cost(ruby: &Ruby, rb_self: &Self, amount: Value) -> Result<f64, Error> {
        let inner = rb_self.inner()?;
        let dollars = money(amount, "amount")?;
        let tracked = inner.session.track_cost(dollars).into_ruby()?;
        let task = inner.session.task_id().to_string();
        log(
            ruby,
            inner.callbacks.logger,
            tracked
                .events
                .iter()
                .map(|e: &BudgetEvent| e.message(&task)),
        )?;
        if tracked.over_enforced_budget {
            guard(|| {
                let exceeded = inner.session.budget_exceeded();
                let request = CheckpointRequest {
                    data: rb_self.current_data(ruby)?,
                    message: Some(exceeded.to_string()),
                    ..CheckpointRequest::default()
                };
                let snapshot = checkpoint_now(&inner.session, request)?;
                log(
                    ruby,
                    inner.callbacks.logger,
                    snapshot.warnings.iter().cloned(),
                )?;
                Err(to_ruby(exceeded))
            })?;
        }
        Ok(inner.session.budget().spent().to_f64())
    }

    fn increase_budget(ruby: &Ruby, rb_self: &Self, amount: Value) -> Result<f64, Error> {
        let inner = rb_self.inner()?;
        let dollars = money(amount, "amount")?;
        let _ = ruby;
        inner.session.increase_budget(dollars).into_ruby()?;
        Ok(inner
            .session
            .budget()
            .allocated()
            .map_or(0.0, Money::to_f64))
    }

    fn budget_spent(&self) -> Result<f64, Error> {
        Ok(self.inner()?.session.budget().spent().to_f64())
    }

    fn budget_limit(&self) -> Result<Option<f64>, Error> {
        Ok(self
            .inner()?
            .session
            .budget()
            .allocated()
            .map(Money::to_f64))
    }

    fn budget_remaining(&self) -> Result<Option<f64>, Error> {
        Ok(self
            .inner()?
            .session
            .budget()
            .remaining()
            .map(Money::to_f64))
    }

    fn budget_used_percent(&self) -> Result<f64, Error> {
        Ok(self.inner()?.session.budget().used_percent())
    }

    fn over_budget(&self) -> Result<bool, Error> {
        Ok(self.inner()?.session.budget().over())
    }

    fn near_budget_limit(&self) -> Result<bool, Error> {
        Ok(self.inner()?.session.budget().near_limit())
    }

    fn inspect(rb_self: Obj<Self>) -> Result<String, Error> {
        let class: String = rb_self.class().funcall("name", ())?;
        Ok(match rb_self.inner.get() {
            Some(inner) => format!(
                "#<{class} task_id={:?} progress={} store={:?}>",
                inner.session.task_id().as_str(),
                inner.session.progress(),
                inner.session.location()
            ),
            None => format!("#<{class} (not initialized)>"),
        })
    }
}

pub fn init(ruby: &Ruby, master: magnus::RModule) -> Result<(), Error> {
    let class = master.define_class("SessionRecovery", ruby.class_object())?;
    class.define_alloc_func::<SessionRecovery>();
    class.define_private_method("_setup", method!(SessionRecovery::setup, 3))?;
    class.define_private_method("_checkpoint", method!(SessionRecovery::checkpoint, 4))?;
    class.define_private_method(
        "_checkpoint_error",
        method!(SessionRecovery::checkpoint_error, 3),
    )?;
    class.define_private_method("_rollback", method!(SessionRecovery::rollback, 1))?;
    class.define_method("tick", method!(SessionRecovery::tick, -1))?;
    class.define_method("restore", method!(SessionRecovery::restore, -1))?;
    class.define_method("complete!", method!(SessionRecovery::complete, 0))?;
    class.define_method("can_retry?", method!(SessionRecovery::can_retry, 0))?;
    class.define_method("flush", method!(SessionRecovery::flush, 0))?;
    class.define_method(
        "retry_from_checkpoint",
        method!(SessionRecovery::retry_from_checkpoint, 0),
    )?;
    class.define_method(
        "checkpoint_exists?",
        method!(SessionRecovery::checkpoint_exists, 0),
    )?;
    class.define_method(
        "last_checkpoint_time",
        method!(SessionRecovery::last_checkpoint_time, 0),
    )?;
    class.define_method(
        "checkpoint_valid?",
        method!(SessionRecovery::checkpoint_valid, 0),
    )?;
    class.define_method("reset", method!(SessionRecovery::reset, 0))?;
    class.define_method("progress", method!(SessionRecovery::progress, 0))?;
    class.define_method("items_total", method!(SessionRecovery::items_total, 0))?;
    class.define_method("task_id", method!(SessionRecovery::task_id, 0))?;
    class.define_method("status", method!(SessionRecovery::status, 0))?;
    class.define_method("store", method!(SessionRecovery::store_location, 0))?;
    class.define_method(
        "checkpoint_dir",
        method!(SessionRecovery::store_location, 0),
    )?;
    class.define_method(
        "latest_checkpoint",
        method!(SessionRecovery::latest_checkpoint, 0),
    )?;
    class.define_method("failures", method!(SessionRecovery::failures, 0))?;
    class.define_method("retries", method!(SessionRecovery::retries, 0))?;
    class.define_method("track_cost", method!(SessionRecovery::track_cost, 1))?;
    class.define_method(
        "increase_budget",
        method!(SessionRecovery::increase_budget, 1),
    )?;
    class.define_method("budget_spent", method!(SessionRecovery::budget_spent, 0))?;
    class.define_method("budget_limit", method!(SessionRecovery::budget_limit, 0))?;
    class.define_method(
        "budget_remaining",
        method!(SessionRecovery::budget_remaining, 0),
    )?;
    class.define_method(
        "budget_used_percent",
        method!(SessionRecovery::budget_used_percent, 0),
    )?;
    class.define_method("over_budget?", method!(SessionRecovery::over_budget, 0))?;
    class.define_method(
        "near_budget_limit?",
        method!(SessionRecovery::near_budget_limit, 0),
    )?;
    class.define_method("inspect", method!(SessionRecovery::inspect, 0))?;
    Ok(())
}
