//! Delta checkpoints: a large state's change since the checkpoint before,
//! instead of the whole state again (SPEC "On disk").
//!
//! A delta document is the seed's document with, in place of `state`, a
//! member `delta`:
//! `{"base":41,"full":30,"ops":[{"at":12,"remove":1,"insert":"5"},…]}` — the
//! state of checkpoint `base`, as JSON text, changed by each op in turn:
//! `remove` bytes at byte offset `at` replaced by the text `insert` (`at`
//! counts in the text as the ops before left it). `full` names the whole
//! checkpoint the chain starts at. A delta always follows the checkpoint
//! just before it (`base` is `sequence - 1`), so a chain is a run of
//! consecutive numbers from a full one.
//!
//! The ops are found by walking both texts along their common runs and
//! re-synchronising after each small edit (a counter, a timestamp, a changed
//! value), so a state with a changing field at the top and a list growing
//! at the end costs two small ops, not the rest of the list. Every cut is
//! at a character boundary, so each `insert` is text `jq` shows.

use serde::{Deserialize, Serialize};

/// One change: `remove` bytes at `at`, replaced by `insert`.
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
    pub(crate) ops: Vec<Splice>,
}

/// How far (in bytes, on each side) an edit is looked past for the texts
/// to agree again, and how many bytes must agree to call it so.
const RESYNC_WINDOW: usize = 64;
const RESYNC_RUN: usize = 16;
/// Past this many ops, the rest of the change is one op.
const MAX_OPS: usize = 64;

/// The ops that turn `old` into `new` (both UTF-8 JSON text).
pub fn diff(old: &[u8], new: &[u8]) -> Vec<Splice> {
    let limit = old.len().min(new.len());
    let prefix = common_prefix(old, new);
    let mut suffix = common_suffix(&old[prefix..], &new[prefix..]).min(limit - prefix);
    while suffix > 0 && !is_char_start(new[new.len() - suffix]) {
        suffix -= 1;
    }
    let (old_end, new_end) = (old.len() - suffix, new.len() - suffix);
    let (mut i, mut j) = (prefix, prefix);
    let mut ops = Vec::new();
    loop {
        let run = common_prefix(&old[i..old_end], &new[j..new_end]);
        i += run;
        j += run;
        // Back to a character start: the op's text must be whole characters
        // (the bytes stepped back over are common to both).
        while j > 0 && j < new.len() && !is_char_start(new[j]) && i > 0 {
            i -= 1;
            j -= 1;
        }
        if i == old_end && j == new_end {
            break;
        }
        let found = (ops.len() + 1 < MAX_OPS)
            .then(|| resync(old, new, i, j, old_end, new_end))
            .flatten();
        let (remove, insert) = match found {
            Some((mut a, mut b)) => {
                while j + b < new_end && !is_char_start(new[j + b]) {
                    a += 1;
                    b += 1;
                }
                (a, b)
            }
            None => (old_end - i, new_end - j),
        };
        ops.push(Splice {
            at: j,
            remove,
            insert: String::from_utf8(new[j..j + insert].to_vec())
                .expect("cut at character boundaries"),
        });
        i += remove;
        j += insert;
    }
    ops
}

