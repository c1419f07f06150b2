//! Exact money. Amounts are integers of 10^-12 dollars, so a thousand
//! `track_cost(0.001)` add up to exactly 1.0, where Float addition would not.

mod money;

#[cfg(test)]
mod tests;

use crate::error::{Error, Result};
pub use money::Money;
use money::SCALE;

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
    pub(crate) fn message(&self, task_id: &str) -> String {
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
pub(crate) fn check_cost(amount: Money) -> Result<()> {
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

    pub(crate) fn allocated(&self) -> Option<Money> {
        self.allocated
    }

    pub(crate) fn spent(&self) -> Money {
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
                self.spent.units().checked_mul(SCALE),
                limit.units().checked_mul(self.warn_threshold.units()),
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
