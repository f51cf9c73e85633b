//! The page: what the template `src/eval/templates/report.html` shows, worked out from the
//! [`ReportInputs`] (which rows, which best figures, which charts), and its rendering. The markup
//! and the words are the template's; askama escapes every value it inserts.

use askama::Template;

use super::charts::{self, Figure};
use super::inputs::{ReportInputs, SweepPlace};
use super::{display_name, scorer_rows, MODEL_KEY};
use crate::eval::metrics::Metrics;
use crate::eval::quality::{Exposure, ModalityAgreement, QualityReport};
use crate::eval::report::Report;
use crate::eval::significance::PairedDifference;
use crate::eval::EvalProtocol;

/// Fewer test cases than this get a "read as indicative" warning.
const SMALL_SAMPLE: usize = 100;

/// The whole page (deterministic: the same inputs give the same bytes).
pub fn render(inputs: &ReportInputs) -> String {
    let mut page = Page::new(inputs).render().expect("the page's values and filters cannot fail to format");
    // askama drops the template file's last newline; the page ends with one.
    page.push('\n');
    page
}

#[derive(Template)]
#[template(path = "report.html", config = "src/eval/templates/askama.toml")]
struct Page<'a> {
    inputs: &'a ReportInputs,
    /// The dataset the run learned from (a transfer evaluation judges another one).
    dataset: String,
    key: KeyFigures<'a>,
    /// One section per evaluation, in protocol order.
    accuracy: Vec<Accuracy<'a>>,
    training: Option<Training>,
    seeds: Option<SeedSpread>,
    quality: Option<Quality<'a>>,
}

impl<'a> Page<'a> {
    fn new(inputs: &'a ReportInputs) -> Page<'a> {
        let dataset = inputs
            .run
            .as_ref()
            .and_then(|r| r.dataset.clone())
            .or_else(|| inputs.evals.first().map(|r| r.source_dataset.clone().unwrap_or_else(|| r.dataset.clone())))
            .unwrap_or_else(|| "unknown dataset".into());
        Page {
            inputs,
            dataset,
            key: KeyFigures::new(inputs),
            accuracy: inputs.evals.iter().map(Accuracy::new).collect(),
            training: Training::new(inputs),
            seeds: inputs.sweep.as_ref().map(SeedSpread::new),
            quality: inputs.quality.as_ref().map(Quality::new),
        }
    }
}

/// The few numbers a reader should take away, as cards (each where its evaluation exists).
struct KeyFigures<'a> {
    warm: Option<WarmFigures<'a>>,
    cold: Option<&'a Report>,
    /// The cold evaluation's NDCG@10 relative to known items in the same run.
    cold_ratio: Option<f64>,
    transfer: Option<&'a Report>,
    coverage: Option<&'a Exposure>,
}

struct WarmFigures<'a> {
    report: &'a Report,
    /// Against the best baseline, when one scored above 0.
    lift: Option<Lift>,
}

/// Our NDCG@10 relative to the best baseline's.
struct Lift {
    percent: f64,
    baseline: String,
    best: f64,
}

impl<'a> KeyFigures<'a> {
    fn new(inputs: &'a ReportInputs) -> KeyFigures<'a> {
        let find = |protocol| inputs.evals.iter().find(|r| r.protocol == protocol);
        let warm = find(EvalProtocol::Warm).map(|report| {
            let lift = best_baseline(report).filter(|(_, best)| *best > 0.0).map(|(name, best)| Lift {
                percent: (report.metrics.ndcg_at_10 / best - 1.0) * 100.0,
                baseline: display_name(&name),
                best,
            });
            WarmFigures { report, lift }
        });
        let cold = find(EvalProtocol::Cold);
        KeyFigures {
            warm,
            cold,
            cold_ratio: cold.and_then(|r| r.cold_warm_ratio).and_then(|r| r.ndcg_at_10),
            transfer: find(EvalProtocol::Transfer),
            coverage: inputs.quality.as_ref().and_then(|q| q.exposure.first()),
        }
    }

    fn is_empty(&self) -> bool {
        self.warm.is_none() && self.cold.is_none() && self.transfer.is_none() && self.coverage.is_none()
    }
}

fn best_baseline(report: &Report) -> Option<(String, f64)> {
    report
        .baselines
        .iter()
        .map(|(name, m)| (name.clone(), m.ndcg_at_10))
        .max_by(|a, b| a.1.total_cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
}

/// One evaluation's section: its table, its charts.
struct Accuracy<'a> {
    report: &'a Report,
    small_sample: bool,
    /// How much one hit more or less moves Recall@10.
    one_hit: f64,
    rows: Vec<TableRow>,
    /// RecBole's published figures on the same split (warm only): (model, R@10, N@10).
    references: &'static [(&'static str, f64, f64)],
    charts: Vec<Figure>,
}

