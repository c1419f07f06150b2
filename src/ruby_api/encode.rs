//! Ruby objects to JSON bytes, with no `serde_json::Value` in between: the
//! encoder walks Ruby's own hashes and arrays and validates as it writes,
//! noting beside the JSON which keys are Strings and which strings are
//! Symbols (`crate::kinds`).
//!
//! Only values that come back equal are accepted (SPEC "What goes into
//! `data`"); anything else stops the walk with the key path of the culprit,
//! before a byte reaches the store.
//!
//! (Longer than most files here: the walk is one job, and its fast paths
//! read best beside the general cases they shortcut.)

use std::collections::HashSet;
use std::ffi::{c_int, CStr};
use std::fmt;

use magnus::rb_sys::{AsRawValue, FromRawValue};
use magnus::{Error, Ruby, Value};
use rb_sys::{
    ruby_coderange_type, ruby_value_type, FIX2LONG, FIXNUM_P, FLONUM_P, RARRAY_CONST_PTR,
    RARRAY_LEN, RB_BUILTIN_TYPE, RSTRING_LEN, RSTRING_PTR, SPECIAL_CONST_P, STATIC_SYM_P, VALUE,
};

use super::args::inspect_value;
use super::errors::{arg_error, type_error};
use super::values::{QFALSE, QNIL, QTRUE};
use crate::kinds::{self, write::Node};

/// Ruby's own JSON stops at 100 levels; so do we, which also keeps every
/// document within the parser's limit when it is read back.
pub(super) const MAX_DEPTH: usize = 100;

const ST_CONTINUE: c_int = 0;
const ST_STOP: c_int = 1;

#[derive(Clone, Debug)]
enum Segment {
    Symbol(String),
    Key(String),
    Index(usize),
}

/// `data[:files][3]`, shortened in the middle when very deep.
struct KeyPath<'a>(&'a str, &'a [Segment]);

impl fmt::Display for KeyPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)?;
        let segments = self.1;
        let write = |f: &mut fmt::Formatter<'_>, s: &Segment| match s {
            Segment::Symbol(name) if is_plain_symbol(name) => write!(f, "[:{name}]"),
            Segment::Symbol(name) => write!(f, "[:{name:?}]"),
            Segment::Key(name) => write!(f, "[{name:?}]"),
            Segment::Index(i) => write!(f, "[{i}]"),
        };
        if segments.len() > 12 {
            segments[..6].iter().try_for_each(|s| write(f, s))?;
            f.write_str("…")?;
            segments[segments.len() - 4..]
                .iter()
                .try_for_each(|s| write(f, s))
        } else {
            segments.iter().try_for_each(|s| write(f, s))
        }
    }
}

fn is_plain_symbol(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

enum Problem {
    /// Not a JSON value: TypeError. `value` is shown with `inspect`.
    Type { what: String, value: VALUE },
    /// Deeper than MAX_DEPTH: ArgumentError.
    TooDeep,
    /// `{"a" => 1, a: 2}`: ArgumentError.
    DuplicateKey(String),
}

/// Walks a Ruby value writing JSON. The key path of a problem is collected
/// only when there is one, as the walk unwinds (innermost segment first),
/// so the common case pays nothing for it.
struct Encoder {
    out: Vec<u8>,
    /// Segments from the problem outwards; reversed when reported.
    path: Vec<Segment>,
    depth: usize,
    canonical: bool,
    /// The kinds node of the value just written, if it is not the default
    /// (Symbol keys, String values); its parent takes it.
    kind: Option<Node>,
    problem: Option<Problem>,
    utf8: c_int,
    binary: c_int,
}

pub(super) struct Encoded {
    pub(crate) json: Vec<u8>,
    /// Which keys are Strings and which strings are Symbols (`crate::kinds`),
    /// when any are.
    pub(crate) kinds: Option<Vec<u8>>,
    /// The value is already what a restore would return (plain Hash and
    /// Array, no subclasses): callers may hand it back as is.
    pub(crate) canonical: bool,
}

/// The kinds nodes of an Array's items, kept as a count while they are all
/// the same (an array of rows with String keys needs one node, not one per row).
#[derive(Default)]
struct ItemKinds {
    first: Option<Node>,
    /// Items whose node equals `first`.
    same: Vec<usize>,
    others: Vec<(usize, Node)>,
}

impl ItemKinds {
    fn add(&mut self, index: usize, node: Node) {
        match &self.first {
            None => {
                self.first = Some(node);
                self.same.push(index);
            }
            Some(first) if *first == node && self.others.is_empty() => self.same.push(index),
            Some(_) => self.others.push((index, node)),
        }
    }

    fn finish(self, len: usize) -> Option<Node> {
        let first = self.first?;
        if self.others.is_empty() && self.same.len() == len {
            return Some(kinds::write::each(&first));
        }
        let mut items: Vec<(usize, Node)> = self.same.iter().map(|&i| (i, first.clone())).collect();
        items.extend(self.others);
        items.sort_by_key(|(i, _)| *i);
        kinds::write::array(len, &items)
    }
}

/// "a" or "an", as English puts it before `word` ("an Object", "a Time").
pub(super) fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some(c) if "AEIOUaeiou".contains(c) => "an",
        _ => "a",
    }
}

