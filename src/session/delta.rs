//! When a session writes a delta checkpoint instead of the whole state
//! (`checkpoint::delta` has the format): the state is large, the change
//! since the session's own last checkpoint is small, and the chain since
//! the last whole checkpoint is still short and light. Restore reads the
//! whole checkpoint and every link after it, so the chain's bytes stay
//! below the state's own size and its links below `MAX_LINKS`: a restore
//! reads at most about twice the state.

use crate::checkpoint::delta::{self, DeltaRecord};
use crate::store::seal::Seal;
use crate::store::{Chain, DeltaBase};

use super::RawJson;

/// The most delta checkpoints after one whole one.
pub(crate) const MAX_LINKS: u32 = 2000;

/// What a delta is written against: the session's own last checkpoint.
#[derive(Debug, Clone)]
pub(super) struct Tail {
    pub(super) number: u64,
    pub(super) seal: Seal,
    pub(super) state: RawJson,
    /// The whole checkpoint the chain starts at (`number` itself if whole).
    pub(super) full: u64,
    pub(super) links: u32,
    /// The delta documents' bytes since `full`.
    pub(super) bytes: u64,
}

/// A delta chosen: its `delta` member and its base.
pub(super) struct Planned {
    pub(super) member: Vec<u8>,
    pub(super) base: DeltaBase,
}

impl Tail {
    /// After checkpoint `number` (sealed `seal`) of `state` was written:
    /// as a delta of `planned`, or whole.
    pub(super) fn after(
        previous: Option<&Tail>,
        planned: Option<&Planned>,
        number: u64,
        seal: Seal,
        state: RawJson,
    ) -> Tail {
        match (previous, planned) {
            (Some(previous), Some(_)) => Tail {
                number,
                seal,
                state,
                full: previous.full,
                links: previous.links + 1,
                bytes: previous.bytes + seal.len,
            },
            _ => Tail {
                number,
                seal,
                state,
                full: number,
                links: 0,
                bytes: 0,
            },
        }
    }

    /// A checkpoint read back: whole, or the end of `chain`.
    pub(super) fn resumed(number: u64, seal: Seal, state: RawJson, chain: Option<Chain>) -> Tail {
        let (full, links, bytes) = chain.map_or((number, 0, 0), |c| (c.full, c.links, c.bytes));
        Tail {
            number,
            seal,
            state,
            full,
            links,
            bytes,
        }
    }

    /// The delta member for `state` if writing one is worth it: `state` is
    /// at least `threshold` bytes, and the chain with it stays within its
    /// bounds (`envelope` estimates the rest of the document).
    pub(super) fn plan(&self, state: &[u8], threshold: u64, envelope: u64) -> Option<Planned> {
        let size = state.len() as u64;
        if size < threshold.max(1) || self.links >= MAX_LINKS {
            return None;
        }
        // Long common runs are what a delta saves; comparing is a memcmp,
        // far cheaper than the write it replaces.
        let ops = delta::diff(self.state.as_bytes(), state);
        let record = DeltaRecord {
            base: self.number,
            full: self.full,
            ops,
        };
        let member = crate::checkpoint::json_bytes(&record);
        let cost = member.len() as u64 + envelope;
        if self.bytes + cost > size {
            return None;
        }
        Some(Planned {
            member,
            base: DeltaBase {
                number: self.number,
                seal: self.seal,
                full: self.full,
            },
        })
    }
}

#[cfg(test)]
mod tests;
