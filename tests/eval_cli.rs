//! `omakase eval` / `omakase report` end to end on a tiny synthetic dataset and a tiny model saved by
//! hand through the model API (no trainer involved): the JSON of docs/evaluation.md, masking, the learned
//! baselines found or reported missing, determinism, the self-contained report.html, and bad input
//! (exit 2, naming the file).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::Device;
use candle_nn::VarMap;
use omakase::encoders::cache::sha256_hex;
use omakase::encoders::features::{Features, ModalityFeatures};
use omakase::model::{seeded_var_builder, ModelConfig, MultimodalRecommender, SasRecId};
use omakase::train::run::{ModelKind, RunInfo};
use omakase::train::TrainConfig;
use serde_json::Value;

const N_ITEMS: usize = 40;
const N_USERS: usize = 30;
const TEXT_DIM: usize = 12;
const IMAGE_DIM: usize = 20;
/// Items 0..4 open every user's history: the most popular items, never a test target.
const HEAD: u32 = 4;
/// The title that must come out escaped (item 5 has no image, so the report lists it).
const HOSTILE_TITLE: &str = "<script>alert('x')</script> & Co";
const HOSTILE_ITEM: usize = 5;

fn tiny_config() -> ModelConfig {
    ModelConfig {
        dim: 16,
        num_heads: 2,
        num_layers: 1,
        fusion_layers: 1,
        ffn_dim: 16,
        max_len: 8,
        text_dim: TEXT_DIM,
        image_dim: IMAGE_DIM,
        ..ModelConfig::default()
    }
}

/// A small deterministic generator (the fixture is the same on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }

    fn unit(&mut self) -> f32 {
        (self.next() % 2001) as f32 / 1000.0 - 1.0
    }
}

fn has_image(item: usize) -> bool {
    item % 7 != 5 // items 5, 12, 19, 26, 33 have no picture
}

fn has_text(item: usize) -> bool {
    item != 38
}

/// items.jsonl + interactions.csv. Every user: items 0..4 at times 0..3, then five mid items, then
/// the target at time 10. Users 0..9 end on items 30..39, first seen at the very end (new under the
/// cold protocol); the others on items 6..15.
fn write_dataset(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut items = String::new();
    for i in 0..N_ITEMS {
        let title = if i == HOSTILE_ITEM { HOSTILE_TITLE.to_string() } else { format!("Product {i}") };
        let title = if has_text(i) { title } else { String::new() };
        let image = if has_image(i) { Value::from(format!("images/{i}.jpg")) } else { Value::Null };
        let line = serde_json::json!({"item_id": format!("i{i}"), "title": title, "image": image});
        items.push_str(&format!("{line}\n"));
    }
    std::fs::write(dir.join("items.jsonl"), items).unwrap();
    let mut rng = Lcg(11);
    let mut rows = String::from("user_id,item_id,timestamp\n");
    for u in 0..N_USERS {
        let mut sequence: Vec<u32> = (0..HEAD).collect();
        while sequence.len() < HEAD as usize + 5 {
            let item = 6 + rng.next() % 24;
            if !sequence.contains(&item) {
                sequence.push(item);
            }
        }
        let target = if u < 10 { 30 + u as u32 } else { 6 + rng.next() % 10 };
        sequence.push(target);
        for (t, item) in sequence.iter().enumerate() {
            let time = if t + 1 == sequence.len() { 10 } else { t };
            rows.push_str(&format!("u{u},i{item},{time}\n"));
        }
    }
    std::fs::write(dir.join("interactions.csv"), rows).unwrap();
}

fn write_features(path: &Path, text_dim: usize) {
    let mut rng = Lcg(5);
    let mut text = ModalityFeatures::absent(N_ITEMS, text_dim, None);
    let mut image = ModalityFeatures::absent(N_ITEMS, IMAGE_DIM, None);
    for i in 0..N_ITEMS {
        let t: Vec<f32> = (0..text_dim).map(|_| rng.unit()).collect();
        let v: Vec<f32> = (0..IMAGE_DIM).map(|_| rng.unit()).collect();
        if has_text(i) {
            text.set_row(i, &t, [i as u8; 32]);
        }
        if has_image(i) {
            image.set_row(i, &v, [i as u8 + 100; 32]);
        }
    }
    let features =
        Features { item_ids: (0..N_ITEMS).map(|i| format!("i{i}")).collect(), text, image, text_template: None };
    features.save(path).unwrap();
}

