//! The conformance suite on PostgreSQL, when a server is given
//! (`MASTER_TEST_DATABASE_URL`; `rake cargo_test` starts one), each test in
//! a schema of its own, plus what only this backend does.

use super::super::conformance::{self, Harness};
use super::*;
use crate::store::{Store, StoreSpec};

/// A fresh schema on the test server, or `None` (and the test says it
/// skipped) when no server is given.
pub(crate) struct PostgresHarness {
    url: String,
}

impl PostgresHarness {
    pub(crate) fn new() -> Option<PostgresHarness> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let Ok(server) = std::env::var("MASTER_TEST_DATABASE_URL") else {
            eprintln!("skipped: MASTER_TEST_DATABASE_URL is not set (rake cargo_test sets it)");
            return None;
        };
        let sep = if server.contains('?') { '&' } else { '?' };
        let schema = format!(
            "conformance_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Some(PostgresHarness {
            url: format!("{server}{sep}schema={schema}"),
        })
    }

    fn backend(&self) -> Arc<PostgresStore> {
        PostgresStore::open(&self.url).unwrap()
    }

    fn exec(&self, sql: &str, task: &TaskId, number: u64, document: &str) {
        let store = self.backend();
        let sql = sql.replace("{s}", &store.s());
        store
            .with("test", |client| {
                client.execute(&sql, &[&task.as_str(), &(number as i64), &document])
            })
            .unwrap();
    }
}

impl Drop for PostgresHarness {
    fn drop(&mut self) {
        let store = self.backend();
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", store.s());
        let _ = store.with("drop", |client| client.batch_execute(&sql));
    }
}

impl Harness for PostgresHarness {
    fn store(&self) -> Store {
        Store::open(&StoreSpec::Postgres(self.url.clone())).unwrap()
    }

    fn damage(&self, task: &TaskId, number: u64, bytes: Vec<u8>) {
        let document = String::from_utf8_lossy(&bytes).into_owned();
        self.exec(
            "UPDATE {s}.checkpoints SET document = $3 WHERE task_id = $1 AND number = $2",
            task,
            number,
            &document,
        );
    }

    fn bytes(&self, task: &TaskId, number: u64) -> Vec<u8> {
        let store = self.backend();
        store
            .with("test", |client| store.document_in(client, task, number))
            .unwrap()
            .unwrap()
            .into_bytes()
    }
}

/// Runs a conformance behaviour on a fresh schema, if there is a server.
pub(crate) fn on_postgres(behaviour: fn(&dyn Harness)) {
    if let Some(harness) = PostgresHarness::new() {
        behaviour(&harness);
    }
}

#[test]
fn keeps_the_exact_sealed_document_a_person_can_read() {
    let Some(harness) = PostgresHarness::new() else {
        return;
    };
    let store = harness.store();
    let task = TaskId::parse("alpha").unwrap();
    let written = conformance::running(&store, "alpha", 1);
    let text = String::from_utf8(harness.bytes(&task, written.number)).unwrap();
    assert!(text.ends_with("\"}\n"), "sealed, with its newline: {text}");
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["state"]["n"], 1);
    assert_eq!(value["sequence"], 1);
}

#[test]
fn never_shows_a_password() {
    let store =
        PostgresStore::open("postgresql://ann:s3cret@127.0.0.1:1/none?connect_timeout=1").unwrap();
    assert!(!store.location().contains("s3cret"));
    let err = Backend::numbers(store.as_ref(), &TaskId::parse("t").unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("postgresql://ann@127.0.0.1:1/none"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}
