//! The document as written: an ordered list of members whose values are raw
//! JSON (the user's state borrowed, never copied), built from a session's
//! draft in the seed's order, plus what a failure records.

use std::borrow::Cow;
use std::io;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::{
    format_precise, format_timestamp, BudgetFigures, Host, Progress, Status, FORMAT_VERSION,
};

/// Why a checkpoint failed, as `checkpoint_error` records it.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ErrorInfo {
    pub(crate) class: String,
    pub(crate) message: String,
    pub(crate) backtrace: Vec<String>,
    /// Raw JSON of the item being processed, if given.
    #[serde(serialize_with = "raw_or_null")]
    pub(crate) item: Option<Box<RawValue>>,
    #[serde(serialize_with = "raw_or_null")]
    pub(crate) context: Option<Box<RawValue>>,
    /// What was recorded other than as given (an item that is not plain
    /// data is kept as its `inspect`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) notes: Vec<String>,
    /// The kinds nodes of `item` and `context` (see `kinds`).
    #[serde(skip)]
    pub(crate) item_kinds: Option<Vec<u8>>,
    #[serde(skip)]
    pub(crate) context_kinds: Option<Vec<u8>>,
}

impl ErrorInfo {
    /// The kinds node of the `error` member, if it has exceptions.
    pub(crate) fn kinds(&self) -> Option<Vec<u8>> {
        let parts: Vec<(&str, &[u8])> =
            [("item", &self.item_kinds), ("context", &self.context_kinds)]
                .into_iter()
                .filter_map(|(name, kinds)| kinds.as_deref().map(|k| (name, k)))
                .collect();
        crate::kinds::write::document(&parts)
    }
}

fn raw_or_null<S: Serializer>(
    raw: &Option<Box<RawValue>>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match raw {
        Some(raw) => raw.serialize(s),
        None => s.serialize_none(),
    }
}

/// A JSON object as an ordered list of members whose values are raw JSON.
/// Large values (the user's state) are borrowed, never copied.
#[derive(Debug, Clone, Default)]
pub struct Document<'a> {
    members: Vec<(Cow<'a, str>, Cow<'a, [u8]>)>,
}

pub fn json_bytes<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("plain data always serializes")
}

impl<'a> Document<'a> {
    pub(crate) fn new() -> Self {
        Document::default()
    }

    /// Sets a member to raw JSON, in place if present, else at the end.
    pub fn set_raw(&mut self, key: impl Into<Cow<'a, str>>, raw: impl Into<Cow<'a, [u8]>>) {
        let key = key.into();
        let raw = raw.into();
        match self.members.iter_mut().find(|(k, _)| *k == key) {
            Some(member) => member.1 = raw,
            None => self.members.push((key, raw)),
        }
    }

    /// Appends a member the caller knows is not there yet, without the
    /// search `set_raw` makes (which would make building a document of n
    /// members O(n²)).
    pub(crate) fn push_raw(&mut self, key: impl Into<Cow<'a, str>>, raw: impl Into<Cow<'a, [u8]>>) {
        self.members.push((key.into(), raw.into()));
    }

    /// Replaces member `key` with `new_key` and `raw`, in its place (a
    /// delta checkpoint's `delta` where a whole one has `state`).
    pub(crate) fn replace_member(
        &mut self,
        key: &str,
        new_key: impl Into<Cow<'a, str>>,
        raw: impl Into<Cow<'a, [u8]>>,
    ) {
        if let Some(member) = self.members.iter_mut().find(|(k, _)| *k == key) {
            *member = (new_key.into(), raw.into());
        }
    }

    /// The size of the finished JSON text, without its seal.
    pub(crate) fn byte_len(&self) -> usize {
        // `{"key":value` per member (keys need no escaping), and `}`.
        self.members
            .iter()
            .map(|(key, value)| key.len() + 4 + value.len())
            .sum::<usize>()
            + 1
    }