/// A row of the metrics table.
struct TableRow {
    label: String,
    ours: bool,
    unmasked: Vec<Cell>,
    masked: Vec<Option<Cell>>,
    difference: Option<PairedDifference>,
    difference_masked: Option<PairedDifference>,
}

/// A table figure; `best` when it is the column's best (a best of 0 is no achievement).
struct Cell {
    value: f64,
    best: bool,
}

impl<'a> Accuracy<'a> {
    fn new(report: &'a Report) -> Accuracy<'a> {
        let references = match report.protocol {
            EvalProtocol::Warm => recbole_reference(&report.dataset),
            _ => &[],
        };
        Accuracy {
            report,
            small_sample: report.users < SMALL_SAMPLE,
            one_hit: 1.0 / report.users.max(1) as f64,
            rows: table_rows(report),
            references,
            charts: charts::protocol_charts(report),
        }
    }
}

fn table_rows(report: &Report) -> Vec<TableRow> {
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
    rows.iter()
        .map(|(key, unmasked, masked)| {
            let (label, ours) = match key.as_str() {
                "model:warm" => {
                    (format!("Omakase (ours), warm items ({} shoppers)", report.warm.map_or(0, |w| w.users)), false)
                }
                "model:finetuned" => ("Omakase (ours), fine-tuned here".to_string(), true),
                MODEL_KEY => (display_name(key), true),
                _ => (display_name(key), false),
            };
            let is_comparable = key != "model:warm";
            let cell = |value: f64, best: f64| Cell { value, best: is_comparable && value == best && value > 0.0 };
            TableRow {
                label,
                ours,
                unmasked: unmasked.named().iter().zip(&best_unmasked).map(|((_, v), best)| cell(*v, *best)).collect(),
                masked: best_masked
                    .iter()
                    .enumerate()
                    .map(|(c, best)| masked.map(|m| cell(m.named()[c].1, *best)))
                    .collect(),
                difference: report.ndcg10_vs_baselines.get(key).copied(),
                difference_masked: report.ndcg10_masked_vs_baselines.get(key).copied(),
            }
        })
        .collect()
}

/// RecBole 1.2.1 reference figures (same splits, test set, unmasked): (model, R@10, N@10).
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

/// The training section: its curves and how long it took.
struct Training {
    charts: Vec<Figure>,
    epochs: usize,
    /// Minutes of training in all, when the history records any.
    minutes: Option<f64>,
}

impl Training {
    fn new(inputs: &ReportInputs) -> Option<Training> {
        if inputs.history.is_empty() && inputs.baseline_histories.is_empty() {
            return None;
        }
        let seconds: f64 = inputs.history.iter().filter_map(|r| r.seconds).sum();
        Some(Training {
            charts: charts::training_charts(inputs),
            epochs: inputs.history.len(),
            minutes: (seconds > 0.0).then_some(seconds / 60.0),
        })
    }
}

/// The seed-spread section: where this run's figure sits among the seeds and settings of its sweep.
struct SeedSpread {
    file: String,
    setting: String,
    seed: u64,
    protocol: String,
    rows: Vec<SpreadRow>,
}

struct SpreadRow {
    name: String,
    mean: f64,
    sd: f64,
    /// (seed, test NDCG@10, whether it is this run), in seed order.
    per_seed: Vec<(u64, f64, bool)>,
    /// The setting minus the default, paired: (difference, low, high); `None` for the default.
    vs_default: Option<(f64, f64, f64)>,
    ours: bool,
}

impl SeedSpread {
    fn new(place: &SweepPlace) -> SeedSpread {
        let rows = place
            .table
            .settings
            .iter()
            .map(|setting| {
                let ours = setting.name == place.setting;
                let mut per_seed: Vec<(u64, f64, bool)> = place
                    .table
                    .runs
                    .iter()
                    .filter(|run| run.setting == setting.name)
                    .map(|run| (run.seed, run.test_ndcg10, ours && run.seed == place.seed))
                    .collect();
                per_seed.sort_by_key(|(seed, ..)| *seed);
                let d = setting.vs_default.map(|v| v.ndcg10);
                SpreadRow {
                    name: setting.name.clone(),
                    mean: setting.test_ndcg10.mean,
                    sd: setting.test_ndcg10.sd,
                    per_seed,
                    vs_default: d.map(|d| (d.difference, d.ci95[0], d.ci95[1])),
                    ours,
                }
            })
            .collect();
        SeedSpread {
            file: place.file.clone(),
            setting: place.setting.clone(),
            seed: place.seed,
            protocol: place.table.protocol.clone(),
            rows,
        }
    }
}

/// The data-quality section.
struct Quality<'a> {
    report: &'a QualityReport,
    missing_image_percent: f64,
    missing_text_percent: f64,
    /// The products without a modality, as far as the analysis lists them.
    missing: Vec<MissingList<'a>>,
    agreement: Option<AgreementView<'a>>,
    exposure: Option<ExposureView<'a>>,
}

