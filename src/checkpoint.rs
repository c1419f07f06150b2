//! The checkpoint document: the seed's JSON format, written field by field in
//! the seed's order with the user's `state` passed through as raw JSON bytes,
//! and read back through a borrowing view that leaves `state` unparsed.

use std::borrow::Cow;
use std::io;
use std::sync::OnceLock;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::budget::Money;
use crate::error::{Error, Result};

/// What every file says in `"version"`.
pub const FORMAT_VERSION: &str = "52.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Running,
    Completed,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Progress {
    #[serde(default)]
    pub items_processed: u64,
    #[serde(default)]
    pub items_total: Option<u64>,
    #[serde(default, deserialize_with = "nearest_float")]
    pub percentage: Option<f64>,
}

/// A JSON number read as the nearest Float. serde_json's default parser
/// is one unit in the last place off for many numbers of 16 or 17 digits
/// (45.044444444444444 reads as 45.04444444444445), so a percentage did
/// not read back as written; Rust's own parser is correctly rounded.
/// (serde_json's `float_roundtrip` feature would do the same everywhere.)
fn nearest_float<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    use serde::de::Error as _;
    let Some(raw) = Option::<Box<RawValue>>::deserialize(d)? else {
        return Ok(None);
    };
    // serde_json says whether it is a number at all, and in range.
    serde_json::from_str::<f64>(raw.get()).map_err(D::Error::custom)?;
    raw.get().parse().map(Some).map_err(D::Error::custom)
}

impl Progress {
    /// Percentage rounded to two decimals; unknown without a total.
    pub fn new(items_processed: u64, items_total: Option<u64>) -> Progress {
        let percentage = items_total.map(|total| {
            if total == 0 {
                100.0
            } else {
                (items_processed as f64 * 10_000.0 / total as f64).round() / 100.0
            }
        });
        Progress {
            items_processed,
            items_total,
            percentage,
        }
    }
}

/// `{allocated, spent, remaining}` in dollars. A checkpoint holds them as
/// JSON numbers whose text is the exact decimal (2.13, 0.0000015, or all
/// 39 digits of a huge amount: [`BudgetFigures::exact_json`]), and they are
/// read back from that text exactly. `Serialize` gives Floats: the Ruby
/// hashes, and the summary caches, which are only ever shown.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BudgetFigures {
    pub allocated: Option<Money>,
    pub spent: Money,
    pub remaining: Option<Money>,
}

impl BudgetFigures {
    pub fn new(allocated: Option<Money>, spent: Money) -> BudgetFigures {
        BudgetFigures {
            allocated,
            spent,
            remaining: allocated.and_then(|a| a.checked_sub(spent)),
        }
    }

    /// `{"allocated":5.0,"spent":2.13,"remaining":2.87}` with every amount
    /// written as its exact decimal, which is a JSON number: what a
    /// checkpoint holds. (Through a Float, an amount of more than 15
    /// significant digits would come back changed.)
    pub fn exact_json(&self) -> Vec<u8> {
        let amount = |m: Option<Money>| m.map_or_else(|| "null".to_owned(), |m| m.to_string());
        format!(
            r#"{{"allocated":{},"spent":{},"remaining":{}}}"#,
            amount(self.allocated),
            self.spent,
            amount(self.remaining)
        )
        .into_bytes()
    }
}

#[derive(Serialize)]
struct BudgetJson {
    allocated: Option<f64>,
    spent: f64,
    remaining: Option<f64>,
}

/// The figures as read: each number's text, parsed exactly by
/// [`Money::from_json_number`]. `allocated`/`remaining` may be null or
/// absent; `spent` may be absent (zero) but not null.
#[derive(Deserialize)]
struct BudgetText {
    #[serde(default)]
    allocated: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    spent: Option<Box<RawValue>>,
    #[serde(default)]
    remaining: Option<Box<RawValue>>,
}

fn present<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

