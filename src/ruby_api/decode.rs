//! JSON bytes to Ruby objects, built straight from the parser: Symbol keys
//! and String values, or the kinds `crate::kinds` recorded for them.
//!
//! Decoding runs inside Ruby methods (through `data_value`), so the GVL is
//! held, as the rb_sys calls below need; each new object stays on the stack,
//! where Ruby's GC finds it, until its parent holds it.

use std::ffi::c_long;
use std::fmt;

use magnus::rb_sys::FromRawValue;
use magnus::{Error, Ruby, Value};
use rb_sys::VALUE;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::values::{QFALSE, QNIL, QTRUE};
use crate::kinds::Kind;
use crate::session::Data;

/// Builds Ruby objects while the JSON parser reads: hashes with Symbol keys,
/// arrays, UTF-8 strings, Integers, Floats, true, false, nil.
#[derive(Clone, Copy)]
struct RubySeed;

impl<'de> DeserializeSeed<'de> for RubySeed {
    type Value = VALUE;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<VALUE, D::Error> {
        d.deserialize_any(RubyVisitor)
    }
}

struct RubyVisitor;

impl<'de> Visitor<'de> for RubyVisitor {
    type Value = VALUE;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<VALUE, E> {
        Ok(if v { QTRUE } else { QFALSE })
    }

    fn visit_i64<E>(self, v: i64) -> Result<VALUE, E> {
        // SAFETY: any i64 is accepted; the GVL is held (see the module comment).
        Ok(unsafe { rb_sys::rb_ll2inum(v) })
    }

    fn visit_u64<E>(self, v: u64) -> Result<VALUE, E> {
        // SAFETY: any u64 is accepted; the GVL is held (see the module comment).
        Ok(unsafe { rb_sys::rb_ull2inum(v) })
    }

    fn visit_f64<E>(self, v: f64) -> Result<VALUE, E> {
        // SAFETY: any f64 is accepted; the GVL is held (see the module comment).
        Ok(unsafe { rb_sys::rb_float_new(v) })
    }

    fn visit_str<E>(self, v: &str) -> Result<VALUE, E> {
        // SAFETY: `v` is UTF-8, valid for its `len()` bytes, which Ruby
        // copies; the GVL is held (see the module comment).
        Ok(unsafe { rb_sys::rb_utf8_str_new(v.as_ptr() as *const _, v.len() as c_long) })
    }

    fn visit_unit<E>(self) -> Result<VALUE, E> {
        Ok(QNIL)
    }

    fn visit_none<E>(self) -> Result<VALUE, E> {
        Ok(QNIL)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<VALUE, A::Error> {
        let capacity = seq.size_hint().unwrap_or(0).min(1 << 16);
        // `array` lives on this stack frame, where Ruby's GC sees it.
        // SAFETY: the GVL is held (see the module comment).
        let array = unsafe { rb_sys::rb_ary_new_capa(capacity as c_long) };
        while let Some(item) = seq.next_element_seed(RubySeed)? {
            // SAFETY: `array` and `item` are live objects just made and on
            // this stack; the GVL is held.
            unsafe { rb_sys::rb_ary_push(array, item) };
        }
        Ok(std::hint::black_box(array))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<VALUE, A::Error> {
        // SAFETY: the GVL is held (see the module comment).
        let hash = unsafe { rb_sys::rb_hash_new() };
        while let Some(key) = map.next_key_seed(SymbolSeed)? {
            let key = std::hint::black_box(key);
            let value = map.next_value_seed(RubySeed)?;
            // SAFETY: `hash`, `key` and `value` are live objects just made
            // and on this stack; the GVL is held.
            unsafe { rb_sys::rb_hash_aset(hash, key, value) };
        }
        Ok(std::hint::black_box(hash))
    }
}

/// A map key as a Symbol: an existing one when possible (no allocation),
/// else a new dynamic (collectable) Symbol, as `JSON.parse(symbolize_names:)`.
struct SymbolSeed;

impl<'de> DeserializeSeed<'de> for SymbolSeed {
    type Value = VALUE;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<VALUE, D::Error> {
        d.deserialize_str(SymbolVisitor)
    }
}

struct SymbolVisitor;

impl<'de> Visitor<'de> for SymbolVisitor {
    type Value = VALUE;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E>(self, v: &str) -> Result<VALUE, E> {
        // SAFETY: `v` is UTF-8, valid for its `len()` bytes, which Ruby
        // copies; `rb_utf8_encoding()` is Ruby's own, never freed; `string`
        // is on this stack until interned; the GVL is held (see the module
        // comment).
        unsafe {
            let existing = rb_sys::rb_check_symbol_cstr(
                v.as_ptr() as *const _,
                v.len() as c_long,
                rb_sys::rb_utf8_encoding(),
            );
            if existing != QNIL {
                return Ok(existing);
            }
            let string = rb_sys::rb_utf8_str_new(v.as_ptr() as *const _, v.len() as c_long);
            Ok(rb_sys::rb_str_intern(string))
        }
    }
}

/// Parses JSON into Ruby objects, giving each key and string the kind
/// `kind` records (see `crate::kinds`); where it says nothing, keys are
/// Symbols and strings are Strings (the plain `RubySeed` walk).
fn from_json_kinds(bytes: &[u8], kind: Option<&Kind>) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = KindSeed(kind)
        .deserialize(&mut de)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    // SAFETY: `value` is the live object just built, on this stack.
    Ok(unsafe { Value::from_raw(value) })
}

#[derive(Clone, Copy)]
struct KindSeed<'k>(Option<&'k Kind>);

