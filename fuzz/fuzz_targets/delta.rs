//! Delta shards on arbitrary bytes (docs/bundle.md § Deltas): `manifest.json`, then each file the
//! manifest lists, in `Manifest::files()` order (its deltas last), separated by `\n--\n`, as the
//! `bundle` target reads them. The harness fixes every file's sha256 in the manifest (not its size),
//! so mutations reach the delta parser and its checks against the bundle (dimension, storage, the
//! space's digests, ids) instead of stopping at the checksum. `delta::load` must answer with a
//! runtime or an error, never panic; a loaded runtime is asked for recommendations from a session
//! that includes the deltas' rows.
//! Seed: `OMAKASE_FUZZ_SEED=fuzz/corpus cargo test --test runtime_delta -- --ignored write_fuzz_seeds`.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use omakase_runtime::delta;
use omakase_runtime::manifest::{sha256_hex, FileEntry};
use omakase_runtime::Manifest;

const SEPARATOR: &[u8] = b"\n--\n";

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        parts.push(&rest[..at]);
        rest = &rest[at + SEPARATOR.len()..];
    }
    parts.push(rest);
    parts
}

fuzz_target!(|data: &[u8]| {
    let parts = split(data);
    let Ok(mut manifest) = Manifest::from_json(parts[0]) else { return };
    let paths: Vec<String> = manifest.files().into_iter().map(|(_, e)| e.path.clone()).collect();
    let files: HashMap<String, Vec<u8>> = paths.iter().cloned().zip(parts[1..].iter().map(|b| b.to_vec())).collect();
    let fix = |entry: &mut FileEntry| {
        if let Some(bytes) = files.get(&entry.path) {
            entry.sha256 = sha256_hex(bytes);
        }
    };
    fix(&mut manifest.sequence_tower);
    fix(&mut manifest.items);
    if let Some(t) = manifest.item_tower.as_mut() {
        fix(t)
    }
    manifest.shards.iter_mut().for_each(|s| fix(&mut s.file));
    if let Some(e) = manifest.explain.as_mut() {
        e.text.iter_mut().chain(e.image.iter_mut()).for_each(|s| fix(&mut s.file));
    }
    manifest.deltas.iter_mut().for_each(|d| fix(&mut d.file));
    let Ok(runtime) = delta::load(&manifest, &files) else { return };
    let n = runtime.item_count() as u32;
    // The last rows are the deltas'.
    let session: Vec<u32> = data.iter().rev().take(4).map(|&b| n.saturating_sub(1 + b as u32 % 4)).collect();
    let _ = runtime.recommend_rows(&session, 10);
});
