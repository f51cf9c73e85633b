//! `omakase recommend --bundle BUNDLE (--session ID[,ID...] | --item ID ...) [--k 10] [--json]`: the
//! runtime the browser runs, on a bundle directory. Unknown session ids are reported, not fatal.
//! `--item` takes one id exactly as written (repeated, oldest first): a shop's ids may hold commas
//! or spaces, which `--session` splits and trims.
//! Exit codes: 0 ok; 2 bad input (unreadable or corrupt bundle file, named; no known session id).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use omakase::fs::ReadError;
use omakase::runtime::manifest::FileEntry;
use omakase::runtime::{Manifest, Recommendations, Runtime, RuntimeError};
use serde_json::json;

use crate::display::terminal_safe;

#[derive(clap::Args)]
pub struct Args {
    /// The bundle directory written by `omakase export`.
    #[arg(long)]
    pub bundle: PathBuf,
    /// Item ids the shopper viewed, oldest first, comma-separated (spaces around ids are trimmed).
    #[arg(long, value_delimiter = ',', required_unless_present = "item", conflicts_with = "item")]
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
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match recommend(&args) {
        Ok((runtime, result)) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&as_json(&args, &runtime, &result))?);
            } else {
                print_table(&runtime, &result);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => {
            eprintln!("error: {}", terminal_safe(&message));
            Ok(ExitCode::from(2))
        }
    }
}

/// Loads the bundle and answers the session; every failure is bad input, with the file named.
fn recommend(args: &Args) -> Result<(Runtime, Recommendations), String> {
    let session = session_ids(args);
    if session.is_empty() {
        return Err(RuntimeError::EmptySession { unknown: Vec::new() }.to_string() + " (--session is empty)");
    }
    let runtime = load(&args.bundle)?;
    let result = runtime.recommend(&session, args.k).map_err(|e| format!("{}: {e}", args.bundle.display()))?;
    Ok((runtime, result))
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

/// Reads `manifest.json` and every file it lists, then loads them (checked) into a runtime.
pub fn load(bundle: &Path) -> Result<Runtime, String> {
    let manifest_bytes = read_manifest(bundle)?;
    let named = |e: RuntimeError| format!("{}: {e}", bundle.display());
    let manifest = Manifest::from_json(&manifest_bytes).map_err(named)?;
    let mut files = HashMap::new();
    for (_, entry) in manifest.files() {
        files.insert(entry.path.clone(), read_listed(bundle, entry)?);
    }
    Runtime::from_manifest(&manifest, &files).map_err(named)
}

fn as_json(args: &Args, runtime: &Runtime, result: &Recommendations) -> serde_json::Value {
    let items: Vec<_> = result
        .items
        .iter()
        .enumerate()
        .map(|(rank, rec)| {
            let meta = runtime.item(rec.row);
            let e = &rec.explanation;
            json!({
                "rank": rank + 1,
                "id": rec.id,
                "title": meta.map(|m| m.title.as_str()),
                "image": meta.and_then(|m| m.image.as_deref()),
                "link": meta.and_then(|m| m.link.as_deref()),
                "score": rec.score,
                "because": {
                    "session_item": e.session_id,
                    "session_title": runtime.item(e.session_row).map(|m| m.title.as_str()),
                    "similarity": e.similarity,
                    "text_similarity": e.text_similarity,
                    "image_similarity": e.image_similarity,
                    "text_share": e.text_share,
                },
            })
        })
        .collect();
    json!({
        "bundle": args.bundle.display().to_string(),
        "session": session_ids(args),
        "used": result.used.iter().map(|&r| runtime.item(r).map(|m| m.id.as_str())).collect::<Vec<_>>(),
        "unknown": result.unknown,
        "k": args.k,
        "recommendations": items,
    })
}

fn print_table(runtime: &Runtime, result: &Recommendations) {
    if !result.unknown.is_empty() {
        // Quoted: an id may hold a comma or spaces (given with --item).
        let quoted: Vec<String> = result.unknown.iter().map(|id| format!("\"{}\"", terminal_safe(id))).collect();
        println!("unknown ids (ignored): {}", quoted.join(", "));
    }
    for (rank, rec) in result.items.iter().enumerate() {
        let e = &rec.explanation;
        let title = |row| runtime.item(row).map_or("", |m| m.title.as_str());
        let split = match (e.text_similarity, e.image_similarity) {
            (Some(t), Some(i)) => format!(" (text {t:.2}, image {i:.2})"),
            _ => String::new(),
        };
        println!(
            "{:>3}. {:<10} {:<40} {:.3}  because {} {:?} {:.2}{split}",
            rank + 1,
            // Ids and titles come from the bundle: escaped before they reach a terminal (`{:?}`
            // escapes control characters already).
            terminal_safe(&rec.id),
            terminal_safe(title(rec.row)),
            rec.score,
            terminal_safe(&e.session_id),
            title(e.session_row),
            e.similarity
        );
    }
}
