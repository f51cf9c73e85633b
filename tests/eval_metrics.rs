//! The evaluation harness: hand-computed metric values, the tie rule, masking, bad scorer output,
//! the report JSON, and the popularity baseline on MovieLens-100K (ml100k-mm from `../shared`, else the
//! recbole wheel's, `common::ml100k`) against RecBole's reference.

mod common;

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use omakase::data::load_dir;
use omakase::data::split::TestCase;
use omakase::eval::{evaluate, EvalError, EvalPlan, EvalProtocol, Metrics, Popularity, ProtocolResult, Report, Scorer};

/// Returns a fixed score row per history (histories are unique in these tests).
struct FixedRows {
    rows: HashMap<Vec<u32>, Vec<f32>>,
}

impl FixedRows {
    fn new(cases: &[(Vec<u32>, Vec<f32>)]) -> Self {
        FixedRows { rows: cases.iter().cloned().collect() }
    }
}

impl Scorer for FixedRows {
    fn name(&self) -> &str {
        "fixed"
    }

    fn score_batch(&self, histories: &[&[u32]]) -> Result<Tensor, EvalError> {
        let rows: Vec<f32> = histories.iter().flat_map(|h| self.rows[*h].clone()).collect();
        let n = rows.len() / histories.len().max(1);
        Ok(Tensor::from_vec(rows, (histories.len(), n), &Device::Cpu)?)
    }
}

fn case(user: u32, history: Vec<u32>, target: u32) -> TestCase {
    TestCase { user, history, target }
}

