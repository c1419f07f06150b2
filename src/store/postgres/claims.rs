//! Queue claims on PostgreSQL. Each claim and each queue run is a row
//! holding the record as JSON; every change reads it, applies the rule of
//! `store::claims` — the one all backends share — and writes it back in one
//! transaction. A claim takes the task's advisory lock, the lock every
//! checkpoint write of the task takes, so a takeover and a late write of
//! the old holder are ordered; renewals and ends lock the row. The lease
//! clock is the server's, the same for every machine. Claim transactions
//! commit without waiting for the WAL flush (`synchronous_commit = off`): a
//! server crash that loses the last of them also drops every connection
//! holding one, and a task finished meanwhile has its completed checkpoint,
//! which is flushed.

use postgres::GenericClient;

use super::connection::{Conn, Db};
use super::PostgresStore;
use crate::error::Result;
use crate::store::claims::{self, Ask, Claim, ClaimState, Claimed, QueueRun, Renewed, RunEntry};
use crate::store::layout::TaskId;

type Sql<T> = std::result::Result<T, postgres::Error>;

/// The server's clock, in nanoseconds since the epoch.
const NOW_NS: &str = "(extract(epoch from clock_timestamp()) * 1e9)::bigint";

impl PostgresStore {
    /// The task's claim (row-locked with `lock`), and the server's clock.
    fn claim_row(
        &self,
        db: &mut Db<'_, impl GenericClient>,
        task: &TaskId,
        lock: bool,
    ) -> Sql<(Option<Claim>, i64)> {
        let row = db.query_one(
            &format!(
                "SELECT (SELECT claim FROM {}.claims WHERE task_id = $1{}), {NOW_NS}",
                self.s(),
                if lock { " FOR UPDATE" } else { "" }
            ),
            &[&task.as_str()],
        )?;
        let claim = row
            .get::<_, Option<&str>>(0)
            .and_then(|text| serde_json::from_str(text).ok());
        Ok((claim, row.get(1)))
    }

    fn store_claim(&self, db: &mut Db<'_, impl GenericClient>, claim: &Claim) -> Sql<()> {
        let json = serde_json::to_string(claim).expect("a claim serializes");
        db.execute(
            &format!(
                "INSERT INTO {}.claims (task_id, claim) VALUES ($1, $2)
                 ON CONFLICT (task_id) DO UPDATE SET claim = EXCLUDED.claim",
                self.s()
            ),
            &[&claim.task_id, &json],
        )?;
        Ok(())
    }

    /// Runs `change` on the task's claim in a transaction (under the task's
    /// advisory lock with `task_lock`, else the row's lock), storing what
    /// it returns to store.
    fn with_claim<T>(
        &self,
        action: &str,
        task: &TaskId,
        task_lock: bool,
        mut change: impl FnMut(Option<&Claim>, i64, Option<u64>) -> (Option<Claim>, T),
    ) -> Result<T> {
        self.ready()?;
        let newest_sql = format!(
            "SELECT max(number) FROM {}.checkpoints WHERE task_id = $1",
            self.s()
        );
        self.pool
            .with(&self.target, action, true, |conn: &mut Conn| {
                let mut tx = conn.client.transaction()?;
                let mut db = Db {
                    client: &mut tx,
                    prepared: &mut conn.prepared,
                };
                if task_lock {
                    self.lock_task(&mut db, task)?;
                }
                let (existing, now) = self.claim_row(&mut db, task, !task_lock)?;
                // The task's newest checkpoint, which only a claim needs.
                let newest = if task_lock {
                    db.query_one(&newest_sql, &[&task.as_str()])?
                        .get::<_, Option<i64>>(0)
                        .map(|n| n as u64)
                } else {
                    None
                };
                let (stored, outcome) = change(existing.as_ref(), now, newest);
                if let Some(claim) = stored.filter(|c| Some(c) != existing.as_ref()) {
                    self.store_claim(&mut db, &claim)?;
                }
                tx.commit()?;
                Ok(outcome)
            })
    }

    /// The task's claim, checked against a write's fence, inside the
    /// write's transaction (which holds the task's lock).
    pub(super) fn check_fence(
        &self,
        db: &mut Db<'_, impl GenericClient>,
        task: &TaskId,
        fence: &claims::Fence,
    ) -> Sql<Result<()>> {
        let (claim, now) = self.claim_row(db, task, false)?;
        Ok(claims::check_fence(
            task.as_str(),
            claim.as_ref(),
            Some(fence),
            now,
        ))
    }

