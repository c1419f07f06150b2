//! What the fuzz targets check, shared with the main crate's
//! `tests/fuzz_corpus.rs` (which includes this file with `#[path]`), so the
//! kept corpus is replayed through exactly this code by a plain `cargo test`.
//!
//! Every function takes arbitrary bytes, must not panic, hang or allocate
//! without bound, asserts what must hold, and returns a verdict so that the
//! corpus test can compare it with the verdict recorded for that input.
//!
//! Two views of each input are checked where a seal is involved:
//! - `raw`: the bytes as a file found on disk (almost always refused: the
//!   fuzzer rarely forges a CRC-32);
//! - `sealed`: the bytes up to their last `}` sealed by the store's own
//!   sealer, so the fuzzer reaches the JSON parsing behind the seal.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use master::testing::{
    checkpoint_file_name, json_bytes, parse_checkpoint_file_name, parse_timestamp, persistence,
    seal, verify_checkpoint, Budget, BudgetFigures, CheckpointView, CleanupRule, Draft, Host,
    IndexFile, Money, Progress, Status, TaskId, TaskSummary,
};

/// The task id and number the `raw`/`sealed` checkpoint views are also
/// checked against (the seeds are checkpoint 1 of task "t").
pub const TASK: &str = "t";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not applicable (e.g. no `}` to seal up to, or not UTF-8).
    Skipped,
    Rejected,
    Accepted,
}

impl Verdict {
    fn from_bool(accepted: bool) -> Verdict {
        if accepted {
            Verdict::Accepted
        } else {
            Verdict::Rejected
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Verdict::Skipped => "skipped",
            Verdict::Rejected => "rejected",
            Verdict::Accepted => "accepted",
        }
    }
}

/// A verdict per view of one input, printed as `raw=accepted sealed=rejected`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome(pub Vec<(&'static str, Verdict)>);

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, verdict)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{name}={}", verdict.word())?;
        }
        Ok(())
    }
}

/// The store's own seal around `data` up to (excluding) its last `}`,
/// or `None` when there is no `}` to close.
fn sealed_variant(data: &[u8]) -> Option<Vec<u8>> {
    let close = data.iter().rposition(|&b| b == b'}')?;
    let body = &data[..close];
    let sealed = seal::seal(body);
    let verified = seal::verify(&sealed);
    if body.is_empty() {
        assert!(verified.is_err(), "an empty body must not verify");
        return None;
    }
    // What the sealer writes always verifies, and verify gives back
    // everything but the trailing newline.
    assert_eq!(verified, Ok(&sealed[..sealed.len() - 1]), "sealed {body:?}");
    Some(sealed)
}

/// Properties of `seal::verify` on any input.
fn check_seal(bytes: &[u8]) -> Result<&[u8], String> {
    let verified = seal::verify(bytes);
    if let Ok(text) = verified {
        // The text is the file minus trailing whitespace, and ends with the
        // checksum member.
        assert!(bytes.starts_with(text));
        assert!(bytes[text.len()..].iter().all(u8::is_ascii_whitespace));
        assert!(text.ends_with(b"\"}"));
        let marker = b",\"checksum\":\"crc32:";
        let at = text.len() - marker.len() - 10;
        assert_eq!(&text[at..at + marker.len()], marker);
        // Re-sealing the body reproduces the file's text exactly.
        let resealed = seal::seal(&text[..at]);
        assert_eq!(&resealed[..resealed.len() - 1], text);
    }
    verified
}

/// What restore does with `state` and `error` (`convert::from_json`): a
/// serde_json `deserialize_any` walk with the default recursion limit,
/// map keys as strings. Here it builds nothing.
pub fn readable_back(raw: &str) -> Result<(), String> {
    struct Walk;
    struct Key;
    impl<'de> DeserializeSeed<'de> for Walk {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(Walk)
        }
    }
    impl<'de> DeserializeSeed<'de> for Key {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_str(Walk)
        }
    }
    impl<'de> Visitor<'de> for Walk {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_none<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(Walk)?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while map.next_key_seed(Key)?.is_some() {
                map.next_value_seed(Walk)?;
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_str(raw);
    Walk.deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())
}

