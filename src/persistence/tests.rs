use super::document::ENVELOPE;
use super::*;
use crate::store::file::tests::tempdir::TempDir;

fn temp_store() -> (TempDir, Persistence) {
    let dir = TempDir::new();
    let persistence = Persistence::open(&StoreSpec::File(dir.path().join("store"))).unwrap();
    (dir, persistence)
}

fn save(
    persistence: &Persistence,
    task: &TaskId,
    json: &[u8],
    kinds: Option<&[u8]>,
    options: &WriteOptions,
) -> Result<Written> {
    persistence.save(task, json, kinds, options)
}

#[test]
fn fills_the_envelope_and_keeps_every_given_member() {
    let (_tmp, store) = temp_store();
    let task = TaskId::parse("legacy").unwrap();
    let written = save(
        &store,
        &task,
        br#"{"answer":42,"state":{"k":[1]}}"#,
        None,
        &WriteOptions::default(),
    )
    .unwrap();
    assert_eq!(written.number, 1);
    let found = store.read(&task, 1).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&found.json).unwrap();
    assert_eq!(value["answer"], 42);
    assert_eq!(value["state"]["k"][0], 1);
    assert_eq!(value["task_id"], "legacy");
    assert_eq!(value["version"], "52.0");
    assert_eq!(value["progress"]["items_processed"], 0);
    assert!(value["metadata"]["pid"].is_u64());
}

// Regression (found reviewing the persistence_document target for
// hangs): each member was added after a search of the document, so a
// document of 160,000 members took a minute to build.
#[test]
fn a_document_of_many_members_is_built_in_linear_time() {
    let task = TaskId::parse("legacy").unwrap();
    let n = 200_000;
    let mut json = String::from(r#"{"state":[1],"k0":"first","#);
    for i in 0..n {
        json.push_str(&format!(r#""k{i}":{i},"#));
    }
    json.push_str(r#""status":"completed"}"#);
    let started = std::time::Instant::now();
    let doc = document(&task, json.as_bytes(), None).unwrap();
    // Linear: well under a second even unoptimised; quadratic: minutes.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let value: serde_json::Value = serde_json::from_slice(&doc.to_json()).unwrap();
    let object = value.as_object().unwrap();
    assert_eq!(object.len(), ENVELOPE.len() + n + 1, "and written_at");
    assert_eq!(object["k0"], "first", "the first of a repeated key wins");
    assert_eq!(object["k199999"], 199_999);
    assert_eq!(object["status"], "completed");
    assert_eq!(object["state"][0], 1);
}

#[test]
fn keeps_members_the_store_does_not_read_as_given() {
    let (_tmp, store) = temp_store();
    let task = TaskId::parse("legacy").unwrap();
    let doc = br#"{"progress":50,"metadata":[1],"notes":{"a":1}}"#;
    save(&store, &task, doc, None, &WriteOptions::default()).unwrap();
    let found = store.read(&task, 1).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&found.json).unwrap();
    assert_eq!(value["progress"], 50);
    assert_eq!(value["metadata"], serde_json::json!([1]));
    let view = found.view();
    assert_eq!(
        view.progress.items_processed, 50,
        "a bare count is the progress"
    );
}

// Regression (issue 8): `status: "weird"` and `budget: {spent: "lots"}`
// were stored and read back as running and $0.00.
#[test]
fn refuses_members_the_store_would_read_as_something_else() {
    let (_tmp, store) = temp_store();
    let task = TaskId::parse("legacy").unwrap();
    for (bad, named) in [
        (&br#"{"status":"weird"}"#[..], "data[:status]"),
        (br#"{"budget":{"spent":"lots"}}"#, "data[:budget]"),
        (br#"{"budget":"lots"}"#, "data[:budget]"),
        (br#"{"progress":-1}"#, "data[:progress]"),
        (
            br#"{"progress":{"items_processed":"x"}}"#,
            "data[:progress]",
        ),
        (br#"{"message":5}"#, "data[:message]"),
        (br#"{"failures":-2}"#, "data[:failures]"),
        (br#"{"rollback_of":0}"#, "data[:rollback_of]"),
    ] {
        let err = save(&store, &task, bad, None, &WriteOptions::default()).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with(named), "{text}");
        assert!(text.contains("got"), "{text}");
    }
    assert!(store.numbers(&task).unwrap().is_empty(), "nothing written");
    let fine = br#"{"status":"completed","budget":{"allocated":5,"spent":2.13},"message":null}"#;
    save(&store, &task, fine, None, &WriteOptions::default()).unwrap();
}

#[test]
fn refuses_what_would_not_come_back() {
    let (_tmp, store) = temp_store();
    let task = TaskId::parse("legacy").unwrap();
    let options = WriteOptions::default();
    for bad in [
        &br#"[1,2]"#[..],
        br#"{"checksum":"x"}"#,
        br#"{"task_id":"other"}"#,
        br#"{"timestamp":"yesterday"}"#,
    ] {
        assert!(matches!(
            save(&store, &task, bad, None, &options),
            Err(Error::InvalidArgument(_))
        ));
    }
    assert!(store.numbers(&task).unwrap().is_empty(), "nothing written");
}