struct MissingList<'a> {
    label: &'static str,
    count: usize,
    /// (title or "(untitled ID)", id).
    items: Vec<(String, &'a str)>,
}

struct AgreementView<'a> {
    agreement: &'a ModalityAgreement,
    /// Own pairs hardly above strangers: the list says more about the item tower than the catalogue.
    barely_aligned: bool,
    histogram: Figure,
    /// The least agreeing products: (title, id, cosine).
    lowest: Vec<(String, &'a str, f64)>,
}

struct ExposureView<'a> {
    /// Our model's exposure (the first row).
    ours: &'a Exposure,
    /// Our popularity percentile minus the shoppers' own.
    lean: f64,
    /// (display name, ours, figures).
    rows: Vec<(String, bool, &'a Exposure)>,
}

impl<'a> Quality<'a> {
    fn new(q: &'a QualityReport) -> Quality<'a> {
        let share = |count: usize| if q.items == 0 { 0.0 } else { count as f64 * 100.0 / q.items as f64 };
        let missing = [("Without image", &q.missing_image), ("Without text", &q.missing_text)]
            .into_iter()
            .filter(|(_, missing)| !missing.items.is_empty())
            .map(|(label, missing)| MissingList {
                label,
                count: missing.count,
                items: missing.items.iter().map(|i| (title_or_id(&i.title, &i.item_id), i.item_id.as_str())).collect(),
            })
            .collect();
        let agreement = q.agreement.as_ref().map(|a| AgreementView {
            agreement: a,
            barely_aligned: a.mismatched_mean.is_some_and(|m| a.mean - m < 0.1),
            histogram: charts::agreement_histogram(a),
            lowest: a
                .lowest
                .iter()
                .map(|l| (title_or_id(&l.item.title, &l.item.item_id), l.item.item_id.as_str(), l.cosine))
                .collect(),
        });
        let exposure = q.exposure.first().map(|ours| ExposureView {
            ours,
            lean: ours.mean_popularity_percentile - q.interactions.mean_popularity_percentile,
            rows: q.exposure.iter().map(|e| (display_name(&e.scorer), e.scorer == MODEL_KEY, e)).collect(),
        });
        Quality {
            report: q,
            missing_image_percent: share(q.missing_image.count),
            missing_text_percent: share(q.missing_text.count),
            missing,
            agreement,
            exposure,
        }
    }
}

fn title_or_id(title: &str, id: &str) -> String {
    if title.trim().is_empty() {
        format!("(untitled {id})")
    } else {
        title.to_string()
    }
}

/// The template's own filters.
mod filters {
    use std::fmt::Display;

