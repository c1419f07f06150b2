//! `SessionPersistence.save`: a caller's own document stored as the next
//! checkpoint, with the envelope members it lacks filled in, so that every
//! member it gave comes back equal and the file still reads as a checkpoint.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use chrono::Utc;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::checkpoint::Facts;
use crate::checkpoint::{
    format_precise, format_timestamp, json_bytes, BudgetFigures, CheckpointView, Document, Host,
    Progress, Status, FORMAT_VERSION, KINDS_MEMBER,
};
use crate::error::{Error, Result};
use crate::session::{Data, RawJson};
use crate::store::layout::TaskId;
use crate::store::{Skipped, Store, WriteOptions, Written};

/// Members the store writes itself.
const RESERVED: [&str; 4] = ["checksum", "sequence", "written_at", KINDS_MEMBER];

/// Members the store reads, and what they must hold to be read as given:
/// a value of another shape is refused on save, never kept and then read
/// back as something else.
const INTERPRETED: [(&str, &str); 8] = [
    ("status", r#""running", "completed" or "failed""#),
    (
        "progress",
        "a count of items, or {items_processed: N, items_total: N or nil, percentage: Float or nil}",
    ),
    (
        "budget",
        "{allocated: dollars or nil, spent: dollars, remaining: dollars or nil} (numbers)",
    ),
    ("message", "a String or nil"),
    ("failures", "a count (a non-negative Integer)"),
    ("retries", "a count (a non-negative Integer)"),
    ("rollback_of", "a checkpoint number"),
    ("retry_of", "a checkpoint number"),
];

/// Why `raw`, given as member `key`, would not be read back as given.
fn misread(key: &str, raw: &RawValue) -> Option<&'static str> {
    let json = raw.get();
    let fits = match key {
        "status" => serde_json::from_str::<Status>(json).is_ok(),
        "progress" => {
            serde_json::from_str::<u64>(json).is_ok()
                || serde_json::from_str::<Progress>(json).is_ok()
        }
        "budget" => serde_json::from_str::<BudgetFigures>(json).is_ok(),
        "message" => serde_json::from_str::<Option<String>>(json).is_ok(),
        "failures" | "retries" => serde_json::from_str::<u32>(json).is_ok(),
        "rollback_of" | "retry_of" => serde_json::from_str::<u64>(json).is_ok_and(|n| n > 0),
        _ => true,
    };
    if fits {
        return None;
    }
    INTERPRETED
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, expected)| *expected)
}

/// The members `document` always writes (given or filled in), in order.
pub const ENVELOPE: [&str; 9] = [
    "task_id",
    "version",
    "timestamp",
    "sequence",
    "status",
    "progress",
    "budget",
    "state",
    "metadata",
];

/// A JSON object's members in their order, values left raw.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct MembersVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for MembersVisitor<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Members<'a>, A::Error> {
                let mut members = Vec::new();
                while let Some((key, value)) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(MembersVisitor(std::marker::PhantomData))
    }
}

