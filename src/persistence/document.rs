//! The document `SessionPersistence.save` stores: the caller's own Hash,
//! with the envelope members it lacks filled in, so that every member it
//! gave comes back equal and the document still reads as a checkpoint.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use chrono::Utc;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::checkpoint::{
    format_precise, format_timestamp, json_bytes, BudgetFigures, Document, Host, Progress, Status,
    FORMAT_VERSION, KINDS_MEMBER,
};
use crate::error::{Error, Result};
use crate::store::layout::TaskId;

/// Members the store writes itself (`delta` marks a delta checkpoint).
const RESERVED: [&str; 5] = ["checksum", "sequence", "written_at", "delta", KINDS_MEMBER];

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
