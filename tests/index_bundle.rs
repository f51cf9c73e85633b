//! Issue 17, the index in a bundle: written by the export (k-means partitions as main shards,
//! centroids file, measured nprobe), read back by the runtime; probing every partition is the exact
//! scan; an index that disagrees with the rows is refused at load naming the field; a truncated or
//! tampered partition is refused by its sha256 naming the file and the answer comes from the
//! verified partitions only.

mod bundle_fixture;

use bundle_fixture::{config, file_map, fixture, items, N_ITEMS};
use omakase::export::index::{indexed_bundle, partition, IndexOptions};
use omakase::export::{catalogue_vectors, Bundle, ExportJob};
use omakase::runtime::index::{recommend, unit_query, Ivf, PartitionSet};
use omakase::runtime::manifest::Provenance;
use omakase::runtime::{EmbeddingDtype, Manifest, Runtime, RuntimeError, WeightsDtype};

fn indexed(partitions: usize) -> Bundle {
    let f = fixture();
    let vectors = catalogue_vectors(&f.model, &f.catalogue, &f.features, true).unwrap();
    let job = ExportJob { weights: WeightsDtype::Q8_0, shard: EmbeddingDtype::Int8, ..ExportJob::new("r", "d", "o") };
    let opts = IndexOptions { partitions: Some(partitions), ..IndexOptions::default() };
    // Item i viewed (i % 5) times: the partitions are ordered by these counts.
    let popularity: Vec<u64> = (0..N_ITEMS as u64).map(|i| i % 5).collect();
    let plan = partition(&vectors.fused, config().dim, &popularity, &opts);
    indexed_bundle(&config(), &f.tensors(), &vectors, &items(), &job, Provenance::default(), &plan, &opts).unwrap()
}

fn manifest_json(bundle: &Bundle) -> Vec<u8> {
    bundle.files.iter().find(|(n, _)| n == "manifest.json").unwrap().1.clone()
}

#[test]
fn the_export_writes_partitions_as_shards_and_probing_all_is_the_exact_scan() {
    let bundle = indexed(6);
    let m = &bundle.manifest;
    let index = m.index.as_ref().expect("an index");
    assert_eq!((index.partitions, index.item_count, index.dim), (m.shards.len(), N_ITEMS, config().dim));
    assert!(m.shards.len() > 1 && m.shards.len() <= 6);
    assert!((1..=index.partitions).contains(&index.nprobe));
    let files = file_map(&bundle);
    let runtime = Runtime::load(&manifest_json(&bundle), &files).unwrap();
    let ivf = Ivf::load(m, &files).unwrap().unwrap();
    // Every product is still there under its id (rows are permuted, ids are not).
    let mut ids: Vec<String> = (0..N_ITEMS as u32).map(|r| runtime.item(r).unwrap().id.clone()).collect();
    ids.sort();
    let mut expected: Vec<String> = items().into_iter().map(|i| i.id).collect();
    expected.sort();
    assert_eq!(ids, expected);
    for session in [vec!["p3"], vec!["p10", "p11", "p40"], vec!["p59", "p0"]] {
        let exact = runtime.recommend(&session, 10).unwrap();
        let all = recommend::recommend(&runtime, &ivf, &session, 10, index.partitions).unwrap();
        assert_eq!(all.recommendations, exact, "{session:?}");
        // The default nprobe: every hit is the exact scan's score of its row.
        let approx = recommend::recommend(&runtime, &ivf, &session, 10, index.nprobe).unwrap();
        let user = runtime.user_vector(&exact.used).unwrap();
        let mut scores = vec![0f32; runtime.item_count()];
        runtime.score_all(&user, &mut scores).unwrap();
        for rec in &approx.recommendations.items {
            assert_eq!(rec.score, scores[rec.row as usize]);
        }
    }
}

#[test]
fn the_same_seed_writes_the_same_bundle() {
    let (a, b) = (indexed(4), indexed(4));
    assert_eq!(a.files, b.files);
}

type Edit = dyn Fn(&mut serde_json::Value);

/// Edits `manifest.json` (as JSON) and loads it with the bundle's files.
fn load_edited(bundle: &Bundle, edit: impl Fn(&mut serde_json::Value)) -> Result<Runtime, RuntimeError> {
    let mut value: serde_json::Value = serde_json::from_slice(&manifest_json(bundle)).unwrap();
    edit(&mut value);
    Runtime::load(&serde_json::to_vec(&value).unwrap(), &file_map(bundle))
}

