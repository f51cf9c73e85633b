//! Merchandising (issue 16, points 1 and 2) on the fixture bundle with columns and popularity, as
//! export writes them: each rule kind and scenario through `Runtime::answer` (the code the browser
//! runs), the ruled scan against a brute-force reference over every item's score, popularity
//! computed at export, the manifest's version, and `omakase recommend`'s flags.

mod bundle_fixture;

use std::collections::HashMap;
use std::path::Path;

use bundle_fixture::{cli_json, file_map, fixture, items, omakase, N_ITEMS};
use omakase::data::{Dataset, Event, Item, UserHistory};
use omakase::export::merchandising::{self, ColumnChoice};
use omakase::export::{write_atomic_dir, Bundle};
use omakase::runtime::manifest::MAX_SHARD_BYTES;
use omakase::runtime::scenario::Fallback;
use omakase::runtime::{
    CompiledRules, EmbeddingDtype, Facts, Manifest, Request, RuleText, Rules, Runtime, RuntimeError, Scenario,
    WeightsDtype,
};
use serde_json::{json, Value};

const GENRES: [&str; 3] = ["Books", "Music", "Games"];
const DAY: f64 = 86_400.0;

/// The fixture's items with a genre (cycling; every 10th also "Sale"), a price (= i), in_stock
/// (false for i % 4 == 0) and a free-text note of 300+ values (never a column on its own).
fn shop_items() -> Vec<Item> {
    items()
        .into_iter()
        .enumerate()
        .map(|(i, mut item)| {
            let mut genres = vec![json!(GENRES[i % 3])];
            if i % 10 == 9 {
                genres.push(json!("Sale"));
            }
            item.metadata.insert("genres".into(), Value::Array(genres));
            item.metadata.insert("price".into(), json!(i));
            item.metadata.insert("in_stock".into(), json!(i % 4 != 0));
            item.metadata.insert("url".into(), json!(format!("/p/{i}")));
            item
        })
        .collect()
}

/// Interactions: p20 was viewed 6 times 60 days before the end, p10 3 times in the last day, p30
/// twice 8 days before; one event per day of p0..p5 as filler at the start.
fn shop_dataset() -> Dataset {
    let at = |item: u32, t: f64| Event { item, timestamp: t, rating: None };
    let end = 100.0 * DAY;
    let mut events = vec![];
    events.extend((0..6).map(|_| at(20, end - 60.0 * DAY)));
    events.extend((0..3).map(|_| at(10, end - 0.5 * DAY)));
    events.extend((0..2).map(|_| at(30, end - 8.0 * DAY)));
    events.extend((0..6).map(|i| at(i, i as f64 * DAY)));
    events.push(at(40, end));
    let users = vec![UserHistory { id: "u".into(), events }];
    Dataset::new(None, shop_items(), users)
}

fn shop_bundle() -> Bundle {
    let mut bundle = fixture().bundle(WeightsDtype::Q8_0, EmbeddingDtype::Int8, MAX_SHARD_BYTES);
    let columns = merchandising::columns_file(&shop_items(), &ColumnChoice::Auto, Path::new("items.jsonl")).unwrap().0;
    let popularity = merchandising::popularity_file(&shop_dataset(), 7.0);
    merchandising::attach(&mut bundle, columns, Some(popularity)).unwrap();
    bundle
}

fn runtime() -> Runtime {
    let bundle = shop_bundle();
    let files: HashMap<String, Vec<u8>> = file_map(&bundle);
    Runtime::load(&files["manifest.json"], &files).unwrap()
}

fn rules(runtime: &Runtime, text: RuleText<'_>, facts: Option<&str>) -> CompiledRules {
    let facts = facts.map(|f| Facts::parse(f).unwrap());
    runtime.compile_rules(&Rules::parse(&text).unwrap(), facts.as_ref()).unwrap()
}

fn ids(list: &omakase::runtime::List) -> Vec<&str> {
    list.items.iter().map(|i| i.id.as_str()).collect()
}

