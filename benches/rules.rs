//! Merchandising rules inside the scan (issue 16, point 1), natively: the top-10 over synthetic int8
//! items at d = 64 with a filter keeping 10% and a boost (`support/rules_workload.rs`, the same
//! workload `tests/wasm_kernels/run.sh` times on wasm-simd), against the unfiltered top-10 on the
//! same bytes in the same run. Timed in pairs (unfiltered, ruled) back to back, 101 times after 3
//! warm-up pairs; printed: the median time of each and the median of the per-pair ratios, with the
//! rules compiled once (as the browser facade caches them) and compiled in every pass.
//!
//!   cargo bench --bench rules            OMAKASE_BENCH_SIZES=100000 picks the sizes
//!
//! Each ruled list is also checked: 10 hits, every one kept by the filter.

#[path = "support/rules_workload.rs"]
mod rules_workload;

use std::hint::black_box;
use std::time::Instant;

use omakase_runtime::kernels;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Median seconds of `a`, of `b`, and of the ratio b / a over pairs.
fn pairs<A, B>(mut a: impl FnMut() -> A, mut b: impl FnMut() -> B) -> (f64, f64, f64) {
    let (mut ta, mut tb, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for pass in 0..104 {
        let t = Instant::now();
        black_box(a());
        let x = t.elapsed().as_secs_f64();
        let t = Instant::now();
        black_box(b());
        let y = t.elapsed().as_secs_f64();
        if pass >= 3 {
            ta.push(x);
            tb.push(y);
            ratios.push(y / x);
        }
    }
    (median(&mut ta), median(&mut tb), median(&mut ratios))
}

fn main() {
    // `cargo bench` passes --bench; nothing else is read from the arguments.
    let sizes: Vec<usize> = std::env::var("OMAKASE_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').map(|n| n.trim().parse().expect("OMAKASE_BENCH_SIZES: numbers")).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000]);
    println!(
        "rules inside the scan, native ({} kernels), filter {:?} + boost {:?}; load {}",
        kernels::path(),
        rules_workload::FILTER,
        rules_workload::BOOST,
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().next().unwrap_or("?")
    );
    println!("| items | unfiltered µs | ruled µs | ruled / unfiltered | compile + ruled µs | (compile + ruled) / unfiltered | kept |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        let w = rules_workload::workload(n, 64);
        let compiled = w.compile();
        let hits = w.ruled(&compiled);
        assert_eq!(hits.len(), rules_workload::K, "a 10% filter over {n} items leaves 10 hits");
        assert!(hits.iter().all(|&h| compiled.allows(h as u32)), "every hit passes the filter");
        let (plain, ruled, ratio) = pairs(|| w.plain(), || w.ruled(&compiled));
        let (plain2, both, ratio2) = pairs(|| w.plain(), || w.ruled(&w.compile()));
        let us = |s: f64| s * 1e6;
        println!(
            "| {n} | {:.1} | {:.1} | {ratio:.2} | {:.1} | {ratio2:.2} | {:.3} |",
            us((plain + plain2) / 2.0),
            us(ruled),
            us(both),
            w.kept(&compiled)
        );
    }
}