    /// A count with its thousands grouped: 1,234,567.
    pub fn thousands<T: Display>(n: T, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(super::thousands(&n.to_string()))
    }

    /// A scorer's name as people read it ([`super::display_name`]).
    pub fn display_name<T: Display>(key: T, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(super::display_name(&key.to_string()))
    }
}

/// Digits grouped by three with commas.
fn thousands(digits: &str) -> String {
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Markup, quotes, an ampersand and a control character (not allowed in XML at all).
    const HOSTILE: &str = "<script>alert('x')</script> & \"q\" \u{1}";

    /// Inputs with [`HOSTILE`] in every string that comes from data.
    fn hostile_inputs() -> ReportInputs {
        let metrics =
            serde_json::json!({"recall@10": 0.3, "ndcg@10": 0.2, "recall@50": 0.9, "ndcg@50": 0.3, "mrr@10": 0.1});
        let item = serde_json::json!({"index": 1, "item_id": HOSTILE, "title": HOSTILE});
        let report = serde_json::json!({
            "protocol": "warm", "dataset": HOSTILE, "source_dataset": HOSTILE, "users": 30, "items": 40,
            "metrics": metrics, "metrics_masked": metrics,
            "baselines": {HOSTILE: metrics}, "baselines_masked": {HOSTILE: metrics},
            "baselines_unavailable": {HOSTILE: HOSTILE},
        });
        let quality = serde_json::json!({
            "dataset": HOSTILE, "items": 40,
            "agreement": {"pairs": 3, "mean": 0.5, "median": 0.5, "mismatched_mean": 0.1, "beats_mismatched": 0.9,
                "histogram": [1, 2], "histogram_range": [-1.0, 1.0], "lowest": [{"item": item, "cosine": 0.1}]},
            "missing_text": {"count": 1, "items": [item]}, "missing_image": {"count": 2, "items": [item]},
            "interactions": {"interactions": 10, "mean_popularity_percentile": 0.8, "gini": 0.6},
            "exposure": [{"scorer": HOSTILE, "k": 10, "users": 30, "distinct_items": 33, "coverage": 0.8,
                "mean_popularity_percentile": 0.4, "gini": 0.5}],
        });
        let some = || Some(HOSTILE.to_string());
        ReportInputs {
            run_name: HOSTILE.into(),
            run: Some(super::super::RunInfo {
                dataset: some(),
                protocol: some(),
                status: some(),
                init: some(),
                ..Default::default()
            }),
            evals: vec![serde_json::from_value(report).unwrap()],
            quality: Some(serde_json::from_value(quality).unwrap()),
            notes: vec![HOSTILE.into()],
            sweep: Some(hostile_sweep()),
            ..Default::default()
        }
    }

    /// A sweep whose setting names, file name and this run's setting are [`HOSTILE`].
    fn hostile_sweep() -> SweepPlace {
        let table = serde_json::json!({
            "protocol": "warm",
            "settings": [
                {"name": "default", "test_ndcg@10": {"mean": 0.05, "sd": 0.01}},
                {"name": HOSTILE, "test_ndcg@10": {"mean": 0.06, "sd": 0.002},
                 "vs_default": {"ndcg@10": {"difference": 0.01, "ci95": [-0.001, 0.02]}}},
            ],
            "runs": [
                {"setting": "default", "seed": 43, "test_ndcg@10": 0.0412},
                {"setting": "default", "seed": 42, "test_ndcg@10": 0.0588},
                {"setting": HOSTILE, "seed": 42, "test_ndcg@10": 0.0617},
                {"setting": HOSTILE, "seed": 43, "test_ndcg@10": 0.0583},
            ],
        });
        SweepPlace {
            file: HOSTILE.into(),
            setting: HOSTILE.into(),
            seed: 43,
            table: serde_json::from_value(table).unwrap(),
        }
    }

    fn parse(html: &str) -> roxmltree::Document<'_> {
        let options = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
        roxmltree::Document::parse_with_options(html, options).unwrap_or_else(|e| panic!("not well-formed: {e}"))
    }

