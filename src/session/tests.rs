//! Session logic over a file store: checkpoints and what carries over,
//! resume, ticks, retries, rollback, restore past damage, reset, budgets,
//! threads and async writes.
//!
//! (Longer than most files here: these are tests, one per behaviour, each
//! reading on its own.)

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::budget::Money;
use crate::checkpoint::{ErrorInfo, Status};
use crate::error::Error;
use crate::store::file::tests::tempdir::TempDir;
use crate::store::StoreSpec;

pub(super) fn config(dir: &TempDir, task: &str) -> SessionConfig {
    let mut config = SessionConfig::new(
        TaskId::parse(task).unwrap(),
        StoreSpec::File(dir.path().join("store")),
    );
    config.checkpoint_interval = None;
    config.checkpoint_on_items = None;
    config
}

pub(super) fn open(config: SessionConfig) -> Session {
    Session::open(config).unwrap().0
}

fn data(json: &str) -> Option<Data> {
    Some(Data::new(json.as_bytes().to_vec(), None))
}

fn error(message: &str) -> ErrorInfo {
    ErrorInfo {
        class: "RuntimeError".into(),
        message: message.into(),
        backtrace: vec!["job.rb:3:in `run'".into()],
        ..ErrorInfo::default()
    }
}

/// What the binding's `tick` does: count, and write when due (here with the
/// data carried over; the binding passes the current data).
fn tick(session: &Session, items: u64) -> Option<Snapshot> {
    match session.tick_due(items).expect("no overflow") {
        true => Some(session.checkpoint(CheckpointRequest::default()).unwrap()),
        false => None,
    }
}

fn state_of(snapshot: &Snapshot) -> &[u8] {
    snapshot.data.json.as_bytes()
}

