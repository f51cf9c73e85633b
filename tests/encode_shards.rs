//! `omakase encode --shard I/N` and `--merge`: a small catalogue (varied texts, the committed fixture
//! photos, one picture missing, one item without text) encoded as 4 slices by 4 processes at once
//! into one folder, merged, and compared byte for byte with one process; then the sets that must not
//! merge (a slice missing, given twice, of another N, catalogue or encoder) and the --out guard. Needs
//! `models/` only, not `../shared`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Slices of the catalogue the main test encodes.
const SLICES: usize = 4;
/// The fixture photos items point at (several items share one, as products do).
const PHOTOS: [&str; 4] = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"];

/// 11 items: texts of different lengths (so batches differ between one process and a slice), a photo
/// for most, `ghost` naming a picture that is not there, `blank` with a picture but no text.
fn write_dataset(dir: &Path, first_title: &str) {
    std::fs::create_dir_all(dir.join("images")).unwrap();
    for photo in PHOTOS {
        std::fs::copy(common::fixture(&format!("efficientnet-lite0/photos/{photo}")), dir.join("images").join(photo))
            .unwrap();
    }
    let mut lines = Vec::new();
    let mut interactions = String::from("user_id,item_id,timestamp\n");
    for i in 0..11usize {
        let id = ["ghost", "blank"].get(i.wrapping_sub(9)).map_or(format!("item-{i}"), |id| id.to_string());
        let title = if i == 0 { first_title.to_string() } else { format!("Product {i}") };
        let description = "A sturdy thing for the office. ".repeat(i % 4 * 5);
        let image = if id == "ghost" { "images/missing.jpg".to_string() } else { format!("images/{}", PHOTOS[i % 4]) };
        let (title, description) = if id == "blank" { (String::new(), String::new()) } else { (title, description) };
        let item = serde_json::json!({"item_id": id, "title": title, "description": description, "image": image});
        lines.push(item.to_string());
        interactions += &format!("u1,{id},{i}\nu2,{id},{i}\n");
    }
    std::fs::write(dir.join("items.jsonl"), lines.join("\n") + "\n").unwrap();
    std::fs::write(dir.join("interactions.csv"), interactions).unwrap();
}

fn omakase(args: &[&str], paths: &[&Path]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_omakase"));
    command.args(args).args(paths);
    command
}

/// `omakase encode --data DATA --out OUT --models MODELS --batch 3 --image-batch 2 EXTRA...`.
fn encode(data: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut command = omakase(&["encode", "--batch", "3", "--image-batch", "2", "--data"], &[data]);
    command.arg("--out").arg(out).arg("--models").arg(common::models_dir()).args(extra);
    command
}

fn run(mut command: Command) -> Output {
    command.output().unwrap()
}

fn assert_ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// The stderr of a run that must exit 2.
fn refused(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{}\n{stderr}", String::from_utf8_lossy(&output.stdout));
    stderr
}

/// The dataset, one process's features file and the 4 slices' shard files, made once for all tests.
struct Encoded {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    single: PathBuf,
    shards: Vec<PathBuf>,
}

fn encoded() -> &'static Encoded {
    static ENCODED: OnceLock<Encoded> = OnceLock::new();
    ENCODED.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let data = root.join("shop");
        write_dataset(&data, "Red mug");
        let single = root.join("single.safetensors");
        assert_ok(&run(encode(&data, &single, &[])));
        // The 4 slices as separate processes at once, into one shared folder, as a cluster's workers do.
        let shards: Vec<PathBuf> = (0..SLICES).map(|i| root.join(format!("shards/part-{i}.safetensors"))).collect();
        let workers: Vec<_> = (0..SLICES)
            .map(|i| encode(&data, &shards[i], &["--shard", &format!("{i}/{SLICES}")]).spawn().unwrap())
            .collect();
        for worker in workers {
            assert_ok(&worker.wait_with_output().unwrap());
        }
        Encoded { _tmp: tmp, root, data, single, shards }
    })
}

fn merge(shards: &[&Path], out: &Path) -> Output {
    let mut command = omakase(&["encode", "--merge"], shards);
    command.arg("--out").arg(out);
    run(command)
}

fn paths(shards: &[PathBuf]) -> Vec<&Path> {
    shards.iter().map(PathBuf::as_path).collect()
}