// ---------------------------------------------------------------- checkpoint

/// `parse_checkpoint`: a checkpoint file's bytes, as found on disk and as
/// sealed by the store.
pub fn parse_checkpoint(data: &[u8]) -> Outcome {
    let raw = checkpoint_file(data);
    let sealed = sealed_variant(data).map_or(Verdict::Skipped, |file| checkpoint_file(&file));
    Outcome(vec![("raw", raw), ("sealed", sealed)])
}

/// Runs a checkpoint file through `seal::verify`, `CheckpointView::parse`
/// and `store::verify_checkpoint`, checking that they agree; for a file
/// they accept, does what the store and the session do with it.
pub fn checkpoint_file(bytes: &[u8]) -> Verdict {
    let as_t1 = verify_checkpoint(bytes, TASK, 1);
    let Ok(json) = check_seal(bytes) else {
        assert!(as_t1.is_err(), "a file failing its seal was accepted");
        return Verdict::Rejected;
    };
    let view = match CheckpointView::parse(json) {
        Ok(view) => view,
        Err(reason) => {
            assert!(as_t1.is_err(), "an unparsable file was accepted");
            assert!(!reason.is_empty());
            return Verdict::Rejected;
        }
    };
    assert_eq!(
        as_t1.is_ok(),
        view.task_id == TASK && view.sequence == Some(1),
        "verify_checkpoint(_, {TASK:?}, 1) disagrees with the parsed view: {as_t1:?} / {:?} {:?}",
        view.task_id,
        view.sequence
    );
    if let Some(number) = view.sequence {
        assert!(verify_checkpoint(bytes, &view.task_id, number).is_ok());
    }
    // Checkpoint files are numbered from 1 (`parse_checkpoint_file_name`):
    // no file is ever verified as checkpoint 0.
    let Some(number) = view.sequence.filter(|&n| n != 0) else {
        return Verdict::Rejected;
    };
    assert!(verify_checkpoint(bytes, &view.task_id, number ^ 1).is_err());
    if view.task_id != TASK {
        assert!(verify_checkpoint(bytes, TASK, number).is_err());
    }
    use_checkpoint(&view, number);
    Verdict::Accepted
}

/// What is done with a checkpoint that verified: restore reads its state,
/// error and time; the summary caches are built from its facts; a rollback
/// writes it anew. None of it may fail or panic.
fn use_checkpoint(view: &CheckpointView, number: u64) {
    parse_timestamp(&view.timestamp).expect("parse checked the timestamp");
    let _time: DateTime<Utc> = view.time();
    let Some(state) = view.state_text() else {
        // A delta checkpoint (parse checked its record): its state is its
        // chain's, which `apply_delta` exercises.
        assert!(view.delta.is_some());
        return;
    };
    readable_back(state).expect("restore cannot read back the state of an intact checkpoint");
    if let Some(error) = view.error {
        readable_back(error.get())
            .expect("restore cannot read back the error of an intact checkpoint");
    }
    // The number after this one can be named (what the next write and the
    // freshness check of the caches compute).
    let next = number
        .checked_add(1)
        .expect("an intact checkpoint's number has no successor");
    let _ = checkpoint_file_name(next);
    if let Ok(task) = TaskId::parse(&view.task_id) {
        assert_eq!(task.as_str(), view.task_id);
    }

    // metadata.json as the store writes it from these facts.
    let facts = view.facts();
    let summary = TaskSummary::from_facts(
        &view.task_id,
        number,
        (view.status != Status::Failed).then_some(number),
        number,
        view.timestamp.clone(),
        &facts,
        seal::Seal {
            crc: 1,
            len: bytes_len_hint(view),
        },
    );
    // The caches hold the budget as Floats (they are only shown, and Ruby
    // gets Floats anyway): exact up to 15 significant digits.
    let back = reread_summary(&summary);
    let expected = TaskSummary {
        budget: through_float(summary.budget),
        ..summary.clone()
    };
    assert_eq!(
        back, expected,
        "metadata.json does not read back as written"
    );

    // The checkpoint written anew (rollback/resume): what was read must be
    // written and read back unchanged.
    let draft = Draft {
        task_id: &view.task_id,
        timestamp: Utc::now(),
        status: view.status,
        message: view.message.as_deref(),
        progress: view.progress.clone(),
        budget: view.budget,
        state: view.state_text().unwrap().as_bytes(),
        error: None,
        copy_of: view.rollback_of.or(view.retry_of),
        retry: view.rollback_of.is_none() && view.retry_of.is_some(),
        failures: view.failures,
        retries: view.retries,
        host: view.metadata.clone(),
        written_at: Utc::now(),
        kinds: view.kinds.map(|k| k.get().as_bytes()),
    };
    let mut doc = draft.to_document();
    if let Some(error) = view.error {
        doc.set_raw("error", error.get().as_bytes());
    }
    doc.set("sequence", &number);
    let json = doc.to_json();
    let file = seal::seal(&json[..json.len() - 1]);
    verify_checkpoint(&file, &view.task_id, number)
        .expect("a checkpoint written from an intact one does not verify");
    let text = seal::verify(&file).unwrap();
    let again = CheckpointView::parse(text).unwrap();
    assert_eq!(again.task_id, view.task_id);
    assert_eq!(again.sequence, Some(number));
    assert_eq!(again.status, view.status);
    assert_eq!(again.message, view.message);
    assert_eq!(again.progress, view.progress);
    assert_eq!(again.budget, view.budget, "the budget changed on rewrite");
    assert_eq!(again.state_text().unwrap(), view.state_text().unwrap());
    assert_eq!(
        again.error.map(RawValue::get),
        view.error.map(RawValue::get)
    );
    assert_eq!(again.rollback_of, view.rollback_of);
    assert_eq!(again.failures, view.failures);
    assert_eq!(again.retries, view.retries);
    assert_eq!(again.metadata, view.metadata);
}

