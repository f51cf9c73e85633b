//! Helpers shared by the integration tests: where the shared datasets, goldens and weights live, and what
//! a test does when the shared folder is not there.
//!
//! `../shared` (or `$OMAKASE_SHARED`) holds research-licensed data that may not be redistributed, so a
//! fresh checkout has none. Every test reads it only through this module:
//! - [`needs_shared!`] gives the folder, or, when it is absent, records the test as skipped and returns
//!   from the test;
//! - [`note_reduced`] records a test that ran on the committed excerpt (`tests/fixtures/`) instead of the
//!   full golden set, or on the fetchable ML-100K without the parts it cannot check there;
//! - [`ml100k`] is `datasets/ml100k-mm` when present, else ML-100K from the recbole wheel, fetched once
//!   into `data/ml-100k` by `scripts/fetch-ml100k.sh` (titles, years, genres; no posters, no plots).
//!
//! Environment:
//! - `OMAKASE_REQUIRE_SHARED=1`: a missing shared folder fails every test that needs it, instead of
//!   skipping or falling back (CI sets it, so CI never passes without the real data);
//! - `OMAKASE_SKIP_LOG=FILE`: each skipped or reduced test appends one line to FILE,
//!   `<test binary>::<test>\t<skipped|reduced>\t<what it missed>`, so a runner can say how many tests
//!   needed `../shared` (lines are short single writes, so parallel test binaries can share the file).
#![allow(dead_code, unused_macros, unused_imports)]

pub mod synthetic;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where the shared folder is looked for: `$OMAKASE_SHARED`, else `../shared` beside the checkout.
pub fn shared_location() -> PathBuf {
    std::env::var_os("OMAKASE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

/// The shared folder, when it is there (it holds `datasets/`).
pub fn shared() -> Option<PathBuf> {
    let dir = shared_location();
    dir.join("datasets").is_dir().then_some(dir)
}

/// Whether a missing shared folder must fail the tests (`OMAKASE_REQUIRE_SHARED=1`, set by CI).
pub fn shared_required() -> bool {
    std::env::var("OMAKASE_REQUIRE_SHARED").as_deref() == Ok("1")
}

/// The shared folder, or a panic naming where it was looked for. Only for the benchmarks
/// (`benches/encoders.rs` times the full golden sets and has nothing to fall back to); tests use
/// [`needs_shared!`] instead.
pub fn shared_dir() -> PathBuf {
    shared().unwrap_or_else(|| panic!("{}", missing_message("this benchmark")))
}

fn missing_message(test: &str) -> String {
    format!(
        "{test}: shared data not found at {} (set OMAKASE_SHARED to the folder holding datasets/ and golden/; \
         OMAKASE_REQUIRE_SHARED=1 makes this an error rather than a skip)",
        shared_location().display()
    )
}

/// `binary::function` of the test it is used in, for the skip log (no need to repeat the name by hand).
macro_rules! test_name {
    () => {{
        fn here() {}
        let name = std::any::type_name_of_val(&here);
        name.strip_suffix("::here").unwrap_or(name)
    }};
}
pub(crate) use test_name;

/// The shared folder, or: panic under `OMAKASE_REQUIRE_SHARED=1`, else record the test as skipped and
/// `return` from it. `needs_shared!("datasets/amazon-office")` says what the test needed.
macro_rules! needs_shared {
    () => {
        $crate::common::needs_shared!("datasets/ and golden/")
    };
    ($what:expr) => {
        match $crate::common::shared_or_skip($crate::common::test_name!(), $what) {
            Some(dir) => dir,
            None => return,
        }
    };
}
pub(crate) use needs_shared;

/// [`needs_shared!`] without the early return: `None` once the skip is recorded.
pub fn shared_or_skip(test: &str, what: &str) -> Option<PathBuf> {
    let dir = shared();
    if dir.is_none() {
        record(test, "skipped", what);
    }
    dir
}

/// A test that still runs without the shared folder, on less (a committed excerpt, or the fetchable
/// ML-100K without posters): records what it could not check, or panics under `OMAKASE_REQUIRE_SHARED=1`.
/// Does nothing when the shared folder is there.
pub fn note_reduced(test: &str, missing: &str) {
    if shared().is_none() {
        record(test, "reduced", missing);
    }
}

fn record(test: &str, how: &str, what: &str) {
    if shared_required() {
        panic!("{} (needed: {what})", missing_message(test));
    }
    let line = format!("{test}\t{how}\t{what}");
    let shared = shared_location();
    match how {
        "skipped" => eprintln!("SKIP {test}: needs {what} of the shared folder, not found at {}", shared.display()),
        _ => eprintln!("SKIP (part) {test}: ran without {what}: the shared folder is not at {}", shared.display()),
    }
    if let Some(log) = std::env::var_os("OMAKASE_SKIP_LOG").map(PathBuf::from) {
        if let Some(parent) = log.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(parent);
        }
        // One short write in append mode: whole lines even with several test binaries at once.
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("OMAKASE_SKIP_LOG {}: {e}", log.display()));
        file.write_all(format!("{line}\n").as_bytes())
            .unwrap_or_else(|e| panic!("OMAKASE_SKIP_LOG {}: {e}", log.display()));
    }
}

