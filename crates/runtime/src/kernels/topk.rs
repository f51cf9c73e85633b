//! Streaming top-K selection: a bounded min-heap of the `k` best (index, score) pairs seen so far.
//!
//! Pushing n candidates costs O(n) comparisons against the heap's worst entry plus O(log k) for the few
//! that enter; nothing is sorted until [`TopK::into_sorted`] sorts the k survivors. Order is total and
//! deterministic: a higher score wins, and among equal scores the lower index wins, so the result does
//! not depend on the order of the pushes. NaN scores never enter.
//!
//! A selection may carry an [`Admission`] (the merchandising rules, `crate::rules`): it decides, for
//! each candidate that reaches the threshold, whether the candidate may enter at all (filters), what
//! its score becomes (boosts), and at most how many hits may share a group (diversity). The scans
//! stay as they are: they call [`TopK::threshold`] and [`TopK::push`] only, and the threshold is
//! lowered by the most a boost can add, so no candidate a boost could lift is skipped. With a group
//! cap the kept hits are the greedy choice (best first, skipping a hit whose group is full), which
//! is the best list under the cap (a partition matroid: the greedy basis is optimal, and its worst
//! score only rises as candidates come, so the threshold stays a valid pre-filter).

/// One selected item: its index (in the caller's numbering) and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub index: usize,
    pub score: f32,
}

impl Hit {
    /// Whether `self` ranks before `other`: higher score first, then lower index.
    #[inline]
    fn beats(&self, other: &Hit) -> bool {
        self.score > other.score || (self.score == other.score && self.index < other.index)
    }
}

/// What a ruled selection admits (implemented by `crate::rules::CompiledRules`).
pub trait Admission {
    /// The score `index` ranks by once the rules apply (`score` plus its boosts), or `None` when the
    /// rules keep it out of the list.
    fn admit(&self, index: usize, score: f32) -> Option<f32>;
    /// The most [`Admission::admit`] can add to a score (≥ 0).
    fn max_gain(&self) -> f32;
    /// The group `index` counts against for [`Admission::group_cap`] (`None`: no group, no cap).
    fn group(&self, index: usize) -> Option<u32>;
    /// At most this many hits of one group (`usize::MAX`: no cap).
    fn group_cap(&self) -> usize;
}

/// The `k` best of a stream of scored indices, some indices excluded (e.g. the session's own items).
#[derive(Clone)]
pub struct TopK<'a> {
    k: usize,
    /// Min-heap by rank: `heap[0]` is the worst of the kept hits.
    heap: Vec<Hit>,
    /// Sorted, deduplicated excluded indices.
    excluded: Vec<usize>,
    /// The rules candidates pass (none: every candidate, its score unchanged).
    admission: Option<&'a dyn Admission>,
    /// [`Admission::max_gain`] (0 without rules): the threshold is lowered by it.
    slack: f32,
    /// [`Admission::group_cap`] (`usize::MAX` without rules).
    cap: usize,
}

impl std::fmt::Debug for TopK<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopK")
            .field("k", &self.k)
            .field("heap", &self.heap)
            .field("excluded", &self.excluded)
            .field("ruled", &self.admission.is_some())
            .finish()
    }
}

