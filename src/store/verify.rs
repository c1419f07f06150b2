//! A checkpoint read back from any backend: its seal checked, its envelope
//! parsed once (the state left raw), its claims checked against where it
//! was found; a delta checkpoint resolved against the chain it names
//! (`checkpoint::delta`), so every reader sees the whole state.

use std::ops::Range;
use std::path::PathBuf;

use super::layout::TaskId;
use super::seal::{self, Seal};
use super::{Chain, Envelope, Found};
use crate::checkpoint::delta::{self, DeltaRecord};
use crate::checkpoint::CheckpointView;
use crate::error::{Error, Result};

/// The most links a chain may have: a writer starts a whole checkpoint
/// well before (`session`), so more means a damaged or foreign chain.
pub(crate) const MAX_CHAIN: usize = 4096;

/// Why a checkpoint's bytes cannot be trusted as checkpoint `number` of
/// `task`, if they cannot (a delta's own bytes: its chain is not read).
pub fn verify_checkpoint(bytes: &[u8], task: &str, number: u64) -> Result<(), String> {
    open_one(bytes.to_vec(), task, number).map(|_| ())
}

/// A checkpoint as stored: whole, or a link of a delta chain.
enum Opened {
    Whole(Box<Found>),
    Link(Link),
}

/// A delta checkpoint, verified, not yet resolved.
struct Link {
    json: Vec<u8>,
    seal: Seal,
    record: DeltaRecord,
    /// Where `"delta":{…}` is in `json`.
    member: Range<usize>,
}

/// The verified checkpoint `number` of `task`: `bytes` as stored, and
/// `read(n, full)` for the raw bytes of checkpoint `n` of a delta's chain,
/// which starts at `full` (a backend may fetch the chain at once).
/// `location` says where each is, for errors.
pub(crate) fn open(
    task: &TaskId,
    number: u64,
    bytes: Vec<u8>,
    location: &dyn Fn(u64) -> PathBuf,
    read: &mut dyn FnMut(u64, u64) -> Result<Option<Vec<u8>>>,
) -> Result<Found> {
    let damaged = |reason: String| Error::corrupt(task, number, location(number), reason);
    let newest = match open_one(bytes, task.as_str(), number).map_err(damaged)? {
        Opened::Whole(found) => return Ok(*found),
        Opened::Link(link) => link,
    };
    let broken = |at: u64, why: String| Error::Corrupt {
        task_id: task.to_string(),
        number,
        path: location(number),
        reason: format!("its delta chain is broken at checkpoint {at}: {why}"),
        broken_at: Some(at),
    };
    let mut links = vec![newest];
    let base = loop {
        let last = &links.last().expect("one at least").record;
        let (at, full) = (last.base, last.full);
        if links.len() >= MAX_CHAIN {
            return Err(broken(at, format!("the chain is longer than {MAX_CHAIN}")));
        }
        let Some(bytes) = read(at, full)? else {
            return Err(broken(at, "it is missing".into()));
        };
        match open_link(bytes, task.as_str(), at).map_err(|why| broken(at, why))? {
            Opened::Whole(found) if found.number != full => {
                return Err(broken(
                    at,
                    format!("the chain names {full} as its whole checkpoint"),
                ))
            }
            Opened::Whole(found) => break *found,
            Opened::Link(link) => links.push(link),
        }
    };
    let mut state = base.json[base.envelope.state.clone()].to_vec();
    let mut bytes = 0;
    for link in links.iter().rev() {
        let at = link.record.base + 1;
        delta::apply(&mut state, &link.record.ops).map_err(|why| broken(at, why))?;
        bytes += link.seal.len;
    }
    let newest = links.swap_remove(0);
    let chain = Chain {
        full: base.number,
        links: links.len() as u32 + 1,
        bytes,
    };
    resolved(task, number, newest, &state, chain).map_err(damaged)
}

/// Checkpoint `number` verified on its own bytes: a delta checkpoint
/// comes back with `"state":null` and a chain of no links that names its
/// whole checkpoint; its chain is not read.
pub(crate) fn open_shallow(
    task: &TaskId,
    number: u64,
    bytes: Vec<u8>,
    location: &dyn Fn(u64) -> PathBuf,
) -> Result<Found> {
    let damaged = |reason: String| Error::corrupt(task, number, location(number), reason);
    match open_one(bytes, task.as_str(), number).map_err(damaged)? {
        Opened::Whole(found) => Ok(*found),
        Opened::Link(link) => {
            let chain = Chain {
                full: link.record.full,
                links: 0,
                bytes: 0,
            };
            resolved(task, number, link, b"null", chain).map_err(damaged)
        }
    }
}

/// `link`'s document with `state` in place of its delta.
fn resolved(
    task: &TaskId,
    number: u64,
    link: Link,
    state: &[u8],
    chain: Chain,
) -> std::result::Result<Found, String> {
    let mut json = Vec::with_capacity(link.json.len() + state.len());
    json.extend_from_slice(&link.json[..link.member.start]);
    json.extend_from_slice(b"\"state\":");
    json.extend_from_slice(state);
    json.extend_from_slice(&link.json[link.member.end..]);
    let text = std::str::from_utf8(&json).map_err(|e| e.to_string())?;
    let view = CheckpointView::parse(text.as_bytes())?;
    let envelope = envelope_of(&json, &view, task.as_str(), number)?;
    Ok(Found {
        number,
        envelope,
        seal: link.seal,
        chain: Some(chain),
        json,
    })
}

