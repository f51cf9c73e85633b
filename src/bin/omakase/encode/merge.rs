//! `omakase encode --merge SHARD... --out FEATURES`: the shard files written by `encode --shard I/N`
//! into the one features file (`omakase::encoders::merge`). Exit 0 when written; 2 when the set of
//! files is wrong (a slice missing or given twice, a file of another encoding, not a shard) or --out
//! holds something that is not a features file; 1 when writing fails.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use omakase::encoders::features::check_replaceable;
use omakase::encoders::merge::merge_shards;

use crate::display::terminal_safe;

pub fn run(shards: &[PathBuf], out: &Path) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    if let Err(why) = check_out(shards, out) {
        eprintln!("error: {}", terminal_safe(&why));
        return Ok(ExitCode::from(2));
    }
    let features = match merge_shards(shards) {
        Ok(features) => features,
        Err(err) => {
            eprintln!("error: {}", terminal_safe(&err.to_string()));
            return Ok(ExitCode::from(2));
        }
    };
    features.save(out).with_context(|| format!("writing {}", out.display()))?;
    println!("features       {}", out.display());
    println!("slices         {}", shards.len());
    println!(
        "items          {} ({} with text, {} with an image)",
        features.len(),
        features.text.present_count(),
        features.image.present_count()
    );
    println!("time           {:.1} s", start.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// `out` may be written: nothing or a features file is there (the guard of `encode --out`), and it is
/// not one of the slices, whose loss would cost its worker's encoding (and its cache) for nothing.
fn check_out(shards: &[PathBuf], out: &Path) -> Result<(), String> {
    check_replaceable(out).map_err(|err| err.to_string())?;
    let Ok(out_file) = out.canonicalize() else { return Ok(()) };
    match shards.iter().any(|shard| shard.canonicalize().is_ok_and(|shard| shard == out_file)) {
        true => Err(format!("--out {} is one of the slices being merged; choose another path", out.display())),
        false => Ok(()),
    }
}
