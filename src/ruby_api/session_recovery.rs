//! `MASTER::SessionRecovery`: the Rust half. Keyword arguments and
//! configuration are handled in `lib/master/session_recovery.rb`, which calls
//! the `_`-prefixed methods here; everything else is defined here directly.

use std::sync::OnceLock;
use std::time::Duration;

use magnus::rb_sys::{AsRawValue, FromRawValue};
use magnus::{
    gc, method, prelude::*, typed_data::Obj, value::Opaque, DataTypeFunctions, Error, RArray,
    RHash, RString, Ruby, TypedData, Value,
};
use serde_json::value::RawValue;

use super::convert::{self, money, optional_count, optional_text, to_json};
use super::errors::{arg_error, guard, type_error, IntoRuby};
use super::nogvl::nogvl;
use crate::budget::{BudgetEvent, Money};
use crate::checkpoint::{BudgetFigures, ErrorInfo};
use crate::session::{CheckpointRequest, RawJson, Restored, Session, SessionConfig, Snapshot};
use crate::store::layout::TaskId;

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
    /// Bytes the last `data` encoded to: the next one's buffer starts so.
    data_size: std::sync::atomic::AtomicUsize,
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

pub fn budget_hash(ruby: &Ruby, budget: &BudgetFigures) -> Result<RHash, Error> {
    serde_magnus::serialize(ruby, budget)
}

pub fn json_value(json: &[u8], what: &str) -> Result<Value, Error> {
    convert::from_json(json).map_err(|e| {
        let ruby = Ruby::get().expect("Ruby thread");
        Error::new(
            ruby.get_inner(&super::errors::CORRUPT_ERROR),
            format!("{what} could not be read back: {e}"),
        )
    })
}