    pub(super) fn claim_task(&self, task: &TaskId, ask: &Ask) -> Result<Claimed> {
        self.with_claim("claim a task in", task, true, |existing, now, newest| {
            let claimed = claims::claim(existing, task.as_str(), ask, now, newest);
            let stored = match &claimed {
                Claimed::Taken(c) | Claimed::Finished(c) => Some(c.clone()),
                Claimed::Held(_) => None,
            };
            (stored, claimed)
        })
    }

    pub(super) fn renew_claim(
        &self,
        task: &TaskId,
        token: u64,
        lease_ns: i64,
        spent: &str,
    ) -> Result<Renewed> {
        self.with_claim("renew a claim in", task, false, |existing, now, _| {
            claims::renew(existing, token, now, lease_ns, spent)
        })
    }

    pub(super) fn end_task_claim(
        &self,
        task: &TaskId,
        token: u64,
        state: Option<ClaimState>,
        spent: &str,
    ) -> Result<bool> {
        self.with_claim("end a claim in", task, false, |existing, now, _| {
            let ended = claims::end(existing, token, state, now, spent);
            let done = ended.is_some();
            (ended, done)
        })
    }

    pub(super) fn cancel_task(&self, task: &TaskId) -> Result<Option<Claim>> {
        // The task's lock, not a row lock: a cancel may insert the claim
        // row, racing a first claim that inserts it too.
        self.with_claim("cancel a task in", task, true, |existing, _, _| {
            let cancelled = claims::cancel(existing, task.as_str());
            (cancelled.clone(), cancelled)
        })
    }

    pub(super) fn task_claim(&self, task: &TaskId) -> Result<Option<Claim>> {
        self.with("read a claim from", |conn| {
            Ok(self.claim_row(&mut conn.db(), task, false)?.0)
        })
    }

    /// Runs `change` on the queue's run row in a transaction.
    fn with_run<T>(
        &self,
        action: &str,
        queue: &TaskId,
        mut change: impl FnMut(Option<&QueueRun>, i64) -> (Option<QueueRun>, T),
    ) -> Result<T> {
        self.ready()?;
        let s = self.s();
        self.pool
            .with(&self.target, action, true, |conn: &mut Conn| {
                let mut tx = conn.client.transaction()?;
                let mut db = Db {
                    client: &mut tx,
                    prepared: &mut conn.prepared,
                };
                // Serializes with the first insert of the row, which FOR UPDATE cannot.
                self.lock_task(&mut db, queue)?;
                let row = db.query_one(
                    &format!("SELECT (SELECT run FROM {s}.queue_runs WHERE queue = $1), {NOW_NS}"),
                    &[&queue.as_str()],
                )?;
                let existing: Option<QueueRun> = row
                    .get::<_, Option<&str>>(0)
                    .and_then(|text| serde_json::from_str(text).ok());
                let (stored, outcome) = change(existing.as_ref(), row.get(1));
                if let Some(record) = stored.filter(|r| Some(r) != existing.as_ref()) {
                    let json = serde_json::to_string(&record).expect("a run serializes");
                    db.execute(
                        &format!(
                            "INSERT INTO {s}.queue_runs (queue, run) VALUES ($1, $2)
                         ON CONFLICT (queue) DO UPDATE SET run = EXCLUDED.run"
                        ),
                        &[&queue.as_str(), &json],
                    )?;
                }
                tx.commit()?;
                Ok(outcome)
            })
    }

    pub(super) fn enter_queue_run(
        &self,
        queue: &TaskId,
        entry: RunEntry,
        grace_ns: i64,
    ) -> Result<QueueRun> {
        self.with_run("enter a queue's run in", queue, |existing, now| {
            let run = claims::enter_run(existing, entry, now, grace_ns);
            (Some(run.clone()), run)
        })
    }

    pub(super) fn touch_queue_run(
        &self,
        queue: &TaskId,
        run: u64,
        until_ns: i64,
        close: bool,
    ) -> Result<()> {
        self.with_run("keep a queue's run in", queue, |existing, _| {
            (claims::touch(existing, run, until_ns, close), ())
        })
    }
}