impl Serialize for BudgetFigures {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        BudgetJson {
            allocated: self.allocated.map(Money::to_f64),
            spent: self.spent.to_f64(),
            remaining: self.remaining.map(Money::to_f64),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for BudgetFigures {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let text = BudgetText::deserialize(d)?;
        let money = |name: &str, raw: Box<RawValue>| {
            Money::from_json_number(raw.get())
                .map_err(|e| D::Error::custom(format!("budget.{name}: {e}")))
        };
        Ok(BudgetFigures {
            allocated: text.allocated.map(|r| money("allocated", r)).transpose()?,
            spent: text.spent.map_or(Ok(Money::ZERO), |r| money("spent", r))?,
            remaining: text.remaining.map(|r| money("remaining", r)).transpose()?,
        })
    }
}

/// Who wrote a checkpoint: `metadata {hostname, user, pid}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Host {
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub pid: u32,
}

impl Host {
    pub fn current() -> Host {
        static NAMES: OnceLock<(String, String)> = OnceLock::new();
        let (hostname, user) = NAMES.get_or_init(|| (hostname(), user_name()));
        Host {
            hostname: hostname.clone(),
            user: user.clone(),
            // Not cached: a forked child writes its own pid.
            pid: std::process::id(),
        }
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if ok {
        String::from_utf8_lossy(&buf[..len]).into_owned()
    } else {
        "unknown".into()
    }
}

fn user_name() -> String {
    let uid = unsafe { libc::getuid() };
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        return name.to_string_lossy().into_owned();
    }
    std::env::var("USER").unwrap_or_else(|_| uid.to_string())
}

pub fn format_timestamp(time: DateTime<Utc>) -> String {
    // Whole seconds, `Z`: the seed's form, and what `jq fromdate` accepts.
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The time a checkpoint was written, to the nanosecond: what orders
/// checkpoints of different tasks by recency (two written in one second
/// have the same `timestamp`). Always nine digits, so the text sorts.
pub fn format_precise(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("timestamp {text:?} is not ISO 8601: {e}"))
}

/// JSON text as an error message shows it: cut short.
pub fn shown_json(json: &str) -> String {
    if json.chars().count() <= 80 {
        return json.to_owned();
    }
    let mut cut: String = json.chars().take(79).collect();
    cut.push('…');
    cut
}

/// Why a checkpoint failed, as `checkpoint_error` records it.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ErrorInfo {
    pub class: String,
    pub message: String,
    pub backtrace: Vec<String>,
    /// Raw JSON of the item being processed, if given.
    #[serde(serialize_with = "raw_or_null")]
    pub item: Option<Box<RawValue>>,
    #[serde(serialize_with = "raw_or_null")]
    pub context: Option<Box<RawValue>>,
    /// What was recorded other than as given (an item that is not plain
    /// data is kept as its `inspect`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The kinds nodes of `item` and `context` (see `kinds`).
    #[serde(skip)]
    pub item_kinds: Option<Vec<u8>>,
    #[serde(skip)]
    pub context_kinds: Option<Vec<u8>>,
}

