//! Arguments from Ruby, converted to what the core takes, with messages that
//! name the argument and show the value.

use magnus::{prelude::*, Error, Ruby, Symbol, Value};

use super::encode::{class_of, to_json};
use super::errors::{arg_error, type_error};
use crate::budget::Money;

/// `value.inspect`, cut short, never raising.
pub(super) fn inspect_value(value: Value) -> String {
    let text = value
        .funcall::<_, _, String>("inspect", ())
        .unwrap_or_else(|_| format!("#<{}>", class_of(value)));
    shorten(&text, 80)
}

pub(super) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

fn describe(value: Value) -> String {
    let class = class_of(value);
    format!("{} ({class})", inspect_value(value))
}

/// An amount of dollars: Integer, Float, Rational or BigDecimal, finite.
/// Sign is checked by the caller, which knows what the amount is for.
pub(super) fn money(value: Value, name: &str) -> Result<Money, Error> {
    let ruby = Ruby::get_with(value);
    let bad = |why: &str| arg_error(format!("{name} {why}; got {}", describe(value)));
    if let Some(int) = magnus::Integer::from_value(value) {
        return int
            .to_i64()
            .map(Money::from_dollars)
            .map_err(|_| bad("is too large"));
    }
    if let Some(float) = magnus::Float::from_value(value) {
        let f = float.to_f64();
        let why = if f.is_finite() {
            "is too large (the most a session holds is about $1.7e26)"
        } else {
            "must be a finite number"
        };
        return Money::from_f64(f).map_err(|_| bad(why));
    }
    if let Some(rational) = magnus::RRational::from_value(value) {
        let n = rational.num().to_i64().map_err(|_| bad("is too large"))?;
        let d = rational.den().to_i64().map_err(|_| bad("is too large"))?;
        return Money::from_ratio(n as i128, d as i128).map_err(|_| bad("is too large"));
    }
    if value.is_kind_of(ruby.class_numeric()) && class_of(value) == "BigDecimal" {
        let text: String = value.funcall("to_s", ("F",))?;
        return text
            .parse()
            .map_err(|_| bad("must be a finite number no larger than about $1.7e26"));
    }
    Err(bad(
        "must be a number of dollars (Integer, Float, Rational or BigDecimal)",
    ))
}

/// A count of items: a non-negative Integer.
pub(super) fn count(value: Value, name: &str) -> Result<u64, Error> {
    if let Some(int) = magnus::Integer::from_value(value) {
        return match int.to_i64() {
            Ok(n) if n >= 0 => Ok(n as u64),
            Ok(_) => Err(arg_error(format!(
                "{name} must not be negative; got {}",
                describe(value)
            ))),
            Err(_) => Err(arg_error(format!(
                "{name} is too large; got {}",
                describe(value)
            ))),
        };
    }
    Err(type_error(format!(
        "{name} must be a non-negative Integer; got {}",
        describe(value)
    )))
}

pub(super) fn optional_count(value: Value, name: &str) -> Result<Option<u64>, Error> {
    if value.is_nil() {
        Ok(None)
    } else {
        count(value, name).map(Some)
    }
}

/// A checkpoint number: a positive Integer.
pub(super) fn checkpoint_number(value: Value, name: &str) -> Result<u64, Error> {
    match count(value, name)? {
        0 => Err(arg_error(format!(
            "{name} must be a checkpoint number (1 or more); got 0"
        ))),
        n => Ok(n),
    }
}

/// A String (or Symbol) argument, as UTF-8.
pub(super) fn text(value: Value, name: &str) -> Result<String, Error> {
    let ruby = Ruby::get_with(value);
    let string = if let Some(symbol) = Symbol::from_value(value) {
        symbol.name()?.into_owned()
    } else if let Some(string) = magnus::RString::from_value(value) {
        let encoded = to_json(&ruby, string.as_value(), name)?;
        serde_json::from_slice(&encoded.json).map_err(|e| arg_error(e.to_string()))?
    } else {
        return Err(type_error(format!(
            "{name} must be a String; got {}",
            describe(value)
        )));
    };
    Ok(string)
}

pub(super) fn optional_text(value: Value, name: &str) -> Result<Option<String>, Error> {
    if value.is_nil() {
        Ok(None)
    } else {
        text(value, name).map(Some)
    }
}
