//! The rule engine on a small catalogue: each rule kind through the top-K the scans use, against a
//! brute-force reference (sort every admitted row by its boosted score, then take the greedy
//! diverse prefix).

use super::*;
use crate::kernels::{Admission, TopK};

/// 12 rows: `genres` cycles A, B, C (row 11 has none), `price` = row, `in_stock` = even rows
/// (row 10 unknown), `sale` on rows 3 and 7.
fn columns() -> Columns {
    let genres: Vec<String> = (0..12).map(|r| if r == 11 { "null".into() } else { (r % 3).to_string() }).collect();
    let price: Vec<String> = (0..12).map(|r| r.to_string()).collect();
    let stock: Vec<String> = (0..12).map(|r| if r == 10 { "null".into() } else { (r % 2 == 0).to_string() }).collect();
    let sale: Vec<String> = (0..12).map(|r| (r == 3 || r == 7).to_string()).collect();
    let json = format!(
        r#"{{"item_count":12,"columns":[
          {{"name":"genres","type":"category","values":["A","B","C"],"rows":[{}]}},
          {{"name":"price","type":"number","rows":[{}]}},
          {{"name":"in_stock","type":"bool","rows":[{}]}},
          {{"name":"sale","type":"bool","rows":[{}]}}]}}"#,
        genres.join(","),
        price.join(","),
        stock.join(","),
        sale.join(",")
    );
    Columns::parse(json.as_bytes(), "columns.json", 12).unwrap()
}

fn row_of(id: &str) -> Option<u32> {
    id.strip_prefix('r').and_then(|r| r.parse().ok()).filter(|&r: &u32| r < 12)
}

fn compile(text: RuleText<'_>, facts: Option<&str>) -> Result<CompiledRules, crate::RuntimeError> {
    let rules = Rules::parse(&text)?;
    let facts = facts.map(Facts::parse).transpose()?;
    CompiledRules::compile(&rules, &columns(), facts.as_ref(), 12, &row_of)
}

/// Scores fall with the row (row 0 best), so the unruled list is 0, 1, 2, …
fn scores() -> Vec<f32> {
    (0..12).map(|r| 1.0 - r as f32 * 0.05).collect()
}

fn ruled_top(rules: &CompiledRules, k: usize, excluded: &[usize]) -> Vec<usize> {
    let excluded: Vec<usize> = excluded.iter().copied().chain(rules.excluded().iter().map(|&r| r as usize)).collect();
    let excluded = excluded.as_slice();
    let mut top = match rules.admission() {
        Some(a) => TopK::ruled(k, excluded, a),
        None => TopK::with_excluded(k, excluded),
    };
    for (i, s) in scores().into_iter().enumerate() {
        if s >= top.threshold() {
            top.push(i, s);
        }
    }
    top.into_sorted().into_iter().map(|h| h.index).collect()
}

/// The reference: every admitted row by boosted score (ties to the lower row), then greedily the
/// first k whose group is not full.
fn reference(rules: &CompiledRules, k: usize, excluded: &[usize]) -> Vec<usize> {
    let mut all: Vec<(usize, f32)> = scores()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !excluded.contains(i) && rules.allows(*i as u32))
        .filter_map(|(i, s)| rules.admit(i, s).map(|s| (i, s)))
        .collect();
    all.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
    let mut out: Vec<usize> = Vec::new();
    for (i, _) in all {
        let full = rules
            .group(i)
            .is_some_and(|g| out.iter().filter(|&&o| rules.group(o) == Some(g)).count() >= rules.group_cap());
        if !full && out.len() < k {
            out.push(i);
        }
    }
    out
}

fn check(text: RuleText<'_>, facts: Option<&str>, k: usize, excluded: &[usize], expected: &[usize]) {
    let rules = compile(text, facts).unwrap();
    let got = ruled_top(&rules, k, excluded);
    assert_eq!(got, reference(&rules, k, excluded), "{text:?} against the reference");
    assert_eq!(got, expected, "{text:?}");
}

#[test]
fn no_rules_is_the_plain_top_k() {
    let rules = compile(RuleText::default(), None).unwrap();
    assert!(rules.admission().is_none());
    check(RuleText::default(), None, 4, &[1], &[0, 2, 3, 4]);
}