/// A row over `n` items where `target` has exactly `ahead` items scoring strictly higher.
fn row_with_rank(n: usize, target: usize, ahead: usize) -> Vec<f32> {
    let mut row = vec![0.0; n];
    row[target] = 0.5;
    for (placed, j) in (0..n).filter(|&j| j != target).enumerate() {
        if placed < ahead {
            row[j] = 1.0;
        }
    }
    row
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn hand_computed_metrics_for_single_ranks() {
    let n = 100;
    // (rank, recall@10, ndcg@10, recall@50, ndcg@50, mrr@10)
    let expected = [
        (1, 1.0, 1.0, 1.0, 1.0, 1.0),
        (3, 1.0, 1.0 / 4f64.log2(), 1.0, 0.5, 1.0 / 3.0),
        (10, 1.0, 1.0 / 11f64.log2(), 1.0, 1.0 / 11f64.log2(), 0.1),
        (11, 0.0, 0.0, 1.0, 1.0 / 12f64.log2(), 0.0),
        (51, 0.0, 0.0, 0.0, 0.0, 0.0),
    ];
    for (rank, r10, n10, r50, n50, mrr10) in expected {
        let history = vec![99];
        let scorer = FixedRows::new(&[(history.clone(), row_with_rank(n, 7, rank - 1))]);
        let eval = evaluate(&scorer, &[case(0, history, 7)], n, 4).unwrap();
        assert_eq!(eval.ranks, vec![rank]);
        let m = eval.metrics();
        let want = Metrics { recall_at_10: r10, ndcg_at_10: n10, recall_at_50: r50, ndcg_at_50: n50, mrr_at_10: mrr10 };
        for ((name, got), (_, want)) in m.named().iter().zip(want.named()) {
            assert!(close(*got, want), "rank {rank}, {name}: got {got}, want {want}");
        }
    }
}

#[test]
fn metrics_are_means_over_cases_across_batches() {
    let n = 60;
    let cases: Vec<(Vec<u32>, Vec<f32>)> = [(vec![1], 0usize), (vec![2], 2), (vec![3], 20)]
        .iter()
        .map(|(h, ahead)| (h.clone(), row_with_rank(n, 0, *ahead)))
        .collect();
    let scorer = FixedRows::new(&cases);
    let tests: Vec<TestCase> = cases.iter().enumerate().map(|(u, (h, _))| case(u as u32, h.clone(), 0)).collect();
    // Batch 2 over 3 cases: a full batch and a partial one.
    let eval = evaluate(&scorer, &tests, n, 2).unwrap();
    assert_eq!(eval.ranks, vec![1, 3, 21]);
    let m = eval.metrics();
    assert!(close(m.recall_at_10, 2.0 / 3.0));
    assert!(close(m.ndcg_at_10, (1.0 + 0.5) / 3.0));
    assert!(close(m.recall_at_50, 1.0));
    assert!(close(m.ndcg_at_50, (1.0 + 0.5 + 1.0 / 22f64.log2()) / 3.0));
    assert!(close(m.mrr_at_10, (1.0 + 1.0 / 3.0) / 3.0));
    // Same scores ⇒ same bits.
    assert_eq!(evaluate(&scorer, &tests, n, 3).unwrap(), eval);
}

#[test]
fn ties_rank_the_target_after_every_equal_item() {
    // Target 4 ties with items 0 and 6, item 2 is above: pessimistic rank 1 + 1 + 2 = 4,
    // whatever the items' indices.
    let row = vec![0.3, 0.1, 0.9, 0.1, 0.3, 0.0, 0.3, 0.2];
    let scorer = FixedRows::new(&[(vec![1], row)]);
    let eval = evaluate(&scorer, &[case(0, vec![1], 4)], 8, 1).unwrap();
    assert_eq!(eval.ranks, vec![4]);

    // A constant scorer cannot look good: every target ranks last, every metric is 0.
    let n = 80;
    let histories: Vec<Vec<u32>> = (0..5).map(|u| vec![u]).collect();
    let constant = FixedRows::new(&histories.iter().map(|h| (h.clone(), vec![1.0; n])).collect::<Vec<_>>());
    let tests: Vec<TestCase> =
        histories.iter().enumerate().map(|(u, h)| case(u as u32, h.clone(), u as u32 * 7)).collect();
    let eval = evaluate(&constant, &tests, n, 2).unwrap();
    assert_eq!(eval.ranks, vec![n; 5]);
    assert_eq!(eval.metrics(), Metrics::default());
}

#[test]
fn masking_removes_history_but_never_the_target() {
    // Scores: item 5 (target) at 0.5; items 0..4 above it. History: 0, 1, 1 (repeated), 5 (the target,
    // seen before), 7 (below the target: removing it changes nothing).
    let row = vec![0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.1, 0.2];
    let history = vec![0, 1, 1, 5, 7];
    let scorer = FixedRows::new(&[(history.clone(), row)]);
    let eval = evaluate(&scorer, &[case(0, history, 5)], 8, 1).unwrap();
    assert_eq!(eval.ranks, vec![6]);
    // 0 and 1 removed once each; the target stays a candidate.
    assert_eq!(eval.ranks_masked, vec![4]);
    let masked = eval.metrics_masked();
    assert!(close(masked.ndcg_at_10, 1.0 / 5f64.log2()));
    assert!(close(masked.mrr_at_10, 0.25));
}

#[test]
fn bad_scorer_output_and_bad_cases_are_named_errors() {
    let scorer = FixedRows::new(&[(vec![1], vec![0.0, 1.0, 2.0])]);
    let err = evaluate(&scorer, &[case(3, vec![1], 0)], 4, 1).unwrap_err();
    assert!(matches!(err, EvalError::ScoreShape { batch: 1, n_items: 4, .. }), "{err}");
    assert!(err.to_string().contains("fixed"), "{err}");

    let nan = FixedRows::new(&[(vec![1], vec![f32::NAN, 1.0, 2.0])]);
    let err = evaluate(&nan, &[case(3, vec![1], 0)], 3, 1).unwrap_err();
    assert!(matches!(err, EvalError::NanTargetScore { user: 3, item: 0, .. }), "{err}");

    let err = evaluate(&scorer, &[case(9, vec![1, 3], 0)], 3, 1).unwrap_err();
    assert!(matches!(err, EvalError::ItemOutOfRange { user: 9, field: "history", item: 3, n_items: 3 }), "{err}");
    let err = evaluate(&scorer, &[case(9, vec![1], 5)], 3, 1).unwrap_err();
    assert!(matches!(err, EvalError::ItemOutOfRange { field: "target", item: 5, .. }), "{err}");
}

#[test]
fn report_json_follows_the_contract() {
    let scorer = FixedRows::new(&[(vec![1], row_with_rank(60, 0, 2))]);
    let plan_result = |s: &dyn Scorer| ProtocolResult {
        primary: evaluate(s, &[case(0, vec![1], 0)], 60, 8).unwrap(),
        comparison: None,
    };
    let mut report = Report::new(EvalProtocol::Warm, "tiny", 60, &plan_result(&scorer));
    report.add_baseline(&plan_result(&scorer));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["protocol"], "warm");
    assert_eq!(json["dataset"], "tiny");
    assert_eq!(json["users"], 1);
    let keys = ["recall@10", "ndcg@10", "recall@50", "ndcg@50", "mrr@10"];
    for section in
        [&json["metrics"], &json["metrics_masked"], &json["baselines"]["fixed"], &json["baselines_masked"]["fixed"]]
    {
        let obj = section.as_object().unwrap_or_else(|| panic!("not an object: {section}"));
        assert_eq!(
            obj.keys().map(String::as_str).collect::<std::collections::BTreeSet<_>>(),
            keys.into_iter().collect()
        );
    }
    assert_eq!(json["metrics"]["mrr@10"].as_f64().unwrap(), 1.0 / 3.0);
    assert!(json.get("warm").is_none() && json.get("cold_warm_ratio").is_none());
    let back: Report = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);
    let table = report.to_table();
    eprintln!("{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "title, header, model, one baseline");

    // The paired comparison: a baseline identical to the model differs by exactly 0, not clearly.
    let mut compared = Report::new(EvalProtocol::Warm, "tiny", 60, &plan_result(&scorer));
    compared.add_baseline_compared(&plan_result(&scorer), &plan_result(&scorer));
    let json: serde_json::Value = serde_json::from_str(&compared.to_json()).unwrap();
    assert_eq!(json["ndcg10_vs_baselines"]["fixed"]["difference"], 0.0);
    assert_eq!(json["ndcg10_vs_baselines"]["fixed"]["ci95"], serde_json::json!([0.0, 0.0]));
    assert!(compared.to_table().contains("vs fixed") && compared.to_table().contains("not distinguishable"));
    assert!(lines[2].starts_with("model") && lines[3].starts_with("fixed"), "{table}");
    assert!(lines[2].contains("0.3333"), "MRR@10 of rank 3 shown: {table}");
}