fn session(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn answer(
    runtime: &Runtime,
    scenario: Scenario,
    views: &[&str],
    product: Option<&str>,
    k: usize,
    r: &CompiledRules,
) -> omakase::runtime::List {
    let views = session(views);
    runtime.answer(&Request { scenario, session: &views, product, k, rules: r }).unwrap()
}

fn row(id: &str) -> usize {
    id[1..].parse().unwrap()
}

#[test]
fn export_writes_typed_columns_and_version_2() {
    let bundle = shop_bundle();
    let manifest = &bundle.manifest;
    assert_eq!(manifest.format_version, 2);
    let files = file_map(&bundle);
    let columns: Value = serde_json::from_slice(&files["columns.json"]).unwrap();
    let kinds: Vec<(String, String)> = columns["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["type"].as_str().unwrap().to_string()))
        .collect();
    // url is never a column; fields sorted by name.
    assert_eq!(
        kinds,
        vec![
            ("genres".into(), "category".into()),
            ("in_stock".into(), "bool".into()),
            ("price".into(), "number".into())
        ]
    );
    // A bundle without the new files keeps version 1 (what deployed runtimes read).
    let plain = fixture().bundle(WeightsDtype::Q8_0, EmbeddingDtype::Int8, MAX_SHARD_BYTES);
    assert_eq!(plain.manifest.format_version, 1);
    // Version 1 cannot carry columns: refused naming the field.
    let mut m: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    m["format_version"] = 1.into();
    let e = Manifest::from_json(&serde_json::to_vec(&m).unwrap()).unwrap_err().to_string();
    assert!(e.contains("`columns`") && e.contains("needs format_version 2"), "{e}");
    // A named field that cannot be a column is bad input naming it.
    let e = merchandising::columns_file(
        &shop_items(),
        &ColumnChoice::Named(vec!["colour".into()]),
        Path::new("d/items.jsonl"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("d/items.jsonl") && e.contains("--columns colour") && e.contains("no item has"), "{e}");
}

#[test]
fn popularity_is_computed_at_export_with_time_decay() {
    let p = merchandising::popularity_file(&shop_dataset(), 7.0);
    assert_eq!(p.count[20], 6);
    assert_eq!(p.count[10], 3);
    assert_eq!(p.reference_time, 100.0 * DAY);
    // 6 views 60 days old weigh 6 · 0.5^(60/7) ≈ 0.016; 3 views half a day old ≈ 2.86.
    assert!(p.trending[10] > 2.8 && p.trending[20] < 0.02, "{:?}", (p.trending[10], p.trending[20]));
    let runtime = runtime();
    let none = CompiledRules::none();
    let list = answer(&runtime, Scenario::Popular, &[], None, 4, &none);
    // p10: 3 · 0.5^(0.5/7) ≈ 2.86; p40: 1 on the last day; p30: 2 · 0.5^(8/7) ≈ 0.91; p20 ≈ 0.016.
    assert_eq!(ids(&list), vec!["p10", "p40", "p30", "p20"]);
    assert!(list.items.iter().all(|i| i.explanation.is_none()));
    assert_eq!(list.items[0].score, 1.0);
}

#[test]
fn for_you_without_history_is_the_popular_list_and_says_so() {
    let runtime = runtime();
    let none = CompiledRules::none();
    for views in [&[][..], &["ghost"][..]] {
        let list = answer(&runtime, Scenario::ForYou, views, None, 3, &none);
        assert_eq!(
            (list.scenario, list.source, list.fallback),
            (Scenario::ForYou, Scenario::Popular, Some(Fallback::NoHistory))
        );
        assert_eq!(ids(&list), vec!["p10", "p40", "p30"]);
        assert_eq!(list.unknown, session(views));
    }
}

#[test]
fn similar_lists_the_products_neighbours_and_unknown_products_fall_back() {
    let runtime = runtime();
    let none = CompiledRules::none();
    let list = answer(&runtime, Scenario::Similar, &[], Some("p5"), 5, &none);
    assert_eq!((list.source, list.fallback), (Scenario::Similar, None));
    assert_eq!(list.items.len(), 5);
    let p5 = runtime.item_vector(5).unwrap();
    let mut all: Vec<(usize, f32)> = (0..N_ITEMS)
        .filter(|&r| r != 5)
        .map(|r| {
            let v = runtime.items().unit_vector(r);
            let norm = p5.iter().map(|x| x * x).sum::<f32>().sqrt();
            (r, v.iter().zip(&p5).map(|(a, b)| a * b / norm).sum())
        })
        .collect();
    all.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap());
    let expected: Vec<usize> = all[..5].iter().map(|a| a.0).collect();
    assert_eq!(list.items.iter().map(|i| row(&i.id)).collect::<Vec<_>>(), expected);
    for item in &list.items {
        let e = item.explanation.as_ref().unwrap();
        assert_eq!(e.session_id, "p5");
        // The fixture's p5 has text; its neighbours' shares come from the explain shards.
        assert!(e.text_similarity.is_some() || !bundle_fixture::has_text(row(&item.id)));
    }
    let unknown = answer(&runtime, Scenario::Similar, &["p1"], Some("new-product"), 3, &none);
    assert_eq!((unknown.source, unknown.fallback), (Scenario::Popular, Some(Fallback::UnknownProduct)));
    assert_eq!(unknown.items.len(), 3);
    let none_given = answer(&runtime, Scenario::Similar, &[], None, 3, &none);
    assert_eq!(none_given.fallback, Some(Fallback::NoProduct));
}

#[test]
fn recently_viewed_is_the_views_latest_first_under_the_filter() {
    let runtime = runtime();
    let none = CompiledRules::none();
    let list =
        answer(&runtime, Scenario::RecentlyViewed, &["p1", "p2", "ghost", "p3", "p2", "p6"], Some("p6"), 10, &none);
    assert_eq!(ids(&list), vec!["p2", "p3", "p1"]);
    assert_eq!(list.unknown, vec!["ghost"]);
    let in_stock =
        rules(&runtime, RuleText { filter: Some("in_stock"), exclude: Some("p3"), ..Default::default() }, None);
    let list = answer(&runtime, Scenario::RecentlyViewed, &["p1", "p4", "p3", "p2"], None, 10, &in_stock);
    assert_eq!(ids(&list), vec!["p2", "p1"]);
}

/// Every item's score for the session, by the runtime's own kernels.
fn all_scores(runtime: &Runtime, views: &[&str]) -> Vec<f32> {
    let (rows, _) = runtime.resolve(&session(views));
    let user = runtime.user_vector(&rows).unwrap();
    let mut scores = vec![0f32; runtime.item_count()];
    runtime.score_all(&user, &mut scores).unwrap();
    scores
}

/// Whether the reference admits a row, and its boost.
type Admit = dyn Fn(usize) -> Option<f32>;

#[test]
fn ruled_for_you_equals_a_brute_force_reference() {
    let runtime = runtime();
    let views = ["p1", "p7", "p4"];
    let scores = all_scores(&runtime, &views);
    let cases: [(RuleText, &Admit); 4] = [
        (RuleText { filter: Some("genres=Books|Games; price=10..50"), ..Default::default() }, &|r| {
            ((r % 3 != 1) && (10..=50).contains(&r)).then_some(0.0)
        }),
        (RuleText { filter: Some("in_stock"), boost: Some("+0.3 genres=Sale"), ..Default::default() }, &|r| {
            (r % 4 != 0).then_some(if r % 10 == 9 { 0.3 } else { 0.0 })
        }),
        (RuleText { filter: Some("price<8"), ..Default::default() }, &|r| (r < 8).then_some(0.0)),
        (RuleText { exclude: Some("p0 p2,p3"), boost: Some("-1 genres=Music"), ..Default::default() }, &|r| {
            (r > 3 || r == 1).then_some(if r % 3 == 1 { -1.0 } else { 0.0 })
        }),
    ];
    for (text, admit) in cases {
        let r = rules(&runtime, text, None);
        let list = answer(&runtime, Scenario::ForYou, &views, None, 10, &r);
        let mut reference: Vec<(usize, f32)> = (0..N_ITEMS)
            .filter(|&i| ![1, 7, 4].contains(&i))
            .filter_map(|i| admit(i).map(|b| (i, scores[i] + b)))
            .collect();
        reference.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
        reference.truncate(10);
        assert_eq!(
            list.items.iter().map(|i| row(&i.id)).collect::<Vec<_>>(),
            reference.iter().map(|a| a.0).collect::<Vec<_>>(),
            "{text:?}"
        );
        for (item, (_, s)) in list.items.iter().zip(&reference) {
            assert!((item.score - s).abs() < 1e-6);
            assert!(item.explanation.is_some());
        }
    }
    // A filter keeping fewer than k: every kept item, nothing else (p5, p6 in stock, below 8: p1..p7 less the views and p4's multiples).
    let r = rules(&runtime, RuleText { filter: Some("price<8; in_stock"), ..Default::default() }, None);
    let list = answer(&runtime, Scenario::ForYou, &views, None, 10, &r);
    let mut got: Vec<usize> = list.items.iter().map(|i| row(&i.id)).collect();
    got.sort();
    assert_eq!(got, vec![2, 3, 5, 6]);
}

#[test]
fn pins_take_their_place_and_bad_pins_are_dropped_with_a_reason() {
    let runtime = runtime();
    let views = ["p1", "p7"];
    let plain = answer(&runtime, Scenario::ForYou, &views, None, 5, &CompiledRules::none());
    let text = RuleText { pin: Some("p40@2 p41@99 p1@1 nope@1 p8@3"), filter: Some("price!=8"), ..Default::default() };
    let r = rules(&runtime, text, None);
    let list = answer(&runtime, Scenario::ForYou, &views, None, 5, &r);
    assert_eq!(list.items.len(), 5);
    assert_eq!(list.items[1].id, "p40");
    assert!(list.items[1].pinned);
    // A pin beyond the list's length ends it.
    assert_eq!(list.items[4].id, "p41");
    let scanned: Vec<&str> = list.items.iter().filter(|i| !i.pinned).map(|i| i.id.as_str()).collect();
    let plain_ids: Vec<&str> =
        ids(&plain).into_iter().filter(|id| !["p40", "p41", "p8"].contains(id)).take(3).collect();
    assert_eq!(scanned, plain_ids);
    let dropped: Vec<(&str, &str)> = list.dropped_pins.iter().map(|d| (d.id.as_str(), d.reason.as_str())).collect();
    assert_eq!(
        dropped,
        vec![
            ("p1", "excluded from this list (viewed, or this page's product)"),
            ("nope", "not in the catalogue"),
            ("p8", "kept out by the filter or exclude"),
        ]
    );
    // Two pins at one position keep their order; more pins than places: the first k positions win.
    let r = rules(&runtime, RuleText { pin: Some("p10@1 p11@1 p12@2"), ..Default::default() }, None);
    let list = answer(&runtime, Scenario::Popular, &[], None, 2, &r);
    assert_eq!(ids(&list), vec!["p10", "p11"]);
    assert_eq!(list.dropped_pins[0].id, "p12");
}

#[test]
fn diversity_and_facts_apply_to_every_scenario() {
    let runtime = runtime();
    let r = rules(&runtime, RuleText { diversity: Some("genres:1"), ..Default::default() }, None);
    for scenario in [Scenario::ForYou, Scenario::Similar, Scenario::Popular] {
        let list = answer(&runtime, scenario, &["p1", "p2"], Some("p3"), 10, &r);
        // Three genres (first values), one each.
        assert_eq!(list.items.len(), 3, "{scenario:?}");
        let mut firsts: Vec<usize> = list.items.iter().map(|i| row(&i.id) % 3).collect();
        firsts.sort();
        assert_eq!(firsts, vec![0, 1, 2]);
    }
    // Facts: p10 (the most popular) sold out, p22 on sale, a field the bundle lacks.
    let facts = r#"{"in_stock": {"p10": false}, "label": {"p22": "new"}}"#;
    let r = rules(
        &runtime,
        RuleText { filter: Some("in_stock"), boost: Some("+2 label=new"), ..Default::default() },
        Some(facts),
    );
    let list = answer(&runtime, Scenario::Popular, &[], None, 2, &r);
    assert_eq!(ids(&list), vec!["p22", "p30"]);
}

#[test]
fn rules_on_fields_the_bundle_lacks_name_the_attribute() {
    let runtime = runtime();
    let parsed = Rules::parse(&RuleText { filter: Some("colour=red"), ..Default::default() }).unwrap();
    let e = runtime.compile_rules(&parsed, None).unwrap_err();
    assert!(matches!(&e, RuntimeError::Rule { attribute, .. } if attribute == "filter"), "{e:?}");
    assert!(e.to_string().contains("genres (category), in_stock (bool), price (number)"), "{e}");
    assert!(
        matches!(Scenario::parse("trending"), Err(RuntimeError::Rule { attribute, .. }) if attribute == "scenario")
    );
}

// ---- the CLI ---------------------------------------------------------------------------------

#[test]
fn recommend_takes_the_same_rules_and_scenarios_as_the_element() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    write_atomic_dir(&dir, &shop_bundle().files).unwrap();
    let facts = tmp.path().join("facts.json");
    std::fs::write(&facts, r#"{"in_stock": {"p10": false}}"#).unwrap();
    let d = dir.to_str().unwrap();
    let runtime = runtime();
    // The same list as the runtime's answer under the same text.
    let text = RuleText {
        filter: Some("in_stock; price>=5"),
        boost: Some("+0.2 genres=Sale"),
        pin: Some("p33@2"),
        diversity: Some("genres:3"),
        exclude: Some("p9"),
    };
    let r = rules(&runtime, text, Some(r#"{"in_stock": {"p10": false}}"#));
    let expected = answer(&runtime, Scenario::ForYou, &["p1", "p7"], None, 8, &r);
    let json = cli_json(
        d,
        &[
            "--session",
            "p1,p7",
            "--k",
            "8",
            "--filter",
            "in_stock; price>=5",
            "--boost",
            "+0.2 genres=Sale",
            "--pin",
            "p33@2",
            "--diversity",
            "genres:3",
            "--exclude",
            "p9",
            "--facts",
            facts.to_str().unwrap(),
        ],
    );
    let got: Vec<&str> =
        json["recommendations"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(got, ids(&expected));
    assert_eq!(json["recommendations"][1]["pinned"], true);
    // Scenarios.
    let json = cli_json(d, &["--scenario", "popular", "--k", "2"]);
    assert_eq!(json["recommendations"][0]["id"], "p10");
    assert_eq!(json["recommendations"][0]["because"], Value::Null);
    let json = cli_json(d, &["--k", "2"]);
    assert_eq!((json["source"].as_str(), json["fallback"].as_str()), (Some("popular"), Some("no-history")));
    let json = cli_json(d, &["--scenario", "similar", "--product", "p5", "--k", "3"]);
    assert_eq!(json["recommendations"][0]["because"]["session_item"], "p5");
    let json = cli_json(d, &["--scenario", "recently-viewed", "--session", "p1,p2,p3"]);
    assert_eq!(json["recommendations"].as_array().unwrap().len(), 3);
    // Bad input names the flag (or the file), exit 2.
    for (args, expected) in [
        (vec!["--scenario", "trending"], "--scenario: \"trending\" is not one of"),
        (vec!["--filter", "price<cheap"], "--filter: `price<cheap`"),
        (vec!["--filter", "colour=red"], "--filter: the bundle has no field \"colour\""),
        (vec!["--boost", "on_sale"], "--boost: `on_sale`"),
        (vec!["--pin", "p1"], "--pin: `p1`"),
        (vec!["--diversity", "price:2"], "--diversity: \"price\" is a number field"),
    ] {
        let mut all = vec!["recommend", "--bundle", d];
        all.extend(args.iter());
        let out = omakase(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    std::fs::write(&facts, r#"{"price": {"p1": "cheap"}}"#).unwrap();
    let out = omakase(&["recommend", "--bundle", d, "--facts", facts.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("--facts: field \"price\" holds category values"), "{stderr}");
}

/// ML-100K's year holds "V" and "unkonwn" on two of 1,682 films: an automatic number column keeps
/// the field without those items' values and says which they are; more strays, or a named column,
/// are not let through.
#[test]
fn a_stray_token_in_a_numeric_field_is_left_out_of_its_column_and_named() {
    use omakase::runtime::rules::columns::{Cell, ColumnKind};
    let base = items();
    let shop = |strays: &[usize]| -> Vec<Item> {
        (0..200)
            .map(|i| {
                let mut item = base[i % base.len()].clone();
                item.id = format!("y{i}");
                let year = if strays.contains(&i) { json!("V") } else { json!(1900 + i) };
                item.metadata.insert("year".into(), year);
                item
            })
            .collect()
    };
    let (columns, notes) =
        merchandising::columns_file(&shop(&[7]), &ColumnChoice::Auto, Path::new("items.jsonl")).unwrap();
    let year = columns.unwrap().columns.into_iter().find(|c| c.name == "year").expect("a year column");
    assert_eq!(year.kind, ColumnKind::Number);
    assert_eq!(year.rows[7], None);
    assert_eq!(year.rows[8], Some(Cell::Number(1908.0)));
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("year") && notes[0].contains("\"y7\"") && notes[0].contains("\"V\""), "{notes:?}");
    // Three strays in 200 items (1.5 %): a field of mixed types, no column.
    let (columns, notes) =
        merchandising::columns_file(&shop(&[1, 2, 3]), &ColumnChoice::Auto, Path::new("items.jsonl")).unwrap();
    assert!(columns.is_none_or(|c| c.columns.iter().all(|c| c.name != "year")) && notes.is_empty());
    // Named, the field must have one type.
    let named = ColumnChoice::Named(vec!["year".into()]);
    let e = merchandising::columns_file(&shop(&[7]), &named, Path::new("d/items.jsonl")).unwrap_err().to_string();
    assert!(e.contains("--columns year") && e.contains("\"y7\""), "{e}");
}