/// Budget figures as a summary cache keeps them: written as a Float by
/// serde_json, read back exactly from that text.
fn through_float(budget: BudgetFigures) -> BudgetFigures {
    let float = |m: Money| {
        let text = serde_json::to_string(&m.to_f64()).unwrap();
        Money::from_json_number(&text).expect("a Money's Float reads back")
    };
    BudgetFigures {
        allocated: budget.allocated.map(float),
        spent: float(budget.spent),
        remaining: budget.remaining.map(float),
    }
}

/// A summary written as `write_json_sealed` writes it and read back as
/// `read_json_sealed` reads it.
fn reread_summary(summary: &TaskSummary) -> TaskSummary {
    let json = json_bytes(summary);
    let file = seal::seal(&json[..json.len() - 1]);
    let text = seal::verify(&file).expect("a sealed summary verifies");
    serde_json::from_slice(text).expect("a summary the store wrote does not read back")
}

// ------------------------------------------------------------------ summary

/// `parse_summary`: bytes as `metadata.json` and as `index.json`, as found
/// on disk and as sealed by the store.
pub fn parse_summary(data: &[u8]) -> Outcome {
    let (raw_summary, raw_index) = summary_file(data);
    let (sealed_summary, sealed_index) = match sealed_variant(data) {
        Some(file) => summary_file(&file),
        None => (Verdict::Skipped, Verdict::Skipped),
    };
    Outcome(vec![
        ("raw_metadata", raw_summary),
        ("raw_index", raw_index),
        ("sealed_metadata", sealed_summary),
        ("sealed_index", sealed_index),
    ])
}

/// `read_json_sealed::<TaskSummary>` and `::<IndexFile>` on one file, and
/// what the store does with what they return.
pub fn summary_file(bytes: &[u8]) -> (Verdict, Verdict) {
    let Ok(json) = check_seal(bytes) else {
        return (Verdict::Rejected, Verdict::Rejected);
    };
    let summary: Option<TaskSummary> = serde_json::from_slice(json).ok();
    if let Some(summary) = &summary {
        use_summary(summary);
    }
    let index: Option<IndexFile> = serde_json::from_slice(json).ok();
    if let Some(index) = &index {
        for row in index.tasks.values() {
            use_summary(row);
        }
        let json = json_bytes(index);
        let file = seal::seal(&json[..json.len() - 1]);
        let back: IndexFile = serde_json::from_slice(seal::verify(&file).unwrap())
            .expect("an index the store wrote does not read back");
        assert_eq!(back.version, index.version);
        assert_eq!(back.tasks.len(), index.tasks.len());
        for (id, row) in &index.tasks {
            let expected = TaskSummary {
                budget: through_float(row.budget),
                ..row.clone()
            };
            assert_eq!(back.tasks.get(id), Some(&expected), "index.json row {id:?}");
        }
    }
    (
        Verdict::from_bool(summary.is_some()),
        Verdict::from_bool(index.is_some()),
    )
}

