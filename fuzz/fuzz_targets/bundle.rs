//! The bundle loader on arbitrary bytes: `manifest.json`, then each file the manifest lists, in
//! `Manifest::files()` order, separated by `\n--\n`. The harness fixes each file's sha256 in the
//! manifest (not its size), so mutations reach the shard, GGUF and metadata parsers instead of
//! stopping at the checksum; a loaded runtime is then asked for recommendations.
//! Seed: `OMAKASE_FUZZ_SEED=fuzz/corpus/bundle cargo test --test runtime_engine -- --ignored`.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use omakase_runtime::manifest::sha256_hex;
use omakase_runtime::{Manifest, Runtime};

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
    let mut files = HashMap::new();
    for (path, bytes) in paths.iter().zip(&parts[1..]) {
        files.insert(path.clone(), bytes.to_vec());
    }
    let hashes: HashMap<String, String> = files.iter().map(|(p, b)| (p.clone(), sha256_hex(b))).collect();
    let fix = |entry: &mut omakase_runtime::manifest::FileEntry| {
        if let Some(h) = hashes.get(&entry.path) {
            entry.sha256 = h.clone();
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
    let Ok(runtime) = Runtime::load(&manifest.to_json(), &files) else { return };
    let n = runtime.item_count() as u32;
    let session: Vec<u32> = data.iter().rev().take(5).map(|&b| b as u32 % n.max(1)).collect();
    let _ = runtime.recommend_rows(&session, 10);
});
