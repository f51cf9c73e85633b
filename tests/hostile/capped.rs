//! The memory-capped layer: the worst hostile inputs of issue 14 run through the built CLI under
//! `prlimit --as` (the table of cases, peaks and caps is in the suite's doc, `main.rs`). A regression
//! that reads `/dev/zero` to the end, decodes a bomb or hangs on a pipe now fails here as a process
//! killed by the cap (or by the wall-clock guard), not only as a wrong message.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use omakase::encoders::features::{Features, ModalityFeatures};
use omakase::export::write_atomic_dir;
use omakase::runtime::manifest::{EncoderFiles, FileEntry, MAX_SHARD_BYTES};
use omakase::runtime::text_template::ItemTextSpec;
use omakase::runtime::{EmbeddingDtype, Manifest, WeightsDtype};

use crate::common;

/// Wall-clock guard for commands that load no encoder: only there so a hang fails instead of
/// stalling CI (they take well under a second). Not a timing assertion.
const QUICK: Duration = Duration::from_secs(120);
/// Wall-clock guard for commands that load the encoders (a few seconds each on 2 cores).
const SLOW: Duration = Duration::from_secs(600);

/// What one capped run of the CLI did.
pub struct Capped {
    label: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    cap_mib: u64,
}

impl Capped {
    /// Asserts the command ended by itself with exit status `code`: it did not run out of memory under
    /// the cap (see below), and no signal of any other kind killed it.
    pub fn assert_exit(&self, code: i32) {
        let Capped { label, status, stdout, stderr, cap_mib } = self;
        // Past the cap an allocation fails: Rust aborts (SIGABRT, "memory allocation of N bytes
        // failed"), or a read that reserves with `try_reserve` returns "out of memory".
        let out_of_memory = status.signal() == Some(libc::SIGABRT)
            || ["memory allocation of", "out of memory"].iter().any(|m| stderr.contains(m));
        assert!(
            !out_of_memory,
            "{label}: ran out of memory under `prlimit --as` = {cap_mib} MiB (a memory regression: \
             the cap is well above what this case needs) — {status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert_eq!(status.signal(), None, "{label}: killed by a signal\nstdout:\n{stdout}\nstderr:\n{stderr}");
        assert_eq!(status.code(), Some(code), "{label}: exit status\nstdout:\n{stdout}\nstderr:\n{stderr}");
    }
}

/// `prlimit` (util-linux) or a panic saying how to get it: a missing tool must fail the suite, never
/// skip the caps silently.
fn prlimit() -> &'static str {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let checked = CHECKED.get_or_init(|| match Command::new("prlimit").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            Err(format!("`prlimit --version` failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr)))
        }
        Err(e) => Err(format!("`prlimit` not found ({e})")),
    });
    if let Err(why) = checked {
        panic!(
            "{why}: the hostile suite runs the CLI under `prlimit --as` (util-linux; \
             `apt-get install util-linux`), and does not skip its memory caps"
        );
    }
    "prlimit"
}

/// The cap to use: `cap_mib`, or `OMAKASE_HOSTILE_CAP_MIB` when set (to measure a case's peak by
/// bisection: the smallest value at which the case still passes).
fn cap(cap_mib: u64) -> u64 {
    match std::env::var("OMAKASE_HOSTILE_CAP_MIB") {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("OMAKASE_HOSTILE_CAP_MIB={v:?}: expected MiB, an integer")),
        Err(_) => cap_mib,
    }
}

/// The CLI this test run built, or `OMAKASE_HOSTILE_BIN` when set (to check that an older binary,
/// from before a fix, is caught by the cap).
fn binary() -> OsString {
    std::env::var_os("OMAKASE_HOSTILE_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_omakase").into())
}