#[test]
fn an_index_that_disagrees_with_the_rows_is_refused_at_load() {
    let bundle = indexed(6);
    let p = bundle.manifest.shards.len() as u64;
    let cases: [(&str, Box<Edit>); 5] = [
        ("index.item_count", Box::new(|v| v["index"]["item_count"] = (N_ITEMS as u64 + 1).into())),
        ("index.dim", Box::new(|v| v["index"]["dim"] = 16.into())),
        ("index.partitions", Box::new(move |v| v["index"]["partitions"] = (p + 1).into())),
        ("index.nprobe", Box::new(move |v| v["index"]["nprobe"] = (p + 1).into())),
        ("index.centroids.bytes", Box::new(|v| v["index"]["centroids"]["bytes"] = 12.into())),
    ];
    for (field, edit) in cases {
        let err = load_edited(&bundle, edit).unwrap_err();
        assert!(err.to_string().starts_with(&format!("manifest.json: field `{field}`")), "{field}: {err}");
    }
    let err = load_edited(&bundle, |v| v["index"]["kind"] = "hnsw".into()).unwrap_err();
    assert!(err.to_string().contains("hnsw"), "{err}");
    // An index needs format version 2: a version-1 manifest holding one is refused naming it.
    assert_eq!(bundle.manifest.format_version, 2);
    let err = load_edited(&bundle, |v| v["format_version"] = 1.into()).unwrap_err();
    assert!(err.to_string().starts_with("manifest.json: field `index`: needs format_version 2"), "{err}");
    // A manifest without an index still loads (the field is optional).
    load_edited(&bundle, |v| {
        v.as_object_mut().unwrap().remove("index");
    })
    .unwrap();
}

#[test]
fn a_tampered_centroids_file_is_refused_by_name() {
    let bundle = indexed(6);
    let mut files = file_map(&bundle);
    files.get_mut("index-centroids.bin").unwrap()[0] ^= 1;
    let err = Ivf::load(&bundle.manifest, &files).unwrap_err();
    assert!(matches!(&err, RuntimeError::Checksum { file, .. } if file == "index-centroids.bin"), "{err}");
    files.remove("index-centroids.bin");
    let err = Ivf::load(&bundle.manifest, &files).unwrap_err();
    assert_eq!(err.to_string(), "index-centroids.bin: missing (listed in manifest.json but not supplied)");
}

#[test]
fn a_truncated_or_tampered_partition_is_refused_and_the_answer_uses_verified_rows_only() {
    let bundle = indexed(6);
    let m: Manifest = bundle.manifest.clone();
    let files = file_map(&bundle);
    let runtime = Runtime::load(&manifest_json(&bundle), &files).unwrap();
    let ivf = Ivf::load(&m, &files).unwrap().unwrap();
    let mut set = PartitionSet::new(&m).unwrap();
    let (bad, cut) = (0usize, 1usize);
    for (p, shard) in m.shards.iter().enumerate() {
        let mut bytes = files[&shard.file.path].clone();
        let result = if p == bad {
            bytes[7] ^= 0x40;
            set.insert(p, &bytes)
        } else if p == cut {
            set.insert(p, &bytes[..bytes.len() - 1])
        } else {
            set.insert(p, &bytes)
        };
        match p {
            _ if p == bad => assert!(
                matches!(&result, Err(RuntimeError::Checksum { file, .. }) if *file == shard.file.path),
                "{result:?}"
            ),
            _ if p == cut => assert!(
                matches!(&result, Err(RuntimeError::FileSize { file, .. }) if *file == shard.file.path),
                "{result:?}"
            ),
            _ => result.unwrap(),
        }
    }
    assert!(!set.has(bad) && !set.has(cut));
    assert_eq!(set.present(), m.shards.len() - 2);
    let refused: Vec<std::ops::Range<usize>> = [bad, cut].iter().map(|&p| ivf.partitions()[p].clone()).collect();
    for r in 0..N_ITEMS as u32 {
        let user = runtime.user_vector(&[r]).unwrap();
        let query = unit_query(&user, runtime.dim()).unwrap();
        let search = ivf.top_k(&set, &query, 5, &[r], m.shards.len());
        let mut expected_missing = vec![bad, cut];
        expected_missing.sort_by_key(|p| search.probed.iter().position(|q| q == p));
        assert_eq!(search.missing, expected_missing, "every partition probed, the refused two missing");
        assert!(search.hits.iter().all(|(row, _)| refused.iter().all(|range| !range.contains(&(*row as usize)))));
        // What it does return is the full scan's answer over the verified rows.
        let full = recommend::top_k(&runtime, &ivf, &user, N_ITEMS, &[r], m.shards.len()).unwrap();
        let verified: Vec<(u32, f32)> = full
            .hits
            .into_iter()
            .filter(|(row, _)| refused.iter().all(|range| !range.contains(&(*row as usize))))
            .take(5)
            .collect();
        assert_eq!(search.hits, verified, "row {r}");
    }
}

