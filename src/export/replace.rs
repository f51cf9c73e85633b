//! What an export may overwrite. A bundle is written next to its folder and swapped in
//! (`write_atomic_dir`), which removes whatever the folder held: that must only ever be an earlier
//! bundle, never a dataset, a trained run or a folder of someone's files given as `--out` by mistake.

use std::path::Path;

use super::error::ExportError;

/// Whether an export may replace what is at `out`: nothing, an empty folder, or a bundle — a folder
/// whose `manifest.json` says `"format": "omakase-bundle"` and which holds no entry beyond the files
/// that manifest names. Anything else (a dataset, a trained run, a folder of someone's files) is
/// refused, naming the first entry that is not the bundle's: replacing the folder would delete it.
pub fn check_replaceable(out: &Path) -> Result<(), ExportError> {
    let meta = match std::fs::symlink_metadata(out) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ExportError::io(out, e)),
    };
    let refuse = |why: String| {
        ExportError::input(out, format!("{why}; refusing to replace it (choose a new or empty folder for the bundle)"))
    };
    if !meta.is_dir() {
        return Err(refuse("exists and is not a folder".into()));
    }
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(out).map_err(|e| ExportError::io(out, e))? {
        entries.push(entry.map_err(|e| ExportError::io(out, e))?.file_name().to_string_lossy().into_owned());
    }
    if entries.is_empty() {
        return Ok(());
    }
    let manifest: Option<serde_json::Value> =
        crate::fs::read_bounded(&out.join("manifest.json"), crate::fs::MAX_DOCUMENT_BYTES)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let Some(manifest) = manifest.filter(|m| m["format"] == crate::runtime::manifest::FORMAT) else {
        entries.sort();
        return Err(refuse(format!("is not an Omakase bundle (no bundle manifest.json; it holds `{}`)", entries[0])));
    };
    let mut named = std::collections::HashSet::from(["manifest.json".to_string()]);
    collect_paths(&manifest, &mut named);
    entries.sort();
    match entries.iter().find(|entry| !named.contains(*entry) && !is_delta_name(entry)) {
        Some(stranger) => Err(refuse(format!("holds `{stranger}`, which is not a file of its bundle"))),
        None => Ok(()),
    }
}

/// `delta-<16 hex digits>.bin`: a delta shard an interrupted `omakase delta` wrote but did not list
/// (docs/bundle.md § Deltas), the bundle's own file all the same.
fn is_delta_name(name: &str) -> bool {
    let hex = name.strip_prefix("delta-").and_then(|rest| rest.strip_suffix(".bin"));
    hex.is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// Every `"path"` string in a manifest (files sit at any depth: towers, shards, encoders).
fn collect_paths(value: &serde_json::Value, into: &mut std::collections::HashSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match v {
                    serde_json::Value::String(path) if key == "path" => {
                        into.insert(path.clone());
                    }
                    _ => collect_paths(v, into),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_paths(v, into)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    const MANIFEST: &str = r#"{"format":"omakase-bundle","sequence_tower":{"path":"sequence_tower.gguf"},
        "shards":[{"file":{"path":"items-00000.bin"}}],"items":{"path":"items.json"}}"#;

    #[test]
    fn a_missing_or_empty_folder_or_an_earlier_bundle_may_be_replaced() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_replaceable(&dir.path().join("new")).is_ok());
        assert!(check_replaceable(dir.path()).is_ok());
        let bundle = folder(&[
            ("manifest.json", MANIFEST),
            ("sequence_tower.gguf", ""),
            ("items-00000.bin", ""),
            ("items.json", "[]"),
        ]);
        assert!(check_replaceable(bundle.path()).is_ok());
        // An unlisted delta shard an interrupted append left is the bundle's too; other names are not.
        std::fs::write(bundle.path().join("delta-0123456789abcdef.bin"), "").unwrap();
        assert!(check_replaceable(bundle.path()).is_ok());
        std::fs::write(bundle.path().join("delta-notes.bin"), "").unwrap();
        assert!(check_replaceable(bundle.path()).is_err());
    }

    #[test]
    fn anything_else_is_refused_naming_what_it_holds() {
        let cases: [(&[(&str, &str)], &str); 4] = [
            (&[("thesis.txt", "precious")], "thesis.txt"),
            (&[("items.jsonl", "{}"), ("interactions.csv", "user_id,item_id,timestamp")], "interactions.csv"),
            (&[("model.safetensors", ""), ("run.json", "{}")], "model.safetensors"),
            (&[("manifest.json", MANIFEST), ("items.json", "[]"), ("notes.md", "mine")], "notes.md"),
        ];
        for (files, named) in cases {
            let dir = folder(files);
            let err = check_replaceable(dir.path()).unwrap_err().to_string();
            assert!(err.contains(named) && err.contains("refusing to replace"), "{err}");
        }
        let other_format = folder(&[("manifest.json", r#"{"format":"something-else"}"#)]);
        assert!(check_replaceable(other_format.path()).is_err());
        let file = folder(&[("a-file", "x")]);
        assert!(check_replaceable(&file.path().join("a-file")).unwrap_err().to_string().contains("not a folder"));
    }
}
