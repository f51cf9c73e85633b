//! Delta shards in the runtime (docs/bundle.md § Deltas), on the synthetic bundle of
//! tests/bundle_fixture with an `encoders` section: products appended after export join the
//! catalogue with export's quantization, are recommended like the items they resemble, append in
//! order, and every hostile delta (tampered, of another model, ids twice or already known, broken
//! rows or header) is refused naming its file, leaving a loaded runtime as it was.

mod bundle_fixture;

use std::collections::HashMap;

use bundle_fixture::{fixture, Lcg, IMAGE_DIM, TEXT_DIM};
use omakase::runtime::delta::{self, Built, DeltaHeader, NewProduct};
use omakase::runtime::manifest::{DeltaEntry, EncoderFiles, FileEntry, MAX_DELTAS};
use omakase::runtime::store::quantize_int8;
use omakase::runtime::text_template::ItemTextSpec;
use omakase::runtime::{EmbeddingDtype, ItemMeta, Manifest, Runtime, RuntimeError, WeightsDtype};

/// A published bundle: its manifest and every file's bytes.
#[derive(Clone)]
struct Shop {
    manifest: Manifest,
    files: HashMap<String, Vec<u8>>,
}

fn entry(path: &str, fill: char) -> FileEntry {
    FileEntry { path: path.into(), bytes: 1000, sha256: fill.to_string().repeat(64) }
}

/// The fixture's bundle, exported "with encoders" (the runtime never reads their files).
fn shop() -> Shop {
    let bundle =
        fixture().bundle(WeightsDtype::Q8_0, EmbeddingDtype::Int8, omakase::runtime::manifest::MAX_SHARD_BYTES);
    let mut manifest = bundle.manifest.clone();
    manifest.encoders = Some(EncoderFiles {
        text: entry("text_encoder.gguf", 'a'),
        image: Some(entry("image_encoder.gguf", 'b')),
        text_template: ItemTextSpec::default(),
    });
    manifest.validate().unwrap();
    Shop { manifest, files: bundle.files.into_iter().collect() }
}

fn load(shop: &Shop) -> Result<Runtime, RuntimeError> {
    delta::load(&shop.manifest, &shop.files)
}

fn publish(shop: &mut Shop, built: Built) {
    shop.files.insert(built.name.clone(), built.bytes);
    shop.manifest = built.manifest;
}

/// A product with random frozen features (`None`: that modality absent), through the item tower.
fn product(runtime: &Runtime, id: &str, seed: u64, text: bool, image: bool) -> NewProduct {
    let mut rng = Lcg(seed);
    let t = text.then(|| rng.vec(TEXT_DIM));
    let i = image.then(|| rng.vec(IMAGE_DIM));
    let vectors = runtime.embed_item(t.as_deref(), i.as_deref()).unwrap();
    let meta = ItemMeta { id: id.into(), title: format!("New {id}"), image: None, link: Some(format!("/p/{id}")) };
    NewProduct { meta, vectors }
}

#[test]
fn a_delta_appends_products_after_the_catalogue_as_export_quantizes_them() {
    let mut shop = shop();
    let before = shop.clone();
    let base = load(&shop).unwrap();
    let products = [product(&base, "n1", 1, true, true), product(&base, "n2", 2, true, false)];
    let built = delta::build(&shop.manifest, &base, &products).unwrap();
    assert!(built.name.starts_with("delta-") && built.name.ends_with(".bin"), "{}", built.name);
    // One row at d = 32 is 36 bytes (x 3 with the explain rows); the rest is the cards' header.
    assert!(built.bytes.len() < 1024, "{} bytes", built.bytes.len());
    publish(&mut shop, built);
    // Nothing else of the bundle changes: its manifest without the deltas is the exported one.
    assert_eq!(delta::base(&shop.manifest), before.manifest);
    assert_eq!(shop.manifest.deltas.len(), 1);

    let runtime = load(&shop).unwrap();
    assert_eq!(runtime.item_count(), base.item_count() + 2);
    for (i, p) in products.iter().enumerate() {
        let row = runtime.row_of(&p.meta.id).unwrap();
        assert_eq!(row as usize, base.item_count() + i);
        assert_eq!(runtime.item(row).unwrap().title, p.meta.title);
        // Stored exactly as export stores a shard row: int8 codes and one scale, max |v| / 127.
        let (codes, scale) = quantize_int8(&p.vectors.fused);
        let expected: Vec<f32> = codes.iter().map(|&c| c as f32 * scale).collect();
        assert_eq!(runtime.item_vector(row).unwrap(), expected);
    }
    // The explain rows travel too: a session of n1 explains n2 by text (both have text), not image.
    let (n1, n2) = (runtime.row_of("n1").unwrap(), runtime.row_of("n2").unwrap());
    let why = runtime.explain(n2, &[n1]).unwrap();
    assert!(why.text_similarity.is_some() && why.image_similarity.is_none(), "{why:?}");
}