/// The restored-state hash of SPEC: what `restore` returns and callbacks get.
#[rustfmt::skip]
fn snapshot_hash(ruby: &Ruby, snapshot: &Snapshot, data: Option<Value>) -> Result<RHash, Error> {
    use crate::sym;
    use convert::{f64_value, hash_of, opt, str_value, u64_value};
    let data = match data {
        Some(data) => data,
        None => json_value(snapshot.data.as_bytes(), "data")?,
    };
    let error = match &snapshot.error {
        Some(raw) => json_value(raw.as_bytes(), "error")?,
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
        .unwrap_or_default()
}

fn raw_json(value: Value, name: &str, ruby: &Ruby) -> Result<Option<Box<RawValue>>, Error> {
    if value.is_nil() {
        return Ok(None);
    }
    let encoded = to_json(ruby, value, name)?;
    let text = String::from_utf8(encoded.json).map_err(|e| arg_error(e.to_string()))?;
    Ok(Some(
        RawValue::from_string(text).map_err(|e| arg_error(e.to_string()))?,
    ))
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
            let dir = convert::text(setting(settings, "checkpoint_dir"), "checkpoint_dir")?;
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
            let mut config = SessionConfig::new(task, dir);
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
            config.auto_resume = bool_setting(settings, "auto_resume")?;
            config.async_writes = bool_setting(settings, "async")?;
            let callbacks = Callbacks {
                on_checkpoint: optional(setting(settings, "on_checkpoint")),
                on_resume: optional(setting(settings, "on_resume")),
                on_complete: optional(setting(settings, "on_complete")),
                logger: optional(setting(settings, "logger")),
            };
            let (session, resumed) = nogvl(|| Session::open(config)).into_ruby()?;
            let logger = callbacks.logger;
            let on_resume = callbacks.on_resume;
            let inner = Inner {
                session,
                callbacks,
                data_size: Default::default(),
            };
            if rb_self.inner.set(inner).is_err() {
                return Err(type_error("SessionRecovery is already initialized"));
            }
            if let Some(restored) = resumed {
                log(ruby, logger, restored.warnings.iter().cloned())?;
                if restored.first_resume {
                    let hash = snapshot_hash(ruby, &restored.snapshot, None)?;
                    call(ruby, on_resume, hash)?;
                }
            }
            Ok(())
        })
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
            let encoded = if data.is_nil() {
                None
            } else {
                use std::sync::atomic::Ordering::Relaxed;
                let expected = inner.data_size.load(Relaxed);
                let encoded = convert::to_json_sized(ruby, data, "data", expected + expected / 8)?;
                inner.data_size.store(encoded.json.len(), Relaxed);
                Some(encoded)
            };
            let canonical = encoded
                .as_ref()
                .is_some_and(|e| e.canonical)
                .then_some(data);
            let request = CheckpointRequest {
                data: encoded.map(|e| RawJson::new(e.json)),
                message: optional_text(message, "message")?,
                progress: optional_count(progress, "progress")?,
                items_total: optional_count(items_total, "items_total")?,
            };
            let snapshot = checkpoint_now(&inner.session, request)?;
            log(
                ruby,
                inner.callbacks.logger,
                snapshot.warnings.iter().cloned(),
            )?;
            let hash = snapshot_hash(ruby, &snapshot, canonical)?;
            call(ruby, inner.callbacks.on_checkpoint, hash)?;
            Ok(hash)
        })
    }

    /// The hot path: a fixnum check, two atomic adds and a coarse clock
    /// read, then back to Ruby. Only a due tick goes further.
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
        if !inner.session.tick_due(items) {
            return Ok(false);
        }
        guard(|| {
            let snapshot = checkpoint_now(&inner.session, CheckpointRequest::default())?;
            log(
                ruby,
                inner.callbacks.logger,
                snapshot.warnings.iter().cloned(),
            )?;
            if inner.callbacks.on_checkpoint.is_some() {
                let hash = snapshot_hash(ruby, &snapshot, None)?;
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
            let hash = snapshot_hash(ruby, &snapshot, None)?;
            if first_resume {
                call(ruby, inner.callbacks.on_resume, hash)?;
            }
            Ok(Some(hash))
        })
    }

    fn complete(ruby: &Ruby, rb_self: &Self) -> Result<RHash, Error> {
        guard(|| {
            let inner = rb_self.inner()?;
            let snapshot = nogvl(|| inner.session.complete(None)).into_ruby()?;
            log(
                ruby,
                inner.callbacks.logger,
                snapshot.warnings.iter().cloned(),
            )?;
            let hash = snapshot_hash(ruby, &snapshot, None)?;
            call(ruby, inner.callbacks.on_complete, hash)?;
            Ok(hash)
        })
    }

    fn checkpoint_error(
        ruby: &Ruby,
        rb_self: &Self,
        error: Value,
        item: Value,
        context: Value,
    ) -> Result<RHash, Error> {
        guard(|| {
            let inner = rb_self.inner()?;
            let info = if let Some(message) = RString::from_value(error) {
                ErrorInfo {
                    class: "RuntimeError".into(),
                    message: lossy(message.as_value()),
                    backtrace: Vec::new(),
                    item: None,
                    context: None,
                }
            } else if error.is_kind_of(ruby.exception_exception()) {
                let class: Value = error.funcall("class", ())?;
                let backtrace: Option<RArray> = error.funcall("backtrace", ())?;
                ErrorInfo {
                    class: lossy(class.funcall("name", ())?),
                    message: lossy(error.funcall("message", ())?),
                    backtrace: backtrace
                        .map(|lines| lines.into_iter().take(BACKTRACE_LINES).map(lossy).collect())
                        .unwrap_or_default(),
                    item: None,
                    context: None,
                }
            } else {
                return Err(type_error(format!(
                    "error must be an Exception (or a String message); got {}",
                    convert::inspect(ruby, error.as_raw())
                )));
            };
            let info = ErrorInfo {
                item: raw_json(item, "item", ruby)?,
                context: raw_json(context, "context", ruby)?,
                ..info
            };
            let snapshot = nogvl(|| inner.session.checkpoint_error(info)).into_ruby()?;
            log(
                ruby,
                inner.callbacks.logger,
                snapshot.warnings.iter().cloned(),
            )?;
            snapshot_hash(ruby, &snapshot, None)
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
            snapshot.map(|s| snapshot_hash(ruby, &s, None)).transpose()
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
            let hash = snapshot_hash(ruby, &snapshot, None)?;
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
        guard(|| nogvl(|| inner.session.reset()).into_ruby())
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

    fn checkpoint_dir(&self) -> Result<String, Error> {
        Ok(self.inner()?.session.store().root().display().to_string())
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

    fn track_cost(ruby: &Ruby, rb_self: &Self, amount: Value) -> Result<f64, Error> {
        let inner = rb_self.inner()?;
        let dollars = money(amount, "amount")?;
        if dollars.is_negative() {
            return Err(arg_error(format!(
                "amount must not be negative (costs only add up); got {}",
                convert::inspect(ruby, amount.as_raw())
            )));
        }
        let events = inner.session.track_cost(dollars).into_ruby()?;
        let task = inner.session.task_id().to_string();
        log(
            ruby,
            inner.callbacks.logger,
            events.iter().map(|e: &BudgetEvent| e.message(&task)),
        )?;
        Ok(inner.session.budget().spent().to_f64())
    }

    fn increase_budget(ruby: &Ruby, rb_self: &Self, amount: Value) -> Result<f64, Error> {
        let inner = rb_self.inner()?;
        let dollars = money(amount, "amount")?;
        if dollars.is_negative() || dollars.is_zero() {
            return Err(arg_error(format!(
                "amount must be a positive number of dollars; got {}",
                convert::inspect(ruby, amount.as_raw())
            )));
        }
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
                "#<{class} task_id={:?} progress={} checkpoint_dir={:?}>",
                inner.session.task_id().as_str(),
                inner.session.progress(),
                inner.session.store().root().display().to_string()
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
    class.define_method(
        "checkpoint_dir",
        method!(SessionRecovery::checkpoint_dir, 0),
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