/// RecBole 1.2.1's Pop on ml100k-mm, test, Recall@10 / NDCG@10 (docs/evaluation.md). The recbole wheel's ML-100K
/// (the fallback without `../shared`) is the same ratings in the same per-user order, so the same figures.
const RECBOLE_POP: (f64, f64) = (0.0488, 0.0226);

#[test]
fn popularity_on_ml100k_warm_is_near_recbole_pop() {
    let ml100k = common::ml100k();
    let loaded = load_dir(&ml100k.dir);
    assert!(loaded.is_usable(), "{:?}", loaded.problems.first());
    let dataset = loaded.dataset;
    let n_items = dataset.items.len();
    let plan = EvalPlan::new(&dataset, EvalProtocol::Warm);
    assert_eq!(plan.cases.len(), 943);

    let pop = Popularity::from_split(&plan.split, n_items).unwrap();
    // Counts come from training sequences only: every interaction but the 943 test and 943
    // validation targets.
    let counted: f64 = pop.counts().iter().map(|&c| c as f64).sum();
    assert_eq!(counted as usize, dataset.num_interactions() - plan.cases.len() - plan.split.validation.len());

    let result = plan.run(&pop, n_items, 256).unwrap();
    let (m, mm) = (result.primary.metrics(), result.primary.metrics_masked());
    eprintln!("popularity, {} warm test, unmasked: {m:?}", ml100k.name());
    eprintln!("popularity, {} warm test, masked:   {mm:?}", ml100k.name());
    eprintln!("RecBole Pop reference (R@10 / N@10): {RECBOLE_POP:?}");

    // The primary (unmasked) figures are the ones docs/evaluation.md quotes the reference as; they must land
    // within ±30% of it. (Measured: 0.0498 / 0.0220.) The masked figures are not compared: RecBole
    // does mask a general model's history, but its Pop counts an item once per training batch and
    // counts sampled negatives too, so its scores are mostly ties and its figure hangs on
    // torch.topk's tie order; exact counts masked give 0.0838 / 0.0432 here.
    for (name, got, reference) in
        [("recall@10", m.recall_at_10, RECBOLE_POP.0), ("ndcg@10", m.ndcg_at_10, RECBOLE_POP.1)]
    {
        assert!(
            (got - reference).abs() <= 0.3 * reference,
            "unmasked {name} = {got:.4}, RecBole Pop {reference} (±30%)"
        );
    }
    // Masking only removes candidates: it can never make a rank worse.
    assert!(result.primary.ranks.iter().zip(&result.primary.ranks_masked).all(|(u, m)| m <= u));
}