/// The streamed reader's files (docs/bundle.md § Index): every id resolves through its directory
/// bucket to its row, the metadata files are items.json cut at the partitions, and popular.json is
/// popularity.json's best rows with their cards, in rank order.
#[test]
fn the_streamed_reader_files_hold_what_the_whole_bundle_files_hold() {
    use omakase::export::index::stream::attach_stream;
    use omakase::export::merchandising;
    use omakase::runtime::index::directory::{bucket_of, Bucket};
    use omakase::runtime::index::popular::PopularFile;
    use omakase::runtime::popularity::{Popularity, PopularityFile};
    use omakase::runtime::ItemMeta;

    let mut bundle = indexed(6);
    // Row r viewed (r * 7 % 13) times, at times spread over a month.
    let events: Vec<(u32, f64)> =
        (0..N_ITEMS as u32).flat_map(|r| (0..r * 7 % 13).map(move |t| (r, (r as f64 + t as f64) * 40_000.0))).collect();
    merchandising::attach(&mut bundle, None, Some(PopularityFile::compute(N_ITEMS, &events, 7.0))).unwrap();
    attach_stream(&mut bundle).unwrap();
    let m = Manifest::from_json(&manifest_json(&bundle)).unwrap();
    assert_eq!(m, bundle.manifest);
    let index = m.index.as_ref().unwrap();
    let files = file_map(&bundle);
    for (_, entry) in m.stream_files() {
        omakase::runtime::verify_file(entry, &files[&entry.path]).unwrap();
    }
    let items: Vec<ItemMeta> = serde_json::from_slice(&files["items.json"]).unwrap();
    // Metadata: partition p's file holds its shard's rows, in row order.
    let metadata = index.metadata.as_ref().expect("index.metadata");
    assert_eq!(metadata.len(), index.partitions);
    let mut joined: Vec<ItemMeta> = Vec::new();
    for (p, entry) in metadata.iter().enumerate() {
        assert_eq!(entry.path, format!("meta-{p:05}.json"));
        let part: Vec<ItemMeta> = serde_json::from_slice(&files[&entry.path]).unwrap();
        assert_eq!(part.len(), m.shards[p].rows);
        joined.extend(part);
    }
    assert_eq!(joined, items);
    // Directory: B = 1 for 60 ids; every id in its bucket, at its row.
    let directory = index.directory.as_ref().expect("index.directory");
    assert_eq!((directory.hash.as_str(), directory.buckets, directory.files.len()), ("fnv1a64", 1, 1));
    for (row, item) in items.iter().enumerate() {
        let b = bucket_of(&item.id, directory.buckets);
        let entry = &directory.files[b];
        let bucket = Bucket::parse(&files[&entry.path], &entry.path, b, directory.buckets, N_ITEMS).unwrap();
        assert_eq!(bucket.row_of(&item.id), Some(row as u32), "{}", item.id);
    }
    // Popular: every row (fewer than 1,000), ranked as the whole bundle's popular list ranks them.
    let popular_entry = index.popular.as_ref().expect("index.popular");
    let popular = PopularFile::parse(&files[&popular_entry.path], &popular_entry.path, N_ITEMS).unwrap();
    let popularity = Popularity::parse(&files["popularity.json"], "popularity.json", N_ITEMS).unwrap();
    assert_eq!(popular.rows.len(), N_ITEMS);
    let mut expected: Vec<(u32, f32)> = (0..N_ITEMS as u32).map(|r| (r, popularity.score(r as usize))).collect();
    expected.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    assert_eq!(popular.rows, expected);
    let cards: Vec<ItemMeta> = expected.iter().map(|&(r, _)| items[r as usize].clone()).collect();
    assert_eq!(popular.items, cards);
    // Attaching again replaces the files rather than adding a second set.
    let count = bundle.files.len();
    attach_stream(&mut bundle).unwrap();
    assert_eq!(bundle.files.len(), count);
}

#[test]
fn stream_fields_that_disagree_with_the_index_are_refused_naming_the_field() {
    let bundle = indexed(6);
    let cases: [(&str, Box<Edit>); 4] = [
        (
            "index.metadata",
            Box::new(|v| {
                v["index"]["metadata"].as_array_mut().unwrap().pop();
            }),
        ),
        ("index.directory.hash", Box::new(|v| v["index"]["directory"]["hash"] = "murmur3".into())),
        ("index.directory.buckets", Box::new(|v| v["index"]["directory"]["buckets"] = 0.into())),
        ("index.directory.files", Box::new(|v| v["index"]["directory"]["buckets"] = 2.into())),
    ];
    for (field, edit) in cases {
        let err = load_edited(&bundle, edit).unwrap_err();
        assert!(err.to_string().starts_with(&format!("manifest.json: field `{field}`")), "{field}: {err}");
    }
    let err = load_edited(&bundle, |v| v["index"]["directory"]["hash"] = "murmur3".into()).unwrap_err();
    assert!(err.to_string().contains("murmur3"), "{err}");
}
