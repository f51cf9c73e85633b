//! Issue 17, the streamed catalogue (`index::stream`): fed the files its own planning asks for, it
//! answers every scenario exactly as `index::recommend::answer` answers on the whole bundle, for
//! many sessions and nprobe values, rules included; a partial answer reports the probed partitions
//! that are missing and uses only what is here; a truncated or tampered partition, metadata or
//! bucket file is refused naming the file and nothing of it is used; unknown ids are reported;
//! the memory bound evicts least recently used partitions but never the current request's.

mod bundle_fixture;

use std::collections::HashMap;

use bundle_fixture::{config, fixture, items, N_ITEMS};
use omakase::export::index::stream::attach_stream;
use omakase::export::index::{indexed_bundle, partition, IndexOptions};
use omakase::export::{catalogue_vectors, merchandising, Bundle, ExportJob};
use omakase::runtime::index::{recommend, Ivf, StreamFile, StreamRequest, StreamedCatalogue};
use omakase::runtime::manifest::Provenance;
use omakase::runtime::popularity::PopularityFile;
use omakase::runtime::{
    EmbeddingDtype, Facts, Request, RuleText, Rules, Runtime, RuntimeError, Scenario, WeightsDtype,
};

/// An indexed bundle of the fixture's 60 items in `partitions` partitions, with popularity.
fn bundle(partitions: usize) -> Bundle {
    let f = fixture();
    let vectors = catalogue_vectors(&f.model, &f.catalogue, &f.features, true).unwrap();
    let job = ExportJob { weights: WeightsDtype::Q8_0, shard: EmbeddingDtype::Int8, ..ExportJob::new("r", "d", "o") };
    let opts = IndexOptions { partitions: Some(partitions), nprobe: Some(2), ..IndexOptions::default() };
    let popularity: Vec<u64> = (0..N_ITEMS as u64).map(|i| i % 5).collect();
    let plan = partition(&vectors.fused, config().dim, &popularity, &opts);
    let mut bundle =
        indexed_bundle(&config(), &f.tensors(), &vectors, &items(), &job, Provenance::default(), &plan, &opts).unwrap();
    let events: Vec<(u32, f64)> =
        (0..N_ITEMS as u32).flat_map(|r| (0..r * 7 % 13).map(move |t| (r, (r as f64 + t as f64) * 40_000.0))).collect();
    merchandising::attach(&mut bundle, None, Some(PopularityFile::compute(N_ITEMS, &events, 7.0))).unwrap();
    attach_stream(&mut bundle).unwrap();
    bundle
}

fn files(bundle: &Bundle) -> HashMap<String, Vec<u8>> {
    bundle.files.iter().cloned().collect()
}

/// The whole bundle loaded without its explain shards (a streamed reader has none) and its index.
fn whole(bundle: &Bundle) -> (Runtime, Ivf) {
    let mut files = files(bundle);
    for shard in bundle.manifest.explain.iter().flat_map(|e| e.text.iter().chain(&e.image)) {
        files.remove(&shard.file.path);
    }
    let runtime = Runtime::load(&files["manifest.json"], &files).unwrap();
    let ivf = Ivf::load(&bundle.manifest, &files).unwrap().unwrap();
    (runtime, ivf)
}

/// A catalogue with what a page has at load: the tower, the centroids, popular.json.
fn loaded(bundle: &Bundle) -> StreamedCatalogue {
    let m = &bundle.manifest;
    let f = files(bundle);
    let index = m.index.as_ref().unwrap();
    let mut cat = StreamedCatalogue::new(m, &f[&m.sequence_tower.path], &f[&index.centroids.path]).unwrap();
    let popular = index.popular.as_ref().unwrap();
    cat.insert(&popular.path, &f[&popular.path]).unwrap();
    cat
}

