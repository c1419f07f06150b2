//! One suite every backend passes: the behaviour sessions, persistence and
//! the CLI rely on, stated once and run against each backend (`backends!`
//! at the bottom makes one test module per backend). A new backend adds a
//! `Harness` and one line there.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::file::tests::tempdir::TempDir;
use super::layout::TaskId;
use super::memory::MemoryStore;
use super::*;
use crate::checkpoint::{BudgetFigures, Draft, Host, Progress, Status};

/// A fresh, empty store of one backend, and a way to damage a checkpoint
/// in it as a disk (or a person) would.
pub(crate) trait Harness {
    fn store(&self) -> Store;
    /// Replaces checkpoint `number` of `task` with `bytes`.
    fn damage(&self, task: &TaskId, number: u64, bytes: Vec<u8>);
    /// The stored bytes of checkpoint `number`.
    fn bytes(&self, task: &TaskId, number: u64) -> Vec<u8>;
}

pub(crate) struct FileHarness {
    dir: TempDir,
}

impl FileHarness {
    pub(super) fn new() -> FileHarness {
        FileHarness {
            dir: TempDir::new(),
        }
    }

    fn path(&self, task: &TaskId, number: u64) -> std::path::PathBuf {
        self.dir
            .path()
            .join("store")
            .join(task.as_str())
            .join(layout::checkpoint_file_name(number))
    }
}

impl Harness for FileHarness {
    fn store(&self) -> Store {
        Store::file(&self.dir.path().join("store")).unwrap()
    }

    fn damage(&self, task: &TaskId, number: u64, bytes: Vec<u8>) {
        std::fs::write(self.path(task, number), bytes).unwrap();
    }

    fn bytes(&self, task: &TaskId, number: u64) -> Vec<u8> {
        std::fs::read(self.path(task, number)).unwrap()
    }
}

pub(crate) struct MemoryHarness {
    name: String,
}

impl MemoryHarness {
    pub(super) fn new() -> MemoryHarness {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        MemoryHarness {
            name: format!("conformance-{}", N.fetch_add(1, Ordering::Relaxed)),
        }
    }
}

impl Harness for MemoryHarness {
    fn store(&self) -> Store {
        Store::open(&StoreSpec::Memory(self.name.clone())).unwrap()
    }

    fn damage(&self, task: &TaskId, number: u64, bytes: Vec<u8>) {
        MemoryStore::named(&self.name).damage(task, number, bytes);
    }

    fn bytes(&self, task: &TaskId, number: u64) -> Vec<u8> {
        let store = MemoryStore::named(&self.name);
        let found = Backend::read(store.as_ref(), task, number).unwrap();
        let mut bytes = found.json.clone();
        // `read` drops the trailing newline; the stored file has it.
        bytes.push(b'\n');
        bytes
    }
}

fn task(id: &str) -> TaskId {
    TaskId::parse(id).unwrap()
}

pub(crate) fn write(
    store: &Store,
    id: &str,
    status: Status,
    processed: u64,
    max: Option<u64>,
) -> Written {
    write_for(store, id, status, processed, max, None).unwrap()
}

/// A checkpoint of `id` holding `state`, `processed` items of 100 done.
fn draft<'a>(id: &'a str, status: Status, processed: u64, state: &'a str) -> Draft<'a> {
    Draft {
        task_id: id,
        timestamp: Utc::now(),
        status,
        message: None,
        progress: Progress::new(processed, Some(100)),
        budget: BudgetFigures::new(Some("5".parse().unwrap()), "1.5".parse().unwrap()),
        state: state.as_bytes(),
        error: None,
        copy_of: None,
        retry: false,
        failures: 0,
        retries: 0,
        host: Host::current(),
        written_at: Utc::now(),
        kinds: None,
    }
}

