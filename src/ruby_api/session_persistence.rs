//! `MASTER::SessionPersistence`: the storage layer as class methods. The
//! public methods (with `store:`/`checkpoint_dir:` and the configured
//! default) are in `lib/master/session_persistence.rb`; these are the
//! private halves, each a call of `persistence::Persistence`.

use std::time::Duration;

use magnus::rb_sys::{AsRawValue, FromRawValue};
use magnus::{function, prelude::*, Error, IntoValue, RArray, RHash, Ruby, Value};

use super::convert::{self, to_json};
use super::errors::{guard, IntoRuby};
use super::nogvl::nogvl;
use super::session_recovery::data_value;
use crate::persistence::Persistence;
use crate::session::{Data, RawJson};
use crate::store::layout::TaskId;
use crate::store::{CleanupRule, StoreSpec, TaskSummary, WriteOptions};

/// The store Ruby's `Config.store` named (already checked there).
fn store(spec: String) -> Result<Persistence, Error> {
    StoreSpec::parse(&spec)
        .and_then(|spec| Persistence::open(&spec))
        .into_ruby()
}

fn task(id: Value, name: &str) -> Result<TaskId, Error> {
    TaskId::parse(&convert::text(id, name)?).into_ruby()
}

fn time_or_nil(ruby: &Ruby, text: &str) -> Result<Value, Error> {
    match crate::checkpoint::parse_timestamp(text) {
        Ok(t) => convert::time(ruby, t),
        Err(_) => Ok(ruby.qnil().as_value()),
    }
}

/// A task summary as a Hash with Symbol keys; its two times as `Time`.
/// Built by hand with interned keys: `list` makes ten thousand of these.
#[rustfmt::skip]
pub fn summary_hash(ruby: &Ruby, summary: &TaskSummary) -> Result<RHash, Error> {
    use crate::sym;
    use convert::{f64_value, hash_of, opt, str_value, u64_value};
    let p = &summary.progress;
    let b = &summary.budget;
    let money = |m: crate::budget::Money| f64_value(m.to_f64());
    let progress = hash_of(&[
        sym!("items_processed"), u64_value(p.items_processed),
        sym!("items_total"), opt(p.items_total, u64_value),
        sym!("percentage"), opt(p.percentage, f64_value),
    ]);
    let budget = hash_of(&[
        sym!("allocated"), opt(b.allocated, money),
        sym!("spent"), money(b.spent),
        sym!("remaining"), opt(b.remaining, money),
    ]);
    let hash = hash_of(&[
        sym!("task_id"), str_value(&summary.task_id),
        sym!("version"), str_value(&summary.version),
        sym!("status"), str_value(summary.status.as_str()),
        sym!("latest_checkpoint"), u64_value(summary.latest_checkpoint),
        sym!("latest_good_checkpoint"), opt(summary.latest_good_checkpoint, u64_value),
        sym!("checkpoints"), u64_value(summary.checkpoints),
        sym!("created_at"), time_or_nil(ruby, &summary.created_at)?.as_raw(),
        sym!("updated_at"), time_or_nil(ruby, &summary.updated_at)?.as_raw(),
        sym!("progress"), progress,
        sym!("budget"), budget,
        sym!("message"), opt(summary.message.as_deref(), str_value),
        sym!("failures"), u64_value(summary.failures.into()),
        sym!("retries"), u64_value(summary.retries.into()),
    ]);
    Ok(RHash::from_value(unsafe { Value::from_raw(hash) }).expect("a Hash"))
}

/// A whole checkpoint document as a Hash (every key of the kind it was
/// saved as; the store's own members Symbols), seal and kinds removed.
fn document_hash(found: &crate::store::Found) -> Result<Value, Error> {
    let kinds = found
        .envelope
        .kinds
        .clone()
        .map(|range| RawJson::new(found.json[range].to_vec()));
    let data = Data {
        json: RawJson::new(found.json.clone()),
        kinds,
    };
    let doc = data_value(&data, "checkpoint")?;
    if let Some(hash) = RHash::from_value(doc) {
        let ruby = Ruby::get_with(hash);
        for store_member in ["checksum", crate::checkpoint::KINDS_MEMBER] {
            let _: Value = hash.delete(ruby.to_symbol(store_member))?;
        }
    }
    Ok(doc)
}

