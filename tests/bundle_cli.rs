//! `omakase recommend` and `omakase export` as a user runs them: JSON output, exit 2 on bad input
//! naming the file. The bundle is the synthetic one of tests/bundle_fixture, written to a temp dir.

mod bundle_fixture;

use std::path::Path;
use std::process::{Command, Output};

use bundle_fixture::fixture;
use omakase::export::write_atomic_dir;
use omakase::runtime::manifest::MAX_SHARD_BYTES;
use omakase::runtime::{EmbeddingDtype, WeightsDtype};
use serde_json::Value;

fn omakase(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_omakase")).args(args).output().unwrap()
}

fn write_bundle(dir: &Path) {
    let bundle = fixture().bundle(WeightsDtype::Q8_0, EmbeddingDtype::Int8, MAX_SHARD_BYTES);
    write_atomic_dir(dir, &bundle.files).unwrap();
}

#[test]
fn recommend_prints_k_explained_items_outside_the_session() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    write_bundle(&dir);
    // Written again over itself: the swap leaves one complete bundle, no temp dirs.
    write_bundle(&dir);
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("bundle")]);

    let out = omakase(&["recommend", "--bundle", dir.to_str().unwrap(), "--session", "p1,p7,ghost,p4", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let recs = json["recommendations"].as_array().unwrap();
    assert_eq!(recs.len(), 10);
    for rec in recs {
        let id = rec["id"].as_str().unwrap();
        assert!(!["p1", "p7", "p4"].contains(&id), "{id} is in the session");
        assert!(["p1", "p7", "p4"].contains(&rec["because"]["session_item"].as_str().unwrap()));
        assert!(rec["because"]["similarity"].as_f64().unwrap() <= 1.0 + 1e-5);
        assert!(rec["title"].is_string());
    }
    assert_eq!(json["unknown"], serde_json::json!(["ghost"]));
    // Item p4's title is hostile markup: it stays data (JSON-escaped text), never interpreted here.
    let out = omakase(&["recommend", "--bundle", dir.to_str().unwrap(), "--session", "p1", "--k", "59", "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let titles: Vec<&str> =
        json["recommendations"].as_array().unwrap().iter().map(|r| r["title"].as_str().unwrap()).collect();
    assert!(titles.contains(&"<script>alert(1)</script>"));
}

/// The fixture bundle with item `p1` renamed to `id` (items.json and its manifest entry rewritten).
fn write_bundle_renaming_p1(dir: &Path, id: &str) {
    let mut bundle = fixture().bundle(WeightsDtype::Q8_0, EmbeddingDtype::Int8, MAX_SHARD_BYTES);
    let (_, items) = bundle.files.iter_mut().find(|(name, _)| name == "items.json").unwrap();
    let mut meta: Value = serde_json::from_slice(items).unwrap();
    let first = meta.as_array_mut().unwrap().iter_mut().find(|m| m["id"] == "p1").unwrap();
    first["id"] = id.into();
    *items = serde_json::to_vec(&meta).unwrap();
    let (bytes, sha) = (items.len(), omakase::runtime::manifest::sha256_hex(items));
    let (_, manifest) = bundle.files.iter_mut().find(|(name, _)| name == "manifest.json").unwrap();
    let mut m: Value = serde_json::from_slice(manifest).unwrap();
    m["items"]["bytes"] = bytes.into();
    m["items"]["sha256"] = sha.into();
    *manifest = serde_json::to_vec(&m).unwrap();
    write_atomic_dir(dir, &bundle.files).unwrap();
}

#[test]
fn recommend_takes_ids_with_commas_and_spaces_through_item() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    write_bundle_renaming_p1(&dir, " shoe, size 42 ");
    let bundle = dir.to_str().unwrap();

    let out = omakase(&["recommend", "--bundle", bundle, "--item", " shoe, size 42 ", "--item", "p7", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["used"], serde_json::json!([" shoe, size 42 ", "p7"]));
    assert_eq!(json["session"], serde_json::json!([" shoe, size 42 ", "p7"]));
    assert_eq!(json["unknown"], serde_json::json!([]));

    // --session splits it (reported unknown, quoted in the table), and the two flags do not mix.
    let out = omakase(&["recommend", "--bundle", bundle, "--session", " shoe, size 42 ,p7"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains(r#"unknown ids (ignored): "shoe", "size 42""#), "{table}");
    let out = omakase(&["recommend", "--bundle", bundle, "--session", "p7", "--item", "p8"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}

#[test]
fn recommend_exits_2_naming_the_bad_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    write_bundle(&dir);
    let bundle = dir.to_str().unwrap();

    let out = omakase(&["recommend", "--bundle", bundle, "--session", "", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty session"));

    let out = omakase(&["recommend", "--bundle", bundle, "--session", "nope", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));

    let shard = dir.join("items-00000.bin");
    let mut bytes = std::fs::read(&shard).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&shard, bytes).unwrap();
    let out = omakase(&["recommend", "--bundle", bundle, "--session", "p1"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("items-00000.bin") && stderr.contains("sha256"), "{stderr}");

    std::fs::remove_file(&shard).unwrap();
    let out = omakase(&["recommend", "--bundle", bundle, "--session", "p1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("items-00000.bin"));

    let out = omakase(&["recommend", "--bundle", tmp.path().join("none").to_str().unwrap(), "--session", "p1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("manifest.json"));
}

/// `dir/data`, a usable one-item dataset (a user with 2 interactions, so that what a test breaks is
/// what fails), and `dir/run`, an empty folder.
fn usable_dataset_and_empty_run(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("items.jsonl"), "{\"item_id\": \"a\", \"title\": \"A\"}\n").unwrap();
    std::fs::write(data.join("interactions.csv"), "user_id,item_id,timestamp\nu,a,1\nu,a,2\n").unwrap();
    let run = dir.join("run");
    std::fs::create_dir(&run).unwrap();
    (data, run)
}

#[test]
fn export_exits_2_naming_a_missing_run_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = usable_dataset_and_empty_run(tmp.path());
    let out_dir = tmp.path().join("bundle");
    let out = omakase(&[
        "export",
        "--model",
        run.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run.json"));
    assert!(!out_dir.exists(), "nothing written on failure");
}

/// Issue 14, point 1: `export --out` given someone's folder, the dataset or the run refuses (exit 2,
/// naming the folder and what it holds) and leaves every file in place; `demo` shares the guard.
#[test]
fn export_never_replaces_a_folder_that_is_not_a_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = usable_dataset_and_empty_run(tmp.path());
    std::fs::write(run.join("model.safetensors"), b"weights").unwrap();
    let victim = tmp.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("thesis.txt"), b"precious").unwrap();

    for (out_dir, holds) in [(&victim, "thesis.txt"), (&data, "interactions.csv"), (&run, "model.safetensors")] {
        let before: Vec<_> = std::fs::read_dir(out_dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        let args = ["export", "--model", run.to_str().unwrap(), "--data", data.to_str().unwrap()];
        let out = omakase(&[&args[..], &["--out", out_dir.to_str().unwrap()]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("refusing to replace") && stderr.contains(holds), "{stderr}");
        let after: Vec<_> = std::fs::read_dir(out_dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(after, before, "{} changed", out_dir.display());
    }
    assert_eq!(std::fs::read(victim.join("thesis.txt")).unwrap(), b"precious");
}

/// `omakase ARGS` killed after 60 s (a regression that hangs on a pipe fails instead of hanging).
fn omakase_within_a_minute(args: &[&str]) -> Output {
    Command::new("timeout").arg("60").arg(env!("CARGO_BIN_EXE_omakase")).args(args).output().unwrap()
}

#[cfg(unix)]
#[test]
fn recommend_refuses_links_to_devices_pipes_and_longer_files_without_reading_them() {
    // Issue 14, point 4: a shard or manifest linked to /dev/zero read 4.1 GB before running out of
    // memory; a shard that is a named pipe hung forever. Now exit 2 naming the file, nothing read.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    write_bundle(&dir);
    let bundle = dir.to_str().unwrap();
    let shard = dir.join("items-00000.bin");
    let original = std::fs::read(&shard).unwrap();
    let expect_refusal = |what: &str| {
        let out = omakase_within_a_minute(&["recommend", "--bundle", bundle, "--session", "p1"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(what), "{stderr}");
        stderr.into_owned()
    };

    std::fs::remove_file(&shard).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &shard).unwrap();
    assert!(expect_refusal("items-00000.bin").contains("not a regular file (a device)"));

    std::fs::remove_file(&shard).unwrap();
    let c_path = std::ffi::CString::new(shard.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    assert!(expect_refusal("items-00000.bin").contains("not a regular file (a named pipe)"));

    std::fs::remove_file(&shard).unwrap();
    let mut longer = original.clone();
    longer.push(0);
    std::fs::write(&shard, longer).unwrap();
    let declared = original.len();
    assert!(expect_refusal("items-00000.bin").contains(&format!("larger than the {declared} bytes")));

    std::fs::write(&shard, &original).unwrap();
    let manifest = dir.join("manifest.json");
    std::fs::remove_file(&manifest).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &manifest).unwrap();
    assert!(expect_refusal("manifest.json").contains("not a regular file"));
}
