//! `MASTER::Error` and its subclasses, and the mapping from core errors.

use std::panic::{catch_unwind, AssertUnwindSafe};

use magnus::{prelude::*, value::Lazy, Error, ExceptionClass, RModule, Ruby, Value};

use crate::error::Error as CoreError;

fn master_const(ruby: &Ruby, name: &str) -> ExceptionClass {
    let master: RModule = ruby
        .class_object()
        .const_get("MASTER")
        .expect("MASTER is defined at load");
    master.const_get(name).expect("defined by errors::init")
}

pub(crate) static MASTER_ERROR: Lazy<ExceptionClass> =
    Lazy::new(|ruby| master_const(ruby, "Error"));
pub(crate) static STORE_ERROR: Lazy<ExceptionClass> =
    Lazy::new(|ruby| master_const(ruby, "StoreError"));
pub(crate) static LOCK_TIMEOUT_ERROR: Lazy<ExceptionClass> =
    Lazy::new(|ruby| master_const(ruby, "LockTimeoutError"));
pub(crate) static NOT_FOUND_ERROR: Lazy<ExceptionClass> =
    Lazy::new(|ruby| master_const(ruby, "CheckpointNotFoundError"));
pub(crate) static CORRUPT_ERROR: Lazy<ExceptionClass> =
    Lazy::new(|ruby| master_const(ruby, "CorruptCheckpointError"));
pub(crate) static BUDGET_EXCEEDED_ERROR: Lazy<ExceptionClass> =
    Lazy::new(|ruby| master_const(ruby, "BudgetExceededError"));
pub(crate) static LEASE_LOST_ERROR: Lazy<ExceptionClass> =
    Lazy::new(|ruby| master_const(ruby, "LeaseLostError"));

pub(crate) fn init(ruby: &Ruby, master: RModule) -> Result<(), Error> {
    let error = master.define_error("Error", ruby.exception_standard_error())?;
    let store = master.define_error("StoreError", error)?;
    master.define_error("LockTimeoutError", store)?;
    master.define_error("CheckpointNotFoundError", error)?;
    master.define_error("CorruptCheckpointError", error)?;
    master.define_error("BudgetExceededError", error)?;
    master.define_error("ConfigError", error)?;
    master.define_error("LeaseLostError", error)?;
    master.define_error("CancelledError", error)?;
    Ok(())
}

/// The Ruby exception class for a core error.
fn class_of(ruby: &Ruby, error: &CoreError) -> ExceptionClass {
    match error {
        CoreError::InvalidArgument(_) => ruby.exception_arg_error(),
        CoreError::Io { .. }
        | CoreError::UnsafeStore { .. }
        | CoreError::Database { .. }
        | CoreError::DeltaBaseMoved { .. } => ruby.get_inner(&STORE_ERROR),
        CoreError::LockTimeout { .. } => ruby.get_inner(&LOCK_TIMEOUT_ERROR),
        CoreError::Corrupt { .. } | CoreError::NoIntactCheckpoint { .. } => {
            ruby.get_inner(&CORRUPT_ERROR)
        }
        CoreError::NotFound(_) => ruby.get_inner(&NOT_FOUND_ERROR),
        CoreError::BudgetExceeded { .. } => ruby.get_inner(&BUDGET_EXCEEDED_ERROR),
        CoreError::LeaseLost { .. } => ruby.get_inner(&LEASE_LOST_ERROR),
        CoreError::BackgroundWrite { source, .. } => class_of(ruby, source.root()),
    }
}

/// The Ruby exception for a core error, with its fields as attributes
/// (`lib/master/errors.rb`), so no caller parses a message.
pub(crate) fn to_ruby(error: CoreError) -> Error {
    let ruby = Ruby::get().expect("called on a Ruby thread");
    let message = error.to_string();
    let class = class_of(&ruby, &error);
    let Ok(exception) = class.new_instance((message.as_str(),)) else {
        return Error::new(class, message);
    };
    let set = |name: &str, value: Value| {
        let _: Result<Value, _> = exception.funcall("instance_variable_set", (name, value));
    };
    let path = |p: &std::path::Path| ruby.str_new(&p.display().to_string()).as_value();
    match error.root() {
        CoreError::Corrupt {
            task_id,
            number,
            path: file,
            reason,
            ..
        } => {
            set("@task_id", ruby.str_new(task_id).as_value());
            set("@number", ruby.integer_from_u64(*number).as_value());
            set("@path", path(file));
            set("@reason", ruby.str_new(reason).as_value());
        }
        CoreError::NoIntactCheckpoint {
            task_id,
            path: file,
            skipped,
        } => {
            set("@task_id", ruby.str_new(task_id).as_value());
            if let Some(newest) = skipped.first() {
                set("@number", ruby.integer_from_u64(newest.number).as_value());
            }
            set("@path", path(file));
            set("@reason", ruby.str_new("no intact checkpoint").as_value());
        }
        CoreError::BudgetExceeded {
            task_id,
            spent,
            limit,
        } => {
            set("@task_id", ruby.str_new(task_id).as_value());
            set("@spent", ruby.float_from_f64(spent.to_f64()).as_value());
            set("@limit", ruby.float_from_f64(limit.to_f64()).as_value());
        }
        CoreError::LeaseLost { task_id, .. } => {
            set("@task_id", ruby.str_new(task_id).as_value());
        }
        _ => {}
    }
    Error::from(exception)
}

pub(crate) fn arg_error(message: impl Into<String>) -> Error {
    let ruby = Ruby::get().expect("called on a Ruby thread");
    Error::new(ruby.exception_arg_error(), message.into())
}

pub(crate) fn type_error(message: impl Into<String>) -> Error {
    let ruby = Ruby::get().expect("called on a Ruby thread");
    Error::new(ruby.exception_type_error(), message.into())
}

/// Runs a method body so that a Rust panic (a bug) reaches Ruby as a
/// rescuable `MASTER::Error`, not as `fatal`.
pub(crate) fn guard<T>(body: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            let ruby = Ruby::get().expect("called on a Ruby thread");
            Err(Error::new(
                ruby.get_inner(&MASTER_ERROR),
                format!("internal error in master ({detail}); nothing was written. Please report this bug."),
            ))
        }
    }
}

pub(crate) trait IntoRuby<T> {
    fn into_ruby(self) -> Result<T, Error>;
}

impl<T> IntoRuby<T> for Result<T, CoreError> {
    fn into_ruby(self) -> Result<T, Error> {
        self.map_err(to_ruby)
    }
}