    #[test]
    fn data_strings_are_escaped_and_read_as_themselves() {
        let inputs = hostile_inputs();
        let html = render(&inputs);
        let doc = parse(&html);
        assert!(!doc.descendants().any(|n| n.has_tag_name("script")), "markup from data must not become markup");
        // Once parsed, each string reads as itself (the control character as U+FFFD) wherever it is shown.
        let shown = HOSTILE.replace('\u{1}', "\u{FFFD}");
        let texts = doc.descendants().filter(|n| n.is_text() && n.text().is_some_and(|t| t.contains(&shown))).count();
        // title, run name, dataset, protocol, status, init, warm dataset, source, baseline row,
        // unavailable name and reason, quality dataset, 2 missing lists × (title, id), lowest
        // (title, id), exposure row, note, sweep setting (intro, row) and file.
        assert!(texts >= 23, "{texts} texts show the string");
    }

    #[test]
    fn the_seed_spread_marks_this_run_among_its_sweep() {
        let inputs = hostile_inputs();
        let html = render(&inputs);
        let doc = parse(&html);
        let section = doc.descendants().find(|n| n.attribute("id") == Some("seeds")).expect("a seed-spread section");
        let rows: Vec<_> = section.descendants().filter(|n| n.has_tag_name("tr")).skip(1).collect();
        assert_eq!(rows.len(), 2);
        let text =
            |n: roxmltree::Node| n.descendants().filter(|d| d.is_text()).filter_map(|d| d.text()).collect::<String>();
        // Seeds in order; only this run (the hostile setting, seed 43) in bold; the interval that
        // contains 0 greyed.
        assert!(text(rows[0]).contains("42: 0.0588, 43: 0.0412"), "{}", text(rows[0]));
        let bold: Vec<String> = section.descendants().filter(|n| n.has_tag_name("strong")).map(text).collect();
        assert!(bold.iter().any(|b| b == "43: 0.0583"), "{bold:?}");
        assert!(!bold.iter().any(|b| b.contains("0.0617") || b.contains("0.0412")), "{bold:?}");
        assert_eq!(rows[1].attribute("class"), Some("ours"));
        assert!(text(rows[1]).contains("+0.0100") && text(rows[1]).contains("[-0.0010, +0.0200]"), "{}", text(rows[1]));
        assert!(rows[1].children().any(|c| c.attribute("class") == Some("muted")));
        // An ordinary run has no such section.
        let plain = ReportInputs { sweep: None, ..hostile_inputs() };
        assert!(!render(&plain).contains("id=\"seeds\""));
    }

    #[test]
    fn attribute_values_are_escaped() {
        // The template's one attribute filled from a value (a legend swatch's colour): fed a quote,
        // it must stay inside the attribute.
        let inputs = ReportInputs { run_name: "run".into(), history: vec![], ..Default::default() };
        let mut page = Page::new(&inputs);
        let colour = "red\" onmouseover=\"alert('x')";
        page.training = Some(Training {
            charts: vec![Figure {
                caption: "c".into(),
                chart: Err("none".into()),
                legend: vec![("n".into(), colour.into())],
            }],
            epochs: 0,
            minutes: None,
        });
        let html = page.render().unwrap();
        assert!(html.contains("style=\"background:red&quot; onmouseover=&quot;alert(&#39;x&#39;)\""), "{html}");
        let doc = parse(&html);
        let swatch = doc.descendants().find(|n| n.attribute("class") == Some("swatch")).unwrap();
        assert_eq!(swatch.attribute("style"), Some(format!("background:{colour}").as_str()));
        assert!(swatch.attribute("onmouseover").is_none());
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands("0"), "0");
        assert_eq!(thousands("943"), "943");
        assert_eq!(thousands("100000"), "100,000");
        assert_eq!(thousands("1234567"), "1,234,567");
    }
}
