//! The conformance suite on PostgreSQL, when a server is given
//! (`MASTER_TEST_DATABASE_URL`; `rake cargo_test` starts one), each test in
//! a schema of its own, plus what only this backend does.

use super::super::conformance::{self, Harness};
use super::*;
use crate::checkpoint::Status;
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
            .with("test", |conn| {
                conn.client
                    .execute(&sql, &[&task.as_str(), &(number as i64), &document])
            })
            .unwrap();
    }
}

impl Drop for PostgresHarness {
    fn drop(&mut self) {
        let store = self.backend();
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", store.s());
        let _ = store.with("drop", |conn| conn.client.batch_execute(&sql));
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
            .with("test", |conn| {
                store.document_in(&mut conn.db(), task, number)
            })
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

/// A write that follows this process's last one takes one statement; one
/// from elsewhere in between (another machine) sends it the locked way,
/// which numbers after that one and counts what is really there.
#[test]
fn follows_its_own_writes_and_notices_another_writer() {
    let Some(harness) = PostgresHarness::new() else {
        return;
    };
    let store = harness.store();
    let task = TaskId::parse("alpha").unwrap();
    for n in 1..=3 {
        assert_eq!(conformance::running(&store, "alpha", n).number, n);
    }
    // Another machine writes checkpoint 4: a copy of 3 under a new number
    // and write_id, as its own write would leave it.
    let copy = String::from_utf8(harness.bytes(&task, 3)).unwrap();
    harness.exec(
        "INSERT INTO {s}.checkpoints (task_id, number, document, doc_md5, write_id)
         VALUES ($1, $2, $3, md5($3), 'elsewhere')",
        &task,
        4,
        &copy,
    );
    let written = conformance::write(&store, "alpha", Status::Running, 5, Some(3));
    assert_eq!(written.number, 5, "after the other machine's 4");
    assert_eq!(written.pruned, vec![1, 2]);
    assert_eq!(written.summary.checkpoints, 3);
    assert_eq!(store.numbers(&task).unwrap(), vec![3, 4, 5]);
    // And the next write follows this one again, pruning as it goes.
    let written = conformance::write(&store, "alpha", Status::Failed, 6, Some(3));
    assert_eq!((written.number, written.pruned.clone()), (6, vec![3]));
    assert_eq!(written.summary.latest_good_checkpoint, Some(5));
    assert_eq!(store.numbers(&task).unwrap(), vec![4, 5, 6]);
    let summary = store.summary(&task).unwrap().unwrap();
    assert_eq!(
        (summary.latest_checkpoint, summary.checkpoints),
        (6, 3),
        "the summary row the one statement wrote"
    );
}

/// A task removed and written again from 1 is not mistaken for the task
/// this process last wrote, even at the same number.
#[test]
fn does_not_follow_a_write_that_was_removed() {
    let Some(harness) = PostgresHarness::new() else {
        return;
    };
    let store = harness.store();
    let task = TaskId::parse("alpha").unwrap();
    conformance::running(&store, "alpha", 1);
    conformance::running(&store, "alpha", 2);
    harness.exec(
        "DELETE FROM {s}.checkpoints WHERE task_id = $1 AND (number <> $2 OR $3 = '')",
        &task,
        2,
        "x",
    );
    // Only 2 is left; the next write is 3, and counts one before it.
    let written = conformance::running(&store, "alpha", 3);
    assert_eq!((written.number, written.summary.checkpoints), (3, 2));
    assert!(store.remove(&task).unwrap());
    assert_eq!(conformance::running(&store, "alpha", 1).number, 1);
    assert_eq!(conformance::running(&store, "alpha", 2).number, 2);
    assert_eq!(store.numbers(&task).unwrap(), vec![1, 2]);
}

/// Leaves three idle connections in the store's pool, then has the server
/// end their backends (as `pg_terminate_backend` or a restart would).
fn terminate_pooled_backends(store: &PostgresStore) {
    let pid = |conn: &mut Conn| {
        conn.client
            .query_one("SELECT pg_backend_pid()", &[])
            .map(|row| row.get::<_, i32>(0))
    };
    // Three connections in use at once, so three idle after.
    let pids = store
        .with("test", |a| {
            let mut pids = store
                .with("test", |b| {
                    let mut pids = store.with("test", |c| Ok(vec![pid(c)?])).unwrap();
                    pids.push(pid(b)?);
                    Ok(pids)
                })
                .unwrap();
            pids.push(pid(a)?);
            Ok(pids)
        })
        .unwrap();
    assert_eq!(pids.len(), 3);
    let server = std::env::var("MASTER_TEST_DATABASE_URL").unwrap();
    let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid",
            &[&pids],
        )
        .unwrap();
    for _ in 0..500 {
        let alive: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)",
                &[&pids],
            )
            .unwrap()
            .get(0);
        if alive == 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the terminated backends did not end");
}

/// Every pooled connection gone at once (a server restart, or
/// `pg_terminate_backend` on each): the next read and the next write each
/// reconnect and succeed, instead of failing on one dead connection after
/// another — and the write is made once.
#[test]
fn reconnects_when_every_pooled_connection_was_ended() {
    let Some(harness) = PostgresHarness::new() else {
        return;
    };
    let store = harness.store();
    let backend = harness.backend();
    let task = TaskId::parse("alpha").unwrap();
    assert_eq!(conformance::running(&store, "alpha", 1).number, 1);

    terminate_pooled_backends(&backend);
    assert_eq!(store.numbers(&task).unwrap(), vec![1], "a read");

    terminate_pooled_backends(&backend);
    assert_eq!(
        conformance::running(&store, "alpha", 2).number,
        2,
        "a write"
    );
    assert_eq!(store.numbers(&task).unwrap(), vec![1, 2]);

    terminate_pooled_backends(&backend);
    let summary = store.summary(&task).unwrap().unwrap();
    assert_eq!(summary.latest_checkpoint, 2, "a summary");
}
