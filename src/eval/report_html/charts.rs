//! The report's charts: inline SVG drawn with plotters' SVG backend (its text is SVG `<text>` the
//! browser lays out, so no font files), each wrapped in a [`Figure`] with its caption and legend.
//! Pure and deterministic: the same figures give the same bytes.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::inputs::{EpochRecord, ReportInputs};
use super::xhtml::forbidden_in_xml;
use super::{display_name, ordered_baselines, scorer_rows, MODEL_KEY};
use crate::eval::metrics::Metrics;
use crate::eval::quality::ModalityAgreement;
use crate::eval::report::Report;
use crate::eval::EvalProtocol;

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

/// A label from data as plotters may write it: plotters escapes markup in SVG text but passes
/// control characters through, and XML forbids most of them, so they become U+FFFD (as the page's
/// escaper makes them).
fn xml_text(label: &str) -> String {
    label.chars().map(|c| if forbidden_in_xml(c) { '\u{FFFD}' } else { c }).collect()
}

/// One bar series: its legend name, colour and a value per category (`None` = no bar).
struct BarSeries {
    name: String,
    color: RGBColor,
    values: Vec<Option<f64>>,
}

/// SVG markup drawn by plotters from our own numbers and labels (plotters escapes the text it
/// writes): trusted, so the page inserts it as is.
#[derive(Debug, Clone)]
pub(super) struct Svg(pub String);

/// A figure: caption, chart (or the reason there is none) and legend (name, CSS colour).
#[derive(Debug, Clone)]
pub(super) struct Figure {
    pub caption: String,
    pub chart: Result<Svg, String>,
    pub legend: Vec<(String, String)>,
}

impl Figure {
    fn new(caption: &str, svg: Result<String, String>, legend: &[(String, RGBColor)]) -> Figure {
        Figure {
            caption: caption.to_string(),
            chart: svg.map(Svg),
            legend: legend.iter().map(|(name, color)| (name.clone(), css(color))).collect(),
        }
    }
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
            xml_text(&categories[n - 1 - r as usize])
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

/// The bar charts of one evaluation: ours against the baselines (warm), new vs known items (cold),
/// on the other shop (transfer).
pub(super) fn protocol_charts(report: &Report) -> Vec<Figure> {
    match report.protocol {
        EvalProtocol::Warm => accuracy_charts(report),
        EvalProtocol::Cold => cold_warm_charts(report),
        EvalProtocol::Transfer => transfer_charts(report),
    }
}

/// A metric of [`Metrics`] and its name (the charts show NDCG@10 and Recall@10 side by side).
type MetricOf = (&'static str, fn(&Metrics) -> f64);
const CHART_METRICS: [MetricOf; 2] = [("NDCG@10", |m| m.ndcg_at_10), ("Recall@10", |m| m.recall_at_10)];

/// One horizontal bar chart per metric of [`CHART_METRICS`]; `series(metric)` gives the bars.
fn metric_charts(caption: &str, categories: &[String], series: impl Fn(MetricOf) -> Vec<BarSeries>) -> Vec<Figure> {
    CHART_METRICS
        .iter()
        .map(|&metric| {
            let bars = series(metric);
            let legend: Vec<(String, RGBColor)> = bars.iter().map(|s| (s.name.clone(), s.color)).collect();
            Figure::new(&format!("{}: {caption}", metric.0), bar_chart(categories, &bars, metric.0), &legend)
        })
        .collect()
}

fn accuracy_charts(report: &Report) -> Vec<Figure> {
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

fn cold_warm_charts(report: &Report) -> Vec<Figure> {
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

fn transfer_charts(report: &Report) -> Vec<Figure> {
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

/// The training curves: pretraining loss, training loss and validation NDCG@10 (ours and the
/// learned baselines'), each where the history has it.
pub(super) fn training_charts(inputs: &ReportInputs) -> Vec<Figure> {
    let mut figures = Vec::new();
    let stage = |records: &[EpochRecord], name: &str| -> Vec<(f64, f64)> {
        records.iter().filter(|r| r.stage == name).filter_map(|r| r.loss.map(|l| (r.epoch as f64, l))).collect()
    };
    let pretrain = stage(&inputs.history, "pretrain");
    if !pretrain.is_empty() {
        let series = vec![("pretraining".to_string(), BLUE, pretrain)];
        let legend = [("image↔text alignment loss".to_string(), BLUE)];
        figures.push(Figure::new("Pretraining loss (item tower)", line_chart(&series, "epoch", "loss", None), &legend));
    }
    let best = inputs.run.as_ref().and_then(|r| r.best_epoch).map(|e| e as f64);
    let train = stage(&inputs.history, "train");
    if !train.is_empty() {
        let series = vec![("training".to_string(), OURS, train)];
        let legend = [("next-item cross-entropy".to_string(), OURS)];
        figures.push(Figure::new("Training loss", line_chart(&series, "epoch", "loss", best), &legend));
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
        figures.push(Figure::new("Validation NDCG@10", line_chart(&series, "epoch", "NDCG@10", best), &legend));
    }
    figures
}

pub(super) fn agreement_histogram(a: &ModalityAgreement) -> Figure {
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
    Figure::new("Agreement between picture and words", svg, &legend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_never_show_negative_zero() {
        assert_eq!(tick(-1e-17, 2), "0.00");
        assert_eq!(tick(-0.2, 2), "-0.20");
        assert_eq!(tick(0.0125, 3), "0.013");
    }

    #[test]
    fn charts_are_svg_without_xml_declaration() {
        let series = [BarSeries { name: "a".into(), color: OURS, values: vec![Some(0.1), None, Some(0.3)] }];
        let svg = bar_chart(&["x".into(), "y<z".into(), "w".into()], &series, "score").unwrap();
        assert!(svg.trim_start().starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("y&lt;z") && !svg.contains("y<z"));
        let svg = bar_chart(&["x".into(), "y\u{1}z".into(), "w".into()], &series, "score").unwrap();
        assert!(svg.contains("y\u{FFFD}z") && !svg.contains('\u{1}'));
    }
}