/// The name of `value`'s class, never raising.
pub(super) fn class_of(value: Value) -> String {
    // SAFETY: a magnus `Value` is live and used on its Ruby thread, with
    // the GVL held.
    unsafe { class_name(value.as_raw()) }
}

/// The name of `value`'s class, never raising.
///
/// # Safety
/// `value` is live (or an immediate) and the GVL is held.
unsafe fn class_name(value: VALUE) -> String {
    // SAFETY: the caller's promise; the name returned lives with the class,
    // and is copied here before any Ruby code can run.
    unsafe { CStr::from_ptr(rb_sys::rb_obj_classname(value)) }
        .to_string_lossy()
        .into_owned()
}

fn hint_for(class: &str) -> &'static str {
    match class {
        "Time" | "Date" | "DateTime" | "ActiveSupport::TimeWithZone" => {
            "store time.iso8601 (a String) or time.to_i instead"
        }
        "Rational" | "BigDecimal" | "Complex" => "convert it with to_f or to_s first",
        "Set" | "SortedSet" => "convert it with to_a first",
        "Range" => "store its ends as an Array",
        "Proc" | "Method" | "UnboundMethod" => "code cannot be checkpointed; keep only data in it",
        "Struct" | "OpenStruct" | "Data" => "convert it with to_h first",
        _ => "use only Hash, Array, String, Symbol, Integer, Float, true, false and nil",
    }
}

const CODERANGE_MASK: VALUE = ruby_coderange_type::RUBY_ENC_CODERANGE_BROKEN as VALUE;
const CODERANGE_7BIT: VALUE = ruby_coderange_type::RUBY_ENC_CODERANGE_7BIT as VALUE;
const CODERANGE_VALID: VALUE = ruby_coderange_type::RUBY_ENC_CODERANGE_VALID as VALUE;

/// A string's coderange from its flags, scanning only when Ruby has not yet.
///
/// # Safety
/// `s` is a live String (not an immediate) and the GVL is held.
unsafe fn coderange(s: VALUE) -> VALUE {
    // SAFETY: `s` is an object on Ruby's heap (the caller's promise), so it
    // starts with the RBasic header whose flags hold the coderange.
    let known = unsafe { (*(s as *const rb_sys::RBasic)).flags } & CODERANGE_MASK;
    if known != 0 {
        known
    } else {
        // SAFETY: `s` is a live String and the GVL is held (the caller's promise).
        unsafe { rb_sys::rb_enc_str_coderange(s) as VALUE }
    }
}

/// The bytes of a String.
///
/// # Safety
/// `s` is a live String (not an immediate), and the slice is dropped
/// before any Ruby code runs (which could change or free the bytes).
#[inline(always)]
unsafe fn string_bytes<'s>(s: VALUE) -> &'s [u8] {
    // SAFETY: the caller's promise: a live String's pointer and length
    // describe its bytes, which stay as they are while no Ruby code runs.
    unsafe { std::slice::from_raw_parts(RSTRING_PTR(s) as *const u8, RSTRING_LEN(s) as usize) }
}

