//! `omakase recommend --bundle BUNDLE [--session ID[,ID...] | --item ID ...] [--k 10] [--json]
//! [--scenario for-you|similar|popular|recently-viewed] [--product ID] [--filter F] [--boost B]
//! [--exclude IDS] [--pin ID@POS ...] [--diversity FIELD:N] [--facts FILE] [--exact | --nprobe N]`:
//! the runtime the browser runs, on a bundle directory, with the element's scenarios and rules (the
//! same text as its attributes, read by the same parser: docs/rules.md). Unknown session ids are
//! reported, not fatal.
//! On a bundle with an index (docs/bundle.md § Index), `for-you` and `similar` search it
//! (`index::recommend::answer`: the manifest's nprobe, or `--nprobe`), under the same rules;
//! `--exact` scans every row instead. The output says which search answered.
//! `--item` takes one id exactly as written (repeated, oldest first): a shop's ids may hold commas
//! or spaces, which `--session` splits and trims.
//! Exit codes: 0 ok; 2 bad input (unreadable or corrupt bundle file, named; a malformed rule or a
//! rule on a field the bundle lacks, naming the flag; `--nprobe` below 1, above the index's
//! partitions or on a bundle without an index, naming the flag; `for-you` with no known session id
//! on a bundle without popularity).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use omakase::fs::ReadError;
use omakase::runtime::index::{recommend::answer as indexed_answer, Ivf, Probe};
use omakase::runtime::manifest::FileEntry;
use omakase::runtime::scenario::Fallback;
use omakase::runtime::{Facts, List, Manifest, Request, RuleText, Rules, Runtime, RuntimeError, Scenario};
use serde_json::json;

use crate::display::terminal_safe;

#[derive(clap::Args)]
pub struct Args {
    /// The bundle directory written by `omakase export`.
    #[arg(long)]
    pub bundle: PathBuf,
    /// Item ids the shopper viewed, oldest first, comma-separated (spaces around ids are trimmed).
    #[arg(long, value_delimiter = ',', conflicts_with = "item")]
    pub session: Vec<String>,
    /// One item id the shopper viewed, exactly as written (no splitting, no trimming); repeat it for a
    /// session, oldest first. For ids holding commas or spaces.
    #[arg(long)]
    pub item: Vec<String>,
    /// How many items to recommend.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Which list: for-you (from the session), similar (the product's neighbours), popular,
    /// recently-viewed.
    #[arg(long, default_value = "for-you")]
    pub scenario: String,
    /// The page's product (similar's anchor; never in any list).
    #[arg(long)]
    pub product: Option<String>,
    /// Keep only items matching every clause, e.g. "genres=Comedy|Drama; price=10..50; in_stock".
    #[arg(long)]
    pub filter: Option<String>,
    /// Score changes for items matching clauses, e.g. "+0.1 on_sale; -0.05 genres=Horror".
    #[arg(long)]
    pub boost: Option<String>,
    /// Ids never to list (the basket, purchases), separated by spaces or commas.
    #[arg(long)]
    pub exclude: Option<String>,
    /// ID@POSITION entries (positions from 1), separated by spaces or commas.
    #[arg(long)]
    pub pin: Option<String>,
    /// FIELD:N, at most N items per value of FIELD.
    #[arg(long)]
    pub diversity: Option<String>,
    /// A JSON file of run-time facts ({"in_stock": {"12": false}, "price": {"12": 8.5}}) replacing
    /// the bundle's values.
    #[arg(long)]
    pub facts: Option<PathBuf>,
    /// Scan every row even when the bundle has an index (the exact answer).
    #[arg(long, conflicts_with = "nprobe")]
    pub exact: bool,
    /// Partitions of the bundle's index to probe, 1 to its partitions [default: the manifest's
    /// index.nprobe]. More is closer to the exact answer and slower.
    #[arg(long, value_parser = parse_nprobe)]
    pub nprobe: Option<usize>,
}

/// `--nprobe`: a count of at least 1 (clap names the flag and exits 2 otherwise).
fn parse_nprobe(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1 (a search probes one partition or more)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a count of partitions")),
    }
}

