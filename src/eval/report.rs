//! The evaluation report: the JSON of docs/evaluation.md (`omakase eval --json`) and a compact table for
//! people.
//!
//! ```json
//! {"protocol": "warm", "dataset": "ml100k-mm", "users": 943, "items": 1682,
//!  "metrics":        {"recall@10": x, "ndcg@10": x, "recall@50": x, "ndcg@50": x, "mrr@10": x},
//!  "metrics_masked": {...},
//!  "baselines":        {"popularity": {"recall@10": x, ...}, ...},
//!  "baselines_masked": {"popularity": {...}, ...}}
//! ```
//! `metrics` are the primary (unmasked) figures; `users` is the number of test cases (one per user).
//! Baselines are keyed by name in sorted order (deterministic output). A cold report adds `warm`
//! (the same run's figures on the test cases whose target is not new) and `cold_warm_ratio`
//! (primary ÷ warm, per metric, unmasked), and `baselines_warm` the same for each baseline; a transfer report may name its `source_dataset`, and
//! adds `finetuned` (the figures after fine-tuning on this dataset's training part, same cases) when
//! such a run was given. `baselines_unavailable` names each baseline that could not be scored and
//! why (e.g. a learned baseline that was never trained), so a missing row is never silent.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::approximate::IndexReport;
use super::metrics::{MetricRatios, Metrics};
use super::protocol::{EvalProtocol, ProtocolResult};
use super::scorer::Evaluation;
use super::significance::{paired_ndcg10_difference, PairedDifference};

/// Figures over one set of cases.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CaseFigures {
    pub users: usize,
    pub metrics: Metrics,
    pub metrics_masked: Metrics,
}

impl CaseFigures {
    pub fn of(evaluation: &Evaluation) -> Self {
        CaseFigures {
            users: evaluation.cases(),
            metrics: evaluation.metrics(),
            metrics_masked: evaluation.metrics_masked(),
        }
    }
}

/// `omakase eval --json` (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub protocol: EvalProtocol,
    pub dataset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_dataset: Option<String>,
    pub users: usize,
    pub items: usize,
    pub metrics: Metrics,
    pub metrics_masked: Metrics,
    #[serde(default)]
    pub baselines: BTreeMap<String, Metrics>,
    #[serde(default)]
    pub baselines_masked: BTreeMap<String, Metrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<CaseFigures>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_warm_ratio: Option<MetricRatios>,
    /// cold: each baseline's figures on the warm-target cases (as `warm` is for the model).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub baselines_warm: BTreeMap<String, Metrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetuned: Option<CaseFigures>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub baselines_unavailable: BTreeMap<String, String>,
    /// Per baseline: the model's unmasked NDCG@10 minus the baseline's on the same cases, with a
    /// 95 % paired bootstrap interval (`eval::significance`): is the gap more than noise?
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ndcg10_vs_baselines: BTreeMap<String, PairedDifference>,
    /// The same comparison with each case's history masked (what the widget shows: it never
    /// recommends a product the visitor has already viewed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ndcg10_masked_vs_baselines: BTreeMap<String, PairedDifference>,
    /// `omakase eval --against RUN2`: another run of the same dataset and protocol (another setting
    /// or seed), scored on the same cases, and the paired differences model − RUN2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub against: Option<Against>,
    /// `omakase eval --index`: the bundle index's approximate path on the same cases, per `nprobe`
    /// (`eval::approximate`; docs/evaluation.md § The index's approximate path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexReport>,
}

/// The evaluated run against another run on the same cases (see [`Report::against`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Against {
    pub run: String,
    pub metrics: Metrics,
    pub metrics_masked: Metrics,
    pub ndcg10_difference: PairedDifference,
    pub ndcg10_masked_difference: PairedDifference,
}

impl Against {
    /// `None` when the two results do not cover the same cases.
    pub fn new(run: impl Into<String>, model: &ProtocolResult, other: &ProtocolResult) -> Option<Self> {
        Some(Against {
            run: run.into(),
            metrics: other.primary.metrics(),
            metrics_masked: other.primary.metrics_masked(),
            ndcg10_difference: paired_ndcg10_difference(&model.primary.ranks, &other.primary.ranks)?,
            ndcg10_masked_difference: paired_ndcg10_difference(
                &model.primary.ranks_masked,
                &other.primary.ranks_masked,
            )?,
        })
    }
}

impl Report {
    /// The report of the evaluated model's run under `protocol` on a catalogue of `items` items.
    pub fn new(protocol: EvalProtocol, dataset: impl Into<String>, items: usize, model: &ProtocolResult) -> Self {
        let primary = CaseFigures::of(&model.primary);
        let warm = model.comparison.as_ref().map(CaseFigures::of);
        Report {
            protocol,
            dataset: dataset.into(),
            source_dataset: None,
            users: primary.users,
            items,
            metrics: primary.metrics,
            metrics_masked: primary.metrics_masked,
            baselines: BTreeMap::new(),
            baselines_masked: BTreeMap::new(),
            cold_warm_ratio: warm.map(|w| primary.metrics.ratio_to(&w.metrics)),
            warm,
            baselines_warm: BTreeMap::new(),
            finetuned: None,
            baselines_unavailable: BTreeMap::new(),
            ndcg10_vs_baselines: BTreeMap::new(),
            ndcg10_masked_vs_baselines: BTreeMap::new(),
            against: None,
            index: None,
        }
    }

