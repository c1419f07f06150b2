//! Replays what the fuzz targets in `fuzz/` keep, on stable and without
//! cargo-fuzz: every file of `fuzz/corpus/<target>/` (the minimised corpus),
//! `fuzz/seeds/<target>/` (hand-written from real store files) and
//! `fuzz/regressions/<target>/` (inputs that found a defect, since fixed)
//! goes through the very checks the fuzz target runs (`fuzz/src/checks.rs`),
//! which must not panic, and the verdicts must be the ones recorded in
//! `fuzz/verdicts/<target>.txt`.
//!
//! Seeds named `ok-*` are real or correctly sealed store files and must be
//! accepted as they are (as a checkpoint, a metadata.json or an index.json);
//! `bad-*` seeds are damaged files and must be refused.
//!
//! After a deliberate change of verdicts (or a new corpus), rewrite the
//! record with `UPDATE_FUZZ_VERDICTS=1 cargo test --test fuzz_corpus` and
//! review the diff.

// `pub` for the fuzz crate, which uses all of it; here only part is used.
#[path = "../fuzz/src/checks.rs"]
#[allow(dead_code, unreachable_pub)]
mod checks;

use std::collections::BTreeMap;
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use checks::{Outcome, Verdict};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// `(path relative to fuzz/, bytes)` of every input kept for `target`.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    for kind in ["corpus", "seeds", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                let name = entry.file_name().into_string().unwrap();
                let bytes = fs::read(entry.path()).unwrap();
                found.push((format!("{kind}/{target}/{name}"), bytes));
            }
        }
    }
    found.sort();
    found
}

fn verdicts_path(target: &str) -> PathBuf {
    fuzz_dir().join("verdicts").join(format!("{target}.txt"))
}

fn recorded(target: &str) -> BTreeMap<String, String> {
    let text = fs::read_to_string(verdicts_path(target)).unwrap_or_default();
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (path, verdict) = line.split_once(' ').expect("`path verdicts` lines");
            (path.to_owned(), verdict.to_owned())
        })
        .collect()
}

fn replay(target: &str, check: fn(&[u8]) -> Outcome) {
    let inputs = inputs(target);
    assert!(
        !inputs.is_empty(),
        "no corpus for {target} in {:?}",
        fuzz_dir()
    );
    let mut outcomes = BTreeMap::new();
    let mut panics = Vec::new();
    for (path, bytes) in &inputs {
        match catch_unwind(AssertUnwindSafe(|| check(bytes))) {
            Ok(outcome) => {
                // The verdicts on the file as it is (not re-sealed).
                let name = path.rsplit('/').next().unwrap();
                let raw = || {
                    (outcome.0.iter())
                        .filter(|(view, _)| view.starts_with("raw"))
                        .map(|(_, verdict)| *verdict)
                };
                if path.starts_with("seeds/") && name.starts_with("ok-") {
                    assert!(raw().any(|v| v == Verdict::Accepted), "{path}: {outcome}");
                }
                if path.starts_with("seeds/") && name.starts_with("bad-") {
                    assert!(raw().all(|v| v == Verdict::Rejected), "{path}: {outcome}");
                }
                outcomes.insert(path.clone(), outcome.to_string());
            }
            Err(_) => panics.push(path.clone()),
        }
    }
    assert!(panics.is_empty(), "{target}: checks panicked on {panics:?}");

    if std::env::var_os("UPDATE_FUZZ_VERDICTS").is_some() {
        let mut text = format!(
            "# Verdicts of fuzz/src/checks.rs::{target} on every kept input; tests/fuzz_corpus.rs\n\
             # compares them. Rewrite with UPDATE_FUZZ_VERDICTS=1 cargo test --test fuzz_corpus\n"
        );
        for (path, outcome) in &outcomes {
            text.push_str(&format!("{path} {outcome}\n"));
        }
        fs::create_dir_all(verdicts_path(target).parent().unwrap()).unwrap();
        fs::write(verdicts_path(target), text).unwrap();
        return;
    }
    let expected = recorded(target);
    let mut differences = Vec::new();
    for (path, outcome) in &outcomes {
        match expected.get(path) {
            Some(verdict) if verdict == outcome => {}
            Some(verdict) => differences.push(format!("{path}: now {outcome}, was {verdict}")),
            None => differences.push(format!("{path}: {outcome}, not recorded")),
        }
    }
    for path in expected.keys() {
        if !outcomes.contains_key(path) {
            differences.push(format!("{path}: recorded, but the file is gone"));
        }
    }
    assert!(
        differences.is_empty(),
        "{target}: verdicts differ from {:?} (UPDATE_FUZZ_VERDICTS=1 rewrites it):\n{}",
        verdicts_path(target),
        differences.join("\n")
    );
}