#[test]
fn category_number_and_bool_filters() {
    check(RuleText { filter: Some("genres=B"), ..Default::default() }, None, 3, &[], &[1, 4, 7]);
    check(RuleText { filter: Some("genres=A|C"), ..Default::default() }, None, 3, &[], &[0, 2, 3]);
    check(RuleText { filter: Some("genres!=A"), ..Default::default() }, None, 20, &[], &[1, 2, 4, 5, 7, 8, 10, 11]);
    check(RuleText { filter: Some("price=3..5"), ..Default::default() }, None, 10, &[], &[3, 4, 5]);
    check(RuleText { filter: Some("price>9"), ..Default::default() }, None, 10, &[], &[10, 11]);
    check(RuleText { filter: Some("price<=1; in_stock"), ..Default::default() }, None, 10, &[], &[0]);
    check(RuleText { filter: Some("!in_stock"), ..Default::default() }, None, 3, &[], &[1, 3, 5]);
    check(
        RuleText { filter: Some("in_stock=true|false"), ..Default::default() },
        None,
        20,
        &[],
        &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11],
    );
}

#[test]
fn a_filter_keeping_fewer_than_k_gives_what_it_keeps() {
    check(RuleText { filter: Some("price=2..3"), ..Default::default() }, None, 10, &[], &[2, 3]);
    check(RuleText { filter: Some("price>100"), ..Default::default() }, None, 10, &[], &[]);
}

#[test]
fn exclusions_leave_the_list_full() {
    check(RuleText { exclude: Some("r0 r2, unknown-id"), ..Default::default() }, None, 3, &[1], &[3, 4, 5]);
    check(RuleText { exclude: Some("r0"), filter: Some("in_stock"), ..Default::default() }, None, 2, &[], &[2, 4]);
}

#[test]
fn boosts_lift_and_demote() {
    // +0.3 on sale: 3 → 0.85 + 0.3 = 1.15 leads; 7 → 0.65 + 0.3 = 0.95 ties row 1, which is lower.
    check(RuleText { boost: Some("+0.3 sale"), ..Default::default() }, None, 4, &[], &[3, 0, 1, 7]);
    // A demotion of every A row (0, 3, 6, 9): -0.5.
    check(RuleText { boost: Some("-0.5 genres=A"), ..Default::default() }, None, 4, &[], &[1, 2, 4, 5]);
    // Boosts add up; with a filter.
    check(
        RuleText { boost: Some("+0.3 sale; +0.2 genres=B"), filter: Some("price>=4"), ..Default::default() },
        None,
        3,
        &[],
        &[7, 4, 5],
    );
}

#[test]
fn diversity_caps_each_group() {
    check(RuleText { diversity: Some("genres:1"), ..Default::default() }, None, 5, &[], &[0, 1, 2, 11]);
    check(RuleText { diversity: Some("genres:2"), ..Default::default() }, None, 7, &[], &[0, 1, 2, 3, 4, 5, 11]);
    check(RuleText { diversity: Some("in_stock:2"), ..Default::default() }, None, 5, &[], &[0, 1, 2, 3, 10]);
    // With a boost reordering within a group.
    check(
        RuleText { diversity: Some("genres:1"), boost: Some("+0.5 sale"), ..Default::default() },
        None,
        3,
        &[],
        &[3, 7, 2],
    );
}

#[test]
fn facts_replace_bundle_values_and_add_fields() {
    // Row 0 sold out, row 1 back in stock; price of row 2 changed; a field the bundle lacks.
    let facts =
        r#"{"in_stock":{"r0":false,"r1":true,"nobody":true},"price":{"r2":100},"label":{"r5":"new","r6":["new","x"]}}"#;
    check(RuleText { filter: Some("in_stock"), ..Default::default() }, Some(facts), 3, &[], &[1, 2, 4]);
    check(RuleText { filter: Some("price<50"), ..Default::default() }, Some(facts), 3, &[], &[0, 1, 3]);
    check(RuleText { filter: Some("label=new"), ..Default::default() }, Some(facts), 5, &[], &[5, 6]);
    check(RuleText { boost: Some("+1 label=new"), ..Default::default() }, Some(facts), 2, &[], &[5, 6]);
    // Row 2 (price 100 now) has no label: no group, no cap; 6 shares 5's label.
    check(
        RuleText { diversity: Some("label:1"), filter: Some("price>=5"), ..Default::default() },
        Some(facts),
        3,
        &[],
        &[2, 5, 7],
    );
}

