//! Exact money. Amounts are integers of 10^-12 dollars, so a thousand
//! `track_cost(0.001)` add up to exactly 1.0, where Float addition would not.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Decimal places kept; finer amounts are rounded half to even.
pub const SCALE_DIGITS: u32 = 12;
const SCALE: i128 = 1_000_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Money(i128);

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn from_units(units: i128) -> Money {
        Money(units)
    }

    pub fn units(self) -> i128 {
        self.0
    }

    pub fn from_dollars(whole: i64) -> Money {
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

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn is_zero(self) -> bool {
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

/// What crossing a line of the budget means for the caller: log it once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetEvent {
    NearLimit {
        spent: Money,
        limit: Money,
        percent: String,
    },
    Exceeded {
        spent: Money,
        limit: Money,
    },
}

impl BudgetEvent {
    pub fn message(&self, task_id: &str) -> String {
        match self {
            BudgetEvent::NearLimit {
                spent,
                limit,
                percent,
            } => format!(
                "task {task_id:?} has used {percent}% of its budget (${} of ${})",
                spent.to_cents_string(),
                limit.to_cents_string()
            ),
            BudgetEvent::Exceeded { spent, limit } => format!(
                "task {task_id:?} is over budget: spent ${} of ${}; call increase_budget to go on",
                spent.to_cents_string(),
                limit.to_cents_string()
            ),
        }
    }
}

/// A cost must not be negative: costs only add up.
pub fn check_cost(amount: Money) -> Result<()> {
    if amount.is_negative() {
        return Err(Error::invalid(format!(
            "amount must not be negative (costs only add up); got {amount}"
        )));
    }
    Ok(())
}

/// Spending against an optional limit, with the two warnings each given once.
#[derive(Debug, Clone)]
pub struct Budget {
    allocated: Option<Money>,
    spent: Money,
    warn_threshold: Money,
    warned_near: bool,
    warned_over: bool,
}

impl Budget {
    /// `warn_threshold` is the fraction of the limit (0.8 for 80%) at which
    /// `near_limit` turns true.
    pub fn new(allocated: Option<Money>, warn_threshold: f64) -> Budget {
        Budget {
            allocated,
            spent: Money::ZERO,
            warn_threshold: Money::from_f64(warn_threshold).unwrap_or(Money::ZERO),
            warned_near: false,
            warned_over: false,
        }
    }

    /// Continues from a persisted amount. Lines already crossed are not
    /// announced again.
    pub fn resume(&mut self, spent: Money) {
        self.spent = spent;
        self.warned_near = self.near_limit();
        self.warned_over = self.over();
    }

    pub fn allocated(&self) -> Option<Money> {
        self.allocated
    }

    pub fn spent(&self) -> Money {
        self.spent
    }

    /// `None` without a limit, and where the difference does not fit (a
    /// resumed checkpoint may say anything it can parse as spent).
    pub fn remaining(&self) -> Option<Money> {
        self.allocated.and_then(|a| a.checked_sub(self.spent))
    }

    pub fn used_percent(&self) -> f64 {
        match self.allocated {
            Some(limit) => self.spent.percent_of(limit),
            None => 0.0,
        }
    }

    pub fn over(&self) -> bool {
        matches!(self.allocated, Some(limit) if self.spent > limit)
    }

    pub fn near_limit(&self) -> bool {
        match self.allocated {
            // spent >= limit * threshold, compared exactly in integers.
            Some(limit) => match (
                self.spent.0.checked_mul(SCALE),
                limit.0.checked_mul(self.warn_threshold.0),
            ) {
                (Some(lhs), Some(rhs)) => lhs >= rhs,
                _ => self.spent.to_f64() >= limit.to_f64() * self.warn_threshold.to_f64(),
            },
            None => false,
        }
    }

    pub fn track(&mut self, amount: Money) -> Result<Vec<BudgetEvent>> {
        check_cost(amount)?;
        self.spent = self
            .spent
            .checked_add(amount)
            .ok_or_else(|| Error::invalid("amount is too large"))?;
        Ok(self.new_events())
    }

    pub fn increase(&mut self, amount: Money) -> Result<()> {
        if amount.is_negative() || amount.is_zero() {
            return Err(Error::invalid(format!(
                "amount must be a positive number of dollars; got {amount}"
            )));
        }
        let limit = self.allocated.unwrap_or(Money::ZERO);
        self.allocated = Some(
            limit
                .checked_add(amount)
                .ok_or_else(|| Error::invalid("amount is too large"))?,
        );
        // A raised limit may un-cross the lines; warn again if they are crossed again.
        self.warned_near = self.near_limit();
        self.warned_over = self.over();
        Ok(())
    }

    fn new_events(&mut self) -> Vec<BudgetEvent> {
        let mut events = Vec::new();
        let Some(limit) = self.allocated else {
            return events;
        };
        if !self.warned_near && self.near_limit() {
            self.warned_near = true;
            events.push(BudgetEvent::NearLimit {
                spent: self.spent,
                limit,
                percent: format!("{:.1}", self.used_percent()),
            });
        }
        if !self.warned_over && self.over() {
            self.warned_over = true;
            events.push(BudgetEvent::Exceeded {
                spent: self.spent,
                limit,
            });
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Money {
        text.parse().unwrap()
    }

    #[test]
    fn a_thousand_tenths_of_a_cent_make_exactly_one_dollar() {
        let mut budget = Budget::new(None, 0.8);
        let tenth_of_cent = Money::from_f64(0.001).unwrap();
        for _ in 0..1000 {
            budget.track(tenth_of_cent).unwrap();
        }
        assert_eq!(budget.spent(), Money::from_dollars(1));
        assert_eq!(budget.spent().to_f64(), 1.0);
    }

    #[test]
    fn floats_mean_the_decimal_they_print_as() {
        assert_eq!(Money::from_f64(0.1).unwrap(), m("0.1"));
        assert_eq!(Money::from_f64(2.13).unwrap().to_string(), "2.13");
        assert_eq!(Money::from_f64(0.0000015).unwrap(), m("0.0000015"));
        assert_eq!(Money::from_f64(5.0).unwrap().to_string(), "5.0");
        assert!(Money::from_f64(f64::NAN).is_err());
        assert!(Money::from_f64(f64::INFINITY).is_err());
    }

    #[test]
    fn parsing_rounds_half_to_even_beyond_twelve_places() {
        assert_eq!(m("0.0000000000005").units(), 0);
        assert_eq!(m("0.0000000000015").units(), 2);
        assert_eq!(m("0.00000000000051").units(), 1);
        assert_eq!(m("-1.5").units(), -1_500_000_000_000);
        assert!("abc".parse::<Money>().is_err());
        assert!("1e5".parse::<Money>().is_err());
        assert!(".".parse::<Money>().is_err());
    }

    #[test]
    fn ratios_are_exact_or_rounded_half_even() {
        assert_eq!(Money::from_ratio(1, 4).unwrap(), m("0.25"));
        assert_eq!(Money::from_ratio(1, 3).unwrap(), m("0.333333333333"));
        assert!(Money::from_ratio(1, 0).is_err());
    }

    #[test]
    fn seed_example_remaining_and_percent() {
        let mut budget = Budget::new(Some(m("10.0")), 0.8);
        budget.track(m("0.25")).unwrap();
        budget.track(m("0.50")).unwrap();
        assert_eq!(budget.remaining().unwrap().to_f64(), 9.25);
        assert_eq!(budget.used_percent(), 7.5);
        assert!(!budget.over());
        assert!(!budget.near_limit());
    }

    #[test]
    fn each_line_is_announced_once() {
        let mut budget = Budget::new(Some(m("1.0")), 0.8);
        assert!(budget.track(m("0.5")).unwrap().is_empty());
        let events = budget.track(m("0.3")).unwrap();
        assert!(matches!(events.as_slice(), [BudgetEvent::NearLimit { .. }]));
        assert!(budget.track(m("0.1")).unwrap().is_empty());
        let events = budget.track(m("0.2")).unwrap();
        assert!(matches!(events.as_slice(), [BudgetEvent::Exceeded { .. }]));
        assert!(budget.track(m("0.2")).unwrap().is_empty());
        assert!(budget.over() && budget.near_limit());
    }

    #[test]
    fn crossing_both_lines_at_once_gives_both_events() {
        let mut budget = Budget::new(Some(m("1.0")), 0.8);
        assert_eq!(budget.track(m("2")).unwrap().len(), 2);
    }

    #[test]
    fn no_budget_means_no_predicates() {
        let mut budget = Budget::new(None, 0.8);
        budget.track(m("100")).unwrap();
        assert!(!budget.over());
        assert!(!budget.near_limit());
        assert_eq!(budget.remaining(), None);
        assert_eq!(budget.used_percent(), 0.0);
    }

    #[test]
    fn negative_amounts_are_refused_and_change_nothing() {
        let mut budget = Budget::new(Some(m("1")), 0.8);
        assert!(budget.track(m("-0.01")).is_err());
        assert_eq!(budget.spent(), Money::ZERO);
        assert!(budget.increase(m("0")).is_err());
        assert!(budget.increase(m("-1")).is_err());
    }

    #[test]
    fn increasing_the_budget_rearms_the_warnings() {
        let mut budget = Budget::new(Some(m("1")), 0.8);
        budget.track(m("1.5")).unwrap();
        budget.increase(m("5")).unwrap();
        assert_eq!(budget.allocated(), Some(m("6")));
        assert!(!budget.over());
        let events = budget.track(m("4")).unwrap();
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn resuming_does_not_repeat_warnings() {
        let mut budget = Budget::new(Some(m("1")), 0.8);
        budget.resume(m("0.9"));
        assert!(budget.track(m("0.05")).unwrap().is_empty());
    }

    #[test]
    fn cents_formatting() {
        assert_eq!(m("2.13").to_cents_string(), "2.13");
        assert_eq!(m("5").to_cents_string(), "5.00");
        assert_eq!(m("3.455").to_cents_string(), "3.46");
        assert_eq!(m("-0.45").to_cents_string(), "-0.45");
        assert_eq!(m("0.001").to_cents_string(), "0.00");
    }

    // Part of the fix for what the money target found (fuzz/regressions/
    // money/budget-*): amounts go into a checkpoint as their exact decimal
    // and come back through this parser, exponents and all.
    #[test]
    fn json_numbers_parse_exactly() {
        let j = |text: &str| Money::from_json_number(text);
        assert_eq!(j("2.13").unwrap(), m("2.13"));
        assert_eq!(j("5").unwrap(), m("5"));
        assert_eq!(j("-0.45").unwrap(), m("-0.45"));
        assert_eq!(j("1.5e-6").unwrap(), m("0.0000015"));
        assert_eq!(j("1.5E+2").unwrap(), m("150"));
        assert_eq!(j("0.0012e3").unwrap(), m("1.2"));
        assert_eq!(j("12345.123456789012").unwrap(), m("12345.123456789012"));
        let huge = "170141183460469231731687303.715884105727";
        assert_eq!(j(huge).unwrap(), m(huge));
        // Rounded half to even beyond 12 places, as the decimal parser does.
        assert_eq!(j("5e-13").unwrap().units(), 0);
        assert_eq!(j("1.5e-12").unwrap().units(), 2);
        assert_eq!(j("-2.5e-12").unwrap().units(), -2);
        assert_eq!(j("1e-400").unwrap(), Money::ZERO);
        assert_eq!(j("-0").unwrap(), Money::ZERO);
        assert_eq!(j("0e99999999999999999999").unwrap(), Money::ZERO);
        // Bounded work however long the exponent.
        assert!(j("1e400").is_err());
        assert!(j("1e99999999999999999999").is_err());
        assert_eq!(j("1e-99999999999999999999").unwrap(), Money::ZERO);
        for bad in [
            "", "-", "abc", "5.", ".5", "1e", "1e+", "--1", "+1", "1.2.3", "\"1\"", "null",
        ] {
            assert!(j(bad).is_err(), "{bad:?}");
        }
    }

    // Found in review (the money target now round-trips `checked_sub`
    // results too): the most negative amount, which `checked_sub` can give,
    // printed as a decimal that did not parse back ("too large").
    #[test]
    fn most_negative_amount_prints_and_parses_back() {
        let min = Money::from_units(i128::MIN);
        assert_eq!(min.to_string().parse::<Money>().unwrap(), min);
        assert_eq!(Money::from_json_number(&min.to_string()).unwrap(), min);
        let max = Money::from_units(i128::MAX);
        assert_eq!(max.to_string().parse::<Money>().unwrap(), max);
        assert!("170141183460469231731687303.715884105728"
            .parse::<Money>()
            .is_err());
    }

    // Found by fuzz/ (money; regressions/money/percent-of-huge-limit-*):
    // rounding doubled the remainder, which overflowed for a huge divisor
    // (a panic in debug builds), and negated a negative divisor, which
    // overflows for i128::MIN.
    #[test]
    fn division_rounds_without_overflowing() {
        let limit = Money::from_units(160_000_000_000_000_000_000_000_000_000_000_000_000);
        let spent = Money::from_units(1_500_000_000_000_000_000_000_000);
        assert_eq!(spent.percent_of(limit), 0.000000000001);
        assert_eq!(
            spent.percent_of(Money::from_units(i128::MAX)),
            0.000000000001
        );
        assert_eq!(
            spent.percent_of(Money::from_units(i128::MIN)),
            -0.000000000001
        );
        assert_eq!(Money::from_ratio(1, -4).unwrap(), m("-0.25"));
        assert_eq!(Money::from_ratio(-1, -4).unwrap(), m("0.25"));
        // Half to even either way round.
        for (n, d) in [
            (1, 8_000_000_000_000),
            (3, 8_000_000_000_000),
            (5, 2),
            (-5, 2),
        ] {
            let positive = Money::from_ratio(n, d).unwrap();
            assert_eq!(Money::from_ratio(-n, -d).unwrap(), positive);
            assert_eq!(Money::from_ratio(n, -d).unwrap().units(), -positive.units());
        }
        assert_eq!(Money::from_ratio(1, 8_000_000_000_000).unwrap().units(), 0);
        assert_eq!(Money::from_ratio(3, 8_000_000_000_000).unwrap().units(), 0);
        assert_eq!(Money::from_ratio(5, 8_000_000_000_000).unwrap().units(), 1);
    }

    // Found by fuzz/ (money; regressions/money/remaining-after-*): a resumed
    // spent amount may be anything a checkpoint can hold (here negative);
    // the remaining amount was an unchecked subtraction.
    #[test]
    fn remaining_does_not_overflow() {
        let mut budget = Budget::new(Some(Money::from_units(i128::MAX)), 0.8);
        budget.resume(Money::from_units(-1));
        assert_eq!(budget.remaining(), None);
        assert!(!budget.over());
        let _ = budget.used_percent();
        let _ = budget.near_limit();
    }

    #[test]
    fn display_is_shortest_exact_decimal() {
        assert_eq!(m("1").to_string(), "1.0");
        assert_eq!(m("-0.45").to_string(), "-0.45");
        assert_eq!(m("0.000000000001").to_string(), "0.000000000001");
    }
}