/// What the store does with a summary it read: freshness check (names the
/// latest checkpoint file and the one after it), cleanup's age test, and
/// rewriting it (created_at is carried over from the previous summary).
fn use_summary(summary: &TaskSummary) {
    let latest = summary.latest_checkpoint;
    let _ = checkpoint_file_name(latest);
    let next = latest
        .checked_add(1)
        .expect("a summary's latest checkpoint has no successor (is_fresh computes latest + 1)");
    let _ = checkpoint_file_name(next);
    if let Some(good) = summary.latest_good_checkpoint {
        let _ = checkpoint_file_name(good);
    }
    let _ = parse_checkpoint_file_name(&checkpoint_file_name(latest));
    let now = Utc::now();
    for (older_than, keep) in [(0, false), (3600, false), (u64::MAX / 4, true)] {
        let rule = CleanupRule {
            older_than: std::time::Duration::from_secs(older_than),
            keep_failed: keep,
            keep_completed: keep,
            keep_running: keep,
        };
        let _ = rule.removes(summary, now);
    }
    // Amounts are read exactly but a summary writes them as Floats: after
    // that first rewrite, a summary reads back as written.
    let back = reread_summary(summary);
    let expected = TaskSummary {
        budget: through_float(summary.budget),
        ..summary.clone()
    };
    assert_eq!(back, expected, "a summary does not read back as written");
    assert_eq!(
        reread_summary(&back),
        back,
        "a rewritten summary changes again"
    );
}

/// Any length will do for a summary that is only written and read back.
fn bytes_len_hint(view: &CheckpointView) -> u64 {
    view.state_text().unwrap().len() as u64
}

// -------------------------------------------------------------- persistence

/// `persistence_document`: bytes as the caller's JSON object given to
/// `SessionPersistence.save`.
pub fn persistence_document(data: &[u8]) -> Outcome {
    let task = TaskId::parse(TASK).unwrap();
    let Ok(doc) = persistence::document(&task, data, None) else {
        return Outcome(vec![
            ("document", Verdict::Rejected),
            ("save", Verdict::Skipped),
        ]);
    };
    let json = doc.to_json();
    // One JSON object, every member once.
    let members = object_members(&json).unwrap_or_else(|e| {
        panic!(
            "document() produced invalid JSON ({e}): {}",
            String::from_utf8_lossy(&json)
        )
    });
    for (i, (key, _)) in members.iter().enumerate() {
        assert!(
            !members[..i].iter().any(|(k, _)| k == key),
            "member {key:?} written twice"
        );
    }
    let get = |name: &str| {
        members
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.get())
    };
    for name in persistence::ENVELOPE {
        assert!(get(name).is_some(), "the envelope lacks {name}");
    }
    assert_eq!(get("sequence"), Some("0"));
    assert_eq!(
        serde_json::from_str::<String>(get("task_id").unwrap())
            .ok()
            .as_deref(),
        Some(TASK)
    );
    // Every member the caller gave comes back as given (the first of
    // duplicated keys, as with any JSON parser that keeps the first).
    if let Ok(given) = object_members(data) {
        for (i, (key, value)) in given.iter().enumerate() {
            if given[..i].iter().any(|(k, _)| k == key) {
                continue;
            }
            assert_eq!(get(key), Some(value.get()), "member {key:?} changed");
        }
    }

    // `save` then checks the document reads as a checkpoint; what it
    // accepts must verify once numbered and sealed.
    let Ok(view) = CheckpointView::parse(&json) else {
        return Outcome(vec![
            ("document", Verdict::Accepted),
            ("save", Verdict::Rejected),
        ]);
    };
    let _ = view.facts();
    let mut doc = doc;
    doc.set("sequence", &1u64);
    let json = doc.to_json();
    let file = seal::seal(&json[..json.len() - 1]);
    if let Err(e) = verify_checkpoint(&file, TASK, 1) {
        panic!("save accepts a document that does not verify once written: {e}");
    }
    assert_eq!(checkpoint_file(&file), Verdict::Accepted);
    Outcome(vec![
        ("document", Verdict::Accepted),
        ("save", Verdict::Accepted),
    ])
}

