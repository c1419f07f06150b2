//! Claims: which worker runs a queue's task, until when, and with which
//! fencing token — what lets many threads, processes and machines share
//! one queue without running a task twice or forking its history.
//!
//! A task is claimed by one worker under a lease (a time on the store's
//! clock). Each claim takes the next token; every write of the task made
//! for that claim carries the token (`Fence`), and the store refuses it
//! unless the claim is still the task's, still running and not expired —
//! checked under the same lock the write takes, so a takeover and a late
//! write of the old holder are ordered. A task finished in a run (completed,
//! failed, cancelled) is never claimed again in that run.
//!
//! A queue's runs: each claim belongs to a run; a new run makes every task
//! claimable again. `open_run` is the one place a process decides whether
//! it joins the run in progress or starts one.
//!
//! The rules are here, as functions over plain values; the file and memory
//! backends apply them under their locks, PostgreSQL in its statements
//! (`postgres/claims.rs`), and the conformance suite checks all agree.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where a claim stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ClaimState {
    /// Not yet claimed in its run (a cancel asked before any worker took it).
    Pending,
    /// Held by a worker until `expires_at_ns`.
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl ClaimState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ClaimState::Pending => "pending",
            ClaimState::Running => "running",
            ClaimState::Completed => "completed",
            ClaimState::Failed => "failed",
            ClaimState::Cancelled => "cancelled",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<ClaimState> {
        Some(match text {
            "pending" => ClaimState::Pending,
            "running" => ClaimState::Running,
            "completed" => ClaimState::Completed,
            "failed" => ClaimState::Failed,
            "cancelled" => ClaimState::Cancelled,
            _ => return None,
        })
    }

    /// A state no worker leaves again in its run.
    pub(crate) fn is_final(self) -> bool {
        matches!(
            self,
            ClaimState::Completed | ClaimState::Failed | ClaimState::Cancelled
        )
    }
}

/// The worker holding a claim, for people: which machine and process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Holder {
    pub(crate) host: String,
    pub(crate) pid: u32,
    /// The worker within its process (a thread of `workers: N`).
    pub(crate) worker: String,
}

/// One task's claim, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claim {
    pub(crate) task_id: String,
    pub(crate) queue: String,
    pub(crate) run: u64,
    /// Grows with every claim of the task: the fencing token.
    pub(crate) token: u64,
    pub(crate) state: ClaimState,
    pub(crate) holder: Option<Holder>,
    pub(crate) claimed_at_ns: i64,
    pub(crate) expires_at_ns: i64,
    /// Someone asked the task to stop (`cancel`).
    pub(crate) cancel: bool,
    /// Dollars the task has spent, as its holder last said (a decimal).
    pub(crate) spent: String,
    /// Which claim of the task this is in its run: 1 is the first worker
    /// to run it; more is a takeover, which resumes the task's checkpoint.
    #[serde(default)]
    pub(crate) attempt: u32,
    /// The task's newest checkpoint when its run first claimed it: a later
    /// claim resumes only a checkpoint newer than this — one written in
    /// this run — and starts afresh otherwise.
    #[serde(default)]
    pub(crate) base: Option<u64>,
}

/// A worker's request for a task.
#[derive(Debug, Clone)]
pub(crate) struct Ask<'a> {
    pub(crate) queue: &'a str,
    pub(crate) run: u64,
    pub(crate) holder: &'a Holder,
    pub(crate) lease_ns: i64,
    /// Take a task that failed in this run again (`resume` retries failures).
    pub(crate) retry_failed: bool,
}

/// What a claim attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claimed {
    /// The caller holds the task now, with this claim's token.
    Taken(Claim),
    /// Another worker holds it, and its lease has not expired.
    Held(Claim),
    /// It is finished in this run (by someone; cancelled before it ran
    /// included): never run again in the run.
    Finished(Claim),
}

/// What a claim renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Renewed {
    /// Still the caller's, until the new expiry; `cancel` if asked to stop.
    Held { cancel: bool },
    /// Taken over, expired, finished or removed: the caller must stop
    /// writing (the store refuses its writes already).
    Lost,
}

/// A write made for a claim: refused unless the claim is still current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fence {
    pub(crate) token: u64,
}

/// A queue's run, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct QueueRun {
    pub(crate) run: u64,
    pub(crate) opened_at_ns: i64,
    /// The latest lease any worker of the run holds: the run is live
    /// while this is ahead of the clock.
    pub(crate) alive_until_ns: i64,
    pub(crate) closed: bool,
}

