//! `MASTER::SessionPersistence`: the storage layer as class methods. The
//! public methods (with `store:`/`checkpoint_dir:` and the configured
//! default) are in `lib/master/session_persistence.rb`; these are the
//! private halves, each a call of `persistence::Persistence`.

use std::time::Duration;

use magnus::{function, prelude::*, Error, IntoValue, RArray, RHash, Ruby, Value};

use super::args;
use super::encode::to_json;
use super::errors::{guard, IntoRuby};
use super::hashes;
use super::nogvl::nogvl;
use crate::persistence::Persistence;
use crate::store::layout::TaskId;
use crate::store::{CleanupRule, StoreSpec, WriteOptions};

/// The store Ruby's `Config.store` named (already checked there).
fn store(spec: String) -> Result<Persistence, Error> {
    StoreSpec::parse(&spec)
        .and_then(|spec| Persistence::open(&spec))
        .into_ruby()
}

fn task(id: Value, name: &str) -> Result<TaskId, Error> {
    TaskId::parse(&args::text(id, name)?).into_ruby()
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
                args::inspect_value(data)
            )));
        }
        let encoded = to_json(ruby, data, "data")?;
        let options = WriteOptions {
            max_checkpoints: args::optional_count(max_checkpoints, "max_checkpoints")?
                .filter(|&n| n > 0),
            ..WriteOptions::default()
        };
        let store = store(dir)?;
        let kinds = encoded.kinds.as_deref();
        let written = nogvl(|| store.save(&task, &encoded.json, kinds, &options)).into_ruby()?;
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
            Some(found) => hashes::document_hash(&found)?,
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
            rows.push(hashes::summary_hash(ruby, summary)?)?;
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
            Some(s) => hashes::summary_hash(ruby, &s)?.as_value(),
            None => ruby.qnil().as_value(),
        };
        Ok(ruby.ary_new_from_values(&[summary, ruby.ary_from_vec(warnings).as_value()]))
    })
}

/// One Hash per checkpoint, oldest first, from its envelope (the state is
/// never decoded): see `hashes::history_row`.
fn history(ruby: &Ruby, dir: String, id: Value) -> Result<RArray, Error> {
    guard(|| {
        let task = task(id, "task")?;
        let store = store(dir)?;
        let entries = nogvl(|| store.history(&task)).into_ruby()?;
        let rows = ruby.ary_new_capa(entries.len());
        for entry in &entries {
            rows.push(hashes::history_row(ruby, entry)?)?;
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
        let number = args::checkpoint_number(number, "checkpoint")?;
        let store = store(dir)?;
        let found = nogvl(|| store.read(&task, number)).into_ruby()?;
        hashes::document_hash(&found)
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

pub(crate) fn init(ruby: &Ruby, master: magnus::RModule) -> Result<(), Error> {
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