/// A JSON object's members in order, values raw, duplicates kept;
/// no recursion limit beyond serde_json's for the object itself.
fn object_members(json: &[u8]) -> Result<Vec<(String, Box<RawValue>)>, String> {
    struct Members;
    impl<'de> Visitor<'de> for Members {
        type Value = Vec<(String, Box<RawValue>)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut members = Vec::new();
            while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                members.push(entry);
            }
            Ok(members)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    let members = de.deserialize_map(Members).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(members)
}

// -------------------------------------------------------------------- money

/// `money`: the input as text, one amount per line (at most four). Each
/// amount must print and parse back to itself, and be written into a
/// checkpoint's budget and read back unchanged; pairs of amounts go
/// through the budget arithmetic, which must not panic.
pub fn money(data: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(data) else {
        return Outcome(vec![("first", Verdict::Skipped)]);
    };
    let mut verdicts = Vec::new();
    let mut amounts = Vec::new();
    for line in text.split('\n').take(4) {
        let parsed = line.parse::<Money>();
        verdicts.push(Verdict::from_bool(parsed.is_ok()));
        if let Ok(amount) = parsed {
            check_amount(line, amount);
            amounts.push(amount);
        }
    }
    for pair in amounts.windows(2) {
        check_pair(pair[0], pair[1]);
    }
    let names = ["first", "second", "third", "fourth"];
    Outcome(names.iter().copied().zip(verdicts).collect())
}

fn check_amount(text: &str, amount: Money) {
    let printed = amount.to_string();
    let back: Money = printed
        .parse()
        .unwrap_or_else(|e| panic!("{text:?} prints as {printed:?}, which does not parse: {e}"));
    assert_eq!(
        back, amount,
        "{text:?} prints as {printed:?}, which parses differently"
    );
    // Display is the shortest exact form: parsing it again prints the same.
    assert_eq!(back.to_string(), printed);
    let _ = amount.to_cents_string();
    let float = amount.to_f64();
    assert!(float.is_finite(), "{printed} has no finite Float");
    // As a Float it is what Money::from_f64 reads (the Ruby side), and the
    // figures of a checkpoint's budget round-trip exactly through the file.
    let _ = Money::from_f64(float);
    let budget = BudgetFigures::new(Some(amount), amount);
    assert_eq!(budget_through_checkpoint(budget), budget, "{printed}");
    let spent_only = BudgetFigures::new(None, amount);
    assert_eq!(
        budget_through_checkpoint(spent_only),
        spent_only,
        "{printed}"
    );
}

fn budget_through_checkpoint(budget: BudgetFigures) -> BudgetFigures {
    let draft = Draft {
        task_id: TASK,
        timestamp: Utc::now(),
        status: Status::Running,
        message: None,
        progress: Progress::new(1, Some(2)),
        budget,
        state: b"{}",
        error: None,
        copy_of: None,
        retry: false,
        failures: 0,
        retries: 0,
        host: Host::default(),
        written_at: Utc::now(),
        kinds: None,
    };
    let json = draft.to_document().to_json();
    match CheckpointView::parse(&json) {
        Ok(view) => view.budget,
        Err(e) => panic!(
            "a checkpoint with budget {budget:?} does not read back: {e}: {}",
            String::from_utf8_lossy(&json)
        ),
    }
}