impl ErrorInfo {
    /// The kinds node of the `error` member, if it has exceptions.
    pub fn kinds(&self) -> Option<Vec<u8>> {
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
    pub fn new() -> Self {
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
    pub fn push_raw(&mut self, key: impl Into<Cow<'a, str>>, raw: impl Into<Cow<'a, [u8]>>) {
        self.members.push((key.into(), raw.into()));
    }

    pub fn set<T: Serialize + ?Sized>(&mut self, key: impl Into<Cow<'a, str>>, value: &T) {
        self.set_raw(key, json_bytes(value));
    }

    pub fn contains(&self, key: &str) -> bool {
        self.members.iter().any(|(k, _)| k == key)
    }

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Writes `{"k":v,"k2":v2` — no closing brace: the seal closes it.
    pub fn write_open_object(
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

    pub fn facts(&self) -> Facts {
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
    pub status: Status,
    pub timestamp: String,
    pub progress: Progress,
    pub budget: BudgetFigures,
    pub message: Option<String>,
    pub failures: u32,
    pub retries: u32,
    /// `written_at`, when the document has it (older ones do not).
    pub written_at: Option<String>,
}

/// The member that holds the document's key and value kinds (`kinds`).
pub const KINDS_MEMBER: &str = "ruby_kinds";

/// A checkpoint file as read: envelope parsed, `state` and `error` left raw.
#[derive(Debug, Deserialize)]
pub struct CheckpointView<'a> {
    pub task_id: String,
    #[serde(default, deserialize_with = "lenient")]
    pub version: Option<String>,
    pub timestamp: String,
    #[serde(default)]
    pub sequence: Option<u64>,
    // The members below may hold anything a SessionPersistence.save caller
    // put there ("every key saved comes back equal"): a value of another
    // shape is kept in the file as given and read here as the default.
    #[serde(default, deserialize_with = "lenient")]
    pub status: Status,
    #[serde(default, deserialize_with = "lenient")]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "lenient_progress")]
    pub progress: Progress,
    #[serde(default, deserialize_with = "lenient")]
    pub budget: BudgetFigures,
    #[serde(borrow)]
    pub state: &'a RawValue,
    #[serde(default, borrow)]
    pub error: Option<&'a RawValue>,
    #[serde(default, deserialize_with = "lenient")]
    pub rollback_of: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    pub retry_of: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    pub failures: u32,
    #[serde(default, deserialize_with = "lenient")]
    pub retries: u32,
    #[serde(default, deserialize_with = "lenient")]
    pub metadata: Host,
    #[serde(default, deserialize_with = "lenient")]
    pub written_at: Option<String>,
    #[serde(default, borrow, rename = "ruby_kinds")]
    pub kinds: Option<&'a RawValue>,
}

/// A member read as `T` if it has that shape, else `T::default()`.
fn lenient<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned + Default,
{
    let raw = Box::<RawValue>::deserialize(d)?;
    Ok(serde_json::from_str(raw.get()).unwrap_or_default())
}

/// `progress` as the seed's object, or a bare count (`progress: 50`).
fn lenient_progress<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Progress, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    if let Ok(count) = serde_json::from_str::<u64>(raw.get()) {
        return Ok(Progress::new(count, None));
    }
    Ok(serde_json::from_str(raw.get()).unwrap_or_default())
}

impl<'a> CheckpointView<'a> {
    /// Parses and checks a document's shape; `Err` says what is wrong.
    pub fn parse(json: &'a [u8]) -> Result<CheckpointView<'a>, String> {
        let view: CheckpointView = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        parse_timestamp(&view.timestamp)?;
        if view.sequence == Some(u64::MAX) {
            // The store writes numbers that have a successor; the summaries
            // refuse this one too (`store::summary`).
            return Err(format!("sequence {} is not one the store writes", u64::MAX));
        }
        readable_json(view.state.get()).map_err(|e| format!("state cannot be read back: {e}"))?;
        if let Some(error) = view.error {
            readable_json(error.get()).map_err(|e| format!("error cannot be read back: {e}"))?;
        }
        if let Some(kinds) = view.kinds {
            crate::kinds::Kind::parse(kinds.get())?;
        }
        if let Some(at) = &view.written_at {
            parse_timestamp(at)?;
        }
        Ok(view)
    }

    pub fn time(&self) -> DateTime<Utc> {
        parse_timestamp(&self.timestamp).unwrap_or_default()
    }

    pub fn facts(&self) -> Facts {
        Facts {
            status: self.status,
            timestamp: self.timestamp.clone(),
            progress: self.progress.clone(),
            budget: self.budget,
            message: self.message.clone(),
            failures: self.failures,
            retries: self.retries,
            written_at: self.written_at.clone(),
        }
    }
}

/// Rejects state bytes that are not one JSON value restore can read back;
/// used where raw JSON comes from outside the Ruby converter.
pub fn validate_raw_json(bytes: &[u8]) -> Result<()> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::invalid(format!("data is not valid JSON: {e}")))?;
    readable_json(text).map_err(|e| Error::invalid(format!("data is not valid JSON: {e}")))
}

/// Whether restore can read this JSON back, checked the way it reads it
/// (`ruby_api::convert::from_json`: serde_json's `deserialize_any`, default
/// recursion limit of 128) but building nothing. A borrowed `RawValue` only
/// checks the syntax: a number out of range (`1e400`), an unpaired
/// `"\ud800"` or nesting deeper than the limit pass it, and a checkpoint
/// reported intact would then fail to restore instead of being skipped.
pub fn readable_json(json: &str) -> Result<(), String> {
    use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

    struct Value;
    struct Key;
    impl<'de> DeserializeSeed<'de> for Value {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
            d.deserialize_any(Value)
        }
    }
    impl<'de> DeserializeSeed<'de> for Key {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
            d.deserialize_str(Value)
        }
    }
    impl<'de> Visitor<'de> for Value {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> std::result::Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> std::result::Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> std::result::Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> std::result::Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> std::result::Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> std::result::Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
            while seq.next_element_seed(Value)?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
            while map.next_key_seed(Key)?.is_some() {
                map.next_value_seed(Value)?;
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_str(json);
    Value.deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft<'a>(state: &'a [u8], error: Option<&'a ErrorInfo>) -> Draft<'a> {
        Draft {
            task_id: "refactor-users-module",
            timestamp: parse_timestamp("2024-02-05T23:30:00Z").unwrap(),
            status: Status::Running,
            message: None,
            progress: Progress::new(45, Some(100)),
            budget: BudgetFigures::new(Some("5.0".parse().unwrap()), "2.13".parse().unwrap()),
            state,
            error,
            copy_of: None,
            retry: false,
            failures: 0,
            retries: 0,
            host: Host {
                hostname: "dev-machine".into(),
                user: "developer".into(),
                pid: 12345,
            },
            written_at: parse_timestamp("2024-02-05T23:30:00.5Z").unwrap(),
            kinds: None,
        }
    }

    #[test]
    fn writes_the_seed_document() {
        let state = br#"{"current_file":"app/models/user.rb"}"#;
        let json = draft(state, None).to_document().to_json();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["task_id"], "refactor-users-module");
        assert_eq!(value["version"], "52.0");
        assert_eq!(value["timestamp"], "2024-02-05T23:30:00Z");
        assert_eq!(value["progress"]["items_processed"], 45);
        assert_eq!(value["progress"]["items_total"], 100);
        assert_eq!(value["progress"]["percentage"], 45.0);
        assert_eq!(value["budget"]["allocated"], 5.0);
        assert_eq!(value["budget"]["spent"], 2.13);
        assert_eq!(value["budget"]["remaining"], 2.87);
        assert_eq!(value["state"]["current_file"], "app/models/user.rb");
        assert_eq!(value["metadata"]["hostname"], "dev-machine");
        assert_eq!(value["metadata"]["pid"], 12345);
        let keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        assert!(keys.contains(&"status".to_string()));
    }

    #[test]
    fn money_survives_the_round_trip_exactly() {
        let json = draft(b"{}", None).to_document().to_json();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(text.contains(r#""spent":2.13"#), "{text}");
        let view = CheckpointView::parse(&json).unwrap();
        assert_eq!(view.budget.spent, "2.13".parse().unwrap());
        assert_eq!(view.budget.remaining, Some("2.87".parse().unwrap()));
    }

    #[test]
    fn view_leaves_state_raw() {
        let state = br#"{"a":[1,2,{"b":"\u00e9"}]}"#;
        let json = draft(state, None).to_document().to_json();
        let view = CheckpointView::parse(&json).unwrap();
        assert_eq!(view.state.get().as_bytes(), state);
        assert_eq!(view.status, Status::Running);
    }

    #[test]
    fn error_member_is_written_for_failures() {
        let info = ErrorInfo {
            class: "RuntimeError".into(),
            message: "boom".into(),
            backtrace: vec!["x.rb:1".into()],
            item: Some(RawValue::from_string("\"a.rb\"".into()).unwrap()),
            ..ErrorInfo::default()
        };
        let mut d = draft(b"{}", Some(&info));
        d.status = Status::Failed;
        let json = d.to_document().to_json();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["status"], "failed");
        assert_eq!(value["error"]["class"], "RuntimeError");
        assert_eq!(value["error"]["item"], "a.rb");
        assert!(value["error"]["context"].is_null());
    }

    #[test]
    fn percentage_rounds_to_two_decimals() {
        assert_eq!(Progress::new(1, Some(3)).percentage, Some(33.33));
        assert_eq!(Progress::new(0, Some(0)).percentage, Some(100.0));
        assert_eq!(Progress::new(5, None).percentage, None);
    }

    #[test]
    fn shape_errors_are_reported() {
        assert!(CheckpointView::parse(br#"{"task_id":"t"}"#).is_err());
        let bad_time =
            br#"{"task_id":"t","timestamp":"yesterday","progress":{},"budget":{},"state":{}}"#;
        assert!(CheckpointView::parse(bad_time)
            .unwrap_err()
            .contains("ISO 8601"));
    }

    // Regression (fuzz/, money target): the budget went through a Float, so
    // an amount of more than 15 significant digits came back changed, and
    // a huge one written by the store did not read back at all.
    #[test]
    fn budget_is_written_and_read_back_exactly() {
        let mut d = draft(b"{}", None);
        for (allocated, spent) in [
            ("10000.333333333333", "12345.123456789012"),
            ("170141183460469231731687303.715884105727", "0.000000000001"),
            ("5", "-170141183460469231731687303.715884105727"),
            ("0.0000015", "0"),
        ] {
            d.budget = BudgetFigures::new(Some(allocated.parse().unwrap()), spent.parse().unwrap());
            let json = d.to_document().to_json();
            let text = String::from_utf8(json.clone()).unwrap();
            assert!(text.contains(&format!(r#""allocated":{}"#, d.budget.allocated.unwrap())));
            let view = CheckpointView::parse(&json).unwrap();
            assert_eq!(view.budget, d.budget, "{text}");
        }
        // The seed's form is unchanged.
        let json = draft(b"{}", None).to_document().to_json();
        let text = String::from_utf8(json).unwrap();
        assert!(text.contains(r#""budget":{"allocated":5.0,"spent":2.13,"remaining":2.87}"#));
    }

    #[test]
    fn budget_reads_any_json_number_and_defaults_the_rest() {
        let view = |budget: &str| {
            let json = format!(
                r#"{{"task_id":"t","timestamp":"2024-02-05T23:30:00Z","progress":{{}},"budget":{budget},"state":{{}}}}"#
            );
            CheckpointView::parse(json.as_bytes()).map(|v| v.budget)
        };
        let b = view(r#"{"allocated":5,"spent":1.5e-6,"remaining":null}"#).unwrap();
        assert_eq!(b.allocated, Some("5".parse().unwrap()));
        assert_eq!(b.spent, "0.0000015".parse().unwrap());
        assert_eq!(b.remaining, None);
        assert_eq!(view("{}").unwrap(), BudgetFigures::default());
        // A budget of another shape (a SessionPersistence.save caller's own
        // member) is kept in the file as given and read as no budget.
        for other in [
            r#"{"spent":null}"#,
            r#"{"spent":"2.13"}"#,
            r#"{"allocated":[5]}"#,
            r#"{"spent":1e400}"#,
            r#"{"spent":1,"spent":2}"#,
            r#""lots""#,
        ] {
            assert_eq!(view(other).unwrap(), BudgetFigures::default(), "{other}");
        }
    }

    // Regression (fuzz/, parse_checkpoint target): `state` and `error` were
    // only checked for syntax, so a checkpoint restore cannot read back
    // (`{"n":4e99999}`, an unpaired surrogate, nesting past serde_json's
    // limit) verified as intact, and restore failed on it instead of
    // skipping to the previous one.
    #[test]
    fn state_restore_cannot_read_is_refused() {
        let doc = |state: &str, error: &str| {
            format!(
                r#"{{"task_id":"t","timestamp":"2024-02-05T23:30:00Z","progress":{{}},"budget":{{}},"state":{state},"error":{error}}}"#
            )
        };
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        for state in [
            r#"{"big":46116e8601842738790}"#.to_owned(),
            "-1e400".to_owned(),
            r#"["\ud800"]"#.to_owned(),
            r#"{"\udc00":1}"#.to_owned(),
            deep(129),
        ] {
            let e = CheckpointView::parse(doc(&state, "null").as_bytes()).unwrap_err();
            assert!(e.contains("state cannot be read back"), "{state}: {e}");
            let e = CheckpointView::parse(doc("{}", &state).as_bytes()).unwrap_err();
            assert!(e.contains("error cannot be read back"), "{state}: {e}");
            assert!(validate_raw_json(state.as_bytes()).is_err());
        }
        for state in [
            deep(127),
            r#"{"a":[1e308,-0.0,18446744073709551616,"\ud83d\ude00"]}"#.to_owned(),
        ] {
            let json = doc(&state, "null");
            let view = CheckpointView::parse(json.as_bytes()).unwrap();
            assert_eq!(view.state.get(), state);
            assert!(validate_raw_json(state.as_bytes()).is_ok());
        }
    }

    // Regression (fuzz/, parse_checkpoint and persistence_document targets):
    // a percentage of 17 digits read back one unit in the last place off,
    // so metadata.json did not match the checkpoint it was made from.
    #[test]
    fn percentage_reads_back_as_written() {
        for percentage in [
            45.044444444444444,
            23.318446474073703,
            198.18453387344778,
            0.1,
        ] {
            let progress = Progress {
                items_processed: 1,
                items_total: None,
                percentage: Some(percentage),
            };
            let json = json_bytes(&progress);
            let back: Progress = serde_json::from_slice(&json).unwrap();
            assert_eq!(back, progress, "{}", String::from_utf8_lossy(&json));
        }
        let read = |json: &str| serde_json::from_str::<Progress>(json).map(|p| p.percentage);
        assert_eq!(read(r#"{"percentage":null}"#).unwrap(), None);
        assert_eq!(read("{}").unwrap(), None);
        assert_eq!(read(r#"{"percentage":5}"#).unwrap(), Some(5.0));
        assert_eq!(read(r#"{"percentage":-1E2}"#).unwrap(), Some(-100.0));
        for bad in [
            r#"{"percentage":"5"}"#,
            r#"{"percentage":1e400}"#,
            r#"{"percentage":[]}"#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }

    // With store::summary refusing a cache that names checkpoint
    // 18446744073709551615 (it has no successor; the store never writes
    // it), a checkpoint file saying it is that number is refused too,
    // rather than verified and then summarised in a cache that never reads
    // back.
    #[test]
    fn sequence_without_a_successor_is_refused() {
        let doc = |sequence: u64| {
            format!(
                r#"{{"task_id":"t","timestamp":"2024-02-05T23:30:00Z","sequence":{sequence},"progress":{{}},"budget":{{}},"state":{{}}}}"#
            )
        };
        let e = CheckpointView::parse(doc(u64::MAX).as_bytes()).unwrap_err();
        assert!(e.contains("not one the store writes"), "{e}");
        for fine in [0, 1, u64::MAX - 1] {
            let json = doc(fine);
            assert_eq!(
                CheckpointView::parse(json.as_bytes()).unwrap().sequence,
                Some(fine)
            );
        }
    }

    #[test]
    fn document_members_replace_in_place() {
        let mut doc = Document::new();
        doc.set("a", &1);
        doc.set("b", &2);
        doc.set("a", &3);
        assert_eq!(doc.to_json(), br#"{"a":3,"b":2}"#);
        assert_eq!(Document::new().to_json(), b"{}");
    }
}