#[test]
fn a_new_product_is_recommended_like_the_item_it_resembles() {
    let mut shop = shop();
    let base = load(&shop).unwrap();
    // The twin of p7: the same frozen features, so (nearly) the same vector.
    let f = fixture();
    let text = f.features.text.present[7].then(|| f.features.text.row(7).to_vec());
    let image = f.features.image.present[7].then(|| f.features.image.row(7).to_vec());
    let vectors = base.embed_item(text.as_deref(), image.as_deref()).unwrap();
    let meta = ItemMeta { id: "twin-of-p7".into(), title: "Twin".into(), image: None, link: None };
    let built = delta::build(&shop.manifest, &base, &[NewProduct { meta, vectors }]).unwrap();
    publish(&mut shop, built);
    let runtime = load(&shop).unwrap();
    let p7 = runtime.row_of("p7").unwrap();
    let twin = runtime.row_of("twin-of-p7").unwrap();
    // A visitor whose taste points at p7 (user vector = p7's row) gets the twin first.
    let top = runtime.top_k(&runtime.item_vector(p7).unwrap(), 1, &[p7]).unwrap();
    assert_eq!(top[0].0, twin, "{top:?}");
    assert!(top[0].1 > 0.99, "{top:?}");
    // And it is a product like the others: in a session, and in full rankings.
    let answer = runtime.recommend(&["p3", "twin-of-p7"], runtime.item_count() - 2).unwrap();
    assert_eq!(answer.used, vec![runtime.row_of("p3").unwrap(), twin]);
    assert!(runtime.recommend(&["p3"], runtime.item_count() - 1).unwrap().items.iter().any(|r| r.id == "twin-of-p7"));
}

#[test]
fn deltas_append_in_order_and_ids_stay_unique() {
    let mut shop = shop();
    let base = load(&shop).unwrap();
    let first = delta::build(&shop.manifest, &base, &[product(&base, "n1", 1, true, true)]).unwrap();
    publish(&mut shop, first);
    let once = load(&shop).unwrap();
    let second = delta::build(&shop.manifest, &once, &[product(&once, "n2", 2, false, true)]).unwrap();
    publish(&mut shop, second);
    let twice = load(&shop).unwrap();
    assert_eq!(shop.manifest.deltas.len(), 2);
    assert_eq!(twice.row_of("n1"), Some(base.item_count() as u32));
    assert_eq!(twice.row_of("n2"), Some(base.item_count() as u32 + 1));

    // An id of the bundle, of an earlier delta, or twice in one delta: refused when building.
    for (ids, named) in
        [(vec!["p3"], "\"p3\" is already"), (vec!["n1"], "\"n1\" is already"), (vec!["m", "m"], "given twice")]
    {
        let products: Vec<NewProduct> = ids.iter().map(|id| product(&twice, id, 3, true, true)).collect();
        let err = delta::build(&shop.manifest, &twice, &products).unwrap_err().to_string();
        assert!(err.contains(named), "{err}");
    }
}

#[test]
fn a_bundle_without_encoders_or_item_tower_takes_no_delta() {
    let shop = shop();
    let runtime = load(&shop).unwrap();
    let p = product(&runtime, "n1", 1, true, true);
    let mut bare = shop.manifest.clone();
    bare.encoders = None;
    let err = delta::build(&bare, &runtime, std::slice::from_ref(&p)).unwrap_err();
    assert!(matches!(err, RuntimeError::NotInBundle { .. }) && err.to_string().contains("--encoders"), "{err}");
    bare = shop.manifest.clone();
    bare.item_tower = None;
    assert!(delta::build(&bare, &runtime, &[p]).unwrap_err().to_string().contains("item tower"));
}