fn item_ids_sha256() -> String {
    let ids: Vec<String> = (0..N_ITEMS).map(|i| format!("i{i}")).collect();
    sha256_hex(ids.join("\n").as_bytes())
}

/// A RUN directory as `omakase train` leaves it, written through the model API.
fn write_run(run: &Path, features: &Path, kind: ModelKind, protocol: &str, config: &ModelConfig) {
    std::fs::create_dir_all(run).unwrap();
    let train_config = TrainConfig { model: config.clone(), ..TrainConfig::default() };
    std::fs::write(run.join("config.toml"), train_config.to_toml().unwrap()).unwrap();
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, 7, &Device::Cpu);
    match kind {
        ModelKind::Multimodal => drop(MultimodalRecommender::new(config, vb).unwrap()),
        ModelKind::SasrecId => drop(SasRecId::new(config, N_ITEMS, vb).unwrap()),
    }
    varmap.save(run.join("model.safetensors")).unwrap();
    let info = RunInfo {
        dataset: "tiny".into(),
        data_dir: "tiny".into(),
        protocol: protocol.into(),
        model_kind: kind,
        features: features.display().to_string(),
        features_sha256: sha256_hex(&std::fs::read(features).unwrap()),
        n_items: N_ITEMS,
        item_ids_sha256: item_ids_sha256(),
        init: None,
        status: "done".into(),
        best_epoch: Some(2),
        best_valid_ndcg_at_10: Some(0.1),
        seconds: 3.0,
        cpu_seconds: None,
        device: None,
    };
    std::fs::write(run.join("run.json"), serde_json::to_string_pretty(&info).unwrap()).unwrap();
    let history = [
        r#"{"stage":"pretrain","epoch":1,"loss":3.1,"seconds":0.5,"lr_factor":1.0,"grad_norm":1.0}"#,
        r#"{"stage":"pretrain","epoch":2,"loss":2.4,"seconds":0.5,"lr_factor":1.0,"grad_norm":1.0}"#,
        r#"{"stage":"train","epoch":1,"loss":3.5,"valid":{"ndcg@10":0.05,"recall@10":0.1},"seconds":1.0,"lr_factor":1.0,"grad_norm":1.0}"#,
        r#"{"stage":"train","epoch":2,"loss":3.0,"valid":{"ndcg@10":0.1,"recall@10":0.2},"seconds":1.0,"lr_factor":1.0,"grad_norm":1.0}"#,
    ];
    std::fs::write(run.join("history.jsonl"), history.join("\n") + "\n").unwrap();
}

/// Dataset, features and a warm RUN with one learned baseline (sasrec_id), in a temporary folder.
struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    features: PathBuf,
    run: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let data = root.join("tiny");
    write_dataset(&data);
    let features = root.join("features.safetensors");
    write_features(&features, TEXT_DIM);
    let run = root.join("run");
    write_run(&run, &features, ModelKind::Multimodal, "warm", &tiny_config());
    write_run(&run.join("baselines/sasrec_id"), &features, ModelKind::SasrecId, "warm", &tiny_config());
    Fixture { _tmp: tmp, root, data, features, run }
}

fn omakase(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_omakase")).current_dir(cwd).args(args).output().unwrap()
}

fn eval(f: &Fixture, run: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["eval", "--model", run.to_str().unwrap(), "--data", f.data.to_str().unwrap()];
    args.extend_from_slice(extra);
    omakase(&f.root, &args)
}

