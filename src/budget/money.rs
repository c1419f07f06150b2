//! Money: integers of 10^-12 dollars, parsed from and written as exact
//! decimals, so amounts add up exactly and read back as written.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Decimal places kept; finer amounts are rounded half to even.
pub(super) const SCALE_DIGITS: u32 = 12;
pub(super) const SCALE: i128 = 1_000_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Money(i128);

impl Money {
    pub(crate) const ZERO: Money = Money(0);

    #[cfg(test)]
    pub(crate) fn from_units(units: i128) -> Money {
        Money(units)
    }

    pub fn units(self) -> i128 {
        self.0
    }

    pub(crate) fn from_dollars(whole: i64) -> Money {
        Money(whole as i128 * SCALE)
    }

    /// The decimal a Float prints as (its shortest round-trip form), so 0.1
    /// means one tenth and not 0.1000000000000000055511151231257827.
    pub fn from_f64(value: f64) -> Result<Money> {
        if !value.is_finite() {
            return Err(Error::invalid(format!(
                "amount must be finite; got {value}"
            )));
        }
        // `{}` never uses exponent notation for f64, so the parser below
        // only ever sees plain decimals.
        format!("{value}").parse()
    }

    /// An exact fraction, such as a Ruby Rational; rounded half to even at
    /// 12 decimal places.
    pub fn from_ratio(numerator: i128, denominator: i128) -> Result<Money> {
        if denominator == 0 {
            return Err(Error::invalid("amount has a zero denominator"));
        }
        let scaled = numerator
            .checked_mul(SCALE)
            .ok_or_else(|| Error::invalid("amount is too large"))?;
        Ok(Money(div_round_half_even(scaled, denominator)))
    }

