//! `MASTER::Queue`'s private halves: claims, leases, cancels and runs, each
//! a call of `queue::Coordination`. The orchestration is Ruby's
//! (`lib/master/queue.rb`); these only say what the store decided.

use magnus::{function, prelude::*, Error, IntoValue, RArray, Ruby, Value};

use super::args;
use super::errors::{guard, IntoRuby};
use super::hashes::claim_hash;
use super::nogvl::nogvl;
use crate::queue::{self, Coordination};
use crate::store::claims::{ClaimState, Claimed, Holder, Renewed};
use crate::store::layout::TaskId;
use crate::store::StoreSpec;

fn store(spec: String) -> Result<Coordination, Error> {
    StoreSpec::parse(&spec)
        .and_then(|spec| Coordination::open(&spec))
        .into_ruby()
}

fn task(id: Value, name: &str) -> Result<TaskId, Error> {
    TaskId::parse(&args::text(id, name)?).into_ruby()
}

/// `{run:, opened_at:, alive_until_ns:, closed:}` of the run entered.
fn enter_run(
    ruby: &Ruby,
    spec: String,
    queue: Value,
    resume: bool,
    lease: f64,
) -> Result<Value, Error> {
    guard(|| {
        let queue = task(queue, "queue")?;
        let lease = queue::lease(lease).into_ruby()?;
        let store = store(spec)?;
        let run = nogvl(|| store.enter_run(&queue, resume, lease)).into_ruby()?;
        Ok(run.run.into_value_with(ruby))
    })
}

fn touch_run(
    spec: String,
    queue: Value,
    run: u64,
    until_ns: i64,
    close: bool,
) -> Result<(), Error> {
    guard(|| {
        let queue = task(queue, "queue")?;
        let store = store(spec)?;
        nogvl(|| store.touch_run(&queue, run, until_ns, close)).into_ruby()
    })
}

/// `[:taken | :held | :finished, claim]`
#[allow(clippy::too_many_arguments)]
fn claim(
    ruby: &Ruby,
    spec: String,
    id: Value,
    queue: String,
    run: u64,
    worker: String,
    lease: f64,
    retry_failed: bool,
) -> Result<RArray, Error> {
    guard(|| {
        let task = task(id, "task_id")?;
        let lease = queue::lease(lease).into_ruby()?;
        let host = crate::checkpoint::Host::current();
        let holder = Holder {
            host: host.hostname.clone(),
            pid: std::process::id(),
            worker,
        };
        let store = store(spec)?;
        let claimed =
            nogvl(|| store.claim(&task, &queue, run, &holder, lease, retry_failed)).into_ruby()?;
        let (outcome, claim) = match &claimed {
            Claimed::Taken(c) => ("taken", c),
            Claimed::Held(c) => ("held", c),
            Claimed::Finished(c) => ("finished", c),
        };
        Ok(ruby.ary_new_from_values(&[
            ruby.to_symbol(outcome).as_value(),
            claim_hash(ruby, claim)?.as_value(),
        ]))
    })
}

/// `:held`, `:cancel` (held, and asked to stop) or `:lost`.
fn renew(
    ruby: &Ruby,
    spec: String,
    id: Value,
    token: u64,
    lease: f64,
    spent: String,
) -> Result<Value, Error> {
    guard(|| {
        let task = task(id, "task_id")?;
        let lease = queue::lease(lease).into_ruby()?;
        let store = store(spec)?;
        let renewed = nogvl(|| store.renew(&task, token, lease, &spent)).into_ruby()?;
        let outcome = match renewed {
            Renewed::Held { cancel: false } => "held",
            Renewed::Held { cancel: true } => "cancel",
            Renewed::Lost => "lost",
        };
        Ok(ruby.to_symbol(outcome).as_value())
    })
}

/// True if the claim was still the caller's. `state` nil releases it.
fn end_claim(
    spec: String,
    id: Value,
    token: u64,
    state: Option<String>,
    spent: String,
) -> Result<bool, Error> {
    guard(|| {
        let task = task(id, "task_id")?;
        let state = match state.as_deref() {
            None => None,
            Some(text) => Some(
                ClaimState::parse(text)
                    .filter(|s| s.is_final())
                    .ok_or_else(|| {
                        super::errors::arg_error(format!(
                            "state must be completed, failed or cancelled; got {text:?}"
                        ))
                    })?,
            ),
        };
        let store = store(spec)?;
        nogvl(|| store.end(&task, token, state, &spent)).into_ruby()
    })
}

/// The claim after the cancel, or nil when the task is finished already.
fn cancel(ruby: &Ruby, spec: String, id: Value) -> Result<Value, Error> {
    guard(|| {
        let task = task(id, "task_id")?;
        let store = store(spec)?;
        match nogvl(|| store.cancel(&task)).into_ruby()? {
            Some(claim) => Ok(claim_hash(ruby, &claim)?.as_value()),
            None => Ok(ruby.qnil().as_value()),
        }
    })
}

fn claim_of(ruby: &Ruby, spec: String, id: Value) -> Result<Value, Error> {
    guard(|| {
        let task = task(id, "task_id")?;
        let store = store(spec)?;
        match nogvl(|| store.claim_of(&task)).into_ruby()? {
            Some(claim) => Ok(claim_hash(ruby, &claim)?.as_value()),
            None => Ok(ruby.qnil().as_value()),
        }
    })
}

pub(crate) fn init(ruby: &Ruby, master: magnus::RModule) -> Result<(), Error> {
    // The class lib/master/queue.rb reopens: Ruby's thread queue too.
    let thread: magnus::RClass = ruby.class_object().const_get("Thread")?;
    let thread_queue: magnus::RClass = thread.const_get("Queue")?;
    let class = master.define_class("Queue", thread_queue)?;
    class.define_singleton_method("_enter_run", function!(enter_run, 4))?;
    class.define_singleton_method("_touch_run", function!(touch_run, 5))?;
    class.define_singleton_method("_claim", function!(claim, 7))?;
    class.define_singleton_method("_renew", function!(renew, 5))?;
    class.define_singleton_method("_end_claim", function!(end_claim, 5))?;
    class.define_singleton_method("_cancel", function!(cancel, 2))?;
    class.define_singleton_method("_claim_of", function!(claim_of, 2))?;
    Ok(())
}
