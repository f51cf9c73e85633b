//! Spherical k-means for the bundle's index: partitions of unit-length rows by cosine, the
//! metric the runtime scores with. Fitted on a seeded sample of the catalogue (Lloyd iterations),
//! then every row is assigned to its nearest centroid; both steps are matrix products through
//! `gemm` (the kernel candle's CPU matmul uses), blocks of rows across the cores.
//!
//! Deterministic: the sample and the initial centroids come from a ChaCha stream of the seed, ties
//! go to the lower centroid, and an emptied cluster is re-seeded with the sample row its centroid
//! fits worst, so the same seed, rows and CPU give the same partition.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// What to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KMeans {
    /// Number of centroids `p` (fewer when the sample holds fewer rows).
    pub partitions: usize,
    /// Rows the centroids are fitted on (all of them when the catalogue is smaller).
    pub sample: usize,
    /// Lloyd iterations at most (fewer when an iteration moves no row).
    pub iterations: usize,
    pub seed: u64,
}

/// Centroids `[p, d]` (unit length) and every row's centroid `[n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    pub centroids: Vec<f32>,
    pub assignment: Vec<u32>,
}

/// Rows per block of a product (a block's scores are `BLOCK × p` f32: 16 MiB at p = 1024).
const BLOCK: usize = 4096;

/// Fits `opts.partitions` centroids to `units` (`[n, d]`, unit-length rows) and assigns every row.
pub fn cluster(units: &[f32], d: usize, opts: &KMeans) -> Clustering {
    let n = units.len() / d;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut sample: Vec<u32> = shuffled_prefix(n, opts.sample.max(1).min(n), &mut rng);
    sample.sort_unstable();
    let rows: Vec<f32> =
        sample.iter().flat_map(|&r| units[r as usize * d..(r as usize + 1) * d].iter().copied()).collect();
    let s = sample.len();
    let p = opts.partitions.clamp(1, s);
    let mut centroids: Vec<f32> = shuffled_prefix(s, p, &mut rng)
        .iter()
        .flat_map(|&i| rows[i as usize * d..(i as usize + 1) * d].iter().copied())
        .collect();
    let mut assignment = vec![u32::MAX; s];
    for _ in 0..opts.iterations {
        let nearest = nearest(&rows, &centroids, d);
        let moved = nearest.iter().zip(&assignment).filter(|((c, _), a)| c != *a).count();
        assignment = nearest.iter().map(|&(c, _)| c).collect();
        centroids = means(&rows, &nearest, p, d);
        if moved == 0 {
            break;
        }
    }
    let assignment = nearest(units, &centroids, d).into_iter().map(|(c, _)| c).collect();
    Clustering { centroids, assignment }
}

