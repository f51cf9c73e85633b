//! Malformed dataset directories, built in temp dirs: each case asserts the exact problem kind, file,
//! line and field reported (and that nothing else is), and that the dataset stays usable or not.
//! Images are made here with the `image` crate; no shared data is used.

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use omakase::data::lines::MAX_LINE_BYTES;
use omakase::data::validate::{validate_dir, Validation};
use omakase::data::ProblemKind::{self, *};
use tempfile::TempDir;

const ITEMS: &str = "items.jsonl";
const INTERACTIONS: &str = "interactions.csv";

const VALID_ITEMS: &str = r#"{"item_id": "a", "title": "Alpha", "image": "images/a.png", "year": 1999}
{"item_id": "b", "title": "Beta", "description": "second", "image": "images/b.jpg"}
{"item_id": "c", "title": "Gamma", "image": null}
"#;

const VALID_INTERACTIONS: &str = "user_id,item_id,rating,timestamp\nu1,a,5,100\nu1,b,4,200\nu2,c,3,150\nu2,a,,160\n";

/// A valid three-item dataset in a temp dir; each test breaks one thing.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn valid() -> Self {
        let fixture = Fixture { dir: tempfile::tempdir().expect("temp dir") };
        fixture.write(ITEMS, VALID_ITEMS.as_bytes());
        fixture.write(INTERACTIONS, VALID_INTERACTIONS.as_bytes());
        fixture.write("images/a.png", &encoded(image::ImageFormat::Png));
        fixture.write("images/b.jpg", &encoded(image::ImageFormat::Jpeg));
        fixture
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        let path = self.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    fn append(&self, name: &str, bytes: &[u8]) {
        let mut all = std::fs::read(self.path().join(name)).unwrap();
        all.extend_from_slice(bytes);
        self.write(name, &all);
    }

    fn validate(&self) -> Validation {
        validate_dir(self.path(), &|_, _| {})
    }
}

/// A small 48×32 gradient encoded in `format`.
fn encoded(format: image::ImageFormat) -> Vec<u8> {
    encoded_sized(format, 48, 32)
}

/// A `width`×`height` textured picture encoded in `format` (texture keeps the compressed data long).
fn encoded_sized(format: image::ImageFormat, width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        let noise = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)) % 251;
        image::Rgb([(x * 5 % 256) as u8, (y * 7 % 256) as u8, noise as u8])
    });
    let mut bytes = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut bytes, format).expect("encode test image");
    bytes.into_inner()
}

type Found = (ProblemKind, String, Option<usize>, Option<String>);

/// Every problem as (kind, file, line, field).
fn problems(validation: &Validation) -> Vec<Found> {
    validation.problems().iter().map(|p| (p.kind, p.file.clone(), p.line, p.field.clone())).collect()
}

fn at(kind: ProblemKind, file: &str, line: usize, field: Option<&str>) -> Found {
    (kind, file.to_string(), Some(line), field.map(String::from))
}

fn whole_file(kind: ProblemKind, file: &str) -> Found {
    (kind, file.to_string(), None, None)
}

/// The message of the `i`-th problem.
fn message(validation: &Validation, i: usize) -> &str {
    &validation.problems()[i].message
}

/// Asserts the exact problems, and whether the dataset is usable.
fn assert_problems(validation: &Validation, expected: Vec<Found>, usable: bool) {
    assert_eq!(problems(validation), expected, "problems: {:#?}", validation.problems());
    assert_eq!(validation.summary.usable, usable);
}

#[test]
fn the_valid_fixture_has_no_problem() {
    let v = Fixture::valid().validate();
    assert_problems(&v, vec![], true);
    let s = &v.summary;
    assert_eq!((s.users, s.items, s.interactions, s.items_with_image), (2, 3, 4, Some(2)));
    assert_eq!(v.loaded.dataset.items[0].metadata.get("year"), Some(&serde_json::json!(1999)));
}

// ---------------------------------------------------------------- images

#[test]
fn truncated_jpeg_is_undecodable_and_the_item_kept() {
    let f = Fixture::valid();
    // Cut inside the compressed scan: headers intact, the last 40% of the pixels missing (a lenient
    // decoder fills them with grey and reports nothing).
    let jpeg = encoded_sized(image::ImageFormat::Jpeg, 256, 256);
    f.write("images/b.jpg", &jpeg[..jpeg.len() * 6 / 10]);
    let v = f.validate();
    assert_problems(&v, vec![at(ImageUndecodable, ITEMS, 2, Some("image"))], true);
    assert!(message(&v, 0).starts_with("images/b.jpg: "), "{}", message(&v, 0));
    // The item stays, with its path; `usable` says the image cannot be used.
    assert_eq!(v.loaded.dataset.items[1].image.as_deref(), Some("images/b.jpg"));
    assert_eq!(v.images.usable, vec![true, false, false]);
    assert_eq!(v.summary.items_with_image, Some(1));
    assert_eq!(v.summary.items, 3);
}

