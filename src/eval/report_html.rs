//! `RUN/report.html`: one self-contained page a stakeholder can open from disk — key figures, the
//! metrics against every baseline, training curves, cold vs warm and transfer bars, and the data
//! quality section ([`super::quality`]).
//!
//! Self-contained means: inline CSS, inline SVG charts (drawn with plotters' SVG backend; its text is
//! SVG `<text>` the browser lays out, so no font files), no script, no image, no link — the page makes
//! no request at all. Every string that comes from data (titles, ids, run paths, error messages) is
//! HTML-escaped ([`escape`]); the page is written as polyglot XHTML, so an XML parser reads it too.
//!
//! Inputs are the RUN directory's files (see `notes/run-format.md`): `run.json`, `history.jsonl`,
//! `baselines/<name>/history.jsonl`, every `eval-<protocol>.json` and `quality.json` (the analysis of
//! [`super::quality`], which needs the model and the data, is written there by [`write_report`]). A missing file leaves its section out with a line saying
//! so; a malformed one is an error naming the file (and line, for JSON lines).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Deserialize;

use super::error::EvalError;
use super::metrics::Metrics;
use super::protocol::EvalProtocol;
use super::quality::QualityReport;
use super::report::Report;
use super::significance::PairedDifference;

/// The key of the evaluated model in tables and charts (baselines use their scorer names).
pub const MODEL_KEY: &str = "model";
/// Fewer test cases than this get a "read as indicative" warning.
const SMALL_SAMPLE: usize = 100;

/// `run.json` as far as the report uses it; every field optional (a run still in progress, or one
/// written by an older trainer, is still reported).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RunInfo {
    pub dataset: Option<String>,
    pub data_dir: Option<String>,
    pub protocol: Option<String>,
    pub features: Option<String>,
    pub n_items: Option<usize>,
    pub init: Option<String>,
    pub status: Option<String>,
    pub best_epoch: Option<usize>,
    #[serde(rename = "best_valid_ndcg@10")]
    pub best_valid_ndcg_at_10: Option<f64>,
}

/// One line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EpochRecord {
    pub stage: String,
    pub epoch: usize,
    pub loss: Option<f64>,
    #[serde(default)]
    pub valid: Option<BTreeMap<String, f64>>,
    pub seconds: Option<f64>,
}

/// Everything the page shows.
#[derive(Debug, Clone, Default)]
pub struct ReportInputs {
    /// The RUN directory's name (the page's title).
    pub run_name: String,
    pub run: Option<RunInfo>,
    pub history: Vec<EpochRecord>,
    /// Learned baselines' own training histories, by baseline name.
    pub baseline_histories: BTreeMap<String, Vec<EpochRecord>>,
    /// Every `eval-*.json`, in protocol order (warm, cold, transfer).
    pub evals: Vec<Report>,
    pub quality: Option<QualityReport>,
    /// Anything the reader should know that the data does not show (missing files...).
    pub notes: Vec<String>,
}

/// Reads a RUN directory's files into [`ReportInputs`], the quality analysis from `RUN/quality.json`.
pub fn gather(run_dir: &Path) -> Result<ReportInputs, EvalError> {
    let mut notes = Vec::new();
    let quality = match read_optional(&run_dir.join(QUALITY_FILE))? {
        Some(text) => Some(parse_json::<QualityReport>(&text, &run_dir.join(QUALITY_FILE))?),
        None => {
            notes.push(format!("{QUALITY_FILE} is missing: no data-quality section (omakase eval writes it)."));
            None
        }
    };
    let run = match read_optional(&run_dir.join("run.json"))? {
        Some(text) => Some(parse_json::<RunInfo>(&text, &run_dir.join("run.json"))?),
        None => {
            notes.push("run.json is missing: run details are not shown.".to_string());
            None
        }
    };
    let history = match read_optional(&run_dir.join("history.jsonl"))? {
        Some(text) => parse_history(&text, &run_dir.join("history.jsonl"))?,
        None => {
            notes.push("history.jsonl is missing: no training curves.".to_string());
            Vec::new()
        }
    };
    let mut baseline_histories = BTreeMap::new();
    let baselines = run_dir.join("baselines");
    if let Ok(entries) = std::fs::read_dir(&baselines) {
        let mut names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        for name in names {
            let path = baselines.join(&name).join("history.jsonl");
            if let Some(text) = read_optional(&path)? {
                baseline_histories.insert(name, parse_history(&text, &path)?);
            }
        }
    }
    let mut evals = Vec::new();
    for protocol in [EvalProtocol::Warm, EvalProtocol::Cold, EvalProtocol::Transfer] {
        let path = run_dir.join(format!("eval-{protocol}.json"));
        if let Some(text) = read_optional(&path)? {
            evals.push(parse_json::<Report>(&text, &path)?);
        }
    }
    let run_name = run_dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| run_dir.display().to_string());
    Ok(ReportInputs { run_name, run, history, baseline_histories, evals, quality, notes })
}

/// Where the quality analysis is kept between runs (a transfer evaluation, which judges another
/// catalogue, keeps the run's own).
pub const QUALITY_FILE: &str = "quality.json";

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

fn read_optional(path: &Path) -> Result<Option<String>, EvalError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EvalError::ReportInput { path: path.display().to_string(), line: None, reason: e.to_string() }),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, EvalError> {
    serde_json::from_str(text).map_err(|e| EvalError::ReportInput {
        path: path.display().to_string(),
        line: Some(e.line()),
        reason: e.to_string(),
    })
}

/// `history.jsonl`: one record per non-blank line; a bad line is an error naming its number.
pub fn parse_history(text: &str, path: &Path) -> Result<Vec<EpochRecord>, EvalError> {
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(line).map_err(|e| EvalError::ReportInput {
            path: path.display().to_string(),
            line: Some(i + 1),
            reason: e.to_string(),
        })?;
        records.push(record);
    }
    Ok(records)
}

