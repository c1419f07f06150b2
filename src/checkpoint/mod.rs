//! The checkpoint document: the seed's JSON format, written field by field in
//! the seed's order with the user's `state` passed through as raw JSON bytes,
//! and read back through a borrowing view that leaves `state` unparsed.

pub(crate) mod delta;
mod document;
mod host;
mod view;

#[cfg(test)]
mod tests;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::budget::Money;
pub use document::{json_bytes, Draft};
pub(crate) use document::{Document, ErrorInfo, Facts, KINDS_MEMBER};
pub(crate) use host::user_name as host_user_name;
pub use host::Host;
#[cfg(test)]
pub(crate) use view::validate_raw_json;
pub use view::CheckpointView;

/// What every file says in `"version"`.
pub(crate) const FORMAT_VERSION: &str = "52.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Running,
    Completed,
    Failed,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
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
    pub(crate) items_processed: u64,
    #[serde(default)]
    pub(crate) items_total: Option<u64>,
    #[serde(default, deserialize_with = "nearest_float")]
    pub(crate) percentage: Option<f64>,
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
    pub(crate) fn exact_json(&self) -> Vec<u8> {
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

pub(crate) fn format_timestamp(time: DateTime<Utc>) -> String {
    // Whole seconds, `Z`: the seed's form, and what `jq fromdate` accepts.
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The time a checkpoint was written, to the nanosecond: what orders
/// checkpoints of different tasks by recency (two written in one second
/// have the same `timestamp`). Always nine digits, so the text sorts.
pub(crate) fn format_precise(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("timestamp {text:?} is not ISO 8601: {e}"))
}

/// JSON text as an error message shows it: cut short.
pub(crate) fn shown_json(json: &str) -> String {
    if json.chars().count() <= 80 {
        return json.to_owned();
    }
    let mut cut: String = json.chars().take(79).collect();
    cut.push('…');
    cut
}
