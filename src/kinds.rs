//! Key and value kinds: what plain JSON cannot say about Ruby data.
//!
//! JSON has one kind of key and one kind of string; Ruby has Symbols and
//! Strings for both. Restore gives Symbol keys and String values by default,
//! so only the exceptions are recorded, beside the data (the `kinds` member
//! of a checkpoint document), never inside it: the data stays the plain JSON
//! a user reads with `jq`. A node is
//!
//! - `"symbol"`: this string value is a Symbol;
//! - an object for a Hash or an Array, with any of
//!   - `"string_keys"`: `true` (every key is a String) or the list of the
//!     keys that are Strings (a Hash with both kinds of keys);
//!   - `"members"`: `{key: node}` for members whose values have exceptions;
//!   - `"items"`: `{"index": node}` for array items with exceptions;
//!   - `"each"`: one node that applies to every item of an array.
//!
//! A document's `kinds` is the node of the whole document, so
//! `{"members":{"state":{"string_keys":true}}}` says the state's keys are
//! Strings. The encoder (`ruby_api::encode`) writes these nodes as it walks
//! the data; this module reads them back into a tree the decoder follows.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::value::RawValue;

/// The kind of one value, where it is not the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A Symbol value (a string in the JSON).
    Symbol,
    Container(Container),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Container {
    pub(crate) keys: KeyKinds,
    pub(crate) members: HashMap<String, Kind>,
    pub(crate) items: HashMap<usize, Kind>,
    pub(crate) each: Option<Box<Kind>>,
}

/// Which keys of a Hash are Strings (the rest are Symbols).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum KeyKinds {
    #[default]
    Symbols,
    Strings,
    Listed(HashSet<String>),
}

impl KeyKinds {
    /// True when `key` comes back as a String.
    #[inline]
    pub(crate) fn is_string(&self, key: &str) -> bool {
        match self {
            KeyKinds::Symbols => false,
            KeyKinds::Strings => true,
            KeyKinds::Listed(keys) => keys.contains(key),
        }
    }
}

impl Kind {
    /// The node of member `key` of a Hash node.
    pub(crate) fn member(&self, key: &str) -> Option<&Kind> {
        match self {
            Kind::Container(c) => c.members.get(key),
            Kind::Symbol => None,
        }
    }

    /// The node of item `index` of an Array node.
    pub(crate) fn item(&self, index: usize) -> Option<&Kind> {
        match self {
            Kind::Container(c) => c.each.as_deref().or_else(|| c.items.get(&index)),
            Kind::Symbol => None,
        }
    }

    pub(crate) fn keys(&self) -> &KeyKinds {
        static SYMBOLS: KeyKinds = KeyKinds::Symbols;
        match self {
            Kind::Container(c) => &c.keys,
            Kind::Symbol => &SYMBOLS,
        }
    }

    /// Parses a node; `Err` says what is wrong with it.
    pub(crate) fn parse(json: &str) -> Result<Kind, String> {
        let raw: RawNode = serde_json::from_str(json).map_err(|e| format!("kinds: {e}"))?;
        raw.into_kind(0)
    }
}

/// The JSON shape, before it is checked and indexed.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawNode {
    Name(String),
    Container(RawContainer),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContainer {
    #[serde(default)]
    string_keys: Option<RawKeys>,
    #[serde(default)]
    members: Option<HashMap<String, RawNode>>,
    #[serde(default)]
    items: Option<HashMap<String, RawNode>>,
    #[serde(default)]
    each: Option<Box<RawNode>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawKeys {
    All(bool),
    Listed(Vec<String>),
}

/// Data is read back at most this deep (serde_json's recursion limit; the
/// encoder stops sooner, at `ruby_api::encode::MAX_DEPTH`), so its kinds
/// are too; a deeper node is not one the encoder wrote.
const MAX_DEPTH: usize = 128;

impl RawNode {
    fn into_kind(self, depth: usize) -> Result<Kind, String> {
        if depth > MAX_DEPTH {
            return Err("kinds: nested too deeply".into());
        }
        match self {
            RawNode::Name(name) if name == "symbol" => Ok(Kind::Symbol),
            RawNode::Name(name) => Err(format!("kinds: unknown kind {name:?}")),
            RawNode::Container(c) => {
                let keys = match c.string_keys {
                    None | Some(RawKeys::All(false)) => KeyKinds::Symbols,
                    Some(RawKeys::All(true)) => KeyKinds::Strings,
                    Some(RawKeys::Listed(keys)) => KeyKinds::Listed(keys.into_iter().collect()),
                };
                let members = c
                    .members
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| Ok((k, v.into_kind(depth + 1)?)))
                    .collect::<Result<_, String>>()?;
                let items = c
                    .items
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| {
                        let index = k
                            .parse::<usize>()
                            .map_err(|_| format!("kinds: item {k:?} is not an index"))?;
                        Ok((index, v.into_kind(depth + 1)?))
                    })
                    .collect::<Result<_, String>>()?;
                let each = c
                    .each
                    .map(|e| e.into_kind(depth + 1).map(Box::new))
                    .transpose()?;
                Ok(Kind::Container(Container {
                    keys,
                    members,
                    items,
                    each,
                }))
            }
        }
    }
}