/// True if `bytes` need no escaping inside a JSON string: no control
/// character, quote or backslash. Eight bytes at a time with the classic
/// SWAR tests (short strings are the common case; SIMD setup would dominate).
#[inline]
fn plain(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    #[inline(always)]
    fn has_zero_byte(x: u64) -> u64 {
        x.wrapping_sub(ONES) & !x & HIGHS
    }
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        // A byte below 0x20 (any byte with the high bit set cannot be).
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGHS;
        let quote = has_zero_byte(x ^ (ONES * b'"' as u64));
        let backslash = has_zero_byte(x ^ (ONES * b'\\' as u64));
        if control | quote | backslash != 0 {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
}

impl Encoder {
    fn refuse(&mut self, what: impl Into<String>, value: VALUE) -> bool {
        self.problem = Some(Problem::Type {
            what: what.into(),
            value,
        });
        false
    }

    /// Writes one value; false once a problem is recorded.
    ///
    /// # Safety
    /// The walk's contract, which every `unsafe fn` of the walk shares: the
    /// GVL is held; `v` is live, being part of the value given to
    /// `to_json_sized`, which its caller keeps on the stack (so the GC keeps
    /// all of it); and no Ruby code runs until the walk is over, so nothing
    /// in it changes meanwhile.
    unsafe fn value(&mut self, v: VALUE) -> bool {
        match v {
            QNIL => self.out.extend_from_slice(b"null"),
            QTRUE => self.out.extend_from_slice(b"true"),
            QFALSE => self.out.extend_from_slice(b"false"),
            _ if FIXNUM_P(v) => {
                // SAFETY: `v` is a Fixnum (just checked), decoded from its bits.
                let mut buf = itoa_buf(unsafe { FIX2LONG(v) } as i64);
                self.out.extend_from_slice(buf.as_bytes_mut());
            }
            // SAFETY: the walk's contract, and `v` is a Float (a flonum).
            _ if FLONUM_P(v) => return unsafe { self.float(v) },
            // SAFETY: the walk's contract, and `v` is a (static) Symbol.
            _ if STATIC_SYM_P(v) => return unsafe { self.symbol(v) },
            _ if SPECIAL_CONST_P(v) => {
                // SAFETY: `v` is an immediate and the GVL is held.
                let class = unsafe { class_name(v) };
                return self.refuse(
                    format!(
                        "{} {class}, which JSON cannot hold; {}",
                        article(&class),
                        hint_for(&class)
                    ),
                    v,
                );
            }
            // SAFETY: the walk's contract, and `v` is not an immediate (the
            // arms above took those), so its header gives its type; each arm
            // hands it to the writer for that type.
            _ => unsafe {
                match RB_BUILTIN_TYPE(v) {
                    ruby_value_type::RUBY_T_STRING => return self.string(v),
                    ruby_value_type::RUBY_T_FLOAT => return self.float(v),
                    ruby_value_type::RUBY_T_BIGNUM => return self.bignum(v),
                    ruby_value_type::RUBY_T_SYMBOL => return self.symbol(v),
                    ruby_value_type::RUBY_T_ARRAY => return self.array(v),
                    ruby_value_type::RUBY_T_HASH => return self.hash(v),
                    _ => {
                        let class = class_name(v);
                        return self.refuse(
                            format!(
                                "{} {class}, which JSON cannot hold; {}",
                                article(&class),
                                hint_for(&class)
                            ),
                            v,
                        );
                    }
                }
            },
        }
        true
    }

    /// # Safety
    /// The walk's contract (see `value`), and `v` is a Float.
    unsafe fn float(&mut self, v: VALUE) -> bool {
        // SAFETY: `v` is a live Float (this function's contract).
        let f = unsafe { rb_sys::rb_float_value(v) };
        if !f.is_finite() {
            return self.refuse(
                format!("{f}, which JSON cannot hold; store nil or a finite number"),
                v,
            );
        }
        serde_json::to_writer(&mut self.out, &f).expect("writing to a Vec cannot fail");
        true
    }

    /// # Safety
    /// The walk's contract (see `value`), and `v` is a Bignum.
    unsafe fn bignum(&mut self, v: VALUE) -> bool {
        let mut nlz: usize = 0;
        // SAFETY: `v` is a live Bignum and the GVL is held (this function's
        // contract); `nlz` is ours to write.
        let (bits, negative) = unsafe {
            (
                rb_sys::rb_absint_numwords(v, 1, &mut nlz as *mut usize as *mut _),
                rb_sys::RBIGNUM_NEGATIVE_P(v),
            )
        };
        let fits = if negative {
            // SAFETY: as above.
            bits < 64 || (bits == 64 && unsafe { rb_sys::rb_absint_singlebit_p(v) } != 0)
        } else {
            bits <= 64
        };
        if !fits {
            return self.refuse(
                "an Integer wider than 64 bits, which would not come back exact; store it as a String",
                v,
            );
        }
        // SAFETY: `v` is a live Bignum (this function's contract) that fits
        // the type it is read as, so this does not raise (a raise would
        // unwind through our frames).
        let text = unsafe {
            if negative {
                rb_sys::rb_big2ll(v).to_string()
            } else {
                rb_sys::rb_big2ull(v).to_string()
            }
        };
        self.out.extend_from_slice(text.as_bytes());
        true
    }

    /// The string's bytes if they are UTF-8 (or plain ASCII in any encoding).
    ///
    /// # Safety
    /// The walk's contract (see `value`), and `s` is a String. The text
    /// borrows its bytes: it must be dropped before the walk is over.
    unsafe fn utf8<'s>(&mut self, s: VALUE) -> Result<&'s str, String> {
        // SAFETY: `s` is a live String, and the text is dropped before any
        // Ruby code runs (this function's contract).
        let bytes = unsafe { string_bytes(s) };
        // SAFETY: `s` is a live String and the GVL is held (as above).
        let range = unsafe { coderange(s) };
        // Seven-bit text is UTF-8 whatever its encoding says.
        // SAFETY: `s` is a live String and the GVL is held (as above).
        let is_utf8 = range == CODERANGE_7BIT
            || (range == CODERANGE_VALID && unsafe { rb_sys::rb_enc_get_index(s) } == self.utf8);
        if is_utf8 {
            // SAFETY: Ruby has checked these bytes are valid UTF-8 (or ASCII).
            return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
        }
        // SAFETY: `s` is a live String and the GVL is held (as above); an
        // index Ruby gave names a registered encoding, never freed, whose
        // name is a NUL-terminated C string.
        let (encoding, name) = unsafe {
            let encoding = rb_sys::rb_enc_get_index(s);
            let name = CStr::from_ptr((*rb_sys::rb_enc_from_index(encoding)).name);
            (encoding, name.to_string_lossy())
        };
        Err(if encoding == self.binary {
            "a binary (ASCII-8BIT) String, and JSON holds only text; call .force_encoding(\"UTF-8\") \
             if it is UTF-8 text, or store it Base64-encoded"
                .to_string()
        } else if range == CODERANGE_VALID {
            format!("a String in {name}, not UTF-8; call .encode(\"UTF-8\") first")
        } else {
            format!(
                "a String whose bytes are not valid {name}; fix its encoding \
                 (.force_encoding / .encode(\"UTF-8\", invalid: :replace)) first"
            )
        })
    }

    fn write_str(&mut self, text: &str) {
        let bytes = text.as_bytes();
        if plain(bytes) {
            let len = bytes.len();
            self.out.reserve(len + 2);
            // SAFETY: `reserve` made room for `len + 2` more bytes, all
            // written here before `set_len` takes them in; `bytes` is not
            // `self.out`, so the copy does not overlap.
            unsafe {
                let at = self.out.len();
                let dst = self.out.as_mut_ptr().add(at);
                *dst = b'"';
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.add(1), len);
                *dst.add(len + 1) = b'"';
                self.out.set_len(at + len + 2);
            }
        } else {
            serde_json::to_writer(&mut self.out, text).expect("writing to a Vec cannot fail");
        }
    }

    /// # Safety
    /// The walk's contract (see `value`), and `v` is a Symbol.
    unsafe fn symbol(&mut self, v: VALUE) -> bool {
        // SAFETY: `v` is a live Symbol (this function's contract); its name
        // is a frozen String kept alive by the Symbol, so the contract holds
        // for it too.
        let written = unsafe { self.string(rb_sys::rb_sym2str(v)) };
        self.kind = Some(std::borrow::Cow::Borrowed(kinds::write::SYMBOL));
        written
    }

    /// # Safety
    /// The walk's contract (see `value`), and `s` is a String.
    unsafe fn string(&mut self, s: VALUE) -> bool {
        // SAFETY: this function's contract; the text is written out and
        // dropped before it returns.
        match unsafe { self.utf8(s) } {
            Ok(text) => {
                self.write_str(text);
                true
            }
            Err(what) => self.refuse(what, s),
        }
    }

    /// Writes `v` if it is a plain ASCII String — the common case, inline,
    /// without the general dispatch. False for anything else.
    ///
    /// # Safety
    /// The walk's contract (see `value`); `v` may be of any type.
    #[inline(always)]
    unsafe fn ascii_string(&mut self, v: VALUE) -> bool {
        // SAFETY: `v` is live (this function's contract); its header is read
        // only once it is known not to be an immediate, and its coderange
        // only once it is known to be a String.
        let ascii = !SPECIAL_CONST_P(v)
            && unsafe {
                RB_BUILTIN_TYPE(v) == ruby_value_type::RUBY_T_STRING
                    && coderange(v) == CODERANGE_7BIT
            };
        if !ascii {
            return false;
        }
        // SAFETY: `v` is a live String whose bytes, 7-bit and so UTF-8, are
        // written out before any Ruby code runs.
        self.write_str(unsafe { std::str::from_utf8_unchecked(string_bytes(v)) });
        true
    }

    fn enter(&mut self) -> bool {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.problem = Some(Problem::TooDeep);
            return false;
        }
        true
    }

    /// # Safety
    /// The walk's contract (see `value`), and `v` is an Array.
    unsafe fn array(&mut self, v: VALUE) -> bool {
        if !self.enter() {
            return false;
        }
        // SAFETY: `v` is live and the GVL is held (this function's
        // contract); `rb_cArray` is set when Ruby boots and only read here.
        if unsafe { rb_sys::rb_obj_class(v) != rb_sys::rb_cArray } {
            self.canonical = false;
        }
        self.out.push(b'[');
        // No Ruby code runs during the walk, so the array cannot change under us.
        // SAFETY: `v` is a live Array (this function's contract).
        let (len, items) = unsafe { (RARRAY_LEN(v) as usize, RARRAY_CONST_PTR(v)) };
        let mut item_kinds = ItemKinds::default();
        for i in 0..len {
            if i > 0 {
                self.out.push(b',');
            }
            // SAFETY: `i < len`, and the array's items stay where they are
            // while the walk runs no Ruby code.
            let item = unsafe { *items.add(i) };
            // SAFETY: the walk's contract holds for `item`, part of `v`.
            if unsafe { self.ascii_string(item) } {
                continue;
            }
            // SAFETY: as above.
            if !unsafe { self.value(item) } {
                self.path.push(Segment::Index(i));
                return false;
            }
            if let Some(node) = self.kind.take() {
                item_kinds.add(i, node);
            }
        }
        self.out.push(b']');
        self.depth -= 1;
        self.kind = item_kinds.finish(len);
        true
    }

    /// # Safety
    /// The walk's contract (see `value`), and `v` is a Hash.
    unsafe fn hash(&mut self, v: VALUE) -> bool {
        if !self.enter() {
            return false;
        }
        // SAFETY: `v` is live and the GVL is held (this function's
        // contract); `rb_cHash` is set when Ruby boots and only read here.
        if unsafe { rb_sys::rb_obj_class(v) != rb_sys::rb_cHash } {
            self.canonical = false;
        }
        self.out.push(b'{');
        let mut walk = HashWalk {
            encoder: self,
            first: true,
            symbol_keys: false,
            string_keys: false,
            members: Vec::new(),
        };
        // SAFETY: `v` is a live Hash, unchanged while the walk runs no Ruby
        // code (this function's contract), so the walk's contract holds for
        // its members; `each_pair` gets `walk`, which outlives the call and
        // is not used otherwise until it returns.
        unsafe { rb_sys::rb_hash_foreach(v, Some(each_pair), &mut walk as *mut HashWalk as VALUE) };
        let (symbol_keys, string_keys) = (walk.symbol_keys, walk.string_keys);
        let members = std::mem::take(&mut walk.members);
        if self.problem.is_some() {
            return false;
        }
        let listed;
        let string_key_kinds = match (string_keys, symbol_keys) {
            (false, _) => None,
            (true, false) => Some(None),
            // SAFETY: this function's contract, and `each_pair` has checked
            // that the keys are Strings and Symbols.
            (true, true) => match unsafe { self.mixed_keys(v) } {
                Some(names) => {
                    listed = names;
                    Some(Some(listed.as_slice()))
                }
                None => return false,
            },
        };
        self.out.push(b'}');
        self.depth -= 1;
        self.kind = kinds::write::hash(string_key_kinds, &members);
        true
    }

    /// The String keys of a Hash that has both kinds of keys. `{"a" => 1,
    /// a: 2}` would be one key in JSON: refused (`None`) rather than lose one.
    ///
    /// # Safety
    /// The walk's contract (see `value`), and `v` is a Hash whose keys are
    /// all Strings or Symbols.
    unsafe fn mixed_keys(&mut self, v: VALUE) -> Option<Vec<String>> {
        let mut keys: Vec<VALUE> = Vec::new();
        // SAFETY: `v` is a live Hash (this function's contract); `collect_key`
        // gets `keys`, which outlives the call and is not used until it returns.
        unsafe {
            rb_sys::rb_hash_foreach(v, Some(collect_key), &mut keys as *mut Vec<VALUE> as VALUE)
        };
        let mut seen = HashSet::new();
        let mut strings = Vec::new();
        for key in keys {
            // Keys are Strings or Symbols here (checked while writing);
            // static Symbols are immediates and must not be dereferenced.
            // SAFETY: `key` is live, held by `v`; its header is read only
            // when it is not an immediate.
            let is_string = !SPECIAL_CONST_P(key)
                && unsafe { RB_BUILTIN_TYPE(key) } == ruby_value_type::RUBY_T_STRING;
            let text = if is_string {
                key
            } else {
                // SAFETY: `key` is a live Symbol: a key, and not a String.
                unsafe { rb_sys::rb_sym2str(key) }
            };
            // SAFETY: `text` is a live String (the key, or the Symbol's
            // frozen name), and its bytes are copied before Ruby code runs.
            let bytes = unsafe { string_bytes(text) };
            if !seen.insert(bytes.to_vec()) {
                self.problem = Some(Problem::DuplicateKey(
                    String::from_utf8_lossy(bytes).into_owned(),
                ));
                return None;
            }
            if is_string {
                // Checked to be UTF-8 while writing.
                strings.push(String::from_utf8_lossy(bytes).into_owned());
            }
        }
        Some(strings)
    }
}