/// Which search made the list.
#[derive(Debug, Clone, PartialEq)]
enum SearchPath {
    /// Every row scanned: the bundle has no index (`indexed` false), or `--exact`.
    Exact { indexed: bool },
    /// The index, probing `nprobe` of `partitions` and scoring `rows` rows; `probe` is `None` when
    /// the list scanned no rows (`popular`, `recently-viewed`, a fallback to `popular`).
    Index { nprobe: usize, partitions: usize, probe: Option<Probe>, rows: usize },
}

/// Largest facts file read.
const MAX_FACTS_FILE: u64 = omakase::runtime::rules::facts::MAX_FACTS_BYTES as u64;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match recommend(&args) {
        Ok((runtime, list, search)) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&as_json(&args, &runtime, &list, &search))?);
            } else {
                print_table(&runtime, &list, &search);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => {
            eprintln!("error: {}", terminal_safe(&message));
            Ok(ExitCode::from(2))
        }
    }
}

/// A rule error with the flag that carried it (`--filter: ...`).
fn flagged(e: RuntimeError) -> String {
    match e {
        RuntimeError::Rule { attribute, reason } if attribute == "facts" => format!("--facts: {reason}"),
        RuntimeError::Rule { attribute, reason } => format!("--{attribute}: {reason}"),
        other => other.to_string(),
    }
}

/// Loads the bundle and answers the request; every failure is bad input, with the file or flag named.
fn recommend(args: &Args) -> Result<(Runtime, List, SearchPath), String> {
    let scenario = Scenario::parse(&args.scenario).map_err(flagged)?;
    let text = RuleText {
        filter: args.filter.as_deref(),
        boost: args.boost.as_deref(),
        exclude: args.exclude.as_deref(),
        pin: args.pin.as_deref(),
        diversity: args.diversity.as_deref(),
    };
    let rules = Rules::parse(&text).map_err(flagged)?;
    let facts = match &args.facts {
        Some(path) => {
            let bytes = omakase::fs::read_bounded(path, MAX_FACTS_FILE).map_err(|e| e.to_string())?;
            let text = String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))?;
            Some(Facts::parse(&text).map_err(|e| format!("{}: {}", path.display(), flagged(e)))?)
        }
        None => None,
    };
    let session: Vec<String> = session_ids(args).into_iter().map(String::from).collect();
    let (runtime, ivf) = load_indexed(&args.bundle)?;
    let compiled = runtime.compile_rules(&rules, facts.as_ref()).map_err(flagged)?;
    let request =
        Request { scenario, session: &session, product: args.product.as_deref(), k: args.k, rules: &compiled };
    let named = |e: RuntimeError| format!("{}: {e}", args.bundle.display());
    let indexed = ivf.is_some();
    let (list, search) = match ivf.filter(|_| !args.exact) {
        Some(ivf) => {
            let partitions = ivf.partitions().len();
            let nprobe = match args.nprobe {
                Some(n) if n > partitions => {
                    return Err(format!("--nprobe: {n} is more than the index's {partitions} partitions"))
                }
                Some(n) => n,
                None => ivf.nprobe(),
            };
            let answer = indexed_answer(&runtime, &ivf, &request, nprobe).map_err(named)?;
            let rows = answer.probe.as_ref().map_or(0, |p| scanned_rows(&ivf, p, runtime.item_count()));
            (answer.list, SearchPath::Index { nprobe, partitions, probe: answer.probe, rows })
        }
        None if args.nprobe.is_some() => {
            return Err("--nprobe: this bundle has no index (export it with --index on); every row is scanned".into())
        }
        None => (runtime.answer(&request).map_err(named)?, SearchPath::Exact { indexed }),
    };
    if list.items.is_empty() && list.fallback == Some(Fallback::NoHistory) {
        // for-you without history on a bundle without popularity: nothing to show, said as before.
        let empty = RuntimeError::EmptySession { unknown: list.unknown.clone() };
        let why = if session.is_empty() { "--session is empty" } else { "no session id is in the bundle" };
        return Err(format!("{empty} ({why}; {})", list.note.as_deref().unwrap_or("no popular item passes the rules")));
    }
    Ok((runtime, list, search))
}