/// `[number, warnings]`
fn save(
    ruby: &Ruby,
    dir: String,
    id: Value,
    data: Value,
    max_checkpoints: Value,
) -> Result<RArray, Error> {
    guard(|| {
        let task = task(id, "checkpoint_id")?;
        if RHash::from_value(data).is_none() {
            return Err(super::errors::type_error(format!(
                "data must be a Hash (it becomes the checkpoint document); got {}",
                convert::inspect(ruby, data.as_raw())
            )));
        }
        let encoded = to_json(ruby, data, "data")?;
        let options = WriteOptions {
            max_checkpoints: convert::optional_count(max_checkpoints, "max_checkpoints")?
                .filter(|&n| n > 0),
            durable: true,
        };
        let store = store(dir)?;
        let kinds = encoded.kinds.as_deref();
        let written =
            nogvl(|| store.save(&task, &encoded.json, kinds, &options)).into_ruby()?;
        Ok(ruby.ary_new_from_values(&[
            written.number.into_value_with(ruby),
            ruby.ary_from_vec(written.warnings).as_value(),
        ]))
    })
}

/// `[document or nil, warnings]`
fn load(ruby: &Ruby, dir: String, id: Value) -> Result<RArray, Error> {
    guard(|| {
        let task = task(id, "checkpoint_id")?;
        let store = store(dir)?;
        let (found, warnings) = nogvl(|| store.load(&task)).into_ruby()?;
        let warnings = ruby.ary_from_vec(warnings);
        let doc = match found {
            Some(found) => document_hash(&found)?,
            None => ruby.qnil().as_value(),
        };
        Ok(ruby.ary_new_from_values(&[doc, warnings.as_value()]))
    })
}

/// `[summaries, warnings]`
fn list(ruby: &Ruby, dir: String) -> Result<RArray, Error> {
    guard(|| {
        let store = store(dir)?;
        let listing = nogvl(|| store.list()).into_ruby()?;
        let rows = ruby.ary_new_capa(listing.tasks.len());
        for summary in &listing.tasks {
            rows.push(summary_hash(ruby, summary)?)?;
        }
        let warnings = ruby.ary_from_vec(listing.warnings);
        Ok(ruby.ary_new_from_values(&[rows.as_value(), warnings.as_value()]))
    })
}

/// `[summary or nil, warnings]`
fn summary(ruby: &Ruby, dir: String, id: Value) -> Result<RArray, Error> {
    guard(|| {
        let task = task(id, "task")?;
        let store = store(dir)?;
        let (summary, warnings) = nogvl(|| store.summary(&task)).into_ruby()?;
        let summary = match summary {
            Some(s) => summary_hash(ruby, &s)?.as_value(),
            None => ruby.qnil().as_value(),
        };
        Ok(ruby.ary_new_from_values(&[summary, ruby.ary_from_vec(warnings).as_value()]))
    })
}

