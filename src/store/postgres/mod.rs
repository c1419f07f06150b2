//! The PostgreSQL store (`store: "postgresql://…"`): one store for a fleet
//! of processes on many machines, with the same documents, rules and
//! guarantees as the file store.
//!
//! Each checkpoint is a row holding the exact sealed document the file store
//! writes; a task's summary is a row kept by every write. A write is one
//! transaction under the task's advisory lock (numbering never collides
//! across machines); it is durable once COMMIT returns, with the server's
//! durability settings. A write whose COMMIT outcome was lost with the
//! connection is settled by its `write_id`: found, it was written; not
//! found, it is written again — never twice, and without a gap.

mod claims;
mod connection;
mod schema;
mod write;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use postgres::GenericClient;

use super::claims::{Ask, Claim, ClaimState, Claimed, QueueRun, Renewed, RunEntry};
use super::layout::{checkpoint_file_name, TaskId};
use super::seal::Seal;
use super::summary::{sort_newest_first, TaskSummary};
use super::{
    find_among, summarize, verify, Backend, Found, Listing, Lookup, Pick, WriteOptions, Written,
};
use crate::checkpoint::{Document, Facts};
use crate::error::{Error, Result};
use connection::{Conn, Db, Pool, Target};

#[derive(Debug)]
pub(crate) struct PostgresStore {
    target: Target,
    /// Shared by every store of this process on the same server: a suite
    /// (or an app) with many schemas must not hold connections for each.
    pool: Arc<Pool>,
    /// Set once this process has created or migrated the schema.
    ready: OnceLock<()>,
    /// Each task's last checkpoint this process wrote, so the next write
    /// can follow it in one statement (`write.rs`).
    last_written: Mutex<HashMap<String, write::LastWritten>>,
}

impl PostgresStore {
    /// The store of that URL in this process, made on first use.
    pub(super) fn open(url: &str) -> Result<Arc<PostgresStore>> {
        static STORES: OnceLock<Mutex<HashMap<String, Arc<PostgresStore>>>> = OnceLock::new();
        static POOLS: OnceLock<Mutex<HashMap<String, Arc<Pool>>>> = OnceLock::new();
        let target = Target::parse(url)?;
        let key = format!("{}\u{0}{}", target.server, target.schema);
        let stores = STORES.get_or_init(Default::default);
        let mut stores = stores.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(store) = stores.get(&key) {
            return Ok(Arc::clone(store));
        }
        let pool = {
            let pools = POOLS.get_or_init(Default::default);
            let mut pools = pools.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(pools.entry(target.server.clone()).or_default())
        };
        let store = Arc::new(PostgresStore {
            target,
            pool,
            ready: OnceLock::new(),
            last_written: Mutex::default(),
        });
        stores.insert(key, Arc::clone(&store));
        Ok(store)
    }

    fn s(&self) -> String {
        self.target.schema_sql()
    }

    /// Runs `work` (a read: it may run twice) on a connection, the schema
    /// made ready first.
    fn with<T>(
        &self,
        action: &str,
        work: impl FnMut(&mut Conn) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        self.ready()?;
        self.pool.with(&self.target, action, true, work)
    }

    /// Creates or migrates the schema, once per process.
    fn ready(&self) -> Result<()> {
        if self.ready.get().is_none() {
            let schema = self.target.schema.clone();
            self.pool
                .with(&self.target, "create the store's tables in", true, |conn| {
                    schema::migrate(&mut conn.client, &schema)
                })?;
            let _ = self.ready.set(());
        }
        Ok(())
    }

