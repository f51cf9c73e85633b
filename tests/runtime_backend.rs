//! The runtime's backend choice and its GPU → CPU fallback (crates/runtime/src/backend.rs) — the code
//! the browser facade calls — natively, on whatever adapter wgpu finds (Mesa lavapipe in CI), over
//! the synthetic bundle of tests/bundle_fixture.
//!
//! No adapter: the GPU test prints a skip line and passes, unless `OMAKASE_REQUIRE_GPU=1` (CI).

mod bundle_fixture;

use bundle_fixture::{file_map, fixture, N_ITEMS};
use omakase::runtime::{
    Answer, Backend, BackendOptions, BackendPreference, EmbeddingDtype, ItemMeta, ItemVectors, Runtime, WeightsDtype,
};
use pollster::block_on;

fn runtime() -> Runtime {
    let files = file_map(&fixture().bundle(WeightsDtype::Q8_0, EmbeddingDtype::Int8, 1 << 20));
    Runtime::load(&files["manifest.json"], &files).unwrap()
}

const SESSIONS: [&[&str]; 3] = [&["p1", "p2"], &["p5"], &["p0", "p3", "p7", "p11"]];

/// The answer matches the CPU runtime's: same scores (GPU sums in another order: 1e-4), same ids
/// where the scores are not tied, same explanations, same `unknown` and `used`.
fn assert_matches_cpu(answer: &Answer, cpu: &Runtime, session: &[&str], k: usize) {
    let want = cpu.recommend(session, k).unwrap();
    let got = &answer.recommendations;
    assert_eq!(got.items.len(), want.items.len(), "{session:?}");
    for (g, w) in got.items.iter().zip(&want.items) {
        assert!((g.score - w.score).abs() < 1e-4, "{session:?}: score {} vs {}", g.score, w.score);
        if g.id == w.id {
            assert_eq!(g.explanation.session_id, w.explanation.session_id);
        }
    }
    let ids = |items: &[omakase::runtime::Recommendation]| {
        let mut ids: Vec<String> = items.iter().map(|r| r.id.clone()).collect();
        ids.sort();
        ids
    };
    // Near-ties may swap order, not membership (the last score is no tie in this fixture).
    assert_eq!(ids(&got.items), ids(&want.items), "{session:?}");
    assert_eq!(got.unknown, want.unknown);
    assert_eq!(got.used, want.used);
}

#[test]
fn the_cpu_preference_never_takes_the_gpu() {
    let options = BackendOptions { preference: BackendPreference::Cpu, ..BackendOptions::default() };
    let (backend, warning) = block_on(Backend::choose(runtime(), &options, None));
    assert!(warning.is_none());
    assert!(backend.name().starts_with("cpu-"), "{}", backend.name());
    assert!(backend.note().contains("disabled"), "{}", backend.note());
    let cpu = runtime();
    for session in SESSIONS {
        let answer = block_on(backend.recommend(session, 10)).unwrap();
        assert_eq!(answer.backend, backend.name());
        assert!(answer.warning.is_none());
        assert_matches_cpu(&answer, &cpu, session, 10);
    }
}

#[test]
fn bad_calls_are_refused_the_same_way_on_every_backend() {
    let (backend, _) = block_on(Backend::choose(runtime(), &BackendOptions::default(), None));
    let err = block_on(backend.recommend(&["p1"], 0)).unwrap_err().to_string();
    assert!(err.contains('k'), "{err}");
    let err = block_on(backend.recommend(&["no-such-item"], 5)).unwrap_err().to_string();
    assert!(err.contains("no-such-item"), "{err}");
    let answer = block_on(backend.recommend(&["no-such-item", "p3"], 5)).unwrap();
    assert_eq!(answer.recommendations.unknown, ["no-such-item"]);
}

#[test]
fn backend_preference_names_parse_and_others_are_refused() {
    assert_eq!(BackendPreference::parse("auto").unwrap(), BackendPreference::Auto);
    assert_eq!(BackendPreference::parse("webgpu").unwrap(), BackendPreference::WebGpu);
    assert_eq!(BackendPreference::parse("wasm").unwrap(), BackendPreference::Cpu);
    assert!(BackendPreference::parse("cuda").unwrap_err().to_string().contains("\"cuda\""));
}

#[cfg(feature = "gpu")]
#[test]
fn the_gpu_answers_like_the_cpu_and_a_lost_device_finishes_on_the_cpu() {
    let (mut backend, warning) = block_on(Backend::choose(runtime(), &BackendOptions::default(), None));
    if !backend.name().starts_with("webgpu") {
        if std::env::var("OMAKASE_REQUIRE_GPU").as_deref() == Ok("1") {
            panic!("OMAKASE_REQUIRE_GPU=1 but the backend is {}: {}", backend.name(), backend.note());
        }
        eprintln!("SKIP runtime_backend: {}", backend.note());
        return;
    }
    assert!(warning.is_none(), "{warning:?}");
    let mut cpu = runtime();
    for session in SESSIONS {
        let answer = block_on(backend.recommend(session, 10)).unwrap();
        assert_eq!(answer.backend, backend.name());
        assert!(answer.warning.is_none(), "{:?}", answer.warning);
        assert_matches_cpu(&answer, &cpu, session, 10);
    }

    // An item added at run time goes to the GPU table too: the session's own user vector as an item
    // is that session's best match on both backends.
    let (rows, _) = cpu.resolve(&["p0", "p3"]);
    let user = cpu.user_vector(&rows).unwrap();
    let meta = ItemMeta { id: "new".into(), title: "New".into(), image: None, link: None };
    let vectors = ItemVectors { fused: user, text_only: None, image_only: None };
    let (row, warning) = block_on(backend.add_item(meta.clone(), &vectors)).unwrap();
    assert_eq!((row as usize, warning), (N_ITEMS, None));
    cpu.add_item(meta, &vectors).unwrap();
    let answer = block_on(backend.recommend(&["p0", "p3"], 5)).unwrap();
    assert_eq!(answer.recommendations.items[0].id, "new");
    assert_matches_cpu(&answer, &cpu, &["p0", "p3"], 5);

    // A lost device: the call still answers (on the CPU, with a warning), and so does every later one.
    backend.simulate_device_loss();
    let answer = block_on(backend.recommend(SESSIONS[0], 10)).unwrap();
    assert!(answer.warning.as_deref().is_some_and(|w| w.contains("WebGPU failed")), "{:?}", answer.warning);
    assert!(answer.backend.starts_with("cpu-"), "{}", answer.backend);
    assert_matches_cpu(&answer, &cpu, SESSIONS[0], 10);
    assert!(backend.name().starts_with("cpu-"));
    assert!(backend.note().contains("WebGPU failed"), "{}", backend.note());
    let answer = block_on(backend.recommend(SESSIONS[2], 10)).unwrap();
    assert!(answer.warning.is_none());
    assert_matches_cpu(&answer, &cpu, SESSIONS[2], 10);
}