#[test]
fn four_slices_in_four_processes_merge_to_the_single_process_bytes() {
    let e = encoded();
    let single = std::fs::read(&e.single).unwrap();
    let out = e.root.join("merged.safetensors");
    let mut shards = paths(&e.shards);
    shards.rotate_left(1); // any order
    let stdout = assert_ok(&merge(&shards, &out));
    assert!(stdout.contains("items          11 (10 with text, 10 with an image)"), "{stdout}");
    assert!(std::fs::read(&out).unwrap() == single, "the merged file differs from one process's");
    let names: Vec<_> =
        std::fs::read_dir(e.shards[0].parent().unwrap()).unwrap().map(|f| f.unwrap().file_name()).collect();
    assert_eq!(names.len(), SLICES, "only the shard files, no temporary left: {names:?}");

    // Each slice holds the items at positions i mod 4 = I, and says so.
    let features = omakase::encoders::features::Features::load(&e.shards[2]).unwrap();
    assert_eq!(features.item_ids, ["item-2", "item-6", "blank"]);
}

#[test]
fn a_slice_run_again_is_a_cache_hit_with_the_same_bytes() {
    let e = encoded();
    let again = e.root.join("again.safetensors");
    std::fs::copy(&e.shards[1], &again).unwrap();
    let stdout = assert_ok(&run(encode(&e.data, &again, &["--shard", "1/4"])));
    assert!(stdout.contains("shard          1/4: items at positions i with i mod 4 = 1, of 11"), "{stdout}");
    assert!(stdout.contains("3 items with text: 0 encoded, 3 reused"), "{stdout}");
    assert!(stdout.contains("2 items with a usable image: 0 encoded, 2 reused"), "{stdout}");
    assert!(std::fs::read(&again).unwrap() == std::fs::read(&e.shards[1]).unwrap());
}

#[test]
fn a_missing_slice_is_named_and_exits_2() {
    let e = encoded();
    let out = e.root.join("missing.safetensors");
    let stderr = refused(&merge(&[&e.shards[0], &e.shards[1], &e.shards[3]], &out));
    assert!(stderr.contains("slice 2/4 is missing: 3 of 4 slices given"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn a_duplicated_slice_names_both_files_and_exits_2() {
    let e = encoded();
    let copy = e.root.join("copy-of-part-3.safetensors");
    std::fs::copy(&e.shards[3], &copy).unwrap();
    let mut shards = paths(&e.shards);
    shards.push(&copy);
    let stderr = refused(&merge(&shards, &e.root.join("duplicated.safetensors")));
    assert!(stderr.contains("slice 3/4 given twice") && stderr.contains("copy-of-part-3.safetensors"), "{stderr}");
}

#[test]
fn foreign_slices_are_named_and_exit_2() {
    let e = encoded();
    let edited = e.root.join("edited-shop");
    write_dataset(&edited, "Blue mug");
    let other_n = e.root.join("other-n.safetensors");
    let other_catalogue = e.root.join("other-catalogue.safetensors");
    let text_only = e.root.join("text-only.safetensors");
    let runs = [
        encode(&e.data, &other_n, &["--shard", "1/3"]),
        encode(&edited, &other_catalogue, &["--shard", "1/4"]),
        encode(&e.data, &text_only, &["--shard", "1/4", "--text-only"]),
    ];
    for output in runs.map(|mut command| command.output().unwrap()) {
        assert_ok(&output);
    }
    for (foreign, what) in [
        (&other_n, "it is slice 1/3 of 3 slices, not of 4"),
        (&other_catalogue, "it was taken from another catalogue"),
        (&text_only, "it was encoded by another image encoder (none (--text-only), not efficientnet-lite0)"),
    ] {
        let shards: [&Path; 4] = [&e.shards[0], foreign, &e.shards[2], &e.shards[3]];
        let stderr = refused(&merge(&shards, &e.root.join("foreign.safetensors")));
        assert!(stderr.contains(&format!("error: {}: {what}", foreign.display())), "{stderr}");
        assert!(stderr.contains("part-0.safetensors"), "{stderr}");
    }
}

#[test]
fn merge_refuses_a_whole_features_file_and_an_out_that_is_not_features() {
    let e = encoded();
    let stderr = refused(&merge(&[&e.single], &e.root.join("whole.safetensors")));
    assert!(stderr.contains("single.safetensors: not a shard file"), "{stderr}");

    let notes = e.root.join("notes.txt");
    std::fs::write(&notes, "someone's notes").unwrap();
    let stderr = refused(&merge(&paths(&e.shards), &notes));
    assert!(stderr.contains("notes.txt exists and is not an Omakase features file"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "someone's notes");

    let stderr = refused(&merge(&paths(&e.shards), &e.shards[0]));
    assert!(stderr.contains("is one of the slices being merged"), "{stderr}");
    let stderr = refused(&run(omakase(&["encode", "--shard", "4/4", "--data"], &[&e.data])));
    assert!(stderr.contains("I must be less than N"), "{stderr}");
}
