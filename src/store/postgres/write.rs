//! Writing a checkpoint on PostgreSQL.
//!
//! A process's first write to a task takes the task's advisory lock in a
//! transaction, reads the task's numbers and summary, and writes
//! (`write_locked`). Each later write of that task by the same process
//! follows the checkpoint it wrote last (`write_following`): one statement,
//! one round trip, that takes the same lock, then inserts, prunes and
//! updates the summary only if the task is still as that write left it.
//! Another writer in between makes it insert nothing (or meet the primary
//! key), and the write is done the locked way. Both ways decide the number, what to prune and the summary with the
//! same code (`plan`), so a long job pays one round trip per checkpoint and
//! never a different rule.

use std::path::PathBuf;

use postgres::error::SqlState;

use super::super::layout::TaskId;
use super::super::summary::TaskSummary;
use super::super::{
    check_base, next_number, seal_in_memory, settle, Backend, Found, JustWritten, WriteOptions,
    Written,
};
use super::connection::{Conn, Db};
use super::PostgresStore;
use crate::checkpoint::{Document, Facts};
use crate::error::{Error, Result};

/// Tasks whose last write this process remembers; past this many it
/// forgets them all (a queue of many tasks must not grow the map forever).
const REMEMBERED_TASKS: usize = 1024;

/// The checkpoint this process last wrote to a task, and the task as that
/// write left it.
#[derive(Debug, Clone)]
pub(super) struct LastWritten {
    number: u64,
    write_id: String,
    numbers: Vec<u64>,
    summary: TaskSummary,
}

/// A write decided: its number, the sealed document, and the task after it.
struct Plan {
    number: u64,
    document: String,
    pruned: Vec<u64>,
    numbers: Vec<u64>,
    summary: TaskSummary,
}

type Sql<T> = std::result::Result<T, postgres::Error>;