fn check_pair(a: Money, b: Money) {
    for result in [a.checked_add(b), a.checked_sub(b), b.checked_sub(a)]
        .into_iter()
        .flatten()
    {
        check_amount(&format!("{a} +/- {b}"), result);
    }
    let figures = BudgetFigures::new(Some(a), b);
    assert_eq!(budget_through_checkpoint(figures), figures);
    let _ = a.percent_of(b);
    let _ = b.percent_of(a);
    let _ = Money::from_ratio(a.units(), b.units());
    for threshold in [0.0, 0.8, 1.0] {
        let mut budget = Budget::new(Some(a), threshold);
        let _ = budget.track(b);
        let _ = budget.used_percent();
        let _ = budget.near_limit();
        let _ = budget.over();
        let _ = budget.remaining();
        budget.resume(b);
        let _ = budget.used_percent();
        let _ = budget.near_limit();
        let _ = budget.remaining();
        let _ = budget.increase(b);
        let _ = budget.track(a);
        let _ = budget.remaining();
        let _ = budget.used_percent();
    }
}

// ---------------------------------------------------------------- deltas

/// A checkpoint document of task `TASK` numbered `number` whose state
/// member is `member` (`"state":…` or `"delta":…`), sealed as the store
/// seals it.
fn sealed_checkpoint(number: u64, member: &[u8]) -> Vec<u8> {
    let mut body = format!(
        r#"{{"task_id":"{TASK}","version":"52.0","timestamp":"2024-02-05T23:30:00Z","sequence":{number},"status":"running","progress":{{}},"budget":{{}},"#
    )
    .into_bytes();
    body.extend_from_slice(member);
    body.extend_from_slice(br#","metadata":{}"#);
    seal::seal(&body)
}

/// `apply_delta` (view `raw`): `base state \n delta member [\n next state]`. Checkpoint
/// 1 holds the base state whole, checkpoint 2 the delta member; resolving
/// 2 through the store's chain reader must not panic, and when it succeeds
/// the state is the base with the ops applied by hand, and readable.
/// With a third line, the store's own diff of the base and that state,
/// applied to the base, gives that state back.
pub fn apply_delta(data: &[u8]) -> Outcome {
    use master::testing::delta::{apply, diff, resolve_state};
    let mut lines = data.splitn(3, |&b| b == b'\n');
    let base = lines.next().unwrap_or_default();
    let member = lines.next().unwrap_or_default();
    let next = lines.next();

    let mut chain = std::collections::BTreeMap::new();
    chain.insert(1, sealed_checkpoint(1, &[br#""state":"#, base].concat()));
    let delta_file = sealed_checkpoint(2, &[br#""delta":"#, member].concat());
    let resolved = match resolve_state(TASK, 2, &delta_file, &chain) {
        Ok(state) => {
            // The member as the document holds it (the line may go on past
            // it with more members of the document).
            let doc: serde_json::Value =
                serde_json::from_slice(seal::verify(&delta_file).expect("it was read"))
                    .expect("it was read");
            let record = &doc["delta"];
            // The state as the whole checkpoint holds it: the JSON value,
            // without the whitespace around it.
            let mut by_hand = base.trim_ascii().to_vec();
            for op in record["ops"].as_array().expect("it was read") {
                let field = |name: &str| op[name].as_u64().expect("it was read") as usize;
                let insert = op["insert"].as_str().expect("it was read");
                let (at, remove) = (field("at"), field("remove"));
                by_hand = [&by_hand[..at], insert.as_bytes(), &by_hand[at + remove..]].concat();
            }
            // The same JSON value: whitespace around it is not part of it.
            assert_eq!(
                state,
                by_hand.trim_ascii(),
                "the chain reader applied something else"
            );
            readable_back(std::str::from_utf8(&state).expect("a resolved state is text"))
                .expect("a resolved state reads back");
            Verdict::Accepted
        }
        Err(reason) => {
            assert!(!reason.is_empty());
            Verdict::Rejected
        }
    };
    let round_trip = match (std::str::from_utf8(base), next.map(std::str::from_utf8)) {
        (Ok(old), Some(Ok(new))) => {
            let ops = diff(old.as_bytes(), new.as_bytes());
            let mut state = old.as_bytes().to_vec();
            apply(&mut state, &ops).expect("a diff fits its base");
            assert_eq!(state, new.as_bytes(), "diff then apply changed the state");
            Verdict::Accepted
        }
        _ => Verdict::Skipped,
    };
    Outcome(vec![("raw", resolved), ("diff", round_trip)])
}