/// Text made safe for HTML/XML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab/newline are not allowed in XML at all.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
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

/// RecBole 1.2.1 reference figures (DESIGN §5: same splits, test, unmasked): (model, R@10, N@10).
fn recbole_reference(dataset: &str) -> &'static [(&'static str, f64, f64)] {
    match dataset {
        "ml100k-mm" => &[
            ("SASRec-CE", 0.1166, 0.0533),
            ("GRU4Rec", 0.1262, 0.0570),
            ("BERT4Rec", 0.1273, 0.0573),
            ("Pop", 0.0488, 0.0226),
        ],
        "amazon-office" => &[("SASRec-CE", 0.0987, 0.0489), ("Pop", 0.0022, 0.0008)],
        _ => &[],
    }
}

// ---------------------------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------------------------

/// The whole page (deterministic: the same inputs give the same bytes).
pub fn render(inputs: &ReportInputs) -> String {
    let mut page = String::with_capacity(64 * 1024);
    // The dataset the run learned from (a transfer evaluation judges another one).
    let dataset = inputs
        .run
        .as_ref()
        .and_then(|r| r.dataset.clone())
        .or_else(|| inputs.evals.first().map(|r| r.source_dataset.clone().unwrap_or_else(|| r.dataset.clone())))
        .unwrap_or_else(|| "unknown dataset".into());
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<title>Omakase report: {}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        escape(&inputs.run_name)
    );
    header(&mut page, inputs, &dataset);
    key_figures(&mut page, inputs);
    for report in &inputs.evals {
        metrics_section(&mut page, report);
    }
    if inputs.evals.is_empty() {
        page.push_str(
            "<section id=\"accuracy\"><h2>Accuracy</h2><p class=\"muted\">No evaluation yet: run <code>omakase eval --model RUN \
             --data DIR</code>.</p></section>\n",
        );
    }
    training_section(&mut page, inputs);
    if let Some(quality) = &inputs.quality {
        quality_section(&mut page, quality);
    }
    method_section(&mut page);
    if !inputs.notes.is_empty() {
        page.push_str("<section id=\"notes\"><h2>Notes</h2><ul>");
        for note in &inputs.notes {
            let _ = write!(page, "<li>{}</li>", escape(note));
        }
        page.push_str("</ul></section>\n");
    }
    page.push_str("</main>\n</body>\n</html>\n");
    page
}