    pub fn to_f64(self) -> f64 {
        // Parsing the exact decimal gives the nearest Float, which prints back
        // as the same short decimal (2.13, not 2.1299999999999999).
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    pub(crate) fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub(crate) fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self / whole * 100` as a Float.
    pub fn percent_of(self, whole: Money) -> f64 {
        if whole.0 == 0 {
            return if self.0 > 0 { f64::INFINITY } else { 0.0 };
        }
        // Scale in integers first so 0.75 of 10.0 is exactly 7.5.
        match self.0.checked_mul(100 * SCALE) {
            Some(scaled) => Money(div_round_half_even(scaled, whole.0)).to_f64(),
            None => self.0 as f64 / whole.0 as f64 * 100.0,
        }
    }

    /// Formats with exactly two decimals, for display as dollars and cents.
    pub fn to_cents_string(self) -> String {
        let cents = div_round_half_even(self.0, SCALE / 100);
        let sign = if cents < 0 { "-" } else { "" };
        let cents = cents.abs();
        format!("{sign}{}.{:02}", cents / 100, cents % 100)
    }
}

/// `numerator / denominator` rounded half to even; `denominator` is not 0.
/// No intermediate overflows: the remainder is compared with what is left
/// of the divisor rather than doubled, and a negative divisor is not negated.
fn div_round_half_even(numerator: i128, denominator: i128) -> i128 {
    // n = quotient * d + remainder, 0 <= remainder < |d|. Only i128::MIN / -1
    // has no quotient in range; the callers never divide so, but saturate.
    let Some(quotient) = numerator.checked_div_euclid(denominator) else {
        return i128::MAX;
    };
    let remainder = numerator.rem_euclid(denominator).unsigned_abs();
    let divisor = denominator.unsigned_abs();
    // The exact quotient is quotient + remainder/d: one step away from
    // `quotient`, upwards for a positive divisor, downwards for a negative.
    let step = if denominator > 0 { 1 } else { -1 };
    match remainder.cmp(&(divisor - remainder)) {
        std::cmp::Ordering::Less => quotient,
        std::cmp::Ordering::Greater => quotient + step,
        std::cmp::Ordering::Equal if quotient & 1 == 0 => quotient,
        std::cmp::Ordering::Equal => quotient + step,
    }
}

impl FromStr for Money {
    type Err = Error;

    /// Parses a plain decimal such as "12", "-0.5" or "2.130".
    fn from_str(text: &str) -> Result<Money> {
        let bad = || Error::invalid(format!("amount {text:?} is not a decimal number"));
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(bad());
        }
        if !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let too_large = || Error::invalid(format!("amount {text} is too large"));
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_large())?
        };
        let kept = fraction.len().min(SCALE_DIGITS as usize);
        let mut units: i128 = if kept == 0 {
            0
        } else {
            fraction[..kept].parse::<i128>().map_err(|_| bad())?
        };
        units *= 10_i128.pow(SCALE_DIGITS - kept as u32);
        // Round half to even on the first dropped digit (and any after it).
        let dropped = &fraction[kept..];
        if let Some(first) = dropped.bytes().next() {
            let rest_nonzero = dropped.bytes().skip(1).any(|b| b != b'0');
            let round_up = first > b'5' || (first == b'5' && (rest_nonzero || units & 1 == 1));
            if round_up {
                units += 1;
            }
        }
        // Negative amounts are built downwards, so that the most negative
        // one (which Display prints) parses back too.
        let whole = whole.checked_mul(SCALE);
        let total = if negative {
            whole.and_then(|w| w.checked_neg()?.checked_sub(units))
        } else {
            whole.and_then(|w| w.checked_add(units))
        };
        total.map(Money).ok_or_else(too_large)
    }
}

impl Money {
    /// Parses the text of a JSON number exactly (`2.13`, `-0.5`, `5`,
    /// `1.5e-6`), rounding half to even beyond 12 decimal places: how a
    /// checkpoint's budget is read back, so that every amount the store
    /// writes (as its exact decimal) comes back unchanged.
    pub fn from_json_number(text: &str) -> Result<Money> {
        let bad = || Error::invalid(format!("amount {text:?} is not a JSON number"));
        let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match rest.split_once(['e', 'E']) {
            Some((mantissa, exponent)) => (mantissa, Some(exponent)),
            None => (rest, None),
        };
        let (whole, fraction) = match mantissa.split_once('.') {
            Some((whole, fraction)) if all_digits(fraction) => (whole, fraction),
            Some(_) => return Err(bad()),
            None => (mantissa, ""),
        };
        if !all_digits(whole) {
            return Err(bad());
        }
        // The exponent saturates: beyond a million places every amount is
        // either too large or rounds to zero, and the digits are not copied.
        let exponent: i64 = match exponent {
            None => 0,
            Some(e) => {
                let (sign, digits) = match e.strip_prefix('-') {
                    Some(digits) => (-1, digits),
                    None => (1, e.strip_prefix('+').unwrap_or(e)),
                };
                if !all_digits(digits) {
                    return Err(bad());
                }
                let magnitude = digits
                    .bytes()
                    .fold(0i64, |n, b| (n * 10 + i64::from(b - b'0')).min(1_000_000));
                sign * magnitude
            }
        };
        // The value is 0.DIGITS x 10^point, DIGITS without leading zeros.
        let digits = || whole.bytes().chain(fraction.bytes());
        let Some(leading_zeros) = digits().position(|b| b != b'0') else {
            return Ok(Money::ZERO);
        };
        let significant: Vec<u8> = digits().skip(leading_zeros).collect();
        let point = whole.len() as i64 + exponent - leading_zeros as i64;
        if point > 40 {
            return Err(Error::invalid(format!("amount {text} is too large")));
        }
        if point < -(SCALE_DIGITS as i64) {
            // Below 10^-13: less than half of the smallest unit.
            return Ok(Money::ZERO);
        }
        let mut plain = String::with_capacity(significant.len() + 48);
        if negative {
            plain.push('-');
        }
        let significant = std::str::from_utf8(&significant).expect("ASCII digits");
        if point <= 0 {
            plain.push_str("0.");
            plain.extend(std::iter::repeat_n('0', (-point) as usize));
            plain.push_str(significant);
        } else if point as usize >= significant.len() {
            plain.push_str(significant);
            plain.extend(std::iter::repeat_n('0', point as usize - significant.len()));
        } else {
            let (int, frac) = significant.split_at(point as usize);
            plain.push_str(int);
            plain.push('.');
            plain.push_str(frac);
        }
        plain
            .parse()
            .map_err(|_| Error::invalid(format!("amount {text} is too large")))
    }
}

impl fmt::Display for Money {
    /// The shortest exact decimal: 2.13, 1.0, -0.45.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / SCALE as u128;
        let fraction = abs % SCALE as u128;
        let mut fraction = format!("{fraction:012}");
        while fraction.len() > 1 && fraction.ends_with('0') {
            fraction.pop();
        }
        write!(f, "{sign}{whole}.{fraction}")
    }
}