/// The shop with one delta of two products, its header and rows taken apart for the hostile cases.
struct Published {
    shop: Shop,
    header: DeltaHeader,
    rows: Vec<u8>,
}

fn published() -> Published {
    let mut shop = shop();
    let base = load(&shop).unwrap();
    let built = delta::build(
        &shop.manifest,
        &base,
        &[product(&base, "n1", 1, true, true), product(&base, "n2", 2, true, true)],
    )
    .unwrap();
    let parsed = delta::Delta::parse(&built.bytes, &built.name).unwrap();
    let header = parsed.header.clone();
    let h = u32::from_le_bytes(built.bytes[8..12].try_into().unwrap()) as usize;
    let rows = built.bytes[12 + h..].to_vec();
    publish(&mut shop, built);
    Published { shop, header, rows }
}

/// `shop` with its one delta replaced by `bytes`, the manifest entry made to match them (size and
/// sha256, `rows` rows), so that the file's own checks are what refuse it.
fn with_delta(shop: &Shop, bytes: Vec<u8>, rows: usize) -> Shop {
    let mut shop = shop.clone();
    let old = shop.manifest.deltas.pop().unwrap();
    shop.files.remove(&old.file.path);
    let sha256 = omakase::runtime::manifest::sha256_hex(&bytes);
    let file = FileEntry { path: "delta-hostile.bin".into(), bytes: bytes.len() as u64, sha256 };
    shop.manifest.deltas.push(DeltaEntry { file, rows });
    shop.files.insert("delta-hostile.bin".into(), bytes);
    shop
}

/// Loading refuses the shop naming the delta and saying `what`; a runtime of the base bundle given
/// the same delta stays as it was and still recommends.
fn refused(shop: &Shop, what: &str) {
    let err = load(shop).unwrap_err().to_string();
    let file = &shop.manifest.deltas.last().unwrap().file;
    assert!(err.contains(&file.path) && err.contains(what), "expected {what:?} naming {}: {err}", file.path);
    let mut runtime = Runtime::from_manifest(&delta::base(&shop.manifest), &shop.files).unwrap();
    let n = runtime.item_count();
    let entry = shop.manifest.deltas.last().unwrap();
    assert!(delta::apply(&mut runtime, &shop.manifest, entry, &shop.files[&file.path]).is_err());
    assert_eq!(runtime.item_count(), n);
    assert_eq!(runtime.recommend(&["p1", "p2"], 5).unwrap().items.len(), 5);
}

#[test]
fn a_tampered_delta_or_a_wrong_sha256_is_refused_naming_the_file() {
    let p = published();
    let mut tampered = p.shop.clone();
    let name = tampered.manifest.deltas[0].file.path.clone();
    tampered.files.get_mut(&name).unwrap()[40] ^= 1;
    refused(&tampered, "sha256");
    let mut wrong = p.shop.clone();
    wrong.manifest.deltas[0].file.sha256 = "0".repeat(64);
    refused(&wrong, "sha256");
    let mut short = p.shop.clone();
    short.files.get_mut(&name).unwrap().pop();
    refused(&short, "bytes");
    let mut missing = p.shop.clone();
    missing.files.remove(&name);
    assert!(matches!(load(&missing).unwrap_err(), RuntimeError::MissingFile { file } if file == name));
}

