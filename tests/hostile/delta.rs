//! Hostile delta shards (issue 16, point 6; docs/bundle.md § Deltas) through the built CLI: a delta
//! file that is a link to `/dev/zero` or a named pipe is refused by name without being read or waited
//! on; a header that claims more bytes than the file holds is refused before anything is sized from
//! it; ids carrying terminal escapes reach the terminal escaped. The format's own checks (tampering,
//! another model, ids twice or known, broken rows) are `tests/runtime_delta.rs`; arbitrary bytes are
//! the `delta` fuzz target.

use std::path::Path;
use std::process::{Command, Output};

use crate::bundle_fixture::{fixture, Lcg, IMAGE_DIM, TEXT_DIM};
use omakase::export::write_atomic_dir;
use omakase::runtime::delta::{self, NewProduct};
use omakase::runtime::manifest::{EncoderFiles, FileEntry, MAX_SHARD_BYTES};
use omakase::runtime::text_template::ItemTextSpec;
use omakase::runtime::{EmbeddingDtype, ItemMeta, Manifest, Runtime, WeightsDtype};

fn omakase(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_omakase")).args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The fixture's bundle written to `dir`, its manifest listing encoders (never read by `recommend`
/// or `delta --add`), and a delta of one product with id `id` built for it (not yet appended).
fn bundle_and_delta(dir: &Path, id: &str) -> Vec<u8> {
    let mut bundle = fixture().bundle(WeightsDtype::Q8_0, EmbeddingDtype::Int8, MAX_SHARD_BYTES);
    let entry =
        |path: &str, fill: char| FileEntry { path: path.into(), bytes: 1000, sha256: fill.to_string().repeat(64) };
    bundle.manifest.encoders = Some(EncoderFiles {
        text: entry("text_encoder.gguf", 'a'),
        image: Some(entry("image_encoder.gguf", 'b')),
        text_template: ItemTextSpec::default(),
    });
    bundle.files.retain(|(name, _)| name != "manifest.json");
    bundle.files.push(("manifest.json".into(), bundle.manifest.to_json()));
    write_atomic_dir(dir, &bundle.files).unwrap();
    let files = bundle.files.iter().cloned().collect::<std::collections::HashMap<_, _>>();
    let runtime = Runtime::from_manifest(&bundle.manifest, &files).unwrap();
    let mut rng = Lcg(9);
    let vectors = runtime.embed_item(Some(&rng.vec(TEXT_DIM)), Some(&rng.vec(IMAGE_DIM))).unwrap();
    let meta = ItemMeta { id: id.into(), title: format!("{id} title"), image: None, link: None };
    delta::build(&bundle.manifest, &runtime, &[NewProduct { meta, vectors }]).unwrap().bytes
}

#[test]
fn a_delta_that_is_a_device_or_a_pipe_is_refused_unread() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    let bytes = bundle_and_delta(&dir, "n1");
    let bundle = dir.to_str().unwrap();
    let zero = tmp.path().join("zero.bin");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let fifo = tmp.path().join("fifo.bin");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for file in [&zero, &fifo] {
        let out = omakase(&["delta", "--bundle", bundle, "--add", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(file.to_str().unwrap()) && stderr(&out).contains("not a regular file"),
            "{}",
            stderr(&out)
        );
    }
    // Appended, then replaced by a link to /dev/zero: every reader of the bundle refuses it, named.
    let added = tmp.path().join("added.bin");
    std::fs::write(&added, &bytes).unwrap();
    let out = omakase(&["delta", "--bundle", bundle, "--add", added.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let name = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["file"].as_str().unwrap().to_string();
    std::fs::remove_file(dir.join(&name)).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join(&name)).unwrap();
    let out = omakase(&["recommend", "--bundle", bundle, "--item", "p1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(&name) && stderr(&out).contains("not a regular file"), "{}", stderr(&out));
}

#[test]
fn a_header_longer_than_its_file_is_refused_before_anything_is_sized_from_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    let mut bytes = bundle_and_delta(&dir, "n1");
    bytes[8..12].copy_from_slice(&(16u32 << 20).to_le_bytes());
    let file = tmp.path().join("long.bin");
    std::fs::write(&file, &bytes).unwrap();
    let out = omakase(&["delta", "--bundle", dir.to_str().unwrap(), "--add", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("long.bin") && stderr(&out).contains("does not fit"), "{}", stderr(&out));
    let manifest = Manifest::from_json(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest.deltas.is_empty(), "nothing appended");
}

#[test]
fn ids_with_terminal_escapes_reach_the_terminal_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    let id = "n1\u{1b}]0;pwned\u{7}\u{1b}[2J";
    let file = tmp.path().join("escapes.bin");
    std::fs::write(&file, bundle_and_delta(&dir, id)).unwrap();
    let out = omakase(&["delta", "--bundle", dir.to_str().unwrap(), "--add", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(!printed.chars().any(|c| c.is_control() && c != '\n'), "{printed:?}");
    // Appending it again: refused, the id named escaped.
    let out = omakase(&["delta", "--bundle", dir.to_str().unwrap(), "--add", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).chars().any(|c| c.is_control() && c != '\n'), "{:?}", stderr(&out));
    assert!(stderr(&out).contains("already in the catalogue"), "{}", stderr(&out));
}