impl<'de> DeserializeSeed<'de> for KindSeed<'_> {
    type Value = VALUE;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<VALUE, D::Error> {
        match self.0 {
            // Nothing special below here: the plain, faster walk.
            None => RubySeed.deserialize(d),
            Some(kind) => d.deserialize_any(KindVisitor(kind)),
        }
    }
}

struct KindVisitor<'k>(&'k Kind);

impl<'de> Visitor<'de> for KindVisitor<'_> {
    type Value = VALUE;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<VALUE, E> {
        RubyVisitor.visit_bool(v)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<VALUE, E> {
        RubyVisitor.visit_i64(v)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<VALUE, E> {
        RubyVisitor.visit_u64(v)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<VALUE, E> {
        RubyVisitor.visit_f64(v)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<VALUE, E> {
        RubyVisitor.visit_unit()
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<VALUE, E> {
        RubyVisitor.visit_none()
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<VALUE, E> {
        match self.0 {
            Kind::Symbol => SymbolVisitor.visit_str(v),
            Kind::Container(_) => RubyVisitor.visit_str(v),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<VALUE, A::Error> {
        let capacity = seq.size_hint().unwrap_or(0).min(1 << 16);
        // `array` lives on this stack frame, where Ruby's GC sees it.
        // SAFETY: the GVL is held (see the module comment).
        let array = unsafe { rb_sys::rb_ary_new_capa(capacity as c_long) };
        let mut index = 0;
        while let Some(item) = seq.next_element_seed(KindSeed(self.0.item(index)))? {
            // SAFETY: `array` and `item` are live objects just made and on
            // this stack; the GVL is held.
            unsafe { rb_sys::rb_ary_push(array, item) };
            index += 1;
        }
        Ok(std::hint::black_box(array))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<VALUE, A::Error> {
        // SAFETY: the GVL is held (see the module comment).
        let hash = unsafe { rb_sys::rb_hash_new() };
        while let Some((key, member)) = map.next_key_seed(KeySeed(self.0))? {
            let key = std::hint::black_box(key);
            let value = map.next_value_seed(KindSeed(member))?;
            // SAFETY: `hash`, `key` and `value` are live objects just made
            // and on this stack; the GVL is held.
            unsafe { rb_sys::rb_hash_aset(hash, key, value) };
        }
        Ok(std::hint::black_box(hash))
    }
}

/// A key as a String or a Symbol, as the Hash's node says, with the node of
/// its value.
struct KeySeed<'k>(&'k Kind);

impl<'de, 'k> DeserializeSeed<'de> for KeySeed<'k> {
    type Value = (VALUE, Option<&'k Kind>);

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 'k> Visitor<'de> for KeySeed<'k> {
    type Value = (VALUE, Option<&'k Kind>);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let key = if self.0.keys().is_string(v) {
            RubyVisitor.visit_str(v)?
        } else {
            SymbolVisitor.visit_str(v)?
        };
        Ok((key, self.0.member(v)))
    }
}

/// The user's data (or a failure's record) as Ruby objects, each key and
/// string of the kind it was saved as. A checkpoint that passed its checks
/// but still does not decode is reported as damaged.
pub(super) fn data_value(data: &Data, what: &str) -> Result<Value, Error> {
    let unreadable = |e: String| {
        let ruby = Ruby::get().expect("Ruby thread");
        Error::new(
            ruby.get_inner(&super::errors::CORRUPT_ERROR),
            format!("{what} could not be read back: {e}"),
        )
    };
    let kind = match &data.kinds {
        Some(kinds) => Some(
            std::str::from_utf8(kinds.as_bytes())
                .map_err(|e| e.to_string())
                .and_then(Kind::parse)
                .map_err(unreadable)?,
        ),
        None => None,
    };
    from_json_kinds(data.json.as_bytes(), kind.as_ref()).map_err(unreadable)
}