struct HashWalk<'e> {
    encoder: &'e mut Encoder,
    first: bool,
    symbol_keys: bool,
    string_keys: bool,
    /// Kinds nodes of members whose values have one.
    members: Vec<(String, Node)>,
}

/// `rb_hash_foreach` callback: collects the keys into the `Vec` in `arg`.
///
/// # Safety
/// `arg` is a `*mut Vec<VALUE>`, live and used by nothing else meanwhile.
unsafe extern "C" fn collect_key(key: VALUE, _value: VALUE, arg: VALUE) -> c_int {
    // SAFETY: the caller's promise (`mixed_keys` passes its own `keys`).
    let keys = unsafe { &mut *(arg as *mut Vec<VALUE>) };
    keys.push(key);
    ST_CONTINUE
}

/// `rb_hash_foreach` callback: writes one member through the `HashWalk` in
/// `arg`.
///
/// # Safety
/// `arg` is a `*mut HashWalk`, live and used by nothing else meanwhile,
/// and the walk's contract (see `Encoder::value`) holds for `key` and
/// `value`.
unsafe extern "C" fn each_pair(key: VALUE, value: VALUE, arg: VALUE) -> c_int {
    // SAFETY: the caller's promise (`Encoder::hash` passes its own `walk`).
    let walk = unsafe { &mut *(arg as *mut HashWalk) };
    // A panic must not unwind into Ruby's C frames.
    // SAFETY: the walk's contract holds for `key` and `value` (the caller's
    // promise).
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
        walk.pair(key, value)
    }));
    match ok {
        Ok(true) => ST_CONTINUE,
        Ok(false) => ST_STOP,
        Err(_) => {
            walk.encoder.problem = Some(Problem::Type {
                what: "not encodable (an internal error)".into(),
                value: key,
            });
            ST_STOP
        }
    }
}