/// How a process enters a queue's runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunEntry {
    /// Continue the open run, whatever its state (`resume`, `auto_resume`).
    Continue,
    /// Join the open run while other workers are in it (or it was opened
    /// within `grace`, so workers starting together share one); else start
    /// a new one (`process`).
    JoinLive,
}

/// The claim a worker makes of `existing` at `now`, or why it cannot.
/// `newest` is the task's newest checkpoint now (the store reads it under
/// the same lock).
pub(crate) fn claim(
    existing: Option<&Claim>,
    task_id: &str,
    ask: &Ask,
    now_ns: i64,
    newest: Option<u64>,
) -> Claimed {
    let run = ask.run;
    // Task ids are the store's, not the queue's: a claim another queue made
    // (of its own run 1, say) is not this run's.
    let same_run = |c: &Claim| c.run == run && c.queue == ask.queue;
    if let Some(claim) = existing {
        let same_run = same_run(claim);
        let retried = ask.retry_failed && claim.state == ClaimState::Failed;
        if same_run && claim.state.is_final() && !retried {
            return Claimed::Finished(claim.clone());
        }
        if same_run && claim.state == ClaimState::Running && claim.expires_at_ns > now_ns {
            return Claimed::Held(claim.clone());
        }
        // A cancel asked for this run (or before any run took the task).
        if claim.cancel && (same_run || claim.state == ClaimState::Pending) {
            // Now this queue's run's, so the next worker finds it finished
            // (a cancel made before any run took the task names none).
            return Claimed::Finished(Claim {
                queue: ask.queue.to_owned(),
                run,
                state: ClaimState::Cancelled,
                holder: None,
                ..claim.clone()
            });
        }
    }
    let previous = existing.map_or(0, |c| c.token);
    let (spent, attempt, base) = match existing {
        Some(c) if same_run(c) => (c.spent.clone(), c.attempt.saturating_add(1), c.base),
        _ => ("0".to_owned(), 1, newest),
    };
    Claimed::Taken(Claim {
        task_id: task_id.to_owned(),
        queue: ask.queue.to_owned(),
        run,
        token: previous + 1,
        state: ClaimState::Running,
        holder: Some(ask.holder.clone()),
        claimed_at_ns: now_ns,
        expires_at_ns: now_ns.saturating_add(ask.lease_ns),
        cancel: false,
        spent,
        attempt,
        base,
    })
}

/// True when `claim` is the one `token` names, running, and not expired.
pub(crate) fn current(claim: Option<&Claim>, token: u64, now_ns: i64) -> bool {
    claim.is_some_and(|c| {
        c.token == token && c.state == ClaimState::Running && c.expires_at_ns > now_ns
    })
}

/// The refusal of a write (or renewal) whose claim is no longer current.
pub(crate) fn lease_lost(task_id: &str, claim: Option<&Claim>, token: u64, now_ns: i64) -> Error {
    let why = match claim {
        None => "its claim is gone (the task was removed)".to_owned(),
        Some(c) if c.token != token => match &c.holder {
            Some(h) => format!(
                "another worker took it over (claim {} by {} pid {})",
                c.token, h.host, h.pid
            ),
            None => format!("it was claimed again (claim {})", c.token),
        },
        Some(c) if c.state != ClaimState::Running => {
            format!("it is {} already", c.state.as_str())
        }
        Some(c) => format!(
            "its lease expired {:.1} s ago",
            (now_ns - c.expires_at_ns) as f64 / 1e9
        ),
    };
    Error::LeaseLost {
        task_id: task_id.to_owned(),
        reason: why,
    }
}

/// Checks a write's fence against the task's claim.
pub(crate) fn check_fence(
    task_id: &str,
    claim: Option<&Claim>,
    fence: Option<&Fence>,
    now_ns: i64,
) -> Result<()> {
    match fence {
        Some(fence) if !current(claim, fence.token, now_ns) => {
            Err(lease_lost(task_id, claim, fence.token, now_ns))
        }
        _ => Ok(()),
    }
}

