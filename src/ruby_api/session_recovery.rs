//! `MASTER::SessionRecovery`: the Rust half. Keyword arguments and
//! configuration are handled in `lib/master/session_recovery.rb`, which calls
//! the `_`-prefixed methods here; everything else is defined here directly.
//!
//! (Longer than most files here: one file per Ruby class, and this class has
//! thirty methods; what they share lives in `settings`, `failure`, `hashes`.)

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;

use magnus::rb_sys::{AsRawValue, FromRawValue};
use magnus::{
    gc, method, prelude::*, typed_data::Obj, value::Opaque, DataTypeFunctions, Error, RHash, Ruby,
    TypedData, Value,
};

use super::args::{self, money, optional_count, optional_text};
use super::encode;
use super::errors::{arg_error, guard, to_ruby, type_error, IntoRuby};
use super::failure;
use super::hashes;
use super::nogvl::nogvl;
use super::settings::{Hooks, Settings};
use super::values;
use crate::budget::{BudgetEvent, Money};
use crate::session::{CheckpointRequest, Data, Restored, Session, Snapshot};
use crate::store::layout::TaskId;

struct Inner {
    session: Session,
    callbacks: Hooks,
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
            // SAFETY: `raw` was stored by `set` from a live Value, and `mark`
            // marks it (so Ruby neither frees nor moves it) while it is here.
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
pub(crate) struct SessionRecovery {
    inner: OnceLock<Inner>,
}

impl DataTypeFunctions for SessionRecovery {
    /// The callbacks and logger live in Rust, so Ruby's GC must be told
    /// they are in use; capturing them is not enough.
    fn mark(&self, marker: &gc::Marker) {
        if let Some(inner) = self.inner.get() {
            for value in inner.callbacks.all().into_iter().flatten() {
                marker.mark(value);
            }
            if let Some(data) = inner.live_data.get() {
                marker.mark(data);
            }
        }
    }
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
        hooks: RHash,
    ) -> Result<(), Error> {
        guard(|| {
            if rb_self.inner.get().is_some() {
                return Err(type_error("SessionRecovery is already initialized"));
            }
            let task = TaskId::parse(&args::text(task_id, "task_id")?).into_ruby()?;
            let budget = (!budget.is_nil())
                .then(|| money(budget, "budget"))
                .transpose()?;
            let config = Settings::from_ruby(ruby, settings)?.into_config(task, budget)?;
            let callbacks = Hooks::from_ruby(hooks);
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
        let encoded = encode::to_json_sized(ruby, value, "data", expected + expected / 8)?;
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
        let hash = hashes::snapshot_hash(ruby, snapshot, None)?;
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
            Some(data) if canonical => hashes::snapshot_hash(ruby, snapshot, Some(data)),
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
            [n] if rb_sys::FIXNUM_P(n.as_raw()) => {
                // SAFETY: `n` is a Fixnum (just checked), decoded from its bits.
                match unsafe { rb_sys::FIX2LONG(n.as_raw()) } {
                    long if long >= 0 => long as u64,
                    _ => args::count(*n, "items")?,
                }
            }
            [n] => args::count(*n, "items")?,
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
                Some(v) if !v.is_nil() => Some(args::checkpoint_number(*v, "checkpoint")?),
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
            let mut info = failure::error_info(ruby, error, item, context);
            let data = match rb_self.current_data(ruby) {
                Ok(data) => data,
                Err(e) => {
                    info.notes.push(format!(
                        "the session's data could not be saved ({e}); this checkpoint keeps the data last written"
                    ));
                    None
                }
            };
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

    /// Makes every later write carry queue claim `token` (nil: none).
    fn fence(&self, token: Option<u64>) -> Result<(), Error> {
        self.inner()?.session.fence(token);
        Ok(())
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
                Some(args::checkpoint_number(to, "to_checkpoint")?)
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
                .map(|t| values::time(ruby, t))
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

pub(crate) fn init(ruby: &Ruby, master: magnus::RModule) -> Result<(), Error> {
    let class = master.define_class("SessionRecovery", ruby.class_object())?;
    class.define_alloc_func::<SessionRecovery>();
    class.define_private_method("_setup", method!(SessionRecovery::setup, 4))?;
    class.define_private_method("_checkpoint", method!(SessionRecovery::checkpoint, 4))?;
    class.define_private_method(
        "_checkpoint_error",
        method!(SessionRecovery::checkpoint_error, 3),
    )?;
    class.define_private_method("_rollback", method!(SessionRecovery::rollback, 1))?;
    class.define_private_method("_fence", method!(SessionRecovery::fence, 1))?;
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
