//! The runtime's backend choice and its GPU → CPU fallback (crates/runtime/src/backend.rs) — the code
//! the browser facade calls — natively, on whatever adapter wgpu finds (Mesa lavapipe in CI), over
//! the synthetic bundle of tests/bundle_fixture.
//!
//! No adapter: the GPU tests print a skip line and pass, unless `OMAKASE_REQUIRE_GPU=1` (CI).
//!
//! The choice under "auto" is tested without timing anything: lavapipe is a software adapter, so
//! `measure_software` makes it measurable, and a fake clock (each reading a fixed step later) makes
//! the measurement's call counts exact.

mod bundle_fixture;

use bundle_fixture::{file_map, fixture, N_ITEMS};
#[cfg(feature = "gpu")]
use std::cell::Cell;

#[cfg(feature = "gpu")]
use omakase::runtime::backend::MAX_TIMED_CALLS;
#[cfg(feature = "gpu")]
use omakase::runtime::gpu::{is_software_adapter, GpuContext, GpuOptions};
use omakase::runtime::{
    Answer, Backend, BackendOptions, BackendPreference, EmbeddingDtype, ItemMeta, ItemVectors, Runtime, WeightsDtype,
};
#[cfg(feature = "gpu")]
use omakase::runtime::{ChoiceReason, RememberedChoice};
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
    assert_eq!(backend.choice().reason.as_str(), "preference");
    assert_eq!((backend.choice().cpu_calls, backend.choice().gpu_calls), (0, 0));
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

#[test]
fn a_remembered_choice_survives_json_and_applies_within_2x() {
    use omakase::runtime::RememberedChoice;
    let r =
        RememberedChoice { bundle: "b".into(), device: "d".into(), items: 1000, gpu: true, cpu_ms: 0.5, gpu_ms: 0.25 };
    assert_eq!(RememberedChoice::from_json(&r.to_json()), Some(r.clone()));
    assert_eq!(RememberedChoice::from_json("{\"bundle\":1}"), None);
    assert_eq!(RememberedChoice::from_json("not json"), None);
    assert!(r.applies_to("b", "d", 1000) && r.applies_to("b", "d", 2000) && r.applies_to("b", "d", 500));
    assert!(!r.applies_to("b", "d", 2001) && !r.applies_to("b", "d", 499));
    assert!(!r.applies_to("other bundle", "d", 1000) && !r.applies_to("b", "other device", 1000));
}

/// The name of the adapter wgpu finds and whether it is a software one, or `None` after a skip line
/// (a failure when `OMAKASE_REQUIRE_GPU=1`).
#[cfg(feature = "gpu")]
fn adapter_info(test: &str) -> Option<(String, bool)> {
    match block_on(GpuContext::request_adapter(&GpuOptions::default())) {
        Ok(adapter) => {
            let info = adapter.get_info();
            Some((info.name.clone(), is_software_adapter(&info)))
        }
        Err(e) => {
            if std::env::var("OMAKASE_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("OMAKASE_REQUIRE_GPU=1 but {e}");
            }
            eprintln!("SKIP runtime_backend::{test}: {e}");
            None
        }
    }
}

/// A clock that reads `step` ms later each time it is read, and counts its readings.
#[cfg(feature = "gpu")]
struct FakeClock {
    step: f64,
    now: Cell<f64>,
    reads: Cell<u32>,
}

#[cfg(feature = "gpu")]
impl FakeClock {
    fn new(step: f64) -> FakeClock {
        FakeClock { step, now: Cell::new(0.0), reads: Cell::new(0) }
    }

    fn read(&self) -> f64 {
        self.reads.set(self.reads.get() + 1);
        self.now.set(self.now.get() + self.step);
        self.now.get()
    }
}

#[cfg(feature = "gpu")]
fn choose_on(options: &BackendOptions, clock: &FakeClock) -> (Backend, Option<String>) {
    block_on(Backend::choose_with(runtime(), options, None, &|| clock.read()))
}

