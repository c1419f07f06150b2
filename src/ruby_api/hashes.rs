//! The Hashes Ruby gets from the core: the state hash of SPEC (what
//! `restore` returns and callbacks receive), task summaries and history
//! rows. Built by hand with interned keys (`sym!`): `list` makes ten
//! thousand summaries, so these are on the hot path of reading.

use magnus::rb_sys::AsRawValue;
use magnus::{prelude::*, Error, RHash, Ruby, Value};

use super::decode::data_value;
use super::values::{f64_value, hash_of, opt, str_value, sym, time, u64_value};
use crate::budget::Money;
use crate::checkpoint::{BudgetFigures, Progress};
use crate::persistence::HistoryEntry;
use crate::session::{Data, RawJson, Snapshot};
use crate::store::claims::Claim;
use crate::store::TaskSummary;

#[rustfmt::skip]
fn budget_value(b: &BudgetFigures) -> rb_sys::VALUE {
    let money = |m: Money| f64_value(m.to_f64());
    hash_of(&[
        sym!("allocated"), opt(b.allocated, money),
        sym!("spent"), money(b.spent),
        sym!("remaining"), opt(b.remaining, money),
    ]).as_raw()
}

#[rustfmt::skip]
fn progress_value(p: &Progress) -> rb_sys::VALUE {
    hash_of(&[
        sym!("items_processed"), u64_value(p.items_processed),
        sym!("items_total"), opt(p.items_total, u64_value),
        sym!("percentage"), opt(p.percentage, f64_value),
    ]).as_raw()
}

/// The restored-state hash of SPEC: what `restore` returns and callbacks get.
#[rustfmt::skip]
pub(super) fn snapshot_hash(ruby: &Ruby, snapshot: &Snapshot, data: Option<Value>) -> Result<RHash, Error> {
    let data = match data {
        Some(data) => data,
        None => data_value(&snapshot.data, "data")?,
    };
    let error = match &snapshot.error {
        Some(error) => data_value(error, "error")?,
        None => ruby.qnil().as_value(),
    };
    let budget = budget_value(&snapshot.budget);
    let p = &snapshot.progress;
    Ok(hash_of(&[
        sym!("task_id"), str_value(&snapshot.task_id),
        sym!("checkpoint"), opt(snapshot.checkpoint, u64_value),
        sym!("timestamp"), time(ruby, snapshot.timestamp)?.as_raw(),
        sym!("status"), str_value(snapshot.status.as_str()),
        sym!("progress"), u64_value(p.items_processed),
        sym!("items_total"), opt(p.items_total, u64_value),
        sym!("percentage"), opt(p.percentage, f64_value),
        sym!("data"), data.as_raw(),
        sym!("message"), opt(snapshot.message.as_deref(), str_value),
        sym!("budget"), budget,
        sym!("error"), error.as_raw(),
        sym!("failures"), u64_value(snapshot.failures.into()),
        sym!("retries"), u64_value(snapshot.retries.into()),
    ]))
}

fn time_or_nil(ruby: &Ruby, text: &str) -> Result<Value, Error> {
    match crate::checkpoint::parse_timestamp(text) {
        Ok(t) => time(ruby, t),
        Err(_) => Ok(ruby.qnil().as_value()),
    }
}

/// A task summary as a Hash with Symbol keys; its two times as `Time`.
/// Built by hand with interned keys: `list` makes ten thousand of these.
#[rustfmt::skip]
pub(super) fn summary_hash(ruby: &Ruby, summary: &TaskSummary) -> Result<RHash, Error> {
    let progress = progress_value(&summary.progress);
    let budget = budget_value(&summary.budget);
    Ok(hash_of(&[
        sym!("task_id"), str_value(&summary.task_id),
        sym!("version"), str_value(&summary.version),
        sym!("status"), str_value(summary.status.as_str()),
        sym!("latest_checkpoint"), u64_value(summary.latest_checkpoint),
        sym!("latest_good_checkpoint"), opt(summary.latest_good_checkpoint, u64_value),
        sym!("checkpoints"), u64_value(summary.checkpoints),
        sym!("created_at"), time_or_nil(ruby, &summary.created_at)?.as_raw(),
        sym!("updated_at"), time_or_nil(ruby, &summary.updated_at)?.as_raw(),
        sym!("progress"), progress,
        sym!("budget"), budget,
        sym!("message"), opt(summary.message.as_deref(), str_value),
        sym!("failures"), u64_value(summary.failures.into()),
        sym!("retries"), u64_value(summary.retries.into()),
    ]))
}