/// The run a process enters: the open one, or a new one.
pub(crate) fn enter_run(
    existing: Option<&QueueRun>,
    entry: RunEntry,
    now_ns: i64,
    grace_ns: i64,
) -> QueueRun {
    if let Some(run) = existing.filter(|r| !r.closed) {
        let live =
            run.alive_until_ns > now_ns || run.opened_at_ns.saturating_add(grace_ns) > now_ns;
        if entry == RunEntry::Continue || live {
            return run.clone();
        }
    }
    QueueRun {
        run: existing.map_or(1, |r| r.run + 1),
        opened_at_ns: now_ns,
        alive_until_ns: now_ns,
        closed: false,
    }
}

/// A renewal of claim `token`: the claim to store, and what the holder learns.
pub(crate) fn renew(
    existing: Option<&Claim>,
    token: u64,
    now_ns: i64,
    lease_ns: i64,
    spent: &str,
) -> (Option<Claim>, Renewed) {
    match existing {
        Some(claim) if current(Some(claim), token, now_ns) => {
            let renewed = Claim {
                expires_at_ns: now_ns.saturating_add(lease_ns),
                spent: spent.to_owned(),
                ..claim.clone()
            };
            let cancel = renewed.cancel;
            (Some(renewed), Renewed::Held { cancel })
        }
        _ => (None, Renewed::Lost),
    }
}

/// The end of claim `token` (finished in `state`, or released): the claim
/// to store, if it was still current.
pub(crate) fn end(
    existing: Option<&Claim>,
    token: u64,
    state: Option<ClaimState>,
    now_ns: i64,
    spent: &str,
) -> Option<Claim> {
    let claim = existing.filter(|c| current(Some(c), token, now_ns))?;
    Some(match state {
        Some(state) => Claim {
            state,
            spent: spent.to_owned(),
            ..claim.clone()
        },
        // Released: expired now, so the next claim takes it at once.
        None => Claim {
            expires_at_ns: now_ns,
            spent: spent.to_owned(),
            ..claim.clone()
        },
    })
}

/// A cancel of `task_id`: the claim to store, or `None` when the task is
/// finished in its run already (nothing to stop).
pub(crate) fn cancel(existing: Option<&Claim>, task_id: &str) -> Option<Claim> {
    match existing {
        Some(claim) if claim.state.is_final() => None,
        Some(claim) => Some(Claim {
            cancel: true,
            ..claim.clone()
        }),
        None => Some(Claim {
            task_id: task_id.to_owned(),
            queue: String::new(),
            run: 0,
            token: 0,
            state: ClaimState::Pending,
            holder: None,
            claimed_at_ns: 0,
            expires_at_ns: 0,
            cancel: true,
            spent: "0".to_owned(),
            attempt: 0,
            base: None,
        }),
    }
}

/// A run kept live until `until_ns`, or closed: the record to store.
pub(crate) fn touch(
    existing: Option<&QueueRun>,
    run: u64,
    until_ns: i64,
    close: bool,
) -> Option<QueueRun> {
    let record = existing.filter(|r| r.run == run)?;
    Some(QueueRun {
        alive_until_ns: record.alive_until_ns.max(until_ns),
        closed: record.closed || close,
        ..record.clone()
    })
}