/// Feeds `cat` what it asks for until it needs nothing more; the files fetched.
fn fetch_all(
    cat: &mut StreamedCatalogue,
    files: &HashMap<String, Vec<u8>>,
    request: &StreamRequest<'_>,
    nprobe: usize,
) -> Vec<String> {
    let mut fetched = Vec::new();
    for _ in 0..100 {
        let needs = cat.needs(request, nprobe).unwrap();
        if needs.is_empty() {
            return fetched;
        }
        for path in needs {
            cat.insert(&path, &files[&path]).unwrap();
            fetched.push(path);
        }
    }
    panic!("the planning did not converge");
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn streamed_lists_equal_the_whole_bundles_indexed_lists() {
    let bundle = bundle(6);
    let f = files(&bundle);
    let (runtime, ivf) = whole(&bundle);
    let p = ivf.partitions().len();
    let no_rules = Rules::default();
    let facts =
        Facts::parse(r#"{"in_stock": {"p1": false, "p2": false, "p5": false, "p8": false, "p13": false}}"#).unwrap();
    let ruled =
        Rules::parse(&RuleText { exclude: Some("p7, p9"), pin: Some("p20@1, p44@3, nope@2"), ..RuleText::default() })
            .unwrap();
    let filtered = Rules::parse(&RuleText { filter: Some("in_stock"), ..RuleText::default() }).unwrap();
    let sessions = [
        ids(&["p3"]),
        ids(&["p10", "p11", "p40"]),
        ids(&["p59", "p0", "unknown-id"]),
        ids(&[]),
        ids(&["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10"]),
    ];
    let mut compared = 0;
    for session in &sessions {
        for nprobe in [1, 2, p] {
            for scenario in Scenario::ALL {
                for (rules, facts) in [(&no_rules, None), (&ruled, None), (&filtered, Some(&facts))] {
                    let product = if scenario == Scenario::Similar { Some("p17") } else { Some("p3") };
                    let request = StreamRequest { scenario, session, product, k: 7, rules, facts };
                    let mut cat = loaded(&bundle);
                    fetch_all(&mut cat, &f, &request, nprobe);
                    let streamed = cat.answer(&request, nprobe, false).unwrap();
                    let compiled = runtime.compile_rules(rules, facts).unwrap();
                    let whole = recommend::answer(
                        &runtime,
                        &ivf,
                        &Request { scenario, session, product, k: 7, rules: &compiled },
                        nprobe,
                    )
                    .unwrap();
                    let what = format!("{session:?} {scenario:?} nprobe {nprobe} rules {rules:?}");
                    assert_eq!(streamed.list, whole.list, "{what}");
                    let cards: Vec<_> = whole.list.items.iter().map(|i| runtime.item(i.row).unwrap().clone()).collect();
                    assert_eq!(streamed.cards, cards, "{what}");
                    match (&streamed.search, &whole.probe) {
                        (Some(s), Some(probe)) => {
                            assert_eq!((&s.probed, s.missing.is_empty()), (&probe.probed, true), "{what}");
                            let scanned: usize = probe.probed.iter().map(|&q| ivf.partitions()[q].len()).sum();
                            assert_eq!(s.rows_scanned, scanned, "{what}");
                        }
                        (None, None) => {}
                        other => panic!("{what}: searches differ: {other:?}"),
                    }
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, sessions.len() * 3 * 4 * 3);
    // recommend (for-you without rules) is `index::recommend::recommend`'s answer too.
    let session = ids(&["p10", "p11", "p40"]);
    let request = StreamRequest {
        scenario: Scenario::ForYou,
        session: &session,
        product: None,
        k: 10,
        rules: &no_rules,
        facts: None,
    };
    let mut cat = loaded(&bundle);
    fetch_all(&mut cat, &f, &request, 2);
    let streamed = cat.answer(&request, 2, false).unwrap();
    let reference = recommend::recommend(&runtime, &ivf, &session, 10, 2).unwrap().recommendations;
    let rows: Vec<(u32, f32)> = streamed.list.items.iter().map(|i| (i.row, i.score)).collect();
    let expected: Vec<(u32, f32)> = reference.items.iter().map(|i| (i.row, i.score)).collect();
    assert_eq!(rows, expected);
}

/// A rule on a column fetches `columns.json` (stage 1) and then answers as the whole bundle does.
#[test]
fn rules_on_columns_fetch_columns_json_and_answer_as_the_whole_bundle() {
    use omakase::data::Item;
    use omakase::export::merchandising::{columns_file, ColumnChoice};
    use omakase::runtime::ItemMeta;

    let mut bundle = bundle(6);
    // A category column in the bundle's row order: genre g0/g1/g2 by the id's number.
    let rows: Vec<ItemMeta> = serde_json::from_slice(&files(&bundle)["items.json"]).unwrap();
    let items: Vec<Item> = rows
        .iter()
        .map(|m| {
            let i: usize = m.id[1..].parse().unwrap();
            let mut metadata = serde_json::Map::new();
            metadata.insert("genre".into(), format!("g{}", i % 3).into());
            Item { id: m.id.clone(), title: m.title.clone(), description: String::new(), image: None, metadata }
        })
        .collect();
    let (columns, _) = columns_file(&items, &ColumnChoice::Auto, std::path::Path::new("items.jsonl")).unwrap();
    merchandising::attach(&mut bundle, columns, None).unwrap();
    attach_stream(&mut bundle).unwrap();
    let f = files(&bundle);
    let (runtime, ivf) = whole(&bundle);
    let p = ivf.partitions().len();
    let session = ids(&["p10", "p11", "p40"]);
    for text in [
        RuleText { filter: Some("genre=g1"), ..RuleText::default() },
        RuleText { diversity: Some("genre:2"), boost: Some("+0.3 genre=g2"), ..RuleText::default() },
    ] {
        let rules = Rules::parse(&text).unwrap();
        for nprobe in [1, p] {
            let request = StreamRequest {
                scenario: Scenario::ForYou,
                session: &session,
                product: None,
                k: 6,
                rules: &rules,
                facts: None,
            };
            let mut cat = loaded(&bundle);
            let fetched = fetch_all(&mut cat, &f, &request, nprobe);
            assert!(fetched.iter().any(|p| p == "columns.json"), "{fetched:?}");
            let streamed = cat.answer(&request, nprobe, false).unwrap();
            let compiled = runtime.compile_rules(&rules, None).unwrap();
            let request =
                Request { scenario: Scenario::ForYou, session: &session, product: None, k: 6, rules: &compiled };
            let whole = recommend::answer(&runtime, &ivf, &request, nprobe).unwrap();
            assert_eq!(streamed.list, whole.list, "{text:?} nprobe {nprobe}");
            assert_eq!(streamed.search.unwrap().probed, whole.probe.unwrap().probed);
        }
    }
}

#[test]
fn the_load_needs_no_whole_catalogue_file_and_a_request_fetches_only_its_stages() {
    let bundle = bundle(6);
    let f = files(&bundle);
    let m = &bundle.manifest;
    let mut cat = loaded(&bundle);
    let session = ids(&["p10", "p11"]);
    let rules = Rules::default();
    let request = StreamRequest {
        scenario: Scenario::ForYou,
        session: &session,
        product: None,
        k: 5,
        rules: &rules,
        facts: None,
    };
    // Stage 1: the one directory bucket (60 ids: B = 1).
    let first = cat.needs(&request, 2).unwrap();
    assert_eq!(first, vec!["ids-00000.json".to_string()]);
    let fetched = fetch_all(&mut cat, &f, &request, 2);
    assert!(
        !fetched.iter().any(|p| p == "items.json" || p == "popularity.json" || p.starts_with("explain")),
        "{fetched:?}"
    );
    // At most: the bucket, the session rows' partitions, two probed partitions' rows and metadata.
    assert!(fetched.len() <= 1 + 2 + 2 * 2, "{fetched:?}");
    let answer = cat.answer(&request, 2, false).unwrap();
    assert_eq!(answer.list.items.len(), 5);
    assert!(answer.cards.iter().all(|c| !c.title.is_empty()));
    // Every partition present after prefetching them in file order.
    let order: Vec<usize> = cat.prefetch_order().into_iter().map(|(p, _)| p).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]));
    for (_, wanted) in cat.prefetch_order() {
        for file in wanted {
            let path = cat.entry(file).unwrap().path.clone();
            cat.insert(&path, &f[&path]).unwrap();
        }
    }
    assert_eq!(cat.stats().present, m.shards.len());
}

#[test]
fn a_partial_answer_reports_missing_partitions_and_uses_only_what_is_here() {
    let bundle = bundle(6);
    let f = files(&bundle);
    let (runtime, ivf) = whole(&bundle);
    let p = ivf.partitions().len();
    let session = ids(&["p10", "p11", "p40"]);
    let rules = Rules::default();
    let request = StreamRequest {
        scenario: Scenario::ForYou,
        session: &session,
        product: None,
        k: 8,
        rules: &rules,
        facts: None,
    };
    let mut cat = loaded(&bundle);
    // Stages 1 and 2 only: the buckets and the session rows' partitions (rows, no metadata).
    for _ in 0..2 {
        for path in cat.needs(&request, p).unwrap() {
            cat.insert(&path, &f[&path]).unwrap();
        }
    }
    let err = cat.answer(&request, p, false).unwrap_err();
    assert!(matches!(err, RuntimeError::MissingFile { .. }), "{err}");
    let partial = cat.answer(&request, p, true).unwrap();
    let search = partial.search.as_ref().unwrap();
    assert_eq!(search.probed.len(), p);
    let here: Vec<usize> = (0..p).filter(|&q| cat.partition_here(q)).collect();
    let mut missing = search.missing.clone();
    missing.sort();
    assert_eq!(missing, (0..p).filter(|q| !here.contains(q)).collect::<Vec<_>>());
    assert!(partial.list.items.iter().all(|i| here.contains(&ivf.partition_of(i.row as usize).unwrap())));
    // Metadata for two partitions: the partial list is the whole list restricted to their rows.
    for q in [0, 1] {
        for file in [StreamFile::Rows(q), StreamFile::Metadata(q)] {
            let path = cat.entry(file).unwrap().path.clone();
            cat.insert(&path, &f[&path]).unwrap();
        }
    }
    let partial = cat.answer(&request, p, true).unwrap();
    let rows_here = |row: u32| [0usize, 1].contains(&ivf.partition_of(row as usize).unwrap());
    let (rows, _) = runtime.resolve(&session);
    let user = runtime.user_vector(&rows).unwrap();
    let full = recommend::top_k(&runtime, &ivf, &user, N_ITEMS, &rows, p).unwrap();
    let expected: Vec<(u32, f32)> = full.hits.into_iter().filter(|(r, _)| rows_here(*r)).take(8).collect();
    let got: Vec<(u32, f32)> = partial.list.items.iter().map(|i| (i.row, i.score)).collect();
    assert_eq!(got, expected);
    assert!(partial.search.unwrap().rows_scanned < N_ITEMS);
}

#[test]
fn tampered_or_truncated_files_are_refused_naming_the_file_and_never_used() {
    let bundle = bundle(6);
    let f = files(&bundle);
    let m = &bundle.manifest;
    let index = m.index.as_ref().unwrap();
    let mut cat = loaded(&bundle);
    let bucket = index.directory.as_ref().unwrap().files[0].path.clone();
    let candidates = [m.shards[0].file.path.clone(), index.metadata.as_ref().unwrap()[1].path.clone(), bucket.clone()];
    for path in &candidates {
        let mut tampered = f[path].clone();
        tampered[3] ^= 0x20;
        let err = cat.insert(path, &tampered).unwrap_err();
        assert!(matches!(&err, RuntimeError::Checksum { file, .. } if file == path), "{err}");
        let err = cat.insert(path, &f[path][..f[path].len() - 1]).unwrap_err();
        assert!(matches!(&err, RuntimeError::FileSize { file, .. } if file == path), "{err}");
        assert!(err.to_string().starts_with(path.as_str()), "{err}");
        assert!(!cat.has(cat.kind_of(path).unwrap()));
    }
    // Without the bucket nothing resolves: a partial for-you falls back to popular.
    let session = ids(&["p10"]);
    let rules = Rules::default();
    let request = StreamRequest {
        scenario: Scenario::ForYou,
        session: &session,
        product: None,
        k: 3,
        rules: &rules,
        facts: None,
    };
    let partial = cat.answer(&request, 2, true).unwrap();
    assert_eq!(partial.pending, session);
    assert_eq!(partial.list.source, Scenario::Popular);
    // With the good bucket and every partition but a refused one, the answer never holds its rows.
    cat.insert(&bucket, &f[&bucket]).unwrap();
    for shard in m.shards.iter().skip(1) {
        cat.insert(&shard.file.path, &f[&shard.file.path]).unwrap();
    }
    for meta in index.metadata.as_ref().unwrap() {
        cat.insert(&meta.path, &f[&meta.path]).unwrap();
    }
    let p = m.shards.len();
    let partial = cat.answer(&request, p, true).unwrap();
    let first = m.shards[0].first_row..m.shards[0].first_row + m.shards[0].rows;
    assert!(partial.list.items.iter().all(|i| !first.contains(&(i.row as usize))));
    if partial.list.source == Scenario::ForYou {
        assert_eq!(partial.search.unwrap().missing, vec![0]);
    }
    // A file of another bundle is refused by name, not by a panic.
    let err = cat.insert("items.json", &f["items.json"]).unwrap_err();
    assert!(err.to_string().starts_with("items.json"), "{err}");
}

#[test]
fn unknown_ids_are_reported_as_unknown() {
    let bundle = bundle(6);
    let f = files(&bundle);
    let mut cat = loaded(&bundle);
    let session = ids(&["nope", "p3", "also-nope"]);
    let rules = Rules::default();
    let request = StreamRequest {
        scenario: Scenario::ForYou,
        session: &session,
        product: None,
        k: 4,
        rules: &rules,
        facts: None,
    };
    fetch_all(&mut cat, &f, &request, 2);
    let answer = cat.answer(&request, 2, false).unwrap();
    assert_eq!(answer.list.unknown, ids(&["nope", "also-nope"]));
    assert!(answer.pending.is_empty());
    assert_eq!(answer.list.source, Scenario::ForYou);
    let only_unknown = ids(&["nope"]);
    let request = StreamRequest { session: &only_unknown, ..request };
    fetch_all(&mut cat, &f, &request, 2);
    let answer = cat.answer(&request, 2, false).unwrap();
    assert_eq!((answer.list.source, answer.list.unknown.clone()), (Scenario::Popular, only_unknown.clone()));
}

#[test]
fn the_memory_bound_evicts_least_recently_used_partitions_but_never_the_current_requests() {
    let bundle = bundle(6);
    let f = files(&bundle);
    let m = &bundle.manifest;
    let p = m.shards.len();
    let mut cat = loaded(&bundle);
    let session = ids(&["p10", "p11"]);
    let rules = Rules::default();
    let request = StreamRequest {
        scenario: Scenario::ForYou,
        session: &session,
        product: None,
        k: 4,
        rules: &rules,
        facts: None,
    };
    fetch_all(&mut cat, &f, &request, 1);
    let used: Vec<usize> = (0..p).filter(|&q| cat.has(StreamFile::Rows(q))).collect();
    assert!(!used.is_empty());
    // A bound of one byte: every partition inserted from now on evicts the others, but not the
    // request's (it is still the current one).
    cat.set_memory_limit(1);
    for q in (0..p).filter(|q| !used.contains(q)) {
        for file in [StreamFile::Rows(q), StreamFile::Metadata(q)] {
            let path = cat.entry(file).unwrap().path.clone();
            cat.insert(&path, &f[&path]).unwrap();
        }
        assert!(used.iter().all(|&u| cat.has(StreamFile::Rows(u))), "partition of the current request evicted");
        let others: Vec<usize> = (0..p).filter(|&o| o != q && !used.contains(&o) && cat.partition_here(o)).collect();
        assert!(others.is_empty(), "least recently used {others:?} kept over the bound");
    }
    assert!(cat.answer(&request, 1, false).is_ok());
    // A generous bound keeps everything.
    cat.set_memory_limit(usize::MAX);
    for (_, files_of) in cat.prefetch_order() {
        for file in files_of {
            let path = cat.entry(file).unwrap().path.clone();
            cat.insert(&path, &f[&path]).unwrap();
        }
    }
    assert_eq!(cat.stats().present, p);
    assert!(cat.stats().memory_bytes > 0);
}
