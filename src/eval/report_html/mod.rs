//! `RUN/report.html`: one self-contained page a stakeholder can open from disk — key figures, the
//! metrics against every baseline, training curves, cold vs warm and transfer bars, and the data
//! quality section ([`super::quality`]).
//!
//! Self-contained means: inline CSS, inline SVG charts, no script, no image, no link — the page makes
//! no request at all. The page is written as polyglot XHTML, so an XML parser reads it too.
//!
//! One concern per file:
//! - `inputs`: the RUN directory's files read into [`ReportInputs`] by [`gather`] (see
//!   `docs/run-format.md`): `run.json`, `history.jsonl`, `baselines/<name>/history.jsonl`, every
//!   `eval-<protocol>.json` and `quality.json` (the analysis of [`super::quality`], which needs the
//!   model and the data, is written there by [`write_report`]), and, for a run of `omakase sweep`
//!   (`DIR/NAME/seed-S`), the sweep's `DIR/sweep.json` (the seed spread);
//! - `charts`: the SVG charts, drawn with plotters;
//! - `page`: what the page shows, rendered by askama from the template
//!   `src/eval/templates/report.html` (its CSS, `report.css`, included; both compiled in);
//! - `xhtml`: the escaper askama runs every inserted value through ([`escape`]): titles, ids, run
//!   paths, error messages all come out as text.

mod charts;
mod inputs;
mod page;
mod xhtml;

use std::path::{Path, PathBuf};

use super::error::EvalError;
use super::metrics::Metrics;
use super::quality::QualityReport;
use super::report::Report;

pub use inputs::{gather, parse_history, EpochRecord, ReportInputs, RunInfo, SweepPlace, SweepTable, QUALITY_FILE};
pub use page::render;
pub use xhtml::escape;

/// The key of the evaluated model in tables and charts (baselines use their scorer names).
pub const MODEL_KEY: &str = "model";

/// Writes `quality` (when given) to `RUN/quality.json`, then builds the page from the RUN directory's
/// files and writes `RUN/report.html`, both atomically; returns the page's path.
pub fn write_report(run_dir: &Path, quality: Option<&QualityReport>) -> Result<PathBuf, EvalError> {
    let write = |path: PathBuf, bytes: &[u8]| {
        crate::weights::legacy_pth::write_atomically(&path, bytes).map_err(|e| EvalError::ReportInput {
            path: path.display().to_string(),
            line: None,
            reason: e.to_string(),
        })
    };
    if let Some(quality) = quality {
        let json =
            serde_json::to_string_pretty(quality).expect("a quality report of plain numbers and strings serialises");
        write(run_dir.join(QUALITY_FILE), format!("{json}\n").as_bytes())?;
    }
    let inputs = gather(run_dir)?;
    let path = run_dir.join("report.html");
    write(path.clone(), render(&inputs).as_bytes())?;
    Ok(path)
}

/// A scorer's name as people read it.
pub fn display_name(key: &str) -> String {
    match key {
        MODEL_KEY => "Omakase (ours)",
        "popularity" => "Popularity",
        "content_knn" => "Content kNN (last item)",
        "sasrec_id" => "SASRec, item IDs (CE)",
        "text_only" => "Ours, text only",
        "image_only" => "Ours, image only",
        "no_pretrain" => "Ours, no pretraining",
        other => other,
    }
    .to_string()
}

/// Rows of a metrics table and its charts: (key, unmasked, masked), ours first.
fn scorer_rows(report: &Report) -> Vec<(String, Metrics, Option<Metrics>)> {
    let mut rows = vec![(MODEL_KEY.to_string(), report.metrics, Some(report.metrics_masked))];
    for name in ordered_baselines(report.baselines.keys()) {
        rows.push((name.clone(), report.baselines[name], report.baselines_masked.get(name).copied()));
    }
    rows
}

/// Baselines in reading order: model-free, the strong ID model, then our ablations; others after.
fn ordered_baselines<'a>(names: impl Iterator<Item = &'a String>) -> Vec<&'a String> {
    const ORDER: [&str; 6] = ["popularity", "content_knn", "sasrec_id", "no_pretrain", "text_only", "image_only"];
    let mut names: Vec<&String> = names.collect();
    names.sort_by_key(|n| (ORDER.iter().position(|o| o == n).unwrap_or(ORDER.len()), n.to_string()));
    names
}