#[test]
fn checkpoint_writes_and_carries_values_over() {
    let dir = TempDir::new();
    let session = open(config(&dir, "t"));
    let first = session
        .checkpoint(CheckpointRequest {
            data: data(r#"{"processed":["a"]}"#),
            progress: Some(10),
            items_total: Some(100),
            message: Some("first".into()),
        })
        .unwrap();
    assert_eq!(first.checkpoint, Some(1));
    assert_eq!(first.progress.percentage, Some(10.0));
    let second = session.checkpoint(CheckpointRequest::default()).unwrap();
    assert_eq!(second.checkpoint, Some(2));
    assert_eq!(second.progress.items_processed, 10);
    assert_eq!(second.progress.items_total, Some(100));
    assert_eq!(second.data.json.as_bytes(), br#"{"processed":["a"]}"#);
    assert_eq!(
        second.message, None,
        "a message belongs to its own checkpoint"
    );
}

#[test]
fn a_new_session_resumes_progress_budget_and_counters() {
    let dir = TempDir::new();
    let mut cfg = config(&dir, "t");
    cfg.budget = Some("5".parse().unwrap());
    let session = open(cfg.clone());
    session.track_cost("2.13".parse().unwrap()).unwrap();
    session
        .checkpoint(CheckpointRequest {
            data: data(r#"{"k":1}"#),
            progress: Some(45),
            ..Default::default()
        })
        .unwrap();
    session.checkpoint_error(error("boom"), None).unwrap();
    session.retry_from_checkpoint().unwrap();
    session.checkpoint(CheckpointRequest::default()).unwrap();

    let (again, restored) = Session::open(cfg.clone()).unwrap();
    let restored = restored.unwrap();
    assert!(restored.first_resume);
    assert_eq!(
        restored.snapshot.checkpoint,
        Some(4),
        "the retry is a checkpoint"
    );
    assert_eq!(again.progress(), 45);
    assert_eq!(again.budget().spent(), "2.13".parse().unwrap());
    assert_eq!(again.failures(), 1);
    assert_eq!(again.retries(), 1);
    assert_eq!(
        again
            .checkpoint(CheckpointRequest::default())
            .unwrap()
            .data
            .json
            .as_bytes(),
        br#"{"k":1}"#
    );

    // Regression (issue 8): MASTER_AUTO_RESUME=false started the spending
    // at $0 over a history that said $2.13, as if it had been refunded.
    cfg.auto_resume = false;
    let (fresh, restored) = Session::open(cfg).unwrap();
    assert!(restored.is_none());
    assert_eq!(fresh.progress(), 0);
    assert_eq!(fresh.failures(), 0);
    assert_eq!(
        fresh.budget().spent(),
        "2.13".parse().unwrap(),
        "money spent stays spent"
    );
    let first = fresh.checkpoint(CheckpointRequest::default()).unwrap();
    assert_eq!(first.checkpoint, Some(6));
    assert_eq!(first.budget.spent, "2.13".parse().unwrap());
    assert_eq!(state_of(&first), b"{}", "a fresh start");
}

#[test]
fn tick_writes_every_n_items_with_the_last_data() {
    let dir = TempDir::new();
    let mut cfg = config(&dir, "t");
    cfg.checkpoint_on_items = Some(3);
    let session = open(cfg);
    session
        .checkpoint(CheckpointRequest {
            data: data("[1]"),
            ..Default::default()
        })
        .unwrap();
    let written: Vec<bool> = (0..7).map(|_| tick(&session, 1).is_some()).collect();
    assert_eq!(written, [false, false, true, false, false, true, false]);
    let latest = session.restore(None).unwrap().unwrap().snapshot;
    assert_eq!(latest.checkpoint, Some(3));
    assert_eq!(latest.progress.items_processed, 6);
    assert_eq!(latest.data.json.as_bytes(), b"[1]");
}

#[test]
fn tick_writes_when_the_interval_has_passed() {
    let dir = TempDir::new();
    let mut cfg = config(&dir, "t");
    cfg.checkpoint_interval = Some(Duration::from_millis(50));
    let session = open(cfg);
    assert!(tick(&session, 1).is_none());
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(tick(&session, 1).unwrap().checkpoint, Some(1));
    assert!(tick(&session, 1).is_none());
}

#[test]
fn complete_marks_the_task_completed() {
    let dir = TempDir::new();
    let session = open(config(&dir, "t"));
    tick(&session, 7);
    let done = session.complete(None).unwrap();
    assert_eq!(done.status, Status::Completed);
    assert_eq!(done.progress.items_total, Some(7));
    assert_eq!(done.progress.percentage, Some(100.0));
    let summary = session.store().summary(session.task_id()).unwrap().unwrap();
    assert_eq!(summary.status, Status::Completed);
}

#[test]
fn errors_count_toward_max_retries() {
    let dir = TempDir::new();
    let mut cfg = config(&dir, "t");
    cfg.max_retries = 2;
    let session = open(cfg);
    session
        .checkpoint(CheckpointRequest {
            data: data(r#"{"good":true}"#),
            progress: Some(4),
            ..Default::default()
        })
        .unwrap();
    assert!(session.can_retry());
    let failed = session.checkpoint_error(error("first"), None).unwrap();
    assert_eq!(failed.status, Status::Failed);
    assert_eq!(
        failed.data.json.as_bytes(),
        br#"{"good":true}"#,
        "keeps the last good data"
    );
    let error_json: serde_json::Value =
        serde_json::from_slice(failed.error.unwrap().json.as_bytes()).unwrap();
    assert_eq!(error_json["message"], "first");
    assert!(session.can_retry());
    session.checkpoint_error(error("second"), None).unwrap();
    assert!(!session.can_retry());
}

#[test]
fn retry_goes_back_to_the_latest_good_state() {
    let dir = TempDir::new();
    let session = open(config(&dir, "t"));
    session
        .checkpoint(CheckpointRequest {
            data: data("1"),
            progress: Some(10),
            ..Default::default()
        })
        .unwrap();
    tick(&session, 5);
    session.checkpoint_error(error("boom"), None).unwrap();
    let (good, _) = session.retry_from_checkpoint().unwrap();
    let good = good.unwrap();
    assert_eq!(
        good.checkpoint,
        Some(3),
        "the retry is persisted as a checkpoint"
    );
    assert_eq!(good.copy_of, Some(1));
    assert_eq!(state_of(&good), b"1");
    assert_eq!((good.failures, good.retries), (1, 1));
    assert_eq!(session.progress(), 10);
    assert_eq!(session.retries(), 1);
    assert_eq!(session.status(), Status::Running);
}

// Regression (issue 8): the second retry_from_checkpoint was not
// persisted, and the state it returned said failures: 0, retries: 0.
#[test]
fn every_retry_is_persisted_and_survives_a_restart() {
    let dir = TempDir::new();
    let session = open(config(&dir, "t"));
    session
        .checkpoint(CheckpointRequest {
            progress: Some(10),
            ..Default::default()
        })
        .unwrap();
    for attempt in 1..=2u32 {
        session.checkpoint_error(error("boom"), None).unwrap();
        let (good, _) = session.retry_from_checkpoint().unwrap();
        let good = good.unwrap();
        assert_eq!((good.failures, good.retries), (attempt, attempt));
    }
    let (again, _) = Session::open(config(&dir, "t")).unwrap();
    assert_eq!((again.failures(), again.retries()), (2, 2));
    assert!(again.can_retry(), "2 failures of 3 allowed");
    again.checkpoint_error(error("third"), None).unwrap();
    assert!(!again.can_retry());
}

// Regression (issue 8): max_retries acted as a lifetime limit: failures
// kept counting after complete! and after the task moved on.
#[test]
fn failures_start_over_when_the_task_makes_progress() {
    let dir = TempDir::new();
    let mut cfg = config(&dir, "t");
    cfg.max_retries = 1;
    let session = open(cfg.clone());
    session.checkpoint(CheckpointRequest::default()).unwrap();
    session.checkpoint_error(error("boom"), None).unwrap();
    assert!(!session.can_retry());
    session.retry_from_checkpoint().unwrap();
    assert!(!session.can_retry(), "a retry alone is not progress");
    let moved = session
        .checkpoint(CheckpointRequest {
            progress: Some(5),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(moved.failures, 0);
    assert!(session.can_retry());
    session.checkpoint_error(error("again"), None).unwrap();
    assert!(!session.can_retry());
    let done = session.complete(None).unwrap();
    assert_eq!(done.failures, 0, "completion clears the failures");
    let (later, _) = Session::open(cfg).unwrap();
    assert!(later.can_retry(), "a later run may retry");
}

#[test]
fn retry_without_a_good_checkpoint_starts_over() {
    let dir = TempDir::new();
    let session = open(config(&dir, "t"));
    tick(&session, 5);
    session.checkpoint_error(error("boom"), None).unwrap();
    let (good, _) = session.retry_from_checkpoint().unwrap();
    assert!(good.is_none());
    assert_eq!(session.progress(), 0);
    assert_eq!(session.retries(), 1);
}

#[test]
fn rollback_writes_the_good_state_anew() {
    let dir = TempDir::new();
    let session = open(config(&dir, "t"));
    session
        .checkpoint(CheckpointRequest {
            data: data("\"before\""),
            progress: Some(1),
            ..Default::default()
        })
        .unwrap();
    session
        .checkpoint(CheckpointRequest {
            data: data("\"middle\""),
            progress: Some(2),
            ..Default::default()
        })
        .unwrap();
    session.checkpoint_error(error("boom"), None).unwrap();
    let (rolled, _) = session.rollback(None).unwrap();
    assert_eq!(rolled.checkpoint, Some(4));
    assert_eq!(rolled.copy_of, Some(2));
    assert_eq!(rolled.data.json.as_bytes(), b"\"middle\"");
    assert_eq!(session.progress(), 2);
    let (rolled, _) = session.rollback(Some(1)).unwrap();
    assert_eq!(rolled.checkpoint, Some(5));
    assert_eq!(rolled.data.json.as_bytes(), b"\"before\"");
    assert_eq!(
        session.store().numbers(session.task_id()).unwrap(),
        [1, 2, 3, 4, 5],
        "history kept"
    );
    assert!(matches!(
        session.rollback(Some(99)),
        Err(Error::NotFound(_))
    ));
}

// Regression (issue 8): two rollbacks went 1 -> 2 -> 3, forward again.
#[test]
fn each_rollback_goes_back_one_more_step() {
    let dir = TempDir::new();
    let session = open(config(&dir, "t"));
    for step in 1..=3u64 {
        session
            .checkpoint(CheckpointRequest {
                data: data(&step.to_string()),
                progress: Some(step),
                ..Default::default()
            })
            .unwrap();
    }
    let (first, _) = session.rollback(None).unwrap();
    assert_eq!((first.copy_of, state_of(&first)), (Some(2), &b"2"[..]));
    let (second, _) = session.rollback(None).unwrap();
    assert_eq!((second.copy_of, state_of(&second)), (Some(1), &b"1"[..]));
    assert_eq!(session.progress(), 1);
    // A new session stands where the last rollback left it.
    let (again, _) = Session::open(config(&dir, "t")).unwrap();
    let err = again.rollback(None).unwrap_err().to_string();
    assert!(
        err.contains("no good checkpoint before checkpoint 1"),
        "{err}"
    );
    assert_eq!(
        session.store().numbers(session.task_id()).unwrap(),
        [1, 2, 3, 4, 5],
        "history kept"
    );
}

#[test]
fn rollback_with_nothing_to_go_back_to_is_an_error() {
    let dir = TempDir::new();
    let session = open(config(&dir, "t"));
    assert!(matches!(session.rollback(None), Err(Error::NotFound(_))));
    session.checkpoint(CheckpointRequest::default()).unwrap();
    let err = session.rollback(None).unwrap_err().to_string();
    assert!(
        err.contains("no good checkpoint before checkpoint 1"),
        "{err}"
    );
}

#[test]
fn restore_skips_damage_and_reports_total_loss() {
    let dir = TempDir::new();
    let session = open(config(&dir, "t"));
    assert!(session.restore(None).unwrap().is_none());
    assert!(!session.checkpoint_valid().unwrap());
    session
        .checkpoint(CheckpointRequest {
            progress: Some(1),
            ..Default::default()
        })
        .unwrap();
    session
        .checkpoint(CheckpointRequest {
            progress: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert!(session.checkpoint_valid().unwrap());
    let second = session.store().checkpoint_location(session.task_id(), 2);
    let bytes = std::fs::read(&second).unwrap();
    std::fs::write(&second, &bytes[..bytes.len() - 20]).unwrap();
    // Regression (issue 8): checkpoint_valid? said false with an intact
    // checkpoint to resume from, so the document's snippet reset it away.
    assert!(
        session.checkpoint_valid().unwrap(),
        "checkpoint 1 is intact"
    );
    let restored = session.restore(None).unwrap().unwrap();
    assert_eq!(restored.snapshot.checkpoint, Some(1));
    assert_eq!(restored.warnings.len(), 1);
    assert!(restored.first_resume);
    assert!(!session.restore(None).unwrap().unwrap().first_resume);
    let first = session.store().checkpoint_location(session.task_id(), 1);
    std::fs::write(&first, b"{}").unwrap();
    assert!(!session.checkpoint_valid().unwrap());
    let err = session.restore(None).unwrap_err();
    assert!(matches!(err, Error::NoIntactCheckpoint { .. }));
    // Regression (issue 8): the message nested three times and suggested
    // restoring an older one when there was none.
    let text = err.to_string();
    assert_eq!(text.matches("damaged").count(), 0, "{text}");
    assert!(!text.contains("older one"), "{text}");
    assert!(
        text.contains("2 checkpoint file(s) and none is intact"),
        "{text}"
    );
    // A new session still starts, fresh, with a warning.
    let (_, opened) = Session::open(config(&dir, "t")).unwrap();
    assert!(!opened.unwrap().warnings.is_empty());
}

#[test]
fn reset_forgets_the_task() {
    let dir = TempDir::new();
    let mut cfg = config(&dir, "t");
    cfg.budget = Some("1".parse().unwrap());
    let session = open(cfg);
    session.track_cost("0.5".parse().unwrap()).unwrap();
    session
        .checkpoint(CheckpointRequest {
            progress: Some(3),
            ..Default::default()
        })
        .unwrap();
    session.reset().unwrap();
    assert!(!session.checkpoint_exists().unwrap());
    assert_eq!(session.progress(), 0);
    assert_eq!(session.budget().spent(), Money::ZERO);
    assert_eq!(
        session
            .checkpoint(CheckpointRequest::default())
            .unwrap()
            .checkpoint,
        Some(1)
    );
}

#[test]
fn disabled_sessions_count_but_write_nothing() {
    let dir = TempDir::new();
    let mut cfg = config(&dir, "t");
    cfg.enabled = false;
    let session = open(cfg);
    let snapshot = session
        .checkpoint(CheckpointRequest {
            progress: Some(5),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(snapshot.checkpoint, None);
    assert_eq!(session.progress(), 5);
    assert!(!dir.path().join("store").exists());
}

#[test]
fn spent_money_is_persisted_with_the_next_checkpoint_and_never_restored_down() {
    let dir = TempDir::new();
    let session = open(config(&dir, "t"));
    session.checkpoint(CheckpointRequest::default()).unwrap();
    for _ in 0..1000 {
        session.track_cost("0.001".parse().unwrap()).unwrap();
    }
    let written = session.checkpoint(CheckpointRequest::default()).unwrap();
    assert_eq!(written.budget.spent, Money::from_dollars(1));
    session.restore(Some(1)).unwrap();
    assert_eq!(session.budget().spent(), Money::from_dollars(1));
}

#[test]
fn track_costs_off_records_nothing_but_still_checks() {
    let dir = TempDir::new();
    let mut cfg = config(&dir, "t");
    cfg.track_costs = false;
    let session = open(cfg);
    session.track_cost("3".parse().unwrap()).unwrap();
    assert_eq!(session.budget().spent(), Money::ZERO);
    assert!(session.track_cost("-1".parse().unwrap()).is_err());
}

#[test]
fn eight_threads_lose_no_update() {
    let dir = TempDir::new();
    let mut cfg = config(&dir, "t");
    cfg.checkpoint_on_items = Some(250);
    let session = Arc::new(open(cfg));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let session = Arc::clone(&session);
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    tick(&session, 1);
                    session.track_cost("0.01".parse().unwrap()).unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(session.progress(), 8000);
    assert_eq!(session.budget().spent(), Money::from_dollars(80));
    let last = session.checkpoint(CheckpointRequest::default()).unwrap();
    assert_eq!(last.progress.items_processed, 8000);
    let numbers = session.store().numbers(session.task_id()).unwrap();
    assert!(numbers.len() >= 2, "ticks wrote checkpoints: {numbers:?}");
    // Checkpoints on disk never go back in time.
    let mut previous = 0;
    for n in numbers {
        let found = session.store().read(session.task_id(), n).unwrap();
        let processed = found.view().progress.items_processed;
        assert!(
            processed >= previous,
            "checkpoint {n} went back from {previous} to {processed}"
        );
        previous = processed;
    }
}

#[test]
fn async_checkpoints_are_captured_at_once_and_written_in_order() {
    let dir = TempDir::new();
    let mut cfg = config(&dir, "t");
    cfg.async_writes = true;
    cfg.max_checkpoints = None;
    let session = open(cfg);
    for i in 0..50u64 {
        let captured = session
            .checkpoint(CheckpointRequest {
                progress: Some(i),
                data: data(&format!("{i}")),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(captured.checkpoint, None, "no number until written");
        assert_eq!(captured.progress.items_processed, i);
    }
    assert_eq!(session.flush().unwrap(), Some(50));
    let numbers = session.store().numbers(session.task_id()).unwrap();
    assert_eq!(numbers, (1..=50).collect::<Vec<_>>());
    for n in numbers {
        let found = session.store().read(session.task_id(), n).unwrap();
        assert_eq!(found.view().state_text().unwrap(), (n - 1).to_string());
    }
}

#[test]
fn async_write_errors_surface_and_nothing_captured_is_dropped() {
    let dir = TempDir::new();
    let store = dir.path().join("store");
    let mut cfg = SessionConfig::new(TaskId::parse("t").unwrap(), StoreSpec::File(store.clone()));
    cfg.async_writes = true;
    let session = open(cfg);
    std::fs::write(&store, b"").unwrap(); // the store's place is taken
    session
        .checkpoint(CheckpointRequest {
            progress: Some(1),
            ..Default::default()
        })
        .unwrap();
    let err = session.flush().unwrap_err();
    assert!(err.to_string().contains("store"), "{err}");
    assert!(session.flush().is_err(), "still not written, still said");
    std::fs::remove_file(&store).unwrap();
    let _ = session.checkpoint(CheckpointRequest {
        progress: Some(2),
        ..Default::default()
    });
    assert_eq!(
        session.flush().unwrap(),
        Some(2),
        "both written once the disk is back"
    );
    let numbers = session.store().numbers(session.task_id()).unwrap();
    assert_eq!(numbers, [1, 2]);
}

#[test]
fn an_enforced_budget_reports_the_call_that_passes_it_and_every_later_one() {
    let dir = TempDir::new();
    let mut cfg = config(&dir, "t");
    cfg.budget = Some("1".parse().unwrap());
    cfg.enforce_budget = true;
    let session = open(cfg);
    assert!(
        !session
            .track_cost("0.6".parse().unwrap())
            .unwrap()
            .over_enforced_budget
    );
    assert!(
        session
            .track_cost("0.6".parse().unwrap())
            .unwrap()
            .over_enforced_budget
    );
    assert!(
        session
            .track_cost("0.1".parse().unwrap())
            .unwrap()
            .over_enforced_budget
    );
    assert_eq!(session.budget().spent(), "1.3".parse().unwrap(), "recorded");
    let text = session.budget_exceeded().to_string();
    assert!(text.contains("$1.30 of $1.00"), "{text}");
    session.increase_budget(Money::from_dollars(1)).unwrap();
    assert!(
        !session
            .track_cost("0.1".parse().unwrap())
            .unwrap()
            .over_enforced_budget
    );
}

#[test]
fn sync_operations_wait_for_async_writes() {
    let dir = TempDir::new();
    let mut cfg = config(&dir, "t");
    cfg.async_writes = true;
    let session = open(cfg);
    session
        .checkpoint(CheckpointRequest {
            progress: Some(7),
            ..Default::default()
        })
        .unwrap();
    assert!(session.checkpoint_exists().unwrap());
    let done = session.complete(None).unwrap();
    assert_eq!(done.checkpoint, Some(2));
    assert_eq!(
        session
            .restore(None)
            .unwrap()
            .unwrap()
            .snapshot
            .progress
            .items_processed,
        7
    );
}

#[test]
fn restore_after_resume_reads_again_when_the_file_changed() {
    let dir = TempDir::new();
    let session = open(config(&dir, "t"));
    for step in 1..=2u64 {
        session
            .checkpoint(CheckpointRequest {
                data: data(&step.to_string()),
                progress: Some(step),
                ..Default::default()
            })
            .unwrap();
    }
    let (resumed, _) = Session::open(config(&dir, "t")).unwrap();
    let held = resumed.restore(None).unwrap().unwrap().snapshot;
    assert_eq!(state_of(&held), b"2", "the checkpoint read at open");
    // Damaged since it was read: restore must not hand the old copy out.
    let second = resumed.store().checkpoint_location(resumed.task_id(), 2);
    let bytes = std::fs::read(&second).unwrap();
    std::fs::write(&second, &bytes[..bytes.len() / 2]).unwrap();
    let again = resumed.restore(None).unwrap().unwrap();
    assert_eq!(again.snapshot.checkpoint, Some(1));
    assert_eq!(again.warnings.len(), 1);
    // And a newer one written by someone else is read, not the held one.
    session
        .checkpoint(CheckpointRequest {
            data: data("3"),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        state_of(&resumed.restore(None).unwrap().unwrap().snapshot),
        b"3"
    );
}