const STYLE: &str = "
:root { --ink: #1d2433; --muted: #667085; --line: #e4e7ec; --accent: #c2410c; --bg: #f8f9fb; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 32px 24px 64px; }
header.top { border-bottom: 3px solid var(--accent); padding-bottom: 12px; margin-bottom: 24px; }
h1 { font-size: 28px; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 20px; margin: 0 0 12px; }
h3 { font-size: 16px; margin: 18px 0 8px; }
p { margin: 6px 0 10px; }
.muted { color: var(--muted); }
.small { font-size: 13px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 20px 24px;
  margin: 0 0 20px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 14px; margin: 0 0 20px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
.card .label { color: var(--muted); font-size: 13px; }
.card .value { font-size: 28px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .sub { font-size: 13px; color: var(--muted); }
.good { color: #15803d; } .bad { color: #b91c1c; }
table.compact td, table.compact th { padding: 3px 8px; font-size: 13px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; margin: 6px 0 10px; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: right; }
th { font-size: 13px; color: var(--muted); font-weight: 600; }
th.l, td.l { text-align: left; }
tr.ours td { background: #fff7ed; }
tr.ref td { color: var(--muted); font-style: italic; }
td strong { color: var(--accent); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 18px; }
figure { margin: 0; }
figure svg { width: 100%; max-width: 640px; height: auto; display: block; }
figcaption { font-weight: 600; margin-bottom: 4px; }
.legend { font-size: 13px; color: var(--muted); margin-top: 2px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin: 0 5px -1px 12px; }
.swatch:first-child { margin-left: 0; }
code { background: #f2f4f7; padding: 1px 5px; border-radius: 4px; font-size: 13px; }
ul { margin: 6px 0; padding-left: 20px; }
";

fn header(page: &mut String, inputs: &ReportInputs, dataset: &str) {
    let _ = write!(
        page,
        "<header class=\"top\"><h1>Omakase evaluation report</h1><p class=\"muted\">Run <code>{}</code> · trained \
         on <strong>{}</strong>",
        escape(&inputs.run_name),
        escape(dataset)
    );
    if let Some(run) = &inputs.run {
        if let Some(protocol) = &run.protocol {
            let _ = write!(page, " ({} protocol)", escape(protocol));
        }
        if let Some(status) = &run.status {
            let _ = write!(page, " · status {}", escape(status));
        }
        if let Some(epoch) = run.best_epoch {
            let _ = write!(page, " · best epoch {epoch}");
        }
        if let Some(init) = &run.init {
            let _ = write!(page, " · initialised from <code>{}</code>", escape(init));
        }
    }
    page.push_str("</p></header>\n");
}

/// The few numbers a reader should take away, as cards.
fn key_figures(page: &mut String, inputs: &ReportInputs) {
    let mut cards = Vec::new();
    let warm = inputs.evals.iter().find(|r| r.protocol == EvalProtocol::Warm);
    if let Some(report) = warm {
        let ours = report.metrics.ndcg_at_10;
        let sub = match best_baseline(report) {
            Some((name, best)) if best > 0.0 => {
                let lift = (ours / best - 1.0) * 100.0;
                let class = if lift >= 0.0 { "good" } else { "bad" };
                format!(
                    "<span class=\"{class}\">{lift:+.0}%</span> vs best baseline ({}: {best:.4})",
                    escape(&display_name(&name))
                )
            }
            _ => "no baseline evaluated".to_string(),
        };
        cards.push(("NDCG@10, warm".to_string(), format!("{ours:.4}"), sub));
        cards.push((
            "Recall@10, warm".to_string(),
            format!("{:.1}%", report.metrics.recall_at_10 * 100.0),
            format!("of {} shoppers find their next item in the top 10", thousands(report.users)),
        ));
    }
    if let Some(report) = inputs.evals.iter().find(|r| r.protocol == EvalProtocol::Cold) {
        let ratio = report.cold_warm_ratio.and_then(|r| r.ndcg_at_10);
        cards.push((
            "New items (cold start)".to_string(),
            ratio.map_or("–".into(), |r| format!("{:.0}%", r * 100.0)),
            format!(
                "NDCG@10 for the {} shoppers whose next item was never seen in training ({:.4}), relative to \
                 known items in the same run",
                thousands(report.users),
                report.metrics.ndcg_at_10
            ),
        ));
    }
    if let Some(report) = inputs.evals.iter().find(|r| r.protocol == EvalProtocol::Transfer) {
        let source = report.source_dataset.as_deref().unwrap_or("another dataset");
        cards.push((
            "Transfer, zero-shot".to_string(),
            format!("{:.4}", report.metrics.ndcg_at_10),
            format!("NDCG@10 on {} with a model trained on {}", escape(&report.dataset), escape(source)),
        ));
    }
    if let Some(exposure) = inputs.quality.as_ref().and_then(|q| q.exposure.first()) {
        cards.push((
            format!("Catalogue coverage@{}", exposure.k),
            format!("{:.0}%", exposure.coverage * 100.0),
            format!("of the items appear in some shopper's top {}", exposure.k),
        ));
    }
    if cards.is_empty() {
        return;
    }
    page.push_str("<div class=\"cards\" id=\"key-figures\">");
    for (label, value, sub) in cards {
        let _ = write!(
            page,
            "<div class=\"card\"><div class=\"label\">{}</div><div class=\"value\">{}</div><div class=\"sub\">{sub}</div></div>",
            escape(&label),
            escape(&value)
        );
    }
    page.push_str("</div>\n");
}

fn best_baseline(report: &Report) -> Option<(String, f64)> {
    report
        .baselines
        .iter()
        .map(|(name, m)| (name.clone(), m.ndcg_at_10))
        .max_by(|a, b| a.1.total_cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Rows of a metrics table: (key, unmasked, masked).
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

fn metrics_section(page: &mut String, report: &Report) {
    let (title, blurb) = match report.protocol {
        EvalProtocol::Warm => (
            "Accuracy: returning shoppers, known products (warm)",
            "Each shopper's last interaction is hidden; every model ranks the whole catalogue to predict it.",
        ),
        EvalProtocol::Cold => (
            "Accuracy: brand-new products (cold start)",
            "Products first seen in the last 20% of the time span were removed from training; these figures \
             are over the shoppers whose next item is such a new product.",
        ),
        EvalProtocol::Transfer => (
            "Accuracy: another shop (transfer)",
            "The model was trained on another catalogue and is judged here without ever seeing this shop's \
             behaviour (zero-shot), and after fine-tuning when such a run was given.",
        ),
    };
    let _ = write!(
        page,
        "<section id=\"accuracy-{}\"><h2>{}</h2><p>{}</p><p class=\"muted small\"><strong>{}</strong>: {} test shoppers · \
         {} items · full ranking.",
        report.protocol,
        escape(title),
        escape(blurb),
        escape(&report.dataset),
        thousands(report.users),
        thousands(report.items)
    );
    if report.users < SMALL_SAMPLE {
        let _ = write!(
            page,
            " <span class=\"bad\">Only {} cases: one hit more or less moves Recall@10 by {:.3}; read these figures as \
             indicative.</span>",
            report.users,
            1.0 / report.users.max(1) as f64
        );
    }
    if let Some(source) = &report.source_dataset {
        let _ = write!(page, " Model trained on <strong>{}</strong>.", escape(source));
    }
    page.push_str("</p>\n");
    metrics_table(page, report);
    let charts = match report.protocol {
        EvalProtocol::Warm => accuracy_charts(report),
        EvalProtocol::Cold => cold_warm_charts(report),
        EvalProtocol::Transfer => transfer_charts(report),
    };
    page.push_str("<div class=\"charts\">");
    for chart in charts {
        page.push_str(&chart);
    }
    page.push_str("</div>");
    if !report.baselines_unavailable.is_empty() {
        page.push_str("<p class=\"small\"><strong>Not evaluated:</strong></p><ul class=\"small\">");
        for (name, why) in &report.baselines_unavailable {
            let _ = write!(page, "<li>{}: {}</li>", escape(&display_name(name)), escape(why));
        }
        page.push_str("</ul>");
    }
    page.push_str("</section>\n");
}

fn metrics_table(page: &mut String, report: &Report) {
    let mut rows = scorer_rows(report);
    if let Some(warm) = &report.warm {
        rows.push((format!("{MODEL_KEY}:warm"), warm.metrics, Some(warm.metrics_masked)));
    }
    if let Some(tuned) = &report.finetuned {
        rows.push((format!("{MODEL_KEY}:finetuned"), tuned.metrics, Some(tuned.metrics_masked)));
    }
    // The best figure of each column among the rows compared on the same cases.
    let comparable: Vec<&(String, Metrics, Option<Metrics>)> = rows.iter().filter(|r| r.0 != "model:warm").collect();
    let best_unmasked: Vec<f64> =
        (0..5).map(|c| comparable.iter().map(|r| r.1.named()[c].1).fold(f64::NEG_INFINITY, f64::max)).collect();
    let best_masked: Vec<f64> = (0..2)
        .map(|c| comparable.iter().filter_map(|r| r.2.map(|m| m.named()[c].1)).fold(f64::NEG_INFINITY, f64::max))
        .collect();
    page.push_str(
        "<table><thead><tr><th class=\"l\">Model</th><th>Recall@10</th><th>NDCG@10</th><th>Recall@50</th>\
         <th>NDCG@50</th><th>MRR@10</th><th>Recall@10<br/>masked</th><th>NDCG@10<br/>masked</th>\
         <th>Ours minus this,<br/>NDCG@10 (95% CI)</th><th>Ours minus this,<br/>masked (95% CI)</th></tr></thead><tbody>",
    );
    for (key, unmasked, masked) in &rows {
        let (label, class) = match key.as_str() {
            "model:warm" => {
                (format!("Omakase (ours), warm items ({} shoppers)", report.warm.map_or(0, |w| w.users)), "")
            }
            "model:finetuned" => ("Omakase (ours), fine-tuned here".to_string(), " class=\"ours\""),
            MODEL_KEY => (display_name(key), " class=\"ours\""),
            _ => (display_name(key), ""),
        };
        let is_comparable = key != "model:warm";
        let _ = write!(page, "<tr{class}><td class=\"l\">{}</td>", escape(&label));
        for (c, (_, v)) in unmasked.named().iter().enumerate() {
            let _ = write!(page, "<td>{}</td>", figure(*v, is_comparable && *v == best_unmasked[c]));
        }
        for (c, best) in best_masked.iter().enumerate() {
            match masked {
                Some(m) => {
                    let v = m.named()[c].1;
                    let _ = write!(page, "<td>{}</td>", figure(v, is_comparable && v == *best));
                }
                None => page.push_str("<td>–</td>"),
            }
        }
        page.push_str(&difference_cell(&report.ndcg10_vs_baselines, key));
        page.push_str(&difference_cell(&report.ndcg10_masked_vs_baselines, key));
        page.push_str("</tr>");
    }
    if report.protocol == EvalProtocol::Warm {
        for (name, recall, ndcg) in recbole_reference(&report.dataset) {
            let _ = write!(
                page,
                "<tr class=\"ref\"><td class=\"l\">RecBole {} (reference)</td><td>{recall:.4}</td><td>{ndcg:.4}</td>\
                 <td>–</td><td>–</td><td>–</td><td>–</td><td>–</td><td>–</td><td>–</td></tr>",
                escape(name)
            );
        }
    }
    page.push_str("</tbody></table>");
    page.push_str(
        "<p class=\"muted small\">Unmasked figures rank every item, including ones the shopper already interacted \
         with (RecBole's convention, comparable with published numbers); masked figures leave those out, as the \
         widget does. Best of each column in colour. Last columns: our NDCG@10 minus the row's on the same \
         shoppers (unmasked, then masked), with a 95% paired bootstrap interval; an interval that contains 0 \
         means this data cannot tell the two apart.",
    );
    if report.protocol == EvalProtocol::Warm && !recbole_reference(&report.dataset).is_empty() {
        page.push_str(" Reference rows: RecBole 1.2.1 on the same split.");
    }
    page.push_str("</p>\n");
}

/// The paired NDCG@10 difference of the model against the baseline `key`, as a table cell ("–" for
/// rows without one: the model itself, references, old reports).
fn difference_cell(differences: &BTreeMap<String, PairedDifference>, key: &str) -> String {
    match differences.get(key) {
        Some(d) => {
            let class = if d.is_clear() { "" } else { " class=\"muted\"" };
            let [low, high] = d.ci95;
            format!("<td{class}>{:+.4} <span class=\"small\">[{low:+.4}, {high:+.4}]</span></td>", d.difference)
        }
        None => "<td>–</td>".to_string(),
    }
}

/// A table figure, highlighted when it is the column's best (a best of 0 is no achievement).
fn figure(value: f64, best: bool) -> String {
    if best && value > 0.0 {
        format!("<strong>{value:.4}</strong>")
    } else {
        format!("{value:.4}")
    }
}

// ---------------------------------------------------------------------------------------------
// Charts
// ---------------------------------------------------------------------------------------------

const OURS: RGBColor = RGBColor(0xc2, 0x41, 0x0c);
const OURS_LIGHT: RGBColor = RGBColor(0xfd, 0xba, 0x74);
const BLUE: RGBColor = RGBColor(0x25, 0x63, 0xeb);
const BLUE_LIGHT: RGBColor = RGBColor(0x93, 0xc5, 0xfd);
const GREY: RGBColor = RGBColor(0x98, 0xa2, 0xb3);
const GRID: RGBColor = RGBColor(0xea, 0xec, 0xf0);
const AXIS: RGBColor = RGBColor(0x66, 0x70, 0x85);
/// Baselines' series colours, in order.
const PALETTE: [RGBColor; 6] = [
    RGBColor(0x25, 0x63, 0xeb),
    RGBColor(0x0d, 0x94, 0x88),
    RGBColor(0x7c, 0x3a, 0xed),
    RGBColor(0xca, 0x8a, 0x04),
    RGBColor(0xdb, 0x27, 0x77),
    RGBColor(0x47, 0x55, 0x69),
];

/// An axis tick label: `decimals` places, and never "-0.00" for a tick at (almost) zero.
fn tick(value: f64, decimals: usize) -> String {
    let value = if value.abs() < 1e-9 { 0.0 } else { value };
    format!("{value:.decimals$}")
}

fn css(color: &RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", color.0, color.1, color.2)
}

/// One bar series: its legend name, colour and a value per category (`None` = no bar).
struct BarSeries {
    name: String,
    color: RGBColor,
    values: Vec<Option<f64>>,
}

/// A figure: caption, SVG (or a line saying why there is none), legend.
fn figure_html(caption: &str, svg: Result<String, String>, legend: &[(String, RGBColor)]) -> String {
    let mut out = format!("<figure><figcaption>{}</figcaption>", escape(caption));
    match svg {
        Ok(svg) => out.push_str(&svg),
        Err(why) => {
            let _ = write!(out, "<p class=\"muted small\">Chart unavailable: {}</p>", escape(&why));
        }
    }
    if !legend.is_empty() {
        out.push_str("<div class=\"legend\">");
        for (name, color) in legend {
            let _ = write!(out, "<span class=\"swatch\" style=\"background:{}\"></span>{}", css(color), escape(name));
        }
        out.push_str("</div>");
    }
    out.push_str("</figure>");
    out
}

/// Horizontal grouped bars: one group per category (top to bottom), one bar per series.
fn bar_chart(categories: &[String], series: &[BarSeries], x_label: &str) -> Result<String, String> {
    let n = categories.len();
    if n == 0 || series.is_empty() {
        return Err("nothing to plot".into());
    }
    let max = series.iter().flat_map(|s| s.values.iter().flatten()).fold(0f64, |a, &b| a.max(b));
    let x_max = if max > 0.0 { max * 1.18 } else { 1.0 };
    // Enough decimals that ~6 ticks over [0, x_max] never print the same label twice.
    let decimals = (-(x_max / 6.0).log10()).ceil().clamp(1.0, 4.0) as usize;
    let height = (64 + n * (16 + 20 * series.len())).max(170) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .margin_right(24)
            .x_label_area_size(38)
            .y_label_area_size(178)
            .build_cartesian_2d(0f64..x_max, -0.5f64..(n as f64 - 0.5))
            .map_err(|e| e.to_string())?;
        // Category i is drawn at y = n - 1 - i, so the first category is on top.
        let label_of = |y: &f64| -> String {
            let r = y.round();
            if (y - r).abs() > 1e-6 || r < 0.0 || r >= n as f64 {
                return String::new();
            }
            categories[n - 1 - r as usize].clone()
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .axis_style(AXIS)
            .y_labels(n)
            .y_label_formatter(&label_of)
            .x_labels(6)
            .x_label_formatter(&|x| tick(*x, decimals))
            .x_desc(x_label)
            .label_style(("sans-serif", 15).into_font().color(&RGBColor(0x34, 0x40, 0x54)))
            .axis_desc_style(("sans-serif", 14).into_font().color(&AXIS))
            .draw()
            .map_err(|e| e.to_string())?;
        let band = 0.8 / series.len() as f64;
        for (s, bars) in series.iter().enumerate() {
            for (i, value) in bars.values.iter().enumerate() {
                let Some(v) = value else { continue };
                let center = (n - 1 - i) as f64;
                let top = center + 0.4 - s as f64 * band;
                let bottom = top - band * 0.9;
                chart
                    .draw_series(std::iter::once(Rectangle::new([(0.0, bottom), (*v, top)], bars.color.filled())))
                    .map_err(|e| e.to_string())?;
                let style = ("sans-serif", 13).into_font().color(&AXIS).pos(Pos::new(HPos::Left, VPos::Center));
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!("{v:.4}"),
                        (*v + x_max * 0.01, (top + bottom) / 2.0),
                        style,
                    )))
                    .map_err(|e| e.to_string())?;
            }
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A line series: legend name, colour, `(x, y)` points.
type Curve = (String, RGBColor, Vec<(f64, f64)>);

/// A line chart of `(x, y)` series; `marker` draws a dashed vertical line (e.g. the best epoch).
fn line_chart(series: &[Curve], x_label: &str, y_label: &str, marker: Option<f64>) -> Result<String, String> {
    let points: Vec<(f64, f64)> =
        series.iter().flat_map(|s| s.2.iter().copied()).filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
    if points.is_empty() {
        return Err("no data points".into());
    }
    let (mut x0, mut x1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (mut y0, mut y1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if x1 - x0 < 1.0 {
        x0 -= 0.5;
        x1 += 0.5;
    }
    let pad = if y1 > y0 { (y1 - y0) * 0.08 } else { y1.abs().max(1e-3) * 0.1 };
    y0 -= pad;
    y1 += pad;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(38)
            .y_label_area_size(58)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| e.to_string())?;
        let integer_x =
            |x: &f64| if (x - x.round()).abs() < 1e-6 { format!("{}", x.round() as i64) } else { String::new() };
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .axis_style(AXIS)
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(&integer_x)
            .y_label_formatter(&|y| tick(*y, 3))
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style(("sans-serif", 15).into_font().color(&RGBColor(0x34, 0x40, 0x54)))
            .axis_desc_style(("sans-serif", 14).into_font().color(&AXIS))
            .draw()
            .map_err(|e| e.to_string())?;
        if let Some(x) = marker {
            let dashes = (0..40).map(|i| {
                let a = y0 + (y1 - y0) * i as f64 / 40.0;
                PathElement::new(vec![(x, a), (x, a + (y1 - y0) / 80.0)], GREY.stroke_width(1))
            });
            chart.draw_series(dashes).map_err(|e| e.to_string())?;
        }
        for (_, color, values) in series {
            chart
                .draw_series(LineSeries::new(values.iter().copied(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?;
            if values.len() <= 40 {
                chart
                    .draw_series(values.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(|e| e.to_string())?;
            }
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A metric of [`Metrics`] and its name (the charts show NDCG@10 and Recall@10 side by side).
type MetricOf = (&'static str, fn(&Metrics) -> f64);
const CHART_METRICS: [MetricOf; 2] = [("NDCG@10", |m| m.ndcg_at_10), ("Recall@10", |m| m.recall_at_10)];

/// One horizontal bar chart per metric of [`CHART_METRICS`]; `series(metric)` gives the bars.
fn metric_charts(caption: &str, categories: &[String], series: impl Fn(MetricOf) -> Vec<BarSeries>) -> Vec<String> {
    CHART_METRICS
        .iter()
        .map(|&metric| {
            let bars = series(metric);
            let legend: Vec<(String, RGBColor)> = bars.iter().map(|s| (s.name.clone(), s.color)).collect();
            figure_html(&format!("{}: {caption}", metric.0), bar_chart(categories, &bars, metric.0), &legend)
        })
        .collect()
}

fn accuracy_charts(report: &Report) -> Vec<String> {
    let rows = scorer_rows(report);
    let categories: Vec<String> = rows.iter().map(|r| display_name(&r.0)).collect();
    metric_charts("ours against the baselines", &categories, |(_, of)| {
        vec![
            BarSeries { name: "unmasked".into(), color: OURS, values: rows.iter().map(|r| Some(of(&r.1))).collect() },
            BarSeries {
                name: "history masked (as the widget)".into(),
                color: OURS_LIGHT,
                values: rows.iter().map(|r| r.2.as_ref().map(of)).collect(),
            },
        ]
    })
}

fn cold_warm_charts(report: &Report) -> Vec<String> {
    let rows = scorer_rows(report);
    let categories: Vec<String> = rows.iter().map(|r| display_name(&r.0)).collect();
    metric_charts("new vs known items", &categories, |(_, of)| {
        let warm = rows
            .iter()
            .map(|(key, _, _)| match key.as_str() {
                MODEL_KEY => report.warm.map(|w| of(&w.metrics)),
                name => report.baselines_warm.get(name).map(of),
            })
            .collect();
        vec![
            BarSeries {
                name: "new items (cold)".into(),
                color: BLUE,
                values: rows.iter().map(|r| Some(of(&r.1))).collect(),
            },
            BarSeries { name: "known items (warm), same run".into(), color: BLUE_LIGHT, values: warm },
        ]
    })
}

fn transfer_charts(report: &Report) -> Vec<String> {
    let mut rows = vec![("Ours, zero-shot".to_string(), report.metrics, Some(report.metrics_masked))];
    if let Some(tuned) = &report.finetuned {
        rows.push(("Ours, fine-tuned here".into(), tuned.metrics, Some(tuned.metrics_masked)));
    }
    for name in ordered_baselines(report.baselines.keys()) {
        rows.push((display_name(name), report.baselines[name], report.baselines_masked.get(name).copied()));
    }
    let categories: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    metric_charts("on this shop", &categories, |(_, of)| {
        vec![
            BarSeries { name: "unmasked".into(), color: OURS, values: rows.iter().map(|r| Some(of(&r.1))).collect() },
            BarSeries {
                name: "history masked".into(),
                color: OURS_LIGHT,
                values: rows.iter().map(|r| r.2.as_ref().map(of)).collect(),
            },
        ]
    })
}

fn training_section(page: &mut String, inputs: &ReportInputs) {
    if inputs.history.is_empty() && inputs.baseline_histories.is_empty() {
        return;
    }
    page.push_str(
        "<section id=\"training\"><h2>Training</h2><p>How the run learned: the loss per epoch of each stage, and the ranking quality \
         on held-out validation shoppers, which picks the weights kept (dashed line: best epoch).</p><div class=\"charts\">",
    );
    let stage = |records: &[EpochRecord], name: &str| -> Vec<(f64, f64)> {
        records.iter().filter(|r| r.stage == name).filter_map(|r| r.loss.map(|l| (r.epoch as f64, l))).collect()
    };
    let pretrain = stage(&inputs.history, "pretrain");
    if !pretrain.is_empty() {
        let series = vec![("pretraining".to_string(), BLUE, pretrain)];
        let legend = [("image↔text alignment loss".to_string(), BLUE)];
        page.push_str(&figure_html(
            "Pretraining loss (item tower)",
            line_chart(&series, "epoch", "loss", None),
            &legend,
        ));
    }
    let best = inputs.run.as_ref().and_then(|r| r.best_epoch).map(|e| e as f64);
    let train = stage(&inputs.history, "train");
    if !train.is_empty() {
        let series = vec![("training".to_string(), OURS, train)];
        let legend = [("next-item cross-entropy".to_string(), OURS)];
        page.push_str(&figure_html("Training loss", line_chart(&series, "epoch", "loss", best), &legend));
    }
    let valid = |records: &[EpochRecord]| -> Vec<(f64, f64)> {
        records
            .iter()
            .filter(|r| r.stage == "train")
            .filter_map(|r| r.valid.as_ref()?.get("ndcg@10").map(|v| (r.epoch as f64, *v)))
            .collect()
    };
    let mut series = Vec::new();
    let ours = valid(&inputs.history);
    if !ours.is_empty() {
        series.push((display_name(MODEL_KEY), OURS, ours));
    }
    for (i, (name, records)) in inputs.baseline_histories.iter().enumerate() {
        let points = valid(records);
        if !points.is_empty() {
            series.push((display_name(name), PALETTE[i % PALETTE.len()], points));
        }
    }
    if !series.is_empty() {
        let legend: Vec<(String, RGBColor)> = series.iter().map(|s| (s.0.clone(), s.1)).collect();
        page.push_str(&figure_html("Validation NDCG@10", line_chart(&series, "epoch", "NDCG@10", best), &legend));
    }
    page.push_str("</div>");
    let seconds: f64 = inputs.history.iter().filter_map(|r| r.seconds).sum();
    if seconds > 0.0 {
        let _ = write!(
            page,
            "<p class=\"muted small\">{} epochs, {:.1} minutes of training in all.</p>",
            inputs.history.len(),
            seconds / 60.0
        );
    }
    page.push_str("</section>\n");
}

fn quality_section(page: &mut String, q: &QualityReport) {
    let _ = write!(
        page,
        "<section id=\"data-quality\"><h2>Data quality and reach</h2><p class=\"muted small\">Dataset <strong>{}</strong>, {} items.</p>",
        escape(&q.dataset),
        thousands(q.items)
    );
    // Missing modalities.
    let share = |count: usize| if q.items == 0 { 0.0 } else { count as f64 * 100.0 / q.items as f64 };
    let _ = write!(
        page,
        "<h3>Products missing a modality</h3><p>{} of {} products ({:.1}%) have <strong>no image</strong> and {} \
         ({:.1}%) have <strong>no text</strong>. The model still recommends them, from the modality they have.</p>",
        thousands(q.missing_image.count),
        thousands(q.items),
        share(q.missing_image.count),
        thousands(q.missing_text.count),
        share(q.missing_text.count)
    );
    for (label, missing) in [("Without image", &q.missing_image), ("Without text", &q.missing_text)] {
        if missing.items.is_empty() {
            continue;
        }
        let _ = write!(page, "<p class=\"small\"><strong>{label}</strong>");
        if missing.count > missing.items.len() {
            let _ = write!(page, " (first {} of {})", missing.items.len(), thousands(missing.count));
        }
        page.push_str(": ");
        let names: Vec<String> = missing
            .items
            .iter()
            .map(|i| {
                format!(
                    "{} <span class=\"muted\">({})</span>",
                    escape(&title_or_id(&i.title, &i.item_id)),
                    escape(&i.item_id)
                )
            })
            .collect();
        page.push_str(&names.join(", "));
        page.push_str("</p>");
    }
    // Modality agreement.
    match &q.agreement {
        Some(a) => {
            let _ = write!(
                page,
                "<h3>Do picture and words agree?</h3><p>For each of the {} products with both, the item tower \
                 encodes the image alone and the text alone; the cosine of the two vectors (each centred on the \
                 catalogue's average, so 0 means no relation) measures how well they agree. Median {:.3}, mean {:.3}",
                thousands(a.pairs),
                a.median,
                a.mean
            );
            if let Some(m) = a.mismatched_mean {
                let _ = write!(page, "; two <em>different</em> products score {m:.3} on average");
            }
            if let Some(share) = a.beats_mismatched {
                let _ = write!(
                    page,
                    ", and {:.0}% of products agree with their own picture more than with another product's (50% \
                     would be chance)",
                    share * 100.0
                );
            }
            page.push_str(".</p>");
            let gap = a.mismatched_mean.map(|m| a.mean - m);
            if gap.is_some_and(|g| g < 0.1) {
                page.push_str(
                    "<p class=\"bad\">Pictures and words are barely aligned yet (own pairs hardly above strangers): the \
                     list below says more about the item tower than about the catalogue. More pretraining should widen \
                     the gap before these products are investigated.</p>",
                );
            } else {
                page.push_str(
                    "<p>The products at the top of this list are worth a look: a wrong or generic picture, or a text \
                     that describes something else.</p>",
                );
            }
            page.push_str("<div class=\"charts\">");
            page.push_str(&agreement_histogram(a));
            page.push_str("<div><table class=\"compact\"><thead><tr><th>#</th><th class=\"l\">Product</th><th class=\"l\">id</th><th>cosine</th></tr></thead><tbody>");
            for (rank, item) in a.lowest.iter().enumerate() {
                let _ = write!(
                    page,
                    "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\"><code>{}</code></td><td>{:.3}</td></tr>",
                    rank + 1,
                    escape(&title_or_id(&item.item.title, &item.item.item_id)),
                    escape(&item.item.item_id),
                    item.cosine
                );
            }
            page.push_str("</tbody></table></div></div>");
        }
        None => page.push_str(
            "<h3>Do picture and words agree?</h3><p class=\"muted\">Not measured: fewer than two products have both \
             an image and a text.</p>",
        ),
    }
    // Exposure.
    if !q.exposure.is_empty() {
        let i = &q.interactions;
        let k = q.exposure[0].k;
        let _ = write!(
            page,
            "<h3>Reach and popularity bias</h3><p>Every test shopper's top {k} (history masked, as the widget shows). \
             <em>Coverage</em>: share of the catalogue that appears in anyone's list. <em>Popularity percentile</em>: \
             where a recommended product ranks by training popularity (0.5 = a random catalogue product); shoppers' \
             own interactions sit at <strong>{:.2}</strong>. <em>Gini</em>: how unequally recommendations are spread \
             over products (0 = evenly, 1 = all on one); shoppers' interactions: <strong>{:.2}</strong>.</p>",
            i.mean_popularity_percentile, i.gini
        );
        if let Some(ours) = q.exposure.first() {
            let lean = ours.mean_popularity_percentile - i.mean_popularity_percentile;
            let words = if lean.abs() < 0.02 {
                "about as popular as what shoppers actually pick"
            } else if lean > 0.0 {
                "more popular than what shoppers actually pick (a head bias)"
            } else {
                "less popular than what shoppers actually pick (towards the long tail)"
            };
            let _ = write!(
                page,
                "<p>Our lists reach <strong>{:.1}%</strong> of the catalogue ({} products) and recommend products \
                 {words}: percentile {:.2} vs {:.2}.</p>",
                ours.coverage * 100.0,
                thousands(ours.distinct_items),
                ours.mean_popularity_percentile,
                i.mean_popularity_percentile
            );
        }
        page.push_str(
            "<table><thead><tr><th class=\"l\">Model</th><th>coverage</th><th>distinct products</th>\
             <th>popularity percentile</th><th>Gini</th></tr></thead><tbody>",
        );
        for e in &q.exposure {
            let class = if e.scorer == MODEL_KEY { " class=\"ours\"" } else { "" };
            let _ = write!(
                page,
                "<tr{class}><td class=\"l\">{}</td><td>{:.1}%</td><td>{}</td><td>{:.3}</td><td>{:.3}</td></tr>",
                escape(&display_name(&e.scorer)),
                e.coverage * 100.0,
                thousands(e.distinct_items),
                e.mean_popularity_percentile,
                e.gini
            );
        }
        let _ = write!(
            page,
            "<tr class=\"ref\"><td class=\"l\">Shoppers' training interactions</td><td>–</td><td>–</td><td>{:.3}</td>\
             <td>{:.3}</td></tr></tbody></table>",
            i.mean_popularity_percentile, i.gini
        );
    }
    page.push_str("</section>\n");
}

fn title_or_id(title: &str, id: &str) -> String {
    if title.trim().is_empty() {
        format!("(untitled {id})")
    } else {
        title.to_string()
    }
}

fn agreement_histogram(a: &super::quality::ModalityAgreement) -> String {
    let bins = a.histogram.len().max(1);
    let [x0, x1] = a.histogram_range;
    let width = (x1 - x0) / bins as f64;
    let max = a.histogram.iter().copied().max().unwrap_or(0).max(1) as f64;
    let svg = (|| -> Result<String, String> {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (560, 300)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            let mut chart = ChartBuilder::on(&root)
                .margin(12)
                .x_label_area_size(38)
                .y_label_area_size(50)
                .build_cartesian_2d(x0..x1, 0f64..max * 1.1)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .bold_line_style(GRID)
                .axis_style(AXIS)
                .x_labels(8)
                .y_labels(5)
                .x_label_formatter(&|x| tick(*x, 2))
                .y_label_formatter(&|y| {
                    if (y - y.round()).abs() < 1e-6 {
                        format!("{}", y.round() as i64)
                    } else {
                        String::new()
                    }
                })
                .x_desc("centred cosine(image view, text view)")
                .y_desc("products")
                .label_style(("sans-serif", 15).into_font().color(&RGBColor(0x34, 0x40, 0x54)))
                .axis_desc_style(("sans-serif", 14).into_font().color(&AXIS))
                .draw()
                .map_err(|e| e.to_string())?;
            let bars = a.histogram.iter().enumerate().map(|(i, &count)| {
                let x = x0 + i as f64 * width;
                Rectangle::new([(x + width * 0.06, 0.0), (x + width * 0.94, count as f64)], BLUE.filled())
            });
            chart.draw_series(bars).map_err(|e| e.to_string())?;
            if let Some(m) = a.mismatched_mean {
                let marks = (0..30).map(|i| {
                    let y = max * 1.1 * i as f64 / 30.0;
                    PathElement::new(vec![(m, y), (m, y + max * 1.1 / 60.0)], OURS.stroke_width(2))
                });
                chart.draw_series(marks).map_err(|e| e.to_string())?;
            }
            root.present().map_err(|e| e.to_string())?;
        }
        Ok(svg)
    })();
    let mut legend = vec![("products".to_string(), BLUE)];
    if a.mismatched_mean.is_some() {
        legend.push(("dashed: two different products, on average".to_string(), OURS));
    }
    figure_html("Agreement between picture and words", svg, &legend)
}

fn method_section(page: &mut String) {
    page.push_str(
        "<section id=\"method\"><h2>How to read this</h2><ul class=\"small\">\
         <li><strong>Recall@K</strong>: share of test shoppers whose hidden next item is in the top K of the \
         whole catalogue. <strong>NDCG@K</strong> also rewards ranking it higher (1 at rank 1, 0.63 at rank 2, \
         0 below K). <strong>MRR@10</strong>: mean of 1/rank within the top 10.</li>\
         <li><strong>Warm</strong>: leave-one-out per shopper (last interaction = test, the one before = \
         validation). <strong>Cold</strong>: products first seen in the last 20% of the time span are removed \
         from all training; the figures are over shoppers whose next item is one of them. <strong>Transfer</strong>: \
         trained on another shop, judged here.</li>\
         <li>Ties count against the model (an item scoring the same as the target ranks ahead of it), so a model \
         cannot look good by not discriminating.</li>\
         <li>Baselines use the same split and metrics: <em>Popularity</em> (most interacted-with in training), \
         <em>Content kNN</em> (products most similar in text and image to the shopper's last one), <em>SASRec</em> \
         with learned item IDs (cannot score a product it never saw in training), and our own model with text \
         only, image only, or without the image-text pretraining.</li>\
         </ul></section>\n",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(escape("a\u{0}b"), "a\u{FFFD}b");
    }

    #[test]
    fn ticks_never_show_negative_zero() {
        assert_eq!(tick(-1e-17, 2), "0.00");
        assert_eq!(tick(-0.2, 2), "-0.20");
        assert_eq!(tick(0.0125, 3), "0.013");
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(943), "943");
        assert_eq!(thousands(100000), "100,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn history_errors_name_the_line() {
        let text = "{\"stage\":\"train\",\"epoch\":1,\"loss\":2.0}\n\n{\"stage\":\"train\"}\n";
        let err = parse_history(text, Path::new("RUN/history.jsonl")).unwrap_err().to_string();
        assert!(err.contains("RUN/history.jsonl") && err.contains("line 3"), "{err}");
    }

    #[test]
    fn charts_are_svg_without_xml_declaration() {
        let series = [BarSeries { name: "a".into(), color: OURS, values: vec![Some(0.1), None, Some(0.3)] }];
        let svg = bar_chart(&["x".into(), "y<z".into(), "w".into()], &series, "score").unwrap();
        assert!(svg.trim_start().starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("y&lt;z") && !svg.contains("y<z"));
    }
}