/// The boundary of "truncated": every pixel's data is there and only the end-of-image marker is
/// missing, so the image is complete and usable (as libjpeg, which only warns).
#[test]
fn jpeg_missing_only_its_end_marker_is_still_usable() {
    let f = Fixture::valid();
    let jpeg = encoded_sized(image::ImageFormat::Jpeg, 256, 256);
    assert_eq!(&jpeg[jpeg.len() - 2..], b"\xFF\xD9");
    f.write("images/b.jpg", &jpeg[..jpeg.len() - 2]);
    assert_problems(&f.validate(), vec![], true);
    // The last 5% of the scan missing: not usable.
    f.write("images/b.jpg", &jpeg[..jpeg.len() * 95 / 100]);
    assert_problems(&f.validate(), vec![at(ImageUndecodable, ITEMS, 2, Some("image"))], true);
}

#[test]
fn truncated_png_is_undecodable() {
    let f = Fixture::valid();
    let png = encoded_sized(image::ImageFormat::Png, 256, 256);
    f.write("images/a.png", &png[..png.len() * 6 / 10]);
    assert_problems(&f.validate(), vec![at(ImageUndecodable, ITEMS, 1, Some("image"))], true);
}

#[test]
fn webp_decodes() {
    let f = Fixture::valid();
    f.write("images/a.png", &encoded(image::ImageFormat::WebP));
    let v = f.validate();
    assert_problems(&v, vec![], true);
    assert_eq!(v.summary.items_with_image, Some(2));
}

#[test]
fn text_file_named_jpg_is_undecodable() {
    let f = Fixture::valid();
    f.write("images/b.jpg", b"this is not a picture\n");
    let v = f.validate();
    assert_problems(&v, vec![at(ImageUndecodable, ITEMS, 2, Some("image"))], true);
    let message = message(&v, 0);
    assert!(message.starts_with("images/b.jpg: not an image"), "{message}");
}

#[test]
fn png_content_under_a_jpg_name_is_fine() {
    let f = Fixture::valid();
    f.write("images/b.jpg", &encoded(image::ImageFormat::Png));
    assert_problems(&f.validate(), vec![], true);
}

#[test]
fn missing_image_file_is_reported_and_the_item_kept() {
    let f = Fixture::valid();
    std::fs::remove_file(f.path().join("images/a.png")).unwrap();
    let v = f.validate();
    assert_problems(&v, vec![at(ImageMissing, ITEMS, 1, Some("image"))], true);
    assert_eq!(v.images.usable, vec![false, true, false]);
}

#[test]
fn image_path_leaving_the_dataset_is_not_opened() {
    let f = Fixture::valid();
    // A real image just outside the dataset directory: it must still be refused.
    let dataset = f.path().join("ds");
    std::fs::create_dir_all(&dataset).unwrap();
    for name in [ITEMS, INTERACTIONS] {
        std::fs::rename(f.path().join(name), dataset.join(name)).unwrap();
    }
    std::fs::rename(f.path().join("images"), dataset.join("images")).unwrap();
    f.write("outside.png", &encoded(image::ImageFormat::Png));
    let items = std::fs::read_to_string(dataset.join(ITEMS)).unwrap().replace("images/a.png", "../outside.png");
    std::fs::write(dataset.join(ITEMS), items).unwrap();
    let v = validate_dir(&dataset, &|_, _| {});
    assert_problems(&v, vec![at(ImagePathOutsideDataset, ITEMS, 1, Some("image"))], true);
}

// ---------------------------------------------------------------- encoding and lines

#[test]
fn bom_is_a_warning_and_the_first_item_still_reads() {
    let f = Fixture::valid();
    f.write(ITEMS, &[b"\xEF\xBB\xBF".as_slice(), VALID_ITEMS.as_bytes()].concat());
    let v = f.validate();
    assert_problems(&v, vec![at(Bom, ITEMS, 1, None)], true);
    assert_eq!(v.loaded.dataset.items[0].id, "a");
}

