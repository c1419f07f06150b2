//! The document as read: the envelope parsed through a borrowing view that
//! leaves `state` (and `error`) raw, and the check that raw JSON is one a
//! restore can read back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::{parse_timestamp, BudgetFigures, Facts, Host, Progress, Status};
use crate::error::Result;

/// A checkpoint file as read: envelope parsed, `state` and `error` left raw.
#[derive(Debug, Deserialize)]
pub struct CheckpointView<'a> {
    pub task_id: String,
    // Never read, but a member of the struct, so a file with "version"
    // twice is refused like any other repeated member.
    #[expect(dead_code, reason = "parsed only for serde's duplicate check")]
    #[serde(default, deserialize_with = "lenient")]
    pub(crate) version: Option<String>,
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
    /// The user's data (`null` too); absent from a delta document, which
    /// has `delta`.
    #[serde(default, borrow, deserialize_with = "present")]
    pub state: Option<&'a RawValue>,
    /// A delta document's change since its base (`checkpoint::delta`).
    #[serde(default, borrow, deserialize_with = "present")]
    pub delta: Option<&'a RawValue>,
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
    pub(crate) written_at: Option<String>,
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

/// A member that is there, whatever it holds: `"state": null` is a state.
fn present<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
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
        match (view.state, view.delta) {
            (Some(state), None) => {
                readable_json(state.get()).map_err(|e| format!("state cannot be read back: {e}"))?
            }
            (None, Some(_)) => {
                let record = view.delta_record()?;
                let sequence = view.sequence.unwrap_or(0);
                if record.base.checked_add(1) != Some(sequence)
                    || record.full > record.base
                    || record.full == 0
                {
                    return Err(format!(
                        "its delta names base {} and full {}; a delta follows the checkpoint before it \
                         ({}), whose chain starts at a full one no newer",
                        record.base,
                        record.full,
                        sequence.saturating_sub(1)
                    ));
                }
            }
            (None, None) => return Err("it has no state (and is no delta)".into()),
            (Some(_), Some(_)) => return Err("it has both a state and a delta".into()),
        }
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

    /// The state's JSON text, if this is a whole checkpoint.
    pub fn state_text(&self) -> Option<&'a str> {
        self.state.map(RawValue::get)
    }

    /// A delta document's change, parsed.
    pub(crate) fn delta_record(&self) -> Result<super::delta::DeltaRecord, String> {
        let raw = self.delta.ok_or("it is not a delta")?;
        serde_json::from_str(raw.get()).map_err(|e| format!("its delta is malformed: {e}"))
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

/// Rejects state bytes that are not one JSON value restore can read back.
#[cfg(test)]
pub(crate) fn validate_raw_json(bytes: &[u8]) -> Result<()> {
    use crate::error::Error;
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::invalid(format!("data is not valid JSON: {e}")))?;
    readable_json(text).map_err(|e| Error::invalid(format!("data is not valid JSON: {e}")))
}

/// Whether restore can read this JSON back, checked the way it reads it
/// (`ruby_api::decode`: serde_json's `deserialize_any`, default
/// recursion limit of 128) but building nothing. A borrowed `RawValue` only
/// checks the syntax: a number out of range (`1e400`), an unpaired
/// `"\ud800"` or nesting deeper than the limit pass it, and a checkpoint
/// reported intact would then fail to restore instead of being skipped.
pub(crate) fn readable_json(json: &str) -> Result<(), String> {
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