/// The smallest edit `(removed, inserted)` at `old[i]`/`new[j]` after which
/// the texts agree again for `RESYNC_RUN` bytes (or both end), if one is
/// within `RESYNC_WINDOW` bytes on each side.
fn resync(
    old: &[u8],
    new: &[u8],
    i: usize,
    j: usize,
    old_end: usize,
    new_end: usize,
) -> Option<(usize, usize)> {
    let agree = |a: usize, b: usize| {
        let (x, y) = (&old[i + a..old_end], &new[j + b..new_end]);
        if x.len() < RESYNC_RUN || y.len() < RESYNC_RUN {
            x == y
        } else {
            x[..RESYNC_RUN] == y[..RESYNC_RUN]
        }
    };
    for total in 1..=2 * RESYNC_WINDOW {
        for a in total.saturating_sub(RESYNC_WINDOW)..=total.min(RESYNC_WINDOW) {
            let b = total - a;
            if i + a <= old_end && j + b <= new_end && agree(a, b) {
                return Some((a, b));
            }
        }
    }
    None
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

/// Applies `ops` to `state` in place, in order: an append or a same-length
/// change moves only a few bytes, so a long chain costs its own bytes, not
/// the state's size once per link.
pub fn apply(state: &mut Vec<u8>, ops: &[Splice]) -> Result<(), String> {
    for (n, op) in ops.iter().enumerate() {
        let end = op
            .at
            .checked_add(op.remove)
            .filter(|&end| end <= state.len())
            .ok_or_else(|| {
                format!(
                    "its change {} (at {}, remove {}) does not fit the {} bytes it applies to",
                    n + 1,
                    op.at,
                    op.remove,
                    state.len()
                )
            })?;
        state.splice(op.at..end, op.insert.bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(old: &str, new: &str) -> Vec<Splice> {
        let ops = diff(old.as_bytes(), new.as_bytes());
        let mut state = old.as_bytes().to_vec();
        apply(&mut state, &ops).unwrap();
        assert_eq!(String::from_utf8(state).unwrap(), new, "{ops:?}");
        ops
    }

    #[test]
    fn an_append_is_the_appended_items_only() {
        let ops = round_trip(r#"{"done":["a","b"]}"#, r#"{"done":["a","b","c","d"]}"#);
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].insert, r#","c","d""#);
        assert_eq!(ops[0].remove, 0);
    }

    #[test]
    fn a_changing_field_beside_a_growing_list_is_two_small_ops() {
        let items: Vec<String> = (0..500).map(|i| format!("\"item-{i}\"")).collect();
        let old = format!(
            r#"{{"current":"file_9.rb","n":9,"done":[{}]}}"#,
            items[..499].join(",")
        );
        let new = format!(
            r#"{{"current":"file_10.rb","n":10,"done":[{}]}}"#,
            items.join(",")
        );
        let ops = round_trip(&old, &new);
        let inserted: usize = ops.iter().map(|op| op.insert.len()).sum();
        assert!(inserted < 40, "{ops:?}");
        assert!(ops.len() <= 3, "{ops:?}");
    }

    #[test]
    fn any_change_round_trips() {
        round_trip("", "{}");
        round_trip("{}", "");
        round_trip(r#"{"a":1}"#, r#"{"a":1}"#);
        round_trip(r#"{"a":1,"b":2}"#, r#"{"b":2}"#);
        round_trip(r#"{"k":"aaaa"}"#, r#"{"k":"aaaaaa"}"#);
        round_trip(r#"["x","y","x"]"#, r#"["x","x"]"#);
        let long_a = "a".repeat(300);
        let long_b = "b".repeat(300);
        round_trip(
            &format!("[{long_a},1,{long_a}]"),
            &format!("[{long_b},2,{long_a},3]"),
        );
        // More edits than ops: the rest is one op.
        let old: String = (0..200)
            .map(|i| format!("{i:04}-----------------------"))
            .collect();
        let new: String = (0..200)
            .map(|i| format!("{:04}-----------------------", i + 1))
            .collect();
        assert!(round_trip(&old, &new).len() <= MAX_OPS);
    }

    #[test]
    fn cuts_at_character_boundaries() {
        // "é" and "è" share their first byte: no op may split it.
        round_trip(r#"["é"]"#, r#"["è"]"#);
        round_trip(r#"["日本"]"#, r#"["日本語"]"#);
        round_trip(r#"{"a":"é…","b":"日本"}"#, r#"{"a":"è…","b":"日本語"}"#);
    }

    #[test]
    fn refuses_a_change_that_does_not_fit() {
        let op = |at, remove| Splice {
            at,
            remove,
            insert: String::new(),
        };
        assert!(apply(&mut b"{}".to_vec(), &[op(5, 10)])
            .unwrap_err()
            .contains("does not fit"));
        assert!(apply(&mut b"{}".to_vec(), &[op(usize::MAX, 2)]).is_err());
        assert!(apply(&mut b"{}".to_vec(), &[op(0, 1), op(1, 1)]).is_err());
    }

    #[test]
    fn the_record_is_plain_json() {
        let record = DeltaRecord {
            base: 41,
            full: 30,
            ops: vec![Splice {
                at: 3,
                remove: 0,
                insert: "\"x\"".into(),
            }],
        };
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(
            json,
            r#"{"base":41,"full":30,"ops":[{"at":3,"remove":0,"insert":"\"x\""}]}"#
        );
        assert_eq!(serde_json::from_str::<DeltaRecord>(&json).unwrap(), record);
    }
}
