//! The report's inputs: the RUN directory's files read into [`ReportInputs`]. A missing file leaves
//! its section out with a note saying so; a malformed one is an error naming the file (and line, for
//! JSON lines).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::eval::error::EvalError;
use crate::eval::protocol::EvalProtocol;
use crate::eval::quality::QualityReport;
use crate::eval::report::Report;

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
    /// The sweep this run is one seed of (`omakase sweep`), when there is one.
    pub sweep: Option<SweepPlace>,
    /// Anything the reader should know that the data does not show (missing files...).
    pub notes: Vec<String>,
}

/// `sweep.json` (src/train/sweep.rs writes it) as far as the report uses it: per protocol, each
/// setting's test NDCG@10 over the seeds and its paired difference against the default, and each run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SweepFile {
    pub tables: Vec<SweepTable>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SweepTable {
    pub protocol: String,
    pub settings: Vec<SweepSetting>,
    pub runs: Vec<SweepRun>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SweepSetting {
    pub name: String,
    #[serde(rename = "test_ndcg@10")]
    pub test_ndcg10: MeanSd,
    #[serde(default)]
    pub vs_default: Option<SweepDifference>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct MeanSd {
    pub mean: f64,
    pub sd: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct SweepDifference {
    #[serde(rename = "ndcg@10")]
    pub ndcg10: SweepInterval,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct SweepInterval {
    pub difference: f64,
    pub ci95: [f64; 2],
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SweepRun {
    pub setting: String,
    pub seed: u64,
    #[serde(rename = "test_ndcg@10")]
    pub test_ndcg10: f64,
}

/// This run's place in a sweep: `DIR/NAME/seed-S[-cold]` with `DIR/sweep.json` listing it.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPlace {
    /// `DIR/sweep.json` as found.
    pub file: String,
    pub setting: String,
    pub seed: u64,
    /// The table of the run's protocol.
    pub table: SweepTable,
}

/// Where the quality analysis is kept between runs (a transfer evaluation, which judges another
/// catalogue, keeps the run's own).
pub const QUALITY_FILE: &str = "quality.json";

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
    let sweep = sweep_place(run_dir, &mut notes)?;
    Ok(ReportInputs { run_name, run, history, baseline_histories, evals, quality, sweep, notes })
}

/// The sweep `run_dir` belongs to: its folder named `seed-S` (or `seed-S-cold`) inside a setting's
/// folder, and `sweep.json` beside the settings. `None` for an ordinary run; a sweep.json that does
/// not list the run is a note, a malformed one an error naming it.
fn sweep_place(run_dir: &Path, notes: &mut Vec<String>) -> Result<Option<SweepPlace>, EvalError> {
    let Ok(dir) = run_dir.canonicalize() else { return Ok(None) };
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (seed, protocol) = match name.strip_prefix("seed-") {
        Some(rest) => match rest.strip_suffix("-cold") {
            Some(seed) => (seed, "cold"),
            None => (rest, "warm"),
        },
        None => return Ok(None),
    };
    let (Ok(seed), Some(setting_dir), Some(sweep_dir)) =
        (seed.parse::<u64>(), dir.parent(), dir.parent().and_then(Path::parent))
    else {
        return Ok(None);
    };
    let path = sweep_dir.join("sweep.json");
    let Some(text) = read_optional(&path)? else { return Ok(None) };
    let file = parse_json::<SweepFile>(&text, &path)?;
    let setting = setting_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let table = file.tables.into_iter().find(|t| t.protocol == protocol);
    match table {
        Some(table) if table.runs.iter().any(|r| r.setting == setting && r.seed == seed) => {
            Ok(Some(SweepPlace { file: path.display().to_string(), setting, seed, table }))
        }
        _ => {
            notes.push(format!(
                "{} does not list this run ({setting}, seed {seed}, {protocol}): run the sweep again to include it.",
                path.display()
            ));
            Ok(None)
        }
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, EvalError> {
    let fail = |reason: String| EvalError::ReportInput { path: path.display().to_string(), line: None, reason };
    match crate::fs::read_bounded(path, crate::fs::MAX_DOCUMENT_BYTES).map_err(|e| e.into_parts().1) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| fail("not UTF-8 text".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(fail(e.to_string())),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_errors_name_the_line() {
        let text = "{\"stage\":\"train\",\"epoch\":1,\"loss\":2.0}\n\n{\"stage\":\"train\"}\n";
        let err = parse_history(text, Path::new("RUN/history.jsonl")).unwrap_err().to_string();
        assert!(err.contains("RUN/history.jsonl") && err.contains("line 3"), "{err}");
    }
}
