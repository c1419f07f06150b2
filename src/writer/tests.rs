use super::*;
use std::sync::atomic::{AtomicU64, Ordering};

#[test]
fn writes_in_order_and_flushes() {
    let slot = Slot::default();
    let log = Arc::new(Mutex::new(Vec::new()));
    for n in 1..=100u64 {
        let log = Arc::clone(&log);
        slot.enqueue("t", || {
            Ok((
                (),
                Box::new(move || {
                    log.lock().unwrap().push(n);
                    Ok(n)
                }) as Job,
            ))
        })
        .unwrap();
    }
    assert_eq!(slot.flush().unwrap(), Some(100));
    assert_eq!(*log.lock().unwrap(), (1..=100).collect::<Vec<_>>());
}

/// A job that fails its first `failures` runs, then writes `number`;
/// `runs` counts its runs.
fn flaky(failures: u64, number: u64, log: Arc<Mutex<Vec<u64>>>, runs: Arc<AtomicU64>) -> Job {
    Box::new(move || {
        let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
        if run <= failures {
            return Err(Error::invalid(format!("disk full (run {run})")));
        }
        log.lock().unwrap().push(number);
        Ok(number)
    })
}

fn wait_until(done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

// Regression (issue 8): after a failed background write, the captured
// checkpoints behind it and the one of the reporting call were dropped.
#[test]
fn a_failed_write_is_kept_reported_and_retried_in_order() {
    let slot = Slot::default();
    let log = Arc::new(Mutex::new(Vec::new()));
    let runs = Arc::new(AtomicU64::new(0));
    let job = flaky(1, 1, Arc::clone(&log), Arc::clone(&runs));
    slot.enqueue("t", || Ok(((), job))).unwrap();
    wait_until(|| slot.stalled());
    // The next call's capture is queued behind the failed one, and the
    // failure is told, with how much waits.
    let second = flaky(0, 2, Arc::clone(&log), Arc::new(AtomicU64::new(0)));
    let err = slot.enqueue("t", || Ok(((), second))).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("disk full (run 1)"), "{text}");
    assert!(text.contains("the 2 captured checkpoint(s)"), "{text}");
    // They are tried again, and this time both are written, in order.
    assert_eq!(slot.flush().unwrap(), Some(2));
    assert_eq!(*log.lock().unwrap(), [1, 2], "nothing dropped, in order");
    assert_eq!(slot.flush().unwrap(), Some(2));
}

#[test]
fn flush_reports_a_write_that_keeps_failing_every_time() {
    let slot = Slot::default();
    let log = Arc::new(Mutex::new(Vec::new()));
    let runs = Arc::new(AtomicU64::new(0));
    let job = flaky(u64::MAX, 1, Arc::clone(&log), Arc::clone(&runs));
    slot.enqueue("t", || Ok(((), job))).unwrap();
    for _ in 0..3 {
        let err = slot.flush().unwrap_err();
        assert!(
            err.to_string().contains("the 1 captured checkpoint(s)"),
            "{err}"
        );
    }
    assert!(runs.load(Ordering::SeqCst) >= 3, "each flush tried again");
    assert!(log.lock().unwrap().is_empty());
}

#[test]
fn a_full_queue_makes_the_caller_wait() {
    let slot = Slot::default();
    let done = Arc::new(AtomicU64::new(0));
    for _ in 0..(MAX_QUEUED * 3) {
        let done = Arc::clone(&done);
        slot.enqueue("t", || {
            Ok((
                (),
                Box::new(move || {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                    Ok(done.fetch_add(1, Ordering::SeqCst) + 1)
                }) as Job,
            ))
        })
        .unwrap();
    }
    assert!(done.load(Ordering::SeqCst) >= (MAX_QUEUED * 2) as u64 - 1);
    slot.flush().unwrap();
    assert_eq!(done.load(Ordering::SeqCst), (MAX_QUEUED * 3) as u64);
}

#[test]
fn a_panicking_job_becomes_an_error_and_is_tried_again() {
    let slot = Slot::default();
    let mut panicked = false;
    let job: Job = Box::new(move || {
        if !panicked {
            panicked = true;
            panic!("boom");
        }
        Ok(1)
    });
    slot.enqueue("t", || Ok(((), job))).unwrap();
    wait_until(|| slot.stalled());
    let err = slot
        .enqueue("t", || Ok(((), Box::new(|| Ok(2u64)) as Job)))
        .unwrap_err();
    assert!(err.to_string().contains("internal error"), "{err}");
    assert_eq!(slot.flush().unwrap(), Some(2));
}
