//! The search's contract on random rows: probing every partition is the full scan (same rows,
//! same scores, bit for bit), fewer partitions give a subset scored identically, absent rows are
//! reported, rows past the index are always scanned.

use super::ivf::unit_query;
use super::{Centroids, Ivf};
use crate::kernels::TopK;
use crate::manifest::EmbeddingDtype;
use crate::store::ItemStore;

fn lcg_vectors(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    (0..n * d)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// `p` partitions of uneven sizes over `n` rows, each centroid the normalised mean of its rows.
fn index_over(vectors: &[f32], d: usize, sizes: &[usize], nprobe: usize) -> Ivf {
    let mut centroids = Vec::new();
    let mut first = 0;
    for &s in sizes {
        let mut mean = vec![0f32; d];
        for r in first..first + s {
            mean.iter_mut().zip(&vectors[r * d..(r + 1) * d]).for_each(|(m, v)| *m += v);
        }
        centroids.extend(unit_query(&mean, d).unwrap());
        first += s;
    }
    Ivf::new(Centroids::from_values(centroids, d).unwrap(), sizes, nprobe).unwrap()
}

fn store_of(vectors: &[f32], d: usize, dtype: EmbeddingDtype) -> ItemStore {
    let mut store = ItemStore::new(dtype, d);
    vectors.chunks_exact(d).for_each(|v| store.push(v));
    store
}

#[test]
fn probing_every_partition_is_the_full_scan_bit_for_bit() {
    let (d, sizes) = (24, [7usize, 30, 1, 55, 12, 40]);
    let n: usize = sizes.iter().sum();
    let vectors = lcg_vectors(n, d, 3);
    let ivf = index_over(&vectors, d, &sizes, 2);
    for dtype in [EmbeddingDtype::Int8, EmbeddingDtype::F16] {
        let store = store_of(&vectors, d, dtype);
        for (seed, exclude) in [(11, vec![]), (12, vec![0u32, 5, 60, 144]), (13, vec![3])] {
            let query = unit_query(&lcg_vectors(1, d, seed), d).unwrap();
            let excluded: Vec<usize> = exclude.iter().map(|&r| r as usize).collect();
            let mut full = TopK::with_excluded(10, &excluded);
            store.scan(&query, &mut full);
            let full: Vec<(u32, f32)> = full.into_sorted().into_iter().map(|h| (h.index as u32, h.score)).collect();
            let search = ivf.top_k(&store, &query, 10, &exclude, sizes.len());
            assert_eq!(search.hits, full, "{dtype:?}");
            assert!(search.missing.is_empty());
            // Fewer partitions: every hit is a full-scan score of a row in a probed partition.
            let narrow = ivf.top_k(&store, &query, 10, &exclude, 2);
            assert_eq!(narrow.probed.len(), 2);
            let mut all = vec![0f32; n];
            store.score_all(&query, &mut all);
            for (row, score) in &narrow.hits {
                assert_eq!(*score, all[*row as usize]);
                let p = ivf.partition_of(*row as usize).unwrap();
                assert!(narrow.probed.contains(&p), "row {row} of unprobed partition {p}");
                assert!(!exclude.contains(row));
            }
        }
    }
}

#[test]
fn the_probe_follows_the_centroids_and_rows_past_the_index_are_always_scanned() {
    let d = 4;
    // Two partitions pointing along e0 and e1, one row each; then a row past the index along e2.
    let vectors = vec![1.0, 0.1, 0.0, 0.0, 0.1, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    let centroids = Centroids::from_values(vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0], d).unwrap();
    let ivf = Ivf::new(centroids, &[1, 1], 1).unwrap();
    let store = store_of(&vectors, d, EmbeddingDtype::Int8);
    let query = unit_query(&[0.0, 1.0, 0.9, 0.0], d).unwrap();
    let search = ivf.top_k(&store, &query, 3, &[], 1);
    assert_eq!(search.probed, vec![1]);
    let rows: Vec<u32> = search.hits.iter().map(|h| h.0).collect();
    assert_eq!(rows, vec![1, 2], "the added row 2 is scanned, partition 0 is not");
    assert_eq!(ivf.partition_of(0), Some(0));
    assert_eq!(ivf.partition_of(1), Some(1));
    assert_eq!(ivf.partition_of(2), None);
}

#[test]
fn rows_that_are_not_here_are_reported_missing() {
    let (d, sizes) = (8, [5usize, 5, 5]);
    let vectors = lcg_vectors(15, d, 5);
    let ivf = index_over(&vectors, d, &sizes, 3);
    // A store holding only the first 10 rows: partition 2 is not there.
    let store = store_of(&vectors[..10 * d], d, EmbeddingDtype::Int8);
    let query = unit_query(&vectors[12 * d..13 * d], d).unwrap();
    let search = ivf.top_k(&store, &query, 4, &[], 3);
    assert_eq!(search.missing, vec![2]);
    assert!(search.hits.iter().all(|&(r, _)| r < 10));
}

#[test]
fn an_index_that_does_not_fit_its_partitions_is_refused() {
    let centroids = Centroids::from_values(vec![1.0, 0.0, 0.0, 1.0], 2).unwrap();
    assert!(Ivf::new(centroids.clone(), &[3], 1).is_err());
    assert!(Ivf::new(centroids.clone(), &[3, 0], 1).is_err());
    assert!(Ivf::new(centroids.clone(), &[3, 4], 0).is_err());
    assert!(Ivf::new(centroids.clone(), &[3, 4], 3).is_err());
    assert_eq!(Ivf::new(centroids, &[3, 4], 2).unwrap().item_count(), 7);
}

#[test]
fn scan_filling_probes_further_only_while_the_selection_is_short() {
    let (d, sizes) = (8, [5usize, 5, 5]);
    let vectors = lcg_vectors(15, d, 7);
    let ivf = index_over(&vectors, d, &sizes, 1);
    let store = store_of(&vectors, d, EmbeddingDtype::Int8);
    let query = unit_query(&vectors[..d], d).unwrap();
    // 8 hits need two partitions of 5 rows: the nearest, then the next-nearest.
    let mut top = TopK::new(8);
    let probe = ivf.scan_filling(&store, &query, 1, &mut top);
    assert_eq!(probe.probed, ivf.centroids().probe(&query, 2));
    assert_eq!(top.len(), 8);
    // 3 hits: the nearest partition fills them and nothing more is scanned (it is `scan`).
    let mut top = TopK::new(3);
    assert_eq!(ivf.scan_filling(&store, &query, 1, &mut top).probed, ivf.centroids().probe(&query, 1));
    // More hits than rows: every partition, then the selection stays short.
    let mut top = TopK::new(20);
    assert_eq!(ivf.scan_filling(&store, &query, 1, &mut top).probed.len(), 3);
    assert_eq!(top.len(), 15);
}