/// A whole checkpoint document as a Hash (every key of the kind it was
/// saved as; the store's own members Symbols), seal and kinds removed.
pub(super) fn document_hash(found: &crate::store::Found) -> Result<Value, Error> {
    let kinds = found
        .envelope
        .kinds
        .clone()
        .map(|range| RawJson::new(found.json[range].to_vec()));
    let data = Data {
        json: RawJson::new(found.json.clone()),
        kinds,
    };
    let doc = data_value(&data, "checkpoint")?;
    if let Some(hash) = RHash::from_value(doc) {
        let ruby = Ruby::get_with(hash);
        for store_member in ["checksum", crate::checkpoint::KINDS_MEMBER] {
            let _: Value = hash.delete(ruby.to_symbol(store_member))?;
        }
    }
    Ok(doc)
}

/// `{number:, damaged: false, timestamp:, status:, progress:, budget:,
/// message:, error:, copy_of:}`, or `{number:, damaged: true, problem:}`.
#[rustfmt::skip]
pub(super) fn history_row(ruby: &Ruby, entry: &HistoryEntry) -> Result<RHash, Error> {
    let row = match entry {
        HistoryEntry::Intact { number, facts, error, copy_of } => {
            let error = match error {
                Some(error) => data_value(error, "error")?,
                None => ruby.qnil().as_value(),
            };
            hash_of(&[
                sym!("number"), u64_value(*number),
                sym!("damaged"), ruby.qfalse().as_raw(),
                sym!("timestamp"), time_or_nil(ruby, &facts.timestamp)?.as_raw(),
                sym!("status"), str_value(facts.status.as_str()),
                sym!("progress"), progress_value(&facts.progress),
                sym!("budget"), budget_value(&facts.budget),
                sym!("message"), opt(facts.message.as_deref(), str_value),
                sym!("error"), error.as_raw(),
                sym!("copy_of"), opt(*copy_of, u64_value),
            ])
        }
        HistoryEntry::Damaged(skipped) => hash_of(&[
            sym!("number"), u64_value(skipped.number),
            sym!("damaged"), ruby.qtrue().as_raw(),
            sym!("problem"), str_value(&skipped.reason),
        ]),
    };
    Ok(row)
}

fn time_ns(ruby: &Ruby, ns: i64) -> Result<Value, Error> {
    time(ruby, chrono::DateTime::from_timestamp_nanos(ns))
}

/// A queue task's claim: who holds it, until when, with which token.
#[rustfmt::skip]
pub(super) fn claim_hash(ruby: &Ruby, claim: &Claim) -> Result<RHash, Error> {
    let holder = claim.holder.as_ref();
    let spent: f64 = claim.spent.parse::<crate::budget::Money>().map_or(0.0, |m| m.to_f64());
    Ok(hash_of(&[
        sym!("task_id"), str_value(&claim.task_id),
        sym!("queue"), str_value(&claim.queue),
        sym!("run"), u64_value(claim.run),
        sym!("token"), u64_value(claim.token),
        sym!("state"), str_value(claim.state.as_str()),
        sym!("host"), opt(holder.map(|h| h.host.as_str()), str_value),
        sym!("pid"), opt(holder.map(|h| u64::from(h.pid)), u64_value),
        sym!("worker"), opt(holder.map(|h| h.worker.as_str()), str_value),
        sym!("claimed_at"), time_ns(ruby, claim.claimed_at_ns)?.as_raw(),
        sym!("expires_at"), time_ns(ruby, claim.expires_at_ns)?.as_raw(),
        sym!("expires_at_ns"), ruby.integer_from_i64(claim.expires_at_ns).as_raw(),
        sym!("cancel"), if claim.cancel { super::values::QTRUE } else { super::values::QFALSE },
        sym!("spent"), f64_value(spent),
        sym!("attempt"), u64_value(u64::from(claim.attempt)),
        sym!("base"), opt(claim.base, u64_value),
    ]))
}
