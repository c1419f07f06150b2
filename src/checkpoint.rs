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
    #[serde(default)]
    pub percentage: Option<f64>,
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

/// `{allocated, spent, remaining}` in dollars. Written as JSON numbers whose
/// text is the exact decimal (2.13), read back exactly.
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
}

#[derive(Serialize, Deserialize)]
struct BudgetJson {
    #[serde(default)]
    allocated: Option<f64>,
    #[serde(default)]
    spent: f64,
    #[serde(default)]
    remaining: Option<f64>,
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
        let json = BudgetJson::deserialize(d)?;
        let money = |f: f64| Money::from_f64(f).map_err(D::Error::custom);
        Ok(BudgetFigures {
            allocated: json.allocated.map(money).transpose()?,
            spent: money(json.spent)?,
            remaining: json.remaining.map(money).transpose()?,
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

pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("timestamp {text:?} is not ISO 8601: {e}"))
}

/// Why a checkpoint failed, as `checkpoint_error` records it.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorInfo {
    pub class: String,
    pub message: String,
    pub backtrace: Vec<String>,
    /// Raw JSON of the item being processed, if given.
    #[serde(serialize_with = "raw_or_null")]
    pub item: Option<Box<RawValue>>,
    #[serde(serialize_with = "raw_or_null")]
    pub context: Option<Box<RawValue>>,
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
    pub rollback_of: Option<u64>,
    pub failures: u32,
    pub retries: u32,
    pub host: Host,
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
        doc.set("budget", &self.budget);
        doc.set_raw("state", self.state);
        if let Some(error) = self.error {
            doc.set("error", error);
        }
        if let Some(number) = self.rollback_of {
            doc.set("rollback_of", &number);
        }
        doc.set("failures", &self.failures);
        doc.set("retries", &self.retries);
        doc.set("metadata", &self.host);
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
}

/// A checkpoint file as read: envelope parsed, `state` and `error` left raw.
#[derive(Debug, Deserialize)]
pub struct CheckpointView<'a> {
    pub task_id: String,
    #[serde(default)]
    pub version: Option<String>,
    pub timestamp: String,
    #[serde(default)]
    pub sequence: Option<u64>,
    #[serde(default)]
    pub status: Status,
    #[serde(default)]
    pub message: Option<String>,
    pub progress: Progress,
    pub budget: BudgetFigures,
    #[serde(borrow)]
    pub state: &'a RawValue,
    #[serde(default, borrow)]
    pub error: Option<&'a RawValue>,
    #[serde(default)]
    pub rollback_of: Option<u64>,
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub retries: u32,
    #[serde(default)]
    pub metadata: Host,
}

impl<'a> CheckpointView<'a> {
    /// Parses and checks a document's shape; `Err` says what is wrong.
    pub fn parse(json: &'a [u8]) -> Result<CheckpointView<'a>, String> {
        let view: CheckpointView = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        parse_timestamp(&view.timestamp)?;
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
        }
    }
}

/// Rejects state bytes that are not one JSON value; used where raw JSON
/// comes from outside the Ruby converter (the CLI's `--data`).
pub fn validate_raw_json(bytes: &[u8]) -> Result<()> {
    serde_json::from_slice::<&RawValue>(bytes)
        .map(|_| ())
        .map_err(|e| Error::invalid(format!("data is not valid JSON: {e}")))
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
            rollback_of: None,
            failures: 0,
            retries: 0,
            host: Host {
                hostname: "dev-machine".into(),
                user: "developer".into(),
                pid: 12345,
            },
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
            context: None,
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