/// Rows the index search scored: its probed partitions that were there, and the rows past the
/// index (delta shards), which every search scans.
fn scanned_rows(ivf: &Ivf, probe: &Probe, item_count: usize) -> usize {
    let probed: usize =
        probe.probed.iter().filter(|p| !probe.missing.contains(p)).map(|&p| ivf.partitions()[p].len()).sum();
    probed + item_count.saturating_sub(ivf.item_count())
}

/// The session's ids, oldest first: `--item`s as written, or `--session` split at commas and trimmed.
fn session_ids(args: &Args) -> Vec<&str> {
    if args.item.is_empty() {
        args.session.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect()
    } else {
        args.item.iter().map(String::as_str).collect()
    }
}

/// The most bytes a bundle's `manifest.json` may hold (it lists files; the catalogue is elsewhere).
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// A bundle's `manifest.json`, read as a regular file of at most [`MAX_MANIFEST_BYTES`].
pub fn read_manifest(bundle: &Path) -> Result<Vec<u8>, String> {
    omakase::fs::read_bounded(&bundle.join("manifest.json"), MAX_MANIFEST_BYTES).map_err(|e| e.to_string())
}

/// A file the manifest lists, read as a regular file of at most its declared size (one byte more is
/// read to tell a longer file: a link to `/dev/zero` or a named pipe is refused, never read).
pub fn read_listed(bundle: &Path, entry: &FileEntry) -> Result<Vec<u8>, String> {
    let path = bundle.join(&entry.path);
    omakase::fs::read_bounded(&path, entry.bytes).map_err(|e| match e {
        ReadError::TooLarge { limit, .. } => {
            format!("{}: larger than the {limit} bytes manifest.json declares", path.display())
        }
        other => other.to_string(),
    })
}

/// Reads `manifest.json` and every file it lists, then loads them (checked) into a runtime, delta
/// shards included (a bad one fails the load, named).
pub fn load(bundle: &Path) -> Result<Runtime, String> {
    load_indexed(bundle).map(|(runtime, _)| runtime)
}

/// [`load`], and the bundle's index when it has one (its centroids file checked by length and
/// sha256, refused naming it).
pub fn load_indexed(bundle: &Path) -> Result<(Runtime, Option<Ivf>), String> {
    let manifest_bytes = read_manifest(bundle)?;
    let named = |e: RuntimeError| format!("{}: {e}", bundle.display());
    let manifest = Manifest::from_json(&manifest_bytes).map_err(named)?;
    let mut files = HashMap::new();
    for (_, entry) in manifest.files() {
        files.insert(entry.path.clone(), read_listed(bundle, entry)?);
    }
    let runtime = omakase::runtime::delta::load(&manifest, &files).map_err(named)?;
    let ivf = Ivf::load(&manifest, &files).map_err(named)?;
    Ok((runtime, ivf))
}

/// `search` in the JSON: `path` (index, exact or none) and, for the index, nprobe, partitions, the
/// partitions probed (nearest first), those missing and the rows scored.
fn search_json(search: &SearchPath) -> serde_json::Value {
    match search {
        SearchPath::Exact { indexed } => json!({ "path": "exact", "indexed": indexed }),
        SearchPath::Index { nprobe, partitions, probe: None, .. } => {
            json!({ "path": "none", "indexed": true, "nprobe": nprobe, "partitions": partitions })
        }
        SearchPath::Index { nprobe, partitions, probe: Some(probe), rows } => json!({
            "path": "index",
            "indexed": true,
            "nprobe": nprobe,
            "partitions": partitions,
            "probed": probe.probed,
            "missing": probe.missing,
            "rows_scanned": rows,
        }),
    }
}

