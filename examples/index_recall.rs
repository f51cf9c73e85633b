//! Recall@10 of the bundle index (issue 17) against the exact int8 scan, on real user vectors: the
//! sequence tower run on every warm-protocol test session of DATA. Two catalogues:
//! - the bundle's own rows (partitioned here as `omakase export --index on` would);
//! - a synthetic catalogue of N rows built from them (each row a mix of two real item vectors,
//!   `(1 − a)·v_i + a·v_j` with `a` uniform in [0, 0.5), plus Gaussian noise of `noise × ‖v_i‖/√d`
//!   per value), partitioned with the export's code, whose build time is reported.
//!
//! Printed: the recall curve by nprobe, the nprobe the export would choose (item queries, target
//! 0.99) and the user-query recall there, bytes of the centroids and of the probed partitions, and
//! the time of one exact scan against one indexed search (native, same run).
//!
//! `cargo run --release --example index_recall -- BUNDLE DATA [--synthetic N] [--noise 0.3]`

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use omakase::data::load::load_dir;
use omakase::data::split;
use omakase::export::index::recall::{recall_curve, Query};
use omakase::export::index::{measured_nprobe, partition, IndexOptions, Partitioning};
use omakase::runtime::index::{unit_query, Centroids, Ivf};
use omakase::runtime::kernels::TopK;
use omakase::runtime::store::ItemStore;
use omakase::runtime::{EmbeddingDtype, Manifest, Runtime};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (bundle, data) = match (args.first(), args.get(1)) {
        (Some(b), Some(d)) => (PathBuf::from(b), PathBuf::from(d)),
        _ => return Err("usage: index_recall BUNDLE DATA [--synthetic N] [--noise 0.3]".into()),
    };
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let synthetic: usize = flag("--synthetic").map_or(Ok(0), |s| s.parse())?;
    let noise: f32 = flag("--noise").map_or(Ok(0.3), |s| s.parse())?;

    let manifest_bytes = std::fs::read(bundle.join("manifest.json"))?;
    let manifest = Manifest::from_json(&manifest_bytes)?;
    let mut files = HashMap::new();
    for (_, entry) in manifest.files() {
        files.insert(entry.path.clone(), std::fs::read(bundle.join(&entry.path))?);
    }
    let runtime = Runtime::from_manifest(&manifest, &files)?;
    let d = runtime.dim();
    let n = runtime.item_count();

    let loaded = load_dir(&data);
    let warm = split::warm(&loaded.dataset);
    let mut sessions = Vec::new();
    for case in &warm.test {
        let ids: Vec<&str> = case.history.iter().map(|&i| loaded.dataset.items[i as usize].id.as_str()).collect();
        let (rows, _) = runtime.resolve(&ids);
        if !rows.is_empty() {
            sessions.push((runtime.user_vector(&rows)?, rows));
        }
    }
    println!("{}: {n} items, d {d}; {} test sessions of {}", bundle.display(), sessions.len(), data.display());

    // The bundle's own rows.
    let vectors: Vec<f32> = (0..n).flat_map(|r| runtime.items().vector(r)).collect();
    let opts = IndexOptions::default();
    let plan = partition(&vectors, d, &vec![0; n], &opts);
    let order = plan.order();
    let mut new_row = vec![0u32; n];
    order.iter().enumerate().for_each(|(new, &old)| new_row[old as usize] = new as u32);
    let excludes: Vec<Vec<u32>> =
        sessions.iter().map(|(_, rows)| rows.iter().map(|&r| new_row[r as usize]).collect()).collect();
    let queries: Vec<Query<'_>> =
        sessions.iter().zip(&excludes).map(|((user, _), exclude)| Query { vector: user, exclude }).collect();
    report("bundle rows", &vectors, d, &plan, &opts, &queries)?;

    if synthetic > 0 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
        let started = Instant::now();
        let mut rows = Vec::with_capacity(synthetic * d);
        for _ in 0..synthetic {
            let (i, j) = ((rng.next_u64() % n as u64) as usize, (rng.next_u64() % n as u64) as usize);
            let a = (rng.next_u32() as f32 / u32::MAX as f32) * 0.5;
            let (vi, vj) = (&vectors[i * d..(i + 1) * d], &vectors[j * d..(j + 1) * d]);
            let sigma = noise * vi.iter().map(|v| v * v).sum::<f32>().sqrt() / (d as f32).sqrt();
            for k in 0..d {
                let g: f32 = StandardNormal.sample(&mut rng);
                rows.push((1.0 - a) * vi[k] + a * vj[k] + sigma * g);
            }
        }
        println!("\nsynthetic: {synthetic} rows (noise {noise}) generated in {:.1} s", started.elapsed().as_secs_f64());
        let started = Instant::now();
        let plan = partition(&rows, d, &vec![0; synthetic], &opts);
        println!(
            "partition (k-means on {} rows + assignment of all): {:.1} s",
            opts.sample,
            started.elapsed().as_secs_f64()
        );
        let order = plan.order();
        let permuted: Vec<f32> =
            order.iter().flat_map(|&r| rows[r as usize * d..(r as usize + 1) * d].iter().copied()).collect();
        drop(rows);
        let queries: Vec<Query<'_>> = sessions.iter().map(|(user, _)| Query { vector: user, exclude: &[] }).collect();
        report("synthetic", &permuted, d, &Partitioning { members: contiguous(&plan), ..plan }, &opts, &queries)?;
    }
    Ok(())
}