/// The node of a document member (`state`, `error`), borrowed raw from the
/// document's `kinds`, or `None` when that member has no exceptions.
pub(crate) fn member_json<'a>(
    kinds: &'a str,
    member: &str,
) -> Result<Option<&'a RawValue>, String> {
    #[derive(Deserialize)]
    struct Doc<'a> {
        #[serde(borrow, default)]
        members: Option<HashMap<&'a str, &'a RawValue>>,
    }
    let doc: Doc = serde_json::from_str(kinds).map_err(|e| format!("kinds: {e}"))?;
    Ok(doc.members.and_then(|m| m.get(member).copied()))
}

/// Writes kinds nodes, bottom-up, as the encoder leaves each value.
pub(crate) mod write {
    use std::borrow::Cow;

    /// A finished node's JSON text.
    pub(crate) type Node = Cow<'static, [u8]>;

    pub(crate) const SYMBOL: &[u8] = br#""symbol""#;
    pub(crate) const STRING_KEYS: &[u8] = br#"{"string_keys":true}"#;

    fn key_json(out: &mut Vec<u8>, key: &str) {
        serde_json::to_writer(&mut *out, key).expect("writing to a Vec cannot fail");
    }

    /// The node of a Hash: which keys are Strings (`None`: none; `Some(None)`:
    /// all; `Some(Some(list))`: these), and the nodes of members that have one.
    pub(crate) fn hash(
        string_keys: Option<Option<&[String]>>,
        members: &[(String, Node)],
    ) -> Option<Node> {
        match (string_keys, members.is_empty()) {
            (None, true) => return None,
            (Some(None), true) => return Some(Cow::Borrowed(STRING_KEYS)),
            _ => {}
        }
        let mut out = Vec::with_capacity(32);
        out.push(b'{');
        match string_keys {
            None => {}
            Some(None) => out.extend_from_slice(br#""string_keys":true"#),
            Some(Some(keys)) => {
                out.extend_from_slice(br#""string_keys":["#);
                for (i, key) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    key_json(&mut out, key);
                }
                out.push(b']');
            }
        }
        if !members.is_empty() {
            if string_keys.is_some() {
                out.push(b',');
            }
            out.extend_from_slice(br#""members":{"#);
            for (i, (key, node)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                key_json(&mut out, key);
                out.push(b':');
                out.extend_from_slice(node);
            }
            out.push(b'}');
        }
        out.push(b'}');
        Some(Cow::Owned(out))
    }

    /// The node of an Array whose every item has the node `item`.
    pub(crate) fn each(item: &[u8]) -> Node {
        let mut out = Vec::with_capacity(item.len() + 10);
        out.extend_from_slice(br#"{"each":"#);
        out.extend_from_slice(item);
        out.push(b'}');
        Cow::Owned(out)
    }

    /// The node of an Array of `len` items from the nodes of those that have
    /// one: `each` when every item has the same node.
    pub(crate) fn array(len: usize, items: &[(usize, Node)]) -> Option<Node> {
        if items.is_empty() {
            return None;
        }
        if items.len() == len && items.iter().all(|(_, n)| n == &items[0].1) {
            return Some(each(&items[0].1));
        }
        let mut out = Vec::with_capacity(32);
        out.extend_from_slice(br#"{"items":{"#);
        for (i, (index, node)) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(format!("\"{index}\":").as_bytes());
            out.extend_from_slice(node);
        }
        out.extend_from_slice(b"}}");
        Some(Cow::Owned(out))
    }

    /// A document's `kinds` from the nodes of its members.
    pub(crate) fn document(members: &[(&str, &[u8])]) -> Option<Vec<u8>> {
        let owned: Vec<(String, Node)> = members
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Cow::Owned(v.to_vec())))
            .collect();
        hash(None, &owned).map(Cow::into_owned)
    }
}

#[cfg(test)]
mod tests;
