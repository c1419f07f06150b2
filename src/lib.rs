//! MASTER session recovery: a Ruby-free core (store, checkpoint document,
//! session logic, exact budget) and the thin `ruby_api` layer over it.

pub mod budget;
pub mod checkpoint;
pub mod error;
pub mod failpoint;
pub mod kinds;
pub mod persistence;
pub mod ruby_api;
pub mod session;
pub mod store;
pub mod ticker;
pub mod writer;

#[magnus::init(name = "master")]
fn init(ruby: &magnus::Ruby) -> Result<(), magnus::Error> {
    ruby_api::init(ruby)
}
