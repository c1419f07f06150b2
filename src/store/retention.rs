//! What retention removes after a write: the oldest checkpoints past
//! `max_checkpoints`, never the ones a kept checkpoint needs.

/// The oldest checkpoints past `max`, never the newest nor `keep` (the
/// newest good one): what retention removes after a write. A delta chain
/// (`[full, last]` in `chains`) goes whole or not at all: a kept checkpoint
/// needs every one from its chain's start.
pub(crate) fn prunable(
    numbers: &[u64],
    max: Option<u64>,
    keep: Option<u64>,
    chains: &[[u64; 2]],
) -> Vec<u64> {
    let Some(max) = max.filter(|&m| m > 0) else {
        return Vec::new();
    };
    let excess = numbers.len().saturating_sub(max as usize);
    let newest = numbers.last().copied();
    // `numbers` ascends: a chain's members are one run of it, and the
    // chain may go only if that run ends within the excess and holds
    // neither checkpoint that is always kept.
    let held = |chain: &[u64; 2]| {
        let end = numbers.partition_point(|&n| n <= chain[1]);
        let start = numbers.partition_point(|&n| n < chain[0]);
        end > excess
            || numbers[start..end]
                .iter()
                .any(|&n| Some(n) == keep || Some(n) == newest)
    };
    let held: Vec<&[u64; 2]> = chains.iter().filter(|c| held(c)).collect();
    numbers
        .iter()
        .take(excess)
        .copied()
        .filter(|&n| Some(n) != keep && Some(n) != newest)
        .filter(|&n| !held.iter().any(|c| (c[0]..=c[1]).contains(&n)))
        .collect()
}
