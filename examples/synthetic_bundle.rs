//! A large indexed bundle from a real one (issue 17): N synthetic items around the source bundle's
//! item vectors, written through the export's own writer, for the 1M-item bench page and the
//! streamed e2e test.
//!
//! ```text
//! BUNDLE (towers, config, rows, items.json, popularity.json)
//!   ─► N rows: (1 − a)·v_i + a·v_j + noise  (examples/index_recall.rs's recipe: i, j random source
//!      rows, a uniform in [0, 0.5), Gaussian noise of σ = noise·‖v_i‖/√d per value)
//!   ─► item k: id `syn-000000`…, title "<title of i> #k", image and link of i (cards render),
//!      popularity (count, trending) of i
//!   ─► src/export/index: partition (k-means) ─► attach (one shard per partition, centroids, nprobe)
//!   ─► merchandising::attach (popularity.json) ─► index::stream::attach_stream (meta-, ids-,
//!      popular.json) ─► write_atomic_dir(OUT)
//! ```
//!
//! The towers (and encoders, when the source has them, unless `--no-encoders`) are the source's files, byte for byte, so a
//! session of synthetic ids runs the real sequence tower. Explain shards and columns.json are not
//! written (explanations give no text/image split; rules naming a column are refused by name).
//! Deterministic: same BUNDLE, N, noise and seed give the same bytes.
//!
//! `cargo run --release --example synthetic_bundle -- BUNDLE --items N --out DIR [--noise 0.3]
//!  [--seed 17] [--partitions P] [--nprobe N] [--no-encoders]`

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use omakase::export::index::stream::attach_stream;
use omakase::export::index::{attach, partition, IndexOptions};
use omakase::export::{merchandising, write_atomic_dir, Bundle, CatalogueVectors, ExportJob};
use omakase::runtime::manifest::{sha256_hex, FileEntry, Provenance};
use omakase::runtime::popularity::PopularityFile;
use omakase::runtime::{ItemMeta, Manifest, Runtime};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

type Error = Box<dyn std::error::Error>;