#[cfg(feature = "gpu")]
#[test]
fn auto_passes_a_software_adapter_over_and_webgpu_takes_it() {
    let Some((name, software)) = adapter_info("auto_passes_a_software_adapter_over_and_webgpu_takes_it") else {
        return;
    };
    let clock = FakeClock::new(1.0);
    let (backend, warning) = choose_on(&BackendOptions::default(), &clock);
    assert!(warning.is_none(), "{warning:?}");
    let choice = backend.choice();
    if software {
        assert_eq!(choice.reason.as_str(), "software adapter", "{}", backend.note());
        assert!(backend.name().starts_with("cpu-"), "{}", backend.name());
        assert_eq!(choice.backend, backend.name());
        assert!(backend.note().contains(&name), "{}", backend.note());
        assert_eq!((choice.cpu_ms, choice.gpu_ms, choice.cpu_calls, choice.gpu_calls), (None, None, 0, 0));
        assert_eq!(clock.reads.get(), 0, "nothing measured");
    } else {
        assert_eq!(choice.reason, ChoiceReason::Measured, "{}", backend.note());
    }
    // "webgpu" takes whatever adapter comes, unmeasured.
    let options = BackendOptions { preference: BackendPreference::WebGpu, ..BackendOptions::default() };
    let (backend, warning) = choose_on(&options, &clock);
    assert!(warning.is_none(), "{warning:?}");
    assert!(backend.name().starts_with("webgpu-"), "{}: {}", backend.name(), backend.note());
    assert_eq!(backend.choice().reason, ChoiceReason::Preference);
}

#[cfg(feature = "gpu")]
#[test]
fn the_measurement_keeps_to_its_budget_and_a_tie_goes_to_the_cpu() {
    let Some(_) = adapter_info("the_measurement_keeps_to_its_budget_and_a_tie_goes_to_the_cpu") else { return };
    let options =
        BackendOptions { measure_software: true, budget_ms: 50, bundle: Some("b".into()), ..BackendOptions::default() };
    // Every call takes 6 ms by this clock: the warm-ups (12 ms), then pairs while the next call fits.
    let clock = FakeClock::new(6.0);
    let (backend, warning) = choose_on(&options, &clock);
    assert!(warning.is_none(), "{warning:?}");
    let choice = backend.choice().clone();
    assert_eq!(choice.reason, ChoiceReason::Measured, "{}", backend.note());
    assert_eq!((choice.cpu_calls, choice.gpu_calls), (4, 4), "{choice:?}");
    assert!(choice.spent_ms <= 50.0, "{choice:?}");
    assert_eq!(clock.reads.get(), 1 + 8, "one reading to start, one per call");
    assert_eq!((choice.cpu_ms, choice.gpu_ms), (Some(6.0), Some(6.0)));
    assert!(backend.name().starts_with("cpu-") && choice.backend == backend.name(), "a tie: {}", backend.name());
    let remember = choice.remember.expect("a measured choice with a bundle key is remembered");
    assert_eq!((remember.bundle.as_str(), remember.items, remember.gpu), ("b", N_ITEMS as u64, false));

    // Warm-ups over the budget: only they run.
    let clock = FakeClock::new(30.0);
    let (backend, _) = choose_on(&options, &clock);
    assert_eq!((backend.choice().cpu_calls, backend.choice().gpu_calls), (1, 1), "{:?}", backend.choice());
    // A budget with room for everything: at most MAX_TIMED_CALLS each after the warm-up.
    let clock = FakeClock::new(0.001);
    let (backend, _) = choose_on(&options, &clock);
    let calls = (backend.choice().cpu_calls, backend.choice().gpu_calls);
    assert_eq!(calls, (1 + MAX_TIMED_CALLS, 1 + MAX_TIMED_CALLS));
}

