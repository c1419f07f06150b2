use super::*;

#[test]
fn due_every_n_items() {
    let ticker = Ticker::new(Some(3), None);
    assert!(!ticker.tick(1).unwrap());
    assert!(!ticker.tick(1).unwrap());
    assert!(ticker.tick(1).unwrap());
    // Claimed until rearmed: nobody else writes the same checkpoint.
    assert!(!ticker.tick(1).unwrap());
    ticker.rearm(3);
    assert!(!ticker.tick(1).unwrap());
    assert!(ticker.tick(1).unwrap());
    assert_eq!(ticker.progress(), 6);
}

#[test]
fn due_after_the_interval() {
    let ticker = Ticker::new(None, Some(Duration::from_millis(30)));
    assert!(!ticker.tick(1).unwrap());
    std::thread::sleep(Duration::from_millis(60));
    assert!(ticker.tick(1).unwrap());
    ticker.rearm(ticker.since_checkpoint());
    assert!(!ticker.tick(1).unwrap());
}

#[test]
fn items_ticked_during_a_write_count_toward_the_next() {
    let ticker = Ticker::new(Some(10), None);
    assert!(!ticker.tick(9).unwrap());
    let covered = ticker.since_checkpoint();
    ticker.tick(4).unwrap(); // arrives while the checkpoint is being written
    ticker.rearm(covered);
    assert_eq!(ticker.since_checkpoint(), 4);
}

// Regression (issue 8): tick(2**62) five times wrapped the count.
#[test]
fn a_count_past_the_largest_is_refused_not_wrapped() {
    let ticker = Ticker::new(None, None);
    for _ in 0..3 {
        assert_eq!(ticker.tick(1 << 62), Some(false));
    }
    assert_eq!(ticker.tick(1 << 62), None);
    assert_eq!(ticker.progress(), 3 << 62, "nothing counted");
    assert_eq!(ticker.tick(u64::MAX - (3 << 62)), Some(false));
    assert_eq!(ticker.tick(1), None);
}

#[test]
fn no_triggers_never_due() {
    let ticker = Ticker::new(None, None);
    assert!(!ticker.tick(1_000_000).unwrap());
}

#[test]
fn eight_threads_lose_no_count_and_one_claims() {
    let ticker = std::sync::Arc::new(Ticker::new(Some(1_000_000), None));
    let claims: u32 = (0..8)
        .map(|_| {
            let ticker = ticker.clone();
            std::thread::spawn(move || {
                (0..100_000).filter(|_| ticker.tick(1).unwrap()).count() as u32
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(ticker.progress(), 800_000);
    assert_eq!(claims, 0);
    assert!(ticker.tick(200_000).unwrap());
}
