//! The Ruby surface: thin glue, one file per Ruby class.

mod args;
mod decode;
mod encode;
pub(crate) mod errors;
mod failure;
mod hashes;
pub(crate) mod nogvl;
mod queue;
pub(crate) mod session_persistence;
pub(crate) mod session_recovery;
mod settings;
mod values;

use magnus::{Error, Ruby};

pub(crate) fn init(ruby: &Ruby) -> Result<(), Error> {
    let master = ruby.define_module("MASTER")?;
    errors::init(ruby, master)?;
    session_recovery::init(ruby, master)?;
    session_persistence::init(ruby, master)?;
    queue::init(ruby, master)?;
    #[cfg(feature = "failpoints")]
    magnus::Object::define_singleton_method(
        master,
        "failpoints=",
        magnus::function!(configure_failpoints, 1),
    )?;
    Ok(())
}

/// `MASTER.failpoints = "checkpoint.fsync=EIO*1"` (failpoints builds only).
#[cfg(feature = "failpoints")]
fn configure_failpoints(spec: String) -> Result<(), Error> {
    crate::failpoint::configure(&spec).map_err(errors::arg_error)
}