#[cfg(feature = "gpu")]
#[test]
fn a_remembered_choice_is_used_without_measuring_until_the_catalogue_changes_size() {
    let test = "a_remembered_choice_is_used_without_measuring_until_the_catalogue_changes_size";
    let Some(_) = adapter_info(test) else { return };
    let options = BackendOptions { measure_software: true, bundle: Some("b".into()), ..BackendOptions::default() };
    let (first, _) = block_on(Backend::choose(runtime(), &options, None));
    assert_eq!(first.choice().reason, ChoiceReason::Measured, "{}", first.note());
    eprintln!("runtime_backend: measured on {N_ITEMS} items: {}", first.note());
    let (cpu_ms, gpu_ms) = (first.choice().cpu_ms.unwrap(), first.choice().gpu_ms.unwrap());
    assert!(cpu_ms >= 0.0 && gpu_ms >= 0.0);
    let remembered = first.choice().remember.clone().unwrap();
    let stored = RememberedChoice::from_json(&remembered.to_json()).unwrap();

    // Either verdict is taken as remembered, with no clock reading and no call.
    for gpu in [true, false] {
        let r = RememberedChoice { gpu, ..stored.clone() };
        let clock = FakeClock::new(1.0);
        let (backend, warning) = choose_on(&BackendOptions { remembered: Some(r.clone()), ..options.clone() }, &clock);
        assert!(warning.is_none(), "{warning:?}");
        let choice = backend.choice();
        assert_eq!(choice.reason.as_str(), "remembered", "{}", backend.note());
        assert_eq!(clock.reads.get(), 0);
        assert_eq!((choice.cpu_calls, choice.gpu_calls), (0, 0));
        assert_eq!((choice.cpu_ms, choice.gpu_ms), (Some(r.cpu_ms), Some(r.gpu_ms)));
        assert_eq!(choice.remember.as_ref(), Some(&r));
        assert_eq!(backend.name().starts_with("webgpu-"), gpu, "{}", backend.name());
        // Either way it answers like the CPU.
        let answer = block_on(backend.recommend(SESSIONS[2], 10)).unwrap();
        assert_matches_cpu(&answer, &runtime(), SESSIONS[2], 10);
    }

    // Measured at 2× this size: still applies. At more than 2×, another bundle, another device: measured.
    let cases = [
        (RememberedChoice { items: 2 * N_ITEMS as u64, ..stored.clone() }, "remembered"),
        (RememberedChoice { items: N_ITEMS as u64 / 2, ..stored.clone() }, "remembered"),
        (RememberedChoice { items: 2 * N_ITEMS as u64 + 1, ..stored.clone() }, "measured"),
        (RememberedChoice { items: N_ITEMS as u64 / 2 - 1, ..stored.clone() }, "measured"),
        (RememberedChoice { bundle: "another bundle".into(), ..stored.clone() }, "measured"),
        (RememberedChoice { device: "another device".into(), ..stored.clone() }, "measured"),
    ];
    for (r, want) in cases {
        let clock = FakeClock::new(1.0);
        let (backend, _) = choose_on(&BackendOptions { remembered: Some(r.clone()), ..options.clone() }, &clock);
        assert_eq!(backend.choice().reason.as_str(), want, "{r:?}");
        assert_eq!(clock.reads.get() > 0, want == "measured", "{r:?}");
        if want == "measured" {
            let new = backend.choice().remember.clone().unwrap();
            assert_eq!((new.bundle.as_str(), new.items), ("b", N_ITEMS as u64));
        }
    }
    // Under "webgpu" a remembered choice is not read.
    let webgpu = BackendOptions {
        preference: BackendPreference::WebGpu,
        remembered: Some(RememberedChoice { gpu: false, ..stored }),
        ..options
    };
    let (backend, _) = choose_on(&webgpu, &FakeClock::new(1.0));
    assert_eq!(backend.choice().reason, ChoiceReason::Preference);
    assert!(backend.name().starts_with("webgpu-"), "{}", backend.name());
}

#[cfg(feature = "gpu")]
#[test]
fn the_gpu_answers_like_the_cpu_and_a_lost_device_finishes_on_the_cpu() {
    // "webgpu": the GPU whenever an adapter comes, a software one (lavapipe) included.
    let options = BackendOptions { preference: BackendPreference::WebGpu, ..BackendOptions::default() };
    let (mut backend, warning) = block_on(Backend::choose(runtime(), &options, None));
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