fn stdout_json(output: &Output) -> Value {
    assert!(output.status.success(), "exit {:?}\nstderr: {}", output.status, String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

const METRICS: [&str; 5] = ["recall@10", "ndcg@10", "recall@50", "ndcg@50", "mrr@10"];

fn metric(m: &Value, key: &str) -> f64 {
    m[key].as_f64().unwrap_or_else(|| panic!("metric {key} missing in {m}"))
}

#[test]
fn warm_eval_json_follows_the_contract_and_masking_only_helps() {
    let f = fixture();
    let out = eval(&f, &f.run, &["--json", "--baselines"]);
    let report = stdout_json(&out);
    assert_eq!(report["protocol"], "warm");
    assert_eq!(report["dataset"], "tiny");
    assert_eq!(report["users"], N_USERS);
    assert_eq!(report["items"], N_ITEMS);
    for key in METRICS {
        assert!((0.0..=1.0).contains(&metric(&report["metrics"], key)), "{key}");
        assert!((0.0..=1.0).contains(&metric(&report["metrics_masked"], key)), "{key}");
    }
    let baselines = report["baselines"].as_object().unwrap();
    let names: Vec<&str> = baselines.keys().map(String::as_str).collect();
    assert_eq!(names, ["content_knn", "popularity", "sasrec_id"]);

    // Masking removes candidates ahead of the target: no figure can get worse, for any scorer.
    let mut pairs = vec![("model", &report["metrics"], &report["metrics_masked"])];
    for name in &names {
        pairs.push((name, &report["baselines"][name], &report["baselines_masked"][name]));
    }
    for (name, unmasked, masked) in pairs {
        for key in METRICS {
            assert!(metric(masked, key) >= metric(unmasked, key) - 1e-12, "{name} {key}: {masked} vs {unmasked}");
        }
    }
    // Popularity ranks the four head items (in every history) ahead of every target: masking them
    // must lift its figures strictly, and content kNN's last item (itself, cosine 1) likewise.
    let pop = (&report["baselines"]["popularity"], &report["baselines_masked"]["popularity"]);
    assert!(metric(pop.1, "ndcg@10") > metric(pop.0, "ndcg@10") + 0.01, "{pop:?}");
    assert!(metric(pop.0, "mrr@10") < 1.0 / (HEAD as f64 + 1.0) + 1e-12, "4 head items rank above every target");
    let knn = (&report["baselines"]["content_knn"], &report["baselines_masked"]["content_knn"]);
    assert!(metric(knn.1, "mrr@10") > metric(knn.0, "mrr@10"), "{knn:?}");

    // Learned baselines that were never trained are named with the reason, not dropped.
    let unavailable = report["baselines_unavailable"].as_object().unwrap();
    for name in ["image_only", "no_pretrain", "text_only"] {
        let why = unavailable[name].as_str().unwrap();
        assert!(why.contains(&format!("baselines/{name}")) && why.contains("not found"), "{why}");
    }

    // The file equals what was printed, and a second run gives the same bytes.
    let written = std::fs::read_to_string(f.run.join("eval-warm.json")).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&written).unwrap(), report);
    let again = eval(&f, &f.run, &["--json", "--baselines"]);
    assert_eq!(again.stdout, out.stdout, "same RUN and data must give the same numbers");
}

#[test]
fn against_compares_two_runs_on_the_same_cases() {
    let f = fixture();
    let alone = stdout_json(&eval(&f, &f.run, &["--json"]));
    // A copy of the run: same figures, so every paired difference and its interval are exactly 0.
    let copy = f.root.join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for name in ["config.toml", "run.json", "model.safetensors"] {
        std::fs::copy(f.run.join(name), copy.join(name)).unwrap();
    }
    let report = stdout_json(&eval(&f, &f.run, &["--json", "--against", copy.to_str().unwrap()]));
    assert_eq!(report["metrics"], alone["metrics"]);
    let against = &report["against"];
    assert_eq!(against["metrics"], alone["metrics"]);
    assert_eq!(against["ndcg10_difference"]["difference"], 0.0);
    assert_eq!(against["ndcg10_difference"]["ci95"], serde_json::json!([0.0, 0.0]));
    assert!(alone.get("against").is_none());

    // Another protocol's run is refused, naming the flag.
    let cold = f.root.join("cold");
    write_run(&cold, &f.features, ModelKind::Multimodal, "cold", &tiny_config());
    assert_bad_input(&eval(&f, &f.run, &["--against", cold.to_str().unwrap()]), &["--against"]);
}