    /// Locks the task for the rest of the transaction: writers of one task
    /// take turns, on any machine.
    fn lock_task(
        &self,
        db: &mut Db<'_, impl GenericClient>,
        task: &TaskId,
    ) -> std::result::Result<(), postgres::Error> {
        db.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&self.task_lock_key(task)],
        )?;
        Ok(())
    }

    /// What the task's advisory lock is taken on (hashed to the lock's key).
    fn task_lock_key(&self, task: &TaskId) -> String {
        format!("{}/{}", self.target.schema, task.as_str())
    }

    fn numbers_in(
        &self,
        db: &mut Db<'_, impl GenericClient>,
        task: &TaskId,
    ) -> std::result::Result<Vec<u64>, postgres::Error> {
        let sql = format!(
            "SELECT number FROM {}.checkpoints WHERE task_id = $1 ORDER BY number",
            self.s()
        );
        Ok(db
            .query(&sql, &[&task.as_str()])?
            .iter()
            .map(|row| row.get::<_, i64>(0) as u64)
            .collect())
    }

    fn document_in(
        &self,
        db: &mut Db<'_, impl GenericClient>,
        task: &TaskId,
        number: u64,
    ) -> std::result::Result<Option<String>, postgres::Error> {
        let sql = format!(
            "SELECT document FROM {}.checkpoints WHERE task_id = $1 AND number = $2",
            self.s()
        );
        Ok(db
            .query_opt(&sql, &[&task.as_str(), &(number as i64)])?
            .map(|row| row.get(0)))
    }

    fn found(&self, task: &TaskId, number: u64, document: Option<String>) -> Result<Found> {
        let document = document.ok_or_else(|| {
            Error::NotFound(format!(
                "task {task:?} has no checkpoint {number} in {}",
                self.location()
            ))
        })?;
        // A delta's chain, fetched in one query the first time it is needed.
        let mut chain: Option<HashMap<u64, Vec<u8>>> = None;
        let s = self.s();
        verify::open(
            task,
            number,
            document.into_bytes(),
            &|n| self.checkpoint_location(task, n),
            &mut |n, full| {
                if chain.is_none() {
                    let sql = format!(
                        "SELECT number, document FROM {s}.checkpoints
                         WHERE task_id = $1 AND number BETWEEN $2 AND $3"
                    );
                    let rows = self.with("read a checkpoint's chain from", |conn| {
                        conn.db()
                            .query(&sql, &[&task.as_str(), &(full as i64), &(n as i64)])
                    })?;
                    chain = Some(
                        rows.iter()
                            .map(|row| {
                                (
                                    row.get::<_, i64>(0) as u64,
                                    row.get::<_, String>(1).into_bytes(),
                                )
                            })
                            .collect(),
                    );
                }
                Ok(chain.as_mut().and_then(|c| c.remove(&n)))
            },
        )
    }

    /// A task's summary is current when it names the checkpoint `number`
    /// (the newest) and that checkpoint is intact: not damaged or edited
    /// since it was written.
    fn current(summary: &TaskSummary, number: Option<i64>, intact: Option<bool>) -> bool {
        summary.seal.is_some()
            && number == Some(summary.latest_checkpoint as i64)
            && intact == Some(true)
    }

    /// The task's summary: its row, when current; else made again from the
    /// checkpoints, as `restore` would see them.
    fn summary_fresh(
        &self,
        db: &mut Db<'_, impl GenericClient>,
        task: &TaskId,
    ) -> std::result::Result<(Option<TaskSummary>, Vec<String>), postgres::Error> {
        let s = self.s();
        let row = db.query_opt(
            &format!(
                "SELECT t.summary, c.intact,
                        (SELECT max(number) FROM {s}.checkpoints WHERE task_id = t.task_id)
                 FROM {s}.tasks t
                 LEFT JOIN {s}.checkpoints c ON c.task_id = t.task_id AND c.number = t.latest
                 WHERE t.task_id = $1"
            ),
            &[&task.as_str()],
        )?;
        if let Some(row) = &row {
            let summary: Option<TaskSummary> = serde_json::from_str(row.get::<_, &str>(0)).ok();
            if let Some(summary) = summary {
                if Self::current(&summary, row.get(2), row.get(1)) {
                    return Ok((Some(summary), Vec::new()));
                }
            }
        }
        let numbers = self.numbers_in(db, task)?;
        let mut documents = HashMap::new();
        for &n in &numbers {
            documents.insert(n, self.document_in(db, task, n)?);
        }
        Ok(summarize(
            task,
            &numbers,
            |n| self.found(task, n, documents.get(&n).cloned().flatten()),
            |n| self.checkpoint_location(task, n),
        ))
    }
}