/// For the fuzz target `apply_delta`: the state of checkpoint `number` of
/// `task` stored as `bytes`, its chain read from `chain`; or why it cannot
/// be read.
pub fn resolve_state(
    task: &str,
    number: u64,
    bytes: &[u8],
    chain: &std::collections::BTreeMap<u64, Vec<u8>>,
) -> std::result::Result<Vec<u8>, String> {
    let task = TaskId::parse(task).map_err(|e| e.to_string())?;
    let found = open(
        &task,
        number,
        bytes.to_vec(),
        &|n| PathBuf::from(format!("checkpoint {n}")),
        &mut |n, _| Ok(chain.get(&n).cloned()),
    )
    .map_err(|e| e.to_string())?;
    Ok(found.json[found.envelope.state.clone()].to_vec())
}

/// What a chain's inner link needs read: whose it is and its change (its
/// other members matter only for the checkpoint asked for, read in full).
#[derive(serde::Deserialize)]
struct LinkView<'a> {
    #[serde(borrow)]
    task_id: std::borrow::Cow<'a, str>,
    sequence: Option<u64>,
    delta: Option<DeltaRecord>,
}

/// A checkpoint read as a link of a chain: sealed, its task and number
/// checked, its delta parsed; a whole one (the chain's start) in full.
fn open_link(bytes: Vec<u8>, task: &str, number: u64) -> std::result::Result<Opened, String> {
    let json = seal::verify(&bytes)?;
    let seal = Seal {
        crc: seal::stated_crc(json).ok_or("its checksum is malformed")?,
        len: bytes.len() as u64,
    };
    let view: LinkView = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let Some(record) = view.delta else {
        return open_one(bytes, task, number);
    };
    if view.task_id != task {
        return Err(format!("it belongs to task {:?}", view.task_id));
    }
    if view.sequence != Some(number)
        || record.base.checked_add(1) != Some(number)
        || record.full > record.base
        || record.full == 0
    {
        return Err(format!(
            "it says it is checkpoint {:?} with base {} and full {}, not {number}",
            view.sequence, record.base, record.full
        ));
    }
    Ok(Opened::Link(Link {
        json: Vec::new(),
        seal,
        record,
        member: 0..0,
    }))
}

fn open_one(mut bytes: Vec<u8>, task: &str, number: u64) -> std::result::Result<Opened, String> {
    let json = seal::verify(&bytes)?;
    let seal = Seal {
        crc: seal::stated_crc(json).ok_or("its checksum is malformed")?,
        len: bytes.len() as u64,
    };
    let view = CheckpointView::parse(json)?;
    let len = json.len();
    if let Some(raw) = view.delta {
        let record = view.delta_record()?;
        if view.task_id != task || view.sequence != Some(number) {
            envelope_of(json, &view, task, number)?;
        }
        let value = range_in(json, raw.get());
        let member = member_start(json, value.start)
            .ok_or("its delta member is not where it is expected")?..value.end;
        bytes.truncate(len);
        return Ok(Opened::Link(Link {
            json: bytes,
            seal,
            record,
            member,
        }));
    }
    let envelope = envelope_of(json, &view, task, number)?;
    bytes.truncate(len);
    Ok(Opened::Whole(Box::new(Found {
        number,
        json: bytes,
        envelope,
        seal,
        chain: None,
    })))
}

/// Where the member whose value starts at `value` starts: its `"delta"` key.
fn member_start(json: &[u8], value: usize) -> Option<usize> {
    let before = json[..value].trim_ascii_end().strip_suffix(b":")?;
    before
        .trim_ascii_end()
        .strip_suffix(b"\"delta\"")
        .map(<[u8]>::len)
}

fn range_in(whole: &[u8], part: &str) -> Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

/// What a whole document says, checked against where it was found.
fn envelope_of(
    json: &[u8],
    view: &CheckpointView,
    task: &str,
    number: u64,
) -> std::result::Result<Envelope, String> {
    if view.task_id != task {
        return Err(format!("it belongs to task {:?}", view.task_id));
    }
    if view.sequence != Some(number) {
        return Err(format!(
            "it says it is checkpoint {:?}, not {number}",
            view.sequence
        ));
    }
    let kinds_of = |member: &str| -> std::result::Result<Option<Range<usize>>, String> {
        match view.kinds {
            Some(kinds) => Ok(crate::kinds::member_json(kinds.get(), member)?
                .map(|node| range_in(json, node.get()))),
            None => Ok(None),
        }
    };
    let state = view.state.ok_or("it is a delta")?;
    Ok(Envelope {
        facts: view.facts(),
        time: view.time(),
        copy_of: view.rollback_of.or(view.retry_of),
        state: range_in(json, state.get()),
        state_kinds: kinds_of("state")?,
        error: view.error.map(|e| range_in(json, e.get())),
        error_kinds: kinds_of("error")?,
        kinds: view.kinds.map(|k| range_in(json, k.get())),
    })
}
