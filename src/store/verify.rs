//! A checkpoint read back from any backend: its seal checked, its envelope
//! parsed once (the state left raw), its claims checked against where it
//! was found.

use std::ops::Range;

use super::seal::{self, Seal};
use super::{Envelope, Found};
use crate::checkpoint::CheckpointView;

/// Why a checkpoint's bytes cannot be trusted as checkpoint `number` of
/// `task`, if they cannot.
pub fn verify_checkpoint(bytes: &[u8], task: &str, number: u64) -> Result<(), String> {
    parse(bytes, task, number).map(|_| ())
}

/// The verified checkpoint in `bytes` (the sealed file as written).
pub(crate) fn open(mut bytes: Vec<u8>, task: &str, number: u64) -> Result<Found, String> {
    let (len, seal, envelope) = parse(&bytes, task, number)?;
    bytes.truncate(len);
    Ok(Found {
        number,
        json: bytes,
        envelope,
        seal,
    })
}

fn range_in(whole: &[u8], part: &str) -> Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

/// Checks the seal and the document once: the length of its JSON text,
/// its seal and what it says.
fn parse(bytes: &[u8], task: &str, number: u64) -> Result<(usize, Seal, Envelope), String> {
    let json = seal::verify(bytes)?;
    let seal = Seal {
        crc: seal::stated_crc(json).ok_or("its checksum is malformed")?,
        len: bytes.len() as u64,
    };
    let view = CheckpointView::parse(json)?;
    if view.task_id != task {
        return Err(format!("it belongs to task {:?}", view.task_id));
    }
    if view.sequence != Some(number) {
        return Err(format!(
            "it says it is checkpoint {:?}, not {number}",
            view.sequence
        ));
    }
    let kinds_of = |member: &str| -> Result<Option<Range<usize>>, String> {
        match view.kinds {
            Some(kinds) => Ok(crate::kinds::member_json(kinds.get(), member)?
                .map(|node| range_in(json, node.get()))),
            None => Ok(None),
        }
    };
    let envelope = Envelope {
        facts: view.facts(),
        time: view.time(),
        copy_of: view.rollback_of.or(view.retry_of),
        state: range_in(json, view.state.get()),
        state_kinds: kinds_of("state")?,
        error: view.error.map(|e| range_in(json, e.get())),
        error_kinds: kinds_of("error")?,
        kinds: view.kinds.map(|k| range_in(json, k.get())),
    };
    Ok((json.len(), seal, envelope))
}