impl Backend for PostgresStore {
    fn location(&self) -> String {
        let target = &self.target;
        if target.schema == connection::DEFAULT_SCHEMA {
            target.shown.clone()
        } else {
            format!("{}?schema={}", target.shown, target.schema)
        }
    }

    fn checkpoint_location(&self, task: &TaskId, number: u64) -> PathBuf {
        PathBuf::from(format!(
            "{}#{}/{}",
            self.location(),
            task.as_str(),
            checkpoint_file_name(number)
        ))
    }

    fn task_location(&self, task: &TaskId) -> String {
        format!("{}#{}", self.location(), task.as_str())
    }

    fn write(
        &self,
        task: &TaskId,
        doc: &mut Document,
        facts: &Facts,
        options: &WriteOptions,
    ) -> Result<Written> {
        self.write_checkpoint(task, doc, facts, options)
    }

    fn read(&self, task: &TaskId, number: u64) -> Result<Found> {
        let document = self.with("read a checkpoint from", |conn| {
            self.document_in(&mut conn.db(), task, number)
        })?;
        self.found(task, number, document)
    }

    fn read_raw(&self, task: &TaskId, number: u64) -> Result<Option<Vec<u8>>> {
        let document = self.with("read a checkpoint from", |conn| {
            self.document_in(&mut conn.db(), task, number)
        })?;
        Ok(document.map(String::into_bytes))
    }

    /// The newest checkpoint in one query when it is what `pick` wants (a
    /// resume, a restore); the walk over every number otherwise.
    fn find(&self, task: &TaskId, pick: Pick) -> Result<Lookup> {
        if pick == Pick::Latest {
            let sql = format!(
                "SELECT number, document FROM {}.checkpoints
                 WHERE task_id = $1 ORDER BY number DESC LIMIT 1",
                self.s()
            );
            let newest = self.with("read a checkpoint from", |conn| {
                conn.db().query_opt(&sql, &[&task.as_str()])
            })?;
            let Some(row) = newest else {
                return Ok(Lookup::default());
            };
            let number = row.get::<_, i64>(0) as u64;
            if let Ok(found) = self.found(task, number, Some(row.get(1))) {
                return Ok(Lookup {
                    found: Some(found),
                    skipped: Vec::new(),
                });
            }
        }
        let numbers = self.numbers(task)?;
        Ok(find_among(
            &numbers,
            pick,
            |n| self.read(task, n),
            |n| self.checkpoint_location(task, n),
        ))
    }

    fn numbers(&self, task: &TaskId) -> Result<Vec<u64>> {
        self.with("list checkpoints in", |conn| {
            self.numbers_in(&mut conn.db(), task)
        })
    }

    fn summary(&self, task: &TaskId) -> Result<(Option<TaskSummary>, Vec<String>)> {
        self.with("read a task's summary from", |conn| {
            self.summary_fresh(&mut conn.db(), task)
        })
    }