#[test]
fn parse_checkpoint_corpus() {
    replay("parse_checkpoint", checks::parse_checkpoint);
}

#[test]
fn parse_summary_corpus() {
    replay("parse_summary", checks::parse_summary);
}

#[test]
fn persistence_document_corpus() {
    replay("persistence_document", checks::persistence_document);
}

#[test]
fn apply_delta_corpus() {
    replay("apply_delta", checks::apply_delta);
}

#[test]
fn money_corpus() {
    replay("money", checks::money);
}

/// The defects found (by the targets, or in review of what they check),
/// each with the verdict it must now get, whatever the recorded verdicts say.
#[test]
fn fixed_defects_keep_their_verdicts() {
    let regression = |target: &str, name: &str| {
        fs::read(fuzz_dir().join("regressions").join(target).join(name))
            .unwrap_or_else(|e| panic!("regressions/{target}/{name}: {e}"))
    };
    let verdicts = |outcome: Outcome| outcome.to_string();

    // A checkpoint whose state holds a number out of range
    // (46116e8601842738790): refused, not verified intact and then
    // failing to restore.
    let input = regression("parse_checkpoint", "state-number-out-of-range.json");
    assert_eq!(
        verdicts(checks::parse_checkpoint(&input)),
        "raw=rejected sealed=rejected"
    );

    // A percentage of 17 digits: accepted, and metadata.json made from it
    // reads back equal (serde_json's float parsing was 1 ulp off).
    let input = regression("parse_checkpoint", "percentage-of-17-digits.json");
    assert_eq!(
        verdicts(checks::parse_checkpoint(&input)),
        "raw=rejected sealed=accepted"
    );
    let input = regression("persistence_document", "percentage-of-17-digits.json");
    assert_eq!(
        verdicts(checks::persistence_document(&input)),
        "document=accepted save=accepted"
    );

    // Caches naming checkpoint 18446744073709551615 (no successor: the
    // freshness checks' `latest + 1` overflowed): refused, rebuilt instead.
    let input = regression("parse_summary", "latest-checkpoint-without-successor.json");
    let text = master::testing::seal::verify(&input).expect("correctly sealed");
    assert!(serde_json::from_slice::<master::testing::TaskSummary>(text).is_err());
    assert!(verdicts(checks::parse_summary(&input)).starts_with("raw_metadata=rejected"));
    let input = regression(
        "parse_summary",
        "index-row-latest-checkpoint-without-successor.json",
    );
    let text = master::testing::seal::verify(&input).expect("correctly sealed");
    assert!(serde_json::from_slice::<master::testing::IndexFile>(text).is_err());
    assert_eq!(
        verdicts(checks::parse_summary(&input)),
        "raw_metadata=rejected raw_index=rejected sealed_metadata=rejected sealed_index=rejected"
    );

    // Budget arithmetic that overflowed (percent_of, remaining) and an
    // amount of 16 digits that changed through a checkpoint's budget: all
    // amounts parse, and the checks (round trips, no panic) hold.
    for name in [
        "budget-of-16-digits-through-a-float.txt",
        "percent-of-huge-limit-overflows.txt",
        "remaining-after-negative-spent-overflows.txt",
    ] {
        let outcome = checks::money(&regression("money", name));
        assert!(
            outcome.0.iter().all(|(_, v)| *v == Verdict::Accepted),
            "{name}: {outcome}"
        );
    }
}