#[test]
fn popularity_cannot_recommend_new_items_under_cold() {
    let ml100k = common::ml100k();
    let dataset = load_dir(&ml100k.dir).dataset;
    let n_items = dataset.items.len();
    let plan = EvalPlan::new(&dataset, EvalProtocol::Cold);
    let primary = plan.primary.as_ref().unwrap();
    let cold_cases = primary.iter().filter(|&&p| p).count();
    assert_eq!(cold_cases, plan.split.test.len());
    assert!(cold_cases > 0, "{} has test targets among its late items", ml100k.name());

    let pop = Popularity::from_split(&plan.split, n_items).unwrap();
    let result = plan.run(&pop, n_items, 512).unwrap();
    eprintln!(
        "cold cases: {cold_cases}; popularity warm-target figures: {:?}",
        result.comparison.as_ref().unwrap().metrics()
    );
    // New items never occur in cold training sequences: they all score 0 and rank behind every
    // item seen in training (far more than 50), so every cold figure is exactly 0.
    assert!(plan.split.new_items.iter().zip(pop.counts()).all(|(&new, &c)| !new || c == 0.0));
    assert_eq!(result.primary.metrics(), Metrics::default());
    let report = Report::new(EvalProtocol::Cold, ml100k.name(), n_items, &result);
    assert_eq!(report.users, cold_cases);
    assert_eq!(report.warm.unwrap().users, 943 - cold_cases);
    assert_eq!(report.cold_warm_ratio.unwrap().recall_at_10, Some(0.0));
}

#[test]
fn any_sequential_recommender_plugs_in_through_recommender_scorer() {
    use candle_nn::VarMap;
    use omakase::eval::RecommenderScorer;
    use omakase::model::{seeded_var_builder, ModelConfig, SasRecId};

    let n_items = 30;
    let config = ModelConfig { dim: 16, num_heads: 2, ffn_dim: 16, max_len: 5, ..Default::default() };
    let varmap = VarMap::new();
    let model = SasRecId::new(&config, n_items, seeded_var_builder(&varmap, 7, &Device::Cpu)).unwrap();
    let scorer = RecommenderScorer::new("sasrec_id", &model, &(), config.max_len).unwrap();

    // The model reads only the last max_len items: a longer history ranks exactly like its tail.
    let long = vec![3, 9, 1, 4, 15, 22, 8, 2];
    let tail = long[long.len() - 5..].to_vec();
    let cases = [case(0, long, 11), case(1, tail, 11), case(2, vec![5], 0)];
    let eval = evaluate(&scorer, &cases, n_items, 2).unwrap();
    assert_eq!(eval.ranks[0], eval.ranks[1]);
    assert!(eval.ranks.iter().all(|&r| (1..=n_items).contains(&r)));

    // The model's own refusal of an empty history surfaces as a named scorer error.
    let err = evaluate(&scorer, &[case(4, vec![], 0)], n_items, 1).unwrap_err();
    assert!(matches!(err, EvalError::Scorer { .. }) && err.to_string().contains("sasrec_id"), "{err}");
}