/// The folder of pretrained weights made by `scripts/fetch-models.sh` (`models/`, or `$OMAKASE_MODELS`).
pub fn models_dir() -> PathBuf {
    let dir = std::env::var_os("OMAKASE_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models"));
    assert!(dir.is_dir(), "weights not found at {}: run scripts/fetch-models.sh", dir.display());
    dir
}

/// A committed fixture under `tests/fixtures/`.
pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path)
}

// ---------------------------------------------------------------------------------------------
// MovieLens-100K: the shared multimodal one, else the fetchable one

/// A MovieLens-100K dataset directory. Both have the same 943 users, 1682 items and 100,000 ratings
/// (the fetched one keeps the source's raw titles and years where ml100k-mm repairs two).
pub struct Ml100k {
    pub dir: PathBuf,
    /// `datasets/ml100k-mm` of the shared folder: posters (1,645) and plot descriptions. Otherwise
    /// `data/ml-100k`, the recbole wheel's ML-100K: titles, years and genres only.
    pub multimodal: bool,
}

impl Ml100k {
    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        if self.multimodal {
            "ml100k-mm"
        } else {
            "ml-100k (recbole)"
        }
    }
}

/// `datasets/ml100k-mm` when the shared folder is there, else the fetched `data/ml-100k` (fetched on
/// first use). Under `OMAKASE_REQUIRE_SHARED=1` a missing shared folder is an error instead.
pub fn ml100k() -> Ml100k {
    if let Some(shared) = shared() {
        return Ml100k { dir: shared.join("datasets/ml100k-mm"), multimodal: true };
    }
    if shared_required() {
        panic!("{}", missing_message("ml100k"));
    }
    Ml100k { dir: fetched_ml100k().to_owned(), multimodal: false }
}

/// Where `scripts/fetch-ml100k.sh` puts the dataset (`$OMAKASE_ML100K`, else `data/ml-100k`).
fn fetched_ml100k_location() -> PathBuf {
    std::env::var_os("OMAKASE_ML100K")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/ml-100k"))
}

/// Runs `scripts/fetch-ml100k.sh` once per test binary, under a file lock so that test binaries running
/// at the same time neither download twice nor race on the output (the script is idempotent: a complete
/// dataset is only re-hashed). The omakase binary this test run built does the conversion (no nested
/// `cargo run`, which would wait on the build lock cargo test holds).
fn fetched_ml100k() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = fetched_ml100k_location();
        let _lock = FileLock::new(&out.with_file_name(".ml-100k.lock"));
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-ml100k.sh");
        let run = Command::new("bash")
            .arg(&script)
            .env("OMAKASE_BIN", env!("CARGO_BIN_EXE_omakase"))
            .env("OMAKASE_ML100K", &out)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            run.status.success(),
            "no ../shared, and {} failed ({}) fetching the fallback ML-100K:\n{}",
            script.display(),
            run.status,
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(
            out.join("items.jsonl").is_file(),
            "{} printed success but {} has no items.jsonl",
            script.display(),
            out.display()
        );
        out
    })
}

/// The RecBole atomic files of ML-100K (`ml-100k.inter`, `ml-100k.item`): `datasets/ml100k-mm/recbole/`
/// of the shared folder, else the two files taken out of the recbole wheel that `fetch-ml100k.sh`
/// downloaded (the very files `data/ml-100k` was converted from), extracted once into the target dir.
pub fn ml100k_recbole_dir() -> PathBuf {
    let dataset = ml100k();
    if dataset.multimodal {
        return dataset.dir.join("recbole");
    }
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ml-100k-recbole");
        let _lock = FileLock::new(&out.with_file_name(".ml-100k-recbole.lock"));
        if out.join("ml-100k.inter").is_file() && out.join("ml-100k.item").is_file() {
            return out;
        }
        let wheel = recbole_wheel();
        let scratch = out.with_file_name(".ml-100k-recbole.scratch");
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).unwrap();
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let extract = "import sys, zipfile, pathlib\n\
                       with zipfile.ZipFile(sys.argv[1]) as z:\n\
                       \x20   for n in ('ml-100k.inter', 'ml-100k.item'):\n\
                       \x20       (pathlib.Path(sys.argv[2]) / n).write_bytes(z.read('recbole/dataset_example/ml-100k/' + n))\n";
        let run = Command::new(&python).args(["-c", extract]).arg(&wheel).arg(&scratch).output().unwrap();
        assert!(run.status.success(), "extracting {}: {}", wheel.display(), String::from_utf8_lossy(&run.stderr));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::rename(&scratch, &out).unwrap();
        out
    })
    .clone()
}

