//! Training examples from the split's training sequences: windows of at most `max_len + 1` items,
//! each trained causally (the next item at every trained position), shuffled per epoch from the
//! seed, cut into batches.
//!
//! # Windows and their stride
//!
//! The sequence tower reads at most `max_len` items. A training sequence `i0 … i(L−1)` gives the
//! next-item targets `i1 … i(L−1)`. RecBole trains one case per target with the last `max_len`
//! items before it; causal training gets all the targets of a window from one pass instead. Windows
//! are anchored at the end of the sequence (so the most recent targets — the ones nearest to the
//! validation and test items — always see a full `max_len` context): the last window ends at the
//! last item, the previous one `stride` items earlier, and so on until a window reaches the start.
//! Each window trains the targets of its last `stride` positions (the earliest window: all of its
//! positions), so **every target is trained exactly once per epoch** whatever the stride. With
//! `stride = max_len` (the default) windows do not overlap and each target sees the items of its
//! window before it (from 1 up to `max_len`); a smaller stride costs `max_len / stride` times the
//! compute and gives every target at least `max_len − stride + 1` items of context (fewer only at
//! the start of a sequence) — closer to RecBole's cases.
//!
//! # Batches
//!
//! Plain runs of the shuffled windows, mixing short and long ones. Sorting windows into batches of
//! similar lengths saves padding — a third of the CPU time per epoch on amazon-office, whose
//! windows are mostly short — but learning per epoch slowed by as much (validation NDCG@10 0.024
//! instead of 0.032 after 8 epochs; 0.019 with every target weighted equally across batches), so
//! nothing was gained per CPU second and the simpler batching stays.

use candle_core::{Device, Tensor};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::{Histories, ModelError};

/// One training window: `items` (2 ..= max_len + 1 of them, oldest first) gives inputs
/// `items[..len − 1]`; position `p ≥ first_trained` is trained to predict `items[p + 1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub items: Vec<u32>,
    pub first_trained: usize,
}

impl Window {
    /// Number of next-item targets this window trains.
    pub fn targets(&self) -> usize {
        self.items.len() - 1 - self.first_trained
    }
}

/// Every training window of `sequences` (see the module docs), in sequence order, windows of one
/// sequence oldest first. Sequences shorter than 2 give none. `stride` must be in `1..=max_len`.
pub fn windows(sequences: &[Vec<u32>], max_len: usize, stride: usize) -> Vec<Window> {
    assert!((1..=max_len).contains(&stride), "stride {stride} not in 1..={max_len}");
    let mut all = Vec::new();
    for sequence in sequences {
        let mut of_sequence = Vec::new();
        let mut end = sequence.len();
        while end >= 2 {
            let start = end.saturating_sub(max_len + 1);
            let first_target = if start == 0 { 1 } else { (end - stride).max(start + 1) };
            of_sequence.push(Window { items: sequence[start..end].to_vec(), first_trained: first_target - 1 - start });
            if start == 0 {
                break;
            }
            end -= stride;
        }
        all.extend(of_sequence.into_iter().rev());
    }
    all
}

/// The order of `n` examples in epoch `epoch` of a stage (`purpose`, e.g. `train.shuffle`): a
/// Fisher–Yates shuffle driven by ChaCha8 seeded with (`seed`, `purpose`, `epoch`), so a resumed run
/// replays the same order without saving generator state.
/// (Index draws use `next_u64() % k`: the modulo bias is below 2⁻⁴⁰ for any realistic `k`.)
pub fn epoch_order(n: usize, seed: u64, purpose: &str, epoch: usize) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, purpose, epoch));
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// A seed for one purpose and epoch of a run (SplitMix64 over the run seed, the purpose's name and
/// the epoch): independent streams that a resumed run re-derives from the epoch number alone.
pub fn derive_seed(seed: u64, purpose: &str, epoch: usize) -> u64 {
    let mut state = seed;
    let mut mix = |value: u64| {
        state = state.wrapping_add(value).wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        state = z ^ (z >> 31);
    };
    for byte in purpose.bytes() {
        mix(byte as u64);
    }
    mix(epoch as u64);
    state
}

/// A batch of windows as tensors: right-padded inputs, the flat indices (`row * t + position`) of
/// the trained positions and their targets.
#[derive(Debug, Clone)]
pub struct WindowBatch {
    pub inputs: Histories,
    /// `[m]` `u32` indices into the flattened `[b * t]` positions.
    pub positions: Tensor,
    /// `[m]` `u32` item indices, one per trained position.
    pub targets: Tensor,
    /// `m`.
    pub num_targets: usize,
}