/// The first `count` of a seeded Fisher–Yates shuffle of `0..n`.
fn shuffled_prefix(n: usize, count: usize, rng: &mut ChaCha8Rng) -> Vec<u32> {
    let mut all: Vec<u32> = (0..n as u32).collect();
    for i in 0..count.min(n) {
        let j = i + (rng.next_u64() % (n - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(count.min(n));
    all
}

/// Each row's best centroid by inner product and that score (ties to the lower centroid).
pub fn nearest(rows: &[f32], centroids: &[f32], d: usize) -> Vec<(u32, f32)> {
    let p = centroids.len() / d;
    rows.par_chunks(BLOCK * d)
        .flat_map_iter(|block| {
            let m = block.len() / d;
            let mut scores = vec![0f32; m * p];
            product(block, m, centroids, p, d, &mut scores);
            scores
                .chunks_exact(p)
                .map(|row| {
                    let mut best = (0u32, f32::NEG_INFINITY);
                    for (c, &v) in row.iter().enumerate() {
                        if v > best.1 {
                            best = (c as u32, v);
                        }
                    }
                    best
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `out[m, p] = rows[m, d] · centroids[p, d]ᵀ`, one thread (the caller runs blocks in parallel).
fn product(rows: &[f32], m: usize, centroids: &[f32], p: usize, d: usize, out: &mut [f32]) {
    assert!(rows.len() == m * d && centroids.len() == p * d && out.len() == m * p, "product shapes");
    // SAFETY: the three buffers hold exactly the row-major m×d, p×d and m×p matrices (asserted);
    // `out` is borrowed exclusively.
    unsafe {
        gemm::gemm(
            m,
            p,
            d,
            out.as_mut_ptr(),
            1,
            p as isize,
            false,
            rows.as_ptr(),
            1,
            d as isize,
            centroids.as_ptr(),
            d as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// New centroids: each cluster's normalised sum. An empty cluster takes the row that fits its own
/// centroid worst (lowest score; the lower row on ties) among rows not already taken.
fn means(rows: &[f32], nearest: &[(u32, f32)], p: usize, d: usize) -> Vec<f32> {
    let mut sums = vec![0f32; p * d];
    let mut counts = vec![0usize; p];
    for (r, &(c, _)) in nearest.iter().enumerate() {
        counts[c as usize] += 1;
        sums[c as usize * d..(c as usize + 1) * d].iter_mut().zip(&rows[r * d..(r + 1) * d]).for_each(|(s, v)| *s += v);
    }
    let mut worst: Vec<usize> = (0..nearest.len()).collect();
    worst.sort_by(|&a, &b| nearest[a].1.total_cmp(&nearest[b].1).then(a.cmp(&b)));
    let mut spare = worst.into_iter();
    for c in 0..p {
        let sum = &mut sums[c * d..(c + 1) * d];
        if counts[c] == 0 {
            if let Some(r) = spare.next() {
                sum.copy_from_slice(&rows[r * d..(r + 1) * d]);
            }
        }
        let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            sum.iter_mut().for_each(|v| *v /= norm);
        }
    }
    sums
}

/// `vectors` (`[n, d]`) at unit length (a zero row stays zero).
pub fn unit_rows(vectors: &[f32], d: usize) -> Vec<f32> {
    let mut out = vectors.to_vec();
    out.par_chunks_mut(d).for_each(|row| {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|v| *v /= norm);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separated_clusters_are_found_and_the_seed_fixes_the_result() {
        // Three tight groups around e0, e1, e2 in 4 dimensions.
        let d = 4;
        let mut rows = Vec::new();
        for i in 0..300 {
            let mut v = vec![0.01 * ((i * 7 % 5) as f32), 0.0, 0.0, 0.02];
            v[i % 3] += 1.0;
            rows.extend(v);
        }
        let units = unit_rows(&rows, d);
        let opts = KMeans { partitions: 3, sample: 120, iterations: 20, seed: 9 };
        let a = cluster(&units, d, &opts);
        assert_eq!(a, cluster(&units, d, &opts), "same seed, same clustering");
        for i in 0..300 {
            assert_eq!(a.assignment[i], a.assignment[i % 3], "row {i} with its group");
        }
        let distinct: std::collections::BTreeSet<u32> = a.assignment.iter().copied().collect();
        assert_eq!(distinct.len(), 3);
    }

    #[test]
    fn nearest_matches_a_plain_loop() {
        let d = 8;
        let rows: Vec<f32> = (0..9000 * d).map(|i| ((i * 7919 % 101) as f32 - 50.0) / 50.0).collect();
        let centroids: Vec<f32> = (0..5 * d).map(|i| ((i * 31 % 17) as f32 - 8.0) / 8.0).collect();
        let fast = nearest(&rows, &centroids, d);
        for (r, &(c, score)) in fast.iter().enumerate() {
            let scores: Vec<f32> = centroids
                .chunks_exact(d)
                .map(|cv| cv.iter().zip(&rows[r * d..(r + 1) * d]).map(|(a, b)| a * b).sum())
                .collect();
            let best = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            assert!((score - best).abs() <= 1e-4 * (1.0 + best.abs()), "row {r}");
            assert!((scores[c as usize] - best).abs() <= 1e-4 * (1.0 + best.abs()), "row {r}");
        }
    }
}