/// One Hash per checkpoint, oldest first, from its envelope (the state is
/// never decoded): `{number:, damaged: false, timestamp:, status:, progress:,
/// budget:, message:, error:, copy_of:}` or `{number:, damaged: true, problem:}`.
#[rustfmt::skip]
fn history(ruby: &Ruby, dir: String, id: Value) -> Result<RArray, Error> {
    use crate::persistence::HistoryEntry;
    use crate::sym;
    use convert::{f64_value, hash_of, opt, str_value, u64_value};
    guard(|| {
        let task = task(id, "task")?;
        let store = store(dir)?;
        let entries = nogvl(|| store.history(&task)).into_ruby()?;
        let rows = ruby.ary_new_capa(entries.len());
        for entry in entries {
            let row = match entry {
                HistoryEntry::Intact { number, facts, error, copy_of } => {
                    let error = match &error {
                        Some(error) => data_value(error, "error")?,
                        None => ruby.qnil().as_value(),
                    };
                    let p = &facts.progress;
                    let b = &facts.budget;
                    let money = |m: crate::budget::Money| f64_value(m.to_f64());
                    hash_of(&[
                        sym!("number"), u64_value(number),
                        sym!("damaged"), ruby.qfalse().as_raw(),
                        sym!("timestamp"), time_or_nil(ruby, &facts.timestamp)?.as_raw(),
                        sym!("status"), str_value(facts.status.as_str()),
                        sym!("progress"), hash_of(&[
                            sym!("items_processed"), u64_value(p.items_processed),
                            sym!("items_total"), opt(p.items_total, u64_value),
                            sym!("percentage"), opt(p.percentage, f64_value),
                        ]),
                        sym!("budget"), hash_of(&[
                            sym!("allocated"), opt(b.allocated, money),
                            sym!("spent"), money(b.spent),
                            sym!("remaining"), opt(b.remaining, money),
                        ]),
                        sym!("message"), opt(facts.message.as_deref(), str_value),
                        sym!("error"), error.as_raw(),
                        sym!("copy_of"), opt(copy_of, u64_value),
                    ])
                }
                HistoryEntry::Damaged(skipped) => hash_of(&[
                    sym!("number"), u64_value(skipped.number),
                    sym!("damaged"), ruby.qtrue().as_raw(),
                    sym!("problem"), str_value(&skipped.reason),
                ]),
            };
            rows.push(unsafe { Value::from_raw(row) })?;
        }
        Ok(rows)
    })
}

fn numbers(dir: String, id: Value) -> Result<Vec<u64>, Error> {
    guard(|| {
        let task = task(id, "task")?;
        let store = store(dir)?;
        nogvl(|| store.numbers(&task)).into_ruby()
    })
}

fn read(dir: String, id: Value, number: Value) -> Result<Value, Error> {
    guard(|| {
        let task = task(id, "task")?;
        let number = convert::checkpoint_number(number, "checkpoint")?;
        let store = store(dir)?;
        let found = nogvl(|| store.read(&task, number)).into_ruby()?;
        document_hash(&found)
    })
}

fn remove(dir: String, id: Value) -> Result<bool, Error> {
    guard(|| {
        let task = task(id, "task")?;
        let store = store(dir)?;
        nogvl(|| store.remove(&task)).into_ruby()
    })
}

fn cleanup(
    dir: String,
    older_than: f64,
    keep_failed: bool,
    keep_completed: bool,
    keep_running: bool,
    dry_run: bool,
) -> Result<Vec<String>, Error> {
    guard(|| {
        let store = store(dir)?;
        let older_than = Duration::try_from_secs_f64(older_than.max(0.0)).map_err(|_| {
            super::errors::arg_error(format!(
                "older_than is too long a time; got {older_than} seconds"
            ))
        })?;
        let rule = CleanupRule {
            older_than,
            keep_failed,
            keep_completed,
            keep_running,
        };
        nogvl(|| store.cleanup(&rule, chrono::Utc::now(), dry_run)).into_ruby()
    })
}

/// Where the store (or, given a task, that task's checkpoints) is, for people.
fn location(dir: String, id: Value) -> Result<String, Error> {
    guard(|| {
        let store = store(dir)?;
        if id.is_nil() {
            return Ok(store.location());
        }
        Ok(store.task_location(&task(id, "task")?))
    })
}

pub fn init(ruby: &Ruby, master: magnus::RModule) -> Result<(), Error> {
    let module = master.define_module("SessionPersistence")?;
    let _ = ruby;
    module.define_singleton_method("_save", function!(save, 4))?;
    module.define_singleton_method("_load", function!(load, 2))?;
    module.define_singleton_method("_list", function!(list, 1))?;
    module.define_singleton_method("_summary", function!(summary, 2))?;
    module.define_singleton_method("_numbers", function!(numbers, 2))?;
    module.define_singleton_method("_history", function!(history, 2))?;
    module.define_singleton_method("_read", function!(read, 3))?;
    module.define_singleton_method("_remove", function!(remove, 2))?;
    module.define_singleton_method("_cleanup", function!(cleanup, 6))?;
    module.define_singleton_method("_location", function!(location, 2))?;
    Ok(())
}
