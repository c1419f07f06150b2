//! Delta checkpoints through a session: when they are written, that every
//! reader sees the whole state, and what happens when a chain is damaged,
//! pruned or overtaken by another writer.

use crate::error::Error;
use crate::session::tests::open;
use crate::session::{CheckpointRequest, Data, Session, SessionConfig};
use crate::store::file::tests::tempdir::TempDir;

/// A session's settings with deltas from `threshold` bytes, keeping all.
fn config(dir: &TempDir, threshold: u64) -> SessionConfig {
    let mut config = crate::session::tests::config(dir, "t");
    config.max_checkpoints = None;
    config.delta_threshold = Some(threshold);
    config
}

fn write(session: &Session, json: &str) -> u64 {
    session
        .checkpoint(CheckpointRequest {
            data: Some(Data::new(json.as_bytes().to_vec(), None)),
            ..Default::default()
        })
        .unwrap()
        .checkpoint
        .unwrap()
}

/// The document as stored.
fn stored(session: &Session, number: u64) -> String {
    let path = session
        .store()
        .checkpoint_location(session.task_id(), number);
    String::from_utf8(std::fs::read(path).unwrap()).unwrap()
}

fn is_delta(session: &Session, number: u64) -> bool {
    stored(session, number).contains("\"delta\":{\"base\":")
}

fn state_read(session: &Session, number: u64) -> String {
    let found = session.store().read(session.task_id(), number).unwrap();
    String::from_utf8(found.json[found.envelope.state.clone()].to_vec()).unwrap()
}

/// `{"processed":["item-0",…]}` with `n` items.
fn list(n: usize) -> String {
    let items: Vec<String> = (0..n).map(|i| format!("\"item-{i:05}\"")).collect();
    format!("{{\"processed\":[{}]}}", items.join(","))
}

#[test]
fn a_growing_list_is_written_as_its_appends() {
    let dir = TempDir::new();
    let session = open(config(&dir, 1024));
    for n in (100..400).step_by(10) {
        write(&session, &list(n));
    }
    assert!(!is_delta(&session, 1), "the first checkpoint is whole");
    assert!(is_delta(&session, 2));
    let second = stored(&session, 2);
    assert!(
        second.len() < 800,
        "a delta holds the change only: {second}"
    );
    assert!(!second.contains("item-00000"), "{second}");
    for (number, n) in (1..).zip((100..400).step_by(10)) {
        assert_eq!(state_read(&session, number), list(n), "checkpoint {number}");
    }
    // A new session resumes the whole state and goes on with deltas.
    let again = open(config(&dir, 1024));
    let restored = again.restore(None).unwrap().unwrap();
    assert_eq!(restored.snapshot.data.json.as_bytes(), list(390).as_bytes());
    let next = write(&again, &list(400));
    assert!(is_delta(&again, next));
    assert_eq!(state_read(&again, next), list(400));
}

#[test]
fn small_states_and_copies_are_always_whole() {
    let dir = TempDir::new();
    let session = open(config(&dir, 64 * 1024));
    for n in 10..20 {
        write(&session, &list(n));
    }
    assert!((1..=10).all(|n| !is_delta(&session, n)));

    let dir = TempDir::new();
    let session = open(config(&dir, 256));
    for n in 500..505 {
        write(&session, &list(n));
    }
    assert!(is_delta(&session, 5));
    let (copy, _) = session.rollback(None).unwrap();
    let copy = copy.checkpoint.unwrap();
    assert!(!is_delta(&session, copy), "a rollback's copy is whole");
    assert_eq!(state_read(&session, copy), list(503));
}

#[test]
fn a_message_only_checkpoint_of_a_large_state_is_small() {
    let dir = TempDir::new();
    let session = open(config(&dir, 1024));
    write(&session, &list(20_000));
    let next = session
        .checkpoint(CheckpointRequest {
            message: Some("still going".into()),
            ..Default::default()
        })
        .unwrap()
        .checkpoint
        .unwrap();
    assert!(stored(&session, next).len() < 1024);
    assert_eq!(state_read(&session, next), list(20_000));
}