#[test]
fn rules_on_fields_the_bundle_lacks_or_of_the_wrong_type_name_the_attribute() {
    let cases = [
        (RuleText { filter: Some("colour=red"), ..Default::default() }, "filter", "no field \"colour\""),
        (RuleText { boost: Some("+1 colour=red"), ..Default::default() }, "boost", "no field \"colour\""),
        (RuleText { diversity: Some("colour:2"), ..Default::default() }, "diversity", "no field \"colour\""),
        (RuleText { diversity: Some("price:2"), ..Default::default() }, "diversity", "number field"),
        (RuleText { filter: Some("genres"), ..Default::default() }, "filter", "category field"),
        (RuleText { filter: Some("genres>3"), ..Default::default() }, "filter", "compare numbers"),
        (RuleText { filter: Some("price=cheap"), ..Default::default() }, "filter", "not a number or a range"),
        (RuleText { filter: Some("in_stock=yes"), ..Default::default() }, "filter", "not true or false"),
    ];
    for (text, attribute, expected) in cases {
        let e = compile(text, None).unwrap_err();
        assert!(matches!(&e, crate::RuntimeError::Rule { attribute: a, .. } if a == attribute), "{e:?}");
        assert!(e.to_string().contains(expected), "{e}");
    }
    let e = compile(RuleText::default(), Some(r#"{"price":{"r1":"cheap"}}"#)).unwrap_err();
    assert!(e.to_string().starts_with("facts: ") && e.to_string().contains("bundle's column is number"), "{e}");
}

/// `CompiledRules::scan` over a store: a narrow filter scans only its rows (gathered), a wide one
/// every row; both give the brute-force list, with scores equal bit for bit to the full scan's.
#[test]
fn sparse_and_dense_scans_agree_with_every_score() {
    use crate::manifest::EmbeddingDtype;
    use crate::store::ItemStore;
    let n = 500;
    for dtype in [EmbeddingDtype::Int8, EmbeddingDtype::F16] {
        let mut store = ItemStore::new(dtype, 24);
        let mut seed = 17u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        (0..n).for_each(|_| store.push(&(0..24).map(|_| next()).collect::<Vec<_>>()));
        let query: Vec<f32> = (0..24).map(|_| next()).collect();
        let norm = query.iter().map(|v| v * v).sum::<f32>().sqrt();
        let query: Vec<f32> = query.iter().map(|v| v / norm).collect();
        let mut all = vec![0f32; n];
        store.score_all(&query, &mut all);
        let json = format!(
            r#"{{"item_count":{n},"columns":[{{"name":"c","type":"category","values":["a","b","c","d","e","f","g","h","i","j"],"rows":[{}]}}]}}"#,
            (0..n).map(|r| (r * 7 % 10).to_string()).collect::<Vec<_>>().join(",")
        );
        let columns = Columns::parse(json.as_bytes(), "columns.json", n).unwrap();
        for filter in ["c=b", "c!=b", "c=a|b|c|d|e|f|g"] {
            let rules =
                Rules::parse(&RuleText { filter: Some(filter), boost: Some("+0.05 c=a"), ..Default::default() })
                    .unwrap();
            let compiled = CompiledRules::compile(&rules, &columns, None, n, &|_| None).unwrap();
            let mut top = TopK::ruled(10, &[3], compiled.admission().unwrap());
            compiled.scan(&store, &query, &mut top);
            let got: Vec<(usize, f32)> = top.into_sorted().into_iter().map(|h| (h.index, h.score)).collect();
            let mut reference: Vec<(usize, f32)> =
                (0..n).filter(|&r| r != 3).filter_map(|r| compiled.admit(r, all[r]).map(|s| (r, s))).collect();
            reference.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
            reference.truncate(10);
            assert_eq!(got, reference, "{dtype:?} {filter}");
        }
    }
}