#[test]
fn crlf_line_ends_are_accepted_and_reported_once() {
    let f = Fixture::valid();
    f.write(INTERACTIONS, VALID_INTERACTIONS.replace('\n', "\r\n").as_bytes());
    let v = f.validate();
    assert_problems(&v, vec![at(CrlfLineEndings, INTERACTIONS, 1, None)], true);
    assert_eq!(v.summary.interactions, 4);
}

#[test]
fn non_utf8_line_is_skipped() {
    let f = Fixture::valid();
    f.append(ITEMS, b"{\"item_id\": \"d\", \"title\": \"caf\xE9\"}\n");
    let v = f.validate();
    assert_problems(&v, vec![at(NotUtf8, ITEMS, 4, None)], true);
    assert_eq!(v.summary.items, 3);
}

#[test]
fn two_mib_line_is_skipped_and_reading_goes_on() {
    let f = Fixture::valid();
    let long_title = "x".repeat(2 * 1024 * 1024);
    assert!(long_title.len() > MAX_LINE_BYTES);
    let long_line = format!("{{\"item_id\": \"long\", \"title\": \"{long_title}\"}}\n");
    f.append(ITEMS, format!("{long_line}{{\"item_id\": \"e\", \"title\": \"After\"}}\n").as_bytes());
    let v = f.validate();
    assert_problems(&v, vec![at(LineTooLong, ITEMS, 4, None)], true);
    assert_eq!(v.loaded.dataset.items.last().unwrap().id, "e");
    assert_eq!(v.loaded.item_lines.last(), Some(&5));
}

// ---------------------------------------------------------------- items.jsonl rows

#[test]
fn bad_json_is_skipped() {
    let f = Fixture::valid();
    f.append(ITEMS, b"{\"item_id\": \"d\", \"title\": \n");
    assert_problems(&f.validate(), vec![at(BadJson, ITEMS, 4, None)], true);
}

#[test]
fn json_that_is_not_an_object_is_skipped() {
    let f = Fixture::valid();
    f.append(ITEMS, b"[\"d\", \"Delta\"]\n");
    assert_problems(&f.validate(), vec![at(NotAnObject, ITEMS, 4, None)], true);
}

#[test]
fn duplicate_item_id_keeps_the_first() {
    let f = Fixture::valid();
    f.append(ITEMS, b"{\"item_id\": \"b\", \"title\": \"Beta again\"}\n");
    let v = f.validate();
    assert_problems(&v, vec![at(DuplicateItemId, ITEMS, 4, Some("item_id"))], true);
    assert_eq!(v.loaded.dataset.items[1].title, "Beta");
    assert!(message(&v, 0).contains("line 2"));
}

#[test]
fn missing_item_id_is_skipped() {
    let f = Fixture::valid();
    f.append(ITEMS, b"{\"title\": \"No id\"}\n");
    assert_problems(&f.validate(), vec![at(MissingField, ITEMS, 4, Some("item_id"))], true);
}

#[test]
fn wrong_field_type_is_ignored() {
    let f = Fixture::valid();
    f.append(ITEMS, b"{\"item_id\": \"d\", \"title\": \"Delta\", \"description\": 42}\n");
    let v = f.validate();
    assert_problems(&v, vec![at(WrongFieldType, ITEMS, 4, Some("description"))], true);
    assert_eq!(v.loaded.dataset.items[3].description, "");
}

#[test]
fn empty_text_keeps_the_item() {
    let f = Fixture::valid();
    f.append(ITEMS, b"{\"item_id\": \"d\", \"title\": \"  \", \"description\": \"\"}\n");
    let v = f.validate();
    assert_problems(&v, vec![at(EmptyText, ITEMS, 4, None)], true);
    assert_eq!(v.summary.items, 4);
    assert_eq!(v.summary.items_with_text, 3);
}

// ---------------------------------------------------------------- interactions.csv rows

#[test]
fn unknown_item_id_is_skipped() {
    let f = Fixture::valid();
    f.append(INTERACTIONS, b"u3,zzz,1,10\n");
    let v = f.validate();
    assert_problems(&v, vec![at(UnknownItemId, INTERACTIONS, 6, Some("item_id"))], true);
    assert_eq!(v.summary.interactions, 4);
}

#[test]
fn non_numeric_timestamp_is_skipped() {
    let f = Fixture::valid();
    f.append(INTERACTIONS, b"u1,c,2,yesterday\n");
    let v = f.validate();
    assert_problems(&v, vec![at(BadTimestamp, INTERACTIONS, 6, Some("timestamp"))], true);
    assert_eq!(v.summary.interactions, 4);
}