impl HashWalk<'_> {
    /// # Safety
    /// The walk's contract (see `Encoder::value`) holds for `key` and `value`.
    unsafe fn pair(&mut self, key: VALUE, value: VALUE) -> bool {
        let e = &mut *self.encoder;
        // SAFETY: `key` is live (this function's contract); its header is
        // read only when it is not an immediate.
        let symbol = STATIC_SYM_P(key)
            || (!SPECIAL_CONST_P(key)
                && unsafe { RB_BUILTIN_TYPE(key) } == ruby_value_type::RUBY_T_SYMBOL);
        // SAFETY: as above.
        let string = !symbol
            && !SPECIAL_CONST_P(key)
            && unsafe { RB_BUILTIN_TYPE(key) } == ruby_value_type::RUBY_T_STRING;
        let text = if symbol {
            self.symbol_keys = true;
            // SAFETY: `key` is a live Symbol (just checked).
            unsafe { rb_sys::rb_sym2str(key) }
        } else if string {
            self.string_keys = true;
            key
        } else {
            // SAFETY: `key` is live and the GVL is held (this function's contract).
            let class = unsafe { class_name(key) };
            return e.refuse(
                format!(
                    "a Hash with {} {class} key; keys must be Strings or Symbols",
                    article(&class)
                ),
                key,
            );
        };
        // SAFETY: the walk's contract holds for `text`, the key or the
        // Symbol's frozen name, and `name` is dropped before the walk is over.
        let name = match unsafe { e.utf8(text) } {
            Ok(name) => name,
            Err(what) => return e.refuse(format!("a key that is {what}"), key),
        };
        if !self.first {
            e.out.push(b',');
        }
        self.first = false;
        e.write_str(name);
        e.out.push(b':');
        // SAFETY: the walk's contract holds for `value` (this function's).
        if unsafe { e.ascii_string(value) } {
            return true;
        }
        // SAFETY: as above.
        if unsafe { e.value(value) } {
            if let Some(node) = e.kind.take() {
                self.members.push((name.to_owned(), node));
            }
            return true;
        }
        e.path.push(if symbol {
            Segment::Symbol(name.to_owned())
        } else {
            Segment::Key(name.to_owned())
        });
        false
    }
}

