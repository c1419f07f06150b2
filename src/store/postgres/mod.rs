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

mod connection;
mod schema;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use postgres::{Client, Transaction};

use super::layout::{checkpoint_file_name, TaskId};
use super::seal::{Seal, SealedWriter};
use super::summary::{sort_newest_first, TaskSummary};
use super::{
    find_among, next_number, prunable, summarize, verify, Backend, Found, Listing, Pick,
    WriteOptions, Written,
};
use crate::checkpoint::{Document, Facts, Status};
use crate::error::{Error, Result};
use connection::{Pool, Target};

#[derive(Debug)]
pub(crate) struct PostgresStore {
    target: Target,
    /// Shared by every store of this process on the same server: a suite
    /// (or an app) with many schemas must not hold connections for each.
    pool: Arc<Pool>,
    /// Set once this process has created or migrated the schema.
    ready: OnceLock<()>,
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
        work: impl FnMut(&mut Client) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        self.ready()?;
        self.pool.with(&self.target, action, true, work)
    }

    /// Creates or migrates the schema, once per process.
    fn ready(&self) -> Result<()> {
        if self.ready.get().is_none() {
            let schema = self.target.schema.clone();
            self.pool.with(
                &self.target,
                "create the store's tables in",
                true,
                |client| schema::migrate(client, &schema),
            )?;
            let _ = self.ready.set(());
        }
        Ok(())
    }

    /// Locks the task for the rest of the transaction: writers of one task
    /// take turns, on any machine.
    fn lock_task(
        &self,
        tx: &mut Transaction,
        task: &TaskId,
    ) -> std::result::Result<(), postgres::Error> {
        let key = format!("{}/{}", self.target.schema, task.as_str());
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&key],
        )?;
        Ok(())
    }

    fn numbers_in(
        &self,
        client: &mut impl postgres::GenericClient,
        task: &TaskId,
    ) -> std::result::Result<Vec<u64>, postgres::Error> {
        let sql = format!(
            "SELECT number FROM {}.checkpoints WHERE task_id = $1 ORDER BY number",
            self.s()
        );
        Ok(client
            .query(&sql, &[&task.as_str()])?
            .iter()
            .map(|row| row.get::<_, i64>(0) as u64)
            .collect())
    }

    fn document_in(
        &self,
        client: &mut impl postgres::GenericClient,
        task: &TaskId,
        number: u64,
    ) -> std::result::Result<Option<String>, postgres::Error> {
        let sql = format!(
            "SELECT document FROM {}.checkpoints WHERE task_id = $1 AND number = $2",
            self.s()
        );
        Ok(client
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
        verify::open(document.into_bytes(), task.as_str(), number).map_err(|reason| {
            Error::corrupt(task, number, self.checkpoint_location(task, number), reason)
        })
    }

    /// The write itself, in one transaction. `write_id` names it, so a
    /// lost COMMIT can be told from a failed one.
    fn write_once(
        &self,
        client: &mut Client,
        task: &TaskId,
        doc: &mut Document,
        facts: &Facts,
        options: &WriteOptions,
        write_id: &str,
    ) -> std::result::Result<Result<Written>, postgres::Error> {
        let s = self.s();
        let mut tx = client.transaction()?;
        self.lock_task(&mut tx, task)?;
        let mut numbers = self.numbers_in(&mut tx, task)?;
        let number = match next_number(&numbers, |n| self.checkpoint_location(task, n)) {
            Ok(number) => number,
            Err(e) => return Ok(Err(e)),
        };
        doc.set("sequence", &number);
        let mut writer = SealedWriter::new(Vec::new());
        doc.write_open_object(|chunk| writer.write(chunk))
            .expect("writing to memory cannot fail");
        let (bytes, seal) = writer.finish().expect("writing to memory cannot fail");
        let document = String::from_utf8(bytes).expect("documents are UTF-8 JSON");
        tx.execute(
            &format!(
                "INSERT INTO {s}.checkpoints (task_id, number, document, doc_md5, write_id)
                 VALUES ($1, $2, $3, md5($3), $4)"
            ),
            &[&task.as_str(), &(number as i64), &document, &write_id],
        )?;
        numbers.push(number);
        let previous: Option<TaskSummary> = tx
            .query_opt(
                &format!("SELECT summary FROM {s}.tasks WHERE task_id = $1"),
                &[&task.as_str()],
            )?
            .and_then(|row| serde_json::from_str(row.get::<_, &str>(0)).ok());
        let latest_good = if facts.status == Status::Failed {
            match previous
                .as_ref()
                .filter(|p| numbers.contains(&p.latest_checkpoint))
            {
                Some(p) => p.latest_good_checkpoint,
                None => {
                    let mut read =
                        |n| self.found(task, n, self.document_in(&mut tx, task, n).ok().flatten());
                    find_among(&numbers, Pick::GoodBefore(number), &mut read, |n| {
                        self.checkpoint_location(task, n)
                    })
                    .found
                    .map(|f| f.number)
                }
            }
        } else {
            Some(number)
        };
        let pruned = prunable(&numbers, options.max_checkpoints, latest_good);
        if !pruned.is_empty() {
            let doomed: Vec<i64> = pruned.iter().map(|&n| n as i64).collect();
            tx.execute(
                &format!("DELETE FROM {s}.checkpoints WHERE task_id = $1 AND number = ANY($2)"),
                &[&task.as_str(), &doomed],
            )?;
            numbers.retain(|n| !pruned.contains(n));
        }
        let created_at = match &previous {
            Some(p) => p.created_at.clone(),
            None => facts.timestamp.clone(),
        };
        let summary = TaskSummary::from_facts(
            task.as_str(),
            number,
            latest_good,
            numbers.len() as u64,
            created_at,
            facts,
            seal,
        );
        let row = crate::checkpoint::json_bytes(&summary);
        let row = String::from_utf8(row).expect("JSON is UTF-8");
        tx.execute(
            &format!(
                "INSERT INTO {s}.tasks (task_id, latest, summary, written_at_ns) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (task_id) DO UPDATE
                 SET latest = EXCLUDED.latest, summary = EXCLUDED.summary, written_at_ns = EXCLUDED.written_at_ns"
            ),
            &[&task.as_str(), &(number as i64), &row, &recency_ns(&summary)],
        )?;
        tx.commit()?;
        Ok(Ok(Written {
            number,
            summary,
            pruned,
            warnings: Vec::new(),
        }))
    }

    /// The checkpoint a write with `write_id` made, if it was committed.
    fn written_by(&self, task: &TaskId, write_id: &str) -> Result<Option<u64>> {
        let sql = format!(
            "SELECT number FROM {}.checkpoints WHERE task_id = $1 AND write_id = $2",
            self.s()
        );
        self.pool
            .with(&self.target, "look for a checkpoint in", true, |client| {
                Ok(client
                    .query_opt(&sql, &[&task.as_str(), &write_id])?
                    .map(|row| row.get::<_, i64>(0) as u64))
            })
    }

    /// A summary row is current when the checkpoint it names is the newest,
    /// is still the size its seal says, and still the document written
    /// (its md5, computed by the server, matches the one stored with it).
    fn current(
        summary: &TaskSummary,
        newest: Option<i64>,
        bytes: Option<i64>,
        intact: Option<bool>,
    ) -> bool {
        let Some(seal) = summary.seal else {
            return false;
        };
        newest == Some(summary.latest_checkpoint as i64)
            && bytes == Some(seal.len as i64)
            && intact == Some(true)
    }

    fn summary_fresh(
        &self,
        client: &mut impl postgres::GenericClient,
        task: &TaskId,
    ) -> std::result::Result<(Option<TaskSummary>, Vec<String>), postgres::Error> {
        let s = self.s();
        let row = client.query_opt(
            &format!(
                "SELECT t.summary,
                        (SELECT max(number) FROM {s}.checkpoints WHERE task_id = t.task_id),
                        octet_length(c.document)::bigint, md5(c.document) = c.doc_md5
                 FROM {s}.tasks t
                 LEFT JOIN {s}.checkpoints c ON c.task_id = t.task_id AND c.number = t.latest
                 WHERE t.task_id = $1"
            ),
            &[&task.as_str()],
        )?;
        if let Some(row) = &row {
            let summary: Option<TaskSummary> = serde_json::from_str(row.get::<_, &str>(0)).ok();
            if let Some(summary) = summary {
                if Self::current(&summary, row.get(1), row.get(2), row.get(3)) {
                    return Ok((Some(summary), Vec::new()));
                }
            }
        }
        let numbers = self.numbers_in(client, task)?;
        let mut documents = HashMap::new();
        for &n in &numbers {
            documents.insert(n, self.document_in(client, task, n)?);
        }
        Ok(summarize(
            task,
            &numbers,
            |n| self.found(task, n, documents.get(&n).cloned().flatten()),
            |n| self.checkpoint_location(task, n),
        ))
    }
}