/// Runs `omakase ARGS` under `prlimit --as=CAP` with two rayon threads and two malloc arenas (the
/// address space a process reserves grows with its threads and arenas: fixing both keeps a cap
/// meaningful on a machine with more cores), stdin closed; kills it and panics once `guard` has
/// passed. Prints the exit status and time (shown with `--nocapture`).
pub fn omakase_capped(label: &str, cap_mib: u64, guard: Duration, args: &[OsString]) -> Capped {
    let cap_mib = cap(cap_mib);
    let mut child = Command::new(prlimit())
        .arg(format!("--as={}", cap_mib << 20))
        .arg("--")
        .arg(binary())
        .args(args)
        .env("RAYON_NUM_THREADS", "2")
        .env("MALLOC_ARENA_MAX", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{label}: starting prlimit: {e}"));
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("{label}: waiting: {e}")) {
            break status;
        }
        if started.elapsed() > guard {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{label}: still running after {guard:?} (a hang?), killed\nstderr:\n{}",
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let capped = Capped {
        label: label.to_string(),
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        cap_mib,
    };
    eprintln!("{label}: {status} in {:.1} s under `prlimit --as` = {cap_mib} MiB", started.elapsed().as_secs_f64());
    capped
}

/// Two users who each viewed items `a` and `b`.
const INTERACTIONS_AB: &str = "user_id,item_id,timestamp\nu1,a,1\nu1,b,2\nu2,b,3\nu2,a,4\n";

fn args<const N: usize>(parts: [&dyn AsRef<std::ffi::OsStr>; N]) -> Vec<OsString> {
    parts.iter().map(|p| p.as_ref().to_os_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// The inputs, built here (never committed)

/// Appends bits to a deflate stream: fields least significant bit first, Huffman codes most
/// significant bit first (RFC 1951, 3.1.1).
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn field(&mut self, value: u64, count: u32) {
        self.acc |= value << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    fn code(&mut self, code: u64, len: u32) {
        let reversed = (0..len).fold(0, |r, i| (r << 1) | ((code >> i) & 1));
        self.field(reversed, len);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A zlib stream of `n` zero bytes at deflate's best ratio (~1032:1): one dynamic-Huffman block whose
/// codes are literal 0 = `10`, end of block = `11`, length 258 = `0`, distance 1 = `0` (distance 2 =
/// `1`, unused, so the tree is complete), i.e. 2 bits per 258 bytes.
fn zlib_zeros(n: u64) -> Vec<u8> {
    assert!(n >= 1);
    let mut bits = Bits { out: vec![0x78, 0x01], acc: 0, n: 0 };
    bits.field(1, 1); // BFINAL
    bits.field(2, 2); // BTYPE = dynamic Huffman
    bits.field(29, 5); // HLIT: 286 literal/length codes
    bits.field(1, 5); // HDIST: 2 distance codes
    bits.field(14, 4); // HCLEN: 18 code-length codes

    // Code-length code lengths in the format's order 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1:
    // 18 (a run of zeros) = `0`, 1 = `10`, 2 = `11`.
    for len in [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2] {
        bits.field(len, 3);
    }
    let (one, two, run_of_zeros) = ((2, 2), (3, 2), (0, 1));
    let mut emit = |(code, len): (u64, u32), extra: Option<u64>| {
        bits.code(code, len);
        if let Some(extra) = extra {
            bits.field(extra, 7);
        }
    };
    // Literal/length lengths: 0 → 2, 1..=255 → 0, 256 → 2, 257..=284 → 0, 285 → 1; distances 0, 1 → 1.
    emit(two, None);
    emit(run_of_zeros, Some(138 - 11));
    emit(run_of_zeros, Some(117 - 11));
    emit(two, None);
    emit(run_of_zeros, Some(28 - 11));
    emit(one, None);
    emit(one, None);
    emit(one, None);
    // The data: one literal zero, then copies of 258 bytes at distance 1, then literal zeros.
    let (literal_zero, end_of_block) = ((2, 2), (3, 2));
    bits.code(literal_zero.0, literal_zero.1);
    for _ in 0..(n - 1) / 258 {
        bits.code(0, 1); // length 258
        bits.code(0, 1); // distance 1
    }
    for _ in 0..(n - 1) % 258 {
        bits.code(literal_zero.0, literal_zero.1);
    }
    bits.code(end_of_block.0, end_of_block.1);
    let mut out = bits.finish();
    // Adler-32 of n zeros: a = 1, b = n.
    out.extend_from_slice(&((((n % 65521) as u32) << 16) | 1).to_be_bytes());
    out
}

/// A complete, valid PNG of `width`×`height` black 8-bit grey pixels: every row is there (unlike the
/// header-only bombs of `images.rs`), so a decoder that trusted the header would decode it all.
/// 20000×20000 is 389 KB, the issue's bomb.
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    crate::images::png_chunk(&mut png, b"IHDR", &ihdr);
    let raw_bytes = u64::from(height) * (1 + u64::from(width)); // a filter byte per row
    crate::images::png_chunk(&mut png, b"IDAT", &zlib_zeros(raw_bytes));
    crate::images::png_chunk(&mut png, b"IEND", &[]);
    png
}

/// A dataset of three items: `a`'s picture is the 20000² PNG bomb, `b`'s the truncated JPEG declaring
/// 16384², `c` has none; two users with two interactions each.
fn bomb_dataset(dir: &Path) {
    std::fs::create_dir_all(dir.join("images")).unwrap();
    std::fs::write(dir.join("images/bomb.png"), png_bomb(20000, 20000)).unwrap();
    std::fs::write(dir.join("images/bomb.jpg"), crate::images::jpeg_declaring(16384)).unwrap();
    let items = concat!(
        r#"{"item_id": "a", "title": "Alpha", "image": "images/bomb.png"}"#,
        "\n",
        r#"{"item_id": "b", "title": "Beta", "image": "images/bomb.jpg"}"#,
        "\n",
        r#"{"item_id": "c", "title": "Gamma"}"#,
        "\n",
    );
    std::fs::write(dir.join("items.jsonl"), items).unwrap();
    std::fs::write(dir.join("interactions.csv"), "user_id,item_id,timestamp\nu1,a,1\nu1,b,2\nu2,c,3\nu2,a,4\n")
        .unwrap();
}

/// The problem lines `validate` and `encode` print for the two bombs: refused from the header.
fn assert_bombs_named(output: &str) {
    for line in [
        "items.jsonl:1: image_undecodable (image): images/bomb.png: 20000×20000 pixels",
        "items.jsonl:2: image_undecodable (image): images/bomb.jpg: 16384×16384 pixels",
    ] {
        assert!(output.contains(line), "missing {line:?} in:\n{output}");
    }
    assert!(!output.contains("does not decode"), "a bomb was decoded:\n{output}");
}

/// The synthetic bundle (`bundle_fixture`, 60 items, one int8 shard), written to `dir`.
fn write_bundle(dir: &Path) {
    let bundle = crate::bundle_fixture::fixture().bundle(WeightsDtype::Q8_0, EmbeddingDtype::Int8, MAX_SHARD_BYTES);
    write_atomic_dir(dir, &bundle.files).unwrap();
}

fn manifest(dir: &Path) -> Manifest {
    Manifest::from_json(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn replace_with_link(path: &Path, target: &str) {
    std::fs::remove_file(path).unwrap();
    std::os::unix::fs::symlink(target, path).unwrap();
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

// ---------------------------------------------------------------------------------------------
// The cases

#[test]
fn the_png_bomb_is_a_valid_png() {
    // The generator at sizes a test can decode: every remainder of the 258-byte copies, one row and many.
    for (w, h) in [(1, 1), (7, 3), (64, 64), (257, 2), (300, 41)] {
        let decoded = image::load_from_memory(&png_bomb(w, h)).unwrap_or_else(|e| panic!("{w}×{h}: {e}"));
        let grey = decoded.as_luma8().unwrap_or_else(|| panic!("{w}×{h}: not 8-bit grey"));
        assert_eq!(grey.dimensions(), (w, h));
        assert!(grey.iter().all(|&p| p == 0));
    }
    let bomb = png_bomb(20000, 20000);
    assert!(bomb.len() < 400_000, "{} bytes", bomb.len());
}

#[test]
fn validate_refuses_image_bombs_under_the_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    bomb_dataset(&data);
    let out = omakase_capped("validate (PNG + JPEG bombs)", 256, QUICK, &args([&"validate", &"--data", &data]));
    out.assert_exit(0);
    assert_bombs_named(&out.stdout);
    assert!(out.stdout.contains("0 items with a usable image"), "{}", out.stdout);
}

#[test]
fn encode_refuses_image_bombs_under_the_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    bomb_dataset(&data);
    let features = tmp.path().join("features.safetensors");
    let models = common::models_dir();
    let out = omakase_capped(
        "encode (PNG + JPEG bombs)",
        512,
        SLOW,
        &args([&"encode", &"--data", &data, &"--out", &features, &"--models", &models]),
    );
    out.assert_exit(0);
    assert_bombs_named(&out.stdout);
    // The items are kept, their images marked missing.
    let features = Features::load(&features).unwrap();
    assert_eq!(features.item_ids, ["a", "b", "c"]);
    assert_eq!(features.image.present, [false, false, false]);
    assert_eq!(features.text.present, [true, true, true]);
}

#[test]
fn a_shard_or_manifest_linked_to_dev_zero_is_refused_under_the_cap() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, file) in [("shard", None), ("manifest", Some("manifest.json"))] {
        let bundle = tmp.path().join(name);
        write_bundle(&bundle);
        let file = file.map_or_else(|| manifest(&bundle).shards[0].file.path.clone(), String::from);
        replace_with_link(&bundle.join(&file), "/dev/zero");
        let out = omakase_capped(
            &format!("recommend ({file} -> /dev/zero)"),
            256,
            QUICK,
            &args([&"recommend", &"--bundle", &bundle, &"--session", &"p1"]),
        );
        out.assert_exit(2);
        let named = format!("{}: not a regular file", bundle.join(&file).display());
        assert!(out.stderr.contains(&named), "{file}: {}", out.stderr);
    }
}

#[test]
fn a_fifo_shard_is_refused_without_hanging() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    write_bundle(&bundle);
    let file = manifest(&bundle).shards[0].file.path.clone();
    let shard = bundle.join(&file);
    std::fs::remove_file(&shard).unwrap();
    let c_path = std::ffi::CString::new(s(&shard)).unwrap();
    // SAFETY: a plain syscall with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo: {}", std::io::Error::last_os_error());
    // No writer ever opens the pipe: a reader that opened it would wait forever (the guard kills it).
    let out = omakase_capped(
        &format!("recommend ({file} a named pipe)"),
        256,
        QUICK,
        &args([&"recommend", &"--bundle", &bundle, &"--session", &"p1"]),
    );
    out.assert_exit(2);
    assert!(out.stderr.contains(&format!("{}: not a regular file", shard.display())), "{}", out.stderr);
}

#[test]
fn embed_refuses_dev_zero_and_a_bomb_as_its_image_under_the_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    write_bundle(&bundle);
    // An `encoders` section saying the model reads images: embed then loads MODELS' f32 encoders and
    // reads the picture (the listed GGUF files are only read with --quantized).
    let mut manifest = manifest(&bundle);
    let entry = |path: &str| FileEntry { path: path.into(), bytes: 1, sha256: "0".repeat(64) };
    manifest.encoders = Some(EncoderFiles {
        text: entry("text_encoder.gguf"),
        image: Some(entry("image_encoder.gguf")),
        text_template: ItemTextSpec::default(),
    });
    std::fs::write(bundle.join("manifest.json"), manifest.to_json()).unwrap();
    let bomb = tmp.path().join("bomb.png");
    std::fs::write(&bomb, png_bomb(20000, 20000)).unwrap();
    let models = common::models_dir();
    for (image, expected) in [
        (PathBuf::from("/dev/zero"), "/dev/zero: not a regular file".to_string()),
        (bomb.clone(), format!("{}: 20000×20000 pixels", bomb.display())),
    ] {
        let out = omakase_capped(
            &format!("embed --image {}", image.display()),
            512,
            SLOW,
            &args([&"embed", &"--bundle", &bundle, &"--title", &"Tea", &"--image", &image, &"--models", &models]),
        );
        out.assert_exit(2);
        assert!(out.stderr.contains(&expected), "missing {expected:?} in:\n{}", out.stderr);
    }
}

#[test]
fn a_special_token_flood_encodes_under_the_cap() {
    // Issue 14, point 2: a 500 KB description of "[SEP]" × 100,000 (34.8 s before the fix: the
    // tokenizer rescanned the text for each special token). The guard only keeps a hang from
    // stalling CI; the linear-time property is the tokenizer fuzz target's.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let flood = serde_json::json!({"item_id": "a", "title": "Flood", "description": "[SEP]".repeat(100_000)});
    let plain = serde_json::json!({"item_id": "b", "title": "Plain", "description": "An ordinary product."});
    std::fs::write(data.join("items.jsonl"), format!("{flood}\n{plain}\n")).unwrap();
    std::fs::write(data.join("interactions.csv"), INTERACTIONS_AB).unwrap();
    let features = tmp.path().join("features.safetensors");
    let models = common::models_dir();
    let out = omakase_capped(
        "encode --text-only (\"[SEP]\" × 100000)",
        512,
        SLOW,
        &args([&"encode", &"--data", &data, &"--out", &features, &"--models", &models, &"--text-only"]),
    );
    out.assert_exit(0);
    let features = Features::load(&features).unwrap();
    assert_eq!(features.text.present, [true, true]);
    assert!(features.text.values.iter().all(|v| v.is_finite()));
}

#[test]
fn export_refuses_nan_features_under_the_cap() {
    // Issue 14, point 6: a NaN row became a silent all-zero int8 row. Refused where the file enters,
    // before any model is loaded (the RUN here has only its run.json).
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("data"), tmp.path().join("run"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(data.join("items.jsonl"), "{\"item_id\": \"a\"}\n{\"item_id\": \"b\"}\n").unwrap();
    std::fs::write(data.join("interactions.csv"), INTERACTIONS_AB).unwrap();
    let features = tmp.path().join("features.safetensors");
    let run_json = serde_json::json!({
        "dataset": "hostile", "data_dir": s(&data), "protocol": "warm", "model_kind": "multimodal",
        "features": s(&features), "features_sha256": "", "n_items": 2, "item_ids_sha256": "", "init": null,
        "status": "done", "best_epoch": null, "best_valid_ndcg@10": null,
    });
    std::fs::write(run.join("run.json"), run_json.to_string()).unwrap();
    let mut text = ModalityFeatures::absent(2, 2, None);
    text.values = vec![0.5, -0.5, 1.0, f32::NAN];
    text.present = vec![true, true];
    text.hashes = vec![Some([0; 32]); 2];
    let nan = Features {
        item_ids: vec!["a".into(), "b".into()],
        text,
        image: ModalityFeatures::absent(2, 3, None),
        text_template: None,
    };
    std::fs::write(&features, nan.to_bytes().unwrap()).unwrap();
    let bundle = tmp.path().join("bundle");
    let out = omakase_capped(
        "export (a NaN feature)",
        256,
        QUICK,
        &args([&"export", &"--model", &run, &"--data", &data, &"--out", &bundle, &"--features", &features]),
    );
    out.assert_exit(2);
    for part in ["features.safetensors", "item \"b\"", "text feature 1 is NaN"] {
        assert!(out.stderr.contains(part), "missing {part:?} in:\n{}", out.stderr);
    }
    assert!(!bundle.exists(), "a bundle was written");
}