impl PostgresStore {
    pub(super) fn write_checkpoint(
        &self,
        task: &TaskId,
        doc: &mut Document,
        facts: &Facts,
        options: &WriteOptions,
    ) -> Result<Written> {
        self.ready()?;
        let write_id = new_write_id();
        let last = self.last_written(task);
        let attempt = |doc: &mut Document, last: Option<&LastWritten>| {
            self.pool
                .with(&self.target, "write a checkpoint to", false, |conn| {
                    // A fenced write (a queue task's) checks its claim
                    // under the task's lock: the locked way only.
                    let last = last.filter(|_| options.fence.is_none());
                    if let Some(last) = last {
                        match self.write_following(conn, task, doc, facts, options, &write_id, last)
                        {
                            Ok(Some(written)) => return Ok(Ok(written)),
                            Ok(None) => {}
                            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    // A writer that took a number this one could not see
                    // yet (by hand, say) makes the insert meet the primary
                    // key: the locked write is tried again, seeing it.
                    let mut tries = 0;
                    loop {
                        tries += 1;
                        match self.write_locked(conn, task, doc, facts, options, &write_id) {
                            Err(e)
                                if tries < 3 && e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {}
                            outcome => return outcome,
                        }
                    }
                })
        };
        let (written, remember) = match attempt(doc, last.as_ref()) {
            Ok(written) => (written?, true),
            // The write failed somewhere (the connection went away, say): it
            // was committed or it was not, and the write_id tells which. Not
            // committed, it is tried once more, on a new connection.
            Err(Error::Database { .. }) => match self.written_by(task, &write_id)? {
                None => (attempt(doc, None)??, true),
                Some(number) => (self.settled(task, number, facts)?, false),
            },
            Err(e) => return Err(e),
        };
        let mut map = self.last_written.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= REMEMBERED_TASKS {
            map.clear();
        }
        if remember {
            map.insert(
                task.as_str().to_owned(),
                LastWritten {
                    number: written.number,
                    write_id: write_id.clone(),
                    numbers: written.numbers.clone(),
                    summary: written.summary.clone(),
                },
            );
        } else {
            map.remove(task.as_str());
        }
        Ok(written.into())
    }

    fn last_written(&self, task: &TaskId) -> Option<LastWritten> {
        let map = self.last_written.lock().unwrap_or_else(|p| p.into_inner());
        map.get(task.as_str()).cloned()
    }

    /// The write as one statement, if the task is still as `last` left it
    /// (that checkpoint the newest, no other added or removed); `None`
    /// (nothing written) if not. The numbers are compared from the oldest
    /// kept: below it lie only the pruned, whose index entries stay until
    /// vacuum and would be walked on every write.
    #[allow(clippy::too_many_arguments)]
    fn write_following(
        &self,
        conn: &mut Conn,
        task: &TaskId,
        doc: &mut Document,
        facts: &Facts,
        options: &WriteOptions,
        write_id: &str,
        last: &LastWritten,
    ) -> Sql<Option<Outcome>> {
        // The previous summary says all `settle` needs: nothing is read.
        let mut unread = |n| Err(Error::NotFound(format!("checkpoint {n} is not read here")));
        let plan = match plan(
            task,
            &|n| self.checkpoint_location(task, n),
            doc,
            facts,
            options,
            &last.numbers,
            Some(&last.summary),
            &mut unread,
        ) {
            Ok(plan) => plan,
            Err(_) => return Ok(None),
        };
        let s = self.s();
        let sql = format!(
            "WITH newest AS (
                 SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtextextended($10, 0))) AS locked
                 WHERE EXISTS (SELECT 1 FROM {s}.checkpoints
                               WHERE task_id = $1 AND number = $2 AND write_id = $3)
                   AND ARRAY(SELECT number FROM {s}.checkpoints
                             WHERE task_id = $1 AND number >= ($9::bigint[])[1] ORDER BY number) = $9
             ), inserted AS (
                 INSERT INTO {s}.checkpoints (task_id, number, document, doc_md5, write_id)
                 SELECT $1, $4, $5, md5($5), $6 FROM newest RETURNING number
             ), pruned AS (
                 DELETE FROM {s}.checkpoints
                 WHERE task_id = $1 AND number = ANY($7) AND EXISTS (SELECT 1 FROM inserted)
             ), summary AS (
                 UPDATE {s}.tasks SET latest = $4, summary = $8
                 WHERE task_id = $1 AND EXISTS (SELECT 1 FROM inserted)
             )
             SELECT count(*) FROM inserted"
        );
        let pruned: Vec<i64> = plan.pruned.iter().map(|&n| n as i64).collect();
        let before: Vec<i64> = last.numbers.iter().map(|&n| n as i64).collect();
        let row = conn.db().query_one(
            &sql,
            &[
                &task.as_str(),
                &(last.number as i64),
                &last.write_id,
                &(plan.number as i64),
                &plan.document,
                &write_id,
                &pruned,
                &summary_json(&plan.summary),
                &before,
                &self.task_lock_key(task),
            ],
        )?;
        Ok((row.get::<_, i64>(0) == 1).then(|| plan.into()))
    }

    /// The write in a transaction under the task's advisory lock: writers
    /// of one task take turns, on any machine.
    fn write_locked(
        &self,
        conn: &mut Conn,
        task: &TaskId,
        doc: &mut Document,
        facts: &Facts,
        options: &WriteOptions,
        write_id: &str,
    ) -> Sql<Result<Outcome>> {
        let s = self.s();
        let mut tx = conn.client.transaction()?;
        let mut db = Db {
            client: &mut tx,
            prepared: &mut conn.prepared,
        };
        self.lock_task(&mut db, task)?;
        if let Some(fence) = &options.fence {
            if let Err(refused) = self.check_fence(&mut db, task, fence)? {
                return Ok(Err(refused));
            }
        }
        let row = db.query_one(
            &format!(
                "SELECT coalesce(array_agg(number ORDER BY number), '{{}}'),
                        (SELECT summary FROM {s}.tasks WHERE task_id = $1)
                 FROM {s}.checkpoints WHERE task_id = $1"
            ),
            &[&task.as_str()],
        )?;
        let numbers: Vec<u64> = row
            .get::<_, Vec<i64>>(0)
            .into_iter()
            .map(|n| n as u64)
            .collect();
        let previous: Option<TaskSummary> = row
            .get::<_, Option<&str>>(1)
            .and_then(|text| serde_json::from_str(text).ok());
        let mut read = |n| self.found(task, n, self.document_in(&mut db, task, n).ok().flatten());
        let plan = match plan(
            task,
            &|n| self.checkpoint_location(task, n),
            doc,
            facts,
            options,
            &numbers,
            previous.as_ref(),
            &mut read,
        ) {
            Ok(plan) => plan,
            Err(e) => return Ok(Err(e)),
        };
        db.execute(
            &format!(
                "INSERT INTO {s}.checkpoints (task_id, number, document, doc_md5, write_id)
                 VALUES ($1, $2, $3, md5($3), $4)"
            ),
            &[
                &task.as_str(),
                &(plan.number as i64),
                &plan.document,
                &write_id,
            ],
        )?;
        if !plan.pruned.is_empty() {
            let doomed: Vec<i64> = plan.pruned.iter().map(|&n| n as i64).collect();
            db.execute(
                &format!("DELETE FROM {s}.checkpoints WHERE task_id = $1 AND number = ANY($2)"),
                &[&task.as_str(), &doomed],
            )?;
        }
        db.execute(
            &format!(
                "INSERT INTO {s}.tasks (task_id, latest, summary) VALUES ($1, $2, $3)
                 ON CONFLICT (task_id) DO UPDATE SET latest = EXCLUDED.latest, summary = EXCLUDED.summary"
            ),
            &[
                &task.as_str(),
                &(plan.number as i64),
                &summary_json(&plan.summary),
            ],
        )?;
        tx.commit()?;
        Ok(Ok(plan.into()))
    }

    /// The checkpoint a write with `write_id` made, if it was committed.
    fn written_by(&self, task: &TaskId, write_id: &str) -> Result<Option<u64>> {
        let sql = format!(
            "SELECT number FROM {}.checkpoints WHERE task_id = $1 AND write_id = $2",
            self.s()
        );
        self.pool
            .with(&self.target, "look for a checkpoint in", true, |conn| {
                Ok(conn
                    .db()
                    .query_opt(&sql, &[&task.as_str(), &write_id])?
                    .map(|row| row.get::<_, i64>(0) as u64))
            })
    }

    /// A write found committed after its connection was lost: what it wrote.
    fn settled(&self, task: &TaskId, number: u64, facts: &Facts) -> Result<Outcome> {
        let found = self.read(task, number)?;
        let (summary, _) = self.summary(task)?;
        let summary = summary.unwrap_or_else(|| {
            TaskSummary::from_facts(
                task.as_str(),
                number,
                None,
                1,
                facts.timestamp.clone(),
                facts,
                found.seal,
            )
        });
        Ok(Outcome {
            number,
            numbers: self.numbers(task)?,
            pruned: Vec::new(),
            summary,
        })
    }
}