/// The table's first line: which search answered.
fn search_line(search: &SearchPath, item_count: usize) -> Option<String> {
    match search {
        SearchPath::Exact { indexed: false } => None,
        SearchPath::Exact { indexed: true } => Some(format!("search: exact (--exact), {item_count} rows scanned")),
        SearchPath::Index { probe: None, .. } => None,
        SearchPath::Index { nprobe, partitions, probe: Some(probe), rows } => {
            let missing = match probe.missing.len() {
                0 => String::new(),
                m => format!(", {m} missing"),
            };
            Some(format!(
                "search: index, nprobe {nprobe}: {} of {partitions} partitions scanned{missing}, {rows} of {item_count} rows",
                probe.probed.len() - probe.missing.len()
            ))
        }
    }
}

fn as_json(args: &Args, runtime: &Runtime, list: &List, search: &SearchPath) -> serde_json::Value {
    let items: Vec<_> = list
        .items
        .iter()
        .enumerate()
        .map(|(rank, rec)| {
            let meta = runtime.item(rec.row);
            let because = rec.explanation.as_ref().map(|e| {
                json!({
                    "session_item": e.session_id,
                    "session_title": runtime.item(e.session_row).map(|m| m.title.as_str()),
                    "similarity": e.similarity,
                    "text_similarity": e.text_similarity,
                    "image_similarity": e.image_similarity,
                    "text_share": e.text_share,
                })
            });
            json!({
                "rank": rank + 1,
                "id": rec.id,
                "title": meta.map(|m| m.title.as_str()),
                "image": meta.and_then(|m| m.image.as_deref()),
                "link": meta.and_then(|m| m.link.as_deref()),
                "score": rec.score,
                "pinned": rec.pinned,
                "because": because,
            })
        })
        .collect();
    json!({
        "bundle": args.bundle.display().to_string(),
        "scenario": list.scenario,
        "source": list.source,
        "fallback": list.fallback,
        "session": session_ids(args),
        "product": args.product,
        "used": list.used.iter().map(|&r| runtime.item(r).map(|m| m.id.as_str())).collect::<Vec<_>>(),
        "unknown": list.unknown,
        "k": args.k,
        "dropped_pins": list.dropped_pins,
        "note": list.note,
        "search": search_json(search),
        "recommendations": items,
    })
}

fn print_table(runtime: &Runtime, list: &List, search: &SearchPath) {
    if let Some(line) = search_line(search, runtime.item_count()) {
        println!("{line}");
    }
    if !list.unknown.is_empty() {
        // Quoted: an id may hold a comma or spaces (given with --item).
        let quoted: Vec<String> = list.unknown.iter().map(|id| format!("\"{}\"", terminal_safe(id))).collect();
        println!("unknown ids (ignored): {}", quoted.join(", "));
    }
    if let Some(fallback) = list.fallback {
        println!("{} list instead of {} ({})", list.source.as_str(), list.scenario.as_str(), fallback.as_str());
    }
    for pin in &list.dropped_pins {
        println!("pin {} not shown: {}", terminal_safe(&pin.id), pin.reason);
    }
    if let Some(note) = &list.note {
        println!("{note}");
    }
    for (rank, rec) in list.items.iter().enumerate() {
        let title = |row| runtime.item(row).map_or("", |m| m.title.as_str());
        let why = match &rec.explanation {
            Some(e) => {
                let split = match (e.text_similarity, e.image_similarity) {
                    (Some(t), Some(i)) => format!(" (text {t:.2}, image {i:.2})"),
                    _ => String::new(),
                };
                // Ids and titles come from the bundle: escaped before they reach a terminal (`{:?}`
                // escapes control characters already).
                format!(
                    "because {} {:?} {:.2}{split}",
                    terminal_safe(&e.session_id),
                    title(e.session_row),
                    e.similarity
                )
            }
            None => list.source.as_str().to_string(),
        };
        let pinned = if rec.pinned { "  (pinned)" } else { "" };
        println!(
            "{:>3}. {:<10} {:<40} {:.3}  {why}{pinned}",
            rank + 1,
            terminal_safe(&rec.id),
            terminal_safe(title(rec.row)),
            rec.score,
        );
    }
}