/// The recbole 1.2.1 wheel `fetch-ml100k.sh` checked: in its cache (`$OMAKASE_DATA_CACHE/wheels`, else
/// `data-cache/wheels`) or in `$OMAKASE_WHEELS`, recognised by the script's sha256.
fn recbole_wheel() -> PathBuf {
    use sha2::{Digest, Sha256};
    const SHA256: &str = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407";
    let cache = std::env::var_os("OMAKASE_DATA_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data-cache"))
        .join("wheels");
    let folders: Vec<PathBuf> =
        std::iter::once(cache).chain(std::env::var_os("OMAKASE_WHEELS").map(PathBuf::from)).collect();
    for folder in &folders {
        let Ok(entries) = std::fs::read_dir(folder) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("recbole-1.2.1-") && name.ends_with(".whl") {
                let bytes = std::fs::read(&path).unwrap();
                let sha: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
                if sha == SHA256 {
                    return path;
                }
            }
        }
    }
    panic!(
        "the recbole 1.2.1 wheel is not in {folders:?}: it is where scripts/fetch-ml100k.sh keeps it; \
         delete {}/.fetched so the script fetches it again",
        fetched_ml100k_location().display()
    )
}

/// An exclusive `flock` on a file, released when dropped (or when the process dies).
struct FileLock(std::fs::File);

impl FileLock {
    fn new(path: &Path) -> FileLock {
        use std::os::fd::AsRawFd;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("lock file {}: {e}", path.display()));
        // SAFETY: a plain syscall on a descriptor this struct owns for as long as the lock is held.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}: {}", path.display(), std::io::Error::last_os_error());
        FileLock(file)
    }
}

// ---------------------------------------------------------------------------------------------
// The encoders' golden sets: the full ones in ../shared/golden, else the committed rows

/// MiniLM goldens (`golden/minilm/`): the texts, their unpadded ids and sentence-transformers embeddings.
pub struct TextGoldens {
    /// Row of each text in the full 404-row set.
    pub index: Vec<usize>,
    pub texts: Vec<String>,
    pub sources: Vec<String>,
    pub ids: Vec<Vec<u32>>,
    pub embeddings: Vec<Vec<f32>>,
}

impl TextGoldens {
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether these are all 404 rows (the shared set) rather than the 42 committed edge cases.
    pub fn is_full(&self) -> bool {
        self.len() == 404
    }

    /// Position of the full set's row `index` here.
    pub fn position(&self, index: usize) -> usize {
        self.index.iter().position(|&i| i == index).unwrap_or_else(|| panic!("golden row {index} is not loaded"))
    }
}

/// All 404 rows from `shared/golden/minilm` when the shared folder is there, else the 42 committed edge
/// cases (rows 362–403, `tests/fixtures/minilm_edge_cases.json`), `test` noting that it ran on fewer.
pub fn text_goldens(test: &str) -> &'static TextGoldens {
    note_reduced(test, "rows 0-361 of golden/minilm (MovieLens and Amazon texts); ran the 42 committed edge cases");
    text_golden_set()
}

/// The set [`text_goldens`] gives, without the note (for helpers called after it).
pub fn text_golden_set() -> &'static TextGoldens {
    static GOLDENS: OnceLock<TextGoldens> = OnceLock::new();
    GOLDENS.get_or_init(|| match shared() {
        Some(shared) => shared_text_goldens(&shared),
        None => committed_text_goldens(),
    })
}

/// The 404 rows of `shared/golden/minilm`.
pub fn shared_text_goldens(shared: &Path) -> TextGoldens {
    let dir = shared.join("golden/minilm");
    let tensors = candle_core::safetensors::load(dir.join("goldens.safetensors"), &candle_core::Device::Cpu)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join("goldens.safetensors").display()));
    let id_rows = tensors["token_ids"].to_vec2::<i64>().unwrap();
    let embeddings = tensors["embeddings"].to_vec2::<f32>().unwrap();
    let lines = std::fs::read_to_string(dir.join("texts.jsonl")).unwrap();
    let (mut texts, mut sources) = (Vec::new(), Vec::new());
    for (i, line) in lines.lines().enumerate() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(row["index"], i, "texts.jsonl line {} is out of order", i + 1);
        texts.push(row["text"].as_str().unwrap().to_string());
        sources.push(row["source"].as_str().unwrap().to_string());
    }
    let ids = id_rows.iter().map(|row| row.iter().filter(|&&id| id >= 0).map(|&id| id as u32).collect()).collect();
    assert_eq!(texts.len(), 404);
    assert_eq!(embeddings.len(), 404);
    TextGoldens { index: (0..404).collect(), texts, sources, ids, embeddings }
}