impl WindowBatch {
    pub fn new(windows: &[&Window], max_len: usize, n_items: usize, device: &Device) -> Result<Self, ModelError> {
        let inputs: Vec<&[u32]> = windows.iter().map(|w| &w.items[..w.items.len() - 1]).collect();
        let histories = Histories::new(&inputs, max_len, n_items, device)?;
        let t = inputs.iter().map(|i| i.len()).max().unwrap_or(0);
        let mut positions = Vec::new();
        let mut targets = Vec::new();
        for (row, window) in windows.iter().enumerate() {
            for p in window.first_trained..window.items.len() - 1 {
                positions.push((row * t + p) as u32);
                targets.push(window.items[p + 1]);
            }
        }
        if let Some(&item) = targets.iter().find(|&&item| item as usize >= n_items) {
            return Err(ModelError::UnknownItem { row: 0, position: 0, item, n_items });
        }
        let num_targets = targets.len();
        Ok(WindowBatch {
            inputs: histories,
            positions: Tensor::from_vec(positions, num_targets, device)?,
            targets: Tensor::from_vec(targets, num_targets, device)?,
            num_targets,
        })
    }
}

/// The items a run may learn from, and the compact indexing training uses for them. Under the cold
/// protocol, new items are left out of every training stage: they are neither inputs, targets nor
/// softmax candidates (their rows are simply absent from the compact catalogue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingItems {
    /// Compact index → catalogue index, increasing.
    pub rows: Vec<u32>,
    /// Catalogue index → compact index (`None` for an excluded item).
    pub compact: Vec<Option<u32>>,
}

impl TrainingItems {
    /// All items but those flagged in `excluded`.
    pub fn new(excluded: &[bool]) -> Self {
        let rows: Vec<u32> = (0..excluded.len() as u32).filter(|&i| !excluded[i as usize]).collect();
        let mut compact = vec![None; excluded.len()];
        for (c, &row) in rows.iter().enumerate() {
            compact[row as usize] = Some(c as u32);
        }
        TrainingItems { rows, compact }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Whether every catalogue item is kept (the warm protocol): compact = catalogue indices.
    pub fn is_everything(&self) -> bool {
        self.rows.len() == self.compact.len()
    }

    /// `sequence` in compact indices, excluded items dropped.
    pub fn remap(&self, sequence: &[u32]) -> Vec<u32> {
        sequence.iter().filter_map(|&item| self.compact.get(item as usize).copied().flatten()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trained_targets(sequences: &[Vec<u32>], max_len: usize, stride: usize) -> Vec<u32> {
        let mut targets: Vec<u32> = windows(sequences, max_len, stride)
            .iter()
            .flat_map(|w| (w.first_trained..w.items.len() - 1).map(move |p| w.items[p + 1]))
            .collect();
        targets.sort();
        targets
    }

    #[test]
    fn every_target_is_trained_once_whatever_the_stride() {
        let sequences: Vec<Vec<u32>> = vec![(0..23).collect(), (100..102).collect(), vec![7], (200..211).collect()];
        let mut expected: Vec<u32> = sequences.iter().flat_map(|s| s.iter().skip(1).copied()).collect();
        expected.sort();
        for max_len in [1, 3, 5, 50] {
            for stride in 1..=max_len.min(5) {
                assert_eq!(trained_targets(&sequences, max_len, stride), expected, "max_len {max_len} stride {stride}");
                for w in windows(&sequences, max_len, stride) {
                    assert!((2..=max_len + 1).contains(&w.items.len()), "{w:?}");
                }
            }
        }
    }

    #[test]
    fn windows_are_anchored_at_the_end() {
        let sequence: Vec<u32> = (0..10).collect();
        let got = windows(&[sequence], 4, 2);
        // Last window: the last 5 items, training its last 2 positions; the earliest trains all.
        assert_eq!(got.last().unwrap(), &Window { items: vec![5, 6, 7, 8, 9], first_trained: 2 });
        assert_eq!(got[0], Window { items: vec![0, 1, 2, 3], first_trained: 0 });
        assert!(got.iter().skip(1).all(|w| w.items.len() == 5));
    }

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let a = epoch_order(100, 7, "x", 3);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(a, epoch_order(100, 7, "x", 3));
        assert_ne!(a, epoch_order(100, 7, "x", 4));
        assert_ne!(a, epoch_order(100, 8, "x", 3));
        assert_ne!(a, epoch_order(100, 7, "y", 3));
    }

    #[test]
    fn batches_pick_the_trained_positions() {
        let w1 = Window { items: vec![1, 2, 3, 4], first_trained: 1 };
        let w2 = Window { items: vec![5, 6], first_trained: 0 };
        let batch = WindowBatch::new(&[&w1, &w2], 3, 10, &Device::Cpu).unwrap();
        assert_eq!(batch.inputs.lengths(), &[3, 1]);
        assert_eq!(batch.positions.to_vec1::<u32>().unwrap(), vec![1, 2, 3]);
        assert_eq!(batch.targets.to_vec1::<u32>().unwrap(), vec![3, 4, 6]);
        assert!(WindowBatch::new(&[&w1], 3, 4, &Device::Cpu).is_err(), "item 4 is outside a 4-item catalogue");
    }

    #[test]
    fn training_items_drop_and_renumber_excluded_items() {
        let items = TrainingItems::new(&[false, true, false, true, false]);
        assert_eq!(items.rows, vec![0, 2, 4]);
        assert_eq!(items.remap(&[4, 1, 2, 0, 3]), vec![2, 1, 0]);
        assert!(!items.is_everything());
        assert!(TrainingItems::new(&[false; 3]).is_everything());
    }
}