/// The store's clock for leases where the backend has no clock of its own.
pub(crate) fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(pid: u32) -> Holder {
        Holder {
            host: "h".into(),
            pid,
            worker: "w".into(),
        }
    }

    fn ask(run: u64, holder: &Holder, lease_ns: i64) -> Ask<'_> {
        Ask {
            queue: "q",
            run,
            holder,
            lease_ns,
            retry_failed: false,
        }
    }

    fn taken(claimed: Claimed) -> Claim {
        match claimed {
            Claimed::Taken(c) => c,
            other => panic!("expected Taken, got {other:?}"),
        }
    }

    #[test]
    fn a_claim_excludes_others_until_it_expires_then_hands_over_with_a_new_token() {
        let first = taken(claim(None, "t", &ask(1, &holder(1), 100), 0, None));
        assert_eq!((first.token, first.expires_at_ns), (1, 100));
        assert!(matches!(
            claim(Some(&first), "t", &ask(1, &holder(2), 100), 99, None),
            Claimed::Held(_)
        ));
        let second = taken(claim(
            Some(&first),
            "t",
            &ask(1, &holder(2), 100),
            100,
            None,
        ));
        assert_eq!(second.token, 2);
        assert!(!current(Some(&second), 1, 150), "the old token is fenced");
        assert!(current(Some(&second), 2, 150));
        assert!(!current(Some(&second), 2, 200), "expired by time alone");
    }

    #[test]
    fn a_finished_task_is_not_claimed_again_in_its_run_but_is_in_the_next() {
        let mut done = taken(claim(None, "t", &ask(1, &holder(1), 100), 0, None));
        done.state = ClaimState::Completed;
        assert!(matches!(
            claim(Some(&done), "t", &ask(1, &holder(2), 100), 500, None),
            Claimed::Finished(_)
        ));
        let again = taken(claim(Some(&done), "t", &ask(2, &holder(2), 100), 500, None));
        assert_eq!((again.run, again.token, again.spent.as_str()), (2, 2, "0"));
    }

    #[test]
    fn resume_takes_a_failed_task_again_but_never_a_completed_one() {
        let mut failed = taken(claim(None, "t", &ask(1, &holder(1), 100), 0, None));
        failed.state = ClaimState::Failed;
        let second = holder(2);
        let retry = Ask {
            retry_failed: true,
            ..ask(1, &second, 100)
        };
        let again = taken(claim(Some(&failed), "t", &retry, 10, None));
        assert_eq!((again.token, again.attempt), (2, 2));
        let completed = Claim {
            state: ClaimState::Completed,
            ..again
        };
        assert!(matches!(
            claim(Some(&completed), "t", &retry, 20, None),
            Claimed::Finished(_)
        ));
    }

    #[test]
    fn a_cancel_before_any_worker_finishes_the_task_as_cancelled() {
        let asked = Claim {
            task_id: "t".into(),
            queue: "q".into(),
            run: 0,
            token: 0,
            state: ClaimState::Pending,
            holder: None,
            claimed_at_ns: 0,
            expires_at_ns: 0,
            cancel: true,
            spent: "0".into(),
            attempt: 0,
            base: None,
        };
        match claim(Some(&asked), "t", &ask(3, &holder(1), 100), 10, None) {
            Claimed::Finished(c) => assert_eq!((c.state, c.run), (ClaimState::Cancelled, 3)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_task_cancelled_before_any_run_stays_finished_for_every_worker_of_the_run() {
        // Regression: the first claim kept the cancel's empty queue name, so
        // the next worker did not see it as its run's and ran the task.
        let asked = cancel(None, "t").unwrap();
        let first = match claim(Some(&asked), "t", &ask(3, &holder(1), 100), 10, None) {
            Claimed::Finished(c) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            (first.state, first.run, first.queue.as_str()),
            (ClaimState::Cancelled, 3, "q")
        );
        assert!(matches!(
            claim(Some(&first), "t", &ask(3, &holder(2), 100), 20, None),
            Claimed::Finished(_)
        ));
    }

    #[test]
    fn fences_say_why_a_write_is_refused() {
        let first = taken(claim(None, "t", &ask(1, &holder(1), 100), 0, None));
        let second = taken(claim(
            Some(&first),
            "t",
            &ask(1, &holder(2), 100),
            200,
            None,
        ));
        let err = check_fence("t", Some(&second), Some(&Fence { token: 1 }), 210).unwrap_err();
        assert!(
            err.to_string().contains("another worker took it over"),
            "{err}"
        );
        let err = check_fence("t", Some(&second), Some(&Fence { token: 2 }), 400).unwrap_err();
        assert!(err.to_string().contains("lease expired"), "{err}");
        assert!(
            check_fence("t", None, None, 0).is_ok(),
            "unfenced writes pass"
        );
    }

    #[test]
    fn workers_starting_together_share_a_run_and_later_ones_start_anew() {
        let first = enter_run(None, RunEntry::JoinLive, 1_000, 50);
        assert_eq!(first.run, 1);
        assert_eq!(
            enter_run(Some(&first), RunEntry::JoinLive, 1_040, 50).run,
            1
        );
        assert_eq!(
            enter_run(Some(&first), RunEntry::JoinLive, 2_000, 50).run,
            2
        );
        assert_eq!(
            enter_run(Some(&first), RunEntry::Continue, 2_000, 50).run,
            1
        );
        let live = QueueRun {
            alive_until_ns: 3_000,
            ..first.clone()
        };
        assert_eq!(enter_run(Some(&live), RunEntry::JoinLive, 2_000, 50).run, 1);
        let closed = QueueRun {
            closed: true,
            ..first
        };
        assert_eq!(
            enter_run(Some(&closed), RunEntry::Continue, 2_000, 50).run,
            2
        );
    }
}