#[test]
fn non_numeric_rating_keeps_the_row() {
    let f = Fixture::valid();
    f.append(INTERACTIONS, b"u1,c,great,300\n");
    let v = f.validate();
    assert_problems(&v, vec![at(BadRating, INTERACTIONS, 6, Some("rating"))], true);
    assert_eq!(v.summary.interactions, 5);
}

#[test]
fn wrong_column_count_is_skipped() {
    let f = Fixture::valid();
    f.append(INTERACTIONS, b"u1,c,300\nu1,c,1,300,extra\n");
    assert_problems(
        &f.validate(),
        vec![at(WrongColumnCount, INTERACTIONS, 6, None), at(WrongColumnCount, INTERACTIONS, 7, None)],
        true,
    );
}

#[test]
fn unclosed_quote_swallows_the_rest_and_is_reported() {
    let f = Fixture::valid();
    // Two rows before the quote, so that a user keeps 2 interactions (a dataset whose users all have
    // one is unusable: nothing to train on).
    f.write(INTERACTIONS, b"user_id,item_id,rating,timestamp\nu1,a,5,100\nu1,c,4,90\nu1,\"b,4,200\nu2,c,3,150\n");
    let v = f.validate();
    assert_problems(&v, vec![at(UnclosedQuote, INTERACTIONS, 4, None)], true);
    assert_eq!(v.summary.interactions, 2);
}

#[test]
fn users_with_a_single_interaction_each_are_not_usable() {
    let f = Fixture::valid();
    f.write(INTERACTIONS, b"user_id,item_id,timestamp\nu1,a,100\nu2,b,200\n");
    let v = f.validate();
    assert_problems(&v, vec![whole_file(NoUsableRows, INTERACTIONS)], false);
    assert!(message(&v, 0).contains("at least 2"), "{}", message(&v, 0));
}

#[test]
fn quoted_fields_are_legal_csv() {
    let f = Fixture::valid();
    f.append(ITEMS, b"{\"item_id\": \"x,y\", \"title\": \"Comma \\\"id\\\"\"}\n");
    f.append(INTERACTIONS, b"\"u1\",\"x,y\",\"\",\"300\"\n");
    let v = f.validate();
    assert_problems(&v, vec![], true);
    let u1 = &v.loaded.dataset.users[0];
    assert_eq!(u1.events.last().map(|e| e.item), v.loaded.dataset.item_index("x,y"));
}

#[test]
fn columns_in_any_order_and_extra_columns_are_ignored() {
    let f = Fixture::valid();
    f.write(INTERACTIONS, b"timestamp,note,item_id,user_id\n20,hi,b,u9\n10,,a,u9\n");
    let v = f.validate();
    assert_problems(&v, vec![], true);
    let items: Vec<u32> = v.loaded.dataset.users[0].events.iter().map(|e| e.item).collect();
    assert_eq!(items, vec![0, 1]);
}

// ---------------------------------------------------------------- fatal: whole files

#[test]
fn missing_header_is_fatal() {
    let f = Fixture::valid();
    f.write(INTERACTIONS, b"u1,a,5,100\nu1,b,4,200\n");
    let v = f.validate();
    assert_problems(&v, vec![at(MissingHeader, INTERACTIONS, 1, None)], false);
    assert_eq!(v.summary.interactions, 0);
}

#[test]
fn missing_column_is_fatal_and_named() {
    let f = Fixture::valid();
    f.write(INTERACTIONS, b"user_id,item_id,rating,time\nu1,a,5,100\n");
    assert_problems(&f.validate(), vec![at(MissingColumn, INTERACTIONS, 1, Some("timestamp"))], false);
}

#[test]
fn empty_items_file_is_fatal() {
    let f = Fixture::valid();
    f.write(ITEMS, b"");
    assert_problems(&f.validate(), vec![whole_file(EmptyFile, ITEMS)], false);
}

#[test]
fn empty_and_header_only_interactions_are_fatal() {
    let f = Fixture::valid();
    f.write(INTERACTIONS, b"");
    assert_problems(&f.validate(), vec![whole_file(EmptyFile, INTERACTIONS)], false);
    f.write(INTERACTIONS, b"user_id,item_id,timestamp\n");
    assert_problems(&f.validate(), vec![whole_file(EmptyFile, INTERACTIONS)], false);
}

#[test]
fn missing_file_is_fatal() {
    let f = Fixture::valid();
    std::fs::remove_file(f.path().join(INTERACTIONS)).unwrap();
    assert_problems(&f.validate(), vec![whole_file(FileMissing, INTERACTIONS)], false);
}