/// A write made for a queue claim (`fence`), or none.
pub(crate) fn write_for(
    store: &Store,
    id: &str,
    status: Status,
    processed: u64,
    max: Option<u64>,
    fence: Option<u64>,
) -> Result<Written> {
    let state = format!(r#"{{"n":{processed}}}"#);
    let draft = draft(id, status, processed, &state);
    let mut doc = draft.to_document();
    let options = WriteOptions {
        max_checkpoints: max,
        fence: fence.map(|token| claims::Fence { token }),
        ..WriteOptions::default()
    };
    store.write_checkpoint(&task(id), &mut doc, &draft.facts(), &options)
}

pub(crate) fn running(store: &Store, id: &str, processed: u64) -> Written {
    write(store, id, Status::Running, processed, None)
}

fn ids(listing: Listing) -> Vec<String> {
    listing.tasks.into_iter().map(|t| t.task_id).collect()
}

pub(crate) fn numbers_checkpoints_from_one_per_task(h: &dyn Harness) {
    let store = h.store();
    assert_eq!(running(&store, "alpha", 1).number, 1);
    assert_eq!(running(&store, "alpha", 2).number, 2);
    assert_eq!(running(&store, "beta", 1).number, 1);
    assert_eq!(store.numbers(&task("alpha")).unwrap(), [1, 2]);
    let found = store.read(&task("alpha"), 2).unwrap();
    assert_eq!(found.view().sequence, Some(2));
    assert_eq!(found.state(), br#"{"n":2}"#);
}

pub(crate) fn reads_nothing_that_is_not_there(h: &dyn Harness) {
    let store = h.store();
    assert!(store.list().unwrap().tasks.is_empty());
    assert!(store.numbers(&task("alpha")).unwrap().is_empty());
    assert!(store
        .find(&task("alpha"), Pick::Latest)
        .unwrap()
        .found
        .is_none());
    assert!(store.summary(&task("alpha")).unwrap().is_none());
    assert!(!store.remove(&task("alpha")).unwrap());
    running(&store, "alpha", 1);
    assert!(matches!(
        store.read(&task("alpha"), 9),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.read(&task("beta"), 1),
        Err(Error::NotFound(_))
    ));
}

pub(crate) fn skips_damaged_checkpoints_naming_them(h: &dyn Harness) {
    let store = h.store();
    for n in 1..=3 {
        running(&store, "alpha", n);
    }
    let alpha = task("alpha");
    let third = String::from_utf8(h.bytes(&alpha, 3)).unwrap();
    h.damage(
        &alpha,
        3,
        third.replacen("\"n\":3", "\"n\":7", 1).into_bytes(),
    );
    let second = h.bytes(&alpha, 2);
    h.damage(&alpha, 2, second[..second.len() / 2].to_vec());
    let lookup = store.find(&alpha, Pick::Latest).unwrap();
    assert_eq!(lookup.found.unwrap().number, 1);
    let skipped: Vec<_> = lookup.skipped.iter().map(|s| s.number).collect();
    assert_eq!(skipped, [3, 2]);
    assert!(lookup.skipped[0].reason.contains("checksum mismatch"));
    assert_eq!(lookup.skipped[0].path, store.checkpoint_location(&alpha, 3));
    assert!(matches!(store.read(&alpha, 3), Err(Error::Corrupt { .. })));
    // Every reader agrees with the lookup.
    let summary = store.summary(&alpha).unwrap().unwrap();
    assert_eq!(summary.latest_checkpoint, 1);
    assert_eq!(store.list().unwrap().tasks[0].latest_checkpoint, 1);
    // A copy under another number or task is refused.
    h.damage(&alpha, 2, h.bytes(&alpha, 1));
    let err = store.read(&alpha, 2).unwrap_err().to_string();
    assert!(err.contains("says it is checkpoint"), "{err}");
}

pub(crate) fn picks_the_newest_good_checkpoint(h: &dyn Harness) {
    let store = h.store();
    running(&store, "alpha", 1);
    let failed = write(&store, "alpha", Status::Failed, 1, None);
    assert_eq!(failed.summary.latest_good_checkpoint, Some(1));
    let alpha = task("alpha");
    assert_eq!(
        store
            .find(&alpha, Pick::LatestGood)
            .unwrap()
            .found
            .unwrap()
            .number,
        1
    );
    assert_eq!(
        store
            .find(&alpha, Pick::Latest)
            .unwrap()
            .found
            .unwrap()
            .number,
        2
    );
    assert!(store
        .find(&alpha, Pick::GoodBefore(1))
        .unwrap()
        .found
        .is_none());
}

pub(crate) fn keeps_the_newest_and_the_newest_good_when_pruning(h: &dyn Harness) {
    let store = h.store();
    running(&store, "alpha", 1);
    for _ in 0..5 {
        write(&store, "alpha", Status::Failed, 1, Some(3));
    }
    assert_eq!(store.numbers(&task("alpha")).unwrap(), [1, 4, 5, 6]);
    assert_eq!(running(&store, "alpha", 2).number, 7);
    let written = write(&store, "alpha", Status::Running, 3, Some(3));
    assert_eq!(written.number, 8);
    assert_eq!(written.pruned, [1, 4, 5]);
    assert_eq!(store.numbers(&task("alpha")).unwrap(), [6, 7, 8]);
    assert_eq!(written.summary.checkpoints, 3);
}

pub(crate) fn summarises_tasks_and_lists_them_newest_first(h: &dyn Harness) {
    let store = h.store();
    for id in ["zeta", "alpha", "mid"] {
        running(&store, id, 1);
    }
    assert_eq!(ids(store.list().unwrap()), ["mid", "alpha", "zeta"]);
    running(&store, "zeta", 2);
    let listing = store.list().unwrap();
    assert_eq!(ids(listing.clone()), ["zeta", "mid", "alpha"]);
    let zeta = &listing.tasks[0];
    assert_eq!((zeta.latest_checkpoint, zeta.checkpoints), (2, 2));
    assert_eq!(zeta.progress.items_processed, 2);
    assert_eq!(store.summary(&task("zeta")).unwrap().as_ref(), Some(zeta));
}

pub(crate) fn removes_whole_tasks(h: &dyn Harness) {
    let store = h.store();
    running(&store, "alpha", 1);
    running(&store, "beta", 1);
    assert!(store.remove(&task("alpha")).unwrap());
    assert!(!store.remove(&task("alpha")).unwrap());
    assert_eq!(ids(store.list().unwrap()), ["beta"]);
    assert_eq!(
        running(&store, "alpha", 1).number,
        1,
        "a removed task starts over"
    );
}

pub(crate) fn cleans_up_by_the_rule_with_a_dry_run(h: &dyn Harness) {
    let store = h.store();
    running(&store, "running", 1);
    write(&store, "done", Status::Completed, 100, None);
    write(&store, "broken", Status::Failed, 3, None);
    let later = Utc::now() + chrono::Duration::days(8);
    let rule = CleanupRule {
        older_than: Duration::from_secs(7 * 86400),
        keep_failed: true,
        keep_completed: false,
        keep_running: false,
    };
    assert!(store.cleanup(&rule, Utc::now(), false).unwrap().is_empty());
    assert_eq!(
        store.cleanup(&rule, later, true).unwrap(),
        ["done", "running"]
    );
    assert_eq!(
        store.list().unwrap().tasks.len(),
        3,
        "a dry run removes nothing"
    );
    assert_eq!(
        store.cleanup(&rule, later, false).unwrap(),
        ["done", "running"]
    );
    assert_eq!(ids(store.list().unwrap()), ["broken"]);
}

pub(crate) fn never_gives_two_writers_one_number(h: &dyn Harness) {
    let store = Arc::new(h.store());
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                (0..10)
                    .map(|i| running(&store, "shared", i).number)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut numbers: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(numbers, (1..=80).collect::<Vec<_>>());
    assert_eq!(
        store.summary(&task("shared")).unwrap().unwrap().checkpoints,
        80
    );
}

pub(crate) fn tells_whether_a_checkpoint_is_still_the_newest(h: &dyn Harness) {
    let store = h.store();
    let first = running(&store, "alpha", 1);
    let alpha = task("alpha");
    let seal = store.read(&alpha, 1).unwrap().seal;
    assert_eq!(first.summary.seal, Some(seal));
    assert!(store.is_newest(&alpha, 1, seal).unwrap());
    running(&store, "alpha", 2);
    assert!(
        !store.is_newest(&alpha, 1, seal).unwrap(),
        "a newer one exists"
    );
    let seal = store.read(&alpha, 2).unwrap().seal;
    let bytes = h.bytes(&alpha, 2);
    h.damage(&alpha, 2, bytes[..bytes.len() - 10].to_vec());
    assert!(!store.is_newest(&alpha, 2, seal).unwrap(), "damaged since");
}

fn holder(pid: u32) -> claims::Holder {
    claims::Holder {
        host: "conformance".into(),
        pid,
        worker: "w1".into(),
    }
}

fn ask(run: u64, holder: &claims::Holder, lease_ns: i64) -> claims::Ask<'_> {
    claims::Ask {
        queue: "q",
        run,
        holder,
        lease_ns,
        retry_failed: false,
    }
}

fn taken(claimed: claims::Claimed) -> claims::Claim {
    match claimed {
        claims::Claimed::Taken(claim) => claim,
        other => panic!("expected the claim to be taken, got {other:?}"),
    }
}

const LEASE: i64 = 400_000_000; // 0.4 s

/// One worker holds a task until its lease expires; the next takes it with
/// a new token, and the first one's writes are refused from then on.
pub(crate) fn claims_exclude_then_hand_over_and_fence_the_old_holder(h: &dyn Harness) {
    let store = h.store();
    let alpha = task("alpha");
    let first = taken(store.claim(&alpha, &ask(1, &holder(1), LEASE)).unwrap());
    assert_eq!(first.token, 1);
    assert!(matches!(
        store.claim(&alpha, &ask(1, &holder(2), LEASE)).unwrap(),
        claims::Claimed::Held(_)
    ));
    write_for(&store, "alpha", Status::Running, 1, None, Some(1)).expect("the holder writes");
    std::thread::sleep(Duration::from_millis(450));
    let err = write_for(&store, "alpha", Status::Running, 2, None, Some(1)).unwrap_err();
    assert!(matches!(err, Error::LeaseLost { .. }), "expired: {err}");
    let second = taken(store.claim(&alpha, &ask(1, &holder(2), LEASE)).unwrap());
    assert_eq!(second.token, 2);
    assert_eq!(
        store.renew(&alpha, 1, LEASE, "0").unwrap(),
        claims::Renewed::Lost
    );
    let err = write_for(&store, "alpha", Status::Running, 2, None, Some(1)).unwrap_err();
    assert!(
        err.to_string().contains("another worker took it over"),
        "{err}"
    );
    assert_eq!(
        store.numbers(&alpha).unwrap(),
        vec![1],
        "the refused writes wrote nothing"
    );
    write_for(&store, "alpha", Status::Running, 2, None, Some(2)).expect("the new holder writes");
    assert_eq!(
        store.renew(&alpha, 2, LEASE, "1.5").unwrap(),
        claims::Renewed::Held { cancel: false }
    );
    assert_eq!(store.claim_of(&alpha).unwrap().unwrap().spent, "1.5");
    assert!(store.remove(&alpha).unwrap());
    assert_eq!(
        store.claim_of(&alpha).unwrap(),
        None,
        "removed with its task"
    );
}

/// A finished task stays finished in its run; a released one is taken at
/// once; a new run makes every task claimable again.
pub(crate) fn claims_end_release_and_start_over_in_a_new_run(h: &dyn Harness) {
    let store = h.store();
    let alpha = task("alpha");
    let claim = taken(store.claim(&alpha, &ask(1, &holder(1), LEASE)).unwrap());
    assert!(store.end_claim(&alpha, claim.token, None, "0.25").unwrap());
    let claim = taken(store.claim(&alpha, &ask(1, &holder(2), LEASE)).unwrap());
    assert_eq!(
        (claim.token, claim.spent.as_str()),
        (2, "0.25"),
        "released: taken at once"
    );
    assert!(store
        .end_claim(
            &alpha,
            claim.token,
            Some(claims::ClaimState::Completed),
            "0.5"
        )
        .unwrap());
    assert!(
        !store.end_claim(&alpha, claim.token, None, "0.5").unwrap(),
        "ended already"
    );
    assert!(matches!(
        store.claim(&alpha, &ask(1, &holder(3), LEASE)).unwrap(),
        claims::Claimed::Finished(c) if c.state == claims::ClaimState::Completed
    ));
    running(&store, "alpha", 1);
    let again = taken(store.claim(&alpha, &ask(2, &holder(3), LEASE)).unwrap());
    assert_eq!((again.run, again.token, again.spent.as_str()), (2, 3, "0"));
    assert_eq!(
        again.base,
        Some(1),
        "the newest checkpoint when the run took it"
    );
    write_for(&store, "alpha", Status::Running, 2, None, Some(3)).unwrap();
    assert!(store.end_claim(&alpha, 3, None, "0").unwrap());
    let taken_over = taken(store.claim(&alpha, &ask(2, &holder(4), LEASE)).unwrap());
    assert_eq!(
        (taken_over.attempt, taken_over.base),
        (2, Some(1)),
        "carried: checkpoint 2 is this run's"
    );
}

/// A cancel reaches a running task's holder at its next renewal, and
/// finishes a task no worker has taken as cancelled.
pub(crate) fn cancels_running_and_unclaimed_tasks(h: &dyn Harness) {
    let store = h.store();
    let (alpha, beta) = (task("alpha"), task("beta"));
    let claim = taken(store.claim(&alpha, &ask(1, &holder(1), LEASE)).unwrap());
    assert!(store.cancel(&alpha).unwrap().unwrap().cancel);
    assert_eq!(
        store.renew(&alpha, claim.token, LEASE, "0").unwrap(),
        claims::Renewed::Held { cancel: true }
    );
    assert!(store
        .end_claim(
            &alpha,
            claim.token,
            Some(claims::ClaimState::Cancelled),
            "0"
        )
        .unwrap());
    assert_eq!(
        store.cancel(&alpha).unwrap(),
        None,
        "finished: nothing to stop"
    );
    store.cancel(&beta).unwrap();
    match store.claim(&beta, &ask(1, &holder(2), LEASE)).unwrap() {
        claims::Claimed::Finished(c) => assert_eq!(c.state, claims::ClaimState::Cancelled),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.claim_of(&beta).unwrap().unwrap().state,
        claims::ClaimState::Cancelled
    );
}

/// Workers that start together share a run; a later `process` starts a new
/// one unless the run is live, and `resume` continues the open one.
pub(crate) fn queue_runs_are_shared_while_live(h: &dyn Harness) {
    let store = h.store();
    let queue = task("queue.q");
    let grace = 2_000_000_000;
    let first = store
        .enter_run(&queue, claims::RunEntry::JoinLive, grace)
        .unwrap();
    let second = store
        .enter_run(&queue, claims::RunEntry::JoinLive, grace)
        .unwrap();
    assert_eq!((first.run, second.run), (1, 1));
    let fresh = store
        .enter_run(&queue, claims::RunEntry::JoinLive, 0)
        .unwrap();
    assert_eq!(fresh.run, 2, "no grace, nobody live: a new run");
    store
        .touch_run(&queue, 2, claims::now_ns() + 10_000_000_000, false)
        .unwrap();
    assert_eq!(
        store
            .enter_run(&queue, claims::RunEntry::JoinLive, 0)
            .unwrap()
            .run,
        2
    );
    store.touch_run(&queue, 2, 0, true).unwrap();
    assert_eq!(
        store
            .enter_run(&queue, claims::RunEntry::Continue, 0)
            .unwrap()
            .run,
        3
    );
}

/// Many threads racing for one task: exactly one takes it.
pub(crate) fn one_of_many_racing_workers_takes_a_task(h: &dyn Harness) {
    let store = h.store();
    let taken_by: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                scope.spawn(move || {
                    matches!(
                        store
                            .claim(&task("alpha"), &ask(1, &holder(i), 10 * LEASE))
                            .unwrap(),
                        claims::Claimed::Taken(_)
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(taken_by.iter().filter(|t| **t).count(), 1);
}

/// One `#[test]` per behaviour above, for each backend: `$run` runs a
/// behaviour on a fresh store of that backend.
/// Writes `state` as the next checkpoint of `id`: whole, or as a delta
/// against `base` (the previous write) in the chain starting at `full`.
fn write_state(
    store: &Store,
    id: &str,
    state: &str,
    against: Option<(&Written, &str, u64)>,
    max: Option<u64>,
) -> Result<Written> {
    let draft = draft(id, Status::Running, 1, state);
    let mut doc = draft.to_document();
    let mut options = WriteOptions {
        max_checkpoints: max,
        ..WriteOptions::default()
    };
    if let Some((base, base_state, full)) = against {
        let record = crate::checkpoint::delta::DeltaRecord {
            base: base.number,
            full,
            ops: crate::checkpoint::delta::diff(base_state.as_bytes(), state.as_bytes()),
        };
        doc.replace_member("state", "delta", crate::checkpoint::json_bytes(&record));
        options.delta_base = Some(DeltaBase {
            number: base.number,
            seal: base.summary.seal.unwrap(),
            full,
        });
    }
    store.write_checkpoint(&task(id), &mut doc, &draft.facts(), &options)
}

fn state_at(store: &Store, id: &str, number: u64) -> String {
    let found = store.read(&task(id), number).unwrap();
    String::from_utf8(found.json[found.envelope.state.clone()].to_vec()).unwrap()
}

pub(crate) fn resolves_delta_chains_and_refuses_a_moved_base(h: &dyn Harness) {
    let store = h.store();
    let states: Vec<String> = (1..=5)
        .map(|n| format!(r#"{{"done":[{}]}}"#, "7,".repeat(n * 20) + "0"))
        .collect();
    let first = write_state(&store, "d", &states[0], None, None).unwrap();
    let mut last = first.clone();
    for pair in states.windows(2) {
        last = write_state(&store, "d", &pair[1], Some((&last, &pair[0], 1)), None).unwrap();
    }
    assert_eq!(last.number, 5);
    for (number, state) in (1..).zip(&states) {
        assert_eq!(&state_at(&store, "d", number), state);
        let found = store.read(&task("d"), number).unwrap();
        let chain = found.chain.map(|c| (c.full, c.links));
        assert_eq!(chain, (number > 1).then_some((1, number as u32 - 1)));
    }
    let latest = store.find(&task("d"), Pick::Latest).unwrap().found.unwrap();
    assert_eq!(latest.number, 5);
    // A delta against checkpoint 3 when 5 is the newest is refused, and
    // nothing is written.
    let third = Written {
        number: 3,
        summary: TaskSummary::naming("d", 3, store.read(&task("d"), 3).unwrap().seal),
        pruned: Vec::new(),
        warnings: Vec::new(),
    };
    let refused = write_state(&store, "d", &states[4], Some((&third, &states[2], 1)), None);
    assert!(
        matches!(refused, Err(Error::DeltaBaseMoved { base: 3, .. })),
        "{refused:?}"
    );
    assert_eq!(store.numbers(&task("d")).unwrap(), vec![1, 2, 3, 4, 5]);
    // Damage to a link breaks the ones after it; restore falls back.
    let mut bytes = h.bytes(&task("d"), 3);
    bytes.truncate(bytes.len() - 5);
    h.damage(&task("d"), 3, bytes);
    let lookup = store.find(&task("d"), Pick::Latest).unwrap();
    assert_eq!(lookup.found.map(|f| f.number), Some(2));
    let skipped: Vec<u64> = lookup.skipped.iter().map(|s| s.number).collect();
    assert_eq!(skipped, vec![5, 4, 3]);
    assert!(
        lookup.skipped[0].reason.contains("broken at checkpoint 3"),
        "{:?}",
        lookup.skipped
    );
}

pub(crate) fn retention_keeps_whole_chains(h: &dyn Harness) {
    let store = h.store();
    let state = |n: usize| format!(r#"{{"done":[{}]}}"#, "1,".repeat(n) + "0");
    // Chain 1..=4, then chain 5..=7; keep 2.
    let mut last = write_state(&store, "r", &state(1), None, Some(2)).unwrap();
    for n in 2..=4 {
        last = write_state(
            &store,
            "r",
            &state(n),
            Some((&last, &state(n - 1), 1)),
            Some(2),
        )
        .unwrap();
    }
    assert_eq!(store.numbers(&task("r")).unwrap(), vec![1, 2, 3, 4]);
    last = write_state(&store, "r", &state(5), None, Some(2)).unwrap();
    assert_eq!(
        store.numbers(&task("r")).unwrap(),
        vec![1, 2, 3, 4, 5],
        "4 is kept: 1 to 3 stay"
    );
    last = write_state(&store, "r", &state(6), Some((&last, &state(5), 5)), Some(2)).unwrap();
    assert_eq!(
        store.numbers(&task("r")).unwrap(),
        vec![5, 6],
        "the old chain goes whole"
    );
    write_state(&store, "r", &state(7), Some((&last, &state(6), 5)), Some(2)).unwrap();
    assert_eq!(store.numbers(&task("r")).unwrap(), vec![5, 6, 7]);
    for n in 5..=7 {
        assert_eq!(state_at(&store, "r", n as u64), state(n));
    }
}

macro_rules! backends {
    ($($backend:ident => $run:expr),* $(,)?) => {$(
        mod $backend {
            // Not every backend's runner names the harness types.
            #[allow(unused_imports)]
            use super::*;
            backends!(@tests $run;
                numbers_checkpoints_from_one_per_task,
                reads_nothing_that_is_not_there,
                skips_damaged_checkpoints_naming_them,
                picks_the_newest_good_checkpoint,
                keeps_the_newest_and_the_newest_good_when_pruning,
                summarises_tasks_and_lists_them_newest_first,
                removes_whole_tasks,
                cleans_up_by_the_rule_with_a_dry_run,
                never_gives_two_writers_one_number,
                tells_whether_a_checkpoint_is_still_the_newest,
                claims_exclude_then_hand_over_and_fence_the_old_holder,
                claims_end_release_and_start_over_in_a_new_run,
                cancels_running_and_unclaimed_tasks,
                queue_runs_are_shared_while_live,
                one_of_many_racing_workers_takes_a_task,
                resolves_delta_chains_and_refuses_a_moved_base,
                retention_keeps_whole_chains,
            );
        }
    )*};
    (@tests $run:expr; $($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            ($run)(super::$name);
        }
    )*};
}

backends! {
    file => |behaviour: fn(&dyn Harness)| behaviour(&FileHarness::new()),
    memory => |behaviour: fn(&dyn Harness)| behaviour(&MemoryHarness::new()),
    postgres => crate::store::postgres::tests::on_postgres,
}