#[test]
fn the_chain_starts_again_when_its_bytes_pass_the_state() {
    let dir = TempDir::new();
    let session = open(config(&dir, 256));
    // Each delta (ten items and the envelope) is about 600 bytes; the state
    // about 7 KB: a chain holds a dozen or so before a whole one again.
    let numbers: Vec<u64> = (0..40)
        .map(|i| write(&session, &list(500 + 10 * i)))
        .collect();
    let wholes: Vec<u64> = numbers
        .iter()
        .copied()
        .filter(|&n| !is_delta(&session, n))
        .collect();
    assert!(wholes.len() >= 3 && wholes.len() <= 8, "whole: {wholes:?}");
    for pair in wholes.windows(2) {
        let chain_bytes: usize = (pair[0] + 1..pair[1])
            .map(|n| stored(&session, n).len())
            .sum();
        let state = state_read(&session, pair[1] - 1).len();
        assert!(
            chain_bytes <= state,
            "chain {pair:?}: {chain_bytes} bytes for a {state}-byte state"
        );
    }
    for (i, number) in numbers.iter().enumerate() {
        assert_eq!(state_read(&session, *number), list(500 + 10 * i));
    }
}

#[test]
fn another_writer_between_makes_the_next_checkpoint_whole() {
    let dir = TempDir::new();
    let first = open(config(&dir, 256));
    let second = open(config(&dir, 256));
    write(&first, &list(50));
    write(&first, &list(51));
    let theirs = write(&second, &list(10));
    let mine = write(&first, &list(52));
    assert!(!is_delta(&first, theirs) || state_read(&first, theirs) == list(10));
    assert!(!is_delta(&first, mine), "its base is no longer the newest");
    assert_eq!(state_read(&first, mine), list(52));
    // And after a reset, numbers start again: no delta against a stranger.
    first.reset().unwrap();
    write(&second, &list(60));
    let after = write(&first, &list(61));
    assert!(!is_delta(&first, after));
    assert_eq!(state_read(&first, after), list(61));
}

#[test]
fn retention_keeps_the_chains_that_kept_checkpoints_need() {
    let dir = TempDir::new();
    let mut cfg = config(&dir, 256);
    cfg.max_checkpoints = Some(3);
    let session = open(cfg);
    for n in 500..530 {
        write(&session, &list(n));
    }
    let numbers = session.store().numbers(session.task_id()).unwrap();
    assert!(
        numbers.len() > 3,
        "the newest chain is kept whole: {numbers:?}"
    );
    for &number in &numbers {
        assert_eq!(state_read(&session, number), list(499 + number as usize));
    }
    // Its first is a whole checkpoint: nothing kept depends on a pruned one.
    assert!(!is_delta(&session, numbers[0]));
}

#[test]
fn damage_in_a_chain_falls_back_to_the_newest_intact_one() {
    let dir = TempDir::new();
    let session = open(config(&dir, 256));
    for n in 500..510 {
        write(&session, &list(n));
    }
    assert!((2..=10).all(|n| is_delta(&session, n)));
    // A damaged link breaks it and every checkpoint after it.
    let link = session.store().checkpoint_location(session.task_id(), 6);
    let bytes = std::fs::read(&link).unwrap();
    std::fs::write(&link, &bytes[..bytes.len() - 10]).unwrap();
    let restored = session.restore(None).unwrap().unwrap();
    assert_eq!(restored.snapshot.checkpoint, Some(5));
    assert_eq!(restored.snapshot.data.json.as_bytes(), list(504).as_bytes());
    assert_eq!(restored.warnings.len(), 5, "{:?}", restored.warnings);
    assert!(
        restored.warnings[0].contains("broken at checkpoint 6"),
        "{:?}",
        restored.warnings
    );
    // A damaged whole checkpoint leaves nothing of its chain.
    let full = session.store().checkpoint_location(session.task_id(), 1);
    std::fs::write(&full, b"{}").unwrap();
    let err = session.restore(None).unwrap_err();
    assert!(matches!(err, Error::NoIntactCheckpoint { .. }), "{err}");
}