#[test]
fn no_usable_row_is_fatal() {
    let f = Fixture::valid();
    f.write(INTERACTIONS, b"user_id,item_id,timestamp\nu1,nope,1\n");
    assert_problems(
        &f.validate(),
        vec![at(UnknownItemId, INTERACTIONS, 2, Some("item_id")), whole_file(NoUsableRows, INTERACTIONS)],
        false,
    );
}

#[cfg(unix)]
#[test]
fn special_files_are_refused_without_reading_them() {
    // An image that links to /dev/zero, an interactions file that is a named pipe (a reader would wait
    // on it forever): each refused by name, at once.
    let f = Fixture::valid();
    std::fs::remove_file(f.path().join("images/a.png")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", f.path().join("images/a.png")).unwrap();
    let v = f.validate();
    assert_problems(&v, vec![at(ImageMissing, ITEMS, 1, Some("image"))], true);
    assert!(message(&v, 0).contains("not a file"), "{}", message(&v, 0));

    std::fs::remove_file(f.path().join(INTERACTIONS)).unwrap();
    assert!(Command::new("mkfifo").arg(f.path().join(INTERACTIONS)).status().unwrap().success());
    let v = f.validate();
    assert_eq!(problems(&v)[1], whole_file(FileUnreadable, INTERACTIONS), "{:#?}", v.problems());
    assert!(message(&v, 1).contains("named pipe"), "{}", message(&v, 1));
    assert!(!v.summary.usable);
}

#[test]
fn lookalike_ids_and_out_of_range_numbers_are_reported_and_kept() {
    let f = Fixture::valid();
    f.append(ITEMS, "{\"item_id\": \"cafe\u{301}\", \"title\": \"T\", \"year\": 1e999}\n".as_bytes());
    f.append(ITEMS, "{\"item_id\": \"caf\u{e9}\", \"title\": \"T\"}\n".as_bytes());
    let v = f.validate();
    assert_problems(
        &v,
        vec![at(WrongFieldType, ITEMS, 4, Some("year")), at(LookalikeItemId, ITEMS, 5, Some("item_id"))],
        true,
    );
    assert_eq!(v.loaded.dataset.items.len(), 5);
    assert_eq!(v.loaded.dataset.items[3].metadata.get("year"), Some(&serde_json::Value::Null));
}

#[test]
fn a_number_beyond_f64_before_non_ascii_outside_strings_is_bad_json() {
    // Found by fuzz/fuzz_targets/dataset.rs: the second try that nulls a number beyond f64 walked the
    // rest of the line a byte at a time and sliced `é` in two (a panic); such a line is not JSON.
    let f = Fixture::valid();
    f.append(ITEMS, "1e616\u{ed}\n{\"item_id\": \"d\", \"year\": 1e999, \u{e9}}\n".as_bytes());
    assert_problems(&f.validate(), vec![at(BadJson, ITEMS, 4, None), at(BadJson, ITEMS, 5, None)], true);
}

// ---------------------------------------------------------------- the CLI

#[test]
fn cli_exits_2_on_fatal_input_and_reports_json() {
    let f = Fixture::valid();
    f.write(INTERACTIONS, b"u1,a,5,100\n");
    let out = Command::new(env!("CARGO_BIN_EXE_omakase"))
        .args(["validate", "--json", "--data"])
        .arg(f.path())
        .output()
        .expect("run omakase");
    assert_eq!(out.status.code(), Some(2), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(report["usable"], false);
    assert_eq!(report["fatal_problems"], 1);
    assert_eq!(report["problem_counts"]["missing_header"], 1);
    let problem = &report["problems"][0];
    assert_eq!((problem["kind"].as_str(), problem["file"].as_str()), (Some("missing_header"), Some(INTERACTIONS)));
    assert_eq!((problem["line"].as_u64(), problem["severity"].as_str()), (Some(1), Some("fatal")));
}

#[test]
fn cli_prints_problems_as_file_line_kind_field() {
    let f = Fixture::valid();
    f.append(ITEMS, b"{\"item_id\": \"b\", \"title\": \"Beta again\"}\n");
    let out = Command::new(env!("CARGO_BIN_EXE_omakase"))
        .args(["validate", "--data"])
        .arg(f.path())
        .output()
        .expect("run omakase");
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout.lines().find(|l| l.starts_with("items.jsonl:")).expect("a problem line");
    assert!(line.starts_with("items.jsonl:4: duplicate_item_id (item_id): "), "{line}");
    assert!(stdout.lines().any(|l| l.trim_start().starts_with("duplicate_item_id") && l.contains(" 1 ")), "{stdout}");
}
