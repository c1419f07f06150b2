use super::*;
use crate::store::tests::tempdir::TempDir;

fn config(dir: &TempDir, task: &str) -> SessionConfig {
    let mut config = SessionConfig::new(TaskId::parse(task).unwrap(), dir.path().join("store"));
    config.checkpoint_interval = None;
    config.checkpoint_on_items = None;
    config
}

fn open(config: SessionConfig) -> Session {
    Session::open(config).unwrap().0
}

fn data(json: &str) -> Option<RawJson> {
    Some(RawJson::new(json.as_bytes().to_vec()))
}

fn error(message: &str) -> ErrorInfo {
    ErrorInfo {
        class: "RuntimeError".into(),
        message: message.into(),
        backtrace: vec!["job.rb:3:in `run'".into()],
        item: None,
        context: None,
    }
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
    assert_eq!(second.data.as_bytes(), br#"{"processed":["a"]}"#);
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
    session.checkpoint_error(error("boom")).unwrap();
    session.retry_from_checkpoint().unwrap();
    session.checkpoint(CheckpointRequest::default()).unwrap();

    let (again, restored) = Session::open(cfg.clone()).unwrap();
    let restored = restored.unwrap();
    assert!(restored.first_resume);
    assert_eq!(restored.snapshot.checkpoint, Some(3));
    assert_eq!(again.progress(), 45);
    assert_eq!(again.budget().spent(), "2.13".parse().unwrap());
    assert_eq!(again.failures(), 1);
    assert_eq!(again.retries(), 1);
    assert_eq!(
        again
            .checkpoint(CheckpointRequest::default())
            .unwrap()
            .data
            .as_bytes(),
        br#"{"k":1}"#
    );

    cfg.auto_resume = false;
    let (fresh, restored) = Session::open(cfg).unwrap();
    assert!(restored.is_none());
    assert_eq!(fresh.progress(), 0);
    assert_eq!(
        fresh
            .checkpoint(CheckpointRequest::default())
            .unwrap()
            .checkpoint,
        Some(5)
    );
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
    let written: Vec<bool> = (0..7).map(|_| session.tick(1).unwrap().is_some()).collect();
    assert_eq!(written, [false, false, true, false, false, true, false]);
    let latest = session.restore(None).unwrap().unwrap().snapshot;
    assert_eq!(latest.checkpoint, Some(3));
    assert_eq!(latest.progress.items_processed, 6);
    assert_eq!(latest.data.as_bytes(), b"[1]");
}

#[test]
fn tick_writes_when_the_interval_has_passed() {
    let dir = TempDir::new();
    let mut cfg = config(&dir, "t");
    cfg.checkpoint_interval = Some(Duration::from_millis(50));
    let session = open(cfg);
    assert!(session.tick(1).unwrap().is_none());
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(session.tick(1).unwrap().unwrap().checkpoint, Some(1));
    assert!(session.tick(1).unwrap().is_none());
}

#[test]
fn complete_marks_the_task_completed() {
    let dir = TempDir::new();
    let session = open(config(&dir, "t"));
    session.tick(7).unwrap();
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
    let failed = session.checkpoint_error(error("first")).unwrap();
    assert_eq!(failed.status, Status::Failed);
    assert_eq!(
        failed.data.as_bytes(),
        br#"{"good":true}"#,
        "keeps the last good data"
    );
    let error_json: serde_json::Value =
        serde_json::from_slice(failed.error.unwrap().as_bytes()).unwrap();
    assert_eq!(error_json["message"], "first");
    assert!(session.can_retry());
    session.checkpoint_error(error("second")).unwrap();
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
    session.tick(5).unwrap();
    session.checkpoint_error(error("boom")).unwrap();
    let (good, _) = session.retry_from_checkpoint().unwrap();
    let good = good.unwrap();
    assert_eq!(good.checkpoint, Some(1));
    assert_eq!(session.progress(), 10);
    assert_eq!(session.retries(), 1);
    assert_eq!(session.status(), Status::Running);
}

#[test]
fn retry_without_a_good_checkpoint_starts_over() {
    let dir = TempDir::new();
    let session = open(config(&dir, "t"));
    session.tick(5).unwrap();
    session.checkpoint_error(error("boom")).unwrap();
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
    session.checkpoint_error(error("boom")).unwrap();
    let (rolled, _) = session.rollback(None).unwrap();
    assert_eq!(rolled.checkpoint, Some(4));
    assert_eq!(rolled.rollback_of, Some(2));
    assert_eq!(rolled.data.as_bytes(), b"\"middle\"");
    assert_eq!(session.progress(), 2);
    let (rolled, _) = session.rollback(Some(1)).unwrap();
    assert_eq!(rolled.checkpoint, Some(5));
    assert_eq!(rolled.data.as_bytes(), b"\"before\"");
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
    let second = session.store().checkpoint_path(session.task_id(), 2);
    let bytes = std::fs::read(&second).unwrap();
    std::fs::write(&second, &bytes[..bytes.len() - 20]).unwrap();
    assert!(!session.checkpoint_valid().unwrap());
    let restored = session.restore(None).unwrap().unwrap();
    assert_eq!(restored.snapshot.checkpoint, Some(1));
    assert_eq!(restored.warnings.len(), 1);
    assert!(restored.first_resume);
    assert!(!session.restore(None).unwrap().unwrap().first_resume);
    let first = session.store().checkpoint_path(session.task_id(), 1);
    std::fs::write(&first, b"{}").unwrap();
    assert!(matches!(session.restore(None), Err(Error::Corrupt { .. })));
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
                    session.tick(1).unwrap();
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
        assert_eq!(found.view().state.get(), (n - 1).to_string());
    }
}

#[test]
fn async_write_errors_surface_on_the_next_call() {
    let dir = TempDir::new();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let mut cfg = SessionConfig::new(TaskId::parse("t").unwrap(), &blocker);
    cfg.async_writes = true;
    cfg.auto_resume = false; // opening reads nothing, so the error comes from the writer
    let session = open(cfg);
    session.checkpoint(CheckpointRequest::default()).unwrap();
    let err = session.flush().unwrap_err();
    assert!(err.to_string().contains("not-a-dir"), "{err}");
    assert!(session.flush().is_ok(), "reported once");
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