impl<'a> TopK<'a> {
    /// An empty selection of at most `k` hits (`k = 0` keeps nothing).
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: Vec::with_capacity(k.min(1 << 16)),
            excluded: Vec::new(),
            admission: None,
            slack: 0.0,
            cap: usize::MAX,
        }
    }

    /// [`TopK::with_excluded`] under `rules` (module docs).
    pub fn ruled(k: usize, excluded: &[usize], rules: &'a dyn Admission) -> Self {
        let mut top = TopK::with_excluded(k, excluded);
        let gain = rules.max_gain();
        top.slack = if gain.is_finite() && gain > 0.0 { gain } else { 0.0 };
        top.cap = rules.group_cap();
        top.admission = Some(rules);
        top
    }

    /// An empty selection that will never keep any of `excluded` (any order, duplicates allowed).
    pub fn with_excluded(k: usize, excluded: &[usize]) -> Self {
        let mut top = TopK::new(k);
        top.excluded = excluded.to_vec();
        top.excluded.sort_unstable();
        top.excluded.dedup();
        top
    }

    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of hits kept so far (≤ k).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// A score that any candidate must reach to have a chance of entering: −∞ while fewer than `k`
    /// hits are kept, else the worst kept score (+∞ when `k = 0`). Scans use it as a cheap pre-filter
    /// (`score >= threshold`), then call [`TopK::push`], which decides exactly.
    #[inline]
    pub fn threshold(&self) -> f32 {
        if self.k == 0 {
            f32::INFINITY
        } else if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            // Without rules the slack is 0 and this is the worst kept score, bit for bit.
            self.heap[0].score - self.slack
        }
    }

    /// Offers one candidate; kept if it is not excluded, not NaN, and beats the worst kept hit (or
    /// fewer than `k` are kept).
    #[inline]
    pub fn push(&mut self, index: usize, score: f32) {
        if score.is_nan() || self.k == 0 {
            return;
        }
        let score = match self.admission {
            None => score,
            Some(rules) => match rules.admit(index, score) {
                Some(s) if !s.is_nan() => s,
                _ => return,
            },
        };
        let hit = Hit { index, score };
        if self.heap.len() == self.k && !hit.beats(&self.heap[0]) {
            return;
        }
        if !self.excluded.is_empty() && self.excluded.binary_search(&index).is_ok() {
            return;
        }
        if self.cap != usize::MAX {
            if let Some(group) = self.admission.and_then(|rules| rules.group(index)) {
                if self.push_capped(hit, group) {
                    return;
                }
            }
        }
        if self.heap.len() < self.k {
            self.heap.push(hit);
            self.sift_up(self.heap.len() - 1);
        } else {
            self.heap[0] = hit;
            self.sift_down(0);
        }
    }

    /// When `group` already holds `cap` hits, `hit` can only take the place of the group's worst
    /// (the one circuit it closes); returns true then, whether or not it did. False: the group has
    /// room, and the hit enters as in an uncapped selection.
    fn push_capped(&mut self, hit: Hit, group: u32) -> bool {
        let Some(rules) = self.admission else { return false };
        let mut members = 0;
        let mut worst: Option<usize> = None;
        for (at, kept) in self.heap.iter().enumerate() {
            if rules.group(kept.index) == Some(group) {
                members += 1;
                if worst.is_none_or(|w| self.heap[w].beats(kept)) {
                    worst = Some(at);
                }
            }
        }
        if members < self.cap {
            return false;
        }
        if let Some(w) = worst {
            if hit.beats(&self.heap[w]) {
                // A better hit in the place of a kept one moves towards the leaves of the min-heap.
                self.heap[w] = hit;
                self.sift_down(w);
            }
        }
        true
    }

    /// The kept hits, best first (higher score, then lower index).
    pub fn into_sorted(mut self) -> Vec<Hit> {
        self.heap.sort_unstable_by(|a, b| {
            b.score.partial_cmp(&a.score).unwrap_or(std::cmp::Ordering::Equal).then(a.index.cmp(&b.index))
        });
        self.heap
    }

    fn sift_up(&mut self, mut at: usize) {
        while at > 0 {
            let parent = (at - 1) / 2;
            if self.heap[parent].beats(&self.heap[at]) {
                self.heap.swap(parent, at);
                at = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut at: usize) {
        let len = self.heap.len();
        loop {
            let (left, right) = (2 * at + 1, 2 * at + 2);
            let mut worst = at;
            if left < len && self.heap[worst].beats(&self.heap[left]) {
                worst = left;
            }
            if right < len && self.heap[worst].beats(&self.heap[right]) {
                worst = right;
            }
            if worst == at {
                break;
            }
            self.heap.swap(at, worst);
            at = worst;
        }
    }
}