struct ItoaBuf {
    buf: [u8; 20],
    start: usize,
}

impl ItoaBuf {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(n: i64) -> ItoaBuf {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let negative = n < 0;
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if negative {
        i -= 1;
        buf[i] = b'-';
    }
    ItoaBuf { buf, start: i }
}

/// Encodes `value` as JSON, naming `root` (e.g. "data") in any error.
/// `ruby` shows that the GVL is held, as the walk needs.
pub(super) fn to_json(ruby: &Ruby, value: Value, root: &str) -> Result<Encoded, Error> {
    to_json_sized(ruby, value, root, 256)
}

/// As `to_json`, starting with room for `expected` bytes (say, the size of
/// the last encoding of the same data), so a large state is not copied
/// again and again as the buffer grows.
pub(super) fn to_json_sized(
    _ruby: &Ruby,
    value: Value,
    root: &str,
    expected: usize,
) -> Result<Encoded, Error> {
    let mut encoder = Encoder {
        out: Vec::with_capacity(expected.max(256)),
        path: Vec::new(),
        depth: 0,
        canonical: true,
        kind: None,
        problem: None,
        // SAFETY: the GVL is held (`_ruby`); this reads Ruby's encoding table.
        utf8: unsafe { rb_sys::rb_utf8_encindex() },
        // SAFETY: as above.
        binary: unsafe { rb_sys::rb_ascii8bit_encindex() },
    };
    // SAFETY: the walk's contract: the GVL is held (`_ruby`); `value` is a
    // live object that our caller keeps on its stack; the walk runs no Ruby
    // code (it only reads objects, and calls back nothing).
    let ok = unsafe { encoder.value(value.as_raw()) };
    let Some(problem) = encoder.problem.take() else {
        return if ok {
            Ok(Encoded {
                json: encoder.out,
                kinds: encoder.kind.map(std::borrow::Cow::into_owned),
                canonical: encoder.canonical,
            })
        } else {
            Err(arg_error(format!("{root} could not be encoded")))
        };
    };
    encoder.path.reverse();
    let path = KeyPath(root, &encoder.path).to_string();
    // Safe to run Ruby code again: the walk is over.
    Err(match problem {
        Problem::Type {
            what,
            value: culprit,
        } => {
            // SAFETY: `culprit` is part of `value` (or a Symbol's name), which
            // our caller still keeps alive.
            let culprit = unsafe { Value::from_raw(culprit) };
            type_error(format!("{path} is {what} (got {})", inspect_value(culprit)))
        }
        Problem::TooDeep => arg_error(format!(
            "{root} nests deeper than {MAX_DEPTH} levels (at {path}); flatten it, \
             or check for a structure that contains itself"
        )),
        Problem::DuplicateKey(name) => arg_error(format!(
            "{path} has both {name:?} and :{name} as keys of one Hash; they are the same key \
             in JSON, so one would be lost"
        )),
    })
}

#[cfg(test)]
mod tests;
