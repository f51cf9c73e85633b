//! The evaluation splits of docs/evaluation.md: `warm` leave-one-out and `cold` (new items).
//!
//! Both are pure functions of a [`Dataset`]: no randomness, so the same dataset always gives the same
//! split. Users and items are referred to by their indices into [`Dataset::users`] and
//! [`Dataset::items`]; each user's events are already in chronological order (ties in file order), and
//! "last" below means last in that order.
//!
//! # warm: leave-one-out, exactly as RecBole 1.2.1 does it for sequential models
//!
//! RecBole first turns each user's sequence `i1 … in` into the `n − 1` next-item cases
//! `<i1>→i2, <i1,i2>→i3, …` (its `data_augmentation`), then splits *those cases* per user with
//! `leave_one_num = 2` (`_split_index_by_leave_one_out`): the last case is the test case, the one before
//! it the validation case, but never more than `cases − 1` are held out. Counting interactions:
//!
//! | interactions | training cases | validation | test |
//! |---|---|---|---|
//! | 1 | none (the sequence is `[i1]`) | – | – |
//! | 2 | `<i1>→i2` | – | – |
//! | 3 | `<i1>→i2` | – | `<i1,i2>→i3` |
//! | n ≥ 4 | `<i1>→i2 … <i1..i(n−3)>→i(n−2)` | `<i1..i(n−2)>→i(n−1)` | `<i1..i(n−1)>→in` |
//!
//! So a user needs ≥ 3 interactions to be tested and ≥ 4 to be validated. The subtle row is 3: RecBole
//! does hold out the last item as a test case but has no validation case for that user, and the
//! second-to-last item stays in training. (A plain leave-one-out over interactions would instead test
//! users with 2.) The training sequence of a user is the prefix the training cases are drawn from:
//! everything except the held-out items. Test and validation histories are the full prefix before the
//! target (the validation item is part of the test history, as in RecBole); models truncate them to
//! their own maximum length.
//!
//! # cold: items that appear late
//!
//! Let `[t_min, t_max]` be the time span of all interactions. An item is **new** when its first
//! interaction lies strictly after `t_min + 0.8 · (t_max − t_min)` (so a dataset whose interactions all
//! share one timestamp has no new item). Starting from the warm split:
//! - training sequences and validation cases lose every event of a new item (in histories too), and
//!   validation cases whose target is new are dropped: the model, and its early stopping, only ever see
//!   warm items; the caller must also leave new items out of pretraining ([`Split::new_items`]);
//! - test cases are the warm test cases whose target is new, ranked among all items, with their
//!   histories **unchanged**: a new item the shopper viewed earlier stays in the history, because at
//!   inference time every item is known by its content (the item tower encodes an unseen product), which
//!   is exactly the situation the protocol measures.

use super::Dataset;

/// Share of the time span, at its end, in which an item's first interaction makes it new.
pub const COLD_NEW_FRACTION: f64 = 0.2;

/// Which protocol a [`Split`] follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Warm,
    Cold,
}

/// One next-item prediction to score: given `history` (item indices, oldest first), rank `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    /// Index into [`Dataset::users`].
    pub user: u32,
    /// Item indices the user interacted with before the target, oldest first (never truncated here).
    pub history: Vec<u32>,
    /// Item index of the held-out interaction.
    pub target: u32,
}

/// A split of a dataset into what a model may learn from and what it is judged on.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub protocol: Protocol,
    /// Per user (same indices as [`Dataset::users`]), the item sequence the model may learn from,
    /// oldest first. May be empty (e.g. a cold user whose training items are all new).
    pub train: Vec<Vec<u32>>,
    /// At most one case per user (users with ≥ 4 interactions), in user order.
    pub validation: Vec<TestCase>,
    /// At most one case per user (users with ≥ 3 interactions), in user order.
    pub test: Vec<TestCase>,
    /// Per item (same indices as [`Dataset::items`]), whether it is new under the cold protocol;
    /// all `false` for `warm`. New items must be left out of training and pretraining.
    pub new_items: Vec<bool>,
}

