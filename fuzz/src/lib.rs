//! The fuzz targets' checks live in `checks.rs`, which `tests/fuzz_corpus.rs`
//! of the main crate also includes (`#[path]`), so the corpus is replayed
//! through exactly the same code by a plain `cargo test` on stable.
pub mod checks;