#[test]
fn a_delta_of_another_model_dimension_or_encoder_is_refused_naming_the_file() {
    let p = published();
    type Change = Box<dyn Fn(&mut DeltaHeader)>;
    let cases: [(&str, Change); 3] = [
        ("item tower", Box::new(|h| h.space.item_tower = "1".repeat(64))),
        ("text encoder", Box::new(|h| h.space.text_encoder = "2".repeat(64))),
        ("image encoder", Box::new(|h| h.space.image_encoder = None)),
    ];
    for (what, change) in cases {
        let mut header = p.header.clone();
        change(&mut header);
        refused(&with_delta(&p.shop, delta::encode(&header, &p.rows), 2), what);
    }
    // Another dimension: rows of width 16 that are well-formed on their own.
    let mut header = p.header.clone();
    header.dim = 16;
    let v = vec![0.5f32; 16];
    let rows: Vec<Option<&[f32]>> = vec![Some(&v), Some(&v)];
    let block = omakase::runtime::store::encode_shard(EmbeddingDtype::Int8, 16, &rows);
    let bytes = delta::encode(&header, &[block.clone(), block.clone(), block].concat());
    refused(&with_delta(&p.shop, bytes, 2), "dimension 16, the bundle's have dimension 32");
    // Another storage.
    let mut header = p.header.clone();
    header.embedding_dtype = EmbeddingDtype::F16;
    let block =
        omakase::runtime::store::encode_shard(EmbeddingDtype::F16, 32, &[Some(&[0.5; 32][..]), Some(&[0.5; 32][..])]);
    let bytes = delta::encode(&header, &[block.clone(), block.clone(), block].concat());
    refused(&with_delta(&p.shop, bytes, 2), "stored as f16");
}