    fn list(&self) -> Result<Listing> {
        let s = self.s();
        // One row per task and a flag of its newest checkpoint: no document
        // is read or hashed, none crosses the wire.
        let rows = self.with("list the tasks in", |conn| {
            conn.db().query(
                &format!(
                    "SELECT t.task_id, t.latest, t.summary, c.intact
                     FROM {s}.tasks t
                     LEFT JOIN {s}.checkpoints c ON c.task_id = t.task_id AND c.number = t.latest"
                ),
                &[],
            )
        })?;
        let mut listing = Listing::default();
        for row in rows {
            let id: &str = row.get(0);
            let summary: Option<TaskSummary> = serde_json::from_str(row.get::<_, &str>(2)).ok();
            match summary {
                Some(summary) if Self::current(&summary, row.get(1), row.get(3)) => {
                    listing.tasks.push(summary)
                }
                _ => {
                    // Damaged or edited since it was written: made again
                    // from the checkpoints, as `restore` would see them.
                    let task = TaskId::parse(id)?;
                    let (summary, warnings) = self.summary(&task)?;
                    listing.warnings.extend(warnings);
                    match summary {
                        Some(summary) => listing.tasks.push(summary),
                        None => {
                            let stored = self.numbers(&task)?.len();
                            listing
                                .warnings
                                .push(super::unlisted_warning(&task, stored));
                        }
                    }
                }
            }
        }
        sort_newest_first(&mut listing.tasks);
        Ok(listing)
    }

    fn remove_if(
        &self,
        task: &TaskId,
        wanted: &mut dyn FnMut(Option<&TaskSummary>) -> bool,
    ) -> Result<bool> {
        let s = self.s();
        self.with("remove a task from", |conn| {
            let mut tx = conn.client.transaction()?;
            let mut db = Db {
                client: &mut tx,
                prepared: &mut conn.prepared,
            };
            self.lock_task(&mut db, task)?;
            let numbers = self.numbers_in(&mut db, task)?;
            if numbers.is_empty() {
                db.execute(
                    &format!("DELETE FROM {s}.tasks WHERE task_id = $1"),
                    &[&task.as_str()],
                )?;
                tx.commit()?;
                return Ok(false);
            }
            let (summary, _) = self.summary_fresh(&mut db, task)?;
            if !wanted(summary.as_ref()) {
                return Ok(false);
            }
            db.execute(
                &format!("DELETE FROM {s}.checkpoints WHERE task_id = $1"),
                &[&task.as_str()],
            )?;
            db.execute(
                &format!("DELETE FROM {s}.tasks WHERE task_id = $1"),
                &[&task.as_str()],
            )?;
            db.execute(
                &format!("DELETE FROM {s}.claims WHERE task_id = $1"),
                &[&task.as_str()],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn is_newest(&self, task: &TaskId, number: u64, seal: Seal) -> Result<bool> {
        let sql = format!(
            "SELECT number, intact FROM {}.checkpoints WHERE task_id = $1 ORDER BY number DESC LIMIT 1",
            self.s()
        );
        let row = self.with("read a checkpoint from", |conn| {
            conn.db().query_opt(&sql, &[&task.as_str()])
        })?;
        let named = TaskSummary::naming(task.as_str(), number, seal);
        Ok(row.is_some_and(|row| Self::current(&named, row.get(0), row.get(1))))
    }

    fn claim(&self, task: &TaskId, ask: &Ask) -> Result<Claimed> {
        self.claim_task(task, ask)
    }

    fn renew(&self, task: &TaskId, token: u64, lease_ns: i64, spent: &str) -> Result<Renewed> {
        self.renew_claim(task, token, lease_ns, spent)
    }

    fn end_claim(
        &self,
        task: &TaskId,
        token: u64,
        state: Option<ClaimState>,
        spent: &str,
    ) -> Result<bool> {
        self.end_task_claim(task, token, state, spent)
    }

    fn cancel(&self, task: &TaskId) -> Result<Option<Claim>> {
        self.cancel_task(task)
    }

    fn claim_of(&self, task: &TaskId) -> Result<Option<Claim>> {
        self.task_claim(task)
    }

    fn enter_run(&self, queue: &TaskId, entry: RunEntry, grace_ns: i64) -> Result<QueueRun> {
        self.enter_queue_run(queue, entry, grace_ns)
    }

    fn touch_run(&self, queue: &TaskId, run: u64, until_ns: i64, close: bool) -> Result<()> {
        self.touch_queue_run(queue, run, until_ns, close)
    }
}
