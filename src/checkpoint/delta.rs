//! Delta checkpoints: a large state's change since the checkpoint before,
//! instead of the whole state again (SPEC "On disk").
//!
//! A delta document is the seed's document with, in place of `state`, a
//! member `delta`: `{"base":41,"full":30,"at":1234,"remove":2,"insert":"…"}`
//! — the state of checkpoint `base`, as JSON text, with `remove` bytes at
//! byte offset `at` replaced by the text `insert`. `full` names the whole
//! checkpoint the chain starts at. A delta always follows the checkpoint
//! just before it (`base` is `sequence - 1`), so a chain is a run of
//! consecutive numbers from a full one.
//!
//! The change is found as the longest common prefix and suffix of the two
//! texts — one splice, exact for any change, smallest for the appends a
//! long job makes — cut at character boundaries so `insert` is text `jq`
//! shows.

use serde::{Deserialize, Serialize};

/// The change from one state's JSON text to the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Splice {
    pub at: usize,
    pub remove: usize,
    pub insert: String,
}

/// A delta document's `delta` member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeltaRecord {
    pub(crate) base: u64,
    pub(crate) full: u64,
    #[serde(flatten)]
    pub(crate) splice: Splice,
}

/// The splice that turns `old` into `new` (both UTF-8 JSON text).
pub fn diff(old: &[u8], new: &[u8]) -> Splice {
    let limit = old.len().min(new.len());
    let mut prefix = common_prefix(old, new);
    let mut suffix = common_suffix(&old[prefix..], &new[prefix..]).min(limit - prefix);
    // Whole characters only: `insert` must be text.
    while prefix > 0 && prefix < new.len() && !is_char_start(new[prefix]) {
        prefix -= 1;
    }
    while suffix > 0 && !is_char_start(new[new.len() - suffix]) {
        suffix -= 1;
    }
    let insert = &new[prefix..new.len() - suffix];
    Splice {
        at: prefix,
        remove: old.len() - prefix - suffix,
        insert: String::from_utf8(insert.to_vec()).expect("cut at character boundaries"),
    }
}

/// Bytes `a` and `b` share at their start, compared a block at a time
/// (a memcmp each): a megabyte state costs tens of microseconds.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 256;
    let limit = a.len().min(b.len());
    let mut at = 0;
    while at + BLOCK <= limit && a[at..at + BLOCK] == b[at..at + BLOCK] {
        at += BLOCK;
    }
    at + a[at..limit]
        .iter()
        .zip(&b[at..limit])
        .position(|(x, y)| x != y)
        .unwrap_or(limit - at)
}

/// Bytes `a` and `b` share at their end.
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 256;
    let limit = a.len().min(b.len());
    let (a_end, b_end) = (a.len(), b.len());
    let mut n = 0;
    while n + BLOCK <= limit && a[a_end - n - BLOCK..a_end - n] == b[b_end - n - BLOCK..b_end - n] {
        n += BLOCK;
    }
    n + a[..a_end - n]
        .iter()
        .rev()
        .zip(b[..b_end - n].iter().rev())
        .position(|(x, y)| x != y)
        .unwrap_or(limit - n)
}

fn is_char_start(byte: u8) -> bool {
    // Not a UTF-8 continuation byte (10xxxxxx).
    byte & 0xC0 != 0x80
}

/// Applies `splice` to `state` in place: an append moves only the few
/// bytes after it, so a long chain costs its own bytes, not the state's
/// size once per link.
pub fn apply(state: &mut Vec<u8>, splice: &Splice) -> Result<(), String> {
    let end = splice
        .at
        .checked_add(splice.remove)
        .filter(|&end| end <= state.len())
        .ok_or_else(|| {
            format!(
                "its change (at {}, remove {}) does not fit its base's {} bytes",
                splice.at,
                splice.remove,
                state.len()
            )
        })?;
    state.splice(splice.at..end, splice.insert.bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(old: &str, new: &str) -> Splice {
        let splice = diff(old.as_bytes(), new.as_bytes());
        let mut state = old.as_bytes().to_vec();
        apply(&mut state, &splice).unwrap();
        assert_eq!(state, new.as_bytes());
        splice
    }

    #[test]
    fn an_append_is_the_appended_items_only() {
        let splice = round_trip(r#"{"done":["a","b"]}"#, r#"{"done":["a","b","c","d"]}"#);
        assert_eq!(splice.insert, r#","c","d""#);
        assert_eq!(splice.remove, 0);
    }

    #[test]
    fn any_change_round_trips() {
        round_trip("", "{}");
        round_trip("{}", "");
        round_trip(r#"{"a":1}"#, r#"{"a":1}"#);
        round_trip(r#"{"a":1,"b":2}"#, r#"{"b":2}"#);
        round_trip(r#"{"k":"aaaa"}"#, r#"{"k":"aaaaaa"}"#);
        round_trip(r#"["x","y","x"]"#, r#"["x","x"]"#);
    }

    #[test]
    fn cuts_at_character_boundaries() {
        // "é" and "è" share their first byte: the splice must not split it.
        let splice = round_trip(r#"["é"]"#, r#"["è"]"#);
        assert_eq!(splice.insert, "è");
        let splice = round_trip(r#"["日本"]"#, r#"["日本語"]"#);
        assert_eq!(splice.insert, "語");
    }

    #[test]
    fn refuses_a_change_that_does_not_fit() {
        let splice = Splice {
            at: 5,
            remove: 10,
            insert: String::new(),
        };
        assert!(apply(&mut b"{}".to_vec(), &splice)
            .unwrap_err()
            .contains("does not fit"));
        let overflow = Splice {
            at: usize::MAX,
            remove: 2,
            insert: String::new(),
        };
        assert!(apply(&mut b"{}".to_vec(), &overflow).is_err());
    }

    #[test]
    fn the_record_is_plain_json() {
        let record = DeltaRecord {
            base: 41,
            full: 30,
            splice: Splice {
                at: 3,
                remove: 0,
                insert: "\"x\"".into(),
            },
        };
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(
            json,
            r#"{"base":41,"full":30,"at":3,"remove":0,"insert":"\"x\""}"#
        );
        assert_eq!(serde_json::from_str::<DeltaRecord>(&json).unwrap(), record);
    }
}