/// A small deterministic generator: the same sequence on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// The next state: keys added, changed or removed, arrays grown, shrunk
/// or turned into something else.
fn mutate(state: &mut serde_json::Value, rng: &mut Lcg) {
    use serde_json::{json, Value};
    let obj = state.as_object_mut().unwrap();
    let key = format!("k{}", rng.below(6));
    match rng.below(7) {
        0 => {
            obj.remove(&key);
        }
        1 => {
            obj.insert(key, json!(rng.below(1000)));
        }
        2 => {
            obj.insert(key, json!("x".repeat(rng.below(300) as usize)));
        }
        3 | 4 => {
            let entry = obj.entry(key).or_insert_with(|| json!([]));
            if !entry.is_array() {
                *entry = json!([]);
            }
            let list = entry.as_array_mut().unwrap();
            for _ in 0..rng.below(40) {
                list.push(json!(format!("é-item-{}", rng.below(100_000))));
            }
        }
        5 => {
            if let Some(Value::Array(list)) = obj.get_mut(&key) {
                let keep = rng.below(list.len() as u64 + 1) as usize;
                list.truncate(keep);
            }
        }
        _ => {
            obj.insert(key, json!({"nested": {"n": rng.below(10)}}));
        }
    }
}

#[test]
fn every_kept_checkpoint_restores_the_state_it_was_given() {
    for seed in 1..=6u64 {
        let dir = TempDir::new();
        let mut cfg = config(&dir, 200);
        cfg.max_checkpoints = Some(5 + seed);
        let session = open(cfg);
        let mut rng = Lcg(seed);
        // A large part that stays, as a long job's results do: the
        // changes around it are what the chains hold.
        let kept_part: Vec<String> = (0..600).map(|i| format!("done-{i}")).collect();
        let mut state = serde_json::json!({"k0": ["start"], "results": kept_part});
        let mut written = Vec::new();
        for _ in 0..150 {
            mutate(&mut state, &mut rng);
            let json = serde_json::to_string(&state).unwrap();
            written.push((write(&session, &json), json));
        }
        let kept = session.store().numbers(session.task_id()).unwrap();
        assert!(kept.len() >= 5, "seed {seed}: {kept:?}");
        assert!(
            kept.iter().any(|&n| is_delta(&session, n)),
            "seed {seed}: no delta"
        );
        for (number, json) in written.iter().filter(|(n, _)| kept.contains(n)) {
            assert_eq!(
                &state_read(&session, *number),
                json,
                "seed {seed}, checkpoint {number}"
            );
        }
    }
}

#[test]
fn a_chain_at_its_bound_of_links_is_followed_by_a_whole_checkpoint() {
    use super::{Tail, MAX_LINKS};
    use crate::session::RawJson;
    use crate::store::seal::Seal;
    let state = list(2_000);
    let tail = |links| Tail {
        number: 7,
        seal: Seal { crc: 1, len: 10 },
        state: RawJson::new(state.clone().into_bytes()),
        full: 1,
        links,
        bytes: 0,
    };
    let grown = list(2_001);
    let planned = tail(MAX_LINKS - 1)
        .plan(grown.as_bytes(), 1024, 400)
        .unwrap();
    assert_eq!((planned.base.number, planned.base.full), (7, 1));
    assert!(tail(MAX_LINKS).plan(grown.as_bytes(), 1024, 400).is_none());
    assert!(
        tail(0)
            .plan(grown.as_bytes(), grown.len() as u64 + 1, 400)
            .is_none(),
        "below the threshold"
    );
}
