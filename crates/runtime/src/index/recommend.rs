//! Recommendations through the index on a loaded [`Runtime`]: the runtime's own session handling,
//! user vector and explanations, with the full scan replaced by [`Ivf::top_k`]. What
//! `omakase recommend` runs on an indexed bundle ([`answer`]: scenarios and merchandising rules),
//! and the reference the browser's streamed answers are compared with.

use super::ivf::{unit_query, Ivf, Probe, Search};
use crate::engine::{Recommendations, Runtime};
use crate::error::RuntimeError;
use crate::scenario::{List, Request};

/// An indexed answer and what its search scanned.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedAnswer {
    pub recommendations: Recommendations,
    pub probed: Vec<usize>,
    pub missing: Vec<usize>,
}

/// [`Runtime::recommend`] through `ivf`, probing `nprobe` partitions. Refuses an index that covers
/// more rows than the runtime holds (it belongs to another bundle).
pub fn recommend<S: AsRef<str>>(
    runtime: &Runtime,
    ivf: &Ivf,
    session: &[S],
    k: usize,
    nprobe: usize,
) -> Result<IndexedAnswer, RuntimeError> {
    let (rows, unknown) = runtime.resolve(session);
    if rows.is_empty() {
        return Err(RuntimeError::EmptySession { unknown });
    }
    let mut answer = recommend_rows(runtime, ivf, &rows, k, nprobe)?;
    answer.recommendations.unknown = unknown;
    Ok(answer)
}

/// [`recommend`] on session rows.
pub fn recommend_rows(
    runtime: &Runtime,
    ivf: &Ivf,
    session: &[u32],
    k: usize,
    nprobe: usize,
) -> Result<IndexedAnswer, RuntimeError> {
    if k == 0 {
        return Err(RuntimeError::argument("k", "must be at least 1"));
    }
    let user = runtime.user_vector(session)?;
    let Search { hits, probed, missing } = top_k(runtime, ivf, &user, k, session, nprobe)?;
    let recommendations = runtime.explained(hits, session)?;
    Ok(IndexedAnswer { recommendations, probed, missing })
}

/// [`Runtime::top_k`] through `ivf`: the `k` best rows for `user` (`[d]`, any length) among the
/// `nprobe` nearest partitions and the rows past the index, never one of `exclude`.
pub fn top_k(
    runtime: &Runtime,
    ivf: &Ivf,
    user: &[f32],
    k: usize,
    exclude: &[u32],
    nprobe: usize,
) -> Result<Search, RuntimeError> {
    check(runtime, ivf)?;
    let query = unit_query(user, runtime.dim())?;
    Ok(ivf.top_k(runtime.items(), &query, k, exclude, nprobe))
}

/// A list through the index and what its search probed.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedList {
    pub list: List,
    /// The partitions scanned, nearest first (more than `nprobe` when the rules needed more rows
    /// to fill the list); `None` when the list scanned no rows (`popular`, `recently-viewed`, or a
    /// fallback to `popular`): the index was not needed.
    pub probe: Option<Probe>,
}

/// [`Runtime::answer`] through `ivf`, probing `nprobe` partitions: `for-you` and `similar` scan the
/// probed partitions (and the rows past the index) instead of every row, into the same ruled
/// selection, so filters, boosts, exclusions, pins and diversity act as on the full scan; when the
/// rules leave the selection short, the next-nearest partitions are scanned until it is full
/// ([`Ivf::scan_filling`]), so a filtered list still has `k` items when the catalogue holds them.
/// With `nprobe` = every partition it is [`Runtime::answer`]'s list; without rules it is
/// [`recommend`]'s. Refuses an index of another bundle, and an `nprobe` outside `1..=partitions`
/// (naming `nprobe`).
pub fn answer(runtime: &Runtime, ivf: &Ivf, request: &Request<'_>, nprobe: usize) -> Result<IndexedList, RuntimeError> {
    check(runtime, ivf)?;
    let partitions = ivf.partitions().len();
    if nprobe == 0 || nprobe > partitions {
        return Err(RuntimeError::argument("nprobe", format!("{nprobe} is not in 1..={partitions}")));
    }
    let mut probe = None;
    let list = runtime.answer_scanning(request, &mut |unit, top| {
        probe = Some(ivf.scan_filling(runtime.items(), unit, nprobe, top))
    })?;
    Ok(IndexedList { list, probe })
}

/// Refuses an index that covers more rows than the runtime holds or has another width (it belongs
/// to another bundle).
fn check(runtime: &Runtime, ivf: &Ivf) -> Result<(), RuntimeError> {
    if ivf.item_count() > runtime.items().len() || ivf.centroids().dim() != runtime.dim() {
        let reason = format!(
            "an index of {} rows of dim {} on {} rows of dim {}",
            ivf.item_count(),
            ivf.centroids().dim(),
            runtime.items().len(),
            runtime.dim()
        );
        return Err(RuntimeError::argument("index", reason));
    }
    Ok(())
}