/// `plan`'s members renumbered as contiguous bundle rows (the rows passed are already permuted).
fn contiguous(plan: &Partitioning) -> Vec<Vec<u32>> {
    let mut first = 0u32;
    plan.members
        .iter()
        .map(|m| {
            let rows = (first..first + m.len() as u32).collect();
            first += m.len() as u32;
            rows
        })
        .collect()
}

/// Recall curve of user queries, the export's nprobe, bytes, and exact vs indexed search time.
fn report(
    name: &str,
    rows_in_catalogue_order: &[f32],
    d: usize,
    plan: &Partitioning,
    opts: &IndexOptions,
    queries: &[Query<'_>],
) -> Result<(), Error> {
    let order = plan.order();
    let sizes = plan.sizes();
    let bundle_rows: Vec<f32> = order
        .iter()
        .flat_map(|&r| rows_in_catalogue_order[r as usize * d..(r as usize + 1) * d].iter().copied())
        .collect();
    let mut store = ItemStore::new(EmbeddingDtype::Int8, d);
    bundle_rows.chunks_exact(d).for_each(|r| store.push(r));
    let centroids = Centroids::from_values(plan.centroids.clone(), d)?;
    let p = sizes.len();
    let ivf = Ivf::new(centroids.clone(), &sizes, p)?;
    let started = Instant::now();
    // Item queries only: this example has no training histories (the export adds their user vectors).
    let chosen = measured_nprobe(&bundle_rows, d, EmbeddingDtype::Int8, &centroids, &sizes, opts, &[])?;
    let choose_s = started.elapsed().as_secs_f64();
    let curve = recall_curve(&store, &ivf, queries, 10);
    let (min, max) = (sizes.iter().min().unwrap_or(&0), sizes.iter().max().unwrap_or(&0));
    println!("\n{name}: {} rows in {p} partitions (sizes {min}..{max}), {} user queries", store.len(), curve.queries);
    let mut shown: Vec<usize> = (0..).map(|i| 1usize << i).take_while(|&x| x < p).collect();
    shown.extend([p, chosen]);
    shown.sort_unstable();
    shown.dedup();
    let row_bytes = (d + 4) as f64;
    let mean_partition = store.len() as f64 / p as f64 * row_bytes;
    for nprobe in shown {
        let mark = if nprobe == chosen {
            "  <- the item-query rule's nprobe (target 0.99; the export also measures user vectors)"
        } else {
            ""
        };
        println!(
            "  nprobe {nprobe:>5}: recall@10 {:.4}   rows fetched ~{:.2} MB{mark}",
            curve.at(nprobe),
            nprobe as f64 * mean_partition / 1e6
        );
    }
    println!(
        "  centroids {:.3} MB; all rows {:.1} MB; nprobe chosen in {choose_s:.1} s",
        (p * d * 4) as f64 / 1e6,
        store.len() as f64 * row_bytes / 1e6
    );
    // One exact scan against one indexed search, alternating, best of each.
    let (mut exact, mut indexed) = (f64::INFINITY, f64::INFINITY);
    for query in queries.iter().take(50) {
        let unit = unit_query(query.vector, d)?;
        let excluded: Vec<usize> = query.exclude.iter().map(|&r| r as usize).collect();
        let t = Instant::now();
        let mut top = TopK::with_excluded(10, &excluded);
        store.scan(&unit, &mut top);
        std::hint::black_box(top.into_sorted());
        exact = exact.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::hint::black_box(ivf.top_k(&store, &unit, 10, query.exclude, chosen));
        indexed = indexed.min(t.elapsed().as_secs_f64());
    }
    println!(
        "  one query, native, best of 50: exact scan {:.3} ms, indexed (nprobe {chosen}) {:.3} ms ({:.1}x)",
        exact * 1e3,
        indexed * 1e3,
        exact / indexed
    );
    Ok(())
}