impl Split {
    /// Number of items flagged new.
    pub fn num_new_items(&self) -> usize {
        self.new_items.iter().filter(|&&new| new).count()
    }
}

/// The split for `protocol`.
pub fn split(dataset: &Dataset, protocol: Protocol) -> Split {
    match protocol {
        Protocol::Warm => warm(dataset),
        Protocol::Cold => cold(dataset),
    }
}

/// How many of a user's last interactions RecBole holds out (test, then validation), given `n`
/// interactions: the `n − 1` next-item cases keep at least one for training.
fn held_out(n: usize) -> usize {
    let cases = n.saturating_sub(1);
    2.min(cases.saturating_sub(1))
}

/// Leave-one-out as RecBole 1.2.1 does it (see the module documentation for the thresholds).
pub fn warm(dataset: &Dataset) -> Split {
    let mut train = Vec::with_capacity(dataset.users.len());
    let mut validation = Vec::new();
    let mut test = Vec::new();
    for (user, history) in dataset.users.iter().enumerate() {
        let user = user as u32;
        let items: Vec<u32> = history.events.iter().map(|e| e.item).collect();
        let n = items.len();
        let held = held_out(n);
        if held >= 1 {
            test.push(TestCase { user, history: items[..n - 1].to_vec(), target: items[n - 1] });
        }
        if held >= 2 {
            validation.push(TestCase { user, history: items[..n - 2].to_vec(), target: items[n - 2] });
        }
        train.push(items[..n - held].to_vec());
    }
    Split { protocol: Protocol::Warm, train, validation, test, new_items: vec![false; dataset.items.len()] }
}

/// Items whose first interaction lies strictly after `t_min + (1 − new_fraction) · (t_max − t_min)`.
pub fn new_items(dataset: &Dataset, new_fraction: f64) -> Vec<bool> {
    let mut first_seen: Vec<Option<f64>> = vec![None; dataset.items.len()];
    let mut span: Option<(f64, f64)> = None;
    for event in dataset.users.iter().flat_map(|u| &u.events) {
        let t = event.timestamp;
        span = Some(span.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
        let first = &mut first_seen[event.item as usize];
        *first = Some(first.map_or(t, |f| f.min(t)));
    }
    let Some((t_min, t_max)) = span else {
        return vec![false; dataset.items.len()];
    };
    let cutoff = t_min + (1.0 - new_fraction) * (t_max - t_min);
    first_seen.iter().map(|first| first.is_some_and(|t| t > cutoff)).collect()
}

/// The cold protocol (see the module documentation) with [`COLD_NEW_FRACTION`].
pub fn cold(dataset: &Dataset) -> Split {
    cold_with_fraction(dataset, COLD_NEW_FRACTION)
}

/// The cold protocol with the last `new_fraction` of the time span defining new items.
pub fn cold_with_fraction(dataset: &Dataset, new_fraction: f64) -> Split {
    let is_new = new_items(dataset, new_fraction);
    let warm = warm(dataset);
    let keep_warm =
        |items: &[u32]| -> Vec<u32> { items.iter().copied().filter(|&item| !is_new[item as usize]).collect() };
    let train = warm.train.iter().map(|seq| keep_warm(seq)).collect();
    let validation = warm
        .validation
        .into_iter()
        .filter(|case| !is_new[case.target as usize])
        .map(|case| TestCase { history: keep_warm(&case.history), ..case })
        .collect();
    let test = warm.test.into_iter().filter(|case| is_new[case.target as usize]).collect();
    Split { protocol: Protocol::Cold, train, validation, test, new_items: is_new }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_out_follows_recbole_thresholds() {
        let got: Vec<usize> = (0..7).map(held_out).collect();
        assert_eq!(got, vec![0, 0, 0, 1, 2, 2, 2]);
    }
}