#[test]
fn table_output_names_every_scorer() {
    let f = fixture();
    let out = eval(&f, &f.run, &["--baselines"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    for row in ["model", "popularity", "content_knn", "sasrec_id", "text_only", "not evaluated", "report.html"] {
        assert!(table.contains(row), "{row} missing from:\n{table}");
    }
}

#[test]
fn index_judges_the_approximate_path_against_the_exact_ranking() {
    let f = fixture();
    let report = stdout_json(&eval(&f, &f.run, &["--json", "--index", "--partitions", "4", "--nprobe", "1,4"]));
    let index = &report["index"];
    // k-means may leave a partition empty (then dropped), never more than asked.
    let p = index["partitions"].as_u64().unwrap();
    assert!((1..=4).contains(&p), "{index}");
    let export = index["export_nprobe"].as_u64().unwrap();
    assert!((1..=p).contains(&export), "{index}");
    let probes = index["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 2);
    // Probing every partition is the exact ranking: the same figures, to the bit, and nothing missed.
    let all = &probes[1];
    assert_eq!(all["nprobe"], p);
    assert_eq!(all["metrics"], report["metrics"]);
    assert_eq!(all["metrics_masked"], report["metrics_masked"]);
    for key in ["recall@10_vs_exact", "recall@10_masked_vs_exact", "targets_probed"] {
        assert_eq!(all[key], 1.0, "{key}: {all}");
    }
    assert_eq!(all["ndcg10_difference"]["difference"], 0.0);
    let one = &probes[0];
    assert_eq!(one["nprobe"], 1);
    for key in ["recall@10_vs_exact", "targets_probed"] {
        assert!((0.0..=1.0).contains(&one[key].as_f64().unwrap()), "{key}: {one}");
    }
    // Without --nprobe: the one the export would write; the table has a row per nprobe.
    let default = stdout_json(&eval(&f, &f.run, &["--json", "--index", "--partitions", "4"]));
    assert_eq!(default["index"]["probes"][0]["nprobe"], export);
    let table = eval(&f, &f.run, &["--index", "--partitions", "4", "--nprobe", "1"]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.contains("model, index nprobe 1") && table.contains("recall@10 vs exact"), "{table}");
    // Index flags without --index, and a zero, are bad input.
    assert_bad_input(&eval(&f, &f.run, &["--nprobe", "2"]), &["--index"]);
    assert_bad_input(&eval(&f, &f.run, &["--index", "--nprobe", "0"]), &["--nprobe"]);
}

#[test]
fn cold_eval_reports_new_item_cases_and_the_ratio() {
    let f = fixture();
    let cold = f.root.join("cold-run");
    write_run(&cold, &f.features, ModelKind::Multimodal, "cold", &tiny_config());
    let report = stdout_json(&eval(&f, &cold, &["--protocol", "cold", "--json"]));
    assert_eq!(report["protocol"], "cold");
    // Users 0..9 end on items first seen at the last timestamp: the new-item cases.
    assert_eq!(report["users"], 10);
    assert_eq!(report["warm"]["users"], N_USERS - 10);
    let ratio = &report["cold_warm_ratio"];
    for key in METRICS {
        assert!(ratio.get(key).is_some(), "cold_warm_ratio lacks {key}: {ratio}");
    }
    // A warm-trained run is refused for cold figures, naming run.json.
    let out = eval(&f, &f.run, &["--protocol", "cold"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("run.json") && stderr.contains("warm protocol"), "{stderr}");
}

#[test]
fn transfer_eval_reports_zero_shot_and_fine_tuned_figures() {
    let f = fixture();
    // The source run claims another catalogue (its ids hash differs from DIR's).
    let source = f.root.join("source-run");
    write_run(&source, &f.features, ModelKind::Multimodal, "warm", &tiny_config());
    let info_path = source.join("run.json");
    let mut info: Value = serde_json::from_str(&std::fs::read_to_string(&info_path).unwrap()).unwrap();
    info["dataset"] = "elsewhere".into();
    info["item_ids_sha256"] = "0".repeat(64).into();
    std::fs::write(&info_path, info.to_string()).unwrap();
    let features = f.features.to_str().unwrap();

    // Under warm the catalogue mismatch is refused; transfer is what it is for.
    assert_bad_input(&eval(&f, &source, &["--features", features]), &["run.json", "--protocol transfer"]);
    let zero_shot =
        stdout_json(&eval(&f, &source, &["--protocol", "transfer", "--features", features, "--json", "--baselines"]));
    assert_eq!(zero_shot["protocol"], "transfer");
    assert_eq!(zero_shot["source_dataset"], "elsewhere");
    assert!(zero_shot.get("finetuned").is_none());
    assert!(zero_shot["baselines"].get("popularity").is_some(), "model-free baselines need no run");
    let why = zero_shot["baselines_unavailable"]["sasrec_id"].as_str().unwrap();
    assert!(why.contains("--finetuned"), "{why}");

    // With the run fine-tuned on DIR (here: the fixture's run), both figures and its baselines.
    let both = stdout_json(&eval(
        &f,
        &source,
        &[
            "--protocol",
            "transfer",
            "--features",
            features,
            "--json",
            "--baselines",
            "--finetuned",
            f.run.to_str().unwrap(),
        ],
    ));
    assert_eq!(both["metrics"], zero_shot["metrics"], "zero-shot figures do not depend on --finetuned");
    assert_eq!(both["finetuned"]["users"], N_USERS);
    let warm = stdout_json(&eval(&f, &f.run, &["--json"]));
    assert_eq!(both["finetuned"]["metrics"], warm["metrics"], "the fine-tuned run scored on the same cases");
    assert!(both["baselines"].get("sasrec_id").is_some());
    let html = std::fs::read_to_string(source.join("report.html")).unwrap();
    assert!(html.contains("id=\"accuracy-transfer\"") && html.contains("fine-tuned here"));
    // --finetuned outside transfer is refused.
    assert_bad_input(&eval(&f, &f.run, &["--finetuned", f.run.to_str().unwrap()]), &["--finetuned"]);
}

/// Every attribute that could make the browser fetch something.
fn external_references(doc: &roxmltree::Document) -> Vec<String> {
    let mut found = Vec::new();
    for node in doc.descendants().filter(|n| n.is_element()) {
        let name = node.tag_name().name();
        if matches!(name, "script" | "link" | "img" | "iframe" | "object" | "embed" | "image" | "use") {
            found.push(format!("<{name}>"));
        }
        for attr in node.attributes() {
            let value = attr.value().trim();
            let fetches = matches!(attr.name(), "src" | "href" | "srcset" | "action" | "poster" | "data");
            if fetches && !value.starts_with('#') {
                found.push(format!("{}={value}", attr.name()));
            }
            if value.contains("url(") {
                found.push(format!("{}={value}", attr.name()));
            }
        }
    }
    found
}

#[test]
fn report_html_is_self_contained_well_formed_and_escaped() {
    let f = fixture();
    stdout_json(&eval(&f, &f.run, &["--json", "--baselines"]));
    let html = std::fs::read_to_string(f.run.join("report.html")).unwrap();
    let doc = roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() },
    )
    .unwrap_or_else(|e| panic!("report.html is not well-formed: {e}"));
    for id in ["key-figures", "accuracy-warm", "training", "data-quality", "method"] {
        assert!(doc.descendants().any(|n| n.attribute("id") == Some(id)), "section {id} missing");
    }
    assert!(doc.descendants().filter(|n| n.has_tag_name("svg")).count() >= 4, "charts missing");
    assert_eq!(external_references(&doc), Vec::<String>::new());
    let style: String = doc.descendants().filter(|n| n.has_tag_name("style")).filter_map(|n| n.text()).collect();
    assert!(!style.contains("@import") && !style.contains("url("), "CSS must not load anything");
    for needle in ["http://", "https://", "//cdn", "<script"] {
        let hits: Vec<&str> = html.match_indices(needle).map(|(i, _)| &html[i.saturating_sub(30)..i + 30]).collect();
        let hits: Vec<&&str> = hits.iter().filter(|h| !h.contains("xmlns")).collect();
        assert!(hits.is_empty(), "{needle}: {hits:?}");
    }
    // The hostile title (item 5 has no picture, so the missing-image list names it) shows as text.
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co"), "escaped title missing");
    let text: String = doc.descendants().filter(|n| n.is_text()).filter_map(|n| n.text()).collect();
    assert!(text.contains(HOSTILE_TITLE), "the title must read as itself once parsed");
    // Data quality: missing modalities counted, coverage figures present.
    let quality: Value = serde_json::from_str(&std::fs::read_to_string(f.run.join("quality.json")).unwrap()).unwrap();
    assert_eq!(quality["missing_image"]["count"], (0..N_ITEMS).filter(|&i| !has_image(i)).count());
    assert_eq!(quality["missing_text"]["count"], 1);
    let pairs = (0..N_ITEMS).filter(|&i| has_image(i) && has_text(i)).count();
    assert_eq!(quality["agreement"]["pairs"], pairs);
    let exposure = quality["exposure"].as_array().unwrap();
    assert_eq!(exposure[0]["scorer"], "model");
    let pop = exposure.iter().find(|e| e["scorer"] == "popularity").unwrap();
    // Popularity shows everyone the same list (the head masked): the fewest distinct items of all.
    assert!(exposure.iter().all(|e| e["distinct_items"].as_u64() >= pop["distinct_items"].as_u64()), "{exposure:?}");
    assert!(html.contains("Reach and popularity bias"));
}

#[test]
fn report_subcommand_rebuilds_the_page() {
    let f = fixture();
    let out = omakase(&f.root, &["report", "--model", f.run.to_str().unwrap(), "--data", f.data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(f.run.join("report.html")).unwrap();
    assert!(html.contains("id=\"data-quality\"") && html.contains("id=\"training\""));
    assert!(html.contains("No evaluation yet"), "no eval-*.json yet: the page says so");
}

#[test]
fn features_changed_since_training_are_flagged() {
    let f = fixture();
    let quiet = eval(&f, &f.run, &["--json"]);
    assert!(quiet.status.success() && !String::from_utf8_lossy(&quiet.stderr).contains("changed since"));
    // Same catalogue, other values (as after re-encoding with another template).
    let mut features = Features::load(&f.features).unwrap();
    features.text.values.iter_mut().for_each(|v| *v = -*v);
    features.save(&f.features).unwrap();
    let out = eval(&f, &f.run, &["--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("changed since") && stderr.contains("features"), "{stderr}");
}

fn assert_bad_input(out: &Output, names: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    for name in names {
        assert!(stderr.contains(name), "{name} not named in: {stderr}");
    }
}

#[test]
fn bad_inputs_exit_2_naming_the_file() {
    let f = fixture();
    // No RUN directory.
    assert_bad_input(&eval(&f, &f.root.join("nope"), &[]), &["nope", "RUN"]);
    // A RUN without its weights.
    let broken = f.root.join("broken");
    write_run(&broken, &f.features, ModelKind::Multimodal, "warm", &tiny_config());
    std::fs::remove_file(broken.join("model.safetensors")).unwrap();
    assert_bad_input(&eval(&f, &broken, &[]), &["model.safetensors", "missing"]);
    // Features whose text width disagrees with the model's config.
    let narrow = f.root.join("narrow.safetensors");
    write_features(&narrow, TEXT_DIM - 2);
    assert_bad_input(&eval(&f, &f.run, &["--features", narrow.to_str().unwrap()]), &["config.toml", "text_dim"]);
    // Weights of another shape than the config says.
    let wrong = f.root.join("wrong");
    write_run(&wrong, &f.features, ModelKind::Multimodal, "warm", &ModelConfig { dim: 8, ..tiny_config() });
    std::fs::write(
        wrong.join("config.toml"),
        TrainConfig { model: tiny_config(), ..TrainConfig::default() }.to_toml().unwrap(),
    )
    .unwrap();
    assert_bad_input(&eval(&f, &wrong, &[]), &["model.safetensors"]);
    // A missing dataset, and a dataset of another catalogue under the warm protocol.
    let other = f.root.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("items.jsonl"), "{\"item_id\": \"z\", \"title\": \"Z\"}\n").unwrap();
    // Usable (a user with 2 interactions), so that the other catalogue is what fails.
    std::fs::write(other.join("interactions.csv"), "user_id,item_id,timestamp\nu,z,1\nu,z,2\n").unwrap();
    let out = omakase(&f.root, &["eval", "--model", f.run.to_str().unwrap(), "--data", other.to_str().unwrap()]);
    assert_bad_input(&out, &["run.json", "transfer"]);
    let out = omakase(&f.root, &["eval", "--model", f.run.to_str().unwrap(), "--data", "missing-dir"]);
    assert_bad_input(&out, &["missing-dir"]);
}
