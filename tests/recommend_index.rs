//! Issue 17, step 2: `omakase recommend` on a bundle with an index searches it. Probing every
//! partition is `--exact`'s list item for item; the manifest's nprobe is the runtime's indexed
//! search (`index::recommend`); merchandising rules act through the index (a filter still gives k
//! items, the same list as the runtime's `index::recommend::answer`); the output says which search
//! answered; a bad `--nprobe` exits 2 naming the flag.

mod bundle_fixture;

use std::path::Path;

use bundle_fixture::{cli_json, config, file_map, fixture, items, omakase, N_ITEMS};
use omakase::data::Item;
use omakase::export::index::{indexed_bundle, partition, IndexOptions};
use omakase::export::merchandising::{self, ColumnChoice};
use omakase::export::{catalogue_vectors, write_atomic_dir, Bundle, ExportJob};
use omakase::runtime::index::{recommend, Ivf};
use omakase::runtime::manifest::{Provenance, MAX_SHARD_BYTES};
use omakase::runtime::{EmbeddingDtype, Request, RuleText, Rules, Runtime, Scenario, WeightsDtype};
use serde_json::{json, Value};

const GENRES: [&str; 3] = ["Books", "Music", "Games"];
const PARTITIONS: usize = 6;
const NPROBE: usize = 2;

/// The fixture's items with a genre: item `p{i}` is `GENRES[i % 3]`.
fn genre_of(id: &str) -> &'static str {
    GENRES[id.trim_start_matches('p').parse::<usize>().unwrap() % 3]
}

/// The fixture catalogue as an indexed bundle (6 partitions, nprobe 2 in the manifest) with a
/// `genres` column, written as export writes it: rows in partition order, columns following them.
fn indexed_shop() -> Bundle {
    let f = fixture();
    let vectors = catalogue_vectors(&f.model, &f.catalogue, &f.features, true).unwrap();
    let job = ExportJob { weights: WeightsDtype::Q8_0, shard: EmbeddingDtype::Int8, ..ExportJob::new("r", "d", "o") };
    let opts = IndexOptions { partitions: Some(PARTITIONS), nprobe: Some(NPROBE), ..IndexOptions::default() };
    let popularity: Vec<u64> = (0..N_ITEMS as u64).map(|i| i % 5).collect();
    let plan = partition(&vectors.fused, config().dim, &popularity, &opts);
    let shop: Vec<Item> = items()
        .into_iter()
        .map(|mut item| {
            item.metadata.insert("genres".into(), json!([genre_of(&item.id)]));
            item
        })
        .collect();
    let mut bundle =
        indexed_bundle(&config(), &f.tensors(), &vectors, &shop, &job, Provenance::default(), &plan, &opts).unwrap();
    let permuted: Vec<Item> = plan.order().iter().map(|&r| shop[r as usize].clone()).collect();
    let columns = merchandising::columns_file(&permuted, &ColumnChoice::Auto, Path::new("items.jsonl")).unwrap().0;
    merchandising::attach(&mut bundle, columns, None).unwrap();
    bundle
}

fn loaded(bundle: &Bundle) -> (Runtime, Ivf) {
    let files = file_map(bundle);
    let runtime = Runtime::load(&files["manifest.json"], &files).unwrap();
    let ivf = Ivf::load(&bundle.manifest, &files).unwrap().expect("an index");
    (runtime, ivf)
}