/// The 42 committed edge cases.
pub fn committed_text_goldens() -> TextGoldens {
    let path = fixture("minilm_edge_cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows = fixture["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 42, "{}", path.display());
    let mut goldens = TextGoldens {
        index: Vec::new(),
        texts: Vec::new(),
        sources: Vec::new(),
        ids: Vec::new(),
        embeddings: Vec::new(),
    };
    for row in rows {
        goldens.index.push(row["index"].as_u64().unwrap() as usize);
        goldens.texts.push(row["text"].as_str().unwrap().to_string());
        goldens.sources.push(row["source"].as_str().unwrap().to_string());
        goldens.ids.push(serde_json::from_value(row["ids"].clone()).unwrap());
        goldens.embeddings.push(serde_json::from_value(row["embedding"].clone()).unwrap());
    }
    goldens
}

/// One line of the EfficientNet-Lite0 goldens' `index.jsonl`.
pub struct ImageRow {
    /// Row in the full 125-row set.
    pub index: usize,
    /// `photo` or `poster`.
    pub kind: String,
    /// The original picture.
    pub source: PathBuf,
    /// The reference's 224×224 network input, saved losslessly.
    pub crop_png: PathBuf,
    /// Class the reference ranks first.
    pub top1: usize,
    /// The `index.jsonl` line as written.
    pub line: String,
}

/// EfficientNet-Lite0 goldens (`golden/efficientnet-lite0/`): rows, reference `features` and `logits`.
pub struct ImageGoldens {
    pub rows: Vec<ImageRow>,
    pub features: Vec<Vec<f32>>,
    pub logits: Vec<Vec<f32>>,
}

impl ImageGoldens {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether these are all 125 rows (the shared set) rather than the 4 committed photos.
    pub fn is_full(&self) -> bool {
        self.len() == 125
    }
}

/// All 125 rows from `shared/golden/efficientnet-lite0` when the shared folder is there, else the 4
/// committed photos (rows 0–3, `tests/fixtures/efficientnet-lite0/`), `test` noting that it ran on fewer.
pub fn image_goldens(test: &str) -> &'static ImageGoldens {
    note_reduced(test, "rows 4-124 of golden/efficientnet-lite0 (motorcycle, 120 posters); ran the 4 committed photos");
    image_golden_set()
}

/// The set [`image_goldens`] gives, without the note (for helpers called after it).
pub fn image_golden_set() -> &'static ImageGoldens {
    static GOLDENS: OnceLock<ImageGoldens> = OnceLock::new();
    GOLDENS.get_or_init(|| match shared() {
        Some(shared) => load_image_goldens(&shared.join("golden/efficientnet-lite0"), Some(&shared)),
        None => committed_image_goldens(),
    })
}

/// The 4 committed photos.
pub fn committed_image_goldens() -> ImageGoldens {
    load_image_goldens(&fixture("efficientnet-lite0"), None)
}

/// A golden folder laid out as the shared one (`index.jsonl`, `goldens.safetensors`, `crops/`,
/// `photos/`). Posters' sources are given as `shared/datasets/...`: resolved against `shared`.
pub fn load_image_goldens(dir: &Path, shared: Option<&Path>) -> ImageGoldens {
    let text = std::fs::read_to_string(dir.join("index.jsonl"))
        .unwrap_or_else(|e| panic!("{}/index.jsonl: {e}", dir.display()));
    let rows: Vec<ImageRow> = text
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("index.jsonl line");
            let source = v["source"].as_str().unwrap();
            let source = match source.strip_prefix("shared/") {
                Some(rest) => {
                    shared.unwrap_or_else(|| panic!("{}: {source} outside the folder", dir.display())).join(rest)
                }
                None => dir.join(source),
            };
            ImageRow {
                index: v["index"].as_u64().unwrap() as usize,
                kind: v["kind"].as_str().unwrap().to_string(),
                source,
                crop_png: dir.join(v["crop_png"].as_str().unwrap()),
                top1: v["top5"][0][0].as_u64().unwrap() as usize,
                line: line.to_string(),
            }
        })
        .collect();
    let path = dir.join("goldens.safetensors");
    let tensors = candle_core::safetensors::load(&path, &candle_core::Device::Cpu)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let features = tensors["features"].to_vec2::<f32>().unwrap();
    let logits = tensors["logits"].to_vec2::<f32>().unwrap();
    assert_eq!((features.len(), features[0].len()), (rows.len(), 1280), "{}", path.display());
    assert_eq!((logits.len(), logits[0].len()), (rows.len(), 1000), "{}", path.display());
    ImageGoldens { rows, features, logits }
}
