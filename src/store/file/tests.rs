//! What only the file store has: files, modes, caches, links, locks.
//! (What every backend does is in `store::conformance`.)
//!
//! (Longer than most files here: these are tests, one per behaviour, each
//! reading on its own; `tempdir` is shared with the other suites.)

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::*;
use crate::checkpoint::{BudgetFigures, Draft, Host, Progress, Status};
use crate::error::Error;
use crate::store::{CleanupRule, Listing, Pick, Store};

/// A file store and its handle: the handle for what any backend does, the
/// file store for where its files are.
pub(crate) struct Files {
    files: FileStore,
    store: Store,
}

impl std::ops::Deref for Files {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

impl Files {
    fn new(files: FileStore) -> Files {
        let store = Store::from_backend(Arc::new(files.clone()));
        Files { files, store }
    }

    pub(crate) fn root(&self) -> &Path {
        self.files.root()
    }

    pub(crate) fn checkpoint_path(&self, task: &TaskId, number: u64) -> PathBuf {
        self.files.checkpoint_path(task, number)
    }

    fn with_eager_index_limit(self, bytes: u64) -> Files {
        Files::new(self.files.with_eager_index_limit(bytes))
    }

    fn cleanup_now(&self, rule: &CleanupRule, now: chrono::DateTime<Utc>) -> Vec<String> {
        self.store.cleanup(rule, now, false).unwrap()
    }
}

pub(crate) fn temp_store() -> (tempdir::TempDir, Files) {
    let dir = tempdir::TempDir::new();
    let files = FileStore::new(&dir.path().join(".master_checkpoints")).unwrap();
    (dir, Files::new(files))
}

/// A throwaway directory removed on drop (no extra crate for it).
pub(crate) mod tempdir {
    use std::path::{Path, PathBuf};

    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new() -> TempDir {
            use std::sync::atomic::{AtomicU64, Ordering};
            static N: AtomicU64 = AtomicU64::new(0);
            let path = std::env::temp_dir().join(format!(
                "master-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn task(id: &str) -> TaskId {
    TaskId::parse(id).unwrap()
}

fn write(
    store: &Files,
    id: &str,
    status: Status,
    processed: u64,
    state: &str,
    max: Option<u64>,
) -> Written {
    let draft = Draft {
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
        written_at: chrono::Utc::now(),
        kinds: None,
        failures: 0,
        retries: 0,
        host: Host::current(),
    };
    let mut doc = draft.to_document();
    let options = WriteOptions {
        max_checkpoints: max,
        ..WriteOptions::default()
    };
    store
        .write_checkpoint(&task(id), &mut doc, &draft.facts(), &options)
        .unwrap()
}

fn running(store: &Files, id: &str, processed: u64) -> Written {
    write(store, id, Status::Running, processed, r#"{"n":1}"#, None)
}

fn files_in(path: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn writes_numbered_files_with_metadata_and_index() {
    let (_tmp, store) = temp_store();
    assert_eq!(running(&store, "alpha", 1).number, 1);
    assert_eq!(running(&store, "alpha", 2).number, 2);
    assert_eq!(running(&store, "beta", 1).number, 1);
    let alpha = store.root().join("alpha");
    assert_eq!(
        files_in(&alpha),
        [
            "checkpoint_001.json",
            "checkpoint_002.json",
            "metadata.json"
        ]
    );
    assert_eq!(files_in(store.root()), ["alpha", "beta", "index.json"]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.root().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["tasks"]["alpha"]["latest_checkpoint"], 2);
    assert_eq!(index["tasks"]["beta"]["progress"]["items_processed"], 1);
}

#[test]
fn files_are_private() {
    let (_tmp, store) = temp_store();
    running(&store, "alpha", 1);
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(store.root().to_path_buf()), 0o700);
    assert_eq!(mode(store.root().join("alpha")), 0o700);
    assert_eq!(mode(store.checkpoint_path(&task("alpha"), 1)), 0o600);
    assert_eq!(mode(store.root().join("alpha/metadata.json")), 0o600);
    assert_eq!(mode(store.root().join("index.json")), 0o600);
}

#[test]
fn a_file_renamed_to_another_number_or_task_is_refused() {
    let (_tmp, store) = temp_store();
    running(&store, "alpha", 1);
    running(&store, "beta", 1);
    let alpha1 = store.checkpoint_path(&task("alpha"), 1);
    std::fs::copy(&alpha1, store.checkpoint_path(&task("alpha"), 2)).unwrap();
    std::fs::copy(&alpha1, store.checkpoint_path(&task("beta"), 2)).unwrap();
    let err = store.read(&task("alpha"), 2).unwrap_err().to_string();
    assert!(err.contains("says it is checkpoint"), "{err}");
    let err = store.read(&task("beta"), 2).unwrap_err().to_string();
    assert!(err.contains("belongs to task"), "{err}");
}

#[test]
fn numbering_continues_past_999() {
    let (_tmp, store) = temp_store();
    let dir = store.root().join("alpha");
    running(&store, "alpha", 1);
    std::fs::rename(
        store.checkpoint_path(&task("alpha"), 1),
        dir.join("checkpoint_998.json"),
    )
    .unwrap();
    // The renamed file no longer matches its number, but it still takes the slot.
    assert_eq!(running(&store, "alpha", 2).number, 999);
    assert_eq!(running(&store, "alpha", 3).number, 1000);
    assert!(dir.join("checkpoint_1000.json").exists());
}

#[test]
fn leftover_temp_files_are_removed_by_the_next_writer() {
    let (_tmp, store) = temp_store();
    running(&store, "alpha", 1);
    let dir = store.root().join("alpha");
    std::fs::write(dir.join(".checkpoint_002.json.999.0.tmp"), b"half").unwrap();
    running(&store, "alpha", 2);
    assert!(files_in(&dir).iter().all(|n| !n.ends_with(".tmp")));
}

#[test]
fn symlinks_inside_the_store_are_never_followed() {
    let (tmp, store) = temp_store();
    running(&store, "alpha", 1);
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, store.root().join("evil")).unwrap();
    let err = store.find(&task("evil"), Pick::Latest).unwrap_err();
    assert!(matches!(err, Error::UnsafeStore { .. }), "{err}");
    let draft_err =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| running(&store, "evil", 1)));
    assert!(draft_err.is_err());
    assert!(
        files_in(&outside).is_empty(),
        "nothing written through the link"
    );

    // A checkpoint file replaced by a link to a file outside.
    let secret = tmp.path().join("secret.json");
    std::fs::write(&secret, b"{}").unwrap();
    let first = store.checkpoint_path(&task("alpha"), 1);
    std::fs::remove_file(&first).unwrap();
    std::os::unix::fs::symlink(&secret, &first).unwrap();
    assert!(store.read(&task("alpha"), 1).is_err());
    let listing = store.list().unwrap();
    assert!(listing.warnings.iter().any(|w| w.contains("symbolic link")));
}

#[test]
fn list_is_newest_first_and_survives_a_lost_index() {
    let (_tmp, store) = temp_store();
    running(&store, "alpha", 1);
    std::thread::sleep(Duration::from_millis(1100));
    running(&store, "beta", 1);
    let ids = |l: Listing| l.tasks.into_iter().map(|t| t.task_id).collect::<Vec<_>>();
    assert_eq!(ids(store.list().unwrap()), ["beta", "alpha"]);
    std::fs::remove_file(store.root().join("index.json")).unwrap();
    assert_eq!(ids(store.list().unwrap()), ["beta", "alpha"]);
    assert!(store.root().join("index.json").exists(), "rebuilt");
    std::fs::write(store.root().join("index.json"), b"{\"tasks\":").unwrap();
    assert_eq!(ids(store.list().unwrap()), ["beta", "alpha"]);
}

#[test]
fn stale_caches_are_detected_and_rebuilt() {
    let (_tmp, store) = temp_store();
    running(&store, "alpha", 1);
    let saved_meta = std::fs::read(store.root().join("alpha/metadata.json")).unwrap();
    let saved_index = std::fs::read(store.root().join("index.json")).unwrap();
    running(&store, "alpha", 2);
    // As if the writer died right after its commit: caches name checkpoint 1.
    std::fs::write(store.root().join("alpha/metadata.json"), saved_meta).unwrap();
    std::fs::write(store.root().join("index.json"), saved_index).unwrap();
    let summary = store.summary(&task("alpha")).unwrap().unwrap();
    assert_eq!(summary.latest_checkpoint, 2);
    assert_eq!(summary.progress.items_processed, 2);
    let listing = store.list().unwrap();
    assert_eq!(listing.tasks[0].latest_checkpoint, 2);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.root().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["tasks"]["alpha"]["latest_checkpoint"], 2);
}

#[test]
fn remove_takes_the_whole_task() {
    let (_tmp, store) = temp_store();
    running(&store, "alpha", 1);
    running(&store, "beta", 1);
    assert!(store.remove(&task("alpha")).unwrap());
    assert!(!store.remove(&task("alpha")).unwrap());
    assert_eq!(files_in(store.root()), ["beta", "index.json"]);
    assert_eq!(store.list().unwrap().tasks.len(), 1);
    assert_eq!(
        running(&store, "alpha", 1).number,
        1,
        "a removed task starts over"
    );
}

#[test]
fn a_missing_store_reads_as_empty() {
    let (_tmp, store) = temp_store();
    assert!(store.list().unwrap().tasks.is_empty());
    assert!(store
        .find(&task("alpha"), Pick::Latest)
        .unwrap()
        .found
        .is_none());
    assert!(store.summary(&task("alpha")).unwrap().is_none());
    assert!(!store.root().exists(), "reading creates nothing");
}

#[test]
fn a_large_index_is_left_to_list_which_repairs_it() {
    let (_tmp, store) = temp_store();
    let store = store.with_eager_index_limit(2000);
    for i in 0..10 {
        running(&store, &format!("task-{i}"), 1);
    }
    let index_path = store.root().join("index.json");
    let before = std::fs::read(&index_path).unwrap();
    assert!(before.len() > 2000, "the index grew past the limit");
    running(&store, "task-3", 2);
    running(&store, "brand-new", 1);
    assert_eq!(
        std::fs::read(&index_path).unwrap(),
        before,
        "writers left it alone"
    );
    let listing = store.list().unwrap();
    let row = |id: &str| listing.tasks.iter().find(|t| t.task_id == id).cloned();
    assert_eq!(row("task-3").unwrap().latest_checkpoint, 2);
    assert!(row("brand-new").is_some());
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    assert_eq!(
        index["tasks"]["task-3"]["latest_checkpoint"], 2,
        "list repaired it"
    );
    assert!(index["tasks"]["brand-new"].is_object());
    assert!(store.remove(&task("task-5")).unwrap());
    assert!(store
        .list()
        .unwrap()
        .tasks
        .iter()
        .all(|t| t.task_id != "task-5"));
}

#[test]
fn entries_that_only_look_like_checkpoints_are_reported_and_never_reused() {
    let (tmp, store) = temp_store();
    running(&store, "alpha", 1);
    let outside = tmp.path().join("bait.json");
    std::fs::copy(store.checkpoint_path(&task("alpha"), 1), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, store.checkpoint_path(&task("alpha"), 2)).unwrap();
    let lookup = store.find(&task("alpha"), Pick::Latest).unwrap();
    assert_eq!(lookup.found.unwrap().number, 1);
    assert_eq!(lookup.skipped.len(), 1);
    assert!(
        lookup.skipped[0].reason.contains("symbolic link"),
        "{:?}",
        lookup.skipped
    );
    assert_eq!(
        running(&store, "alpha", 3).number,
        3,
        "the planted number is not written over"
    );
    assert!(
        std::fs::symlink_metadata(store.checkpoint_path(&task("alpha"), 2))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn caches_that_are_not_the_stores_own_are_replaced_and_reported() {
    let (tmp, store) = temp_store();
    running(&store, "alpha", 1);
    let bait = tmp.path().join("bait");
    std::fs::write(&bait, b"outside").unwrap();
    let meta = store.root().join("alpha/metadata.json");
    std::fs::remove_file(&meta).unwrap();
    std::fs::hard_link(&bait, &meta).unwrap();
    let index = store.root().join("index.json");
    std::fs::remove_file(&index).unwrap();
    std::os::unix::fs::symlink(&bait, &index).unwrap();

    let (summary, warnings) = store.summary_with_warnings(&task("alpha")).unwrap();
    assert_eq!(summary.unwrap().latest_checkpoint, 1);
    assert!(
        warnings.iter().any(|w| w.contains("hard links")),
        "{warnings:?}"
    );
    let listing = store.list().unwrap();
    assert!(
        listing.warnings.iter().any(|w| w.contains("symbolic link")),
        "{:?}",
        listing.warnings
    );

    running(&store, "alpha", 2);
    assert_eq!(
        std::fs::read(&bait).unwrap(),
        b"outside",
        "nothing written through a link"
    );
    assert!(!std::fs::symlink_metadata(&index)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::metadata(&meta).unwrap().nlink(), 1);
    assert!(store.list().unwrap().warnings.is_empty());
}

#[test]
fn a_huge_age_removes_nothing_and_numbers_never_overflow() {
    let (_tmp, store) = temp_store();
    write(&store, "done", Status::Completed, 1, "{}", None);
    let rule = CleanupRule {
        older_than: Duration::from_secs(u64::MAX / 1000),
        keep_failed: false,
        keep_completed: false,
        keep_running: false,
    };
    assert!(
        store.cleanup_now(&rule, Utc::now()).is_empty(),
        "no checkpoint is that old"
    );
    let dir = store.root().join("done");
    std::fs::write(dir.join("checkpoint_18446744073709551614.json"), b"{}").unwrap();
    let err = store
        .write_checkpoint(
            &task("done"),
            &mut crate::checkpoint::Document::new(),
            &Draft {
                task_id: "done",
                timestamp: Utc::now(),
                status: Status::Running,
                message: None,
                progress: Progress::new(1, None),
                budget: BudgetFigures::default(),
                state: b"{}",
                error: None,
                copy_of: None,
                retry: false,
                written_at: chrono::Utc::now(),
                kinds: None,
                failures: 0,
                retries: 0,
                host: Host::current(),
            }
            .facts(),
            &WriteOptions::default(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("last number"), "{err}");
}