/// When the summary's checkpoint was written, in nanoseconds: the order
/// of `list`.
fn recency_ns(summary: &TaskSummary) -> i64 {
    summary.recency().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// A write's own name: unique across processes and machines.
fn new_write_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!(
        "{}-{}-{now:x}-{}",
        crate::checkpoint::Host::current().hostname,
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
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
        self.ready()?;
        let write_id = new_write_id();
        let attempt = |doc: &mut Document| {
            self.pool
                .with(&self.target, "write a checkpoint to", false, |client| {
                    self.write_once(client, task, doc, facts, options, &write_id)
                })
        };
        match attempt(doc) {
            Ok(written) => written,
            // The write failed somewhere (the connection went away, say): it
            // was committed or it was not, and the write_id tells which. Not
            // committed, it is tried once more, on a new connection.
            Err(Error::Database { .. }) => match self.written_by(task, &write_id)? {
                None => attempt(doc)?,
                Some(number) => {
                    let found = self.read(task, number)?;
                    let (summary, _) = self.summary(task)?;
                    Ok(Written {
                        number,
                        summary: summary.unwrap_or_else(|| {
                            TaskSummary::from_facts(
                                task.as_str(),
                                number,
                                None,
                                1,
                                facts.timestamp.clone(),
                                facts,
                                found.seal,
                            )
                        }),
                        pruned: Vec::new(),
                        warnings: Vec::new(),
                    })
                }
            },
            Err(e) => Err(e),
        }
    }

    fn read(&self, task: &TaskId, number: u64) -> Result<Found> {
        let document = self.with("read a checkpoint from", |client| {
            self.document_in(client, task, number)
        })?;
        self.found(task, number, document)
    }

    fn numbers(&self, task: &TaskId) -> Result<Vec<u64>> {
        self.with("list checkpoints in", |client| {
            self.numbers_in(client, task)
        })
    }

    fn summary(&self, task: &TaskId) -> Result<(Option<TaskSummary>, Vec<String>)> {
        self.with("read a task's summary from", |client| {
            self.summary_fresh(client, task)
        })
    }

    fn list(&self) -> Result<Listing> {
        let s = self.s();
        let rows = self.with("list the tasks in", |client| {
            client.query(
                &format!(
                    "SELECT t.task_id, t.summary,
                            (SELECT max(number) FROM {s}.checkpoints WHERE task_id = t.task_id),
                            octet_length(c.document)::bigint, md5(c.document) = c.doc_md5
                     FROM {s}.tasks t
                     LEFT JOIN {s}.checkpoints c ON c.task_id = t.task_id AND c.number = t.latest
                     ORDER BY t.written_at_ns DESC"
                ),
                &[],
            )
        })?;
        let mut listing = Listing::default();
        for row in rows {
            let id: &str = row.get(0);
            let summary: Option<TaskSummary> = serde_json::from_str(row.get::<_, &str>(1)).ok();
            match summary {
                Some(summary) if Self::current(&summary, row.get(2), row.get(3), row.get(4)) => {
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
                        None => listing.warnings.push(format!(
                            "task {task:?} has checkpoints and none is intact; it is not listed until it has one, or is removed"
                        )),
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
        self.with("remove a task from", |client| {
            let mut tx = client.transaction()?;
            self.lock_task(&mut tx, task)?;
            let numbers = self.numbers_in(&mut tx, task)?;
            if numbers.is_empty() {
                tx.execute(
                    &format!("DELETE FROM {s}.tasks WHERE task_id = $1"),
                    &[&task.as_str()],
                )?;
                tx.commit()?;
                return Ok(false);
            }
            let (summary, _) = self.summary_fresh(&mut tx, task)?;
            if !wanted(summary.as_ref()) {
                return Ok(false);
            }
            tx.execute(
                &format!("DELETE FROM {s}.checkpoints WHERE task_id = $1"),
                &[&task.as_str()],
            )?;
            tx.execute(
                &format!("DELETE FROM {s}.tasks WHERE task_id = $1"),
                &[&task.as_str()],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn is_newest(&self, task: &TaskId, number: u64, seal: Seal) -> Result<bool> {
        let s = self.s();
        let row = self.with("read a checkpoint from", |client| {
            client.query_one(
                &format!(
                    "SELECT (SELECT max(number) FROM {s}.checkpoints WHERE task_id = $1),
                            (SELECT octet_length(document)::bigint FROM {s}.checkpoints WHERE task_id = $1 AND number = $2),
                            (SELECT md5(document) = doc_md5 FROM {s}.checkpoints WHERE task_id = $1 AND number = $2)"
                ),
                &[&task.as_str(), &(number as i64)],
            )
        })?;
        let named = TaskSummary::naming(task.as_str(), number, seal);
        Ok(Self::current(&named, row.get(0), row.get(1), row.get(2)))
    }
}
