//! Streaming top-K selection: a bounded min-heap of the `k` best (index, score) pairs seen so far.
//!
//! Pushing n candidates costs O(n) comparisons against the heap's worst entry plus O(log k) for the few
//! that enter; nothing is sorted until [`TopK::into_sorted`] sorts the k survivors. Order is total and
//! deterministic: a higher score wins, and among equal scores the lower index wins, so the result does
//! not depend on the order of the pushes. NaN scores never enter.

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

/// The `k` best of a stream of scored indices, some indices excluded (e.g. the session's own items).
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    /// Min-heap by rank: `heap[0]` is the worst of the kept hits.
    heap: Vec<Hit>,
    /// Sorted, deduplicated excluded indices.
    excluded: Vec<usize>,
}

impl TopK {
    /// An empty selection of at most `k` hits (`k = 0` keeps nothing).
    pub fn new(k: usize) -> Self {
        TopK { k, heap: Vec::with_capacity(k.min(1 << 16)), excluded: Vec::new() }
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
            self.heap[0].score
        }
    }

    /// Offers one candidate; kept if it is not excluded, not NaN, and beats the worst kept hit (or
    /// fewer than `k` are kept).
    #[inline]
    pub fn push(&mut self, index: usize, score: f32) {
        if score.is_nan() || self.k == 0 {
            return;
        }
        let hit = Hit { index, score };
        if self.heap.len() == self.k && !hit.beats(&self.heap[0]) {
            return;
        }
        if !self.excluded.is_empty() && self.excluded.binary_search(&index).is_ok() {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(hit);
            self.sift_up(self.heap.len() - 1);
        } else {
            self.heap[0] = hit;
            self.sift_down(0);
        }
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