#[test]
fn duplicate_or_known_ids_and_broken_rows_or_headers_are_refused_naming_the_file() {
    let p = published();
    let header_with = |change: &dyn Fn(&mut DeltaHeader)| {
        let mut h = p.header.clone();
        change(&mut h);
        h
    };
    let twice = header_with(&|h| h.items[1].id = "n1".into());
    refused(&with_delta(&p.shop, delta::encode(&twice, &p.rows), 2), "duplicate id \"n1\"");
    let known = header_with(&|h| h.items[1].id = "p3".into());
    refused(&with_delta(&p.shop, delta::encode(&known, &p.rows), 2), "\"p3\" is already in the catalogue");
    let blank = header_with(&|h| h.items[0].id = " ".into());
    refused(&with_delta(&p.shop, delta::encode(&blank, &p.rows), 2), "id is empty");
    // The manifest's row count must be the file's.
    let mut count = p.shop.clone();
    count.manifest.deltas[0].rows = 1;
    refused(&count, "manifest.json says 1 rows");
    // Rows: a NaN scale, an all-zero main row, a byte too many.
    let mut nan = p.rows.clone();
    nan[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    refused(&with_delta(&p.shop, delta::encode(&p.header, &nan), 2), "row 0: scale NaN");
    let mut zero = p.rows.clone();
    zero[4..8].copy_from_slice(&0f32.to_le_bytes());
    refused(&with_delta(&p.shop, delta::encode(&p.header, &zero), 2), "row 1 (\"n2\") is all zero");
    let mut long = p.rows.clone();
    long.push(0);
    refused(&with_delta(&p.shop, delta::encode(&p.header, &long), 2), "bytes of rows");
    // The header: no magic, a length past the file, unknown fields, another version, no products.
    let good = delta::encode(&p.header, &p.rows);
    let mut magic = good.clone();
    magic[0] = b'X';
    refused(&with_delta(&p.shop, magic, 2), "OMKDELTA");
    let mut length = good.clone();
    length[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    refused(&with_delta(&p.shop, length, 2), "does not fit");
    let json = serde_json::to_value(&p.header).unwrap();
    let raw = |value: serde_json::Value| {
        let text = serde_json::to_vec(&value).unwrap();
        [&b"OMKDELTA"[..], &(text.len() as u32).to_le_bytes(), &text, &p.rows].concat()
    };
    let mut unknown = json.clone();
    unknown["price"] = 3.into();
    refused(&with_delta(&p.shop, raw(unknown), 2), "unknown field `price`");
    let mut version = json.clone();
    version["format_version"] = 2.into();
    refused(&with_delta(&p.shop, raw(version), 2), "format_version` is 2");
    let mut none = json.clone();
    none["items"] = serde_json::json!([]);
    refused(&with_delta(&p.shop, raw(none), 2), "no product");
    let text = serde_json::to_string(&json).unwrap().replacen("\"dim\":32", "\"dim\":32,\"dim\":32", 1);
    let dup_key = [&b"OMKDELTA"[..], &(text.len() as u32).to_le_bytes(), text.as_bytes(), &p.rows].concat();
    refused(&with_delta(&p.shop, dup_key, 2), "appears twice");
}

#[test]
fn links_other_than_http_or_relative_are_dropped_as_in_items_json() {
    let p = published();
    let header = {
        let mut h = p.header.clone();
        h.items[0].link = Some("javascript:alert(1)".into());
        h
    };
    let runtime = load(&with_delta(&p.shop, delta::encode(&header, &p.rows), 2)).unwrap();
    assert_eq!(runtime.item(runtime.row_of("n1").unwrap()).unwrap().link, None);
    assert_eq!(runtime.item(runtime.row_of("n2").unwrap()).unwrap().link.as_deref(), Some("/p/n2"));
}

#[test]
fn the_manifest_lists_deltas_within_limits_and_only_when_there_are_some() {
    let p = published();
    // A manifest without deltas is written without the field (a bundle keeps its bytes), and read
    // back equal; with them, they round-trip.
    let base = delta::base(&p.shop.manifest);
    assert!(!String::from_utf8(base.to_json()).unwrap().contains("deltas"));
    assert_eq!(Manifest::from_json(&base.to_json()).unwrap(), base);
    assert_eq!(Manifest::from_json(&p.shop.manifest.to_json()).unwrap(), p.shop.manifest);
    // `deltas` is a version-2 field: appending raises the version; a version-1 manifest with deltas
    // is refused naming the field.
    assert_eq!((base.format_version, p.shop.manifest.format_version), (1, 2));
    let mut old = p.shop.manifest.clone();
    old.format_version = 1;
    let err = Manifest::from_json(&old.to_json()).unwrap_err().to_string();
    assert!(err.contains("`deltas`") && err.contains("needs format_version 2"), "{err}");
    // The base loader refuses to drop deltas silently.
    let err = Runtime::from_manifest(&p.shop.manifest, &p.shop.files).unwrap_err().to_string();
    assert!(err.contains("delta::load"), "{err}");

    let invalid = |change: &dyn Fn(&mut Manifest), what: &str| {
        let mut m = p.shop.manifest.clone();
        change(&mut m);
        let err = Manifest::from_json(&m.to_json()).unwrap_err().to_string();
        assert!(err.contains(what), "expected {what:?}: {err}");
    };
    invalid(&|m| m.deltas[0].rows = 0, "deltas[0].rows");
    invalid(&|m| m.deltas[0].rows = 1_000_000, "do not fit the file's");
    invalid(&|m| m.deltas[0].file.path = "items-00000.bin".into(), "listed twice");
    invalid(&|m| m.deltas[0].file.path = "../manifest.json".into(), "not a plain file name");
    invalid(
        &|m| {
            let one = m.deltas[0].clone();
            m.deltas = (0..=MAX_DELTAS)
                .map(|i| DeltaEntry {
                    file: FileEntry { path: format!("d-{i}.bin"), ..one.file.clone() },
                    ..one.clone()
                })
                .collect();
        },
        "exceed this runtime's limit",
    );
}

/// Seeds of the `delta` fuzz target (fuzz/fuzz_targets/delta.rs): the fixture's bundle with one
/// delta, then with two, each file in `Manifest::files()` order. Run with
/// `OMAKASE_FUZZ_SEED=fuzz/corpus cargo test --test runtime_delta -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes files: set OMAKASE_FUZZ_SEED"]
fn write_fuzz_seeds() {
    let dir =
        std::path::PathBuf::from(std::env::var("OMAKASE_FUZZ_SEED").expect("OMAKASE_FUZZ_SEED=DIR")).join("delta");
    std::fs::create_dir_all(&dir).unwrap();
    let mut shop = published().shop;
    for name in ["one", "two"] {
        let mut seed = shop.manifest.to_json();
        for (_, entry) in shop.manifest.files() {
            seed.extend_from_slice(b"\n--\n");
            seed.extend_from_slice(&shop.files[&entry.path]);
        }
        std::fs::write(dir.join(name), seed).unwrap();
        let runtime = load(&shop).unwrap();
        let built =
            delta::build(&shop.manifest, &runtime, &[product(&runtime, &format!("n-{name}"), 3, false, true)]).unwrap();
        publish(&mut shop, built);
    }
}