    /// Adds a baseline's primary figures (same protocol, same cases) under its scorer name.
    pub fn add_baseline(&mut self, result: &ProtocolResult) {
        let name = result.primary.scorer.clone();
        self.baselines.insert(name.clone(), result.primary.metrics());
        if let Some(warm) = &result.comparison {
            self.baselines_warm.insert(name.clone(), warm.metrics());
        }
        self.baselines_masked.insert(name, result.primary.metrics_masked());
    }

    /// [`Report::add_baseline`], plus the paired comparison of `model` (the result this report was
    /// made from) with the baseline on the same cases.
    pub fn add_baseline_compared(&mut self, model: &ProtocolResult, result: &ProtocolResult) {
        self.add_baseline(result);
        if let Some(d) = paired_ndcg10_difference(&model.primary.ranks, &result.primary.ranks) {
            self.ndcg10_vs_baselines.insert(result.primary.scorer.clone(), d);
        }
        if let Some(d) = paired_ndcg10_difference(&model.primary.ranks_masked, &result.primary.ranks_masked) {
            self.ndcg10_masked_vs_baselines.insert(result.primary.scorer.clone(), d);
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report of plain numbers and strings always serialises")
    }

    /// A compact table: one row per scorer, unmasked figures then masked ones (R = Recall, N = NDCG,
    /// columns in the order of [`Metrics::named`]).
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let source = self.source_dataset.as_deref().map(|s| format!(" (trained on {s})")).unwrap_or_default();
        let _ = writeln!(
            out,
            "{} protocol on {}{source}: {} users, {} items",
            self.protocol, self.dataset, self.users, self.items
        );
        let header = ["R@10", "N@10", "R@50", "N@50", "MRR@10"];
        let _ = writeln!(out, "{:<22} {}   | masked: {}", "", columns(&header), columns(&header));
        let mut row = |name: &str, unmasked: &Metrics, masked: Option<&Metrics>| {
            let masked = masked.map(figures).unwrap_or_default();
            let _ = writeln!(out, "{name:<22} {}   |         {masked}", figures(unmasked));
        };
        row("model", &self.metrics, Some(&self.metrics_masked));
        for (name, metrics) in &self.baselines {
            row(name, metrics, self.baselines_masked.get(name));
        }
        if let Some(warm) = &self.warm {
            row(&format!("model, warm ({} users)", warm.users), &warm.metrics, Some(&warm.metrics_masked));
        }
        if let Some(tuned) = &self.finetuned {
            row("model, fine-tuned", &tuned.metrics, Some(&tuned.metrics_masked));
        }
        for probe in self.index.iter().flat_map(|index| &index.probes) {
            row(&format!("model, index nprobe {}", probe.nprobe), &probe.metrics, Some(&probe.metrics_masked));
        }
        for (what, differences) in
            [("", &self.ndcg10_vs_baselines), (", history masked", &self.ndcg10_masked_vs_baselines)]
        {
            if differences.is_empty() {
                continue;
            }
            let _ =
                writeln!(out, "model N@10 minus each baseline's{what}, same cases (95% paired bootstrap interval):");
            for (name, d) in differences {
                let verdict = if d.is_clear() { "" } else { "  (not distinguishable)" };
                let [low, high] = d.ci95;
                let _ = writeln!(out, "  vs {name:<19} {:+.4}  [{low:+.4}, {high:+.4}]{verdict}", d.difference);
            }
        }
        if let Some(index) = &self.index {
            let _ = writeln!(
                out,
                "index ({} partitions; the export would probe {}): the approximate path against the exact ranking:",
                index.partitions, index.export_nprobe
            );
            for probe in &index.probes {
                let difference = |d: &Option<PairedDifference>| {
                    d.map(|d| format!("{:+.4} [{:+.4}, {:+.4}]", d.difference, d.ci95[0], d.ci95[1]))
                        .unwrap_or_default()
                };
                let _ = writeln!(
                    out,
                    "  nprobe {:>4}: recall@10 vs exact {:.4} (masked {:.4}), targets probed {:.4}, N@10 minus exact {} (masked {})",
                    probe.nprobe,
                    probe.recall_at_10_vs_exact,
                    probe.recall_at_10_masked_vs_exact,
                    probe.targets_probed,
                    difference(&probe.ndcg10_difference),
                    difference(&probe.ndcg10_masked_difference),
                );
            }
        }
        for (name, why) in &self.baselines_unavailable {
            let _ = writeln!(out, "{name:<22} not evaluated: {why}");
        }
        out
    }
}

fn columns(names: &[&str]) -> String {
    names.iter().map(|n| format!("{n:>9}")).collect::<Vec<_>>().join("")
}

fn figures(metrics: &Metrics) -> String {
    metrics.named().iter().map(|(_, v)| format!("{v:>9.4}")).collect::<Vec<_>>().join("")
}