/// Builds the document to store for `task` from the caller's JSON object
/// and its kinds node (`crate::kinds`), kept as the document's `ruby_kinds`.
pub fn document<'a>(
    task: &TaskId,
    user_json: &'a [u8],
    user_kinds: Option<&'a [u8]>,
) -> Result<Document<'a>> {
    let members: Members = serde_json::from_slice(user_json)
        .map_err(|_| Error::invalid("data must be a Hash (it becomes the checkpoint document)"))?;
    for (key, value) in &members.0 {
        if RESERVED.contains(&key.as_ref()) {
            return Err(Error::invalid(format!(
                "data[:{key}] is written by the store itself; remove it from data"
            )));
        }
        if let Some(expected) = misread(key, value) {
            return Err(Error::invalid(format!(
                "data[:{key}] must be {expected}, since the store reads it; got {}",
                crate::checkpoint::shown_json(value.get())
            )));
        }
        if key == "task_id" {
            let given: Option<String> = serde_json::from_str(value.get()).ok();
            if given.as_deref() != Some(task.as_str()) {
                return Err(Error::invalid(format!(
                    "data[:task_id] is {} but the checkpoint id is {:?}; drop it or make them match",
                    value.get(),
                    task.as_str()
                )));
            }
        }
    }
    let given = |name: &str| {
        members
            .0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.get().as_bytes())
    };
    let mut doc = Document::new();
    let envelope = |doc: &mut Document<'a>, name: &'static str, default: Vec<u8>| match given(name)
    {
        Some(raw) => doc.set_raw(name, raw),
        None => doc.set_raw(name, default),
    };
    envelope(&mut doc, "task_id", json_bytes(task.as_str()));
    envelope(&mut doc, "version", json_bytes(FORMAT_VERSION));
    envelope(
        &mut doc,
        "timestamp",
        json_bytes(&format_timestamp(Utc::now())),
    );
    doc.set("sequence", &0u64);
    envelope(&mut doc, "status", json_bytes("running"));
    envelope(&mut doc, "progress", json_bytes(&Progress::default()));
    envelope(&mut doc, "budget", json_bytes(&BudgetFigures::default()));
    envelope(&mut doc, "state", b"{}".to_vec());
    envelope(&mut doc, "metadata", json_bytes(&Host::current()));
    // The caller's other members in their order, the first of a repeated
    // key winning as for the envelope's. A set, not a search of the
    // document per member: a document of n members costs O(n), not O(n²)
    // (160,000 members took a minute).
    let mut present: HashSet<&str> = ENVELOPE.into_iter().collect();
    for (key, value) in &members.0 {
        if present.insert(key.as_ref()) {
            doc.push_raw(key.clone(), value.get().as_bytes());
        }
    }
    doc.push_raw("written_at", json_bytes(&format_precise(Utc::now())));
    if let Some(kinds) = user_kinds {
        doc.push_raw(KINDS_MEMBER, kinds);
    }
    Ok(doc)
}

/// One checkpoint of a task's history, as `bin/cli checkpoint show` lists
/// it: what its envelope says (never its state, which may be large), or
/// why it is damaged.
#[derive(Debug, Clone)]
pub enum HistoryEntry {
    Intact {
        number: u64,
        facts: Box<Facts>,
        error: Option<Data>,
        copy_of: Option<u64>,
    },
    Damaged(Skipped),
}

/// Every checkpoint of `task`, oldest first. Each is verified as a restore
/// would; only its envelope is kept, so memory stays one file's worth.
pub fn history(store: &Store, task: &TaskId) -> Result<Vec<HistoryEntry>> {
    let mut entries = Vec::new();
    for number in store.numbers(task)? {
        match store.read(task, number) {
            Ok(found) => {
                let error = found.envelope.error.clone().map(|range| Data {
                    json: RawJson::new(found.json[range].to_vec()),
                    kinds: found
                        .envelope
                        .error_kinds
                        .clone()
                        .map(|k| RawJson::new(found.json[k].to_vec())),
                });
                entries.push(HistoryEntry::Intact {
                    number,
                    facts: Box::new(found.envelope.facts),
                    error,
                    copy_of: found.envelope.copy_of,
                });
            }
            Err(Error::NotFound(_)) => {} // pruned meanwhile
            Err(Error::Corrupt { reason, path, .. }) => {
                entries.push(HistoryEntry::Damaged(Skipped {
                    number,
                    reason,
                    path,
                }))
            }
            // Something else in a checkpoint's place (a directory, a FIFO,
            // an unreadable file) is marked, and the others still listed.
            Err(e) => entries.push(HistoryEntry::Damaged(Skipped {
                number,
                reason: e.to_string(),
                path: store.checkpoint_path(task, number),
            })),
        }
    }
    Ok(entries)
}

/// Stores the caller's document as the next checkpoint of `task`.
pub fn save(
    store: &Store,
    task: &TaskId,
    user_json: &[u8],
    user_kinds: Option<&[u8]>,
    options: &WriteOptions,
) -> Result<Written> {
    let mut doc = document(task, user_json, user_kinds)?;
    let json = doc.to_json();
    let view = CheckpointView::parse(&json).map_err(|e| {
        Error::invalid(format!(
            "data does not fit the checkpoint format ({e}); progress must be like \
             {{items_processed: 45, items_total: 100}} and budget like {{allocated: 5.0, spent: 2.13}}"
        ))
    })?;
    let facts = view.facts();
    store.write_checkpoint(task, &mut doc, &facts, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::temp_store;

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
        let fine =
            br#"{"status":"completed","budget":{"allocated":5,"spent":2.13},"message":null}"#;
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
}
