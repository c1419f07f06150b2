//! MASTER session recovery: a Ruby-free core (store, checkpoint document,
//! session logic, exact budget) and the thin `ruby_api` layer over it.
//!
//! Nothing here is an API: the crate is loaded by Ruby through `init`.
//! Items are `pub(crate)` so the compiler reports what nothing uses.

mod budget;
mod checkpoint;
mod error;
mod failpoint;
mod kinds;
mod persistence;
mod queue;
mod ruby_api;
mod session;
mod store;
mod ticker;
mod writer;

/// What the fuzz targets (`fuzz/src/checks.rs`) and `tests/fuzz_corpus.rs`
/// use, and nothing else: the parsers and checks that read store files.
#[doc(hidden)]
pub mod testing {
    pub use crate::budget::{Budget, Money};
    pub use crate::checkpoint::{
        json_bytes, parse_timestamp, BudgetFigures, CheckpointView, Draft, Host, Progress, Status,
    };
    pub use crate::store::layout::{checkpoint_file_name, parse_checkpoint_file_name, TaskId};
    pub use crate::store::summary::{IndexFile, TaskSummary};
    pub use crate::store::{verify_checkpoint, CleanupRule};

    /// The checkpoint document built from a persistence `data` Hash.
    pub mod persistence {
        pub use crate::persistence::{document, ENVELOPE};
    }

    /// Delta checkpoints: the splice of two states, and a chain resolved.
    pub mod delta {
        pub use crate::checkpoint::delta::{apply, diff, Splice};
        pub use crate::store::resolve_state;
    }

    /// The CRC-32 seal of store files.
    pub mod seal {
        pub use crate::store::seal::{seal, verify, Seal};
    }
}

#[magnus::init(name = "master")]
fn init(ruby: &magnus::Ruby) -> Result<(), magnus::Error> {
    ruby_api::init(ruby)
}