fn ids(json: &Value) -> Vec<String> {
    json["recommendations"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn recommend_answers_through_the_index_as_the_runtime_does() {
    let bundle = indexed_shop();
    let (runtime, ivf) = loaded(&bundle);
    assert_eq!((ivf.partitions().len(), ivf.nprobe()), (PARTITIONS, NPROBE));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    write_atomic_dir(&dir, &bundle.files).unwrap();
    let d = dir.to_str().unwrap();
    let all = PARTITIONS.to_string();
    for session in ["p3", "p10,p11,p40", "p59,p0", "p7,p8,p9,p20,p21"] {
        // Every partition probed: --exact's list, item for item (ids, scores, explanations).
        let exact = cli_json(d, &["--session", session, "--exact"]);
        assert_eq!(exact["search"], json!({ "path": "exact", "indexed": true }));
        let every = cli_json(d, &["--session", session, "--nprobe", &all]);
        assert_eq!(every["recommendations"], exact["recommendations"], "{session}");
        assert_eq!(every["search"]["probed"].as_array().unwrap().len(), PARTITIONS);
        assert_eq!(every["search"]["rows_scanned"], N_ITEMS);
        // The manifest's nprobe: the runtime's indexed search, ids and scores.
        let json = cli_json(d, &["--session", session]);
        let search = &json["search"];
        assert_eq!((search["path"].as_str(), search["nprobe"].as_u64()), (Some("index"), Some(NPROBE as u64)));
        assert_eq!(search["partitions"], PARTITIONS);
        let session_ids: Vec<&str> = session.split(',').collect();
        let reference = recommend::recommend(&runtime, &ivf, &session_ids, 10, NPROBE).unwrap();
        let expected_probed: Vec<Value> = reference.probed.iter().map(|&p| json!(p)).collect();
        assert_eq!(search["probed"].as_array().unwrap(), &expected_probed, "{session}: no widening without rules");
        let rows: usize = reference.probed.iter().map(|&p| ivf.partitions()[p].len()).sum();
        assert_eq!(search["rows_scanned"], rows);
        let expected: Vec<(String, f32)> =
            reference.recommendations.items.iter().map(|r| (r.id.clone(), r.score)).collect();
        let got: Vec<(String, f32)> = json["recommendations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["id"].as_str().unwrap().to_string(), r["score"].as_f64().unwrap() as f32))
            .collect();
        assert_eq!(got, expected, "{session}");
    }
    // `similar` searches the index too; every partition is the exact list.
    let exact = cli_json(d, &["--scenario", "similar", "--product", "p5", "--exact"]);
    let every = cli_json(d, &["--scenario", "similar", "--product", "p5", "--nprobe", &all]);
    assert_eq!(every["recommendations"], exact["recommendations"]);
    // `recently-viewed` scans no vectors: no search, said so.
    let popular = cli_json(d, &["--session", "p3", "--scenario", "recently-viewed"]);
    assert_eq!(popular["search"]["path"], "none");
    // The table says which search answered.
    let out = omakase(&["recommend", "--bundle", d, "--session", "p3"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.starts_with(&format!("search: index, nprobe {NPROBE}: {NPROBE} of {PARTITIONS} partitions")),
        "{table}"
    );
    let out = omakase(&["recommend", "--bundle", d, "--session", "p3", "--exact"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with(&format!("search: exact (--exact), {N_ITEMS} rows scanned")), "{table}");
}

#[test]
fn rules_apply_through_the_index_and_a_filter_still_gives_k_items() {
    let bundle = indexed_shop();
    let (runtime, ivf) = loaded(&bundle);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    write_atomic_dir(&dir, &bundle.files).unwrap();
    let d = dir.to_str().unwrap();
    // One partition holds about 10 rows, a third of them Books: 10 Books need more partitions.
    let text = RuleText { filter: Some("genres=Books"), boost: Some("+0.05 genres=Books"), ..Default::default() };
    let rules = runtime.compile_rules(&Rules::parse(&text).unwrap(), None).unwrap();
    let session = vec!["p1".to_string(), "p2".to_string()];
    let request = Request { scenario: Scenario::ForYou, session: &session, product: None, k: 10, rules: &rules };
    let answer = recommend::answer(&runtime, &ivf, &request, 1).unwrap();
    let json = cli_json(
        d,
        &["--session", "p1,p2", "--filter", "genres=Books", "--boost", "+0.05 genres=Books", "--nprobe", "1"],
    );
    let got = ids(&json);
    assert_eq!(got.len(), 10, "{got:?}");
    assert!(got.iter().all(|id| genre_of(id) == "Books"), "{got:?}");
    let expected: Vec<String> = answer.list.items.iter().map(|i| i.id.clone()).collect();
    assert_eq!(got, expected, "the CLI's list is the runtime's indexed answer");
    let probe = answer.probe.expect("for-you scans");
    let first = ivf.partitions()[probe.probed[0]].clone();
    let books_in_first = first.filter(|&r| genre_of(&runtime.item(r as u32).unwrap().id) == "Books").count();
    assert!(books_in_first < 10, "the nearest partition alone cannot fill the list");
    assert!(probe.probed.len() > 1, "the search widened past nprobe to fill the list");
    assert_eq!(json["search"]["probed"].as_array().unwrap().len(), probe.probed.len());
    // Every partition under the same rules: --exact's list (pins and diversity too).
    let rules_args = ["--filter", "genres=Books|Music", "--pin", "p30@2", "--diversity", "genres:4", "--exclude", "p4"];
    let mut every = vec!["--session", "p1,p2", "--nprobe", "6"];
    every.extend_from_slice(&rules_args);
    let mut exact = vec!["--session", "p1,p2", "--exact"];
    exact.extend_from_slice(&rules_args);
    let (every, exact) = (cli_json(d, &every), cli_json(d, &exact));
    assert_eq!(every["recommendations"], exact["recommendations"]);
    assert_eq!(every["recommendations"][1]["id"], "p30");
    // Two genres of at most 4 each and the pin: 9 items, on either path.
    assert_eq!(ids(&every).len(), 9);
}

#[test]
fn a_bad_nprobe_exits_2_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    write_atomic_dir(&dir, &indexed_shop().files).unwrap();
    let d = dir.to_str().unwrap();
    for (value, why) in [("0", "at least 1"), ("-3", "not a count"), ("two", "not a count"), ("7", "6 partitions")] {
        let flag = format!("--nprobe={value}");
        let out = omakase(&["recommend", "--bundle", d, "--session", "p3", &flag]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{value}: {stderr}");
        assert!(stderr.contains("--nprobe") && stderr.contains(why), "{value}: {stderr}");
    }
    let out = omakase(&["recommend", "--bundle", d, "--session", "p3", "--nprobe", "2", "--exact"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
    // A bundle without an index: --nprobe is refused by name, the list is the exact scan's.
    let plain = tmp.path().join("plain");
    let f = fixture();
    write_atomic_dir(&plain, &f.bundle(WeightsDtype::Q8_0, EmbeddingDtype::Int8, MAX_SHARD_BYTES).files).unwrap();
    let p = plain.to_str().unwrap();
    let out = omakase(&["recommend", "--bundle", p, "--session", "p3", "--nprobe", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--nprobe: this bundle has no index"), "{stderr}");
    let json = cli_json(p, &["--session", "p3"]);
    assert_eq!(json["search"], json!({ "path": "exact", "indexed": false }));
}