const USAGE: &str = "usage: synthetic_bundle BUNDLE --items N --out DIR [--noise 0.3] [--seed 17] [--partitions P] \
                     [--nprobe N] [--no-encoders]";

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let source = PathBuf::from(args.first().filter(|a| !a.starts_with("--")).ok_or(USAGE)?);
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let n: usize = flag("--items").ok_or(USAGE)?.parse()?;
    let out = PathBuf::from(flag("--out").ok_or(USAGE)?);
    let noise: f32 = flag("--noise").map_or(Ok(0.3), |s| s.parse())?;
    let seed: u64 = flag("--seed").map_or(Ok(17), |s| s.parse())?;
    let partitions = flag("--partitions").map(|s| s.parse::<usize>()).transpose()?;
    let nprobe = flag("--nprobe").map(|s| s.parse::<usize>()).transpose()?;
    let encoders = !args.iter().any(|a| a == "--no-encoders");
    if n == 0 {
        return Err("--items must be at least 1".into());
    }
    let started = Instant::now();

    let read =
        |path: &str| std::fs::read(source.join(path)).map_err(|e| format!("{}: {e}", source.join(path).display()));
    let manifest = Manifest::from_json(&read("manifest.json")?)?;
    let mut files = HashMap::new();
    for (_, entry) in manifest.files() {
        files.insert(entry.path.clone(), read(&entry.path)?);
    }
    let runtime = Runtime::from_manifest(&manifest, &files)?;
    let (d, m) = (runtime.dim(), runtime.item_count());
    let source_items: Vec<ItemMeta> = serde_json::from_slice(&files[&manifest.items.path])?;
    let source_popularity: Option<PopularityFile> = match &manifest.popularity {
        Some(entry) => Some(serde_json::from_slice(&files[&entry.path])?),
        None => None,
    };
    let vectors: Vec<f32> = (0..m).flat_map(|r| runtime.items().vector(r)).collect();
    drop(runtime);

    // The rows, and for each its source item (card and popularity).
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut rows = Vec::with_capacity(n * d);
    let mut origin = Vec::with_capacity(n);
    for _ in 0..n {
        let (i, j) = ((rng.next_u64() % m as u64) as usize, (rng.next_u64() % m as u64) as usize);
        let a = (rng.next_u32() as f32 / u32::MAX as f32) * 0.5;
        let (vi, vj) = (&vectors[i * d..(i + 1) * d], &vectors[j * d..(j + 1) * d]);
        let sigma = noise * vi.iter().map(|v| v * v).sum::<f32>().sqrt() / (d as f32).sqrt();
        for k in 0..d {
            let g: f32 = StandardNormal.sample(&mut rng);
            rows.push((1.0 - a) * vi[k] + a * vj[k] + sigma * g);
        }
        origin.push(i);
    }
    let width = n.saturating_sub(1).to_string().len().max(6);
    let items: Vec<ItemMeta> = origin
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let src = &source_items[i];
            ItemMeta {
                id: format!("syn-{k:0width$}"),
                title: format!("{} #{k}", src.title),
                image: src.image.clone(),
                link: src.link.clone(),
            }
        })
        .collect();
    let counts: Vec<u64> = match &source_popularity {
        Some(p) => origin.iter().map(|&i| p.count[i]).collect(),
        None => vec![0; n],
    };
    let generated_s = started.elapsed().as_secs_f64();

    // The export's index: partitions ordered by popularity, the catalogue permuted to their order.
    let opts = IndexOptions { partitions, nprobe, ..IndexOptions::default() };
    let t = Instant::now();
    let plan = partition(&rows, d, &counts, &opts);
    let partition_s = t.elapsed().as_secs_f64();
    let order = plan.order();
    let permuted = CatalogueVectors {
        fused: order.iter().flat_map(|&r| rows[r as usize * d..(r as usize + 1) * d].iter().copied()).collect(),
        text_only: vec![None; n],
        image_only: vec![None; n],
    };
    drop(rows);
    let items: Vec<ItemMeta> = order.iter().map(|&r| items[r as usize].clone()).collect();
    let popularity = source_popularity.as_ref().map(|p| PopularityFile {
        item_count: n,
        half_life_days: p.half_life_days,
        reference_time: p.reference_time,
        interactions: order.iter().map(|&r| p.count[origin[r as usize]]).sum(),
        count: order.iter().map(|&r| p.count[origin[r as usize]]).collect(),
        trending: order.iter().map(|&r| p.trending[origin[r as usize]]).collect(),
    });

    // The bundle: the source's towers and encoders as they are, then the export's writers.
    let mut bundle_files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut copy = |entry: &FileEntry| -> Result<(), Error> {
        bundle_files.push((entry.path.clone(), read(&entry.path)?));
        Ok(())
    };
    copy(&manifest.sequence_tower)?;
    if let Some(tower) = &manifest.item_tower {
        copy(tower)?;
    }
    if encoders {
        for (_, entry) in manifest.encoder_files() {
            copy(entry)?;
        }
    }
    let items_json = serde_json::to_vec(&items)?;
    let items_entry =
        FileEntry { path: "items.json".into(), bytes: items_json.len() as u64, sha256: sha256_hex(&items_json) };
    bundle_files.push(("items.json".into(), items_json));
    let mut synthetic = manifest.clone();
    synthetic.item_count = n;
    synthetic.items = items_entry;
    synthetic.explain = None;
    synthetic.columns = None;
    synthetic.popularity = None;
    synthetic.index = None;
    synthetic.deltas = Vec::new();
    if !encoders {
        synthetic.encoders = None;
    }
    synthetic.provenance = Provenance {
        created_by: format!(
            "examples/synthetic_bundle: {n} items around {} (noise {noise}, seed {seed})",
            source.display()
        ),
        ..manifest.provenance.clone()
    };
    let mut bundle = Bundle { manifest: synthetic, files: bundle_files };
    let mut job = ExportJob::new(&source, &source, &out);
    job.shard = manifest.embedding_dtype;
    let t = Instant::now();
    attach(&mut bundle, &permuted, &plan, &job, &opts, &[])?; // no visitors: item queries only
    let attach_s = t.elapsed().as_secs_f64();
    merchandising::attach(&mut bundle, None, popularity)?;
    attach_stream(&mut bundle)?;
    write_atomic_dir(&out, &bundle.files)?;

    let index = bundle.manifest.index.as_ref().ok_or("the export wrote no index")?;
    let total: u64 = bundle.files.iter().map(|(_, b)| b.len() as u64).sum();
    let size_of = |name: &str| bundle.files.iter().find(|(n, _)| n == name).map_or(0, |(_, b)| b.len());
    let shard_bytes: u64 = bundle.manifest.shards.iter().map(|s| s.file.bytes).sum();
    println!(
        "{}: {n} items (d {d}) from {} ({m} items), {} partitions, nprobe {}",
        out.display(),
        source.display(),
        index.partitions,
        index.nprobe
    );
    println!(
        "  bytes: {total} in all; rows {shard_bytes}; items.json {}; centroids {}; popular.json {}",
        size_of("items.json"),
        index.centroids.bytes,
        index.popular.as_ref().map_or(0, |p| p.bytes)
    );
    println!(
        "  time: rows {generated_s:.1} s, partition {partition_s:.1} s, shards + nprobe {attach_s:.1} s, total {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