/// What a write did, and the task's numbers after it.
struct Outcome {
    number: u64,
    numbers: Vec<u64>,
    pruned: Vec<u64>,
    summary: TaskSummary,
}

impl From<Plan> for Outcome {
    fn from(plan: Plan) -> Outcome {
        Outcome {
            number: plan.number,
            numbers: plan.numbers,
            pruned: plan.pruned,
            summary: plan.summary,
        }
    }
}

impl From<Outcome> for Written {
    fn from(outcome: Outcome) -> Written {
        Written {
            number: outcome.number,
            summary: outcome.summary,
            pruned: outcome.pruned,
            warnings: Vec::new(),
        }
    }
}

/// Decides a write from the task as it stands (`numbers`, the `previous`
/// summary): the next number, sealed into the document; then what every
/// backend decides after a write (`store::settle`). `read` reads one of the
/// task's checkpoints when the previous summary cannot say.
#[allow(clippy::too_many_arguments)]
fn plan(
    task: &TaskId,
    location: &dyn Fn(u64) -> PathBuf,
    doc: &mut Document,
    facts: &Facts,
    options: &WriteOptions,
    numbers: &[u64],
    previous: Option<&TaskSummary>,
    read: &mut dyn FnMut(u64) -> Result<Found>,
) -> Result<Plan> {
    check_base(task, options.delta_base.as_ref(), numbers, previous)?;
    let number = next_number(numbers, location)?;
    doc.set("sequence", &number);
    let (bytes, seal) = seal_in_memory(doc);
    let document = String::from_utf8(bytes).expect("documents are UTF-8 JSON");
    let settled = settle(
        JustWritten {
            task,
            number,
            seal,
            facts,
            before: numbers,
            previous,
            max_checkpoints: options.max_checkpoints,
            chain_start: options.delta_base.map(|base| base.full),
        },
        read,
        // Deleted by the write's own statement, which fails as a whole.
        &mut |_| true,
        location,
    );
    Ok(Plan {
        number,
        document,
        pruned: settled.pruned,
        numbers: settled.numbers,
        summary: settled.summary,
    })
}

fn summary_json(summary: &TaskSummary) -> String {
    String::from_utf8(crate::checkpoint::json_bytes(summary)).expect("JSON is UTF-8")
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