    pub fn set<T: Serialize + ?Sized>(&mut self, key: impl Into<Cow<'a, str>>, value: &T) {
        self.set_raw(key, json_bytes(value));
    }

    /// Writes `{"k":v,"k2":v2` — no closing brace: the seal closes it.
    pub(crate) fn write_open_object(
        &self,
        mut out: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        for (i, (key, value)) in self.members.iter().enumerate() {
            let mut head = Vec::with_capacity(key.len() + 4);
            head.push(if i == 0 { b'{' } else { b',' });
            head.extend_from_slice(&json_bytes(key.as_ref()));
            head.push(b':');
            out(&head)?;
            out(value)?;
        }
        if self.members.is_empty() {
            out(b"{")?;
        }
        Ok(())
    }

    /// The finished JSON text, without a seal (for tests and dry runs).
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.write_open_object(|chunk| {
            bytes.extend_from_slice(chunk);
            Ok(())
        })
        .expect("writing to a Vec cannot fail");
        bytes.push(b'}');
        bytes
    }
}

/// Everything a session checkpoint holds, before it has a number.
#[derive(Debug, Clone)]
pub struct Draft<'a> {
    pub task_id: &'a str,
    pub timestamp: DateTime<Utc>,
    pub status: Status,
    pub message: Option<&'a str>,
    pub progress: Progress,
    pub budget: BudgetFigures,
    /// The user's data, already validated raw JSON.
    pub state: &'a [u8],
    pub error: Option<&'a ErrorInfo>,
    /// The checkpoint whose state this one copies: `retry_of` when `retry`,
    /// else `rollback_of`.
    pub copy_of: Option<u64>,
    pub retry: bool,
    pub failures: u32,
    pub retries: u32,
    pub host: Host,
    /// When it is written, to the nanosecond (`timestamp` is whole seconds).
    pub written_at: DateTime<Utc>,
    /// The document's `ruby_kinds` node (see `kinds`), if it has exceptions.
    pub kinds: Option<&'a [u8]>,
}

impl<'a> Draft<'a> {
    pub fn to_document(&self) -> Document<'a> {
        let mut doc = Document::new();
        doc.set("task_id", self.task_id);
        doc.set("version", FORMAT_VERSION);
        doc.set("timestamp", &format_timestamp(self.timestamp));
        doc.set("sequence", &0u64); // the store numbers it under its lock
        doc.set("status", &self.status);
        doc.set("message", &self.message);
        doc.set("progress", &self.progress);
        doc.set_raw("budget", self.budget.exact_json());
        doc.set_raw("state", self.state);
        if let Some(error) = self.error {
            doc.set("error", error);
        }
        if let Some(number) = self.copy_of {
            doc.set(
                if self.retry {
                    "retry_of"
                } else {
                    "rollback_of"
                },
                &number,
            );
        }
        doc.set("failures", &self.failures);
        doc.set("retries", &self.retries);
        doc.set("metadata", &self.host);
        doc.set("written_at", &format_precise(self.written_at));
        if let Some(kinds) = self.kinds {
            doc.set_raw(KINDS_MEMBER, kinds);
        }
        doc
    }

    pub(crate) fn facts(&self) -> Facts {
        Facts {
            status: self.status,
            timestamp: format_timestamp(self.timestamp),
            progress: self.progress.clone(),
            budget: self.budget,
            message: self.message.map(str::to_owned),
            failures: self.failures,
            retries: self.retries,
            written_at: Some(format_precise(self.written_at)),
        }
    }
}

/// What the task summary (metadata.json, index.json) needs from a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub(crate) status: Status,
    pub(crate) timestamp: String,
    pub(crate) progress: Progress,
    pub(crate) budget: BudgetFigures,
    pub(crate) message: Option<String>,
    pub(crate) failures: u32,
    pub(crate) retries: u32,
    /// `written_at`, when the document has it (older ones do not).
    pub(crate) written_at: Option<String>,
}

/// The member that holds the document's key and value kinds (`kinds`).
pub(crate) const KINDS_MEMBER: &str = "ruby_kinds";
